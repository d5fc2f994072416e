/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Isolation Forest training and scoring (contract in iforest.h).
 *
 * Layout: the nodes of all trees are one array of 8-byte nodes, each tree a
 * contiguous slice starting at tree_start[t]. The two children of a node
 * are adjacent, so a step is `i = left + (x[feature] >= split)` without a
 * branch. A leaf points at itself through a padding feature whose value is
 * -inf (so the comparison is always false) and keeps its path length,
 * depth + c(leaf size), in the split field. Scoring therefore walks every
 * tree for exactly depth_max steps, four trees at a time, which lets the
 * CPU overlap the four dependent load chains.
 *
 * Training data and splits are float, as in scikit-learn, which fits
 * trees on float32 copies of the data.
 */
#include "detect/iforest.h"
#include "detect/iforest_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

/* Euler-Mascheroni constant, for H(i) ~ ln(i) + gamma. */
#define EULER_GAMMA 0.5772156649

/* Standardised values are clamped so that a tiny spread cannot push a
 * float to infinity; the clamp keeps ordering for all realistic data. */
#define STD_CLAMP 1e30

void sl_iforest__set_error(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

void sl_iforest_params_default(sl_iforest_params_t *params)
{
    params->tree_count = SL_IFOREST_DEFAULT_TREES;
    params->max_samples = SL_IFOREST_DEFAULT_SAMPLES;
    params->contamination = 0.0;
    params->seed = 42;
}

double sl_iforest_average_path_length(double n)
{
    if (!(n > 1.0)) {
        return 0.0;
    }
    if (n <= 2.0) {
        return 1.0;
    }
    return 2.0 * (log(n - 1.0) + EULER_GAMMA) - 2.0 * (n - 1.0) / n;
}

static float standardise(const sl_iforest_t *forest, size_t f, double x)
{
    double z;

    if (isnan(x)) {
        return 0.0f; /* NaN is imputed with the training mean */
    }
    z = (x - forest->mean[f]) / forest->scale[f];
    if (z > STD_CLAMP) {
        z = STD_CLAMP;
    } else if (z < -STD_CLAMP) {
        z = -STD_CLAMP;
    }
    return (float)z;
}

/* Fills z[0..d-1] and z[d] = -inf, the padding value leaves compare with. */
static void standardise_row(const sl_iforest_t *forest, const double *x,
                            float *z)
{
    size_t d = forest->feature_count;

    for (size_t f = 0; f < d; f++) {
        z[f] = standardise(forest, f, x[f]);
    }
    z[d] = -INFINITY;
}

static inline uint32_t step(const sl_iforest_node_t *tree, uint32_t i,
                            const float *z)
{
    const sl_iforest_node_t *node = &tree[i];

    return node->left + (uint32_t)(z[node->feature] >= node->split);
}

/* Returns the sum of the path lengths over all trees. */
static double path_sum(const sl_iforest_t *forest, const float *z)
{
    const sl_iforest_node_t *nodes = forest->nodes;
    const uint32_t *start = forest->tree_start;
    uint32_t depth = forest->depth_max;
    size_t t = 0;
    double total = 0.0;

    for (; t + 4 <= forest->tree_count; t += 4) {
        const sl_iforest_node_t *t0 = nodes + start[t];
        const sl_iforest_node_t *t1 = nodes + start[t + 1];
        const sl_iforest_node_t *t2 = nodes + start[t + 2];
        const sl_iforest_node_t *t3 = nodes + start[t + 3];
        uint32_t i0 = 0, i1 = 0, i2 = 0, i3 = 0;

        for (uint32_t k = 0; k < depth; k++) {
            i0 = step(t0, i0, z);
            i1 = step(t1, i1, z);
            i2 = step(t2, i2, z);
            i3 = step(t3, i3, z);
        }
        total += (double)t0[i0].split + (double)t1[i1].split +
                 (double)t2[i2].split + (double)t3[i3].split;
    }
    for (; t < forest->tree_count; t++) {
        const sl_iforest_node_t *tree = nodes + start[t];
        uint32_t i = 0;

        for (uint32_t k = 0; k < depth; k++) {
            i = step(tree, i, z);
        }
        total += (double)tree[i].split;
    }
    return total;
}

double sl_iforest_path_length(const sl_iforest_t *forest,
                              const double *features)
{
    float z[SL_IFOREST_MAX_FEATURES + 1];

    standardise_row(forest, features, z);
    return path_sum(forest, z) / (double)forest->tree_count;
}

static double score_from_path(const sl_iforest_t *forest, double mean_path)
{
    return -exp2(-mean_path / forest->c_psi);
}

double sl_iforest_score(const sl_iforest_t *forest, const double *features)
{
    return score_from_path(forest, sl_iforest_path_length(forest, features));
}

bool sl_iforest_is_anomaly(const sl_iforest_t *forest, const double *features)
{
    return sl_iforest_score(forest, features) < forest->offset;
}

double sl_iforest_offset(const sl_iforest_t *forest)
{
    return forest->offset;
}

size_t sl_iforest_feature_count(const sl_iforest_t *forest)
{
    return forest->feature_count;
}

size_t sl_iforest_tree_count(const sl_iforest_t *forest)
{
    return forest->tree_count;
}

size_t sl_iforest_sample_size(const sl_iforest_t *forest)
{
    return forest->sample_size;
}

size_t sl_iforest_row_count(const sl_iforest_t *forest)
{
    return (size_t)forest->row_count;
}

void sl_iforest_destroy(sl_iforest_t *forest)
{
    if (forest == NULL) {
        return;
    }
    free(forest->mean);
    free(forest->scale);
    free(forest->tree_start);
    free(forest->nodes);
    free(forest);
}

sl_iforest_t *sl_iforest__alloc(uint32_t feature_count, uint32_t tree_count,
                                uint32_t node_capacity)
{
    sl_iforest_t *forest = calloc(1, sizeof(*forest));

    if (forest == NULL) {
        return NULL;
    }
    forest->feature_count = feature_count;
    forest->tree_count = tree_count;
    forest->mean = calloc(feature_count, sizeof(double));
    forest->scale = calloc(feature_count, sizeof(double));
    forest->tree_start = calloc((size_t)tree_count + 1, sizeof(uint32_t));
    forest->nodes = calloc(node_capacity, sizeof(sl_iforest_node_t));
    if (forest->mean == NULL || forest->scale == NULL ||
        forest->tree_start == NULL || forest->nodes == NULL) {
        sl_iforest_destroy(forest);
        return NULL;
    }
    return forest;
}

void sl_iforest__finish(sl_iforest_t *forest)
{
    /* Rounded through float like the leaf path lengths, so a point that
     * lands in a root leaf of every tree scores exactly -0.5 and is not
     * flagged by the "auto" offset through a rounding error. */
    forest->c_psi =
        (double)(float)sl_iforest_average_path_length(forest->sample_size);
}

/* ------------------------------------------------------------- training */

/* Working state of one training run. Columns are feature-major: the value
 * of feature f of row r is cols[f * rows + r]. */
typedef struct trainer {
    sl_iforest_t *forest;
    float *cols;
    uint32_t rows;
    uint32_t *perm; /* permutation of 0..rows-1, for sampling */
    uint32_t *idx;  /* the sample of the current tree, partitioned */
    sl_rng_t rng;
    uint32_t height_limit;
} trainer_t;

/* A node still to be built: its rows are idx[lo..hi). */
typedef struct pending {
    uint32_t node;
    uint32_t lo;
    uint32_t hi;
    uint32_t depth;
} pending_t;

static int check_params(const sl_iforest_params_t *params, size_t feature_count,
                        char *err, size_t err_size)
{
    if (feature_count < 1 || feature_count > SL_IFOREST_MAX_FEATURES) {
        sl_iforest__set_error(err, err_size,
                              "invalid feature count %zu (expected 1..%d)",
                              feature_count, SL_IFOREST_MAX_FEATURES);
        return -1;
    }
    if (params->tree_count < 1 || params->tree_count > SL_IFOREST_MAX_TREES) {
        sl_iforest__set_error(err, err_size,
                              "invalid tree_count %u (expected 1..%d)",
                              params->tree_count, SL_IFOREST_MAX_TREES);
        return -1;
    }
    if (params->max_samples < 2 ||
        params->max_samples > SL_IFOREST_MAX_SAMPLES) {
        sl_iforest__set_error(err, err_size,
                              "invalid max_samples %u (expected 2..%d)",
                              params->max_samples, SL_IFOREST_MAX_SAMPLES);
        return -1;
    }
    if (!(params->contamination >= 0.0 && params->contamination <= 0.5)) {
        sl_iforest__set_error(err, err_size,
                              "invalid contamination %g (expected 0 for "
                              "auto, or a fraction in (0, 0.5])",
                              params->contamination);
        return -1;
    }
    return 0;
}

static bool row_finite(const double *row, size_t d)
{
    for (size_t f = 0; f < d; f++) {
        if (!isfinite(row[f])) {
            return false;
        }
    }
    return true;
}

/* Computes the per-feature mean and population std of the finite rows;
 * a feature without spread gets scale 1, so it standardises to 0. */
static void fit_scaling(sl_iforest_t *forest, const double *rows,
                        size_t row_count, const uint8_t *keep, size_t kept)
{
    size_t d = forest->feature_count;

    for (size_t f = 0; f < d; f++) {
        double sum = 0.0;
        double sq = 0.0;

        for (size_t r = 0; r < row_count; r++) {
            if (keep[r]) {
                sum += rows[r * d + f];
            }
        }
        forest->mean[f] = sum / (double)kept;
        for (size_t r = 0; r < row_count; r++) {
            if (keep[r]) {
                double dev = rows[r * d + f] - forest->mean[f];

                sq += dev * dev;
            }
        }
        forest->scale[f] = sqrt(sq / (double)kept);
        if (!(forest->scale[f] > 0.0) || !isfinite(forest->scale[f])) {
            forest->scale[f] = 1.0;
        }
    }
}

/* Draws the tree's sample: the first `psi` entries of a partial
 * Fisher-Yates shuffle of perm, copied to idx. */
static void draw_sample(trainer_t *tr, uint32_t psi)
{
    for (uint32_t i = 0; i < psi; i++) {
        uint32_t j = i + (uint32_t)sl_rng_below(&tr->rng, tr->rows - i);
        uint32_t tmp = tr->perm[i];

        tr->perm[i] = tr->perm[j];
        tr->perm[j] = tmp;
        tr->idx[i] = tr->perm[i];
    }
}

/*
 * Picks a split for rows idx[lo..hi). Only features whose values differ
 * within the node are candidates. Returns false when there is none, so
 * the node becomes a leaf. OUT: *feature, *split with min < split <= max,
 * so both sides get at least one row.
 */
static bool choose_split(trainer_t *tr, uint32_t lo, uint32_t hi,
                         uint16_t *feature, float *split)
{
    uint32_t d = tr->forest->feature_count;
    uint16_t candidates[SL_IFOREST_MAX_FEATURES];
    float lows[SL_IFOREST_MAX_FEATURES];
    float highs[SL_IFOREST_MAX_FEATURES];
    uint32_t count = 0;

    for (uint32_t f = 0; f < d; f++) {
        const float *col = tr->cols + (size_t)f * tr->rows;
        float low = col[tr->idx[lo]];
        float high = low;

        for (uint32_t i = lo + 1; i < hi; i++) {
            float v = col[tr->idx[i]];

            low = v < low ? v : low;
            high = v > high ? v : high;
        }
        if (high > low) {
            candidates[count] = (uint16_t)f;
            lows[count] = low;
            highs[count] = high;
            count++;
        }
    }
    if (count == 0) {
        return false;
    }

    uint32_t pick = (uint32_t)sl_rng_below(&tr->rng, count);
    double low = lows[pick];
    double high = highs[pick];
    float s = (float)(low + sl_rng_uniform(&tr->rng) * (high - low));

    if (!(s > (float)low)) {
        s = nextafterf((float)low, INFINITY);
    }
    *feature = candidates[pick];
    *split = s;
    return true;
}

/* Moves rows with value < split to the front of idx[lo..hi); returns the
 * first index of the right part. */
static uint32_t partition(trainer_t *tr, uint32_t lo, uint32_t hi,
                          uint16_t feature, float split)
{
    const float *col = tr->cols + (size_t)feature * tr->rows;
    uint32_t mid = lo;

    for (uint32_t i = lo; i < hi; i++) {
        if (col[tr->idx[i]] < split) {
            uint32_t tmp = tr->idx[i];

            tr->idx[i] = tr->idx[mid];
            tr->idx[mid] = tmp;
            mid++;
        }
    }
    return mid;
}

static void make_leaf(sl_iforest_node_t *node, uint32_t self, uint32_t depth,
                      uint32_t size, uint32_t pad_feature)
{
    node->feature = (uint16_t)pad_feature;
    node->left = (uint16_t)self;
    node->split = (float)(depth + sl_iforest_average_path_length((double)size));
}

/*
 * Grows one tree on idx[0..psi) into tree[], without recursion. An explicit
 * stack contains the nodes still to build: depth first, so at most
 * height_limit + 1 entries, within the 2 psi allocated. Returns the number
 * of nodes used and raises *depth_max to the deepest leaf.

 */
static uint32_t grow_tree(trainer_t *tr, sl_iforest_node_t *tree, uint32_t psi,
                          pending_t *stack, uint32_t *depth_max)
{
    uint32_t pad = tr->forest->feature_count;
    uint32_t used = 1;
    uint32_t top = 0;

    stack[top++] = (pending_t){.node = 0, .lo = 0, .hi = psi, .depth = 0};
    while (top > 0) {
        pending_t p = stack[--top];
        uint32_t size = p.hi - p.lo;
        uint16_t feature;
        float split;

        if (p.depth >= tr->height_limit || size <= 1 ||
            !choose_split(tr, p.lo, p.hi, &feature, &split)) {
            make_leaf(&tree[p.node], p.node, p.depth, size, pad);
            if (p.depth > *depth_max) {
                *depth_max = p.depth;
            }
            continue;
        }

        uint32_t mid = partition(tr, p.lo, p.hi, feature, split);

        tree[p.node].feature = feature;
        tree[p.node].split = split;
        tree[p.node].left = (uint16_t)used;
        stack[top++] = (pending_t){used + 1, mid, p.hi, p.depth + 1};
        stack[top++] = (pending_t){used, p.lo, mid, p.depth + 1};
        used += 2;
    }
    return used;
}

/* Copies the finite rows, standardised, into feature-major columns. */
static void fill_columns(trainer_t *tr, const double *rows, size_t row_count,
                         const uint8_t *keep)
{
    sl_iforest_t *forest = tr->forest;
    size_t d = forest->feature_count;
    uint32_t r = 0;

    for (size_t i = 0; i < row_count; i++) {
        if (!keep[i]) {
            continue;
        }
        for (size_t f = 0; f < d; f++) {
            tr->cols[f * tr->rows + r] =
                standardise(forest, f, rows[i * d + f]);
        }
        r++;
    }
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Sets the offset to the contamination quantile of the training scores,
 * interpolated linearly between order statistics as numpy.percentile
 * does by default, or to -0.5 for contamination "auto". */
static int fit_offset(trainer_t *tr, double contamination)
{
    sl_iforest_t *forest = tr->forest;
    uint32_t n = tr->rows;
    size_t d = forest->feature_count;
    float z[SL_IFOREST_MAX_FEATURES + 1];
    double *scores;

    if (contamination == 0.0) {
        forest->offset = SL_IFOREST_AUTO_OFFSET;
        return 0;
    }
    scores = malloc((size_t)n * sizeof(double));
    if (scores == NULL) {
        return -1;
    }
    for (uint32_t r = 0; r < n; r++) {
        for (size_t f = 0; f < d; f++) {
            z[f] = tr->cols[f * n + r];
        }
        z[d] = -INFINITY;
        scores[r] = score_from_path(forest, path_sum(forest, z) /
                                                (double)forest->tree_count);
    }
    qsort(scores, n, sizeof(double), compare_double);

    double pos = contamination * (double)(n - 1);
    size_t below = (size_t)floor(pos);
    size_t above = below + 1 < n ? below + 1 : below;
    double frac = pos - (double)below;

    forest->offset = scores[below] + frac * (scores[above] - scores[below]);
    free(scores);
    return 0;
}

static void trainer_fini(trainer_t *tr)
{
    free(tr->cols);
    free(tr->perm);
    free(tr->idx);
}

static int grow_forest(trainer_t *tr, uint32_t psi)
{
    sl_iforest_t *forest = tr->forest;
    pending_t *stack = malloc((size_t)psi * 2 * sizeof(pending_t));
    uint32_t depth_max = 0;
    uint32_t used = 0;

    if (stack == NULL) {
        return -1;
    }
    for (uint32_t t = 0; t < forest->tree_count; t++) {
        forest->tree_start[t] = used;
        draw_sample(tr, psi);
        used += grow_tree(tr, forest->nodes + used, psi, stack, &depth_max);
    }
    forest->tree_start[forest->tree_count] = used;
    forest->node_count = used;
    forest->depth_max = depth_max;
    free(stack);
    return 0;
}

static uint32_t height_limit_of(uint32_t psi)
{
    uint32_t h = 0;

    while ((1u << h) < psi) {
        h++;
    }
    return h; /* ceil(log2(psi)) for psi >= 1 */
}

static uint8_t *finite_rows(const double *rows, size_t row_count, size_t d,
                            size_t *kept)
{
    uint8_t *keep = malloc(row_count > 0 ? row_count : 1);

    *kept = 0;
    if (keep == NULL) {
        return NULL;
    }
    for (size_t r = 0; r < row_count; r++) {
        keep[r] = row_finite(rows + r * d, d);
        *kept += keep[r];
    }
    return keep;
}

sl_iforest_t *sl_iforest_train(const double *rows, size_t row_count,
                               size_t feature_count,
                               const sl_iforest_params_t *params, char *err,
                               size_t err_size)
{
    trainer_t tr;
    uint8_t *keep = NULL;
    size_t kept = 0;
    uint32_t psi;

    memset(&tr, 0, sizeof(tr));
    if (params == NULL || (rows == NULL && row_count > 0)) {
        sl_iforest__set_error(err, err_size, "invalid argument: NULL");
        return NULL;
    }
    if (check_params(params, feature_count, err, err_size) != 0) {
        return NULL;
    }
    if (row_count > UINT32_MAX) {
        sl_iforest__set_error(err, err_size, "too many rows: %zu", row_count);
        return NULL;
    }
    keep = finite_rows(rows, row_count, feature_count, &kept);
    if (keep == NULL) {
        goto oom;
    }
    if (kept < 2) {
        sl_iforest__set_error(err, err_size,
                              "training needs at least 2 rows without NaN or "
                              "infinity, got %zu of %zu",
                              kept, row_count);
        free(keep);
        return NULL;
    }

    psi = kept < params->max_samples ? (uint32_t)kept : params->max_samples;
    tr.rows = (uint32_t)kept;
    tr.height_limit = height_limit_of(psi);
    tr.forest = sl_iforest__alloc((uint32_t)feature_count, params->tree_count,
                                  params->tree_count * (2 * psi - 1));
    tr.cols = malloc(kept * feature_count * sizeof(float));
    tr.perm = malloc(kept * sizeof(uint32_t));
    tr.idx = malloc((size_t)psi * sizeof(uint32_t));
    if (tr.forest == NULL || tr.cols == NULL || tr.perm == NULL ||
        tr.idx == NULL) {
        goto oom;
    }
    for (uint32_t i = 0; i < tr.rows; i++) {
        tr.perm[i] = i;
    }
    sl_rng_seed(&tr.rng, params->seed);
    tr.forest->sample_size = psi;
    tr.forest->seed = params->seed;
    tr.forest->contamination = params->contamination;
    tr.forest->row_count = kept;
    sl_iforest__finish(tr.forest);

    fit_scaling(tr.forest, rows, row_count, keep, kept);
    fill_columns(&tr, rows, row_count, keep);
    if (grow_forest(&tr, psi) != 0 ||
        fit_offset(&tr, params->contamination) != 0) {
        goto oom;
    }
    free(keep);
    trainer_fini(&tr);
    return tr.forest;

oom:
    sl_iforest__set_error(err, err_size, "out of memory training %zu rows",
                          row_count);
    free(keep);
    sl_iforest_destroy(tr.forest);
    trainer_fini(&tr);
    return NULL;
}
