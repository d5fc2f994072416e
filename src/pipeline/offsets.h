/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The next offset to commit per partition, collected while a polled batch
 * is processed and committed once its results are durable.
 */
#ifndef SLUICE_PIPELINE_OFFSETS_H
#define SLUICE_PIPELINE_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"

/* Partitions one batch may span: 4 topics of up to 64 partitions. */
#define SL_OFFSETS_MAX 256

typedef struct sl_offsets {
    struct {
        const char *topic; /* borrowed from the polled records */
        int32_t partition;
        int64_t next_offset;
    } items[SL_OFFSETS_MAX];
    size_t count;
} sl_offsets_t;

/** Empties the set. */
void sl_offsets_clear(sl_offsets_t *set);

/** Notes that msg is done: its partition may be committed past it. */
void sl_offsets_add(sl_offsets_t *set, const sl_msg_t *msg);

/** Commits every noted partition. Returns SL_OK or the first error. */
int sl_offsets_commit(const sl_offsets_t *set, sl_consumer_t *consumer);

#endif
