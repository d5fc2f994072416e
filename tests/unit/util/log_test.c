/* SPDX-License-Identifier: Apache-2.0 */
/* Log lines: level filtering and escaping of bytes quoted from input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

/* Runs one log call with stderr redirected to a pipe; OUT: the line. */
static void capture(void (*emit)(void), char *out, size_t out_size)
{
    int fds[2], saved;
    ssize_t n;

    assert_int_equal(pipe(fds), 0);
    saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    emit();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    n = read(fds[0], out, out_size - 1);
    close(fds[0]);
    out[n > 0 ? n : 0] = '\0';
}

static void emit_hostile(void)
{
    sl_log_warn("replay", "value '%s'",
                "1\x1b[31mRED\rFAKE\xed\xa0\x80 caf\xc3\xa9");
}

static void emit_debug(void)
{
    sl_log_debug("replay", "hidden");
}

static void test_log_escapes_control_and_bad_utf8(void **state)
{
    char line[512];

    (void)state;
    capture(emit_hostile, line, sizeof(line));
    assert_non_null(strstr(line, " warn  replay value '1\\x1b[31mRED\\x0dFAKE"
                                 "\\xed\\xa0\\x80 caf\xc3\xa9'\n"));
    /* One line: the only newline ends it. */
    assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
}

static void test_log_level_filters_lines(void **state)
{
    char line[64];

    (void)state;
    sl_log_set_level(SL_LOG_INFO);
    capture(emit_debug, line, sizeof(line));
    assert_string_equal(line, "");
    sl_log_set_level(SL_LOG_DEBUG);
    capture(emit_debug, line, sizeof(line));
    assert_non_null(strstr(line, " debug replay hidden\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_escapes_control_and_bad_utf8),
        cmocka_unit_test(test_log_level_filters_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
