/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The DLQ handler's timer: a binary min-heap of (due time, sequence, row
 * id) and a hash table from row id to its current due time. The sequence
 * number, taken from a counter at each push, breaks ties between equal
 * due times in insertion order. Rescheduling an id pushes a new heap entry
 * and updates the table; the old entry no longer matches the table when it
 * reaches the top and is dropped there, which keeps rescheduling O(log n)
 * without a position index.
 */
#include <stdlib.h>
#include <string.h>

#include "pipeline/dlq.h"
#include "util/err.h"
#include "util/hash.h"

typedef struct timer_entry {
    int64_t due_ms;
    uint64_t seq;
    int64_t id;
} timer_entry_t;

/* One slot of the id table (open addressing, linear probing). id 0 marks
 * an empty slot: store row ids start at 1. */
typedef struct id_slot {
    int64_t id;
    int64_t due_ms;
} id_slot_t;

struct sl_dlq_timer {
    timer_entry_t *heap;
    size_t heap_len;
    size_t heap_cap;
    id_slot_t *slots;
    size_t slot_cap; /* a power of two */
    size_t id_count;
    uint64_t next_seq;
};

sl_dlq_timer_t *sl_dlq_timer_create(void)
{
    sl_dlq_timer_t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->slot_cap = 64;
    t->slots = calloc(t->slot_cap, sizeof(*t->slots));
    if (t->slots == NULL) {
        free(t);
        return NULL;
    }
    return t;
}

void sl_dlq_timer_destroy(sl_dlq_timer_t *t)
{
    if (t == NULL)
        return;
    free(t->heap);
    free(t->slots);
    free(t);
}

static size_t slot_of(const sl_dlq_timer_t *t, int64_t id)
{
    size_t mask = t->slot_cap - 1;
    size_t i = (size_t)sl_hash_fnv1a(&id, sizeof(id)) & mask;

    while (t->slots[i].id != 0 && t->slots[i].id != id)
        i = (i + 1) & mask;
    return i;
}

/* Doubles the id table. Returns SL_OK or SL_ENOMEM. */
static int grow_slots(sl_dlq_timer_t *t)
{
    id_slot_t *old = t->slots;
    size_t old_cap = t->slot_cap;

    t->slots = calloc(old_cap * 2, sizeof(*t->slots));
    if (t->slots == NULL) {
        t->slots = old;
        return SL_ENOMEM;
    }
    t->slot_cap = old_cap * 2;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].id != 0)
            t->slots[slot_of(t, old[i].id)] = old[i];
    }
    free(old);
    return SL_OK;
}

/* Removes id from the table, shifting later slots of its probe run back
 * so that lookups need no tombstones. */
static void remove_id(sl_dlq_timer_t *t, int64_t id)
{
    size_t mask = t->slot_cap - 1;
    size_t i = slot_of(t, id);

    if (t->slots[i].id == 0)
        return;
    t->slots[i].id = 0;
    t->id_count--;
    for (size_t j = (i + 1) & mask; t->slots[j].id != 0; j = (j + 1) & mask) {
        size_t home =
            (size_t)sl_hash_fnv1a(&t->slots[j].id, sizeof(int64_t)) & mask;
        /* Move slot j into the hole at i unless its home lies cyclically
         * in (i, j], where a lookup would still find it. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            t->slots[j].id = 0;
            i = j;
        }
    }
}

static bool entry_before(const timer_entry_t *a, const timer_entry_t *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void sift_up(sl_dlq_timer_t *t, size_t i)
{
    timer_entry_t e = t->heap[i];

    while (i > 0 && entry_before(&e, &t->heap[(i - 1) / 2])) {
        t->heap[i] = t->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    t->heap[i] = e;
}

static void sift_down(sl_dlq_timer_t *t, size_t i)
{
    timer_entry_t e = t->heap[i];

    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= t->heap_len)
            break;
        if (child + 1 < t->heap_len &&
            entry_before(&t->heap[child + 1], &t->heap[child]))
            child++;
        if (!entry_before(&t->heap[child], &e))
            break;
        t->heap[i] = t->heap[child];
        i = child;
    }
    t->heap[i] = e;
}

static void heap_remove_top(sl_dlq_timer_t *t)
{
    t->heap[0] = t->heap[--t->heap_len];
    if (t->heap_len > 0)
        sift_down(t, 0);
}

int sl_dlq_timer_schedule(sl_dlq_timer_t *t, int64_t id, int64_t due_ms)
{
    size_t i;

    if (t->heap_len == t->heap_cap) {
        size_t cap = t->heap_cap > 0 ? t->heap_cap * 2 : 64;
        timer_entry_t *heap = realloc(t->heap, cap * sizeof(*heap));
        if (heap == NULL)
            return SL_ENOMEM;
        t->heap = heap;
        t->heap_cap = cap;
    }
    /* Keep the table at most half full, so probe runs stay short. */
    if ((t->id_count + 1) * 2 > t->slot_cap && grow_slots(t) != SL_OK)
        return SL_ENOMEM;

    i = slot_of(t, id);
    if (t->slots[i].id == 0) {
        t->slots[i].id = id;
        t->id_count++;
    }
    t->slots[i].due_ms = due_ms;
    t->heap[t->heap_len] = (timer_entry_t){due_ms, t->next_seq++, id};
    sift_up(t, t->heap_len++);
    return SL_OK;
}

bool sl_dlq_timer_scheduled(const sl_dlq_timer_t *t, int64_t id,
                            int64_t *due_ms)
{
    size_t i = slot_of(t, id);

    if (t->slots[i].id == 0)
        return false;
    if (due_ms != NULL)
        *due_ms = t->slots[i].due_ms;
    return true;
}

/* Drops heap tops that a later schedule of their id replaced. */
static void drop_stale(sl_dlq_timer_t *t)
{
    while (t->heap_len > 0) {
        int64_t due;
        if (sl_dlq_timer_scheduled(t, t->heap[0].id, &due) &&
            due == t->heap[0].due_ms)
            return;
        heap_remove_top(t);
    }
}

int64_t sl_dlq_timer_next_due(sl_dlq_timer_t *t)
{
    drop_stale(t);
    return t->heap_len > 0 ? t->heap[0].due_ms : INT64_MAX;
}

bool sl_dlq_timer_pop_due(sl_dlq_timer_t *t, int64_t now_ms, int64_t *id,
                          int64_t *due_ms)
{
    drop_stale(t);
    if (t->heap_len == 0 || t->heap[0].due_ms > now_ms)
        return false;
    *id = t->heap[0].id;
    *due_ms = t->heap[0].due_ms;
    heap_remove_top(t);
    remove_id(t, *id);
    return true;
}

size_t sl_dlq_timer_count(const sl_dlq_timer_t *t)
{
    return t->id_count;
}
