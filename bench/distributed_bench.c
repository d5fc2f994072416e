/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Distributed mode end to end, in one process. A producer thread publishes
 * simulated readings through the publisher, batched
 * (sl_publisher_set_batch), to librdkafka's mock cluster. The processor stage
 * (sl_processor_start) consumes them through its own Kafka bus and writes
 * them to a throwaway PostgreSQL cluster (tests/support/pg_harness.c,
 * fsync off). The figure is readings per second from the first publish
 * to the moment the processor has stored the last reading. In the same
 * run, the same readings are written with a raw binary COPY into a table
 * with the same columns, key and CHECKs, in the processor's batch size,
 * and the pipeline's rate is reported as a fraction of that.
 *
 * The mock cluster keeps about 5 MiB per partition and deletes older data
 * whether or not it was consumed, so the producer keeps at most --window
 * readings published but not yet consumed. The run fails when the stored
 * count differs from the number published or any record was
 * dead-lettered.
 *
 * Usage: sluice_bench_distributed [--count N] [--sensors-per-type N]
 *                                 [--batch N] [--window N]
 *                                 [--fetch-wait-ms N]
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "bench_dist.h"
#include "bench_pg.h"
#include "pipeline/generator.h"
#include "pipeline/pipeline.h"
#include "pipeline/publish.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#define PARTITIONS SL_BENCH_DIST_PARTITIONS
#define TYPES 3
#define SEED 42
#define CHUNK SL_BENCH_DIST_CHUNK
#define STALL_MS 60000 /* no progress for this long fails the run */
/* 2026-01-01T00:00:00Z: event time of the first timed reading. */
#define T0_MS INT64_C(1767225600000)

struct options {
    size_t count;
    int sensors_per_type;
    int batch;
    size_t window;
    int fetch_wait_ms;
};

/* A simulation that hands out readings in a fixed order: every sensor at
 * one second of event time, then every sensor at the next second. */
struct series {
    sl_sensor_sim_t *sim;
    int sensors;
    int64_t t0_ms;
};

static int series_open(struct series *s, const struct options *opt,
                       int64_t t0_ms)
{
    sl_generator_config_t cfg;

    sl_generator_config_init(&cfg);
    cfg.sensors_per_type = opt->sensors_per_type;
    cfg.type_count = TYPES;
    cfg.seed = SEED;
    s->sim = sl_sensor_sim_create(&cfg);
    s->sensors = s->sim != NULL ? sl_sensor_sim_sensor_count(s->sim) : 0;
    s->t0_ms = t0_ms;
    return s->sim != NULL ? 0 : -1;
}

/* sl_bench_reading_fn: reading i; callers ask for i in increasing order. */
static void series_next(void *ctx, size_t i, sl_reading_t *rec)
{
    struct series *s = ctx;
    int64_t second = (int64_t)(i / (size_t)s->sensors);

    sl_sensor_sim_reading(s->sim, (int)(i % (size_t)s->sensors),
                          s->t0_ms + second * 1000, rec);
}

/* ---------------------------------------------------------------------- */
/* Producer thread                                                         */
/* ---------------------------------------------------------------------- */

struct producer {
    sl_publisher_t *pub;
    sl_processor_t *proc;
    struct series series;
    size_t first; /* index of the first reading, after the warm-up */
    size_t count;
    size_t window;
    uint64_t consumed_before; /* processor's count when this run began */
    size_t published;
    atomic_int failed; /* an sl_err code, or SL_OK */
    atomic_bool stop;  /* set by the main thread to end the thread early */
    pthread_t thread;
};

/* Waits until at most window - n readings are published but unconsumed,
 * so the mock's retention never deletes an unread record. Returns false
 * once p->stop is set. */
static bool pace(struct producer *p, size_t n)
{
    while (!atomic_load(&p->stop)) {
        sl_processor_stats_t stats;

        sl_processor_stats(p->proc, &stats);
        if (p->published + n <=
            (size_t)(stats.consumed - p->consumed_before) + p->window)
            return true;
        sl_time_sleep_ms(1);
    }
    return false;
}

/* Publishes readings [p->first, p->first + p->count) through the
 * publisher's batching. A full chunk is a full batch, which the publisher
 * hands to the bus without waiting for its acknowledgements. The last
 * chunk is flushed, which waits for all of them. pace() counts readings
 * in flight as published. */
static void *producer_main(void *arg)
{
    struct producer *p = arg;
    sl_publisher_stats_t stats;
    sl_reading_t rec;

    for (size_t done = 0; done < p->count;) {
        size_t n = p->count - done < CHUNK ? p->count - done : CHUNK;
        int rc = SL_OK;

        if (!pace(p, n))
            return NULL;
        for (size_t i = 0; i < n && rc == SL_OK; i++) {
            series_next(&p->series, p->first + done + i, &rec);
            rc = sl_publish_reading(p->pub, &rec);
        }
        if (rc == SL_OK && done + n == p->count)
            rc = sl_publisher_flush(p->pub);
        if (rc != SL_OK) {
            fprintf(stderr, "publishing failed near reading %zu: %s\n",
                    p->first + done, sl_strerror(rc));
            atomic_store(&p->failed, rc);
            return NULL;
        }
        done += n;
        p->published = done;
    }
    sl_publisher_stats(p->pub, &stats);
    if (stats.failed > 0 || stats.dead_lettered > 0) {
        fprintf(stderr,
                "the publisher failed %" PRIu64 " and dead-lettered %" PRIu64
                " records\n",
                stats.failed, stats.dead_lettered);
        atomic_store(&p->failed, SL_EIO);
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Set-up                                                                  */
/* ---------------------------------------------------------------------- */

static int parse_size(const char *flag, const char *text, size_t min,
                      size_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || text[0] == '-' || v < min) {
        fprintf(stderr,
                "%s: invalid value \"%s\"; expected an integer >= %zu\n", flag,
                text, min);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *opt)
{
    opt->count = 200000;
    opt->sensors_per_type = 999; /* the generator's maximum */
    opt->batch = 5000;           /* the processor's default batch-size */
    opt->window = 60000;
    opt->fetch_wait_ms = 1;
    for (int i = 1; i < argc; i++) {
        size_t v;

        if (i + 1 >= argc) {
            fprintf(stderr,
                    "usage: %s [--count N] [--sensors-per-type N] "
                    "[--batch N] [--window N] [--fetch-wait-ms N]\n",
                    argv[0]);
            return -1;
        }
        if (parse_size(argv[i], argv[i + 1], 0, &v) != 0)
            return -1;
        if (strcmp(argv[i], "--count") == 0 && v >= 1) {
            opt->count = v;
        } else if (strcmp(argv[i], "--sensors-per-type") == 0 && v >= 1 &&
                   v <= 999) {
            opt->sensors_per_type = (int)v;
        } else if (strcmp(argv[i], "--batch") == 0 && v >= 1 && v <= 1000000) {
            opt->batch = (int)v;
        } else if (strcmp(argv[i], "--window") == 0 && v >= CHUNK) {
            opt->window = v;
        } else if (strcmp(argv[i], "--fetch-wait-ms") == 0 && v <= 500) {
            opt->fetch_wait_ms = (int)v;
        } else {
            fprintf(stderr,
                    "%s %s: unknown option or value out of range "
                    "(--count >= 1, --sensors-per-type 1..999, "
                    "--batch 1..1000000, --window >= %d, "
                    "--fetch-wait-ms 0..500)\n",
                    argv[i], argv[i + 1], CHUNK);
            return -1;
        }
        i++;
    }
    return 0;
}

/* Waits until the processor has stored `target` readings in all, failing
 * when it makes no progress for STALL_MS or dead-letters a record. */
static int wait_stored(sl_processor_t *proc, uint64_t target,
                       struct producer *prod)
{
    uint64_t last = 0;
    int64_t last_change = sl_time_mono_ms();

    for (;;) {
        sl_processor_stats_t stats;

        sl_processor_stats(proc, &stats);
        if (stats.dead_lettered > 0) {
            fprintf(stderr, "%" PRIu64 " records were dead-lettered\n",
                    stats.dead_lettered);
            return -1;
        }
        if (stats.stored >= target)
            return 0;
        if (atomic_load(&prod->failed) != SL_OK)
            return -1;
        if (stats.stored != last) {
            last = stats.stored;
            last_change = sl_time_mono_ms();
        } else if (sl_time_mono_ms() - last_change > STALL_MS) {
            fprintf(stderr,
                    "no progress for %d s: stored %" PRIu64 " of %" PRIu64
                    ", consumed %" PRIu64 "\n",
                    STALL_MS / 1000, stats.stored, target, stats.consumed);
            return -1;
        }
        sl_time_sleep_ms(5);
    }
}

/* ---------------------------------------------------------------------- */
/* Main                                                                    */
/* ---------------------------------------------------------------------- */

struct run {
    struct options opt;
    sl_bench_dist_t d;
    struct producer prod;
};

/* Writes the readings with raw COPY. Returns the seconds, or -1. */
static double run_raw_copy(struct run *r)
{
    struct series s;
    PGconn *conn = PQconnectdb(r->d.pg.url);
    double seconds = -1;

    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "connecting failed: %s", PQerrorMessage(conn));
    } else if (series_open(&s, &r->opt, T0_MS) == 0) {
        seconds = sl_bench_raw_copy(conn, "raw_readings", r->opt.count,
                                    (size_t)r->opt.batch, series_next, &s);
        sl_sensor_sim_destroy(s.sim);
        /* The pipeline starts from the same database state. */
        PQclear(PQexec(conn, "DROP TABLE raw_readings"));
        PQclear(PQexec(conn, "CHECKPOINT"));
    }
    PQfinish(conn);
    return seconds;
}

/* Publishes count readings from index first with the producer thread and
 * waits until all are stored. Returns 0 or -1. */
static int publish_and_wait(struct run *r, size_t first, size_t count,
                            int64_t t0_ms)
{
    struct producer *p = &r->prod;
    sl_processor_stats_t stats;
    int rc;

    sl_processor_stats(r->d.proc, &stats);
    memset(p, 0, sizeof(*p));
    p->pub = r->d.publisher;
    p->proc = r->d.proc;
    p->first = first;
    p->count = count;
    p->window = r->opt.window;
    p->consumed_before = stats.consumed;
    atomic_init(&p->failed, SL_OK);
    atomic_init(&p->stop, false);
    if (series_open(&p->series, &r->opt, t0_ms) != 0)
        return -1;
    if (pthread_create(&p->thread, NULL, producer_main, p) != 0) {
        sl_sensor_sim_destroy(p->series.sim);
        return -1;
    }
    rc = wait_stored(r->d.proc, stats.stored + count, p);
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    sl_sensor_sim_destroy(p->series.sim);
    p->series.sim = NULL;
    return rc == 0 && atomic_load(&p->failed) == SL_OK ? 0 : -1;
}

static int64_t stored_count(const struct run *r)
{
    char err[512] = "";
    sl_store_t *st = sl_store_open(r->d.pg.url, err, sizeof(err));
    int64_t n = st != NULL ? sl_store_reading_count(st) : -1;

    sl_store_close(st);
    return n;
}

int main(int argc, char **argv)
{
    static struct run r;
    size_t sensors, warmup;
    double copy_s, pipe_s, self_cpu, server_cpu, rate, copy_rate;
    int64_t start_ns, stored;
    int status = 1;

    if (parse_options(argc, argv, &r.opt) != 0)
        return 2;
    sl_log_set_level(SL_LOG_WARN);
    r.d.batch = r.opt.batch;
    r.d.fetch_wait_ms = r.opt.fetch_wait_ms;
    sensors = (size_t)r.opt.sensors_per_type * TYPES;
    /* One reading per sensor, a minute before the timed series: it waits
     * out the group join (about 3 s on the mock), the producer's first
     * connection and the store's prepared statements. */
    warmup = sensors;

    if (sl_bench_dist_start_store(&r.d) != 0)
        goto out;
    copy_s = run_raw_copy(&r);
    if (copy_s < 0 || sl_bench_dist_start_pipeline(&r.d) != 0)
        goto out;
    if (publish_and_wait(&r, 0, warmup, T0_MS - 60000) != 0) {
        fprintf(stderr, "warm-up failed\n");
        goto out;
    }

    self_cpu = sl_bench_self_cpu_s();
    server_cpu = sl_bench_server_cpu_s(&r.d.pg);
    start_ns = sl_time_mono_ns();
    if (publish_and_wait(&r, 0, r.opt.count, T0_MS) != 0) {
        fprintf(stderr, "the timed run failed\n");
        goto out;
    }
    pipe_s = (double)(sl_time_mono_ns() - start_ns) / 1e9;
    self_cpu = sl_bench_self_cpu_s() - self_cpu;
    server_cpu = sl_bench_server_cpu_s(&r.d.pg) - server_cpu;

    stored = stored_count(&r);
    if (stored != (int64_t)(warmup + r.opt.count)) {
        fprintf(stderr,
                "FAILED: sensor_readings holds %" PRId64 " rows, expected "
                "%zu (%zu warm-up + %zu)\n",
                stored, warmup + r.opt.count, warmup, r.opt.count);
        goto out;
    }

    rate = (double)r.opt.count / pipe_s;
    copy_rate = (double)r.opt.count / copy_s;
    printf("readings=%zu sensors=%zu (%d types) batch=%d partitions=%d "
           "window=%zu\n",
           r.opt.count, sensors, TYPES, r.opt.batch, PARTITIONS, r.opt.window);
    printf("PostgreSQL: throwaway cluster, unix socket, fsync=off, "
           "synchronous_commit=off, full_page_writes=off\n");
    printf("Kafka: librdkafka %s mock cluster in this process, 1 broker, "
           "consumer fetch.wait.max.ms=%d\n",
           rd_kafka_version_str(), r.opt.fetch_wait_ms);
    printf("raw COPY BINARY:  %.2f s  %.0f rows/s\n", copy_s, copy_rate);
    printf("pipeline:         %.2f s  %.0f readings/s  (%.3f of raw COPY)\n",
           pipe_s, rate, rate / copy_rate);
    printf("stored readings:  %" PRId64 " (%zu warm-up + %zu), none "
           "dead-lettered\n",
           stored, warmup, r.opt.count);
    printf("CPU per million readings: %.2f s this process (producer, mock "
           "broker, processor), %.2f s PostgreSQL server\n",
           self_cpu * 1e6 / (double)r.opt.count,
           server_cpu * 1e6 / (double)r.opt.count);
    printf("peak RSS of this process: %.1f MiB (includes the mock broker's "
           "log)\n",
           sl_bench_peak_rss_mb());
    printf("mode=distributed readings_per_s=%.0f copy_rows_per_s=%.0f "
           "fraction_of_copy=%.3f peak_rss_mb=%.1f\n",
           rate, copy_rate, rate / copy_rate, sl_bench_peak_rss_mb());
    status = 0;

out:
    sl_bench_dist_stop(&r.d);
    return status;
}
