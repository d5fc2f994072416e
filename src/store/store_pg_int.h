/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the PostgreSQL back end (store_pg*.c): the handle, the
 * prepared statements, parameter building and error classification.
 * Nothing outside src/store includes this.
 */
#ifndef SLUICE_STORE_STORE_PG_INT_H
#define SLUICE_STORE_STORE_PG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store/store_int.h"

/* Prepared statements, prepared on first use on each connection. */
enum sl_pg_stmt_id {
    SL_PG_INSERT_READING,
    SL_PG_INSERT_READINGS_STAGED,
    SL_PG_UPSERT_LATEST,
    SL_PG_UPSERT_LATEST_STAGED,
    SL_PG_INSERT_EVENT,
    SL_PG_INSERT_EVENTS_STAGED,
    SL_PG_UPSERT_AGGREGATE,
    SL_PG_RECOMPUTE_WINDOW,
    SL_PG_DELETE_EMPTY_WINDOW,
    SL_PG_CLEAR_WINDOWS,
    SL_PG_RECOMPUTE_WINDOWS,
    SL_PG_UPSERT_DLQ,
    SL_PG_RESOLVE_DLQ,
    SL_PG_SELECT_READINGS,
    SL_PG_SELECT_STATS,
    SL_PG_SELECT_AGGREGATES,
    SL_PG_SELECT_AGGREGATES_ALL,
    SL_PG_COUNT_READINGS,
    SL_PG_COUNT_DLQ,
    SL_PG_UPSERT_DETECTION,
    SL_PG_UPDATE_LATEST_DETECTION,
    SL_PG_INSERT_ALERT,
    SL_PG_SELECT_ALERTS,
    SL_PG_DLQ_LIST,
    SL_PG_DLQ_GET,
    SL_PG_DLQ_REPLAY,
    SL_PG_DLQ_EXISTS,
    SL_PG_DLQ_SCHEDULED,
    SL_PG_DLQ_REARM,
    SL_PG_DLQ_CLAIM,
    SL_PG_DLQ_UNCLAIM,
    SL_PG_DLQ_STATUS_COUNTS,
    SL_PG_STMT_COUNT,
};

/* SQL of each statement (store_pg_sql.c). */
extern const char *const sl_pg__stmt_sql[SL_PG_STMT_COUNT];

typedef struct sl_pg {
    sl_store_t base; /* first member: an sl_store_t * is an sl_pg_t * */
    PGconn *conn;
    char *conninfo;      /* the URL passed to sl_store_open */
    char label[128];     /* database and host, for log lines */
    uint64_t prepared;   /* bit i: statement i is prepared */
    int64_t retry_at_ms; /* no reconnect attempt before this time */
    int64_t backoff_ms;  /* wait after the next failed reconnect */
} sl_pg_t;

/* How a statement ended. */
enum sl_pg_outcome {
    SL_PG_OK = 0,
    SL_PG_ROW_ERROR = 1, /* SQLSTATE class 22 or 23: this row's data */
    SL_PG_FAILED = 2,    /* connection lost or server error: SL_EIO */
};

/* Up to SL_PG_MAX_PARAMS parameters of one statement, in text format
 * except bytea, which is sent in binary. */
#define SL_PG_MAX_PARAMS 24

typedef struct sl_pg_params {
    int n;
    const char *values[SL_PG_MAX_PARAMS];
    int lengths[SL_PG_MAX_PARAMS];
    int formats[SL_PG_MAX_PARAMS];
    char buf[SL_PG_MAX_PARAMS][32];
} sl_pg_params_t;

void sl_pg__param_text(sl_pg_params_t *p, const char *text);
void sl_pg__param_null(sl_pg_params_t *p);
void sl_pg__param_i64(sl_pg_params_t *p, int64_t value);
void sl_pg__param_f64(sl_pg_params_t *p, double value);
void sl_pg__param_bool(sl_pg_params_t *p, bool value);
void sl_pg__param_bytea(sl_pg_params_t *p, const void *data, size_t len);

/** Opens the PostgreSQL store at a "postgres://" or "postgresql://" URL. */
sl_store_t *sl_store__pg_open(const char *url, char *err, size_t err_size);

/**
 * Applies the migrations of files, as sl_sqlite__migrate_files does: a
 * table sorted by name ending with {NULL, NULL}. Tests pass their own.
 */
int sl_pg__migrate_files(sl_pg_t *pg, const struct sl_embedded_file *files,
                         char *err, size_t err_size);

/**
 * Makes sure the handle has a working connection, reconnecting when the
 * server went away, at most once per backoff interval (100 ms doubling to
 * 5 s). Returns SL_OK or SL_EIO.
 */
int sl_pg__ready(sl_pg_t *pg);

/**
 * Executes prepared statement id with p (may be NULL: no parameters),
 * preparing it first on this connection. Returns the result, which the
 * caller clears; NULL only when libpq is out of memory.
 */
PGresult *sl_pg__exec(sl_pg_t *pg, enum sl_pg_stmt_id id,
                      const sl_pg_params_t *p);

/** Classifies res (logging a failure with what). Does not clear it. */
enum sl_pg_outcome sl_pg__check(sl_pg_t *pg, const PGresult *res,
                                const char *what);

/** Runs a command without parameters (BEGIN, SAVEPOINT ...). Returns
 * SL_OK or SL_EIO, logging the failure. */
int sl_pg__command(sl_pg_t *pg, const char *sql);

/** Rolls back an open transaction, if the connection still has one. */
void sl_pg__rollback(sl_pg_t *pg);

/** Returns the error message of res, without the trailing newline. */
void sl_pg__error_text(const PGresult *res, char *out, size_t out_size);

/* Column accessors of text-format results. NULL reads as 0, NaN, false or
 * "". Text longer than the buffer is cut at a UTF-8 character boundary. */
int64_t sl_pg__get_i64(const PGresult *res, int row, int col);
double sl_pg__get_f64(const PGresult *res, int row, int col);
bool sl_pg__get_bool(const PGresult *res, int row, int col);
void sl_pg__get_text(const PGresult *res, int row, int col, char *dst,
                     size_t dst_size);

/** Returns the number of rows a command changed (PQcmdTuples). */
size_t sl_pg__changed(const PGresult *res);

/* Operations (store_pg_write.c, store_pg_read.c, store_pg_detect.c,
 * store_pg_dlq.c). */
int sl_pg__write(sl_store_t *st, const sl_store_batch_t *batch,
                 sl_store_result_t *result, sl_store_reject_cb reject,
                 void *reject_ctx);
int sl_pg__readings(sl_store_t *st, const sl_reading_query_t *q,
                    sl_reading_t *out, size_t max, size_t *n);
int sl_pg__sensor_stats(sl_store_t *st, int64_t from_ms, int64_t to_ms,
                        int sensor_type, sl_sensor_stats_t *out, size_t max,
                        size_t *n);
int sl_pg__aggregates(sl_store_t *st, const char *sensor_id, int64_t from_ms,
                      int64_t to_ms, sl_aggregate_t *out, size_t max,
                      size_t *n);
int64_t sl_pg__reading_count(sl_store_t *st);
int64_t sl_pg__dlq_count(sl_store_t *st);
int sl_pg__record_detections(sl_store_t *st, const sl_reading_t *readings,
                             size_t reading_count, const sl_alert_t *alerts,
                             size_t alert_count, bool *alert_new,
                             sl_store_detect_result_t *result);
/* Fills one alert from a row of id, alert_type, sensor_id, sensor_type,
 * severity, message, value, anomaly_score, timestamp_ms, acknowledged. */
void sl_pg__fill_alert(const PGresult *res, int row, sl_alert_t *a);
int sl_pg__alerts(sl_store_t *st, const char *sensor_id, sl_alert_t *out,
                  size_t max, size_t *n);
int sl_pg__dlq_list(sl_store_t *st, const sl_dlq_query_t *q,
                    sl_dlq_entry_t *out, size_t max, size_t *n);
int sl_pg__dlq_get(sl_store_t *st, int64_t id, sl_dlq_entry_t *out,
                   void **bytes);
int sl_pg__dlq_replay(sl_store_t *st, int64_t id, sl_dlq_status_t status,
                      int64_t now_ms, size_t *changed);
int sl_pg__dlq_scheduled(sl_store_t *st, int64_t *ids, int64_t *due_ms,
                         size_t max, size_t *n);
int sl_pg__dlq_rearm(sl_store_t *st, int64_t now_ms, size_t *changed);
int sl_pg__dlq_claim(sl_store_t *st, int64_t id, int64_t now_ms,
                     sl_dlq_entry_t *out, void **bytes);
int sl_pg__dlq_unclaim(sl_store_t *st, int64_t id, int64_t next_ms);
int sl_pg__dlq_status_counts(sl_store_t *st, int64_t counts[4]);

/** Adds the 10 reading columns shared by every reading statement:
 * timestamp_ms, sensor_id, sensor_type, value, location, anomaly,
 * battery_level, signal_strength, unit, anomaly_score. */
void sl_pg__param_reading(sl_pg_params_t *p, const sl_reading_t *rec);

/** Returns the IEEE-754 bit pattern of value, the key column value_bits. */
int64_t sl_pg__value_bits(double value);

#endif
