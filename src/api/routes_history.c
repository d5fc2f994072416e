/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /api/v1/sensors/{sensor_id}/history: one sensor's readings between
 * from and to, downsampled into at most `points` buckets of equal length
 * with count, min, max and mean each, so a chart of a long range stays
 * small.
 */
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "model/json.h"
#include "util/err.h"
#include "util/timeutil.h"

#define POINTS_DEFAULT 200
#define POINTS_MAX 2000
#define RANGE_DEFAULT_MS (60 * 60 * 1000)
/* The store walks every sensor's rows of the range (no per-sensor index),
 * so a range is capped at 31 days. */
#define RANGE_MAX_MS (31LL * 24 * 60 * 60 * 1000)

const char *const sl_api__history_params[] = {"from", "to", "points", NULL};

static json_t *point_to_json(const sl_history_point_t *p)
{
    json_t *obj = json_pack("{s:I}", "count", (json_int_t)p->count);

    if (obj == NULL || sl_json_set_time(obj, "timestamp", p->start_ms) ||
        sl_json_set_double(obj, "min", p->min) ||
        sl_json_set_double(obj, "max", p->max) ||
        sl_json_set_double(obj, "avg", p->avg)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* Resolves [from, to): the last hour by default, to defaults to now and
 * from to an hour before to. Returns SL_OK or SL_EINVAL (call->detail). */
static int read_history_range(sl_api_call_t *call, int64_t *from_ms,
                              int64_t *to_ms)
{
    size_t size = sizeof(call->detail);
    bool has_from, has_to;

    if (sl_api__read_range(call, from_ms, &has_from, to_ms, &has_to))
        return SL_EINVAL;
    if (!has_to)
        *to_ms = sl_time_now_ms();
    if (!has_from)
        *from_ms = *to_ms - RANGE_DEFAULT_MS;
    if (*from_ms >= *to_ms) {
        snprintf(call->detail, size,
                 "from: must be earlier than to, which defaults to now");
        return SL_EINVAL;
    }
    if (*to_ms - *from_ms > RANGE_MAX_MS) {
        snprintf(call->detail, size, "to: must be at most 31 days after from");
        return SL_EINVAL;
    }
    return SL_OK;
}

int sl_api__handle_history(sl_api_call_t *call)
{
    int64_t points = POINTS_DEFAULT, from_ms = 0, to_ms = 0, bucket_ms;
    sl_history_point_t *rows;
    json_t *list, *root;
    size_t n = 0;
    int rc = SL_ENOMEM;

    if (sl_api__query_int(call->query, "points", 1, POINTS_MAX, &points,
                          call->detail, sizeof(call->detail)) ||
        read_history_range(call, &from_ms, &to_ms))
        return sl_api__respond_invalid(call);
    /* Rounded up, so [from, to) never needs more than `points` buckets. */
    bucket_ms = (to_ms - from_ms + points - 1) / points;

    rows = calloc((size_t)points, sizeof(*rows));
    list = json_array();
    if (rows == NULL || list == NULL)
        goto out;
    if (call->st == NULL || sl_store_reading_history(
                                call->st, call->path_arg, from_ms, to_ms,
                                bucket_ms, rows, (size_t)points, &n) != SL_OK) {
        rc = sl_api__respond_store_error(call->resp, "history query");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(list, point_to_json(&rows[i])) != 0)
            goto out;
    }
    root = json_pack("{s:s, s:I, s:I, s:O}", "sensor_id", call->path_arg,
                     "bucket_ms", (json_int_t)bucket_ms, "count", (json_int_t)n,
                     "points", list);
    if (root != NULL && (sl_json_set_time(root, "from", from_ms) ||
                         sl_json_set_time(root, "to", to_ms))) {
        json_decref(root);
        goto out;
    }
    rc = sl_api__respond_json(call->resp, 200, root);
out:
    json_decref(list);
    free(rows);
    return rc;
}
