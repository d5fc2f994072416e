/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Synthetic producers: a fleet of sensors and a crowd of shoppers.
 * Values follow each sensor's own normal level with noise and a slow daily
 * cycle. Injected anomalies (spikes, drifts, stuck values) stay physically
 * possible, so they reach the detector instead of being rejected by
 * validation.
 */
#ifndef SLUICE_PIPELINE_GENERATOR_H
#define SLUICE_PIPELINE_GENERATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "model/record.h"

typedef struct sl_generator_config {
    int sensors_per_type;    /* default 10 */
    int type_count;          /* first N of temperature, humidity, pressure,
                                vibration, power; default 3 */
    double interval_s;       /* seconds between readings of one sensor;
                                default 1 */
    double rate;             /* readings/s for the whole fleet; 0: use
                                interval_s */
    double event_interval_s; /* seconds between commerce events; default 2;
                                0 disables */
    double anomaly_rate;     /* chance a reading starts an anomaly;
                                default 0.01 */
    int users;               /* shoppers; default 50 */
    uint64_t seed;
} sl_generator_config_t;

void sl_generator_config_init(sl_generator_config_t *cfg);

typedef struct sl_sensor_sim sl_sensor_sim_t;

/**
 * Creates the simulated fleet and shoppers. Deterministic for a seed.
 * Returns NULL on OOM or invalid config.
 */
sl_sensor_sim_t *sl_sensor_sim_create(const sl_generator_config_t *cfg);

void sl_sensor_sim_destroy(sl_sensor_sim_t *sim);

/** Returns the number of simulated sensors. */
int sl_sensor_sim_sensor_count(const sl_sensor_sim_t *sim);

/**
 * Produces the next reading of sensor index i (0 <= i < count) at event
 * time now_ms. The reading always passes sl_reading_validate().
 */
void sl_sensor_sim_reading(sl_sensor_sim_t *sim, int i, int64_t now_ms,
                           sl_reading_t *out);

/**
 * Produces the next commerce event at now_ms: a shopper continues their
 * sticky session (browse, search, add to cart, purchase) or starts one.
 */
void sl_sensor_sim_event(sl_sensor_sim_t *sim, int64_t now_ms, sl_event_t *out);

struct sl_publisher;

/**
 * Publishes readings and events from a simulation on their schedule until
 * *stop becomes nonzero: each sensor every interval_s seconds (or the
 * fleet at cfg->rate readings/s), an event every event_interval_s.
 * A publish that fails is logged and counted, never retried silently.
 * Returns SL_OK when stopped, or SL_ENOMEM.
 */
int sl_generator_run(const sl_generator_config_t *cfg, struct sl_publisher *pub,
                     volatile int *stop);

#endif
