/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kafka bus on librdkafka's in-process mock cluster: records published
 * through bus.h reach a consumer of the same group API, keep per-key order,
 * keep their headers byte for byte, and land on the partition that
 * sl_bus_partition_for_key picks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bus/bus.h"
#include "kafka_harness.h"
#include "util/err.h"

#define JOIN_TIMEOUT_MS 20000 /* the mock delays a group's first join 3 s */

static int setup(void **state)
{
    kh_cluster_t *cluster = calloc(1, sizeof(*cluster));

    kh_cluster_start(cluster, 3);
    *state = cluster;
    return 0;
}

static int teardown(void **state)
{
    kh_cluster_stop(*state);
    free(*state);
    return 0;
}

static int find_value(const kh_record_t *recs, size_t n, const char *topic,
                      const char *value)
{
    int found = -1;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(recs[i].topic, topic) == 0 &&
            strcmp(recs[i].value, value) == 0) {
            if (found >= 0)
                return -2; /* delivered twice */
            found = (int)i;
        }
    }
    return found;
}

static void test_flow_both_input_topics(void **state)
{
    kh_cluster_t *cluster = *state;
    const char *topics[] = {SL_TOPIC_SENSOR_READINGS,
                            SL_TOPIC_ECOMMERCE_EVENTS};
    enum { PER_TOPIC = 60 };
    int64_t offsets[2][PER_TOPIC];
    kh_record_t got[2 * PER_TOPIC + 10];
    sl_bus_t *bus;
    sl_consumer_t *consumer;
    char key[32], value[32];

    kh_topic_create(cluster, topics[0], 6);
    kh_topic_create(cluster, topics[1], 6);
    bus = kh_bus_create(cluster->bootstraps, NULL, 0);
    assert_int_equal(sl_bus_partition_count(bus, topics[0]), 6);

    for (int t = 0; t < 2; t++) {
        sl_bus_record_t recs[PER_TOPIC];
        char keys[PER_TOPIC][32], values[PER_TOPIC][32];

        for (int i = 0; i < PER_TOPIC; i++) {
            snprintf(keys[i], sizeof(keys[i]), "key-%d", i % 13);
            snprintf(values[i], sizeof(values[i]), "%s-%d", topics[t], i);
            recs[i] = (sl_bus_record_t){.topic = topics[t],
                                        .partition = -1,
                                        .key = keys[i],
                                        .key_len = strlen(keys[i]),
                                        .value = values[i],
                                        .value_len = strlen(values[i])};
        }
        /* Half one by one, half as a batch: both paths must be acked. */
        for (int i = 0; i < PER_TOPIC / 2; i++) {
            assert_int_equal(sl_bus_publish(bus, topics[t], -1, recs[i].key,
                                            recs[i].key_len, recs[i].value,
                                            recs[i].value_len, NULL, 0, 1000,
                                            &offsets[t][i]),
                             SL_OK);
            assert_true(offsets[t][i] >= 0);
        }
        assert_int_equal(sl_bus_publish_batch(bus, &recs[PER_TOPIC / 2],
                                              PER_TOPIC / 2, 1000),
                         SL_OK);
        for (int i = PER_TOPIC / 2; i < PER_TOPIC; i++) {
            assert_int_equal(recs[i].status, SL_OK);
            offsets[t][i] = recs[i].offset;
            assert_true(offsets[t][i] >= 0);
        }
    }

    consumer = sl_consumer_create(bus, "flow", topics, 2);
    assert_non_null(consumer);
    assert_int_equal(kh_drain(consumer, got, 2 * PER_TOPIC + 10, 2 * PER_TOPIC,
                              JOIN_TIMEOUT_MS, true),
                     2 * PER_TOPIC);

    for (int t = 0; t < 2; t++) {
        for (int i = 0; i < PER_TOPIC; i++) {
            int at;

            snprintf(key, sizeof(key), "key-%d", i % 13);
            snprintf(value, sizeof(value), "%s-%d", topics[t], i);
            at = find_value(got, 2 * PER_TOPIC, topics[t], value);
            assert_true(at >= 0);
            assert_string_equal(got[at].key, key);
            assert_int_equal(got[at].partition,
                             sl_bus_partition_for_key(key, strlen(key), 6));
            assert_int_equal(got[at].offset, offsets[t][i]);
        }
    }
    assert_int_equal(sl_consumer_lag(consumer), 0);

    sl_consumer_destroy(consumer);
    sl_bus_destroy(bus);
}

/* One consumer on four topics with different partition counts. */
static void test_flow_several_topics_at_once(void **state)
{
    kh_cluster_t *cluster = *state;
    const char *topics[] = {SL_TOPIC_SYSTEM_ALERTS, SL_TOPIC_DLQ, "extra-a",
                            "extra-b"};
    const int partition_counts[] = {1, 2, 6, 8};
    kh_record_t got[64];
    sl_bus_t *bus;
    sl_consumer_t *consumer;
    char value[32];

    for (int t = 0; t < 4; t++)
        kh_topic_create(cluster, topics[t], partition_counts[t]);
    bus = kh_bus_create(cluster->bootstraps, NULL, 0);
    consumer = sl_consumer_create(bus, "several", topics, 4);
    assert_non_null(consumer);
    for (int t = 0; t < 4; t++) {
        assert_int_equal(sl_bus_partition_count(bus, topics[t]),
                         partition_counts[t]);
        for (int i = 0; i < 5; i++) {
            snprintf(value, sizeof(value), "%d-%d", t, i);
            assert_int_equal(sl_bus_publish(bus, topics[t], -1, "k", 1, value,
                                            strlen(value), NULL, 0, 1000, NULL),
                             SL_OK);
        }
    }
    assert_int_equal(kh_drain(consumer, got, 64, 20, JOIN_TIMEOUT_MS, true),
                     20);
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < 5; i++) {
            snprintf(value, sizeof(value), "%d-%d", t, i);
            assert_true(find_value(got, 20, topics[t], value) >= 0);
        }
    }

    sl_consumer_destroy(consumer);
    sl_bus_destroy(bus);
}

static void test_flow_per_key_order_10000(void **state)
{
    kh_cluster_t *cluster = *state;
    enum { KEYS = 100, PER_KEY = 100, TOTAL = KEYS * PER_KEY, CHUNK = 500 };
    const char *topic = "order-readings";
    static kh_record_t got[TOTAL + 100];
    static char keys[TOTAL][16], values[TOTAL][16];
    static sl_bus_record_t recs[TOTAL];
    int next_seq[KEYS] = {0};
    int32_t key_partition[KEYS];
    sl_bus_t *bus;
    sl_consumer_t *consumer;
    size_t n;

    kh_topic_create(cluster, topic, 6);
    bus = kh_bus_create(cluster->bootstraps, NULL, 0);
    consumer = sl_consumer_create(bus, "order", &topic, 1);
    assert_non_null(consumer);

    /* Record i is reading i / KEYS of sensor i % KEYS. */
    for (int i = 0; i < TOTAL; i++) {
        snprintf(keys[i], sizeof(keys[i]), "sensor-%03d", i % KEYS);
        snprintf(values[i], sizeof(values[i]), "%d", i / KEYS);
        recs[i] = (sl_bus_record_t){.topic = topic,
                                    .partition = -1,
                                    .key = keys[i],
                                    .key_len = strlen(keys[i]),
                                    .value = values[i],
                                    .value_len = strlen(values[i])};
    }
    for (int i = 0; i < TOTAL; i += CHUNK)
        assert_int_equal(sl_bus_publish_batch(bus, &recs[i], CHUNK, 5000),
                         SL_OK);

    n = kh_drain(consumer, got, TOTAL + 100, TOTAL, 60000, false);
    assert_int_equal(n, TOTAL);
    for (int k = 0; k < KEYS; k++)
        key_partition[k] = -1;
    for (size_t i = 0; i < n; i++) {
        int k = atoi(got[i].key + strlen("sensor-"));
        int seq = atoi(got[i].value);

        assert_int_equal(seq, next_seq[k]);
        next_seq[k]++;
        if (key_partition[k] < 0)
            key_partition[k] = got[i].partition;
        assert_int_equal(got[i].partition, key_partition[k]);
    }
    for (int k = 0; k < KEYS; k++)
        assert_int_equal(next_seq[k], PER_KEY);

    sl_consumer_destroy(consumer);
    sl_bus_destroy(bus);
}

/* Finds a header and fails the test when it is missing. */
static const sl_header_t *header_find(const sl_msg_t *msg, const char *name)
{
    static const sl_header_t missing = {"", "", 0};
    const sl_header_t *h = sl_msg_header(msg, name);

    if (h == NULL) {
        fail_msg("header %s missing", name);
        return &missing;
    }
    return h;
}

static void test_flow_headers_binary_round_trip(void **state)
{
    kh_cluster_t *cluster = *state;
    const char *topic = "header-readings";
    static const unsigned char binary[] = {0x00, 0xff, 0x7f, 0x00, 0x80, 0x0a};
    const char traceparent[] =
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    sl_header_t headers[] = {
        {"traceparent", traceparent, strlen(traceparent)},
        {"binary", binary, sizeof(binary)},
        {"empty", "", 0},
        {"null", NULL, 0},
    };
    sl_bus_t *bus;
    sl_consumer_t *consumer;
    sl_msg_t msgs[4] = {0};
    size_t count = 0;
    int64_t deadline;
    const sl_header_t *h;

    kh_topic_create(cluster, topic, 2);
    bus = kh_bus_create(cluster->bootstraps, NULL, 0);
    assert_int_equal(
        sl_bus_publish(bus, topic, -1, "s1", 2, "v", 1, headers, 4, 1000, NULL),
        SL_OK);
    consumer = sl_consumer_create(bus, "headers", &topic, 1);
    assert_non_null(consumer);
    deadline = kh_now_ms() + JOIN_TIMEOUT_MS;
    while (count == 0 && kh_now_ms() < deadline)
        assert_int_equal(sl_consumer_poll(consumer, msgs, 4, &count, 100),
                         SL_OK);
    assert_int_equal(count, 1);

    assert_int_equal(msgs[0].header_count, 4);
    h = header_find(&msgs[0], "traceparent");
    assert_int_equal(h->value_len, strlen(traceparent));
    assert_memory_equal(h->value, traceparent, strlen(traceparent));
    h = header_find(&msgs[0], "binary");
    assert_int_equal(h->value_len, sizeof(binary));
    assert_memory_equal(h->value, binary, sizeof(binary));
    h = header_find(&msgs[0], "empty");
    assert_int_equal(h->value_len, 0);
    h = header_find(&msgs[0], "null");
    assert_null(h->value);
    /* Headers keep their published order. */
    assert_ptr_equal(header_find(&msgs[0], "traceparent"), msgs[0].headers);
    assert_ptr_equal(header_find(&msgs[0], "null"), msgs[0].headers + 3);

    sl_consumer_destroy(consumer);
    sl_bus_destroy(bus);
}

static void partition_report(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                             void *opaque)
{
    int32_t *partition = rkm->_private;

    (void)rk;
    (void)opaque;
    assert_int_equal(rkm->err, RD_KAFKA_RESP_ERR_NO_ERROR);
    *partition = rkm->partition;
}

/* librdkafka's murmur2_random partitioner places every non-empty key where
 * sl_bus_partition_for_key does, so records from other Kafka clients with
 * the Java default partitioner share partitions with ours. */
static void test_partitioner_matches_librdkafka(void **state)
{
    kh_cluster_t *cluster = *state;
    enum { KEYS = 200 };
    const char *topic = "partitioner-check";
    int32_t partitions[KEYS];
    char key[32], reason[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    kh_topic_create(cluster, topic, 7);
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       cluster->bootstraps, reason,
                                       sizeof(reason)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "partitioner", "murmur2_random",
                                       reason, sizeof(reason)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_dr_msg_cb(conf, partition_report);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, reason, sizeof(reason));
    assert_non_null(rk);

    for (int i = 0; i < KEYS; i++) {
        partitions[i] = -1;
        snprintf(key, sizeof(key), "sensor-%d", i);
        assert_int_equal(rd_kafka_producev(
                             rk, RD_KAFKA_V_TOPIC(topic),
                             RD_KAFKA_V_KEY(key, strlen(key)),
                             RD_KAFKA_V_VALUE("x", 1),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_OPAQUE(&partitions[i]), RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof(key), "sensor-%d", i);
        assert_int_equal(partitions[i],
                         sl_bus_partition_for_key(key, strlen(key), 7));
    }
    rd_kafka_destroy(rk);
}

/* Waits up to timeout_ms until every partition's lag series shows want[p].
 * Returns true when it did. */
static bool wait_for_lag(const char *group, const char *topic,
                         const int64_t *want, int partitions, int timeout_ms)
{
    int64_t deadline = kh_now_ms() + timeout_ms;

    do {
        int matched = 0;

        for (int p = 0; p < partitions; p++) {
            char series[160];

            snprintf(series, sizeof(series),
                     "sluice_kafka_consumer_lag{group=\"%s\",topic=\"%s\","
                     "partition=\"%d\"}",
                     group, topic, p);
            matched += kh_metric_value(series) == (double)want[p];
        }
        if (matched == partitions)
            return true;
        nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
    } while (kh_now_ms() < deadline);
    return false;
}

/* librdkafka's statistics feed the consumer-lag and producer-queue
 * gauges: the lag per partition follows the group's commits down to 0. */
static void test_stats_feed_lag_and_queue_metrics(void **state)
{
    kh_cluster_t *cluster = *state;
    enum { TOTAL = 30, PARTITIONS = 3 };
    const char *topic = "stats-readings";
    const char *props[] = {"statistics.interval.ms=200"};
    kh_record_t got[TOTAL + 5];
    int64_t end[PARTITIONS] = {0}, lag[PARTITIONS], zero[PARTITIONS] = {0};
    char key[16], value[16];
    sl_consumer_t *consumer;
    sl_bus_t *bus;
    int64_t deadline;

    kh_topic_create(cluster, topic, PARTITIONS);
    bus = kh_bus_create(cluster->bootstraps, props, 1);
    for (int i = 0; i < TOTAL; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(value, sizeof(value), "%d", i);
        assert_int_equal(sl_bus_publish(bus, topic, i % PARTITIONS, key,
                                        strlen(key), value, strlen(value), NULL,
                                        0, 1000, NULL),
                         SL_OK);
    }
    consumer = sl_consumer_create(bus, "stats", &topic, 1);
    assert_non_null(consumer);
    assert_int_equal(
        kh_drain(consumer, got, TOTAL + 5, TOTAL, JOIN_TIMEOUT_MS, false),
        TOTAL);
    for (int i = 0; i < TOTAL; i++) {
        if (got[i].offset + 1 > end[got[i].partition])
            end[got[i].partition] = got[i].offset + 1;
    }

    /* A commit of 3 per partition leaves end - 3 behind. */
    for (int p = 0; p < PARTITIONS; p++) {
        assert_int_equal(end[p], TOTAL / PARTITIONS);
        assert_int_equal(sl_consumer_commit(consumer, topic, p, 3), SL_OK);
        lag[p] = end[p] - 3;
    }
    assert_true(wait_for_lag("stats", topic, lag, PARTITIONS, 10000));
    for (int p = 0; p < PARTITIONS; p++)
        assert_int_equal(sl_consumer_commit(consumer, topic, p, end[p]), SL_OK);
    assert_true(wait_for_lag("stats", topic, zero, PARTITIONS, 10000));

    /* Every publish waited for its acknowledgement: the queue is empty. */
    deadline = kh_now_ms() + 10000;
    while (kh_metric_value("sluice_kafka_producer_queue_messages") != 0 &&
           kh_now_ms() < deadline)
        nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
    assert_true(kh_metric_value("sluice_kafka_producer_queue_messages") == 0);
    assert_true(kh_metric_value("sluice_kafka_producer_queue_bytes") == 0);
    assert_true(kh_metric_value(
                    "sluice_kafka_consumer_queued_records{group=\"stats\"}") ==
                0);

    sl_consumer_destroy(consumer);
    sl_bus_destroy(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow_both_input_topics),
        cmocka_unit_test(test_flow_several_topics_at_once),
        cmocka_unit_test(test_flow_per_key_order_10000),
        cmocka_unit_test(test_flow_headers_binary_round_trip),
        cmocka_unit_test(test_partitioner_matches_librdkafka),
        cmocka_unit_test(test_stats_feed_lag_and_queue_metrics),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
