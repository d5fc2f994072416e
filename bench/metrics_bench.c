/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Measures what a metric update costs on the hot path: sl_counter_add()
 * (one relaxed atomic add) and sl_histogram_observe() (a bucket search,
 * an atomic add and a compare-and-swap loop on the sum), each from one
 * thread and from two threads updating the same series. The baseline, in
 * the same run, is a plain non-atomic increment of a uint64_t in memory,
 * the cheapest counter possible; from two threads each thread increments
 * its own variable, because sharing one would lose updates.
 *
 * Each figure is the median of 5 runs of N updates per thread (default
 * 20,000,000), in nanoseconds per update as one thread sees it.
 *
 *   cmake --build build --target sluice_bench_metrics
 *   build/bench/metrics_bench [updates_per_thread]
 *
 * Use a build without sanitizers: ASan and UBSan instrument every access
 * and would dominate the figures.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/metrics.h"
#include "util/timeutil.h"

#define RUNS 5
#define MAX_THREADS 2

/* Keeps the compiler from folding the loop into one add, so the baseline
 * does one load and one store per iteration as a real counter would. */
#define CLOBBER_MEMORY() __asm__ volatile("" ::: "memory")

typedef enum workload {
    PLAIN_INCREMENT,
    COUNTER_ADD,
    HISTOGRAM_OBSERVE,
} workload_t;

/* Per-thread variables of the baseline, a cache line apart so the two
 * threads do not share one. */
typedef struct padded {
    uint64_t value;
    char pad[64 - sizeof(uint64_t)];
} padded_t;

static padded_t plain[MAX_THREADS];
static sl_counter_t *counter;
static sl_histogram_t *histogram;

typedef struct job {
    workload_t workload;
    int index;
    uint64_t updates;
    pthread_barrier_t *start;
} job_t;

static void *run_job(void *arg)
{
    job_t *job = arg;
    uint64_t *mine = &plain[job->index].value;

    pthread_barrier_wait(job->start);
    switch (job->workload) {
    case PLAIN_INCREMENT:
        for (uint64_t i = 0; i < job->updates; i++) {
            (*mine)++;
            CLOBBER_MEMORY();
        }
        break;
    case COUNTER_ADD:
        for (uint64_t i = 0; i < job->updates; i++)
            sl_counter_add(counter, 1);
        break;
    case HISTOGRAM_OBSERVE:
        /* Latencies from 0.1 ms to 3.3 s, so the bucket search walks
         * different distances as a real latency series does. */
        for (uint64_t i = 0; i < job->updates; i++)
            sl_histogram_observe(histogram, 0.0001 * (double)(1u << (i & 15)));
        break;
    }
    return NULL;
}

/* Returns nanoseconds per update of one run with threads threads. */
static double time_run(workload_t workload, int threads, uint64_t updates)
{
    pthread_t tids[MAX_THREADS];
    job_t jobs[MAX_THREADS];
    pthread_barrier_t start;
    int64_t begin;

    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job_t){workload, t, updates, &start};
        if (pthread_create(&tids[t], NULL, run_job, &jobs[t]) != 0) {
            perror("pthread_create");
            exit(1);
        }
    }
    begin = sl_time_mono_ns();
    pthread_barrier_wait(&start);
    for (int t = 0; t < threads; t++)
        pthread_join(tids[t], NULL);
    pthread_barrier_destroy(&start);
    return (double)(sl_time_mono_ns() - begin) / (double)updates;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median_run(workload_t workload, int threads, uint64_t updates)
{
    double ns[RUNS];

    for (int r = 0; r < RUNS; r++)
        ns[r] = time_run(workload, threads, updates);
    qsort(ns, RUNS, sizeof(ns[0]), compare_doubles);
    return ns[RUNS / 2];
}

int main(int argc, char **argv)
{
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                    0.05,   0.1,   0.25,   0.5,   1,    2.5};
    static const struct {
        workload_t workload;
        const char *name;
    } rows[] = {
        {PLAIN_INCREMENT, "plain increment (baseline)"},
        {COUNTER_ADD, "sl_counter_add"},
        {HISTOGRAM_OBSERVE, "sl_histogram_observe"},
    };
    uint64_t updates = 20000000;

    if (argc > 1)
        updates = strtoull(argv[1], NULL, 10);
    if (updates == 0) {
        fprintf(stderr, "usage: metrics_bench [updates_per_thread > 0]\n");
        return 2;
    }
    counter = sl_metrics_counter("sluice_bench_updates_total", "Bench", NULL);
    histogram =
        sl_metrics_histogram("sluice_bench_latency_seconds", "Bench", bounds,
                             sizeof(bounds) / sizeof(bounds[0]), NULL);
    if (counter == NULL || histogram == NULL) {
        fprintf(stderr, "metrics_bench: cannot register the series\n");
        return 1;
    }

    printf("updates per thread: %llu, median of %d runs, ns per update\n",
           (unsigned long long)updates, RUNS);
    printf("%-28s %10s %10s\n", "operation", "1 thread", "2 threads");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        double one = median_run(rows[i].workload, 1, updates);
        double two = median_run(rows[i].workload, 2, updates);
        printf("%-28s %10.2f %10.2f\n", rows[i].name, one, two);
    }

    /* Every update must have landed: 1 + 2 threads, RUNS runs each. */
    if (sl_counter_value(counter) != updates * 3 * RUNS) {
        fprintf(stderr, "metrics_bench: counter lost updates: %llu\n",
                (unsigned long long)sl_counter_value(counter));
        return 1;
    }
    sl_metrics_reset();
    return 0;
}
