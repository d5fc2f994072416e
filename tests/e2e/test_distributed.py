#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs sluice in distributed mode as separate processes (see cluster.py):
`sluice process`, `sluice replay` of a generated sensor CSV and `sluice
api` on the mock Kafka cluster, PostgreSQL and `sluice registry`. Checks
that every CSV row reaches PostgreSQL once, across a processor restart,
and that the API counts them. Then replays a frame too large for the bus
between small readings: the readings are stored and the frame leaves only
a 1 KiB digest in the dead-letter queue.
"""
import hashlib
import os
import subprocess
import sys
import time

from cluster import (Cluster, api_status, http_get, read_file, start, stop,
                     wait_until)
from harness import free_port, reading_frame

SENSORS = 5
READINGS_PER_SENSOR = 400
ROWS = SENSORS * READINGS_PER_SENSOR
BIG_FRAME_BYTES = 1500000


def write_sensor_csv(path):
    """Writes ROWS readings stamped within the last hour, one per second
    per sensor, so /api/v1/sensors/stats over 60 minutes counts all."""
    start_ms = int(time.time() * 1000) - READINGS_PER_SENSOR * 1000 - 60000
    with open(path, "w") as f:
        f.write("sensor_id,sensor_type,value,timestamp,location\n")
        for i in range(READINGS_PER_SENSOR):
            for s in range(SENSORS):
                f.write("dist-%02d,temperature,%.2f,%d,hall-%d\n" %
                        (s, 20.0 + (i % 50) * 0.1, start_ms + i * 1000, s))


def check_invalid_settings(binary, brokers):
    """Checks that invalid bus settings stop start-up with status 2 and a
    message naming the setting."""
    cases = [
        (["process", "--bus", "kafka"], b"kafka-brokers"),
        (["process", "--bus", "rabbitmq"], b"bus: invalid value"),
        (["process"], b"--bus kafka"),
        (["produce", "--bus", "memory"], b"--bus kafka"),
        (["detect"], b"--bus kafka"),
        (["dlq"], b"--bus kafka"),
        (["api", "--kafka-brokers", brokers], b"kafka-brokers"),
        (["replay", "--bus", "kafka", "--kafka-brokers", brokers],
         b"replay: missing"),
        (["process", "--bus", "kafka", "--kafka-brokers", brokers,
          "--registry-url", "127.0.0.1:8081"], b"registry-url"),
    ]
    for args, expected in cases:
        done = subprocess.run([binary] + args, capture_output=True,
                              timeout=30)
        assert done.returncode == 2, (args, done.returncode, done.stderr)
        assert expected in done.stderr, (args, done.stderr)


def check_oversized_frame(cl, proc_log):
    """Replays a 1.5 MB frame between small readings: the readings are
    stored, and the frame leaves one dead-letter row holding its first
    1 KiB, its size and its SHA-256, never the whole value."""
    status, latest = http_get(int(cl.registry_url.rsplit(":", 1)[1]),
                              "/subjects/sensor-readings-value/versions/"
                              "latest")
    assert status == 200, (status, latest)
    now_ms = int(time.time() * 1000)
    big = bytes((i * 31 + 7) & 0xFF for i in range(BIG_FRAME_BYTES))
    lines = ["sensor-readings\t%s\t%s" % (b"big".hex(), big.hex())]
    for i in range(3):
        frame = reading_frame(latest["id"], "b26-small", "temperature",
                              21.5 + i, now_ms - 60000 + i * 1000)
        lines.append("sensor-readings\t%s\t%s" % (b"b26-small".hex(),
                                                   frame.hex()))
    path = cl.path("b26.frames")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    replay = cl.role("replay", ["--format", "frames", path], "replay-b26")
    code = replay.wait(timeout=120)
    replay_log = read_file(cl.log("replay-b26"))
    assert code == 0, "replay exited with %d:\n%s" % (code, replay_log)
    assert "published=3 malformed=0 failed=0 dead_lettered=1" in replay_log, \
        replay_log

    small = "SELECT count(*) FROM sensor_readings WHERE sensor_id='b26-small'"
    wait_until(lambda: int(cl.pg.psql(small)) >= 3, "the 3 small readings",
               [proc_log])
    wait_until(lambda: int(cl.pg.psql("SELECT count(*) FROM dlq_errors")),
               "the dead-letter row", [proc_log], timeout=60)
    row = cl.pg.psql(
        "SELECT source_topic, source_offset, error_class, status, "
        "octet_length(payload), encode(sha256(payload), 'hex'), error "
        "FROM dlq_errors").split("|")
    assert row[:5] == ["sensor-readings", "-1", "validation", "dead",
                       "1024"], row
    assert row[5] == hashlib.sha256(big[:1024]).hexdigest(), row
    assert row[6].startswith("payload_too_large: "), row
    assert str(BIG_FRAME_BYTES) in row[6], row
    assert hashlib.sha256(big).hexdigest() in row[6], row
    assert int(cl.pg.psql(small)) == 3
    largest = cl.pg.psql("SELECT coalesce(max(octet_length(payload)), 0) "
                         "FROM dlq_errors")
    assert int(largest) == 1024, largest


def main():
    binary = os.environ["SLUICE_BINARY"]
    cl = Cluster("dist")
    pg = cl.pg

    check_invalid_settings(binary, cl.brokers)
    # librdkafka checks kafka-properties when the bus is created.
    done = subprocess.run([binary, "process", "--store", pg.url,
                           "--kafka-properties", "no.such.property=1"] +
                          cl.kafka_args, capture_output=True, timeout=60)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert b"invalid Kafka property no.such.property" in done.stderr, \
        done.stderr

    process = cl.process("process")
    csv_path = cl.path("readings.csv")
    write_sensor_csv(csv_path)
    # 400 s of recorded time at 40x: the input streams in for about 10 s,
    # so the processor restart below falls while it arrives.
    replay = cl.role("replay", ["--format", "sensor-csv", "--speed", "40",
                                csv_path])
    count = cl.count

    # Stop the processor while the input arrives and start another: what
    # the first committed must be neither lost nor stored twice.
    wait_until(lambda: count() > 0, "the first stored rows",
               [cl.log("process")])
    stop(process, "process", cl.log("process"))
    stored_by_first = count()
    process = cl.process("process2")

    code = replay.wait(timeout=300)
    assert code == 0, "replay exited with %d:\n%s" % (
        code, read_file(cl.log("replay")))
    wait_until(lambda: count() >= ROWS, "%d rows in PostgreSQL" % ROWS,
               [cl.log("process"), cl.log("process2")])
    assert process.poll() is None, read_file(cl.log("process2"))
    time.sleep(1)  # a duplicate delivery would show up as extra rows
    assert count() == ROWS, count()
    sensors = pg.psql("SELECT count(DISTINCT sensor_id) FROM sensor_readings")
    assert int(sensors) == SENSORS, sensors

    api_port = free_port()
    api = start([binary, "api", "--store", pg.url, "--listen",
                 "127.0.0.1:%d" % api_port], cl.log("api"))
    wait_until(lambda: api_status(api_port) == 200, "the API",
               [cl.log("api")], timeout=30)
    status, body = http_get(api_port,
                            "/api/v1/sensors/stats?time_window_minutes=60")
    assert status == 200, (status, body)
    rows = [v for v in body.values() if isinstance(v, list)]
    assert len(rows) == 1, body
    per_sensor = {s["sensor_id"]: s["reading_count"] for s in rows[0]}
    assert len(per_sensor) == SENSORS, per_sensor
    for sensor_id, n in per_sensor.items():
        assert n == READINGS_PER_SENSOR, (sensor_id, n)
    stop(api, "api", cl.log("api"))

    check_oversized_frame(cl, cl.log("process2"))

    stop(process, "process", cl.log("process2"))
    cl.close()
    print("distributed: %d rows through Kafka into PostgreSQL, %d of them "
          "before the processor restart; a %d-byte frame dead-lettered as a "
          "1 KiB digest" % (ROWS, stored_by_first, BIG_FRAME_BYTES))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e, file=sys.stderr)
        sys.exit(1)
