/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A throwaway PostgreSQL cluster for integration tests: initdb into a fresh
 * mkdtemp folder, a server that listens only on a unix socket in that
 * folder, one database, and removal of everything on teardown.
 *
 * PostgreSQL refuses to run as root, so under root the folder is given to
 * the "postgres" system user and initdb, pg_ctl and the server run as that
 * user through runuser(1). The binaries are looked up in $SLUICE_PG_BINDIR,
 * then in `pg_config --bindir`, then in /usr/lib/postgresql/NN/bin. When
 * none is found, start fails with a message: tests must fail, not skip.
 */
#ifndef SLUICE_TESTS_PG_HARNESS_H
#define SLUICE_TESTS_PG_HARNESS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sl_pg_harness {
    char dir[64];      /* mkdtemp folder: data/, the socket, server.log */
    char bin_dir[256]; /* folder holding initdb, pg_ctl and postgres */
    char url[256];     /* libpq URL of the test database */
    bool as_postgres;  /* commands run as the postgres user (we are root) */
    bool running;
} sl_pg_harness_t;

/**
 * Creates the cluster, starts the server and creates the database.
 * Returns 0, or -1 with the reason in err; a half-built cluster is removed.
 */
int sl_pg_harness_start(sl_pg_harness_t *h, char *err, size_t err_size);

/** Stops the server (fast shutdown), keeping the data. Returns 0 or -1. */
int sl_pg_harness_stop_server(sl_pg_harness_t *h);

/** Starts the server again on the same data. Returns 0 or -1. */
int sl_pg_harness_start_server(sl_pg_harness_t *h);

/** Stops the server and removes the folder. Accepts a failed start. */
void sl_pg_harness_destroy(sl_pg_harness_t *h);

#endif
