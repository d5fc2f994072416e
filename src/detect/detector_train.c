/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Model life cycle of the detector stage: the forest slots that scoring
 * reads, the trainer thread that fills them, and the forest files under
 * the model folder.
 *
 * A slot contains a reference-counted forest. Publishing swaps the
 * pointer under the slot's mutex and drops the slot's reference to the old
 * forest. A scorer that acquired the old one keeps it alive until it
 * releases it.
 * The mutex is held only for a pointer copy and a counter increment, so
 * scoring never waits for training, which runs outside any lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "detect/detector_int.h"
#include "obs/metrics.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

struct sl_forest_ref {
    sl_iforest_t *forest;
    uint64_t generation;
    atomic_uint_least32_t refs;
};

struct sl_forest_slot {
    pthread_mutex_t lock;
    sl_forest_ref_t *current; /* NULL while empty */
    /* Publishes so far; written under lock, read without it by scorers
     * that only want to know whether their reference is still current. */
    atomic_uint_least64_t published;
};

sl_forest_slot_t *sl_forest_slot_create(void)
{
    sl_forest_slot_t *slot = calloc(1, sizeof(*slot));

    if (slot != NULL && pthread_mutex_init(&slot->lock, NULL) != 0) {
        free(slot);
        return NULL;
    }
    return slot;
}

void sl_forest_slot_destroy(sl_forest_slot_t *slot)
{
    if (slot == NULL)
        return;
    sl_forest_ref_release(slot->current);
    pthread_mutex_destroy(&slot->lock);
    free(slot);
}

int sl_forest_slot_publish(sl_forest_slot_t *slot, sl_iforest_t *forest)
{
    sl_forest_ref_t *ref = NULL;
    sl_forest_ref_t *old;

    if (forest != NULL) {
        ref = malloc(sizeof(*ref));
        if (ref == NULL) {
            sl_iforest_destroy(forest);
            return SL_ENOMEM;
        }
        ref->forest = forest;
        atomic_init(&ref->refs, 1); /* the slot's own reference */
    }

    pthread_mutex_lock(&slot->lock);
    old = slot->current;
    if (ref != NULL)
        ref->generation = atomic_load(&slot->published);
    slot->current = ref;
    atomic_fetch_add(&slot->published, 1);
    pthread_mutex_unlock(&slot->lock);

    sl_forest_ref_release(old);
    return SL_OK;
}

sl_forest_ref_t *sl_forest_slot_acquire(sl_forest_slot_t *slot)
{
    sl_forest_ref_t *ref;

    /* The increment happens under the lock, so a publisher cannot drop
     * the slot's reference between the load and the increment. */
    pthread_mutex_lock(&slot->lock);
    ref = slot->current;
    if (ref != NULL)
        atomic_fetch_add_explicit(&ref->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&slot->lock);
    return ref;
}

uint64_t sl_forest_slot_changes(sl_forest_slot_t *slot)
{
    return atomic_load_explicit(&slot->published, memory_order_acquire);
}

const sl_iforest_t *sl_forest_ref_get(const sl_forest_ref_t *ref)
{
    return ref->forest;
}

uint64_t sl_forest_ref_generation(const sl_forest_ref_t *ref)
{
    return ref->generation;
}

void sl_forest_ref_release(sl_forest_ref_t *ref)
{
    if (ref == NULL)
        return;
    /* acq_rel: the thread that frees must see every other holder's reads
     * of the forest as finished. */
    if (atomic_fetch_sub_explicit(&ref->refs, 1, memory_order_acq_rel) == 1) {
        sl_iforest_destroy(ref->forest);
        free(ref);
    }
}

int sl_detector_model_path(const char *dir, sl_sensor_type_t type, char *out,
                           size_t out_size)
{
    int len = snprintf(out, out_size, "%s/%s.iforest", dir,
                       sl_sensor_type_name(type));

    return len < 0 || (size_t)len >= out_size ? SL_EINVAL : SL_OK;
}

/* ---- trainer thread ---------------------------------------------------- */

struct sl_trainer {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool started;
    bool stopping;
    sl_detect_snapshot_t *pending[SL_SENSOR_TYPE_COUNT];
    sl_forest_slot_t *const *slots;
    char *model_dir;
    sl_trainer_counters_t *counters;
    sl_counter_t *retrain_metric[SL_SENSOR_TYPE_COUNT];
    sl_counter_t *failure_metric;
    sl_histogram_t *duration;
};

static void trainer_metrics_init(sl_trainer_t *tr)
{
    static const double bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25,  0.5,   1,    2.5,   5,    10};

    for (int t = 0; t < SL_SENSOR_TYPE_COUNT; t++) {
        tr->retrain_metric[t] = sl_metrics_counter(
            "sluice_detector_retrains_total",
            "Isolation Forests trained and installed",
            (const char *[]){"sensor_type",
                             sl_sensor_type_name((sl_sensor_type_t)t), NULL});
    }
    tr->failure_metric = sl_metrics_counter(
        "sluice_detector_retrain_failures_total",
        "Retrains that produced no forest (the old one stays)", NULL);
    tr->duration =
        sl_metrics_histogram("sluice_detector_retrain_duration_seconds",
                             "Time to train one Isolation Forest", bounds,
                             sizeof(bounds) / sizeof(bounds[0]), NULL);
}

/* Removes and returns a waiting snapshot, the lowest type first; NULL when
 * none waits. Called with tr->lock held. */
static sl_detect_snapshot_t *take_pending(sl_trainer_t *tr,
                                          sl_sensor_type_t *type)
{
    for (int t = 0; t < SL_SENSOR_TYPE_COUNT; t++) {
        if (tr->pending[t] != NULL) {
            sl_detect_snapshot_t *snap = tr->pending[t];
            tr->pending[t] = NULL;
            *type = (sl_sensor_type_t)t;
            return snap;
        }
    }
    return NULL;
}

static void save_forest(const sl_trainer_t *tr, const sl_iforest_t *forest,
                        sl_sensor_type_t type)
{
    char path[4096], err[512];

    if (tr->model_dir == NULL)
        return;
    if (sl_detector_model_path(tr->model_dir, type, path, sizeof(path)) !=
        SL_OK) {
        sl_log_error("detector", "model folder name too long: %s",
                     tr->model_dir);
        return;
    }
    if (sl_iforest_save(forest, path, err, sizeof(err)) != SL_OK)
        sl_log_error("detector", "saving the model failed: %s", err);
}

static void train_one(sl_trainer_t *tr, sl_sensor_type_t type,
                      sl_detect_snapshot_t *snap)
{
    const char *type_name = sl_sensor_type_name(type);
    int64_t start_ns = sl_time_mono_ns();
    char err[512] = "";
    sl_iforest_t *forest = sl_detect_snapshot_train(snap, err, sizeof(err));
    double seconds = (double)(sl_time_mono_ns() - start_ns) / 1e9;
    size_t rows = sl_detect_snapshot_rows(snap);
    sl_forest_ref_t *ref;

    sl_detect_snapshot_destroy(snap);
    if (forest == NULL) {
        sl_log_error("detector",
                     "training failed, keeping the current model "
                     "sensor_type=%s rows=%zu error=%s",
                     type_name, rows, err);
        sl_counter_add(tr->failure_metric, 1);
        atomic_fetch_add(&tr->counters->failures, 1);
        return;
    }
    sl_histogram_observe(tr->duration, seconds);
    /* Installed before it is saved, so scoring does not wait for the
     * fsync. The reference keeps the forest alive while it is written. */
    if (sl_forest_slot_publish(tr->slots[type], forest) != SL_OK) {
        sl_log_error("detector",
                     "out of memory installing a model "
                     "sensor_type=%s",
                     type_name);
        atomic_fetch_add(&tr->counters->failures, 1);
        return;
    }
    ref = sl_forest_slot_acquire(tr->slots[type]);
    if (ref != NULL)
        save_forest(tr, sl_forest_ref_get(ref), type);
    sl_forest_ref_release(ref);
    sl_counter_add(tr->retrain_metric[type], 1);
    atomic_fetch_add(&tr->counters->retrains[type], 1);
    sl_log_debug("detector",
                 "model retrained sensor_type=%s rows=%zu "
                 "seconds=%.3f",
                 type_name, rows, seconds);
}

static void *trainer_main(void *arg)
{
    sl_trainer_t *tr = arg;

    pthread_mutex_lock(&tr->lock);
    for (;;) {
        sl_sensor_type_t type;
        sl_detect_snapshot_t *snap = take_pending(tr, &type);

        if (snap == NULL) {
            if (tr->stopping)
                break;
            pthread_cond_wait(&tr->wake, &tr->lock);
            continue;
        }
        pthread_mutex_unlock(&tr->lock);
        train_one(tr, type, snap);
        pthread_mutex_lock(&tr->lock);
    }
    pthread_mutex_unlock(&tr->lock);
    return NULL;
}

sl_trainer_t *sl_detector__trainer_start(sl_forest_slot_t *const *slots,
                                         const char *model_dir,
                                         sl_trainer_counters_t *counters)
{
    sl_trainer_t *tr = calloc(1, sizeof(*tr));

    if (tr == NULL)
        return NULL;
    tr->slots = slots;
    tr->counters = counters;
    if (model_dir != NULL && model_dir[0] != '\0') {
        tr->model_dir = strdup(model_dir);
        if (tr->model_dir == NULL) {
            free(tr);
            return NULL;
        }
    }
    trainer_metrics_init(tr);
    pthread_mutex_init(&tr->lock, NULL);
    pthread_cond_init(&tr->wake, NULL);
    if (pthread_create(&tr->thread, NULL, trainer_main, tr) != 0) {
        sl_detector__trainer_stop(tr);
        return NULL;
    }
    tr->started = true;
    return tr;
}

void sl_detector__trainer_submit(sl_trainer_t *tr, sl_sensor_type_t type,
                                 sl_detect_snapshot_t *snap)
{
    sl_detect_snapshot_t *old;

    pthread_mutex_lock(&tr->lock);
    old = tr->pending[type];
    tr->pending[type] = snap;
    pthread_cond_signal(&tr->wake);
    pthread_mutex_unlock(&tr->lock);

    if (old != NULL) {
        atomic_fetch_add(&tr->counters->superseded, 1);
        sl_detect_snapshot_destroy(old);
    }
}

void sl_detector__trainer_stop(sl_trainer_t *tr)
{
    if (tr == NULL)
        return;
    if (tr->started) {
        pthread_mutex_lock(&tr->lock);
        tr->stopping = true;
        pthread_cond_signal(&tr->wake);
        pthread_mutex_unlock(&tr->lock);
        pthread_join(tr->thread, NULL);
    }
    for (int t = 0; t < SL_SENSOR_TYPE_COUNT; t++)
        sl_detect_snapshot_destroy(tr->pending[t]);
    pthread_cond_destroy(&tr->wake);
    pthread_mutex_destroy(&tr->lock);
    free(tr->model_dir);
    free(tr);
}

/* ---- forest files ------------------------------------------------------ */

/* Loads one type's file into its slot. Returns 1 when loaded, 0 when there
 * is no file, -1 when the file was rejected. */
static int load_model(sl_forest_slot_t *slot, const char *path,
                      size_t feature_count)
{
    char err[512] = "";
    sl_iforest_t *forest;

    if (access(path, F_OK) != 0 && errno == ENOENT)
        return 0;
    forest = sl_iforest_load(path, err, sizeof(err));
    if (forest == NULL) {
        sl_log_warn("detector", "ignoring model file %s, the type retrains: %s",
                    path, err);
        return -1;
    }
    if (sl_iforest_feature_count(forest) != feature_count) {
        sl_log_warn("detector",
                    "ignoring model file %s, the type retrains: it has %zu "
                    "features, the configured feature set has %zu",
                    path, sl_iforest_feature_count(forest), feature_count);
        sl_iforest_destroy(forest);
        return -1;
    }
    if (sl_forest_slot_publish(slot, forest) != SL_OK)
        return -1;
    sl_log_info("detector", "loaded model file %s trees=%zu rows=%zu", path,
                sl_iforest_tree_count(forest), sl_iforest_row_count(forest));
    return 1;
}

void sl_detector__load_models(sl_forest_slot_t *const *slots,
                              const char *model_dir, size_t feature_count,
                              uint64_t *loaded, uint64_t *rejected)
{
    sl_counter_t *loaded_metric =
        sl_metrics_counter("sluice_detector_models_loaded_total",
                           "Saved Isolation Forests loaded at start", NULL);
    sl_counter_t *rejected_metric = sl_metrics_counter(
        "sluice_detector_models_rejected_total",
        "Saved model files ignored because they did not load", NULL);
    char path[4096];

    *loaded = 0;
    *rejected = 0;
    for (int t = 0; t < SL_SENSOR_TYPE_COUNT; t++) {
        int rc;

        if (sl_detector_model_path(model_dir, (sl_sensor_type_t)t, path,
                                   sizeof(path)) != SL_OK)
            return;
        rc = load_model(slots[t], path, feature_count);
        if (rc > 0)
            (*loaded)++;
        else if (rc < 0)
            (*rejected)++;
    }
    sl_counter_add(loaded_metric, *loaded);
    sl_counter_add(rejected_metric, *rejected);
}
