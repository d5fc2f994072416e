/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Validation rejects what cannot be a real measurement or event; it does not
 * judge values that are unusual but possible, which is the detector's job.
 * A rejected record goes to the dead-letter queue with the returned reason.
 */
#ifndef SLUICE_MODEL_VALIDATE_H
#define SLUICE_MODEL_VALIDATE_H

#include <stdint.h>

#include "model/record.h"

/* Readings stamped more than this far ahead of the local clock are rejected:
 * a clock that far off is broken, and such rows would poison "latest". */
#define SL_VALIDATE_MAX_FUTURE_MS (5 * 60 * 1000)

/* 2000-01-01T00:00:00Z: no supported sensor fleet predates it. */
#define SL_VALIDATE_MIN_TIMESTAMP_MS INT64_C(946684800000)

/* Inclusive limits of metadata.signal_strength in dBm. No receiver detects
 * a signal below -174 dBm, the thermal noise power in 1 Hz of bandwidth at
 * 290 K, and a received power above +30 dBm (1 W) means a broken radio or a
 * wrong unit. */
#define SL_VALIDATE_MIN_SIGNAL_DBM (-174)
#define SL_VALIDATE_MAX_SIGNAL_DBM 30

/**
 * Checks a reading against physical limits, at wall-clock time now_ms.
 * Returns NULL when it is valid, else a static reason code such as
 * "non_finite_value", "humidity_out_of_range", "pressure_not_positive",
 * "empty_sensor_id", "invalid_sensor_type", "timestamp_before_2000",
 * "timestamp_in_future", "invalid_battery_level" or
 * "invalid_signal_strength". Non-finite means NaN or an infinity in value,
 * or in anomaly_score when has_score is set.
 */
const char *sl_reading_validate(const sl_reading_t *rec, int64_t now_ms);

/**
 * Checks a commerce event. Returns NULL when valid, else a reason code:
 * "empty_event_id", "empty_user_id", "invalid_event_type",
 * "invalid_device", "timestamp_before_2000",
 * "timestamp_in_future", "non_finite_value", "negative_price",
 * "negative_total", "negative_quantity", "negative_duration",
 * "negative_results_count". Optional fields are checked only when their
 * SL_EV_* bit is set in ev->present.
 */
const char *sl_event_validate(const sl_event_t *ev, int64_t now_ms);

#endif
