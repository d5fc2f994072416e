/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the schema registry in distributed mode: the HTTP client against
 * the built-in registry server on 127.0.0.1 (a free port, an SQLite store
 * in a fresh mkdtemp folder), compatibility levels, the id cache, a
 * registry outage seen by the decoder, and malformed replies from a raw
 * socket server. The cases of registry_route_cases.c run on the same
 * SQLite file.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "registry_route_cases.h"
#include "schema/schema.h"
#include "store/store_int.h"
#include "util/err.h"

#define SUBJECT "sensor-readings-value"

static const char v1_json[] =
    "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"t\","
    "\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"value\",\"type\":\"int\"}]}";

/* v1 with whitespace and key order changed: the same schema. */
static const char v1_spaced_json[] =
    "{ \"name\": \"Reading\", \"namespace\": \"t\", \"type\": \"record\",\n"
    "  \"fields\": [ {\"type\": \"string\", \"name\": \"id\"},\n"
    "              {\"type\": \"int\", \"name\": \"value\"} ] }";

/* v1 plus an optional field with a default: BACKWARD and FORWARD. */
static const char v2_optional_json[] =
    "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"t\","
    "\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"value\",\"type\":\"int\"},"
    "{\"name\":\"unit\",\"type\":[\"null\",\"string\"],\"default\":null}]}";

/* v1 plus a required field: FORWARD only. */
static const char v2_required_json[] =
    "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"t\","
    "\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"value\",\"type\":\"int\"},"
    "{\"name\":\"unit\",\"type\":\"string\"}]}";

/* v1 without its required field "value": BACKWARD only. */
static const char v2_dropped_json[] =
    "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"t\","
    "\"fields\":[{\"name\":\"id\",\"type\":\"string\"}]}";

/* v1 with "value" turned into a string: neither direction. */
static const char v2_retyped_json[] =
    "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"t\","
    "\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"value\",\"type\":\"string\"}]}";

typedef struct fixture {
    char dir[64];
    char store[128];
    char url[64];
    sl_registry_server_t *srv;
    sl_registry_client_t *client;
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    char err[256] = "";

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sl_registry_test.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->store, sizeof(fx->store), "%s/registry.db", fx->dir);
    fx->srv =
        sl_registry_server_start(fx->store, "127.0.0.1", 0, err, sizeof(err));
    if (fx->srv == NULL) {
        fail_msg("sl_registry_server_start: %s", err);
    }
    snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%d",
             sl_registry_server_port(fx->srv));
    fx->client = sl_registry_client_create(fx->url, 2000, err, sizeof(err));
    assert_non_null(fx->client);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    char path[192];

    sl_registry_client_destroy(fx->client);
    sl_registry_server_stop(fx->srv);
    snprintf(path, sizeof(path), "%s/registry.db", fx->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/registry.db-wal", fx->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/registry.db-shm", fx->dir);
    unlink(path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static int32_t register_ok(fixture_t *fx, const char *subject, const char *json)
{
    char err[512] = "";
    int32_t id = 0;
    int rc = sl_registry_client_register(fx->client, subject, json, &id, err,
                                         sizeof(err));

    if (rc != SL_OK) {
        fail_msg("register under %s: %s (%s)", subject, sl_strerror(rc), err);
    }
    assert_true(id > 0);
    return id;
}

/* ---- register, look up, versions ---------------------------------------- */

static void test_register_same_schema_same_id(void **state)
{
    fixture_t *fx = *state;
    int32_t first = register_ok(fx, SUBJECT, v1_json);
    int32_t again = register_ok(fx, SUBJECT, v1_spaced_json);

    assert_int_equal(again, first);
}

static void test_lookup_by_id_returns_schema(void **state)
{
    fixture_t *fx = *state;
    int32_t id = register_ok(fx, SUBJECT, v1_json);
    char err[512] = "";
    char *text = NULL;
    avro_schema_t fetched = NULL;
    avro_schema_t expected = NULL;

    assert_int_equal(
        sl_registry_client_schema(fx->client, id, &text, err, sizeof(err)),
        SL_OK);
    assert_non_null(text);
    assert_int_equal(avro_schema_from_json_length(text, strlen(text), &fetched),
                     0);
    assert_int_equal(
        avro_schema_from_json_length(v1_json, strlen(v1_json), &expected), 0);
    assert_true(avro_schema_equal(fetched, expected));
    avro_schema_decref(fetched);
    avro_schema_decref(expected);
    free(text);
}

static void test_unknown_id_is_not_found(void **state)
{
    fixture_t *fx = *state;
    char err[512] = "";
    char *text = NULL;

    assert_int_equal(
        sl_registry_client_schema(fx->client, 999, &text, err, sizeof(err)),
        SL_ENOTFOUND);
    assert_null(text);
    assert_non_null(strstr(err, "HTTP 404"));
    assert_non_null(strstr(err, "40403"));
}

static void test_unknown_subject_is_not_found(void **state)
{
    fixture_t *fx = *state;
    char err[512] = "";
    int32_t *versions = NULL;
    size_t n = 0;

    assert_int_equal(sl_registry_client_versions(fx->client, "nope-value",
                                                 &versions, &n, err,
                                                 sizeof(err)),
                     SL_ENOTFOUND);
    assert_non_null(strstr(err, "40401"));
}

static void test_invalid_schema_is_rejected(void **state)
{
    fixture_t *fx = *state;
    char err[512] = "";
    int32_t id = 0;

    assert_int_equal(sl_registry_client_register(fx->client, SUBJECT,
                                                 "{\"type\":\"recrod\"}", &id,
                                                 err, sizeof(err)),
                     SL_EINVAL);
    assert_non_null(strstr(err, "HTTP 422"));
    assert_non_null(strstr(err, "42201"));
}

static void test_subject_versions_listed(void **state)
{
    fixture_t *fx = *state;
    char err[512] = "";
    int32_t *versions = NULL;
    size_t n = 0;
    int32_t id1 = register_ok(fx, SUBJECT, v1_json);
    int32_t id2 = register_ok(fx, SUBJECT, v2_optional_json);

    assert_int_not_equal(id1, id2);
    assert_int_equal(sl_registry_client_versions(fx->client, SUBJECT, &versions,
                                                 &n, err, sizeof(err)),
                     SL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(versions[0], 1);
    assert_int_equal(versions[1], 2);
    free(versions);
}

/* ---- compatibility ------------------------------------------------------ */

static void assert_compatibility(fixture_t *fx, const char *json, bool expected)
{
    char err[1024] = "";
    bool compatible = !expected;

    assert_int_equal(sl_registry_client_check(fx->client, SUBJECT, NULL, json,
                                              &compatible, err, sizeof(err)),
                     SL_OK);
    if (compatible != expected) {
        fail_msg("expected is_compatible=%d, got %d (%s)", expected, compatible,
                 err);
    }
}

static void set_level(fixture_t *fx, const char *level)
{
    char err[512] = "";

    assert_int_equal(sl_registry_client_set_level(fx->client, SUBJECT, level,
                                                  err, sizeof(err)),
                     SL_OK);
}

static void test_backward_accepts_optional_field(void **state)
{
    fixture_t *fx = *state;

    register_ok(fx, SUBJECT, v1_json);
    assert_compatibility(fx, v2_optional_json, true);
    register_ok(fx, SUBJECT, v2_optional_json);
}

static void test_backward_rejects_required_field(void **state)
{
    fixture_t *fx = *state;
    char err[1024] = "";
    bool compatible = true;
    int32_t id = 0;

    register_ok(fx, SUBJECT, v1_json);
    assert_int_equal(sl_registry_client_check(fx->client, SUBJECT, "1",
                                              v2_required_json, &compatible,
                                              err, sizeof(err)),
                     SL_OK);
    assert_false(compatible);
    assert_non_null(strstr(err, "default"));

    assert_int_equal(sl_registry_client_register(fx->client, SUBJECT,
                                                 v2_required_json, &id, err,
                                                 sizeof(err)),
                     SL_EREJECTED);
    assert_non_null(strstr(err, "HTTP 409"));
    assert_non_null(strstr(err, "incompatible"));
    assert_non_null(strstr(err, "BACKWARD"));
}

static void test_backward_accepts_dropped_field(void **state)
{
    fixture_t *fx = *state;

    register_ok(fx, SUBJECT, v1_json);
    assert_compatibility(fx, v2_dropped_json, true);
}

static void test_forward_level(void **state)
{
    fixture_t *fx = *state;

    register_ok(fx, SUBJECT, v1_json);
    set_level(fx, "FORWARD");
    assert_compatibility(fx, v2_required_json, true);
    assert_compatibility(fx, v2_dropped_json, false);
    assert_compatibility(fx, v2_optional_json, true);
}

static void test_full_level(void **state)
{
    fixture_t *fx = *state;

    register_ok(fx, SUBJECT, v1_json);
    set_level(fx, "FULL");
    assert_compatibility(fx, v2_optional_json, true);
    assert_compatibility(fx, v2_required_json, false);
    assert_compatibility(fx, v2_dropped_json, false);
}

static void test_none_level_accepts_anything(void **state)
{
    fixture_t *fx = *state;

    register_ok(fx, SUBJECT, v1_json);
    assert_compatibility(fx, v2_retyped_json, false);
    set_level(fx, "NONE");
    assert_compatibility(fx, v2_retyped_json, true);
    register_ok(fx, SUBJECT, v2_retyped_json);
}

static void test_transitive_checks_every_version(void **state)
{
    fixture_t *fx = *state;

    /* v1 -> dropped is BACKWARD; re-adding "value" without a default is
     * BACKWARD against "dropped" only if "dropped" is all it reads. */
    set_level(fx, "NONE");
    register_ok(fx, SUBJECT, v1_json);
    register_ok(fx, SUBJECT, v2_dropped_json);
    set_level(fx, "BACKWARD_TRANSITIVE");
    assert_compatibility(fx, v2_optional_json, false);
    set_level(fx, "BACKWARD");
    assert_compatibility(fx, v2_optional_json, false);
    assert_compatibility(fx, v2_dropped_json, true);
}

static void test_invalid_level_rejected(void **state)
{
    fixture_t *fx = *state;
    char err[512] = "";

    assert_int_equal(sl_registry_client_set_level(fx->client, NULL, "SIDEWAYS",
                                                  err, sizeof(err)),
                     SL_EINVAL);
    assert_non_null(strstr(err, "42203"));
}

/* A level set over HTTP is in the store, so a restarted server applies it:
 * FORWARD rejects the dropped field that the default BACKWARD accepts. */
static void test_level_survives_restart(void **state)
{
    fixture_t *fx = *state;
    char err[512] = "";

    register_ok(fx, SUBJECT, v1_json);
    set_level(fx, "FORWARD");
    sl_registry_client_destroy(fx->client);
    sl_registry_server_stop(fx->srv);

    fx->srv =
        sl_registry_server_start(fx->store, "127.0.0.1", 0, err, sizeof(err));
    if (fx->srv == NULL) {
        fail_msg("sl_registry_server_start again: %s", err);
    }
    snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%d",
             sl_registry_server_port(fx->srv));
    fx->client = sl_registry_client_create(fx->url, 2000, err, sizeof(err));
    assert_non_null(fx->client);
    assert_compatibility(fx, v2_dropped_json, false);
    assert_compatibility(fx, v2_required_json, true);
}

/* Route states on stores of their own stand for further registry servers
 * on the fixture's database. */
static sl_store_t *open_store(fixture_t *fx)
{
    char err[256] = "";
    sl_store_t *st = sl_store_open(fx->store, err, sizeof(err));

    if (st == NULL) {
        fail_msg("sl_store_open: %s", err);
    }
    return st;
}

static void exec_sql(sl_store_t *st, const char *sql)
{
    char *msg = NULL;
    char reason[256];

    if (sqlite3_exec(sl_store__sqlite_db(st), sql, NULL, NULL, &msg) !=
        SQLITE_OK) {
        snprintf(reason, sizeof(reason), "%s", msg ? msg : "");
        sqlite3_free(msg);
        fail_msg("%s failed: %s", sql, reason);
    }
}

static void test_routes_levels(void **state)
{
    sl_registry_routes_t routes = {open_store(*state)};

    route_cases_levels(&routes);
    sl_store_close(routes.st);
}

static void test_routes_two_registries_agree(void **state)
{
    sl_registry_routes_t a = {open_store(*state)};
    sl_registry_routes_t b = {open_store(*state)};

    route_cases_two_registries_agree(&a, &b);
    sl_store_close(a.st);
    sl_store_close(b.st);
}

static void test_routes_shared_id(void **state)
{
    sl_registry_routes_t routes = {open_store(*state)};

    route_cases_shared_id(&routes);
    sl_store_close(routes.st);
}

static void test_routes_old_row_shares_id(void **state)
{
    sl_registry_routes_t routes = {open_store(*state)};

    route_cases_old_row_shares_id(&routes, exec_sql);
    sl_store_close(routes.st);
}

/* Direct checks of the rules the decoder cannot meet until a value takes
 * them: enum symbols and writer union branches. */
static void test_can_read_enums_and_unions(void **state)
{
    static const char enum_ab[] =
        "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}";
    static const char enum_a[] =
        "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}";
    static const char enum_a_default[] =
        "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"],"
        "\"default\":\"A\"}";
    static const char union_int_string[] = "[\"int\",\"string\"]";
    static const char union_long[] = "[\"null\",\"long\"]";
    static const char plain_long[] = "\"long\"";
    char err[512] = "";

    (void)state;
    assert_int_equal(sl_schema_can_read(enum_a, enum_ab, err, sizeof(err)),
                     SL_EREJECTED);
    assert_int_equal(
        sl_schema_can_read(enum_a_default, enum_ab, err, sizeof(err)), SL_OK);
    assert_int_equal(sl_schema_can_read(enum_ab, enum_a, err, sizeof(err)),
                     SL_OK);
    assert_int_equal(
        sl_schema_can_read(union_long, union_int_string, err, sizeof(err)),
        SL_EREJECTED);
    assert_int_equal(
        sl_schema_can_read(union_long, "\"int\"", err, sizeof(err)), SL_OK);
    assert_int_equal(
        sl_schema_can_read(plain_long, union_int_string, err, sizeof(err)),
        SL_EREJECTED);
    assert_int_equal(
        sl_schema_can_read(plain_long, "\"int\"", err, sizeof(err)), SL_OK);
    assert_int_equal(
        sl_schema_can_read("\"int\"", plain_long, err, sizeof(err)),
        SL_EREJECTED);
}

/* ---- id cache and the decoder's remote registry ------------------------- */

static void test_id_fetched_once(void **state)
{
    fixture_t *fx = *state;
    int32_t id = register_ok(fx, SUBJECT, v1_json);
    char err[512] = "";
    char *text = NULL;
    unsigned long before = sl_registry_server_requests(fx->srv);

    assert_int_equal(
        sl_registry_client_schema(fx->client, id, &text, err, sizeof(err)),
        SL_OK);
    free(text);
    assert_int_equal(sl_registry_server_requests(fx->srv), before + 1);
    assert_int_equal(
        sl_registry_client_schema(fx->client, id, &text, err, sizeof(err)),
        SL_OK);
    free(text);
    assert_int_equal(sl_registry_server_requests(fx->srv), before + 1);
}

/* While the registry is down, ids the client has fetched are served from
 * its cache, and other calls fail with SL_EIO, a retryable code, naming
 * the request. Once a registry is back on the same store and port, the
 * same call succeeds. */
static void test_client_outage_then_recovery(void **state)
{
    fixture_t *fx = *state;
    int32_t cached = register_ok(fx, SUBJECT, v1_json);
    int32_t uncached = register_ok(fx, "other-value", v2_optional_json);
    int port = sl_registry_server_port(fx->srv);
    char expected[96];
    char err[512] = "";
    char *text = NULL;
    int32_t id = -1;

    assert_int_equal(
        sl_registry_client_schema(fx->client, cached, &text, err, sizeof(err)),
        SL_OK);
    free(text);
    sl_registry_server_stop(fx->srv);
    fx->srv = NULL;

    text = NULL;
    assert_int_equal(
        sl_registry_client_schema(fx->client, cached, &text, err, sizeof(err)),
        SL_OK);
    assert_non_null(strstr(text, "\"value\""));
    free(text);

    text = NULL;
    assert_int_equal(sl_registry_client_schema(fx->client, uncached, &text, err,
                                               sizeof(err)),
                     SL_EIO);
    assert_null(text);
    snprintf(expected, sizeof(expected), "GET %s/schemas/ids/%d", fx->url,
             (int)uncached);
    assert_non_null(strstr(err, expected));
    assert_int_equal(sl_registry_client_register(fx->client, SUBJECT,
                                                 v2_optional_json, &id, err,
                                                 sizeof(err)),
                     SL_EIO);
    assert_non_null(strstr(err, "POST"));

    fx->srv = sl_registry_server_start(fx->store, "127.0.0.1", port, err,
                                       sizeof(err));
    if (fx->srv == NULL) {
        fail_msg("restarting the registry on port %d failed: %s", port, err);
    }
    assert_int_equal(sl_registry_client_schema(fx->client, uncached, &text, err,
                                               sizeof(err)),
                     SL_OK);
    assert_non_null(strstr(text, "\"unit\""));
    free(text);
}

/* Encodes a v1 record {"id": id_text, "value": value} framed with id. */
static size_t encode_v1(int32_t schema_id, int value, uint8_t *out,
                        size_t out_size)
{
    avro_schema_t schema = NULL;
    sl_encoder_t *enc;
    avro_value_t *rec;
    avro_value_t field;
    size_t len = 0;

    assert_int_equal(
        avro_schema_from_json_length(v1_json, strlen(v1_json), &schema), 0);
    enc = sl_encoder_create(schema, schema_id);
    assert_non_null(enc);
    rec = sl_encoder_value(enc);
    if (avro_value_get_by_name(rec, "id", &field, NULL) != 0) {
        fail_msg("encoder value has no field id");
        return 0;
    }
    assert_int_equal(avro_value_set_string(&field, "s-1"), 0);
    if (avro_value_get_by_name(rec, "value", &field, NULL) != 0) {
        fail_msg("encoder value has no field value");
        return 0;
    }
    assert_int_equal(avro_value_set_int(&field, value), 0);
    assert_int_equal(sl_encoder_write(enc, out, out_size, &len), SL_OK);
    sl_encoder_destroy(enc);
    avro_schema_decref(schema);
    return len;
}

static int decoded_value(avro_value_t *rec)
{
    avro_value_t field;
    int32_t value = 0;

    if (avro_value_get_by_name(rec, "value", &field, NULL) != 0) {
        fail_msg("decoded value has no field value");
        return -1;
    }
    assert_int_equal(avro_value_get_int(&field, &value), 0);
    return value;
}

static void test_decoder_fetches_then_survives_outage(void **state)
{
    fixture_t *fx = *state;
    int32_t known = register_ok(fx, SUBJECT, v1_json);
    int32_t unknown = register_ok(fx, "other-value", v2_optional_json);
    sl_registry_t *reg = sl_registry_create();
    avro_schema_t reader = NULL;
    sl_decoder_t *dec;
    avro_value_t *value = NULL;
    uint8_t frame[64];
    size_t len;
    char err[512] = "";
    unsigned long before;

    assert_non_null(reg);
    assert_int_equal(
        sl_registry_set_remote(reg, fx->url, 1000, err, sizeof(err)), SL_OK);
    assert_int_equal(
        avro_schema_from_json_length(v1_json, strlen(v1_json), &reader), 0);
    dec = sl_decoder_create(reg, reader);
    assert_non_null(dec);

    /* First use fetches the writer schema, the second does not. */
    before = sl_registry_server_requests(fx->srv);
    len = encode_v1(known, 42, frame, sizeof(frame));
    assert_int_equal(sl_decoder_decode(dec, frame, len, &value, NULL),
                     SL_DECODE_OK);
    assert_int_equal(decoded_value(value), 42);
    assert_int_equal(sl_registry_server_requests(fx->srv), before + 1);
    assert_int_equal(sl_decoder_decode(dec, frame, len, &value, NULL),
                     SL_DECODE_OK);
    assert_int_equal(sl_registry_server_requests(fx->srv), before + 1);

    /* Outage: the cached id keeps decoding, an uncached one is retryable. */
    sl_registry_server_stop(fx->srv);
    fx->srv = NULL;
    len = encode_v1(known, 7, frame, sizeof(frame));
    assert_int_equal(sl_decoder_decode(dec, frame, len, &value, NULL),
                     SL_DECODE_OK);
    assert_int_equal(decoded_value(value), 7);
    len = encode_v1(unknown, 7, frame, sizeof(frame));
    assert_int_equal(sl_decoder_decode(dec, frame, len, &value, NULL),
                     SL_DECODE_REGISTRY_UNAVAILABLE);
    assert_string_equal(sl_decode_err_name(SL_DECODE_REGISTRY_UNAVAILABLE),
                        "registry_unavailable");

    sl_decoder_destroy(dec);
    avro_schema_decref(reader);
    sl_registry_destroy(reg);
}

static void test_decoder_unknown_remote_id(void **state)
{
    fixture_t *fx = *state;
    sl_registry_t *reg = sl_registry_create();
    avro_schema_t reader = NULL;
    sl_decoder_t *dec;
    avro_value_t *value = NULL;
    uint8_t frame[64];
    size_t len;
    char err[512] = "";

    assert_int_equal(
        sl_registry_set_remote(reg, fx->url, 1000, err, sizeof(err)), SL_OK);
    assert_int_equal(
        avro_schema_from_json_length(v1_json, strlen(v1_json), &reader), 0);
    dec = sl_decoder_create(reg, reader);
    assert_non_null(dec);
    len = encode_v1(4242, 1, frame, sizeof(frame));
    assert_int_equal(sl_decoder_decode(dec, frame, len, &value, NULL),
                     SL_DECODE_UNKNOWN_SCHEMA_ID);
    sl_decoder_destroy(dec);
    avro_schema_decref(reader);
    sl_registry_destroy(reg);
}

/* ---- malformed replies from a raw socket server ------------------------- */

typedef struct raw_server {
    int fd;
    int port;
    const char *reply;
    pthread_t thread;
} raw_server_t;

/* Answers each connection with the fixed reply after reading the request
 * headers, until the listening socket is shut down. */
static void *raw_main(void *arg)
{
    raw_server_t *raw = arg;

    for (;;) {
        char buf[4096];
        int conn = accept(raw->fd, NULL, NULL);
        ssize_t n;

        if (conn < 0) {
            return NULL;
        }
        n = read(conn, buf, sizeof(buf));
        (void)n;
        n = write(conn, raw->reply, strlen(raw->reply));
        (void)n;
        close(conn);
    }
}

static void raw_start(raw_server_t *raw, const char *reply)
{
    struct sockaddr_in addr;
    socklen_t addr_len = sizeof(addr);

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    raw->reply = reply;
    raw->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(raw->fd >= 0);
    assert_int_equal(bind(raw->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(raw->fd, 8), 0);
    assert_int_equal(getsockname(raw->fd, (struct sockaddr *)&addr, &addr_len),
                     0);
    raw->port = ntohs(addr.sin_port);
    assert_int_equal(pthread_create(&raw->thread, NULL, raw_main, raw), 0);
}

static void raw_stop(raw_server_t *raw)
{
    shutdown(raw->fd, SHUT_RDWR);
    pthread_join(raw->thread, NULL);
    close(raw->fd);
}

/* Fetches schema 1 from a raw server sending reply; returns the code. */
static int fetch_from_raw(const char *reply, char *err, size_t err_size)
{
    raw_server_t raw;
    sl_registry_client_t *client;
    char url[64];
    char *text = NULL;
    int rc;

    raw_start(&raw, reply);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", raw.port);
    client = sl_registry_client_create(url, 2000, err, err_size);
    assert_non_null(client);
    rc = sl_registry_client_schema(client, 1, &text, err, err_size);
    assert_null(text);
    sl_registry_client_destroy(client);
    raw_stop(&raw);
    return rc;
}

static void test_garbage_reply_is_clear_error(void **state)
{
    char err[512] = "";

    (void)state;
    assert_int_equal(fetch_from_raw("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n"
                                    "Connection: close\r\n\r\n{\"schema\": [",
                                    err, sizeof(err)),
                     SL_EIO);
    assert_non_null(strstr(err, "not JSON"));
}

static void test_reply_without_schema_is_clear_error(void **state)
{
    char err[512] = "";

    (void)state;
    assert_int_equal(fetch_from_raw("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n"
                                    "Connection: close\r\n\r\n{\"id\": 1}",
                                    err, sizeof(err)),
                     SL_EIO);
    assert_non_null(strstr(err, "malformed"));
}

static void test_error_without_body_is_clear_error(void **state)
{
    char err[512] = "";

    (void)state;
    assert_int_equal(
        fetch_from_raw("HTTP/1.1 503 Service Unavailable\r\n"
                       "Content-Length: 5\r\nConnection: close\r\n\r\noops!",
                       err, sizeof(err)),
        SL_EIO);
    assert_non_null(strstr(err, "HTTP 503"));
}

static void test_not_http_is_clear_error(void **state)
{
    char err[512] = "";

    (void)state;
    assert_int_equal(
        fetch_from_raw("\x01\x02garbage\r\n\r\n", err, sizeof(err)), SL_EIO);
    assert_true(strlen(err) > 0);
}

static void test_bad_url_rejected(void **state)
{
    char err[256] = "";

    (void)state;
    assert_null(
        sl_registry_client_create("ftp://127.0.0.1", 0, err, sizeof(err)));
    assert_non_null(strstr(err, "invalid"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_same_schema_same_id,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_by_id_returns_schema, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_id_is_not_found, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_subject_is_not_found,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_schema_is_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_subject_versions_listed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_backward_accepts_optional_field,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_backward_rejects_required_field,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_backward_accepts_dropped_field,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_none_level_accepts_anything, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_transitive_checks_every_version,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_level_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_level_survives_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_routes_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes_two_registries_agree, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_routes_shared_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes_old_row_shares_id, setup,
                                        teardown),
        cmocka_unit_test(test_can_read_enums_and_unions),
        cmocka_unit_test_setup_teardown(test_id_fetched_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_decoder_fetches_then_survives_outage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_outage_then_recovery, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_decoder_unknown_remote_id, setup,
                                        teardown),
        cmocka_unit_test(test_garbage_reply_is_clear_error),
        cmocka_unit_test(test_reply_without_schema_is_clear_error),
        cmocka_unit_test(test_error_without_body_is_clear_error),
        cmocka_unit_test(test_not_http_is_clear_error),
        cmocka_unit_test(test_bad_url_rejected),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
