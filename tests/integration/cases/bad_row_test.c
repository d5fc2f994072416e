/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One bad row in a batch must not cost its neighbours, on both stores.
 * Six readings reach the processor in one poll: the third is a redelivery
 * of the second, and the fifth has an event time of INT64_MAX ms, which
 * no store can hold. The four good rows are stored, and the redelivery is
 * absorbed without a dead-letter record. The fifth row is dead-lettered
 * with its reason. The group commits all six offsets, but only once the
 * rows are durable and the dead-letter copy was accepted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cases_harness.h"
#include "obs/metrics.h"
#include "pg_harness.h"
#include "util/err.h"
#include "util/timeutil.h"

#define ROWS 6
#define BAD_ROW 4                 /* 0-based: the row with ts = INT64_MAX */
#define T0 INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define PROCESSOR_GROUP "sluice-processor"

/* The rows the store must contain afterwards, and nothing else. */
static const struct {
    const char *sensor_id;
    int64_t ts_ms;
    double value;
} expected_rows[] = {
    {"sensor-011", T0, 20.5},
    {"sensor-011", T0 + 1000, 20.6},
    {"sensor-012", T0, 45.0},
    {"sensor-012", T0 + 1000, 45.5},
};

#define EXPECTED_COUNT (sizeof(expected_rows) / sizeof(expected_rows[0]))

/* The bus of one run: one partition, so that the six rows are one poll. */
static sl_bus_t *bus_create(size_t partition_capacity)
{
    sl_bus_memory_config_t cfg;
    sl_bus_t *bus;

    sl_bus_memory_config_init(&cfg);
    cfg.partitions = 1;
    cfg.partition_capacity = partition_capacity;
    bus = sl_bus_memory_create(&cfg);
    assert_non_null(bus);
    return bus;
}

/* Loads the case's rows and publishes them to partition 0. Returns the
 * content offset of the bad row, which names its dead-letter row on the
 * in-process bus. */
static int64_t publish_rows(sl_bus_t *bus, ch_codec_t *codec)
{
    sl_reading_t rows[ROWS + 1];
    uint8_t frame[1024];
    size_t len = 0;
    int64_t content = -1;

    assert_int_equal(ch_load_readings("B12", "readings.csv", rows, ROWS + 1),
                     ROWS);
    assert_int_equal(rows[BAD_ROW].timestamp_ms, INT64_MAX);
    for (int i = 0; i < ROWS; i++)
        assert_int_equal(ch_publish_reading(bus, codec, &rows[i], 0), i);
    ch_encode_reading(codec, &rows[BAD_ROW], frame, sizeof(frame), &len);
    assert_int_equal(sl_dlq_content_offset(rows[BAD_ROW].sensor_id,
                                           strlen(rows[BAD_ROW].sensor_id),
                                           frame, len, &content),
                     SL_OK);
    return content;
}

static void check_stored_rows(sl_store_t *st)
{
    sl_reading_query_t q;
    sl_reading_t got[ROWS];
    size_t n = 0;

    sl_reading_query_init(&q);
    q.limit = ROWS;
    assert_int_equal(sl_store_readings(st, &q, got, ROWS, &n), SL_OK);
    assert_int_equal(n, EXPECTED_COUNT);
    for (size_t i = 0; i < EXPECTED_COUNT; i++) {
        bool found = false;

        for (size_t j = 0; j < n && !found; j++) {
            found = strcmp(got[j].sensor_id, expected_rows[i].sensor_id) == 0 &&
                    got[j].timestamp_ms == expected_rows[i].ts_ms &&
                    got[j].value == expected_rows[i].value;
        }
        if (!found)
            fail_msg("row %s at %" PRId64 " = %g is not stored",
                     expected_rows[i].sensor_id, expected_rows[i].ts_ms,
                     expected_rows[i].value);
    }
}

/* Checks the dead-letter record of the bad row, read in group dlq_group,
 * and that dlq-messages contains nothing after it. */
static void check_dead_letter(sl_bus_t *bus, const char *dlq_group,
                              int64_t offset)
{
    ch_dlq_record_t rec;
    const char *reason = "ts_out_of_range: timestamp 9223372036854775807 ms";

    assert_int_equal(ch_read_dlq(bus, dlq_group, &rec, 1), 1);
    assert_string_equal(rec.entry.topic, SL_TOPIC_SENSOR_READINGS);
    assert_int_equal(rec.entry.partition, 0);
    assert_int_equal(rec.entry.offset, offset);
    assert_int_equal(rec.entry.error_class, SL_DLQ_VALIDATION);
    if (strncmp(rec.entry.error, reason, strlen(reason)) != 0)
        fail_msg("dead-letter error: %s", rec.entry.error);
    assert_string_equal(rec.key, "sensor-012");
    /* The whole original value is kept, framed as it came. */
    assert_true(rec.value_len > SL_FRAME_HEADER_SIZE);
    assert_int_equal(rec.value_head[0], SL_FRAME_MAGIC);
    assert_string_equal(rec.original_size, "");

    /* The redelivered row left no dead-letter record. */
    assert_int_equal(ch_group_lag(bus, dlq_group, SL_TOPIC_DLQ), 0);
}

static void check_stats(sl_processor_t *proc)
{
    sl_processor_stats_t stats;

    sl_processor_stats(proc, &stats);
    assert_int_equal(stats.consumed, ROWS);
    assert_int_equal(stats.stored, 4);
    assert_int_equal(stats.duplicates, 1);
    assert_int_equal(stats.dead_lettered, 1);
}

/* Checks the one dlq_errors row: the bad row, parked as dead because a
 * validation failure does not heal by retrying. */
static void check_dlq_row(sl_store_t *st, int64_t offset)
{
    int64_t deadline = sl_time_mono_ms() + CH_WAIT_MS;
    sl_dlq_query_t q = {.status = -1, .topic = NULL, .limit = 4};
    sl_dlq_entry_t rows[4];
    size_t n = 0;

    while (sl_store_dlq_count(st) < 1 && sl_time_mono_ms() < deadline)
        ch_sleep_ms(20);
    assert_int_equal(sl_store_dlq_list(st, &q, rows, 4, &n), SL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].topic, SL_TOPIC_SENSOR_READINGS);
    assert_int_equal(rows[0].partition, 0);
    assert_int_equal(rows[0].offset, offset);
    assert_int_equal(rows[0].error_class, SL_DLQ_VALIDATION);
    assert_int_equal(rows[0].status, SL_DLQ_DEAD);
    assert_non_null(strstr(rows[0].error, "ts_out_of_range: timestamp "
                                          "9223372036854775807 ms is "
                                          "outside"));
}

/* The whole case on the store at location. */
static void run_case(const char *location)
{
    sl_bus_t *bus = bus_create(65536);
    ch_codec_t codec;
    sl_processor_config_t cfg;
    sl_store_t *st = ch_store_open(location);
    sl_dlq_handler_t *handler;
    sl_processor_t *proc;
    int64_t bad_offset;

    /* The check group subscribes before the handler runs, so that the
     * in-process bus keeps dlq-messages records until it read them. */
    assert_int_equal(ch_group_lag(bus, "dlq-check", SL_TOPIC_DLQ), 0);
    handler = ch_dlq_handler_start(bus, location);
    ch_codec_init(&codec);
    bad_offset = publish_rows(bus, &codec);
    ch_processor_config(&cfg, bus, &codec, location);
    proc = ch_processor_start(&cfg);

    assert_int_equal(ch_wait_committed(proc, ROWS), 0);
    assert_int_equal(
        ch_committed(bus, PROCESSOR_GROUP, SL_TOPIC_SENSOR_READINGS, 0), ROWS);
    check_stats(proc);
    check_stored_rows(st);
    check_dead_letter(bus, "dlq-check", bad_offset);
    check_dlq_row(st, bad_offset);

    ch_stages_stop(bus, proc, handler);
    sl_store_close(st);
    ch_codec_fini(&codec);
}

static void test_bad_row_sqlite(void **state)
{
    char location[256];

    (void)state;
    ch_sqlite_location(location, sizeof(location));
    run_case(location);
    ch_sqlite_remove(location);
}

/* Starts a throwaway PostgreSQL server as the test's state. The teardown
 * removes it also when a check failed, so no server outlives the test. */
static int pg_setup(void **state)
{
    static sl_pg_harness_t pg;
    char err[512] = "";

    if (sl_pg_harness_start(&pg, err, sizeof(err)) != 0) {
        fprintf(stderr, "PostgreSQL harness: %s\n", err);
        return -1;
    }
    *state = &pg;
    return 0;
}

static int pg_teardown(void **state)
{
    sl_pg_harness_destroy(*state);
    return 0;
}

static void test_bad_row_postgres(void **state)
{
    sl_pg_harness_t *pg = *state;

    run_case(pg->url);
}

/* Fills dlq-messages (capacity records) with records no consumer group
 * reads yet, so the processor's dead-letter publish must wait. */
static void fill_dlq(sl_bus_t *bus, size_t capacity)
{
    for (size_t i = 0; i < capacity; i++)
        assert_int_equal(sl_bus_publish(bus, SL_TOPIC_DLQ, 0, "filler", 6, "x",
                                        1, NULL, 0, 0, NULL),
                         SL_OK);
}

/* Reads and commits the count filler records in group, which frees their
 * room in dlq-messages. */
static void drain_fillers(sl_bus_t *bus, const char *group, size_t count)
{
    const char *topics[] = {SL_TOPIC_DLQ};
    sl_consumer_t *consumer = sl_consumer_create(bus, group, topics, 1);
    sl_msg_t msgs[64];
    size_t got = 0;
    int64_t deadline = sl_time_mono_ms() + CH_WAIT_MS;

    assert_non_null(consumer);
    while (got < count && sl_time_mono_ms() < deadline) {
        size_t n = 0;

        assert_int_equal(sl_consumer_poll(consumer, msgs, count - got, &n, 100),
                         SL_OK);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(msgs[i].key_len, 6);
            assert_memory_equal(msgs[i].key, "filler", 6);
            assert_int_equal(sl_consumer_commit(consumer, SL_TOPIC_DLQ, 0,
                                                msgs[i].offset + 1),
                             SL_OK);
        }
        got += n;
    }
    assert_int_equal(got, count);
    sl_consumer_destroy(consumer);
}

/* While the dead-letter queue cannot take the bad row's copy, the rows are
 * already durable but no offset of the batch is committed. */
static void test_commit_waits_for_dlq(void **state)
{
    const size_t capacity = 16;
    sl_bus_t *bus = bus_create(capacity);
    ch_env_t env;
    sl_processor_config_t cfg;
    sl_processor_t *proc;
    sl_processor_stats_t stats;
    int64_t bad_offset;

    (void)state;
    ch_env_open(&env);
    fill_dlq(bus, capacity);
    bad_offset = publish_rows(bus, &env.codec);
    ch_processor_config(&cfg, bus, &env.codec, env.location);
    proc = ch_processor_start(&cfg);

    assert_int_equal(ch_wait_reading_count(env.st, 4), 4);
    /* Give the processor time to commit if it wrongly would. */
    ch_sleep_ms(1500);
    assert_int_equal(sl_processor_lag(proc), ROWS);
    sl_processor_stats(proc, &stats);
    assert_int_equal(stats.dead_lettered, 0);

    drain_fillers(bus, "dlq-check", capacity);
    assert_int_equal(ch_wait_committed(proc, ROWS), 0);
    assert_int_equal(
        ch_committed(bus, PROCESSOR_GROUP, SL_TOPIC_SENSOR_READINGS, 0), ROWS);
    check_stats(proc);
    check_stored_rows(env.st);
    check_dead_letter(bus, "dlq-check", bad_offset);

    ch_stages_stop(bus, proc, NULL);
    ch_env_close(&env);
}

/* While PostgreSQL is down the batch waits, uncommitted; once it is back
 * the same batch is written and only then committed. */
static void test_commit_waits_for_store(void **state)
{
    sl_bus_t *bus = bus_create(65536);
    ch_codec_t codec;
    sl_processor_config_t cfg;
    sl_pg_harness_t *pg = *state;
    sl_store_t *st;
    sl_processor_t *proc;
    sl_gauge_t *outage =
        sl_metrics_gauge("sluice_store_unavailable",
                         "1 while a stage waits for the store to come back",
                         (const char *[]){"stage", "processor", NULL});
    int64_t deadline, bad_offset;

    assert_non_null(outage);
    st = ch_store_open(pg->url);
    ch_codec_init(&codec);
    ch_processor_config(&cfg, bus, &codec, pg->url);
    proc = ch_processor_start(&cfg);

    assert_int_equal(sl_pg_harness_stop_server(pg), 0);
    bad_offset = publish_rows(bus, &codec);
    deadline = sl_time_mono_ms() + CH_WAIT_MS;
    while (sl_gauge_value(outage) != 1 && sl_time_mono_ms() < deadline)
        ch_sleep_ms(20);
    assert_true(sl_gauge_value(outage) == 1);
    assert_int_equal(sl_processor_lag(proc), ROWS);

    assert_int_equal(sl_pg_harness_start_server(pg), 0);
    assert_int_equal(ch_wait_committed(proc, ROWS), 0);
    assert_true(sl_gauge_value(outage) == 0);
    sl_store_close(st);
    st = ch_store_open(pg->url);
    check_stats(proc);
    check_stored_rows(st);
    check_dead_letter(bus, "dlq-check", bad_offset);

    ch_stages_stop(bus, proc, NULL);
    sl_store_close(st);
    ch_codec_fini(&codec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_row_sqlite),
        cmocka_unit_test_setup_teardown(test_bad_row_postgres, pg_setup,
                                        pg_teardown),
        cmocka_unit_test(test_commit_waits_for_dlq),
        cmocka_unit_test_setup_teardown(test_commit_waits_for_store, pg_setup,
                                        pg_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
