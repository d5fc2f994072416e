/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Queries of the SQLite store, used by the API: recent readings, per-sensor
 * statistics over raw rows, window aggregates and row counts.
 *
 * Other writers (the sqlite3 shell, an import) may have stored NaN, which
 * SQLite keeps as NULL, or an infinity. Readings return such a value as NaN
 * or an infinity so the API can render null; statistics skip the row.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "store/store_int.h"
#include "util/err.h"
#include "util/log.h"

/*
 * Copies column text into a fixed buffer. Rows written by sluice always
 * fit; longer text from another writer is cut at a UTF-8 character
 * boundary.
 */
void sl_sqlite__copy_text(char *dst, size_t dst_size, sqlite3_stmt *stmt,
                          int col)
{
    const char *text = (const char *)sqlite3_column_text(stmt, col);
    size_t len = text != NULL ? (size_t)sqlite3_column_bytes(stmt, col) : 0;

    if (len >= dst_size) {
        len = dst_size - 1;
        /* Back up over continuation bytes (10xxxxxx) to a lead byte. */
        while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--;
    }
    if (len > 0)
        memcpy(dst, text, len);
    dst[len] = '\0';
}

/* Returns a REAL column, with NULL (a NaN stored by another writer) as
 * NaN. */
double sl_sqlite__column_double(sqlite3_stmt *stmt, int col)
{
    if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
        return NAN;
    return sqlite3_column_double(stmt, col);
}

static sl_sensor_type_t column_sensor_type(sqlite3_stmt *stmt, int col)
{
    const char *name = (const char *)sqlite3_column_text(stmt, col);
    sl_sensor_type_t type;

    if (name == NULL || sl_sensor_type_parse(name, &type) != SL_OK)
        return SL_SENSOR_OTHER;
    return type;
}

/* Steps stmt into out[0..max) with fill() and resets it. Returns SL_OK or
 * SL_EIO, logging the query's name. */
static int collect_rows(sl_sqlite_t *sq, sqlite3_stmt *stmt, const char *what,
                        void (*fill)(sqlite3_stmt *, void *), void *out,
                        size_t row_size, size_t max, size_t *n)
{
    int rc = SQLITE_DONE;

    *n = 0;
    while (*n < max && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        fill(stmt, (char *)out + *n * row_size);
        (*n)++;
    }
    if (*n == max)
        rc = SQLITE_DONE;
    if (rc != SQLITE_DONE) {
        sl_log_error("store", "%s query failed path=%s error=\"%s\"", what,
                     sq->path, sqlite3_errmsg(sq->db));
        sqlite3_reset(stmt);
        *n = 0;
        return SL_EIO;
    }
    /* Reset ends the read transaction, so the WAL can be checkpointed. */
    sqlite3_reset(stmt);
    return SL_OK;
}

static void fill_reading(sqlite3_stmt *stmt, void *row)
{
    sl_reading_t *rec = row;

    memset(rec, 0, sizeof(*rec));
    rec->timestamp_ms = sqlite3_column_int64(stmt, 0);
    sl_sqlite__copy_text(rec->sensor_id, sizeof(rec->sensor_id), stmt, 1);
    rec->sensor_type = column_sensor_type(stmt, 2);
    rec->value = sl_sqlite__column_double(stmt, 3);
    sl_sqlite__copy_text(rec->location, sizeof(rec->location), stmt, 4);
    rec->anomaly = sqlite3_column_int(stmt, 5) != 0;
    rec->battery_level = sqlite3_column_int(stmt, 6);
    rec->signal_strength = sqlite3_column_int(stmt, 7);
    rec->has_unit = sqlite3_column_type(stmt, 8) != SQLITE_NULL;
    if (rec->has_unit)
        sl_sqlite__copy_text(rec->unit, sizeof(rec->unit), stmt, 8);
    rec->has_score = sqlite3_column_type(stmt, 9) != SQLITE_NULL;
    if (rec->has_score)
        rec->anomaly_score = sqlite3_column_double(stmt, 9);
}

/*
 * XXX: a sensor_id filter is applied while walking the time-ordered key.
 * A query for one sensor therefore reads the rows of all sensors until it
 * has `limit` matches: about limit times the sensor count, or the whole
 * range for a silent sensor. bench/store_sqlite_bench.c measured 8 ms for
 * the newest 100 of 1,000 sensors, against 0.05 ms with a (sensor_id,
 * timestamp_ms) index that cut inserts from 614k to 120k rows/s. Pass
 * from_ms to bound the scan.
 */
int sl_sqlite__readings(sl_store_t *st, const sl_reading_query_t *q,
                        sl_reading_t *out, size_t max, size_t *n)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt = sl_sqlite__stmt(sq, SL_SQLITE_SELECT_READINGS);
    size_t limit = q->limit < max ? q->limit : max;
    int rc;

    if (stmt == NULL)
        return SL_EIO;
    rc = sqlite3_bind_int64(stmt, 1, q->from_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, q->to_ms);
    if (rc == SQLITE_OK && q->sensor_id != NULL)
        rc = sqlite3_bind_text(stmt, 3, q->sensor_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && q->sensor_type >= 0)
        rc = sqlite3_bind_text(
            stmt, 4, sl_sensor_type_name((sl_sensor_type_t)q->sensor_type), -1,
            SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(stmt, 5, q->anomalies_only ? 1 : 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 6, (sqlite3_int64)limit);
    if (rc != SQLITE_OK) {
        sqlite3_reset(stmt);
        return SL_EIO;
    }
    return collect_rows(sq, stmt, "readings", fill_reading, out, sizeof(*out),
                        limit, n);
}

static void fill_stats(sqlite3_stmt *stmt, void *row)
{
    sl_sensor_stats_t *s = row;

    memset(s, 0, sizeof(*s));
    sl_sqlite__copy_text(s->sensor_id, sizeof(s->sensor_id), stmt, 0);
    s->sensor_type = column_sensor_type(stmt, 1);
    s->count = sqlite3_column_int64(stmt, 2);
    s->anomaly_count = sqlite3_column_int64(stmt, 3);
    s->min = sl_sqlite__column_double(stmt, 4);
    s->max = sl_sqlite__column_double(stmt, 5);
    s->avg = sl_sqlite__column_double(stmt, 6);
    s->first_ms = sqlite3_column_int64(stmt, 7);
    s->last_ms = sqlite3_column_int64(stmt, 8);
}

/*
 * Statistics come from the raw rows in the range, so they are exact for
 * any from/to, not rounded to windows. Rows with a NULL or infinite value
 * are skipped entirely: they add to no field, anomaly_count included.
 * avg is SQLite's avg(), a plain double sum divided by count.
 */
int sl_sqlite__sensor_stats(sl_store_t *st, int64_t from_ms, int64_t to_ms,
                            int sensor_type, sl_sensor_stats_t *out, size_t max,
                            size_t *n)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt = sl_sqlite__stmt(sq, SL_SQLITE_SELECT_STATS);
    int rc;

    if (stmt == NULL)
        return SL_EIO;
    rc = sqlite3_bind_int64(stmt, 1, from_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, to_ms);
    if (rc == SQLITE_OK && sensor_type >= 0)
        rc = sqlite3_bind_text(
            stmt, 3, sl_sensor_type_name((sl_sensor_type_t)sensor_type), -1,
            SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 4, (sqlite3_int64)max);
    if (rc != SQLITE_OK) {
        sqlite3_reset(stmt);
        return SL_EIO;
    }
    return collect_rows(sq, stmt, "sensor stats", fill_stats, out, sizeof(*out),
                        max, n);
}

static void fill_aggregate(sqlite3_stmt *stmt, void *row)
{
    sl_aggregate_t *agg = row;

    memset(agg, 0, sizeof(*agg));
    sl_sqlite__copy_text(agg->sensor_id, sizeof(agg->sensor_id), stmt, 0);
    agg->sensor_type = column_sensor_type(stmt, 1);
    agg->window_start_ms = sqlite3_column_int64(stmt, 2);
    agg->window_end_ms = sqlite3_column_int64(stmt, 3);
    agg->count = sqlite3_column_int64(stmt, 4);
    agg->min = sl_sqlite__column_double(stmt, 5);
    agg->max = sl_sqlite__column_double(stmt, 6);
    agg->avg = sl_sqlite__column_double(stmt, 7);
    agg->stddev = sl_sqlite__column_double(stmt, 8);
}

int sl_sqlite__aggregates(sl_store_t *st, const char *sensor_id,
                          int64_t from_ms, int64_t to_ms, sl_aggregate_t *out,
                          size_t max, size_t *n)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt = sl_sqlite__stmt(
        sq, sensor_id != NULL ? SL_SQLITE_SELECT_AGGREGATES
                              : SL_SQLITE_SELECT_AGGREGATES_ALL);
    int rc = SQLITE_OK;

    if (stmt == NULL)
        return SL_EIO;
    if (sensor_id != NULL)
        rc = sqlite3_bind_text(stmt, 1, sensor_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, from_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 3, to_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 4, (sqlite3_int64)max);
    if (rc != SQLITE_OK) {
        sqlite3_reset(stmt);
        return SL_EIO;
    }
    return collect_rows(sq, stmt, "aggregates", fill_aggregate, out,
                        sizeof(*out), max, n);
}

static int64_t count_rows(sl_sqlite_t *sq, enum sl_sqlite_stmt_id id)
{
    sqlite3_stmt *stmt = sl_sqlite__stmt(sq, id);
    int64_t count = -1;

    if (stmt == NULL)
        return -1;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        count = sqlite3_column_int64(stmt, 0);
    else
        sl_log_error("store", "count query failed path=%s error=\"%s\"",
                     sq->path, sqlite3_errmsg(sq->db));
    sqlite3_reset(stmt);
    return count;
}

int64_t sl_sqlite__reading_count(sl_store_t *st)
{
    return count_rows((sl_sqlite_t *)st, SL_SQLITE_COUNT_READINGS);
}

int64_t sl_sqlite__dlq_count(sl_store_t *st)
{
    return count_rows((sl_sqlite_t *)st, SL_SQLITE_COUNT_DLQ);
}
