/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Producer guarantees of the Kafka bus on librdkafka's mock cluster: a
 * retried produce request neither reorders nor duplicates readings of one
 * sensor, and a record the cluster never acknowledged is reported as
 * failed instead of accepted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bus/bus.h"
#include "kafka_harness.h"
#include "util/err.h"

#define JOIN_TIMEOUT_MS 20000 /* the mock delays a group's first join 3 s */
#define LEADER_ID 1           /* the only broker of these clusters */
#define FAILURES_TIMED_OUT                                                     \
    "sluice_kafka_delivery_failures_total{reason=\"_MSG_TIMED_OUT\"}"

static int setup(void **state)
{
    kh_cluster_t *cluster = calloc(1, sizeof(*cluster));

    kh_cluster_start(cluster, 1);
    *state = cluster;
    return 0;
}

static int teardown(void **state)
{
    kh_cluster_stop(*state);
    free(*state);
    return 0;
}

static void publish_seq(sl_bus_t *bus, const char *topic, const char *key,
                        int seq)
{
    char value[16];

    snprintf(value, sizeof(value), "%d", seq);
    assert_int_equal(sl_bus_publish(bus, topic, -1, key, strlen(key), value,
                                    strlen(value), NULL, 0, 1000, NULL),
                     SL_OK);
}

/* Readings 3 and 4 travel in one produce request that the
 * leader fails with a retriable NOT_LEADER_FOR_PARTITION; the idempotent
 * producer retries it, and the partition must hold 1..6 in order, each
 * once. */
static void test_producer_retry_keeps_per_key_order(void **state)
{
    kh_cluster_t *cluster = *state;
    const char *topic = "retry-readings";
    const char *key = "sensor-050";
    char values[2][16] = {"3", "4"};
    sl_bus_record_t batch[2];
    kh_record_t got[16];
    size_t pending = 1;
    sl_bus_t *bus;
    sl_consumer_t *consumer;
    size_t n;

    kh_topic_create(cluster, topic, 6);
    bus = kh_bus_create(cluster->bootstraps, NULL, 0);
    publish_seq(bus, topic, key, 1);
    publish_seq(bus, topic, key, 2);

    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(
                         cluster->mock, LEADER_ID, KH_API_PRODUCE, 1,
                         RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = 0; i < 2; i++)
        batch[i] = (sl_bus_record_t){.topic = topic,
                                     .partition = -1,
                                     .key = key,
                                     .key_len = strlen(key),
                                     .value = values[i],
                                     .value_len = strlen(values[i])};
    assert_int_equal(sl_bus_publish_batch(bus, batch, 2, 1000), SL_OK);
    assert_int_equal(batch[0].status, SL_OK);
    assert_int_equal(batch[1].status, SL_OK);
    assert_int_equal(batch[1].offset, batch[0].offset + 1);

    /* The injected error was consumed, so the request was really retried.
     */
    assert_int_equal(rd_kafka_mock_broker_error_stack_cnt(
                         cluster->mock, LEADER_ID, KH_API_PRODUCE, &pending),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(pending, 0);

    publish_seq(bus, topic, key, 5);
    publish_seq(bus, topic, key, 6);

    consumer = sl_consumer_create(bus, "retry", &topic, 1);
    assert_non_null(consumer);
    n = kh_drain(consumer, got, 16, 6, JOIN_TIMEOUT_MS, true);
    assert_int_equal(n, 6);

    /* Wait a little longer: a duplicate would show up as a seventh. */
    assert_int_equal(kh_drain(consumer, got + n, 16 - n, 1, 500, true), 0);
    for (int i = 0; i < 6; i++) {
        char want[16];

        snprintf(want, sizeof(want), "%d", i + 1);
        assert_string_equal(got[i].value, want);
        assert_string_equal(got[i].key, key);
        assert_int_equal(got[i].partition, got[0].partition);
        assert_int_equal(got[i].offset, got[0].offset + i);
    }

    sl_consumer_destroy(consumer);
    sl_bus_destroy(bus);
}

/* With the only broker down, the record times out in the producer after
 * its retries. Publish reports the failure and the failure counter grows,
 * so nothing claims the record was accepted. */
static void test_delivery_failure_is_surfaced(void **state)
{
    kh_cluster_t *cluster = *state;
    const char *topic = "down-readings";
    const char *props[] = {"producer.message.timeout.ms=1500"};
    int64_t offset = 12345;
    int64_t started;
    sl_bus_t *bus;

    double failures_before;
    sl_bus_record_t batch[2] = {
        {.topic = topic,
         .partition = -1,
         .key = "s",
         .key_len = 1,
         .value = "a",
         .value_len = 1},
        {.topic = topic,
         .partition = -1,
         .key = "t",
         .key_len = 1,
         .value = "b",
         .value_len = 1},
    };

    kh_topic_create(cluster, topic, 2);
    bus = kh_bus_create(cluster->bootstraps, props, 1);
    assert_int_equal(sl_bus_partition_count(bus, topic), 2);
    failures_before = kh_metric_value(FAILURES_TIMED_OUT);
    if (failures_before < 0)
        failures_before = 0;

    assert_int_equal(rd_kafka_mock_broker_set_down(cluster->mock, LEADER_ID),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    started = kh_now_ms();
    assert_int_equal(
        sl_bus_publish(bus, topic, -1, "s", 1, "v", 1, NULL, 0, 1000, &offset),
        SL_ETIMEDOUT);
    assert_true(kh_now_ms() - started < 10000);
    assert_int_equal(offset, 12345);

    /* In a batch, each record reports its own failure. */
    assert_int_equal(sl_bus_publish_batch(bus, batch, 2, 1000), SL_ETIMEDOUT);
    assert_int_equal(batch[0].status, SL_ETIMEDOUT);
    assert_int_equal(batch[1].status, SL_ETIMEDOUT);
    assert_int_equal(batch[1].offset, -1);
    assert_true(kh_metric_value(FAILURES_TIMED_OUT) == failures_before + 3);
    assert_int_equal(rd_kafka_mock_broker_set_up(cluster->mock, LEADER_ID),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    sl_bus_destroy(bus);
}

/* Within one linger period, a 1,500,000-byte record is refused
 * up front with SL_ETOOBIG, and the three small readings after it on the
 * same partition are delivered and consumable. */
static void test_oversized_record_spares_its_neighbours(void **state)
{
    enum { BIG = 1500000 };
    kh_cluster_t *cluster = *state;
    const char *topic = "oversize-readings";
    const char *props[] = {"producer.linger.ms=50"};
    const char *small[] = {
        "{\"sensor_id\":\"sensor-001\",\"value\":21.5,\"seq\":1}",
        "{\"sensor_id\":\"sensor-001\",\"value\":21.6,\"seq\":2}",
        "{\"sensor_id\":\"sensor-002\",\"value\":48.0,\"seq\":3}",
    };
    char *big = malloc(BIG);
    sl_bus_record_t batch[4];
    kh_record_t got[8];
    sl_consumer_t *consumer;
    sl_bus_t *bus;

    assert_non_null(big);
    memset(big, 'd', BIG);
    kh_topic_create(cluster, topic, 2);
    bus = kh_bus_create(cluster->bootstraps, props, 1);
    batch[0] = (sl_bus_record_t){.topic = topic,
                                 .partition = 0,
                                 .key = "order-1",
                                 .key_len = 7,
                                 .value = big,
                                 .value_len = BIG};
    for (int i = 0; i < 3; i++)
        batch[i + 1] = (sl_bus_record_t){.topic = topic,
                                         .partition = 0,
                                         .key = "sensor-001",
                                         .key_len = 10,
                                         .value = small[i],
                                         .value_len = strlen(small[i])};
    assert_int_equal(sl_bus_publish_batch(bus, batch, 4, 1000), SL_ETOOBIG);
    assert_int_equal(batch[0].status, SL_ETOOBIG);
    assert_int_equal(batch[0].offset, -1);
    for (int i = 1; i < 4; i++) {
        assert_int_equal(batch[i].status, SL_OK);
        assert_true(batch[i].offset >= 0);
    }
    assert_int_equal(batch[2].offset, batch[1].offset + 1);
    assert_int_equal(batch[3].offset, batch[2].offset + 1);
    assert_int_equal(
        sl_bus_publish(bus, topic, 0, "k", 1, big, BIG, NULL, 0, 1000, NULL),
        SL_ETOOBIG);
    free(big);

    consumer = sl_consumer_create(bus, "oversize", &topic, 1);
    assert_non_null(consumer);
    assert_int_equal(kh_drain(consumer, got, 8, 3, JOIN_TIMEOUT_MS, true), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(got[i].partition, 0);
        assert_int_equal(got[i].offset, batch[i + 1].offset);
        /* kh_record_t keeps 63 bytes of a value; these are shorter. */
        assert_string_equal(got[i].value, small[i]);
    }
    sl_consumer_destroy(consumer);
    sl_bus_destroy(bus);
}

/* Records without headers that librdkafka refuses when producev is
 * called: first for a full local queue (two records fit, the broker is
 * down), then for a size just under message.max.bytes that its framing
 * pushes over. Each gets its status, and nothing crashes. */
static void test_unqueued_headerless_records(void **state)
{
    kh_cluster_t *cluster = *state;
    const char *topic = "refused-readings";
    const char *props[] = {"producer.queue.buffering.max.messages=2",
                           "producer.message.timeout.ms=1500",
                           "producer.message.max.bytes=3000"};
    static char near_limit[2990];
    sl_bus_record_t batch[4];
    sl_bus_t *bus;

    kh_topic_create(cluster, topic, 1);
    bus = kh_bus_create(cluster->bootstraps, props, 3);
    assert_int_equal(sl_bus_partition_count(bus, topic), 1);
    for (int i = 0; i < 4; i++)
        batch[i] = (sl_bus_record_t){.topic = topic,
                                     .partition = -1,
                                     .key = "s",
                                     .key_len = 1,
                                     .value = "v",
                                     .value_len = 1};

    assert_int_equal(rd_kafka_mock_broker_set_down(cluster->mock, LEADER_ID),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(sl_bus_publish_batch(bus, batch, 4, 200), SL_ETIMEDOUT);
    assert_int_equal(batch[0].status, SL_ETIMEDOUT);
    assert_int_equal(batch[1].status, SL_ETIMEDOUT);
    assert_int_equal(batch[2].status, SL_EFULL);
    assert_int_equal(batch[3].status, SL_EFULL);
    assert_int_equal(rd_kafka_mock_broker_set_up(cluster->mock, LEADER_ID),
                     RD_KAFKA_RESP_ERR_NO_ERROR);

    memset(near_limit, 'n', sizeof(near_limit));
    assert_int_equal(sl_bus_publish(bus, topic, -1, "k", 1, near_limit,
                                    sizeof(near_limit), NULL, 0, 1000, NULL),
                     SL_ETOOBIG);
    sl_bus_destroy(bus);
}

static void test_publish_after_close_fails(void **state)
{
    kh_cluster_t *cluster = *state;
    sl_bus_t *bus = kh_bus_create(cluster->bootstraps, NULL, 0);
    sl_bus_record_t rec = {.topic = "closed-readings",
                           .partition = -1,
                           .key = "k",
                           .key_len = 1,
                           .value = "v",
                           .value_len = 1};

    sl_bus_close(bus);
    assert_int_equal(sl_bus_publish(bus, "closed-readings", -1, "k", 1, "v", 1,
                                    NULL, 0, 1000, NULL),
                     SL_ECLOSED);
    assert_int_equal(sl_bus_publish_batch(bus, &rec, 1, 1000), SL_ECLOSED);
    assert_int_equal(rec.status, SL_ECLOSED);
    sl_bus_destroy(bus);
}

static void test_create_rejects_bad_config(void **state)
{
    sl_bus_kafka_config_t cfg;
    const char *bad_key[] = {"no.such.property=1"};
    const char *no_equals[] = {"linger.ms"};
    char err[256] = "";

    (void)state;
    sl_bus_kafka_config_init(&cfg);
    assert_int_equal(cfg.partitions, 6);
    assert_null(sl_bus_kafka_create(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "brokers"));

    cfg.brokers = "127.0.0.1:9";
    cfg.properties = bad_key;
    cfg.property_count = 1;
    assert_null(sl_bus_kafka_create(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "no.such.property"));

    cfg.properties = no_equals;
    assert_null(sl_bus_kafka_create(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "key=value"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producer_retry_keeps_per_key_order),
        cmocka_unit_test(test_delivery_failure_is_surfaced),
        cmocka_unit_test(test_oversized_record_spares_its_neighbours),
        cmocka_unit_test(test_unqueued_headerless_records),
        cmocka_unit_test(test_publish_after_close_fails),
        cmocka_unit_test(test_create_rejects_bad_config),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
