/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store: where readings, events, window aggregates, alerts and
 * dead-letter records end up, and where the API reads them back.
 * store_sqlite.c implements it on an SQLite file; store_pg.c on PostgreSQL.
 *
 * Writes are idempotent: a reading is identified by (sensor_id, timestamp,
 * value) and an event by event_id, so writing a batch twice (a redelivery after
 * a crash or a rebalance) adds nothing the second time. The SQLite store keys
 * events by (timestamp, event_id) so that inserts append: a redelivery
 * carries the original timestamp, but one event_id sent again with another
 * timestamp is stored twice. Two different values of one sensor at one
 * instant are two readings: recorded data contains such pairs, and
 * dropping one would lose a measurement.
 *
 * One handle serves one thread at a time. Open one handle per thread; the
 * SQLite back end runs in WAL mode so readers never block the writer.
 */
#ifndef SLUICE_STORE_STORE_H
#define SLUICE_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/record.h"

typedef struct sl_store sl_store_t;

typedef enum sl_dlq_class {
    SL_DLQ_DECODE = 0,     /* bad framing, unknown schema id, corrupt body */
    SL_DLQ_VALIDATION = 1, /* impossible values */
    SL_DLQ_STORAGE = 2,    /* the store rejected this record */
    SL_DLQ_PROCESSING = 3, /* any other per-record failure */
} sl_dlq_class_t;

typedef enum sl_dlq_status {
    SL_DLQ_PENDING = 0,
    SL_DLQ_RETRYING = 1,
    SL_DLQ_RESOLVED = 2,
    SL_DLQ_DEAD = 3,
} sl_dlq_status_t;

/* One record that could not be processed, with its original bytes. */
typedef struct sl_dlq_entry {
    int64_t id; /* assigned by the store; 0 before insertion */
    char topic[SL_ID_MAX + 1];
    int32_t partition;
    int64_t offset;
    const void *key; /* borrowed */
    size_t key_len;
    const void *payload; /* borrowed: the original value bytes */
    size_t payload_len;
    sl_dlq_class_t error_class;
    char error[SL_TEXT_MAX + 1]; /* reason code, then detail */
    int32_t retry_count;
    sl_dlq_status_t status;
    int64_t first_failure_ms;
    int64_t last_failure_ms;
    int64_t next_attempt_ms; /* when the handler retries it; 0: never */
    int64_t created_at_ms;   /* set by the store's reads */
    int64_t updated_at_ms;   /* set by the store's reads */
} sl_dlq_entry_t;

/*
 * A dead-letter row to mark resolved because the record it holds, retried
 * by the DLQ handler, is stored by the same batch. The row is found by the
 * record's original source position. is_event and index name the row of
 * the batch that carries the record: a rejected row resolves nothing.
 */
typedef struct sl_dlq_resolution {
    const char *topic; /* borrowed */
    int32_t partition;
    int64_t offset;
    bool is_event; /* events[index], else readings[index] */
    size_t index;
} sl_dlq_resolution_t;

/* Filters of a dead-letter listing. */
typedef struct sl_dlq_query {
    int status;        /* an sl_dlq_status_t, or -1 for any */
    const char *topic; /* source topic, or NULL for any */
    size_t limit;
} sl_dlq_query_t;

/* A window to recompute from stored rows, because a late reading arrived
 * after the window had been written. */
typedef struct sl_window_key {
    char sensor_id[SL_ID_MAX + 1];
    sl_sensor_type_t sensor_type;
    int64_t window_start_ms;
    int64_t window_end_ms;
} sl_window_key_t;

/* Everything one processing step writes, committed in one transaction. */
typedef struct sl_store_batch {
    const sl_reading_t *readings;
    size_t reading_count;
    const sl_event_t *events;
    size_t event_count;
    const sl_aggregate_t *aggregates; /* upserted by (sensor_id, start) */
    size_t aggregate_count;
    const sl_window_key_t *recompute;
    size_t recompute_count;
    const sl_dlq_entry_t *dlq; /* upserted by source position */
    size_t dlq_count;
    const sl_dlq_resolution_t *resolutions;
    size_t resolution_count;
    /* OUT (may be NULL): reading_count flags, set true for each reading
     * that was already stored and so was ignored, false for the others. */
    bool *reading_duplicate;
    /* By default the newest stored reading of each sensor in readings
     * updates its sensor_latest row. A writer that commits often can
     * instead set latest_deferred and hand over, now and then, the newest
     * reading of each sensor since its last such batch in latest: each
     * must already be stored, by this batch or an earlier one. The row of
     * a sensor is replaced only by a reading with a newer event time. */
    bool latest_deferred;
    const sl_reading_t *latest;
    size_t latest_count;
} sl_store_batch_t;

/* What a committed batch did. */
typedef struct sl_store_result {
    size_t readings_inserted;
    size_t readings_duplicate; /* already stored: ignored */
    size_t events_inserted;
    size_t events_duplicate;
    size_t dlq_resolved; /* dead-letter rows marked resolved */
} sl_store_result_t;

/**
 * Called for a row the store refused while the rest of its batch was
 * committed. kind is "reading" or "event", index the row's position in the
 * batch, error the database's message. kind is also "aggregate", "window"
 * (a recompute entry) or "dlq" for a row of those arrays, and "latest" when
 * a stored reading could not update the sensor's latest reading (index
 * into readings, or into latest when latest_deferred is set).
 */
typedef void (*sl_store_reject_cb)(void *ctx, const char *kind, size_t index,
                                   const char *error);

/* Filters of a readings query. Unset filters: NULL, -1, INT64_MIN/MAX. */
typedef struct sl_reading_query {
    const char *sensor_id;
    int sensor_type; /* an sl_sensor_type_t, or -1 for any */
    int64_t from_ms; /* inclusive */
    int64_t to_ms;   /* exclusive */
    bool anomalies_only;
    size_t limit;
} sl_reading_query_t;

/** Fills q with "no filter, limit 100". */
void sl_reading_query_init(sl_reading_query_t *q);

/* Statistics of one sensor over a time range. */
typedef struct sl_sensor_stats {
    char sensor_id[SL_ID_MAX + 1];
    sl_sensor_type_t sensor_type;
    int64_t count;
    int64_t anomaly_count;
    double min;
    double max;
    double avg;
    int64_t first_ms;
    int64_t last_ms;
} sl_sensor_stats_t;

/* Kinds of alert: one raised by the Isolation Forest, one by a fixed
 * threshold rule. */
typedef enum sl_alert_type {
    SL_ALERT_ML_ANOMALY = 0, /* stored as "ml_anomaly" */
    SL_ALERT_THRESHOLD = 1,  /* stored as "threshold" */
    SL_ALERT_TYPE_COUNT = 2,
} sl_alert_type_t;

typedef enum sl_alert_severity {
    SL_SEVERITY_INFO = 0,
    SL_SEVERITY_WARNING = 1,
    SL_SEVERITY_CRITICAL = 2,
    SL_SEVERITY_COUNT = 3,
} sl_alert_severity_t;

/* One alert, as stored in the alerts table. An alert is identified by
 * (sensor_id, timestamp_ms, alert_type): timestamp_ms is the event time of
 * the reading that raised it. */
typedef struct sl_alert {
    int64_t id; /* assigned by the store; 0 before insertion */
    sl_alert_type_t alert_type;
    sl_alert_severity_t severity;
    char sensor_id[SL_ID_MAX + 1];
    sl_sensor_type_t sensor_type;
    char message[SL_TEXT_MAX + 1];
    double value;
    double anomaly_score; /* meaningful only when has_score */
    bool has_score;
    int64_t timestamp_ms;
    bool acknowledged;
} sl_alert_t;

/* What one sl_store_record_detections call changed. */
typedef struct sl_store_detect_result {
    size_t readings_changed;   /* inserted, or flag or score updated */
    size_t readings_unchanged; /* already stored with this flag and score */
    size_t alerts_inserted;
    size_t alerts_duplicate; /* already stored: ignored */
    size_t rejected;         /* rows the database rejected (logged) */
} sl_store_detect_result_t;

/**
 * Opens a store. location is an SQLite path, "sqlite:PATH", or a
 * "postgres://" or "postgresql://" URL in libpq's URI syntax.
 * Returns NULL with the reason in err.
 */
sl_store_t *sl_store_open(const char *location, char *err, size_t err_size);

/** Closes the store, rolling back any open transaction. Accepts NULL. */
void sl_store_close(sl_store_t *st);

/**
 * Applies every migration newer than the database's version, each in its
 * own transaction. Safe to call on every start. Returns SL_OK or SL_EIO
 * with the failing migration and error in err.
 */
int sl_store_migrate(sl_store_t *st, char *err, size_t err_size);

/** Returns the schema version the database is at, or -1 on error. */
int sl_store_schema_version(sl_store_t *st);

/**
 * Writes a batch in one transaction. When the transaction fails because of
 * particular rows, those rows are reported through reject (may be NULL) and
 * the rest is committed; no good row is lost to a bad neighbour.
 * OUT: *result (may be NULL). Returns SL_OK once the batch is durable, or
 * SL_EIO when the store itself is unavailable (nothing committed; the
 * caller retries the whole batch).
 */
int sl_store_write(sl_store_t *st, const sl_store_batch_t *batch,
                   sl_store_result_t *result, sl_store_reject_cb reject,
                   void *reject_ctx);

/**
 * Fetches readings matching q, newest event time first. OUT: out[0..*n).
 * Returns SL_OK or SL_EIO.
 */
int sl_store_readings(sl_store_t *st, const sl_reading_query_t *q,
                      sl_reading_t *out, size_t max, size_t *n);

/**
 * Computes per-sensor statistics over [from_ms, to_ms), optionally for one
 * sensor type (-1: all). Non-finite values stored by other writers are
 * skipped. OUT: out[0..*n), ordered by sensor_id. Returns SL_OK or SL_EIO.
 */
int sl_store_sensor_stats(sl_store_t *st, int64_t from_ms, int64_t to_ms,
                          int sensor_type, sl_sensor_stats_t *out, size_t max,
                          size_t *n);

/**
 * Fetches window aggregates of one sensor (NULL: all) that start in
 * [from_ms, to_ms), oldest first. Returns SL_OK or SL_EIO.
 */
int sl_store_aggregates(sl_store_t *st, const char *sensor_id, int64_t from_ms,
                        int64_t to_ms, sl_aggregate_t *out, size_t max,
                        size_t *n);

/** Counts stored readings (all sensors). Returns the count or -1. */
int64_t sl_store_reading_count(sl_store_t *st);

/** Counts dead-letter rows. Returns the count or -1. */
int64_t sl_store_dlq_count(sl_store_t *st);

/**
 * Records detector results in one transaction: each reading in readings is
 * upserted with its anomaly flag and anomaly_score (has_score false stores
 * NULL), and each alert is inserted unless an alert with the same identity
 * exists.
 *
 * A reading is written whole, so the order of processor and detector does
 * not matter. When the detector is first, the processor's insert skips the
 * existing row. When the processor is first, this upsert only sets anomaly
 * and anomaly_score on its row. The sensor's latest-reading row gets the flag
 * and score too when it is this reading. Calling it twice with the same
 * arguments changes nothing the second time.
 * OUT: alert_new[0..alert_count) (may be NULL): true for each alert this
 * call inserted, false for one already stored, so a redelivered batch's
 * alerts are not announced twice. *result (may be NULL).
 * Returns SL_OK once committed, SL_EINVAL for
 * invalid arguments, or SL_EIO when the store is unavailable (nothing
 * committed; the caller retries).
 */
int sl_store_record_detections(sl_store_t *st, const sl_reading_t *readings,
                               size_t reading_count, const sl_alert_t *alerts,
                               size_t alert_count, bool *alert_new,
                               sl_store_detect_result_t *result);

/**
 * Fetches the newest alerts, of one sensor when sensor_id is not NULL,
 * newest event time first. OUT: out[0..*n). Returns SL_OK or SL_EIO.
 */
int sl_store_alerts(sl_store_t *st, const char *sensor_id, sl_alert_t *out,
                    size_t max, size_t *n);

/** Returns "ml_anomaly" or "threshold". */
const char *sl_alert_type_name(sl_alert_type_t type);

/** Returns "info", "warning" or "critical". */
const char *sl_alert_severity_name(sl_alert_severity_t severity);

/**
 * Lists dead-letter rows matching q, newest first. key and payload of each
 * entry are NULL; their lengths are set. OUT: out[0..*n).
 * Returns SL_OK or SL_EIO.
 */
int sl_store_dlq_list(sl_store_t *st, const sl_dlq_query_t *q,
                      sl_dlq_entry_t *out, size_t max, size_t *n);

/**
 * Fetches one dead-letter row with its key and payload. OUT: *out, whose
 * key and payload point into *bytes, one allocation the caller frees.
 * Returns SL_OK, SL_ENOTFOUND, SL_ENOMEM or SL_EIO.
 */
int sl_store_dlq_get(sl_store_t *st, int64_t id, sl_dlq_entry_t *out,
                     void **bytes);

/**
 * Schedules dead-letter rows for a retry at now_ms: status pending,
 * next_attempt_ms now_ms. With id > 0 that row, which must be pending or
 * dead; with id 0 every row whose status is status. OUT: *changed (may be
 * NULL). Returns SL_OK, SL_ENOTFOUND (no row id), SL_EBUSY (row id is
 * retrying or resolved) or SL_EIO.
 */
int sl_store_dlq_replay(sl_store_t *st, int64_t id, sl_dlq_status_t status,
                        int64_t now_ms, size_t *changed);

/**
 * Fetches the id and next_attempt_ms of pending rows that have one,
 * earliest first. OUT: ids[0..*n), due_ms[0..*n).
 * Returns SL_OK or SL_EIO.
 */
int sl_store_dlq_scheduled(sl_store_t *st, int64_t *ids, int64_t *due_ms,
                           size_t max, size_t *n);

/**
 * Schedules at now_ms the rows a stopped handler left behind: retrying
 * rows (their record was lost with the in-process bus) and pending rows
 * without a due time. OUT: *changed (may be NULL). Returns SL_OK or SL_EIO.
 */
int sl_store_dlq_rearm(sl_store_t *st, int64_t now_ms, size_t *changed);

/**
 * Claims a due pending row for a retry in one statement: status retrying,
 * retry_count + 1, next_attempt_ms NULL. OUT: *out and *bytes as
 * sl_store_dlq_get. Returns SL_OK, SL_ENOTFOUND when the row is missing,
 * not pending or not due yet, SL_ENOMEM or SL_EIO.
 */
int sl_store_dlq_claim(sl_store_t *st, int64_t id, int64_t now_ms,
                       sl_dlq_entry_t *out, void **bytes);

/**
 * Returns a claimed row whose retry could not be published to pending,
 * due at next_ms, undoing the claim's retry_count increment.
 * Returns SL_OK, SL_ENOTFOUND (not retrying) or SL_EIO.
 */
int sl_store_dlq_unclaim(sl_store_t *st, int64_t id, int64_t next_ms);

/**
 * Counts dead-letter rows by status. OUT: counts, indexed by
 * sl_dlq_status_t. Returns SL_OK or SL_EIO.
 */
int sl_store_dlq_status_counts(sl_store_t *st, int64_t counts[4]);

/**
 * Refreshes the PostgreSQL materialized views (sensor_stats and the hourly
 * rollup sensor_readings_hourly) with REFRESH MATERIALIZED VIEW
 * CONCURRENTLY, so readers keep the old contents meanwhile. The views are
 * as fresh as the last call: `sluice process` calls it every
 * views-refresh-seconds (sl_view_refresher). The SQLite store has no views
 * and returns SL_OK. Returns SL_OK or SL_EIO.
 */
int sl_store_refresh_views(sl_store_t *st);

/** Parses a status name ("pending", ...). Returns SL_OK or SL_EINVAL. */
int sl_dlq_status_parse(const char *name, sl_dlq_status_t *out);

/** Returns the reason code name of a DLQ class ("decode", ...). */
const char *sl_dlq_class_name(sl_dlq_class_t cls);

/** Returns the name of a DLQ status ("pending", ...). */
const char *sl_dlq_status_name(sl_dlq_status_t status);

/* ---- Schema registry rows (the schemas table) ---------------------------- */

/* One registered version of a subject. The strings are heap copies owned
 * by the row; sl_store_schema_rows_free() releases them. One id may appear
 * under several subjects: it names one schema, which any number of
 * subjects can register. */
typedef struct sl_store_schema_row {
    char *subject;
    int32_t version;  /* 1, 2, ... within the subject */
    int32_t id;       /* the same for every row of one normalized schema */
    char *schema;     /* the schema's JSON text as registered */
    char *normalized; /* the text schemas are compared by; NULL for a row
                       * stored before the column existed */
    int64_t created_at_ms;
} sl_store_schema_row_t;

/**
 * Stores schema as the next version of subject, in one transaction that
 * excludes other registrations, also those of other processes. normalized
 * is the schema in the form the caller compares schemas by (the registry
 * uses compact JSON with sorted keys).
 *
 * When subject already has a version with this normalized text (or, for a
 * row without one, this schema text), nothing is stored and that version
 * is returned: two registry servers may both have decided the schema is
 * new. Otherwise the new row takes the id of a row of any subject with
 * this normalized text, or the next free id.
 * OUT: *id, *version. Returns SL_OK, SL_EINVAL when the back end keeps no
 * schemas (its operation table leaves the entry NULL), or SL_EIO.
 */
int sl_store_schema_insert(sl_store_t *st, const char *subject,
                           const char *schema, const char *normalized,
                           int64_t now_ms, int32_t *id, int32_t *version);

/**
 * Sets the normalized text of version of subject when the row has none,
 * which is the case for rows stored before the column existed. A row that
 * has one, or no such row, is left alone.
 * Returns SL_OK, SL_EINVAL (no schema support) or SL_EIO.
 */
int sl_store_schema_set_normalized(sl_store_t *st, const char *subject,
                                   int32_t version, const char *normalized);

/**
 * Lists the versions of subject, oldest first, or every row ordered by
 * subject and version when subject is NULL. OUT: *rows (free with
 * sl_store_schema_rows_free, NULL when *n is 0), *n.
 * Returns SL_OK, SL_EINVAL (no schema support), SL_ENOMEM or SL_EIO.
 */
int sl_store_schema_list(sl_store_t *st, const char *subject,
                         sl_store_schema_row_t **rows, size_t *n);

/**
 * Fetches a row with schema id `id`; of several subjects sharing the id,
 * the first by subject and version. OUT: *row (free its strings with
 * sl_store_schema_row_fini).
 * Returns SL_OK, SL_ENOTFOUND, SL_EINVAL (no schema support) or SL_EIO.
 */
int sl_store_schema_get(sl_store_t *st, int32_t id, sl_store_schema_row_t *row);

/** Frees the strings of one row and zeroes it. */
void sl_store_schema_row_fini(sl_store_schema_row_t *row);

/** Frees an array of n rows from sl_store_schema_list. Accepts NULL. */
void sl_store_schema_rows_free(sl_store_schema_row_t *rows, size_t n);

/* ---- Schema registry compatibility levels (the schema_config table) ----- */

/* Maximum length of a level name, in bytes. The longest Confluent level
 * name, "FORWARD_TRANSITIVE", has 18. */
#define SL_STORE_LEVEL_MAX 31

/**
 * Fetches the compatibility level stored for subject, or the global level
 * when subject is NULL. The store keeps the name as given ("FULL"); the
 * table accepts only the Confluent level names. Nothing falls back here:
 * a subject without a level of its own is SL_ENOTFOUND.
 * OUT: level, SL_STORE_LEVEL_MAX + 1 bytes.
 * Returns SL_OK, SL_ENOTFOUND, SL_EINVAL (no schema support) or SL_EIO.
 */
int sl_store_schema_config_get(sl_store_t *st, const char *subject,
                               char level[SL_STORE_LEVEL_MAX + 1]);

/**
 * Stores the compatibility level of subject, or the global level when
 * subject is NULL, replacing an earlier one. Returns SL_OK, SL_EINVAL (an
 * empty subject, a level that is empty or too long, or no schema support)
 * or SL_EIO (also for a name that is not a Confluent level).
 */
int sl_store_schema_config_set(sl_store_t *st, const char *subject,
                               const char *level, int64_t now_ms);

/**
 * Deletes the level of subject, or the global level when subject is NULL,
 * in one statement. OUT: old_level (may be NULL), the deleted level,
 * SL_STORE_LEVEL_MAX + 1 bytes.
 * Returns SL_OK, SL_ENOTFOUND (none was stored), SL_EINVAL or SL_EIO.
 */
int sl_store_schema_config_delete(sl_store_t *st, const char *subject,
                                  char old_level[SL_STORE_LEVEL_MAX + 1]);

/* ---- API queries (store_sqlite_api.c, store_pg_api.c) -------------------- */

/* Filters of an alert listing. Unset filters: NULL, -1, INT64_MIN/MAX. */
typedef struct sl_alert_query {
    const char *sensor_id;
    int severity;     /* an sl_alert_severity_t, or -1 for any */
    int acknowledged; /* 0 or 1, or -1 for any */
    int64_t from_ms;  /* inclusive, on the alert's timestamp */
    int64_t to_ms;    /* exclusive */
    size_t limit;
} sl_alert_query_t;

/** Fills q with "no filter, limit 100". */
void sl_alert_query_init(sl_alert_query_t *q);

/**
 * Lists alerts matching q, newest first. OUT: out[0..*n).
 * Returns SL_OK or SL_EIO.
 */
int sl_store_alert_list(sl_store_t *st, const sl_alert_query_t *q,
                        sl_alert_t *out, size_t max, size_t *n);

/**
 * Marks alert id acknowledged; acknowledging twice is not an error.
 * OUT: *out (may be NULL), the row after the change.
 * Returns SL_OK, SL_ENOTFOUND or SL_EIO.
 */
int sl_store_alert_ack(sl_store_t *st, int64_t id, sl_alert_t *out);

/* Most products sl_store_event_stats ranks. */
#define SL_STORE_TOP_PRODUCTS_MAX 50

/* Purchases of one product over a time range. */
typedef struct sl_product_stats {
    int64_t product_id;
    char product_name[SL_TEXT_MAX + 1]; /* of its newest purchase */
    int64_t orders;                     /* purchase events */
    int64_t quantity;                   /* units; 1 per order without one */
    double revenue;                     /* sum of total, else price * qty */
} sl_product_stats_t;

/* Commerce figures of a time range. */
typedef struct sl_event_stats {
    int64_t events;                       /* all types */
    int64_t by_type[SL_EVENT_TYPE_COUNT]; /* indexed by sl_event_type_t */
    int64_t orders;                       /* purchase events */
    double revenue;                       /* summed as for products */
    int64_t sessions;                     /* distinct session_id */
    int64_t purchase_sessions;            /* of which with a purchase */
    sl_product_stats_t top[SL_STORE_TOP_PRODUCTS_MAX]; /* by revenue */
    size_t top_count;
} sl_event_stats_t;

/**
 * Computes commerce figures over events with timestamps in [from_ms,
 * to_ms), ranking at most top_max (<= SL_STORE_TOP_PRODUCTS_MAX) products
 * by revenue. Non-finite prices and totals are left out of the sums.
 * OUT: *out. Returns SL_OK or SL_EIO.
 */
int sl_store_event_stats(sl_store_t *st, int64_t from_ms, int64_t to_ms,
                         size_t top_max, sl_event_stats_t *out);

/**
 * Lists the newest commerce events with timestamps in [from_ms, to_ms),
 * of event_type (an sl_event_type_t, or -1 for any). OUT: out[0..*n).
 * Returns SL_OK or SL_EIO.
 */
int sl_store_events_latest(sl_store_t *st, int event_type, int64_t from_ms,
                           int64_t to_ms, sl_event_t *out, size_t max,
                           size_t *n);

/* One bucket of a downsampled reading series. */
typedef struct sl_history_point {
    int64_t start_ms; /* bucket start: from_ms + k * bucket_ms */
    int64_t count;    /* finite readings in the bucket */
    double min;
    double max;
    double avg;
} sl_history_point_t;

/**
 * Downsamples the finite readings of sensor_id with timestamps in
 * [from_ms, to_ms) into buckets of bucket_ms (> 0), oldest first, leaving
 * out empty buckets. OUT: out[0..*n). Returns SL_OK or SL_EIO.
 */
int sl_store_reading_history(sl_store_t *st, const char *sensor_id,
                             int64_t from_ms, int64_t to_ms, int64_t bucket_ms,
                             sl_history_point_t *out, size_t max, size_t *n);

#endif
