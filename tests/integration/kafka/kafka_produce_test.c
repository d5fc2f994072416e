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

/* Readings 3 and 4 travel in one produce request that the leader fails
 * with a retriable NOT_LEADER_FOR_PARTITION; the idempotent producer
 * retries it, and the partition must hold 1..6 in order, each once. */
static void test_retried_request_keeps_order(void **state)
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

/* With the only broker down, the record times out in the producer and
 * publish reports the failure; nothing claims it was accepted. */
static void test_undelivered_record_fails(void **state)
{
    kh_cluster_t *cluster = *state;
    const char *topic = "down-readings";
    const char *props[] = {"producer.message.timeout.ms=1500"};
    int64_t offset = 12345;
    int64_t started;
    sl_bus_t *bus;

    kh_topic_create(cluster, topic, 2);
    bus = kh_bus_create(cluster->bootstraps, props, 1);
    assert_int_equal(sl_bus_partition_count(bus, topic), 2);

    assert_int_equal(rd_kafka_mock_broker_set_down(cluster->mock, LEADER_ID),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    started = kh_now_ms();
    assert_int_equal(
        sl_bus_publish(bus, topic, -1, "s", 1, "v", 1, NULL, 0, 1000, &offset),
        SL_ETIMEDOUT);
    assert_true(kh_now_ms() - started < 10000);
    assert_int_equal(offset, 12345);
    assert_int_equal(rd_kafka_mock_broker_set_up(cluster->mock, LEADER_ID),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
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
        cmocka_unit_test(test_retried_request_keeps_order),
        cmocka_unit_test(test_undelivered_record_fails),
        cmocka_unit_test(test_publish_after_close_fails),
        cmocka_unit_test(test_create_rejects_bad_config),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
