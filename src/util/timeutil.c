/* SPDX-License-Identifier: Apache-2.0 */
#include "util/timeutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "util/err.h"

int64_t sl_time_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sl_time_mono_ms(void)
{
    return sl_time_mono_ns() / 1000000;
}

int64_t sl_time_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), valid for every year an int64 ms timestamp can hold. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int sl_time_format_iso8601(int64_t ms, char *out, size_t out_size)
{
    int64_t days = ms / 86400000;
    int64_t rem = ms % 86400000;
    int64_t year;
    int month, day, n;

    if (rem < 0) {
        rem += 86400000;
        days -= 1;
    }
    civil_from_days(days, &year, &month, &day);
    n = snprintf(out, out_size, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 (long long)year, month, day, (int)(rem / 3600000),
                 (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
                 (int)(rem % 1000));
    if (n < 0 || (size_t)n >= out_size)
        return SL_EINVAL;
    return n;
}

/* Reads exactly `width` decimal digits. */
static bool read_digits(const char **p, int width, int *out)
{
    int v = 0;

    for (int i = 0; i < width; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += width;
    *out = v;
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool parse_zone(const char **p, int *offset_min)
{
    const char *s = *p;
    int hh, mm = 0, sign;

    *offset_min = 0;
    if (*s == ' ')
        s++;
    if (*s == 'Z' || *s == 'z') {
        *p = s + 1;
        return true;
    }
    if (s[0] == 'U' && s[1] == 'T' && s[2] == 'C') {
        *p = s + 3;
        return true;
    }
    if (*s != '+' && *s != '-')
        return s == *p; /* no zone at all: UTC */
    sign = *s == '-' ? -1 : 1;
    s++;
    if (!read_digits(&s, 2, &hh))
        return false;
    if (*s == ':')
        s++;
    if (*s >= '0' && *s <= '9' && !read_digits(&s, 2, &mm))
        return false;
    if (hh > 23 || mm > 59)
        return false;
    *offset_min = sign * (hh * 60 + mm);
    *p = s;
    return true;
}

int sl_time_parse_iso8601(const char *text, int64_t *out_ms)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = text;
    int year, month, day, hh = 0, mi = 0, ss = 0, frac_ms = 0, offset_min;

    if (!read_digits(&p, 4, &year) || *p++ != '-' ||
        !read_digits(&p, 2, &month) || *p++ != '-' || !read_digits(&p, 2, &day))
        return SL_EINVAL;
    if (month < 1 || month > 12 || day < 1)
        return SL_EINVAL;
    if (day > mdays[month - 1] + (month == 2 && is_leap(year)))
        return SL_EINVAL;

    if ((*p == 'T' || *p == 't' || *p == ' ') && p[1] >= '0' && p[1] <= '9') {
        p++;
        if (!read_digits(&p, 2, &hh) || *p++ != ':' || !read_digits(&p, 2, &mi))
            return SL_EINVAL;
        if (*p == ':') {
            p++;
            if (!read_digits(&p, 2, &ss))
                return SL_EINVAL;
            if (*p == '.' || *p == ',') {
                int scale = 100, digits = 0;
                p++;
                while (*p >= '0' && *p <= '9') {
                    frac_ms += (*p - '0') * scale;
                    scale /= 10;
                    p++;
                    digits++;
                }
                if (digits == 0)
                    return SL_EINVAL;
            }
        }
        if (hh > 23 || mi > 59 || ss > 60)
            return SL_EINVAL;
    }
    if (!parse_zone(&p, &offset_min) || *p != '\0')
        return SL_EINVAL;

    *out_ms = (days_from_civil(year, month, day) * 86400 + hh * 3600 + mi * 60 +
               ss - (int64_t)offset_min * 60) *
                  1000 +
              frac_ms;
    return SL_OK;
}

void sl_time_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
