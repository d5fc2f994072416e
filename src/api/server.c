/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP server: one libwebsockets context with one vhost, served by one
 * thread. libwebsockets parses each request, and this file turns it back
 * into (method, path, raw query) for sl_api__dispatch(), which reads the
 * server's own store handle. The response goes out as headers first, then
 * the body in chunks of one writeable callback each, so a large body never
 * blocks the service thread. Connections are kept alive between requests.
 *
 * Everything in the callback runs on the service thread, which is the only
 * user of the store handle and of the metric handle cache.
 */
#include "api/api_int.h"
#include "api/ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "obs/metrics.h"
#include "obs/trace.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#define LOG_COMPONENT "api"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 8000
#define DEFAULT_MAX_BODY_BYTES (1024 * 1024)
#define DEFAULT_BODY_TIMEOUT_MS 10000

/* Body bytes written per writeable callback. */
#define BODY_CHUNK_BYTES 16384

/* Room for the response headers this server writes (status line, server,
 * content-type, content-length, connection, allow). */
#define HEADER_BYTES 512

/* Largest request header block, the URI included, that lws accepts. */
#define MAX_HEADER_BYTES 8192

/* Room for "[IPv6 address]:port" and its NUL. */
#define ADDRESS_MAX (INET6_ADDRSTRLEN + 16)

/* Distinct statuses per route whose counter handles are cached. */
#define STATUS_SLOTS 8

/* Ingested records a publisher batch collects before it goes to the bus,
 * and how long a publish waits on a full partition. */
#define INGEST_BATCH_RECORDS 512
#define INGEST_PUBLISH_TIMEOUT_MS 2000

/* Room for an Origin or Authorization header value. */
#define ORIGIN_MAX 256
#define AUTHORIZATION_MAX 1024

/* How long a browser may cache a CORS preflight response, in seconds. */
#define CORS_MAX_AGE "600"

typedef struct status_counter {
    int status;
    sl_counter_t *counter;
} status_counter_t;

struct sl_api {
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    sl_store_t *st;
    sl_ws_hub_t *ws_hub; /* borrowed; NULL: no WebSocket streams */
    sl_publisher_t *pub; /* NULL without a bus */
    sl_api_env_t env;
    sl_api_cache_t cache; /* responses of the hottest GET routes */
    char *cors_origins;   /* copy of the setting; NULL: no CORS headers */
    size_t max_body_bytes;
    int body_timeout_ms;
    pthread_t thread;
    bool thread_started;
    atomic_bool stopping;
    int port;
    char host[INET6_ADDRSTRLEN];
    sl_histogram_t *duration[SL_API_ROUTE_COUNT];
    status_counter_t requests[SL_API_ROUTE_COUNT][STATUS_SLOTS];
};

/* Per-connection state; lws zeroes it when the connection opens. It
 * outlives one request because connections are kept alive. */
typedef struct session {
    sl_api_response_t resp;
    struct request *pending; /* a request waiting for its body, or NULL */
    char *body;              /* heap, body_len of body_cap bytes */
    size_t body_len;
    size_t body_cap;
    char origin[ORIGIN_MAX]; /* an allowed Origin to echo, or "" */
    sl_api_route_t route;    /* names the Allow header of a 405 */
    size_t sent;             /* body bytes already handed to lws_write() */
    bool head_only;          /* HEAD: headers of the GET response, no body */
    bool close_after;        /* close instead of waiting for the next request */
    bool preflight;          /* a CORS preflight: 204 with the CORS headers */
} session_t;

/* Upper bounds of the request duration histogram, in seconds. */
static const double duration_bounds[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5};

/* Method names in the order of lws's LWSHUMETH_* indexes. */
static const char *const method_names[] = {
    "GET", "POST", "OPTIONS", "PUT", "PATCH", "DELETE", "CONNECT", "HEAD",
};

void sl_api_config_init(sl_api_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen_host = DEFAULT_HOST;
    cfg->port = DEFAULT_PORT;
    cfg->max_body_bytes = DEFAULT_MAX_BODY_BYTES;
    cfg->body_timeout_ms = DEFAULT_BODY_TIMEOUT_MS;
}

/* ---- metrics ------------------------------------------------------------ */

static void register_metrics(sl_api_t *api)
{
    for (int r = 0; r < SL_API_ROUTE_COUNT; r++) {
        const char *labels[] = {"route", sl_api__route_label(r), NULL};

        api->duration[r] = sl_metrics_histogram(
            "sluice_http_request_duration_seconds",
            "Time from a parsed HTTP request to its response being ready",
            duration_bounds,
            sizeof(duration_bounds) / sizeof(duration_bounds[0]), labels);
    }
}

/* Returns the counter of (route, status), looking it up on first use. */
static sl_counter_t *request_counter(sl_api_t *api, sl_api_route_t route,
                                     int status)
{
    status_counter_t *slots = api->requests[route];
    char status_text[16];
    const char *labels[] = {"route", sl_api__route_label(route), "status",
                            status_text, NULL};
    sl_counter_t *counter;
    int i;

    for (i = 0; i < STATUS_SLOTS && slots[i].counter != NULL; i++) {
        if (slots[i].status == status)
            return slots[i].counter;
    }

    snprintf(status_text, sizeof(status_text), "%d", status);
    counter = sl_metrics_counter("sluice_http_requests_total",
                                 "HTTP requests by route template and status",
                                 labels);
    if (i < STATUS_SLOTS && counter != NULL) {
        slots[i].status = status;
        slots[i].counter = counter;
    }
    return counter;
}

static void record_request(sl_api_t *api, sl_api_route_t route, int status,
                           int64_t start_ns)
{
    double seconds = (double)(sl_time_mono_ns() - start_ns) / 1e9;

    sl_counter_add(request_counter(api, route, status), 1);
    sl_histogram_observe(api->duration[route], seconds);
}

/* ---- request ------------------------------------------------------------ */

/* A request as libwebsockets delivered it, ready for sl_api__dispatch(). */
typedef struct request {
    const char *method;
    char *path;          /* heap */
    char *query;         /* heap, or NULL when the URI had no arguments */
    char *authorization; /* heap, or NULL without the header */
} request_t;

static void request_fini(request_t *req)
{
    free(req->path);
    free(req->query);
    free(req->authorization);
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

/* Appends len bytes at src to out, percent-encoding all but unreserved
 * characters, and keeping the first '=' when keep_equals. */
static char *encode_into(char *out, const char *src, size_t len,
                         bool keep_equals)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];

        if (is_unreserved(c) || (keep_equals && c == '=')) {
            keep_equals = keep_equals && c != '=';
            *out++ = (char)c;
        } else {
            *out++ = '%';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        }
    }
    return out;
}

/*
 * Rebuilds the raw query text from the URI arguments. lws has already split
 * them at '&' and percent-decoded each "name=value" fragment, so they are
 * percent-encoded again for sl_api__query_parse(), which then receives
 * the same pairs the client sent. Returns SL_OK (*out NULL when there are no
 * arguments) or SL_ENOMEM.
 *
 * XXX: because lws 4.1.6 decodes the URI itself, some bad requests never
 * reach the routes' 422: an invalid percent-escape gets lws's own 403
 * page, a decoded NUL or a header block over MAX_HEADER_BYTES closes the
 * connection, and a percent-encoded '=' in a name arrives as '_'.
 */
static int rebuild_query(struct lws *wsi, char **out)
{
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    char *fragment, *query, *end, *last_start = NULL;
    bool last_is_slash = false;

    *out = NULL;
    if (total <= 0)
        return SL_OK;

    /* Each byte may become three, and each non-empty fragment adds at most
     * one '&'. */
    fragment = malloc((size_t)total + 1);
    query = malloc((size_t)total * 4 + 1);
    if (fragment == NULL || query == NULL) {
        free(fragment);
        free(query);
        return SL_ENOMEM;
    }

    /* lws_hdr_copy_fragment() returns the fragment's length, or -1 past
     * the last fragment. */
    end = query;
    for (int i = 0;; i++) {
        int len = lws_hdr_copy_fragment(wsi, fragment, total + 1,
                                        WSI_TOKEN_HTTP_URI_ARGS, i);

        if (len < 0)
            break;
        if (len == 0)
            continue;
        last_start = end;
        last_is_slash = len == 1 && fragment[0] == '/';
        if (end != query)
            *end++ = '&';
        end = encode_into(end, fragment, (size_t)len, true);
    }

    /* XXX: lws 4.1.6 writes '/' into an empty last fragment, as it does for
     * an empty path, so "?limit=2&" arrives as "limit=2" and "/". That
     * fragment is dropped, which also drops a literal "&/" at the end. */
    if (last_is_slash)
        end = last_start;
    *end = '\0';
    free(fragment);
    *out = query;
    return SL_OK;
}

/* Fills req from the parsed request headers. A request lws reports without
 * a method gets method "UNKNOWN" and path "", which no route serves.
 * Returns SL_OK or SL_ENOMEM. */
static int request_init(struct lws *wsi, request_t *req)
{
    size_t method_count = sizeof(method_names) / sizeof(method_names[0]);
    char *uri = NULL;
    int uri_len = 0;
    int method = lws_http_get_uri_and_method(wsi, &uri, &uri_len);

    memset(req, 0, sizeof(*req));
    req->method = "UNKNOWN";
    if (method >= 0 && (size_t)method < method_count)
        req->method = method_names[method];
    if (method < 0 || uri == NULL || uri_len < 0)
        uri_len = 0;

    req->path = strndup(uri_len > 0 ? uri : "", (size_t)uri_len);
    if (req->path == NULL)
        return SL_ENOMEM;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) > 0) {
        char auth[AUTHORIZATION_MAX];

        /* A value too long for the buffer cannot be a valid token. */
        if (lws_hdr_copy(wsi, auth, sizeof(auth),
                         WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
            auth[0] = '\0';
        req->authorization = strdup(auth);
        if (req->authorization == NULL)
            return SL_ENOMEM;
    }
    return rebuild_query(wsi, &req->query);
}

/* ---- response ----------------------------------------------------------- */

static void session_reset(session_t *ss)
{
    free(ss->resp.body);
    if (ss->pending != NULL) {
        request_fini(ss->pending);
        free(ss->pending);
    }
    free(ss->body);
    memset(ss, 0, sizeof(*ss));
}

/* Begins the request's server span, continuing the client's trace when
 * the request carries a W3C traceparent header. */
static void begin_request_span(struct lws *wsi, sl_span_t *span)
{
    char parent[SL_TRACEPARENT_LEN + 2];

    if (lws_hdr_custom_copy(wsi, parent, sizeof(parent),
                            "traceparent:", (int)strlen("traceparent:")) < 0)
        parent[0] = '\0';
    sl_span_begin(span, "HTTP", SL_SPAN_SERVER,
                  parent[0] != '\0' ? parent : NULL);
}

/* Ends the span, named after the route template rather than the path so
 * that the number of span names stays small. */
static void end_request_span(sl_span_t *span, const char *method,
                             sl_api_route_t route, int status)
{
    snprintf(span->name, sizeof(span->name), "%s %s",
             method != NULL ? method : "HTTP", sl_api__route_label(route));
    sl_span_attr_text(span, "http.request.method",
                      method != NULL ? method : "");
    sl_span_attr_text(span, "http.route", sl_api__route_label(route));
    sl_span_attr_int(span, "http.response.status_code", status);
    if (status >= 500)
        sl_span_set_error(span, "server error");
    sl_span_end(span);
}

/* Returns true when origin is in the comma-separated allowed list, or
 * the list is "*". */
static bool origin_allowed(const char *allowed, const char *origin)
{
    size_t len = strlen(origin);

    if (allowed == NULL || origin[0] == '\0')
        return false;
    if (strcmp(allowed, "*") == 0)
        return true;
    for (const char *p = allowed; *p != '\0';) {
        size_t item = strcspn(p, ",");
        const char *start = p;
        size_t trimmed = item;

        while (trimmed > 0 && *start == ' ') {
            start++;
            trimmed--;
        }
        while (trimmed > 0 && start[trimmed - 1] == ' ')
            trimmed--;
        if (trimmed == len && strncmp(start, origin, len) == 0)
            return true;
        p += item;
        if (*p == ',')
            p++;
    }
    return false;
}

/* Keeps the request's Origin when the configuration allows it, so the
 * response can echo it in Access-Control-Allow-Origin. */
static void read_origin(sl_api_t *api, struct lws *wsi, session_t *ss)
{
    ss->origin[0] = '\0';
    if (api->cors_origins == NULL ||
        lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0 ||
        lws_hdr_copy(wsi, ss->origin, sizeof(ss->origin), WSI_TOKEN_ORIGIN) <
            0 ||
        !origin_allowed(api->cors_origins, ss->origin))
        ss->origin[0] = '\0';
}

/* Longest "path?query" whose response is cached. */
#define CACHE_KEY_MAX 1024

/*
 * Dispatches a request, serving the hottest GET routes from the response
 * cache. A successful write clears the cache, so a client that changed
 * something through the API reads its change at once.
 * Returns what sl_api__dispatch_request() returns.
 */
static int dispatch_cached(sl_api_t *api, const sl_api_request_t *call,
                           sl_api_response_t *resp, sl_api_route_t *route)
{
    int64_t now_ns = sl_time_mono_ns();
    char key[CACHE_KEY_MAX];
    bool cacheable;
    int rc;

    if (strcmp(call->method, "GET") != 0) {
        rc = sl_api__dispatch_request(&api->env, call, resp, route);
        if (rc == SL_OK && resp->status < 300)
            sl_api__cache_clear(&api->cache);
        return rc;
    }
    cacheable =
        snprintf(key, sizeof(key), "%s?%s", call->path,
                 call->query != NULL ? call->query : "") < (int)sizeof(key);
    if (cacheable && sl_api__cache_get(&api->cache, key, now_ns, resp, route))
        return SL_OK;
    rc = sl_api__dispatch_request(&api->env, call, resp, route);
    if (cacheable && rc == SL_OK && resp->status == 200 &&
        sl_api__cache_route(*route))
        sl_api__cache_put(&api->cache, key, now_ns, resp, *route);
    return rc;
}

/* Fills ss->resp for a request whose body (if any) is in ss->body,
 * falling back to a fixed 503 when memory runs out. HEAD is served as GET
 * without the body. */
static void build_response(sl_api_t *api, struct lws *wsi, session_t *ss,
                           request_t *req, int init_rc)
{
    static const char oom_body[] = "{\"detail\":\"server out of memory\"}";
    sl_api_route_t route = SL_API_ROUTE_UNMATCHED;
    int64_t start_ns = sl_time_mono_ns();
    sl_span_t span;
    int rc = init_rc;

    begin_request_span(wsi, &span);
    /* Records the request publishes (HTTP ingest) continue its trace. */
    sl_trace_set_current(&span);
    if (rc == SL_OK) {
        sl_api_request_t call = {
            .method = ss->head_only ? "GET" : req->method,
            .path = req->path,
            .query = req->query,
            .body = ss->body,
            .body_len = ss->body_len,
            .authorization = req->authorization,
        };
        rc = dispatch_cached(api, &call, &ss->resp, &route);
    }
    if (rc != SL_OK) {
        sl_log_error(LOG_COMPONENT,
                     "building response failed: out of memory path=%s",
                     req->path != NULL ? req->path : "-");
        ss->resp.status = 503;
        ss->resp.content_type = "application/json";
        ss->resp.body = strdup(oom_body);
        ss->resp.body_len = ss->resp.body != NULL ? strlen(oom_body) : 0;
        ss->close_after = true;
    }

    ss->route = route;
    sl_trace_set_current(NULL);
    record_request(api, route, ss->resp.status, start_ns);
    end_request_span(&span, req->method, route, ss->resp.status);
    sl_log_debug(LOG_COMPONENT, "request method=%s path=%s route=%s status=%d",
                 req->method, req->path != NULL ? req->path : "-",
                 sl_api__route_label(route), ss->resp.status);
}

/* Fills ss->resp with a {"detail": ...} body of status, for responses the
 * server sends before any route runs. */
static void respond_early(session_t *ss, int status, const char *detail)
{
    if (sl_api__respond_detail(&ss->resp, status, detail) != SL_OK) {
        ss->resp.status = status;
        ss->resp.content_type = "application/json";
    }
    ss->close_after = true;
}

static int add_header(struct lws *wsi, const char *name, const char *value,
                      unsigned char **p, unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value,
                                       (int)strlen(value), p, end);
}

/* Adds the CORS headers: the echoed origin on every response, and the
 * allowed methods and headers on a preflight response. */
static int add_cors_headers(struct lws *wsi, const session_t *ss,
                            unsigned char **p, unsigned char *end)
{
    if (ss->origin[0] == '\0')
        return 0;
    if (add_header(wsi, "access-control-allow-origin:", ss->origin, p, end) ||
        add_header(wsi, "vary:", "Origin", p, end))
        return -1;
    if (!ss->preflight)
        return 0;
    return add_header(wsi, "access-control-allow-methods:",
                      "GET, HEAD, POST, OPTIONS", p, end) ||
           add_header(wsi, "access-control-allow-headers:",
                      "Authorization, Content-Type", p, end) ||
           add_header(wsi, "access-control-max-age:", CORS_MAX_AGE, p, end);
}

/* Writes the status line and headers. Returns 0, or -1 to close. */
static int write_headers(struct lws *wsi, const session_t *ss)
{
    unsigned char buf[LWS_PRE + HEADER_BYTES];
    unsigned char *start = buf + LWS_PRE;
    unsigned char *p = start;
    unsigned char *end = buf + sizeof(buf) - 1;
    const sl_api_response_t *resp = &ss->resp;

    if (lws_add_http_common_headers(wsi, (unsigned)resp->status,
                                    resp->content_type, resp->body_len, &p,
                                    end))
        return -1;
    if (resp->status == 405) {
        const char *allow = sl_api__route_allow(ss->route);
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ALLOW,
                                         (const unsigned char *)allow,
                                         (int)strlen(allow), &p, end))
            return -1;
    }
    if (resp->status == 401 && add_header(wsi, "www-authenticate:",
                                          "Bearer realm=\"sluice\"", &p, end))
        return -1;
    if (add_cors_headers(wsi, ss, &p, end))
        return -1;
    if (ss->close_after && lws_add_http_header_by_token(
                               wsi, WSI_TOKEN_CONNECTION,
                               (const unsigned char *)"close", 5, &p, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    return 0;
}

/* Ends the current transaction. Returns 0 to keep the connection for the
 * next request, or -1 to close it. */
static int finish_transaction(struct lws *wsi, session_t *ss)
{
    bool close_after = ss->close_after;

    session_reset(ss);
    if (close_after || lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

/* Writes the next chunk of the body. Returns 0, or -1 to close. */
static int write_body_chunk(struct lws *wsi, session_t *ss)
{
    unsigned char buf[LWS_PRE + BODY_CHUNK_BYTES];
    size_t left = ss->resp.body_len - ss->sent;
    size_t chunk = left < BODY_CHUNK_BYTES ? left : BODY_CHUNK_BYTES;
    bool last = chunk == left;

    /* lws_write() needs LWS_PRE bytes of headroom before the data. */
    memcpy(buf + LWS_PRE, ss->resp.body + ss->sent, chunk);
    if (lws_write(wsi, buf + LWS_PRE, chunk,
                  last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)chunk) {
        sl_log_warn(LOG_COMPONENT,
                    "lws_write failed, closing connection sent=%zu of=%zu",
                    ss->sent, ss->resp.body_len);
        return -1;
    }
    ss->sent += chunk;

    if (last)
        return finish_transaction(wsi, ss);
    lws_callback_on_writable(wsi);
    return 0;
}

/* ---- protocol callback -------------------------------------------------- */

/* Sends the headers of ss->resp and starts the body. Returns 0, or -1 to
 * close the connection. */
static int start_response(struct lws *wsi, session_t *ss)
{
    if (write_headers(wsi, ss) != 0) {
        sl_log_warn(LOG_COMPONENT,
                    "writing response headers failed, closing connection "
                    "status=%d",
                    ss->resp.status);
        return -1;
    }
    if (ss->head_only || ss->resp.body_len == 0)
        return finish_transaction(wsi, ss);
    lws_callback_on_writable(wsi);
    return 0;
}

/* Returns the request's Content-Length, 0 without one, or -1 when it is
 * not a decimal number. */
static long long content_length(struct lws *wsi)
{
    char text[32];
    char *end;
    long long len;

    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
        return 0;
    if (lws_hdr_copy(wsi, text, sizeof(text), WSI_TOKEN_HTTP_CONTENT_LENGTH) <
        0)
        return -1;
    len = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || len < 0)
        return -1;
    return len;
}

/*
 * Starts reading a request body of len bytes, keeping the request in the
 * session until LWS_CALLBACK_HTTP_BODY_COMPLETION. lws closes the
 * connection when the body has not arrived within the body timeout.
 * Returns SL_OK with req taken over, or SL_ENOMEM with req untouched.
 *
 * XXX: a slow body is cut off by closing the connection, without a 408
 * response, because lws 4.1's pending timeout closes without a callback
 * that could write one. A chunked body without Content-Length is not
 * read; the request is handled as if it had no body.
 */
static int await_body(sl_api_t *api, struct lws *wsi, session_t *ss,
                      request_t *req, size_t len)
{
    int seconds = (api->body_timeout_ms + 999) / 1000;

    ss->body = malloc(len);
    ss->pending = malloc(sizeof(*ss->pending));
    if (ss->body == NULL || ss->pending == NULL) {
        free(ss->body);
        free(ss->pending);
        ss->body = NULL;
        ss->pending = NULL;
        return SL_ENOMEM;
    }
    *ss->pending = *req;
    ss->body_cap = len;
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, seconds);
    return SL_OK;
}

/* Responds to a request whose headers have arrived: at once, or after its
 * body. Returns 0, or -1 to close. */
static int on_http_request(sl_api_t *api, struct lws *wsi, session_t *ss)
{
    request_t req;
    long long body_len;
    int rc;

    session_reset(ss);
    read_origin(api, wsi, ss);
    rc = request_init(wsi, &req);
    ss->head_only = strcmp(req.method, "HEAD") == 0;
    /* A request with another method may carry a body that no route
     * reads, so the connection is not reused for a next request. */
    ss->close_after = !ss->head_only && strcmp(req.method, "GET") != 0;

    if (rc == SL_OK && strcmp(req.method, "OPTIONS") == 0) {
        ss->preflight = true;
        ss->resp.status = 204;
        ss->resp.content_type = "text/plain";
        request_fini(&req);
        return start_response(wsi, ss);
    }
    body_len = rc == SL_OK ? content_length(wsi) : 0;
    if (body_len < 0) {
        request_fini(&req);
        respond_early(ss, 400, "Content-Length: not a decimal number");
        return start_response(wsi, ss);
    }
    if ((unsigned long long)body_len > api->max_body_bytes) {
        char detail[SL_API_DETAIL_MAX];

        snprintf(detail, sizeof(detail), "body: larger than %zu bytes",
                 api->max_body_bytes);
        request_fini(&req);
        respond_early(ss, 413, detail);
        return start_response(wsi, ss);
    }
    if (body_len > 0) {
        if (await_body(api, wsi, ss, &req, (size_t)body_len) == SL_OK)
            return 0;
        sl_log_error(LOG_COMPONENT,
                     "reading request body failed: out of memory bytes=%lld",
                     body_len);
        request_fini(&req);
        return -1;
    }
    build_response(api, wsi, ss, &req, rc);
    request_fini(&req);
    return start_response(wsi, ss);
}

/* Appends a piece of the request body. Returns 0, or -1 to close when
 * more arrives than Content-Length announced. */
static int on_http_body(session_t *ss, const void *in, size_t len)
{
    if (ss->pending == NULL)
        return 0;
    if (len > ss->body_cap - ss->body_len)
        return -1;
    memcpy(ss->body + ss->body_len, in, len);
    ss->body_len += len;
    return 0;
}

static int on_http_body_done(sl_api_t *api, struct lws *wsi, session_t *ss)
{
    request_t *req = ss->pending;

    if (req == NULL) {
        /* lws 4.1.6 never delivered the writeable callback requested
         * while a request body was still arriving (seen with a POST
         * carrying Content-Length), so the response body is requested
         * again. */
        if (ss->resp.body != NULL)
            lws_callback_on_writable(wsi);
        return 0;
    }
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    build_response(api, wsi, ss, req, SL_OK);
    request_fini(req);
    free(req);
    ss->pending = NULL;
    return start_response(wsi, ss);
}

static int callback_http(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len)
{
    sl_api_t *api = lws_context_user(lws_get_context(wsi));
    session_t *ss = user;

    if (sl_api__ws_reason(reason))
        return sl_api__ws_callback(wsi, reason, api->ws_hub, user, in, len);

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_http_request(api, wsi, ss);

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (ss == NULL || ss->resp.body == NULL)
            return 0;
        return write_body_chunk(wsi, ss);

    case LWS_CALLBACK_HTTP_BODY:
        return ss != NULL ? on_http_body(ss, in, len) : 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return ss != NULL ? on_http_body_done(api, wsi, ss) : 0;

    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (ss != NULL && ss->resp.body != NULL)
            sl_log_debug(LOG_COMPONENT,
                         "connection closed with %zu of %zu body bytes unsent",
                         ss->resp.body_len - ss->sent, ss->resp.body_len);
        if (ss != NULL)
            session_reset(ss);
        break;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* protocols[0] serves plain HTTP and the WebSocket streams (ws.h explains
 * why), so its per-session memory fits either session. */
static const struct lws_protocols protocols[] = {
    {"http", callback_http,
     sizeof(session_t) > SL_API_WS_SESSION_BYTES ? sizeof(session_t)
                                                 : SL_API_WS_SESSION_BYTES,
     0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- start and stop ----------------------------------------------------- */

/* Formats host:port for messages, with an IPv6 address in brackets and an
 * empty host (every interface) as 0.0.0.0. */
static void format_address(const char *host, int port, char *out,
                           size_t out_size)
{
    if (host[0] == '\0')
        snprintf(out, out_size, "0.0.0.0:%d", port);
    else if (strchr(host, ':') != NULL)
        snprintf(out, out_size, "[%s]:%d", host, port);
    else
        snprintf(out, out_size, "%s:%d", host, port);
}

/* Routes libwebsockets' own errors and warnings into the sluice log. */
static void log_lws_line(int level, const char *line)
{
    size_t len = strlen(line);

    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (level & LLL_ERR)
        sl_log_error(LOG_COMPONENT, "libwebsockets: %.*s", (int)len, line);
    else
        sl_log_warn(LOG_COMPONENT, "libwebsockets: %.*s", (int)len, line);
}

/*
 * Returns the errno of binding a probe socket to host:port, or 0 when the
 * probe binds. lws does not report why it could not listen, so this finds
 * the likely reason after the fact.
 */
static int probe_listen_errno(const char *host, int port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char service[16];
    int enable = 1, fd, err = 0;

    snprintf(service, sizeof(service), "%d", port);
    if (getaddrinfo(host, service, &hints, &ai) != 0 || ai == NULL)
        return EADDRNOTAVAIL;
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
        err = errno;
    } else {
        /* lws sets SO_REUSEADDR too, so TIME_WAIT leftovers do not count. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &enable, sizeof(enable));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1) != 0)
            err = errno;
        close(fd);
    }
    freeaddrinfo(ai);
    return err;
}

static void format_listen_error(const char *host, int port, char *err,
                                size_t err_size)
{
    int probe = probe_listen_errno(host[0] != '\0' ? host : "0.0.0.0", port);
    char address[ADDRESS_MAX];
    const char *reason = probe == EADDRINUSE ? "address in use"
                         : probe != 0        ? strerror(probe)
                                             : "libwebsockets could not "
                                               "create the listener";

    format_address(host, port, address, sizeof(address));
    snprintf(err, err_size, "listen %s: %s", address, reason);
}

static bool is_wildcard(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return in->sin_addr.s_addr == htonl(INADDR_ANY);
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    return IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
}

static bool same_address(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a == NULL || a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr,
                  sizeof(struct in6_addr)) == 0;
}

/*
 * Resolves the listen host to a numeric address that is assigned to one of
 * this machine's interfaces, and writes it to numeric (empty for "all
 * interfaces"). libwebsockets 4.1 listens on every interface when it
 * cannot match the address it is given to an interface, so an address
 * that is not local must be rejected here, never passed on.
 */
static int resolve_listen_host(const char *host, int port, char *numeric,
                               size_t numeric_size, char *err, size_t err_size)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    struct ifaddrs *ifs = NULL;
    char address[ADDRESS_MAX];
    bool local = false;
    int rc;

    numeric[0] = '\0';
    if (host[0] == '\0')
        return SL_OK;
    format_address(host, port, address, sizeof(address));
    rc = getaddrinfo(host, NULL, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        snprintf(err, err_size, "listen %s: cannot resolve the host: %s",
                 address, gai_strerror(rc));
        return SL_EINVAL;
    }
    if (is_wildcard(ai->ai_addr)) {
        freeaddrinfo(ai);
        return SL_OK;
    }
    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i != NULL && !local; i = i->ifa_next)
            local = same_address(i->ifa_addr, ai->ai_addr);
        freeifaddrs(ifs);
    }
    if (!local) {
        snprintf(err, err_size,
                 "listen %s: the address is not assigned to "
                 "any interface of this machine",
                 address);
        freeaddrinfo(ai);
        return SL_EINVAL;
    }
    rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, numeric,
                     (socklen_t)numeric_size, NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(ai);
    if (rc != 0) {
        snprintf(err, err_size, "listen %s: %s", address, gai_strerror(rc));
        return SL_EINVAL;
    }
    return SL_OK;
}

static void *service_main(void *arg)
{
    sl_api_t *api = arg;

    while (!atomic_load(&api->stopping)) {
        if (lws_service(api->ctx, 0) < 0) {
            sl_log_error(LOG_COMPONENT, "lws_service failed, serving stops");
            break;
        }
    }
    return NULL;
}

static int create_server(sl_api_t *api, const char *host, int port, char *err,
                         size_t err_size)
{
    struct lws_context_creation_info info;
    char numeric[NI_MAXHOST];

    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    info.user = api;
    info.server_string = "sluice";
    info.max_http_header_data = MAX_HEADER_BYTES;
    api->ctx = lws_create_context(&info);
    if (api->ctx == NULL) {
        snprintf(err, err_size, "lws_create_context failed");
        return SL_EIO;
    }

    if (resolve_listen_host(host, port, numeric, sizeof(numeric), err,
                            err_size) != SL_OK)
        return SL_EINVAL;
    info.port = port;
    info.iface = numeric[0] != '\0' ? numeric : NULL;
    info.protocols = protocols;
    info.retry_and_idle_policy = &sl_api__ws_keepalive;
    info.vhost_name = "sluice";
    api->vhost = lws_create_vhost(api->ctx, &info);
    if (api->vhost == NULL) {
        format_listen_error(host, port, err, err_size);
        return SL_EIO;
    }
    api->port = lws_get_vhost_listen_port(api->vhost);
    return SL_OK;
}

/* Sets up what the routes need besides the store: the ingest publisher
 * on the bus (with its own batching), the token, the CORS origins and the
 * body limits. Returns SL_OK, or SL_ENOMEM or SL_EIO with err filled. */
static int setup_requests(sl_api_t *api, const sl_api_config_t *cfg, char *err,
                          size_t err_size)
{
    api->max_body_bytes =
        cfg->max_body_bytes > 0 ? cfg->max_body_bytes : DEFAULT_MAX_BODY_BYTES;
    api->body_timeout_ms = cfg->body_timeout_ms > 0 ? cfg->body_timeout_ms
                                                    : DEFAULT_BODY_TIMEOUT_MS;
    if (cfg->cors_origins != NULL && cfg->cors_origins[0] != '\0') {
        api->cors_origins = strdup(cfg->cors_origins);
        if (api->cors_origins == NULL) {
            snprintf(err, err_size, "out of memory");
            return SL_ENOMEM;
        }
    }
    api->env.st = api->st;
    api->env.token = cfg->token;
    api->env.max_body_bytes = api->max_body_bytes;
    api->env.bus_missing =
        "this API instance has no bus; run sluice api with bus=kafka";
    if (cfg->bus == NULL || cfg->registry == NULL)
        return SL_OK;
    api->pub =
        sl_publisher_create(cfg->bus, cfg->registry, INGEST_PUBLISH_TIMEOUT_MS);
    if (api->pub == NULL ||
        sl_publisher_set_batch(api->pub, INGEST_BATCH_RECORDS) != SL_OK) {
        snprintf(err, err_size, "cannot create the ingest publisher");
        return SL_EIO;
    }
    api->env.pub = api->pub;
    return SL_OK;
}

sl_api_t *sl_api_start(const sl_api_config_t *cfg, char *err, size_t err_size)
{
    const char *host = cfg->listen_host != NULL ? cfg->listen_host : "";
    char address[ADDRESS_MAX];
    sl_api_t *api;
    int rc;

    if (cfg->port < 0 || cfg->port > 65535) {
        snprintf(err, err_size, "listen port %d: must be between 0 and 65535",
                 cfg->port);
        return NULL;
    }
    if (strlen(host) >= sizeof(api->host)) {
        snprintf(err, err_size, "listen host '%s': longer than an IP address",
                 host);
        return NULL;
    }
    api = calloc(1, sizeof(*api));
    if (api == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    snprintf(api->host, sizeof(api->host), "%s", host);
    api->ws_hub = cfg->ws_hub;
    atomic_init(&api->stopping, false);

    api->st = sl_store_open(
        cfg->store_location != NULL ? cfg->store_location : "", err, err_size);
    if (api->st == NULL)
        goto fail;

    if (setup_requests(api, cfg, err, err_size) != SL_OK)
        goto fail;
    lws_set_log_level(LLL_ERR | LLL_WARN, log_lws_line);
    register_metrics(api);
    if (create_server(api, host, cfg->port, err, err_size) != SL_OK)
        goto fail;

    rc = pthread_create(&api->thread, NULL, service_main, api);
    if (rc != 0) {
        snprintf(err, err_size, "pthread_create failed: %s", strerror(rc));
        goto fail;
    }
    api->thread_started = true;
    format_address(host, api->port, address, sizeof(address));
    sl_log_info(LOG_COMPONENT, "listening on http://%s", address);
    return api;

fail:
    sl_api_stop(api);
    return NULL;
}

int sl_api_port(const sl_api_t *api)
{
    return api->port;
}

void sl_api_stop(sl_api_t *api)
{
    char address[ADDRESS_MAX];

    if (api == NULL)
        return;

    if (api->thread_started) {
        atomic_store(&api->stopping, true);
        lws_cancel_service(api->ctx);
        pthread_join(api->thread, NULL);
        format_address(api->host, api->port, address, sizeof(address));
        sl_log_info(LOG_COMPONENT, "stopped listening on http://%s", address);
    }
    /* Closing the context closes every open connection, whose
     * LWS_CALLBACK_CLOSED_HTTP frees the pending response. */
    if (api->ctx != NULL)
        lws_context_destroy(api->ctx);
    sl_publisher_destroy(api->pub);
    sl_api__cache_clear(&api->cache);
    free(api->cors_origins);
    sl_store_close(api->st);
    free(api);
}
