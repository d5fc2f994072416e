/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the dead-letter building blocks: the backoff schedule and
 * its jitter bounds with an injected random source, the timer heap's
 * order, the header round trip through the in-process bus, and the
 * content offset that names a dead-lettered record of that bus.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pipeline/dlq.h"
#include "util/err.h"
#include "util/rng.h"

static void backoff_doubles_up_to_cap(void **state)
{
    sl_dlq_policy_t p;
    static const int64_t expected[] = {1000,  2000,  4000,  8000,
                                       16000, 32000, 60000, 60000};

    (void)state;
    sl_dlq_policy_init(&p);
    p.cap_ms = 60000;
    p.jitter = 0.2;
    /* u = 0.5 is the middle of the jitter range: no spread. */
    for (int i = 0; i < 8; i++)
        assert_int_equal(sl_dlq_backoff_ms(&p, i, 0.5), expected[i]);
    assert_int_equal(sl_dlq_backoff_ms(&p, 1000, 0.5), 60000);
}

static void backoff_defaults(void **state)
{
    sl_dlq_policy_t p;

    (void)state;
    sl_dlq_policy_init(&p);
    assert_int_equal(p.base_ms, 1000);
    assert_int_equal(p.cap_ms, 300000);
    assert_int_equal(p.max_retries, 5);
    assert_true(p.jitter == 0.2);
    assert_int_equal(sl_dlq_backoff_ms(&p, 20, 0.5), 300000);
}

static void jitter_stays_within_bounds(void **state)
{
    sl_dlq_policy_t p;
    sl_rng_t rng;
    int64_t low = INT64_MAX, high = 0;

    (void)state;
    sl_dlq_policy_init(&p);
    sl_rng_seed(&rng, 42);
    for (int i = 0; i < 100000; i++) {
        int64_t d = sl_dlq_backoff_ms(&p, 2, sl_rng_uniform(&rng));
        assert_true(d >= 3200);
        assert_true(d <= 4800);
        low = d < low ? d : low;
        high = d > high ? d : high;
    }
    /* The spread is used, not just allowed. */
    assert_true(low < 3300);
    assert_true(high > 4700);
    assert_int_equal(sl_dlq_backoff_ms(&p, 2, 0.0), 3200);
    p.jitter = 0;
    assert_int_equal(sl_dlq_backoff_ms(&p, 2, 0.99), 4000);
}

static void timer_pops_random_inserts_in_due_order(void **state)
{
    sl_dlq_timer_t *t = sl_dlq_timer_create();
    sl_rng_t rng;
    int64_t id, due, last = INT64_MIN;
    size_t popped = 0;

    (void)state;
    assert_non_null(t);
    sl_rng_seed(&rng, 7);
    for (int64_t i = 1; i <= 5000; i++)
        assert_int_equal(
            sl_dlq_timer_schedule(t, i, (int64_t)sl_rng_below(&rng, 100000)),
            SL_OK);
    assert_int_equal(sl_dlq_timer_count(t), 5000);
    assert_false(sl_dlq_timer_pop_due(t, -1, &id, &due));
    while (sl_dlq_timer_pop_due(t, INT64_MAX, &id, &due)) {
        assert_true(due >= last);
        last = due;
        popped++;
    }
    assert_int_equal(popped, 5000);
    assert_int_equal(sl_dlq_timer_count(t), 0);
    assert_true(sl_dlq_timer_next_due(t) == INT64_MAX);
    sl_dlq_timer_destroy(t);
}

static void timer_ties_pop_in_insertion_order(void **state)
{
    sl_dlq_timer_t *t = sl_dlq_timer_create();
    int64_t id, due;

    (void)state;
    for (int64_t i = 1; i <= 200; i++)
        assert_int_equal(sl_dlq_timer_schedule(t, i, i % 2 == 0 ? 50 : 10),
                         SL_OK);
    for (int64_t expect = 1; expect <= 199; expect += 2) {
        assert_true(sl_dlq_timer_pop_due(t, 100, &id, &due));
        assert_int_equal(id, expect);
        assert_int_equal(due, 10);
    }
    for (int64_t expect = 2; expect <= 200; expect += 2) {
        assert_true(sl_dlq_timer_pop_due(t, 100, &id, &due));
        assert_int_equal(id, expect);
        assert_int_equal(due, 50);
    }
    sl_dlq_timer_destroy(t);
}

static void timer_reschedule_replaces_due(void **state)
{
    sl_dlq_timer_t *t = sl_dlq_timer_create();
    int64_t id, due;

    (void)state;
    assert_int_equal(sl_dlq_timer_schedule(t, 7, 1000), SL_OK);
    assert_int_equal(sl_dlq_timer_schedule(t, 8, 500), SL_OK);
    /* An operator's replay moves row 7 to now. */
    assert_int_equal(sl_dlq_timer_schedule(t, 7, 100), SL_OK);
    assert_int_equal(sl_dlq_timer_count(t), 2);
    assert_true(sl_dlq_timer_scheduled(t, 7, &due));
    assert_int_equal(due, 100);
    assert_int_equal(sl_dlq_timer_next_due(t), 100);
    assert_true(sl_dlq_timer_pop_due(t, 2000, &id, &due));
    assert_int_equal(id, 7);
    assert_true(sl_dlq_timer_pop_due(t, 2000, &id, &due));
    assert_int_equal(id, 8);
    /* The replaced entry at 1000 is stale and never pops. */
    assert_false(sl_dlq_timer_pop_due(t, 2000, &id, &due));
    assert_false(sl_dlq_timer_scheduled(t, 7, NULL));
    sl_dlq_timer_destroy(t);
}

/* A bus with one partition per topic, and a consumer of topic. */
static sl_bus_t *one_partition_bus(const char *topic, sl_consumer_t **cons)
{
    sl_bus_memory_config_t cfg;
    const char *topics[] = {topic};
    sl_bus_t *bus;

    sl_bus_memory_config_init(&cfg);
    cfg.partitions = 1;
    bus = sl_bus_memory_create(&cfg);
    assert_non_null(bus);
    *cons = sl_consumer_create(bus, "test", topics, 1);
    assert_non_null(*cons);
    return bus;
}

static void header_round_trip_keeps_bytes(void **state)
{
    static const unsigned char key[] = {0x00, 0xff, 'k', 0x00, 0x80};
    static const unsigned char value[] = {0x00, 0x00, 0x00, 0x00, 0x01,
                                          0xfe, 0x00, 0x0a, 0x0d};
    sl_msg_t orig = {.topic = "sensor-readings",
                     .partition = 3,
                     .offset = 123456789012LL,
                     .key = key,
                     .key_len = sizeof(key),
                     .value = value,
                     .value_len = sizeof(value)};
    sl_consumer_t *cons;
    sl_bus_t *bus = one_partition_bus(SL_TOPIC_DLQ, &cons);
    sl_dlq_entry_t e;
    sl_dlq_origin_t origin;
    sl_msg_t msg;
    size_t n;
    int64_t content = -1;

    (void)state;
    /* The in-process bus's offsets restart in every process, so the copy
     * names the record by its content offset, not by offset 123456789012. */
    assert_int_equal(
        sl_dlq_content_offset(key, sizeof(key), value, sizeof(value), &content),
        SL_OK);
    assert_int_equal(sl_dlq_publish(bus, &orig, NULL, SL_DLQ_STORAGE,
                                    "db_rejected: injected", 1700000000123LL,
                                    1000),
                     SL_OK);
    assert_int_equal(sl_consumer_poll(cons, &msg, 1, &n, 1000), SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(sl_dlq_entry_from_msg(&msg, &e), SL_OK);
    assert_string_equal(e.topic, "sensor-readings");
    assert_int_equal(e.partition, 3);
    assert_int_equal(e.offset, content);
    assert_int_equal(e.error_class, SL_DLQ_STORAGE);
    assert_string_equal(e.error, "db_rejected: injected");
    assert_int_equal(e.retry_count, 0);
    assert_int_equal(e.first_failure_ms, 1700000000123LL);
    assert_int_equal(e.last_failure_ms, 1700000000123LL);
    assert_int_equal(e.status, SL_DLQ_PENDING);
    assert_int_equal(e.key_len, sizeof(key));
    assert_memory_equal(e.key, key, sizeof(key));
    assert_int_equal(e.payload_len, sizeof(value));
    assert_memory_equal(e.payload, value, sizeof(value));

    /* The record as the handler republishes it carries the origin, and a
     * second failure keeps position and first failure, attempt + 1. */
    assert_true(sl_dlq_origin_from_msg(&msg, &origin));
    assert_int_equal(origin.attempt, 1);
    assert_int_equal(sl_dlq_publish(bus, &orig, &origin, SL_DLQ_PROCESSING,
                                    "again", 1700000009999LL, 1000),
                     SL_OK);
    assert_int_equal(sl_consumer_poll(cons, &msg, 1, &n, 1000), SL_OK);
    assert_int_equal(sl_dlq_entry_from_msg(&msg, &e), SL_OK);
    assert_int_equal(e.offset, content);
    assert_int_equal(e.retry_count, 1);
    assert_int_equal(e.error_class, SL_DLQ_PROCESSING);
    assert_int_equal(e.first_failure_ms, 1700000000123LL);
    assert_int_equal(e.last_failure_ms, 1700000009999LL);
    assert_memory_equal(e.payload, value, sizeof(value));

    sl_bus_close(bus);
    sl_consumer_destroy(cons);
    sl_bus_destroy(bus);
}

/* Returns the content offset of key (NULL allowed) and value. */
static int64_t content_offset(const char *key, size_t key_len,
                              const char *value, size_t value_len)
{
    int64_t out = -1;

    assert_int_equal(
        sl_dlq_content_offset(key, key_len, value, value_len, &out), SL_OK);
    assert_true(out >= 0);
    return out;
}

static void content_offset_depends_on_bytes_only(void **state)
{
    char key[] = "sensor-1";
    char value[] = "\x00\x00\x00\x00\x01payload";
    int64_t base = content_offset(key, 8, value, sizeof(value));

    (void)state;
    /* Equal bytes at other addresses give the same offset. */
    assert_int_equal(content_offset("sensor-1", 8, value, sizeof(value)), base);
    value[5] ^= 1;
    assert_int_not_equal(content_offset(key, 8, value, sizeof(value)), base);
    value[5] ^= 1;
    key[7] = '2';
    assert_int_not_equal(content_offset(key, 8, value, sizeof(value)), base);

    /* The key length is part of the hash: moving a byte from the key to
     * the value is another record. */
    assert_int_not_equal(content_offset("ab", 2, "c", 1),
                         content_offset("a", 1, "bc", 2));
    /* A NULL key is not an empty one, but a NULL value is an empty one. */
    assert_int_not_equal(content_offset(NULL, 0, "v", 1),
                         content_offset("", 0, "v", 1));
    assert_int_equal(content_offset("k", 1, NULL, 0),
                     content_offset("k", 1, "", 0));
}

/* Publishes a first-failure copy of key/value, which the in-process bus
 * gave offset, and returns the offset its dead-letter headers name. */
static int64_t copy_offset(sl_bus_t *bus, sl_consumer_t *cons, const char *key,
                           const char *value, int64_t offset)
{
    sl_msg_t orig = {.topic = "sensor-readings",
                     .partition = 0,
                     .offset = offset,
                     .key = key,
                     .key_len = strlen(key),
                     .value = value,
                     .value_len = strlen(value)};
    sl_dlq_entry_t e;
    sl_msg_t msg;
    size_t n = 0;

    assert_int_equal(sl_dlq_publish(bus, &orig, NULL, SL_DLQ_DECODE,
                                    "bad_magic_byte", 1700000000000LL, 1000),
                     SL_OK);
    assert_int_equal(sl_consumer_poll(cons, &msg, 1, &n, 1000), SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(sl_dlq_entry_from_msg(&msg, &e), SL_OK);
    assert_int_equal(e.partition, 0);
    assert_int_equal(e.status, SL_DLQ_DEAD);
    return e.offset;
}

/*
 * Two processes of the in-process bus, each numbering from offset 0. A
 * different bad record at the offset an earlier one had gets a position
 * of its own. The same record at another offset keeps its position, as a
 * replay of the same input after a crash must.
 */
static void memory_bus_positions_follow_content(void **state)
{
    sl_consumer_t *first_cons, *second_cons;
    sl_bus_t *first = one_partition_bus(SL_TOPIC_DLQ, &first_cons);
    sl_bus_t *second = one_partition_bus(SL_TOPIC_DLQ, &second_cons);
    int64_t a = copy_offset(first, first_cons, "k-a", "bad-a", 0);
    int64_t b = copy_offset(first, first_cons, "k-b", "bad-b", 1);

    (void)state;
    assert_int_not_equal(a, b);
    assert_int_equal(a, content_offset("k-a", 3, "bad-a", 5));
    assert_int_not_equal(copy_offset(second, second_cons, "k-c", "bad-c", 0),
                         a);
    assert_int_equal(copy_offset(second, second_cons, "k-b", "bad-b", 0), b);
    assert_int_equal(copy_offset(second, second_cons, "k-a", "bad-a", 7), a);

    sl_bus_close(first);
    sl_bus_close(second);
    sl_consumer_destroy(first_cons);
    sl_consumer_destroy(second_cons);
    sl_bus_destroy(first);
    sl_bus_destroy(second);
}

/* A record too large for the in-process bus has no partition, and its
 * digest carries the content offset of key and whole value, so a replay
 * of the same input after a crash updates its row instead of adding one. */
static void memory_bus_oversized_digest_named_by_content(void **state)
{
    static const char value[] = "0123456789abcdef0123456789";
    sl_consumer_t *cons;
    sl_bus_t *bus = one_partition_bus(SL_TOPIC_DLQ, &cons);
    sl_dlq_entry_t e;
    sl_msg_t msg;
    size_t n = 0;

    (void)state;
    assert_int_equal(sl_dlq_publish_oversized(bus, "sensor-readings", "big", 3,
                                              value, sizeof(value) - 1, 16,
                                              1700000000000LL, 1000),
                     SL_OK);
    assert_int_equal(sl_consumer_poll(cons, &msg, 1, &n, 1000), SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(sl_dlq_entry_from_msg(&msg, &e), SL_OK);
    assert_int_equal(e.partition, -1);
    assert_int_equal(e.offset,
                     content_offset("big", 3, value, sizeof(value) - 1));
    assert_int_equal(e.status, SL_DLQ_DEAD);

    sl_bus_close(bus);
    sl_consumer_destroy(cons);
    sl_bus_destroy(bus);
}

static void retry_publish_goes_to_original_topic(void **state)
{
    static const unsigned char value[] = {0x00, 0x01, 0x02, 0x00};
    sl_dlq_entry_t e = {.partition = 2,
                        .offset = 77,
                        .key = "k",
                        .key_len = 1,
                        .payload = value,
                        .payload_len = sizeof(value),
                        .error_class = SL_DLQ_STORAGE,
                        .retry_count = 2,
                        .first_failure_ms = 10,
                        .last_failure_ms = 20};
    sl_consumer_t *cons;
    sl_bus_t *bus = one_partition_bus("sensor-readings", &cons);
    sl_dlq_origin_t origin;
    sl_msg_t msg;
    size_t n;

    (void)state;
    strcpy(e.topic, "sensor-readings");
    strcpy(e.error, "db_rejected: x");
    assert_int_equal(sl_dlq_publish_retry(bus, &e, 1000), SL_OK);
    assert_int_equal(sl_consumer_poll(cons, &msg, 1, &n, 1000), SL_OK);
    assert_int_equal(n, 1);
    assert_memory_equal(msg.value, value, sizeof(value));
    assert_true(sl_dlq_origin_from_msg(&msg, &origin));
    assert_string_equal(origin.topic, "sensor-readings");
    assert_int_equal(origin.partition, 2);
    assert_int_equal(origin.offset, 77);
    assert_int_equal(origin.attempt, 2);
    assert_int_equal(origin.first_failure_ms, 10);

    sl_bus_close(bus);
    sl_consumer_destroy(cons);
    sl_bus_destroy(bus);
}

static void first_delivery_has_no_origin(void **state)
{
    sl_msg_t msg = {.topic = "sensor-readings", .value = "", .value_len = 0};
    sl_header_t bad[] = {{SL_DLQ_HDR_TOPIC, "sensor-readings", 15},
                         {SL_DLQ_HDR_PARTITION, "x", 1}};
    sl_dlq_origin_t origin;

    (void)state;
    assert_false(sl_dlq_origin_from_msg(&msg, &origin));
    msg.headers = bad;
    msg.header_count = 2;
    assert_false(sl_dlq_origin_from_msg(&msg, &origin));
    assert_true(sl_dlq_class_permanent(SL_DLQ_DECODE));
    assert_true(sl_dlq_class_permanent(SL_DLQ_VALIDATION));
    assert_false(sl_dlq_class_permanent(SL_DLQ_STORAGE));
    assert_false(sl_dlq_class_permanent(SL_DLQ_PROCESSING));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_doubles_up_to_cap),
        cmocka_unit_test(backoff_defaults),
        cmocka_unit_test(jitter_stays_within_bounds),
        cmocka_unit_test(timer_pops_random_inserts_in_due_order),
        cmocka_unit_test(timer_ties_pop_in_insertion_order),
        cmocka_unit_test(timer_reschedule_replaces_due),
        cmocka_unit_test(header_round_trip_keeps_bytes),
        cmocka_unit_test(content_offset_depends_on_bytes_only),
        cmocka_unit_test(memory_bus_positions_follow_content),
        cmocka_unit_test(memory_bus_oversized_digest_named_by_content),
        cmocka_unit_test(retry_publish_goes_to_original_topic),
        cmocka_unit_test(first_delivery_has_no_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
