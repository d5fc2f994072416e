/* SPDX-License-Identifier: Apache-2.0 */
/*
 * WebSocket hub tests without sockets: control messages and their replies,
 * query-string filters, and the client queues (overflow, the "dropped"
 * message, the stall limit, the client cap), fed through sl_ws__publish()
 * as the hub's consumer thread feeds them. The last tests run that
 * consumer thread on an in-process bus.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/hub_int.h"
#include "bus/bus.h"
#include "model/record.h"
#include "obs/metrics.h"
#include "pipeline/publish.h"
#include "schema/schema.h"
#include "util/err.h"
#include "util/timeutil.h"

/* Runs one control message; returns the parsed reply. */
static json_t *control(sl_ws_filter_t *f, sl_ws_stream_t stream,
                       const char *text)
{
    char *reply = NULL;
    json_t *obj;

    assert_int_equal(sl_ws__control(f, stream, text, strlen(text), &reply),
                     SL_OK);
    obj = json_loads(reply, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(obj);
    free(reply);
    return obj;
}

static const char *reply_type(json_t *reply)
{
    return json_string_value(json_object_get(reply, "type"));
}

/* A reading frame of sensor id and type, with payload "{"n":n}". */
static sl_ws_frame_t *reading(const char *id, sl_sensor_type_t type, int n)
{
    char json[64];
    sl_ws_frame_t *fr;

    snprintf(json, sizeof(json), "{\"n\":%d}", n);
    fr = sl_ws__frame_create(SL_WS_SENSORS, json, strlen(json), id, NULL);
    assert_non_null(fr);
    fr->sensor_type = (int)type;
    return fr;
}

/* Parses the text frames in buf[0..len) into their payload numbers "n",
 * or -(count) for a "dropped" message. Returns how many were found. */
static size_t frames_of(const unsigned char *buf, size_t len, long *out,
                        size_t max)
{
    size_t pos = 0, n = 0;

    while (pos < len && n < max) {
        size_t plen = buf[pos + 1];
        json_t *obj;

        assert_int_equal(buf[pos], 0x81);
        assert_true(plen < 126);
        obj = json_loadb((const char *)buf + pos + 2, plen, 0, NULL);
        assert_non_null(obj);
        if (json_object_get(obj, "n") != NULL)
            out[n++] = (long)json_integer_value(json_object_get(obj, "n"));
        else
            out[n++] = -(long)json_integer_value(json_object_get(obj, "count"));
        json_decref(obj);
        pos += 2 + plen;
    }
    assert_int_equal(pos, len);
    return n;
}

static sl_ws_hub_t *hub_new(int max_clients, int queue, int stall_ms)
{
    sl_ws_hub_config_t cfg;
    char err[256];
    sl_ws_hub_t *hub;

    sl_ws_hub_config_init(&cfg);
    cfg.max_clients = max_clients;
    cfg.queue_messages = queue;
    cfg.stall_ms = stall_ms;
    hub = sl_ws__hub_create(&cfg, err, sizeof(err));
    assert_non_null(hub);
    return hub;
}

static void test_set_filter_ack(void **state)
{
    sl_ws_filter_t f;
    json_t *r, *filter;

    (void)state;
    sl_ws__filter_init(&f);
    r = control(&f, SL_WS_SENSORS,
                "{\"action\":\"set_filter\",\"id\":3,"
                "\"sensor_id\":[\"a\",\"b\"],\"sensor_type\":\"humidity\"}");
    assert_string_equal(reply_type(r), "ack");
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 3);
    filter = json_object_get(r, "filter");
    assert_int_equal(json_array_size(json_object_get(filter, "sensor_id")), 2);
    assert_true(json_is_null(json_object_get(filter, "location")));
    json_decref(r);

    sl_ws_frame_t *hit = reading("b", SL_SENSOR_HUMIDITY, 1);
    sl_ws_frame_t *other_id = reading("c", SL_SENSOR_HUMIDITY, 2);
    sl_ws_frame_t *other_type = reading("a", SL_SENSOR_PRESSURE, 3);
    assert_true(sl_ws__filter_match(&f, hit));
    assert_false(sl_ws__filter_match(&f, other_id));
    assert_false(sl_ws__filter_match(&f, other_type));
    free(hit);
    free(other_id);
    free(other_type);
}

static void test_bad_control_changes_nothing(void **state)
{
    static const char *const bad[] = {
        "not json",
        "[1]",
        "{\"sensor_id\":\"a\"}",
        "{\"action\":\"fly\"}",
        "{\"action\":\"subscribe\",\"colour\":\"red\"}",
        "{\"action\":\"subscribe\",\"sensor_type\":\"plasma\"}",
        "{\"action\":\"subscribe\",\"sensor_id\":7}",
        "{\"action\":\"subscribe\",\"sensor_id\":[\"a\",\"\"]}",
        "{\"action\":\"subscribe\",\"sensor_id\":\"a\\u0000b\"}",
        "{\"action\":\"subscribe\",\"severity\":\"critical\"}",
        "{\"action\":\"unsubscribe\",\"sensor_id\":\"zz\"}",
        "{\"action\":\"get_filter\",\"sensor_id\":\"a\"}",
        "{\"action\":\"subscribe\",\"id\":{}}",
        "{\"action\":\"subscribe\",\"action\":\"unsubscribe\"}",
    };
    sl_ws_filter_t f, before;

    (void)state;
    sl_ws__filter_init(&f);
    json_decref(control(&f, SL_WS_SENSORS,
                        "{\"action\":\"subscribe\",\"sensor_id\":\"a\"}"));
    before = f;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *r = control(&f, SL_WS_SENSORS, bad[i]);

        assert_string_equal(reply_type(r), "error");
        assert_true(strlen(json_string_value(json_object_get(r, "error"))) > 0);
        assert_memory_equal(&f, &before, sizeof(f));
        json_decref(r);
    }
}

static void test_subscribe_unsubscribe_pause(void **state)
{
    sl_ws_filter_t f;
    sl_ws_frame_t *fr = reading("a", SL_SENSOR_TEMPERATURE, 1);
    json_t *r;

    (void)state;
    sl_ws__filter_init(&f);
    json_decref(
        control(&f, SL_WS_SENSORS,
                "{\"action\":\"subscribe\",\"sensor_id\":[\"a\",\"b\"]}"));
    assert_true(sl_ws__filter_match(&f, fr));
    json_decref(control(&f, SL_WS_SENSORS,
                        "{\"action\":\"unsubscribe\",\"sensor_id\":\"a\"}"));
    assert_false(sl_ws__filter_match(&f, fr));
    json_decref(control(&f, SL_WS_SENSORS, "{\"action\":\"set_filter\"}"));
    assert_true(sl_ws__filter_match(&f, fr));

    r = control(&f, SL_WS_SENSORS, "{\"action\":\"unsubscribe\"}");
    assert_string_equal(reply_type(r), "ack");
    assert_true(
        json_is_true(json_object_get(json_object_get(r, "filter"), "paused")));
    json_decref(r);
    assert_false(sl_ws__filter_match(&f, fr));
    json_decref(control(&f, SL_WS_SENSORS, "{\"action\":\"subscribe\"}"));
    assert_true(sl_ws__filter_match(&f, fr));
    free(fr);
}

static void test_query_params(void **state)
{
    sl_ws_filter_t f;
    char err[256];
    sl_ws_frame_t *fr = reading("x", SL_SENSOR_PRESSURE, 1);

    (void)state;
    sl_ws__filter_init(&f);
    assert_int_equal(sl_ws__filter_param(&f, SL_WS_SENSORS, "sensor_type",
                                         "temperature,pressure", err,
                                         sizeof(err)),
                     SL_OK);
    assert_true(sl_ws__filter_match(&f, fr));
    assert_int_equal(sl_ws__filter_param(&f, SL_WS_SENSORS, "severity",
                                         "critical", err, sizeof(err)),
                     SL_EINVAL);
    assert_non_null(strstr(err, "severity: unknown parameter"));
    assert_int_equal(sl_ws__filter_param(&f, SL_WS_ALERTS, "severity", "loud",
                                         err, sizeof(err)),
                     SL_EINVAL);
    assert_non_null(strstr(err, "info, warning, critical"));
    free(fr);
}

static void test_queue_overflow_reports_dropped(void **state)
{
    sl_ws_hub_t *hub = hub_new(4, 16, 60000);
    sl_ws_filter_t f;
    sl_ws_client_t *c;
    sl_ws_frame_t *frames[20];
    unsigned char out[8192];
    long got[32];
    bool more = true;
    size_t len, n;
    int rc;

    (void)state;
    sl_ws__filter_init(&f);
    c = sl_ws__join(hub, SL_WS_SENSORS, &f, NULL, &rc);
    assert_non_null(c);
    for (int i = 0; i < 20; i++)
        frames[i] = reading("a", SL_SENSOR_TEMPERATURE, i);
    sl_ws__publish(hub, frames, 20, 1000);

    len = sl_ws__drain(hub, c, out, sizeof(out), &more);
    assert_false(more);
    n = frames_of(out, len, got, 32);
    /* The oldest four went: the client first gets their count, then the
     * sixteen newest in order. */
    assert_int_equal(n, 17);
    assert_int_equal(got[0], -4);
    for (int i = 0; i < 16; i++)
        assert_int_equal(got[1 + i], 4 + i);

    /* Nothing is lost once it keeps up. */
    frames[0] = reading("a", SL_SENSOR_TEMPERATURE, 99);
    sl_ws__publish(hub, frames, 1, 1001);
    len = sl_ws__drain(hub, c, out, sizeof(out), &more);
    assert_int_equal(frames_of(out, len, got, 32), 1);
    assert_int_equal(got[0], 99);
    sl_ws__leave(hub, c);
    sl_ws_hub_stop(hub);
}

static void test_drain_writes_whole_frames(void **state)
{
    sl_ws_hub_t *hub = hub_new(4, 64, 60000);
    sl_ws_filter_t f;
    sl_ws_client_t *c;
    sl_ws_frame_t *frames[10];
    unsigned char out[40];
    long got[4];
    bool more = false;
    size_t len;
    int rc;

    (void)state;
    sl_ws__filter_init(&f);
    c = sl_ws__join(hub, SL_WS_SENSORS, &f, NULL, &rc);
    for (int i = 0; i < 10; i++)
        frames[i] = reading("a", SL_SENSOR_TEMPERATURE, i);
    sl_ws__publish(hub, frames, 10, 1000);
    /* Each frame is 2 + 7 bytes ({"n":0}), so 40 bytes hold four. */
    len = sl_ws__drain(hub, c, out, sizeof(out), &more);
    assert_int_equal(len, 36);
    assert_true(more);
    assert_int_equal(frames_of(out, len, got, 4), 4);
    assert_int_equal(got[3], 3);
    sl_ws__leave(hub, c); /* frees the six still queued */
    sl_ws_hub_stop(hub);
}

static void test_stalled_client_marked_for_close(void **state)
{
    sl_ws_hub_t *hub = hub_new(4, 16, 500);
    sl_ws_filter_t f;
    sl_ws_client_t *c, *wake[4];
    size_t n;
    int rc;

    (void)state;
    sl_ws__filter_init(&f);
    c = sl_ws__join(hub, SL_WS_SENSORS, &f, NULL, &rc);
    for (int64_t t = 0; t <= 1000; t += 100) {
        sl_ws_frame_t *frames[4];

        for (int i = 0; i < 4; i++)
            frames[i] = reading("a", SL_SENSOR_TEMPERATURE, i);
        sl_ws__publish(hub, frames, 4, 10000 + t);
    }
    assert_int_equal(c->close, SL_WS_CLOSE_SLOW);
    sl_ws__pending(hub, wake, 4, &n);
    assert_int_equal(n, 1);
    assert_ptr_equal(wake[0], c);
    sl_ws__pending(hub, wake, 4, &n);
    assert_int_equal(n, 0);
    sl_ws__leave(hub, c);
    sl_ws_hub_stop(hub);
}

static void test_filters_and_cap(void **state)
{
    sl_ws_hub_t *hub = hub_new(2, 16, 60000);
    sl_ws_filter_t any, humid;
    sl_ws_client_t *a, *b;
    sl_ws_frame_t *frames[2];
    unsigned char out[1024];
    long got[8];
    bool more;
    char err[128];
    int rc;

    (void)state;
    sl_ws__filter_init(&any);
    sl_ws__filter_init(&humid);
    assert_int_equal(sl_ws__filter_param(&humid, SL_WS_SENSORS, "sensor_type",
                                         "humidity", err, sizeof(err)),
                     SL_OK);
    a = sl_ws__join(hub, SL_WS_SENSORS, &any, NULL, &rc);
    b = sl_ws__join(hub, SL_WS_SENSORS, &humid, NULL, &rc);
    assert_null(sl_ws__join(hub, SL_WS_ALERTS, &any, NULL, &rc));
    assert_int_equal(rc, SL_EFULL);

    frames[0] = reading("t", SL_SENSOR_TEMPERATURE, 1);
    frames[1] = reading("h", SL_SENSOR_HUMIDITY, 2);
    sl_ws__publish(hub, frames, 2, 1000);
    assert_int_equal(
        frames_of(out, sl_ws__drain(hub, a, out, sizeof(out), &more), got, 8),
        2);
    assert_int_equal(
        frames_of(out, sl_ws__drain(hub, b, out, sizeof(out), &more), got, 8),
        1);
    assert_int_equal(got[0], 2);
    sl_ws__leave(hub, a);
    sl_ws__leave(hub, b);
    sl_ws_hub_stop(hub);
}

static void test_new_filter_purges_queue(void **state)
{
    sl_ws_hub_t *hub = hub_new(2, 16, 60000);
    sl_ws_filter_t f;
    sl_ws_client_t *c;
    sl_ws_frame_t *frames[4];
    unsigned char out[1024];
    long got[8];
    bool more;
    char err[128];
    int rc;

    (void)state;
    sl_ws__filter_init(&f);
    c = sl_ws__join(hub, SL_WS_SENSORS, &f, NULL, &rc);
    for (int i = 0; i < 4; i++)
        frames[i] =
            reading("s", i % 2 ? SL_SENSOR_HUMIDITY : SL_SENSOR_TEMPERATURE, i);
    sl_ws__publish(hub, frames, 4, 1000);
    assert_int_equal(sl_ws__filter_param(&f, SL_WS_SENSORS, "sensor_type",
                                         "humidity", err, sizeof(err)),
                     SL_OK);
    sl_ws__set_filter(hub, c, &f);
    assert_int_equal(
        frames_of(out, sl_ws__drain(hub, c, out, sizeof(out), &more), got, 8),
        2);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 3);
    sl_ws__leave(hub, c);
    sl_ws_hub_stop(hub);
}

static void test_frame_headers(void **state)
{
    static const size_t sizes[] = {0, 125, 126, 65535, 65536};
    static char payload[70000];

    (void)state;
    memset(payload, 'x', sizeof(payload));
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t len = sizes[i];
        sl_ws_frame_t *fr =
            sl_ws__frame_create(SL_WS_ALERTS, payload, len, NULL, NULL);
        size_t head = len < 126 ? 2 : len <= 65535 ? 4 : 10;

        assert_non_null(fr);
        assert_int_equal(fr->data[0], 0x81);
        assert_int_equal(fr->len, head + len);
        if (head == 2)
            assert_int_equal(fr->data[1], len);
        else if (head == 4)
            assert_int_equal((fr->data[2] << 8) | fr->data[3], len);
        else
            assert_int_equal(fr->data[1], 127);
        free(fr);
    }
}

/* Fills rec with a valid reading of sensor id at the current time. */
static void reading_of(const char *id, sl_reading_t *rec)
{
    memset(rec, 0, sizeof(*rec));
    snprintf(rec->sensor_id, sizeof(rec->sensor_id), "%s", id);
    snprintf(rec->location, sizeof(rec->location), "building-a/floor-1");
    rec->sensor_type = SL_SENSOR_TEMPERATURE;
    rec->value = 21.5;
    rec->timestamp_ms = sl_time_now_ms();
    rec->battery_level = 80;
    rec->signal_strength = -60;
}

/* Publishes one reading of sensor id at the current time. */
static void publish_reading(sl_publisher_t *pub, const char *id)
{
    sl_reading_t rec;

    reading_of(id, &rec);
    assert_int_equal(sl_publish_reading(pub, &rec), SL_OK);
}

/* The hub's consumer thread on an in-process bus, with one /ws/sensors
 * client that follows the sensor KEPT_ID. */
#define KEPT_ID "sensor-kept"
typedef struct hub_rig {
    sl_bus_t *bus;
    sl_registry_t *reg;
    sl_publisher_t *pub;
    sl_ws_hub_t *hub;
    sl_ws_client_t *client;
} hub_rig_t;

static void rig_start(hub_rig_t *r)
{
    sl_bus_memory_config_t bus_cfg;
    sl_ws_hub_config_t cfg;
    sl_ws_filter_t f;
    char err[256];
    int rc;

    sl_bus_memory_config_init(&bus_cfg);
    r->bus = sl_bus_memory_create(&bus_cfg);
    r->reg = sl_registry_create();
    assert_non_null(r->bus);
    assert_non_null(r->reg);
    r->pub = sl_publisher_create(r->bus, r->reg, 1000);
    assert_non_null(r->pub);

    sl_ws_hub_config_init(&cfg);
    cfg.bus = r->bus;
    cfg.registry = r->reg;
    cfg.commit_offsets = true;
    r->hub = sl_ws_hub_start(&cfg, err, sizeof(err));
    assert_non_null(r->hub);
    sl_ws__filter_init(&f);
    assert_int_equal(sl_ws__filter_param(&f, SL_WS_SENSORS, "sensor_id",
                                         KEPT_ID, err, sizeof(err)),
                     SL_OK);
    r->client = sl_ws__join(r->hub, SL_WS_SENSORS, &f, NULL, &rc);
    assert_non_null(r->client);
    /* The hub skips what the bus accepted before it started. */
    sl_time_sleep_ms(5);
}

static void rig_stop(hub_rig_t *r)
{
    sl_ws__leave(r->hub, r->client);
    sl_bus_close(r->bus);
    sl_ws_hub_stop(r->hub);
    sl_publisher_destroy(r->pub);
    sl_bus_destroy(r->bus);
    sl_registry_destroy(r->reg);
}

/* Returns the hub's count of records skipped for reason. */
static uint64_t skipped(const char *reason)
{
    return sl_counter_value(sl_metrics_counter(
        "sluice_ws_records_skipped_total",
        "Bus records the WebSocket hub sent to no client, by reason",
        (const char *[]){"reason", reason, NULL}));
}

/* Waits up to 10 s until the skip counts grew by no_match and decode. */
static void wait_skipped(uint64_t no_match_before, uint64_t no_match,
                         uint64_t decode_before, uint64_t decode)
{
    int64_t deadline = sl_time_mono_ms() + 10000;

    while ((skipped("no_match") - no_match_before < no_match ||
            skipped("decode") - decode_before < decode) &&
           sl_time_mono_ms() < deadline)
        sl_time_sleep_ms(5);
}

/* Drains the client until want frames arrived or 10 s passed, checking
 * that each is a reading of KEPT_ID. Returns the frames drained. */
static size_t rig_drain(hub_rig_t *r, size_t want)
{
    int64_t deadline = sl_time_mono_ms() + 10000;
    unsigned char buf[8192];
    size_t got = 0;
    bool more;

    while (got < want && sl_time_mono_ms() < deadline) {
        size_t len = sl_ws__drain(r->hub, r->client, buf, sizeof(buf), &more);

        for (size_t pos = 0; pos < len;) {
            size_t plen = buf[pos + 1], head = 2;

            if (plen == 126) {
                plen = ((size_t)buf[pos + 2] << 8) | buf[pos + 3];
                head = 4;
            }
            assert_non_null(memmem(buf + pos + head, plen,
                                   "\"sensor_id\":\"" KEPT_ID "\"",
                                   strlen("\"sensor_id\":\"" KEPT_ID "\"")));
            got++;
            pos += head + plen;
        }
        if (len == 0)
            sl_time_sleep_ms(5);
    }
    return got;
}

/* Records that no client's filter matches are counted as skipped and
 * never rendered, and the matching ones still reach the client. */
static void test_unmatched_records_not_rendered(void **state)
{
    uint64_t before = skipped("no_match");
    hub_rig_t r;

    (void)state;
    rig_start(&r);
    for (int i = 0; i < 30; i++)
        publish_reading(r.pub, i % 3 == 0 ? KEPT_ID : "sensor-other");
    assert_int_equal(sl_publisher_flush(r.pub), SL_OK);

    wait_skipped(before, 20, skipped("decode"), 0);
    assert_int_equal(rig_drain(&r, 10), 10);
    assert_int_equal(skipped("no_match") - before, 20);
    rig_stop(&r);
}

/* Publishes a frame of the built-in reading schema whose body is the
 * sensor_id id and then a truncated varint, so it does not decode. */
static void publish_broken_reading(hub_rig_t *r, const char *id)
{
    int32_t schema_id = sl_publisher_reading_schema_id(r->pub);
    uint8_t frame[64];
    size_t len = strlen(id), n = 0;

    frame[n++] = 0;
    for (int shift = 24; shift >= 0; shift -= 8)
        frame[n++] = (uint8_t)((uint32_t)schema_id >> shift);
    frame[n++] = (uint8_t)(len * 2); /* zigzag of a short length */
    memcpy(frame + n, id, len);
    n += len;
    frame[n++] = 0xff; /* a varint continued past the end */
    assert_int_equal(
        sl_publish_frame(r->pub, SL_TOPIC_SENSOR_READINGS, id, len, frame, n),
        SL_OK);
}

/* Registers the built-in reading schema with its first field moved to
 * the end under a new id. Returns an encoder for it. */
static sl_encoder_t *reordered_encoder(hub_rig_t *r, int32_t id)
{
    json_t *schema =
        json_loads(sl_schema_builtin("sensor_reading.avsc"), 0, NULL);
    json_t *fields = json_object_get(schema, "fields");
    json_t *first = json_incref(json_array_get(fields, 0));
    char err[256] = "";
    char *text;

    assert_string_equal(json_string_value(json_object_get(first, "name")),
                        "sensor_id");
    json_array_remove(fields, 0);
    json_array_append_new(fields, first);
    text = json_dumps(schema, JSON_COMPACT);
    assert_int_equal(sl_registry_add(r->reg, id, "sensor-readings-value", text,
                                     err, sizeof(err)),
                     SL_OK);
    free(text);
    json_decref(schema);
    return sl_encoder_create(sl_registry_lookup(r->reg, id), id);
}

/* Publishes a reading of sensor id encoded with enc. */
static void publish_encoded(hub_rig_t *r, sl_encoder_t *enc, const char *id)
{
    sl_reading_t rec;
    uint8_t frame[1024];
    size_t len = 0;

    reading_of(id, &rec);
    assert_int_equal(sl_reading_encode(enc, &rec, frame, sizeof(frame), &len),
                     SL_OK);
    assert_int_equal(sl_publish_frame(r->pub, SL_TOPIC_SENSOR_READINGS, id,
                                      strlen(id), frame, len),
                     SL_OK);
}

/* A reading of a sensor that no client follows is skipped by the
 * sensor_id at the front of its body, before it is decoded. So a body
 * that does not decode counts as no_match for that sensor, and as a
 * decode failure for a followed one. A writer schema that does not start
 * with sensor_id is decoded in full, and its followed readings arrive. */
static void test_unfollowed_skipped_before_decode(void **state)
{
    uint64_t no_match = skipped("no_match"), decode = skipped("decode");
    sl_encoder_t *reordered;
    hub_rig_t r;

    (void)state;
    rig_start(&r);
    reordered = reordered_encoder(&r, 9001);
    assert_non_null(reordered);

    publish_broken_reading(&r, "sensor-other");
    publish_broken_reading(&r, KEPT_ID);
    publish_encoded(&r, reordered, "sensor-other");
    publish_encoded(&r, reordered, KEPT_ID);
    assert_int_equal(sl_publisher_flush(r.pub), SL_OK);

    assert_int_equal(rig_drain(&r, 1), 1);
    wait_skipped(no_match, 2, decode, 1);
    assert_int_equal(skipped("no_match") - no_match, 2);
    assert_int_equal(skipped("decode") - decode, 1);

    sl_encoder_destroy(reordered);
    rig_stop(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_filter_ack),
        cmocka_unit_test(test_bad_control_changes_nothing),
        cmocka_unit_test(test_subscribe_unsubscribe_pause),
        cmocka_unit_test(test_query_params),
        cmocka_unit_test(test_queue_overflow_reports_dropped),
        cmocka_unit_test(test_drain_writes_whole_frames),
        cmocka_unit_test(test_stalled_client_marked_for_close),
        cmocka_unit_test(test_filters_and_cap),
        cmocka_unit_test(test_new_filter_purges_queue),
        cmocka_unit_test(test_frame_headers),
        cmocka_unit_test(test_unmatched_records_not_rendered),
        cmocka_unit_test(test_unfollowed_skipped_before_decode),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
