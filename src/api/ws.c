/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WebSocket side of the API server: upgrades on /ws/sensors and
 * /ws/alerts, filters from the query string, control messages, and the
 * writes that move a client's queued frames (hub.c) to its socket.
 *
 * The hub renders each frame with its WebSocket header. So one writeable
 * callback copies many frames into one buffer and hands it to lws_write()
 * as raw bytes, which makes one send() per OUT_BYTES of messages instead
 * of one per message. Everything here runs on the service thread.
 */
#include "api/ws.h"
#include "api/hub_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"

#define LOG_COMPONENT "ws"

/* Bytes of frames written per writeable callback. */
#define OUT_BYTES 65536

/* Smallest write size the halving goes down to; it holds the largest
 * reading message many times over. */
#define MIN_WRITE_BYTES 8192

/* Largest control message a client may send, in bytes. */
#define CONTROL_MAX_BYTES 4096

/* Replies not yet written, in bytes, before the client is closed: a client
 * that sends control messages without reading the replies. */
#define REPLIES_MAX_BYTES 65536

/* Maximum close reason length: a close frame carries at most 125 bytes, two of
 * which are the status code. */
#define CLOSE_REASON_MAX 123

/* Seconds a client the hub marked too slow has to read its close frame
 * before the connection is dropped. */
#define SLOW_CLOSE_GRACE_S 10

/* Close status 1013, "Try Again Later" (IANA WebSocket registry), which
 * libwebsockets 4.1 has no name for. */
#define CLOSE_TRY_AGAIN_LATER ((enum lws_close_status)1013)

/* How many clients one wake-up collects at a time. */
#define WAKE_BATCH 256

const lws_retry_bo_t sl_api__ws_keepalive = {
    .secs_since_valid_ping = 30,
    .secs_since_valid_hangup = 40,
};

typedef struct ws_session {
    sl_ws_client_t *client;
    sl_ws_stream_t stream;
    int close_code; /* 0 while open */
    char close_reason[CLOSE_REASON_MAX + 1];
    char *rx; /* control message being received */
    size_t rx_len;
    bool rx_too_big;
    bool rx_binary;
    unsigned char *replies; /* framed replies not yet written */
    size_t replies_len;
    unsigned char *out; /* LWS_PRE + OUT_BYTES */
    /* Bytes the next write may take, halved after a write the socket did
     * not take whole: libwebsockets copies such a rest to the heap. */
    size_t write_bytes;
} ws_session_t;

_Static_assert(sizeof(ws_session_t) <= SL_API_WS_SESSION_BYTES,
               "SL_API_WS_SESSION_BYTES is too small");

bool sl_api__ws_reason(enum lws_callback_reasons reason)
{
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        return true;
    default:
        return false;
    }
}

/* Returns the stream of the request path, or -1 for any other path. */
static int stream_of(struct lws *wsi)
{
    char path[64];

    if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0)
        return -1;
    if (strcmp(path, "/ws/sensors") == 0)
        return SL_WS_SENSORS;
    if (strcmp(path, "/ws/alerts") == 0)
        return SL_WS_ALERTS;
    return -1;
}

/* Arranges for the next writeable callback to close with code and a
 * reason cut to what a close frame carries. */
static void close_later(struct lws *wsi, ws_session_t *ss, int code,
                        const char *reason)
{
    size_t len = strnlen(reason, CLOSE_REASON_MAX);

    /* A close reason must be valid UTF-8: cut before a character. */
    while (len > 0 && len < strlen(reason) &&
           ((unsigned char)reason[len] & 0xC0) == 0x80)
        len--;
    ss->close_code = code;
    memcpy(ss->close_reason, reason, len);
    ss->close_reason[len] = '\0';
    lws_callback_on_writable(wsi);
}

/* Appends a text frame with payload json to the replies. Returns SL_OK, or
 * SL_EFULL when the client has left too many replies unread. */
static int queue_reply(ws_session_t *ss, const char *json)
{
    size_t len = strlen(json);
    sl_ws_frame_t *fr;
    unsigned char *grown;

    if (ss->replies_len + len + 10 > REPLIES_MAX_BYTES)
        return SL_EFULL;
    fr = sl_ws__frame_create(ss->stream, json, len, NULL, NULL);
    if (fr == NULL)
        return SL_ENOMEM;
    grown = realloc(ss->replies, ss->replies_len + fr->len);
    if (grown == NULL) {
        free(fr);
        return SL_ENOMEM;
    }
    memcpy(grown + ss->replies_len, fr->data, fr->len);
    ss->replies = grown;
    ss->replies_len += fr->len;
    free(fr);
    return SL_OK;
}

/* Queues a reply, or closes the client when it cannot be queued. */
static void reply(struct lws *wsi, ws_session_t *ss, const char *json)
{
    int rc = json != NULL ? queue_reply(ss, json) : SL_ENOMEM;

    if (rc == SL_EFULL)
        close_later(wsi, ss, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                    "too many unanswered control messages: read the replies");
    else if (rc != SL_OK)
        close_later(wsi, ss, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                    "out of memory");
    else
        lws_callback_on_writable(wsi);
}

/* Reads the filter from the query string. Returns SL_OK, or SL_EINVAL
 * with the reason in err. */
static int query_filter(struct lws *wsi, sl_ws_stream_t stream,
                        sl_ws_filter_t *f, char *err, size_t err_size)
{
    char arg[SL_WS_VALUE_MAX + 64];

    sl_ws__filter_init(f);
    for (int i = 0;; i++) {
        int len = lws_hdr_copy_fragment(wsi, arg, sizeof(arg),
                                        WSI_TOKEN_HTTP_URI_ARGS, i);
        char *eq;

        if (len < 0)
            break;
        if (len == 0)
            continue;
        if ((size_t)len >= sizeof(arg) - 1) {
            snprintf(err, err_size, "query parameter %d: longer than %zu bytes",
                     i + 1, sizeof(arg) - 2);
            return SL_EINVAL;
        }
        eq = strchr(arg, '=');
        if (eq == NULL) {
            snprintf(err, err_size, "%.64s: missing '=' and value", arg);
            return SL_EINVAL;
        }
        *eq = '\0';
        if (sl_ws__filter_param(f, stream, arg, eq + 1, err, err_size) != SL_OK)
            return SL_EINVAL;
    }
    return SL_OK;
}

static int on_established(struct lws *wsi, ws_session_t *ss, sl_ws_hub_t *hub)
{
    sl_ws_filter_t *f = malloc(sizeof(*f));
    char err[256], *text;
    json_t *hello;
    int rc;

    ss->stream = (sl_ws_stream_t)stream_of(wsi);
    ss->out = malloc(LWS_PRE + OUT_BYTES);
    if (f == NULL || ss->out == NULL) {
        free(f);
        close_later(wsi, ss, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                    "out of memory");
        return 0;
    }
    if (query_filter(wsi, ss->stream, f, err, sizeof(err)) != SL_OK) {
        json_t *error = json_pack("{s:s, s:n, s:s}", "type", "error", "action",
                                  "error", err);

        text = error != NULL ? json_dumps(error, JSON_COMPACT) : NULL;
        json_decref(error);
        if (text != NULL)
            queue_reply(ss, text);
        free(text);
        sl_ws__count_closed(hub, ss->stream, "invalid_filter");
        free(f);
        close_later(wsi, ss, LWS_CLOSE_STATUS_POLICY_VIOLATION, err);
        return 0;
    }

    ss->client = sl_ws__join(hub, ss->stream, f, wsi, &rc);
    if (ss->client == NULL) {
        free(f);
        if (rc == SL_EFULL) {
            snprintf(err, sizeof(err),
                     "the server has its maximum of %d WebSocket clients; "
                     "try again later",
                     sl_ws__config(hub)->max_clients);
            sl_ws__count_closed(hub, ss->stream, "client_cap");
            close_later(wsi, ss, CLOSE_TRY_AGAIN_LATER, err);
        } else {
            close_later(wsi, ss, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                        "out of memory");
        }
        return 0;
    }
    sl_ws__set_context(hub, lws_get_context(wsi));

    hello = json_pack("{s:s, s:s, s:o, s:i}", "type", "connected", "stream",
                      sl_ws__stream_name(ss->stream), "filter",
                      sl_ws__filter_object(f, ss->stream), "queue_messages",
                      sl_ws__config(hub)->queue_messages);
    free(f);
    text = hello != NULL ? json_dumps(hello, JSON_COMPACT) : NULL;
    json_decref(hello);
    reply(wsi, ss, text);
    free(text);
    sl_log_debug(LOG_COMPONENT, "client connected stream=%s",
                 sl_ws__stream_name(ss->stream));
    return 0;
}

/* Replies to one complete message from the client. */
static void on_message(struct lws *wsi, ws_session_t *ss, sl_ws_hub_t *hub)
{
    sl_ws_filter_t *f;
    char *text = NULL;

    if (ss->rx_binary || ss->rx_too_big) {
        char json[200];
        snprintf(json, sizeof(json),
                 "{\"type\":\"error\",\"action\":null,\"error\":\"%s\"}",
                 ss->rx_binary ? "control messages are JSON text frames"
                               : "control message too large: the limit is "
                                 "4096 bytes");
        reply(wsi, ss, json);
        return;
    }
    f = malloc(sizeof(*f));
    if (f == NULL) {
        reply(wsi, ss, NULL);
        return;
    }
    sl_ws__get_filter(hub, ss->client, f);
    if (sl_ws__control(f, ss->stream, ss->rx, ss->rx_len, &text) == SL_OK)
        sl_ws__set_filter(hub, ss->client, f);
    free(f);
    reply(wsi, ss, text);
    free(text);
}

static int on_receive(struct lws *wsi, ws_session_t *ss, sl_ws_hub_t *hub,
                      const void *in, size_t len)
{
    if (ss->client == NULL || ss->close_code != 0)
        return 0;
    if (lws_frame_is_binary(wsi))
        ss->rx_binary = true;
    if (!ss->rx_too_big && ss->rx_len + len > CONTROL_MAX_BYTES)
        ss->rx_too_big = true;
    if (!ss->rx_too_big && len > 0) {
        if (ss->rx == NULL)
            ss->rx = malloc(CONTROL_MAX_BYTES);
        if (ss->rx == NULL) {
            close_later(wsi, ss, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                        "out of memory");
            return 0;
        }
        memcpy(ss->rx + ss->rx_len, in, len);
        ss->rx_len += len;
    }
    if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        on_message(wsi, ss, hub);
        ss->rx_len = 0;
        ss->rx_too_big = false;
        ss->rx_binary = false;
    }
    return 0;
}

static int on_writeable(struct lws *wsi, ws_session_t *ss, sl_ws_hub_t *hub)
{
    unsigned char *out;
    size_t used = 0;
    bool more = false;

    if (ss->out == NULL)
        return -1;
    out = ss->out + LWS_PRE;
    if (ss->write_bytes == 0)
        ss->write_bytes = OUT_BYTES;
    if (ss->replies_len > 0) {
        used = ss->replies_len < ss->write_bytes ? ss->replies_len
                                                 : ss->write_bytes;
        memcpy(out, ss->replies, used);
        memmove(ss->replies, ss->replies + used, ss->replies_len - used);
        ss->replies_len -= used;
    }
    if (ss->close_code != 0 && used == 0) {
        lws_close_reason(wsi, (enum lws_close_status)ss->close_code,
                         (unsigned char *)ss->close_reason,
                         strlen(ss->close_reason));
        return -1;
    }
    /* Frames go out whole after the replies, never inside one. */
    if (ss->client != NULL && ss->close_code == 0 && ss->replies_len == 0)
        used += sl_ws__drain(hub, ss->client, out + used,
                             ss->write_bytes - used, &more);
    if (used > 0 && lws_write(wsi, out, used, LWS_WRITE_RAW) < (int)used) {
        sl_log_debug(LOG_COMPONENT, "write failed, closing the client");
        return -1;
    }
    if (lws_partial_buffered(wsi))
        ss->write_bytes = ss->write_bytes / 2 > MIN_WRITE_BYTES
                              ? ss->write_bytes / 2
                              : MIN_WRITE_BYTES;
    else if (used > ss->write_bytes / 2 && ss->write_bytes < OUT_BYTES)
        ss->write_bytes *= 2;
    if (more || ss->replies_len > 0 || ss->close_code != 0)
        lws_callback_on_writable(wsi);
    return 0;
}

/* Requests writeable callbacks for the clients with queued frames, and
 * starts closing the clients the hub marked too slow. */
static void on_wake(sl_ws_hub_t *hub)
{
    sl_ws_client_t *wake[WAKE_BATCH];
    size_t n;

    do {
        sl_ws__pending(hub, wake, WAKE_BATCH, &n);
        for (size_t i = 0; i < n; i++) {
            sl_ws_client_t *c = wake[i];
            ws_session_t *ss = lws_wsi_user(c->wsi);
            char reason[CLOSE_REASON_MAX + 1];

            if (c->close != SL_WS_CLOSE_SLOW) {
                lws_callback_on_writable(c->wsi);
                continue;
            }
            snprintf(reason, sizeof(reason),
                     "too slow: messages were dropped for more than %d ms",
                     sl_ws__config(hub)->stall_ms);
            sl_ws__count_closed(hub, c->stream, "too_slow");
            sl_log_info(LOG_COMPONENT,
                        "closing a client that stopped "
                        "reading stream=%s",
                        sl_ws__stream_name(c->stream));
            close_later(c->wsi, ss, LWS_CLOSE_STATUS_POLICY_VIOLATION, reason);
            /* A client that never reads never becomes writeable, so it
             * is dropped without the close frame after the grace time. */
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK,
                            SLOW_CLOSE_GRACE_S);
        }
    } while (n == WAKE_BATCH);
}

int sl_api__ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
                        sl_ws_hub_t *hub, void *user, void *in, size_t len)
{
    ws_session_t *ss = user;

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* XXX: lws 4.1 drops the connection without an HTTP status when
         * this returns nonzero, so an unknown path or an API without a
         * bus gives the client no reason. */
        if (hub == NULL || stream_of(wsi) < 0)
            return -1;
        /* The memory held the HTTP session, which owns nothing between
         * requests; from here on it is the WebSocket session. */
        memset(ss, 0, sizeof(*ss));
        return 0;

    case LWS_CALLBACK_ESTABLISHED:
        return on_established(wsi, ss, hub);

    case LWS_CALLBACK_RECEIVE:
        return on_receive(wsi, ss, hub, in, len);

    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(wsi, ss, hub);

    case LWS_CALLBACK_CLOSED:
        if (ss != NULL && hub != NULL)
            sl_ws__leave(hub, ss->client);
        if (ss != NULL) {
            free(ss->rx);
            free(ss->replies);
            free(ss->out);
            memset(ss, 0, sizeof(*ss));
        }
        return 0;

    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (hub != NULL)
            on_wake(hub);
        return 0;

    default:
        return 0;
    }
}
