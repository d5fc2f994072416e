/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Isolation Forest (Liu, Ting and Zhou, "Isolation Forest", ICDM 2008):
 * training, scoring, and a versioned, checksummed file format.
 *
 * Conventions follow scikit-learn's IsolationForest: each tree is grown on
 * psi = min(max_samples, n) rows drawn without replacement, to the height
 * limit ceil(log2(psi)). A point's path length is the depth of the leaf it
 * reaches plus c(size of that leaf), where c(n) = 2 H(n-1) - 2 (n-1) / n,
 * H(i) = ln(i) + 0.5772156649, c(2) = 1 and c(1) = c(0) = 0. The score is
 * the one of scikit-learn's score_samples, -2^(-E[h(x)] / c(psi)), in
 * [-1, 0): LOWER means MORE anomalous. A point is an anomaly when its score
 * is below the model's offset, which is -0.5 by default (the paper's 0.5
 * threshold, scikit-learn's contamination="auto"), or the contamination
 * quantile of the training scores.
 *
 * The model standardises each feature with the mean and standard deviation
 * of its training data and keeps both, so callers always pass raw feature
 * vectors. Nodes of all trees live in one flat array (split value, feature
 * index, child index); a reading's scoring touches only those nodes.
 *
 * Degenerate input:
 * - Training rows containing a NaN or infinite feature are dropped; the
 *   remaining rows are used. Training fails (NULL) when none remain.
 * - A node whose rows share one value in every feature becomes a leaf; a
 *   split is drawn only from a feature whose values differ in that node,
 *   and never from an empty interval. A constant feature is never split on.
 * - At scoring, a NaN feature is replaced by its training mean; infinite
 *   values follow the outermost branch. Scores are always finite.
 *
 * Ownership and threads: a model is immutable once sl_iforest_train() or
 * sl_iforest_load() returned it. Any number of threads may score one model
 * concurrently without locks. Only sl_iforest_destroy() needs exclusive
 * access: the caller must make sure no thread still scores the model.
 *
 * Contract owner: the detect module (iforest.c). This header is stable;
 * the stage (detector.c) builds on it.
 */
#ifndef SLUICE_DETECT_IFOREST_H
#define SLUICE_DETECT_IFOREST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sl_iforest sl_iforest_t;

#define SL_IFOREST_MAX_FEATURES 32     /* columns of a feature vector */
#define SL_IFOREST_MAX_TREES 1024      /* upper bound of tree_count */
#define SL_IFOREST_MAX_SAMPLES 4096    /* upper bound of max_samples */
#define SL_IFOREST_DEFAULT_TREES 100   /* scikit-learn's n_estimators */
#define SL_IFOREST_DEFAULT_SAMPLES 256 /* scikit-learn's max_samples */
#define SL_IFOREST_AUTO_OFFSET (-0.5)  /* offset for contamination "auto" */

/* Training parameters. Initialise with sl_iforest_params_default(). */
typedef struct sl_iforest_params {
    uint32_t tree_count;  /* 1..SL_IFOREST_MAX_TREES */
    uint32_t max_samples; /* psi = min(max_samples, rows); 2..MAX_SAMPLES */
    double contamination; /* 0 = "auto" (offset -0.5), else in (0, 0.5] */
    uint64_t seed;        /* same seed and rows give the same model */
} sl_iforest_params_t;

/** Fills *params with 100 trees, 256 samples, contamination "auto" and
 * seed 42. */
void sl_iforest_params_default(sl_iforest_params_t *params);

/**
 * Trains a forest on row_count rows of feature_count doubles each, stored
 * row after row in rows. The rows are only read during the call.
 *
 * Rows with a non-finite value are dropped (see the file comment).
 * Returns the model, or NULL with a reason in err (err may be NULL) when
 * the parameters are invalid, no finite row remains, or memory runs out.
 * Thread-safe: touches only its arguments, so it may run on any thread.
 */
sl_iforest_t *sl_iforest_train(const double *rows, size_t row_count,
                               size_t feature_count,
                               const sl_iforest_params_t *params, char *err,
                               size_t err_size);

/** Frees a model; NULL is a no-op. No thread may still score it. */
void sl_iforest_destroy(sl_iforest_t *forest);

/**
 * Returns the anomaly score of one raw feature vector of
 * sl_iforest_feature_count() values, in [-1, 0); lower = more anomalous.
 * Same as scikit-learn's score_samples. Always finite.
 */
double sl_iforest_score(const sl_iforest_t *forest, const double *features);

/** Returns the mean path length E[h(x)] over the trees, c(leaf size)
 * included. */
double sl_iforest_path_length(const sl_iforest_t *forest,
                              const double *features);

/** Returns true when sl_iforest_score() < sl_iforest_offset(). */
bool sl_iforest_is_anomaly(const sl_iforest_t *forest, const double *features);

/** Returns the decision offset: -0.5, or the contamination quantile of the
 * training scores. */
double sl_iforest_offset(const sl_iforest_t *forest);

size_t sl_iforest_feature_count(const sl_iforest_t *forest);
size_t sl_iforest_tree_count(const sl_iforest_t *forest);

/** Returns psi, the number of rows each tree was grown on. */
size_t sl_iforest_sample_size(const sl_iforest_t *forest);

/** Returns the number of finite rows the model was trained on. */
size_t sl_iforest_row_count(const sl_iforest_t *forest);

/** Returns c(n), the mean path length of an unsuccessful search in a
 * binary search tree of n keys: 0 for n <= 1, 1 for n == 2. */
double sl_iforest_average_path_length(double n);

/**
 * Writes the model to path atomically: to a temporary file in the same
 * directory, fsync(2), rename(2), then fsync of the directory. The file is
 * little-endian with a magic, a format version and an FNV-1a 64 checksum
 * over the body. Returns SL_OK, SL_EINVAL for a NULL argument, or SL_EIO
 * with a reason naming the file in err (err may be NULL). The model may be
 * scored concurrently while it is saved.
 */
int sl_iforest_save(const sl_iforest_t *forest, const char *path, char *err,
                    size_t err_size);

/**
 * Reads a model written by sl_iforest_save(). Returns the model, or NULL
 * with a reason naming the file in err (err may be NULL) when the file
 * cannot be read, is truncated or longer than its header states, has a bad
 * magic, an unknown version or a bad checksum, or contains counts or indexes
 * out of range. Counts from the file are bounds-checked before use.
 */
sl_iforest_t *sl_iforest_load(const char *path, char *err, size_t err_size);

#endif
