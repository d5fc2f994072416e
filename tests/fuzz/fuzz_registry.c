/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the schema registry's request handling
 * (src/schema/registry_routes.c): request bodies of POST
 * /subjects/{s}/versions, compatibility checks and level changes, served
 * from a real SQLite store in a temporary folder. Each input starts from
 * the same empty registry: before it, a second connection empties the
 * schema and schema_config tables if another connection has committed
 * anything since the last emptying.
 *
 * The folder is on tmpfs (/dev/shm) where there is one, because the WAL's
 * writes to ext4 took about 5% of perf's samples and are not our code.
 *
 * Input: up to MAX_REQUESTS requests, one per line. A line is a method
 * letter (G GET, P POST, U PUT, D DELETE), the path up to the first space,
 * then the body, e.g.
 *   P/subjects/s-value/versions {"schema":"\"string\""}
 * Every reply must have a status below 500 and a body that is JSON.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "schema/schema_int.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"

#define MAX_REQUESTS 8

static sl_registry_routes_t routes;
static sqlite3 *wiper;
static sqlite3_stmt *version_stmt; /* PRAGMA data_version, on wiper */
static sqlite3_int64 wiped_version = -1;
static char store_dir[64];
static char store_path[sizeof(store_dir) + 16];

static void remove_store(void)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};

    sqlite3_finalize(version_stmt);
    sqlite3_close(wiper);
    sl_store_close(routes.st);
    for (size_t i = 0; i < 3; i++) {
        char path[sizeof(store_path) + 8];

        snprintf(path, sizeof(path), "%s%s", store_path, suffixes[i]);
        unlink(path);
    }
    rmdir(store_dir);
}

static void setup(void)
{
    char err[256] = "";

    sl_log_set_level(SL_LOG_ERROR);
    snprintf(store_dir, sizeof(store_dir), "%s/sluice_fuzz_registry_XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (mkdtemp(store_dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    snprintf(store_path, sizeof(store_path), "%s/fuzz.db", store_dir);
    routes.st = sl_store_open(store_path, err, sizeof(err));
    if (routes.st == NULL ||
        sl_store_migrate(routes.st, err, sizeof(err)) != SL_OK) {
        fprintf(stderr, "store %s: %s\n", store_path, err);
        abort();
    }
    if (sqlite3_open(store_path, &wiper) != SQLITE_OK ||
        sqlite3_exec(wiper, "PRAGMA synchronous=OFF", NULL, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(wiper, "PRAGMA data_version", -1, &version_stmt,
                           NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite3_open %s failed\n", store_path);
        abort();
    }
    atexit(remove_store);
}

/* PRAGMA data_version changes when another connection commits. */
static sqlite3_int64 data_version(void)
{
    sqlite3_int64 version;

    if (sqlite3_step(version_stmt) != SQLITE_ROW) {
        fprintf(stderr, "PRAGMA data_version: %s\n", sqlite3_errmsg(wiper));
        abort();
    }
    version = sqlite3_column_int64(version_stmt, 0);
    sqlite3_reset(version_stmt);
    return version;
}

/* Empties both tables in one transaction, and only after another
 * connection committed: an input with bad paths, bad bodies or only reads
 * leaves nothing to empty. */
static void wipe(void)
{
    sqlite3_int64 version = data_version();
    char *msg = NULL;

    if (version == wiped_version)
        return;
    if (sqlite3_exec(wiper,
                     "BEGIN IMMEDIATE; DELETE FROM schemas; "
                     "DELETE FROM schema_config; COMMIT",
                     NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "emptying the registry tables failed: %s\n", msg);
        abort();
    }
    /* The wiper's own commit leaves its data_version as it was. */
    wiped_version = version;
}

static const char *method_of(char letter)
{
    switch (letter) {
    case 'G':
        return "GET";
    case 'P':
        return "POST";
    case 'U':
        return "PUT";
    case 'D':
        return "DELETE";
    default:
        return "PATCH";
    }
}

/* Serves one request line (NUL-terminated, modified in place). */
static void serve(char *line)
{
    sl_registry_reply_t reply;
    const char *method = method_of(line[0]);
    char *path = line[0] != '\0' ? line + 1 : line;
    char *body = strchr(path, ' ');
    json_t *parsed;

    if (body != NULL)
        *body++ = '\0';
    if (sl_registry__route(&routes, method, path, body, &reply) != SL_OK)
        return;
    if (reply.status >= 500) {
        fprintf(stderr, "%s %s: HTTP %d: %.*s\n", method, path, reply.status,
                (int)reply.body_len, reply.body);
        abort();
    }
    parsed = json_loadb(reply.body, reply.body_len, JSON_DECODE_ANY, NULL);
    if (parsed == NULL) {
        fprintf(stderr, "%s %s: reply is not JSON: %.*s\n", method, path,
                (int)reply.body_len, reply.body);
        abort();
    }
    json_decref(parsed);
    free(reply.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;
    char *line;
    char *next;
    int count = 0;

    if (routes.st == NULL)
        setup();
    wipe();
    /* The server passes the path and body as C strings. */
    text = strndup((const char *)data, size);
    if (text == NULL)
        abort();
    for (line = text; line != NULL && count < MAX_REQUESTS; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        serve(line);
        count++;
    }
    free(text);
    return 0;
}
