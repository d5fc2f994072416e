/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Confluent framing: the 5-byte header in front of every Avro body, and the
 * reason codes that decode failures carry into the dead-letter queue.
 */
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "schema/schema_int.h"
#include "util/err.h"

static const char *const decode_err_names[SL_DECODE_ERR_COUNT] = {
    [SL_DECODE_OK] = "ok",
    [SL_DECODE_EMPTY_PAYLOAD] = "empty_payload",
    [SL_DECODE_TRUNCATED_HEADER] = "truncated_header",
    [SL_DECODE_BAD_MAGIC_BYTE] = "bad_magic_byte",
    [SL_DECODE_PAYLOAD_TOO_LARGE] = "payload_too_large",
    [SL_DECODE_UNKNOWN_SCHEMA_ID] = "unknown_schema_id",
    [SL_DECODE_TRUNCATED_BODY] = "truncated_body",
    [SL_DECODE_INVALID_LENGTH] = "invalid_length",
    [SL_DECODE_INVALID_VARINT] = "invalid_varint",
    [SL_DECODE_INVALID_ENUM_INDEX] = "invalid_enum_index",
    [SL_DECODE_INVALID_UNION_INDEX] = "invalid_union_index",
    [SL_DECODE_INVALID_UTF8] = "invalid_utf8",
    [SL_DECODE_TRAILING_BYTES] = "trailing_bytes",
    [SL_DECODE_SCHEMA_RESOLUTION_FAILED] = "schema_resolution_failed",
    [SL_DECODE_SCHEMA_INCOMPATIBLE] = "schema_incompatible",
    [SL_DECODE_FIELD_TOO_LONG] = "field_too_long",
    [SL_DECODE_INTEGER_OUT_OF_RANGE] = "integer_out_of_range",
    [SL_DECODE_INTERNAL] = "internal",
    [SL_DECODE_REGISTRY_UNAVAILABLE] = "registry_unavailable",
};

const char *sl_decode_err_name(sl_decode_err_t err)
{
    if ((unsigned)err >= SL_DECODE_ERR_COUNT) {
        return "internal";
    }
    return decode_err_names[err];
}

sl_decode_err_t sl_frame_parse(const void *value, size_t len,
                               int32_t *schema_id, const uint8_t **body,
                               size_t *body_len)
{
    const uint8_t *p = value;
    uint32_t id;

    if (len == 0 || p == NULL) {
        return SL_DECODE_EMPTY_PAYLOAD;
    }
    if (p[0] != SL_FRAME_MAGIC) {
        return SL_DECODE_BAD_MAGIC_BYTE;
    }
    if (len < SL_FRAME_HEADER_SIZE) {
        return SL_DECODE_TRUNCATED_HEADER;
    }
    if (len > SL_FRAME_MAX_BYTES) {
        return SL_DECODE_PAYLOAD_TOO_LARGE;
    }

    id = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 |
         (uint32_t)p[4];
    *schema_id = (int32_t)id;
    *body = p + SL_FRAME_HEADER_SIZE;
    *body_len = len - SL_FRAME_HEADER_SIZE;
    return SL_DECODE_OK;
}

int sl_bytes__append(sl_bytes_t *buf, const void *src, size_t n)
{
    if (n == 0) {
        return SL_OK;
    }
    if (buf->cap - buf->len < n) {
        size_t cap = buf->cap ? buf->cap : 256;
        uint8_t *data;

        while (cap - buf->len < n) {
            cap *= 2;
        }
        data = realloc(buf->data, cap);
        if (data == NULL) {
            return SL_ENOMEM;
        }
        buf->data = data;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, src, n);
    buf->len += n;
    return SL_OK;
}

void sl_bytes__fini(sl_bytes_t *buf)
{
    free(buf->data);
    memset(buf, 0, sizeof(*buf));
}
