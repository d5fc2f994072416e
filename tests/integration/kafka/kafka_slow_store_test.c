/* SPDX-License-Identifier: Apache-2.0 */
/*
 * On librdkafka's mock cluster, a store that takes 10 s per batch,
 * far beyond max.poll.interval.ms (6 s), must not get the consumer thrown
 * out of its group. The consumer's own poll thread keeps the membership
 * alive and pauses fetching while its queue is full; the stage commits
 * only what it stored.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
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
#define TOTAL 1000
#define PARTITIONS 3
#define BATCH 100
#define SLOW_WRITE_MS 10000 /* one store write while the store is slow */
#define SLOW_PHASE_MS 25000 /* writes starting before this are slow */
#define QUEUE_RECORDS 250
#define QUEUE_BYTES (64 * 1024)
#define SENSORS 20

static const char *const topic = "slow-store-readings";

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

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static void publish_reading(sl_bus_t *bus, int seq)
{
    char key[16], value[16];

    snprintf(key, sizeof(key), "sensor-%02d", seq % SENSORS);
    snprintf(value, sizeof(value), "%d", seq);
    assert_int_equal(sl_bus_publish(bus, topic, -1, key, strlen(key), value,
                                    strlen(value), NULL, 0, 5000, NULL),
                     SL_OK);
}

typedef struct producer {
    sl_bus_t *bus;
    int from;
    atomic_int published;
    atomic_bool failed;
} producer_t;

/* Publishes readings from..TOTAL at about 100 per second, so that they
 * arrive while the store is slow. */
static void *producer_main(void *arg)
{
    producer_t *prod = arg;

    for (int seq = prod->from; seq < TOTAL; seq++) {
        char key[16], value[16];

        snprintf(key, sizeof(key), "sensor-%02d", seq % SENSORS);
        snprintf(value, sizeof(value), "%d", seq);
        if (sl_bus_publish(prod->bus, topic, -1, key, strlen(key), value,
                           strlen(value), NULL, 0, 5000, NULL) != SL_OK)
            atomic_store(&prod->failed, true);
        atomic_fetch_add(&prod->published, 1);
        if (seq % 10 == 9)
            sleep_ms(100);
    }
    return NULL;
}

/* What the simulated store holds. */
typedef struct store {
    int stored[TOTAL];               /* times each seq was stored */
    int64_t stored_end[PARTITIONS];  /* offset after the last stored */
    int last_seq[SENSORS];           /* per-key order check */
    int64_t last_offset[PARTITIONS]; /* per-partition order check */
    size_t count;
} store_t;

static void store_batch(store_t *st, const sl_msg_t *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        kh_record_t rec;
        int seq, sensor;
        int32_t p = msgs[i].partition;

        kh_record_copy(&rec, &msgs[i]);
        seq = atoi(rec.value);
        sensor = seq % SENSORS;
        assert_true(seq >= 0 && seq < TOTAL);
        assert_true(p >= 0 && p < PARTITIONS);
        /* Each partition in offset order with no gap, each key in order. */
        assert_int_equal(msgs[i].offset, st->last_offset[p] + 1);
        st->last_offset[p] = msgs[i].offset;
        assert_true(seq > st->last_seq[sensor]);
        st->last_seq[sensor] = seq;
        st->stored[seq]++;
        st->stored_end[p] = msgs[i].offset + 1;
        st->count++;
    }
}

/* Commits what the batch stored, one partition at a time, and checks that
 * the group's commit never runs ahead of the store. */
static void commit_stored(sl_consumer_t *consumer, const store_t *st,
                          const sl_msg_t *msgs, size_t n)
{
    bool touched[PARTITIONS] = {false};

    for (size_t i = 0; i < n; i++)
        touched[msgs[i].partition] = true;
    for (int p = 0; p < PARTITIONS; p++) {
        if (!touched[p])
            continue;
        assert_int_equal(
            sl_consumer_commit(consumer, topic, p, st->stored_end[p]), SL_OK);
        assert_int_equal(sl_consumer_committed(consumer, topic, p),
                         st->stored_end[p]);
    }
}

static void test_slow_store_keeps_group_membership(void **state)
{
    kh_cluster_t *cluster = *state;
    const char *props[] = {"consumer.max.poll.interval.ms=6000",
                           "consumer.session.timeout.ms=6000"};
    static store_t st;
    producer_t prod = {0};
    pthread_t producer_thread;
    sl_consumer_stats_t stats;
    sl_msg_t msgs[BATCH];
    sl_consumer_t *consumer;
    sl_bus_t *bus;
    int64_t slow_from = -1, deadline, max_lag = 0;
    int slow_writes = 0;

    memset(&st, 0, sizeof(st));
    for (int p = 0; p < PARTITIONS; p++)
        st.last_offset[p] = -1;
    for (int s = 0; s < SENSORS; s++)
        st.last_seq[s] = -1;

    kh_topic_create(cluster, topic, PARTITIONS);
    bus = kh_bus_create_capped(cluster->bootstraps, props, 2, QUEUE_RECORDS,
                               QUEUE_BYTES);
    for (int seq = 0; seq < 10; seq++)
        publish_reading(bus, seq);
    consumer = sl_consumer_create(bus, "slow-store", &topic, 1);
    assert_non_null(consumer);

    prod.bus = bus;
    prod.from = 10;
    deadline = kh_now_ms() + JOIN_TIMEOUT_MS + 120000;
    while (st.count < TOTAL && kh_now_ms() < deadline) {
        size_t n = 0;

        assert_int_equal(sl_consumer_poll(consumer, msgs, BATCH, &n, 100),
                         SL_OK);
        if (n == 0)
            continue;
        if (slow_from < 0) {
            /* The first batch starts the slow phase and the producer. */
            slow_from = kh_now_ms();
            assert_int_equal(
                pthread_create(&producer_thread, NULL, producer_main, &prod),
                0);
        }
        if (kh_now_ms() - slow_from < SLOW_PHASE_MS) {
            int64_t lag;

            sleep_ms(SLOW_WRITE_MS);
            slow_writes++;
            /* Nothing of the batch in work was committed meanwhile. */
            for (int p = 0; p < PARTITIONS; p++)
                assert_int_equal(sl_consumer_committed(consumer, topic, p),
                                 st.stored_end[p] > 0 ? st.stored_end[p] : -1);
            lag = sl_consumer_lag(consumer);
            if (lag > max_lag)
                max_lag = lag;
            /* The queue filled meanwhile and fetching paused. */
            assert_int_equal(sl_consumer_stats(consumer, &stats), SL_OK);
            assert_true(stats.queued_records <= QUEUE_RECORDS);
        }
        store_batch(&st, msgs, n);
        commit_stored(consumer, &st, msgs, n);
    }
    assert_true(slow_from >= 0);
    assert_int_equal(pthread_join(producer_thread, NULL), 0);
    assert_false(atomic_load(&prod.failed));
    assert_int_equal(atomic_load(&prod.published), TOTAL - 10);

    /* Every reading stored exactly once. */
    assert_int_equal(st.count, TOTAL);
    for (int seq = 0; seq < TOTAL; seq++)
        assert_int_equal(st.stored[seq], 1);
    assert_true(slow_writes >= 2);

    /* Nothing more comes: a redelivery would show up here. */
    {
        size_t n = 0;

        assert_int_equal(sl_consumer_poll(consumer, msgs, BATCH, &n, 1000),
                         SL_OK);
        assert_int_equal(n, 0);
    }

    /* The lag rose while the store was slow and is back to zero. */
    assert_true(max_lag >= BATCH);
    assert_int_equal(sl_consumer_lag(consumer), 0);

    /* One assignment, no revocation: the member never left the group. The
     * queue paused fetching and never held more than its caps. */
    assert_int_equal(sl_consumer_stats(consumer, &stats), SL_OK);
    assert_int_equal(stats.partitions_assigned, PARTITIONS);
    assert_int_equal(stats.partitions_revoked, 0);
    assert_int_equal(stats.revoke_timeouts, 0);
    assert_true(stats.pauses >= 1);
    assert_int_equal(stats.queue_cap_records, QUEUE_RECORDS);
    assert_true(stats.queued_records_max <= QUEUE_RECORDS);
    assert_true(stats.queued_records_max >= QUEUE_RECORDS / 2);
    assert_true(stats.queued_bytes_max <= QUEUE_BYTES);
    assert_int_equal(stats.paused, 0);
    print_message("slow writes %d, max lag %lld, pauses %llu, max queued "
                  "%zu records / %zu bytes, dropped %llu\n",
                  slow_writes, (long long)max_lag,
                  (unsigned long long)stats.pauses, stats.queued_records_max,
                  stats.queued_bytes_max,
                  (unsigned long long)stats.records_dropped);

    sl_consumer_destroy(consumer);
    sl_bus_destroy(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_store_keeps_group_membership),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
