#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs sluice in distributed mode as separate processes: librdkafka's mock
Kafka cluster (sluice_mock_cluster), a throwaway PostgreSQL server on a
unix socket, `sluice registry` on its own SQLite file, `sluice process`, `sluice replay` of a
generated sensor CSV and `sluice api`. Checks that every CSV row reaches
PostgreSQL once and that the API counts them.

Everything listens on 127.0.0.1 or on a socket in a temporary folder, and
every process started here is killed at exit.
"""
import atexit
import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from harness import free_port, strict_json

SENSORS = 5
READINGS_PER_SENSOR = 400
ROWS = SENSORS * READINGS_PER_SENSOR

_PROCESSES = []
_CLEANUPS = []


@atexit.register
def _stop_everything():
    """Kills what a failed test left running, then removes temp folders."""
    for proc in _PROCESSES:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for cleanup in reversed(_CLEANUPS):
        cleanup()


def start(cmd, log_path, **kwargs):
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=kwargs.pop("stdout", log),
                            stderr=log, **kwargs)
    _PROCESSES.append(proc)
    return proc


def read_file(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


class Postgres:
    """A PostgreSQL cluster in a temporary folder, reachable only through a
    unix socket there. Under root the server runs as the postgres user,
    because PostgreSQL refuses to run as root."""

    def __init__(self):
        self.bin_dir = self._find_bin_dir()
        self.dir = tempfile.mkdtemp(prefix="sluice-pg-")
        _CLEANUPS.append(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        self.prefix = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.prefix = ["/usr/sbin/runuser", "-u", "postgres", "--"]
        self.data = os.path.join(self.dir, "data")
        self._run(["initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                   "-E", "UTF8", "--no-sync"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\nlisten_addresses = ''\n"
                    "unix_socket_directories = '%s'\n"
                    "fsync = off\nsynchronous_commit = off\n"
                    "max_connections = 40\n" % self.dir)
        self._run(["pg_ctl", "start", "-w", "-s", "-D", self.data, "-l",
                   os.path.join(self.dir, "server.log")])
        _CLEANUPS.append(self.stop)
        self.psql("CREATE DATABASE sluice", db="postgres")
        self.url = "postgresql:///sluice?host=%s&user=postgres" % self.dir

    @staticmethod
    def _find_bin_dir():
        env = os.environ.get("SLUICE_PG_BINDIR")
        if env:
            return env
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise AssertionError("PostgreSQL server binaries not found: set "
                                 "SLUICE_PG_BINDIR or install postgresql")
        return os.path.dirname(found[-1])

    def _run(self, args):
        cmd = self.prefix + [os.path.join(self.bin_dir, args[0])] + args[1:]
        done = subprocess.run(cmd, capture_output=True, timeout=120)
        assert done.returncode == 0, "%s failed: %s" % (
            args[0], done.stderr.decode("utf-8", "replace"))

    def stop(self):
        subprocess.run(self.prefix + [os.path.join(self.bin_dir, "pg_ctl"),
                                      "stop", "-w", "-s", "-m", "fast", "-D",
                                      self.data], capture_output=True,
                       timeout=60)

    def psql(self, sql, db="sluice"):
        done = subprocess.run(
            ["psql", "-h", self.dir, "-U", "postgres", "-d", db, "-tAqc",
             sql], capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
        return done.stdout.decode("utf-8").strip()


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


def wait_until(predicate, what, logs, timeout=180):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError("timed out waiting for %s; last=%r\n%s" % (
        what, last, "\n".join(read_file(p)[-4000:] for p in logs)))


def http_get(port, path):
    url = "http://127.0.0.1:%d%s" % (port, path)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, strict_json(r.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        return e.code, strict_json(e.read().decode("utf-8"))


def api_status(port):
    try:
        return http_get(port, "/")[0]
    except (urllib.error.URLError, ConnectionError, OSError):
        return None


def stop(proc, name, log_path):
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    assert code == 0, "%s exited with %d:\n%s" % (name, code,
                                                  read_file(log_path))


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


def main():
    binary = os.environ["SLUICE_BINARY"]
    mock = os.environ["SLUICE_MOCK_CLUSTER"]
    work = tempfile.mkdtemp(prefix="sluice-dist-")
    _CLEANUPS.append(lambda: shutil.rmtree(work, ignore_errors=True))
    log = lambda name: os.path.join(work, name + ".log")  # noqa: E731

    # The topics exist before any role starts: clients that create the
    # same topic at once on the mock cluster can wait out the CreateTopics
    # timeout (10 s seen with librdkafka's mock cluster).
    topics = []
    for topic in ("sensor-readings", "ecommerce-events", "dlq-messages",
                  "system-alerts"):
        topics += ["--topic", topic + ":6"]
    cluster = start([mock, "--brokers", "1"] + topics, log("cluster"),
                    stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    brokers = cluster.stdout.readline().decode().strip()
    assert brokers.startswith("127.0.0.1:") or brokers.startswith(
        "localhost:"), "unexpected bootstrap address %r" % brokers

    pg = Postgres()
    registry_port = free_port()
    # NOTE: the PostgreSQL store keeps no schemas table rows (its schema
    # calls return "invalid argument"), so the registry keeps its schemas
    # in an SQLite file of its own.
    registry = start([binary, "registry", "--store",
                      os.path.join(work, "registry.db"),
                      "--registry-listen", "127.0.0.1:%d" % registry_port],
                     log("registry"))
    wait_until(lambda: "listening" in read_file(log("registry")),
               "the registry to listen", [log("registry")], timeout=30)
    common = ["--bus", "kafka", "--kafka-brokers", brokers,
              "--registry-url", "http://127.0.0.1:%d" % registry_port]

    check_invalid_settings(binary, brokers)

    process = start([binary, "process", "--store", pg.url,
                     "--batch-timeout-ms", "20"] + common, log("process"))
    # The role logs "started" after it migrated the database.
    wait_until(lambda: "started bus=kafka" in read_file(log("process")),
               "the processor to start", [log("process")], timeout=60)

    csv_path = os.path.join(work, "readings.csv")
    write_sensor_csv(csv_path)
    replay = start([binary, "replay", "--format", "sensor-csv", csv_path] +
                   common, log("replay"))
    count = lambda: int(pg.psql("SELECT count(*) FROM sensor_readings"))  # noqa

    # Stop the processor while the input arrives and start another: what
    # the first committed must be neither lost nor stored twice.
    wait_until(lambda: count() > 0, "the first stored rows", [log("process")])
    stop(process, "process", log("process"))
    stored_by_first = count()
    process = start([binary, "process", "--store", pg.url,
                     "--batch-timeout-ms", "20"] + common, log("process2"))

    code = replay.wait(timeout=300)
    assert code == 0, "replay exited with %d:\n%s" % (code,
                                                       read_file(log("replay")))
    wait_until(lambda: count() >= ROWS, "%d rows in PostgreSQL" % ROWS,
               [log("process"), log("process2")])
    assert process.poll() is None, read_file(log("process2"))
    time.sleep(1)  # a duplicate delivery would show up as extra rows
    assert count() == ROWS, count()
    sensors = pg.psql("SELECT count(DISTINCT sensor_id) FROM sensor_readings")
    assert int(sensors) == SENSORS, sensors

    api_port = free_port()
    api = start([binary, "api", "--store", pg.url, "--listen",
                 "127.0.0.1:%d" % api_port], log("api"))
    wait_until(lambda: api_status(api_port) == 200, "the API",
               [log("api")], timeout=30)
    status, body = http_get(api_port,
                            "/api/v1/sensors/stats?time_window_minutes=60")
    assert status == 200, (status, body)
    rows = [v for v in body.values() if isinstance(v, list)]
    assert len(rows) == 1, body
    per_sensor = {s["sensor_id"]: s["reading_count"] for s in rows[0]}
    assert len(per_sensor) == SENSORS, per_sensor
    for sensor_id, n in per_sensor.items():
        assert n == READINGS_PER_SENSOR, (sensor_id, n)

    stop(api, "api", log("api"))
    stop(process, "process", log("process2"))
    stop(registry, "registry", log("registry"))
    cluster.stdin.close()
    assert cluster.wait(timeout=30) == 0
    print("distributed: %d rows through Kafka into PostgreSQL, %d of them "
          "before the processor restart" % (ROWS, stored_by_first))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e, file=sys.stderr)
        sys.exit(1)
