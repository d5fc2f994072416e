/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The generator and replay threads. Each publishes through its own
 * batching publisher: on Kafka a record costs a round trip when sent on
 * its own, while a batch waits once for all its delivery reports.
 */
#include "roles/producers.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/generator.h"
#include "pipeline/publish.h"
#include "util/err.h"
#include "util/log.h"

/* Records per batch. At 1,000 a batch of readings is about 100 KiB, a
 * few Kafka produce requests. */
#define PRODUCERS_BATCH_RECORDS 1000

/* Creates a publisher that waits for room on a full bus and batches. It
 * dead-letters frames over max-payload-bytes, the limit the processor
 * enforces too, instead of sending them. */
static sl_publisher_t *publisher_create(sl_role__producers_t *p)
{
    sl_publisher_t *pub = sl_publisher_create(p->bus, p->registry, -1);

    if (pub == NULL)
        return NULL;
    sl_publisher_set_batch(pub, PRODUCERS_BATCH_RECORDS);
    sl_publisher_set_max_payload(pub, (size_t)p->cfg->max_payload_bytes);
    return pub;
}

/* Logs the publisher's counts: with batching, a failed record is counted
 * there, not in the generator's own totals. */
static void log_publisher_stats(const char *component, sl_publisher_t *pub)
{
    sl_publisher_stats_t st;

    sl_publisher_flush(pub);
    sl_publisher_stats(pub, &st);
    sl_log_info(component,
                "publisher totals published=%" PRIu64 " failed=%" PRIu64
                " dead_lettered=%" PRIu64,
                st.published, st.failed, st.dead_lettered);
}

static void *generator_main(void *arg)
{
    sl_role__producers_t *p = arg;
    const sl_config_t *cfg = p->cfg;
    sl_generator_config_t gen;
    sl_publisher_t *pub = publisher_create(p);

    if (pub == NULL) {
        sl_log_error("produce", "generator: cannot create a publisher");
        atomic_store(&p->failed, true);
        return NULL;
    }
    sl_generator_config_init(&gen);
    gen.sensors_per_type = cfg->sensors_per_type;
    gen.type_count = cfg->sensor_types;
    gen.rate = cfg->rate;
    gen.event_interval_s = cfg->event_interval;
    gen.anomaly_rate = cfg->anomaly_rate;
    gen.seed = (uint64_t)cfg->seed;
    if (sl_generator_run(&gen, pub, &p->stop) != SL_OK) {
        sl_log_error("produce",
                     "generator stopped: invalid settings or out of "
                     "memory (sensors-per-type=%d sensor-types=%d)",
                     gen.sensors_per_type, gen.type_count);
        atomic_store(&p->failed, true);
    }
    log_publisher_stats("produce", pub);
    sl_publisher_destroy(pub);
    return NULL;
}

int sl_role__replay_options(const sl_config_t *cfg, sl_replay_options_t *opt,
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
    sl_role__producers_t *p = arg;
    sl_replay_options_t opt;
    sl_publisher_t *pub = publisher_create(p);
    char err[256];

    if (pub == NULL) {
        sl_log_error("replay", "cannot create a publisher");
        atomic_store(&p->failed, true);
    }
    /* The role checked the options before starting this thread. */
    sl_role__replay_options(p->cfg, &opt, err, sizeof(err));
    for (size_t i = 0; pub != NULL && i < p->cfg->replay_count; i++) {
        const char *path = p->cfg->replay[i];
        sl_replay_stats_t stats;
        int rc = sl_replay_run(path, &opt, pub, &p->stop, &stats);

        /* sl_replay_run logs the counts of each file itself. */
        if (rc != SL_OK) {
            sl_log_error("replay", "cannot replay %s: %s", path,
                         sl_strerror(rc));
            atomic_store(&p->failed, true);
        } else if (stats.failed > 0) {
            /* Each was logged with its line; the exit status tells a
             * script that the replay is incomplete. */
            sl_log_error("replay",
                         "%" PRIu64 " records of %s were not published",
                         stats.failed, path);
            atomic_store(&p->failed, true);
        }
    }
    sl_publisher_destroy(pub);
    atomic_store(&p->replay_done, true);
    return NULL;
}

int sl_role__producers_start(sl_role__producers_t *p, const sl_config_t *cfg,
                             sl_bus_t *bus, sl_registry_t *registry,
                             bool generators, bool replay)
{
    int rc = SL_OK;

    p->cfg = cfg;
    p->bus = bus;
    p->registry = registry;
    p->stop = 0;
    atomic_store(&p->failed, false);
    atomic_store(&p->replay_done, !replay);
    if (generators) {
        p->generator_started =
            pthread_create(&p->generator, NULL, generator_main, p) == 0;
        if (!p->generator_started) {
            sl_log_error("produce", "cannot start the generator thread");
            rc = SL_EIO;
        }
    }
    if (replay) {
        p->replay_started =
            pthread_create(&p->replay, NULL, replay_main, p) == 0;
        if (!p->replay_started) {
            sl_log_error("replay", "cannot start the replay thread");
            atomic_store(&p->failed, true);
            atomic_store(&p->replay_done, true);
            rc = SL_EIO;
        }
    }
    return rc;
}

bool sl_role__producers_replay_done(sl_role__producers_t *p)
{
    return atomic_load(&p->replay_done);
}

bool sl_role__producers_failed(sl_role__producers_t *p)
{
    return atomic_load(&p->failed);
}

void sl_role__producers_stop(sl_role__producers_t *p)
{
    p->stop = 1;
    if (p->generator_started)
        pthread_join(p->generator, NULL);
    if (p->replay_started)
        pthread_join(p->replay, NULL);
    p->generator_started = false;
    p->replay_started = false;
}
