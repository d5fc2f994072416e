/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Query-string parsing for the API routes: splitting, percent-decoding and
 * strict typed readers whose error messages name the parameter. Every
 * failure here is the client's fault, so each one becomes a 422 response,
 * never a 500.
 */
#include "api/api_int.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/record.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/timeutil.h"

/* Pairs are separated by '&' and also by ';', because libwebsockets splits
 * the URI arguments at both before server.c receives them. A request then
 * behaves the same whether it arrives over a socket or as a direct call. */
#define PAIR_SEPARATORS "&;"

/*
 * Decodes len bytes at src into a new NUL-terminated string. Returns SL_OK,
 * SL_EINVAL with the reason in *reason when an escape is not '%' followed by
 * two hex digits or the result is not valid UTF-8 (a decoded NUL counts as
 * invalid), or SL_ENOMEM.
 */
static int percent_decode(const char *src, size_t len, char **out,
                          const char **reason)
{
    char *dst = malloc(len + 1);
    size_t n = 0;

    if (dst == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '+') {
            dst[n++] = ' ';
        } else if (src[i] == '%') {
            int hi = i + 2 < len ? sl_hex_digit(src[i + 1]) : -1;
            int lo = i + 2 < len ? sl_hex_digit(src[i + 2]) : -1;

            if (hi < 0 || lo < 0) {
                free(dst);
                *reason = "invalid percent-escape (expected '%' and two hex "
                          "digits)";
                return SL_EINVAL;
            }
            dst[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            dst[n++] = src[i];
        }
    }
    dst[n] = '\0';

    if (!sl_utf8_valid(dst, n)) {
        free(dst);
        *reason = "decoded text is not valid UTF-8 or contains a NUL byte";
        return SL_EINVAL;
    }
    *out = dst;
    return SL_OK;
}

/* Decodes one "name=value" pair of len bytes into param. */
static int decode_pair(const char *pair, size_t len, sl_api_param_t *param,
                       char *err, size_t err_size)
{
    const char *eq = memchr(pair, '=', len);
    size_t name_len = eq != NULL ? (size_t)(eq - pair) : len;
    const char *reason = NULL;
    int rc;

    rc = percent_decode(pair, name_len, &param->name, &reason);
    if (rc == SL_EINVAL)
        snprintf(err, err_size, "query: parameter name: %s", reason);
    if (rc != SL_OK)
        return rc;

    if (eq != NULL)
        rc = percent_decode(eq + 1, len - name_len - 1, &param->value, &reason);
    else
        rc = percent_decode("", 0, &param->value, &reason);
    if (rc == SL_EINVAL)
        snprintf(err, err_size, "%s: %s", param->name, reason);
    return rc;
}

static int check_duplicates(const sl_api_query_t *q, char *err, size_t err_size)
{
    for (size_t i = 0; i < q->count; i++) {
        /* Only a fully decoded pair reaches this check. */
        assert(q->params[i].name != NULL);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(q->params[i].name, q->params[j].name) == 0) {
                snprintf(err, err_size, "%s: given more than once",
                         q->params[i].name);
                return SL_EINVAL;
            }
        }
    }
    return SL_OK;
}

int sl_api__query_parse(const char *raw, sl_api_query_t *q, char *err,
                        size_t err_size)
{
    size_t max_pairs = 1;
    const char *p;
    int rc;

    memset(q, 0, sizeof(*q));
    if (raw == NULL || raw[0] == '\0')
        return SL_OK;

    for (p = raw; *p != '\0'; p++)
        max_pairs += *p == '&' || *p == ';';
    q->params = calloc(max_pairs, sizeof(*q->params));
    if (q->params == NULL)
        return SL_ENOMEM;

    for (p = raw; *p != '\0';) {
        size_t len = strcspn(p, PAIR_SEPARATORS);

        if (len > 0) {
            rc = decode_pair(p, len, &q->params[q->count], err, err_size);
            /* A half-decoded pair is counted so that fini frees it. */
            q->count++;
            if (rc != SL_OK)
                return rc;
        }
        p += len;
        if (*p != '\0')
            p++;
    }
    return check_duplicates(q, err, err_size);
}

void sl_api__query_fini(sl_api_query_t *q)
{
    for (size_t i = 0; i < q->count; i++) {
        free(q->params[i].name);
        free(q->params[i].value);
    }
    free(q->params);
    q->params = NULL;
    q->count = 0;
}

static bool name_allowed(const char *name, const char *const *allowed)
{
    for (size_t i = 0; allowed[i] != NULL; i++) {
        if (strcmp(name, allowed[i]) == 0)
            return true;
    }
    return false;
}

/* Appends text to the NUL-terminated string in buf, truncating quietly. */
static void append(char *buf, size_t size, const char *text)
{
    size_t used = strlen(buf);

    if (used + 1 < size)
        snprintf(buf + used, size - used, "%s", text);
}

int sl_api__query_check_names(const sl_api_query_t *q,
                              const char *const *allowed, char *err,
                              size_t err_size)
{
    size_t unknown = 0;

    for (size_t i = 0; i < q->count; i++)
        unknown += !name_allowed(q->params[i].name, allowed);
    if (unknown == 0)
        return SL_OK;

    snprintf(err, err_size,
             "unknown query parameter%s: ", unknown > 1 ? "s" : "");
    for (size_t i = 0, listed = 0; i < q->count; i++) {
        if (name_allowed(q->params[i].name, allowed))
            continue;
        append(err, err_size, listed++ > 0 ? ", " : "");
        append(err, err_size, q->params[i].name);
    }
    append(err, err_size, " (allowed: ");
    for (size_t i = 0; allowed[i] != NULL; i++) {
        append(err, err_size, i > 0 ? ", " : "");
        append(err, err_size, allowed[i]);
    }
    append(err, err_size, ")");
    return SL_EINVAL;
}

const char *sl_api__query_get(const sl_api_query_t *q, const char *name)
{
    for (size_t i = 0; i < q->count; i++) {
        if (strcmp(q->params[i].name, name) == 0)
            return q->params[i].value;
    }
    return NULL;
}

/* Parses an optional sign and decimal digits, nothing else. */
static bool parse_int64(const char *text, int64_t *out)
{
    const char *digits = text + (text[0] == '-' || text[0] == '+');
    char *end = NULL;
    long long v;

    if (digits[0] < '0' || digits[0] > '9')
        return false;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

int sl_api__query_int(const sl_api_query_t *q, const char *name, int64_t min,
                      int64_t max, int64_t *out, char *err, size_t err_size)
{
    const char *text = sl_api__query_get(q, name);
    int64_t v;

    if (text == NULL)
        return SL_OK;
    if (!parse_int64(text, &v) || v < min || v > max) {
        snprintf(err, err_size,
                 "%s: must be an integer between %" PRId64 " and %" PRId64,
                 name, min, max);
        return SL_EINVAL;
    }
    *out = v;
    return SL_OK;
}

int sl_api__query_time(const sl_api_query_t *q, const char *name,
                       int64_t *out_ms, bool *present, char *err,
                       size_t err_size)
{
    const char *text = sl_api__query_get(q, name);

    *present = false;
    if (text == NULL)
        return SL_OK;
    if (sl_time_parse_iso8601(text, out_ms) != SL_OK) {
        snprintf(err, err_size,
                 "%s: must be an ISO-8601 date-time such as "
                 "2026-01-31T12:00:00Z (encode '+' in an offset as %%2B)",
                 name);
        return SL_EINVAL;
    }
    *present = true;
    return SL_OK;
}

int sl_api__query_sensor_type(const sl_api_query_t *q, const char *name,
                              int *out, char *err, size_t err_size)
{
    const char *text = sl_api__query_get(q, name);
    sl_sensor_type_t type;

    if (text == NULL)
        return SL_OK;
    if (sl_sensor_type_parse(text, &type) != SL_OK) {
        snprintf(err, err_size, "%s: must be one of ", name);
        for (int i = 0; i < SL_SENSOR_TYPE_COUNT; i++) {
            append(err, err_size, i > 0 ? ", " : "");
            append(err, err_size, sl_sensor_type_name((sl_sensor_type_t)i));
        }
        return SL_EINVAL;
    }
    *out = (int)type;
    return SL_OK;
}

int sl_api__query_text(const sl_api_query_t *q, const char *name,
                       size_t max_len, const char **out, char *err,
                       size_t err_size)
{
    const char *text = sl_api__query_get(q, name);
    size_t len;

    if (text == NULL)
        return SL_OK;
    len = strlen(text);
    if (len == 0 || len > max_len) {
        snprintf(err, err_size, "%s: must be between 1 and %zu bytes long",
                 name, max_len);
        return SL_EINVAL;
    }
    *out = text;
    return SL_OK;
}

int sl_api__query_choice(const sl_api_query_t *q, const char *name,
                         const char *const *choices, int *out, char *err,
                         size_t err_size)
{
    const char *text = sl_api__query_get(q, name);

    if (text == NULL)
        return SL_OK;
    for (int i = 0; choices[i] != NULL; i++) {
        if (strcmp(text, choices[i]) == 0) {
            *out = i;
            return SL_OK;
        }
    }
    snprintf(err, err_size, "%s: must be one of ", name);
    for (int i = 0; choices[i] != NULL; i++) {
        append(err, err_size, i > 0 ? ", " : "");
        append(err, err_size, choices[i]);
    }
    return SL_EINVAL;
}
