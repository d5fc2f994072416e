/* SPDX-License-Identifier: Apache-2.0 */
#include "util/log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "util/timeutil.h"
#include "util/utf8.h"

sl_log_level_t sl_log_threshold = SL_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug",
                                          "trace"};

void sl_log_set_level(sl_log_level_t level)
{
    sl_log_threshold = level;
}

int sl_log_level_parse(const char *name, sl_log_level_t *out)
{
    for (int i = 0; i <= SL_LOG_TRACE; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (sl_log_level_t)i;
            return SL_OK;
        }
    }
    return SL_EINVAL;
}

/*
 * Copies text into out, escaping control characters and malformed UTF-8
 * as \xNN: messages may quote input bytes, and a log line must stay one
 * line of valid text that cannot move a terminal's cursor.
 * Returns the length written.
 */
static size_t escape_text(const char *text, size_t len, char *out,
                          size_t out_size)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t n = 0;

    for (size_t i = 0; i < len && n + 5 < out_size;) {
        size_t seq = sl_utf8_sequence(p + i, len - i);

        if (seq == 0 || p[i] < 0x20 || p[i] == 0x7f) {
            n += (size_t)snprintf(out + n, out_size - n, "\\x%02x", p[i]);
            i++;
            continue;
        }
        if (n + seq >= out_size)
            break;
        memcpy(out + n, p + i, seq);
        n += seq;
        i += seq;
    }
    return n;
}

void sl_log_write(sl_log_level_t level, const char *component, const char *fmt,
                  ...)
{
    char message[2048];
    char line[2048 + 128];
    char ts[SL_ISO8601_MAX];
    va_list ap;
    int len;
    size_t n;

    va_start(ap, fmt);
    len = vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    if ((size_t)len >= sizeof(message))
        len = (int)sizeof(message) - 1;

    sl_time_format_iso8601(sl_time_now_ms(), ts, sizeof(ts));
    n = (size_t)snprintf(line, sizeof(line), "%s %-5s %s ", ts,
                         level_names[level], component);
    n += escape_text(message, (size_t)len, line + n, sizeof(line) - n - 1);
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0)
        return;
}
