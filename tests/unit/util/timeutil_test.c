/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the ISO-8601 conversions in util/timeutil.c. Expected epoch
 * values were computed independently with Python's datetime module.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util/err.h"
#include "util/timeutil.h"

#define MS_2019_10_01 INT64_C(1569888000000)
#define MS_2024_01_01 INT64_C(1704067200000)

/* Parses text, failing the test with the text when it is rejected. */
static int64_t parse_ok(const char *text)
{
    int64_t ms = 0;

    if (sl_time_parse_iso8601(text, &ms) != SL_OK)
        fail_msg("rejected valid date-time \"%s\"", text);
    return ms;
}

static void parse_accepted_forms(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2019-10-01T00:00:00Z"), MS_2019_10_01);
    assert_int_equal(parse_ok("2019-10-01 00:00:00 UTC"), MS_2019_10_01);
    assert_int_equal(parse_ok("2019-10-01"), MS_2019_10_01);
    assert_int_equal(parse_ok("2019-10-01T00:00"), MS_2019_10_01);
    assert_int_equal(parse_ok("2019-10-01t00:00:00z"), MS_2019_10_01);
    assert_int_equal(parse_ok("2013-12-02 21:15:00"), INT64_C(1386018900000));
    assert_int_equal(parse_ok("2026-03-15T12:34:56.789Z"),
                     INT64_C(1773578096789));
    assert_int_equal(parse_ok("2026-03-15T12:34:56.7Z"),
                     INT64_C(1773578096700));
    assert_int_equal(parse_ok("2000-01-01T00:00:00.000Z"),
                     INT64_C(946684800000));
}

static void parse_offsets(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2024-01-01T01:00:00+01:00"), MS_2024_01_01);
    assert_int_equal(parse_ok("2024-01-01T01:00:00+0100"), MS_2024_01_01);
    assert_int_equal(parse_ok("2024-01-01T01:00:00+01"), MS_2024_01_01);
    assert_int_equal(parse_ok("2023-12-31T18:30:00-05:30"), MS_2024_01_01);
    assert_int_equal(parse_ok("2024-01-01T00:00:00+00:00"), MS_2024_01_01);
    assert_int_equal(parse_ok("2024-01-01T00:00:00-00:00"), MS_2024_01_01);
}

static void parse_leap_days(void **state)
{
    int64_t ms = 0;

    (void)state;
    assert_int_equal(parse_ok("2024-02-29T00:00:00Z"), INT64_C(1709164800000));
    assert_int_equal(parse_ok("2000-02-29"), INT64_C(951782400000));
    assert_int_equal(sl_time_parse_iso8601("2023-02-29T00:00:00Z", &ms),
                     SL_EINVAL);
    assert_int_equal(sl_time_parse_iso8601("1900-02-29", &ms), SL_EINVAL);
    assert_int_equal(sl_time_parse_iso8601("2024-02-30", &ms), SL_EINVAL);
    assert_int_equal(sl_time_parse_iso8601("2024-04-31", &ms), SL_EINVAL);
}

static void parse_rejects_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "yesterday",
        "2024",
        "2024-1-01",
        "2024-13-01",
        "2024-00-10",
        "2024-01-00",
        "2024-01-01T",
        "2024-01-01T24:00:00Z",
        "2024-01-01T12:60:00Z",
        "2024-01-01T12:00:00.Z",
        "2024-01-01T12:00:00Zjunk",
        "2024-01-01T12:00:00+24:00",
        "2024-01-01T12:00:00+01:60",
        "2024-01-01T12:00:00 ",
        "2024-01-01T12:00:00 PST",
        "1704067200000",
    };
    int64_t ms = 42;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sl_time_parse_iso8601(bad[i], &ms) != SL_EINVAL)
            fail_msg("accepted invalid date-time \"%s\"", bad[i]);
    }
}

static void format_known_values(void **state)
{
    char buf[SL_ISO8601_MAX];

    (void)state;
    assert_int_equal(sl_time_format_iso8601(0, buf, sizeof(buf)), 24);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    sl_time_format_iso8601(INT64_C(1773578096789), buf, sizeof(buf));
    assert_string_equal(buf, "2026-03-15T12:34:56.789Z");
    sl_time_format_iso8601(INT64_C(1709164800000), buf, sizeof(buf));
    assert_string_equal(buf, "2024-02-29T00:00:00.000Z");
    sl_time_format_iso8601(INT64_C(253402300799999), buf, sizeof(buf));
    assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
}

static void format_negative_epoch(void **state)
{
    char buf[SL_ISO8601_MAX];

    (void)state;
    sl_time_format_iso8601(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    sl_time_format_iso8601(-86400000, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T00:00:00.000Z");
    sl_time_format_iso8601(INT64_C(-2208988800000), buf, sizeof(buf));
    assert_string_equal(buf, "1900-01-01T00:00:00.000Z");
}

static void format_extreme_values_fit(void **state)
{
    char buf[SL_ISO8601_MAX];

    (void)state;
    assert_true(sl_time_format_iso8601(INT64_MAX, buf, sizeof(buf)) > 0);
    assert_true(sl_time_format_iso8601(INT64_MIN, buf, sizeof(buf)) > 0);
}

static void format_small_buffer(void **state)
{
    char buf[24]; /* one byte short of the NUL */

    (void)state;
    assert_int_equal(sl_time_format_iso8601(0, buf, sizeof(buf)), SL_EINVAL);
}

static void iso8601_round_trip(void **state)
{
    static const int64_t values[] = {
        0,
        1,
        -1,
        INT64_C(946684800000),
        INT64_C(951782400000) - 1,
        INT64_C(1709164800000),
        INT64_C(1773578096789),
        INT64_C(-2208988800000),
        INT64_C(253402300799999),
    };
    char buf[SL_ISO8601_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        assert_true(sl_time_format_iso8601(values[i], buf, sizeof(buf)) > 0);
        assert_int_equal(parse_ok(buf), values[i]);
    }

    /* Times spread over one day, then midnight of every day of 2024 and
     * 2025, leap day included. */
    for (int64_t ms = MS_2024_01_01; ms < MS_2024_01_01 + 86400000;
         ms += 999983) {
        sl_time_format_iso8601(ms, buf, sizeof(buf));
        assert_int_equal(parse_ok(buf), ms);
    }
    for (int64_t day = 0; day < 2 * 366; day++) {
        int64_t ms = MS_2024_01_01 + day * 86400000;
        sl_time_format_iso8601(ms, buf, sizeof(buf));
        assert_int_equal(parse_ok(buf), ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_accepted_forms),
        cmocka_unit_test(parse_offsets),
        cmocka_unit_test(parse_leap_days),
        cmocka_unit_test(parse_rejects_malformed),
        cmocka_unit_test(format_known_values),
        cmocka_unit_test(format_negative_epoch),
        cmocka_unit_test(format_extreme_values_fit),
        cmocka_unit_test(format_small_buffer),
        cmocka_unit_test(iso8601_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
