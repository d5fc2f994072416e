/* SPDX-License-Identifier: Apache-2.0 */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "util/timeutil.h"

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

void sl_log_write(sl_log_level_t level, const char *component, const char *fmt,
                  ...)
{
    char line[2048];
    char ts[SL_ISO8601_MAX];
    va_list ap;
    int n;

    sl_time_format_iso8601(sl_time_now_ms(), ts, sizeof(ts));
    n = snprintf(line, sizeof(line), "%s %-5s %s ", ts, level_names[level],
                 component);
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);

    /* A truncated line still ends with a newline. */
    if (n >= (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}
