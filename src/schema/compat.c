/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Schema compatibility as the Confluent registry defines it, decided with
 * the decoder's own writer-to-reader resolution: a reader can read a
 * writer when sl_resolution__init accepts the pair (libavro's type
 * matching plus our corrections for field defaults and enums), when every
 * writer enum symbol has a reader symbol or a reader default to map to,
 * and when every branch of every writer union resolves to a reader type.
 * The last two checks exist because the decoder meets those cases only
 * when a value takes them, at read time, while compatibility must hold for
 * every value.
 *
 *   BACKWARD: the new schema reads data written with the latest one.
 *   FORWARD:  the latest schema reads data written with the new one.
 *   FULL:     both. The _TRANSITIVE levels test every earlier version
 *             instead of the latest only. NONE accepts anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "schema/schema_int.h"
#include "util/err.h"

static const char *const level_names[SL_COMPAT_LEVEL_COUNT] = {
    [SL_COMPAT_BACKWARD] = "BACKWARD",
    [SL_COMPAT_BACKWARD_TRANSITIVE] = "BACKWARD_TRANSITIVE",
    [SL_COMPAT_FORWARD] = "FORWARD",
    [SL_COMPAT_FORWARD_TRANSITIVE] = "FORWARD_TRANSITIVE",
    [SL_COMPAT_FULL] = "FULL",
    [SL_COMPAT_FULL_TRANSITIVE] = "FULL_TRANSITIVE",
    [SL_COMPAT_NONE] = "NONE",
};

const char *sl_compat_level_name(sl_compat_level_t level)
{
    if ((unsigned)level >= SL_COMPAT_LEVEL_COUNT) {
        return "NONE";
    }
    return level_names[level];
}

int sl_compat_level_parse(const char *name, sl_compat_level_t *out)
{
    for (int i = 0; name != NULL && i < SL_COMPAT_LEVEL_COUNT; i++) {
        if (strcmp(level_names[i], name) == 0) {
            *out = (sl_compat_level_t)i;
            return SL_OK;
        }
    }
    return SL_EINVAL;
}

static avro_schema_t follow_links(avro_schema_t schema)
{
    while (avro_typeof(schema) == AVRO_LINK) {
        schema = avro_schema_link_target(schema);
    }
    return schema;
}

/* Tells whether two names denote the same type, comparing short names when
 * one side lacks a namespace, as resolve.c matches named types. */
static int same_name(avro_schema_t w, avro_schema_t r)
{
    char wname[SL_AVRO_FULLNAME_MAX];
    char rname[SL_AVRO_FULLNAME_MAX];
    const char *wdot;
    const char *rdot;

    sl_avro__fullname(w, wname, sizeof(wname));
    sl_avro__fullname(r, rname, sizeof(rname));
    if (strcmp(wname, rname) == 0) {
        return 1;
    }
    wdot = strrchr(wname, '.');
    rdot = strrchr(rname, '.');
    if (wdot != NULL && rdot != NULL) {
        return 0;
    }
    return strcmp(wdot ? wdot + 1 : wname, rdot ? rdot + 1 : rname) == 0;
}

/* Tells whether a writer type matches a reader type at the top level, by
 * the Avro specification's resolution rules (promotions included). */
static int types_match(avro_schema_t w, avro_schema_t r)
{
    avro_type_t wt = avro_typeof(w);
    avro_type_t rt = avro_typeof(r);

    if (wt == rt) {
        if (wt == AVRO_RECORD || wt == AVRO_ENUM || wt == AVRO_FIXED) {
            return same_name(w, r);
        }
        return 1;
    }
    switch (wt) {
    case AVRO_INT32:
        return rt == AVRO_INT64 || rt == AVRO_FLOAT || rt == AVRO_DOUBLE;
    case AVRO_INT64:
        return rt == AVRO_FLOAT || rt == AVRO_DOUBLE;
    case AVRO_FLOAT:
        return rt == AVRO_DOUBLE;
    case AVRO_STRING:
        return rt == AVRO_BYTES;
    case AVRO_BYTES:
        return rt == AVRO_STRING;
    default:
        return 0;
    }
}

/* Record pairs (writer, reader) whose fields are checked or being
 * checked. A recursive schema reaches the same pair again, and checking it
 * each time took time exponential in the nesting depth. */
typedef struct pair_set {
    avro_schema_t (*pairs)[2];
    size_t count;
} pair_set_t;

/* Adds (w, r) to seen. Returns 1 when it was new, 0 when it was there,
 * -1 when memory ran out. */
static int pair_add(pair_set_t *seen, avro_schema_t w, avro_schema_t r)
{
    avro_schema_t(*grown)[2];

    for (size_t i = 0; i < seen->count; i++) {
        if (seen->pairs[i][0] == w && seen->pairs[i][1] == r) {
            return 0;
        }
    }
    grown = realloc(seen->pairs, (seen->count + 1) * sizeof(*grown));
    if (grown == NULL) {
        return -1;
    }
    seen->pairs = grown;
    seen->pairs[seen->count][0] = w;
    seen->pairs[seen->count][1] = r;
    seen->count++;
    return 1;
}

static int check_pair(avro_schema_t w, avro_schema_t r, int depth,
                      pair_set_t *seen, char *err, size_t err_size);

static int check_children(avro_schema_t w, avro_schema_t r, int depth,
                          pair_set_t *seen, char *err, size_t err_size)
{
    int rc = SL_OK;

    switch (avro_typeof(w)) {
    case AVRO_RECORD:
        /* A pair seen before is checked, or is being checked further up. */
        rc = pair_add(seen, w, r);
        if (rc <= 0) {
            return rc == 0 ? SL_OK : SL_ENOMEM;
        }
        rc = SL_OK;
        for (size_t i = 0; i < avro_schema_record_size(r) && rc == SL_OK; i++) {
            const char *name = avro_schema_record_field_name(r, (int)i);
            /* Not avro_schema_record_field_get: libavro 1.11 returns an
             * uninitialised pointer for a name the record lacks. */
            int wi = avro_schema_record_field_get_index(w, name);

            if (wi >= 0) {
                rc =
                    check_pair(avro_schema_record_field_get_by_index(w, wi),
                               avro_schema_record_field_get_by_index(r, (int)i),
                               depth + 1, seen, err, err_size);
            }
        }
        return rc;
    case AVRO_ARRAY:
        return check_pair(avro_schema_array_items(w),
                          avro_schema_array_items(r), depth + 1, seen, err,
                          err_size);
    case AVRO_MAP:
        return check_pair(avro_schema_map_values(w), avro_schema_map_values(r),
                          depth + 1, seen, err, err_size);
    default:
        return SL_OK;
    }
}

/* Checks that every value of writer type w resolves to reader type r. */
static int check_pair(avro_schema_t w, avro_schema_t r, int depth,
                      pair_set_t *seen, char *err, size_t err_size)
{
    w = follow_links(w);
    r = follow_links(r);
    if (depth > SL_AVRO_MAX_DEPTH) {
        return SL_OK; /* only recursive schemas get here; already checked */
    }
    if (avro_typeof(w) == AVRO_UNION) {
        for (size_t i = 0; i < avro_schema_union_size(w); i++) {
            int rc = check_pair(avro_schema_union_branch(w, (int)i), r, depth,
                                seen, err, err_size);

            if (rc != SL_OK) {
                return rc;
            }
        }
        return SL_OK;
    }
    if (avro_typeof(r) == AVRO_UNION) {
        for (size_t i = 0; i < avro_schema_union_size(r); i++) {
            avro_schema_t branch =
                follow_links(avro_schema_union_branch(r, (int)i));

            if (types_match(w, branch)) {
                return check_children(w, branch, depth, seen, err, err_size);
            }
        }
        snprintf(err, err_size,
                 "writer type %s matches no branch of the reader union",
                 avro_schema_type_name(w));
        return SL_EREJECTED;
    }
    if (!types_match(w, r)) {
        snprintf(err, err_size, "writer type %s cannot be read as %s",
                 avro_schema_type_name(w), avro_schema_type_name(r));
        return SL_EREJECTED;
    }
    return check_children(w, r, depth, seen, err, err_size);
}

/* Rejects a writer enum symbol that maps to no reader symbol. */
static int check_enum_maps(const sl_fixups_t *fix, avro_schema_t writer,
                           char *err, size_t err_size)
{
    (void)writer;
    for (size_t i = 0; i < fix->enum_count; i++) {
        const sl_enum_fixup_t *ef = &fix->enums[i];

        for (int s = 0; s < ef->count; s++) {
            if (ef->map[s] < 0) {
                snprintf(err, err_size,
                         "enum %s: a writer symbol (index %d) is missing "
                         "from the reader, which has no default symbol",
                         ef->fullname, s);
                return SL_EREJECTED;
            }
        }
    }
    return SL_OK;
}

static const char *resolution_reason(sl_decode_err_t derr)
{
    if (derr == SL_DECODE_SCHEMA_RESOLUTION_FAILED) {
        return "a reader field without a default is missing from the writer";
    }
    return "the types cannot be resolved";
}

/* Parses one schema text with both libavro and jansson. */
static int parse_both(const char *text, const char *role, avro_schema_t *schema,
                      json_t **json, char *err, size_t err_size)
{
    json_error_t jerr;

    *json = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (*json == NULL) {
        snprintf(err, err_size, "%s schema is not JSON: %s", role, jerr.text);
        return SL_EINVAL;
    }
    if (sl_avro__check_names(*json, err, err_size) != SL_OK) {
        json_decref(*json);
        *json = NULL;
        return SL_EINVAL;
    }
    if (avro_schema_from_json_length(text, strlen(text), schema) != 0) {
        snprintf(err, err_size, "%s schema is not a valid Avro schema: %s",
                 role, avro_strerror());
        json_decref(*json);
        *json = NULL;
        return SL_EINVAL;
    }
    return SL_OK;
}

int sl_schema_can_read(const char *reader_json, const char *writer_json,
                       char *err, size_t err_size)
{
    avro_schema_t reader = NULL;
    avro_schema_t writer = NULL;
    json_t *rjson = NULL;
    json_t *wjson = NULL;
    sl_resolution_t res;
    sl_decode_err_t derr;
    int rc;

    if (reader_json == NULL || writer_json == NULL) {
        return SL_EINVAL;
    }
    rc = parse_both(reader_json, "reader", &reader, &rjson, err, err_size);
    if (rc == SL_OK) {
        rc = parse_both(writer_json, "writer", &writer, &wjson, err, err_size);
    }
    if (rc != SL_OK) {
        goto out;
    }

    derr = sl_resolution__init(&res, writer, writer_json, reader, rjson);
    if (derr == SL_DECODE_OK) {
        char why[512];

        /* The decoder accepts a writer union with a branch that cannot be
         * read and fails only on values that take it. Compatibility must
         * hold for every value. */
        derr = sl_avro__resolvable(res.augmented, reader, 1, why, sizeof(why));
        if (derr != SL_DECODE_OK) {
            avro_set_error("%s", why);
        }
    }
    if (derr == SL_DECODE_OK) {
        rc = check_enum_maps(&res.fix, writer, err, err_size);
        if (rc == SL_OK) {
            pair_set_t seen = {NULL, 0};

            rc = check_pair(writer, reader, 0, &seen, err, err_size);
            free(seen.pairs);
        }
    } else if (derr == SL_DECODE_INTERNAL) {
        snprintf(err, err_size, "resolution failed: %s", avro_strerror());
        rc = SL_ENOMEM;
    } else {
        snprintf(err, err_size, "%s (%s)", resolution_reason(derr),
                 avro_strerror());
        rc = SL_EREJECTED;
    }
    sl_resolution__fini(&res);

out:
    if (reader != NULL) {
        avro_schema_decref(reader);
    }
    if (writer != NULL) {
        avro_schema_decref(writer);
    }
    json_decref(rjson);
    json_decref(wjson);
    return rc;
}

/* Checks new against one earlier schema in the directions level needs. */
static int check_one(sl_compat_level_t level, const char *new_json,
                     const char *old_json, char *err, size_t err_size)
{
    char reason[512] = "";
    int backward =
        level != SL_COMPAT_FORWARD && level != SL_COMPAT_FORWARD_TRANSITIVE;
    int forward =
        level != SL_COMPAT_BACKWARD && level != SL_COMPAT_BACKWARD_TRANSITIVE;
    int rc;

    if (backward) {
        rc = sl_schema_can_read(new_json, old_json, reason, sizeof(reason));
        if (rc != SL_OK) {
            snprintf(err, err_size,
                     "the new schema cannot read data written with an "
                     "earlier schema: %s",
                     reason);
            return rc;
        }
    }
    if (forward) {
        rc = sl_schema_can_read(old_json, new_json, reason, sizeof(reason));
        if (rc != SL_OK) {
            snprintf(err, err_size,
                     "an earlier schema cannot read data written with the "
                     "new schema: %s",
                     reason);
            return rc;
        }
    }
    return SL_OK;
}

int sl_schema_compat_check(sl_compat_level_t level, const char *new_json,
                           const char *const *old_jsons, size_t old_count,
                           char *err, size_t err_size)
{
    int transitive = level == SL_COMPAT_BACKWARD_TRANSITIVE ||
                     level == SL_COMPAT_FORWARD_TRANSITIVE ||
                     level == SL_COMPAT_FULL_TRANSITIVE;
    size_t first;

    if (new_json == NULL || (old_count > 0 && old_jsons == NULL) ||
        (unsigned)level >= SL_COMPAT_LEVEL_COUNT) {
        return SL_EINVAL;
    }
    if (level == SL_COMPAT_NONE || old_count == 0) {
        return SL_OK;
    }
    first = transitive ? 0 : old_count - 1;
    for (size_t i = old_count; i-- > first;) {
        int rc = check_one(level, new_json, old_jsons[i], err, err_size);

        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}
