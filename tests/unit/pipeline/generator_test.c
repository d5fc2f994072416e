/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Synthetic producers: readings stay valid and physically possible with
 * anomalies injected, levels match each quantity, output is deterministic
 * for a seed, and shopper sessions are sticky and follow the funnel.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/validate.h"
#include "pipeline/generator.h"
#include "util/err.h"
#include "util/timeutil.h"

/* 2024-05-01T00:00:00Z: a fixed event time keeps the tests reproducible. */
#define T0_MS INT64_C(1714521600000)

static sl_sensor_sim_t *sim_new(int per_type, int types, double anomaly_rate,
                                uint64_t seed)
{
    sl_generator_config_t cfg;
    sl_sensor_sim_t *sim;

    sl_generator_config_init(&cfg);
    cfg.sensors_per_type = per_type;
    cfg.type_count = types;
    cfg.anomaly_rate = anomaly_rate;
    cfg.seed = seed;
    sim = sl_sensor_sim_create(&cfg);
    assert_non_null(sim);
    return sim;
}

static void config_defaults(void **state)
{
    sl_generator_config_t cfg;
    sl_sensor_sim_t *sim;

    (void)state;
    sl_generator_config_init(&cfg);
    assert_int_equal(cfg.sensors_per_type, 10);
    assert_int_equal(cfg.type_count, 3);
    assert_true(cfg.interval_s == 1.0);
    assert_true(cfg.event_interval_s == 2.0);
    assert_int_equal(cfg.users, 50);
    sim = sl_sensor_sim_create(&cfg);
    assert_non_null(sim);
    assert_int_equal(sl_sensor_sim_sensor_count(sim), 30);
    sl_sensor_sim_destroy(sim);
}

static void config_invalid_rejected(void **state)
{
    sl_generator_config_t cfg;

    (void)state;
    sl_generator_config_init(&cfg);
    cfg.type_count = 6;
    assert_null(sl_sensor_sim_create(&cfg));
    sl_generator_config_init(&cfg);
    cfg.sensors_per_type = 0;
    assert_null(sl_sensor_sim_create(&cfg));
    sl_generator_config_init(&cfg);
    cfg.anomaly_rate = 1.5;
    assert_null(sl_sensor_sim_create(&cfg));
    sl_generator_config_init(&cfg);
    cfg.interval_s = 0;
    assert_null(sl_sensor_sim_create(&cfg));
    sl_generator_config_init(&cfg);
    cfg.users = 0;
    assert_null(sl_sensor_sim_create(&cfg));
    assert_null(sl_sensor_sim_create(NULL));
}

static void sensor_ids_and_locations(void **state)
{
    sl_sensor_sim_t *sim = sim_new(10, 5, 0, 7);
    sl_reading_t rec;
    char building, tail;
    int floor;

    (void)state;
    sl_sensor_sim_reading(sim, 0, T0_MS, &rec);
    assert_string_equal(rec.sensor_id, "sensor-temperature-001");
    sl_sensor_sim_reading(sim, 9, T0_MS, &rec);
    assert_string_equal(rec.sensor_id, "sensor-temperature-010");
    sl_sensor_sim_reading(sim, 10, T0_MS, &rec);
    assert_string_equal(rec.sensor_id, "sensor-humidity-001");
    assert_int_equal(rec.sensor_type, SL_SENSOR_HUMIDITY);
    sl_sensor_sim_reading(sim, 49, T0_MS, &rec);
    assert_string_equal(rec.sensor_id, "sensor-power-010");
    assert_int_equal(rec.sensor_type, SL_SENSOR_POWER);
    assert_true(rec.has_unit);
    assert_string_equal(rec.unit, "W");

    for (int i = 0; i < 50; i++) {
        sl_sensor_sim_reading(sim, i, T0_MS, &rec);
        assert_int_equal(sscanf(rec.location, "building-%c/floor-%d%c",
                                &building, &floor, &tail),
                         2);
        assert_in_range(building, 'a', 'c');
        assert_in_range(floor, 1, 5);
    }
    sl_sensor_sim_destroy(sim);
}

/* 10,000 readings of all five types at a high anomaly rate: every one
 * passes validation and keeps the ground truth out of the record. */
static void readings_always_valid(void **state)
{
    sl_sensor_sim_t *sim = sim_new(10, 5, 0.05, 11);
    int per_type[SL_SENSOR_TYPE_COUNT] = {0};
    sl_reading_t rec;
    const char *why;

    (void)state;
    for (int n = 0; n < 10000; n++) {
        int64_t ts = T0_MS + (int64_t)(n / 50) * 1000;

        sl_sensor_sim_reading(sim, n % 50, ts, &rec);
        why = sl_reading_validate(&rec, ts);
        if (why != NULL)
            fail_msg("reading %d of %s is invalid: %s (value %g)", n,
                     rec.sensor_id, why, rec.value);
        assert_false(rec.anomaly);
        assert_false(rec.has_score);
        assert_int_equal(rec.timestamp_ms, ts);
        assert_in_range(rec.battery_level, 0, 100);
        assert_in_range(rec.signal_strength + 90, 0, 50);
        if (rec.sensor_type == SL_SENSOR_HUMIDITY)
            assert_true(rec.value >= 0 && rec.value <= 100);
        if (rec.sensor_type == SL_SENSOR_PRESSURE)
            assert_true(rec.value > 0);
        if (rec.sensor_type == SL_SENSOR_VIBRATION ||
            rec.sensor_type == SL_SENSOR_POWER)
            assert_true(rec.value >= 0);
        per_type[rec.sensor_type]++;
    }
    for (int t = 0; t < 5; t++)
        assert_int_equal(per_type[t], 2000);
    sl_sensor_sim_destroy(sim);
}

/* Mean, min and max per type over a day of readings without anomalies. */
static void levels_match_quantity(void **state)
{
    static const double lo[] = {18, 30, 1005, 0.1, 100};
    static const double hi[] = {26, 60, 1021, 2.0, 2000};
    sl_sensor_sim_t *sim = sim_new(4, 5, 0, 3);
    double sum[5] = {0}, min[5], max[5];
    int count[5] = {0};
    sl_reading_t rec;

    (void)state;
    for (int t = 0; t < 5; t++) {
        min[t] = INFINITY;
        max[t] = -INFINITY;
    }
    /* One reading per sensor every 5 minutes for 24 hours. */
    for (int step = 0; step < 288; step++) {
        for (int i = 0; i < 20; i++) {
            sl_sensor_sim_reading(sim, i, T0_MS + step * 300000, &rec);
            sum[rec.sensor_type] += rec.value;
            min[rec.sensor_type] = fmin(min[rec.sensor_type], rec.value);
            max[rec.sensor_type] = fmax(max[rec.sensor_type], rec.value);
            count[rec.sensor_type]++;
        }
    }
    for (int t = 0; t < 5; t++) {
        double mean = sum[t] / count[t];
        double span = hi[t] - lo[t];

        if (mean < lo[t] || mean > hi[t])
            fail_msg("type %d mean %g outside %g..%g", t, mean, lo[t], hi[t]);
        /* Noise and the daily cycle stay near the normal band. */
        assert_true(min[t] > lo[t] - 0.5 * span);
        assert_true(max[t] < hi[t] + 0.5 * span);
        /* The daily cycle and noise make values vary. */
        assert_true(max[t] > min[t]);
    }
    sl_sensor_sim_destroy(sim);
}

/* Largest jump between consecutive readings of one temperature sensor, and
 * the number of exact repeats. */
static void jumps_and_repeats(double anomaly_rate, double *max_jump,
                              int *repeats)
{
    sl_sensor_sim_t *sim = sim_new(1, 1, anomaly_rate, 5);
    sl_reading_t rec;
    double prev = 0;

    *max_jump = 0;
    *repeats = 0;
    for (int n = 0; n < 5000; n++) {
        sl_sensor_sim_reading(sim, 0, T0_MS + n * 1000, &rec);
        if (n > 0) {
            *max_jump = fmax(*max_jump, fabs(rec.value - prev));
            *repeats += rec.value == prev;
        }
        prev = rec.value;
    }
    sl_sensor_sim_destroy(sim);
}

static void anomalies_injected(void **state)
{
    double quiet_jump, noisy_jump;
    int quiet_repeats, noisy_repeats;

    (void)state;
    jumps_and_repeats(0, &quiet_jump, &quiet_repeats);
    jumps_and_repeats(0.02, &noisy_jump, &noisy_repeats);
    /* Noise alone (sd 0.3 C) moves less than 3 C between readings; a spike
     * moves at least 7 C. Stuck values repeat exactly. */
    assert_true(quiet_jump < 3.0);
    assert_int_equal(quiet_repeats, 0);
    assert_true(noisy_jump > 7.0);
    assert_true(noisy_repeats > 10);
}

static void readings_deterministic(void **state)
{
    sl_sensor_sim_t *a = sim_new(10, 3, 0.05, 42);
    sl_sensor_sim_t *b = sim_new(10, 3, 0.05, 42);
    sl_sensor_sim_t *c = sim_new(10, 3, 0.05, 43);
    sl_reading_t ra, rb, rc;
    int differ = 0;

    (void)state;
    for (int n = 0; n < 3000; n++) {
        int64_t ts = T0_MS + n * 100;

        sl_sensor_sim_reading(a, n % 30, ts, &ra);
        sl_sensor_sim_reading(b, n % 30, ts, &rb);
        sl_sensor_sim_reading(c, n % 30, ts, &rc);
        assert_string_equal(ra.sensor_id, rb.sensor_id);
        assert_string_equal(ra.location, rb.location);
        assert_true(ra.value == rb.value);
        assert_int_equal(ra.battery_level, rb.battery_level);
        assert_int_equal(ra.signal_strength, rb.signal_strength);
        differ += ra.value != rc.value;
    }
    assert_true(differ > 2900);
    sl_sensor_sim_destroy(a);
    sl_sensor_sim_destroy(b);
    sl_sensor_sim_destroy(c);
}

static void events_deterministic(void **state)
{
    sl_sensor_sim_t *a = sim_new(1, 1, 0, 9);
    sl_sensor_sim_t *b = sim_new(1, 1, 0, 9);
    sl_event_t ea, eb;

    (void)state;
    for (int n = 0; n < 2000; n++) {
        int64_t ts = T0_MS + n * 2000;

        sl_sensor_sim_event(a, ts, &ea);
        sl_sensor_sim_event(b, ts, &eb);
        assert_string_equal(ea.event_id, eb.event_id);
        assert_string_equal(ea.user_id, eb.user_id);
        assert_string_equal(ea.session_id, eb.session_id);
        assert_int_equal(ea.event_type, eb.event_type);
        assert_int_equal(ea.present, eb.present);
        assert_true(ea.price == eb.price);
    }
    sl_sensor_sim_destroy(a);
    sl_sensor_sim_destroy(b);
}

/* Per-user bookkeeping of the session test. */
typedef struct user_seen {
    char user_id[SL_ID_MAX + 1];
    char session[SL_ID_MAX + 1];
    char ip[SL_IP_MAX + 1];
    sl_device_t device;
    int sessions;
} user_seen_t;

static bool documentation_ip(const char *ip)
{
    int a, b, c, d;

    if (sscanf(ip, "%d.%d.%d.%d", &a, &b, &c, &d) != 4 || d < 1 || d > 254)
        return false;
    return (a == 192 && b == 0 && c == 2) ||
           (a == 198 && b == 51 && c == 100) ||
           (a == 203 && b == 0 && c == 113);
}

static void check_event_fields(const sl_event_t *ev)
{
    const char *why = sl_event_validate(ev, ev->timestamp_ms);

    if (why != NULL)
        fail_msg("event %s is invalid: %s", ev->event_id, why);
    assert_true(documentation_ip(ev->ip_address));
    assert_true(ev->session_id[0] != '\0');
    switch (ev->event_type) {
    case SL_EVENT_PURCHASE:
        assert_true(ev->present & SL_EV_TOTAL);
        assert_true(ev->total == ev->price * ev->quantity);
        assert_true(ev->present & SL_EV_PAYMENT_METHOD);
        /* fall through */
    case SL_EVENT_ADD_TO_CART:
    case SL_EVENT_REMOVE_FROM_CART:
        assert_true(ev->present & SL_EV_PRODUCT_ID);
        assert_true(ev->present & SL_EV_PRICE);
        assert_in_range(ev->quantity, 1, 30);
        assert_true(ev->price > 0);
        assert_string_equal(ev->currency, "USD");
        break;
    case SL_EVENT_SEARCH:
        assert_true(ev->present & SL_EV_QUERY);
        assert_true(ev->query[0] != '\0');
        break;
    case SL_EVENT_PAGE_VIEW:
        assert_true(ev->present & SL_EV_PAGE);
        break;
    default:
        fail_msg("unexpected event type %d", ev->event_type);
    }
}

static void sessions_sticky_and_funnel(void **state)
{
    enum { USERS = 20, EVENTS = 5000 };
    sl_generator_config_t cfg;
    sl_sensor_sim_t *sim;
    user_seen_t seen[USERS];
    int types[SL_EVENT_TYPE_COUNT] = {0};
    char(*closed)[SL_ID_MAX + 1] = calloc(EVENTS, SL_ID_MAX + 1);
    int closed_count = 0, total_sessions = 0;
    sl_event_t ev;

    (void)state;
    assert_non_null(closed);
    memset(seen, 0, sizeof(seen));
    sl_generator_config_init(&cfg);
    cfg.users = USERS;
    cfg.seed = 77;
    sim = sl_sensor_sim_create(&cfg);
    assert_non_null(sim);

    for (int n = 0; n < EVENTS; n++) {
        user_seen_t *u = NULL;
        int k;

        sl_sensor_sim_event(sim, T0_MS + (int64_t)n * 2000, &ev);
        check_event_fields(&ev);
        types[ev.event_type]++;
        for (k = 0; k < USERS && seen[k].user_id[0] != '\0'; k++) {
            if (strcmp(seen[k].user_id, ev.user_id) == 0)
                break;
        }
        assert_true(k < USERS);
        u = &seen[k];
        if (u->user_id[0] == '\0') {
            snprintf(u->user_id, sizeof(u->user_id), "%s", ev.user_id);
            snprintf(u->ip, sizeof(u->ip), "%s", ev.ip_address);
            u->device = ev.device;
        }
        /* Device and address belong to the user. */
        assert_string_equal(u->ip, ev.ip_address);
        assert_int_equal(u->device, ev.device);
        if (strcmp(u->session, ev.session_id) == 0)
            continue;

        /* A new session: its id was never used before, by anyone. */
        for (int c = 0; c < closed_count; c++)
            assert_string_not_equal(closed[c], ev.session_id);
        if (u->session[0] != '\0')
            snprintf(closed[closed_count++], SL_ID_MAX + 1, "%s", u->session);
        for (int o = 0; o < USERS; o++)
            assert_string_not_equal(seen[o].session, ev.session_id);
        snprintf(u->session, sizeof(u->session), "%s", ev.session_id);
        u->sessions++;
        total_sessions++;
    }

    /* Sessions last several events, and every funnel step occurs. */
    assert_true((double)EVENTS / total_sessions > 3.0);
    assert_true(types[SL_EVENT_PAGE_VIEW] > types[SL_EVENT_ADD_TO_CART]);
    assert_true(types[SL_EVENT_ADD_TO_CART] > types[SL_EVENT_PURCHASE] / 2);
    assert_true(types[SL_EVENT_SEARCH] > 0);
    assert_true(types[SL_EVENT_REMOVE_FROM_CART] > 0);
    assert_true(types[SL_EVENT_PURCHASE] > 0);
    assert_int_equal(types[SL_EVENT_OTHER], 0);
    sl_sensor_sim_destroy(sim);
    free(closed);
}

static void idle_session_expires(void **state)
{
    sl_generator_config_t cfg;
    sl_sensor_sim_t *sim;
    sl_event_t first, second;

    (void)state;
    sl_generator_config_init(&cfg);
    cfg.users = 1;
    sim = sl_sensor_sim_create(&cfg);
    assert_non_null(sim);
    sl_sensor_sim_event(sim, T0_MS, &first);
    /* Two hours of silence end any session. */
    sl_sensor_sim_event(sim, T0_MS + 2 * 3600 * 1000, &second);
    assert_string_equal(first.user_id, second.user_id);
    assert_string_not_equal(first.session_id, second.session_id);
    sl_sensor_sim_destroy(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_defaults),
        cmocka_unit_test(config_invalid_rejected),
        cmocka_unit_test(sensor_ids_and_locations),
        cmocka_unit_test(readings_always_valid),
        cmocka_unit_test(levels_match_quantity),
        cmocka_unit_test(anomalies_injected),
        cmocka_unit_test(readings_deterministic),
        cmocka_unit_test(events_deterministic),
        cmocka_unit_test(sessions_sticky_and_funnel),
        cmocka_unit_test(idle_session_expires),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
