/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PostgreSQL side of the API queries of store.h (alert listing and
 * acknowledgement, commerce figures, newest commerce events, reading
 * history). store_sqlite_api.c calls these for a PostgreSQL handle.
 *
 * The statements are sent with PQexecParams rather than prepared, because
 * they serve the colder endpoints; parameters and results are text.
 */
#include <stdio.h>
#include <string.h>

#include "store/store_api_int.h"
#include "store/store_pg_int.h"
#include "util/err.h"
#include "util/log.h"

/* Runs sql with p. Returns the result on success (caller clears it), or
 * NULL after logging the failure of what. */
static PGresult *run(sl_pg_t *pg, const char *sql, const sl_pg_params_t *p,
                     const char *what)
{
    PGresult *res;

    if (sl_pg__ready(pg) != SL_OK)
        return NULL;
    res = PQexecParams(pg->conn, sql, p->n, NULL, p->values, p->lengths,
                       p->formats, 0);
    if (sl_pg__check(pg, res, what) != SL_PG_OK) {
        PQclear(res);
        return NULL;
    }
    return res;
}

static void param_text_or_null(sl_pg_params_t *p, const char *text)
{
    if (text != NULL)
        sl_pg__param_text(p, text);
    else
        sl_pg__param_null(p);
}

/* ---- alerts ------------------------------------------------------------ */

#define ALERT_COLUMNS                                                          \
    "id, alert_type, sensor_id, sensor_type, severity, message, value,"        \
    " anomaly_score, timestamp_ms, acknowledged"

/* Alert types or severities written by other tools that sluice does not
 * know read as threshold and info. */
void sl_pg__fill_alert(const PGresult *res, int row, sl_alert_t *a)
{
    char name[32];

    memset(a, 0, sizeof(*a));
    a->id = sl_pg__get_i64(res, row, 0);
    sl_pg__get_text(res, row, 1, name, sizeof(name));
    if (sl_store__alert_type_parse(name, &a->alert_type) != SL_OK)
        a->alert_type = SL_ALERT_THRESHOLD;
    sl_pg__get_text(res, row, 2, a->sensor_id, sizeof(a->sensor_id));
    sl_pg__get_text(res, row, 3, name, sizeof(name));
    if (sl_sensor_type_parse(name, &a->sensor_type) != SL_OK)
        a->sensor_type = SL_SENSOR_OTHER;
    sl_pg__get_text(res, row, 4, name, sizeof(name));
    if (sl_store__severity_parse(name, &a->severity) != SL_OK)
        a->severity = SL_SEVERITY_INFO;
    sl_pg__get_text(res, row, 5, a->message, sizeof(a->message));
    a->value = sl_pg__get_f64(res, row, 6);
    a->has_score = !PQgetisnull(res, row, 7);
    a->anomaly_score = a->has_score ? sl_pg__get_f64(res, row, 7) : 0.0;
    a->timestamp_ms = sl_pg__get_i64(res, row, 8);
    a->acknowledged = sl_pg__get_bool(res, row, 9);
}

int sl_pg__alert_list(sl_store_t *st, const sl_alert_query_t *q,
                      sl_alert_t *out, size_t max, size_t *n)
{
    static const char sql[] = "SELECT " ALERT_COLUMNS " FROM alerts"
                              " WHERE timestamp_ms >= $1 AND timestamp_ms < $2"
                              " AND ($3::text IS NULL OR sensor_id = $3)"
                              " AND ($4::text IS NULL OR severity = $4)"
                              " AND ($5::boolean IS NULL OR acknowledged = $5)"
                              " ORDER BY timestamp_ms DESC, id DESC LIMIT $6";
    size_t limit = q->limit < max ? q->limit : max;
    sl_pg_params_t p = {0};
    PGresult *res;

    *n = 0;
    sl_pg__param_i64(&p, q->from_ms);
    sl_pg__param_i64(&p, q->to_ms);
    param_text_or_null(&p, q->sensor_id);
    param_text_or_null(
        &p, q->severity >= 0
                ? sl_alert_severity_name((sl_alert_severity_t)q->severity)
                : NULL);
    if (q->acknowledged >= 0)
        sl_pg__param_bool(&p, q->acknowledged != 0);
    else
        sl_pg__param_null(&p);
    sl_pg__param_i64(&p, (int64_t)limit);
    res = run((sl_pg_t *)st, sql, &p, "alert list");
    if (res == NULL)
        return SL_EIO;
    for (int r = 0; r < PQntuples(res) && *n < limit; r++)
        sl_pg__fill_alert(res, r, &out[(*n)++]);
    PQclear(res);
    return SL_OK;
}

int sl_pg__alert_ack(sl_store_t *st, int64_t id, sl_alert_t *out)
{
    static const char sql[] = "UPDATE alerts SET acknowledged = true"
                              " WHERE id = $1 RETURNING " ALERT_COLUMNS;
    sl_pg_params_t p = {0};
    PGresult *res;
    int rc = SL_ENOTFOUND;

    sl_pg__param_i64(&p, id);
    res = run((sl_pg_t *)st, sql, &p, "alert acknowledgement");
    if (res == NULL)
        return SL_EIO;
    if (PQntuples(res) > 0) {
        if (out != NULL)
            sl_pg__fill_alert(res, 0, out);
        rc = SL_OK;
    }
    PQclear(res);
    return rc;
}

/* ---- commerce ---------------------------------------------------------- */

/* Revenue of a purchase row, as in the SQLite store: total, else price
 * times quantity; NaN and infinities count as 0. */
#define PG_AMOUNT                                                              \
    "(CASE WHEN coalesce(total, price * coalesce(quantity, 1))"                \
    " > '-Infinity'::float8 AND coalesce(total, price * coalesce(quantity,"    \
    " 1)) < 'Infinity'::float8 THEN coalesce(total, price *"                   \
    " coalesce(quantity, 1)) ELSE 0 END)"

int sl_pg__event_stats(sl_store_t *st, int64_t from_ms, int64_t to_ms,
                       size_t top_max, sl_event_stats_t *out)
{
    static const char totals_sql[] =
        "SELECT event_type, count(*), coalesce(sum(CASE WHEN event_type ="
        " 'purchase' THEN " PG_AMOUNT " ELSE 0 END), 0)"
        " FROM ecommerce_events WHERE timestamp_ms >= $1 AND timestamp_ms < $2"
        " GROUP BY event_type";
    static const char sessions_sql[] =
        "SELECT count(DISTINCT session_id), count(DISTINCT CASE WHEN"
        " event_type = 'purchase' THEN session_id END) FROM ecommerce_events"
        " WHERE timestamp_ms >= $1 AND timestamp_ms < $2";
    static const char top_sql[] =
        "SELECT product_id, (array_agg(product_name ORDER BY timestamp_ms"
        " DESC))[1], count(*), sum(coalesce(quantity, 1)),"
        " sum(" PG_AMOUNT ") AS revenue FROM ecommerce_events"
        " WHERE timestamp_ms >= $1 AND timestamp_ms < $2"
        " AND event_type = 'purchase' AND product_id IS NOT NULL"
        " GROUP BY product_id ORDER BY revenue DESC, product_id LIMIT $3";
    sl_pg_t *pg = (sl_pg_t *)st;
    sl_pg_params_t p = {0};
    PGresult *res;

    sl_pg__param_i64(&p, from_ms);
    sl_pg__param_i64(&p, to_ms);
    res = run(pg, totals_sql, &p, "commerce totals");
    if (res == NULL)
        return SL_EIO;
    for (int r = 0; r < PQntuples(res); r++) {
        sl_event_type_t type;
        int64_t count = sl_pg__get_i64(res, r, 1);

        if (sl_event_type_parse(PQgetvalue(res, r, 0), &type) != SL_OK)
            type = SL_EVENT_OTHER;
        out->by_type[type] += count;
        out->events += count;
        if (type == SL_EVENT_PURCHASE) {
            out->orders += count;
            out->revenue += sl_pg__get_f64(res, r, 2);
        }
    }
    PQclear(res);

    res = run(pg, sessions_sql, &p, "commerce sessions");
    if (res == NULL || PQntuples(res) != 1) {
        PQclear(res);
        return SL_EIO;
    }
    out->sessions = sl_pg__get_i64(res, 0, 0);
    out->purchase_sessions = sl_pg__get_i64(res, 0, 1);
    PQclear(res);

    sl_pg__param_i64(&p, (int64_t)top_max);
    res = run(pg, top_sql, &p, "top products");
    if (res == NULL)
        return SL_EIO;
    for (int r = 0; r < PQntuples(res) && out->top_count < top_max; r++) {
        sl_product_stats_t *prod = &out->top[out->top_count++];

        prod->product_id = sl_pg__get_i64(res, r, 0);
        sl_pg__get_text(res, r, 1, prod->product_name,
                        sizeof(prod->product_name));
        prod->orders = sl_pg__get_i64(res, r, 2);
        prod->quantity = sl_pg__get_i64(res, r, 3);
        prod->revenue = sl_pg__get_f64(res, r, 4);
    }
    PQclear(res);
    return SL_OK;
}

/* Sets an optional text field and its presence bit from a column. */
static void event_text(const PGresult *res, int row, int col, char *dst,
                       size_t size, uint32_t bit, sl_event_t *ev)
{
    if (PQgetisnull(res, row, col))
        return;
    sl_pg__get_text(res, row, col, dst, size);
    ev->present |= bit;
}

static void fill_event(const PGresult *res, int r, sl_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->timestamp_ms = sl_pg__get_i64(res, r, 0);
    sl_pg__get_text(res, r, 1, ev->event_id, sizeof(ev->event_id));
    if (sl_event_type_parse(PQgetvalue(res, r, 2), &ev->event_type) != SL_OK)
        ev->event_type = SL_EVENT_OTHER;
    sl_pg__get_text(res, r, 3, ev->user_id, sizeof(ev->user_id));
    sl_pg__get_text(res, r, 4, ev->session_id, sizeof(ev->session_id));
    if (sl_device_parse(PQgetvalue(res, r, 5), &ev->device) != SL_OK)
        ev->device = SL_DEVICE_OTHER;
    sl_pg__get_text(res, r, 6, ev->ip_address, sizeof(ev->ip_address));
    if (!PQgetisnull(res, r, 7)) {
        ev->product_id = sl_pg__get_i64(res, r, 7);
        ev->present |= SL_EV_PRODUCT_ID;
    }
    event_text(res, r, 8, ev->product_name, sizeof(ev->product_name),
               SL_EV_PRODUCT_NAME, ev);
    event_text(res, r, 9, ev->category, sizeof(ev->category), SL_EV_CATEGORY,
               ev);
    if (!PQgetisnull(res, r, 10)) {
        ev->quantity = (int32_t)sl_pg__get_i64(res, r, 10);
        ev->present |= SL_EV_QUANTITY;
    }
    if (!PQgetisnull(res, r, 11)) {
        ev->price = sl_pg__get_f64(res, r, 11);
        ev->present |= SL_EV_PRICE;
    }
    if (!PQgetisnull(res, r, 12)) {
        ev->total = sl_pg__get_f64(res, r, 12);
        ev->present |= SL_EV_TOTAL;
    }
    event_text(res, r, 13, ev->currency, sizeof(ev->currency), SL_EV_CURRENCY,
               ev);
    event_text(res, r, 14, ev->page, sizeof(ev->page), SL_EV_PAGE, ev);
    if (!PQgetisnull(res, r, 15)) {
        ev->duration_seconds = sl_pg__get_f64(res, r, 15);
        ev->present |= SL_EV_DURATION;
    }
    event_text(res, r, 16, ev->payment_method, sizeof(ev->payment_method),
               SL_EV_PAYMENT_METHOD, ev);
    event_text(res, r, 17, ev->shipping_address, sizeof(ev->shipping_address),
               SL_EV_SHIPPING_ADDRESS, ev);
    event_text(res, r, 18, ev->query, sizeof(ev->query), SL_EV_QUERY, ev);
    if (!PQgetisnull(res, r, 19)) {
        ev->results_count = (int32_t)sl_pg__get_i64(res, r, 19);
        ev->present |= SL_EV_RESULTS_COUNT;
    }
}

int sl_pg__events_latest(sl_store_t *st, int event_type, int64_t from_ms,
                         int64_t to_ms, sl_event_t *out, size_t max, size_t *n)
{
    static const char sql[] =
        "SELECT timestamp_ms, event_id, event_type, user_id, session_id,"
        " device, ip_address, product_id, product_name, category, quantity,"
        " price, total, currency, page, duration_seconds, payment_method,"
        " shipping_address, query, results_count FROM ecommerce_events"
        " WHERE timestamp_ms >= $1 AND timestamp_ms < $2"
        " AND ($3::text IS NULL OR event_type = $3)"
        " ORDER BY timestamp_ms DESC, event_id DESC LIMIT $4";
    sl_pg_params_t p = {0};
    PGresult *res;

    sl_pg__param_i64(&p, from_ms);
    sl_pg__param_i64(&p, to_ms);
    param_text_or_null(&p, event_type >= 0
                               ? sl_event_type_name((sl_event_type_t)event_type)
                               : NULL);
    sl_pg__param_i64(&p, (int64_t)max);
    res = run((sl_pg_t *)st, sql, &p, "latest events");
    if (res == NULL)
        return SL_EIO;
    for (int r = 0; r < PQntuples(res) && *n < max; r++)
        fill_event(res, r, &out[(*n)++]);
    PQclear(res);
    return SL_OK;
}

/* ---- reading history --------------------------------------------------- */

int sl_pg__reading_history(sl_store_t *st, const char *sensor_id,
                           int64_t from_ms, int64_t to_ms, int64_t bucket_ms,
                           sl_history_point_t *out, size_t max, size_t *n)
{
    /* In PostgreSQL NaN sorts above every number, so "< 'Infinity'"
     * leaves out NaN as well as +Infinity. */
    static const char sql[] =
        "SELECT (timestamp_ms - $2) / $4 AS bucket, count(*), min(value),"
        " max(value), avg(value) FROM sensor_readings"
        " WHERE timestamp_ms >= $2 AND timestamp_ms < $3 AND sensor_id = $1"
        " AND ingested_at_ms <> 0 AND value > '-Infinity'::float8"
        " AND value < 'Infinity'::float8"
        " GROUP BY bucket ORDER BY bucket LIMIT $5";
    sl_pg_params_t p = {0};
    PGresult *res;

    sl_pg__param_text(&p, sensor_id);
    sl_pg__param_i64(&p, from_ms);
    sl_pg__param_i64(&p, to_ms);
    sl_pg__param_i64(&p, bucket_ms);
    sl_pg__param_i64(&p, (int64_t)max);
    res = run((sl_pg_t *)st, sql, &p, "reading history");
    if (res == NULL)
        return SL_EIO;
    for (int r = 0; r < PQntuples(res) && *n < max; r++) {
        sl_history_point_t *pt = &out[(*n)++];

        pt->start_ms = from_ms + sl_pg__get_i64(res, r, 0) * bucket_ms;
        pt->count = sl_pg__get_i64(res, r, 1);
        pt->min = sl_pg__get_f64(res, r, 2);
        pt->max = sl_pg__get_f64(res, r, 3);
        pt->avg = sl_pg__get_f64(res, r, 4);
    }
    PQclear(res);
    return SL_OK;
}
