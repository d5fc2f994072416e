/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WebSocket hub: one bus consumer that feeds the live streams of the
 * API, /ws/sensors (sensor-readings) and /ws/alerts (system-alerts). Each
 * record is decoded and validated. It is rendered to one WebSocket frame
 * only when some client's filter matches it, and the frame is shared by
 * every such client. Each
 * client has a fixed-size queue of frames. When the queue is full the
 * oldest frame goes, and the client is told how many it lost. A client
 * that keeps losing frames for longer than a limit is closed. The roles
 * start the hub and hand it to the API in sl_api_config_t.
 */
#ifndef SLUICE_API_HUB_H
#define SLUICE_API_HUB_H

#include <stdbool.h>
#include <stddef.h>

#include "bus/bus.h"
#include "schema/schema.h"

typedef struct sl_ws_hub sl_ws_hub_t;

/* Defaults of sl_ws_hub_config_t. */
#define SL_WS_DEFAULT_MAX_CLIENTS 1024    /* per hub, both streams */
#define SL_WS_DEFAULT_QUEUE_MESSAGES 1024 /* frames queued per client */
#define SL_WS_DEFAULT_STALL_MS 10000      /* losing frames this long: close */

typedef struct sl_ws_hub_config {
    sl_bus_t *bus;           /* borrowed; must outlive the hub */
    sl_registry_t *registry; /* borrowed; resolves writer schema ids */
    /* Consumer group of this hub; NULL (the default) names it
     * sluice-api-<pid>. It must be the hub's own: the hub reads from the
     * group's position and skips what the bus accepted before the hub
     * started. */
    const char *group;
    /* Commit offsets as records are fanned out. The in-process bus needs
     * this, because it frees a record only when every group has committed
     * past it. On Kafka, a per-process group's commits would pile up. */
    bool commit_offsets;
    int max_clients;    /* connections over it are closed with 1013 */
    int queue_messages; /* frames per client queue, at least 16 */
    int stall_ms;       /* a client losing frames this long is closed */
} sl_ws_hub_config_t;

/** Fills cfg with the defaults and no bus. */
void sl_ws_hub_config_init(sl_ws_hub_config_t *cfg);

/**
 * Joins the consumer group and starts the consumer thread.
 * Returns NULL with the reason in err when an argument is invalid, the
 * group cannot be joined or a thread cannot start.
 */
sl_ws_hub_t *sl_ws_hub_start(const sl_ws_hub_config_t *cfg, char *err,
                             size_t err_size);

/**
 * Stops the consumer thread and frees the hub. The API using it must be
 * stopped first, and the bus closed or still open. Accepts NULL.
 */
void sl_ws_hub_stop(sl_ws_hub_t *hub);

#endif
