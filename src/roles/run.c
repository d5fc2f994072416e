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
#include "roles/producers.h"
#include "roles/setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/hub.h"
#include "bus/bus.h"
#include "obs/metrics.h"
#include "obs/trace.h"
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

typedef struct run_state {
    const sl_config_t *cfg;
    sl_bus_t *bus;
    sl_registry_t *registry;
    sl_role__producers_t producers;
} run_state_t;

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

/* Lag gauges of the consumers that do not set their own: the processor
 * and the detector update sluice_consumer_lag_records as they poll. */
typedef struct lag_gauges {
    sl_gauge_t *dlq;
    sl_gauge_t *feed;
} lag_gauges_t;

static void lag_gauges_init(lag_gauges_t *g)
{
    static const char help[] = "Records not yet committed by the group";

    g->dlq = sl_metrics_gauge("sluice_consumer_lag_records", help,
                              (const char *[]){"group", "dlq", NULL});
    g->feed = sl_metrics_gauge("sluice_consumer_lag_records", help,
                               (const char *[]){"group", "alert_feed", NULL});
}

static void lag_gauges_update(const lag_gauges_t *g, const consumers_t *c)
{
    sl_gauge_set(g->dlq, (double)sl_dlq_handler_lag(c->dlq));
    if (c->feed != NULL)
        sl_gauge_set(g->feed, (double)sl_alert_feed_lag(c->feed));
}

/* Waits for a signal, or for the replay input to be processed. */
static void wait_for_end(run_state_t *rs, const consumers_t *c)
{
    lag_gauges_t lags;
    unsigned ticks = 0;

    lag_gauges_init(&lags);
    while (!sl_role__signalled()) {
        sl_time_sleep_ms(100);
        if (ticks++ % 10 == 0) /* once a second */
            lag_gauges_update(&lags, c);
        if (rs->cfg->exit_when_idle &&
            sl_role__producers_replay_done(&rs->producers) && drained(c)) {
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
    sl_dlq_handler_config_t dlq_cfg;

    sl_role__dlq_handler_config(rs->cfg, rs->bus, &dlq_cfg);
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

/* Starts the hub of the API's WebSocket streams. Returns NULL after
 * logging why it could not start. */
static sl_ws_hub_t *start_ws_hub(const sl_config_t *cfg, sl_bus_t *bus,
                                 sl_registry_t *registry)
{
    sl_ws_hub_config_t hub_cfg;
    sl_ws_hub_t *hub;
    char err[512];

    sl_ws_hub_config_init(&hub_cfg);
    hub_cfg.bus = bus;
    hub_cfg.registry = registry;
    /* The in-process bus keeps a record until every group committed it. */
    hub_cfg.commit_offsets = !sl_config_bus_is_kafka(cfg);
    hub_cfg.max_clients = cfg->ws_max_clients;
    hub_cfg.queue_messages = cfg->ws_queue_messages;
    hub_cfg.stall_ms = cfg->ws_stall_ms;
    hub = sl_ws_hub_start(&hub_cfg, err, sizeof(err));
    if (hub == NULL)
        sl_log_error("run", "cannot start the WebSocket hub: %s", err);
    return hub;
}

int sl_role_run(const sl_config_t *cfg)
{
    run_state_t rs = {.cfg = cfg};
    sl_processor_config_t proc_cfg;
    sl_api_config_t api_cfg;
    consumers_t c = {0};
    sl_api_t *api = NULL;
    sl_ws_hub_t *hub = NULL;
    char host[256], err[512];
    int port, status = 1;

    sl_replay_options_t replay_check;

    if (sl_config_listen(cfg, host, sizeof(host), &port, err, sizeof(err)) !=
            SL_OK ||
        sl_role__replay_options(cfg, &replay_check, err, sizeof(err)) !=
            SL_OK) {
        fprintf(stderr, "sluice: invalid configuration: %s\n", err);
        return 2;
    }
    if (sl_role__prepare_store(cfg->db) != SL_OK)
        return 1;
    sl_role__install_signals();
    sl_metrics_build_info(SLUICE_VERSION);
    if (sl_trace_start_endpoint(cfg->trace_endpoint, "sluice",
                                cfg->trace_sample_ratio, err,
                                sizeof(err)) != SL_OK) {
        fprintf(stderr, "sluice: invalid configuration: trace-endpoint: %s\n",
                err);
        return 2;
    }

    rs.bus = sl_role__bus_create(cfg, "sluice-run", err, sizeof(err));
    if (rs.bus == NULL) {
        sl_log_error("run", "cannot create the bus: %s", err);
        goto out;
    }
    /* The built-in schemas are registered before any stage starts, so
     * replayed frames with their ids decode even when no generator runs. */
    rs.registry = sl_role__registry_create(cfg, rs.bus, err, sizeof(err));
    if (rs.registry == NULL) {
        sl_log_error("run", "cannot set up the schema registry: %s", err);
        goto out;
    }

    sl_role__processor_config(cfg, rs.bus, rs.registry, &proc_cfg);
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
    hub = start_ws_hub(cfg, rs.bus, rs.registry);
    if (hub == NULL)
        goto out;
    sl_api_config_init(&api_cfg);
    api_cfg.ws_hub = hub;
    api_cfg.listen_host = host;
    api_cfg.port = port;
    api_cfg.store_location = cfg->db;
    api_cfg.bus = rs.bus;
    api_cfg.registry = rs.registry;
    api_cfg.token = cfg->api_token;
    api_cfg.cors_origins = cfg->cors_origins;
    api_cfg.max_body_bytes = (size_t)cfg->api_max_body_bytes;
    api_cfg.body_timeout_ms = cfg->api_body_timeout_ms;
    api = sl_api_start(&api_cfg, err, sizeof(err));
    if (api == NULL) {
        sl_log_error("run", "cannot start the API: %s", err);
        goto out;
    }
    sl_log_info("run", "API listening on http://%s:%d/ store=%s", host,
                sl_api_port(api), cfg->db);

    sl_role__producers_start(&rs.producers, cfg, rs.bus, rs.registry,
                             cfg->generators && !cfg->exit_when_idle,
                             cfg->replay_count > 0);
    wait_for_end(&rs, &c);
    status = sl_role__producers_failed(&rs.producers) ? 1 : 0;

out:
    sl_role__producers_stop(&rs.producers);
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
    sl_ws_hub_stop(hub); /* after the API, whose clients use it */
    sl_trace_stop();     /* exports the spans still queued */
    sl_registry_destroy(rs.registry);
    sl_bus_destroy(rs.bus);
    sl_log_info("run", "stopped");
    return status;
}

int sl_role_migrate(const sl_config_t *cfg)
{
    return sl_role__prepare_store(cfg->db) == SL_OK ? 0 : 1;
}
