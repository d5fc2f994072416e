/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SQL of the PostgreSQL store's prepared statements, indexed by enum
 * sl_pg_stmt_id. Parameters whose type PostgreSQL cannot infer from a
 * column carry a cast.
 *
 * Reading statements start with the ten columns of sl_pg__param_reading:
 * $1 timestamp_ms, $2 sensor_id, $3 sensor_type, $4 value, $5 location,
 * $6 anomaly, $7 battery_level, $8 signal_strength, $9 unit,
 * $10 anomaly_score. The batch writer adds $11 write time and
 * $12 value_bits.
 *
 * The bounds '-Infinity' < value < 'Infinity' skip NULL, NaN (which
 * PostgreSQL sorts above every number) and infinite values.
 */
#include "store/store_pg_int.h"

#define READING_COLUMNS                                                        \
    "timestamp_ms, sensor_id, sensor_type, value, location, anomaly,"          \
    " battery_level, signal_strength, unit, anomaly_score"

/* Columns of a dead-letter row: key and payload lengths, not bytes. */
#define DLQ_COLUMNS                                                            \
    "id, source_topic, source_partition, source_offset,"                       \
    " coalesce(octet_length(key), 0), coalesce(octet_length(payload), 0),"     \
    " error_class, error, retry_count, status, first_failure_ms,"              \
    " last_failure_ms, coalesce(next_attempt_ms, 0), created_at_ms,"           \
    " updated_at_ms"

/* DLQ_COLUMNS followed by key and payload (columns 15 and 16). */
#define DLQ_COLUMNS_BYTES DLQ_COLUMNS ", key, payload"

const char *const sl_pg__stmt_sql[SL_PG_STMT_COUNT] = {
    /* A row the detector wrote first (ingested_at_ms 0) is claimed: the
     * update sets the write time and counts it as inserted. */
    [SL_PG_INSERT_READING] =
        "INSERT INTO sensor_readings (" READING_COLUMNS
        ", ingested_at_ms, value_bits)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        " ON CONFLICT (timestamp_ms, sensor_id, value_bits) DO UPDATE SET"
        " ingested_at_ms = excluded.ingested_at_ms"
        " WHERE sensor_readings.ingested_at_ms = 0",
    /* Inserts the staged batch and returns the batch positions (idx) of
     * the rows it inserted or claimed. A key staged twice (a redelivery
     * inside one batch) is inserted once, from its first position. */
    [SL_PG_INSERT_READINGS_STAGED] =
        "WITH src AS (SELECT DISTINCT ON (timestamp_ms, sensor_id,"
        " value_bits) * FROM sl_stage_readings"
        " ORDER BY timestamp_ms, sensor_id, value_bits, idx),"
        " ins AS (INSERT INTO sensor_readings (" READING_COLUMNS
        ", ingested_at_ms, value_bits)"
        " SELECT " READING_COLUMNS ", $1::bigint, value_bits FROM src"
        " ON CONFLICT (timestamp_ms, sensor_id, value_bits) DO UPDATE SET"
        " ingested_at_ms = excluded.ingested_at_ms"
        " WHERE sensor_readings.ingested_at_ms = 0"
        " RETURNING timestamp_ms, sensor_id, value_bits)"
        " SELECT src.idx FROM src JOIN ins"
        " USING (timestamp_ms, sensor_id, value_bits)",
    /* The flag and score come from the stored row, which the detector may
     * have written before the processor's copy of the reading arrived. */
    [SL_PG_UPSERT_LATEST] =
        "INSERT INTO sensor_latest (sensor_id, sensor_type, timestamp_ms,"
        " value, location, anomaly, battery_level, signal_strength, unit,"
        " anomaly_score, updated_at_ms)"
        " SELECT $2::text, $3::text, $1::bigint, $4::float8, $5::text,"
        " coalesce(r.anomaly, $6::boolean), $7::integer, $8::integer,"
        " $9::text, coalesce(r.anomaly_score, $10::float8), $11::bigint"
        " FROM (SELECT 1) AS one LEFT JOIN sensor_readings r"
        " ON r.timestamp_ms = $1 AND r.sensor_id = $2"
        " AND r.value_bits = $12::bigint"
        " ON CONFLICT (sensor_id) DO UPDATE SET"
        " sensor_type = excluded.sensor_type,"
        " timestamp_ms = excluded.timestamp_ms, value = excluded.value,"
        " location = excluded.location, anomaly = excluded.anomaly,"
        " battery_level = excluded.battery_level,"
        " signal_strength = excluded.signal_strength, unit = excluded.unit,"
        " anomaly_score = excluded.anomaly_score,"
        " updated_at_ms = excluded.updated_at_ms"
        " WHERE excluded.timestamp_ms > sensor_latest.timestamp_ms",
    /* The newest staged reading of each sensor; $2 lists the positions of
     * rejected rows, which must not become a sensor's latest. When $3 is
     * true, the flag and score are looked up by primary key, for a row the
     * detector stored first; a batch that has just inserted every row
     * passes false and skips the lookups, which cost more than the upsert
     * itself. COLLATE "C" sorts by bytes, which picks the same rows.
     * OFFSET 0 keeps the lookup a subquery probed by primary key once per
     * staged row. Flattened into a join, a generic plan made while
     * sensor_readings was small hashes the whole table on every call,
     * and PostgreSQL 15 keeps that plan until the table is analyzed. */
    [SL_PG_UPSERT_LATEST_STAGED] =
        "INSERT INTO sensor_latest (sensor_id, sensor_type, timestamp_ms,"
        " value, location, anomaly, battery_level, signal_strength, unit,"
        " anomaly_score, updated_at_ms)"
        " SELECT s.sensor_id, s.sensor_type, s.timestamp_ms, s.value,"
        " s.location, coalesce(r.anomaly, s.anomaly), s.battery_level,"
        " s.signal_strength, s.unit,"
        " coalesce(r.anomaly_score, s.anomaly_score), $1::bigint"
        " FROM (SELECT DISTINCT ON (sensor_id COLLATE \"C\") *"
        " FROM sl_stage_readings WHERE NOT (idx = ANY ($2::integer[]))"
        " ORDER BY sensor_id COLLATE \"C\", timestamp_ms DESC, idx) AS s"
        " LEFT JOIN LATERAL (SELECT anomaly, anomaly_score"
        " FROM sensor_readings WHERE $3::boolean"
        " AND timestamp_ms = s.timestamp_ms"
        " AND sensor_id = s.sensor_id AND value_bits = s.value_bits"
        " OFFSET 0) AS r"
        " ON true"
        " ON CONFLICT (sensor_id) DO UPDATE SET"
        " sensor_type = excluded.sensor_type,"
        " timestamp_ms = excluded.timestamp_ms, value = excluded.value,"
        " location = excluded.location, anomaly = excluded.anomaly,"
        " battery_level = excluded.battery_level,"
        " signal_strength = excluded.signal_strength, unit = excluded.unit,"
        " anomaly_score = excluded.anomaly_score,"
        " updated_at_ms = excluded.updated_at_ms"
        " WHERE excluded.timestamp_ms > sensor_latest.timestamp_ms",
    [SL_PG_INSERT_EVENT] =
        "INSERT INTO ecommerce_events (timestamp_ms, event_id, event_type,"
        " user_id, session_id, device, ip_address, product_id, product_name,"
        " category, quantity, price, total, currency, page, duration_seconds,"
        " payment_method, shipping_address, query, results_count,"
        " ingested_at_ms)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
        " $14, $15, $16, $17, $18, $19, $20, $21)"
        " ON CONFLICT (timestamp_ms, event_id) DO NOTHING",
    [SL_PG_INSERT_EVENTS_STAGED] =
        "WITH src AS (SELECT DISTINCT ON (timestamp_ms, event_id) *"
        " FROM sl_stage_events ORDER BY timestamp_ms, event_id, idx)"
        " INSERT INTO ecommerce_events (timestamp_ms, event_id, event_type,"
        " user_id, session_id, device, ip_address, product_id, product_name,"
        " category, quantity, price, total, currency, page, duration_seconds,"
        " payment_method, shipping_address, query, results_count,"
        " ingested_at_ms)"
        " SELECT timestamp_ms, event_id, event_type, user_id, session_id,"
        " device, ip_address, product_id, product_name, category, quantity,"
        " price, total, currency, page, duration_seconds, payment_method,"
        " shipping_address, query, results_count, $1::bigint FROM src"
        " ON CONFLICT (timestamp_ms, event_id) DO NOTHING",
    [SL_PG_UPSERT_AGGREGATE] =
        "INSERT INTO aggregated_metrics (sensor_id, window_start_ms,"
        " window_end_ms, sensor_type, count, min, max, avg, stddev,"
        " updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (sensor_id, window_start_ms) DO UPDATE SET"
        " window_end_ms = excluded.window_end_ms,"
        " sensor_type = excluded.sensor_type, count = excluded.count,"
        " min = excluded.min, max = excluded.max, avg = excluded.avg,"
        " stddev = excluded.stddev, updated_at_ms = excluded.updated_at_ms",
    /* $1 sensor_id, $2 window start, $3 window end, $4 sensor_type,
     * $5 write time. stddev_pop is the population standard deviation. */
    [SL_PG_RECOMPUTE_WINDOW] =
        "INSERT INTO aggregated_metrics (sensor_id, window_start_ms,"
        " window_end_ms, sensor_type, count, min, max, avg, stddev,"
        " updated_at_ms)"
        " SELECT $1::text, $2::bigint, $3::bigint, $4::text, count(*),"
        " min(value), max(value), avg(value),"
        " coalesce(stddev_pop(value), 0), $5::bigint"
        " FROM sensor_readings WHERE timestamp_ms >= $2 AND timestamp_ms < $3"
        " AND sensor_id = $1 AND ingested_at_ms <> 0"
        " AND value > '-Infinity' AND value < 'Infinity'"
        " HAVING count(*) > 0"
        " ON CONFLICT (sensor_id, window_start_ms) DO UPDATE SET"
        " window_end_ms = excluded.window_end_ms,"
        " sensor_type = excluded.sensor_type, count = excluded.count,"
        " min = excluded.min, max = excluded.max, avg = excluded.avg,"
        " stddev = excluded.stddev, updated_at_ms = excluded.updated_at_ms",
    [SL_PG_DELETE_EMPTY_WINDOW] =
        "DELETE FROM aggregated_metrics"
        " WHERE sensor_id = $1::text AND window_start_ms = $2::bigint"
        " AND NOT EXISTS (SELECT 1 FROM sensor_readings"
        " WHERE timestamp_ms >= $2 AND timestamp_ms < $3::bigint"
        " AND sensor_id = $1 AND ingested_at_ms <> 0"
        " AND value > '-Infinity' AND value < 'Infinity')",
    /* The grouped form of the two above, for every sensor of one window:
     * $1 the sensor ids (text[]), $2 window start, $3 window end, $4 their
     * sensor types (text[], same order), $5 write time. The raw table is
     * keyed by time first, so a per-sensor statement scanned the whole
     * window's rows once per sensor: a restart that recomputed the first
     * windows of 1,000 sensors read each window 1,000 times. Clearing the
     * rows first and inserting those with values is what the two
     * per-sensor statements do, in one scan. */
    [SL_PG_CLEAR_WINDOWS] =
        "DELETE FROM aggregated_metrics"
        " WHERE window_start_ms = $2::bigint AND sensor_id = ANY ($1::text[])",
    [SL_PG_RECOMPUTE_WINDOWS] =
        "INSERT INTO aggregated_metrics (sensor_id, window_start_ms,"
        " window_end_ms, sensor_type, count, min, max, avg, stddev,"
        " updated_at_ms)"
        " SELECT k.sensor_id, $2::bigint, $3::bigint, k.sensor_type,"
        " count(*), min(r.value), max(r.value), avg(r.value),"
        " coalesce(stddev_pop(r.value), 0), $5::bigint"
        " FROM unnest($1::text[], $4::text[]) AS k (sensor_id, sensor_type)"
        " JOIN sensor_readings r ON r.sensor_id = k.sensor_id"
        " WHERE r.timestamp_ms >= $2 AND r.timestamp_ms < $3"
        " AND r.ingested_at_ms <> 0"
        " AND r.value > '-Infinity' AND r.value < 'Infinity'"
        " GROUP BY k.sensor_id, k.sensor_type",
    /* A replayed entry (same source position, no newer failure) changes
     * nothing, so a status set by the DLQ handler survives the replay. */
    [SL_PG_UPSERT_DLQ] =
        "INSERT INTO dlq_errors (source_topic, source_partition,"
        " source_offset, key, payload, error_class, error, retry_count,"
        " status, first_failure_ms, last_failure_ms, created_at_ms,"
        " updated_at_ms, next_attempt_ms)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12,"
        " $13)"
        " ON CONFLICT (source_topic, source_partition, source_offset)"
        " WHERE source_offset >= 0 DO UPDATE SET"
        " error_class = excluded.error_class, error = excluded.error,"
        " retry_count = excluded.retry_count, status = excluded.status,"
        " last_failure_ms = excluded.last_failure_ms,"
        " updated_at_ms = excluded.updated_at_ms,"
        " next_attempt_ms = excluded.next_attempt_ms"
        " WHERE excluded.retry_count > dlq_errors.retry_count"
        " OR excluded.last_failure_ms > dlq_errors.last_failure_ms",
    [SL_PG_RESOLVE_DLQ] =
        "UPDATE dlq_errors SET status = 'resolved', next_attempt_ms = NULL,"
        " updated_at_ms = $4"
        " WHERE source_topic = $1 AND source_partition = $2"
        " AND source_offset = $3 AND status IN ('pending', 'retrying')",
    /* Walks the primary key backwards from $2; the other filters are
     * applied per row (see the note in store_pg_read.c). */
    [SL_PG_SELECT_READINGS] =
        "SELECT " READING_COLUMNS " FROM sensor_readings"
        " WHERE timestamp_ms >= $1 AND timestamp_ms < $2"
        " AND ingested_at_ms <> 0 AND ($3::text IS NULL OR sensor_id = $3)"
        " AND ($4::text IS NULL OR sensor_type = $4)"
        " AND (NOT $5::boolean OR anomaly)"
        " ORDER BY timestamp_ms DESC, sensor_id DESC LIMIT $6",
    [SL_PG_SELECT_STATS] =
        "SELECT sensor_id, max(sensor_type), count(*),"
        " count(*) FILTER (WHERE anomaly), min(value), max(value),"
        " avg(value), min(timestamp_ms), max(timestamp_ms)"
        " FROM sensor_readings"
        " WHERE timestamp_ms >= $1 AND timestamp_ms < $2"
        " AND ($3::text IS NULL OR sensor_type = $3) AND ingested_at_ms <> 0"
        " AND value > '-Infinity' AND value < 'Infinity'"
        " GROUP BY sensor_id ORDER BY sensor_id LIMIT $4",
    [SL_PG_SELECT_AGGREGATES] =
        "SELECT sensor_id, sensor_type, window_start_ms, window_end_ms,"
        " count, min, max, avg, stddev FROM aggregated_metrics"
        " WHERE sensor_id = $1 AND window_start_ms >= $2"
        " AND window_start_ms < $3 ORDER BY window_start_ms LIMIT $4",
    /* $1 is NULL here, so both aggregate queries bind the same numbers. */
    [SL_PG_SELECT_AGGREGATES_ALL] =
        "SELECT sensor_id, sensor_type, window_start_ms, window_end_ms,"
        " count, min, max, avg, stddev FROM aggregated_metrics"
        " WHERE $1::text IS NULL AND window_start_ms >= $2"
        " AND window_start_ms < $3"
        " ORDER BY window_start_ms, sensor_id LIMIT $4",
    [SL_PG_COUNT_READINGS] =
        "SELECT count(*) FROM sensor_readings WHERE ingested_at_ms <> 0",
    [SL_PG_COUNT_DLQ] = "SELECT count(*) FROM dlq_errors",
    /* The whole reading with $11 value_bits, so the row is complete
     * whichever of processor and detector writes first. The WHERE makes a
     * repeated call change no row. */
    [SL_PG_UPSERT_DETECTION] =
        "INSERT INTO sensor_readings (" READING_COLUMNS
        ", ingested_at_ms, value_bits)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11)"
        " ON CONFLICT (timestamp_ms, sensor_id, value_bits) DO UPDATE SET"
        " anomaly = excluded.anomaly, anomaly_score = excluded.anomaly_score"
        " WHERE sensor_readings.anomaly IS DISTINCT FROM excluded.anomaly"
        " OR sensor_readings.anomaly_score IS DISTINCT FROM"
        " excluded.anomaly_score",
    [SL_PG_UPDATE_LATEST_DETECTION] =
        "UPDATE sensor_latest SET anomaly = $1, anomaly_score = $2"
        " WHERE sensor_id = $3 AND timestamp_ms = $4",
    /* The unique index alerts_identity makes the insert idempotent. */
    [SL_PG_INSERT_ALERT] =
        "INSERT INTO alerts (alert_type, sensor_id, sensor_type, severity,"
        " message, value, anomaly_score, timestamp_ms, created_at_ms)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (sensor_id, timestamp_ms, alert_type) DO NOTHING",
    [SL_PG_SELECT_ALERTS] =
        "SELECT id, alert_type, sensor_id, sensor_type, severity, message,"
        " value, anomaly_score, timestamp_ms, acknowledged FROM alerts"
        " WHERE ($1::text IS NULL OR sensor_id = $1)"
        " ORDER BY timestamp_ms DESC, id DESC LIMIT $2",
    [SL_PG_DLQ_LIST] = "SELECT " DLQ_COLUMNS " FROM dlq_errors"
                       " WHERE ($1::text IS NULL OR status = $1)"
                       " AND ($2::text IS NULL OR source_topic = $2)"
                       " ORDER BY id DESC LIMIT $3",
    [SL_PG_DLQ_GET] =
        "SELECT " DLQ_COLUMNS_BYTES " FROM dlq_errors WHERE id = $1",
    [SL_PG_DLQ_REPLAY] = "UPDATE dlq_errors SET status = 'pending',"
                         " next_attempt_ms = $1, updated_at_ms = $1"
                         " WHERE ($2::bigint > 0 AND id = $2"
                         " AND status IN ('pending', 'dead'))"
                         " OR ($2 = 0 AND status = $3::text)",
    [SL_PG_DLQ_EXISTS] = "SELECT 1 FROM dlq_errors WHERE id = $1",
    [SL_PG_DLQ_SCHEDULED] =
        "SELECT id, next_attempt_ms FROM dlq_errors"
        " WHERE status = 'pending' AND next_attempt_ms IS NOT NULL"
        " ORDER BY next_attempt_ms LIMIT $1",
    [SL_PG_DLQ_REARM] = "UPDATE dlq_errors SET status = 'pending',"
                        " next_attempt_ms = $1, updated_at_ms = $1"
                        " WHERE status = 'retrying'"
                        " OR (status = 'pending' AND next_attempt_ms IS NULL)",
    [SL_PG_DLQ_CLAIM] =
        "UPDATE dlq_errors SET status = 'retrying',"
        " retry_count = retry_count + 1, next_attempt_ms = NULL,"
        " updated_at_ms = $2"
        " WHERE id = $1 AND status = 'pending'"
        " AND next_attempt_ms <= $2 RETURNING " DLQ_COLUMNS_BYTES,
    [SL_PG_DLQ_UNCLAIM] = "UPDATE dlq_errors SET status = 'pending',"
                          " retry_count = greatest(retry_count - 1, 0),"
                          " next_attempt_ms = $2, updated_at_ms = $2"
                          " WHERE id = $1 AND status = 'retrying'",
    [SL_PG_DLQ_STATUS_COUNTS] =
        "SELECT status, count(*) FROM dlq_errors GROUP BY status",
};
