/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The /metrics listener of the roles without an API (metrics-listen). A
 * Prometheus scrape is one short GET every few seconds, so one thread that
 * serves one connection at a time is enough. The libwebsockets server of
 * src/api would add an event loop and its settings for no gain here.
 * Reads and writes run under deadlines, so a stalled client cannot hold
 * the thread.
 */
#include "obs/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#define HEAD_MAX 8192          /* bytes of request line and headers */
#define HEAD_DEADLINE_MS 5000  /* to receive the whole request head */
#define WRITE_DEADLINE_MS 5000 /* per blocked write of the response */

struct sl_metrics_server {
    int listen_fd;
    int wake[2]; /* a byte on wake[1] stops the thread */
    int port;
    pthread_t thread;
};

/* Writes all of data, waiting at most WRITE_DEADLINE_MS for each chunk the
 * client does not take. Returns false when the client is gone or stalled. */
static bool write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        ssize_t n;

        if (poll(&p, 1, WRITE_DEADLINE_MS) <= 0)
            return false;
        n = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

static void respond(int fd, int status, const char *reason,
                    const char *content_type, const char *body, size_t body_len,
                    bool head_only)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, content_type, body_len);

    if (!write_all(fd, head, (size_t)n) || head_only)
        return;
    write_all(fd, body, body_len);
}

/* Reads the request head into buf (NUL-terminated). Returns its length,
 * or -1 when the client closed, stalled past the deadline or sent more
 * than HEAD_MAX bytes without finishing the head. */
static ssize_t read_head(int fd, char *buf, size_t size)
{
    int64_t deadline = sl_time_mono_ms() + HEAD_DEADLINE_MS;
    size_t len = 0;

    while (len + 1 < size) {
        int64_t left = deadline - sl_time_mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        n = recv(fd, buf + len, size - 1 - len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL || strstr(buf, "\n\n") != NULL)
            return (ssize_t)len;
    }
    return -1;
}

static void serve_metrics(int fd, bool head_only)
{
    static const char type[] = "text/plain; version=0.0.4; charset=utf-8";
    char *text = NULL;
    size_t len = 0;

    if (sl_metrics_render(&text, &len) != SL_OK) {
        static const char oom[] = "out of memory\n";
        respond(fd, 500, "Internal Server Error", "text/plain", oom,
                sizeof(oom) - 1, head_only);
        return;
    }
    respond(fd, 200, "OK", type, text, len, head_only);
    free(text);
}

static void serve_connection(int fd)
{
    static const char not_found[] = "not found; try /metrics\n";
    static const char bad[] = "bad request\n";
    static const char healthy[] = "ok\n";
    char buf[HEAD_MAX], method[16], target[1024];
    bool head_only;

    if (read_head(fd, buf, sizeof(buf)) < 0)
        return;
    if (sscanf(buf, "%15s %1023s HTTP/1.", method, target) != 2) {
        respond(fd, 400, "Bad Request", "text/plain", bad, sizeof(bad) - 1,
                false);
        return;
    }
    head_only = strcmp(method, "HEAD") == 0;
    if (strcmp(method, "GET") != 0 && !head_only) {
        static const char allowed[] = "only GET and HEAD\n";
        respond(fd, 405, "Method Not Allowed", "text/plain", allowed,
                sizeof(allowed) - 1, false);
        return;
    }
    /* Prometheus sends no query string, but a person with curl may. */
    target[strcspn(target, "?")] = '\0';
    if (strcmp(target, "/metrics") == 0)
        serve_metrics(fd, head_only);
    else if (strcmp(target, "/") == 0)
        respond(fd, 200, "OK", "text/plain", healthy, sizeof(healthy) - 1,
                head_only);
    else
        respond(fd, 404, "Not Found", "text/plain", not_found,
                sizeof(not_found) - 1, head_only);
}

static void *serve(void *arg)
{
    sl_metrics_server_t *srv = arg;

    for (;;) {
        struct pollfd p[2] = {{.fd = srv->listen_fd, .events = POLLIN},
                              {.fd = srv->wake[0], .events = POLLIN}};
        int fd;

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            sl_log_error("metrics", "poll failed: %s", strerror(errno));
            return NULL;
        }
        if (p[1].revents != 0)
            return NULL;
        fd = accept(srv->listen_fd, NULL, NULL);
        if (fd < 0) {
            /* Errors such as EMFILE pass; the next scrape tries again. */
            sl_log_warn("metrics", "accept failed: %s", strerror(errno));
            sl_time_sleep_ms(100);
            continue;
        }
        serve_connection(fd);
        close(fd);
    }
}

/* Creates the listening socket for host:port. Returns the descriptor, or
 * -1 with the reason in err. */
static int listen_on(const char *host, int port, char *err, size_t err_size)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *addrs = NULL;
    char service[16];
    int fd = -1, rc, one = 1;

    snprintf(service, sizeof(service), "%d", port);
    rc = getaddrinfo(host, service, &hints, &addrs);
    if (rc != 0) {
        snprintf(err, err_size, "cannot resolve '%s': %s", host,
                 gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *a = addrs; a != NULL; a = a->ai_next) {
        fd =
            socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 16) == 0)
            break;
        snprintf(err, err_size, "cannot listen on %s:%d: %s", host, port,
                 strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(addrs);
    return fd;
}

static int bound_port(int fd)
{
    union {
        struct sockaddr any;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
        struct sockaddr_storage storage;
    } addr;
    socklen_t len = sizeof(addr);

    memset(&addr, 0, sizeof(addr));
    if (getsockname(fd, &addr.any, &len) != 0)
        return -1;
    if (addr.any.sa_family == AF_INET6)
        return ntohs(addr.v6.sin6_port);
    return ntohs(addr.v4.sin_port);
}

sl_metrics_server_t *sl_metrics_server_start(const char *host, int port,
                                             char *err, size_t err_size)
{
    sl_metrics_server_t *srv = calloc(1, sizeof(*srv));

    if (srv == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    srv->wake[0] = srv->wake[1] = -1;
    srv->listen_fd = listen_on(host, port, err, err_size);
    if (srv->listen_fd < 0)
        goto fail;
    srv->port = bound_port(srv->listen_fd);
    if (pipe2(srv->wake, O_CLOEXEC) != 0) {
        snprintf(err, err_size, "pipe failed: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&srv->thread, NULL, serve, srv) != 0) {
        snprintf(err, err_size, "cannot start the listener thread");
        goto fail;
    }
    return srv;

fail:
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->wake[0] >= 0) {
        close(srv->wake[0]);
        close(srv->wake[1]);
    }
    free(srv);
    return NULL;
}

int sl_metrics_server_port(const sl_metrics_server_t *srv)
{
    return srv->port;
}

void sl_metrics_server_stop(sl_metrics_server_t *srv)
{
    if (srv == NULL)
        return;
    /* A full pipe still wakes the thread, so the result does not matter. */
    if (write(srv->wake[1], "x", 1) < 0)
        sl_log_debug("metrics", "wake write failed: %s", strerror(errno));
    pthread_join(srv->thread, NULL);
    close(srv->listen_fd);
    close(srv->wake[0]);
    close(srv->wake[1]);
    free(srv);
}
