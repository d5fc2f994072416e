# SPDX-License-Identifier: Apache-2.0
"""Runs sluice's distributed mode as separate processes for the
test_distributed*.py scripts: librdkafka's mock Kafka cluster
(sluice_mock_cluster), a throwaway PostgreSQL server on a unix socket,
`sluice registry`, and any number of `sluice process`, `sluice replay` and
`sluice api` processes started against them.

Everything listens on 127.0.0.1 or on a socket in a temporary folder.
Every process started here is killed, and every folder removed, at exit.
"""
import atexit
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from harness import free_port, strict_json

# Topics the roles use, created before any role starts: clients that
# create the same topic at once on the mock cluster can wait out the
# CreateTopics timeout (10 s seen with librdkafka's mock cluster).
TOPICS = ("sensor-readings", "ecommerce-events", "dlq-messages",
          "system-alerts")

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
    """Starts cmd with stderr (and stdout unless given) appended to
    log_path; the process is killed at exit if still running."""
    log = open(log_path, "ab")
    proc = subprocess.Popen(cmd, stdout=kwargs.pop("stdout", log),
                            stderr=log, **kwargs)
    log.close()
    _PROCESSES.append(proc)
    return proc


def read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def wait_until(predicate, what, logs, timeout=180, step=0.5):
    """Calls predicate until it returns a true value and returns that.
    Raises AssertionError with the tails of logs after timeout seconds."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(step)
    raise AssertionError("timed out waiting for %s; last=%r\n%s" % (
        what, last, "\n".join(read_file(p)[-4000:] for p in logs)))


def stop(proc, name, log_path, sig=signal.SIGTERM, timeout=60):
    """Stops proc with sig and checks that it exited with status 0 within
    timeout seconds."""
    proc.send_signal(sig)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s did not exit within %d s of signal %d:\n%s"
                             % (name, timeout, sig, read_file(log_path)[-3000:]))
    assert code == 0, "%s exited with %d:\n%s" % (name, code,
                                                  read_file(log_path))


def http_get(port, path):
    """Returns (status, parsed JSON body) of a GET on 127.0.0.1:port."""
    url = "http://127.0.0.1:%d%s" % (port, path)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, strict_json(r.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        return e.code, strict_json(e.read().decode("utf-8"))


def api_status(port):
    """Returns the status of GET / on port, or None while nothing listens."""
    try:
        return http_get(port, "/")[0]
    except (urllib.error.URLError, ConnectionError, OSError):
        return None


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
        self.start()
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

    def start(self):
        """Starts the server on the same data folder and socket."""
        self._run(["pg_ctl", "start", "-w", "-s", "-D", self.data, "-l",
                   os.path.join(self.dir, "server.log")])

    def stop(self):
        """Stops the server with fast shutdown: open sessions are ended."""
        subprocess.run(self.prefix + [os.path.join(self.bin_dir, "pg_ctl"),
                                      "stop", "-w", "-s", "-m", "fast", "-D",
                                      self.data], capture_output=True,
                       timeout=60)

    def psql(self, sql, db="sluice"):
        """Runs sql and returns its unaligned output, stripped."""
        done = subprocess.run(
            ["psql", "-h", self.dir, "-U", "postgres", "-d", db, "-tAqc",
             sql], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
        return done.stdout.decode("utf-8").strip()


class Cluster:
    """The shared parts of a distributed run: a work folder, the mock
    Kafka cluster with TOPICS of `partitions` partitions each, PostgreSQL
    and `sluice registry`. Roles are started with role()."""

    def __init__(self, name, partitions=6):
        self.binary = os.environ["SLUICE_BINARY"]
        self.work = tempfile.mkdtemp(prefix="sluice-%s-" % name)
        # SLUICE_E2E_KEEP=1 keeps the logs for a look after the run.
        if os.environ.get("SLUICE_E2E_KEEP") == "1":
            print("logs in %s" % self.work, flush=True)
        else:
            _CLEANUPS.append(lambda: shutil.rmtree(self.work,
                                                   ignore_errors=True))
        topics = []
        for topic in TOPICS:
            topics += ["--topic", "%s:%d" % (topic, partitions)]
        self.mock = start([os.environ["SLUICE_MOCK_CLUSTER"], "--brokers",
                           "1"] + topics, self.log("cluster"),
                          stdout=subprocess.PIPE, stdin=subprocess.PIPE)
        self.brokers = self.mock.stdout.readline().decode().strip()
        assert self.brokers.startswith(("127.0.0.1:", "localhost:")), \
            "unexpected bootstrap address %r" % self.brokers

        self.pg = Postgres()
        registry_port = free_port()
        # NOTE: the PostgreSQL store keeps no schemas table rows (its
        # schema calls return "invalid argument"), so the registry keeps
        # its schemas in an SQLite file of its own.
        self.registry = start(
            [self.binary, "registry", "--store",
             os.path.join(self.work, "registry.db"), "--registry-listen",
             "127.0.0.1:%d" % registry_port], self.log("registry"))
        wait_until(lambda: "listening" in read_file(self.log("registry")),
                   "the registry to listen", [self.log("registry")],
                   timeout=30)
        self.registry_url = "http://127.0.0.1:%d" % registry_port
        self.kafka_args = ["--bus", "kafka", "--kafka-brokers", self.brokers,
                           "--registry-url", self.registry_url]

    def path(self, name):
        return os.path.join(self.work, name)

    def log(self, name):
        return self.path(name + ".log")

    def role(self, name, args, log_name=None):
        """Starts `sluice NAME ARGS...` on the cluster's Kafka and
        registry, logging to LOG_NAME.log (default: name)."""
        return start([self.binary, name] + list(args) + self.kafka_args,
                     self.log(log_name or name))

    def process(self, log_name, extra=(), session_timeout_ms=None):
        """Starts `sluice process` on PostgreSQL and waits until it has
        migrated the database and started. session_timeout_ms shortens
        the consumer session: after a kill -9 the group hands the dead
        member's partitions on only when its session expired (librdkafka's
        default is 45 s)."""
        args = ["--store", self.pg.url, "--batch-timeout-ms", "20"]
        if session_timeout_ms:
            args += ["--kafka-properties",
                     "consumer.session.timeout.ms=%d,"
                     "consumer.heartbeat.interval.ms=%d" % (
                         session_timeout_ms, session_timeout_ms // 6)]
        proc = self.role("process", args + list(extra), log_name)
        wait_until(lambda: ("started bus=kafka" in
                            read_file(self.log(log_name))) or
                   proc.poll() is not None,
                   "%s to start" % log_name, [self.log(log_name)], timeout=60)
        assert proc.poll() is None, read_file(self.log(log_name))
        return proc

    def replay_sequence(self, rows, sensors, speed):
        """Writes write_sequence_csv's readings, stamped from two hours
        ago, and starts `sluice replay` of them at speed times the
        recorded pace. Returns the replay process."""
        csv_path = self.path("readings.csv")
        write_sequence_csv(csv_path, rows, sensors,
                           int(time.time() * 1000) - 2 * 3600 * 1000)
        return self.role("replay", ["--format", "sensor-csv", "--speed",
                                    speed, csv_path])

    def count(self, table="sensor_readings"):
        return int(self.pg.psql("SELECT count(*) FROM %s" % table))

    def close(self):
        """Stops the registry and the mock cluster; checks they exit 0."""
        stop(self.registry, "registry", self.log("registry"))
        self.mock.stdin.close()
        assert self.mock.wait(timeout=30) == 0


def write_sequence_csv(path, rows, sensors, start_ms):
    """Writes rows readings in sensor-csv format. Reading i belongs to
    sensor i % sensors, is stamped start_ms + (i // sensors) * 1000 and has
    the value i, so the stored values are the sequence 0 .. rows-1 and
    gaps and duplicates show in plain SQL."""
    with open(path, "w") as f:
        f.write("sensor_id,sensor_type,value,timestamp\n")
        for i in range(rows):
            f.write("seq-%03d,temperature,%d,%d\n" %
                    (i % sensors, i, start_ms + (i // sensors) * 1000))


def check_sequence(pg, rows, sensors):
    """Checks that sensor_readings contains each reading of write_sequence_csv
    exactly once and that the DLQ is empty. Returns a summary line."""
    stats = pg.psql(
        "SELECT count(*), count(DISTINCT (sensor_id, timestamp_ms)), "
        "count(DISTINCT value), min(value), max(value), sum(value), "
        "count(DISTINCT sensor_id) FROM sensor_readings").split("|")
    count, keys, values, low, high, total, distinct_sensors = (
        int(float(x)) for x in stats)
    assert count == rows, "stored %d readings, expected %d" % (count, rows)
    assert keys == rows, "%d distinct (sensor_id, timestamp) keys" % keys
    assert values == rows, "%d distinct values" % values
    assert (low, high) == (0, rows - 1), (low, high)
    # Exact in double precision: every partial sum is an integer < 2^53.
    assert total == rows * (rows - 1) // 2, "value checksum %d" % total
    assert distinct_sensors == sensors, distinct_sensors
    dlq = int(pg.psql("SELECT count(*) FROM dlq_errors"))
    assert dlq == 0, "dlq_errors has %d rows: %s" % (
        dlq, pg.psql("SELECT error_class, error FROM dlq_errors LIMIT 5"))
    return "%d readings stored once each, values 0..%d sum %d, DLQ empty" % (
        count, high, total)
