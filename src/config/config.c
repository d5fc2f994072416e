/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The settings table and its parser. Flags are "--name value",
 * "--name=value", or for booleans "--name" / "--no-name"; the environment
 * variable of a setting is SLUICE_ plus its name in upper case with '-'
 * turned into '_'.
 */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "util/log.h"

typedef enum { T_STRING, T_INT, T_INT64, T_DOUBLE, T_BOOL } setting_type_t;

typedef struct setting {
    const char *name;
    setting_type_t type;
    size_t offset;
    const char *default_value;
    double min; /* bounds of numeric settings, inclusive */
    double max;
    const char *help;
} setting_t;

#define OFF(field) offsetof(sl_config_t, field)

static const setting_t settings[] = {
    {"db", T_STRING, OFF(db), "sluice.db", 0, 0,
     "store location: an SQLite file path or a postgres:// URL"},
    {"store", T_STRING, OFF(db), "sluice.db", 0, 0,
     "another name for db; the one given last wins"},
    {"listen", T_STRING, OFF(listen), "127.0.0.1:8000", 0, 0,
     "HTTP API address, HOST:PORT (port 0 picks a free one)"},
    {"api-token", T_STRING, OFF(api_token), "", 0, 0,
     "bearer token that API write requests must carry; empty = none "
     "(prefer the variable: flags show in ps)"},
    {"cors-origins", T_STRING, OFF(cors_origins), "", 0, 0,
     "origins allowed to call the API from a browser, comma-separated, "
     "or *; empty = none"},
    {"api-max-body-bytes", T_INT64, OFF(api_max_body_bytes), "1048576", 1,
     1073741824, "largest API request body in bytes; larger gets HTTP 413"},
    {"api-body-timeout-ms", T_INT, OFF(api_body_timeout_ms), "10000", 100,
     3600000, "milliseconds allowed for an API request body to arrive"},
    {"ws-max-clients", T_INT, OFF(ws_max_clients), "1024", 1, 65536,
     "most WebSocket clients of /ws/sensors and /ws/alerts together; more "
     "are closed with status 1013"},
    {"ws-queue-messages", T_INT, OFF(ws_queue_messages), "1024", 16, 1048576,
     "messages queued per WebSocket client; a client that falls further "
     "behind loses its oldest messages"},
    {"ws-stall-ms", T_INT, OFF(ws_stall_ms), "10000", 100, 3600000,
     "milliseconds a WebSocket client may keep losing messages before it "
     "is closed with status 1008"},
    {"log-level", T_STRING, OFF(log_level), "info", 0, 0,
     "error, warn, info, debug or trace"},
    {"generators", T_BOOL, OFF(generators), "true", 0, 0,
     "run the synthetic sensor and shopper generators"},
    {"rate", T_DOUBLE, OFF(rate), "0", 0, 1e7,
     "generated readings per second for the whole fleet; 0 = each sensor "
     "once per second"},
    {"sensors-per-type", T_INT, OFF(sensors_per_type), "10", 1, 999,
     "generated sensors of each type"},
    {"sensor-types", T_INT, OFF(sensor_types), "3", 1, 5,
     "generated sensor types: first N of temperature, humidity, pressure, "
     "vibration, power"},
    {"event-interval", T_DOUBLE, OFF(event_interval), "2", 0, 86400,
     "seconds between generated commerce events; 0 = none"},
    {"anomaly-rate", T_DOUBLE, OFF(anomaly_rate), "0.01", 0, 1,
     "probability that a generated reading starts an anomaly"},
    {"seed", T_INT64, OFF(seed), "1", 0, 9.0e15, "generator random seed"},
    {"format", T_STRING, OFF(format), "auto", 0, 0,
     "replay format: auto, nab, sensor-csv, ndjson, commerce-csv, frames"},
    {"sensor-id", T_STRING, OFF(sensor_id), "", 0, 0,
     "replay of NAB files: sensor id (default: the file name)"},
    {"sensor-type", T_STRING, OFF(sensor_type), "other", 0, 0,
     "replay of NAB files: sensor type"},
    {"unit", T_STRING, OFF(unit), "", 0, 0, "replay of NAB files: unit"},
    {"location", T_STRING, OFF(location), "replay", 0, 0,
     "replay of NAB files: location"},
    {"speed", T_STRING, OFF(speed), "max", 0, 0,
     "replay pace: a factor of the recorded pace (1 = real time) or max"},
    {"rebase-time", T_BOOL, OFF(rebase_time), "false", 0, 0,
     "shift replayed timestamps so the last record is stamped now"},
    {"exit-when-idle", T_BOOL, OFF(exit_when_idle), "false", 0, 0,
     "exit once every replay file is published and processed; generators "
     "do not run"},
    {"batch-size", T_INT, OFF(batch_size), "5000", 1, 1000000,
     "records per store transaction, at most"},
    {"batch-timeout-ms", T_INT, OFF(batch_timeout_ms), "50", 1, 60000,
     "longest wait in ms before a partial batch is written"},
    {"window-seconds", T_INT, OFF(window_seconds), "60", 1, 86400,
     "length of the tumbling aggregation windows"},
    {"allowed-lateness-seconds", T_INT, OFF(allowed_lateness_seconds), "300", 0,
     86400 * 7, "how long after a window's end late readings still join it"},
    /* The upper bound is SL_FRAME_MAX_BYTES of schema/schema.h, the
     * decoder's own limit (Kafka's default message.max.bytes). */
    {"max-payload-bytes", T_INT64, OFF(max_payload_bytes), "1000000", 1,
     1000000,
     "largest message value in bytes the processor decodes; a larger one "
     "goes to the dead-letter queue as payload_too_large with only an "
     "excerpt of its bytes"},
    {"bus", T_STRING, OFF(bus), "memory", 0, 0,
     "message bus: memory (in-process, sluice run only) or kafka"},
    {"kafka-brokers", T_STRING, OFF(kafka_brokers), "", 0, 0,
     "Kafka bootstrap servers, HOST:PORT[,HOST:PORT...]; required with "
     "bus=kafka"},
    {"kafka-properties", T_STRING, OFF(kafka_properties), "", 0, 0,
     "librdkafka properties for bus=kafka, KEY=VALUE[,KEY=VALUE...], such "
     "as consumer.session.timeout.ms=6000; a consumer. or producer. prefix "
     "scopes one to that client"},
    {"registry-url", T_STRING, OFF(registry_url), "", 0, 0,
     "schema registry base URL such as http://127.0.0.1:8081; empty = "
     "each process registers the built-in schemas in memory"},
    {"registry-listen", T_STRING, OFF(registry_listen), "127.0.0.1:8081", 0, 0,
     "address `sluice registry` serves on, HOST:PORT"},
    {"views-refresh-seconds", T_INT, OFF(views_refresh_seconds), "60", 0, 86400,
     "sluice process on PostgreSQL: seconds between refreshes of the "
     "materialized views sensor_stats and sensor_readings_hourly; 0 = never"},
    {"metrics-listen", T_STRING, OFF(metrics_listen), "", 0, 0,
     "address, HOST:PORT, where a role other than api serves /metrics for "
     "Prometheus; empty = no listener (the API serves /metrics itself)"},
    {"trace-endpoint", T_STRING, OFF(trace_endpoint), "", 0, 0,
     "OTLP/HTTP traces URL, such as http://127.0.0.1:4318/v1/traces "
     "(Jaeger); empty = no tracing"},
    {"otlp-endpoint", T_STRING, OFF(trace_endpoint), "", 0, 0,
     "another name for trace-endpoint, as OpenTelemetry tools call it; the "
     "one given last wins"},
    {"trace-sample-ratio", T_DOUBLE, OFF(trace_sample_ratio), "0", 0, 1,
     "fraction of API requests and produced records traced when "
     "trace-endpoint is set; a request with a sampled W3C traceparent "
     "header is always traced, with the records it ingests"},
    {"bus-partitions", T_INT, OFF(bus_partitions), "6", 1, 256,
     "partitions per topic of the in-process bus, and of the Kafka topics "
     "sluice creates"},
    {"bus-capacity", T_INT, OFF(bus_capacity), "65536", 16, 16777216,
     "records each in-process partition holds before producers wait"},
    {"detector", T_BOOL, OFF(detector), "true", 0, 0,
     "run the anomaly detector in sluice run"},
    {"detect-retrain-every", T_INT, OFF(detect_retrain_every), "0", 0,
     100000000,
     "readings of a sensor type between retrains of its model; 0 = the "
     "built-in default, logged at start"},
    {"detect-window", T_INT, OFF(detect_window), "0", 0, 10000000,
     "feature vectors per sensor type a model trains on; 0 = the built-in "
     "default, logged at start"},
    {"detect-min-samples", T_INT, OFF(detect_min_samples), "0", 0, 10000000,
     "readings of a sensor type before its first model; 0 = the built-in "
     "default, logged at start; at most detect-window"},
    {"detect-model-dir", T_STRING, OFF(detect_model_dir), "", 0, 0,
     "folder of the saved models; empty = the SQLite file name plus "
     "\".models\""},
    {"detect-critical-score", T_DOUBLE, OFF(detect_critical_score), "-0.7", -1,
     0,
     "Isolation Forest score at or below which an anomaly alert is "
     "critical (scores are in [-1, 0), lower is more anomalous)"},
    {"alert-cooldown-seconds", T_DOUBLE, OFF(alert_cooldown_seconds), "300", 0,
     86400 * 7, "at most one alert per sensor in this many seconds"},
    {"alert-rules", T_BOOL, OFF(alert_rules), "true", 0, 0,
     "raise threshold alerts from the rule-* limits"},
    {"rule-temperature-high", T_DOUBLE, OFF(rule_temperature_high), "80", -1e9,
     1e9, "temperature above this raises a critical alert"},
    {"rule-temperature-low", T_DOUBLE, OFF(rule_temperature_low), "-20", -1e9,
     1e9, "temperature below this raises a warning alert"},
    {"rule-humidity-high", T_DOUBLE, OFF(rule_humidity_high), "95", -1e9, 1e9,
     "humidity above this raises a warning alert"},
    {"dlq-backoff-base-ms", T_INT64, OFF(dlq_backoff_base_ms), "1000", 1,
     86400000,
     "delay in ms before the first retry of a dead-lettered record; each "
     "further retry doubles it"},
    {"dlq-backoff-cap-ms", T_INT64, OFF(dlq_backoff_cap_ms), "300000", 1,
     86400000, "longest delay in ms between two retries of a record"},
    {"dlq-jitter", T_DOUBLE, OFF(dlq_jitter), "0.2", 0, 1,
     "random spread of each retry delay as a fraction: 0.2 is +-20 %"},
    {"dlq-max-retries", T_INT, OFF(dlq_max_retries), "5", 0, 1000,
     "retries of a storage or processing failure before the record is "
     "parked as dead"},
};

#define SETTING_COUNT (sizeof(settings) / sizeof(settings[0]))

static int set_value(sl_config_t *cfg, const setting_t *s, const char *text,
                     const char *origin, char *err, size_t err_size)
{
    char *field = (char *)cfg + s->offset;
    char *end = NULL;
    double number = 0;

    switch (s->type) {
    case T_STRING: {
        char *copy = strdup(text);
        if (copy == NULL) {
            snprintf(err, err_size, "out of memory");
            return SL_ENOMEM;
        }
        free(*(char **)field);
        *(char **)field = copy;
        return SL_OK;
    }
    case T_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0 ||
            strcmp(text, "yes") == 0) {
            *(bool *)field = true;
        } else if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0 ||
                   strcmp(text, "no") == 0) {
            *(bool *)field = false;
        } else {
            snprintf(err, err_size,
                     "%s (from %s): invalid boolean '%s'; use "
                     "true or false",
                     s->name, origin, text);
            return SL_EINVAL;
        }
        return SL_OK;
    case T_INT:
    case T_INT64:
    case T_DOUBLE:
        errno = 0;
        number = strtod(text, &end);
        if (end == text || *end != '\0' || errno != 0 || !isfinite(number) ||
            (s->type != T_DOUBLE && number != floor(number))) {
            snprintf(err, err_size, "%s (from %s): invalid %s '%s'", s->name,
                     origin, s->type == T_DOUBLE ? "number" : "integer", text);
            return SL_EINVAL;
        }
        if (number < s->min || number > s->max) {
            snprintf(err, err_size,
                     "%s (from %s): %s is outside the range %.15g..%.15g",
                     s->name, origin, text, s->min, s->max);
            return SL_EINVAL;
        }
        if (s->type == T_INT) {
            int value = (int)number;
            memcpy(field, &value, sizeof(value));
        } else if (s->type == T_INT64) {
            int64_t value = (int64_t)number;
            memcpy(field, &value, sizeof(value));
        } else {
            memcpy(field, &number, sizeof(number));
        }
        return SL_OK;
    }
    return SL_EINVAL;
}

void sl_config_init(sl_config_t *cfg)
{
    char err[256];

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        int rc = set_value(cfg, &settings[i], settings[i].default_value,
                           "default", err, sizeof(err));
        /* The defaults are constants of this file and always parse. */
        (void)rc;
    }
}

void sl_config_fini(sl_config_t *cfg)
{
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        if (settings[i].type == T_STRING) {
            char **field = (char **)((char *)cfg + settings[i].offset);
            free(*field);
            *field = NULL;
        }
    }
}

static const setting_t *find_setting(const char *name, size_t len)
{
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        if (strlen(settings[i].name) == len &&
            strncmp(settings[i].name, name, len) == 0)
            return &settings[i];
    }
    return NULL;
}

static void env_name(const setting_t *s, char *out, size_t out_size)
{
    size_t n = (size_t)snprintf(out, out_size, "SLUICE_");

    for (const char *p = s->name; *p != '\0' && n + 1 < out_size; p++)
        out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

static int load_env(sl_config_t *cfg, char *err, size_t err_size)
{
    char name[64];

    for (size_t i = 0; i < SETTING_COUNT; i++) {
        env_name(&settings[i], name, sizeof(name));
        const char *value = getenv(name);
        if (value == NULL)
            continue;
        int rc = set_value(cfg, &settings[i], value, name, err, err_size);
        if (rc != SL_OK)
            return rc;
    }
    return SL_OK;
}

/* Parses argv[*i], consuming its value from argv[*i + 1] when needed. */
static int load_flag(sl_config_t *cfg, int argc, char **argv, int *i, char *err,
                     size_t err_size)
{
    const char *arg = argv[*i] + 2;
    const char *eq = strchr(arg, '=');
    size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
    const setting_t *s = find_setting(arg, len);
    char origin[80];

    snprintf(origin, sizeof(origin), "flag --%.*s", (int)len, arg);
    if (s == NULL && eq == NULL && strncmp(arg, "no-", 3) == 0) {
        s = find_setting(arg + 3, len - 3);
        if (s != NULL && s->type == T_BOOL)
            return set_value(cfg, s, "false", origin, err, err_size);
        s = NULL;
    }
    if (s == NULL) {
        snprintf(err, err_size, "unknown flag --%.*s; see --help", (int)len,
                 arg);
        return SL_EINVAL;
    }
    if (eq != NULL)
        return set_value(cfg, s, eq + 1, origin, err, err_size);
    if (s->type == T_BOOL)
        return set_value(cfg, s, "true", origin, err, err_size);
    if (*i + 1 >= argc) {
        snprintf(err, err_size, "%s: missing value", origin);
        return SL_EINVAL;
    }
    *i += 1;
    /* "--db --listen x" is a forgotten value, not a file named "--listen". */
    if (strncmp(argv[*i], "--", 2) == 0) {
        snprintf(err, err_size, "%s: missing value (got %s)", origin, argv[*i]);
        return SL_EINVAL;
    }
    return set_value(cfg, s, argv[*i], origin, err, err_size);
}

/* Checks the bus and registry settings and their combinations. */
static int check_bus(const sl_config_t *cfg, char *err, size_t err_size)
{
    char host[256];
    int port;

    if (strcmp(cfg->bus, "memory") != 0 && strcmp(cfg->bus, "kafka") != 0) {
        snprintf(err, err_size, "bus: invalid value '%s'; use memory or kafka",
                 cfg->bus);
        return SL_EINVAL;
    }
    if (sl_config_bus_is_kafka(cfg) && cfg->kafka_brokers[0] == '\0') {
        snprintf(err, err_size,
                 "kafka-brokers: missing; bus=kafka needs the bootstrap "
                 "servers, such as --kafka-brokers 127.0.0.1:9092");
        return SL_EINVAL;
    }
    if (!sl_config_bus_is_kafka(cfg) && cfg->kafka_brokers[0] != '\0') {
        snprintf(err, err_size,
                 "kafka-brokers: set to '%s' but bus is memory; add "
                 "--bus kafka or drop kafka-brokers",
                 cfg->kafka_brokers);
        return SL_EINVAL;
    }
    if (cfg->registry_url[0] != '\0' &&
        strncmp(cfg->registry_url, "http://", 7) != 0 &&
        strncmp(cfg->registry_url, "https://", 8) != 0) {
        snprintf(err, err_size,
                 "registry-url: invalid value '%s'; use an http:// or "
                 "https:// URL such as http://127.0.0.1:8081",
                 cfg->registry_url);
        return SL_EINVAL;
    }
    return sl_config_split_address("registry-listen", cfg->registry_listen,
                                   host, sizeof(host), &port, err, err_size);
}

static int check_choices(const sl_config_t *cfg, char *err, size_t err_size)
{
    sl_log_level_t level;
    sl_sensor_type_t type;
    char *end;

    for (size_t i = 0; i < cfg->replay_count; i++) {
        if (strcmp(cfg->replay[i], "-") != 0 &&
            access(cfg->replay[i], R_OK) != 0) {
            snprintf(err, err_size, "replay: cannot read %s: %s",
                     cfg->replay[i], strerror(errno));
            return SL_EINVAL;
        }
    }

    if (sl_log_level_parse(cfg->log_level, &level) != SL_OK) {
        snprintf(err, err_size,
                 "log-level: invalid value '%s'; use error, "
                 "warn, info, debug or trace",
                 cfg->log_level);
        return SL_EINVAL;
    }
    if (sl_sensor_type_parse(cfg->sensor_type, &type) != SL_OK) {
        snprintf(err, err_size,
                 "sensor-type: invalid value '%s'; use "
                 "temperature, humidity, pressure, vibration, power or other",
                 cfg->sensor_type);
        return SL_EINVAL;
    }
    if (strcmp(cfg->speed, "max") != 0) {
        double speed = strtod(cfg->speed, &end);
        if (end == cfg->speed || *end != '\0' || !(speed > 0) ||
            !isfinite(speed)) {
            snprintf(err, err_size,
                     "speed: invalid value '%s'; use a "
                     "positive factor such as 1 or 60, or max",
                     cfg->speed);
            return SL_EINVAL;
        }
    }
    if (cfg->db[0] == '\0') {
        snprintf(err, err_size, "db: must not be empty");
        return SL_EINVAL;
    }
    if (check_bus(cfg, err, err_size) != SL_OK)
        return SL_EINVAL;
    if (cfg->dlq_backoff_base_ms > cfg->dlq_backoff_cap_ms) {
        snprintf(err, err_size,
                 "dlq-backoff-base-ms: %lld is larger than "
                 "dlq-backoff-cap-ms %lld",
                 (long long)cfg->dlq_backoff_base_ms,
                 (long long)cfg->dlq_backoff_cap_ms);
        return SL_EINVAL;
    }
    if (cfg->detect_min_samples > 0 && cfg->detect_window > 0 &&
        cfg->detect_min_samples > cfg->detect_window) {
        snprintf(err, err_size,
                 "detect-min-samples: %d is larger than detect-window %d; "
                 "a model cannot wait for more readings than it keeps",
                 cfg->detect_min_samples, cfg->detect_window);
        return SL_EINVAL;
    }
    return SL_OK;
}

int sl_config_load(sl_config_t *cfg, int argc, char **argv,
                   bool *help_requested, char *err, size_t err_size)
{
    int rc = load_env(cfg, err, err_size);

    if (help_requested != NULL)
        *help_requested = false;
    for (int i = 0; rc == SL_OK && i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            if (help_requested != NULL)
                *help_requested = true;
            return SL_OK;
        }
        if (strcmp(argv[i], "--replay") == 0) {
            if (++i == argc || strncmp(argv[i], "--", 2) == 0) {
                snprintf(err, err_size, "flag --replay: missing value");
                return SL_EINVAL;
            }
        } else if (strncmp(argv[i], "--", 2) == 0) {
            rc = load_flag(cfg, argc, argv, &i, err, err_size);
            continue;
        }
        if (cfg->replay_count == SL_CONFIG_MAX_FILES) {
            snprintf(err, err_size, "replay: more than %d files",
                     SL_CONFIG_MAX_FILES);
            return SL_EINVAL;
        }
        cfg->replay[cfg->replay_count++] = argv[i];
    }
    if (rc != SL_OK)
        return rc;
    return check_choices(cfg, err, err_size);
}

void sl_config_usage(FILE *out)
{
    char name[64];

    fprintf(out, "Settings (flag, environment variable, default):\n");
    fprintf(out, "  --replay FILE\n      publish a recorded file; may be "
                 "repeated (also: files given without a flag)\n");
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const setting_t *s = &settings[i];
        env_name(s, name, sizeof(name));
        fprintf(out, "  --%s%s  %s  [%s]\n      %s\n", s->name,
                s->type == T_BOOL ? "" : " VALUE", name,
                s->default_value[0] != '\0' ? s->default_value : "none",
                s->help);
    }
}

bool sl_config_bus_is_kafka(const sl_config_t *cfg)
{
    return strcmp(cfg->bus, "kafka") == 0;
}

int sl_config_listen(const sl_config_t *cfg, char *host, size_t host_size,
                     int *port, char *err, size_t err_size)
{
    return sl_config_split_address("listen", cfg->listen, host, host_size, port,
                                   err, err_size);
}

int sl_config_split_address(const char *name, const char *address, char *host,
                            size_t host_size, int *port, char *err,
                            size_t err_size)
{
    const char *colon = strrchr(address, ':');
    char *end;
    long value;

    if (colon == NULL || colon == address ||
        (size_t)(colon - address) >= host_size) {
        snprintf(err, err_size,
                 "%s: invalid address '%s'; use "
                 "HOST:PORT such as 127.0.0.1:8000",
                 name, address);
        return SL_EINVAL;
    }
    errno = 0;
    value = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || errno != 0 || value < 0 ||
        value > 65535) {
        snprintf(err, err_size, "%s: invalid port in '%s'; use 0..65535", name,
                 address);
        return SL_EINVAL;
    }
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    /* Accept "[::1]:8000" for IPv6. */
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = '\0';
    }
    *port = (int)value;
    return SL_OK;
}
