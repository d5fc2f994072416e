/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers over libavro's generic values: filling a value from JSON (schema
 * defaults and JSON input), setting enums by symbol name, choosing union
 * branches by type, and range-checked integer reads.
 */
#include <stdio.h>
#include <string.h>

#include "schema/schema.h"
#include "schema/schema_int.h"
#include "util/err.h"

/* A generic value of a named type reached through a recursive reference
 * reports the link; its target carries the symbols and fields. */
static avro_schema_t unlink_schema(avro_schema_t schema)
{
    while (schema != NULL && avro_typeof(schema) == AVRO_LINK) {
        schema = avro_schema_link_target(schema);
    }
    return schema;
}

static int fail(char *err, size_t err_size, const char *what, const char *name)
{
    if (err != NULL && err_size > 0) {
        snprintf(err, err_size, "%s: %s", what, name ? name : "");
    }
    return SL_EINVAL;
}

int sl_value__set_enum(avro_value_t *value, const char *symbol)
{
    avro_schema_t schema = unlink_schema(avro_value_get_schema(value));
    int index;

    if (schema == NULL || avro_typeof(schema) != AVRO_ENUM || symbol == NULL) {
        return SL_EINVAL;
    }
    index = avro_schema_enum_get_by_name(schema, symbol);
    if (index < 0) {
        return SL_EINVAL;
    }
    return avro_value_set_enum(value, index) == 0 ? SL_OK : SL_EINVAL;
}

int sl_value__set_branch_by_type(avro_value_t *value, avro_type_t type,
                                 avro_value_t *branch)
{
    avro_schema_t schema = unlink_schema(avro_value_get_schema(value));

    if (schema == NULL || avro_typeof(schema) != AVRO_UNION) {
        return SL_EINVAL;
    }
    for (size_t i = 0; i < avro_schema_union_size(schema); i++) {
        avro_schema_t b =
            unlink_schema(avro_schema_union_branch(schema, (int)i));

        if (avro_typeof(b) == type) {
            return avro_value_set_branch(value, (int)i, branch) == 0
                       ? SL_OK
                       : SL_EINVAL;
        }
    }
    return SL_EINVAL;
}

sl_decode_err_t sl_value__int32(avro_value_t *value, int32_t *out)
{
    int64_t v64;

    switch (avro_value_get_type(value)) {
    case AVRO_INT32:
        return avro_value_get_int(value, out) == 0 ? SL_DECODE_OK
                                                   : SL_DECODE_INTERNAL;
    case AVRO_INT64:
        if (avro_value_get_long(value, &v64) != 0) {
            return SL_DECODE_INTERNAL;
        }
        if (v64 < INT32_MIN || v64 > INT32_MAX) {
            return SL_DECODE_INTEGER_OUT_OF_RANGE;
        }
        *out = (int32_t)v64;
        return SL_DECODE_OK;
    default:
        return SL_DECODE_INTERNAL;
    }
}

sl_decode_err_t sl_value__get_int32(avro_value_t *record, const char *name,
                                    int32_t *out)
{
    avro_value_t field;

    if (avro_value_get_by_name(record, name, &field, NULL) != 0) {
        return SL_DECODE_INTERNAL;
    }
    return sl_value__int32(&field, out);
}

/* Converts a JSON string to bytes as the Avro JSON encoding defines them:
 * each code point U+0000..U+00FF is one byte. Returns the byte count or
 * -1 when a code point is larger or size is too small. */
static long latin1_bytes(const char *s, size_t len, uint8_t *out, size_t size)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned cp = p[i];

        if (cp >= 0x80) {
            if ((cp & 0xe0) != 0xc0 || i + 1 >= len) {
                return -1;
            }
            cp = ((cp & 0x1f) << 6) | (p[i + 1] & 0x3f);
            i++;
            if (cp > 0xff) {
                return -1;
            }
        }
        if (n >= size) {
            return -1;
        }
        out[n++] = (uint8_t)cp;
    }
    return (long)n;
}

/* Returns whether json can become a value of schema; unions use it to pick
 * the branch of a bare (untagged) JSON value. */
static int json_fits(avro_schema_t schema, json_t *json)
{
    json_int_t i;

    schema = unlink_schema(schema);
    switch (avro_typeof(schema)) {
    case AVRO_NULL:
        return json_is_null(json);
    case AVRO_BOOLEAN:
        return json_is_boolean(json);
    case AVRO_INT32:
        i = json_is_integer(json) ? json_integer_value(json) : 0;
        return json_is_integer(json) && i >= INT32_MIN && i <= INT32_MAX;
    case AVRO_INT64:
        return json_is_integer(json);
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
        return json_is_number(json);
    case AVRO_STRING:
    case AVRO_BYTES:
    case AVRO_FIXED:
        return json_is_string(json);
    case AVRO_ENUM:
        return json_is_string(json) &&
               avro_schema_enum_get_by_name(schema, json_string_value(json)) >=
                   0;
    case AVRO_RECORD:
    case AVRO_MAP:
        return json_is_object(json);
    case AVRO_ARRAY:
        return json_is_array(json);
    default:
        return 0;
    }
}

/* Returns the branch named by the key of a one-key object, the Avro JSON
 * encoding of a union value ({"double": 1.5}), or -1. */
static int tagged_branch(avro_schema_t schema, json_t *json)
{
    const char *key;
    json_t *inner;

    if (!json_is_object(json) || json_object_size(json) != 1) {
        return -1;
    }
    json_object_foreach(json, key, inner)
    {
        for (size_t i = 0; i < avro_schema_union_size(schema); i++) {
            avro_schema_t b = avro_schema_union_branch(schema, (int)i);
            char fullname[SL_AVRO_FULLNAME_MAX];

            sl_avro__fullname(b, fullname, sizeof(fullname));
            if (strcmp(key, avro_schema_type_name(b)) == 0 ||
                strcmp(key, fullname) == 0) {
                return (int)i;
            }
        }
    }
    return -1;
}

static int set_union(avro_value_t *value, avro_schema_t schema, json_t *json,
                     char *err, size_t err_size)
{
    avro_value_t branch;
    int index = tagged_branch(schema, json);

    if (index >= 0) {
        const char *key = json_object_iter_key(json_object_iter(json));

        json = json_object_get(json, key);
    } else {
        for (size_t i = 0; i < avro_schema_union_size(schema); i++) {
            if (json_fits(avro_schema_union_branch(schema, (int)i), json)) {
                index = (int)i;
                break;
            }
        }
    }
    if (index < 0) {
        return fail(err, err_size, "no union branch accepts the value",
                    avro_schema_type_name(schema));
    }
    if (avro_value_set_branch(value, index, &branch) != 0) {
        return fail(err, err_size, "avro_value_set_branch failed",
                    avro_strerror());
    }
    return sl_value__from_json(&branch, json, err, err_size);
}

static int set_record(avro_value_t *value, avro_schema_t schema, json_t *json,
                      char *err, size_t err_size)
{
    if (!json_is_object(json)) {
        return fail(err, err_size, "expected a JSON object for record",
                    avro_schema_name(schema));
    }
    for (size_t i = 0; i < avro_schema_record_size(schema); i++) {
        const char *name = avro_schema_record_field_name(schema, (int)i);
        json_t *field_json = json_object_get(json, name);
        avro_value_t field;
        int rc;

        if (field_json == NULL) {
            return fail(err, err_size, "missing field", name);
        }
        if (avro_value_get_by_index(value, i, &field, NULL) != 0) {
            return fail(err, err_size, "avro_value_get_by_index failed", name);
        }
        rc = sl_value__from_json(&field, field_json, err, err_size);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}

static int set_array(avro_value_t *value, json_t *json, char *err,
                     size_t err_size)
{
    size_t i;
    json_t *item;

    if (!json_is_array(json)) {
        return fail(err, err_size, "expected a JSON array", "");
    }
    json_array_foreach(json, i, item)
    {
        avro_value_t child;
        int rc;

        if (avro_value_append(value, &child, NULL) != 0) {
            return fail(err, err_size, "avro_value_append failed",
                        avro_strerror());
        }
        rc = sl_value__from_json(&child, item, err, err_size);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}

static int set_map(avro_value_t *value, json_t *json, char *err,
                   size_t err_size)
{
    const char *key;
    json_t *item;

    if (!json_is_object(json)) {
        return fail(err, err_size, "expected a JSON object for map", "");
    }
    json_object_foreach(json, key, item)
    {
        avro_value_t child;
        int rc;

        if (avro_value_add(value, key, &child, NULL, NULL) != 0) {
            return fail(err, err_size, "avro_value_add failed", key);
        }
        rc = sl_value__from_json(&child, item, err, err_size);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}

/* Sets bytes or fixed from a JSON string of code points U+0000..U+00FF. */
static int set_binary(avro_value_t *value, avro_schema_t schema, json_t *json,
                      char *err, size_t err_size)
{
    uint8_t buf[4096];
    long n;
    int rc;

    if (!json_is_string(json)) {
        return fail(err, err_size, "expected a JSON string for",
                    avro_schema_type_name(schema));
    }
    n = latin1_bytes(json_string_value(json), json_string_length(json), buf,
                     sizeof(buf));
    if (n < 0) {
        return fail(err, err_size,
                    "bytes must be code points up to U+00FF, at most 4096", "");
    }
    if (avro_typeof(schema) == AVRO_FIXED) {
        if (n != avro_schema_fixed_size(schema)) {
            return fail(err, err_size, "wrong length for fixed",
                        avro_schema_name(schema));
        }
        rc = avro_value_set_fixed(value, buf, (size_t)n);
    } else {
        rc = avro_value_set_bytes(value, buf, (size_t)n);
    }
    return rc == 0 ? SL_OK : fail(err, err_size, "set failed", "");
}

int sl_value__from_json(avro_value_t *value, json_t *json, char *err,
                        size_t err_size)
{
    avro_schema_t schema = unlink_schema(avro_value_get_schema(value));
    int rc;

    if (schema == NULL || json == NULL) {
        return fail(err, err_size, "missing schema or JSON value", "");
    }
    switch (avro_typeof(schema)) {
    case AVRO_RECORD:
        return set_record(value, schema, json, err, err_size);
    case AVRO_UNION:
        return set_union(value, schema, json, err, err_size);
    case AVRO_ARRAY:
        return set_array(value, json, err, err_size);
    case AVRO_MAP:
        return set_map(value, json, err, err_size);
    case AVRO_BYTES:
    case AVRO_FIXED:
        return set_binary(value, schema, json, err, err_size);
    case AVRO_ENUM:
        if (!json_is_string(json)) {
            return fail(err, err_size, "expected a symbol for enum",
                        avro_schema_name(schema));
        }
        if (sl_value__set_enum(value, json_string_value(json)) != SL_OK) {
            return fail(err, err_size, "unknown enum symbol",
                        json_string_value(json));
        }
        return SL_OK;
    default:
        break;
    }

    if (!json_fits(schema, json)) {
        return fail(err, err_size, "JSON value does not fit type",
                    avro_schema_type_name(schema));
    }
    switch (avro_typeof(schema)) {
    case AVRO_NULL:
        rc = avro_value_set_null(value);
        break;
    case AVRO_BOOLEAN:
        rc = avro_value_set_boolean(value, json_is_true(json));
        break;
    case AVRO_INT32:
        rc = avro_value_set_int(value, (int32_t)json_integer_value(json));
        break;
    case AVRO_INT64:
        rc = avro_value_set_long(value, (int64_t)json_integer_value(json));
        break;
    case AVRO_FLOAT:
        rc = avro_value_set_float(value, (float)json_number_value(json));
        break;
    case AVRO_DOUBLE:
        rc = avro_value_set_double(value, json_number_value(json));
        break;
    case AVRO_STRING:
        if (strlen(json_string_value(json)) != json_string_length(json)) {
            return fail(err, err_size, "string contains a NUL character", "");
        }
        rc = avro_value_set_string_len(value, json_string_value(json),
                                       json_string_length(json) + 1);
        break;
    default:
        return fail(err, err_size, "unsupported type",
                    avro_schema_type_name(schema));
    }
    return rc == 0 ? SL_OK : fail(err, err_size, "set failed", "");
}
