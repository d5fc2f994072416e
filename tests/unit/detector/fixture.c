/* SPDX-License-Identifier: Apache-2.0 */
/* Shared set-up of the detector tests: see fixture.h. */
#include "fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_int.h"
#include "util/err.h"
#include "util/timeutil.h"

static void bus_create(fixture_t *fx)
{
    sl_bus_memory_config_t cfg;

    sl_bus_memory_config_init(&cfg);
    cfg.partitions = 2;
    fx->bus = sl_bus_memory_create(&cfg);
    assert_non_null(fx->bus);
    fx->pub = sl_publisher_create(fx->bus, fx->reg, 1000);
    assert_non_null(fx->pub);
}

void fixture_new_bus(fixture_t *fx)
{
    sl_publisher_destroy(fx->pub);
    sl_bus_close(fx->bus);
    sl_bus_destroy(fx->bus);
    bus_create(fx);
}

fixture_t *fixture_create(void)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    char err[256] = "";

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sl_detector_test.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->db, sizeof(fx->db), "%s/sluice.db", fx->dir);
    snprintf(fx->models, sizeof(fx->models), "%s/models", fx->dir);
    fx->st = sl_store_open(fx->db, err, sizeof(err));
    if (fx->st == NULL)
        fail_msg("sl_store_open failed: %s", err);
    assert_int_equal(sl_store_migrate(fx->st, err, sizeof(err)), SL_OK);

    fx->reg = sl_registry_create();
    assert_non_null(fx->reg);
    bus_create(fx);
    return fx;
}

void fixture_destroy(fixture_t *fx)
{
    char cmd[160];

    sl_publisher_destroy(fx->pub);
    sl_store_close(fx->st);
    sl_bus_close(fx->bus);
    sl_bus_destroy(fx->bus);
    sl_registry_destroy(fx->reg);
    /* The folder name comes from mkdtemp and contains no shell characters. */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fx->dir);
    free(fx);
}

sl_reading_t make_reading(const char *sensor_id, sl_sensor_type_t type,
                          int64_t ts_ms, double value)
{
    sl_reading_t rec;

    memset(&rec, 0, sizeof(rec));
    snprintf(rec.sensor_id, sizeof(rec.sensor_id), "%s", sensor_id);
    snprintf(rec.location, sizeof(rec.location), "hall-a");
    rec.sensor_type = type;
    rec.timestamp_ms = ts_ms;
    rec.value = value;
    rec.battery_level = 80;
    rec.signal_strength = -60;
    return rec;
}

void publish(fixture_t *fx, const sl_reading_t *rec)
{
    assert_int_equal(sl_publish_reading(fx->pub, rec), SL_OK);
}

void wait_detected(sl_detector_t *det)
{
    int64_t deadline = sl_time_mono_ms() + 20000;

    while (sl_detector_lag(det) > 0 && sl_time_mono_ms() < deadline)
        sl_time_sleep_ms(5);
    assert_int_equal(sl_detector_lag(det), 0);
}

int64_t query_int(fixture_t *fx, const char *sql)
{
    sqlite3 *db = sl_store__sqlite_db(fx->st);
    sqlite3_stmt *stmt = NULL;
    int64_t value = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("prepare failed: %s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(stmt) == SQLITE_ROW)
        value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

static int saved_stderr = -1;
static char capture_path[160];

void capture_start(fixture_t *fx)
{
    int fd;

    snprintf(capture_path, sizeof(capture_path), "%s/stderr.txt", fx->dir);
    fd = open(capture_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    saved_stderr = dup(2);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(fd, 2) >= 0);
    close(fd);
}

const char *capture_stop(void)
{
    static char text[16384];
    FILE *f;
    size_t n;

    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
    f = fopen(capture_path, "r");
    assert_non_null(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    fputs(text, stderr); /* keep it visible in the test log */
    return text;
}
