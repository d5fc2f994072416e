/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The view refresher against a throwaway PostgreSQL: sensor_stats follows
 * new rows within an interval, a stopped server is survived, and stop does
 * not wait for the next interval.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "obs/metrics.h"
#include "pg_harness.h"
#include "pipeline/view_refresh.h"
#include "store/store.h"
#include "util/err.h"
#include "util/timeutil.h"

#define T0_MS 1767225600000LL
#define INTERVAL_MS 100
#define WAIT_MS 20000

static sl_pg_harness_t harness;

static int group_setup(void **state)
{
    char err[512];
    sl_store_t *st;

    (void)state;
    if (sl_pg_harness_start(&harness, err, sizeof(err)) != 0) {
        fprintf(stderr, "cannot start PostgreSQL: %s\n", err);
        return -1;
    }
    st = sl_store_open(harness.url, err, sizeof(err));
    if (st == NULL || sl_store_migrate(st, err, sizeof(err)) != SL_OK) {
        fprintf(stderr, "cannot migrate: %s\n", err);
        sl_store_close(st);
        return -1;
    }
    sl_store_close(st);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    sl_pg_harness_destroy(&harness);
    return 0;
}

/* Returns sensor_stats.count of one sensor, 0 when it has no row, or -1
 * when the query fails. */
static long stats_count(const char *sensor_id)
{
    PGconn *conn = PQconnectdb(harness.url);
    const char *params[] = {sensor_id};
    long n = -1;

    if (PQstatus(conn) == CONNECTION_OK) {
        PGresult *res = PQexecParams(
            conn, "SELECT count FROM sensor_stats WHERE sensor_id = $1", 1,
            NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
            n = PQntuples(res) == 0 ? 0 : atol(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    PQfinish(conn);
    return n;
}

static void write_readings(const char *sensor_id, int count)
{
    char err[512];
    sl_store_t *st = sl_store_open(harness.url, err, sizeof(err));
    sl_reading_t *recs = calloc((size_t)count, sizeof(*recs));
    sl_store_result_t result;

    assert_non_null(st);
    assert_non_null(recs);
    for (int i = 0; i < count; i++) {
        snprintf(recs[i].sensor_id, sizeof(recs[i].sensor_id), "%s", sensor_id);
        snprintf(recs[i].location, sizeof(recs[i].location), "hall-a");
        recs[i].timestamp_ms = T0_MS + i * 1000LL;
        recs[i].value = 20.0 + i;
        recs[i].sensor_type = SL_SENSOR_TEMPERATURE;
    }
    sl_store_batch_t batch = {.readings = recs, .reading_count = (size_t)count};
    memset(&result, 0, sizeof(result));
    assert_int_equal(sl_store_write(st, &batch, &result, NULL, NULL), SL_OK);
    assert_int_equal(result.readings_inserted, count);
    free(recs);
    sl_store_close(st);
}

/* Waits until sensor_stats reports want rows for sensor_id. */
static void wait_stats_count(const char *sensor_id, long want)
{
    int64_t deadline = sl_time_mono_ms() + WAIT_MS;
    long n = -1;

    while (sl_time_mono_ms() < deadline) {
        n = stats_count(sensor_id);
        if (n == want)
            return;
        sl_time_sleep_ms(50);
    }
    fail_msg("sensor_stats count for %s is %ld, expected %ld", sensor_id, n,
             want);
}

/* Waits until the refresher has counted at least want refreshes. */
static void wait_refresh_count(const sl_view_refresher_t *vr, uint64_t want)
{
    int64_t deadline = sl_time_mono_ms() + WAIT_MS;

    while (sl_view_refresher_count(vr) < want && sl_time_mono_ms() < deadline)
        sl_time_sleep_ms(10);
    assert_true(sl_view_refresher_count(vr) >= want);
}

static void test_views_follow_new_rows(void **state)
{
    char err[512];
    sl_view_refresher_t *vr;

    (void)state;
    write_readings("refresh-a", 10);
    assert_int_equal(stats_count("refresh-a"), 0); /* not refreshed yet */

    vr = sl_view_refresher_start(harness.url, INTERVAL_MS, err, sizeof(err));
    if (vr == NULL)
        fail_msg("sl_view_refresher_start failed: %s", err);
    wait_stats_count("refresh-a", 10);
    write_readings("refresh-b", 7);
    wait_stats_count("refresh-b", 7);
    /* A refresh is counted just after its commit, which the query above
     * may see first. */
    wait_refresh_count(vr, 2);

    int64_t start = sl_time_mono_ms();
    sl_view_refresher_stop(vr);
    /* Stopping interrupts the wait, it does not sit out an interval. */
    assert_true(sl_time_mono_ms() - start < 5000);
}

static void test_refresh_survives_server_restart(void **state)
{
    char err[512];
    sl_view_refresher_t *vr;
    uint64_t before;

    (void)state;
    vr = sl_view_refresher_start(harness.url, INTERVAL_MS, err, sizeof(err));
    if (vr == NULL)
        fail_msg("sl_view_refresher_start failed: %s", err);
    while (sl_view_refresher_count(vr) == 0)
        sl_time_sleep_ms(20);

    assert_int_equal(sl_pg_harness_stop_server(&harness), 0);
    sl_time_sleep_ms(5 * INTERVAL_MS); /* refreshes fail meanwhile */
    before = sl_view_refresher_count(vr);
    assert_int_equal(sl_pg_harness_start_server(&harness), 0);

    write_readings("refresh-c", 3);
    wait_stats_count("refresh-c", 3);
    wait_refresh_count(vr, before + 1);
    sl_view_refresher_stop(vr);

    char *text = NULL;
    size_t len = 0;
    assert_int_equal(sl_metrics_render(&text, &len), SL_OK);
    /* A refresh failed while the server was down, and was counted. */
    assert_null(
        strstr(text, "sluice_view_refreshes_total{result=\"error\"} 0\n"));
    assert_non_null(
        strstr(text, "sluice_view_refreshes_total{result=\"error\"} "));
    free(text);
}

static void test_invalid_interval_rejected(void **state)
{
    char err[512] = "";

    (void)state;
    assert_null(sl_view_refresher_start(harness.url, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "interval"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_views_follow_new_rows),
        cmocka_unit_test(test_refresh_survives_server_restart),
        cmocka_unit_test(test_invalid_interval_rejected),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
