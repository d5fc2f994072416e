/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WebSocket side of `sluice bench`; see bench_ws.h. The client is a
 * minimal RFC 6455 client over a blocking socket: the upgrade request,
 * unmasked server frames read whole, pongs for pings, and a masked close
 * frame at the end.
 */
#include "bench_ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "util/err.h"
#include "util/timeutil.h"

#define RX_BYTES (256 * 1024) /* a reading's message is under 1 KiB */
#define HANDSHAKE_TIMEOUT_MS 10000
#define READ_TIMEOUT_MS 100 /* how often the reader checks for stop */
#define CLOSE_TIMEOUT_MS 2000

enum { OP_TEXT = 0x1, OP_CLOSE = 0x8, OP_PING = 0x9 };

void sl_bench_hist_add(sl_bench_hist_t *h, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    if (ms > h->max_ms)
        h->max_ms = ms;
    h->buckets[ms > SL_BENCH_LATENCY_MAX_MS ? SL_BENCH_LATENCY_MAX_MS : ms]++;
    h->count++;
}

int64_t sl_bench_hist_quantile(const sl_bench_hist_t *h, double q)
{
    uint64_t rank = (uint64_t)(q * (double)h->count), seen = 0;

    if (h->count == 0)
        return 0;
    for (int64_t ms = 0; ms <= SL_BENCH_LATENCY_MAX_MS; ms++) {
        seen += h->buckets[ms];
        if (seen > rank)
            return ms;
    }
    return h->max_ms;
}

/* ---- the client -----------------------------------------------------------
 */

/* Sends one masked frame (clients must mask, RFC 6455 section 5.3) with
 * a payload of at most 125 bytes. Returns 0 or -1. */
static int send_frame(int fd, int opcode, const unsigned char *payload,
                      size_t len)
{
    unsigned char frame[2 + 4 + 125], mask[4] = {0};
    size_t size = 0;

    if (len > 125)
        return -1;
    if (getrandom(mask, sizeof(mask), 0) != (ssize_t)sizeof(mask))
        memcpy(mask, "\x5a\xc3\x3c\xa5", 4); /* a fixed key is still valid */
    frame[size++] = (unsigned char)(0x80 | opcode);
    frame[size++] = (unsigned char)(0x80 | len);
    memcpy(frame + size, mask, 4);
    size += 4;
    for (size_t i = 0; i < len; i++)
        frame[size++] = payload[i] ^ mask[i % 4];
    return send(fd, frame, size, MSG_NOSIGNAL) == (ssize_t)size ? 0 : -1;
}

/* Connects to 127.0.0.1:port and sends the upgrade request for path.
 * Returns the socket, or -1 after printing why. */
static int open_socket(int port, const char *path)
{
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 0, .tv_usec = READ_TIMEOUT_MS * 1000};
    unsigned char nonce[16] = {0};
    char key[32], request[2048];
    int fd, len;

    /* The key is 16 bytes in base64: 22 characters and "==". */
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
        memcpy(nonce, "sluice-bench-key", 16);
    for (int i = 0; i < 22; i++) {
        int bit = i * 6, byte = bit / 8, shift = bit % 8;
        unsigned v = ((unsigned)nonce[byte] << 8) |
                     (byte + 1 < 16 ? nonce[byte + 1] : 0);
        key[i] = b64[(v >> (10 - shift)) & 0x3F];
    }
    memcpy(key + 22, "==", 3);

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        fprintf(stderr,
                "sluice bench: connecting to the API on 127.0.0.1:%d "
                "failed: %s\n",
                port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    len = snprintf(request, sizeof(request),
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   path, port, key);
    if (len < 0 || (size_t)len >= sizeof(request) ||
        send(fd, request, (size_t)len, MSG_NOSIGNAL) != len) {
        fprintf(stderr, "sluice bench: sending the WebSocket upgrade "
                        "failed\n");
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads the response to the upgrade request into buf. Returns the bytes
 * past the response headers (the first frames), or -1 after printing
 * why. */
static ssize_t read_handshake(int fd, unsigned char *buf, size_t size)
{
    int64_t deadline = sl_time_mono_ms() + HANDSHAKE_TIMEOUT_MS;
    size_t len = 0;

    while (sl_time_mono_ms() < deadline && len < size) {
        ssize_t n = recv(fd, buf + len, size - len, 0);
        unsigned char *end;

        if (n < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        end = memmem(buf, len, "\r\n\r\n", 4);
        if (end == NULL)
            continue;
        if (len < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0) {
            fprintf(stderr,
                    "sluice bench: the API refused the WebSocket "
                    "upgrade: %.*s\n",
                    (int)(strchr((char *)buf, '\r') - (char *)buf),
                    (const char *)buf);
            return -1;
        }
        end += 4;
        memmove(buf, end, len - (size_t)(end - buf));
        return (ssize_t)(len - (size_t)(end - buf));
    }
    fprintf(stderr,
            "sluice bench: no WebSocket upgrade response within "
            "%d ms\n",
            HANDSHAKE_TIMEOUT_MS);
    return -1;
}

/* Reads the data's "timestamp" of a sensor_reading message. Returns 0,
 * or -1 when it is missing or does not parse. OUT: *ts_ms. */
static int reading_timestamp(const unsigned char *p, size_t len, int64_t *ts_ms)
{
    static const char key[] = "\"timestamp\":\"";
    const unsigned char *at = memmem(p, len, key, sizeof(key) - 1);
    const unsigned char *end;
    char text[SL_ISO8601_MAX];

    if (at == NULL)
        return -1;
    at += sizeof(key) - 1;
    end = memchr(at, '"', len - (size_t)(at - p));
    if (end == NULL || (size_t)(end - at) >= sizeof(text))
        return -1;
    memcpy(text, at, (size_t)(end - at));
    text[end - at] = '\0';
    return sl_time_parse_iso8601(text, ts_ms) == 0 ? 0 : -1;
}

/* Times one sensor_reading message by its timestamp, the reading's
 * event time. A reading created before the last reset is left out.
 * Under w->lock. */
static void on_reading(sl_bench_ws_t *w, const unsigned char *p, size_t len,
                       int64_t now_ms)
{
    int64_t ts;

    if (reading_timestamp(p, len, &ts) != 0) {
        w->stats.received++;
        w->stats.unparsed++;
        return;
    }
    if (ts < w->since_ms)
        return;
    w->stats.received++;
    sl_bench_hist_add(&w->stats.lat, now_ms - ts);
}

/* Handles one text message. Returns 0, or -1 when the server rejected
 * the filter. */
static int on_text(sl_bench_ws_t *w, const unsigned char *p, size_t len,
                   int64_t now_ms)
{
    static const char reading[] = "\"type\":\"sensor_reading\"";
    static const char dropped[] = "\"type\":\"dropped\"";
    static const char count[] = "\"count\":";
    int rc = 0;

    pthread_mutex_lock(&w->lock);
    if (memmem(p, len, reading, sizeof(reading) - 1) != NULL) {
        on_reading(w, p, len, now_ms);
    } else if (memmem(p, len, dropped, sizeof(dropped) - 1) != NULL) {
        const unsigned char *n = memmem(p, len, count, sizeof(count) - 1);
        if (n != NULL)
            w->stats.dropped +=
                strtoull((const char *)n + sizeof(count) - 1, NULL, 10);
    } else if (memmem(p, len, "\"type\":\"connected\"", 18) != NULL) {
        atomic_store(&w->connected, true);
    } else if (memmem(p, len, "\"type\":\"error\"", 14) != NULL) {
        fprintf(stderr,
                "sluice bench: the WebSocket server rejected the "
                "filter: %.*s\n",
                (int)len, (const char *)p);
        rc = -1;
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

/* Handles the whole frames at buf[0..*len) and keeps the rest. Returns
 * 0, SL_ECLOSED after a close frame, or SL_EINVAL on a frame this client
 * does not expect (masked, fragmented, or larger than its buffer). */
static int parse_frames(sl_bench_ws_t *w, unsigned char *buf, size_t *len,
                        int64_t now_ms)
{
    size_t pos = 0;
    int rc = SL_OK;

    while (rc == SL_OK && pos + 2 <= *len) {
        unsigned char b0 = buf[pos], b1 = buf[pos + 1];
        uint64_t plen = b1 & 0x7F;
        size_t head = 2;

        if ((b0 & 0x80) == 0 || (b1 & 0x80) != 0) {
            rc = SL_EINVAL;
            break;
        }
        if (plen == 126) {
            if (pos + 4 > *len)
                break;
            plen = ((uint64_t)buf[pos + 2] << 8) | buf[pos + 3];
            head = 4;
        } else if (plen == 127) {
            if (pos + 10 > *len)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | buf[pos + 2 + i];
            head = 10;
        }
        if (plen > RX_BYTES - head) {
            rc = SL_EINVAL;
            break;
        }
        if (pos + head + plen > *len)
            break;

        const unsigned char *payload = buf + pos + head;
        switch (b0 & 0x0F) {
        case OP_TEXT:
            if (on_text(w, payload, (size_t)plen, now_ms) != 0)
                rc = SL_EINVAL;
            break;
        case OP_PING:
            if (plen > 125 || send_frame(w->fd, 0xA, payload, (size_t)plen))
                rc = SL_EIO;
            break;
        case OP_CLOSE:
            rc = SL_ECLOSED;
            break;
        default: /* pongs and binary frames carry nothing for us */
            break;
        }
        pos += head + (size_t)plen;
    }
    memmove(buf, buf + pos, *len - pos);
    *len -= pos;
    return rc;
}

static void set_failed(sl_bench_ws_t *w, int rc)
{
    pthread_mutex_lock(&w->lock);
    if (w->stats.failed == SL_OK)
        w->stats.failed = rc;
    pthread_mutex_unlock(&w->lock);
}

/* The client thread: reads frames until stopped or the connection ends. */
static void *client_main(void *arg)
{
    sl_bench_ws_t *w = arg;
    unsigned char *buf = w->rx;
    size_t len = w->rx_len;
    int rc = parse_frames(w, buf, &len, sl_time_now_ms());

    while (rc == SL_OK && !atomic_load(&w->stopping)) {
        ssize_t n = recv(w->fd, buf + len, RX_BYTES - len, 0);

        if (n < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (n <= 0) {
            rc = SL_ECLOSED;
            break;
        }
        len += (size_t)n;
        /* One clock reading per recv: frames read together arrived
         * together. */
        rc = parse_frames(w, buf, &len, sl_time_now_ms());
    }
    if (rc != SL_OK) {
        fprintf(stderr,
                "sluice bench: the WebSocket client stopped reading: %s\n",
                rc == SL_ECLOSED ? "the server closed the connection"
                                 : "unexpected frame or message");
        set_failed(w, rc);
    }
    w->rx_len = len;
    return NULL;
}

/* ---- start and stop -------------------------------------------------------
 */

/* Builds /ws/sensors?sensor_id=...&sensor_id=... */
static int build_path(const sl_bench_ws_t *w, char *path, size_t size)
{
    size_t used = (size_t)snprintf(path, size, "/ws/sensors");

    for (size_t i = 0; i < w->sensor_count && used < size; i++)
        used += (size_t)snprintf(path + used, size - used, "%csensor_id=%s",
                                 i == 0 ? '?' : '&', w->sensor_ids[i]);
    return used < size ? 0 : -1;
}

int sl_bench_ws_start(sl_bench_ws_t *w)
{
    sl_ws_hub_config_t hub_cfg;
    sl_api_config_t api_cfg;
    char err[512] = "",
         path[SL_BENCH_WS_MAX_SENSORS * (SL_BENCH_WS_ID_MAX + 12)];
    ssize_t first;
    int64_t deadline;

    w->fd = -1;
    atomic_init(&w->stopping, false);
    atomic_init(&w->connected, false);
    pthread_mutex_init(&w->lock, NULL);
    w->lock_ready = true;
    w->rx = malloc(RX_BYTES);
    if (w->rx == NULL || w->sensor_count == 0 ||
        w->sensor_count > SL_BENCH_WS_MAX_SENSORS ||
        build_path(w, path, sizeof(path)) != 0) {
        fprintf(stderr, "sluice bench: setting up the WebSocket client "
                        "failed\n");
        return -1;
    }

    sl_ws_hub_config_init(&hub_cfg);
    hub_cfg.bus = w->bus;
    hub_cfg.registry = w->registry;
    hub_cfg.commit_offsets = w->commit_offsets;
    w->hub = sl_ws_hub_start(&hub_cfg, err, sizeof(err));
    if (w->hub == NULL) {
        fprintf(stderr, "sluice bench: starting the WebSocket hub failed: %s\n",
                err);
        return -1;
    }
    sl_api_config_init(&api_cfg);
    api_cfg.listen_host = "127.0.0.1";
    api_cfg.port = 0;
    api_cfg.store_location = w->store_location;
    api_cfg.ws_hub = w->hub;
    w->api = sl_api_start(&api_cfg, err, sizeof(err));
    if (w->api == NULL) {
        fprintf(stderr, "sluice bench: starting the API failed: %s\n", err);
        return -1;
    }

    w->fd = open_socket(sl_api_port(w->api), path);
    if (w->fd < 0)
        return -1;
    first = read_handshake(w->fd, w->rx, RX_BYTES);
    if (first < 0)
        return -1;
    w->rx_len = (size_t)first;
    if (pthread_create(&w->thread, NULL, client_main, w) != 0) {
        fprintf(stderr, "sluice bench: starting the WebSocket client "
                        "thread failed\n");
        return -1;
    }
    w->thread_started = true;

    deadline = sl_time_mono_ms() + HANDSHAKE_TIMEOUT_MS;
    while (!atomic_load(&w->connected) && sl_time_mono_ms() < deadline) {
        sl_bench_ws_stats_t s;

        pthread_mutex_lock(&w->lock);
        s.failed = w->stats.failed;
        pthread_mutex_unlock(&w->lock);
        if (s.failed != SL_OK)
            break;
        sl_time_sleep_ms(1);
    }
    if (!atomic_load(&w->connected)) {
        fprintf(stderr, "sluice bench: the WebSocket server sent no "
                        "\"connected\" message\n");
        return -1;
    }
    return 0;
}

bool sl_bench_ws_wait(sl_bench_ws_t *w, uint64_t expected, int idle_ms)
{
    uint64_t last = 0;
    int64_t last_change = sl_time_mono_ms();

    for (;;) {
        uint64_t seen;
        int failed;

        pthread_mutex_lock(&w->lock);
        seen = w->stats.received + w->stats.dropped;
        failed = w->stats.failed;
        pthread_mutex_unlock(&w->lock);
        if (seen >= expected)
            return true;
        if (failed != SL_OK)
            return false;
        if (seen != last) {
            last = seen;
            last_change = sl_time_mono_ms();
        } else if (sl_time_mono_ms() - last_change > idle_ms) {
            return false;
        }
        sl_time_sleep_ms(1);
    }
}

void sl_bench_ws_reset(sl_bench_ws_t *w)
{
    pthread_mutex_lock(&w->lock);
    w->since_ms = sl_time_now_ms();
    memset(&w->stats.lat, 0, sizeof(w->stats.lat));
    w->stats.received = 0;
    w->stats.dropped = 0;
    w->stats.unparsed = 0;
    pthread_mutex_unlock(&w->lock);
}

void sl_bench_ws_results(sl_bench_ws_t *w, sl_bench_ws_stats_t *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->lock);
}

/* Sends a close frame (1000, normal closure) and reads until the
 * server's close frame or CLOSE_TIMEOUT_MS. */
static void close_handshake(sl_bench_ws_t *w)
{
    static const unsigned char normal[2] = {0x03, 0xE8};
    int64_t deadline = sl_time_mono_ms() + CLOSE_TIMEOUT_MS;

    if (send_frame(w->fd, OP_CLOSE, normal, sizeof(normal)) != 0)
        return;
    while (sl_time_mono_ms() < deadline) {
        ssize_t n = recv(w->fd, w->rx + w->rx_len, RX_BYTES - w->rx_len, 0);

        if (n < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (n <= 0)
            return;
        w->rx_len += (size_t)n;
        if (parse_frames(w, w->rx, &w->rx_len, sl_time_now_ms()) != SL_OK)
            return;
    }
}

void sl_bench_ws_stop(sl_bench_ws_t *w)
{
    if (!w->lock_ready) /* never started */
        return;
    if (w->thread_started) {
        atomic_store(&w->stopping, true);
        pthread_join(w->thread, NULL);
        w->thread_started = false;
        if (w->stats.failed == SL_OK)
            close_handshake(w);
    }
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    sl_api_stop(w->api); /* before the hub, whose clients it serves */
    w->api = NULL;
    sl_ws_hub_stop(w->hub);
    w->hub = NULL;
    free(w->rx);
    w->rx = NULL;
    pthread_mutex_destroy(&w->lock);
    w->lock_ready = false;
}
