/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals shared by the files of src/schema/. Other modules use schema.h
 * only. Unit tests include this header to reach the helpers directly.
 */
#ifndef SLUICE_SCHEMA_SCHEMA_INT_H
#define SLUICE_SCHEMA_SCHEMA_INT_H

#include <avro.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema/schema.h"
#include "store/store.h"

/* Deepest nesting of records, unions, arrays and maps that the body walk
 * follows. Only recursive schemas can reach it. */
#define SL_AVRO_MAX_DEPTH 64

/* Most items of a zero-width type (null, empty record) in one array or map.
 * Such items cost no body bytes, so the byte count cannot bound them, but
 * libavro still allocates one value per item. */
#define SL_AVRO_MAX_EMPTY_ITEMS 65536

/* Fully qualified names ("iot.SensorType") fit this buffer. */
#define SL_AVRO_FULLNAME_MAX 512

/* ---- Growable byte buffer ----------------------------------------------- */

typedef struct sl_bytes {
    uint8_t *data;
    size_t len;
    size_t cap;
} sl_bytes_t;

/** Appends n bytes. Returns SL_OK or SL_ENOMEM. */
int sl_bytes__append(sl_bytes_t *buf, const void *src, size_t n);

/** Frees the storage and zeroes the struct. */
void sl_bytes__fini(sl_bytes_t *buf);

/* ---- Fix-ups applied while the body is walked --------------------------- */

/* Bytes appended after every value of one writer record: the binary
 * encoding of the reader's default for each field the writer lacks. */
typedef struct sl_record_fixup {
    char *fullname;
    uint8_t *bytes;
    size_t len;
} sl_record_fixup_t;

/* Writer enum index -> reader enum index, by symbol name. -1 marks a
 * symbol the reader lacks and has no default for. */
typedef struct sl_enum_fixup {
    char *fullname;
    int *map;
    int count;
} sl_enum_fixup_t;

/*
 * How a writer body must be rewritten before libavro reads it, because
 * libavro 1.11 resolves enums by index instead of by symbol and ignores
 * the reader's field defaults. An empty set means the body is read as is.
 */
typedef struct sl_fixups {
    sl_record_fixup_t *records;
    size_t record_count;
    sl_enum_fixup_t *enums;
    size_t enum_count;
} sl_fixups_t;

void sl_fixups__fini(sl_fixups_t *fix);

/**
 * Walks a body against the writer schema like sl_avro_check. When fix is
 * not NULL, also writes the rewritten body into out (reset first): enum
 * indices mapped, reader defaults appended to records, negative block
 * counts turned positive so their byte sizes need no update.
 */
sl_decode_err_t sl_avro__walk(avro_schema_t writer, const uint8_t *body,
                              size_t len, const sl_fixups_t *fix,
                              sl_bytes_t *out);

/** Writes the fully qualified name of a named schema into buf. */
void sl_avro__fullname(avro_schema_t schema, char *buf, size_t size);

/**
 * Checks the JSON of a schema before libavro parses it: a full name
 * defined twice makes libavro 1.11.1 leak the schema it built. Returns
 * SL_OK, SL_EINVAL with the name in err, or SL_ENOMEM.
 */
int sl_avro__check_names(const json_t *schema, char *err, size_t err_size);

/* ---- Resolution of one writer schema against the reader ---------------- */

typedef struct sl_resolution {
    avro_schema_t augmented; /* writer plus the defaulted reader fields */
    avro_value_iface_t *iface;
    avro_value_t resolved;
    sl_fixups_t fix;
    int has_fixups;
    int has_map; /* the augmented writer contains a map */
} sl_resolution_t;

/**
 * Prepares reading writer bodies into values of reader. writer_json is the
 * writer's registered text; reader_json (may be NULL) supplies the field
 * and enum defaults, which libavro does not keep. Returns SL_DECODE_OK,
 * SCHEMA_RESOLUTION_FAILED (a reader field without default is missing),
 * SCHEMA_INCOMPATIBLE (types cannot be promoted) or INTERNAL.
 */
sl_decode_err_t sl_resolution__init(sl_resolution_t *res, avro_schema_t writer,
                                    const char *writer_json,
                                    avro_schema_t reader, json_t *reader_json);

void sl_resolution__fini(sl_resolution_t *res);

/**
 * Follows the steps of libavro 1.11.1's avro_resolved_writer_new(writer,
 * reader) without building anything (see resolvable.c). Returns
 * SL_DECODE_OK when libavro would succeed without a record failing after
 * one of its fields resolved. Else returns SCHEMA_RESOLUTION_FAILED (a
 * reader field is missing from the writer), SCHEMA_INCOMPATIBLE, or
 * INTERNAL when memory ran out, with the reason in err. With
 * strict_unions, every writer union branch must resolve, not only one.
 */
sl_decode_err_t sl_avro__resolvable(avro_schema_t writer, avro_schema_t reader,
                                    int strict_unions, char *err,
                                    size_t err_size);

/**
 * Prepares res->resolved for reading one more body. Returns SL_DECODE_OK,
 * or SL_DECODE_INTERNAL when memory ran out, in which case the next call
 * tries again.
 */
sl_decode_err_t sl_resolution__prepare_value(sl_resolution_t *res);

/**
 * Returns true when frames of writer id can skip libavro: the writer
 * schema and dec's reader both equal the built-in schema file_name (a
 * string literal, compared by address in the cache) and resolve without
 * rewriting. Cached per writer id, so a call is a lookup after the first.
 * False when the id is unknown or the registry unreachable.
 */
bool sl_decoder__is_builtin(sl_decoder_t *dec, int32_t id,
                            const char *file_name);

/**
 * Decodes a framed reading through libavro alone, as sl_reading_decode
 * does for any writer schema. Tests compare it with sl_reading_decode.
 */
sl_decode_err_t sl_reading__decode_generic(sl_decoder_t *dec, const void *frame,
                                           size_t len, sl_reading_t *out);

/* ---- Registry internals ------------------------------------------------- */

/**
 * Returns a copy (free with free()) of the registered JSON text of id, or
 * NULL when the id is unknown or memory ran out.
 */
char *sl_registry__json_dup(sl_registry_t *reg, int32_t id);

/**
 * Returns a copy of the JSON text of the newest registered schema equal to
 * schema by avro_schema_equal(), or of an equal built-in schema, or NULL.
 */
char *sl_registry__find_json(sl_registry_t *reg, avro_schema_t schema);

/* ---- Generic values ----------------------------------------------------- */

/**
 * Sets a generic value from JSON: objects fill records by field name,
 * strings set enums by symbol name, and a union takes the first branch
 * whose type accepts the JSON value (null picks the null branch), or the
 * branch named by a one-key object {"type": value}. Missing record fields
 * are an error. Returns SL_OK or SL_EINVAL with the reason in err.
 */
int sl_value__from_json(avro_value_t *value, json_t *json, char *err,
                        size_t err_size);

/**
 * Sets an enum value by symbol name, looking the index up in the value's
 * schema. Returns SL_OK, or SL_EINVAL when the schema has no such symbol
 * (the value is left unchanged).
 */
int sl_value__set_enum(avro_value_t *value, const char *symbol);

/**
 * Selects the branch of a union value whose schema has the given type and
 * returns it in *branch. Returns SL_OK or SL_EINVAL when no branch has it.
 */
int sl_value__set_branch_by_type(avro_value_t *value, avro_type_t type,
                                 avro_value_t *branch);

/**
 * Reads an int or long value into an int32_t. Returns SL_DECODE_OK,
 * INTEGER_OUT_OF_RANGE when a long does not fit, or INTERNAL when the
 * value is not an integer.
 */
sl_decode_err_t sl_value__int32(avro_value_t *value, int32_t *out);

/**
 * Reads an int or long field of a record into an int32_t.
 * Returns SL_DECODE_OK, INTEGER_OUT_OF_RANGE when a long does not fit, or
 * INTERNAL when the field is missing or not an integer.
 */
sl_decode_err_t sl_value__get_int32(avro_value_t *record, const char *name,
                                    int32_t *out);

/* ---- Registry server internals (registry_server.c, registry_routes.c) - */

/* State the request handlers share; owned by the server's service
 * thread, which is the only thread that touches it. Schemas and
 * compatibility levels are all in the store. */
typedef struct sl_registry_routes {
    sl_store_t *st;
} sl_registry_routes_t;

/* One reply of the registry API: status and a heap-allocated JSON body. */
typedef struct sl_registry_reply {
    int status;
    char *body;
    size_t body_len;
} sl_registry_reply_t;

/**
 * Serves one request of the Confluent registry API. path is the URI path
 * (still percent-encoded), body the request body or NULL. OUT: *reply; the
 * caller frees reply->body. Returns SL_OK, or SL_ENOMEM when even the
 * error reply could not be built.
 */
int sl_registry__route(sl_registry_routes_t *routes, const char *method,
                       const char *path, const char *body,
                       sl_registry_reply_t *reply);

#endif
