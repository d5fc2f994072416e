/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The distributed set-up shared by sluice_bench_distributed and
 * `sluice bench --mode distributed`: a throwaway PostgreSQL cluster
 * (tests/support/pg_harness.c), librdkafka's mock cluster in this process
 * with the pipeline's topics, a Kafka bus for the producer and one for the
 * processor stage, and the processor itself. Also the process
 * measurements both report.
 */
#ifndef SLUICE_BENCH_BENCH_DIST_H
#define SLUICE_BENCH_BENCH_DIST_H

#include <stdbool.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "bus/bus.h"
#include "pg_harness.h"
#include "pipeline/pipeline.h"
#include "pipeline/publish.h"

#define SL_BENCH_DIST_PARTITIONS 6
#define SL_BENCH_DIST_CHUNK 5000 /* readings per publisher batch */

/* One distributed set-up. Fill the settings, zero the rest. */
typedef struct sl_bench_dist {
    /* Settings. */
    int batch;         /* the processor's batch size */
    int fetch_wait_ms; /* the consumers' fetch.wait.max.ms */
    void (*on_stored)(void *ctx, const sl_reading_t *readings, size_t count);
    void *on_stored_ctx;
    /* Parts, NULL until started. */
    sl_pg_harness_t pg;
    bool pg_started;
    rd_kafka_t *mock_host;
    rd_kafka_mock_cluster_t *mock;
    sl_bus_t *producer_bus;
    sl_bus_t *processor_bus;
    sl_registry_t *registry;
    sl_publisher_t *publisher; /* on producer_bus, batched */
    sl_processor_t *proc;
} sl_bench_dist_t;

/** Starts PostgreSQL (initdb in a temporary folder, unix socket) and
 * migrates it. Returns 0, or -1 after printing why. */
int sl_bench_dist_start_store(sl_bench_dist_t *r);

/** Starts the mock cluster, the buses, the publisher and the processor
 * (on r->pg). Returns 0, or -1 after printing why. */
int sl_bench_dist_start_pipeline(sl_bench_dist_t *r);

/** Opens another Kafka bus on the started mock cluster whose new consumer
 * groups start at the end of each partition, as `sluice api` does for its
 * WebSocket hub. Returns NULL after printing why. */
sl_bus_t *sl_bench_dist_live_bus(const sl_bench_dist_t *r,
                                 const char *client_id);

/** Stops and frees whatever was started, PostgreSQL last. */
void sl_bench_dist_stop(sl_bench_dist_t *r);

/** Returns the CPU seconds (user + system) of this process so far. */
double sl_bench_self_cpu_s(void);

/** Returns the peak resident set size of this process in MiB. */
double sl_bench_peak_rss_mb(void);

/** Returns the CPU seconds of the PostgreSQL server of h: the postmaster
 * and its live children (backends and workers). */
double sl_bench_server_cpu_s(const sl_pg_harness_t *h);

#endif
