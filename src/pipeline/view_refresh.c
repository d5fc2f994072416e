/* SPDX-License-Identifier: Apache-2.0 */
#include "pipeline/view_refresh.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "obs/metrics.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Granularity of the stop check while waiting for the next refresh. */
#define STOP_CHECK_MS 100

struct sl_view_refresher {
    sl_store_t *st;
    int64_t interval_ms;
    pthread_t thread;
    atomic_bool stopping;
    atomic_uint_least64_t refreshed;
    sl_counter_t *ok;
    sl_counter_t *failed;
    sl_histogram_t *duration;
};

/* Waits until the next refresh is due or stop was called. Returns false
 * once stopping. */
static bool wait_interval(sl_view_refresher_t *vr)
{
    int64_t due = sl_time_mono_ms() + vr->interval_ms;
    int64_t now;

    while (!atomic_load(&vr->stopping) && (now = sl_time_mono_ms()) < due)
        sl_time_sleep_ms(due - now < STOP_CHECK_MS ? due - now : STOP_CHECK_MS);
    return !atomic_load(&vr->stopping);
}

static void *refresher_main(void *arg)
{
    sl_view_refresher_t *vr = arg;
    bool failing = false;

    while (wait_interval(vr)) {
        int64_t start_ns = sl_time_mono_ns();
        int rc = sl_store_refresh_views(vr->st);

        sl_histogram_observe(vr->duration,
                             (double)(sl_time_mono_ns() - start_ns) / 1e9);
        if (rc == SL_OK) {
            sl_counter_add(vr->ok, 1);
            atomic_fetch_add(&vr->refreshed, 1);
            if (failing)
                sl_log_info("views", "materialized views refreshed again");
            failing = false;
            continue;
        }
        sl_counter_add(vr->failed, 1);
        if (!failing)
            sl_log_warn("views",
                        "refreshing the materialized views failed: %s; "
                        "retrying every %" PRId64 " ms",
                        sl_strerror(rc), vr->interval_ms);
        failing = true;
    }
    return NULL;
}

/* Seconds: a refresh rescans sensor_readings, so it grows with the table. */
static const double refresh_bounds[] = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60};

sl_view_refresher_t *sl_view_refresher_start(const char *store_location,
                                             int64_t interval_ms, char *err,
                                             size_t err_size)
{
    sl_view_refresher_t *vr;

    if (store_location == NULL || interval_ms <= 0) {
        snprintf(err, err_size, "view refresher: invalid interval");
        return NULL;
    }
    vr = calloc(1, sizeof(*vr));
    if (vr == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    vr->interval_ms = interval_ms;
    vr->ok =
        sl_metrics_counter("sluice_view_refreshes_total",
                           "Refreshes of the materialized views, by result",
                           (const char *[]){"result", "ok", NULL});
    vr->failed =
        sl_metrics_counter("sluice_view_refreshes_total",
                           "Refreshes of the materialized views, by result",
                           (const char *[]){"result", "error", NULL});
    vr->duration = sl_metrics_histogram(
        "sluice_view_refresh_duration_seconds",
        "Time one refresh of the materialized views took", refresh_bounds,
        sizeof(refresh_bounds) / sizeof(refresh_bounds[0]), NULL);
    vr->st = sl_store_open(store_location, err, err_size);
    if (vr->st == NULL) {
        free(vr);
        return NULL;
    }
    if (pthread_create(&vr->thread, NULL, refresher_main, vr) != 0) {
        snprintf(err, err_size, "view refresher: cannot start its thread");
        sl_store_close(vr->st);
        free(vr);
        return NULL;
    }
    return vr;
}

uint64_t sl_view_refresher_count(const sl_view_refresher_t *vr)
{
    return atomic_load(&vr->refreshed);
}

void sl_view_refresher_stop(sl_view_refresher_t *vr)
{
    if (vr == NULL)
        return;
    atomic_store(&vr->stopping, true);
    pthread_join(vr->thread, NULL);
    sl_store_close(vr->st);
    free(vr);
}
