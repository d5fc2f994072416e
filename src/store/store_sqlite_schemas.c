/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Schema registry rows of the SQLite store: one row per registered version
 * of a subject in the schemas table, and the compatibility levels in the
 * schema_config table. The registry server decides what a registration
 * means (same schema, new version, compatibility); this file numbers and
 * stores the rows.
 *
 * Registrations are rare (one per producer start-up at most), so each call
 * prepares its statement instead of using the handle's cache.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/err.h"
#include "util/log.h"

#define ROW_COLUMNS "subject, version, id, schema, normalized, created_at_ms"

/* Returns the handle's cached statement for sql, reset, preparing and
 * caching it on first use; NULL (logged) when preparing fails. Registry
 * requests are few but each ran several statements, and parsing them again
 * every time cost more than running them. Hand it back with release(). */
static sqlite3_stmt *prepare(sl_sqlite_t *sq, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    size_t slot = SL_SQLITE_SCHEMA_STMTS;

    for (size_t i = 0; i < SL_SQLITE_SCHEMA_STMTS; i++) {
        if (sq->schema_stmts[i] == NULL) {
            if (slot == SL_SQLITE_SCHEMA_STMTS)
                slot = i;
        } else if (strcmp(sqlite3_sql(sq->schema_stmts[i]), sql) == 0) {
            return sq->schema_stmts[i];
        }
    }
    if (sqlite3_prepare_v3(sq->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                           NULL) != SQLITE_OK) {
        sl_log_error("store", "sqlite3_prepare_v3 failed path=%s error=\"%s\"",
                     sq->path, sqlite3_errmsg(sq->db));
        sqlite3_finalize(stmt);
        return NULL;
    }
    if (slot < SL_SQLITE_SCHEMA_STMTS)
        sq->schema_stmts[slot] = stmt;
    return stmt;
}

/* Resets a statement from prepare() for its next use, or finalizes it
 * when the cache was full. */
static void release(sl_sqlite_t *sq, sqlite3_stmt *stmt)
{
    for (size_t i = 0; i < SL_SQLITE_SCHEMA_STMTS; i++) {
        if (sq->schema_stmts[i] == stmt) {
            sqlite3_reset(stmt);
            sqlite3_clear_bindings(stmt);
            return;
        }
    }
    release(sq, stmt);
}

static int exec(sl_sqlite_t *sq, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(sq->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        sl_log_error("store", "%s failed path=%s error=\"%s\"", sql, sq->path,
                     msg ? msg : "");
        sqlite3_free(msg);
        return SL_EIO;
    }
    return SL_OK;
}

/* Returns the integer of a one-row, one-column query with text1 and text2
 * bound to ?1 and ?2 (each when not NULL), 0 when it returns no row, or -1
 * on failure. */
static int64_t query_int(sl_sqlite_t *sq, const char *sql, const char *text1,
                         const char *text2)
{
    sqlite3_stmt *stmt = prepare(sq, sql);
    int64_t value = -1;
    int step;

    if (stmt == NULL)
        return -1;
    if (text1 != NULL)
        sqlite3_bind_text(stmt, 1, text1, -1, SQLITE_STATIC);
    if (text2 != NULL)
        sqlite3_bind_text(stmt, 2, text2, -1, SQLITE_STATIC);
    step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        value = sqlite3_column_int64(stmt, 0);
    else if (step == SQLITE_DONE)
        value = 0;
    release(sq, stmt);
    return value;
}

static int insert_row(sl_sqlite_t *sq, const char *subject, const char *schema,
                      const char *normalized, int64_t now_ms, int32_t id,
                      int32_t version)
{
    sqlite3_stmt *stmt = prepare(sq, "INSERT INTO schemas (" ROW_COLUMNS
                                     ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    int rc;

    if (stmt == NULL)
        return SL_EIO;
    sqlite3_bind_text(stmt, 1, subject, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 2, version);
    sqlite3_bind_int(stmt, 3, id);
    sqlite3_bind_text(stmt, 4, schema, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, normalized, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 6, now_ms);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        sl_log_error("store", "insert into schemas failed path=%s error=\"%s\"",
                     sq->path, sqlite3_errmsg(sq->db));
    release(sq, stmt);
    return rc == SQLITE_DONE ? SL_OK : SL_EIO;
}

/* Finds the version of subject that has this normalized text, or this
 * schema text when it has no normalized text yet. OUT: *id, *version.
 * Returns SL_OK, SL_ENOTFOUND or SL_EIO. */
static int find_same(sl_sqlite_t *sq, const char *subject, const char *schema,
                     const char *normalized, int32_t *id, int32_t *version)
{
    sqlite3_stmt *stmt = prepare(
        sq, "SELECT id, version FROM schemas WHERE subject = ?1"
            " AND (normalized = ?2 OR (normalized IS NULL AND schema = ?3))"
            " ORDER BY version LIMIT 1");
    int step;

    if (stmt == NULL)
        return SL_EIO;
    sqlite3_bind_text(stmt, 1, subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, normalized, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, schema, -1, SQLITE_STATIC);
    step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        *id = sqlite3_column_int(stmt, 0);
        *version = sqlite3_column_int(stmt, 1);
    }
    release(sq, stmt);
    if (step == SQLITE_ROW)
        return SL_OK;
    return step == SQLITE_DONE ? SL_ENOTFOUND : SL_EIO;
}

/* Numbers and inserts a new row in the open transaction. OUT: *id,
 * *version. */
static int insert_new(sl_sqlite_t *sq, const char *subject, const char *schema,
                      const char *normalized, int64_t now_ms, int32_t *id,
                      int32_t *version)
{
    /* Any subject's row with this normalized text lends its id. */
    int64_t next_id = query_int(
        sq,
        "SELECT coalesce((SELECT min(id) FROM schemas WHERE normalized = ?1),"
        " (SELECT coalesce(max(id), 0) + 1 FROM schemas))",
        normalized, NULL);
    int64_t next_version =
        query_int(sq,
                  "SELECT coalesce(max(version), 0) + 1 FROM schemas"
                  " WHERE subject = ?1",
                  subject, NULL);
    int rc;

    if (next_id <= 0 || next_version <= 0 || next_id > INT32_MAX ||
        next_version > INT32_MAX)
        return SL_EIO;
    rc = insert_row(sq, subject, schema, normalized, now_ms, (int32_t)next_id,
                    (int32_t)next_version);
    if (rc == SL_OK) {
        *id = (int32_t)next_id;
        *version = (int32_t)next_version;
    }
    return rc;
}

static int sqlite_schema_insert(sl_store_t *st, const char *subject,
                                const char *schema, const char *normalized,
                                int64_t now_ms, int32_t *id, int32_t *version)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    int32_t got_id = 0;
    int32_t got_version = 0;
    int rc;

    /* IMMEDIATE takes the write lock first, so two registering processes
     * cannot both read the same maximum and collide on the UNIQUE key. */
    if (exec(sq, "BEGIN IMMEDIATE") != SL_OK)
        return SL_EIO;
    rc = find_same(sq, subject, schema, normalized, &got_id, &got_version);
    if (rc == SL_ENOTFOUND)
        rc = insert_new(sq, subject, schema, normalized, now_ms, &got_id,
                        &got_version);
    if (rc == SL_OK)
        rc = exec(sq, "COMMIT");
    if (rc != SL_OK) {
        exec(sq, "ROLLBACK");
        return rc;
    }
    *id = got_id;
    *version = got_version;
    return SL_OK;
}

static int sqlite_schema_set_normalized(sl_store_t *st, const char *subject,
                                        int32_t version, const char *normalized)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt = prepare(
        sq, "UPDATE schemas SET normalized = ?3"
            " WHERE subject = ?1 AND version = ?2 AND normalized IS NULL");
    int step;

    if (stmt == NULL)
        return SL_EIO;
    sqlite3_bind_text(stmt, 1, subject, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 2, version);
    sqlite3_bind_text(stmt, 3, normalized, -1, SQLITE_STATIC);
    step = sqlite3_step(stmt);
    if (step != SQLITE_DONE)
        sl_log_error("store", "update of schemas failed path=%s error=\"%s\"",
                     sq->path, sqlite3_errmsg(sq->db));
    release(sq, stmt);
    return step == SQLITE_DONE ? SL_OK : SL_EIO;
}

static char *column_dup(sqlite3_stmt *stmt, int col)
{
    const unsigned char *text = sqlite3_column_text(stmt, col);

    return strdup(text != NULL ? (const char *)text : "");
}

/* Copies a column that may be NULL. OUT: *out (NULL for NULL). Returns
 * SL_OK or SL_ENOMEM. */
static int column_dup_nullable(sqlite3_stmt *stmt, int col, char **out)
{
    const unsigned char *text = sqlite3_column_text(stmt, col);

    *out = text != NULL ? strdup((const char *)text) : NULL;
    return text == NULL || *out != NULL ? SL_OK : SL_ENOMEM;
}

/* Copies the current row of a ROW_COLUMNS query. */
static int fill_row(sqlite3_stmt *stmt, sl_store_schema_row_t *row)
{
    row->subject = column_dup(stmt, 0);
    row->version = sqlite3_column_int(stmt, 1);
    row->id = sqlite3_column_int(stmt, 2);
    row->schema = column_dup(stmt, 3);
    row->created_at_ms = sqlite3_column_int64(stmt, 5);
    if (column_dup_nullable(stmt, 4, &row->normalized) != SL_OK ||
        row->subject == NULL || row->schema == NULL) {
        sl_store_schema_row_fini(row);
        return SL_ENOMEM;
    }
    return SL_OK;
}

static int sqlite_schema_list(sl_store_t *st, const char *subject,
                              sl_store_schema_row_t **rows, size_t *n)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt = prepare(
        sq, "SELECT " ROW_COLUMNS " FROM schemas"
            " WHERE ?1 IS NULL OR subject = ?1 ORDER BY subject, version");
    sl_store_schema_row_t *out = NULL;
    size_t count = 0;
    int rc = SL_OK;
    int step;

    if (stmt == NULL)
        return SL_EIO;
    if (subject != NULL)
        sqlite3_bind_text(stmt, 1, subject, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        sl_store_schema_row_t *grown = realloc(out, (count + 1) * sizeof(*out));

        if (grown == NULL) {
            rc = SL_ENOMEM;
            break;
        }
        out = grown;
        memset(&out[count], 0, sizeof(out[count]));
        rc = fill_row(stmt, &out[count]);
        if (rc != SL_OK)
            break;
        count++;
    }
    if (rc == SL_OK && step != SQLITE_DONE) {
        sl_log_error("store", "select from schemas failed path=%s error=\"%s\"",
                     sq->path, sqlite3_errmsg(sq->db));
        rc = SL_EIO;
    }
    release(sq, stmt);
    if (rc != SL_OK) {
        sl_store_schema_rows_free(out, count);
        return rc;
    }
    *rows = out;
    *n = count;
    return SL_OK;
}

static int sqlite_schema_get(sl_store_t *st, int32_t id,
                             sl_store_schema_row_t *row)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt =
        prepare(sq, "SELECT " ROW_COLUMNS " FROM schemas WHERE id = ?1"
                    " ORDER BY subject, version LIMIT 1");
    int rc;
    int step;

    if (stmt == NULL)
        return SL_EIO;
    memset(row, 0, sizeof(*row));
    sqlite3_bind_int(stmt, 1, id);
    step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        rc = fill_row(stmt, row);
    } else if (step == SQLITE_DONE) {
        rc = SL_ENOTFOUND;
    } else {
        sl_log_error("store", "select from schemas failed path=%s error=\"%s\"",
                     sq->path, sqlite3_errmsg(sq->db));
        rc = SL_EIO;
    }
    release(sq, stmt);
    return rc;
}

/* ---- compatibility levels ----------------------------------------------- */

static const char *config_key(const char *subject)
{
    return subject != NULL ? subject : SL_STORE_GLOBAL_SUBJECT;
}

/* Runs a statement with the config key bound to ?1 that returns at most
 * one level. OUT: level. Returns SL_OK, SL_ENOTFOUND or SL_EIO. */
static int level_statement(sl_sqlite_t *sq, const char *sql,
                           const char *subject,
                           char level[SL_STORE_LEVEL_MAX + 1])
{
    sqlite3_stmt *stmt = prepare(sq, sql);
    int rc = SL_ENOTFOUND;
    int step;

    if (stmt == NULL)
        return SL_EIO;
    sqlite3_bind_text(stmt, 1, config_key(subject), -1, SQLITE_STATIC);
    step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        const unsigned char *text = sqlite3_column_text(stmt, 0);

        snprintf(level, SL_STORE_LEVEL_MAX + 1, "%s",
                 text != NULL ? (const char *)text : "");
        rc = SL_OK;
        /* A RETURNING statement is complete only once stepped to DONE. */
        step = sqlite3_step(stmt);
    }
    if (step != SQLITE_DONE) {
        sl_log_error("store", "%s failed path=%s error=\"%s\"", sql, sq->path,
                     sqlite3_errmsg(sq->db));
        rc = SL_EIO;
    }
    release(sq, stmt);
    return rc;
}

static int sqlite_config_get(sl_store_t *st, const char *subject,
                             char level[SL_STORE_LEVEL_MAX + 1])
{
    return level_statement((sl_sqlite_t *)st,
                           "SELECT level FROM schema_config WHERE subject = ?1",
                           subject, level);
}

static int sqlite_config_set(sl_store_t *st, const char *subject,
                             const char *level, int64_t now_ms)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt = prepare(
        sq,
        "INSERT INTO schema_config (subject, level, updated_at_ms)"
        " VALUES (?1, ?2, ?3) ON CONFLICT (subject) DO UPDATE"
        " SET level = excluded.level, updated_at_ms = excluded.updated_at_ms");
    int step;

    if (stmt == NULL)
        return SL_EIO;
    sqlite3_bind_text(stmt, 1, config_key(subject), -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, level, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, now_ms);
    step = sqlite3_step(stmt);
    if (step != SQLITE_DONE)
        sl_log_error("store",
                     "upsert into schema_config failed path=%s error=\"%s\"",
                     sq->path, sqlite3_errmsg(sq->db));
    release(sq, stmt);
    return step == SQLITE_DONE ? SL_OK : SL_EIO;
}

static int sqlite_config_delete(sl_store_t *st, const char *subject,
                                char old_level[SL_STORE_LEVEL_MAX + 1])
{
    return level_statement(
        (sl_sqlite_t *)st,
        "DELETE FROM schema_config WHERE subject = ?1 RETURNING level", subject,
        old_level);
}

const struct sl_store_registry_ops sl_sqlite__registry_ops = {
    .schema_insert = sqlite_schema_insert,
    .schema_set_normalized = sqlite_schema_set_normalized,
    .schema_list = sqlite_schema_list,
    .schema_get = sqlite_schema_get,
    .config_get = sqlite_config_get,
    .config_set = sqlite_config_set,
    .config_delete = sqlite_config_delete,
};
