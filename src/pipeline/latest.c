/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The rows are kept densely, so they can be handed to the store as one
 * array, and found by sensor id through an open-addressing index of row
 * numbers at most half full.
 */
#include "pipeline/latest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/hash.h"

#define INITIAL_SLOTS 256

struct sl_latest_set {
    sl_reading_t *rows;
    size_t count;
    size_t capacity;   /* rows allocated */
    uint32_t *slots;   /* row number + 1, or 0 for an empty slot */
    size_t slot_count; /* a power of two */
};

sl_latest_set_t *sl_latest_set_create(void)
{
    sl_latest_set_t *set = calloc(1, sizeof(*set));

    if (set == NULL)
        return NULL;
    set->slots = calloc(INITIAL_SLOTS, sizeof(*set->slots));
    if (set->slots == NULL) {
        free(set);
        return NULL;
    }
    set->slot_count = INITIAL_SLOTS;
    return set;
}

void sl_latest_set_destroy(sl_latest_set_t *set)
{
    if (set == NULL)
        return;
    free(set->rows);
    free(set->slots);
    free(set);
}

/* Returns the slot of sensor_id: the one holding its row, or the empty
 * slot where it would go. */
static size_t find_slot(const sl_latest_set_t *set, const char *sensor_id)
{
    size_t mask = set->slot_count - 1;
    size_t i = (size_t)sl_hash_fnv1a(sensor_id, strlen(sensor_id)) & mask;

    while (set->slots[i] != 0 &&
           strcmp(set->rows[set->slots[i] - 1].sensor_id, sensor_id) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Doubles the index and places every row again. */
static int grow_slots(sl_latest_set_t *set)
{
    size_t old_count = set->slot_count;
    uint32_t *old = set->slots;

    set->slots = calloc(old_count * 2, sizeof(*set->slots));
    if (set->slots == NULL) {
        set->slots = old;
        return SL_ENOMEM;
    }
    set->slot_count = old_count * 2;
    for (size_t r = 0; r < set->count; r++)
        set->slots[find_slot(set, set->rows[r].sensor_id)] = (uint32_t)r + 1;
    free(old);
    return SL_OK;
}

int sl_latest_set_note(sl_latest_set_t *set, const sl_reading_t *rec)
{
    size_t slot = find_slot(set, rec->sensor_id);

    if (set->slots[slot] != 0) {
        sl_reading_t *current = &set->rows[set->slots[slot] - 1];

        if (rec->timestamp_ms > current->timestamp_ms)
            *current = *rec;
        return SL_OK;
    }
    if (set->count == set->capacity) {
        size_t capacity = set->capacity == 0 ? 64 : set->capacity * 2;
        sl_reading_t *rows = realloc(set->rows, capacity * sizeof(*rows));

        if (rows == NULL)
            return SL_ENOMEM;
        set->rows = rows;
        set->capacity = capacity;
    }
    if ((set->count + 1) * 2 > set->slot_count) {
        if (grow_slots(set) != SL_OK)
            return SL_ENOMEM;
        slot = find_slot(set, rec->sensor_id);
    }
    set->rows[set->count] = *rec;
    set->slots[slot] = (uint32_t)++set->count;
    return SL_OK;
}

size_t sl_latest_set_count(const sl_latest_set_t *set)
{
    return set->count;
}

const sl_reading_t *sl_latest_set_rows(const sl_latest_set_t *set)
{
    return set->rows;
}

void sl_latest_set_clear(sl_latest_set_t *set)
{
    if (set->count == 0)
        return;
    memset(set->slots, 0, set->slot_count * sizeof(*set->slots));
    set->count = 0;
}
