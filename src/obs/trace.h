/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Process-wide tracing: spans exported as OTLP/HTTP JSON (OpenTelemetry
 * protocol, POST /v1/traces) to a collector such as Jaeger on port 4318.
 *
 * sl_trace_start() starts one exporter thread. Finished spans go to a
 * bounded queue that the thread drains in batches, so a span costs its
 * caller a lock and a copy, never a network call. When the queue is full
 * or the collector cannot be reached, spans are dropped and counted in
 * sluice_trace_spans_dropped_total{reason}, so no caller waits for the
 * network.
 *
 * Sampling is parent-based: a span whose parent came in a W3C traceparent
 * keeps the parent's decision, and a root span is sampled with the
 * configured ratio. With tracing off (not started, or ratio 0 and no
 * sampled parent) sl_span_begin() only fills in ids, and sl_span_end()
 * does nothing.
 *
 * A reading is one trace from producer to WebSocket. The publisher begins
 * a "produce" span per sampled record and puts its traceparent in the bus
 * record's "traceparent" header. That span is a root span, or a child of
 * the calling thread's current span, such as an HTTP ingest request's. The
 * processor ("process", then "store.write"), the detector ("detect") and
 * the WebSocket hub ("ws.send") each consume the record themselves, so
 * each continues the producer's span from the header. An unsampled
 * record carries no header.
 *
 * XXX: the DLQ handler opens no span yet, so a dead-lettered record's
 * retry is not part of its trace.
 */
#ifndef SLUICE_OBS_TRACE_H
#define SLUICE_OBS_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_SPAN_NAME_MAX 64
#define SL_SPAN_ATTR_MAX 8
#define SL_SPAN_TEXT_MAX 128  /* attribute values and status messages */
#define SL_TRACEPARENT_LEN 55 /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define SL_TRACEPARENT_HEADER "traceparent" /* bus header name */

typedef struct sl_trace_config {
    /* Full URL of the collector's traces endpoint, such as
     * http://127.0.0.1:4318/v1/traces. */
    const char *endpoint;
    const char *service_name; /* resource attribute service.name */
    double sample_ratio;      /* of root spans, 0..1 */
    size_t queue_capacity;    /* finished spans waiting for export */
    size_t batch_size;        /* spans per POST, at most */
    int flush_interval_ms;    /* maximum wait before a partial batch */
    int timeout_ms;           /* per POST */
} sl_trace_config_t;

/* OTLP span kinds, with OTLP's numbers. */
typedef enum sl_span_kind {
    SL_SPAN_INTERNAL = 1,
    SL_SPAN_SERVER = 2,
    SL_SPAN_CLIENT = 3,
    SL_SPAN_PRODUCER = 4,
    SL_SPAN_CONSUMER = 5,
} sl_span_kind_t;

typedef struct sl_span_attr {
    char key[32];
    bool is_int;
    int64_t int_value;
    char text[SL_SPAN_TEXT_MAX];
} sl_span_attr_t;

/* One span, on the caller's stack from begin to end. */
typedef struct sl_span {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_id[8];
    bool has_parent;
    bool sampled; /* recorded and exported when true */
    sl_span_kind_t kind;
    char name[SL_SPAN_NAME_MAX];
    int64_t start_unix_ns;
    int64_t end_unix_ns;
    bool error;
    char status_message[SL_SPAN_TEXT_MAX];
    size_t attr_count;
    sl_span_attr_t attrs[SL_SPAN_ATTR_MAX];
} sl_span_t;

/** Fills cfg with the defaults: no endpoint, ratio 0, a queue of 2048
 * spans, batches of 256, a 1 s flush interval and a 2 s timeout. */
void sl_trace_config_init(sl_trace_config_t *cfg);

/**
 * Starts the exporter. Returns SL_OK, or SL_EINVAL with the reason in err
 * when the endpoint is not an http:// or https:// URL, the ratio is
 * outside 0..1 or a size is 0, or SL_ENOMEM/SL_EIO. Call once; a second
 * call returns SL_EBUSY until sl_trace_stop().
 */
int sl_trace_start(const sl_trace_config_t *cfg, char *err, size_t err_size);

/**
 * Starts tracing with the defaults of sl_trace_config_init() and the given
 * endpoint, service name and ratio, or does nothing and returns SL_OK when
 * endpoint is empty. Errors as sl_trace_start().
 */
int sl_trace_start_endpoint(const char *endpoint, const char *service_name,
                            double sample_ratio, char *err, size_t err_size);

/** Exports what is queued, within one timeout per POST, stops the thread
 * and frees the exporter. Safe to call when tracing never started. */
void sl_trace_stop(void);

/**
 * Begins span name (truncated to SL_SPAN_NAME_MAX - 1 bytes). traceparent
 * is the parent's W3C header value or NULL for a root span; an invalid
 * value starts a root span. Returns span->sampled.
 */
bool sl_span_begin(sl_span_t *span, const char *name, sl_span_kind_t kind,
                   const char *traceparent);

/** Adds a string or integer attribute; ignored past SL_SPAN_ATTR_MAX or
 * when the span is not sampled. Values are truncated to fit. */
void sl_span_attr_text(sl_span_t *span, const char *key, const char *value);
void sl_span_attr_int(sl_span_t *span, const char *key, int64_t value);

/** Marks the span failed with message. */
void sl_span_set_error(sl_span_t *span, const char *message);

/** Ends the span and queues it for export when sampled. */
void sl_span_end(sl_span_t *span);

/**
 * Writes the span's W3C traceparent, to put in an outgoing message's
 * headers. out needs SL_TRACEPARENT_LEN + 1 bytes.
 */
void sl_span_traceparent(const sl_span_t *span, char *out);

/**
 * Parses a W3C traceparent of version 00. OUT: trace_id, span_id,
 * *sampled. Returns false for anything else, including all-zero ids.
 */
bool sl_traceparent_parse(const char *text, uint8_t trace_id[16],
                          uint8_t span_id[8], bool *sampled);

/** Returns true while the exporter runs. Lock-free: per-record code
 * checks it before any other tracing work. */
bool sl_trace_enabled(void);

/**
 * Reads a traceparent carried in a bus header (len bytes, not
 * NUL-terminated). OUT: out, SL_TRACEPARENT_LEN + 1 bytes, the value.
 * Returns true when tracing is on and the value is a valid, sampled
 * traceparent; false otherwise, and out is then unspecified.
 */
bool sl_trace_sampled_parent(const void *value, size_t len, char *out);

/**
 * Makes span the calling thread's current span, which code deeper in the
 * same call (the publisher) continues; NULL clears it. span is borrowed
 * and must stay valid until cleared.
 */
void sl_trace_set_current(const sl_span_t *span);

/** OUT: out, SL_TRACEPARENT_LEN + 1 bytes, the calling thread's current
 * span's traceparent, sampled or not, so that a child keeps its decision.
 * Returns false, leaving out alone, when there is no current span. */
bool sl_trace_current_parent(char *out);

#endif
