/* SPDX-License-Identifier: Apache-2.0 */
/* The raw binary COPY baseline of the benchmarks; see bench_pg.h. */
#include "bench_pg.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"

/* Largest COPY row of a reading: the text fields at their maximum sizes
 * plus 12 length words and the fixed-size fields. */
#define MAX_ROW_BYTES                                                          \
    (sizeof(((sl_reading_t *)0)->sensor_id) +                                  \
     sizeof(((sl_reading_t *)0)->location) +                                   \
     sizeof(((sl_reading_t *)0)->unit) + 256)

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

static void put_i32_field(struct buf *b, int32_t v)
{
    put_u32(b, 4);
    put_u32(b, (uint32_t)v);
}

static void put_text_field(struct buf *b, const char *s)
{
    put_u32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}

/* One binary COPY row of the 12 sensor_readings columns. float8 travels
 * as its IEEE-754 bit pattern, which is also the key column value_bits. */
static void put_row(struct buf *b, const sl_reading_t *rec, int64_t now_ms)
{
    uint16_t fields = htons(12);
    unsigned char anomaly = rec->anomaly ? 1 : 0;
    int64_t bits, score_bits;

    memcpy(&bits, &rec->value, sizeof(bits));
    memcpy(&score_bits, &rec->anomaly_score, sizeof(score_bits));
    put(b, &fields, 2);
    put_i64_field(b, rec->timestamp_ms);
    put_text_field(b, rec->sensor_id);
    put_text_field(b, sl_sensor_type_name(rec->sensor_type));
    put_i64_field(b, bits);
    put_text_field(b, rec->location);
    put_u32(b, 1);
    put(b, &anomaly, 1);
    put_i32_field(b, rec->battery_level);
    put_i32_field(b, rec->signal_strength);
    if (rec->has_unit)
        put_text_field(b, rec->unit);
    else
        put_u32(b, UINT32_MAX); /* NULL */
    if (rec->has_score)
        put_i64_field(b, score_bits);
    else
        put_u32(b, UINT32_MAX);
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

/* Sends b as one COPY in its own transaction. Returns 1, or 0 on error. */
static int copy_batch(PGconn *conn, const char *copy_sql, const struct buf *b)
{
    PGresult *res;
    int ok = 1;

    if (!exec_ok(conn, "BEGIN"))
        return 0;
    res = PQexec(conn, copy_sql);
    ok = PQresultStatus(res) == PGRES_COPY_IN;
    PQclear(res);
    if (!ok) {
        fprintf(stderr, "%s failed: %s", copy_sql, PQerrorMessage(conn));
        return 0;
    }
    if (PQputCopyData(conn, b->data, (int)b->len) != 1 ||
        PQputCopyEnd(conn, NULL) != 1)
        ok = 0;
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            ok = 0;
        PQclear(res);
    }
    if (!ok) {
        fprintf(stderr, "COPY failed: %s", PQerrorMessage(conn));
        return 0;
    }
    return exec_ok(conn, "COMMIT");
}

double sl_bench_raw_copy(PGconn *conn, const char *table, size_t rows,
                         size_t batch, sl_bench_reading_fn next, void *ctx)
{
    static const unsigned char header[19] = {'P',  'G',  'C',  'O',  'P', 'Y',
                                             '\n', 0xff, '\r', '\n', 0};
    const uint16_t trailer = 0xffff;
    struct buf b = {malloc(batch * MAX_ROW_BYTES + 64), 0};
    char sql[160];
    int64_t start_ns, now_ms = sl_time_now_ms();
    sl_reading_t rec;

    if (b.data == NULL)
        return -1;
    snprintf(sql, sizeof(sql),
             "CREATE TABLE %s (LIKE sensor_readings INCLUDING ALL)", table);
    if (!exec_ok(conn, sql)) {
        free(b.data);
        return -1;
    }
    snprintf(sql, sizeof(sql), "COPY %s FROM STDIN (FORMAT binary)", table);

    start_ns = sl_time_mono_ns();
    for (size_t done = 0; done < rows; done += batch) {
        b.len = 0;
        put(&b, header, sizeof(header));
        for (size_t i = done; i < done + batch && i < rows; i++) {
            next(ctx, i, &rec);
            put_row(&b, &rec, now_ms);
        }
        put(&b, &trailer, 2);
        if (!copy_batch(conn, sql, &b)) {
            free(b.data);
            return -1;
        }
    }
    free(b.data);
    return (double)(sl_time_mono_ns() - start_ns) / 1e9;
}
