/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The roles the sluice binary runs, one function each. main.c only picks
 * one by name. A role returns the process exit status: 0 on success, 1 on
 * a runtime failure, 2 on bad configuration.
 */
#ifndef SLUICE_ROLES_ROLES_H
#define SLUICE_ROLES_ROLES_H

#include "bus/bus.h"
#include "config/config.h"
#include "detect/detector.h"

/** Runs every stage in one process on the in-process bus and SQLite,
 * until SIGINT/SIGTERM or, with exit_when_idle, until the replay input is
 * processed. Drains the bus and flushes the store before returning. */
int sl_role_run(const sl_config_t *cfg);

/** Creates or upgrades the database schema and exits. */
int sl_role_migrate(const sl_config_t *cfg);

/**
 * Runs `sluice dlq SUBCOMMAND [flags]` with argv after "dlq": list, show
 * or replay dead-letter rows in the database. Without a subcommand, prints
 * that the handler runs inside `sluice run` and returns 2.
 */
int sl_role_dlq(int argc, char **argv);

/**
 * Runs `sluice bench [flags]` with argv after "bench": drives the pipeline
 * in this process and prints its throughput, latency, CPU and memory
 * against the raw store in the same run (roles/bench.c). Returns 0, 1 on
 * a failed run, 2 on invalid flags.
 */
int sl_role_bench(int argc, char **argv);

/*
 * Distributed mode (distributed.c): one role per process on the Kafka
 * bus. Each returns 2 after printing why when bus is not kafka, except
 * api and registry, which need no bus. Each runs until SIGINT/SIGTERM;
 * replay exits once its files are published.
 */

/** Runs the synthetic generators, publishing to Kafka. */
int sl_role_produce(const sl_config_t *cfg);

/** Publishes the replay files to Kafka in order, then exits: 0 when every
 * file was published, 1 when one failed. */
int sl_role_replay(const sl_config_t *cfg);

/** Runs the processor and the dead-letter handler on Kafka into the
 * store. */
int sl_role_process(const sl_config_t *cfg);

/** Runs the anomaly detector on Kafka. */
int sl_role_detect(const sl_config_t *cfg);

/** Runs the dead-letter handler alone on Kafka (`sluice dlq` with no
 * subcommand). */
int sl_role__dlq_handler(const sl_config_t *cfg);

/** Serves the REST and WebSocket API on listen over the store. */
int sl_role_api(const sl_config_t *cfg);

/** Serves the built-in schema registry on registry-listen, backed by the
 * store's schemas table. */
int sl_role_registry(const sl_config_t *cfg);

/**
 * Fills *det from the detector settings of cfg for a detector on bus.
 * model_dir (model_dir_size bytes) receives the model folder, which
 * det->model_dir then points to (NULL when models are not kept).
 */
void sl_role__detector_config(const sl_config_t *cfg, sl_bus_t *bus,
                              sl_registry_t *registry,
                              sl_detector_config_t *det, char *model_dir,
                              size_t model_dir_size);

#endif
