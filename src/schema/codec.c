/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mapping between our record structs (model/record.h) and values of
 * schemas/sensor_reading.avsc and schemas/ecommerce_event.avsc. Fields are
 * found by name, enums travel as symbol names (a schema's enum index need
 * not equal our C enum value), integers are range-checked before they are
 * narrowed, and text that does not fit its buffer is rejected.
 */
#include <stddef.h>
#include <string.h>

#include "model/record.h"
#include "schema/schema.h"
#include "schema/schema_int.h"
#include "util/err.h"
#include "util/utf8.h"

/* ---- Decoding helpers --------------------------------------------------- */

static sl_decode_err_t get_field(avro_value_t *rec, const char *name,
                                 avro_value_t *field)
{
    return avro_value_get_by_name(rec, name, field, NULL) == 0
               ? SL_DECODE_OK
               : SL_DECODE_INTERNAL;
}

/* Unwraps an optional value. Returns 1 with *inner set when a value is
 * present, 0 when the null branch is chosen. A non-union is present. */
static int get_optional(avro_value_t *field, avro_value_t *inner)
{
    if (avro_value_get_type(field) != AVRO_UNION) {
        *inner = *field;
        return 1;
    }
    if (avro_value_get_current_branch(field, inner) != 0) {
        return 0;
    }
    return avro_value_get_type(inner) != AVRO_NULL;
}

static sl_decode_err_t get_text(avro_value_t *value, char *dst, size_t size)
{
    const char *s;
    size_t n; /* includes the terminating NUL */

    if (avro_value_get_type(value) != AVRO_STRING ||
        avro_value_get_string(value, &s, &n) != 0 || n == 0) {
        return SL_DECODE_INTERNAL;
    }
    if (n > size) {
        return SL_DECODE_FIELD_TOO_LONG;
    }
    memcpy(dst, s, n - 1);
    dst[n - 1] = '\0';
    return SL_DECODE_OK;
}

static sl_decode_err_t get_text_field(avro_value_t *rec, const char *name,
                                      char *dst, size_t size)
{
    avro_value_t field;
    sl_decode_err_t err = get_field(rec, name, &field);

    return err != SL_DECODE_OK ? err : get_text(&field, dst, size);
}

static sl_decode_err_t get_int64(avro_value_t *value, int64_t *out)
{
    int32_t v32;

    switch (avro_value_get_type(value)) {
    case AVRO_INT64:
        return avro_value_get_long(value, out) == 0 ? SL_DECODE_OK
                                                    : SL_DECODE_INTERNAL;
    case AVRO_INT32:
        if (avro_value_get_int(value, &v32) != 0) {
            return SL_DECODE_INTERNAL;
        }
        *out = v32;
        return SL_DECODE_OK;
    default:
        return SL_DECODE_INTERNAL;
    }
}

static sl_decode_err_t get_double(avro_value_t *value, double *out)
{
    float f;

    switch (avro_value_get_type(value)) {
    case AVRO_DOUBLE:
        return avro_value_get_double(value, out) == 0 ? SL_DECODE_OK
                                                      : SL_DECODE_INTERNAL;
    case AVRO_FLOAT:
        if (avro_value_get_float(value, &f) != 0) {
            return SL_DECODE_INTERNAL;
        }
        *out = f;
        return SL_DECODE_OK;
    default:
        return SL_DECODE_INTERNAL;
    }
}

/* Returns the symbol name of an enum field, or NULL. */
static const char *get_symbol(avro_value_t *rec, const char *name)
{
    avro_value_t field;
    avro_schema_t schema;
    int index;

    if (get_field(rec, name, &field) != SL_DECODE_OK ||
        avro_value_get_type(&field) != AVRO_ENUM ||
        avro_value_get_enum(&field, &index) != 0) {
        return NULL;
    }
    schema = avro_value_get_schema(&field);
    if (index < 0 || index >= avro_schema_enum_number_of_symbols(schema)) {
        return NULL;
    }
    return avro_schema_enum_get(schema, index);
}

/* ---- Sensor readings ---------------------------------------------------- */

static sl_decode_err_t reading_from_value(avro_value_t *v, sl_reading_t *out)
{
    avro_value_t field, inner;
    const char *symbol = get_symbol(v, "sensor_type");
    sl_decode_err_t err;
    int anomaly = 0;

    if (symbol == NULL || sl_sensor_type_parse(symbol, &out->sensor_type)) {
        return SL_DECODE_INTERNAL;
    }
    err =
        get_text_field(v, "sensor_id", out->sensor_id, sizeof(out->sensor_id));
    if (err == SL_DECODE_OK) {
        err =
            get_text_field(v, "location", out->location, sizeof(out->location));
    }
    if (err == SL_DECODE_OK && (err = get_field(v, "value", &field)) == 0) {
        err = get_double(&field, &out->value);
    }
    if (err == SL_DECODE_OK && (err = get_field(v, "timestamp", &field)) == 0) {
        err = get_int64(&field, &out->timestamp_ms);
    }
    if (err == SL_DECODE_OK && (err = get_field(v, "anomaly", &field)) == 0) {
        err = avro_value_get_boolean(&field, &anomaly) ? SL_DECODE_INTERNAL
                                                       : SL_DECODE_OK;
        out->anomaly = anomaly != 0;
    }
    if (err == SL_DECODE_OK && (err = get_field(v, "metadata", &field)) == 0) {
        err = sl_value__get_int32(&field, "battery_level", &out->battery_level);
        if (err == SL_DECODE_OK) {
            err = sl_value__get_int32(&field, "signal_strength",
                                      &out->signal_strength);
        }
    }
    if (err == SL_DECODE_OK && (err = get_field(v, "unit", &field)) == 0 &&
        get_optional(&field, &inner)) {
        out->has_unit = true;
        err = get_text(&inner, out->unit, sizeof(out->unit));
    }
    return err;
}

/* Decodes a frame and maps the value into the record at out (size bytes)
 * with from_value. The record is zeroed first, and again on failure, so a
 * caller never sees a half-filled record. */
static sl_decode_err_t
decode_record(sl_decoder_t *dec, const void *frame, size_t len, void *out,
              size_t size,
              sl_decode_err_t (*from_value)(avro_value_t *, void *))
{
    avro_value_t *v;
    sl_decode_err_t err;

    if (out == NULL) {
        return SL_DECODE_INTERNAL;
    }
    memset(out, 0, size);
    err = sl_decoder_decode(dec, frame, len, &v, NULL);
    if (err != SL_DECODE_OK) {
        return err;
    }
    err = from_value(v, out);
    if (err != SL_DECODE_OK) {
        memset(out, 0, size);
    }
    return err;
}

static sl_decode_err_t reading_from_any(avro_value_t *v, void *out)
{
    return reading_from_value(v, out);
}

sl_decode_err_t sl_reading__decode_generic(sl_decoder_t *dec, const void *frame,
                                           size_t len, sl_reading_t *out)
{
    return decode_record(dec, frame, len, out, sizeof(*out), reading_from_any);
}

/* ---- Sensor readings without libavro ------------------------------------ */

/*
 * The processor decodes every reading, and libavro's generic path walks
 * the body twice (the bounds check, then the read) and finds each field by
 * name. When the writer schema is schemas/sensor_reading.avsc itself, the
 * body is parsed here in one pass instead. The fast path only claims
 * inputs whose result it is sure of: anything unusual (an overlong or
 * out-of-range varint, a string that is not UTF-8 or too long, a boolean
 * byte other than 0 or 1, an enum or union index out of range, trailing
 * bytes) returns false, and the libavro path then decodes the frame and
 * reports the error. reading_fast_decode_test compares both on thousands
 * of varied and corrupted frames.
 */

typedef struct cursor {
    const uint8_t *p;
    const uint8_t *end;
} cursor_t;

/* Reads a canonical zig-zag varint of at most max_bytes bytes (4 for an
 * int: 28 bits; 9 for a long: 63 bits). */
static bool read_zigzag(cursor_t *c, unsigned max_bytes, int64_t *out)
{
    uint64_t acc = 0;

    for (unsigned i = 0; i < max_bytes && c->p < c->end; i++) {
        uint8_t b = *c->p++;

        acc |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            if (b == 0 && i > 0)
                return false; /* overlong */
            *out = (int64_t)(acc >> 1) ^ -(int64_t)(acc & 1);
            return true;
        }
    }
    return false;
}

static bool read_fast_text(cursor_t *c, char *dst, size_t size)
{
    int64_t n;

    if (!read_zigzag(c, 9, &n) || n < 0 || (uint64_t)n >= size ||
        (uint64_t)n > (uint64_t)(c->end - c->p) ||
        !sl_utf8_valid((const char *)c->p, (size_t)n))
        return false;
    memcpy(dst, c->p, (size_t)n);
    dst[n] = '\0';
    c->p += n;
    return true;
}

static bool read_fast_int32(cursor_t *c, int32_t *out)
{
    int64_t v;

    if (!read_zigzag(c, 4, &v))
        return false;
    *out = (int32_t)v; /* 4 bytes hold at most 28 bits */
    return true;
}

/* The symbols of SensorType in schemas/sensor_reading.avsc, in order. */
static const char *const sensor_type_symbols[] = {
    "temperature", "humidity", "pressure", "vibration", "power", "other"};

static bool reading_fast(const uint8_t *body, size_t len, sl_reading_t *out)
{
    cursor_t c = {body, body + len};
    int64_t v;

    if (!read_fast_text(&c, out->sensor_id, sizeof(out->sensor_id)) ||
        !read_zigzag(&c, 4, &v) || v < 0 ||
        v >= (int64_t)(sizeof(sensor_type_symbols) /
                       sizeof(sensor_type_symbols[0])) ||
        sl_sensor_type_parse(sensor_type_symbols[v], &out->sensor_type) != 0 ||
        c.end - c.p < 8)
        return false;
    memcpy(&out->value, c.p, 8); /* little-endian IEEE-754, as on x86-64 */
    c.p += 8;
    if (!read_zigzag(&c, 9, &out->timestamp_ms) ||
        !read_fast_text(&c, out->location, sizeof(out->location)) ||
        c.p >= c.end || *c.p > 1)
        return false;
    out->anomaly = *c.p++ == 1;
    if (!read_fast_int32(&c, &out->battery_level) ||
        !read_fast_int32(&c, &out->signal_strength) ||
        !read_zigzag(&c, 9, &v) || (v != 0 && v != 1))
        return false;
    if (v == 1) {
        out->has_unit = true;
        if (!read_fast_text(&c, out->unit, sizeof(out->unit)))
            return false;
    }
    return c.p == c.end;
}

sl_decode_err_t sl_reading_decode(sl_decoder_t *dec, const void *frame,
                                  size_t len, sl_reading_t *out)
{
    const uint8_t *body;
    size_t body_len;
    int32_t id;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (dec != NULL && out != NULL &&
        sl_frame_parse(frame, len, &id, &body, &body_len) == SL_DECODE_OK &&
        sl_decoder__is_builtin(dec, id, "sensor_reading.avsc")) {
        memset(out, 0, sizeof(*out));
        if (reading_fast(body, body_len, out))
            return SL_DECODE_OK;
    }
#endif
    return sl_reading__decode_generic(dec, frame, len, out);
}

bool sl_reading_peek_sensor_id(sl_decoder_t *dec, const void *frame, size_t len,
                               char *out, size_t out_size)
{
    const uint8_t *body;
    size_t body_len;
    cursor_t c;
    int32_t id;

    if (dec == NULL || out == NULL ||
        sl_frame_parse(frame, len, &id, &body, &body_len) != SL_DECODE_OK ||
        !sl_decoder__is_builtin(dec, id, "sensor_reading.avsc"))
        return false;
    c = (cursor_t){body, body + body_len};
    return read_fast_text(&c, out, out_size);
}

/* ---- Commerce events ---------------------------------------------------- */

typedef enum opt_kind { OPT_TEXT, OPT_DOUBLE, OPT_INT32, OPT_INT64 } opt_kind_t;

/* The optional fields of ecommerce_event.avsc, each a ["null", T] union. */
static const struct opt_field {
    const char *name;
    uint32_t bit;
    opt_kind_t kind;
    size_t offset;
    size_t size; /* buffer size of text fields */
} opt_fields[] = {
#define TEXT(n, b)                                                             \
    {                                                                          \
#n, b, OPT_TEXT, offsetof(sl_event_t, n), sizeof(((sl_event_t *)0)->n) \
    }
    {"product_id", SL_EV_PRODUCT_ID, OPT_INT64,
     offsetof(sl_event_t, product_id), 0},
    TEXT(product_name, SL_EV_PRODUCT_NAME),
    TEXT(category, SL_EV_CATEGORY),
    {"quantity", SL_EV_QUANTITY, OPT_INT32, offsetof(sl_event_t, quantity), 0},
    {"price", SL_EV_PRICE, OPT_DOUBLE, offsetof(sl_event_t, price), 0},
    {"total", SL_EV_TOTAL, OPT_DOUBLE, offsetof(sl_event_t, total), 0},
    TEXT(currency, SL_EV_CURRENCY),
    TEXT(page, SL_EV_PAGE),
    {"duration_seconds", SL_EV_DURATION, OPT_DOUBLE,
     offsetof(sl_event_t, duration_seconds), 0},
    TEXT(payment_method, SL_EV_PAYMENT_METHOD),
    TEXT(shipping_address, SL_EV_SHIPPING_ADDRESS),
    TEXT(query, SL_EV_QUERY),
    {"results_count", SL_EV_RESULTS_COUNT, OPT_INT32,
     offsetof(sl_event_t, results_count), 0},
#undef TEXT
};

#define OPT_FIELD_COUNT (sizeof(opt_fields) / sizeof(opt_fields[0]))

static sl_decode_err_t
get_opt_field(avro_value_t *v, const struct opt_field *of, sl_event_t *out)
{
    avro_value_t field, inner;
    char *dst = (char *)out + of->offset;
    sl_decode_err_t err = get_field(v, of->name, &field);

    if (err != SL_DECODE_OK || !get_optional(&field, &inner)) {
        return err;
    }
    out->present |= of->bit;
    switch (of->kind) {
    case OPT_TEXT:
        return get_text(&inner, dst, of->size);
    case OPT_DOUBLE:
        return get_double(&inner, (double *)(void *)dst);
    case OPT_INT32:
        return sl_value__int32(&inner, (int32_t *)(void *)dst);
    case OPT_INT64:
        return get_int64(&inner, (int64_t *)(void *)dst);
    }
    return SL_DECODE_INTERNAL;
}

static sl_decode_err_t event_from_value(avro_value_t *v, sl_event_t *out)
{
    const char *type = get_symbol(v, "event_type");
    const char *device = get_symbol(v, "device");
    avro_value_t field;
    sl_decode_err_t err;

    if (type == NULL || device == NULL ||
        sl_event_type_parse(type, &out->event_type) != SL_OK ||
        sl_device_parse(device, &out->device) != SL_OK) {
        return SL_DECODE_INTERNAL;
    }
    err = get_text_field(v, "event_id", out->event_id, sizeof(out->event_id));
    if (err == SL_DECODE_OK) {
        err = get_text_field(v, "user_id", out->user_id, sizeof(out->user_id));
    }
    if (err == SL_DECODE_OK) {
        err = get_text_field(v, "session_id", out->session_id,
                             sizeof(out->session_id));
    }
    if (err == SL_DECODE_OK) {
        err = get_text_field(v, "ip_address", out->ip_address,
                             sizeof(out->ip_address));
    }
    if (err == SL_DECODE_OK && (err = get_field(v, "timestamp", &field)) == 0) {
        err = get_int64(&field, &out->timestamp_ms);
    }
    for (size_t i = 0; i < OPT_FIELD_COUNT && err == SL_DECODE_OK; i++) {
        err = get_opt_field(v, &opt_fields[i], out);
    }
    return err;
}

static sl_decode_err_t event_from_any(avro_value_t *v, void *out)
{
    return event_from_value(v, out);
}

sl_decode_err_t sl_event_decode(sl_decoder_t *dec, const void *frame,
                                size_t len, sl_event_t *out)
{
    return decode_record(dec, frame, len, out, sizeof(*out), event_from_any);
}

/* ---- Encoding helpers --------------------------------------------------- */

static int set_text(avro_value_t *rec, const char *name, const char *text)
{
    avro_value_t field;

    if (!sl_utf8_valid(text, strlen(text)) ||
        avro_value_get_by_name(rec, name, &field, NULL) != 0 ||
        avro_value_set_string(&field, text) != 0) {
        return SL_EINVAL;
    }
    return SL_OK;
}

static int set_enum(avro_value_t *rec, const char *name, const char *symbol)
{
    avro_value_t field;

    if (avro_value_get_by_name(rec, name, &field, NULL) != 0) {
        return SL_EINVAL;
    }
    return sl_value__set_enum(&field, symbol);
}

static int set_long(avro_value_t *rec, const char *name, int64_t v)
{
    avro_value_t field;

    if (avro_value_get_by_name(rec, name, &field, NULL) != 0 ||
        avro_value_set_long(&field, v) != 0) {
        return SL_EINVAL;
    }
    return SL_OK;
}

static int set_double(avro_value_t *rec, const char *name, double v)
{
    avro_value_t field;

    if (avro_value_get_by_name(rec, name, &field, NULL) != 0 ||
        avro_value_set_double(&field, v) != 0) {
        return SL_EINVAL;
    }
    return SL_OK;
}

static int set_int(avro_value_t *rec, const char *name, int32_t v)
{
    avro_value_t field;

    if (avro_value_get_by_name(rec, name, &field, NULL) != 0 ||
        avro_value_set_int(&field, v) != 0) {
        return SL_EINVAL;
    }
    return SL_OK;
}

/* Selects the null branch of an optional field, by type. */
static int set_absent(avro_value_t *rec, const char *name)
{
    avro_value_t field, branch;

    if (avro_value_get_by_name(rec, name, &field, NULL) != 0) {
        return SL_EINVAL;
    }
    return sl_value__set_branch_by_type(&field, AVRO_NULL, &branch);
}

/* Selects the branch of type `type` of an optional field. */
static int set_present(avro_value_t *rec, const char *name, avro_type_t type,
                       avro_value_t *branch)
{
    avro_value_t field;

    if (avro_value_get_by_name(rec, name, &field, NULL) != 0) {
        return SL_EINVAL;
    }
    return sl_value__set_branch_by_type(&field, type, branch);
}

/* ---- Encoding ----------------------------------------------------------- */

static int reading_to_value(const sl_reading_t *rec, avro_value_t *v)
{
    avro_value_t field, branch;
    int rc;

    if ((unsigned)rec->sensor_type >= SL_SENSOR_TYPE_COUNT) {
        return SL_EINVAL;
    }
    rc = set_enum(v, "sensor_type", sl_sensor_type_name(rec->sensor_type));
    rc = rc ? rc : set_text(v, "sensor_id", rec->sensor_id);
    rc = rc ? rc : set_double(v, "value", rec->value);
    rc = rc ? rc : set_long(v, "timestamp", rec->timestamp_ms);
    rc = rc ? rc : set_text(v, "location", rec->location);
    if (rc == SL_OK) {
        rc = avro_value_get_by_name(v, "anomaly", &field, NULL) ||
                     avro_value_set_boolean(&field, rec->anomaly)
                 ? SL_EINVAL
                 : SL_OK;
    }
    if (rc == SL_OK) {
        rc = avro_value_get_by_name(v, "metadata", &field, NULL) ? SL_EINVAL
                                                                 : SL_OK;
    }
    rc = rc ? rc : set_int(&field, "battery_level", rec->battery_level);
    rc = rc ? rc : set_int(&field, "signal_strength", rec->signal_strength);
    if (rc == SL_OK && !rec->has_unit) {
        rc = set_absent(v, "unit");
    } else if (rc == SL_OK) {
        rc = set_present(v, "unit", AVRO_STRING, &branch);
        if (rc == SL_OK && (!sl_utf8_valid(rec->unit, strlen(rec->unit)) ||
                            avro_value_set_string(&branch, rec->unit))) {
            rc = SL_EINVAL;
        }
    }
    return rc;
}

int sl_reading_encode(sl_encoder_t *enc, const sl_reading_t *rec, uint8_t *out,
                      size_t out_size, size_t *len)
{
    avro_value_t *v = sl_encoder_value(enc);
    int rc;

    if (v == NULL || rec == NULL) {
        return SL_EINVAL;
    }
    rc = reading_to_value(rec, v);
    if (rc != SL_OK) {
        return rc;
    }
    return sl_encoder_write(enc, out, out_size, len);
}

static int set_opt_field(avro_value_t *v, const struct opt_field *of,
                         const sl_event_t *ev)
{
    static const avro_type_t types[] = {
        [OPT_TEXT] = AVRO_STRING,
        [OPT_DOUBLE] = AVRO_DOUBLE,
        [OPT_INT32] = AVRO_INT32,
        [OPT_INT64] = AVRO_INT64,
    };
    const char *src = (const char *)ev + of->offset;
    avro_value_t branch;
    int rc;

    if ((ev->present & of->bit) == 0) {
        return set_absent(v, of->name);
    }
    rc = set_present(v, of->name, types[of->kind], &branch);
    if (rc != SL_OK) {
        return rc;
    }
    switch (of->kind) {
    case OPT_TEXT:
        if (!sl_utf8_valid(src, strlen(src))) {
            return SL_EINVAL;
        }
        rc = avro_value_set_string(&branch, src);
        break;
    case OPT_DOUBLE:
        rc = avro_value_set_double(&branch, *(const double *)(const void *)src);
        break;
    case OPT_INT32:
        rc = avro_value_set_int(&branch, *(const int32_t *)(const void *)src);
        break;
    case OPT_INT64:
        rc = avro_value_set_long(&branch, *(const int64_t *)(const void *)src);
        break;
    }
    return rc == 0 ? SL_OK : SL_EINVAL;
}

static int event_to_value(const sl_event_t *ev, avro_value_t *v)
{
    int rc;

    if ((unsigned)ev->event_type >= SL_EVENT_TYPE_COUNT ||
        (unsigned)ev->device >= SL_DEVICE_COUNT) {
        return SL_EINVAL;
    }
    rc = set_enum(v, "event_type", sl_event_type_name(ev->event_type));
    rc = rc ? rc : set_enum(v, "device", sl_device_name(ev->device));
    rc = rc ? rc : set_text(v, "event_id", ev->event_id);
    rc = rc ? rc : set_text(v, "user_id", ev->user_id);
    rc = rc ? rc : set_long(v, "timestamp", ev->timestamp_ms);
    rc = rc ? rc : set_text(v, "session_id", ev->session_id);
    rc = rc ? rc : set_text(v, "ip_address", ev->ip_address);
    for (size_t i = 0; i < OPT_FIELD_COUNT && rc == SL_OK; i++) {
        rc = set_opt_field(v, &opt_fields[i], ev);
    }
    return rc;
}

int sl_event_encode(sl_encoder_t *enc, const sl_event_t *ev, uint8_t *out,
                    size_t out_size, size_t *len)
{
    avro_value_t *v = sl_encoder_value(enc);
    int rc;

    if (v == NULL || ev == NULL) {
        return SL_EINVAL;
    }
    rc = event_to_value(ev, v);
    if (rc != SL_OK) {
        return rc;
    }
    return sl_encoder_write(enc, out, out_size, len);
}
