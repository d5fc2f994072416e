/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `sluice dlq`: operator tools for the dead-letter queue. They work on the
 * database directly (--db), so they can run while `sluice run` does:
 *
 *   sluice dlq list [--status S] [--topic T] [--limit N]
 *   sluice dlq show ID
 *   sluice dlq replay ID | --status S
 *
 * replay sets rows back to pending, due now. The handler rescans the
 * store every second and publishes them to their topic.
 *
 * Without a subcommand, `sluice dlq [flags]` runs the handler itself on
 * the Kafka bus (distributed.c); `sluice run` and `sluice process`
 * include it.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/json.h"
#include "roles/roles.h"
#include "schema/schema.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#define LIST_LIMIT_DEFAULT 100
#define LIST_LIMIT_MAX 100000
#define MAX_CONFIG_ARGS 64

/* The options of a dlq subcommand; the rest go to sl_config_load. */
typedef struct dlq_args {
    const char *command;
    const char *id;     /* show, replay */
    const char *status; /* list, replay */
    const char *topic;  /* list */
    const char *limit;  /* list */
    char *config_argv[MAX_CONFIG_ARGS];
    int config_argc;
} dlq_args_t;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: sluice dlq list [--status S] [--topic T] [--limit N]\n"
            "       sluice dlq show ID\n"
            "       sluice dlq replay ID | --status S\n"
            "       sluice dlq --bus kafka --kafka-brokers HOST:PORT "
            "[--store URL]\n"
            "Common flags: --db PATH (default sluice.db), --log-level L.\n"
            "Statuses: pending, retrying, resolved, dead.\n"
            "\n"
            "Without a subcommand the dead-letter handler runs on the Kafka\n"
            "bus until SIGINT or SIGTERM. `sluice run` and `sluice process`\n"
            "run it too.\n");
}

/* Splits argv into the subcommand's own options and the settings.
 * Returns SL_OK or SL_EINVAL after printing why. */
static int parse_args(int argc, char **argv, dlq_args_t *a)
{
    memset(a, 0, sizeof(*a));
    a->command = argv[0];
    for (int i = 1; i < argc; i++) {
        const char **slot = NULL;

        if (strcmp(argv[i], "--status") == 0)
            slot = &a->status;
        else if (strcmp(argv[i], "--topic") == 0)
            slot = &a->topic;
        else if (strcmp(argv[i], "--limit") == 0)
            slot = &a->limit;
        if (slot != NULL) {
            if (i + 1 == argc) {
                fprintf(stderr, "sluice dlq: %s: missing value\n", argv[i]);
                return SL_EINVAL;
            }
            *slot = argv[++i];
        } else if (strncmp(argv[i], "--", 2) != 0 && a->id == NULL) {
            a->id = argv[i];
        } else if (a->config_argc + 2 <= MAX_CONFIG_ARGS) {
            a->config_argv[a->config_argc++] = argv[i];
            /* A setting's value follows it unless given with '='. The
             * tools take no boolean settings but --no-NAME forms. */
            if (strncmp(argv[i], "--", 2) == 0 &&
                strchr(argv[i], '=') == NULL &&
                strncmp(argv[i], "--no-", 5) != 0 && i + 1 < argc &&
                strncmp(argv[i + 1], "--", 2) != 0)
                a->config_argv[a->config_argc++] = argv[++i];
        } else {
            fprintf(stderr, "sluice dlq: too many arguments\n");
            return SL_EINVAL;
        }
    }
    return SL_OK;
}

/* Parses a positive decimal id. Returns SL_OK or SL_EINVAL. */
static int parse_id(const char *text, int64_t *out)
{
    char *end;

    errno = 0;
    *out = text != NULL ? strtoll(text, &end, 10) : 0;
    if (text == NULL || end == text || *end != '\0' || errno != 0 ||
        *out <= 0) {
        fprintf(stderr,
                "sluice dlq: invalid id '%s'; use a row id from "
                "`sluice dlq list`\n",
                text != NULL ? text : "");
        return SL_EINVAL;
    }
    return SL_OK;
}

static int parse_status(const char *text, int *out)
{
    sl_dlq_status_t status;

    if (sl_dlq_status_parse(text, &status) != SL_OK) {
        fprintf(stderr,
                "sluice dlq: invalid status '%s'; use pending, retrying, "
                "resolved or dead\n",
                text);
        return SL_EINVAL;
    }
    *out = (int)status;
    return SL_OK;
}

static void format_time(int64_t ms, char *out, size_t out_size)
{
    if (ms <= 0 || sl_time_format_iso8601(ms, out, out_size) != SL_OK)
        snprintf(out, out_size, "-");
}

static int cmd_list(sl_store_t *st, const dlq_args_t *a)
{
    sl_dlq_query_t q = {
        .status = -1, .topic = a->topic, .limit = LIST_LIMIT_DEFAULT};
    sl_dlq_entry_t *rows;
    size_t n = 0;
    char *end;

    if (a->status != NULL && parse_status(a->status, &q.status) != SL_OK)
        return 2;
    if (a->limit != NULL) {
        long long limit = strtoll(a->limit, &end, 10);
        if (end == a->limit || *end != '\0' || limit < 1 ||
            limit > LIST_LIMIT_MAX) {
            fprintf(stderr, "sluice dlq: --limit must be 1..%d\n",
                    LIST_LIMIT_MAX);
            return 2;
        }
        q.limit = (size_t)limit;
    }
    rows = calloc(q.limit, sizeof(*rows));
    if (rows == NULL || sl_store_dlq_list(st, &q, rows, q.limit, &n) != SL_OK) {
        fprintf(stderr, "sluice dlq: listing failed\n");
        free(rows);
        return 1;
    }
    /* OFFSET fits 19 digits: on the in-process bus it is a content hash. */
    printf("%-8s %-9s %-10s %7s %-18s %9s %19s %-24s %s\n", "ID", "STATUS",
           "CLASS", "RETRIES", "TOPIC", "PARTITION", "OFFSET", "LAST_FAILURE",
           "ERROR");
    for (size_t i = 0; i < n; i++) {
        const sl_dlq_entry_t *e = &rows[i];
        char last[40];

        format_time(e->last_failure_ms, last, sizeof(last));
        printf("%-8" PRId64 " %-9s %-10s %7d %-18s %9d %19" PRId64
               " %-24s %s\n",
               e->id, sl_dlq_status_name(e->status),
               sl_dlq_class_name(e->error_class), (int)e->retry_count, e->topic,
               (int)e->partition, e->offset, last, e->error);
    }
    free(rows);
    return 0;
}

static json_t *hex_json(const void *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = data;
    char *text = malloc(len * 2 + 1);
    json_t *out;

    if (text == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        text[2 * i] = digits[p[i] >> 4];
        text[2 * i + 1] = digits[p[i] & 15];
    }
    text[len * 2] = '\0';
    out = json_string(text);
    free(text);
    return out;
}

/* Creates a decoder for a built-in schema, registered in reg under
 * "<topic>-value" as `sluice run` does, so the ids match its frames. */
static sl_decoder_t *builtin_decoder(sl_registry_t *reg, const char *topic,
                                     const char *file)
{
    const char *json = sl_schema_builtin(file);
    char subject[SL_ID_MAX + 1], err[256];
    avro_schema_t schema;
    sl_decoder_t *dec;
    int32_t id;

    snprintf(subject, sizeof(subject), "%s-value", topic);
    if (json == NULL ||
        sl_registry_register(reg, subject, json, &id, err, sizeof(err)) !=
            SL_OK ||
        avro_schema_from_json_length(json, strlen(json), &schema) != 0)
        return NULL;
    dec = sl_decoder_create(reg, schema);
    avro_schema_decref(schema);
    return dec;
}

/*
 * Returns the payload decoded with the built-in schema of its topic as a
 * JSON object, or NULL when it does not decode. Readings are registered
 * first, as `sluice run` does, so schema ids agree.
 */
static json_t *decode_payload(const sl_dlq_entry_t *e)
{
    sl_registry_t *reg = sl_registry_create();
    sl_decoder_t *readings = NULL, *events = NULL;
    json_t *out = NULL;

    if (reg == NULL)
        return NULL;
    readings = builtin_decoder(reg, "sensor-readings", "sensor_reading.avsc");
    events = builtin_decoder(reg, "ecommerce-events", "ecommerce_event.avsc");
    if (readings != NULL && strcmp(e->topic, "sensor-readings") == 0) {
        sl_reading_t rec;
        if (sl_reading_decode(readings, e->payload, e->payload_len, &rec) ==
            SL_DECODE_OK)
            out = sl_reading_to_json(&rec);
    } else if (events != NULL && strcmp(e->topic, "ecommerce-events") == 0) {
        sl_event_t ev;
        if (sl_event_decode(events, e->payload, e->payload_len, &ev) ==
            SL_DECODE_OK)
            out = sl_event_to_json(&ev);
    }
    sl_decoder_destroy(readings);
    sl_decoder_destroy(events);
    sl_registry_destroy(reg);
    return out;
}

static int set_time_or_null(json_t *obj, const char *key, int64_t ms)
{
    if (ms <= 0)
        return json_object_set_new(obj, key, json_null());
    return sl_json_set_time(obj, key, ms);
}

static int cmd_show(sl_store_t *st, const dlq_args_t *a)
{
    sl_dlq_entry_t e;
    void *bytes = NULL;
    int64_t id;
    json_t *obj, *decoded;
    int rc;

    if (parse_id(a->id, &id) != SL_OK)
        return 2;
    rc = sl_store_dlq_get(st, id, &e, &bytes);
    if (rc == SL_ENOTFOUND) {
        fprintf(stderr, "sluice dlq: no dead-letter row with id %" PRId64 "\n",
                id);
        return 1;
    }
    if (rc != SL_OK) {
        fprintf(stderr, "sluice dlq: reading row %" PRId64 " failed: %s\n", id,
                sl_strerror(rc));
        return 1;
    }
    obj = json_pack("{s:I, s:s, s:i, s:I, s:s, s:s, s:i, s:s}", "id",
                    (json_int_t)e.id, "topic", e.topic, "partition",
                    (int)e.partition, "offset", (json_int_t)e.offset,
                    "error_class", sl_dlq_class_name(e.error_class), "error",
                    e.error, "retry_count", (int)e.retry_count, "status",
                    sl_dlq_status_name(e.status));
    decoded = decode_payload(&e);
    if (obj == NULL ||
        set_time_or_null(obj, "first_failure", e.first_failure_ms) ||
        set_time_or_null(obj, "last_failure", e.last_failure_ms) ||
        set_time_or_null(obj, "next_attempt", e.next_attempt_ms) ||
        json_object_set_new(obj, "key_hex",
                            e.key != NULL ? hex_json(e.key, e.key_len)
                                          : json_null()) ||
        json_object_set_new(obj, "payload_hex",
                            hex_json(e.payload, e.payload_len)) ||
        json_object_set_new(obj, "payload",
                            decoded != NULL ? decoded : json_null())) {
        fprintf(stderr, "sluice dlq: out of memory\n");
        json_decref(obj);
        free(bytes);
        return 1;
    }
    json_dumpf(obj, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("\n");
    json_decref(obj);
    free(bytes);
    return 0;
}

static int cmd_replay(sl_store_t *st, const dlq_args_t *a)
{
    int64_t id = 0;
    int status = SL_DLQ_DEAD;
    size_t changed = 0;
    int rc;

    if ((a->id == NULL) == (a->status == NULL)) {
        fprintf(stderr, "sluice dlq replay: give either a row id or "
                        "--status S\n");
        return 2;
    }
    if (a->id != NULL && parse_id(a->id, &id) != SL_OK)
        return 2;
    if (a->status != NULL && parse_status(a->status, &status) != SL_OK)
        return 2;
    if (a->status != NULL && status != SL_DLQ_DEAD &&
        status != SL_DLQ_PENDING) {
        fprintf(stderr,
                "sluice dlq replay: --status %s: only pending and "
                "dead rows can be replayed\n",
                a->status);
        return 2;
    }
    rc = sl_store_dlq_replay(st, id, (sl_dlq_status_t)status, sl_time_now_ms(),
                             &changed);
    if (rc == SL_ENOTFOUND) {
        fprintf(stderr, "sluice dlq: no dead-letter row with id %" PRId64 "\n",
                id);
        return 1;
    }
    if (rc == SL_EBUSY) {
        fprintf(stderr,
                "sluice dlq: row %" PRId64 " is retrying or resolved; only "
                "pending and dead rows can be replayed\n",
                id);
        return 1;
    }
    if (rc != SL_OK) {
        fprintf(stderr, "sluice dlq: replay failed: %s\n", sl_strerror(rc));
        return 1;
    }
    printf("scheduled for replay: %zu row(s); `sluice run` on this database "
           "retries them within a second\n",
           changed);
    return 0;
}

/* Loads the settings left after the subcommand's own options. */
static int load_config(dlq_args_t *a, sl_config_t *cfg)
{
    char err[512];
    bool help;
    sl_log_level_t level;

    if (sl_config_load(cfg, a->config_argc, a->config_argv, &help, err,
                       sizeof(err)) != SL_OK) {
        fprintf(stderr, "sluice dlq: invalid configuration: %s\n", err);
        return 2;
    }
    if (help) {
        usage(stdout);
        return 0;
    }
    if (sl_log_level_parse(cfg->log_level, &level) == SL_OK)
        sl_log_set_level(level);
    return -1;
}

/* Runs the handler with every argument taken as a setting. */
static int run_handler(int argc, char **argv)
{
    dlq_args_t a;
    sl_config_t cfg;
    int status;

    memset(&a, 0, sizeof(a));
    if (argc > MAX_CONFIG_ARGS) {
        fprintf(stderr, "sluice dlq: too many arguments\n");
        return 2;
    }
    for (int i = 0; i < argc; i++)
        a.config_argv[a.config_argc++] = argv[i];
    sl_config_init(&cfg);
    status = load_config(&a, &cfg);
    if (status < 0 && cfg.replay_count > 0) {
        fprintf(stderr,
                "sluice dlq: unexpected argument '%s'; see "
                "sluice dlq --help\n",
                cfg.replay[0]);
        status = 2;
    }
    if (status < 0)
        status = sl_role__dlq_handler(&cfg);
    sl_config_fini(&cfg);
    return status;
}

int sl_role_dlq(int argc, char **argv)
{
    sl_config_t cfg;
    sl_store_t *st;
    dlq_args_t a;
    char err[512];
    int status;

    if (argc < 1 || strncmp(argv[0], "-", 1) == 0)
        return run_handler(argc, argv);
    if (strcmp(argv[0], "list") != 0 && strcmp(argv[0], "show") != 0 &&
        strcmp(argv[0], "replay") != 0) {
        fprintf(stderr, "sluice dlq: unknown subcommand '%s'\n\n", argv[0]);
        usage(stderr);
        return 2;
    }
    if (parse_args(argc, argv, &a) != SL_OK)
        return 2;

    sl_config_init(&cfg);
    status = load_config(&a, &cfg);
    if (status >= 0) {
        sl_config_fini(&cfg);
        return status;
    }
    /* An operator command reads an existing database: a mistyped path
     * must not create an empty one and report "no dead letters". */
    if (strstr(cfg.db, "://") == NULL && access(cfg.db, R_OK) != 0) {
        fprintf(stderr, "sluice dlq: db: cannot read %s: %s\n", cfg.db,
                strerror(errno));
        sl_config_fini(&cfg);
        return 2;
    }
    st = sl_store_open(cfg.db, err, sizeof(err));
    if (st == NULL || sl_store_migrate(st, err, sizeof(err)) != SL_OK) {
        fprintf(stderr, "sluice dlq: cannot open the store %s: %s\n", cfg.db,
                err);
        sl_store_close(st);
        sl_config_fini(&cfg);
        return 1;
    }
    if (strcmp(a.command, "list") == 0)
        status = cmd_list(st, &a);
    else if (strcmp(a.command, "show") == 0)
        status = cmd_show(st, &a);
    else
        status = cmd_replay(st, &a);
    sl_store_close(st);
    sl_config_fini(&cfg);
    return status;
}
