/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Measures the PostgreSQL store's batch write against a raw COPY baseline,
 * in the same run, on a throwaway cluster (tests/support/pg_harness.c,
 * fsync off). Both write the same readings (1,000 sensors, in event-time
 * order) in 10,000-row transactions:
 *
 *   raw COPY:       binary COPY straight into a copy of sensor_readings
 *                   (same columns, primary key and CHECKs), nothing else;
 *   sl_store_write: COPY into the staging table, INSERT ... SELECT ... ON
 *                   CONFLICT, and the sensor_latest upsert.
 *
 * Usage: store_pg_bench [rows]   (default 1000000)
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pg_harness.h"
#include "store/store.h"
#include "util/err.h"
#include "util/timeutil.h"

#define BATCH_ROWS 10000
#define SENSORS 1000
#define T0_MS INT64_C(1767225600000)

static void make_reading(sl_reading_t *rec, size_t i)
{
    memset(rec, 0, sizeof(*rec));
    snprintf(rec->sensor_id, sizeof(rec->sensor_id), "sensor-%04zu",
             i % SENSORS);
    snprintf(rec->location, sizeof(rec->location), "hall-a");
    rec->timestamp_ms = T0_MS + (int64_t)(i / SENSORS) * 1000;
    rec->value = 20.0 + (double)(i % 97) * 0.125;
    rec->sensor_type = SL_SENSOR_TEMPERATURE;
    rec->battery_level = 80;
    rec->signal_strength = -60;
}

struct buf {
    char *data;
    size_t len;
};

static void put(struct buf *b, const void *src, size_t n)
{
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static void put_u32(struct buf *b, uint32_t v)
{
    v = htonl(v);
    put(b, &v, 4);
}

static void put_i64_field(struct buf *b, int64_t v)
{
    put_u32(b, 8);
    put_u32(b, (uint32_t)((uint64_t)v >> 32));
    put_u32(b, (uint32_t)v);
}

static void put_text_field(struct buf *b, const char *s)
{
    put_u32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}

static void put_i32_field(struct buf *b, int32_t v)
{
    put_u32(b, 4);
    put_u32(b, (uint32_t)v);
}

/* One binary COPY row of the 12 sensor_readings columns. */
static void put_row(struct buf *b, const sl_reading_t *rec, int64_t now_ms)
{
    int64_t bits;
    uint16_t fields = htons(12);
    unsigned char anomaly = 0;

    memcpy(&bits, &rec->value, sizeof(bits));
    put(b, &fields, 2);
    put_i64_field(b, rec->timestamp_ms);
    put_text_field(b, rec->sensor_id);
    put_text_field(b, "temperature");
    put_i64_field(b, bits); /* float8 travels as its bit pattern */
    put_text_field(b, rec->location);
    put_u32(b, 1);
    put(b, &anomaly, 1);
    put_i32_field(b, rec->battery_level);
    put_i32_field(b, rec->signal_strength);
    put_u32(b, UINT32_MAX); /* unit NULL */
    put_u32(b, UINT32_MAX); /* anomaly_score NULL */
    put_i64_field(b, now_ms);
    put_i64_field(b, bits);
}

static int exec_ok(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

    if (!ok)
        fprintf(stderr, "%s failed: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    return ok;
}

/* Writes rows readings with raw binary COPY. Returns seconds, or -1. */
static double run_raw_copy(PGconn *conn, size_t rows)
{
    static const unsigned char header[19] = {'P',  'G',  'C',  'O',  'P', 'Y',
                                             '\n', 0xff, '\r', '\n', 0};
    struct buf b = {malloc((size_t)BATCH_ROWS * 256 + 64), 0};
    int64_t start = sl_time_mono_ns();
    sl_reading_t rec;

    if (b.data == NULL ||
        !exec_ok(conn, "CREATE TABLE raw_readings (LIKE sensor_readings"
                       " INCLUDING ALL)"))
        return -1;
    for (size_t done = 0; done < rows; done += BATCH_ROWS) {
        PGresult *res;
        uint16_t trailer = 0xffff;

        b.len = 0;
        put(&b, header, sizeof(header));
        for (size_t i = done; i < done + BATCH_ROWS && i < rows; i++) {
            make_reading(&rec, i);
            put_row(&b, &rec, T0_MS);
        }
        put(&b, &trailer, 2);
        if (!exec_ok(conn, "BEGIN"))
            return -1;
        res = PQexec(conn, "COPY raw_readings FROM STDIN (FORMAT binary)");
        PQclear(res);
        PQputCopyData(conn, b.data, (int)b.len);
        PQputCopyEnd(conn, NULL);
        while ((res = PQgetResult(conn)) != NULL) {
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                fprintf(stderr, "COPY failed: %s", PQerrorMessage(conn));
                return -1;
            }
            PQclear(res);
        }
        if (!exec_ok(conn, "COMMIT"))
            return -1;
    }
    free(b.data);
    return (double)(sl_time_mono_ns() - start) / 1e9;
}

/* Writes rows readings through sl_store_write. Returns seconds, or -1. */
static double run_store_write(sl_store_t *st, size_t rows)
{
    sl_reading_t *recs = malloc(BATCH_ROWS * sizeof(*recs));
    int64_t start = sl_time_mono_ns();

    if (recs == NULL)
        return -1;
    for (size_t done = 0; done < rows; done += BATCH_ROWS) {
        sl_store_batch_t batch = {0};
        size_t n = rows - done < BATCH_ROWS ? rows - done : BATCH_ROWS;

        for (size_t i = 0; i < n; i++)
            make_reading(&recs[i], done + i);
        batch.readings = recs;
        batch.reading_count = n;
        if (sl_store_write(st, &batch, NULL, NULL, NULL) != SL_OK) {
            fprintf(stderr, "sl_store_write failed at row %zu\n", done);
            free(recs);
            return -1;
        }
    }
    free(recs);
    return (double)(sl_time_mono_ns() - start) / 1e9;
}

int main(int argc, char **argv)
{
    size_t rows = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1000000;
    sl_pg_harness_t h;
    char err[512] = "";
    sl_store_t *st;
    PGconn *conn;
    double raw_s, store_s;
    int rc = 1;

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

    raw_s = run_raw_copy(conn, rows);
    store_s = run_store_write(st, rows);
    if (raw_s < 0 || store_s < 0)
        goto out;
    printf("rows=%zu batch=%d sensors=%d (fsync off, unix socket)\n", rows,
           BATCH_ROWS, SENSORS);
    printf("raw COPY BINARY:  %.2f s  %.0f rows/s\n", raw_s, rows / raw_s);
    printf("sl_store_write:   %.2f s  %.0f rows/s  (%.2fx the raw time)\n",
           store_s, rows / store_s, store_s / raw_s);
    printf("stored readings: %" PRId64 "\n", sl_store_reading_count(st));
    rc = 0;

out:
    PQfinish(conn);
    sl_store_close(st);
    sl_pg_harness_destroy(&h);
    return rc;
}
