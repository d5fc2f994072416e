/* SPDX-License-Identifier: Apache-2.0 */
/* The raw librdkafka baseline of the benchmarks; see bench_kafka.h. */
#include "bench_kafka.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "schema/schema.h"
#include "util/err.h"
#include "util/timeutil.h"

#define PHASE 50000
#define PARTITIONS 6
#define FRAME_MAX 2048

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstraps)
{
    static const char *const common[][2] = {{"log_level", "3"}};
    static const char *const producer[][2] = {
        {"acks", "all"}, {"enable.idempotence", "true"}, {"linger.ms", "5"}};
    static const char *const consumer[][2] = {{"group.id", "sluice-bench-raw"},
                                              {"enable.auto.commit", "false"},
                                              {"fetch.wait.max.ms", "1"}};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[512];
    rd_kafka_t *rk;
    bool ok = rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, err,
                                sizeof(err)) == RD_KAFKA_CONF_OK &&
              rd_kafka_conf_set(conf, common[0][0], common[0][1], err,
                                sizeof(err)) == RD_KAFKA_CONF_OK;

    for (size_t i = 0; ok && type == RD_KAFKA_PRODUCER && i < 3; i++)
        ok = rd_kafka_conf_set(conf, producer[i][0], producer[i][1], err,
                               sizeof(err)) == RD_KAFKA_CONF_OK;
    for (size_t i = 0; ok && type == RD_KAFKA_CONSUMER && i < 3; i++)
        ok = rd_kafka_conf_set(conf, consumer[i][0], consumer[i][1], err,
                               sizeof(err)) == RD_KAFKA_CONF_OK;
    if (!ok) {
        fprintf(stderr, "raw Kafka: configuration failed: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (rk == NULL)
        fprintf(stderr, "raw Kafka: creating a client failed: %s\n", err);
    return rk;
}

/* Assigns every partition of topic from its beginning. */
static int assign_all(rd_kafka_t *consumer, const char *topic)
{
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(PARTITIONS);
    rd_kafka_resp_err_t err;

    for (int p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    err = rd_kafka_assign(consumer, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "raw Kafka: assign failed: %s\n",
                rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

typedef struct raw_kafka {
    rd_kafka_t *producer;
    rd_kafka_t *consumer;
    sl_encoder_t *enc;
    const char *topic;
    sl_bench_reading_fn next;
    void *ctx;
} raw_kafka_t;

static int produce_one(raw_kafka_t *k, size_t i)
{
    uint8_t frame[FRAME_MAX];
    sl_reading_t rec;
    size_t len;
    rd_kafka_resp_err_t err;

    k->next(k->ctx, i, &rec);
    if (sl_reading_encode(k->enc, &rec, frame, sizeof(frame), &len) != SL_OK)
        return -1;
    for (;;) {
        err = rd_kafka_producev(
            k->producer, RD_KAFKA_V_TOPIC(k->topic),
            RD_KAFKA_V_KEY(rec.sensor_id, strlen(rec.sensor_id)),
            RD_KAFKA_V_VALUE(frame, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(k->producer, 1);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "raw Kafka: produce failed: %s\n",
                rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* Consumes n messages. Returns 0, or -1 on an error or a 30 s stall. */
static int consume(raw_kafka_t *k, size_t n)
{
    int64_t last_ms = sl_time_mono_ms();

    for (size_t got = 0; got < n;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->consumer, 100);

        if (m == NULL) {
            if (sl_time_mono_ms() - last_ms > 30000) {
                fprintf(stderr, "raw Kafka: %zu of %zu consumed, stalled\n",
                        got, n);
                return -1;
            }
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            got++;
            last_ms = sl_time_mono_ms();
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "raw Kafka: consume failed: %s\n",
                    rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            return -1;
        }
        rd_kafka_message_destroy(m);
    }
    return 0;
}

/* Produces and consumes readings [first, first + n). */
static int phase(raw_kafka_t *k, size_t first, size_t n)
{
    for (size_t i = first; i < first + n; i++) {
        if (produce_one(k, i) != 0)
            return -1;
    }
    if (rd_kafka_flush(k->producer, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "raw Kafka: flush timed out\n");
        return -1;
    }
    return consume(k, n);
}

static double run(raw_kafka_t *k, size_t rows)
{
    int64_t start_ns;

    /* One message first: connections, metadata and the producer id. */
    if (assign_all(k->consumer, k->topic) != 0 || phase(k, 0, 1) != 0)
        return -1;
    start_ns = sl_time_mono_ns();
    for (size_t done = 0; done < rows;) {
        size_t n = rows - done < PHASE ? rows - done : PHASE;

        if (phase(k, done, n) != 0)
            return -1;
        done += n;
    }
    return (double)(sl_time_mono_ns() - start_ns) / 1e9;
}

double sl_bench_raw_kafka(rd_kafka_mock_cluster_t *mock, const char *topic,
                          size_t rows, sl_bench_reading_fn next, void *ctx)
{
    const char *json = sl_schema_builtin("sensor_reading.avsc");
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mock);
    raw_kafka_t k = {NULL, NULL, NULL, topic, next, ctx};
    avro_schema_t schema;
    double seconds = -1;

    if (rd_kafka_mock_topic_create(mock, topic, PARTITIONS, 1) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        avro_schema_from_json_length(json, strlen(json), &schema) != 0) {
        fprintf(stderr, "raw Kafka: creating topic %s failed\n", topic);
        return -1;
    }
    /* Schema id 1 in the frame header: only the size matters here. */
    k.enc = sl_encoder_create(schema, 1);
    avro_schema_decref(schema);
    k.producer = client(RD_KAFKA_PRODUCER, bootstraps);
    k.consumer = client(RD_KAFKA_CONSUMER, bootstraps);
    if (k.enc != NULL && k.producer != NULL && k.consumer != NULL)
        seconds = run(&k, rows);
    if (k.consumer != NULL) {
        rd_kafka_consumer_close(k.consumer);
        rd_kafka_destroy(k.consumer);
    }
    if (k.producer != NULL)
        rd_kafka_destroy(k.producer);
    sl_encoder_destroy(k.enc);
    return seconds;
}
