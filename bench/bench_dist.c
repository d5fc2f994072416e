/* SPDX-License-Identifier: Apache-2.0 */
/* The distributed set-up of the benchmarks; see bench_dist.h. */
#include "bench_dist.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "util/err.h"

#define PARTITIONS SL_BENCH_DIST_PARTITIONS
#define PUBLISH_TIMEOUT_MS 30000

double sl_bench_self_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

double sl_bench_peak_rss_mb(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

/* CPU seconds of one process from /proc/PID/stat, or 0 when it is gone. */
static double proc_cpu_s(long pid)
{
    char path[64], line[1024];
    unsigned long utime = 0, stime = 0;
    const char *p;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fgets(line, sizeof(line), f) == NULL) {
        fclose(f);
        return 0;
    }
    fclose(f);
    /* The command name may hold spaces: fields resume after its ')'.
     * utime and stime are fields 14 and 15, so 11 and 12 after state. */
    p = strrchr(line, ')');
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &utime, &stime) != 2)
        return 0;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* The parent pid of a process, or -1. */
static long parent_of(long pid)
{
    char path[64], line[1024];
    long ppid = -1;
    const char *p;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    if (fgets(line, sizeof(line), f) != NULL &&
        (p = strrchr(line, ')')) != NULL)
        sscanf(p + 2, "%*c %ld", &ppid);
    fclose(f);
    return ppid;
}

double sl_bench_server_cpu_s(const sl_pg_harness_t *h)
{
    char path[128];
    long postmaster = -1;
    struct dirent *entry;
    double total;
    DIR *proc;
    FILE *f;

    snprintf(path, sizeof(path), "%s/data/postmaster.pid", h->dir);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &postmaster) != 1)
        postmaster = -1;
    fclose(f);
    if (postmaster <= 0)
        return 0;

    total = proc_cpu_s(postmaster);
    proc = opendir("/proc");
    if (proc == NULL)
        return total;
    while ((entry = readdir(proc)) != NULL) {
        long pid = strtol(entry->d_name, NULL, 10);

        if (pid > 0 && parent_of(pid) == postmaster)
            total += proc_cpu_s(pid);
    }
    closedir(proc);
    return total;
}

/* The topics the pipeline uses, created up front: the mock cluster does
 * not support CreateTopics. */
static int create_topics(rd_kafka_mock_cluster_t *mock)
{
    static const char *const topics[] = {SL_TOPIC_SENSOR_READINGS,
                                         SL_TOPIC_ECOMMERCE_EVENTS,
                                         SL_TOPIC_DLQ, SL_TOPIC_SYSTEM_ALERTS};

    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        if (rd_kafka_mock_topic_create(mock, topics[i], PARTITIONS, 1) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "creating topic %s on the mock cluster failed\n",
                    topics[i]);
            return -1;
        }
    }
    return 0;
}

/* A Kafka bus on the mock cluster. The consumer's fetch.wait.max.ms is
 * set from --fetch-wait-ms. The mock of librdkafka 2.0.2 appears to keep
 * a fetch for that whole wait even when data arrives, where a real broker
 * answers once fetch.min.bytes (1) is there. With librdkafka's default of
 * 500 ms the figure would measure the mock instead of the pipeline. With
 * latest, a new consumer group starts at the end of each partition. */
static sl_bus_t *bus_open(const char *bootstraps, const char *client_id,
                          int fetch_wait_ms, bool latest)
{
    char fetch_wait[64];
    const char *props[2] = {fetch_wait, "consumer.auto.offset.reset=latest"};
    sl_bus_kafka_config_t cfg;
    char err[256] = "";
    sl_bus_t *bus;

    snprintf(fetch_wait, sizeof(fetch_wait), "consumer.fetch.wait.max.ms=%d",
             fetch_wait_ms);

    sl_bus_kafka_config_init(&cfg);
    cfg.brokers = bootstraps;
    cfg.client_id = client_id;
    cfg.partitions = PARTITIONS;
    cfg.properties = props;
    cfg.property_count = latest ? 2 : 1;
    bus = sl_bus_kafka_create(&cfg, err, sizeof(err));
    if (bus == NULL)
        fprintf(stderr, "creating the Kafka bus failed: %s\n", err);
    return bus;
}

int sl_bench_dist_start_store(sl_bench_dist_t *r)
{
    char err[512] = "";
    sl_store_t *st;
    int saved_stdout;
    bool started;
    int rc;

    /* initdb prints its progress on stdout, which is this program's
     * report: send it to stderr instead. */
    fflush(stdout);
    saved_stdout = dup(STDOUT_FILENO);
    dup2(STDERR_FILENO, STDOUT_FILENO);
    started = sl_pg_harness_start(&r->pg, err, sizeof(err)) == 0;
    if (saved_stdout >= 0) {
        dup2(saved_stdout, STDOUT_FILENO);
        close(saved_stdout);
    }
    if (!started) {
        fprintf(stderr, "starting PostgreSQL failed: %s\n", err);
        return -1;
    }
    r->pg_started = true;
    st = sl_store_open(r->pg.url, err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "opening the store failed: %s\n", err);
        return -1;
    }
    rc = sl_store_migrate(st, err, sizeof(err));
    sl_store_close(st);
    if (rc != SL_OK) {
        fprintf(stderr, "migrating the store failed: %s\n", err);
        return -1;
    }
    return 0;
}

int sl_bench_dist_start_pipeline(sl_bench_dist_t *r)
{
    char err[512] = "";
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *bootstraps;
    sl_processor_config_t cfg;

    /* The host client only owns the mock cluster and connects nowhere:
     * silence its warning about having no bootstrap.servers. */
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    r->mock_host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (r->mock_host == NULL) {
        fprintf(stderr, "creating the mock cluster's host failed: %s\n", err);
        return -1;
    }
    r->mock = rd_kafka_mock_cluster_new(r->mock_host, 1);
    bootstraps =
        r->mock != NULL ? rd_kafka_mock_cluster_bootstraps(r->mock) : NULL;
    if (bootstraps == NULL || create_topics(r->mock) != 0) {
        fprintf(stderr, "starting the mock cluster failed\n");
        return -1;
    }
    r->producer_bus =
        bus_open(bootstraps, "sluice-bench-produce", r->fetch_wait_ms, false);
    r->processor_bus =
        bus_open(bootstraps, "sluice-bench-process", r->fetch_wait_ms, false);
    r->registry = sl_registry_create();
    if (r->producer_bus == NULL || r->processor_bus == NULL ||
        r->registry == NULL)
        return -1;

    /* Producers publish through it in batches of SL_BENCH_DIST_CHUNK. */
    r->publisher =
        sl_publisher_create(r->producer_bus, r->registry, PUBLISH_TIMEOUT_MS);
    if (r->publisher == NULL ||
        sl_publisher_set_batch(r->publisher, SL_BENCH_DIST_CHUNK) != SL_OK) {
        fprintf(stderr, "creating the publisher failed\n");
        return -1;
    }

    sl_processor_config_init(&cfg);
    cfg.bus = r->processor_bus;
    cfg.registry = r->registry;
    cfg.store_location = r->pg.url;
    cfg.batch_size = r->batch;
    cfg.on_stored = r->on_stored;
    cfg.on_stored_ctx = r->on_stored_ctx;
    r->proc = sl_processor_start(&cfg, err, sizeof(err));
    if (r->proc == NULL) {
        fprintf(stderr, "starting the processor failed: %s\n", err);
        return -1;
    }
    return 0;
}

sl_bus_t *sl_bench_dist_live_bus(const sl_bench_dist_t *r,
                                 const char *client_id)
{
    const char *bootstraps =
        r->mock != NULL ? rd_kafka_mock_cluster_bootstraps(r->mock) : NULL;

    if (bootstraps == NULL)
        return NULL;
    return bus_open(bootstraps, client_id, r->fetch_wait_ms, true);
}

void sl_bench_dist_stop(sl_bench_dist_t *r)
{
    if (r->processor_bus != NULL)
        sl_bus_close(r->processor_bus);
    sl_processor_stop(r->proc);
    sl_publisher_destroy(r->publisher);
    if (r->producer_bus != NULL)
        sl_bus_close(r->producer_bus);
    sl_bus_destroy(r->producer_bus);
    sl_bus_destroy(r->processor_bus);
    sl_registry_destroy(r->registry);
    if (r->mock != NULL)
        rd_kafka_mock_cluster_destroy(r->mock);
    if (r->mock_host != NULL)
        rd_kafka_destroy(r->mock_host);
    if (r->pg_started)
        sl_pg_harness_destroy(&r->pg);
}
