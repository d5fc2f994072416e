# SPDX-License-Identifier: Apache-2.0
"""Starts `sluice registry` on a free loopback port and talks to its REST
API, and encodes readings with python3-avro in the Confluent wire format,
for the schema registry's end-to-end tests."""
import atexit
import datetime
import io
import json
import os
import signal
import struct
import subprocess
import time
import urllib.error
import urllib.request

import avro.io

from harness import free_port, strict_json

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

_RUNNING = []


@atexit.register
def kill_leftovers():
    """Kills the registries a failed test left running."""
    for proc in _RUNNING:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def read_text(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8")


class Registry:
    """One `sluice registry` process on a loopback port (a free one unless
    given), keeping its schemas in store (an SQLite path or a
    postgresql:// URL)."""

    def __init__(self, binary, store, log_path, port=None):
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = log_path
        # A restarted registry appends to the log of the first one.
        started = read_text(log_path).count("listening") \
            if os.path.exists(log_path) else 0
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [binary, "registry", "--store", store, "--registry-listen",
             "127.0.0.1:%d" % self.port], stdout=self.log,
            stderr=subprocess.STDOUT)
        _RUNNING.append(self.proc)
        deadline = time.time() + 30
        while read_text(log_path).count("listening") <= started:
            assert self.proc.poll() is None, "registry exited:\n" + \
                read_text(log_path)
            assert time.time() < deadline, "registry did not start:\n" + \
                read_text(log_path)
            time.sleep(0.1)

    def request(self, method, path, body=None):
        """Returns (HTTP status, parsed JSON reply)."""
        data = json.dumps(body).encode("utf-8") if body is not None else None
        req = urllib.request.Request(self.url + path, data=data,
                                     method=method,
                                     headers={"Content-Type": CONTENT_TYPE})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, strict_json(r.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            return e.code, strict_json(e.read().decode("utf-8"))

    def register(self, subject, schema_text):
        """Posts a schema as the next version of subject."""
        return self.request("POST", "/subjects/%s/versions" % subject,
                            {"schema": schema_text})

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.log.close()
        assert code == 0, "registry exited with %d:\n%s" % (
            code, read_text(self.log_path))


def to_datum(reading):
    """Returns reading as python3-avro takes it: a timestamp-millis value
    is a datetime there, and epoch milliseconds in reading."""
    datum = dict(reading)
    datum["timestamp"] = EPOCH + datetime.timedelta(
        milliseconds=reading["timestamp"])
    return datum


def from_datum(datum):
    """Returns a datum python3-avro decoded, with epoch milliseconds."""
    reading = dict(datum)
    reading["timestamp"] = (datum["timestamp"] - EPOCH) // \
        datetime.timedelta(milliseconds=1)
    return reading


def encode_body(schema, reading):
    """Encodes reading as the Avro binary body of schema."""
    out = io.BytesIO()
    avro.io.DatumWriter(schema).write(to_datum(reading),
                                      avro.io.BinaryEncoder(out))
    return out.getvalue()


def frames_line(schema, schema_id, reading):
    """Returns a line of a `--format frames` replay file: the reading on
    sensor-readings, keyed by its sensor_id, framed with schema_id."""
    value = struct.pack(">bI", 0, schema_id) + encode_body(schema, reading)
    return "sensor-readings\t%s\t%s\n" % (
        reading["sensor_id"].encode("utf-8").hex(), value.hex())
