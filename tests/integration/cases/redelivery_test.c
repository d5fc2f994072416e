/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Redelivery after a consumer-group rebalance counts each reading once.
 * Partition 0 of sensor-readings contains offsets 0..9 (sensor-030, values
 * 20..29, one second apart). A first member of the processor's group polls
 * all ten and stores them, but commits only offset 5 before it leaves, as
 * a member that loses its partition mid-batch does. The processor then
 * joins the same group and gets offsets 5..9 a second time. The store must
 * hold ten rows, the window [00:00, 00:01) must report n = 10 and
 * avg = 24.5, and no record may reach the dead-letter queue. Runs on the
 * in-process bus and on librdkafka's mock cluster.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cases_harness.h"
#include "util/err.h"
#include "util/timeutil.h"

#define ROWS 10
#define COMMITTED_BY_FIRST 5
#define T0 INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define MINUTE_MS 60000
#define PROCESSOR_GROUP "sluice-processor"

/*
 * The first member: polls offsets 0..9 in the processor's group, decodes
 * and stores all ten, commits offset 5 and leaves the group.
 */
static void first_member(sl_bus_t *bus, ch_codec_t *codec, sl_store_t *st)
{
    const char *topics[] = {SL_TOPIC_SENSOR_READINGS};
    sl_consumer_t *consumer =
        sl_consumer_create(bus, PROCESSOR_GROUP, topics, 1);
    sl_decoder_t *decoder = sl_decoder_create(
        codec->registry,
        sl_registry_lookup(
            codec->registry,
            sl_registry_latest_id(codec->registry, "sensor-readings-value")));
    sl_reading_t rows[ROWS];
    sl_msg_t msgs[ROWS];
    size_t got = 0;
    int64_t deadline = sl_time_mono_ms() + CH_WAIT_MS;
    sl_store_batch_t batch = {0};
    sl_store_result_t result;

    assert_non_null(consumer);
    assert_non_null(decoder);
    while (got < ROWS && sl_time_mono_ms() < deadline) {
        size_t n = 0;

        assert_int_equal(sl_consumer_poll(consumer, msgs, ROWS - got, &n, 100),
                         SL_OK);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(msgs[i].offset, (int64_t)got);
            assert_int_equal(sl_reading_decode(decoder, msgs[i].value,
                                               msgs[i].value_len, &rows[got]),
                             SL_DECODE_OK);
            got++;
        }
    }
    assert_int_equal(got, ROWS);

    batch.readings = rows;
    batch.reading_count = ROWS;
    assert_int_equal(sl_store_write(st, &batch, &result, NULL, NULL), SL_OK);
    assert_int_equal(result.readings_inserted, ROWS);
    assert_int_equal(sl_consumer_commit(consumer, SL_TOPIC_SENSOR_READINGS, 0,
                                        COMMITTED_BY_FIRST),
                     SL_OK);
    sl_decoder_destroy(decoder);
    sl_consumer_destroy(consumer);
}

/* The case on bus, which has one partition per topic. */
static void run_case(sl_bus_t *bus)
{
    ch_env_t env;
    sl_processor_config_t cfg;
    sl_processor_t *proc;
    sl_processor_stats_t stats;
    sl_aggregate_t agg;

    ch_env_open(&env);
    ch_publish_fixture(bus, &env.codec, "B17", "partition0_offsets.csv", ROWS);
    first_member(bus, &env.codec, env.st);
    assert_int_equal(
        ch_committed(bus, PROCESSOR_GROUP, SL_TOPIC_SENSOR_READINGS, 0),
        COMMITTED_BY_FIRST);

    ch_processor_config(&cfg, bus, &env.codec, env.location);
    proc = ch_processor_start(&cfg);
    assert_int_equal(ch_wait_committed(proc, ROWS - COMMITTED_BY_FIRST), 0);
    assert_int_equal(
        ch_committed(bus, PROCESSOR_GROUP, SL_TOPIC_SENSOR_READINGS, 0), ROWS);

    /* Offsets 5..9 came again, and all five were already stored. */
    sl_processor_stats(proc, &stats);
    assert_int_equal(stats.consumed, ROWS - COMMITTED_BY_FIRST);
    assert_int_equal(stats.duplicates, ROWS - COMMITTED_BY_FIRST);
    assert_int_equal(stats.stored, 0);
    assert_int_equal(stats.dead_lettered, 0);
    assert_int_equal(sl_store_reading_count(env.st), ROWS);
    assert_int_equal(ch_group_lag(bus, "dlq-check", SL_TOPIC_DLQ), 0);

    /* Stopping writes the open window. */
    sl_bus_close(bus);
    sl_processor_stop(proc);
    assert_true(ch_aggregate(env.st, "sensor-030", T0, &agg));
    assert_int_equal(agg.window_end_ms, T0 + MINUTE_MS);
    assert_int_equal(agg.count, ROWS);
    assert_true(fabs(agg.avg - 24.5) < 1e-9);
    assert_true(agg.min == 20.0);
    assert_true(agg.max == 29.0);

    ch_env_close(&env);
}

static void test_redelivery_memory_bus(void **state)
{
    sl_bus_t *bus = ch_memory_bus(1);

    (void)state;
    run_case(bus);
    sl_bus_destroy(bus);
}

static void test_redelivery_kafka(void **state)
{
    kh_cluster_t cluster;
    sl_bus_t *bus;

    (void)state;
    ch_kafka_cluster_start(&cluster);
    bus = kh_bus_create(cluster.bootstraps, NULL, 0);
    run_case(bus);
    sl_bus_destroy(bus);
    kh_cluster_stop(&cluster);
}

/* Moves the group's commit of partition 0 back to next_offset, as a
 * member that crashed before its last commit leaves it. */
static void rewind_group(sl_bus_t *bus, int64_t next_offset)
{
    const char *topics[] = {SL_TOPIC_SENSOR_READINGS};
    sl_consumer_t *consumer =
        sl_consumer_create(bus, PROCESSOR_GROUP, topics, 1);
    int64_t deadline = sl_time_mono_ms() + CH_WAIT_MS;
    int rc = SL_EBUSY;

    assert_non_null(consumer);
    /* A commit needs the partition assigned, which takes a group join:
     * SL_EBUSY until then. The polls return nothing, all is committed. */
    while (rc == SL_EBUSY && sl_time_mono_ms() < deadline) {
        sl_msg_t msg;
        size_t n = 0;

        assert_int_equal(sl_consumer_poll(consumer, &msg, 1, &n, 100), SL_OK);
        assert_int_equal(n, 0);
        rc = sl_consumer_commit(consumer, SL_TOPIC_SENSOR_READINGS, 0,
                                next_offset);
    }
    assert_int_equal(rc, SL_OK);
    sl_consumer_destroy(consumer);
}

/* One run of processor and dead-letter handler on a fresh bus of the
 * cluster, until the group committed everything; want_consumed records
 * are expected. OUT: *stats. */
static void run_stages(kh_cluster_t *cluster, const char *location,
                       uint64_t want_consumed, sl_processor_stats_t *stats)
{
    sl_bus_t *bus = kh_bus_create(cluster->bootstraps, NULL, 0);
    ch_codec_t codec;
    sl_processor_config_t cfg;
    sl_dlq_handler_t *handler = ch_dlq_handler_start(bus, location);
    sl_processor_t *proc;

    ch_codec_init(&codec);
    ch_processor_config(&cfg, bus, &codec, location);
    proc = ch_processor_start(&cfg);
    assert_int_equal(ch_wait_committed(proc, want_consumed), 0);
    sl_processor_stats(proc, stats);
    ch_stages_stop(bus, proc, handler);
    ch_codec_fini(&codec);
}

/*
 * A record that failed is dead-lettered again when it is redelivered, but
 * the store keeps one dlq_errors row per source position. Offset 7 of the
 * case gets an event time no store can hold. After a first run the group
 * is rewound to 5, and a second processor gets 5..9 again.
 */
static void test_redelivered_failure_one_dlq_row(void **state)
{
    const int bad = 7;
    kh_cluster_t cluster;
    sl_bus_t *bus;
    ch_env_t env;
    sl_reading_t rows[ROWS + 1];
    sl_processor_stats_t first, second;
    sl_dlq_query_t q = {.status = -1, .topic = NULL, .limit = 4};
    sl_dlq_entry_t dlq_rows[4];
    size_t n = 0;

    (void)state;
    ch_kafka_cluster_start(&cluster);
    ch_env_open(&env);
    bus = kh_bus_create(cluster.bootstraps, NULL, 0);
    assert_int_equal(
        ch_load_readings("B17", "partition0_offsets.csv", rows, ROWS + 1),
        ROWS);
    rows[bad].timestamp_ms = INT64_MAX;
    for (int i = 0; i < ROWS; i++)
        assert_int_equal(ch_publish_reading(bus, &env.codec, &rows[i], 0), i);
    sl_bus_close(bus);
    sl_bus_destroy(bus);

    run_stages(&cluster, env.location, ROWS, &first);
    assert_int_equal(first.stored, ROWS - 1);
    assert_int_equal(first.dead_lettered, 1);

    bus = kh_bus_create(cluster.bootstraps, NULL, 0);
    rewind_group(bus, COMMITTED_BY_FIRST);
    sl_bus_destroy(bus);
    run_stages(&cluster, env.location, ROWS - COMMITTED_BY_FIRST, &second);
    assert_int_equal(second.consumed, ROWS - COMMITTED_BY_FIRST);
    assert_int_equal(second.duplicates, ROWS - COMMITTED_BY_FIRST - 1);
    assert_int_equal(second.stored, 0);
    assert_int_equal(second.dead_lettered, 1);

    assert_int_equal(sl_store_reading_count(env.st), ROWS - 1);
    assert_int_equal(sl_store_dlq_list(env.st, &q, dlq_rows, 4, &n), SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(dlq_rows[0].offset, bad);
    assert_int_equal(dlq_rows[0].status, SL_DLQ_DEAD);

    ch_env_close(&env);
    kh_cluster_stop(&cluster);
}

/* Publishes count readings of sensor-040 to partition 1, one a second
 * from first_s seconds after T0, value = seconds after T0. */
static void publish_seconds(sl_bus_t *bus, ch_codec_t *codec, int first_s,
                            int count)
{
    for (int i = first_s; i < first_s + count; i++) {
        sl_reading_t rec = ch_reading("sensor-040", SL_SENSOR_TEMPERATURE,
                                      T0 + i * 1000, (double)i);

        ch_publish_reading(bus, codec, &rec, 1);
    }
}

/* A second member of the group: takes partition 1 while it is in the
 * group, stores the count records it polls and commits them, then
 * leaves, which hands the partition back. */
static void other_member(sl_bus_t *bus, ch_env_t *env, int first_s, int count)
{
    const char *topics[] = {SL_TOPIC_SENSOR_READINGS};
    sl_consumer_t *consumer =
        sl_consumer_create(bus, PROCESSOR_GROUP, topics, 1);
    sl_decoder_t *decoder = sl_decoder_create(
        env->codec.registry,
        sl_registry_lookup(env->codec.registry,
                           sl_registry_latest_id(env->codec.registry,
                                                 "sensor-readings-value")));
    sl_reading_t rows[16];
    sl_msg_t msgs[16];
    size_t got = 0;
    int64_t deadline = sl_time_mono_ms() + CH_WAIT_MS;
    sl_store_batch_t batch = {0};
    int64_t next_offset = -1;

    assert_non_null(consumer);
    assert_non_null(decoder);
    assert_true(count <= 16);
    publish_seconds(bus, &env->codec, first_s, count);
    while (got < (size_t)count && sl_time_mono_ms() < deadline) {
        size_t n = 0;

        assert_int_equal(
            sl_consumer_poll(consumer, msgs, (size_t)count - got, &n, 100),
            SL_OK);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(msgs[i].partition, 1);
            assert_int_equal(sl_reading_decode(decoder, msgs[i].value,
                                               msgs[i].value_len, &rows[got]),
                             SL_DECODE_OK);
            next_offset = msgs[i].offset + 1;
            got++;
        }
    }
    assert_int_equal(got, count);
    batch.readings = rows;
    batch.reading_count = got;
    assert_int_equal(sl_store_write(env->st, &batch, NULL, NULL, NULL), SL_OK);
    assert_int_equal(
        sl_consumer_commit(consumer, SL_TOPIC_SENSOR_READINGS, 1, next_offset),
        SL_OK);
    sl_decoder_destroy(decoder);
    sl_consumer_destroy(consumer);
}

/*
 * A partition that moves to another member and back must not leave the
 * processor's in-memory window short of the rows the other member stored.
 * sensor-040 sends 0:30, then 1:00..1:09 to the processor, 1:10..1:19 to
 * a second member, and 1:20..1:29 to the processor again: the window
 * [00:01, 00:02) must report all 30 readings, not the processor's 20.
 */
static void test_partition_back_after_rebalance(void **state)
{
    sl_bus_t *bus = ch_memory_bus(2);
    ch_env_t env;
    sl_processor_config_t cfg;
    sl_processor_t *proc;
    sl_processor_stats_t stats;
    sl_aggregate_t agg;

    (void)state;
    ch_env_open(&env);
    ch_processor_config(&cfg, bus, &env.codec, env.location);
    proc = ch_processor_start(&cfg);
    publish_seconds(bus, &env.codec, 30, 1);
    publish_seconds(bus, &env.codec, 60, 10);
    assert_int_equal(ch_wait_committed(proc, 11), 0);

    /* The in-process bus assigns partitions round-robin in join order, so
     * the second member gets partition 1 while it is in the group. */
    other_member(bus, &env, 70, 10);
    publish_seconds(bus, &env.codec, 80, 10);
    assert_int_equal(ch_wait_committed(proc, 21), 0);
    sl_processor_stats(proc, &stats);
    assert_int_equal(stats.consumed, 21);
    assert_int_equal(stats.duplicates, 0);

    ch_stages_stop(bus, proc, NULL);
    assert_int_equal(sl_store_reading_count(env.st), 31);
    assert_true(ch_aggregate(env.st, "sensor-040", T0 + MINUTE_MS, &agg));
    assert_int_equal(agg.count, 30);
    assert_true(agg.min == 60.0);
    assert_true(agg.max == 89.0);
    assert_true(fabs(agg.avg - 74.5) < 1e-9);
    ch_env_close(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redelivery_memory_bus),
        cmocka_unit_test(test_partition_back_after_rebalance),
        cmocka_unit_test(test_redelivery_kafka),
        cmocka_unit_test(test_redelivered_failure_one_dlq_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
