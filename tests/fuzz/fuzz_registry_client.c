/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the registry client's handling of replies
 * (src/schema/registry_client.c) and for the schema texts a remote
 * registry hands the decoder's registry (sl_registry_fetch). A small HTTP
 * server on a loopback port, run by a thread of this program, answers
 * every request with the status and body taken from the input.
 *
 * Input: byte 0 picks the call (low three bits modulo 6: register, schema
 * by id, versions, compatibility check, set level, registry fetch) and bits 4-7
 * the HTTP status from `statuses`; the rest is the reply body.
 *
 * One client serves input after input, as in sluice, so most requests go
 * over a kept-alive connection: with a new client per input, connect, accept
 * and close took about a quarter of perf's samples. The client is
 * replaced after a schema call that succeeded, so no input finds an id
 * that an earlier one cached. The registry fetch gets a new registry, and
 * so a new connection, every time, because a failed fetch may leave the
 * text in its client's cache.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "schema/schema.h"
#include "util/err.h"
#include "util/log.h"

/* Connections the server keeps open at once: the kept client's and a
 * registry's, with room for curl opening a new one before closing one. */
#define MAX_CONNECTIONS 8

static const int statuses[16] = {200, 200, 200, 200, 201, 204, 301, 400,
                                 404, 409, 422, 429, 500, 502, 503, 999};

static pthread_mutex_t reply_lock = PTHREAD_MUTEX_INITIALIZER;
static char *reply_text; /* whole HTTP response, headers included */
static size_t reply_len;
static int listen_fd = -1;
static char base_url[64];
static sl_registry_client_t *client;

/* Reads one request: headers, then Content-Length bytes of body.
 * Returns false when the client closed the connection. */
static bool read_request(int fd)
{
    char buf[65536];
    size_t used = 0;
    char *end = NULL;
    size_t body = 0;

    while (end == NULL) {
        ssize_t n;

        if (used == sizeof(buf) - 1)
            return false;
        n = read(fd, buf + used, sizeof(buf) - 1 - used);
        if (n <= 0)
            return false;
        used += (size_t)n;
        buf[used] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    for (char *line = strstr(buf, "\r\n"); line != NULL && line < end;
         line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
            body = strtoul(line + 17, NULL, 10);
    }
    used -= (size_t)(end + 4 - buf);
    while (used < body) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n <= 0)
            return false;
        used += (size_t)n;
    }
    return true;
}

static void write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        /* MSG_NOSIGNAL: a client that gave up must not kill the fuzzer. */
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

/* Closes conns[i] and moves the last connection into its place. */
static void drop_connection(struct pollfd *conns, nfds_t *count, nfds_t i)
{
    close(conns[i].fd);
    conns[i] = conns[--*count];
}

/* Serves every open connection, one request at a time, for the life of the
 * process. conns[0] is the listening socket. */
static void *serve(void *arg)
{
    struct pollfd conns[1 + MAX_CONNECTIONS];
    nfds_t count = 1;

    (void)arg;
    conns[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
    for (;;) {
        if (poll(conns, count, -1) <= 0)
            continue;
        /* Backwards, so the connection moved into a dropped one's place
         * has been served already. */
        for (nfds_t i = count - 1; i > 0; i--) {
            if (conns[i].revents == 0)
                continue;
            if (!read_request(conns[i].fd)) {
                drop_connection(conns, &count, i);
                continue;
            }
            pthread_mutex_lock(&reply_lock);
            write_all(conns[i].fd, reply_text, reply_len);
            pthread_mutex_unlock(&reply_lock);
        }
        if (conns[0].revents & POLLIN) {
            int fd = accept(listen_fd, NULL, NULL);

            if (fd < 0)
                continue;
            if (count == 1 + MAX_CONNECTIONS)
                drop_connection(conns, &count, 1);
            conns[count++] = (struct pollfd){.fd = fd, .events = POLLIN};
        }
    }
    return NULL;
}

static void destroy_client(void)
{
    sl_registry_client_destroy(client);
}

static void setup(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t addr_len = sizeof(addr);
    pthread_t thread;

    sl_log_set_level(SL_LOG_ERROR);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd < 0 ||
        bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(listen_fd, 4) != 0 ||
        getsockname(listen_fd, (struct sockaddr *)&addr, &addr_len) != 0 ||
        pthread_create(&thread, NULL, serve, NULL) != 0) {
        perror("loopback server");
        abort();
    }
    pthread_detach(thread);
    atexit(destroy_client);
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d",
             ntohs(addr.sin_port));
}

static void set_reply(int status, const uint8_t *body, size_t len)
{
    char head[160];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d Fuzz\r\n"
                     "Content-Type: application/vnd.schemaregistry.v1+json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     status, len);

    pthread_mutex_lock(&reply_lock);
    free(reply_text);
    reply_text = malloc((size_t)n + len);
    if (reply_text == NULL)
        abort();
    memcpy(reply_text, head, (size_t)n);
    memcpy(reply_text + n, body, len);
    reply_len = (size_t)n + len;
    pthread_mutex_unlock(&reply_lock);
}

static void call_client(int which)
{
    char err[512] = "";
    int32_t id = 0;
    int32_t *versions = NULL;
    size_t n = 0;
    char *text = NULL;
    bool compatible = false;

    if (client == NULL) {
        client = sl_registry_client_create(base_url, 2000, err, sizeof(err));
        if (client == NULL) {
            fprintf(stderr, "registry client: %s\n", err);
            abort();
        }
    }
    switch (which) {
    case 0:
        sl_registry_client_register(client, "s-value", "\"string\"", &id, err,
                                    sizeof(err));
        break;
    case 1:
        if (sl_registry_client_schema(client, 1, &text, err, sizeof(err)) ==
            SL_OK) {
            if (text == NULL)
                abort();
            /* Id 1 is cached now: the next input needs a new client. */
            sl_registry_client_destroy(client);
            client = NULL;
        }
        free(text);
        break;
    case 2:
        sl_registry_client_versions(client, "s-value", &versions, &n, err,
                                    sizeof(err));
        free(versions);
        break;
    case 3:
        sl_registry_client_check(client, "s-value", NULL, "\"string\"",
                                 &compatible, err, sizeof(err));
        break;
    default:
        sl_registry_client_set_level(client, NULL, "FULL", err, sizeof(err));
        break;
    }
}

/* A remote registry's schema text goes through the same parse as a local
 * registration before the decoder uses it. */
static void fetch_remote(void)
{
    char err[512] = "";
    sl_registry_t *reg = sl_registry_create();
    avro_schema_t schema = NULL;

    if (reg == NULL || sl_registry_set_remote(reg, base_url, 2000, err,
                                              sizeof(err)) != SL_OK) {
        fprintf(stderr, "registry remote: %s\n", err);
        abort();
    }
    if (sl_registry_fetch(reg, 1, &schema, err, sizeof(err)) == SL_OK &&
        schema == NULL)
        abort();
    sl_registry_destroy(reg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int which;

    if (listen_fd < 0)
        setup();
    if (size == 0)
        return 0;
    which = (data[0] & 7) % 6;
    set_reply(statuses[data[0] >> 4], data + 1, size - 1);
    if (which == 5)
        fetch_remote();
    else
        call_client(which);
    return 0;
}
