/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the store module, shared by its files and by its white-box
 * tests; nothing outside src/store and tests/unit/store includes this.
 *
 * store.c dispatches every public call through the back end's operation
 * table, so adding a back end (store_pg.c) means one more open function and
 * one more table, not changes to the callers.
 */
#ifndef SLUICE_STORE_STORE_INT_H
#define SLUICE_STORE_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store/store.h"

/* ---------------------------------------------------------------------- */
/* Back-end operation table                                                */
/* ---------------------------------------------------------------------- */

/* One back end's implementation of the public calls. Arguments are already
 * validated by store.c: pointers are non-NULL unless store.h allows NULL. */
struct sl_store_ops {
    const char *name; /* "sqlite", "postgres" */
    void (*close)(sl_store_t *st);
    int (*migrate)(sl_store_t *st, char *err, size_t err_size);
    int (*schema_version)(sl_store_t *st);
    int (*write)(sl_store_t *st, const sl_store_batch_t *batch,
                 sl_store_result_t *result, sl_store_reject_cb reject,
                 void *reject_ctx);
    int (*readings)(sl_store_t *st, const sl_reading_query_t *q,
                    sl_reading_t *out, size_t max, size_t *n);
    int (*sensor_stats)(sl_store_t *st, int64_t from_ms, int64_t to_ms,
                        int sensor_type, sl_sensor_stats_t *out, size_t max,
                        size_t *n);
    int (*aggregates)(sl_store_t *st, const char *sensor_id, int64_t from_ms,
                      int64_t to_ms, sl_aggregate_t *out, size_t max,
                      size_t *n);
    int64_t (*reading_count)(sl_store_t *st);
    int64_t (*dlq_count)(sl_store_t *st);
    int (*record_detections)(sl_store_t *st, const sl_reading_t *readings,
                             size_t reading_count, const sl_alert_t *alerts,
                             size_t alert_count, bool *alert_new,
                             sl_store_detect_result_t *result);
    int (*alerts)(sl_store_t *st, const char *sensor_id, sl_alert_t *out,
                  size_t max, size_t *n);
    int (*dlq_list)(sl_store_t *st, const sl_dlq_query_t *q,
                    sl_dlq_entry_t *out, size_t max, size_t *n);
    int (*dlq_get)(sl_store_t *st, int64_t id, sl_dlq_entry_t *out,
                   void **bytes);
    int (*dlq_replay)(sl_store_t *st, int64_t id, sl_dlq_status_t status,
                      int64_t now_ms, size_t *changed);
    int (*dlq_scheduled)(sl_store_t *st, int64_t *ids, int64_t *due_ms,
                         size_t max, size_t *n);
    int (*dlq_rearm)(sl_store_t *st, int64_t now_ms, size_t *changed);
    int (*dlq_claim)(sl_store_t *st, int64_t id, int64_t now_ms,
                     sl_dlq_entry_t *out, void **bytes);
    int (*dlq_unclaim)(sl_store_t *st, int64_t id, int64_t next_ms);
    int (*dlq_status_counts)(sl_store_t *st, int64_t counts[4]);
    /* Schema registry rows and levels. Optional: a back end that leaves
     * it NULL makes the sl_store_schema_* calls return SL_EINVAL. */
    const struct sl_store_registry_ops *registry;
    /* NULL when the back end keeps no materialized views (SQLite). */
    int (*refresh_views)(sl_store_t *st);
};

/* One back end's implementation of the schema registry calls of store.h,
 * kept apart from sl_store_ops because only the registry server uses them.
 * subject NULL in the schema_config calls names the global level. */
struct sl_store_registry_ops {
    int (*schema_insert)(sl_store_t *st, const char *subject,
                         const char *schema, const char *normalized,
                         int64_t now_ms, int32_t *id, int32_t *version);
    int (*schema_set_normalized)(sl_store_t *st, const char *subject,
                                 int32_t version, const char *normalized);
    int (*schema_list)(sl_store_t *st, const char *subject,
                       sl_store_schema_row_t **rows, size_t *n);
    int (*schema_get)(sl_store_t *st, int32_t id, sl_store_schema_row_t *row);
    int (*config_get)(sl_store_t *st, const char *subject,
                      char level[SL_STORE_LEVEL_MAX + 1]);
    int (*config_set)(sl_store_t *st, const char *subject, const char *level,
                      int64_t now_ms);
    int (*config_delete)(sl_store_t *st, const char *subject,
                         char old_level[SL_STORE_LEVEL_MAX + 1]);
};

/* The registry operations of each back end (store_sqlite_schemas.c,
 * store_pg_registry.c). */
extern const struct sl_store_registry_ops sl_sqlite__registry_ops;
extern const struct sl_store_registry_ops sl_pg__registry_ops;

/* The schema_config row of the global level: no subject is empty, because
 * the registry rejects an empty path segment. */
#define SL_STORE_GLOBAL_SUBJECT ""

/* The part every back end's handle starts with. */
struct sl_store {
    const struct sl_store_ops *ops;
};

/* A file compiled into the binary by cmake/embed.cmake. */
struct sl_embedded_file {
    const char *name;
    const char *text;
};

/* Applies one migration file inside its own transaction; version is the
 * number its name starts with. backend is the back end's handle. */
typedef int (*sl_store_migration_fn)(void *backend,
                                     const struct sl_embedded_file *file,
                                     int version, char *err, size_t err_size);

/**
 * Runs apply on each file of a table sorted by name and ending with
 * {NULL, NULL}, checking that every name starts with a version number
 * above the previous one and an underscore ("002_alerts.sql").
 * OUT: *last_version, the highest version in the table.
 * Returns SL_OK, or SL_EIO with the failing file and reason in err.
 */
int sl_store__run_migrations(void *backend,
                             const struct sl_embedded_file *files,
                             sl_store_migration_fn apply, int *last_version,
                             char *err, size_t err_size);

/* ---------------------------------------------------------------------- */
/* SQLite back end (store_sqlite*.c)                                       */
/* ---------------------------------------------------------------------- */

/* Prepared statements kept on the handle, prepared on first use. */
enum sl_sqlite_stmt_id {
    SL_SQLITE_INSERT_READING,
    SL_SQLITE_UPSERT_LATEST,
    SL_SQLITE_UPDATE_LATEST_TYPE,
    SL_SQLITE_INSERT_EVENT,
    SL_SQLITE_UPSERT_AGGREGATE,
    SL_SQLITE_SELECT_WINDOW_VALUES,
    SL_SQLITE_DELETE_AGGREGATE,
    SL_SQLITE_UPSERT_DLQ,
    SL_SQLITE_SELECT_READINGS,
    SL_SQLITE_SELECT_STATS,
    SL_SQLITE_SELECT_AGGREGATES,
    SL_SQLITE_SELECT_AGGREGATES_ALL,
    SL_SQLITE_COUNT_READINGS,
    SL_SQLITE_COUNT_DLQ,
    SL_SQLITE_UPSERT_DETECTION,
    SL_SQLITE_UPDATE_LATEST_DETECTION,
    SL_SQLITE_INSERT_ALERT,
    SL_SQLITE_SELECT_ALERTS,
    SL_SQLITE_RESOLVE_DLQ,
    SL_SQLITE_STMT_COUNT,
};

/* More than the registry's statements, so each stays cached. */
#define SL_SQLITE_SCHEMA_STMTS 16

typedef struct sl_sqlite {
    sl_store_t base; /* first member: an sl_store_t * is an sl_sqlite_t * */
    sqlite3 *db;
    char *path; /* what was passed to sqlite3_open_v2, for messages */
    sqlite3_stmt *stmts[SL_SQLITE_STMT_COUNT];
    /* NULL unless the file is in WAL mode and writable. */
    struct sl_sqlite_checkpointer *checkpointer;
    /* The schema registry's statements, prepared on first use. */
    sqlite3_stmt *schema_stmts[SL_SQLITE_SCHEMA_STMTS];
} sl_sqlite_t;

/**
 * Takes WAL checkpoints of a writable WAL-mode connection off the
 * committing thread (see store_sqlite_checkpoint.c). Returns SQLITE_OK or
 * SQLITE_NOMEM.
 */
int sl_sqlite__checkpointer_attach(sl_sqlite_t *sq);

/** Stops the checkpoint thread, if any; safe when none was attached. */
void sl_sqlite__checkpointer_detach(sl_sqlite_t *sq);

/** Counts the checkpoints a store's commits caused so far, for tests. */
void sl_store__sqlite_checkpoints(sl_store_t *st, uint64_t *background,
                                  uint64_t *in_place);

/** Opens the SQLite store at path (a file name or a "file:" URI). */
sl_store_t *sl_store__sqlite_open(const char *path, char *err, size_t err_size);

/**
 * Returns the cached statement id, reset and with its bindings cleared,
 * preparing it on first use. Returns NULL (and logs) when preparing fails.
 */
sqlite3_stmt *sl_sqlite__stmt(sl_sqlite_t *sq, enum sl_sqlite_stmt_id id);

/**
 * Applies the migrations of files, a table sorted by name and ending with
 * {NULL, NULL}, whose names start with their version number ("001_...").
 * sl_store_migrate passes the embedded files; tests pass their own.
 */
int sl_sqlite__migrate_files(sl_sqlite_t *sq,
                             const struct sl_embedded_file *files, char *err,
                             size_t err_size);

/** Returns the connection of an SQLite store, for tests. */
sqlite3 *sl_store__sqlite_db(sl_store_t *st);

int sl_sqlite__write(sl_store_t *st, const sl_store_batch_t *batch,
                     sl_store_result_t *result, sl_store_reject_cb reject,
                     void *reject_ctx);
int sl_sqlite__readings(sl_store_t *st, const sl_reading_query_t *q,
                        sl_reading_t *out, size_t max, size_t *n);
int sl_sqlite__sensor_stats(sl_store_t *st, int64_t from_ms, int64_t to_ms,
                            int sensor_type, sl_sensor_stats_t *out, size_t max,
                            size_t *n);
int sl_sqlite__aggregates(sl_store_t *st, const char *sensor_id,
                          int64_t from_ms, int64_t to_ms, sl_aggregate_t *out,
                          size_t max, size_t *n);
int64_t sl_sqlite__reading_count(sl_store_t *st);
int64_t sl_sqlite__dlq_count(sl_store_t *st);
int sl_sqlite__record_detections(sl_store_t *st, const sl_reading_t *readings,
                                 size_t reading_count, const sl_alert_t *alerts,
                                 size_t alert_count, bool *alert_new,
                                 sl_store_detect_result_t *result);
/* Copies a text column into dst, cut at a UTF-8 character boundary when
 * too long; NULL reads as "". */
void sl_sqlite__copy_text(char *dst, size_t dst_size, sqlite3_stmt *stmt,
                          int col);
/* Returns a REAL column, with NULL (how SQLite stores a NaN) as NaN. */
double sl_sqlite__column_double(sqlite3_stmt *stmt, int col);
/* Fills one alert from a row of id, alert_type, sensor_id, sensor_type,
 * severity, message, value, anomaly_score, timestamp_ms, acknowledged. */
void sl_sqlite__fill_alert(sqlite3_stmt *stmt, sl_alert_t *a);
int sl_sqlite__alerts(sl_store_t *st, const char *sensor_id, sl_alert_t *out,
                      size_t max, size_t *n);

/* Dead-letter queries and state changes (store_sqlite_dlq.c). */
int sl_sqlite__dlq_list(sl_store_t *st, const sl_dlq_query_t *q,
                        sl_dlq_entry_t *out, size_t max, size_t *n);
int sl_sqlite__dlq_get(sl_store_t *st, int64_t id, sl_dlq_entry_t *out,
                       void **bytes);
int sl_sqlite__dlq_replay(sl_store_t *st, int64_t id, sl_dlq_status_t status,
                          int64_t now_ms, size_t *changed);
int sl_sqlite__dlq_scheduled(sl_store_t *st, int64_t *ids, int64_t *due_ms,
                             size_t max, size_t *n);
int sl_sqlite__dlq_rearm(sl_store_t *st, int64_t now_ms, size_t *changed);
int sl_sqlite__dlq_claim(sl_store_t *st, int64_t id, int64_t now_ms,
                         sl_dlq_entry_t *out, void **bytes);
int sl_sqlite__dlq_unclaim(sl_store_t *st, int64_t id, int64_t next_ms);
int sl_sqlite__dlq_status_counts(sl_store_t *st, int64_t counts[4]);

/**
 * Binds the 12 parameters of a sensor_readings row (see stmt_sql in
 * store_sqlite.c). Returns the first SQLite error code, or SQLITE_OK.
 */
int sl_sqlite__bind_raw_reading(sqlite3_stmt *stmt, const sl_reading_t *rec,
                                int64_t now_ms);

#endif
