/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `sluice bench`: drives the pipeline in this process and prints one table
 * and one summary line.
 *
 * A producer thread creates simulated readings, each stamped with its
 * creation time as event time, and publishes them through the publisher
 * (Avro, batched) at --rate readings/s or flat out, for --count readings
 * or --duration seconds. The processor consumes them, validates them,
 * feeds the windows and writes them to the store. Its on_stored hook,
 * called right after each store commit, times every reading from creation
 * to stored (1 ms resolution: event times are milliseconds).
 *
 * The real API server runs in the process too, on 127.0.0.1 with a free
 * port, with its WebSocket hub in its own consumer group, as in `sluice
 * run` and `sluice api`. One WebSocket client on a thread of its own
 * follows --ws-sensors sensors on /ws/sensors over loopback and times each
 * reading from creation to its receipt (bench/bench_ws.c). A sample of
 * sensors keeps the client's share of the work small: the hub renders
 * only the readings some client's filter matches.
 *
 * standalone: in-process bus and SQLite in a temporary folder.
 * distributed: librdkafka's mock cluster and a throwaway PostgreSQL
 * (bench/bench_dist.c), with the consumers' fetch.wait.max.ms at 1.
 *
 * In the same run, the raw limits of the slowest stages are measured on
 * the same generated rows. Standalone, that is a prepared INSERT in
 * 10,000-row transactions into a table with the definition and indexes of
 * sensor_readings. Distributed, it is binary COPY in the processor's
 * batch size, and librdkafka produce+consume on the mock cluster. The
 * pipeline's rate is printed as a fraction of each.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_dist.h"
#include "bench_kafka.h"
#include "bench_pg.h"
#include "bench_sqlite.h"
#include "bench_ws.h"
#include "pipeline/generator.h"
#include "roles/roles.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#define RAW_SQLITE_BATCH 10000
#define STALL_MS 60000 /* no progress for this long fails the run */
#define WINDOW 60000   /* readings published but not yet consumed */
/* Nothing new reached the WebSocket client for this long: stop waiting
 * for the rest of its messages. */
#define WS_IDLE_MS 10000
#define WS_WARMUP_TRIES 30 /* warm-ups until the client gets a message */

typedef struct bench_opts {
    bool distributed;
    size_t count;      /* 0 with a duration */
    double duration_s; /* 0 with a count */
    double rate;       /* readings/s; 0 is flat out */
    int sensors_per_type;
    int batch;
    int ws_sensors; /* 0: no API server and no WebSocket client */
    const char *dir;
} bench_opts_t;

/* Filled by the processor thread through on_stored; read by the main
 * thread once the processor's counters show every reading stored. */
typedef struct latency {
    sl_bench_hist_t hist;
    uint64_t commits; /* store commits that held readings */
} latency_t;

typedef struct producer {
    sl_publisher_t *pub;
    sl_processor_t *proc;
    sl_sensor_sim_t *sim;
    int sensors;
    int64_t *last_ts_ms; /* per sensor, so event times never repeat */
    const bench_opts_t *opt;
    size_t count;        /* readings to publish; 0: until deadline */
    int64_t deadline_ns; /* with a duration */
    uint64_t consumed_before;
    atomic_size_t published;
    atomic_bool done;
    atomic_int failed;
    double cpu_s; /* of the producer thread, set when it ends */
    pthread_t thread;
} producer_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sluice bench [--mode standalone|distributed]\n"
            "                    [--count N | --duration SECONDS]\n"
            "                    [--rate READINGS_PER_S] [--sensors-per-type "
            "N]\n"
            "                    [--batch N] [--ws-sensors N] [--dir DIR]\n"
            "  --mode        standalone: in-process bus and SQLite (default);\n"
            "                distributed: librdkafka's mock cluster and a\n"
            "                throwaway PostgreSQL\n"
            "  --count       readings to publish (default 1000000)\n"
            "  --duration    publish for this many seconds instead\n"
            "  --rate        readings per second; 0 is flat out (default)\n"
            "  --sensors-per-type  simulated sensors of each of 5 types, "
            "1..999 (default 200)\n"
            "  --batch       the processor's batch size (default 5000)\n"
            "  --ws-sensors  sensors the WebSocket client follows, spread\n"
            "                over the types, 0..32 (default 5: one per type);\n"
            "                0 starts no API server and no client\n"
            "  --dir         folder for the SQLite files (default: a new "
            "one in /tmp, removed after)\n");
}

static int parse_number(const char *flag, const char *text, double min,
                        double max, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v >= min && v <= max)) {
        fprintf(stderr,
                "sluice bench: %s: invalid value \"%s\"; expected a "
                "number in %g..%g\n",
                flag, text, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, bench_opts_t *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->sensors_per_type = 200;
    opt->batch = 5000;
    opt->ws_sensors = 5;
    for (int i = 0; i < argc; i++) {
        const char *flag = argv[i];
        double v;

        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "sluice bench: %s needs a value\n", flag);
            return -1;
        }
        const char *val = argv[++i];
        if (strcmp(flag, "--mode") == 0) {
            if (strcmp(val, "standalone") != 0 &&
                strcmp(val, "distributed") != 0) {
                fprintf(stderr,
                        "sluice bench: --mode: invalid value \"%s\"; "
                        "expected standalone or distributed\n",
                        val);
                return -1;
            }
            opt->distributed = strcmp(val, "distributed") == 0;
        } else if (strcmp(flag, "--dir") == 0) {
            opt->dir = val;
        } else if (strcmp(flag, "--count") == 0) {
            if (parse_number(flag, val, 1, 1e10, &v) != 0)
                return -1;
            opt->count = (size_t)v;
        } else if (strcmp(flag, "--duration") == 0) {
            if (parse_number(flag, val, 0.1, 86400, &opt->duration_s) != 0)
                return -1;
        } else if (strcmp(flag, "--rate") == 0) {
            if (parse_number(flag, val, 0, 1e8, &opt->rate) != 0)
                return -1;
        } else if (strcmp(flag, "--sensors-per-type") == 0) {
            if (parse_number(flag, val, 1, 999, &v) != 0)
                return -1;
            opt->sensors_per_type = (int)v;
        } else if (strcmp(flag, "--batch") == 0) {
            if (parse_number(flag, val, 1, 1000000, &v) != 0)
                return -1;
            opt->batch = (int)v;
        } else if (strcmp(flag, "--ws-sensors") == 0) {
            if (parse_number(flag, val, 0, SL_BENCH_WS_MAX_SENSORS, &v) != 0)
                return -1;
            opt->ws_sensors = (int)v;
        } else {
            fprintf(stderr, "sluice bench: unknown option %s\n", flag);
            return -1;
        }
    }
    if (opt->count > 0 && opt->duration_s > 0) {
        fprintf(stderr,
                "sluice bench: --count and --duration exclude each other; "
                "give one\n");
        return -1;
    }
    if (opt->count == 0 && opt->duration_s == 0)
        opt->count = 1000000;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Producer                                                                */
/* ---------------------------------------------------------------------- */

static sl_sensor_sim_t *sim_create(const bench_opts_t *opt)
{
    sl_generator_config_t cfg;

    sl_generator_config_init(&cfg);
    cfg.type_count = 5;
    cfg.sensors_per_type = opt->sensors_per_type;
    cfg.seed = 7;
    return sl_sensor_sim_create(&cfg);
}

/* Waits until at most WINDOW - n readings are published but not consumed.
 * The mock cluster deletes old data whether or not it was read, and the
 * in-process bus makes publishers wait once a partition is full. */
static bool pace_window(producer_t *p, size_t n)
{
    while (atomic_load(&p->failed) == SL_OK) {
        sl_processor_stats_t stats;

        sl_processor_stats(p->proc, &stats);
        if (atomic_load(&p->published) + n <=
            (size_t)(stats.consumed - p->consumed_before) + WINDOW)
            return true;
        sl_time_sleep_ms(1);
    }
    return false;
}

/* CPU seconds of the calling thread so far. */
static double thread_cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Returns how many readings are due by now at the configured rate, from
 * the start, or SIZE_MAX flat out. */
static size_t due_readings(const producer_t *p, int64_t start_ns)
{
    if (p->opt->rate <= 0)
        return SIZE_MAX;
    return (size_t)((double)(sl_time_mono_ns() - start_ns) / 1e9 *
                    p->opt->rate) +
           1;
}

static int publish_one(producer_t *p, size_t i)
{
    int sensor = (int)(i % (size_t)p->sensors);
    int64_t ts = sl_time_now_ms();
    sl_reading_t rec;

    if (ts <= p->last_ts_ms[sensor])
        ts = p->last_ts_ms[sensor] + 1;
    p->last_ts_ms[sensor] = ts;
    sl_sensor_sim_reading(p->sim, sensor, ts, &rec);
    return sl_publish_reading(p->pub, &rec);
}

static void *producer_main(void *arg)
{
    producer_t *p = arg;
    int64_t start_ns = sl_time_mono_ns();
    size_t i = 0;
    int rc = SL_OK;

    while (rc == SL_OK) {
        size_t chunk = SL_BENCH_DIST_CHUNK, due = due_readings(p, start_ns);

        if (p->count > 0 && i >= p->count)
            break;
        if (p->count == 0 && sl_time_mono_ns() >= p->deadline_ns)
            break;
        if (p->count > 0 && p->count - i < chunk)
            chunk = p->count - i;
        if (due <= i) {
            sl_time_sleep_ms(1);
            continue;
        }
        if (due - i < chunk)
            chunk = due - i;
        if (!pace_window(p, chunk))
            break;
        for (size_t k = 0; k < chunk && rc == SL_OK; k++)
            rc = publish_one(p, i + k);
        /* A full chunk is a full batch, which the publisher has handed to
         * the bus already; waiting for its acknowledgements would leave
         * the producer idle. A smaller one (rated, or the last) is
         * flushed so that its readings do not wait in the batch. */
        if (rc == SL_OK && chunk < SL_BENCH_DIST_CHUNK)
            rc = sl_publisher_flush(p->pub);
        i += chunk;
        atomic_store(&p->published, i);
    }
    if (rc == SL_OK)
        rc = sl_publisher_flush(p->pub);
    if (rc != SL_OK) {
        fprintf(stderr,
                "sluice bench: publishing failed near reading %zu: %s\n", i,
                sl_strerror(rc));
        atomic_store(&p->failed, rc);
    }
    p->cpu_s = thread_cpu_s();
    atomic_store(&p->done, true);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Measurements                                                            */
/* ---------------------------------------------------------------------- */

/* sl_processor_config_t.on_stored: times each reading from its creation
 * (its event time) to now. */
static void on_stored(void *ctx, const sl_reading_t *readings, size_t count)
{
    latency_t *lat = ctx;
    int64_t now_ms = sl_time_now_ms();

    for (size_t i = 0; i < count; i++)
        sl_bench_hist_add(&lat->hist, now_ms - readings[i].timestamp_ms);
    lat->commits += count > 0;
}

/* Resident set size now, in MiB, from /proc/self/statm. */
static double rss_now_mb(void)
{
    long pages_total = 0, pages_resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2)
        pages_resident = 0;
    fclose(f);
    return (double)pages_resident * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

/* ---------------------------------------------------------------------- */
/* One run                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct run {
    bench_opts_t opt;
    sl_bench_dist_t d;         /* distributed */
    sl_bus_t *bus;             /* standalone */
    sl_registry_t *registry;   /* standalone */
    sl_publisher_t *publisher; /* either mode */
    sl_processor_t *proc;      /* either mode */
    char dir[4096];
    char db_path[4200];
    latency_t lat;
    sl_bench_ws_t ws; /* with --ws-sensors > 0 */
    sl_bus_t *ws_bus; /* distributed: the hub's own Kafka bus */
    int sensors;      /* simulated sensors in all */
    int ws_index[SL_BENCH_WS_MAX_SENSORS]; /* the sensors ws follows */
    /* Results. */
    size_t published;
    uint64_t stored;
    double seconds;
    double cpu_s;
    double producer_cpu_s; /* part of cpu_s */
    double server_cpu_s;
    double rss_tenth_mb; /* RSS once a tenth of the readings were stored */
    double rss_end_mb;
    double peak_rss_mb; /* when the pipeline run ended, before the raw runs */
    double raw_s;
    double raw_cpu_s;
    double kafka_s; /* distributed: raw produce+consume, 0 when it failed */
    uint64_t ws_expected; /* readings of the followed sensors */
    sl_bench_ws_stats_t ws_stats;
} run_t;

static int start_standalone(run_t *r)
{
    sl_bus_memory_config_t bus_cfg;
    sl_processor_config_t cfg;
    char err[512] = "";
    sl_store_t *st;
    int rc;

    snprintf(r->db_path, sizeof(r->db_path), "%s/sluice.db", r->dir);
    st = sl_store_open(r->db_path, err, sizeof(err));
    rc = st != NULL ? sl_store_migrate(st, err, sizeof(err)) : SL_EIO;
    sl_store_close(st);
    if (rc != SL_OK) {
        fprintf(stderr, "sluice bench: opening %s failed: %s\n", r->db_path,
                err);
        return -1;
    }
    sl_bus_memory_config_init(&bus_cfg);
    r->bus = sl_bus_memory_create(&bus_cfg);
    r->registry = sl_registry_create();
    if (r->bus == NULL || r->registry == NULL)
        return -1;
    r->publisher = sl_publisher_create(r->bus, r->registry, 30000);
    if (r->publisher == NULL ||
        sl_publisher_set_batch(r->publisher, SL_BENCH_DIST_CHUNK) != SL_OK)
        return -1;
    sl_processor_config_init(&cfg);
    cfg.bus = r->bus;
    cfg.registry = r->registry;
    cfg.store_location = r->db_path;
    cfg.batch_size = r->opt.batch;
    cfg.on_stored = on_stored;
    cfg.on_stored_ctx = &r->lat;
    r->proc = sl_processor_start(&cfg, err, sizeof(err));
    if (r->proc == NULL) {
        fprintf(stderr, "sluice bench: starting the processor failed: %s\n",
                err);
        return -1;
    }
    return 0;
}

static int start_distributed(run_t *r)
{
    r->d.batch = r->opt.batch;
    r->d.fetch_wait_ms = 1;
    r->d.on_stored = on_stored;
    r->d.on_stored_ctx = &r->lat;
    if (sl_bench_dist_start_store(&r->d) != 0 ||
        sl_bench_dist_start_pipeline(&r->d) != 0)
        return -1;
    r->publisher = r->d.publisher;
    r->proc = r->d.proc;
    return 0;
}

/* Starts the API server and the WebSocket client, which follows
 * --ws-sensors sensors spread evenly over the simulation's order, where
 * sensors of one type are neighbours. Returns 0 or -1. */
static int start_ws(run_t *r)
{
    sl_sensor_sim_t *sim;
    int n = r->opt.ws_sensors;

    if (n == 0)
        return 0;
    sim = sim_create(&r->opt);
    if (sim == NULL)
        return -1;
    r->sensors = sl_sensor_sim_sensor_count(sim);
    if (n > r->sensors)
        n = r->sensors;
    for (int k = 0; k < n; k++) {
        sl_reading_t rec;

        r->ws_index[k] = (int)((int64_t)k * r->sensors / n);
        sl_sensor_sim_reading(sim, r->ws_index[k], sl_time_now_ms(), &rec);
        snprintf(r->ws.sensor_ids[k], SL_BENCH_WS_ID_MAX, "%s", rec.sensor_id);
    }
    sl_sensor_sim_destroy(sim);
    r->ws.sensor_count = (size_t)n;
    if (r->opt.distributed) {
        r->ws_bus = sl_bench_dist_live_bus(&r->d, "sluice-bench-api");
        if (r->ws_bus == NULL)
            return -1;
        r->ws.bus = r->ws_bus;
        r->ws.registry = r->d.registry;
        r->ws.commit_offsets = false; /* Kafka keeps records regardless */
        r->ws.store_location = r->d.pg.url;
    } else {
        r->ws.bus = r->bus;
        /* The in-process bus keeps a record until every group committed
         * it. */
        r->ws.commit_offsets = true;
        r->ws.registry = r->registry;
        r->ws.store_location = r->db_path;
    }
    return sl_bench_ws_start(&r->ws);
}

/* Returns how many of the first `published` readings of a drive come
 * from the sensors the WebSocket client follows: the producer publishes
 * sensor i % sensors as its i-th reading. */
static uint64_t ws_expected(const run_t *r, size_t published)
{
    uint64_t n = 0;

    for (size_t k = 0; k < r->ws.sensor_count; k++)
        n += published / (size_t)r->sensors +
             ((size_t)r->ws_index[k] < published % (size_t)r->sensors);
    return n;
}

static void stop_run(run_t *r)
{
    sl_bench_ws_stop(&r->ws);
    if (r->ws_bus != NULL) {
        sl_bus_close(r->ws_bus);
        sl_bus_destroy(r->ws_bus);
        r->ws_bus = NULL;
    }
    if (r->opt.distributed) {
        sl_bench_dist_stop(&r->d);
        return;
    }
    if (r->bus != NULL)
        sl_bus_close(r->bus);
    sl_processor_stop(r->proc);
    sl_publisher_destroy(r->publisher);
    sl_bus_destroy(r->bus);
    sl_registry_destroy(r->registry);
}

/* Waits until the processor has stored (or found already stored) every
 * reading the producer published, sampling RSS meanwhile. Returns 0, or
 * -1 when a record was dead-lettered, publishing failed, or nothing
 * moved for STALL_MS. */
static int wait_stored(run_t *r, producer_t *p, uint64_t before)
{
    uint64_t last = 0;
    int64_t last_change = sl_time_mono_ms();
    size_t tenth = r->opt.count > 0 ? r->opt.count / 10 : 0;

    for (;;) {
        sl_processor_stats_t stats;
        uint64_t done;

        sl_processor_stats(r->proc, &stats);
        done = stats.stored + stats.duplicates - before;
        if (stats.dead_lettered > 0) {
            fprintf(stderr,
                    "sluice bench: %" PRIu64 " readings were "
                    "dead-lettered\n",
                    stats.dead_lettered);
            return -1;
        }
        if (atomic_load(&p->failed) != SL_OK)
            return -1;
        if (r->rss_tenth_mb == 0 && tenth > 0 && done >= tenth)
            r->rss_tenth_mb = rss_now_mb();
        if (atomic_load(&p->done) && done >= atomic_load(&p->published))
            return 0;
        if (done != last) {
            last = done;
            last_change = sl_time_mono_ms();
        } else if (sl_time_mono_ms() - last_change > STALL_MS) {
            fprintf(stderr,
                    "sluice bench: no progress for %d s: %" PRIu64
                    " of %zu stored\n",
                    STALL_MS / 1000, done, atomic_load(&p->published));
            return -1;
        }
        sl_time_sleep_ms(1);
    }
}

/* Publishes count readings (or for the duration) and waits until they
 * are stored. Returns 0 or -1. */
static int drive(run_t *r, size_t count, double duration_s)
{
    producer_t p;
    sl_processor_stats_t stats;
    int rc = -1;

    memset(&p, 0, sizeof(p));
    p.pub = r->publisher;
    p.proc = r->proc;
    p.opt = &r->opt;
    p.count = count;
    p.deadline_ns = sl_time_mono_ns() + (int64_t)(duration_s * 1e9);
    p.sim = sim_create(&r->opt);
    p.sensors = p.sim != NULL ? sl_sensor_sim_sensor_count(p.sim) : 0;
    p.last_ts_ms = calloc((size_t)p.sensors + 1, sizeof(int64_t));
    sl_processor_stats(r->proc, &stats);
    p.consumed_before = stats.consumed;
    atomic_init(&p.published, 0);
    atomic_init(&p.done, false);
    atomic_init(&p.failed, SL_OK);
    if (p.sim != NULL && p.last_ts_ms != NULL &&
        pthread_create(&p.thread, NULL, producer_main, &p) == 0) {
        rc = wait_stored(r, &p, stats.stored + stats.duplicates);
        atomic_store(&p.failed, rc == 0 ? SL_OK : SL_EIO);
        pthread_join(p.thread, NULL);
    }
    r->published = atomic_load(&p.published);
    r->producer_cpu_s = p.cpu_s;
    sl_sensor_sim_destroy(p.sim);
    free(p.last_ts_ms);
    return rc;
}

/* Context of the raw baselines' rows: the same simulation and sensor
 * order as the producer, one millisecond per round of the fleet. */
typedef struct raw_rows {
    sl_sensor_sim_t *sim;
    int sensors;
    int64_t t0_ms;
} raw_rows_t;

static void raw_next(void *ctx, size_t i, sl_reading_t *rec)
{
    raw_rows_t *rows = ctx;

    sl_sensor_sim_reading(rows->sim, (int)(i % (size_t)rows->sensors),
                          rows->t0_ms + (int64_t)(i / (size_t)rows->sensors),
                          rec);
}

/* Measures the raw limit of the slowest stage on n rows. Returns the
 * seconds, or -1. */
static double run_raw(run_t *r, size_t n)
{
    raw_rows_t rows = {sim_create(&r->opt), 0, sl_time_now_ms() - 3600000};
    double seconds = -1;
    char raw_path[4300];

    if (rows.sim == NULL)
        return -1;
    rows.sensors = sl_sensor_sim_sensor_count(rows.sim);
    if (!r->opt.distributed) {
        snprintf(raw_path, sizeof(raw_path), "%s/raw.db", r->dir);
        seconds = sl_bench_raw_sqlite(r->db_path, raw_path, n, RAW_SQLITE_BATCH,
                                      raw_next, &rows);
    } else {
        PGconn *conn = PQconnectdb(r->d.pg.url);

        if (PQstatus(conn) == CONNECTION_OK)
            seconds = sl_bench_raw_copy(conn, "raw_readings", n,
                                        (size_t)r->opt.batch, raw_next, &rows);
        else
            fprintf(stderr, "sluice bench: connecting failed: %s",
                    PQerrorMessage(conn));
        PQfinish(conn);
    }
    sl_sensor_sim_destroy(rows.sim);
    return seconds;
}

/* Measures raw librdkafka produce+consume of n rows on the mock cluster.
 * Returns the seconds, or -1. */
static double run_raw_kafka(run_t *r, size_t n)
{
    raw_rows_t rows = {sim_create(&r->opt), 0, sl_time_now_ms() - 3600000};
    double seconds;

    if (rows.sim == NULL)
        return -1;
    rows.sensors = sl_sensor_sim_sensor_count(rows.sim);
    seconds =
        sl_bench_raw_kafka(r->d.mock, "sluice-bench-raw", n, raw_next, &rows);
    sl_sensor_sim_destroy(rows.sim);
    return seconds;
}

/* The rows of the WebSocket client: latency from creation to receipt,
 * and the messages it received and those the server reported dropped. */
static void print_ws_rows(const run_t *r)
{
    const sl_bench_hist_t *h = &r->ws_stats.lat;
    char counts[64];

    printf("%-44s %12" PRId64 "\n",
           "latency p50 ms (created -> WebSocket client)",
           sl_bench_hist_quantile(h, 0.50));
    printf("%-44s %12" PRId64 "\n", "WebSocket latency p95 ms",
           sl_bench_hist_quantile(h, 0.95));
    printf("%-44s %12" PRId64 "\n", "WebSocket latency p99 ms",
           sl_bench_hist_quantile(h, 0.99));
    printf("%-44s %12" PRId64 "\n", "WebSocket latency max ms", h->max_ms);
    snprintf(counts, sizeof(counts), "%" PRIu64 " / %" PRIu64,
             r->ws_stats.received, r->ws_stats.dropped);
    printf("%-44s %12s\n", "WebSocket messages received / dropped", counts);
}

static void print_report(const run_t *r)
{
    const char *mode = r->opt.distributed ? "distributed" : "standalone";
    const char *raw_name = r->opt.distributed ? "copy" : "sqlite";
    double rate = (double)r->stored / r->seconds;
    double raw_rate = (double)r->stored / r->raw_s;
    double cpu_per_m = (r->cpu_s + r->server_cpu_s) * 1e6 / (double)r->stored;
    double peak = r->peak_rss_mb;
    char ws[64] = "no WebSocket client";

    if (r->ws.sensor_count > 0)
        snprintf(ws, sizeof(ws), "WebSocket client on %zu sensors",
                 r->ws.sensor_count);
    printf("sluice bench: mode=%s, %zu readings from %d sensors, %s, "
           "processor batch %d, %s\n",
           mode, r->published, r->opt.sensors_per_type * 5,
           r->opt.rate > 0 ? "rate-limited" : "flat out", r->opt.batch, ws);
    printf("%-44s %12s\n", "measure", "value");
    printf("%-44s %12.0f\n", "readings/s sustained", rate);
    printf("%-44s %12" PRId64 "\n", "latency p50 ms (created -> stored)",
           sl_bench_hist_quantile(&r->lat.hist, 0.50));
    printf("%-44s %12" PRId64 "\n", "latency p95 ms",
           sl_bench_hist_quantile(&r->lat.hist, 0.95));
    printf("%-44s %12" PRId64 "\n", "latency p99 ms",
           sl_bench_hist_quantile(&r->lat.hist, 0.99));
    printf("%-44s %12" PRId64 "\n", "latency max ms", r->lat.hist.max_ms);
    if (r->ws.sensor_count > 0)
        print_ws_rows(r);
    printf("%-44s %12.0f\n", "readings per store commit",
           (double)r->stored / (double)(r->lat.commits ? r->lat.commits : 1));
    printf("%-44s %12.2f\n",
           r->opt.distributed ? "CPU s per million readings (this + PostgreSQL)"
                              : "CPU s per million readings",
           cpu_per_m);
    printf("%-44s %12.2f\n", "  of which the producer (simulation, Avro)",
           r->producer_cpu_s * 1e6 / (double)r->stored);
    printf("%-44s %12.1f\n", "peak RSS MiB", peak);
    if (r->rss_tenth_mb > 0)
        printf("%-44s %7.1f -> %.1f\n", "RSS MiB at 10% stored -> at end",
               r->rss_tenth_mb, r->rss_end_mb);
    printf("%-44s %12.0f\n",
           r->opt.distributed ? "raw PostgreSQL COPY BINARY rows/s"
                              : "raw SQLite INSERT rows/s (10k-row txns)",
           raw_rate);
    printf("%-44s %12.2f\n",
           r->opt.distributed ? "  its client CPU s per million rows"
                              : "  its CPU s per million rows",
           r->raw_cpu_s * 1e6 / (double)r->stored);
    printf("%-44s %12.3f\n", "pipeline as a fraction of raw", rate / raw_rate);
    if (r->kafka_s > 0) {
        double kafka_rate = (double)r->stored / r->kafka_s;

        printf("%-44s %12.0f\n", "raw librdkafka produce+consume msgs/s",
               kafka_rate);
        printf("%-44s %12.3f\n", "pipeline as a fraction of raw Kafka",
               rate / kafka_rate);
    } else if (r->opt.distributed) {
        printf("%-44s %12s\n", "raw librdkafka produce+consume msgs/s",
               "failed");
    }
    printf("mode=%s readings=%zu stored=%" PRIu64
           " readings_per_s=%.0f fraction_of_%s=%.3f",
           mode, r->published, r->stored, rate, raw_name, rate / raw_rate);
    if (r->kafka_s > 0)
        printf(" fraction_of_kafka=%.3f",
               rate * r->kafka_s / (double)r->stored);
    printf(" p50_ms=%" PRId64 " p95_ms=%" PRId64 " p99_ms=%" PRId64
           " max_ms=%" PRId64 " cpu_s_per_million=%.2f peak_rss_mb=%.1f",
           sl_bench_hist_quantile(&r->lat.hist, 0.50),
           sl_bench_hist_quantile(&r->lat.hist, 0.95),
           sl_bench_hist_quantile(&r->lat.hist, 0.99), r->lat.hist.max_ms,
           cpu_per_m, peak);
    if (r->ws.sensor_count > 0)
        printf(" ws_p99_ms=%" PRId64 " ws_received=%" PRIu64
               " ws_dropped=%" PRIu64,
               sl_bench_hist_quantile(&r->ws_stats.lat, 0.99),
               r->ws_stats.received, r->ws_stats.dropped);
    printf("\n");
}

static int make_dir(run_t *r)
{
    if (r->opt.dir != NULL) {
        snprintf(r->dir, sizeof(r->dir), "%s", r->opt.dir);
        return 0;
    }
    snprintf(r->dir, sizeof(r->dir), "/tmp/sluice-bench-XXXXXX");
    if (mkdtemp(r->dir) == NULL) {
        fprintf(stderr, "sluice bench: mkdtemp failed: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static void remove_dir(const run_t *r)
{
    static const char *const files[] = {"sluice.db",     "sluice.db-wal",
                                        "sluice.db-shm", "raw.db",
                                        "raw.db-wal",    "raw.db-shm"};
    char path[4400];

    if (r->opt.dir != NULL)
        return;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", r->dir, files[i]);
        unlink(path);
    }
    rmdir(r->dir);
}

/* Warms up with one reading per sensor: the group joins, the first
 * connections, prepared statements. With a WebSocket client, it repeats
 * until the client got a message, because on Kafka the hub's new group is
 * assigned its partitions a while after it starts and then reads only
 * later records. Then it waits for the client's last messages and clears
 * the counts. Returns 0 or -1. */
static int warm_up(run_t *r)
{
    for (int tries = 1;; tries++) {
        if (drive(r, (size_t)r->opt.sensors_per_type * 5, 0) != 0) {
            fprintf(stderr, "sluice bench: the warm-up failed\n");
            return -1;
        }
        if (r->ws.sensor_count == 0 || sl_bench_ws_wait(&r->ws, 1, 1000))
            break;
        if (tries == WS_WARMUP_TRIES) {
            fprintf(stderr,
                    "sluice bench: the WebSocket client received nothing "
                    "in %d warm-ups\n",
                    tries);
            return -1;
        }
    }
    if (r->ws.sensor_count > 0) {
        sl_bench_ws_wait(&r->ws, UINT64_MAX, 300); /* returns once idle */
        sl_bench_ws_reset(&r->ws);
    }
    memset(&r->lat, 0, sizeof(r->lat));
    return 0;
}

/* Waits until every reading of the followed sensors reached the WebSocket
 * client or was reported to it as dropped. Returns 0, or -1 when some never
 * arrived or the client failed. */
static int collect_ws(run_t *r)
{
    bool complete;

    if (r->ws.sensor_count == 0)
        return 0;
    r->ws_expected = ws_expected(r, r->published);
    complete = sl_bench_ws_wait(&r->ws, r->ws_expected, WS_IDLE_MS);
    sl_bench_ws_results(&r->ws, &r->ws_stats);
    if (r->ws_stats.failed != SL_OK)
        return -1;
    if (!complete) {
        fprintf(stderr,
                "sluice bench: the WebSocket client received %" PRIu64
                " and was told of %" PRIu64 " dropped of %" PRIu64
                " readings; nothing more arrived for %d s\n",
                r->ws_stats.received, r->ws_stats.dropped, r->ws_expected,
                WS_IDLE_MS / 1000);
        return -1;
    }
    if (r->ws_stats.unparsed > 0) {
        fprintf(stderr,
                "sluice bench: %" PRIu64 " WebSocket messages had no "
                "timestamp that parsed\n",
                r->ws_stats.unparsed);
        return -1;
    }
    return 0;
}

/* Warms up, then runs the timed part. */
static int run_bench(run_t *r)
{
    double cpu0, server0 = 0;
    int64_t start_ns;

    if ((r->opt.distributed ? start_distributed(r) : start_standalone(r)) !=
            0 ||
        start_ws(r) != 0 || warm_up(r) != 0)
        return -1;

    cpu0 = sl_bench_self_cpu_s();
    if (r->opt.distributed)
        server0 = sl_bench_server_cpu_s(&r->d.pg);
    start_ns = sl_time_mono_ns();
    if (drive(r, r->opt.count, r->opt.duration_s) != 0)
        return -1;
    r->seconds = (double)(sl_time_mono_ns() - start_ns) / 1e9;
    r->cpu_s = sl_bench_self_cpu_s() - cpu0;
    if (r->opt.distributed)
        r->server_cpu_s = sl_bench_server_cpu_s(&r->d.pg) - server0;
    r->rss_end_mb = rss_now_mb();
    r->peak_rss_mb = sl_bench_peak_rss_mb();
    r->stored = r->lat.hist.count;
    if (r->stored != r->published) {
        fprintf(stderr,
                "sluice bench: %zu readings published but %" PRIu64 " stored\n",
                r->published, r->stored);
        return -1;
    }
    if (collect_ws(r) != 0)
        return -1;
    cpu0 = thread_cpu_s();
    r->raw_s = run_raw(r, r->published);
    r->raw_cpu_s = thread_cpu_s() - cpu0;
    if (r->opt.distributed && r->raw_s > 0)
        r->kafka_s = run_raw_kafka(r, r->published);
    return r->raw_s > 0 ? 0 : -1;
}

int sl_role_bench(int argc, char **argv)
{
    static run_t r; /* the latency buckets are too big for the stack */
    int rc;

    rc = parse_args(argc, argv, &r.opt);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    sl_log_set_level(SL_LOG_WARN);
    if (!r.opt.distributed && make_dir(&r) != 0)
        return 1;
    rc = run_bench(&r);
    stop_run(&r);
    if (rc == 0)
        print_report(&r);
    if (!r.opt.distributed)
        remove_dir(&r);
    return rc == 0 ? 0 : 1;
}
