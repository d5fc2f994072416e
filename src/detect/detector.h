/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The anomaly-detection stage. It consumes sensor-readings in its own
 * consumer group, keeps rolling features per sensor, and scores every
 * reading with the Isolation Forest of the reading's sensor type. It also
 * applies fixed threshold rules. Each finding becomes the reading's
 * anomaly flag and score plus an alerts row, written in one store
 * transaction per polled batch, and the alert is then published to
 * system-alerts. Offsets are committed after that, so a crash redelivers
 * and the store's upserts absorb the repeat.
 *
 * Training runs off the scoring path. When a type's model is due, the
 * stage thread takes a snapshot of the type's window and hands it to a
 * trainer thread. The trainer swaps the new forest into the type's forest
 * slot, then saves it under the model folder. Scoring holds a reference to
 * the slot's forest, checks with one atomic load per reading whether a
 * newer one was published, and never waits for training. Until a type has
 * its first forest its readings are left unscored, never dropped.
 *
 * system-alerts records are JSON objects (sl_detector_alert_json()), keyed
 * by sensor_id. The alert feed (sl_alert_feed_start()) is the consumer
 * group that reads them in standalone mode, so the in-process bus frees
 * them.
 */
#ifndef SLUICE_DETECT_DETECTOR_H
#define SLUICE_DETECT_DETECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"
#include "detect/iforest.h"
#include "detect/model.h"
#include "schema/schema.h"
#include "store/store.h"

/* ---------------------------------------------------------------------- */
/* Forest slot: the current forest of one sensor type                      */
/* ---------------------------------------------------------------------- */

typedef struct sl_forest_slot sl_forest_slot_t;
typedef struct sl_forest_ref sl_forest_ref_t;

/** Creates an empty slot. Returns NULL on OOM. */
sl_forest_slot_t *sl_forest_slot_create(void);

/** Frees the slot and drops its reference to the current forest; the
 * forest is freed once every holder released it. Accepts NULL. */
void sl_forest_slot_destroy(sl_forest_slot_t *slot);

/**
 * Makes forest (ownership moves to the slot; NULL empties it) the current
 * one. The previous forest is freed when its last holder releases it, so
 * threads scoring it finish undisturbed. Takes the slot's mutex only for
 * the pointer swap. Returns SL_OK or SL_ENOMEM (forest is then freed and
 * the slot unchanged). Thread-safe.
 */
int sl_forest_slot_publish(sl_forest_slot_t *slot, sl_iforest_t *forest);

/**
 * Returns a reference to the current forest, or NULL when the slot is
 * empty. The forest stays valid until sl_forest_ref_release(). Thread-safe.
 */
sl_forest_ref_t *sl_forest_slot_acquire(sl_forest_slot_t *slot);

/** Returns how many times the slot was published to. A reference whose
 * slot count has not moved since it was acquired is still the current
 * forest. Lock-free, so scorers may check it per reading. */
uint64_t sl_forest_slot_changes(sl_forest_slot_t *slot);

/** Returns the forest of a reference (borrowed). */
const sl_iforest_t *sl_forest_ref_get(const sl_forest_ref_t *ref);

/** Returns how many forests were published into the slot before this one
 * (0 for the first). */
uint64_t sl_forest_ref_generation(const sl_forest_ref_t *ref);

/** Drops a reference, freeing the forest when it was the last. Accepts
 * NULL. Thread-safe. */
void sl_forest_ref_release(sl_forest_ref_t *ref);

/* ---------------------------------------------------------------------- */
/* The stage                                                               */
/* ---------------------------------------------------------------------- */

typedef struct sl_detector sl_detector_t;

/* Fixed threshold rules, applied to every reading whether or not a model
 * exists. A value strictly above a high limit, or strictly below a low
 * limit, raises a threshold alert. */
typedef struct sl_detector_rules {
    bool enabled;
    double temperature_high; /* critical; default 80 */
    double temperature_low;  /* warning; default -20 */
    double humidity_high;    /* warning; default 95 */
} sl_detector_rules_t;

/* Returns the current time in ms since the epoch; tests inject a clock. */
typedef int64_t (*sl_detector_clock_fn)(void *ctx);

typedef struct sl_detector_config {
    sl_bus_t *bus;
    sl_registry_t *registry;
    const char *store_location; /* the detector opens its own handle */
    const char *group;          /* consumer group; default "sluice-detector" */
    int batch_size;             /* records per poll and transaction */
    int poll_timeout_ms;
    sl_detect_model_config_t model; /* one model per sensor type */
    const char *model_dir; /* forest files; NULL or "": not persisted */
    double critical_score; /* ML alerts at or below this score: critical */
    int64_t cooldown_ms;   /* at most one alert per sensor per cool-down */
    sl_detector_rules_t rules;
    size_t max_sensors;     /* sensors with feature state, at most */
    int64_t sensor_idle_ms; /* state of a sensor silent this long is freed */
    sl_detector_clock_fn clock; /* cool-down clock; NULL: wall clock */
    void *clock_ctx;
} sl_detector_config_t;

/* Counters of one detector, readable from any thread. */
typedef struct sl_detector_stats {
    uint64_t consumed;
    uint64_t skipped; /* undecodable or invalid: the processor's business */
    uint64_t scored;
    uint64_t unscored;  /* no forest yet for the type, or no sensor state */
    uint64_t anomalies; /* readings flagged by the forest */
    uint64_t alerts;    /* alerts stored and published */
    uint64_t suppressed;
    uint64_t snapshots[SL_SENSOR_TYPE_COUNT]; /* retrains started per type */
    uint64_t retrains[SL_SENSOR_TYPE_COUNT];  /* forests installed per type */
    uint64_t superseded; /* snapshots replaced by a newer one untrained */
    uint64_t train_failures;
    uint64_t models_loaded;
    uint64_t models_rejected;
    uint64_t sensors; /* sensors with feature state now */
} sl_detector_stats_t;

/** Fills cfg with the defaults (rules on, 300 s cool-down, critical at
 * -0.7, the model's own defaults, 100,000 sensors idle after one hour). */
void sl_detector_config_init(sl_detector_config_t *cfg);

/**
 * Opens the store, loads the saved forests, starts the trainer thread,
 * joins the group for sensor-readings and starts the stage thread.
 * A forest file that cannot be loaded is reported by name in the log and
 * ignored; its type retrains. Returns NULL with the reason in err.
 */
sl_detector_t *sl_detector_start(const sl_detector_config_t *cfg, char *err,
                                 size_t err_size);

/** Returns records of sensor-readings not yet committed. Thread-safe. */
int64_t sl_detector_lag(sl_detector_t *det);

/** Copies the counters. Thread-safe. */
void sl_detector_stats(sl_detector_t *det, sl_detector_stats_t *out);

/**
 * Makes the detector stop retrying store writes, so shutdown can finish
 * when the store stays unavailable. Batches not written are not committed.
 * Thread-safe.
 */
void sl_detector_abandon_writes(sl_detector_t *det);

/**
 * Makes the detector stop after the batch in hand rather than read on until
 * its input runs dry, which with a backlog on Kafka can take minutes. What
 * it has not committed is delivered again to the next detector.
 */
void sl_detector_request_stop(sl_detector_t *det);

/**
 * Waits until the bus is closed and every accepted reading is processed,
 * then lets the trainer finish its waiting snapshots and joins both
 * threads. The counters are final afterwards. Calling it again does
 * nothing.
 */
void sl_detector_join(sl_detector_t *det);

/** Joins (sl_detector_join()) and frees. Accepts NULL. */
void sl_detector_stop(sl_detector_t *det);

/** Builds the file name of a type's forest: "DIR/TYPE.iforest". OUT: out.
 * Returns SL_OK, or SL_EINVAL when it does not fit in out_size. */
int sl_detector_model_path(const char *dir, sl_sensor_type_t type, char *out,
                           size_t out_size);

/**
 * Renders an alert as published to system-alerts: alert_type, severity,
 * sensor_id, sensor_type, message, value, anomaly_score (null without a
 * score) and timestamp (ISO-8601 UTC). Returns a new object, or NULL on
 * OOM.
 */
json_t *sl_detector_alert_json(const sl_alert_t *alert);

/* ---------------------------------------------------------------------- */
/* Alert feed: the standalone consumer of system-alerts                    */
/* ---------------------------------------------------------------------- */

typedef struct sl_alert_feed sl_alert_feed_t;

/**
 * Starts a thread that reads system-alerts in group "sluice-alert-feed",
 * counts each record in sluice_alert_feed_records_total and commits it.
 * XXX: nothing is delivered further yet; the API's WebSocket hub is meant
 * to hang off this consumer. Returns NULL with the reason in err.
 */
sl_alert_feed_t *sl_alert_feed_start(sl_bus_t *bus, char *err, size_t err_size);

/** Returns system-alerts records the feed has not committed. */
int64_t sl_alert_feed_lag(sl_alert_feed_t *feed);

/** Joins the thread once the bus is closed and drained; frees. NULL ok. */
void sl_alert_feed_stop(sl_alert_feed_t *feed);

#endif
