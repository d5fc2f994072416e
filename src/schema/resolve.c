/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Schema resolution of one writer schema against the decoder's reader
 * schema. libavro's resolved writer does the type matching: unions by
 * branch type, numeric promotion (int to long, float, double and so on),
 * skipping writer-only fields. libavro 1.11.1 gets two rules of the Avro
 * specification wrong, and this file corrects them:
 *
 * - Reader fields missing from the writer fail even when they have a
 *   default ("Reader field x doesn't appear in writer"), because libavro
 *   drops defaults when it parses a schema. Each such field is appended to
 *   the writer schema (the "augmented" writer) and the binary encoding of
 *   its default is appended to every value of that record while the body
 *   is walked.
 * - Enums resolve by index, not by symbol: writer symbol 0 becomes reader
 *   symbol 0 whatever its name, and an index past the reader's symbols is
 *   stored unchecked. The walk maps each enum index by symbol name, to the
 *   reader's default symbol when the reader lacks the writer's symbol.
 *
 * Named types are matched by full name. The defaults come from the reader
 * schema's JSON text, which the decoder finds in the registry.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "schema/schema_int.h"
#include "util/err.h"

/* Most named types (records, enums, fixed) one schema may define. */
#define SL_AVRO_MAX_NAMED 256

typedef struct named {
    char fullname[SL_AVRO_FULLNAME_MAX];
    avro_schema_t schema; /* set by collect_schema_names */
    json_t *json;         /* set by collect_json_names, borrowed */
} named_t;

typedef struct names {
    named_t items[SL_AVRO_MAX_NAMED];
    size_t count;
    int overflow;
} names_t;

static named_t *names_add(names_t *names, const char *fullname)
{
    named_t *n;

    if (names->count >= SL_AVRO_MAX_NAMED) {
        names->overflow = 1;
        return NULL;
    }
    n = &names->items[names->count++];
    memset(n, 0, sizeof(*n));
    snprintf(n->fullname, sizeof(n->fullname), "%s", fullname);
    return n;
}

static const char *short_name(const char *fullname)
{
    const char *dot = strrchr(fullname, '.');

    return dot ? dot + 1 : fullname;
}

/* Finds fullname, falling back to the short name when one side has no
 * namespace (libavro does not always record inherited namespaces). */
static named_t *names_find(names_t *names, const char *fullname)
{
    for (size_t i = 0; i < names->count; i++) {
        if (strcmp(names->items[i].fullname, fullname) == 0) {
            return &names->items[i];
        }
    }
    for (size_t i = 0; i < names->count; i++) {
        const char *a = names->items[i].fullname;

        if ((strchr(a, '.') == NULL || strchr(fullname, '.') == NULL) &&
            strcmp(short_name(a), short_name(fullname)) == 0) {
            return &names->items[i];
        }
    }
    return NULL;
}

static void collect_schema_names(avro_schema_t schema, names_t *names)
{
    char fullname[SL_AVRO_FULLNAME_MAX];
    named_t *n;

    switch (avro_typeof(schema)) {
    case AVRO_RECORD:
    case AVRO_ENUM:
    case AVRO_FIXED:
        sl_avro__fullname(schema, fullname, sizeof(fullname));
        if (names_find(names, fullname) != NULL) {
            return;
        }
        n = names_add(names, fullname);
        if (n == NULL) {
            return;
        }
        n->schema = schema;
        if (avro_typeof(schema) != AVRO_RECORD) {
            return;
        }
        for (size_t i = 0; i < avro_schema_record_size(schema); i++) {
            collect_schema_names(
                avro_schema_record_field_get_by_index(schema, (int)i), names);
        }
        return;
    case AVRO_UNION:
        for (size_t i = 0; i < avro_schema_union_size(schema); i++) {
            collect_schema_names(avro_schema_union_branch(schema, (int)i),
                                 names);
        }
        return;
    case AVRO_ARRAY:
        collect_schema_names(avro_schema_array_items(schema), names);
        return;
    case AVRO_MAP:
        collect_schema_names(avro_schema_map_values(schema), names);
        return;
    default:
        return; /* primitives, and links to types already collected */
    }
}

static void collect_json_names(json_t *json, const char *space, names_t *names);

/* Adds one named type definition, applying the namespace rules of the Avro
 * specification: a dotted name is already full, else "namespace" or the
 * enclosing namespace qualifies it. */
static void collect_json_named(json_t *json, const char *type,
                               const char *space, names_t *names)
{
    const char *name = json_string_value(json_object_get(json, "name"));
    const char *own = json_string_value(json_object_get(json, "namespace"));
    char fullname[SL_AVRO_FULLNAME_MAX];
    char inner[SL_AVRO_FULLNAME_MAX];
    named_t *n;
    size_t i;
    json_t *field;

    if (name == NULL) {
        return;
    }
    if (strchr(name, '.') != NULL) {
        snprintf(fullname, sizeof(fullname), "%s", name);
        snprintf(inner, sizeof(inner), "%.*s", (int)(strrchr(name, '.') - name),
                 name);
    } else {
        const char *ns = own != NULL ? own : space;

        int len;

        snprintf(inner, sizeof(inner), "%s", ns ? ns : "");
        if (inner[0] != '\0') {
            len = snprintf(fullname, sizeof(fullname), "%s.%s", inner, name);
        } else {
            len = snprintf(fullname, sizeof(fullname), "%s", name);
        }
        if (len < 0 || (size_t)len >= sizeof(fullname)) {
            names->overflow = 1;
            return;
        }
    }
    n = names_add(names, fullname);
    if (n != NULL) {
        n->json = json;
    }
    if (strcmp(type, "record") != 0 && strcmp(type, "error") != 0) {
        return;
    }
    json_array_foreach(json_object_get(json, "fields"), i, field)
    {
        collect_json_names(json_object_get(field, "type"), inner, names);
    }
}

static void collect_json_names(json_t *json, const char *space, names_t *names)
{
    size_t i;
    json_t *item;
    json_t *type_json;
    const char *type;

    if (json_is_array(json)) {
        json_array_foreach(json, i, item)
        {
            collect_json_names(item, space, names);
        }
        return;
    }
    if (!json_is_object(json)) {
        return;
    }
    type_json = json_object_get(json, "type");
    type = json_string_value(type_json);
    if (type == NULL) {
        collect_json_names(type_json, space, names);
    } else if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0 ||
               strcmp(type, "enum") == 0 || strcmp(type, "fixed") == 0) {
        collect_json_named(json, type, space, names);
    } else if (strcmp(type, "array") == 0) {
        collect_json_names(json_object_get(json, "items"), space, names);
    } else if (strcmp(type, "map") == 0) {
        collect_json_names(json_object_get(json, "values"), space, names);
    }
}

/* Named types a schema defines, in the order libavro builds their
 * classes. */
typedef struct defined {
    avro_schema_t schemas[SL_AVRO_MAX_NAMED];
    size_t count;
} defined_t;

/*
 * Tells whether every link inside schema names a type defined before it
 * inside schema. libavro 1.11.1's avro_generic_class_from_schema() fails on
 * any other link, such as a field type that refers to its enclosing
 * record, and leaks the classes it had built, about 1 KB each time.
 */
static bool links_inside(avro_schema_t schema, defined_t *def, int depth)
{
    size_t n;

    if (depth > SL_AVRO_MAX_DEPTH) {
        return false;
    }
    switch (avro_typeof(schema)) {
    case AVRO_LINK:
        for (size_t i = 0; i < def->count; i++) {
            if (def->schemas[i] == avro_schema_link_target(schema)) {
                return true;
            }
        }
        return false;
    case AVRO_RECORD:
    case AVRO_ENUM:
    case AVRO_FIXED:
        if (def->count == SL_AVRO_MAX_NAMED) {
            return false;
        }
        def->schemas[def->count++] = schema;
        n = is_avro_record(schema) ? avro_schema_record_size(schema) : 0;
        for (size_t i = 0; i < n; i++) {
            if (!links_inside(
                    avro_schema_record_field_get_by_index(schema, (int)i), def,
                    depth + 1)) {
                return false;
            }
        }
        return true;
    case AVRO_UNION:
        for (size_t i = 0; i < avro_schema_union_size(schema); i++) {
            if (!links_inside(avro_schema_union_branch(schema, (int)i), def,
                              depth + 1)) {
                return false;
            }
        }
        return true;
    case AVRO_ARRAY:
        return links_inside(avro_schema_array_items(schema), def, depth + 1);
    case AVRO_MAP:
        return links_inside(avro_schema_map_values(schema), def, depth + 1);
    default:
        return true;
    }
}

/* Encodes a JSON default as a binary value of schema into a new buffer. */
static int encode_default(avro_schema_t schema, json_t *json, uint8_t **out,
                          size_t *out_len)
{
    avro_value_iface_t *cls;
    avro_writer_t writer = NULL;
    avro_value_t value;
    uint8_t *buf = NULL;
    size_t size = 0;
    int rc = SL_EINVAL;
    defined_t def = {.count = 0};

    /* XXX: the caller then drops the default, as it did when libavro
     * failed, so a reader field of a type that refers to an enclosing
     * record fails resolution when the writer lacks it. Encoding such a
     * default needs a class built from the enclosing record. */
    if (!links_inside(schema, &def, 0)) {
        return SL_EINVAL;
    }
    cls = avro_generic_class_from_schema(schema);
    if (cls == NULL || avro_generic_value_new(cls, &value) != 0) {
        if (cls != NULL)
            avro_value_iface_decref(cls);
        return SL_ENOMEM;
    }
    if (sl_value__from_json(&value, json, NULL, 0) != SL_OK ||
        avro_value_sizeof(&value, &size) != 0) {
        goto out;
    }
    buf = malloc(size ? size : 1);
    writer = buf ? avro_writer_memory((const char *)buf, (int64_t)size) : NULL;
    if (writer == NULL || avro_value_write(writer, &value) != 0) {
        free(buf);
        goto out;
    }
    *out = buf;
    *out_len = size;
    rc = SL_OK;
out:
    if (writer != NULL) {
        avro_writer_free(writer);
    }
    avro_value_decref(&value);
    avro_value_iface_decref(cls);
    return rc;
}

static int has_field(json_t *record_json, const char *name)
{
    size_t i;
    json_t *field;

    json_array_foreach(json_object_get(record_json, "fields"), i, field)
    {
        const char *fname = json_string_value(json_object_get(field, "name"));

        if (fname != NULL && strcmp(fname, name) == 0) {
            return 1;
        }
    }
    return 0;
}

static int add_record_fixup(sl_fixups_t *fix, const char *fullname,
                            const uint8_t *bytes, size_t len)
{
    sl_record_fixup_t *rf = NULL;
    uint8_t *joined;

    for (size_t i = 0; i < fix->record_count; i++) {
        if (strcmp(fix->records[i].fullname, fullname) == 0) {
            rf = &fix->records[i];
        }
    }
    if (rf == NULL) {
        sl_record_fixup_t *records =
            realloc(fix->records, (fix->record_count + 1) * sizeof(*records));

        if (records == NULL) {
            return SL_ENOMEM;
        }
        fix->records = records;
        rf = &fix->records[fix->record_count];
        *rf = (sl_record_fixup_t){.fullname = strdup(fullname)};
        if (rf->fullname == NULL) {
            return SL_ENOMEM;
        }
        fix->record_count++;
    }
    joined = realloc(rf->bytes, rf->len + len + 1);
    if (joined == NULL) {
        return SL_ENOMEM;
    }
    memcpy(joined + rf->len, bytes, len);
    rf->bytes = joined;
    rf->len += len;
    return SL_OK;
}

/*
 * Appends to one writer record (JSON) every reader field it lacks that has
 * a default, and records the default's bytes. Fields without a default are
 * left out, so libavro reports them as missing.
 */
static int augment_record(named_t *wrec, avro_schema_t rrec, json_t *rjson,
                          sl_fixups_t *fix)
{
    json_t *wfields = json_object_get(wrec->json, "fields");
    size_t i;
    json_t *rfield;

    json_array_foreach(json_object_get(rjson, "fields"), i, rfield)
    {
        const char *name = json_string_value(json_object_get(rfield, "name"));
        json_t *def = json_object_get(rfield, "default");
        avro_schema_t ftype;
        uint8_t *bytes = NULL;
        size_t len = 0;
        json_t *copy;
        int rc;

        if (name == NULL || def == NULL || has_field(wrec->json, name)) {
            continue;
        }
        ftype = avro_schema_record_field_get(rrec, name);
        if (ftype == NULL || encode_default(ftype, def, &bytes, &len) != 0) {
            continue; /* an unusable default counts as none */
        }
        copy = json_pack("{s:s, s:O}", "name", name, "type",
                         json_object_get(rfield, "type"));
        rc = copy ? json_array_append_new(wfields, copy) : -1;
        if (rc == 0) {
            rc = add_record_fixup(fix, wrec->fullname, bytes, len);
        }
        free(bytes);
        if (rc != 0) {
            return SL_ENOMEM;
        }
    }
    return SL_OK;
}

/* Maps every writer symbol to the reader index of the same symbol, or of
 * the reader enum's default symbol, or -1. Adds a fix-up unless the map is
 * the identity. */
static int map_enum(avro_schema_t wenum, avro_schema_t renum, json_t *rjson,
                    sl_fixups_t *fix)
{
    int count = avro_schema_enum_number_of_symbols(wenum);
    const char *def = json_string_value(json_object_get(rjson, "default"));
    int def_index = def ? avro_schema_enum_get_by_name(renum, def) : -1;
    sl_enum_fixup_t *ef;
    int identity = 1;
    int *map = calloc((size_t)count + 1, sizeof(*map));
    char fullname[SL_AVRO_FULLNAME_MAX];

    if (map == NULL) {
        return SL_ENOMEM;
    }
    for (int i = 0; i < count; i++) {
        int r =
            avro_schema_enum_get_by_name(renum, avro_schema_enum_get(wenum, i));

        map[i] = r >= 0 ? r : def_index;
        identity = identity && map[i] == i;
    }
    if (identity) {
        free(map);
        return SL_OK;
    }

    ef = realloc(fix->enums, (fix->enum_count + 1) * sizeof(*ef));
    if (ef == NULL) {
        free(map);
        return SL_ENOMEM;
    }
    fix->enums = ef;
    sl_avro__fullname(wenum, fullname, sizeof(fullname));
    ef = &fix->enums[fix->enum_count];
    *ef = (sl_enum_fixup_t){
        .fullname = strdup(fullname), .map = map, .count = count};
    if (ef->fullname == NULL) {
        free(map);
        return SL_ENOMEM;
    }
    fix->enum_count++;
    return SL_OK;
}

/* Builds the fix-ups and the augmented writer JSON (edited in place). */
static int plan_fixups(avro_schema_t writer, json_t *wjson,
                       avro_schema_t reader, json_t *rjson, sl_fixups_t *fix)
{
    /* About 0.5 MiB, so on the heap; this runs once per writer schema. */
    names_t *all = calloc(4, sizeof(*all));
    names_t *wnames = &all[0], *wjnames = &all[1];
    names_t *rnames = &all[2], *rjnames = &all[3];
    int rc = SL_OK;

    if (all == NULL) {
        return SL_ENOMEM;
    }
    collect_schema_names(writer, wnames);
    collect_schema_names(reader, rnames);
    collect_json_names(wjson, NULL, wjnames);
    if (rjson != NULL) {
        collect_json_names(rjson, NULL, rjnames);
    }
    if (wnames->overflow || rnames->overflow || wjnames->overflow ||
        rjnames->overflow) {
        rc = SL_EINVAL;
    }

    for (size_t i = 0; i < wnames->count && rc == SL_OK; i++) {
        named_t *w = &wnames->items[i];
        named_t *r = names_find(rnames, w->fullname);
        named_t *rj = names_find(rjnames, w->fullname);
        named_t *wj = names_find(wjnames, w->fullname);

        if (r == NULL || avro_typeof(r->schema) != avro_typeof(w->schema)) {
            continue; /* libavro reports the mismatch */
        }
        if (avro_typeof(w->schema) == AVRO_ENUM) {
            rc = map_enum(w->schema, r->schema, rj ? rj->json : NULL, fix);
        } else if (avro_typeof(w->schema) == AVRO_RECORD && rj != NULL &&
                   wj != NULL) {
            rc = augment_record(wj, r->schema, rj->json, fix);
        }
    }
    free(all);
    return rc;
}

static sl_decode_err_t classify_failure(void)
{
    const char *msg = avro_strerror();

    /* libavro 1.11.1 words a missing reader field "Reader field x doesn't
     * appear in writer", nested inside "Field y isn't compatible: ...". */
    if (msg != NULL && strstr(msg, "doesn't appear in writer") != NULL) {
        return SL_DECODE_SCHEMA_RESOLUTION_FAILED;
    }
    return SL_DECODE_SCHEMA_INCOMPATIBLE;
}

/* Parses the augmented writer JSON, or takes a reference to the writer
 * when nothing was appended. */
static sl_decode_err_t build_augmented(sl_resolution_t *res,
                                       avro_schema_t writer, json_t *wjson)
{
    char *text;
    int rc;

    if (res->fix.record_count == 0) {
        res->augmented = avro_schema_incref(writer);
        return SL_DECODE_OK;
    }
    text = json_dumps(wjson, JSON_COMPACT);
    if (text == NULL) {
        return SL_DECODE_INTERNAL;
    }
    rc = avro_schema_from_json_length(text, strlen(text), &res->augmented);
    free(text);
    if (rc != 0) {
        /* XXX: a defaulted reader field whose type names a reader-only
         * type defined elsewhere cannot be grafted onto the writer. */
        res->augmented = NULL;
        return SL_DECODE_SCHEMA_RESOLUTION_FAILED;
    }
    return SL_DECODE_OK;
}

/*
 * Builds the resolver of writer against reader. libavro 1.11.1's
 * avro_resolved_writer_new() adds one reference to the resolver it returns
 * for each link inside the writer that resolves against the top reader
 * record itself. The items of an array or the values of a map of the
 * record's own type do so. The caller's decref then never frees that
 * resolver, the resolvers under it or the two schemas they hold (4 KB per
 * call for a record of two fields, measured with ASan). libavro frees the
 * resolvers under the top one by walking them, whatever their counts, so only
 * the top one's count matters. With a link to the writer record as the top
 * writer schema, the top resolver is a link resolver that no link inside the
 * writer leads back to, and it passes every value operation to the record's
 * resolver.
 */
static avro_value_iface_t *new_resolver(avro_schema_t writer,
                                        avro_schema_t reader)
{
    static const char prefix[] = "Link target isn't compatible: ";
    avro_schema_t top;
    avro_value_iface_t *iface;
    const char *msg;

    if (!is_avro_record(writer)) {
        /* Links lead only to named types, and of those only a record
         * can contain a link. */
        return avro_resolved_writer_new(writer, reader);
    }
    top = avro_schema_link(writer);
    if (top == NULL) {
        return NULL;
    }
    iface = avro_resolved_writer_new(top, reader);
    /* The resolvers keep the record, not the link, which only served as a
     * key while they were built. */
    avro_schema_decref(top);
    msg = avro_strerror();
    if (iface == NULL && msg != NULL &&
        strncmp(msg, prefix, sizeof(prefix) - 1) == 0) {
        /* The message names the field at fault, as without the link. */
        char copy[1024];

        snprintf(copy, sizeof(copy), "%s", msg + sizeof(prefix) - 1);
        avro_set_error("%s", copy);
    }
    return iface;
}

/* Tells whether schema contains a map. Links are not followed, because
 * the type they name is also reached where it is defined. */
static bool contains_map(avro_schema_t schema, int depth)
{
    if (depth > SL_AVRO_MAX_DEPTH) {
        return true; /* unreachable for a parsed schema, so assume a map */
    }
    switch (avro_typeof(schema)) {
    case AVRO_MAP:
        return true;
    case AVRO_ARRAY:
        return contains_map(avro_schema_array_items(schema), depth + 1);
    case AVRO_UNION:
        for (size_t i = 0; i < avro_schema_union_size(schema); i++) {
            if (contains_map(avro_schema_union_branch(schema, (int)i),
                             depth + 1)) {
                return true;
            }
        }
        return false;
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(schema); i++) {
            if (contains_map(
                    avro_schema_record_field_get_by_index(schema, (int)i),
                    depth + 1)) {
                return true;
            }
        }
        return false;
    default:
        return false;
    }
}

sl_decode_err_t sl_resolution__init(sl_resolution_t *res, avro_schema_t writer,
                                    const char *writer_json,
                                    avro_schema_t reader, json_t *reader_json)
{
    json_t *wjson;
    sl_decode_err_t err;
    char why[512];

    memset(res, 0, sizeof(*res));
    wjson = writer_json ? json_loads(writer_json, JSON_DECODE_ANY, NULL) : NULL;
    if (wjson == NULL) {
        return SL_DECODE_INTERNAL;
    }
    if (plan_fixups(writer, wjson, reader, reader_json, &res->fix) != SL_OK) {
        json_decref(wjson);
        return SL_DECODE_INTERNAL;
    }
    res->has_fixups = res->fix.record_count > 0 || res->fix.enum_count > 0;
    err = build_augmented(res, writer, wjson);
    json_decref(wjson);
    if (err != SL_DECODE_OK) {
        return err;
    }

    /* libavro reads freed memory or dereferences NULL on some failures,
     * so it only gets pairs that the dry run expects to resolve.
     * XXX: a writer union branch that fails that way rejects the whole
     * writer, also its values that take another branch. */
    err = sl_avro__resolvable(res->augmented, reader, 0, why, sizeof(why));
    if (err != SL_DECODE_OK) {
        avro_set_error("%s", why);
        return err;
    }
    res->iface = new_resolver(res->augmented, reader);
    if (res->iface == NULL) {
        return classify_failure();
    }
    if (avro_resolved_writer_new_value(res->iface, &res->resolved) != 0) {
        avro_value_iface_decref(res->iface);
        res->iface = NULL;
        return SL_DECODE_INTERNAL;
    }
    res->has_map = contains_map(res->augmented, 0);
    return SL_DECODE_OK;
}

/*
 * libavro 1.11.1's resolved map value keeps an entry for every map entry
 * it has read: its reset finalizes the entries but never empties its list.
 * The list grows by one entry per map entry read, and at the next reset an
 * entry of a record type that refers to itself is finalized a second time,
 * which dereferences NULL. A new value starts with an empty list, so each
 * body of a writer with a map is read into a new one.
 */
sl_decode_err_t sl_resolution__prepare_value(sl_resolution_t *res)
{
    if (!res->has_map) {
        return SL_DECODE_OK;
    }
    if (res->resolved.iface != NULL) {
        avro_value_decref(&res->resolved);
        res->resolved.iface = NULL;
        res->resolved.self = NULL;
    }
    if (avro_resolved_writer_new_value(res->iface, &res->resolved) != 0) {
        res->resolved.iface = NULL;
        res->resolved.self = NULL;
        return SL_DECODE_INTERNAL;
    }
    return SL_DECODE_OK;
}

void sl_fixups__fini(sl_fixups_t *fix)
{
    for (size_t i = 0; i < fix->record_count; i++) {
        free(fix->records[i].fullname);
        free(fix->records[i].bytes);
    }
    for (size_t i = 0; i < fix->enum_count; i++) {
        free(fix->enums[i].fullname);
        free(fix->enums[i].map);
    }
    free(fix->records);
    free(fix->enums);
    memset(fix, 0, sizeof(*fix));
}

void sl_resolution__fini(sl_resolution_t *res)
{
    if (res->resolved.iface != NULL) {
        avro_value_decref(&res->resolved);
    }
    if (res->iface != NULL) {
        avro_value_iface_decref(res->iface);
    }
    if (res->augmented != NULL) {
        avro_schema_decref(res->augmented);
    }
    sl_fixups__fini(&res->fix);
    memset(res, 0, sizeof(*res));
}
