/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The roles the sluice binary runs, one function each. main.c only picks
 * one by name. A role returns the process exit status: 0 on success, 1 on
 * a runtime failure, 2 on bad configuration.
 */
#ifndef SLUICE_ROLES_ROLES_H
#define SLUICE_ROLES_ROLES_H

#include "config/config.h"

/** Runs every stage in one process on the in-process bus and SQLite,
 * until SIGINT/SIGTERM or, with exit_when_idle, until the replay input is
 * processed. Drains the bus and flushes the store before returning. */
int sl_role_run(const sl_config_t *cfg);

/** Creates or upgrades the database schema and exits. */
int sl_role_migrate(const sl_config_t *cfg);

#endif
