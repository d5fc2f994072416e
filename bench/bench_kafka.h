/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The raw librdkafka baseline of the distributed benchmark: the same
 * readings, Avro-framed as the publisher frames them, produced and
 * consumed with plain librdkafka calls on the mock cluster, nothing else.
 */
#ifndef SLUICE_BENCH_BENCH_KAFKA_H
#define SLUICE_BENCH_BENCH_KAFKA_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "bench_pg.h"

/**
 * Creates topic (6 partitions) on mock, then produces readings 0..rows-1
 * of next (key sensor_id, acks=all, idempotent, linger.ms=5, as the Kafka
 * bus produces) and consumes them back with an assigned consumer
 * (fetch.wait.max.ms=1). It works in phases of at most 50,000 readings,
 * each produced, flushed and consumed before the next, because the mock
 * deletes old data per partition whether or not it was read. Returns the
 * seconds from the first produce to the last message consumed, or -1
 * after printing the error to stderr.
 */
double sl_bench_raw_kafka(rd_kafka_mock_cluster_t *mock, const char *topic,
                          size_t rows, sl_bench_reading_fn next, void *ctx);

#endif
