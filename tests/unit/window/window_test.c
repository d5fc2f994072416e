/* SPDX-License-Identifier: Apache-2.0 */
/* Tumbling windows: closing by per-sensor watermark, late readings, and
 * in-memory arithmetic checked against a naive recomputation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pipeline/window.h"
#include "util/err.h"
#include "util/rng.h"
#include "util/timeutil.h"

#define MINUTE 60000
/* 2026-01-01T10:00:00Z */
#define T10 INT64_C(1767261600000)

static sl_reading_t reading(const char *id, int64_t ts, double value)
{
    sl_reading_t rec;

    memset(&rec, 0, sizeof(rec));
    snprintf(rec.sensor_id, sizeof(rec.sensor_id), "%s", id);
    rec.sensor_type = SL_SENSOR_TEMPERATURE;
    rec.timestamp_ms = ts;
    rec.value = value;
    return rec;
}

static int add(sl_windows_t *win, const char *id, int64_t ts, double value)
{
    sl_reading_t rec = reading(id, ts, value);

    return sl_windows_add(win, &rec, false);
}

/* Arrivals of a reading stream with one late and one out-of-order
 * reading, lateness 5 minutes. */
static void test_late_reading_recomputes_closed_window(void **state)
{
    sl_windows_t *win = sl_windows_create(MINUTE, 5 * MINUTE);
    sl_window_output_t out;

    (void)state;
    assert_int_equal(add(win, "s20", T10 + 10000, 10), 0);
    assert_int_equal(add(win, "s20", T10 + 40000, 20), 0);
    assert_int_equal(add(win, "s20", T10 + 90000, 30), 0);
    sl_windows_take(win, &out);
    assert_int_equal(out.aggregate_count + out.recompute_count, 0);

    /* 10:07:00 moves the watermark to 10:02: 10:00 and 10:01 close. The
     * sensor's first window is recomputed from the store (rows from before
     * a restart may exist); the second comes from memory. */
    assert_int_equal(add(win, "s20", T10 + 7 * MINUTE, 40), 0);
    sl_windows_take(win, &out);
    assert_int_equal(out.recompute_count, 1);
    assert_int_equal(out.recompute[0].window_start_ms, T10);
    assert_int_equal(out.recompute[0].window_end_ms, T10 + MINUTE);
    assert_int_equal(out.aggregate_count, 1);
    assert_int_equal(out.aggregates[0].window_start_ms, T10 + MINUTE);
    assert_int_equal(out.aggregates[0].count, 1);
    assert_true(out.aggregates[0].avg == 30.0);

    /* 10:00:50 belongs to a closed window: late, and that window is asked
     * to be recomputed so the stored aggregate includes it. */
    assert_int_equal(add(win, "s20", T10 + 50000, 50), 1);
    sl_windows_take(win, &out);
    assert_int_equal(out.aggregate_count, 0);
    assert_int_equal(out.recompute_count, 1);
    assert_int_equal(out.recompute[0].window_start_ms, T10);

    /* 10:04:30 is out of order but within the lateness: accepted. */
    assert_int_equal(add(win, "s20", T10 + 4 * MINUTE + 30000, 60), 0);
    assert_int_equal(add(win, "s20", T10 + 8 * MINUTE, 70), 0);
    sl_windows_take(win, &out);
    assert_int_equal(out.aggregate_count + out.recompute_count, 0);

    sl_windows_sweep(win, 0, -1);
    sl_windows_take(win, &out);
    assert_int_equal(out.recompute_count, 0);
    assert_int_equal(out.aggregate_count, 3);
    assert_int_equal(out.aggregates[0].window_start_ms, T10 + 4 * MINUTE);
    assert_true(out.aggregates[0].avg == 60.0);
    assert_int_equal(out.aggregates[1].window_start_ms, T10 + 7 * MINUTE);
    assert_true(out.aggregates[1].avg == 40.0);
    assert_int_equal(out.aggregates[2].window_start_ms, T10 + 8 * MINUTE);
    assert_true(out.aggregates[2].avg == 70.0);
    sl_windows_destroy(win);
}

static void test_redelivered_reading_marks_window_for_recompute(void **state)
{
    sl_windows_t *win = sl_windows_create(MINUTE, 0);
    sl_reading_t rec = reading("s30", T10 + 5 * MINUTE + 1000, 21);
    sl_window_output_t out;

    (void)state;
    add(win, "s30", T10, 1); /* first window of the sensor */
    add(win, "s30", T10 + 5 * MINUTE, 20);
    assert_int_equal(sl_windows_add(win, &rec, true), 0);
    add(win, "s30", T10 + 6 * MINUTE, 22);
    sl_windows_take(win, &out);
    assert_int_equal(out.aggregate_count, 0);
    assert_int_equal(out.recompute_count, 2);
    assert_int_equal(out.recompute[1].window_start_ms, T10 + 5 * MINUTE);
    sl_windows_destroy(win);
}

static void test_sensors_keep_their_own_watermark(void **state)
{
    sl_windows_t *win = sl_windows_create(MINUTE, MINUTE);
    sl_window_output_t out;

    (void)state;
    /* A live sensor in 2026 must not make a replayed 2013 series late. */
    add(win, "live", T10, 1);
    add(win, "live", T10 + 10 * MINUTE, 1);
    assert_int_equal(add(win, "replay", INT64_C(1386018900000), 5), 0);
    assert_int_equal(add(win, "replay", INT64_C(1386018960000), 6), 0);
    sl_windows_take(win, &out);
    assert_int_equal(out.recompute_count, 1);
    assert_string_equal(out.recompute[0].sensor_id, "live");
    assert_int_equal(sl_windows_sensor_count(win), 2);
    sl_windows_destroy(win);
}

typedef struct naive_window {
    int64_t count;
    double sum, min, max;
    double values[64];
} naive_window_t;

/* In-order readings from several sensors: every window after the first of
 * each sensor is aggregated in memory and must match a direct
 * computation over the same values. */
static void test_window_arithmetic_matches_naive(void **state)
{
    enum { SENSORS = 4, WINDOWS = 20, PER_WINDOW = 30 };
    static naive_window_t naive[SENSORS][WINDOWS];
    sl_windows_t *win = sl_windows_create(MINUTE, 0);
    sl_window_output_t out;
    sl_rng_t rng;
    size_t checked = 0;

    (void)state;
    memset(naive, 0, sizeof(naive));
    sl_rng_seed(&rng, 42);
    for (int w = 0; w < WINDOWS; w++) {
        for (int k = 0; k < PER_WINDOW; k++) {
            for (int s = 0; s < SENSORS; s++) {
                char id[16];
                double v = 20 + 5 * sl_rng_normal(&rng) + s * 100;
                naive_window_t *nw = &naive[s][w];
                snprintf(id, sizeof(id), "sensor-%d", s);
                add(win, id, T10 + w * MINUTE + k * 2000, v);
                nw->values[nw->count++] = v;
                nw->sum += v;
                nw->min = nw->count == 1 || v < nw->min ? v : nw->min;
                nw->max = nw->count == 1 || v > nw->max ? v : nw->max;
            }
        }
    }
    sl_windows_sweep(win, 0, -1);
    sl_windows_take(win, &out);
    assert_int_equal(out.recompute_count, SENSORS);
    assert_int_equal(out.aggregate_count, SENSORS * (WINDOWS - 1));
    for (size_t i = 0; i < out.aggregate_count; i++) {
        const sl_aggregate_t *agg = &out.aggregates[i];
        int s = agg->sensor_id[7] - '0';
        int w = (int)((agg->window_start_ms - T10) / MINUTE);
        naive_window_t *nw = &naive[s][w];
        double mean = nw->sum / (double)nw->count, ss = 0;

        for (int64_t k = 0; k < nw->count; k++)
            ss += (nw->values[k] - mean) * (nw->values[k] - mean);
        assert_int_equal(agg->count, nw->count);
        assert_true(agg->min == nw->min);
        assert_true(agg->max == nw->max);
        assert_true(fabs(agg->avg - mean) < 1e-9);
        assert_true(fabs(agg->stddev - sqrt(ss / (double)nw->count)) < 1e-9);
        checked++;
    }
    assert_int_equal(checked, SENSORS * (WINDOWS - 1));
    sl_windows_destroy(win);
}

static void test_negative_timestamps_align_to_floor(void **state)
{
    sl_windows_t *win = sl_windows_create(MINUTE, 0);
    sl_window_output_t out;

    (void)state;
    add(win, "old", -1, 1);
    add(win, "old", MINUTE, 2);
    sl_windows_take(win, &out);
    assert_int_equal(out.recompute_count, 1);
    assert_int_equal(out.recompute[0].window_start_ms, -MINUTE);
    sl_windows_destroy(win);
}

/* Event times at the int64 limits are refused instead of overflowing
 * the window end or the watermark, and leave no sensor state behind. */
static void test_extreme_timestamps_rejected(void **state)
{
    sl_windows_t *win = sl_windows_create(MINUTE, 5 * MINUTE);

    (void)state;
    assert_int_equal(add(win, "edge", INT64_MAX, 1), SL_EINVAL);
    assert_int_equal(add(win, "edge", INT64_MAX - MINUTE + 1, 1), SL_EINVAL);
    assert_int_equal(add(win, "edge", INT64_MIN, 1), SL_EINVAL);
    assert_int_equal(sl_windows_sensor_count(win), 0);
    assert_int_equal(add(win, "edge", T10, 1), 0);
    assert_int_equal(sl_windows_sensor_count(win), 1);
    sl_windows_destroy(win);
}

/* Windows closed because their sensor went quiet come from the store: the
 * sensor's partition may have moved to another member of the group. At
 * shutdown they come from memory. */
static void test_idle_close_recomputes(void **state)
{
    sl_windows_t *win = sl_windows_create(MINUTE, 5 * MINUTE);
    sl_window_output_t out;

    (void)state;
    assert_int_equal(add(win, "quiet", T10, 1), 0);
    assert_int_equal(add(win, "quiet", T10 + MINUTE, 2), 0);
    assert_int_equal(add(win, "busy", T10, 1), 0);
    assert_int_equal(add(win, "busy", T10 + MINUTE, 2), 0);

    /* Both are idle for a processing time far in the future. */
    sl_windows_sweep(win, sl_time_mono_ms() + 10 * MINUTE, MINUTE);
    sl_windows_take(win, &out);
    assert_int_equal(out.aggregate_count, 0);
    assert_int_equal(out.recompute_count, 4);
    assert_int_equal(sl_windows_sensor_count(win), 0);

    assert_int_equal(add(win, "last", T10, 1), 0);
    assert_int_equal(add(win, "last", T10 + MINUTE, 2), 0);
    sl_windows_sweep(win, sl_time_mono_ms(), -1);
    sl_windows_take(win, &out);
    assert_int_equal(out.recompute_count, 1); /* the first window */
    assert_int_equal(out.aggregate_count, 1);
    assert_int_equal(out.aggregates[0].window_start_ms, T10 + MINUTE);
    sl_windows_destroy(win);
}

/* After its partition was consumed elsewhere, a sensor's open windows and
 * the window of its next reading are recomputed; sensors of other
 * partitions keep their memory. */
static void test_resync_partition_recomputes(void **state)
{
    sl_windows_t *win = sl_windows_create(MINUTE, 5 * MINUTE);
    sl_reading_t a0 = reading("a", T10, 1), a1 = reading("a", T10 + MINUTE, 2);
    sl_reading_t a2 = reading("a", T10 + 2 * MINUTE, 3);
    sl_reading_t b0 = reading("b", T10, 1), b1 = reading("b", T10 + MINUTE, 2);
    sl_window_output_t out;

    (void)state;
    assert_int_equal(sl_windows_add_from(win, &a0, false, 3), 0);
    assert_int_equal(sl_windows_add_from(win, &a1, false, 3), 0);
    assert_int_equal(sl_windows_add_from(win, &b0, false, 4), 0);
    assert_int_equal(sl_windows_add_from(win, &b1, false, 4), 0);
    assert_int_equal(sl_windows_resync_partition(win, 3), 1);
    assert_int_equal(sl_windows_resync_partition(win, 7), 0);
    assert_int_equal(sl_windows_add_from(win, &a2, false, 3), 0);

    sl_windows_sweep(win, sl_time_mono_ms(), -1);
    sl_windows_take(win, &out);
    /* a: all three windows; b: its first window only. */
    assert_int_equal(out.recompute_count, 4);
    assert_int_equal(out.aggregate_count, 1);
    assert_string_equal(out.aggregates[0].sensor_id, "b");
    assert_int_equal(out.aggregates[0].window_start_ms, T10 + MINUTE);
    sl_windows_destroy(win);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_late_reading_recomputes_closed_window),
        cmocka_unit_test(test_redelivered_reading_marks_window_for_recompute),
        cmocka_unit_test(test_sensors_keep_their_own_watermark),
        cmocka_unit_test(test_window_arithmetic_matches_naive),
        cmocka_unit_test(test_negative_timestamps_align_to_floor),
        cmocka_unit_test(test_extreme_timestamps_rejected),
        cmocka_unit_test(test_idle_close_recomputes),
        cmocka_unit_test(test_resync_partition_recomputes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
