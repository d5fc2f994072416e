/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP ingest: POST /api/v1/sensors/readings and POST
 * /api/v1/ecommerce/events take one JSON object or an array of them and
 * validate each item as the processor would. The valid ones are published
 * to the bus, so they go through the same processor and dead-letter queue
 * as records from any other producer. The answer is 202 with
 * {"accepted": n, "rejected": m, "errors": [{"index": i, "reason": ...}]},
 * because the records are stored after the processor consumed them.
 */
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/json.h"
#include "model/validate.h"
#include "util/err.h"
#include "util/timeutil.h"

/* Maximum reason text of one rejected item, in bytes. */
#define REASON_MAX 256

typedef struct ingest {
    json_t *errors;  /* [{"index", "reason"}] */
    size_t rejected; /* items in errors */
    bool oom;
} ingest_t;

static void reject(ingest_t *in, size_t index, const char *reason)
{
    json_t *item =
        json_pack("{s:I, s:s}", "index", (json_int_t)index, "reason", reason);

    if (item == NULL || json_array_append_new(in->errors, item) != 0)
        in->oom = true;
    in->rejected++;
}

/* Called by the publisher's flush for each batched record the bus did not
 * take; the tag is the item's index. */
static void report_failure(void *ctx, const sl_publish_report_t *report)
{
    char reason[REASON_MAX];

    snprintf(reason, sizeof(reason), "publish_failed: %s",
             report->status == SL_EREJECTED ? "too large, dead-lettered"
                                            : sl_strerror(report->status));
    reject(ctx, (size_t)report->tag, reason);
}

/* Decodes, validates and publishes one item. */
static void ingest_item(sl_publisher_t *pub, bool events, const json_t *obj,
                        size_t index, int64_t now_ms, ingest_t *in)
{
    char err[REASON_MAX - 32], reason[REASON_MAX];
    const char *invalid;
    union {
        sl_reading_t reading;
        sl_event_t event;
    } rec;
    int rc;

    rc = events ? sl_event_from_json(obj, &rec.event, err, sizeof(err))
                : sl_reading_from_json(obj, &rec.reading, err, sizeof(err));
    if (rc != SL_OK) {
        snprintf(reason, sizeof(reason), "invalid_json: %s", err);
        reject(in, index, reason);
        return;
    }
    invalid = events ? sl_event_validate(&rec.event, now_ms)
                     : sl_reading_validate(&rec.reading, now_ms);
    if (invalid != NULL) {
        reject(in, index, invalid);
        return;
    }
    sl_publisher_set_tag(pub, index);
    rc = events ? sl_publish_event(pub, &rec.event)
                : sl_publish_reading(pub, &rec.reading);
    if (rc != SL_OK) {
        snprintf(reason, sizeof(reason), "publish_failed: %s", sl_strerror(rc));
        reject(in, index, reason);
    }
}

/* Parses the body. Returns the object or array, or NULL with a
 * client-facing message in detail. */
static json_t *parse_body(const sl_api_call_t *call, char *detail,
                          size_t detail_size)
{
    const sl_api_request_t *req = call->req;
    json_error_t jerr;
    json_t *root;

    if (req->body == NULL || req->body_len == 0) {
        snprintf(detail, detail_size,
                 "body: expected a JSON object or an array of objects");
        return NULL;
    }
    root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(detail, detail_size, "body: invalid JSON at line %d: %s",
                 jerr.line, jerr.text);
        return NULL;
    }
    if (!json_is_object(root) && !json_is_array(root)) {
        snprintf(detail, detail_size,
                 "body: expected a JSON object or an array of objects");
        json_decref(root);
        return NULL;
    }
    return root;
}

static int handle_ingest(sl_api_call_t *call, bool events)
{
    const sl_api_env_t *env = call->env;
    ingest_t in = {0};
    size_t count, accepted;
    json_t *root;
    int64_t now_ms = sl_time_now_ms();
    char detail[SL_API_DETAIL_MAX];

    if (env->max_body_bytes > 0 && call->req->body_len > env->max_body_bytes) {
        snprintf(detail, sizeof(detail), "body: larger than %zu bytes",
                 env->max_body_bytes);
        return sl_api__respond_detail(call->resp, 413, detail);
    }
    if (env->pub == NULL) {
        snprintf(detail, sizeof(detail), "ingest unavailable: %s",
                 env->bus_missing != NULL ? env->bus_missing : "no bus");
        return sl_api__respond_detail(call->resp, 503, detail);
    }
    root = parse_body(call, call->detail, sizeof(call->detail));
    if (root == NULL)
        return sl_api__respond_invalid(call);

    in.errors = json_array();
    if (in.errors == NULL) {
        json_decref(root);
        return SL_ENOMEM;
    }
    sl_publisher_set_report(env->pub, report_failure, &in);
    count = json_is_array(root) ? json_array_size(root) : 1;
    for (size_t i = 0; i < count; i++) {
        const json_t *obj =
            json_is_array(root) ? json_array_get(root, i) : root;

        if (!json_is_object(obj))
            reject(&in, i, "invalid_json: item is not an object");
        else
            ingest_item(env->pub, events, obj, i, now_ms, &in);
    }
    sl_publisher_flush(env->pub);
    sl_publisher_set_report(env->pub, NULL, NULL);
    json_decref(root);

    accepted = count - in.rejected;
    if (in.oom) {
        json_decref(in.errors);
        return SL_ENOMEM;
    }
    return sl_api__respond_json(
        call->resp, 202,
        json_pack("{s:I, s:I, s:o}", "accepted", (json_int_t)accepted,
                  "rejected", (json_int_t)in.rejected, "errors", in.errors));
}

int sl_api__handle_ingest_readings(sl_api_call_t *call)
{
    return handle_ingest(call, false);
}

int sl_api__handle_ingest_events(sl_api_call_t *call)
{
    return handle_ingest(call, true);
}
