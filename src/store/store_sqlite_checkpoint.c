/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Checkpoints of the SQLite write-ahead log, moved off the writing thread.
 *
 * By default SQLite checkpoints inside the commit that takes the WAL past
 * 1000 pages: the committing thread copies every page back into the
 * database file and syncs both files. Under `sluice bench`, turning those
 * checkpoints off raised the processor's throughput by about 15%, so that
 * is the time it spent neither decoding nor storing. Here a commit past
 * the background threshold only wakes a thread of the handle, which
 * checkpoints through a connection of its own while the writer goes on.
 * WAL mode lets both run at once.
 *
 * A checkpointer that falls behind (a starved core, a reader pinning old
 * pages) must not let the WAL grow without bound, so a commit that finds
 * the WAL past the inline threshold checkpoints in place, as SQLite would.
 * Both thresholds are pages and can be set on a "file:" location with the
 * query parameters wal_background_pages and wal_inline_pages.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "obs/metrics.h"
#include "store/store_int.h"
#include "util/log.h"

/* SQLite's own automatic checkpoint threshold. */
#define DEFAULT_BACKGROUND_PAGES 1000
/* 16 MiB of 4 KiB pages. Under a steady stream the thread never copies
 * the newest frames before the next commit, so the WAL only restarts
 * after an in-place checkpoint. That one copies just what the thread
 * left, and this size bounds the file. */
#define DEFAULT_INLINE_PAGES 4000

struct sl_sqlite_checkpointer {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool started;   /* the thread exists: it is joined on close */
    bool requested; /* a commit asked for a checkpoint */
    bool stopping;
    bool failed; /* the thread has no connection: commits checkpoint */
    char *path;
    int64_t background_pages;
    int64_t inline_pages;
    /* Counted here for tests, and in the process's metrics. */
    uint64_t background_count;
    uint64_t inline_count;
    sl_counter_t *background_metric;
    sl_counter_t *inline_metric;
};

static sl_counter_t *checkpoint_counter(const char *mode)
{
    return sl_metrics_counter(
        "sluice_sqlite_checkpoints_total",
        "WAL checkpoints of the SQLite store, by where they ran: background "
        "(a thread of the store) or inline (a commit found the WAL past "
        "wal_inline_pages)",
        (const char *[]){"mode", mode, NULL});
}

static void *checkpointer_main(void *arg)
{
    struct sl_sqlite_checkpointer *cp = arg;
    sqlite3 *db = NULL;
    int rc;

    pthread_setname_np(pthread_self(), "sl-checkpoint");
    rc = sqlite3_open_v2(
        cp->path, &db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);

    /* A connection opens the WAL on its first read; until then a
     * checkpoint through it succeeds without copying anything. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL,
                          NULL);
    pthread_mutex_lock(&cp->lock);
    if (rc != SQLITE_OK) {
        sl_log_warn("store",
                    "background checkpoints unavailable, commits will "
                    "checkpoint in place path=%s error=\"%s\"",
                    cp->path, sqlite3_errstr(rc));
        cp->failed = true;
    }
    while (!cp->stopping && !cp->failed) {
        if (!cp->requested) {
            pthread_cond_wait(&cp->wake, &cp->lock);
            continue;
        }
        cp->requested = false;
        pthread_mutex_unlock(&cp->lock);

        int log_pages = 0, copied_pages = 0;
        /* PASSIVE copies what no reader still needs and never waits, so
         * the writer's next commit is not held up. */
        rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                       &log_pages, &copied_pages);
        if (rc == SQLITE_OK && copied_pages > 0) {
            sl_counter_add(cp->background_metric, 1);
            sl_log_debug("store",
                         "checkpoint path=%s wal_pages=%d copied_pages=%d",
                         cp->path, log_pages, copied_pages);
        } else if ((rc & 0xff) != SQLITE_BUSY) {
            sl_log_warn("store", "checkpoint failed path=%s error=\"%s\"",
                        cp->path, sqlite3_errstr(rc));
        }
        pthread_mutex_lock(&cp->lock);
        if (rc == SQLITE_OK && copied_pages > 0)
            cp->background_count++;
    }
    pthread_mutex_unlock(&cp->lock);
    sqlite3_close_v2(db);
    return NULL;
}

/* Wakes the thread, starting it on first use. Returns false when it could
 * not be started. Called with cp->lock held. */
static bool request_background(struct sl_sqlite_checkpointer *cp)
{
    if (cp->failed)
        return false;
    if (!cp->started) {
        if (pthread_create(&cp->thread, NULL, checkpointer_main, cp) != 0)
            return false;
        cp->started = true;
    }
    cp->requested = true;
    pthread_cond_signal(&cp->wake);
    return true;
}

/* sqlite3_wal_hook callback, run by the writer after each commit. */
static int on_commit(void *arg, sqlite3 *db, const char *schema, int pages)
{
    struct sl_sqlite_checkpointer *cp = arg;
    bool in_place = pages >= cp->inline_pages;

    if (!in_place && pages < cp->background_pages)
        return SQLITE_OK;
    if (!in_place) {
        pthread_mutex_lock(&cp->lock);
        in_place = !request_background(cp);
        pthread_mutex_unlock(&cp->lock);
    }
    if (in_place) {
        /* A failure (SQLITE_BUSY while the thread checkpoints) is left to
         * the next commit: the commit itself has succeeded. */
        if (sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE,
                                      NULL, NULL) == SQLITE_OK) {
            sl_counter_add(cp->inline_metric, 1);
            pthread_mutex_lock(&cp->lock);
            cp->inline_count++;
            pthread_mutex_unlock(&cp->lock);
        }
    }
    return SQLITE_OK;
}

int sl_sqlite__checkpointer_attach(sl_sqlite_t *sq)
{
    const char *file = sqlite3_db_filename(sq->db, "main");
    struct sl_sqlite_checkpointer *cp = calloc(1, sizeof(*cp));

    if (cp == NULL)
        return SQLITE_NOMEM;
    cp->path = strdup(sq->path);
    if (cp->path == NULL) {
        free(cp);
        return SQLITE_NOMEM;
    }
    cp->background_pages = sqlite3_uri_int64(file, "wal_background_pages",
                                             DEFAULT_BACKGROUND_PAGES);
    cp->inline_pages =
        sqlite3_uri_int64(file, "wal_inline_pages", DEFAULT_INLINE_PAGES);
    if (cp->background_pages < 1)
        cp->background_pages = DEFAULT_BACKGROUND_PAGES;
    if (cp->inline_pages < 1)
        cp->inline_pages = DEFAULT_INLINE_PAGES;
    cp->background_metric = checkpoint_counter("background");
    cp->inline_metric = checkpoint_counter("inline");
    pthread_mutex_init(&cp->lock, NULL);
    pthread_cond_init(&cp->wake, NULL);
    sq->checkpointer = cp;
    /* Replaces the hook of SQLite's automatic checkpoints. */
    sqlite3_wal_hook(sq->db, on_commit, cp);
    return SQLITE_OK;
}

void sl_sqlite__checkpointer_detach(sl_sqlite_t *sq)
{
    struct sl_sqlite_checkpointer *cp = sq->checkpointer;

    if (cp == NULL)
        return;
    if (sq->db != NULL)
        sqlite3_wal_hook(sq->db, NULL, NULL);
    pthread_mutex_lock(&cp->lock);
    cp->stopping = true;
    pthread_cond_signal(&cp->wake);
    pthread_mutex_unlock(&cp->lock);
    if (cp->started)
        pthread_join(cp->thread, NULL);
    pthread_cond_destroy(&cp->wake);
    pthread_mutex_destroy(&cp->lock);
    free(cp->path);
    free(cp);
    sq->checkpointer = NULL;
}

void sl_store__sqlite_checkpoints(sl_store_t *st, uint64_t *background,
                                  uint64_t *in_place)
{
    struct sl_sqlite_checkpointer *cp = ((sl_sqlite_t *)st)->checkpointer;

    *background = 0;
    *in_place = 0;
    if (cp == NULL)
        return;
    pthread_mutex_lock(&cp->lock);
    *background = cp->background_count;
    *in_place = cp->inline_count;
    pthread_mutex_unlock(&cp->lock);
}
