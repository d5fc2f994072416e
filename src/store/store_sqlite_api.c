/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Queries of the API that the original operation table does not cover:
 * filtered alert listings and acknowledgement, commerce figures, the
 * newest commerce events and a downsampled reading series. The public
 * functions of store.h live here; each runs the SQLite query itself and
 * passes a PostgreSQL handle on to store_pg_api.c.
 *
 * These queries serve the colder endpoints, so their statements are
 * prepared on each call rather than cached on the handle.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "store/store_api_int.h"
#include "store/store_int.h"
#include "util/err.h"
#include "util/log.h"

static bool is_postgres(const sl_store_t *st)
{
    return strcmp(st->ops->name, "postgres") == 0;
}

int sl_store__alert_type_parse(const char *name, sl_alert_type_t *out)
{
    for (int t = 0; t < SL_ALERT_TYPE_COUNT; t++) {
        if (name != NULL && strcmp(name, sl_alert_type_name(t)) == 0) {
            *out = (sl_alert_type_t)t;
            return SL_OK;
        }
    }
    return SL_EINVAL;
}

int sl_store__severity_parse(const char *name, sl_alert_severity_t *out)
{
    for (int s = 0; s < SL_SEVERITY_COUNT; s++) {
        if (name != NULL && strcmp(name, sl_alert_severity_name(s)) == 0) {
            *out = (sl_alert_severity_t)s;
            return SL_OK;
        }
    }
    return SL_EINVAL;
}

void sl_alert_query_init(sl_alert_query_t *q)
{
    memset(q, 0, sizeof(*q));
    q->severity = -1;
    q->acknowledged = -1;
    q->from_ms = INT64_MIN;
    q->to_ms = INT64_MAX;
    q->limit = 100;
}

static sqlite3_stmt *prepare(sl_sqlite_t *sq, const char *sql)
{
    sqlite3_stmt *stmt = NULL;

    if (sqlite3_prepare_v2(sq->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        sl_log_error("store",
                     "preparing an API query failed path=%s "
                     "error=\"%s\"",
                     sq->path, sqlite3_errmsg(sq->db));
        sqlite3_finalize(stmt);
        return NULL;
    }
    return stmt;
}

/* Logs a failed step or bind of what and finalizes stmt. Returns SL_EIO. */
static int fail(sl_sqlite_t *sq, sqlite3_stmt *stmt, const char *what)
{
    sl_log_error("store", "%s query failed path=%s error=\"%s\"", what,
                 sq->path, sqlite3_errmsg(sq->db));
    sqlite3_finalize(stmt);
    return SL_EIO;
}

static int bind_text_or_null(sqlite3_stmt *stmt, int index, const char *text)
{
    if (text == NULL)
        return sqlite3_bind_null(stmt, index);
    return sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC);
}

/* ---- alerts ------------------------------------------------------------ */

#define ALERT_COLUMNS                                                          \
    "id, alert_type, sensor_id, sensor_type, severity, message, value,"        \
    " anomaly_score, timestamp_ms, acknowledged"

static int sqlite_alert_list(sl_sqlite_t *sq, const sl_alert_query_t *q,
                             sl_alert_t *out, size_t max, size_t *n)
{
    static const char sql[] = "SELECT " ALERT_COLUMNS " FROM alerts"
                              " WHERE timestamp_ms >= ?1 AND timestamp_ms < ?2"
                              " AND (?3 IS NULL OR sensor_id = ?3)"
                              " AND (?4 IS NULL OR severity = ?4)"
                              " AND (?5 IS NULL OR acknowledged = ?5)"
                              " ORDER BY timestamp_ms DESC, id DESC LIMIT ?6";
    size_t limit = q->limit < max ? q->limit : max;
    sqlite3_stmt *stmt = prepare(sq, sql);
    int rc;

    *n = 0;
    if (stmt == NULL)
        return SL_EIO;
    rc = sqlite3_bind_int64(stmt, 1, q->from_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, q->to_ms);
    if (rc == SQLITE_OK)
        rc = bind_text_or_null(stmt, 3, q->sensor_id);
    if (rc == SQLITE_OK)
        rc = bind_text_or_null(
            stmt, 4,
            q->severity >= 0
                ? sl_alert_severity_name((sl_alert_severity_t)q->severity)
                : NULL);
    if (rc == SQLITE_OK && q->acknowledged >= 0)
        rc = sqlite3_bind_int(stmt, 5, q->acknowledged);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 6, (sqlite3_int64)limit);
    while (rc == SQLITE_OK && *n < limit) {
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            sl_sqlite__fill_alert(stmt, &out[(*n)++]);
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK && rc != SQLITE_DONE) {
        *n = 0;
        return fail(sq, stmt, "alert list");
    }
    sqlite3_finalize(stmt);
    return SL_OK;
}

int sl_store_alert_list(sl_store_t *st, const sl_alert_query_t *q,
                        sl_alert_t *out, size_t max, size_t *n)
{
    if (st == NULL || q == NULL || out == NULL || n == NULL)
        return SL_EINVAL;
    if (is_postgres(st))
        return sl_pg__alert_list(st, q, out, max, n);
    return sqlite_alert_list((sl_sqlite_t *)st, q, out, max, n);
}

static int sqlite_alert_ack(sl_sqlite_t *sq, int64_t id, sl_alert_t *out)
{
    static const char sql[] = "UPDATE alerts SET acknowledged = 1"
                              " WHERE id = ?1 RETURNING " ALERT_COLUMNS;
    sqlite3_stmt *stmt = prepare(sq, sql);
    sl_alert_t row;
    int rc;

    if (stmt == NULL)
        return SL_EIO;
    rc = sqlite3_bind_int64(stmt, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(stmt);
        return SL_ENOTFOUND;
    }
    if (rc != SQLITE_ROW)
        return fail(sq, stmt, "alert acknowledgement");
    sl_sqlite__fill_alert(stmt, &row);
    /* RETURNING rows are produced before the change commits, so the
     * statement runs to completion before it counts as done. */
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        return fail(sq, stmt, "alert acknowledgement");
    sqlite3_finalize(stmt);
    if (out != NULL)
        *out = row;
    return SL_OK;
}

int sl_store_alert_ack(sl_store_t *st, int64_t id, sl_alert_t *out)
{
    if (st == NULL)
        return SL_EINVAL;
    if (is_postgres(st))
        return sl_pg__alert_ack(st, id, out);
    return sqlite_alert_ack((sl_sqlite_t *)st, id, out);
}

/* ---- commerce ---------------------------------------------------------- */

/* Revenue of a purchase row: its total, else price times quantity (1 when
 * absent); rows whose amount is not finite count as 0. SQLite reads 9e999
 * as infinity. The bounds are not -+DBL_MAX because SQLite 3.40 parses that
 * literal as infinity when long double has only double precision, as under
 * valgrind. */
#define SQLITE_AMOUNT                                                          \
    "(CASE WHEN coalesce(total, price * coalesce(quantity, 1)) > -9e999"       \
    " AND coalesce(total, price * coalesce(quantity, 1)) < 9e999"              \
    " THEN coalesce(total, price * coalesce(quantity, 1)) ELSE 0 END)"

static int sqlite_event_totals(sl_sqlite_t *sq, int64_t from_ms, int64_t to_ms,
                               sl_event_stats_t *out)
{
    static const char sql[] =
        "SELECT event_type, count(*),"
        " sum(CASE WHEN event_type = 'purchase' THEN " SQLITE_AMOUNT
        " ELSE 0 END) FROM ecommerce_events"
        " WHERE timestamp_ms >= ?1 AND timestamp_ms < ?2"
        " GROUP BY event_type";
    static const char sessions_sql[] =
        "SELECT count(DISTINCT session_id), count(DISTINCT CASE WHEN"
        " event_type = 'purchase' THEN session_id END) FROM ecommerce_events"
        " WHERE timestamp_ms >= ?1 AND timestamp_ms < ?2";
    sqlite3_stmt *stmt = prepare(sq, sql);
    int rc;

    if (stmt == NULL)
        return SL_EIO;
    rc = sqlite3_bind_int64(stmt, 1, from_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, to_ms);
    while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        sl_event_type_t type;
        int64_t count = sqlite3_column_int64(stmt, 1);

        if (sl_event_type_parse((const char *)sqlite3_column_text(stmt, 0),
                                &type) != SL_OK)
            type = SL_EVENT_OTHER;
        out->by_type[type] += count;
        out->events += count;
        if (type == SL_EVENT_PURCHASE) {
            out->orders += count;
            out->revenue += sqlite3_column_double(stmt, 2);
        }
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE)
        return fail(sq, stmt, "commerce totals");
    sqlite3_finalize(stmt);

    stmt = prepare(sq, sessions_sql);
    if (stmt == NULL)
        return SL_EIO;
    rc = sqlite3_bind_int64(stmt, 1, from_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, to_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW)
        return fail(sq, stmt, "commerce sessions");
    out->sessions = sqlite3_column_int64(stmt, 0);
    out->purchase_sessions = sqlite3_column_int64(stmt, 1);
    sqlite3_finalize(stmt);
    return SL_OK;
}

static int sqlite_top_products(sl_sqlite_t *sq, int64_t from_ms, int64_t to_ms,
                               size_t top_max, sl_event_stats_t *out)
{
    /* max(timestamp_ms) makes SQLite take product_name from the newest
     * row of the group, a documented SQLite extension. */
    static const char sql[] =
        "SELECT product_id, product_name, max(timestamp_ms), count(*),"
        " sum(coalesce(quantity, 1)), sum(" SQLITE_AMOUNT ") AS revenue"
        " FROM ecommerce_events"
        " WHERE timestamp_ms >= ?1 AND timestamp_ms < ?2"
        " AND event_type = 'purchase' AND product_id IS NOT NULL"
        " GROUP BY product_id ORDER BY revenue DESC, product_id LIMIT ?3";
    sqlite3_stmt *stmt = prepare(sq, sql);
    int rc;

    if (stmt == NULL)
        return SL_EIO;
    rc = sqlite3_bind_int64(stmt, 1, from_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, to_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 3, (sqlite3_int64)top_max);
    while (rc == SQLITE_OK && out->top_count < top_max &&
           (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        sl_product_stats_t *p = &out->top[out->top_count++];

        p->product_id = sqlite3_column_int64(stmt, 0);
        sl_sqlite__copy_text(p->product_name, sizeof(p->product_name), stmt, 1);
        p->orders = sqlite3_column_int64(stmt, 3);
        p->quantity = sqlite3_column_int64(stmt, 4);
        p->revenue = sqlite3_column_double(stmt, 5);
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_OK)
        return fail(sq, stmt, "top products");
    sqlite3_finalize(stmt);
    return SL_OK;
}

int sl_store_event_stats(sl_store_t *st, int64_t from_ms, int64_t to_ms,
                         size_t top_max, sl_event_stats_t *out)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;

    if (st == NULL || out == NULL)
        return SL_EINVAL;
    memset(out, 0, sizeof(*out));
    if (top_max > SL_STORE_TOP_PRODUCTS_MAX)
        top_max = SL_STORE_TOP_PRODUCTS_MAX;
    if (is_postgres(st))
        return sl_pg__event_stats(st, from_ms, to_ms, top_max, out);
    if (sqlite_event_totals(sq, from_ms, to_ms, out) != SL_OK ||
        sqlite_top_products(sq, from_ms, to_ms, top_max, out) != SL_OK) {
        memset(out, 0, sizeof(*out));
        return SL_EIO;
    }
    return SL_OK;
}

/* Sets an optional text field and its presence bit from a column. */
static void event_text(sqlite3_stmt *stmt, int col, char *dst, size_t size,
                       uint32_t bit, sl_event_t *ev)
{
    if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
        return;
    sl_sqlite__copy_text(dst, size, stmt, col);
    ev->present |= bit;
}

static void fill_event(sqlite3_stmt *stmt, sl_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->timestamp_ms = sqlite3_column_int64(stmt, 0);
    sl_sqlite__copy_text(ev->event_id, sizeof(ev->event_id), stmt, 1);
    if (sl_event_type_parse((const char *)sqlite3_column_text(stmt, 2),
                            &ev->event_type) != SL_OK)
        ev->event_type = SL_EVENT_OTHER;
    sl_sqlite__copy_text(ev->user_id, sizeof(ev->user_id), stmt, 3);
    sl_sqlite__copy_text(ev->session_id, sizeof(ev->session_id), stmt, 4);
    if (sl_device_parse((const char *)sqlite3_column_text(stmt, 5),
                        &ev->device) != SL_OK)
        ev->device = SL_DEVICE_OTHER;
    sl_sqlite__copy_text(ev->ip_address, sizeof(ev->ip_address), stmt, 6);
    if (sqlite3_column_type(stmt, 7) != SQLITE_NULL) {
        ev->product_id = sqlite3_column_int64(stmt, 7);
        ev->present |= SL_EV_PRODUCT_ID;
    }
    event_text(stmt, 8, ev->product_name, sizeof(ev->product_name),
               SL_EV_PRODUCT_NAME, ev);
    event_text(stmt, 9, ev->category, sizeof(ev->category), SL_EV_CATEGORY, ev);
    if (sqlite3_column_type(stmt, 10) != SQLITE_NULL) {
        ev->quantity = sqlite3_column_int(stmt, 10);
        ev->present |= SL_EV_QUANTITY;
    }
    if (sqlite3_column_type(stmt, 11) != SQLITE_NULL) {
        ev->price = sqlite3_column_double(stmt, 11);
        ev->present |= SL_EV_PRICE;
    }
    if (sqlite3_column_type(stmt, 12) != SQLITE_NULL) {
        ev->total = sqlite3_column_double(stmt, 12);
        ev->present |= SL_EV_TOTAL;
    }
    event_text(stmt, 13, ev->currency, sizeof(ev->currency), SL_EV_CURRENCY,
               ev);
    event_text(stmt, 14, ev->page, sizeof(ev->page), SL_EV_PAGE, ev);
    if (sqlite3_column_type(stmt, 15) != SQLITE_NULL) {
        ev->duration_seconds = sqlite3_column_double(stmt, 15);
        ev->present |= SL_EV_DURATION;
    }
    event_text(stmt, 16, ev->payment_method, sizeof(ev->payment_method),
               SL_EV_PAYMENT_METHOD, ev);
    event_text(stmt, 17, ev->shipping_address, sizeof(ev->shipping_address),
               SL_EV_SHIPPING_ADDRESS, ev);
    event_text(stmt, 18, ev->query, sizeof(ev->query), SL_EV_QUERY, ev);
    if (sqlite3_column_type(stmt, 19) != SQLITE_NULL) {
        ev->results_count = sqlite3_column_int(stmt, 19);
        ev->present |= SL_EV_RESULTS_COUNT;
    }
}

int sl_store_events_latest(sl_store_t *st, int event_type, int64_t from_ms,
                           int64_t to_ms, sl_event_t *out, size_t max,
                           size_t *n)
{
    static const char sql[] =
        "SELECT timestamp_ms, event_id, event_type, user_id, session_id,"
        " device, ip_address, product_id, product_name, category, quantity,"
        " price, total, currency, page, duration_seconds, payment_method,"
        " shipping_address, query, results_count FROM ecommerce_events"
        " WHERE timestamp_ms >= ?1 AND timestamp_ms < ?2"
        " AND (?3 IS NULL OR event_type = ?3)"
        " ORDER BY timestamp_ms DESC, event_id DESC LIMIT ?4";
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt;
    int rc;

    if (st == NULL || out == NULL || n == NULL)
        return SL_EINVAL;
    *n = 0;
    if (is_postgres(st))
        return sl_pg__events_latest(st, event_type, from_ms, to_ms, out, max,
                                    n);
    stmt = prepare(sq, sql);
    if (stmt == NULL)
        return SL_EIO;
    rc = sqlite3_bind_int64(stmt, 1, from_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, to_ms);
    if (rc == SQLITE_OK)
        rc = bind_text_or_null(
            stmt, 3,
            event_type >= 0 ? sl_event_type_name((sl_event_type_t)event_type)
                            : NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 4, (sqlite3_int64)max);
    while (rc == SQLITE_OK && *n < max &&
           (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        fill_event(stmt, &out[(*n)++]);
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_OK) {
        *n = 0;
        return fail(sq, stmt, "latest events");
    }
    sqlite3_finalize(stmt);
    return SL_OK;
}

/* ---- reading history --------------------------------------------------- */

/*
 * XXX: sensor_readings has no (sensor_id, timestamp_ms) index, because it
 * slows inserts, so this walks every sensor's rows of [from, to). The API
 * caps the range it requests.
 */
int sl_store_reading_history(sl_store_t *st, const char *sensor_id,
                             int64_t from_ms, int64_t to_ms, int64_t bucket_ms,
                             sl_history_point_t *out, size_t max, size_t *n)
{
    static const char sql[] =
        "SELECT (timestamp_ms - ?2) / ?4 AS bucket, count(*), min(value),"
        " max(value), avg(value) FROM sensor_readings"
        " WHERE timestamp_ms >= ?2 AND timestamp_ms < ?3 AND sensor_id = ?1"
        " AND ingested_at_ms <> 0 AND value > -9e999 AND value < 9e999"
        " GROUP BY bucket ORDER BY bucket LIMIT ?5";
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt;
    int rc;

    if (st == NULL || sensor_id == NULL || out == NULL || n == NULL ||
        bucket_ms <= 0)
        return SL_EINVAL;
    *n = 0;
    if (is_postgres(st))
        return sl_pg__reading_history(st, sensor_id, from_ms, to_ms, bucket_ms,
                                      out, max, n);
    stmt = prepare(sq, sql);
    if (stmt == NULL)
        return SL_EIO;
    rc = sqlite3_bind_text(stmt, 1, sensor_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, from_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 3, to_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 4, bucket_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 5, (sqlite3_int64)max);
    while (rc == SQLITE_OK && *n < max &&
           (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        sl_history_point_t *p = &out[(*n)++];

        p->start_ms = from_ms + sqlite3_column_int64(stmt, 0) * bucket_ms;
        p->count = sqlite3_column_int64(stmt, 1);
        p->min = sl_sqlite__column_double(stmt, 2);
        p->max = sl_sqlite__column_double(stmt, 3);
        p->avg = sl_sqlite__column_double(stmt, 4);
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_OK) {
        *n = 0;
        return fail(sq, stmt, "reading history");
    }
    sqlite3_finalize(stmt);
    return SL_OK;
}
