/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the API's request handling: the query-string parser and
 * its typed readers (src/api/query.c), then the route dispatcher over a
 * real SQLite store in a temporary folder that contains three readings. The
 * routes served here take no request body, so the query string and the
 * path are the whole untrusted input.
 *
 * Input: byte 0 picks the route (low three bits) and the method (bit 3:
 * POST instead of GET); when bit 7 is set, the rest is "path?query" and
 * the table is not used, else the rest is the query string. Anything the
 * client sends must get a status below 500 (or 503, since this API has no
 * bus to ingest into), and a body that is valid JSON
 * whenever the content type says JSON.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_int.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"

static sl_store_t *store;
static char store_dir[] = "/tmp/sluice_fuzz_query_XXXXXX";
static char store_path[sizeof(store_dir) + 16];

static const char *const paths[8] = {"/",
                                     "/api/v1/sensors/latest",
                                     "/api/v1/sensors/stats",
                                     "/api/v1/sensors/anomalies",
                                     "/metrics",
                                     "/api/v1/dlq",
                                     "/api/v1/dlq/1",
                                     "/api/v1/dlq/1/replay"};

/* Every parameter name the routes read, for the typed readers. */
static const char *const names[] = {
    "sensor_id",           "sensor_type", "limit", "from",   "to",
    "time_window_minutes", "status",      "topic", "offset", NULL};

static void remove_store(void)
{
    sl_store_close(store);
    unlink(store_path);
    snprintf(store_path, sizeof(store_path), "%s/fuzz.db-wal", store_dir);
    unlink(store_path);
    snprintf(store_path, sizeof(store_path), "%s/fuzz.db-shm", store_dir);
    unlink(store_path);
    rmdir(store_dir);
}

static void add_reading(sl_reading_t *r, const char *id, sl_sensor_type_t type,
                        int64_t ts_ms, double value)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->sensor_id, sizeof(r->sensor_id), "%s", id);
    snprintf(r->location, sizeof(r->location), "hall-\xc3\xa9");
    r->sensor_type = type;
    r->timestamp_ms = ts_ms;
    r->value = value;
    r->battery_level = 80;
    r->signal_strength = -60;
}

static void setup(void)
{
    char err[256] = "";
    sl_reading_t rows[3];
    sl_store_batch_t batch = {.readings = rows, .reading_count = 3};
    /* 2026-01-01T00:00:00Z: inside the windows the seeds ask for. */
    const int64_t t0 = 1767225600000;

    sl_log_set_level(SL_LOG_ERROR);
    if (mkdtemp(store_dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    snprintf(store_path, sizeof(store_path), "%s/fuzz.db", store_dir);
    store = sl_store_open(store_path, err, sizeof(err));
    if (store == NULL || sl_store_migrate(store, err, sizeof(err)) != SL_OK) {
        fprintf(stderr, "store %s: %s\n", store_path, err);
        abort();
    }
    add_reading(&rows[0], "temp-01", SL_SENSOR_TEMPERATURE, t0, 21.5);
    add_reading(&rows[1], "hum-01", SL_SENSOR_HUMIDITY, t0 + 60000, 40.0);
    add_reading(&rows[2], "vib-01", SL_SENSOR_VIBRATION, t0 + 120000, 5.0);
    rows[2].anomaly = true;
    rows[2].has_score = true;
    rows[2].anomaly_score = -0.7;
    if (sl_store_write(store, &batch, NULL, NULL, NULL) != SL_OK) {
        fprintf(stderr, "store write failed\n");
        abort();
    }
    atexit(remove_store);
}

/* Runs every typed reader on every known name; none may crash. */
static void read_typed(const char *raw)
{
    sl_api_query_t q;
    char err[SL_API_DETAIL_MAX];

    if (sl_api__query_parse(raw, &q, err, sizeof(err)) == SL_OK) {
        for (size_t i = 0; names[i] != NULL; i++) {
            int64_t v = 0;
            bool present;
            int type = -1;
            const char *text = NULL;

            sl_api__query_int(&q, names[i], -1000, 1000, &v, err, sizeof(err));
            sl_api__query_time(&q, names[i], &v, &present, err, sizeof(err));
            sl_api__query_sensor_type(&q, names[i], &type, err, sizeof(err));
            sl_api__query_text(&q, names[i], 16, &text, err, sizeof(err));
        }
        sl_api__query_check_names(&q, names, err, sizeof(err));
    }
    sl_api__query_fini(&q);
}

static void check_response(const sl_api_response_t *resp, const char *path,
                           const char *query)
{
    json_error_t jerr;
    json_t *body;

    /* 503 is the server's own state: the store down, or ingest on an API
     * without a bus, as this harness runs it. */
    if (resp->status >= 500 && resp->status != 503) {
        fprintf(stderr, "%s?%s: HTTP %d: %.*s\n", path, query, resp->status,
                (int)resp->body_len, resp->body);
        abort();
    }
    /* Metrics, the dashboard and its assets are not JSON. */
    if (resp->content_type == NULL ||
        strstr(resp->content_type, "json") == NULL)
        return;
    body = json_loadb(resp->body, resp->body_len, 0, &jerr);
    if (body == NULL) {
        fprintf(stderr, "%s?%s: body is not JSON (%s): %.*s\n", path, query,
                jerr.text, (int)resp->body_len, resp->body);
        abort();
    }
    json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_api_response_t resp;
    char *text;
    const char *path;
    const char *query;

    if (store == NULL)
        setup();
    if (size == 0)
        return 0;
    /* The server hands the parser a C string, so a NUL ends the input. */
    text = strndup((const char *)data + 1, size - 1);
    if (text == NULL)
        abort();

    if (data[0] & 0x80) {
        char *mark = strchr(text, '?');

        path = text;
        query = "";
        if (mark != NULL) {
            *mark = '\0';
            query = mark + 1;
        }
    } else {
        path = paths[data[0] & 7];
        query = text;
    }
    read_typed(query);
    if (sl_api__dispatch(store, data[0] & 8 ? "POST" : "GET", path, query,
                         &resp, NULL) == SL_OK) {
        check_response(&resp, path, query);
        free(resp.body);
    }
    free(text);
    return 0;
}
