/* SPDX-License-Identifier: Apache-2.0 */
/* Isolation Forest: path-length arithmetic, reproducibility, ordering of
 * planted outliers, the file format and its rejection of bad files, and
 * degenerate training data (failure case B16 among them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "detect/iforest.h"
#include "util/hash.h"
#include "util/rng.h"

static char tmp_dir[256];

static int make_tmp_dir(void **state)
{
    const char *base = getenv("TMPDIR");

    (void)state;
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/iforest_test.XXXXXX",
             base != NULL ? base : "/tmp");
    return mkdtemp(tmp_dir) != NULL ? 0 : -1;
}

static int remove_tmp_dir(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void tmp_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmp_dir, name);
}

/* n rows of d standard normal features. */
static double *gaussian_rows(size_t n, size_t d, uint64_t seed)
{
    double *rows = malloc(n * d * sizeof(double));
    sl_rng_t rng;

    sl_rng_seed(&rng, seed);
    for (size_t i = 0; i < n * d; i++) {
        rows[i] = sl_rng_normal(&rng);
    }
    return rows;
}

static sl_iforest_t *train_default(const double *rows, size_t n, size_t d)
{
    sl_iforest_params_t params;
    char err[256] = "";
    sl_iforest_t *forest;

    sl_iforest_params_default(&params);
    forest = sl_iforest_train(rows, n, d, &params, err, sizeof(err));
    if (forest == NULL) {
        fail_msg("training failed: %s", err);
    }
    return forest;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf;
    long size;

    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    size = ftell(fp);
    rewind(fp);
    buf = malloc((size_t)size);
    assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    *len = (size_t)size;
    return buf;
}

static void write_all(const char *path, const uint8_t *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* ------------------------------------------------------------ arithmetic */

static void test_average_path_length_values(void **state)
{
    (void)state;
    /* Reference values from scikit-learn 1.2.1 _average_path_length. */
    assert_float_equal(sl_iforest_average_path_length(0), 0.0, 1e-12);
    assert_float_equal(sl_iforest_average_path_length(1), 0.0, 1e-12);
    assert_float_equal(sl_iforest_average_path_length(2), 1.0, 1e-12);
    assert_float_equal(sl_iforest_average_path_length(3), 1.20739236, 1e-8);
    assert_float_equal(sl_iforest_average_path_length(10), 3.74888048, 1e-8);
    assert_float_equal(sl_iforest_average_path_length(256), 10.24477092, 1e-8);
}

/* Two distinct rows, psi = 2: every tree is a root split into two leaves
 * of one row at depth 1, so h = 1 + c(1) = 1 and the score is
 * -2^(-1 / c(2)) = -0.5. */
static void test_path_length_two_rows(void **state)
{
    double rows[] = {0.0, 1.0};
    double probe = 0.25;
    sl_iforest_t *forest = train_default(rows, 2, 1);

    (void)state;
    assert_int_equal(sl_iforest_sample_size(forest), 2);
    assert_float_equal(sl_iforest_path_length(forest, &probe), 1.0, 1e-12);
    assert_float_equal(sl_iforest_score(forest, &probe), -0.5, 1e-12);
    sl_iforest_destroy(forest);
}

/* Ten equal rows cannot be split: h = 0 + c(10) and the score is
 * exactly -0.5, which the "auto" offset does not flag. */
static void test_path_length_unsplittable(void **state)
{
    double rows[10];
    double probe = 7.0;
    sl_iforest_t *forest;

    (void)state;
    for (int i = 0; i < 10; i++) {
        rows[i] = 7.0;
    }
    forest = train_default(rows, 10, 1);
    assert_float_equal(sl_iforest_path_length(forest, &probe), 3.74888048,
                       1e-6);
    assert_true(sl_iforest_score(forest, &probe) == -0.5);
    assert_false(sl_iforest_is_anomaly(forest, &probe));
    sl_iforest_destroy(forest);
}

/* ------------------------------------------------------------ behaviour */

static void test_same_seed_same_model(void **state)
{
    double *rows = gaussian_rows(1000, 3, 1);
    sl_iforest_t *a = train_default(rows, 1000, 3);
    sl_iforest_t *b = train_default(rows, 1000, 3);
    sl_iforest_params_t params;
    sl_iforest_t *c;
    char pa[300], pb[300], pc[300];
    size_t la, lb, lc;
    uint8_t *fa, *fb, *fc;

    (void)state;
    sl_iforest_params_default(&params);
    params.seed = 7;
    c = sl_iforest_train(rows, 1000, 3, &params, NULL, 0);
    assert_non_null(c);
    tmp_path(pa, sizeof(pa), "a.model");
    tmp_path(pb, sizeof(pb), "b.model");
    tmp_path(pc, sizeof(pc), "c.model");
    assert_int_equal(sl_iforest_save(a, pa, NULL, 0), 0);
    assert_int_equal(sl_iforest_save(b, pb, NULL, 0), 0);
    assert_int_equal(sl_iforest_save(c, pc, NULL, 0), 0);
    fa = read_all(pa, &la);
    fb = read_all(pb, &lb);
    fc = read_all(pc, &lc);
    assert_int_equal(la, lb);
    assert_memory_equal(fa, fb, la);
    assert_true(la != lc || memcmp(fa, fc, la) != 0);
    for (size_t i = 0; i < 50; i++) {
        assert_true(sl_iforest_score(a, rows + 3 * i) ==
                    sl_iforest_score(b, rows + 3 * i));
    }
    free(fa);
    free(fb);
    free(fc);
    free(rows);
    sl_iforest_destroy(a);
    sl_iforest_destroy(b);
    sl_iforest_destroy(c);
}

static void test_planted_outliers_score_lowest(void **state)
{
    double *rows = gaussian_rows(1000, 2, 3);
    double outliers[][2] = {{8.0, 8.0}, {-7.0, 5.0}, {0.0, -9.0}};
    double center[2] = {0.0, 0.0};
    sl_iforest_t *forest;
    double min_inlier = 0.0;

    (void)state;
    memcpy(rows, outliers, sizeof(outliers)); /* 3 outliers in training */
    forest = train_default(rows, 1000, 2);
    for (size_t i = 3; i < 1000; i++) {
        double s = sl_iforest_score(forest, rows + 2 * i);

        min_inlier = s < min_inlier ? s : min_inlier;
    }
    for (size_t k = 0; k < 3; k++) {
        double s = sl_iforest_score(forest, outliers[k]);

        assert_true(s < min_inlier);
        assert_true(s < -0.6);
        assert_true(sl_iforest_is_anomaly(forest, outliers[k]));
    }
    assert_false(sl_iforest_is_anomaly(forest, center));
    assert_true(sl_iforest_score(forest, center) > -0.5);
    free(rows);
    sl_iforest_destroy(forest);
}

static void test_contamination_sets_offset(void **state)
{
    double *rows = gaussian_rows(2000, 2, 5);
    sl_iforest_params_t params;
    sl_iforest_t *forest;
    size_t flagged = 0;

    (void)state;
    sl_iforest_params_default(&params);
    params.contamination = 0.05;
    forest = sl_iforest_train(rows, 2000, 2, &params, NULL, 0);
    assert_non_null(forest);
    assert_true(sl_iforest_offset(forest) < 0.0);
    assert_true(sl_iforest_offset(forest) > -1.0);
    for (size_t i = 0; i < 2000; i++) {
        flagged += sl_iforest_is_anomaly(forest, rows + 2 * i);
    }
    /* The offset is the 5 % quantile of these very scores. */
    assert_in_range(flagged, 95, 101);
    free(rows);
    sl_iforest_destroy(forest);
}

/* ------------------------------------------------------------ files */

static void test_save_load_same_scores(void **state)
{
    double *rows = gaussian_rows(800, 4, 9);
    sl_iforest_t *forest = train_default(rows, 800, 4);
    sl_iforest_t *loaded;
    char path[300];
    char err[512] = "";

    (void)state;
    tmp_path(path, sizeof(path), "round.model");
    assert_int_equal(sl_iforest_save(forest, path, err, sizeof(err)), 0);
    loaded = sl_iforest_load(path, err, sizeof(err));
    if (loaded == NULL) {
        fail_msg("load failed: %s", err);
    }
    assert_int_equal(sl_iforest_feature_count(loaded), 4);
    assert_int_equal(sl_iforest_tree_count(loaded), 100);
    assert_int_equal(sl_iforest_sample_size(loaded), 256);
    assert_int_equal(sl_iforest_row_count(loaded), 800);
    assert_true(sl_iforest_offset(loaded) == sl_iforest_offset(forest));
    for (size_t i = 0; i < 800; i++) {
        assert_true(sl_iforest_score(loaded, rows + 4 * i) ==
                    sl_iforest_score(forest, rows + 4 * i));
    }
    free(rows);
    sl_iforest_destroy(forest);
    sl_iforest_destroy(loaded);
}

/* Saves a small model and returns its bytes, for corrupting. */
static uint8_t *saved_model(const char *path, size_t *len)
{
    double *rows = gaussian_rows(300, 2, 11);
    sl_iforest_t *forest = train_default(rows, 300, 2);

    assert_int_equal(sl_iforest_save(forest, path, NULL, 0), 0);
    sl_iforest_destroy(forest);
    free(rows);
    return read_all(path, len);
}

static void expect_rejected(const char *path, const char *reason)
{
    char err[512] = "";
    sl_iforest_t *forest = sl_iforest_load(path, err, sizeof(err));

    assert_null(forest);
    if (strstr(err, path) == NULL || strstr(err, reason) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\" or the path", err, reason);
    }
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void test_load_rejects_bad_files(void **state)
{
    char path[300];
    char bad[300];
    size_t len;
    uint8_t *image;
    uint8_t *copy;

    (void)state;
    tmp_path(path, sizeof(path), "good.model");
    tmp_path(bad, sizeof(bad), "bad.model");
    image = saved_model(path, &len);
    copy = malloc(len);

    memcpy(copy, image, len);
    copy[len / 2] ^= 0x40;
    write_all(bad, copy, len);
    expect_rejected(bad, "checksum");

    write_all(bad, image, len - 9);
    expect_rejected(bad, "truncated");

    write_all(bad, image, 20);
    expect_rejected(bad, "magic");

    write_all(bad, (const uint8_t *)"timestamp,value\n1,2\n", 20);
    expect_rejected(bad, "magic");

    memcpy(copy, image, len);
    copy[8] = 9; /* format version 9 */
    write_all(bad, copy, len);
    expect_rejected(bad, "version");

    /* A valid checksum over a body that claims 1000 features: the counts
     * are checked before anything is allocated or read from them. */
    memcpy(copy, image, len);
    copy[32] = 0xe8;
    copy[33] = 0x03;
    put_le64(copy + 24, sl_hash_fnv1a(copy + 32, len - 32));
    write_all(bad, copy, len);
    expect_rejected(bad, "invalid model shape");

    tmp_path(bad, sizeof(bad), "missing.model");
    expect_rejected(bad, "open failed");
    free(copy);
    free(image);
}

static void test_save_reports_bad_directory(void **state)
{
    double rows[] = {1.0, 2.0, 3.0};
    sl_iforest_t *forest = train_default(rows, 3, 1);
    char path[300];
    char err[512] = "";

    (void)state;
    tmp_path(path, sizeof(path), "no/such/dir/x.model");
    assert_int_equal(sl_iforest_save(forest, path, err, sizeof(err)), -3);
    assert_non_null(strstr(err, "no/such/dir/x.model"));
    sl_iforest_destroy(forest);
}

/* ------------------------------------------------------------ B16 */

/* Reads the value column of a failure-case CSV
 * (sensor_id,sensor_type,ts_ms,ts_utc,value). */
static size_t read_case_values(const char *name, double *out, size_t cap)
{
    const char *source = getenv("SLUICE_SOURCE_DIR");
    char path[512];
    char line[256];
    size_t n = 0;
    FILE *fp;

    snprintf(path, sizeof(path), "%s/tests/fixtures/cases/B16/%s",
             source != NULL ? source : ".", name);
    fp = fopen(path, "r");
    if (fp == NULL) {
        fail_msg("failure case file %s not found", path);
    }
    assert_non_null(fgets(line, sizeof(line), fp));
    while (n < cap && fgets(line, sizeof(line), fp) != NULL) {
        char *comma = strrchr(line, ',');

        assert_non_null(comma);
        out[n++] = strtod(comma + 1, NULL);
    }
    fclose(fp);
    return n;
}

static void test_b16_mostly_constant(void **state)
{
    double train[2000];
    double probe[2];
    size_t n = read_case_values("train_mostly_constant.csv", train, 2000);
    size_t m = read_case_values("score.csv", probe, 2);
    clock_t t0 = clock();
    sl_iforest_t *a = train_default(train, n, 1);
    sl_iforest_t *b = train_default(train, n, 1);
    double seconds = (double)(clock() - t0) / CLOCKS_PER_SEC;

    (void)state;
    assert_int_equal(n, 1000);
    assert_int_equal(m, 2);
    assert_true(probe[0] == 50.0);
    assert_true(probe[1] == 80.0);
    assert_true(seconds < 2.0);
    assert_true(isfinite(sl_iforest_score(a, &probe[0])));
    assert_true(isfinite(sl_iforest_score(a, &probe[1])));
    assert_false(sl_iforest_is_anomaly(a, &probe[0]));
    assert_true(sl_iforest_is_anomaly(a, &probe[1]));
    assert_true(sl_iforest_score(a, &probe[0]) ==
                sl_iforest_score(b, &probe[0]));
    assert_true(sl_iforest_score(a, &probe[1]) ==
                sl_iforest_score(b, &probe[1]));
    sl_iforest_destroy(a);
    sl_iforest_destroy(b);
}

static void test_b16_constant_column(void **state)
{
    double values[1000];
    double rows[3000];
    double normal[3] = {50.0, 1.0, 0.0};
    double spike[3] = {80.0, 1.0, 0.0};
    size_t n = read_case_values("train_mostly_constant.csv", values, 1000);
    sl_iforest_t *forest;

    (void)state;
    for (size_t i = 0; i < n; i++) {
        rows[3 * i] = values[i];
        rows[3 * i + 1] = 1.0; /* a status flag that never changes */
        rows[3 * i + 2] = 0.0;
    }
    forest = train_default(rows, n, 3);
    assert_true(isfinite(sl_iforest_score(forest, normal)));
    assert_true(isfinite(sl_iforest_score(forest, spike)));
    assert_false(sl_iforest_is_anomaly(forest, normal));
    assert_true(sl_iforest_is_anomaly(forest, spike));
    sl_iforest_destroy(forest);
}

/* ------------------------------------------------------------ degenerate */

static void test_constant_series_scores_finite(void **state)
{
    double rows[500];
    double same = 3.0;
    double other = -1e300;
    sl_iforest_t *forest;

    (void)state;
    for (int i = 0; i < 500; i++) {
        rows[i] = 3.0;
    }
    forest = train_default(rows, 500, 1);
    assert_true(sl_iforest_score(forest, &same) == -0.5);
    assert_true(isfinite(sl_iforest_score(forest, &other)));
    sl_iforest_destroy(forest);
}

static void test_fewer_rows_than_samples(void **state)
{
    double rows[] = {1.0, 2.0, 3.0, 4.0, 100.0};
    double probe = 100.0;
    double typical = 2.5;
    sl_iforest_t *forest = train_default(rows, 5, 1);

    (void)state;
    assert_int_equal(sl_iforest_sample_size(forest), 5);
    assert_true(isfinite(sl_iforest_score(forest, &probe)));
    assert_true(sl_iforest_score(forest, &probe) <
                sl_iforest_score(forest, &typical));
    sl_iforest_destroy(forest);
}

static void test_nan_training_rows_dropped(void **state)
{
    double rows[] = {1.0, 0.0, NAN, 1.0, 2.0, 1.0, 3.0, INFINITY, 4.0, 2.0};
    double nan_only[] = {NAN, NAN, 1.0, NAN};
    char err[256] = "";
    sl_iforest_params_t params;
    sl_iforest_t *forest = train_default(rows, 5, 2);

    (void)state;
    assert_int_equal(sl_iforest_row_count(forest), 3);
    sl_iforest_destroy(forest);

    sl_iforest_params_default(&params);
    assert_null(sl_iforest_train(nan_only, 2, 2, &params, err, sizeof(err)));
    assert_non_null(strstr(err, "at least 2 rows"));
}

static void test_nan_scoring_uses_mean(void **state)
{
    double *rows = gaussian_rows(500, 2, 13);
    sl_iforest_t *forest = train_default(rows, 500, 2);
    double mean[2] = {0.0, 0.0};
    double with_nan[2] = {NAN, NAN};
    double with_inf[2] = {INFINITY, -INFINITY};

    (void)state;
    for (size_t i = 0; i < 500; i++) {
        mean[0] += rows[2 * i] / 500.0;
        mean[1] += rows[2 * i + 1] / 500.0;
    }
    assert_float_equal(sl_iforest_score(forest, with_nan),
                       sl_iforest_score(forest, mean), 1e-12);
    assert_true(isfinite(sl_iforest_score(forest, with_inf)));
    assert_true(sl_iforest_is_anomaly(forest, with_inf));
    free(rows);
    sl_iforest_destroy(forest);
}

static void test_invalid_params_rejected(void **state)
{
    double rows[] = {1.0, 2.0, 3.0};
    sl_iforest_params_t params;
    char err[256] = "";

    (void)state;
    sl_iforest_params_default(&params);
    params.tree_count = 0;
    assert_null(sl_iforest_train(rows, 3, 1, &params, err, sizeof(err)));
    assert_non_null(strstr(err, "tree_count"));

    sl_iforest_params_default(&params);
    params.contamination = 0.7;
    assert_null(sl_iforest_train(rows, 3, 1, &params, err, sizeof(err)));
    assert_non_null(strstr(err, "contamination"));

    sl_iforest_params_default(&params);
    assert_null(sl_iforest_train(rows, 3, 0, &params, err, sizeof(err)));
    assert_non_null(strstr(err, "feature count"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_average_path_length_values),
        cmocka_unit_test(test_path_length_two_rows),
        cmocka_unit_test(test_path_length_unsplittable),
        cmocka_unit_test(test_same_seed_same_model),
        cmocka_unit_test(test_planted_outliers_score_lowest),
        cmocka_unit_test(test_contamination_sets_offset),
        cmocka_unit_test(test_save_load_same_scores),
        cmocka_unit_test(test_load_rejects_bad_files),
        cmocka_unit_test(test_save_reports_bad_directory),
        cmocka_unit_test(test_b16_mostly_constant),
        cmocka_unit_test(test_b16_constant_column),
        cmocka_unit_test(test_constant_series_scores_finite),
        cmocka_unit_test(test_fewer_rows_than_samples),
        cmocka_unit_test(test_nan_training_rows_dropped),
        cmocka_unit_test(test_nan_scoring_uses_mean),
        cmocka_unit_test(test_invalid_params_rejected),
    };

    return cmocka_run_group_tests(tests, make_tmp_dir, remove_tmp_dir);
}
