/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The roles of distributed mode, one process each: produce, replay,
 * process, detect, the dead-letter handler, api and registry. They meet
 * through the Kafka bus and a shared store (PostgreSQL), and resolve
 * schema ids through registry-url when it is set.
 *
 * Every role stops on SIGINT or SIGTERM in the order that loses nothing:
 * producers finish the publish in flight (each returns only after Kafka
 * acknowledged it), consumers finish and commit the batch in hand before
 * the bus closes. Records not yet consumed stay in Kafka for the next
 * start or for another process of the same consumer group.
 */
#include <stdio.h>

#include "api/api.h"
#include "api/hub.h"
#include "obs/metrics.h"
#include "obs/trace.h"
#include "pipeline/dlq.h"
#include "pipeline/pipeline.h"
#include "pipeline/view_refresh.h"
#include "roles/producers.h"
#include "roles/roles.h"
#include "roles/setup.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Interval at which a role checks for a signal or the end of its input. */
#define WAIT_STEP_MS 100

static void wait_for_signal(const char *role)
{
    while (!sl_role__signalled())
        sl_time_sleep_ms(WAIT_STEP_MS);
    sl_log_info(role, "signal received, stopping");
}

/* Waits for a signal, setting the dead-letter handler's lag gauge once a
 * second: unlike the processor and the detector, the handler does not
 * export its lag itself. */
static void wait_for_signal_with_dlq(const char *role, sl_dlq_handler_t *dlq)
{
    sl_gauge_t *lag = sl_metrics_gauge("sluice_consumer_lag_records",
                                       "Records not yet committed by the group",
                                       (const char *[]){"group", "dlq", NULL});
    unsigned ticks = 0;

    while (!sl_role__signalled()) {
        if (ticks++ % 10 == 0)
            sl_gauge_set(lag, (double)sl_dlq_handler_lag(dlq));
        sl_time_sleep_ms(WAIT_STEP_MS);
    }
    sl_log_info(role, "signal received, stopping");
}

/* Starts the span exporter when trace-endpoint is set. Returns SL_OK,
 * or an error after printing why. */
static int trace_open(const sl_config_t *cfg, const char *role)
{
    char service[64], err[512];
    int rc;

    snprintf(service, sizeof(service), "sluice-%s", role);
    rc = sl_trace_start_endpoint(cfg->trace_endpoint, service,
                                 cfg->trace_sample_ratio, err, sizeof(err));
    if (rc != SL_OK)
        fprintf(stderr, "sluice: invalid configuration: trace-endpoint: %s\n",
                err);
    return rc;
}

/* Sets sluice_build_info, starts tracing when trace-endpoint is set, and
 * starts the metrics-listen server when that setting is on; *out stays
 * NULL when it is off. Returns 0, 2 after printing why a setting is
 * invalid, or 1 after logging why the server could not listen. */
static int metrics_open(const sl_config_t *cfg, const char *role,
                        sl_metrics_server_t **out)
{
    char host[256], err[512];
    int port;

    *out = NULL;
    sl_metrics_build_info(SLUICE_VERSION);
    if (trace_open(cfg, role) != SL_OK)
        return 2;
    if (cfg->metrics_listen[0] == '\0')
        return 0;
    if (sl_config_split_address("metrics-listen", cfg->metrics_listen, host,
                                sizeof(host), &port, err,
                                sizeof(err)) != SL_OK) {
        fprintf(stderr, "sluice: invalid configuration: %s\n", err);
        sl_trace_stop();
        return 2;
    }
    *out = sl_metrics_server_start(host, port, err, sizeof(err));
    if (*out == NULL) {
        sl_log_error(role, "cannot serve metrics on %s: %s",
                     cfg->metrics_listen, err);
        sl_trace_stop();
        return 1;
    }
    sl_log_info(role, "metrics on http://%s:%d/metrics", host,
                sl_metrics_server_port(*out));
    return 0;
}

/* The bus, registry and metrics server a distributed role works with. */
typedef struct context {
    sl_bus_t *bus;
    sl_registry_t *registry;
    sl_metrics_server_t *metrics;
} context_t;

/* Frees what context_open created; also after a partial open. */
static void context_close(context_t *ctx)
{
    if (ctx->bus != NULL)
        sl_bus_close(ctx->bus);
    sl_registry_destroy(ctx->registry);
    sl_bus_destroy(ctx->bus);
    sl_trace_stop(); /* exports the spans still queued */
    /* Last, so a final scrape still reads the closing counts. */
    sl_metrics_server_stop(ctx->metrics);
    ctx->bus = NULL;
    ctx->registry = NULL;
    ctx->metrics = NULL;
}

/* Checks that cfg selects Kafka, migrates the store when migrate is set,
 * installs the signal handlers and creates the bus and the registry.
 * Returns 0, or the exit status after printing or logging why. */
static int context_open(const sl_config_t *cfg, const char *role, bool migrate,
                        context_t *ctx)
{
    char client_id[64], err[512];
    int status = sl_role__require_kafka(cfg, role);

    ctx->bus = NULL;
    ctx->registry = NULL;
    ctx->metrics = NULL;
    if (status == 0)
        status = metrics_open(cfg, role, &ctx->metrics);
    if (status != 0)
        return status;
    if (migrate && sl_role__prepare_store(cfg->db) != SL_OK) {
        context_close(ctx);
        return 1;
    }
    sl_role__install_signals();

    snprintf(client_id, sizeof(client_id), "sluice-%s", role);
    ctx->bus = sl_role__bus_create(cfg, client_id, err, sizeof(err));
    if (ctx->bus == NULL) {
        sl_log_error(role, "cannot create the Kafka bus brokers=%s: %s",
                     cfg->kafka_brokers, err);
        context_close(ctx);
        return 1;
    }
    ctx->registry = sl_role__registry_create(cfg, ctx->bus, err, sizeof(err));
    if (ctx->registry == NULL) {
        sl_log_error(role, "cannot set up the schema registry: %s", err);
        context_close(ctx);
        return 1;
    }
    sl_log_info(role, "started bus=kafka brokers=%s store=%s",
                cfg->kafka_brokers, migrate ? cfg->db : "(none)");
    return 0;
}

int sl_role_produce(const sl_config_t *cfg)
{
    sl_role__producers_t producers = {0};
    context_t ctx;
    int status = context_open(cfg, "produce", false, &ctx);

    if (status != 0)
        return status;
    if (sl_role__producers_start(&producers, cfg, ctx.bus, ctx.registry, true,
                                 false) == SL_OK)
        wait_for_signal("produce");
    sl_role__producers_stop(&producers);
    status = sl_role__producers_failed(&producers) ? 1 : 0;
    context_close(&ctx);
    sl_log_info("produce", "stopped");
    return status;
}

int sl_role_replay(const sl_config_t *cfg)
{
    sl_role__producers_t producers = {0};
    sl_replay_options_t check;
    context_t ctx;
    char err[256];
    int status;

    if (cfg->replay_count == 0) {
        fprintf(stderr, "sluice replay: replay: missing; give one or more "
                        "files, such as sluice replay readings.csv\n");
        return 2;
    }
    if (sl_role__replay_options(cfg, &check, err, sizeof(err)) != SL_OK) {
        fprintf(stderr, "sluice: invalid configuration: %s\n", err);
        return 2;
    }
    status = context_open(cfg, "replay", false, &ctx);
    if (status != 0)
        return status;
    sl_role__producers_start(&producers, cfg, ctx.bus, ctx.registry, false,
                             true);
    while (!sl_role__signalled() && !sl_role__producers_replay_done(&producers))
        sl_time_sleep_ms(WAIT_STEP_MS);
    if (sl_role__signalled())
        sl_log_info("replay", "signal received, stopping");
    sl_role__producers_stop(&producers);
    status = sl_role__producers_failed(&producers) ? 1 : 0;
    context_close(&ctx);
    sl_log_info("replay", "stopped status=%d", status);
    return status;
}

static void log_processor_stats(sl_processor_t *proc)
{
    sl_processor_stats_t stats;

    sl_processor_stats(proc, &stats);
    sl_log_info("process",
                "processed consumed=%llu stored=%llu duplicates=%llu "
                "dead_lettered=%llu late=%llu",
                (unsigned long long)stats.consumed,
                (unsigned long long)stats.stored,
                (unsigned long long)stats.duplicates,
                (unsigned long long)stats.dead_lettered,
                (unsigned long long)stats.late);
}

int sl_role_process(const sl_config_t *cfg)
{
    sl_processor_config_t proc_cfg;
    sl_dlq_handler_config_t dlq_cfg;
    sl_processor_t *proc = NULL;
    sl_dlq_handler_t *dlq = NULL;
    sl_view_refresher_t *views = NULL;
    context_t ctx;
    char err[512];
    int status = context_open(cfg, "process", true, &ctx);

    if (status != 0)
        return status;
    status = 1;
    sl_role__processor_config(cfg, ctx.bus, ctx.registry, &proc_cfg);
    proc = sl_processor_start(&proc_cfg, err, sizeof(err));
    if (proc == NULL) {
        sl_log_error("process", "cannot start the processor: %s", err);
        goto out;
    }
    /* The processor's failures go to dlq-messages, so this role runs their
     * handler too. `sluice dlq` runs it alone, for example to scale it
     * separately; both may run, as they share one consumer group. */
    sl_role__dlq_handler_config(cfg, ctx.bus, &dlq_cfg);
    dlq = sl_dlq_handler_start(&dlq_cfg, err, sizeof(err));
    if (dlq == NULL) {
        sl_log_error("process", "cannot start the dead-letter handler: %s",
                     err);
        goto out;
    }
    /* On SQLite, which has no materialized views, a refresh does nothing. */
    if (cfg->views_refresh_seconds > 0) {
        views = sl_view_refresher_start(
            cfg->db, (int64_t)cfg->views_refresh_seconds * 1000, err,
            sizeof(err));
        if (views == NULL) {
            sl_log_error("process", "cannot start the view refresher: %s", err);
            goto out;
        }
    }
    wait_for_signal_with_dlq("process", dlq);
    status = 0;

out:
    sl_view_refresher_stop(views);
    if (dlq != NULL)
        sl_dlq_handler_quiesce(dlq);
    sl_bus_close(ctx.bus);
    if (proc != NULL)
        log_processor_stats(proc);
    sl_processor_stop(proc); /* commits the batch in hand, flushes windows */
    sl_dlq_handler_stop(dlq);
    context_close(&ctx);
    sl_log_info("process", "stopped");
    return status;
}

int sl_role_detect(const sl_config_t *cfg)
{
    sl_detector_config_t det_cfg;
    sl_detector_t *det;
    context_t ctx;
    char model_dir[4096], err[512];
    int status = context_open(cfg, "detect", true, &ctx);

    if (status != 0)
        return status;
    sl_role__detector_config(cfg, ctx.bus, ctx.registry, &det_cfg, model_dir,
                             sizeof(model_dir));
    det = sl_detector_start(&det_cfg, err, sizeof(err));
    if (det == NULL) {
        sl_log_error("detect", "cannot start the detector: %s", err);
        context_close(&ctx);
        return 1;
    }
    sl_log_info("detect", "detector started models=%s",
                det_cfg.model_dir != NULL ? det_cfg.model_dir : "(not kept)");
    wait_for_signal("detect");
    sl_detector_request_stop(det);
    sl_bus_close(ctx.bus);
    sl_detector_join(det); /* waits for the trainer to finish */
    sl_detector_stop(det);
    context_close(&ctx);
    sl_log_info("detect", "stopped");
    return 0;
}

int sl_role__dlq_handler(const sl_config_t *cfg)
{
    sl_dlq_handler_config_t dlq_cfg;
    sl_dlq_handler_t *dlq;
    context_t ctx;
    char err[512];
    int status = context_open(cfg, "dlq", true, &ctx);

    if (status != 0)
        return status;
    sl_role__dlq_handler_config(cfg, ctx.bus, &dlq_cfg);
    dlq = sl_dlq_handler_start(&dlq_cfg, err, sizeof(err));
    if (dlq == NULL) {
        sl_log_error("dlq", "cannot start the dead-letter handler: %s", err);
        context_close(&ctx);
        return 1;
    }
    wait_for_signal_with_dlq("dlq", dlq);
    sl_dlq_handler_quiesce(dlq);
    sl_bus_close(ctx.bus);
    sl_dlq_handler_stop(dlq);
    context_close(&ctx);
    sl_log_info("dlq", "stopped");
    return 0;
}

/* Creates the Kafka bus and registry of `sluice api` when bus=kafka, for
 * the WebSocket feeds and HTTP ingest; without them the API serves REST
 * only. Returns SL_OK, or SL_EIO after logging why. */
static int api_bus_open(const sl_config_t *cfg, sl_bus_t **bus,
                        sl_registry_t **reg)
{
    sl_config_t bus_cfg = *cfg;
    char err[512], props[4096];

    *bus = NULL;
    *reg = NULL;
    if (!sl_config_bus_is_kafka(cfg))
        return SL_OK;
    /* The bus's only consumer is the WebSocket hub's group of this
     * process, which serves live data: a new group starts at the end of
     * each partition instead of reading the whole log. */
    snprintf(props, sizeof(props), "%s%sconsumer.auto.offset.reset=latest",
             cfg->kafka_properties,
             cfg->kafka_properties[0] != '\0' ? "," : "");
    bus_cfg.kafka_properties = props;
    *bus = sl_role__bus_create(&bus_cfg, "sluice-api", err, sizeof(err));
    if (*bus == NULL) {
        sl_log_error("api", "cannot create the Kafka bus brokers=%s: %s",
                     cfg->kafka_brokers, err);
        return SL_EIO;
    }
    *reg = sl_role__registry_create(cfg, *bus, err, sizeof(err));
    if (*reg == NULL) {
        sl_log_error("api", "cannot set up the schema registry: %s", err);
        sl_bus_destroy(*bus);
        *bus = NULL;
        return SL_EIO;
    }
    return SL_OK;
}

static void api_bus_close(sl_bus_t *bus, sl_registry_t *reg)
{
    if (bus != NULL)
        sl_bus_close(bus);
    sl_registry_destroy(reg);
    sl_bus_destroy(bus);
}

/* Starts the hub of the WebSocket streams on the Kafka bus. Returns
 * SL_OK, or an error after logging why. */
static int api_hub_start(const sl_config_t *cfg, sl_bus_t *bus,
                         sl_registry_t *reg, sl_ws_hub_t **hub)
{
    sl_ws_hub_config_t hub_cfg;
    char err[512];

    sl_ws_hub_config_init(&hub_cfg);
    hub_cfg.bus = bus;
    hub_cfg.registry = reg;
    hub_cfg.commit_offsets = false; /* Kafka keeps records regardless */
    hub_cfg.max_clients = cfg->ws_max_clients;
    hub_cfg.queue_messages = cfg->ws_queue_messages;
    hub_cfg.stall_ms = cfg->ws_stall_ms;
    *hub = sl_ws_hub_start(&hub_cfg, err, sizeof(err));
    if (*hub == NULL) {
        sl_log_error("api", "cannot start the WebSocket hub: %s", err);
        return SL_EIO;
    }
    return SL_OK;
}

/* Stops the hub after closing the bus, which ends its consumer's poll. */
static void api_hub_stop(sl_bus_t *bus, sl_ws_hub_t *hub)
{
    if (hub == NULL)
        return;
    sl_bus_close(bus);
    sl_ws_hub_stop(hub);
}

int sl_role_api(const sl_config_t *cfg)
{
    sl_api_config_t api_cfg;
    sl_registry_t *reg;
    sl_bus_t *bus;
    sl_ws_hub_t *hub = NULL;
    sl_api_t *api;
    char host[256], err[512];
    int port;

    if (sl_config_listen(cfg, host, sizeof(host), &port, err, sizeof(err)) !=
        SL_OK) {
        fprintf(stderr, "sluice: invalid configuration: %s\n", err);
        return 2;
    }
    if (sl_role__prepare_store(cfg->db) != SL_OK)
        return 1;
    sl_role__install_signals();
    /* The API serves /metrics on its own port, so metrics-listen is
     * not used here. */
    sl_metrics_build_info(SLUICE_VERSION);
    if (trace_open(cfg, "api") != SL_OK)
        return 2;
    if (api_bus_open(cfg, &bus, &reg) != SL_OK) {
        sl_trace_stop();
        return 1;
    }
    if (bus != NULL && api_hub_start(cfg, bus, reg, &hub) != SL_OK) {
        api_bus_close(bus, reg);
        sl_trace_stop();
        return 1;
    }
    sl_api_config_init(&api_cfg);
    api_cfg.ws_hub = hub;
    api_cfg.listen_host = host;
    api_cfg.port = port;
    api_cfg.store_location = cfg->db;
    api_cfg.bus = bus;
    api_cfg.registry = reg;
    api_cfg.token = cfg->api_token;
    api_cfg.cors_origins = cfg->cors_origins;
    api_cfg.max_body_bytes = (size_t)cfg->api_max_body_bytes;
    api_cfg.body_timeout_ms = cfg->api_body_timeout_ms;
    api = sl_api_start(&api_cfg, err, sizeof(err));
    if (api == NULL) {
        sl_log_error("api", "cannot start the API on %s: %s", cfg->listen, err);
        api_hub_stop(bus, hub);
        api_bus_close(bus, reg);
        sl_trace_stop();
        return 1;
    }
    sl_log_info("api", "API listening on http://%s:%d/ store=%s bus=%s", host,
                sl_api_port(api), cfg->db, bus != NULL ? "kafka" : "(none)");
    wait_for_signal("api");
    sl_api_stop(api);
    api_hub_stop(bus, hub);
    api_bus_close(bus, reg);
    sl_trace_stop();
    sl_log_info("api", "stopped");
    return 0;
}

/* Waits for a signal, copying the registry's request count into
 * sluice_registry_requests_total once a second. */
static void wait_for_requests(sl_registry_server_t *srv)
{
    sl_counter_t *requests =
        sl_metrics_counter("sluice_registry_requests_total",
                           "HTTP requests the schema registry served", NULL);
    unsigned long counted = 0;
    unsigned ticks = 0;

    while (!sl_role__signalled()) {
        sl_time_sleep_ms(WAIT_STEP_MS);
        if (ticks++ % 10 == 0) {
            unsigned long now = sl_registry_server_requests(srv);
            sl_counter_add(requests, now - counted);
            counted = now;
        }
    }
    sl_log_info("registry", "signal received, stopping");
}

int sl_role_registry(const sl_config_t *cfg)
{
    sl_metrics_server_t *metrics;
    sl_registry_server_t *srv;
    char host[256], err[512];
    int port, status;

    /* sl_config_load checked the address. */
    sl_config_split_address("registry-listen", cfg->registry_listen, host,
                            sizeof(host), &port, err, sizeof(err));
    status = metrics_open(cfg, "registry", &metrics);
    if (status != 0)
        return status;
    sl_role__install_signals();
    srv = sl_registry_server_start(cfg->db, host, port, err, sizeof(err));
    if (srv == NULL) {
        sl_log_error("registry", "cannot start the schema registry on %s: %s",
                     cfg->registry_listen, err);
        sl_metrics_server_stop(metrics);
        sl_trace_stop();
        return 1;
    }
    sl_log_info("registry",
                "schema registry listening on http://%s:%d/ store=%s", host,
                sl_registry_server_port(srv), cfg->db);
    wait_for_requests(srv);
    sl_log_info("registry", "stopped after %lu requests",
                sl_registry_server_requests(srv));
    sl_registry_server_stop(srv);
    sl_metrics_server_stop(metrics);
    sl_trace_stop();
    return 0;
}
