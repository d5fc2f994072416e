/* SPDX-License-Identifier: Apache-2.0 */
/* The newest-reading-per-sensor set the processor keeps between writes of
 * the sensor_latest rows (src/pipeline/latest.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "pipeline/latest.h"
#include "util/err.h"

static sl_reading_t reading(const char *sensor_id, int64_t ts_ms, double value)
{
    sl_reading_t rec;

    memset(&rec, 0, sizeof(rec));
    snprintf(rec.sensor_id, sizeof(rec.sensor_id), "%s", sensor_id);
    rec.timestamp_ms = ts_ms;
    rec.value = value;
    return rec;
}

/* Returns the kept reading of sensor_id, or NULL. */
static const sl_reading_t *kept(const sl_latest_set_t *set,
                                const char *sensor_id)
{
    const sl_reading_t *rows = sl_latest_set_rows(set);

    for (size_t i = 0; i < sl_latest_set_count(set); i++) {
        if (strcmp(rows[i].sensor_id, sensor_id) == 0)
            return &rows[i];
    }
    return NULL;
}

static void test_newest_event_time_wins(void **state)
{
    sl_latest_set_t *set = sl_latest_set_create();
    sl_reading_t a = reading("a", 2000, 2.0);

    (void)state;
    assert_non_null(set);
    assert_int_equal(sl_latest_set_note(set, &a), SL_OK);
    a = reading("a", 1000, 1.0); /* older: ignored */
    assert_int_equal(sl_latest_set_note(set, &a), SL_OK);
    a = reading("a", 2000, 9.0); /* same time: the first stays */
    assert_int_equal(sl_latest_set_note(set, &a), SL_OK);
    assert_int_equal(sl_latest_set_count(set), 1);
    assert_true(kept(set, "a")->value == 2.0);
    a = reading("a", 3000, 3.0);
    assert_int_equal(sl_latest_set_note(set, &a), SL_OK);
    assert_true(kept(set, "a")->value == 3.0);
    assert_int_equal(sl_latest_set_count(set), 1);
    sl_latest_set_destroy(set);
}

/* Many sensors make the index grow several times; each keeps its own
 * newest reading, and a cleared set starts empty and fills again. */
static void test_many_sensors_and_clear(void **state)
{
    sl_latest_set_t *set = sl_latest_set_create();
    char id[32];

    (void)state;
    assert_non_null(set);
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < 3; k++) {
            for (int s = 0; s < 5000; s++) {
                snprintf(id, sizeof(id), "sensor-%d", s);
                sl_reading_t rec = reading(id, 1000 * (k + 1), s * 10 + k);
                assert_int_equal(sl_latest_set_note(set, &rec), SL_OK);
            }
        }
        assert_int_equal(sl_latest_set_count(set), 5000);
        for (int s = 0; s < 5000; s += 499) {
            snprintf(id, sizeof(id), "sensor-%d", s);
            assert_non_null(kept(set, id));
            assert_true(kept(set, id)->value == s * 10 + 2);
        }
        sl_latest_set_clear(set);
        assert_int_equal(sl_latest_set_count(set), 0);
        assert_null(kept(set, "sensor-0"));
    }
    sl_latest_set_destroy(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_newest_event_time_wins),
        cmocka_unit_test(test_many_sensors_and_clear),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
