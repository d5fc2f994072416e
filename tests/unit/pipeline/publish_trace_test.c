/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the publisher's trace context: which records carry a W3C
 * traceparent header on the in-process bus, record by record and batched,
 * with the sample ratio and with a current span on the calling thread.
 * Spans go to a loopback port where nothing listens, so the exporter drops
 * them; these tests read only the headers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bus/bus.h"
#include "obs/trace.h"
#include "pipeline/publish.h"
#include "schema/schema.h"
#include "util/err.h"

#define MAX_MSGS 256
#define MAX_SEEN 64

/* Port 9 (discard) on loopback, where nothing is expected to listen: the
 * export fails and the spans are dropped. */
#define DEAD_ENDPOINT "http://127.0.0.1:9/v1/traces"

typedef struct fixture {
    sl_bus_t *bus;
    sl_registry_t *reg;
    sl_publisher_t *pub;
} fixture_t;

/* The traceparent headers of consumed records: text[i] is "" for a
 * record without one. */
typedef struct seen {
    size_t count;
    char text[MAX_SEEN][SL_TRACEPARENT_LEN + 1];
} seen_t;

static int fixture_setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    sl_bus_memory_config_t cfg;

    assert_non_null(fx);
    sl_bus_memory_config_init(&cfg);
    fx->bus = sl_bus_memory_create(&cfg);
    assert_non_null(fx->bus);
    fx->reg = sl_registry_create();
    assert_non_null(fx->reg);
    fx->pub = sl_publisher_create(fx->bus, fx->reg, 1000);
    assert_non_null(fx->pub);
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture_t *fx = *state;

    sl_publisher_destroy(fx->pub);
    sl_bus_destroy(fx->bus);
    sl_registry_destroy(fx->reg);
    sl_trace_stop();
    free(fx);
    return 0;
}

static void start_tracing(double ratio)
{
    char err[256] = "";

    assert_int_equal(sl_trace_start_endpoint(DEAD_ENDPOINT, "publish-test",
                                             ratio, err, sizeof(err)),
                     SL_OK);
}

static void publish_readings(sl_publisher_t *pub, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sl_reading_t rec;

        memset(&rec, 0, sizeof(rec));
        snprintf(rec.sensor_id, sizeof(rec.sensor_id), "sensor-%zu", i);
        snprintf(rec.location, sizeof(rec.location), "lab");
        rec.sensor_type = SL_SENSOR_TEMPERATURE;
        rec.value = 20.0 + (double)i;
        rec.timestamp_ms = INT64_C(1714557600000) + (int64_t)i;
        rec.battery_level = 80;
        rec.signal_strength = -50;
        assert_int_equal(sl_publish_reading(pub, &rec), SL_OK);
    }
    assert_int_equal(sl_publisher_flush(pub), SL_OK);
}

/* Consumes sensor-readings and records each record's traceparent. */
static void consume_headers(sl_bus_t *bus, seen_t *seen)
{
    static int group_seq;
    const char *topics[] = {SL_TOPIC_SENSOR_READINGS};
    char group[64];
    sl_msg_t msgs[MAX_MSGS];
    sl_consumer_t *con;
    size_t count;

    memset(seen, 0, sizeof(*seen));
    snprintf(group, sizeof(group), "trace-test-%d", ++group_seq);
    con = sl_consumer_create(bus, group, topics, 1);
    assert_non_null(con);
    for (;;) {
        assert_int_equal(sl_consumer_poll(con, msgs, MAX_MSGS, &count, 200),
                         SL_OK);
        if (count == 0)
            break;
        for (size_t i = 0; i < count; i++) {
            const sl_header_t *h =
                sl_msg_header(&msgs[i], SL_TRACEPARENT_HEADER);

            assert_true(seen->count < MAX_SEEN);
            if (h != NULL) {
                assert_int_equal(h->value_len, SL_TRACEPARENT_LEN);
                memcpy(seen->text[seen->count], h->value, h->value_len);
            }
            seen->count++;
        }
    }
    sl_consumer_destroy(con);
}

/* Checks that every record carries a valid, sampled traceparent and that
 * no two records share a span id. OUT: trace_ids, when not NULL, one per
 * record. */
static void check_all_traced(const seen_t *seen, uint8_t (*trace_ids)[16])
{
    uint8_t span_ids[MAX_SEEN][8];

    for (size_t i = 0; i < seen->count; i++) {
        uint8_t trace_id[16];
        bool sampled = false;

        assert_true(sl_traceparent_parse(seen->text[i], trace_id, span_ids[i],
                                         &sampled));
        assert_true(sampled);
        if (trace_ids != NULL)
            memcpy(trace_ids[i], trace_id, 16);
        for (size_t k = 0; k < i; k++)
            assert_memory_not_equal(span_ids[k], span_ids[i], 8);
    }
}

static void ratio_one_direct_records(void **state)
{
    fixture_t *fx = *state;
    uint8_t trace_ids[MAX_SEEN][16];
    seen_t seen;

    start_tracing(1.0);
    publish_readings(fx->pub, 3);
    consume_headers(fx->bus, &seen);
    assert_int_equal(seen.count, 3);
    check_all_traced(&seen, trace_ids);
    /* Without a current span each record is the root of its own trace. */
    assert_memory_not_equal(trace_ids[0], trace_ids[1], 16);
    assert_memory_not_equal(trace_ids[1], trace_ids[2], 16);
}

/* More records than one batch, and more encoded bytes than the
 * publisher's first arena, so traceparents survive its growth. */
static void ratio_one_batched_records(void **state)
{
    fixture_t *fx = *state;
    seen_t seen;

    start_tracing(1.0);
    assert_int_equal(sl_publisher_set_batch(fx->pub, 20), SL_OK);
    publish_readings(fx->pub, 45);
    consume_headers(fx->bus, &seen);
    assert_int_equal(seen.count, 45);
    check_all_traced(&seen, NULL);
}

static void ratio_zero_no_header(void **state)
{
    fixture_t *fx = *state;
    seen_t seen;

    start_tracing(0.0);
    publish_readings(fx->pub, 2);
    assert_int_equal(sl_publisher_set_batch(fx->pub, 10), SL_OK);
    publish_readings(fx->pub, 2);
    consume_headers(fx->bus, &seen);
    assert_int_equal(seen.count, 4);
    for (size_t i = 0; i < seen.count; i++)
        assert_string_equal(seen.text[i], "");
}

static void tracing_off_no_header(void **state)
{
    fixture_t *fx = *state;
    seen_t seen;

    publish_readings(fx->pub, 2);
    consume_headers(fx->bus, &seen);
    assert_int_equal(seen.count, 2);
    assert_string_equal(seen.text[0], "");
    assert_string_equal(seen.text[1], "");
}

/* A sampled current span (an HTTP request's) makes the records its
 * children even with ratio 0; an unsampled one keeps them untraced. */
static void current_span_is_parent(void **state)
{
    static const char sampled[] =
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    static const char unsampled[] =
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    fixture_t *fx = *state;
    uint8_t trace_ids[MAX_SEEN][16];
    sl_span_t request;
    seen_t seen;

    start_tracing(0.0);
    assert_true(sl_span_begin(&request, "HTTP", SL_SPAN_SERVER, sampled));
    sl_trace_set_current(&request);
    assert_int_equal(sl_publisher_set_batch(fx->pub, 10), SL_OK);
    publish_readings(fx->pub, 2);
    assert_int_equal(sl_publisher_set_batch(fx->pub, 0), SL_OK);
    publish_readings(fx->pub, 1);
    sl_trace_set_current(NULL);
    sl_span_end(&request);

    assert_false(sl_span_begin(&request, "HTTP", SL_SPAN_SERVER, unsampled));
    sl_trace_set_current(&request);
    publish_readings(fx->pub, 1);
    sl_trace_set_current(NULL);

    /* Partitions are read in turn, not in publication order: move the
     * one record without a header to the end. */
    consume_headers(fx->bus, &seen);
    assert_int_equal(seen.count, 4);
    for (size_t i = 0; i < 3; i++) {
        if (seen.text[i][0] == '\0') {
            memcpy(seen.text[i], seen.text[3], sizeof(seen.text[i]));
            seen.text[3][0] = '\0';
        }
    }
    assert_string_equal(seen.text[3], "");
    seen.count = 3;
    check_all_traced(&seen, trace_ids);
    for (size_t i = 0; i < seen.count; i++)
        assert_memory_equal(trace_ids[i], request.trace_id, 16);
}

static void sampled_parent_from_header(void **state)
{
    static const char sampled[] =
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    char out[SL_TRACEPARENT_LEN + 1];

    (void)state;
    assert_false(sl_trace_sampled_parent(sampled, strlen(sampled), out));
    start_tracing(0.0);
    assert_true(sl_trace_sampled_parent(sampled, strlen(sampled), out));
    assert_string_equal(out, sampled);
    assert_false(sl_trace_sampled_parent(sampled, strlen(sampled) - 1, out));
    assert_false(sl_trace_sampled_parent(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        SL_TRACEPARENT_LEN, out));
    assert_false(sl_trace_sampled_parent(
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        SL_TRACEPARENT_LEN, out));
    assert_false(sl_trace_sampled_parent(NULL, 0, out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ratio_one_direct_records, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(ratio_one_batched_records,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(ratio_zero_no_header, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(tracing_off_no_header, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(current_span_is_parent, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(sampled_parent_from_header,
                                        fixture_setup, fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
