-- SPDX-License-Identifier: Apache-2.0
-- Initial SQLite schema of sluice. Applied by sl_store_migrate inside one
-- transaction; the runner records it in schema_migrations itself.
--
-- Times are INTEGER milliseconds since the Unix epoch, UTC. Event times are
-- limited to years 0001..9999 (-62135596800000 .. 253402300799999 ms), the
-- range a four-digit ISO-8601 year can show and PostgreSQL's timestamptz can
-- hold, so both stores reject the same rows.
--
-- Enum columns hold the schema symbols ('temperature', 'page_view', ...) so
-- the file reads well in the sqlite3 shell and in other tools. On the raw
-- tables their CHECKs are OR chains. In the sqlite3 3.40.1 shell, a CHECK
-- with an IN list of strings raised the CPU time of a 1M-row INSERT ...
-- SELECT into sensor_readings from 1.0 s to 1.85 s, and an OR chain added
-- nothing measurable.

-- Raw readings, laid out for appending: the key starts with the event time,
-- so in-order arrivals insert at the right edge of the B-tree. The key is
-- also the idempotency key of a reading: a sensor, an instant and the exact
-- value (value_bits, the IEEE-754 bit pattern of value). A redelivered
-- reading matches its first copy and is ignored, while a second, different
-- value for the same instant is a measurement of its own and is kept: real
-- recordings contain such pairs (the NAB machine-temperature series has 12). There is no (sensor_id,
-- timestamp_ms) index because it turns each insert into a random page
-- write. bench/store_sqlite_bench.c (1M readings from 1,000 sensors,
-- 10,000-row transactions, 2-vCPU VM) measured 614k rows/s without it and
-- 120k rows/s with it.
CREATE TABLE sensor_readings (
    timestamp_ms    INTEGER NOT NULL
                    CHECK (timestamp_ms BETWEEN -62135596800000
                                            AND 253402300799999),
    sensor_id       TEXT NOT NULL CHECK (sensor_id <> ''),
    sensor_type     TEXT NOT NULL
                    CHECK (sensor_type = 'temperature'
                           OR sensor_type = 'humidity'
                           OR sensor_type = 'pressure'
                           OR sensor_type = 'vibration'
                           OR sensor_type = 'power' OR sensor_type = 'other'),
    value           REAL,  -- NULL: NaN, which SQLite stores as NULL
    location        TEXT NOT NULL,
    anomaly         INTEGER NOT NULL DEFAULT 0 CHECK (anomaly IN (0, 1)),
    battery_level   INTEGER NOT NULL,
    signal_strength INTEGER NOT NULL,
    unit            TEXT,
    anomaly_score   REAL,
    -- 0 while only the detector has written the row: the processor's
    -- insert then sets it and counts the reading as stored.
    ingested_at_ms  INTEGER NOT NULL,
    value_bits      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (timestamp_ms, sensor_id, value_bits)
) WITHOUT ROWID;

-- The newest reading of each sensor by event time, kept by the writer in
-- the same transaction as the raw rows: "latest per sensor" without a scan.
CREATE TABLE sensor_latest (
    sensor_id       TEXT PRIMARY KEY,
    sensor_type     TEXT NOT NULL,
    timestamp_ms    INTEGER NOT NULL,
    value           REAL,
    location        TEXT NOT NULL,
    anomaly         INTEGER NOT NULL,
    battery_level   INTEGER NOT NULL,
    signal_strength INTEGER NOT NULL,
    unit            TEXT,
    anomaly_score   REAL,
    updated_at_ms   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX sensor_latest_type ON sensor_latest (sensor_type);

-- Commerce events, keyed like readings for appending. The event_id is a
-- random UUID, so a key on it alone inserts at random pages (66k rows/s
-- against 478k rows/s in the same benchmark). A redelivered event carries
-- its original timestamp, so (timestamp_ms, event_id) still identifies it.
CREATE TABLE ecommerce_events (
    timestamp_ms     INTEGER NOT NULL
                     CHECK (timestamp_ms BETWEEN -62135596800000
                                             AND 253402300799999),
    event_id         TEXT NOT NULL CHECK (event_id <> ''),
    event_type       TEXT NOT NULL
                     CHECK (event_type = 'page_view'
                            OR event_type = 'add_to_cart'
                            OR event_type = 'purchase'
                            OR event_type = 'search'
                            OR event_type = 'remove_from_cart'
                            OR event_type = 'other'),
    user_id          TEXT NOT NULL,
    session_id       TEXT NOT NULL,
    device           TEXT NOT NULL
                     CHECK (device = 'mobile' OR device = 'desktop'
                            OR device = 'tablet' OR device = 'other'),
    ip_address       TEXT NOT NULL,
    product_id       INTEGER,
    product_name     TEXT,
    category         TEXT,
    quantity         INTEGER,
    price            REAL,
    total            REAL,
    currency         TEXT,
    page             TEXT,
    duration_seconds REAL,
    payment_method   TEXT,
    shipping_address TEXT,
    query            TEXT,
    results_count    INTEGER,
    ingested_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (timestamp_ms, event_id)
) WITHOUT ROWID;

-- One row per sensor and tumbling window. A recomputed window replaces its
-- row. stddev is the population standard deviation.
CREATE TABLE aggregated_metrics (
    sensor_id       TEXT NOT NULL,
    window_start_ms INTEGER NOT NULL,
    window_end_ms   INTEGER NOT NULL CHECK (window_end_ms > window_start_ms),
    sensor_type     TEXT NOT NULL,
    count           INTEGER NOT NULL CHECK (count >= 0),
    min             REAL,
    max             REAL,
    avg             REAL,
    stddev          REAL,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (sensor_id, window_start_ms)
) WITHOUT ROWID;

-- Serves "all sensors, windows starting in [from, to)"; grows at its right
-- edge because windows close in time order.
CREATE INDEX aggregated_metrics_start
    ON aggregated_metrics (window_start_ms);

CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY,
    alert_type    TEXT NOT NULL,
    sensor_id     TEXT NOT NULL,
    sensor_type   TEXT,
    severity      TEXT NOT NULL,
    message       TEXT NOT NULL,
    value         REAL,
    anomaly_score REAL,
    timestamp_ms  INTEGER NOT NULL,
    acknowledged  INTEGER NOT NULL DEFAULT 0 CHECK (acknowledged IN (0, 1)),
    created_at_ms INTEGER NOT NULL
);

CREATE INDEX alerts_time ON alerts (timestamp_ms);
CREATE INDEX alerts_sensor_time ON alerts (sensor_id, timestamp_ms);
CREATE INDEX alerts_unacknowledged ON alerts (timestamp_ms)
    WHERE acknowledged = 0;

-- Records that could not be processed, with their original key and bytes.
-- A record that came from a topic is identified by its source position, so
-- a replayed batch adds no second row. A newer failure of the same record
-- (higher retry_count or later last_failure_ms) updates the row.
CREATE TABLE dlq_errors (
    id               INTEGER PRIMARY KEY,
    source_topic     TEXT NOT NULL,
    source_partition INTEGER NOT NULL,
    source_offset    INTEGER NOT NULL,
    key              BLOB,
    payload          BLOB,
    error_class      TEXT NOT NULL
                     CHECK (error_class IN ('decode', 'validation', 'storage',
                                            'processing')),
    error            TEXT NOT NULL,
    retry_count      INTEGER NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'retrying', 'resolved',
                                       'dead')),
    first_failure_ms INTEGER NOT NULL,
    last_failure_ms  INTEGER NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL
);

-- Records without a source position (HTTP ingest) use offset -1 and are
-- never merged.
CREATE UNIQUE INDEX dlq_errors_source
    ON dlq_errors (source_topic, source_partition, source_offset)
    WHERE source_offset >= 0;
CREATE INDEX dlq_errors_status ON dlq_errors (status, last_failure_ms);

-- The local schema registry: one row per registered version of a subject.
CREATE TABLE schemas (
    subject       TEXT NOT NULL,
    version       INTEGER NOT NULL CHECK (version > 0),
    id            INTEGER NOT NULL UNIQUE CHECK (id > 0),
    schema        TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (subject, version)
);
