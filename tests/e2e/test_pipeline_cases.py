#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Feeds failure cases through `sluice run` as captured frames and NDJSON,
then checks the SQLite file and the API: bad frames reach the dead-letter
table with their reason and original bytes, non-finite values never reach
the store or a response, late and redelivered readings leave exact window
aggregates, and "latest" follows event time."""
import os
import re
import sqlite3
import sys
import tempfile

from harness import Sluice, reading_frame

T0 = 1767225600000       # 2026-01-01T00:00:00Z
T10 = 1767261600000      # 2026-01-01T10:00:00Z
NAN = float("nan")


def frames_line(topic, key, value):
    return "%s\t%s\t%s\n" % (topic, key.hex(), value.hex())


def build_frames(reading_id):
    lines = []
    bad = [
        ("plain_json", b'{"sensor_id": "sensor-001", "value": 21.5}'),
        ("short_header", b"\x00\x00\x01"),
        ("magic_01", b"\x01" + reading_frame(reading_id, "s", "temperature",
                                            1.0, T0)[1:]),
        ("empty", b""),
    ]
    for _, value in bad:
        lines.append(frames_line("sensor-readings", b"sensor-bad", value))
    # Non-finite values for one sensor around a valid one.
    for ts_offset, value in [(1000, 21.5), (2000, NAN), (3000, float("inf")),
                             (4000, float("-inf"))]:
        lines.append(frames_line("sensor-readings", b"sensor-010",
                                 reading_frame(reading_id, "sensor-010",
                                               "temperature", value,
                                               T0 + ts_offset)))
    # Valid multi-byte UTF-8 id, and an invalid one.
    lines.append(frames_line("sensor-readings", b"k",
                             reading_frame(reading_id, "capteur-\u00e9-01",
                                           "humidity", 40.0, T0)))
    lines.append(frames_line("sensor-readings", b"k",
                             reading_frame(reading_id,
                                           b"sensor-\xed\xa0\x80",
                                           "humidity", 40.0, T0)))
    # Ten readings, then five of them redelivered.
    for seq in list(range(10)) + list(range(5, 10)):
        lines.append(frames_line("sensor-readings", b"sensor-030",
                                 reading_frame(reading_id, "sensor-030",
                                               "temperature", 20.0 + seq,
                                               T0 + seq * 1000)))
    # Latest follows event time: seq 4 arrives after seq 6.
    for seq in [1, 2, 3, 5, 6, 4]:
        lines.append(frames_line("sensor-readings", b"sensor-050",
                                 reading_frame(reading_id, "sensor-050",
                                               "pressure", 1000.0 + seq,
                                               T0 + seq * 1000)))
    # Arrivals with a late and an out-of-order reading, lateness 5 min.
    for minute_s, value in [(10, 10), (40, 20), (90, 30), (420, 40),
                            (50, 50), (270, 60), (480, 70)]:
        lines.append(frames_line("sensor-readings", b"sensor-020",
                                 reading_frame(reading_id, "sensor-020",
                                               "temperature", value,
                                               T10 + minute_s * 1000)))
    return "".join(lines), bad


def reading_schema_id(workdir):
    """Starts nothing: the built-in registry numbers schemas in a fixed
    order, which `sluice run` reports at start-up."""
    probe = Sluice("--no-generators", workdir=workdir)
    log = probe.read_log()
    probe.stop()
    match = re.search(r"sensor-readings-value=(\d+)", log)
    assert match, log
    return int(match.group(1))


def main():
    workdir = tempfile.mkdtemp(prefix="sluice-cases-")
    reading_id = reading_schema_id(tempfile.mkdtemp(prefix="sluice-probe-"))
    text, bad = build_frames(reading_id)
    path = os.path.join(workdir, "cases.frames")
    with open(path, "w") as f:
        f.write(text)
    total = text.count("\n")

    sluice = Sluice("--no-generators", "--replay", path, "--format",
                    "frames", "--allowed-lateness-seconds", "300",
                    workdir=workdir)
    db = sqlite3.connect(sluice.db, timeout=10)

    def settled():
        readings = db.execute("SELECT count(*) FROM sensor_readings")
        dlq = db.execute("SELECT count(*) FROM dlq_errors")
        return (readings.fetchone()[0], dlq.fetchone()[0])

    # 1 + 1 + 10 + 6 + 7 rows stored; 4 framing + 3 non-finite + 1 UTF-8
    # errors dead-lettered; the 5 redeliveries absorbed.
    sluice.wait_until(lambda: settled() == (25, 8), "25 rows and 8 DLQ rows")
    metrics = sluice.get_text("/metrics")
    assert 'sluice_decode_errors_total{reason="bad_magic_byte"} 2' in metrics
    assert 'sluice_window_late_events_total 1' in metrics
    code = sluice.stop()
    assert code == 0, sluice.read_log()
    assert settled() == (25, 8), settled()

    reasons = {}
    for error, payload, cls, status in db.execute(
            "SELECT error, payload, error_class, status FROM dlq_errors"):
        reasons.setdefault(error.split(":")[0], []).append(
            (bytes(payload or b""), cls, status))
    assert len(reasons["bad_magic_byte"]) == 2, reasons
    assert reasons["truncated_header"][0][0] == bad[1][1], reasons
    assert reasons["empty_payload"][0][0] == b"", reasons
    assert len(reasons["non_finite_value"]) == 3, reasons
    assert reasons["non_finite_value"][0][1] == "validation", reasons
    assert len(reasons["invalid_utf8"]) == 1, reasons
    originals = {p for entries in reasons.values() for p, _, _ in entries}
    assert bad[0][1] in originals, "DLQ must keep the original bytes"

    # Windows: the late 10:00:50 reading corrects its window; the
    # redelivered readings are not counted twice.
    windows = dict(db.execute(
        "SELECT window_start_ms, count FROM aggregated_metrics "
        "WHERE sensor_id = 'sensor-020'").fetchall())
    avg = dict(db.execute(
        "SELECT window_start_ms, avg FROM aggregated_metrics "
        "WHERE sensor_id = 'sensor-020'").fetchall())
    assert windows[T10] == 3, windows
    assert abs(avg[T10] - 80 / 3) < 1e-9, windows
    assert windows[T10 + 60000] == 1, windows
    assert avg[T10 + 60000] == 30, windows
    assert windows[T10 + 240000] == 1, windows
    assert avg[T10 + 240000] == 60, windows
    assert windows[T10 + 420000] == 1, windows
    assert avg[T10 + 420000] == 40, windows
    assert windows[T10 + 480000] == 1, windows
    assert avg[T10 + 480000] == 70, windows
    n, mean = db.execute(
        "SELECT count, avg FROM aggregated_metrics "
        "WHERE sensor_id = 'sensor-030'").fetchone()
    assert (n, mean) == (10, 24.5), (n, mean)

    # The API, restarted on the same file, serves what is stored.
    sluice = Sluice("--no-generators", workdir=workdir)
    status, latest = sluice.get("/api/v1/sensors/latest?sensor_id=sensor-010")
    assert status == 200, latest
    assert latest["count"] == 1, latest
    assert latest["readings"][0]["value"] == 21.5, latest
    status, latest = sluice.get("/api/v1/sensors/latest?sensor_id=sensor-050"
                                "&limit=1")
    assert latest["readings"][0]["value"] == 1006.0, latest
    status, latest = sluice.get(
        "/api/v1/sensors/latest?sensor_id=capteur-%C3%A9-01")
    assert latest["readings"][0]["sensor_id"] == "capteur-\u00e9-01", latest
    status, stats = sluice.get("/api/v1/sensors/stats?from="
                               "2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z")
    by_id = {s["sensor_id"]: s for s in stats["stats"]}
    assert by_id["sensor-010"]["reading_count"] == 1, by_id
    assert by_id["sensor-010"]["avg_value"] == 21.5, by_id
    assert by_id["sensor-030"]["reading_count"] == 10, by_id
    assert "NaN" not in sluice.get_text("/api/v1/sensors/latest?limit=100")
    assert sluice.stop() == 0
    print("%d frames: stored, dead-lettered and aggregated as expected"
          % total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
