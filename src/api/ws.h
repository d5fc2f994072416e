/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WebSocket endpoints /ws/sensors and /ws/alerts, served on the HTTP
 * protocol of server.c. libwebsockets 4.1 binds an upgrade without a
 * Sec-WebSocket-Protocol header to the vhost's first protocol, and browsers
 * and most clients send no such header. So the HTTP callback hands every
 * WebSocket reason to sl_api__ws_callback(), and its per-session memory is
 * large enough for a WebSocket session (SL_API_WS_SESSION_BYTES).
 */
#ifndef SLUICE_API_WS_H
#define SLUICE_API_WS_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/hub.h"

/* Per-connection bytes a WebSocket session needs. */
#define SL_API_WS_SESSION_BYTES 256

/* Ping a client after 30 s without a pong or a message from it, and hang
 * up when 40 s have passed. */
extern const lws_retry_bo_t sl_api__ws_keepalive;

/** Returns true for the callback reasons of a WebSocket connection. */
bool sl_api__ws_reason(enum lws_callback_reasons reason);

/**
 * Handles one WebSocket callback reason. hub may be NULL: the API then has
 * no live streams and refuses every upgrade. user is the connection's
 * per-session memory of at least SL_API_WS_SESSION_BYTES.
 * Returns what the lws callback returns (0, or -1 to close).
 */
int sl_api__ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
                        sl_ws_hub_t *hub, void *user, void *in, size_t len);

#endif
