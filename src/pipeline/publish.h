/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The producing side of the pipeline: encodes records with the schemas
 * registered for their topics and publishes them keyed as DESIGN fixes
 * (readings by sensor_id, events by user_id). Generators, replay and HTTP
 * ingest all publish through it.
 */
#ifndef SLUICE_PIPELINE_PUBLISH_H
#define SLUICE_PIPELINE_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"
#include "model/record.h"
#include "schema/schema.h"

typedef struct sl_publisher sl_publisher_t;

/**
 * Creates a publisher. It registers the built-in schemas under
 * "sensor-readings-value" and "ecommerce-events-value" in reg (an existing
 * identical schema keeps its id). timeout_ms bounds each publish's wait on
 * a full partition (negative: wait forever).
 * Returns NULL on failure. One thread at a time; bus and reg outlive it.
 */
sl_publisher_t *sl_publisher_create(sl_bus_t *bus, sl_registry_t *reg,
                                    int timeout_ms);

void sl_publisher_destroy(sl_publisher_t *pub);

/**
 * Encodes and publishes a reading to sensor-readings.
 * Returns SL_OK once the bus accepted it, SL_EINVAL when it cannot be
 * encoded (an enum without symbol), or the bus's error.
 */
int sl_publish_reading(sl_publisher_t *pub, const sl_reading_t *rec);

/** Encodes and publishes a commerce event to ecommerce-events. */
int sl_publish_event(sl_publisher_t *pub, const sl_event_t *ev);

/** Publishes raw bytes unchanged, as captured frames are replayed. */
int sl_publish_frame(sl_publisher_t *pub, const char *topic, const void *key,
                     size_t key_len, const void *value, size_t value_len);

/** Returns the schema id used for readings / events. */
int32_t sl_publisher_reading_schema_id(const sl_publisher_t *pub);
int32_t sl_publisher_event_schema_id(const sl_publisher_t *pub);

#endif
