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
#include <stdbool.h>
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
    SL_DECODE_REGISTRY_UNAVAILABLE,     /* the writer id is not cached and the
                                           remote registry did not answer;
                                           retry later, the frame may be
                                           fine */
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
 * Backs the registry with a remote Confluent-compatible registry at
 * base_url (e.g. "http://127.0.0.1:8081"): ids that are not registered
 * locally are fetched from it on first use by sl_registry_fetch and then
 * kept, so each id is fetched once. Call before the registry is shared
 * between threads. Returns SL_OK, SL_EINVAL (bad URL, reason in err) or
 * SL_ENOMEM.
 */
int sl_registry_set_remote(sl_registry_t *reg, const char *base_url,
                           long timeout_ms, char *err, size_t err_size);

/**
 * Looks a schema up by id like sl_registry_lookup, fetching it from the
 * remote registry (if one is set) when it is not known locally.
 * OUT: *schema, borrowed for the registry's lifetime.
 * Returns SL_OK; SL_ENOTFOUND when the id is unknown locally and, with a
 * remote, the remote registry reports it does not exist; SL_EIO or
 * SL_ETIMEDOUT when the remote registry could not be reached or sent a
 * reply that is not a schema (a retryable condition, reason in err).
 * Thread-safe; the remote request is made without holding the lock.
 */
int sl_registry_fetch(sl_registry_t *reg, int32_t id, avro_schema_t *schema,
                      char *err, size_t err_size);

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

/* ---- Registry client: a Confluent Schema Registry over HTTP ------------ */

typedef struct sl_registry_client sl_registry_client_t;

/* Time a registry request may take, connection included, in ms. */
#define SL_REGISTRY_TIMEOUT_MS_DEFAULT 5000

/* Largest registry reply the client accepts, in bytes. */
#define SL_REGISTRY_REPLY_MAX_BYTES (4 * 1024 * 1024)

/**
 * Creates a client of the registry at base_url ("http://host:port", an
 * optional path prefix allowed, no trailing slash needed). timeout_ms <= 0
 * takes SL_REGISTRY_TIMEOUT_MS_DEFAULT. Returns NULL with the reason in
 * err. Thread-safe: one request at a time, the others wait.
 *
 * Every call below returns SL_OK or: SL_ENOTFOUND (HTTP 404, registry
 * error_code 40401 subject, 40402 version or 40403 schema not found),
 * SL_EREJECTED (HTTP 409, incompatible schema), SL_EINVAL (HTTP 422 such as
 * 42201 invalid schema, or another 4xx), SL_ETIMEDOUT, SL_EIO (connection
 * failed, 5xx, or a reply that is not the expected JSON) or SL_ENOMEM.
 * On failure err holds the method, URL, HTTP status and the registry's
 * error_code and message.
 */
sl_registry_client_t *sl_registry_client_create(const char *base_url,
                                                long timeout_ms, char *err,
                                                size_t err_size);

/** Frees the client and its id cache. Accepts NULL. */
void sl_registry_client_destroy(sl_registry_client_t *client);

/** Returns the base URL the client was created with (borrowed). */
const char *sl_registry_client_url(const sl_registry_client_t *client);

/**
 * Registers schema_json under subject (POST /subjects/{subject}/versions).
 * OUT: *id. Registering a schema already registered returns its id.
 */
int sl_registry_client_register(sl_registry_client_t *client,
                                const char *subject, const char *schema_json,
                                int32_t *id, char *err, size_t err_size);

/**
 * Fetches the schema text of id (GET /schemas/ids/{id}). Each id is
 * requested once; later calls copy the cached text.
 * OUT: *schema_json, a heap copy the caller frees.
 */
int sl_registry_client_schema(sl_registry_client_t *client, int32_t id,
                              char **schema_json, char *err, size_t err_size);

/**
 * Lists the version numbers of subject (GET /subjects/{subject}/versions).
 * OUT: *versions (free with free()), *n.
 */
int sl_registry_client_versions(sl_registry_client_t *client,
                                const char *subject, int32_t **versions,
                                size_t *n, char *err, size_t err_size);

/**
 * Tests schema_json against a version of subject ("latest" when version
 * is NULL) under the subject's compatibility level (POST
 * /compatibility/subjects/{subject}/versions/{version}).
 * OUT: *compatible; when false, err holds the registry's reasons.
 */
int sl_registry_client_check(sl_registry_client_t *client, const char *subject,
                             const char *version, const char *schema_json,
                             bool *compatible, char *err, size_t err_size);

/**
 * Sets the compatibility level of subject, or the global level when
 * subject is NULL (PUT /config[/{subject}]), e.g. "FULL".
 */
int sl_registry_client_set_level(sl_registry_client_t *client,
                                 const char *subject, const char *level,
                                 char *err, size_t err_size);

/* ---- Compatibility of schema versions (compat.c) ----------------------- */

/* Compatibility levels of the Confluent registry. */
typedef enum sl_compat_level {
    SL_COMPAT_BACKWARD = 0,        /* new reads the latest (default) */
    SL_COMPAT_BACKWARD_TRANSITIVE, /* new reads every earlier version */
    SL_COMPAT_FORWARD,             /* the latest reads new */
    SL_COMPAT_FORWARD_TRANSITIVE,  /* every earlier version reads new */
    SL_COMPAT_FULL,                /* BACKWARD and FORWARD */
    SL_COMPAT_FULL_TRANSITIVE,     /* both, against every version */
    SL_COMPAT_NONE,                /* no check */
    SL_COMPAT_LEVEL_COUNT
} sl_compat_level_t;

/** Returns the registry's name of a level, e.g. "BACKWARD". */
const char *sl_compat_level_name(sl_compat_level_t level);

/** Parses a level name ("FULL_TRANSITIVE"). Returns SL_OK or SL_EINVAL. */
int sl_compat_level_parse(const char *name, sl_compat_level_t *out);

/**
 * Decides whether data written with writer_json can be read with
 * reader_json, by the decoder's resolution rules. Returns SL_OK when it
 * can, SL_EREJECTED when it cannot (reason in err), SL_EINVAL when a text
 * is not an Avro schema (reason in err) or SL_ENOMEM.
 */
int sl_schema_can_read(const char *reader_json, const char *writer_json,
                       char *err, size_t err_size);

/**
 * Checks new_json against the earlier versions of a subject, oldest first,
 * under level. Returns SL_OK (compatible, or nothing to compare with),
 * SL_EREJECTED with the reason in err, SL_EINVAL or SL_ENOMEM.
 */
int sl_schema_compat_check(sl_compat_level_t level, const char *new_json,
                           const char *const *old_jsons, size_t old_count,
                           char *err, size_t err_size);

/* ---- Built-in registry server (registry_server.c) ---------------------- */

typedef struct sl_registry_server sl_registry_server_t;

#define SL_REGISTRY_DEFAULT_HOST "127.0.0.1"
#define SL_REGISTRY_DEFAULT_PORT 8081

/**
 * Starts a Confluent-compatible schema registry on host:port (port 0 picks
 * a free port; see sl_registry_server_port), backed by the schemas table
 * of the store at store_location, which it opens and migrates. Serves
 * GET /subjects, GET|POST /subjects/{s}/versions,
 * GET /subjects/{s}/versions/{v|latest}, GET /schemas/ids/{id},
 * POST /compatibility/subjects/{s}/versions/{v|latest},
 * GET|PUT /config and /config/{s}. Runs its own service thread.
 * Returns NULL with the reason in err.
 */
sl_registry_server_t *sl_registry_server_start(const char *store_location,
                                               const char *host, int port,
                                               char *err, size_t err_size);

/** Returns the port the server listens on. */
int sl_registry_server_port(const sl_registry_server_t *srv);

/** Returns how many requests the server has answered. Thread-safe. */
unsigned long sl_registry_server_requests(sl_registry_server_t *srv);

/** Stops serving, closes every connection and frees srv. Accepts NULL. */
void sl_registry_server_stop(sl_registry_server_t *srv);

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
 * Decodes a framed value into a value of the reader schema. When the
 * registry has a remote (sl_registry_set_remote), an unknown writer id is
 * fetched on first use; if the remote cannot be reached the result is
 * SL_DECODE_REGISTRY_UNAVAILABLE, which is retryable, unlike the other
 * errors: the same frame may decode once the registry is back.
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

/**
 * Reads the sensor_id of a framed reading without decoding the rest, when
 * its writer schema is schemas/sensor_reading.avsc, whose first field it
 * is. OUT: out, out_size bytes. Returns false for another writer schema or
 * an id that is not valid UTF-8 or does not fit; sl_reading_decode then
 * judges the frame.
 */
bool sl_reading_peek_sensor_id(sl_decoder_t *dec, const void *frame, size_t len,
                               char *out, size_t out_size);

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
