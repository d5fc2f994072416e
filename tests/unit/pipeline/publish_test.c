/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Publisher, replay driver and generator loop on a real in-process bus:
 * readings are keyed by sensor_id and events by user_id, framed with the
 * registered schema ids, and decode back to what went in. Batched
 * publishing keeps per-key order and accounts for every record, and a
 * frame too large for the bus leaves only a digest in dlq-messages.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bus/bus.h"
#include "model/validate.h"
#include "pipeline/dlq.h"
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

typedef struct fifo_replay {
    const char *path;
    sl_publisher_t *pub;
    volatile int stop;
    int rc;
    sl_replay_stats_t st;
} fifo_replay_t;

static void *fifo_replay_thread(void *arg)
{
    fifo_replay_t *fr = arg;

    fr->rc = sl_replay_run(fr->path, NULL, fr->pub, &fr->stop, &fr->st);
    return NULL;
}

/* Live input from a FIFO whose writer stays open: what arrived is
 * published without waiting for a full batch or the end of input, and a
 * stop request ends the replay while it waits for more. */
static void replay_live_input_flushed_and_stoppable(void **state)
{
    fixture_t *fx = *state;
    char path[512];
    fifo_replay_t fr = {.path = path, .pub = fx->pub};
    pthread_t thread;
    size_t seen = 0;
    FILE *writer;

    /* Batches as sluice replay does: records wait for 1,000 or a flush. */
    assert_int_equal(sl_publisher_set_batch(fx->pub, 1000), SL_OK);
    snprintf(path, sizeof(path), "%s/live.csv", test_dir_create());
    unlink(path);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(pthread_create(&thread, NULL, fifo_replay_thread, &fr), 0);
    writer = fopen(path, "w"); /* waits for the replay to open it */
    assert_non_null(writer);
    fputs("timestamp,value\n"
          "2024-05-01 00:00:00,1\n"
          "2024-05-01 00:00:05,2\n"
          "2024-05-01 00:00:10,3\n",
          writer);
    fflush(writer);

    for (int64_t deadline = sl_time_mono_ms() + 10000;
         sl_time_mono_ms() < deadline;) {
        seen = consume_all(fx->bus, SL_TOPIC_SENSOR_READINGS, count_msg,
                           &(int){0});
        if (seen == 3)
            break;
    }
    assert_int_equal(seen, 3);

    int64_t stop_at = sl_time_mono_ms();
    fr.stop = 1;
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_true(sl_time_mono_ms() - stop_at < 2000);
    assert_int_equal(fr.rc, SL_OK);
    assert_int_equal(fr.st.published, 3);
    fclose(writer);
    unlink(path);
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
    int64_t start_ms = sl_time_mono_ms();
    assert_int_equal(pthread_create(&thread, NULL, generator_thread, &ra), 0);
    sl_time_sleep_ms(1000);
    ra.stop = 1;
    assert_int_equal(pthread_join(thread, NULL), 0);
    int64_t ran_ms = sl_time_mono_ms() - start_ms;
    assert_int_equal(ra.rc, SL_OK);

    fc.dec = decoder_for(fx->reg, "sensor_reading.avsc");
    consume_all(fx->bus, SL_TOPIC_SENSOR_READINGS, check_fleet_msg, &fc);
    sl_decoder_destroy(fc.dec);
    consume_all(fx->bus, SL_TOPIC_ECOMMERCE_EVENTS, count_msg, &events);
    /* The schedule is 500/s and 10/s over however long the thread really
     * ran (a loaded machine oversleeps): never ahead of it, and at least
     * a share of it. */
    assert_in_range(fc.readings, 300, 500 * ran_ms / 1000 + 20);
    assert_int_equal(fc.invalid, 0);
    assert_in_range(events, 5, 10 * ran_ms / 1000 + 1);
}

/* ---- batching ------------------------------------------------------- */

#define ORDER_SENSORS 5
#define ORDER_READINGS 103 /* not a multiple of the batch size */

typedef struct order_check {
    sl_decoder_t *dec;
    int64_t last_ts[ORDER_SENSORS];
    int seen[ORDER_SENSORS];
    int out_of_order;
} order_check_t;

static void check_order_msg(const sl_msg_t *msg, void *arg)
{
    order_check_t *oc = arg;
    sl_reading_t got;
    int sensor;

    assert_int_equal(
        sl_reading_decode(oc->dec, msg->value, msg->value_len, &got),
        SL_DECODE_OK);
    assert_int_equal(sscanf(got.sensor_id, "order-%d", &sensor), 1);
    assert_in_range(sensor, 0, ORDER_SENSORS - 1);
    if (got.timestamp_ms <= oc->last_ts[sensor])
        oc->out_of_order++;
    oc->last_ts[sensor] = got.timestamp_ms;
    oc->seen[sensor]++;
}

static void batch_keeps_order_per_key(void **state)
{
    fixture_t *fx = *state;
    sl_reading_t rec = sample_reading();
    order_check_t oc = {0};
    sl_publisher_stats_t st;

    assert_int_equal(sl_publisher_set_batch(fx->pub, 10), SL_OK);
    for (int i = 0; i < ORDER_READINGS; i++) {
        snprintf(rec.sensor_id, sizeof(rec.sensor_id), "order-%d",
                 i % ORDER_SENSORS);
        rec.timestamp_ms = INT64_C(1714557600000) + i;
        assert_int_equal(sl_publish_reading(fx->pub, &rec), SL_OK);
    }
    /* 103 records in batches of 10: the last 3 wait for a flush. */
    sl_publisher_stats(fx->pub, &st);
    assert_int_equal(st.queued, 3);
    assert_int_equal(st.published, 100);
    assert_int_equal(sl_publisher_flush(fx->pub), SL_OK);
    sl_publisher_stats(fx->pub, &st);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.published, ORDER_READINGS);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.dead_lettered, 0);

    oc.dec = decoder_for(fx->reg, "sensor_reading.avsc");
    assert_int_equal(
        consume_all(fx->bus, SL_TOPIC_SENSOR_READINGS, check_order_msg, &oc),
        ORDER_READINGS);
    sl_decoder_destroy(oc.dec);
    assert_int_equal(oc.out_of_order, 0);
    for (int s = 0; s < ORDER_SENSORS; s++)
        assert_int_equal(oc.seen[s], ORDER_READINGS / ORDER_SENSORS +
                                         (s < ORDER_READINGS % ORDER_SENSORS));
}

#define REPORT_MAX 16

typedef struct reports {
    size_t count;
    int status[REPORT_MAX];
    uint64_t tag[REPORT_MAX];
} reports_t;

static void collect_report(void *ctx, const sl_publish_report_t *report)
{
    reports_t *r = ctx;

    assert_true(r->count < REPORT_MAX);
    r->status[r->count] = report->status;
    r->tag[r->count] = report->tag;
    r->count++;
}

static void tag_value_check(const sl_msg_t *msg, void *arg)
{
    int *next = arg;

    /* Values are the tags 0, 1, 2, ... of the accepted records. */
    assert_int_equal(msg->value_len, 1);
    assert_int_equal(((const uint8_t *)msg->value)[0], *next);
    (*next)++;
}

/* A bus of one partition that holds 4 records and a publisher that does
 * not wait for room: a batch of 10 gets 4 in and 6 refused as SL_EFULL. */
static void batch_failures_counted(void **state)
{
    sl_bus_memory_config_t cfg;
    sl_registry_t *reg = sl_registry_create();
    sl_publisher_t *pub;
    sl_publisher_stats_t st;
    reports_t reports = {0};
    sl_bus_t *bus;
    int next = 0;

    (void)state;
    sl_bus_memory_config_init(&cfg);
    cfg.partitions = 1;
    cfg.partition_capacity = 4;
    bus = sl_bus_memory_create(&cfg);
    assert_non_null(bus);
    pub = sl_publisher_create(bus, reg, 0);
    assert_non_null(pub);
    assert_int_equal(sl_publisher_set_batch(pub, 10), SL_OK);
    sl_publisher_set_report(pub, collect_report, &reports);

    for (uint8_t i = 0; i < 10; i++) {
        sl_publisher_set_tag(pub, i);
        /* The 10th call fills the batch and publishes it. */
        assert_int_equal(sl_publish_frame(pub, "capture", "k", 1, &i, 1),
                         SL_OK);
    }
    sl_publisher_stats(pub, &st);
    assert_int_equal(st.published, 4);
    assert_int_equal(st.failed, 6);
    assert_int_equal(st.queued, 0);
    assert_int_equal(reports.count, 6);
    for (size_t i = 0; i < reports.count; i++) {
        assert_int_equal(reports.status[i], SL_EFULL);
        assert_int_equal(reports.tag[i], 4 + i);
    }
    /* The ones that got in are the first four, in order. */
    assert_int_equal(consume_all(bus, "capture", tag_value_check, &next), 4);
    /* The next flush returns the first failure since the last one, once,
     * even though the batch went out before it. */
    assert_int_equal(sl_publisher_flush(pub), SL_EFULL);
    assert_int_equal(sl_publisher_flush(pub), SL_OK);

    /* A closed bus fails the batch in hand, then each later call. */
    assert_int_equal(sl_publish_frame(pub, "capture", "k", 1, "x", 1), SL_OK);
    sl_bus_close(bus);
    assert_int_equal(sl_publisher_flush(pub), SL_ECLOSED);
    assert_int_equal(reports.count, 7);
    assert_int_equal(reports.status[6], SL_ECLOSED);
    assert_int_equal(sl_publish_frame(pub, "capture", "k", 1, "y", 1),
                     SL_ECLOSED);
    sl_publisher_stats(pub, &st);
    assert_int_equal(st.published, 4);
    assert_int_equal(st.failed, 8);

    sl_publisher_destroy(pub);
    sl_bus_destroy(bus);
    sl_registry_destroy(reg);
}

/* An invalid record in a batch fails alone: the bus refuses the whole
 * batch, and the publisher sends the others one by one, in order. */
static void batch_invalid_record_alone(void **state)
{
    fixture_t *fx = *state;
    reports_t reports = {0};
    sl_publisher_stats_t st;
    uint8_t v0 = 0, v1 = 1;
    int next = 0;

    assert_int_equal(sl_publisher_set_batch(fx->pub, 100), SL_OK);
    sl_publisher_set_report(fx->pub, collect_report, &reports);
    sl_publisher_set_tag(fx->pub, 0);
    assert_int_equal(sl_publish_frame(fx->pub, "capture", "k", 1, &v0, 1),
                     SL_OK);
    sl_publisher_set_tag(fx->pub, 99);
    /* A space is not allowed in a topic name. */
    assert_int_equal(sl_publish_frame(fx->pub, "bad topic", "k", 1, "x", 1),
                     SL_OK);
    sl_publisher_set_tag(fx->pub, 1);
    assert_int_equal(sl_publish_frame(fx->pub, "capture", "k", 1, &v1, 1),
                     SL_OK);
    assert_int_equal(reports.count, 0);
    assert_int_equal(sl_publisher_flush(fx->pub), SL_EINVAL);
    assert_int_equal(reports.count, 1);
    assert_int_equal(reports.status[0], SL_EINVAL);
    assert_int_equal(reports.tag[0], 99);
    sl_publisher_stats(fx->pub, &st);
    assert_int_equal(st.published, 2);
    assert_int_equal(st.failed, 1);
    sl_publisher_set_report(fx->pub, NULL, NULL);
    assert_int_equal(consume_all(fx->bus, "capture", tag_value_check, &next),
                     2);
}

/* ---- a frame too large for the bus ---------------------------------- */

#define BIG_FRAME_BYTES 1500000
/* sha256 of BIG_FRAME_BYTES bytes (i * 31 + 7) mod 256, by Python's
 * hashlib. */
#define BIG_FRAME_SHA256                                                       \
    "8fded0cd134ddf5d8af9fc42f62df1ae422dcad39d2042d2608464a54ef5a0d6"

static uint8_t *big_frame(void)
{
    uint8_t *value = malloc(BIG_FRAME_BYTES);

    assert_non_null(value);
    for (size_t i = 0; i < BIG_FRAME_BYTES; i++)
        value[i] = (uint8_t)(i * 31 + 7);
    return value;
}

typedef struct dlq_check {
    int digests;
    size_t largest;
} dlq_check_t;

static void header_equals(const sl_msg_t *msg, const char *name,
                          const char *expected)
{
    const sl_header_t *h = sl_msg_header(msg, name);

    assert_non_null(h);
    assert_int_equal(h->value_len, strlen(expected));
    assert_memory_equal(h->value, expected, h->value_len);
}

static void check_digest_msg(const sl_msg_t *msg, void *arg)
{
    dlq_check_t *dc = arg;
    sl_dlq_entry_t entry;
    uint8_t *expected = big_frame();
    int64_t content = -1;

    assert_int_equal(msg->key_len, 3);
    assert_memory_equal(msg->key, "big", 3);
    assert_int_equal(msg->value_len, SL_DLQ_EXCERPT_BYTES);
    assert_memory_equal(msg->value, expected, SL_DLQ_EXCERPT_BYTES);
    assert_int_equal(
        sl_dlq_content_offset("big", 3, expected, BIG_FRAME_BYTES, &content),
        SL_OK);
    free(expected);
    header_equals(msg, SL_DLQ_HDR_ORIGINAL_SIZE, "1500000");
    header_equals(msg, SL_DLQ_HDR_SHA256, BIG_FRAME_SHA256);
    header_equals(msg, SL_DLQ_HDR_TOPIC, SL_TOPIC_SENSOR_READINGS);

    /* The handler reads it as a parked validation failure without a
     * partition, with the reason first in its error text. The bus is the
     * in-process one, so the offset is the content offset of the whole
     * record, which a replay of the same input after a crash repeats. */
    assert_int_equal(sl_dlq_entry_from_msg(msg, &entry), SL_OK);
    assert_int_equal(entry.error_class, SL_DLQ_VALIDATION);
    assert_int_equal(entry.status, SL_DLQ_DEAD);
    assert_int_equal(entry.partition, -1);
    assert_int_equal(entry.offset, content);
    assert_int_equal(entry.payload_len, SL_DLQ_EXCERPT_BYTES);
    assert_int_equal(strncmp(entry.error, "payload_too_large: ", 19), 0);
    assert_non_null(strstr(entry.error, "1500000"));
    assert_non_null(strstr(entry.error, BIG_FRAME_SHA256));
    dc->digests++;
}

static void largest_value(const sl_msg_t *msg, void *arg)
{
    size_t *largest = arg;

    if (msg->value_len > *largest)
        *largest = msg->value_len;
}

static void oversized_frame_dead_lettered(void **state)
{
    fixture_t *fx = *state;
    sl_reading_t rec = sample_reading();
    uint8_t *value = big_frame();
    sl_publisher_stats_t st;
    dlq_check_t dc = {0};
    size_t largest = 0;

    assert_int_equal(sl_publisher_set_batch(fx->pub, 100), SL_OK);
    assert_int_equal(sl_publish_frame(fx->pub, SL_TOPIC_SENSOR_READINGS, "big",
                                      3, value, BIG_FRAME_BYTES),
                     SL_EREJECTED);
    free(value);
    for (int i = 0; i < 3; i++) {
        rec.timestamp_ms += 1000;
        assert_int_equal(sl_publish_reading(fx->pub, &rec), SL_OK);
    }
    assert_int_equal(sl_publisher_flush(fx->pub), SL_OK);
    sl_publisher_stats(fx->pub, &st);
    assert_int_equal(st.published, 3);
    assert_int_equal(st.dead_lettered, 1);
    assert_int_equal(st.failed, 0);

    assert_int_equal(
        consume_all(fx->bus, SL_TOPIC_SENSOR_READINGS, largest_value, &largest),
        3);
    assert_true(largest < 1000);
    assert_int_equal(consume_all(fx->bus, SL_TOPIC_DLQ, check_digest_msg, &dc),
                     1);
    assert_int_equal(dc.digests, 1);
}

/* The limit is a setting; a frame at the limit is published whole. */
static void max_payload_setting(void **state)
{
    fixture_t *fx = *state;
    uint8_t value[64] = {0};

    sl_publisher_set_max_payload(fx->pub, 65);
    assert_int_equal(
        sl_publish_frame(fx->pub, "capture", "k", 1, value, sizeof(value)),
        SL_OK);
    assert_int_equal(
        sl_publish_frame(fx->pub, "capture", "kk", 2, value, sizeof(value)),
        SL_EREJECTED);
}

typedef struct excerpt_check {
    int digests;
    size_t value_len;
} excerpt_check_t;

static void check_excerpt_msg(const sl_msg_t *msg, void *arg)
{
    excerpt_check_t *ec = arg;

    header_equals(msg, SL_DLQ_HDR_ORIGINAL_SIZE, "3000");
    ec->value_len = msg->value_len;
    ec->digests++;
}

/* A bus whose record limit is below the publisher's refuses the record
 * itself (SL_ETOOBIG), batched or not: it is dead-lettered too, and the
 * records around it are published. */
static void bus_refused_size_dead_lettered(void **state)
{
    sl_bus_memory_config_t cfg;
    sl_registry_t *reg = sl_registry_create();
    static uint8_t value[3000];
    excerpt_check_t ec = {0};
    sl_publisher_stats_t st;
    sl_publisher_t *pub;
    sl_bus_t *bus;
    int seen = 0;

    (void)state;
    sl_bus_memory_config_init(&cfg);
    cfg.max_record_bytes = 2000;
    bus = sl_bus_memory_create(&cfg);
    assert_non_null(bus);
    pub = sl_publisher_create(bus, reg, 1000);
    assert_non_null(pub);

    assert_int_equal(
        sl_publish_frame(pub, "capture", "k", 1, value, sizeof(value)),
        SL_EREJECTED);
    assert_int_equal(sl_publisher_set_batch(pub, 10), SL_OK);
    assert_int_equal(sl_publish_frame(pub, "capture", "k", 1, "a", 1), SL_OK);
    assert_int_equal(
        sl_publish_frame(pub, "capture", "k", 1, value, sizeof(value)), SL_OK);
    assert_int_equal(sl_publish_frame(pub, "capture", "k", 1, "b", 1), SL_OK);
    /* Dead-lettered is settled: the flush reports no failure. */
    assert_int_equal(sl_publisher_flush(pub), SL_OK);

    sl_publisher_stats(pub, &st);
    assert_int_equal(st.published, 2);
    assert_int_equal(st.dead_lettered, 2);
    assert_int_equal(st.failed, 0);
    assert_int_equal(consume_all(bus, "capture", count_msg, &seen), 2);
    assert_int_equal(consume_all(bus, SL_TOPIC_DLQ, check_excerpt_msg, &ec), 2);
    assert_int_equal(ec.value_len, SL_DLQ_EXCERPT_BYTES);

    sl_publisher_destroy(pub);
    sl_bus_destroy(bus);
    sl_registry_destroy(reg);
}

/* Replay of captured frames: the oversized one is counted as
 * dead-lettered and its neighbours are published. */
static void replay_dead_letters_big_frame(void **state)
{
    fixture_t *fx = *state;
    static const char hex[] = "0123456789abcdef";
    size_t big_hex = 2 * (SL_PUBLISH_MAX_PAYLOAD_DEFAULT + 1);
    size_t cap = big_hex + 256;
    char *text = malloc(cap);
    size_t n = 0;
    sl_replay_options_t opt;
    sl_replay_stats_t st;
    int seen = 0;

    assert_non_null(text);
    n += (size_t)snprintf(text + n, cap - n, "sensor-readings\t6b\t0001\n");
    n += (size_t)snprintf(text + n, cap - n, "sensor-readings\t6b\t");
    for (size_t i = 0; i < big_hex; i++)
        text[n++] = hex[i % 16];
    n += (size_t)snprintf(text + n, cap - n, "\nsensor-readings\t6b\t0002\n");
    sl_replay_options_init(&opt);
    opt.format = SL_REPLAY_FRAMES;
    assert_int_equal(sl_publisher_set_batch(fx->pub, 100), SL_OK);
    assert_int_equal(sl_replay_run(test_file_write("big.frames", text, n), &opt,
                                   fx->pub, NULL, &st),
                     SL_OK);
    free(text);
    assert_int_equal(st.published, 2);
    assert_int_equal(st.dead_lettered, 1);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.malformed, 0);
    assert_int_equal(
        consume_all(fx->bus, SL_TOPIC_SENSOR_READINGS, count_msg, &seen), 2);
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
        cmocka_unit_test_setup_teardown(batch_keeps_order_per_key,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test(batch_failures_counted),
        cmocka_unit_test_setup_teardown(batch_invalid_record_alone,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(oversized_frame_dead_lettered,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(max_payload_setting, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test(bus_refused_size_dead_lettered),
        cmocka_unit_test_setup_teardown(replay_live_input_flushed_and_stoppable,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(replay_dead_letters_big_frame,
                                        fixture_setup, fixture_teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
