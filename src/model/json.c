/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON rendering and parsing of the records. The API and the WebSocket
 * streams render through here; NDJSON replay and HTTP ingest parse through
 * here. Rendering fails only when memory runs out, whatever the store hands
 * back. A non-finite double and, as a defence, text that is not valid UTF-8
 * both become null, because jansson's constructors return NULL for them.
 */
#include "model/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"
#include "util/timeutil.h"

/* An optional text field of sl_event_t, located by offset. */
typedef struct text_field {
    const char *key;
    size_t offset;
    size_t size; /* buffer size, NUL included */
    uint32_t bit;
} text_field_t;

#define EV_TEXT(name, bit)                                                     \
    {                                                                          \
#name, offsetof(sl_event_t, name), sizeof(((sl_event_t *)0)->name),    \
            bit                                                                \
    }

static const text_field_t event_optional_text[] = {
    EV_TEXT(product_name, SL_EV_PRODUCT_NAME),
    EV_TEXT(category, SL_EV_CATEGORY),
    EV_TEXT(currency, SL_EV_CURRENCY),
    EV_TEXT(page, SL_EV_PAGE),
    EV_TEXT(payment_method, SL_EV_PAYMENT_METHOD),
    EV_TEXT(shipping_address, SL_EV_SHIPPING_ADDRESS),
    EV_TEXT(query, SL_EV_QUERY),
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------------------
 * Rendering
 */

/* Stores value under key. jansson takes the reference even on failure. */
static int set_new(json_t *obj, const char *key, json_t *value)
{
    if (value == NULL)
        return -1;
    return json_object_set_new(obj, key, value);
}

/* Stores NUL-terminated text, or null when it is not valid UTF-8. */
static int set_text(json_t *obj, const char *key, const char *text)
{
    size_t len = strlen(text);
    json_t *value = json_stringn(text, len);

    if (value == NULL && !sl_utf8_valid(text, len))
        value = json_null();
    return set_new(obj, key, value);
}

int sl_json_set_double(json_t *obj, const char *key, double value)
{
    if (!isfinite(value))
        return set_new(obj, key, json_null());
    return set_new(obj, key, json_real(value));
}

int sl_json_set_time(json_t *obj, const char *key, int64_t ms)
{
    char buf[SL_ISO8601_MAX];

    if (sl_time_format_iso8601(ms, buf, sizeof(buf)) < 0)
        return -1;
    return set_new(obj, key, json_string(buf));
}

/* Stores an optional member: its value when present, else null. */
static int set_opt_integer(json_t *obj, const char *key, bool present,
                           json_int_t value)
{
    return set_new(obj, key, present ? json_integer(value) : json_null());
}

static int set_opt_double(json_t *obj, const char *key, bool present,
                          double value)
{
    if (!present)
        return set_new(obj, key, json_null());
    return sl_json_set_double(obj, key, value);
}

static json_t *metadata_to_json(const sl_reading_t *rec)
{
    json_t *meta = json_object();
    int rc = 0;

    if (meta == NULL)
        return NULL;
    rc |= set_new(meta, "battery_level", json_integer(rec->battery_level));
    rc |= set_new(meta, "signal_strength", json_integer(rec->signal_strength));
    if (rc != 0) {
        json_decref(meta);
        return NULL;
    }
    return meta;
}

json_t *sl_reading_to_json(const sl_reading_t *rec)
{
    json_t *obj = json_object();
    int rc = 0;

    if (obj == NULL)
        return NULL;
    rc |= set_text(obj, "sensor_id", rec->sensor_id);
    rc |= set_new(obj, "sensor_type",
                  json_string(sl_sensor_type_name(rec->sensor_type)));
    rc |= sl_json_set_double(obj, "value", rec->value);
    rc |= sl_json_set_time(obj, "timestamp", rec->timestamp_ms);
    rc |= set_text(obj, "location", rec->location);
    rc |= set_new(obj, "anomaly", json_boolean(rec->anomaly));
    rc |= set_opt_double(obj, "anomaly_score", rec->has_score,
                         rec->anomaly_score);
    rc |= set_new(obj, "metadata", metadata_to_json(rec));
    if (rec->has_unit)
        rc |= set_text(obj, "unit", rec->unit);
    else
        rc |= set_new(obj, "unit", json_null());

    if (rc != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static int set_event_numbers(json_t *obj, const sl_event_t *ev)
{
    uint32_t p = ev->present;
    int rc = 0;

    rc |= set_opt_integer(obj, "product_id", p & SL_EV_PRODUCT_ID,
                          ev->product_id);
    rc |= set_opt_integer(obj, "quantity", p & SL_EV_QUANTITY, ev->quantity);
    rc |= set_opt_integer(obj, "results_count", p & SL_EV_RESULTS_COUNT,
                          ev->results_count);
    rc |= set_opt_double(obj, "price", p & SL_EV_PRICE, ev->price);
    rc |= set_opt_double(obj, "total", p & SL_EV_TOTAL, ev->total);
    rc |= set_opt_double(obj, "duration_seconds", p & SL_EV_DURATION,
                         ev->duration_seconds);
    return rc;
}

json_t *sl_event_to_json(const sl_event_t *ev)
{
    json_t *obj = json_object();
    int rc = 0;

    if (obj == NULL)
        return NULL;
    rc |= set_text(obj, "event_id", ev->event_id);
    rc |= set_new(obj, "event_type",
                  json_string(sl_event_type_name(ev->event_type)));
    rc |= set_text(obj, "user_id", ev->user_id);
    rc |= sl_json_set_time(obj, "timestamp", ev->timestamp_ms);
    rc |= set_text(obj, "session_id", ev->session_id);
    rc |= set_new(obj, "device", json_string(sl_device_name(ev->device)));
    rc |= set_text(obj, "ip_address", ev->ip_address);
    rc |= set_event_numbers(obj, ev);
    for (size_t i = 0; i < COUNT_OF(event_optional_text); i++) {
        const text_field_t *f = &event_optional_text[i];
        const char *text = (const char *)ev + f->offset;

        if (ev->present & f->bit)
            rc |= set_text(obj, f->key, text);
        else
            rc |= set_new(obj, f->key, json_null());
    }

    if (rc != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

json_t *sl_aggregate_to_json(const sl_aggregate_t *agg)
{
    json_t *obj = json_object();
    int rc = 0;

    if (obj == NULL)
        return NULL;
    rc |= set_text(obj, "sensor_id", agg->sensor_id);
    rc |= set_new(obj, "sensor_type",
                  json_string(sl_sensor_type_name(agg->sensor_type)));
    rc |= sl_json_set_time(obj, "window_start", agg->window_start_ms);
    rc |= sl_json_set_time(obj, "window_end", agg->window_end_ms);
    rc |= set_new(obj, "count", json_integer(agg->count));
    rc |= sl_json_set_double(obj, "min", agg->min);
    rc |= sl_json_set_double(obj, "max", agg->max);
    rc |= sl_json_set_double(obj, "avg", agg->avg);
    rc |= sl_json_set_double(obj, "stddev", agg->stddev);

    if (rc != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* ---------------------------------------------------------------------------
 * Parsing. Every error message starts with the field name, as
 * "metadata.battery_level: not an integer".
 */

typedef struct parse_err {
    char *buf;
    size_t size;
} parse_err_t;

__attribute__((format(printf, 3, 4))) static int
fail(parse_err_t *err, const char *field, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (err->buf == NULL || err->size == 0)
        return SL_EINVAL;
    n = snprintf(err->buf, err->size, "%s: ", field);
    if (n >= 0 && (size_t)n < err->size) {
        va_start(ap, fmt);
        vsnprintf(err->buf + n, err->size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return SL_EINVAL;
}

/* Returns the member, or NULL when it is absent or JSON null. */
static const json_t *member(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    return json_is_null(v) ? NULL : v;
}

/* Copies a JSON string into dst[size]. Over-long text is an error, never
 * truncated. */
static int copy_text(const json_t *v, const char *field, char *dst, size_t size,
                     parse_err_t *err)
{
    const char *s;
    size_t len;

    if (!json_is_string(v))
        return fail(err, field, "not a string");
    s = json_string_value(v);
    len = json_string_length(v);
    if (len >= size)
        return fail(err, field, "longer than %zu bytes", size - 1);

    /* A jansson string may contain NUL, which json_loads() decodes from
     * "\u0000" under JSON_ALLOW_NUL. A C string cannot hold it, so
     * sl_utf8_valid() rejects it. jansson guarantees the rest is UTF-8. */
    if (!sl_utf8_valid(s, len))
        return fail(err, field, "contains a NUL character");
    memcpy(dst, s, len);
    dst[len] = '\0';
    return SL_OK;
}

static int get_text(const json_t *obj, const char *key, char *dst, size_t size,
                    parse_err_t *err)
{
    const json_t *v = member(obj, key);

    if (v == NULL)
        return fail(err, key, "missing");
    return copy_text(v, key, dst, size, err);
}

/* Reads an optional string. *present is set only on success. */
static int get_opt_text(const json_t *obj, const char *key, char *dst,
                        size_t size, bool *present, parse_err_t *err)
{
    const json_t *v = member(obj, key);
    int rc;

    *present = false;
    if (v == NULL)
        return SL_OK;
    rc = copy_text(v, key, dst, size, err);
    *present = rc == SL_OK;
    return rc;
}

static int read_integer(const json_t *v, const char *field, int64_t min,
                        int64_t max, int64_t *out, parse_err_t *err)
{
    json_int_t n;

    if (!json_is_integer(v))
        return fail(err, field, "not an integer");
    n = json_integer_value(v);
    if (n < min || n > max)
        return fail(err, field, "out of range %lld..%lld", (long long)min,
                    (long long)max);
    *out = (int64_t)n;
    return SL_OK;
}

static int read_number(const json_t *v, const char *field, double *out,
                       parse_err_t *err)
{
    if (!json_is_number(v))
        return fail(err, field, "not a number");
    *out = json_number_value(v);
    return SL_OK;
}

static int get_number(const json_t *obj, const char *key, double *out,
                      parse_err_t *err)
{
    const json_t *v = member(obj, key);

    if (v == NULL)
        return fail(err, key, "missing");
    return read_number(v, key, out, err);
}

static int get_timestamp(const json_t *obj, const char *key, int64_t *out,
                         parse_err_t *err)
{
    const json_t *v = member(obj, key);

    if (v == NULL)
        return fail(err, key, "missing");
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return SL_OK;
    }
    if (json_is_string(v) &&
        sl_time_parse_iso8601(json_string_value(v), out) == SL_OK)
        return SL_OK;
    return fail(err, key, "not ISO-8601 or epoch ms");
}

/* Reports an unknown enum symbol with the list of valid ones. */
static int fail_symbol(parse_err_t *err, const char *field,
                       const char *(*name_of)(int), int count)
{
    char list[160] = "";
    size_t used = 0;

    for (int i = 0; i < count && used < sizeof(list); i++) {
        int n = snprintf(list + used, sizeof(list) - used, "%s%s",
                         i == 0 ? "" : ", ", name_of(i));
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return fail(err, field, "unknown symbol, expected one of %s", list);
}

static const char *sensor_type_name_of(int i)
{
    return sl_sensor_type_name((sl_sensor_type_t)i);
}

static const char *event_type_name_of(int i)
{
    return sl_event_type_name((sl_event_type_t)i);
}

static const char *device_name_of(int i)
{
    return sl_device_name((sl_device_t)i);
}

/* Returns the string value of a required enum member, or NULL after
 * writing the error. */
static const char *get_symbol(const json_t *obj, const char *key,
                              parse_err_t *err)
{
    const json_t *v = member(obj, key);

    if (v == NULL) {
        fail(err, key, "missing");
        return NULL;
    }
    if (!json_is_string(v)) {
        fail(err, key, "not a string");
        return NULL;
    }
    return json_string_value(v);
}

static int parse_metadata(const json_t *obj, sl_reading_t *out,
                          parse_err_t *err)
{
    const json_t *meta = member(obj, "metadata");
    const json_t *v;
    int64_t n = 0;
    int rc;

    if (meta == NULL)
        return fail(err, "metadata", "missing");
    if (!json_is_object(meta))
        return fail(err, "metadata", "not an object");

    v = member(meta, "battery_level");
    if (v == NULL)
        return fail(err, "metadata.battery_level", "missing");
    rc = read_integer(v, "metadata.battery_level", INT32_MIN, INT32_MAX, &n,
                      err);
    if (rc != SL_OK)
        return rc;
    out->battery_level = (int32_t)n;

    v = member(meta, "signal_strength");
    if (v == NULL)
        return fail(err, "metadata.signal_strength", "missing");
    rc = read_integer(v, "metadata.signal_strength", INT32_MIN, INT32_MAX, &n,
                      err);
    if (rc != SL_OK)
        return rc;
    out->signal_strength = (int32_t)n;
    return SL_OK;
}

/* Reads anomaly, anomaly_score and unit, which may all be absent. */
static int parse_reading_optional(const json_t *obj, sl_reading_t *out,
                                  parse_err_t *err)
{
    const json_t *v;
    int rc;

    v = member(obj, "anomaly");
    if (v != NULL) {
        if (!json_is_boolean(v))
            return fail(err, "anomaly", "not a boolean");
        out->anomaly = json_is_true(v);
    }

    v = member(obj, "anomaly_score");
    if (v != NULL) {
        rc = read_number(v, "anomaly_score", &out->anomaly_score, err);
        if (rc != SL_OK)
            return rc;
        out->has_score = true;
    }

    return get_opt_text(obj, "unit", out->unit, sizeof(out->unit),
                        &out->has_unit, err);
}

int sl_reading_from_json(const json_t *obj, sl_reading_t *out, char *err,
                         size_t err_size)
{
    parse_err_t e = {err, err_size};
    const char *symbol;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(obj))
        return fail(&e, "reading", "not a JSON object");

    rc = get_text(obj, "sensor_id", out->sensor_id, sizeof(out->sensor_id), &e);
    if (rc != SL_OK)
        return rc;
    symbol = get_symbol(obj, "sensor_type", &e);
    if (symbol == NULL)
        return SL_EINVAL;
    if (sl_sensor_type_parse(symbol, &out->sensor_type) != SL_OK)
        return fail_symbol(&e, "sensor_type", sensor_type_name_of,
                           SL_SENSOR_TYPE_COUNT);
    rc = get_number(obj, "value", &out->value, &e);
    if (rc != SL_OK)
        return rc;
    rc = get_timestamp(obj, "timestamp", &out->timestamp_ms, &e);
    if (rc != SL_OK)
        return rc;
    rc = get_text(obj, "location", out->location, sizeof(out->location), &e);
    if (rc != SL_OK)
        return rc;
    rc = parse_metadata(obj, out, &e);
    if (rc != SL_OK)
        return rc;
    return parse_reading_optional(obj, out, &e);
}

static int parse_event_required(const json_t *obj, sl_event_t *out,
                                parse_err_t *err)
{
    const char *symbol;
    int rc;

    rc = get_text(obj, "event_id", out->event_id, sizeof(out->event_id), err);
    if (rc != SL_OK)
        return rc;
    symbol = get_symbol(obj, "event_type", err);
    if (symbol == NULL)
        return SL_EINVAL;
    if (sl_event_type_parse(symbol, &out->event_type) != SL_OK)
        return fail_symbol(err, "event_type", event_type_name_of,
                           SL_EVENT_TYPE_COUNT);
    rc = get_text(obj, "user_id", out->user_id, sizeof(out->user_id), err);
    if (rc != SL_OK)
        return rc;
    rc = get_timestamp(obj, "timestamp", &out->timestamp_ms, err);
    if (rc != SL_OK)
        return rc;
    rc = get_text(obj, "session_id", out->session_id, sizeof(out->session_id),
                  err);
    if (rc != SL_OK)
        return rc;
    symbol = get_symbol(obj, "device", err);
    if (symbol == NULL)
        return SL_EINVAL;
    if (sl_device_parse(symbol, &out->device) != SL_OK)
        return fail_symbol(err, "device", device_name_of, SL_DEVICE_COUNT);
    return get_text(obj, "ip_address", out->ip_address, sizeof(out->ip_address),
                    err);
}

/* Reads an optional integer member into *out and sets bit in *present. */
static int get_opt_integer(const json_t *obj, const char *key, int64_t min,
                           int64_t max, int64_t *out, uint32_t bit,
                           uint32_t *present, parse_err_t *err)
{
    const json_t *v = member(obj, key);
    int rc;

    if (v == NULL)
        return SL_OK;
    rc = read_integer(v, key, min, max, out, err);
    if (rc == SL_OK)
        *present |= bit;
    return rc;
}

static int get_opt_number(const json_t *obj, const char *key, double *out,
                          uint32_t bit, uint32_t *present, parse_err_t *err)
{
    const json_t *v = member(obj, key);
    int rc;

    if (v == NULL)
        return SL_OK;
    rc = read_number(v, key, out, err);
    if (rc == SL_OK)
        *present |= bit;
    return rc;
}

static int parse_event_numbers(const json_t *obj, sl_event_t *out,
                               parse_err_t *err)
{
    uint32_t *p = &out->present;
    int64_t quantity = 0, results_count = 0;
    int rc;

    rc = get_opt_integer(obj, "product_id", INT64_MIN, INT64_MAX,
                         &out->product_id, SL_EV_PRODUCT_ID, p, err);
    if (rc == SL_OK)
        rc = get_opt_integer(obj, "quantity", INT32_MIN, INT32_MAX, &quantity,
                             SL_EV_QUANTITY, p, err);
    if (rc == SL_OK)
        rc = get_opt_integer(obj, "results_count", INT32_MIN, INT32_MAX,
                             &results_count, SL_EV_RESULTS_COUNT, p, err);
    if (rc == SL_OK)
        rc = get_opt_number(obj, "price", &out->price, SL_EV_PRICE, p, err);
    if (rc == SL_OK)
        rc = get_opt_number(obj, "total", &out->total, SL_EV_TOTAL, p, err);
    if (rc == SL_OK)
        rc = get_opt_number(obj, "duration_seconds", &out->duration_seconds,
                            SL_EV_DURATION, p, err);
    out->quantity = (int32_t)quantity;
    out->results_count = (int32_t)results_count;
    return rc;
}

int sl_event_from_json(const json_t *obj, sl_event_t *out, char *err,
                       size_t err_size)
{
    parse_err_t e = {err, err_size};
    int rc;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(obj))
        return fail(&e, "event", "not a JSON object");

    rc = parse_event_required(obj, out, &e);
    if (rc != SL_OK)
        return rc;
    rc = parse_event_numbers(obj, out, &e);
    if (rc != SL_OK)
        return rc;
    for (size_t i = 0; i < COUNT_OF(event_optional_text); i++) {
        const text_field_t *f = &event_optional_text[i];
        bool present;

        rc = get_opt_text(obj, f->key, (char *)out + f->offset, f->size,
                          &present, &e);
        if (rc != SL_OK)
            return rc;
        if (present)
            out->present |= f->bit;
    }
    return SL_OK;
}
