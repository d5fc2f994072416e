/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The records that flow through sluice: sensor readings, commerce events,
 * window aggregates, alerts and dead-letter entries. They are plain structs
 * with fixed-size text buffers so a batch of them is one allocation and a
 * decoded record owns no heap memory. Text is always valid UTF-8 and
 * NUL-terminated; a value longer than its buffer is rejected at decode time,
 * never truncated.
 */
#ifndef SLUICE_MODEL_RECORD_H
#define SLUICE_MODEL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/utf8.h"

/* Buffer sizes in bytes, without the terminating NUL. */
#define SL_ID_MAX 127        /* sensor_id, event_id, user_id, session_id */
#define SL_TEXT_MAX 255      /* location, names, pages, queries */
#define SL_SHORT_TEXT_MAX 31 /* unit, currency, payment method */
#define SL_IP_MAX 63         /* ip_address, IPv6 with zone included */

typedef enum sl_sensor_type {
    SL_SENSOR_TEMPERATURE = 0,
    SL_SENSOR_HUMIDITY = 1,
    SL_SENSOR_PRESSURE = 2,
    SL_SENSOR_VIBRATION = 3,
    SL_SENSOR_POWER = 4,
    SL_SENSOR_OTHER = 5,
    SL_SENSOR_TYPE_COUNT = 6,
} sl_sensor_type_t;

typedef enum sl_event_type {
    SL_EVENT_PAGE_VIEW = 0,
    SL_EVENT_ADD_TO_CART = 1,
    SL_EVENT_PURCHASE = 2,
    SL_EVENT_SEARCH = 3,
    SL_EVENT_REMOVE_FROM_CART = 4,
    SL_EVENT_OTHER = 5,
    SL_EVENT_TYPE_COUNT = 6,
} sl_event_type_t;

typedef enum sl_device {
    SL_DEVICE_MOBILE = 0,
    SL_DEVICE_DESKTOP = 1,
    SL_DEVICE_TABLET = 2,
    SL_DEVICE_OTHER = 3,
    SL_DEVICE_COUNT = 4,
} sl_device_t;

/* One sensor reading, as in schemas/sensor_reading.avsc. */
typedef struct sl_reading {
    char sensor_id[SL_ID_MAX + 1];
    char location[SL_TEXT_MAX + 1];
    char unit[SL_SHORT_TEXT_MAX + 1]; /* meaningful only when has_unit */
    int64_t timestamp_ms;             /* event time, ms since the epoch */
    double value;
    double anomaly_score;    /* meaningful only when has_score */
    int32_t battery_level;   /* percent */
    int32_t signal_strength; /* dBm */
    sl_sensor_type_t sensor_type;
    bool anomaly;
    bool has_unit;
    bool has_score;
} sl_reading_t;

/* Presence bits of the optional commerce fields. */
enum {
    SL_EV_PRODUCT_ID = 1u << 0,
    SL_EV_PRODUCT_NAME = 1u << 1,
    SL_EV_CATEGORY = 1u << 2,
    SL_EV_QUANTITY = 1u << 3,
    SL_EV_PRICE = 1u << 4,
    SL_EV_TOTAL = 1u << 5,
    SL_EV_CURRENCY = 1u << 6,
    SL_EV_PAGE = 1u << 7,
    SL_EV_DURATION = 1u << 8,
    SL_EV_PAYMENT_METHOD = 1u << 9,
    SL_EV_SHIPPING_ADDRESS = 1u << 10,
    SL_EV_QUERY = 1u << 11,
    SL_EV_RESULTS_COUNT = 1u << 12,
};

/* One commerce event, as in schemas/ecommerce_event.avsc. An optional
 * field is meaningful only when its SL_EV_* bit is set in `present`. */
typedef struct sl_event {
    char event_id[SL_ID_MAX + 1];
    char user_id[SL_ID_MAX + 1];
    char session_id[SL_ID_MAX + 1];
    char ip_address[SL_IP_MAX + 1];
    char product_name[SL_TEXT_MAX + 1];
    char category[SL_TEXT_MAX + 1];
    char currency[SL_SHORT_TEXT_MAX + 1];
    char page[SL_TEXT_MAX + 1];
    char payment_method[SL_SHORT_TEXT_MAX + 1];
    char shipping_address[SL_TEXT_MAX + 1];
    char query[SL_TEXT_MAX + 1];
    int64_t timestamp_ms;
    int64_t product_id;
    double price;
    double total;
    double duration_seconds;
    int32_t quantity;
    int32_t results_count;
    uint32_t present;
    sl_event_type_t event_type;
    sl_device_t device;
} sl_event_t;

/* Statistics of one closed tumbling window of one sensor. */
typedef struct sl_aggregate {
    char sensor_id[SL_ID_MAX + 1];
    sl_sensor_type_t sensor_type;
    int64_t window_start_ms;
    int64_t window_end_ms; /* exclusive */
    int64_t count;
    double min;
    double max;
    double avg;
    double stddev; /* population standard deviation */
} sl_aggregate_t;

/** Returns the schema symbol ("temperature", ...) of a sensor type. */
const char *sl_sensor_type_name(sl_sensor_type_t type);

/**
 * Looks a sensor type up by its schema symbol, case-insensitively.
 * Returns SL_OK, or SL_ENOTFOUND when the name is no symbol.
 */
int sl_sensor_type_parse(const char *name, sl_sensor_type_t *out);

const char *sl_event_type_name(sl_event_type_t type);
int sl_event_type_parse(const char *name, sl_event_type_t *out);
const char *sl_device_name(sl_device_t device);
int sl_device_parse(const char *name, sl_device_t *out);

/**
 * Copies a NUL-terminated string into a fixed buffer of dst_size bytes.
 * Returns SL_OK, or SL_EINVAL (leaving dst empty) when src does not fit:
 * sluice rejects over-long text instead of truncating it.
 */
int sl_text_copy(char *dst, size_t dst_size, const char *src);

#endif
