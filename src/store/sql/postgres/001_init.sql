-- SPDX-License-Identifier: Apache-2.0
-- Initial PostgreSQL schema of sluice, the same tables and keys as
-- sql/sqlite/001_init.sql. Applied by sl_store_migrate inside one
-- transaction; the runner records it in schema_migrations itself.
--
-- Times are bigint milliseconds since the Unix epoch, UTC, as in the SQLite
-- store, so both stores compare and key rows identically. Event times are
-- limited to years 0001..9999 (-62135596800000 .. 253402300799999 ms), a
-- range inside timestamptz's (4713 BC .. 294276 AD), so every stored time
-- converts with to_timestamp(ms / 1000.0) and both stores reject the same
-- rows. The materialized views (003_views.sql) expose timestamptz columns.

-- Raw readings, laid out for appending: the key starts with the event time,
-- so in-order arrivals insert at the right edge of the B-tree. The key is
-- the idempotency key of a reading (sensor, instant, IEEE-754 bit pattern
-- of the value): a redelivery matches its first copy, while a second value
-- at the same instant is a measurement of its own. There is no
-- (sensor_id, timestamp_ms) index, for the insert cost it adds.
CREATE TABLE sensor_readings (
    timestamp_ms    bigint NOT NULL
                    CHECK (timestamp_ms BETWEEN -62135596800000
                                            AND 253402300799999),
    sensor_id       text NOT NULL CHECK (sensor_id <> ''),
    sensor_type     text NOT NULL
                    CHECK (sensor_type IN ('temperature', 'humidity',
                                           'pressure', 'vibration', 'power',
                                           'other')),
    value           double precision,  -- NaN is stored as NaN
    location        text NOT NULL,
    anomaly         boolean NOT NULL DEFAULT false,
    battery_level   integer NOT NULL,
    signal_strength integer NOT NULL,
    unit            text,
    anomaly_score   double precision,
    -- 0 while only the detector has written the row: the processor's
    -- insert then sets it and counts the reading as stored.
    ingested_at_ms  bigint NOT NULL,
    value_bits      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (timestamp_ms, sensor_id, value_bits)
);

-- The newest reading of each sensor by event time, kept by the writer in
-- the same transaction as the raw rows.
CREATE TABLE sensor_latest (
    sensor_id       text PRIMARY KEY,
    sensor_type     text NOT NULL,
    timestamp_ms    bigint NOT NULL,
    value           double precision,
    location        text NOT NULL,
    anomaly         boolean NOT NULL,
    battery_level   integer NOT NULL,
    signal_strength integer NOT NULL,
    unit            text,
    anomaly_score   double precision,
    updated_at_ms   bigint NOT NULL
);

CREATE INDEX sensor_latest_type ON sensor_latest (sensor_type);

-- Commerce events, keyed by (timestamp_ms, event_id) for appending: a key
-- on the random UUID alone inserts at random pages.
CREATE TABLE ecommerce_events (
    timestamp_ms     bigint NOT NULL
                     CHECK (timestamp_ms BETWEEN -62135596800000
                                             AND 253402300799999),
    event_id         text NOT NULL CHECK (event_id <> ''),
    event_type       text NOT NULL
                     CHECK (event_type IN ('page_view', 'add_to_cart',
                                           'purchase', 'search',
                                           'remove_from_cart', 'other')),
    user_id          text NOT NULL,
    session_id       text NOT NULL,
    device           text NOT NULL
                     CHECK (device IN ('mobile', 'desktop', 'tablet',
                                       'other')),
    ip_address       text NOT NULL,
    product_id       bigint,
    product_name     text,
    category         text,
    quantity         integer,
    price            double precision,
    total            double precision,
    currency         text,
    page             text,
    duration_seconds double precision,
    payment_method   text,
    shipping_address text,
    query            text,
    results_count    integer,
    ingested_at_ms   bigint NOT NULL,
    PRIMARY KEY (timestamp_ms, event_id)
);

-- One row per sensor and tumbling window; a recomputed window replaces its
-- row. stddev is the population standard deviation.
CREATE TABLE aggregated_metrics (
    sensor_id       text NOT NULL,
    window_start_ms bigint NOT NULL,
    window_end_ms   bigint NOT NULL CHECK (window_end_ms > window_start_ms),
    sensor_type     text NOT NULL,
    count           bigint NOT NULL CHECK (count >= 0),
    min             double precision,
    max             double precision,
    avg             double precision,
    stddev          double precision,
    updated_at_ms   bigint NOT NULL,
    PRIMARY KEY (sensor_id, window_start_ms)
);

CREATE INDEX aggregated_metrics_start ON aggregated_metrics (window_start_ms);

-- An alert is identified by (sensor_id, timestamp_ms, alert_type); the
-- unique index makes the detector's insert idempotent (ON CONFLICT).
CREATE TABLE alerts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_type    text NOT NULL,
    sensor_id     text NOT NULL,
    sensor_type   text,
    severity      text NOT NULL,
    message       text NOT NULL,
    value         double precision,
    anomaly_score double precision,
    timestamp_ms  bigint NOT NULL,
    acknowledged  boolean NOT NULL DEFAULT false,
    created_at_ms bigint NOT NULL
);

CREATE UNIQUE INDEX alerts_identity
    ON alerts (sensor_id, timestamp_ms, alert_type);
CREATE INDEX alerts_time ON alerts (timestamp_ms);
CREATE INDEX alerts_unacknowledged ON alerts (timestamp_ms)
    WHERE NOT acknowledged;

-- Records that could not be processed, with their original key and bytes,
-- merged by source position as in the SQLite store.
CREATE TABLE dlq_errors (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    key              bytea,
    payload          bytea,
    error_class      text NOT NULL
                     CHECK (error_class IN ('decode', 'validation', 'storage',
                                            'processing')),
    error            text NOT NULL,
    retry_count      integer NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'retrying', 'resolved',
                                       'dead')),
    first_failure_ms bigint NOT NULL,
    last_failure_ms  bigint NOT NULL,
    created_at_ms    bigint NOT NULL,
    updated_at_ms    bigint NOT NULL
);

-- Records without a source position (HTTP ingest) use offset -1 and are
-- never merged.
CREATE UNIQUE INDEX dlq_errors_source
    ON dlq_errors (source_topic, source_partition, source_offset)
    WHERE source_offset >= 0;
CREATE INDEX dlq_errors_status ON dlq_errors (status, last_failure_ms);

-- The local schema registry: one row per registered version of a subject.
CREATE TABLE schemas (
    subject       text NOT NULL,
    version       integer NOT NULL CHECK (version > 0),
    id            integer NOT NULL UNIQUE CHECK (id > 0),
    schema        text NOT NULL,
    created_at_ms bigint NOT NULL,
    PRIMARY KEY (subject, version)
);
