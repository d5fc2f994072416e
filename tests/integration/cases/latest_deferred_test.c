/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The processor writes the sensor_latest rows apart from the readings,
 * every latest_interval_ms, and commits a batch's offsets only after the
 * latest write that covers its readings: a crash between the two must
 * redeliver the records, or a sensor that then falls silent keeps a
 * latest row older than its stored readings. Runs the real processor on
 * the in-process bus and an SQLite file, with the ten readings of case B17
 * (sensor-030, values 20..29).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "cases_harness.h"
#include "store/store_int.h"
#include "util/err.h"

#define ROWS 10

/* Returns sensor-030's latest value, or -1 when it has no row. */
static double latest_value(sl_store_t *st)
{
    sqlite3_stmt *stmt = NULL;
    double value = -1;

    assert_int_equal(sqlite3_prepare_v2(sl_store__sqlite_db(st),
                                        "SELECT value FROM sensor_latest"
                                        " WHERE sensor_id = 'sensor-030'",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        value = sqlite3_column_double(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

/* Publishes the case's rows and starts the processor with the given
 * latest interval. */
static sl_processor_t *start_case(sl_bus_t *bus, ch_env_t *env,
                                  int latest_interval_ms)
{
    sl_processor_config_t cfg;

    ch_env_open(env);
    ch_publish_fixture(bus, &env->codec, "B17", "partition0_offsets.csv", ROWS);
    ch_processor_config(&cfg, bus, &env->codec, env->location);
    cfg.latest_interval_ms = latest_interval_ms;
    return ch_processor_start(&cfg);
}

static void stop_case(sl_bus_t *bus, sl_processor_t *proc, ch_env_t *env)
{
    sl_bus_close(bus);
    sl_processor_stop(proc);
    ch_env_close(env);
    sl_bus_destroy(bus);
}

/* Until the interval has passed, the readings are stored but neither the
 * latest row nor the offsets are. Stopping writes both. */
static void test_offsets_wait_for_latest_write(void **state)
{
    sl_bus_t *bus = ch_memory_bus(1);
    ch_env_t env;
    sl_processor_t *proc = start_case(bus, &env, 600000);

    (void)state;
    assert_int_equal(ch_wait_reading_count(env.st, ROWS), ROWS);
    assert_true(latest_value(env.st) == -1);
    assert_int_equal(sl_processor_lag(proc), ROWS);

    /* Draining on stop is the write the interval would have made. */
    sl_bus_close(bus);
    sl_processor_stop(proc);
    assert_true(latest_value(env.st) == 29.0);
    ch_env_close(&env);
    sl_bus_destroy(bus);
}

/* With a short interval the latest row and the commit follow on their
 * own, without a stop. */
static void test_latest_written_each_interval(void **state)
{
    sl_bus_t *bus = ch_memory_bus(1);
    ch_env_t env;
    sl_processor_t *proc = start_case(bus, &env, 100);

    (void)state;
    assert_int_equal(ch_wait_committed(proc, ROWS), 0);
    assert_true(latest_value(env.st) == 29.0);
    stop_case(bus, proc, &env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets_wait_for_latest_write),
        cmocka_unit_test(test_latest_written_each_interval),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
