/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `sluice run`: the standalone pipeline. Generators and replay publish to
 * the in-process bus. The processor, the detector and the dead-letter
 * handler consume it into SQLite, and the alert feed consumes the
 * detector's system-alerts. The API serves the store. Shutdown runs in
 * the order that loses nothing: stop the producers, wait until the
 * consumers have committed everything accepted, close the bus, flush the
 * windows, let the detector finish its training.
 */
#include "roles/roles.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "bus/bus.h"
#include "pipeline/dlq.h"
#include "pipeline/generator.h"
#include "pipeline/pipeline.h"
#include "pipeline/publish.h"
#include "pipeline/replay.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

/* How long shutdown waits for the consumers to catch up before it closes
 * the bus anyway. */
#define DRAIN_TIMEOUT_MS 60000

static volatile sig_atomic_t signalled;

static void on_signal(int sig)
{
    (void)sig;
    signalled = 1;
}

typedef struct run_state {
    const sl_config_t *cfg;
    sl_bus_t *bus;
    sl_registry_t *registry;
    volatile int stop_producers;
    atomic_bool replay_done;
    int replay_failed;
} run_state_t;

static void *generator_main(void *arg)
{
    run_state_t *rs = arg;
    const sl_config_t *cfg = rs->cfg;
    sl_generator_config_t gen;
    sl_publisher_t *pub = sl_publisher_create(rs->bus, rs->registry, -1);

    if (pub == NULL) {
        sl_log_error("run", "generator: cannot create a publisher");
        return NULL;
    }
    sl_generator_config_init(&gen);
    gen.sensors_per_type = cfg->sensors_per_type;
    gen.type_count = cfg->sensor_types;
    gen.rate = cfg->rate;
    gen.event_interval_s = cfg->event_interval;
    gen.anomaly_rate = cfg->anomaly_rate;
    gen.seed = (uint64_t)cfg->seed;
    if (sl_generator_run(&gen, pub, &rs->stop_producers) != SL_OK)
        sl_log_error("run",
                     "generator stopped: invalid settings or out of "
                     "memory (sensors-per-type=%d sensor-types=%d)",
                     gen.sensors_per_type, gen.type_count);
    sl_publisher_destroy(pub);
    return NULL;
}

/* Fills opt from the configuration. Returns SL_OK, or SL_EINVAL with a
 * message naming the setting in err. */
static int replay_options(const sl_config_t *cfg, sl_replay_options_t *opt,
                          char *err, size_t err_size)
{
    sl_replay_options_init(opt);
    if (sl_replay_format_parse(cfg->format, &opt->format) != SL_OK) {
        snprintf(err, err_size,
                 "format: invalid value '%s'; use auto, nab, sensor-csv, "
                 "ndjson, commerce-csv or frames",
                 cfg->format);
        return SL_EINVAL;
    }
    opt->sensor_id = cfg->sensor_id[0] != '\0' ? cfg->sensor_id : NULL;
    sl_sensor_type_parse(cfg->sensor_type, &opt->sensor_type);
    opt->unit = cfg->unit[0] != '\0' ? cfg->unit : NULL;
    opt->location = cfg->location;
    opt->speed = strcmp(cfg->speed, "max") == 0 ? 0 : atof(cfg->speed);
    opt->rebase_time = cfg->rebase_time;
    return SL_OK;
}

static void *replay_main(void *arg)
{
    run_state_t *rs = arg;
    sl_replay_options_t opt;
    sl_publisher_t *pub = sl_publisher_create(rs->bus, rs->registry, -1);
    char err[256];

    /* sl_role_run checked the options before starting this thread. */
    replay_options(rs->cfg, &opt, err, sizeof(err));
    for (size_t i = 0; pub != NULL && i < rs->cfg->replay_count; i++) {
        const char *path = rs->cfg->replay[i];
        sl_replay_stats_t stats;
        int rc = sl_replay_run(path, &opt, pub, &rs->stop_producers, &stats);

        /* sl_replay_run logs the counts of each file itself. */
        if (rc != SL_OK) {
            sl_log_error("replay", "cannot replay %s: %s", path,
                         sl_strerror(rc));
            rs->replay_failed = 1;
        }
    }
    sl_publisher_destroy(pub);
    atomic_store(&rs->replay_done, true);
    return NULL;
}

static int prepare_store(const char *location)
{
    char err[512];
    sl_store_t *st = sl_store_open(location, err, sizeof(err));

    if (st == NULL) {
        sl_log_error("run", "cannot open the store %s: %s", location, err);
        return SL_EIO;
    }
    int rc = sl_store_migrate(st, err, sizeof(err));
    if (rc != SL_OK)
        sl_log_error("run", "migration of %s failed: %s", location, err);
    sl_store_close(st);
    return rc;
}

/* The consumers of the standalone pipeline. The detector and the alert
 * feed are NULL with --no-detector. */
typedef struct consumers {
    sl_processor_t *proc;
    sl_dlq_handler_t *dlq;
    sl_detector_t *det;
    sl_alert_feed_t *feed;
} consumers_t;

/* Returns the records the consumers have not committed. The detector is
 * read before the feed: it publishes alerts before it commits, so an
 * alert it committed is already counted by the feed. */
static int64_t unprocessed(const consumers_t *c)
{
    int64_t lag = sl_processor_lag(c->proc) + sl_dlq_handler_lag(c->dlq);

    if (c->det != NULL)
        lag += sl_detector_lag(c->det);
    if (c->feed != NULL)
        lag += sl_alert_feed_lag(c->feed);
    return lag;
}

static bool drained(const consumers_t *c)
{
    return unprocessed(c) == 0;
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Waits for a signal, or for the replay input to be processed. */
static void wait_for_end(run_state_t *rs, const consumers_t *c)
{
    while (!signalled) {
        sl_time_sleep_ms(100);
        if (rs->cfg->exit_when_idle && atomic_load(&rs->replay_done) &&
            drained(c)) {
            sl_log_info("run", "replay input processed, exiting");
            return;
        }
    }
    sl_log_info("run", "signal received, draining");
}

static void drain(run_state_t *rs, const consumers_t *c)
{
    int64_t deadline = sl_time_mono_ms() + DRAIN_TIMEOUT_MS;

    /* Retries not yet published stay pending in the store for the next
     * start; publishing them now could keep the bus from draining.
     * XXX: so --exit-when-idle exits while retries are still scheduled. */
    sl_dlq_handler_quiesce(c->dlq);
    while (!drained(c) && sl_time_mono_ms() < deadline)
        sl_time_sleep_ms(20);
    if (!drained(c)) {
        sl_pipeline_abandon_writes();
        if (c->det != NULL)
            sl_detector_abandon_writes(c->det);
        sl_log_error("run",
                     "shutdown: %lld records still unprocessed after "
                     "%d s; they are lost with the in-process bus",
                     (long long)unprocessed(c), DRAIN_TIMEOUT_MS / 1000);
    }
    sl_bus_close(rs->bus);
}

/* Starts the detector and the alert feed that consumes its alerts.
 * Returns SL_OK, or SL_EIO after logging why. */
static int start_detector(run_state_t *rs, consumers_t *c)
{
    sl_detector_config_t det_cfg;
    char model_dir[4096], err[512];

    sl_role__detector_config(rs->cfg, rs->bus, rs->registry, &det_cfg,
                             model_dir, sizeof(model_dir));
    c->feed = sl_alert_feed_start(rs->bus, err, sizeof(err));
    if (c->feed == NULL) {
        sl_log_error("run", "cannot start the alert feed: %s", err);
        return SL_EIO;
    }
    c->det = sl_detector_start(&det_cfg, err, sizeof(err));
    if (c->det == NULL) {
        sl_log_error("run", "cannot start the detector: %s", err);
        return SL_EIO;
    }
    sl_log_info("run",
                "detector started models=%s window=%u min_samples=%u "
                "retrain_every=%u",
                det_cfg.model_dir != NULL ? det_cfg.model_dir : "(not kept)",
                (unsigned)det_cfg.model.window_size,
                (unsigned)det_cfg.model.min_samples,
                (unsigned)det_cfg.model.retrain_every);
    return SL_OK;
}

static sl_dlq_handler_t *start_dlq_handler(run_state_t *rs, char *err,
                                           size_t err_size)
{
    const sl_config_t *cfg = rs->cfg;
    sl_dlq_handler_config_t dlq_cfg;

    sl_dlq_handler_config_init(&dlq_cfg);
    dlq_cfg.bus = rs->bus;
    dlq_cfg.store_location = cfg->db;
    dlq_cfg.policy.base_ms = cfg->dlq_backoff_base_ms;
    dlq_cfg.policy.cap_ms = cfg->dlq_backoff_cap_ms;
    dlq_cfg.policy.jitter = cfg->dlq_jitter;
    dlq_cfg.policy.max_retries = cfg->dlq_max_retries;
    return sl_dlq_handler_start(&dlq_cfg, err, err_size);
}

static void log_detector_stats(sl_detector_t *det)
{
    sl_detector_stats_t stats;
    uint64_t retrains = 0;

    sl_detector_stats(det, &stats);
    for (int t = 0; t < SL_SENSOR_TYPE_COUNT; t++)
        retrains += stats.retrains[t];
    sl_log_info(
        "run",
        "detected consumed=%llu scored=%llu unscored=%llu "
        "anomalies=%llu alerts=%llu suppressed=%llu retrains=%llu",
        (unsigned long long)stats.consumed, (unsigned long long)stats.scored,
        (unsigned long long)stats.unscored, (unsigned long long)stats.anomalies,
        (unsigned long long)stats.alerts, (unsigned long long)stats.suppressed,
        (unsigned long long)retrains);
}

int sl_role_run(const sl_config_t *cfg)
{
    run_state_t rs = {.cfg = cfg};
    sl_bus_memory_config_t bus_cfg;
    sl_processor_config_t proc_cfg;
    sl_api_config_t api_cfg;
    consumers_t c = {0};
    sl_api_t *api = NULL;
    pthread_t generator, replay;
    bool generator_started = false, replay_started = false;
    char host[256], err[512];
    int port, status = 1;

    sl_replay_options_t replay_check;

    if (sl_config_listen(cfg, host, sizeof(host), &port, err, sizeof(err)) !=
            SL_OK ||
        replay_options(cfg, &replay_check, err, sizeof(err)) != SL_OK) {
        fprintf(stderr, "sluice: invalid configuration: %s\n", err);
        return 2;
    }
    if (prepare_store(cfg->db) != SL_OK)
        return 1;
    install_signals();

    sl_bus_memory_config_init(&bus_cfg);
    bus_cfg.partitions = cfg->bus_partitions;
    bus_cfg.partition_capacity = (size_t)cfg->bus_capacity;
    rs.bus = sl_bus_memory_create(&bus_cfg);
    rs.registry = sl_registry_create();
    /* A publisher registers the built-in schemas, so replayed frames with
     * their ids decode even when no generator runs. */
    sl_publisher_t *registrar =
        rs.bus && rs.registry ? sl_publisher_create(rs.bus, rs.registry, 0)
                              : NULL;
    if (registrar == NULL) {
        sl_log_error("run", "cannot create the bus and schema registry");
        goto out;
    }
    sl_log_info("run",
                "schemas registered sensor-readings-value=%d "
                "ecommerce-events-value=%d",
                (int)sl_publisher_reading_schema_id(registrar),
                (int)sl_publisher_event_schema_id(registrar));
    sl_publisher_destroy(registrar);

    sl_processor_config_init(&proc_cfg);
    proc_cfg.bus = rs.bus;
    proc_cfg.registry = rs.registry;
    proc_cfg.store_location = cfg->db;
    proc_cfg.batch_size = cfg->batch_size;
    proc_cfg.poll_timeout_ms = cfg->batch_timeout_ms;
    proc_cfg.window_ms = (int64_t)cfg->window_seconds * 1000;
    proc_cfg.lateness_ms = (int64_t)cfg->allowed_lateness_seconds * 1000;
    c.proc = sl_processor_start(&proc_cfg, err, sizeof(err));
    if (c.proc == NULL) {
        sl_log_error("run", "cannot start the processor: %s", err);
        goto out;
    }
    c.dlq = start_dlq_handler(&rs, err, sizeof(err));
    if (c.dlq == NULL) {
        sl_log_error("run", "cannot start the dead-letter handler: %s", err);
        goto out;
    }
    if (cfg->detector && start_detector(&rs, &c) != SL_OK)
        goto out;
    sl_api_config_init(&api_cfg);
    api_cfg.listen_host = host;
    api_cfg.port = port;
    api_cfg.store_location = cfg->db;
    api = sl_api_start(&api_cfg, err, sizeof(err));
    if (api == NULL) {
        sl_log_error("run", "cannot start the API: %s", err);
        goto out;
    }
    sl_log_info("run", "API listening on http://%s:%d/ store=%s", host,
                sl_api_port(api), cfg->db);

    if (cfg->generators && !cfg->exit_when_idle)
        generator_started =
            pthread_create(&generator, NULL, generator_main, &rs) == 0;
    atomic_store(&rs.replay_done, cfg->replay_count == 0);
    if (cfg->replay_count > 0)
        replay_started = pthread_create(&replay, NULL, replay_main, &rs) == 0;

    wait_for_end(&rs, &c);
    status = rs.replay_failed ? 1 : 0;

out:
    rs.stop_producers = 1;
    if (generator_started)
        pthread_join(generator, NULL);
    if (replay_started)
        pthread_join(replay, NULL);
    if (c.proc != NULL && c.dlq != NULL && (!cfg->detector || c.det != NULL))
        drain(&rs, &c);
    else if (rs.bus != NULL)
        sl_bus_close(rs.bus);
    if (c.proc != NULL) {
        sl_processor_stats_t stats;
        sl_processor_stats(c.proc, &stats);
        sl_log_info("run",
                    "processed consumed=%llu stored=%llu "
                    "duplicates=%llu dead_lettered=%llu late=%llu",
                    (unsigned long long)stats.consumed,
                    (unsigned long long)stats.stored,
                    (unsigned long long)stats.duplicates,
                    (unsigned long long)stats.dead_lettered,
                    (unsigned long long)stats.late);
    }
    sl_processor_stop(c.proc); /* joins after the final window flush */
    if (c.det != NULL) {
        sl_detector_join(c.det); /* waits for the trainer to finish */
        log_detector_stats(c.det);
    }
    sl_detector_stop(c.det);
    sl_alert_feed_stop(c.feed);
    sl_dlq_handler_stop(c.dlq);
    sl_api_stop(api);
    sl_registry_destroy(rs.registry);
    sl_bus_destroy(rs.bus);
    sl_log_info("run", "stopped");
    return status;
}

int sl_role_migrate(const sl_config_t *cfg)
{
    return prepare_store(cfg->db) == SL_OK ? 0 : 1;
}
