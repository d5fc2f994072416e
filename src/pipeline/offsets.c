/* SPDX-License-Identifier: Apache-2.0 */
#include "pipeline/offsets.h"

#include <assert.h>
#include <string.h>

#include "util/err.h"

void sl_offsets_clear(sl_offsets_t *set)
{
    set->count = 0;
}

void sl_offsets_add(sl_offsets_t *set, const sl_msg_t *msg)
{
    for (size_t i = 0; i < set->count; i++) {
        if (set->items[i].partition == msg->partition &&
            strcmp(set->items[i].topic, msg->topic) == 0) {
            if (msg->offset + 1 > set->items[i].next_offset)
                set->items[i].next_offset = msg->offset + 1;
            return;
        }
    }
    /* A consumer never holds more partitions than the limit allows. */
    assert(set->count < SL_OFFSETS_MAX);
    set->items[set->count].topic = msg->topic;
    set->items[set->count].partition = msg->partition;
    set->items[set->count].next_offset = msg->offset + 1;
    set->count++;
}

int sl_offsets_commit(const sl_offsets_t *set, sl_consumer_t *consumer)
{
    for (size_t i = 0; i < set->count; i++) {
        int rc = sl_consumer_commit(consumer, set->items[i].topic,
                                    set->items[i].partition,
                                    set->items[i].next_offset);
        if (rc != SL_OK)
            return rc;
    }
    return SL_OK;
}
