/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The producing side of the pipeline: encodes records with the schemas
 * registered for their topics and publishes them keyed as DESIGN fixes
 * (readings by sensor_id, events by user_id). Generators, replay and HTTP
 * ingest all publish through it.
 *
 * A publisher publishes each record on its own by default: a call returns
 * once the bus accepted the record, which on Kafka is one round trip per
 * record. With sl_publisher_set_batch it collects records and hands them
 * to the bus together, in call order, so records of one key keep their
 * order. A full batch goes to the bus without waiting for its outcome
 * (sl_bus_publish_start), and up to four such batches are awaited at
 * once. The oldest is settled when a fifth fills, and all of them at
 * sl_publisher_flush. Every record ends up counted in exactly one of the
 * sl_publisher_stats_t counters.
 *
 * A frame larger than sl_publisher_set_max_payload allows, or any record
 * the bus refuses for its size (SL_ETOOBIG), is not published: a digest
 * of it goes to dlq-messages instead (see sl_dlq_publish_oversized) and
 * the record counts as dead-lettered.
 */
#ifndef SLUICE_PIPELINE_PUBLISH_H
#define SLUICE_PIPELINE_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"
#include "model/record.h"
#include "schema/schema.h"

typedef struct sl_publisher sl_publisher_t;

/* Default of sl_publisher_set_max_payload: Kafka's default
 * message.max.bytes, which the decoder also enforces. */
#define SL_PUBLISH_MAX_PAYLOAD_DEFAULT SL_FRAME_MAX_BYTES

/* A batch is handed to the bus once its keys and values reach this many
 * bytes, whatever its record count, so frames of up to 1 MB do not pile
 * up in memory. */
#define SL_PUBLISH_BATCH_MAX_BYTES (1024 * 1024)

/* Counts of every record given to the publisher since its creation. */
typedef struct sl_publisher_stats {
    uint64_t published;     /* accepted by the bus */
    uint64_t failed;        /* refused by the encoder or the bus */
    uint64_t dead_lettered; /* too large; a digest went to dlq-messages */
    uint64_t queued;        /* in a batch not settled yet */
} sl_publisher_stats_t;

/* A batched record that did not reach its topic. Pointers are borrowed
 * for the duration of the report function. */
typedef struct sl_publish_report {
    const char *topic;
    const void *key;
    size_t key_len;
    size_t value_len;
    uint64_t tag; /* sl_publisher_set_tag when the record was queued */
    int status;   /* the bus's error, or SL_EREJECTED: dead-lettered */
} sl_publish_report_t;

typedef void (*sl_publish_report_fn)(void *ctx,
                                     const sl_publish_report_t *report);

/**
 * Creates a publisher. It registers the built-in schemas under
 * "sensor-readings-value" and "ecommerce-events-value" in reg (an existing
 * identical schema keeps its id). timeout_ms bounds each publish's wait on
 * a full partition (negative: wait forever).
 * Returns NULL on failure. One thread at a time; bus and reg outlive it.
 */
sl_publisher_t *sl_publisher_create(sl_bus_t *bus, sl_registry_t *reg,
                                    int timeout_ms);

/**
 * Publishes what is still queued (its failures are reported as by
 * sl_publisher_flush, so the report function's ctx must still be valid),
 * then frees the publisher. Accepts NULL.
 */
void sl_publisher_destroy(sl_publisher_t *pub);

/**
 * Sets how many records a batch collects before it goes to the bus.
 * max_records 0 or 1 turns batching off, which is the default. Publishes
 * what is queued first. Returns SL_OK, or the status of sl_publisher_flush.
 */
int sl_publisher_set_batch(sl_publisher_t *pub, size_t max_records);

/**
 * Sets the function called for each batched record that did not reach its
 * topic (fn NULL: such records are logged, the first 100 one by one and
 * then every 10,000th). ctx is passed to fn. Records refused before they
 * were queued are not reported: the sl_publish_* call returns their error.
 * A record is reported when its batch is settled, which may be during a
 * later sl_publish_* call: flush before changing fn or freeing ctx.
 */
void sl_publisher_set_report(sl_publisher_t *pub, sl_publish_report_fn fn,
                             void *ctx);

/** Sets the tag that reports carry for the records queued from now on,
 * for example the replay's line number. */
void sl_publisher_set_tag(sl_publisher_t *pub, uint64_t tag);

/** Sets the largest key plus value, in bytes, that is published;
 * max_bytes 0 restores SL_PUBLISH_MAX_PAYLOAD_DEFAULT. */
void sl_publisher_set_max_payload(sl_publisher_t *pub, size_t max_bytes);

/**
 * Hands the queued records to the bus and waits until each record given
 * so far was accepted or failed; failures are counted and reported. Call
 * it before a pause, such as a producer's sleep until its next record is
 * due, so records do not wait in the batch. Returns SL_OK when every
 * record settled since the last flush was published or dead-lettered,
 * else the first failed record's status.
 */
int sl_publisher_flush(sl_publisher_t *pub);

/** OUT: *out, the counts so far. */
void sl_publisher_stats(const sl_publisher_t *pub, sl_publisher_stats_t *out);

/**
 * Encodes and publishes a reading to sensor-readings.
 * Returns SL_OK once the bus accepted it (batched: once it is queued; a
 * later failure is reported), SL_EINVAL when it cannot be encoded (an enum
 * without symbol), or the bus's error. Batched, SL_ECLOSED means the bus
 * was closed and nothing more is queued.
 */
int sl_publish_reading(sl_publisher_t *pub, const sl_reading_t *rec);

/** Encodes and publishes a commerce event to ecommerce-events, as
 * sl_publish_reading. */
int sl_publish_event(sl_publisher_t *pub, const sl_event_t *ev);

/**
 * Publishes raw bytes unchanged, as captured frames are replayed, with the
 * returns of sl_publish_reading. A key plus value over the max payload is
 * not published: returns SL_EREJECTED once its digest is in dlq-messages,
 * or the bus's error when the digest could not be published.
 */
int sl_publish_frame(sl_publisher_t *pub, const char *topic, const void *key,
                     size_t key_len, const void *value, size_t value_len);

/** Returns the schema id used for readings / events. */
int32_t sl_publisher_reading_schema_id(const sl_publisher_t *pub);
int32_t sl_publisher_event_schema_id(const sl_publisher_t *pub);

#endif
