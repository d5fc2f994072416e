/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Alerts of the detector stage: the threshold rules, the alert of a reading
 * the forest flagged, the JSON form published to system-alerts, and the
 * alert feed that consumes system-alerts in standalone mode.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/detector_int.h"
#include "model/json.h"
#include "obs/metrics.h"
#include "pipeline/offsets.h"
#include "pipeline/pipeline.h"
#include "util/err.h"
#include "util/log.h"

#define ALERT_PUBLISH_TIMEOUT_MS 1000
#define FEED_BATCH 512
#define FEED_POLL_TIMEOUT_MS 100

static void alert_init(sl_alert_t *out, const sl_reading_t *rec,
                       sl_alert_type_t type, sl_alert_severity_t severity)
{
    memset(out, 0, sizeof(*out));
    out->alert_type = type;
    out->severity = severity;
    memcpy(out->sensor_id, rec->sensor_id, sizeof(out->sensor_id));
    out->sensor_type = rec->sensor_type;
    out->value = rec->value;
    out->timestamp_ms = rec->timestamp_ms;
}

bool sl_detector__rule_alert(const sl_detector_rules_t *rules,
                             const sl_reading_t *rec, sl_alert_t *out)
{
    const char *what;
    double limit;
    sl_alert_severity_t severity;

    if (!rules->enabled)
        return false;
    if (rec->sensor_type == SL_SENSOR_TEMPERATURE &&
        rec->value > rules->temperature_high) {
        what = "above";
        limit = rules->temperature_high;
        severity = SL_SEVERITY_CRITICAL;
    } else if (rec->sensor_type == SL_SENSOR_TEMPERATURE &&
               rec->value < rules->temperature_low) {
        what = "below";
        limit = rules->temperature_low;
        severity = SL_SEVERITY_WARNING;
    } else if (rec->sensor_type == SL_SENSOR_HUMIDITY &&
               rec->value > rules->humidity_high) {
        what = "above";
        limit = rules->humidity_high;
        severity = SL_SEVERITY_WARNING;
    } else {
        return false;
    }
    alert_init(out, rec, SL_ALERT_THRESHOLD, severity);
    /* sensor_id has at most SL_ID_MAX (127) bytes, so the message fits. */
    snprintf(out->message, sizeof(out->message), "%s %.6g %s limit %.6g on %s",
             sl_sensor_type_name(rec->sensor_type), rec->value, what, limit,
             rec->sensor_id);
    return true;
}

void sl_detector__ml_alert(const sl_reading_t *rec, double score,
                           double critical_score, sl_alert_t *out)
{
    alert_init(out, rec, SL_ALERT_ML_ANOMALY,
               score <= critical_score ? SL_SEVERITY_CRITICAL
                                       : SL_SEVERITY_WARNING);
    out->has_score = true;
    out->anomaly_score = score;
    snprintf(out->message, sizeof(out->message),
             "anomalous %s reading %.6g on %s (score %.3f)",
             sl_sensor_type_name(rec->sensor_type), rec->value, rec->sensor_id,
             score);
}

json_t *sl_detector_alert_json(const sl_alert_t *alert)
{
    json_t *obj = json_pack("{s:s, s:s, s:s, s:s, s:s}", "alert_type",
                            sl_alert_type_name(alert->alert_type), "severity",
                            sl_alert_severity_name(alert->severity),
                            "sensor_id", alert->sensor_id, "sensor_type",
                            sl_sensor_type_name(alert->sensor_type), "message",
                            alert->message);
    int rc;

    if (obj == NULL)
        return NULL;
    rc = sl_json_set_double(obj, "value", alert->value);
    if (rc == 0 && alert->has_score)
        rc = sl_json_set_double(obj, "anomaly_score", alert->anomaly_score);
    else if (rc == 0)
        rc = json_object_set_new(obj, "anomaly_score", json_null());
    if (rc == 0)
        rc = sl_json_set_time(obj, "timestamp", alert->timestamp_ms);
    if (rc != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

int sl_detector__publish_alert(sl_bus_t *bus, const sl_alert_t *alert)
{
    static const char content_type[] = "application/json";
    const sl_header_t header = {"content-type", content_type,
                                sizeof(content_type) - 1};
    json_t *obj = sl_detector_alert_json(alert);
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
    int rc = SL_ENOMEM;
    int attempts = 0;

    json_decref(obj);
    while (text != NULL) {
        rc = sl_bus_publish(bus, SL_TOPIC_SYSTEM_ALERTS, -1, alert->sensor_id,
                            strlen(alert->sensor_id), text, strlen(text),
                            &header, 1, ALERT_PUBLISH_TIMEOUT_MS, NULL);
        if (rc != SL_EFULL)
            break;
        /* Full: the feed is behind. Waiting keeps the alert; the batch's
         * offsets are committed only after it is accepted. */
        if (attempts++ == 0)
            sl_log_warn("detector",
                        "system-alerts is full, retrying "
                        "sensor_id=%s",
                        alert->sensor_id);
    }
    free(text);
    if (rc != SL_OK)
        sl_log_error("detector", "alert publish failed sensor_id=%s error=%s",
                     alert->sensor_id, sl_strerror(rc));
    return rc;
}

/* ---- alert feed -------------------------------------------------------- */

struct sl_alert_feed {
    sl_consumer_t *consumer;
    sl_msg_t msgs[FEED_BATCH];
    sl_counter_t *records;
    pthread_t thread;
    bool started;
};

static void *feed_main(void *arg)
{
    sl_alert_feed_t *feed = arg;
    sl_offsets_t offsets;
    size_t n;

    for (;;) {
        int rc = sl_consumer_poll(feed->consumer, feed->msgs, FEED_BATCH, &n,
                                  FEED_POLL_TIMEOUT_MS);
        if (rc == SL_ECLOSED)
            break;
        if (rc != SL_OK || n == 0)
            continue;
        sl_offsets_clear(&offsets);
        for (size_t i = 0; i < n; i++)
            sl_offsets_add(&offsets, &feed->msgs[i]);
        sl_counter_add(feed->records, n);
        sl_pipeline_commit(feed->consumer, &offsets, "alert-feed");
    }
    return NULL;
}

sl_alert_feed_t *sl_alert_feed_start(sl_bus_t *bus, char *err, size_t err_size)
{
    const char *topics[] = {SL_TOPIC_SYSTEM_ALERTS};
    sl_alert_feed_t *feed = calloc(1, sizeof(*feed));

    if (feed == NULL) {
        snprintf(err, err_size, "alert feed: out of memory");
        return NULL;
    }
    feed->records = sl_metrics_counter(
        "sluice_alert_feed_records_total",
        "system-alerts records read by the standalone alert feed", NULL);
    feed->consumer = sl_consumer_create(bus, "sluice-alert-feed", topics, 1);
    if (feed->consumer == NULL) {
        snprintf(err, err_size,
                 "alert feed: cannot join group "
                 "sluice-alert-feed");
        goto fail;
    }
    if (pthread_create(&feed->thread, NULL, feed_main, feed) != 0) {
        snprintf(err, err_size, "alert feed: pthread_create failed");
        goto fail;
    }
    feed->started = true;
    return feed;

fail:
    sl_alert_feed_stop(feed);
    return NULL;
}

int64_t sl_alert_feed_lag(sl_alert_feed_t *feed)
{
    return sl_consumer_lag(feed->consumer);
}

void sl_alert_feed_stop(sl_alert_feed_t *feed)
{
    if (feed == NULL)
        return;
    if (feed->started)
        pthread_join(feed->thread, NULL);
    sl_consumer_destroy(feed->consumer);
    free(feed);
}
