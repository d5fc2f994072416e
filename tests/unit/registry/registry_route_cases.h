/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Checks of the registry's request handlers (sl_registry__route) on a real
 * store, shared by the SQLite registry test and the PostgreSQL one. Each
 * case expects empty schemas and schema_config tables.
 */
#ifndef SLUICE_TESTS_REGISTRY_ROUTE_CASES_H
#define SLUICE_TESTS_REGISTRY_ROUTE_CASES_H

#include "schema/schema_int.h"

/* Runs one SQL statement on the database of st; fails the test when it
 * fails. */
typedef void (*route_cases_exec_fn)(sl_store_t *st, const char *sql);

/** GET, PUT and DELETE of /config and /config/{subject}, and the fallback
 * from a subject to the global level and to BACKWARD. */
void route_cases_levels(sl_registry_routes_t *routes);

/** A level one registry sets is the one the other applies. */
void route_cases_two_registries_agree(sl_registry_routes_t *a,
                                      sl_registry_routes_t *b);

/** One schema registered under two subjects gets one id. */
void route_cases_shared_id(sl_registry_routes_t *routes);

/** A row stored without normalized text by an older version lends its id
 * to a registration under another subject. */
void route_cases_old_row_shares_id(sl_registry_routes_t *routes,
                                   route_cases_exec_fn exec);

#endif
