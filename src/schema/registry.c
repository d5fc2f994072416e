/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-process schema registry of standalone mode, and the schemas
 * compiled into the binary. It numbers schemas as Confluent's registry
 * does: ids from 1, one id per distinct schema, a version list per subject.
 * Two schema texts are the same schema when their JSON is equal after
 * parsing, whatever the whitespace and key order.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "schema/schema.h"
#include "schema/schema_int.h"
#include "util/err.h"

/* Generated from the .avsc files in schemas/ by cmake/embed.cmake. */
struct sl_embedded_file {
    const char *name;
    const char *text;
};
extern const struct sl_embedded_file sl_schema_files[];

/* Largest .avsc file sl_schema_load_file reads, in bytes. */
#define SL_SCHEMA_FILE_MAX_BYTES (1024 * 1024)

typedef struct reg_entry {
    int32_t id;
    avro_schema_t schema;
    char *json;       /* the text as registered */
    char *normalized; /* compact JSON with sorted keys, for equality */
} reg_entry_t;

typedef struct reg_subject {
    char *name;
    int32_t *versions; /* schema ids, oldest first */
    size_t count;
} reg_subject_t;

struct sl_registry {
    pthread_mutex_t lock;
    reg_entry_t *entries;
    size_t entry_count;
    reg_subject_t *subjects;
    size_t subject_count;
    int32_t next_id;
    sl_registry_client_t *remote; /* NULL: ids are only known locally */
};

sl_registry_t *sl_registry_create(void)
{
    sl_registry_t *reg = calloc(1, sizeof(*reg));

    if (reg == NULL) {
        return NULL;
    }
    if (pthread_mutex_init(&reg->lock, NULL) != 0) {
        free(reg);
        return NULL;
    }
    reg->next_id = 1;
    return reg;
}

void sl_registry_destroy(sl_registry_t *reg)
{
    if (reg == NULL) {
        return;
    }
    for (size_t i = 0; i < reg->entry_count; i++) {
        avro_schema_decref(reg->entries[i].schema);
        free(reg->entries[i].json);
        free(reg->entries[i].normalized);
    }
    for (size_t i = 0; i < reg->subject_count; i++) {
        free(reg->subjects[i].name);
        free(reg->subjects[i].versions);
    }
    free(reg->entries);
    free(reg->subjects);
    sl_registry_client_destroy(reg->remote);
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

static void set_err(char *err, size_t err_size, const char *fmt,
                    const char *arg)
{
    if (err != NULL && err_size > 0) {
        snprintf(err, err_size, fmt, arg);
    }
}

/* Parses schema_json twice: with libavro for the schema, and with jansson
 * for the normalized text that identifies it. */
static int parse_schema(const char *schema_json, avro_schema_t *schema,
                        char **normalized, char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *root;
    int rc;

    if (schema_json == NULL) {
        set_err(err, err_size, "%s", "schema text is NULL");
        return SL_EINVAL;
    }
    root = json_loads(schema_json, JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        set_err(err, err_size, "invalid schema JSON: %s", jerr.text);
        return SL_EINVAL;
    }
    rc = sl_avro__check_names(root, err, err_size);
    if (rc != SL_OK) {
        json_decref(root);
        return rc;
    }
    *normalized =
        json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(root);
    if (*normalized == NULL) {
        return SL_ENOMEM;
    }
    if (avro_schema_from_json_length(schema_json, strlen(schema_json),
                                     schema) != 0) {
        set_err(err, err_size, "invalid Avro schema: %s", avro_strerror());
        free(*normalized);
        *normalized = NULL;
        return SL_EINVAL;
    }
    return SL_OK;
}

static reg_entry_t *find_by_id(sl_registry_t *reg, int32_t id)
{
    for (size_t i = 0; i < reg->entry_count; i++) {
        if (reg->entries[i].id == id) {
            return &reg->entries[i];
        }
    }
    return NULL;
}

static reg_entry_t *find_by_text(sl_registry_t *reg, const char *normalized)
{
    for (size_t i = 0; i < reg->entry_count; i++) {
        if (strcmp(reg->entries[i].normalized, normalized) == 0) {
            return &reg->entries[i];
        }
    }
    return NULL;
}

/* Takes ownership of schema and normalized on success only. */
static int insert_entry(sl_registry_t *reg, int32_t id, avro_schema_t schema,
                        const char *json, char *normalized)
{
    reg_entry_t *entries;
    char *copy = strdup(json);

    entries =
        copy ? realloc(reg->entries, (reg->entry_count + 1) * sizeof(*entries))
             : NULL;
    if (entries == NULL) {
        free(copy);
        return SL_ENOMEM;
    }
    reg->entries = entries;
    reg->entries[reg->entry_count++] = (reg_entry_t){
        .id = id, .schema = schema, .json = copy, .normalized = normalized};
    if (id >= reg->next_id) {
        reg->next_id = id + 1;
    }
    return SL_OK;
}

/* Appends id as the newest version of subject unless it already is one. */
static int add_version(sl_registry_t *reg, const char *subject, int32_t id)
{
    reg_subject_t *sub = NULL;
    int32_t *versions;

    if (subject == NULL) {
        return SL_OK;
    }
    for (size_t i = 0; i < reg->subject_count; i++) {
        if (strcmp(reg->subjects[i].name, subject) == 0) {
            sub = &reg->subjects[i];
        }
    }
    if (sub == NULL) {
        reg_subject_t *subjects = realloc(
            reg->subjects, (reg->subject_count + 1) * sizeof(*subjects));
        char *name = strdup(subject);

        if (subjects != NULL) {
            reg->subjects = subjects;
        }
        if (subjects == NULL || name == NULL) {
            free(name);
            return SL_ENOMEM;
        }
        sub = &reg->subjects[reg->subject_count++];
        *sub = (reg_subject_t){.name = name};
    }
    for (size_t i = 0; i < sub->count; i++) {
        if (sub->versions[i] == id) {
            return SL_OK;
        }
    }
    versions = realloc(sub->versions, (sub->count + 1) * sizeof(*versions));
    if (versions == NULL) {
        return SL_ENOMEM;
    }
    sub->versions = versions;
    sub->versions[sub->count++] = id;
    return SL_OK;
}

int sl_registry_register(sl_registry_t *reg, const char *subject,
                         const char *schema_json, int32_t *id_out, char *err,
                         size_t err_size)
{
    avro_schema_t schema = NULL;
    char *normalized = NULL;
    reg_entry_t *found;
    int rc;

    if (reg == NULL || id_out == NULL) {
        return SL_EINVAL;
    }
    rc = parse_schema(schema_json, &schema, &normalized, err, err_size);
    if (rc != SL_OK) {
        return rc;
    }

    pthread_mutex_lock(&reg->lock);
    found = find_by_text(reg, normalized);
    if (found != NULL) {
        *id_out = found->id;
        rc = add_version(reg, subject, found->id);
        pthread_mutex_unlock(&reg->lock);
        avro_schema_decref(schema);
        free(normalized);
        return rc;
    }
    *id_out = reg->next_id;
    rc = insert_entry(reg, *id_out, schema, schema_json, normalized);
    if (rc == SL_OK) {
        rc = add_version(reg, subject, *id_out);
    } else {
        avro_schema_decref(schema);
        free(normalized);
    }
    pthread_mutex_unlock(&reg->lock);
    return rc;
}

int sl_registry_add(sl_registry_t *reg, int32_t id, const char *subject,
                    const char *schema_json, char *err, size_t err_size)
{
    avro_schema_t schema = NULL;
    char *normalized = NULL;
    reg_entry_t *found;
    int rc;

    if (reg == NULL || id <= 0) {
        set_err(err, err_size, "%s", "schema id must be positive");
        return SL_EINVAL;
    }
    rc = parse_schema(schema_json, &schema, &normalized, err, err_size);
    if (rc != SL_OK) {
        return rc;
    }

    pthread_mutex_lock(&reg->lock);
    found = find_by_id(reg, id);
    if (found != NULL) {
        if (strcmp(found->normalized, normalized) == 0) {
            rc = add_version(reg, subject, id);
        } else {
            set_err(err, err_size, "%s",
                    "schema id is already bound to a different schema");
            rc = SL_EINVAL;
        }
        pthread_mutex_unlock(&reg->lock);
        avro_schema_decref(schema);
        free(normalized);
        return rc;
    }
    rc = insert_entry(reg, id, schema, schema_json, normalized);
    if (rc == SL_OK) {
        rc = add_version(reg, subject, id);
    } else {
        avro_schema_decref(schema);
        free(normalized);
    }
    pthread_mutex_unlock(&reg->lock);
    return rc;
}

avro_schema_t sl_registry_lookup(sl_registry_t *reg, int32_t id)
{
    reg_entry_t *found;
    avro_schema_t schema = NULL;

    if (reg == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&reg->lock);
    found = find_by_id(reg, id);
    if (found != NULL) {
        schema = found->schema;
    }
    pthread_mutex_unlock(&reg->lock);
    return schema;
}

int sl_registry_set_remote(sl_registry_t *reg, const char *base_url,
                           long timeout_ms, char *err, size_t err_size)
{
    sl_registry_client_t *client;

    if (reg == NULL) {
        return SL_EINVAL;
    }
    client = sl_registry_client_create(base_url, timeout_ms, err, err_size);
    if (client == NULL) {
        return SL_EINVAL;
    }
    sl_registry_client_destroy(reg->remote);
    reg->remote = client;
    return SL_OK;
}

int sl_registry_fetch(sl_registry_t *reg, int32_t id, avro_schema_t *schema,
                      char *err, size_t err_size)
{
    char *json = NULL;
    int rc;

    if (reg == NULL || schema == NULL) {
        return SL_EINVAL;
    }
    *schema = sl_registry_lookup(reg, id);
    if (*schema != NULL) {
        return SL_OK;
    }
    if (reg->remote == NULL) {
        set_err(err, err_size, "%s", "schema id is not registered");
        return SL_ENOTFOUND;
    }

    /* XXX: an id the remote reports as not found is asked for again on
     * every call; a negative cache would spare the registry. */
    rc = sl_registry_client_schema(reg->remote, id, &json, err, err_size);
    if (rc != SL_OK) {
        return rc;
    }
    rc = sl_registry_add(reg, id, NULL, json, err, err_size);
    free(json);
    if (rc != SL_OK) {
        /* The registry sent text that is not an Avro schema: a fault of
         * the registry, so the frame is not to blame. */
        return SL_EIO;
    }
    *schema = sl_registry_lookup(reg, id);
    return *schema != NULL ? SL_OK : SL_EIO;
}

int32_t sl_registry_latest_id(sl_registry_t *reg, const char *subject)
{
    int32_t id = -1;

    if (reg == NULL || subject == NULL) {
        return -1;
    }
    pthread_mutex_lock(&reg->lock);
    for (size_t i = 0; i < reg->subject_count; i++) {
        reg_subject_t *sub = &reg->subjects[i];

        if (strcmp(sub->name, subject) == 0 && sub->count > 0) {
            id = sub->versions[sub->count - 1];
        }
    }
    pthread_mutex_unlock(&reg->lock);
    return id;
}

char *sl_registry__json_dup(sl_registry_t *reg, int32_t id)
{
    reg_entry_t *found;
    char *copy = NULL;

    pthread_mutex_lock(&reg->lock);
    found = find_by_id(reg, id);
    if (found != NULL) {
        copy = strdup(found->json);
    }
    pthread_mutex_unlock(&reg->lock);
    return copy;
}

static char *find_builtin_json(avro_schema_t schema)
{
    for (size_t i = 0; sl_schema_files[i].name != NULL; i++) {
        const char *text = sl_schema_files[i].text;
        avro_schema_t builtin;
        int equal;

        if (avro_schema_from_json_length(text, strlen(text), &builtin) != 0) {
            continue;
        }
        equal = avro_schema_equal(builtin, schema);
        avro_schema_decref(builtin);
        if (equal) {
            return strdup(text);
        }
    }
    return NULL;
}

char *sl_registry__find_json(sl_registry_t *reg, avro_schema_t schema)
{
    reg_entry_t *best = NULL;
    char *copy = NULL;

    /* XXX: avro_schema_equal() ignores defaults, so when two registered
     * schemas differ only in their defaults the newest one is used. */
    if (reg != NULL) {
        pthread_mutex_lock(&reg->lock);
        for (size_t i = 0; i < reg->entry_count; i++) {
            reg_entry_t *e = &reg->entries[i];

            if ((best == NULL || e->id > best->id) &&
                avro_schema_equal(e->schema, schema)) {
                best = e;
            }
        }
        if (best != NULL) {
            copy = strdup(best->json);
        }
        pthread_mutex_unlock(&reg->lock);
    }
    if (best == NULL) {
        copy = find_builtin_json(schema);
    }
    return copy;
}

const char *sl_schema_builtin(const char *file_name)
{
    if (file_name == NULL) {
        return NULL;
    }
    for (size_t i = 0; sl_schema_files[i].name != NULL; i++) {
        if (strcmp(sl_schema_files[i].name, file_name) == 0) {
            return sl_schema_files[i].text;
        }
    }
    return NULL;
}

/* Reads a whole file of at most SL_SCHEMA_FILE_MAX_BYTES into a
 * NUL-terminated heap buffer. */
static char *read_file(const char *path, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t n;

    if (f == NULL) {
        if (err != NULL && err_size > 0) {
            snprintf(err, err_size, "cannot open %s: %s", path,
                     strerror(errno));
        }
        return NULL;
    }
    text = malloc(SL_SCHEMA_FILE_MAX_BYTES + 1);
    if (text == NULL) {
        set_err(err, err_size, "%s", "out of memory");
        goto out;
    }
    n = fread(text, 1, SL_SCHEMA_FILE_MAX_BYTES + 1, f);
    if (ferror(f) || n > SL_SCHEMA_FILE_MAX_BYTES) {
        set_err(err, err_size, "cannot read %s: read error or over 1 MiB",
                path);
        free(text);
        text = NULL;
        goto out;
    }
    text[n] = '\0';
out:
    fclose(f);
    return text;
}

avro_schema_t sl_schema_load_file(const char *path, char *err, size_t err_size)
{
    avro_schema_t schema = NULL;
    char *text;

    if (path == NULL) {
        set_err(err, err_size, "%s", "schema path is NULL");
        return NULL;
    }
    text = read_file(path, err, err_size);
    if (text == NULL) {
        return NULL;
    }
    if (avro_schema_from_json_length(text, strlen(text), &schema) != 0) {
        if (err != NULL && err_size > 0) {
            snprintf(err, err_size, "invalid Avro schema in %s: %s", path,
                     avro_strerror());
        }
        schema = NULL;
    }
    free(text);
    return schema;
}
