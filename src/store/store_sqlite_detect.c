/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Detector results in the SQLite store: the anomaly flag and score upserted
 * onto reading rows, and alerts inserted once per identity, all in one
 * BEGIN IMMEDIATE ... COMMIT. A row the database rejects (a CHECK
 * constraint) is logged and skipped while the others are committed, as in
 * store_sqlite_write.c. Any other failure rolls everything back.
 */
#include <stdio.h>
#include <string.h>

#include "store/store_api_int.h"
#include "store/store_int.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Outcome of one statement, beside SL_EIO. */
enum row_outcome {
    ROW_CHANGED = 1,
    ROW_UNCHANGED = 2,
    ROW_REJECTED = 3,
};

/* Steps a statement whose parameters are bound (bind_rc: the first binding
 * error) and resets it. Returns a row_outcome or SL_EIO. */
static int step_row(sl_sqlite_t *sq, sqlite3_stmt *stmt, int bind_rc,
                    const char *kind)
{
    int rc = bind_rc == SQLITE_OK ? sqlite3_step(stmt) : bind_rc;
    char message[256];

    if (rc == SQLITE_DONE) {
        int changes = sqlite3_changes(sq->db);
        sqlite3_reset(stmt);
        return changes > 0 ? ROW_CHANGED : ROW_UNCHANGED;
    }
    snprintf(message, sizeof(message), "%s", sqlite3_errmsg(sq->db));
    sqlite3_reset(stmt);
    if ((rc & 0xff) == SQLITE_CONSTRAINT && !sqlite3_get_autocommit(sq->db)) {
        sl_log_warn("store",
                    "detector row rejected path=%s kind=%s error=\"%s\"",
                    sq->path, kind, message);
        return ROW_REJECTED;
    }
    sl_log_error("store", "detector write failed path=%s kind=%s error=\"%s\"",
                 sq->path, kind, message);
    return SL_EIO;
}

static int bind_score(sqlite3_stmt *stmt, int idx, bool has_score, double score)
{
    if (!has_score)
        return sqlite3_bind_null(stmt, idx);
    return sqlite3_bind_double(stmt, idx, score);
}

/* Sets the flag and score on the sensor's latest-reading row when that row
 * is this reading; otherwise the statement changes nothing. When the
 * detector writes first, the processor's later upsert of sensor_latest
 * takes the flag from the stored row. */
static int update_latest(sl_sqlite_t *sq, const sl_reading_t *rec)
{
    sqlite3_stmt *stmt = sl_sqlite__stmt(sq, SL_SQLITE_UPDATE_LATEST_DETECTION);
    int rc;

    if (stmt == NULL)
        return SL_EIO;
    rc = sqlite3_bind_int(stmt, 1, rec->anomaly ? 1 : 0);
    if (rc == SQLITE_OK)
        rc = bind_score(stmt, 2, rec->has_score, rec->anomaly_score);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 3, rec->sensor_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 4, rec->timestamp_ms);
    return step_row(sq, stmt, rc, "latest") == SL_EIO ? SL_EIO : SL_OK;
}

static int write_readings(sl_sqlite_t *sq, const sl_reading_t *readings,
                          size_t count, int64_t now_ms,
                          sl_store_detect_result_t *res)
{
    for (size_t i = 0; i < count; i++) {
        sqlite3_stmt *stmt = sl_sqlite__stmt(sq, SL_SQLITE_UPSERT_DETECTION);
        int outcome;

        if (stmt == NULL)
            return SL_EIO;
        outcome = step_row(
            sq, stmt, sl_sqlite__bind_raw_reading(stmt, &readings[i], now_ms),
            "reading");
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
        if (update_latest(sq, &readings[i]) != SL_OK)
            return SL_EIO;
    }
    return SL_OK;
}

static int bind_alert(sqlite3_stmt *stmt, const sl_alert_t *a, int64_t now_ms)
{
    int rc = sqlite3_bind_text(stmt, 1, sl_alert_type_name(a->alert_type), -1,
                               SQLITE_STATIC);

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 2, a->sensor_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 3, sl_sensor_type_name(a->sensor_type), -1,
                               SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 4, sl_alert_severity_name(a->severity), -1,
                               SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 5, a->message, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(stmt, 6, a->value);
    if (rc == SQLITE_OK)
        rc = bind_score(stmt, 7, a->has_score, a->anomaly_score);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 8, a->timestamp_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 9, now_ms);
    return rc;
}

static int write_alerts(sl_sqlite_t *sq, const sl_alert_t *alerts, size_t count,
                        int64_t now_ms, bool *alert_new,
                        sl_store_detect_result_t *res)
{
    for (size_t i = 0; i < count; i++) {
        sqlite3_stmt *stmt = sl_sqlite__stmt(sq, SL_SQLITE_INSERT_ALERT);
        int outcome;

        if (stmt == NULL)
            return SL_EIO;
        outcome =
            step_row(sq, stmt, bind_alert(stmt, &alerts[i], now_ms), "alert");
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

static int exec_control(sl_sqlite_t *sq, const char *sql)
{
    int rc = sqlite3_exec(sq->db, sql, NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        sl_log_error("store", "%s failed path=%s error=\"%s\"", sql, sq->path,
                     sqlite3_errmsg(sq->db));
    return rc;
}

int sl_sqlite__record_detections(sl_store_t *st, const sl_reading_t *readings,
                                 size_t reading_count, const sl_alert_t *alerts,
                                 size_t alert_count, bool *alert_new,
                                 sl_store_detect_result_t *result)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sl_store_detect_result_t counts = {0};
    int64_t now_ms = sl_time_now_ms();
    int rc;

    if (exec_control(sq, "BEGIN IMMEDIATE") != SQLITE_OK)
        return SL_EIO;
    rc = write_readings(sq, readings, reading_count, now_ms, &counts);
    if (rc == SL_OK)
        rc = write_alerts(sq, alerts, alert_count, now_ms, alert_new, &counts);
    if (rc == SL_OK && exec_control(sq, "COMMIT") != SQLITE_OK)
        rc = SL_EIO;
    if (rc != SL_OK) {
        if (!sqlite3_get_autocommit(sq->db))
            exec_control(sq, "ROLLBACK");
        return SL_EIO;
    }
    if (result != NULL)
        *result = counts;
    return SL_OK;
}

/* Fills one alert from a SELECT_ALERTS row. Alert types or severities
 * written by other tools that sluice does not know read as threshold and
 * info. */
void sl_sqlite__fill_alert(sqlite3_stmt *stmt, sl_alert_t *a)
{
    const char *type_name = (const char *)sqlite3_column_text(stmt, 3);

    memset(a, 0, sizeof(*a));
    a->id = sqlite3_column_int64(stmt, 0);
    if (sl_store__alert_type_parse((const char *)sqlite3_column_text(stmt, 1),
                                   &a->alert_type) != SL_OK)
        a->alert_type = SL_ALERT_THRESHOLD;
    sl_sqlite__copy_text(a->sensor_id, sizeof(a->sensor_id), stmt, 2);
    if (type_name == NULL ||
        sl_sensor_type_parse(type_name, &a->sensor_type) != SL_OK)
        a->sensor_type = SL_SENSOR_OTHER;
    if (sl_store__severity_parse((const char *)sqlite3_column_text(stmt, 4),
                                 &a->severity) != SL_OK)
        a->severity = SL_SEVERITY_INFO;
    sl_sqlite__copy_text(a->message, sizeof(a->message), stmt, 5);
    a->value = sl_sqlite__column_double(stmt, 6);
    a->has_score = sqlite3_column_type(stmt, 7) != SQLITE_NULL;
    a->anomaly_score = a->has_score ? sqlite3_column_double(stmt, 7) : 0.0;
    a->timestamp_ms = sqlite3_column_int64(stmt, 8);
    a->acknowledged = sqlite3_column_int(stmt, 9) != 0;
}

int sl_sqlite__alerts(sl_store_t *st, const char *sensor_id, sl_alert_t *out,
                      size_t max, size_t *n)
{
    sl_sqlite_t *sq = (sl_sqlite_t *)st;
    sqlite3_stmt *stmt = sl_sqlite__stmt(sq, SL_SQLITE_SELECT_ALERTS);
    int rc = SQLITE_OK;

    if (stmt == NULL)
        return SL_EIO;
    if (sensor_id != NULL)
        rc = sqlite3_bind_text(stmt, 1, sensor_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, (sqlite3_int64)max);
    while (rc == SQLITE_OK && *n < max) {
        int step = sqlite3_step(stmt);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = step;
            break;
        }
        sl_sqlite__fill_alert(stmt, &out[(*n)++]);
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_OK) {
        sl_log_error("store", "alerts query failed path=%s error=\"%s\"",
                     sq->path, sqlite3_errmsg(sq->db));
        *n = 0;
        return SL_EIO;
    }
    return SL_OK;
}
