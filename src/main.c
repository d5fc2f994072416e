/* SPDX-License-Identifier: Apache-2.0 */
/* Command dispatch: `sluice ROLE [flags]`. */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "roles/roles.h"
#include "util/err.h"
#include "util/log.h"

typedef struct role {
    const char *name;
    int (*run)(const sl_config_t *cfg);
    const char *help;
} role_t;

static const role_t roles[] = {
    {"run", sl_role_run,
     "standalone pipeline: generators, replay, processor, API, one process"},
    {"migrate", sl_role_migrate, "create or upgrade the database schema"},
    {"produce", sl_role_produce, "synthetic generators publishing to Kafka"},
    {"replay", sl_role_replay, "publish recorded FILEs to Kafka, then exit"},
    {"process", sl_role_process,
     "processor and dead-letter handler: Kafka into the store"},
    {"detect", sl_role_detect, "anomaly detector on Kafka"},
    {"api", sl_role_api, "REST and WebSocket API over the store"},
    {"registry", sl_role_registry,
     "built-in schema registry on --registry-listen"},
};

/* `sluice dlq SUBCOMMAND` parses its own arguments (roles/dlq.c). */
#define DLQ_HELP                                                               \
    "dead-letter handler on Kafka; or list, show ID, replay ID | --status S"

static void usage(FILE *out)
{
    fprintf(out, "Usage: sluice ROLE [flags] [FILE...]\n\nRoles:\n");
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        fprintf(out, "  %-10s %s\n", roles[i].name, roles[i].help);
    fprintf(out, "  %-10s %s\n", "dlq", DLQ_HELP);
    fprintf(out, "  %-10s %s\n", "bench",
            "measure the pipeline against the raw store; bench --help");
    fprintf(out, "\n");
    sl_config_usage(out);
}

int main(int argc, char **argv)
{
    const role_t *role = NULL;
    sl_config_t cfg;
    sl_log_level_t level;
    bool help;
    char err[512];
    int status;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "dlq") == 0)
        return sl_role_dlq(argc - 2, argv + 2);
    if (strcmp(argv[1], "bench") == 0)
        return sl_role_bench(argc - 2, argv + 2);
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (strcmp(argv[1], roles[i].name) == 0)
            role = &roles[i];
    }
    if (role == NULL) {
        fprintf(stderr, "sluice: unknown role '%s'; see sluice --help\n",
                argv[1]);
        return 2;
    }

    sl_config_init(&cfg);
    if (sl_config_load(&cfg, argc - 2, argv + 2, &help, err, sizeof(err)) !=
        SL_OK) {
        fprintf(stderr, "sluice: invalid configuration: %s\n", err);
        sl_config_fini(&cfg);
        return 2;
    }
    if (help) {
        usage(stdout);
        sl_config_fini(&cfg);
        return 0;
    }
    if (sl_log_level_parse(cfg.log_level, &level) == SL_OK)
        sl_log_set_level(level);
    status = role->run(&cfg);
    sl_config_fini(&cfg);
    return status;
}
