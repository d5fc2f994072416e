/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tumbling windows per sensor (see window.h for the closing and
 * recomputation rules). Sensors live in a chained hash table keyed by
 * sensor_id; each keeps its open windows in a small array sorted by start,
 * which stays short because only windows within the allowed lateness of
 * the sensor's newest reading are open.
 */
#include "pipeline/window.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/hash.h"
#include "util/timeutil.h"

typedef struct open_window {
    int64_t start_ms;
    int64_t count;
    double mean; /* Welford's running mean and sum of squared deviations */
    double m2;
    double min;
    double max;
    bool recompute; /* memory may miss rows stored before; ask the store */
} open_window_t;

typedef struct sensor_state {
    struct sensor_state *next; /* hash chain */
    char sensor_id[SL_ID_MAX + 1];
    sl_sensor_type_t sensor_type;
    int64_t max_ts_ms;
    /* Window of the first reading since start or since a resync: it and
     * earlier windows may hold rows this process did not see. */
    int64_t first_window_ms;
    bool resync;       /* take first_window_ms from the next reading */
    int32_t partition; /* where its last reading came from; -1: unknown */
    int64_t last_seen_mono_ms;
    open_window_t *windows;
    size_t window_count;
    size_t window_capacity;
} sensor_state_t;

struct sl_windows {
    int64_t window_ms;
    int64_t lateness_ms;
    sensor_state_t **buckets;
    size_t bucket_count; /* a power of two */
    size_t sensor_count;
    sl_aggregate_t *aggregates;
    size_t aggregate_count;
    size_t aggregate_capacity;
    sl_window_key_t *recompute;
    size_t recompute_count;
    size_t recompute_capacity;
};

sl_windows_t *sl_windows_create(int64_t window_ms, int64_t lateness_ms)
{
    sl_windows_t *win;

    if (window_ms <= 0 || lateness_ms < 0)
        return NULL;
    win = calloc(1, sizeof(*win));
    if (win == NULL)
        return NULL;
    win->window_ms = window_ms;
    win->lateness_ms = lateness_ms;
    win->bucket_count = 1024;
    win->buckets = calloc(win->bucket_count, sizeof(*win->buckets));
    if (win->buckets == NULL) {
        free(win);
        return NULL;
    }
    return win;
}

static void sensor_free(sensor_state_t *s)
{
    free(s->windows);
    free(s);
}

void sl_windows_destroy(sl_windows_t *win)
{
    if (win == NULL)
        return;
    for (size_t i = 0; i < win->bucket_count; i++) {
        sensor_state_t *s = win->buckets[i];
        while (s != NULL) {
            sensor_state_t *next = s->next;
            sensor_free(s);
            s = next;
        }
    }
    free(win->buckets);
    free(win->aggregates);
    free(win->recompute);
    free(win);
}

/* Floor division, so windows of negative timestamps are aligned too. */
static int64_t window_start(const sl_windows_t *win, int64_t ts_ms)
{
    int64_t q = ts_ms / win->window_ms;

    if (ts_ms % win->window_ms < 0)
        q--;
    return q * win->window_ms;
}

static int grow(void **array, size_t *capacity, size_t elem_size)
{
    size_t n = *capacity == 0 ? 16 : *capacity * 2;
    void *p = realloc(*array, n * elem_size);

    if (p == NULL)
        return SL_ENOMEM;
    *array = p;
    *capacity = n;
    return SL_OK;
}

static int rehash(sl_windows_t *win)
{
    size_t n = win->bucket_count * 2;
    sensor_state_t **buckets = calloc(n, sizeof(*buckets));

    if (buckets == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < win->bucket_count; i++) {
        sensor_state_t *s = win->buckets[i];
        while (s != NULL) {
            sensor_state_t *next = s->next;
            size_t b =
                sl_hash_fnv1a(s->sensor_id, strlen(s->sensor_id)) & (n - 1);
            s->next = buckets[b];
            buckets[b] = s;
            s = next;
        }
    }
    free(win->buckets);
    win->buckets = buckets;
    win->bucket_count = n;
    return SL_OK;
}

static sensor_state_t *sensor_get(sl_windows_t *win, const sl_reading_t *rec)
{
    size_t len = strlen(rec->sensor_id);
    size_t b = sl_hash_fnv1a(rec->sensor_id, len) & (win->bucket_count - 1);
    sensor_state_t *s;

    for (s = win->buckets[b]; s != NULL; s = s->next) {
        if (strcmp(s->sensor_id, rec->sensor_id) == 0)
            return s;
    }
    if (win->sensor_count >= win->bucket_count && rehash(win) == SL_OK)
        b = sl_hash_fnv1a(rec->sensor_id, len) & (win->bucket_count - 1);
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    memcpy(s->sensor_id, rec->sensor_id, len + 1);
    s->sensor_type = rec->sensor_type;
    s->max_ts_ms = rec->timestamp_ms;
    s->first_window_ms = window_start(win, rec->timestamp_ms);
    s->partition = -1;
    s->next = win->buckets[b];
    win->buckets[b] = s;
    win->sensor_count++;
    return s;
}

static int request_recompute(sl_windows_t *win, const sensor_state_t *s,
                             int64_t start_ms)
{
    sl_window_key_t *key;

    for (size_t i = 0; i < win->recompute_count; i++) {
        key = &win->recompute[i];
        if (key->window_start_ms == start_ms &&
            strcmp(key->sensor_id, s->sensor_id) == 0)
            return SL_OK;
    }
    if (win->recompute_count == win->recompute_capacity &&
        grow((void **)&win->recompute, &win->recompute_capacity,
             sizeof(*win->recompute)) != SL_OK)
        return SL_ENOMEM;
    key = &win->recompute[win->recompute_count++];
    memcpy(key->sensor_id, s->sensor_id, sizeof(key->sensor_id));
    key->sensor_type = s->sensor_type;
    key->window_start_ms = start_ms;
    key->window_end_ms = start_ms + win->window_ms;
    return SL_OK;
}

/* Emits the window at index i of s and removes it. */
static int close_window(sl_windows_t *win, sensor_state_t *s, size_t i)
{
    open_window_t *w = &s->windows[i];
    int rc = SL_OK;

    if (w->recompute) {
        rc = request_recompute(win, s, w->start_ms);
    } else {
        if (win->aggregate_count == win->aggregate_capacity &&
            grow((void **)&win->aggregates, &win->aggregate_capacity,
                 sizeof(*win->aggregates)) != SL_OK)
            return SL_ENOMEM;
        sl_aggregate_t *agg = &win->aggregates[win->aggregate_count++];
        memcpy(agg->sensor_id, s->sensor_id, sizeof(agg->sensor_id));
        agg->sensor_type = s->sensor_type;
        agg->window_start_ms = w->start_ms;
        agg->window_end_ms = w->start_ms + win->window_ms;
        agg->count = w->count;
        agg->min = w->min;
        agg->max = w->max;
        agg->avg = w->mean;
        agg->stddev = sqrt(w->m2 / (double)w->count);
    }
    if (rc != SL_OK)
        return rc;
    memmove(&s->windows[i], &s->windows[i + 1],
            (s->window_count - i - 1) * sizeof(*w));
    s->window_count--;
    return SL_OK;
}

static open_window_t *window_get(sensor_state_t *s, int64_t start_ms)
{
    size_t i = 0;

    while (i < s->window_count && s->windows[i].start_ms < start_ms)
        i++;
    if (i < s->window_count && s->windows[i].start_ms == start_ms)
        return &s->windows[i];
    if (s->window_count == s->window_capacity &&
        grow((void **)&s->windows, &s->window_capacity, sizeof(*s->windows)) !=
            SL_OK)
        return NULL;
    memmove(&s->windows[i + 1], &s->windows[i],
            (s->window_count - i) * sizeof(*s->windows));
    s->window_count++;
    memset(&s->windows[i], 0, sizeof(s->windows[i]));
    s->windows[i].start_ms = start_ms;
    s->windows[i].recompute = start_ms <= s->first_window_ms;
    return &s->windows[i];
}

/* Returns true when the window end and watermark arithmetic of ts_ms
 * stays inside int64. */
static bool time_in_range(const sl_windows_t *win, int64_t ts_ms)
{
    return ts_ms <= INT64_MAX - win->window_ms &&
           ts_ms >= INT64_MIN + win->lateness_ms + win->window_ms;
}

int sl_windows_add(sl_windows_t *win, const sl_reading_t *rec,
                   bool already_stored)
{
    return sl_windows_add_from(win, rec, already_stored, -1);
}

int sl_windows_add_from(sl_windows_t *win, const sl_reading_t *rec,
                        bool already_stored, int32_t partition)
{
    sensor_state_t *s;
    int64_t start, watermark;
    open_window_t *w;

    if (!time_in_range(win, rec->timestamp_ms))
        return SL_EINVAL;
    s = sensor_get(win, rec);
    if (s == NULL)
        return SL_ENOMEM;
    s->last_seen_mono_ms = sl_time_mono_ms();
    s->partition = partition;
    start = window_start(win, rec->timestamp_ms);
    if (s->resync) {
        s->resync = false;
        if (start > s->first_window_ms)
            s->first_window_ms = start;
    }
    watermark = s->max_ts_ms - win->lateness_ms;

    if (start + win->window_ms <= watermark) {
        int rc = request_recompute(win, s, start);
        return rc != SL_OK ? rc : 1;
    }

    w = window_get(s, start);
    if (w == NULL)
        return SL_ENOMEM;
    if (already_stored) {
        w->recompute = true;
    } else {
        double delta = rec->value - w->mean;
        w->count++;
        w->mean += delta / (double)w->count;
        w->m2 += delta * (rec->value - w->mean);
        if (w->count == 1 || rec->value < w->min)
            w->min = rec->value;
        if (w->count == 1 || rec->value > w->max)
            w->max = rec->value;
    }

    if (rec->timestamp_ms > s->max_ts_ms)
        s->max_ts_ms = rec->timestamp_ms;
    watermark = s->max_ts_ms - win->lateness_ms;
    while (s->window_count > 0 &&
           s->windows[0].start_ms + win->window_ms <= watermark) {
        if (close_window(win, s, 0) != SL_OK)
            return SL_ENOMEM;
    }
    return 0;
}

size_t sl_windows_resync_partition(sl_windows_t *win, int32_t partition)
{
    size_t sensors = 0;

    for (size_t b = 0; b < win->bucket_count; b++) {
        for (sensor_state_t *s = win->buckets[b]; s != NULL; s = s->next) {
            if (s->partition != partition)
                continue;
            for (size_t i = 0; i < s->window_count; i++)
                s->windows[i].recompute = true;
            s->resync = true;
            sensors++;
        }
    }
    return sensors;
}

void sl_windows_sweep(sl_windows_t *win, int64_t now_mono_ms, int64_t idle_ms)
{
    for (size_t b = 0; b < win->bucket_count; b++) {
        sensor_state_t **link = &win->buckets[b];
        while (*link != NULL) {
            sensor_state_t *s = *link;
            bool idle =
                idle_ms < 0 || now_mono_ms - s->last_seen_mono_ms >= idle_ms;
            /* A sensor that went quiet may have moved to another member of
             * the group, which stores the rest of these windows: only the
             * store has them whole. At shutdown (idle_ms < 0) this process
             * still owns its partitions. */
            for (size_t i = 0; idle && idle_ms >= 0 && i < s->window_count; i++)
                s->windows[i].recompute = true;
            while (idle && s->window_count > 0) {
                if (close_window(win, s, 0) != SL_OK)
                    return; /* retried at the next sweep */
            }
            if (idle && s->window_count == 0 && idle_ms >= 0) {
                /* A sensor that comes back starts fresh, its first window
                 * then recomputed from the store, which stays exact. */
                *link = s->next;
                sensor_free(s);
                win->sensor_count--;
                continue;
            }
            link = &s->next;
        }
    }
}

void sl_windows_take(sl_windows_t *win, sl_window_output_t *out)
{
    out->aggregates = win->aggregates;
    out->aggregate_count = win->aggregate_count;
    out->recompute = win->recompute;
    out->recompute_count = win->recompute_count;
    win->aggregate_count = 0;
    win->recompute_count = 0;
}

size_t sl_windows_sensor_count(const sl_windows_t *win)
{
    return win->sensor_count;
}
