# SPDX-License-Identifier: Apache-2.0
"""NaN and infinities never reach an API response as a non-JSON token.

Readings with a quiet NaN, +Inf, -Inf and a signalling NaN in `value`
(framed as the producers frame them) are dead-lettered as
non_finite_value and stay out of latest and stats, so one valid reading of
21.5 is the sensor's whole story. Rows that another writer put straight
into the database (NaN, which SQLite keeps as NULL, and infinities) are
served as null, never as HTTP 500. HTTP ingest rejects NaN and out-of-range
numbers in the body. Every response is parsed with a strict JSON parser.
"""
import json
import os
import re
import sqlite3
import struct
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import Sluice, avro_string, reading_frame, strict_json, zigzag, \
    SENSOR_TYPES

SENSOR = "sensor-010"
QUIET_NAN = struct.pack("<d", float("nan"))
SIGNALLING_NAN = struct.pack("<Q", 0x7ff0000000000001)


def frame_with_value_bits(schema_id, ts_ms, value_bytes):
    """A reading frame of SENSOR whose double `value` has exactly these
    eight bytes, so a signalling NaN is not quieted by Python."""
    frame = bytearray(reading_frame(schema_id, SENSOR, "temperature", 0.0,
                                    ts_ms))
    offset = 5 + len(avro_string(SENSOR)) + \
        len(zigzag(SENSOR_TYPES.index("temperature")))
    frame[offset:offset + 8] = value_bytes
    return bytes(frame)


def reading_schema_id():
    probe = Sluice("--no-generators", "--no-detector")
    log = probe.read_log()
    probe.stop()
    match = re.search(r"sensor-readings-value=(\d+)", log)
    assert match, log
    return int(match.group(1))


def fetch_text(sluice, path, method="GET", body=None):
    req = urllib.request.Request(sluice.url(path), data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8")


class NonFiniteValues(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        schema_id = reading_schema_id()
        now_ms = int(time.time() * 1000) - 60000
        cls.t0 = now_ms
        values = [struct.pack("<d", 21.5), QUIET_NAN,
                  struct.pack("<d", float("inf")),
                  struct.pack("<d", float("-inf")), SIGNALLING_NAN]
        workdir = tempfile.mkdtemp(prefix="sluice-nonfinite-")
        path = os.path.join(workdir, "b14.frames")
        with open(path, "w") as f:
            for i, bits in enumerate(values):
                frame = frame_with_value_bits(schema_id, now_ms + i * 1000,
                                              bits)
                f.write("sensor-readings\t%s\t%s\n" %
                        (SENSOR.encode().hex(), frame.hex()))
        cls.sluice = Sluice("--no-generators", "--no-detector", "--replay",
                            path, "--format", "frames", workdir=workdir)
        db = sqlite3.connect(cls.sluice.db, timeout=30)
        cls.sluice.wait_until(
            lambda: db.execute("SELECT count(*) FROM dlq_errors WHERE error"
                               " LIKE 'non_finite_value%'").fetchone()[0] == 4,
            "four non_finite_value dead letters")
        db.close()

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()

    def get_strict(self, path):
        status, text = fetch_text(self.sluice, path)
        self.assertNotIn("NaN", text, path)
        self.assertNotIn("Infinity", text, path)
        return status, strict_json(text)

    def test_non_finite_readings_are_dead_lettered(self):
        db = sqlite3.connect(self.sluice.db, timeout=30)
        stored = db.execute("SELECT value FROM sensor_readings WHERE"
                            " sensor_id = ?", (SENSOR,)).fetchall()
        db.close()
        self.assertEqual(stored, [(21.5,)])

    def test_latest_and_stats_see_only_the_finite_value(self):
        status, latest = self.get_strict(
            "/api/v1/sensors/latest?sensor_id=" + SENSOR)
        self.assertEqual(status, 200)
        self.assertEqual([r["value"] for r in latest["readings"]], [21.5])
        status, stats = self.get_strict("/api/v1/sensors/stats")
        self.assertEqual(status, 200)
        row = [s for s in stats["stats"] if s["sensor_id"] == SENSOR][0]
        self.assertEqual(row["reading_count"], 1)
        self.assertEqual(row["avg_value"], 21.5)
        status, history = self.get_strict(
            "/api/v1/sensors/%s/history?points=10" % SENSOR)
        self.assertEqual(status, 200)
        self.assertEqual(sum(p["count"] for p in history["points"]), 1)
        self.assertEqual(history["points"][0]["avg"], 21.5)

    def test_rows_written_around_the_store_render_as_null(self):
        db = sqlite3.connect(self.sluice.db, timeout=30)
        with db:
            for i, value in enumerate([None, 9e999, -9e999]):
                ts = self.t0 + 10000 + i * 1000
                db.execute(
                    "INSERT INTO sensor_readings (timestamp_ms, sensor_id,"
                    " sensor_type, value, location, anomaly, battery_level,"
                    " signal_strength, ingested_at_ms, value_bits)"
                    " VALUES (?, 'nan-direct', 'temperature', ?, 'x', 0, 50,"
                    " -70, 1, ?)", (ts, value, i + 1))
            db.execute(
                "INSERT INTO alerts (alert_type, sensor_id, sensor_type,"
                " severity, message, value, anomaly_score, timestamp_ms,"
                " acknowledged, created_at_ms) VALUES ('threshold',"
                " 'nan-direct', 'temperature', 'warning', 'x', 9e999, NULL,"
                " ?, 0, ?)", (self.t0, self.t0))
        db.close()
        status, latest = self.get_strict(
            "/api/v1/sensors/latest?sensor_id=nan-direct")
        self.assertEqual(status, 200)
        self.assertEqual([r["value"] for r in latest["readings"]],
                         [None, None, None])
        for path in ["/api/v1/sensors/stats",
                     "/api/v1/sensors/nan-direct/history",
                     "/api/v1/sensors/latest?limit=100",
                     "/api/v1/alerts?sensor_id=nan-direct"]:
            status, body = self.get_strict(path)
            self.assertEqual(status, 200, path)
        _, alerts = self.get_strict("/api/v1/alerts?sensor_id=nan-direct")
        self.assertIsNone(alerts["alerts"][0]["value"])
        _, history = self.get_strict("/api/v1/sensors/nan-direct/history")
        self.assertEqual(history["count"], 0)

    def test_ingest_rejects_non_finite_numbers(self):
        item = {"sensor_id": "http-nan", "sensor_type": "temperature",
                "timestamp": int(time.time() * 1000) - 1000,
                "location": "lab",
                "metadata": {"battery_level": 50, "signal_strength": -60}}
        for token in ["NaN", "Infinity", "-Infinity", "1e999"]:
            body = json.dumps(dict(item, value=0.5)).replace(
                "0.5", token).encode()
            status, text = fetch_text(self.sluice,
                                      "/api/v1/sensors/readings", "POST",
                                      body)
            with self.subTest(token=token):
                self.assertEqual(status, 422, text)
                self.assertIn("invalid JSON", strict_json(text)["detail"])


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
