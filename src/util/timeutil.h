/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wall-clock and monotonic time in milliseconds, and ISO-8601 conversion.
 * Event timestamps throughout sluice are int64 milliseconds since the Unix
 * epoch, UTC, as Avro's timestamp-millis.
 */
#ifndef SLUICE_UTIL_TIMEUTIL_H
#define SLUICE_UTIL_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* "2026-01-01T00:00:00.000Z" plus the terminating NUL, with room to spare
 * for years past 9999. */
#define SL_ISO8601_MAX 32

/** Returns the wall-clock time in ms since the epoch. */
int64_t sl_time_now_ms(void);

/** Returns a monotonic clock reading in ms, for durations only. */
int64_t sl_time_mono_ms(void);

/** Returns a monotonic clock reading in ns, for latency measurement. */
int64_t sl_time_mono_ns(void);

/**
 * Formats ms since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out.
 * Returns the length written, or SL_EINVAL when out_size is too small.
 */
int sl_time_format_iso8601(int64_t ms, char *out, size_t out_size);

/**
 * Parses an ISO-8601 date-time into ms since the epoch.
 *
 * Accepts "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS[.fff]]" with 'T' or a space
 * between date and time, and an optional zone: 'Z', " UTC", or an offset
 * "+HH:MM" / "+HHMM" / "-HH:MM". A time without a zone is taken as UTC.
 * Returns SL_OK, or SL_EINVAL when the text is not such a date-time, has
 * trailing characters, or names a day that does not exist.
 */
int sl_time_parse_iso8601(const char *text, int64_t *out_ms);

/** Sleeps for ms milliseconds, resuming after signals. */
void sl_time_sleep_ms(int64_t ms);

#endif
