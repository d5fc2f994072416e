/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Consumer groups of the Kafka bus on librdkafka's mock cluster: committed
 * offsets survive a consumer, and a member joining in the middle of a run
 * takes over partitions without losing a record or committing past what
 * the test stored.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
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

static void publish_numbered(sl_bus_t *bus, const char *topic, int from, int to)
{
    char key[16], value[16];

    for (int i = from; i < to; i++) {
        snprintf(key, sizeof(key), "k%d", i % 17);
        snprintf(value, sizeof(value), "%d", i);
        assert_int_equal(sl_bus_publish(bus, topic, -1, key, strlen(key), value,
                                        strlen(value), NULL, 0, 1000, NULL),
                         SL_OK);
    }
}

static void test_group_resumes_at_commit(void **state)
{
    kh_cluster_t *cluster = *state;
    enum { TOTAL = 40, PARTITIONS = 3 };
    const char *topic = "resume-readings";
    /* On librdkafka 2.0.2's mock cluster, a member that joins after the
     * previous one left got its cooperative-sticky assignment about 20 s
     * later (measured here), while range took 5 s. This test checks
     * offsets, so it uses range. The rebalance test keeps cooperative. */
    const char *eager[] = {"consumer.partition.assignment.strategy=range"};
    kh_record_t first[TOTAL + 5], second[TOTAL + 5];
    int64_t commit_at[PARTITIONS];
    int64_t end[PARTITIONS] = {0};
    int64_t expected_lag = 0;
    sl_bus_t *bus;
    sl_consumer_t *consumer;
    size_t n;

    kh_topic_create(cluster, topic, PARTITIONS);
    bus = kh_bus_create(cluster->bootstraps, eager, 1);
    publish_numbered(bus, topic, 0, TOTAL);

    consumer = sl_consumer_create(bus, "resume", &topic, 1);
    assert_non_null(consumer);
    assert_int_equal(sl_consumer_lag(consumer), TOTAL);
    n = kh_drain(consumer, first, TOTAL + 5, TOTAL, 4 * JOIN_TIMEOUT_MS, false);
    assert_int_equal(n, TOTAL);

    /* Commit half of each partition, as if the rest were never stored. */
    for (size_t i = 0; i < n; i++) {
        if (first[i].offset + 1 > end[first[i].partition])
            end[first[i].partition] = first[i].offset + 1;
    }
    for (int p = 0; p < PARTITIONS; p++) {
        commit_at[p] = end[p] / 2;
        expected_lag += end[p] - commit_at[p];
        assert_int_equal(sl_consumer_commit(consumer, topic, p, commit_at[p]),
                         SL_OK);
        assert_int_equal(sl_consumer_committed(consumer, topic, p),
                         commit_at[p]);
    }
    assert_int_equal(sl_consumer_lag(consumer), expected_lag);
    assert_int_equal(sl_consumer_commit(consumer, topic, 0, end[0] + 100),
                     SL_EINVAL);
    assert_int_equal(sl_consumer_commit(consumer, "not-subscribed", 0, 0),
                     SL_EINVAL);
    sl_consumer_destroy(consumer);

    consumer = sl_consumer_create(bus, "resume", &topic, 1);
    assert_non_null(consumer);
    /* The mock can take tens of seconds to hand a rejoining group its
     * partitions when the machine is busy; the drain ends once all came. */
    n = kh_drain(consumer, second, TOTAL + 5, (size_t)expected_lag,
                 4 * JOIN_TIMEOUT_MS, true);
    assert_int_equal(n, (size_t)expected_lag);
    for (size_t i = 0; i < n; i++)
        assert_true(second[i].offset >= commit_at[second[i].partition]);
    assert_int_equal(sl_consumer_lag(consumer), 0);

    sl_consumer_destroy(consumer);
    sl_bus_destroy(bus);
}

typedef struct member {
    sl_consumer_t *consumer;
    size_t received;
    int partitions_seen; /* bitmask of partitions it received from */
} member_t;

/* Polls one member once; stores each record in seen[] and commits it.
 * A commit refused with SL_EBUSY means the partition moved; its new owner
 * gets the record again from the last commit. */
static void member_poll(member_t *member, const char *topic, int *seen,
                        int64_t *stored_end)
{
    sl_msg_t msgs[64];
    size_t count = 0;

    assert_int_equal(sl_consumer_poll(member->consumer, msgs, 64, &count, 50),
                     SL_OK);
    for (size_t i = 0; i < count; i++) {
        kh_record_t rec;
        int32_t p = msgs[i].partition;
        int rc;

        kh_record_copy(&rec, &msgs[i]);
        assert_string_equal(rec.topic, topic);
        seen[atoi(rec.value)]++;
        member->received++;
        member->partitions_seen |= 1 << p;
        if (msgs[i].offset + 1 > stored_end[p])
            stored_end[p] = msgs[i].offset + 1;
        rc = sl_consumer_commit(member->consumer, topic, p, msgs[i].offset + 1);
        assert_true(rc == SL_OK || rc == SL_EBUSY);
    }
}

/* Returns true when the group's commit of every partition has reached
 * the end of what the test stored. A record whose commit was refused is
 * still on its way to the new owner until then. */
static bool all_committed(sl_consumer_t *consumer, const char *topic,
                          const int64_t *stored_end, int partitions)
{
    for (int p = 0; p < partitions; p++) {
        if (sl_consumer_committed(consumer, topic, p) != stored_end[p])
            return false;
    }
    return true;
}

/* Runs a second member joining mid-run on topic (also the group name),
 * with each consumer's queue capped at queue_records records and
 * queue_bytes bytes (0: the defaults). Returns how often the two members
 * paused fetching. */
static uint64_t run_rebalance_mid_run(kh_cluster_t *cluster, const char *topic,
                                      size_t queue_records, size_t queue_bytes)
{
    sl_consumer_stats_t stats_a, stats_b;
    enum { HALF = 200, TOTAL = 2 * HALF, PARTITIONS = 4 };
    int seen[TOTAL] = {0};
    int64_t stored_end[PARTITIONS] = {0};
    member_t a = {0}, b = {0};
    sl_bus_t *bus;
    int64_t deadline;
    int moved = -1;

    kh_topic_create(cluster, topic, PARTITIONS);
    bus = kh_bus_create_capped(cluster->bootstraps, NULL, 0, queue_records,
                               queue_bytes);
    publish_numbered(bus, topic, 0, HALF);

    a.consumer = sl_consumer_create(bus, topic, &topic, 1);
    assert_non_null(a.consumer);
    deadline = kh_now_ms() + JOIN_TIMEOUT_MS;
    while (a.received < HALF / 2 && kh_now_ms() < deadline)
        member_poll(&a, topic, seen, stored_end);
    assert_true(a.received >= HALF / 2);

    /* B joins while A keeps polling; records keep arriving meanwhile. */
    b.consumer = sl_consumer_create(bus, topic, &topic, 1);
    assert_non_null(b.consumer);
    publish_numbered(bus, topic, HALF, TOTAL);
    /* Under load the mock takes tens of seconds to settle a cooperative
     * rebalance; the loop ends as soon as everything is committed. */
    deadline = kh_now_ms() + 6 * JOIN_TIMEOUT_MS;
    for (;;) {
        int missing = 0;

        member_poll(&a, topic, seen, stored_end);
        member_poll(&b, topic, seen, stored_end);
        for (int i = 0; i < TOTAL; i++)
            missing += seen[i] == 0;
        if (kh_now_ms() >= deadline)
            break;
        if (missing == 0 && b.received > 0 &&
            all_committed(b.consumer, topic, stored_end, PARTITIONS))
            break;
    }

    for (int i = 0; i < TOTAL; i++)
        assert_true(seen[i] >= 1);
    assert_true(b.received > 0);

    /* A commit from A on a partition B now owns is refused. */
    for (int p = 0; p < PARTITIONS && moved < 0; p++) {
        if (b.partitions_seen & (1 << p))
            moved = p;
    }
    assert_true(moved >= 0);
    assert_int_equal(sl_consumer_commit(a.consumer, topic, moved, 0), SL_EBUSY);

    /* The group's commits equal what the test stored, never more. */
    for (int p = 0; p < PARTITIONS; p++)
        assert_int_equal(sl_consumer_committed(b.consumer, topic, p),
                         stored_end[p]);
    assert_int_equal(sl_consumer_lag(b.consumer), 0);

    assert_int_equal(sl_consumer_stats(a.consumer, &stats_a), SL_OK);
    assert_int_equal(sl_consumer_stats(b.consumer, &stats_b), SL_OK);
    assert_true(stats_a.queued_records_max <= stats_a.queue_cap_records);
    assert_true(stats_b.queued_records_max <= stats_b.queue_cap_records);
    sl_consumer_destroy(a.consumer);
    sl_consumer_destroy(b.consumer);
    sl_bus_destroy(bus);
    return stats_a.pauses + stats_b.pauses;
}

static void test_group_rebalance_mid_run(void **state)
{
    /* 400 records never fill the default queue. */
    assert_int_equal(run_rebalance_mid_run(*state, "rebalance-readings", 0, 0),
                     0);
}

/* The same with queues so small that fetching pauses all the time, also
 * while partitions move: pausing loses and repeats nothing. */
static void test_group_rebalance_with_full_queue(void **state)
{
    assert_true(run_rebalance_mid_run(*state, "rebalance-paused-readings", 16,
                                      256) > 0);
}

static void publish_to(sl_bus_t *bus, const char *topic, int32_t partition,
                       int from, int to)
{
    char value[16];

    for (int i = from; i < to; i++) {
        snprintf(value, sizeof(value), "%d", i);
        assert_int_equal(sl_bus_publish(bus, topic, partition, "k", 1, value,
                                        strlen(value), NULL, 0, 1000, NULL),
                         SL_OK);
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Counts a polled record in seen[], indexed by partition and value. */
static void count_seen(int *seen, int per_partition, const sl_msg_t *msg)
{
    kh_record_t rec;

    kh_record_copy(&rec, msg);
    seen[msg->partition * per_partition + atoi(rec.value) % 1000]++;
}

/* A member still works on a batch of both partitions when a second member
 * joins. The revocation waits for it, the member commits the batch during
 * the wait, and so the new owner starts after the batch and reads none of
 * it again. */
static void test_revoke_waits_for_finished_work(void **state)
{
    kh_cluster_t *cluster = *state;
    enum { PER_ROUND = 10, ROUNDS = 3, PER_PARTITION = PER_ROUND * ROUNDS };
    const char *topic = "revoke-readings";
    int seen[2 * PER_PARTITION] = {0};
    int64_t held_end[2] = {-1, -1};
    int64_t b_first[2] = {-1, -1};
    sl_msg_t held[64], msgs[64];
    sl_consumer_stats_t stats;
    sl_consumer_t *a, *b;
    sl_bus_t *bus;
    size_t n = 0, held_count = 0;
    int64_t deadline;

    kh_topic_create(cluster, topic, 2);
    bus = kh_bus_create(cluster->bootstraps, NULL, 0);
    for (int p = 0; p < 2; p++)
        publish_to(bus, topic, p, p * 1000, p * 1000 + PER_ROUND);

    /* A stores and commits its first batch. */
    a = sl_consumer_create(bus, "revoke", &topic, 1);
    assert_non_null(a);
    deadline = kh_now_ms() + JOIN_TIMEOUT_MS;
    while (n == 0 && kh_now_ms() < deadline)
        assert_int_equal(sl_consumer_poll(a, msgs, 64, &n, 100), SL_OK);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        count_seen(seen, PER_PARTITION, &msgs[i]);
        assert_int_equal(
            sl_consumer_commit(a, topic, msgs[i].partition, msgs[i].offset + 1),
            SL_OK);
    }

    /* A's next batch contains records of both partitions. A keeps it. */
    for (int p = 0; p < 2; p++)
        publish_to(bus, topic, p, p * 1000 + PER_ROUND,
                   p * 1000 + 2 * PER_ROUND);
    sleep_ms(1500);
    assert_int_equal(sl_consumer_poll(a, held, 64, &held_count, 1000), SL_OK);
    for (size_t i = 0; i < held_count; i++) {
        count_seen(seen, PER_PARTITION, &held[i]);
        held_end[held[i].partition] = held[i].offset + 1;
    }
    /* It took all that was published: both partitions up to round 2. */
    assert_int_equal(held_end[0], 2 * PER_ROUND);
    assert_int_equal(held_end[1], 2 * PER_ROUND);

    b = sl_consumer_create(bus, "revoke", &topic, 1);
    assert_non_null(b);

    /* A's poll thread now waits in the revocation for the batch. */
    deadline = kh_now_ms() + 6 * JOIN_TIMEOUT_MS;
    do {
        assert_int_equal(sl_consumer_poll(b, msgs, 64, &n, 50), SL_OK);
        assert_int_equal(n, 0);
        assert_int_equal(sl_consumer_stats(a, &stats), SL_OK);
    } while (stats.revoking == 0 && kh_now_ms() < deadline);
    assert_true(stats.revoking > 0);

    /* The store write ends within the wait; the commits still count. */
    sleep_ms(300);
    for (int p = 0; p < 2; p++)
        assert_int_equal(sl_consumer_commit(a, topic, p, held_end[p]), SL_OK);

    /* The rest: A and B share it, and nothing comes twice. */
    for (int p = 0; p < 2; p++)
        publish_to(bus, topic, p, p * 1000 + 2 * PER_ROUND,
                   p * 1000 + PER_PARTITION);
    deadline = kh_now_ms() + 4 * JOIN_TIMEOUT_MS;
    while (kh_now_ms() < deadline) {
        sl_consumer_t *members[] = {a, b};
        int missing = 0;

        for (int i = 0; i < 2 * PER_PARTITION; i++)
            missing += seen[i] == 0;
        if (missing == 0)
            break;

        for (int m = 0; m < 2; m++) {
            assert_int_equal(sl_consumer_poll(members[m], msgs, 64, &n, 50),
                             SL_OK);
            for (size_t i = 0; i < n; i++) {
                int32_t p = msgs[i].partition;
                int rc;

                count_seen(seen, PER_PARTITION, &msgs[i]);
                if (m == 1 && b_first[p] < 0)
                    b_first[p] = msgs[i].offset;
                /* The mock's second cooperative round may refuse a commit
                 * (SL_EBUSY); those later records may then come twice. */
                rc = sl_consumer_commit(members[m], topic, p,
                                        msgs[i].offset + 1);
                assert_true(rc == SL_OK || rc == SL_EBUSY);
            }
        }
    }
    for (int p = 0; p < 2; p++) {
        for (int i = 0; i < PER_PARTITION; i++) {
            if (i < 2 * PER_ROUND)
                assert_int_equal(seen[p * PER_PARTITION + i], 1);
            else
                assert_true(seen[p * PER_PARTITION + i] >= 1);
        }
    }

    /* The new owner began after the held batch: nothing of it re-read. */
    assert_true(b_first[0] >= 0 || b_first[1] >= 0);
    for (int p = 0; p < 2; p++)
        assert_true(b_first[p] < 0 || b_first[p] >= held_end[p]);
    assert_int_equal(sl_consumer_stats(a, &stats), SL_OK);
    assert_int_equal(stats.revoke_timeouts, 0);
    assert_true(stats.partitions_revoked >= 1);

    sl_consumer_destroy(a);
    sl_consumer_destroy(b);
    sl_bus_destroy(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_resumes_at_commit),
        cmocka_unit_test(test_group_rebalance_mid_run),
        cmocka_unit_test(test_group_rebalance_with_full_queue),
        cmocka_unit_test(test_revoke_waits_for_finished_work),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
