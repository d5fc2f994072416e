/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the WebSocket hub shared by hub.c (the consumer thread and
 * the client queues), ws_filter.c (client filters) and ws.c (the
 * libwebsockets protocol). Nothing outside src/api/ and its tests includes
 * this header.
 *
 * Threads: the hub's consumer thread pushes frames into client queues, and
 * the API's service thread creates, drains and frees clients. hub->lock
 * guards the client list, every queue, every filter and the reference
 * counts of frames. A client is freed only by the service thread, so that
 * thread may read a client's own fields without the lock.
 */
#ifndef SLUICE_API_HUB_INT_H
#define SLUICE_API_HUB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/hub.h"

struct lws_context;

/* The streams a client can follow. */
typedef enum sl_ws_stream {
    SL_WS_SENSORS = 0, /* /ws/sensors: sensor-readings */
    SL_WS_ALERTS = 1,  /* /ws/alerts: system-alerts */
    SL_WS_STREAM_COUNT = 2,
} sl_ws_stream_t;

/* Values one filter field may list. */
#define SL_WS_FILTER_VALUES 32

/* Longest filter value, in bytes: the sensor_id and location limits. */
#define SL_WS_VALUE_MAX 255

/* One filter field of free-text values (sensor_id, location). With any
 * set it matches every value; otherwise it matches the listed ones, and an
 * empty list matches nothing. */
typedef struct sl_ws_text_set {
    bool any;
    size_t count;
    uint64_t hash[SL_WS_FILTER_VALUES];
    char value[SL_WS_FILTER_VALUES][SL_WS_VALUE_MAX + 1];
} sl_ws_text_set_t;

/* One filter field of enum symbols (sensor_type, severity): bit i stands
 * for symbol i. */
typedef struct sl_ws_enum_set {
    bool any;
    uint32_t mask;
} sl_ws_enum_set_t;

/* What a client receives. A frame matches when it matches every field. */
typedef struct sl_ws_filter {
    bool paused; /* after {"action":"unsubscribe"} without fields */
    sl_ws_text_set_t sensor_id;
    sl_ws_text_set_t location;    /* sensors only */
    sl_ws_enum_set_t sensor_type; /* bit = sl_sensor_type_t */
    sl_ws_enum_set_t severity;    /* alerts only; bit = sl_ws_severity */
} sl_ws_filter_t;

/* Alert severities, in the order of their bits in a severity filter. */
enum {
    SL_WS_SEVERITY_INFO,
    SL_WS_SEVERITY_WARNING,
    SL_WS_SEVERITY_CRITICAL,
    SL_WS_SEVERITY_COUNT
};

/* A rendered WebSocket text frame, shared by the queues that hold it. */
typedef struct sl_ws_frame {
    uint32_t refs; /* queues holding it plus the builder; under hub->lock */
    uint32_t len;  /* bytes in data: frame header and JSON payload */
    sl_ws_stream_t stream;
    int sensor_type;     /* sl_sensor_type_t, or -1 when unknown */
    int severity;        /* alerts; -1 when unknown */
    int64_t received_ms; /* when the hub read the record */
    uint64_t sensor_id_hash;
    uint64_t location_hash;
    const char *sensor_id; /* in the same allocation, after data */
    const char *location;
    unsigned char data[]; /* the frame as it goes on the wire */
} sl_ws_frame_t;

/* Why a client is being closed by the hub. */
typedef enum sl_ws_close {
    SL_WS_OPEN = 0,
    SL_WS_CLOSE_SLOW = 1, /* lost frames for longer than stall_ms */
} sl_ws_close_t;

/* One connected client: its queue and its filter. */
typedef struct sl_ws_client {
    struct lws *wsi; /* service thread only */
    sl_ws_stream_t stream;
    sl_ws_filter_t filter; /* under hub->lock */
    /* The queue, a ring of cap frames; under hub->lock. */
    sl_ws_frame_t **ring;
    uint32_t cap, head, count;
    uint64_t dropped_pending; /* lost since the last "dropped" message */
    int64_t behind_since_ms;  /* first loss since the queue was empty */
    sl_ws_close_t close;      /* set by the consumer thread */
    bool wake_requested;      /* a writeable callback is due */
    bool close_reported;      /* sl_ws__pending returned the close */
    size_t index;             /* in hub->clients */
} sl_ws_client_t;

/* ---- hub.c --------------------------------------------------------------- */

/** Computes the hash the filters and frames compare first (FNV-1a). */
uint64_t sl_ws__hash(const char *text);

/**
 * Registers a client of stream with the filter f, woken through ctx.
 * Returns the client, or NULL when the hub already has max_clients
 * (SL_EFULL in *rc) or memory runs out (SL_ENOMEM). Service thread only.
 */
sl_ws_client_t *sl_ws__join(sl_ws_hub_t *hub, sl_ws_stream_t stream,
                            const sl_ws_filter_t *f, struct lws *wsi, int *rc);

/** Unregisters a client and frees it with its queue. Accepts NULL.
 * Service thread only. */
void sl_ws__leave(sl_ws_hub_t *hub, sl_ws_client_t *c);

/** Replaces a client's filter under the hub's lock, and removes the
 * queued frames the new filter rejects. */
void sl_ws__set_filter(sl_ws_hub_t *hub, sl_ws_client_t *c,
                       const sl_ws_filter_t *f);

/** Copies a client's filter under the hub's lock. OUT: *f. */
void sl_ws__get_filter(sl_ws_hub_t *hub, sl_ws_client_t *c, sl_ws_filter_t *f);

/**
 * Moves queued frames of c into out, whole frames only, up to out_size
 * bytes, and counts them as sent. A pending "dropped" message goes first.
 * OUT: *more is true when frames remain queued. Returns the bytes written.
 * Service thread only.
 */
size_t sl_ws__drain(sl_ws_hub_t *hub, sl_ws_client_t *c, unsigned char *out,
                    size_t out_size, bool *more);

/**
 * Collects the clients that have frames queued and no writeable callback
 * requested yet, and the clients the hub decided to close. OUT:
 * wake[0..*wake_count), up to max. Service thread only.
 */
void sl_ws__pending(sl_ws_hub_t *hub, sl_ws_client_t **wake, size_t max,
                    size_t *wake_count);

/** Returns the hub's settings. */
const sl_ws_hub_config_t *sl_ws__config(const sl_ws_hub_t *hub);

/** Lets the consumer thread wake the service thread of ctx. */
void sl_ws__set_context(sl_ws_hub_t *hub, struct lws_context *ctx);

/** Counts a connection the hub closed or rejected, by reason label. */
void sl_ws__count_closed(sl_ws_hub_t *hub, sl_ws_stream_t stream,
                         const char *reason);

/**
 * Renders a frame for stream from a JSON payload of len bytes, copying
 * it and the filter keys sensor_id and location (NULL for none). Returns
 * NULL when memory runs out. The caller holds one reference.
 */
sl_ws_frame_t *sl_ws__frame_create(sl_ws_stream_t stream, const char *json,
                                   size_t len, const char *sensor_id,
                                   const char *location);

/**
 * Fans frames out: pushes each into the queue of every client of its
 * stream whose filter matches. Drops one reference of each frame (the
 * builder's). Returns true when a frame was queued; the caller then wakes
 * the service thread. Consumer thread, or tests.
 */
bool sl_ws__publish(sl_ws_hub_t *hub, sl_ws_frame_t **frames, size_t count,
                    int64_t now_ms);

/**
 * Creates a hub without a consumer thread, for tests that publish frames
 * themselves. cfg->bus may be NULL.
 */
sl_ws_hub_t *sl_ws__hub_create(const sl_ws_hub_config_t *cfg, char *err,
                               size_t err_size);

/* ---- ws_filter.c --------------------------------------------------------- */

/** Sets f to match everything of stream. */
void sl_ws__filter_init(sl_ws_filter_t *f);

/** Returns true when frame fr passes filter f. */
bool sl_ws__filter_match(const sl_ws_filter_t *f, const sl_ws_frame_t *fr);

/** Returns false when f matches no frame of this sensor, judged by the
 * sensor_id field alone; hash is sl_ws__hash(sensor_id). */
bool sl_ws__filter_takes_sensor(const sl_ws_filter_t *f, uint64_t hash,
                                const char *sensor_id);

/**
 * Applies one query-string parameter of a stream's URL to f: sensor_id,
 * sensor_type and location for sensors, sensor_id, sensor_type and
 * severity for alerts. Enum values may be comma-separated; a repeated
 * name adds values. Returns SL_OK, or SL_EINVAL with a message in err.
 */
int sl_ws__filter_param(sl_ws_filter_t *f, sl_ws_stream_t stream,
                        const char *name, const char *value, char *err,
                        size_t err_size);

/**
 * Handles one control message of a client, text of len bytes, updating
 * *f. OUT: *reply, a NUL-terminated JSON text (heap; free()) of type
 * "ack" or "error". Returns SL_OK, or SL_ENOMEM with *reply NULL.
 */
int sl_ws__control(sl_ws_filter_t *f, sl_ws_stream_t stream, const char *text,
                   size_t len, char **reply);

/** Renders f as a new JSON object, or NULL on OOM. */
struct json_t *sl_ws__filter_object(const sl_ws_filter_t *f,
                                    sl_ws_stream_t stream);

/** Renders f as a JSON object text (heap; free()), or NULL on OOM. */
char *sl_ws__filter_json(const sl_ws_filter_t *f, sl_ws_stream_t stream);

/** Returns the name of a stream ("sensors", "alerts"). */
const char *sl_ws__stream_name(sl_ws_stream_t stream);

/** Parses a severity symbol. Returns the SL_WS_SEVERITY_* or -1. */
int sl_ws__severity_parse(const char *name);

#endif
