/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the routes added for alerts, commerce, history and HTTP ingest,
 * through sl_api__dispatch_request() over a real, migrated SQLite file and
 * a real in-process bus. Bodies are parsed with jansson's strict parser.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "bus/bus.h"
#include "fixture.h"
#include "pipeline/publish.h"
#include "schema/schema.h"
#include "util/err.h"
#include "util/timeutil.h"

#define TOKEN "s3cret-token"

static int setup(void **state)
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

/* Runs one request and returns its body parsed strictly (caller owns it),
 * after checking the status. */
static json_t *call_env(const sl_api_env_t *env, const char *method,
                        const char *path, const char *query, const char *body,
                        const char *auth, int status)
{
    sl_api_request_t req = {.method = method,
                            .path = path,
                            .query = query,
                            .body = body,
                            .body_len = body != NULL ? strlen(body) : 0,
                            .authorization = auth};
    sl_api_response_t resp;
    json_error_t jerr;
    json_t *root;

    assert_int_equal(sl_api__dispatch_request(env, &req, &resp, NULL), SL_OK);
    if (resp.status != status)
        fail_msg("%s %s: status %d, expected %d: %s", method, path, resp.status,
                 status, resp.body);
    root = json_loadb(resp.body, resp.body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        fail_msg("%s %s: body is not strict JSON: %s", method, path, resp.body);
    free(resp.body);
    return root;
}

static json_t *call(sl_store_t *st, const char *method, const char *path,
                    const char *query, int status)
{
    sl_api_env_t env = {.st = st};

    return call_env(&env, method, path, query, NULL, NULL, status);
}

static void write_alerts(api_fixture_t *fx)
{
    fixture_exec_sql(
        fx, "INSERT INTO alerts (id, alert_type, sensor_id, sensor_type,"
            " severity, message, value, anomaly_score, timestamp_ms,"
            " acknowledged, created_at_ms) VALUES"
            " (1, 'threshold', 'temp-01', 'temperature', 'critical', 'hot',"
            "  91.5, NULL, 1767225600000, 0, 1),"
            " (2, 'ml_anomaly', 'temp-01', 'temperature', 'warning', 'odd',"
            "  40, -0.7, 1767225660000, 0, 1),"
            " (3, 'threshold', 'hum-01', 'humidity', 'warning', 'wet',"
            "  97, NULL, 1767225720000, 1, 1)");
}

static void alerts_filter_by_severity_and_state(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root;

    write_alerts(fx);
    root = call(fx->st, "GET", "/api/v1/alerts", "severity=warning", 200);
    assert_int_equal(json_integer_value(json_object_get(root, "count")), 2);
    /* Newest first. */
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(root, "alerts"), 0), "sensor_id")),
        "hum-01");
    json_decref(root);

    root = call(
        fx->st, "GET", "/api/v1/alerts",
        "acknowledged=false&sensor_id=temp-01&from=2026-01-01T00:00:30Z", 200);
    assert_int_equal(json_integer_value(json_object_get(root, "count")), 1);
    json_decref(root);

    root = call(fx->st, "GET", "/api/v1/alerts", "acknowledged=maybe", 422);
    assert_non_null(strstr(json_string_value(json_object_get(root, "detail")),
                           "acknowledged"));
    json_decref(root);
}

static void alert_ack_needs_token(void **state)
{
    api_fixture_t *fx = *state;
    sl_api_env_t env = {.st = fx->st, .token = TOKEN};
    json_t *root;

    write_alerts(fx);
    json_decref(
        call_env(&env, "POST", "/api/v1/alerts/1/ack", NULL, NULL, NULL, 401));
    json_decref(call_env(&env, "POST", "/api/v1/alerts/1/ack", NULL, NULL,
                         "Bearer " TOKEN "x", 401));
    json_decref(call_env(&env, "POST", "/api/v1/alerts/1/ack", NULL, NULL,
                         "Bearer s3cret-toke", 401));
    json_decref(call_env(&env, "POST", "/api/v1/alerts/1/ack", NULL, NULL,
                         "Basic " TOKEN, 401));

    root = call_env(&env, "POST", "/api/v1/alerts/1/ack", NULL, NULL,
                    "Bearer " TOKEN, 200);
    assert_true(json_is_true(json_object_get(root, "acknowledged")));
    json_decref(root);
    json_decref(call_env(&env, "POST", "/api/v1/alerts/42/ack", NULL, NULL,
                         "bearer " TOKEN, 404));

    root = call(fx->st, "GET", "/api/v1/alerts", "acknowledged=true", 200);
    assert_int_equal(json_integer_value(json_object_get(root, "count")), 2);
    json_decref(root);
}

static void history_buckets_one_sensor(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root, *points;

    fixture_write_standard(fx);
    /* temp-01 has 20, 21, 22 at T0, T0+60 s, T0+120 s: two buckets of
     * 90 s hold (20, 21) and (22). */
    root =
        call(fx->st, "GET", "/api/v1/sensors/temp-01/history",
             "from=2026-01-01T00:00:00Z&to=2026-01-01T00:03:00Z&points=2", 200);
    assert_int_equal(json_integer_value(json_object_get(root, "bucket_ms")),
                     90000);
    points = json_object_get(root, "points");
    assert_int_equal(json_array_size(points), 2);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(points, 0), "count")),
        2);
    assert_true(json_real_value(
                    json_object_get(json_array_get(points, 0), "avg")) == 20.5);
    assert_true(json_real_value(
                    json_object_get(json_array_get(points, 1), "max")) == 22.0);
    json_decref(root);

    /* A multi-byte id is one path segment; an empty one is no route. */
    json_decref(call(fx->st, "GET",
                     "/api/v1/sensors/capteur-\xc3\xa9-01/history",
                     "from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z", 200));
    json_decref(call(fx->st, "GET", "/api/v1/sensors//history", NULL, 404));
    json_decref(call(fx->st, "GET", "/api/v1/sensors/temp-01/history",
                     "points=2001", 422));
}

static void commerce_stats_sum_purchases(void **state)
{
    api_fixture_t *fx = *state;
    json_t *root, *top;

    fixture_exec_sql(
        fx, "INSERT INTO ecommerce_events (timestamp_ms, event_id,"
            " event_type, user_id, session_id, device, ip_address,"
            " product_id, product_name, quantity, price, total,"
            " ingested_at_ms) VALUES"
            " (1767225600000, 'e1', 'page_view', 'u1', 's1', 'mobile', 'ip',"
            "  NULL, NULL, NULL, NULL, NULL, 1),"
            " (1767225601000, 'e2', 'purchase', 'u1', 's1', 'mobile', 'ip',"
            "  7, 'lamp', 2, 10.0, 20.0, 1),"
            " (1767225602000, 'e3', 'purchase', 'u2', 's2', 'mobile', 'ip',"
            "  8, 'desk', NULL, 150.0, NULL, 1),"
            " (1767225603000, 'e4', 'search', 'u3', 's3', 'mobile', 'ip',"
            "  NULL, NULL, NULL, NULL, NULL, 1),"
            " (1767225604000, 'e5', 'purchase', 'u3', 's3', 'mobile', 'ip',"
            "  9, 'bad', 1, 9e999, 9e999, 1)");
    root = call(fx->st, "GET", "/api/v1/ecommerce/stats",
                "from=2026-01-01T00:00:00Z&to=2026-01-01T00:01:00Z&top=2", 200);
    assert_int_equal(json_integer_value(json_object_get(root, "events")), 5);
    assert_int_equal(json_integer_value(json_object_get(root, "orders")), 3);
    /* 20 + 150; the infinite total counts as 0. */
    assert_true(json_real_value(json_object_get(root, "revenue")) == 170.0);
    assert_int_equal(json_integer_value(json_object_get(root, "sessions")), 3);
    assert_true(json_real_value(json_object_get(root, "conversion_rate")) ==
                1.0);
    top = json_object_get(root, "top_products");
    assert_int_equal(json_array_size(top), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(top, 0), "product_name")),
                        "desk");
    json_decref(root);

    root = call(fx->st, "GET", "/api/v1/ecommerce/events/latest",
                "event_type=purchase&limit=2", 200);
    assert_int_equal(json_integer_value(json_object_get(root, "count")), 2);
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(root, "events"), 0), "event_id")),
        "e5");
    json_decref(root);
}

static void ingest_without_bus_is_503(void **state)
{
    api_fixture_t *fx = *state;
    sl_api_env_t env = {.st = fx->st, .bus_missing = "no bus here"};
    json_t *root;

    root = call_env(&env, "POST", "/api/v1/sensors/readings", NULL, "[]", NULL,
                    503);
    assert_non_null(strstr(json_string_value(json_object_get(root, "detail")),
                           "no bus here"));
    json_decref(root);
}

static void ingest_publishes_valid_items(void **state)
{
    api_fixture_t *fx = *state;
    const char *topics[] = {"sensor-readings"};
    sl_bus_memory_config_t bus_cfg;
    sl_bus_t *bus;
    sl_registry_t *reg = sl_registry_create();
    sl_publisher_t *pub;
    sl_consumer_t *consumer;
    sl_api_env_t env = {.st = fx->st, .max_body_bytes = 4096};
    char body[1024], big[5000];
    int64_t now_ms = sl_time_now_ms();
    sl_msg_t msgs[8];
    size_t count = 0;
    json_t *root, *errors;

    sl_bus_memory_config_init(&bus_cfg);
    bus = sl_bus_memory_create(&bus_cfg);
    assert_non_null(bus);
    consumer = sl_consumer_create(bus, "api-test", topics, 1);
    pub = sl_publisher_create(bus, reg, 1000);
    assert_non_null(pub);
    assert_int_equal(sl_publisher_set_batch(pub, 16), SL_OK);
    env.pub = pub;

    snprintf(body, sizeof(body),
             "[{\"sensor_id\":\"in-1\",\"sensor_type\":\"temperature\","
             "\"value\":20.5,\"timestamp\":%lld,\"location\":\"lab\","
             "\"metadata\":{\"battery_level\":50,\"signal_strength\":-60}},"
             "{\"sensor_id\":\"in-1\",\"sensor_type\":\"humidity\","
             "\"value\":101,\"timestamp\":%lld,\"location\":\"lab\","
             "\"metadata\":{\"battery_level\":50,\"signal_strength\":-60}},"
             "[1]]",
             (long long)now_ms - 1000, (long long)now_ms - 1000);
    root = call_env(&env, "POST", "/api/v1/sensors/readings", NULL, body, NULL,
                    202);
    assert_int_equal(json_integer_value(json_object_get(root, "accepted")), 1);
    assert_int_equal(json_integer_value(json_object_get(root, "rejected")), 2);
    errors = json_object_get(root, "errors");
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(errors, 0), "index")),
        1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(errors, 0), "reason")),
        "humidity_out_of_range");
    json_decref(root);

    assert_int_equal(sl_consumer_poll(consumer, msgs, 8, &count, 1000), SL_OK);
    assert_int_equal(count, 1);
    assert_memory_equal(msgs[0].key, "in-1", 4);

    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    json_decref(call_env(&env, "POST", "/api/v1/sensors/readings", NULL, big,
                         NULL, 413));
    json_decref(call_env(&env, "POST", "/api/v1/ecommerce/events", NULL,
                         "{\"a\":1,\"a\":2}", NULL, 422));

    sl_consumer_destroy(consumer);
    sl_publisher_destroy(pub);
    sl_bus_close(bus);
    sl_bus_destroy(bus);
    sl_registry_destroy(reg);
}

static void static_files_are_served(void **state)
{
    api_fixture_t *fx = *state;
    sl_api_response_t resp;

    assert_int_equal(sl_api_handle(fx->st, "GET", "/openapi.json", NULL, &resp),
                     SL_OK);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.content_type, "application/json");
    assert_non_null(strstr(resp.body, "\"openapi\": \"3.1.0\""));
    free(resp.body);
    assert_int_equal(sl_api_handle(fx->st, "GET", "/dashboard", NULL, &resp),
                     SL_OK);
    assert_int_equal(resp.status, 200);
    assert_non_null(strstr(resp.body, "uPlot.iife.min.js"));
    free(resp.body);
    assert_int_equal(sl_api_handle(fx->st, "POST", "/docs", NULL, &resp),
                     SL_OK);
    assert_int_equal(resp.status, 405);
    free(resp.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(alerts_filter_by_severity_and_state,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(alert_ack_needs_token, setup, teardown),
        cmocka_unit_test_setup_teardown(history_buckets_one_sensor, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(commerce_stats_sum_purchases, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(ingest_without_bus_is_503, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(ingest_publishes_valid_items, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(static_files_are_served, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
