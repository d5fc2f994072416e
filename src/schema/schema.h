/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Avro records in the Confluent wire format, and the schemas behind them.
 *
 * A message value is byte 0 = 0 (magic), bytes 1-4 = the writer schema id
 * (big-endian), then the Avro binary body. Decoding looks the writer schema
 * up by id in a registry, checks the body against the writer schema with a
 * bounded walk (every length, varint, enum index, union index and UTF-8
 * string is checked against the bytes actually present, before libavro
 * allocates anything), then lets libavro resolve writer to reader schema.
 * Every malformed frame yields a typed sl_decode_err_t, never a crash.
 */
#ifndef SLUICE_SCHEMA_SCHEMA_H
#define SLUICE_SCHEMA_SCHEMA_H

#include <avro.h>
#include <stddef.h>
#include <stdint.h>

#include "model/record.h"

#define SL_FRAME_HEADER_SIZE 5
#define SL_FRAME_MAGIC 0

/* Largest value the decoder accepts, in bytes; larger frames are rejected
 * as payload_too_large before any decoding (Kafka's default
 * message.max.bytes). */
#define SL_FRAME_MAX_BYTES 1000000

/* Why a frame could not be decoded. sl_decode_err_name() gives the reason
 * code recorded in the DLQ. */
typedef enum sl_decode_err {
    SL_DECODE_OK = 0,
    SL_DECODE_EMPTY_PAYLOAD,            /* value has zero bytes */
    SL_DECODE_TRUNCATED_HEADER,         /* 1-4 bytes: no room for the id */
    SL_DECODE_BAD_MAGIC_BYTE,           /* byte 0 is not 0 */
    SL_DECODE_PAYLOAD_TOO_LARGE,        /* over SL_FRAME_MAX_BYTES */
    SL_DECODE_UNKNOWN_SCHEMA_ID,        /* registry has no such id */
    SL_DECODE_TRUNCATED_BODY,           /* body ends inside a value */
    SL_DECODE_INVALID_LENGTH,           /* negative string/bytes/block length */
    SL_DECODE_INVALID_VARINT,           /* varint longer than 10 bytes or
                                           over 64 bits */
    SL_DECODE_INVALID_ENUM_INDEX,       /* index outside the symbol list */
    SL_DECODE_INVALID_UNION_INDEX,      /* branch outside the union */
    SL_DECODE_INVALID_UTF8,             /* a string is not well-formed UTF-8 */
    SL_DECODE_TRAILING_BYTES,           /* bytes left after the record */
    SL_DECODE_SCHEMA_RESOLUTION_FAILED, /* reader needs a field the writer
                                           lacks and has no default */
    SL_DECODE_SCHEMA_INCOMPATIBLE,      /* types cannot be promoted, e.g.
                                           long written, int read */
    SL_DECODE_FIELD_TOO_LONG,           /* text over its sl_reading_t buffer */
    SL_DECODE_INTEGER_OUT_OF_RANGE,     /* long does not fit the C field */
    SL_DECODE_INTERNAL,                 /* libavro failed on checked input */
    SL_DECODE_ERR_COUNT
} sl_decode_err_t;

/** Returns the reason code of an error, e.g. "bad_magic_byte". */
const char *sl_decode_err_name(sl_decode_err_t err);

/**
 * Splits a framed value into schema id and body without reading past len.
 * OUT: *schema_id, *body, *body_len. Returns SL_DECODE_OK or one of
 * EMPTY_PAYLOAD, TRUNCATED_HEADER, BAD_MAGIC_BYTE, PAYLOAD_TOO_LARGE.
 */
sl_decode_err_t sl_frame_parse(const void *value, size_t len,
                               int32_t *schema_id, const uint8_t **body,
                               size_t *body_len);

/**
 * Walks an Avro binary body against a writer schema without allocating.
 * Returns SL_DECODE_OK when the body is exactly one well-formed value,
 * else the first defect found.
 */
sl_decode_err_t sl_avro_check(avro_schema_t writer, const uint8_t *body,
                              size_t len);

/* ---- Registry: schema ids and subjects ---------------------------------- */

typedef struct sl_registry sl_registry_t;

/** Creates an empty in-process registry. Thread-safe after creation. */
sl_registry_t *sl_registry_create(void);

/** Frees the registry and every schema in it. Accepts NULL. */
void sl_registry_destroy(sl_registry_t *reg);

/**
 * Registers a schema (JSON text) under subject, as Confluent's
 * POST /subjects/{subject}/versions does: an identical schema already
 * registered anywhere gets its existing id; otherwise a new id is assigned.
 * OUT: *id_out. Returns SL_OK, or SL_EINVAL with the parse error in err.
 */
int sl_registry_register(sl_registry_t *reg, const char *subject,
                         const char *schema_json, int32_t *id_out, char *err,
                         size_t err_size);

/**
 * Adds a schema under a fixed id, as when mirroring an external registry
 * or loading a test fixture. Returns SL_OK, SL_EINVAL for unparsable JSON
 * (reason in err) or an id already bound to a different schema.
 */
int sl_registry_add(sl_registry_t *reg, int32_t id, const char *subject,
                    const char *schema_json, char *err, size_t err_size);

/**
 * Looks a schema up by id. Returns a borrowed schema that lives as long as
 * the registry, or NULL when the id is unknown.
 */
avro_schema_t sl_registry_lookup(sl_registry_t *reg, int32_t id);

/**
 * Returns the id of the latest version registered under subject, or -1.
 */
int32_t sl_registry_latest_id(sl_registry_t *reg, const char *subject);

/**
 * Returns the JSON text of a schema compiled into the binary, by file name
 * ("sensor_reading.avsc", "ecommerce_event.avsc"), or NULL.
 */
const char *sl_schema_builtin(const char *file_name);

/**
 * Parses a schema from a .avsc file. Returns a new reference (release
 * with avro_schema_decref) or NULL with the reason in err.
 */
avro_schema_t sl_schema_load_file(const char *path, char *err, size_t err_size);

/* ---- Decoder: frames to reader-schema values ---------------------------- */

typedef struct sl_decoder sl_decoder_t;

/**
 * Creates a decoder that reads any registered writer schema into `reader`.
 * It keeps a reference to reader and caches one libavro resolver per writer
 * id. One thread at a time; the registry must outlive it.
 */
sl_decoder_t *sl_decoder_create(sl_registry_t *reg, avro_schema_t reader);

void sl_decoder_destroy(sl_decoder_t *dec);

/**
 * Decodes a framed value into a value of the reader schema.
 * OUT: *value is borrowed and valid until the next call on dec.
 * OUT: *schema_id_out (may be NULL) the writer id when the header parsed.
 */
sl_decode_err_t sl_decoder_decode(sl_decoder_t *dec, const void *frame,
                                  size_t len, avro_value_t **value,
                                  int32_t *schema_id_out);

/**
 * Decodes a framed sensor reading; dec's reader schema must be
 * schemas/sensor_reading.avsc. Text longer than the record's buffers yields
 * SL_DECODE_FIELD_TOO_LONG.
 */
sl_decode_err_t sl_reading_decode(sl_decoder_t *dec, const void *frame,
                                  size_t len, sl_reading_t *out);

/** Decodes a framed commerce event (reader: ecommerce_event.avsc). */
sl_decode_err_t sl_event_decode(sl_decoder_t *dec, const void *frame,
                                size_t len, sl_event_t *out);

/* ---- Encoder: records to frames ----------------------------------------- */

typedef struct sl_encoder sl_encoder_t;

/**
 * Creates an encoder that writes values of `schema` framed with schema_id.
 * One thread at a time.
 */
sl_encoder_t *sl_encoder_create(avro_schema_t schema, int32_t schema_id);

void sl_encoder_destroy(sl_encoder_t *enc);

/**
 * Encodes a reading into out (out_size bytes); the encoder's schema must be
 * sensor_reading.avsc. Enums are set by symbol name. OUT: *len.
 * Returns SL_OK, SL_EINVAL when out is too small or a value has no symbol.
 */
int sl_reading_encode(sl_encoder_t *enc, const sl_reading_t *rec, uint8_t *out,
                      size_t out_size, size_t *len);

/** Encodes a commerce event (schema: ecommerce_event.avsc). */
int sl_event_encode(sl_encoder_t *enc, const sl_event_t *ev, uint8_t *out,
                    size_t out_size, size_t *len);

/**
 * Returns a borrowed generic value of the encoder's schema, reset, for
 * callers that build other records field by field; then call
 * sl_encoder_write.
 */
avro_value_t *sl_encoder_value(sl_encoder_t *enc);

/** Frames and writes the value from sl_encoder_value. */
int sl_encoder_write(sl_encoder_t *enc, uint8_t *out, size_t out_size,
                     size_t *len);

#endif
