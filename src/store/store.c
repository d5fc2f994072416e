/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The back-end-neutral half of the store: picks a back end from the
 * location string, checks the arguments of every public call and forwards
 * it through the back end's operation table (store_int.h).
 */
#include "store/store.h"

#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <stdlib.h>

#include "store/store_int.h"
#include "store/store_pg_int.h"
#include "util/err.h"

static const char *const dlq_class_names[] = {"decode", "validation", "storage",
                                              "processing"};
static const char *const dlq_status_names[] = {"pending", "retrying",
                                               "resolved", "dead"};

static const char *const alert_type_names[] = {"ml_anomaly", "threshold"};
static const char *const alert_severity_names[] = {"info", "warning",
                                                   "critical"};

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

void sl_reading_query_init(sl_reading_query_t *q)
{
    q->sensor_id = NULL;
    q->sensor_type = -1;
    q->from_ms = INT64_MIN;
    q->to_ms = INT64_MAX;
    q->anomalies_only = false;
    q->limit = 100;
}

sl_store_t *sl_store_open(const char *location, char *err, size_t err_size)
{
    if (location == NULL || location[0] == '\0') {
        snprintf(err, err_size, "store location is empty");
        return NULL;
    }

    if (has_prefix(location, "postgres://") ||
        has_prefix(location, "postgresql://")) {
        return sl_store__pg_open(location, err, err_size);
    }

    if (has_prefix(location, "sqlite:"))
        location += strlen("sqlite:");
    if (location[0] == '\0') {
        snprintf(err, err_size, "store location \"sqlite:\" has no path");
        return NULL;
    }
    return sl_store__sqlite_open(location, err, err_size);
}

void sl_store_close(sl_store_t *st)
{
    if (st != NULL)
        st->ops->close(st);
}

int sl_store_migrate(sl_store_t *st, char *err, size_t err_size)
{
    if (st == NULL)
        return SL_EINVAL;
    return st->ops->migrate(st, err, err_size);
}

int sl_store_schema_version(sl_store_t *st)
{
    if (st == NULL)
        return -1;
    return st->ops->schema_version(st);
}

int sl_store_write(sl_store_t *st, const sl_store_batch_t *batch,
                   sl_store_result_t *result, sl_store_reject_cb reject,
                   void *reject_ctx)
{
    if (result != NULL)
        memset(result, 0, sizeof(*result));
    if (st == NULL || batch == NULL)
        return SL_EINVAL;
    if ((batch->reading_count > 0 && batch->readings == NULL) ||
        (batch->event_count > 0 && batch->events == NULL) ||
        (batch->aggregate_count > 0 && batch->aggregates == NULL) ||
        (batch->recompute_count > 0 && batch->recompute == NULL) ||
        (batch->dlq_count > 0 && batch->dlq == NULL) ||
        (batch->resolution_count > 0 && batch->resolutions == NULL))
        return SL_EINVAL;
    return st->ops->write(st, batch, result, reject, reject_ctx);
}

int sl_store_readings(sl_store_t *st, const sl_reading_query_t *q,
                      sl_reading_t *out, size_t max, size_t *n)
{
    if (n != NULL)
        *n = 0;
    if (st == NULL || q == NULL || n == NULL || (out == NULL && max > 0))
        return SL_EINVAL;
    return st->ops->readings(st, q, out, max, n);
}

int sl_store_sensor_stats(sl_store_t *st, int64_t from_ms, int64_t to_ms,
                          int sensor_type, sl_sensor_stats_t *out, size_t max,
                          size_t *n)
{
    if (n != NULL)
        *n = 0;
    if (st == NULL || n == NULL || (out == NULL && max > 0))
        return SL_EINVAL;
    return st->ops->sensor_stats(st, from_ms, to_ms, sensor_type, out, max, n);
}

int sl_store_aggregates(sl_store_t *st, const char *sensor_id, int64_t from_ms,
                        int64_t to_ms, sl_aggregate_t *out, size_t max,
                        size_t *n)
{
    if (n != NULL)
        *n = 0;
    if (st == NULL || n == NULL || (out == NULL && max > 0))
        return SL_EINVAL;
    return st->ops->aggregates(st, sensor_id, from_ms, to_ms, out, max, n);
}

int64_t sl_store_reading_count(sl_store_t *st)
{
    if (st == NULL)
        return -1;
    return st->ops->reading_count(st);
}

int64_t sl_store_dlq_count(sl_store_t *st)
{
    if (st == NULL)
        return -1;
    return st->ops->dlq_count(st);
}

int sl_store_dlq_list(sl_store_t *st, const sl_dlq_query_t *q,
                      sl_dlq_entry_t *out, size_t max, size_t *n)
{
    if (n != NULL)
        *n = 0;
    if (st == NULL || q == NULL || n == NULL || (out == NULL && max > 0))
        return SL_EINVAL;
    return st->ops->dlq_list(st, q, out, max, n);
}

int sl_store_dlq_get(sl_store_t *st, int64_t id, sl_dlq_entry_t *out,
                     void **bytes)
{
    if (bytes != NULL)
        *bytes = NULL;
    if (st == NULL || out == NULL || bytes == NULL)
        return SL_EINVAL;
    return st->ops->dlq_get(st, id, out, bytes);
}

int sl_store_dlq_replay(sl_store_t *st, int64_t id, sl_dlq_status_t status,
                        int64_t now_ms, size_t *changed)
{
    if (changed != NULL)
        *changed = 0;
    if (st == NULL || id < 0 || (unsigned)status > SL_DLQ_DEAD)
        return SL_EINVAL;
    return st->ops->dlq_replay(st, id, status, now_ms, changed);
}

int sl_store_dlq_scheduled(sl_store_t *st, int64_t *ids, int64_t *due_ms,
                           size_t max, size_t *n)
{
    if (n != NULL)
        *n = 0;
    if (st == NULL || n == NULL || (max > 0 && (ids == NULL || due_ms == NULL)))
        return SL_EINVAL;
    return st->ops->dlq_scheduled(st, ids, due_ms, max, n);
}

int sl_store_dlq_rearm(sl_store_t *st, int64_t now_ms, size_t *changed)
{
    if (changed != NULL)
        *changed = 0;
    if (st == NULL)
        return SL_EINVAL;
    return st->ops->dlq_rearm(st, now_ms, changed);
}

int sl_store_dlq_claim(sl_store_t *st, int64_t id, int64_t now_ms,
                       sl_dlq_entry_t *out, void **bytes)
{
    if (bytes != NULL)
        *bytes = NULL;
    if (st == NULL || out == NULL || bytes == NULL)
        return SL_EINVAL;
    return st->ops->dlq_claim(st, id, now_ms, out, bytes);
}

int sl_store_dlq_unclaim(sl_store_t *st, int64_t id, int64_t next_ms)
{
    if (st == NULL)
        return SL_EINVAL;
    return st->ops->dlq_unclaim(st, id, next_ms);
}

int sl_store_dlq_status_counts(sl_store_t *st, int64_t counts[4])
{
    if (st == NULL || counts == NULL)
        return SL_EINVAL;
    return st->ops->dlq_status_counts(st, counts);
}

int sl_store_refresh_views(sl_store_t *st)
{
    if (st == NULL)
        return SL_EINVAL;
    if (st->ops->refresh_views == NULL)
        return SL_OK;
    return st->ops->refresh_views(st);
}

int sl_dlq_status_parse(const char *name, sl_dlq_status_t *out)
{
    for (size_t i = 0;
         i < sizeof(dlq_status_names) / sizeof(dlq_status_names[0]); i++) {
        if (strcmp(name, dlq_status_names[i]) == 0) {
            *out = (sl_dlq_status_t)i;
            return SL_OK;
        }
    }
    return SL_EINVAL;
}

const char *sl_dlq_class_name(sl_dlq_class_t cls)
{
    if ((unsigned)cls >= sizeof(dlq_class_names) / sizeof(dlq_class_names[0]))
        return "unknown"; /* the dlq_errors CHECK rejects it */
    return dlq_class_names[cls];
}

const char *sl_dlq_status_name(sl_dlq_status_t status)
{
    if ((unsigned)status >=
        sizeof(dlq_status_names) / sizeof(dlq_status_names[0]))
        return "unknown"; /* the dlq_errors CHECK rejects it */
    return dlq_status_names[status];
}

int sl_store_record_detections(sl_store_t *st, const sl_reading_t *readings,
                               size_t reading_count, const sl_alert_t *alerts,
                               size_t alert_count, bool *alert_new,
                               sl_store_detect_result_t *result)
{
    if (result != NULL)
        memset(result, 0, sizeof(*result));
    if (st == NULL || (reading_count > 0 && readings == NULL) ||
        (alert_count > 0 && alerts == NULL))
        return SL_EINVAL;
    if (alert_new != NULL)
        memset(alert_new, 0, alert_count * sizeof(*alert_new));
    return st->ops->record_detections(st, readings, reading_count, alerts,
                                      alert_count, alert_new, result);
}

int sl_store_alerts(sl_store_t *st, const char *sensor_id, sl_alert_t *out,
                    size_t max, size_t *n)
{
    if (n != NULL)
        *n = 0;
    if (st == NULL || n == NULL || (out == NULL && max > 0))
        return SL_EINVAL;
    return st->ops->alerts(st, sensor_id, out, max, n);
}

const char *sl_alert_type_name(sl_alert_type_t type)
{
    if ((unsigned)type >= SL_ALERT_TYPE_COUNT)
        return "unknown";
    return alert_type_names[type];
}

const char *sl_alert_severity_name(sl_alert_severity_t severity)
{
    if ((unsigned)severity >= SL_SEVERITY_COUNT)
        return "unknown";
    return alert_severity_names[severity];
}

/* Returns the version number a migration's name starts with ("002_x.sql"
 * is 2), or -1 when it does not start with one and an underscore. */
static int migration_version(const char *name)
{
    char *end;
    long version = strtol(name, &end, 10);

    if (end == name || *end != '_' || version <= 0 || version > INT32_MAX)
        return -1;
    return (int)version;
}

int sl_store__run_migrations(void *backend,
                             const struct sl_embedded_file *files,
                             sl_store_migration_fn apply, int *last_version,
                             char *err, size_t err_size)
{
    int previous = 0;

    for (const struct sl_embedded_file *f = files; f->name != NULL; f++) {
        int version = migration_version(f->name);

        if (version <= previous) {
            snprintf(err, err_size,
                     "migration %s: name must start with a version number "
                     "above %d and an underscore, as in 002_alerts.sql",
                     f->name, previous);
            return SL_EIO;
        }
        if (apply(backend, f, version, err, err_size) != SL_OK)
            return SL_EIO;
        previous = version;
    }
    *last_version = previous;
    return SL_OK;
}
