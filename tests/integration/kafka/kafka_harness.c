/* SPDX-License-Identifier: Apache-2.0 */
/* Shared setup of the Kafka bus tests; see kafka_harness.h. */
#include "kafka_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "obs/metrics.h"
#include "util/err.h"

#define KH_MAX_PROPERTIES 16

int64_t kh_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double kh_metric_value(const char *series)
{
    char *text = NULL;
    size_t len = 0;
    double value = -1;
    const char *at;

    assert_int_equal(sl_metrics_render(&text, &len), SL_OK);
    at = strstr(text, series);
    if (at != NULL && at[strlen(series)] == ' ')
        value = strtod(at + strlen(series) + 1, NULL);
    free(text);
    return value;
}

void kh_cluster_start(kh_cluster_t *cluster, int broker_count)
{
    char reason[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    cluster->host =
        rd_kafka_new(RD_KAFKA_PRODUCER, conf, reason, sizeof(reason));
    assert_non_null(cluster->host);
    cluster->mock = rd_kafka_mock_cluster_new(cluster->host, broker_count);
    assert_non_null(cluster->mock);
    cluster->bootstraps = rd_kafka_mock_cluster_bootstraps(cluster->mock);
    assert_non_null(cluster->bootstraps);
}

void kh_cluster_stop(kh_cluster_t *cluster)
{
    rd_kafka_mock_cluster_destroy(cluster->mock);
    rd_kafka_destroy(cluster->host);
    memset(cluster, 0, sizeof(*cluster));
}

void kh_topic_create(kh_cluster_t *cluster, const char *topic, int partitions)
{
    assert_int_equal(
        rd_kafka_mock_topic_create(cluster->mock, topic, partitions, 1),
        RD_KAFKA_RESP_ERR_NO_ERROR);
}

sl_bus_t *kh_bus_create(const char *bootstraps, const char *const *extra,
                        size_t extra_count)
{
    return kh_bus_create_capped(bootstraps, extra, extra_count, 0, 0);
}

sl_bus_t *kh_bus_create_capped(const char *bootstraps, const char *const *extra,
                               size_t extra_count, size_t queue_records,
                               size_t queue_bytes)
{
    const char *props[KH_MAX_PROPERTIES] = {
        "consumer.fetch.wait.max.ms=10",
        "consumer.heartbeat.interval.ms=500",
        "consumer.session.timeout.ms=6000",
        "topic.metadata.refresh.interval.ms=1000",
    };
    size_t count = 4;
    sl_bus_kafka_config_t cfg;
    char err[256] = "";
    sl_bus_t *bus;

    assert_true(count + extra_count <= KH_MAX_PROPERTIES);
    for (size_t i = 0; i < extra_count; i++)
        props[count++] = extra[i];
    sl_bus_kafka_config_init(&cfg);
    cfg.brokers = bootstraps;
    cfg.client_id = "sluice-test";
    cfg.properties = props;
    cfg.property_count = count;
    if (queue_records > 0)
        cfg.consumer_queue_records = queue_records;
    if (queue_bytes > 0)
        cfg.consumer_queue_bytes = queue_bytes;
    bus = sl_bus_kafka_create(&cfg, err, sizeof(err));
    if (bus == NULL)
        fail_msg("sl_bus_kafka_create failed: %s", err);
    return bus;
}

static void copy_text(char *dst, size_t dst_size, const void *src, size_t len)
{
    if (len >= dst_size)
        len = dst_size - 1;
    if (len > 0)
        memcpy(dst, src, len);
    dst[len] = '\0';
}

void kh_record_copy(kh_record_t *rec, const sl_msg_t *msg)
{
    copy_text(rec->topic, sizeof(rec->topic), msg->topic, strlen(msg->topic));
    rec->partition = msg->partition;
    rec->offset = msg->offset;
    copy_text(rec->key, sizeof(rec->key), msg->key, msg->key_len);
    copy_text(rec->value, sizeof(rec->value), msg->value, msg->value_len);
}

size_t kh_drain(sl_consumer_t *consumer, kh_record_t *out, size_t out_max,
                size_t want, int timeout_ms, bool commit)
{
    sl_msg_t msgs[256];
    size_t got = 0;
    int64_t deadline = kh_now_ms() + timeout_ms;

    while (got < want && kh_now_ms() < deadline) {
        size_t count = 0;

        assert_int_equal(sl_consumer_poll(consumer, msgs, 256, &count, 100),
                         SL_OK);
        for (size_t i = 0; i < count; i++) {
            if (got < out_max)
                kh_record_copy(&out[got], &msgs[i]);
            got++;
            if (commit)
                assert_int_equal(sl_consumer_commit(consumer, msgs[i].topic,
                                                    msgs[i].partition,
                                                    msgs[i].offset + 1),
                                 SL_OK);
        }
    }
    return got;
}
