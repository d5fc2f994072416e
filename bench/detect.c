/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NAB benchmark of the anomaly detector. Runs every series listed in
 * DIR/labels/combined_windows.json through the same code as the live
 * detector (per-sensor features from features.h, the per-type online
 * model and retraining from model.h) and scores the result under the
 * protocol of the scikit-learn baseline script nab_baseline.py:
 *
 * - the first P = min(floor(0.15 n), 750) points are probation: the model
 *   learns from them and at point P a forest is trained on them; metrics
 *   cover points P..n-1 only;
 * - a point is positive when start <= timestamp <= end for a label window;
 * - ROC-AUC (ties count one half), PR-AUC as average precision, label
 *   windows hit and flagged points outside windows at the detector's own
 *   threshold, and the same at a budget of the ceil(1 % of n - P) highest
 *   scores (ties: earlier point first).
 *
 * Retraining runs inline here (the live stage trains on another thread),
 * so a new forest scores from the very next point. readings_per_s is n
 * over the time of feature extraction and scoring (best of --repeats
 * runs); training time is reported separately.
 *
 * XXX: the detector defaults were chosen by a sweep over these same 12
 * series, so the figures are in-sample; no held-out NAB series is run.
 *
 * With --scores DIR it writes DIR/<category>/<file>.csv with header
 * "score,flag" (score: higher = more anomalous), which nab_baseline.py
 * --external NAME=DIR scores with its own metric code.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "detect/features.h"
#include "detect/iforest.h"
#include "detect/model.h"
#include "util/timeutil.h"

#define PROBATION_FRACTION 0.15
#define PROBATION_CAP 750
#define BUDGET_FRACTION 0.01
#define MAX_WINDOWS 16

typedef struct series {
    char name[512];
    size_t n;
    int64_t *ts_ms;
    double *value;
    size_t window_count;
    int64_t win_start[MAX_WINDOWS];
    int64_t win_end[MAX_WINDOWS];
} series_t;

typedef struct run_output {
    double *score; /* higher = more anomalous; 0 before a forest exists */
    uint8_t *flag;
    double score_s; /* features + scoring, training excluded */
    double train_s;
    unsigned retrains;
} run_output_t;

typedef struct metrics {
    double roc_auc;
    double pr_auc;
    size_t hit;
    size_t fp;
    size_t flags;
    size_t budget_hit;
    size_t budget_fp;
    size_t budget_k;
    size_t scored;
    size_t positives;
} metrics_t;

typedef struct options {
    const char *data_dir;
    const char *scores_dir;
    int repeats;
    sl_detect_model_config_t cfg;
} options_t;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------ loading */

/* Parses "YYYY-MM-DD HH:MM:SS", ignoring any fraction after it. */
static int parse_time(const char *text, int64_t *ms)
{
    char head[20];

    if (strlen(text) < 19) {
        return -1;
    }
    memcpy(head, text, 19);
    head[19] = '\0';
    return sl_time_parse_iso8601(head, ms) == 0 ? 0 : -1;
}

static int load_csv(const char *path, series_t *s)
{
    FILE *fp = fopen(path, "r");
    char line[256];
    size_t cap = 1024;

    if (fp == NULL) {
        fprintf(stderr, "detect: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    s->ts_ms = malloc(cap * sizeof(int64_t));
    s->value = malloc(cap * sizeof(double));
    s->n = 0;
    if (fgets(line, sizeof(line), fp) == NULL) { /* header */
        fclose(fp);
        return -1;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        char *comma = strchr(line, ',');

        if (comma == NULL) {
            continue;
        }
        *comma = '\0';
        if (s->n == cap) {
            cap *= 2;
            int64_t *ts = realloc(s->ts_ms, cap * sizeof(int64_t));
            double *val =
                ts != NULL ? realloc(s->value, cap * sizeof(double)) : NULL;

            if (ts != NULL) {
                s->ts_ms = ts;
            }
            if (val == NULL) {
                fprintf(stderr, "detect: %s: out of memory\n", path);
                fclose(fp);
                return -1;
            }
            s->value = val;
        }
        if (parse_time(line, &s->ts_ms[s->n]) != 0) {
            fprintf(stderr, "detect: %s: invalid timestamp %s\n", path, line);
            fclose(fp);
            return -1;
        }
        s->value[s->n] = strtod(comma + 1, NULL);
        s->n++;
    }
    fclose(fp);
    return 0;
}

static int load_windows(json_t *spans, series_t *s)
{
    size_t i;
    json_t *span;

    s->window_count = 0;
    json_array_foreach(spans, i, span)
    {
        const char *lo = json_string_value(json_array_get(span, 0));
        const char *hi = json_string_value(json_array_get(span, 1));

        if (lo == NULL || hi == NULL || i >= MAX_WINDOWS ||
            parse_time(lo, &s->win_start[i]) != 0 ||
            parse_time(hi, &s->win_end[i]) != 0) {
            fprintf(stderr, "detect: %s: invalid label window %zu\n", s->name,
                    i);
            return -1;
        }
        s->window_count++;
    }
    return 0;
}

/* Returns the window index containing t, or -1. */
static int window_of(const series_t *s, int64_t t)
{
    for (size_t w = 0; w < s->window_count; w++) {
        if (t >= s->win_start[w] && t <= s->win_end[w]) {
            return (int)w;
        }
    }
    return -1;
}

static size_t probation_of(size_t n)
{
    size_t p = (size_t)floor(PROBATION_FRACTION * (double)n);

    return p < PROBATION_CAP ? p : PROBATION_CAP;
}

/* ------------------------------------------------------------ running */

/* Trains the model's snapshot inline and installs the new forest. */
static void retrain(sl_detect_model_t *model, run_output_t *out)
{
    char err[256];
    double t0 = now_s();
    sl_detect_snapshot_t *snap = sl_detect_model_snapshot(model);
    sl_iforest_t *forest;

    if (snap == NULL) {
        return;
    }
    forest = sl_detect_snapshot_train(snap, err, sizeof(err));
    sl_detect_snapshot_destroy(snap);
    if (forest == NULL) {
        fprintf(stderr, "detect: training failed: %s\n", err);
    } else {
        sl_iforest_destroy(sl_detect_model_install(model, forest));
        out->retrains++;
    }
    out->train_s += now_s() - t0;
}

/* Feeds the whole series through features and the per-type model. */
static int run_series(const series_t *s, const sl_detect_model_config_t *cfg,
                      run_output_t *out)
{
    sl_detect_model_t *model = sl_detect_model_create(cfg);
    sl_features_t st;
    sl_reading_t rec;
    double features[SL_FEATURES_MAX];
    size_t probation = probation_of(s->n);
    double t0;

    if (model == NULL || sl_features_init(&st, &cfg->features) != 0) {
        sl_detect_model_destroy(model);
        return -1;
    }
    memset(&rec, 0, sizeof(rec));
    rec.sensor_type = SL_SENSOR_OTHER;
    rec.battery_level = 100; /* NAB has no metadata: constant columns */
    rec.signal_strength = -60;
    out->train_s = 0.0;
    out->retrains = 0;

    t0 = now_s();
    for (size_t i = 0; i < s->n; i++) {
        sl_detect_model_result_t res;

        if (i == probation) {
            retrain(model, out); /* model_0: trained on the probation */
        }
        rec.timestamp_ms = s->ts_ms[i];
        rec.value = s->value[i];
        sl_features_update(&st, &rec, features);
        sl_detect_model_observe(model, features, &res);
        out->score[i] = res.scored ? -res.score : 0.0;
        out->flag[i] = res.anomaly;
        if (res.retrain_due && i >= probation) {
            retrain(model, out);
        }
    }
    out->score_s = now_s() - t0 - out->train_s;
    sl_detect_model_destroy(model);
    return 0;
}

/* ------------------------------------------------------------ metrics */

typedef struct ranked {
    double score;
    size_t index;
    bool positive;
} ranked_t;

/* Descending score; ties keep the earlier point first. */
static int by_score_desc(const void *a, const void *b)
{
    const ranked_t *x = a;
    const ranked_t *y = b;

    if (x->score != y->score) {
        return x->score < y->score ? 1 : -1;
    }
    return (x->index > y->index) - (x->index < y->index);
}

/* ROC-AUC and average precision over ranked[0..m), sorted descending.
 * Tied scores form one threshold step, as in scikit-learn. */
static void rank_metrics(const ranked_t *ranked, size_t m, size_t positives,
                         metrics_t *out)
{
    size_t negatives = m - positives;
    double tp = 0.0;
    double fp = 0.0;
    double auc = 0.0;
    double ap = 0.0;
    double prev_recall = 0.0;

    for (size_t i = 0; i < m;) {
        size_t j = i;
        double tp_step = 0.0;
        double fp_step = 0.0;

        while (j < m && ranked[j].score == ranked[i].score) {
            if (ranked[j].positive) {
                tp_step += 1.0;
            } else {
                fp_step += 1.0;
            }
            j++;
        }
        /* Trapezoid under the ROC step: ties count one half. */
        auc += fp_step * (tp + tp_step / 2.0);
        tp += tp_step;
        fp += fp_step;
        if (tp_step > 0.0) {
            double recall = tp / (double)positives;

            ap += (recall - prev_recall) * (tp / (tp + fp));
            prev_recall = recall;
        }
        i = j;
    }
    out->roc_auc = positives > 0 && negatives > 0
                       ? auc / ((double)positives * (double)negatives)
                       : NAN;
    out->pr_auc = positives > 0 ? ap : NAN;
}

static size_t count_hits(const bool *hit, size_t windows)
{
    size_t count = 0;

    for (size_t w = 0; w < windows; w++) {
        count += hit[w];
    }
    return count;
}

static void compute_metrics(const series_t *s, const run_output_t *run,
                            metrics_t *out)
{
    size_t p = probation_of(s->n);
    size_t m = s->n - p;
    ranked_t *ranked = malloc(m * sizeof(ranked_t));
    bool hit[MAX_WINDOWS] = {false};
    bool budget_hit[MAX_WINDOWS] = {false};

    memset(out, 0, sizeof(*out));
    out->scored = m;
    for (size_t i = p; i < s->n; i++) {
        int w = window_of(s, s->ts_ms[i]);

        ranked[i - p] = (ranked_t){run->score[i], i, w >= 0};
        out->positives += w >= 0;
        if (run->flag[i]) {
            out->flags++;
            if (w >= 0) {
                hit[w] = true;
            } else {
                out->fp++;
            }
        }
    }
    qsort(ranked, m, sizeof(ranked_t), by_score_desc);
    rank_metrics(ranked, m, out->positives, out);

    out->budget_k = (size_t)ceil(BUDGET_FRACTION * (double)m);
    for (size_t k = 0; k < out->budget_k && k < m; k++) {
        int w = window_of(s, s->ts_ms[ranked[k].index]);

        if (w >= 0) {
            budget_hit[w] = true;
        } else {
            out->budget_fp++;
        }
    }
    out->hit = count_hits(hit, s->window_count);
    out->budget_hit = count_hits(budget_hit, s->window_count);
    free(ranked);
}

/* ------------------------------------------------------------ output */

static int make_dirs(char *path)
{
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                *p = '/';
                return -1;
            }
            *p = '/';
        }
    }
    return 0;
}

static int write_scores(const char *dir, const series_t *s,
                        const run_output_t *run)
{
    char path[1024];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, s->name);
    if (make_dirs(path) != 0 || (fp = fopen(path, "w")) == NULL) {
        fprintf(stderr, "detect: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(fp, "score,flag\n");
    for (size_t i = 0; i < s->n; i++) {
        fprintf(fp, "%.17g,%d\n", run->score[i], run->flag[i] ? 1 : 0);
    }
    return fclose(fp) == 0 ? 0 : -1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: detect [--data DIR] [--scores DIR] [--repeats N]\n"
            "              [--mask HEX] [--window N] [--long-span N]\n"
            "              [--window-size N] [--retrain-every N]\n"
            "              [--contamination F] [--trees N] [--samples N]\n"
            "  --data DIR     folder with data/ and labels/ (default: the\n"
            "                 NAB subset beside the source tree)\n"
            "  --scores DIR   write DIR/<category>/<file>.csv (score,flag)\n"
            "  --repeats N    timing runs per series, best kept (default 3)\n"
            "  other options override the detector defaults for exploring\n");
}

static int parse_options(int argc, char **argv, options_t *opt)
{
    opt->data_dir = SLUICE_SOURCE_DIR "/../shared/data/nab";
    opt->scores_dir = NULL;
    opt->repeats = 3;
    sl_detect_model_config_default(&opt->cfg);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (val == NULL) {
            usage();
            return -1;
        }
        i++;
        if (strcmp(arg, "--data") == 0) {
            opt->data_dir = val;
        } else if (strcmp(arg, "--scores") == 0) {
            opt->scores_dir = val;
        } else if (strcmp(arg, "--repeats") == 0) {
            opt->repeats = atoi(val);
        } else if (strcmp(arg, "--mask") == 0) {
            opt->cfg.features.mask = (uint32_t)strtoul(val, NULL, 16);
        } else if (strcmp(arg, "--window") == 0) {
            opt->cfg.features.window = (uint32_t)atoi(val);
        } else if (strcmp(arg, "--long-span") == 0) {
            opt->cfg.features.long_span = (uint32_t)atoi(val);
        } else if (strcmp(arg, "--window-size") == 0) {
            opt->cfg.window_size = (uint32_t)atoi(val);
        } else if (strcmp(arg, "--retrain-every") == 0) {
            opt->cfg.retrain_every = (uint32_t)atoi(val);
        } else if (strcmp(arg, "--contamination") == 0) {
            opt->cfg.forest.contamination = strtod(val, NULL);
        } else if (strcmp(arg, "--trees") == 0) {
            opt->cfg.forest.tree_count = (uint32_t)atoi(val);
        } else if (strcmp(arg, "--samples") == 0) {
            opt->cfg.forest.max_samples = (uint32_t)atoi(val);
        } else {
            usage();
            return -1;
        }
    }
    if (opt->repeats < 1) {
        opt->repeats = 1;
    }
    return 0;
}

/* ------------------------------------------------------------ main */

typedef struct totals {
    double roc, pr, recall;
    size_t files, hit, windows, fp, flags, budget_hit, budget_fp, points;
    double score_s, train_s;
} totals_t;

static int bench_series(const options_t *opt, const char *rel, json_t *spans,
                        totals_t *tot)
{
    series_t s;
    run_output_t run;
    metrics_t m;
    char path[1024];
    int rc = -1;

    memset(&s, 0, sizeof(s));
    memset(&run, 0, sizeof(run));
    snprintf(s.name, sizeof(s.name), "%s", rel);
    snprintf(path, sizeof(path), "%s/data/%s", opt->data_dir, rel);
    if (load_csv(path, &s) != 0 || load_windows(spans, &s) != 0) {
        goto out;
    }
    if (s.n < 2) {
        fprintf(stderr, "detect: %s: too few rows (%zu)\n", rel, s.n);
        goto out;
    }
    run.score = calloc(s.n, sizeof(double));
    run.flag = calloc(s.n, 1);
    if (run.score == NULL || run.flag == NULL) {
        goto out;
    }

    double best = INFINITY;

    for (int r = 0; r < opt->repeats; r++) {
        if (run_series(&s, &opt->cfg, &run) != 0) {
            fprintf(stderr, "detect: invalid detector config\n");
            goto out;
        }
        best = run.score_s < best ? run.score_s : best;
    }
    run.score_s = best;
    compute_metrics(&s, &run, &m);
    if (opt->scores_dir != NULL && write_scores(opt->scores_dir, &s, &run)) {
        goto out;
    }

    printf("| %s | %zu | %zu | %.1f | %.3f | %.3f | %zu/%zu | %zu | %zu | "
           "%zu/%zu | %zu | %.0f | %.1f | %u |\n",
           rel, s.n, probation_of(s.n),
           100.0 * (double)m.positives / (double)m.scored, m.roc_auc, m.pr_auc,
           m.hit, s.window_count, m.fp, m.flags, m.budget_hit, s.window_count,
           m.budget_fp, (double)s.n / run.score_s, run.train_s * 1e3,
           run.retrains);
    tot->files++;
    tot->roc += m.roc_auc;
    tot->pr += m.pr_auc;
    tot->recall += (double)m.hit / (double)s.window_count;
    tot->hit += m.hit;
    tot->windows += s.window_count;
    tot->fp += m.fp;
    tot->flags += m.flags;
    tot->budget_hit += m.budget_hit;
    tot->budget_fp += m.budget_fp;
    tot->points += s.n;
    tot->score_s += run.score_s;
    tot->train_s += run.train_s;
    rc = 0;

out:
    free(s.ts_ms);
    free(s.value);
    free(run.score);
    free(run.flag);
    return rc;
}

static void print_config(const sl_detect_model_config_t *cfg)
{
    printf("config: features mask=0x%x (", cfg->features.mask);
    for (int f = 0; f < SL_FEAT_COUNT; f++) {
        if (cfg->features.mask & (1u << f)) {
            printf(" %s", sl_feature_name((sl_feature_t)f));
        }
    }
    printf(" ) window=%u long_span=%u; model window_size=%u "
           "retrain_every=%u min_samples=%u; forest trees=%u samples=%u "
           "contamination=%g seed=%llu\n\n",
           cfg->features.window, cfg->features.long_span, cfg->window_size,
           cfg->retrain_every, cfg->min_samples, cfg->forest.tree_count,
           cfg->forest.max_samples, cfg->forest.contamination,
           (unsigned long long)cfg->forest.seed);
}

static void print_summary(const totals_t *tot)
{
    double n = (double)tot->files;
    double pps = (double)tot->points / tot->score_s;

    printf("\n| mean over %zu files | ROC-AUC %.3f | PR-AUC %.3f | "
           "recall %.3f (%zu/%zu) | FP %zu | flags %zu | @1%% %zu/%zu | "
           "FP @1%% %zu | %.0f readings/s | e2e %.0f readings/s |\n\n",
           tot->files, tot->roc / n, tot->pr / n, tot->recall / n, tot->hit,
           tot->windows, tot->fp, tot->flags, tot->budget_hit, tot->windows,
           tot->budget_fp, pps,
           (double)tot->points / (tot->score_s + tot->train_s));
    printf("mean roc_auc=%.3f pr_auc=%.3f event_recall=%.3f "
           "false_positives=%zu readings_per_s=%.0f\n",
           tot->roc / n, tot->pr / n, tot->recall / n, tot->fp, pps);
}

int main(int argc, char **argv)
{
    options_t opt;
    char path[1024];
    json_error_t jerr;
    json_t *labels;
    const char *rel;
    json_t *spans;
    totals_t tot;
    char err[256];

    if (parse_options(argc, argv, &opt) != 0) {
        return 2;
    }
    if (sl_detect_model_config_check(&opt.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "detect: %s\n", err);
        return 2;
    }
    snprintf(path, sizeof(path), "%s/labels/combined_windows.json",
             opt.data_dir);
    labels = json_load_file(path, 0, &jerr);
    if (labels == NULL || !json_is_object(labels)) {
        fprintf(stderr, "detect: cannot read %s: %s\n", path, jerr.text);
        return 1;
    }
    memset(&tot, 0, sizeof(tot));
    print_config(&opt.cfg);
    printf("| file | n | P | pos%% | ROC-AUC | PR-AUC | windows hit | FP pts "
           "| flags | hit @1%% | FP @1%% | readings/s | train ms | "
           "trainings |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:"
           "|---:|\n");
    /* json_object_foreach walks keys in sorted order for files written
     * with sorted keys; the script sorts them too. */
    json_object_foreach(labels, rel, spans)
    {
        if (bench_series(&opt, rel, spans, &tot) != 0) {
            json_decref(labels);
            return 1;
        }
    }
    json_decref(labels);
    if (tot.files == 0) {
        fprintf(stderr, "detect: no series in %s\n", path);
        return 1;
    }
    print_summary(&tot);
    return 0;
}
