/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Failure cases seen in real Kafka/Avro pipelines, checked at the codec
 * level: schema evolution with defaults, illegal narrowing, unions matched
 * by branch type, non-Confluent frames, hostile lengths, enum encoding by
 * symbol, invalid UTF-8 and non-finite doubles. The cases use a small test
 * schema (iot.SensorReading), so they decode into generic values.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>
#include <jansson.h>

#include "fixtures.h"
#include "model/validate.h"
#include "schema/schema.h"
#include "schema/schema_int.h"
#include "util/err.h"

/* 2026-01-01T00:00:00Z in ms since the epoch. */
#define TS_2026 INT64_C(1767225600000)

typedef struct case_ctx {
    sl_registry_t *reg;
    avro_schema_t reader;
    sl_decoder_t *dec;
} case_ctx_t;

static void ctx_open(case_ctx_t *ctx, const char *case_name,
                     const char *reader_file)
{
    ctx->reg = fixture_registry(case_name);
    ctx->reader = fixture_schema(case_name, reader_file);
    ctx->dec = sl_decoder_create(ctx->reg, ctx->reader);
    assert_non_null(ctx->dec);
}

static void ctx_close(case_ctx_t *ctx)
{
    sl_decoder_destroy(ctx->dec);
    avro_schema_decref(ctx->reader);
    sl_registry_destroy(ctx->reg);
}

/* Decodes <case>/<file>; returns the reason code and the value. */
static sl_decode_err_t decode_file(case_ctx_t *ctx, const char *case_name,
                                   const char *file, avro_value_t **value)
{
    uint8_t msg[FIXTURE_MAX_MESSAGE];
    size_t len = fixture_hex(case_name, file, msg);

    return sl_decoder_decode(ctx->dec, msg, len, value, NULL);
}

static void assert_decode_err(case_ctx_t *ctx, const char *case_name,
                              const char *file, sl_decode_err_t expected)
{
    avro_value_t *value = NULL;
    sl_decode_err_t err = decode_file(ctx, case_name, file, &value);

    if (err != expected) {
        fail_msg("%s/%s: got %s, expected %s", case_name, file,
                 sl_decode_err_name(err), sl_decode_err_name(expected));
    }
}

static void assert_string_field(avro_value_t *rec, const char *name,
                                const char *expected)
{
    avro_value_t field;
    const char *s;
    size_t size;

    assert_int_equal(avro_value_get_by_name(rec, name, &field, NULL), 0);
    assert_int_equal(avro_value_get_string(&field, &s, &size), 0);
    assert_string_equal(s, expected);
}

static void assert_enum_symbol(avro_value_t *rec, const char *name,
                               const char *expected)
{
    avro_value_t field;
    int index;

    assert_int_equal(avro_value_get_by_name(rec, name, &field, NULL), 0);
    assert_int_equal(avro_value_get_enum(&field, &index), 0);
    assert_string_equal(
        avro_schema_enum_get(avro_value_get_schema(&field), index), expected);
}

static int64_t long_field(avro_value_t *rec, const char *name)
{
    avro_value_t field;
    int64_t v = 0;

    assert_int_equal(avro_value_get_by_name(rec, name, &field, NULL), 0);
    assert_int_equal(avro_value_get_type(&field), AVRO_INT64);
    assert_int_equal(avro_value_get_long(&field, &v), 0);
    return v;
}

static double double_field(avro_value_t *rec, const char *name)
{
    avro_value_t field;
    double v = 0;

    assert_int_equal(avro_value_get_by_name(rec, name, &field, NULL), 0);
    assert_int_equal(avro_value_get_double(&field, &v), 0);
    return v;
}

/* Returns 1 and the double of an optional ["null","double"] field, or 0
 * when the null branch is set. */
static int optional_double(avro_value_t *rec, const char *name, double *out)
{
    avro_value_t field, branch;

    assert_int_equal(avro_value_get_by_name(rec, name, &field, NULL), 0);
    assert_int_equal(avro_value_get_current_branch(&field, &branch), 0);
    if (avro_value_get_type(&branch) == AVRO_NULL) {
        return 0;
    }
    assert_int_equal(avro_value_get_type(&branch), AVRO_DOUBLE);
    assert_int_equal(avro_value_get_double(&branch, out), 0);
    return 1;
}

/* ---- B01: reader schema evolution --------------------------------------- */

static void test_old_writer_decodes_with_new_reader_default(void **state)
{
    case_ctx_t ctx;
    avro_value_t *v;
    double battery = -1;

    (void)state;
    ctx_open(&ctx, "B01", "reader_v2.avsc");

    assert_int_equal(decode_file(&ctx, "B01", "msg_v1.hex", &v), SL_DECODE_OK);
    assert_string_field(v, "sensor_id", "sensor-001");
    assert_enum_symbol(v, "sensor_type", "TEMPERATURE");
    assert_int_equal(long_field(v, "ts"), TS_2026);
    assert_true(double_field(v, "value") == 21.5);
    assert_int_equal(optional_double(v, "battery", &battery), 0);

    assert_int_equal(decode_file(&ctx, "B01", "msg_v2.hex", &v), SL_DECODE_OK);
    assert_string_field(v, "sensor_id", "sensor-001");
    assert_enum_symbol(v, "sensor_type", "HUMIDITY");
    assert_int_equal(long_field(v, "ts"), TS_2026 + 60000);
    assert_true(double_field(v, "value") == 40.25);
    assert_int_equal(optional_double(v, "battery", &battery), 1);
    assert_true(battery == 87.0);

    /* The v1 message again, after v2: the default is not left over. */
    assert_int_equal(decode_file(&ctx, "B01", "msg_v1.hex", &v), SL_DECODE_OK);
    assert_int_equal(optional_double(v, "battery", &battery), 0);
    ctx_close(&ctx);
}

static void test_new_writer_decodes_with_old_reader(void **state)
{
    case_ctx_t ctx;
    avro_value_t *v;
    avro_value_t field;

    (void)state;
    ctx_open(&ctx, "B01", "writer_v1.avsc");
    assert_int_equal(decode_file(&ctx, "B01", "msg_v2.hex", &v), SL_DECODE_OK);
    assert_string_field(v, "sensor_id", "sensor-001");
    assert_enum_symbol(v, "sensor_type", "HUMIDITY");
    assert_int_equal(long_field(v, "ts"), TS_2026 + 60000);
    assert_true(double_field(v, "value") == 40.25);
    assert_int_not_equal(avro_value_get_by_name(v, "battery", &field, NULL), 0);
    ctx_close(&ctx);
}

static void test_missing_field_without_default_fails_resolution(void **state)
{
    case_ctx_t ctx;
    sl_decoder_t *good;
    avro_schema_t reader_v2;
    avro_value_t *v;
    uint8_t msg[FIXTURE_MAX_MESSAGE];
    size_t len;

    (void)state;
    ctx_open(&ctx, "B01", "reader_v2_nodefault.avsc");
    assert_decode_err(&ctx, "B01", "msg_v1.hex",
                      SL_DECODE_SCHEMA_RESOLUTION_FAILED);
    /* The cached failure is reported again, and nothing crashes. */
    assert_decode_err(&ctx, "B01", "msg_v1.hex",
                      SL_DECODE_SCHEMA_RESOLUTION_FAILED);

    /* A later message for a decoder that can read it still decodes, from
     * the same registry. */
    reader_v2 = fixture_schema("B01", "reader_v2.avsc");
    good = sl_decoder_create(ctx.reg, reader_v2);
    assert_non_null(good);
    len = fixture_hex("B01", "msg_v1.hex", msg);
    assert_int_equal(sl_decoder_decode(good, msg, len, &v, NULL), SL_DECODE_OK);
    assert_string_field(v, "sensor_id", "sensor-001");
    sl_decoder_destroy(good);
    avro_schema_decref(reader_v2);
    ctx_close(&ctx);
}

/* ---- B03: long written, int read ---------------------------------------- */

static void test_long_to_int_narrowing_is_incompatible(void **state)
{
    case_ctx_t ctx;

    (void)state;
    ctx_open(&ctx, "B03", "reader_int.avsc");
    assert_decode_err(&ctx, "B03", "msg_big_long.hex",
                      SL_DECODE_SCHEMA_INCOMPATIBLE);
    assert_decode_err(&ctx, "B03", "msg_small_long.hex",
                      SL_DECODE_SCHEMA_INCOMPATIBLE);
    ctx_close(&ctx);
}

static void test_int_widens_to_long_keeping_sign(void **state)
{
    case_ctx_t ctx;
    avro_value_t *v;

    (void)state;
    ctx_open(&ctx, "B03", "reader_long.avsc");
    assert_int_equal(decode_file(&ctx, "B03", "msg_big_long.hex", &v),
                     SL_DECODE_OK);
    assert_int_equal(long_field(v, "seq"), INT64_C(3000000010));
    assert_int_equal(decode_file(&ctx, "B03", "msg_int_42.hex", &v),
                     SL_DECODE_OK);
    assert_int_equal(long_field(v, "seq"), 42);
    assert_int_equal(decode_file(&ctx, "B03", "msg_int_neg5.hex", &v),
                     SL_DECODE_OK);
    assert_int_equal(long_field(v, "seq"), -5);
    ctx_close(&ctx);
}

static void test_long_into_int32_field_is_out_of_range(void **state)
{
    case_ctx_t ctx;
    avro_value_t *v;
    int32_t seq = 123;

    (void)state;
    ctx_open(&ctx, "B03", "reader_long.avsc");
    assert_int_equal(decode_file(&ctx, "B03", "msg_big_long.hex", &v),
                     SL_DECODE_OK);
    assert_int_equal(sl_value__get_int32(v, "seq", &seq),
                     SL_DECODE_INTEGER_OUT_OF_RANGE);
    assert_int_equal(seq, 123); /* never the wrapped -1294967286 */

    assert_int_equal(decode_file(&ctx, "B03", "msg_int_neg5.hex", &v),
                     SL_DECODE_OK);
    assert_int_equal(sl_value__get_int32(v, "seq", &seq), SL_DECODE_OK);
    assert_int_equal(seq, -5);
    ctx_close(&ctx);
}

/* ---- B04: unions matched by branch type ---------------------------------- */

static void test_union_branches_match_by_type_with_promotion(void **state)
{
    case_ctx_t ctx;
    avro_value_t *v;
    double value = -1;

    (void)state;
    ctx_open(&ctx, "B04", "reader_null_double.avsc");

    assert_int_equal(decode_file(&ctx, "B04", "msg1_int21.hex", &v),
                     SL_DECODE_OK);
    assert_string_field(v, "sensor_id", "sensor-005");
    assert_int_equal(optional_double(v, "value", &value), 1);
    assert_true(value == 21.0);

    assert_int_equal(decode_file(&ctx, "B04", "msg2_null.hex", &v),
                     SL_DECODE_OK);
    assert_int_equal(optional_double(v, "value", &value), 0);

    assert_int_equal(decode_file(&ctx, "B04", "msg3_nullsecond_null.hex", &v),
                     SL_DECODE_OK);
    assert_int_equal(optional_double(v, "value", &value), 0);

    assert_int_equal(decode_file(&ctx, "B04", "msg4_nullsecond_19_5.hex", &v),
                     SL_DECODE_OK);
    assert_int_equal(optional_double(v, "value", &value), 1);
    assert_true(value == 19.5);
    ctx_close(&ctx);
}

static void test_union_message_with_extra_byte_is_trailing(void **state)
{
    case_ctx_t ctx;
    uint8_t msg[FIXTURE_MAX_MESSAGE + 1];
    size_t len;
    avro_value_t *v;

    (void)state;
    ctx_open(&ctx, "B04", "reader_null_double.avsc");
    len = fixture_hex("B04", "msg3_nullsecond_null.hex", msg);
    msg[len++] = 0x00;
    assert_int_equal(sl_decoder_decode(ctx.dec, msg, len, &v, NULL),
                     SL_DECODE_TRAILING_BYTES);
    ctx_close(&ctx);
}

/* ---- B06: frames that are not Confluent wire format ---------------------- */

static void test_non_confluent_frames_rejected_before_lookup(void **state)
{
    static const struct {
        const char *file;
        sl_decode_err_t err;
    } bad[] = {
        {"m1_plain_json.hex", SL_DECODE_BAD_MAGIC_BYTE},
        {"m2_short_header.hex", SL_DECODE_TRUNCATED_HEADER},
        {"m3_magic_01.hex", SL_DECODE_BAD_MAGIC_BYTE},
        {"m4_empty_value.hex", SL_DECODE_EMPTY_PAYLOAD},
    };
    case_ctx_t ctx;
    uint8_t msg[FIXTURE_MAX_MESSAGE];
    avro_value_t *v;
    int32_t id;

    (void)state;
    ctx_open(&ctx, "B06", "writer_v1.avsc");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = fixture_hex("B06", bad[i].file, msg);
        sl_decode_err_t err;

        id = -77; /* untouched: no schema id was taken from the bytes */
        err = sl_decoder_decode(ctx.dec, len ? msg : NULL, len, &v, &id);
        if (err != bad[i].err) {
            fail_msg("%s: got %s, expected %s", bad[i].file,
                     sl_decode_err_name(err), sl_decode_err_name(bad[i].err));
        }
        assert_int_equal(id, -77);
    }

    assert_int_equal(decode_file(&ctx, "B06", "m5_valid.hex", &v),
                     SL_DECODE_OK);
    assert_string_field(v, "sensor_id", "sensor-001");
    assert_enum_symbol(v, "sensor_type", "TEMPERATURE");
    assert_int_equal(long_field(v, "ts"), TS_2026 + 1000);
    assert_true(double_field(v, "value") == 21.75);
    ctx_close(&ctx);
}

/* ---- B08: hostile lengths and varints ----------------------------------- */

static long max_rss_kib(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void test_hostile_lengths_rejected_before_allocation(void **state)
{
    static const struct {
        const char *file;
        sl_decode_err_t err;
    } bad[] = {
        {"m1_huge_string_len.hex", SL_DECODE_TRUNCATED_BODY},
        {"m2_negative_string_len.hex", SL_DECODE_INVALID_LENGTH},
        {"m3_overlong_varint.hex", SL_DECODE_INVALID_VARINT},
        {"m4_truncated_double.hex", SL_DECODE_TRUNCATED_BODY},
        {"m5_enum_index_out_of_range.hex", SL_DECODE_INVALID_ENUM_INDEX},
    };
    case_ctx_t ctx;
    avro_value_t *v;
    long rss_before;

    (void)state;
    ctx_open(&ctx, "B08", "writer_v1.avsc");
    rss_before = max_rss_kib();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t msg[FIXTURE_MAX_MESSAGE];
        size_t len = fixture_hex("B08", bad[i].file, msg);
        int32_t id;
        const uint8_t *body;
        size_t body_len;

        /* The non-allocating check alone names the defect. */
        assert_int_equal(sl_frame_parse(msg, len, &id, &body, &body_len),
                         SL_DECODE_OK);
        assert_int_equal(
            sl_avro_check(sl_registry_lookup(ctx.reg, id), body, body_len),
            bad[i].err);
        assert_decode_err(&ctx, "B08", bad[i].file, bad[i].err);
    }
    /* Peak RSS grows by far less than the 2 GiB the string claims. */
    assert_true(max_rss_kib() - rss_before < 16 * 1024);

    assert_int_equal(decode_file(&ctx, "B08", "m6_valid.hex", &v),
                     SL_DECODE_OK);
    assert_string_field(v, "sensor_id", "sensor-001");
    assert_enum_symbol(v, "sensor_type", "TEMPERATURE");
    assert_int_equal(long_field(v, "ts"), TS_2026);
    assert_true(double_field(v, "value") == 21.5);
    ctx_close(&ctx);
}

/* ---- B09: enums encoded by symbol name ---------------------------------- */

/* Encodes one input.jsonl line; returns SL_OK and the frame length, or the
 * error with nothing written to out. */
static int encode_order_line(sl_encoder_t *enc, const char *line, uint8_t *out,
                             size_t out_size, size_t *len)
{
    json_t *json = json_loads(line, 0, NULL);
    char err[256] = "";
    int rc;

    assert_non_null(json);
    rc = sl_value__from_json(sl_encoder_value(enc), json, err, sizeof(err));
    json_decref(json);
    if (rc != SL_OK) {
        return rc;
    }
    return sl_encoder_write(enc, out, out_size, len);
}

static void test_order_enum_encoded_by_symbol_name(void **state)
{
    static const char *const expected_files[] = {"expected_purchase.hex",
                                                 "expected_refund.hex"};
    static const char *const expected_symbols[] = {"PURCHASE", "REFUND"};
    sl_registry_t *reg = fixture_registry("B09");
    avro_schema_t schema = fixture_schema("B09", "order_event.avsc");
    sl_encoder_t *enc;
    sl_decoder_t *dec;
    char *input = fixture_text("B09", "input.jsonl");
    char *line, *save = NULL;
    int line_no = 0;

    (void)state;
    assert_true(avro_schema_equal(schema, sl_registry_lookup(reg, 20)));
    enc = sl_encoder_create(schema, 20);
    dec = sl_decoder_create(reg, schema);
    assert_non_null(enc);
    assert_non_null(dec);

    for (line = strtok_r(input, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save), line_no++) {
        uint8_t out[256], expected[FIXTURE_MAX_MESSAGE];
        size_t len = 0, expected_len;
        avro_value_t *v;
        int rc;

        memset(out, 0xaa, sizeof(out));
        rc = encode_order_line(enc, line, out, sizeof(out), &len);
        if (line_no == 2) {
            /* CHARGEBACK is no symbol: refused, nothing written. */
            assert_int_equal(rc, SL_EINVAL);
            assert_int_equal(len, 0);
            assert_int_equal(out[0], 0xaa);
            continue;
        }
        assert_int_equal(rc, SL_OK);
        expected_len = fixture_hex("B09", expected_files[line_no], expected);
        assert_int_equal(len, expected_len);
        assert_memory_equal(out, expected, len);

        assert_int_equal(
            sl_decoder_decode(dec, expected, expected_len, &v, NULL),
            SL_DECODE_OK);
        assert_enum_symbol(v, "event_type", expected_symbols[line_no]);
    }
    assert_int_equal(line_no, 3);

    free(input);
    sl_decoder_destroy(dec);
    sl_encoder_destroy(enc);
    avro_schema_decref(schema);
    sl_registry_destroy(reg);
}

/* ---- B10: invalid UTF-8 in strings -------------------------------------- */

static void test_invalid_utf8_rejected_valid_multibyte_kept(void **state)
{
    static const char *const bad[] = {
        "m1_invalid_continuation.hex", "m2_overlong_slash.hex",
        "m3_surrogate.hex", "m4_truncated_multibyte.hex"};
    case_ctx_t ctx;
    avro_value_t *v;

    (void)state;
    ctx_open(&ctx, "B10", "writer_v1.avsc");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_decode_err(&ctx, "B10", bad[i], SL_DECODE_INVALID_UTF8);
    }
    assert_int_equal(decode_file(&ctx, "B10", "m5_valid_multibyte.hex", &v),
                     SL_DECODE_OK);
    assert_string_field(v, "sensor_id", "capteur-\xc3\xa9-01");
    ctx_close(&ctx);
}

/* ---- B14: NaN and infinities -------------------------------------------- */

static void test_non_finite_values_decode_and_fail_validation(void **state)
{
    static const char *const files[] = {"m1_valid.hex", "m2_nan.hex",
                                        "m3_pos_inf.hex", "m4_neg_inf.hex",
                                        "m5_signalling_nan.hex"};
    case_ctx_t ctx;

    (void)state;
    ctx_open(&ctx, "B14", "writer_v1.avsc");
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        avro_value_t *v;
        sl_reading_t rec = {.sensor_type = SL_SENSOR_TEMPERATURE,
                            .battery_level = 50,
                            .signal_strength = -60};
        const char *reason;

        /* The codec keeps the double as written; validation rejects it. */
        assert_int_equal(decode_file(&ctx, "B14", files[i], &v), SL_DECODE_OK);
        strcpy(rec.sensor_id, "sensor-010");
        rec.value = double_field(v, "value");
        rec.timestamp_ms = long_field(v, "ts");
        switch (i) {
        case 0:
            assert_true(rec.value == 21.5);
            break;
        case 2:
            assert_true(isinf(rec.value) && rec.value > 0);
            break;
        case 3:
            assert_true(isinf(rec.value) && rec.value < 0);
            break;
        default:
            assert_true(isnan(rec.value));
        }
        reason = sl_reading_validate(&rec, rec.timestamp_ms + 1000);
        if (i == 0) {
            assert_null(reason);
        } else {
            assert_non_null(reason);
            assert_string_equal(reason, "non_finite_value");
        }
    }
    ctx_close(&ctx);
}

int run_case_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_writer_decodes_with_new_reader_default),
        cmocka_unit_test(test_new_writer_decodes_with_old_reader),
        cmocka_unit_test(test_missing_field_without_default_fails_resolution),
        cmocka_unit_test(test_long_to_int_narrowing_is_incompatible),
        cmocka_unit_test(test_int_widens_to_long_keeping_sign),
        cmocka_unit_test(test_long_into_int32_field_is_out_of_range),
        cmocka_unit_test(test_union_branches_match_by_type_with_promotion),
        cmocka_unit_test(test_union_message_with_extra_byte_is_trailing),
        cmocka_unit_test(test_non_confluent_frames_rejected_before_lookup),
        cmocka_unit_test(test_hostile_lengths_rejected_before_allocation),
        cmocka_unit_test(test_order_enum_encoded_by_symbol_name),
        cmocka_unit_test(test_invalid_utf8_rejected_valid_multibyte_kept),
        cmocka_unit_test(test_non_finite_values_decode_and_fail_validation),
    };

    return cmocka_run_group_tests_name("schema_failure_cases", tests, NULL,
                                       NULL);
}
