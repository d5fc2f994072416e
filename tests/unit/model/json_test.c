/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the JSON forms of the records: rendering, parsing, the round trip
 * through text, non-finite numbers and odd text, and parse errors that name
 * the field.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/json.h"
#include "util/err.h"

/* 2026-03-15T12:34:56.789Z */
#define TS_MS INT64_C(1773578096789)
#define TS_TEXT "2026-03-15T12:34:56.789Z"

static sl_reading_t sample_reading(void)
{
    sl_reading_t rec;

    memset(&rec, 0, sizeof(rec));
    strcpy(rec.sensor_id, "sensor-007");
    strcpy(rec.location, "building-2/floor-3");
    strcpy(rec.unit, "%");
    rec.has_unit = true;
    rec.sensor_type = SL_SENSOR_HUMIDITY;
    rec.value = 47.125;
    rec.timestamp_ms = TS_MS;
    rec.battery_level = 88;
    rec.signal_strength = -67;
    rec.anomaly = true;
    rec.anomaly_score = 0.8125;
    rec.has_score = true;
    return rec;
}

static sl_event_t sample_event(void)
{
    sl_event_t ev;

    memset(&ev, 0, sizeof(ev));
    strcpy(ev.event_id, "ev-42");
    strcpy(ev.user_id, "user-9");
    strcpy(ev.session_id, "sess-3");
    strcpy(ev.ip_address, "2001:db8::1");
    strcpy(ev.product_name, "Kaffeem\xc3\xbchle");
    strcpy(ev.category, "kitchen");
    strcpy(ev.currency, "EUR");
    strcpy(ev.page, "/p/123");
    strcpy(ev.payment_method, "card");
    strcpy(ev.shipping_address, "1 Rue de la Paix, Paris");
    strcpy(ev.query, "grinder \"burr\"");
    ev.event_type = SL_EVENT_PURCHASE;
    ev.device = SL_DEVICE_TABLET;
    ev.timestamp_ms = TS_MS;
    ev.product_id = INT64_C(9007199254740993); /* beyond double precision */
    ev.quantity = 2;
    ev.price = 59.9;
    ev.total = 119.8;
    ev.duration_seconds = 31.25;
    ev.results_count = 17;
    ev.present = SL_EV_PRODUCT_ID | SL_EV_PRODUCT_NAME | SL_EV_CATEGORY |
                 SL_EV_QUANTITY | SL_EV_PRICE | SL_EV_TOTAL | SL_EV_CURRENCY |
                 SL_EV_PAGE | SL_EV_DURATION | SL_EV_PAYMENT_METHOD |
                 SL_EV_SHIPPING_ADDRESS | SL_EV_QUERY | SL_EV_RESULTS_COUNT;
    return ev;
}

/* Serializes obj compactly, checks that the text contains no NaN or
 * Infinity token and parses back with duplicate keys rejected, then returns
 * the parsed copy. Consumes obj. */
static json_t *through_text(json_t *obj)
{
    json_error_t error;
    json_t *back;
    char *text;

    assert_non_null(obj);
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    assert_non_null(text);
    assert_null(strstr(text, "NaN"));
    assert_null(strstr(text, "Infinity"));
    back = json_loads(text, JSON_REJECT_DUPLICATES, &error);
    if (back == NULL)
        fail_msg("json_loads: %s in %s", error.text, text);
    free(text);
    return back;
}

/* Parses a reading from JSON text, writing any error message into err. */
static int reading_from_text(const char *text, sl_reading_t *out, char *err,
                             size_t err_size)
{
    json_error_t error;
    json_t *obj = json_loads(text, JSON_ALLOW_NUL, &error);
    int rc;

    if (obj == NULL)
        fail_msg("test input is not JSON: %s: %s", error.text, text);
    rc = sl_reading_from_json(obj, out, err, err_size);
    json_decref(obj);
    return rc;
}

static int event_from_text(const char *text, sl_event_t *out, char *err,
                           size_t err_size)
{
    json_error_t error;
    json_t *obj = json_loads(text, 0, &error);
    int rc;

    if (obj == NULL)
        fail_msg("test input is not JSON: %s: %s", error.text, text);
    rc = sl_event_from_json(obj, out, err, err_size);
    json_decref(obj);
    return rc;
}

static void reading_renders_fields(void **state)
{
    sl_reading_t rec = sample_reading();
    json_t *obj = sl_reading_to_json(&rec);
    json_t *meta;

    (void)state;
    assert_non_null(obj);
    assert_string_equal(json_string_value(json_object_get(obj, "sensor_id")),
                        "sensor-007");
    assert_string_equal(json_string_value(json_object_get(obj, "sensor_type")),
                        "humidity");
    assert_true(json_real_value(json_object_get(obj, "value")) == 47.125);
    assert_string_equal(json_string_value(json_object_get(obj, "timestamp")),
                        TS_TEXT);
    assert_string_equal(json_string_value(json_object_get(obj, "location")),
                        "building-2/floor-3");
    assert_true(json_is_true(json_object_get(obj, "anomaly")));
    assert_true(json_real_value(json_object_get(obj, "anomaly_score")) ==
                0.8125);
    assert_string_equal(json_string_value(json_object_get(obj, "unit")), "%");
    meta = json_object_get(obj, "metadata");
    assert_true(json_is_object(meta));
    assert_int_equal(json_integer_value(json_object_get(meta, "battery_level")),
                     88);
    assert_int_equal(
        json_integer_value(json_object_get(meta, "signal_strength")), -67);
    json_decref(obj);
}

static void reading_absent_optionals_null(void **state)
{
    sl_reading_t rec = sample_reading();
    json_t *obj;

    (void)state;
    rec.has_score = false;
    rec.has_unit = false;
    rec.anomaly = false;
    obj = sl_reading_to_json(&rec);
    assert_non_null(obj);
    assert_true(json_is_null(json_object_get(obj, "anomaly_score")));
    assert_true(json_is_null(json_object_get(obj, "unit")));
    assert_true(json_is_false(json_object_get(obj, "anomaly")));
    json_decref(obj);
}

static void reading_round_trip(void **state)
{
    sl_reading_t rec = sample_reading();
    sl_reading_t back;
    char err[128] = "";
    json_t *obj;

    (void)state;
    obj = through_text(sl_reading_to_json(&rec));
    assert_int_equal(sl_reading_from_json(obj, &back, err, sizeof(err)), SL_OK);
    json_decref(obj);
    assert_string_equal(err, "");
    assert_memory_equal(&back, &rec, sizeof(rec));

    /* And without the optional fields. */
    rec.has_score = false;
    rec.anomaly_score = 0.0;
    rec.has_unit = false;
    rec.unit[0] = '\0';
    rec.anomaly = false;
    obj = through_text(sl_reading_to_json(&rec));
    assert_int_equal(sl_reading_from_json(obj, &back, err, sizeof(err)), SL_OK);
    json_decref(obj);
    assert_memory_equal(&back, &rec, sizeof(rec));
}

static void event_round_trip(void **state)
{
    sl_event_t ev = sample_event();
    sl_event_t back;
    char err[128] = "";
    json_t *obj;

    (void)state;
    obj = through_text(sl_event_to_json(&ev));
    assert_int_equal(json_integer_value(json_object_get(obj, "product_id")),
                     INT64_C(9007199254740993));
    assert_int_equal(sl_event_from_json(obj, &back, err, sizeof(err)), SL_OK);
    json_decref(obj);
    assert_memory_equal(&back, &ev, sizeof(ev));
}

static void event_absent_optionals(void **state)
{
    static const char *const optional[] = {"product_id",
                                           "product_name",
                                           "category",
                                           "quantity",
                                           "price",
                                           "total",
                                           "currency",
                                           "page",
                                           "duration_seconds",
                                           "payment_method",
                                           "shipping_address",
                                           "query",
                                           "results_count"};
    sl_event_t ev;
    sl_event_t back;
    char err[128] = "";
    json_t *obj;

    (void)state;
    memset(&ev, 0, sizeof(ev));
    strcpy(ev.event_id, "ev-1");
    strcpy(ev.user_id, "u");
    strcpy(ev.session_id, "s");
    strcpy(ev.ip_address, "192.0.2.7");
    ev.event_type = SL_EVENT_PAGE_VIEW;
    ev.device = SL_DEVICE_DESKTOP;
    ev.timestamp_ms = TS_MS;

    obj = through_text(sl_event_to_json(&ev));
    for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++) {
        json_t *v = json_object_get(obj, optional[i]);
        if (!json_is_null(v))
            fail_msg("%s is not null", optional[i]);
    }
    assert_string_equal(json_string_value(json_object_get(obj, "event_type")),
                        "page_view");
    assert_string_equal(json_string_value(json_object_get(obj, "device")),
                        "desktop");
    assert_int_equal(sl_event_from_json(obj, &back, err, sizeof(err)), SL_OK);
    json_decref(obj);
    assert_int_equal(back.present, 0);
    assert_memory_equal(&back, &ev, sizeof(ev));
}

static void non_finite_renders_null(void **state)
{
    const double bad[] = {NAN, INFINITY, -INFINITY};
    sl_aggregate_t agg;
    json_t *obj;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        sl_reading_t rec = sample_reading();
        sl_event_t ev = sample_event();

        rec.value = bad[i];
        rec.anomaly_score = bad[i];
        obj = through_text(sl_reading_to_json(&rec));
        assert_true(json_is_null(json_object_get(obj, "value")));
        assert_true(json_is_null(json_object_get(obj, "anomaly_score")));
        assert_string_equal(
            json_string_value(json_object_get(obj, "sensor_id")), "sensor-007");
        json_decref(obj);

        ev.price = bad[i];
        ev.total = bad[i];
        ev.duration_seconds = bad[i];
        obj = through_text(sl_event_to_json(&ev));
        assert_true(json_is_null(json_object_get(obj, "price")));
        assert_true(json_is_null(json_object_get(obj, "total")));
        assert_true(json_is_null(json_object_get(obj, "duration_seconds")));
        assert_int_equal(json_integer_value(json_object_get(obj, "quantity")),
                         2);
        json_decref(obj);
    }

    memset(&agg, 0, sizeof(agg));
    strcpy(agg.sensor_id, "sensor-010");
    agg.window_start_ms = TS_MS;
    agg.window_end_ms = TS_MS + 60000;
    agg.count = 0;
    agg.min = INFINITY;
    agg.max = -INFINITY;
    agg.avg = NAN;
    agg.stddev = NAN;
    obj = through_text(sl_aggregate_to_json(&agg));
    assert_true(json_is_null(json_object_get(obj, "min")));
    assert_true(json_is_null(json_object_get(obj, "max")));
    assert_true(json_is_null(json_object_get(obj, "avg")));
    assert_true(json_is_null(json_object_get(obj, "stddev")));
    assert_int_equal(json_integer_value(json_object_get(obj, "count")), 0);
    json_decref(obj);
}

static void aggregate_renders_fields(void **state)
{
    sl_aggregate_t agg;
    json_t *obj;

    (void)state;
    memset(&agg, 0, sizeof(agg));
    strcpy(agg.sensor_id, "sensor-010");
    agg.sensor_type = SL_SENSOR_PRESSURE;
    agg.window_start_ms = INT64_C(1767225600000);
    agg.window_end_ms = INT64_C(1767225660000);
    agg.count = 3;
    agg.min = 1000.5;
    agg.max = 1002.5;
    agg.avg = 1001.5;
    agg.stddev = 0.75;
    obj = through_text(sl_aggregate_to_json(&agg));
    assert_string_equal(json_string_value(json_object_get(obj, "sensor_id")),
                        "sensor-010");
    assert_string_equal(json_string_value(json_object_get(obj, "sensor_type")),
                        "pressure");
    assert_string_equal(json_string_value(json_object_get(obj, "window_start")),
                        "2026-01-01T00:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(obj, "window_end")),
                        "2026-01-01T00:01:00.000Z");
    assert_int_equal(json_integer_value(json_object_get(obj, "count")), 3);
    assert_true(json_number_value(json_object_get(obj, "min")) == 1000.5);
    assert_true(json_number_value(json_object_get(obj, "max")) == 1002.5);
    assert_true(json_number_value(json_object_get(obj, "avg")) == 1001.5);
    assert_true(json_number_value(json_object_get(obj, "stddev")) == 0.75);
    json_decref(obj);
}

static void utf8_text_preserved(void **state)
{
    static const char id[] = "capteur-\xc3\xa9-01";
    sl_reading_t rec = sample_reading();
    sl_reading_t back;
    char err[128] = "";
    json_t *obj;
    char *text;

    (void)state;
    strcpy(rec.sensor_id, id);
    obj = sl_reading_to_json(&rec);
    text = json_dumps(obj, JSON_COMPACT);
    assert_non_null(text);
    assert_non_null(strstr(text, "\"sensor_id\":\"capteur-\xc3\xa9-01\""));
    free(text);
    obj = through_text(obj);
    assert_int_equal(sl_reading_from_json(obj, &back, err, sizeof(err)), SL_OK);
    json_decref(obj);
    assert_memory_equal(back.sensor_id, id, sizeof(id));

    /* The same id written with a JSON escape parses to the same bytes. */
    assert_int_equal(
        reading_from_text("{\"sensor_id\":\"capteur-\\u00e9-01\","
                          "\"sensor_type\":\"temperature\",\"value\":1,"
                          "\"timestamp\":1773578096789,\"location\":\"x\","
                          "\"metadata\":{\"battery_level\":1,"
                          "\"signal_strength\":-50}}",
                          &back, err, sizeof(err)),
        SL_OK);
    assert_string_equal(back.sensor_id, id);
}

static void invalid_utf8_renders_null(void **state)
{
    sl_reading_t rec = sample_reading();
    json_t *obj;

    (void)state;
    strcpy(rec.sensor_id, "sensor-\xc0\xaf");
    strcpy(rec.location, "hall-\xed\xa0\x80");
    obj = through_text(sl_reading_to_json(&rec));
    assert_true(json_is_null(json_object_get(obj, "sensor_id")));
    assert_true(json_is_null(json_object_get(obj, "location")));
    assert_true(json_real_value(json_object_get(obj, "value")) == 47.125);
    json_decref(obj);
}

static void set_helpers(void **state)
{
    json_t *obj = json_object();

    (void)state;
    assert_non_null(obj);
    assert_int_equal(sl_json_set_double(obj, "a", 1.5), 0);
    assert_int_equal(sl_json_set_double(obj, "b", NAN), 0);
    assert_int_equal(sl_json_set_double(obj, "c", -INFINITY), 0);
    assert_int_equal(sl_json_set_time(obj, "t", 0), 0);
    assert_int_equal(sl_json_set_time(obj, "u", -1), 0);
    assert_true(json_real_value(json_object_get(obj, "a")) == 1.5);
    assert_true(json_is_null(json_object_get(obj, "b")));
    assert_true(json_is_null(json_object_get(obj, "c")));
    assert_string_equal(json_string_value(json_object_get(obj, "t")),
                        "1970-01-01T00:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(obj, "u")),
                        "1969-12-31T23:59:59.999Z");
    json_decref(obj);
}

static void reading_parse_accepts_variants(void **state)
{
    sl_reading_t rec;
    char err[128] = "";

    (void)state;
    /* ISO timestamp, upper-case symbol, integer value, no optionals. */
    assert_int_equal(
        reading_from_text("{\"sensor_id\":\"s1\",\"sensor_type\":\"HUMIDITY\","
                          "\"value\":40,\"timestamp\":\"" TS_TEXT "\","
                          "\"location\":\"lab\",\"metadata\":"
                          "{\"battery_level\":100,\"signal_strength\":-90},"
                          "\"unit\":null,\"anomaly_score\":null,"
                          "\"extra\":true}",
                          &rec, err, sizeof(err)),
        SL_OK);
    assert_int_equal(rec.sensor_type, SL_SENSOR_HUMIDITY);
    assert_true(rec.value == 40.0);
    assert_int_equal(rec.timestamp_ms, TS_MS);
    assert_false(rec.has_unit);
    assert_false(rec.has_score);
    assert_false(rec.anomaly);
    assert_int_equal(rec.battery_level, 100);
    assert_int_equal(rec.signal_strength, -90);

    /* Zone offsets are honoured. */
    assert_int_equal(
        reading_from_text("{\"sensor_id\":\"s1\",\"sensor_type\":\"Power\","
                          "\"value\":-1.5,"
                          "\"timestamp\":\"2026-03-15 13:34:56.789+01:00\","
                          "\"location\":\"lab\",\"metadata\":"
                          "{\"battery_level\":0,\"signal_strength\":0},"
                          "\"unit\":\"W\",\"anomaly\":false}",
                          &rec, err, sizeof(err)),
        SL_OK);
    assert_int_equal(rec.timestamp_ms, TS_MS);
    assert_int_equal(rec.sensor_type, SL_SENSOR_POWER);
    assert_true(rec.has_unit);
    assert_string_equal(rec.unit, "W");
}

/* Parses a valid reading whose member key is replaced by member, or left
 * out when member does not start with a quote, and checks the error. With
 * key "extra", member is added instead. */
static void expect_reading_error(const char *key, const char *member,
                                 const char *expected)
{
    static const char *const keys[] = {"sensor_id", "sensor_type", "value",
                                       "timestamp", "location",    "metadata"};
    static const char *const members[] = {
        "\"sensor_id\":\"s1\"",
        "\"sensor_type\":\"temperature\"",
        "\"value\":20.5",
        "\"timestamp\":1773578096789",
        "\"location\":\"lab\"",
        "\"metadata\":{\"battery_level\":50,\"signal_strength\":-70}"};
    char text[1024] = "{";
    char err[160] = "";
    sl_reading_t rec;
    bool first = true;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *m = strcmp(keys[i], key) == 0 ? member : members[i];
        if (m[0] != '"')
            continue; /* a bare key: leave the member out */
        if (!first)
            strcat(text, ",");
        strcat(text, m);
        first = false;
    }
    if (strcmp(key, "extra") == 0) {
        strcat(text, ",");
        strcat(text, member);
    }
    strcat(text, "}");

    assert_int_equal(reading_from_text(text, &rec, err, sizeof(err)),
                     SL_EINVAL);
    if (strcmp(err, expected) != 0)
        fail_msg("input %s\n  error \"%s\"\n  expected \"%s\"", text, err,
                 expected);
}

static void reading_parse_errors_name_field(void **state)
{
    char id128[160], id127[160];

    (void)state;
    expect_reading_error("sensor_id", "-", "sensor_id: missing");
    expect_reading_error("sensor_id", "\"sensor_id\":null",
                         "sensor_id: missing");
    expect_reading_error("sensor_id", "\"sensor_id\":7",
                         "sensor_id: not a string");
    expect_reading_error("sensor_id", "\"sensor_id\":\"a\\u0000b\"",
                         "sensor_id: contains a NUL character");
    expect_reading_error("sensor_type", "-", "sensor_type: missing");
    expect_reading_error("sensor_type", "\"sensor_type\":\"thermo\"",
                         "sensor_type: unknown symbol, expected one of "
                         "temperature, humidity, pressure, vibration, "
                         "power, other");
    expect_reading_error("value", "-", "value: missing");
    expect_reading_error("value", "\"value\":\"20.5\"", "value: not a number");
    expect_reading_error("value", "\"value\":true", "value: not a number");
    expect_reading_error("timestamp", "-", "timestamp: missing");
    expect_reading_error("timestamp", "\"timestamp\":\"yesterday\"",
                         "timestamp: not ISO-8601 or epoch ms");
    expect_reading_error("timestamp", "\"timestamp\":\"2023-02-29\"",
                         "timestamp: not ISO-8601 or epoch ms");
    expect_reading_error("timestamp", "\"timestamp\":1.7e12",
                         "timestamp: not ISO-8601 or epoch ms");
    expect_reading_error("location", "-", "location: missing");
    expect_reading_error("metadata", "-", "metadata: missing");
    expect_reading_error("metadata", "\"metadata\":[1,2]",
                         "metadata: not an object");
    expect_reading_error("metadata", "\"metadata\":{\"signal_strength\":-1}",
                         "metadata.battery_level: missing");
    expect_reading_error("metadata", "\"metadata\":{\"battery_level\":1}",
                         "metadata.signal_strength: missing");
    expect_reading_error(
        "metadata",
        "\"metadata\":{\"battery_level\":\"full\",\"signal_strength\":-1}",
        "metadata.battery_level: not an integer");
    expect_reading_error(
        "metadata",
        "\"metadata\":{\"battery_level\":1,\"signal_strength\":-60.5}",
        "metadata.signal_strength: not an integer");
    expect_reading_error(
        "metadata",
        "\"metadata\":{\"battery_level\":4294967296,\"signal_strength\":-1}",
        "metadata.battery_level: out of range -2147483648..2147483647");
    expect_reading_error("extra", "\"anomaly\":\"yes\"",
                         "anomaly: not a boolean");
    expect_reading_error("extra", "\"anomaly_score\":\"high\"",
                         "anomaly_score: not a number");
    expect_reading_error("extra", "\"unit\":5", "unit: not a string");
    expect_reading_error("extra",
                         "\"unit\":\"0123456789012345678901234567890"
                         "1\"",
                         "unit: longer than 31 bytes");

    /* 127 bytes fit the buffer, 128 do not. */
    memset(id127, 'a', 127);
    id127[127] = '\0';
    memset(id128, 'a', 128);
    id128[128] = '\0';
    {
        char member[200];
        sl_reading_t rec;
        char err[128] = "";
        char text[400];

        snprintf(member, sizeof(member), "\"sensor_id\":\"%s\"", id128);
        expect_reading_error("sensor_id", member,
                             "sensor_id: longer than 127 bytes");
        snprintf(text, sizeof(text),
                 "{\"sensor_id\":\"%s\",\"sensor_type\":\"other\","
                 "\"value\":1,\"timestamp\":1773578096789,"
                 "\"location\":\"lab\",\"metadata\":{\"battery_level\":1,"
                 "\"signal_strength\":-1}}",
                 id127);
        assert_int_equal(reading_from_text(text, &rec, err, sizeof(err)),
                         SL_OK);
        assert_string_equal(rec.sensor_id, id127);
    }
}

static void parse_rejects_non_object(void **state)
{
    json_t *arr = json_array();
    sl_reading_t rec;
    sl_event_t ev;
    char err[64];

    (void)state;
    assert_int_equal(sl_reading_from_json(arr, &rec, err, sizeof(err)),
                     SL_EINVAL);
    assert_string_equal(err, "reading: not a JSON object");
    assert_int_equal(sl_event_from_json(arr, &ev, err, sizeof(err)), SL_EINVAL);
    assert_string_equal(err, "event: not a JSON object");
    assert_int_equal(sl_reading_from_json(NULL, &rec, err, sizeof(err)),
                     SL_EINVAL);
    json_decref(arr);
}

static void parse_error_buffer_bounds(void **state)
{
    sl_reading_t rec;
    char err[8];

    (void)state;
    /* A short buffer gets a truncated, terminated message; none is fine. */
    memset(err, 'x', sizeof(err));
    assert_int_equal(reading_from_text("{}", &rec, err, sizeof(err)),
                     SL_EINVAL);
    assert_string_equal(err, "sensor_");
    assert_int_equal(reading_from_text("{}", &rec, NULL, 0), SL_EINVAL);
    assert_int_equal(reading_from_text("{\"sensor_id\":\"a\","
                                       "\"sensor_type\":\"zzz\"}",
                                       &rec, err, sizeof(err)),
                     SL_EINVAL);
    assert_string_equal(err, "sensor_");
}

static void event_parse_accepts_variants(void **state)
{
    sl_event_t ev;
    char err[128] = "";

    (void)state;
    assert_int_equal(
        event_from_text("{\"event_id\":\"e\",\"event_type\":\"ADD_TO_CART\","
                        "\"user_id\":\"u\",\"timestamp\":\"" TS_TEXT "\","
                        "\"session_id\":\"s\",\"device\":\"Mobile\","
                        "\"ip_address\":\"10.0.0.1\",\"quantity\":3,"
                        "\"price\":5,\"category\":null}",
                        &ev, err, sizeof(err)),
        SL_OK);
    assert_int_equal(ev.event_type, SL_EVENT_ADD_TO_CART);
    assert_int_equal(ev.device, SL_DEVICE_MOBILE);
    assert_int_equal(ev.timestamp_ms, TS_MS);
    assert_int_equal(ev.present, SL_EV_QUANTITY | SL_EV_PRICE);
    assert_int_equal(ev.quantity, 3);
    assert_true(ev.price == 5.0);
}

static void expect_event_error(const char *extra, const char *expected)
{
    char text[1024];
    char err[160] = "";
    sl_event_t ev;

    snprintf(text, sizeof(text),
             "{\"event_id\":\"e\",\"event_type\":\"search\","
             "\"user_id\":\"u\",\"timestamp\":1773578096789,"
             "\"session_id\":\"s\",\"device\":\"desktop\","
             "\"ip_address\":\"10.0.0.1\"%s}",
             extra);
    assert_int_equal(event_from_text(text, &ev, err, sizeof(err)), SL_EINVAL);
    if (strcmp(err, expected) != 0)
        fail_msg("input %s\n  error \"%s\"\n  expected \"%s\"", text, err,
                 expected);
}

static void event_parse_errors_name_field(void **state)
{
    sl_event_t ev;
    char err[160] = "";
    char extra[400];

    (void)state;
    assert_int_equal(
        event_from_text("{\"event_id\":\"e\"}", &ev, err, sizeof(err)),
        SL_EINVAL);
    assert_string_equal(err, "event_type: missing");
    assert_int_equal(
        event_from_text("{\"event_id\":\"e\",\"event_type\":\"search\","
                        "\"user_id\":\"u\",\"timestamp\":1773578096789,"
                        "\"session_id\":\"s\",\"device\":\"fridge\"}",
                        &ev, err, sizeof(err)),
        SL_EINVAL);
    assert_string_equal(err, "device: unknown symbol, expected one of "
                             "mobile, desktop, tablet, other");
    assert_int_equal(
        event_from_text("{\"event_id\":\"e\",\"event_type\":\"search\","
                        "\"user_id\":\"u\",\"timestamp\":1773578096789,"
                        "\"session_id\":\"s\",\"device\":\"tablet\"}",
                        &ev, err, sizeof(err)),
        SL_EINVAL);
    assert_string_equal(err, "ip_address: missing");

    expect_event_error(",\"quantity\":1.5", "quantity: not an integer");
    expect_event_error(",\"results_count\":\"many\"",
                       "results_count: not an integer");
    expect_event_error(",\"product_id\":\"p-1\"", "product_id: not an integer");
    expect_event_error(",\"price\":\"9.99\"", "price: not a number");
    expect_event_error(",\"total\":[]", "total: not a number");
    expect_event_error(",\"duration_seconds\":{}",
                       "duration_seconds: not a number");
    expect_event_error(",\"query\":42", "query: not a string");
    expect_event_error(",\"currency\":\"EURO-DOLLAR-YEN-POUND-FRANC-KRONA\"",
                       "currency: longer than 31 bytes");

    memset(extra, 0, sizeof(extra));
    strcpy(extra, ",\"product_name\":\"");
    memset(extra + strlen(extra), 'n', 256);
    strcat(extra, "\"");
    expect_event_error(extra, "product_name: longer than 255 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reading_renders_fields),
        cmocka_unit_test(reading_absent_optionals_null),
        cmocka_unit_test(reading_round_trip),
        cmocka_unit_test(event_round_trip),
        cmocka_unit_test(event_absent_optionals),
        cmocka_unit_test(non_finite_renders_null),
        cmocka_unit_test(aggregate_renders_fields),
        cmocka_unit_test(utf8_text_preserved),
        cmocka_unit_test(invalid_utf8_renders_null),
        cmocka_unit_test(set_helpers),
        cmocka_unit_test(reading_parse_accepts_variants),
        cmocka_unit_test(reading_parse_errors_name_field),
        cmocka_unit_test(parse_rejects_non_object),
        cmocka_unit_test(parse_error_buffer_bounds),
        cmocka_unit_test(event_parse_accepts_variants),
        cmocka_unit_test(event_parse_errors_name_field),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
