/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Route tests: sl_api_handle() over a real, migrated SQLite file, without
 * sockets. Each response is parsed with jansson's strict parser, so a NaN
 * or Infinity token in a body fails the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/api_int.h"
#include "fixture.h"
#include "obs/metrics.h"
#include "util/err.h"
#include "util/timeutil.h"

static int setup_standard(void **state)
{
    static api_fixture_t fx;

    fixture_open(&fx);
    fixture_write_standard(&fx);
    *state = &fx;
    return 0;
}

static int setup_empty(void **state)
{
    static api_fixture_t fx;

    fixture_open(&fx);
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_close(*state);
    return 0;
}

/*
 * Calls the route, checks status and content type, and returns the body
 * parsed strictly. The caller owns the result.
 */
static json_t *call(sl_store_t *st, const char *method, const char *path,
                    const char *query, int status)
{
    sl_api_response_t resp;
    json_error_t jerr;
    json_t *root;

    assert_int_equal(sl_api_handle(st, method, path, query, &resp), SL_OK);
    if (resp.status != status)
        fail_msg("%s %s?%s: status %d, expected %d, body %.*s", method, path,
                 query != NULL ? query : "", resp.status, status,
                 (int)resp.body_len, resp.body);
    assert_string_equal(resp.content_type, "application/json");
    assert_non_null(resp.body);
    assert_int_equal(strlen(resp.body), resp.body_len);
    assert_null(strstr(resp.body, "NaN"));
    assert_null(strstr(resp.body, "Infinity"));

    root = json_loadb(resp.body, resp.body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        fail_msg("invalid JSON (%s): %.*s", jerr.text, (int)resp.body_len,
                 resp.body);
    free(resp.body);
    return root;
}

static json_t *get(sl_store_t *st, const char *path, const char *query,
                   int status)
{
    return call(st, "GET", path, query, status);
}

/* Returns the "detail" of an error response; fails when it is missing. */
static const char *detail_of(const json_t *root)
{
    const char *detail = json_string_value(json_object_get(root, "detail"));

    assert_non_null(detail);
    return detail;
}

static int64_t time_field(const json_t *obj, const char *key)
{
    const char *text = json_string_value(json_object_get(obj, key));
    int64_t ms = 0;

    if (text == NULL)
        fail_msg("field %s is not a string", key);
    assert_int_equal(sl_time_parse_iso8601(text, &ms), SL_OK);
    assert_non_null(strchr(text, 'Z'));
    return ms;
}

/* ---- GET / -------------------------------------------------------------- */

static void health_reports_store_ok(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root = get(fx->st, "/", NULL, 200);
    int64_t ts = time_field(root, "timestamp");

    assert_string_equal(json_string_value(json_object_get(root, "status")),
                        "healthy");
    assert_string_equal(json_string_value(json_object_get(root, "service")),
                        "sluice");
    assert_string_equal(json_string_value(json_object_get(root, "version")),
                        SL_API_VERSION);
    assert_string_equal(json_string_value(json_object_get(root, "store")),
                        "ok");
    assert_true(ts > sl_time_now_ms() - 60000);
    assert_true(ts <= sl_time_now_ms());
    json_decref(root);
}

static void health_without_store_is_503(void **state)
{
    json_t *root = get(NULL, "/", NULL, 503);

    (void)state;
    assert_string_equal(json_string_value(json_object_get(root, "status")),
                        "unhealthy");
    assert_string_equal(json_string_value(json_object_get(root, "store")),
                        "unavailable");
    json_decref(root);
}

static void health_unmigrated_store_is_503(void **state)
{
    api_fixture_t *fx = *state;
    char path[160], err[256] = "";
    sl_store_t *st;
    json_t *root;

    snprintf(path, sizeof(path), "%s/unmigrated.db", fx->dir);
    st = sl_store_open(path, err, sizeof(err));
    if (st == NULL)
        fail_msg("sl_store_open(%s) failed: %s", path, err);
    root = get(st, "/", NULL, 503);
    assert_string_equal(json_string_value(json_object_get(root, "store")),
                        "unavailable");
    json_decref(root);
    sl_store_close(st);
}

static void health_rejects_parameters(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root = get(fx->st, "/", "verbose=1", 422);

    assert_non_null(strstr(detail_of(root), "verbose"));
    json_decref(root);
}

/* ---- GET /api/v1/sensors/latest ------------------------------------------ */

static void latest_newest_first(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root = get(fx->st, "/api/v1/sensors/latest", NULL, 200);
    json_t *readings = json_object_get(root, "readings");
    int64_t prev = INT64_MAX;
    size_t i;
    json_t *r;

    assert_int_equal(json_integer_value(json_object_get(root, "count")), 8);
    assert_int_equal(json_array_size(readings), 8);
    json_array_foreach(readings, i, r)
    {
        int64_t ts = time_field(r, "timestamp");

        assert_true(ts <= prev);
        prev = ts;
    }

    r = json_array_get(readings, 0);
    assert_string_equal(json_string_value(json_object_get(r, "sensor_id")),
                        "vib-01");
    assert_string_equal(json_string_value(json_object_get(r, "sensor_type")),
                        "vibration");
    assert_true(json_real_value(json_object_get(r, "value")) == 5.0);
    assert_int_equal(time_field(r, "timestamp"), T0_MS + 150000);
    assert_string_equal(json_string_value(json_object_get(r, "location")),
                        "building-a/floor-2");
    assert_true(json_is_true(json_object_get(r, "anomaly")));
    json_decref(root);
}

static void latest_default_limit_is_10(void **state)
{
    api_fixture_t *fx = *state;
    sl_reading_t rows[12];
    json_t *root;

    for (int i = 0; i < 12; i++)
        fixture_reading(&rows[i], "bulk-01", SL_SENSOR_POWER,
                        T0_MS + 1000000 + i, (double)i);
    fixture_write(fx, rows, 12);

    root = get(fx->st, "/api/v1/sensors/latest", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(root, "count")), 10);
    assert_int_equal(json_array_size(json_object_get(root, "readings")), 10);
    json_decref(root);

    root = get(fx->st, "/api/v1/sensors/latest", "limit=100", 200);
    assert_int_equal(json_integer_value(json_object_get(root, "count")), 20);
    json_decref(root);
}

/* Checks that every reading of a latest query has the given sensor_id. */
static void check_all_sensor(const json_t *root, const char *sensor_id,
                             size_t count)
{
    json_t *readings = json_object_get(root, "readings");
    size_t i;
    json_t *r;

    assert_int_equal(json_integer_value(json_object_get(root, "count")), count);
    assert_int_equal(json_array_size(readings), count);
    json_array_foreach(readings, i, r)
    {
        assert_string_equal(json_string_value(json_object_get(r, "sensor_id")),
                            sensor_id);
    }
}

static void latest_filters(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root;

    root = get(fx->st, "/api/v1/sensors/latest", "sensor_id=temp-01", 200);
    check_all_sensor(root, "temp-01", 3);
    json_decref(root);

    root = get(fx->st, "/api/v1/sensors/latest", "sensor_type=humidity&limit=1",
               200);
    check_all_sensor(root, "hum-01", 1);
    assert_int_equal(
        time_field(json_array_get(json_object_get(root, "readings"), 0),
                   "timestamp"),
        T0_MS + 90000);
    json_decref(root);

    /* Sensor types are matched case-insensitively. */
    root = get(fx->st, "/api/v1/sensors/latest", "sensor_type=HUMIDITY", 200);
    check_all_sensor(root, "hum-01", 2);
    json_decref(root);

    /* from is inclusive and to exclusive. */
    root = get(fx->st, "/api/v1/sensors/latest",
               "sensor_id=temp-01&from=2026-01-01T00:01:00Z"
               "&to=2026-01-01T00:02:00Z",
               200);
    check_all_sensor(root, "temp-01", 1);
    assert_int_equal(
        time_field(json_array_get(json_object_get(root, "readings"), 0),
                   "timestamp"),
        T0_MS + 60000);
    json_decref(root);

    root = get(fx->st, "/api/v1/sensors/latest", "sensor_id=nobody", 200);
    check_all_sensor(root, "nobody", 0);
    json_decref(root);
}

static void latest_utf8_sensor_id_round_trip(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root = get(fx->st, "/api/v1/sensors/latest",
                       "sensor_id=capteur-%C3%A9-01", 200);

    check_all_sensor(root, "capteur-\xc3\xa9-01", 1);
    json_decref(root);
}

static void latest_plus_decodes_to_space(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root;

    root = get(fx->st, "/api/v1/sensors/latest", "sensor_id=hall+sensor", 200);
    check_all_sensor(root, "hall sensor", 1);
    json_decref(root);

    root =
        get(fx->st, "/api/v1/sensors/latest", "sensor_id=hall%20sensor", 200);
    check_all_sensor(root, "hall sensor", 1);
    json_decref(root);
}

static void latest_skips_empty_pairs(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root = get(fx->st, "/api/v1/sensors/latest",
                       "&limit=2&&sensor_type=temperature&", 200);

    assert_int_equal(json_integer_value(json_object_get(root, "count")), 2);
    json_decref(root);
}

/* Rows written around the store: NULL (how SQLite keeps a NaN), an
 * infinity from an overflowing literal, and text in the REAL column. */
static void latest_non_finite_rows_render_null(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root, *readings, *r;
    size_t i, nulls = 0;

    fixture_exec_sql(
        fx,
        "INSERT INTO sensor_readings (timestamp_ms, sensor_id,"
        " sensor_type, value, location, anomaly, battery_level,"
        " signal_strength, ingested_at_ms) VALUES"
        " (1767229200000, 'nan-01', 'temperature', NULL, 'x', 0, 50, -70, 1),"
        " (1767229201000, 'nan-01', 'temperature', 9e999, 'x', 0, 50, -70, 1),"
        " (1767229202000, 'nan-01', 'temperature', -9e999, 'x', 0, 50, -70, 1),"
        " (1767229203000, 'nan-01', 'temperature', 'NaN', 'x', 0, 50, -70, 1)");

    root = get(fx->st, "/api/v1/sensors/latest", "sensor_id=nan-01", 200);
    readings = json_object_get(root, "readings");
    assert_int_equal(json_array_size(readings), 4);
    json_array_foreach(readings, i, r)
    {
        json_t *value = json_object_get(r, "value");

        assert_non_null(value);
        assert_true(json_is_null(value) || json_is_number(value));
        if (json_is_null(value))
            nulls++;
        else
            assert_true(isfinite(json_number_value(value)));
    }
    /* NULL and both infinities cannot be numbers in JSON. */
    assert_true(nulls >= 3);
    json_decref(root);

    root = get(fx->st, "/api/v1/sensors/stats",
               "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z", 200);
    json_decref(root);
}

static void latest_store_failure_is_503(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root;

    fixture_exec_sql(fx, "DROP TABLE sensor_readings");
    root = get(fx->st, "/api/v1/sensors/latest", "sensor_id=temp-01", 503);
    assert_non_null(strstr(detail_of(root), "store"));
    json_decref(root);

    root = get(fx->st, "/api/v1/sensors/stats", NULL, 503);
    assert_non_null(strstr(detail_of(root), "store"));
    json_decref(root);
}

static void routes_without_store_are_503(void **state)
{
    json_t *root;

    (void)state;
    root = get(NULL, "/api/v1/sensors/latest", NULL, 503);
    json_decref(root);
    root = get(NULL, "/api/v1/sensors/anomalies", NULL, 503);
    json_decref(root);
    root = get(NULL, "/api/v1/sensors/stats", NULL, 503);
    json_decref(root);
}

/* ---- GET /api/v1/sensors/stats ------------------------------------------- */

/* Returns the stats entry of sensor_id; fails when it is missing. */
static json_t *find_stats(const json_t *root, const char *sensor_id)
{
    json_t *stats = json_object_get(root, "stats");
    size_t i;
    json_t *s;

    json_array_foreach(stats, i, s)
    {
        const char *id = json_string_value(json_object_get(s, "sensor_id"));

        if (id != NULL && strcmp(id, sensor_id) == 0)
            return s;
    }
    fail_msg("no stats for %s", sensor_id);
    return NULL;
}

static void stats_explicit_range(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root =
        get(fx->st, "/api/v1/sensors/stats",
            "from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z", 200);
    json_t *s;

    assert_true(json_is_null(json_object_get(root, "time_window_minutes")));
    assert_int_equal(time_field(root, "from"), T0_MS);
    assert_int_equal(time_field(root, "to"), T0_MS + 3600000);
    assert_int_equal(json_integer_value(json_object_get(root, "count")), 5);
    assert_int_equal(json_array_size(json_object_get(root, "stats")), 5);

    s = find_stats(root, "temp-01");
    assert_string_equal(json_string_value(json_object_get(s, "sensor_type")),
                        "temperature");
    assert_int_equal(json_integer_value(json_object_get(s, "reading_count")),
                     3);
    assert_true(json_number_value(json_object_get(s, "avg_value")) == 21.0);
    assert_true(json_number_value(json_object_get(s, "min_value")) == 20.0);
    assert_true(json_number_value(json_object_get(s, "max_value")) == 22.0);
    assert_int_equal(json_integer_value(json_object_get(s, "anomaly_count")),
                     0);
    assert_int_equal(time_field(s, "first_timestamp"), T0_MS);
    assert_int_equal(time_field(s, "last_timestamp"), T0_MS + 120000);

    s = find_stats(root, "hum-01");
    assert_int_equal(json_integer_value(json_object_get(s, "reading_count")),
                     2);
    assert_int_equal(json_integer_value(json_object_get(s, "anomaly_count")),
                     1);
    assert_true(json_number_value(json_object_get(s, "avg_value")) == 45.0);
    json_decref(root);
}

static void stats_range_and_type_filter(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root, *s;

    /* [T0+60 s, T0+100 s) contains temp-01 at +60 s and hum-01 at +90 s. */
    root = get(fx->st, "/api/v1/sensors/stats",
               "from=2026-01-01T00:01:00Z&to=2026-01-01T00:01:40Z", 200);
    assert_int_equal(json_integer_value(json_object_get(root, "count")), 2);
    s = find_stats(root, "temp-01");
    assert_int_equal(json_integer_value(json_object_get(s, "reading_count")),
                     1);
    assert_true(json_number_value(json_object_get(s, "avg_value")) == 21.0);
    json_decref(root);

    root = get(fx->st, "/api/v1/sensors/stats",
               "sensor_type=temperature&from=2026-01-01&to=2026-01-02", 200);
    assert_int_equal(json_integer_value(json_object_get(root, "count")), 2);
    find_stats(root, "temp-01");
    find_stats(root, "capteur-\xc3\xa9-01");
    json_decref(root);
}

static void stats_default_window_is_60_minutes(void **state)
{
    api_fixture_t *fx = *state;
    int64_t now = sl_time_now_ms();
    sl_reading_t rows[2];
    json_t *root, *s;
    int64_t from, to;

    fixture_reading(&rows[0], "recent-01", SL_SENSOR_POWER, now - 5 * 60000,
                    7.0);
    fixture_reading(&rows[1], "recent-01", SL_SENSOR_POWER, now - 120 * 60000,
                    9.0);
    fixture_write(fx, rows, 2);

    root = get(fx->st, "/api/v1/sensors/stats", NULL, 200);
    assert_int_equal(
        json_integer_value(json_object_get(root, "time_window_minutes")), 60);
    from = time_field(root, "from");
    to = time_field(root, "to");
    assert_int_equal(to - from, 60 * 60000);
    assert_true(to >= now);
    assert_int_equal(json_integer_value(json_object_get(root, "count")), 1);
    s = find_stats(root, "recent-01");
    assert_int_equal(json_integer_value(json_object_get(s, "reading_count")),
                     1);
    assert_true(json_number_value(json_object_get(s, "avg_value")) == 7.0);
    json_decref(root);

    root =
        get(fx->st, "/api/v1/sensors/stats", "time_window_minutes=1440", 200);
    assert_int_equal(
        json_integer_value(json_object_get(root, "time_window_minutes")), 1440);
    s = find_stats(root, "recent-01");
    assert_int_equal(json_integer_value(json_object_get(s, "reading_count")),
                     2);
    json_decref(root);

    /* to alone moves the window to [to - 10 min, to). It contains every
     * standard sensor but vib-01 (T0+150 s) and excludes T0+120 s. */
    root = get(fx->st, "/api/v1/sensors/stats",
               "time_window_minutes=10&to=2026-01-01T00:02:00Z", 200);
    assert_int_equal(time_field(root, "from"), T0_MS - 480000);
    assert_int_equal(json_integer_value(json_object_get(root, "count")), 4);
    s = find_stats(root, "temp-01");
    assert_int_equal(json_integer_value(json_object_get(s, "reading_count")),
                     2);
    json_decref(root);
}

/* ---- GET /api/v1/sensors/anomalies --------------------------------------- */

static void anomalies_only_flagged(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root = get(fx->st, "/api/v1/sensors/anomalies", NULL, 200);
    json_t *list = json_object_get(root, "anomalies");
    json_t *first;
    size_t i;
    json_t *r;

    assert_int_equal(json_integer_value(json_object_get(root, "count")), 2);
    assert_int_equal(json_array_size(list), 2);
    json_array_foreach(list, i, r)
    {
        assert_true(json_is_true(json_object_get(r, "anomaly")));
        assert_true(json_is_number(json_object_get(r, "anomaly_score")));
    }
    first = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(first, "sensor_id")),
                        "vib-01");
    assert_true(json_number_value(json_object_get(first, "anomaly_score")) ==
                0.75);
    json_decref(root);

    root = get(fx->st, "/api/v1/sensors/anomalies",
               "sensor_type=humidity&limit=1000", 200);
    assert_int_equal(json_integer_value(json_object_get(root, "count")), 1);
    r = json_array_get(json_object_get(root, "anomalies"), 0);
    assert_string_equal(json_string_value(json_object_get(r, "sensor_id")),
                        "hum-01");
    assert_true(json_number_value(json_object_get(r, "anomaly_score")) == 0.9);
    json_decref(root);
}

/* ---- GET /metrics ------------------------------------------------------- */

static void metrics_renders_registry(void **state)
{
    sl_counter_t *c = sl_metrics_counter(
        "sluice_api_test_probe_total", "Counter the API route test sets", NULL);
    sl_api_response_t resp;

    (void)state;
    assert_non_null(c);
    sl_counter_add(c, 3);
    assert_int_equal(sl_api_handle(NULL, "GET", "/metrics", NULL, &resp),
                     SL_OK);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.content_type, "text/plain; version=0.0.4");
    assert_non_null(resp.body);
    assert_non_null(strstr(resp.body, "sluice_api_test_probe_total 3"));
    free(resp.body);
}

/* ---- errors ------------------------------------------------------------- */

typedef struct invalid_case {
    const char *path;
    const char *query;
    const char *detail; /* expected prefix of the detail message */
} invalid_case_t;

#define LATEST "/api/v1/sensors/latest"
#define STATS "/api/v1/sensors/stats"
#define ANOMALIES "/api/v1/sensors/anomalies"

static const invalid_case_t invalid_cases[] = {
    {LATEST, "limit=0", "limit: must be an integer between 1 and 100"},
    {LATEST, "limit=101", "limit: must be an integer between 1 and 100"},
    {LATEST, "limit=abc", "limit: must be an integer between 1 and 100"},
    {LATEST, "limit=10x", "limit: must be an integer between 1 and 100"},
    {LATEST, "limit=", "limit: must be an integer between 1 and 100"},
    {LATEST, "limit", "limit: must be an integer between 1 and 100"},
    {LATEST, "limit=-1", "limit: must be an integer between 1 and 100"},
    {LATEST, "limit=1e1", "limit: must be an integer between 1 and 100"},
    {LATEST, "limit=%2B10", NULL},
    {LATEST, "limit=+10", "limit: must be an integer between 1 and 100"},
    {LATEST, "limit=%2010", "limit: must be an integer between 1 and 100"},
    {LATEST, "limit=99999999999999999999999",
     "limit: must be an integer between 1 and 100"},
    {LATEST, "limit=1&limit=2", "limit: given more than once"},
    {LATEST, "sensor_type=toaster",
     "sensor_type: must be one of temperature, humidity, pressure, "
     "vibration, power, other"},
    {LATEST, "sensor_id=", "sensor_id: must be between 1 and 127 bytes"},
    {LATEST, "from=yesterday", "from: must be an ISO-8601 date-time"},
    {LATEST, "to=2026-02-30T00:00:00Z", "to: must be an ISO-8601 date-time"},
    {LATEST, "from=2026-01-02&to=2026-01-01", "from: must be earlier than to"},
    {LATEST, "from=2026-01-01&to=2026-01-01", "from: must be earlier than to"},
    {LATEST, "foo=1",
     "unknown query parameter: foo (allowed: sensor_id, "
     "sensor_type, limit, from, to)"},
    {LATEST, "foo=1&limit=5&bar=2", "unknown query parameters: foo, bar"},
    {LATEST, "sensor_id=%zz", "sensor_id: invalid percent-escape"},
    {LATEST, "sensor_id=%4", "sensor_id: invalid percent-escape"},
    {LATEST, "sensor_id=abc%", "sensor_id: invalid percent-escape"},
    {LATEST, "sensor_id=%C3", "sensor_id: decoded text is not valid UTF-8"},
    {LATEST, "sensor_id=a%00b", "sensor_id: decoded text is not valid UTF-8"},
    {LATEST, "li%zzmit=1", "query: parameter name: invalid percent-escape"},
    {STATS, "time_window_minutes=0",
     "time_window_minutes: must be an integer between 1 and 1440"},
    {STATS, "time_window_minutes=1441",
     "time_window_minutes: must be an integer between 1 and 1440"},
    {STATS, "time_window_minutes=60.5",
     "time_window_minutes: must be an integer between 1 and 1440"},
    {STATS, "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
     "from: must be earlier than to"},
    {STATS, "from=2999-01-01T00:00:00Z", "from: must be earlier than to"},
    {STATS, "sensor_type=", "sensor_type: must be one of"},
    {STATS, "limit=5", "unknown query parameter: limit"},
    {ANOMALIES, "limit=0", "limit: must be an integer between 1 and 1000"},
    {ANOMALIES, "limit=1001", "limit: must be an integer between 1 and 1000"},
    {ANOMALIES, "sensor_id=temp-01", "unknown query parameter: sensor_id"},
};

static void invalid_parameters_are_422(void **state)
{
    api_fixture_t *fx = *state;
    char long_id[200];

    for (size_t i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]);
         i++) {
        const invalid_case_t *c = &invalid_cases[i];
        json_t *root =
            get(fx->st, c->path, c->query, c->detail != NULL ? 422 : 200);

        if (c->detail != NULL &&
            strncmp(detail_of(root), c->detail, strlen(c->detail)) != 0)
            fail_msg("%s?%s: detail \"%s\", expected \"%s...\"", c->path,
                     c->query, detail_of(root), c->detail);
        json_decref(root);
    }

    /* SL_ID_MAX + 1 bytes is one too many for a sensor id. */
    memset(long_id, 0, sizeof(long_id));
    memcpy(long_id, "sensor_id=", 10);
    memset(long_id + 10, 'x', SL_ID_MAX + 1);
    json_decref(get(fx->st, LATEST, long_id, 422));
    long_id[10 + SL_ID_MAX] = '\0';
    json_decref(get(fx->st, LATEST, long_id, 200));
}

static void unknown_name_with_utf8_is_named(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root = get(fx->st, LATEST, "caf%C3%A9=1", 422);

    assert_string_equal(detail_of(root),
                        "unknown query parameter: caf\xc3\xa9 (allowed: "
                        "sensor_id, sensor_type, limit, from, to)");
    json_decref(root);
}

/*
 * Names made of 'é' (two bytes each) and ", " separators keep every
 * boundary at an even offset after the 26-byte prefix. The 511 bytes a
 * detail can keep therefore end inside a character, which the response
 * must drop to stay valid JSON.
 */
static void long_detail_cut_at_utf8_boundary(void **state)
{
    api_fixture_t *fx = *state;
    char query[4096] = "";
    const char *detail;
    json_t *root;

    for (int k = 1; k <= 25; k++) {
        if (k > 1)
            strcat(query, "&");
        for (int i = 0; i < k; i++)
            strcat(query, "%C3%A9");
        strcat(query, "=1");
    }
    root = get(fx->st, LATEST, query, 422);
    detail = detail_of(root);
    assert_int_equal(
        strncmp(detail, "unknown query parameters: \xc3\xa9, ", 30), 0);
    assert_true(strlen(detail) < SL_API_DETAIL_MAX);
    assert_true(strlen(detail) >= SL_API_DETAIL_MAX - 4);
    json_decref(root);
}

static void unknown_path_is_404(void **state)
{
    api_fixture_t *fx = *state;
    static const char *const paths[] = {"/nope",
                                        "/api/v1/sensors",
                                        "/api/v1/sensors/latest/",
                                        "/API/V1/SENSORS/LATEST",
                                        "",
                                        "/metrics/x"};

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        json_t *root = get(fx->st, paths[i], "limit=abc", 404);

        assert_string_equal(detail_of(root), "Not Found");
        json_decref(root);
    }
    json_decref(call(fx->st, "POST", "/nope", NULL, 404));
}

static void wrong_method_is_405(void **state)
{
    api_fixture_t *fx = *state;
    static const char *const methods[] = {"POST", "PUT", "DELETE", "PATCH",
                                          "get"};

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        json_t *root = call(fx->st, methods[i], LATEST, NULL, 405);

        assert_string_equal(detail_of(root), "Method Not Allowed");
        json_decref(root);
    }
    json_decref(call(fx->st, "POST", "/metrics", NULL, 405));
}

static void dispatch_reports_route_template(void **state)
{
    api_fixture_t *fx = *state;
    sl_api_response_t resp;
    sl_api_route_t route;

    assert_int_equal(
        sl_api__dispatch(fx->st, "GET", LATEST, "limit=0", &resp, &route),
        SL_OK);
    assert_int_equal(route, SL_API_ROUTE_LATEST);
    assert_string_equal(sl_api__route_label(route), LATEST);
    free(resp.body);

    assert_int_equal(
        sl_api__dispatch(fx->st, "GET", "/secret/12345", NULL, &resp, &route),
        SL_OK);
    assert_int_equal(route, SL_API_ROUTE_UNMATCHED);
    assert_string_equal(sl_api__route_label(route), "unmatched");
    free(resp.body);
}

/* ---- query parser ------------------------------------------------------- */

static void query_parse_decodes_pairs(void **state)
{
    sl_api_query_t q;
    char err[SL_API_DETAIL_MAX] = "";

    (void)state;
    assert_int_equal(
        sl_api__query_parse("a=1&b=x%3Dy%26z&c&d=%2B+", &q, err, sizeof(err)),
        SL_OK);
    assert_int_equal(q.count, 4);
    assert_string_equal(sl_api__query_get(&q, "a"), "1");
    assert_string_equal(sl_api__query_get(&q, "b"), "x=y&z");
    assert_string_equal(sl_api__query_get(&q, "c"), "");
    assert_string_equal(sl_api__query_get(&q, "d"), "+ ");
    assert_null(sl_api__query_get(&q, "e"));
    sl_api__query_fini(&q);

    /* ';' separates pairs as libwebsockets does; %3B stays in a value. */
    assert_int_equal(sl_api__query_parse("a=1;b=x%3By", &q, err, sizeof(err)),
                     SL_OK);
    assert_int_equal(q.count, 2);
    assert_string_equal(sl_api__query_get(&q, "a"), "1");
    assert_string_equal(sl_api__query_get(&q, "b"), "x;y");
    sl_api__query_fini(&q);

    assert_int_equal(sl_api__query_parse(NULL, &q, err, sizeof(err)), SL_OK);
    assert_int_equal(q.count, 0);
    sl_api__query_fini(&q);

    assert_int_equal(sl_api__query_parse("a=1&b=%G1", &q, err, sizeof(err)),
                     SL_EINVAL);
    assert_string_equal(err, "b: invalid percent-escape (expected '%' and "
                             "two hex digits)");
    sl_api__query_fini(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(health_reports_store_ok, setup_standard,
                                        teardown),
        cmocka_unit_test(health_without_store_is_503),
        cmocka_unit_test_setup_teardown(health_unmigrated_store_is_503,
                                        setup_empty, teardown),
        cmocka_unit_test_setup_teardown(health_rejects_parameters, setup_empty,
                                        teardown),
        cmocka_unit_test_setup_teardown(latest_newest_first, setup_standard,
                                        teardown),
        cmocka_unit_test_setup_teardown(latest_default_limit_is_10,
                                        setup_standard, teardown),
        cmocka_unit_test_setup_teardown(latest_filters, setup_standard,
                                        teardown),
        cmocka_unit_test_setup_teardown(latest_utf8_sensor_id_round_trip,
                                        setup_standard, teardown),
        cmocka_unit_test_setup_teardown(latest_plus_decodes_to_space,
                                        setup_standard, teardown),
        cmocka_unit_test_setup_teardown(latest_skips_empty_pairs,
                                        setup_standard, teardown),
        cmocka_unit_test_setup_teardown(latest_non_finite_rows_render_null,
                                        setup_standard, teardown),
        cmocka_unit_test_setup_teardown(latest_store_failure_is_503,
                                        setup_standard, teardown),
        cmocka_unit_test(routes_without_store_are_503),
        cmocka_unit_test_setup_teardown(stats_explicit_range, setup_standard,
                                        teardown),
        cmocka_unit_test_setup_teardown(stats_range_and_type_filter,
                                        setup_standard, teardown),
        cmocka_unit_test_setup_teardown(stats_default_window_is_60_minutes,
                                        setup_standard, teardown),
        cmocka_unit_test_setup_teardown(anomalies_only_flagged, setup_standard,
                                        teardown),
        cmocka_unit_test(metrics_renders_registry),
        cmocka_unit_test_setup_teardown(invalid_parameters_are_422,
                                        setup_standard, teardown),
        cmocka_unit_test_setup_teardown(unknown_name_with_utf8_is_named,
                                        setup_empty, teardown),
        cmocka_unit_test_setup_teardown(long_detail_cut_at_utf8_boundary,
                                        setup_empty, teardown),
        cmocka_unit_test_setup_teardown(unknown_path_is_404, setup_empty,
                                        teardown),
        cmocka_unit_test_setup_teardown(wrong_method_is_405, setup_empty,
                                        teardown),
        cmocka_unit_test_setup_teardown(dispatch_reports_route_template,
                                        setup_empty, teardown),
        cmocka_unit_test(query_parse_decodes_pairs),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
