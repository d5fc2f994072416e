/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of sl_utf8_valid(), the check that keeps malformed text out of the
 * store and the JSON encoder. Each malformed case is embedded after a valid
 * ASCII prefix, as it arrives inside a sensor id.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "model/record.h"

typedef struct utf8_case {
    const char *bytes;
    size_t len;
    bool valid;
} utf8_case_t;

#define CASE(literal, valid)                                                   \
    {                                                                          \
        literal, sizeof(literal) - 1, valid                                    \
    }

static void utf8_table(void **state)
{
    static const utf8_case_t cases[] = {
        CASE("", true),
        CASE("sensor-01", true),
        CASE("capteur-\xc3\xa9-01", true),      /* é, 2 bytes */
        CASE("\xe2\x82\xac", true),             /* €, 3 bytes */
        CASE("sensor-\xf0\x9f\x8c\xa1", true),  /* U+1F321, 4 bytes */
        CASE("\xf4\x8f\xbf\xbf", true),         /* U+10FFFF, the last */
        CASE("\xed\x9f\xbf", true),             /* U+D7FF, below surrogates */
        CASE("\xee\x80\x80", true),             /* U+E000, above them */
        CASE("sensor-\xc0\xaf", false),         /* overlong '/' */
        CASE("sensor-\xe0\x80\xaf", false),     /* overlong, 3 bytes */
        CASE("sensor-\xf0\x80\x80\xaf", false), /* overlong, 4 bytes */
        CASE("sensor-\xed\xa0\x80", false),     /* surrogate U+D800 */
        CASE("sensor-\xed\xbf\xbf", false),     /* surrogate U+DFFF */
        CASE("sensor-\xc3", false),             /* truncated at the end */
        CASE("sensor-\xe2\x82", false),         /* truncated 3-byte */
        CASE("sensor-\xe2\x28\xa1", false),     /* invalid continuation */
        CASE("sensor-\xa9", false),             /* lone continuation */
        CASE("sensor-\xf4\x90\x80\x80", false), /* U+110000 */
        CASE("sensor-\xf5\x80\x80\x80", false), /* lead byte F5 */
        CASE("sensor-\xff", false),
        CASE("sensor\0-01", false), /* embedded NUL */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = sl_utf8_valid(cases[i].bytes, cases[i].len);

        if (got != cases[i].valid)
            fail_msg("case %zu: sl_utf8_valid returned %d, expected %d", i, got,
                     cases[i].valid);
    }
}

static void utf8_length_bounds_read(void **state)
{
    /* Only len bytes count: a valid prefix of a longer, broken buffer. */
    const char text[] = "ok\xc3\xa9\xc3";

    (void)state;
    assert_true(sl_utf8_valid(text, 4));
    assert_false(sl_utf8_valid(text, 5));
    assert_false(sl_utf8_valid(text, 3)); /* cuts é in half */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_table),
        cmocka_unit_test(utf8_length_bounds_read),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
