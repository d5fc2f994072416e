#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A store outage is not a poison pill: while another connection holds an
EXCLUSIVE transaction on the database for several seconds, a replay of
100,000 readings through `sluice run` pauses instead of dead-lettering.
The replay is paced (1,000 s of event time at speed 100, so about 10 s)
so that the outage starts while it is publishing.
The outage shows in the sluice_store_unavailable gauge and the log, and
afterwards every reading is stored exactly once and the DLQ is empty."""
import json
import os
import re
import sqlite3
import sys
import tempfile
import time

from harness import Sluice

T0 = 1767225600000       # 2026-01-01T00:00:00Z
SENSORS = 100
PER_SENSOR = 1000
HOLD_SECONDS = 7


def write_readings(path):
    with open(path, "w") as f:
        for seq in range(PER_SENSOR):
            for s in range(SENSORS):
                f.write(json.dumps({
                    "sensor_id": "outage-%03d" % s,
                    "sensor_type": "temperature",
                    "value": 20.0 + seq * 0.01,
                    "timestamp": T0 + seq * 1000,
                    "location": "lab",
                    "metadata": {"battery_level": 90,
                                 "signal_strength": -60}}) + "\n")


def gauge(text, stage):
    match = re.search(r'sluice_store_unavailable\{stage="%s"\} (\S+)' % stage,
                      text)
    return float(match.group(1)) if match else None


def main():
    workdir = tempfile.mkdtemp(prefix="sluice-outage-")
    db_path = os.path.join(workdir, "sluice.db")
    readings = os.path.join(workdir, "outage.ndjson")
    write_readings(readings)
    total = SENSORS * PER_SENSOR

    sluice = Sluice("--no-generators", "--no-detector", "--replay", readings,
                    "--format", "ndjson", "--speed", "100", workdir=workdir)
    db = sqlite3.connect(db_path, timeout=30)

    def stored():
        return db.execute("SELECT count(*) FROM sensor_readings").fetchone()[0]

    sluice.wait_until(lambda: stored() > 0, "the first readings stored")
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    locked_at = time.time()
    before = stored()
    assert before < total, "the replay ended before the outage began"

    saw_outage = False
    while time.time() - locked_at < HOLD_SECONDS:
        metrics = sluice.get_text("/metrics")
        saw_outage = saw_outage or gauge(metrics, "processor") == 1
        assert stored() == before, "nothing can be written during the outage"
        time.sleep(0.2)
    assert saw_outage, "sluice_store_unavailable{stage=processor} never 1"
    locker.execute("ROLLBACK")
    locker.close()

    sluice.wait_until(
        lambda: db.execute("SELECT count(*) FROM sensor_readings"
                           ).fetchone()[0] == total,
        "%d readings stored" % total, timeout=180)
    metrics = sluice.get_text("/metrics")
    assert gauge(metrics, "processor") == 0, metrics
    assert ('sluice_records_stored_total{topic="sensor-readings"} %d' % total
            in metrics), metrics
    assert ('sluice_records_duplicate_total{topic="sensor-readings"} 0'
            in metrics), metrics
    log = sluice.read_log()
    assert "store write failed, pausing and retrying" in log, log
    assert "store available again" in log, log
    assert sluice.stop() == 0, sluice.read_log()

    distinct = db.execute(
        "SELECT count(*) FROM (SELECT DISTINCT sensor_id, timestamp_ms "
        "FROM sensor_readings)").fetchone()[0]
    assert distinct == total, distinct
    assert db.execute("SELECT count(*) FROM dlq_errors").fetchone()[0] == 0
    print("%d readings stored once across a %d s store outage"
          % (total, HOLD_SECONDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
