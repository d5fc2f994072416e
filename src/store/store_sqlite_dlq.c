/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dead-letter rows of the SQLite store beyond the batch upsert: listing and
 * fetching them for operators, scheduling replays, and the state changes of
 * the DLQ handler's retries (claim, unclaim, rearm after a restart).
 *
 * These calls are rare next to batch writes (one per retry or operator
 * command), so each prepares its statement instead of using the cache.
 * Every state change is one statement, so it needs no explicit transaction
 * and two writers (the handler in `sluice run`, an operator's `sluice dlq
 * replay`) cannot interleave inside it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/err.h"
#include "util/log.h"

/* The columns fill_entry() reads, in order. */
#define ENTRY_COLUMNS                                                          \
    "id, source_topic, source_partition, source_offset, key, payload,"         \
    " error_class, error, retry_count, status, first_failure_ms,"              \
    " last_failure_ms, coalesce(next_attempt_ms, 0), created_at_ms,"           \
    " updated_at_ms"

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

/* Fills e from a row of ENTRY_COLUMNS; key and payload stay NULL. */
static void fill_entry(sqlite3_stmt *stmt, sl_dlq_entry_t *e)
{
    const char *cls = (const char *)sqlite3_column_text(stmt, 6);
    const char *status = (const char *)sqlite3_column_text(stmt, 9);
    sl_dlq_status_t st = SL_DLQ_DEAD;

    memset(e, 0, sizeof(*e));
    e->id = sqlite3_column_int64(stmt, 0);
    sl_sqlite__copy_text(e->topic, sizeof(e->topic), stmt, 1);
    e->partition = sqlite3_column_int(stmt, 2);
    e->offset = sqlite3_column_int64(stmt, 3);
    e->key_len = (size_t)sqlite3_column_bytes(stmt, 4);
    e->payload_len = (size_t)sqlite3_column_bytes(stmt, 5);
    e->error_class = SL_DLQ_PROCESSING;
    for (int c = 0; cls != NULL && c <= SL_DLQ_PROCESSING; c++) {
        if (strcmp(cls, sl_dlq_class_name((sl_dlq_class_t)c)) == 0)
            e->error_class = (sl_dlq_class_t)c;
    }
    sl_sqlite__copy_text(e->error, sizeof(e->error), stmt, 7);
    e->retry_count = sqlite3_column_int(stmt, 8);
    if (status != NULL)
        sl_dlq_status_parse(status, &st);
    e->status = st;
    e->first_failure_ms = sqlite3_column_int64(stmt, 10);
    e->last_failure_ms = sqlite3_column_int64(stmt, 11);
    e->next_attempt_ms = sqlite3_column_int64(stmt, 12);
    e->created_at_ms = sqlite3_column_int64(stmt, 13);
    e->updated_at_ms = sqlite3_column_int64(stmt, 14);
}

/* Fills e and copies key and payload into one allocation, *bytes. */
static int fill_entry_bytes(sqlite3_stmt *stmt, sl_dlq_entry_t *e, void **bytes)
{
    unsigned char *buf;

    fill_entry(stmt, e);
    buf = malloc(e->key_len + e->payload_len + 1);
    if (buf == NULL)
        return SL_ENOMEM;
    if (e->key_len > 0)
        memcpy(buf, sqlite3_column_blob(stmt, 4), e->key_len);
    if (e->payload_len > 0)
        memcpy(buf + e->key_len, sqlite3_column_blob(stmt, 5), e->payload_len);
    /* A NULL key (none was sent) stays NULL; an empty payload is not. */
    e->key = sqlite3_column_type(stmt, 4) == SQLITE_NULL ? NULL : buf;
    e->payload = buf + e->key_len;
    *bytes = buf;
    return SL_OK;
}

static int query_failed(sl_sqlite_t *sq, const char *what)
{
    sl_log_error("store", "%s failed path=%s error=\"%s\"", what, sq->path,
                 sqlite3_errmsg(sq->db));
    return SL_EIO;
}

int sl_sqlite__dlq_list(sl_store_t *st, const sl_dlq_query_t *q,
                        sl_dlq_entry_t *out, size_t max, size_t *n)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    size_t limit = q->limit < max ? q->limit : max;
    sqlite3_stmt *stmt = prepare(sq, "SELECT " ENTRY_COLUMNS " FROM dlq_errors"
                                     " WHERE (?1 IS NULL OR status = ?1)"
                                     " AND (?2 IS NULL OR source_topic = ?2)"
                                     " ORDER BY id DESC LIMIT ?3");
    int rc = SQLITE_ROW;

    if (stmt == NULL)
        return SL_EIO;
    if (q->status >= 0)
        sqlite3_bind_text(stmt, 1, sl_dlq_status_name(q->status), -1,
                          SQLITE_STATIC);
    if (q->topic != NULL)
        sqlite3_bind_text(stmt, 2, q->topic, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)limit);
    while (*n < limit && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
        fill_entry(stmt, &out[(*n)++]);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        query_failed(sq, "dead-letter list");
        sqlite3_finalize(stmt);
        *n = 0;
        return SL_EIO;
    }
    sqlite3_finalize(stmt);
    return SL_OK;
}

/* Steps a statement returning at most one ENTRY_COLUMNS row into *out.
 * Returns SL_OK, SL_ENOTFOUND, SL_ENOMEM or SL_EIO. */
static int fetch_one(sl_sqlite_t *sq, sqlite3_stmt *stmt, const char *what,
                     sl_dlq_entry_t *out, void **bytes)
{
    int rc = sqlite3_step(stmt);

    if (rc == SQLITE_ROW) {
        rc = fill_entry_bytes(stmt, out, bytes);
        /* Finishes an UPDATE ... RETURNING, which changes rows only once
         * it is stepped to the end. */
        if (sqlite3_step(stmt) != SQLITE_DONE) {
            free(*bytes);
            *bytes = NULL;
            rc = query_failed(sq, what);
        }
    } else if (rc == SQLITE_DONE) {
        rc = SL_ENOTFOUND;
    } else {
        rc = query_failed(sq, what);
    }
    sqlite3_finalize(stmt);
    return rc;
}

int sl_sqlite__dlq_get(sl_store_t *st, int64_t id, sl_dlq_entry_t *out,
                       void **bytes)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt =
        prepare(sq, "SELECT " ENTRY_COLUMNS " FROM dlq_errors WHERE id = ?1");

    if (stmt == NULL)
        return SL_EIO;
    sqlite3_bind_int64(stmt, 1, id);
    return fetch_one(sq, stmt, "dead-letter fetch", out, bytes);
}

/* Runs a bound statement that returns no rows. OUT: *changed (may be
 * NULL). Returns SL_OK or SL_EIO. */
static int run_change(sl_sqlite_t *sq, sqlite3_stmt *stmt, const char *what,
                      size_t *changed)
{
    int rc = sqlite3_step(stmt);

    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return query_failed(sq, what);
    if (changed != NULL)
        *changed = (size_t)sqlite3_changes(sq->db);
    return SL_OK;
}

/* Tells why replaying row id changed nothing. */
static int replay_refused(sl_sqlite_t *sq, int64_t id)
{
    sqlite3_stmt *stmt = prepare(sq, "SELECT 1 FROM dlq_errors WHERE id = ?1");
    int rc;

    if (stmt == NULL)
        return SL_EIO;
    sqlite3_bind_int64(stmt, 1, id);
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_ROW)
        return SL_EBUSY;
    return rc == SQLITE_DONE ? SL_ENOTFOUND : query_failed(sq, "replay check");
}

int sl_sqlite__dlq_replay(sl_store_t *st, int64_t id, sl_dlq_status_t status,
                          int64_t now_ms, size_t *changed)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt = prepare(sq, "UPDATE dlq_errors SET status = 'pending',"
                                     " next_attempt_ms = ?1, updated_at_ms = ?1"
                                     " WHERE (?2 > 0 AND id = ?2"
                                     " AND status IN ('pending', 'dead'))"
                                     " OR (?2 = 0 AND status = ?3)");
    size_t n = 0;
    int rc;

    if (stmt == NULL)
        return SL_EIO;
    sqlite3_bind_int64(stmt, 1, now_ms);
    sqlite3_bind_int64(stmt, 2, id);
    sqlite3_bind_text(stmt, 3, sl_dlq_status_name(status), -1, SQLITE_STATIC);
    rc = run_change(sq, stmt, "dead-letter replay", &n);
    if (changed != NULL)
        *changed = n;
    if (rc == SL_OK && id > 0 && n == 0)
        return replay_refused(sq, id);
    return rc;
}

int sl_sqlite__dlq_scheduled(sl_store_t *st, int64_t *ids, int64_t *due_ms,
                             size_t max, size_t *n)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt =
        prepare(sq, "SELECT id, next_attempt_ms FROM dlq_errors"
                    " WHERE status = 'pending' AND next_attempt_ms IS NOT NULL"
                    " ORDER BY next_attempt_ms LIMIT ?1");
    int rc = SQLITE_ROW;

    if (stmt == NULL)
        return SL_EIO;
    sqlite3_bind_int64(stmt, 1, (sqlite3_int64)max);
    while (*n < max && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        ids[*n] = sqlite3_column_int64(stmt, 0);
        due_ms[*n] = sqlite3_column_int64(stmt, 1);
        (*n)++;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        *n = 0;
        return query_failed(sq, "dead-letter schedule scan");
    }
    return SL_OK;
}

int sl_sqlite__dlq_rearm(sl_store_t *st, int64_t now_ms, size_t *changed)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt =
        prepare(sq, "UPDATE dlq_errors SET status = 'pending',"
                    " next_attempt_ms = ?1, updated_at_ms = ?1"
                    " WHERE status = 'retrying'"
                    " OR (status = 'pending' AND next_attempt_ms IS NULL)");

    if (stmt == NULL)
        return SL_EIO;
    sqlite3_bind_int64(stmt, 1, now_ms);
    return run_change(sq, stmt, "dead-letter rearm", changed);
}

int sl_sqlite__dlq_claim(sl_store_t *st, int64_t id, int64_t now_ms,
                         sl_dlq_entry_t *out, void **bytes)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt =
        prepare(sq, "UPDATE dlq_errors SET status = 'retrying',"
                    " retry_count = retry_count + 1, next_attempt_ms = NULL,"
                    " updated_at_ms = ?2"
                    " WHERE id = ?1 AND status = 'pending'"
                    " AND next_attempt_ms <= ?2 RETURNING " ENTRY_COLUMNS);

    if (stmt == NULL)
        return SL_EIO;
    sqlite3_bind_int64(stmt, 1, id);
    sqlite3_bind_int64(stmt, 2, now_ms);
    return fetch_one(sq, stmt, "dead-letter claim", out, bytes);
}

int sl_sqlite__dlq_unclaim(sl_store_t *st, int64_t id, int64_t next_ms)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt = prepare(sq, "UPDATE dlq_errors SET status = 'pending',"
                                     " retry_count = max(retry_count - 1, 0),"
                                     " next_attempt_ms = ?2, updated_at_ms = ?2"
                                     " WHERE id = ?1 AND status = 'retrying'");
    size_t n = 0;
    int rc;

    if (stmt == NULL)
        return SL_EIO;
    sqlite3_bind_int64(stmt, 1, id);
    sqlite3_bind_int64(stmt, 2, next_ms);
    rc = run_change(sq, stmt, "dead-letter unclaim", &n);
    if (rc == SL_OK && n == 0)
        return SL_ENOTFOUND;
    return rc;
}

int sl_sqlite__dlq_status_counts(sl_store_t *st, int64_t counts[4])
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt =
        prepare(sq, "SELECT status, count(*) FROM dlq_errors GROUP BY status");
    int rc;

    memset(counts, 0, 4 * sizeof(counts[0]));
    if (stmt == NULL)
        return SL_EIO;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(stmt, 0);
        sl_dlq_status_t status;

        if (name != NULL && sl_dlq_status_parse(name, &status) == SL_OK)
            counts[status] = sqlite3_column_int64(stmt, 1);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? SL_OK : query_failed(sq, "dead-letter count");
}
