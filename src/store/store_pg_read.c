/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Queries of the PostgreSQL store, used by the API: recent readings,
 * per-sensor statistics over raw rows, window aggregates, alerts and row
 * counts. Results come back in text format and are parsed here.
 *
 * Other writers (psql, an import) may have stored NULL, NaN or an
 * infinity. Readings return such a value as NaN or an infinity so the API
 * can render null; statistics skip the row.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "store/store_pg_int.h"
#include "util/err.h"
#include "util/log.h"

static sl_sensor_type_t get_sensor_type(const PGresult *res, int row, int col)
{
    sl_sensor_type_t type;

    if (PQgetisnull(res, row, col) ||
        sl_sensor_type_parse(PQgetvalue(res, row, col), &type) != SL_OK)
        return SL_SENSOR_OTHER;
    return type;
}

/* Runs a query and fills out[0..max) with fill(). Returns SL_OK or SL_EIO. */
static int collect_rows(sl_pg_t *pg, enum sl_pg_stmt_id id,
                        const sl_pg_params_t *p, const char *what,
                        void (*fill)(const PGresult *, int, void *), void *out,
                        size_t row_size, size_t max, size_t *n)
{
    PGresult *res;
    int rows;

    *n = 0;
    if (sl_pg__ready(pg) != SL_OK)
        return SL_EIO;
    res = sl_pg__exec(pg, id, p);
    if (sl_pg__check(pg, res, what) != SL_PG_OK) {
        PQclear(res);
        return SL_EIO;
    }
    rows = PQntuples(res);
    for (int r = 0; r < rows && *n < max; r++) {
        fill(res, r, (char *)out + *n * row_size);
        (*n)++;
    }
    PQclear(res);
    return SL_OK;
}

static void fill_reading(const PGresult *res, int row, void *out)
{
    sl_reading_t *rec = out;

    memset(rec, 0, sizeof(*rec));
    rec->timestamp_ms = sl_pg__get_i64(res, row, 0);
    sl_pg__get_text(res, row, 1, rec->sensor_id, sizeof(rec->sensor_id));
    rec->sensor_type = get_sensor_type(res, row, 2);
    rec->value = sl_pg__get_f64(res, row, 3);
    sl_pg__get_text(res, row, 4, rec->location, sizeof(rec->location));
    rec->anomaly = sl_pg__get_bool(res, row, 5);
    rec->battery_level = (int32_t)sl_pg__get_i64(res, row, 6);
    rec->signal_strength = (int32_t)sl_pg__get_i64(res, row, 7);
    rec->has_unit = !PQgetisnull(res, row, 8);
    if (rec->has_unit)
        sl_pg__get_text(res, row, 8, rec->unit, sizeof(rec->unit));
    rec->has_score = !PQgetisnull(res, row, 9);
    if (rec->has_score)
        rec->anomaly_score = sl_pg__get_f64(res, row, 9);
}

static void param_limit(sl_pg_params_t *p, size_t limit)
{
    sl_pg__param_i64(p, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
}

/* Binds a sensor type filter: its name, or NULL for every type (< 0). */
static void param_sensor_type(sl_pg_params_t *p, int sensor_type)
{
    if (sensor_type >= 0)
        sl_pg__param_text(p,
                          sl_sensor_type_name((sl_sensor_type_t)sensor_type));
    else
        sl_pg__param_null(p);
}

/*
 * XXX: as in the SQLite store, a sensor_id filter is applied while walking
 * the time-ordered primary key, so a query for one sensor reads the rows
 * of all sensors until it has `limit` matches. There is no (sensor_id,
 * timestamp_ms) index because of its insert cost. Pass from_ms to bound
 * the scan.
 */
int sl_pg__readings(sl_store_t *st, const sl_reading_query_t *q,
                    sl_reading_t *out, size_t max, size_t *n)
{
    size_t limit = q->limit < max ? q->limit : max;
    sl_pg_params_t p = {0};

    sl_pg__param_i64(&p, q->from_ms);
    sl_pg__param_i64(&p, q->to_ms);
    if (q->sensor_id != NULL)
        sl_pg__param_text(&p, q->sensor_id);
    else
        sl_pg__param_null(&p);
    param_sensor_type(&p, q->sensor_type);
    sl_pg__param_bool(&p, q->anomalies_only);
    param_limit(&p, limit);
    return collect_rows((sl_pg_t *)st, SL_PG_SELECT_READINGS, &p, "readings",
                        fill_reading, out, sizeof(*out), limit, n);
}

static void fill_stats(const PGresult *res, int row, void *out)
{
    sl_sensor_stats_t *s = out;

    memset(s, 0, sizeof(*s));
    sl_pg__get_text(res, row, 0, s->sensor_id, sizeof(s->sensor_id));
    s->sensor_type = get_sensor_type(res, row, 1);
    s->count = sl_pg__get_i64(res, row, 2);
    s->anomaly_count = sl_pg__get_i64(res, row, 3);
    s->min = sl_pg__get_f64(res, row, 4);
    s->max = sl_pg__get_f64(res, row, 5);
    s->avg = sl_pg__get_f64(res, row, 6);
    s->first_ms = sl_pg__get_i64(res, row, 7);
    s->last_ms = sl_pg__get_i64(res, row, 8);
}

/* Statistics come from the raw rows in the range, exact for any from/to.
 * Rows with a NULL, NaN or infinite value add to no field. */
int sl_pg__sensor_stats(sl_store_t *st, int64_t from_ms, int64_t to_ms,
                        int sensor_type, sl_sensor_stats_t *out, size_t max,
                        size_t *n)
{
    sl_pg_params_t p = {0};

    sl_pg__param_i64(&p, from_ms);
    sl_pg__param_i64(&p, to_ms);
    param_sensor_type(&p, sensor_type);
    param_limit(&p, max);
    return collect_rows((sl_pg_t *)st, SL_PG_SELECT_STATS, &p, "sensor stats",
                        fill_stats, out, sizeof(*out), max, n);
}

static void fill_aggregate(const PGresult *res, int row, void *out)
{
    sl_aggregate_t *agg = out;

    memset(agg, 0, sizeof(*agg));
    sl_pg__get_text(res, row, 0, agg->sensor_id, sizeof(agg->sensor_id));
    agg->sensor_type = get_sensor_type(res, row, 1);
    agg->window_start_ms = sl_pg__get_i64(res, row, 2);
    agg->window_end_ms = sl_pg__get_i64(res, row, 3);
    agg->count = sl_pg__get_i64(res, row, 4);
    agg->min = sl_pg__get_f64(res, row, 5);
    agg->max = sl_pg__get_f64(res, row, 6);
    agg->avg = sl_pg__get_f64(res, row, 7);
    agg->stddev = sl_pg__get_f64(res, row, 8);
}

int sl_pg__aggregates(sl_store_t *st, const char *sensor_id, int64_t from_ms,
                      int64_t to_ms, sl_aggregate_t *out, size_t max, size_t *n)
{
    sl_pg_params_t p = {0};

    if (sensor_id != NULL)
        sl_pg__param_text(&p, sensor_id);
    else
        sl_pg__param_null(&p);
    sl_pg__param_i64(&p, from_ms);
    sl_pg__param_i64(&p, to_ms);
    param_limit(&p, max);
    return collect_rows((sl_pg_t *)st,
                        sensor_id != NULL ? SL_PG_SELECT_AGGREGATES
                                          : SL_PG_SELECT_AGGREGATES_ALL,
                        &p, "aggregates", fill_aggregate, out, sizeof(*out),
                        max, n);
}

static int64_t count_rows(sl_pg_t *pg, enum sl_pg_stmt_id id)
{
    PGresult *res;
    int64_t count = -1;

    if (sl_pg__ready(pg) != SL_OK)
        return -1;
    res = sl_pg__exec(pg, id, NULL);
    if (sl_pg__check(pg, res, "count") == SL_PG_OK && PQntuples(res) == 1)
        count = sl_pg__get_i64(res, 0, 0);
    PQclear(res);
    return count;
}

int64_t sl_pg__reading_count(sl_store_t *st)
{
    return count_rows((sl_pg_t *)st, SL_PG_COUNT_READINGS);
}

int64_t sl_pg__dlq_count(sl_store_t *st)
{
    return count_rows((sl_pg_t *)st, SL_PG_COUNT_DLQ);
}

/* collect_rows' row callback for alerts. */
static void fill_alert_row(const PGresult *res, int row, void *out)
{
    sl_pg__fill_alert(res, row, out);
}

int sl_pg__alerts(sl_store_t *st, const char *sensor_id, sl_alert_t *out,
                  size_t max, size_t *n)
{
    sl_pg_params_t p = {0};

    if (sensor_id != NULL)
        sl_pg__param_text(&p, sensor_id);
    else
        sl_pg__param_null(&p);
    param_limit(&p, max);
    return collect_rows((sl_pg_t *)st, SL_PG_SELECT_ALERTS, &p, "alerts",
                        fill_alert_row, out, sizeof(*out), max, n);
}
