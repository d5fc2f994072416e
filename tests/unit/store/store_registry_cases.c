/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The back-end-independent checks of store_registry_cases.h, written with
 * cmocka asserts so that the calling test reports a failure at its line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "store_registry_cases.h"
#include "util/err.h"

#define SUBJECT_A "sensor-readings-value"
#define SUBJECT_B "ecommerce-events-value"

/* One schema written two ways: the same normalized text. */
static const char schema_compact[] =
    "{\"type\":\"fixed\",\"name\":\"f\",\"size\":4}";
static const char schema_spaced[] =
    "{ \"size\": 4, \"name\": \"f\", \"type\": \"fixed\" }";
static const char schema_normalized[] =
    "{\"name\":\"f\",\"size\":4,\"type\":\"fixed\"}";

static const char other_schema[] =
    "{\"type\":\"fixed\",\"name\":\"g\",\"size\":8}";
static const char other_normalized[] =
    "{\"name\":\"g\",\"size\":8,\"type\":\"fixed\"}";

static void assert_level(sl_store_t *st, const char *subject,
                         const char *expected)
{
    char level[SL_STORE_LEVEL_MAX + 1];

    assert_int_equal(sl_store_schema_config_get(st, subject, level), SL_OK);
    assert_string_equal(level, expected);
}

static void assert_no_level(sl_store_t *st, const char *subject)
{
    char level[SL_STORE_LEVEL_MAX + 1];

    assert_int_equal(sl_store_schema_config_get(st, subject, level),
                     SL_ENOTFOUND);
}

void registry_cases_levels(sl_store_t *st)
{
    char old[SL_STORE_LEVEL_MAX + 1];

    assert_no_level(st, NULL);
    assert_no_level(st, SUBJECT_A);

    /* The store keeps the global row and subject rows apart: the fallback
     * from a subject to the global level is the registry's. */
    assert_int_equal(sl_store_schema_config_set(st, NULL, "FULL", 1000), SL_OK);
    assert_level(st, NULL, "FULL");
    assert_no_level(st, SUBJECT_A);

    assert_int_equal(sl_store_schema_config_set(st, SUBJECT_A, "FORWARD", 2000),
                     SL_OK);
    assert_int_equal(sl_store_schema_config_set(st, SUBJECT_B, "NONE", 2000),
                     SL_OK);
    assert_int_equal(
        sl_store_schema_config_set(st, SUBJECT_A, "BACKWARD_TRANSITIVE", 3000),
        SL_OK);
    assert_level(st, SUBJECT_A, "BACKWARD_TRANSITIVE");
    assert_level(st, SUBJECT_B, "NONE");
    assert_level(st, NULL, "FULL");

    assert_int_equal(sl_store_schema_config_delete(st, SUBJECT_A, old), SL_OK);
    assert_string_equal(old, "BACKWARD_TRANSITIVE");
    assert_no_level(st, SUBJECT_A);
    assert_level(st, SUBJECT_B, "NONE");
    assert_int_equal(sl_store_schema_config_delete(st, SUBJECT_A, old),
                     SL_ENOTFOUND);

    assert_int_equal(sl_store_schema_config_delete(st, NULL, NULL), SL_OK);
    assert_no_level(st, NULL);
    assert_level(st, SUBJECT_B, "NONE");
}

void registry_cases_invalid_levels(sl_store_t *st)
{
    assert_int_equal(sl_store_schema_config_set(st, SUBJECT_A, "FULL", 1),
                     SL_OK);
    assert_int_equal(sl_store_schema_config_set(st, SUBJECT_A, "SIDEWAYS", 2),
                     SL_EIO);
    assert_int_equal(sl_store_schema_config_set(st, SUBJECT_A, "", 2),
                     SL_EINVAL);
    assert_int_equal(
        sl_store_schema_config_set(st, SUBJECT_A,
                                   "FULL_TRANSITIVE_AND_SOME_MORE_TEXT", 2),
        SL_EINVAL);
    assert_level(st, SUBJECT_A, "FULL");

    /* The empty subject would be the global row. */
    assert_int_equal(sl_store_schema_config_set(st, "", "NONE", 2), SL_EINVAL);
    assert_no_level(st, NULL);
}

void registry_cases_levels_survive_reopen(const registry_cases_backend_t *be,
                                          sl_store_t **st)
{
    assert_int_equal(sl_store_schema_config_set(*st, NULL, "FORWARD", 1),
                     SL_OK);
    assert_int_equal(sl_store_schema_config_set(*st, SUBJECT_A, "NONE", 1),
                     SL_OK);
    *st = be->reopen(*st);
    assert_non_null(*st);
    assert_level(*st, NULL, "FORWARD");
    assert_level(*st, SUBJECT_A, "NONE");
    assert_no_level(*st, SUBJECT_B);
}

static int32_t insert_ok(sl_store_t *st, const char *subject,
                         const char *schema, const char *normalized,
                         int32_t *version)
{
    int32_t id = -1;

    assert_int_equal(sl_store_schema_insert(st, subject, schema, normalized,
                                            1000, &id, version),
                     SL_OK);
    return id;
}

void registry_cases_shared_id(sl_store_t *st)
{
    sl_store_schema_row_t *rows = NULL;
    sl_store_schema_row_t row;
    size_t n = 0;
    int32_t version = 0;
    int32_t first;
    int32_t other;

    first =
        insert_ok(st, SUBJECT_A, schema_compact, schema_normalized, &version);
    assert_int_equal(first, 1);
    other = insert_ok(st, SUBJECT_A, other_schema, other_normalized, &version);
    assert_int_equal(other, 2);
    assert_int_equal(version, 2);

    /* Another subject, another spelling: the same id, its own version. */
    assert_int_equal(
        insert_ok(st, SUBJECT_B, schema_spaced, schema_normalized, &version),
        first);
    assert_int_equal(version, 1);
    assert_int_equal(
        insert_ok(st, SUBJECT_B, other_schema, other_normalized, &version),
        other);
    assert_int_equal(version, 2);

    /* Again under a subject that has it: its version, no new row. */
    assert_int_equal(
        insert_ok(st, SUBJECT_B, schema_compact, schema_normalized, &version),
        first);
    assert_int_equal(version, 1);

    assert_int_equal(sl_store_schema_list(st, NULL, &rows, &n), SL_OK);
    assert_int_equal(n, 4);
    /* Ordered by subject: "ecommerce..." before "sensor...". */
    assert_string_equal(rows[0].subject, SUBJECT_B);
    assert_string_equal(rows[0].schema, schema_spaced);
    assert_string_equal(rows[0].normalized, schema_normalized);
    assert_int_equal(rows[0].id, first);
    assert_int_equal(rows[1].id, other);
    assert_string_equal(rows[2].subject, SUBJECT_A);
    assert_int_equal(rows[2].id, first);
    sl_store_schema_rows_free(rows, n);

    /* An id shared by two subjects returns the first by subject. */
    assert_int_equal(sl_store_schema_get(st, first, &row), SL_OK);
    assert_string_equal(row.subject, SUBJECT_B);
    assert_string_equal(row.schema, schema_spaced);
    sl_store_schema_row_fini(&row);
}

void registry_cases_fill_normalized(const registry_cases_backend_t *be,
                                    sl_store_t *st)
{
    char sql[256];
    sl_store_schema_row_t *rows = NULL;
    size_t n = 0;
    int32_t version = 0;

    /* A row as an older version stored it: no normalized text. */
    snprintf(sql, sizeof(sql),
             "INSERT INTO schemas (subject, version, id, schema, created_at_ms)"
             " VALUES ('%s', 1, 7, '%s', 1)",
             SUBJECT_A, schema_spaced);
    be->exec(st, sql);

    /* Its own subject finds it by the schema text. */
    assert_int_equal(
        insert_ok(st, SUBJECT_A, schema_spaced, schema_normalized, &version),
        7);
    assert_int_equal(version, 1);

    assert_int_equal(
        sl_store_schema_set_normalized(st, SUBJECT_A, 1, schema_normalized),
        SL_OK);
    assert_int_equal(
        insert_ok(st, SUBJECT_B, schema_compact, schema_normalized, &version),
        7);
    assert_int_equal(version, 1);

    /* A row that has its text keeps it. */
    assert_int_equal(
        sl_store_schema_set_normalized(st, SUBJECT_A, 1, other_normalized),
        SL_OK);
    assert_int_equal(sl_store_schema_list(st, SUBJECT_A, &rows, &n), SL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].normalized, schema_normalized);
    sl_store_schema_rows_free(rows, n);
}
