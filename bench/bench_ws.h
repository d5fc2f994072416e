/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WebSocket side of `sluice bench`: the real API server and its hub
 * in this process, on 127.0.0.1 with a free port, and one WebSocket client
 * on a thread of its own that follows a few sensors on /ws/sensors over
 * loopback. The client times each reading from its event time (the bench
 * stamps readings with their creation time) to the moment it reads the
 * message from its socket.
 *
 * Also the latency histogram that `sluice bench` uses for both of its
 * latency figures.
 */
#ifndef SLUICE_BENCH_BENCH_WS_H
#define SLUICE_BENCH_BENCH_WS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "api/hub.h"
#include "bus/bus.h"
#include "model/record.h"
#include "schema/schema.h"

/* Latencies longer than this count in the last bucket. */
#define SL_BENCH_LATENCY_MAX_MS 60000
/* sensor_id values of one WebSocket filter. */
#define SL_BENCH_WS_MAX_SENSORS 32
#define SL_BENCH_WS_ID_MAX (SL_ID_MAX + 1)

/* Latencies in whole milliseconds. */
typedef struct sl_bench_hist {
    uint64_t count;
    int64_t max_ms;
    uint64_t buckets[SL_BENCH_LATENCY_MAX_MS + 1];
} sl_bench_hist_t;

/** Counts one latency; a negative one (clocks) counts as 0. */
void sl_bench_hist_add(sl_bench_hist_t *h, int64_t ms);

/** Returns the latency in ms at quantile q (0..1), 0 when empty. */
int64_t sl_bench_hist_quantile(const sl_bench_hist_t *h, double q);

/* What the client received since the last reset. */
typedef struct sl_bench_ws_stats {
    uint64_t received; /* sensor_reading messages */
    uint64_t dropped;  /* the counts of the server's "dropped" messages */
    uint64_t unparsed; /* readings whose timestamp did not parse */
    int failed;        /* SL_OK, or why the client stopped reading */
    sl_bench_hist_t lat;
} sl_bench_ws_stats_t;

/* One API server, its hub and one client. Fill the settings, zero the
 * rest. */
typedef struct sl_bench_ws {
    /* Settings. */
    sl_bus_t *bus; /* the hub's consumer reads it; borrowed */
    sl_registry_t *registry;
    bool commit_offsets;        /* true on the in-process bus */
    const char *store_location; /* the API opens its own store handle */
    size_t sensor_count;        /* 1..SL_BENCH_WS_MAX_SENSORS */
    char sensor_ids[SL_BENCH_WS_MAX_SENSORS][SL_BENCH_WS_ID_MAX];
    /* Parts. */
    sl_ws_hub_t *hub;
    sl_api_t *api;
    int fd;
    unsigned char *rx; /* bytes read but not yet parsed */
    size_t rx_len;
    pthread_t thread;
    bool thread_started;
    atomic_bool stopping;
    atomic_bool connected; /* the server's "connected" message arrived */
    pthread_mutex_t lock;  /* guards stats and since_ms */
    bool lock_ready;
    sl_bench_ws_stats_t stats;
    int64_t since_ms; /* readings created earlier are not counted */
} sl_bench_ws_t;

/**
 * Starts the hub and the API, connects the client with a sensor_id filter
 * of the configured sensors, waits for its "connected" message and starts
 * the client's thread. Returns 0, or -1 after printing why.
 */
int sl_bench_ws_start(sl_bench_ws_t *w);

/**
 * Waits until the client has received `expected` messages since the last
 * reset, counting those the server reported dropped, or until nothing
 * arrived for idle_ms. Returns true when all arrived.
 */
bool sl_bench_ws_wait(sl_bench_ws_t *w, uint64_t expected, int idle_ms);

/** Clears the counts and the latencies. From now on, readings created
 * before this call are not counted, so that late messages of a warm-up
 * cannot enter the next measurement. */
void sl_bench_ws_reset(sl_bench_ws_t *w);

/** Copies the counts and the latencies. OUT: *out. */
void sl_bench_ws_results(sl_bench_ws_t *w, sl_bench_ws_stats_t *out);

/**
 * Sends a close frame, waits briefly for the server's, then stops the
 * client, the API and the hub. The bus must still exist; closing it
 * first is allowed. Accepts a set-up that failed half way.
 */
void sl_bench_ws_stop(sl_bench_ws_t *w);

#endif
