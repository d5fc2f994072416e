/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The back-end interface behind bus.h. Each back end (bus_memory.c for the
 * standalone mode, bus_kafka.c for Apache Kafka) fills one sl_bus_ops_t and
 * embeds sl_bus_t and sl_consumer_t as the first member of its own structs.
 * bus.c validates the arguments of every public call and then dispatches
 * through the ops table, so back ends may trust their arguments.
 * Nothing outside src/bus/ includes this header.
 */
#ifndef SLUICE_BUS_BUS_INT_H
#define SLUICE_BUS_BUS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"

/* Kafka's limit on topic name length, applied to both back ends alike. */
#define SL_BUS__TOPIC_MAX_LEN 249

/*
 * Operations of one back end. Each has the contract of the bus.h function
 * with the same name, minus the argument checks that bus.c already made:
 * topic and group names are valid, pointers that bus.h does not allow to be
 * NULL are not NULL, header_count <= SL_BUS_MAX_HEADERS and the topic list
 * of consumer_create has no duplicates.
 */
typedef struct sl_bus_ops {
    const char *name; /* back-end name for logs, e.g. "memory" */

    void (*close)(sl_bus_t *bus);
    void (*destroy)(sl_bus_t *bus);
    int32_t (*partition_count)(sl_bus_t *bus, const char *topic);
    int (*publish)(sl_bus_t *bus, const char *topic, int32_t partition,
                   const void *key, size_t key_len, const void *value,
                   size_t value_len, const sl_header_t *headers,
                   size_t header_count, int timeout_ms, int64_t *offset_out);

    sl_consumer_t *(*consumer_create)(sl_bus_t *bus, const char *group,
                                      const char *const *topics,
                                      size_t topic_count);
    int (*consumer_poll)(sl_consumer_t *consumer, sl_msg_t *msgs, size_t max,
                         size_t *count, int timeout_ms);
    int (*consumer_commit)(sl_consumer_t *consumer, const char *topic,
                           int32_t partition, int64_t next_offset);
    int64_t (*consumer_committed)(sl_consumer_t *consumer, const char *topic,
                                  int32_t partition);
    int64_t (*consumer_lag)(sl_consumer_t *consumer);
    /* NULL when the back end has no queue of its own; bus.c then reports
     * zeros. */
    int (*consumer_stats)(sl_consumer_t *consumer, sl_consumer_stats_t *out);
    void (*consumer_destroy)(sl_consumer_t *consumer);
} sl_bus_ops_t;

/* The part of every bus that bus.c uses. */
struct sl_bus {
    const sl_bus_ops_t *ops;
};

/* The part of every consumer that bus.c uses. */
struct sl_consumer {
    const sl_bus_ops_t *ops;
    sl_bus_t *bus;
};

/** Initializes cond to time its waits on CLOCK_MONOTONIC, so that a change
 * of the wall clock does not stretch a timeout. Returns 0, or -1 on
 * failure. */
int sl_bus__cond_init_monotonic(pthread_cond_t *cond);

/** Returns true when name is a valid topic name: 1 to 249 characters from
 * [A-Za-z0-9._-], the rule Kafka applies. */
bool sl_bus__topic_name_valid(const char *name);

#endif
