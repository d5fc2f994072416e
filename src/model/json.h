/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON forms of the records, for the API, the WebSocket streams, NDJSON
 * replay and HTTP ingest. Rendering never emits NaN or Infinity: a non-finite
 * double becomes JSON null. Timestamps are ISO-8601 UTC with a 'Z'.
 */
#ifndef SLUICE_MODEL_JSON_H
#define SLUICE_MODEL_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "model/record.h"

/**
 * Renders a reading as a new JSON object with the schema's field names.
 * Returns NULL only when memory runs out. The caller owns the result.
 */
json_t *sl_reading_to_json(const sl_reading_t *rec);

/** Renders a commerce event; optional fields that are absent are null. */
json_t *sl_event_to_json(const sl_event_t *ev);

/** Renders a window aggregate. */
json_t *sl_aggregate_to_json(const sl_aggregate_t *agg);

/**
 * Fills a reading from a JSON object with the schema's field names.
 * timestamp may be epoch milliseconds (integer) or an ISO-8601 string;
 * sensor_type an enum symbol; metadata an object. Missing optional fields
 * take the schema's defaults. Returns SL_OK, or SL_EINVAL with a message
 * naming the field in err.
 */
int sl_reading_from_json(const json_t *obj, sl_reading_t *out, char *err,
                         size_t err_size);

/** Fills a commerce event from a JSON object, as sl_reading_from_json. */
int sl_event_from_json(const json_t *obj, sl_event_t *out, char *err,
                       size_t err_size);

/**
 * Stores a double into a JSON object under key, as null when the value is
 * not finite (jansson refuses non-finite reals). Returns 0 or -1 on OOM.
 */
int sl_json_set_double(json_t *obj, const char *key, double value);

/** Stores ms since the epoch as an ISO-8601 string. Returns 0 or -1. */
int sl_json_set_time(json_t *obj, const char *key, int64_t ms);

#endif
