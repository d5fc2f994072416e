/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A throwaway SQLite store for the API tests: a fresh directory from
 * mkdtemp(), a migrated database in it, and helpers to write readings.
 */
#ifndef SLUICE_TESTS_API_FIXTURE_H
#define SLUICE_TESTS_API_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* 2026-01-01T00:00:00Z, the base time of the fixed test readings. */
#define T0_MS INT64_C(1767225600000)

typedef struct api_fixture {
    char dir[64];
    char db_path[128];
    sl_store_t *st;
} api_fixture_t;

/** Creates the directory and a migrated store; fails the test on error. */
void fixture_open(api_fixture_t *fx);

/** Closes the store and removes the directory with everything in it. */
void fixture_close(api_fixture_t *fx);

/** Fills a reading with a location, battery and signal; no unit or score. */
void fixture_reading(sl_reading_t *rec, const char *sensor_id,
                     sl_sensor_type_t type, int64_t timestamp_ms, double value);

/** Writes readings in one batch; fails the test unless all are inserted. */
void fixture_write(api_fixture_t *fx, const sl_reading_t *readings,
                   size_t count);

/**
 * Writes the fixed data set that the route tests check. Each line is one
 * sensor with its readings:
 *   temp-01       temperature 20, 21, 22 at T0, T0+60 s, T0+120 s
 *   hum-01        humidity 40 at T0+30 s; 50 at T0+90 s, anomaly, score 0.9
 *   vib-01        vibration 5 at T0+150 s, anomaly, score 0.75
 *   capteur-é-01  temperature 19.5 at T0+10 s
 *   hall sensor   pressure 1013 at T0+20 s
 */
void fixture_write_standard(api_fixture_t *fx);

/** Runs SQL directly on the database file, bypassing the store. */
void fixture_exec_sql(api_fixture_t *fx, const char *sql);

#endif
