# SPDX-License-Identifier: Apache-2.0
"""Starts `sluice run` on a free loopback port and talks to it over HTTP.

Used by the end-to-end tests; everything stays on 127.0.0.1 and in a
temporary directory.
"""
import atexit
import json
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def strict_json(text):
    """Parses JSON, rejecting NaN and Infinity, which are not JSON."""
    def reject(token):
        raise ValueError("non-standard JSON token " + token)
    return json.loads(text, parse_constant=reject)


_RUNNING = []


@atexit.register
def _kill_leftovers():
    """Kills servers a failed test left running, so none outlives it."""
    for proc in _RUNNING:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Sluice:
    """One `sluice run` process with its own database file."""

    def __init__(self, *args, workdir=None, wait=True):
        self.workdir = workdir or tempfile.mkdtemp(prefix="sluice-e2e-")
        self.db = os.path.join(self.workdir, "sluice.db")
        self.port = free_port()
        self.log_path = os.path.join(self.workdir, "sluice.log")
        binary = os.environ["SLUICE_BINARY"]
        cmd = [binary, "run", "--db", self.db,
               "--listen", "127.0.0.1:%d" % self.port] + list(args)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        _RUNNING.append(self.proc)
        if wait:
            self.wait_healthy()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def get(self, path):
        """Returns (status, parsed JSON body)."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=10) as r:
                return r.status, strict_json(r.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            return e.code, strict_json(e.read().decode("utf-8"))

    def get_text(self, path):
        with urllib.request.urlopen(self.url(path), timeout=10) as r:
            return r.read().decode("utf-8")

    def wait_healthy(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("sluice exited with %d:\n%s" %
                                     (self.proc.returncode, self.read_log()))
            try:
                status, _ = self.get("/")
                if status == 200:
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        raise AssertionError("API not healthy in time:\n" + self.read_log())

    def wait_until(self, predicate, what, timeout=120):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.2)
        raise AssertionError("timed out waiting for %s; last=%r\n%s" %
                             (what, last, self.read_log()))

    def stop(self, sig=signal.SIGTERM, timeout=60):
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        return code

    def read_log(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def shared_dir():
    path = os.environ.get("SLUICE_SHARED_DIR", "")
    return path if path and os.path.isdir(path) else None


# ---- Avro encoding of schemas/sensor_reading.avsc, for hand-made frames --

SENSOR_TYPES = ["temperature", "humidity", "pressure", "vibration", "power",
                "other"]


def zigzag(n):
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def avro_string(s):
    data = s.encode("utf-8") if isinstance(s, str) else s
    return zigzag(len(data)) + data


def reading_frame(schema_id, sensor_id, sensor_type, value, ts_ms,
                  location="lab", battery=90, signal=-60):
    """Frames one reading in the Confluent wire format."""
    body = (avro_string(sensor_id) +
            zigzag(SENSOR_TYPES.index(sensor_type)) +
            struct.pack("<d", value) +
            zigzag(ts_ms) +
            avro_string(location) +
            b"\x00" +                      # anomaly = false
            zigzag(battery) + zigzag(signal) +
            zigzag(0))                     # unit: null branch
    return b"\x00" + struct.pack(">I", schema_id) + body
