/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the schema tests: the failure-case folder and its
 * registry.json, .avsc and .hex files. */
#ifndef SLUICE_TESTS_UNIT_SCHEMA_FIXTURES_H
#define SLUICE_TESTS_UNIT_SCHEMA_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "schema/schema.h"

/* Largest .hex message the tests load, in bytes. */
#define FIXTURE_MAX_MESSAGE 4096

/** Returns the path of case folder `name` (static buffer); fails the test
 * when the fixture folder cannot be found. */
const char *fixture_case_dir(const char *name);

/** Loads the message in <case>/<file> into buf; returns its length. */
size_t fixture_hex(const char *case_name, const char *file, uint8_t *buf);

/** Creates a registry holding every id of <case>/registry.json. */
sl_registry_t *fixture_registry(const char *case_name);

/** Parses <case>/<file> as a schema; fails the test when it cannot. */
avro_schema_t fixture_schema(const char *case_name, const char *file);

/** Returns the contents of <case>/<file> (free with free()). */
char *fixture_text(const char *case_name, const char *file);

/** Runs the failure-case tests; returns the number of failures. */
int run_case_tests(void);

#endif
