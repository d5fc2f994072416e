/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The producing stages that `sluice run`, `sluice produce` and `sluice
 * replay` share: the synthetic generators and the replay of recorded
 * files, each on its own thread publishing to a bus (producers.c).
 */
#ifndef SLUICE_ROLES_PRODUCERS_H
#define SLUICE_ROLES_PRODUCERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "bus/bus.h"
#include "config/config.h"
#include "pipeline/replay.h"
#include "schema/schema.h"

/* Zero-initialise before sl_role__producers_start. */
typedef struct sl_role__producers {
    const sl_config_t *cfg;
    sl_bus_t *bus;
    sl_registry_t *registry;
    volatile int stop;
    atomic_bool replay_done;
    atomic_bool failed;
    pthread_t generator, replay;
    bool generator_started, replay_started;
} sl_role__producers_t;

/**
 * Fills opt from the replay settings of cfg. Returns SL_OK, or SL_EINVAL
 * with a message naming the setting in err.
 */
int sl_role__replay_options(const sl_config_t *cfg, sl_replay_options_t *opt,
                            char *err, size_t err_size);

/**
 * Starts the generator thread (when generators) and the thread that
 * replays cfg->replay in order (when replay). cfg, bus and registry must
 * outlive sl_role__producers_stop. Returns SL_OK, or SL_EIO when a thread
 * could not be created (the others keep running until stop).
 */
int sl_role__producers_start(sl_role__producers_t *p, const sl_config_t *cfg,
                             sl_bus_t *bus, sl_registry_t *registry,
                             bool generators, bool replay);

/** Returns true once every replay file is published, or no replay runs. */
bool sl_role__producers_replay_done(sl_role__producers_t *p);

/** Returns true when a replay file or a generator failed, or a replayed
 * record could not be published. */
bool sl_role__producers_failed(sl_role__producers_t *p);

/**
 * Asks the threads to stop and joins them. Each thread publishes the
 * batch in hand first, so every record a producer counted as published
 * was accepted by the bus. Accepts producers that never started.
 */
void sl_role__producers_stop(sl_role__producers_t *p);

#endif
