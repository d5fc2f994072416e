/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP API: health, sensor queries and metrics, served by
 * libwebsockets on one service thread. Request handling is split from the
 * server: sl_api_handle() maps a request to a status and a JSON body using
 * only the store, so routes are testable without sockets.
 */
#ifndef SLUICE_API_API_H
#define SLUICE_API_API_H

#include <stddef.h>

#include "bus/bus.h"
#include "schema/schema.h"
#include "store/store.h"

typedef struct sl_api sl_api_t;

typedef struct sl_api_config {
    const char *listen_host;    /* default "127.0.0.1" */
    int port;                   /* default 8000; 0 picks a free port */
    const char *store_location; /* the API opens its own store handle */
    /* The bus the API consumes for WebSocket feeds and publishes ingested
     * records to; NULL serves REST only, and ingest answers 503. Borrowed:
     * it and registry must outlive the API. */
    sl_bus_t *bus;
    sl_registry_t *registry;  /* encodes ingested records; needed with bus */
    const char *token;        /* bearer token of write endpoints; NULL or
                               * "": writes need none */
    const char *cors_origins; /* comma-separated allowed origins, or "*";
                               * NULL or "": no CORS headers */
    size_t max_body_bytes;    /* request body cap; default 1 MiB */
    int body_timeout_ms;      /* time allowed for a request body; 10000 */
    /* Feeds /ws/sensors and /ws/alerts (api/hub.h). Borrowed, and must
     * outlive the API; NULL: no WebSocket streams, upgrades are refused. */
    struct sl_ws_hub *ws_hub;
} sl_api_config_t;

void sl_api_config_init(sl_api_config_t *cfg);

/* A response produced by sl_api_handle. */
typedef struct sl_api_response {
    int status;               /* HTTP status code */
    const char *content_type; /* static string */
    char *body;               /* heap; free with free() */
    size_t body_len;
} sl_api_response_t;

/**
 * Handles one request. path excludes the query string; query is the raw
 * text after '?', or NULL. Parameters that are invalid produce 422 with
 * {"detail": "..."}; unknown paths 404; other methods 405. Never 500 for
 * anything the client sent; 503 when the store fails.
 * OUT: *resp. Returns SL_OK, or SL_ENOMEM.
 */
int sl_api_handle(sl_store_t *st, const char *method, const char *path,
                  const char *query, sl_api_response_t *resp);

/**
 * Opens a store handle and starts serving on a new thread.
 * Returns NULL with the reason (e.g. the port is in use) in err.
 */
sl_api_t *sl_api_start(const sl_api_config_t *cfg, char *err, size_t err_size);

/** Returns the TCP port actually bound. */
int sl_api_port(const sl_api_t *api);

/** Stops serving, joins the thread and frees everything. Accepts NULL. */
void sl_api_stop(sl_api_t *api);

#endif
