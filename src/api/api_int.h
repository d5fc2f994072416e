/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals shared by the files of the API module: the query-string parser
 * (query.c), the route dispatcher (routes.c) and the libwebsockets server
 * (server.c). Nothing outside src/api/ and its tests includes this header.
 */
#ifndef SLUICE_API_API_INT_H
#define SLUICE_API_API_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api/api.h"
#include "pipeline/publish.h"

/* The version from project(VERSION) in the top-level CMakeLists.txt. */
#define SL_API_VERSION SLUICE_VERSION

/* Longest "detail" message the API produces, in bytes. */
#define SL_API_DETAIL_MAX 512

/* Route templates: the bounded values of the "route" metric label. */
typedef enum sl_api_route {
    SL_API_ROUTE_HEALTH = 0,           /* GET / */
    SL_API_ROUTE_LATEST = 1,           /* GET /api/v1/sensors/latest */
    SL_API_ROUTE_STATS = 2,            /* GET /api/v1/sensors/stats */
    SL_API_ROUTE_ANOMALIES = 3,        /* GET /api/v1/sensors/anomalies */
    SL_API_ROUTE_METRICS = 4,          /* GET /metrics */
    SL_API_ROUTE_DLQ_LIST = 5,         /* GET /api/v1/dlq */
    SL_API_ROUTE_DLQ_ENTRY = 6,        /* GET /api/v1/dlq/{id} */
    SL_API_ROUTE_DLQ_REPLAY = 7,       /* POST /api/v1/dlq/{id}/replay */
    SL_API_ROUTE_ALERTS = 8,           /* GET /api/v1/alerts */
    SL_API_ROUTE_ALERT_ACK = 9,        /* POST /api/v1/alerts/{id}/ack */
    SL_API_ROUTE_ECOM_STATS = 10,      /* GET /api/v1/ecommerce/stats */
    SL_API_ROUTE_ECOM_LATEST = 11,     /* GET /api/v1/ecommerce/events/latest */
    SL_API_ROUTE_HISTORY = 12,         /* GET /api/v1/sensors/{id}/history */
    SL_API_ROUTE_INGEST_READINGS = 13, /* POST /api/v1/sensors/readings */
    SL_API_ROUTE_INGEST_EVENTS = 14,   /* POST /api/v1/ecommerce/events */
    SL_API_ROUTE_STATIC = 15,          /* GET /openapi.json, /docs, ... */
    SL_API_ROUTE_UNMATCHED = 16,       /* any path no route serves */
    SL_API_ROUTE_COUNT = 17,
} sl_api_route_t;

/** Returns the methods a route serves, for the Allow header of a 405. */
const char *sl_api__route_allow(sl_api_route_t route);

/** Returns the label value of a route ("/api/v1/sensors/latest", ...). */
const char *sl_api__route_label(sl_api_route_t route);

/* What the routes use besides the request. Owned by the server and used
 * on its service thread only. */
typedef struct sl_api_env {
    sl_store_t *st;          /* NULL: store routes return 503 */
    sl_publisher_t *pub;     /* NULL: ingest returns 503 */
    const char *token;       /* NULL or "": writes need no token */
    size_t max_body_bytes;   /* 0: no cap (the server enforces its own) */
    const char *bus_missing; /* why pub is NULL, for the 503 detail */
} sl_api_env_t;

/* One request as the server read it. */
typedef struct sl_api_request {
    const char *method;
    const char *path;  /* decoded, without the query string */
    const char *query; /* raw text after '?', or NULL */
    const char *body;  /* NULL when there is none */
    size_t body_len;
    const char *authorization; /* Authorization header, or NULL */
} sl_api_request_t;

/**
 * Handles one request with everything env offers: routes, bearer token
 * check of write routes (401), ingest. OUT: *resp, *route (may be NULL).
 * Returns SL_OK, or SL_ENOMEM with resp->body NULL.
 */
int sl_api__dispatch_request(const sl_api_env_t *env,
                             const sl_api_request_t *req,
                             sl_api_response_t *resp, sl_api_route_t *route);

/**
 * Handles one request as sl_api_handle() does and also reports which route
 * template served it. OUT: *resp, *route (may be NULL).
 * Returns SL_OK, or SL_ENOMEM with resp->body NULL.
 */
int sl_api__dispatch(sl_store_t *st, const char *method, const char *path,
                     const char *query, sl_api_response_t *resp,
                     sl_api_route_t *route);

/* A route's view of one request, filled by the dispatcher. */
typedef struct sl_api_call {
    const sl_api_env_t *env;
    sl_store_t *st;
    int64_t id;           /* the {id} of a path template, or 0 */
    const char *path_arg; /* the {sensor_id} of a path template, or NULL */
    const struct sl_api_query *query;
    const sl_api_request_t *req;
    sl_api_response_t *resp;
    char detail[SL_API_DETAIL_MAX]; /* a 422 message, filled by readers */
} sl_api_call_t;

/* Handlers of the route files; each fills call->resp.
 * Return SL_OK or SL_ENOMEM. */
int sl_api__handle_alerts(sl_api_call_t *call);
int sl_api__handle_alert_ack(sl_api_call_t *call);
int sl_api__handle_ecom_stats(sl_api_call_t *call);
int sl_api__handle_ecom_latest(sl_api_call_t *call);
int sl_api__handle_history(sl_api_call_t *call);
int sl_api__handle_ingest_readings(sl_api_call_t *call);
int sl_api__handle_ingest_events(sl_api_call_t *call);

/* Allowed query parameters of those handlers (NULL-terminated). */
extern const char *const sl_api__alerts_params[];
extern const char *const sl_api__ecom_stats_params[];
extern const char *const sl_api__ecom_latest_params[];
extern const char *const sl_api__history_params[];

/**
 * Finds an embedded static file (openapi.json, the docs page, the
 * dashboard and its scripts) by request path. OUT: *data, *len, *type.
 * Returns true when one exists.
 */
bool sl_api__static_find(const char *path, const char **data, size_t *len,
                         const char **content_type);

/* Responders shared by the route files. Each takes over nothing but root
 * and returns SL_OK or SL_ENOMEM. */
int sl_api__respond_json(sl_api_response_t *resp, int status, json_t *root);
int sl_api__respond_detail(sl_api_response_t *resp, int status,
                           const char *detail);
int sl_api__respond_store_error(sl_api_response_t *resp, const char *operation);
int sl_api__respond_invalid(sl_api_call_t *call);

/**
 * Reads from and to; when both are given, from must be before to.
 * Returns SL_OK, or SL_EINVAL with the message in call->detail.
 */
int sl_api__read_range(sl_api_call_t *call, int64_t *from_ms, bool *has_from,
                       int64_t *to_ms, bool *has_to);

/* One decoded name=value pair of a query string. Both strings are
 * NUL-terminated, valid UTF-8 and free of NUL bytes. */
typedef struct sl_api_param {
    char *name;
    char *value;
} sl_api_param_t;

/* A parsed query string; owns every string in params. */
typedef struct sl_api_query {
    sl_api_param_t *params;
    size_t count;
} sl_api_query_t;

/**
 * Splits raw (the text after '?', or NULL for none) at '&' and ';', then
 * each pair at its first '=', and percent-decodes names and values ('+' is
 * a space).
 * Empty pairs ("a=1&&b=2") are skipped, and a pair without '=' has the
 * value "". OUT: *q, released by sl_api__query_fini() on every return.
 * Returns SL_OK or SL_ENOMEM. Returns SL_EINVAL with a client-facing message
 * in err when an escape is invalid, when decoded text is not valid UTF-8 or
 * contains NUL, or when a name appears twice.
 */
int sl_api__query_parse(const char *raw, sl_api_query_t *q, char *err,
                        size_t err_size);

/** Frees what sl_api__query_parse() allocated. Accepts a zeroed query. */
void sl_api__query_fini(sl_api_query_t *q);

/**
 * Checks that every parameter name is in allowed (NULL-terminated).
 * Returns SL_OK, or SL_EINVAL with every unknown name listed in err.
 */
int sl_api__query_check_names(const sl_api_query_t *q,
                              const char *const *allowed, char *err,
                              size_t err_size);

/** Returns the value of parameter name, or NULL when it is absent. */
const char *sl_api__query_get(const sl_api_query_t *q, const char *name);

/**
 * Reads an integer parameter in [min, max]. The value must be decimal
 * digits with an optional sign and nothing else. OUT: *out, left at its
 * default when the parameter is absent.
 * Returns SL_OK, or SL_EINVAL with "name: must be an integer between min
 * and max" in err.
 */
int sl_api__query_int(const sl_api_query_t *q, const char *name, int64_t min,
                      int64_t max, int64_t *out, char *err, size_t err_size);

/**
 * Reads an ISO-8601 date-time parameter. OUT: *out_ms and *present, which
 * is false (and *out_ms untouched) when the parameter is absent.
 * Returns SL_OK, or SL_EINVAL with a message naming the parameter.
 */
int sl_api__query_time(const sl_api_query_t *q, const char *name,
                       int64_t *out_ms, bool *present, char *err,
                       size_t err_size);

/**
 * Reads a sensor type symbol. OUT: *out, an sl_sensor_type_t, left at its
 * default (-1 for "any") when the parameter is absent.
 * Returns SL_OK, or SL_EINVAL listing the valid symbols in err.
 */
int sl_api__query_sensor_type(const sl_api_query_t *q, const char *name,
                              int *out, char *err, size_t err_size);

/**
 * Reads a text parameter of 1..max_len bytes. OUT: *out, borrowed from q,
 * left untouched when the parameter is absent.
 * Returns SL_OK, or SL_EINVAL when the value is empty or too long.
 */
int sl_api__query_text(const sl_api_query_t *q, const char *name,
                       size_t max_len, const char **out, char *err,
                       size_t err_size);

/* ---- response cache (cache.c) ------------------------------------------ */

/* How long a cached response is served, and how many are kept. */
#define SL_API_CACHE_TTL_MS 200
#define SL_API_CACHE_SLOTS 64

typedef struct sl_api_cache_entry {
    char *key; /* "path?query"; NULL: empty slot */
    int64_t expires_ns;
    int status;
    const char *content_type; /* static string */
    char *body;
    size_t body_len;
    sl_api_route_t route;
} sl_api_cache_entry_t;

/* Direct-mapped by a hash of the key; zero-initialized is empty. */
typedef struct sl_api_cache {
    sl_api_cache_entry_t entries[SL_API_CACHE_SLOTS];
} sl_api_cache_t;

/** Returns true for the routes whose 200 responses are cached. */
bool sl_api__cache_route(sl_api_route_t route);

/**
 * Fills resp with a heap copy of the cached response of key when one is
 * younger than SL_API_CACHE_TTL_MS at now_ns (monotonic). OUT: *resp,
 * *route. Returns true on a hit.
 */
bool sl_api__cache_get(sl_api_cache_t *cache, const char *key, int64_t now_ns,
                       sl_api_response_t *resp, sl_api_route_t *route);

/** Stores a copy of resp under key; a failed allocation stores nothing. */
void sl_api__cache_put(sl_api_cache_t *cache, const char *key, int64_t now_ns,
                       const sl_api_response_t *resp, sl_api_route_t route);

/** Drops every entry, for example after a write through the API. */
void sl_api__cache_clear(sl_api_cache_t *cache);

/**
 * Reads a parameter that must be one of choices (NULL-terminated).
 * OUT: *out, the index of the match, left untouched when the parameter is
 * absent. Returns SL_OK, or SL_EINVAL listing the choices in err.
 */
int sl_api__query_choice(const sl_api_query_t *q, const char *name,
                         const char *const *choices, int *out, char *err,
                         size_t err_size);

#endif
