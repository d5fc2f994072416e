#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The crash campaign: kills and outages at random moments of a replay,
then an exact reconciliation of the input against the store and the
dead-letter queue.

Scenarios (each one a row of the closing table):
  run-kill       `sluice run` replays a file of bad frames and a sensor
                 CSV. It is killed with kill -9 at a random moment and
                 restarted on the same database with the same files, again
                 and again. Every reading ends up stored once and every
                 bad frame has one dlq_errors row.
  distributed    mock Kafka + PostgreSQL: kill -9 of process, detect, dlq,
                 registry, api and replay (replay restarts from the start),
                 PostgreSQL stopped for a few seconds, in a shuffled order.
  sigterm-run    SIGTERM to `sluice run` mid-replay: every record the replay
                 reported published is stored.
  full-disk      the SQLite database on a small tmpfs filled up: the
                 error shows in the log and the metrics, sluice keeps
                 running, and once space is freed every reading is stored.
  registry-wait  the schema registry down longer than the DLQ's retry
                 budget: readings with a cached writer id keep flowing, the
                 others wait in the DLQ and are stored once it is back.
  dlq-positions  two runs on one database, each with its own bad frames,
                 then the first file again: each bad frame keeps a DLQ
                 row of its own, and the repeat adds none.
  sigterm-process (--long only, reported, not asserted): how long
                 `sluice process` on Kafka takes to exit after SIGTERM
                 while a replay still publishes.

--short runs in `make test` (ctest chaos_short), --long in `make chaos`.
The random choices come from --seed (printed; SLUICE_CHAOS_SEED works too).
Needs SLUICE_BINARY and SLUICE_MOCK_CLUSTER like the e2e tests; the
full-disk scenario needs root for its tmpfs and is skipped otherwise.
"""
import argparse
import collections
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))

from cluster import (Cluster, api_status, check_sequence, read_file,  # noqa
                     start, stop, wait_until, write_sequence_csv)
from harness import Sluice, free_port, reading_frame  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))

FORMS = {
    # rows is the readings per scenario, kills the kill -9 of run-kill,
    # faults the faults of distributed and terms the SIGTERM runs. disk_mb
    # sizes the tmpfs of full-disk so that rows fit once the filler is gone.
    "short": dict(rows=20000, bad=40, kills=3, faults=7, terms=2,
                  dist_rows=20000, disk_mb=8),
    "long": dict(rows=100000, bad=200, kills=10, faults=21, terms=5,
                 dist_rows=100000, disk_mb=64),
}
SENSORS = 100
BINARY = os.environ.get("SLUICE_BINARY", "")


class Table:
    """The reconciliation table printed at the end."""

    COLUMNS = ("scenario", "runs", "kills", "records in", "stored",
               "in DLQ", "lost", "duplicated")

    def __init__(self):
        self.rows = []
        self.notes = []

    def add(self, *row):
        self.rows.append(row)
        print("chaos: %s" % dict(zip(self.COLUMNS, row)), flush=True)

    def note(self, text):
        self.notes.append(text)
        print("chaos: note: %s" % text, flush=True)

    def render(self):
        rows = list(self.rows)
        if rows:
            rows.append(("total",) + tuple(
                sum(r[i] for r in rows) for i in range(1, len(self.COLUMNS))))
        widths = [max(len(str(x)) for x in col)
                  for col in zip(self.COLUMNS, *rows)]
        lines = []
        for row in [self.COLUMNS] + rows:
            lines.append("  ".join(str(x).rjust(w) if i else str(x).ljust(w)
                                   for i, (x, w) in
                                   enumerate(zip(row, widths))))
        return "\n".join(lines + ["note: " + n for n in self.notes])


def reconcile_values(values, rows):
    """values: (value, count) pairs of the stored readings of a
    write_sequence_csv input of rows readings. Returns (stored, lost,
    duplicated): readings stored at least once, input readings not stored,
    extra copies."""
    seen = {}
    for value, count in values:
        seen[int(value)] = seen.get(int(value), 0) + int(count)
    stored = sum(1 for v in range(rows) if v in seen)
    extra = [v for v in seen if not 0 <= v < rows]
    assert not extra, "stored values outside the input: %r" % extra[:10]
    return stored, rows - stored, sum(c - 1 for c in seen.values())


def sqlite_values(db_path):
    db = sqlite3.connect(db_path, timeout=30)
    try:
        return db.execute("SELECT value, count(*) FROM sensor_readings "
                          "GROUP BY value").fetchall()
    finally:
        db.close()


def stale_latest(db_path):
    """Returns how many sensors with stored readings have no sensor_latest
    row at their newest event time. The processor writes these rows apart
    from the readings, so a kill in between must not leave one behind."""
    db = sqlite3.connect(db_path, timeout=30)
    try:
        return db.execute(
            "SELECT count(*) FROM (SELECT sensor_id, max(timestamp_ms) AS ts"
            " FROM sensor_readings GROUP BY sensor_id) AS r"
            " LEFT JOIN sensor_latest AS l USING (sensor_id)"
            " WHERE l.timestamp_ms IS NOT r.ts").fetchone()[0]
    finally:
        db.close()


def write_bad_frames(path, count, prefix="bad"):
    """Writes count frames that can never be stored, keyed PREFIX-NNNN: half
    with a wrong magic byte, half with an Avro body cut short."""
    with open(path, "w") as f:
        for i in range(count):
            key = "%s-%04d" % (prefix, i)
            good = reading_frame(1, key, "temperature", 1.0,
                                 1767225600000 + i)
            frame = b"\x07" + good[1:] if i % 2 else good[:9]
            f.write("sensor-readings\t%s\t%s\n" % (key.encode().hex(),
                                                   frame.hex()))


def check_bad_frames(db_path, count, prefix="bad"):
    """Returns (rows for bad frames, lost, duplicated): each bad frame must
    have exactly one dlq_errors row."""
    db = sqlite3.connect(db_path, timeout=30)
    try:
        keys = collections.Counter(
            bytes(k).decode("utf-8", "replace") for (k,) in
            db.execute("SELECT key FROM dlq_errors WHERE key IS NOT NULL"))
    finally:
        db.close()
    expected = ["%s-%04d" % (prefix, i) for i in range(count)]
    lost = [k for k in expected if keys[k] == 0]
    dup = sum(keys[k] - 1 for k in expected if keys[k] > 1)
    return count - len(lost), len(lost), dup


def run_settings(csv_path, *extra):
    return ["--no-generators", "--no-detector", "--replay", csv_path] + \
        list(extra)


def scenario_run_kill(form, rng, table):
    """kill -9 of `sluice run` mid-replay, restarted on the same files."""
    rows, bad = form["rows"], form["bad"]
    work = tempfile.mkdtemp(prefix="sluice-chaos-run-")
    csv_path = os.path.join(work, "readings.csv")
    frames = os.path.join(work, "bad.frames")
    write_sequence_csv(csv_path, rows, SENSORS, 1767225600000)
    write_bad_frames(frames, bad)
    # rows / SENSORS seconds of event time, replayed in about 5 s. The bad
    # frames come first, so that every run dead-letters them again.
    speed = str(rows // SENSORS // 5)
    args = ["--no-generators", "--no-detector", "--replay", frames,
            "--replay", csv_path, "--speed", speed]
    stored_at_kill = []
    for k in range(form["kills"]):
        s = Sluice(*args, workdir=work)
        time.sleep(rng.uniform(0.2, 6.0))
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait(timeout=30)
        s.log.close()
        stored_at_kill.append(sum(c for _, c in sqlite_values(s.db)))
    last = Sluice(*args, "--exit-when-idle", workdir=work, wait=False)
    code = last.proc.wait(timeout=300)
    assert code == 0, "the last run exited with %d:\n%s" % (
        code, last.read_log()[-3000:])
    stored, lost, dup = reconcile_values(sqlite_values(last.db), rows)
    in_dlq, bad_lost, bad_dup = check_bad_frames(last.db, bad)
    assert stale_latest(last.db) == 0, "sensor_latest behind the readings"
    table.add("run-kill", form["kills"] + 1, form["kills"], rows + bad,
              stored, in_dlq, lost + bad_lost, dup + bad_dup)
    print("chaos: run-kill stored counts at the kills: %s" % stored_at_kill)
    assert (lost, dup, bad_lost, bad_dup) == (0, 0, 0, 0), \
        (lost, dup, bad_lost, bad_dup)
    shutil.rmtree(work, ignore_errors=True)


def scenario_dlq_positions(form, rng, table):
    """Two runs of `sluice run` on one database, each with its own bad
    frames, and a third run with the first file again. The in-process bus
    numbers offsets from 0 in every run, so a dlq_errors row there is
    named by the record's content offset (a hash of key and value): every
    bad frame keeps a row of its own, and the repeat adds none."""
    work = tempfile.mkdtemp(prefix="sluice-chaos-positions-")
    db_path = os.path.join(work, "sluice.db")
    count = form["bad"]
    runs = ("first", "second", "first")
    own = []
    for prefix in runs:
        frames = os.path.join(work, prefix + ".frames")
        if not os.path.exists(frames):
            write_bad_frames(frames, count, prefix)
        s = Sluice("--no-generators", "--no-detector", "--exit-when-idle",
                   "--replay", frames, workdir=work, wait=False)
        code = s.proc.wait(timeout=120)
        s.log.close()
        assert code == 0, read_file(s.log_path)[-3000:]
        own.append(check_bad_frames(db_path, count, prefix)[0])
    final = [check_bad_frames(db_path, count, p) for p in ("first", "second")]
    db = sqlite3.connect(db_path, timeout=30)
    total = db.execute("SELECT count(*) FROM dlq_errors").fetchone()[0]
    db.close()
    lost = sum(f[1] for f in final)
    dup = sum(f[2] for f in final) + total - sum(f[0] for f in final)
    table.add("dlq-positions", len(runs), 0, 2 * count, 0, total, lost, dup)
    table.note("dlq-positions: of %d bad records per run, the runs %s found "
               "%s DLQ rows of their own" % (count, "/".join(runs), own))
    assert own == [count] * len(runs), own
    assert (lost, dup, total) == (0, 0, 2 * count), (lost, dup, total)
    shutil.rmtree(work, ignore_errors=True)


def wait_settled(log_path, clients, quiet_s=5.0):
    """Waits until clients consumers in log_path have partitions (each one's
    last rebalance line is an assignment) and the log has not changed for
    quiet_s seconds."""
    def settled():
        last = {}
        text = read_file(log_path)
        for m in re.finditer(r"partitions (assigned|revoked) client=(\S+)",
                             text):
            last[m.group(2)] = m.group(1)
        return len(last) >= clients and \
            all(v == "assigned" for v in last.values()) and text
    deadline = time.time() + 120
    while True:
        text = wait_until(settled, "consumers with partitions", [log_path],
                          timeout=max(1, deadline - time.time()))
        time.sleep(quiet_s)
        if read_file(log_path) == text:
            return


class Roles:
    """The long-running roles of the distributed scenario, restartable."""

    def __init__(self, cl):
        self.cl = cl
        self.api_port = free_port()
        self.starts = collections.Counter()
        self.procs = {}
        self.registry_addr = cl.registry_url[len("http://"):]
        for name in ("process", "detect", "dlq", "api"):
            self.start(name)

    def log(self, name):
        return self.cl.log("%s-%d" % (name, self.starts[name] - 1))

    def start(self, name):
        cl = self.cl
        log_name = "%s-%d" % (name, self.starts[name])
        self.starts[name] += 1
        if name == "process":
            proc = cl.process(log_name, session_timeout_ms=6000)
        elif name == "api":
            proc = cl.role("api", ["--store", cl.pg.url, "--listen",
                                   "127.0.0.1:%d" % self.api_port],
                           log_name)
        elif name == "registry":
            before = read_file(cl.log("registry")).count("listening")
            proc = start([cl.binary, "registry", "--store",
                          cl.path("registry.db"), "--registry-listen",
                          self.registry_addr], cl.log("registry"))
            wait_until(lambda: read_file(cl.log("registry")).count(
                "listening") > before, "the registry to listen again",
                [cl.log("registry")], timeout=30)
            cl.registry = proc
            return
        else:
            proc = cl.role(name, ["--store", cl.pg.url], log_name)
        self.procs[name] = proc

    def kill(self, name):
        proc = self.cl.registry if name == "registry" else self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def scenario_distributed(form, rng, table):
    """kill -9 of each role in turn, and a PostgreSQL outage, on mock Kafka
    and PostgreSQL."""
    rows = form["dist_rows"]
    cl = Cluster("chaos")
    roles = Roles(cl)
    csv_path = cl.path("readings.csv")
    write_sequence_csv(csv_path, rows, SENSORS,
                       int(time.time() * 1000) - 2 * 3600 * 1000)
    # The replay lasts about 4 s per planned fault, so most faults fall
    # while input streams in.
    speed = "%g" % max(1.0, rows / SENSORS / (4.0 * form["faults"]))
    replays = [0]

    def start_replay():
        replays[0] += 1
        return cl.role("replay", ["--format", "sensor-csv", "--speed", speed,
                                  csv_path], "replay-%d" % replays[0])

    replay = start_replay()
    kinds = ["process", "detect", "dlq", "registry", "api", "replay",
             "store"]
    plan = []
    while len(plan) < form["faults"]:
        round_ = list(kinds)
        rng.shuffle(round_)
        plan += round_
    plan = plan[:form["faults"]]
    kills = 0
    for fault in plan:
        time.sleep(rng.uniform(0.5, 4.0))
        stored = cl.count()
        if fault == "store":
            # PostgreSQL down for a few seconds under every role.
            cl.pg.stop()
            time.sleep(rng.uniform(1.0, 5.0))
            cl.pg.start()
        elif fault == "replay":
            replay.send_signal(signal.SIGKILL)
            replay.wait(timeout=30)
            kills += 1
            replay = start_replay()
        else:
            roles.kill(fault)
            kills += 1
            if fault == "registry":
                # Cached writer ids keep flowing while it is down.
                time.sleep(rng.uniform(0.5, 3.0))
            roles.start(fault)
        print("chaos: distributed %s at %d stored" % (fault, stored),
              flush=True)

    code = replay.wait(timeout=600)
    replay_log = read_file(cl.log("replay-%d" % replays[0]))
    assert code == 0, "replay exited with %d:\n%s" % (code, replay_log)
    assert "published=%d malformed=0 failed=0" % rows in replay_log, \
        replay_log[-3000:]
    logs = [roles.log("process")]
    wait_until(lambda: cl.count() >= rows, "%d rows in PostgreSQL" % rows,
               logs, timeout=300)
    wait_until(lambda: "partitions assigned" in read_file(logs[0]),
               "the last processor to get partitions", logs, timeout=60)
    time.sleep(2)  # a late duplicate delivery would show up as extra rows
    values = cl.pg.psql("SELECT value::bigint, count(*) FROM sensor_readings "
                        "GROUP BY value")
    pairs = [line.split("|") for line in values.splitlines() if line]
    stored, lost, dup = reconcile_values(pairs, rows)
    in_dlq = cl.count("dlq_errors")
    table.add("distributed", sum(roles.starts.values()) + replays[0] +
              read_file(cl.log("registry")).count("listening"), kills,
              rows, stored, in_dlq, lost, dup)
    print("chaos: distributed " + check_sequence(cl.pg, rows, SENSORS))
    api_log = roles.log("api")
    assert roles.procs["api"].poll() is None, read_file(api_log)[-3000:]
    wait_until(lambda: api_status(roles.api_port) == 200, "the API to answer",
               [api_log], timeout=30)
    # XXX: SIGTERM to a consumer still joining its group aborts it in
    # librdkafka 2.0.2 (see test_distributed_kill.py). The process role's
    # DLQ consumer shares a group with the dlq role, so each stop can start
    # a rebalance in another role. So each role is stopped only once every
    # consumer of it has partitions and its log has been quiet a while.
    for name in ("api", "detect", "process", "dlq"):
        if name != "api":
            wait_settled(roles.log(name), 2 if name == "process" else 1)
        stop(roles.procs[name], name, roles.log(name))
    cl.close()


def scenario_sigterm_run(form, rng, table):
    """SIGTERM mid-replay: what the replay published is stored."""
    rows = form["rows"]
    for _ in range(form["terms"]):
        work = tempfile.mkdtemp(prefix="sluice-chaos-term-")
        csv_path = os.path.join(work, "readings.csv")
        write_sequence_csv(csv_path, rows, SENSORS, 1767225600000)
        s = Sluice(*run_settings(csv_path, "--speed",
                                 str(rows // SENSORS // 5)), workdir=work)
        time.sleep(rng.uniform(0.3, 3.0))
        code = s.stop()
        log = read_file(s.log_path)
        assert code == 0, "sluice run exited with %d:\n%s" % (code,
                                                              log[-3000:])
        match = re.search(r"replay finished file=\S+ published=(\d+)", log)
        assert match, log[-3000:]
        published = int(match.group(1))
        stored, lost, dup = reconcile_values(sqlite_values(s.db), published)
        table.add("sigterm-run", 1, 0, published, stored, 0, lost, dup)
        assert (lost, dup) == (0, 0), (published, stored, lost, dup)
        shutil.rmtree(work, ignore_errors=True)


def metric(text, name):
    match = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(match.group(1)) if match else None


def scenario_full_disk(form, rng, table):
    """The SQLite database on a tmpfs that fills up, then gets space."""
    if os.geteuid() != 0:
        table.note("full-disk skipped: mounting a tmpfs needs root")
        return
    rows = form["rows"]
    work = tempfile.mkdtemp(prefix="sluice-chaos-disk-")
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o",
                    "size=%dm" % form["disk_mb"], "tmpfs", mnt], check=True)
    s = None
    try:
        db_path = os.path.join(mnt, "sluice.db")
        done = subprocess.run([BINARY, "migrate", "--db", db_path],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        filler = os.path.join(mnt, "filler")
        st = os.statvfs(mnt)
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - (512 << 10)))
        csv_path = os.path.join(work, "readings.csv")
        write_sequence_csv(csv_path, rows, SENSORS, 1767225600000)
        s = Sluice(*run_settings(csv_path, "--db", db_path), workdir=work)

        def full():
            text = s.get_text("/metrics")
            return metric(text, 'sluice_store_unavailable{stage="processor"}'
                          ) == 1 and text
        wait_until(full, "the store to report the full disk", [s.log_path],
                   timeout=120)
        log = s.read_log()
        assert "store write failed" in log, log[-3000:]
        assert "full" in log, log[-3000:]
        time.sleep(rng.uniform(1.0, 3.0))
        assert s.proc.poll() is None, log[-3000:]
        os.remove(filler)
        wait_until(lambda: sum(c for _, c in sqlite_values(db_path)) >= rows,
                   "%d readings stored once space returned" % rows,
                   [s.log_path], timeout=180)
        assert "store available again" in s.read_log()
        code = s.stop()
        assert code == 0, read_file(s.log_path)[-3000:]
        stored, lost, dup = reconcile_values(sqlite_values(db_path), rows)
        db = sqlite3.connect(db_path)
        in_dlq = db.execute("SELECT count(*) FROM dlq_errors").fetchone()[0]
        db.close()
        table.add("full-disk", 1, 0, rows, stored, in_dlq, lost, dup)
        assert (lost, dup, in_dlq) == (0, 0, 0), (lost, dup, in_dlq)
    finally:
        if s is not None and s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
        subprocess.run(["umount", mnt], check=False)
        shutil.rmtree(work, ignore_errors=True)


def v2_frame_line(schema, schema_id, i, value, ts_ms):
    from registry_process import frames_line
    return frames_line(schema, schema_id, {
        "sensor_id": "wait-%04d" % i, "sensor_type": "temperature",
        "value": float(value), "timestamp": ts_ms, "location": "hall",
        "anomaly": False, "unit": None, "firmware": "1.0",
        "metadata": {"battery_level": 80, "signal_strength": -50}})


def scenario_registry_wait(form, rng, table):
    """The registry is down for longer than the DLQ's retries last.
    Readings with a cached writer id are stored meanwhile. The others wait
    in the DLQ and are stored once when the registry is back."""
    import avro.schema
    from registry_process import Registry, read_text
    work = tempfile.mkdtemp(prefix="sluice-chaos-registry-")
    rows = form["bad"] * 10
    uncached = form["bad"]
    registry = Registry(BINARY, os.path.join(work, "registry.db"),
                        os.path.join(work, "registry.log"))
    v1 = registry.register("sensor-readings-value", read_text(
        os.path.join(ROOT, "schemas", "sensor_reading.avsc")))[1]["id"]
    v2_text = read_text(os.path.join(ROOT, "tests", "fixtures", "schemas",
                                     "sensor_reading_v2.avsc"))
    v2 = registry.register("sensor-readings-value", v2_text)[1]["id"]
    fifo = os.path.join(work, "input.frames")
    os.mkfifo(fifo)
    feed = os.open(fifo, os.O_RDWR)
    # Three retries of about 0.2, 0.4, 0.8 s: far shorter than the outage.
    s = Sluice("--registry-url", registry.url, "--no-generators",
               "--no-detector", "--replay", fifo, "--format", "frames",
               "--dlq-backoff-base-ms", "200", "--dlq-backoff-cap-ms",
               "1000", "--dlq-max-retries", "3", workdir=work)
    port = registry.port
    registry.proc.send_signal(signal.SIGKILL)
    registry.proc.wait()
    registry.log.close()
    ts = int(time.time() * 1000) - 60000
    v2_schema = avro.schema.parse(v2_text)
    lines = []
    for i in range(rows):
        frame = reading_frame(v1, "seq-%03d" % (i % SENSORS), "temperature",
                              float(i), ts + (i // SENSORS) * 1000)
        lines.append("sensor-readings\t%s\t%s\n" % (
            ("seq-%03d" % (i % SENSORS)).encode().hex(), frame.hex()))
    for i in range(uncached):
        lines.append(v2_frame_line(v2_schema, v2, i, rows + i, ts + i))
    os.write(feed, "".join(lines).encode("ascii"))
    os.close(feed)

    def count(sql):
        db = sqlite3.connect(s.db, timeout=30)
        try:
            return db.execute(sql).fetchone()[0]
        finally:
            db.close()
    wait_until(lambda: count("SELECT count(*) FROM sensor_readings WHERE "
                             "sensor_id LIKE 'seq-%'") == rows,
               "the readings with a cached id stored", [s.log_path])
    waiting = "SELECT count(*) FROM dlq_errors WHERE error LIKE " \
        "'registry_unavailable%' AND status IN ('pending', 'retrying')"
    wait_until(lambda: count(waiting) == uncached,
               "the uncached readings waiting in the DLQ", [s.log_path])
    # Well past the retry budget of about 1.4 s.
    time.sleep(rng.uniform(4.0, 6.0))
    dead = count("SELECT count(*) FROM dlq_errors WHERE status = 'dead'")
    assert dead == 0, "%d readings parked during the registry outage" % dead
    registry = Registry(BINARY, os.path.join(work, "registry.db"),
                        os.path.join(work, "registry.log"), port)
    wait_until(lambda: count("SELECT count(DISTINCT sensor_id) FROM "
                             "sensor_readings WHERE sensor_id LIKE 'wait-%'"
                             ) == uncached,
               "the waiting readings stored", [s.log_path], timeout=120)
    wait_until(lambda: count("SELECT count(*) FROM dlq_errors WHERE status "
                             "<> 'resolved'") == 0,
               "every DLQ row resolved", [s.log_path], timeout=60)
    assert s.stop() == 0, read_file(s.log_path)[-3000:]
    registry.stop()
    values = sqlite_values(s.db)
    stored, lost, dup = reconcile_values(
        [(v, c) for v, c in values if v < rows], rows)
    waited = count("SELECT count(*) FROM sensor_readings WHERE sensor_id "
                   "LIKE 'wait-%'")
    table.add("registry-wait", 1, 1, rows + uncached, stored + waited,
              count("SELECT count(*) FROM dlq_errors WHERE status <> "
                    "'resolved'"), lost, dup + waited - uncached)
    assert (lost, dup, waited) == (0, 0, uncached), (lost, dup, waited)
    shutil.rmtree(work, ignore_errors=True)


def scenario_sigterm_process(form, rng, table):
    """Reports what `sluice process` on Kafka does after SIGTERM while it
    is behind a replay that still publishes: the known problem is that it
    goes on consuming until one poll finds nothing ready."""
    cl = Cluster("term")
    rows = form["dist_rows"]
    process = cl.process("process-0")
    # At full speed the replay publishes faster than one processor stores,
    # so a backlog builds up.
    replay = cl.replay_sequence(rows, SENSORS, "max")
    wait_until(lambda: cl.count() > 0, "the first readings stored",
               [cl.log("process-0")], timeout=120)
    time.sleep(rng.uniform(0.5, 2.0))
    at_signal = cl.count()
    began = time.time()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=120)
        outcome = "exited with %d after %.1f s" % (process.returncode,
                                                  time.time() - began)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        outcome = "still running after 120 s, killed"
    table.note("sigterm-process: %s; stored %d readings at SIGTERM and %d "
               "at exit, of %d; the replay was %s" % (
                   outcome, at_signal, cl.count(), rows,
                   "still publishing" if replay.poll() is None else "done"))
    replay.wait(timeout=300)
    cl.close()


SCENARIOS = collections.OrderedDict([
    ("run-kill", scenario_run_kill),
    ("dlq-positions", scenario_dlq_positions),
    ("sigterm-run", scenario_sigterm_run),
    ("full-disk", scenario_full_disk),
    ("registry-wait", scenario_registry_wait),
    ("distributed", scenario_distributed),
    ("sigterm-process", scenario_sigterm_process),
])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--short", action="store_const", dest="form",
                      const="short")
    form.add_argument("--long", action="store_const", dest="form",
                      const="long")
    parser.add_argument("--seed", type=int,
                        default=int(os.environ.get("SLUICE_CHAOS_SEED", "0")))
    parser.add_argument("--only", default="",
                        help="comma-separated scenario names")
    opts = parser.parse_args()

    opts.form = opts.form or "short"
    seed = opts.seed or random.SystemRandom().randrange(1, 2**31)
    print("chaos: %s campaign, seed %d (--seed %d repeats it)" % (
        opts.form, seed, seed), flush=True)
    rng = random.Random(seed)
    names = [n for n in opts.only.split(",") if n] or [
        n for n in SCENARIOS if opts.form == "long" or n != "sigterm-process"]
    table = Table()
    began = time.time()

    failed = None
    for name in names:
        try:
            SCENARIOS[name](FORMS[opts.form], rng, table)
        except AssertionError as e:
            failed = "%s: %s" % (name, e)
            break
    print("\n" + table.render())
    print("chaos: seed %d, %.0f s" % (seed, time.time() - began))
    if failed:
        print("FAIL: " + failed, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
