/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Set-up that every role shares: signal handling, store migration, the bus
 * chosen by the bus setting, and a schema registry with the built-in
 * schemas registered. `sluice run` and the distributed roles call these,
 * so each idea has one implementation.
 */
#include "roles/setup.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/publish.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"

/* How long one request to a remote schema registry may take. */
#define REGISTRY_TIMEOUT_MS 5000

static volatile sig_atomic_t signalled;

static void on_signal(int sig)
{
    (void)sig;
    signalled = 1;
}

void sl_role__install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool sl_role__signalled(void)
{
    return signalled != 0;
}

int sl_role__prepare_store(const char *location)
{
    char err[512];
    sl_store_t *st = sl_store_open(location, err, sizeof(err));

    if (st == NULL) {
        sl_log_error("store", "cannot open the store %s: %s", location, err);
        return SL_EIO;
    }
    int rc = sl_store_migrate(st, err, sizeof(err));
    if (rc != SL_OK)
        sl_log_error("store", "migration of %s failed: %s", location, err);
    sl_store_close(st);
    return rc;
}

int sl_role__require_kafka(const sl_config_t *cfg, const char *role)
{
    if (sl_config_bus_is_kafka(cfg))
        return 0;
    fprintf(stderr,
            "sluice %s: bus: this role runs in distributed mode and needs "
            "the Kafka bus; add --bus kafka --kafka-brokers HOST:PORT. The "
            "in-process bus (bus=memory) exists only inside `sluice run`\n",
            role);
    return 2;
}

/* Maximum number of kafka-properties entries. */
#define KAFKA_PROPERTIES_MAX 64

/* Creates the Kafka bus with the kafka-properties setting split at its
 * commas; librdkafka rejects an unknown or invalid property by name. */
static sl_bus_t *kafka_bus_create(const sl_config_t *cfg, const char *client_id,
                                  char *err, size_t err_size)
{
    sl_bus_kafka_config_t kafka;
    const char *props[KAFKA_PROPERTIES_MAX];
    char *copy = strdup(cfg->kafka_properties);
    char *save = NULL;
    size_t n = 0;
    sl_bus_t *bus = NULL;

    if (copy == NULL) {
        snprintf(err, err_size, "out of memory reading kafka-properties");
        return NULL;
    }
    for (char *p = strtok_r(copy, ",", &save); p != NULL;
         p = strtok_r(NULL, ",", &save)) {
        if (n == KAFKA_PROPERTIES_MAX) {
            snprintf(err, err_size, "kafka-properties: more than %d entries",
                     KAFKA_PROPERTIES_MAX);
            goto out;
        }
        props[n++] = p;
    }
    sl_bus_kafka_config_init(&kafka);
    kafka.brokers = cfg->kafka_brokers;
    kafka.client_id = client_id;
    kafka.partitions = cfg->bus_partitions;
    kafka.properties = props;
    kafka.property_count = n;
    bus = sl_bus_kafka_create(&kafka, err, err_size);

out:
    free(copy);
    return bus;
}

sl_bus_t *sl_role__bus_create(const sl_config_t *cfg, const char *client_id,
                              char *err, size_t err_size)
{
    if (sl_config_bus_is_kafka(cfg))
        return kafka_bus_create(cfg, client_id, err, err_size);

    sl_bus_memory_config_t memory;
    sl_bus_t *bus;

    sl_bus_memory_config_init(&memory);
    memory.partitions = cfg->bus_partitions;
    memory.partition_capacity = (size_t)cfg->bus_capacity;
    bus = sl_bus_memory_create(&memory);
    if (bus == NULL)
        snprintf(err, err_size, "out of memory creating the in-process bus");
    return bus;
}

/* Registers the built-in schema file_name under subject in the remote
 * registry and adds it locally under the id the remote assigned, so a
 * publisher encodes with the id that every other process resolves. */
static int mirror_builtin(sl_registry_t *reg, sl_registry_client_t *client,
                          const char *subject, const char *file_name, char *err,
                          size_t err_size)
{
    const char *json = sl_schema_builtin(file_name);
    int32_t id = -1;
    int rc;

    if (json == NULL) {
        snprintf(err, err_size, "built-in schema %s not found", file_name);
        return SL_ENOTFOUND;
    }
    rc = sl_registry_client_register(client, subject, json, &id, err, err_size);
    if (rc != SL_OK)
        return rc;
    rc = sl_registry_add(reg, id, subject, json, err, err_size);
    if (rc == SL_OK)
        sl_log_info("registry", "schema registered subject=%s id=%d url=%s",
                    subject, (int)id, sl_registry_client_url(client));
    return rc;
}

/* Registers the built-in schemas with the remote registry at url and
 * backs reg with it. */
static int attach_remote(sl_registry_t *reg, const char *url, char *err,
                         size_t err_size)
{
    sl_registry_client_t *client =
        sl_registry_client_create(url, REGISTRY_TIMEOUT_MS, err, err_size);
    int rc;

    if (client == NULL)
        return SL_EINVAL;
    rc = mirror_builtin(reg, client, "sensor-readings-value",
                        "sensor_reading.avsc", err, err_size);
    if (rc == SL_OK)
        rc = mirror_builtin(reg, client, "ecommerce-events-value",
                            "ecommerce_event.avsc", err, err_size);
    sl_registry_client_destroy(client);
    if (rc != SL_OK)
        return rc;
    return sl_registry_set_remote(reg, url, REGISTRY_TIMEOUT_MS, err, err_size);
}

sl_registry_t *sl_role__registry_create(const sl_config_t *cfg, sl_bus_t *bus,
                                        char *err, size_t err_size)
{
    sl_registry_t *reg = sl_registry_create();
    sl_publisher_t *registrar;

    if (reg == NULL) {
        snprintf(err, err_size, "out of memory creating the schema registry");
        return NULL;
    }
    if (cfg->registry_url[0] != '\0' &&
        attach_remote(reg, cfg->registry_url, err, err_size) != SL_OK) {
        sl_registry_destroy(reg);
        return NULL;
    }

    /* A publisher registers the built-in schemas: after attach_remote they
     * keep the remote ids. Without a remote registry every process
     * registers the same schemas in the same order, so the ids agree. */
    registrar = sl_publisher_create(bus, reg, 0);
    if (registrar == NULL) {
        snprintf(err, err_size, "registering the built-in schemas failed");
        sl_registry_destroy(reg);
        return NULL;
    }
    sl_log_info("registry",
                "schemas in use sensor-readings-value=%d "
                "ecommerce-events-value=%d source=%s",
                (int)sl_publisher_reading_schema_id(registrar),
                (int)sl_publisher_event_schema_id(registrar),
                cfg->registry_url[0] != '\0' ? cfg->registry_url
                                             : "in-process");
    sl_publisher_destroy(registrar);
    return reg;
}

void sl_role__processor_config(const sl_config_t *cfg, sl_bus_t *bus,
                               sl_registry_t *registry,
                               sl_processor_config_t *proc)
{
    sl_processor_config_init(proc);
    proc->bus = bus;
    proc->registry = registry;
    proc->store_location = cfg->db;
    proc->batch_size = cfg->batch_size;
    proc->poll_timeout_ms = cfg->batch_timeout_ms;
    proc->window_ms = (int64_t)cfg->window_seconds * 1000;
    proc->lateness_ms = (int64_t)cfg->allowed_lateness_seconds * 1000;
    proc->max_payload_bytes = (size_t)cfg->max_payload_bytes;
}

void sl_role__dlq_handler_config(const sl_config_t *cfg, sl_bus_t *bus,
                                 sl_dlq_handler_config_t *dlq)
{
    sl_dlq_handler_config_init(dlq);
    dlq->bus = bus;
    dlq->store_location = cfg->db;
    dlq->policy.base_ms = cfg->dlq_backoff_base_ms;
    dlq->policy.cap_ms = cfg->dlq_backoff_cap_ms;
    dlq->policy.jitter = cfg->dlq_jitter;
    dlq->policy.max_retries = cfg->dlq_max_retries;
}
