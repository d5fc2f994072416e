/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the metrics-listen server, over loopback with libcurl as the
 * client, and of a client that stalls or sends garbage.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "obs/metrics.h"
#include "util/err.h"

typedef struct reply {
    long status;
    char content_type[128];
    char body[65536];
    size_t len;
} reply_t;

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    reply_t *r = arg;
    size_t bytes = size * n;

    if (r->len + bytes >= sizeof(r->body))
        return 0;
    memcpy(r->body + r->len, data, bytes);
    r->len += bytes;
    r->body[r->len] = '\0';
    return bytes;
}

/* GETs path from the server on 127.0.0.1:port. Returns the CURLcode. */
static int http_get(int port, const char *path, reply_t *r)
{
    CURL *curl = curl_easy_init();
    char url[256];
    char *type = NULL;
    CURLcode rc;

    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
    if (type != NULL)
        snprintf(r->content_type, sizeof(r->content_type), "%s", type);
    curl_easy_cleanup(curl);
    return (int)rc;
}

static int reset_registry(void **state)
{
    (void)state;
    sl_metrics_reset();
    return 0;
}

static sl_metrics_server_t *start_loopback(void)
{
    char err[256] = "";
    sl_metrics_server_t *srv =
        sl_metrics_server_start("127.0.0.1", 0, err, sizeof(err));

    if (srv == NULL)
        fail_msg("server did not start: %s", err);
    assert_true(sl_metrics_server_port(srv) > 0);
    return srv;
}

static void metrics_served_as_text(void **state)
{
    sl_metrics_server_t *srv;
    reply_t r;

    (void)state;
    sl_counter_add(sl_metrics_counter("sluice_test_things_total", "Things",
                                      (const char *[]){"kind", "a\"b", NULL}),
                   3);
    sl_metrics_build_info("9.8.7");
    srv = start_loopback();

    assert_int_equal(http_get(sl_metrics_server_port(srv), "/metrics", &r),
                     CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type,
                        "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(
        strstr(r.body, "sluice_test_things_total{kind=\"a\\\"b\"} 3\n"));
    assert_non_null(strstr(r.body, "sluice_build_info{version=\"9.8.7\"} 1\n"));

    /* A later update shows in the next scrape. */
    sl_counter_add(sl_metrics_counter("sluice_test_things_total", "Things",
                                      (const char *[]){"kind", "a\"b", NULL}),
                   1);
    assert_int_equal(http_get(sl_metrics_server_port(srv), "/metrics?x=1", &r),
                     CURLE_OK);
    assert_non_null(
        strstr(r.body, "sluice_test_things_total{kind=\"a\\\"b\"} 4\n"));
    sl_metrics_server_stop(srv);
}

static void health_and_unknown_paths(void **state)
{
    sl_metrics_server_t *srv = start_loopback();
    reply_t r;

    (void)state;
    assert_int_equal(http_get(sl_metrics_server_port(srv), "/", &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");

    assert_int_equal(http_get(sl_metrics_server_port(srv), "/nope", &r),
                     CURLE_OK);
    assert_int_equal(r.status, 404);
    sl_metrics_server_stop(srv);
}

static int connect_loopback(int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

static void garbage_request_gets_400(void **state)
{
    sl_metrics_server_t *srv = start_loopback();
    char buf[512] = "";
    ssize_t n;
    int fd;

    (void)state;
    fd = connect_loopback(sl_metrics_server_port(srv));
    assert_int_equal(write(fd, "\x01\x02\r\n\r\n", 6), 6);
    n = read(fd, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "HTTP/1.1 400 "));
    close(fd);
    sl_metrics_server_stop(srv);
}

static void stalled_client_does_not_block_scrapes(void **state)
{
    sl_metrics_server_t *srv = start_loopback();
    reply_t r;
    int fd;

    (void)state;
    /* Half a request head, then silence: the server drops this client
     * at its deadline and serves the next one. */
    fd = connect_loopback(sl_metrics_server_port(srv));
    assert_int_equal(write(fd, "GET /metr", 9), 9);
    assert_int_equal(http_get(sl_metrics_server_port(srv), "/metrics", &r),
                     CURLE_OK);
    assert_int_equal(r.status, 200);
    close(fd);
    sl_metrics_server_stop(srv);
}

static void unresolvable_host_rejected(void **state)
{
    char err[256] = "";

    (void)state;
    assert_null(
        sl_metrics_server_start("no-such-host.invalid", 0, err, sizeof(err)));
    assert_non_null(strstr(err, "no-such-host.invalid"));
}

static void port_in_use_rejected(void **state)
{
    sl_metrics_server_t *srv = start_loopback();
    char err[256] = "";

    (void)state;
    assert_null(sl_metrics_server_start(
        "127.0.0.1", sl_metrics_server_port(srv), err, sizeof(err)));
    assert_non_null(strstr(err, "cannot listen"));
    sl_metrics_server_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(metrics_served_as_text, reset_registry),
        cmocka_unit_test(health_and_unknown_paths),
        cmocka_unit_test(garbage_request_gets_400),
        cmocka_unit_test(stalled_client_does_not_block_scrapes),
        cmocka_unit_test(unresolvable_host_rejected),
        cmocka_unit_test(port_in_use_rejected),
    };
    int failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
