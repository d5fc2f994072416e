/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the SQLite store on real database files in a fresh mkdtemp
 * folder per test: migrations, batch writes and their idempotency, rows
 * the database rejects, the latest-reading table, statistics, window
 * recomputation, and failures of the database itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_int.h"
#include "util/err.h"
#include "util/rng.h"

/* 2026-01-01T00:00:00Z */
#define T0_MS INT64_C(1767225600000)

struct fixture {
    char dir[64];
    char path[128];
    sl_store_t *st;
};

/* Rows reported through the reject callback. */
struct rejects {
    int count;
    char kind[8][16];
    size_t index[8];
    char error[8][256];
};

static void record_reject(void *ctx, const char *kind, size_t index,
                          const char *error)
{
    struct rejects *r = ctx;

    if (r->count < 8) {
        snprintf(r->kind[r->count], sizeof(r->kind[0]), "%s", kind);
        r->index[r->count] = index;
        snprintf(r->error[r->count], sizeof(r->error[0]), "%s", error);
    }
    r->count++;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char err[256] = "";

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sl_store_test.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/store.db", fx->dir);
    fx->st = sl_store_open(fx->path, err, sizeof(err));
    if (fx->st == NULL)
        fail_msg("sl_store_open failed: %s", err);
    assert_int_equal(sl_store_migrate(fx->st, err, sizeof(err)), SL_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    char file[160];

    sl_store_close(fx->st);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(file, sizeof(file), "%s%s", fx->path, suffixes[i]);
        unlink(file);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* Fails unless |actual - expected| <= tolerance, showing both values. */
#define assert_close(actual, expected, tolerance)                              \
    check_close((actual), (expected), (tolerance), __FILE__, __LINE__)

static void check_close(double actual, double expected, double tolerance,
                        const char *file, int line)
{
    if (!(fabs(actual - expected) <= tolerance))
        fail_msg("%s:%d: %.17g differs from expected %.17g by more than %g",
                 file, line, actual, expected, tolerance);
}

static sl_reading_t make_reading(const char *sensor_id, int64_t ts_ms,
                                 double value)
{
    sl_reading_t rec;

    memset(&rec, 0, sizeof(rec));
    snprintf(rec.sensor_id, sizeof(rec.sensor_id), "%s", sensor_id);
    snprintf(rec.location, sizeof(rec.location), "hall-a");
    rec.timestamp_ms = ts_ms;
    rec.value = value;
    rec.sensor_type = SL_SENSOR_TEMPERATURE;
    rec.battery_level = 80;
    rec.signal_strength = -60;
    return rec;
}

static sl_event_t make_event(const char *event_id, int64_t ts_ms)
{
    sl_event_t ev;

    memset(&ev, 0, sizeof(ev));
    snprintf(ev.event_id, sizeof(ev.event_id), "%s", event_id);
    snprintf(ev.user_id, sizeof(ev.user_id), "user-1");
    snprintf(ev.session_id, sizeof(ev.session_id), "session-1");
    snprintf(ev.ip_address, sizeof(ev.ip_address), "192.0.2.10");
    ev.timestamp_ms = ts_ms;
    ev.event_type = SL_EVENT_PAGE_VIEW;
    ev.device = SL_DEVICE_MOBILE;
    return ev;
}

static int write_readings(sl_store_t *st, const sl_reading_t *recs, size_t n,
                          sl_store_result_t *result)
{
    sl_store_batch_t batch = {0};

    batch.readings = recs;
    batch.reading_count = n;
    return sl_store_write(st, &batch, result, NULL, NULL);
}

/* Runs a query returning one integer on the store's own connection. */
static int64_t query_int(sl_store_t *st, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    int64_t value = -1;

    assert_int_equal(
        sqlite3_prepare_v2(sl_store__sqlite_db(st), sql, -1, &stmt, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

static void test_migrate_twice_is_noop(void **state)
{
    struct fixture *fx = *state;
    char err[256] = "";

    assert_int_equal(sl_store_schema_version(fx->st), 3);
    assert_int_equal(
        query_int(fx->st, "SELECT count(*) FROM schema_migrations"), 3);

    assert_int_equal(sl_store_migrate(fx->st, err, sizeof(err)), SL_OK);
    assert_int_equal(sl_store_schema_version(fx->st), 3);
    assert_int_equal(
        query_int(fx->st, "SELECT count(*) FROM schema_migrations"), 3);
    assert_int_equal(sl_store_reading_count(fx->st), 0);
    assert_int_equal(sl_store_dlq_count(fx->st), 0);

    /* A second handle on the same file (the API's) reads the same version,
     * and migrating from it is a no-op too. */
    sl_store_t *other = sl_store_open(fx->path, err, sizeof(err));
    assert_non_null(other);
    assert_int_equal(sl_store_migrate(other, err, sizeof(err)), SL_OK);
    assert_int_equal(sl_store_schema_version(other), 3);
    sl_store_close(other);
}

static void test_migration_failure_names_file(void **state)
{
    struct fixture *fx = *state;
    sl_sqlite_t *sq = (sl_sqlite_t *)fx->st;
    const struct sl_embedded_file good_then_bad[] = {
        {"001_init.sql", "-- already applied, never run again\nSELECT 1;"},
        {"002_dlq_retry.sql", "-- already applied, never run again\nSELECT 1;"},
        {"010_extra.sql", "CREATE TABLE extra (x INTEGER);"},
        {"011_broken.sql",
         "CREATE TABLE half_done (x INTEGER); CREATE TABLEX oops;"},
        {NULL, NULL}};
    const struct sl_embedded_file unnumbered[] = {{"init.sql", "SELECT 1;"},
                                                  {NULL, NULL}};
    char err[256] = "";

    assert_int_equal(
        sl_sqlite__migrate_files(sq, good_then_bad, err, sizeof(err)), SL_EIO);
    assert_non_null(strstr(err, "011_broken.sql"));
    assert_non_null(strstr(err, "syntax error"));
    /* 010 committed on its own; 011 left nothing behind. */
    assert_int_equal(sl_store_schema_version(fx->st), 10);
    assert_int_equal(query_int(fx->st, "SELECT count(*) FROM sqlite_schema"
                                       " WHERE name = 'extra'"),
                     1);
    assert_int_equal(query_int(fx->st, "SELECT count(*) FROM sqlite_schema"
                                       " WHERE name = 'half_done'"),
                     0);

    err[0] = '\0';
    assert_int_equal(sl_sqlite__migrate_files(sq, unnumbered, err, sizeof(err)),
                     SL_EIO);
    assert_non_null(strstr(err, "init.sql"));
}

static void test_open_missing_dir_fails(void **state)
{
    struct fixture *fx = *state;
    char path[200];
    char err[256] = "";

    snprintf(path, sizeof(path), "%s/missing/store.db", fx->dir);
    assert_null(sl_store_open(path, err, sizeof(err)));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "unable to open"));

    err[0] = '\0';
    assert_null(sl_store_open("", err, sizeof(err)));
    assert_true(err[0] != '\0');
    err[0] = '\0';
    assert_null(sl_store_open("postgres://localhost/db", err, sizeof(err)));
    assert_non_null(strstr(err, "PostgreSQL"));
}

static void test_write_reads_back_every_field(void **state)
{
    struct fixture *fx = *state;
    sl_reading_t recs[2];
    sl_event_t evs[2];
    sl_store_batch_t batch = {0};
    sl_store_result_t result;
    sl_reading_query_t q;
    sl_reading_t out[4];
    size_t n = 0;

    recs[0] = make_reading("sensor-001", T0_MS + 1000, 21.25);
    recs[0].sensor_type = SL_SENSOR_PRESSURE;
    snprintf(recs[0].location, sizeof(recs[0].location), "roof \xc3\xa9");
    snprintf(recs[0].unit, sizeof(recs[0].unit), "hPa");
    recs[0].has_unit = true;
    recs[0].anomaly = true;
    recs[0].anomaly_score = 0.875;
    recs[0].has_score = true;
    recs[0].battery_level = 42;
    recs[0].signal_strength = -97;
    recs[1] = make_reading("sensor-002", T0_MS, -3.5);

    evs[0] = make_event("ev-full", T0_MS + 5);
    evs[0].event_type = SL_EVENT_PURCHASE;
    evs[0].device = SL_DEVICE_TABLET;
    evs[0].present = SL_EV_PRODUCT_ID | SL_EV_PRODUCT_NAME | SL_EV_CATEGORY |
                     SL_EV_QUANTITY | SL_EV_PRICE | SL_EV_TOTAL |
                     SL_EV_CURRENCY | SL_EV_PAGE | SL_EV_DURATION |
                     SL_EV_PAYMENT_METHOD | SL_EV_SHIPPING_ADDRESS |
                     SL_EV_QUERY | SL_EV_RESULTS_COUNT;
    evs[0].product_id = 9007199254740993; /* above 2^53: kept exactly */
    snprintf(evs[0].product_name, sizeof(evs[0].product_name), "kettle");
    snprintf(evs[0].category, sizeof(evs[0].category), "kitchen");
    evs[0].quantity = 3;
    evs[0].price = 19.99;
    evs[0].total = 59.97;
    snprintf(evs[0].currency, sizeof(evs[0].currency), "EUR");
    snprintf(evs[0].page, sizeof(evs[0].page), "/checkout");
    evs[0].duration_seconds = 12.5;
    snprintf(evs[0].payment_method, sizeof(evs[0].payment_method), "card");
    snprintf(evs[0].shipping_address, sizeof(evs[0].shipping_address),
             "1 Main St");
    snprintf(evs[0].query, sizeof(evs[0].query), "kettle steel");
    evs[0].results_count = 17;
    evs[1] = make_event("ev-bare", T0_MS + 6);

    batch.readings = recs;
    batch.reading_count = 2;
    batch.events = evs;
    batch.event_count = 2;
    assert_int_equal(sl_store_write(fx->st, &batch, &result, NULL, NULL),
                     SL_OK);
    assert_int_equal(result.readings_inserted, 2);
    assert_int_equal(result.events_inserted, 2);

    sl_reading_query_init(&q);
    assert_int_equal(sl_store_readings(fx->st, &q, out, 4, &n), SL_OK);
    assert_int_equal(n, 2);
    /* Newest first. */
    assert_string_equal(out[0].sensor_id, "sensor-001");
    assert_int_equal(out[0].timestamp_ms, T0_MS + 1000);
    assert_int_equal(out[0].sensor_type, SL_SENSOR_PRESSURE);
    assert_true(out[0].value == 21.25);
    assert_string_equal(out[0].location, "roof \xc3\xa9");
    assert_true(out[0].has_unit);
    assert_string_equal(out[0].unit, "hPa");
    assert_true(out[0].anomaly);
    assert_true(out[0].has_score);
    assert_true(out[0].anomaly_score == 0.875);
    assert_int_equal(out[0].battery_level, 42);
    assert_int_equal(out[0].signal_strength, -97);
    assert_string_equal(out[1].sensor_id, "sensor-002");
    assert_true(out[1].value == -3.5);
    assert_false(out[1].has_unit);
    assert_false(out[1].has_score);
    assert_false(out[1].anomaly);

    sqlite3_stmt *stmt = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(
            sl_store__sqlite_db(fx->st),
            "SELECT timestamp_ms, event_id, event_type, user_id, session_id,"
            " device, ip_address, product_id, product_name, category,"
            " quantity, price, total, currency, page, duration_seconds,"
            " payment_method, shipping_address, query, results_count,"
            " ingested_at_ms FROM ecommerce_events ORDER BY timestamp_ms",
            -1, &stmt, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(stmt, 0), T0_MS + 5);
    assert_string_equal(sqlite3_column_text(stmt, 1), "ev-full");
    assert_string_equal(sqlite3_column_text(stmt, 2), "purchase");
    assert_string_equal(sqlite3_column_text(stmt, 3), "user-1");
    assert_string_equal(sqlite3_column_text(stmt, 4), "session-1");
    assert_string_equal(sqlite3_column_text(stmt, 5), "tablet");
    assert_string_equal(sqlite3_column_text(stmt, 6), "192.0.2.10");
    assert_int_equal(sqlite3_column_int64(stmt, 7), 9007199254740993);
    assert_string_equal(sqlite3_column_text(stmt, 8), "kettle");
    assert_string_equal(sqlite3_column_text(stmt, 9), "kitchen");
    assert_int_equal(sqlite3_column_int(stmt, 10), 3);
    assert_true(sqlite3_column_double(stmt, 11) == 19.99);
    assert_true(sqlite3_column_double(stmt, 12) == 59.97);
    assert_string_equal(sqlite3_column_text(stmt, 13), "EUR");
    assert_string_equal(sqlite3_column_text(stmt, 14), "/checkout");
    assert_true(sqlite3_column_double(stmt, 15) == 12.5);
    assert_string_equal(sqlite3_column_text(stmt, 16), "card");
    assert_string_equal(sqlite3_column_text(stmt, 17), "1 Main St");
    assert_string_equal(sqlite3_column_text(stmt, 18), "kettle steel");
    assert_int_equal(sqlite3_column_int(stmt, 19), 17);
    assert_true(sqlite3_column_int64(stmt, 20) >= T0_MS);

    /* An event without optional fields stores NULL in each of them. */
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal(sqlite3_column_text(stmt, 1), "ev-bare");
    assert_string_equal(sqlite3_column_text(stmt, 2), "page_view");
    assert_string_equal(sqlite3_column_text(stmt, 5), "mobile");
    for (int col = 7; col <= 19; col++)
        assert_int_equal(sqlite3_column_type(stmt, col), SQLITE_NULL);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
}

static void test_same_batch_twice_adds_nothing(void **state)
{
    struct fixture *fx = *state;
    sl_reading_t recs[3] = {make_reading("s-1", T0_MS, 1.0),
                            make_reading("s-1", T0_MS + 1000, 2.0),
                            make_reading("s-2", T0_MS, 3.0)};
    sl_event_t evs[2] = {make_event("e-1", T0_MS), make_event("e-2", T0_MS)};
    sl_dlq_entry_t dlq;
    sl_store_batch_t batch = {0};
    sl_store_result_t result;

    memset(&dlq, 0, sizeof(dlq));
    snprintf(dlq.topic, sizeof(dlq.topic), "sensor-readings");
    dlq.partition = 2;
    dlq.offset = 77;
    dlq.payload = "\x00\x01\x02";
    dlq.payload_len = 3;
    dlq.error_class = SL_DLQ_DECODE;
    snprintf(dlq.error, sizeof(dlq.error), "bad_magic: byte 0 is 1");

    batch.readings = recs;
    batch.reading_count = 3;
    batch.events = evs;
    batch.event_count = 2;
    batch.dlq = &dlq;
    batch.dlq_count = 1;

    assert_int_equal(sl_store_write(fx->st, &batch, &result, NULL, NULL),
                     SL_OK);
    assert_int_equal(result.readings_inserted, 3);
    assert_int_equal(result.readings_duplicate, 0);
    assert_int_equal(result.events_inserted, 2);
    assert_int_equal(result.events_duplicate, 0);

    assert_int_equal(sl_store_write(fx->st, &batch, &result, NULL, NULL),
                     SL_OK);
    assert_int_equal(result.readings_inserted, 0);
    assert_int_equal(result.readings_duplicate, 3);
    assert_int_equal(result.events_inserted, 0);
    assert_int_equal(result.events_duplicate, 2);

    assert_int_equal(sl_store_reading_count(fx->st), 3);
    assert_int_equal(query_int(fx->st, "SELECT count(*) FROM ecommerce_events"),
                     2);
    assert_int_equal(sl_store_dlq_count(fx->st), 1);
    assert_int_equal(query_int(fx->st, "SELECT count(*) FROM dlq_errors"
                                       " WHERE payload = x'000102'"
                                       " AND error_class = 'decode'"
                                       " AND status = 'pending'"),
                     1);
}

/* Six readings in one batch: row 2 is a redelivery of row 1, and row 4
 * has a timestamp (INT64_MAX ms) outside the years 0001..9999 the stores
 * accept. The other four must be stored. */
static void test_bad_row_keeps_good_rows(void **state)
{
    struct fixture *fx = *state;
    sl_reading_t recs[6] = {
        make_reading("sensor-011", T0_MS, 20.5),
        make_reading("sensor-011", T0_MS + 1000, 20.6),
        make_reading("sensor-011", T0_MS + 1000, 20.6),
        make_reading("sensor-012", T0_MS, 45.0),
        make_reading("sensor-012", INT64_MAX, 46.0),
        make_reading("sensor-012", T0_MS + 1000, 45.5),
    };
    sl_event_t evs[2] = {make_event("", T0_MS), make_event("e-ok", T0_MS)};
    sl_dlq_entry_t dlq[2];
    sl_store_batch_t batch = {0};
    sl_store_result_t result;
    struct rejects rej = {0};

    memset(dlq, 0, sizeof(dlq));
    snprintf(dlq[0].topic, sizeof(dlq[0].topic), "sensor-readings");
    dlq[0].offset = -1;
    dlq[0].error_class = (sl_dlq_class_t)42; /* no such class */
    snprintf(dlq[1].topic, sizeof(dlq[1].topic), "sensor-readings");
    dlq[1].offset = 4;
    dlq[1].error_class = SL_DLQ_STORAGE;
    snprintf(dlq[1].error, sizeof(dlq[1].error), "db_rejected");

    batch.readings = recs;
    batch.reading_count = 6;
    batch.events = evs;
    batch.event_count = 2;
    batch.dlq = dlq;
    batch.dlq_count = 2;
    assert_int_equal(
        sl_store_write(fx->st, &batch, &result, record_reject, &rej), SL_OK);

    assert_int_equal(result.readings_inserted, 4);
    assert_int_equal(result.readings_duplicate, 1);
    assert_int_equal(result.events_inserted, 1);
    assert_int_equal(rej.count, 3);
    assert_string_equal(rej.kind[0], "reading");
    assert_int_equal(rej.index[0], 4);
    assert_non_null(strstr(rej.error[0], "CHECK constraint failed"));
    assert_string_equal(rej.kind[1], "event");
    assert_int_equal(rej.index[1], 0);
    assert_string_equal(rej.kind[2], "dlq");
    assert_int_equal(rej.index[2], 0);

    assert_int_equal(sl_store_reading_count(fx->st), 4);
    assert_int_equal(query_int(fx->st, "SELECT count(*) FROM sensor_readings"
                                       " WHERE sensor_id = 'sensor-012'"
                                       " AND value IN (45.0, 45.5)"),
                     2);
    assert_int_equal(query_int(fx->st, "SELECT count(*) FROM ecommerce_events"),
                     1);
    assert_int_equal(sl_store_dlq_count(fx->st), 1);
    /* The rejected reading left no trace in the latest-reading table. */
    assert_int_equal(query_int(fx->st, "SELECT timestamp_ms FROM sensor_latest"
                                       " WHERE sensor_id = 'sensor-012'"),
                     T0_MS + 1000);
}

static double latest_value(sl_store_t *st, const char *sensor_id)
{
    sqlite3_stmt *stmt = NULL;
    double value;

    assert_int_equal(sqlite3_prepare_v2(sl_store__sqlite_db(st),
                                        "SELECT value FROM sensor_latest"
                                        " WHERE sensor_id = ?1",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(stmt, 1, sensor_id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    value = sqlite3_column_double(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

/* Readings of sensor-050 with value = seq and ts = T0 + seq seconds, with
 * seq 4 delivered after seq 6, as a producer retry can reorder them. */
static void test_latest_keeps_newest_event_time(void **state)
{
    struct fixture *fx = *state;
    sl_reading_t first[5], late, in_batch[2];
    const int seqs[5] = {1, 2, 3, 5, 6};

    for (int i = 0; i < 5; i++)
        first[i] =
            make_reading("sensor-050", T0_MS + seqs[i] * 1000, (double)seqs[i]);
    assert_int_equal(write_readings(fx->st, first, 5, NULL), SL_OK);
    assert_true(latest_value(fx->st, "sensor-050") == 6.0);

    late = make_reading("sensor-050", T0_MS + 4000, 4.0);
    assert_int_equal(write_readings(fx->st, &late, 1, NULL), SL_OK);
    assert_true(latest_value(fx->st, "sensor-050") == 6.0);
    assert_int_equal(sl_store_reading_count(fx->st), 6);

    /* Within one batch too, the newer event time wins over the later
     * position. */
    in_batch[0] = make_reading("sensor-051", T0_MS + 9000, 9.0);
    in_batch[1] = make_reading("sensor-051", T0_MS + 7000, 7.0);
    assert_int_equal(write_readings(fx->st, in_batch, 2, NULL), SL_OK);
    assert_true(latest_value(fx->st, "sensor-051") == 9.0);

    /* A newer reading does replace it. */
    late = make_reading("sensor-050", T0_MS + 10000, 10.0);
    assert_int_equal(write_readings(fx->st, &late, 1, NULL), SL_OK);
    assert_true(latest_value(fx->st, "sensor-050") == 10.0);
}

/* The latest row takes the sensor type of the newest reading only: the
 * upsert leaves the type out and a second statement corrects it. */
static void test_latest_type_follows_newest(void **state)
{
    struct fixture *fx = *state;
    sl_reading_t rec = make_reading("sensor-052", T0_MS + 2000, 2.0);

    rec.sensor_type = SL_SENSOR_TEMPERATURE;
    assert_int_equal(write_readings(fx->st, &rec, 1, NULL), SL_OK);
    rec = make_reading("sensor-052", T0_MS + 3000, 3.0);
    rec.sensor_type = SL_SENSOR_HUMIDITY;
    assert_int_equal(write_readings(fx->st, &rec, 1, NULL), SL_OK);
    assert_int_equal(query_int(fx->st, "SELECT count(*) FROM sensor_latest"
                                       " WHERE sensor_id = 'sensor-052'"
                                       " AND sensor_type = 'humidity'"),
                     1);

    /* An older reading of a third type changes neither value nor type. */
    rec = make_reading("sensor-052", T0_MS + 1000, 1.0);
    rec.sensor_type = SL_SENSOR_PRESSURE;
    assert_int_equal(write_readings(fx->st, &rec, 1, NULL), SL_OK);
    assert_true(latest_value(fx->st, "sensor-052") == 3.0);
    assert_int_equal(query_int(fx->st, "SELECT count(*) FROM sensor_latest"
                                       " WHERE sensor_type = 'humidity'"
                                       " AND sensor_id = 'sensor-052'"),
                     1);
}

static void test_stats_match_raw_rows(void **state)
{
    struct fixture *fx = *state;
    enum { PER_SENSOR = 600, SENSORS = 3 };
    static sl_reading_t recs[PER_SENSOR * SENSORS];
    const int64_t from = T0_MS + 100 * 1000, to = T0_MS + 450 * 1000;
    double sum[SENSORS] = {0}, min[SENSORS], max[SENSORS];
    int64_t count[SENSORS] = {0}, anomalies[SENSORS] = {0};
    sl_sensor_stats_t stats[8];
    sl_rng_t rng;
    size_t n = 0;

    sl_rng_seed(&rng, 7);
    for (int s = 0; s < SENSORS; s++) {
        char id[24];

        snprintf(id, sizeof(id), "stat-%d", s);
        for (int i = 0; i < PER_SENSOR; i++) {
            int64_t ts = T0_MS + i * 1000;
            sl_reading_t *rec = &recs[s * PER_SENSOR + i];

            *rec = make_reading(id, ts, 20.0 + 5.0 * sl_rng_normal(&rng));
            rec->sensor_type =
                s == 2 ? SL_SENSOR_HUMIDITY : SL_SENSOR_TEMPERATURE;
            rec->anomaly = sl_rng_below(&rng, 10) == 0;
            if (ts < from || ts >= to)
                continue;
            if (count[s] == 0 || rec->value < min[s])
                min[s] = rec->value;
            if (count[s] == 0 || rec->value > max[s])
                max[s] = rec->value;
            sum[s] += rec->value;
            count[s]++;
            anomalies[s] += rec->anomaly;
        }
    }
    assert_int_equal(write_readings(fx->st, recs, PER_SENSOR * SENSORS, NULL),
                     SL_OK);

    assert_int_equal(sl_store_sensor_stats(fx->st, from, to, -1, stats, 8, &n),
                     SL_OK);
    assert_int_equal(n, SENSORS);
    for (int s = 0; s < SENSORS; s++) {
        char id[24];

        snprintf(id, sizeof(id), "stat-%d", s);
        assert_string_equal(stats[s].sensor_id, id);
        assert_int_equal(stats[s].count, count[s]);
        assert_int_equal(stats[s].anomaly_count, anomalies[s]);
        assert_true(stats[s].min == min[s]);
        assert_true(stats[s].max == max[s]);
        assert_close(stats[s].avg, sum[s] / (double)count[s], 1e-9);
        assert_int_equal(stats[s].first_ms, from);
        assert_int_equal(stats[s].last_ms, to - 1000);
    }
    assert_int_equal(stats[2].sensor_type, SL_SENSOR_HUMIDITY);

    assert_int_equal(sl_store_sensor_stats(fx->st, from, to, SL_SENSOR_HUMIDITY,
                                           stats, 8, &n),
                     SL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(stats[0].sensor_id, "stat-2");
    assert_int_equal(stats[0].count, count[2]);

    /* max bounds the output. */
    assert_int_equal(sl_store_sensor_stats(fx->st, from, to, -1, stats, 2, &n),
                     SL_OK);
    assert_int_equal(n, 2);
}

/* Inserts one reading with a non-finite value the way another program
 * would, bypassing sl_store_write. */
static void insert_raw_value(sl_store_t *st, const char *sensor_id,
                             int64_t ts_ms, double value)
{
    sqlite3_stmt *stmt = NULL;

    assert_int_equal(
        sqlite3_prepare_v2(
            sl_store__sqlite_db(st),
            "INSERT INTO sensor_readings (timestamp_ms, sensor_id,"
            " sensor_type, value, location, anomaly, battery_level,"
            " signal_strength, ingested_at_ms)"
            " VALUES (?1, ?2, 'temperature', ?3, 'x', 1, 50, -50, 1)",
            -1, &stmt, NULL),
        SQLITE_OK);
    sqlite3_bind_int64(stmt, 1, ts_ms);
    sqlite3_bind_text(stmt, 2, sensor_id, -1, SQLITE_STATIC);
    sqlite3_bind_double(stmt, 3, value);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
}

static void test_non_finite_values_skipped_by_stats(void **state)
{
    struct fixture *fx = *state;
    sl_reading_t recs[2] = {make_reading("nan-1", T0_MS, 10.0),
                            make_reading("nan-1", T0_MS + 1000, 30.0)};
    sl_sensor_stats_t stats[2];
    sl_reading_t out[8];
    sl_reading_query_t q;
    size_t n = 0;

    assert_int_equal(write_readings(fx->st, recs, 2, NULL), SL_OK);
    insert_raw_value(fx->st, "nan-1", T0_MS + 2000, NAN);
    insert_raw_value(fx->st, "nan-1", T0_MS + 3000, INFINITY);
    insert_raw_value(fx->st, "nan-1", T0_MS + 4000, -INFINITY);
    assert_int_equal(sl_store_reading_count(fx->st), 5);

    assert_int_equal(
        sl_store_sensor_stats(fx->st, INT64_MIN, INT64_MAX, -1, stats, 2, &n),
        SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(stats[0].count, 2);
    assert_int_equal(stats[0].anomaly_count, 0);
    assert_true(stats[0].min == 10.0);
    assert_true(stats[0].max == 30.0);
    assert_true(stats[0].avg == 20.0);
    assert_int_equal(stats[0].last_ms, T0_MS + 1000);

    /* Readings return the rows, non-finite values included, for the API to
     * render as null. */
    sl_reading_query_init(&q);
    assert_int_equal(sl_store_readings(fx->st, &q, out, 8, &n), SL_OK);
    assert_int_equal(n, 5);
    assert_true(isinf(out[0].value) && out[0].value < 0);
    assert_true(isinf(out[1].value) && out[1].value > 0);
    assert_true(isnan(out[2].value));
    assert_true(out[3].value == 30.0);

    /* A recompute over the window skips them as well. */
    sl_window_key_t key = {.sensor_type = SL_SENSOR_TEMPERATURE,
                           .window_start_ms = T0_MS,
                           .window_end_ms = T0_MS + 60000};
    sl_store_batch_t batch = {.recompute = &key, .recompute_count = 1};
    sl_aggregate_t agg;

    snprintf(key.sensor_id, sizeof(key.sensor_id), "nan-1");
    assert_int_equal(sl_store_write(fx->st, &batch, NULL, NULL, NULL), SL_OK);
    assert_int_equal(
        sl_store_aggregates(fx->st, "nan-1", T0_MS, T0_MS + 1, &agg, 1, &n),
        SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(agg.count, 2);
    assert_true(agg.avg == 20.0);
    assert_true(agg.stddev == 10.0);
}

static void test_readings_filters(void **state)
{
    struct fixture *fx = *state;
    sl_reading_t recs[6];
    sl_reading_t out[8];
    sl_reading_query_t q;
    size_t n = 0;

    for (int i = 0; i < 6; i++) {
        recs[i] = make_reading(i % 2 ? "odd" : "even", T0_MS + i * 1000, i);
        recs[i].anomaly = i == 3 || i == 4;
        recs[i].sensor_type = i < 2 ? SL_SENSOR_POWER : SL_SENSOR_TEMPERATURE;
    }
    assert_int_equal(write_readings(fx->st, recs, 6, NULL), SL_OK);

    sl_reading_query_init(&q);
    q.sensor_id = "odd";
    assert_int_equal(sl_store_readings(fx->st, &q, out, 8, &n), SL_OK);
    assert_int_equal(n, 3);
    assert_true(out[0].value == 5.0);
    assert_true(out[1].value == 3.0);
    assert_true(out[2].value == 1.0);

    sl_reading_query_init(&q);
    q.sensor_type = SL_SENSOR_POWER;
    assert_int_equal(sl_store_readings(fx->st, &q, out, 8, &n), SL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].sensor_type, SL_SENSOR_POWER);

    sl_reading_query_init(&q);
    q.anomalies_only = true;
    assert_int_equal(sl_store_readings(fx->st, &q, out, 8, &n), SL_OK);
    assert_int_equal(n, 2);
    assert_true(out[0].value == 4.0);
    assert_true(out[1].value == 3.0);

    /* from is inclusive, to exclusive. */
    sl_reading_query_init(&q);
    q.from_ms = T0_MS + 2000;
    q.to_ms = T0_MS + 4000;
    assert_int_equal(sl_store_readings(fx->st, &q, out, 8, &n), SL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].timestamp_ms, T0_MS + 3000);
    assert_int_equal(out[1].timestamp_ms, T0_MS + 2000);

    /* The smaller of limit and max bounds the result. */
    sl_reading_query_init(&q);
    q.limit = 4;
    assert_int_equal(sl_store_readings(fx->st, &q, out, 8, &n), SL_OK);
    assert_int_equal(n, 4);
    assert_int_equal(sl_store_readings(fx->st, &q, out, 3, &n), SL_OK);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].timestamp_ms, T0_MS + 5000);
}

/* Many sensors' windows recomputed in one batch, one listed twice: each
 * gets exactly its own rows. */
static void test_window_recompute_many_sensors(void **state)
{
    struct fixture *fx = *state;
    enum { SENSORS = 50, PER = 4 };
    sl_reading_t recs[SENSORS * PER];
    sl_window_key_t keys[SENSORS + 1];
    sl_store_batch_t batch = {0};
    sl_aggregate_t out[2];
    size_t n = 0;

    for (int s = 0; s < SENSORS; s++) {
        char id[16];
        snprintf(id, sizeof(id), "many-%02d", s);
        for (int k = 0; k < PER; k++)
            recs[s * PER + k] =
                make_reading(id, T0_MS + k * 1000, (double)(s * 10 + k));
        memset(&keys[s], 0, sizeof(keys[s]));
        snprintf(keys[s].sensor_id, sizeof(keys[s].sensor_id), "%s", id);
        keys[s].sensor_type = SL_SENSOR_TEMPERATURE;
        keys[s].window_start_ms = T0_MS;
        keys[s].window_end_ms = T0_MS + 60000;
    }
    keys[SENSORS] = keys[7];
    batch.readings = recs;
    batch.reading_count = SENSORS * PER;
    batch.recompute = keys;
    batch.recompute_count = SENSORS + 1;
    assert_int_equal(sl_store_write(fx->st, &batch, NULL, NULL, NULL), SL_OK);

    for (int s = 0; s < SENSORS; s++) {
        assert_int_equal(sl_store_aggregates(fx->st, keys[s].sensor_id,
                                             INT64_MIN, INT64_MAX, out, 2, &n),
                         SL_OK);
        assert_int_equal(n, 1);
        assert_int_equal(out[0].count, PER);
        assert_true(out[0].min == (double)(s * 10));
        assert_true(out[0].max == (double)(s * 10 + PER - 1));
        assert_close(out[0].avg, s * 10 + 1.5, 1e-12);
    }
}

static void test_window_recompute_from_raw_rows(void **state)
{
    struct fixture *fx = *state;
    const int64_t start = T0_MS, end = T0_MS + 60000;
    const double values[5] = {2.0, 4.0, 4.0, 5.0, 7.0};
    sl_reading_t recs[6];
    sl_aggregate_t stale = {.sensor_type = SL_SENSOR_TEMPERATURE,
                            .window_start_ms = start,
                            .window_end_ms = end,
                            .count = 4,
                            .min = 2.0,
                            .max = 5.0,
                            .avg = 3.75,
                            .stddev = 1.0};
    sl_window_key_t keys[2] = {{.sensor_type = SL_SENSOR_TEMPERATURE,
                                .window_start_ms = start,
                                .window_end_ms = end},
                               {.sensor_type = SL_SENSOR_TEMPERATURE,
                                .window_start_ms = end,
                                .window_end_ms = end + 60000}};
    sl_store_batch_t batch = {0};
    sl_aggregate_t out[4];
    size_t n = 0;

    snprintf(stale.sensor_id, sizeof(stale.sensor_id), "win-1");
    snprintf(keys[0].sensor_id, sizeof(keys[0].sensor_id), "win-1");
    snprintf(keys[1].sensor_id, sizeof(keys[1].sensor_id), "win-1");
    for (int i = 0; i < 5; i++)
        recs[i] = make_reading("win-1", start + i * 1000, values[i]);
    /* Another sensor in the same window and a row of the next window must
     * not count. */
    recs[5] = make_reading("win-2", start + 500, 100.0);

    /* First the processor's aggregate of four readings, plus a stale row
     * for the next window that has no readings at all. */
    sl_aggregate_t stale_next = stale;
    stale_next.window_start_ms = end;
    stale_next.window_end_ms = end + 60000;
    sl_aggregate_t first[2] = {stale, stale_next};
    batch.aggregates = first;
    batch.aggregate_count = 2;
    assert_int_equal(sl_store_write(fx->st, &batch, NULL, NULL, NULL), SL_OK);
    assert_int_equal(
        sl_store_aggregates(fx->st, "win-1", INT64_MIN, INT64_MAX, out, 4, &n),
        SL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].count, 4);

    /* Then the raw rows, the late one included, with recompute entries. */
    memset(&batch, 0, sizeof(batch));
    batch.readings = recs;
    batch.reading_count = 6;
    batch.recompute = keys;
    batch.recompute_count = 2;
    assert_int_equal(sl_store_write(fx->st, &batch, NULL, NULL, NULL), SL_OK);

    assert_int_equal(
        sl_store_aggregates(fx->st, "win-1", INT64_MIN, INT64_MAX, out, 4, &n),
        SL_OK);
    assert_int_equal(n, 1); /* the empty window's row is gone */
    assert_string_equal(out[0].sensor_id, "win-1");
    assert_int_equal(out[0].window_start_ms, start);
    assert_int_equal(out[0].window_end_ms, end);
    assert_int_equal(out[0].count, 5);
    assert_true(out[0].min == 2.0);
    assert_true(out[0].max == 7.0);
    assert_close(out[0].avg, 4.4, 1e-12);
    /* Population variance of {2,4,4,5,7} is 2.64. */
    assert_close(out[0].stddev, sqrt(2.64), 1e-12);

    /* All sensors: ordered by window start, then sensor. */
    stale.window_start_ms = start;
    snprintf(stale.sensor_id, sizeof(stale.sensor_id), "win-0");
    memset(&batch, 0, sizeof(batch));
    batch.aggregates = &stale;
    batch.aggregate_count = 1;
    assert_int_equal(sl_store_write(fx->st, &batch, NULL, NULL, NULL), SL_OK);
    assert_int_equal(
        sl_store_aggregates(fx->st, NULL, start, start + 1, out, 4, &n), SL_OK);
    assert_int_equal(n, 2);
    assert_string_equal(out[0].sensor_id, "win-0");
    assert_string_equal(out[1].sensor_id, "win-1");
}

static void test_write_on_read_only_db_fails(void **state)
{
    struct fixture *fx = *state;
    sl_reading_t rec = make_reading("ro-1", T0_MS, 1.0);
    sl_store_result_t result = {.readings_inserted = 99};
    char location[200];
    char err[256] = "";
    sl_store_t *ro;

    /* The URI form works as root too, which chmod would not. */
    snprintf(location, sizeof(location), "sqlite:file:%s?mode=ro", fx->path);
    ro = sl_store_open(location, err, sizeof(err));
    if (ro == NULL)
        fail_msg("read-only open failed: %s", err);

    assert_int_equal(write_readings(ro, &rec, 1, &result), SL_EIO);
    assert_int_equal(result.readings_inserted, 0);
    assert_int_equal(sl_store_reading_count(ro), 0);
    sl_store_close(ro);

    assert_int_equal(write_readings(fx->st, &rec, 1, NULL), SL_OK);
    assert_int_equal(sl_store_reading_count(fx->st), 1);
}

static void test_write_times_out_on_lock(void **state)
{
    struct fixture *fx = *state;
    sl_reading_t rec = make_reading("busy-1", T0_MS, 1.0);
    char location[200];
    char err[256] = "";
    sqlite3 *holder = NULL;
    sl_store_t *st;

    snprintf(location, sizeof(location), "file:%s?busy_timeout_ms=50",
             fx->path);
    st = sl_store_open(location, err, sizeof(err));
    if (st == NULL)
        fail_msg("open failed: %s", err);

    assert_int_equal(sqlite3_open(fx->path, &holder), SQLITE_OK);
    assert_int_equal(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(write_readings(st, &rec, 1, NULL), SL_EIO);

    assert_int_equal(sqlite3_exec(holder, "COMMIT", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(holder);
    assert_int_equal(write_readings(st, &rec, 1, NULL), SL_OK);
    assert_int_equal(sl_store_reading_count(st), 1);
    sl_store_close(st);
}

/* A database that fills up half way through a batch keeps none of it. */
static void test_disk_full_commits_nothing(void **state)
{
    struct fixture *fx = *state;
    enum { ROWS = 20000 };
    sl_reading_t *recs = calloc(ROWS, sizeof(*recs));
    sqlite3 *db = sl_store__sqlite_db(fx->st);
    struct rejects rej = {0};
    sl_store_batch_t batch = {0};
    int64_t pages;

    assert_non_null(recs);
    for (int i = 0; i < ROWS; i++)
        recs[i] = make_reading("full-1", T0_MS + i, (double)i);
    assert_int_equal(write_readings(fx->st, recs, 10, NULL), SL_OK);

    /* Emulate a full disk: cap the file a few pages above its size. */
    pages = query_int(fx->st, "PRAGMA page_count");
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
             (long long)pages + 5);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);

    batch.readings = recs + 10;
    batch.reading_count = ROWS - 10;
    assert_int_equal(sl_store_write(fx->st, &batch, NULL, record_reject, &rej),
                     SL_EIO);
    assert_int_equal(rej.count, 0);
    assert_int_equal(sl_store_reading_count(fx->st), 10);
    assert_int_equal(sqlite3_get_autocommit(db), 1);

    /* Once space is back, the same batch goes in whole. */
    assert_int_equal(sqlite3_exec(db, "PRAGMA max_page_count = 1073741823",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sl_store_write(fx->st, &batch, NULL, NULL, NULL), SL_OK);
    assert_int_equal(sl_store_reading_count(fx->st), ROWS);
    free(recs);
}

static void test_invalid_arguments_rejected(void **state)
{
    struct fixture *fx = *state;
    sl_store_batch_t batch = {.reading_count = 1};
    sl_reading_query_t q;
    size_t n = 7;

    assert_int_equal(sl_store_write(fx->st, &batch, NULL, NULL, NULL),
                     SL_EINVAL);
    assert_int_equal(sl_store_write(NULL, &batch, NULL, NULL, NULL), SL_EINVAL);
    sl_reading_query_init(&q);
    assert_int_equal(sl_store_readings(fx->st, &q, NULL, 4, &n), SL_EINVAL);
    assert_int_equal(n, 0);
    assert_int_equal(sl_store_reading_count(NULL), -1);
    assert_string_equal(sl_dlq_class_name(SL_DLQ_VALIDATION), "validation");
    assert_string_equal(sl_dlq_status_name(SL_DLQ_DEAD), "dead");
    sl_store_close(NULL);
}

/* A deferring writer's batches leave sensor_latest alone; its latest-only
 * batch then sets the rows, with the flag and score the stored reading
 * has (a detector may have set them first), and keeps a newer row. */
static void test_deferred_latest_written_apart(void **state)
{
    struct fixture *fx = *state;
    sl_reading_t recs[2] = {make_reading("defer-1", T0_MS + 1000, 1.0),
                            make_reading("defer-1", T0_MS + 2000, 2.0)};
    sl_store_batch_t batch = {
        .readings = recs, .reading_count = 2, .latest_deferred = true};
    struct rejects rejects = {0};

    assert_int_equal(sl_store_write(fx->st, &batch, NULL, NULL, NULL), SL_OK);
    assert_int_equal(sl_store_reading_count(fx->st), 2);
    assert_int_equal(query_int(fx->st, "SELECT count(*) FROM sensor_latest"),
                     0);
    assert_int_equal(
        sqlite3_exec(sl_store__sqlite_db(fx->st),
                     "UPDATE sensor_readings SET anomaly = 1,"
                     " anomaly_score = 0.5 WHERE sensor_id = 'defer-1'"
                     " AND value = 2.0",
                     NULL, NULL, NULL),
        SQLITE_OK);

    sl_store_batch_t latest = {
        .latest_deferred = true, .latest = &recs[1], .latest_count = 1};
    assert_int_equal(
        sl_store_write(fx->st, &latest, NULL, record_reject, &rejects), SL_OK);
    assert_int_equal(rejects.count, 0);
    assert_true(latest_value(fx->st, "defer-1") == 2.0);
    assert_int_equal(query_int(fx->st, "SELECT anomaly * 1000 +"
                                       " anomaly_score * 1000 FROM"
                                       " sensor_latest WHERE sensor_id ="
                                       " 'defer-1'"),
                     1500);

    /* An older reading handed over later does not replace it. */
    latest.latest = &recs[0];
    assert_int_equal(sl_store_write(fx->st, &latest, NULL, NULL, NULL), SL_OK);
    assert_true(latest_value(fx->st, "defer-1") == 2.0);
}

/* Writes count batches of 500 readings of one sensor, 1 ms apart. */
static void write_many(sl_store_t *st, int batches)
{
    static sl_reading_t recs[500];

    for (int b = 0; b < batches; b++) {
        for (int i = 0; i < 500; i++)
            recs[i] = make_reading("wal-1", T0_MS + b * 500 + i, i);
        assert_int_equal(write_readings(st, recs, 500, NULL), SL_OK);
    }
}

/* Opens a second store in the fixture's folder with URI parameters. */
static sl_store_t *open_with(struct fixture *fx, const char *params, char *path,
                             size_t path_size)
{
    char uri[256], err[256] = "";
    sl_store_t *st;

    snprintf(path, path_size, "%s/wal.db", fx->dir);
    snprintf(uri, sizeof(uri), "file:%s?%s", path, params);
    st = sl_store_open(uri, err, sizeof(err));
    if (st == NULL)
        fail_msg("sl_store_open failed: %s", err);
    assert_int_equal(sl_store_migrate(st, err, sizeof(err)), SL_OK);
    return st;
}

static void remove_db(const char *path)
{
    const char *suffixes[] = {"", "-wal", "-shm"};
    char file[200];

    for (size_t i = 0; i < 3; i++) {
        snprintf(file, sizeof(file), "%s%s", path, suffixes[i]);
        unlink(file);
    }
}

/* Past wal_background_pages, commits leave the checkpoint to the store's
 * thread, and every row is still there. */
static void test_checkpoints_run_in_background(void **state)
{
    char path[160];
    sl_store_t *st =
        open_with(*state, "wal_background_pages=20", path, sizeof(path));
    uint64_t background = 0, in_place = 0;

    write_many(st, 40);
    for (int i = 0; i < 500 && background == 0; i++) {
        sl_store__sqlite_checkpoints(st, &background, &in_place);
        if (background == 0)
            usleep(10000);
    }
    assert_true(background >= 1);
    assert_int_equal(in_place, 0);
    assert_int_equal(sl_store_reading_count(st), 40 * 500);
    sl_store_close(st);
    remove_db(path);
}

/* With no background checkpoint asked for, a commit past
 * wal_inline_pages checkpoints in place, so the WAL stays near that size
 * instead of holding every page written. */
static void test_inline_checkpoint_bounds_wal(void **state)
{
    char path[160], wal[200];
    sl_store_t *st = open_with(*state,
                               "wal_background_pages=1000000&"
                               "wal_inline_pages=64",
                               path, sizeof(path));
    uint64_t background = 0, in_place = 0;
    struct stat info;

    write_many(st, 60);
    sl_store__sqlite_checkpoints(st, &background, &in_place);
    assert_true(in_place >= 1);
    assert_int_equal(background, 0);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    assert_int_equal(stat(wal, &info), 0);
    /* 60 batches write well over 1 MiB of pages. */
    assert_true(info.st_size < 1024 * 1024);
    assert_int_equal(sl_store_reading_count(st), 60 * 500);
    sl_store_close(st);
    remove_db(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrate_twice_is_noop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_migration_failure_names_file,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_missing_dir_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_reads_back_every_field,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_batch_twice_adds_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_row_keeps_good_rows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_latest_type_follows_newest, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_latest_keeps_newest_event_time,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_match_raw_rows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_non_finite_values_skipped_by_stats,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_readings_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_recompute_many_sensors,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_recompute_from_raw_rows,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_on_read_only_db_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_times_out_on_lock, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_commits_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_invalid_arguments_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deferred_latest_written_apart,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_run_in_background,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_inline_checkpoint_bounds_wal,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
