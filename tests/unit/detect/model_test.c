/* SPDX-License-Identifier: Apache-2.0 */
/* Per-sensor features and the per-type online model: feature values,
 * level independence, retrain counting, snapshots trained on another
 * thread, and forest installation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "detect/features.h"
#include "detect/model.h"
#include "util/rng.h"

#define ALL_FEATURES ((1u << SL_FEAT_COUNT) - 1)

static sl_reading_t reading(int64_t ts_ms, double value)
{
    sl_reading_t rec;

    memset(&rec, 0, sizeof(rec));
    rec.sensor_type = SL_SENSOR_TEMPERATURE;
    rec.timestamp_ms = ts_ms;
    rec.value = value;
    rec.battery_level = 87;
    rec.signal_strength = -71;
    return rec;
}

static void all_features(sl_features_t *st, uint32_t window)
{
    sl_features_config_t cfg;

    sl_features_config_default(&cfg);
    cfg.window = window;
    cfg.long_span = 10;
    cfg.mask = ALL_FEATURES;
    assert_int_equal(sl_features_init(st, &cfg), 0);
}

/* ------------------------------------------------------------ features */

static void test_features_window_values(void **state)
{
    sl_features_t st;
    double out[SL_FEATURES_MAX];
    double values[] = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0};
    size_t n = 0;

    (void)state;
    all_features(&st, 4);
    for (int i = 0; i < 6; i++) {
        sl_reading_t rec = reading(1000 * (int64_t)i, values[i]);

        n = sl_features_update(&st, &rec, out);
    }
    assert_int_equal(n, SL_FEAT_COUNT);
    /* The window is {3, 4, 5, 6}: mean 4.5, population std sqrt(1.25). */
    assert_float_equal(out[SL_FEAT_VALUE], 6.0, 1e-12);
    assert_float_equal(out[SL_FEAT_DEVIATION], 1.5, 1e-12);
    assert_float_equal(out[SL_FEAT_STD], sqrt(1.25), 1e-12);
    assert_float_equal(out[SL_FEAT_RATE], 1.0, 1e-12); /* per second */
    assert_float_equal(out[SL_FEAT_BATTERY], 87.0, 1e-12);
    assert_float_equal(out[SL_FEAT_SIGNAL], -71.0, 1e-12);
}

static void test_features_mask_selects(void **state)
{
    sl_features_config_t cfg;
    sl_features_t st;
    double out[SL_FEATURES_MAX];
    sl_reading_t rec = reading(0, 42.0);

    (void)state;
    sl_features_config_default(&cfg);
    cfg.mask = (1u << SL_FEAT_VALUE) | (1u << SL_FEAT_SIGNAL);
    assert_int_equal(sl_features_count(&cfg), 2);
    assert_int_equal(sl_features_init(&st, &cfg), 0);
    assert_int_equal(sl_features_update(&st, &rec, out), 2);
    assert_float_equal(out[0], 42.0, 1e-12);
    assert_float_equal(out[1], -71.0, 1e-12);

    cfg.mask = 0;
    assert_int_not_equal(sl_features_init(&st, &cfg), 0);
    cfg.mask = 1;
    cfg.window = SL_FEATURES_WINDOW_MAX + 1;
    assert_int_not_equal(sl_features_init(&st, &cfg), 0);
}

/* Two sensors with the same shape at levels 10 and 100000 get the same
 * level-free features, so one model per type serves both. */
static void test_features_level_independent(void **state)
{
    sl_features_t low;
    sl_features_t high;
    double a[SL_FEATURES_MAX];
    double b[SL_FEATURES_MAX];
    sl_rng_t rng;

    (void)state;
    all_features(&low, 12);
    all_features(&high, 12);
    sl_rng_seed(&rng, 4);
    for (int i = 0; i < 5000; i++) {
        double x = sl_rng_normal(&rng);
        sl_reading_t r1 = reading(60000 * (int64_t)i, 10.0 + x);
        sl_reading_t r2 = reading(60000 * (int64_t)i, 100000.0 + x);

        sl_features_update(&low, &r1, a);
        sl_features_update(&high, &r2, b);
        assert_float_equal(a[SL_FEAT_DEVIATION], b[SL_FEAT_DEVIATION], 1e-8);
        assert_float_equal(a[SL_FEAT_STD], b[SL_FEAT_STD], 1e-8);
        assert_float_equal(a[SL_FEAT_RATE], b[SL_FEAT_RATE], 1e-8);
        assert_float_equal(a[SL_FEAT_LONG_DEV], b[SL_FEAT_LONG_DEV], 1e-7);
    }
}

static void test_features_constant_and_nan(void **state)
{
    sl_features_t st;
    double out[SL_FEATURES_MAX];
    sl_reading_t rec;

    (void)state;
    all_features(&st, 8);
    for (int i = 0; i < 100; i++) {
        rec = reading(1000 * (int64_t)i, 50.0);
        sl_features_update(&st, &rec, out);
        for (int f = 0; f < SL_FEAT_COUNT; f++) {
            assert_true(isfinite(out[f]));
        }
    }
    assert_float_equal(out[SL_FEAT_STD], 0.0, 1e-12);
    assert_float_equal(out[SL_FEAT_LONG_Z], 0.0, 1e-12);

    rec = reading(100000, NAN);
    sl_features_update(&st, &rec, out);
    assert_true(isnan(out[SL_FEAT_VALUE]));
    assert_true(isnan(out[SL_FEAT_DEVIATION]));

    /* The NaN did not enter the history; a step after a constant history
     * gives a large but finite z. */
    rec = reading(101000, 80.0);
    sl_features_update(&st, &rec, out);
    assert_float_equal(out[SL_FEAT_RATE], 15.0, 1e-9); /* 30 over 2 s */
    assert_true(isfinite(out[SL_FEAT_LONG_Z]));
    assert_true(out[SL_FEAT_LONG_Z] > 100.0);
}

static void test_features_out_of_order_rate(void **state)
{
    sl_features_t st;
    double out[SL_FEATURES_MAX];
    sl_reading_t first = reading(5000, 1.0);
    sl_reading_t earlier = reading(4000, 9.0);

    (void)state;
    all_features(&st, 4);
    sl_features_update(&st, &first, out);
    sl_features_update(&st, &earlier, out);
    assert_float_equal(out[SL_FEAT_RATE], 0.0, 1e-12);
}

/* ------------------------------------------------------------ model */

static sl_detect_model_t *small_model(uint32_t window, uint32_t every,
                                      uint32_t min_samples)
{
    sl_detect_model_config_t cfg;
    sl_detect_model_t *model;

    sl_detect_model_config_default(&cfg);
    cfg.features.mask = (1u << SL_FEAT_VALUE) | (1u << SL_FEAT_DEVIATION);
    cfg.window_size = window;
    cfg.retrain_every = every;
    cfg.min_samples = min_samples;
    model = sl_detect_model_create(&cfg);
    assert_non_null(model);
    return model;
}

static bool observe(sl_detect_model_t *model, double a, double b)
{
    double features[2] = {a, b};
    sl_detect_model_result_t res;

    sl_detect_model_observe(model, features, &res);
    return res.retrain_due;
}

static void test_model_retrain_counting(void **state)
{
    sl_detect_model_t *model = small_model(20, 5, 10);
    sl_detect_snapshot_t *snap;

    (void)state;
    for (int i = 0; i < 9; i++) {
        assert_false(observe(model, i, 0.0));
    }
    assert_true(observe(model, 9, 0.0));  /* min_samples reached */
    assert_true(observe(model, 10, 0.0)); /* due until a snapshot */
    snap = sl_detect_model_snapshot(model);
    assert_non_null(snap);
    assert_int_equal(sl_detect_snapshot_rows(snap), 11);
    assert_int_equal(sl_detect_model_generation(model), 1);
    assert_int_equal(sl_detect_model_since_snapshot(model), 0);
    sl_detect_snapshot_destroy(snap);

    for (int i = 0; i < 4; i++) {
        assert_false(observe(model, i, 0.0));
    }
    assert_true(observe(model, 4, 0.0)); /* every 5 readings */

    /* Non-finite vectors count neither towards the window nor a retrain. */
    snap = sl_detect_model_snapshot(model);
    sl_detect_snapshot_destroy(snap);
    assert_false(observe(model, NAN, 0.0));
    assert_int_equal(sl_detect_model_since_snapshot(model), 0);

    for (int i = 0; i < 30; i++) {
        observe(model, i, 1.0);
    }
    assert_int_equal(sl_detect_model_window_count(model), 20);
    sl_detect_model_destroy(model);
}

static void test_model_unscored_without_forest(void **state)
{
    sl_detect_model_t *model = small_model(50, 10, 10);
    double features[2] = {1.0, 2.0};
    sl_detect_model_result_t res;

    (void)state;
    sl_detect_model_observe(model, features, &res);
    assert_false(res.scored);
    assert_false(res.anomaly);
    assert_null(sl_detect_model_forest(model));
    assert_null(sl_detect_model_snapshot(model)); /* only one vector */
    sl_detect_model_destroy(model);
}

typedef struct training_job {
    sl_detect_snapshot_t *snap;
    sl_iforest_t *forest;
} training_job_t;

static void *train_job(void *arg)
{
    training_job_t *job = arg;

    job->forest = sl_detect_snapshot_train(job->snap, NULL, 0);
    sl_detect_snapshot_destroy(job->snap);
    return NULL;
}

/* The owner keeps observing while another thread trains its snapshot,
 * then installs the result; run under TSan to check the contract. */
static void test_model_trains_on_other_thread(void **state)
{
    sl_detect_model_t *model = small_model(500, 200, 100);
    training_job_t job = {0};
    pthread_t thread;
    sl_rng_t rng;
    double spike[2] = {50.0, 50.0};
    double normal[2] = {0.0, 0.0};
    sl_detect_model_result_t res;

    (void)state;
    sl_rng_seed(&rng, 8);
    while (!observe(model, sl_rng_normal(&rng), sl_rng_normal(&rng))) {
    }
    job.snap = sl_detect_model_snapshot(model);
    assert_int_equal(sl_detect_snapshot_rows(job.snap), 100);
    assert_int_equal(pthread_create(&thread, NULL, train_job, &job), 0);
    for (int i = 0; i < 150; i++) {
        observe(model, sl_rng_normal(&rng), sl_rng_normal(&rng));
    }
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_non_null(job.forest);
    assert_null(sl_detect_model_install(model, job.forest));
    assert_ptr_equal(sl_detect_model_forest(model), job.forest);

    sl_detect_model_score(model, spike, &res);
    assert_true(res.scored);
    assert_true(res.anomaly);
    sl_detect_model_score(model, normal, &res);
    assert_true(res.scored);
    assert_false(res.anomaly);
    sl_detect_model_destroy(model);
}

static void test_model_install_checks_features(void **state)
{
    sl_detect_model_t *model = small_model(50, 10, 10);
    double rows[] = {1.0, 2.0, 3.0};
    sl_iforest_params_t params;
    sl_iforest_t *wrong;
    sl_iforest_t *first;
    sl_iforest_t *second;
    double two[] = {1.0, 0.0, 2.0, 1.0, 3.0, 0.0};

    (void)state;
    sl_iforest_params_default(&params);
    wrong = sl_iforest_train(rows, 3, 1, &params, NULL, 0);
    assert_ptr_equal(sl_detect_model_install(model, wrong), wrong);
    assert_null(sl_detect_model_forest(model));
    sl_iforest_destroy(wrong);

    first = sl_iforest_train(two, 3, 2, &params, NULL, 0);
    second = sl_iforest_train(two, 3, 2, &params, NULL, 0);
    assert_null(sl_detect_model_install(model, first));
    assert_ptr_equal(sl_detect_model_install(model, second), first);
    sl_iforest_destroy(first);
    sl_detect_model_destroy(model); /* frees second */
}

static void test_model_config_rejected(void **state)
{
    sl_detect_model_config_t cfg;
    char err[256] = "";

    (void)state;
    sl_detect_model_config_default(&cfg);
    assert_int_equal(sl_detect_model_config_check(&cfg, err, sizeof(err)), 0);
    cfg.window_size = cfg.min_samples - 1;
    assert_int_not_equal(sl_detect_model_config_check(&cfg, err, sizeof(err)),
                         0);
    assert_non_null(strstr(err, "window_size"));
    assert_null(sl_detect_model_create(&cfg));

    sl_detect_model_config_default(&cfg);
    cfg.retrain_every = 0;
    assert_int_not_equal(sl_detect_model_config_check(&cfg, err, sizeof(err)),
                         0);
    assert_non_null(strstr(err, "retrain_every"));
}

/* B16 through the live path: features of a mostly constant humidity
 * series, one model, the 80.0 spike flagged and 50.0 not. */
static void test_model_b16_through_features(void **state)
{
    sl_detect_model_config_t cfg;
    sl_detect_model_t *model;
    sl_features_t st;
    double features[SL_FEATURES_MAX];
    sl_detect_model_result_t res;
    double odd[] = {49.0, 51.0, 50.5, 49.5, 52.0};
    sl_iforest_t *forest;
    sl_detect_snapshot_t *snap;
    sl_reading_t rec;

    (void)state;
    sl_detect_model_config_default(&cfg);
    cfg.window_size = 1000;
    model = sl_detect_model_create(&cfg);
    assert_non_null(model);
    assert_int_equal(sl_features_init(&st, &cfg.features), 0);
    for (int i = 0; i < 1000; i++) {
        rec = reading(10000 * (int64_t)i, i % 200 == 7 ? odd[i / 200] : 50.0);
        sl_features_update(&st, &rec, features);
        sl_detect_model_observe(model, features, &res);
    }
    snap = sl_detect_model_snapshot(model);
    forest = sl_detect_snapshot_train(snap, NULL, 0);
    sl_detect_snapshot_destroy(snap);
    assert_non_null(forest);
    assert_null(sl_detect_model_install(model, forest));

    rec = reading(10000000, 50.0);
    sl_features_update(&st, &rec, features);
    sl_detect_model_observe(model, features, &res);
    assert_true(res.scored);
    assert_true(isfinite(res.score));
    assert_false(res.anomaly);

    rec = reading(10010000, 80.0);
    sl_features_update(&st, &rec, features);
    sl_detect_model_observe(model, features, &res);
    assert_true(isfinite(res.score));
    assert_true(res.anomaly);
    sl_detect_model_destroy(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features_window_values),
        cmocka_unit_test(test_features_mask_selects),
        cmocka_unit_test(test_features_level_independent),
        cmocka_unit_test(test_features_constant_and_nan),
        cmocka_unit_test(test_features_out_of_order_rate),
        cmocka_unit_test(test_model_retrain_counting),
        cmocka_unit_test(test_model_unscored_without_forest),
        cmocka_unit_test(test_model_trains_on_other_thread),
        cmocka_unit_test(test_model_install_checks_features),
        cmocka_unit_test(test_model_config_rejected),
        cmocka_unit_test(test_model_b16_through_features),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
