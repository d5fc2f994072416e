/* SPDX-License-Identifier: Apache-2.0 */
/*
 * WebSocket fan-out benchmark: starts `sluice run` with its generators at
 * a fixed rate of readings per second, connects many clients to
 * /ws/sensors over loopback and reads every message for a fixed time.
 * Prints messages delivered per second and the messages the server
 * dropped for the clients (the "dropped" counts it sent). It also prints
 * percentiles of the delivery latency: the client's clock at receipt
 * minus the message's received_at, when the server's hub read it.
 *
 * The clients are raw non-blocking sockets on one epoll thread, so the
 * client side costs little more than the kernel's copies. The server's
 * slow-client close is set to an hour, so that a client that falls behind
 * stays connected and its losses show as drops.
 *
 *   build/bench/ws_fanout_bench [clients] [readings/s] [seconds]
 *
 * Defaults: 1000 clients, 10000 readings/s, 20 s after a 3 s warm-up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/timeutil.h"

#define RX_BYTES (32 * 1024)
#define MAX_SAMPLES 4000000
#define SAMPLE_EVERY 16 /* latency of every 16th message per client */

typedef struct client {
    int fd;
    bool upgraded;
    size_t len;
    uint64_t messages;
    unsigned char buf[RX_BYTES];
} client_t;

typedef struct totals {
    uint64_t messages;
    uint64_t dropped;
    uint64_t bytes;
    bool measuring;
    double *samples;
    size_t sample_count;
} totals_t;

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pid_t start_sluice(int port, int rate, int clients, char *dir)
{
    char listen[64], rate_text[32], max_clients[32], db[512];
    pid_t pid;

    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(rate_text, sizeof(rate_text), "%d", rate);
    snprintf(max_clients, sizeof(max_clients), "%d", clients + 16);
    snprintf(db, sizeof(db), "%s/bench.db", dir);
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execl(SLUICE_BINARY_PATH, "sluice", "run", "--db", db, "--listen",
              listen, "--rate", rate_text, "--no-detector", "--event-interval",
              "0", "--ws-max-clients", max_clients, "--ws-stall-ms", "3600000",
              "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Removes the database files sluice run wrote, then the folder. */
static void remove_dir(const char *dir)
{
    static const char *const files[] = {"bench.db", "bench.db-wal",
                                        "bench.db-shm"};
    char path[600];

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    if (rmdir(dir) != 0)
        fprintf(stderr, "could not remove %s: %s\n", dir, strerror(errno));
}

static int connect_client(int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char req[256];
    int len;

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    len = snprintf(req, sizeof(req),
                   "GET /ws/sensors HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   port);
    if (write(fd, req, (size_t)len) != len) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads the received_at of a reading's payload, or -1. */
static int64_t received_at(const unsigned char *p, size_t len)
{
    static const char key[] = "\"received_at\":\"";
    const char *hit = memmem(p, len, key, sizeof(key) - 1);
    char text[32];
    int64_t ms;

    if (hit == NULL || (size_t)((const unsigned char *)hit - p) + 40 > len)
        return -1;
    memcpy(text, hit + sizeof(key) - 1, 24);
    text[24] = '\0';
    return sl_time_parse_iso8601(text, &ms) == 0 ? ms : -1;
}

static void on_message(client_t *c, totals_t *t, const unsigned char *p,
                       size_t len)
{
    /* Payloads start with {"type":"sensor_reading" or "dropped". */
    if (len > 10 && p[9] == 'd') {
        const char *count = memmem(p, len, "\"count\":", 8);
        if (count != NULL && t->measuring)
            t->dropped += strtoull(count + 8, NULL, 10);
        return;
    }
    if (len <= 10 || p[9] != 's' || !t->measuring)
        return;
    t->messages++;
    t->bytes += len;
    if (c->messages++ % SAMPLE_EVERY == 0 && t->sample_count < MAX_SAMPLES) {
        int64_t at = received_at(p, len);
        if (at > 0)
            t->samples[t->sample_count++] = (double)(now_ms() - at);
    }
}

/* Consumes whole frames from c->buf. Returns -1 on a protocol error. */
static int parse(client_t *c, totals_t *t)
{
    size_t pos = 0;

    if (!c->upgraded) {
        unsigned char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end == NULL)
            return 0;
        if (memcmp(c->buf, "HTTP/1.1 101", 12) != 0)
            return -1;
        c->upgraded = true;
        pos = (size_t)(end - c->buf) + 4;
    }
    while (pos + 2 <= c->len) {
        size_t plen = c->buf[pos + 1] & 0x7F, head = 2;

        if (plen == 126) {
            if (pos + 4 > c->len)
                break;
            plen = ((size_t)c->buf[pos + 2] << 8) | c->buf[pos + 3];
            head = 4;
        } else if (plen == 127) {
            return -1;
        }
        if (pos + head + plen > c->len)
            break;
        on_message(c, t, c->buf + pos + head, plen);
        pos += head + plen;
    }
    memmove(c->buf, c->buf + pos, c->len - pos);
    c->len -= pos;
    return 0;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const totals_t *t, double p)
{
    if (t->sample_count == 0)
        return 0;
    return t->samples[(size_t)(p * (double)(t->sample_count - 1))];
}

int main(int argc, char **argv)
{
    int nclients = argc > 1 ? atoi(argv[1]) : 1000;
    int rate = argc > 2 ? atoi(argv[2]) : 10000;
    int seconds = argc > 3 ? atoi(argv[3]) : 20;
    char dir[] = "/tmp/sluice-ws-bench-XXXXXX";
    totals_t t = {0};
    client_t **clients;
    struct epoll_event events[256];
    int port, ep, connected = 0, status;
    int64_t start, end;
    pid_t pid;

    if (nclients < 1 || rate < 1 || seconds < 1 || mkdtemp(dir) == NULL) {
        fprintf(stderr, "usage: ws_fanout_bench [clients] [readings/s] "
                        "[seconds]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    port = 20000 + (int)(getpid() % 20000);
    pid = start_sluice(port, rate, nclients, dir);
    t.samples = calloc(MAX_SAMPLES, sizeof(double));
    clients = calloc((size_t)nclients, sizeof(*clients));
    ep = epoll_create1(0);

    for (int tries = 0; tries < 100; tries++) {
        int fd = connect_client(port);
        if (fd >= 0) {
            close(fd);
            break;
        }
        usleep(100000);
    }
    for (int i = 0; i < nclients; i++) {
        struct epoll_event ev = {.events = EPOLLIN};

        clients[i] = calloc(1, sizeof(client_t));
        clients[i]->fd = connect_client(port);
        if (clients[i]->fd < 0) {
            fprintf(stderr, "client %d: connect failed: %s\n", i,
                    strerror(errno));
            continue;
        }
        ev.data.ptr = clients[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, clients[i]->fd, &ev);
        connected++;
    }

    start = now_ms() + 3000; /* warm-up */
    end = start + (int64_t)seconds * 1000;
    for (;;) {
        int64_t now = now_ms();
        int n;

        if (now >= end)
            break;
        t.measuring = now >= start;
        n = epoll_wait(ep, events, 256, 100);
        for (int i = 0; i < n; i++) {
            client_t *c = events[i].data.ptr;
            ssize_t r = read(c->fd, c->buf + c->len, RX_BYTES - c->len);

            if (r <= 0 || (c->len += (size_t)r, parse(c, &t) != 0)) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                connected--;
            }
        }
    }

    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    qsort(t.samples, t.sample_count, sizeof(double), compare);
    printf("clients %d (still connected %d), %d readings/s offered, "
           "%d s measured\n",
           nclients, connected, rate, seconds);
    printf("messages delivered: %.0f/s (%.0f per client/s), %.1f MB/s of "
           "payload\n",
           (double)t.messages / seconds,
           (double)t.messages / seconds / nclients,
           (double)t.bytes / seconds / 1e6);
    printf("messages dropped by the server: %llu (%.2f%% of delivered + "
           "dropped)\n",
           (unsigned long long)t.dropped,
           t.messages + t.dropped > 0
               ? 100.0 * (double)t.dropped / (double)(t.messages + t.dropped)
               : 0.0);
    printf("delivery latency ms: p50 %.0f  p99 %.0f  max %.0f (%zu "
           "samples)\n",
           percentile(&t, 0.50), percentile(&t, 0.99), percentile(&t, 1.0),
           t.sample_count);
    for (int i = 0; i < nclients; i++) {
        if (clients[i]->fd >= 0)
            close(clients[i]->fd);
        free(clients[i]);
    }
    free(clients);
    free(t.samples);
    close(ep);
    remove_dir(dir);
    return 0;
}
