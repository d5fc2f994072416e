/* SPDX-License-Identifier: Apache-2.0 */
/* Configuration: defaults, environment, flags, and errors that name the
 * setting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "util/err.h"

static int load(sl_config_t *cfg, int argc, char **argv, char *err)
{
    sl_config_init(cfg);
    return sl_config_load(cfg, argc, argv, NULL, err, 256);
}

static void test_defaults_match_documentation(void **state)
{
    sl_config_t cfg;
    char err[256];

    (void)state;
    assert_int_equal(load(&cfg, 0, NULL, err), SL_OK);
    assert_string_equal(cfg.db, "sluice.db");
    assert_string_equal(cfg.listen, "127.0.0.1:8000");
    assert_true(cfg.generators);
    assert_int_equal(cfg.window_seconds, 60);
    assert_int_equal(cfg.allowed_lateness_seconds, 300);
    assert_int_equal(cfg.sensors_per_type, 10);
    assert_int_equal(cfg.sensor_types, 3);
    assert_true(cfg.event_interval == 2.0);
    assert_string_equal(cfg.speed, "max");
    assert_int_equal(cfg.replay_count, 0);
    sl_config_fini(&cfg);
}

static void test_flags_override_environment(void **state)
{
    char *argv[] = {
        "--db",     "/tmp/a.db", "--batch-size=10", "--no-generators",
        "--replay", "/dev/null", "/dev/zero",       "--rebase-time"};
    sl_config_t cfg;
    char err[256];

    (void)state;
    setenv("SLUICE_DB", "/tmp/env.db", 1);
    setenv("SLUICE_WINDOW_SECONDS", "30", 1);
    if (load(&cfg, 8, argv, err) != SL_OK)
        fail_msg("load: %s", err);
    unsetenv("SLUICE_DB");
    unsetenv("SLUICE_WINDOW_SECONDS");
    assert_string_equal(cfg.db, "/tmp/a.db");
    assert_int_equal(cfg.window_seconds, 30);
    assert_int_equal(cfg.batch_size, 10);
    assert_false(cfg.generators);
    assert_true(cfg.rebase_time);
    assert_int_equal(cfg.replay_count, 2);
    assert_string_equal(cfg.replay[0], "/dev/null");
    assert_string_equal(cfg.replay[1], "/dev/zero");
    sl_config_fini(&cfg);
}

/* The OpenTelemetry name of the trace endpoint sets the same field. */
static void test_otlp_endpoint_alias(void **state)
{
    char *argv[] = {"--otlp-endpoint", "http://127.0.0.1:4318/v1/traces"};
    sl_config_t cfg;
    char err[256];

    (void)state;
    setenv("SLUICE_OTLP_ENDPOINT", "http://127.0.0.1:1/v1/traces", 1);
    if (load(&cfg, 0, NULL, err) != SL_OK)
        fail_msg("load: %s", err);
    assert_string_equal(cfg.trace_endpoint, "http://127.0.0.1:1/v1/traces");
    sl_config_fini(&cfg);
    if (load(&cfg, 2, argv, err) != SL_OK)
        fail_msg("load: %s", err);
    unsetenv("SLUICE_OTLP_ENDPOINT");
    assert_string_equal(cfg.trace_endpoint, "http://127.0.0.1:4318/v1/traces");
    sl_config_fini(&cfg);
}

/* Each invalid input and the text its error must contain. */
static void test_invalid_values_name_the_setting(void **state)
{
    static const struct {
        const char *flag;
        const char *value;
        const char *expected;
    } cases[] = {
        {"--batch-size", "0",
         "batch-size (from flag --batch-size): 0 is "
         "outside the range"},
        {"--batch-size", "12x",
         "batch-size (from flag --batch-size): "
         "invalid integer '12x'"},
        {"--rate", "-1", "rate (from flag --rate): -1 is outside"},
        {"--anomaly-rate", "nan",
         "anomaly-rate (from flag --anomaly-rate): "
         "invalid number"},
        {"--generators=maybe", NULL, "invalid boolean 'maybe'"},
        {"--speed", "-2", "speed: invalid value '-2'"},
        {"--speed", "fast", "speed: invalid value 'fast'"},
        {"--sensor-type", "lava", "sensor-type: invalid value 'lava'"},
        {"--log-level", "loud", "log-level: invalid value 'loud'"},
        {"--db", "", "db: must not be empty"},
        {"--bogus", "1", "unknown flag --bogus"},
        {"--db", "--listen", "flag --db: missing value (got --listen)"},
        {"--replay", "/nonexistent/x.csv",
         "replay: cannot read /nonexistent/x.csv: No such file"},
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[] = {(char *)cases[i].flag, (char *)cases[i].value};
        int argc = cases[i].value != NULL ? 2 : 1;
        sl_config_t cfg;

        assert_int_equal(load(&cfg, argc, argv, err), SL_EINVAL);
        if (strstr(err, cases[i].expected) == NULL)
            fail_msg("%s %s: got '%s'", cases[i].flag, cases[i].value, err);
        sl_config_fini(&cfg);
    }
}

static void test_invalid_environment_names_variable(void **state)
{
    sl_config_t cfg;
    char err[256];

    (void)state;
    setenv("SLUICE_BUS_PARTITIONS", "0", 1);
    assert_int_equal(load(&cfg, 0, NULL, err), SL_EINVAL);
    unsetenv("SLUICE_BUS_PARTITIONS");
    assert_non_null(strstr(err, "from SLUICE_BUS_PARTITIONS"));
    sl_config_fini(&cfg);
}

/* The decoder accepts at most 1000000 bytes, so the setting stops there. */
static void test_max_payload_bytes_bounds(void **state)
{
    char *argv_ok[] = {"--max-payload-bytes", "4096"};
    char *argv_zero[] = {"--max-payload-bytes=0"};
    sl_config_t cfg;
    char err[256];

    (void)state;
    assert_int_equal(load(&cfg, 0, NULL, err), SL_OK);
    assert_int_equal(cfg.max_payload_bytes, 1000000);
    sl_config_fini(&cfg);

    assert_int_equal(load(&cfg, 2, argv_ok, err), SL_OK);
    assert_int_equal(cfg.max_payload_bytes, 4096);
    sl_config_fini(&cfg);

    assert_int_equal(load(&cfg, 1, argv_zero, err), SL_EINVAL);
    assert_non_null(strstr(err, "max-payload-bytes (from flag "
                                "--max-payload-bytes): 0 is outside"));
    sl_config_fini(&cfg);

    setenv("SLUICE_MAX_PAYLOAD_BYTES", "1000001", 1);
    assert_int_equal(load(&cfg, 0, NULL, err), SL_EINVAL);
    unsetenv("SLUICE_MAX_PAYLOAD_BYTES");
    assert_non_null(strstr(err, "max-payload-bytes (from "
                                "SLUICE_MAX_PAYLOAD_BYTES): 1000001 is "
                                "outside the range 1..1000000"));
    sl_config_fini(&cfg);
}

static void test_missing_flag_value_is_reported(void **state)
{
    char *argv_replay[] = {"--replay"};
    char *argv_db[] = {"--db"};
    sl_config_t cfg;
    char err[256];

    (void)state;
    assert_int_equal(load(&cfg, 1, argv_replay, err), SL_EINVAL);
    assert_string_equal(err, "flag --replay: missing value");
    sl_config_fini(&cfg);
    assert_int_equal(load(&cfg, 1, argv_db, err), SL_EINVAL);
    assert_string_equal(err, "flag --db: missing value");
    sl_config_fini(&cfg);
}

static void test_listen_address_parsing(void **state)
{
    static const struct {
        const char *listen;
        int ok;
        const char *host;
        int port;
    } cases[] = {
        {"127.0.0.1:8000", 1, "127.0.0.1", 8000},
        {"[::1]:9000", 1, "::1", 9000},
        {"localhost:0", 1, "localhost", 0},
        {"127.0.0.1", 0, NULL, 0},
        {":8000", 0, NULL, 0},
        {"127.0.0.1:65536", 0, NULL, 0},
        {"127.0.0.1:80x", 0, NULL, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[] = {"--listen", (char *)cases[i].listen};
        char host[64], err[256];
        sl_config_t cfg;
        int port = -1;

        assert_int_equal(load(&cfg, 2, argv, err), SL_OK);
        int rc =
            sl_config_listen(&cfg, host, sizeof(host), &port, err, sizeof(err));
        if (cases[i].ok) {
            assert_int_equal(rc, SL_OK);
            assert_string_equal(host, cases[i].host);
            assert_int_equal(port, cases[i].port);
        } else {
            assert_int_equal(rc, SL_EINVAL);
            assert_non_null(strstr(err, "listen: invalid"));
        }
        sl_config_fini(&cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_documentation),
        cmocka_unit_test(test_flags_override_environment),
        cmocka_unit_test(test_otlp_endpoint_alias),
        cmocka_unit_test(test_invalid_values_name_the_setting),
        cmocka_unit_test(test_invalid_environment_names_variable),
        cmocka_unit_test(test_max_payload_bytes_bounds),
        cmocka_unit_test(test_missing_flag_value_is_reported),
        cmocka_unit_test(test_listen_address_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
