/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One configuration struct for every role, filled from defaults, then
 * SLUICE_* environment variables, then command-line flags. Each setting is
 * declared once in a table (name, type, default, bounds, help) that drives
 * parsing, validation and --help. An invalid value stops start-up with a
 * message naming the setting and where it came from.
 */
#ifndef SLUICE_CONFIG_CONFIG_H
#define SLUICE_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model/record.h"

#define SL_CONFIG_MAX_FILES 16 /* replay files per run */

typedef struct sl_config {
    /* store and API */
    char *db;     /* store location: SQLite path or postgres:// URL; the
                     settings db and store both set it */
    char *listen; /* API address, HOST:PORT */
    char *log_level;
    char *api_token;            /* bearer token of write endpoints; "" none */
    char *cors_origins;         /* comma-separated origins or "*"; "" none */
    int64_t api_max_body_bytes; /* request body cap */
    int api_body_timeout_ms;    /* time allowed for a request body */
    int ws_max_clients;         /* WebSocket clients, both streams */
    int ws_queue_messages;      /* per WebSocket client */
    int ws_stall_ms;            /* losing messages this long: closed */
    /* generators */
    bool generators;
    double rate; /* readings/s for the fleet; 0: one per sensor
                    per second */
    int sensors_per_type;
    int sensor_types;
    double event_interval; /* seconds between commerce events */
    double anomaly_rate;
    int64_t seed;
    /* replay */
    const char *replay[SL_CONFIG_MAX_FILES];
    size_t replay_count;
    char *format;
    char *sensor_id;
    char *sensor_type;
    char *unit;
    char *location;
    char *speed; /* "max" or a factor */
    bool rebase_time;
    bool exit_when_idle;
    /* processor */
    int batch_size;
    int batch_timeout_ms;
    int window_seconds;
    int allowed_lateness_seconds;
    int64_t max_payload_bytes; /* larger values are dead-lettered undecoded */
    int views_refresh_seconds; /* PostgreSQL views; 0 = never */
    /* bus */
    char *bus;              /* "memory" or "kafka" */
    char *kafka_brokers;    /* bootstrap servers, HOST:PORT[,...]; "" unset */
    char *kafka_properties; /* librdkafka "KEY=VALUE,..."; "" none */
    /* schema registry */
    char *registry_url;    /* remote registry base URL; "" = in-process */
    char *registry_listen; /* `sluice registry` address, HOST:PORT */
    char *metrics_listen;  /* a role's own /metrics address; "" = none */
    int bus_partitions;
    int bus_capacity;
    /* tracing */
    char *trace_endpoint;      /* OTLP/HTTP traces URL; "" = no tracing */
    double trace_sample_ratio; /* of root spans, 0..1 */
    /* detector */
    bool detector;
    int detect_retrain_every; /* readings of a type; 0: the model default */
    int detect_window;        /* feature vectors per type; 0: default */
    int detect_min_samples;   /* before the first model; 0: default */
    char *detect_model_dir;   /* "": DB.models beside an SQLite file */
    double detect_critical_score;
    double alert_cooldown_seconds;
    bool alert_rules;
    double rule_temperature_high;
    double rule_temperature_low;
    double rule_humidity_high;
    /* dead-letter handler */
    int64_t dlq_backoff_base_ms;
    int64_t dlq_backoff_cap_ms;
    double dlq_jitter; /* 0.2: each delay within +-20 % */
    int dlq_max_retries;
} sl_config_t;

/** Fills cfg with the defaults of every setting. */
void sl_config_init(sl_config_t *cfg);

/**
 * Applies SLUICE_* environment variables, then the flags in argv[0..argc).
 * Arguments that are not flags are taken as replay files. "--help" sets
 * *help_requested (may be NULL) and stops parsing.
 * Returns SL_OK, or SL_EINVAL with a message naming the setting in err.
 */
int sl_config_load(sl_config_t *cfg, int argc, char **argv,
                   bool *help_requested, char *err, size_t err_size);

/** Frees the strings cfg owns. */
void sl_config_fini(sl_config_t *cfg);

/** Prints every setting with its flag, variable, default and help. */
void sl_config_usage(FILE *out);

/**
 * Splits cfg->listen into host and port. OUT: host (host_size bytes),
 * *port. Returns SL_OK or SL_EINVAL with the reason in err.
 */
int sl_config_listen(const sl_config_t *cfg, char *host, size_t host_size,
                     int *port, char *err, size_t err_size);

/**
 * Splits a HOST:PORT address (of the setting named name, for messages)
 * into host and port. "[::1]:8000" is accepted for IPv6. OUT: host
 * (host_size bytes), *port. Returns SL_OK or SL_EINVAL with the reason
 * in err.
 */
int sl_config_split_address(const char *name, const char *address, char *host,
                            size_t host_size, int *port, char *err,
                            size_t err_size);

/** Returns true when cfg selects the Kafka bus (bus=kafka). */
bool sl_config_bus_is_kafka(const sl_config_t *cfg);

#endif
