/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Checks of the store's schema registry calls (schemas rows and the
 * schema_config levels) that must hold on every back end. The SQLite unit
 * test and the PostgreSQL integration test run them on their own stores;
 * each case expects empty schemas and schema_config tables.
 */
#ifndef SLUICE_TESTS_STORE_REGISTRY_CASES_H
#define SLUICE_TESTS_STORE_REGISTRY_CASES_H

#include "store/store.h"

/* What a case needs from the back end under test. */
typedef struct registry_cases_backend {
    /* Runs one SQL statement on the store's database; fails the test when
     * it fails. */
    void (*exec)(sl_store_t *st, const char *sql);
    /* Closes st and opens the same database again. */
    sl_store_t *(*reopen)(sl_store_t *st);
} registry_cases_backend_t;

/** Set, read back, override and delete subject and global levels. */
void registry_cases_levels(sl_store_t *st);

/** Levels the table rejects leave the stored ones as they were. */
void registry_cases_invalid_levels(sl_store_t *st);

/** Levels written before a reopen are read after it. OUT: *st. */
void registry_cases_levels_survive_reopen(const registry_cases_backend_t *be,
                                          sl_store_t **st);

/** One normalized schema under two subjects gets one id. */
void registry_cases_shared_id(sl_store_t *st);

/** A row without normalized text shares its id once the text is set. */
void registry_cases_fill_normalized(const registry_cases_backend_t *be,
                                    sl_store_t *st);

#endif
