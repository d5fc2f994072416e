/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Online per-type model (contract in model.h): a ring buffer of the last
 * window_size feature vectors, a retrain counter, and the installed forest.
 */
#include "detect/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* Defaults chosen on the NAB benchmark (docs/DETECTOR.md). */
#define DEFAULT_WINDOW_SIZE 4000
#define DEFAULT_RETRAIN_EVERY 500
#define DEFAULT_MIN_SAMPLES 256
/* Flags the 0.5 % least normal training scores' share of readings. */
#define DEFAULT_CONTAMINATION 0.005

struct sl_detect_model {
    sl_detect_model_config_t cfg;
    size_t feature_count;
    double *ring; /* window_size rows of feature_count doubles */
    size_t head;  /* next row to write */
    size_t count; /* rows in use */
    uint64_t since_snapshot;
    uint64_t generation;
    sl_iforest_t *forest;
};

struct sl_detect_snapshot {
    sl_iforest_params_t params;
    size_t feature_count;
    size_t rows;
    double data[]; /* rows * feature_count, oldest row first */
};

void sl_detect_model_config_default(sl_detect_model_config_t *cfg)
{
    sl_features_config_default(&cfg->features);
    sl_iforest_params_default(&cfg->forest);
    cfg->forest.contamination = DEFAULT_CONTAMINATION;
    cfg->window_size = DEFAULT_WINDOW_SIZE;
    cfg->retrain_every = DEFAULT_RETRAIN_EVERY;
    cfg->min_samples = DEFAULT_MIN_SAMPLES;
}

static int config_error(char *err, size_t err_size, const char *msg)
{
    if (err != NULL && err_size > 0) {
        snprintf(err, err_size, "%s", msg);
    }
    return SL_EINVAL;
}

int sl_detect_model_config_check(const sl_detect_model_config_t *cfg, char *err,
                                 size_t err_size)
{
    if (cfg == NULL) {
        return config_error(err, err_size, "invalid model config: NULL");
    }
    if (sl_features_config_check(&cfg->features) != SL_OK) {
        return config_error(err, err_size,
                            "invalid feature config: window must be 1..64, "
                            "long_span >= 1, mask non-empty");
    }
    if (sl_features_count(&cfg->features) > SL_IFOREST_MAX_FEATURES) {
        return config_error(err, err_size, "too many features selected");
    }
    if (cfg->min_samples < 2) {
        return config_error(err, err_size,
                            "invalid min_samples: expected >= 2");
    }
    if (cfg->window_size < cfg->min_samples) {
        return config_error(err, err_size,
                            "invalid window_size: expected >= min_samples");
    }
    if (cfg->retrain_every < 1) {
        return config_error(err, err_size,
                            "invalid retrain_every: expected >= 1");
    }
    if (cfg->forest.tree_count < 1 ||
        cfg->forest.tree_count > SL_IFOREST_MAX_TREES ||
        cfg->forest.max_samples < 2 ||
        cfg->forest.max_samples > SL_IFOREST_MAX_SAMPLES ||
        !(cfg->forest.contamination >= 0.0 &&
          cfg->forest.contamination <= 0.5)) {
        return config_error(err, err_size,
                            "invalid forest parameters: trees 1..1024, "
                            "max_samples 2..4096, contamination 0..0.5");
    }
    return SL_OK;
}

sl_detect_model_t *sl_detect_model_create(const sl_detect_model_config_t *cfg)
{
    sl_detect_model_t *model;

    if (sl_detect_model_config_check(cfg, NULL, 0) != SL_OK) {
        return NULL;
    }
    model = calloc(1, sizeof(*model));
    if (model == NULL) {
        return NULL;
    }
    model->cfg = *cfg;
    model->feature_count = sl_features_count(&cfg->features);
    model->ring = malloc((size_t)cfg->window_size * model->feature_count *
                         sizeof(double));
    if (model->ring == NULL) {
        free(model);
        return NULL;
    }
    return model;
}

void sl_detect_model_destroy(sl_detect_model_t *model)
{
    if (model == NULL) {
        return;
    }
    sl_iforest_destroy(model->forest);
    free(model->ring);
    free(model);
}

size_t sl_detect_model_feature_count(const sl_detect_model_t *model)
{
    return model->feature_count;
}

void sl_detect_model_score(const sl_detect_model_t *model,
                           const double *features,
                           sl_detect_model_result_t *out)
{
    memset(out, 0, sizeof(*out));
    if (model->forest == NULL) {
        return;
    }
    out->score = sl_iforest_score(model->forest, features);
    out->scored = true;
    out->anomaly = out->score < sl_iforest_offset(model->forest);
}

static bool retrain_due(const sl_detect_model_t *model)
{
    if (model->count < model->cfg.min_samples) {
        return false;
    }
    return model->generation == 0 ||
           model->since_snapshot >= model->cfg.retrain_every;
}

void sl_detect_model_observe(sl_detect_model_t *model, const double *features,
                             sl_detect_model_result_t *out)
{
    size_t d = model->feature_count;
    bool finite = true;

    sl_detect_model_score(model, features, out);
    for (size_t f = 0; f < d; f++) {
        finite = finite && isfinite(features[f]);
    }
    if (finite) {
        memcpy(model->ring + model->head * d, features, d * sizeof(double));
        model->head = (model->head + 1) % model->cfg.window_size;
        if (model->count < model->cfg.window_size) {
            model->count++;
        }
        model->since_snapshot++;
    }
    out->retrain_due = retrain_due(model);
}

sl_detect_snapshot_t *sl_detect_model_snapshot(sl_detect_model_t *model)
{
    size_t d = model->feature_count;
    size_t oldest;
    sl_detect_snapshot_t *snap;

    if (model->count < 2) {
        return NULL;
    }
    snap = malloc(sizeof(*snap) + model->count * d * sizeof(double));
    if (snap == NULL) {
        return NULL;
    }
    snap->params = model->cfg.forest;
    snap->params.seed = model->cfg.forest.seed + model->generation;
    snap->feature_count = d;
    snap->rows = model->count;

    /* The ring is full once count == window_size; oldest is then head. */
    oldest = (model->head + model->cfg.window_size - model->count) %
             model->cfg.window_size;
    for (size_t i = 0; i < model->count; i++) {
        size_t row = (oldest + i) % model->cfg.window_size;

        memcpy(snap->data + i * d, model->ring + row * d, d * sizeof(double));
    }
    model->since_snapshot = 0;
    model->generation++;
    return snap;
}

sl_iforest_t *sl_detect_snapshot_train(const sl_detect_snapshot_t *snap,
                                       char *err, size_t err_size)
{
    if (snap == NULL) {
        config_error(err, err_size, "invalid argument: NULL snapshot");
        return NULL;
    }
    return sl_iforest_train(snap->data, snap->rows, snap->feature_count,
                            &snap->params, err, err_size);
}

size_t sl_detect_snapshot_rows(const sl_detect_snapshot_t *snap)
{
    return snap->rows;
}

void sl_detect_snapshot_destroy(sl_detect_snapshot_t *snap)
{
    free(snap);
}

sl_iforest_t *sl_detect_model_install(sl_detect_model_t *model,
                                      sl_iforest_t *forest)
{
    sl_iforest_t *old = model->forest;

    if (forest != NULL &&
        sl_iforest_feature_count(forest) != model->feature_count) {
        return forest;
    }
    model->forest = forest;
    return old;
}

const sl_iforest_t *sl_detect_model_forest(const sl_detect_model_t *model)
{
    return model->forest;
}

size_t sl_detect_model_window_count(const sl_detect_model_t *model)
{
    return model->count;
}

uint64_t sl_detect_model_since_snapshot(const sl_detect_model_t *model)
{
    return model->since_snapshot;
}

uint64_t sl_detect_model_generation(const sl_detect_model_t *model)
{
    return model->generation;
}
