/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Physical and logical limits of readings and commerce events. The processor
 * calls these after decoding, and a non-NULL reason sends the record to the
 * dead-letter queue. Checks run in a fixed order, so a record that breaks
 * several rules always gets the same reason.
 */
#include "model/validate.h"

#include <math.h>
#include <stdbool.h>

static const char *check_timestamp(int64_t ts, int64_t now_ms)
{
    if (ts < SL_VALIDATE_MIN_TIMESTAMP_MS)
        return "timestamp_before_2000";

    /* The unsigned difference is exact whenever ts > now_ms, even when
     * ts - now_ms would overflow int64. */
    if (ts > now_ms &&
        (uint64_t)ts - (uint64_t)now_ms > (uint64_t)SL_VALIDATE_MAX_FUTURE_MS)
        return "timestamp_in_future";
    return NULL;
}

static const char *check_reading_value(const sl_reading_t *rec)
{
    if (!isfinite(rec->value))
        return "non_finite_value";
    if (rec->has_score && !isfinite(rec->anomaly_score))
        return "non_finite_value";

    /* Relative humidity is a percentage and absolute pressure cannot be
     * zero or negative, whatever the unit. */
    if (rec->sensor_type == SL_SENSOR_HUMIDITY &&
        (rec->value < 0.0 || rec->value > 100.0))
        return "humidity_out_of_range";
    if (rec->sensor_type == SL_SENSOR_PRESSURE && rec->value <= 0.0)
        return "pressure_not_positive";
    return NULL;
}

const char *sl_reading_validate(const sl_reading_t *rec, int64_t now_ms)
{
    const char *reason;

    if (rec->sensor_id[0] == '\0')
        return "empty_sensor_id";
    if ((unsigned)rec->sensor_type >= SL_SENSOR_TYPE_COUNT)
        return "invalid_sensor_type";

    reason = check_reading_value(rec);
    if (reason != NULL)
        return reason;
    reason = check_timestamp(rec->timestamp_ms, now_ms);
    if (reason != NULL)
        return reason;

    if (rec->battery_level < 0 || rec->battery_level > 100)
        return "invalid_battery_level";
    if (rec->signal_strength < SL_VALIDATE_MIN_SIGNAL_DBM ||
        rec->signal_strength > SL_VALIDATE_MAX_SIGNAL_DBM)
        return "invalid_signal_strength";
    return NULL;
}

static bool has(const sl_event_t *ev, uint32_t bit)
{
    return (ev->present & bit) != 0;
}

static const char *check_event_amounts(const sl_event_t *ev)
{
    if ((has(ev, SL_EV_PRICE) && !isfinite(ev->price)) ||
        (has(ev, SL_EV_TOTAL) && !isfinite(ev->total)) ||
        (has(ev, SL_EV_DURATION) && !isfinite(ev->duration_seconds)))
        return "non_finite_value";

    if (has(ev, SL_EV_PRICE) && ev->price < 0.0)
        return "negative_price";
    if (has(ev, SL_EV_TOTAL) && ev->total < 0.0)
        return "negative_total";
    if (has(ev, SL_EV_QUANTITY) && ev->quantity < 0)
        return "negative_quantity";
    if (has(ev, SL_EV_DURATION) && ev->duration_seconds < 0.0)
        return "negative_duration";
    if (has(ev, SL_EV_RESULTS_COUNT) && ev->results_count < 0)
        return "negative_results_count";
    return NULL;
}

const char *sl_event_validate(const sl_event_t *ev, int64_t now_ms)
{
    const char *reason;

    if (ev->event_id[0] == '\0')
        return "empty_event_id";
    if (ev->user_id[0] == '\0')
        return "empty_user_id";
    if ((unsigned)ev->event_type >= SL_EVENT_TYPE_COUNT)
        return "invalid_event_type";
    if ((unsigned)ev->device >= SL_DEVICE_COUNT)
        return "invalid_device";

    reason = check_timestamp(ev->timestamp_ms, now_ms);
    if (reason != NULL)
        return reason;
    return check_event_amounts(ev);
}
