/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Detector results in the PostgreSQL store: the anomaly flag and score
 * upserted onto reading rows, and alerts inserted once per identity, all in
 * one transaction. Each row runs inside its own savepoint, so a row the
 * database rejects (SQLSTATE class 22 or 23) is logged and skipped while
 * the others are committed, as in store_sqlite_detect.c. Any other failure
 * rolls everything back and returns SL_EIO.
 */
#include <stdio.h>

#include "store/store_pg_int.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Outcome of one statement, beside SL_EIO. */
enum row_outcome {
    ROW_CHANGED = 1,
    ROW_UNCHANGED = 2,
    ROW_REJECTED = 3,
};

static int run_row(sl_pg_t *pg, enum sl_pg_stmt_id id, const sl_pg_params_t *p,
                   const char *kind)
{
    enum sl_pg_outcome o;
    PGresult *res;
    size_t changed;

    if (sl_pg__command(pg, "SAVEPOINT sl_row") != SL_OK)
        return SL_EIO;
    res = sl_pg__exec(pg, id, p);
    o = sl_pg__check(pg, res, kind);
    changed = o == SL_PG_OK ? sl_pg__changed(res) : 0;
    if (o == SL_PG_ROW_ERROR) {
        char message[256];

        sl_pg__error_text(res, message, sizeof(message));
        sl_log_warn("store",
                    "detector row rejected database=%s kind=%s error=\"%s\"",
                    pg->label, kind, message);
    }
    PQclear(res);
    if (o == SL_PG_FAILED)
        return SL_EIO;
    if (o == SL_PG_ROW_ERROR)
        return sl_pg__command(pg, "ROLLBACK TO SAVEPOINT sl_row") == SL_OK
                   ? ROW_REJECTED
                   : SL_EIO;
    if (sl_pg__command(pg, "RELEASE SAVEPOINT sl_row") != SL_OK)
        return SL_EIO;
    return changed > 0 ? ROW_CHANGED : ROW_UNCHANGED;
}

static void param_score(sl_pg_params_t *p, bool has_score, double score)
{
    if (has_score)
        sl_pg__param_f64(p, score);
    else
        sl_pg__param_null(p);
}

/* Sets the flag and score on the sensor's latest-reading row when that row
 * is this reading; otherwise the statement changes nothing. */
static int update_latest(sl_pg_t *pg, const sl_reading_t *rec)
{
    sl_pg_params_t p = {0};

    sl_pg__param_bool(&p, rec->anomaly);
    param_score(&p, rec->has_score, rec->anomaly_score);
    sl_pg__param_text(&p, rec->sensor_id);
    sl_pg__param_i64(&p, rec->timestamp_ms);
    return run_row(pg, SL_PG_UPDATE_LATEST_DETECTION, &p, "latest") == SL_EIO
               ? SL_EIO
               : SL_OK;
}

static int write_readings(sl_pg_t *pg, const sl_reading_t *readings,
                          size_t count, sl_store_detect_result_t *res)
{
    for (size_t i = 0; i < count; i++) {
        sl_pg_params_t p = {0};
        int outcome;

        sl_pg__param_reading(&p, &readings[i]);
        sl_pg__param_i64(&p, sl_pg__value_bits(readings[i].value));
        outcome = run_row(pg, SL_PG_UPSERT_DETECTION, &p, "reading");
        if (outcome == SL_EIO)
            return SL_EIO;
        if (outcome == ROW_REJECTED) {
            res->rejected++;
            continue;
        }
        if (outcome == ROW_CHANGED)
            res->readings_changed++;
        else
            res->readings_unchanged++;
        if (update_latest(pg, &readings[i]) != SL_OK)
            return SL_EIO;
    }
    return SL_OK;
}

static int write_alerts(sl_pg_t *pg, const sl_alert_t *alerts, size_t count,
                        int64_t now_ms, bool *alert_new,
                        sl_store_detect_result_t *res)
{
    for (size_t i = 0; i < count; i++) {
        const sl_alert_t *a = &alerts[i];
        sl_pg_params_t p = {0};
        int outcome;

        sl_pg__param_text(&p, sl_alert_type_name(a->alert_type));
        sl_pg__param_text(&p, a->sensor_id);
        sl_pg__param_text(&p, sl_sensor_type_name(a->sensor_type));
        sl_pg__param_text(&p, sl_alert_severity_name(a->severity));
        sl_pg__param_text(&p, a->message);
        sl_pg__param_f64(&p, a->value);
        param_score(&p, a->has_score, a->anomaly_score);
        sl_pg__param_i64(&p, a->timestamp_ms);
        sl_pg__param_i64(&p, now_ms);
        outcome = run_row(pg, SL_PG_INSERT_ALERT, &p, "alert");
        if (outcome == SL_EIO)
            return SL_EIO;
        if (outcome == ROW_CHANGED) {
            res->alerts_inserted++;
            if (alert_new != NULL)
                alert_new[i] = true;
        } else if (outcome == ROW_UNCHANGED)
            res->alerts_duplicate++;
        else
            res->rejected++;
    }
    return SL_OK;
}

int sl_pg__record_detections(sl_store_t *st, const sl_reading_t *readings,
                             size_t reading_count, const sl_alert_t *alerts,
                             size_t alert_count, bool *alert_new,
                             sl_store_detect_result_t *result)
{
    sl_pg_t *pg = (sl_pg_t *)st;
    sl_store_detect_result_t counts = {0};
    int rc;

    if (sl_pg__ready(pg) != SL_OK || sl_pg__command(pg, "BEGIN") != SL_OK)
        return SL_EIO;
    rc = write_readings(pg, readings, reading_count, &counts);
    if (rc == SL_OK)
        rc = write_alerts(pg, alerts, alert_count, sl_time_now_ms(), alert_new,
                          &counts);
    if (rc == SL_OK)
        rc = sl_pg__command(pg, "COMMIT");
    if (rc != SL_OK) {
        sl_pg__rollback(pg);
        return SL_EIO;
    }
    if (result != NULL)
        *result = counts;
    return SL_OK;
}
