/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of src/schema: framing, the bounded body check, the registry,
 * resolution (defaults, enums by symbol), and the record codecs.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "fixtures.h"
#include "schema/schema.h"
#include "schema/schema_int.h"
#include "util/err.h"

#define BYTES(s)                                                               \
    {                                                                          \
        s, sizeof(s) - 1                                                       \
    }

typedef struct seg {
    const char *bytes;
    size_t len;
} seg_t;

static const char all_types_json[] =
    "{\"type\":\"record\",\"name\":\"All\",\"fields\":["
    "{\"name\":\"s\",\"type\":\"string\"},"
    "{\"name\":\"b\",\"type\":\"bytes\"},"
    "{\"name\":\"i\",\"type\":\"int\"},"
    "{\"name\":\"l\",\"type\":\"long\"},"
    "{\"name\":\"f\",\"type\":\"float\"},"
    "{\"name\":\"d\",\"type\":\"double\"},"
    "{\"name\":\"t\",\"type\":\"boolean\"},"
    "{\"name\":\"n\",\"type\":\"null\"},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
    "\"symbols\":[\"A\",\"B\"]}},"
    "{\"name\":\"u\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"x\",\"type\":{\"type\":\"fixed\",\"name\":\"X\",\"size\":2}},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"int\"}},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"long\"}}]}";

enum { F_S, F_B, F_I, F_L, F_F, F_D, F_T, F_E, F_U, F_X, F_A, F_M, F_COUNT };

/* One valid encoding per field of all_types_json (null takes no bytes). */
static const seg_t valid_fields[F_COUNT] = {
    [F_S] = BYTES("\x04hi"),
    [F_B] = BYTES("\x02\xff"),
    [F_I] = BYTES("\x02"),
    [F_L] = BYTES("\x01"),
    [F_F] = BYTES("\x00\x00\x80\x3f"),
    [F_D] = BYTES("\x00\x00\x00\x00\x00\x00\xf8\x3f"),
    [F_T] = BYTES("\x01"),
    [F_E] = BYTES("\x02"),
    [F_U] = BYTES("\x02\x02x"),
    [F_X] = BYTES("ab"),
    [F_A] = BYTES("\x04\x02\x04\x00"),
    [F_M] = BYTES("\x02\x02k\x06\x00"),
};

static avro_schema_t parse(const char *json)
{
    avro_schema_t schema = NULL;

    if (avro_schema_from_json_length(json, strlen(json), &schema) != 0) {
        fail_msg("schema does not parse: %s", avro_strerror());
    }
    return schema;
}

/* Builds the all-types body with field `field` replaced by `with`. */
static size_t build_body(uint8_t *out, int field, seg_t with)
{
    size_t n = 0;

    for (int i = 0; i < F_COUNT; i++) {
        seg_t s = i == field ? with : valid_fields[i];

        memcpy(out + n, s.bytes, s.len);
        n += s.len;
    }
    return n;
}

/* ---- Framing ------------------------------------------------------------ */

static void test_frame_parse_classifies_headers(void **state)
{
    static const uint8_t ok[] = {0, 1, 2, 3, 4, 0xaa};
    static const uint8_t magic[] = {1, 0, 0, 0, 1, 0};
    uint8_t *big = calloc(SL_FRAME_MAX_BYTES + 1, 1);
    const uint8_t *body = NULL;
    size_t body_len = 0;
    int32_t id = 0;

    (void)state;
    assert_int_equal(sl_frame_parse(ok, 0, &id, &body, &body_len),
                     SL_DECODE_EMPTY_PAYLOAD);
    assert_int_equal(sl_frame_parse(NULL, 0, &id, &body, &body_len),
                     SL_DECODE_EMPTY_PAYLOAD);
    for (size_t len = 1; len < SL_FRAME_HEADER_SIZE; len++) {
        assert_int_equal(sl_frame_parse(ok, len, &id, &body, &body_len),
                         SL_DECODE_TRUNCATED_HEADER);
    }
    assert_int_equal(
        sl_frame_parse(magic, sizeof(magic), &id, &body, &body_len),
        SL_DECODE_BAD_MAGIC_BYTE);
    assert_non_null(big);
    assert_int_equal(
        sl_frame_parse(big, SL_FRAME_MAX_BYTES + 1, &id, &body, &body_len),
        SL_DECODE_PAYLOAD_TOO_LARGE);
    assert_int_equal(
        sl_frame_parse(big, SL_FRAME_MAX_BYTES, &id, &body, &body_len),
        SL_DECODE_OK);
    free(big);

    assert_int_equal(sl_frame_parse(ok, sizeof(ok), &id, &body, &body_len),
                     SL_DECODE_OK);
    assert_int_equal(id, 0x01020304);
    assert_ptr_equal(body, ok + 5);
    assert_int_equal(body_len, 1);
}

static void test_decode_err_names_are_reason_codes(void **state)
{
    static const char *const names[SL_DECODE_ERR_COUNT] = {
        "ok",
        "empty_payload",
        "truncated_header",
        "bad_magic_byte",
        "payload_too_large",
        "unknown_schema_id",
        "truncated_body",
        "invalid_length",
        "invalid_varint",
        "invalid_enum_index",
        "invalid_union_index",
        "invalid_utf8",
        "trailing_bytes",
        "schema_resolution_failed",
        "schema_incompatible",
        "field_too_long",
        "integer_out_of_range",
        "internal",
        "registry_unavailable",
    };

    (void)state;
    for (int i = 0; i < SL_DECODE_ERR_COUNT; i++) {
        assert_string_equal(sl_decode_err_name((sl_decode_err_t)i), names[i]);
    }
    assert_string_equal(sl_decode_err_name(SL_DECODE_ERR_COUNT), "internal");
}

/* ---- Body check --------------------------------------------------------- */

static void test_check_accepts_libavro_encoding(void **state)
{
    avro_schema_t schema = parse(all_types_json);
    avro_value_iface_t *cls = avro_generic_class_from_schema(schema);
    json_t *json =
        json_loads("{\"s\":\"hi\",\"b\":\"\\u00ff\",\"i\":1,\"l\":-1,\"f\":1.0,"
                   "\"d\":1.5,\"t\":true,\"n\":null,\"e\":\"B\",\"u\":\"x\","
                   "\"x\":\"ab\",\"a\":[1,2],\"m\":{\"k\":3}}",
                   0, NULL);
    uint8_t expected[256], buf[256];
    size_t expected_len = build_body(expected, -1, valid_fields[0]);
    avro_writer_t writer = avro_writer_memory((char *)buf, sizeof(buf));
    avro_value_t value;
    char err[256] = "";

    (void)state;
    assert_non_null(json);
    assert_int_equal(avro_generic_value_new(cls, &value), 0);
    assert_int_equal(sl_value__from_json(&value, json, err, sizeof(err)),
                     SL_OK);
    assert_int_equal(avro_value_write(writer, &value), 0);

    /* The hand-built body is what libavro writes, and the check passes. */
    assert_int_equal(avro_writer_tell(writer), expected_len);
    assert_memory_equal(buf, expected, expected_len);
    assert_int_equal(sl_avro_check(schema, buf, expected_len), SL_DECODE_OK);

    avro_writer_free(writer);
    avro_value_decref(&value);
    avro_value_iface_decref(cls);
    json_decref(json);
    avro_schema_decref(schema);
}

static void test_check_rejects_each_malformed_field(void **state)
{
    static const struct {
        int field;
        seg_t with;
        sl_decode_err_t err;
    } cases[] = {
        {F_I, BYTES("\xff\xff\xff\xff\x0f"), SL_DECODE_OK},
        {F_I, BYTES("\x80\x80\x80\x80\x10"), SL_DECODE_INVALID_VARINT},
        {F_I, BYTES("\x80\x80\x80\x80\x80\x01"), SL_DECODE_INVALID_VARINT},
        {F_L, BYTES("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), SL_DECODE_OK},
        {F_L, BYTES("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"),
         SL_DECODE_INVALID_VARINT},
        {F_L, BYTES("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x00"),
         SL_DECODE_INVALID_VARINT},
        {F_S, BYTES("\x01"), SL_DECODE_INVALID_LENGTH},
        {F_S, BYTES("\xfe\xff\xff\xff\x0f"), SL_DECODE_TRUNCATED_BODY},
        {F_S, BYTES("\x04\xc0\xaf"), SL_DECODE_INVALID_UTF8},
        {F_S, BYTES("\x04\x61\x00"), SL_DECODE_INVALID_UTF8},
        {F_B, BYTES("\x04\xc0\xaf"), SL_DECODE_OK},
        {F_B, BYTES("\x03"), SL_DECODE_INVALID_LENGTH},
        {F_T, BYTES("\x02"), SL_DECODE_INVALID_ENUM_INDEX},
        {F_T, BYTES("\x00"), SL_DECODE_OK},
        {F_E, BYTES("\x04"), SL_DECODE_INVALID_ENUM_INDEX},
        {F_E, BYTES("\x01"), SL_DECODE_INVALID_ENUM_INDEX},
        {F_U, BYTES("\x04"), SL_DECODE_INVALID_UNION_INDEX},
        {F_U, BYTES("\x01"), SL_DECODE_INVALID_UNION_INDEX},
        {F_U, BYTES("\x00"), SL_DECODE_OK},
        {F_A, BYTES("\x03\x04\x02\x04\x00"), SL_DECODE_OK},
        {F_A, BYTES("\x03\x03\x02\x04\x00"), SL_DECODE_INVALID_LENGTH},
        {F_A, BYTES("\x03\x7e\x02\x04\x00"), SL_DECODE_TRUNCATED_BODY},
        {F_A, BYTES("\xfe\xff\xff\xff\x0f\x02"), SL_DECODE_TRUNCATED_BODY},
        {F_A, BYTES("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x00"),
         SL_DECODE_INVALID_LENGTH},
        {F_M, BYTES("\x02\x04\xc0\xaf\x06\x00"), SL_DECODE_INVALID_UTF8},
        {F_M, BYTES("\x00"), SL_DECODE_OK},
    };
    avro_schema_t schema = parse(all_types_json);

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t body[256];
        size_t len = build_body(body, cases[i].field, cases[i].with);
        sl_decode_err_t err = sl_avro_check(schema, body, len);

        if (err != cases[i].err) {
            fail_msg("case %zu: got %s, expected %s", i,
                     sl_decode_err_name(err), sl_decode_err_name(cases[i].err));
        }
    }
    avro_schema_decref(schema);
}

static void test_check_rejects_every_prefix_and_trailing_byte(void **state)
{
    avro_schema_t schema = parse(all_types_json);
    uint8_t body[256];
    size_t len = build_body(body, -1, valid_fields[0]);

    (void)state;
    for (size_t cut = 0; cut < len; cut++) {
        sl_decode_err_t err = sl_avro_check(schema, body, cut);

        if (err != SL_DECODE_TRUNCATED_BODY) {
            fail_msg("prefix of %zu bytes: got %s", cut,
                     sl_decode_err_name(err));
        }
    }
    body[len] = 0;
    assert_int_equal(sl_avro_check(schema, body, len + 1),
                     SL_DECODE_TRAILING_BYTES);
    avro_schema_decref(schema);
}

static void test_check_bounds_empty_items_and_depth(void **state)
{
    avro_schema_t nulls = parse("{\"type\":\"array\",\"items\":\"null\"}");
    avro_schema_t node =
        parse("{\"type\":\"record\",\"name\":\"Node\",\"fields\":[{\"name\":"
              "\"next\",\"type\":[\"null\",\"Node\"]}]}");
    uint8_t deep[200];

    (void)state;
    assert_int_equal(sl_avro_check(nulls, (const uint8_t *)"\x06\x00", 2),
                     SL_DECODE_OK);
    assert_int_equal(
        sl_avro_check(nulls, (const uint8_t *)"\xfe\xff\xff\xff\x0f\x00", 6),
        SL_DECODE_INVALID_LENGTH);

    memset(deep, 0x02, sizeof(deep));
    deep[10] = 0x00;
    assert_int_equal(sl_avro_check(node, deep, 11), SL_DECODE_OK);
    deep[10] = 0x02;
    deep[sizeof(deep) - 1] = 0x00;
    assert_int_equal(sl_avro_check(node, deep, sizeof(deep)),
                     SL_DECODE_INVALID_LENGTH);
    avro_schema_decref(nulls);
    avro_schema_decref(node);
}

/* ---- Registry ----------------------------------------------------------- */

static const char schema_a[] = "{\"type\":\"record\",\"name\":\"A\","
                               "\"fields\":[{\"name\":\"x\",\"type\":"
                               "\"int\"}]}";
static const char schema_a_spaced[] =
    "{ \"fields\": [ {\"type\": \"int\", \"name\": \"x\"} ],\n"
    "  \"name\": \"A\", \"type\": \"record\" }";
static const char schema_b[] = "{\"type\":\"record\",\"name\":\"B\","
                               "\"fields\":[{\"name\":\"y\",\"type\":"
                               "\"long\"}]}";

static void test_registry_assigns_ids_and_versions(void **state)
{
    sl_registry_t *reg = sl_registry_create();
    avro_schema_t a;
    char err[256] = "";
    int32_t id = 0;

    (void)state;
    assert_non_null(reg);
    assert_int_equal(sl_registry_latest_id(reg, "t-value"), -1);
    assert_int_equal(
        sl_registry_register(reg, "t-value", schema_a, &id, err, sizeof(err)),
        SL_OK);
    assert_int_equal(id, 1);
    assert_int_equal(sl_registry_register(reg, "u-value", schema_a_spaced, &id,
                                          err, sizeof(err)),
                     SL_OK);
    assert_int_equal(id, 1);
    assert_int_equal(sl_registry_latest_id(reg, "u-value"), 1);
    assert_int_equal(
        sl_registry_register(reg, "t-value", schema_b, &id, err, sizeof(err)),
        SL_OK);
    assert_int_equal(id, 2);
    assert_int_equal(sl_registry_latest_id(reg, "t-value"), 2);
    a = parse(schema_a);
    assert_true(avro_schema_equal(sl_registry_lookup(reg, 1), a) != 0);
    avro_schema_decref(a);
    assert_null(sl_registry_lookup(reg, 3));

    assert_int_equal(
        sl_registry_add(reg, 10, "v-value", schema_b, err, sizeof(err)), SL_OK);
    assert_int_equal(
        sl_registry_add(reg, 10, "v-value", schema_b, err, sizeof(err)), SL_OK);
    assert_int_equal(
        sl_registry_add(reg, 10, "v-value", schema_a, err, sizeof(err)),
        SL_EINVAL);
    assert_non_null(strstr(err, "already bound"));
    assert_int_equal(sl_registry_add(reg, 0, NULL, schema_a, err, sizeof(err)),
                     SL_EINVAL);
    assert_int_equal(sl_registry_register(reg, "w-value",
                                          "{\"type\":\"record\",\"name\":\"C\","
                                          "\"fields\":[]}",
                                          &id, err, sizeof(err)),
                     SL_OK);
    assert_int_equal(id, 11);

    err[0] = '\0';
    assert_int_equal(sl_registry_register(reg, "t-value", "{not json", &id, err,
                                          sizeof(err)),
                     SL_EINVAL);
    assert_non_null(strstr(err, "invalid schema JSON"));
    assert_int_equal(sl_registry_register(reg, "t-value",
                                          "{\"type\":\"nosuchtype\"}", &id, err,
                                          sizeof(err)),
                     SL_EINVAL);
    assert_non_null(strstr(err, "invalid Avro schema"));
    sl_registry_destroy(reg);
    sl_registry_destroy(NULL);
}

typedef struct reg_thread_arg {
    sl_registry_t *reg;
    int32_t ids[2];
} reg_thread_arg_t;

static void *register_both(void *p)
{
    reg_thread_arg_t *arg = p;

    for (int round = 0; round < 50; round++) {
        if (sl_registry_register(arg->reg, "a-value", schema_a, &arg->ids[0],
                                 NULL, 0) != SL_OK ||
            sl_registry_register(arg->reg, "b-value", schema_b, &arg->ids[1],
                                 NULL, 0) != SL_OK) {
            arg->ids[0] = -1;
        }
    }
    return NULL;
}

static void test_registry_concurrent_registration_agrees(void **state)
{
    sl_registry_t *reg = sl_registry_create();
    pthread_t threads[4];
    reg_thread_arg_t args[4];

    (void)state;
    for (int i = 0; i < 4; i++) {
        args[i] = (reg_thread_arg_t){.reg = reg};
        assert_int_equal(
            pthread_create(&threads[i], NULL, register_both, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
    }
    for (int i = 1; i < 4; i++) {
        assert_int_equal(args[i].ids[0], args[0].ids[0]);
        assert_int_equal(args[i].ids[1], args[0].ids[1]);
    }
    assert_true(args[0].ids[0] >= 1 && args[0].ids[0] <= 2);
    assert_int_not_equal(args[0].ids[0], args[0].ids[1]);
    assert_null(sl_registry_lookup(reg, 3));
    sl_registry_destroy(reg);
}

static void test_builtin_schemas_and_files_load(void **state)
{
    char err[256] = "";
    char path[4200];
    const char *text = sl_schema_builtin("sensor_reading.avsc");
    avro_schema_t schema;

    (void)state;
    assert_non_null(text);
    schema = parse(text);
    assert_string_equal(avro_schema_name(schema), "SensorReading");
    avro_schema_decref(schema);
    schema = parse(sl_schema_builtin("ecommerce_event.avsc"));
    assert_string_equal(avro_schema_name(schema), "EcommerceEvent");
    avro_schema_decref(schema);
    assert_null(sl_schema_builtin("nosuch.avsc"));

    assert_null(sl_schema_load_file("/nonexistent/x.avsc", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/x.avsc"));
    snprintf(path, sizeof(path), "%s/../../README.md", fixture_case_dir("B01"));
    assert_null(sl_schema_load_file(path, err, sizeof(err)));
    assert_non_null(strstr(err, "invalid Avro schema"));
}

/* ---- Resolution --------------------------------------------------------- */

/* Encodes a JSON value with `schema` as a framed message of id. */
static size_t encode_json(avro_schema_t schema, int32_t id, const char *json,
                          uint8_t *out, size_t out_size)
{
    sl_encoder_t *enc = sl_encoder_create(schema, id);
    json_t *root = json_loads(json, JSON_DECODE_ANY, NULL);
    char err[256] = "";
    size_t len = 0;

    assert_non_null(enc);
    assert_non_null(root);
    if (sl_value__from_json(sl_encoder_value(enc), root, err, sizeof(err))) {
        fail_msg("cannot set value from %s: %s", json, err);
    }
    assert_int_equal(sl_encoder_write(enc, out, out_size, &len), SL_OK);
    json_decref(root);
    sl_encoder_destroy(enc);
    return len;
}

static const char *decoded_symbol(sl_decoder_t *dec, const uint8_t *msg,
                                  size_t len, sl_decode_err_t *err)
{
    avro_value_t *v, field;
    int index;

    *err = sl_decoder_decode(dec, msg, len, &v, NULL);
    if (*err != SL_DECODE_OK) {
        return NULL;
    }
    assert_int_equal(avro_value_get_by_name(v, "e", &field, NULL), 0);
    assert_int_equal(avro_value_get_enum(&field, &index), 0);
    return avro_schema_enum_get(avro_value_get_schema(&field), index);
}

static void test_enum_resolved_by_symbol_not_index(void **state)
{
    static const char writer_json[] =
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"e\","
        "\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":"
        "[\"A\",\"B\",\"C\",\"D\"]}}]}";
    static const char reader_json[] =
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"e\","
        "\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":"
        "[\"C\",\"B\",\"A\"],\"default\":\"B\"}}]}";
    static const char strict_json[] =
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"e\","
        "\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":"
        "[\"B\",\"C\",\"A\"]}}]}";
    sl_registry_t *reg = sl_registry_create();
    avro_schema_t writer = parse(writer_json);
    avro_schema_t reader = parse(reader_json);
    avro_schema_t strict = parse(strict_json);
    sl_decoder_t *dec, *strict_dec;
    uint8_t a[64], c[64], d[64];
    size_t a_len, c_len, d_len;
    sl_decode_err_t err;
    int32_t id;

    (void)state;
    assert_int_equal(sl_registry_register(reg, "w", writer_json, &id, NULL, 0),
                     SL_OK);
    assert_int_equal(sl_registry_register(reg, "r", reader_json, &id, NULL, 0),
                     SL_OK);
    a_len = encode_json(writer, 1, "{\"e\":\"A\"}", a, sizeof(a));
    c_len = encode_json(writer, 1, "{\"e\":\"C\"}", c, sizeof(c));
    d_len = encode_json(writer, 1, "{\"e\":\"D\"}", d, sizeof(d));

    dec = sl_decoder_create(reg, reader);
    assert_string_equal(decoded_symbol(dec, a, a_len, &err), "A");
    assert_string_equal(decoded_symbol(dec, c, c_len, &err), "C");
    /* D is unknown to the reader: its default symbol B is used. */
    assert_string_equal(decoded_symbol(dec, d, d_len, &err), "B");

    /* Without a default, only the unknown symbol fails. */
    strict_dec = sl_decoder_create(reg, strict);
    assert_string_equal(decoded_symbol(strict_dec, a, a_len, &err), "A");
    assert_null(decoded_symbol(strict_dec, d, d_len, &err));
    assert_int_equal(err, SL_DECODE_SCHEMA_RESOLUTION_FAILED);

    sl_decoder_destroy(dec);
    sl_decoder_destroy(strict_dec);
    avro_schema_decref(writer);
    avro_schema_decref(reader);
    avro_schema_decref(strict);
    sl_registry_destroy(reg);
}

static void test_nested_record_defaults_filled(void **state)
{
    static const char writer_json[] =
        "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"t\",\"fields\":["
        "{\"name\":\"inner\",\"type\":{\"type\":\"record\",\"name\":\"I\","
        "\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}},"
        "{\"name\":\"list\",\"type\":{\"type\":\"array\",\"items\":\"I\"}}]}";
    static const char reader_json[] =
        "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"t\",\"fields\":["
        "{\"name\":\"inner\",\"type\":{\"type\":\"record\",\"name\":\"I\","
        "\"fields\":[{\"name\":\"a\",\"type\":\"long\"},"
        "{\"name\":\"b\",\"type\":\"string\",\"default\":\"z\"}]}},"
        "{\"name\":\"list\",\"type\":{\"type\":\"array\",\"items\":\"I\"}},"
        "{\"name\":\"extra\",\"type\":[\"long\",\"null\"],\"default\":7}]}";
    sl_registry_t *reg = sl_registry_create();
    avro_schema_t writer = parse(writer_json);
    avro_schema_t reader = parse(reader_json);
    sl_decoder_t *dec;
    uint8_t msg[128];
    size_t len, count = 0;
    avro_value_t *v, field, item, sub, branch;
    int32_t id;
    int64_t n;
    const char *s;

    (void)state;
    assert_int_equal(sl_registry_register(reg, "w", writer_json, &id, NULL, 0),
                     SL_OK);
    assert_int_equal(sl_registry_register(reg, "r", reader_json, &id, NULL, 0),
                     SL_OK);
    len = encode_json(writer, 1,
                      "{\"inner\":{\"a\":1},\"list\":[{\"a\":2},{\"a\":3}]}",
                      msg, sizeof(msg));
    dec = sl_decoder_create(reg, reader);
    assert_int_equal(sl_decoder_decode(dec, msg, len, &v, NULL), SL_DECODE_OK);

    assert_int_equal(avro_value_get_by_name(v, "inner", &field, NULL), 0);
    assert_int_equal(avro_value_get_by_name(&field, "a", &sub, NULL), 0);
    assert_int_equal(avro_value_get_long(&sub, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(avro_value_get_by_name(&field, "b", &sub, NULL), 0);
    assert_int_equal(avro_value_get_string(&sub, &s, NULL), 0);
    assert_string_equal(s, "z");

    assert_int_equal(avro_value_get_by_name(v, "list", &field, NULL), 0);
    assert_int_equal(avro_value_get_size(&field, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(avro_value_get_by_index(&field, 1, &item, NULL), 0);
    assert_int_equal(avro_value_get_by_name(&item, "a", &sub, NULL), 0);
    assert_int_equal(avro_value_get_long(&sub, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(avro_value_get_by_name(&item, "b", &sub, NULL), 0);
    assert_int_equal(avro_value_get_string(&sub, &s, NULL), 0);
    assert_string_equal(s, "z");

    assert_int_equal(avro_value_get_by_name(v, "extra", &field, NULL), 0);
    assert_int_equal(avro_value_get_current_branch(&field, &branch), 0);
    assert_int_equal(avro_value_get_long(&branch, &n), 0);
    assert_int_equal(n, 7);

    sl_decoder_destroy(dec);
    avro_schema_decref(writer);
    avro_schema_decref(reader);
    sl_registry_destroy(reg);
}

static void test_unknown_schema_id_reported(void **state)
{
    sl_registry_t *reg = sl_registry_create();
    avro_schema_t schema = parse(schema_a);
    sl_decoder_t *dec = sl_decoder_create(reg, schema);
    static const uint8_t msg[] = {0, 0, 0, 0, 9, 2};
    avro_value_t *v;
    int32_t id = 0;

    (void)state;
    assert_int_equal(sl_decoder_decode(dec, msg, sizeof(msg), &v, &id),
                     SL_DECODE_UNKNOWN_SCHEMA_ID);
    assert_int_equal(id, 9);
    sl_decoder_destroy(dec);
    avro_schema_decref(schema);
    sl_registry_destroy(reg);
}

/* ---- Record codecs ------------------------------------------------------ */

typedef struct codec_ctx {
    sl_registry_t *reg;
    avro_schema_t schema;
    sl_encoder_t *enc;
    sl_decoder_t *dec;
} codec_ctx_t;

static void codec_open(codec_ctx_t *ctx, const char *file, const char *subject)
{
    int32_t id = 0;
    char err[256] = "";

    ctx->reg = sl_registry_create();
    assert_int_equal(sl_registry_register(ctx->reg, subject,
                                          sl_schema_builtin(file), &id, err,
                                          sizeof(err)),
                     SL_OK);
    ctx->schema = sl_registry_lookup(ctx->reg, id);
    ctx->enc = sl_encoder_create(ctx->schema, id);
    ctx->dec = sl_decoder_create(ctx->reg, ctx->schema);
    assert_non_null(ctx->enc);
    assert_non_null(ctx->dec);
}

static void codec_close(codec_ctx_t *ctx)
{
    sl_decoder_destroy(ctx->dec);
    sl_encoder_destroy(ctx->enc);
    sl_registry_destroy(ctx->reg);
}

static sl_reading_t sample_reading(void)
{
    sl_reading_t rec = {
        .timestamp_ms = INT64_C(1767225600123),
        .value = -12.75,
        .battery_level = 87,
        .signal_strength = -71,
        .sensor_type = SL_SENSOR_VIBRATION,
        .anomaly = true,
        .has_unit = true,
    };

    strcpy(rec.sensor_id, "sensor-\xc3\xa9-042");
    strcpy(rec.location, "hall 3");
    strcpy(rec.unit, "mm/s");
    return rec;
}

static void assert_reading_equal(const sl_reading_t *a, const sl_reading_t *b)
{
    assert_string_equal(a->sensor_id, b->sensor_id);
    assert_string_equal(a->location, b->location);
    assert_int_equal(a->sensor_type, b->sensor_type);
    assert_int_equal(a->timestamp_ms, b->timestamp_ms);
    assert_true(a->value == b->value);
    assert_int_equal(a->battery_level, b->battery_level);
    assert_int_equal(a->signal_strength, b->signal_strength);
    assert_int_equal(a->anomaly, b->anomaly);
    assert_int_equal(a->has_unit, b->has_unit);
    assert_string_equal(a->unit, b->unit);
}

static void test_reading_round_trip(void **state)
{
    codec_ctx_t ctx;
    sl_reading_t rec = sample_reading(), out;
    uint8_t buf[512];
    size_t len = 0;

    (void)state;
    codec_open(&ctx, "sensor_reading.avsc", "sensor-readings-value");
    assert_int_equal(sl_reading_encode(ctx.enc, &rec, buf, sizeof(buf), &len),
                     SL_OK);
    assert_int_equal(buf[0], 0);
    assert_int_equal(sl_reading_decode(ctx.dec, buf, len, &out), SL_DECODE_OK);
    assert_reading_equal(&rec, &out);

    rec.has_unit = false;
    rec.unit[0] = '\0';
    rec.sensor_type = SL_SENSOR_OTHER;
    rec.anomaly = false;
    assert_int_equal(sl_reading_encode(ctx.enc, &rec, buf, sizeof(buf), &len),
                     SL_OK);
    assert_int_equal(sl_reading_decode(ctx.dec, buf, len, &out), SL_DECODE_OK);
    assert_reading_equal(&rec, &out);
    codec_close(&ctx);
}

static void test_reading_encode_rejects_bad_input(void **state)
{
    codec_ctx_t ctx;
    sl_reading_t rec = sample_reading();
    uint8_t buf[512];
    size_t len = 999;

    (void)state;
    codec_open(&ctx, "sensor_reading.avsc", "sensor-readings-value");
    memset(buf, 0xaa, sizeof(buf));
    rec.sensor_type = (sl_sensor_type_t)42;
    assert_int_equal(sl_reading_encode(ctx.enc, &rec, buf, sizeof(buf), &len),
                     SL_EINVAL);
    assert_int_equal(len, 999);
    assert_int_equal(buf[0], 0xaa);

    rec = sample_reading();
    strcpy(rec.location, "bad \xc0\xaf");
    assert_int_equal(sl_reading_encode(ctx.enc, &rec, buf, sizeof(buf), &len),
                     SL_EINVAL);

    rec = sample_reading();
    assert_int_equal(sl_reading_encode(ctx.enc, &rec, buf, 12, &len),
                     SL_EINVAL);
    assert_int_equal(sl_reading_encode(ctx.enc, &rec, buf, 3, &len), SL_EINVAL);
    assert_int_equal(len, 999);
    codec_close(&ctx);
}

static void test_reading_decode_rejects_long_text(void **state)
{
    codec_ctx_t ctx;
    char json[1024], id[SL_ID_MAX + 2];
    uint8_t buf[1024];
    sl_reading_t out;
    size_t len;

    (void)state;
    codec_open(&ctx, "sensor_reading.avsc", "sensor-readings-value");
    memset(id, 'x', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0'; /* SL_ID_MAX + 1 characters */
    snprintf(json, sizeof(json),
             "{\"sensor_id\":\"%s\",\"sensor_type\":\"humidity\","
             "\"value\":1.0,\"timestamp\":1,\"location\":\"l\","
             "\"anomaly\":false,\"metadata\":{\"battery_level\":1,"
             "\"signal_strength\":-1},\"unit\":null}",
             id);
    len = encode_json(ctx.schema, 1, json, buf, sizeof(buf));
    assert_int_equal(sl_reading_decode(ctx.dec, buf, len, &out),
                     SL_DECODE_FIELD_TOO_LONG);
    assert_string_equal(out.sensor_id, "");

    id[sizeof(id) - 2] = '\0'; /* exactly SL_ID_MAX characters fit */
    snprintf(json, sizeof(json),
             "{\"sensor_id\":\"%s\",\"sensor_type\":\"humidity\","
             "\"value\":1.0,\"timestamp\":1,\"location\":\"l\","
             "\"anomaly\":false,\"metadata\":{\"battery_level\":1,"
             "\"signal_strength\":-1},\"unit\":{\"string\":\"%%\"}}",
             id);
    len = encode_json(ctx.schema, 1, json, buf, sizeof(buf));
    assert_int_equal(sl_reading_decode(ctx.dec, buf, len, &out), SL_DECODE_OK);
    assert_int_equal(strlen(out.sensor_id), SL_ID_MAX);
    assert_int_equal(out.sensor_type, SL_SENSOR_HUMIDITY);
    assert_string_equal(out.unit, "%");
    codec_close(&ctx);
}

static sl_event_t sample_event(void)
{
    sl_event_t ev = {
        .timestamp_ms = INT64_C(1767225600456),
        .product_id = INT64_C(9000000000),
        .price = 19.99,
        .total = 39.98,
        .duration_seconds = 12.5,
        .quantity = 2,
        .results_count = 17,
        .present = (1u << 13) - 1, /* every SL_EV_* bit */
        .event_type = SL_EVENT_PURCHASE,
        .device = SL_DEVICE_TABLET,
    };

    strcpy(ev.event_id, "ev-1");
    strcpy(ev.user_id, "user-7");
    strcpy(ev.session_id, "sess-3");
    strcpy(ev.ip_address, "2001:db8::1");
    strcpy(ev.product_name, "Kaffeem\xc3\xbchle");
    strcpy(ev.category, "kitchen");
    strcpy(ev.currency, "EUR");
    strcpy(ev.page, "/checkout");
    strcpy(ev.payment_method, "card");
    strcpy(ev.shipping_address, "1 Main St");
    strcpy(ev.query, "grinder");
    return ev;
}

static void assert_event_equal(const sl_event_t *a, const sl_event_t *b)
{
    assert_string_equal(a->event_id, b->event_id);
    assert_string_equal(a->user_id, b->user_id);
    assert_string_equal(a->session_id, b->session_id);
    assert_string_equal(a->ip_address, b->ip_address);
    assert_int_equal(a->timestamp_ms, b->timestamp_ms);
    assert_int_equal(a->event_type, b->event_type);
    assert_int_equal(a->device, b->device);
    assert_int_equal(a->present, b->present);
    assert_string_equal(a->product_name, b->product_name);
    assert_string_equal(a->category, b->category);
    assert_string_equal(a->currency, b->currency);
    assert_string_equal(a->page, b->page);
    assert_string_equal(a->payment_method, b->payment_method);
    assert_string_equal(a->shipping_address, b->shipping_address);
    assert_string_equal(a->query, b->query);
    assert_int_equal(a->product_id, b->product_id);
    assert_true(a->price == b->price);
    assert_true(a->total == b->total);
    assert_true(a->duration_seconds == b->duration_seconds);
    assert_int_equal(a->quantity, b->quantity);
    assert_int_equal(a->results_count, b->results_count);
}

static void test_event_round_trip(void **state)
{
    codec_ctx_t ctx;
    sl_event_t ev = sample_event(), out, bare;
    uint8_t buf[1024];
    size_t len = 0;

    (void)state;
    codec_open(&ctx, "ecommerce_event.avsc", "ecommerce-events-value");
    assert_int_equal(sl_event_encode(ctx.enc, &ev, buf, sizeof(buf), &len),
                     SL_OK);
    assert_int_equal(sl_event_decode(ctx.dec, buf, len, &out), SL_DECODE_OK);
    assert_event_equal(&ev, &out);

    /* No optional field: every union takes its null branch. */
    memset(&bare, 0, sizeof(bare));
    strcpy(bare.event_id, "ev-2");
    strcpy(bare.user_id, "user-8");
    bare.event_type = SL_EVENT_PAGE_VIEW;
    bare.device = SL_DEVICE_OTHER;
    bare.timestamp_ms = 1;
    assert_int_equal(sl_event_encode(ctx.enc, &bare, buf, sizeof(buf), &len),
                     SL_OK);
    assert_int_equal(sl_event_decode(ctx.dec, buf, len, &out), SL_DECODE_OK);
    assert_event_equal(&bare, &out);
    assert_int_equal(out.present, 0);

    bare.device = (sl_device_t)7;
    assert_int_equal(sl_event_encode(ctx.enc, &bare, buf, sizeof(buf), &len),
                     SL_EINVAL);
    codec_close(&ctx);
}

static void test_event_quantity_long_out_of_range(void **state)
{
    /* A later reader may widen quantity to long; the C field stays int32. */
    const char *orig = sl_schema_builtin("ecommerce_event.avsc");
    const char *q = strstr(orig, "\"quantity\", \"type\": [\"null\", \"int\"]");
    const char *int_at = q ? strstr(q, "\"int\"") : NULL;
    char *text = malloc(strlen(orig) + 2);
    sl_registry_t *reg = sl_registry_create();
    avro_schema_t wide;
    sl_encoder_t *enc;
    sl_decoder_t *dec;
    sl_event_t ev = sample_event(), out;
    uint8_t buf[1024];
    size_t len;
    int32_t id;

    (void)state;
    assert_non_null(int_at);
    sprintf(text, "%.*s\"long\"%s", (int)(int_at - orig), orig, int_at + 5);
    assert_int_equal(sl_registry_register(reg, "e", text, &id, NULL, 0), SL_OK);
    wide = sl_registry_lookup(reg, id);
    enc = sl_encoder_create(wide, id);
    dec = sl_decoder_create(reg, wide);
    assert_int_equal(sl_event_encode(enc, &ev, buf, sizeof(buf), &len),
                     SL_EINVAL); /* the int32 branch is gone */

    {
        avro_value_t *v = sl_encoder_value(enc), field, branch;
        json_t *json;
        char json_text[1024];

        snprintf(json_text, sizeof(json_text),
                 "{\"event_id\":\"e\",\"event_type\":\"purchase\","
                 "\"user_id\":\"u\",\"timestamp\":1,\"session_id\":\"s\","
                 "\"device\":\"mobile\",\"ip_address\":\"::1\","
                 "\"product_id\":null,\"product_name\":null,"
                 "\"category\":null,\"quantity\":3000000010,\"price\":null,"
                 "\"total\":null,\"currency\":null,\"page\":null,"
                 "\"duration_seconds\":null,\"payment_method\":null,"
                 "\"shipping_address\":null,\"query\":null,"
                 "\"results_count\":null}");
        json = json_loads(json_text, 0, NULL);
        assert_int_equal(sl_value__from_json(v, json, NULL, 0), SL_OK);
        json_decref(json);
        assert_int_equal(avro_value_get_by_name(v, "quantity", &field, NULL),
                         0);
        assert_int_equal(avro_value_get_current_branch(&field, &branch), 0);
        assert_int_equal(avro_value_get_type(&branch), AVRO_INT64);
    }
    assert_int_equal(sl_encoder_write(enc, buf, sizeof(buf), &len), SL_OK);
    assert_int_equal(sl_event_decode(dec, buf, len, &out),
                     SL_DECODE_INTEGER_OUT_OF_RANGE);

    sl_decoder_destroy(dec);
    sl_encoder_destroy(enc);
    sl_registry_destroy(reg);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_parse_classifies_headers),
        cmocka_unit_test(test_decode_err_names_are_reason_codes),
        cmocka_unit_test(test_check_accepts_libavro_encoding),
        cmocka_unit_test(test_check_rejects_each_malformed_field),
        cmocka_unit_test(test_check_rejects_every_prefix_and_trailing_byte),
        cmocka_unit_test(test_check_bounds_empty_items_and_depth),
        cmocka_unit_test(test_registry_assigns_ids_and_versions),
        cmocka_unit_test(test_registry_concurrent_registration_agrees),
        cmocka_unit_test(test_builtin_schemas_and_files_load),
        cmocka_unit_test(test_enum_resolved_by_symbol_not_index),
        cmocka_unit_test(test_nested_record_defaults_filled),
        cmocka_unit_test(test_unknown_schema_id_reported),
        cmocka_unit_test(test_reading_round_trip),
        cmocka_unit_test(test_reading_encode_rejects_bad_input),
        cmocka_unit_test(test_reading_decode_rejects_long_text),
        cmocka_unit_test(test_event_round_trip),
        cmocka_unit_test(test_event_quantity_long_out_of_range),
    };
    int failed = cmocka_run_group_tests_name("schema_codec", tests, NULL, NULL);

    return failed + run_case_tests() != 0;
}
