/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The detector stage thread: polls sensor-readings, keeps per-sensor
 * feature state, scores each reading with its type's forest, applies the
 * threshold rules and the per-sensor alert cool-down, writes the findings
 * in one store transaction, publishes the alerts, then commits offsets.
 *
 * Only readings the forest flags are written back (flag and score); the
 * score of every reading goes to the sluice_detector_anomaly_score
 * histogram instead. Writing a score onto every row would add one upsert
 * per reading, doubling the store's write work at the rates the processor
 * is built for. Threshold alerts do not set a reading's anomaly flag, which
 * stays the forest's verdict.
 *
 * A flagged reading the detector stores before the processor does is
 * written with ingested_at_ms 0; the processor's insert then claims the
 * row, so it counts the reading as stored, not as a duplicate.
 *
 * A reading whose bus headers carry a sampled W3C traceparent gets a
 * "detect" span, child of the producer's, around its scoring and rules.
 * The batch's findings write is not in that span.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "detect/detector_int.h"
#include "model/validate.h"
#include "obs/metrics.h"
#include "obs/trace.h"
#include "pipeline/offsets.h"
#include "pipeline/pipeline.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/timeutil.h"

#define SWEEP_INTERVAL_MS 1000
#define MIN_BUCKETS 1024

/* Feature state of one sensor, in a chained hash table. */
typedef struct sensor {
    struct sensor *next;
    char sensor_id[SL_ID_MAX + 1];
    sl_sensor_type_t type;
    bool alerted;          /* last_alert_ms is set */
    int64_t last_alert_ms; /* detector clock, for the cool-down */
    int64_t last_seen_mono_ms;
    sl_features_t features;
} sensor_t;

typedef struct detector_metrics {
    sl_counter_t *readings[3]; /* scored, unscored, skipped */
    sl_counter_t *anomalies[SL_SENSOR_TYPE_COUNT];
    sl_counter_t *alerts[SL_ALERT_TYPE_COUNT][SL_SEVERITY_COUNT];
    sl_counter_t *suppressed;
    sl_histogram_t *score;
    sl_histogram_t *batch_duration;
    sl_histogram_t *event_latency; /* event time to findings committed */
    sl_gauge_t *sensors;
    sl_gauge_t *lag;
} detector_metrics_t;

enum { READ_SCORED = 0, READ_UNSCORED = 1, READ_SKIPPED = 2 };

struct sl_detector {
    sl_detector_config_t cfg;
    char *model_dir;
    sl_store_t *st;
    sl_consumer_t *consumer;
    sl_decoder_t *decoder;
    sl_detect_model_t *models[SL_SENSOR_TYPE_COUNT];
    sl_forest_slot_t *slots[SL_SENSOR_TYPE_COUNT];
    sl_forest_ref_t *refs[SL_SENSOR_TYPE_COUNT]; /* held within a batch */
    uint64_t ref_changes[SL_SENSOR_TYPE_COUNT];  /* slot count at acquire */
    bool acquired[SL_SENSOR_TYPE_COUNT];
    sl_trainer_t *trainer;
    sl_trainer_counters_t trainer_counters;
    sensor_t **buckets;
    size_t bucket_count;
    size_t sensor_count;
    sl_msg_t *msgs;
    sl_reading_t *flagged; /* per batch: readings with flag and score */
    int64_t *event_ms;     /* per batch: event times of decoded readings */
    size_t flagged_count;
    sl_alert_t *alerts; /* per batch */
    bool *alert_new;    /* per batch: alerts[i] was not stored before */
    size_t alert_count;
    detector_metrics_t metrics;
    pthread_t thread;
    bool started;
    int64_t last_sweep_ms;
    atomic_bool abandon;
    atomic_bool stopping;
    atomic_uint_least64_t consumed, skipped, scored, unscored, anomalies,
        alerted, suppressed, sensors;
    atomic_uint_least64_t snapshots[SL_SENSOR_TYPE_COUNT];
    uint64_t models_loaded, models_rejected;
};

void sl_detector_config_init(sl_detector_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->group = "sluice-detector";
    cfg->batch_size = 5000;
    cfg->poll_timeout_ms = 50;
    sl_detect_model_config_default(&cfg->model);
    cfg->critical_score = -0.7;
    cfg->cooldown_ms = 300000;
    cfg->rules.enabled = true;
    cfg->rules.temperature_high = 80;
    cfg->rules.temperature_low = -20;
    cfg->rules.humidity_high = 95;
    cfg->max_sensors = 100000;
    cfg->sensor_idle_ms = 3600000;
}

static void metrics_init(detector_metrics_t *m)
{
    static const char *const results[] = {"scored", "unscored", "skipped"};
    static const double score_bounds[] = {-0.8, -0.7,  -0.65, -0.6, -0.55,
                                          -0.5, -0.45, -0.4,  -0.3};
    static const double duration_bounds[] = {0.0005, 0.001, 0.0025, 0.005,
                                             0.01,   0.025, 0.05,   0.1,
                                             0.25,   0.5,   1,      2.5};

    for (int r = 0; r < 3; r++) {
        m->readings[r] = sl_metrics_counter(
            "sluice_detector_readings_total",
            "Readings seen by the detector: scored, unscored (no model yet) "
            "or skipped (undecodable or invalid)",
            (const char *[]){"result", results[r], NULL});
    }
    for (int t = 0; t < SL_SENSOR_TYPE_COUNT; t++) {
        m->anomalies[t] = sl_metrics_counter(
            "sluice_detector_anomalies_total",
            "Readings the Isolation Forest flagged as anomalous",
            (const char *[]){"sensor_type",
                             sl_sensor_type_name((sl_sensor_type_t)t), NULL});
    }
    for (int a = 0; a < SL_ALERT_TYPE_COUNT; a++) {
        for (int s = 0; s < SL_SEVERITY_COUNT; s++) {
            m->alerts[a][s] = sl_metrics_counter(
                "sluice_alerts_total", "Alerts stored and published",
                (const char *[]){
                    "type", sl_alert_type_name((sl_alert_type_t)a), "severity",
                    sl_alert_severity_name((sl_alert_severity_t)s), NULL});
        }
    }
    m->suppressed = sl_metrics_counter(
        "sluice_alerts_suppressed_total",
        "Alerts not raised because the sensor alerted within the cool-down",
        NULL);
    m->score = sl_metrics_histogram(
        "sluice_detector_anomaly_score",
        "Isolation Forest scores of readings; lower is more anomalous",
        score_bounds, sizeof(score_bounds) / sizeof(score_bounds[0]), NULL);
    m->batch_duration = sl_metrics_histogram(
        "sluice_detector_batch_duration_seconds",
        "Time to decode, score, store and publish one batch of readings",
        duration_bounds, sizeof(duration_bounds) / sizeof(duration_bounds[0]),
        NULL);
    m->event_latency = sl_metrics_event_latency("detector");
    m->sensors = sl_metrics_gauge("sluice_detector_sensors",
                                  "Sensors with detector feature state", NULL);
    m->lag = sl_metrics_gauge("sluice_consumer_lag_records",
                              "Records not yet committed by the group",
                              (const char *[]){"group", "detector", NULL});
}

/* ---- per-sensor state -------------------------------------------------- */

static size_t bucket_of(const sl_detector_t *det, const char *sensor_id)
{
    return (size_t)(sl_hash_fnv1a(sensor_id, strlen(sensor_id)) &
                    (det->bucket_count - 1));
}

/* Doubles the table when it contains two sensors per bucket on average. */
static void maybe_grow(sl_detector_t *det)
{
    size_t count = det->bucket_count * 2;
    sensor_t **buckets;

    if (det->sensor_count < det->bucket_count * 2)
        return;
    buckets = calloc(count, sizeof(*buckets));
    if (buckets == NULL)
        return; /* longer chains, still correct */
    for (size_t b = 0; b < det->bucket_count; b++) {
        while (det->buckets[b] != NULL) {
            sensor_t *s = det->buckets[b];
            size_t nb =
                (size_t)(sl_hash_fnv1a(s->sensor_id, strlen(s->sensor_id)) &
                         (count - 1));
            det->buckets[b] = s->next;
            s->next = buckets[nb];
            buckets[nb] = s;
        }
    }
    free(det->buckets);
    det->buckets = buckets;
    det->bucket_count = count;
}

/* Returns the state of rec's sensor, creating it; NULL when the table is
 * at max_sensors or memory runs out. A sensor that changed type starts
 * over. */
static sensor_t *sensor_get(sl_detector_t *det, const sl_reading_t *rec)
{
    size_t b = bucket_of(det, rec->sensor_id);
    sensor_t *s;

    for (s = det->buckets[b]; s != NULL; s = s->next) {
        if (strcmp(s->sensor_id, rec->sensor_id) == 0)
            break;
    }
    if (s != NULL && s->type != rec->sensor_type) {
        s->type = rec->sensor_type;
        sl_features_init(&s->features, &det->cfg.model.features);
    }
    if (s != NULL)
        return s;

    if (det->sensor_count >= det->cfg.max_sensors)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    memcpy(s->sensor_id, rec->sensor_id, sizeof(s->sensor_id));
    s->type = rec->sensor_type;
    sl_features_init(&s->features, &det->cfg.model.features);
    s->next = det->buckets[b];
    det->buckets[b] = s;
    det->sensor_count++;
    maybe_grow(det);
    return s;
}

/* Frees the state of sensors silent for sensor_idle_ms; idle_ms < 0 frees
 * all. */
static void sweep_sensors(sl_detector_t *det, int64_t now_mono_ms,
                          int64_t idle_ms)
{
    for (size_t b = 0; b < det->bucket_count; b++) {
        sensor_t **link = &det->buckets[b];
        while (*link != NULL) {
            sensor_t *s = *link;
            if (idle_ms >= 0 && now_mono_ms - s->last_seen_mono_ms < idle_ms) {
                link = &s->next;
                continue;
            }
            *link = s->next;
            free(s);
            det->sensor_count--;
        }
    }
    atomic_store(&det->sensors, det->sensor_count);
    sl_gauge_set(det->metrics.sensors, (double)det->sensor_count);
}

/* ---- one reading ------------------------------------------------------- */

static int64_t clock_now(const sl_detector_t *det)
{
    if (det->cfg.clock != NULL)
        return det->cfg.clock(det->cfg.clock_ctx);
    return sl_time_now_ms();
}

/* Returns the current forest of type. The reference is kept across
 * readings and taken again only when the slot was published to: one
 * atomic load per reading, and a new forest is used from the next
 * reading on, not the next batch. */
static const sl_iforest_t *current_forest(sl_detector_t *det,
                                          sl_sensor_type_t type)
{
    uint64_t changes = sl_forest_slot_changes(det->slots[type]);

    if (!det->acquired[type] || changes != det->ref_changes[type]) {
        sl_forest_ref_release(det->refs[type]);
        det->refs[type] = sl_forest_slot_acquire(det->slots[type]);
        det->ref_changes[type] = changes;
        det->acquired[type] = true;
    }
    return det->refs[type] != NULL ? sl_forest_ref_get(det->refs[type]) : NULL;
}

static void release_forests(sl_detector_t *det)
{
    for (int t = 0; t < SL_SENSOR_TYPE_COUNT; t++) {
        sl_forest_ref_release(det->refs[t]);
        det->refs[t] = NULL;
        det->acquired[t] = false;
    }
}

/* Adds the vector to the type's window and starts a retrain when due. */
static void observe(sl_detector_t *det, sl_sensor_type_t type,
                    const double *features)
{
    sl_detect_model_result_t res;
    sl_detect_snapshot_t *snap;

    sl_detect_model_observe(det->models[type], features, &res);
    if (!res.retrain_due)
        return;
    snap = sl_detect_model_snapshot(det->models[type]);
    if (snap == NULL)
        return; /* retried on the next reading: retrain_due stays true */
    atomic_fetch_add(&det->snapshots[type], 1);
    sl_detector__trainer_submit(det->trainer, type, snap);
}

/* Queues at most one alert per sensor per cool-down: a forest finding
 * wins over a rule of equal severity. */
static void raise_alert(sl_detector_t *det, sensor_t *s,
                        const sl_alert_t *candidates, size_t count)
{
    const sl_alert_t *best = NULL;
    int64_t now_ms;

    for (size_t i = 0; i < count; i++) {
        if (best == NULL || candidates[i].severity > best->severity)
            best = &candidates[i];
    }
    if (best == NULL)
        return;
    now_ms = clock_now(det);
    if (s->alerted && now_ms - s->last_alert_ms < det->cfg.cooldown_ms) {
        sl_counter_add(det->metrics.suppressed, count);
        atomic_fetch_add(&det->suppressed, count);
        return;
    }
    s->alerted = true;
    s->last_alert_ms = now_ms;
    det->alerts[det->alert_count++] = *best;
    if (count > 1) {
        sl_counter_add(det->metrics.suppressed, count - 1);
        atomic_fetch_add(&det->suppressed, count - 1);
    }
}

/* Scores rec, observes it and queues its findings. */
static void detect_reading(sl_detector_t *det, const sl_reading_t *rec)
{
    double features[SL_FEATURES_MAX];
    sl_alert_t candidates[2];
    size_t candidate_count = 0;
    sensor_t *s = sensor_get(det, rec);
    const sl_iforest_t *forest = NULL;

    if (s != NULL) {
        s->last_seen_mono_ms = sl_time_mono_ms();
        sl_features_update(&s->features, rec, features);
        forest = current_forest(det, rec->sensor_type);
    }
    if (forest != NULL) {
        double score = sl_iforest_score(forest, features);
        sl_histogram_observe(det->metrics.score, score);
        sl_counter_add(det->metrics.readings[READ_SCORED], 1);
        atomic_fetch_add(&det->scored, 1);
        if (score < sl_iforest_offset(forest)) {
            sl_reading_t *flagged = &det->flagged[det->flagged_count++];
            *flagged = *rec;
            flagged->anomaly = true;
            flagged->has_score = true;
            flagged->anomaly_score = score;
            sl_detector__ml_alert(rec, score, det->cfg.critical_score,
                                  &candidates[candidate_count++]);
            sl_counter_add(det->metrics.anomalies[rec->sensor_type], 1);
            atomic_fetch_add(&det->anomalies, 1);
        }
    } else {
        sl_counter_add(det->metrics.readings[READ_UNSCORED], 1);
        atomic_fetch_add(&det->unscored, 1);
    }
    /* Scored before it joins the window: a vector never trains the model
     * that scores it. */
    if (s != NULL)
        observe(det, rec->sensor_type, features);

    if (sl_detector__rule_alert(&det->cfg.rules, rec,
                                &candidates[candidate_count]))
        candidate_count++;
    /* XXX: a sensor beyond max_sensors has no cool-down state, so its
     * rule alerts are not rate-limited; they are still stored once per
     * reading. */
    if (s != NULL)
        raise_alert(det, s, candidates, candidate_count);
    else if (candidate_count > 0)
        det->alerts[det->alert_count++] = candidates[candidate_count - 1];
}

/* Decodes one record; returns false (counted as skipped) when it is not a
 * valid reading, which the processor dead-letters. */
static bool decode_reading(sl_detector_t *det, const sl_msg_t *msg,
                           sl_reading_t *rec, int64_t now_ms)
{
    if (sl_reading_decode(det->decoder, msg->value, msg->value_len, rec) ==
            SL_DECODE_OK &&
        sl_reading_validate(rec, now_ms) == NULL)
        return true;
    sl_counter_add(det->metrics.readings[READ_SKIPPED], 1);
    atomic_fetch_add(&det->skipped, 1);
    return false;
}

/* Runs detect_reading, in a detect span when msg carries a sampled
 * traceparent. */
static void detect_traced(sl_detector_t *det, const sl_msg_t *msg,
                          const sl_reading_t *rec)
{
    char parent[SL_TRACEPARENT_LEN + 1];
    const sl_header_t *h = NULL;
    size_t flagged = det->flagged_count;
    sl_span_t span;

    if (sl_trace_enabled())
        h = sl_msg_header(msg, SL_TRACEPARENT_HEADER);
    if (h == NULL || !sl_trace_sampled_parent(h->value, h->value_len, parent)) {
        detect_reading(det, rec);
        return;
    }
    sl_span_begin(&span, "detect", SL_SPAN_CONSUMER, parent);
    sl_span_attr_text(&span, "sensor.id", rec->sensor_id);
    detect_reading(det, rec);
    sl_span_attr_int(&span, "sluice.anomaly", det->flagged_count > flagged);
    sl_span_end(&span);
}

/* ---- one batch --------------------------------------------------------- */

/* Writes the batch's findings, retrying while the store is unavailable.
 * Returns false when writes were abandoned at shutdown. */
static bool write_findings(sl_detector_t *det)
{
    int64_t delay_ms = 100;
    int attempts = 0;

    if (det->flagged_count == 0 && det->alert_count == 0)
        return true;
    for (;;) {
        int rc = sl_store_record_detections(
            det->st, det->flagged, det->flagged_count, det->alerts,
            det->alert_count, det->alert_new, NULL);
        if (rc == SL_OK) {
            if (attempts > 0)
                sl_log_info("detector",
                            "store available again after %d retries", attempts);
            return true;
        }
        if (atomic_load(&det->abandon)) {
            sl_log_error("detector",
                         "store still unavailable at shutdown; "
                         "findings not written: %s",
                         sl_strerror(rc));
            return false;
        }
        if (attempts++ == 0)
            sl_log_error("detector",
                         "store write failed, pausing and retrying: %s",
                         sl_strerror(rc));
        sl_time_sleep_ms(delay_ms);
        delay_ms = delay_ms * 2 > 5000 ? 5000 : delay_ms * 2;
    }
}

/* Publishes the alerts of the batch that the store did not hold yet: a
 * redelivered reading's alert was announced when it was first stored.
 * Returns false when the bus closed first: the batch is then not committed.
 * XXX: a crash after the store commit and before the publish loses that
 * alert's announcement on system-alerts (the alerts table and the API
 * still have it); an outbox column would close the gap. */
static bool publish_alerts(sl_detector_t *det)
{
    for (size_t i = 0; i < det->alert_count; i++) {
        const sl_alert_t *a = &det->alerts[i];

        if (!det->alert_new[i])
            continue;
        if (sl_detector__publish_alert(det->cfg.bus, a) != SL_OK)
            return false;
        sl_counter_add(det->metrics.alerts[a->alert_type][a->severity], 1);
        atomic_fetch_add(&det->alerted, 1);
    }
    return true;
}

/* Observes the event latency of the batch's readings, whose timestamps
 * event_ms holds, once their findings are committed at done_ms. */
static void observe_latency(sl_detector_t *det, const int64_t *event_ms,
                            size_t count, int64_t done_ms)
{
    for (size_t i = 0; i < count; i++)
        sl_histogram_observe(det->metrics.event_latency,
                             (double)(done_ms - event_ms[i]) / 1000.0);
}

static void process_batch(sl_detector_t *det, size_t n)
{
    int64_t start_ns = sl_time_mono_ns();
    int64_t now_ms = sl_time_now_ms();
    sl_offsets_t offsets;
    sl_reading_t rec;
    size_t decoded = 0;

    sl_offsets_clear(&offsets);
    det->flagged_count = 0;
    det->alert_count = 0;
    for (size_t i = 0; i < n; i++) {
        sl_offsets_add(&offsets, &det->msgs[i]);
        if (decode_reading(det, &det->msgs[i], &rec, now_ms)) {
            det->event_ms[decoded++] = rec.timestamp_ms;
            detect_traced(det, &det->msgs[i], &rec);
        }
    }
    release_forests(det);
    atomic_fetch_add(&det->consumed, n);

    if (write_findings(det) && publish_alerts(det)) {
        sl_pipeline_commit(det->consumer, &offsets, "detector");
        observe_latency(det, det->event_ms, decoded, sl_time_now_ms());
        sl_histogram_observe(det->metrics.batch_duration,
                             (double)(sl_time_mono_ns() - start_ns) / 1e9);
    }
}

static void *detector_main(void *arg)
{
    sl_detector_t *det = arg;
    size_t n;

    for (;;) {
        int rc = sl_consumer_poll(det->consumer, det->msgs,
                                  (size_t)det->cfg.batch_size, &n,
                                  det->cfg.poll_timeout_ms);
        if (rc == SL_ECLOSED)
            break;
        if (rc == SL_OK && n > 0)
            process_batch(det, n);
        if (atomic_load(&det->stopping))
            break;

        int64_t now = sl_time_mono_ms();
        if (now - det->last_sweep_ms >= SWEEP_INTERVAL_MS) {
            det->last_sweep_ms = now;
            sweep_sensors(det, now, det->cfg.sensor_idle_ms);
            sl_gauge_set(det->metrics.lag,
                         (double)sl_consumer_lag(det->consumer));
        }
    }
    return NULL;
}

/* ---- start and stop ---------------------------------------------------- */

static sl_decoder_t *reading_decoder(sl_registry_t *reg, char *err,
                                     size_t err_size)
{
    const char *json = sl_schema_builtin("sensor_reading.avsc");
    avro_schema_t schema;
    sl_decoder_t *dec;

    if (json == NULL ||
        avro_schema_from_json_length(json, strlen(json), &schema) != 0) {
        snprintf(err, err_size, "detector: sensor_reading.avsc: %s",
                 avro_strerror());
        return NULL;
    }
    dec = sl_decoder_create(reg, schema);
    avro_schema_decref(schema);
    if (dec == NULL)
        snprintf(err, err_size, "detector: out of memory");
    return dec;
}

/* Creates the model folder (one level) and loads its forests. */
static int prepare_models(sl_detector_t *det, char *err, size_t err_size)
{
    size_t feature_count = sl_features_count(&det->cfg.model.features);

    if (det->model_dir == NULL)
        return SL_OK;
    if (mkdir(det->model_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, err_size, "detector: cannot create model folder %s: %s",
                 det->model_dir, strerror(errno));
        return SL_EIO;
    }
    sl_detector__load_models(det->slots, det->model_dir, feature_count,
                             &det->models_loaded, &det->models_rejected);
    return SL_OK;
}

/* Allocates everything that does not depend on the bus or the store. */
static int create_state(sl_detector_t *det, char *err, size_t err_size)
{
    size_t batch = (size_t)det->cfg.batch_size;

    if (sl_detect_model_config_check(&det->cfg.model, err, err_size) != SL_OK)
        return SL_EINVAL;
    for (int t = 0; t < SL_SENSOR_TYPE_COUNT; t++) {
        det->models[t] = sl_detect_model_create(&det->cfg.model);
        det->slots[t] = sl_forest_slot_create();
        if (det->models[t] == NULL || det->slots[t] == NULL)
            goto oom;
    }
    det->bucket_count = MIN_BUCKETS;
    det->buckets = calloc(det->bucket_count, sizeof(*det->buckets));
    det->msgs = calloc(batch, sizeof(*det->msgs));
    det->flagged = calloc(batch, sizeof(*det->flagged));
    det->event_ms = calloc(batch, sizeof(*det->event_ms));
    det->alerts = calloc(batch, sizeof(*det->alerts));
    det->alert_new = calloc(batch, sizeof(*det->alert_new));
    if (det->buckets == NULL || det->msgs == NULL || det->flagged == NULL ||
        det->event_ms == NULL || det->alerts == NULL || det->alert_new == NULL)
        goto oom;
    return SL_OK;

oom:
    snprintf(err, err_size, "detector: out of memory");
    return SL_ENOMEM;
}

sl_detector_t *sl_detector_start(const sl_detector_config_t *cfg, char *err,
                                 size_t err_size)
{
    const char *topics[] = {SL_TOPIC_SENSOR_READINGS};
    sl_detector_t *det = calloc(1, sizeof(*det));

    if (det == NULL || cfg->batch_size <= 0 || cfg->bus == NULL) {
        snprintf(err, err_size, "detector: invalid configuration");
        free(det);
        return NULL;
    }
    det->cfg = *cfg;
    if (cfg->model_dir != NULL && cfg->model_dir[0] != '\0' &&
        (det->model_dir = strdup(cfg->model_dir)) == NULL) {
        snprintf(err, err_size, "detector: out of memory");
        goto fail;
    }
    metrics_init(&det->metrics);
    if (create_state(det, err, err_size) != SL_OK ||
        prepare_models(det, err, err_size) != SL_OK)
        goto fail;
    det->st = sl_store_open(cfg->store_location, err, err_size);
    det->decoder = reading_decoder(cfg->registry, err, err_size);
    if (det->st == NULL || det->decoder == NULL)
        goto fail;
    det->trainer = sl_detector__trainer_start(det->slots, det->model_dir,
                                              &det->trainer_counters);
    if (det->trainer == NULL) {
        snprintf(err, err_size, "detector: cannot start the trainer thread");
        goto fail;
    }
    det->consumer = sl_consumer_create(cfg->bus, cfg->group, topics, 1);
    if (det->consumer == NULL) {
        snprintf(err, err_size, "detector: cannot join group %s", cfg->group);
        goto fail;
    }
    det->last_sweep_ms = sl_time_mono_ms();
    if (pthread_create(&det->thread, NULL, detector_main, det) != 0) {
        snprintf(err, err_size, "detector: pthread_create failed");
        goto fail;
    }
    det->started = true;
    return det;

fail:
    sl_detector_stop(det);
    return NULL;
}

int64_t sl_detector_lag(sl_detector_t *det)
{
    return sl_consumer_lag(det->consumer);
}

void sl_detector_stats(sl_detector_t *det, sl_detector_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->consumed = atomic_load(&det->consumed);
    out->skipped = atomic_load(&det->skipped);
    out->scored = atomic_load(&det->scored);
    out->unscored = atomic_load(&det->unscored);
    out->anomalies = atomic_load(&det->anomalies);
    out->alerts = atomic_load(&det->alerted);
    out->suppressed = atomic_load(&det->suppressed);
    for (int t = 0; t < SL_SENSOR_TYPE_COUNT; t++) {
        out->snapshots[t] = atomic_load(&det->snapshots[t]);
        out->retrains[t] = atomic_load(&det->trainer_counters.retrains[t]);
    }
    out->superseded = atomic_load(&det->trainer_counters.superseded);
    out->train_failures = atomic_load(&det->trainer_counters.failures);
    out->models_loaded = det->models_loaded;
    out->models_rejected = det->models_rejected;
    out->sensors = atomic_load(&det->sensors);
}

void sl_detector_abandon_writes(sl_detector_t *det)
{
    atomic_store(&det->abandon, true);
}

void sl_detector_request_stop(sl_detector_t *det)
{
    atomic_store(&det->stopping, true);
}

void sl_detector_join(sl_detector_t *det)
{
    if (det->started)
        pthread_join(det->thread, NULL);
    det->started = false;
    /* After the stage thread: nothing submits any more. */
    sl_detector__trainer_stop(det->trainer);
    det->trainer = NULL;
}

void sl_detector_stop(sl_detector_t *det)
{
    if (det == NULL)
        return;
    sl_detector_join(det);
    sl_consumer_destroy(det->consumer);
    sl_decoder_destroy(det->decoder);
    sl_store_close(det->st);
    if (det->buckets != NULL)
        sweep_sensors(det, 0, -1);
    for (int t = 0; t < SL_SENSOR_TYPE_COUNT; t++) {
        sl_detect_model_destroy(det->models[t]);
        sl_forest_slot_destroy(det->slots[t]);
    }
    free(det->buckets);
    free(det->msgs);
    free(det->flagged);
    free(det->event_ms);
    free(det->alerts);
    free(det->alert_new);
    free(det->model_dir);
    free(det);
}
