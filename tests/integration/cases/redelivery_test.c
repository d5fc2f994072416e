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
#include "kafka_harness.h"
#include "util/err.h"
#include "util/timeutil.h"

#define ROWS 10
#define COMMITTED_BY_FIRST 5
#define T0 INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define MINUTE_MS 60000
#define PROCESSOR_GROUP "sluice-processor"

/* Publishes the case's rows to partition 0, checking each lands at the
 * offset the fixture names. */
static void publish_rows(sl_bus_t *bus, ch_codec_t *codec)
{
    sl_reading_t rows[ROWS + 1];

    assert_int_equal(
        ch_load_readings("B17", "partition0_offsets.csv", rows, ROWS + 1),
        ROWS);
    for (int i = 0; i < ROWS; i++)
        assert_int_equal(ch_publish_reading(bus, codec, &rows[i], 0), i);
}

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
    ch_codec_t codec;
    sl_processor_config_t cfg;
    char location[256];
    sl_store_t *st;
    sl_processor_t *proc;
    sl_processor_stats_t stats;
    sl_aggregate_t agg;

    ch_sqlite_location(location, sizeof(location));
    st = ch_store_open(location);
    ch_codec_init(&codec);
    publish_rows(bus, &codec);
    first_member(bus, &codec, st);
    assert_int_equal(
        ch_committed(bus, PROCESSOR_GROUP, SL_TOPIC_SENSOR_READINGS, 0),
        COMMITTED_BY_FIRST);

    ch_processor_config(&cfg, bus, &codec, location);
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
    assert_int_equal(sl_store_reading_count(st), ROWS);
    assert_int_equal(ch_group_lag(bus, "dlq-check", SL_TOPIC_DLQ), 0);

    /* Stopping writes the open window. */
    sl_bus_close(bus);
    sl_processor_stop(proc);
    assert_true(ch_aggregate(st, "sensor-030", T0, &agg));
    assert_int_equal(agg.window_end_ms, T0 + MINUTE_MS);
    assert_int_equal(agg.count, ROWS);
    assert_true(fabs(agg.avg - 24.5) < 1e-9);
    assert_true(agg.min == 20.0);
    assert_true(agg.max == 29.0);

    sl_store_close(st);
    ch_codec_fini(&codec);
    ch_sqlite_remove(location);
}

static void test_redelivery_memory_bus(void **state)
{
    sl_bus_memory_config_t cfg;
    sl_bus_t *bus;

    (void)state;
    sl_bus_memory_config_init(&cfg);
    cfg.partitions = 1;
    bus = sl_bus_memory_create(&cfg);
    assert_non_null(bus);
    run_case(bus);
    sl_bus_destroy(bus);
}

static void test_redelivery_kafka(void **state)
{
    kh_cluster_t cluster;
    sl_bus_t *bus;

    (void)state;
    kh_cluster_start(&cluster, 1);
    kh_topic_create(&cluster, SL_TOPIC_SENSOR_READINGS, 1);
    kh_topic_create(&cluster, SL_TOPIC_ECOMMERCE_EVENTS, 1);
    kh_topic_create(&cluster, SL_TOPIC_DLQ, 1);
    bus = kh_bus_create(cluster.bootstraps, NULL, 0);
    run_case(bus);
    sl_bus_destroy(bus);
    kh_cluster_stop(&cluster);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redelivery_memory_bus),
        cmocka_unit_test(test_redelivery_kafka),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
