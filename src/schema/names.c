/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A check of schema texts before libavro parses them: each full name of a
 * named type (record, error, enum, fixed) may be defined once. The Avro
 * specification forbids a second definition, and libavro 1.11.1 rejects one
 * ("Cannot save enum schema") but leaks the schema it had built: 1,188
 * bytes per parse of a record holding two enums named E, as measured under
 * AddressSanitizer. A registry that parsed such texts from its clients
 * would grow without bound, so the registry server, the registry's
 * register, add and fetch, and the compatibility checks run this check
 * before libavro.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema_int.h"
#include "util/err.h"

/* Full names defined so far in one schema. */
typedef struct seen_names {
    char **names;
    size_t count;
} seen_names_t;

static int walk(const json_t *schema, const char *ns, seen_names_t *seen,
                char *err, size_t err_size);

/* Adds full to seen. Returns SL_OK, SL_EINVAL when it is there already,
 * or SL_ENOMEM. */
static int define(seen_names_t *seen, const char *full, char *err,
                  size_t err_size)
{
    char **grown;

    for (size_t i = 0; i < seen->count; i++) {
        if (strcmp(seen->names[i], full) == 0) {
            snprintf(err, err_size, "the named type %s is defined twice", full);
            return SL_EINVAL;
        }
    }
    grown = realloc(seen->names, (seen->count + 1) * sizeof(*grown));
    if (grown == NULL)
        return SL_ENOMEM;
    seen->names = grown;
    seen->names[seen->count] = strdup(full);
    if (seen->names[seen->count] == NULL)
        return SL_ENOMEM;
    seen->count++;
    return SL_OK;
}

/* Full name of a named type by the specification's rules: a dotted name
 * is already full; otherwise its own "namespace", else the enclosing
 * one, is put in front. A leading dot (".R") is the empty namespace, so
 * the name is "R", as libavro reads it: taken as ".R", "R" defined again
 * got past this check and libavro then leaked the schema it rejected.
 * OUT: full. Returns false when it does not fit. */
static bool full_name(const json_t *schema, const char *name,
                      const char *enclosing, char *full, size_t size)
{
    const char *ns = json_string_value(json_object_get(schema, "namespace"));
    int n;

    if (name[0] == '.' && strchr(name + 1, '.') == NULL) {
        n = snprintf(full, size, "%s", name + 1);
    } else if (strchr(name, '.') != NULL ||
               (ns == NULL && enclosing[0] == '\0') ||
               (ns != NULL && ns[0] == '\0')) {
        n = snprintf(full, size, "%s", name);
    } else {
        n = snprintf(full, size, "%s.%s", ns != NULL ? ns : enclosing, name);
    }
    return n >= 0 && (size_t)n < size;
}

/* Returns true when a field before fields[index] has the same name. */
static bool field_repeated(const json_t *fields, size_t index)
{
    const char *name = json_string_value(
        json_object_get(json_array_get(fields, index), "name"));

    for (size_t j = 0; name != NULL && j < index; j++) {
        const char *other = json_string_value(
            json_object_get(json_array_get(fields, j), "name"));

        if (other != NULL && strcmp(other, name) == 0)
            return true;
    }
    return false;
}

/* Walks the fields of the record full, whose namespace is ns. Two fields
 * of one name are rejected too: libavro 1.11.1 accepts them, but then
 * leaks what avro_resolved_writer_new() had built when resolving them. */
static int walk_fields(const json_t *fields, const char *full, const char *ns,
                       seen_names_t *seen, char *err, size_t err_size)
{
    size_t i;
    const json_t *field;
    int rc = SL_OK;

    json_array_foreach(fields, i, field)
    {
        if (field_repeated(fields, i)) {
            snprintf(err, err_size, "the record %s has two fields named %s",
                     full, json_string_value(json_object_get(field, "name")));
            return SL_EINVAL;
        }
        rc = walk(json_object_get(field, "type"), ns, seen, err, err_size);
        if (rc != SL_OK)
            break;
    }
    return rc;
}

/* Walks a named type: defines its full name, then walks its children with
 * the namespace of that name. */
static int walk_named(const json_t *schema, const char *type, const char *ns,
                      seen_names_t *seen, char *err, size_t err_size)
{
    const char *name = json_string_value(json_object_get(schema, "name"));
    char full[SL_AVRO_FULLNAME_MAX];
    char inner[SL_AVRO_FULLNAME_MAX];
    char *dot;
    int rc;

    /* libavro reports a missing name itself, and defines nothing. */
    if (name == NULL)
        return SL_OK;
    if (!full_name(schema, name, ns, full, sizeof(full))) {
        snprintf(err, err_size,
                 "the full name of %.64s... is longer than %d "
                 "bytes",
                 name, SL_AVRO_FULLNAME_MAX - 1);
        return SL_EINVAL;
    }
    rc = define(seen, full, err, err_size);
    if (rc != SL_OK || strcmp(type, "enum") == 0 || strcmp(type, "fixed") == 0)
        return rc;

    snprintf(inner, sizeof(inner), "%s", full);
    dot = strrchr(inner, '.');
    if (dot != NULL)
        *dot = '\0';
    else
        inner[0] = '\0';
    return walk_fields(json_object_get(schema, "fields"), full, inner, seen,
                       err, err_size);
}

static int walk(const json_t *schema, const char *ns, seen_names_t *seen,
                char *err, size_t err_size)
{
    const json_t *type_json = json_object_get(schema, "type");
    const char *type = json_string_value(type_json);

    if (json_is_array(schema)) {
        size_t i;
        const json_t *branch;

        json_array_foreach(schema, i, branch)
        {
            int rc = walk(branch, ns, seen, err, err_size);

            if (rc != SL_OK)
                return rc;
        }
        return SL_OK;
    }
    if (!json_is_object(schema))
        return SL_OK; /* a primitive or a reference to a defined name */
    if (type == NULL)
        return walk(type_json, ns, seen, err, err_size);
    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0 ||
        strcmp(type, "enum") == 0 || strcmp(type, "fixed") == 0)
        return walk_named(schema, type, ns, seen, err, err_size);
    if (strcmp(type, "array") == 0)
        return walk(json_object_get(schema, "items"), ns, seen, err, err_size);
    if (strcmp(type, "map") == 0)
        return walk(json_object_get(schema, "values"), ns, seen, err, err_size);
    return SL_OK;
}

int sl_avro__check_names(const json_t *schema, char *err, size_t err_size)
{
    seen_names_t seen = {0};
    int rc = walk(schema, "", &seen, err, err_size);

    for (size_t i = 0; i < seen.count; i++)
        free(seen.names[i]);
    free(seen.names);
    return rc;
}
