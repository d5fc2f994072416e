/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The publisher: the one place where producers (generators, replay, HTTP
 * ingest) turn records into Confluent-framed Avro values and hand them to
 * the bus. It registers the built-in schemas under the TopicNameStrategy
 * subjects "<topic>-value" and keeps one encoder per topic.
 */
#include "pipeline/publish.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"

/* Maximum encoded record, in bytes. A reading needs at most about 500
 * bytes: a 127-byte id, a 255-byte location, a 31-byte unit and fixed
 * fields. An event has eleven strings of at most 255 bytes each plus fixed
 * fields, under 3.5 KiB. Both fit with the 5-byte frame header. */
#define SL_PUBLISH_MAX_BYTES 8192

struct sl_publisher {
    sl_bus_t *bus;
    sl_registry_t *reg;
    int timeout_ms;
    int32_t reading_schema_id;
    int32_t event_schema_id;
    sl_encoder_t *reading_enc;
    sl_encoder_t *event_enc;
};

/* Registers a built-in schema under "<topic>-value" and creates its
 * encoder. The schema itself is borrowed from the registry, which outlives
 * the publisher. */
static int register_topic(sl_registry_t *reg, const char *topic,
                          const char *file_name, int32_t *id_out,
                          sl_encoder_t **enc_out)
{
    char subject[SL_ID_MAX + 1];
    char err[256] = "";
    const char *json = sl_schema_builtin(file_name);
    avro_schema_t schema;

    if (json == NULL) {
        sl_log_error("publish", "built-in schema not found file=%s", file_name);
        return SL_ENOTFOUND;
    }
    snprintf(subject, sizeof(subject), "%s-value", topic);
    if (sl_registry_register(reg, subject, json, id_out, err, sizeof(err)) !=
        SL_OK) {
        sl_log_error("publish", "schema registration failed subject=%s: %s",
                     subject, err);
        return SL_EINVAL;
    }
    schema = sl_registry_lookup(reg, *id_out);
    if (schema == NULL) {
        sl_log_error("publish", "registered schema id=%d not found",
                     (int)*id_out);
        return SL_ENOTFOUND;
    }
    *enc_out = sl_encoder_create(schema, *id_out);
    if (*enc_out == NULL) {
        sl_log_error("publish", "sl_encoder_create failed subject=%s", subject);
        return SL_ENOMEM;
    }
    return SL_OK;
}

sl_publisher_t *sl_publisher_create(sl_bus_t *bus, sl_registry_t *reg,
                                    int timeout_ms)
{
    sl_publisher_t *pub;

    if (bus == NULL || reg == NULL)
        return NULL;
    pub = calloc(1, sizeof(*pub));
    if (pub == NULL)
        return NULL;
    pub->bus = bus;
    pub->reg = reg;
    pub->timeout_ms = timeout_ms;

    if (register_topic(reg, SL_TOPIC_SENSOR_READINGS, "sensor_reading.avsc",
                       &pub->reading_schema_id, &pub->reading_enc) != SL_OK)
        goto err;
    if (register_topic(reg, SL_TOPIC_ECOMMERCE_EVENTS, "ecommerce_event.avsc",
                       &pub->event_schema_id, &pub->event_enc) != SL_OK)
        goto err;
    return pub;

err:
    sl_publisher_destroy(pub);
    return NULL;
}

void sl_publisher_destroy(sl_publisher_t *pub)
{
    if (pub == NULL)
        return;
    sl_encoder_destroy(pub->reading_enc);
    sl_encoder_destroy(pub->event_enc);
    free(pub);
}

int sl_publish_reading(sl_publisher_t *pub, const sl_reading_t *rec)
{
    uint8_t buf[SL_PUBLISH_MAX_BYTES];
    size_t len = 0;
    int rc;

    if (pub == NULL || rec == NULL)
        return SL_EINVAL;
    rc = sl_reading_encode(pub->reading_enc, rec, buf, sizeof(buf), &len);
    if (rc != SL_OK)
        return rc;
    return sl_bus_publish(pub->bus, SL_TOPIC_SENSOR_READINGS, -1,
                          rec->sensor_id, strlen(rec->sensor_id), buf, len,
                          NULL, 0, pub->timeout_ms, NULL);
}

int sl_publish_event(sl_publisher_t *pub, const sl_event_t *ev)
{
    uint8_t buf[SL_PUBLISH_MAX_BYTES];
    size_t len = 0;
    int rc;

    if (pub == NULL || ev == NULL)
        return SL_EINVAL;
    rc = sl_event_encode(pub->event_enc, ev, buf, sizeof(buf), &len);
    if (rc != SL_OK)
        return rc;
    return sl_bus_publish(pub->bus, SL_TOPIC_ECOMMERCE_EVENTS, -1, ev->user_id,
                          strlen(ev->user_id), buf, len, NULL, 0,
                          pub->timeout_ms, NULL);
}

int sl_publish_frame(sl_publisher_t *pub, const char *topic, const void *key,
                     size_t key_len, const void *value, size_t value_len)
{
    if (pub == NULL || topic == NULL || topic[0] == '\0')
        return SL_EINVAL;
    if ((key == NULL && key_len > 0) || (value == NULL && value_len > 0))
        return SL_EINVAL;
    return sl_bus_publish(pub->bus, topic, -1, key, key_len, value, value_len,
                          NULL, 0, pub->timeout_ms, NULL);
}

int32_t sl_publisher_reading_schema_id(const sl_publisher_t *pub)
{
    return pub->reading_schema_id;
}

int32_t sl_publisher_event_schema_id(const sl_publisher_t *pub)
{
    return pub->event_schema_id;
}
