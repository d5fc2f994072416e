/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the schema registry calls on the SQLite store, in a fresh
 * mkdtemp folder per test: the back-end-independent cases of
 * store_registry_cases.c, and the migration that lets schemas share ids
 * applied to a database that contains rows already.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_int.h"
#include "store_registry_cases.h"
#include "util/err.h"

/* The migrations compiled into the store (embedded_sqlite.c). */
extern const struct sl_embedded_file sl_sqlite_migration_files[];

struct fixture {
    char dir[64];
    char path[128];
    sl_store_t *st;
};

static sl_store_t *open_migrated(const char *path)
{
    char err[256] = "";
    sl_store_t *st = sl_store_open(path, err, sizeof(err));

    if (st == NULL)
        fail_msg("sl_store_open failed: %s", err);
    if (sl_store_migrate(st, err, sizeof(err)) != SL_OK)
        fail_msg("sl_store_migrate failed: %s", err);
    return st;
}

static void exec_sql(sl_store_t *st, const char *sql)
{
    char *msg = NULL;
    char reason[256];

    if (sqlite3_exec(sl_store__sqlite_db(st), sql, NULL, NULL, &msg) !=
        SQLITE_OK) {
        snprintf(reason, sizeof(reason), "%s", msg ? msg : "");
        sqlite3_free(msg);
        fail_msg("%s failed: %s", sql, reason);
    }
}

/* The store and its file, kept between reopens for the next call. */
static struct fixture *current;

static sl_store_t *reopen(sl_store_t *st)
{
    sl_store_close(st);
    return open_migrated(current->path);
}

static const registry_cases_backend_t backend = {exec_sql, reopen};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sl_store_registry.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/registry.db", fx->dir);
    current = fx;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    const char *suffixes[] = {"", "-wal", "-shm"};
    char path[160];

    sl_store_close(fx->st);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", fx->path, suffixes[i]);
        unlink(path);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static struct fixture *migrated(void **state)
{
    struct fixture *fx = *state;

    fx->st = open_migrated(fx->path);
    return fx;
}

static void test_levels_set_override_delete(void **state)
{
    registry_cases_levels(migrated(state)->st);
}

static void test_invalid_levels_rejected(void **state)
{
    registry_cases_invalid_levels(migrated(state)->st);
}

static void test_levels_survive_reopen(void **state)
{
    struct fixture *fx = migrated(state);

    registry_cases_levels_survive_reopen(&backend, &fx->st);
}

static void test_same_schema_shares_id(void **state)
{
    registry_cases_shared_id(migrated(state)->st);
}

static void test_old_row_shares_id_once_filled(void **state)
{
    struct fixture *fx = migrated(state);

    registry_cases_fill_normalized(&backend, fx->st);
}

/* A database at the version before the migration, holding one schema under
 * two subjects with two ids (as the old code numbered them), migrates
 * with every row and id kept. */
static void test_migration_keeps_rows(void **state)
{
    struct fixture *fx = *state;
    struct sl_embedded_file before[3] = {sl_sqlite_migration_files[0],
                                         sl_sqlite_migration_files[1],
                                         {NULL, NULL}};
    sl_store_schema_row_t *rows = NULL;
    char err[256] = "";
    size_t n = 0;

    assert_string_equal(before[1].name, "002_dlq_retry.sql");
    fx->st = sl_store_open(fx->path, err, sizeof(err));
    assert_non_null(fx->st);
    assert_int_equal(sl_sqlite__migrate_files((sl_sqlite_t *)fx->st, before,
                                              err, sizeof(err)),
                     SL_OK);
    exec_sql(fx->st, "INSERT INTO schemas VALUES"
                     " ('a-value', 1, 1, '\"int\"', 10),"
                     " ('b-value', 1, 2, '\"int\"', 20),"
                     " ('a-value', 2, 3, '\"long\"', 30)");

    assert_int_equal(sl_store_migrate(fx->st, err, sizeof(err)), SL_OK);
    assert_int_equal(sl_store_schema_version(fx->st), 3);
    assert_int_equal(sl_store_schema_list(fx->st, NULL, &rows, &n), SL_OK);
    assert_int_equal(n, 3);
    assert_int_equal(rows[0].id, 1);
    assert_int_equal(rows[1].id, 3);
    assert_int_equal(rows[1].version, 2);
    assert_string_equal(rows[1].schema, "\"long\"");
    assert_int_equal(rows[1].created_at_ms, 30);
    assert_null(rows[1].normalized);
    assert_int_equal(rows[2].id, 2);
    sl_store_schema_rows_free(rows, n);

    /* (subject, id) is unique now, id alone is not. */
    exec_sql(fx->st, "INSERT INTO schemas (subject, version, id, schema,"
                     " created_at_ms) VALUES ('c-value', 1, 1, '\"int\"', 40)");
    assert_int_not_equal(
        sqlite3_exec(sl_store__sqlite_db(fx->st),
                     "INSERT INTO schemas (subject, version, id, schema,"
                     " created_at_ms) VALUES ('c-value', 2, 1, '\"int\"', 50)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(sl_store_schema_list(fx->st, NULL, &rows, &n), SL_OK);
    assert_int_equal(n, 4);
    sl_store_schema_rows_free(rows, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_levels_set_override_delete, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_invalid_levels_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_levels_survive_reopen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_same_schema_shares_id, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_old_row_shares_id_once_filled,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_keeps_rows, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
