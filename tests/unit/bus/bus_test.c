/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the in-process bus (bus_memory.c) through the bus.h contract:
 * key partitioning, consumer-group offsets, rebalancing, back-pressure,
 * retention of borrowed records, headers, close, and concurrent use with
 * real threads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/timeutil.h"

#define TOPIC "test-topic"
#define BATCH_MAX 64

static sl_bus_t *bus_new(int32_t partitions, size_t capacity, size_t max_bytes)
{
    sl_bus_memory_config_t cfg;
    sl_bus_t *bus;

    sl_bus_memory_config_init(&cfg);
    cfg.partitions = partitions;
    if (capacity > 0)
        cfg.partition_capacity = capacity;
    if (max_bytes > 0)
        cfg.partition_max_bytes = max_bytes;
    bus = sl_bus_memory_create(&cfg);
    assert_non_null(bus);
    return bus;
}

static sl_consumer_t *consumer_new(sl_bus_t *bus, const char *group)
{
    const char *topics[] = {TOPIC};
    sl_consumer_t *c = sl_consumer_create(bus, group, topics, 1);

    assert_non_null(c);
    return c;
}

/* Publishes a string key and value without waiting; returns the offset. */
static int64_t publish_str(sl_bus_t *bus, int32_t partition, const char *key,
                           const char *value)
{
    int64_t offset = -1;
    int rc = sl_bus_publish(bus, TOPIC, partition, key, key ? strlen(key) : 0,
                            value, strlen(value), NULL, 0, 0, &offset);

    assert_int_equal(rc, SL_OK);
    return offset;
}

/* Publishes values "0" .. "n-1" to partition 0. */
static void publish_numbered(sl_bus_t *bus, int n)
{
    char value[16];

    for (int i = 0; i < n; i++) {
        snprintf(value, sizeof(value), "%d", i);
        assert_int_equal(publish_str(bus, 0, NULL, value), i);
    }
}

/* Polls once and checks that the batch holds exactly the offsets
 * first .. last of partition 0, with the values publish_numbered wrote. */
static void expect_offsets(sl_consumer_t *c, int64_t first, int64_t last)
{
    sl_msg_t msgs[BATCH_MAX];
    size_t count = 0;
    char value[16];

    assert_int_equal(sl_consumer_poll(c, msgs, BATCH_MAX, &count, 1000), SL_OK);
    assert_int_equal(count, (size_t)(last - first + 1));
    for (size_t i = 0; i < count; i++) {
        snprintf(value, sizeof(value), "%lld", (long long)(first + (int64_t)i));
        assert_int_equal(msgs[i].offset, first + (int64_t)i);
        assert_int_equal(msgs[i].value_len, strlen(value));
        assert_memory_equal(msgs[i].value, value, strlen(value));
    }
}

static void expect_empty_poll(sl_consumer_t *c, int timeout_ms)
{
    sl_msg_t msgs[BATCH_MAX];
    size_t count = 99;

    assert_int_equal(sl_consumer_poll(c, msgs, BATCH_MAX, &count, timeout_ms),
                     SL_OK);
    assert_int_equal(count, 0);
}

/* ------------------------------------------------------------ partitioner */

/* Expected values are the signed results of Kafka's Java
 * org.apache.kafka.common.utils.Utils.murmur2, as listed in Kafka's
 * UtilsTest.testMurmur2 and repeated by other Kafka clients' tests. */
static void murmur2_matches_kafka_java(void **state)
{
    static const struct {
        const char *key;
        int32_t expected;
    } cases[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t h = sl_hash_murmur2(cases[i].key, strlen(cases[i].key));
        assert_int_equal((int32_t)h, cases[i].expected);
    }
}

static void partition_for_key_is_positive_modulo(void **state)
{
    (void)state;

    /* "21" hashes to -973932308 = 0xC5F2F8EC; clearing the sign bit gives
     * 0x45F2F8EC = 1173551340, and 1173551340 % 6 = 0, % 7 = 3. */
    assert_int_equal(sl_bus_partition_for_key("21", 2, 6), 0);
    assert_int_equal(sl_bus_partition_for_key("21", 2, 7), 3);

    /* "abc" hashes to 479470107, positive already: % 6 = 3, % 10 = 7. */
    assert_int_equal(sl_bus_partition_for_key("abc", 3, 6), 3);
    assert_int_equal(sl_bus_partition_for_key("abc", 3, 10), 7);

    assert_int_equal(sl_bus_partition_for_key(NULL, 0, 6), 0);
    assert_int_equal(sl_bus_partition_for_key("", 0, 6), 0);
    assert_int_equal(sl_bus_partition_for_key("abc", 3, 1), 0);
    assert_int_equal(sl_bus_partition_for_key("abc", 3, 0), SL_EINVAL);
}

static void same_key_lands_on_same_partition(void **state)
{
    sl_bus_t *bus = bus_new(6, 0, 0);
    sl_consumer_t *c = consumer_new(bus, "g");
    sl_msg_t msgs[BATCH_MAX];
    size_t count = 0, seen = 0;
    char key[16];

    (void)state;
    assert_int_equal(sl_bus_partition_count(bus, TOPIC), 6);
    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < 10; k++) {
            snprintf(key, sizeof(key), "sensor-%d", k);
            publish_str(bus, -1, key, "v");
        }
    }

    while (seen < 30) {
        assert_int_equal(sl_consumer_poll(c, msgs, BATCH_MAX, &count, 1000),
                         SL_OK);
        assert_true(count > 0);
        for (size_t i = 0; i < count; i++) {
            int32_t expected =
                sl_bus_partition_for_key(msgs[i].key, msgs[i].key_len, 6);
            assert_int_equal(msgs[i].partition, expected);
            assert_string_equal(msgs[i].topic, TOPIC);
        }
        seen += count;
    }
    assert_int_equal(seen, 30);

    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

static void order_kept_per_key(void **state)
{
    enum { KEYS = 20, PER_KEY = 50 };
    sl_bus_t *bus = bus_new(4, 0, 0);
    sl_consumer_t *c = consumer_new(bus, "g");
    sl_msg_t msgs[BATCH_MAX];
    int next[KEYS] = {0};
    int partitions_seen[4] = {0};
    size_t count = 0, seen = 0;
    char key[16], value[16];

    (void)state;
    for (int i = 0; i < PER_KEY; i++) {
        for (int k = 0; k < KEYS; k++) {
            snprintf(key, sizeof(key), "%d", k);
            snprintf(value, sizeof(value), "%d", i);
            publish_str(bus, -1, key, value);
        }
    }

    while (seen < KEYS * PER_KEY) {
        assert_int_equal(sl_consumer_poll(c, msgs, BATCH_MAX, &count, 1000),
                         SL_OK);
        assert_true(count > 0);
        for (size_t i = 0; i < count; i++) {
            char buf[16] = {0};
            int k, v;

            memcpy(buf, msgs[i].key, msgs[i].key_len);
            k = atoi(buf);
            memset(buf, 0, sizeof(buf));
            memcpy(buf, msgs[i].value, msgs[i].value_len);
            v = atoi(buf);
            assert_int_equal(v, next[k]);
            next[k]++;
            partitions_seen[msgs[i].partition]++;
        }
        seen += count;
    }
    for (int k = 0; k < KEYS; k++)
        assert_int_equal(next[k], PER_KEY);

    /* Twenty keys spread over more than one of four partitions. */
    int used = 0;
    for (int p = 0; p < 4; p++)
        used += partitions_seen[p] > 0;
    assert_true(used > 1);

    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

static void explicit_partition_is_used(void **state)
{
    sl_bus_t *bus = bus_new(3, 0, 0);
    sl_consumer_t *c = consumer_new(bus, "g");
    sl_msg_t msgs[4];
    size_t count = 0;

    (void)state;
    assert_int_equal(publish_str(bus, 2, "21", "v"), 0);
    assert_int_equal(
        sl_bus_publish(bus, TOPIC, 3, NULL, 0, "v", 1, NULL, 0, 0, NULL),
        SL_EINVAL);
    assert_int_equal(sl_consumer_poll(c, msgs, 4, &count, 1000), SL_OK);
    assert_int_equal(count, 1);
    assert_int_equal(msgs[0].partition, 2);

    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

static void invalid_arguments_rejected(void **state)
{
    sl_bus_t *bus = bus_new(2, 0, 0);
    const char *dup_topics[] = {TOPIC, TOPIC};
    const char *bad_topics[] = {"bad topic"};
    const char *ok_topics[] = {TOPIC};

    (void)state;
    assert_null(sl_bus_memory_create(&(sl_bus_memory_config_t){
        .partitions = 0, .partition_capacity = 1, .partition_max_bytes = 1}));
    assert_int_equal(
        sl_bus_publish(bus, "has space", -1, NULL, 0, "v", 1, NULL, 0, 0, NULL),
        SL_EINVAL);
    assert_int_equal(
        sl_bus_publish(bus, "", -1, NULL, 0, "v", 1, NULL, 0, 0, NULL),
        SL_EINVAL);
    assert_int_equal(
        sl_bus_publish(bus, TOPIC, -1, NULL, 3, "v", 1, NULL, 0, 0, NULL),
        SL_EINVAL);
    assert_int_equal(sl_bus_partition_count(bus, "a/b"), SL_EINVAL);
    assert_null(sl_consumer_create(bus, "g", dup_topics, 2));
    assert_null(sl_consumer_create(bus, "g", bad_topics, 1));
    assert_null(sl_consumer_create(bus, "", ok_topics, 1));
    assert_null(sl_consumer_create(bus, "g", ok_topics, 0));
    sl_bus_destroy(bus);
}

/* ---------------------------------------------------------- group offsets */

static void groups_track_offsets_independently(void **state)
{
    sl_bus_t *bus = bus_new(1, 0, 0);
    sl_consumer_t *a = consumer_new(bus, "group-a");
    sl_consumer_t *b = consumer_new(bus, "group-b");

    (void)state;
    publish_numbered(bus, 10);
    assert_int_equal(sl_consumer_lag(a), 10);
    assert_int_equal(sl_consumer_lag(b), 10);

    expect_offsets(a, 0, 9);
    assert_int_equal(sl_consumer_commit(a, TOPIC, 0, 10), SL_OK);
    assert_int_equal(sl_consumer_committed(a, TOPIC, 0), 10);
    assert_int_equal(sl_consumer_committed(b, TOPIC, 0), -1);
    assert_int_equal(sl_consumer_lag(a), 0);
    assert_int_equal(sl_consumer_lag(b), 10);

    /* Group b still reads everything: a's commit freed nothing of b's. */
    expect_offsets(b, 0, 9);
    assert_int_equal(sl_consumer_commit(b, TOPIC, 0, 3), SL_OK);
    assert_int_equal(sl_consumer_lag(b), 7);

    sl_consumer_destroy(a);
    sl_consumer_destroy(b);
    sl_bus_destroy(bus);
}

static void new_consumer_resumes_at_commit(void **state)
{
    sl_bus_t *bus = bus_new(1, 0, 0);
    sl_consumer_t *c = consumer_new(bus, "g");

    (void)state;
    publish_numbered(bus, 10);
    expect_offsets(c, 0, 9);
    assert_int_equal(sl_consumer_commit(c, TOPIC, 0, 4), SL_OK);
    sl_consumer_destroy(c);

    /* The group outlives its consumers: a new one starts at offset 4. */
    c = consumer_new(bus, "g");
    assert_int_equal(sl_consumer_committed(c, TOPIC, 0), 4);
    expect_offsets(c, 4, 9);
    expect_empty_poll(c, 0);
    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

static void commit_checks_topic_and_range(void **state)
{
    sl_bus_t *bus = bus_new(2, 0, 0);
    sl_consumer_t *c = consumer_new(bus, "g");

    (void)state;
    publish_numbered(bus, 3);
    assert_int_equal(sl_consumer_commit(c, "other-topic", 0, 1), SL_EINVAL);
    assert_int_equal(sl_consumer_commit(c, TOPIC, 2, 1), SL_EINVAL);
    assert_int_equal(sl_consumer_commit(c, TOPIC, 0, 4), SL_EINVAL);
    assert_int_equal(sl_consumer_commit(c, TOPIC, 0, -1), SL_EINVAL);
    assert_int_equal(sl_consumer_commit(c, TOPIC, 0, 3), SL_OK);

    /* Offsets 0..2 are freed now, so committing back below 3 is invalid. */
    assert_int_equal(sl_consumer_commit(c, TOPIC, 0, 2), SL_EINVAL);
    assert_int_equal(sl_consumer_committed(c, "other-topic", 0), -1);
    assert_int_equal(sl_consumer_committed(c, TOPIC, 5), -1);
    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

/* -------------------------------------------------------------- rebalance */

static void leaving_owner_redelivers_uncommitted(void **state)
{
    sl_bus_t *bus = bus_new(1, 0, 0);
    sl_consumer_t *a = consumer_new(bus, "g");
    sl_consumer_t *b;

    (void)state;
    publish_numbered(bus, 10);
    expect_offsets(a, 0, 9);
    assert_int_equal(sl_consumer_commit(a, TOPIC, 0, 5), SL_OK);

    /* With one partition the first member keeps it while b joins. */
    b = consumer_new(bus, "g");
    expect_empty_poll(b, 0);
    assert_int_equal(sl_consumer_commit(b, TOPIC, 0, 5), SL_EBUSY);

    sl_consumer_destroy(a);
    expect_offsets(b, 5, 9);
    assert_int_equal(sl_consumer_commit(b, TOPIC, 0, 10), SL_OK);
    assert_int_equal(sl_consumer_lag(b), 0);
    sl_consumer_destroy(b);
    sl_bus_destroy(bus);
}

static void joining_member_takes_partition(void **state)
{
    sl_bus_t *bus = bus_new(2, 0, 0);
    sl_consumer_t *a = consumer_new(bus, "g");
    sl_consumer_t *b;
    sl_msg_t msgs[BATCH_MAX];
    size_t count = 0;
    char value[16];

    (void)state;
    for (int i = 0; i < 10; i++) {
        snprintf(value, sizeof(value), "%d", i);
        publish_str(bus, 0, NULL, value);
        publish_str(bus, 1, NULL, value);
    }
    assert_int_equal(sl_consumer_poll(a, msgs, BATCH_MAX, &count, 1000), SL_OK);
    assert_int_equal(count, 20);
    assert_int_equal(sl_consumer_commit(a, TOPIC, 0, 10), SL_OK);
    assert_int_equal(sl_consumer_commit(a, TOPIC, 1, 5), SL_OK);

    /* Round-robin in join order: a keeps partition 0, b gets partition 1
     * and resumes from its commit, so offsets 5..9 come again. */
    b = consumer_new(bus, "g");
    assert_int_equal(sl_consumer_commit(a, TOPIC, 1, 10), SL_EBUSY);
    assert_int_equal(sl_consumer_poll(b, msgs, BATCH_MAX, &count, 1000), SL_OK);
    assert_int_equal(count, 5);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(msgs[i].partition, 1);
        assert_int_equal(msgs[i].offset, 5 + (int64_t)i);
    }

    /* a kept its position on partition 0 and lost partition 1. */
    publish_str(bus, 0, NULL, "10");
    publish_str(bus, 1, NULL, "10");
    assert_int_equal(sl_consumer_poll(a, msgs, BATCH_MAX, &count, 1000), SL_OK);
    assert_int_equal(count, 1);
    assert_int_equal(msgs[0].partition, 0);
    assert_int_equal(msgs[0].offset, 10);

    sl_consumer_destroy(a);
    sl_consumer_destroy(b);
    sl_bus_destroy(bus);
}

static void poll_is_fair_across_partitions(void **state)
{
    sl_bus_t *bus = bus_new(2, 0, 0);
    sl_consumer_t *c = consumer_new(bus, "g");
    sl_msg_t msgs[10];
    size_t count = 0, per_partition[2] = {0};

    (void)state;
    for (int i = 0; i < 100; i++) {
        publish_str(bus, 0, NULL, "x");
        publish_str(bus, 1, NULL, "y");
    }
    assert_int_equal(sl_consumer_poll(c, msgs, 10, &count, 1000), SL_OK);
    assert_int_equal(count, 10);
    for (size_t i = 0; i < count; i++)
        per_partition[msgs[i].partition]++;
    assert_int_equal(per_partition[0], 5);
    assert_int_equal(per_partition[1], 5);
    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

/* ---------------------------------------------------------- back-pressure */

static void full_partition_fails_after_timeout(void **state)
{
    sl_bus_t *bus = bus_new(1, 4, 0);
    sl_consumer_t *c = consumer_new(bus, "g");
    int64_t started, offset = -1;
    int rc;

    (void)state;
    publish_numbered(bus, 4);
    started = sl_time_mono_ms();
    rc = sl_bus_publish(bus, TOPIC, 0, NULL, 0, "4", 1, NULL, 0, 50, NULL);
    assert_int_equal(rc, SL_EFULL);
    assert_true(sl_time_mono_ms() - started >= 45);

    /* Committing frees records, but only once the consumer polls again:
     * until then it may still read the records its last poll lent out. */
    expect_offsets(c, 0, 3);
    assert_int_equal(sl_consumer_commit(c, TOPIC, 0, 2), SL_OK);
    assert_int_equal(
        sl_bus_publish(bus, TOPIC, 0, NULL, 0, "4", 1, NULL, 0, 0, NULL),
        SL_EFULL);
    expect_empty_poll(c, 0);
    rc = sl_bus_publish(bus, TOPIC, 0, NULL, 0, "4", 1, NULL, 0, 50, &offset);
    assert_int_equal(rc, SL_OK);
    assert_int_equal(offset, 4);
    rc = sl_bus_publish(bus, TOPIC, 0, NULL, 0, "5", 1, NULL, 0, 0, &offset);
    assert_int_equal(rc, SL_OK);
    assert_int_equal(offset, 5);
    assert_int_equal(
        sl_bus_publish(bus, TOPIC, 0, NULL, 0, "6", 1, NULL, 0, 0, NULL),
        SL_EFULL);
    expect_offsets(c, 4, 5);

    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

static void byte_limit_applies(void **state)
{
    sl_bus_t *bus = bus_new(1, 100, 100);
    sl_consumer_t *c = consumer_new(bus, "g");
    char value[40];
    char big[101];

    (void)state;
    memset(value, 'v', sizeof(value));
    memset(big, 'b', sizeof(big));
    assert_int_equal(
        sl_bus_publish(bus, TOPIC, 0, "k", 1, value, 39, NULL, 0, 0, NULL),
        SL_OK);
    assert_int_equal(
        sl_bus_publish(bus, TOPIC, 0, "k", 1, value, 39, NULL, 0, 0, NULL),
        SL_OK);
    /* 80 bytes held, 40 more do not fit. */
    assert_int_equal(
        sl_bus_publish(bus, TOPIC, 0, "k", 1, value, 39, NULL, 0, 20, NULL),
        SL_EFULL);
    /* Larger than the whole partition: waiting could never help. */
    assert_int_equal(sl_bus_publish(bus, TOPIC, 0, NULL, 0, big, sizeof(big),
                                    NULL, 0, -1, NULL),
                     SL_EINVAL);
    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

/* On the in-process bus, a record above the record limit is
 * refused with its own status, and the records after it in the batch, of
 * the same key or another, are still published. */
static void oversized_record_spares_its_neighbours(void **state)
{
    enum { BIG = 1500000, LIMIT = 1000000 };
    sl_bus_t *bus = bus_new(1, 0, 0);
    sl_consumer_t *c = consumer_new(bus, "g");
    char *big = malloc(BIG);
    const char *small[] = {"reading-1", "reading-2", "reading-3"};
    sl_bus_record_t recs[4];
    sl_msg_t msgs[BATCH_MAX];
    size_t n = 0;

    (void)state;
    assert_non_null(big);
    memset(big, 'x', BIG);
    recs[0] = (sl_bus_record_t){.topic = TOPIC,
                                .partition = -1,
                                .key = "sensor-1",
                                .key_len = 8,
                                .value = big,
                                .value_len = BIG};
    for (int i = 0; i < 3; i++)
        recs[i + 1] = (sl_bus_record_t){.topic = TOPIC,
                                        .partition = -1,
                                        .key = i < 2 ? "sensor-1" : "sensor-2",
                                        .key_len = 8,
                                        .value = small[i],
                                        .value_len = strlen(small[i])};
    assert_int_equal(sl_bus_publish_batch(bus, recs, 4, 0), SL_ETOOBIG);
    assert_int_equal(recs[0].status, SL_ETOOBIG);
    assert_int_equal(recs[0].offset, -1);
    for (int i = 1; i < 4; i++) {
        assert_int_equal(recs[i].status, SL_OK);
        assert_int_equal(recs[i].offset, i - 1);
    }
    assert_string_equal(sl_strerror(SL_ETOOBIG), "record too large");

    assert_int_equal(sl_consumer_poll(c, msgs, BATCH_MAX, &n, 0), SL_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(msgs[i].value_len, strlen(small[i]));
        assert_memory_equal(msgs[i].value, small[i], msgs[i].value_len);
    }

    /* The limit counts key and value bytes: exactly the limit passes. */
    assert_int_equal(
        sl_bus_publish(bus, TOPIC, 0, "k", 1, big, LIMIT - 1, NULL, 0, 0, NULL),
        SL_OK);
    assert_int_equal(
        sl_bus_publish(bus, TOPIC, 0, "k", 1, big, LIMIT, NULL, 0, 0, NULL),
        SL_ETOOBIG);
    free(big);
    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

/* Any other failure stops the batch: the records after it are not sent,
 * so no later record of a key overtakes the one that failed. */
static void batch_stops_at_full_partition(void **state)
{
    sl_bus_t *bus = bus_new(1, 2, 0);
    sl_consumer_t *c = consumer_new(bus, "g");
    const char *values[] = {"0", "1", "2", "3"};
    sl_bus_record_t recs[4];
    sl_msg_t msgs[BATCH_MAX];
    size_t n = 0;

    (void)state;
    for (int i = 0; i < 4; i++)
        recs[i] = (sl_bus_record_t){.topic = TOPIC,
                                    .partition = -1,
                                    .key = "k",
                                    .key_len = 1,
                                    .value = values[i],
                                    .value_len = 1};
    assert_int_equal(sl_bus_publish_batch(bus, recs, 4, 0), SL_EFULL);
    assert_int_equal(recs[0].status, SL_OK);
    assert_int_equal(recs[1].status, SL_OK);
    assert_int_equal(recs[2].status, SL_EFULL);
    assert_int_equal(recs[3].status, SL_EFULL);
    assert_int_equal(recs[3].offset, -1);
    assert_int_equal(sl_consumer_poll(c, msgs, BATCH_MAX, &n, 0), SL_OK);
    assert_int_equal(n, 2);
    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

/* The in-process bus has no queue of its own: its counters are zero. */
static void memory_consumer_stats_are_zero(void **state)
{
    sl_bus_t *bus = bus_new(1, 0, 0);
    sl_consumer_t *c = consumer_new(bus, "g");
    sl_consumer_stats_t stats;

    (void)state;
    memset(&stats, 0xff, sizeof(stats));
    assert_int_equal(sl_consumer_stats(c, &stats), SL_OK);
    assert_int_equal(stats.partitions_assigned, 0);
    assert_int_equal(stats.queued_records, 0);
    assert_int_equal(stats.queue_cap_records, 0);
    assert_int_equal(stats.paused, 0);
    assert_int_equal(sl_consumer_stats(c, NULL), SL_EINVAL);
    assert_int_equal(sl_consumer_stats(NULL, &stats), SL_EINVAL);
    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

static void topic_without_group_keeps_records(void **state)
{
    sl_bus_t *bus = bus_new(1, 3, 0);
    sl_consumer_t *c;

    (void)state;
    publish_numbered(bus, 3);
    assert_int_equal(
        sl_bus_publish(bus, TOPIC, 0, NULL, 0, "3", 1, NULL, 0, 0, NULL),
        SL_EFULL);

    /* A group joining later starts at the earliest record, offset 0. */
    c = consumer_new(bus, "late");
    expect_offsets(c, 0, 2);
    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

static void lent_records_survive_commit(void **state)
{
    sl_bus_t *bus = bus_new(1, 0, 0);
    sl_consumer_t *c = consumer_new(bus, "g");
    sl_msg_t msgs[BATCH_MAX];
    size_t count = 0;

    (void)state;
    publish_numbered(bus, 8);
    assert_int_equal(sl_consumer_poll(c, msgs, BATCH_MAX, &count, 1000), SL_OK);
    assert_int_equal(count, 8);
    assert_int_equal(sl_consumer_commit(c, TOPIC, 0, 8), SL_OK);

    /* The batch is still borrowed after the commit; reading it must not
     * touch freed memory. The memcmp runs here, not inside cmocka, so that
     * AddressSanitizer checks the read. */
    for (size_t i = 0; i < count; i++) {
        char value[24];

        snprintf(value, sizeof(value), "%zu", i);
        assert_int_equal(memcmp(msgs[i].value, value, strlen(value)), 0);
        assert_int_equal(msgs[i].offset, (int64_t)i);
    }
    assert_int_equal(sl_consumer_lag(c), 0);
    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

/* ---------------------------------------------------------------- headers */

static void headers_round_trip(void **state)
{
    static const unsigned char binary[] = {0x00, 0xff, 0x00, 0x7f, 0x0a};
    sl_header_t headers[] = {
        {"traceparent",
         "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 55},
        {"binary", binary, sizeof(binary)},
        {"empty", NULL, 0},
    };
    sl_header_t too_many[SL_BUS_MAX_HEADERS + 1];
    sl_bus_t *bus = bus_new(2, 0, 0);
    sl_consumer_t *c = consumer_new(bus, "g");
    sl_msg_t msgs[4];
    size_t count = 0;
    const sl_header_t *h;
    int64_t before = sl_time_now_ms();

    (void)state;
    assert_int_equal(sl_bus_publish(bus, TOPIC, -1, "key\0x", 5, "val\0ue", 6,
                                    headers, 3, 0, NULL),
                     SL_OK);
    assert_int_equal(
        sl_bus_publish(bus, TOPIC, 1, NULL, 0, NULL, 0, NULL, 0, 0, NULL),
        SL_OK);

    assert_int_equal(sl_consumer_poll(c, msgs, 4, &count, 1000), SL_OK);
    assert_int_equal(count, 2);
    if (msgs[0].header_count == 0) {
        sl_msg_t tmp = msgs[0];
        msgs[0] = msgs[1];
        msgs[1] = tmp;
    }
    assert_int_equal(msgs[0].key_len, 5);
    assert_memory_equal(msgs[0].key, "key\0x", 5);
    assert_int_equal(msgs[0].value_len, 6);
    assert_memory_equal(msgs[0].value, "val\0ue", 6);
    assert_true(msgs[0].timestamp_ms >= before);
    assert_true(msgs[0].timestamp_ms <= sl_time_now_ms());
    assert_int_equal(msgs[0].header_count, 3);

    h = sl_msg_header(&msgs[0], "binary");
    assert_non_null(h);
    assert_int_equal(h->value_len, sizeof(binary));
    assert_memory_equal(h->value, binary, sizeof(binary));
    assert_ptr_not_equal(h->value, binary); /* copied, not referenced */
    h = sl_msg_header(&msgs[0], "traceparent");
    assert_non_null(h);
    assert_int_equal(h->value_len, 55);
    assert_memory_equal(h->value, headers[0].value, 55);
    h = sl_msg_header(&msgs[0], "empty");
    assert_non_null(h);
    assert_int_equal(h->value_len, 0);
    assert_null(sl_msg_header(&msgs[0], "missing"));

    /* A NULL key and value come back as NULL, with no headers. */
    assert_null(msgs[1].key);
    assert_null(msgs[1].value);
    assert_int_equal(msgs[1].header_count, 0);
    assert_null(sl_msg_header(&msgs[1], "binary"));

    for (size_t i = 0; i < SL_BUS_MAX_HEADERS + 1; i++)
        too_many[i] = (sl_header_t){"h", "v", 1};
    assert_int_equal(sl_bus_publish(bus, TOPIC, 0, NULL, 0, "v", 1, too_many,
                                    SL_BUS_MAX_HEADERS + 1, 0, NULL),
                     SL_EINVAL);
    assert_int_equal(sl_bus_publish(bus, TOPIC, 0, NULL, 0, "v", 1, too_many,
                                    SL_BUS_MAX_HEADERS, 0, NULL),
                     SL_OK);

    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

/* ------------------------------------------------------------------ close */

typedef struct publish_job {
    sl_bus_t *bus;
    int rc;
} publish_job_t;

static void *publish_blocking(void *arg)
{
    publish_job_t *job = arg;

    job->rc =
        sl_bus_publish(job->bus, TOPIC, 0, NULL, 0, "x", 1, NULL, 0, -1, NULL);
    return NULL;
}

typedef struct poll_job {
    sl_consumer_t *consumer;
    int rc;
    size_t count;
} poll_job_t;

static void *poll_blocking(void *arg)
{
    poll_job_t *job = arg;
    sl_msg_t msgs[4];

    job->rc = sl_consumer_poll(job->consumer, msgs, 4, &job->count, -1);
    return NULL;
}

static void close_wakes_blocked_publisher(void **state)
{
    sl_bus_t *bus = bus_new(1, 2, 0);
    sl_consumer_t *c = consumer_new(bus, "g");
    publish_job_t job = {bus, 1};
    pthread_t thread;

    (void)state;
    publish_numbered(bus, 2);
    assert_int_equal(pthread_create(&thread, NULL, publish_blocking, &job), 0);
    sl_time_sleep_ms(50); /* let it block; the result holds either way */
    sl_bus_close(bus);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(job.rc, SL_ECLOSED);

    assert_int_equal(
        sl_bus_publish(bus, TOPIC, 0, NULL, 0, "x", 1, NULL, 0, 0, NULL),
        SL_ECLOSED);

    /* Accepted records drain, then the consumer sees SL_ECLOSED. */
    expect_offsets(c, 0, 1);
    {
        sl_msg_t msgs[4];
        size_t count = 99;

        assert_int_equal(sl_consumer_poll(c, msgs, 4, &count, 1000),
                         SL_ECLOSED);
        assert_int_equal(count, 0);
    }
    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

static void close_wakes_blocked_poller(void **state)
{
    sl_bus_t *bus = bus_new(2, 0, 0);
    sl_consumer_t *c = consumer_new(bus, "g");
    poll_job_t job = {c, 1, 99};
    pthread_t thread;

    (void)state;
    assert_int_equal(pthread_create(&thread, NULL, poll_blocking, &job), 0);
    sl_time_sleep_ms(50);
    sl_bus_close(bus);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(job.rc, SL_ECLOSED);
    assert_int_equal(job.count, 0);
    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

static void poll_wakes_on_publish(void **state)
{
    sl_bus_t *bus = bus_new(2, 0, 0);
    sl_consumer_t *c = consumer_new(bus, "g");
    poll_job_t job = {c, 1, 0};
    pthread_t thread;

    (void)state;
    assert_int_equal(pthread_create(&thread, NULL, poll_blocking, &job), 0);
    sl_time_sleep_ms(50);
    publish_str(bus, 1, NULL, "wake");
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(job.rc, SL_OK);
    assert_int_equal(job.count, 1);
    sl_consumer_destroy(c);
    sl_bus_destroy(bus);
}

/* ------------------------------------------------------------ concurrency */

enum {
    PRODUCERS = 4,
    KEYS_PER_PRODUCER = 8,
    PER_KEY = 600,
    KEYS = PRODUCERS * KEYS_PER_PRODUCER,
    CONSUMERS = 3,
};

/* Delivery record shared by all consumer threads of one test. */
typedef struct delivery {
    pthread_mutex_t mu;
    int delivered[KEYS][PER_KEY]; /* times each record was delivered */
    int next_seq[KEYS];           /* exactly-once test: expected next seq */
    int errors;
    char first_error[128];
} delivery_t;

typedef struct mt_ctx {
    sl_bus_t *bus;
    delivery_t *delivery;
    sl_consumer_t *consumer; /* consumer threads only */
    int producer;
    bool exactly_once;
    int closed_rc;
} mt_ctx_t;

static void *produce_keys(void *arg)
{
    mt_ctx_t *ctx = arg;
    char key[16], value[16];

    for (int seq = 0; seq < PER_KEY; seq++) {
        for (int k = 0; k < KEYS_PER_PRODUCER; k++) {
            int key_id = ctx->producer * KEYS_PER_PRODUCER + k;
            int rc;

            snprintf(key, sizeof(key), "%d", key_id);
            snprintf(value, sizeof(value), "%d", seq);
            rc = sl_bus_publish(ctx->bus, TOPIC, -1, key, strlen(key), value,
                                strlen(value), NULL, 0, -1, NULL);
            if (rc != SL_OK)
                return (void *)(intptr_t)rc;
        }
    }
    return NULL;
}

static void delivery_fail(delivery_t *d, const char *reason, int key, int seq)
{
    if (d->errors++ == 0)
        snprintf(d->first_error, sizeof(d->first_error), "%s key=%d seq=%d",
                 reason, key, seq);
}

/* Records one delivery. In exactly-once mode each key's records must come
 * in order with no repeat. Otherwise a record may come again after a
 * rebalance, but never before all earlier records of its key. */
static void delivery_note(delivery_t *d, const sl_msg_t *msg, bool exactly)
{
    char buf[16] = {0};
    int key, seq;

    memcpy(buf, msg->key, msg->key_len < 15 ? msg->key_len : 15);
    key = atoi(buf);
    memset(buf, 0, sizeof(buf));
    memcpy(buf, msg->value, msg->value_len < 15 ? msg->value_len : 15);
    seq = atoi(buf);

    pthread_mutex_lock(&d->mu);
    if (key < 0 || key >= KEYS || seq < 0 || seq >= PER_KEY) {
        delivery_fail(d, "unknown record", key, seq);
    } else if (exactly && seq != d->next_seq[key]) {
        delivery_fail(d, "out of order", key, seq);
    } else if (seq > 0 && d->delivered[key][seq - 1] == 0) {
        delivery_fail(d, "gap before", key, seq);
    } else {
        d->delivered[key][seq]++;
        d->next_seq[key] = seq + 1;
    }
    pthread_mutex_unlock(&d->mu);
}

/* Consumes until the bus is closed and drained, committing each batch. */
static void consume_until_closed(mt_ctx_t *ctx, sl_consumer_t *c)
{
    sl_msg_t msgs[BATCH_MAX];
    size_t count;
    int rc;

    while ((rc = sl_consumer_poll(c, msgs, BATCH_MAX, &count, 100)) == SL_OK) {
        for (size_t i = 0; i < count; i++)
            delivery_note(ctx->delivery, &msgs[i], ctx->exactly_once);
        for (size_t i = 0; i < count; i++) {
            int crc = sl_consumer_commit(c, TOPIC, msgs[i].partition,
                                         msgs[i].offset + 1);

            /* Under churn a rebalance may have given the partition away
             * (SL_EBUSY), or given it back after another member committed
             * past this offset and retention freed it (SL_EINVAL). */
            bool churn_error = crc == SL_EBUSY || crc == SL_EINVAL;

            if (crc != SL_OK && !(churn_error && !ctx->exactly_once)) {
                pthread_mutex_lock(&ctx->delivery->mu);
                delivery_fail(ctx->delivery, "commit failed", crc, 0);
                pthread_mutex_unlock(&ctx->delivery->mu);
            }
        }
    }
    ctx->closed_rc = rc;
}

static void *consume_keys(void *arg)
{
    mt_ctx_t *ctx = arg;

    consume_until_closed(ctx, ctx->consumer);
    return NULL;
}

/* Joins and leaves the group repeatedly while records flow, forcing
 * rebalances that move partitions between the other consumers. */
static void *churn_membership(void *arg)
{
    mt_ctx_t *ctx = arg;
    const char *topics[] = {TOPIC};
    sl_msg_t msgs[8];
    size_t count;

    for (int round = 0; round < 20; round++) {
        sl_consumer_t *c = sl_consumer_create(ctx->bus, "workers", topics, 1);

        if (c == NULL)
            return NULL;
        if (sl_consumer_poll(c, msgs, 8, &count, 5) == SL_OK) {
            for (size_t i = 0; i < count; i++)
                delivery_note(ctx->delivery, &msgs[i], false);
        }
        sl_consumer_destroy(c);
        sl_time_sleep_ms(2);
    }
    return NULL;
}

static void run_producers_and_consumers(sl_bus_t *bus, delivery_t *d,
                                        bool exactly_once, bool churn)
{
    mt_ctx_t producers[PRODUCERS], consumers[CONSUMERS], churner;
    pthread_t producer_threads[PRODUCERS], consumer_threads[CONSUMERS];
    pthread_t churn_thread;
    const char *topics[] = {TOPIC};

    /* Every member joins before any thread starts, so the group is stable
     * unless churn is requested. */
    for (int i = 0; i < CONSUMERS; i++) {
        sl_consumer_t *c = sl_consumer_create(bus, "workers", topics, 1);

        assert_non_null(c);
        consumers[i] = (mt_ctx_t){bus, d, c, i, exactly_once, 1};
    }
    for (int i = 0; i < CONSUMERS; i++) {
        assert_int_equal(pthread_create(&consumer_threads[i], NULL,
                                        consume_keys, &consumers[i]),
                         0);
    }
    if (churn) {
        churner = (mt_ctx_t){bus, d, NULL, 0, false, 0};
        assert_int_equal(
            pthread_create(&churn_thread, NULL, churn_membership, &churner), 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        producers[i] = (mt_ctx_t){bus, d, NULL, i, exactly_once, 0};
        assert_int_equal(pthread_create(&producer_threads[i], NULL,
                                        produce_keys, &producers[i]),
                         0);
    }

    for (int i = 0; i < PRODUCERS; i++) {
        void *result = (void *)1;

        assert_int_equal(pthread_join(producer_threads[i], &result), 0);
        assert_null(result);
    }
    if (churn)
        assert_int_equal(pthread_join(churn_thread, NULL), 0);
    sl_bus_close(bus);
    for (int i = 0; i < CONSUMERS; i++) {
        assert_int_equal(pthread_join(consumer_threads[i], NULL), 0);
        assert_int_equal(consumers[i].closed_rc, SL_ECLOSED);
    }

    /* Destroy only after every thread stopped: a member leaving earlier
     * would hand its partitions to members that may already have stopped
     * polling. */
    for (int i = 0; i < CONSUMERS; i++)
        sl_consumer_destroy(consumers[i].consumer);
}

static delivery_t *delivery_new(void)
{
    delivery_t *d = calloc(1, sizeof(*d));

    assert_non_null(d);
    assert_int_equal(pthread_mutex_init(&d->mu, NULL), 0);
    return d;
}

static void threads_deliver_exactly_once_in_order(void **state)
{
    /* A small capacity makes producers block on back-pressure often. */
    sl_bus_t *bus = bus_new(6, 32, 0);
    delivery_t *d = delivery_new();

    (void)state;
    run_producers_and_consumers(bus, d, true, false);

    if (d->errors > 0)
        fail_msg("%d delivery errors, first: %s", d->errors, d->first_error);
    for (int k = 0; k < KEYS; k++) {
        assert_int_equal(d->next_seq[k], PER_KEY);
        for (int s = 0; s < PER_KEY; s++)
            assert_int_equal(d->delivered[k][s], 1);
    }
    pthread_mutex_destroy(&d->mu);
    free(d);
    sl_bus_destroy(bus);
}

static void rebalances_lose_nothing_under_load(void **state)
{
    sl_bus_t *bus = bus_new(6, 32, 0);
    delivery_t *d = delivery_new();

    (void)state;
    run_producers_and_consumers(bus, d, false, true);

    if (d->errors > 0)
        fail_msg("%d delivery errors, first: %s", d->errors, d->first_error);
    for (int k = 0; k < KEYS; k++) {
        for (int s = 0; s < PER_KEY; s++)
            assert_true(d->delivered[k][s] >= 1);
    }
    pthread_mutex_destroy(&d->mu);
    free(d);
    sl_bus_destroy(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(murmur2_matches_kafka_java),
        cmocka_unit_test(partition_for_key_is_positive_modulo),
        cmocka_unit_test(same_key_lands_on_same_partition),
        cmocka_unit_test(order_kept_per_key),
        cmocka_unit_test(explicit_partition_is_used),
        cmocka_unit_test(invalid_arguments_rejected),
        cmocka_unit_test(groups_track_offsets_independently),
        cmocka_unit_test(new_consumer_resumes_at_commit),
        cmocka_unit_test(commit_checks_topic_and_range),
        cmocka_unit_test(leaving_owner_redelivers_uncommitted),
        cmocka_unit_test(joining_member_takes_partition),
        cmocka_unit_test(poll_is_fair_across_partitions),
        cmocka_unit_test(full_partition_fails_after_timeout),
        cmocka_unit_test(byte_limit_applies),
        cmocka_unit_test(oversized_record_spares_its_neighbours),
        cmocka_unit_test(batch_stops_at_full_partition),
        cmocka_unit_test(memory_consumer_stats_are_zero),
        cmocka_unit_test(topic_without_group_keeps_records),
        cmocka_unit_test(lent_records_survive_commit),
        cmocka_unit_test(headers_round_trip),
        cmocka_unit_test(close_wakes_blocked_publisher),
        cmocka_unit_test(close_wakes_blocked_poller),
        cmocka_unit_test(poll_wakes_on_publish),
        cmocka_unit_test(threads_deliver_exactly_once_in_order),
        cmocka_unit_test(rebalances_lose_nothing_under_load),
    };

    sl_log_set_level(SL_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
