/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A client of the Confluent Schema Registry REST API (libcurl + jansson),
 * used by producers to register their schemas and by decoders to fetch
 * writer schemas by id in distributed mode. Requests and replies use the
 * content type application/vnd.schemaregistry.v1+json. Failed requests
 * are reported with the HTTP status and the registry's error_code and
 * message, e.g. "HTTP 404, error_code 40403: Schema not found".
 *
 * One easy handle is reused, so consecutive requests share a kept-alive
 * connection; a mutex serialises requests. Fetched schema texts are kept
 * by id for the life of the client, because a schema id never changes
 * meaning.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "schema/schema.h"
#include "util/err.h"
#include "util/log.h"

#define CONTENT_TYPE "application/vnd.schemaregistry.v1+json"

/* Room for base URL plus one path built from escaped names. */
#define URL_MAX 2048

typedef struct cached_schema {
    int32_t id;
    char *json;
} cached_schema_t;

struct sl_registry_client {
    pthread_mutex_t lock;
    CURL *curl;
    struct curl_slist *headers;
    char *base_url; /* without a trailing slash */
    long timeout_ms;
    cached_schema_t *cache;
    size_t cache_count;
};

/* A reply body, capped at SL_REGISTRY_REPLY_MAX_BYTES. */
typedef struct reply {
    char *data;
    size_t len;
    int overflow;
} reply_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_OK;

static void curl_init_once(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t write_reply(char *ptr, size_t size, size_t nmemb, void *user)
{
    reply_t *r = user;
    size_t n = size * nmemb;
    char *grown;

    if (r->len + n > SL_REGISTRY_REPLY_MAX_BYTES) {
        r->overflow = 1;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    grown = realloc(r->data, r->len + n + 1);
    if (grown == NULL) {
        return 0;
    }
    memcpy(grown + r->len, ptr, n);
    r->data = grown;
    r->len += n;
    r->data[r->len] = '\0';
    return n;
}

sl_registry_client_t *sl_registry_client_create(const char *base_url,
                                                long timeout_ms, char *err,
                                                size_t err_size)
{
    sl_registry_client_t *client;
    size_t len;

    if (base_url == NULL || (strncmp(base_url, "http://", 7) != 0 &&
                             strncmp(base_url, "https://", 8) != 0)) {
        snprintf(err, err_size,
                 "registry URL '%s' is invalid: expected http://host:port",
                 base_url ? base_url : "(null)");
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK) {
        snprintf(err, err_size, "curl_global_init failed: %s",
                 curl_easy_strerror(curl_init_result));
        return NULL;
    }
    client = calloc(1, sizeof(*client));
    if (client == NULL || pthread_mutex_init(&client->lock, NULL) != 0) {
        free(client);
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    client->timeout_ms =
        timeout_ms > 0 ? timeout_ms : SL_REGISTRY_TIMEOUT_MS_DEFAULT;
    client->base_url = strdup(base_url);
    client->curl = curl_easy_init();
    client->headers = curl_slist_append(NULL, "Content-Type: " CONTENT_TYPE);
    if (client->headers != NULL) {
        struct curl_slist *more =
            curl_slist_append(client->headers, "Accept: " CONTENT_TYPE);

        client->headers = more != NULL ? more : client->headers;
    }
    if (client->base_url == NULL || client->curl == NULL ||
        client->headers == NULL) {
        sl_registry_client_destroy(client);
        snprintf(err, err_size, "out of memory or curl_easy_init failed");
        return NULL;
    }
    len = strlen(client->base_url);
    while (len > 0 && client->base_url[len - 1] == '/') {
        client->base_url[--len] = '\0';
    }
    return client;
}

void sl_registry_client_destroy(sl_registry_client_t *client)
{
    if (client == NULL) {
        return;
    }
    for (size_t i = 0; i < client->cache_count; i++) {
        free(client->cache[i].json);
    }
    free(client->cache);
    curl_slist_free_all(client->headers);
    if (client->curl != NULL) {
        curl_easy_cleanup(client->curl);
    }
    free(client->base_url);
    pthread_mutex_destroy(&client->lock);
    free(client);
}

const char *sl_registry_client_url(const sl_registry_client_t *client)
{
    return client->base_url;
}

/* Maps an HTTP status to a status code of util/err.h. */
static int status_to_err(long status)
{
    if (status == 404) {
        return SL_ENOTFOUND;
    }
    if (status == 409) {
        return SL_EREJECTED;
    }
    if (status >= 400 && status < 500) {
        return SL_EINVAL;
    }
    return SL_EIO;
}

/* Writes "METHOD URL: HTTP status, error_code n: message" into err, with
 * the registry's error object when the body holds one. */
static void format_http_error(const char *method, const char *url, long status,
                              const reply_t *r, char *err, size_t err_size)
{
    json_t *body = r->data ? json_loads(r->data, 0, NULL) : NULL;
    json_t *code = json_object_get(body, "error_code");
    const char *message = json_string_value(json_object_get(body, "message"));

    if (json_is_integer(code) && message != NULL) {
        snprintf(err, err_size, "%s %s: HTTP %ld, error_code %lld: %s", method,
                 url, status, (long long)json_integer_value(code), message);
    } else {
        snprintf(err, err_size,
                 "%s %s: HTTP %ld without a registry error object", method, url,
                 status);
    }
    json_decref(body);
}

/*
 * Sends one request (body may be NULL for GET) and parses the reply as
 * JSON. The caller holds client->lock. OUT: *reply_json, a new reference
 * on SL_OK. Returns SL_OK for a 2xx reply with JSON, else the code of
 * status_to_err, SL_ETIMEDOUT or SL_EIO, the reason in err.
 */
static int request(sl_registry_client_t *client, const char *method,
                   const char *path, const char *body, json_t **reply_json,
                   char *err, size_t err_size)
{
    char url[URL_MAX];
    reply_t r = {0};
    long status = 0;
    json_error_t jerr;
    CURLcode cc;
    CURL *c = client->curl;
    int rc = SL_OK;

    snprintf(url, sizeof(url), "%s%s", client->base_url, path);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, client->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, client->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, client->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_reply);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }

    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        snprintf(err, err_size, "%s %s: %s", method, url,
                 r.overflow ? "reply larger than the limit"
                            : curl_easy_strerror(cc));
        free(r.data);
        return cc == CURLE_OPERATION_TIMEDOUT ? SL_ETIMEDOUT : SL_EIO;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) {
        format_http_error(method, url, status, &r, err, err_size);
        free(r.data);
        return status_to_err(status);
    }

    *reply_json = json_loads(r.data ? r.data : "", JSON_DECODE_ANY, &jerr);
    if (*reply_json == NULL) {
        snprintf(err, err_size,
                 "%s %s: HTTP %ld with a body that is not JSON: %s", method,
                 url, status, jerr.text);
        rc = SL_EIO;
    }
    free(r.data);
    return rc;
}

/* Builds "/<prefix>/<escaped subject><suffix>" into out. */
static int subject_path(sl_registry_client_t *client, const char *prefix,
                        const char *subject, const char *suffix, char *out,
                        size_t out_size)
{
    char *escaped = curl_easy_escape(client->curl, subject, 0);
    int n;

    if (escaped == NULL) {
        return SL_ENOMEM;
    }
    n = snprintf(out, out_size, "%s%s%s", prefix, escaped, suffix);
    curl_free(escaped);
    return n > 0 && (size_t)n < out_size ? SL_OK : SL_EINVAL;
}

/* Returns a new {"schema": text} request body, or NULL. */
static char *schema_body(const char *schema_json)
{
    json_t *obj = json_pack("{s:s}", "schema", schema_json);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

    json_decref(obj);
    return text;
}

/* Reports a 2xx reply that lacks the expected member. */
static int malformed(const char *what, char *err, size_t err_size)
{
    snprintf(err, err_size, "registry reply is malformed: %s", what);
    return SL_EIO;
}

int sl_registry_client_register(sl_registry_client_t *client,
                                const char *subject, const char *schema_json,
                                int32_t *id, char *err, size_t err_size)
{
    char path[URL_MAX];
    json_t *reply = NULL;
    json_t *id_json;
    char *body;
    int rc;

    if (client == NULL || subject == NULL || schema_json == NULL ||
        id == NULL) {
        return SL_EINVAL;
    }
    body = schema_body(schema_json);
    if (body == NULL) {
        return SL_ENOMEM;
    }
    pthread_mutex_lock(&client->lock);
    rc = subject_path(client, "/subjects/", subject, "/versions", path,
                      sizeof(path));
    if (rc == SL_OK) {
        rc = request(client, "POST", path, body, &reply, err, err_size);
    }
    pthread_mutex_unlock(&client->lock);
    free(body);
    if (rc != SL_OK) {
        return rc;
    }
    id_json = json_object_get(reply, "id");
    if (!json_is_integer(id_json) || json_integer_value(id_json) <= 0 ||
        json_integer_value(id_json) > INT32_MAX) {
        rc = malformed("no positive integer \"id\" in the register reply", err,
                       err_size);
    } else {
        *id = (int32_t)json_integer_value(id_json);
    }
    json_decref(reply);
    return rc;
}

static const char *cache_find(sl_registry_client_t *client, int32_t id)
{
    for (size_t i = 0; i < client->cache_count; i++) {
        if (client->cache[i].id == id) {
            return client->cache[i].json;
        }
    }
    return NULL;
}

static int cache_add(sl_registry_client_t *client, int32_t id, const char *json)
{
    cached_schema_t *grown = realloc(client->cache, (client->cache_count + 1) *
                                                        sizeof(*client->cache));
    char *copy = strdup(json);

    if (grown != NULL) {
        client->cache = grown;
    }
    if (grown == NULL || copy == NULL) {
        free(copy);
        return SL_ENOMEM;
    }
    client->cache[client->cache_count++] = (cached_schema_t){id, copy};
    /* The cache owns copy now; sl_registry_client_destroy frees it. */
    // cppcheck-suppress memleak
    return SL_OK;
}

/* Fetches id into the cache. The caller holds client->lock. */
static int fetch_schema(sl_registry_client_t *client, int32_t id, char *err,
                        size_t err_size)
{
    char path[64];
    json_t *reply = NULL;
    const char *text;
    int rc;

    snprintf(path, sizeof(path), "/schemas/ids/%d", (int)id);
    rc = request(client, "GET", path, NULL, &reply, err, err_size);
    if (rc != SL_OK) {
        return rc;
    }
    text = json_string_value(json_object_get(reply, "schema"));
    if (text == NULL) {
        rc = malformed("no string \"schema\" in the schema reply", err,
                       err_size);
    } else {
        rc = cache_add(client, id, text);
    }
    json_decref(reply);
    return rc;
}

int sl_registry_client_schema(sl_registry_client_t *client, int32_t id,
                              char **schema_json, char *err, size_t err_size)
{
    const char *text;
    int rc = SL_OK;

    if (client == NULL || schema_json == NULL) {
        return SL_EINVAL;
    }
    pthread_mutex_lock(&client->lock);
    text = cache_find(client, id);
    if (text == NULL) {
        rc = fetch_schema(client, id, err, err_size);
        text = rc == SL_OK ? cache_find(client, id) : NULL;
    }
    *schema_json = text != NULL ? strdup(text) : NULL;
    pthread_mutex_unlock(&client->lock);
    if (rc == SL_OK && *schema_json == NULL) {
        rc = SL_ENOMEM;
    }
    return rc;
}

int sl_registry_client_versions(sl_registry_client_t *client,
                                const char *subject, int32_t **versions,
                                size_t *n, char *err, size_t err_size)
{
    char path[URL_MAX];
    json_t *reply = NULL;
    json_t *item;
    size_t i;
    int rc;

    if (client == NULL || subject == NULL || versions == NULL || n == NULL) {
        return SL_EINVAL;
    }
    pthread_mutex_lock(&client->lock);
    rc = subject_path(client, "/subjects/", subject, "/versions", path,
                      sizeof(path));
    if (rc == SL_OK) {
        rc = request(client, "GET", path, NULL, &reply, err, err_size);
    }
    pthread_mutex_unlock(&client->lock);
    if (rc != SL_OK) {
        return rc;
    }
    if (!json_is_array(reply)) {
        json_decref(reply);
        return malformed("the version list is not an array", err, err_size);
    }
    *n = json_array_size(reply);
    *versions = calloc(*n + 1, sizeof(**versions));
    if (*versions == NULL) {
        json_decref(reply);
        return SL_ENOMEM;
    }
    json_array_foreach(reply, i, item)
    {
        if (!json_is_integer(item)) {
            free(*versions);
            *versions = NULL;
            json_decref(reply);
            return malformed("a version is not an integer", err, err_size);
        }
        (*versions)[i] = (int32_t)json_integer_value(item);
    }
    json_decref(reply);
    return SL_OK;
}

/* Joins the strings of a "messages" array into err. */
static void copy_messages(json_t *messages, char *err, size_t err_size)
{
    size_t used = 0;
    size_t i;
    json_t *item;

    if (err_size == 0) {
        return;
    }
    err[0] = '\0';
    json_array_foreach(messages, i, item)
    {
        const char *text = json_string_value(item);
        int n;

        if (text == NULL || used >= err_size) {
            continue;
        }
        n = snprintf(err + used, err_size - used, "%s%s", used ? "; " : "",
                     text);
        used += n > 0 ? (size_t)n : 0;
    }
    if (err[0] == '\0') {
        snprintf(err, err_size, "the registry gave no reason");
    }
}

int sl_registry_client_check(sl_registry_client_t *client, const char *subject,
                             const char *version, const char *schema_json,
                             bool *compatible, char *err, size_t err_size)
{
    char path[URL_MAX];
    char suffix[64];
    json_t *reply = NULL;
    json_t *flag;
    char *body;
    int rc;

    if (client == NULL || subject == NULL || schema_json == NULL ||
        compatible == NULL) {
        return SL_EINVAL;
    }
    snprintf(suffix, sizeof(suffix), "/versions/%s?verbose=true",
             version != NULL ? version : "latest");
    body = schema_body(schema_json);
    if (body == NULL) {
        return SL_ENOMEM;
    }
    pthread_mutex_lock(&client->lock);
    rc = subject_path(client, "/compatibility/subjects/", subject, suffix, path,
                      sizeof(path));
    if (rc == SL_OK) {
        rc = request(client, "POST", path, body, &reply, err, err_size);
    }
    pthread_mutex_unlock(&client->lock);
    free(body);
    if (rc != SL_OK) {
        return rc;
    }
    flag = json_object_get(reply, "is_compatible");
    if (!json_is_boolean(flag)) {
        rc = malformed("no boolean \"is_compatible\" in the reply", err,
                       err_size);
    } else {
        *compatible = json_is_true(flag);
        if (!*compatible) {
            copy_messages(json_object_get(reply, "messages"), err, err_size);
        }
    }
    json_decref(reply);
    return rc;
}

int sl_registry_client_set_level(sl_registry_client_t *client,
                                 const char *subject, const char *level,
                                 char *err, size_t err_size)
{
    char path[URL_MAX] = "/config";
    json_t *obj;
    json_t *reply = NULL;
    char *body;
    int rc = SL_OK;

    if (client == NULL || level == NULL) {
        return SL_EINVAL;
    }
    obj = json_pack("{s:s}", "compatibility", level);
    body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (body == NULL) {
        return SL_ENOMEM;
    }
    pthread_mutex_lock(&client->lock);
    if (subject != NULL) {
        rc = subject_path(client, "/config/", subject, "", path, sizeof(path));
    }
    if (rc == SL_OK) {
        rc = request(client, "PUT", path, body, &reply, err, err_size);
    }
    pthread_mutex_unlock(&client->lock);
    free(body);
    json_decref(reply);
    return rc;
}
