/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Schema registry rows and compatibility levels of the PostgreSQL store,
 * with the semantics of store_sqlite_schemas.c. The schemas table has one
 * row per registered version of a subject. Ids are numbered from 1 and
 * shared by the subjects of one schema, and versions are numbered from 1
 * within a subject. The schema_config table has one row per level. The
 * registry server decides what a registration means; this file numbers
 * and stores.
 *
 * Several registry servers may share one database, so the insert takes a
 * table lock that admits readers but no second writer: two registrations
 * cannot read the same maximum id. Registrations are rare, so the
 * statements are sent unprepared instead of joining sl_pg__stmt_sql.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_pg_int.h"
#include "util/err.h"
#include "util/log.h"

#define ROW_COLUMNS "subject, version, id, schema, normalized, created_at_ms"

/* A version of the subject with this normalized text (or, before it has
 * one, this schema text) returns its row. Two registry servers can both
 * decide that a schema is new, and the second one must not add it as
 * another version. A new row takes the id of any subject's row with this
 * normalized text, else the next free one. */
static const char *const insert_sql =
    "WITH same AS ("
    " SELECT id, version FROM schemas WHERE subject = $1"
    " AND (normalized = $3 OR (normalized IS NULL AND schema = $2))"
    " ORDER BY version LIMIT 1),"
    " added AS ("
    " INSERT INTO schemas (" ROW_COLUMNS ")"
    " SELECT $1,"
    " (SELECT coalesce(max(version), 0) + 1 FROM schemas WHERE subject = $1),"
    " coalesce((SELECT min(id) FROM schemas WHERE normalized = $3),"
    " (SELECT coalesce(max(id), 0) + 1 FROM schemas)), $2, $3, $4"
    " WHERE NOT EXISTS (SELECT 1 FROM same)"
    " RETURNING id, version)"
    " SELECT id, version FROM added UNION ALL SELECT id, version FROM same";

static const char *const set_normalized_sql =
    "UPDATE schemas SET normalized = $3"
    " WHERE subject = $1 AND version = $2 AND normalized IS NULL";

/* COLLATE "C" orders subjects by bytes, as SQLite's BINARY collation does,
 * whatever the database's locale. */
static const char *const list_sql = "SELECT " ROW_COLUMNS " FROM schemas"
                                    " WHERE $1::text IS NULL OR subject = $1"
                                    " ORDER BY subject COLLATE \"C\", version";

static const char *const get_sql =
    "SELECT " ROW_COLUMNS " FROM schemas WHERE id = $1"
    " ORDER BY subject COLLATE \"C\", version LIMIT 1";

static PGresult *exec_params(sl_pg_t *pg, const char *sql,
                             const sl_pg_params_t *p)
{
    return PQexecParams(pg->conn, sql, p->n, NULL, p->values, p->lengths,
                        p->formats, 0);
}

/* Runs the insert in the current transaction. OUT: *id, *version. */
static int insert_row(sl_pg_t *pg, const char *subject, const char *schema,
                      const char *normalized, int64_t now_ms, int32_t *id,
                      int32_t *version)
{
    sl_pg_params_t p = {0};
    PGresult *res;
    int64_t got_id;
    int64_t got_version;
    int rc = SL_EIO;

    sl_pg__param_text(&p, subject);
    sl_pg__param_text(&p, schema);
    sl_pg__param_text(&p, normalized);
    sl_pg__param_i64(&p, now_ms);
    res = exec_params(pg, insert_sql, &p);
    if (sl_pg__check(pg, res, "insert into schemas") == SL_PG_OK &&
        PQntuples(res) == 1) {
        got_id = sl_pg__get_i64(res, 0, 0);
        got_version = sl_pg__get_i64(res, 0, 1);
        if (got_id > 0 && got_id <= INT32_MAX && got_version > 0 &&
            got_version <= INT32_MAX) {
            *id = (int32_t)got_id;
            *version = (int32_t)got_version;
            rc = SL_OK;
        }
    }
    PQclear(res);
    return rc;
}

static int pg_schema_insert(sl_store_t *st, const char *subject,
                            const char *schema, const char *normalized,
                            int64_t now_ms, int32_t *id, int32_t *version)
{
    sl_pg_t *pg = (sl_pg_t *)st;
    int rc;

    if (sl_pg__ready(pg) != SL_OK)
        return SL_EIO;
    if (sl_pg__command(pg, "BEGIN") != SL_OK)
        return SL_EIO;
    /* EXCLUSIVE conflicts with itself and with every write, but not with
     * the ACCESS SHARE of a SELECT: lookups go on during a registration. */
    rc = sl_pg__command(pg, "LOCK TABLE schemas IN EXCLUSIVE MODE");
    if (rc == SL_OK)
        rc = insert_row(pg, subject, schema, normalized, now_ms, id, version);
    if (rc == SL_OK)
        rc = sl_pg__command(pg, "COMMIT");
    if (rc != SL_OK)
        sl_pg__rollback(pg);
    return rc;
}

/* Copies row i of a ROW_COLUMNS result. */
static int fill_row(const PGresult *res, int i, sl_store_schema_row_t *row)
{
    memset(row, 0, sizeof(*row));
    row->subject = strdup(PQgetvalue(res, i, 0));
    row->version = (int32_t)sl_pg__get_i64(res, i, 1);
    row->id = (int32_t)sl_pg__get_i64(res, i, 2);
    row->schema = strdup(PQgetvalue(res, i, 3));
    if (!PQgetisnull(res, i, 4))
        row->normalized = strdup(PQgetvalue(res, i, 4));
    row->created_at_ms = sl_pg__get_i64(res, i, 5);
    if (row->subject == NULL || row->schema == NULL ||
        (!PQgetisnull(res, i, 4) && row->normalized == NULL)) {
        sl_store_schema_row_fini(row);
        return SL_ENOMEM;
    }
    return SL_OK;
}

static int pg_schema_list(sl_store_t *st, const char *subject,
                          sl_store_schema_row_t **rows, size_t *n)
{
    sl_pg_t *pg = (sl_pg_t *)st;
    sl_pg_params_t p = {0};
    sl_store_schema_row_t *out = NULL;
    size_t count = 0;
    PGresult *res;
    int rc = SL_OK;

    if (sl_pg__ready(pg) != SL_OK)
        return SL_EIO;
    if (subject != NULL)
        sl_pg__param_text(&p, subject);
    else
        sl_pg__param_null(&p);
    res = exec_params(pg, list_sql, &p);
    if (sl_pg__check(pg, res, "select from schemas") != SL_PG_OK) {
        PQclear(res);
        return SL_EIO;
    }
    int row_count = PQntuples(res);

    if (row_count > 0) {
        out = calloc((size_t)row_count, sizeof(*out));
        if (out == NULL)
            rc = SL_ENOMEM;
    }
    for (int i = 0; out != NULL && rc == SL_OK && i < row_count; i++) {
        rc = fill_row(res, i, &out[i]);
        if (rc == SL_OK)
            count++;
    }
    PQclear(res);
    if (rc != SL_OK) {
        sl_store_schema_rows_free(out, count);
        return rc;
    }
    *rows = out;
    *n = count;
    return SL_OK;
}

static int pg_schema_get(sl_store_t *st, int32_t id, sl_store_schema_row_t *row)
{
    sl_pg_t *pg = (sl_pg_t *)st;
    sl_pg_params_t p = {0};
    PGresult *res;
    int rc;

    memset(row, 0, sizeof(*row));
    if (sl_pg__ready(pg) != SL_OK)
        return SL_EIO;
    sl_pg__param_i64(&p, id);
    res = exec_params(pg, get_sql, &p);
    if (sl_pg__check(pg, res, "select from schemas") != SL_PG_OK)
        rc = SL_EIO;
    else if (PQntuples(res) == 0)
        rc = SL_ENOTFOUND;
    else
        rc = fill_row(res, 0, row);
    PQclear(res);
    return rc;
}

static int pg_schema_set_normalized(sl_store_t *st, const char *subject,
                                    int32_t version, const char *normalized)
{
    sl_pg_t *pg = (sl_pg_t *)st;
    sl_pg_params_t p = {0};
    PGresult *res;
    int rc;

    if (sl_pg__ready(pg) != SL_OK)
        return SL_EIO;
    sl_pg__param_text(&p, subject);
    sl_pg__param_i64(&p, version);
    sl_pg__param_text(&p, normalized);
    res = exec_params(pg, set_normalized_sql, &p);
    rc =
        sl_pg__check(pg, res, "update of schemas") == SL_PG_OK ? SL_OK : SL_EIO;
    PQclear(res);
    return rc;
}

/* ---- compatibility levels ----------------------------------------------- */

/* Runs a statement with the config key as $1 (and level, now_ms as $2, $3
 * when level is not NULL) that returns at most one level. OUT: out (may
 * be NULL). Returns SL_OK, SL_ENOTFOUND when no row came back, or SL_EIO. */
static int level_statement(sl_pg_t *pg, const char *sql, const char *what,
                           const char *subject, const char *level,
                           int64_t now_ms, char out[SL_STORE_LEVEL_MAX + 1])
{
    sl_pg_params_t p = {0};
    PGresult *res;
    int rc;

    if (sl_pg__ready(pg) != SL_OK)
        return SL_EIO;
    sl_pg__param_text(&p, subject != NULL ? subject : SL_STORE_GLOBAL_SUBJECT);
    if (level != NULL) {
        sl_pg__param_text(&p, level);
        sl_pg__param_i64(&p, now_ms);
    }
    res = exec_params(pg, sql, &p);
    if (sl_pg__check(pg, res, what) != SL_PG_OK) {
        rc = SL_EIO;
    } else if (PQntuples(res) == 0) {
        rc = SL_ENOTFOUND;
    } else {
        if (out != NULL)
            snprintf(out, SL_STORE_LEVEL_MAX + 1, "%s", PQgetvalue(res, 0, 0));
        rc = SL_OK;
    }
    PQclear(res);
    return rc;
}

static int pg_config_get(sl_store_t *st, const char *subject,
                         char level[SL_STORE_LEVEL_MAX + 1])
{
    return level_statement(
        (sl_pg_t *)st, "SELECT level FROM schema_config WHERE subject = $1",
        "select from schema_config", subject, NULL, 0, level);
}

static int pg_config_set(sl_store_t *st, const char *subject, const char *level,
                         int64_t now_ms)
{
    return level_statement(
        (sl_pg_t *)st,
        "INSERT INTO schema_config (subject, level, updated_at_ms)"
        " VALUES ($1, $2, $3) ON CONFLICT (subject) DO UPDATE"
        " SET level = excluded.level, updated_at_ms = excluded.updated_at_ms"
        " RETURNING level",
        "upsert into schema_config", subject, level, now_ms, NULL);
}

static int pg_config_delete(sl_store_t *st, const char *subject,
                            char old_level[SL_STORE_LEVEL_MAX + 1])
{
    return level_statement(
        (sl_pg_t *)st,
        "DELETE FROM schema_config WHERE subject = $1 RETURNING level",
        "delete from schema_config", subject, NULL, 0, old_level);
}

const struct sl_store_registry_ops sl_pg__registry_ops = {
    .schema_insert = pg_schema_insert,
    .schema_set_normalized = pg_schema_set_normalized,
    .schema_list = pg_schema_list,
    .schema_get = pg_schema_get,
    .config_get = pg_config_get,
    .config_set = pg_config_set,
    .config_delete = pg_config_delete,
};
