/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The request handlers of the built-in schema registry: the subset of the
 * Confluent Schema Registry REST API that producers and consumers use,
 * served from the store's schemas table. Error bodies carry the
 * registry's error codes: 40401 subject not found, 40402 version not
 * found, 40403 schema not found, 409 incompatible schema, 42201 invalid
 * schema, 42202 invalid version, 42203 invalid compatibility level, 50001
 * store error.
 *
 * Registering is idempotent per subject: a schema equal (as parsed JSON)
 * to one of the subject's versions returns that version's id. A schema
 * that other subjects registered gets their id, so an id names one schema
 * whichever subjects use it, as in Confluent's registry. Compatibility
 * levels are kept in the store, so they survive a restart and registry
 * servers sharing one database see each other's levels.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "schema/schema.h"
#include "schema/schema_int.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/timeutil.h"

#define LOG_COMPONENT "registry"

/* Maximum subject length, in bytes after percent-decoding. */
#define SUBJECT_MAX 255

/* Room for an error reply's message. */
#define MESSAGE_MAX 1024

/* Sets reply to a JSON value (stolen). Returns SL_OK or SL_ENOMEM. */
static int reply_json(sl_registry_reply_t *reply, int status, json_t *value)
{
    reply->status = status;
    reply->body =
        value ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(value);
    if (reply->body == NULL) {
        return SL_ENOMEM;
    }
    reply->body_len = strlen(reply->body);
    return SL_OK;
}

static int reply_error(sl_registry_reply_t *reply, int status, int code,
                       const char *message)
{
    return reply_json(
        reply, status,
        json_pack("{s:i, s:s}", "error_code", code, "message", message));
}

static int reply_store_error(sl_registry_reply_t *reply, int rc)
{
    sl_log_error(LOG_COMPONENT, "store call failed: %s", sl_strerror(rc));
    return reply_error(reply, 500, 50001, "Error in the backend data store");
}

/* Decodes %XX escapes of one path segment (up to '/' or the end) into out.
 * OUT: *rest, the text after the segment. Returns SL_OK or SL_EINVAL for a
 * bad escape, an empty segment or one longer than SUBJECT_MAX. */
static int decode_segment(const char *in, char *out, size_t out_size,
                          const char **rest)
{
    size_t n = 0;

    while (*in != '\0' && *in != '/') {
        char c = *in++;

        if (c == '%') {
            int hi = sl_hex_digit(in[0]);
            int lo = hi >= 0 ? sl_hex_digit(in[1]) : -1;

            if (lo < 0) {
                return SL_EINVAL;
            }
            c = (char)(hi * 16 + lo);
            in += 2;
        }
        if (n + 1 >= out_size || c == '\0') {
            return SL_EINVAL;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    *rest = in;
    return n > 0 ? SL_OK : SL_EINVAL;
}

/* ---- compatibility levels ----------------------------------------------- */

/*
 * Levels live in the store's schema_config table and are read there on
 * every use, without a cache: registry servers sharing one database then
 * agree at once, and a registration reads its level once.
 */

/* The level when none is stored, as in Confluent's registry. */
#define DEFAULT_LEVEL SL_COMPAT_BACKWARD

/* Reads the level stored for subject, or the global level when subject is
 * NULL. OUT: *level, *found (false leaves *level alone). Returns SL_OK or
 * a store error; a stored name that does not parse is SL_EIO. */
static int stored_level(const sl_registry_routes_t *routes, const char *subject,
                        sl_compat_level_t *level, bool *found)
{
    char name[SL_STORE_LEVEL_MAX + 1];
    int rc = sl_store_schema_config_get(routes->st, subject, name);

    *found = false;
    if (rc == SL_ENOTFOUND) {
        return SL_OK;
    }
    if (rc != SL_OK) {
        return rc;
    }
    if (sl_compat_level_parse(name, level) != SL_OK) {
        sl_log_error(LOG_COMPONENT,
                     "stored level is invalid subject=%s level=%s",
                     subject != NULL ? subject : "(global)", name);
        return SL_EIO;
    }
    *found = true;
    return SL_OK;
}

/* Finds the level that applies to subject: its own, else the global one,
 * else DEFAULT_LEVEL. OUT: *level. Returns SL_OK or a store error. */
static int effective_level(const sl_registry_routes_t *routes,
                           const char *subject, sl_compat_level_t *level)
{
    bool found = false;
    int rc = SL_OK;

    *level = DEFAULT_LEVEL;
    if (subject != NULL) {
        rc = stored_level(routes, subject, level, &found);
    }
    if (rc == SL_OK && !found) {
        rc = stored_level(routes, NULL, level, &found);
    }
    return rc;
}

static int reply_level(sl_registry_reply_t *reply, const char *key,
                       const char *name)
{
    return reply_json(reply, 200, json_pack("{s:s}", key, name));
}

static int get_config(sl_registry_routes_t *routes, const char *subject,
                      sl_registry_reply_t *reply)
{
    sl_compat_level_t level;
    int rc = effective_level(routes, subject, &level);

    if (rc != SL_OK) {
        return reply_store_error(reply, rc);
    }
    /* XXX: a subject without its own level reports the global one, as
     * Confluent's defaultToGlobal=true does; no 40408 is returned. */
    return reply_level(reply, "compatibilityLevel",
                       sl_compat_level_name(level));
}

static int put_config(sl_registry_routes_t *routes, const char *subject,
                      const char *body, sl_registry_reply_t *reply)
{
    json_t *req = body ? json_loads(body, 0, NULL) : NULL;
    const char *name = json_string_value(json_object_get(req, "compatibility"));
    sl_compat_level_t level;
    int rc;

    if (sl_compat_level_parse(name, &level) != SL_OK) {
        json_decref(req);
        return reply_error(reply, 422, 42203, "Invalid compatibility level");
    }
    json_decref(req);
    rc = sl_store_schema_config_set(
        routes->st, subject, sl_compat_level_name(level), sl_time_now_ms());
    if (rc != SL_OK) {
        return reply_store_error(reply, rc);
    }
    sl_log_info(LOG_COMPONENT, "compatibility level set subject=%s level=%s",
                subject != NULL ? subject : "(global)",
                sl_compat_level_name(level));
    return reply_level(reply, "compatibility", sl_compat_level_name(level));
}

/* Deletes subject's own level, which makes it follow the global level, or
 * the global level, which makes it DEFAULT_LEVEL. Replies with the deleted
 * level; a subject without one gets 40401, as from Confluent's registry. */
static int delete_config(sl_registry_routes_t *routes, const char *subject,
                         sl_registry_reply_t *reply)
{
    char old[SL_STORE_LEVEL_MAX + 1];
    int rc = sl_store_schema_config_delete(routes->st, subject, old);

    if (rc == SL_ENOTFOUND && subject == NULL) {
        return reply_level(reply, "compatibilityLevel",
                           sl_compat_level_name(DEFAULT_LEVEL));
    }
    if (rc == SL_ENOTFOUND) {
        return reply_error(reply, 404, 40401,
                           "Subject not found: it has no compatibility level "
                           "of its own");
    }
    if (rc != SL_OK) {
        return reply_store_error(reply, rc);
    }
    sl_log_info(LOG_COMPONENT,
                "compatibility level deleted subject=%s level=%s",
                subject != NULL ? subject : "(global)", old);
    return reply_level(reply, "compatibilityLevel", old);
}

/* GET, PUT or DELETE /config and /config/{subject}. */
static int handle_config(sl_registry_routes_t *routes, const char *method,
                         const char *subject, const char *body,
                         sl_registry_reply_t *reply)
{
    if (strcmp(method, "GET") == 0) {
        return get_config(routes, subject, reply);
    }
    if (strcmp(method, "PUT") == 0) {
        return put_config(routes, subject, body, reply);
    }
    if (strcmp(method, "DELETE") == 0) {
        return delete_config(routes, subject, reply);
    }
    return reply_error(reply, 405, 405, "Method not allowed");
}

/* ---- subjects and versions ---------------------------------------------- */

static int handle_subjects(sl_registry_routes_t *routes,
                           sl_registry_reply_t *reply)
{
    sl_store_schema_row_t *rows = NULL;
    size_t n = 0;
    json_t *list;
    int rc = sl_store_schema_list(routes->st, NULL, &rows, &n);

    if (rc != SL_OK) {
        return reply_store_error(reply, rc);
    }
    list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++) {
        /* Rows come ordered by subject, so equal names are adjacent. */
        if (i == 0 || strcmp(rows[i].subject, rows[i - 1].subject) != 0) {
            json_array_append_new(list, json_string(rows[i].subject));
        }
    }
    sl_store_schema_rows_free(rows, n);
    return reply_json(reply, 200, list);
}

/* Lists subject's rows; a subject without rows gets a 40401 reply.
 * Returns SL_OK with *n > 0, or SL_ENOTFOUND after writing the reply. */
static int subject_rows(sl_registry_routes_t *routes, const char *subject,
                        sl_store_schema_row_t **rows, size_t *n,
                        sl_registry_reply_t *reply, int *reply_rc)
{
    int rc = sl_store_schema_list(routes->st, subject, rows, n);

    if (rc != SL_OK) {
        *reply_rc = reply_store_error(reply, rc);
        return SL_ENOTFOUND;
    }
    if (*n == 0) {
        *reply_rc = reply_error(reply, 404, 40401, "Subject not found");
        return SL_ENOTFOUND;
    }
    return SL_OK;
}

/* Finds version text ("latest" or a positive number) among rows. Writes
 * the 422 or 404 reply and returns NULL when there is no such version. */
static const sl_store_schema_row_t *
find_version(const sl_store_schema_row_t *rows, size_t n, const char *version,
             sl_registry_reply_t *reply, int *reply_rc)
{
    char *end = NULL;
    long number;

    if (strcmp(version, "latest") == 0 || strcmp(version, "-1") == 0) {
        return &rows[n - 1];
    }
    number = strtol(version, &end, 10);
    if (end == version || *end != '\0' || number <= 0 || number > INT32_MAX) {
        *reply_rc = reply_error(reply, 422, 42202,
                                "The specified version is not a valid version "
                                "id; use a positive integer or \"latest\"");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (rows[i].version == number) {
            return &rows[i];
        }
    }
    *reply_rc = reply_error(reply, 404, 40402, "Version not found");
    return NULL;
}

static int handle_versions(sl_registry_routes_t *routes, const char *subject,
                           sl_registry_reply_t *reply)
{
    sl_store_schema_row_t *rows = NULL;
    size_t n = 0;
    json_t *list;
    int rc = SL_OK;

    if (subject_rows(routes, subject, &rows, &n, reply, &rc) != SL_OK) {
        return rc;
    }
    list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++) {
        json_array_append_new(list, json_integer(rows[i].version));
    }
    sl_store_schema_rows_free(rows, n);
    return reply_json(reply, 200, list);
}

static int handle_version(sl_registry_routes_t *routes, const char *subject,
                          const char *version, sl_registry_reply_t *reply)
{
    sl_store_schema_row_t *rows = NULL;
    const sl_store_schema_row_t *row;
    size_t n = 0;
    int rc = SL_OK;

    if (subject_rows(routes, subject, &rows, &n, reply, &rc) != SL_OK) {
        return rc;
    }
    row = find_version(rows, n, version, reply, &rc);
    if (row != NULL) {
        rc = reply_json(reply, 200,
                        json_pack("{s:s, s:i, s:i, s:s}", "subject",
                                  row->subject, "version", row->version, "id",
                                  row->id, "schema", row->schema));
    }
    sl_store_schema_rows_free(rows, n);
    return rc;
}

static int handle_schema_by_id(sl_registry_routes_t *routes,
                               const char *id_text, sl_registry_reply_t *reply)
{
    sl_store_schema_row_t row;
    char *end = NULL;
    long id = strtol(id_text, &end, 10);
    int rc = SL_OK;

    if (end == id_text || *end != '\0' || id <= 0 || id > INT32_MAX) {
        return reply_error(reply, 404, 40403, "Schema not found");
    }
    rc = sl_store_schema_get(routes->st, (int32_t)id, &row);
    if (rc == SL_ENOTFOUND) {
        return reply_error(reply, 404, 40403, "Schema not found");
    }
    if (rc != SL_OK) {
        return reply_store_error(reply, rc);
    }
    rc = reply_json(reply, 200, json_pack("{s:s}", "schema", row.schema));
    sl_store_schema_row_fini(&row);
    return rc;
}

/* ---- registration and compatibility ------------------------------------- */

/* Returns tree as compact JSON with sorted keys, the form schemas are
 * compared by (free()), or NULL when out of memory. */
static char *normalize_tree(const json_t *tree)
{
    return json_dumps(tree, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* Returns the normalized form of a stored schema text (free()), or NULL
 * when it is not JSON or memory ran out. */
static char *normalize_text(const char *json)
{
    json_t *tree = json_loads(json, JSON_DECODE_ANY, NULL);
    char *text = tree != NULL ? normalize_tree(tree) : NULL;

    json_decref(tree);
    return text;
}

/*
 * Takes the "schema" member of a request body and checks that it is an
 * Avro schema. OUT: *normalized, compact JSON with sorted keys (free()).
 * Writes a 422 reply and returns SL_EINVAL when it is not.
 */
static int parse_request_schema(const char *body, const char **schema,
                                json_t **req, char **normalized,
                                sl_registry_reply_t *reply, int *reply_rc)
{
    char message[MESSAGE_MAX];
    char reason[MESSAGE_MAX / 2] = "";
    avro_schema_t parsed = NULL;
    const char *type;
    json_t *tree;

    *req = body ? json_loads(body, 0, NULL) : NULL;
    *schema = json_string_value(json_object_get(*req, "schema"));
    type = json_string_value(json_object_get(*req, "schemaType"));
    if (*schema == NULL || (type != NULL && strcmp(type, "AVRO") != 0)) {
        *reply_rc = reply_error(reply, 422, 42201,
                                "Invalid schema: the body must be a JSON "
                                "object with a string \"schema\" (Avro only)");
        return SL_EINVAL;
    }
    tree = json_loads(*schema, JSON_DECODE_ANY, NULL);
    if (tree == NULL ||
        sl_avro__check_names(tree, reason, sizeof(reason)) != SL_OK ||
        avro_schema_from_json_length(*schema, strlen(*schema), &parsed) != 0) {
        snprintf(message, sizeof(message), "Invalid schema: %s",
                 tree == NULL        ? "not JSON"
                 : reason[0] != '\0' ? reason
                                     : avro_strerror());
        json_decref(tree);
        *reply_rc = reply_error(reply, 422, 42201, message);
        return SL_EINVAL;
    }
    avro_schema_decref(parsed);
    *normalized = normalize_tree(tree);
    json_decref(tree);
    if (*normalized == NULL) {
        *reply_rc = SL_ENOMEM;
        return SL_ENOMEM;
    }
    return SL_OK;
}

/* Returns the row of rows whose schema equals normalized, or NULL. */
static const sl_store_schema_row_t *
find_same_schema(const sl_store_schema_row_t *rows, size_t n,
                 const char *normalized)
{
    for (size_t i = 0; i < n; i++) {
        char *text = rows[i].normalized == NULL ? normalize_text(rows[i].schema)
                                                : rows[i].normalized;
        int same = text != NULL && strcmp(text, normalized) == 0;

        if (text != rows[i].normalized) {
            free(text);
        }
        if (same) {
            return &rows[i];
        }
    }
    return NULL;
}

/*
 * Stores the normalized text of rows registered before the store kept it,
 * so that the store finds them when it looks for an id to share. Runs at
 * every registration, because a process of an older version sharing the
 * database adds rows without it; afterwards it is one query.
 */
static int fill_normalized(sl_registry_routes_t *routes)
{
    sl_store_schema_row_t *rows = NULL;
    size_t n = 0;
    int rc = sl_store_schema_list(routes->st, NULL, &rows, &n);

    for (size_t i = 0; rc == SL_OK && i < n; i++) {
        char *text;

        if (rows[i].normalized != NULL) {
            continue;
        }
        text = normalize_text(rows[i].schema);
        if (text == NULL) {
            /* Stored rows were checked when registered; skip a bad one. */
            sl_log_warn(LOG_COMPONENT,
                        "stored schema is not JSON subject=%s version=%d",
                        rows[i].subject, (int)rows[i].version);
            continue;
        }
        rc = sl_store_schema_set_normalized(routes->st, rows[i].subject,
                                            rows[i].version, text);
        free(text);
    }
    sl_store_schema_rows_free(rows, n);
    return rc;
}

/* Checks schema against rows[0..n) at level. Returns SL_OK, SL_EREJECTED
 * (reason in err) or another code. */
static int check_rows(sl_compat_level_t level, const char *schema,
                      const sl_store_schema_row_t *rows, size_t n, char *err,
                      size_t err_size)
{
    const char **texts = calloc(n + 1, sizeof(*texts));
    int rc = SL_OK;

    if (texts == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        texts[i] = rows[i].schema;
    }
    rc = sl_schema_compat_check(level, schema, texts, n, err, err_size);
    free(texts);
    return rc;
}

/* Checks a schema new to subject against the subject's rows at its level
 * and stores it. Writes the reply; returns SL_OK or SL_ENOMEM. */
static int register_new(sl_registry_routes_t *routes, const char *subject,
                        const char *schema, const char *normalized,
                        const sl_store_schema_row_t *rows, size_t n,
                        sl_registry_reply_t *reply)
{
    char reason[MESSAGE_MAX / 2];
    char message[MESSAGE_MAX];
    sl_compat_level_t level;
    int32_t id;
    int32_t version;
    int rc = effective_level(routes, subject, &level);

    if (rc != SL_OK) {
        return reply_store_error(reply, rc);
    }
    rc = check_rows(level, schema, rows, n, reason, sizeof(reason));
    if (rc == SL_EREJECTED || rc == SL_EINVAL) {
        snprintf(message, sizeof(message),
                 "Schema being registered is incompatible with an earlier "
                 "schema for subject \"%s\" (%s): %s",
                 subject, sl_compat_level_name(level), reason);
        return reply_error(reply, 409, 409, message);
    }
    if (rc != SL_OK) {
        return rc;
    }

    /* The store gives the schema the id it has under other subjects. */
    rc = fill_normalized(routes);
    if (rc == SL_OK) {
        rc = sl_store_schema_insert(routes->st, subject, schema, normalized,
                                    sl_time_now_ms(), &id, &version);
    }
    if (rc != SL_OK) {
        return reply_store_error(reply, rc);
    }
    sl_log_info(LOG_COMPONENT, "registered schema subject=%s version=%d id=%d",
                subject, (int)version, (int)id);
    return reply_json(reply, 200, json_pack("{s:i}", "id", id));
}

static int handle_register(sl_registry_routes_t *routes, const char *subject,
                           const char *body, sl_registry_reply_t *reply)
{
    sl_store_schema_row_t *rows = NULL;
    const sl_store_schema_row_t *same;
    const char *schema;
    json_t *req = NULL;
    char *normalized = NULL;
    size_t n = 0;
    int rc = SL_OK;

    if (parse_request_schema(body, &schema, &req, &normalized, reply, &rc) !=
        SL_OK) {
        json_decref(req);
        return rc;
    }
    rc = sl_store_schema_list(routes->st, subject, &rows, &n);
    if (rc != SL_OK) {
        rc = reply_store_error(reply, rc);
    } else if ((same = find_same_schema(rows, n, normalized)) != NULL) {
        rc = reply_json(reply, 200, json_pack("{s:i}", "id", same->id));
    } else {
        rc = register_new(routes, subject, schema, normalized, rows, n, reply);
    }
    sl_store_schema_rows_free(rows, n);
    free(normalized);
    json_decref(req);
    return rc;
}

static int handle_check(sl_registry_routes_t *routes, const char *subject,
                        const char *version, const char *body,
                        sl_registry_reply_t *reply)
{
    char reason[MESSAGE_MAX];
    sl_store_schema_row_t *rows = NULL;
    const sl_store_schema_row_t *row;
    const char *schema;
    json_t *req = NULL;
    char *normalized = NULL;
    sl_compat_level_t level;
    size_t n = 0;
    size_t upto;
    int rc = SL_OK;

    if (parse_request_schema(body, &schema, &req, &normalized, reply, &rc) !=
        SL_OK) {
        json_decref(req);
        return rc;
    }
    if (subject_rows(routes, subject, &rows, &n, reply, &rc) != SL_OK) {
        goto out;
    }
    row = find_version(rows, n, version, reply, &rc);
    if (row == NULL) {
        goto out;
    }
    rc = effective_level(routes, subject, &level);
    if (rc != SL_OK) {
        rc = reply_store_error(reply, rc);
        goto out;
    }

    /* A transitive level checks every version up to the named one; the
     * others check the named version alone. */
    upto = (size_t)(row - rows) + 1;
    if (level == SL_COMPAT_BACKWARD_TRANSITIVE ||
        level == SL_COMPAT_FORWARD_TRANSITIVE ||
        level == SL_COMPAT_FULL_TRANSITIVE) {
        rc = check_rows(level, schema, rows, upto, reason, sizeof(reason));
    } else {
        rc = check_rows(level, schema, row, 1, reason, sizeof(reason));
    }
    if (rc == SL_OK) {
        rc = reply_json(
            reply, 200,
            json_pack("{s:b, s:[]}", "is_compatible", 1, "messages"));
    } else if (rc == SL_EREJECTED || rc == SL_EINVAL) {
        rc = reply_json(
            reply, 200,
            json_pack("{s:b, s:[s]}", "is_compatible", 0, "messages", reason));
    }
out:
    sl_store_schema_rows_free(rows, n);
    free(normalized);
    json_decref(req);
    return rc;
}

/* ---- dispatch ------------------------------------------------------------ */

/* Serves the paths below /subjects/{subject}. */
static int route_subject(sl_registry_routes_t *routes, const char *method,
                         const char *subject, const char *rest,
                         const char *body, sl_registry_reply_t *reply)
{
    if (strcmp(rest, "/versions") == 0 || strcmp(rest, "/versions/") == 0) {
        if (strcmp(method, "GET") == 0) {
            return handle_versions(routes, subject, reply);
        }
        if (strcmp(method, "POST") == 0) {
            return handle_register(routes, subject, body, reply);
        }
        return reply_error(reply, 405, 405, "Method not allowed");
    }
    if (strncmp(rest, "/versions/", 10) == 0 &&
        strchr(rest + 10, '/') == NULL) {
        if (strcmp(method, "GET") == 0) {
            return handle_version(routes, subject, rest + 10, reply);
        }
        return reply_error(reply, 405, 405, "Method not allowed");
    }
    return reply_error(reply, 404, 404, "Not found");
}

int sl_registry__route(sl_registry_routes_t *routes, const char *method,
                       const char *path, const char *body,
                       sl_registry_reply_t *reply)
{
    char subject[SUBJECT_MAX + 1];
    const char *rest = NULL;

    memset(reply, 0, sizeof(*reply));
    if (strcmp(path, "/subjects") == 0 || strcmp(path, "/subjects/") == 0) {
        if (strcmp(method, "GET") != 0) {
            return reply_error(reply, 405, 405, "Method not allowed");
        }
        return handle_subjects(routes, reply);
    }
    if (strncmp(path, "/schemas/ids/", 13) == 0) {
        if (strcmp(method, "GET") != 0) {
            return reply_error(reply, 405, 405, "Method not allowed");
        }
        return handle_schema_by_id(routes, path + 13, reply);
    }
    if (strcmp(path, "/config") == 0) {
        return handle_config(routes, method, NULL, body, reply);
    }
    if (strncmp(path, "/config/", 8) == 0) {
        if (decode_segment(path + 8, subject, sizeof(subject), &rest) !=
                SL_OK ||
            *rest != '\0') {
            return reply_error(reply, 404, 404, "Not found");
        }
        return handle_config(routes, method, subject, body, reply);
    }
    if (strncmp(path, "/subjects/", 10) == 0) {
        if (decode_segment(path + 10, subject, sizeof(subject), &rest) !=
            SL_OK) {
            return reply_error(reply, 404, 40401, "Subject not found");
        }
        return route_subject(routes, method, subject, rest, body, reply);
    }
    if (strncmp(path, "/compatibility/subjects/", 24) == 0) {
        if (decode_segment(path + 24, subject, sizeof(subject), &rest) !=
                SL_OK ||
            strncmp(rest, "/versions/", 10) != 0 ||
            strchr(rest + 10, '/') != NULL) {
            return reply_error(reply, 404, 404, "Not found");
        }
        if (strcmp(method, "POST") != 0) {
            return reply_error(reply, 405, 405, "Method not allowed");
        }
        return handle_check(routes, subject, rest + 10, body, reply);
    }
    return reply_error(reply, 404, 404, "Not found");
}
