/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-sensor feature extraction for the anomaly detector. Each sensor keeps
 * a small rolling state (sl_features_t) fed with that sensor's readings in
 * order, and every reading yields one feature vector computed from the
 * sensor's own recent history only (causal: the vector of reading t uses
 * readings up to t and nothing later). Features relative to the sensor's
 * own level let one model per sensor TYPE serve sensors whose normal
 * levels differ.
 *
 * The candidate features are listed in sl_feature_t; a bit mask in
 * sl_features_config_t selects which of them form the vector, in enum
 * order. sl_features_config_default() holds the set chosen on the NAB
 * benchmark (docs/DETECTOR.md gives the table and the reasons).
 *
 * Ownership and threads: sl_features_t is a plain caller-owned struct
 * without heap memory (copy it, keep it in a table, free it with its
 * container). One state must not be updated by two threads at once.
 * Different states are independent.
 *
 * Contract owner: the detect module (features.c). This header is stable;
 * the stage (detector.c) builds on it.
 */
#ifndef SLUICE_DETECT_FEATURES_H
#define SLUICE_DETECT_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "model/record.h"

#define SL_FEATURES_WINDOW_MAX 64 /* max short window, in readings */
#define SL_FEATURES_MAX 16        /* max length of a feature vector */

/* Candidate features. Bit (1u << SL_FEAT_x) selects one in a mask. */
typedef enum sl_feature {
    SL_FEAT_VALUE = 0,     /* the reading's value */
    SL_FEAT_DEVIATION = 1, /* value - mean of the short window */
    SL_FEAT_STD = 2,       /* population std of the short window */
    SL_FEAT_RATE = 3,      /* (value - previous value) / seconds between */
    SL_FEAT_BATTERY = 4,   /* metadata battery_level, percent */
    SL_FEAT_SIGNAL = 5,    /* metadata signal_strength, dBm */
    SL_FEAT_LONG_Z = 6,    /* (value - long mean) / long std */
    SL_FEAT_STD_RATIO = 7, /* short std / long std */
    SL_FEAT_LONG_DEV = 8,  /* value - long mean */
    SL_FEAT_COUNT = 9,
} sl_feature_t;

/* Feature settings; one config serves every sensor of a type. */
typedef struct sl_features_config {
    uint32_t window;    /* short window in readings, 1..WINDOW_MAX */
    uint32_t long_span; /* span of the long exponential mean, readings >= 1 */
    uint32_t mask;      /* selected SL_FEAT_* bits, non-zero */
} sl_features_config_t;

/* Rolling state of one sensor. Treat the fields as private. */
typedef struct sl_features {
    sl_features_config_t cfg;
    double ring[SL_FEATURES_WINDOW_MAX]; /* last `window` values */
    double anchor;    /* sums below are of value - anchor, for precision */
    double sum;       /* sum over the ring */
    double sum_sq;    /* sum of squares over the ring */
    double long_mean; /* exponentially weighted mean */
    double long_var;  /* exponentially weighted variance */
    double prev_value;
    int64_t prev_ts_ms;
    uint64_t seen;        /* readings seen so far */
    uint32_t head;        /* next ring slot to write */
    uint32_t fill;        /* ring slots in use */
    uint32_t since_resum; /* updates since the sums were recomputed */
} sl_features_t;

/** Fills *cfg with the default feature set and windows. */
void sl_features_config_default(sl_features_config_t *cfg);

/** Returns SL_OK, or SL_EINVAL when a field is out of range. */
int sl_features_config_check(const sl_features_config_t *cfg);

/** Returns the number of features a config produces (bits in mask). */
size_t sl_features_count(const sl_features_config_t *cfg);

/** Returns a short name ("value", "deviation", ...) of a feature. */
const char *sl_feature_name(sl_feature_t feature);

/**
 * Starts the state of one sensor. cfg must pass sl_features_config_check()
 * and is copied. Returns SL_OK or SL_EINVAL.
 */
int sl_features_init(sl_features_t *st, const sl_features_config_t *cfg);

/**
 * Adds one reading of the sensor and writes its feature vector.
 * OUT: out, sl_features_count() doubles.
 *
 * Readings are expected in event-time order; a reading with an earlier or
 * equal timestamp gets a rate of 0. A non-finite value is not added to the
 * history and its vector contains NaN where the value enters, which
 * sl_iforest_score() handles (see iforest.h). Always returns the number of
 * values written.
 */
size_t sl_features_update(sl_features_t *st, const sl_reading_t *rec,
                          double *out);

#endif
