/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OTLP/HTTP JSON span exporter (see trace.h). Finished spans wait in a
 * ring buffer guarded by one mutex. The exporter thread takes up to
 * batch_size of them at a time, renders one ExportTraceServiceRequest in
 * the protocol's JSON mapping and POSTs it with libcurl. That mapping
 * writes ids as lowercase hex and 64-bit integers as decimal strings. A batch
 * the collector does not accept with a 2xx status is dropped, not retried: a
 * collector that is away would otherwise fill the queue and hold memory for
 * spans nobody may read.
 */
#include "obs/trace.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "obs/metrics.h"
#include "util/err.h"
#include "util/log.h"
#include "util/rng.h"

typedef struct exporter {
    sl_trace_config_t cfg;
    char *endpoint;
    char *service_name;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    sl_span_t *queue; /* ring of cfg.queue_capacity */
    size_t head;      /* index of the oldest span */
    size_t count;
    bool stopping;
    pthread_t thread;

    sl_span_t *batch; /* the exporter thread's copy of one batch */
    CURL *curl;
    bool failing; /* the last POST failed; logged once until recovery */

    sl_counter_t *exported;
    sl_counter_t *dropped_full;
    sl_counter_t *dropped_failed;
} exporter_t;

static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static exporter_t *exporter;
/* Read by sl_span_begin() without a lock: set only after exporter and
 * sample_ratio are ready, cleared before the exporter is freed. */
static atomic_bool tracing_on;
static double sample_ratio;

/* ---- ids ---------------------------------------------------------------- */

static void random_bytes(uint8_t *out, size_t n)
{
    static _Thread_local sl_rng_t rng;
    static _Thread_local bool seeded;

    if (!seeded) {
        uint64_t seed = 0;
        /* getrandom() with no flags waits only until the kernel's pool is
         * initialised once after boot; the clock is a fallback. */
        if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
            seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&seed;
        sl_rng_seed(&rng, seed);
        seeded = true;
    }
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = sl_rng_next(&rng);
        size_t take = n - i < 8 ? n - i : 8;
        memcpy(out + i, &v, take);
    }
}

static bool all_zero(const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (bytes[i] != 0)
            return false;
    }
    return true;
}

/* A valid id is never all zeros, in W3C Trace Context and in OTLP. */
static void random_id(uint8_t *out, size_t n)
{
    do
        random_bytes(out, n);
    while (all_zero(out, n));
}

static void to_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Parses exactly 2n lowercase hex digits. */
static bool from_hex(const char *text, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < 2 * n; i++) {
        char c = text[i];
        int v;

        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else
            return false;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return true;
}

bool sl_traceparent_parse(const char *text, uint8_t trace_id[16],
                          uint8_t span_id[8], bool *sampled)
{
    uint8_t flags;

    /* 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags> */
    if (text == NULL || strlen(text) != SL_TRACEPARENT_LEN ||
        strncmp(text, "00-", 3) != 0 || text[35] != '-' || text[52] != '-')
        return false;
    if (!from_hex(text + 3, 16, trace_id) || !from_hex(text + 36, 8, span_id) ||
        !from_hex(text + 53, 1, &flags))
        return false;
    if (all_zero(trace_id, 16) || all_zero(span_id, 8))
        return false;
    *sampled = (flags & 1) != 0;
    return true;
}

void sl_span_traceparent(const sl_span_t *span, char *out)
{
    char trace[33], id[17];

    to_hex(span->trace_id, 16, trace);
    to_hex(span->span_id, 8, id);
    snprintf(out, SL_TRACEPARENT_LEN + 1, "00-%s-%s-%s", trace, id,
             span->sampled ? "01" : "00");
}

/* ---- spans -------------------------------------------------------------- */

static int64_t unix_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool sl_span_begin(sl_span_t *span, const char *name, sl_span_kind_t kind,
                   const char *traceparent)
{
    bool on = atomic_load_explicit(&tracing_on, memory_order_acquire);
    bool parent_sampled = false;

    memset(span, 0, sizeof(*span));
    snprintf(span->name, sizeof(span->name), "%s", name);
    span->kind = kind;
    if (traceparent != NULL &&
        sl_traceparent_parse(traceparent, span->trace_id, span->parent_id,
                             &parent_sampled)) {
        span->has_parent = true;
        span->sampled = on && parent_sampled;
    } else {
        uint64_t draw;

        random_id(span->trace_id, sizeof(span->trace_id));
        random_bytes((uint8_t *)&draw, sizeof(draw));
        /* The top 53 bits as a uniform double in [0, 1). */
        span->sampled = on && (double)(draw >> 11) * 0x1.0p-53 < sample_ratio;
    }
    random_id(span->span_id, sizeof(span->span_id));
    span->start_unix_ns = unix_ns();
    return span->sampled;
}

static sl_span_attr_t *next_attr(sl_span_t *span, const char *key)
{
    sl_span_attr_t *attr;

    if (!span->sampled || span->attr_count == SL_SPAN_ATTR_MAX)
        return NULL;
    attr = &span->attrs[span->attr_count++];
    snprintf(attr->key, sizeof(attr->key), "%s", key);
    return attr;
}

void sl_span_attr_text(sl_span_t *span, const char *key, const char *value)
{
    sl_span_attr_t *attr = next_attr(span, key);

    if (attr != NULL)
        snprintf(attr->text, sizeof(attr->text), "%s", value);
}

void sl_span_attr_int(sl_span_t *span, const char *key, int64_t value)
{
    sl_span_attr_t *attr = next_attr(span, key);

    if (attr != NULL) {
        attr->is_int = true;
        attr->int_value = value;
    }
}

void sl_span_set_error(sl_span_t *span, const char *message)
{
    span->error = true;
    snprintf(span->status_message, sizeof(span->status_message), "%s", message);
}

void sl_span_end(sl_span_t *span)
{
    exporter_t *ex;

    if (!span->sampled)
        return;
    span->end_unix_ns = unix_ns();

    pthread_mutex_lock(&start_lock);
    ex = exporter;
    if (ex != NULL) {
        pthread_mutex_lock(&ex->lock);
        if (ex->count == ex->cfg.queue_capacity) {
            sl_counter_add(ex->dropped_full, 1);
        } else {
            size_t tail = (ex->head + ex->count) % ex->cfg.queue_capacity;
            ex->queue[tail] = *span;
            if (++ex->count >= ex->cfg.batch_size)
                pthread_cond_signal(&ex->wake);
        }
        pthread_mutex_unlock(&ex->lock);
    }
    pthread_mutex_unlock(&start_lock);
}

bool sl_trace_enabled(void)
{
    return atomic_load_explicit(&tracing_on, memory_order_relaxed);
}

bool sl_trace_sampled_parent(const void *value, size_t len, char *out)
{
    uint8_t trace_id[16], span_id[8];
    bool sampled = false;

    if (!sl_trace_enabled() || value == NULL || len != SL_TRACEPARENT_LEN)
        return false;
    memcpy(out, value, len);
    out[len] = '\0';
    return sl_traceparent_parse(out, trace_id, span_id, &sampled) && sampled;
}

static _Thread_local const sl_span_t *current_span;

void sl_trace_set_current(const sl_span_t *span)
{
    current_span = span;
}

bool sl_trace_current_parent(char *out)
{
    if (current_span == NULL)
        return false;
    sl_span_traceparent(current_span, out);
    return true;
}

/* ---- OTLP JSON ---------------------------------------------------------- */

static json_t *string_attr(const char *key, const char *value)
{
    return json_pack("{s:s, s:{s:s}}", "key", key, "value", "stringValue",
                     value);
}

static json_t *span_json(const sl_span_t *span)
{
    char trace[33], id[17], parent[17], start[24], end[24];
    json_t *attrs = json_array();
    json_t *obj;

    to_hex(span->trace_id, 16, trace);
    to_hex(span->span_id, 8, id);
    snprintf(start, sizeof(start), "%lld", (long long)span->start_unix_ns);
    snprintf(end, sizeof(end), "%lld", (long long)span->end_unix_ns);
    for (size_t i = 0; i < span->attr_count; i++) {
        const sl_span_attr_t *a = &span->attrs[i];
        char number[24];

        if (a->is_int) {
            snprintf(number, sizeof(number), "%lld", (long long)a->int_value);
            json_array_append_new(attrs,
                                  json_pack("{s:s, s:{s:s}}", "key", a->key,
                                            "value", "intValue", number));
        } else {
            json_array_append_new(attrs, string_attr(a->key, a->text));
        }
    }
    /* Status codes: 0 unset, 2 error. */
    obj = json_pack(
        "{s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:{s:i, s:s}}", "traceId", trace,
        "spanId", id, "name", span->name, "kind", (int)span->kind,
        "startTimeUnixNano", start, "endTimeUnixNano", end, "attributes", attrs,
        "status", "code", span->error ? 2 : 0, "message", span->status_message);
    if (obj != NULL && span->has_parent) {
        to_hex(span->parent_id, 8, parent);
        json_object_set_new(obj, "parentSpanId", json_string(parent));
    }
    return obj;
}

/* Renders one ExportTraceServiceRequest. Returns NULL on OOM. */
static char *request_json(const exporter_t *ex, const sl_span_t *spans,
                          size_t n)
{
    json_t *list = json_array();
    json_t *root;
    char *text;

    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, span_json(&spans[i]));
    root = json_pack("{s:[{s:{s:[o]}, s:[{s:{s:s}, s:o}]}]}", "resourceSpans",
                     "resource", "attributes",
                     string_attr("service.name", ex->service_name),
                     "scopeSpans", "scope", "name", "sluice", "spans", list);
    if (root == NULL)
        return NULL;
    text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

static size_t discard_body(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

/* POSTs the batch. Returns true when the collector accepted it. */
static bool post_batch(exporter_t *ex, size_t n)
{
    struct curl_slist *headers = NULL;
    char *body = request_json(ex, ex->batch, n);
    long status = 0;
    CURLcode rc;

    if (body == NULL)
        return false;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(ex->curl, CURLOPT_URL, ex->endpoint);
    curl_easy_setopt(ex->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(ex->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(ex->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(ex->curl, CURLOPT_TIMEOUT_MS, (long)ex->cfg.timeout_ms);
    curl_easy_setopt(ex->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(ex->curl, CURLOPT_WRITEFUNCTION, discard_body);
    rc = curl_easy_perform(ex->curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(ex->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    free(body);

    if (rc == CURLE_OK && status >= 200 && status < 300) {
        if (ex->failing)
            sl_log_info("trace", "collector reachable again endpoint=%s",
                        ex->endpoint);
        ex->failing = false;
        return true;
    }
    /* Logged once per outage; the drop counter shows its extent. */
    if (!ex->failing)
        sl_log_warn("trace",
                    "span export failed, dropping spans until the "
                    "collector responds endpoint=%s: %s",
                    ex->endpoint,
                    rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP error");
    if (rc == CURLE_OK)
        sl_log_debug("trace", "collector status=%ld", status);
    ex->failing = true;
    return false;
}

/* Takes up to batch_size spans off the queue into ex->batch, waiting for
 * a full batch, the flush interval or stop. Returns the count; 0 means
 * stopping with an empty queue. */
static struct timespec deadline_after(int ms)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    return t;
}

static size_t take_batch(exporter_t *ex)
{
    struct timespec deadline = deadline_after(ex->cfg.flush_interval_ms);
    size_t n;

    pthread_mutex_lock(&ex->lock);
    while (ex->count < ex->cfg.batch_size && !ex->stopping) {
        bool timed_out =
            pthread_cond_timedwait(&ex->wake, &ex->lock, &deadline) != 0;
        if (timed_out && ex->count > 0)
            break;     /* the flush interval is over */
        if (timed_out) /* nothing to flush: start a new interval */
            deadline = deadline_after(ex->cfg.flush_interval_ms);
    }
    n = ex->count < ex->cfg.batch_size ? ex->count : ex->cfg.batch_size;
    for (size_t i = 0; i < n; i++)
        ex->batch[i] = ex->queue[(ex->head + i) % ex->cfg.queue_capacity];
    ex->head = (ex->head + n) % ex->cfg.queue_capacity;
    ex->count -= n;
    pthread_mutex_unlock(&ex->lock);
    return n;
}

static void *export_main(void *arg)
{
    exporter_t *ex = arg;

    for (;;) {
        size_t n = take_batch(ex);

        if (n == 0)
            return NULL;
        if (post_batch(ex, n))
            sl_counter_add(ex->exported, n);
        else
            sl_counter_add(ex->dropped_failed, n);
    }
}

/* ---- start and stop ----------------------------------------------------- */

void sl_trace_config_init(sl_trace_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->endpoint = "";
    cfg->service_name = "sluice";
    cfg->queue_capacity = 2048;
    cfg->batch_size = 256;
    cfg->flush_interval_ms = 1000;
    cfg->timeout_ms = 2000;
}

static int check_config(const sl_trace_config_t *cfg, char *err,
                        size_t err_size)
{
    if (cfg->endpoint == NULL || (strncmp(cfg->endpoint, "http://", 7) != 0 &&
                                  strncmp(cfg->endpoint, "https://", 8) != 0)) {
        snprintf(err, err_size,
                 "trace endpoint '%s' is not an http:// or https:// URL, "
                 "such as http://127.0.0.1:4318/v1/traces",
                 cfg->endpoint != NULL ? cfg->endpoint : "");
        return SL_EINVAL;
    }
    if (!(cfg->sample_ratio >= 0 && cfg->sample_ratio <= 1)) {
        snprintf(err, err_size, "trace sample ratio %g is outside 0..1",
                 cfg->sample_ratio);
        return SL_EINVAL;
    }
    if (cfg->queue_capacity == 0 || cfg->batch_size == 0 ||
        cfg->flush_interval_ms <= 0 || cfg->timeout_ms <= 0) {
        snprintf(err, err_size,
                 "trace queue, batch, interval and timeout "
                 "must be above 0");
        return SL_EINVAL;
    }
    return SL_OK;
}

static void exporter_free(exporter_t *ex)
{
    if (ex == NULL)
        return;
    if (ex->curl != NULL)
        curl_easy_cleanup(ex->curl);
    pthread_cond_destroy(&ex->wake);
    pthread_mutex_destroy(&ex->lock);
    free(ex->queue);
    free(ex->batch);
    free(ex->endpoint);
    free(ex->service_name);
    free(ex);
}

static exporter_t *exporter_create(const sl_trace_config_t *cfg)
{
    exporter_t *ex = calloc(1, sizeof(*ex));

    if (ex == NULL)
        return NULL;
    pthread_mutex_init(&ex->lock, NULL);
    pthread_cond_init(&ex->wake, NULL);
    ex->cfg = *cfg;
    ex->endpoint = strdup(cfg->endpoint);
    ex->service_name =
        strdup(cfg->service_name != NULL ? cfg->service_name : "sluice");
    ex->queue = calloc(cfg->queue_capacity, sizeof(*ex->queue));
    ex->batch = calloc(cfg->batch_size, sizeof(*ex->batch));
    ex->curl = curl_easy_init();
    if (ex->endpoint == NULL || ex->service_name == NULL || ex->queue == NULL ||
        ex->batch == NULL || ex->curl == NULL) {
        exporter_free(ex);
        return NULL;
    }
    ex->exported = sl_metrics_counter("sluice_trace_spans_exported_total",
                                      "Spans the collector accepted", NULL);
    ex->dropped_full = sl_metrics_counter(
        "sluice_trace_spans_dropped_total", "Spans dropped before export",
        (const char *[]){"reason", "queue_full", NULL});
    ex->dropped_failed = sl_metrics_counter(
        "sluice_trace_spans_dropped_total", "Spans dropped before export",
        (const char *[]){"reason", "export_failed", NULL});
    return ex;
}

int sl_trace_start(const sl_trace_config_t *cfg, char *err, size_t err_size)
{
    exporter_t *ex;
    int rc = check_config(cfg, err, err_size);

    if (rc != SL_OK)
        return rc;
    pthread_mutex_lock(&start_lock);
    if (exporter != NULL) {
        pthread_mutex_unlock(&start_lock);
        snprintf(err, err_size, "tracing is already started");
        return SL_EBUSY;
    }
    ex = exporter_create(cfg);
    if (ex == NULL) {
        pthread_mutex_unlock(&start_lock);
        snprintf(err, err_size, "out of memory");
        return SL_ENOMEM;
    }
    if (pthread_create(&ex->thread, NULL, export_main, ex) != 0) {
        exporter_free(ex);
        pthread_mutex_unlock(&start_lock);
        snprintf(err, err_size, "cannot start the span exporter thread");
        return SL_EIO;
    }
    exporter = ex;
    sample_ratio = cfg->sample_ratio;
    atomic_store_explicit(&tracing_on, true, memory_order_release);
    pthread_mutex_unlock(&start_lock);
    sl_log_info("trace", "exporting spans endpoint=%s sample_ratio=%g",
                cfg->endpoint, cfg->sample_ratio);
    return SL_OK;
}

int sl_trace_start_endpoint(const char *endpoint, const char *service_name,
                            double sample_ratio, char *err, size_t err_size)
{
    sl_trace_config_t cfg;

    if (endpoint == NULL || endpoint[0] == '\0')
        return SL_OK;
    sl_trace_config_init(&cfg);
    cfg.endpoint = endpoint;
    cfg.service_name = service_name;
    cfg.sample_ratio = sample_ratio;
    return sl_trace_start(&cfg, err, err_size);
}

void sl_trace_stop(void)
{
    exporter_t *ex;

    /* Spans ended from now on find no exporter and are not queued. */
    pthread_mutex_lock(&start_lock);
    atomic_store_explicit(&tracing_on, false, memory_order_release);
    ex = exporter;
    exporter = NULL;
    pthread_mutex_unlock(&start_lock);
    if (ex == NULL)
        return;

    pthread_mutex_lock(&ex->lock);
    ex->stopping = true;
    pthread_cond_signal(&ex->wake);
    pthread_mutex_unlock(&ex->lock);
    pthread_join(ex->thread, NULL);
    exporter_free(ex);
}
