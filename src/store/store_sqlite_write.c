/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Batch writes of the SQLite store: everything one processing step
 * produced (readings, events, window aggregates, window recomputations and
 * dead-letter rows) goes in with one BEGIN IMMEDIATE ... COMMIT.
 *
 * A row the database rejects (a CHECK or NOT NULL constraint, a value too
 * big) does not cost the batch its other rows. SQLite undoes only the
 * failing statement on such an error and keeps the transaction open, so
 * each row is one statement and the rejected one is reported through the
 * reject callback while the others are committed. Any other failure (disk
 * full, I/O error, lock timeout, read-only file, out of memory) rolls the
 * whole batch back and returns SL_EIO, so the caller can retry it whole.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Outcome of one row insert, beside SL_EIO. */
enum row_outcome {
    ROW_INSERTED = 1,
    ROW_DUPLICATE = 2,
    ROW_REJECTED = 3,
};

/* State of one sl_sqlite__write call. */
struct batch_writer {
    sl_sqlite_t *sq;
    int64_t now_ms;
    sl_store_reject_cb reject;
    void *reject_ctx;
    /* Rows of the batch the database rejected, so a rejected record does
     * not resolve its dead-letter row. NULL when the batch resolves none. */
    bool *reading_rejected;
    bool *event_rejected;
};

/* Returns true when rc means the database refused this row but the
 * transaction is still usable, as opposed to a failing database. */
static bool is_row_error(sqlite3 *db, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
        return !sqlite3_get_autocommit(db);
    default:
        return false;
    }
}

/*
 * Steps an insert or upsert whose parameters are bound (bind_rc is the
 * first binding error, if any) and resets it. Returns ROW_INSERTED when it
 * changed a row, ROW_DUPLICATE when its conflict clause skipped the row,
 * ROW_REJECTED after reporting a row error, or SL_EIO.
 */
static int finish_row(struct batch_writer *w, sqlite3_stmt *stmt, int bind_rc,
                      const char *kind, size_t index)
{
    sqlite3 *db = w->sq->db;
    char message[256];
    int rc = bind_rc == SQLITE_OK ? sqlite3_step(stmt) : bind_rc;

    if (rc == SQLITE_DONE) {
        int changes = sqlite3_changes(db);
        sqlite3_reset(stmt);
        return changes > 0 ? ROW_INSERTED : ROW_DUPLICATE;
    }

    /* Copy the message first: sqlite3_reset may replace it. */
    snprintf(message, sizeof(message), "%s", sqlite3_errmsg(db));
    sqlite3_reset(stmt);
    if (is_row_error(db, rc)) {
        sl_log_debug("store", "row rejected kind=%s index=%zu error=\"%s\"",
                     kind, index, message);
        if (w->reject != NULL)
            w->reject(w->reject_ctx, kind, index, message);
        return ROW_REJECTED;
    }
    sl_log_error("store", "write failed path=%s kind=%s error=\"%s\"",
                 w->sq->path, kind, message);
    return SL_EIO;
}

/* Binds text when present is true, else NULL. */
static int bind_text_opt(sqlite3_stmt *stmt, int idx, bool present,
                         const char *text)
{
    if (!present)
        return sqlite3_bind_null(stmt, idx);
    return sqlite3_bind_text(stmt, idx, text, -1, SQLITE_STATIC);
}

static int bind_double_opt(sqlite3_stmt *stmt, int idx, bool present,
                           double value)
{
    if (!present)
        return sqlite3_bind_null(stmt, idx);
    return sqlite3_bind_double(stmt, idx, value);
}

static int bind_int64_opt(sqlite3_stmt *stmt, int idx, bool present,
                          int64_t value)
{
    if (!present)
        return sqlite3_bind_null(stmt, idx);
    return sqlite3_bind_int64(stmt, idx, value);
}

/* Binds the parameters shared by the reading insert and the latest-reading
 * upsert (see stmt_sql in store_sqlite.c). A NaN value binds as NULL. */
static int bind_reading(sqlite3_stmt *stmt, const sl_reading_t *rec,
                        int64_t now_ms)
{
    int rc = sqlite3_bind_int64(stmt, 1, rec->timestamp_ms);

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 2, rec->sensor_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 3, sl_sensor_type_name(rec->sensor_type),
                               -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(stmt, 4, rec->value);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 5, rec->location, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(stmt, 6, rec->anomaly ? 1 : 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(stmt, 7, rec->battery_level);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(stmt, 8, rec->signal_strength);
    if (rc == SQLITE_OK)
        rc = bind_text_opt(stmt, 9, rec->has_unit, rec->unit);
    if (rc == SQLITE_OK)
        rc = bind_double_opt(stmt, 10, rec->has_score, rec->anomaly_score);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 11, now_ms);
    return rc;
}

/* Orders readings by sensor_id, then newest event time first. */
static int compare_sensor_newest(const void *a, const void *b)
{
    const sl_reading_t *ra = *(const sl_reading_t *const *)a;
    const sl_reading_t *rb = *(const sl_reading_t *const *)b;
    int cmp = strcmp(ra->sensor_id, rb->sensor_id);

    if (cmp != 0)
        return cmp;
    if (ra->timestamp_ms != rb->timestamp_ms)
        return ra->timestamp_ms > rb->timestamp_ms ? -1 : 1;
    return 0;
}

/* Binds a raw reading row: the shared columns plus value_bits, the exact
 * value as part of the reading's identity. */
static int bind_raw_reading(sqlite3_stmt *stmt, const sl_reading_t *rec,
                            int64_t now_ms)
{
    int rc = bind_reading(stmt, rec, now_ms);
    int64_t bits;

    memcpy(&bits, &rec->value, sizeof(bits));
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 12, bits);
    return rc;
}

/* Upserts the sensor_latest row of rec's sensor, then corrects its
 * sensor_type when the upsert replaced a row of another type. Returns a
 * row outcome or SL_EIO. */
static int upsert_latest(struct batch_writer *w, const sl_reading_t *rec,
                         size_t index)
{
    sqlite3_stmt *stmt = sl_sqlite__stmt(w->sq, SL_SQLITE_UPSERT_LATEST);
    int rc;

    if (stmt == NULL)
        return SL_EIO;
    rc = finish_row(w, stmt, bind_raw_reading(stmt, rec, w->now_ms), "latest",
                    index);
    if (rc != ROW_INSERTED)
        return rc;
    stmt = sl_sqlite__stmt(w->sq, SL_SQLITE_UPDATE_LATEST_TYPE);
    if (stmt == NULL)
        return SL_EIO;
    rc = sqlite3_bind_text(stmt, 2, rec->sensor_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 3, sl_sensor_type_name(rec->sensor_type),
                               -1, SQLITE_STATIC);
    return finish_row(w, stmt, rc, "latest", index);
}

/*
 * Upserts sensor_latest with the newest of the stored readings of each
 * sensor; the upsert itself keeps a row whose event time is newer. One
 * upsert per sensor instead of per reading: a batch of 10,000 readings
 * from 1,000 sensors costs 1,000 upserts. Small commits still cost about
 * one upsert per reading, which is why the processor defers these rows
 * (write_deferred_latest).
 */
static int write_latest(struct batch_writer *w, const sl_reading_t *readings,
                        const sl_reading_t **stored, size_t count)
{
    qsort(stored, count, sizeof(*stored), compare_sensor_newest);

    for (size_t i = 0; i < count; i++) {
        int rc;

        if (i > 0 &&
            strcmp(stored[i]->sensor_id, stored[i - 1]->sensor_id) == 0)
            continue;
        rc = upsert_latest(w, stored[i], (size_t)(stored[i] - readings));
        if (rc == SL_EIO)
            return SL_EIO;
    }
    return SL_OK;
}

int sl_sqlite__bind_raw_reading(sqlite3_stmt *stmt, const sl_reading_t *rec,
                                int64_t now_ms)
{
    return bind_raw_reading(stmt, rec, now_ms);
}

static int write_readings(struct batch_writer *w, const sl_store_batch_t *batch,
                          sl_store_result_t *result)
{
    const sl_reading_t **stored;
    size_t stored_count = 0;
    sqlite3_stmt *stmt;
    int rc = SL_OK;

    if (batch->reading_count == 0)
        return SL_OK;
    /* Allocation failure is reported as SL_EIO, as the contract of
     * sl_store_write allows no other error: the caller retries. */
    stored = malloc(batch->reading_count * sizeof(*stored));
    if (stored == NULL) {
        sl_log_error("store", "out of memory readings=%zu",
                     batch->reading_count);
        return SL_EIO;
    }

    /* Every row binds every parameter, so one fetch serves the batch. */
    stmt = sl_sqlite__stmt(w->sq, SL_SQLITE_INSERT_READING);
    if (stmt == NULL)
        rc = SL_EIO;
    for (size_t i = 0; i < batch->reading_count && rc == SL_OK; i++) {
        const sl_reading_t *rec = &batch->readings[i];
        int outcome;

        outcome = finish_row(w, stmt, bind_raw_reading(stmt, rec, w->now_ms),
                             "reading", i);
        if (outcome == SL_EIO) {
            rc = SL_EIO;
        } else if (outcome == ROW_INSERTED) {
            result->readings_inserted++;
            stored[stored_count++] = rec;
        } else if (outcome == ROW_DUPLICATE) {
            result->readings_duplicate++;
            stored[stored_count++] = rec;
        }
        if (batch->reading_duplicate != NULL)
            batch->reading_duplicate[i] = outcome == ROW_DUPLICATE;
        if (w->reading_rejected != NULL)
            w->reading_rejected[i] = outcome == ROW_REJECTED;
    }

    if (rc == SL_OK && !batch->latest_deferred)
        rc = write_latest(w, batch->readings, stored, stored_count);
    free(stored);
    return rc;
}

/* Upserts the latest rows a deferring writer handed over, newest per
 * sensor already; a rejected one is reported by its index in latest. */
static int write_deferred_latest(struct batch_writer *w,
                                 const sl_store_batch_t *batch)
{
    for (size_t i = 0; i < batch->latest_count; i++) {
        if (upsert_latest(w, &batch->latest[i], i) == SL_EIO)
            return SL_EIO;
    }
    return SL_OK;
}

static int bind_event(sqlite3_stmt *stmt, const sl_event_t *ev, int64_t now_ms)
{
    const uint32_t has = ev->present;
    int rc = sqlite3_bind_int64(stmt, 1, ev->timestamp_ms);

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 2, ev->event_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 3, sl_event_type_name(ev->event_type), -1,
                               SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 4, ev->user_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 5, ev->session_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 6, sl_device_name(ev->device), -1,
                               SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 7, ev->ip_address, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = bind_int64_opt(stmt, 8, has & SL_EV_PRODUCT_ID, ev->product_id);
    if (rc == SQLITE_OK)
        rc = bind_text_opt(stmt, 9, has & SL_EV_PRODUCT_NAME, ev->product_name);
    if (rc == SQLITE_OK)
        rc = bind_text_opt(stmt, 10, has & SL_EV_CATEGORY, ev->category);
    if (rc == SQLITE_OK)
        rc = bind_int64_opt(stmt, 11, has & SL_EV_QUANTITY, ev->quantity);
    if (rc == SQLITE_OK)
        rc = bind_double_opt(stmt, 12, has & SL_EV_PRICE, ev->price);
    if (rc == SQLITE_OK)
        rc = bind_double_opt(stmt, 13, has & SL_EV_TOTAL, ev->total);
    if (rc == SQLITE_OK)
        rc = bind_text_opt(stmt, 14, has & SL_EV_CURRENCY, ev->currency);
    if (rc == SQLITE_OK)
        rc = bind_text_opt(stmt, 15, has & SL_EV_PAGE, ev->page);
    if (rc == SQLITE_OK)
        rc = bind_double_opt(stmt, 16, has & SL_EV_DURATION,
                             ev->duration_seconds);
    if (rc == SQLITE_OK)
        rc = bind_text_opt(stmt, 17, has & SL_EV_PAYMENT_METHOD,
                           ev->payment_method);
    if (rc == SQLITE_OK)
        rc = bind_text_opt(stmt, 18, has & SL_EV_SHIPPING_ADDRESS,
                           ev->shipping_address);
    if (rc == SQLITE_OK)
        rc = bind_text_opt(stmt, 19, has & SL_EV_QUERY, ev->query);
    if (rc == SQLITE_OK)
        rc = bind_int64_opt(stmt, 20, has & SL_EV_RESULTS_COUNT,
                            ev->results_count);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 21, now_ms);
    return rc;
}

static int write_events(struct batch_writer *w, const sl_store_batch_t *batch,
                        sl_store_result_t *result)
{
    sqlite3_stmt *stmt = sl_sqlite__stmt(w->sq, SL_SQLITE_INSERT_EVENT);

    if (stmt == NULL && batch->event_count > 0)
        return SL_EIO;
    for (size_t i = 0; i < batch->event_count; i++) {
        int outcome;

        outcome =
            finish_row(w, stmt, bind_event(stmt, &batch->events[i], w->now_ms),
                       "event", i);
        if (outcome == SL_EIO)
            return SL_EIO;
        if (w->event_rejected != NULL)
            w->event_rejected[i] = outcome == ROW_REJECTED;
        if (outcome == ROW_INSERTED)
            result->events_inserted++;
        else if (outcome == ROW_DUPLICATE)
            result->events_duplicate++;
    }
    return SL_OK;
}

/* Upserts one aggregate row; kind names it in a rejection report. */
static int upsert_aggregate(struct batch_writer *w, const sl_aggregate_t *agg,
                            const char *kind, size_t index)
{
    sqlite3_stmt *stmt = sl_sqlite__stmt(w->sq, SL_SQLITE_UPSERT_AGGREGATE);
    int rc;

    if (stmt == NULL)
        return SL_EIO;
    rc = sqlite3_bind_text(stmt, 1, agg->sensor_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, agg->window_start_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 3, agg->window_end_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 4, sl_sensor_type_name(agg->sensor_type),
                               -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 5, agg->count);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(stmt, 6, agg->min);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(stmt, 7, agg->max);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(stmt, 8, agg->avg);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(stmt, 9, agg->stddev);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 10, w->now_ms);
    rc = finish_row(w, stmt, rc, kind, index);
    return rc == SL_EIO ? SL_EIO : SL_OK;
}

static int write_aggregates(struct batch_writer *w,
                            const sl_store_batch_t *batch)
{
    for (size_t i = 0; i < batch->aggregate_count; i++) {
        if (upsert_aggregate(w, &batch->aggregates[i], "aggregate", i) != SL_OK)
            return SL_EIO;
    }
    return SL_OK;
}

/* One window being recomputed: its key, position in the batch and the
 * running statistics (Welford's update, which keeps the variance accurate
 * where sum(x^2) - n*mean^2 would cancel). */
typedef struct window_acc {
    const sl_window_key_t *key;
    size_t index;
    double mean;
    double m2;
    sl_aggregate_t agg;
} window_acc_t;

static int compare_acc(const void *a, const void *b)
{
    const sl_window_key_t *ka = ((const window_acc_t *)a)->key;
    const sl_window_key_t *kb = ((const window_acc_t *)b)->key;

    if (ka->window_start_ms != kb->window_start_ms)
        return ka->window_start_ms < kb->window_start_ms ? -1 : 1;
    if (ka->window_end_ms != kb->window_end_ms)
        return ka->window_end_ms < kb->window_end_ms ? -1 : 1;
    return strcmp(ka->sensor_id, kb->sensor_id);
}

static int compare_sensor_acc(const void *sensor_id, const void *acc)
{
    return strcmp(sensor_id, ((const window_acc_t *)acc)->key->sensor_id);
}

static void acc_add(window_acc_t *acc, double x)
{
    sl_aggregate_t *agg = &acc->agg;
    double delta = x - acc->mean;

    agg->count++;
    acc->mean += delta / (double)agg->count;
    acc->m2 += delta * (x - acc->mean);
    if (agg->count == 1 || x < agg->min)
        agg->min = x;
    if (agg->count == 1 || x > agg->max)
        agg->max = x;
}

/*
 * Computes count, min, max, mean and population standard deviation of the
 * finite values of each (sensor, window) in acc[0..n), sorted by
 * compare_acc. The raw table is keyed by time first, so the rows of one
 * window are read once for every sensor that needs that window: after a
 * restart the first windows of thousands of sensors close together, and a
 * scan per sensor read each window thousands of times.
 */
static int compute_windows(struct batch_writer *w, window_acc_t *acc, size_t n)
{
    for (size_t g0 = 0, g1; g0 < n; g0 = g1) {
        const sl_window_key_t *key = acc[g0].key;
        sqlite3_stmt *stmt =
            sl_sqlite__stmt(w->sq, SL_SQLITE_SELECT_WINDOW_VALUES);
        int rc;

        for (g1 = g0 + 1; g1 < n; g1++) {
            if (acc[g1].key->window_start_ms != key->window_start_ms ||
                acc[g1].key->window_end_ms != key->window_end_ms)
                break;
        }
        if (stmt == NULL)
            return SL_EIO;
        sqlite3_bind_int64(stmt, 1, key->window_start_ms);
        sqlite3_bind_int64(stmt, 2, key->window_end_ms);
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            const char *sensor_id = (const char *)sqlite3_column_text(stmt, 0);
            window_acc_t *hit = sensor_id == NULL
                                    ? NULL
                                    : bsearch(sensor_id, &acc[g0], g1 - g0,
                                              sizeof(*acc), compare_sensor_acc);
            if (hit != NULL)
                acc_add(hit, sqlite3_column_double(stmt, 1));
        }
        sqlite3_reset(stmt);
        if (rc != SQLITE_DONE) {
            sl_log_error("store",
                         "window recompute failed path=%s "
                         "error=\"%s\"",
                         w->sq->path, sqlite3_errmsg(w->sq->db));
            return SL_EIO;
        }
    }
    return SL_OK;
}

/* Writes one recomputed window: upserts it, or deletes its row when no
 * finite value is left. */
static int write_recomputed(struct batch_writer *w, window_acc_t *acc)
{
    const sl_window_key_t *key = acc->key;
    sqlite3_stmt *stmt;
    int rc;

    if (acc->agg.count > 0) {
        snprintf(acc->agg.sensor_id, sizeof(acc->agg.sensor_id), "%s",
                 key->sensor_id);
        acc->agg.sensor_type = key->sensor_type;
        acc->agg.window_start_ms = key->window_start_ms;
        acc->agg.window_end_ms = key->window_end_ms;
        acc->agg.avg = acc->mean;
        acc->agg.stddev = sqrt(acc->m2 / (double)acc->agg.count);
        return upsert_aggregate(w, &acc->agg, "window", acc->index);
    }
    stmt = sl_sqlite__stmt(w->sq, SL_SQLITE_DELETE_AGGREGATE);
    if (stmt == NULL)
        return SL_EIO;
    rc = sqlite3_bind_text(stmt, 1, key->sensor_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, key->window_start_ms);
    return finish_row(w, stmt, rc, "window", acc->index) == SL_EIO ? SL_EIO
                                                                   : SL_OK;
}

/*
 * Recomputes each listed window from the raw rows, after this batch's
 * readings went in. A window left without finite values loses its row.
 */
static int write_recomputes(struct batch_writer *w,
                            const sl_store_batch_t *batch)
{
    size_t n = batch->recompute_count;
    window_acc_t *acc;
    int rc = SL_OK;

    if (n == 0)
        return SL_OK;
    acc = calloc(n, sizeof(*acc));
    if (acc == NULL)
        return SL_EIO; /* the caller retries the batch */
    for (size_t i = 0; i < n; i++) {
        acc[i].key = &batch->recompute[i];
        acc[i].index = i;
    }
    qsort(acc, n, sizeof(*acc), compare_acc);
    /* A window listed twice is computed and written once. */
    size_t unique = 0;
    for (size_t i = 0; i < n; i++) {
        if (unique == 0 || compare_acc(&acc[unique - 1], &acc[i]) != 0)
            acc[unique++] = acc[i];
    }
    n = unique;
    rc = compute_windows(w, acc, n);
    for (size_t i = 0; i < n && rc == SL_OK; i++)
        rc = write_recomputed(w, &acc[i]);
    free(acc);
    return rc;
}

/* Binds len bytes at data as a BLOB, or NULL when data is NULL. */
static int bind_blob_opt(sqlite3_stmt *stmt, int idx, const void *data,
                         size_t len)
{
    if (data == NULL)
        return sqlite3_bind_null(stmt, idx);
    return sqlite3_bind_blob64(stmt, idx, data, len, SQLITE_STATIC);
}

static int write_dlq_entry(struct batch_writer *w, const sl_dlq_entry_t *e,
                           size_t index)
{
    sqlite3_stmt *stmt = sl_sqlite__stmt(w->sq, SL_SQLITE_UPSERT_DLQ);
    int64_t first_ms =
        e->first_failure_ms != 0 ? e->first_failure_ms : w->now_ms;
    int64_t last_ms = e->last_failure_ms != 0 ? e->last_failure_ms : first_ms;
    int rc;

    if (stmt == NULL)
        return SL_EIO;
    rc = sqlite3_bind_text(stmt, 1, e->topic, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(stmt, 2, e->partition);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 3, e->offset);
    if (rc == SQLITE_OK)
        rc = bind_blob_opt(stmt, 4, e->key, e->key_len);
    if (rc == SQLITE_OK)
        rc = bind_blob_opt(stmt, 5, e->payload, e->payload_len);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 6, sl_dlq_class_name(e->error_class), -1,
                               SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 7, e->error, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(stmt, 8, e->retry_count);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 9, sl_dlq_status_name(e->status), -1,
                               SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 10, first_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 11, last_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 12, w->now_ms);
    if (rc == SQLITE_OK)
        rc = bind_int64_opt(stmt, 13, e->next_attempt_ms != 0,
                            e->next_attempt_ms);
    return finish_row(w, stmt, rc, "dlq", index) == SL_EIO ? SL_EIO : SL_OK;
}

static int write_dlq(struct batch_writer *w, const sl_store_batch_t *batch)
{
    for (size_t i = 0; i < batch->dlq_count; i++) {
        if (write_dlq_entry(w, &batch->dlq[i], i) != SL_OK)
            return SL_EIO;
    }
    return SL_OK;
}

/* Marks resolved the dead-letter rows of the retried records this batch
 * stored, skipping records whose own row was rejected. */
static int write_resolutions(struct batch_writer *w,
                             const sl_store_batch_t *batch,
                             sl_store_result_t *result)
{
    for (size_t i = 0; i < batch->resolution_count; i++) {
        const sl_dlq_resolution_t *r = &batch->resolutions[i];
        const bool *rejected =
            r->is_event ? w->event_rejected : w->reading_rejected;
        sqlite3_stmt *stmt;
        int rc;

        if (rejected[r->index])
            continue;
        stmt = sl_sqlite__stmt(w->sq, SL_SQLITE_RESOLVE_DLQ);
        if (stmt == NULL)
            return SL_EIO;
        rc = sqlite3_bind_text(stmt, 1, r->topic, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int(stmt, 2, r->partition);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(stmt, 3, r->offset);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(stmt, 4, w->now_ms);
        rc = finish_row(w, stmt, rc, "resolution", i);
        if (rc == SL_EIO)
            return SL_EIO;
        if (rc == ROW_INSERTED)
            result->dlq_resolved++;
    }
    return SL_OK;
}

/* Checks that every resolution names a row of the batch. */
static bool resolutions_valid(const sl_store_batch_t *batch)
{
    for (size_t i = 0; i < batch->resolution_count; i++) {
        const sl_dlq_resolution_t *r = &batch->resolutions[i];
        size_t rows = r->is_event ? batch->event_count : batch->reading_count;

        if (r->topic == NULL || r->index >= rows)
            return false;
    }
    return true;
}

/* Runs BEGIN, COMMIT or ROLLBACK through sqlite3_exec. */
static int exec_control(sl_sqlite_t *sq, const char *sql)
{
    int rc = sqlite3_exec(sq->db, sql, NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        sl_log_error("store", "%s failed path=%s error=\"%s\"", sql, sq->path,
                     sqlite3_errmsg(sq->db));
    return rc;
}

static int write_batch(struct batch_writer *w, const sl_store_batch_t *batch,
                       sl_store_result_t *counts);

int sl_sqlite__write(sl_store_t *st, const sl_store_batch_t *batch,
                     sl_store_result_t *result, sl_store_reject_cb reject,
                     void *reject_ctx)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    struct batch_writer w = {sq,  sl_time_now_ms(), reject, reject_ctx, NULL,
                             NULL};
    sl_store_result_t counts = {0};
    int rc;

    if (batch->resolution_count > 0) {
        if (!resolutions_valid(batch))
            return SL_EINVAL;
        /* One extra byte each, so an empty array still allocates. */
        w.reading_rejected = calloc(batch->reading_count + 1, sizeof(bool));
        w.event_rejected = calloc(batch->event_count + 1, sizeof(bool));
        if (w.reading_rejected == NULL || w.event_rejected == NULL) {
            sl_log_error("store", "out of memory resolutions=%zu",
                         batch->resolution_count);
            free(w.reading_rejected);
            free(w.event_rejected);
            return SL_EIO;
        }
    }

    rc = write_batch(&w, batch, &counts);
    free(w.reading_rejected);
    free(w.event_rejected);
    if (rc == SL_OK && result != NULL)
        *result = counts;
    return rc;
}

/* Writes the batch in one transaction. Returns SL_OK or SL_EIO. */
static int write_batch(struct batch_writer *w, const sl_store_batch_t *batch,
                       sl_store_result_t *counts)
{
    sl_sqlite_t *sq = w->sq;
    int rc;

    /* IMMEDIATE takes the write lock now, waiting up to the busy timeout,
     * instead of failing half way when a read lock cannot be upgraded. */
    if (exec_control(sq, "BEGIN IMMEDIATE") != SQLITE_OK)
        return SL_EIO;

    rc = write_readings(w, batch, counts);
    if (rc == SL_OK && batch->latest_deferred)
        rc = write_deferred_latest(w, batch);
    if (rc == SL_OK)
        rc = write_events(w, batch, counts);
    if (rc == SL_OK)
        rc = write_aggregates(w, batch);
    if (rc == SL_OK)
        rc = write_recomputes(w, batch);
    if (rc == SL_OK)
        rc = write_dlq(w, batch);
    if (rc == SL_OK)
        rc = write_resolutions(w, batch, counts);
    if (rc == SL_OK && exec_control(sq, "COMMIT") != SQLITE_OK)
        rc = SL_EIO;

    if (rc != SL_OK) {
        /* SQLite may have rolled back already (SQLITE_FULL, IOERR). */
        if (!sqlite3_get_autocommit(sq->db))
            exec_control(sq, "ROLLBACK");
        return SL_EIO;
    }
    return SL_OK;
}
