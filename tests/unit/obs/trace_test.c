/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the OTLP/HTTP JSON span exporter against a capture collector
 * that this test runs on loopback: what it POSTs, parent-based sampling,
 * drops when the collector is away or the queue is full, and W3C
 * traceparent parsing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "obs/metrics.h"
#include "obs/trace.h"
#include "util/err.h"
#include "util/timeutil.h"

#define MAX_REQUESTS 16

/* ---- capture collector -------------------------------------------------- */

typedef struct request {
    char path[128];
    char content_type[128];
    char *body;
} request_t;

typedef struct collector {
    int fd;
    int port;
    int stop_pipe[2];
    int status;   /* of every response */
    int delay_ms; /* before every response */
    pthread_t thread;
    pthread_mutex_t lock;
    request_t requests[MAX_REQUESTS];
    int count;
} collector_t;

static void header_value(const char *head, const char *name, char *out,
                         size_t size)
{
    const char *p = strcasestr(head, name);

    out[0] = '\0';
    if (p == NULL)
        return;
    p += strlen(name);
    while (*p == ' ')
        p++;
    snprintf(out, size, "%.*s", (int)strcspn(p, "\r\n"), p);
}

static void serve_one(collector_t *c, int fd)
{
    char head[8192], length_text[32], response[128];
    size_t len = 0, body_len;
    char *end = NULL, *body;
    request_t *req;

    while (end == NULL && len + 1 < sizeof(head)) {
        ssize_t n = read(fd, head + len, sizeof(head) - 1 - len);
        if (n <= 0)
            return;
        len += (size_t)n;
        head[len] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    if (end == NULL)
        return;
    header_value(head, "Content-Length:", length_text, sizeof(length_text));
    body_len = strtoul(length_text, NULL, 10);
    body = calloc(1, body_len + 1);
    assert_non_null(body);
    len -= (size_t)(end + 4 - head);
    memcpy(body, end + 4, len);
    while (len < body_len) {
        ssize_t n = read(fd, body + len, body_len - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }

    pthread_mutex_lock(&c->lock);
    if (c->count < MAX_REQUESTS) {
        req = &c->requests[c->count++];
        sscanf(head, "POST %127s", req->path);
        header_value(head, "Content-Type:", req->content_type,
                     sizeof(req->content_type));
        req->body = body;
        body = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    free(body);

    if (c->delay_ms > 0)
        sl_time_sleep_ms(c->delay_ms);
    snprintf(response, sizeof(response),
             "HTTP/1.1 %d X\r\nContent-Length: 2\r\n"
             "Connection: close\r\n\r\n{}",
             c->status);
    if (write(fd, response, strlen(response)) < 0)
        return;
}

static void *collector_main(void *arg)
{
    collector_t *c = arg;

    for (;;) {
        struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
                              {.fd = c->stop_pipe[0], .events = POLLIN}};
        int fd;

        if (poll(p, 2, -1) <= 0 || p[1].revents != 0)
            return NULL;
        fd = accept(c->fd, NULL, NULL);
        if (fd >= 0) {
            serve_one(c, fd);
            close(fd);
        }
    }
}

static collector_t *collector_start(int status, int delay_ms)
{
    collector_t *c = calloc(1, sizeof(*c));
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t addr_len = sizeof(addr);

    assert_non_null(c);
    c->status = status;
    c->delay_ms = delay_ms;
    pthread_mutex_init(&c->lock, NULL);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    assert_int_equal(bind(c->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(c->fd, 8), 0);
    getsockname(c->fd, (struct sockaddr *)&addr, &addr_len);
    c->port = ntohs(addr.sin_port);
    assert_int_equal(pipe(c->stop_pipe), 0);
    assert_int_equal(pthread_create(&c->thread, NULL, collector_main, c), 0);
    return c;
}

static int collector_count(collector_t *c)
{
    int n;

    pthread_mutex_lock(&c->lock);
    n = c->count;
    pthread_mutex_unlock(&c->lock);
    return n;
}

static void collector_stop(collector_t *c)
{
    assert_int_equal(write(c->stop_pipe[1], "x", 1), 1);
    pthread_join(c->thread, NULL);
    close(c->fd);
    close(c->stop_pipe[0]);
    close(c->stop_pipe[1]);
    for (int i = 0; i < c->count; i++)
        free(c->requests[i].body);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* ---- helpers ------------------------------------------------------------ */

static void start_tracing(int port, double ratio, size_t capacity, size_t batch)
{
    sl_trace_config_t cfg;
    char endpoint[128], err[256] = "";

    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d/v1/traces", port);
    sl_trace_config_init(&cfg);
    cfg.endpoint = endpoint;
    cfg.service_name = "sluice-test";
    cfg.sample_ratio = ratio;
    cfg.queue_capacity = capacity;
    cfg.batch_size = batch;
    cfg.flush_interval_ms = 100;
    cfg.timeout_ms = 3000;
    if (sl_trace_start(&cfg, err, sizeof(err)) != SL_OK)
        fail_msg("tracing did not start: %s", err);
}

static uint64_t dropped(const char *reason)
{
    return sl_counter_value(
        sl_metrics_counter("sluice_trace_spans_dropped_total", "",
                           (const char *[]){"reason", reason, NULL}));
}

static uint64_t exported(void)
{
    return sl_counter_value(
        sl_metrics_counter("sluice_trace_spans_exported_total", "", NULL));
}

/* Returns the spans array of an ExportTraceServiceRequest, checking the
 * resource's service.name on the way. */
static json_t *spans_of(json_t *root)
{
    json_t *resource =
        json_array_get(json_object_get(root, "resourceSpans"), 0);
    json_t *attr = json_array_get(
        json_object_get(json_object_get(resource, "resource"), "attributes"),
        0);
    json_t *scope = json_array_get(json_object_get(resource, "scopeSpans"), 0);

    assert_non_null(resource);
    assert_string_equal(json_string_value(json_object_get(attr, "key")),
                        "service.name");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(attr, "value"), "stringValue")),
                        "sluice-test");
    return json_object_get(scope, "spans");
}

static json_t *find_span(json_t *spans, const char *name)
{
    size_t i;
    json_t *span;

    json_array_foreach(spans, i, span)
    {
        if (strcmp(json_string_value(json_object_get(span, "name")), name) == 0)
            return span;
    }
    fail_msg("no span named %s", name);
    return NULL;
}

static const char *field(json_t *obj, const char *key)
{
    const char *text = json_string_value(json_object_get(obj, key));

    assert_non_null(text);
    return text;
}

static int teardown(void **state)
{
    (void)state;
    sl_trace_stop();
    sl_metrics_reset();
    return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void spans_exported_as_otlp_json(void **state)
{
    collector_t *c = collector_start(200, 0);
    char parent_header[SL_TRACEPARENT_LEN + 1];
    sl_span_t root, child;
    json_error_t jerr;
    json_t *body, *spans, *r, *k, *attrs;

    (void)state;
    start_tracing(c->port, 1.0, 64, 16);
    assert_true(sl_span_begin(&root, "GET /api/v1/sensors/latest",
                              SL_SPAN_SERVER, NULL));
    sl_span_attr_text(&root, "http.route", "/api/v1/sensors/latest");
    sl_span_attr_int(&root, "http.status_code", 200);
    sl_span_traceparent(&root, parent_header);
    assert_true(
        sl_span_begin(&child, "store query", SL_SPAN_INTERNAL, parent_header));
    sl_span_set_error(&child, "database is locked");
    sl_span_end(&child);
    sl_span_end(&root);
    sl_trace_stop(); /* flushes the queue */

    assert_int_equal(collector_count(c), 1);
    assert_string_equal(c->requests[0].path, "/v1/traces");
    assert_string_equal(c->requests[0].content_type, "application/json");
    body = json_loads(c->requests[0].body, 0, &jerr);
    assert_non_null(body);
    spans = spans_of(body);
    assert_int_equal(json_array_size(spans), 2);

    r = find_span(spans, "GET /api/v1/sensors/latest");
    k = find_span(spans, "store query");
    assert_int_equal(strlen(field(r, "traceId")), 32);
    assert_int_equal(strlen(field(r, "spanId")), 16);
    assert_string_equal(field(k, "traceId"), field(r, "traceId"));
    assert_string_equal(field(k, "parentSpanId"), field(r, "spanId"));
    assert_null(json_object_get(r, "parentSpanId"));
    assert_int_equal(json_integer_value(json_object_get(r, "kind")), 2);
    assert_int_equal(json_integer_value(json_object_get(k, "kind")), 1);
    /* 64-bit integers are decimal strings in OTLP's JSON mapping. */
    assert_true(strtoll(field(r, "endTimeUnixNano"), NULL, 10) >=
                strtoll(field(r, "startTimeUnixNano"), NULL, 10));
    assert_true(strtoll(field(r, "startTimeUnixNano"), NULL, 10) >
                1700000000LL * 1000000000LL);
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(k, "status"), "code")),
                     2);
    assert_string_equal(field(json_object_get(k, "status"), "message"),
                        "database is locked");
    attrs = json_object_get(r, "attributes");
    assert_int_equal(json_array_size(attrs), 2);
    assert_string_equal(
        field(json_object_get(json_array_get(attrs, 1), "value"), "intValue"),
        "200");
    assert_int_equal(exported(), 2);
    json_decref(body);
    collector_stop(c);
}

static void sampling_follows_ratio_and_parent(void **state)
{
    collector_t *c = collector_start(200, 0);
    const char *sampled_parent =
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const char *unsampled_parent =
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    char header[SL_TRACEPARENT_LEN + 1];
    sl_span_t span;
    json_t *body;

    (void)state;
    start_tracing(c->port, 0.0, 64, 16);
    /* Ratio 0: roots and children of unsampled parents are not recorded,
     * but a child of a sampled parent is. */
    for (int i = 0; i < 100; i++) {
        assert_false(sl_span_begin(&span, "root", SL_SPAN_INTERNAL, NULL));
        sl_span_end(&span);
    }
    assert_false(
        sl_span_begin(&span, "child", SL_SPAN_CONSUMER, unsampled_parent));
    sl_span_traceparent(&span, header);
    assert_true(strncmp(header, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36) ==
                0);
    assert_string_equal(header + 52, "-00");
    sl_span_end(&span);
    assert_true(
        sl_span_begin(&span, "child", SL_SPAN_CONSUMER, sampled_parent));
    sl_span_end(&span);
    sl_trace_stop();

    assert_int_equal(collector_count(c), 1);
    body = json_loads(c->requests[0].body, 0, NULL);
    assert_int_equal(json_array_size(spans_of(body)), 1);
    assert_string_equal(
        field(find_span(spans_of(body), "child"), "parentSpanId"),
        "00f067aa0ba902b7");
    json_decref(body);
    collector_stop(c);
}

static bool is_zero(const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (bytes[i] != 0)
            return false;
    }
    return true;
}

static void spans_not_recorded_when_stopped(void **state)
{
    sl_span_t span;

    (void)state;
    assert_false(sl_span_begin(&span, "idle", SL_SPAN_INTERNAL, NULL));
    /* Ids are still made, so a traceparent can be passed on. */
    assert_false(is_zero(span.trace_id, sizeof(span.trace_id)));
    assert_false(is_zero(span.span_id, sizeof(span.span_id)));
    sl_span_attr_text(&span, "ignored", "x");
    assert_int_equal(span.attr_count, 0);
    sl_span_end(&span);
}

static void collector_away_counts_drops(void **state)
{
    collector_t *c = collector_start(200, 0);
    int port = c->port;
    sl_span_t span;

    (void)state;
    collector_stop(c); /* nothing listens on port any more */
    start_tracing(port, 1.0, 64, 4);
    for (int i = 0; i < 10; i++) {
        assert_true(sl_span_begin(&span, "lost", SL_SPAN_INTERNAL, NULL));
        sl_span_end(&span);
    }
    sl_trace_stop();
    assert_int_equal(dropped("export_failed"), 10);
    assert_int_equal(exported(), 0);
}

static void collector_error_status_counts_drops(void **state)
{
    collector_t *c = collector_start(503, 0);
    sl_span_t span;

    (void)state;
    start_tracing(c->port, 1.0, 64, 4);
    for (int i = 0; i < 3; i++) {
        assert_true(sl_span_begin(&span, "refused", SL_SPAN_INTERNAL, NULL));
        sl_span_end(&span);
    }
    sl_trace_stop();
    assert_int_equal(collector_count(c), 1);
    assert_int_equal(dropped("export_failed"), 3);
    collector_stop(c);
}

static void full_queue_drops_new_spans(void **state)
{
    /* The collector delays each response by a second, so the exporter
     * is busy with the first batch while the queue fills up. */
    collector_t *c = collector_start(200, 1000);
    sl_span_t span;

    (void)state;
    start_tracing(c->port, 1.0, 4, 4);
    for (int i = 0; i < 4; i++) {
        assert_true(sl_span_begin(&span, "first", SL_SPAN_INTERNAL, NULL));
        sl_span_end(&span);
    }
    for (int i = 0; i < 200 && collector_count(c) == 0; i++)
        sl_time_sleep_ms(10);
    assert_int_equal(collector_count(c), 1);
    for (int i = 0; i < 10; i++) {
        assert_true(sl_span_begin(&span, "second", SL_SPAN_INTERNAL, NULL));
        sl_span_end(&span);
    }
    assert_int_equal(dropped("queue_full"), 6);
    sl_trace_stop();
    assert_int_equal(exported(), 8);
    collector_stop(c);
}

static void traceparent_parse_rules(void **state)
{
    static const char *const invalid[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
    };
    uint8_t trace[16], id[8];
    bool sampled = false;
    sl_span_t span;
    char out[SL_TRACEPARENT_LEN + 1];

    (void)state;
    assert_true(sl_traceparent_parse(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", trace, id,
        &sampled));
    assert_true(sampled);
    assert_int_equal(trace[0], 0x4b);
    assert_int_equal(trace[15], 0x36);
    assert_int_equal(id[7], 0xb7);
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        assert_false(sl_traceparent_parse(invalid[i], trace, id, &sampled));

    /* A span's own header reads back to its ids. */
    sl_span_begin(&span, "x", SL_SPAN_INTERNAL, NULL);
    sl_span_traceparent(&span, out);
    assert_int_equal(strlen(out), SL_TRACEPARENT_LEN);
    assert_true(sl_traceparent_parse(out, trace, id, &sampled));
    assert_memory_equal(trace, span.trace_id, 16);
    assert_memory_equal(id, span.span_id, 8);
}

static void start_rejects_bad_config(void **state)
{
    sl_trace_config_t cfg;
    char err[256];

    (void)state;
    sl_trace_config_init(&cfg);
    assert_int_equal(sl_trace_start(&cfg, err, sizeof(err)), SL_EINVAL);
    assert_non_null(strstr(err, "not an http"));

    cfg.endpoint = "http://127.0.0.1:1/v1/traces";
    cfg.sample_ratio = 1.5;
    assert_int_equal(sl_trace_start(&cfg, err, sizeof(err)), SL_EINVAL);
    assert_non_null(strstr(err, "1.5"));

    cfg.sample_ratio = 0.5;
    cfg.batch_size = 0;
    assert_int_equal(sl_trace_start(&cfg, err, sizeof(err)), SL_EINVAL);

    cfg.batch_size = 8;
    assert_int_equal(sl_trace_start(&cfg, err, sizeof(err)), SL_OK);
    assert_int_equal(sl_trace_start(&cfg, err, sizeof(err)), SL_EBUSY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(spans_exported_as_otlp_json, teardown),
        cmocka_unit_test_teardown(sampling_follows_ratio_and_parent, teardown),
        cmocka_unit_test_teardown(spans_not_recorded_when_stopped, teardown),
        cmocka_unit_test_teardown(collector_away_counts_drops, teardown),
        cmocka_unit_test_teardown(collector_error_status_counts_drops,
                                  teardown),
        cmocka_unit_test_teardown(full_queue_drops_new_spans, teardown),
        cmocka_unit_test_teardown(traceparent_parse_rules, teardown),
        cmocka_unit_test_teardown(start_rejects_bad_config, teardown),
    };
    int failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
