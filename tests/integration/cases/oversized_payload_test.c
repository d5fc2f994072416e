/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One oversized message must not fail its neighbours. A fetched value
 * larger than the processor's max_payload_bytes is rejected as
 * payload_too_large without an Avro decode, and its dead-letter copy keeps
 * only an excerpt with the original size and hash, not the whole body. The
 * small readings fetched with it are stored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases_harness.h"
#include "config/config.h"
#include "obs/metrics.h"
#include "roles/setup.h"
#include "util/err.h"

#define T0 INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define BIG_EVENT_BYTES 1500000
#define NEIGHBOURS 3

static uint64_t too_large_count(void)
{
    sl_counter_t *counter = sl_metrics_counter(
        "sluice_decode_errors_total", "Records that could not be decoded",
        (const char *[]){"reason", "payload_too_large", NULL});

    assert_non_null(counter);
    return sl_counter_value(counter);
}

/* Checks the dead-letter copy of value (len bytes) that was published at
 * topic/0/offset with an error starting with reason. */
static void check_excerpt(const ch_dlq_record_t *rec, const char *topic,
                          int64_t offset, const uint8_t *value, size_t len,
                          const char *reason)
{
    char size[24], sha[65], hash_text[96];
    size_t excerpt = len < SL_DLQ_EXCERPT_BYTES ? len : SL_DLQ_EXCERPT_BYTES;

    snprintf(size, sizeof(size), "%zu", len);
    ch_sha256_hex(value, len, sha);
    snprintf(hash_text, sizeof(hash_text), "; sha256=%s; the payload", sha);

    assert_string_equal(rec->entry.topic, topic);
    assert_int_equal(rec->entry.partition, 0);
    assert_int_equal(rec->entry.offset, offset);
    assert_int_equal(rec->entry.error_class, SL_DLQ_DECODE);
    if (strncmp(rec->entry.error, reason, strlen(reason)) != 0)
        fail_msg("dead-letter error: %s", rec->entry.error);
    assert_non_null(strstr(rec->entry.error, hash_text));
    assert_int_equal(rec->value_len, excerpt);
    assert_memory_equal(
        rec->value_head, value,
        excerpt < sizeof(rec->value_head) ? excerpt : sizeof(rec->value_head));
    assert_string_equal(rec->original_size, size);
    assert_string_equal(rec->original_sha256, sha);
}

/* The error of a value over the limit of max_bytes. */
static void too_large_reason(char *out, size_t out_size, size_t len,
                             size_t max_bytes)
{
    snprintf(out, out_size,
             "payload_too_large: value of %zu bytes is over "
             "max-payload-bytes %zu",
             len, max_bytes);
}

/* Checks that the store contains readings[0..count) except readings[skip]
 * (none skipped when skip >= count), and nothing else. */
static void check_neighbours(sl_store_t *st, const sl_reading_t *readings,
                             size_t count, size_t skip)
{
    sl_reading_query_t q;
    sl_reading_t got[8];
    size_t n = 0;

    sl_reading_query_init(&q);
    q.limit = 8;
    assert_int_equal(sl_store_readings(st, &q, got, 8, &n), SL_OK);
    assert_int_equal(n, count - (skip < count ? 1 : 0));
    for (size_t i = 0; i < count; i++) {
        bool found = false;

        if (i == skip)
            continue;
        for (size_t j = 0; j < n && !found; j++)
            found = strcmp(got[j].sensor_id, readings[i].sensor_id) == 0 &&
                    got[j].timestamp_ms == readings[i].timestamp_ms;
        if (!found)
            fail_msg("reading %s is not stored", readings[i].sensor_id);
    }
}

/* Fills readings[0..count) with small readings of sensors prefix0, ... */
static void make_readings(sl_reading_t *readings, size_t count,
                          const char *prefix)
{
    for (size_t i = 0; i < count; i++) {
        char id[32];

        snprintf(id, sizeof(id), "%s%zu", prefix, i);
        readings[i] =
            ch_reading(id, SL_SENSOR_TEMPERATURE, T0, 20.0 + (double)i);
    }
}

/* A framed commerce event grown to BIG_EVENT_BYTES, as an event with a
 * 1.5 MB description field would be. The caller frees it. */
static uint8_t *big_event(ch_codec_t *codec)
{
    uint8_t *frame = malloc(BIG_EVENT_BYTES);
    sl_event_t ev;
    size_t len = 0;

    assert_non_null(frame);
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.event_id, sizeof(ev.event_id), "evt-big-1");
    snprintf(ev.user_id, sizeof(ev.user_id), "user-1");
    snprintf(ev.session_id, sizeof(ev.session_id), "session-1");
    snprintf(ev.ip_address, sizeof(ev.ip_address), "192.0.2.1");
    ev.event_type = SL_EVENT_PAGE_VIEW;
    ev.device = SL_DEVICE_DESKTOP;
    ev.timestamp_ms = T0;
    assert_int_equal(sl_event_encode(codec->event_encoder, &ev, frame,
                                     BIG_EVENT_BYTES, &len),
                     SL_OK);
    memset(frame + len, 'd', BIG_EVENT_BYTES - len);
    return frame;
}

/*
 * The case: a 1.5 MB commerce event, then three small readings, under the
 * default limit of 1000000 bytes. It runs on librdkafka's mock cluster
 * with the producer's message.max.bytes raised, as on a cluster configured
 * for larger messages than the processor decodes: the in-process bus
 * refuses such a record at publish time.
 */
static void test_oversized_event_default_limit(void **state)
{
    const char *props[] = {"producer.message.max.bytes=4000000"};
    kh_cluster_t cluster;
    sl_bus_t *bus;
    ch_env_t env;
    sl_processor_config_t cfg;
    sl_processor_t *proc;
    sl_reading_t readings[NEIGHBOURS];
    ch_dlq_record_t rec;
    char reason[160];
    sl_processor_stats_t stats;
    uint64_t errors_before = too_large_count();
    uint8_t *frame;
    int64_t offset = -1;

    (void)state;
    ch_kafka_cluster_start(&cluster);
    bus = kh_bus_create(cluster.bootstraps, props, 1);
    ch_env_open(&env);
    frame = big_event(&env.codec);
    assert_int_equal(sl_bus_publish(bus, SL_TOPIC_ECOMMERCE_EVENTS, 0, "user-1",
                                    6, frame, BIG_EVENT_BYTES, NULL, 0, 5000,
                                    &offset),
                     SL_OK);
    make_readings(readings, NEIGHBOURS, "sensor-26");
    for (int i = 0; i < NEIGHBOURS; i++)
        ch_publish_reading(bus, &env.codec, &readings[i], 0);

    ch_processor_config(&cfg, bus, &env.codec, env.location);
    assert_int_equal(cfg.max_payload_bytes, SL_FRAME_MAX_BYTES);
    proc = ch_processor_start(&cfg);
    assert_int_equal(ch_wait_committed(proc, NEIGHBOURS + 1), 0);

    sl_processor_stats(proc, &stats);
    assert_int_equal(stats.stored, NEIGHBOURS);
    assert_int_equal(stats.dead_lettered, 1);
    assert_int_equal(too_large_count(), errors_before + 1);
    check_neighbours(env.st, readings, NEIGHBOURS, NEIGHBOURS);
    assert_int_equal(ch_read_dlq(bus, "dlq-check", &rec, 1), 1);
    too_large_reason(reason, sizeof(reason), BIG_EVENT_BYTES,
                     SL_FRAME_MAX_BYTES);
    check_excerpt(&rec, SL_TOPIC_ECOMMERCE_EVENTS, offset, frame,
                  BIG_EVENT_BYTES, reason);
    assert_string_equal(rec.key, "user-1");

    ch_stages_stop(bus, proc, NULL);
    kh_cluster_stop(&cluster);
    free(frame);
    ch_env_close(&env);
}

/*
 * Under a lower limit, a valid reading over it sits between two small
 * ones in one partition. Had it been decoded it would have been stored:
 * its rejection shows the size is checked first.
 */
static void test_size_checked_before_decode(void **state)
{
    const size_t limit = 150;
    sl_bus_t *bus = ch_memory_bus(1);
    ch_env_t env;
    sl_processor_config_t cfg;
    sl_processor_t *proc;
    sl_reading_t readings[3];
    uint8_t frame[1024];
    size_t len = 0;
    ch_dlq_record_t rec;
    char reason[160];
    int64_t content = -1;

    (void)state;
    ch_env_open(&env);
    make_readings(readings, 3, "sensor-27");
    memset(readings[1].location, 'x', 200);
    readings[1].location[200] = '\0';
    ch_encode_reading(&env.codec, &readings[1], frame, sizeof(frame), &len);
    assert_true(len > limit);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ch_publish_reading(bus, &env.codec, &readings[i], 0),
                         i);

    ch_processor_config(&cfg, bus, &env.codec, env.location);
    cfg.max_payload_bytes = limit;
    proc = ch_processor_start(&cfg);
    assert_int_equal(ch_wait_committed(proc, 3), 0);

    check_neighbours(env.st, readings, 3, 1);
    assert_int_equal(ch_read_dlq(bus, "dlq-check", &rec, 1), 1);
    too_large_reason(reason, sizeof(reason), len, limit);
    /* On the in-process bus the position is the whole record's content
     * offset, not its offset 1. */
    assert_int_equal(
        sl_dlq_content_offset("sensor-271", 10, frame, len, &content), SL_OK);
    check_excerpt(&rec, SL_TOPIC_SENSOR_READINGS, content, frame, len, reason);
    assert_string_equal(rec.key, "sensor-271");

    ch_stages_stop(bus, proc, NULL);
    ch_env_close(&env);
}

/*
 * A value under the limit that fails to decode has a dead-letter copy the
 * bus cannot take: with its headers the copy is larger than a partition of
 * the in-process bus may hold. The processor sends an excerpt in its place
 * instead of retrying for ever, and the neighbours are stored.
 */
static void test_dlq_copy_too_large_excerpt(void **state)
{
    const size_t partition_bytes = 100000;
    const size_t value_len = partition_bytes - 20;
    sl_bus_memory_config_t bus_cfg;
    sl_bus_t *bus;
    ch_env_t env;
    sl_processor_config_t cfg;
    sl_processor_t *proc;
    sl_reading_t readings[3];
    uint8_t *value = malloc(value_len);
    const char *expected = "bad_magic_byte; the bus rejected the whole "
                           "value as a dead-letter copy: invalid argument; "
                           "sha256=";
    ch_dlq_record_t rec;
    int64_t content = -1;

    (void)state;
    assert_non_null(value);
    memset(value, 'j', value_len);
    value[0] = 0x01; /* not the Confluent magic byte */
    sl_bus_memory_config_init(&bus_cfg);
    bus_cfg.partitions = 2; /* the big value fills partition 0 alone */
    bus_cfg.partition_max_bytes = partition_bytes;
    bus = sl_bus_memory_create(&bus_cfg);
    assert_non_null(bus);
    ch_env_open(&env);
    make_readings(readings, 3, "sensor-28");
    ch_publish_reading(bus, &env.codec, &readings[0], 1);
    assert_int_equal(sl_bus_publish(bus, SL_TOPIC_SENSOR_READINGS, 0,
                                    "sensor-281", 10, value, value_len, NULL, 0,
                                    5000, NULL),
                     SL_OK);
    ch_publish_reading(bus, &env.codec, &readings[2], 1);

    ch_processor_config(&cfg, bus, &env.codec, env.location);
    proc = ch_processor_start(&cfg);
    assert_int_equal(ch_wait_committed(proc, 3), 0);
    check_neighbours(env.st, readings, 3, 1);

    assert_int_equal(ch_read_dlq(bus, "dlq-check", &rec, 1), 1);
    assert_int_equal(rec.entry.partition, 0);
    assert_int_equal(
        sl_dlq_content_offset("sensor-281", 10, value, value_len, &content),
        SL_OK);
    check_excerpt(&rec, SL_TOPIC_SENSOR_READINGS, content, value, value_len,
                  expected);

    ch_stages_stop(bus, proc, NULL);
    free(value);
    ch_env_close(&env);
}

/*
 * A record whose key alone nearly fills a partition fails to decode. Even
 * an excerpt of its value cannot carry that key into dlq-messages, so the
 * excerpt's key is cut as well, and the neighbour is stored.
 */
static void test_dlq_copy_key_too_large_cut(void **state)
{
    const size_t partition_bytes = 100000;
    const size_t key_len = partition_bytes - 100;
    sl_bus_memory_config_t bus_cfg;
    sl_bus_t *bus;
    ch_env_t env;
    sl_processor_config_t cfg;
    sl_processor_t *proc;
    sl_reading_t neighbour;
    char *key = malloc(key_len);
    const uint8_t value[] = {0x01, 0, 0, 0, 1, 2}; /* bad magic byte */
    const char *expected = "bad_magic_byte; the bus rejected the whole "
                           "value as a dead-letter copy: invalid argument; "
                           "the bus rejected the whole key as a dead-letter "
                           "copy: invalid argument; sha256=";
    ch_dlq_record_t rec;
    int64_t content = -1;

    (void)state;
    assert_non_null(key);
    memset(key, 'k', key_len);
    sl_bus_memory_config_init(&bus_cfg);
    bus_cfg.partitions = 2; /* the big key fills partition 0 alone */
    bus_cfg.partition_max_bytes = partition_bytes;
    bus = sl_bus_memory_create(&bus_cfg);
    assert_non_null(bus);
    ch_env_open(&env);
    make_readings(&neighbour, 1, "sensor-29");
    assert_int_equal(sl_bus_publish(bus, SL_TOPIC_SENSOR_READINGS, 0, key,
                                    key_len, value, sizeof(value), NULL, 0,
                                    5000, NULL),
                     SL_OK);
    ch_publish_reading(bus, &env.codec, &neighbour, 1);

    ch_processor_config(&cfg, bus, &env.codec, env.location);
    proc = ch_processor_start(&cfg);
    assert_int_equal(ch_wait_committed(proc, 2), 0);
    check_neighbours(env.st, &neighbour, 1, 1);

    assert_int_equal(ch_read_dlq(bus, "dlq-check", &rec, 1), 1);
    assert_int_equal(rec.key_len, SL_DLQ_EXCERPT_BYTES);
    /* The copy that the bus took names the record by the cut key. */
    assert_int_equal(sl_dlq_content_offset(key, SL_DLQ_EXCERPT_BYTES, value,
                                           sizeof(value), &content),
                     SL_OK);
    check_excerpt(&rec, SL_TOPIC_SENSOR_READINGS, content, value, sizeof(value),
                  expected);

    ch_stages_stop(bus, proc, NULL);
    free(key);
    ch_env_close(&env);
}

/* The setting travels from flag to processor, and the processor rejects a
 * value outside 1..SL_FRAME_MAX_BYTES at start with a message. */
static void test_max_payload_setting(void **state)
{
    char *argv[] = {"--max-payload-bytes", "4096"};
    sl_config_t config;
    sl_processor_config_t cfg;
    char err[256] = "";
    const size_t invalid[] = {0, SL_FRAME_MAX_BYTES + 1};

    (void)state;
    /* The setting's default and bound are the decoder's own limit. */
    sl_config_init(&config);
    assert_int_equal(config.max_payload_bytes, SL_FRAME_MAX_BYTES);
    assert_int_equal(sl_config_load(&config, 2, argv, NULL, err, sizeof(err)),
                     SL_OK);
    sl_role__processor_config(&config, NULL, NULL, &cfg);
    assert_int_equal(cfg.max_payload_bytes, 4096);
    sl_config_fini(&config);

    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        sl_processor_config_init(&cfg);
        cfg.store_location = "/nonexistent/never-opened.db";
        cfg.max_payload_bytes = invalid[i];
        assert_null(sl_processor_start(&cfg, err, sizeof(err)));
        if (strstr(err, "max payload bytes") == NULL)
            fail_msg("error for %zu: %s", invalid[i], err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oversized_event_default_limit),
        cmocka_unit_test(test_size_checked_before_decode),
        cmocka_unit_test(test_dlq_copy_too_large_excerpt),
        cmocka_unit_test(test_dlq_copy_key_too_large_cut),
        cmocka_unit_test(test_max_payload_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
