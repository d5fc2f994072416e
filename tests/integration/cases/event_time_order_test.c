/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Readings of one sensor that arrive out of order are placed by event
 * time. Seq 1..6 of a sensor (value = seq) arrive as 1, 2, 3, 5, 6, 4, as
 * a producer retry can reorder them. The store's latest reading of the
 * sensor must be seq 6, the newest by event time, not seq 4, the last to
 * arrive. Every window aggregate must equal the one of an in-order
 * arrival. sensor-050 has the case's spacing of one second. sensor-051
 * has 20 seconds, so its readings span three 1-minute windows, and seq 4
 * arrives after seq 6 has opened the next window.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cases_harness.h"
#include "util/err.h"

#define SEQ_COUNT 6
#define T0 INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define MINUTE_MS 60000

static const int out_of_order[SEQ_COUNT] = {1, 2, 3, 5, 6, 4};
static const int in_order[SEQ_COUNT] = {1, 2, 3, 4, 5, 6};

/* The sensors of the test and the event-time step between their seqs. */
static const struct {
    const char *sensor_id;
    int64_t step_ms;
} sensors[] = {
    {"sensor-050", 1000},
    {"sensor-051", 20000},
};

#define SENSOR_COUNT (sizeof(sensors) / sizeof(sensors[0]))
#define WINDOW_COUNT 3 /* windows checked per sensor, from T0 */

/* One run's window aggregates: [sensor][window from T0]. */
typedef struct run_result {
    bool found[SENSOR_COUNT][WINDOW_COUNT];
    sl_aggregate_t agg[SENSOR_COUNT][WINDOW_COUNT];
} run_result_t;

/* Publishes every sensor's seqs in the given arrival order to partition
 * 0, runs the processor over them until it stopped, checks the latest
 * reading of each sensor, and returns the window aggregates. */
static void run(const int *order, run_result_t *out)
{
    sl_bus_t *bus = ch_memory_bus(1);
    ch_env_t env;
    sl_processor_config_t cfg;
    sl_processor_t *proc;

    ch_env_open(&env);

    for (size_t s = 0; s < SENSOR_COUNT; s++) {
        for (int i = 0; i < SEQ_COUNT; i++) {
            sl_reading_t rec = ch_reading(
                sensors[s].sensor_id, SL_SENSOR_PRESSURE,
                T0 + order[i] * sensors[s].step_ms, (double)order[i]);
            ch_publish_reading(bus, &env.codec, &rec, 0);
        }
    }
    ch_processor_config(&cfg, bus, &env.codec, env.location);
    proc = ch_processor_start(&cfg);
    assert_int_equal(ch_wait_committed(proc, SENSOR_COUNT * SEQ_COUNT), 0);
    ch_stages_stop(bus, proc, NULL);

    for (size_t s = 0; s < SENSOR_COUNT; s++) {
        sl_reading_query_t q;
        sl_reading_t latest;
        size_t n = 0;

        sl_reading_query_init(&q);
        q.sensor_id = sensors[s].sensor_id;
        q.limit = 1;
        assert_int_equal(sl_store_readings(env.st, &q, &latest, 1, &n), SL_OK);
        assert_int_equal(n, 1);
        assert_int_equal(latest.timestamp_ms,
                         T0 + SEQ_COUNT * sensors[s].step_ms);
        assert_true(latest.value == (double)SEQ_COUNT);
        for (int w = 0; w < WINDOW_COUNT; w++)
            out->found[s][w] =
                ch_aggregate(env.st, sensors[s].sensor_id, T0 + w * MINUTE_MS,
                             &out->agg[s][w]);
    }

    ch_env_close(&env);
}

static void check_window(const run_result_t *r, size_t sensor, int window,
                         int64_t count, double min, double max)
{
    const sl_aggregate_t *agg = &r->agg[sensor][window];

    assert_true(r->found[sensor][window]);
    assert_int_equal(agg->count, count);
    assert_true(agg->min == min);
    assert_true(agg->max == max);
    assert_true(fabs(agg->avg - (min + max) / 2) < 1e-9);
}

static void test_out_of_order_arrival(void **state)
{
    run_result_t got, want;

    (void)state;
    memset(&got, 0, sizeof(got));
    memset(&want, 0, sizeof(want));
    run(out_of_order, &got);
    run(in_order, &want);

    /* sensor-050: all six in the first minute. */
    check_window(&got, 0, 0, 6, 1, 6);
    assert_false(got.found[0][1]);
    /* sensor-051: seq 1-2 (0:20, 0:40), 3-5 (1:00..1:40), 6 (2:00). */
    check_window(&got, 1, 0, 2, 1, 2);
    check_window(&got, 1, 1, 3, 3, 5);
    check_window(&got, 1, 2, 1, 6, 6);

    for (size_t s = 0; s < SENSOR_COUNT; s++) {
        for (int w = 0; w < WINDOW_COUNT; w++) {
            const sl_aggregate_t *a = &got.agg[s][w];
            const sl_aggregate_t *b = &want.agg[s][w];

            assert_int_equal(got.found[s][w], want.found[s][w]);
            if (!got.found[s][w])
                continue;
            assert_int_equal(a->count, b->count);
            assert_true(a->min == b->min);
            assert_true(a->max == b->max);
            assert_true(fabs(a->avg - b->avg) < 1e-9);
            assert_true(fabs(a->stddev - b->stddev) < 1e-9);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_of_order_arrival),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
