/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the detector stage shared by its files: the trainer thread
 * (detector_train.c) and the alert helpers (detector_alerts.c). Nothing
 * outside src/detect/detector*.c and tests/unit/detector includes this.
 */
#ifndef SLUICE_DETECT_DETECTOR_INT_H
#define SLUICE_DETECT_DETECTOR_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include "detect/detector.h"

/* ---------------------------------------------------------------------- */
/* Trainer thread                                                          */
/* ---------------------------------------------------------------------- */

typedef struct sl_trainer sl_trainer_t;

/* Counters of the trainer, updated on its thread. */
typedef struct sl_trainer_counters {
    atomic_uint_least64_t retrains[SL_SENSOR_TYPE_COUNT];
    atomic_uint_least64_t superseded;
    atomic_uint_least64_t failures;
} sl_trainer_counters_t;

/**
 * Starts the trainer. slots[type] receive the trained forests; model_dir
 * (NULL: no files) receives a copy of each. slots and counters are
 * borrowed until sl_detector__trainer_stop(). Returns NULL on failure.
 */
sl_trainer_t *sl_detector__trainer_start(sl_forest_slot_t *const *slots,
                                         const char *model_dir,
                                         sl_trainer_counters_t *counters);

/**
 * Hands a snapshot of type to the trainer (ownership moves). A snapshot of
 * the same type still waiting is replaced and freed: only the newest
 * window is worth training. Thread-safe.
 */
void sl_detector__trainer_submit(sl_trainer_t *tr, sl_sensor_type_t type,
                                 sl_detect_snapshot_t *snap);

/** Trains what is still waiting, joins the thread and frees. NULL ok. */
void sl_detector__trainer_stop(sl_trainer_t *tr);

/**
 * Loads the saved forest of each type from model_dir into slots[type].
 * A missing file is skipped quietly; a file that does not load, or whose
 * feature count is not feature_count, is logged by name and ignored.
 * OUT: *loaded, *rejected.
 */
void sl_detector__load_models(sl_forest_slot_t *const *slots,
                              const char *model_dir, size_t feature_count,
                              uint64_t *loaded, uint64_t *rejected);

/* ---------------------------------------------------------------------- */
/* Alerts                                                                  */
/* ---------------------------------------------------------------------- */

/**
 * Checks rec against the threshold rules. Returns true and fills *out when
 * a rule fires (the first of: temperature high, temperature low, humidity
 * high).
 */
bool sl_detector__rule_alert(const sl_detector_rules_t *rules,
                             const sl_reading_t *rec, sl_alert_t *out);

/** Fills *out with the ml_anomaly alert of a flagged reading: critical at
 * or below critical_score, warning above it. */
void sl_detector__ml_alert(const sl_reading_t *rec, double score,
                           double critical_score, sl_alert_t *out);

/**
 * Publishes an alert to system-alerts keyed by sensor_id, retrying while
 * the bus is full. Returns SL_OK, SL_ECLOSED when the bus closed first, or
 * SL_ENOMEM.
 */
int sl_detector__publish_alert(sl_bus_t *bus, const sl_alert_t *alert);

#endif
