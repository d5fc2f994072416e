/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared setup of the Kafka bus tests: an in-process librdkafka mock
 * cluster, a bus on it with test-friendly settings, and a drain helper that
 * copies polled records out of the consumer's borrowed memory.
 */
#ifndef SLUICE_TESTS_KAFKA_HARNESS_H
#define SLUICE_TESTS_KAFKA_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "bus/bus.h"

#define KH_API_PRODUCE 0 /* Kafka protocol ApiKey of ProduceRequest */

typedef struct kh_cluster {
    rd_kafka_t *host; /* client that owns the mock cluster */
    rd_kafka_mock_cluster_t *mock;
    const char *bootstraps;
} kh_cluster_t;

/* A polled record copied out of the consumer. */
typedef struct kh_record {
    char topic[64];
    int32_t partition;
    int64_t offset;
    char key[64];
    char value[64]; /* values in these tests are short text */
} kh_record_t;

/** Starts a mock cluster with broker_count brokers; fails the test on
 * error. */
void kh_cluster_start(kh_cluster_t *cluster, int broker_count);

void kh_cluster_stop(kh_cluster_t *cluster);

/** Creates topic on the mock cluster with partitions partitions. */
void kh_topic_create(kh_cluster_t *cluster, const char *topic, int partitions);

/** Creates a bus on bootstraps with fetch.wait.max.ms=10 (the mock holds
 * a fetch for its full wait time) plus the extra "key=value" properties. */
sl_bus_t *kh_bus_create(const char *bootstraps, const char *const *extra,
                        size_t extra_count);

/** As kh_bus_create, with each consumer's queue capped at queue_records
 * records and queue_bytes bytes. */
sl_bus_t *kh_bus_create_capped(const char *bootstraps, const char *const *extra,
                               size_t extra_count, size_t queue_records,
                               size_t queue_bytes);

/** Polls consumer until `want` records arrived or timeout_ms passed,
 * appending copies to out (capacity out_max). Commits after each record
 * when commit is true. Returns the number of records copied. */
size_t kh_drain(sl_consumer_t *consumer, kh_record_t *out, size_t out_max,
                size_t want, int timeout_ms, bool commit);

/** Copies one polled message into rec. */
void kh_record_copy(kh_record_t *rec, const sl_msg_t *msg);

int64_t kh_now_ms(void);

/** Returns the value of one series of the rendered metrics, for example
 * "sluice_kafka_producer_queue_messages", or -1 when it is absent. */
double kh_metric_value(const char *series);

#endif
