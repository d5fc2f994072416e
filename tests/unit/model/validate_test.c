/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of sl_reading_validate() and sl_event_validate(): every rule is
 * checked on both sides of its boundary, starting from a record that is
 * valid, so each case changes exactly one field.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "model/validate.h"

/* 2026-01-01T00:00:00Z, the wall-clock time every case validates at. */
#define NOW_MS INT64_C(1767225600000)

/* Checks that a reason was returned before comparing it, so a wrongly
 * accepted record fails the test instead of crashing it. */
#define assert_reason(actual, expected)                                        \
    do {                                                                       \
        const char *reason_ = (actual);                                        \
        assert_non_null(reason_);                                              \
        assert_string_equal(reason_, (expected));                              \
    } while (0)

static sl_reading_t valid_reading(sl_sensor_type_t type, double value)
{
    sl_reading_t rec;

    memset(&rec, 0, sizeof(rec));
    strcpy(rec.sensor_id, "sensor-001");
    strcpy(rec.location, "hall-a");
    rec.sensor_type = type;
    rec.value = value;
    rec.timestamp_ms = NOW_MS - 1000;
    rec.battery_level = 80;
    rec.signal_strength = -60;
    return rec;
}

static sl_event_t valid_event(void)
{
    sl_event_t ev;

    memset(&ev, 0, sizeof(ev));
    strcpy(ev.event_id, "ev-1");
    strcpy(ev.user_id, "user-1");
    strcpy(ev.session_id, "sess-1");
    strcpy(ev.ip_address, "192.0.2.1");
    ev.event_type = SL_EVENT_PURCHASE;
    ev.device = SL_DEVICE_MOBILE;
    ev.timestamp_ms = NOW_MS - 1000;
    ev.present = SL_EV_PRICE | SL_EV_TOTAL | SL_EV_QUANTITY | SL_EV_DURATION |
                 SL_EV_RESULTS_COUNT;
    ev.price = 9.99;
    ev.total = 19.98;
    ev.quantity = 2;
    ev.duration_seconds = 12.5;
    ev.results_count = 3;
    return ev;
}

/* Returns the reason for an otherwise valid reading of type with value. */
static const char *reason_for_value(sl_sensor_type_t type, double value)
{
    sl_reading_t rec = valid_reading(type, value);

    return sl_reading_validate(&rec, NOW_MS);
}

static double signalling_nan(void)
{
    /* Exponent all ones, quiet bit clear, payload 1. */
    uint64_t bits = UINT64_C(0x7ff0000000000001);
    double v;

    memcpy(&v, &bits, sizeof(v));
    return v;
}

static void reading_valid_passes(void **state)
{
    (void)state;
    assert_null(reason_for_value(SL_SENSOR_TEMPERATURE, 21.5));
    assert_null(reason_for_value(SL_SENSOR_TEMPERATURE, -40.0));
    assert_null(reason_for_value(SL_SENSOR_POWER, -3.0));
    assert_null(reason_for_value(SL_SENSOR_VIBRATION, 0.0));
}

static void reading_non_finite_rejected(void **state)
{
    const double bad[] = {NAN, -NAN, INFINITY, -INFINITY, signalling_nan()};

    (void)state;
    assert_true(isnan(bad[4]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (int type = 0; type < SL_SENSOR_TYPE_COUNT; type++) {
            assert_reason(reason_for_value((sl_sensor_type_t)type, bad[i]),
                          "non_finite_value");
        }
    }
}

static void reading_score_non_finite_rejected(void **state)
{
    sl_reading_t rec = valid_reading(SL_SENSOR_TEMPERATURE, 20.0);

    (void)state;
    rec.anomaly_score = NAN;
    assert_null(sl_reading_validate(&rec, NOW_MS)); /* has_score not set */
    rec.has_score = true;
    assert_reason(sl_reading_validate(&rec, NOW_MS), "non_finite_value");
    rec.anomaly_score = INFINITY;
    assert_reason(sl_reading_validate(&rec, NOW_MS), "non_finite_value");
    rec.anomaly_score = 0.73;
    assert_null(sl_reading_validate(&rec, NOW_MS));
}

static void reading_humidity_bounds(void **state)
{
    (void)state;
    assert_null(reason_for_value(SL_SENSOR_HUMIDITY, 0.0));
    assert_null(reason_for_value(SL_SENSOR_HUMIDITY, 100.0));
    assert_null(reason_for_value(SL_SENSOR_HUMIDITY, 55.5));
    assert_reason(reason_for_value(SL_SENSOR_HUMIDITY, -0.1),
                  "humidity_out_of_range");
    assert_reason(reason_for_value(SL_SENSOR_HUMIDITY, 100.1),
                  "humidity_out_of_range");
    assert_reason(reason_for_value(SL_SENSOR_HUMIDITY, nextafter(100.0, 200.0)),
                  "humidity_out_of_range");

    /* The percentage limit applies to humidity sensors only. */
    assert_null(reason_for_value(SL_SENSOR_TEMPERATURE, 100.1));
}

static void reading_pressure_bounds(void **state)
{
    (void)state;
    assert_reason(reason_for_value(SL_SENSOR_PRESSURE, 0.0),
                  "pressure_not_positive");
    assert_reason(reason_for_value(SL_SENSOR_PRESSURE, -0.0),
                  "pressure_not_positive");
    assert_reason(reason_for_value(SL_SENSOR_PRESSURE, -1013.25),
                  "pressure_not_positive");
    assert_null(reason_for_value(SL_SENSOR_PRESSURE, 4.9e-324));
    assert_null(reason_for_value(SL_SENSOR_PRESSURE, 1013.25));
    assert_null(reason_for_value(SL_SENSOR_TEMPERATURE, 0.0));
}

static void reading_empty_id_rejected(void **state)
{
    sl_reading_t rec = valid_reading(SL_SENSOR_TEMPERATURE, 20.0);

    (void)state;
    rec.sensor_id[0] = '\0';
    assert_reason(sl_reading_validate(&rec, NOW_MS), "empty_sensor_id");
    strcpy(rec.sensor_id, "x");
    assert_null(sl_reading_validate(&rec, NOW_MS));
}

static void reading_invalid_type_rejected(void **state)
{
    sl_reading_t rec = valid_reading(SL_SENSOR_TEMPERATURE, 20.0);

    (void)state;
    rec.sensor_type = SL_SENSOR_TYPE_COUNT;
    assert_reason(sl_reading_validate(&rec, NOW_MS), "invalid_sensor_type");
    rec.sensor_type = (sl_sensor_type_t)-1;
    assert_reason(sl_reading_validate(&rec, NOW_MS), "invalid_sensor_type");
    rec.sensor_type = SL_SENSOR_OTHER;
    assert_null(sl_reading_validate(&rec, NOW_MS));
}

static const char *reason_for_ts(int64_t ts)
{
    sl_reading_t rec = valid_reading(SL_SENSOR_TEMPERATURE, 20.0);

    rec.timestamp_ms = ts;
    return sl_reading_validate(&rec, NOW_MS);
}

static void reading_timestamp_bounds(void **state)
{
    (void)state;
    assert_null(reason_for_ts(SL_VALIDATE_MIN_TIMESTAMP_MS));
    assert_reason(reason_for_ts(SL_VALIDATE_MIN_TIMESTAMP_MS - 1),
                  "timestamp_before_2000");
    assert_reason(reason_for_ts(0), "timestamp_before_2000");
    assert_reason(reason_for_ts(INT64_MIN), "timestamp_before_2000");

    assert_null(reason_for_ts(NOW_MS));
    assert_null(reason_for_ts(NOW_MS + 5 * 60 * 1000));
    assert_reason(reason_for_ts(NOW_MS + 5 * 60 * 1000 + 1),
                  "timestamp_in_future");
    assert_reason(reason_for_ts(INT64_MAX), "timestamp_in_future");
}

static void reading_timestamp_far_clock(void **state)
{
    sl_reading_t rec = valid_reading(SL_SENSOR_TEMPERATURE, 20.0);

    (void)state;
    /* ts - now_ms overflows int64 here; the check must still reject. */
    rec.timestamp_ms = INT64_MAX;
    assert_reason(sl_reading_validate(&rec, INT64_MIN + 1),
                  "timestamp_in_future");
}

static const char *reason_for_metadata(int32_t battery, int32_t signal)
{
    sl_reading_t rec = valid_reading(SL_SENSOR_TEMPERATURE, 20.0);

    rec.battery_level = battery;
    rec.signal_strength = signal;
    return sl_reading_validate(&rec, NOW_MS);
}

static void reading_battery_bounds(void **state)
{
    (void)state;
    assert_null(reason_for_metadata(0, -60));
    assert_null(reason_for_metadata(100, -60));
    assert_reason(reason_for_metadata(-1, -60), "invalid_battery_level");
    assert_reason(reason_for_metadata(101, -60), "invalid_battery_level");
    assert_reason(reason_for_metadata(INT32_MIN, -60), "invalid_battery_level");
}

static void reading_signal_bounds(void **state)
{
    (void)state;
    assert_null(reason_for_metadata(50, SL_VALIDATE_MIN_SIGNAL_DBM));
    assert_null(reason_for_metadata(50, SL_VALIDATE_MAX_SIGNAL_DBM));
    assert_null(reason_for_metadata(50, 0));
    assert_reason(reason_for_metadata(50, SL_VALIDATE_MIN_SIGNAL_DBM - 1),
                  "invalid_signal_strength");
    assert_reason(reason_for_metadata(50, SL_VALIDATE_MAX_SIGNAL_DBM + 1),
                  "invalid_signal_strength");
}

static void event_valid_passes(void **state)
{
    sl_event_t ev = valid_event();

    (void)state;
    assert_null(sl_event_validate(&ev, NOW_MS));
    ev.present = 0;
    assert_null(sl_event_validate(&ev, NOW_MS));
}

static void event_ids_and_enums(void **state)
{
    sl_event_t ev;

    (void)state;
    ev = valid_event();
    ev.event_id[0] = '\0';
    assert_reason(sl_event_validate(&ev, NOW_MS), "empty_event_id");

    ev = valid_event();
    ev.user_id[0] = '\0';
    assert_reason(sl_event_validate(&ev, NOW_MS), "empty_user_id");

    ev = valid_event();
    ev.event_type = SL_EVENT_TYPE_COUNT;
    assert_reason(sl_event_validate(&ev, NOW_MS), "invalid_event_type");
    ev.event_type = SL_EVENT_OTHER;
    assert_null(sl_event_validate(&ev, NOW_MS));

    ev = valid_event();
    ev.device = SL_DEVICE_COUNT;
    assert_reason(sl_event_validate(&ev, NOW_MS), "invalid_device");
    ev.device = (sl_device_t)-1;
    assert_reason(sl_event_validate(&ev, NOW_MS), "invalid_device");
    ev.device = SL_DEVICE_OTHER;
    assert_null(sl_event_validate(&ev, NOW_MS));
}

static void event_timestamp_bounds(void **state)
{
    sl_event_t ev = valid_event();

    (void)state;
    ev.timestamp_ms = SL_VALIDATE_MIN_TIMESTAMP_MS;
    assert_null(sl_event_validate(&ev, NOW_MS));
    ev.timestamp_ms = SL_VALIDATE_MIN_TIMESTAMP_MS - 1;
    assert_reason(sl_event_validate(&ev, NOW_MS), "timestamp_before_2000");
    ev.timestamp_ms = NOW_MS + SL_VALIDATE_MAX_FUTURE_MS;
    assert_null(sl_event_validate(&ev, NOW_MS));
    ev.timestamp_ms = NOW_MS + SL_VALIDATE_MAX_FUTURE_MS + 1;
    assert_reason(sl_event_validate(&ev, NOW_MS), "timestamp_in_future");
}

static void event_non_finite_rejected(void **state)
{
    const double bad[] = {NAN, INFINITY, -INFINITY, signalling_nan()};
    sl_event_t ev;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ev = valid_event();
        ev.price = bad[i];
        assert_reason(sl_event_validate(&ev, NOW_MS), "non_finite_value");
        ev = valid_event();
        ev.total = bad[i];
        assert_reason(sl_event_validate(&ev, NOW_MS), "non_finite_value");
        ev = valid_event();
        ev.duration_seconds = bad[i];
        assert_reason(sl_event_validate(&ev, NOW_MS), "non_finite_value");
    }

    /* An absent field is not judged, whatever its bytes hold. */
    ev = valid_event();
    ev.price = NAN;
    ev.present &= ~(uint32_t)SL_EV_PRICE;
    assert_null(sl_event_validate(&ev, NOW_MS));
}

static void event_negative_amounts(void **state)
{
    sl_event_t ev;

    (void)state;
    ev = valid_event();
    ev.price = 0.0;
    assert_null(sl_event_validate(&ev, NOW_MS));
    ev.price = -0.01;
    assert_reason(sl_event_validate(&ev, NOW_MS), "negative_price");
    ev.present &= ~(uint32_t)SL_EV_PRICE;
    assert_null(sl_event_validate(&ev, NOW_MS));

    ev = valid_event();
    ev.total = 0.0;
    assert_null(sl_event_validate(&ev, NOW_MS));
    ev.total = -0.01;
    assert_reason(sl_event_validate(&ev, NOW_MS), "negative_total");

    ev = valid_event();
    ev.quantity = 0;
    assert_null(sl_event_validate(&ev, NOW_MS));
    ev.quantity = -1;
    assert_reason(sl_event_validate(&ev, NOW_MS), "negative_quantity");

    ev = valid_event();
    ev.duration_seconds = 0.0;
    assert_null(sl_event_validate(&ev, NOW_MS));
    ev.duration_seconds = -0.001;
    assert_reason(sl_event_validate(&ev, NOW_MS), "negative_duration");

    ev = valid_event();
    ev.results_count = 0;
    assert_null(sl_event_validate(&ev, NOW_MS));
    ev.results_count = -1;
    assert_reason(sl_event_validate(&ev, NOW_MS), "negative_results_count");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reading_valid_passes),
        cmocka_unit_test(reading_non_finite_rejected),
        cmocka_unit_test(reading_score_non_finite_rejected),
        cmocka_unit_test(reading_humidity_bounds),
        cmocka_unit_test(reading_pressure_bounds),
        cmocka_unit_test(reading_empty_id_rejected),
        cmocka_unit_test(reading_invalid_type_rejected),
        cmocka_unit_test(reading_timestamp_bounds),
        cmocka_unit_test(reading_timestamp_far_clock),
        cmocka_unit_test(reading_battery_bounds),
        cmocka_unit_test(reading_signal_bounds),
        cmocka_unit_test(event_valid_passes),
        cmocka_unit_test(event_ids_and_enums),
        cmocka_unit_test(event_timestamp_bounds),
        cmocka_unit_test(event_non_finite_rejected),
        cmocka_unit_test(event_negative_amounts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
