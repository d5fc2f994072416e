/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tumbling event-time windows per sensor. Each sensor has its own
 * watermark, its largest event time minus the allowed lateness; a window
 * closes when the watermark passes its end. Per-sensor watermarks let a
 * replay of old recordings run beside live sensors without either making
 * the other's readings late.
 *
 * A window is normally aggregated in memory. It is instead marked for
 * recomputation from the stored rows when memory cannot be exact:
 *  - a reading arrives after its window closed (late);
 *  - a reading was already stored (a redelivery, whose first delivery may
 *    have been counted before a restart);
 *  - the window is the first a sensor has after start-up (rows stored
 *    before a restart);
 *  - the sensor's partition was consumed elsewhere meanwhile
 *    (sl_windows_resync_partition);
 *  - a quiet sensor's windows are closed for idleness, because its
 *    partition may now belong to another member of the consumer group.
 *
 * Late readings thus correct the emitted window instead of being lost: the
 * consumer of aggregated_metrics sees an update of the same (sensor_id,
 * window_start) row.
 *
 * Not thread-safe: owned by the processor thread.
 */
#ifndef SLUICE_PIPELINE_WINDOW_H
#define SLUICE_PIPELINE_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/record.h"
#include "store/store.h"

typedef struct sl_windows sl_windows_t;

/* What a flush hands to the store. Arrays are owned by sl_windows_t and
 * valid until the next sl_windows_add or sl_windows_sweep. */
typedef struct sl_window_output {
    sl_aggregate_t *aggregates;
    size_t aggregate_count;
    sl_window_key_t *recompute;
    size_t recompute_count;
} sl_window_output_t;

/**
 * Creates the window state. window_ms > 0; lateness_ms >= 0.
 * Returns NULL on OOM.
 */
sl_windows_t *sl_windows_create(int64_t window_ms, int64_t lateness_ms);

void sl_windows_destroy(sl_windows_t *win);

/**
 * Adds a stored reading. already_stored is true when the store reported
 * the row as a duplicate. Returns true when the reading was late (its
 * window had closed), false otherwise. Returns SL_ENOMEM as a negative
 * value when the state cannot grow, and SL_EINVAL, adding nothing, for an
 * event time so close to the int64 limits that its window's end or the
 * sensor's watermark would overflow.
 */
int sl_windows_add(sl_windows_t *win, const sl_reading_t *rec,
                   bool already_stored);

/**
 * Adds a stored reading like sl_windows_add, noting that it came from
 * partition of sensor-readings, so that sl_windows_resync_partition finds
 * its sensor.
 */
int sl_windows_add_from(sl_windows_t *win, const sl_reading_t *rec,
                        bool already_stored, int32_t partition);

/**
 * Marks every open window of the sensors whose last reading came from
 * partition for recomputation, and the windows up to that of each such
 * sensor's next reading as well. Call it when records of the partition
 * were processed by another member meanwhile (a rebalance moved it away
 * and back), because memory misses their rows. Returns the number of
 * sensors affected.
 */
size_t sl_windows_resync_partition(sl_windows_t *win, int32_t partition);

/**
 * Closes the windows of sensors that received nothing for idle_ms of
 * processing time (now_mono_ms from sl_time_mono_ms), and frees the state
 * of sensors with no open window; windows closed this way are recomputed
 * from the store. idle_ms < 0 closes every window with what memory holds,
 * as at shutdown.
 */
void sl_windows_sweep(sl_windows_t *win, int64_t now_mono_ms, int64_t idle_ms);

/**
 * Moves the closed windows out. OUT: *out. The caller writes them in one
 * store transaction; the arrays are reused by the next call.
 */
void sl_windows_take(sl_windows_t *win, sl_window_output_t *out);

/** Returns the number of sensors with state. */
size_t sl_windows_sensor_count(const sl_windows_t *win);

#endif
