/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Throwaway PostgreSQL cluster for integration tests (see pg_harness.h).
 * initdb, pg_ctl and rm run through fork and execv with an argument list,
 * so no shell parses the temporary paths.
 */
#include "pg_harness.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#define PG_HARNESS_DB "sluice_test"
#define PG_HARNESS_USER "sluice"

/* Runs argv (argv[0] an absolute path), as the postgres user when
 * h->as_postgres. Returns the exit status, or -1 when it did not run. */
static int run_command(const sl_pg_harness_t *h, char *const argv[])
{
    char *full[16];
    size_t n = 0;
    pid_t pid;
    int status;

    if (h->as_postgres) {
        full[n++] = "/usr/sbin/runuser";
        full[n++] = "-u";
        full[n++] = "postgres";
        full[n++] = "--";
    }
    for (size_t i = 0; argv[i] != NULL && n < 15; i++)
        full[n++] = argv[i];
    full[n] = NULL;

    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execv(full[0], full);
        fprintf(stderr, "pg_harness: execv %s failed: %s\n", full[0],
                strerror(errno));
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool has_initdb(const char *dir)
{
    char path[300];

    snprintf(path, sizeof(path), "%s/initdb", dir);
    return access(path, X_OK) == 0;
}

/* Finds the folder of initdb, pg_ctl and postgres (see pg_harness.h). */
static int find_bin_dir(sl_pg_harness_t *h)
{
    const char *env = getenv("SLUICE_PG_BINDIR");
    FILE *p;
    glob_t found;
    int rc = -1;

    if (env != NULL && env[0] != '\0') {
        snprintf(h->bin_dir, sizeof(h->bin_dir), "%s", env);
        return has_initdb(h->bin_dir) ? 0 : -1;
    }

    p = popen("pg_config --bindir 2>/dev/null", "r");
    if (p != NULL) {
        if (fgets(h->bin_dir, sizeof(h->bin_dir), p) != NULL)
            h->bin_dir[strcspn(h->bin_dir, "\n")] = '\0';
        pclose(p);
        if (h->bin_dir[0] != '\0' && has_initdb(h->bin_dir))
            return 0;
    }

    /* Picks the highest major version: glob sorts "9.6" after "15". */
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &found) == 0) {
        long best = -1;

        for (size_t i = 0; i < found.gl_pathc; i++) {
            const char *major =
                found.gl_pathv[i] + strlen("/usr/lib/postgresql/");
            long version = strtol(major, NULL, 10);

            if (version > best) {
                best = version;
                snprintf(h->bin_dir, sizeof(h->bin_dir), "%s",
                         found.gl_pathv[i]);
            }
        }
        h->bin_dir[strlen(h->bin_dir) - strlen("/initdb")] = '\0';
        rc = 0;
    }
    globfree(&found);
    return rc;
}

/* Gives the folder to the postgres user when we run as root. */
static int prepare_dir(sl_pg_harness_t *h, char *err, size_t err_size)
{
    struct passwd *pw;

    if (geteuid() != 0)
        return 0;
    pw = getpwnam("postgres");
    if (pw == NULL) {
        snprintf(err, err_size,
                 "running as root but no \"postgres\" user exists; "
                 "PostgreSQL refuses to run as root");
        return -1;
    }
    if (chown(h->dir, pw->pw_uid, pw->pw_gid) != 0) {
        snprintf(err, err_size, "chown %s failed: %s", h->dir, strerror(errno));
        return -1;
    }
    h->as_postgres = true;
    return 0;
}

/* Appends the test settings to postgresql.conf: no TCP, the socket in our
 * folder, and no fsync because the cluster is thrown away. */
static int write_config(sl_pg_harness_t *h, char *err, size_t err_size)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/data/postgresql.conf", h->dir);
    f = fopen(path, "a");
    if (f == NULL) {
        snprintf(err, err_size, "opening %s failed: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f,
            "\nlisten_addresses = ''\n"
            "unix_socket_directories = '%s'\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "max_connections = 20\nshared_buffers = 64MB\n",
            h->dir);
    return fclose(f) == 0 ? 0 : -1;
}

static int create_database(sl_pg_harness_t *h, char *err, size_t err_size)
{
    char conninfo[160];
    PGconn *conn;
    PGresult *res;
    int rc = 0;

    snprintf(conninfo, sizeof(conninfo), "host=%s dbname=postgres user=%s",
             h->dir, PG_HARNESS_USER);
    conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(err, err_size, "connecting to the new cluster failed: %s",
                 PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    res = PQexec(conn, "CREATE DATABASE " PG_HARNESS_DB);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        snprintf(err, err_size, "CREATE DATABASE failed: %s",
                 PQerrorMessage(conn));
        rc = -1;
    }
    PQclear(res);
    PQfinish(conn);
    return rc;
}

int sl_pg_harness_start(sl_pg_harness_t *h, char *err, size_t err_size)
{
    char initdb[300], data[96];

    memset(h, 0, sizeof(*h));
    if (find_bin_dir(h) != 0) {
        snprintf(err, err_size,
                 "PostgreSQL server binaries not found: set "
                 "SLUICE_PG_BINDIR or install postgresql "
                 "(scripts/install-deps --test)");
        return -1;
    }
    snprintf(h->dir, sizeof(h->dir), "/tmp/sl_pg.XXXXXX");
    if (mkdtemp(h->dir) == NULL) {
        snprintf(err, err_size, "mkdtemp failed: %s", strerror(errno));
        h->dir[0] = '\0';
        return -1;
    }
    if (prepare_dir(h, err, err_size) != 0)
        goto fail;

    snprintf(initdb, sizeof(initdb), "%s/initdb", h->bin_dir);
    snprintf(data, sizeof(data), "%s/data", h->dir);
    {
        char *argv[] = {initdb,          "-D",        data,    "-U",
                        PG_HARNESS_USER, "-A",        "trust", "-E",
                        "UTF8",          "--no-sync", NULL};

        if (run_command(h, argv) != 0) {
            snprintf(err, err_size, "%s -D %s failed", initdb, data);
            goto fail;
        }
    }
    if (write_config(h, err, err_size) != 0)
        goto fail;
    if (sl_pg_harness_start_server(h) != 0) {
        snprintf(err, err_size, "pg_ctl start failed; see %s/server.log",
                 h->dir);
        goto fail;
    }
    if (create_database(h, err, err_size) != 0)
        goto fail;

    snprintf(h->url, sizeof(h->url),
             "postgresql:///%s?host=%s&user=%s&connect_timeout=5",
             PG_HARNESS_DB, h->dir, PG_HARNESS_USER);
    return 0;

fail:
    sl_pg_harness_destroy(h);
    return -1;
}

/* Runs pg_ctl with action ("start" or "stop") on our data folder. */
static int pg_ctl(sl_pg_harness_t *h, const char *action)
{
    char path[300], data[96], log[96];

    snprintf(path, sizeof(path), "%s/pg_ctl", h->bin_dir);
    snprintf(data, sizeof(data), "%s/data", h->dir);
    snprintf(log, sizeof(log), "%s/server.log", h->dir);
    if (strcmp(action, "start") == 0) {
        char *argv[] = {path, "start", "-w", "-s", "-D", data, "-l", log, NULL};
        return run_command(h, argv);
    }
    char *argv[] = {path, "stop", "-w", "-s", "-m", "fast", "-D", data, NULL};
    return run_command(h, argv);
}

int sl_pg_harness_start_server(sl_pg_harness_t *h)
{
    if (pg_ctl(h, "start") != 0)
        return -1;
    h->running = true;
    return 0;
}

int sl_pg_harness_stop_server(sl_pg_harness_t *h)
{
    if (!h->running)
        return 0;
    if (pg_ctl(h, "stop") != 0)
        return -1;
    h->running = false;
    return 0;
}

void sl_pg_harness_destroy(sl_pg_harness_t *h)
{
    if (h->dir[0] == '\0')
        return;
    if (h->running && sl_pg_harness_stop_server(h) != 0)
        fprintf(stderr, "pg_harness: stopping the server in %s failed\n",
                h->dir);
    {
        char *argv[] = {"/bin/rm", "-rf", h->dir, NULL};
        sl_pg_harness_t self = *h;

        self.as_postgres = false; /* we own the parent folder */
        run_command(&self, argv);
    }
    h->dir[0] = '\0';
}
