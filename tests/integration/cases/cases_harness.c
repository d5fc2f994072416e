/* SPDX-License-Identifier: Apache-2.0 */
/* Shared setup of the processor failure-case tests; see cases_harness.h. */
#include "cases_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "util/err.h"
#include "util/timeutil.h"

#define CSV_LINE_MAX 512
#define CSV_FIELDS_MAX 16

void ch_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

void ch_sha256_hex(const void *data, size_t len, char out[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    assert_int_equal(EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL), 1);
    assert_int_equal(md_len, 32);
    for (unsigned int i = 0; i < md_len; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 0x0f];
    }
    out[64] = '\0';
}

static sl_encoder_t *encoder_for(sl_registry_t *reg, const char *subject,
                                 const char *file)
{
    char err[256] = "";
    int32_t id = -1;
    sl_encoder_t *enc;

    if (sl_registry_register(reg, subject, sl_schema_builtin(file), &id, err,
                             sizeof(err)) != SL_OK)
        fail_msg("registering %s failed: %s", file, err);
    enc = sl_encoder_create(sl_registry_lookup(reg, id), id);
    assert_non_null(enc);
    return enc;
}

void ch_codec_init(ch_codec_t *codec)
{
    codec->registry = sl_registry_create();
    assert_non_null(codec->registry);
    codec->reading_encoder = encoder_for(
        codec->registry, "sensor-readings-value", "sensor_reading.avsc");
    codec->event_encoder = encoder_for(
        codec->registry, "ecommerce-events-value", "ecommerce_event.avsc");
}

void ch_codec_fini(ch_codec_t *codec)
{
    sl_encoder_destroy(codec->reading_encoder);
    sl_encoder_destroy(codec->event_encoder);
    sl_registry_destroy(codec->registry);
    memset(codec, 0, sizeof(*codec));
}

void ch_env_open(ch_env_t *env)
{
    ch_sqlite_location(env->location, sizeof(env->location));
    env->st = ch_store_open(env->location);
    ch_codec_init(&env->codec);
}

void ch_env_close(ch_env_t *env)
{
    sl_store_close(env->st);
    env->st = NULL;
    ch_codec_fini(&env->codec);
    ch_sqlite_remove(env->location);
}

sl_bus_t *ch_memory_bus(int32_t partitions)
{
    sl_bus_memory_config_t cfg;
    sl_bus_t *bus;

    sl_bus_memory_config_init(&cfg);
    cfg.partitions = partitions;
    bus = sl_bus_memory_create(&cfg);
    assert_non_null(bus);
    return bus;
}

void ch_kafka_cluster_start(kh_cluster_t *cluster)
{
    kh_cluster_start(cluster, 1);
    kh_topic_create(cluster, SL_TOPIC_SENSOR_READINGS, 1);
    kh_topic_create(cluster, SL_TOPIC_ECOMMERCE_EVENTS, 1);
    kh_topic_create(cluster, SL_TOPIC_DLQ, 1);
}

sl_reading_t ch_reading(const char *sensor_id, sl_sensor_type_t type,
                        int64_t ts_ms, double value)
{
    sl_reading_t rec;

    memset(&rec, 0, sizeof(rec));
    snprintf(rec.sensor_id, sizeof(rec.sensor_id), "%s", sensor_id);
    snprintf(rec.location, sizeof(rec.location), "lab-1");
    rec.sensor_type = type;
    rec.timestamp_ms = ts_ms;
    rec.value = value;
    rec.battery_level = 90;
    rec.signal_strength = -60;
    return rec;
}

/* Splits line at commas in place. Returns the number of fields. */
static size_t split_csv(char *line, char **fields)
{
    size_t n = 0;

    line[strcspn(line, "\r\n")] = '\0';
    for (char *p = line; n < CSV_FIELDS_MAX;) {
        fields[n++] = p;
        p = strchr(p, ',');
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    return n;
}

static int column(char **names, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(names[i], name) == 0)
            return (int)i;
    }
    fail_msg("fixture column %s is missing", name);
    return -1;
}

size_t ch_load_readings(const char *case_id, const char *file,
                        sl_reading_t *out, size_t max)
{
    const char *root = getenv("SLUICE_SOURCE_DIR");
    char path[1024], header[CSV_LINE_MAX], line[CSV_LINE_MAX];
    char *names[CSV_FIELDS_MAX], *fields[CSV_FIELDS_MAX];
    size_t name_count, n = 0;
    int c_id, c_type, c_ts, c_value;
    FILE *fp;

    assert_non_null(root);
    snprintf(path, sizeof(path), "%s/tests/fixtures/cases/%s/%s", root, case_id,
             file);
    fp = fopen(path, "r");
    if (fp == NULL)
        fail_msg("cannot open fixture %s", path);
    assert_non_null(fgets(header, sizeof(header), fp));
    name_count = split_csv(header, names);
    c_id = column(names, name_count, "sensor_id");
    c_type = column(names, name_count, "sensor_type");
    c_ts = column(names, name_count, "ts_ms");
    c_value = column(names, name_count, "value");

    while (n < max && fgets(line, sizeof(line), fp) != NULL) {
        sl_sensor_type_t type;

        if (split_csv(line, fields) != name_count)
            fail_msg("%s: row %zu has the wrong number of fields", path, n + 1);
        assert_int_equal(sl_sensor_type_parse(fields[c_type], &type), SL_OK);
        out[n++] =
            ch_reading(fields[c_id], type, strtoll(fields[c_ts], NULL, 10),
                       strtod(fields[c_value], NULL));
    }
    fclose(fp);
    return n;
}

void ch_encode_reading(ch_codec_t *codec, const sl_reading_t *rec,
                       uint8_t *frame, size_t frame_size, size_t *len)
{
    assert_int_equal(
        sl_reading_encode(codec->reading_encoder, rec, frame, frame_size, len),
        SL_OK);
}

int64_t ch_publish_reading(sl_bus_t *bus, ch_codec_t *codec,
                           const sl_reading_t *rec, int32_t partition)
{
    uint8_t frame[1024];
    size_t len = 0;
    int64_t offset = -1;

    ch_encode_reading(codec, rec, frame, sizeof(frame), &len);
    assert_int_equal(sl_bus_publish(bus, SL_TOPIC_SENSOR_READINGS, partition,
                                    rec->sensor_id, strlen(rec->sensor_id),
                                    frame, len, NULL, 0, 5000, &offset),
                     SL_OK);
    return offset;
}

void ch_sqlite_location(char *path, size_t path_size)
{
    char dir[] = "/tmp/sluice-cases-XXXXXX";

    assert_non_null(mkdtemp(dir));
    snprintf(path, path_size, "%s/sluice.db", dir);
}

void ch_sqlite_remove(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    char file[512], dir[512];
    char *slash;

    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(file, sizeof(file), "%s%s", path, suffixes[i]);
        unlink(file);
    }
    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
        rmdir(dir);
    }
}

sl_store_t *ch_store_open(const char *location)
{
    char err[512] = "";
    sl_store_t *st = sl_store_open(location, err, sizeof(err));

    if (st == NULL)
        fail_msg("cannot open the store %s: %s", location, err);
    if (sl_store_migrate(st, err, sizeof(err)) != SL_OK)
        fail_msg("migration of %s failed: %s", location, err);
    return st;
}

void ch_processor_config(sl_processor_config_t *cfg, sl_bus_t *bus,
                         ch_codec_t *codec, const char *location)
{
    sl_processor_config_init(cfg);
    cfg->bus = bus;
    cfg->registry = codec->registry;
    cfg->store_location = location;
    cfg->poll_timeout_ms = 20;
}

sl_processor_t *ch_processor_start(const sl_processor_config_t *cfg)
{
    char err[512] = "";
    sl_processor_t *proc = sl_processor_start(cfg, err, sizeof(err));

    if (proc == NULL)
        fail_msg("sl_processor_start failed: %s", err);
    return proc;
}

sl_dlq_handler_t *ch_dlq_handler_start(sl_bus_t *bus, const char *location)
{
    sl_dlq_handler_config_t cfg;
    char err[512] = "";
    sl_dlq_handler_t *handler;

    sl_dlq_handler_config_init(&cfg);
    cfg.bus = bus;
    cfg.store_location = location;
    handler = sl_dlq_handler_start(&cfg, err, sizeof(err));
    if (handler == NULL)
        fail_msg("sl_dlq_handler_start failed: %s", err);
    return handler;
}

void ch_stages_stop(sl_bus_t *bus, sl_processor_t *proc,
                    sl_dlq_handler_t *handler)
{
    sl_dlq_handler_quiesce(handler);
    sl_bus_close(bus);
    sl_processor_stop(proc);
    sl_dlq_handler_stop(handler);
    sl_bus_destroy(bus);
}

int64_t ch_wait_reading_count(sl_store_t *st, int64_t want)
{
    int64_t deadline = sl_time_mono_ms() + CH_WAIT_MS;
    int64_t count = sl_store_reading_count(st);

    while (count != want && sl_time_mono_ms() < deadline) {
        ch_sleep_ms(20);
        count = sl_store_reading_count(st);
    }
    return count;
}

int64_t ch_wait_committed(sl_processor_t *proc, uint64_t want_consumed)
{
    int64_t deadline = sl_time_mono_ms() + CH_WAIT_MS;
    sl_processor_stats_t stats;
    int64_t lag = -1;

    for (;;) {
        sl_processor_stats(proc, &stats);
        lag = sl_processor_lag(proc);
        if ((stats.consumed >= want_consumed && lag == 0) ||
            sl_time_mono_ms() >= deadline)
            return lag;
        ch_sleep_ms(20);
    }
}

static void copy_header(const sl_msg_t *msg, const char *name, char *out,
                        size_t out_size)
{
    const sl_header_t *h = sl_msg_header(msg, name);
    size_t n = h == NULL ? 0 : h->value_len;

    if (n >= out_size)
        n = out_size - 1;
    if (n > 0)
        memcpy(out, h->value, n);
    out[n] = '\0';
}

static void copy_dlq_record(ch_dlq_record_t *rec, const sl_msg_t *msg)
{
    size_t key_len = msg->key_len < SL_ID_MAX ? msg->key_len : SL_ID_MAX;
    size_t head = msg->value_len < sizeof(rec->value_head)
                      ? msg->value_len
                      : sizeof(rec->value_head);

    memset(rec, 0, sizeof(*rec));
    assert_int_equal(sl_dlq_entry_from_msg(msg, &rec->entry), SL_OK);
    rec->entry.key = NULL;
    rec->entry.payload = NULL;
    if (key_len > 0)
        memcpy(rec->key, msg->key, key_len);
    rec->key_len = msg->key_len;
    rec->value_len = msg->value_len;
    if (head > 0)
        memcpy(rec->value_head, msg->value, head);
    copy_header(msg, SL_DLQ_HDR_ORIGINAL_SIZE, rec->original_size,
                sizeof(rec->original_size));
    copy_header(msg, SL_DLQ_HDR_SHA256, rec->original_sha256,
                sizeof(rec->original_sha256));
}

size_t ch_read_dlq(sl_bus_t *bus, const char *group, ch_dlq_record_t *out,
                   size_t want)
{
    const char *topics[] = {SL_TOPIC_DLQ};
    sl_consumer_t *consumer = sl_consumer_create(bus, group, topics, 1);
    int64_t deadline = sl_time_mono_ms() + CH_WAIT_MS;
    sl_msg_t msgs[64];
    size_t got = 0;

    assert_non_null(consumer);
    while (got < want && sl_time_mono_ms() < deadline) {
        size_t count = 0;

        assert_int_equal(sl_consumer_poll(consumer, msgs, 64, &count, 100),
                         SL_OK);
        for (size_t i = 0; i < count && got < want; i++) {
            copy_dlq_record(&out[got++], &msgs[i]);
            assert_int_equal(sl_consumer_commit(consumer, msgs[i].topic,
                                                msgs[i].partition,
                                                msgs[i].offset + 1),
                             SL_OK);
        }
    }
    sl_consumer_destroy(consumer);
    return got;
}

int64_t ch_committed(sl_bus_t *bus, const char *group, const char *topic,
                     int32_t partition)
{
    const char *topics[] = {topic};
    sl_consumer_t *consumer = sl_consumer_create(bus, group, topics, 1);
    int64_t committed;

    assert_non_null(consumer);
    committed = sl_consumer_committed(consumer, topic, partition);
    sl_consumer_destroy(consumer);
    return committed;
}

int64_t ch_group_lag(sl_bus_t *bus, const char *group, const char *topic)
{
    const char *topics[] = {topic};
    sl_consumer_t *consumer = sl_consumer_create(bus, group, topics, 1);
    int64_t lag;

    assert_non_null(consumer);
    lag = sl_consumer_lag(consumer);
    sl_consumer_destroy(consumer);
    return lag;
}

bool ch_aggregate(sl_store_t *st, const char *sensor_id, int64_t start_ms,
                  sl_aggregate_t *out)
{
    size_t n = 0;

    assert_int_equal(
        sl_store_aggregates(st, sensor_id, start_ms, start_ms + 1, out, 1, &n),
        SL_OK);
    return n == 1;
}

void ch_wait_aggregate(sl_store_t *st, const char *sensor_id, int64_t start_ms,
                       int64_t want_count, sl_aggregate_t *out)
{
    int64_t deadline = sl_time_mono_ms() + CH_WAIT_MS;

    for (;;) {
        bool found = ch_aggregate(st, sensor_id, start_ms, out);

        if (found && out->count == want_count)
            return;
        if (sl_time_mono_ms() >= deadline)
            fail_msg("window %s@%lld: %s, count %lld, expected %lld", sensor_id,
                     (long long)start_ms, found ? "found" : "not written",
                     found ? (long long)out->count : 0LL,
                     (long long)want_count);
        ch_sleep_ms(20);
    }
}

void ch_publish_fixture(sl_bus_t *bus, ch_codec_t *codec, const char *case_id,
                        const char *file, size_t count)
{
    sl_reading_t *rows = calloc(count + 1, sizeof(*rows));

    assert_non_null(rows);
    assert_int_equal(ch_load_readings(case_id, file, rows, count + 1), count);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(ch_publish_reading(bus, codec, &rows[i], 0),
                         (int64_t)i);
    free(rows);
}
