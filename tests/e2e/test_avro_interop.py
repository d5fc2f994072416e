#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks that Debian's python3-avro decodes the Avro frames sluice writes
and that sluice stores the frames python3-avro writes, both in the
Confluent wire format with ids from `sluice registry`.

- sluice to python3-avro: `sluice run` encodes an NDJSON reading that
  fails validation (humidity above 100), so the dead-letter queue keeps
  its exact bytes. The test reads them from the API, fetches the writer
  schema by the frame's id from the registry, decodes the body with
  python3-avro and compares every field, and checks that python3-avro
  encodes the same record to the same bytes.
- python3-avro to sluice: readings encoded by python3-avro, framed with
  the id the registry gave the schema, go through a frames file into
  `sluice run`, and are stored with the exact values.

The readings carry an enum, a double, a timestamp-millis long and strings
with non-ASCII UTF-8 (2-, 3- and 4-byte sequences).
"""
import io
import json
import os
import shutil
import sqlite3
import struct
import sys
import tempfile
import time
import urllib.request

import avro.io
import avro.schema

from harness import Sluice
from registry_process import (Registry, encode_body, frames_line,
                              from_datum, read_text)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SUBJECT = "sensor-readings-value"


def python_readings(now_ms):
    """Readings that python3-avro encodes for sluice to store."""
    base = {"anomaly": False, "unit": None,
            "metadata": {"battery_level": 73, "signal_strength": -67}}
    return [
        dict(base, sensor_id="café-1", sensor_type="humidity",
             value=47.123456789012345, timestamp=now_ms,
             location="Zürich – Halle 3 ☃", unit="%"),
        dict(base, sensor_id="東京-2", sensor_type="pressure",
             value=1013.2500000000001, timestamp=now_ms + 1,
             location="倉庫 🌡 north"),
        dict(base, sensor_id="plain-3", sensor_type="vibration",
             value=-0.0001220703125, timestamp=now_ms + 2,
             location="line-7", unit="mm/s²"),
    ]


def rejected_reading(now_ms):
    """A reading sluice encodes and then parks in the dead-letter queue,
    because humidity above 100 fails validation."""
    return {"sensor_id": "señor-sensor-9", "sensor_type": "humidity",
            "value": 150.25, "timestamp": now_ms + 3,
            "location": "Straße 5 – Kühlraum 🧊", "anomaly": False,
            "metadata": {"battery_level": 12, "signal_strength": -90},
            "unit": "%"}


def write_inputs(work, schema, schema_id, readings, rejected):
    frames = os.path.join(work, "python.frames")
    with open(frames, "w", encoding="utf-8") as f:
        for r in readings:
            f.write(frames_line(schema, schema_id, r))
    ndjson = os.path.join(work, "sluice.ndjson")
    with open(ndjson, "w", encoding="utf-8") as f:
        f.write(json.dumps(rejected, ensure_ascii=False) + "\n")
    return frames, ndjson


def check_python_readings_stored(run, readings):
    """Checks each python3-avro reading in the API and in the database."""
    for r in readings:
        status, body = run.get("/api/v1/sensors/latest?sensor_id=" +
                               urllib.request.quote(r["sensor_id"]))
        assert status == 200, (status, body)
        assert body["count"] == 1, body
        got = body["readings"][0]
        for field in ("sensor_id", "sensor_type", "value", "location",
                      "unit", "metadata", "anomaly"):
            assert got[field] == r[field], (field, got, r)

    db = sqlite3.connect(run.db)
    rows = db.execute(
        "SELECT sensor_id, sensor_type, value, timestamp_ms, location, unit,"
        " battery_level, signal_strength FROM sensor_readings"
        " ORDER BY timestamp_ms").fetchall()
    db.close()
    assert rows == [(r["sensor_id"], r["sensor_type"], r["value"],
                     r["timestamp"], r["location"], r["unit"],
                     r["metadata"]["battery_level"],
                     r["metadata"]["signal_strength"])
                    for r in readings], rows


def dead_letter_bytes(run):
    """Returns the payload of the only dead-letter row."""
    status, body = run.get("/api/v1/dlq")
    assert status == 200, (status, body)
    assert body["count"] == 1, body
    entry = body["entries"][0]
    assert entry["error_class"] == "validation", entry
    status, body = run.get("/api/v1/dlq/%d" % entry["id"])
    assert status == 200, (status, body)
    return bytes.fromhex(body["payload_hex"])


def check_sluice_frame_decodes(registry, frame, rejected):
    """Decodes a frame that sluice wrote, using python3-avro and the writer
    schema fetched by id, and checks that python3-avro encodes the decoded
    record to the same bytes."""
    assert len(frame) > 5, frame.hex()
    magic, schema_id = struct.unpack(">bI", frame[:5])
    assert magic == 0, frame.hex()
    status, body = registry.request("GET", "/schemas/ids/%d" % schema_id)
    assert status == 200, (status, body)
    writer = avro.schema.parse(body["schema"])

    stream = io.BytesIO(frame[5:])
    datum = avro.io.DatumReader(writer).read(avro.io.BinaryDecoder(stream))
    assert stream.tell() == len(frame) - 5, "bytes left after the record"
    assert from_datum(datum) == rejected, (datum, rejected)
    assert encode_body(writer, rejected) == frame[5:], frame.hex()
    return schema_id


def main():
    binary = os.environ["SLUICE_BINARY"]
    work = tempfile.mkdtemp(prefix="sluice-avro-")
    try:
        run_interop(binary, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_interop(binary, work):
    registry = Registry(binary, os.path.join(work, "registry.db"),
                        os.path.join(work, "registry.log"))
    v1_text = read_text(os.path.join(ROOT, "schemas", "sensor_reading.avsc"))
    status, body = registry.register(SUBJECT, v1_text)
    assert status == 200, (status, body)
    schema_id = body["id"]

    now_ms = int(time.time() * 1000) - 60000
    readings = python_readings(now_ms)
    rejected = rejected_reading(now_ms)
    frames, ndjson = write_inputs(work, avro.schema.parse(v1_text), schema_id,
                                  readings, rejected)

    run_dir = os.path.join(work, "run")
    os.mkdir(run_dir)
    run = Sluice("--registry-url", registry.url, "--no-generators",
                 "--no-detector", "--replay", frames, "--replay", ndjson,
                 workdir=run_dir)
    run.wait_until(lambda: run.get("/api/v1/dlq")[1]["count"] == 1 and
                   run.get("/api/v1/sensors/latest?limit=10")[1]["count"] ==
                   len(readings), "the stored readings and the DLQ row")
    check_python_readings_stored(run, readings)
    frame = dead_letter_bytes(run)
    assert check_sluice_frame_decodes(registry, frame, rejected) == schema_id
    assert run.stop() == 0, run.read_log()
    registry.stop()
    print("avro interop: %d python3-avro readings stored by sluice, one "
          "sluice frame (%d bytes) decoded by python3-avro" %
          (len(readings), len(frame)))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e, file=sys.stderr)
        sys.exit(1)
