/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-sensor rolling features (contract in features.h). Every update is
 * O(1): the short window keeps running sums over a ring buffer, and the
 * long baseline is an exponentially weighted mean and variance.
 */
#include "detect/features.h"

#include <math.h>
#include <string.h>

#include "util/err.h"

/* Default feature set and windows, chosen on the NAB benchmark
 * (docs/DETECTOR.md).
 * XXX: `value` and `long_dev` keep the sensor's level and scale. NAB runs
 * one sensor per model, so it could not measure a type whose sensors sit
 * at different levels; there a sensor with an unusual but normal level may
 * score as anomalous. Dropping `value` from the mask is the fallback. */
#define DEFAULT_WINDOW 64
#define DEFAULT_LONG_SPAN 288
#define DEFAULT_MASK                                                           \
    ((1u << SL_FEAT_VALUE) | (1u << SL_FEAT_DEVIATION) | (1u << SL_FEAT_STD) | \
     (1u << SL_FEAT_BATTERY) | (1u << SL_FEAT_SIGNAL) |                        \
     (1u << SL_FEAT_STD_RATIO) | (1u << SL_FEAT_LONG_DEV))

/* |long z| is capped, so a constant history followed by a step gives a
 * large but finite feature. */
#define LONG_Z_CAP 1e3

static const char *const feature_names[SL_FEAT_COUNT] = {
    [SL_FEAT_VALUE] = "value",       [SL_FEAT_DEVIATION] = "deviation",
    [SL_FEAT_STD] = "std",           [SL_FEAT_RATE] = "rate",
    [SL_FEAT_BATTERY] = "battery",   [SL_FEAT_SIGNAL] = "signal",
    [SL_FEAT_LONG_Z] = "long_z",     [SL_FEAT_STD_RATIO] = "std_ratio",
    [SL_FEAT_LONG_DEV] = "long_dev",
};

void sl_features_config_default(sl_features_config_t *cfg)
{
    cfg->window = DEFAULT_WINDOW;
    cfg->long_span = DEFAULT_LONG_SPAN;
    cfg->mask = DEFAULT_MASK;
}

int sl_features_config_check(const sl_features_config_t *cfg)
{
    if (cfg == NULL || cfg->window < 1 ||
        cfg->window > SL_FEATURES_WINDOW_MAX || cfg->long_span < 1 ||
        cfg->mask == 0 || (cfg->mask >> SL_FEAT_COUNT) != 0) {
        return SL_EINVAL;
    }
    return SL_OK;
}

size_t sl_features_count(const sl_features_config_t *cfg)
{
    return (size_t)__builtin_popcount(cfg->mask);
}

const char *sl_feature_name(sl_feature_t feature)
{
    if ((unsigned)feature >= SL_FEAT_COUNT) {
        return "unknown";
    }
    return feature_names[feature];
}

int sl_features_init(sl_features_t *st, const sl_features_config_t *cfg)
{
    if (st == NULL || sl_features_config_check(cfg) != SL_OK) {
        return SL_EINVAL;
    }
    memset(st, 0, sizeof(*st));
    st->cfg = *cfg;
    return SL_OK;
}

/* Recomputes the sums from the ring around a fresh anchor, so rounding
 * errors of the running updates cannot accumulate. */
static void resum(sl_features_t *st)
{
    double sum = 0.0;
    double sq = 0.0;

    st->anchor = st->ring[(st->head + SL_FEATURES_WINDOW_MAX - 1) %
                          SL_FEATURES_WINDOW_MAX];
    for (uint32_t i = 0; i < st->fill; i++) {
        uint32_t slot = (st->head + SL_FEATURES_WINDOW_MAX - 1 - i) %
                        SL_FEATURES_WINDOW_MAX;
        double dev = st->ring[slot] - st->anchor;

        sum += dev;
        sq += dev * dev;
    }
    st->sum = sum;
    st->sum_sq = sq;
    st->since_resum = 0;
}

/* Adds value to the short window, dropping the oldest once it is full. */
static void push_short(sl_features_t *st, double value)
{
    uint32_t window = st->cfg.window;

    if (st->fill == window) {
        uint32_t oldest = (st->head + SL_FEATURES_WINDOW_MAX - window) %
                          SL_FEATURES_WINDOW_MAX;
        double dev = st->ring[oldest] - st->anchor;

        st->sum -= dev;
        st->sum_sq -= dev * dev;
        st->fill--;
    }
    st->ring[st->head] = value;
    st->head = (st->head + 1) % SL_FEATURES_WINDOW_MAX;
    st->fill++;
    if (st->fill == 1 || ++st->since_resum >= window) {
        resum(st);
        return;
    }

    double dev = value - st->anchor;

    st->sum += dev;
    st->sum_sq += dev * dev;
}

static void short_stats(const sl_features_t *st, double *mean, double *std)
{
    double n = (double)st->fill;
    double m = st->sum / n;
    double var = st->sum_sq / n - m * m;

    *mean = st->anchor + m;
    *std = var > 0.0 ? sqrt(var) : 0.0;
}

/* Returns a spread that is never zero, for dividing by. */
static double spread_floor(double std, double level)
{
    double floor = 1e-9 * (fabs(level) > 1.0 ? fabs(level) : 1.0);

    return std > floor ? std : floor;
}

/* Updates the exponentially weighted mean and variance (West's
 * incremental form). */
static void push_long(sl_features_t *st, double value)
{
    double alpha = 2.0 / ((double)st->cfg.long_span + 1.0);
    double diff;
    double incr;

    if (st->seen == 0) {
        st->long_mean = value;
        st->long_var = 0.0;
        return;
    }
    diff = value - st->long_mean;
    incr = alpha * diff;
    st->long_mean += incr;
    st->long_var = (1.0 - alpha) * (st->long_var + diff * incr);
}

static double rate_of(const sl_features_t *st, const sl_reading_t *rec)
{
    if (st->seen == 0 || rec->timestamp_ms <= st->prev_ts_ms) {
        return 0.0;
    }
    return (rec->value - st->prev_value) /
           ((double)(rec->timestamp_ms - st->prev_ts_ms) / 1000.0);
}

static double clamp_abs(double x, double cap)
{
    if (x > cap) {
        return cap;
    }
    return x < -cap ? -cap : x;
}

size_t sl_features_update(sl_features_t *st, const sl_reading_t *rec,
                          double *out)
{
    double all[SL_FEAT_COUNT];
    double value = rec->value;
    double mean = NAN;
    double std = 0.0;
    double long_std = sqrt(st->long_var);
    size_t n = 0;

    all[SL_FEAT_VALUE] = value;
    all[SL_FEAT_BATTERY] = rec->battery_level;
    all[SL_FEAT_SIGNAL] = rec->signal_strength;
    if (isfinite(value)) {
        /* The long baseline excludes the current value, so a jump is
         * measured against what came before it. */
        double long_spread = spread_floor(long_std, st->long_mean);

        all[SL_FEAT_LONG_Z] =
            st->seen == 0
                ? 0.0
                : clamp_abs((value - st->long_mean) / long_spread, LONG_Z_CAP);
        all[SL_FEAT_LONG_DEV] = st->seen == 0 ? 0.0 : value - st->long_mean;
        all[SL_FEAT_RATE] = rate_of(st, rec);
        push_short(st, value);
        short_stats(st, &mean, &std);
        all[SL_FEAT_DEVIATION] = value - mean;
        all[SL_FEAT_STD] = std;
        all[SL_FEAT_STD_RATIO] =
            st->seen == 0 ? 1.0 : clamp_abs(std / long_spread, LONG_Z_CAP);
        push_long(st, value);
        st->prev_value = value;
        st->prev_ts_ms = rec->timestamp_ms;
        st->seen++;
    } else {
        if (st->fill > 0) {
            short_stats(st, &mean, &std);
        }
        all[SL_FEAT_LONG_Z] = NAN;
        all[SL_FEAT_LONG_DEV] = NAN;
        all[SL_FEAT_RATE] = NAN;
        all[SL_FEAT_DEVIATION] = NAN;
        all[SL_FEAT_STD] = std;
        all[SL_FEAT_STD_RATIO] = NAN;
    }

    for (int f = 0; f < SL_FEAT_COUNT; f++) {
        if (st->cfg.mask & (1u << f)) {
            out[n++] = all[f];
        }
    }
    return n;
}
