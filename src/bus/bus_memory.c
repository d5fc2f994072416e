/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-process bus of the standalone mode: every topic partition is an
 * append-only log in memory, and consumer groups track committed offsets
 * as Kafka's do, so stages behave the same as over bus_kafka.c.
 *
 * Retention: a record is freed once every group subscribed to its topic has
 * committed past it and no consumer still borrows it from its last poll.
 * A group keeps its offsets, and so holds records back, after its last
 * consumer leaves. A topic that no group ever subscribed to keeps every
 * record. Either way a full partition makes publishers wait and then fail
 * with SL_EFULL, so memory stays bounded and nothing is dropped silently.
 *
 * Locks, outer to inner: bus->mu (groups, members, rebalancing), then
 * bus->topics_lock (the topic table), then one partition's mu (its log,
 * cursors and leases), then one consumer's mu (its wake-up state and pending
 * assignment). No thread holds two partition or two consumer locks at once.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/bus.h"
#include "bus/bus_int.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#define LOG_COMPONENT "bus"

/* First ring size of a partition. The ring doubles up to capacity. */
#define RING_INITIAL_SLOTS 64

typedef struct mem_consumer mem_consumer_t;
typedef struct mem_group mem_group_t;
typedef struct mem_partition mem_partition_t;

/* One accepted record. Key, value, header names and header values follow
 * the header array in the same allocation. */
typedef struct mem_record {
    int64_t timestamp_ms;
    size_t bytes;    /* key + value + header bytes, counted against max_bytes */
    const void *key; /* NULL when published with a NULL key */
    size_t key_len;
    const void *value; /* NULL when published with a NULL value */
    size_t value_len;
    size_t header_count;
    sl_header_t headers[];
} mem_record_t;

/* A group's state on one partition. Guarded by the partition's mu. */
typedef struct mem_cursor {
    struct mem_cursor *next; /* next cursor on the same partition */
    mem_group_t *group;
    int64_t committed;     /* next offset to read; -1 until a commit */
    mem_consumer_t *owner; /* member the partition is assigned to, or NULL */
    uint64_t epoch;        /* incremented whenever owner changes */
} mem_cursor_t;

/* Records a consumer lent out from one partition in its last poll. While
 * linked, the partition keeps every record from `from` on. */
typedef struct mem_lease {
    struct mem_lease *prev;
    struct mem_lease *next;
    mem_partition_t *part; /* NULL while the lease is not linked */
    int64_t from;
} mem_lease_t;

struct mem_partition {
    pthread_mutex_t mu;
    pthread_cond_t not_full; /* publishers wait here for room */
    const char *topic_name;
    int32_t id;
    bool closed;
    mem_record_t **ring;
    size_t ring_slots;
    size_t head;  /* ring slot of offset `base` */
    int64_t base; /* log start: the oldest retained offset */
    int64_t end;  /* offset the next record gets */
    size_t bytes;
    mem_cursor_t *cursors; /* one per subscribed group */
    mem_lease_t *leases;
};

typedef struct mem_topic {
    char *name;
    int32_t partition_count;
    int32_t parts_ready; /* partitions whose locks were initialised */
    mem_partition_t parts[];
} mem_topic_t;

/* A group's subscription to one topic, with one cursor per partition. */
typedef struct mem_subscription {
    struct mem_subscription *next;
    mem_topic_t *topic;
    mem_cursor_t cursors[];
} mem_subscription_t;

struct mem_group {
    mem_group_t *next;
    char *name;
    mem_subscription_t *subs; /* in order of first subscription */
    mem_consumer_t *members;  /* in join order */
};

/* One partition assigned to a consumer. */
typedef struct mem_assignment {
    mem_partition_t *part;
    mem_cursor_t *cursor;
    uint64_t epoch;   /* cursor epoch when assigned; a change means revoked */
    int64_t position; /* next offset to fetch; -1 resolves to committed */
} mem_assignment_t;

typedef struct mem_bus {
    sl_bus_t base;
    sl_bus_memory_config_t cfg;
    atomic_bool closed;

    pthread_rwlock_t topics_lock;
    mem_topic_t **topics;
    size_t topic_count;
    size_t topic_slots;

    pthread_mutex_t mu;
    mem_group_t *groups;
    size_t consumer_count;
    uint64_t next_consumer_id;
} mem_bus_t;

struct mem_consumer {
    sl_consumer_t base;
    uint64_t id;
    mem_group_t *group;
    mem_consumer_t *member_next;
    size_t topic_count;
    mem_subscription_t **subs; /* one per subscribed topic */

    /* Used by the consumer's thread only. */
    size_t assign_max; /* topic_count * partitions */
    mem_assignment_t *assign;
    size_t assign_count;
    mem_assignment_t *scratch;
    mem_lease_t *leases; /* leases[i] belongs to assign[i] */
    size_t next_first;   /* assignment the next fetch starts at */

    /* Written by rebalancing under bus->mu. */
    mem_assignment_t *staged;
    size_t staged_count;

    /* Guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    uint64_t wake_seq; /* incremented by every wake-up */
    mem_assignment_t *pending;
    size_t pending_count;
    bool has_pending;

    /* Set while the consumer is inside poll, so that publishers skip the
     * wake-up when nobody waits. */
    atomic_bool waiting;

    mem_assignment_t *arrays; /* the block behind the four arrays above */
};

static const sl_bus_ops_t mem_ops;

/* Kafka's default message.max.bytes. */
#define MEM_DEFAULT_MAX_RECORD_BYTES 1000000

void sl_bus_memory_config_init(sl_bus_memory_config_t *cfg)
{
    cfg->partitions = 6;
    cfg->partition_capacity = 65536;
    cfg->partition_max_bytes = (size_t)64 << 20;
    cfg->max_record_bytes = MEM_DEFAULT_MAX_RECORD_BYTES;
}

/* Key, value and header bytes, measured as the Kafka bus measures them
 * for its record limit. */
static size_t record_size(size_t key_len, size_t value_len,
                          const sl_header_t *headers, size_t header_count)
{
    size_t size = key_len + value_len;

    for (size_t i = 0; i < header_count; i++)
        size += strlen(headers[i].name) + headers[i].value_len;
    return size;
}

static void deadline_after(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Waits on cond until signalled or until deadline (NULL: no deadline).
 * Returns false on timeout. */
static bool cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *mu,
                            const struct timespec *deadline)
{
    if (deadline == NULL) {
        pthread_cond_wait(cond, mu);
        return true;
    }
    return pthread_cond_timedwait(cond, mu, deadline) != ETIMEDOUT;
}

/* ---------------------------------------------------------------- records */

static bool size_add(size_t *acc, size_t n)
{
    return !__builtin_add_overflow(*acc, n, acc);
}

static void *copy_bytes(char **cursor, const void *src, size_t len)
{
    void *dst = *cursor;

    if (src == NULL)
        return NULL;
    if (len > 0)
        memcpy(dst, src, len);
    *cursor += len;
    return dst;
}

/* Copies key, value and headers into one allocation. Returns NULL when the
 * allocation fails or the sizes overflow. */
static mem_record_t *record_create(const void *key, size_t key_len,
                                   const void *value, size_t value_len,
                                   const sl_header_t *headers,
                                   size_t header_count)
{
    size_t payload = 0, size = sizeof(mem_record_t);
    mem_record_t *rec;
    char *p;
    bool ok = size_add(&payload, key_len) && size_add(&payload, value_len);

    for (size_t i = 0; ok && i < header_count; i++)
        ok = size_add(&payload, strlen(headers[i].name) + 1) &&
             size_add(&payload, headers[i].value_len);
    ok = ok && size_add(&size, header_count * sizeof(sl_header_t)) &&
         size_add(&size, payload);
    if (!ok || (rec = malloc(size)) == NULL)
        return NULL;

    rec->bytes = payload;
    rec->header_count = header_count;
    p = (char *)&rec->headers[header_count];
    rec->key = copy_bytes(&p, key, key_len);
    rec->key_len = key_len;
    rec->value = copy_bytes(&p, value, value_len);
    rec->value_len = value_len;
    for (size_t i = 0; i < header_count; i++) {
        sl_header_t *h = &rec->headers[i];

        h->name = copy_bytes(&p, headers[i].name, strlen(headers[i].name) + 1);
        h->value = copy_bytes(&p, headers[i].value, headers[i].value_len);
        h->value_len = headers[i].value_len;
    }
    return rec;
}

/* ------------------------------------------------------------- partitions */

static mem_record_t *partition_record_at(const mem_partition_t *part,
                                         int64_t offset)
{
    size_t index = (size_t)(offset - part->base);

    assert(offset >= part->base && offset < part->end);
    return part->ring[(part->head + index) % part->ring_slots];
}

static bool partition_full(const mem_partition_t *part,
                           const sl_bus_memory_config_t *cfg, size_t bytes)
{
    size_t count = (size_t)(part->end - part->base);

    /* part->bytes never exceeds the limit, so the subtraction is safe. */
    return count >= cfg->partition_capacity ||
           bytes > cfg->partition_max_bytes - part->bytes;
}

/* Doubles the ring up to capacity, keeping records in offset order. */
static int partition_grow(mem_partition_t *part,
                          const sl_bus_memory_config_t *cfg)
{
    size_t count = (size_t)(part->end - part->base);
    size_t slots =
        part->ring_slots == 0 ? RING_INITIAL_SLOTS : part->ring_slots * 2;
    mem_record_t **ring;

    if (slots > cfg->partition_capacity)
        slots = cfg->partition_capacity;
    ring = malloc(slots * sizeof(*ring));
    if (ring == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < count; i++)
        ring[i] = part->ring[(part->head + i) % part->ring_slots];
    free(part->ring);
    part->ring = ring;
    part->ring_slots = slots;
    part->head = 0;
    return SL_OK;
}

static void consumer_wake(mem_consumer_t *c)
{
    pthread_mutex_lock(&c->mu);
    c->wake_seq++;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->mu);
}

/* Wakes the owners of this partition that wait in poll. The caller holds
 * part->mu, which keeps each owner alive: a consumer is unassigned from
 * every cursor under this lock before it is freed. */
static void partition_wake_owners(mem_partition_t *part)
{
    for (mem_cursor_t *cur = part->cursors; cur != NULL; cur = cur->next) {
        if (cur->owner != NULL && atomic_load(&cur->owner->waiting))
            consumer_wake(cur->owner);
    }
}

/* Frees the records below the retention floor and wakes publishers when
 * that made room. The caller holds part->mu. */
static void partition_trim(mem_partition_t *part)
{
    int64_t floor = part->end;
    int64_t freed_from = part->base;

    /* With no group subscribed, nobody will ever commit: keep the records
     * until the partition fills up. */
    if (part->cursors == NULL)
        return;
    for (mem_cursor_t *cur = part->cursors; cur != NULL; cur = cur->next) {
        int64_t pos = cur->committed >= 0 ? cur->committed : part->base;
        if (pos < floor)
            floor = pos;
    }
    for (mem_lease_t *lease = part->leases; lease != NULL; lease = lease->next)
        if (lease->from < floor)
            floor = lease->from;

    while (part->base < floor) {
        mem_record_t *rec = part->ring[part->head];

        part->ring[part->head] = NULL;
        part->bytes -= rec->bytes;
        free(rec);
        part->head = (part->head + 1) % part->ring_slots;
        part->base++;
    }
    if (part->base > freed_from)
        pthread_cond_broadcast(&part->not_full);
}

static void lease_link(mem_lease_t *lease, mem_partition_t *part, int64_t from)
{
    lease->part = part;
    lease->from = from;
    lease->prev = NULL;
    lease->next = part->leases;
    if (part->leases != NULL)
        part->leases->prev = lease;
    part->leases = lease;
}

/* Ends a lease and frees what it held back. The caller holds part->mu. */
static void lease_unlink(mem_lease_t *lease)
{
    mem_partition_t *part = lease->part;

    if (lease->prev != NULL)
        lease->prev->next = lease->next;
    else
        part->leases = lease->next;
    if (lease->next != NULL)
        lease->next->prev = lease->prev;
    lease->part = NULL;
    partition_trim(part);
}

/* Waits until the partition has room for bytes more. The caller holds
 * part->mu. Returns SL_OK, SL_EFULL after timeout_ms, or SL_ECLOSED. */
static int partition_wait_room(mem_partition_t *part,
                               const sl_bus_memory_config_t *cfg, size_t bytes,
                               int timeout_ms)
{
    struct timespec deadline;
    bool have_deadline = false;

    while (!part->closed && partition_full(part, cfg, bytes)) {
        if (timeout_ms == 0)
            return SL_EFULL;
        if (timeout_ms > 0 && !have_deadline) {
            deadline_after(&deadline, timeout_ms);
            have_deadline = true;
        }
        if (!cond_wait_until(&part->not_full, &part->mu,
                             have_deadline ? &deadline : NULL) &&
            !part->closed && partition_full(part, cfg, bytes))
            return SL_EFULL;
    }
    return part->closed ? SL_ECLOSED : SL_OK;
}

/* Appends rec, which the partition then owns. The caller holds part->mu
 * and has checked for room. */
static int partition_append(mem_partition_t *part,
                            const sl_bus_memory_config_t *cfg,
                            mem_record_t *rec, int64_t *offset_out)
{
    size_t count = (size_t)(part->end - part->base);

    if (count == part->ring_slots && partition_grow(part, cfg) != SL_OK)
        return SL_ENOMEM;
    part->ring[(part->head + count) % part->ring_slots] = rec;
    rec->timestamp_ms = sl_time_now_ms();
    part->bytes += rec->bytes;
    if (offset_out != NULL)
        *offset_out = part->end;
    part->end++;
    partition_wake_owners(part);
    return SL_OK;
}

/* ----------------------------------------------------------------- topics */

static void topic_destroy(mem_topic_t *topic)
{
    if (topic == NULL)
        return;
    for (int32_t i = 0; i < topic->parts_ready; i++) {
        mem_partition_t *part = &topic->parts[i];

        while (part->base < part->end) {
            free(part->ring[part->head]);
            part->head = (part->head + 1) % part->ring_slots;
            part->base++;
        }
        free(part->ring);
        pthread_cond_destroy(&part->not_full);
        pthread_mutex_destroy(&part->mu);
    }
    free(topic->name);
    free(topic);
}

static mem_topic_t *topic_create(const char *name, int32_t partitions,
                                 bool closed)
{
    mem_topic_t *topic;

    topic = calloc(1, sizeof(*topic) +
                          (size_t)partitions * sizeof(mem_partition_t));
    if (topic == NULL)
        return NULL;
    topic->name = strdup(name);
    topic->partition_count = partitions;
    if (topic->name == NULL)
        goto err;
    for (int32_t i = 0; i < partitions; i++) {
        mem_partition_t *part = &topic->parts[i];

        if (pthread_mutex_init(&part->mu, NULL) != 0)
            goto err;
        if (sl_bus__cond_init_monotonic(&part->not_full) != 0) {
            pthread_mutex_destroy(&part->mu);
            goto err;
        }
        part->topic_name = topic->name;
        part->id = i;
        part->closed = closed;
        topic->parts_ready++;
    }
    return topic;

err:
    topic_destroy(topic);
    return NULL;
}

static mem_topic_t *topic_find(mem_bus_t *bus, const char *name)
{
    for (size_t i = 0; i < bus->topic_count; i++) {
        if (strcmp(bus->topics[i]->name, name) == 0)
            return bus->topics[i];
    }
    return NULL;
}

static mem_topic_t *topic_add(mem_bus_t *bus, const char *name)
{
    mem_topic_t *topic;

    if (bus->topic_count == bus->topic_slots) {
        size_t slots = bus->topic_slots == 0 ? 8 : bus->topic_slots * 2;
        mem_topic_t **topics = realloc(bus->topics, slots * sizeof(*topics));

        if (topics == NULL)
            return NULL;
        bus->topics = topics;
        bus->topic_slots = slots;
    }

    /* Reading `closed` under the write lock orders this against
     * mem_close, which marks partitions closed under the read lock. */
    topic = topic_create(name, bus->cfg.partitions, atomic_load(&bus->closed));
    if (topic == NULL)
        return NULL;
    bus->topics[bus->topic_count++] = topic;
    sl_log_debug(LOG_COMPONENT, "topic created topic=%s partitions=%d", name,
                 bus->cfg.partitions);
    return topic;
}

/* Returns the topic, creating it on first use, or NULL when out of memory.
 * Topics live as long as the bus, so the pointer stays valid. */
static mem_topic_t *topic_get(mem_bus_t *bus, const char *name)
{
    mem_topic_t *topic;

    pthread_rwlock_rdlock(&bus->topics_lock);
    topic = topic_find(bus, name);
    pthread_rwlock_unlock(&bus->topics_lock);
    if (topic != NULL)
        return topic;

    pthread_rwlock_wrlock(&bus->topics_lock);
    topic = topic_find(bus, name);
    if (topic == NULL)
        topic = topic_add(bus, name);
    pthread_rwlock_unlock(&bus->topics_lock);
    return topic;
}

/* -------------------------------------------------------------------- bus */

sl_bus_t *sl_bus_memory_create(const sl_bus_memory_config_t *cfg)
{
    mem_bus_t *bus;

    if (cfg == NULL || cfg->partitions < 1 || cfg->partition_capacity < 1 ||
        cfg->partition_max_bytes < 1)
        return NULL;
    bus = calloc(1, sizeof(*bus));
    if (bus == NULL)
        return NULL;
    if (pthread_rwlock_init(&bus->topics_lock, NULL) != 0) {
        free(bus);
        return NULL;
    }
    if (pthread_mutex_init(&bus->mu, NULL) != 0) {
        pthread_rwlock_destroy(&bus->topics_lock);
        free(bus);
        return NULL;
    }
    bus->base.ops = &mem_ops;
    bus->cfg = *cfg;
    if (bus->cfg.max_record_bytes == 0)
        bus->cfg.max_record_bytes = MEM_DEFAULT_MAX_RECORD_BYTES;
    atomic_init(&bus->closed, false);
    return &bus->base;
}

bool sl_bus_is_memory(const sl_bus_t *bus)
{
    return bus != NULL && bus->ops == &mem_ops;
}

static void mem_close(sl_bus_t *base)
{
    mem_bus_t *bus = (mem_bus_t *)base;

    atomic_store(&bus->closed, true);

    /* Marking each partition closed under its own lock means a publisher
     * either appended before (and consumers drain the record) or sees the
     * mark and returns SL_ECLOSED. */
    pthread_rwlock_rdlock(&bus->topics_lock);
    for (size_t t = 0; t < bus->topic_count; t++) {
        mem_topic_t *topic = bus->topics[t];

        for (int32_t i = 0; i < topic->partition_count; i++) {
            mem_partition_t *part = &topic->parts[i];

            pthread_mutex_lock(&part->mu);
            part->closed = true;
            pthread_cond_broadcast(&part->not_full);
            pthread_mutex_unlock(&part->mu);
        }
    }
    pthread_rwlock_unlock(&bus->topics_lock);

    pthread_mutex_lock(&bus->mu);
    for (mem_group_t *g = bus->groups; g != NULL; g = g->next) {
        for (mem_consumer_t *c = g->members; c != NULL; c = c->member_next)
            consumer_wake(c);
    }
    pthread_mutex_unlock(&bus->mu);
    sl_log_info(LOG_COMPONENT, "bus closed backend=memory");
}

static void group_destroy(mem_group_t *group)
{
    while (group->subs != NULL) {
        mem_subscription_t *sub = group->subs;

        group->subs = sub->next;
        free(sub);
    }
    free(group->name);
    free(group);
}

static void mem_destroy(sl_bus_t *base)
{
    mem_bus_t *bus = (mem_bus_t *)base;

    if (bus->consumer_count > 0) {
        /* Freeing now would leave those consumers pointing into freed
         * partitions, so leak the bus instead. */
        sl_log_error(LOG_COMPONENT,
                     "bus not destroyed: %zu consumers still exist",
                     bus->consumer_count);
        assert(bus->consumer_count == 0);
        return;
    }
    while (bus->groups != NULL) {
        mem_group_t *group = bus->groups;

        bus->groups = group->next;
        group_destroy(group);
    }
    for (size_t i = 0; i < bus->topic_count; i++)
        topic_destroy(bus->topics[i]);
    free(bus->topics);
    pthread_mutex_destroy(&bus->mu);
    pthread_rwlock_destroy(&bus->topics_lock);
    free(bus);
}

static int32_t mem_partition_count(sl_bus_t *base, const char *topic)
{
    mem_bus_t *bus = (mem_bus_t *)base;

    /* Every topic of the memory bus gets the configured count, so there is
     * no need to create the topic here. */
    (void)topic;
    return bus->cfg.partitions;
}

static int mem_publish(sl_bus_t *base, const char *topic_name,
                       int32_t partition, const void *key, size_t key_len,
                       const void *value, size_t value_len,
                       const sl_header_t *headers, size_t header_count,
                       int timeout_ms, int64_t *offset_out)
{
    mem_bus_t *bus = (mem_bus_t *)base;
    mem_topic_t *topic;
    mem_partition_t *part;
    mem_record_t *rec;
    int rc;

    if (atomic_load(&bus->closed))
        return SL_ECLOSED;
    /* Checked before the copy: a refused record costs nothing. */
    if (record_size(key_len, value_len, headers, header_count) >
        bus->cfg.max_record_bytes)
        return SL_ETOOBIG;
    rec = record_create(key, key_len, value, value_len, headers, header_count);
    if (rec == NULL)
        return SL_ENOMEM;

    /* A record bigger than a whole partition would wait forever. */
    rc = SL_EINVAL;
    if (rec->bytes > bus->cfg.partition_max_bytes)
        goto out;
    rc = SL_ENOMEM;
    if ((topic = topic_get(bus, topic_name)) == NULL)
        goto out;
    rc = SL_EINVAL;
    if (partition < 0)
        partition =
            sl_bus_partition_for_key(key, key_len, topic->partition_count);
    if (partition >= topic->partition_count)
        goto out;

    part = &topic->parts[partition];
    pthread_mutex_lock(&part->mu);
    rc = partition_wait_room(part, &bus->cfg, rec->bytes, timeout_ms);
    if (rc == SL_OK)
        rc = partition_append(part, &bus->cfg, rec, offset_out);
    pthread_mutex_unlock(&part->mu);

out:
    if (rc != SL_OK)
        free(rec);
    return rc;
}

/* ------------------------------------------------------------------ groups */

/* XXX: groups are never deleted, because bus.h has no call for it. A group
 * whose consumers all left keeps holding back retention on its topics until
 * publishers fail with SL_EFULL, so a one-off group name must not be used. */
static mem_group_t *group_get(mem_bus_t *bus, const char *name)
{
    mem_group_t *group;

    for (group = bus->groups; group != NULL; group = group->next) {
        if (strcmp(group->name, name) == 0)
            return group;
    }
    group = calloc(1, sizeof(*group));
    if (group == NULL)
        return NULL;
    group->name = strdup(name);
    if (group->name == NULL) {
        free(group);
        return NULL;
    }
    group->next = bus->groups;
    bus->groups = group;
    return group;
}

/* Returns the group's subscription to topic, creating it (with no offsets
 * committed) on first use. The caller holds bus->mu. */
static mem_subscription_t *group_subscribe(mem_group_t *group,
                                           mem_topic_t *topic)
{
    mem_subscription_t *sub, **tail = &group->subs;

    for (sub = group->subs; sub != NULL; sub = sub->next) {
        if (sub->topic == topic)
            return sub;
        tail = &sub->next;
    }
    sub = calloc(1, sizeof(*sub) +
                        (size_t)topic->partition_count * sizeof(mem_cursor_t));
    if (sub == NULL)
        return NULL;
    sub->topic = topic;
    for (int32_t i = 0; i < topic->partition_count; i++) {
        mem_partition_t *part = &topic->parts[i];
        mem_cursor_t *cur = &sub->cursors[i];

        cur->group = group;
        cur->committed = -1;
        pthread_mutex_lock(&part->mu);
        cur->next = part->cursors;
        part->cursors = cur;
        pthread_mutex_unlock(&part->mu);
    }
    *tail = sub;
    return sub;
}

static bool consumer_subscribes(const mem_consumer_t *c,
                                const mem_subscription_t *sub)
{
    for (size_t i = 0; i < c->topic_count; i++) {
        if (c->subs[i] == sub)
            return true;
    }
    return false;
}

/* Picks the owner of the n-th partition handed out in this round: the
 * members subscribed to the topic take turns in join order. */
static mem_consumer_t *
group_pick_owner(mem_group_t *group, const mem_subscription_t *sub, size_t turn)
{
    size_t eligible = 0, pick;

    for (mem_consumer_t *c = group->members; c != NULL; c = c->member_next)
        eligible += consumer_subscribes(c, sub);
    if (eligible == 0)
        return NULL;
    pick = turn % eligible;
    for (mem_consumer_t *c = group->members; c != NULL; c = c->member_next) {
        if (consumer_subscribes(c, sub) && pick-- == 0)
            return c;
    }
    return NULL;
}

/* Hands the staged assignment to the consumer's thread and wakes it. */
static void consumer_publish_assignment(mem_consumer_t *c)
{
    mem_assignment_t *tmp;

    pthread_mutex_lock(&c->mu);
    tmp = c->pending;
    c->pending = c->staged;
    c->staged = tmp;
    c->pending_count = c->staged_count;
    c->has_pending = true;
    c->wake_seq++;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->mu);
}

/*
 * Reassigns every partition the group subscribes to among its members,
 * round-robin over topic-partitions in join order. A partition that changes
 * owner gets a new epoch: its old owner stops fetching from it at once, and
 * the new owner starts from the group's committed offset, so records that
 * were fetched but not committed are delivered again, as in Kafka.
 * The caller holds bus->mu.
 */
static void group_rebalance(mem_group_t *group)
{
    size_t turn = 0, members = 0, assigned = 0;

    for (mem_consumer_t *c = group->members; c != NULL; c = c->member_next) {
        c->staged_count = 0;
        members++;
    }
    for (mem_subscription_t *sub = group->subs; sub != NULL; sub = sub->next) {
        for (int32_t i = 0; i < sub->topic->partition_count; i++) {
            mem_partition_t *part = &sub->topic->parts[i];
            mem_cursor_t *cur = &sub->cursors[i];
            mem_consumer_t *owner = group_pick_owner(group, sub, turn++);

            pthread_mutex_lock(&part->mu);
            if (cur->owner != owner) {
                cur->owner = owner;
                cur->epoch++;
            }
            if (owner != NULL) {
                assert(owner->staged_count < owner->assign_max);
                owner->staged[owner->staged_count++] = (mem_assignment_t){
                    .part = part,
                    .cursor = cur,
                    .epoch = cur->epoch,
                    .position = -1,
                };
                assigned++;
            }
            pthread_mutex_unlock(&part->mu);
        }
    }
    for (mem_consumer_t *c = group->members; c != NULL; c = c->member_next)
        consumer_publish_assignment(c);
    sl_log_info(LOG_COMPONENT,
                "group rebalanced group=%s members=%zu partitions=%zu",
                group->name, members, assigned);
}

/* -------------------------------------------------------------- consumers */

static void consumer_free(mem_consumer_t *c)
{
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->mu);
    free(c->arrays);
    free(c->leases);
    free(c->subs);
    free(c);
}

static mem_consumer_t *consumer_alloc(mem_bus_t *bus, size_t topic_count)
{
    mem_consumer_t *c = calloc(1, sizeof(*c));
    size_t max;

    if (c == NULL)
        return NULL;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    if (sl_bus__cond_init_monotonic(&c->wake) != 0) {
        pthread_mutex_destroy(&c->mu);
        free(c);
        return NULL;
    }
    c->base.ops = &mem_ops;
    c->base.bus = &bus->base;
    c->topic_count = topic_count;
    atomic_init(&c->waiting, false);

    /* Four arrays of assign_max entries: assign, scratch, staged, pending. */
    max = topic_count * (size_t)bus->cfg.partitions;
    c->assign_max = max;
    c->arrays = calloc(4 * max, sizeof(mem_assignment_t));
    c->leases = calloc(max, sizeof(mem_lease_t));
    c->subs = calloc(topic_count, sizeof(*c->subs));
    if (c->arrays == NULL || c->leases == NULL || c->subs == NULL) {
        consumer_free(c);
        return NULL;
    }
    c->assign = c->arrays;
    c->scratch = c->arrays + max;
    c->staged = c->arrays + 2 * max;
    c->pending = c->arrays + 3 * max;
    return c;
}

/* Subscribes the consumer's group to each topic and appends the consumer
 * to the members. The caller holds bus->mu. */
static int consumer_join(mem_bus_t *bus, mem_consumer_t *c, const char *group,
                         const char *const *topics)
{
    mem_consumer_t **tail;

    c->group = group_get(bus, group);
    if (c->group == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < c->topic_count; i++) {
        mem_topic_t *topic = topic_get(bus, topics[i]);

        if (topic == NULL)
            return SL_ENOMEM;
        c->subs[i] = group_subscribe(c->group, topic);
        if (c->subs[i] == NULL)
            return SL_ENOMEM;
    }
    for (tail = &c->group->members; *tail != NULL; tail = &(*tail)->member_next)
        ;
    *tail = c;
    c->id = ++bus->next_consumer_id;
    bus->consumer_count++;
    return SL_OK;
}

static sl_consumer_t *mem_consumer_create(sl_bus_t *base, const char *group,
                                          const char *const *topics,
                                          size_t topic_count)
{
    mem_bus_t *bus = (mem_bus_t *)base;
    mem_consumer_t *c = consumer_alloc(bus, topic_count);
    int rc;

    if (c == NULL)
        return NULL;
    pthread_mutex_lock(&bus->mu);
    rc = consumer_join(bus, c, group, topics);
    if (rc == SL_OK) {
        sl_log_info(LOG_COMPONENT, "consumer joined group=%s consumer=%llu",
                    group, (unsigned long long)c->id);
        group_rebalance(c->group);
    }
    pthread_mutex_unlock(&bus->mu);

    if (rc != SL_OK) {
        /* Subscriptions made so far stay with the group, as they would
         * after the consumer left. */
        sl_log_error(LOG_COMPONENT, "consumer create failed group=%s: %s",
                     group, sl_strerror(rc));
        consumer_free(c);
        return NULL;
    }
    return &c->base;
}

/* Ends every lease of the last poll, letting retention free those records. */
static void consumer_release_leases(mem_consumer_t *c)
{
    for (size_t i = 0; i < c->assign_max; i++) {
        mem_lease_t *lease = &c->leases[i];
        mem_partition_t *part = lease->part;

        if (part == NULL)
            continue;
        pthread_mutex_lock(&part->mu);
        lease_unlink(lease);
        pthread_mutex_unlock(&part->mu);
    }
}

/* Switches to the assignment of the last rebalance, if one is pending.
 * Partitions the consumer kept without interruption (same epoch) keep their
 * fetch position. The caller holds c->mu and holds no lease. */
static void consumer_apply_pending(mem_consumer_t *c)
{
    mem_assignment_t *tmp;

    if (!c->has_pending)
        return;
    tmp = c->scratch;
    c->scratch = c->pending;
    c->pending = tmp;
    c->has_pending = false;

    for (size_t i = 0; i < c->pending_count; i++) {
        mem_assignment_t *next = &c->scratch[i];

        for (size_t j = 0; j < c->assign_count; j++) {
            if (c->assign[j].cursor == next->cursor &&
                c->assign[j].epoch == next->epoch)
                next->position = c->assign[j].position;
        }
    }
    tmp = c->assign;
    c->assign = c->scratch;
    c->scratch = tmp;
    c->assign_count = c->pending_count;
    c->next_first = 0;
}

static void msg_fill(sl_msg_t *msg, const mem_partition_t *part, int64_t offset,
                     const mem_record_t *rec)
{
    msg->topic = part->topic_name;
    msg->partition = part->id;
    msg->offset = offset;
    msg->timestamp_ms = rec->timestamp_ms;
    msg->key = rec->key;
    msg->key_len = rec->key_len;
    msg->value = rec->value;
    msg->value_len = rec->value_len;
    msg->headers = rec->header_count > 0 ? rec->headers : NULL;
    msg->header_count = rec->header_count;
}

/* Fetches up to want records of assignment idx into msgs. Clears *drained
 * unless the partition is closed and fully read by this consumer, or was
 * revoked. A revoked partition counts as not drained because its pending
 * replacement is about to arrive. */
static size_t consumer_fetch_one(mem_consumer_t *c, size_t idx, sl_msg_t *msgs,
                                 size_t want, bool *drained)
{
    mem_assignment_t *a = &c->assign[idx];
    mem_partition_t *part = a->part;
    mem_cursor_t *cur = a->cursor;
    size_t took = 0;

    pthread_mutex_lock(&part->mu);
    if (cur->owner != c || cur->epoch != a->epoch) {
        *drained = false;
        pthread_mutex_unlock(&part->mu);
        return 0;
    }

    /* A new owner starts at the committed offset. Retention can pass the
     * position only when the group committed beyond it, which skips. */
    if (a->position < 0)
        a->position = cur->committed >= 0 ? cur->committed : part->base;
    if (a->position < part->base)
        a->position = part->base;

    while (took < want && a->position < part->end) {
        if (took == 0 && c->leases[idx].part == NULL)
            lease_link(&c->leases[idx], part, a->position);
        msg_fill(&msgs[took], part, a->position,
                 partition_record_at(part, a->position));
        a->position++;
        took++;
    }
    if (!part->closed || a->position < part->end)
        *drained = false;
    pthread_mutex_unlock(&part->mu);
    return took;
}

/*
 * Fills msgs with up to max records. Each pass takes an equal share from
 * every assigned partition, starting one partition later on each poll, so
 * a busy partition cannot starve the others. *drained is set when the bus
 * is closed and every assigned partition has been read to its end.
 */
static size_t consumer_fetch(mem_consumer_t *c, sl_msg_t *msgs, size_t max,
                             bool *drained)
{
    mem_bus_t *bus = (mem_bus_t *)c->base.bus;
    size_t n = c->assign_count, got = 0, share, first;
    bool progress = true;

    *drained = atomic_load(&bus->closed);
    if (n == 0)
        return 0;
    share = max / n > 0 ? max / n : 1;
    first = c->next_first % n;
    c->next_first = first + 1;

    while (got < max && progress) {
        progress = false;
        for (size_t k = 0; k < n && got < max; k++) {
            size_t want = max - got < share ? max - got : share;
            size_t took = consumer_fetch_one(c, (first + k) % n, msgs + got,
                                             want, drained);
            got += took;
            progress = progress || took > 0;
        }
    }
    return got;
}

static int mem_consumer_poll(sl_consumer_t *base, sl_msg_t *msgs, size_t max,
                             size_t *count, int timeout_ms)
{
    mem_consumer_t *c = (mem_consumer_t *)base;
    struct timespec deadline;
    int rc = SL_OK;

    consumer_release_leases(c);
    if (max == 0)
        return SL_OK;
    if (timeout_ms >= 0)
        deadline_after(&deadline, timeout_ms);

    for (;;) {
        uint64_t seq;
        bool drained, woken = true;

        pthread_mutex_lock(&c->mu);
        seq = c->wake_seq;
        atomic_store(&c->waiting, true);
        consumer_apply_pending(c);
        pthread_mutex_unlock(&c->mu);

        /* A publisher that appends after this fetch sees `waiting` set and
         * bumps wake_seq, so the wait below cannot miss it. */
        *count = consumer_fetch(c, msgs, max, &drained);
        if (*count > 0)
            break;

        /* XXX: SL_ECLOSED is final only while the group is stable. If a
         * member later leaves without draining, its partitions move to the
         * remaining members, and a consumer that stopped polling after
         * SL_ECLOSED never reads them. Callers should destroy consumers
         * only after all of the group's consumers stopped polling. */
        if (drained) {
            rc = SL_ECLOSED;
            break;
        }

        pthread_mutex_lock(&c->mu);
        while (c->wake_seq == seq && woken)
            woken = cond_wait_until(&c->wake, &c->mu,
                                    timeout_ms >= 0 ? &deadline : NULL);
        pthread_mutex_unlock(&c->mu);
        if (!woken)
            break;
    }
    atomic_store(&c->waiting, false);
    return rc;
}

static mem_subscription_t *consumer_find_sub(const mem_consumer_t *c,
                                             const char *topic)
{
    for (size_t i = 0; i < c->topic_count; i++) {
        if (strcmp(c->subs[i]->topic->name, topic) == 0)
            return c->subs[i];
    }
    return NULL;
}

static int mem_consumer_commit(sl_consumer_t *base, const char *topic,
                               int32_t partition, int64_t next_offset)
{
    mem_consumer_t *c = (mem_consumer_t *)base;
    mem_subscription_t *sub = consumer_find_sub(c, topic);
    mem_partition_t *part;
    mem_cursor_t *cur;
    int rc = SL_OK;

    if (sub == NULL || partition >= sub->topic->partition_count)
        return SL_EINVAL;
    part = &sub->topic->parts[partition];
    cur = &sub->cursors[partition];

    pthread_mutex_lock(&part->mu);
    if (cur->owner != c) {
        rc = SL_EBUSY;
    } else if (next_offset < part->base || next_offset > part->end) {
        rc = SL_EINVAL;
    } else {
        cur->committed = next_offset;
        partition_trim(part);
    }
    pthread_mutex_unlock(&part->mu);
    return rc;
}

static int64_t mem_consumer_committed(sl_consumer_t *base, const char *topic,
                                      int32_t partition)
{
    mem_consumer_t *c = (mem_consumer_t *)base;
    mem_subscription_t *sub = consumer_find_sub(c, topic);
    mem_partition_t *part;
    int64_t committed;

    if (sub == NULL || partition >= sub->topic->partition_count)
        return -1;
    part = &sub->topic->parts[partition];
    pthread_mutex_lock(&part->mu);
    committed = sub->cursors[partition].committed;
    pthread_mutex_unlock(&part->mu);
    return committed;
}

static int64_t mem_consumer_lag(sl_consumer_t *base)
{
    mem_consumer_t *c = (mem_consumer_t *)base;
    int64_t lag = 0;

    for (size_t t = 0; t < c->topic_count; t++) {
        mem_subscription_t *sub = c->subs[t];

        for (int32_t i = 0; i < sub->topic->partition_count; i++) {
            mem_partition_t *part = &sub->topic->parts[i];
            int64_t committed;

            /* Without a commit the group would start at the log start. */
            pthread_mutex_lock(&part->mu);
            committed = sub->cursors[i].committed;
            lag += part->end - (committed >= 0 ? committed : part->base);
            pthread_mutex_unlock(&part->mu);
        }
    }
    return lag;
}

static void mem_consumer_destroy(sl_consumer_t *base)
{
    mem_consumer_t *c = (mem_consumer_t *)base;
    mem_bus_t *bus = (mem_bus_t *)c->base.bus;
    mem_consumer_t **link;

    pthread_mutex_lock(&bus->mu);
    for (link = &c->group->members; *link != c; link = &(*link)->member_next)
        ;
    *link = c->member_next;
    bus->consumer_count--;
    sl_log_info(LOG_COMPONENT, "consumer left group=%s consumer=%llu",
                c->group->name, (unsigned long long)c->id);

    /* After this no cursor names c as owner, so publishers cannot reach it. */
    group_rebalance(c->group);
    pthread_mutex_unlock(&bus->mu);

    consumer_release_leases(c);
    consumer_free(c);
}

static const sl_bus_ops_t mem_ops = {
    .name = "memory",
    .close = mem_close,
    .destroy = mem_destroy,
    .partition_count = mem_partition_count,
    .publish = mem_publish,
    .consumer_create = mem_consumer_create,
    .consumer_poll = mem_consumer_poll,
    .consumer_commit = mem_consumer_commit,
    .consumer_committed = mem_consumer_committed,
    .consumer_lag = mem_consumer_lag,
    .consumer_destroy = mem_consumer_destroy,
};
