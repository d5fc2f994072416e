/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The detector stage on a real in-process bus and SQLite file. Covered:
 * retrains counted per sensor type, readings left unscored until a type
 * has a model, threshold rules and the per-sensor cool-down on an injected
 * clock, and a spike flagged and alerted. Forests are saved, loaded after
 * a restart, and reported and replaced when a file is corrupt.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "util/err.h"
#include "util/timeutil.h"

static int setup(void **state)
{
    *state = fixture_create();
    return 0;
}

static int teardown(void **state)
{
    fixture_destroy(*state);
    return 0;
}

/* A detector configuration with a small model: first forest after
 * min_samples readings of a type, then one every retrain_every. */
static sl_detector_config_t small_config(fixture_t *fx, uint32_t min_samples,
                                         uint32_t retrain_every)
{
    sl_detector_config_t cfg;

    sl_detector_config_init(&cfg);
    cfg.bus = fx->bus;
    cfg.registry = fx->reg;
    cfg.store_location = fx->db;
    cfg.batch_size = 64;
    cfg.poll_timeout_ms = 5;
    cfg.model.window_size = min_samples > 100 ? min_samples : 100;
    cfg.model.min_samples = min_samples;
    cfg.model.retrain_every = retrain_every;
    cfg.model.forest.tree_count = 20;
    cfg.model.forest.max_samples = 64;
    /* Offset -0.5, so a flag does not depend on the warm-up rows that the
     * contamination quantile of such a small window would follow. */
    cfg.model.forest.contamination = 0;
    cfg.rules.enabled = false;
    return cfg;
}

static sl_detector_t *start(const sl_detector_config_t *cfg)
{
    char err[256] = "";
    sl_detector_t *det = sl_detector_start(cfg, err, sizeof(err));

    if (det == NULL)
        fail_msg("sl_detector_start failed: %s", err);
    return det;
}

/* Closes the bus so the stage drains and stops, then returns its
 * counters. */
static sl_detector_stats_t stop(fixture_t *fx, sl_detector_t *det)
{
    sl_detector_stats_t stats;

    wait_detected(det);
    sl_bus_close(fx->bus);
    sl_detector_join(det);
    sl_detector_stats(det, &stats);
    sl_detector_stop(det);
    return stats;
}

/* Publishes count readings of one sensor: a steady level with a little
 * deterministic wobble, one per minute from start_ms. */
static void publish_series(fixture_t *fx, const char *sensor_id,
                           sl_sensor_type_t type, int count, double level,
                           int64_t start_ms)
{
    for (int i = 0; i < count; i++) {
        sl_reading_t rec =
            make_reading(sensor_id, type, start_ms + (int64_t)i * 60000,
                         level + 0.5 * sin((double)i * 0.7));
        publish(fx, &rec);
    }
}

static uint64_t expected_snapshots(uint64_t readings, uint64_t min_samples,
                                   uint64_t retrain_every)
{
    if (readings < min_samples)
        return 0;
    return 1 + (readings - min_samples) / retrain_every;
}

static void test_retrains_counted_per_type(void **state)
{
    fixture_t *fx = *state;
    sl_detector_config_t cfg = small_config(fx, 20, 30);
    sl_detector_t *det = start(&cfg);
    sl_reading_t bad = make_reading("bad-1", SL_SENSOR_TEMPERATURE, T0_MS, 1);
    static const char garbage[] = "not an avro frame";

    publish_series(fx, "temp-a", SL_SENSOR_TEMPERATURE, 100, 21, T0_MS);
    publish_series(fx, "temp-b", SL_SENSOR_TEMPERATURE, 100, 35, T0_MS);
    publish_series(fx, "hum-a", SL_SENSOR_HUMIDITY, 65, 40, T0_MS);
    publish_series(fx, "pres-a", SL_SENSOR_PRESSURE, 10, 1013, T0_MS);
    bad.battery_level = 150; /* invalid: the processor dead-letters it */
    publish(fx, &bad);
    assert_int_equal(sl_bus_publish(fx->bus, SL_TOPIC_SENSOR_READINGS, -1, "x",
                                    1, garbage, sizeof(garbage) - 1, NULL, 0,
                                    1000, NULL),
                     SL_OK);

    sl_detector_stats_t st = stop(fx, det);
    assert_int_equal(st.consumed, 277);
    assert_int_equal(st.skipped, 2);
    /* Nothing is dropped: every valid reading is scored or unscored. */
    assert_int_equal(st.scored + st.unscored, 275);
    /* No type can score before its first min_samples readings. */
    assert_true(st.unscored >= 20 + 20 + 10);

    assert_int_equal(st.snapshots[SL_SENSOR_TEMPERATURE],
                     expected_snapshots(200, 20, 30));
    assert_int_equal(st.snapshots[SL_SENSOR_HUMIDITY],
                     expected_snapshots(65, 20, 30));
    assert_int_equal(st.snapshots[SL_SENSOR_PRESSURE], 0);
    assert_true(st.retrains[SL_SENSOR_TEMPERATURE] >= 1);
    assert_true(st.retrains[SL_SENSOR_HUMIDITY] >= 1);
    assert_int_equal(st.retrains[SL_SENSOR_PRESSURE], 0);

    /* Every snapshot was either installed, replaced by a newer one, or
     * failed. */
    uint64_t snapshots = 0, retrains = 0;
    for (int t = 0; t < SL_SENSOR_TYPE_COUNT; t++) {
        snapshots += st.snapshots[t];
        retrains += st.retrains[t];
    }
    assert_int_equal(st.train_failures, 0);
    assert_int_equal(retrains + st.superseded, snapshots);
}

/* ---- rules and cool-down ----------------------------------------------- */

static int64_t fake_clock(void *ctx)
{
    return atomic_load((atomic_int_least64_t *)ctx);
}

/* Publishes one reading and waits until the stage has handled it, so the
 * clock the test sets is the one the stage reads for it. */
static void detect_one(fixture_t *fx, sl_detector_t *det, const char *sensor_id,
                       sl_sensor_type_t type, int64_t ts_ms, double value)
{
    sl_reading_t rec = make_reading(sensor_id, type, ts_ms, value);

    publish(fx, &rec);
    wait_detected(det);
}

/* Reads every system-alerts record into alerts[] as parsed JSON. */
static size_t read_alert_topic(fixture_t *fx, json_t **alerts, char keys[][32],
                               size_t max)
{
    const char *topics[] = {SL_TOPIC_SYSTEM_ALERTS};
    sl_consumer_t *c = sl_consumer_create(fx->bus, "test-reader", topics, 1);
    sl_msg_t msgs[16];
    size_t total = 0, n;

    assert_non_null(c);
    do {
        assert_int_equal(sl_consumer_poll(c, msgs, 16, &n, 200), SL_OK);
        for (size_t i = 0; i < n && total < max; i++, total++) {
            json_error_t jerr;
            alerts[total] =
                json_loadb(msgs[i].value, msgs[i].value_len, 0, &jerr);
            assert_non_null(alerts[total]);
            snprintf(keys[total], 32, "%.*s", (int)msgs[i].key_len,
                     (const char *)msgs[i].key);
        }
    } while (n > 0);
    sl_consumer_destroy(c);
    return total;
}

/* A redelivered reading (same sensor, time and value) raises its alert
 * again inside the detector, but the store already holds it, so nothing
 * is announced twice on system-alerts. */
static void test_redelivered_alert_published_once(void **state)
{
    fixture_t *fx = *state;
    sl_detector_config_t cfg = small_config(fx, 1000, 1000);
    json_t *published[4];
    char keys[4][32];
    sl_alert_t stored[4];
    size_t n;

    cfg.model.window_size = 1000;
    cfg.rules.enabled = true;
    cfg.cooldown_ms = 0;
    sl_detector_t *det = start(&cfg);

    detect_one(fx, det, "t9", SL_SENSOR_TEMPERATURE, T0_MS, 91);
    detect_one(fx, det, "t9", SL_SENSOR_TEMPERATURE, T0_MS, 91);

    size_t topic_count = read_alert_topic(fx, published, keys, 4);
    sl_detector_stats_t st = stop(fx, det);
    assert_int_equal(topic_count, 1);
    assert_int_equal(st.alerts, 1);
    assert_int_equal(sl_store_alerts(fx->st, "t9", stored, 4, &n), SL_OK);
    assert_int_equal(n, 1);
    for (size_t i = 0; i < topic_count; i++)
        json_decref(published[i]);
}

static void test_rules_and_cooldown(void **state)
{
    fixture_t *fx = *state;
    sl_detector_config_t cfg = small_config(fx, 1000, 1000);
    atomic_int_least64_t now = T0_MS;
    json_t *published[8];
    char keys[8][32];
    sl_alert_t stored[8];
    size_t n;

    cfg.model.window_size = 1000;
    cfg.rules.enabled = true;
    cfg.cooldown_ms = 60000;
    cfg.clock = fake_clock;
    cfg.clock_ctx = &now;
    sl_detector_t *det = start(&cfg);

    detect_one(fx, det, "t1", SL_SENSOR_TEMPERATURE, T0_MS, 85);
    atomic_store(&now, T0_MS + 10000);
    detect_one(fx, det, "t1", SL_SENSOR_TEMPERATURE, T0_MS + 1, 90);
    atomic_store(&now, T0_MS + 61000);
    detect_one(fx, det, "t1", SL_SENSOR_TEMPERATURE, T0_MS + 2, 95);
    detect_one(fx, det, "t2", SL_SENSOR_TEMPERATURE, T0_MS, -25);
    detect_one(fx, det, "h1", SL_SENSOR_HUMIDITY, T0_MS, 97);
    /* At the limits and inside them: no alert. */
    detect_one(fx, det, "t3", SL_SENSOR_TEMPERATURE, T0_MS, 80);
    detect_one(fx, det, "t4", SL_SENSOR_TEMPERATURE, T0_MS, -20);
    detect_one(fx, det, "h2", SL_SENSOR_HUMIDITY, T0_MS, 95);
    detect_one(fx, det, "p1", SL_SENSOR_PRESSURE, T0_MS, 500);

    size_t topic_count = read_alert_topic(fx, published, keys, 8);
    sl_detector_stats_t st = stop(fx, det);
    assert_int_equal(st.alerts, 4);
    assert_int_equal(st.suppressed, 1);
    assert_int_equal(st.anomalies, 0);

    assert_int_equal(sl_store_alerts(fx->st, NULL, stored, 8, &n), SL_OK);
    assert_int_equal(n, 4);
    /* Newest event time first; ties by insertion order, newest first. */
    assert_string_equal(stored[0].sensor_id, "t1");
    assert_true(stored[0].value == 95);
    assert_int_equal(stored[0].severity, SL_SEVERITY_CRITICAL);
    assert_int_equal(stored[0].alert_type, SL_ALERT_THRESHOLD);
    assert_false(stored[0].has_score);
    assert_string_equal(stored[1].sensor_id, "h1");
    assert_int_equal(stored[1].severity, SL_SEVERITY_WARNING);
    assert_string_equal(stored[2].sensor_id, "t2");
    assert_int_equal(stored[2].severity, SL_SEVERITY_WARNING);
    assert_non_null(strstr(stored[2].message, "below"));
    assert_string_equal(stored[3].sensor_id, "t1");
    assert_true(stored[3].value == 85);
    /* Rules raise alerts but leave the readings unflagged. */
    assert_int_equal(query_int(fx, "SELECT count(*) FROM sensor_readings"), 0);

    assert_int_equal(topic_count, 4);
    for (size_t i = 0; i < topic_count; i++) {
        json_t *a = published[i];
        assert_string_equal(json_string_value(json_object_get(a, "sensor_id")),
                            keys[i]);
        assert_string_equal(json_string_value(json_object_get(a, "alert_type")),
                            "threshold");
        assert_true(json_is_null(json_object_get(a, "anomaly_score")));
        assert_non_null(
            strstr(json_string_value(json_object_get(a, "message")), keys[i]));
        assert_int_equal(
            strncmp(json_string_value(json_object_get(a, "timestamp")),
                    "2026-01-01T00:00:00.00", 22),
            0);
        json_decref(a);
    }
}

/* ---- the forest flags a spike ------------------------------------------ */

/* Waits up to 20 s until type has its first forest. */
static void wait_first_model(sl_detector_t *det, sl_sensor_type_t type)
{
    int64_t deadline = sl_time_mono_ms() + 20000;
    sl_detector_stats_t st;

    do {
        sl_time_sleep_ms(5);
        sl_detector_stats(det, &st);
    } while (st.retrains[type] == 0 && sl_time_mono_ms() < deadline);
    assert_int_equal(st.retrains[type], 1);
}

static void test_spike_flagged_and_alerted(void **state)
{
    fixture_t *fx = *state;
    sl_detector_config_t cfg = small_config(fx, 100, 100000);
    int64_t spike_ms = T0_MS + 150 * 60000;
    sl_alert_t alerts[4];
    size_t n;

    cfg.cooldown_ms = 0;
    sl_detector_t *det = start(&cfg);
    publish_series(fx, "boiler", SL_SENSOR_TEMPERATURE, 150, 20, T0_MS);
    wait_detected(det);
    wait_first_model(det, SL_SENSOR_TEMPERATURE);

    sl_reading_t spike =
        make_reading("boiler", SL_SENSOR_TEMPERATURE, spike_ms, 60);
    publish(fx, &spike);
    sl_detector_stats_t st = stop(fx, det);

    assert_true(st.scored >= 1);
    assert_true(st.anomalies >= 1);
    assert_int_equal(query_int(fx, "SELECT count(*) FROM sensor_readings"
                                   " WHERE anomaly = 1 AND timestamp_ms = "
                                   "1767234600000 AND anomaly_score < -0.5"),
                     1);
    assert_int_equal(sl_store_alerts(fx->st, "boiler", alerts, 4, &n), SL_OK);
    assert_true(n >= 1);
    assert_int_equal(alerts[0].timestamp_ms, spike_ms);
    assert_int_equal(alerts[0].alert_type, SL_ALERT_ML_ANOMALY);
    assert_true(alerts[0].has_score);
    assert_true(alerts[0].anomaly_score < -0.5);
}

/* ---- persistence ------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void assert_model_loads(const char *dir, sl_sensor_type_t type)
{
    char path[256], err[256] = "";
    sl_iforest_t *forest;

    assert_int_equal(sl_detector_model_path(dir, type, path, sizeof(path)),
                     SL_OK);
    forest = sl_iforest_load(path, err, sizeof(err));
    if (forest == NULL)
        fail_msg("model %s does not load: %s", path, err);
    sl_iforest_destroy(forest);
}

static void test_models_saved_and_reloaded(void **state)
{
    fixture_t *fx = *state;
    sl_detector_config_t cfg = small_config(fx, 20, 1000);
    char humidity[256];
    const char *log;

    cfg.model_dir = fx->models;
    sl_detector_t *det = start(&cfg);
    publish_series(fx, "temp-a", SL_SENSOR_TEMPERATURE, 30, 21, T0_MS);
    sl_detector_stats_t st = stop(fx, det);
    assert_int_equal(st.retrains[SL_SENSOR_TEMPERATURE], 1);
    assert_int_equal(st.models_loaded, 0);
    assert_model_loads(fx->models, SL_SENSOR_TEMPERATURE);

    /* Restart with a corrupt humidity file beside the good one. */
    assert_int_equal(sl_detector_model_path(fx->models, SL_SENSOR_HUMIDITY,
                                            humidity, sizeof(humidity)),
                     SL_OK);
    write_file(humidity, "this is not a forest\n");
    fixture_new_bus(fx);
    cfg.bus = fx->bus;
    capture_start(fx);
    det = start(&cfg);
    log = capture_stop();
    assert_non_null(strstr(log, humidity));

    /* The loaded forest scores at once: fewer readings than min_samples. */
    publish_series(fx, "temp-b", SL_SENSOR_TEMPERATURE, 5, 22, T0_MS);
    /* Exactly min_samples humidity readings: the last one triggers the
     * retrain after it was scored, so none can meet the new forest. */
    publish_series(fx, "hum-a", SL_SENSOR_HUMIDITY, 20, 40, T0_MS);
    st = stop(fx, det);
    assert_int_equal(st.models_loaded, 1);
    assert_int_equal(st.models_rejected, 1);
    assert_int_equal(st.scored, 5);
    assert_int_equal(st.unscored, 20);
    /* Humidity retrained and replaced the corrupt file. */
    assert_int_equal(st.retrains[SL_SENSOR_HUMIDITY], 1);
    assert_model_loads(fx->models, SL_SENSOR_HUMIDITY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retrains_counted_per_type, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redelivered_alert_published_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules_and_cooldown, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spike_flagged_and_alerted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_models_saved_and_reloaded, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
