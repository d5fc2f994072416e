/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Measures the PostgreSQL store's batch write against a raw COPY baseline,
 * in the same run, on a throwaway cluster (tests/support/pg_harness.c,
 * fsync off). Both write the same readings (by default 1,000 sensors, in
 * event-time order) in transactions of the same size (by default 10,000
 * rows):
 *
 *   raw COPY:       binary COPY straight into a copy of sensor_readings
 *                   (same columns, primary key and CHECKs), nothing else;
 *   sl_store_write: its direct path: binary COPY into sensor_readings,
 *                   then the newest reading of each sensor staged and
 *                   upserted into sensor_latest;
 *   replay:         sl_store_write of the first tenth of the rows again,
 *                   every key already stored: the failed direct COPY, then
 *                   the staged path (COPY into the staging table, INSERT
 *                   ... SELECT ... ON CONFLICT), which adds nothing;
 *   one bad row:    one more batch of new rows, one of which the database
 *                   rejects, so the batch takes the fallback that splits
 *                   it down to that row.
 *
 * With latest_every N above 0, the sl_store_write and replay batches set
 * latest_deferred, as the processor does. After every N of them, and after
 * the last, one more transaction writes only the newest reading of each
 * sensor since the previous such transaction. Its time counts in
 * sl_store_write's.
 *
 * Usage: store_pg_bench [rows [batch [sensors [latest_every]]]]
 *        (defaults 1000000, 10000, 1000 and 0)
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "bench_pg.h"
#include "pg_harness.h"
#include "store/store.h"
#include "util/err.h"
#include "util/timeutil.h"

/* Rows per transaction and sensor count: the defaults, and the second and
 * third arguments. */
static size_t batch_rows = 10000;
static size_t sensors = 1000;
/* Reading batches per latest-only batch (the fourth argument). 0 keeps
 * the default, where each batch upserts its own newest readings. */
static size_t latest_every;
/* Latest-only batches written, and their total time, over both runs. */
static size_t latest_batches;
static int64_t latest_ns;
#define T0_MS INT64_C(1767225600000)

static void make_reading(sl_reading_t *rec, size_t i)
{
    memset(rec, 0, sizeof(*rec));
    snprintf(rec->sensor_id, sizeof(rec->sensor_id), "sensor-%04zu",
             i % sensors);
    snprintf(rec->location, sizeof(rec->location), "hall-a");
    rec->timestamp_ms = T0_MS + (int64_t)(i / sensors) * 1000;
    rec->value = 20.0 + (double)(i % 97) * 0.125;
    rec->sensor_type = SL_SENSOR_TEMPERATURE;
    rec->battery_level = 80;
    rec->signal_strength = -60;
}

/* sl_bench_reading_fn over make_reading. */
static void next_reading(void *ctx, size_t i, sl_reading_t *rec)
{
    (void)ctx;
    make_reading(rec, i);
}

/* The newest reading number of each sensor not yet written to
 * sensor_latest, as the processor keeps them when it defers the rows. */
struct pending_latest {
    size_t *newest; /* per sensor: reading number, or SIZE_MAX for none */
    size_t *sensor; /* the sensors with a reading in newest */
    size_t count;   /* entries of sensor */
    sl_reading_t *rows;
};

/* Notes readings first..first+n-1. The series is in event-time order, so
 * the last reading of a sensor is its newest. */
static void pending_note(struct pending_latest *pl, size_t first, size_t n)
{
    for (size_t i = first; i < first + n; i++) {
        size_t s = i % sensors;

        if (pl->newest[s] == SIZE_MAX)
            pl->sensor[pl->count++] = s;
        pl->newest[s] = i;
    }
}

/* Writes the pending latest rows in a batch of their own. Returns SL_OK
 * or the error of sl_store_write. */
static int pending_write(sl_store_t *st, struct pending_latest *pl)
{
    sl_store_batch_t batch = {0};
    int64_t start = sl_time_mono_ns();
    int rc;

    if (pl->count == 0)
        return SL_OK;
    for (size_t i = 0; i < pl->count; i++) {
        make_reading(&pl->rows[i], pl->newest[pl->sensor[i]]);
        pl->newest[pl->sensor[i]] = SIZE_MAX;
    }
    batch.latest_deferred = true;
    batch.latest = pl->rows;
    batch.latest_count = pl->count;
    rc = sl_store_write(st, &batch, NULL, NULL, NULL);
    pl->count = 0;
    latest_batches++;
    latest_ns += sl_time_mono_ns() - start;
    return rc;
}

static void pending_free(struct pending_latest *pl)
{
    free(pl->newest);
    free(pl->sensor);
    free(pl->rows);
}

/* Writes readings first..first+n-1 as one batch, expecting each to be
 * inserted (or, with replay, each to be a duplicate). Returns SL_OK or an
 * error, printed to stderr. */
static int write_one_batch(sl_store_t *st, sl_reading_t *recs, size_t first,
                           size_t n, bool replay)
{
    sl_store_batch_t batch = {0};
    sl_store_result_t result;

    for (size_t i = 0; i < n; i++)
        make_reading(&recs[i], first + i);
    batch.readings = recs;
    batch.reading_count = n;
    batch.latest_deferred = latest_every > 0;
    if (sl_store_write(st, &batch, &result, NULL, NULL) != SL_OK) {
        fprintf(stderr, "sl_store_write failed at row %zu\n", first);
        return SL_EIO;
    }
    if ((replay ? result.readings_duplicate : result.readings_inserted) != n) {
        fprintf(stderr,
                "batch at row %zu: %zu inserted, %zu duplicate of %zu\n", first,
                result.readings_inserted, result.readings_duplicate, n);
        return SL_EIO;
    }
    return SL_OK;
}

/* Writes rows readings through sl_store_write, with the latest-only
 * batches of latest_every. Returns seconds, or -1. */
static double run_store_write(sl_store_t *st, size_t rows, bool replay)
{
    sl_reading_t *recs = malloc(batch_rows * sizeof(*recs));
    struct pending_latest pl = {0};
    size_t batches = 0;
    int64_t start = sl_time_mono_ns();
    int rc = SL_OK;

    pl.newest = malloc(sensors * sizeof(*pl.newest));
    pl.sensor = malloc(sensors * sizeof(*pl.sensor));
    pl.rows = malloc(sensors * sizeof(*pl.rows));
    if (recs == NULL || pl.newest == NULL || pl.sensor == NULL ||
        pl.rows == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    for (size_t s = 0; s < sensors; s++)
        pl.newest[s] = SIZE_MAX;
    for (size_t done = 0; done < rows && rc == SL_OK; done += batch_rows) {
        size_t n = rows - done < batch_rows ? rows - done : batch_rows;

        rc = write_one_batch(st, recs, done, n, replay);
        if (rc != SL_OK || latest_every == 0)
            continue;
        pending_note(&pl, done, n);
        if (++batches % latest_every == 0)
            rc = pending_write(st, &pl);
    }
    if (rc == SL_OK)
        rc = pending_write(st, &pl);

out:
    free(recs);
    pending_free(&pl);
    if (rc != SL_OK) {
        fprintf(stderr, "store write run failed: %s\n", sl_strerror(rc));
        return -1;
    }
    return (double)(sl_time_mono_ns() - start) / 1e9;
}

/* Counts the sensors whose sensor_latest row has the newest event time of
 * their stored readings. */
static int64_t latest_rows_current(PGconn *conn)
{
    PGresult *res = PQexec(
        conn, "SELECT count(*) FROM sensor_latest l JOIN (SELECT sensor_id,"
              " max(timestamp_ms) AS newest FROM sensor_readings"
              " GROUP BY sensor_id) r USING (sensor_id)"
              " WHERE l.timestamp_ms = r.newest");
    int64_t count = -1;

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    else
        fprintf(stderr, "sensor_latest check failed: %s", PQerrorMessage(conn));
    PQclear(res);
    return count;
}

static void count_reject(void *ctx, const char *kind, size_t index,
                         const char *error)
{
    (void)kind;
    (void)index;
    (void)error;
    (*(size_t *)ctx)++;
}

/* Writes one batch of new readings (numbers first..first+batch_rows-1)
 * whose middle row has an event time out of range, so the database
 * rejects it and the batch takes the fallback for row errors. Returns
 * seconds, or -1 unless exactly that row was rejected. */
static double run_bad_row_batch(sl_store_t *st, size_t first)
{
    sl_reading_t *recs = malloc(batch_rows * sizeof(*recs));
    sl_store_batch_t batch = {0};
    sl_store_result_t result;
    size_t rejected = 0;
    int64_t start;
    int rc;

    if (recs == NULL)
        return -1;
    for (size_t i = 0; i < batch_rows; i++)
        make_reading(&recs[i], first + i);
    recs[batch_rows / 2].timestamp_ms = INT64_MAX;
    batch.readings = recs;
    batch.reading_count = batch_rows;
    start = sl_time_mono_ns();
    rc = sl_store_write(st, &batch, &result, count_reject, &rejected);
    free(recs);
    if (rc != SL_OK || rejected != 1 ||
        result.readings_inserted != batch_rows - 1) {
        fprintf(stderr, "bad-row batch: rc=%d, %zu rejected, %zu inserted\n",
                rc, rejected, result.readings_inserted);
        return -1;
    }
    return (double)(sl_time_mono_ns() - start) / 1e9;
}

int main(int argc, char **argv)
{
    size_t rows = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1000000;
    size_t replay_rows, expected_latest;
    sl_pg_harness_t h;
    char err[512] = "";
    sl_store_t *st;
    PGconn *conn;
    double raw_s, store_s, replay_s, bad_s;
    int rc = 1;

    if (argc > 2)
        batch_rows = (size_t)strtoull(argv[2], NULL, 10);
    if (argc > 3)
        sensors = (size_t)strtoull(argv[3], NULL, 10);
    if (argc > 4)
        latest_every = (size_t)strtoull(argv[4], NULL, 10);
    if (rows == 0 || batch_rows == 0 || sensors == 0) {
        fprintf(stderr,
                "usage: %s [rows [batch [sensors [latest_every]]]]: rows,"
                " batch and sensors above 0\n",
                argv[0]);
        return 2;
    }
    expected_latest = rows < sensors ? rows : sensors;
    replay_rows = rows / 10 > 0 ? rows / 10 : rows;
    if (sl_pg_harness_start(&h, err, sizeof(err)) != 0) {
        fprintf(stderr, "starting PostgreSQL failed: %s\n", err);
        return 1;
    }
    st = sl_store_open(h.url, err, sizeof(err));
    conn = PQconnectdb(h.url);
    if (st == NULL || sl_store_migrate(st, err, sizeof(err)) != SL_OK ||
        PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "opening the store failed: %s\n", err);
        goto out;
    }

    raw_s = sl_bench_raw_copy(conn, "raw_readings", rows, batch_rows,
                              next_reading, NULL);
    store_s = run_store_write(st, rows, false);
    if (store_s >= 0 && latest_rows_current(conn) != (int64_t)expected_latest) {
        fprintf(stderr, "sensor_latest is not the newest of %zu sensors\n",
                expected_latest);
        goto out;
    }
    replay_s = run_store_write(st, replay_rows, true);
    bad_s = run_bad_row_batch(st, rows);
    if (raw_s < 0 || store_s < 0 || replay_s < 0 || bad_s < 0)
        goto out;
    printf("rows=%zu batch=%zu sensors=%zu latest_every=%zu"
           " (fsync off, unix socket)\n",
           rows, batch_rows, sensors, latest_every);
    printf("raw COPY BINARY:  %.2f s  %.0f rows/s\n", raw_s, rows / raw_s);
    printf("sl_store_write:   %.2f s  %.0f rows/s  (%.2fx the raw time)\n",
           store_s, rows / store_s, store_s / raw_s);
    printf(
        "replay (stored):  %.2f s  %.0f rows/s  (%zu rows, all duplicates)\n",
        replay_s, replay_rows / replay_s, replay_rows);
    printf("one bad row:      %.3f s for a batch of %zu (%.3f s for a good "
           "batch on average)\n",
           bad_s, batch_rows,
           store_s / (double)((rows + batch_rows - 1) / batch_rows));
    if (latest_batches > 0)
        printf("latest-only:      %zu batches, %.2f ms each on average\n",
               latest_batches, (double)latest_ns / 1e6 / latest_batches);
    printf("stored readings: %" PRId64 "\n", sl_store_reading_count(st));
    printf("mode=%s rows=%zu copy_rows_per_s=%.0f"
           " store_write_rows_per_s=%.0f fraction_of_copy=%.3f"
           " replay_rows_per_s=%.0f\n",
           latest_every > 0 ? "store_pg_deferred" : "store_pg", rows,
           rows / raw_s, rows / store_s, raw_s / store_s,
           replay_rows / replay_s);
    if (sl_store_reading_count(st) != (int64_t)(rows + batch_rows - 1)) {
        fprintf(stderr, "stored count differs from %zu rows\n",
                rows + batch_rows - 1);
        goto out;
    }
    rc = 0;

out:
    PQfinish(conn);
    sl_store_close(st);
    sl_pg_harness_destroy(&h);
    return rc;
}
