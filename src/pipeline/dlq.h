/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dead-letter path. A record that cannot be processed is published to
 * dlq-messages with its original key and value bytes unchanged and headers
 * that say where it came from and why it failed. The handler consumes
 * dlq-messages, keeps one dlq_errors row per failed source record, parks
 * permanent failures and retries the others by publishing them back to
 * their original topic after an exponential backoff.
 *
 * Failure classes: decode and validation are permanent (the same bytes
 * fail the same way), so they are parked at once and retried only when an
 * operator replays them. storage and processing are retryable.
 *
 * A retried record carries the same headers. When it fails again, the
 * processor keeps its original position and first-failure time and adds
 * one to the attempt, so its dlq_errors row stays the same row; when it is
 * stored, the processor marks that row resolved in the same transaction.
 *
 * A dlq_errors row is unique on its source position (topic, partition,
 * offset). On Kafka that is the record's offset, which names it for good,
 * so a redelivery after a crash or a rebalance finds the row it already
 * has. The in-process bus numbers offsets from 0 in every process, and its
 * input is replayed from the start after a crash, so there the offset is
 * the record's content offset (sl_dlq_content_offset): the same bytes get
 * the same row in every run, and other bytes get a row of their own.
 */
#ifndef SLUICE_PIPELINE_DLQ_H
#define SLUICE_PIPELINE_DLQ_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "store/store.h"

/* Header names on dlq-messages records and on retried records. Numbers
 * are decimal text; times are milliseconds since the Unix epoch. */
#define SL_DLQ_HDR_TOPIC "sluice.dlq.topic"
#define SL_DLQ_HDR_PARTITION "sluice.dlq.partition"
#define SL_DLQ_HDR_OFFSET "sluice.dlq.offset"
#define SL_DLQ_HDR_CLASS "sluice.dlq.class"
#define SL_DLQ_HDR_ERROR "sluice.dlq.error"
#define SL_DLQ_HDR_ATTEMPT "sluice.dlq.attempt"
#define SL_DLQ_HDR_FIRST_FAILURE "sluice.dlq.first_failure_ms"
#define SL_DLQ_HDR_LAST_FAILURE "sluice.dlq.last_failure_ms"
/* Only on a dead-letter record that keeps just an excerpt of a value too
 * large to copy (sl_dlq_publish_excerpt, sl_dlq_publish_oversized): the
 * whole value's size in bytes and its SHA-256 as 64 lowercase hex digits,
 * so the original can be matched in a producer's logs or spool. */
#define SL_DLQ_HDR_ORIGINAL_SIZE "sluice.dlq.original_size"
#define SL_DLQ_HDR_SHA256 "sluice.dlq.sha256"

/* Bytes of an oversized value kept in its dead-letter digest. */
#define SL_DLQ_EXCERPT_BYTES 1024

/* Where a failed record came from, read from the headers of a retry. */
typedef struct sl_dlq_origin {
    char topic[SL_ID_MAX + 1];
    int32_t partition;
    int64_t offset;
    int32_t attempt; /* processing attempts that failed so far, >= 1 */
    int64_t first_failure_ms;
} sl_dlq_origin_t;

/**
 * Computes the content offset of a record: a number in [0, INT64_MAX] that
 * depends only on its key and value bytes. It is the first 8 bytes of the
 * SHA-256 of (1 byte: 1 when key is not NULL, else 0; the key length as 8
 * bytes big-endian; the key; the value), read big-endian, with the top bit
 * cleared. A NULL value counts as an empty one. Byte-identical records of
 * one topic and key therefore share a dead-letter row, as identical
 * readings share a stored row. OUT: *out. Returns SL_OK, or SL_EIO when
 * hashing failed.
 */
int sl_dlq_content_offset(const void *key, size_t key_len, const void *value,
                          size_t value_len, int64_t *out);

/**
 * Publishes a copy of orig to dlq-messages, keyed by its original key,
 * for a failure at now_ms. origin is NULL for a record's first failure,
 * and the copy then names orig's topic, partition and offset; on the
 * in-process bus (sl_bus_is_memory) the offset is orig's content offset
 * instead. For a retried record origin is what sl_dlq_origin_from_msg()
 * read, and the copy keeps its position and first-failure time with
 * attempt + 1. error is "reason" or "reason: detail". Returns SL_OK once
 * the bus accepted it, SL_EIO when hashing failed, or the bus's error: the
 * caller must then not commit orig.
 */
int sl_dlq_publish(sl_bus_t *bus, const sl_msg_t *orig,
                   const sl_dlq_origin_t *origin, sl_dlq_class_t cls,
                   const char *error, int64_t now_ms, int timeout_ms);

/**
 * Publishes a dead-letter copy of orig like sl_dlq_publish, with the same
 * position (on the in-process bus, the content offset of the whole value),
 * but with only the first SL_DLQ_EXCERPT_BYTES bytes of its value (all of
 * it when shorter) and two more headers, SL_DLQ_HDR_ORIGINAL_SIZE and
 * SL_DLQ_HDR_SHA256, describing the whole value. The error header is error
 * followed by "; sha256=...; the payload holds its first N bytes", so the
 * dlq_errors row keeps the hash too. For values too large to copy into
 * dlq-messages: a retry of the excerpt cannot succeed, so use a permanent
 * class. Returns SL_OK once the bus accepted it, SL_EIO when hashing
 * failed, or the bus's error: the caller must then not commit orig.
 */
int sl_dlq_publish_excerpt(sl_bus_t *bus, const sl_msg_t *orig,
                           const sl_dlq_origin_t *origin, sl_dlq_class_t cls,
                           const char *error, int64_t now_ms, int timeout_ms);

/**
 * Publishes the digest of a record that was never published because its
 * value of value_len bytes is over max_bytes, the most the bus takes.
 * The digest goes to dlq-messages keyed by key, and its value holds only
 * the first SL_DLQ_EXCERPT_BYTES bytes of value. Its headers name topic
 * with partition and offset -1 (the record has no position, and the store
 * never merges such rows), class validation, error "payload_too_large:
 * ..." with the size, the limit and the SHA-256, attempt 1, and
 * SL_DLQ_HDR_ORIGINAL_SIZE and SL_DLQ_HDR_SHA256. On the in-process bus
 * the offset is the content offset of key and the whole value instead, so
 * that replaying the same input after a crash adds no second row.
 * Returns SL_OK once the bus accepted it, SL_EIO when hashing failed, or
 * the bus's error.
 */
int sl_dlq_publish_oversized(sl_bus_t *bus, const char *topic, const void *key,
                             size_t key_len, const void *value,
                             size_t value_len, size_t max_bytes, int64_t now_ms,
                             int timeout_ms);

/**
 * Publishes a dead-letter row's record back to its original topic for a
 * retry, with the original key and value and the row's headers; attempt
 * is entry->retry_count, the failures so far once the claim counted this
 * retry. Returns SL_OK or the bus's error.
 */
int sl_dlq_publish_retry(sl_bus_t *bus, const sl_dlq_entry_t *entry,
                         int timeout_ms);

/**
 * Reads the origin headers of a record. Returns true and fills *out when
 * msg carries valid ones (a retry published by the handler), false when
 * it carries none or malformed ones (a first delivery).
 */
bool sl_dlq_origin_from_msg(const sl_msg_t *msg, sl_dlq_origin_t *out);

/**
 * Reads a dlq-messages record back into an entry. key and payload point
 * into msg. status is dead for permanent classes and pending otherwise;
 * next_attempt_ms is 0. Returns SL_OK, or SL_EINVAL when a required
 * header is missing or malformed.
 */
int sl_dlq_entry_from_msg(const sl_msg_t *msg, sl_dlq_entry_t *out);

/** Parses a class name ("decode", ...). Returns SL_OK or SL_EINVAL. */
int sl_dlq_class_parse(const char *name, size_t len, sl_dlq_class_t *out);

/** Returns true for the classes that a retry cannot fix. */
bool sl_dlq_class_permanent(sl_dlq_class_t cls);

/* The retry policy. */
typedef struct sl_dlq_policy {
    int64_t base_ms; /* delay before the first retry */
    int64_t cap_ms;  /* longest delay */
    double jitter;   /* spread of each delay: 0.2 is +-20 % */
    int max_retries; /* retries before a record is parked */
} sl_dlq_policy_t;

/** Fills p with the defaults: 1 s, 5 min, 20 %, 5 retries. */
void sl_dlq_policy_init(sl_dlq_policy_t *p);

/**
 * Returns the delay before retry number retries + 1 (retries done so far:
 * 0 before the first): min(cap, base * 2^retries), then scaled by
 * 1 + jitter * (2u - 1), so it lies within +-jitter of the unjittered
 * delay. u is uniform in [0, 1). Never negative.
 */
int64_t sl_dlq_backoff_ms(const sl_dlq_policy_t *p, int retries, double u);

/* ---- timer heap (dlq_timer.c) ---------------------------------------- */

/*
 * A binary min-heap of (due time, row id): the handler's pending retries.
 * Entries with equal due times pop in insertion order. An id is scheduled
 * at most once: scheduling it again replaces its due time (the old heap
 * entry is skipped when it surfaces). Not thread-safe.
 */
typedef struct sl_dlq_timer sl_dlq_timer_t;

sl_dlq_timer_t *sl_dlq_timer_create(void);

/** Frees the heap. Accepts NULL. */
void sl_dlq_timer_destroy(sl_dlq_timer_t *t);

/** Schedules id at due_ms, replacing an earlier schedule of id.
 * Returns SL_OK or SL_ENOMEM. */
int sl_dlq_timer_schedule(sl_dlq_timer_t *t, int64_t id, int64_t due_ms);

/** Returns true when id is scheduled; OUT: *due_ms (may be NULL). */
bool sl_dlq_timer_scheduled(const sl_dlq_timer_t *t, int64_t id,
                            int64_t *due_ms);

/** Returns the earliest due time, or INT64_MAX when nothing is scheduled. */
int64_t sl_dlq_timer_next_due(sl_dlq_timer_t *t);

/**
 * Removes the earliest entry due at or before now_ms. OUT: *id, *due_ms.
 * Returns true, or false when nothing is due.
 */
bool sl_dlq_timer_pop_due(sl_dlq_timer_t *t, int64_t now_ms, int64_t *id,
                          int64_t *due_ms);

/** Returns how many ids are scheduled. */
size_t sl_dlq_timer_count(const sl_dlq_timer_t *t);

/* ---- handler (dlq_handler.c) ----------------------------------------- */

/* Returns the current time in ms since the Unix epoch. */
typedef int64_t (*sl_dlq_clock_fn)(void *ctx);
/* Returns a double uniform in [0, 1). */
typedef double (*sl_dlq_random_fn)(void *ctx);

typedef struct sl_dlq_handler_config {
    sl_bus_t *bus;
    const char *store_location; /* the handler opens its own handle */
    const char *group;          /* default "sluice-dlq-handler" */
    sl_dlq_policy_t policy;
    int scan_interval_ms;  /* store rescans for replayed rows; default 1000 */
    sl_dlq_clock_fn clock; /* NULL: the wall clock */
    void *clock_ctx;
    sl_dlq_random_fn random; /* NULL: a generator seeded from the clock */
    void *random_ctx;
} sl_dlq_handler_config_t;

void sl_dlq_handler_config_init(sl_dlq_handler_config_t *cfg);

typedef struct sl_dlq_handler sl_dlq_handler_t;

/**
 * Opens the store, schedules the rows a previous run left pending or in
 * flight, joins the group for dlq-messages and starts the handler thread.
 * Returns NULL with the reason in err.
 */
sl_dlq_handler_t *sl_dlq_handler_start(const sl_dlq_handler_config_t *cfg,
                                       char *err, size_t err_size);

/** Returns how many dlq-messages records are not yet recorded. */
int64_t sl_dlq_handler_lag(sl_dlq_handler_t *h);

/**
 * Stops publishing retries, so shutdown can drain the bus; scheduled rows
 * stay pending in the store for the next start. Thread-safe.
 */
void sl_dlq_handler_quiesce(sl_dlq_handler_t *h);

/** Joins the thread once the bus is closed and drained; frees. NULL ok. */
void sl_dlq_handler_stop(sl_dlq_handler_t *h);

#endif
