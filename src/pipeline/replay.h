/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replay of recorded data: parsers for the supported file formats and a
 * driver that publishes their records at the recorded pace, N times
 * faster, or as fast as the bus takes them.
 *
 * Formats:
 *  - nab:          "timestamp,value" CSV of the Numenta Anomaly Benchmark;
 *                  sensor id, type, unit and location come from options.
 *  - sensor-csv:   CSV whose header names sensor_reading.avsc fields
 *                  (sensor_id, sensor_type, value, timestamp, location,
 *                  battery_level, signal_strength, unit, anomaly).
 *                  sensor_id, timestamp and value are required; empty
 *                  or absent others default as for nab (battery 100,
 *                  signal -50 dBm, no unit).
 *  - ndjson:       one JSON object per line, a reading or a commerce event
 *                  (an object with event_id is an event).
 *  - commerce-csv: event_time,event_type,product_id,category_code,brand,
 *                  price,user_id,user_session (and optional category_id),
 *                  as the REES46 e-commerce data set.
 *  - frames:       "topic<TAB>key-hex<TAB>value-hex" per line, published
 *                  byte for byte.
 * Timestamps are ISO-8601 (zone optional, UTC when absent) or epoch ms.
 */
#ifndef SLUICE_PIPELINE_REPLAY_H
#define SLUICE_PIPELINE_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/record.h"
#include "pipeline/publish.h"

/* Longest line kept, in bytes: a frame line holds a value of up to
 * SL_FRAME_MAX_BYTES as hex, twice its size, plus topic and key. A longer
 * line is reported as malformed and skipped without being held in memory. */
#define SL_REPLAY_MAX_LINE (4 * 1024 * 1024)

typedef enum sl_replay_format {
    SL_REPLAY_AUTO = 0, /* from the extension and the header line */
    SL_REPLAY_NAB,
    SL_REPLAY_SENSOR_CSV,
    SL_REPLAY_NDJSON,
    SL_REPLAY_COMMERCE_CSV,
    SL_REPLAY_FRAMES,
} sl_replay_format_t;

typedef struct sl_replay_options {
    sl_replay_format_t format;
    const char *sensor_id;        /* nab: default: file name without .csv */
    sl_sensor_type_t sensor_type; /* nab: default other */
    const char *unit;             /* nab: NULL for none */
    const char *location;         /* nab: default "replay" */
    double speed;     /* 1 = recorded pace; <= 0 = as fast as possible */
    bool rebase_time; /* shift so the last record is stamped now */
} sl_replay_options_t;

/** Fills opt with: auto format, sensor type other, speed 0 (max). */
void sl_replay_options_init(sl_replay_options_t *opt);

/** Parses "nab", "sensor-csv", "ndjson", "commerce-csv", "frames", "auto". */
int sl_replay_format_parse(const char *name, sl_replay_format_t *out);

typedef enum sl_replay_kind {
    SL_REPLAY_ITEM_READING,
    SL_REPLAY_ITEM_EVENT,
    SL_REPLAY_ITEM_FRAME,
} sl_replay_kind_t;

/* One parsed record. Frame bytes are borrowed until the next call. */
typedef struct sl_replay_item {
    sl_replay_kind_t kind;
    size_t line;          /* 1-based line number in the file */
    int64_t timestamp_ms; /* event time used for pacing; frames: 0 */
    sl_reading_t reading;
    sl_event_t event;
    char topic[SL_ID_MAX + 1];
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
} sl_replay_item_t;

typedef struct sl_replay_reader sl_replay_reader_t;

/**
 * Opens a file ("-" for stdin, which cannot be used with rebase_time).
 * Detects the format when opt->format is AUTO. With rebase_time the file
 * is read once ahead to find its last timestamp.
 * Returns NULL with the reason in err.
 */
sl_replay_reader_t *sl_replay_open(const char *path,
                                   const sl_replay_options_t *opt, char *err,
                                   size_t err_size);

/**
 * Reads the next record. Returns 1 with *item filled, 0 at end of file, or
 * SL_EINVAL for a malformed line, with "line N: reason" in err; the caller
 * counts it and calls again to go on with the next line. SL_EIO on a read
 * error.
 */
int sl_replay_next(sl_replay_reader_t *rd, sl_replay_item_t *item, char *err,
                   size_t err_size);

/** Returns the detected or chosen format. */
sl_replay_format_t sl_replay_reader_format(const sl_replay_reader_t *rd);

void sl_replay_close(sl_replay_reader_t *rd);

/* Counts of one replay run. */
typedef struct sl_replay_stats {
    uint64_t published;     /* accepted by the bus */
    uint64_t malformed;     /* lines that did not parse */
    uint64_t failed;        /* records the bus or encoder refused */
    uint64_t dead_lettered; /* too large for the bus; a digest went to
                               dlq-messages (see sl_publish_frame) */
} sl_replay_stats_t;

/**
 * Publishes every record of path through pub, paced by opt->speed.
 * Malformed lines are logged with their line number and counted; the
 * replay goes on. Stops early when *stop becomes nonzero (may be NULL).
 * A batching publisher is flushed before each pacing wait and at the end,
 * so every record is settled and counted on return; the replay uses the
 * publisher's report function and tag meanwhile and clears them after.
 * OUT: *stats (may be NULL). Returns SL_OK, the open error, SL_ENOMEM, or
 * SL_EIO when reading fails part way (stats then count what was done).
 */
int sl_replay_run(const char *path, const sl_replay_options_t *opt,
                  sl_publisher_t *pub, volatile int *stop,
                  sl_replay_stats_t *stats);

#endif
