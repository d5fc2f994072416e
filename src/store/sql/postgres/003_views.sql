-- SPDX-License-Identifier: Apache-2.0
-- Materialized summaries of sensor_readings for dashboards and ad-hoc SQL.
-- They are as fresh as their last sl_store_refresh_views() call, which runs
-- REFRESH MATERIALIZED VIEW CONCURRENTLY (readers are not blocked; that
-- needs the unique indexes below). The API's statistics are computed from
-- the raw rows instead, so they stay exact for any time range.
--
-- Both views skip NULL, NaN and infinite values, as the API's statistics
-- do: in PostgreSQL NaN sorts above every number, so the upper bound
-- 'Infinity' excludes it.

-- Per-sensor statistics over every stored reading.
CREATE MATERIALIZED VIEW sensor_stats AS
SELECT sensor_id,
       max(sensor_type)                 AS sensor_type,
       count(*)                         AS count,
       count(*) FILTER (WHERE anomaly)  AS anomaly_count,
       min(value)                       AS min,
       max(value)                       AS max,
       avg(value)                       AS avg,
       min(timestamp_ms)                AS first_ms,
       max(timestamp_ms)                AS last_ms,
       to_timestamp(max(timestamp_ms) / 1000.0) AS last_at
FROM sensor_readings
WHERE value > '-Infinity' AND value < 'Infinity'
GROUP BY sensor_id;

CREATE UNIQUE INDEX sensor_stats_sensor ON sensor_stats (sensor_id);

-- Hourly rollup per sensor. hour_start_ms is the event time rounded down to
-- the hour (floor division, so times before 1970 round down too).
CREATE MATERIALIZED VIEW sensor_readings_hourly AS
SELECT sensor_id,
       hour_start_ms,
       to_timestamp(hour_start_ms / 1000.0) AS hour_start,
       max(sensor_type)                     AS sensor_type,
       count(*)                             AS count,
       count(*) FILTER (WHERE anomaly)      AS anomaly_count,
       min(value)                           AS min,
       max(value)                           AS max,
       avg(value)                           AS avg,
       stddev_pop(value)                    AS stddev
FROM (SELECT sensor_id, sensor_type, value, anomaly,
             timestamp_ms - (((timestamp_ms % 3600000) + 3600000) % 3600000)
                 AS hour_start_ms
      FROM sensor_readings
      WHERE value > '-Infinity' AND value < 'Infinity') AS r
GROUP BY sensor_id, hour_start_ms;

CREATE UNIQUE INDEX sensor_readings_hourly_key
    ON sensor_readings_hourly (sensor_id, hour_start_ms);
CREATE INDEX sensor_readings_hourly_start
    ON sensor_readings_hourly (hour_start_ms);
