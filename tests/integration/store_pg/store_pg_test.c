/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the PostgreSQL store on a throwaway cluster started by
 * pg_harness: migrations, batch writes and their idempotency, one bad row
 * in a COPY batch, the latest-reading table, statistics, window
 * recomputation, non-finite values, dead-letter rows, detector results,
 * batches that defer the latest-reading rows, the materialized views, and
 * a server stopped and restarted mid-test.
 * Every test starts from empty tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pg_harness.h"
#include "store/store.h"
#include "util/err.h"

/* 2026-01-01T00:00:00Z */
#define T0_MS INT64_C(1767225600000)

struct fixture {
    sl_pg_harness_t pg;
    sl_store_t *st;
    PGconn *check; /* a second connection, for assertions in SQL */
};

static struct fixture fx;

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

static int group_setup(void **state)
{
    char err[512] = "";

    (void)state;
    if (sl_pg_harness_start(&fx.pg, err, sizeof(err)) != 0)
        fail_msg("starting PostgreSQL failed: %s", err);
    fx.st = sl_store_open(fx.pg.url, err, sizeof(err));
    if (fx.st == NULL)
        fail_msg("sl_store_open failed: %s", err);
    if (sl_store_migrate(fx.st, err, sizeof(err)) != SL_OK)
        fail_msg("sl_store_migrate failed: %s", err);
    fx.check = PQconnectdb(fx.pg.url);
    if (PQstatus(fx.check) != CONNECTION_OK)
        fail_msg("check connection failed: %s", PQerrorMessage(fx.check));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    PQfinish(fx.check);
    sl_store_close(fx.st);
    sl_pg_harness_destroy(&fx.pg);
    return 0;
}

/* Runs sql on the check connection, reconnecting it after an outage. */
static PGresult *check_exec(const char *sql)
{
    PGresult *res;

    if (PQstatus(fx.check) != CONNECTION_OK)
        PQreset(fx.check);
    res = PQexec(fx.check, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s failed: %s", sql, PQerrorMessage(fx.check));
    return res;
}

static void check_run(const char *sql)
{
    PQclear(check_exec(sql));
}

static int64_t query_int(const char *sql)
{
    PGresult *res = check_exec(sql);
    int64_t value;

    assert_int_equal(PQntuples(res), 1);
    value = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return value;
}

/* Copies the first column of the first row into out. */
static void query_text(const char *sql, char *out, size_t out_size)
{
    PGresult *res = check_exec(sql);

    assert_int_equal(PQntuples(res), 1);
    snprintf(out, out_size, "%s",
             PQgetisnull(res, 0, 0) ? "NULL" : PQgetvalue(res, 0, 0));
    PQclear(res);
}

static int setup(void **state)
{
    (void)state;
    check_run("TRUNCATE sensor_readings, sensor_latest, ecommerce_events,"
              " aggregated_metrics, alerts, dlq_errors RESTART IDENTITY");
    return 0;
}

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

static int write_readings(const sl_reading_t *recs, size_t n,
                          sl_store_result_t *result)
{
    sl_store_batch_t batch = {0};

    batch.readings = recs;
    batch.reading_count = n;
    return sl_store_write(fx.st, &batch, result, NULL, NULL);
}

/* Stores rec through the detector's path, flagged with score, as the
 * detector does when it scores a reading before the processor stores it. */
static void store_flagged(sl_reading_t rec, double score)
{
    sl_store_detect_result_t det;

    rec.anomaly = true;
    rec.anomaly_score = score;
    rec.has_score = true;
    assert_int_equal(
        sl_store_record_detections(fx.st, &rec, 1, NULL, 0, NULL, &det), SL_OK);
}

static void test_migrate_twice_is_noop(void **state)
{
    char err[256] = "";

    (void)state;
    assert_int_equal(sl_store_schema_version(fx.st), 5);
    assert_int_equal(sl_store_migrate(fx.st, err, sizeof(err)), SL_OK);
    assert_int_equal(sl_store_schema_version(fx.st), 5);
    assert_int_equal(query_int("SELECT count(*) FROM schema_migrations"), 5);
}

static void test_write_reads_back_every_field(void **state)
{
    sl_reading_t recs[2];
    sl_event_t evs[2];
    sl_store_batch_t batch = {0};
    sl_store_result_t result;
    sl_reading_query_t q;
    sl_reading_t out[4];
    size_t n = 0;
    PGresult *res;

    (void)state;
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
    recs[1] = make_reading("sensor-002", T0_MS, 0.1 + 0.2);

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
    assert_int_equal(sl_store_write(fx.st, &batch, &result, NULL, NULL), SL_OK);
    assert_int_equal(result.readings_inserted, 2);
    assert_int_equal(result.events_inserted, 2);

    sl_reading_query_init(&q);
    assert_int_equal(sl_store_readings(fx.st, &q, out, 4, &n), SL_OK);
    assert_int_equal(n, 2);
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
    /* 0.30000000000000004 has no short decimal form: exact round trip. */
    assert_true(out[1].value == 0.1 + 0.2);
    assert_false(out[1].has_unit);
    assert_false(out[1].has_score);
    assert_false(out[1].anomaly);

    res = check_exec(
        "SELECT timestamp_ms, event_id, event_type, user_id, session_id,"
        " device, ip_address, product_id, product_name, category,"
        " quantity, price, total, currency, page, duration_seconds,"
        " payment_method, shipping_address, query, results_count,"
        " ingested_at_ms FROM ecommerce_events ORDER BY timestamp_ms");
    assert_int_equal(PQntuples(res), 2);
    assert_int_equal(strtoll(PQgetvalue(res, 0, 0), NULL, 10), T0_MS + 5);
    assert_string_equal(PQgetvalue(res, 0, 1), "ev-full");
    assert_string_equal(PQgetvalue(res, 0, 2), "purchase");
    assert_string_equal(PQgetvalue(res, 0, 3), "user-1");
    assert_string_equal(PQgetvalue(res, 0, 4), "session-1");
    assert_string_equal(PQgetvalue(res, 0, 5), "tablet");
    assert_string_equal(PQgetvalue(res, 0, 6), "192.0.2.10");
    assert_string_equal(PQgetvalue(res, 0, 7), "9007199254740993");
    assert_string_equal(PQgetvalue(res, 0, 8), "kettle");
    assert_string_equal(PQgetvalue(res, 0, 9), "kitchen");
    assert_string_equal(PQgetvalue(res, 0, 10), "3");
    assert_true(strtod(PQgetvalue(res, 0, 11), NULL) == 19.99);
    assert_true(strtod(PQgetvalue(res, 0, 12), NULL) == 59.97);
    assert_string_equal(PQgetvalue(res, 0, 13), "EUR");
    assert_string_equal(PQgetvalue(res, 0, 14), "/checkout");
    assert_true(strtod(PQgetvalue(res, 0, 15), NULL) == 12.5);
    assert_string_equal(PQgetvalue(res, 0, 16), "card");
    assert_string_equal(PQgetvalue(res, 0, 17), "1 Main St");
    assert_string_equal(PQgetvalue(res, 0, 18), "kettle steel");
    assert_string_equal(PQgetvalue(res, 0, 19), "17");
    assert_true(strtoll(PQgetvalue(res, 0, 20), NULL, 10) >= T0_MS);
    /* An event without optional fields stores NULL in each of them. */
    assert_string_equal(PQgetvalue(res, 1, 1), "ev-bare");
    assert_string_equal(PQgetvalue(res, 1, 2), "page_view");
    assert_string_equal(PQgetvalue(res, 1, 5), "mobile");
    for (int col = 7; col <= 19; col++)
        assert_true(PQgetisnull(res, 1, col));
    PQclear(res);
}

static void test_same_batch_twice_adds_nothing(void **state)
{
    sl_reading_t recs[3];
    sl_event_t evs[2];
    bool dup[3] = {true, true, true};
    sl_store_batch_t batch = {0};
    sl_store_result_t result;

    (void)state;
    recs[0] = make_reading("sensor-001", T0_MS, 1.0);
    recs[1] = make_reading("sensor-001", T0_MS + 1, 2.0);
    /* Same sensor and instant, another value: a reading of its own. */
    recs[2] = make_reading("sensor-001", T0_MS + 1, 2.5);
    evs[0] = make_event("ev-1", T0_MS);
    evs[1] = make_event("ev-2", T0_MS + 1);
    batch.readings = recs;
    batch.reading_count = 3;
    batch.events = evs;
    batch.event_count = 2;
    batch.reading_duplicate = dup;

    assert_int_equal(sl_store_write(fx.st, &batch, &result, NULL, NULL), SL_OK);
    assert_int_equal(result.readings_inserted, 3);
    assert_int_equal(result.readings_duplicate, 0);
    assert_int_equal(result.events_inserted, 2);
    assert_false(dup[0]);
    assert_false(dup[2]);

    assert_int_equal(sl_store_write(fx.st, &batch, &result, NULL, NULL), SL_OK);
    assert_int_equal(result.readings_inserted, 0);
    assert_int_equal(result.readings_duplicate, 3);
    assert_int_equal(result.events_inserted, 0);
    assert_int_equal(result.events_duplicate, 2);
    assert_true(dup[0]);
    assert_true(dup[1]);
    assert_true(dup[2]);
    assert_int_equal(sl_store_reading_count(fx.st), 3);
    assert_int_equal(query_int("SELECT count(*) FROM ecommerce_events"), 2);
}

/* One bad row among six: a redelivered duplicate is absorbed, a time out of
 * range is rejected through the callback, and the four good rows stay. */
static void test_bad_row_keeps_good_rows(void **state)
{
    sl_reading_t recs[6];
    bool dup[6];
    struct rejects rej = {0};
    sl_store_batch_t batch = {0};
    sl_store_result_t result;

    (void)state;
    recs[0] = make_reading("sensor-011", T0_MS, 20.5);
    recs[1] = make_reading("sensor-011", T0_MS + 1000, 20.6);
    recs[2] = recs[1];
    recs[3] = make_reading("sensor-012", T0_MS, 45.0);
    recs[4] = make_reading("sensor-012", INT64_MAX, 45.2);
    recs[5] = make_reading("sensor-012", T0_MS + 1000, 45.5);
    batch.readings = recs;
    batch.reading_count = 6;
    batch.reading_duplicate = dup;

    assert_int_equal(
        sl_store_write(fx.st, &batch, &result, record_reject, &rej), SL_OK);
    assert_int_equal(rej.count, 1);
    assert_string_equal(rej.kind[0], "reading");
    assert_int_equal(rej.index[0], 4);
    assert_non_null(strstr(rej.error[0], "check constraint"));
    assert_int_equal(result.readings_inserted, 4);
    assert_int_equal(result.readings_duplicate, 1);
    assert_true(dup[2]);
    assert_false(dup[4]);
    assert_int_equal(sl_store_reading_count(fx.st), 4);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_readings"
                               " WHERE sensor_id = 'sensor-012'"
                               " AND value = 45.5"),
                     1);
    /* The rejected row did not become the sensor's latest. */
    assert_int_equal(query_int("SELECT timestamp_ms FROM sensor_latest"
                               " WHERE sensor_id = 'sensor-012'"),
                     T0_MS + 1000);
}

static void test_latest_keeps_newest_event_time(void **state)
{
    sl_reading_t newer = make_reading("sensor-018", T0_MS + 5000, 7.0);
    sl_reading_t older = make_reading("sensor-018", T0_MS, 3.0);
    char value[32];

    (void)state;
    assert_int_equal(write_readings(&newer, 1, NULL), SL_OK);
    /* A late reading arrives after the newer one was stored. */
    assert_int_equal(write_readings(&older, 1, NULL), SL_OK);
    query_text("SELECT value FROM sensor_latest"
               " WHERE sensor_id = 'sensor-018'",
               value, sizeof(value));
    assert_string_equal(value, "7");
    assert_int_equal(sl_store_reading_count(fx.st), 2);
}

/* A batch mixing stored and new keys: the direct COPY fails on the stored
 * ones and the staged insert stores only the new rows. */
static void test_mixed_batch_inserts_only_new_rows(void **state)
{
    sl_reading_t first[2];
    sl_reading_t recs[5];
    bool dup[5];
    sl_store_batch_t batch = {0};
    sl_store_result_t result;

    (void)state;
    first[0] = make_reading("sensor-a", T0_MS, 1.0);
    first[1] = make_reading("sensor-b", T0_MS, 2.0);
    assert_int_equal(write_readings(first, 2, &result), SL_OK);
    assert_int_equal(result.readings_inserted, 2);

    recs[0] = make_reading("sensor-a", T0_MS + 2000, 3.0);
    recs[1] = first[0];
    recs[2] = make_reading("sensor-b", T0_MS + 1000, 4.0);
    recs[3] = first[1];
    recs[4] = make_reading("sensor-c", T0_MS + 500, 5.0);
    batch.readings = recs;
    batch.reading_count = 5;
    batch.reading_duplicate = dup;
    assert_int_equal(sl_store_write(fx.st, &batch, &result, NULL, NULL), SL_OK);
    assert_int_equal(result.readings_inserted, 3);
    assert_int_equal(result.readings_duplicate, 2);
    assert_false(dup[0]);
    assert_true(dup[1]);
    assert_false(dup[2]);
    assert_true(dup[3]);
    assert_false(dup[4]);
    assert_int_equal(sl_store_reading_count(fx.st), 5);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_latest l"
                               " JOIN (VALUES ('sensor-a', 3.0, 2000),"
                               " ('sensor-b', 4.0, 1000),"
                               " ('sensor-c', 5.0, 500)) AS e (id, v, dt)"
                               " ON l.sensor_id = e.id AND l.value = e.v"
                               " AND l.timestamp_ms = 1767225600000 + e.dt"),
                     3);
}

/* Two values of one sensor at one instant are two readings; the first in
 * the batch becomes the latest, on the direct path (all keys new) and on
 * the staged path (one key already stored) alike. */
static void test_latest_first_of_same_instant_wins(void **state)
{
    sl_reading_t direct[2];
    sl_reading_t staged[3];
    char value[32];

    (void)state;
    direct[0] = make_reading("sensor-t1", T0_MS, 1.5);
    direct[1] = make_reading("sensor-t1", T0_MS, 2.5);
    assert_int_equal(write_readings(direct, 2, NULL), SL_OK);
    query_text("SELECT value FROM sensor_latest WHERE sensor_id = 'sensor-t1'",
               value, sizeof(value));
    assert_string_equal(value, "1.5");

    staged[0] = direct[0];
    staged[1] = make_reading("sensor-t2", T0_MS + 1, 7.5);
    staged[2] = make_reading("sensor-t2", T0_MS + 1, 8.5);
    assert_int_equal(write_readings(staged, 3, NULL), SL_OK);
    query_text("SELECT value FROM sensor_latest WHERE sensor_id = 'sensor-t2'",
               value, sizeof(value));
    assert_string_equal(value, "7.5");
    assert_int_equal(sl_store_reading_count(fx.st), 4);
}

/* 5,000 readings of 50 sensors in shuffled event-time order in one batch:
 * every row stored with its value's bit pattern as key, each sensor's
 * latest is its newest row, and a replay of the batch adds nothing. */
static void test_large_batch_latest_matches_rows(void **state)
{
    enum { ROWS = 5000, SENSORS = 50 };
    sl_reading_t *recs = calloc(ROWS, sizeof(*recs));
    sl_store_result_t result;
    char id[32];

    (void)state;
    assert_non_null(recs);
    for (int i = 0; i < ROWS; i++) {
        snprintf(id, sizeof(id), "sensor-%02d", i % SENSORS);
        /* 7919 is prime, so i -> i * 7919 % ROWS shuffles the times. */
        recs[i] = make_reading(id, T0_MS + (int64_t)(i * 7919 % ROWS) * 1000,
                               (double)i / 3.0);
    }
    assert_int_equal(write_readings(recs, ROWS, &result), SL_OK);
    assert_int_equal(result.readings_inserted, ROWS);
    assert_int_equal(sl_store_reading_count(fx.st), ROWS);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_readings"
                               " WHERE int8send(value_bits)"
                               " <> float8send(value) OR ingested_at_ms = 0"),
                     0);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_latest"), SENSORS);
    assert_int_equal(
        query_int("SELECT count(*) FROM sensor_latest l WHERE"
                  " (l.timestamp_ms, l.value) = (SELECT timestamp_ms, value"
                  " FROM sensor_readings r WHERE r.sensor_id = l.sensor_id"
                  " ORDER BY timestamp_ms DESC LIMIT 1)"),
        SENSORS);

    assert_int_equal(write_readings(recs, ROWS, &result), SL_OK);
    assert_int_equal(result.readings_inserted, 0);
    assert_int_equal(result.readings_duplicate, ROWS);
    assert_int_equal(sl_store_reading_count(fx.st), ROWS);
    free(recs);
}

/* 1,000 readings with three bad rows (first, middle, last), a stored
 * key, a key repeated inside the batch and a row the detector stored
 * first: the batch is split down to the bad rows, each reported once in
 * order, and every other row is stored or counted as a duplicate. */
static void test_bad_rows_split_large_batch(void **state)
{
    enum { ROWS = 1000, SENSORS = 10 };
    sl_reading_t *recs = calloc(ROWS, sizeof(*recs));
    bool *dup = calloc(ROWS, sizeof(*dup));
    struct rejects rej = {0};
    sl_store_batch_t batch = {0};
    sl_store_result_t result;
    char id[32];

    (void)state;
    assert_non_null(recs);
    assert_non_null(dup);
    for (int i = 0; i < ROWS; i++) {
        snprintf(id, sizeof(id), "sensor-s%d", i % SENSORS);
        recs[i] =
            make_reading(id, T0_MS + (int64_t)(i / SENSORS) * 1000, (double)i);
    }
    /* Stored before the batch: by the processor (a duplicate) and by the
     * detector (claimed, so inserted, keeping the flag). */
    assert_int_equal(write_readings(&recs[100], 1, NULL), SL_OK);
    store_flagged(recs[ROWS - 2], 0.75);
    recs[700] = recs[300];
    recs[0].timestamp_ms = INT64_MAX;
    recs[500].timestamp_ms = INT64_MIN;
    /* The newest reading of sensor-s9: rejected, so not its latest. */
    recs[ROWS - 1].timestamp_ms = INT64_MAX;
    batch.readings = recs;
    batch.reading_count = ROWS;
    batch.reading_duplicate = dup;

    assert_int_equal(
        sl_store_write(fx.st, &batch, &result, record_reject, &rej), SL_OK);
    assert_int_equal(rej.count, 3);
    assert_int_equal(rej.index[0], 0);
    assert_int_equal(rej.index[1], 500);
    assert_int_equal(rej.index[2], ROWS - 1);
    assert_non_null(strstr(rej.error[1], "check constraint"));
    assert_int_equal(result.readings_duplicate, 2);
    assert_int_equal(result.readings_inserted, ROWS - 3 - 2);
    assert_true(dup[100]);
    assert_true(dup[700]);
    assert_false(dup[300]);
    assert_false(dup[ROWS - 2]);
    assert_int_equal(sl_store_reading_count(fx.st), ROWS - 3 - 1);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_latest"), SENSORS);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_latest"
                               " WHERE sensor_id = 'sensor-s8' AND anomaly"
                               " AND anomaly_score = 0.75"),
                     1);
    assert_int_equal(query_int("SELECT timestamp_ms FROM sensor_latest"
                               " WHERE sensor_id = 'sensor-s9'"),
                     T0_MS + (int64_t)(ROWS / SENSORS - 2) * 1000);
    free(recs);
    free(dup);
}

/* A new batch holding a reading the detector stored first: the batch
 * falls back to the staged path, claims that row, and the sensor's latest
 * keeps the detector's flag and score. */
static void test_detector_row_inside_new_batch(void **state)
{
    sl_reading_t flagged = make_reading("sensor-d", T0_MS + 5000, 9.0);
    sl_reading_t recs[3];
    sl_store_result_t result;

    (void)state;
    store_flagged(flagged, 0.9);
    assert_int_equal(sl_store_reading_count(fx.st), 0);

    recs[0] = make_reading("sensor-d", T0_MS, 1.0);
    recs[1] = make_reading("sensor-d", T0_MS + 5000, 9.0);
    recs[2] = make_reading("sensor-e", T0_MS, 2.0);
    assert_int_equal(write_readings(recs, 3, &result), SL_OK);
    assert_int_equal(result.readings_inserted, 3);
    assert_int_equal(sl_store_reading_count(fx.st), 3);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_latest"
                               " WHERE sensor_id = 'sensor-d' AND anomaly"
                               " AND anomaly_score = 0.9"
                               " AND timestamp_ms = 1767225605000"),
                     1);
}

/* Writes a batch with latest_deferred set: n readings, then m latest rows. */
static int write_deferred(const sl_reading_t *recs, size_t n,
                          const sl_reading_t *latest, size_t m,
                          sl_store_result_t *result, struct rejects *rej)
{
    sl_store_batch_t batch = {0};

    batch.readings = recs;
    batch.reading_count = n;
    batch.latest_deferred = true;
    batch.latest = latest;
    batch.latest_count = m;
    return sl_store_write(fx.st, &batch, result, record_reject, rej);
}

/* Returns the timestamp_ms of a sensor's latest row, or -1 without one. */
static int64_t latest_time(const char *sensor_id)
{
    char sql[160];

    snprintf(sql, sizeof(sql),
             "SELECT coalesce(max(timestamp_ms), -1) FROM sensor_latest"
             " WHERE sensor_id = '%s'",
             sensor_id);
    return query_int(sql);
}

/* A deferring batch stores its readings on the direct path (all keys
 * new), the staged path (one key stored) and the split path (one bad
 * row), and none of them touches sensor_latest. */
static void test_deferred_batch_leaves_latest(void **state)
{
    sl_reading_t seed = make_reading("sensor-p", T0_MS, 1.0);
    sl_reading_t direct[2], staged[2], split[2];
    struct rejects rej = {0};
    sl_store_result_t result;

    (void)state;
    assert_int_equal(write_readings(&seed, 1, NULL), SL_OK);
    assert_int_equal(latest_time("sensor-p"), T0_MS);

    direct[0] = make_reading("sensor-p", T0_MS + 1000, 2.0);
    direct[1] = make_reading("sensor-q", T0_MS, 3.0);
    assert_int_equal(write_deferred(direct, 2, NULL, 0, &result, &rej), SL_OK);
    assert_int_equal(result.readings_inserted, 2);

    staged[0] = seed;
    staged[1] = make_reading("sensor-p", T0_MS + 2000, 4.0);
    assert_int_equal(write_deferred(staged, 2, NULL, 0, &result, &rej), SL_OK);
    assert_int_equal(result.readings_inserted, 1);
    assert_int_equal(result.readings_duplicate, 1);

    split[0] = make_reading("sensor-q", T0_MS + 3000, 5.0);
    split[1] = make_reading("sensor-q", INT64_MAX, 6.0);
    assert_int_equal(write_deferred(split, 2, NULL, 0, &result, &rej), SL_OK);
    assert_int_equal(result.readings_inserted, 1);
    assert_int_equal(rej.count, 1);
    assert_string_equal(rej.kind[0], "reading");
    assert_int_equal(rej.index[0], 1);

    assert_int_equal(sl_store_reading_count(fx.st), 5);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_latest"), 1);
    assert_int_equal(latest_time("sensor-p"), T0_MS);
    assert_int_equal(latest_time("sensor-q"), -1);
}

/* A batch of latest rows only: a sensor's newer row stays, the others are
 * set, and the flag and score come from the row the detector stored. */
static void test_latest_only_batch_sets_rows(void **state)
{
    sl_reading_t newer = make_reading("sensor-la", T0_MS + 5000, 7.0);
    sl_reading_t flagged = make_reading("sensor-lb", T0_MS + 2000, 9.0);
    sl_reading_t recs[4], latest[3];
    struct rejects rej = {0};
    sl_store_result_t result;
    char value[32];

    (void)state;
    assert_int_equal(write_readings(&newer, 1, NULL), SL_OK);
    store_flagged(flagged, 0.9);
    recs[0] = make_reading("sensor-la", T0_MS + 1000, 1.0);
    recs[1] = make_reading("sensor-lb", T0_MS + 2000, 9.0);
    recs[2] = make_reading("sensor-lc", T0_MS + 3000, 3.0);
    recs[3] = make_reading("sensor-lc", T0_MS + 4000, 4.0);
    assert_int_equal(write_deferred(recs, 4, NULL, 0, &result, &rej), SL_OK);
    assert_int_equal(result.readings_inserted, 4);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_latest"), 1);

    latest[0] = recs[0];
    latest[1] = recs[1];
    latest[2] = recs[3];
    assert_int_equal(write_deferred(NULL, 0, latest, 3, &result, &rej), SL_OK);
    assert_int_equal(rej.count, 0);
    assert_int_equal(result.readings_inserted, 0);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_latest"), 3);
    query_text("SELECT value FROM sensor_latest WHERE sensor_id = 'sensor-la'",
               value, sizeof(value));
    assert_string_equal(value, "7");
    assert_int_equal(latest_time("sensor-la"), T0_MS + 5000);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_latest"
                               " WHERE sensor_id = 'sensor-lb' AND anomaly"
                               " AND anomaly_score = 0.9"
                               " AND timestamp_ms = 1767225602000"),
                     1);
    query_text("SELECT value FROM sensor_latest WHERE sensor_id = 'sensor-lc'",
               value, sizeof(value));
    assert_string_equal(value, "4");

    /* An older reading handed over later changes nothing. */
    assert_int_equal(write_deferred(NULL, 0, &recs[2], 1, &result, &rej),
                     SL_OK);
    assert_int_equal(latest_time("sensor-lc"), T0_MS + 4000);
    assert_int_equal(sl_store_reading_count(fx.st), 5);
}

/* Latest rows the database rejects, once in the upsert (a CHECK this test
 * adds) and once in the COPY (invalid UTF-8), are reported with their
 * position in latest while the other rows are written. */
static void test_latest_row_rejected_keeps_others(void **state)
{
    sl_reading_t recs[3], latest[3];
    struct rejects rej = {0};
    sl_store_result_t result;

    (void)state;
    check_run("ALTER TABLE sensor_latest ADD CONSTRAINT test_no_666"
              " CHECK (value IS DISTINCT FROM 666)");
    recs[0] = make_reading("sensor-rx", T0_MS, 1.0);
    recs[1] = make_reading("sensor-ry", T0_MS, 666.0);
    recs[2] = make_reading("sensor-rz", T0_MS, 3.0);
    assert_int_equal(write_deferred(recs, 3, recs, 3, &result, &rej), SL_OK);
    check_run("ALTER TABLE sensor_latest DROP CONSTRAINT test_no_666");
    assert_int_equal(result.readings_inserted, 3);
    assert_int_equal(rej.count, 1);
    assert_string_equal(rej.kind[0], "latest");
    assert_int_equal(rej.index[0], 1);
    assert_non_null(strstr(rej.error[0], "check constraint"));
    assert_int_equal(sl_store_reading_count(fx.st), 3);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_latest"), 2);
    assert_int_equal(latest_time("sensor-ry"), -1);

    latest[0] = make_reading("sensor-rx", T0_MS + 1000, 2.0);
    latest[1] = make_reading("sensor-ry", T0_MS + 1000, 5.0);
    latest[2] = make_reading("sensor-rz", T0_MS + 1000, 4.0);
    assert_int_equal(write_deferred(latest, 3, NULL, 0, &result, &rej), SL_OK);
    assert_int_equal(result.readings_inserted, 3);
    snprintf(latest[1].location, sizeof(latest[1].location), "hall-\xff");
    rej.count = 0;
    assert_int_equal(write_deferred(NULL, 0, latest, 3, &result, &rej), SL_OK);
    assert_int_equal(rej.count, 1);
    assert_string_equal(rej.kind[0], "latest");
    assert_int_equal(rej.index[0], 1);
    assert_non_null(strstr(rej.error[0], "invalid byte sequence"));
    assert_int_equal(latest_time("sensor-rx"), T0_MS + 1000);
    assert_int_equal(latest_time("sensor-ry"), -1);
    assert_int_equal(latest_time("sensor-rz"), T0_MS + 1000);
}

/* A deferring batch whose readings take the staged path hands over only
 * an older row: the staging table still contains the readings, and none
 * of them may become the latest. A latest row whose reading the same
 * batch failed to store is skipped without a second report. */
static void test_latest_after_staged_readings(void **state)
{
    sl_reading_t first = make_reading("sensor-m", T0_MS, 1.0);
    sl_reading_t recs[2];
    struct rejects rej = {0};
    sl_store_result_t result;

    (void)state;
    assert_int_equal(write_deferred(&first, 1, NULL, 0, &result, &rej), SL_OK);
    recs[0] = first;
    recs[1] = make_reading("sensor-m", T0_MS + 9000, 9.0);
    assert_int_equal(write_deferred(recs, 2, &first, 1, &result, &rej), SL_OK);
    assert_int_equal(result.readings_inserted, 1);
    assert_int_equal(result.readings_duplicate, 1);
    assert_int_equal(rej.count, 0);
    assert_int_equal(latest_time("sensor-m"), T0_MS);

    recs[0] = make_reading("sensor-n", T0_MS, 2.0);
    recs[1] = make_reading("sensor-n", INT64_MAX, 3.0);
    assert_int_equal(write_deferred(recs, 2, &recs[1], 1, &result, &rej),
                     SL_OK);
    assert_int_equal(result.readings_inserted, 1);
    assert_int_equal(rej.count, 1);
    assert_string_equal(rej.kind[0], "reading");
    assert_int_equal(rej.index[0], 1);
    assert_int_equal(latest_time("sensor-n"), -1);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_latest"), 1);
}

/* One writer of test_concurrent_writers_store_once. */
struct concurrent_writer {
    sl_store_t *st;
    const sl_reading_t *recs;
    size_t n;
    sl_store_result_t result;
    int rc;
};

/* Writes the batch, retrying SL_EIO (a deadlock between the two writers
 * rolls one back) as sl_pipeline_store_write does. */
static void *concurrent_write(void *arg)
{
    struct concurrent_writer *cw = arg;
    sl_store_batch_t batch = {0};

    batch.readings = cw->recs;
    batch.reading_count = cw->n;
    for (int attempt = 0; attempt < 50; attempt++) {
        cw->rc = sl_store_write(cw->st, &batch, &cw->result, NULL, NULL);
        if (cw->rc != SL_EIO)
            break;
        usleep(100 * 1000);
    }
    return NULL;
}

/* Two processors write the same batch at the same time, as during a
 * rebalance: one COPY waits for the other's keys and then fails, and its
 * batch goes through the staged insert, so every row is stored once and
 * counted once as inserted. */
static void test_concurrent_writers_store_once(void **state)
{
    enum { ROWS = 2000 };
    sl_reading_t *recs = calloc(ROWS, sizeof(*recs));
    struct concurrent_writer cw[2];
    pthread_t threads[2];
    char err[512] = "";
    char id[32];

    (void)state;
    assert_non_null(recs);
    for (int i = 0; i < ROWS; i++) {
        snprintf(id, sizeof(id), "sensor-c%d", i % 20);
        recs[i] = make_reading(id, T0_MS + (int64_t)(i / 20) * 1000, i);
    }
    for (int i = 0; i < 2; i++) {
        memset(&cw[i], 0, sizeof(cw[i]));
        cw[i].st = i == 0 ? fx.st : sl_store_open(fx.pg.url, err, sizeof(err));
        if (cw[i].st == NULL)
            fail_msg("sl_store_open failed: %s", err);
        cw[i].recs = recs;
        cw[i].n = ROWS;
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            pthread_create(&threads[i], NULL, concurrent_write, &cw[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    sl_store_close(cw[1].st);

    assert_int_equal(cw[0].rc, SL_OK);
    assert_int_equal(cw[1].rc, SL_OK);
    assert_int_equal(
        cw[0].result.readings_inserted + cw[1].result.readings_inserted, ROWS);
    assert_int_equal(cw[0].result.readings_duplicate +
                         cw[1].result.readings_duplicate,
                     ROWS);
    assert_int_equal(sl_store_reading_count(fx.st), ROWS);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_latest WHERE"
                               " timestamp_ms = 1767225699000"),
                     20);
    free(recs);
}

static void test_stats_match_raw_rows(void **state)
{
    enum { N = 500 };
    sl_reading_t *recs = calloc(N, sizeof(*recs));
    sl_sensor_stats_t stats[4];
    double sum[2] = {0}, min[2] = {INFINITY, INFINITY},
           max[2] = {-INFINITY, -INFINITY};
    int64_t anomalies[2] = {0};
    size_t n = 0;

    (void)state;
    assert_non_null(recs);
    srand(7);
    for (int i = 0; i < N; i++) {
        int s = i % 2;
        double v = (double)rand() / RAND_MAX * 200.0 - 100.0;

        recs[i] = make_reading(s == 0 ? "sensor-a" : "sensor-b", T0_MS + i, v);
        recs[i].anomaly = i % 7 == 0;
        sum[s] += v;
        min[s] = v < min[s] ? v : min[s];
        max[s] = v > max[s] ? v : max[s];
        anomalies[s] += recs[i].anomaly;
    }
    assert_int_equal(write_readings(recs, N, NULL), SL_OK);
    assert_int_equal(
        sl_store_sensor_stats(fx.st, T0_MS, T0_MS + N, -1, stats, 4, &n),
        SL_OK);
    assert_int_equal(n, 2);
    for (int s = 0; s < 2; s++) {
        assert_string_equal(stats[s].sensor_id,
                            s == 0 ? "sensor-a" : "sensor-b");
        assert_int_equal(stats[s].count, N / 2);
        assert_int_equal(stats[s].anomaly_count, anomalies[s]);
        assert_true(stats[s].min == min[s]);
        assert_true(stats[s].max == max[s]);
        assert_close(stats[s].avg, sum[s] / (N / 2), 1e-9);
        assert_int_equal(stats[s].first_ms, T0_MS + s);
        assert_int_equal(stats[s].last_ms, T0_MS + N - 2 + s);
        assert_int_equal(stats[s].sensor_type, SL_SENSOR_TEMPERATURE);
    }
    /* The range end is exclusive, and a type filter excludes all. */
    assert_int_equal(
        sl_store_sensor_stats(fx.st, T0_MS, T0_MS + 1, -1, stats, 4, &n),
        SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(stats[0].count, 1);
    assert_int_equal(sl_store_sensor_stats(fx.st, T0_MS, T0_MS + N,
                                           SL_SENSOR_POWER, stats, 4, &n),
                     SL_OK);
    assert_int_equal(n, 0);
    free(recs);
}

static void test_non_finite_values_skipped_by_stats(void **state)
{
    sl_reading_t rec = make_reading("sensor-nan", T0_MS, 10.0);
    sl_sensor_stats_t stats[2];
    sl_reading_query_t q;
    sl_reading_t out[8];
    size_t n = 0;
    int nan_rows = 0, inf_rows = 0;

    (void)state;
    assert_int_equal(write_readings(&rec, 1, NULL), SL_OK);
    /* Another writer stores NaN, NULL and an infinity directly. */
    check_run("INSERT INTO sensor_readings (timestamp_ms, sensor_id,"
              " sensor_type, value, location, battery_level,"
              " signal_strength, ingested_at_ms, value_bits, anomaly) VALUES"
              " (1767225600001, 'sensor-nan', 'temperature', 'NaN', 'x', 1,"
              " 1, 1, 1, true),"
              " (1767225600002, 'sensor-nan', 'temperature', NULL, 'x', 1,"
              " 1, 1, 2, true),"
              " (1767225600003, 'sensor-nan', 'temperature', 'Infinity',"
              " 'x', 1, 1, 1, 3, true)");

    assert_int_equal(
        sl_store_sensor_stats(fx.st, INT64_MIN, INT64_MAX, -1, stats, 2, &n),
        SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(stats[0].count, 1);
    assert_int_equal(stats[0].anomaly_count, 0);
    assert_true(stats[0].min == 10.0);
    assert_true(stats[0].avg == 10.0);

    sl_reading_query_init(&q);
    assert_int_equal(sl_store_readings(fx.st, &q, out, 8, &n), SL_OK);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        nan_rows += isnan(out[i].value) ? 1 : 0;
        inf_rows += isinf(out[i].value) ? 1 : 0;
    }
    assert_int_equal(nan_rows, 2);
    assert_int_equal(inf_rows, 1);
}

static void test_readings_filters(void **state)
{
    sl_reading_t recs[4];
    sl_reading_query_t q;
    sl_reading_t out[8];
    size_t n = 0;

    (void)state;
    recs[0] = make_reading("sensor-1", T0_MS, 1.0);
    recs[1] = make_reading("sensor-2", T0_MS + 1, 2.0);
    recs[1].sensor_type = SL_SENSOR_HUMIDITY;
    recs[2] = make_reading("sensor-1", T0_MS + 2, 3.0);
    recs[2].anomaly = true;
    recs[3] = make_reading("sensor-1", T0_MS + 3, 4.0);
    assert_int_equal(write_readings(recs, 4, NULL), SL_OK);

    sl_reading_query_init(&q);
    q.sensor_id = "sensor-1";
    assert_int_equal(sl_store_readings(fx.st, &q, out, 8, &n), SL_OK);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].timestamp_ms, T0_MS + 3);

    sl_reading_query_init(&q);
    q.sensor_type = SL_SENSOR_HUMIDITY;
    assert_int_equal(sl_store_readings(fx.st, &q, out, 8, &n), SL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].sensor_id, "sensor-2");

    sl_reading_query_init(&q);
    q.anomalies_only = true;
    assert_int_equal(sl_store_readings(fx.st, &q, out, 8, &n), SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].timestamp_ms, T0_MS + 2);

    sl_reading_query_init(&q);
    q.from_ms = T0_MS + 1;
    q.to_ms = T0_MS + 3;
    q.limit = 1;
    assert_int_equal(sl_store_readings(fx.st, &q, out, 8, &n), SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].timestamp_ms, T0_MS + 2);
}

static void test_window_recompute_from_raw_rows(void **state)
{
    sl_reading_t recs[3];
    sl_aggregate_t stale;
    sl_window_key_t key;
    sl_store_batch_t batch = {0};
    sl_aggregate_t out[2];
    size_t n = 0;

    (void)state;
    memset(&stale, 0, sizeof(stale));
    snprintf(stale.sensor_id, sizeof(stale.sensor_id), "sensor-w");
    stale.window_start_ms = T0_MS;
    stale.window_end_ms = T0_MS + 60000;
    stale.count = 2;
    stale.min = 1.0;
    stale.max = 2.0;
    stale.avg = 1.5;
    stale.stddev = 0.5;
    batch.aggregates = &stale;
    batch.aggregate_count = 1;
    assert_int_equal(sl_store_write(fx.st, &batch, NULL, NULL, NULL), SL_OK);
    assert_int_equal(
        sl_store_aggregates(fx.st, "sensor-w", T0_MS, T0_MS + 1, out, 2, &n),
        SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].count, 2);
    assert_true(out[0].stddev == 0.5);

    /* A late reading joins the window; the window is recomputed from the
     * raw rows of the same batch. */
    recs[0] = make_reading("sensor-w", T0_MS + 10, 1.0);
    recs[1] = make_reading("sensor-w", T0_MS + 20, 2.0);
    recs[2] = make_reading("sensor-w", T0_MS + 30, 6.0);
    memset(&key, 0, sizeof(key));
    snprintf(key.sensor_id, sizeof(key.sensor_id), "sensor-w");
    key.window_start_ms = T0_MS;
    key.window_end_ms = T0_MS + 60000;
    memset(&batch, 0, sizeof(batch));
    batch.readings = recs;
    batch.reading_count = 3;
    batch.recompute = &key;
    batch.recompute_count = 1;
    assert_int_equal(sl_store_write(fx.st, &batch, NULL, NULL, NULL), SL_OK);
    assert_int_equal(
        sl_store_aggregates(fx.st, NULL, T0_MS, T0_MS + 1, out, 2, &n), SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].count, 3);
    assert_true(out[0].min == 1.0);
    assert_true(out[0].max == 6.0);
    assert_close(out[0].avg, 3.0, 1e-12);
    assert_close(out[0].stddev, sqrt(14.0 / 3.0), 1e-12);

    /* A window left without finite values loses its row. */
    check_run("DELETE FROM sensor_readings WHERE sensor_id = 'sensor-w'");
    memset(&batch, 0, sizeof(batch));
    batch.recompute = &key;
    batch.recompute_count = 1;
    assert_int_equal(sl_store_write(fx.st, &batch, NULL, NULL, NULL), SL_OK);
    assert_int_equal(
        sl_store_aggregates(fx.st, "sensor-w", T0_MS, T0_MS + 1, out, 2, &n),
        SL_OK);
    assert_int_equal(n, 0);
}

/* Many windows in one batch: several sensors per window, ids that need
 * quoting in an array literal, a key listed twice, and a sensor with no
 * rows whose old aggregate goes. Each comes out as if recomputed alone. */
static void test_window_recompute_many_keys(void **state)
{
    static const char *const ids[] = {"multi-a", "multi \"quoted\"",
                                      "multi\\back,{x}", "multi-gone"};
    sl_reading_t recs[18];
    sl_window_key_t keys[9];
    sl_aggregate_t stale, out[4];
    sl_store_batch_t batch = {0};
    size_t n = 0, r = 0, k = 0;

    (void)state;
    memset(&stale, 0, sizeof(stale));
    snprintf(stale.sensor_id, sizeof(stale.sensor_id), "%s", ids[3]);
    stale.window_start_ms = T0_MS + 120000;
    stale.window_end_ms = T0_MS + 180000;
    stale.count = 1;
    batch.aggregates = &stale;
    batch.aggregate_count = 1;
    assert_int_equal(sl_store_write(fx.st, &batch, NULL, NULL, NULL), SL_OK);

    /* Sensor s has readings s+1, s+2, s+3 (+ 10 * window) in windows 2 and
     * 3 of the hour; multi-gone has none. */
    for (int s = 0; s < 3; s++) {
        for (int win = 2; win <= 3; win++) {
            for (int i = 1; i <= 3; i++)
                recs[r++] = make_reading(ids[s], T0_MS + win * 60000 + i,
                                         s + i + 10.0 * win);
        }
    }
    memset(&batch, 0, sizeof(batch));
    batch.readings = recs;
    batch.reading_count = r;
    assert_int_equal(sl_store_write(fx.st, &batch, NULL, NULL, NULL), SL_OK);

    memset(keys, 0, sizeof(keys));
    for (int s = 0; s < 4; s++) {
        for (int win = 2; win <= 3; win++) {
            snprintf(keys[k].sensor_id, sizeof(keys[k].sensor_id), "%s",
                     ids[s]);
            keys[k].window_start_ms = T0_MS + win * 60000;
            keys[k].window_end_ms = T0_MS + (win + 1) * 60000;
            k++;
        }
    }
    keys[k++] = keys[0]; /* listed twice */
    memset(&batch, 0, sizeof(batch));
    batch.recompute = keys;
    batch.recompute_count = k;
    assert_int_equal(sl_store_write(fx.st, &batch, NULL, NULL, NULL), SL_OK);

    for (int s = 0; s < 3; s++) {
        assert_int_equal(sl_store_aggregates(fx.st, ids[s], T0_MS + 120000,
                                             T0_MS + 240000, out, 4, &n),
                         SL_OK);
        assert_int_equal(n, 2);
        for (size_t w = 0; w < 2; w++) {
            double mid = s + 2 + 10.0 * (double)(w + 2);

            assert_int_equal(out[w].count, 3);
            assert_true(out[w].min == mid - 1);
            assert_true(out[w].max == mid + 1);
            assert_close(out[w].avg, mid, 1e-12);
            assert_close(out[w].stddev, sqrt(2.0 / 3.0), 1e-12);
        }
    }
    assert_int_equal(
        sl_store_aggregates(fx.st, ids[3], T0_MS, T0_MS + 600000, out, 4, &n),
        SL_OK);
    assert_int_equal(n, 0);
}

static void test_dlq_rows_round_trip(void **state)
{
    static const unsigned char payload[] = {0x00, 0x01, 0xff, '\\', 'x'};
    sl_dlq_entry_t e, got, list[4];
    sl_dlq_query_t q = {-1, NULL, 10};
    sl_store_batch_t batch = {0};
    sl_store_result_t result;
    sl_reading_t rec = make_reading("sensor-d", T0_MS, 1.0);
    sl_dlq_resolution_t resolution = {"sensors", 2, 41, false, 0};
    int64_t counts[4];
    void *bytes = NULL;
    size_t n = 0, changed = 0;

    (void)state;
    memset(&e, 0, sizeof(e));
    snprintf(e.topic, sizeof(e.topic), "sensors");
    e.partition = 2;
    e.offset = 41;
    e.key = "k1";
    e.key_len = 2;
    e.payload = payload;
    e.payload_len = sizeof(payload);
    e.error_class = SL_DLQ_STORAGE;
    snprintf(e.error, sizeof(e.error), "db_rejected: bad row");
    e.first_failure_ms = T0_MS;
    e.last_failure_ms = T0_MS;
    batch.dlq = &e;
    batch.dlq_count = 1;
    assert_int_equal(sl_store_write(fx.st, &batch, NULL, NULL, NULL), SL_OK);
    /* A replay of the same source position adds no row. */
    assert_int_equal(sl_store_write(fx.st, &batch, NULL, NULL, NULL), SL_OK);
    assert_int_equal(sl_store_dlq_count(fx.st), 1);

    assert_int_equal(sl_store_dlq_list(fx.st, &q, list, 4, &n), SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].payload_len, sizeof(payload));
    assert_null(list[0].payload);
    assert_int_equal(sl_store_dlq_get(fx.st, list[0].id, &got, &bytes), SL_OK);
    assert_string_equal(got.topic, "sensors");
    assert_int_equal(got.partition, 2);
    assert_int_equal(got.offset, 41);
    assert_int_equal(got.key_len, 2);
    assert_memory_equal(got.key, "k1", 2);
    assert_int_equal(got.payload_len, sizeof(payload));
    assert_memory_equal(got.payload, payload, sizeof(payload));
    assert_int_equal(got.error_class, SL_DLQ_STORAGE);
    assert_string_equal(got.error, "db_rejected: bad row");
    assert_int_equal(got.status, SL_DLQ_PENDING);
    assert_int_equal(got.first_failure_ms, T0_MS);
    free(bytes);
    assert_int_equal(sl_store_dlq_get(fx.st, 999, &got, &bytes), SL_ENOTFOUND);

    /* Schedule, claim, unclaim, claim again. */
    assert_int_equal(
        sl_store_dlq_replay(fx.st, list[0].id, SL_DLQ_PENDING, 100, &changed),
        SL_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(sl_store_dlq_claim(fx.st, list[0].id, 50, &got, &bytes),
                     SL_ENOTFOUND);
    assert_int_equal(sl_store_dlq_claim(fx.st, list[0].id, 100, &got, &bytes),
                     SL_OK);
    assert_int_equal(got.status, SL_DLQ_RETRYING);
    assert_int_equal(got.retry_count, 1);
    assert_memory_equal(got.payload, payload, sizeof(payload));
    free(bytes);
    assert_int_equal(
        sl_store_dlq_replay(fx.st, list[0].id, SL_DLQ_PENDING, 100, NULL),
        SL_EBUSY);
    assert_int_equal(sl_store_dlq_replay(fx.st, 999, SL_DLQ_PENDING, 100, NULL),
                     SL_ENOTFOUND);
    assert_int_equal(sl_store_dlq_unclaim(fx.st, list[0].id, 200), SL_OK);
    assert_int_equal(sl_store_dlq_unclaim(fx.st, list[0].id, 200),
                     SL_ENOTFOUND);
    assert_int_equal(
        sl_store_dlq_scheduled(fx.st, (int64_t[4]){0}, (int64_t[4]){0}, 4, &n),
        SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(sl_store_dlq_claim(fx.st, list[0].id, 200, &got, &bytes),
                     SL_OK);
    free(bytes);
    assert_int_equal(sl_store_dlq_rearm(fx.st, 300, &changed), SL_OK);
    assert_int_equal(changed, 1);

    /* The retried record is stored: its dead-letter row is resolved. */
    memset(&batch, 0, sizeof(batch));
    batch.readings = &rec;
    batch.reading_count = 1;
    batch.resolutions = &resolution;
    batch.resolution_count = 1;
    assert_int_equal(sl_store_write(fx.st, &batch, &result, NULL, NULL), SL_OK);
    assert_int_equal(result.dlq_resolved, 1);
    assert_int_equal(sl_store_dlq_status_counts(fx.st, counts), SL_OK);
    assert_int_equal(counts[SL_DLQ_RESOLVED], 1);
    assert_int_equal(counts[SL_DLQ_PENDING], 0);
}

static void test_detector_first_then_processor(void **state)
{
    sl_reading_t rec = make_reading("sensor-x", T0_MS, 5.0);
    sl_alert_t alert;
    sl_alert_t alerts[4];
    sl_store_detect_result_t det;
    sl_store_result_t result;
    size_t n = 0;

    (void)state;
    rec.anomaly = true;
    rec.anomaly_score = 0.9;
    rec.has_score = true;
    memset(&alert, 0, sizeof(alert));
    alert.alert_type = SL_ALERT_ML_ANOMALY;
    alert.severity = SL_SEVERITY_CRITICAL;
    snprintf(alert.sensor_id, sizeof(alert.sensor_id), "sensor-x");
    snprintf(alert.message, sizeof(alert.message), "score 0.9");
    alert.value = 5.0;
    alert.anomaly_score = 0.9;
    alert.has_score = true;
    alert.timestamp_ms = T0_MS;

    assert_int_equal(
        sl_store_record_detections(fx.st, &rec, 1, &alert, 1, NULL, &det),
        SL_OK);
    assert_int_equal(det.readings_changed, 1);
    assert_int_equal(det.alerts_inserted, 1);
    assert_int_equal(
        sl_store_record_detections(fx.st, &rec, 1, &alert, 1, NULL, &det),
        SL_OK);
    assert_int_equal(det.readings_unchanged, 1);
    assert_int_equal(det.alerts_duplicate, 1);

    /* The processor's copy claims the detector's row: counted once as
     * inserted, and the flag stays. */
    rec.anomaly = false;
    rec.has_score = false;
    assert_int_equal(write_readings(&rec, 1, &result), SL_OK);
    assert_int_equal(result.readings_inserted, 1);
    assert_int_equal(write_readings(&rec, 1, &result), SL_OK);
    assert_int_equal(result.readings_duplicate, 1);
    assert_int_equal(sl_store_reading_count(fx.st), 1);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_latest"
                               " WHERE anomaly AND anomaly_score = 0.9"),
                     1);

    assert_int_equal(sl_store_alerts(fx.st, "sensor-x", alerts, 4, &n), SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(alerts[0].alert_type, SL_ALERT_ML_ANOMALY);
    assert_int_equal(alerts[0].severity, SL_SEVERITY_CRITICAL);
    assert_string_equal(alerts[0].message, "score 0.9");
    assert_true(alerts[0].has_score);
    assert_true(alerts[0].anomaly_score == 0.9);
    assert_int_equal(alerts[0].timestamp_ms, T0_MS);
}

static void test_views_refresh(void **state)
{
    sl_reading_t recs[3];

    (void)state;
    recs[0] = make_reading("sensor-v", T0_MS, 1.0);
    recs[1] = make_reading("sensor-v", T0_MS + 1000, 3.0);
    recs[2] = make_reading("sensor-v", T0_MS + 3600000, 5.0);
    assert_int_equal(write_readings(recs, 3, NULL), SL_OK);
    assert_int_equal(sl_store_refresh_views(fx.st), SL_OK);
    assert_int_equal(
        query_int(
            "SELECT count FROM sensor_stats WHERE sensor_id = 'sensor-v'"),
        3);
    assert_int_equal(query_int("SELECT count(*) FROM sensor_readings_hourly"
                               " WHERE sensor_id = 'sensor-v'"),
                     2);
    assert_int_equal(query_int("SELECT count FROM sensor_readings_hourly"
                               " WHERE sensor_id = 'sensor-v'"
                               " AND hour_start_ms = 1767225600000"),
                     2);
}

/* The server stops mid-test: writes fail with SL_EIO and commit nothing;
 * once it is back, the store reconnects and the same write succeeds. */
static void test_server_restart_recovers(void **state)
{
    sl_reading_t rec = make_reading("sensor-r", T0_MS, 1.0);
    sl_store_result_t result;
    int rc = SL_EIO;

    (void)state;
    assert_int_equal(write_readings(&rec, 1, NULL), SL_OK);
    assert_int_equal(sl_pg_harness_stop_server(&fx.pg), 0);

    rec.timestamp_ms = T0_MS + 1;
    assert_int_equal(write_readings(&rec, 1, NULL), SL_EIO);
    assert_int_equal(write_readings(&rec, 1, NULL), SL_EIO);
    assert_int_equal(sl_store_reading_count(fx.st), -1);

    assert_int_equal(sl_pg_harness_start_server(&fx.pg), 0);
    /* The reconnect backoff is at most 5 s; retry as the pipeline does. */
    for (int attempt = 0; attempt < 100 && rc != SL_OK; attempt++) {
        rc = write_readings(&rec, 1, &result);
        if (rc != SL_OK)
            usleep(100 * 1000);
    }
    assert_int_equal(rc, SL_OK);
    assert_int_equal(result.readings_inserted, 1);
    assert_int_equal(sl_store_reading_count(fx.st), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_migrate_twice_is_noop, setup),
        cmocka_unit_test_setup(test_write_reads_back_every_field, setup),
        cmocka_unit_test_setup(test_same_batch_twice_adds_nothing, setup),
        cmocka_unit_test_setup(test_bad_row_keeps_good_rows, setup),
        cmocka_unit_test_setup(test_latest_keeps_newest_event_time, setup),
        cmocka_unit_test_setup(test_mixed_batch_inserts_only_new_rows, setup),
        cmocka_unit_test_setup(test_latest_first_of_same_instant_wins, setup),
        cmocka_unit_test_setup(test_large_batch_latest_matches_rows, setup),
        cmocka_unit_test_setup(test_detector_row_inside_new_batch, setup),
        cmocka_unit_test_setup(test_bad_rows_split_large_batch, setup),
        cmocka_unit_test_setup(test_deferred_batch_leaves_latest, setup),
        cmocka_unit_test_setup(test_latest_only_batch_sets_rows, setup),
        cmocka_unit_test_setup(test_latest_row_rejected_keeps_others, setup),
        cmocka_unit_test_setup(test_latest_after_staged_readings, setup),
        cmocka_unit_test_setup(test_concurrent_writers_store_once, setup),
        cmocka_unit_test_setup(test_stats_match_raw_rows, setup),
        cmocka_unit_test_setup(test_non_finite_values_skipped_by_stats, setup),
        cmocka_unit_test_setup(test_readings_filters, setup),
        cmocka_unit_test_setup(test_window_recompute_from_raw_rows, setup),
        cmocka_unit_test_setup(test_window_recompute_many_keys, setup),
        cmocka_unit_test_setup(test_dlq_rows_round_trip, setup),
        cmocka_unit_test_setup(test_detector_first_then_processor, setup),
        cmocka_unit_test_setup(test_views_refresh, setup),
        cmocka_unit_test_setup(test_server_restart_recovers, setup),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
