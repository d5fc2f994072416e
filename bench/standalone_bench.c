/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Standalone throughput: replays N generated readings through a real
 * `sluice run --exit-when-idle` into a fresh SQLite file, then inserts the
 * same rows with a plain batched INSERT loop into a table with the same
 * definition and indexes, and prints both rates and their ratio.
 *
 * Usage: sluice_bench_standalone [--count N] [--sensors N] [--binary PATH]
 *        [--dir DIR]
 * The pipeline figure includes process start, CSV parsing, Avro encoding,
 * the bus, decoding, validation, windows and storage; the raw loop only
 * SQLite. Both use the same machine in the same run, so the ratio is
 * stable where the absolute rates are not.
 */
#include <errno.h>
#include <inttypes.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#include "bench_sqlite.h"
#include "pipeline/generator.h"
#include "util/timeutil.h"

typedef struct options {
    long count;
    int sensors;
    const char *binary;
    const char *dir;
    int64_t end_ms; /* event time of the last round of readings */
} options_t;

static int parse_options(int argc, char **argv, options_t *opt)
{
    opt->count = 1000000;
    opt->sensors = 1000;
    opt->binary = SLUICE_BINARY_PATH;
    opt->dir = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--count") == 0)
            opt->count = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--sensors") == 0)
            opt->sensors = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--binary") == 0)
            opt->binary = argv[i + 1];
        else if (strcmp(argv[i], "--dir") == 0)
            opt->dir = argv[i + 1];
        else
            return -1;
    }
    if ((argc - 1) % 2 != 0 || opt->count <= 0 || opt->sensors <= 0)
        return -1;
    return 0;
}

/* Generates the readings: the fleet reports round-robin, one second apart
 * per sensor, up to opt->end_ms. */
static sl_reading_t *generate(const options_t *opt)
{
    sl_generator_config_t cfg;
    sl_reading_t *rows = malloc((size_t)opt->count * sizeof(*rows));
    sl_sensor_sim_t *sim;
    int fleet;
    int64_t start;

    if (rows == NULL)
        return NULL;
    sl_generator_config_init(&cfg);
    cfg.type_count = 5;
    cfg.sensors_per_type = (opt->sensors + 4) / 5;
    cfg.seed = 7;
    sim = sl_sensor_sim_create(&cfg);
    if (sim == NULL) {
        free(rows);
        return NULL;
    }
    fleet = sl_sensor_sim_sensor_count(sim);
    start = opt->end_ms - (opt->count / fleet + 1) * 1000;
    for (long i = 0; i < opt->count; i++) {
        sl_sensor_sim_reading(sim, (int)(i % fleet), start + (i / fleet) * 1000,
                              &rows[i]);
    }
    sl_sensor_sim_destroy(sim);
    return rows;
}

static int write_csv(const char *path, const sl_reading_t *rows, long n)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return -1;
    fprintf(f, "sensor_id,sensor_type,value,timestamp,location,"
               "battery_level,signal_strength\n");
    for (long i = 0; i < n; i++) {
        const sl_reading_t *r = &rows[i];
        fprintf(f, "%s,%s,%.17g,%" PRId64 ",%s,%d,%d\n", r->sensor_id,
                sl_sensor_type_name(r->sensor_type), r->value, r->timestamp_ms,
                r->location, (int)r->battery_level, (int)r->signal_strength);
    }
    return fclose(f);
}

/*
 * Writes the CSV from a child process. A child's peak RSS includes its
 * parent's high-water mark at the time of fork or spawn, so this process
 * stays small until sluice has run; generation is deterministic, and the
 * rows are made again for the raw loop afterwards.
 */
static int write_csv_in_child(const options_t *opt, const char *path)
{
    int status;
    pid_t pid = fork();

    if (pid == 0) {
        sl_reading_t *rows = generate(opt);
        _exit(rows != NULL && write_csv(path, rows, opt->count) == 0 ? 0 : 1);
    }
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Runs sluice and returns wall seconds; OUT: *peak_rss_kb. */
static double run_pipeline(const options_t *opt, const char *csv,
                           const char *db, long *peak_rss_kb)
{
    char *const argv[] = {(char *)opt->binary,
                          "run",
                          "--no-generators",
                          "--exit-when-idle",
                          "--listen",
                          "127.0.0.1:0",
                          "--db",
                          (char *)db,
                          "--format",
                          "sensor-csv",
                          "--log-level",
                          "warn",
                          "--replay",
                          (char *)csv,
                          NULL};
    int64_t start = sl_time_mono_ns();
    struct rusage usage;
    int status;
    pid_t pid;

    if (posix_spawn(&pid, opt->binary, NULL, NULL, argv, environ) != 0 ||
        wait4(pid, &status, 0, &usage) < 0) {
        perror(opt->binary);
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "sluice run failed with status %d\n", status);
        return -1;
    }
    *peak_rss_kb = usage.ru_maxrss;
    return (double)(sl_time_mono_ns() - start) / 1e9;
}

/* sl_bench_reading_fn over the generated rows. */
static void row_at(void *ctx, size_t i, sl_reading_t *rec)
{
    *rec = ((const sl_reading_t *)ctx)[i];
}

static long count_rows(sqlite3 *db)
{
    sqlite3_stmt *stmt;
    long n = -1;

    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sensor_readings", -1,
                           &stmt, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return n;
}

int main(int argc, char **argv)
{
    options_t opt;
    char dir[4096], csv[4200], db_path[4200], raw_path[4200];
    sqlite3 *db = NULL;
    sl_reading_t *rows = NULL;
    long rss_kb = 0, stored;
    double pipeline_s, raw_s;

    if (parse_options(argc, argv, &opt) != 0) {
        fprintf(stderr,
                "usage: %s [--count N] [--sensors N] "
                "[--binary PATH] [--dir DIR]\n",
                argv[0]);
        return 2;
    }
    if (opt.dir != NULL) {
        snprintf(dir, sizeof(dir), "%s", opt.dir);
    } else {
        snprintf(dir, sizeof(dir), "/tmp/sluice-bench-XXXXXX");
        if (mkdtemp(dir) == NULL) {
            perror("mkdtemp");
            return 1;
        }
    }
    snprintf(csv, sizeof(csv), "%s/readings.csv", dir);
    snprintf(db_path, sizeof(db_path), "%s/sluice.db", dir);
    snprintf(raw_path, sizeof(raw_path), "%s/raw.db", dir);

    /* An hour ago, so validation accepts every row. */
    opt.end_ms = sl_time_now_ms() - 3600000;
    if (write_csv_in_child(&opt, csv) != 0) {
        fprintf(stderr, "cannot generate %s\n", csv);
        return 1;
    }
    pipeline_s = run_pipeline(&opt, csv, db_path, &rss_kb);
    rows = generate(&opt);
    if (pipeline_s < 0 || rows == NULL ||
        sqlite3_open(db_path, &db) != SQLITE_OK)
        return 1;
    stored = count_rows(db);
    raw_s = sl_bench_raw_sqlite(db_path, raw_path, (size_t)opt.count, 10000,
                                row_at, rows);
    if (raw_s < 0)
        return 1;

    printf("rows: %ld generated, %ld stored by sluice (%d sensors)\n",
           opt.count, stored, opt.sensors);
    printf("%-34s %12s %10s\n", "", "readings/s", "seconds");
    printf("%-34s %12.0f %10.2f\n", "sluice run (replay -> SQLite)",
           (double)opt.count / pipeline_s, pipeline_s);
    printf("%-34s %12.0f %10.2f\n", "raw SQLite INSERT, 10k-row txns",
           (double)opt.count / raw_s, raw_s);
    printf("peak RSS of sluice run: %.1f MiB\n", (double)rss_kb / 1024.0);
    printf("mode=standalone readings_per_s=%.0f fraction_of_sqlite=%.3f "
           "peak_rss_mb=%.1f\n",
           (double)opt.count / pipeline_s, raw_s / pipeline_s,
           (double)rss_kb / 1024.0);
    sqlite3_close(db);
    free(rows);
    return stored == opt.count ? 0 : 1;
}
