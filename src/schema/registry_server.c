/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The built-in schema registry server: a libwebsockets context of its own
 * with one vhost (127.0.0.1:8081 by default, as Confluent's registry
 * listens on 8081), served by one thread, answering the Confluent REST
 * API from the store's schemas table through registry_routes.c.
 *
 * A request body (POST, PUT) is collected in HTTP_BODY callbacks and the
 * request is answered at HTTP_BODY_COMPLETION; a request without a body
 * is answered at once. The reply is small, so headers and body go out in
 * one writeable callback. Connections are kept alive; the session state is
 * reset when the next request starts.
 */
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "schema/schema_int.h"
#include "util/err.h"
#include "util/log.h"

#define LOG_COMPONENT "registry"
#define CONTENT_TYPE "application/vnd.schemaregistry.v1+json"

/* Largest request body accepted, in bytes; a larger one gets a 413. */
#define BODY_MAX_BYTES (1024 * 1024)

/* Room for the response headers this server writes. */
#define HEADER_BYTES 512

/* Method names in the order of lws's LWSHUMETH_* indexes. */
static const char *const method_names[] = {
    "GET", "POST", "OPTIONS", "PUT", "PATCH", "DELETE", "CONNECT", "HEAD",
};

struct sl_registry_server {
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    pthread_t thread;
    int thread_started;
    atomic_bool stopping;
    atomic_ulong requests;
    int port;
    sl_registry_routes_t routes;
};

/* Per-connection state, zeroed by lws when the connection opens. */
typedef struct session {
    char method[16];
    char *path;
    char *body;
    size_t body_len;
    int body_too_large;
    sl_registry_reply_t reply;
    int ready; /* reply built, waiting for the writeable callback */
} session_t;

static void session_fini(session_t *ss)
{
    free(ss->path);
    free(ss->body);
    free(ss->reply.body);
    memset(ss, 0, sizeof(*ss));
}

/* Records method and path of a new request. Returns 0, or -1 to close. */
static int session_start(struct lws *wsi, session_t *ss)
{
    size_t count = sizeof(method_names) / sizeof(method_names[0]);
    char *uri = NULL;
    int uri_len = 0;
    int method = lws_http_get_uri_and_method(wsi, &uri, &uri_len);

    session_fini(ss);
    snprintf(ss->method, sizeof(ss->method), "%s",
             method >= 0 && (size_t)method < count ? method_names[method]
                                                   : "UNKNOWN");
    ss->path = strndup(uri != NULL && uri_len > 0 ? uri : "",
                       uri_len > 0 ? (size_t)uri_len : 0);
    return ss->path != NULL ? 0 : -1;
}

static int append_body(session_t *ss, const void *in, size_t len)
{
    char *grown;

    if (ss->body_too_large || ss->body_len + len > BODY_MAX_BYTES) {
        ss->body_too_large = 1;
        return 0;
    }
    grown = realloc(ss->body, ss->body_len + len + 1);
    if (grown == NULL) {
        return -1;
    }
    memcpy(grown + ss->body_len, in, len);
    ss->body = grown;
    ss->body_len += len;
    ss->body[ss->body_len] = '\0';
    return 0;
}

/* Builds the reply and asks for the writeable callback. */
static int answer(sl_registry_server_t *srv, struct lws *wsi, session_t *ss)
{
    static const char too_large[] = "{\"error_code\":413,\"message\":\"Request "
                                    "body is larger than 1 MiB\"}";
    int rc = SL_OK;

    atomic_fetch_add(&srv->requests, 1);
    if (ss->body_too_large) {
        ss->reply.status = 413;
        ss->reply.body = strdup(too_large);
    } else {
        rc = sl_registry__route(&srv->routes, ss->method, ss->path, ss->body,
                                &ss->reply);
    }
    if (rc != SL_OK || ss->reply.body == NULL) {
        sl_log_error(LOG_COMPONENT, "building reply failed: %s path=%s",
                     sl_strerror(rc != SL_OK ? rc : SL_ENOMEM), ss->path);
        return -1;
    }
    ss->reply.body_len = strlen(ss->reply.body);
    sl_log_debug(LOG_COMPONENT, "request method=%s path=%s status=%d",
                 ss->method, ss->path, ss->reply.status);
    ss->ready = 1;
    lws_callback_on_writable(wsi);
    return 0;
}

/* Writes headers and body, then ends the transaction. Returns 0 to keep
 * the connection for the next request, or -1 to close it. */
static int write_reply(struct lws *wsi, session_t *ss)
{
    size_t len = ss->reply.body_len;
    unsigned char *buf = malloc(LWS_PRE + HEADER_BYTES + len);
    unsigned char *start;
    unsigned char *p;
    unsigned char *end;

    if (buf == NULL) {
        return -1;
    }
    start = buf + LWS_PRE;
    p = start;
    end = start + HEADER_BYTES - 1;
    if (lws_add_http_common_headers(wsi, (unsigned)ss->reply.status,
                                    CONTENT_TYPE, len, &p, end) ||
        lws_finalize_http_header(wsi, &p, end)) {
        free(buf);
        return -1;
    }
    memcpy(p, ss->reply.body, len);
    p += len;
    if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_FINAL) <
        (int)(p - start)) {
        sl_log_warn(LOG_COMPONENT, "lws_write failed path=%s", ss->path);
    }
    free(buf);
    ss->ready = 0;
    if (lws_http_transaction_completed(wsi)) {
        return -1;
    }
    return 0;
}

static int callback_registry(struct lws *wsi, enum lws_callback_reasons reason,
                             void *user, void *in, size_t len)
{
    sl_registry_server_t *srv = lws_context_user(lws_get_context(wsi));
    session_t *ss = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (session_start(wsi, ss) != 0) {
            return -1;
        }
        /* POST and PUT carry a body; it is answered at BODY_COMPLETION. */
        if ((strcmp(ss->method, "POST") == 0 ||
             strcmp(ss->method, "PUT") == 0) &&
            lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
            return 0;
        }
        return answer(srv, wsi, ss);

    case LWS_CALLBACK_HTTP_BODY:
        return append_body(ss, in, len);

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return answer(srv, wsi, ss);

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (ss == NULL || !ss->ready) {
            return 0;
        }
        return write_reply(wsi, ss);

    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (ss != NULL) {
            session_fini(ss);
        }
        break;

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return -1; /* the registry has no WebSocket endpoint */

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"http", callback_registry, sizeof(session_t), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *service_main(void *arg)
{
    sl_registry_server_t *srv = arg;

    while (!atomic_load(&srv->stopping)) {
        if (lws_service(srv->ctx, 0) < 0) {
            sl_log_error(LOG_COMPONENT, "lws_service failed, serving stops");
            break;
        }
    }
    return NULL;
}

static int create_context(sl_registry_server_t *srv, const char *host, int port,
                          char *err, size_t err_size)
{
    struct lws_context_creation_info info;

    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    info.user = srv;
    info.server_string = "sluice-registry";
    srv->ctx = lws_create_context(&info);
    if (srv->ctx == NULL) {
        snprintf(err, err_size, "lws_create_context failed");
        return SL_EIO;
    }
    info.port = port;
    info.iface = host;
    info.protocols = protocols;
    info.vhost_name = "sluice-registry";
    srv->vhost = lws_create_vhost(srv->ctx, &info);
    if (srv->vhost == NULL) {
        snprintf(err, err_size,
                 "cannot listen on %s:%d: address in use or not local", host,
                 port);
        return SL_EIO;
    }
    srv->port = lws_get_vhost_listen_port(srv->vhost);
    return SL_OK;
}

sl_registry_server_t *sl_registry_server_start(const char *store_location,
                                               const char *host, int port,
                                               char *err, size_t err_size)
{
    sl_registry_server_t *srv;
    int rc;

    if (host == NULL || host[0] == '\0') {
        host = SL_REGISTRY_DEFAULT_HOST;
    }
    if (port < 0 || port > 65535) {
        snprintf(err, err_size, "registry port %d: must be 0-65535", port);
        return NULL;
    }
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    atomic_init(&srv->stopping, false);
    atomic_init(&srv->requests, 0);
    srv->routes.st = sl_store_open(store_location, err, err_size);
    if (srv->routes.st == NULL ||
        sl_store_migrate(srv->routes.st, err, err_size) != SL_OK) {
        goto fail;
    }
    /* The setting is process-wide; the API server sets the same levels. */
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    if (create_context(srv, host, port, err, err_size) != SL_OK) {
        goto fail;
    }
    rc = pthread_create(&srv->thread, NULL, service_main, srv);
    if (rc != 0) {
        snprintf(err, err_size, "pthread_create failed: %s", strerror(rc));
        goto fail;
    }
    srv->thread_started = 1;
    sl_log_info(LOG_COMPONENT, "schema registry listening on http://%s:%d",
                host, srv->port);
    return srv;

fail:
    sl_registry_server_stop(srv);
    return NULL;
}

int sl_registry_server_port(const sl_registry_server_t *srv)
{
    return srv->port;
}

unsigned long sl_registry_server_requests(sl_registry_server_t *srv)
{
    return atomic_load(&srv->requests);
}

void sl_registry_server_stop(sl_registry_server_t *srv)
{
    if (srv == NULL) {
        return;
    }
    if (srv->thread_started) {
        atomic_store(&srv->stopping, true);
        lws_cancel_service(srv->ctx);
        pthread_join(srv->thread, NULL);
        sl_log_info(LOG_COMPONENT, "schema registry stopped port=%d",
                    srv->port);
    }
    if (srv->ctx != NULL) {
        lws_context_destroy(srv->ctx);
    }
    sl_store_close(srv->routes.st);
    free(srv);
}
