/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The REST routes: each turns a parsed request into a status and a JSON
 * body, reading from the store. Nothing here touches sockets; server.c
 * calls sl_api__dispatch() for every request, and tests call it directly.
 *
 * Error policy: whatever the client sent becomes 404, 405 or 422 with a
 * {"detail": "..."} body; a failing store becomes 503. Doubles pass
 * through sl_json_set_double(), so NaN or infinity from a row that some
 * other writer stored is rendered as null and the body stays valid JSON.
 */
#include "api/api_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/json.h"
#include "obs/metrics.h"
#include "util/err.h"
#include "util/timeutil.h"

#define CONTENT_JSON "application/json"
#define CONTENT_METRICS "text/plain; version=0.0.4"

#define LATEST_LIMIT_DEFAULT 10
#define LATEST_LIMIT_MAX 100
#define ANOMALIES_LIMIT_DEFAULT 50
#define ANOMALIES_LIMIT_MAX 1000
#define DLQ_LIMIT_DEFAULT 50
#define DLQ_LIMIT_MAX 1000
#define WINDOW_MINUTES_DEFAULT 60
#define WINDOW_MINUTES_MAX 1440

/* The stats query starts with room for this many sensors and doubles it
 * while the store fills the whole array, up to STATS_SENSORS_MAX. */
#define STATS_SENSORS_INITIAL 256
#define STATS_SENSORS_MAX 65536

typedef sl_api_call_t request_t;

/* A route handler fills req->resp. Returns SL_OK or SL_ENOMEM. */
typedef int (*route_fn)(request_t *req);

/* Route flags. */
#define ROUTE_WRITE 1u /* needs the bearer token when one is set */

typedef struct route {
    const char *path; /* "{id}": a positive decimal row id; "{sensor_id}":
                       * one non-empty path segment */
    const char *method;
    route_fn handler;
    sl_api_route_t id;
    const char *const *params; /* allowed query parameter names */
    unsigned flags;
} route_t;

static const char *const route_labels[SL_API_ROUTE_COUNT] = {
    [SL_API_ROUTE_HEALTH] = "/",
    [SL_API_ROUTE_LATEST] = "/api/v1/sensors/latest",
    [SL_API_ROUTE_STATS] = "/api/v1/sensors/stats",
    [SL_API_ROUTE_ANOMALIES] = "/api/v1/sensors/anomalies",
    [SL_API_ROUTE_METRICS] = "/metrics",
    [SL_API_ROUTE_DLQ_LIST] = "/api/v1/dlq",
    [SL_API_ROUTE_DLQ_ENTRY] = "/api/v1/dlq/{id}",
    [SL_API_ROUTE_DLQ_REPLAY] = "/api/v1/dlq/{id}/replay",
    [SL_API_ROUTE_ALERTS] = "/api/v1/alerts",
    [SL_API_ROUTE_ALERT_ACK] = "/api/v1/alerts/{id}/ack",
    [SL_API_ROUTE_ECOM_STATS] = "/api/v1/ecommerce/stats",
    [SL_API_ROUTE_ECOM_LATEST] = "/api/v1/ecommerce/events/latest",
    [SL_API_ROUTE_HISTORY] = "/api/v1/sensors/{sensor_id}/history",
    [SL_API_ROUTE_INGEST_READINGS] = "/api/v1/sensors/readings",
    [SL_API_ROUTE_INGEST_EVENTS] = "/api/v1/ecommerce/events",
    [SL_API_ROUTE_STATIC] = "static",
    [SL_API_ROUTE_UNMATCHED] = "unmatched",
};

const char *sl_api__route_label(sl_api_route_t route)
{
    if ((unsigned)route >= SL_API_ROUTE_COUNT)
        return route_labels[SL_API_ROUTE_UNMATCHED];
    return route_labels[route];
}

/* Serializes root as the response body. Takes over root, which may be NULL
 * after a failed allocation. */
int sl_api__respond_json(sl_api_response_t *resp, int status, json_t *root)
{
    char *body;

    if (root == NULL)
        return SL_ENOMEM;
    body = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (body == NULL)
        return SL_ENOMEM;

    resp->status = status;
    resp->content_type = CONTENT_JSON;
    resp->body = body;
    resp->body_len = strlen(body);
    return SL_OK;
}

/*
 * Responds {"detail": detail}. A detail cut short by its buffer may end in
 * part of a UTF-8 sequence. Those trailing bytes are dropped, because
 * jansson accepts only valid UTF-8.
 */
int sl_api__respond_detail(sl_api_response_t *resp, int status,
                           const char *detail)
{
    size_t len = strlen(detail);
    json_t *text;

    while (len > 0 && !sl_utf8_valid(detail, len))
        len--;
    text = json_stringn(detail, len);
    if (text == NULL)
        return SL_ENOMEM;
    return sl_api__respond_json(resp, status,
                                json_pack("{s:o}", "detail", text));
}

/* Responds 503 for a failed store call. The store logs the failure with
 * the database's message, so nothing is logged here. */
int sl_api__respond_store_error(sl_api_response_t *resp, const char *operation)
{
    char detail[SL_API_DETAIL_MAX];

    snprintf(detail, sizeof(detail), "store unavailable: %s failed", operation);
    return sl_api__respond_detail(resp, 503, detail);
}

/* Responds 422 with the message a typed reader left in req->detail. */
int sl_api__respond_invalid(request_t *req)
{
    return sl_api__respond_detail(req->resp, 422, req->detail);
}

/* ---- GET / ------------------------------------------------------------ */

/* The store counts as available when its schema version can be read and
 * at least one migration is applied: version 0 has no tables to query. */
static int handle_health(request_t *req)
{
    bool store_ok = req->st != NULL && sl_store_schema_version(req->st) > 0;
    json_t *root = json_pack("{s:s, s:s, s:s, s:s}", "status",
                             store_ok ? "healthy" : "unhealthy", "service",
                             "sluice", "version", SL_API_VERSION, "store",
                             store_ok ? "ok" : "unavailable");

    if (root == NULL ||
        sl_json_set_time(root, "timestamp", sl_time_now_ms()) != 0) {
        json_decref(root);
        return SL_ENOMEM;
    }
    return sl_api__respond_json(req->resp, store_ok ? 200 : 503, root);
}

/* ---- readings: GET /api/v1/sensors/latest and /anomalies --------------- */

/* Runs q and responds {"count": N, key: [reading...]}. */
static int respond_readings(request_t *req, const sl_reading_query_t *q,
                            const char *key)
{
    sl_reading_t *rows = calloc(q->limit, sizeof(*rows));
    json_t *list = json_array();
    size_t n = 0;
    int rc = SL_ENOMEM;

    if (rows == NULL || list == NULL)
        goto out;
    if (req->st == NULL ||
        sl_store_readings(req->st, q, rows, q->limit, &n) != SL_OK) {
        rc = sl_api__respond_store_error(req->resp, "reading query");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(list, sl_reading_to_json(&rows[i])) != 0)
            goto out;
    }
    rc = sl_api__respond_json(
        req->resp, 200,
        json_pack("{s:I, s:O}", "count", (json_int_t)n, key, list));
out:
    json_decref(list);
    free(rows);
    return rc;
}

/* Reads from and to; when both are given, from must be before to. */
int sl_api__read_range(request_t *req, int64_t *from_ms, bool *has_from,
                       int64_t *to_ms, bool *has_to)
{
    const sl_api_query_t *q = req->query;
    size_t size = sizeof(req->detail);

    if (sl_api__query_time(q, "from", from_ms, has_from, req->detail, size) ||
        sl_api__query_time(q, "to", to_ms, has_to, req->detail, size))
        return SL_EINVAL;
    if (*has_from && *has_to && *from_ms >= *to_ms) {
        snprintf(req->detail, size, "from: must be earlier than to");
        return SL_EINVAL;
    }
    return SL_OK;
}

static const char *const latest_params[] = {"sensor_id", "sensor_type", "limit",
                                            "from",      "to",          NULL};

static int handle_latest(request_t *req)
{
    const sl_api_query_t *q = req->query;
    size_t size = sizeof(req->detail);
    int64_t limit = LATEST_LIMIT_DEFAULT;
    sl_reading_query_t rq;
    bool has_from, has_to;

    sl_reading_query_init(&rq);
    if (sl_api__query_text(q, "sensor_id", SL_ID_MAX, &rq.sensor_id,
                           req->detail, size) ||
        sl_api__query_sensor_type(q, "sensor_type", &rq.sensor_type,
                                  req->detail, size) ||
        sl_api__query_int(q, "limit", 1, LATEST_LIMIT_MAX, &limit, req->detail,
                          size) ||
        sl_api__read_range(req, &rq.from_ms, &has_from, &rq.to_ms, &has_to))
        return sl_api__respond_invalid(req);

    rq.limit = (size_t)limit;
    return respond_readings(req, &rq, "readings");
}

static const char *const anomalies_params[] = {"limit", "sensor_type", NULL};

static int handle_anomalies(request_t *req)
{
    const sl_api_query_t *q = req->query;
    size_t size = sizeof(req->detail);
    int64_t limit = ANOMALIES_LIMIT_DEFAULT;
    sl_reading_query_t rq;

    sl_reading_query_init(&rq);
    if (sl_api__query_sensor_type(q, "sensor_type", &rq.sensor_type,
                                  req->detail, size) ||
        sl_api__query_int(q, "limit", 1, ANOMALIES_LIMIT_MAX, &limit,
                          req->detail, size))
        return sl_api__respond_invalid(req);

    rq.anomalies_only = true;
    rq.limit = (size_t)limit;
    return respond_readings(req, &rq, "anomalies");
}

/* ---- GET /api/v1/sensors/stats ----------------------------------------- */

static json_t *stats_to_json(const sl_sensor_stats_t *s)
{
    json_t *obj = json_pack("{s:s, s:s, s:I, s:I}", "sensor_id", s->sensor_id,
                            "sensor_type", sl_sensor_type_name(s->sensor_type),
                            "reading_count", (json_int_t)s->count,
                            "anomaly_count", (json_int_t)s->anomaly_count);

    if (obj == NULL || sl_json_set_double(obj, "avg_value", s->avg) != 0 ||
        sl_json_set_double(obj, "min_value", s->min) != 0 ||
        sl_json_set_double(obj, "max_value", s->max) != 0 ||
        sl_json_set_time(obj, "first_timestamp", s->first_ms) != 0 ||
        sl_json_set_time(obj, "last_timestamp", s->last_ms) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/*
 * Fetches the statistics of [from_ms, to_ms), growing the array while the
 * store fills it. OUT: *out (caller frees), *n.
 * Returns SL_OK, SL_EIO or SL_ENOMEM.
 */
static int fetch_stats(sl_store_t *st, int64_t from_ms, int64_t to_ms,
                       int sensor_type, sl_sensor_stats_t **out, size_t *n)
{
    size_t max = STATS_SENSORS_INITIAL;

    *out = NULL;
    for (;;) {
        sl_sensor_stats_t *rows = realloc(*out, max * sizeof(*rows));
        int rc;

        if (rows == NULL)
            return SL_ENOMEM;
        *out = rows;
        rc = sl_store_sensor_stats(st, from_ms, to_ms, sensor_type, rows, max,
                                   n);
        if (rc != SL_OK)
            return SL_EIO;
        /* XXX: past STATS_SENSORS_MAX sensors the response silently lists
         * only the first ones by sensor_id; no paging parameter exists. */
        if (*n < max || max >= STATS_SENSORS_MAX)
            return SL_OK;
        max *= 2;
    }
}

static int respond_stats(request_t *req, json_t *root, int64_t from_ms,
                         int64_t to_ms, int sensor_type)
{
    sl_sensor_stats_t *rows = NULL;
    json_t *list = json_array();
    size_t n = 0;
    int rc = SL_ENOMEM;

    if (list == NULL)
        goto out;
    rc = req->st == NULL
             ? SL_EIO
             : fetch_stats(req->st, from_ms, to_ms, sensor_type, &rows, &n);
    if (rc == SL_EIO) {
        rc = sl_api__respond_store_error(req->resp, "statistics query");
        goto out;
    }
    rc = SL_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(list, stats_to_json(&rows[i])) != 0)
            goto out;
    }
    if (sl_json_set_time(root, "from", from_ms) != 0 ||
        sl_json_set_time(root, "to", to_ms) != 0 ||
        json_object_set_new(root, "count", json_integer((json_int_t)n)) ||
        json_object_set(root, "stats", list) != 0)
        goto out;
    rc = sl_api__respond_json(req->resp, 200, root);
    root = NULL;
out:
    json_decref(root);
    json_decref(list);
    free(rows);
    return rc;
}

static const char *const stats_params[] = {"time_window_minutes", "from", "to",
                                           "sensor_type", NULL};

/*
 * The range is [now - window, now) unless from or to is given: from
 * replaces the start and to the end, and a missing start is to - window.
 * time_window_minutes is null in the response when from decides the start.
 */
static int handle_stats(request_t *req)
{
    const sl_api_query_t *q = req->query;
    size_t size = sizeof(req->detail);
    int64_t window = WINDOW_MINUTES_DEFAULT;
    int64_t from_ms = 0, to_ms = 0;
    bool has_from, has_to;
    int sensor_type = -1;
    json_t *root;

    if (sl_api__query_int(q, "time_window_minutes", 1, WINDOW_MINUTES_MAX,
                          &window, req->detail, size) ||
        sl_api__query_sensor_type(q, "sensor_type", &sensor_type, req->detail,
                                  size) ||
        sl_api__read_range(req, &from_ms, &has_from, &to_ms, &has_to))
        return sl_api__respond_invalid(req);

    if (!has_to)
        to_ms = sl_time_now_ms();
    if (!has_from)
        from_ms = to_ms - window * 60000;
    if (from_ms >= to_ms) {
        snprintf(req->detail, size,
                 "from: must be earlier than to, which defaults to now");
        return sl_api__respond_invalid(req);
    }

    root = json_object();
    if (root == NULL)
        return SL_ENOMEM;
    if (json_object_set_new(root, "time_window_minutes",
                            has_from ? json_null() : json_integer(window))) {
        json_decref(root);
        return SL_ENOMEM;
    }
    return respond_stats(req, root, from_ms, to_ms, sensor_type);
}

/* ---- GET /metrics ------------------------------------------------------ */

static int handle_metrics(request_t *req)
{
    char *text = NULL;
    size_t len = 0;

    if (sl_metrics_render(&text, &len) != SL_OK)
        return SL_ENOMEM;
    req->resp->status = 200;
    req->resp->content_type = CONTENT_METRICS;
    req->resp->body = text;
    req->resp->body_len = len;
    return SL_OK;
}

/* ---- dead-letter queue: /api/v1/dlq ---------------------------------- */

static int set_time_or_null(json_t *obj, const char *key, int64_t ms)
{
    if (ms <= 0)
        return json_object_set_new(obj, key, json_null());
    return sl_json_set_time(obj, key, ms);
}

/* Renders bytes as lowercase hex, or null for NULL. */
static json_t *hex_json(const void *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = data;
    char *text;
    json_t *out;

    if (data == NULL)
        return json_null();
    text = malloc(len * 2 + 1);
    if (text == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        text[2 * i] = digits[p[i] >> 4];
        text[2 * i + 1] = digits[p[i] & 15];
    }
    text[len * 2] = '\0';
    out = json_string(text);
    free(text);
    return out;
}

/* Renders a dead-letter row; with_bytes adds key_hex and payload_hex. */
static json_t *dlq_entry_to_json(const sl_dlq_entry_t *e, bool with_bytes)
{
    json_t *obj = json_pack(
        "{s:I, s:s, s:i, s:I, s:s, s:s, s:i, s:s, s:I, s:I}", "id",
        (json_int_t)e->id, "topic", e->topic, "partition", (int)e->partition,
        "offset", (json_int_t)e->offset, "error_class",
        sl_dlq_class_name(e->error_class), "error", e->error, "retry_count",
        (int)e->retry_count, "status", sl_dlq_status_name(e->status),
        "key_bytes", (json_int_t)e->key_len, "payload_bytes",
        (json_int_t)e->payload_len);

    if (obj == NULL ||
        set_time_or_null(obj, "first_failure", e->first_failure_ms) ||
        set_time_or_null(obj, "last_failure", e->last_failure_ms) ||
        set_time_or_null(obj, "next_attempt", e->next_attempt_ms) ||
        set_time_or_null(obj, "updated_at", e->updated_at_ms) ||
        (with_bytes &&
         (json_object_set_new(obj, "key_hex", hex_json(e->key, e->key_len)) ||
          json_object_set_new(obj, "payload_hex",
                              hex_json(e->payload, e->payload_len))))) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static const char *const dlq_list_params[] = {"status", "topic", "limit", NULL};

static int handle_dlq_list(request_t *req)
{
    const sl_api_query_t *q = req->query;
    size_t size = sizeof(req->detail);
    const char *status = sl_api__query_get(q, "status");
    int64_t limit = DLQ_LIMIT_DEFAULT;
    sl_dlq_query_t dq = {.status = -1};
    sl_dlq_entry_t *rows;
    json_t *list;
    size_t n = 0;
    int rc = SL_ENOMEM;

    if (status != NULL) {
        sl_dlq_status_t parsed;
        if (sl_dlq_status_parse(status, &parsed) != SL_OK) {
            snprintf(req->detail, size,
                     "status: must be one of pending, retrying, resolved, "
                     "dead");
            return sl_api__respond_invalid(req);
        }
        dq.status = (int)parsed;
    }
    if (sl_api__query_text(q, "topic", SL_ID_MAX, &dq.topic, req->detail,
                           size) ||
        sl_api__query_int(q, "limit", 1, DLQ_LIMIT_MAX, &limit, req->detail,
                          size))
        return sl_api__respond_invalid(req);
    dq.limit = (size_t)limit;

    rows = calloc(dq.limit, sizeof(*rows));
    list = json_array();
    if (rows == NULL || list == NULL)
        goto out;
    if (req->st == NULL ||
        sl_store_dlq_list(req->st, &dq, rows, dq.limit, &n) != SL_OK) {
        rc = sl_api__respond_store_error(req->resp, "dead-letter query");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(list, dlq_entry_to_json(&rows[i], false)))
            goto out;
    }
    rc = sl_api__respond_json(
        req->resp, 200,
        json_pack("{s:I, s:O}", "count", (json_int_t)n, "entries", list));
out:
    json_decref(list);
    free(rows);
    return rc;
}

/* XXX: the payload is returned as hex only. Decoding it as `sluice dlq
 * show` does needs a schema registry, which the API module does not link. */
static int handle_dlq_entry(request_t *req)
{
    sl_dlq_entry_t e;
    void *bytes = NULL;
    int rc;

    if (req->st == NULL)
        return sl_api__respond_store_error(req->resp, "dead-letter query");
    rc = sl_store_dlq_get(req->st, req->id, &e, &bytes);
    if (rc == SL_ENOTFOUND)
        return sl_api__respond_detail(req->resp, 404,
                                      "dead-letter entry not found");
    if (rc == SL_EIO)
        return sl_api__respond_store_error(req->resp, "dead-letter query");
    if (rc != SL_OK)
        return SL_ENOMEM;
    rc = sl_api__respond_json(req->resp, 200, dlq_entry_to_json(&e, true));
    free(bytes);
    return rc;
}

/* Schedules the row for a retry now; the handler inside `sluice run`
 * picks it up at its next store scan, hence 202. */
static int handle_dlq_replay(request_t *req)
{
    size_t changed = 0;
    int rc;

    if (req->st == NULL)
        return sl_api__respond_store_error(req->resp, "dead-letter replay");
    rc = sl_store_dlq_replay(req->st, req->id, SL_DLQ_DEAD, sl_time_now_ms(),
                             &changed);
    if (rc == SL_ENOTFOUND)
        return sl_api__respond_detail(req->resp, 404,
                                      "dead-letter entry not found");
    if (rc == SL_EBUSY)
        return sl_api__respond_detail(
            req->resp, 409,
            "entry is retrying or resolved; only pending "
            "and dead entries can be replayed");
    if (rc != SL_OK)
        return sl_api__respond_store_error(req->resp, "dead-letter replay");
    return sl_api__respond_json(req->resp, 202,
                                json_pack("{s:I, s:s}", "id",
                                          (json_int_t)req->id, "status",
                                          "pending"));
}

/* ---- static files: /openapi.json, /docs, /dashboard ------------------ */

static int handle_static(request_t *req)
{
    const char *data, *type;
    size_t len;
    char *copy;

    if (!sl_api__static_find(req->req->path, &data, &len, &type))
        return sl_api__respond_detail(req->resp, 404, "Not Found");
    /* The response owns a heap body. The files are a few hundred KiB at
     * most, so a copy per request is cheap next to sending it. */
    copy = malloc(len > 0 ? len : 1);
    if (copy == NULL)
        return SL_ENOMEM;
    memcpy(copy, data, len);
    req->resp->status = 200;
    req->resp->content_type = type;
    req->resp->body = copy;
    req->resp->body_len = len;
    return SL_OK;
}

/* ---- dispatch ---------------------------------------------------------- */

static const char *const no_params[] = {NULL};

static const route_t routes[] = {
    {"/", "GET", handle_health, SL_API_ROUTE_HEALTH, no_params, 0},
    {"/api/v1/sensors/latest", "GET", handle_latest, SL_API_ROUTE_LATEST,
     latest_params, 0},
    {"/api/v1/sensors/stats", "GET", handle_stats, SL_API_ROUTE_STATS,
     stats_params, 0},
    {"/api/v1/sensors/anomalies", "GET", handle_anomalies,
     SL_API_ROUTE_ANOMALIES, anomalies_params, 0},
    {"/api/v1/sensors/readings", "POST", sl_api__handle_ingest_readings,
     SL_API_ROUTE_INGEST_READINGS, no_params, ROUTE_WRITE},
    {"/api/v1/sensors/{sensor_id}/history", "GET", sl_api__handle_history,
     SL_API_ROUTE_HISTORY, sl_api__history_params, 0},
    {"/metrics", "GET", handle_metrics, SL_API_ROUTE_METRICS, no_params, 0},
    {"/api/v1/dlq", "GET", handle_dlq_list, SL_API_ROUTE_DLQ_LIST,
     dlq_list_params, 0},
    {"/api/v1/dlq/{id}", "GET", handle_dlq_entry, SL_API_ROUTE_DLQ_ENTRY,
     no_params, 0},
    {"/api/v1/dlq/{id}/replay", "POST", handle_dlq_replay,
     SL_API_ROUTE_DLQ_REPLAY, no_params, ROUTE_WRITE},
    {"/api/v1/alerts", "GET", sl_api__handle_alerts, SL_API_ROUTE_ALERTS,
     sl_api__alerts_params, 0},
    {"/api/v1/alerts/{id}/ack", "POST", sl_api__handle_alert_ack,
     SL_API_ROUTE_ALERT_ACK, no_params, ROUTE_WRITE},
    {"/api/v1/ecommerce/stats", "GET", sl_api__handle_ecom_stats,
     SL_API_ROUTE_ECOM_STATS, sl_api__ecom_stats_params, 0},
    {"/api/v1/ecommerce/events/latest", "GET", sl_api__handle_ecom_latest,
     SL_API_ROUTE_ECOM_LATEST, sl_api__ecom_latest_params, 0},
    {"/api/v1/ecommerce/events", "POST", sl_api__handle_ingest_events,
     SL_API_ROUTE_INGEST_EVENTS, no_params, ROUTE_WRITE},
};

/* The route that serves the embedded files; matched by lookup, not by
 * template. */
static const route_t static_route = {
    "", "GET", handle_static, SL_API_ROUTE_STATIC, no_params, 0};

/* Matches "{id}": 1 to 18 decimal digits without a leading zero. Returns
 * the number of bytes matched, or 0. */
static size_t match_id(const char *path, int64_t *id)
{
    size_t digits = 0;

    while (path[digits] >= '0' && path[digits] <= '9')
        digits++;
    if (digits == 0 || digits > 18 || path[0] == '0')
        return 0;
    *id = strtoll(path, NULL, 10);
    return digits;
}

/* Matches "{sensor_id}": one path segment of 1 to SL_ID_MAX bytes of
 * valid UTF-8. Returns the number of bytes matched, or 0. */
static size_t match_segment(const char *path, char *out, size_t out_size)
{
    size_t len = strcspn(path, "/");

    if (len == 0 || len >= out_size || !sl_utf8_valid(path, len))
        return 0;
    memcpy(out, path, len);
    out[len] = '\0';
    return len;
}

/*
 * Matches path against a template with at most one variable, "{id}" or
 * "{sensor_id}". OUT: *id (0 when the template has none), segment (empty
 * when the template has none). Returns true on a match.
 */
static bool match_path(const char *tmpl, const char *path, int64_t *id,
                       char *segment, size_t segment_size)
{
    const char *var = strchr(tmpl, '{');
    const char *rest;
    size_t prefix, matched;

    *id = 0;
    segment[0] = '\0';
    if (var == NULL)
        return strcmp(tmpl, path) == 0;
    prefix = (size_t)(var - tmpl);
    if (strncmp(tmpl, path, prefix) != 0)
        return false;
    path += prefix;
    rest = strchr(var, '}') + 1;
    if (strncmp(var, "{id}", 4) == 0)
        matched = match_id(path, id);
    else
        matched = match_segment(path, segment, segment_size);
    return matched > 0 && strcmp(path + matched, rest) == 0;
}

static const route_t *find_route(const char *path, int64_t *id, char *segment,
                                 size_t segment_size)
{
    const char *data, *type;
    size_t len;

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (match_path(routes[i].path, path, id, segment, segment_size))
            return &routes[i];
    }
    if (sl_api__static_find(path, &data, &len, &type))
        return &static_route;
    return NULL;
}

const char *sl_api__route_allow(sl_api_route_t route)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (routes[i].id == route)
            return strcmp(routes[i].method, "GET") == 0 ? "GET, HEAD"
                                                        : routes[i].method;
    }
    return "GET, HEAD";
}

/* Compares in time independent of where the strings first differ, so the
 * response time does not reveal how much of a guessed token was right. */
static bool token_equal(const char *given, size_t given_len, const char *token)
{
    size_t token_len = strlen(token);
    unsigned char diff = given_len != token_len;

    for (size_t i = 0; i < token_len; i++)
        diff |= (unsigned char)token[i] ^
                (unsigned char)(i < given_len ? given[i] : 0);
    return diff == 0;
}

/* Returns true when the request may use a write route: no token is set,
 * or the Authorization header is "Bearer <token>". */
static bool authorized(const sl_api_env_t *env, const sl_api_request_t *req)
{
    static const char scheme[] = "Bearer ";
    const char *auth = req->authorization;

    if (env->token == NULL || env->token[0] == '\0')
        return true;
    if (auth == NULL || strncasecmp(auth, scheme, sizeof(scheme) - 1) != 0)
        return false;
    auth += sizeof(scheme) - 1;
    return token_equal(auth, strlen(auth), env->token);
}

static int run_route(const route_t *route, const sl_api_env_t *env,
                     const sl_api_request_t *http, int64_t id,
                     const char *segment, sl_api_response_t *resp)
{
    request_t req = {.env = env,
                     .st = env->st,
                     .id = id,
                     .path_arg = segment[0] != '\0' ? segment : NULL,
                     .req = http,
                     .resp = resp};
    sl_api_query_t query;
    int rc;

    rc = sl_api__query_parse(http->query, &query, req.detail,
                             sizeof(req.detail));
    if (rc == SL_OK)
        rc = sl_api__query_check_names(&query, route->params, req.detail,
                                       sizeof(req.detail));
    if (rc == SL_OK) {
        req.query = &query;
        rc = route->handler(&req);
    } else if (rc == SL_EINVAL) {
        rc = sl_api__respond_invalid(&req);
    }
    sl_api__query_fini(&query);
    return rc;
}

int sl_api__dispatch_request(const sl_api_env_t *env,
                             const sl_api_request_t *req,
                             sl_api_response_t *resp, sl_api_route_t *route_id)
{
    char segment[SL_ID_MAX + 1];
    const route_t *route;
    int64_t id;
    int rc;

    route = find_route(req->path != NULL ? req->path : "", &id, segment,
                       sizeof(segment));
    memset(resp, 0, sizeof(*resp));
    if (route_id != NULL)
        *route_id = route != NULL ? route->id : SL_API_ROUTE_UNMATCHED;

    if (route == NULL)
        rc = sl_api__respond_detail(resp, 404, "Not Found");
    else if (req->method == NULL || strcmp(req->method, route->method) != 0)
        rc = sl_api__respond_detail(resp, 405, "Method Not Allowed");
    else if ((route->flags & ROUTE_WRITE) && !authorized(env, req))
        rc = sl_api__respond_detail(
            resp, 401, "missing or invalid bearer token in Authorization");
    else
        rc = run_route(route, env, req, id, segment, resp);

    if (rc != SL_OK) {
        free(resp->body);
        memset(resp, 0, sizeof(*resp));
        return SL_ENOMEM;
    }
    return SL_OK;
}

int sl_api__dispatch(sl_store_t *st, const char *method, const char *path,
                     const char *query, sl_api_response_t *resp,
                     sl_api_route_t *route_id)
{
    sl_api_env_t env = {.st = st,
                        .bus_missing = "this API instance has no bus"};
    sl_api_request_t req = {.method = method, .path = path, .query = query};

    return sl_api__dispatch_request(&env, &req, resp, route_id);
}

int sl_api_handle(sl_store_t *st, const char *method, const char *path,
                  const char *query, sl_api_response_t *resp)
{
    return sl_api__dispatch(st, method, path, query, resp, NULL);
}
