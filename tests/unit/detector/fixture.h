/* SPDX-License-Identifier: Apache-2.0 */
/* A migrated SQLite file, an in-process bus with its registry and a
 * publisher, shared by the detector tests. */
#ifndef SLUICE_TESTS_DETECTOR_FIXTURE_H
#define SLUICE_TESTS_DETECTOR_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "detect/detector.h"
#include "pipeline/publish.h"
#include "schema/schema.h"
#include "store/store.h"

/* 2026-01-01T00:00:00Z */
#define T0_MS INT64_C(1767225600000)

typedef struct fixture {
    char dir[64];
    char db[128];
    char models[128];
    sl_bus_t *bus;
    sl_registry_t *reg;
    sl_publisher_t *pub;
    sl_store_t *st; /* the test's own handle */
} fixture_t;

/** Creates the folder, the migrated database, the bus and a publisher. */
fixture_t *fixture_create(void);

/** Closes and frees the bus and publisher, then makes new ones: a restart
 * of the pipeline on the same files. */
void fixture_new_bus(fixture_t *fx);

/** Closes the bus (if still open) and removes everything. */
void fixture_destroy(fixture_t *fx);

/** Returns a valid reading of sensor_id at ts_ms with value. */
sl_reading_t make_reading(const char *sensor_id, sl_sensor_type_t type,
                          int64_t ts_ms, double value);

/** Publishes a reading, failing the test when the bus rejects it. */
void publish(fixture_t *fx, const sl_reading_t *rec);

/** Waits up to 20 s until the detector has committed everything. */
void wait_detected(sl_detector_t *det);

/** Runs one SQL query that returns one integer. */
int64_t query_int(fixture_t *fx, const char *sql);

/**
 * Starts stderr capture into a file of the fixture's folder; the next
 * capture_stop() restores stderr and returns what was written (static
 * buffer).
 */
void capture_start(fixture_t *fx);
const char *capture_stop(void);

#endif
