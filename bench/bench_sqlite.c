/* SPDX-License-Identifier: Apache-2.0 */
/* The raw SQLite insert baseline of the benchmarks; see bench_sqlite.h. */
#include "bench_sqlite.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "util/timeutil.h"

static int exec_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s: %s\n", sql, msg);
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Copies the CREATE statements of sensor_readings and its indexes, the
 * table first. */
static int copy_schema(sqlite3 *from, sqlite3 *to)
{
    sqlite3_stmt *stmt;
    int rc = 0;

    if (sqlite3_prepare_v2(from,
                           "SELECT sql FROM sqlite_master WHERE tbl_name = "
                           "'sensor_readings' AND sql IS NOT NULL "
                           "ORDER BY type DESC",
                           -1, &stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(from));
        return -1;
    }
    while (rc == 0 && sqlite3_step(stmt) == SQLITE_ROW)
        rc = exec_sql(to, (const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    return rc;
}

static int bind_row(sqlite3_stmt *stmt, const sl_reading_t *r, int64_t now_ms)
{
    int64_t bits;

    memcpy(&bits, &r->value, sizeof(bits));
    sqlite3_bind_int64(stmt, 1, r->timestamp_ms);
    sqlite3_bind_text(stmt, 2, r->sensor_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, sl_sensor_type_name(r->sensor_type), -1,
                      SQLITE_STATIC);
    sqlite3_bind_double(stmt, 4, r->value);
    sqlite3_bind_text(stmt, 5, r->location, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 6, r->battery_level);
    sqlite3_bind_int(stmt, 7, r->signal_strength);
    sqlite3_bind_int64(stmt, 8, now_ms);
    return sqlite3_bind_int64(stmt, 9, bits);
}

static double insert_rows(sqlite3 *db, size_t rows, size_t batch,
                          sl_bench_reading_fn next, void *ctx)
{
    const char *sql =
        "INSERT INTO sensor_readings (timestamp_ms, sensor_id, sensor_type,"
        " value, location, battery_level, signal_strength, ingested_at_ms,"
        " value_bits) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
    sqlite3_stmt *stmt;
    sl_reading_t rec;
    int64_t start_ns;

    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
        return -1;
    }
    start_ns = sl_time_mono_ns();
    for (size_t i = 0; i < rows; i++) {
        if (i % batch == 0 && exec_sql(db, "BEGIN") != 0)
            break;
        next(ctx, i, &rec);
        bind_row(stmt, &rec, sl_time_now_ms());
        if (sqlite3_step(stmt) != SQLITE_DONE) {
            fprintf(stderr, "sqlite insert: %s\n", sqlite3_errmsg(db));
            break;
        }
        sqlite3_reset(stmt);
        if (((i + 1) % batch == 0 || i + 1 == rows) &&
            exec_sql(db, "COMMIT") != 0)
            break;
        if (i + 1 == rows) {
            sqlite3_finalize(stmt);
            return (double)(sl_time_mono_ns() - start_ns) / 1e9;
        }
    }
    sqlite3_finalize(stmt);
    return -1;
}

double sl_bench_raw_sqlite(const char *schema_from, const char *raw_path,
                           size_t rows, size_t batch, sl_bench_reading_fn next,
                           void *ctx)
{
    sqlite3 *from = NULL, *raw = NULL;
    double seconds = -1;

    if (sqlite3_open(schema_from, &from) != SQLITE_OK ||
        sqlite3_open(raw_path, &raw) != SQLITE_OK) {
        fprintf(stderr, "sqlite: cannot open %s or %s\n", schema_from,
                raw_path);
    } else if (copy_schema(from, raw) == 0 &&
               exec_sql(raw, "PRAGMA journal_mode=WAL") == 0 &&
               exec_sql(raw, "PRAGMA synchronous=NORMAL") == 0) {
        seconds = insert_rows(raw, rows, batch, next, ctx);
    }
    sqlite3_close(from);
    sqlite3_close(raw);
    return seconds;
}
