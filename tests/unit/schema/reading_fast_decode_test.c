/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_reading_decode parses frames of the built-in reading schema without
 * libavro. These tests hold it to the libavro path
 * (sl_reading__decode_generic): the same result code and the same record,
 * byte for byte, on thousands of varied readings encoded by libavro and on
 * corrupted copies of them (cut, bit flips, extra bytes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "schema/schema_int.h"
#include "util/err.h"

#define READINGS 5000
#define MUTATIONS 4 /* corrupted copies per reading */

typedef struct fixture {
    sl_registry_t *reg;
    sl_encoder_t *enc;
    sl_decoder_t *fast;    /* sl_reading_decode */
    sl_decoder_t *generic; /* sl_reading__decode_generic */
    int32_t id;
    uint64_t rng;
} fixture_t;

static uint64_t next_random(fixture_t *f)
{
    /* xorshift64*: reproducible, so a failure can be rerun. */
    f->rng ^= f->rng >> 12;
    f->rng ^= f->rng << 25;
    f->rng ^= f->rng >> 27;
    return f->rng * UINT64_C(2685821657736338717);
}

static avro_schema_t reading_schema(void)
{
    const char *json = sl_schema_builtin("sensor_reading.avsc");
    avro_schema_t schema = NULL;

    assert_int_equal(avro_schema_from_json_length(json, strlen(json), &schema),
                     0);
    return schema;
}

static int setup(void **state)
{
    static fixture_t f;
    char err[256] = "";
    avro_schema_t schema = reading_schema();

    memset(&f, 0, sizeof(f));
    f.rng = 0x9e3779b97f4a7c15u;
    f.reg = sl_registry_create();
    assert_non_null(f.reg);
    assert_int_equal(
        sl_registry_register(f.reg, "sensor-readings-value",
                             sl_schema_builtin("sensor_reading.avsc"), &f.id,
                             err, sizeof(err)),
        SL_OK);
    f.enc = sl_encoder_create(schema, f.id);
    f.fast = sl_decoder_create(f.reg, schema);
    f.generic = sl_decoder_create(f.reg, schema);
    avro_schema_decref(schema);
    assert_non_null(f.enc);
    assert_non_null(f.fast);
    assert_non_null(f.generic);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    sl_encoder_destroy(f->enc);
    sl_decoder_destroy(f->fast);
    sl_decoder_destroy(f->generic);
    sl_registry_destroy(f->reg);
    return 0;
}

/* Fills dst (size bytes) with a random string of ASCII and two-, three-
 * and four-byte UTF-8 characters, up to size - 1 bytes. */
static void random_text(fixture_t *f, char *dst, size_t size)
{
    static const char *const pieces[] = {"a",
                                         "Z",
                                         "7",
                                         "-",
                                         " ",
                                         "_",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x8c\xa1"};
    size_t target = (size_t)(next_random(f) % size), len = 0;

    while (len < target) {
        const char *p = pieces[next_random(f) % 9];
        size_t n = strlen(p);

        if (len + n > size - 1)
            break;
        memcpy(dst + len, p, n);
        len += n;
    }
    dst[len] = '\0';
}

static double random_value(fixture_t *f)
{
    static const double specials[] = {0.0, -0.0, 1e-310, -1e308, 21.5};
    uint64_t bits;
    double v;

    switch (next_random(f) % 5) {
    case 0:
        return specials[next_random(f) % 5];
    case 1:
        return next_random(f) % 2 ? INFINITY : -INFINITY;
    case 2:
        return NAN;
    case 3:
        bits = next_random(f);
        memcpy(&v, &bits, sizeof(v));
        return v;
    default:
        return (double)(int64_t)next_random(f) / 1e6;
    }
}

static int64_t random_long(fixture_t *f)
{
    static const int64_t edges[] = {0,
                                    -1,
                                    1,
                                    INT64_MIN,
                                    INT64_MAX,
                                    INT64_C(1767225600000),
                                    INT64_C(-62135596800000)};

    if (next_random(f) % 4 == 0)
        return edges[next_random(f) % 7];
    return (int64_t)next_random(f) >> (next_random(f) % 64);
}

static int32_t random_int(fixture_t *f)
{
    static const int32_t edges[] = {0, -1, 100, INT32_MIN, INT32_MAX, -120};

    if (next_random(f) % 4 == 0)
        return edges[next_random(f) % 6];
    return (int32_t)((int64_t)next_random(f) >> (32 + next_random(f) % 32));
}

static void random_reading(fixture_t *f, sl_reading_t *rec)
{
    memset(rec, 0, sizeof(*rec));
    random_text(f, rec->sensor_id, sizeof(rec->sensor_id));
    random_text(f, rec->location, sizeof(rec->location));
    rec->sensor_type = (sl_sensor_type_t)(next_random(f) % 6);
    rec->value = random_value(f);
    rec->timestamp_ms = random_long(f);
    rec->anomaly = next_random(f) % 2;
    rec->battery_level = random_int(f);
    rec->signal_strength = random_int(f);
    rec->has_unit = next_random(f) % 2;
    if (rec->has_unit)
        random_text(f, rec->unit, sizeof(rec->unit));
}

/* Decodes frame both ways and checks that code and record are equal.
 * Returns the code. */
static sl_decode_err_t check_both(fixture_t *f, const uint8_t *frame,
                                  size_t len)
{
    sl_reading_t fast, generic;
    sl_decode_err_t fast_rc, generic_rc;

    memset(&fast, 0xa5, sizeof(fast));
    memset(&generic, 0x5a, sizeof(generic));
    fast_rc = sl_reading_decode(f->fast, frame, len, &fast);
    generic_rc = sl_reading__decode_generic(f->generic, frame, len, &generic);
    if (fast_rc != generic_rc)
        fail_msg("frame of %zu bytes: fast path %s, libavro %s", len,
                 sl_decode_err_name(fast_rc), sl_decode_err_name(generic_rc));
    assert_memory_equal(&fast, &generic, sizeof(fast));
    return fast_rc;
}

static void test_fast_path_is_taken(void **state)
{
    fixture_t *f = *state;

    assert_true(sl_decoder__is_builtin(f->fast, f->id, "sensor_reading.avsc"));
}

static void test_varied_readings_match_libavro(void **state)
{
    fixture_t *f = *state;
    uint8_t frame[2048];
    size_t ok = 0;

    for (int i = 0; i < READINGS; i++) {
        sl_reading_t rec;
        size_t len;

        random_reading(f, &rec);
        assert_int_equal(
            sl_reading_encode(f->enc, &rec, frame, sizeof(frame), &len), SL_OK);
        ok += check_both(f, frame, len) == SL_DECODE_OK;
    }
    /* Every encoded reading fits the record, so all of them decode. */
    assert_int_equal(ok, READINGS);
}

static void test_corrupted_readings_match_libavro(void **state)
{
    fixture_t *f = *state;
    uint8_t frame[2048], bad[2056];
    size_t failed = 0, total = 0;

    for (int i = 0; i < READINGS; i++) {
        sl_reading_t rec;
        size_t len;

        random_reading(f, &rec);
        assert_int_equal(
            sl_reading_encode(f->enc, &rec, frame, sizeof(frame), &len), SL_OK);
        for (int m = 0; m < MUTATIONS; m++) {
            size_t bad_len = len;
            size_t at = 5 + (size_t)(next_random(f) % (len - 5));

            memcpy(bad, frame, len);
            switch (m) {
            case 0: /* cut short */
                bad_len = at;
                break;
            case 1: /* one bit flipped in the body */
                bad[at] ^= (uint8_t)(1u << (next_random(f) % 8));
                break;
            case 2: /* one byte replaced */
                bad[at] = (uint8_t)next_random(f);
                break;
            default: /* trailing bytes */
                bad[len] = (uint8_t)next_random(f);
                bad[len + 1] = 0;
                bad_len = len + 1 + (size_t)(next_random(f) % 2);
                break;
            }
            total++;
            failed += check_both(f, bad, bad_len) != SL_DECODE_OK;
        }
    }
    /* The corruptions must exercise the error paths, not only the good. */
    assert_true(failed > total / 4);
}

static void test_other_writer_is_not_fast(void **state)
{
    fixture_t *f = *state;
    char err[256] = "";
    char *json = strdup(sl_schema_builtin("sensor_reading.avsc"));
    char *at = strstr(json, "\"unit\"");
    int32_t id = 0;

    /* The same record with the unit field renamed: a different writer. */
    assert_non_null(at);
    memcpy(at, "\"uniu\"", 6);
    assert_int_equal(sl_registry_register(f->reg, "other-value", json, &id, err,
                                          sizeof(err)),
                     SL_OK);
    assert_false(sl_decoder__is_builtin(f->fast, id, "sensor_reading.avsc"));
    assert_true(sl_decoder__is_builtin(f->fast, f->id, "sensor_reading.avsc"));
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_path_is_taken),
        cmocka_unit_test(test_varied_readings_match_libavro),
        cmocka_unit_test(test_corrupted_readings_match_libavro),
        cmocka_unit_test(test_other_writer_is_not_fast),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
