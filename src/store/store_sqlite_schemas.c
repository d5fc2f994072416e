/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Schema registry rows of the SQLite store: one row per registered version
 * of a subject in the schemas table. The registry server decides what a
 * registration means (same schema, new version, compatibility); this file
 * only numbers and stores the rows.
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

#define ROW_COLUMNS "subject, version, id, schema, created_at_ms"

static sqlite3_stmt *prepare(sl_sqlite_t *sq, const char *sql)
{
    sqlite3_stmt *stmt = NULL;

    if (sqlite3_prepare_v2(sq->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        sl_log_error("store", "sqlite3_prepare_v2 failed path=%s error=\"%s\"",
                     sq->path, sqlite3_errmsg(sq->db));
        sqlite3_finalize(stmt);
        return NULL;
    }
    return stmt;
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

/* Returns the integer of a one-row, one-column query with the subject bound
 * to ?1 (when not NULL), or -1 on failure. */
static int64_t query_int(sl_sqlite_t *sq, const char *sql, const char *subject)
{
    sqlite3_stmt *stmt = prepare(sq, sql);
    int64_t value = -1;

    if (stmt == NULL)
        return -1;
    if (subject != NULL)
        sqlite3_bind_text(stmt, 1, subject, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

static int insert_row(sl_sqlite_t *sq, const char *subject, const char *schema,
                      int64_t now_ms, int32_t id, int32_t version)
{
    sqlite3_stmt *stmt = prepare(sq, "INSERT INTO schemas (" ROW_COLUMNS
                                     ") VALUES (?1, ?2, ?3, ?4, ?5)");
    int rc;

    if (stmt == NULL)
        return SL_EIO;
    sqlite3_bind_text(stmt, 1, subject, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 2, version);
    sqlite3_bind_int(stmt, 3, id);
    sqlite3_bind_text(stmt, 4, schema, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, now_ms);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        sl_log_error("store", "insert into schemas failed path=%s error=\"%s\"",
                     sq->path, sqlite3_errmsg(sq->db));
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? SL_OK : SL_EIO;
}

int sl_sqlite__schema_insert(sl_store_t *st, const char *subject,
                             const char *schema, int64_t now_ms, int32_t *id,
                             int32_t *version)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    int64_t next_id;
    int64_t next_version;
    int rc;

    /* IMMEDIATE takes the write lock first, so two registering processes
     * cannot both read the same maximum and collide on the UNIQUE id. */
    if (exec(sq, "BEGIN IMMEDIATE") != SL_OK)
        return SL_EIO;
    next_id =
        query_int(sq, "SELECT coalesce(max(id), 0) + 1 FROM schemas", NULL);
    next_version = query_int(sq,
                             "SELECT coalesce(max(version), 0) + 1 FROM schemas"
                             " WHERE subject = ?1",
                             subject);
    if (next_id <= 0 || next_version <= 0 || next_id > INT32_MAX ||
        next_version > INT32_MAX) {
        exec(sq, "ROLLBACK");
        return SL_EIO;
    }

    rc = insert_row(sq, subject, schema, now_ms, (int32_t)next_id,
                    (int32_t)next_version);
    if (rc == SL_OK)
        rc = exec(sq, "COMMIT");
    if (rc != SL_OK) {
        exec(sq, "ROLLBACK");
        return rc;
    }
    *id = (int32_t)next_id;
    *version = (int32_t)next_version;
    return SL_OK;
}

static char *column_dup(sqlite3_stmt *stmt, int col)
{
    const unsigned char *text = sqlite3_column_text(stmt, col);

    return strdup(text != NULL ? (const char *)text : "");
}

/* Copies the current row of a ROW_COLUMNS query. */
static int fill_row(sqlite3_stmt *stmt, sl_store_schema_row_t *row)
{
    row->subject = column_dup(stmt, 0);
    row->version = sqlite3_column_int(stmt, 1);
    row->id = sqlite3_column_int(stmt, 2);
    row->schema = column_dup(stmt, 3);
    row->created_at_ms = sqlite3_column_int64(stmt, 4);
    if (row->subject == NULL || row->schema == NULL) {
        sl_store_schema_row_fini(row);
        return SL_ENOMEM;
    }
    return SL_OK;
}

int sl_sqlite__schema_list(sl_store_t *st, const char *subject,
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
    sqlite3_finalize(stmt);
    if (rc != SL_OK) {
        sl_store_schema_rows_free(out, count);
        return rc;
    }
    *rows = out;
    *n = count;
    return SL_OK;
}

int sl_sqlite__schema_get(sl_store_t *st, int32_t id,
                          sl_store_schema_row_t *row)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt =
        prepare(sq, "SELECT " ROW_COLUMNS " FROM schemas WHERE id = ?1");
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
    sqlite3_finalize(stmt);
    return rc;
}
