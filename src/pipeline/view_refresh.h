/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A background thread that refreshes the store's materialized views
 * (sl_store_refresh_views) at a fixed interval, so dashboards reading
 * sensor_stats and sensor_readings_hourly lag the raw rows by at most
 * that interval plus one refresh.
 */
#ifndef SLUICE_PIPELINE_VIEW_REFRESH_H
#define SLUICE_PIPELINE_VIEW_REFRESH_H

#include <stddef.h>
#include <stdint.h>

typedef struct sl_view_refresher sl_view_refresher_t;

/**
 * Opens a store handle of its own on store_location and starts a thread
 * that refreshes the views every interval_ms (> 0), the first time one
 * interval after the start. A failed refresh is logged once per outage and
 * counted in sluice_view_refreshes_total{result="error"}; the next
 * interval tries again. Returns NULL with the reason in err.
 */
sl_view_refresher_t *sl_view_refresher_start(const char *store_location,
                                             int64_t interval_ms, char *err,
                                             size_t err_size);

/** Returns how many refreshes succeeded so far. Thread-safe. */
uint64_t sl_view_refresher_count(const sl_view_refresher_t *vr);

/** Stops the thread without waiting for the next interval, closes the
 * store handle and frees vr. A refresh in progress is finished first.
 * Accepts NULL. */
void sl_view_refresher_stop(sl_view_refresher_t *vr);

#endif
