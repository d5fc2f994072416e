/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Online Isolation Forest model of ONE sensor type. It keeps a sliding
 * window of the last window_size feature vectors of that type, scores each
 * new vector with the current forest BEFORE adding it (a vector never
 * trains the model that scores it), and reports when a retrain is due: after
 * min_samples vectors for the first model, then every retrain_every
 * vectors.
 *
 * Retraining never blocks readings: the owner takes a snapshot (an owned
 * copy of the window plus the training parameters), trains it on any
 * thread, and installs the result later:
 *
 *     detector thread                      training thread
 *     ---------------                      ---------------
 *     sl_detect_model_observe() -> due
 *     snap = sl_detect_model_snapshot()
 *     hand snap over  ------------------>  forest = sl_detect_snapshot_train()
 *                                          sl_detect_snapshot_destroy(snap)
 *     take forest     <------------------  hand forest back
 *     old = sl_detect_model_install(forest)
 *     sl_iforest_destroy(old) once no other thread scores it
 *
 * Threads: every sl_detect_model_* function must be called by one owner
 * thread (or under the owner's lock). A snapshot shares nothing with the
 * model, so training it needs no lock. Forests are immutable: a caller that
 * shares the current forest with other scoring threads (for example
 * through an atomic pointer from sl_detect_model_forest()) must keep the
 * old forest alive until those threads have moved on.
 *
 * Contract owner: the detect module (model.c). This header is stable; the
 * stage (detector.c) builds on it.
 */
#ifndef SLUICE_DETECT_MODEL_H
#define SLUICE_DETECT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect/features.h"
#include "detect/iforest.h"

typedef struct sl_detect_model sl_detect_model_t;
typedef struct sl_detect_snapshot sl_detect_snapshot_t;

/* Settings of one per-type model. Initialise with
 * sl_detect_model_config_default(). */
typedef struct sl_detect_model_config {
    sl_features_config_t features; /* fixes feature_count */
    sl_iforest_params_t forest;    /* seed of generation g is seed + g */
    uint32_t window_size;          /* feature vectors kept, >= min_samples */
    uint32_t retrain_every;        /* vectors between retrains, >= 1 */
    uint32_t min_samples;          /* vectors before the first training, >= 2 */
} sl_detect_model_config_t;

/* What sl_detect_model_observe() reports for one vector. */
typedef struct sl_detect_model_result {
    double score;     /* iforest score, lower = more anomalous; if scored */
    bool scored;      /* false while no forest is installed */
    bool anomaly;     /* score < offset of the current forest */
    bool retrain_due; /* the owner should snapshot and retrain now */
} sl_detect_model_result_t;

/** Fills *cfg with the default features, 100 trees of 256 samples,
 * contamination "auto", and the window and retrain period chosen on the
 * NAB benchmark (docs/DETECTOR.md). */
void sl_detect_model_config_default(sl_detect_model_config_t *cfg);

/** Returns SL_OK, or SL_EINVAL with a reason in err (may be NULL). */
int sl_detect_model_config_check(const sl_detect_model_config_t *cfg, char *err,
                                 size_t err_size);

/**
 * Creates a model without a forest. cfg is copied and must pass
 * sl_detect_model_config_check(). Returns NULL on an invalid config or
 * when memory runs out.
 */
sl_detect_model_t *sl_detect_model_create(const sl_detect_model_config_t *cfg);

/** Frees the model and its installed forest; NULL is a no-op. */
void sl_detect_model_destroy(sl_detect_model_t *model);

/** Returns the number of doubles in each feature vector. */
size_t sl_detect_model_feature_count(const sl_detect_model_t *model);

/**
 * Scores one feature vector with the installed forest, then adds it to the
 * window and counts it towards the next retrain. OUT: *out. A vector
 * holding a non-finite value is scored but not added to the window.
 * retrain_due stays true on every call until a snapshot is taken.
 */
void sl_detect_model_observe(sl_detect_model_t *model, const double *features,
                             sl_detect_model_result_t *out);

/** Scores one vector without adding it. OUT: *out; retrain_due false. */
void sl_detect_model_score(const sl_detect_model_t *model,
                           const double *features,
                           sl_detect_model_result_t *out);

/**
 * Copies the window (oldest vector first) and the parameters of the next
 * generation into a new snapshot, and restarts the retrain count. May be
 * called at any time, also when no retrain is due. Returns NULL when the
 * window holds fewer than 2 vectors or memory runs out (the count is then
 * left as it was).
 */
sl_detect_snapshot_t *sl_detect_model_snapshot(sl_detect_model_t *model);

/**
 * Trains a forest on a snapshot. Any thread; the snapshot is only read.
 * Returns the forest (owned by the caller) or NULL with a reason in err.
 */
sl_iforest_t *sl_detect_snapshot_train(const sl_detect_snapshot_t *snap,
                                       char *err, size_t err_size);

/** Returns the number of vectors in a snapshot. */
size_t sl_detect_snapshot_rows(const sl_detect_snapshot_t *snap);

/** Frees a snapshot; NULL is a no-op. Any thread. */
void sl_detect_snapshot_destroy(sl_detect_snapshot_t *snap);

/**
 * Installs forest (ownership moves to the model; NULL uninstalls) and
 * returns the previous forest, which the caller now owns and frees once no
 * thread scores it. A forest with a different feature count is rejected:
 * it is returned unchanged and the current one stays.
 */
sl_iforest_t *sl_detect_model_install(sl_detect_model_t *model,
                                      sl_iforest_t *forest);

/** Returns the installed forest (borrowed, valid until it is replaced by
 * sl_detect_model_install() or the model is destroyed), or NULL. */
const sl_iforest_t *sl_detect_model_forest(const sl_detect_model_t *model);

/** Returns the number of vectors in the window. */
size_t sl_detect_model_window_count(const sl_detect_model_t *model);

/** Returns the number of vectors observed since the last snapshot. */
uint64_t sl_detect_model_since_snapshot(const sl_detect_model_t *model);

/** Returns how many snapshots were taken (the generation of the next). */
uint64_t sl_detect_model_generation(const sl_detect_model_t *model);

#endif
