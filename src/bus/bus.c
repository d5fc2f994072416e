/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The public face of the message bus: validates the arguments of every
 * bus.h call and dispatches to the back end through its sl_bus_ops_t
 * (bus_int.h). The parts that do not depend on a back end live here too:
 * the key partitioner and header lookup.
 */
#include "bus/bus.h"

#include <string.h>
#include <time.h>

#include "bus/bus_int.h"
#include "util/err.h"
#include "util/hash.h"

bool sl_bus__topic_name_valid(const char *name)
{
    size_t len;

    if (name == NULL)
        return false;
    len = strlen(name);
    if (len == 0 || len > SL_BUS__TOPIC_MAX_LEN)
        return false;

    /* Kafka also rejects "." and "..", which would be path names on disk. */
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

int sl_bus__cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    int rc;

    if (pthread_condattr_init(&attr) != 0)
        return -1;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return rc == 0 ? 0 : -1;
}

void sl_bus_close(sl_bus_t *bus)
{
    if (bus != NULL)
        bus->ops->close(bus);
}

void sl_bus_destroy(sl_bus_t *bus)
{
    if (bus != NULL)
        bus->ops->destroy(bus);
}

int32_t sl_bus_partition_count(sl_bus_t *bus, const char *topic)
{
    if (bus == NULL || !sl_bus__topic_name_valid(topic))
        return SL_EINVAL;
    return bus->ops->partition_count(bus, topic);
}

int32_t sl_bus_partition_for_key(const void *key, size_t key_len, int32_t n)
{
    uint32_t h;

    if (n < 1)
        return SL_EINVAL;
    if (key == NULL || key_len == 0)
        return 0;

    /* Kafka's Java client clears the sign bit of the signed murmur2 result
     * (Utils.toPositive) before the modulo, so this picks the same partition.
     */
    h = sl_hash_murmur2(key, key_len);
    return (int32_t)((h & 0x7fffffffu) % (uint32_t)n);
}

static bool headers_valid(const sl_header_t *headers, size_t header_count)
{
    if (header_count > SL_BUS_MAX_HEADERS)
        return false;
    if (header_count > 0 && headers == NULL)
        return false;
    for (size_t i = 0; i < header_count; i++) {
        if (headers[i].name == NULL)
            return false;
        if (headers[i].value == NULL && headers[i].value_len > 0)
            return false;
    }
    return true;
}

int sl_bus_publish(sl_bus_t *bus, const char *topic, int32_t partition,
                   const void *key, size_t key_len, const void *value,
                   size_t value_len, const sl_header_t *headers,
                   size_t header_count, int timeout_ms, int64_t *offset_out)
{
    if (bus == NULL || !sl_bus__topic_name_valid(topic))
        return SL_EINVAL;
    if ((key == NULL && key_len > 0) || (value == NULL && value_len > 0))
        return SL_EINVAL;
    if (!headers_valid(headers, header_count))
        return SL_EINVAL;
    return bus->ops->publish(bus, topic, partition, key, key_len, value,
                             value_len, headers, header_count, timeout_ms,
                             offset_out);
}

sl_consumer_t *sl_consumer_create(sl_bus_t *bus, const char *group,
                                  const char *const *topics, size_t topic_count)
{
    if (bus == NULL || group == NULL || group[0] == '\0')
        return NULL;
    if (topics == NULL || topic_count == 0)
        return NULL;
    for (size_t i = 0; i < topic_count; i++) {
        if (!sl_bus__topic_name_valid(topics[i]))
            return NULL;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(topics[i], topics[j]) == 0)
                return NULL;
        }
    }
    return bus->ops->consumer_create(bus, group, topics, topic_count);
}

int sl_consumer_poll(sl_consumer_t *consumer, sl_msg_t *msgs, size_t max,
                     size_t *count, int timeout_ms)
{
    if (count != NULL)
        *count = 0;
    if (consumer == NULL || count == NULL || (msgs == NULL && max > 0))
        return SL_EINVAL;
    return consumer->ops->consumer_poll(consumer, msgs, max, count, timeout_ms);
}

int sl_consumer_commit(sl_consumer_t *consumer, const char *topic,
                       int32_t partition, int64_t next_offset)
{
    if (consumer == NULL || !sl_bus__topic_name_valid(topic))
        return SL_EINVAL;
    if (partition < 0 || next_offset < 0)
        return SL_EINVAL;
    return consumer->ops->consumer_commit(consumer, topic, partition,
                                          next_offset);
}

int64_t sl_consumer_committed(sl_consumer_t *consumer, const char *topic,
                              int32_t partition)
{
    if (consumer == NULL || !sl_bus__topic_name_valid(topic) || partition < 0)
        return -1;
    return consumer->ops->consumer_committed(consumer, topic, partition);
}

int64_t sl_consumer_lag(sl_consumer_t *consumer)
{
    if (consumer == NULL)
        return 0;
    return consumer->ops->consumer_lag(consumer);
}

int sl_consumer_stats(sl_consumer_t *consumer, sl_consumer_stats_t *out)
{
    if (consumer == NULL || out == NULL)
        return SL_EINVAL;
    memset(out, 0, sizeof(*out));
    if (consumer->ops->consumer_stats == NULL)
        return SL_OK;
    return consumer->ops->consumer_stats(consumer, out);
}

void sl_consumer_destroy(sl_consumer_t *consumer)
{
    if (consumer != NULL)
        consumer->ops->consumer_destroy(consumer);
}

const sl_header_t *sl_msg_header(const sl_msg_t *msg, const char *name)
{
    if (msg == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < msg->header_count; i++) {
        if (strcmp(msg->headers[i].name, name) == 0)
            return &msg->headers[i];
    }
    return NULL;
}
