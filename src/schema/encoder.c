/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The encoder: one generic value of the writer schema, filled by the
 * caller (or by codec.c for our records), written as the 5-byte Confluent
 * header followed by the Avro binary body.
 */
#include <errno.h>
#include <stdlib.h>

#include "schema/schema.h"
#include "schema/schema_int.h"
#include "util/err.h"

struct sl_encoder {
    avro_schema_t schema;
    int32_t schema_id;
    avro_value_iface_t *cls;
    avro_value_t value;
    avro_writer_t mem;
};

sl_encoder_t *sl_encoder_create(avro_schema_t schema, int32_t schema_id)
{
    static const char empty = 0;
    sl_encoder_t *enc;

    if (schema == NULL) {
        return NULL;
    }
    enc = calloc(1, sizeof(*enc));
    if (enc == NULL) {
        return NULL;
    }
    enc->schema = avro_schema_incref(schema);
    enc->schema_id = schema_id;
    enc->cls = avro_generic_class_from_schema(schema);
    if (enc->cls == NULL || avro_generic_value_new(enc->cls, &enc->value)) {
        if (enc->cls != NULL)
            avro_value_iface_decref(enc->cls);
        enc->cls = NULL;
        goto fail;
    }
    enc->mem = avro_writer_memory(&empty, 0);
    if (enc->mem == NULL) {
        goto fail;
    }
    return enc;

fail:
    sl_encoder_destroy(enc);
    return NULL;
}

void sl_encoder_destroy(sl_encoder_t *enc)
{
    if (enc == NULL) {
        return;
    }
    if (enc->mem != NULL) {
        avro_writer_free(enc->mem);
    }
    if (enc->cls != NULL) {
        avro_value_decref(&enc->value);
        avro_value_iface_decref(enc->cls);
    }
    avro_schema_decref(enc->schema);
    free(enc);
}

avro_value_t *sl_encoder_value(sl_encoder_t *enc)
{
    if (enc == NULL) {
        return NULL;
    }
    avro_value_reset(&enc->value);
    return &enc->value;
}

int sl_encoder_write(sl_encoder_t *enc, uint8_t *out, size_t out_size,
                     size_t *len)
{
    uint32_t id;

    if (enc == NULL || out == NULL || len == NULL ||
        out_size < SL_FRAME_HEADER_SIZE) {
        return SL_EINVAL;
    }

    /* libavro fails with ENOSPC when the body does not fit; the caller then
     * sees SL_EINVAL and *len is left unchanged. */
    avro_writer_memory_set_dest(enc->mem,
                                (const char *)out + SL_FRAME_HEADER_SIZE,
                                (int64_t)(out_size - SL_FRAME_HEADER_SIZE));
    if (avro_value_write(enc->mem, &enc->value) != 0) {
        return SL_EINVAL;
    }

    id = (uint32_t)enc->schema_id;
    out[0] = SL_FRAME_MAGIC;
    out[1] = (uint8_t)(id >> 24);
    out[2] = (uint8_t)(id >> 16);
    out[3] = (uint8_t)(id >> 8);
    out[4] = (uint8_t)id;
    *len = SL_FRAME_HEADER_SIZE + (size_t)avro_writer_tell(enc->mem);
    return SL_OK;
}
