/* SPDX-License-Identifier: Apache-2.0 */
#include "fixture.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/record.h"
#include "util/err.h"

void fixture_open(api_fixture_t *fx)
{
    char err[256] = "";

    memset(fx, 0, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sluice_api_XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->db_path, sizeof(fx->db_path), "%s/sluice.db", fx->dir);

    fx->st = sl_store_open(fx->db_path, err, sizeof(err));
    if (fx->st == NULL)
        fail_msg("sl_store_open(%s) failed: %s", fx->db_path, err);
    if (sl_store_migrate(fx->st, err, sizeof(err)) != SL_OK)
        fail_msg("sl_store_migrate failed: %s", err);
}

void fixture_close(api_fixture_t *fx)
{
    DIR *d;
    struct dirent *ent;
    char path[512];

    sl_store_close(fx->st);
    fx->st = NULL;

    d = opendir(fx->dir);
    if (d == NULL)
        return;
    while ((ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", fx->dir, ent->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(fx->dir);
}

void fixture_reading(sl_reading_t *rec, const char *sensor_id,
                     sl_sensor_type_t type, int64_t timestamp_ms, double value)
{
    memset(rec, 0, sizeof(*rec));
    assert_int_equal(
        sl_text_copy(rec->sensor_id, sizeof(rec->sensor_id), sensor_id), SL_OK);
    snprintf(rec->location, sizeof(rec->location), "building-a/floor-2");
    rec->sensor_type = type;
    rec->timestamp_ms = timestamp_ms;
    rec->value = value;
    rec->battery_level = 87;
    rec->signal_strength = -61;
}

void fixture_write(api_fixture_t *fx, const sl_reading_t *readings,
                   size_t count)
{
    sl_store_batch_t batch = {.readings = readings, .reading_count = count};
    sl_store_result_t result;

    assert_int_equal(sl_store_write(fx->st, &batch, &result, NULL, NULL),
                     SL_OK);
    assert_int_equal(result.readings_inserted, count);
}

void fixture_write_standard(api_fixture_t *fx)
{
    sl_reading_t r[8];

    fixture_reading(&r[0], "temp-01", SL_SENSOR_TEMPERATURE, T0_MS, 20.0);
    fixture_reading(&r[1], "temp-01", SL_SENSOR_TEMPERATURE, T0_MS + 60000,
                    21.0);
    fixture_reading(&r[2], "temp-01", SL_SENSOR_TEMPERATURE, T0_MS + 120000,
                    22.0);
    fixture_reading(&r[3], "hum-01", SL_SENSOR_HUMIDITY, T0_MS + 30000, 40.0);
    fixture_reading(&r[4], "hum-01", SL_SENSOR_HUMIDITY, T0_MS + 90000, 50.0);
    r[4].anomaly = true;
    r[4].has_score = true;
    r[4].anomaly_score = 0.9;
    fixture_reading(&r[5], "vib-01", SL_SENSOR_VIBRATION, T0_MS + 150000, 5.0);
    r[5].anomaly = true;
    r[5].has_score = true;
    r[5].anomaly_score = 0.75;
    fixture_reading(&r[6], "capteur-\xc3\xa9-01", SL_SENSOR_TEMPERATURE,
                    T0_MS + 10000, 19.5);
    fixture_reading(&r[7], "hall sensor", SL_SENSOR_PRESSURE, T0_MS + 20000,
                    1013.0);
    fixture_write(fx, r, 8);
}

void fixture_exec_sql(api_fixture_t *fx, const char *sql)
{
    sqlite3 *db = NULL;
    char *errmsg = NULL;

    assert_int_equal(sqlite3_open(fx->db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, sql, NULL, NULL, &errmsg) != SQLITE_OK)
        fail_msg("SQL failed: %s: %s", sql, errmsg);
    sqlite3_close(db);
}
