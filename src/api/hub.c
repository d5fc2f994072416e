/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WebSocket hub's consumer thread and client queues. The thread polls
 * sensor-readings and system-alerts in the hub's own consumer group and
 * decodes and validates each reading as the processor does. A record
 * that some client's filter matches is rendered once into a WebSocket
 * text frame, and a reference to that frame goes into the queue of every
 * client whose filter matches; other records are never rendered. A
 * reading whose sensor no client follows is skipped before it is decoded,
 * by the sensor_id read from the front of its body when the writer schema
 * is the built-in one (sl_reading_peek_sensor_id). The API's service
 * thread drains the queues (ws.c).
 *
 * A reading whose bus headers carry a sampled W3C traceparent gets a
 * "ws.send" span from decoding to its frame being queued for the clients
 * that follow it. The hub consumes the bus record itself, in parallel with
 * the processor, so the span's parent is the producer's span from the
 * header, not the processor's.
 */
#include "api/hub_int.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/json.h"
#include "model/validate.h"
#include "obs/metrics.h"
#include "obs/trace.h"
#include "pipeline/offsets.h"
#include "pipeline/pipeline.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#define LOG_COMPONENT "ws"

/* Records per poll, and how long one poll waits. */
#define POLL_BATCH 256
#define POLL_TIMEOUT_MS 200

/* Sampled readings per poll that get a ws.send span. The spans live in
 * the hub so that a poll allocates nothing.
 * XXX: sampled readings of a poll past this many go out untraced. */
#define TRACED_MAX 32

/* Shortest time between two wake-ups of the service thread. Each wake-up
 * costs a writeable request and a send() per client with frames queued,
 * so frames that arrive meanwhile go out together; it adds at most this
 * much delivery latency. */
#define WAKE_INTERVAL_MS 20

/* Frames fanned out per hold of the hub's lock. */
#define PUBLISH_SLICE 16

/* Largest WebSocket frame header this module writes: opcode byte, length
 * byte, and a 16- or 64-bit extended length. */
#define FRAME_HEADER_MAX 10

/* Reasons a record read by the hub reaches no client. */
enum { SKIP_DECODE, SKIP_INVALID, SKIP_OLD, SKIP_NO_MATCH, SKIP_COUNT };
static const char *const skip_names[SKIP_COUNT] = {"decode", "validation",
                                                   "before_start", "no_match"};

struct sl_ws_hub {
    sl_ws_hub_config_t cfg;
    char group[128];
    pthread_mutex_t lock;
    sl_ws_client_t **clients; /* max_clients slots; under lock */
    size_t client_count;
    /* Clients per stream, read without the lock by the consumer thread,
     * which renders nothing for a stream no one follows. */
    atomic_size_t followers[SL_WS_STREAM_COUNT];
    _Atomic(struct lws_context *) ctx;

    sl_consumer_t *consumer;
    sl_decoder_t *decoder;
    sl_msg_t msgs[POLL_BATCH];
    sl_ws_frame_t *frames[POLL_BATCH];
    sl_span_t spans[TRACED_MAX];
    size_t traced_count;
    pthread_t thread;
    bool thread_started;
    atomic_bool stopping;
    int64_t start_ms; /* records the bus accepted earlier are skipped */

    sl_gauge_t *clients_gauge[SL_WS_STREAM_COUNT];
    sl_counter_t *sent[SL_WS_STREAM_COUNT];
    sl_counter_t *dropped_full[SL_WS_STREAM_COUNT];
    sl_counter_t *dropped_closed[SL_WS_STREAM_COUNT];
    sl_counter_t *skipped[SKIP_COUNT];
};

uint64_t sl_ws__hash(const char *text)
{
    uint64_t h = UINT64_C(14695981039346656037);

    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        h ^= *p;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

void sl_ws_hub_config_init(sl_ws_hub_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_clients = SL_WS_DEFAULT_MAX_CLIENTS;
    cfg->queue_messages = SL_WS_DEFAULT_QUEUE_MESSAGES;
    cfg->stall_ms = SL_WS_DEFAULT_STALL_MS;
}

const sl_ws_hub_config_t *sl_ws__config(const sl_ws_hub_t *hub)
{
    return &hub->cfg;
}

void sl_ws__set_context(sl_ws_hub_t *hub, struct lws_context *ctx)
{
    atomic_store(&hub->ctx, ctx);
}

/* ---- metrics --------------------------------------------------------------
 */

static const char dropped_help[] =
    "WebSocket messages a client lost: queue_full when its queue "
    "overflowed, client_closed when it left with messages queued";

static void register_metrics(sl_ws_hub_t *hub)
{
    for (int s = 0; s < SL_WS_STREAM_COUNT; s++) {
        const char *stream = sl_ws__stream_name(s);

        hub->clients_gauge[s] =
            sl_metrics_gauge("sluice_ws_clients", "Connected WebSocket clients",
                             (const char *[]){"stream", stream, NULL});
        hub->sent[s] =
            sl_metrics_counter("sluice_ws_messages_sent_total",
                               "WebSocket messages written to clients' sockets",
                               (const char *[]){"stream", stream, NULL});
        hub->dropped_full[s] = sl_metrics_counter(
            "sluice_ws_messages_dropped_total", dropped_help,
            (const char *[]){"stream", stream, "reason", "queue_full", NULL});
        hub->dropped_closed[s] =
            sl_metrics_counter("sluice_ws_messages_dropped_total", dropped_help,
                               (const char *[]){"stream", stream, "reason",
                                                "client_closed", NULL});
    }
    for (int r = 0; r < SKIP_COUNT; r++)
        hub->skipped[r] = sl_metrics_counter(
            "sluice_ws_records_skipped_total",
            "Bus records the WebSocket hub sent to no client, by reason",
            (const char *[]){"reason", skip_names[r], NULL});
}

void sl_ws__count_closed(sl_ws_hub_t *hub, sl_ws_stream_t stream,
                         const char *reason)
{
    (void)hub;
    sl_counter_add(sl_metrics_counter(
                       "sluice_ws_disconnects_total",
                       "WebSocket connections the server closed, by reason",
                       (const char *[]){"stream", sl_ws__stream_name(stream),
                                        "reason", reason, NULL}),
                   1);
}

/* ---- frames ---------------------------------------------------------------
 */

sl_ws_frame_t *sl_ws__frame_create(sl_ws_stream_t stream, const char *json,
                                   size_t len, const char *sensor_id,
                                   const char *location)
{
    size_t id_len = sensor_id != NULL ? strlen(sensor_id) : 0;
    size_t place_len = location != NULL ? strlen(location) : 0;
    sl_ws_frame_t *fr =
        malloc(sizeof(*fr) + FRAME_HEADER_MAX + len + id_len + place_len + 2);
    char *keys;
    size_t h = 0;

    if (fr == NULL)
        return NULL;
    memset(fr, 0, sizeof(*fr));
    fr->refs = 1;
    fr->stream = stream;
    fr->sensor_type = -1;
    fr->severity = -1;

    /* A server's frames are not masked (RFC 6455, section 5.1). */
    fr->data[h++] = 0x81; /* FIN, text */
    if (len < 126) {
        fr->data[h++] = (unsigned char)len;
    } else if (len <= 0xFFFF) {
        fr->data[h++] = 126;
        fr->data[h++] = (unsigned char)(len >> 8);
        fr->data[h++] = (unsigned char)len;
    } else {
        fr->data[h++] = 127;
        for (int i = 7; i >= 0; i--)
            fr->data[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    memcpy(fr->data + h, json, len);
    fr->len = (uint32_t)(h + len);

    keys = (char *)fr->data + fr->len;
    memcpy(keys, sensor_id != NULL ? sensor_id : "", id_len + 1);
    fr->sensor_id = keys;
    memcpy(keys + id_len + 1, location != NULL ? location : "", place_len + 1);
    fr->location = keys + id_len + 1;
    fr->sensor_id_hash = sl_ws__hash(fr->sensor_id);
    fr->location_hash = sl_ws__hash(fr->location);
    return fr;
}

/* Drops one reference; frees the frame at zero. Under hub->lock, or
 * before the frame was shared. */
static void frame_release(sl_ws_frame_t *fr)
{
    if (--fr->refs == 0)
        free(fr);
}

/* ---- clients --------------------------------------------------------------
 */

sl_ws_client_t *sl_ws__join(sl_ws_hub_t *hub, sl_ws_stream_t stream,
                            const sl_ws_filter_t *f, struct lws *wsi, int *rc)
{
    sl_ws_client_t *c;

    pthread_mutex_lock(&hub->lock);
    if (hub->client_count >= (size_t)hub->cfg.max_clients) {
        pthread_mutex_unlock(&hub->lock);
        *rc = SL_EFULL;
        return NULL;
    }
    pthread_mutex_unlock(&hub->lock);

    c = calloc(1, sizeof(*c));
    if (c != NULL)
        c->ring = calloc((size_t)hub->cfg.queue_messages, sizeof(*c->ring));
    if (c == NULL || c->ring == NULL) {
        free(c);
        *rc = SL_ENOMEM;
        return NULL;
    }
    c->wsi = wsi;
    c->stream = stream;
    c->filter = *f;
    c->cap = (uint32_t)hub->cfg.queue_messages;

    /* Only the service thread adds clients, so the count checked above
     * still holds. */
    pthread_mutex_lock(&hub->lock);
    c->index = hub->client_count;
    hub->clients[hub->client_count++] = c;
    pthread_mutex_unlock(&hub->lock);
    atomic_fetch_add(&hub->followers[stream], 1);
    sl_gauge_add(hub->clients_gauge[stream], 1);
    *rc = SL_OK;
    return c;
}

void sl_ws__leave(sl_ws_hub_t *hub, sl_ws_client_t *c)
{
    uint32_t lost;

    if (c == NULL)
        return;
    pthread_mutex_lock(&hub->lock);
    atomic_fetch_sub(&hub->followers[c->stream], 1);
    hub->clients[c->index] = hub->clients[--hub->client_count];
    hub->clients[c->index]->index = c->index;
    lost = c->count;
    for (uint32_t i = 0; i < c->count; i++)
        frame_release(c->ring[(c->head + i) % c->cap]);
    pthread_mutex_unlock(&hub->lock);

    sl_counter_add(hub->dropped_closed[c->stream], lost);
    sl_gauge_add(hub->clients_gauge[c->stream], -1);
    free(c->ring);
    free(c);
}

void sl_ws__set_filter(sl_ws_hub_t *hub, sl_ws_client_t *c,
                       const sl_ws_filter_t *f)
{
    uint32_t kept = 0;

    pthread_mutex_lock(&hub->lock);
    c->filter = *f;
    /* Frames queued under the old filter that the new one rejects go, so
     * that after the ack the client gets only what it asked for. */
    for (uint32_t i = 0; i < c->count; i++) {
        sl_ws_frame_t *fr = c->ring[(c->head + i) % c->cap];

        if (sl_ws__filter_match(f, fr))
            c->ring[(c->head + kept++) % c->cap] = fr;
        else
            frame_release(fr);
    }
    c->count = kept;
    pthread_mutex_unlock(&hub->lock);
}

void sl_ws__get_filter(sl_ws_hub_t *hub, sl_ws_client_t *c, sl_ws_filter_t *f)
{
    pthread_mutex_lock(&hub->lock);
    *f = c->filter;
    pthread_mutex_unlock(&hub->lock);
}

/* Queues fr for c, dropping the oldest frame when the queue is full. Under
 * hub->lock. Returns the number of frames dropped (0 or 1). */
static unsigned push(sl_ws_hub_t *hub, sl_ws_client_t *c, sl_ws_frame_t *fr,
                     int64_t now_ms)
{
    unsigned dropped = 0;

    if (c->count == c->cap) {
        frame_release(c->ring[c->head]);
        c->head = (c->head + 1) % c->cap;
        c->count--;
        c->dropped_pending++;
        dropped = 1;
        if (c->behind_since_ms == 0)
            c->behind_since_ms = now_ms;
        else if (now_ms - c->behind_since_ms > hub->cfg.stall_ms &&
                 c->close == SL_WS_OPEN)
            c->close = SL_WS_CLOSE_SLOW;
    }
    fr->refs++;
    c->ring[(c->head + c->count) % c->cap] = fr;
    c->count++;
    return dropped;
}

bool sl_ws__publish(sl_ws_hub_t *hub, sl_ws_frame_t **frames, size_t count,
                    int64_t now_ms)
{
    uint64_t dropped[SL_WS_STREAM_COUNT] = {0};
    bool queued = false;

    pthread_mutex_lock(&hub->lock);
    for (size_t i = 0; i < count; i++) {
        sl_ws_frame_t *fr = frames[i];

        for (size_t k = 0; k < hub->client_count; k++) {
            sl_ws_client_t *c = hub->clients[k];

            if (c->stream != fr->stream || c->close != SL_WS_OPEN ||
                !sl_ws__filter_match(&c->filter, fr))
                continue;
            dropped[fr->stream] += push(hub, c, fr, now_ms);
            queued = true;
        }
        frame_release(fr);
        /* Let the service thread drain between slices of a big batch. */
        if (i % PUBLISH_SLICE == PUBLISH_SLICE - 1) {
            pthread_mutex_unlock(&hub->lock);
            pthread_mutex_lock(&hub->lock);
        }
    }
    pthread_mutex_unlock(&hub->lock);

    for (int s = 0; s < SL_WS_STREAM_COUNT; s++)
        sl_counter_add(hub->dropped_full[s], dropped[s]);
    return queued;
}

void sl_ws__pending(sl_ws_hub_t *hub, sl_ws_client_t **wake, size_t max,
                    size_t *wake_count)
{
    size_t n = 0;

    pthread_mutex_lock(&hub->lock);
    for (size_t k = 0; k < hub->client_count && n < max; k++) {
        sl_ws_client_t *c = hub->clients[k];

        if (c->close != SL_WS_OPEN && !c->close_reported) {
            c->close_reported = true;
            wake[n++] = c;
        } else if (c->close == SL_WS_OPEN && !c->wake_requested &&
                   (c->count > 0 || c->dropped_pending > 0)) {
            c->wake_requested = true;
            wake[n++] = c;
        }
    }
    pthread_mutex_unlock(&hub->lock);
    *wake_count = n;
}

/* Writes {"type":"dropped","count":N} as a frame at out. Returns its
 * length, or 0 when it does not fit. */
static size_t dropped_frame(uint64_t count, unsigned char *out, size_t size)
{
    char json[64];
    int len =
        snprintf(json, sizeof(json), "{\"type\":\"dropped\",\"count\":%llu}",
                 (unsigned long long)count);

    if (size < (size_t)len + 2)
        return 0;
    out[0] = 0x81;
    out[1] = (unsigned char)len; /* under 126 bytes */
    memcpy(out + 2, json, (size_t)len);
    return (size_t)len + 2;
}

size_t sl_ws__drain(sl_ws_hub_t *hub, sl_ws_client_t *c, unsigned char *out,
                    size_t out_size, bool *more)
{
    sl_ws_frame_t *done[256];
    size_t used = 0, ndone = 0;

    pthread_mutex_lock(&hub->lock);
    c->wake_requested = false;
    if (c->dropped_pending > 0) {
        size_t n = dropped_frame(c->dropped_pending, out, out_size);
        if (n > 0) {
            used += n;
            c->dropped_pending = 0;
        }
    }
    while (c->count > 0 && ndone < sizeof(done) / sizeof(done[0])) {
        sl_ws_frame_t *fr = c->ring[c->head];

        if (used + fr->len > out_size)
            break;
        memcpy(out + used, fr->data, fr->len);
        used += fr->len;
        c->head = (c->head + 1) % c->cap;
        c->count--;
        done[ndone++] = fr;
    }
    if (c->count == 0)
        c->behind_since_ms = 0;
    *more = c->count > 0 || c->dropped_pending > 0;
    for (size_t i = 0; i < ndone; i++)
        frame_release(done[i]);
    pthread_mutex_unlock(&hub->lock);
    sl_counter_add(hub->sent[c->stream], ndone);
    return used;
}

/* ---- consumer thread ------------------------------------------------------
 */

/* Returns true when an open client of stream has a filter that matches a
 * record with these keys, or with sensor_id_only, one whose sensor_id
 * field takes sensor_id. A filter changed after this check takes effect
 * from the next record, as if the change had arrived a moment later. */
static bool any_follower_matches(sl_ws_hub_t *hub, sl_ws_stream_t stream,
                                 int sensor_type, int severity,
                                 const char *sensor_id, const char *location,
                                 bool sensor_id_only)
{
    sl_ws_frame_t probe = {.stream = stream,
                           .sensor_type = sensor_type,
                           .severity = severity,
                           .sensor_id = sensor_id,
                           .location = location != NULL ? location : ""};
    bool match = false;

    probe.sensor_id_hash = sl_ws__hash(probe.sensor_id);
    probe.location_hash = sl_ws__hash(probe.location);
    pthread_mutex_lock(&hub->lock);
    for (size_t k = 0; k < hub->client_count && !match; k++) {
        const sl_ws_client_t *c = hub->clients[k];

        match =
            c->stream == stream && c->close == SL_WS_OPEN &&
            (sensor_id_only ? sl_ws__filter_takes_sensor(
                                  &c->filter, probe.sensor_id_hash, sensor_id)
                            : sl_ws__filter_match(&c->filter, &probe));
    }
    pthread_mutex_unlock(&hub->lock);
    if (!match)
        sl_counter_add(hub->skipped[SKIP_NO_MATCH], 1);
    return match;
}

/* Renders {"type":T,"data":DATA,"received_at":"..."} around data, which
 * it takes over. Returns the frame, or NULL on OOM. */
static sl_ws_frame_t *render(sl_ws_stream_t stream, json_t *data,
                             int64_t now_ms, const char *sensor_id,
                             const char *location)
{
    json_t *obj = json_object();
    sl_ws_frame_t *fr = NULL;
    char *text;

    if (obj == NULL || data == NULL) {
        json_decref(obj);
        json_decref(data);
        return NULL;
    }
    json_object_set_new(
        obj, "type",
        json_string(stream == SL_WS_SENSORS ? "sensor_reading" : "alert"));
    json_object_set_new(obj, "data", data);
    sl_json_set_time(obj, "received_at", now_ms);
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (text != NULL)
        fr = sl_ws__frame_create(stream, text, strlen(text), sensor_id,
                                 location);
    free(text);
    return fr;
}

static sl_ws_frame_t *reading_frame(sl_ws_hub_t *hub, const sl_msg_t *msg,
                                    int64_t now_ms)
{
    char sensor_id[SL_ID_MAX + 1];
    sl_reading_t rec;
    sl_ws_frame_t *fr;
    sl_decode_err_t derr;

    /* Clients mostly follow a few sensors, and decoding costs more than
     * the rest of the hub's work on a reading. */
    if (sl_reading_peek_sensor_id(hub->decoder, msg->value, msg->value_len,
                                  sensor_id, sizeof(sensor_id)) &&
        !any_follower_matches(hub, SL_WS_SENSORS, -1, -1, sensor_id, NULL,
                              true))
        return NULL;
    derr = sl_reading_decode(hub->decoder, msg->value, msg->value_len, &rec);
    if (derr != SL_DECODE_OK) {
        sl_counter_add(hub->skipped[SKIP_DECODE], 1);
        sl_log_debug(LOG_COMPONENT,
                     "skipping a reading: %s partition=%d "
                     "offset=%lld",
                     sl_decode_err_name(derr), (int)msg->partition,
                     (long long)msg->offset);
        return NULL;
    }
    if (sl_reading_validate(&rec, now_ms) != NULL) {
        sl_counter_add(hub->skipped[SKIP_INVALID], 1);
        return NULL;
    }
    /* Rendering costs more than decoding: only for a record some client
     * takes. Clients that follow a few sensors see most records go here. */
    if (!any_follower_matches(hub, SL_WS_SENSORS, (int)rec.sensor_type, -1,
                              rec.sensor_id, rec.location, false))
        return NULL;
    fr = render(SL_WS_SENSORS, sl_reading_to_json(&rec), now_ms, rec.sensor_id,
                rec.location);
    if (fr != NULL)
        fr->sensor_type = (int)rec.sensor_type;
    return fr;
}

/* Alerts on system-alerts are JSON objects (detector_alerts.c); one that
 * does not parse as an object, or names no sensor, is skipped. */
static sl_ws_frame_t *alert_frame(sl_ws_hub_t *hub, const sl_msg_t *msg,
                                  int64_t now_ms)
{
    json_t *alert = json_loadb(msg->value, msg->value_len, 0, NULL);
    const char *sensor_id =
        json_string_value(json_object_get(alert, "sensor_id"));
    const char *type = json_string_value(json_object_get(alert, "sensor_type"));
    const char *severity =
        json_string_value(json_object_get(alert, "severity"));
    sl_sensor_type_t st;
    int type_symbol, severity_symbol;
    sl_ws_frame_t *fr;

    if (!json_is_object(alert) || sensor_id == NULL ||
        strlen(sensor_id) > SL_WS_VALUE_MAX) {
        sl_counter_add(hub->skipped[SKIP_DECODE], 1);
        json_decref(alert);
        return NULL;
    }
    type_symbol =
        type != NULL && sl_sensor_type_parse(type, &st) == SL_OK ? (int)st : -1;
    severity_symbol = severity != NULL ? sl_ws__severity_parse(severity) : -1;
    if (!any_follower_matches(hub, SL_WS_ALERTS, type_symbol, severity_symbol,
                              sensor_id, NULL, false)) {
        json_decref(alert);
        return NULL;
    }
    fr = render(SL_WS_ALERTS, json_incref(alert), now_ms, sensor_id, NULL);
    if (fr != NULL) {
        fr->sensor_type = type_symbol;
        fr->severity = severity_symbol;
    }
    json_decref(alert);
    return fr;
}

/* Begins a ws.send span for a reading that carries a sampled
 * traceparent. */
static void trace_reading(sl_ws_hub_t *hub, const sl_msg_t *msg)
{
    char parent[SL_TRACEPARENT_LEN + 1];
    const sl_header_t *h;
    sl_span_t *span = &hub->spans[hub->traced_count];

    if (hub->traced_count == TRACED_MAX || !sl_trace_enabled())
        return;
    h = sl_msg_header(msg, SL_TRACEPARENT_HEADER);
    if (h == NULL || !sl_trace_sampled_parent(h->value, h->value_len, parent))
        return;
    sl_span_begin(span, "ws.send", SL_SPAN_CONSUMER, parent);
    sl_span_attr_text(span, "messaging.destination.name", msg->topic);
    hub->traced_count++;
}

/* Ends the poll's ws.send spans once their frames are queued. */
static void trace_end(sl_ws_hub_t *hub, size_t frames, bool queued)
{
    for (size_t k = 0; k < hub->traced_count; k++) {
        sl_span_attr_int(&hub->spans[k], "ws.batch.frames", (int64_t)frames);
        sl_span_attr_int(&hub->spans[k], "ws.queued", queued);
        sl_span_end(&hub->spans[k]);
    }
    hub->traced_count = 0;
}

/* Renders and fans out one polled batch. Returns true when a frame was
 * queued. */
static bool handle_batch(sl_ws_hub_t *hub, size_t n)
{
    int64_t now_ms = sl_time_now_ms();
    size_t count = 0;
    bool queued;

    for (size_t i = 0; i < n; i++) {
        const sl_msg_t *msg = &hub->msgs[i];
        sl_ws_frame_t *fr;

        /* WebSocket clients get live data, never a replay of the log.
         * XXX: sluice run on the Kafka bus starts its new group at the
         * earliest record, so it reads the retained log once to skip it;
         * sluice api requests the latest offsets from Kafka instead. */
        if (msg->timestamp_ms < hub->start_ms) {
            sl_counter_add(hub->skipped[SKIP_OLD], 1);
            continue;
        }
        bool reading = strcmp(msg->topic, SL_TOPIC_SENSOR_READINGS) == 0;
        /* Decoding and rendering cost more than the rest of the pipeline
         * per record; without a client on the stream nothing needs them. */
        if (atomic_load(
                &hub->followers[reading ? SL_WS_SENSORS : SL_WS_ALERTS]) == 0)
            continue;
        if (reading)
            trace_reading(hub, msg);
        fr = reading ? reading_frame(hub, msg, now_ms)
                     : alert_frame(hub, msg, now_ms);
        if (fr != NULL)
            hub->frames[count++] = fr;
    }
    queued = count > 0 && sl_ws__publish(hub, hub->frames, count, now_ms);
    trace_end(hub, count, queued);
    return queued;
}

/* Wakes the service thread, which then requests a writeable callback for
 * every client with frames queued. */
static void wake(sl_ws_hub_t *hub)
{
    struct lws_context *ctx = atomic_load(&hub->ctx);

    if (ctx != NULL)
        lws_cancel_service(ctx);
}

static void *consumer_main(void *arg)
{
    sl_ws_hub_t *hub = arg;
    sl_offsets_t offsets;
    int64_t last_wake_ms = 0;
    bool wake_due = false;
    size_t n = 0;

    while (!atomic_load(&hub->stopping)) {
        int64_t wait_ms = POLL_TIMEOUT_MS;
        int rc;

        if (wake_due) {
            wait_ms = last_wake_ms + WAKE_INTERVAL_MS - sl_time_mono_ms();
            wait_ms = wait_ms < 0 ? 0 : wait_ms;
        }
        rc = sl_consumer_poll(hub->consumer, hub->msgs, POLL_BATCH, &n,
                              (int)wait_ms);
        if (rc == SL_ECLOSED)
            break;
        if (rc == SL_OK && n > 0 && handle_batch(hub, n))
            wake_due = true;
        if (wake_due && sl_time_mono_ms() - last_wake_ms >= WAKE_INTERVAL_MS) {
            wake(hub);
            last_wake_ms = sl_time_mono_ms();
            wake_due = false;
        }
        if (rc != SL_OK || n == 0)
            continue;
        if (hub->cfg.commit_offsets) {
            sl_offsets_clear(&offsets);
            for (size_t i = 0; i < n; i++)
                sl_offsets_add(&offsets, &hub->msgs[i]);
            sl_pipeline_commit(hub->consumer, &offsets, "ws-hub");
        }
    }
    return NULL;
}

/* ---- start and stop -------------------------------------------------------
 */

sl_ws_hub_t *sl_ws__hub_create(const sl_ws_hub_config_t *cfg, char *err,
                               size_t err_size)
{
    sl_ws_hub_t *hub;

    if (cfg->max_clients < 1 || cfg->queue_messages < 16 || cfg->stall_ms < 1) {
        snprintf(err, err_size,
                 "ws hub: max_clients must be at least 1, queue_messages at "
                 "least 16 and stall_ms at least 1");
        return NULL;
    }
    hub = calloc(1, sizeof(*hub));
    if (hub == NULL) {
        snprintf(err, err_size, "ws hub: out of memory");
        return NULL;
    }
    hub->cfg = *cfg;
    if (cfg->group != NULL)
        snprintf(hub->group, sizeof(hub->group), "%s", cfg->group);
    else
        snprintf(hub->group, sizeof(hub->group), "sluice-api-%ld",
                 (long)getpid());
    hub->cfg.group = hub->group;
    hub->clients = calloc((size_t)cfg->max_clients, sizeof(*hub->clients));
    if (hub->clients == NULL) {
        free(hub);
        snprintf(err, err_size, "ws hub: out of memory");
        return NULL;
    }
    pthread_mutex_init(&hub->lock, NULL);
    atomic_init(&hub->ctx, NULL);
    atomic_init(&hub->stopping, false);
    register_metrics(hub);
    return hub;
}

static sl_decoder_t *reading_decoder(sl_registry_t *reg)
{
    const char *json = sl_schema_builtin("sensor_reading.avsc");
    avro_schema_t schema;
    sl_decoder_t *dec;

    if (json == NULL ||
        avro_schema_from_json_length(json, strlen(json), &schema) != 0)
        return NULL;
    dec = sl_decoder_create(reg, schema);
    avro_schema_decref(schema);
    return dec;
}

sl_ws_hub_t *sl_ws_hub_start(const sl_ws_hub_config_t *cfg, char *err,
                             size_t err_size)
{
    const char *topics[] = {SL_TOPIC_SENSOR_READINGS, SL_TOPIC_SYSTEM_ALERTS};
    sl_ws_hub_t *hub;

    if (cfg->bus == NULL || cfg->registry == NULL) {
        snprintf(err, err_size, "ws hub: a bus and a registry are required");
        return NULL;
    }
    hub = sl_ws__hub_create(cfg, err, err_size);
    if (hub == NULL)
        return NULL;
    hub->start_ms = sl_time_now_ms();
    hub->decoder = reading_decoder(cfg->registry);
    if (hub->decoder == NULL) {
        snprintf(err, err_size, "ws hub: cannot build the reading decoder");
        goto fail;
    }
    hub->consumer = sl_consumer_create(cfg->bus, hub->group, topics, 2);
    if (hub->consumer == NULL) {
        snprintf(err, err_size, "ws hub: cannot join group %s", hub->group);
        goto fail;
    }
    if (pthread_create(&hub->thread, NULL, consumer_main, hub) != 0) {
        snprintf(err, err_size, "ws hub: pthread_create failed");
        goto fail;
    }
    hub->thread_started = true;
    sl_log_info(LOG_COMPONENT,
                "WebSocket hub started group=%s max_clients=%d "
                "queue_messages=%d stall_ms=%d",
                hub->group, cfg->max_clients, cfg->queue_messages,
                cfg->stall_ms);
    return hub;

fail:
    sl_ws_hub_stop(hub);
    return NULL;
}

void sl_ws_hub_stop(sl_ws_hub_t *hub)
{
    if (hub == NULL)
        return;
    if (hub->thread_started) {
        atomic_store(&hub->stopping, true);
        pthread_join(hub->thread, NULL);
    }
    sl_consumer_destroy(hub->consumer);
    sl_decoder_destroy(hub->decoder);
    /* The API is stopped first, so every client has left. */
    for (size_t k = 0; k < hub->client_count; k++) {
        sl_ws_client_t *c = hub->clients[k];
        for (uint32_t i = 0; i < c->count; i++)
            frame_release(c->ring[(c->head + i) % c->cap]);
        free(c->ring);
        free(c);
    }
    free(hub->clients);
    pthread_mutex_destroy(&hub->lock);
    free(hub);
}
