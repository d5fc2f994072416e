/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Commerce routes: GET /api/v1/ecommerce/stats sums up a time window
 * (events by type, orders, revenue, conversion rate, top products) and
 * GET /api/v1/ecommerce/events/latest lists the newest events.
 */
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "model/json.h"
#include "util/err.h"
#include "util/timeutil.h"

#define WINDOW_MINUTES_DEFAULT 60
#define WINDOW_MINUTES_MAX (7 * 1440)
#define TOP_DEFAULT 5
#define EVENTS_LIMIT_DEFAULT 20
#define EVENTS_LIMIT_MAX 500

const char *const sl_api__ecom_stats_params[] = {"time_window_minutes", "from",
                                                 "to", "top", NULL};
const char *const sl_api__ecom_latest_params[] = {"event_type", "limit", "from",
                                                  "to", NULL};

/*
 * Resolves the range as the sensor statistics do: [now - window, now)
 * unless from or to is given. Returns SL_OK or SL_EINVAL (call->detail).
 */
static int read_window(sl_api_call_t *call, int64_t *from_ms, int64_t *to_ms,
                       int64_t *window, bool *has_from)
{
    size_t size = sizeof(call->detail);
    bool has_to;

    if (sl_api__query_int(call->query, "time_window_minutes", 1,
                          WINDOW_MINUTES_MAX, window, call->detail, size) ||
        sl_api__read_range(call, from_ms, has_from, to_ms, &has_to))
        return SL_EINVAL;
    if (!has_to)
        *to_ms = sl_time_now_ms();
    if (!*has_from)
        *from_ms = *to_ms - *window * 60000;
    if (*from_ms >= *to_ms) {
        snprintf(call->detail, size,
                 "from: must be earlier than to, which defaults to now");
        return SL_EINVAL;
    }
    return SL_OK;
}

static json_t *products_to_json(const sl_event_stats_t *es)
{
    json_t *list = json_array();

    for (size_t i = 0; list != NULL && i < es->top_count; i++) {
        const sl_product_stats_t *p = &es->top[i];
        json_t *obj = json_pack(
            "{s:I, s:s, s:I, s:I}", "product_id", (json_int_t)p->product_id,
            "product_name", p->product_name, "orders", (json_int_t)p->orders,
            "quantity", (json_int_t)p->quantity);

        if (obj == NULL || sl_json_set_double(obj, "revenue", p->revenue) ||
            json_array_append_new(list, obj) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

static json_t *stats_to_json(const sl_event_stats_t *es, int64_t from_ms,
                             int64_t to_ms)
{
    json_t *by_type = json_object();
    json_t *root = json_object();
    double rate = es->sessions > 0
                      ? (double)es->purchase_sessions / (double)es->sessions
                      : 0.0;
    int bad = by_type == NULL || root == NULL;

    for (int t = 0; !bad && t < SL_EVENT_TYPE_COUNT; t++)
        bad =
            json_object_set_new(by_type, sl_event_type_name((sl_event_type_t)t),
                                json_integer(es->by_type[t])) != 0;
    bad = bad || sl_json_set_time(root, "from", from_ms) ||
          sl_json_set_time(root, "to", to_ms) ||
          json_object_set_new(root, "events", json_integer(es->events)) ||
          json_object_set(root, "events_by_type", by_type) ||
          json_object_set_new(root, "orders", json_integer(es->orders)) ||
          sl_json_set_double(root, "revenue", es->revenue) ||
          json_object_set_new(root, "sessions", json_integer(es->sessions)) ||
          json_object_set_new(root, "purchase_sessions",
                              json_integer(es->purchase_sessions)) ||
          sl_json_set_double(root, "conversion_rate", rate) ||
          json_object_set_new(root, "top_products", products_to_json(es));
    json_decref(by_type);
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* The conversion rate is purchase sessions over all sessions seen in the
 * window, so a session that started before the window counts from its
 * first event inside it. */
int sl_api__handle_ecom_stats(sl_api_call_t *call)
{
    int64_t window = WINDOW_MINUTES_DEFAULT, top = TOP_DEFAULT;
    int64_t from_ms = 0, to_ms = 0;
    sl_event_stats_t *es;
    bool has_from;
    json_t *root;
    int rc;

    if (sl_api__query_int(call->query, "top", 0, SL_STORE_TOP_PRODUCTS_MAX,
                          &top, call->detail, sizeof(call->detail)) ||
        read_window(call, &from_ms, &to_ms, &window, &has_from))
        return sl_api__respond_invalid(call);

    es = malloc(sizeof(*es));
    if (es == NULL)
        return SL_ENOMEM;
    if (call->st == NULL || sl_store_event_stats(call->st, from_ms, to_ms,
                                                 (size_t)top, es) != SL_OK) {
        free(es);
        return sl_api__respond_store_error(call->resp, "commerce query");
    }
    root = stats_to_json(es, from_ms, to_ms);
    free(es);
    if (root != NULL &&
        json_object_set_new(root, "time_window_minutes",
                            has_from ? json_null() : json_integer(window))) {
        json_decref(root);
        return SL_ENOMEM;
    }
    rc = sl_api__respond_json(call->resp, 200, root);
    return rc;
}

static const char *const event_type_names[] = {
    "page_view",        "add_to_cart", "purchase", "search",
    "remove_from_cart", "other",       NULL};

int sl_api__handle_ecom_latest(sl_api_call_t *call)
{
    size_t size = sizeof(call->detail);
    int64_t limit = EVENTS_LIMIT_DEFAULT;
    int64_t from_ms = INT64_MIN, to_ms = INT64_MAX;
    bool has_from, has_to;
    int event_type = -1;
    sl_event_t *rows;
    json_t *list;
    size_t n = 0;
    int rc = SL_ENOMEM;

    if (sl_api__query_choice(call->query, "event_type", event_type_names,
                             &event_type, call->detail, size) ||
        sl_api__query_int(call->query, "limit", 1, EVENTS_LIMIT_MAX, &limit,
                          call->detail, size) ||
        sl_api__read_range(call, &from_ms, &has_from, &to_ms, &has_to))
        return sl_api__respond_invalid(call);

    rows = calloc((size_t)limit, sizeof(*rows));
    list = json_array();
    if (rows == NULL || list == NULL)
        goto out;
    if (call->st == NULL ||
        sl_store_events_latest(call->st, event_type, from_ms, to_ms, rows,
                               (size_t)limit, &n) != SL_OK) {
        rc = sl_api__respond_store_error(call->resp, "commerce query");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(list, sl_event_to_json(&rows[i])) != 0)
            goto out;
    }
    rc = sl_api__respond_json(
        call->resp, 200,
        json_pack("{s:I, s:O}", "count", (json_int_t)n, "events", list));
out:
    json_decref(list);
    free(rows);
    return rc;
}
