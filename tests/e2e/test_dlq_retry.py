#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Dead-letter retries through the real `sluice run`:

- frames that cannot be decoded (bad magic byte, unknown schema id) are
  parked as dead at once, with retry_count 0, and never loop;
- a reading whose store write a real SQLite trigger fails twice is retried
  by the handler and ends resolved with retry_count 2, stored once;
- a reading that keeps failing is parked after the last retry, and after
  the trigger is dropped, `sluice dlq replay ID` brings it to resolved;
- the operator tools and the HTTP endpoints list, show and replay rows.
"""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from harness import Sluice, reading_frame

T0 = 1767225600000       # 2026-01-01T00:00:00Z
HERE = os.path.dirname(os.path.abspath(__file__))
B06 = os.path.join(HERE, "..", "fixtures", "cases", "B06")
BINARY = os.environ["SLUICE_BINARY"]


def frames_line(topic, key, value):
    return "%s\t%s\t%s\n" % (topic, key.hex(), value.hex())


def fixture_bytes(name):
    with open(os.path.join(B06, name)) as f:
        return bytes.fromhex(f.read().strip())


def sluice_cli(*args):
    """Runs the binary; returns (exit code, stdout, stderr)."""
    done = subprocess.run([BINARY] + list(args), capture_output=True,
                          text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def install_triggers(db_path):
    """Creates two failure budgets and the triggers that spend them: the
    'flaky' reading fails twice, the 'stuck' one until its trigger is
    dropped. RAISE(FAIL) aborts the insert but keeps the budget update."""
    db = sqlite3.connect(db_path)
    db.executescript("""
        CREATE TABLE fail_budget (sensor TEXT PRIMARY KEY, n INTEGER);
        INSERT INTO fail_budget VALUES ('flaky', 2), ('stuck', 1000);
        CREATE TRIGGER flaky_fail BEFORE INSERT ON sensor_readings
        WHEN NEW.sensor_id = 'flaky'
             AND (SELECT n FROM fail_budget WHERE sensor = 'flaky') > 0
        BEGIN
            UPDATE fail_budget SET n = n - 1 WHERE sensor = 'flaky';
            SELECT RAISE(FAIL, 'injected failure');
        END;
        CREATE TRIGGER stuck_fail BEFORE INSERT ON sensor_readings
        WHEN NEW.sensor_id = 'stuck'
             AND (SELECT n FROM fail_budget WHERE sensor = 'stuck') > 0
        BEGIN
            UPDATE fail_budget SET n = n - 1 WHERE sensor = 'stuck';
            SELECT RAISE(FAIL, 'injected failure');
        END;
    """)
    db.commit()
    db.close()


def post(sluice, path):
    req = urllib.request.Request(sluice.url(path), data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode("utf-8"))


def rows_by_error(db):
    out = {}
    for row in db.execute(
            "SELECT id, error, error_class, status, retry_count, payload "
            "FROM dlq_errors"):
        out[row[1].split(":")[0]] = row
    return out


def row_of(db, sensor_key):
    return db.execute(
        "SELECT id, status, retry_count, error_class FROM dlq_errors "
        "WHERE key = ?", (sensor_key,)).fetchone()


def check_no_subcommand():
    code, _, err = sluice_cli("dlq")
    assert code == 2, code
    assert "sluice run" in err, err
    assert "Kafka" in err, err


def main():
    check_no_subcommand()
    workdir = tempfile.mkdtemp(prefix="sluice-dlq-")
    db_path = os.path.join(workdir, "sluice.db")
    code, _, err = sluice_cli("migrate", "--db", db_path)
    assert code == 0, err
    install_triggers(db_path)

    # The built-in registry numbers the reading schema 1 (see
    # test_pipeline_cases.py); no schema is registered under id 999.
    reading_id = 1
    unknown_id = reading_frame(999, "ghost", "temperature", 1.0, T0)
    lines = [
        frames_line("sensor-readings", b"bad-magic",
                    fixture_bytes("m1_plain_json.hex")),
        frames_line("sensor-readings", b"bad-magic-01",
                    fixture_bytes("m3_magic_01.hex")),
        frames_line("sensor-readings", b"ghost", unknown_id),
        frames_line("sensor-readings", b"flaky",
                    reading_frame(reading_id, "flaky", "temperature", 21.5,
                                  T0 + 1000)),
        frames_line("sensor-readings", b"stuck",
                    reading_frame(reading_id, "stuck", "temperature", 22.5,
                                  T0 + 2000)),
    ]
    path = os.path.join(workdir, "dlq.frames")
    with open(path, "w") as f:
        f.write("".join(lines))

    sluice = Sluice("--no-generators", "--no-detector", "--replay", path,
                    "--format", "frames", "--dlq-backoff-base-ms", "200",
                    "--dlq-backoff-cap-ms", "1000", "--dlq-jitter", "0",
                    "--dlq-max-retries", "2", workdir=workdir)
    assert sluice.db == db_path
    db = sqlite3.connect(db_path, timeout=10)

    def settled():
        flaky = row_of(db, b"flaky")
        stuck = row_of(db, b"stuck")
        return (flaky is not None and flaky[1] == "resolved" and
                stuck is not None and stuck[1] == "dead")

    sluice.wait_until(settled, "flaky resolved and stuck dead", timeout=60)

    # Permanent failures: dead at once, never retried.
    rows = rows_by_error(db)
    assert rows["bad_magic_byte"][3] == "dead", rows
    assert rows["bad_magic_byte"][4] == 0, rows
    assert rows["unknown_schema_id"][2] == "decode", rows
    assert rows["unknown_schema_id"][3] == "dead", rows
    assert rows["unknown_schema_id"][4] == 0, rows
    assert bytes(rows["unknown_schema_id"][5]) == unknown_id, rows
    magic = db.execute("SELECT count(*), max(retry_count) FROM dlq_errors "
                       "WHERE error LIKE 'bad_magic_byte%'").fetchone()
    assert magic == (2, 0), magic

    # Transient failure: two failed writes, then stored by retry 2.
    flaky = row_of(db, b"flaky")
    assert flaky[2] == 2, flaky
    assert flaky[3] == "storage", flaky
    assert db.execute("SELECT n FROM fail_budget WHERE sensor = 'flaky'"
                      ).fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM sensor_readings "
                      "WHERE sensor_id = 'flaky'").fetchone()[0] == 1

    # Exhausted retries: parked after retry 2, not stored.
    stuck = row_of(db, b"stuck")
    assert stuck[2] == 2, stuck
    assert db.execute("SELECT count(*) FROM sensor_readings "
                      "WHERE sensor_id = 'stuck'").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM dlq_errors").fetchone()[0] == 5

    # Permanent rows stay dead while time passes: no retry loop.
    time.sleep(1.5)
    ghost = db.execute("SELECT status, retry_count FROM dlq_errors "
                       "WHERE error LIKE 'unknown_schema_id%'").fetchone()
    assert ghost == ("dead", 0), ghost

    metrics = sluice.get_text("/metrics")
    assert "sluice_dlq_resolved_total 1" in metrics, metrics
    assert "sluice_dlq_retries_total 4" in metrics, metrics
    assert "sluice_dlq_parked_total 4" in metrics, metrics
    assert "sluice_dlq_pending_records_max" in metrics, metrics

    # HTTP: list with filters, a missing row, invalid parameters.
    status, body = sluice.get("/api/v1/dlq?status=dead&limit=10")
    assert status == 200, body
    assert body["count"] == 4, body
    assert {e["status"] for e in body["entries"]} == {"dead"}, body
    status, body = sluice.get("/api/v1/dlq?topic=sensor-readings")
    assert body["count"] == 5, body
    status, body = sluice.get("/api/v1/dlq?status=bogus")
    assert status == 422, body
    assert "status" in body["detail"], body
    status, body = sluice.get("/api/v1/dlq?limit=0")
    assert status == 422, body
    status, body = sluice.get("/api/v1/dlq/999999")
    assert status == 404, body
    status, body = sluice.get("/api/v1/dlq/%d" % stuck[0])
    assert status == 200, body
    assert body["payload_hex"] == lines[4].split("\t")[2].strip(), body
    assert body["key_hex"] == b"stuck".hex(), body

    # HTTP replay of a permanent failure: one more attempt, dead again.
    ghost_id = db.execute("SELECT id FROM dlq_errors "
                          "WHERE error LIKE 'unknown_schema_id%'").fetchone()[0]
    status, body = post(sluice, "/api/v1/dlq/%d/replay" % ghost_id)
    assert status == 202, body
    status, body = sluice.get("/api/v1/dlq/%d/replay" % ghost_id)
    assert status == 405, body
    status, body = post(sluice, "/api/v1/dlq/999999/replay")
    assert status == 404, body
    sluice.wait_until(lambda: db.execute(
        "SELECT status, retry_count FROM dlq_errors WHERE id = ?",
        (ghost_id,)).fetchone() == ("dead", 1), "replayed decode failure dead")

    # CLI: list and show while `sluice run` is running.
    code, out, err = sluice_cli("dlq", "list", "--status", "dead", "--db",
                                db_path)
    assert code == 0, err
    assert out.count("\n") == 5, out     # header and 4 rows
    assert "unknown_schema_id" in out, out
    code, out, err = sluice_cli("dlq", "show", str(stuck[0]), "--db", db_path)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["payload"]["sensor_id"] == "stuck", shown
    assert shown["payload"]["value"] == 22.5, shown
    code, out, err = sluice_cli("dlq", "show", str(ghost_id), "--db", db_path)
    assert json.loads(out)["payload"] is None, out
    code, _, err = sluice_cli("dlq", "list", "--status", "nope", "--db",
                              db_path)
    assert code == 2, err
    # A mistyped path is an error, not an empty list in a new database.
    missing = db_path + ".missing"
    code, _, err = sluice_cli("dlq", "list", "--db", missing)
    assert code == 2, err
    assert "cannot read" in err, err
    assert not os.path.exists(missing)
    # Only pending and dead rows can be replayed, one by one or by status.
    code, _, err = sluice_cli("dlq", "replay", "--status", "resolved",
                              "--db", db_path)
    assert code == 2, err

    # The cause is fixed; the operator replays the parked record.
    db.execute("DROP TRIGGER stuck_fail")
    db.commit()
    code, out, err = sluice_cli("dlq", "replay", str(stuck[0]), "--db",
                                db_path)
    assert code == 0, err
    sluice.wait_until(lambda: row_of(db, b"stuck")[1] == "resolved",
                      "replayed stuck row resolved", timeout=30)
    assert db.execute("SELECT count(*) FROM sensor_readings "
                      "WHERE sensor_id = 'stuck'").fetchone()[0] == 1
    code, _, err = sluice_cli("dlq", "replay", str(stuck[0]), "--db", db_path)
    assert code == 1, "a resolved row cannot be replayed"

    assert sluice.stop() == 0, sluice.read_log()
    print("dead-letter retries, parking and replays behave as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
