/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Detector results in the SQLite store: recording the same findings twice
 * adds nothing, and the stored reading is the same whether the detector
 * writes before or after the processor.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "detect/detector_int.h"
#include "fixture.h"
#include "util/err.h"

static int setup(void **state)
{
    *state = fixture_create();
    return 0;
}

static int teardown(void **state)
{
    fixture_destroy(*state);
    return 0;
}

/* A reading the forest flagged, and its alert. */
static void flagged(sl_reading_t *rec, sl_alert_t *alert)
{
    *rec = make_reading("boiler-7", SL_SENSOR_TEMPERATURE, T0_MS + 1000, 42.5);
    rec->anomaly = true;
    rec->has_score = true;
    rec->anomaly_score = -0.72;
    sl_detector__ml_alert(rec, rec->anomaly_score, -0.7, alert);
}

static void test_detections_twice_same_rows(void **state)
{
    fixture_t *fx = *state;
    sl_store_detect_result_t res;
    sl_reading_t rec;
    sl_alert_t alert, out[4];
    size_t n;

    bool alert_new = false;

    flagged(&rec, &alert);
    assert_int_equal(sl_store_record_detections(fx->st, &rec, 1, &alert, 1,
                                                &alert_new, &res),
                     SL_OK);
    assert_int_equal(res.readings_changed, 1);
    assert_int_equal(res.alerts_inserted, 1);
    assert_true(alert_new);

    /* A redelivered batch: the alert is known, so it is not new. */
    assert_int_equal(sl_store_record_detections(fx->st, &rec, 1, &alert, 1,
                                                &alert_new, &res),
                     SL_OK);
    assert_false(alert_new);
    assert_int_equal(res.readings_changed, 0);
    assert_int_equal(res.readings_unchanged, 1);
    assert_int_equal(res.alerts_inserted, 0);
    assert_int_equal(res.alerts_duplicate, 1);

    /* The row waits for the processor: reads do not count it yet. */
    assert_int_equal(sl_store_reading_count(fx->st), 0);
    assert_int_equal(query_int(fx, "SELECT count(*) FROM sensor_readings"), 1);
    assert_int_equal(query_int(fx, "SELECT count(*) FROM alerts"), 1);
    assert_int_equal(sl_store_alerts(fx->st, NULL, out, 4, &n), SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].alert_type, SL_ALERT_ML_ANOMALY);
    assert_int_equal(out[0].severity, SL_SEVERITY_CRITICAL);
    assert_string_equal(out[0].sensor_id, "boiler-7");
    assert_int_equal(out[0].sensor_type, SL_SENSOR_TEMPERATURE);
    assert_true(out[0].has_score);
    assert_true(out[0].anomaly_score == -0.72);
    assert_true(out[0].value == 42.5);
    assert_int_equal(out[0].timestamp_ms, T0_MS + 1000);
    assert_non_null(strstr(out[0].message, "boiler-7"));

    /* Another type for the same reading is a second alert. */
    alert.alert_type = SL_ALERT_THRESHOLD;
    assert_int_equal(
        sl_store_record_detections(fx->st, NULL, 0, &alert, 1, NULL, &res),
        SL_OK);
    assert_int_equal(res.alerts_inserted, 1);
    assert_int_equal(query_int(fx, "SELECT count(*) FROM alerts"), 2);
}

/* Reads back the one stored reading. */
static sl_reading_t stored_reading(fixture_t *fx)
{
    sl_reading_query_t q;
    sl_reading_t out[2];
    size_t n;

    sl_reading_query_init(&q);
    assert_int_equal(sl_store_readings(fx->st, &q, out, 2, &n), SL_OK);
    assert_int_equal(n, 1);
    return out[0];
}

static void assert_flagged_row(fixture_t *fx, const sl_reading_t *rec)
{
    sl_reading_t got = stored_reading(fx);

    assert_string_equal(got.sensor_id, rec->sensor_id);
    assert_int_equal(got.timestamp_ms, rec->timestamp_ms);
    assert_true(got.value == rec->value);
    assert_string_equal(got.location, rec->location);
    assert_int_equal(got.battery_level, rec->battery_level);
    assert_int_equal(got.signal_strength, rec->signal_strength);
    assert_true(got.anomaly);
    assert_true(got.has_score);
    assert_true(got.anomaly_score == rec->anomaly_score);
    assert_int_equal(query_int(fx, "SELECT count(*) FROM sensor_readings"), 1);
}

static void test_detector_after_processor(void **state)
{
    fixture_t *fx = *state;
    sl_store_result_t result;
    sl_reading_t rec, plain;
    sl_alert_t alert;

    flagged(&rec, &alert);
    plain = rec;
    plain.anomaly = false;
    plain.has_score = false;
    sl_store_batch_t batch = {.readings = &plain, .reading_count = 1};
    assert_int_equal(sl_store_write(fx->st, &batch, &result, NULL, NULL),
                     SL_OK);
    assert_int_equal(result.readings_inserted, 1);

    assert_int_equal(
        sl_store_record_detections(fx->st, &rec, 1, &alert, 1, NULL, NULL),
        SL_OK);
    assert_flagged_row(fx, &rec);
    /* The latest-reading row is this reading, so it is flagged too. */
    assert_int_equal(query_int(fx, "SELECT anomaly FROM sensor_latest"), 1);
}

static void test_detector_before_processor(void **state)
{
    fixture_t *fx = *state;
    sl_store_result_t result;
    sl_reading_t rec, plain;
    sl_alert_t alert;

    flagged(&rec, &alert);
    assert_int_equal(
        sl_store_record_detections(fx->st, &rec, 1, &alert, 1, NULL, NULL),
        SL_OK);

    plain = rec;
    plain.anomaly = false;
    plain.has_score = false;
    bool duplicate = false;
    sl_store_batch_t batch = {.readings = &plain,
                              .reading_count = 1,
                              .reading_duplicate = &duplicate};
    assert_int_equal(sl_store_write(fx->st, &batch, &result, NULL, NULL),
                     SL_OK);
    /* The processor's insert keeps the detector's row as it is, and counts
     * it as its own first write of the reading, not as a duplicate. */
    assert_int_equal(result.readings_inserted, 1);
    assert_int_equal(result.readings_duplicate, 0);
    assert_false(duplicate);
    assert_flagged_row(fx, &rec);
    /* The latest-reading row takes the flag from the stored row. */
    assert_int_equal(query_int(fx, "SELECT anomaly FROM sensor_latest"), 1);

    /* A redelivery of the same reading is then a duplicate. */
    assert_int_equal(sl_store_write(fx->st, &batch, &result, NULL, NULL),
                     SL_OK);
    assert_int_equal(result.readings_inserted, 0);
    assert_int_equal(result.readings_duplicate, 1);
    assert_true(duplicate);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_detections_twice_same_rows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_detector_after_processor, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_detector_before_processor, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
