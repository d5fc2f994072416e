/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The decoder: Confluent frame -> registry lookup -> bounded body walk ->
 * libavro resolution into one generic value of the reader schema. The
 * resolver for each writer id is built on first use and cached, including
 * a failed one, so a stream of incompatible messages costs one failed
 * resolution in total.
 */
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "schema/schema_int.h"
#include "util/err.h"
#include "util/log.h"

typedef struct dec_writer {
    int32_t id;
    sl_decode_err_t err; /* result of building the resolution */
    sl_resolution_t res;
    /* 1 when both writer and reader equal the built-in schema `fast_file`
     * names (sl_decoder__is_builtin), 0 when not, -1 before the check. */
    int builtin;
    const char *fast_file;
} dec_writer_t;

struct sl_decoder {
    sl_registry_t *reg;
    avro_schema_t reader;
    json_t *reader_json; /* NULL when the reader's text is unknown */
    avro_value_iface_t *reader_class;
    avro_value_t reader_value;
    avro_reader_t mem;
    sl_bytes_t scratch; /* rewritten body, see resolve.c */
    dec_writer_t *writers;
    size_t writer_count;
};

sl_decoder_t *sl_decoder_create(sl_registry_t *reg, avro_schema_t reader)
{
    static const char empty = 0;
    sl_decoder_t *dec;
    char *text;

    if (reg == NULL || reader == NULL) {
        return NULL;
    }
    dec = calloc(1, sizeof(*dec));
    if (dec == NULL) {
        return NULL;
    }
    dec->reg = reg;
    dec->reader = avro_schema_incref(reader);

    /* XXX: libavro drops field defaults when it parses a schema, so they
     * are taken from an equal schema's text in the registry or among the
     * built-in schemas. A reader found in neither decodes as if it had no
     * defaults. */
    text = sl_registry__find_json(reg, reader);
    if (text != NULL) {
        dec->reader_json = json_loads(text, JSON_DECODE_ANY, NULL);
        free(text);
    }

    dec->reader_class = avro_generic_class_from_schema(reader);
    if (dec->reader_class == NULL ||
        avro_generic_value_new(dec->reader_class, &dec->reader_value) != 0) {
        if (dec->reader_class != NULL)
            avro_value_iface_decref(dec->reader_class);
        dec->reader_class = NULL;
        goto fail;
    }
    dec->mem = avro_reader_memory(&empty, 0);
    if (dec->mem == NULL) {
        goto fail;
    }
    return dec;

fail:
    sl_decoder_destroy(dec);
    return NULL;
}

void sl_decoder_destroy(sl_decoder_t *dec)
{
    if (dec == NULL) {
        return;
    }
    for (size_t i = 0; i < dec->writer_count; i++) {
        sl_resolution__fini(&dec->writers[i].res);
    }
    free(dec->writers);
    if (dec->mem != NULL) {
        avro_reader_free(dec->mem);
    }
    if (dec->reader_class != NULL) {
        avro_value_decref(&dec->reader_value);
        avro_value_iface_decref(dec->reader_class);
    }
    json_decref(dec->reader_json);
    sl_bytes__fini(&dec->scratch);
    avro_schema_decref(dec->reader);
    free(dec);
}

/* Returns the cached resolution state of writer id, building it first. */
static dec_writer_t *writer_state(sl_decoder_t *dec, int32_t id,
                                  avro_schema_t writer)
{
    dec_writer_t *writers;
    dec_writer_t *w;
    char *text;

    for (size_t i = 0; i < dec->writer_count; i++) {
        if (dec->writers[i].id == id) {
            return &dec->writers[i];
        }
    }
    writers = realloc(dec->writers, (dec->writer_count + 1) * sizeof(*writers));
    if (writers == NULL) {
        return NULL;
    }
    dec->writers = writers;
    w = &dec->writers[dec->writer_count++];
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->builtin = -1;

    text = sl_registry__json_dup(dec->reg, id);
    w->err = sl_resolution__init(&w->res, writer, text, dec->reader,
                                 dec->reader_json);
    free(text);
    if (w->err != SL_DECODE_OK) {
        sl_log_warn("schema", "cannot resolve writer schema id=%d: %s (%s)",
                    (int)id, sl_decode_err_name(w->err), avro_strerror());
    }
    return w;
}

/* Reads a checked (and maybe rewritten) body into the reader value. */
static sl_decode_err_t read_body(sl_decoder_t *dec, dec_writer_t *w,
                                 const uint8_t *body, size_t len)
{
    const char *msg;
    sl_decode_err_t err = sl_resolution__prepare_value(&w->res);

    if (err != SL_DECODE_OK) {
        return err;
    }
    avro_value_reset(&dec->reader_value);
    avro_resolved_writer_set_dest(&w->res.resolved, &dec->reader_value);
    avro_reader_memory_set_source(dec->mem, (const char *)body, (int64_t)len);
    if (avro_value_read(dec->mem, &w->res.resolved) == 0) {
        return SL_DECODE_OK;
    }

    /* The walk accepted the bytes, so a read failure means the branch that
     * the writer chose has no match in the reader ("Writer union branch 1
     * is incompatible with reader schema"). */
    msg = avro_strerror();
    if (msg != NULL && strstr(msg, "incompatible") != NULL) {
        return SL_DECODE_SCHEMA_INCOMPATIBLE;
    }
    sl_log_debug("schema", "avro_value_read failed on checked body: %s",
                 msg ? msg : "");
    return SL_DECODE_INTERNAL;
}

/* Finds the writer schema of id, from the remote registry if need be. */
static sl_decode_err_t lookup_writer(sl_decoder_t *dec, int32_t id,
                                     avro_schema_t *writer)
{
    char err[256] = "";
    int rc = sl_registry_fetch(dec->reg, id, writer, err, sizeof(err));

    if (rc == SL_OK) {
        return SL_DECODE_OK;
    }
    if (rc == SL_ENOTFOUND) {
        return SL_DECODE_UNKNOWN_SCHEMA_ID;
    }
    /* XXX: while the remote is down, every frame of an uncached id requests
     * it again and waits up to one timeout; a back-off would spare both. */
    sl_log_warn("schema", "schema registry unavailable, id=%d: %s", (int)id,
                err);
    return SL_DECODE_REGISTRY_UNAVAILABLE;
}

sl_decode_err_t sl_decoder_decode(sl_decoder_t *dec, const void *frame,
                                  size_t len, avro_value_t **value,
                                  int32_t *schema_id_out)
{
    const uint8_t *body;
    size_t body_len;
    int32_t id;
    avro_schema_t writer;
    dec_writer_t *w;
    sl_decode_err_t err;

    if (dec == NULL || value == NULL) {
        return SL_DECODE_INTERNAL;
    }
    err = sl_frame_parse(frame, len, &id, &body, &body_len);
    if (err != SL_DECODE_OK) {
        return err;
    }
    if (schema_id_out != NULL) {
        *schema_id_out = id;
    }
    err = lookup_writer(dec, id, &writer);
    if (err != SL_DECODE_OK) {
        return err;
    }

    /* The body is checked against the writer before resolution errors are
     * reported, so a corrupt body is named as such whatever the reader. */
    w = writer_state(dec, id, writer);
    if (w == NULL) {
        return SL_DECODE_INTERNAL;
    }
    err = sl_avro__walk(writer, body, body_len,
                        w->res.has_fixups ? &w->res.fix : NULL, &dec->scratch);
    if (err != SL_DECODE_OK) {
        return err;
    }
    if (w->err != SL_DECODE_OK) {
        return w->err;
    }
    if (w->res.has_fixups) {
        body = dec->scratch.data;
        body_len = dec->scratch.len;
    }

    err = read_body(dec, w, body, body_len);
    if (err != SL_DECODE_OK) {
        return err;
    }
    *value = &dec->reader_value;
    return SL_DECODE_OK;
}

/* Returns true when schema equals the built-in schema file_name. */
static bool equals_builtin(avro_schema_t schema, const char *file_name)
{
    const char *json = sl_schema_builtin(file_name);
    avro_schema_t builtin;
    bool equal;

    if (json == NULL ||
        avro_schema_from_json_length(json, strlen(json), &builtin) != 0) {
        return false;
    }
    equal = avro_schema_equal(schema, builtin) != 0;
    avro_schema_decref(builtin);
    return equal;
}

bool sl_decoder__is_builtin(sl_decoder_t *dec, int32_t id,
                            const char *file_name)
{
    avro_schema_t writer;
    dec_writer_t *w;

    if (dec->writer_count > 0 && dec->writers[0].id == id &&
        dec->writers[0].fast_file == file_name) {
        return dec->writers[0].builtin == 1;
    }
    if (lookup_writer(dec, id, &writer) != SL_DECODE_OK) {
        return false;
    }
    w = writer_state(dec, id, writer);
    if (w == NULL) {
        return false;
    }
    if (w->builtin < 0 || w->fast_file != file_name) {
        w->fast_file = file_name;
        w->builtin = w->err == SL_DECODE_OK && !w->res.has_fixups &&
                     equals_builtin(writer, file_name) &&
                     equals_builtin(dec->reader, file_name);
    }
    return w->builtin == 1;
}
