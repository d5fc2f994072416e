/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One log line per event on stderr: "ts level component msg key=value".
 * The level is checked before the arguments are formatted, so a disabled
 * debug line costs one comparison. Thread-safe: each line is written with a
 * single write(2).
 */
#ifndef SLUICE_UTIL_LOG_H
#define SLUICE_UTIL_LOG_H

typedef enum sl_log_level {
    SL_LOG_ERROR = 0,
    SL_LOG_WARN = 1,
    SL_LOG_INFO = 2,
    SL_LOG_DEBUG = 3,
    SL_LOG_TRACE = 4,
} sl_log_level_t;

extern sl_log_level_t sl_log_threshold;

/** Sets the most verbose level that is written. */
void sl_log_set_level(sl_log_level_t level);

/**
 * Parses "error", "warn", "info", "debug" or "trace".
 * Returns SL_OK and stores the level in *out, or SL_EINVAL.
 */
int sl_log_level_parse(const char *name, sl_log_level_t *out);

/** Formats and writes one line; use the sl_log_* macros instead. */
void sl_log_write(sl_log_level_t level, const char *component, const char *fmt,
                  ...) __attribute__((format(printf, 3, 4)));

#define sl_log_at(level, component, ...)                                       \
    do {                                                                       \
        if ((level) <= sl_log_threshold)                                       \
            sl_log_write((level), (component), __VA_ARGS__);                   \
    } while (0)

#define sl_log_error(component, ...)                                           \
    sl_log_at(SL_LOG_ERROR, component, __VA_ARGS__)
#define sl_log_warn(component, ...)                                            \
    sl_log_at(SL_LOG_WARN, component, __VA_ARGS__)
#define sl_log_info(component, ...)                                            \
    sl_log_at(SL_LOG_INFO, component, __VA_ARGS__)
#define sl_log_debug(component, ...)                                           \
    sl_log_at(SL_LOG_DEBUG, component, __VA_ARGS__)
#define sl_log_trace(component, ...)                                           \
    sl_log_at(SL_LOG_TRACE, component, __VA_ARGS__)

#endif
