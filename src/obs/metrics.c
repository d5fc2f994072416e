/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The process-wide metrics registry and its Prometheus text exposition
 * (format 0.0.4). Every role registers its series at start-up and updates
 * them through handles, and the API's /metrics route calls
 * sl_metrics_render().
 *
 * Updates use relaxed C11 atomics and take no lock. A gauge and a histogram
 * sum store the bits of a double in an atomic uint64, changed by
 * compare-and-swap. One mutex guards the family and series lists, which only
 * registration, rendering and reset walk. Families and series keep their
 * insertion order, so the output is stable from scrape to scrape.
 */
#include "obs/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/utf8.h"

#define MAX_BOUNDS 32 /* histogram bounds per family, +Inf excluded */

typedef enum metric_kind {
    KIND_COUNTER,
    KIND_GAUGE,
    KIND_HISTOGRAM,
} metric_kind_t;

struct sl_counter {
    _Atomic uint64_t value;
};

struct sl_gauge {
    _Atomic uint64_t bits; /* of a double */
};

struct sl_histogram {
    const double *bounds; /* the family's, ascending */
    size_t bound_count;
    _Atomic uint64_t sum_bits; /* of a double */
    /* Per-bucket counts, not cumulative. [bound_count] is the +Inf bucket.
     * Rendering sums them, so _count always equals the +Inf bucket. */
    _Atomic uint64_t buckets[MAX_BOUNDS + 1];
};

typedef struct series {
    struct series *next;
    size_t label_count;
    char *label_names[SL_METRICS_MAX_LABELS];
    char *label_values[SL_METRICS_MAX_LABELS];
    union {
        struct sl_counter counter;
        struct sl_gauge gauge;
        struct sl_histogram hist;
    } m;
} series_t;

typedef struct family {
    struct family *next;
    char *name;
    char *help;
    metric_kind_t kind;
    size_t bound_count;
    double bounds[MAX_BOUNDS];
    series_t *series_head;
    series_t *series_tail;
} family_t;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static family_t *families_head;
static family_t *families_tail;

/* ---------------------------------------------------------------------------
 * Hot path
 */

static uint64_t double_bits(double v)
{
    uint64_t bits;

    memcpy(&bits, &v, sizeof(bits));
    return bits;
}

static double bits_double(uint64_t bits)
{
    double v;

    memcpy(&v, &bits, sizeof(v));
    return v;
}

/* Adds delta to the double whose bits are stored in *bits. */
static void atomic_add_double(_Atomic uint64_t *bits, double delta)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(
        bits, &old, double_bits(bits_double(old) + delta), memory_order_relaxed,
        memory_order_relaxed))
        ;
}

void sl_counter_add(sl_counter_t *counter, uint64_t n)
{
    if (counter != NULL)
        atomic_fetch_add_explicit(&counter->value, n, memory_order_relaxed);
}

uint64_t sl_counter_value(const sl_counter_t *counter)
{
    if (counter == NULL)
        return 0;
    return atomic_load_explicit(&counter->value, memory_order_relaxed);
}

void sl_gauge_set(sl_gauge_t *gauge, double value)
{
    if (gauge != NULL)
        atomic_store_explicit(&gauge->bits, double_bits(value),
                              memory_order_relaxed);
}

void sl_gauge_add(sl_gauge_t *gauge, double delta)
{
    if (gauge != NULL)
        atomic_add_double(&gauge->bits, delta);
}

double sl_gauge_value(const sl_gauge_t *gauge)
{
    if (gauge == NULL)
        return 0.0;
    return bits_double(
        atomic_load_explicit(&gauge->bits, memory_order_relaxed));
}

void sl_histogram_observe(sl_histogram_t *hist, double value)
{
    size_t i = 0;

    if (hist == NULL)
        return;

    /* A bucket counts observations <= its bound. NaN compares false with
     * every bound and lands in +Inf, as in the Prometheus Go client. */
    while (i < hist->bound_count && !(value <= hist->bounds[i]))
        i++;
    atomic_fetch_add_explicit(&hist->buckets[i], 1, memory_order_relaxed);
    atomic_add_double(&hist->sum_bits, value);
}

/* ---------------------------------------------------------------------------
 * Registration
 */

/* Metric names match [a-zA-Z_:][a-zA-Z0-9_:]*; label names the same
 * without ':', and names starting with "__" are reserved for Prometheus. */
static bool valid_name(const char *s, bool is_label)
{
    if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
        return false;
    if (is_label && s[0] == '_' && s[1] == '_')
        return false;
    for (; *s != '\0'; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_' || (!is_label && c == ':');
        if (!ok)
            return false;
    }
    return true;
}

/* Counts the label pairs, or returns -1 when the list is malformed: an odd
 * count, too many pairs, an invalid or repeated name, or "le" on a
 * histogram, where the exposition reserves it for the bucket bound. */
static int count_labels(const char *const *labels, metric_kind_t kind)
{
    int n = 0;

    if (labels == NULL)
        return 0;
    for (; labels[2 * n] != NULL; n++) {
        const char *name = labels[2 * n];

        if (n == SL_METRICS_MAX_LABELS || labels[2 * n + 1] == NULL)
            return -1;
        if (!valid_name(name, true))
            return -1;
        /* The exposition format is UTF-8; one bad value would make a
         * strict scraper reject the whole page. */
        if (!sl_utf8_valid(labels[2 * n + 1], strlen(labels[2 * n + 1])))
            return -1;
        if (kind == KIND_HISTOGRAM && strcmp(name, "le") == 0)
            return -1;
        for (int k = 0; k < n; k++) {
            if (strcmp(labels[2 * k], name) == 0)
                return -1;
        }
    }
    return n;
}

static bool valid_bounds(const double *bounds, size_t count)
{
    if (count > MAX_BOUNDS || (count > 0 && bounds == NULL))
        return false;
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(bounds[i]))
            return false;
        if (i > 0 && !(bounds[i] > bounds[i - 1]))
            return false;
    }
    return true;
}

static void series_free(series_t *s)
{
    for (size_t i = 0; i < s->label_count; i++) {
        free(s->label_names[i]);
        free(s->label_values[i]);
    }
    free(s);
}

static void family_free(family_t *f)
{
    series_t *s = f->series_head;

    while (s != NULL) {
        series_t *next = s->next;
        series_free(s);
        s = next;
    }
    free(f->name);
    free(f->help);
    free(f);
}

static family_t *family_find(const char *name)
{
    for (family_t *f = families_head; f != NULL; f = f->next) {
        if (strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

static family_t *family_create(const char *name, const char *help,
                               metric_kind_t kind, const double *bounds,
                               size_t bound_count)
{
    family_t *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return NULL;
    f->name = strdup(name);
    f->help = strdup(help != NULL ? help : "");
    if (f->name == NULL || f->help == NULL) {
        family_free(f);
        return NULL;
    }
    f->kind = kind;
    f->bound_count = bound_count;
    if (bound_count > 0)
        memcpy(f->bounds, bounds, bound_count * sizeof(bounds[0]));
    return f;
}

static bool series_matches(const series_t *s, const char *const *labels,
                           size_t count)
{
    if (s->label_count != count)
        return false;
    for (size_t i = 0; i < count; i++) {
        if (strcmp(s->label_names[i], labels[2 * i]) != 0 ||
            strcmp(s->label_values[i], labels[2 * i + 1]) != 0)
            return false;
    }
    return true;
}

static series_t *series_create(const family_t *f, const char *const *labels,
                               size_t count)
{
    series_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        s->label_names[i] = strdup(labels[2 * i]);
        s->label_values[i] = strdup(labels[2 * i + 1]);
        s->label_count = i + 1;
        if (s->label_names[i] == NULL || s->label_values[i] == NULL) {
            series_free(s);
            return NULL;
        }
    }
    if (f->kind == KIND_HISTOGRAM) {
        s->m.hist.bounds = f->bounds;
        s->m.hist.bound_count = f->bound_count;
    }
    return s;
}

/* Finds or creates the family and the series. The lists only grow until
 * sl_metrics_reset(), so returned pointers stay valid after unlocking. */
static series_t *series_get(const char *name, const char *help,
                            metric_kind_t kind, const double *bounds,
                            size_t bound_count, const char *const *labels)
{
    int count = count_labels(labels, kind);
    series_t *s = NULL;
    family_t *f;

    if (!valid_name(name, false) || count < 0)
        return NULL;

    pthread_mutex_lock(&registry_lock);
    f = family_find(name);
    if (f == NULL) {
        f = family_create(name, help, kind, bounds, bound_count);
        if (f == NULL)
            goto out;
        if (families_tail != NULL)
            families_tail->next = f;
        else
            families_head = f;
        families_tail = f;
    }
    if (f->kind != kind || f->bound_count != bound_count ||
        (bound_count > 0 &&
         memcmp(f->bounds, bounds, bound_count * sizeof(bounds[0])) != 0))
        goto out;

    for (s = f->series_head; s != NULL; s = s->next) {
        if (series_matches(s, labels, (size_t)count))
            goto out;
    }
    s = series_create(f, labels, (size_t)count);
    if (s == NULL)
        goto out;
    if (f->series_tail != NULL)
        f->series_tail->next = s;
    else
        f->series_head = s;
    f->series_tail = s;

out:
    pthread_mutex_unlock(&registry_lock);
    return s;
}

sl_counter_t *sl_metrics_counter(const char *name, const char *help,
                                 const char *const *labels)
{
    series_t *s = series_get(name, help, KIND_COUNTER, NULL, 0, labels);

    return s != NULL ? &s->m.counter : NULL;
}

sl_gauge_t *sl_metrics_gauge(const char *name, const char *help,
                             const char *const *labels)
{
    series_t *s = series_get(name, help, KIND_GAUGE, NULL, 0, labels);

    return s != NULL ? &s->m.gauge : NULL;
}

sl_histogram_t *sl_metrics_histogram(const char *name, const char *help,
                                     const double *bounds, size_t bound_count,
                                     const char *const *labels)
{
    series_t *s;

    if (!valid_bounds(bounds, bound_count))
        return NULL;
    s = series_get(name, help, KIND_HISTOGRAM, bounds, bound_count, labels);
    return s != NULL ? &s->m.hist : NULL;
}

void sl_metrics_reset(void)
{
    family_t *f;

    pthread_mutex_lock(&registry_lock);
    f = families_head;
    families_head = NULL;
    families_tail = NULL;
    pthread_mutex_unlock(&registry_lock);

    while (f != NULL) {
        family_t *next = f->next;
        family_free(f);
        f = next;
    }
}

/* ---------------------------------------------------------------------------
 * Text exposition
 */

typedef struct out_buf {
    char *data;
    size_t len;
    size_t cap;
    bool oom;
} out_buf_t;

/* Makes room for n more bytes plus a NUL. Sets oom on failure. */
static bool reserve(out_buf_t *b, size_t n)
{
    size_t want = b->len + n + 1;
    size_t cap = b->cap != 0 ? b->cap : 4096;
    char *data;

    if (b->oom)
        return false;
    if (want <= b->cap)
        return true;
    while (cap < want)
        cap *= 2;
    data = realloc(b->data, cap);
    if (data == NULL) {
        b->oom = true;
        return false;
    }
    b->data = data;
    b->cap = cap;
    return true;
}

static void put_bytes(out_buf_t *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void put(out_buf_t *b, const char *s)
{
    put_bytes(b, s, strlen(s));
}

/* Writes s with backslash and line feed escaped, and the double quote too
 * when in_quotes: the format's rules for label values and for help text. */
static void put_escaped(out_buf_t *b, const char *s, bool in_quotes)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            put_bytes(b, "\\\\", 2);
        else if (*s == '\n')
            put_bytes(b, "\\n", 2);
        else if (*s == '"' && in_quotes)
            put_bytes(b, "\\\"", 2);
        else
            put_bytes(b, s, 1);
    }
}

/* Formats v with the fewest digits that read back as v, in exponent form
 * when the decimal exponent is below -4 or at least 6. That is Go's
 * strconv.FormatFloat(v, 'g', -1, 64), so bounds read "0.005" and "1e+06".
 * Non-finite values become the format's tokens NaN, +Inf and -Inf. */
static void format_double(double v, char *out, size_t size)
{
    char digits[40];
    int prec, exp10;

    if (isnan(v)) {
        snprintf(out, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (prec = 1; prec < 17; prec++) {
        snprintf(digits, sizeof(digits), "%.*e", prec - 1, v);
        if (strtod(digits, NULL) == v)
            break;
    }
    snprintf(digits, sizeof(digits), "%.*e", prec - 1, v);
    exp10 = atoi(strchr(digits, 'e') + 1);
    if (exp10 < -4 || exp10 >= 6)
        snprintf(out, size, "%s", digits);
    else
        snprintf(out, size, "%.*f", prec - 1 - exp10 > 0 ? prec - 1 - exp10 : 0,
                 v);
}

static void put_double(out_buf_t *b, double v)
{
    char text[48];

    format_double(v, text, sizeof(text));
    put(b, text);
}

static void put_u64(out_buf_t *b, uint64_t v)
{
    char text[24];

    snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
    put(b, text);
}

/* Writes "{a="x",le="0.5"}", with le only when le is not NULL, or nothing
 * when there is no label at all. */
static void put_labels(out_buf_t *b, const series_t *s, const char *le)
{
    if (s->label_count == 0 && le == NULL)
        return;
    put(b, "{");
    for (size_t i = 0; i < s->label_count; i++) {
        if (i > 0)
            put(b, ",");
        put(b, s->label_names[i]);
        put(b, "=\"");
        put_escaped(b, s->label_values[i], true);
        put(b, "\"");
    }
    if (le != NULL) {
        if (s->label_count > 0)
            put(b, ",");
        put(b, "le=\"");
        put(b, le);
        put(b, "\"");
    }
    put(b, "}");
}

static void put_sample_start(out_buf_t *b, const char *name, const char *suffix,
                             const series_t *s, const char *le)
{
    put(b, name);
    put(b, suffix);
    put_labels(b, s, le);
    put(b, " ");
}

static void render_histogram(out_buf_t *b, const family_t *f, const series_t *s)
{
    const struct sl_histogram *h = &s->m.hist;
    uint64_t cumulative = 0;
    char le[48];

    for (size_t i = 0; i <= h->bound_count; i++) {
        cumulative +=
            atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->bound_count)
            format_double(h->bounds[i], le, sizeof(le));
        else
            snprintf(le, sizeof(le), "+Inf");
        put_sample_start(b, f->name, "_bucket", s, le);
        put_u64(b, cumulative);
        put(b, "\n");
    }
    put_sample_start(b, f->name, "_sum", s, NULL);
    put_double(b, bits_double(atomic_load_explicit(&h->sum_bits,
                                                   memory_order_relaxed)));
    put(b, "\n");
    put_sample_start(b, f->name, "_count", s, NULL);
    put_u64(b, cumulative);
    put(b, "\n");
}

static void render_family(out_buf_t *b, const family_t *f)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};

    if (f->help[0] != '\0') {
        put(b, "# HELP ");
        put(b, f->name);
        put(b, " ");
        put_escaped(b, f->help, false);
        put(b, "\n");
    }
    put(b, "# TYPE ");
    put(b, f->name);
    put(b, " ");
    put(b, type_names[f->kind]);
    put(b, "\n");

    for (const series_t *s = f->series_head; s != NULL; s = s->next) {
        if (f->kind == KIND_HISTOGRAM) {
            render_histogram(b, f, s);
            continue;
        }
        put_sample_start(b, f->name, "", s, NULL);
        if (f->kind == KIND_COUNTER)
            put_u64(b, sl_counter_value(&s->m.counter));
        else
            put_double(b, sl_gauge_value(&s->m.gauge));
        put(b, "\n");
    }
}

int sl_metrics_render(char **text, size_t *len)
{
    out_buf_t b = {0};

    reserve(&b, 0);
    pthread_mutex_lock(&registry_lock);
    for (const family_t *f = families_head; f != NULL; f = f->next)
        render_family(&b, f);
    pthread_mutex_unlock(&registry_lock);

    if (b.oom) {
        free(b.data);
        return SL_ENOMEM;
    }
    b.data[b.len] = '\0';
    *text = b.data;
    *len = b.len;
    return SL_OK;
}

void sl_metrics_build_info(const char *version)
{
    sl_gauge_set(sl_metrics_gauge("sluice_build_info",
                                  "1, labelled with the running version",
                                  (const char *[]){"version", version, NULL}),
                 1);
}

sl_histogram_t *sl_metrics_event_latency(const char *stage)
{
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                    0.5,   1,    2.5,   5,    10,  30,
                                    60,    300,  900,   3600};

    return sl_metrics_histogram(
        "sluice_event_latency_seconds",
        "Time from a record's event timestamp until the stage finished it",
        bounds, sizeof(bounds) / sizeof(bounds[0]),
        (const char *[]){"stage", stage, NULL});
}
