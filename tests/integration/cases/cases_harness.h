/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared setup of the failure-case tests that run the real processor stage
 * (sl_processor_start) on a real bus and store. Readings come from the CSV
 * fixtures under tests/fixtures/cases and are published to chosen
 * partitions as Confluent frames of the built-in schemas. Helpers wait for
 * the store, read dead-letter records back and check committed offsets.
 * Failed checks fail the running cmocka test.
 */
#ifndef SLUICE_TESTS_CASES_HARNESS_H
#define SLUICE_TESTS_CASES_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"
#include "kafka_harness.h"
#include "pipeline/dlq.h"
#include "pipeline/pipeline.h"
#include "schema/schema.h"
#include "store/store.h"

/* Maximum wait for the pipeline to reach an expected state. Generous,
 * because sanitizers and other tests share the machine's cores. */
#define CH_WAIT_MS 60000

/* The built-in schemas in one registry, and encoders for them. */
typedef struct ch_codec {
    sl_registry_t *registry;
    sl_encoder_t *reading_encoder;
    sl_encoder_t *event_encoder;
} ch_codec_t;

/* A dead-letter record copied out of the consumer's borrowed memory. */
typedef struct ch_dlq_record {
    sl_dlq_entry_t entry;    /* key and payload are NULL: see the copies */
    char key[SL_ID_MAX + 1]; /* the key's first bytes */
    size_t key_len;
    size_t value_len;
    unsigned char value_head[64]; /* first bytes of the value */
    char original_size[24];       /* SL_DLQ_HDR_ORIGINAL_SIZE, or "" */
    char original_sha256[65];     /* SL_DLQ_HDR_SHA256, or "" */
} ch_dlq_record_t;

void ch_codec_init(ch_codec_t *codec);
void ch_codec_fini(ch_codec_t *codec);

/* What most tests set up: an SQLite store in a temporary folder and the
 * codec of the built-in schemas. */
typedef struct ch_env {
    char location[256];
    sl_store_t *st; /* the test's own handle, migrated */
    ch_codec_t codec;
} ch_env_t;

/** Creates the folder, opens and migrates the store, and the codec. */
void ch_env_open(ch_env_t *env);

/** Closes the store, removes its files and frees the codec. */
void ch_env_close(ch_env_t *env);

/** Creates an in-process bus with partitions partitions per topic. */
sl_bus_t *ch_memory_bus(int32_t partitions);

/** Starts a one-broker mock cluster with sensor-readings,
 * ecommerce-events and dlq-messages of one partition each. */
void ch_kafka_cluster_start(kh_cluster_t *cluster);

/** Returns a valid reading of sensor_id at ts_ms with value. */
sl_reading_t ch_reading(const char *sensor_id, sl_sensor_type_t type,
                        int64_t ts_ms, double value);

/**
 * Reads the readings of a fixture CSV, tests/fixtures/cases/CASE/FILE,
 * whose header names at least sensor_id, sensor_type, ts_ms and value.
 * Returns the number of rows read into out (at most max).
 */
size_t ch_load_readings(const char *case_id, const char *file,
                        sl_reading_t *out, size_t max);

/** Encodes rec as a frame. OUT: frame (frame_size bytes), *len. */
void ch_encode_reading(ch_codec_t *codec, const sl_reading_t *rec,
                       uint8_t *frame, size_t frame_size, size_t *len);

/**
 * Publishes rec to sensor-readings, keyed by its sensor_id, to partition
 * (< 0: by key). Returns the offset the bus gave it.
 */
int64_t ch_publish_reading(sl_bus_t *bus, ch_codec_t *codec,
                           const sl_reading_t *rec, int32_t partition);

/**
 * Loads exactly count readings from a case's fixture file and publishes
 * them to partition 0, checking each lands at its row number as offset.
 */
void ch_publish_fixture(sl_bus_t *bus, ch_codec_t *codec, const char *case_id,
                        const char *file, size_t count);

/** Creates an SQLite file path in a fresh temporary folder. OUT: path. */
void ch_sqlite_location(char *path, size_t path_size);

/** Removes the SQLite file of path, its WAL files and the folder. */
void ch_sqlite_remove(const char *path);

/** Opens the store at location and migrates it; fails the test on error. */
sl_store_t *ch_store_open(const char *location);

/** Fills cfg for the processor of the tests: group "sluice-processor",
 * 1-minute windows, 5 minutes of lateness. */
void ch_processor_config(sl_processor_config_t *cfg, sl_bus_t *bus,
                         ch_codec_t *codec, const char *location);

/** Starts the processor; fails the test with the reason on error. */
sl_processor_t *ch_processor_start(const sl_processor_config_t *cfg);

/** Starts the dead-letter handler, which records dlq-messages in the
 * dlq_errors table of the store at location. */
sl_dlq_handler_t *ch_dlq_handler_start(sl_bus_t *bus, const char *location);

/** Stops handler (may be NULL) from retrying, closes the bus, stops the
 * processor, which writes its open windows, and the handler, and
 * destroys the bus. */
void ch_stages_stop(sl_bus_t *bus, sl_processor_t *proc,
                    sl_dlq_handler_t *handler);

/** Waits up to CH_WAIT_MS until the store contains want readings in all.
 * Returns the last count seen. */
int64_t ch_wait_reading_count(sl_store_t *st, int64_t want);

/** Waits up to CH_WAIT_MS until the processor has consumed want records
 * and its group has committed all of them. Returns the last lag seen. */
int64_t ch_wait_committed(sl_processor_t *proc, uint64_t want_consumed);

/**
 * Reads want records of dlq-messages in consumer group group, waiting up
 * to CH_WAIT_MS, and commits them. OUT: out[0..return value).
 */
size_t ch_read_dlq(sl_bus_t *bus, const char *group, ch_dlq_record_t *out,
                   size_t want);

/**
 * Returns the committed offset of topic/partition for group, read by a
 * consumer of that group that polls nothing.
 */
int64_t ch_committed(sl_bus_t *bus, const char *group, const char *topic,
                     int32_t partition);

/** Returns how many records of topic group has not committed, read by a
 * consumer of that group that polls nothing. */
int64_t ch_group_lag(sl_bus_t *bus, const char *group, const char *topic);

/** Fetches the aggregate of sensor_id's window that starts at start_ms.
 * Returns false when the store has none. */
bool ch_aggregate(sl_store_t *st, const char *sensor_id, int64_t start_ms,
                  sl_aggregate_t *out);

/** Waits up to CH_WAIT_MS until ch_aggregate finds the window with count
 * want_count; fails the test otherwise. */
void ch_wait_aggregate(sl_store_t *st, const char *sensor_id, int64_t start_ms,
                       int64_t want_count, sl_aggregate_t *out);

/** Writes the SHA-256 of data as 64 lowercase hex digits. */
void ch_sha256_hex(const void *data, size_t len, char out[65]);

/** Sleeps ms milliseconds. */
void ch_sleep_ms(int ms);

#endif
