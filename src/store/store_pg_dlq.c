/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dead-letter rows of the PostgreSQL store beyond the batch upsert:
 * listing and fetching them, scheduling replays, and the state changes of
 * the DLQ handler's retries (claim, unclaim, rearm after a restart). Each
 * state change is one statement, so two writers cannot interleave inside
 * it; the semantics are those of store_sqlite_dlq.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_pg_int.h"
#include "util/err.h"
#include "util/log.h"

/* Fills e from a row of DLQ_COLUMNS (store_pg_sql.c); key and payload stay
 * NULL. */
static void fill_entry(const PGresult *res, int row, sl_dlq_entry_t *e)
{
    const char *cls = PQgetvalue(res, row, 6);
    sl_dlq_status_t status = SL_DLQ_DEAD;

    memset(e, 0, sizeof(*e));
    e->id = sl_pg__get_i64(res, row, 0);
    sl_pg__get_text(res, row, 1, e->topic, sizeof(e->topic));
    e->partition = (int32_t)sl_pg__get_i64(res, row, 2);
    e->offset = sl_pg__get_i64(res, row, 3);
    e->key_len = (size_t)sl_pg__get_i64(res, row, 4);
    e->payload_len = (size_t)sl_pg__get_i64(res, row, 5);
    e->error_class = SL_DLQ_PROCESSING;
    for (int c = 0; c <= SL_DLQ_PROCESSING; c++) {
        if (strcmp(cls, sl_dlq_class_name((sl_dlq_class_t)c)) == 0)
            e->error_class = (sl_dlq_class_t)c;
    }
    sl_pg__get_text(res, row, 7, e->error, sizeof(e->error));
    e->retry_count = (int32_t)sl_pg__get_i64(res, row, 8);
    sl_dlq_status_parse(PQgetvalue(res, row, 9), &status);
    e->status = status;
    e->first_failure_ms = sl_pg__get_i64(res, row, 10);
    e->last_failure_ms = sl_pg__get_i64(res, row, 11);
    e->next_attempt_ms = sl_pg__get_i64(res, row, 12);
    e->created_at_ms = sl_pg__get_i64(res, row, 13);
    e->updated_at_ms = sl_pg__get_i64(res, row, 14);
}

/* Fills e and copies key and payload (columns 15 and 16, bytea in text
 * format) into one allocation, *bytes. */
static int fill_entry_bytes(const PGresult *res, sl_dlq_entry_t *e,
                            void **bytes)
{
    unsigned char *key = NULL, *payload = NULL, *buf;
    size_t key_len = 0, payload_len = 0;
    bool has_key = !PQgetisnull(res, 0, 15);

    fill_entry(res, 0, e);
    if (has_key)
        key = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 15),
                              &key_len);
    if (!PQgetisnull(res, 0, 16))
        payload = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 16),
                                  &payload_len);
    buf = malloc(key_len + payload_len + 1);
    if (buf == NULL || (has_key && key == NULL)) {
        PQfreemem(key);
        PQfreemem(payload);
        free(buf);
        return SL_ENOMEM;
    }
    if (key_len > 0)
        memcpy(buf, key, key_len);
    if (payload_len > 0)
        memcpy(buf + key_len, payload, payload_len);
    PQfreemem(key);
    PQfreemem(payload);
    e->key_len = key_len;
    e->payload_len = payload_len;
    /* A NULL key (none was sent) stays NULL; an empty payload is not. */
    e->key = has_key ? buf : NULL;
    e->payload = buf + key_len;
    *bytes = buf;
    return SL_OK;
}

/* Executes a statement after making sure the connection works. Returns
 * the result when it succeeded, else NULL (logged). */
static PGresult *run(sl_pg_t *pg, enum sl_pg_stmt_id id,
                     const sl_pg_params_t *p, const char *what)
{
    PGresult *res;

    if (sl_pg__ready(pg) != SL_OK)
        return NULL;
    res = sl_pg__exec(pg, id, p);
    if (sl_pg__check(pg, res, what) != SL_PG_OK) {
        PQclear(res);
        return NULL;
    }
    return res;
}

int sl_pg__dlq_list(sl_store_t *st, const sl_dlq_query_t *q,
                    sl_dlq_entry_t *out, size_t max, size_t *n)
{
    size_t limit = q->limit < max ? q->limit : max;
    sl_pg_params_t p = {0};
    PGresult *res;

    if (q->status >= 0)
        sl_pg__param_text(&p, sl_dlq_status_name((sl_dlq_status_t)q->status));
    else
        sl_pg__param_null(&p);
    if (q->topic != NULL)
        sl_pg__param_text(&p, q->topic);
    else
        sl_pg__param_null(&p);
    sl_pg__param_i64(&p, (int64_t)(limit > INT64_MAX ? INT64_MAX : limit));
    res = run((sl_pg_t *)st, SL_PG_DLQ_LIST, &p, "dead-letter list");
    if (res == NULL)
        return SL_EIO;
    for (int r = 0; r < PQntuples(res) && *n < limit; r++)
        fill_entry(res, r, &out[(*n)++]);
    PQclear(res);
    return SL_OK;
}

/* Fetches at most one DLQ_COLUMNS_BYTES row into *out. */
static int fetch_one(sl_pg_t *pg, enum sl_pg_stmt_id id,
                     const sl_pg_params_t *p, const char *what,
                     sl_dlq_entry_t *out, void **bytes)
{
    PGresult *res = run(pg, id, p, what);
    int rc;

    if (res == NULL)
        return SL_EIO;
    rc = PQntuples(res) == 0 ? SL_ENOTFOUND : fill_entry_bytes(res, out, bytes);
    PQclear(res);
    return rc;
}

int sl_pg__dlq_get(sl_store_t *st, int64_t id, sl_dlq_entry_t *out,
                   void **bytes)
{
    sl_pg_params_t p = {0};

    sl_pg__param_i64(&p, id);
    return fetch_one((sl_pg_t *)st, SL_PG_DLQ_GET, &p, "dead-letter fetch", out,
                     bytes);
}

/* Runs a state change. OUT: *changed (may be NULL). */
static int run_change(sl_pg_t *pg, enum sl_pg_stmt_id id,
                      const sl_pg_params_t *p, const char *what,
                      size_t *changed)
{
    PGresult *res = run(pg, id, p, what);

    if (res == NULL)
        return SL_EIO;
    if (changed != NULL)
        *changed = sl_pg__changed(res);
    PQclear(res);
    return SL_OK;
}

int sl_pg__dlq_replay(sl_store_t *st, int64_t id, sl_dlq_status_t status,
                      int64_t now_ms, size_t *changed)
{
    sl_pg_t *pg = (sl_pg_t *)st;
    sl_pg_params_t p = {0};
    size_t n = 0;
    PGresult *res;
    int rc;

    sl_pg__param_i64(&p, now_ms);
    sl_pg__param_i64(&p, id);
    sl_pg__param_text(&p, sl_dlq_status_name(status));
    rc = run_change(pg, SL_PG_DLQ_REPLAY, &p, "dead-letter replay", &n);
    if (changed != NULL)
        *changed = n;
    if (rc != SL_OK || id == 0 || n > 0)
        return rc;

    /* Tell a missing row from one in the wrong state. */
    memset(&p, 0, sizeof(p));
    sl_pg__param_i64(&p, id);
    res = run(pg, SL_PG_DLQ_EXISTS, &p, "replay check");
    if (res == NULL)
        return SL_EIO;
    rc = PQntuples(res) > 0 ? SL_EBUSY : SL_ENOTFOUND;
    PQclear(res);
    return rc;
}

int sl_pg__dlq_scheduled(sl_store_t *st, int64_t *ids, int64_t *due_ms,
                         size_t max, size_t *n)
{
    sl_pg_params_t p = {0};
    PGresult *res;

    sl_pg__param_i64(&p, (int64_t)(max > INT64_MAX ? INT64_MAX : max));
    res = run((sl_pg_t *)st, SL_PG_DLQ_SCHEDULED, &p,
              "dead-letter schedule scan");
    if (res == NULL)
        return SL_EIO;
    for (int r = 0; r < PQntuples(res) && *n < max; r++) {
        ids[*n] = sl_pg__get_i64(res, r, 0);
        due_ms[*n] = sl_pg__get_i64(res, r, 1);
        (*n)++;
    }
    PQclear(res);
    return SL_OK;
}

int sl_pg__dlq_rearm(sl_store_t *st, int64_t now_ms, size_t *changed)
{
    sl_pg_params_t p = {0};

    sl_pg__param_i64(&p, now_ms);
    return run_change((sl_pg_t *)st, SL_PG_DLQ_REARM, &p, "dead-letter rearm",
                      changed);
}

int sl_pg__dlq_claim(sl_store_t *st, int64_t id, int64_t now_ms,
                     sl_dlq_entry_t *out, void **bytes)
{
    sl_pg_params_t p = {0};

    sl_pg__param_i64(&p, id);
    sl_pg__param_i64(&p, now_ms);
    return fetch_one((sl_pg_t *)st, SL_PG_DLQ_CLAIM, &p, "dead-letter claim",
                     out, bytes);
}

int sl_pg__dlq_unclaim(sl_store_t *st, int64_t id, int64_t next_ms)
{
    sl_pg_params_t p = {0};
    size_t n = 0;
    int rc;

    sl_pg__param_i64(&p, id);
    sl_pg__param_i64(&p, next_ms);
    rc = run_change((sl_pg_t *)st, SL_PG_DLQ_UNCLAIM, &p, "dead-letter unclaim",
                    &n);
    if (rc == SL_OK && n == 0)
        return SL_ENOTFOUND;
    return rc;
}

int sl_pg__dlq_status_counts(sl_store_t *st, int64_t counts[4])
{
    PGresult *res;

    memset(counts, 0, 4 * sizeof(counts[0]));
    res =
        run((sl_pg_t *)st, SL_PG_DLQ_STATUS_COUNTS, NULL, "dead-letter count");
    if (res == NULL)
        return SL_EIO;
    for (int r = 0; r < PQntuples(res); r++) {
        sl_dlq_status_t status;

        if (sl_dlq_status_parse(PQgetvalue(res, r, 0), &status) == SL_OK)
            counts[status] = sl_pg__get_i64(res, r, 1);
    }
    PQclear(res);
    return SL_OK;
}
