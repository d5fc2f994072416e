/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for what WebSocket clients send (src/api/ws_filter.c): the
 * filter parameters of the stream's URL and the JSON control messages
 * that change the filter afterwards. Each reply must be a JSON object, the
 * filter must render as JSON, and matching frames against it must not
 * fail.
 *
 * Input: byte 0 bit 0 picks the stream (sensors, alerts). The rest is
 * lines: the first is the URL's query string, each further one (up to
 * MAX_MESSAGES) a control message, such as
 *   sensor_type=temperature,humidity&sensor_id=t-1
 *   {"action":"set_filter","id":1,"sensor_id":["a","b"]}
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/hub_int.h"
#include "model/record.h"
#include "util/err.h"
#include "util/log.h"

#define MAX_MESSAGES 8

/* Frames to match the filter against: sensor id, location, sensor type
 * and severity, as the hub sets them from a record. */
typedef struct frame_spec {
    const char *sensor_id;
    const char *location;
    int sensor_type;
    int severity;
} frame_spec_t;

static const frame_spec_t specs[SL_WS_STREAM_COUNT][2] = {
    {{"t-1", "hall", SL_SENSOR_TEMPERATURE, -1},
     {"h-\xc3\xa9", "lab", SL_SENSOR_HUMIDITY, -1}},
    {{"t-1", "", SL_SENSOR_TEMPERATURE, SL_WS_SEVERITY_CRITICAL},
     {"p-2", "", SL_SENSOR_PRESSURE, SL_WS_SEVERITY_WARNING}}};

static sl_ws_frame_t *frames[SL_WS_STREAM_COUNT][2];

static void setup(void)
{
    static const char payload[] = "{}";

    sl_log_set_level(SL_LOG_ERROR);
    for (int s = 0; s < SL_WS_STREAM_COUNT; s++) {
        for (int i = 0; i < 2; i++) {
            const frame_spec_t *spec = &specs[s][i];
            sl_ws_frame_t *fr = sl_ws__frame_create((sl_ws_stream_t)s, payload,
                                                    sizeof(payload) - 1);

            if (fr == NULL)
                abort();
            snprintf(fr->sensor_id, sizeof(fr->sensor_id), "%s",
                     spec->sensor_id);
            snprintf(fr->location, sizeof(fr->location), "%s", spec->location);
            fr->sensor_id_hash = sl_ws__hash(fr->sensor_id);
            fr->location_hash = sl_ws__hash(fr->location);
            fr->sensor_type = spec->sensor_type;
            fr->severity = spec->severity;
            frames[s][i] = fr;
        }
    }
}

/* Aborts unless text is a JSON object. */
static void check_object(const char *text, const char *what)
{
    json_t *parsed = text != NULL ? json_loads(text, 0, NULL) : NULL;

    if (!json_is_object(parsed)) {
        fprintf(stderr, "%s is not a JSON object: %s\n", what,
                text != NULL ? text : "(null)");
        abort();
    }
    json_decref(parsed);
}

/* Applies the URL's query string, as the upgrade does. */
static void apply_query(sl_ws_filter_t *f, sl_ws_stream_t stream,
                        const char *raw)
{
    sl_api_query_t q;
    char err[256];

    if (sl_api__query_parse(raw, &q, err, sizeof(err)) == SL_OK) {
        for (size_t i = 0; i < q.count; i++) {
            if (sl_ws__filter_param(f, stream, q.params[i].name,
                                    q.params[i].value, err,
                                    sizeof(err)) != SL_OK)
                break;
        }
    }
    sl_api__query_fini(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sl_ws_filter_t filter;
    sl_ws_stream_t stream;
    char *text;
    char *line;
    char *next;
    char *rendered;
    int count = 0;

    if (frames[0][0] == NULL)
        setup();
    if (size == 0)
        return 0;
    stream = (sl_ws_stream_t)(data[0] & 1);
    text = strndup((const char *)data + 1, size - 1);
    if (text == NULL)
        abort();

    sl_ws__filter_init(&filter);
    next = strchr(text, '\n');
    if (next != NULL)
        *next++ = '\0';
    apply_query(&filter, stream, text);
    for (line = next; line != NULL && count < MAX_MESSAGES; count++) {
        char *reply = NULL;

        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (sl_ws__control(&filter, stream, line, strlen(line), &reply) ==
            SL_OK)
            check_object(reply, "control reply");
        free(reply);
        line = next;
    }

    rendered = sl_ws__filter_json(&filter, stream);
    check_object(rendered, "filter");
    free(rendered);
    for (int i = 0; i < 2; i++)
        sl_ws__filter_match(&filter, frames[stream][i]);
    free(text);
    return 0;
}
