/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Publisher, replay driver and generator loop on a real in-process bus:
 * readings are keyed by sensor_id and events by user_id, framed with the
 * registered schema ids, and decode back to what went in.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bus/bus.h"
#include "model/validate.h"
#include "pipeline/generator.h"
#include "pipeline/publish.h"
#include "pipeline/replay.h"
#include "schema/schema.h"
#include "test_files.h"
#include "util/err.h"
#include "util/timeutil.h"

#define MAX_MSGS 256

/* A bus, a registry and a publisher on them. */
typedef struct fixture {
    sl_bus_t *bus;
    sl_registry_t *reg;
    sl_publisher_t *pub;
} fixture_t;

static int group_setup(void **state)
{
    (void)state;
    test_dir_create();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    test_dir_remove();
    return 0;
}

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
    free(fx);
    return 0;
}

/* Returns a decoder for one of the built-in schemas. */
static sl_decoder_t *decoder_for(sl_registry_t *reg, const char *file_name)
{
    const char *json = sl_schema_builtin(file_name);
    avro_schema_t reader;
    sl_decoder_t *dec;

    assert_non_null(json);
    assert_int_equal(avro_schema_from_json_length(json, strlen(json), &reader),
                     0);
    dec = sl_decoder_create(reg, reader);
    avro_schema_decref(reader);
    assert_non_null(dec);
    return dec;
}

/* Calls fn on every record of topic, in partition order, and returns the
 * count. The consumer's group is unique per call. */
typedef void (*msg_fn)(const sl_msg_t *msg, void *arg);

static size_t consume_all(sl_bus_t *bus, const char *topic, msg_fn fn,
                          void *arg)
{
    static int group_seq;
    const char *topics[] = {topic};
    char group[64];
    sl_msg_t msgs[MAX_MSGS];
    sl_consumer_t *con;
    size_t total = 0, count;

    snprintf(group, sizeof(group), "test-%d", ++group_seq);
    con = sl_consumer_create(bus, group, topics, 1);
    assert_non_null(con);
    for (;;) {
        assert_int_equal(sl_consumer_poll(con, msgs, MAX_MSGS, &count, 200),
                         SL_OK);
        if (count == 0)
            break;
        for (size_t i = 0; i < count; i++)
            fn(&msgs[i], arg);
        total += count;
    }
    sl_consumer_destroy(con);
    return total;
}

static sl_reading_t sample_reading(void)
{
    sl_reading_t rec;

    memset(&rec, 0, sizeof(rec));
    snprintf(rec.sensor_id, sizeof(rec.sensor_id), "sensor-pressure-004");
    snprintf(rec.location, sizeof(rec.location), "building-b/floor-3");
    snprintf(rec.unit, sizeof(rec.unit), "hPa");
    rec.has_unit = true;
    rec.sensor_type = SL_SENSOR_PRESSURE;
    rec.value = 1012.625;
    rec.timestamp_ms = INT64_C(1714557600123);
    rec.battery_level = 77;
    rec.signal_strength = -63;
    return rec;
}

static void schemas_registered_under_subjects(void **state)
{
    fixture_t *fx = *state;
    sl_publisher_t *second;

    assert_int_equal(sl_registry_latest_id(fx->reg, "sensor-readings-value"),
                     sl_publisher_reading_schema_id(fx->pub));
    assert_int_equal(sl_registry_latest_id(fx->reg, "ecommerce-events-value"),
                     sl_publisher_event_schema_id(fx->pub));
    assert_int_not_equal(sl_publisher_reading_schema_id(fx->pub),
                         sl_publisher_event_schema_id(fx->pub));

    /* Registering the same schemas again keeps their ids. */
    second = sl_publisher_create(fx->bus, fx->reg, 1000);
    assert_non_null(second);
    assert_int_equal(sl_publisher_reading_schema_id(second),
                     sl_publisher_reading_schema_id(fx->pub));
    assert_int_equal(sl_publisher_event_schema_id(second),
                     sl_publisher_event_schema_id(fx->pub));
    sl_publisher_destroy(second);
}

typedef struct reading_check {
    sl_decoder_t *dec;
    int32_t schema_id;
    const sl_reading_t *expected;
    int matched;
} reading_check_t;

static void check_reading_msg(const sl_msg_t *msg, void *arg)
{
    reading_check_t *rc = arg;
    sl_reading_t got;
    int32_t id = -1;
    const uint8_t *body;
    size_t body_len;

    assert_int_equal(
        sl_frame_parse(msg->value, msg->value_len, &id, &body, &body_len),
        SL_DECODE_OK);
    assert_int_equal(id, rc->schema_id);
    assert_int_equal(
        sl_reading_decode(rc->dec, msg->value, msg->value_len, &got),
        SL_DECODE_OK);
    assert_int_equal(msg->key_len, strlen(got.sensor_id));
    assert_memory_equal(msg->key, got.sensor_id, msg->key_len);
    assert_string_equal(got.sensor_id, rc->expected->sensor_id);
    assert_string_equal(got.location, rc->expected->location);
    assert_int_equal(got.sensor_type, rc->expected->sensor_type);
    assert_true(got.value == rc->expected->value);
    assert_int_equal(got.timestamp_ms, rc->expected->timestamp_ms);
    assert_int_equal(got.battery_level, rc->expected->battery_level);
    assert_int_equal(got.signal_strength, rc->expected->signal_strength);
    assert_true(got.has_unit);
    assert_string_equal(got.unit, rc->expected->unit);
    assert_false(got.anomaly);
    rc->matched++;
}

static void reading_round_trip(void **state)
{
    fixture_t *fx = *state;
    sl_reading_t rec = sample_reading();
    reading_check_t rc = {0};

    assert_int_equal(sl_publish_reading(fx->pub, &rec), SL_OK);
    rc.dec = decoder_for(fx->reg, "sensor_reading.avsc");
    rc.schema_id = sl_publisher_reading_schema_id(fx->pub);
    rc.expected = &rec;
    assert_int_equal(
        consume_all(fx->bus, SL_TOPIC_SENSOR_READINGS, check_reading_msg, &rc),
        1);
    assert_int_equal(rc.matched, 1);
    sl_decoder_destroy(rc.dec);
}

typedef struct event_check {
    sl_decoder_t *dec;
    const sl_event_t *expected;
    int matched;
} event_check_t;

static void check_event_msg(const sl_msg_t *msg, void *arg)
{
    event_check_t *ec = arg;
    const sl_event_t *want = ec->expected;
    sl_event_t got;

    assert_int_equal(sl_event_decode(ec->dec, msg->value, msg->value_len, &got),
                     SL_DECODE_OK);
    assert_int_equal(msg->key_len, strlen(want->user_id));
    assert_memory_equal(msg->key, want->user_id, msg->key_len);
    assert_string_equal(got.event_id, want->event_id);
    assert_string_equal(got.session_id, want->session_id);
    assert_string_equal(got.ip_address, want->ip_address);
    assert_int_equal(got.event_type, want->event_type);
    assert_int_equal(got.device, want->device);
    assert_int_equal(got.timestamp_ms, want->timestamp_ms);
    assert_int_equal(got.present, want->present);
    assert_int_equal(got.product_id, want->product_id);
    assert_string_equal(got.product_name, want->product_name);
    assert_int_equal(got.quantity, want->quantity);
    assert_true(got.price == want->price);
    assert_true(got.total == want->total);
    assert_string_equal(got.currency, want->currency);
    ec->matched++;
}

static void event_round_trip(void **state)
{
    fixture_t *fx = *state;
    sl_generator_config_t cfg;
    sl_sensor_sim_t *sim;
    sl_event_t ev;
    event_check_t ec = {0};

    /* The first purchase of a simulated shopper carries most fields. */
    sl_generator_config_init(&cfg);
    cfg.users = 3;
    sim = sl_sensor_sim_create(&cfg);
    assert_non_null(sim);
    do {
        sl_sensor_sim_event(sim, sl_time_now_ms(), &ev);
    } while (ev.event_type != SL_EVENT_PURCHASE);
    sl_sensor_sim_destroy(sim);

    assert_int_equal(sl_publish_event(fx->pub, &ev), SL_OK);
    ec.dec = decoder_for(fx->reg, "ecommerce_event.avsc");
    ec.expected = &ev;
    assert_int_equal(
        consume_all(fx->bus, SL_TOPIC_ECOMMERCE_EVENTS, check_event_msg, &ec),
        1);
    assert_int_equal(ec.matched, 1);
    sl_decoder_destroy(ec.dec);
}

static void copy_msg(const sl_msg_t *msg, void *arg)
{
    sl_msg_t *out = arg;

    assert_int_equal(msg->value_len, 3);
    assert_memory_equal(msg->value, "\x01\x00\x02", 3);
    assert_int_equal(msg->key_len, 1);
    assert_memory_equal(msg->key, "k", 1);
    out->value_len = msg->value_len;
}

static void frame_published_unchanged(void **state)
{
    fixture_t *fx = *state;
    sl_msg_t seen = {0};

    assert_int_equal(
        sl_publish_frame(fx->pub, "capture", "k", 1, "\x01\x00\x02", 3), SL_OK);
    assert_int_equal(consume_all(fx->bus, "capture", copy_msg, &seen), 1);
    assert_int_equal(seen.value_len, 3);
    assert_int_equal(sl_publish_frame(fx->pub, "", "k", 1, "x", 1), SL_EINVAL);
}

static void count_msg(const sl_msg_t *msg, void *arg)
{
    (void)msg;
    (*(int *)arg)++;
}

static void replay_run_publishes_file(void **state)
{
    fixture_t *fx = *state;
    const char *path = test_file_text("run.csv", "timestamp,value\n"
                                                 "2024-05-01 00:00:00,1\n"
                                                 "2024-05-01 00:00:01,2\n"
                                                 "broken\n"
                                                 "2024-05-01 00:00:02,3\n");
    sl_replay_options_t opt;
    sl_replay_stats_t st;
    int seen = 0;
    int64_t start;

    sl_replay_options_init(&opt);
    opt.sensor_type = SL_SENSOR_TEMPERATURE;
    /* 100x recorded pace: 2 s of data take about 20 ms. */
    opt.speed = 100;
    start = sl_time_mono_ms();
    assert_int_equal(sl_replay_run(path, &opt, fx->pub, NULL, &st), SL_OK);
    assert_true(sl_time_mono_ms() - start >= 19);
    assert_int_equal(st.published, 3);
    assert_int_equal(st.malformed, 1);
    assert_int_equal(st.failed, 0);
    assert_int_equal(
        consume_all(fx->bus, SL_TOPIC_SENSOR_READINGS, count_msg, &seen), 3);

    /* A missing file is the open error. */
    assert_int_equal(
        sl_replay_run("/nonexistent/x.csv", &opt, fx->pub, NULL, &st),
        SL_ENOTFOUND);
}

static void replay_run_honours_stop(void **state)
{
    fixture_t *fx = *state;
    const char *path = test_file_text("slow.csv", "timestamp,value\n"
                                                  "2024-05-01 00:00:00,1\n"
                                                  "2024-05-01 01:00:00,2\n");
    volatile int stop = 1;
    sl_replay_options_t opt;
    sl_replay_stats_t st;

    sl_replay_options_init(&opt);
    opt.speed = 1;
    assert_int_equal(sl_replay_run(path, &opt, fx->pub, &stop, &st), SL_OK);
    assert_int_equal(st.published, 0);
}

typedef struct run_args {
    sl_generator_config_t cfg;
    sl_publisher_t *pub;
    volatile int stop;
    int rc;
} run_args_t;

static void *generator_thread(void *arg)
{
    run_args_t *ra = arg;

    ra->rc = sl_generator_run(&ra->cfg, ra->pub, &ra->stop);
    return NULL;
}

typedef struct fleet_check {
    sl_decoder_t *dec;
    int readings;
    int invalid;
} fleet_check_t;

static void check_fleet_msg(const sl_msg_t *msg, void *arg)
{
    fleet_check_t *fc = arg;
    sl_reading_t got;

    assert_int_equal(
        sl_reading_decode(fc->dec, msg->value, msg->value_len, &got),
        SL_DECODE_OK);
    assert_memory_equal(msg->key, got.sensor_id, msg->key_len);
    if (sl_reading_validate(&got, sl_time_now_ms()) != NULL)
        fc->invalid++;
    fc->readings++;
}

static void generator_run_publishes_schedule(void **state)
{
    fixture_t *fx = *state;
    run_args_t ra = {0};
    fleet_check_t fc = {0};
    pthread_t thread;
    int events = 0;

    sl_generator_config_init(&ra.cfg);
    ra.cfg.rate = 500; /* readings/s */
    ra.cfg.event_interval_s = 0.1;
    ra.pub = fx->pub;
    assert_int_equal(pthread_create(&thread, NULL, generator_thread, &ra), 0);
    sl_time_sleep_ms(1000);
    ra.stop = 1;
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(ra.rc, SL_OK);

    fc.dec = decoder_for(fx->reg, "sensor_reading.avsc");
    consume_all(fx->bus, SL_TOPIC_SENSOR_READINGS, check_fleet_msg, &fc);
    sl_decoder_destroy(fc.dec);
    consume_all(fx->bus, SL_TOPIC_ECOMMERCE_EVENTS, count_msg, &events);
    /* One second at 500/s and 10/s, with slack for a loaded machine. */
    assert_in_range(fc.readings, 300, 520);
    assert_int_equal(fc.invalid, 0);
    assert_in_range(events, 6, 11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(schemas_registered_under_subjects,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(reading_round_trip, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(event_round_trip, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(frame_published_unchanged,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(replay_run_publishes_file,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(replay_run_honours_stop, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(generator_run_publishes_schedule,
                                        fixture_setup, fixture_teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
