/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Batch writes of the PostgreSQL store: everything one processing step
 * produced goes in with one BEGIN ... COMMIT.
 *
 * Readings first try the direct path: a binary COPY straight into
 * sensor_readings, which succeeds when no key of the batch is stored yet.
 * Otherwise, and always for events, they take the staged path: a binary
 * COPY into a TEMP staging table, then one INSERT ... SELECT ... ON
 * CONFLICT into the real table, so a replayed batch adds nothing.
 *
 * When that fails because of a row's data (SQLSTATE class 22 or 23), the
 * bulk step is rolled back to its savepoint. Readings are then written in
 * halves, and a half that fails is split again down to single rows. Events
 * go in one by one. A single row runs inside its own savepoint, and when
 * the database rejects it, it is reported through the reject callback
 * while its neighbours are kept. Aggregates, recomputed windows,
 * dead-letter rows and resolutions run one statement per row: all under
 * one savepoint first, and row by row with savepoints only after a row
 * error. Any other failure (connection lost, server error) rolls the whole
 * batch back and returns SL_EIO, so the caller retries it whole.
 *
 * Each sensor's sensor_latest row is upserted from the newest stored
 * reading of the batch, unless the batch sets latest_deferred. Then its
 * readings leave sensor_latest alone, and the rows it hands over in
 * latest go in through the staging table, falling back row by row.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_pg_int.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Outcome of one row, beside SL_EIO. */
enum row_outcome {
    ROW_INSERTED = 1,
    ROW_DUPLICATE = 2,
    ROW_REJECTED = 3,
};

/* State of one sl_pg__write call. */
struct batch_writer {
    sl_pg_t *pg;
    const sl_store_batch_t *batch;
    int64_t now_ms;
    sl_store_reject_cb reject;
    void *reject_ctx;
    unsigned char *reading_outcome; /* enum row_outcome per reading */
    unsigned char *event_outcome;   /* enum row_outcome per event */
    bool staged; /* rows were copied into sl_stage_readings */
};

/* ---------------------------------------------------------------------- */
/* Binary COPY rows                                                        */
/* ---------------------------------------------------------------------- */

/* A growing buffer of COPY BINARY data. */
struct copy_buf {
    unsigned char *data;
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed */
};

static void put_bytes(struct copy_buf *b, const void *src, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap > 0 ? b->cap * 2 : 65536;
        unsigned char *data;

        while (cap < b->len + n)
            cap *= 2;
        data = realloc(b->data, cap);
        if (data == NULL) {
            b->failed = true;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

/* Every integer in COPY BINARY is big-endian. */
static void put_u16(struct copy_buf *b, uint16_t v)
{
    uint16_t be = htons(v);

    put_bytes(b, &be, sizeof(be));
}

static void put_u32(struct copy_buf *b, uint32_t v)
{
    uint32_t be = htonl(v);

    put_bytes(b, &be, sizeof(be));
}

static void put_u64(struct copy_buf *b, uint64_t v)
{
    put_u32(b, (uint32_t)(v >> 32));
    put_u32(b, (uint32_t)v);
}

/* Each field is its length (-1 for NULL) followed by its bytes. */
static void field_null(struct copy_buf *b)
{
    put_u32(b, UINT32_MAX);
}

static void field_i32(struct copy_buf *b, int32_t v)
{
    put_u32(b, 4);
    put_u32(b, (uint32_t)v);
}

static void field_i64(struct copy_buf *b, int64_t v)
{
    put_u32(b, 8);
    put_u64(b, (uint64_t)v);
}

static void field_f64(struct copy_buf *b, double v)
{
    put_u32(b, 8);
    put_u64(b, (uint64_t)sl_pg__value_bits(v));
}

static void field_bool(struct copy_buf *b, bool v)
{
    unsigned char byte = v ? 1 : 0;

    put_u32(b, 1);
    put_bytes(b, &byte, 1);
}

static void field_text(struct copy_buf *b, const char *s)
{
    size_t n = strlen(s);

    put_u32(b, (uint32_t)n);
    put_bytes(b, s, n);
}

/* The 11-byte signature, flags and header extension length. */
static void copy_header(struct copy_buf *b)
{
    static const unsigned char signature[11] = {
        'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};

    put_bytes(b, signature, sizeof(signature));
    put_u32(b, 0);
    put_u32(b, 0);
}

/* The ten reading columns of sl_pg__param_reading, in its order. */
static void add_reading_fields(struct copy_buf *b, const sl_reading_t *rec)
{
    field_i64(b, rec->timestamp_ms);
    field_text(b, rec->sensor_id);
    field_text(b, sl_sensor_type_name(rec->sensor_type));
    field_f64(b, rec->value);
    field_text(b, rec->location);
    field_bool(b, rec->anomaly);
    field_i32(b, rec->battery_level);
    field_i32(b, rec->signal_strength);
    if (rec->has_unit)
        field_text(b, rec->unit);
    else
        field_null(b);
    if (rec->has_score)
        field_f64(b, rec->anomaly_score);
    else
        field_null(b);
}

/* A row of sl_stage_readings: batch position, the reading, value_bits. */
static void add_reading_row(struct copy_buf *b, int32_t idx,
                            const sl_reading_t *rec)
{
    put_u16(b, 12);
    field_i32(b, idx);
    add_reading_fields(b, rec);
    field_i64(b, sl_pg__value_bits(rec->value));
}

/* The columns of add_stored_row, in its order. */
#define COPY_STORED_COLUMNS                                                    \
    "timestamp_ms, sensor_id, sensor_type, value, location, anomaly,"          \
    " battery_level, signal_strength, unit, anomaly_score, ingested_at_ms,"    \
    " value_bits"

/* A row of sensor_readings itself, in the order of COPY_STORED_COLUMNS. */
static void add_stored_row(struct copy_buf *b, const sl_reading_t *rec,
                           int64_t now_ms)
{
    put_u16(b, 12);
    add_reading_fields(b, rec);
    field_i64(b, now_ms);
    field_i64(b, sl_pg__value_bits(rec->value));
}

static void opt_text(struct copy_buf *b, bool present, const char *s)
{
    if (present)
        field_text(b, s);
    else
        field_null(b);
}

static void add_event_row(struct copy_buf *b, int32_t idx, const sl_event_t *ev)
{
    const uint32_t has = ev->present;

    put_u16(b, 21);
    field_i32(b, idx);
    field_i64(b, ev->timestamp_ms);
    field_text(b, ev->event_id);
    field_text(b, sl_event_type_name(ev->event_type));
    field_text(b, ev->user_id);
    field_text(b, ev->session_id);
    field_text(b, sl_device_name(ev->device));
    field_text(b, ev->ip_address);
    if (has & SL_EV_PRODUCT_ID)
        field_i64(b, ev->product_id);
    else
        field_null(b);
    opt_text(b, has & SL_EV_PRODUCT_NAME, ev->product_name);
    opt_text(b, has & SL_EV_CATEGORY, ev->category);
    if (has & SL_EV_QUANTITY)
        field_i32(b, ev->quantity);
    else
        field_null(b);
    if (has & SL_EV_PRICE)
        field_f64(b, ev->price);
    else
        field_null(b);
    if (has & SL_EV_TOTAL)
        field_f64(b, ev->total);
    else
        field_null(b);
    opt_text(b, has & SL_EV_CURRENCY, ev->currency);
    opt_text(b, has & SL_EV_PAGE, ev->page);
    if (has & SL_EV_DURATION)
        field_f64(b, ev->duration_seconds);
    else
        field_null(b);
    opt_text(b, has & SL_EV_PAYMENT_METHOD, ev->payment_method);
    opt_text(b, has & SL_EV_SHIPPING_ADDRESS, ev->shipping_address);
    opt_text(b, has & SL_EV_QUERY, ev->query);
    if (has & SL_EV_RESULTS_COUNT)
        field_i32(b, ev->results_count);
    else
        field_null(b);
}

/* Sends b (header, rows, trailer) with COPY sql. Returns an sl_pg_outcome;
 * a row error means a value the staging column refused (invalid UTF-8). */
static enum sl_pg_outcome send_copy(sl_pg_t *pg, const char *sql,
                                    struct copy_buf *b, const char *kind)
{
    enum sl_pg_outcome outcome = SL_PG_OK;
    PGresult *res = PQexec(pg->conn, sql);

    if (PQresultStatus(res) != PGRES_COPY_IN) {
        outcome = sl_pg__check(pg, res, kind);
        PQclear(res);
        return outcome == SL_PG_OK ? SL_PG_FAILED : outcome;
    }
    PQclear(res);

    put_u16(b, UINT16_MAX); /* trailer: a field count of -1 */
    if (PQputCopyData(pg->conn, (const char *)b->data, (int)b->len) != 1 ||
        PQputCopyEnd(pg->conn, NULL) != 1) {
        sl_log_error("store", "COPY failed database=%s kind=%s error=\"%s\"",
                     pg->label, kind, PQerrorMessage(pg->conn));
        outcome = SL_PG_FAILED;
    }
    while ((res = PQgetResult(pg->conn)) != NULL) {
        enum sl_pg_outcome o = sl_pg__check(pg, res, kind);

        if (o > outcome)
            outcome = o;
        PQclear(res);
    }
    return outcome;
}

/* ---------------------------------------------------------------------- */
/* Row-by-row fallback                                                     */
/* ---------------------------------------------------------------------- */

/* Runs statement id for one row inside its own savepoint. Returns
 * ROW_INSERTED (a row changed), ROW_DUPLICATE (none changed), ROW_REJECTED
 * after reporting it, or SL_EIO. */
static int run_row(struct batch_writer *w, enum sl_pg_stmt_id id,
                   const sl_pg_params_t *p, const char *kind, size_t index)
{
    sl_pg_t *pg = w->pg;
    PGresult *res;
    enum sl_pg_outcome outcome;
    char message[256];
    size_t changed;

    if (sl_pg__command(pg, "SAVEPOINT sl_row") != SL_OK)
        return SL_EIO;
    res = sl_pg__exec(pg, id, p);
    outcome = sl_pg__check(pg, res, kind);
    changed = outcome == SL_PG_OK ? sl_pg__changed(res) : 0;
    sl_pg__error_text(res, message, sizeof(message));
    PQclear(res);

    if (outcome == SL_PG_FAILED)
        return SL_EIO;
    if (outcome == SL_PG_ROW_ERROR) {
        if (sl_pg__command(pg, "ROLLBACK TO SAVEPOINT sl_row") != SL_OK)
            return SL_EIO;
        if (w->reject != NULL)
            w->reject(w->reject_ctx, kind, index, message);
        return ROW_REJECTED;
    }
    if (sl_pg__command(pg, "RELEASE SAVEPOINT sl_row") != SL_OK)
        return SL_EIO;
    return changed > 0 ? ROW_INSERTED : ROW_DUPLICATE;
}

/* Builds the parameters of row index of a statement family. */
typedef void (*row_params_fn)(struct batch_writer *w, size_t index,
                              sl_pg_params_t *p);

/*
 * Runs statement id once per row, first all under one savepoint with no
 * per-row overhead and, when a row's data fails, again row by row with a
 * savepoint each. OUT: outcomes[0..count) (may be NULL). Returns SL_OK or
 * SL_EIO.
 */
static int run_rows(struct batch_writer *w, enum sl_pg_stmt_id id,
                    row_params_fn fill, size_t count, const char *kind,
                    unsigned char *outcomes)
{
    sl_pg_t *pg = w->pg;
    bool row_error = false;

    if (count == 0)
        return SL_OK;
    if (sl_pg__command(pg, "SAVEPOINT sl_bulk") != SL_OK)
        return SL_EIO;
    for (size_t i = 0; i < count && !row_error; i++) {
        sl_pg_params_t p = {0};
        PGresult *res;
        enum sl_pg_outcome o;

        fill(w, i, &p);
        res = sl_pg__exec(pg, id, &p);
        o = sl_pg__check(pg, res, kind);
        if (o == SL_PG_OK && outcomes != NULL)
            outcomes[i] =
                sl_pg__changed(res) > 0 ? ROW_INSERTED : ROW_DUPLICATE;
        PQclear(res);
        if (o == SL_PG_FAILED)
            return SL_EIO;
        row_error = o == SL_PG_ROW_ERROR;
    }
    if (!row_error)
        return sl_pg__command(pg, "RELEASE SAVEPOINT sl_bulk");

    if (sl_pg__command(pg, "ROLLBACK TO SAVEPOINT sl_bulk") != SL_OK)
        return SL_EIO;
    for (size_t i = 0; i < count; i++) {
        sl_pg_params_t p = {0};
        int rc;

        fill(w, i, &p);
        rc = run_row(w, id, &p, kind, i);
        if (rc == SL_EIO)
            return SL_EIO;
        if (outcomes != NULL)
            outcomes[i] = (unsigned char)rc;
    }
    return SL_OK;
}

/* ---------------------------------------------------------------------- */
/* Readings                                                                */
/* ---------------------------------------------------------------------- */

/* The parameters of SL_PG_INSERT_READING and SL_PG_UPSERT_LATEST. */
static void stored_reading_params(const struct batch_writer *w,
                                  const sl_reading_t *rec, sl_pg_params_t *p)
{
    sl_pg__param_reading(p, rec);
    sl_pg__param_i64(p, w->now_ms);
    sl_pg__param_i64(p, sl_pg__value_bits(rec->value));
}

static void reading_params(struct batch_writer *w, size_t index,
                           sl_pg_params_t *p)
{
    stored_reading_params(w, &w->batch->readings[index], p);
}

/* Orders reading pointers by sensor_id, then newest event time first,
 * then batch position, so that of two readings at one instant the first
 * in the batch wins, as in the staged upsert. */
static int compare_sensor_newest(const void *a, const void *b)
{
    const sl_reading_t *ra = *(const sl_reading_t *const *)a;
    const sl_reading_t *rb = *(const sl_reading_t *const *)b;
    int cmp = strcmp(ra->sensor_id, rb->sensor_id);

    if (cmp != 0)
        return cmp;
    if (ra->timestamp_ms != rb->timestamp_ms)
        return ra->timestamp_ms > rb->timestamp_ms ? -1 : 1;
    return ra < rb ? -1 : ra > rb;
}

/*
 * Picks the newest reading of each sensor among the batch's readings that
 * were not rejected. Returns a malloc'ed array of pointers into the batch
 * (caller frees), one per sensor, with the count in *count; NULL when out
 * of memory.
 */
static const sl_reading_t **newest_per_sensor(const struct batch_writer *w,
                                              size_t *count)
{
    const sl_store_batch_t *batch = w->batch;
    const sl_reading_t **stored;
    size_t n = 0, kept = 0;

    stored = malloc((batch->reading_count + 1) * sizeof(*stored));
    if (stored == NULL)
        return NULL;
    for (size_t i = 0; i < batch->reading_count; i++) {
        if (w->reading_outcome[i] != ROW_REJECTED)
            stored[n++] = &batch->readings[i];
    }
    qsort(stored, n, sizeof(*stored), compare_sensor_newest);
    for (size_t i = 0; i < n; i++) {
        if (kept > 0 &&
            strcmp(stored[i]->sensor_id, stored[kept - 1]->sensor_id) == 0)
            continue;
        stored[kept++] = stored[i];
    }
    *count = kept;
    return stored;
}

/* Upserts sensor_latest row by row, one statement per sensor with its
 * newest stored reading: the fallback of the staged upsert. */
static int write_latest_rows(struct batch_writer *w)
{
    const sl_store_batch_t *batch = w->batch;
    const sl_reading_t **newest;
    size_t count = 0;
    int rc = SL_OK;

    newest = newest_per_sensor(w, &count);
    if (newest == NULL)
        return SL_EIO;
    for (size_t i = 0; i < count && rc == SL_OK; i++) {
        size_t index = (size_t)(newest[i] - batch->readings);
        sl_pg_params_t p = {0};

        reading_params(w, index, &p);
        if (run_row(w, SL_PG_UPSERT_LATEST, &p, "latest", index) == SL_EIO)
            rc = SL_EIO;
    }
    free(newest);
    return rc;
}

/* Marks the readings [lo, hi) that the staged insert returned (by batch
 * position) as inserted; the others were already stored. */
static void mark_staged(struct batch_writer *w, const PGresult *res, size_t lo,
                        size_t hi)
{
    for (size_t i = lo; i < hi; i++)
        w->reading_outcome[i] = ROW_DUPLICATE;
    for (int r = 0; r < PQntuples(res); r++) {
        int64_t idx = sl_pg__get_i64(res, r, 0);

        if (idx >= (int64_t)lo && idx < (int64_t)hi)
            w->reading_outcome[idx] = ROW_INSERTED;
    }
}

/* Copies readings[lo, hi) into sl_stage_readings. */
static enum sl_pg_outcome stage_readings(struct batch_writer *w, size_t lo,
                                         size_t hi)
{
    struct copy_buf b = {0};
    enum sl_pg_outcome o;

    w->staged = true;
    copy_header(&b);
    for (size_t i = lo; i < hi; i++)
        add_reading_row(&b, (int32_t)i, &w->batch->readings[i]);
    if (b.failed) {
        free(b.data);
        sl_log_error("store", "out of memory readings=%zu", hi - lo);
        return SL_PG_FAILED;
    }
    o = send_copy(w->pg, "COPY sl_stage_readings FROM STDIN (FORMAT binary)",
                  &b, "reading");
    free(b.data);
    return o;
}

/* Stages readings[lo, hi) and inserts them with the staged insert, which
 * absorbs keys already stored, and records each row's outcome. */
static enum sl_pg_outcome insert_staged(struct batch_writer *w, size_t lo,
                                        size_t hi)
{
    sl_pg_params_t p = {0};
    enum sl_pg_outcome o;
    PGresult *res;

    o = stage_readings(w, lo, hi);
    if (o != SL_PG_OK)
        return o;
    sl_pg__param_i64(&p, w->now_ms);
    res = sl_pg__exec(w->pg, SL_PG_INSERT_READINGS_STAGED, &p);
    o = sl_pg__check(w->pg, res, "reading");
    if (o == SL_PG_OK)
        mark_staged(w, res, lo, hi);
    PQclear(res);
    return o;
}

/* Runs the staged latest upsert over the rows of sl_stage_readings whose
 * idx is not in skipped, an array literal such as "{}". With lookup set,
 * the flag and score come from the stored rows (see the statement). */
static enum sl_pg_outcome upsert_latest_staged(struct batch_writer *w,
                                               const char *skipped, bool lookup)
{
    sl_pg_params_t p = {0};
    enum sl_pg_outcome o;
    PGresult *res;

    sl_pg__param_i64(&p, w->now_ms);
    sl_pg__param_text(&p, skipped);
    sl_pg__param_bool(&p, lookup);
    res = sl_pg__exec(w->pg, SL_PG_UPSERT_LATEST_STAGED, &p);
    o = sl_pg__check(w->pg, res, "latest");
    PQclear(res);
    return o;
}

/* Stages the newest stored reading of each sensor, picked here, and
 * upserts them into sensor_latest; the staging table must be empty. */
static enum sl_pg_outcome upsert_newest(struct batch_writer *w, bool lookup)
{
    const sl_store_batch_t *batch = w->batch;
    const sl_reading_t **newest;
    struct copy_buf b = {0};
    enum sl_pg_outcome o;
    size_t count = 0;

    newest = newest_per_sensor(w, &count);
    if (newest == NULL)
        return SL_PG_FAILED;
    copy_header(&b);
    for (size_t i = 0; i < count; i++)
        add_reading_row(&b, (int32_t)(newest[i] - batch->readings), newest[i]);
    free(newest);
    if (b.failed) {
        free(b.data);
        return SL_PG_FAILED;
    }
    w->staged = true;
    o = send_copy(w->pg, "COPY sl_stage_readings FROM STDIN (FORMAT binary)",
                  &b, "latest");
    free(b.data);
    /* No row is rejected on the bulk paths: nothing is skipped. */
    return o == SL_PG_OK ? upsert_latest_staged(w, "{}", lookup) : o;
}

/*
 * The direct path of the readings, taken by nearly every batch: one binary
 * COPY straight into sensor_readings, then the newest reading of each
 * sensor upserted into sensor_latest. A key already stored, a key twice in
 * the batch or a bad value fails the COPY with a row error. The caller
 * then rolls back to sl_bulk and takes the staged path. A replayed batch
 * thus also pays for the failed COPY, which stops at the first buffer of
 * rows the server flushes that holds a stored key (up to 1,000 rows or
 * 64 KiB in PostgreSQL 15).
 */
static enum sl_pg_outcome write_readings_direct(struct batch_writer *w)
{
    const sl_store_batch_t *batch = w->batch;
    struct copy_buf b = {0};
    enum sl_pg_outcome o;

    copy_header(&b);
    for (size_t i = 0; i < batch->reading_count; i++)
        add_stored_row(&b, &batch->readings[i], w->now_ms);
    if (b.failed) {
        free(b.data);
        sl_log_error("store", "out of memory readings=%zu",
                     batch->reading_count);
        return SL_PG_FAILED;
    }
    o = send_copy(w->pg,
                  "COPY sensor_readings (" COPY_STORED_COLUMNS
                  ") FROM STDIN (FORMAT binary)",
                  &b, "reading copy");
    free(b.data);
    if (o != SL_PG_OK)
        return o;
    for (size_t i = 0; i < batch->reading_count; i++)
        w->reading_outcome[i] = ROW_INSERTED;
    if (batch->latest_deferred)
        return SL_PG_OK;
    /* Every row was inserted by this COPY, so the staged values are the
     * stored ones. */
    return upsert_newest(w, false);
}

/*
 * The staged path of the readings: COPY into sl_stage_readings, the staged
 * insert, which absorbs keys already stored, and the staged latest upsert
 * unless the batch defers it. Returns an sl_pg_outcome. On a row error the
 * caller rolls back to sl_bulk.
 */
static enum sl_pg_outcome write_readings_staged(struct batch_writer *w)
{
    enum sl_pg_outcome o = insert_staged(w, 0, w->batch->reading_count);

    if (o != SL_PG_OK || w->batch->latest_deferred)
        return o;
    return upsert_latest_staged(w, "{}", true);
}

/*
 * Writes readings[lo, hi) of a batch that failed with a row error: the
 * staged insert of the whole range inside savepoint sl_part, and when a
 * row of it fails, each half again, down to single rows, which go in with
 * run_row and are reported when rejected. A few bad rows among n cost
 * about 2 log2(n) statements each instead of three round trips for every
 * row. Returns SL_OK or SL_EIO.
 */
static int write_range(struct batch_writer *w, size_t lo, size_t hi)
{
    size_t mid = lo + (hi - lo) / 2;
    enum sl_pg_outcome o;
    int rc;

    if (hi - lo == 1) {
        sl_pg_params_t p = {0};

        reading_params(w, lo, &p);
        rc = run_row(w, SL_PG_INSERT_READING, &p, "reading", lo);
        if (rc == SL_EIO)
            return SL_EIO;
        w->reading_outcome[lo] = (unsigned char)rc;
        return SL_OK;
    }
    if (sl_pg__command(w->pg, "SAVEPOINT sl_part") != SL_OK)
        return SL_EIO;
    o = insert_staged(w, lo, hi);
    if (o == SL_PG_FAILED)
        return SL_EIO;
    if (o == SL_PG_OK) {
        /* Empties the staging table so the next range's staged insert
         * does not process these rows again. */
        if (sl_pg__command(w->pg, "DELETE FROM sl_stage_readings") != SL_OK ||
            sl_pg__command(w->pg, "RELEASE SAVEPOINT sl_part") != SL_OK)
            return SL_EIO;
        return SL_OK;
    }
    if (sl_pg__command(w->pg, "ROLLBACK TO SAVEPOINT sl_part") != SL_OK ||
        sl_pg__command(w->pg, "RELEASE SAVEPOINT sl_part") != SL_OK)
        return SL_EIO;
    rc = write_range(w, lo, mid);
    return rc == SL_OK ? write_range(w, mid, hi) : rc;
}

/* Writes a batch whose bulk write failed with a row error, halves first
 * (write_range), then, unless the batch defers it, sensor_latest from the
 * rows that were stored. */
static int write_readings_split(struct batch_writer *w)
{
    size_t n = w->batch->reading_count;
    enum sl_pg_outcome o;
    int rc;

    rc = n == 1 ? write_range(w, 0, 1) : write_range(w, 0, n / 2);
    if (rc == SL_OK && n > 1)
        rc = write_range(w, n / 2, n);
    if (rc != SL_OK || w->batch->latest_deferred)
        return rc;

    if (sl_pg__command(w->pg, "SAVEPOINT sl_part") != SL_OK)
        return SL_EIO;
    o = upsert_newest(w, true);
    if (o == SL_PG_FAILED)
        return SL_EIO;
    if (o == SL_PG_OK)
        return sl_pg__command(w->pg, "RELEASE SAVEPOINT sl_part");
    if (sl_pg__command(w->pg, "ROLLBACK TO SAVEPOINT sl_part") != SL_OK ||
        sl_pg__command(w->pg, "RELEASE SAVEPOINT sl_part") != SL_OK)
        return SL_EIO;
    return write_latest_rows(w);
}

static int write_readings(struct batch_writer *w, sl_store_result_t *result)
{
    const sl_store_batch_t *batch = w->batch;
    enum sl_pg_outcome o;

    if (batch->reading_count == 0)
        return SL_OK;
    if (sl_pg__command(w->pg, "SAVEPOINT sl_bulk") != SL_OK)
        return SL_EIO;
    o = write_readings_direct(w);
    if (o == SL_PG_ROW_ERROR) {
        if (sl_pg__command(w->pg, "ROLLBACK TO SAVEPOINT sl_bulk") != SL_OK)
            return SL_EIO;
        o = write_readings_staged(w);
    }
    if (o == SL_PG_FAILED)
        return SL_EIO;
    if (o == SL_PG_OK) {
        if (sl_pg__command(w->pg, "RELEASE SAVEPOINT sl_bulk") != SL_OK)
            return SL_EIO;
    } else {
        if (sl_pg__command(w->pg, "ROLLBACK TO SAVEPOINT sl_bulk") != SL_OK ||
            write_readings_split(w) != SL_OK ||
            sl_pg__command(w->pg, "RELEASE SAVEPOINT sl_bulk") != SL_OK)
            return SL_EIO;
    }

    for (size_t i = 0; i < batch->reading_count; i++) {
        if (w->reading_outcome[i] == ROW_INSERTED)
            result->readings_inserted++;
        else if (w->reading_outcome[i] == ROW_DUPLICATE)
            result->readings_duplicate++;
        if (batch->reading_duplicate != NULL)
            batch->reading_duplicate[i] =
                w->reading_outcome[i] == ROW_DUPLICATE;
    }
    return SL_OK;
}

/* ---------------------------------------------------------------------- */
/* Deferred latest rows                                                    */
/* ---------------------------------------------------------------------- */

/* Whether rec has the key of one of the count readings in rejected. */
static bool key_in(const sl_reading_t *rec, const sl_reading_t *const *rejected,
                   size_t count)
{
    int64_t bits = sl_pg__value_bits(rec->value);

    for (size_t i = 0; i < count; i++) {
        if (rejected[i]->timestamp_ms == rec->timestamp_ms &&
            sl_pg__value_bits(rejected[i]->value) == bits &&
            strcmp(rejected[i]->sensor_id, rec->sensor_id) == 0)
            return true;
    }
    return false;
}

/*
 * Marks in skip the latest rows that have the key of a reading this batch
 * failed to store: the database rejected that reading, so it must not
 * become its sensor's latest row. Returns the positions of those rows as
 * an integer array literal (malloc'ed, caller frees), or NULL when out of
 * memory.
 */
static char *skip_rejected_latest(const struct batch_writer *w,
                                  unsigned char *skip)
{
    const sl_store_batch_t *batch = w->batch;
    const sl_reading_t **rejected;
    /* Positions are below INT32_MAX: up to 10 digits and a comma each. */
    size_t count = 0, len = 0, cap = batch->latest_count * 11 + 3;
    char *list;

    rejected = malloc((batch->reading_count + 1) * sizeof(*rejected));
    list = malloc(cap);
    if (rejected == NULL || list == NULL) {
        free(rejected);
        free(list);
        return NULL;
    }
    for (size_t i = 0; i < batch->reading_count; i++) {
        if (w->reading_outcome[i] == ROW_REJECTED)
            rejected[count++] = &batch->readings[i];
    }
    list[len++] = '{';
    for (size_t i = 0; count > 0 && i < batch->latest_count; i++) {
        if (!key_in(&batch->latest[i], rejected, count))
            continue;
        skip[i] = 1;
        len += (size_t)snprintf(list + len, cap - len, "%s%zu",
                                len > 1 ? "," : "", i);
    }
    list[len++] = '}';
    list[len] = '\0';
    free(rejected);
    return list;
}

/* Copies batch->latest into sl_stage_readings, idx being the position in
 * latest, and runs the staged upsert over them except skipped, with the
 * flag and score looked up in the stored rows. */
static enum sl_pg_outcome upsert_given_latest(struct batch_writer *w,
                                              const char *skipped)
{
    const sl_store_batch_t *batch = w->batch;
    struct copy_buf b = {0};
    enum sl_pg_outcome o;

    copy_header(&b);
    for (size_t i = 0; i < batch->latest_count; i++)
        add_reading_row(&b, (int32_t)i, &batch->latest[i]);
    if (b.failed) {
        free(b.data);
        sl_log_error("store", "out of memory latest=%zu", batch->latest_count);
        return SL_PG_FAILED;
    }
    o = send_copy(w->pg, "COPY sl_stage_readings FROM STDIN (FORMAT binary)",
                  &b, "latest");
    free(b.data);
    return o == SL_PG_OK ? upsert_latest_staged(w, skipped, true) : o;
}

/* Upserts each latest row not in skip with its own statement and
 * savepoint: the fallback of upsert_given_latest.
 * XXX: one bad row costs three round trips for every latest row (about
 * 3,000 for 1,000 sensors) because, unlike write_range, this does not
 * split the rows in halves. Rejects should be rare: sensor_latest has no
 * CHECK, and a stored reading's text was already accepted once. */
static int write_given_latest_rows(struct batch_writer *w,
                                   const unsigned char *skip)
{
    for (size_t i = 0; i < w->batch->latest_count; i++) {
        sl_pg_params_t p = {0};

        if (skip[i])
            continue;
        stored_reading_params(w, &w->batch->latest[i], &p);
        if (run_row(w, SL_PG_UPSERT_LATEST, &p, "latest", i) == SL_EIO)
            return SL_EIO;
    }
    return SL_OK;
}

/*
 * Upserts the latest rows that a batch with latest_deferred hands over.
 * They go in after the batch's readings, so the lookup of flag and score
 * finds the readings this batch stored. The staged paths leave those
 * readings in sl_stage_readings until the commit, so it is emptied first.
 * A row the database rejects is reported (kind "latest", index into
 * latest) while the others are kept. Returns SL_OK or SL_EIO.
 */
static int write_deferred_latest(struct batch_writer *w)
{
    const sl_store_batch_t *batch = w->batch;
    unsigned char *skip;
    char *skipped = NULL;
    enum sl_pg_outcome o;
    int rc = SL_EIO;

    if (!batch->latest_deferred || batch->latest_count == 0)
        return SL_OK;
    skip = calloc(batch->latest_count, 1);
    if (skip != NULL)
        skipped = skip_rejected_latest(w, skip);
    if (skipped == NULL) {
        sl_log_error("store", "out of memory latest=%zu", batch->latest_count);
        goto out;
    }
    if (w->staged &&
        sl_pg__command(w->pg, "DELETE FROM sl_stage_readings") != SL_OK)
        goto out;
    if (sl_pg__command(w->pg, "SAVEPOINT sl_part") != SL_OK)
        goto out;
    o = upsert_given_latest(w, skipped);
    if (o == SL_PG_OK)
        rc = sl_pg__command(w->pg, "RELEASE SAVEPOINT sl_part");
    else if (o == SL_PG_ROW_ERROR &&
             sl_pg__command(w->pg, "ROLLBACK TO SAVEPOINT sl_part") == SL_OK &&
             sl_pg__command(w->pg, "RELEASE SAVEPOINT sl_part") == SL_OK)
        rc = write_given_latest_rows(w, skip);

out:
    free(skip);
    free(skipped);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Events                                                                  */
/* ---------------------------------------------------------------------- */

static void opt_param_text(sl_pg_params_t *p, bool present, const char *s)
{
    if (present)
        sl_pg__param_text(p, s);
    else
        sl_pg__param_null(p);
}

static void opt_param_i64(sl_pg_params_t *p, bool present, int64_t v)
{
    if (present)
        sl_pg__param_i64(p, v);
    else
        sl_pg__param_null(p);
}

static void opt_param_f64(sl_pg_params_t *p, bool present, double v)
{
    if (present)
        sl_pg__param_f64(p, v);
    else
        sl_pg__param_null(p);
}

static void event_params(struct batch_writer *w, size_t index,
                         sl_pg_params_t *p)
{
    const sl_event_t *ev = &w->batch->events[index];
    const uint32_t has = ev->present;

    sl_pg__param_i64(p, ev->timestamp_ms);
    sl_pg__param_text(p, ev->event_id);
    sl_pg__param_text(p, sl_event_type_name(ev->event_type));
    sl_pg__param_text(p, ev->user_id);
    sl_pg__param_text(p, ev->session_id);
    sl_pg__param_text(p, sl_device_name(ev->device));
    sl_pg__param_text(p, ev->ip_address);
    opt_param_i64(p, has & SL_EV_PRODUCT_ID, ev->product_id);
    opt_param_text(p, has & SL_EV_PRODUCT_NAME, ev->product_name);
    opt_param_text(p, has & SL_EV_CATEGORY, ev->category);
    opt_param_i64(p, has & SL_EV_QUANTITY, ev->quantity);
    opt_param_f64(p, has & SL_EV_PRICE, ev->price);
    opt_param_f64(p, has & SL_EV_TOTAL, ev->total);
    opt_param_text(p, has & SL_EV_CURRENCY, ev->currency);
    opt_param_text(p, has & SL_EV_PAGE, ev->page);
    opt_param_f64(p, has & SL_EV_DURATION, ev->duration_seconds);
    opt_param_text(p, has & SL_EV_PAYMENT_METHOD, ev->payment_method);
    opt_param_text(p, has & SL_EV_SHIPPING_ADDRESS, ev->shipping_address);
    opt_param_text(p, has & SL_EV_QUERY, ev->query);
    opt_param_i64(p, has & SL_EV_RESULTS_COUNT, ev->results_count);
    sl_pg__param_i64(p, w->now_ms);
}

/* The bulk path of the events. OUT: *inserted. */
static enum sl_pg_outcome write_events_bulk(struct batch_writer *w,
                                            size_t *inserted)
{
    const sl_store_batch_t *batch = w->batch;
    struct copy_buf b = {0};
    sl_pg_params_t p = {0};
    enum sl_pg_outcome o;
    PGresult *res;

    copy_header(&b);
    for (size_t i = 0; i < batch->event_count; i++)
        add_event_row(&b, (int32_t)i, &batch->events[i]);
    if (b.failed) {
        free(b.data);
        return SL_PG_FAILED;
    }
    o = send_copy(w->pg, "COPY sl_stage_events FROM STDIN (FORMAT binary)", &b,
                  "event");
    free(b.data);
    if (o != SL_PG_OK)
        return o;
    sl_pg__param_i64(&p, w->now_ms);
    res = sl_pg__exec(w->pg, SL_PG_INSERT_EVENTS_STAGED, &p);
    o = sl_pg__check(w->pg, res, "event");
    if (o == SL_PG_OK)
        *inserted = sl_pg__changed(res);
    PQclear(res);
    return o;
}

static int write_events(struct batch_writer *w, sl_store_result_t *result)
{
    const sl_store_batch_t *batch = w->batch;
    size_t inserted = 0;
    enum sl_pg_outcome o;

    if (batch->event_count == 0)
        return SL_OK;
    if (sl_pg__command(w->pg, "SAVEPOINT sl_bulk") != SL_OK)
        return SL_EIO;
    o = write_events_bulk(w, &inserted);
    if (o == SL_PG_FAILED)
        return SL_EIO;
    if (o == SL_PG_OK) {
        result->events_inserted += inserted;
        result->events_duplicate += batch->event_count - inserted;
        return sl_pg__command(w->pg, "RELEASE SAVEPOINT sl_bulk");
    }

    /* XXX: events still fall back row by row, three round trips a row,
     * where readings split the batch in halves (write_range); about 1 s
     * for one bad event among 10,000, if the readings' figure holds. */
    if (sl_pg__command(w->pg, "ROLLBACK TO SAVEPOINT sl_bulk") != SL_OK)
        return SL_EIO;
    for (size_t i = 0; i < batch->event_count; i++) {
        sl_pg_params_t p = {0};
        int rc;

        event_params(w, i, &p);
        rc = run_row(w, SL_PG_INSERT_EVENT, &p, "event", i);
        if (rc == SL_EIO)
            return SL_EIO;
        w->event_outcome[i] = (unsigned char)rc;
        if (rc == ROW_INSERTED)
            result->events_inserted++;
        else if (rc == ROW_DUPLICATE)
            result->events_duplicate++;
    }
    return SL_OK;
}

/* ---------------------------------------------------------------------- */
/* Aggregates, windows, dead letters, resolutions                          */
/* ---------------------------------------------------------------------- */

static void aggregate_params(struct batch_writer *w, size_t index,
                             sl_pg_params_t *p)
{
    const sl_aggregate_t *agg = &w->batch->aggregates[index];

    sl_pg__param_text(p, agg->sensor_id);
    sl_pg__param_i64(p, agg->window_start_ms);
    sl_pg__param_i64(p, agg->window_end_ms);
    sl_pg__param_text(p, sl_sensor_type_name(agg->sensor_type));
    sl_pg__param_i64(p, agg->count);
    sl_pg__param_f64(p, agg->min);
    sl_pg__param_f64(p, agg->max);
    sl_pg__param_f64(p, agg->avg);
    sl_pg__param_f64(p, agg->stddev);
    sl_pg__param_i64(p, w->now_ms);
}

static void window_params(struct batch_writer *w, size_t index,
                          sl_pg_params_t *p)
{
    const sl_window_key_t *key = &w->batch->recompute[index];

    sl_pg__param_text(p, key->sensor_id);
    sl_pg__param_i64(p, key->window_start_ms);
    sl_pg__param_i64(p, key->window_end_ms);
    sl_pg__param_text(p, sl_sensor_type_name(key->sensor_type));
    sl_pg__param_i64(p, w->now_ms);
}

static void empty_window_params(struct batch_writer *w, size_t index,
                                sl_pg_params_t *p)
{
    const sl_window_key_t *key = &w->batch->recompute[index];

    sl_pg__param_text(p, key->sensor_id);
    sl_pg__param_i64(p, key->window_start_ms);
    sl_pg__param_i64(p, key->window_end_ms);
}

static void dlq_params(struct batch_writer *w, size_t index, sl_pg_params_t *p)
{
    const sl_dlq_entry_t *e = &w->batch->dlq[index];
    int64_t first_ms =
        e->first_failure_ms != 0 ? e->first_failure_ms : w->now_ms;
    int64_t last_ms = e->last_failure_ms != 0 ? e->last_failure_ms : first_ms;

    sl_pg__param_text(p, e->topic);
    sl_pg__param_i64(p, e->partition);
    sl_pg__param_i64(p, e->offset);
    sl_pg__param_bytea(p, e->key, e->key_len);
    sl_pg__param_bytea(p, e->payload, e->payload_len);
    sl_pg__param_text(p, sl_dlq_class_name(e->error_class));
    sl_pg__param_text(p, e->error);
    sl_pg__param_i64(p, e->retry_count);
    sl_pg__param_text(p, sl_dlq_status_name(e->status));
    sl_pg__param_i64(p, first_ms);
    sl_pg__param_i64(p, last_ms);
    sl_pg__param_i64(p, w->now_ms);
    opt_param_i64(p, e->next_attempt_ms != 0, e->next_attempt_ms);
}

/* The resolutions to run: those whose record's own row was stored. */
static bool resolution_wanted(const struct batch_writer *w,
                              const sl_dlq_resolution_t *r)
{
    const unsigned char *outcome =
        r->is_event ? w->event_outcome : w->reading_outcome;

    return outcome[r->index] != ROW_REJECTED;
}

static void resolution_params(struct batch_writer *w, size_t index,
                              sl_pg_params_t *p)
{
    const sl_dlq_resolution_t *r = &w->batch->resolutions[index];

    sl_pg__param_text(p, r->topic);
    sl_pg__param_i64(p, r->partition);
    /* A resolution skipped because its row was rejected matches no row:
     * source offsets are never below -1. */
    sl_pg__param_i64(p, resolution_wanted(w, r) ? r->offset : -2);
    sl_pg__param_i64(p, w->now_ms);
}

/* Orders positions in the recompute list keys by window, then sensor
 * id (a qsort_r comparator). */
static int compare_window_key(const void *a, const void *b, void *keys)
{
    const sl_window_key_t *ka =
        (const sl_window_key_t *)keys + *(const size_t *)a;
    const sl_window_key_t *kb =
        (const sl_window_key_t *)keys + *(const size_t *)b;

    if (ka->window_start_ms != kb->window_start_ms)
        return ka->window_start_ms < kb->window_start_ms ? -1 : 1;
    if (ka->window_end_ms != kb->window_end_ms)
        return ka->window_end_ms < kb->window_end_ms ? -1 : 1;
    return strcmp(ka->sensor_id, kb->sensor_id);
}

/* Appends text to an array literal as a quoted element. */
static void add_array_text(struct copy_buf *b, const char *text)
{
    if (b->len > 1)
        put_bytes(b, ",", 1);
    put_bytes(b, "\"", 1);
    for (const char *c = text; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\')
            put_bytes(b, "\\", 1);
        put_bytes(b, c, 1);
    }
    put_bytes(b, "\"", 1);
}

/* Clears and recomputes the windows order[lo, hi), which share one window
 * and name distinct sensors, with the grouped statements. */
static enum sl_pg_outcome recompute_group(struct batch_writer *w,
                                          const size_t *order, size_t lo,
                                          size_t hi)
{
    const sl_window_key_t *keys = w->batch->recompute;
    struct copy_buf ids = {0}, types = {0};
    enum sl_pg_outcome o = SL_PG_FAILED;

    put_bytes(&ids, "{", 1);
    put_bytes(&types, "{", 1);
    for (size_t i = lo; i < hi; i++) {
        add_array_text(&ids, keys[order[i]].sensor_id);
        add_array_text(&types, sl_sensor_type_name(keys[order[i]].sensor_type));
    }
    put_bytes(&ids, "}", 2); /* with the terminating NUL */
    put_bytes(&types, "}", 2);
    if (!ids.failed && !types.failed) {
        const sl_window_key_t *key = &keys[order[lo]];
        sl_pg_params_t p = {0};
        PGresult *res;

        sl_pg__param_text(&p, (const char *)ids.data);
        sl_pg__param_i64(&p, key->window_start_ms);
        res = sl_pg__exec(w->pg, SL_PG_CLEAR_WINDOWS, &p);
        o = sl_pg__check(w->pg, res, "window");
        PQclear(res);
        if (o == SL_PG_OK) {
            sl_pg__param_i64(&p, key->window_end_ms);
            sl_pg__param_text(&p, (const char *)types.data);
            sl_pg__param_i64(&p, w->now_ms);
            res = sl_pg__exec(w->pg, SL_PG_RECOMPUTE_WINDOWS, &p);
            o = sl_pg__check(w->pg, res, "window");
            PQclear(res);
        }
    }
    free(ids.data);
    free(types.data);
    return o;
}

/*
 * Recomputes the listed windows, one scan of the raw rows per window for
 * all its sensors. A window listed twice is computed once. When a group
 * fails with a row error, the whole list goes through the per-sensor
 * statements instead, which report the failing entry by its index.
 */
static int write_recomputes(struct batch_writer *w)
{
    const sl_store_batch_t *batch = w->batch;
    size_t n = batch->recompute_count, unique = 0;
    enum sl_pg_outcome o = SL_PG_OK;
    size_t *order;
    int rc;

    if (n == 0)
        return SL_OK;
    order = malloc(n * sizeof(*order));
    if (order == NULL)
        return SL_EIO; /* the caller retries the batch */
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof(*order), compare_window_key,
            (void *)batch->recompute);
    for (size_t i = 0; i < n; i++) {
        if (unique == 0 || compare_window_key(&order[unique - 1], &order[i],
                                              (void *)batch->recompute) != 0)
            order[unique++] = order[i];
    }
    if (sl_pg__command(w->pg, "SAVEPOINT sl_windows") != SL_OK) {
        free(order);
        return SL_EIO;
    }
    for (size_t lo = 0, hi; lo < unique && o == SL_PG_OK; lo = hi) {
        const sl_window_key_t *key = &batch->recompute[order[lo]];

        for (hi = lo + 1; hi < unique; hi++) {
            const sl_window_key_t *next = &batch->recompute[order[hi]];

            if (next->window_start_ms != key->window_start_ms ||
                next->window_end_ms != key->window_end_ms)
                break;
        }
        o = recompute_group(w, order, lo, hi);
    }
    free(order);
    if (o == SL_PG_FAILED)
        return SL_EIO;
    if (o == SL_PG_OK)
        return sl_pg__command(w->pg, "RELEASE SAVEPOINT sl_windows");
    if (sl_pg__command(w->pg, "ROLLBACK TO SAVEPOINT sl_windows") != SL_OK ||
        sl_pg__command(w->pg, "RELEASE SAVEPOINT sl_windows") != SL_OK)
        return SL_EIO;
    rc = run_rows(w, SL_PG_RECOMPUTE_WINDOW, window_params, n, "window", NULL);
    if (rc == SL_OK)
        rc = run_rows(w, SL_PG_DELETE_EMPTY_WINDOW, empty_window_params, n,
                      "window", NULL);
    return rc;
}

static int write_rest(struct batch_writer *w, sl_store_result_t *result)
{
    const sl_store_batch_t *batch = w->batch;
    unsigned char *resolved = NULL;
    int rc;

    rc = run_rows(w, SL_PG_UPSERT_AGGREGATE, aggregate_params,
                  batch->aggregate_count, "aggregate", NULL);
    if (rc == SL_OK)
        rc = write_recomputes(w);
    if (rc == SL_OK)
        rc = run_rows(w, SL_PG_UPSERT_DLQ, dlq_params, batch->dlq_count, "dlq",
                      NULL);
    if (rc != SL_OK || batch->resolution_count == 0)
        return rc;

    resolved = calloc(batch->resolution_count, 1);
    if (resolved == NULL)
        return SL_EIO;
    rc = run_rows(w, SL_PG_RESOLVE_DLQ, resolution_params,
                  batch->resolution_count, "resolution", resolved);
    for (size_t i = 0; rc == SL_OK && i < batch->resolution_count; i++) {
        if (resolved[i] == ROW_INSERTED)
            result->dlq_resolved++;
    }
    free(resolved);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Entry point                                                             */
/* ---------------------------------------------------------------------- */

/* Checks that every resolution names a row of the batch. */
static bool resolutions_valid(const sl_store_batch_t *batch)
{
    for (size_t i = 0; i < batch->resolution_count; i++) {
        const sl_dlq_resolution_t *r = &batch->resolutions[i];
        size_t rows = r->is_event ? batch->event_count : batch->reading_count;

        if (r->topic == NULL || r->index >= rows)
            return false;
    }
    return true;
}

static int write_batch(struct batch_writer *w, sl_store_result_t *counts)
{
    int rc;

    if (sl_pg__command(w->pg, "BEGIN") != SL_OK)
        return SL_EIO;
    rc = write_readings(w, counts);
    if (rc == SL_OK)
        rc = write_deferred_latest(w);
    if (rc == SL_OK)
        rc = write_events(w, counts);
    if (rc == SL_OK)
        rc = write_rest(w, counts);
    if (rc == SL_OK)
        rc = sl_pg__command(w->pg, "COMMIT");
    if (rc != SL_OK) {
        sl_pg__rollback(w->pg);
        return SL_EIO;
    }
    return SL_OK;
}

int sl_pg__write(sl_store_t *st, const sl_store_batch_t *batch,
                 sl_store_result_t *result, sl_store_reject_cb reject,
                 void *reject_ctx)
{
    struct batch_writer w = {0};
    sl_store_result_t counts = {0};
    int rc;

    if (!resolutions_valid(batch))
        return SL_EINVAL;
    /* The batch positions go into an integer staging column. */
    if (batch->reading_count > INT32_MAX || batch->event_count > INT32_MAX)
        return SL_EINVAL;
    if (batch->latest_deferred && batch->latest_count > 0 &&
        (batch->latest == NULL || batch->latest_count > INT32_MAX))
        return SL_EINVAL;

    w.pg = (sl_pg_t *)st;
    w.batch = batch;
    w.now_ms = sl_time_now_ms();
    w.reject = reject;
    w.reject_ctx = reject_ctx;
    /* One extra byte each, so an empty batch still allocates. Allocation
     * failure is reported as SL_EIO, the only failure the contract of
     * sl_store_write allows: the caller retries. */
    w.reading_outcome = calloc(batch->reading_count + 1, 1);
    w.event_outcome = calloc(batch->event_count + 1, 1);
    if (w.reading_outcome == NULL || w.event_outcome == NULL) {
        sl_log_error("store", "out of memory readings=%zu events=%zu",
                     batch->reading_count, batch->event_count);
        rc = SL_EIO;
    } else if (sl_pg__ready(w.pg) != SL_OK) {
        rc = SL_EIO;
    } else {
        rc = write_batch(&w, &counts);
    }
    free(w.reading_outcome);
    free(w.event_outcome);
    if (rc == SL_OK && result != NULL)
        *result = counts;
    return rc;
}
