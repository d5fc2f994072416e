/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Set-up shared by the roles (setup.c). Functions that take err write the
 * reason there when they fail.
 */
#ifndef SLUICE_ROLES_SETUP_H
#define SLUICE_ROLES_SETUP_H

#include <stdbool.h>
#include <stddef.h>

#include "bus/bus.h"
#include "config/config.h"
#include "pipeline/dlq.h"
#include "pipeline/pipeline.h"
#include "schema/schema.h"

/** Makes SIGINT and SIGTERM set the flag sl_role__signalled returns, and
 * ignores SIGPIPE. */
void sl_role__install_signals(void);

/** Returns true once SIGINT or SIGTERM arrived. */
bool sl_role__signalled(void);

/** Opens the store at location and creates or upgrades its schema.
 * Returns SL_OK, or an error after logging why. */
int sl_role__prepare_store(const char *location);

/** Returns 0 when cfg selects the Kafka bus. Otherwise prints why the
 * role (its name, for the message) needs it and returns 2. */
int sl_role__require_kafka(const sl_config_t *cfg, const char *role);

/**
 * Creates the bus the bus setting selects: the in-process bus, or Kafka
 * at kafka-brokers with client.id client_id. Returns NULL on failure.
 */
sl_bus_t *sl_role__bus_create(const sl_config_t *cfg, const char *client_id,
                              char *err, size_t err_size);

/**
 * Creates a schema registry holding the built-in schemas. With
 * registry-url set, registers them with that remote registry first, keeps
 * the ids it assigns and fetches unknown writer ids from it. bus is only
 * used to build a publisher that registers the schemas; nothing is
 * published. Returns NULL on failure.
 */
sl_registry_t *sl_role__registry_create(const sl_config_t *cfg, sl_bus_t *bus,
                                        char *err, size_t err_size);

/** Fills *proc from the processor settings of cfg for bus and registry. */
void sl_role__processor_config(const sl_config_t *cfg, sl_bus_t *bus,
                               sl_registry_t *registry,
                               sl_processor_config_t *proc);

/** Fills *dlq from the dead-letter settings of cfg for bus. */
void sl_role__dlq_handler_config(const sl_config_t *cfg, sl_bus_t *bus,
                                 sl_dlq_handler_config_t *dlq);

#endif
