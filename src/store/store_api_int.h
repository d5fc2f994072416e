/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PostgreSQL side of the API queries declared at the end of store.h.
 * store_sqlite_api.c contains the public functions: they run the SQLite
 * queries themselves and hand a PostgreSQL handle to these.
 */
#ifndef SLUICE_STORE_STORE_API_INT_H
#define SLUICE_STORE_STORE_API_INT_H

#include "store/store.h"

int sl_pg__alert_list(sl_store_t *st, const sl_alert_query_t *q,
                      sl_alert_t *out, size_t max, size_t *n);
int sl_pg__alert_ack(sl_store_t *st, int64_t id, sl_alert_t *out);
int sl_pg__event_stats(sl_store_t *st, int64_t from_ms, int64_t to_ms,
                       size_t top_max, sl_event_stats_t *out);
int sl_pg__events_latest(sl_store_t *st, int event_type, int64_t from_ms,
                         int64_t to_ms, sl_event_t *out, size_t max, size_t *n);
int sl_pg__reading_history(sl_store_t *st, const char *sensor_id,
                           int64_t from_ms, int64_t to_ms, int64_t bucket_ms,
                           sl_history_point_t *out, size_t max, size_t *n);

/** Parses a stored alert type or severity name. Returns SL_OK or
 * SL_EINVAL. */
int sl_store__alert_type_parse(const char *name, sl_alert_type_t *out);
int sl_store__severity_parse(const char *name, sl_alert_severity_t *out);

#endif
