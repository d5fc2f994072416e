#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A retry schedule survives kill -9: a reading whose store write always
fails is retried, the process is killed after the second retry, and the
restarted process continues the attempt count from the stored row rather
than starting over, so the record is parked after exactly max-retries
retries in all."""
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile

from harness import Sluice, reading_frame

T0 = 1767225600000       # 2026-01-01T00:00:00Z
BINARY = os.environ["SLUICE_BINARY"]
MAX_RETRIES = 5
BUDGET = 1000
SETTINGS = ["--no-generators", "--no-detector",
            "--dlq-backoff-base-ms", "700", "--dlq-backoff-cap-ms", "700",
            "--dlq-jitter", "0", "--dlq-max-retries", str(MAX_RETRIES)]


def install_trigger(db_path):
    """Every insert of the 'stuck' reading fails and spends one unit of the
    budget, so the budget counts the attempts. RAISE(FAIL) keeps the
    budget update."""
    db = sqlite3.connect(db_path)
    db.executescript("""
        CREATE TABLE fail_budget (n INTEGER);
        INSERT INTO fail_budget VALUES (%d);
        CREATE TRIGGER stuck_fail BEFORE INSERT ON sensor_readings
        WHEN NEW.sensor_id = 'stuck'
        BEGIN
            UPDATE fail_budget SET n = n - 1;
            SELECT RAISE(FAIL, 'injected failure');
        END;
    """ % BUDGET)
    db.commit()
    db.close()


def main():
    workdir = tempfile.mkdtemp(prefix="sluice-dlq-restart-")
    db_path = os.path.join(workdir, "sluice.db")
    done = subprocess.run([BINARY, "migrate", "--db", db_path],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    install_trigger(db_path)

    frame = reading_frame(1, "stuck", "temperature", 22.5, T0)
    path = os.path.join(workdir, "stuck.frames")
    with open(path, "w") as f:
        f.write("sensor-readings\t%s\t%s\n" % (b"stuck".hex(), frame.hex()))

    db = sqlite3.connect(db_path, timeout=10)

    def row():
        return db.execute("SELECT status, retry_count FROM dlq_errors"
                          ).fetchone()

    first = Sluice(*SETTINGS, "--replay", path, "--format", "frames",
                   workdir=workdir)
    first.wait_until(lambda: row() is not None and row()[1] >= 2,
                     "two retries before the kill", timeout=60)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=30)
    before = row()
    assert before[0] in ("pending", "retrying"), before
    assert before[1] < MAX_RETRIES, before

    second = Sluice(*SETTINGS, workdir=workdir)
    second.wait_until(lambda: row()[0] == "dead", "the row parked",
                      timeout=60)
    assert second.stop() == 0, second.read_log()

    status, retries = row()
    assert status == "dead", row()
    assert retries == MAX_RETRIES, row()
    # One first attempt and MAX_RETRIES retries in all: the count went on
    # from where the killed process left it.
    attempts = BUDGET - db.execute("SELECT n FROM fail_budget").fetchone()[0]
    assert attempts == 1 + MAX_RETRIES, attempts
    assert db.execute("SELECT count(*) FROM sensor_readings").fetchone()[0] \
        == 0
    print("killed at retry %d; parked after %d retries and %d attempts"
          % (before[1], retries, attempts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
