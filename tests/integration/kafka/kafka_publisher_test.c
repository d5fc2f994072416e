/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The batching publisher on librdkafka's mock cluster. A full batch goes
 * to the bus without waiting for its acknowledgements, so several are in
 * the cluster at once. These tests check how many, and that every record
 * arrives once and in order per key even when the producer retries. They
 * also check that a failure of an early batch reaches the report
 * function, in record order, and the return of the next flush.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bus/bus.h"
#include "kafka_harness.h"
#include "pipeline/publish.h"
#include "schema/schema.h"
#include "util/err.h"

#define JOIN_TIMEOUT_MS 20000 /* the mock delays a group's first join 3 s */
#define LEADER_ID 1           /* the only broker of these clusters */
#define BATCH 100
#define KEYS 7
#define RECORDS 1000
/* Batches the publisher leaves unsettled in the bus, at most: its
 * PUBLISH_IN_FLIGHT. */
#define IN_FLIGHT 4

typedef struct fixture {
    kh_cluster_t cluster;
    sl_registry_t *registry;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    kh_cluster_start(&f->cluster, 1);
    f->registry = sl_registry_create();
    assert_non_null(f->registry);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    sl_registry_destroy(f->registry);
    kh_cluster_stop(&f->cluster);
    free(f);
    return 0;
}

/* Record i has key "k<i % KEYS>" and value "<i>". */
static void publish_numbered(sl_publisher_t *pub, const char *topic, int i)
{
    char key[16], value[16];

    snprintf(key, sizeof(key), "k%d", i % KEYS);
    snprintf(value, sizeof(value), "%d", i);
    sl_publisher_set_tag(pub, (uint64_t)i);
    assert_int_equal(
        sl_publish_frame(pub, topic, key, strlen(key), value, strlen(value)),
        SL_OK);
}

/* The publisher settles a batch only when a free slot is needed or at a
 * flush, so after ten full batches exactly IN_FLIGHT of them are still
 * unsettled. Two produce requests fail with a retriable error on the way,
 * and every record must still arrive once, in order per key. */
static void test_batches_overlap_and_keep_order(void **state)
{
    fixture_t *f = *state;
    const char *topic = "overlap-readings";
    static kh_record_t got[RECORDS + 1];
    int next_of_key[KEYS];
    sl_publisher_stats_t stats;
    sl_publisher_t *pub;
    sl_consumer_t *consumer;
    sl_bus_t *bus;
    size_t n;

    kh_topic_create(&f->cluster, topic, 3);
    bus = kh_bus_create(f->cluster.bootstraps, NULL, 0);
    pub = sl_publisher_create(bus, f->registry, 5000);
    assert_non_null(pub);
    assert_int_equal(sl_publisher_set_batch(pub, BATCH), SL_OK);
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(
                         f->cluster.mock, LEADER_ID, KH_API_PRODUCE, 2,
                         RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0,
                         RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0),
                     RD_KAFKA_RESP_ERR_NO_ERROR);

    for (int i = 0; i < RECORDS; i++) {
        publish_numbered(pub, topic, i);
        /* A batch just went out: at most IN_FLIGHT are in the bus. */
        sl_publisher_stats(pub, &stats);
        if ((i + 1) % BATCH == 0)
            assert_true(stats.queued <= IN_FLIGHT * BATCH);
    }
    assert_int_equal(stats.queued, IN_FLIGHT * BATCH);
    assert_int_equal(stats.published, RECORDS - IN_FLIGHT * BATCH);
    assert_int_equal(stats.failed, 0);

    assert_int_equal(sl_publisher_flush(pub), SL_OK);
    sl_publisher_stats(pub, &stats);
    assert_int_equal(stats.queued, 0);
    assert_int_equal(stats.published, RECORDS);

    consumer = sl_consumer_create(bus, "overlap", &topic, 1);
    assert_non_null(consumer);
    n = kh_drain(consumer, got, RECORDS + 1, RECORDS, JOIN_TIMEOUT_MS, true);
    assert_int_equal(n, RECORDS);
    /* A duplicate would show up as one more. */
    assert_int_equal(kh_drain(consumer, got + n, 1, 1, 500, true), 0);

    for (int k = 0; k < KEYS; k++)
        next_of_key[k] = k;
    for (size_t i = 0; i < n; i++) {
        int value = atoi(got[i].value);
        int k = value % KEYS;
        char want_key[16];

        snprintf(want_key, sizeof(want_key), "k%d", k);
        assert_string_equal(got[i].key, want_key);
        assert_int_equal(value, next_of_key[k]);
        next_of_key[k] += KEYS;
    }

    sl_consumer_destroy(consumer);
    sl_publisher_destroy(pub);
    sl_bus_destroy(bus);
}

typedef struct reports {
    uint64_t tags[RECORDS];
    int status[RECORDS];
    size_t count;
} reports_t;

static void on_report(void *ctx, const sl_publish_report_t *report)
{
    reports_t *r = ctx;

    if (r->count < RECORDS) {
        r->tags[r->count] = report->tag;
        r->status[r->count] = report->status;
    }
    r->count++;
}

/* With the only broker down, three batches go to the bus before any is
 * settled, and each record times out. The reports come in record order.
 * The flush that settles them returns the failure, although the publish
 * calls before it sent the batches. */
static void test_flush_returns_failure_of_earlier_batches(void **state)
{
    fixture_t *f = *state;
    const char *topic = "down-readings";
    const char *props[] = {"producer.message.timeout.ms=1500"};
    static reports_t reports;
    sl_publisher_stats_t stats;
    sl_publisher_t *pub;
    sl_bus_t *bus;
    const int count = 3 * 10;

    kh_topic_create(&f->cluster, topic, 2);
    bus = kh_bus_create(f->cluster.bootstraps, props, 1);
    assert_int_equal(sl_bus_partition_count(bus, topic), 2);
    pub = sl_publisher_create(bus, f->registry, 1000);
    assert_non_null(pub);
    assert_int_equal(sl_publisher_set_batch(pub, 10), SL_OK);
    sl_publisher_set_report(pub, on_report, &reports);

    assert_int_equal(rd_kafka_mock_broker_set_down(f->cluster.mock, LEADER_ID),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = 0; i < count; i++)
        publish_numbered(pub, topic, i);
    sl_publisher_stats(pub, &stats);
    assert_int_equal(stats.queued, count);
    assert_int_equal(reports.count, 0);

    assert_int_equal(sl_publisher_flush(pub), SL_ETIMEDOUT);
    assert_int_equal(reports.count, count);
    for (int i = 0; i < count; i++) {
        assert_int_equal(reports.tags[i], i);
        assert_int_equal(reports.status[i], SL_ETIMEDOUT);
    }
    sl_publisher_stats(pub, &stats);
    assert_int_equal(stats.failed, count);
    assert_int_equal(stats.queued, 0);
    /* The failure was returned once; nothing new failed since. */
    assert_int_equal(sl_publisher_flush(pub), SL_OK);

    assert_int_equal(rd_kafka_mock_broker_set_up(f->cluster.mock, LEADER_ID),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    sl_publisher_set_report(pub, NULL, NULL);
    sl_publisher_destroy(pub);
    sl_bus_destroy(bus);
}

/* A batch with an invalid record is settled at once: no flight is
 * returned, and every status is final. */
static void test_start_without_flight_on_invalid_record(void **state)
{
    fixture_t *f = *state;
    const char *topic = "invalid-readings";
    sl_bus_record_t batch[2] = {
        {.topic = topic,
         .partition = -1,
         .key = "a",
         .key_len = 1,
         .value = "1",
         .value_len = 1},
        {.topic = "bad topic",
         .partition = -1,
         .key = "a",
         .key_len = 1,
         .value = "2",
         .value_len = 1},
    };
    sl_bus_flight_t *flight = (sl_bus_flight_t *)batch;
    sl_bus_t *bus;

    kh_topic_create(&f->cluster, topic, 1);
    bus = kh_bus_create(f->cluster.bootstraps, NULL, 0);
    assert_int_equal(sl_bus_publish_start(bus, batch, 2, 1000, &flight),
                     SL_EINVAL);
    assert_null(flight);
    assert_int_equal(batch[0].status, SL_EINVAL);
    assert_int_equal(batch[1].status, SL_EINVAL);

    batch[1].topic = topic;
    assert_int_equal(sl_bus_publish_start(bus, batch, 2, 1000, &flight), SL_OK);
    assert_non_null(flight);
    assert_int_equal(sl_bus_publish_finish(flight), SL_OK);
    assert_int_equal(batch[0].status, SL_OK);
    assert_int_equal(batch[1].offset, batch[0].offset + 1);
    sl_bus_destroy(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batches_overlap_and_keep_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_flush_returns_failure_of_earlier_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_start_without_flight_on_invalid_record, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
