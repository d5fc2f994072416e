/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dead-letter path. A record that cannot be processed is published to
 * dlq-messages with its original key and value bytes unchanged and headers
 * that say where it came from and why it failed. The recorder consumes
 * dlq-messages and keeps one dlq_errors row per failed source record, so
 * operators can see and replay it.
 */
#ifndef SLUICE_PIPELINE_DLQ_H
#define SLUICE_PIPELINE_DLQ_H

#include <stdint.h>

#include "bus/bus.h"
#include "store/store.h"

/* Header names on dlq-messages records. Numbers are decimal text. */
#define SL_DLQ_HDR_TOPIC "sluice.dlq.topic"
#define SL_DLQ_HDR_PARTITION "sluice.dlq.partition"
#define SL_DLQ_HDR_OFFSET "sluice.dlq.offset"
#define SL_DLQ_HDR_CLASS "sluice.dlq.class"
#define SL_DLQ_HDR_ERROR "sluice.dlq.error"
#define SL_DLQ_HDR_ATTEMPT "sluice.dlq.attempt"
#define SL_DLQ_HDR_FIRST_FAILURE "sluice.dlq.first_failure_ms"
#define SL_DLQ_HDR_LAST_FAILURE "sluice.dlq.last_failure_ms"

/**
 * Publishes a copy of orig to dlq-messages, keyed by its original key.
 * error is "reason" or "reason: detail". Returns SL_OK once the bus
 * accepted it, or the bus's error: the caller must then not commit orig.
 */
int sl_dlq_publish(sl_bus_t *bus, const sl_msg_t *orig, sl_dlq_class_t cls,
                   const char *error, int timeout_ms);

/**
 * Reads a dlq-messages record back into an entry. key and payload point
 * into msg. Returns SL_OK, or SL_EINVAL when a required header is missing
 * or malformed.
 */
int sl_dlq_entry_from_msg(const sl_msg_t *msg, sl_dlq_entry_t *out);

/** Parses a class name ("decode", ...). Returns SL_OK or SL_EINVAL. */
int sl_dlq_class_parse(const char *name, size_t len, sl_dlq_class_t *out);

typedef struct sl_dlq_recorder sl_dlq_recorder_t;

/**
 * Starts a thread that records every dlq-messages record in dlq_errors,
 * committing bus offsets after the store commit. Returns NULL with the
 * reason in err.
 */
sl_dlq_recorder_t *sl_dlq_recorder_start(sl_bus_t *bus,
                                         const char *store_location, char *err,
                                         size_t err_size);

/** Returns how many dlq-messages records are not yet recorded. */
int64_t sl_dlq_recorder_lag(sl_dlq_recorder_t *rec);

/** Joins the thread once the bus is closed and drained; frees. NULL ok. */
void sl_dlq_recorder_stop(sl_dlq_recorder_t *rec);

#endif
