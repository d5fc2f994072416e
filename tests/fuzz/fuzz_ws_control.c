/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for what WebSocket clients send (src/api/ws_filter.c): the
 * filter parameters of the stream's URL and the JSON control messages
 * that change the filter afterwards. Each reply must be a JSON object, and
 * so must the rendered filter.
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
#include "util/err.h"
#include "util/log.h"

#define MAX_MESSAGES 8

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

    sl_log_set_level(SL_LOG_ERROR);
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
    free(text);
    return 0;
}
