/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Measures insert rates of the SQLite store layout, and what a sensor-id
 * query costs without a (sensor_id, timestamp_ms) index.
 *
 * Readings: N generated rows (default 1,000,000) from 1,000 sensors in
 * event-time order, in batches (default 10,000 rows per transaction).
 * They are written four ways: a raw prepared-INSERT loop on the migrated
 * schema, the same loop with a (sensor_id, timestamp_ms) index added, and
 * sl_store_write (which also keeps sensor_latest) without and with that
 * index. Events: the same raw loop into ecommerce_events keyed
 * (timestamp_ms, event_id), and into a table keyed by a random event_id
 * alone. Every run uses a fresh file in a mkdtemp folder under /tmp.
 *
 * Medians of 3 runs on a 2-vCPU AMD EPYC (Zen 4) KVM guest, ext4 /tmp,
 * SQLite 3.40.1, while other builds shared the machine:
 *   raw loop 614k rows/s, raw loop with the index 120k rows/s,
 *   sl_store_write 487k rows/s, sl_store_write with the index 122k rows/s;
 *   newest 100 of one sensor 7.9 ms without the index, 0.05 ms with it;
 *   events keyed (timestamp_ms, event_id) 478k rows/s, event_id 66k rows/s.
 *
 * Build (bench/CMakeLists.txt is not used for it) against an
 * unsanitized build of the store:
 *
 *   cmake -S . -B build-store-rel -DSLUICE_SANITIZE=OFF \
 *         -DSLUICE_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
 *   cmake --build build-store-rel --target sl_store
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -Isrc bench/store_sqlite_bench.c \
 *       build-store-rel/src/store/libsl_store.a \
 *       build-store-rel/src/model/libsl_model.a \
 *       build-store-rel/src/util/libsl_util.a \
 *       -lsqlite3 -ljansson -lm -lpthread -o build-store-rel/store_sqlite_bench
 *   build-store-rel/store_sqlite_bench [rows] [batch_rows]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_int.h"
#include "util/err.h"
#include "util/log.h"
#include "util/rng.h"
#include "util/timeutil.h"

#define SENSORS 1000
#define T0_MS INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define QUERY_REPEAT 20

static char bench_dir[64];

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "store_sqlite_bench: %s: %s\n", what, detail);
    exit(1);
}

/* Opens and migrates a fresh store file named name in bench_dir. */
static sl_store_t *fresh_store(const char *name)
{
    char path[160];
    char err[256] = "";
    sl_store_t *st;

    snprintf(path, sizeof(path), "%s/%s.db", bench_dir, name);
    st = sl_store_open(path, err, sizeof(err));
    if (st == NULL)
        die("open failed", err);
    if (sl_store_migrate(st, err, sizeof(err)) != SL_OK)
        die("migrate failed", err);
    return st;
}

static void exec_or_die(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        die(sql, msg != NULL ? msg : "unknown error");
}

/* Reading i comes from sensor i % SENSORS, one ms after reading i - 1, so
 * each sensor reports once a second. */
static sl_reading_t *generate_readings(size_t rows)
{
    sl_reading_t *recs = calloc(rows, sizeof(*recs));
    sl_rng_t rng;

    if (recs == NULL)
        die("calloc", "out of memory");
    sl_rng_seed(&rng, 42);
    for (size_t i = 0; i < rows; i++) {
        sl_reading_t *rec = &recs[i];

        snprintf(rec->sensor_id, sizeof(rec->sensor_id), "sensor-%04zu",
                 i % SENSORS);
        snprintf(rec->location, sizeof(rec->location), "building-%zu",
                 i % SENSORS / 100);
        rec->timestamp_ms = T0_MS + (int64_t)i;
        rec->value = 20.0 + 5.0 * sl_rng_normal(&rng);
        rec->sensor_type = (sl_sensor_type_t)(i % SENSORS % 5);
        rec->battery_level = 90;
        rec->signal_strength = -70;
    }
    return recs;
}

static double rate(size_t rows, int64_t start_ns)
{
    double seconds = (double)(sl_time_mono_ns() - start_ns) / 1e9;
    return (double)rows / seconds;
}

/* The raw loop: one prepared INSERT, BEGIN/COMMIT around batch rows. */
static double raw_readings(sqlite3 *db, const sl_reading_t *recs, size_t rows,
                           size_t batch)
{
    sqlite3_stmt *stmt = NULL;
    int64_t start = sl_time_mono_ns();

    if (sqlite3_prepare_v2(db,
                           "INSERT INTO sensor_readings (timestamp_ms,"
                           " sensor_id, sensor_type, value, location, anomaly,"
                           " battery_level, signal_strength, ingested_at_ms)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                           " ON CONFLICT (timestamp_ms, sensor_id) DO NOTHING",
                           -1, &stmt, NULL) != SQLITE_OK)
        die("prepare", sqlite3_errmsg(db));
    for (size_t i = 0; i < rows; i++) {
        const sl_reading_t *rec = &recs[i];

        if (i % batch == 0)
            exec_or_die(db, "BEGIN IMMEDIATE");
        sqlite3_bind_int64(stmt, 1, rec->timestamp_ms);
        sqlite3_bind_text(stmt, 2, rec->sensor_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, sl_sensor_type_name(rec->sensor_type), -1,
                          SQLITE_STATIC);
        sqlite3_bind_double(stmt, 4, rec->value);
        sqlite3_bind_text(stmt, 5, rec->location, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 6, rec->anomaly);
        sqlite3_bind_int(stmt, 7, rec->battery_level);
        sqlite3_bind_int(stmt, 8, rec->signal_strength);
        sqlite3_bind_int64(stmt, 9, T0_MS);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            die("insert", sqlite3_errmsg(db));
        sqlite3_reset(stmt);
        if (i % batch == batch - 1 || i == rows - 1)
            exec_or_die(db, "COMMIT");
    }
    sqlite3_finalize(stmt);
    return rate(rows, start);
}

static double store_readings(sl_store_t *st, const sl_reading_t *recs,
                             size_t rows, size_t batch)
{
    int64_t start = sl_time_mono_ns();

    for (size_t i = 0; i < rows; i += batch) {
        sl_store_batch_t b = {0};

        b.readings = recs + i;
        b.reading_count = rows - i < batch ? rows - i : batch;
        if (sl_store_write(st, &b, NULL, NULL, NULL) != SL_OK)
            die("sl_store_write", "failed");
    }
    return rate(rows, start);
}

/* Returns the mean ms of a newest-100 query for one sensor. */
static double sensor_query_ms(sl_store_t *st)
{
    sl_reading_t *out = calloc(100, sizeof(*out));
    sl_reading_query_t q;
    size_t n = 0;
    int64_t start;

    if (out == NULL)
        die("calloc", "out of memory");
    sl_reading_query_init(&q);
    q.sensor_id = "sensor-0500";
    q.limit = 100;
    start = sl_time_mono_ns();
    for (int i = 0; i < QUERY_REPEAT; i++) {
        if (sl_store_readings(st, &q, out, 100, &n) != SL_OK || n != 100)
            die("sl_store_readings", "failed or short");
    }
    free(out);
    return (double)(sl_time_mono_ns() - start) / 1e6 / QUERY_REPEAT;
}

/* Returns the mean ms of the newest-100 query of one sensor written for
 * the (sensor_id, timestamp_ms) index, which the store does not have. */
static double indexed_query_ms(sqlite3 *db)
{
    sqlite3_stmt *stmt = NULL;
    int64_t start;

    if (sqlite3_prepare_v2(db,
                           "SELECT timestamp_ms, value FROM sensor_readings"
                           " WHERE sensor_id = 'sensor-0500'"
                           " ORDER BY timestamp_ms DESC LIMIT 100",
                           -1, &stmt, NULL) != SQLITE_OK)
        die("prepare", sqlite3_errmsg(db));
    start = sl_time_mono_ns();
    for (int i = 0; i < QUERY_REPEAT; i++) {
        int rows = 0;

        while (sqlite3_step(stmt) == SQLITE_ROW)
            rows++;
        sqlite3_reset(stmt);
        if (rows != 100)
            die("indexed query", "short result");
    }
    sqlite3_finalize(stmt);
    return (double)(sl_time_mono_ns() - start) / 1e6 / QUERY_REPEAT;
}

static void bench_readings(const sl_reading_t *recs, size_t rows, size_t batch)
{
    const char *const index_sql =
        "CREATE INDEX sensor_readings_sensor_time"
        " ON sensor_readings (sensor_id, timestamp_ms)";
    sl_store_t *st;
    double r;

    st = fresh_store("raw");
    r = raw_readings(sl_store__sqlite_db(st), recs, rows, batch);
    printf("readings raw loop, no index:          %9.0f rows/s\n", r);
    sl_store_close(st);

    st = fresh_store("raw_index");
    exec_or_die(sl_store__sqlite_db(st), index_sql);
    r = raw_readings(sl_store__sqlite_db(st), recs, rows, batch);
    printf("readings raw loop, (sensor_id, ts):   %9.0f rows/s\n", r);
    sl_store_close(st);

    st = fresh_store("store");
    r = store_readings(st, recs, rows, batch);
    printf("readings sl_store_write, no index:    %9.0f rows/s\n", r);
    printf("  query one sensor, newest 100:       %9.2f ms\n",
           sensor_query_ms(st));
    sl_store_close(st);

    st = fresh_store("store_index");
    exec_or_die(sl_store__sqlite_db(st), index_sql);
    r = store_readings(st, recs, rows, batch);
    printf("readings sl_store_write, (sensor_id, ts): %5.0f rows/s\n", r);
    printf("  query one sensor, newest 100:       %9.2f ms"
           " (sl_store_readings, cannot use the index)\n",
           sensor_query_ms(st));
    printf("  same query written for the index:   %9.2f ms\n",
           indexed_query_ms(sl_store__sqlite_db(st)));
    sl_store_close(st);
}

/* Inserts rows events with random 32-hex-digit ids in time order into
 * table, which has columns (timestamp_ms, event_id, rest). */
static double raw_events(sqlite3 *db, const char *insert_sql, size_t rows,
                         size_t batch)
{
    sqlite3_stmt *stmt = NULL;
    sl_rng_t rng;
    char id[40];
    int64_t start;

    sl_rng_seed(&rng, 7);
    if (sqlite3_prepare_v2(db, insert_sql, -1, &stmt, NULL) != SQLITE_OK)
        die("prepare", sqlite3_errmsg(db));
    start = sl_time_mono_ns();
    for (size_t i = 0; i < rows; i++) {
        snprintf(id, sizeof(id), "%016llx%016llx",
                 (unsigned long long)sl_rng_next(&rng),
                 (unsigned long long)sl_rng_next(&rng));
        if (i % batch == 0)
            exec_or_die(db, "BEGIN IMMEDIATE");
        sqlite3_bind_int64(stmt, 1, T0_MS + (int64_t)i);
        sqlite3_bind_text(stmt, 2, id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            die("insert", sqlite3_errmsg(db));
        sqlite3_reset(stmt);
        if (i % batch == batch - 1 || i == rows - 1)
            exec_or_die(db, "COMMIT");
    }
    sqlite3_finalize(stmt);
    return rate(rows, start);
}

static void bench_events(size_t rows, size_t batch)
{
    const char *const insert_fmt =
        "INSERT INTO %s (timestamp_ms, event_id, event_type, user_id,"
        " session_id, device, ip_address, page, ingested_at_ms)"
        " VALUES (?1, ?2, 'page_view', 'user-0001', 'session-0001',"
        " 'mobile', '192.0.2.10', '/products/kettle', 0)"
        " ON CONFLICT DO NOTHING";
    char sql[512];
    sl_store_t *st;
    sqlite3 *db;

    st = fresh_store("events_time");
    snprintf(sql, sizeof(sql), insert_fmt, "ecommerce_events");
    printf("events raw loop, key (ts, event_id):  %9.0f rows/s\n",
           raw_events(sl_store__sqlite_db(st), sql, rows, batch));
    sl_store_close(st);

    st = fresh_store("events_id");
    db = sl_store__sqlite_db(st);
    exec_or_die(db, "CREATE TABLE events_by_id (event_id TEXT PRIMARY KEY,"
                    " timestamp_ms INTEGER NOT NULL, event_type TEXT,"
                    " user_id TEXT, session_id TEXT, device TEXT,"
                    " ip_address TEXT, page TEXT, ingested_at_ms INTEGER)"
                    " WITHOUT ROWID");
    snprintf(sql, sizeof(sql), insert_fmt, "events_by_id");
    printf("events raw loop, key event_id:        %9.0f rows/s\n",
           raw_events(db, sql, rows, batch));
    sl_store_close(st);
}

static void remove_bench_files(void)
{
    const char *names[] = {"raw",         "raw_index",   "store",
                           "store_index", "events_time", "events_id"};
    const char *suffixes[] = {"", "-wal", "-shm"};
    char path[200];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        for (size_t j = 0; j < sizeof(suffixes) / sizeof(suffixes[0]); j++) {
            snprintf(path, sizeof(path), "%s/%s.db%s", bench_dir, names[i],
                     suffixes[j]);
            unlink(path);
        }
    }
    rmdir(bench_dir);
}

int main(int argc, char **argv)
{
    size_t rows = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    size_t batch = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000;
    sl_reading_t *recs;

    if (rows == 0 || batch == 0)
        die("usage", "store_sqlite_bench [rows > 0] [batch_rows > 0]");
    snprintf(bench_dir, sizeof(bench_dir), "/tmp/sl_store_bench.XXXXXX");
    if (mkdtemp(bench_dir) == NULL)
        die("mkdtemp", bench_dir);
    sl_log_set_level(SL_LOG_WARN);

    printf("rows=%zu sensors=%d batch_rows=%zu sqlite=%s\n", rows, SENSORS,
           batch, sqlite3_libversion());
    recs = generate_readings(rows);
    bench_readings(recs, rows, batch);
    bench_events(rows, batch);

    free(recs);
    remove_bench_files();
    return 0;
}
