/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Alert routes: GET /api/v1/alerts lists the detector's alerts with
 * filters, and POST /api/v1/alerts/{id}/ack marks one acknowledged.
 */
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "model/json.h"
#include "util/err.h"

#define ALERTS_LIMIT_DEFAULT 50
#define ALERTS_LIMIT_MAX 1000

const char *const sl_api__alerts_params[] = {
    "severity", "sensor_id", "acknowledged", "from", "to", "limit", NULL};

static const char *const severity_names[] = {"info", "warning", "critical",
                                             NULL};
static const char *const bool_names[] = {"false", "true", NULL};

static json_t *alert_to_json(const sl_alert_t *a)
{
    json_t *obj = json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:s, s:b}", "id", (json_int_t)a->id,
        "alert_type", sl_alert_type_name(a->alert_type), "severity",
        sl_alert_severity_name(a->severity), "sensor_id", a->sensor_id,
        "sensor_type", sl_sensor_type_name(a->sensor_type), "message",
        a->message, "acknowledged", a->acknowledged);

    if (obj == NULL || sl_json_set_double(obj, "value", a->value) != 0 ||
        (a->has_score
             ? sl_json_set_double(obj, "anomaly_score", a->anomaly_score)
             : json_object_set_new(obj, "anomaly_score", json_null())) != 0 ||
        sl_json_set_time(obj, "timestamp", a->timestamp_ms) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

int sl_api__handle_alerts(sl_api_call_t *call)
{
    const sl_api_query_t *q = call->query;
    size_t size = sizeof(call->detail);
    int64_t limit = ALERTS_LIMIT_DEFAULT;
    sl_alert_query_t aq;
    sl_alert_t *rows;
    bool has_from, has_to;
    json_t *list;
    size_t n = 0;
    int rc = SL_ENOMEM;

    sl_alert_query_init(&aq);
    if (sl_api__query_choice(q, "severity", severity_names, &aq.severity,
                             call->detail, size) ||
        sl_api__query_choice(q, "acknowledged", bool_names, &aq.acknowledged,
                             call->detail, size) ||
        sl_api__query_text(q, "sensor_id", SL_ID_MAX, &aq.sensor_id,
                           call->detail, size) ||
        sl_api__query_int(q, "limit", 1, ALERTS_LIMIT_MAX, &limit, call->detail,
                          size) ||
        sl_api__read_range(call, &aq.from_ms, &has_from, &aq.to_ms, &has_to))
        return sl_api__respond_invalid(call);
    aq.limit = (size_t)limit;

    rows = calloc(aq.limit, sizeof(*rows));
    list = json_array();
    if (rows == NULL || list == NULL)
        goto out;
    if (call->st == NULL ||
        sl_store_alert_list(call->st, &aq, rows, aq.limit, &n) != SL_OK) {
        rc = sl_api__respond_store_error(call->resp, "alert query");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(list, alert_to_json(&rows[i])) != 0)
            goto out;
    }
    rc = sl_api__respond_json(
        call->resp, 200,
        json_pack("{s:I, s:O}", "count", (json_int_t)n, "alerts", list));
out:
    json_decref(list);
    free(rows);
    return rc;
}

int sl_api__handle_alert_ack(sl_api_call_t *call)
{
    sl_alert_t alert;
    int rc;

    if (call->st == NULL)
        return sl_api__respond_store_error(call->resp, "alert update");
    rc = sl_store_alert_ack(call->st, call->id, &alert);
    if (rc == SL_ENOTFOUND)
        return sl_api__respond_detail(call->resp, 404, "alert not found");
    if (rc != SL_OK)
        return sl_api__respond_store_error(call->resp, "alert update");
    return sl_api__respond_json(call->resp, 200, alert_to_json(&alert));
}
