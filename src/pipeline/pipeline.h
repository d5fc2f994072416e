/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The consuming stages: the processor (decode, validate, store, window)
 * and the helpers the stages share.
 */
#ifndef SLUICE_PIPELINE_PIPELINE_H
#define SLUICE_PIPELINE_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "pipeline/offsets.h"
#include "schema/schema.h"
#include "store/store.h"

/**
 * Writes a batch, retrying with exponential backoff (100 ms doubling to
 * 5 s) for as long as the store is unavailable, so an outage pauses the
 * stage instead of sending healthy records to the dead-letter queue.
 * Logs the outage once and its end once. component names the stage.
 * Returns SL_OK once the batch is committed, or the store's error when
 * sl_pipeline_abandon_writes() was called during an outage.
 */
int sl_pipeline_store_write(sl_store_t *st, const sl_store_batch_t *batch,
                            sl_store_result_t *result,
                            sl_store_reject_cb reject, void *reject_ctx,
                            const char *component);

/**
 * Makes every stage stop retrying store writes: called at shutdown when
 * the store stayed unavailable past the drain timeout, so the process can
 * exit. Batches not written are then not committed either.
 */
void sl_pipeline_abandon_writes(void);

/**
 * Commits a batch's offsets, logging a failure: a partition moved away by
 * a rebalance is redelivered to its new owner and absorbed by the store.
 */
void sl_pipeline_commit(sl_consumer_t *consumer, const sl_offsets_t *offsets,
                        const char *component);

typedef struct sl_processor sl_processor_t;

typedef struct sl_processor_config {
    sl_bus_t *bus;
    sl_registry_t *registry;
    const char *store_location; /* the processor opens its own handle */
    const char *group;          /* consumer group; default "sluice-processor" */
    int batch_size;             /* records per poll and transaction */
    int poll_timeout_ms;
    int64_t window_ms;
    int64_t lateness_ms;
    /* Largest value decoded, 1..SL_FRAME_MAX_BYTES (the default). A larger
     * one is dead-lettered as payload_too_large, as an excerpt. */
    size_t max_payload_bytes;
    /* Called on the processing thread right after each store commit with
     * the batch's valid readings (including any the store rejected), before
     * their offsets are committed. NULL: not called. Benchmarks use it to
     * time each reading from creation to stored. */
    void (*on_stored)(void *ctx, const sl_reading_t *readings, size_t count);
    void *on_stored_ctx;
    /* Most time, in ms, between a stored reading and the write of its
     * sensor's latest row (default 250); offsets wait for that write. */
    int latest_interval_ms;
} sl_processor_config_t;

/* Counters of one processor, readable from any thread. */
typedef struct sl_processor_stats {
    uint64_t consumed;
    uint64_t stored;     /* readings and events newly inserted */
    uint64_t duplicates; /* already stored: ignored */
    uint64_t dead_lettered;
    uint64_t late;
    uint64_t aggregates;
} sl_processor_stats_t;

void sl_processor_config_init(sl_processor_config_t *cfg);

/**
 * Opens the store, joins the group for sensor-readings and
 * ecommerce-events and starts the processing thread.
 * Returns NULL with the reason in err.
 */
sl_processor_t *sl_processor_start(const sl_processor_config_t *cfg, char *err,
                                   size_t err_size);

/** Returns records of its topics not yet committed. Thread-safe. */
int64_t sl_processor_lag(sl_processor_t *proc);

/** Copies the counters. Thread-safe. */
void sl_processor_stats(sl_processor_t *proc, sl_processor_stats_t *out);

/**
 * Waits until the bus is closed and every accepted record is processed,
 * writes the open windows, joins the thread and frees. Accepts NULL.
 */
void sl_processor_stop(sl_processor_t *proc);

#endif
