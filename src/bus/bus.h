/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The message bus that stages meet through: named topics split into
 * partitions, keyed publishing, and consumer groups that commit offsets.
 * Two back ends implement it: bus_memory.c, an in-process log for the
 * standalone mode, and bus_kafka.c for Apache Kafka. Stages only see this
 * header, so the same stage code runs in both modes.
 *
 * Semantics every back end keeps:
 *  - A record's partition is a hash of its key (sl_bus_partition_for_key),
 *    so records with one key stay in order.
 *  - Each consumer group has its own committed offset per partition; a new
 *    group starts at the earliest retained record.
 *  - Publishing is bounded: when a partition is full, sl_bus_publish waits
 *    up to its timeout for room and then fails with SL_EFULL. Nothing is
 *    dropped silently.
 *  - A record whose key, value and header bytes exceed the bus's record
 *    limit (1,000,000 bytes by default: Kafka's default message.max.bytes)
 *    is refused with SL_ETOOBIG before it is queued.
 */
#ifndef SLUICE_BUS_BUS_H
#define SLUICE_BUS_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sl_bus sl_bus_t;
typedef struct sl_consumer sl_consumer_t;

#define SL_TOPIC_SENSOR_READINGS "sensor-readings"
#define SL_TOPIC_ECOMMERCE_EVENTS "ecommerce-events"
#define SL_TOPIC_SYSTEM_ALERTS "system-alerts"
#define SL_TOPIC_DLQ "dlq-messages"

#define SL_BUS_MAX_HEADERS 16 /* headers per record, a hard limit */

/* A header is a name and an opaque byte value; value may hold NULs. */
typedef struct sl_header {
    const char *name;
    const void *value;
    size_t value_len;
} sl_header_t;

/* A record handed out by sl_consumer_poll. Every pointer is borrowed: it
 * stays valid until the next sl_consumer_poll or sl_consumer_destroy on the
 * same consumer. */
typedef struct sl_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* when the bus accepted the record */
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const sl_header_t *headers;
    size_t header_count;
} sl_msg_t;

/* Settings of the in-process bus. A record is freed once every group that
 * ever subscribed to its topic has committed past it. A group keeps its
 * offsets after its last consumer leaves, and a topic that no group
 * subscribed to keeps all its records. In both cases a full partition makes
 * publishers wait and then fail with SL_EFULL. */
typedef struct sl_bus_memory_config {
    int32_t partitions;         /* per topic; default 6 */
    size_t partition_capacity;  /* records per partition; default 65536 */
    size_t partition_max_bytes; /* key+value+header bytes; default 64 MiB */
    /* Largest record, key+value+header bytes; default 1000000, as Kafka's
     * message.max.bytes, so that both back ends refuse the same records. */
    size_t max_record_bytes;
} sl_bus_memory_config_t;

/** Fills cfg with the defaults above. */
void sl_bus_memory_config_init(sl_bus_memory_config_t *cfg);

/**
 * Creates an in-process bus. Topics are created on first use.
 * Returns NULL when memory runs out or cfg is invalid.
 */
sl_bus_t *sl_bus_memory_create(const sl_bus_memory_config_t *cfg);

/**
 * Returns true when bus was made by sl_bus_memory_create. Such a bus
 * numbers every partition's offsets from 0 in each process, so unlike a
 * Kafka offset, an offset of it does not identify a record after a restart.
 */
bool sl_bus_is_memory(const sl_bus_t *bus);

/* Settings of the Apache Kafka bus (librdkafka). Every string is borrowed
 * for the duration of sl_bus_kafka_create only. */
typedef struct sl_bus_kafka_config {
    const char *brokers;   /* bootstrap.servers, "host:port,..."; required */
    const char *client_id; /* client.id; default "sluice" */
    int32_t partitions;    /* partitions of topics the bus creates; 6 */
    int16_t replication_factor; /* of created topics; -1: broker default */
    /* librdkafka properties as "key=value" strings (SSL, SASL, timeouts).
     * A "kafka." prefix is stripped. "producer." or "consumer." scopes a
     * property to one client type; other keys apply to both. Applied after
     * the bus defaults, so they override them, except the settings that
     * the delivery guarantees rely on (see sl_bus_kafka_create). */
    const char *const *properties;
    size_t property_count;
    /* Cap of each consumer's queue of fetched records (see "Consumers"
     * below); 0 means the default. */
    size_t consumer_queue_records; /* default 10000 */
    size_t consumer_queue_bytes;   /* key+value bytes; default 16 MiB */
    /* How long a revocation waits for the stage to commit its records of
     * the partitions, in ms; 0 means the default, 3000. */
    int revoke_wait_ms;
} sl_bus_kafka_config_t;

/** Fills cfg with the defaults above and no brokers. */
void sl_bus_kafka_config_init(sl_bus_kafka_config_t *cfg);

/**
 * Creates a bus on an Apache Kafka cluster. The producer is idempotent
 * (enable.idempotence=true, acks=all) with linger.ms=5 and
 * message.timeout.ms=30000 by default; consumers use
 * partition.assignment.strategy=cooperative-sticky,
 * auto.offset.reset=earliest, and always enable.auto.commit=false and
 * enable.auto.offset.store=false. A topic is created on first use with
 * cfg->partitions partitions (CreateTopics) when it does not exist; where
 * the cluster does not support CreateTopics, the broker's automatic topic
 * creation decides the partition count.
 *
 * Kafka-specific behaviour of the bus.h calls:
 *  - sl_bus_publish returns only after the delivery report: SL_OK once
 *    the cluster acknowledged the record. timeout_ms bounds only the wait
 *    for room in the local producer queue (then SL_EFULL); the wait for
 *    the report is bounded by message.timeout.ms. A record that failed
 *    after all retries returns SL_ETIMEDOUT (message timed out) or SL_EIO,
 *    and counts in sluice_kafka_delivery_failures_total{reason}.
 *  - The record limit is the producer's message.max.bytes: a bigger record
 *    gets SL_ETOOBIG without being queued, and so does one the broker
 *    refuses as too large.
 *  - sl_bus_close purges records still queued locally: their publishers
 *    return SL_ECLOSED. Records already sent still get their report.
 *  - sl_consumer_poll returns SL_ECLOSED at once after sl_bus_close,
 *    unlike the in-process bus, which first hands out what it holds: the
 *    cluster keeps every record the group has not committed, and a drain
 *    would never end while producers keep publishing.
 *  - sl_consumer_commit and sl_consumer_committed make a synchronous
 *    request to the group coordinator; sl_consumer_lag queries the
 *    start and end offsets of every partition and returns SL_EIO when a
 *    query fails or times out (10 s each), and at once after sl_bus_close.
 *  - librdkafka's statistics (statistics.interval.ms, 5000 by default)
 *    set the gauges sluice_kafka_consumer_lag{group,topic,partition},
 *    sluice_kafka_consumer_queued_records{group} and
 *    sluice_kafka_producer_queue_{messages,bytes}.
 *
 * Consumers: each consumer runs a poll thread of its own, the only caller
 * of rd_kafka_consumer_poll. It serves rebalances and keeps the member in
 * its group (max.poll.interval.ms) however long the stage takes between
 * two sl_consumer_poll calls, for example while the store is down. It moves
 * fetched records into a queue capped at consumer_queue_records records
 * and consumer_queue_bytes bytes, and sl_consumer_poll takes records from
 * that queue. A single record larger than the byte cap still enters an
 * empty queue.
 *  - Pause rule: when the queue reaches either cap, the poll thread pauses
 *    every assigned partition and keeps polling; when the stage has taken
 *    the queue below half of both caps, it resumes them. A partition
 *    assigned while the queue is full starts paused. Fetching resumes
 *    after the last record queued, so nothing is skipped or repeated.
 *    Memory stays bounded by the caps, plus what librdkafka prefetches
 *    for partitions that are not paused (queued.max.messages.kbytes).
 *    Pausing drops what librdkafka prefetched and resuming fetches it
 *    again: sluice_bench_distributed fetches about 5000 records twice
 *    per pause, which cost no measurable throughput there.
 *  - Revocation: queued records of a revoked partition are dropped; the
 *    stage never saw them and the next owner reads them from the group's
 *    commit. Records of it already handed out by sl_consumer_poll are in
 *    flight: the revocation waits up to revoke_wait_ms for the stage to
 *    commit them or to call sl_consumer_poll again, so a normal rebalance
 *    hands on finished work as committed. Past that bound the partition
 *    goes anyway, a later commit for it returns SL_EBUSY, and the next
 *    owner reads the uncommitted records again. A lost assignment (the
 *    member was thrown out) does not wait.
 *
 * Returns NULL and writes the reason into err (may be NULL) when cfg is
 * invalid or librdkafka rejects a property. No broker is contacted here.
 */
sl_bus_t *sl_bus_kafka_create(const sl_bus_kafka_config_t *cfg, char *err,
                              size_t err_size);

/**
 * Wakes every blocked publisher and poller with SL_ECLOSED. On the
 * in-process bus, records already accepted stay readable so consumers can
 * drain them; on Kafka they stay in the cluster (see sl_bus_kafka_create).
 */
void sl_bus_close(sl_bus_t *bus);

/** Frees the bus. All consumers must be destroyed first. Accepts NULL. */
void sl_bus_destroy(sl_bus_t *bus);

/** Returns the number of partitions of a topic on this bus, or SL_EINVAL
 * for an invalid topic name. */
int32_t sl_bus_partition_count(sl_bus_t *bus, const char *topic);

/** Returns the partition of key among n partitions (murmur2, as Kafka's
 * default partitioner, so both back ends place a key alike). A NULL or empty
 * key goes to partition 0. Returns SL_EINVAL when n < 1. */
int32_t sl_bus_partition_for_key(const void *key, size_t key_len, int32_t n);

/**
 * Publishes one record, copying key, value and headers.
 *
 * partition < 0 means "by key". Blocks up to timeout_ms (negative: forever)
 * while the partition is full. The record is accepted when this returns
 * SL_OK; OUT: *offset_out (may be NULL) receives its offset.
 * Returns SL_OK, SL_EFULL on timeout, SL_ECLOSED after sl_bus_close,
 * SL_ENOMEM, SL_ETOOBIG for a record above the bus's record limit, or
 * SL_EINVAL. SL_EINVAL means more than SL_BUS_MAX_HEADERS headers, a
 * partition that does not exist, a record larger than a whole partition
 * may hold, or an invalid topic name. Valid names have 1 to 249
 * characters of [A-Za-z0-9._-], as in Kafka.
 * Thread-safe.
 */
int sl_bus_publish(sl_bus_t *bus, const char *topic, int32_t partition,
                   const void *key, size_t key_len, const void *value,
                   size_t value_len, const sl_header_t *headers,
                   size_t header_count, int timeout_ms, int64_t *offset_out);

/* One record of sl_bus_publish_batch. The input fields have the meaning
 * of the sl_bus_publish arguments; status and offset are outputs. */
typedef struct sl_bus_record {
    const char *topic;
    int32_t partition; /* < 0: by key */
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const sl_header_t *headers;
    size_t header_count;
    int status;     /* OUT: SL_OK or an error of sl_bus_publish */
    int64_t offset; /* OUT: offset of the accepted record, else -1 */
} sl_bus_record_t;

/**
 * Publishes records in array order and waits until every one is accepted
 * or failed. The Kafka bus sends them together and waits once for all
 * delivery reports; the in-process bus publishes them one by one.
 * timeout_ms has the meaning of sl_bus_publish for each record.
 * Publishing stops at the first record that cannot be queued (for example
 * SL_EFULL), and the records after it get the same status without being
 * sent, so that no later record of a key overtakes an earlier one.
 * The exception is SL_ETOOBIG. A record rejected for its own size never
 * enters the log, so no later record can overtake it. Only that record
 * fails, and the records after it, of the same key or another, are
 * published. The caller decides what becomes of the rejected one, for
 * example the dead-letter queue.
 * Returns SL_OK when every record was accepted, else the status of the
 * first failed record. Thread-safe.
 */
int sl_bus_publish_batch(sl_bus_t *bus, sl_bus_record_t *records, size_t count,
                         int timeout_ms);

/* A batch handed to the bus by sl_bus_publish_start whose outcome is not
 * known yet. */
typedef struct sl_bus_flight sl_bus_flight_t;

/**
 * Starts sl_bus_publish_batch without waiting for the outcome, so a caller
 * can prepare its next batch while the cluster acknowledges this one.
 * When the Kafka bus queued every record, *out gets a flight, the records
 * array and the bytes its records point to must stay valid until
 * sl_bus_publish_finish, and SL_OK is returned. Otherwise (an invalid
 * record, a full queue, the in-process bus, which publishes at once)
 * every record's status is already final, *out is NULL, and the return is
 * that of sl_bus_publish_batch. Batches started on one bus keep their
 * order. Thread-safe.
 */
int sl_bus_publish_start(sl_bus_t *bus, sl_bus_record_t *records, size_t count,
                         int timeout_ms, sl_bus_flight_t **out);

/**
 * Waits until every record of flight was accepted or failed, fills their
 * status and offset, and frees flight. Every flight must be finished
 * before its bus is destroyed. Returns SL_OK when every record was
 * accepted, else the status of the first failed record.
 */
int sl_bus_publish_finish(sl_bus_flight_t *flight);

/**
 * Creates a consumer in group for the listed topics. Consumers of one group
 * share the partitions; when one joins or leaves, partitions are reassigned
 * and each new owner resumes from the group's committed offset.
 * Returns NULL on OOM or invalid arguments. Each consumer is used by one
 * thread at a time.
 */
sl_consumer_t *sl_consumer_create(sl_bus_t *bus, const char *group,
                                  const char *const *topics,
                                  size_t topic_count);

/**
 * Fetches up to max records, waiting up to timeout_ms (negative: forever)
 * for the first one.
 * Records of one partition come in offset order. OUT: msgs[0..*count).
 * Returns SL_OK (possibly with *count == 0 on timeout), or SL_ECLOSED once
 * the bus is closed and every assigned partition is drained. A member that
 * leaves the group after that hands its unread partitions to the others,
 * whose next poll returns those records again.
 */
int sl_consumer_poll(sl_consumer_t *consumer, sl_msg_t *msgs, size_t max,
                     size_t *count, int timeout_ms);

/**
 * Commits next_offset (the offset of the next record to read) for one
 * partition of the group. Committing lets the bus free records that every
 * group has passed. Returns SL_OK, or SL_EINVAL for a topic this consumer
 * did not subscribe to or an offset outside the retained log. Returns
 * SL_EBUSY when a rebalance gave the partition to another member, which
 * resumes from the last commit.
 */
int sl_consumer_commit(sl_consumer_t *consumer, const char *topic,
                       int32_t partition, int64_t next_offset);

/**
 * Returns the group's committed offset for a partition, or -1 when it has
 * committed none or the consumer did not subscribe to topic.
 */
int64_t sl_consumer_committed(sl_consumer_t *consumer, const char *topic,
                              int32_t partition);

/**
 * Returns how many records of the consumer's topics the group has not yet
 * committed: the sum over partitions of end offset minus committed offset.
 * A partition without a commit counts from its oldest retained record.
 */
int64_t sl_consumer_lag(sl_consumer_t *consumer);

/* Counters of a consumer's own queue (see the Kafka bus's "Consumers");
 * a back end without one reports zeros. */
typedef struct sl_consumer_stats {
    uint64_t partitions_assigned; /* summed over every assignment */
    uint64_t partitions_revoked;  /* summed, lost ones included */
    uint64_t revoke_timeouts;     /* revocations that stopped waiting */
    uint64_t pauses;              /* times the full queue paused fetching */
    uint64_t records_dropped;     /* of revoked partitions, or repeated */
    size_t revoking;       /* partitions whose revocation waits for the stage */
    size_t queued_records; /* now */
    size_t queued_bytes;   /* now, key+value bytes */
    size_t queued_records_max; /* the maximum ever queued */
    size_t queued_bytes_max;
    size_t queue_cap_records;
    size_t queue_cap_bytes;
    int paused; /* 1 while fetching is paused */
} sl_consumer_stats_t;

/** Fills out with the consumer's counters. Returns SL_OK or SL_EINVAL. */
int sl_consumer_stats(sl_consumer_t *consumer, sl_consumer_stats_t *out);

/** Leaves the group and frees the consumer. Accepts NULL. */
void sl_consumer_destroy(sl_consumer_t *consumer);

/** Finds a header by name. Returns it (borrowed) or NULL. */
const sl_header_t *sl_msg_header(const sl_msg_t *msg, const char *name);

#endif
