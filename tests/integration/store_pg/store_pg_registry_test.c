/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the schema registry on the PostgreSQL store, on a throwaway
 * cluster started by pg_harness. The first tests cover the schemas rows
 * and compatibility levels themselves: numbering, shared ids, lookups,
 * concurrent writers, a server restart, and the migration that lets
 * subjects share ids applied to rows stored before it. The last ones drive
 * the registry's handlers and the built-in registry server on that store,
 * and start it again on the same database. Every test starts from empty
 * schemas and schema_config tables.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pg_harness.h"
#include "registry_route_cases.h"
#include "schema/schema.h"
#include "store/store_pg_int.h"
#include "store_registry_cases.h"
#include "util/err.h"

#define SUBJECT "sensor-readings-value"

/* Registrations per thread in the concurrency test. */
#define WRITER_INSERTS 15

static const char v1_json[] =
    "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"t\","
    "\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"value\",\"type\":\"double\"}]}";

/* v1 plus an optional field with a default: BACKWARD compatible. */
static const char v2_json[] =
    "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"t\","
    "\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"value\",\"type\":\"double\"},"
    "{\"name\":\"firmware\",\"type\":[\"null\",\"string\"],"
    "\"default\":null}]}";

/* v1 plus a required field: a v3 reader cannot read v2 data. */
static const char v3_required_json[] =
    "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"t\","
    "\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"value\",\"type\":\"double\"},"
    "{\"name\":\"site\",\"type\":\"string\"}]}";

struct fixture {
    sl_pg_harness_t pg;
    sl_store_t *st;
    PGconn *check; /* a second connection, for assertions in SQL */
};

static struct fixture fx;

static int group_setup(void **state)
{
    char err[512] = "";

    (void)state;
    if (sl_pg_harness_start(&fx.pg, err, sizeof(err)) != 0)
        fail_msg("starting PostgreSQL failed: %s", err);
    fx.st = sl_store_open(fx.pg.url, err, sizeof(err));
    if (fx.st == NULL)
        fail_msg("sl_store_open failed: %s", err);
    if (sl_store_migrate(fx.st, err, sizeof(err)) != SL_OK)
        fail_msg("sl_store_migrate failed: %s", err);
    fx.check = PQconnectdb(fx.pg.url);
    if (PQstatus(fx.check) != CONNECTION_OK)
        fail_msg("check connection failed: %s", PQerrorMessage(fx.check));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    PQfinish(fx.check);
    sl_store_close(fx.st);
    sl_pg_harness_destroy(&fx.pg);
    return 0;
}

/* Runs sql on the check connection. After a server restart the first
 * statement finds the old connection dead, so it reconnects and retries
 * once. */
static PGresult *check_exec(const char *sql)
{
    PGresult *res = PQexec(fx.check, sql);

    if (PQstatus(fx.check) != CONNECTION_OK) {
        PQclear(res);
        PQreset(fx.check);
        res = PQexec(fx.check, sql);
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        fail_msg("%s failed: %s", sql, PQerrorMessage(fx.check));
    }
    return res;
}

static int64_t query_int(const char *sql)
{
    PGresult *res = check_exec(sql);
    int64_t value;

    assert_int_equal(PQntuples(res), 1);
    value = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return value;
}

static int setup(void **state)
{
    (void)state;
    PQclear(check_exec("TRUNCATE schemas, schema_config"));
    return 0;
}

/* Inserts schema under subject and returns its id; *version (may be NULL)
 * receives the version. */
static int32_t insert_ok(sl_store_t *st, const char *subject,
                         const char *schema, int32_t *version)
{
    int32_t id = -1;
    int32_t v = -1;

    assert_int_equal(
        sl_store_schema_insert(st, subject, schema, schema, 1000, &id, &v),
        SL_OK);
    if (version != NULL)
        *version = v;
    return id;
}

/* ---- the schemas rows --------------------------------------------------- */

static void test_ids_global_versions_per_subject(void **state)
{
    sl_store_schema_row_t *rows = NULL;
    size_t n = 0;
    int32_t version = 0;

    (void)state;
    assert_int_equal(insert_ok(fx.st, SUBJECT, v1_json, &version), 1);
    assert_int_equal(version, 1);
    assert_int_equal(insert_ok(fx.st, "zähler-value", v2_json, &version), 2);
    assert_int_equal(version, 1);
    assert_int_equal(insert_ok(fx.st, SUBJECT, v3_required_json, &version), 3);
    assert_int_equal(version, 2);

    /* All subjects: ordered by subject bytes, then version. */
    assert_int_equal(sl_store_schema_list(fx.st, NULL, &rows, &n), SL_OK);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].subject, SUBJECT);
    assert_int_equal(rows[0].version, 1);
    assert_int_equal(rows[0].id, 1);
    assert_string_equal(rows[1].subject, SUBJECT);
    assert_int_equal(rows[1].version, 2);
    assert_int_equal(rows[1].id, 3);
    assert_string_equal(rows[1].schema, v3_required_json);
    assert_int_equal(rows[1].created_at_ms, 1000);
    assert_string_equal(rows[2].subject, "zähler-value");
    sl_store_schema_rows_free(rows, n);

    assert_int_equal(sl_store_schema_list(fx.st, "zähler-value", &rows, &n),
                     SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].id, 2);
    sl_store_schema_rows_free(rows, n);
}

static void test_unknown_subject_lists_nothing(void **state)
{
    sl_store_schema_row_t *rows = NULL;
    size_t n = 7;

    (void)state;
    insert_ok(fx.st, SUBJECT, v1_json, NULL);
    assert_int_equal(sl_store_schema_list(fx.st, "absent-value", &rows, &n),
                     SL_OK);
    assert_int_equal(n, 0);
    assert_null(rows);
}

static void test_get_by_id(void **state)
{
    sl_store_schema_row_t row;
    int32_t id;

    (void)state;
    insert_ok(fx.st, SUBJECT, v1_json, NULL);
    id = insert_ok(fx.st, SUBJECT, v2_json, NULL);
    assert_int_equal(sl_store_schema_get(fx.st, id, &row), SL_OK);
    assert_string_equal(row.subject, SUBJECT);
    assert_string_equal(row.schema, v2_json);
    assert_int_equal(row.version, 2);
    assert_int_equal(row.id, id);
    sl_store_schema_row_fini(&row);
    assert_int_equal(sl_store_schema_get(fx.st, 999, &row), SL_ENOTFOUND);
}

/* Two registry servers that both decided the schema is new store it once. */
static void test_same_text_keeps_row(void **state)
{
    int32_t first_version = 0;
    int32_t again_version = 0;
    int32_t first;
    int32_t again;

    (void)state;
    first = insert_ok(fx.st, SUBJECT, v1_json, &first_version);
    again = insert_ok(fx.st, SUBJECT, v1_json, &again_version);
    assert_int_equal(again, first);
    assert_int_equal(again_version, first_version);
    assert_int_equal(query_int("SELECT count(*) FROM schemas"), 1);

    /* Under another subject the same text is another row with the same
     * id. */
    assert_int_equal(insert_ok(fx.st, "other-value", v1_json, NULL), first);
    assert_int_equal(query_int("SELECT count(*) FROM schemas"), 2);
}

struct writer {
    const char *url;
    int index;
    int failures;
};

/* Registers WRITER_INSERTS distinct schemas through a store of its own. */
static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char err[256] = "";
    char schema[128];
    sl_store_t *st = sl_store_open(w->url, err, sizeof(err));

    if (st == NULL) {
        w->failures = WRITER_INSERTS;
        return NULL;
    }
    for (int i = 0; i < WRITER_INSERTS; i++) {
        int32_t id;
        int32_t version;

        snprintf(schema, sizeof(schema),
                 "{\"type\":\"fixed\",\"name\":\"f\","
                 "\"size\":%d}",
                 w->index * 100 + i + 1);
        if (sl_store_schema_insert(st, SUBJECT, schema, schema, 1, &id,
                                   &version) != SL_OK)
            w->failures++;
    }
    sl_store_close(st);
    return NULL;
}

static void test_concurrent_writers_distinct_ids(void **state)
{
    struct writer writers[3];
    pthread_t threads[3];
    int64_t total = 3 * WRITER_INSERTS;

    (void)state;
    for (int i = 0; i < 3; i++) {
        writers[i] = (struct writer){fx.pg.url, i, 0};
        assert_int_equal(
            pthread_create(&threads[i], NULL, writer_main, &writers[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(writers[i].failures, 0);
    }
    /* Dense, distinct ids and versions: no two writers read one maximum. */
    assert_int_equal(query_int("SELECT count(*) FROM schemas"), total);
    assert_int_equal(query_int("SELECT count(DISTINCT id) FROM schemas"),
                     total);
    assert_int_equal(query_int("SELECT max(id) FROM schemas"), total);
    assert_int_equal(query_int("SELECT max(version) FROM schemas"), total);
}

/* While the server is stopped, calls fail with SL_EIO. Once it is back,
 * the rows are there and numbering continues after them. */
static void test_server_restart_keeps_ids(void **state)
{
    sl_store_schema_row_t row;
    int32_t id = -1;
    int32_t version = -1;
    int rc = SL_EIO;

    (void)state;
    insert_ok(fx.st, SUBJECT, v1_json, NULL);
    assert_int_equal(sl_pg_harness_stop_server(&fx.pg), 0);
    assert_int_equal(sl_store_schema_insert(fx.st, SUBJECT, v2_json, v2_json, 1,
                                            &id, &version),
                     SL_EIO);
    assert_int_equal(sl_store_schema_get(fx.st, 1, &row), SL_EIO);

    assert_int_equal(sl_pg_harness_start_server(&fx.pg), 0);
    /* The reconnect backoff is at most 5 s; retry as a caller would. */
    for (int attempt = 0; attempt < 100 && rc != SL_OK; attempt++) {
        rc = sl_store_schema_get(fx.st, 1, &row);
        if (rc != SL_OK)
            usleep(100 * 1000);
    }
    assert_int_equal(rc, SL_OK);
    assert_string_equal(row.schema, v1_json);
    sl_store_schema_row_fini(&row);
    assert_int_equal(insert_ok(fx.st, SUBJECT, v2_json, &version), 2);
    assert_int_equal(version, 2);
}

/* ---- shared cases: levels and shared ids -------------------------------- */

static void exec_sql(sl_store_t *st, const char *sql)
{
    (void)st;
    PQclear(check_exec(sql));
}

static sl_store_t *reopen(sl_store_t *st)
{
    char err[512] = "";

    sl_store_close(st);
    st = sl_store_open(fx.pg.url, err, sizeof(err));
    if (st == NULL || sl_store_migrate(st, err, sizeof(err)) != SL_OK)
        fail_msg("opening the store again failed: %s", err);
    return st;
}

static const registry_cases_backend_t backend = {exec_sql, reopen};

static void test_levels_set_override_delete(void **state)
{
    (void)state;
    registry_cases_levels(fx.st);
}

static void test_invalid_levels_rejected(void **state)
{
    (void)state;
    registry_cases_invalid_levels(fx.st);
}

static void test_levels_survive_reopen(void **state)
{
    (void)state;
    registry_cases_levels_survive_reopen(&backend, &fx.st);
}

static void test_same_schema_shares_id(void **state)
{
    (void)state;
    registry_cases_shared_id(fx.st);
}

static void test_old_row_shares_id_once_filled(void **state)
{
    (void)state;
    registry_cases_fill_normalized(&backend, fx.st);
}

/* The migrations compiled into the store (embedded_pg.c). */
extern const struct sl_embedded_file sl_pg_migration_files[];

/* A database at the version before the migration, holding one schema under
 * two subjects with two ids (as the old code numbered them), migrates
 * with every row and id kept. It is a database of its own, so the shared
 * one stays migrated. */
static void test_migration_keeps_rows(void **state)
{
    struct sl_embedded_file before[4] = {sl_pg_migration_files[0],
                                         sl_pg_migration_files[1],
                                         sl_pg_migration_files[2],
                                         {NULL, NULL}};
    sl_store_schema_row_t *rows = NULL;
    const char *query = strchr(fx.pg.url, '?');
    char url[320];
    char err[512] = "";
    sl_store_t *st;
    size_t n = 0;

    (void)state;
    assert_string_equal(before[2].name, "003_views.sql");
    assert_non_null(query);
    PQclear(check_exec("DROP DATABASE IF EXISTS legacy"));
    PQclear(check_exec("CREATE DATABASE legacy"));
    snprintf(url, sizeof(url), "postgresql:///legacy%s", query);
    st = sl_store_open(url, err, sizeof(err));
    if (st == NULL)
        fail_msg("sl_store_open(legacy) failed: %s", err);
    assert_int_equal(
        sl_pg__migrate_files((sl_pg_t *)st, before, err, sizeof(err)), SL_OK);
    assert_int_equal(sl_store_schema_version(st), 3);

    /* Rows in the old column set, as the old code wrote them. */
    {
        PGconn *conn = PQconnectdb(url);
        PGresult *res = PQexec(conn, "INSERT INTO schemas VALUES"
                                     " ('a-value', 1, 1, '\"int\"', 10),"
                                     " ('b-value', 1, 2, '\"int\"', 20),"
                                     " ('a-value', 2, 3, '\"long\"', 30)");

        assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
        PQclear(res);
        PQfinish(conn);
    }

    assert_int_equal(sl_store_migrate(st, err, sizeof(err)), SL_OK);
    assert_int_equal(sl_store_schema_version(st), 5);
    assert_int_equal(sl_store_schema_list(st, NULL, &rows, &n), SL_OK);
    assert_int_equal(n, 3);
    assert_int_equal(rows[0].id, 1);
    assert_int_equal(rows[1].id, 3);
    assert_string_equal(rows[1].schema, "\"long\"");
    assert_int_equal(rows[1].created_at_ms, 30);
    assert_null(rows[1].normalized);
    assert_int_equal(rows[2].id, 2);
    sl_store_schema_rows_free(rows, n);
    assert_int_equal(sl_store_schema_config_set(st, NULL, "FULL", 1), SL_OK);
    sl_store_close(st);
}

/* ---- the registry's handlers on PostgreSQL --------------------------------
 */

static void test_routes_levels(void **state)
{
    sl_registry_routes_t routes = {fx.st};

    (void)state;
    route_cases_levels(&routes);
}

/* Two store handles are two connections, as two registry servers have. */
static void test_routes_two_registries_agree(void **state)
{
    char err[512] = "";
    sl_registry_routes_t a = {fx.st};
    sl_registry_routes_t b = {sl_store_open(fx.pg.url, err, sizeof(err))};

    (void)state;
    if (b.st == NULL)
        fail_msg("sl_store_open failed: %s", err);
    route_cases_two_registries_agree(&a, &b);
    sl_store_close(b.st);
}

static void test_routes_shared_id(void **state)
{
    sl_registry_routes_t routes = {fx.st};

    (void)state;
    route_cases_shared_id(&routes);
}

static void test_routes_old_row_shares_id(void **state)
{
    sl_registry_routes_t routes = {fx.st};

    (void)state;
    route_cases_old_row_shares_id(&routes, exec_sql);
}

/* ---- the registry server on PostgreSQL ---------------------------------- */

static sl_registry_server_t *server_start(char *url, size_t url_size)
{
    char err[512] = "";
    sl_registry_server_t *srv =
        sl_registry_server_start(fx.pg.url, "127.0.0.1", 0, err, sizeof(err));

    if (srv == NULL)
        fail_msg("sl_registry_server_start on PostgreSQL failed: %s", err);
    snprintf(url, url_size, "http://127.0.0.1:%d",
             sl_registry_server_port(srv));
    return srv;
}

static sl_registry_client_t *client_create(const char *url)
{
    char err[512] = "";
    sl_registry_client_t *client =
        sl_registry_client_create(url, 5000, err, sizeof(err));

    if (client == NULL)
        fail_msg("sl_registry_client_create failed: %s", err);
    return client;
}

static int32_t register_ok(sl_registry_client_t *client, const char *json)
{
    char err[512] = "";
    int32_t id = -1;
    int rc = sl_registry_client_register(client, SUBJECT, json, &id, err,
                                         sizeof(err));

    if (rc != SL_OK)
        fail_msg("register failed: %s (%s)", sl_strerror(rc), err);
    return id;
}

static void test_registry_server_serves_pg(void **state)
{
    char url[64];
    char err[512] = "";
    sl_registry_server_t *srv = server_start(url, sizeof(url));
    sl_registry_client_t *client = client_create(url);
    int32_t *versions = NULL;
    char *text = NULL;
    size_t n = 0;
    int32_t v1;
    int32_t v2;
    int32_t id = -1;

    (void)state;
    v1 = register_ok(client, v1_json);
    assert_int_equal(register_ok(client, v1_json), v1);
    v2 = register_ok(client, v2_json);
    assert_int_not_equal(v2, v1);
    assert_int_equal(sl_registry_client_register(client, SUBJECT,
                                                 v3_required_json, &id, err,
                                                 sizeof(err)),
                     SL_EREJECTED);
    assert_non_null(strstr(err, "409"));

    assert_int_equal(sl_registry_client_versions(client, SUBJECT, &versions, &n,
                                                 err, sizeof(err)),
                     SL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(versions[0], 1);
    assert_int_equal(versions[1], 2);
    free(versions);
    assert_int_equal(
        sl_registry_client_schema(client, v2, &text, err, sizeof(err)), SL_OK);
    assert_non_null(strstr(text, "firmware"));
    free(text);
    assert_int_equal(query_int("SELECT count(*) FROM schemas"), 2);
    sl_registry_client_destroy(client);
    sl_registry_server_stop(srv);
}

/* A registry server started again on the same database serves the same
 * ids. */
static void test_registry_restart_same_ids(void **state)
{
    char url[64];
    char err[512] = "";
    sl_registry_server_t *srv = server_start(url, sizeof(url));
    sl_registry_client_t *client = client_create(url);
    char *text = NULL;
    int32_t v1;
    int32_t v2;

    (void)state;
    v1 = register_ok(client, v1_json);
    v2 = register_ok(client, v2_json);
    sl_registry_client_destroy(client);
    sl_registry_server_stop(srv);

    srv = server_start(url, sizeof(url));
    client = client_create(url);
    assert_int_equal(
        sl_registry_client_schema(client, v1, &text, err, sizeof(err)), SL_OK);
    assert_null(strstr(text, "firmware"));
    free(text);
    assert_int_equal(register_ok(client, v2_json), v2);
    assert_int_equal(register_ok(client, v1_json), v1);
    assert_int_equal(query_int("SELECT count(*) FROM schemas"), 2);
    sl_registry_client_destroy(client);
    sl_registry_server_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_ids_global_versions_per_subject, setup),
        cmocka_unit_test_setup(test_unknown_subject_lists_nothing, setup),
        cmocka_unit_test_setup(test_get_by_id, setup),
        cmocka_unit_test_setup(test_same_text_keeps_row, setup),
        cmocka_unit_test_setup(test_concurrent_writers_distinct_ids, setup),
        cmocka_unit_test_setup(test_server_restart_keeps_ids, setup),
        cmocka_unit_test_setup(test_levels_set_override_delete, setup),
        cmocka_unit_test_setup(test_invalid_levels_rejected, setup),
        cmocka_unit_test_setup(test_levels_survive_reopen, setup),
        cmocka_unit_test_setup(test_same_schema_shares_id, setup),
        cmocka_unit_test_setup(test_old_row_shares_id_once_filled, setup),
        cmocka_unit_test_setup(test_migration_keeps_rows, setup),
        cmocka_unit_test_setup(test_routes_levels, setup),
        cmocka_unit_test_setup(test_routes_two_registries_agree, setup),
        cmocka_unit_test_setup(test_routes_shared_id, setup),
        cmocka_unit_test_setup(test_routes_old_row_shares_id, setup),
        cmocka_unit_test_setup(test_registry_server_serves_pg, setup),
        cmocka_unit_test_setup(test_registry_restart_same_ids, setup),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
