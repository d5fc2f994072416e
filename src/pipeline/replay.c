/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replay of recorded files into the pipeline. The reader turns one line of
 * a NAB CSV, sensor CSV, NDJSON, REES46 commerce CSV or frames file into
 * one record; sl_replay_run publishes the records through the publisher,
 * paced by their event time.
 *
 * Input is untrusted: every line is parsed on its own, a line that does
 * not parse is reported as "line N: reason" and the reader goes on with
 * the next one. Lines may be up to SL_REPLAY_MAX_LINE long, end in LF or CRLF,
 * and the first may start with a UTF-8 byte order mark. Blank lines are
 * skipped but still counted, so line numbers match what an editor shows.
 */
#include "pipeline/replay.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "model/json.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Malformed lines and failed publishes are logged one by one up to this
 * many per run. After that only every REPLAY_LOG_EVERY-th is logged, and
 * the totals at the end. */
#define REPLAY_LOG_LIMIT 100
#define REPLAY_LOG_EVERY 10000

/* Maximum sleep between checks of *stop while pacing, in ms. */
#define REPLAY_STOP_CHECK_MS 100

/* Metadata of readings whose file has no such columns (NAB, sensor CSV
 * without them): a mains-powered device with a good link. */
#define REPLAY_DEFAULT_BATTERY_LEVEL 100
#define REPLAY_DEFAULT_SIGNAL_DBM (-50)
#define REPLAY_DEFAULT_LOCATION "replay"

/* ---- CSV columns ------------------------------------------------------- */

typedef enum column {
    COL_TIMESTAMP,
    COL_VALUE,
    COL_SENSOR_ID,
    COL_SENSOR_TYPE,
    COL_LOCATION,
    COL_BATTERY_LEVEL,
    COL_SIGNAL_STRENGTH,
    COL_UNIT,
    COL_ANOMALY,
    COL_EVENT_TIME,
    COL_EVENT_TYPE,
    COL_PRODUCT_ID,
    COL_CATEGORY_ID,
    COL_CATEGORY_CODE,
    COL_BRAND,
    COL_PRICE,
    COL_USER_ID,
    COL_USER_SESSION,
    COL_COUNT
} column_t;

static const char *const column_names[COL_COUNT] = {
    "timestamp",   "value",         "sensor_id",       "sensor_type",
    "location",    "battery_level", "signal_strength", "unit",
    "anomaly",     "event_time",    "event_type",      "product_id",
    "category_id", "category_code", "brand",           "price",
    "user_id",     "user_session"};

#define COLS(c) (1u << (c))

/* Columns each CSV format accepts and the ones its header must name. */
#define NAB_ALLOWED (COLS(COL_TIMESTAMP) | COLS(COL_VALUE))
#define NAB_REQUIRED NAB_ALLOWED
#define SENSOR_ALLOWED                                                         \
    (COLS(COL_TIMESTAMP) | COLS(COL_VALUE) | COLS(COL_SENSOR_ID) |             \
     COLS(COL_SENSOR_TYPE) | COLS(COL_LOCATION) | COLS(COL_BATTERY_LEVEL) |    \
     COLS(COL_SIGNAL_STRENGTH) | COLS(COL_UNIT) | COLS(COL_ANOMALY))
#define SENSOR_REQUIRED                                                        \
    (COLS(COL_SENSOR_ID) | COLS(COL_VALUE) | COLS(COL_TIMESTAMP))
#define COMMERCE_ALLOWED                                                       \
    (COLS(COL_EVENT_TIME) | COLS(COL_EVENT_TYPE) | COLS(COL_PRODUCT_ID) |      \
     COLS(COL_CATEGORY_ID) | COLS(COL_CATEGORY_CODE) | COLS(COL_BRAND) |       \
     COLS(COL_PRICE) | COLS(COL_USER_ID) | COLS(COL_USER_SESSION))
#define COMMERCE_REQUIRED                                                      \
    (COLS(COL_EVENT_TIME) | COLS(COL_EVENT_TYPE) | COLS(COL_USER_ID))

struct sl_replay_reader {
    FILE *fp;
    bool close_fp;
    bool streaming; /* a pipe, FIFO, socket or terminal: reads may block */
    sl_replay_format_t format;

    /* Identity of NAB readings, copied from the options. */
    char sensor_id[SL_ID_MAX + 1];
    char location[SL_TEXT_MAX + 1];
    char unit[SL_SHORT_TEXT_MAX + 1];
    bool has_unit;
    sl_sensor_type_t sensor_type;

    int64_t shift_ms; /* added to every timestamp (rebase_time) */

    /* The current line, without its line ending. */
    char *line;
    size_t line_cap;
    size_t line_len;
    size_t line_no;     /* physical lines read so far */
    bool line_has_nul;  /* the line holds a NUL byte */
    bool line_too_long; /* over SL_REPLAY_MAX_LINE; the rest was dropped */
    bool line_pending;  /* format detection read a data line ahead */

    /* CSV: header column of each field index, field index of each column
     * (-1 when the header lacks it), and the split fields of a row. */
    int ncols;
    int col_index[COL_COUNT];
    char **fields;
    size_t fields_cap;
    char *field_buf;
    size_t field_buf_cap;

    /* frames: decoded key and value, borrowed by the item. */
    uint8_t *key;
    size_t key_cap;
    uint8_t *value;
    size_t value_cap;
};

/* Writes "line N: reason" into err and returns SL_EINVAL. */
static int bad_line(char *err, size_t err_size, size_t line_no, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

static int bad_line(char *err, size_t err_size, size_t line_no, const char *fmt,
                    ...)
{
    va_list ap;
    int n;

    if (err == NULL || err_size == 0)
        return SL_EINVAL;
    n = snprintf(err, err_size, "line %zu: ", line_no);
    if (n >= 0 && (size_t)n < err_size) {
        va_start(ap, fmt);
        vsnprintf(err + n, err_size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return SL_EINVAL;
}

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

static bool grow(void **buf, size_t *cap, size_t need, size_t elem_size)
{
    size_t n = *cap ? *cap : 16;
    void *p;

    if (need <= *cap)
        return true;
    while (n < need)
        n *= 2;
    p = realloc(*buf, n * elem_size);
    if (p == NULL)
        return false;
    *buf = p;
    *cap = n;
    return true;
}

/* ---- Lines ------------------------------------------------------------- */

static bool is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t')
            return false;
    }
    return true;
}

/*
 * Reads up to the next newline into rd->line, growing it to at most
 * SL_REPLAY_MAX_LINE bytes; the rest of a longer line is read and
 * dropped, so one huge or endless line costs bounded memory. Returns the
 * bytes kept, or -1 at end of file with nothing read.
 */
static ssize_t read_bounded_line(sl_replay_reader_t *rd)
{
    size_t len = 0;
    int c;

    rd->line_too_long = false;
    while ((c = getc_unlocked(rd->fp)) != EOF) {
        if (len + 2 > rd->line_cap) {
            size_t cap = rd->line_cap == 0 ? 4096 : rd->line_cap * 2;
            char *line;
            if (cap > SL_REPLAY_MAX_LINE + 2)
                cap = SL_REPLAY_MAX_LINE + 2;
            if (cap <= rd->line_cap) {
                rd->line_too_long = true;
                if (c == '\n')
                    break;
                continue;
            }
            line = realloc(rd->line, cap);
            if (line == NULL)
                return -2;
            rd->line = line;
            rd->line_cap = cap;
        }
        rd->line[len++] = (char)c;
        if (c == '\n')
            break;
    }
    if (len == 0 && c == EOF && !rd->line_too_long)
        return -1;
    if (rd->line == NULL)
        return -1;
    rd->line[len] = '\0';
    return (ssize_t)len;
}

/* Reads one physical line into rd->line, without "\n" or "\r\n", and
 * without the byte order mark on line 1. Returns 1, 0 at end of file, or
 * SL_EIO. */
static int read_physical_line(sl_replay_reader_t *rd)
{
    ssize_t n = read_bounded_line(rd);
    size_t len;

    if (n == -2)
        return SL_EIO;
    if (n < 0)
        return ferror(rd->fp) ? SL_EIO : 0;
    len = (size_t)n;
    rd->line_no++;
    if (len > 0 && rd->line[len - 1] == '\n')
        len--;
    if (len > 0 && rd->line[len - 1] == '\r')
        len--;
    rd->line[len] = '\0';
    if (rd->line_no == 1 && len >= 3 &&
        memcmp(rd->line, "\xEF\xBB\xBF", 3) == 0) {
        memmove(rd->line, rd->line + 3, len - 3 + 1);
        len -= 3;
    }
    rd->line_len = len;
    rd->line_has_nul = memchr(rd->line, '\0', len) != NULL;
    return 1;
}

/* Moves to the next line that is not blank. Returns 1, 0 at end of file,
 * or SL_EIO. */
static int next_line(sl_replay_reader_t *rd)
{
    int rc;

    if (rd->line_pending) {
        rd->line_pending = false;
        return 1;
    }
    do {
        rc = read_physical_line(rd);
        if (rc <= 0)
            return rc;
    } while (is_blank(rd->line, rd->line_len));
    return 1;
}

/* ---- CSV --------------------------------------------------------------- */

/*
 * Splits line into RFC 4180 fields, into rd->fields. A quoted field may
 * hold commas and doubled quotes; text after its closing quote, or a quote
 * inside an unquoted field, is an error. Returns the field count, or -1
 * with the reason in why.
 * XXX: a quoted field must end on its own line, although RFC 4180 allows
 * line breaks inside quotes. That way one stray quote costs one line, not
 * the rest of the file.
 */
static int csv_split(sl_replay_reader_t *rd, const char *line, size_t len,
                     char *why, size_t why_size)
{
    const char *p = line;
    char *out;
    size_t n = 0;

    /* Fields shrink or keep their size, and each NUL replaces a comma or
     * the line end, so len + 1 bytes always suffice. */
    if (!grow((void **)&rd->field_buf, &rd->field_buf_cap, len + 1, 1)) {
        set_err(why, why_size, "out of memory");
        return -1;
    }
    out = rd->field_buf;
    for (;;) {
        if (!grow((void **)&rd->fields, &rd->fields_cap, n + 1,
                  sizeof(char *))) {
            set_err(why, why_size, "out of memory");
            return -1;
        }
        rd->fields[n++] = out;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0') {
                    set_err(why, why_size,
                            "unterminated quoted field in column %zu", n);
                    return -1;
                }
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++;
                }
            }
            if (*p != ',' && *p != '\0') {
                set_err(why, why_size,
                        "unexpected character after the closing quote in "
                        "column %zu",
                        n);
                return -1;
            }
        } else {
            while (*p != ',' && *p != '\0') {
                if (*p == '"') {
                    set_err(why, why_size,
                            "quote inside an unquoted field in column %zu", n);
                    return -1;
                }
                *out++ = *p++;
            }
        }
        *out++ = '\0';
        if (*p != ',')
            break;
        p++;
    }
    return (int)n;
}

/* Cuts leading and trailing spaces and tabs of a field in place. */
static char *trim(char *s)
{
    size_t len;

    while (*s == ' ' || *s == '\t')
        s++;
    len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        s[--len] = '\0';
    return s;
}

static int column_lookup(const char *name)
{
    for (int c = 0; c < COL_COUNT; c++) {
        if (strcasecmp(column_names[c], name) == 0)
            return c;
    }
    return -1;
}

static const char *format_name(sl_replay_format_t format)
{
    switch (format) {
    case SL_REPLAY_NAB:
        return "nab";
    case SL_REPLAY_SENSOR_CSV:
        return "sensor-csv";
    case SL_REPLAY_NDJSON:
        return "ndjson";
    case SL_REPLAY_COMMERCE_CSV:
        return "commerce-csv";
    case SL_REPLAY_FRAMES:
        return "frames";
    case SL_REPLAY_AUTO:
        break;
    }
    return "auto";
}

/* Picks the CSV format a header names: exactly timestamp and value is
 * NAB, event_time marks the commerce data set, anything else is taken as
 * sensor CSV (whose check then names any unknown column). */
static sl_replay_format_t detect_csv_format(sl_replay_reader_t *rd, int n)
{
    uint32_t seen = 0;

    for (int i = 0; i < n; i++) {
        int c = column_lookup(trim(rd->fields[i]));
        if (c >= 0)
            seen |= COLS(c);
    }
    if (n == 2 && seen == NAB_ALLOWED)
        return SL_REPLAY_NAB;
    if (seen & COLS(COL_EVENT_TIME))
        return SL_REPLAY_COMMERCE_CSV;
    return SL_REPLAY_SENSOR_CSV;
}

/* Maps the header line in rd->line to columns for rd->format. Unknown,
 * repeated and missing required columns are errors that name the column. */
static int parse_header(sl_replay_reader_t *rd, char *err, size_t err_size)
{
    uint32_t allowed, required, seen = 0;
    char why[256];
    int n;

    switch (rd->format) {
    case SL_REPLAY_NAB:
        allowed = NAB_ALLOWED;
        required = NAB_REQUIRED;
        break;
    case SL_REPLAY_SENSOR_CSV:
        allowed = SENSOR_ALLOWED;
        required = SENSOR_REQUIRED;
        break;
    default:
        allowed = COMMERCE_ALLOWED;
        required = COMMERCE_REQUIRED;
        break;
    }
    n = csv_split(rd, rd->line, rd->line_len, why, sizeof(why));
    if (n < 0)
        return bad_line(err, err_size, rd->line_no, "header: %s", why);

    for (int c = 0; c < COL_COUNT; c++)
        rd->col_index[c] = -1;
    for (int i = 0; i < n; i++) {
        const char *name = trim(rd->fields[i]);
        int c = column_lookup(name);

        if (c < 0 || !(allowed & COLS(c)))
            return bad_line(err, err_size, rd->line_no,
                            "unknown column '%s' in the %s header", name,
                            format_name(rd->format));
        if (seen & COLS(c))
            return bad_line(err, err_size, rd->line_no,
                            "column '%s' appears twice in the header", name);
        seen |= COLS(c);
        rd->col_index[c] = i;
    }
    for (int c = 0; c < COL_COUNT; c++) {
        if ((required & COLS(c)) && !(seen & COLS(c)))
            return bad_line(err, err_size, rd->line_no,
                            "required column '%s' is missing from the %s "
                            "header",
                            column_names[c], format_name(rd->format));
    }
    rd->ncols = n;
    return SL_OK;
}

/* Returns a column's field of the current row, or NULL when the header
 * has no such column. */
static char *field(sl_replay_reader_t *rd, column_t c)
{
    return rd->col_index[c] < 0 ? NULL : rd->fields[rd->col_index[c]];
}

/* Splits the current line as a CSV row and checks its field count. */
static int split_row(sl_replay_reader_t *rd, char *err, size_t err_size)
{
    char why[256];
    int n = csv_split(rd, rd->line, rd->line_len, why, sizeof(why));

    if (n < 0)
        return bad_line(err, err_size, rd->line_no, "%s", why);
    if (n != rd->ncols)
        return bad_line(err, err_size, rd->line_no,
                        "expected %d fields as in the header, found %d",
                        rd->ncols, n);
    return SL_OK;
}

/* ---- Field values ------------------------------------------------------ */

/* Parses an event time: integer epoch milliseconds, or ISO-8601 with an
 * optional zone (UTC when absent). */
static int parse_time(const char *s, int64_t *out)
{
    const char *p = s + (*s == '-');
    char *end;
    long long v;

    if (*p == '\0')
        return SL_EINVAL;
    if (strspn(p, "0123456789") == strlen(p)) {
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno == ERANGE || *end != '\0')
            return SL_EINVAL;
        *out = (int64_t)v;
        return SL_OK;
    }
    return sl_time_parse_iso8601(s, out);
}

static int parse_double(const char *s, double *out)
{
    char *end;
    double v;

    if (*s == '\0')
        return SL_EINVAL;
    /* Overflow yields HUGE_VAL, which isfinite rejects. Underflow to zero
     * or a subnormal is accepted. */
    v = strtod(s, &end);
    if (*end != '\0' || !isfinite(v))
        return SL_EINVAL;
    *out = v;
    return SL_OK;
}

static int parse_int64(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (*s == '\0')
        return SL_EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return SL_EINVAL;
    *out = (int64_t)v;
    return SL_OK;
}

static int parse_int32(const char *s, int32_t *out)
{
    int64_t v;

    if (parse_int64(s, &v) != SL_OK || v < INT32_MIN || v > INT32_MAX)
        return SL_EINVAL;
    *out = (int32_t)v;
    return SL_OK;
}

static int parse_bool(const char *s, bool *out)
{
    if (*s == '\0' || strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0) {
        *out = false;
        return SL_OK;
    }
    if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0) {
        *out = true;
        return SL_OK;
    }
    return SL_EINVAL;
}

/* Copies a text field into a record buffer, rejecting text that is too
 * long or not UTF-8 instead of truncating it. */
static int copy_text(sl_replay_reader_t *rd, char *dst, size_t dst_size,
                     const char *src, const char *name, char *err,
                     size_t err_size)
{
    size_t len = strlen(src);

    if (!sl_utf8_valid(src, len))
        return bad_line(err, err_size, rd->line_no, "%s is not valid UTF-8",
                        name);
    if (sl_text_copy(dst, dst_size, src) != SL_OK)
        return bad_line(err, err_size, rd->line_no,
                        "%s is %zu bytes long, more than the maximum %zu", name,
                        len, dst_size - 1);
    return SL_OK;
}

/* Reads a timestamp column into *out and applies the rebase shift. */
static int time_field(sl_replay_reader_t *rd, column_t c, int64_t *out,
                      char *err, size_t err_size)
{
    char *s = trim(field(rd, c));

    if (*s == '\0')
        return bad_line(err, err_size, rd->line_no, "%s is empty",
                        column_names[c]);
    if (parse_time(s, out) != SL_OK)
        return bad_line(err, err_size, rd->line_no,
                        "%s '%s' is neither ISO-8601 nor epoch milliseconds",
                        column_names[c], s);
    *out += rd->shift_ms;
    return SL_OK;
}

static int double_field(sl_replay_reader_t *rd, column_t c, double *out,
                        char *err, size_t err_size)
{
    char *s = trim(field(rd, c));

    if (parse_double(s, out) != SL_OK)
        return bad_line(err, err_size, rd->line_no,
                        "%s '%s' is not a finite number", column_names[c], s);
    return SL_OK;
}

/* ---- Readings: NAB and sensor CSV -------------------------------------- */

static void reading_defaults(sl_replay_reader_t *rd, sl_reading_t *rec)
{
    memcpy(rec->sensor_id, rd->sensor_id, sizeof(rec->sensor_id));
    memcpy(rec->location, rd->location, sizeof(rec->location));
    memcpy(rec->unit, rd->unit, sizeof(rec->unit));
    rec->has_unit = rd->has_unit;
    rec->sensor_type = rd->sensor_type;
    rec->battery_level = REPLAY_DEFAULT_BATTERY_LEVEL;
    rec->signal_strength = REPLAY_DEFAULT_SIGNAL_DBM;
}

static int parse_nab_row(sl_replay_reader_t *rd, sl_replay_item_t *item,
                         char *err, size_t err_size)
{
    sl_reading_t *rec = &item->reading;
    int rc;

    rc = split_row(rd, err, err_size);
    if (rc != SL_OK)
        return rc;
    reading_defaults(rd, rec);
    rc = time_field(rd, COL_TIMESTAMP, &rec->timestamp_ms, err, err_size);
    if (rc != SL_OK)
        return rc;
    rc = double_field(rd, COL_VALUE, &rec->value, err, err_size);
    if (rc != SL_OK)
        return rc;
    item->kind = SL_REPLAY_ITEM_READING;
    item->timestamp_ms = rec->timestamp_ms;
    return SL_OK;
}

/* Fills the optional columns of a sensor CSV row. An empty cell keeps the
 * default. */
static int parse_sensor_optional(sl_replay_reader_t *rd, sl_reading_t *rec,
                                 char *err, size_t err_size)
{
    char *s;
    int rc;

    s = field(rd, COL_SENSOR_TYPE);
    if (s != NULL && *trim(s) != '\0' &&
        sl_sensor_type_parse(trim(s), &rec->sensor_type) != SL_OK)
        return bad_line(err, err_size, rd->line_no,
                        "sensor_type '%s' is not a schema symbol", trim(s));
    s = field(rd, COL_LOCATION);
    if (s != NULL && *s != '\0') {
        rc = copy_text(rd, rec->location, sizeof(rec->location), s, "location",
                       err, err_size);
        if (rc != SL_OK)
            return rc;
    }
    s = field(rd, COL_UNIT);
    if (s != NULL) {
        rec->has_unit = *s != '\0';
        rc = copy_text(rd, rec->unit, sizeof(rec->unit), s, "unit", err,
                       err_size);
        if (rc != SL_OK)
            return rc;
    }
    s = field(rd, COL_BATTERY_LEVEL);
    if (s != NULL && *trim(s) != '\0' &&
        parse_int32(trim(s), &rec->battery_level) != SL_OK)
        return bad_line(err, err_size, rd->line_no,
                        "battery_level '%s' is not a 32-bit integer", s);
    s = field(rd, COL_SIGNAL_STRENGTH);
    if (s != NULL && *trim(s) != '\0' &&
        parse_int32(trim(s), &rec->signal_strength) != SL_OK)
        return bad_line(err, err_size, rd->line_no,
                        "signal_strength '%s' is not a 32-bit integer", s);
    s = field(rd, COL_ANOMALY);
    if (s != NULL && parse_bool(trim(s), &rec->anomaly) != SL_OK)
        return bad_line(err, err_size, rd->line_no,
                        "anomaly '%s' is not true, false, 1 or 0", s);
    return SL_OK;
}

static int parse_sensor_row(sl_replay_reader_t *rd, sl_replay_item_t *item,
                            char *err, size_t err_size)
{
    sl_reading_t *rec = &item->reading;
    char *id;
    int rc;

    rc = split_row(rd, err, err_size);
    if (rc != SL_OK)
        return rc;
    reading_defaults(rd, rec);
    rec->has_unit = false;
    rec->unit[0] = '\0';

    id = trim(field(rd, COL_SENSOR_ID));
    if (*id == '\0')
        return bad_line(err, err_size, rd->line_no, "sensor_id is empty");
    rc = copy_text(rd, rec->sensor_id, sizeof(rec->sensor_id), id, "sensor_id",
                   err, err_size);
    if (rc != SL_OK)
        return rc;
    rc = time_field(rd, COL_TIMESTAMP, &rec->timestamp_ms, err, err_size);
    if (rc != SL_OK)
        return rc;
    rc = double_field(rd, COL_VALUE, &rec->value, err, err_size);
    if (rc != SL_OK)
        return rc;
    rc = parse_sensor_optional(rd, rec, err, err_size);
    if (rc != SL_OK)
        return rc;
    item->kind = SL_REPLAY_ITEM_READING;
    item->timestamp_ms = rec->timestamp_ms;
    return SL_OK;
}

/* ---- Commerce CSV (REES46) --------------------------------------------- */

/*
 * REES46 to EcommerceEvent:
 *   event_time -> timestamp; event_type view/cart/remove_from_cart/purchase
 *   -> page_view/add_to_cart/remove_from_cart/purchase (the schema's own
 *   symbols are accepted too); product_id -> product_id; category_code ->
 *   category; brand -> product_name, because the brand is the only
 *   readable product label in the data set; price -> price; user_id ->
 *   user_id; user_session -> session_id.
 * Each row is one unit of one product, so cart, removal and purchase rows
 * get quantity 1, and a purchase gets total = price. The data set names no
 * currency, device or address, so currency stays absent, device is
 * "other" and ip_address is "" (unknown, rather than a made-up address).
 * category_id is accepted but not mapped: the schema has no numeric
 * category.
 * event_id is "rees46-<line>-<hash>", the line number and a 64-bit FNV-1a
 * hash of the row's fields, so replaying a file again yields the same ids
 * (the store drops the repeats) while equal rows on other lines stay
 * distinct events.
 */
static int parse_commerce_type(const char *s, sl_event_type_t *out)
{
    if (strcasecmp(s, "view") == 0)
        *out = SL_EVENT_PAGE_VIEW;
    else if (strcasecmp(s, "cart") == 0)
        *out = SL_EVENT_ADD_TO_CART;
    else if (sl_event_type_parse(s, out) != SL_OK)
        return SL_EINVAL;
    return SL_OK;
}

static int parse_commerce_product(sl_replay_reader_t *rd, sl_event_t *ev,
                                  char *err, size_t err_size)
{
    char *s;
    int rc;

    s = field(rd, COL_PRODUCT_ID);
    if (s != NULL && *trim(s) != '\0') {
        if (parse_int64(trim(s), &ev->product_id) != SL_OK)
            return bad_line(err, err_size, rd->line_no,
                            "product_id '%s' is not a 64-bit integer", s);
        ev->present |= SL_EV_PRODUCT_ID;
    }
    s = field(rd, COL_CATEGORY_CODE);
    if (s != NULL && *trim(s) != '\0') {
        rc = copy_text(rd, ev->category, sizeof(ev->category), trim(s),
                       "category_code", err, err_size);
        if (rc != SL_OK)
            return rc;
        ev->present |= SL_EV_CATEGORY;
    }
    s = field(rd, COL_BRAND);
    if (s != NULL && *trim(s) != '\0') {
        rc = copy_text(rd, ev->product_name, sizeof(ev->product_name), trim(s),
                       "brand", err, err_size);
        if (rc != SL_OK)
            return rc;
        ev->present |= SL_EV_PRODUCT_NAME;
    }
    s = field(rd, COL_PRICE);
    if (s != NULL && *trim(s) != '\0') {
        rc = double_field(rd, COL_PRICE, &ev->price, err, err_size);
        if (rc != SL_OK)
            return rc;
        ev->present |= SL_EV_PRICE;
    }
    return SL_OK;
}

/* Fills the fields REES46 implies: quantity and total, see above. */
static void commerce_derived(sl_event_t *ev)
{
    if (ev->event_type != SL_EVENT_ADD_TO_CART &&
        ev->event_type != SL_EVENT_REMOVE_FROM_CART &&
        ev->event_type != SL_EVENT_PURCHASE)
        return;
    ev->quantity = 1;
    ev->present |= SL_EV_QUANTITY;
    if (ev->event_type == SL_EVENT_PURCHASE && (ev->present & SL_EV_PRICE)) {
        ev->total = ev->price;
        ev->present |= SL_EV_TOTAL;
    }
}

static int parse_commerce_row(sl_replay_reader_t *rd, sl_replay_item_t *item,
                              char *err, size_t err_size)
{
    sl_event_t *ev = &item->event;
    char *last, *s;
    uint64_t hash;
    int rc;

    rc = split_row(rd, err, err_size);
    if (rc != SL_OK)
        return rc;

    /* Hash the fields before trim() edits them. They sit one after the
     * other in field_buf, each ended by its NUL. */
    last = rd->fields[rd->ncols - 1];
    hash = sl_hash_fnv1a(rd->field_buf,
                         (size_t)(last - rd->field_buf) + strlen(last) + 1);
    snprintf(ev->event_id, sizeof(ev->event_id), "rees46-%zu-%016" PRIx64,
             rd->line_no, hash);

    rc = time_field(rd, COL_EVENT_TIME, &ev->timestamp_ms, err, err_size);
    if (rc != SL_OK)
        return rc;
    s = trim(field(rd, COL_EVENT_TYPE));
    if (parse_commerce_type(s, &ev->event_type) != SL_OK)
        return bad_line(err, err_size, rd->line_no,
                        "event_type '%s' is not view, cart, "
                        "remove_from_cart, purchase or a schema symbol",
                        s);
    s = trim(field(rd, COL_USER_ID));
    if (*s == '\0')
        return bad_line(err, err_size, rd->line_no, "user_id is empty");
    rc = copy_text(rd, ev->user_id, sizeof(ev->user_id), s, "user_id", err,
                   err_size);
    if (rc != SL_OK)
        return rc;
    s = field(rd, COL_USER_SESSION);
    if (s != NULL) {
        rc = copy_text(rd, ev->session_id, sizeof(ev->session_id), trim(s),
                       "user_session", err, err_size);
        if (rc != SL_OK)
            return rc;
    }
    rc = parse_commerce_product(rd, ev, err, err_size);
    if (rc != SL_OK)
        return rc;
    commerce_derived(ev);
    ev->device = SL_DEVICE_OTHER;
    ev->ip_address[0] = '\0';
    item->kind = SL_REPLAY_ITEM_EVENT;
    item->timestamp_ms = ev->timestamp_ms;
    return SL_OK;
}

/* ---- NDJSON ------------------------------------------------------------ */

static int parse_ndjson_line(sl_replay_reader_t *rd, sl_replay_item_t *item,
                             char *err, size_t err_size)
{
    char why[256] = "";
    json_error_t jerr;
    json_t *obj;
    int rc;

    obj = json_loadb(rd->line, rd->line_len, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL)
        return bad_line(err, err_size, rd->line_no,
                        "invalid JSON at column %d: %s", jerr.column,
                        jerr.text);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return bad_line(err, err_size, rd->line_no, "expected a JSON object");
    }
    if (json_object_get(obj, "event_id") != NULL) {
        rc = sl_event_from_json(obj, &item->event, why, sizeof(why));
        item->kind = SL_REPLAY_ITEM_EVENT;
        item->event.timestamp_ms += rd->shift_ms;
        item->timestamp_ms = item->event.timestamp_ms;
    } else {
        rc = sl_reading_from_json(obj, &item->reading, why, sizeof(why));
        item->kind = SL_REPLAY_ITEM_READING;
        item->reading.timestamp_ms += rd->shift_ms;
        item->timestamp_ms = item->reading.timestamp_ms;
    }
    json_decref(obj);
    if (rc != SL_OK)
        return bad_line(err, err_size, rd->line_no, "%s", why);
    return SL_OK;
}

/* ---- Frames ------------------------------------------------------------ */

/* Decodes len hex digits at s into *buf (grown as needed). Returns the
 * byte count, or -1 with the reason in why. */
static long decode_hex(const char *s, size_t len, uint8_t **buf, size_t *cap,
                       const char *name, char *why, size_t why_size)
{
    if (len % 2 != 0) {
        set_err(why, why_size, "%s hex has odd length %zu", name, len);
        return -1;
    }
    if (!grow((void **)buf, cap, len / 2 + 1, 1)) {
        set_err(why, why_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < len; i += 2) {
        int hi = sl_hex_digit(s[i]), lo = sl_hex_digit(s[i + 1]);

        if (hi < 0 || lo < 0) {
            set_err(why, why_size,
                    "%s hex has a non-hex character at offset %zu", name,
                    hi < 0 ? i : i + 1);
            return -1;
        }
        (*buf)[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(len / 2);
}

/* Accepts 1 to SL_ID_MAX of the characters Kafka allows in topic names:
 * ASCII letters, digits, '.', '_' and '-'. */
static bool topic_valid(const char *s, size_t len)
{
    if (len == 0 || len > SL_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int parse_frame_line(sl_replay_reader_t *rd, sl_replay_item_t *item,
                            char *err, size_t err_size)
{
    const char *line = rd->line;
    const char *tab1 = strchr(line, '\t');
    const char *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
    char why[256];
    long n;

    if (tab2 == NULL || strchr(tab2 + 1, '\t') != NULL)
        return bad_line(err, err_size, rd->line_no,
                        "expected 3 tab-separated fields: topic, key hex, "
                        "value hex");
    if (!topic_valid(line, (size_t)(tab1 - line)))
        return bad_line(err, err_size, rd->line_no,
                        "invalid topic name: 1 to %d of [a-zA-Z0-9._-] "
                        "expected",
                        SL_ID_MAX);
    memcpy(item->topic, line, (size_t)(tab1 - line));
    item->topic[tab1 - line] = '\0';

    n = decode_hex(tab1 + 1, (size_t)(tab2 - tab1 - 1), &rd->key, &rd->key_cap,
                   "key", why, sizeof(why));
    if (n < 0)
        return bad_line(err, err_size, rd->line_no, "%s", why);
    item->key = rd->key;
    item->key_len = (size_t)n;
    n = decode_hex(tab2 + 1, strlen(tab2 + 1), &rd->value, &rd->value_cap,
                   "value", why, sizeof(why));
    if (n < 0)
        return bad_line(err, err_size, rd->line_no, "%s", why);
    item->value = rd->value;
    item->value_len = (size_t)n;
    /* Only the input topics have a consumer: a record on any other topic
     * would sit on the bus, never stored and never dead-lettered. */
    if (strcmp(item->topic, SL_TOPIC_SENSOR_READINGS) != 0 &&
        strcmp(item->topic, SL_TOPIC_ECOMMERCE_EVENTS) != 0)
        return bad_line(err, err_size, rd->line_no,
                        "unknown topic '%s'; expected %s or %s", item->topic,
                        SL_TOPIC_SENSOR_READINGS, SL_TOPIC_ECOMMERCE_EVENTS);
    item->kind = SL_REPLAY_ITEM_FRAME;
    item->timestamp_ms = 0;
    return SL_OK;
}

/* ---- Reader ------------------------------------------------------------ */

void sl_replay_options_init(sl_replay_options_t *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->format = SL_REPLAY_AUTO;
    opt->sensor_type = SL_SENSOR_OTHER;
    opt->speed = 0;
}

int sl_replay_format_parse(const char *name, sl_replay_format_t *out)
{
    static const sl_replay_format_t all[] = {
        SL_REPLAY_AUTO,   SL_REPLAY_NAB,          SL_REPLAY_SENSOR_CSV,
        SL_REPLAY_NDJSON, SL_REPLAY_COMMERCE_CSV, SL_REPLAY_FRAMES};

    if (name == NULL || out == NULL)
        return SL_EINVAL;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(name, format_name(all[i])) == 0) {
            *out = all[i];
            return SL_OK;
        }
    }
    return SL_EINVAL;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static sl_replay_format_t format_from_extension(const char *path)
{
    if (has_suffix(path, ".ndjson") || has_suffix(path, ".jsonl"))
        return SL_REPLAY_NDJSON;
    if (has_suffix(path, ".frames") || has_suffix(path, ".tsv"))
        return SL_REPLAY_FRAMES;
    return SL_REPLAY_AUTO;
}

/* Copies the identity of NAB readings: the sensor id defaults to the file
 * name without directory and ".csv". */
static int copy_identity(sl_replay_reader_t *rd, const char *path,
                         const sl_replay_options_t *opt, char *err,
                         size_t err_size)
{
    char base[SL_ID_MAX + 1];
    const char *name = strrchr(path, '/');
    const char *loc = opt->location ? opt->location : REPLAY_DEFAULT_LOCATION;
    size_t len;

    name = name ? name + 1 : path;
    if (strcmp(path, "-") == 0)
        name = "stdin";
    len = strlen(name);
    if (has_suffix(name, ".csv"))
        len -= 4;
    if (opt->sensor_id == NULL && (len == 0 || len > SL_ID_MAX)) {
        set_err(err, err_size,
                "cannot derive a sensor id from '%s'; set the sensor id", path);
        return SL_EINVAL;
    }
    memcpy(base, name, len < SL_ID_MAX ? len : SL_ID_MAX);
    base[len < SL_ID_MAX ? len : SL_ID_MAX] = '\0';

    if (sl_text_copy(rd->sensor_id, sizeof(rd->sensor_id),
                     opt->sensor_id ? opt->sensor_id : base) != SL_OK ||
        rd->sensor_id[0] == '\0') {
        set_err(err, err_size, "sensor id must be 1 to %d bytes", SL_ID_MAX);
        return SL_EINVAL;
    }
    if (sl_text_copy(rd->location, sizeof(rd->location), loc) != SL_OK) {
        set_err(err, err_size, "location is longer than %d bytes", SL_TEXT_MAX);
        return SL_EINVAL;
    }
    rd->has_unit = opt->unit != NULL;
    if (sl_text_copy(rd->unit, sizeof(rd->unit), opt->unit ? opt->unit : "") !=
        SL_OK) {
        set_err(err, err_size, "unit is longer than %d bytes",
                SL_SHORT_TEXT_MAX);
        return SL_EINVAL;
    }
    rd->sensor_type = opt->sensor_type;
    return SL_OK;
}

/* Reads the first line when the format needs it: the header of the CSV
 * formats, or the first data line when the format is still unknown. */
static int read_first_line(sl_replay_reader_t *rd, const char *path, char *err,
                           size_t err_size)
{
    int n, rc = next_line(rd);

    if (rc < 0) {
        set_err(err, err_size, "%s: read failed: %s", path, strerror(errno));
        return SL_EIO;
    }
    if (rc == 0) {
        set_err(err, err_size,
                "%s: the file is empty; a %s file needs a "
                "header line",
                path,
                rd->format == SL_REPLAY_AUTO ? "CSV" : format_name(rd->format));
        return SL_EINVAL;
    }
    if (rd->format == SL_REPLAY_AUTO) {
        if (rd->line[0] == '{') {
            rd->format = SL_REPLAY_NDJSON;
            rd->line_pending = true;
            return SL_OK;
        }
        if (strchr(rd->line, '\t') != NULL) {
            rd->format = SL_REPLAY_FRAMES;
            rd->line_pending = true;
            return SL_OK;
        }
        n = csv_split(rd, rd->line, rd->line_len, err, err_size);
        if (n < 0) {
            set_err(err, err_size,
                    "%s: cannot detect the format from line "
                    "%zu; set it explicitly",
                    path, rd->line_no);
            return SL_EINVAL;
        }
        rd->format = detect_csv_format(rd, n);
    }
    rc = parse_header(rd, err, err_size);
    if (rc != SL_OK) {
        char why[512];

        snprintf(why, sizeof(why), "%s", err);
        set_err(err, err_size, "%s: %s", path, why);
    }
    return rc;
}

static int reader_open(const char *path, const sl_replay_options_t *opt,
                       sl_replay_reader_t **out, char *err, size_t err_size);

/* Reads the whole file once and returns the shift that moves its latest
 * timestamp to now_ms. The latest rather than the last line's is used, so
 * no shifted record lands in the future even in an unsorted file. */
static int rebase_shift(const char *path, const sl_replay_options_t *opt,
                        sl_replay_format_t format, int64_t now_ms,
                        int64_t *shift_ms, char *err, size_t err_size)
{
    sl_replay_options_t scan = *opt;
    sl_replay_reader_t *rd;
    sl_replay_item_t *item;
    char line_err[256];
    bool any = false;
    int64_t latest = 0;
    int rc;

    scan.rebase_time = false;
    scan.format = format;
    rc = reader_open(path, &scan, &rd, err, err_size);
    if (rc != SL_OK)
        return rc;
    item = malloc(sizeof(*item));
    if (item == NULL) {
        sl_replay_close(rd);
        return SL_ENOMEM;
    }
    while ((rc = sl_replay_next(rd, item, line_err, sizeof(line_err))) != 0) {
        if (rc == SL_EIO)
            break;
        if (rc == 1 && item->kind != SL_REPLAY_ITEM_FRAME &&
            (!any || item->timestamp_ms > latest)) {
            latest = item->timestamp_ms;
            any = true;
        }
    }
    free(item);
    sl_replay_close(rd);
    if (rc == SL_EIO) {
        set_err(err, err_size,
                "%s: read failed while scanning for the "
                "latest timestamp",
                path);
        return SL_EIO;
    }
    *shift_ms = any ? now_ms - latest : 0;
    return SL_OK;
}

static int reader_open(const char *path, const sl_replay_options_t *opt,
                       sl_replay_reader_t **out, char *err, size_t err_size)
{
    sl_replay_reader_t *rd;
    bool is_stdin = strcmp(path, "-") == 0;
    int rc;

    *out = NULL;
    if (is_stdin && opt->rebase_time) {
        set_err(err, err_size,
                "rebase_time needs a file: standard input "
                "cannot be read twice");
        return SL_EINVAL;
    }
    rd = calloc(1, sizeof(*rd));
    if (rd == NULL)
        return SL_ENOMEM;
    for (int c = 0; c < COL_COUNT; c++)
        rd->col_index[c] = -1;
    rc = copy_identity(rd, path, opt, err, err_size);
    if (rc != SL_OK)
        goto err;

    rd->fp = is_stdin ? stdin : fopen(path, "r");
    rd->close_fp = !is_stdin;
    if (rd->fp == NULL) {
        rc = errno == ENOENT ? SL_ENOTFOUND : SL_EIO;
        set_err(err, err_size, "cannot open %s: %s", path, strerror(errno));
        goto err;
    }
    {
        struct stat sb;
        rd->streaming = fstat(fileno(rd->fp), &sb) != 0 || !S_ISREG(sb.st_mode);
    }
    rd->format = opt->format;
    if (rd->format == SL_REPLAY_AUTO)
        rd->format = format_from_extension(path);
    if (rd->format != SL_REPLAY_NDJSON && rd->format != SL_REPLAY_FRAMES) {
        rc = read_first_line(rd, path, err, err_size);
        if (rc != SL_OK)
            goto err;
    }

    if (opt->rebase_time) {
        rc = rebase_shift(path, opt, rd->format, sl_time_now_ms(),
                          &rd->shift_ms, err, err_size);
        if (rc != SL_OK)
            goto err;
    }
    *out = rd;
    return SL_OK;

err:
    sl_replay_close(rd);
    return rc;
}

sl_replay_reader_t *sl_replay_open(const char *path,
                                   const sl_replay_options_t *opt, char *err,
                                   size_t err_size)
{
    sl_replay_options_t defaults;
    sl_replay_reader_t *rd;

    if (path == NULL) {
        set_err(err, err_size, "no file given");
        return NULL;
    }
    if (opt == NULL) {
        sl_replay_options_init(&defaults);
        opt = &defaults;
    }
    if (reader_open(path, opt, &rd, err, err_size) != SL_OK)
        return NULL;
    return rd;
}

int sl_replay_next(sl_replay_reader_t *rd, sl_replay_item_t *item, char *err,
                   size_t err_size)
{
    int rc;

    if (rd == NULL || item == NULL)
        return SL_EINVAL;
    rc = next_line(rd);
    if (rc < 0) {
        set_err(err, err_size, "line %zu: read failed: %s", rd->line_no + 1,
                strerror(errno));
        return SL_EIO;
    }
    if (rc == 0)
        return 0;

    memset(item, 0, sizeof(*item));
    item->line = rd->line_no;
    if (rd->line_too_long)
        return bad_line(err, err_size, rd->line_no,
                        "longer than %d bytes; skipped", SL_REPLAY_MAX_LINE);
    if (rd->line_has_nul)
        return bad_line(err, err_size, rd->line_no, "line holds a NUL byte");
    switch (rd->format) {
    case SL_REPLAY_NAB:
        rc = parse_nab_row(rd, item, err, err_size);
        break;
    case SL_REPLAY_SENSOR_CSV:
        rc = parse_sensor_row(rd, item, err, err_size);
        break;
    case SL_REPLAY_NDJSON:
        rc = parse_ndjson_line(rd, item, err, err_size);
        break;
    case SL_REPLAY_COMMERCE_CSV:
        rc = parse_commerce_row(rd, item, err, err_size);
        break;
    case SL_REPLAY_FRAMES:
        rc = parse_frame_line(rd, item, err, err_size);
        break;
    default:
        rc = bad_line(err, err_size, rd->line_no, "no format chosen");
        break;
    }
    return rc == SL_OK ? 1 : rc;
}

sl_replay_format_t sl_replay_reader_format(const sl_replay_reader_t *rd)
{
    return rd->format;
}

void sl_replay_close(sl_replay_reader_t *rd)
{
    if (rd == NULL)
        return;
    if (rd->fp != NULL && rd->close_fp)
        fclose(rd->fp);
    free(rd->line);
    free(rd->fields);
    free(rd->field_buf);
    free(rd->key);
    free(rd->value);
    free(rd);
}

/* ---- Driver ------------------------------------------------------------ */

/* Maps event time to wall time: a record stamped t after the first one is
 * published (t / speed) after it. */
typedef struct pacer {
    double speed;
    bool started;
    int64_t first_ts_ms;
    int64_t start_mono_ms;
} pacer_t;

static bool stopped(volatile int *stop)
{
    return stop != NULL && *stop != 0;
}

/* Waits until the record stamped ts_ms is due. Queued records go to the
 * bus before the wait, so a paced replay does not hold them back. */
static void pace(pacer_t *pc, int64_t ts_ms, sl_publisher_t *pub,
                 volatile int *stop)
{
    int64_t target, now;

    /* Frames carry no event time (0): they go out as fast as possible. */
    if (pc->speed <= 0 || ts_ms == 0)
        return;
    if (!pc->started) {
        pc->started = true;
        pc->first_ts_ms = ts_ms;
        pc->start_mono_ms = sl_time_mono_ms();
        return;
    }
    target = pc->start_mono_ms +
             (int64_t)((double)(ts_ms - pc->first_ts_ms) / pc->speed);
    if (sl_time_mono_ms() >= target)
        return;
    sl_publisher_flush(pub);
    while (!stopped(stop) && (now = sl_time_mono_ms()) < target) {
        int64_t wait = target - now;
        sl_time_sleep_ms(wait < REPLAY_STOP_CHECK_MS ? wait
                                                     : REPLAY_STOP_CHECK_MS);
    }
}

/* Logs the first REPLAY_LOG_LIMIT occurrences one by one, then every
 * REPLAY_LOG_EVERY-th. */
static bool should_log(uint64_t count)
{
    return count <= REPLAY_LOG_LIMIT || count % REPLAY_LOG_EVERY == 0;
}

static int publish_item(sl_publisher_t *pub, const sl_replay_item_t *item)
{
    switch (item->kind) {
    case SL_REPLAY_ITEM_READING:
        return sl_publish_reading(pub, &item->reading);
    case SL_REPLAY_ITEM_EVENT:
        return sl_publish_event(pub, &item->event);
    case SL_REPLAY_ITEM_FRAME:
        return sl_publish_frame(pub, item->topic, item->key, item->key_len,
                                item->value, item->value_len);
    }
    return SL_EINVAL;
}

/* Logs a record that was not published, by its line. */
typedef struct failure_log {
    const char *path;
    uint64_t logged; /* failures seen so far, for should_log */
} failure_log_t;

static void log_failure(failure_log_t *fl, uint64_t line, int rc)
{
    fl->logged++;
    if (!should_log(fl->logged))
        return;
    if (rc == SL_EREJECTED)
        sl_log_warn("replay",
                    "record dead-lettered file=%s line=%" PRIu64
                    ": too large for the bus",
                    fl->path, line);
    else
        sl_log_warn("replay",
                    "publish failed file=%s line=%" PRIu64
                    " failed_total=%" PRIu64 ": %s",
                    fl->path, line, fl->logged, sl_strerror(rc));
}

/* The publisher's report function: a batched record failed. */
static void on_report(void *ctx, const sl_publish_report_t *report)
{
    log_failure(ctx, report->tag, report->status);
}

static void count_malformed(const char *path, const char *why,
                            sl_replay_stats_t *st)
{
    st->malformed++;
    if (should_log(st->malformed))
        sl_log_warn("replay", "malformed line skipped file=%s: %s", path, why);
    if (st->malformed == REPLAY_LOG_LIMIT)
        sl_log_warn("replay",
                    "%d malformed lines in file=%s; further ones are logged "
                    "every %d",
                    REPLAY_LOG_LIMIT, path, REPLAY_LOG_EVERY);
}

/* Publishes the records of an open reader until its end, a read error,
 * a closed bus or *stop. Returns SL_OK, SL_ENOMEM or SL_EIO. */
/* Returns true when the next line can be read without blocking, or when
 * waiting up to timeout_ms brought input or the end of it. Bytes stdio
 * already buffered count as input. */
static bool input_ready(sl_replay_reader_t *rd, int timeout_ms)
{
    if (!rd->streaming || rd->line_pending)
        return true;
#ifdef __GLIBC__
    /* glibc's FILE exposes its read buffer. */
    if (rd->fp->_IO_read_ptr < rd->fp->_IO_read_end)
        return true;
    struct pollfd pfd = {.fd = fileno(rd->fp), .events = POLLIN};
    return poll(&pfd, 1, timeout_ms) != 0;
#else
    /* Other C libraries may hold buffered bytes that poll cannot see, so
     * their input is never waited on. */
    (void)timeout_ms;
    return true;
#endif
}

static int replay_records(sl_replay_reader_t *rd, const char *path,
                          double speed, sl_publisher_t *pub, volatile int *stop,
                          sl_replay_stats_t *st)
{
    failure_log_t fl = {path, 0};
    sl_replay_item_t *item = malloc(sizeof(*item));
    pacer_t pc = {0};
    char err[512];
    int rc, result = SL_OK;

    if (item == NULL)
        return SL_ENOMEM;
    pc.speed = speed;
    sl_publisher_set_report(pub, on_report, &fl);
    while (!stopped(stop)) {
        /* Live input (a pipe or FIFO) that has nothing more for now: send
         * the records batched so far instead of holding them until more
         * arrives, and keep noticing a stop request while waiting. */
        if (!input_ready(rd, 0)) {
            sl_publisher_flush(pub);
            while (!stopped(stop) && !input_ready(rd, REPLAY_STOP_CHECK_MS)) {
            }
            if (stopped(stop))
                break;
        }
        rc = sl_replay_next(rd, item, err, sizeof(err));
        if (rc == 0)
            break;
        if (rc == SL_EIO) {
            sl_log_error("replay", "read failed file=%s: %s", path, err);
            result = SL_EIO;
            break;
        }
        if (rc < 0) {
            count_malformed(path, err, st);
            continue;
        }
        pace(&pc, item->timestamp_ms, pub, stop);
        sl_publisher_set_tag(pub, item->line);
        rc = publish_item(pub, item);
        if (rc == SL_OK)
            continue;
        /* XXX: a record the bus rejects (SL_EFULL after the publisher's
         * timeout) is logged, counted and skipped, not retried. A
         * publisher with a negative timeout waits for room instead. */
        log_failure(&fl, item->line, rc);
        if (rc == SL_ECLOSED)
            break;
    }
    /* Reports of this flush still reach fl, which lives until here. */
    sl_publisher_flush(pub);
    sl_publisher_set_report(pub, NULL, NULL);
    free(item);
    return result;
}

int sl_replay_run(const char *path, const sl_replay_options_t *opt,
                  sl_publisher_t *pub, volatile int *stop,
                  sl_replay_stats_t *stats)
{
    sl_replay_stats_t st = {0};
    sl_replay_options_t defaults;
    sl_publisher_stats_t before, after;
    sl_replay_reader_t *rd;
    char err[512];
    int rc;

    if (path == NULL || pub == NULL)
        return SL_EINVAL;
    if (opt == NULL) {
        sl_replay_options_init(&defaults);
        opt = &defaults;
    }
    rc = reader_open(path, opt, &rd, err, sizeof(err));
    if (rc != SL_OK) {
        sl_log_error("replay", "open failed: %s", err);
        return rc;
    }
    sl_log_info("replay", "replay started file=%s format=%s speed=%g", path,
                format_name(rd->format), opt->speed);

    /* The publisher counts every record it was given, batched or not, so
     * the replay's counts are the change over this run. */
    sl_publisher_flush(pub);
    sl_publisher_stats(pub, &before);
    rc = replay_records(rd, path, opt->speed, pub, stop, &st);
    sl_publisher_stats(pub, &after);
    st.published = after.published - before.published;
    st.failed = after.failed - before.failed;
    st.dead_lettered = after.dead_lettered - before.dead_lettered;

    sl_log_info("replay",
                "replay finished file=%s published=%" PRIu64
                " malformed=%" PRIu64 " failed=%" PRIu64
                " dead_lettered=%" PRIu64 "%s",
                path, st.published, st.malformed, st.failed, st.dead_lettered,
                stopped(stop) ? " (stopped)" : "");
    sl_replay_close(rd);
    if (stats != NULL)
        *stats = st;
    return rc;
}
