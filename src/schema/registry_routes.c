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
 * to one of the subject's versions returns that version's id.
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

static sl_compat_level_t level_of(const sl_registry_routes_t *routes,
                                  const char *subject)
{
    for (size_t i = 0; subject != NULL && i < routes->level_count; i++) {
        if (strcmp(routes->level_subjects[i], subject) == 0) {
            return routes->subject_levels[i];
        }
    }
    return routes->level;
}

static int set_subject_level(sl_registry_routes_t *routes, const char *subject,
                             sl_compat_level_t level)
{
    char **names;
    sl_compat_level_t *levels;
    size_t n = routes->level_count;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(routes->level_subjects[i], subject) == 0) {
            routes->subject_levels[i] = level;
            return SL_OK;
        }
    }
    names = realloc(routes->level_subjects, (n + 1) * sizeof(*names));
    if (names == NULL) {
        return SL_ENOMEM;
    }
    routes->level_subjects = names;
    levels = realloc(routes->subject_levels, (n + 1) * sizeof(*levels));
    if (levels == NULL) {
        return SL_ENOMEM;
    }
    routes->subject_levels = levels;
    names[n] = strdup(subject);
    if (names[n] == NULL) {
        return SL_ENOMEM;
    }
    levels[n] = level;
    routes->level_count++;
    return SL_OK;
}

void sl_registry__routes_fini(sl_registry_routes_t *routes)
{
    for (size_t i = 0; i < routes->level_count; i++) {
        free(routes->level_subjects[i]);
    }
    free(routes->level_subjects);
    free(routes->subject_levels);
    routes->level_subjects = NULL;
    routes->subject_levels = NULL;
    routes->level_count = 0;
}

/* GET or PUT /config and /config/{subject}. */
static int handle_config(sl_registry_routes_t *routes, const char *method,
                         const char *subject, const char *body,
                         sl_registry_reply_t *reply)
{
    json_t *req;
    const char *name;
    sl_compat_level_t level;
    int rc = SL_OK;

    if (strcmp(method, "GET") == 0) {
        /* XXX: a subject without its own level reports the global one, as
         * Confluent's defaultToGlobal=true does; no 40408 is returned. */
        return reply_json(
            reply, 200,
            json_pack("{s:s}", "compatibilityLevel",
                      sl_compat_level_name(level_of(routes, subject))));
    }
    if (strcmp(method, "PUT") != 0) {
        return reply_error(reply, 405, 405, "Method not allowed");
    }
    req = body ? json_loads(body, 0, NULL) : NULL;
    name = json_string_value(json_object_get(req, "compatibility"));
    if (sl_compat_level_parse(name, &level) != SL_OK) {
        json_decref(req);
        return reply_error(reply, 422, 42203, "Invalid compatibility level");
    }
    json_decref(req);

    /* XXX: levels live in memory only: the schemas table has no column for
     * them, so a restarted server is back at BACKWARD. */
    if (subject == NULL) {
        routes->level = level;
    } else {
        rc = set_subject_level(routes, subject, level);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return reply_json(
        reply, 200,
        json_pack("{s:s}", "compatibility", sl_compat_level_name(level)));
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
        avro_schema_from_json_length(*schema, strlen(*schema), &parsed) != 0) {
        snprintf(message, sizeof(message), "Invalid schema: %s",
                 tree == NULL ? "not JSON" : avro_strerror());
        json_decref(tree);
        *reply_rc = reply_error(reply, 422, 42201, message);
        return SL_EINVAL;
    }
    avro_schema_decref(parsed);
    *normalized =
        json_dumps(tree, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
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
        json_t *tree = json_loads(rows[i].schema, JSON_DECODE_ANY, NULL);
        char *text = tree ? json_dumps(tree, JSON_COMPACT | JSON_SORT_KEYS |
                                                 JSON_ENCODE_ANY)
                          : NULL;
        int same = text != NULL && strcmp(text, normalized) == 0;

        free(text);
        json_decref(tree);
        if (same) {
            return &rows[i];
        }
    }
    return NULL;
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

static int handle_register(sl_registry_routes_t *routes, const char *subject,
                           const char *body, sl_registry_reply_t *reply)
{
    char reason[MESSAGE_MAX / 2];
    char message[MESSAGE_MAX];
    sl_store_schema_row_t *rows = NULL;
    const sl_store_schema_row_t *same;
    const char *schema;
    json_t *req = NULL;
    char *normalized = NULL;
    size_t n = 0;
    int32_t id;
    int32_t version;
    int rc = SL_OK;

    if (parse_request_schema(body, &schema, &req, &normalized, reply, &rc) !=
        SL_OK) {
        json_decref(req);
        return rc;
    }
    rc = sl_store_schema_list(routes->st, subject, &rows, &n);
    if (rc != SL_OK) {
        rc = reply_store_error(reply, rc);
        goto out;
    }
    same = find_same_schema(rows, n, normalized);
    if (same != NULL) {
        rc = reply_json(reply, 200, json_pack("{s:i}", "id", same->id));
        goto out;
    }

    rc = check_rows(level_of(routes, subject), schema, rows, n, reason,
                    sizeof(reason));
    if (rc == SL_EREJECTED || rc == SL_EINVAL) {
        snprintf(message, sizeof(message),
                 "Schema being registered is incompatible with an earlier "
                 "schema for subject \"%s\" (%s): %s",
                 subject, sl_compat_level_name(level_of(routes, subject)),
                 reason);
        rc = reply_error(reply, 409, 409, message);
        goto out;
    }
    if (rc != SL_OK) {
        goto out;
    }

    /* XXX: the schemas table makes id UNIQUE, so one schema registered
     * under two subjects gets two ids here; Confluent would reuse the id. */
    rc = sl_store_schema_insert(routes->st, subject, schema, sl_time_now_ms(),
                                &id, &version);
    if (rc != SL_OK) {
        rc = reply_store_error(reply, rc);
        goto out;
    }
    sl_log_info(LOG_COMPONENT, "registered schema subject=%s version=%d id=%d",
                subject, (int)version, (int)id);
    rc = reply_json(reply, 200, json_pack("{s:i}", "id", id));
out:
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
    sl_compat_level_t level = level_of(routes, subject);
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
