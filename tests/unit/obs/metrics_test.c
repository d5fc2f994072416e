/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the metrics registry and its text exposition. Every rendered
 * text also goes through check_exposition(), a strict line parser for
 * format 0.0.4, so unit tests need no promtool (the e2e tests run it).
 * The parser accepts only comments and samples whose name, labels,
 * escapes and value are well-formed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/metrics.h"
#include "util/err.h"

#define MAX_FAMILIES 64
#define MAX_SAMPLE_LABELS (SL_METRICS_MAX_LABELS + 1) /* + le */

/* One sample line, with label values unescaped. */
typedef struct sample {
    char name[128];
    size_t label_count;
    char label_names[MAX_SAMPLE_LABELS][64];
    char label_values[MAX_SAMPLE_LABELS][256];
    double value;
} sample_t;

/* What the parser remembers of the families seen so far. */
typedef struct exposition {
    size_t family_count;
    char families[MAX_FAMILIES][128];
    char types[MAX_FAMILIES][16];
} exposition_t;

/* ---------------------------------------------------------------------------
 * Strict parser. A violation formats parse_error and jumps back to
 * exposition_error(), so the parser itself can be tested on bad input.
 */

static jmp_buf parse_jump;
static char parse_error[256];

__attribute__((format(printf, 2, 3), noreturn)) static void
bad(size_t line_no, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(parse_error, sizeof(parse_error), "line %zu: ", line_no);

    va_start(ap, fmt);
    vsnprintf(parse_error + n, sizeof(parse_error) - (size_t)n, fmt, ap);
    va_end(ap);
    longjmp(parse_jump, 1);
}

static bool is_name_char(char c, bool first, bool allow_colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (allow_colon && c == ':')
        return true;
    return !first && c >= '0' && c <= '9';
}

/* Reads a metric (allow_colon) or label name at *p into out[size]. */
static void read_name(const char **p, bool allow_colon, char *out, size_t size,
                      size_t line_no)
{
    size_t n = 0;

    while (is_name_char((*p)[n], n == 0, allow_colon)) {
        if (n + 1 >= size)
            bad(line_no, "name too long");
        out[n] = (*p)[n];
        n++;
    }
    if (n == 0)
        bad(line_no, "expected a name at \"%s\"", *p);
    out[n] = '\0';
    *p += n;
}

/* Reads a quoted label value, allowing only the escapes \\, \" and \n. */
static void read_label_value(const char **p, char *out, size_t size,
                             size_t line_no)
{
    const char *s = *p;
    size_t n = 0;

    if (*s++ != '"')
        bad(line_no, "label value does not start with '\"'");
    while (*s != '"') {
        char c = *s++;

        if (c == '\0' || c == '\n')
            bad(line_no, "unterminated label value");
        if (c == '\\') {
            c = *s++;
            if (c == 'n')
                c = '\n';
            else if (c != '\\' && c != '"')
                bad(line_no, "invalid escape \\%c", c);
        }
        if (n + 1 >= size)
            bad(line_no, "label value too long");
        out[n++] = c;
    }
    out[n] = '\0';
    *p = s + 1;
}

static double read_value(const char *s, size_t line_no)
{
    char *end;
    double v;

    if (strcmp(s, "NaN") == 0)
        return NAN;
    if (strcmp(s, "+Inf") == 0)
        return INFINITY;
    if (strcmp(s, "-Inf") == 0)
        return -INFINITY;

    /* strtod would also take leading blanks, "nan", "inf" and hex floats,
     * but the format does not. */
    if (*s == ' ' || *s == '\t' || strpbrk(s, "xXnNiI") != NULL)
        bad(line_no, "invalid value \"%s\"", s);
    v = strtod(s, &end);
    if (end == s || *end != '\0')
        bad(line_no, "invalid value \"%s\"", s);
    return v;
}

static void parse_sample(const char *line, size_t line_no, sample_t *out)
{
    const char *p = line;

    memset(out, 0, sizeof(*out));
    read_name(&p, true, out->name, sizeof(out->name), line_no);
    if (*p == '{') {
        p++;
        while (*p != '}') {
            size_t i = out->label_count;

            if (i == MAX_SAMPLE_LABELS)
                bad(line_no, "too many labels");
            if (i > 0 && *p++ != ',')
                bad(line_no, "expected ',' between labels");
            read_name(&p, false, out->label_names[i],
                      sizeof(out->label_names[i]), line_no);
            for (size_t k = 0; k < i; k++) {
                if (strcmp(out->label_names[k], out->label_names[i]) == 0)
                    bad(line_no, "repeated label");
            }
            if (*p++ != '=')
                bad(line_no, "expected '=' after label");
            read_label_value(&p, out->label_values[i],
                             sizeof(out->label_values[i]), line_no);
            out->label_count++;
        }
        p++;
    }
    if (*p++ != ' ')
        bad(line_no, "expected one space before the value");
    out->value = read_value(p, line_no);
}

static int family_index(const exposition_t *ex, const char *name)
{
    for (size_t i = 0; i < ex->family_count; i++) {
        if (strcmp(ex->families[i], name) == 0)
            return (int)i;
    }
    return -1;
}

static void parse_comment(const char *line, size_t line_no, exposition_t *ex)
{
    const char *p = line + 2;
    char name[128];

    if (strncmp(line, "# HELP ", 7) == 0) {
        p = line + 7;
        read_name(&p, true, name, sizeof(name), line_no);
        if (*p != ' ')
            bad(line_no, "expected help text");
        for (p++; *p != '\0'; p++) {
            if (*p == '\\' && p[1] != '\\' && p[1] != 'n')
                bad(line_no, "invalid escape in help");
            if (*p == '\\')
                p++;
        }
        return;
    }
    if (strncmp(line, "# TYPE ", 7) != 0)
        return; /* other comments are allowed */

    p = line + 7;
    read_name(&p, true, name, sizeof(name), line_no);
    if (*p++ != ' ' || (strcmp(p, "counter") != 0 && strcmp(p, "gauge") != 0 &&
                        strcmp(p, "histogram") != 0 &&
                        strcmp(p, "summary") != 0 && strcmp(p, "untyped") != 0))
        bad(line_no, "invalid TYPE line");
    if (family_index(ex, name) >= 0)
        bad(line_no, "second TYPE for %s", name);
    assert_true(ex->family_count < MAX_FAMILIES);
    strcpy(ex->families[ex->family_count], name);
    strcpy(ex->types[ex->family_count], p);
    ex->family_count++;
}

/* Checks that a histogram sample is name_bucket with le, _sum or _count. */
static void check_histogram_sample(const sample_t *s, const char *family,
                                   size_t line_no)
{
    size_t n = strlen(family);
    const char *suffix = s->name + n;
    bool has_le = false;

    for (size_t i = 0; i < s->label_count; i++)
        has_le |= strcmp(s->label_names[i], "le") == 0;
    if (strcmp(suffix, "_bucket") == 0 && has_le)
        return;
    if ((strcmp(suffix, "_sum") == 0 || strcmp(suffix, "_count") == 0) &&
        !has_le)
        return;
    bad(line_no, "invalid histogram sample %s", s->name);
}

/* The family a sample belongs to is the most recent TYPE line. */
static void check_sample_family(const sample_t *s, const exposition_t *ex,
                                size_t line_no)
{
    const char *family;
    const char *type;

    if (ex->family_count == 0)
        bad(line_no, "sample before any TYPE line");
    family = ex->families[ex->family_count - 1];
    type = ex->types[ex->family_count - 1];
    if (strcmp(type, "histogram") == 0) {
        if (strncmp(s->name, family, strlen(family)) != 0)
            bad(line_no, "%s outside its family", s->name);
        check_histogram_sample(s, family, line_no);
    } else if (strcmp(s->name, family) != 0) {
        bad(line_no, "%s outside its family", s->name);
    }
}

/* Copies the line at text into buf and returns the start of the next. */
static const char *next_line(const char *text, char *buf, size_t size)
{
    const char *eol = strchr(text, '\n');
    size_t len = eol != NULL ? (size_t)(eol - text) : strlen(text);

    assert_true(len < size);
    memcpy(buf, text, len);
    buf[len] = '\0';
    return eol != NULL ? eol + 1 : text + len;
}

static void check_lines(const char *text)
{
    exposition_t ex = {0};
    const char *next = text;
    size_t line_no = 0;
    char line[1024];
    sample_t sample;

    if (text[0] != '\0' && text[strlen(text) - 1] != '\n')
        bad(0, "the text does not end with a line feed");
    while (*next != '\0') {
        next = next_line(next, line, sizeof(line));
        line_no++;
        if (line[0] == '#') {
            parse_comment(line, line_no, &ex);
        } else {
            parse_sample(line, line_no, &sample);
            check_sample_family(&sample, &ex, line_no);
        }
    }
}

/* Checks every line of text. Returns NULL, or the first violation. */
static const char *exposition_error(const char *text)
{
    if (setjmp(parse_jump) != 0)
        return parse_error;
    check_lines(text);
    return NULL;
}

static void check_exposition(const char *text)
{
    const char *error = exposition_error(text);

    if (error != NULL)
        fail_msg("invalid exposition: %s in:\n%s", error, text);
}

static void parse_sample_or_fail(const char *line, sample_t *out)
{
    if (setjmp(parse_jump) != 0)
        fail_msg("invalid sample: %s", parse_error);
    parse_sample(line, 0, out);
}

/* Finds the first line that starts with prefix and parses it as a sample. */
static bool find_sample(const char *text, const char *prefix, sample_t *out)
{
    char line[1024];

    for (const char *next = text; *next != '\0';) {
        next = next_line(next, line, sizeof(line));
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            parse_sample_or_fail(line, out);
            return true;
        }
    }
    return false;
}

/* Renders, checks the text strictly and returns it. The caller frees it. */
static char *render_checked(void)
{
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(sl_metrics_render(&text, &len), SL_OK);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    check_exposition(text);
    return text;
}

static int reset_registry(void **state)
{
    (void)state;
    sl_metrics_reset();
    return 0;
}

/* ---------------------------------------------------------------------------
 * Tests
 */

static void render_exact_text(void **state)
{
    static const double bounds[] = {0.005, 0.25, 1, 2.5, 10};
    const char *expected =
        "# HELP sluice_test_events_total Events seen.\n"
        "# TYPE sluice_test_events_total counter\n"
        "sluice_test_events_total{kind=\"a\"} 3\n"
        "sluice_test_events_total{kind=\"b\"} 0\n"
        "# HELP sluice_test_queue_depth Messages waiting.\n"
        "# TYPE sluice_test_queue_depth gauge\n"
        "sluice_test_queue_depth 2.5\n"
        "# HELP sluice_test_batch_seconds Time to store one batch.\n"
        "# TYPE sluice_test_batch_seconds histogram\n"
        "sluice_test_batch_seconds_bucket{stage=\"store\",le=\"0.005\"} 0\n"
        "sluice_test_batch_seconds_bucket{stage=\"store\",le=\"0.25\"} 1\n"
        "sluice_test_batch_seconds_bucket{stage=\"store\",le=\"1\"} 2\n"
        "sluice_test_batch_seconds_bucket{stage=\"store\",le=\"2.5\"} 3\n"
        "sluice_test_batch_seconds_bucket{stage=\"store\",le=\"10\"} 3\n"
        "sluice_test_batch_seconds_bucket{stage=\"store\",le=\"+Inf\"} 4\n"
        "sluice_test_batch_seconds_sum{stage=\"store\"} 66.75\n"
        "sluice_test_batch_seconds_count{stage=\"store\"} 4\n";
    sl_counter_t *a, *b;
    sl_gauge_t *g;
    sl_histogram_t *h;
    char *text;

    (void)state;
    a = sl_metrics_counter("sluice_test_events_total", "Events seen.",
                           (const char *[]){"kind", "a", NULL});
    b = sl_metrics_counter("sluice_test_events_total", "Events seen.",
                           (const char *[]){"kind", "b", NULL});
    g = sl_metrics_gauge("sluice_test_queue_depth", "Messages waiting.", NULL);
    h = sl_metrics_histogram("sluice_test_batch_seconds",
                             "Time to store one batch.", bounds, 5,
                             (const char *[]){"stage", "store", NULL});
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(g);
    assert_non_null(h);

    sl_counter_add(a, 1);
    sl_counter_add(a, 2);
    sl_gauge_set(g, 4.0);
    sl_gauge_add(g, -1.5);
    sl_histogram_observe(h, 0.25); /* a bound is inclusive */
    sl_histogram_observe(h, 0.5);
    sl_histogram_observe(h, 2.0);
    sl_histogram_observe(h, 64.0);

    assert_int_equal(sl_counter_value(a), 3);
    assert_true(sl_gauge_value(g) == 2.5);
    text = render_checked();
    assert_string_equal(text, expected);
    free(text);
}

static void render_empty_registry(void **state)
{
    char *text = render_checked();

    (void)state;
    assert_string_equal(text, "");
    free(text);
}

static void label_values_escaped(void **state)
{
    /* Sensor ids that pass decoding but break naive label rendering. */
    static const char *const ids[] = {"dock \"A\"", "C:\\sensors\\t1",
                                      "line1\nline2"};
    static const char *const lines[] = {
        "sluice_readings_ingested_total{sensor_id=\"dock \\\"A\\\"\"} 1\n",
        "sluice_readings_ingested_total{sensor_id=\"C:\\\\sensors\\\\t1\"} 1\n",
        "sluice_readings_ingested_total{sensor_id=\"line1\\nline2\"} 1\n",
    };
    char *text;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        sl_counter_t *c = sl_metrics_counter(
            "sluice_readings_ingested_total", "Readings accepted.",
            (const char *[]){"sensor_id", ids[i], NULL});
        assert_non_null(c);
        sl_counter_add(c, 1);
    }

    text = render_checked();
    for (size_t i = 0; i < 3; i++) {
        char prefix[128];
        sample_t s;

        if (strstr(text, lines[i]) == NULL)
            fail_msg("missing line %s in:\n%s", lines[i], text);

        /* Unescaping the rendered value gives back the original id. */
        snprintf(prefix, sizeof(prefix), "%.*s",
                 (int)(strchr(lines[i], '}') - lines[i]), lines[i]);
        assert_true(find_sample(text, prefix, &s));
        assert_int_equal(s.label_count, 1);
        assert_string_equal(s.label_values[0], ids[i]);
        assert_true(s.value == 1.0);
    }
    free(text);
}

static void label_values_escaped_in_every_kind(void **state)
{
    static const double bounds[] = {1};
    static const char *const expected[] = {
        "sluice_test_gauge{id=\"a\\\"b\\\\c\\nd\"} 2\n",
        "sluice_test_hist_bucket{id=\"a\\\"b\\\\c\\nd\",le=\"1\"} 1\n",
        "sluice_test_hist_bucket{id=\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} 1\n",
        "sluice_test_hist_sum{id=\"a\\\"b\\\\c\\nd\"} 0.5\n",
        "sluice_test_hist_count{id=\"a\\\"b\\\\c\\nd\"} 1\n",
        "sluice_build_info{version=\"1.0 \\\"rc\\\"\"} 1\n",
    };
    const char *const labels[] = {"id", "a\"b\\c\nd", NULL};
    char *text;

    (void)state;
    sl_gauge_set(sl_metrics_gauge("sluice_test_gauge", "G", labels), 2);
    sl_histogram_observe(
        sl_metrics_histogram("sluice_test_hist", "H", bounds, 1, labels), 0.5);
    sl_metrics_build_info("1.0 \"rc\"");

    text = render_checked();
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        if (strstr(text, expected[i]) == NULL)
            fail_msg("missing line %s in:\n%s", expected[i], text);
    }
    free(text);
}

static void help_text_escaped(void **state)
{
    char *text;

    (void)state;
    assert_non_null(sl_metrics_gauge(
        "sluice_test_help", "Reads C:\\data \"raw\"\nsecond line", NULL));
    text = render_checked();
    assert_non_null(strstr(
        text,
        "# HELP sluice_test_help Reads C:\\\\data \"raw\"\\nsecond line\n"));
    free(text);
}

static void gauge_value_formats(void **state)
{
    static const struct {
        double value;
        const char *text;
    } cases[] = {
        {0.0, "0"},
        {1.0, "1"},
        {-2.5, "-2.5"},
        {0.1, "0.1"},
        {1.0 / 3.0, "0.3333333333333333"},
        {123456.0, "123456"},
        {1e6, "1e+06"},
        {1234567.0, "1.234567e+06"},
        {0.0001, "0.0001"},
        {0.00001, "1e-05"},
        {1.5e-7, "1.5e-07"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {NAN, "NaN"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);
    char *text;

    (void)state;
    for (size_t i = 0; i < n; i++) {
        char id[8];
        sl_gauge_t *g;

        snprintf(id, sizeof(id), "%zu", i);
        g = sl_metrics_gauge("sluice_test_value", "A value.",
                             (const char *[]){"case", id, NULL});
        assert_non_null(g);
        sl_gauge_set(g, cases[i].value);
    }

    text = render_checked();
    for (size_t i = 0; i < n; i++) {
        char line[96];

        snprintf(line, sizeof(line), "sluice_test_value{case=\"%zu\"} %s\n", i,
                 cases[i].text);
        if (strstr(text, line) == NULL)
            fail_msg("missing line %s in:\n%s", line, text);
    }
    free(text);
}

static void histogram_special_observations(void **state)
{
    static const double bounds[] = {0.005};
    sl_histogram_t *h;
    sample_t s;
    char *text;

    (void)state;
    h = sl_metrics_histogram("sluice_test_odd_seconds", "Odd values.", bounds,
                             1, NULL);
    assert_non_null(h);
    sl_histogram_observe(h, 0.005);
    sl_histogram_observe(h, -1.0);
    sl_histogram_observe(h, INFINITY);

    text = render_checked();
    assert_true(
        find_sample(text, "sluice_test_odd_seconds_bucket{le=\"0.005\"}", &s));
    assert_true(s.value == 2.0);
    assert_true(
        find_sample(text, "sluice_test_odd_seconds_bucket{le=\"+Inf\"}", &s));
    assert_true(s.value == 3.0);
    assert_non_null(strstr(text, "sluice_test_odd_seconds_sum +Inf\n"));
    assert_non_null(strstr(text, "sluice_test_odd_seconds_count 3\n"));
    free(text);
}

static void registration_rules(void **state)
{
    static const double bounds[] = {1, 2};
    static const double other_bounds[] = {1, 3};
    static const double descending[] = {2, 1};
    static const double with_nan[] = {1, NAN};
    sl_counter_t *c;

    (void)state;
    c = sl_metrics_counter("sluice_test_total", "T.",
                           (const char *[]){"a", "1", NULL});
    assert_non_null(c);
    assert_ptr_equal(sl_metrics_counter("sluice_test_total", "T.",
                                        (const char *[]){"a", "1", NULL}),
                     c);
    assert_ptr_not_equal(sl_metrics_counter("sluice_test_total", "T.",
                                            (const char *[]){"a", "2", NULL}),
                         c);

    /* A name keeps its type. */
    assert_null(sl_metrics_gauge("sluice_test_total", "T.", NULL));

    /* Invalid names, malformed label lists. */
    assert_null(sl_metrics_counter("9starts_with_digit", "x", NULL));
    assert_null(sl_metrics_counter("has-dash", "x", NULL));
    assert_null(sl_metrics_counter("", "x", NULL));
    assert_null(sl_metrics_counter("sluice_x", "x",
                                   (const char *[]){"bad-label", "v", NULL}));
    assert_null(sl_metrics_counter("sluice_x", "x",
                                   (const char *[]){"__reserved", "v", NULL}));
    assert_null(sl_metrics_counter("sluice_x", "x",
                                   (const char *[]){"a:b", "v", NULL}));
    assert_null(sl_metrics_counter("sluice_x", "x",
                                   (const char *[]){"a", "1", "a", "2", NULL}));
    assert_null(
        sl_metrics_counter("sluice_x", "x", (const char *[]){"a", NULL}));
    assert_null(
        sl_metrics_counter("sluice_x", "x",
                           (const char *[]){"a", "1", "b", "2", "c", "3", "d",
                                            "4", "e", "5", NULL}));
    assert_non_null(sl_metrics_counter(
        "sluice_x", "x",
        (const char *[]){"a", "1", "b", "2", "c", "3", "d", "4", NULL}));
    assert_non_null(sl_metrics_counter("sluice:recorded_rule", "x", NULL));

    /* Histogram bounds and the reserved le label. */
    assert_non_null(
        sl_metrics_histogram("sluice_test_h", "H.", bounds, 2, NULL));
    assert_null(sl_metrics_histogram("sluice_test_h", "H.", other_bounds, 2,
                                     (const char *[]){"x", "y", NULL}));
    assert_null(sl_metrics_histogram("sluice_test_h", "H.", bounds, 1, NULL));
    assert_null(
        sl_metrics_histogram("sluice_test_h2", "H.", descending, 2, NULL));
    assert_null(
        sl_metrics_histogram("sluice_test_h2", "H.", with_nan, 2, NULL));
    assert_null(sl_metrics_histogram("sluice_test_h2", "H.", bounds, 2,
                                     (const char *[]){"le", "1", NULL}));
    assert_non_null(
        sl_metrics_histogram("sluice_test_h3", "H.", NULL, 0, NULL));

    /* A failed lookup's NULL handle is ignored by every update. */
    sl_counter_add(NULL, 1);
    sl_gauge_set(NULL, 1.0);
    sl_gauge_add(NULL, 1.0);
    sl_histogram_observe(NULL, 1.0);
    assert_int_equal(sl_counter_value(NULL), 0);

    free(render_checked());
}

#define THREAD_ITERATIONS 1000000

static void *hammer(void *arg)
{
    static const double bounds[] = {0.5, 1.0};
    sl_counter_t *c = sl_metrics_counter("sluice_test_concurrent_total",
                                         "Concurrent adds.", NULL);
    sl_gauge_t *g = sl_metrics_gauge("sluice_test_concurrent_gauge",
                                     "Concurrent adds.", NULL);
    sl_histogram_t *h =
        sl_metrics_histogram("sluice_test_concurrent_seconds",
                             "Concurrent observations.", bounds, 2, NULL);

    (void)arg;
    for (int i = 0; i < THREAD_ITERATIONS; i++) {
        sl_counter_add(c, 1);
        sl_gauge_add(g, 1.0);
        sl_histogram_observe(h, 1.0);
    }
    return NULL;
}

static void concurrent_updates_sum_exactly(void **state)
{
    pthread_t threads[2];
    sample_t s;
    char *text;

    (void)state;
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);

    assert_int_equal(
        sl_counter_value(sl_metrics_counter("sluice_test_concurrent_total",
                                            "Concurrent adds.", NULL)),
        2 * THREAD_ITERATIONS);
    assert_true(sl_gauge_value(sl_metrics_gauge("sluice_test_concurrent_gauge",
                                                "Concurrent adds.", NULL)) ==
                2.0 * THREAD_ITERATIONS);

    text = render_checked();
    assert_true(find_sample(text, "sluice_test_concurrent_seconds_count", &s));
    assert_true(s.value == 2.0 * THREAD_ITERATIONS);
    assert_true(find_sample(text, "sluice_test_concurrent_seconds_sum", &s));
    assert_true(s.value == 2.0 * THREAD_ITERATIONS);
    assert_true(find_sample(
        text, "sluice_test_concurrent_seconds_bucket{le=\"0.5\"}", &s));
    assert_true(s.value == 0.0);
    assert_true(find_sample(
        text, "sluice_test_concurrent_seconds_bucket{le=\"1\"}", &s));
    assert_true(s.value == 2.0 * THREAD_ITERATIONS);
    free(text);
}

static void exposition_checker_rejects(void **state)
{
    /* The checker must fail on what it is there to catch, or the other
     * tests prove nothing. */
    static const char *const bad_texts[] = {
        "x 1\n",                                /* no TYPE line */
        "# TYPE x counter\nx{a=\"q\"q\"} 1\n",  /* raw quote */
        "# TYPE x counter\nx{a=\"C:\\t\"} 1\n", /* unknown escape \t */
        "# TYPE x counter\nx{a=\"1\",a=\"2\"} 1\n",
        "# TYPE x counter\nx{a=\"line1\nline2\"} 1\n", /* raw LF */
        "# TYPE x counter\nx nan\n",
        "# TYPE x counter\nx Infinity\n",
        "# TYPE x counter\nx  1\n",
        "# TYPE x counter\ny 1\n",
        "# TYPE x gauge\n# TYPE x gauge\n",
        "# TYPE x histogram\nx_bucket 1\n",
        "# TYPE x counter\nx 1",
        "# HELP x bad \\t escape\n",
        "# TYPE 1x counter\n",
    };
    const char *good = "# HELP x C:\\\\dir\\nnext\n"
                       "# TYPE x histogram\n"
                       "x_bucket{a=\"q\\\"\\\\\\n\",le=\"+Inf\"} 1\n"
                       "x_sum{a=\"q\\\"\\\\\\n\"} NaN\n"
                       "x_count{a=\"q\\\"\\\\\\n\"} 1\n";
    sample_t s;

    (void)state;
    for (size_t i = 0; i < sizeof(bad_texts) / sizeof(bad_texts[0]); i++) {
        if (exposition_error(bad_texts[i]) == NULL)
            fail_msg("checker accepted case %zu:\n%s", i, bad_texts[i]);
    }
    if (exposition_error(good) != NULL)
        fail_msg("checker rejected valid text: %s", parse_error);
    assert_true(find_sample(good, "x_count", &s));
    assert_string_equal(s.label_values[0], "q\"\\\n");
}

static void invalid_utf8_label_refused(void **state)
{
    (void)state;
    assert_null(sl_metrics_counter(
        "sluice_test_total", "help",
        (const char *[]){"sensor", "sensor-\xed\xa0\x80", NULL}));
    assert_non_null(sl_metrics_counter(
        "sluice_test_total", "help",
        (const char *[]){"sensor", "capteur-\xc3\xa9-01", NULL}));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(render_exact_text, reset_registry),
        cmocka_unit_test_teardown(render_empty_registry, reset_registry),
        cmocka_unit_test_teardown(label_values_escaped, reset_registry),
        cmocka_unit_test_teardown(invalid_utf8_label_refused, reset_registry),
        cmocka_unit_test_teardown(label_values_escaped_in_every_kind,
                                  reset_registry),
        cmocka_unit_test_teardown(help_text_escaped, reset_registry),
        cmocka_unit_test_teardown(gauge_value_formats, reset_registry),
        cmocka_unit_test_teardown(histogram_special_observations,
                                  reset_registry),
        cmocka_unit_test_teardown(registration_rules, reset_registry),
        cmocka_unit_test_teardown(concurrent_updates_sum_exactly,
                                  reset_registry),
        cmocka_unit_test(exposition_checker_rejects),
    };

    return cmocka_run_group_tests(tests, reset_registry, reset_registry);
}
