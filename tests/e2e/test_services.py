#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks scripts/services, the local back end behind `make services`.
Start brings up the mock Kafka cluster, PostgreSQL and the registry and
writes settings that the roles run with unchanged. A processor there also
refreshes the materialized views, and SIGTERM stops it while a producer
keeps publishing. A second start changes nothing, and stop stops
everything and keeps the PostgreSQL data for the next start.

The back end lives in a temporary folder (SLUICE_SERVICES_DIR), the
registry on a free loopback port, PostgreSQL on a unix socket only.
"""
import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from harness import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "services")
ROWS = 300


def services(env, *args):
    done = subprocess.run([SCRIPT] + list(args), env=env, capture_output=True,
                          timeout=180)
    out = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert done.returncode == 0, "services %s failed:\n%s" % (args, out)
    return out


def role_env(env, services_dir):
    """The environment a role gets after sourcing .services/env."""
    done = subprocess.run(
        ["sh", "-c", ". \"$1\" && env", "sh",
         os.path.join(services_dir, "env")],
        env=env, capture_output=True, timeout=30, check=True)
    pairs = [line.split("=", 1) for line in
             done.stdout.decode().splitlines() if "=" in line]
    return dict(pairs)


def psql(env, sql):
    url = env["SLUICE_STORE"]
    done = subprocess.run(["psql", url, "-tAqc", sql], capture_output=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    return done.stdout.decode().strip()


def write_csv(path):
    start_ms = int(time.time() * 1000) - ROWS * 1000
    with open(path, "w") as f:
        f.write("sensor_id,sensor_type,value,timestamp,location\n")
        for i in range(ROWS):
            f.write("svc-%d,temperature,%.1f,%d,lab\n" %
                    (i % 3, 20 + i * 0.1, start_ms + i * 1000))


def wait_count(env, want, log, timeout=120):
    deadline = time.time() + timeout
    n = -1
    while time.time() < deadline:
        n = int(psql(env, "SELECT count(*) FROM sensor_readings"))
        if n >= want:
            return n
        time.sleep(0.5)
    with open(log) as f:
        raise AssertionError("stored %d of %d:\n%s" % (n, want, f.read()))


def wait_views(env, want, log, timeout=60):
    deadline = time.time() + timeout
    n = ""
    while time.time() < deadline:
        n = psql(env, "SELECT coalesce(sum(count), 0) FROM sensor_stats")
        if n == str(want):
            return
        time.sleep(0.5)
    with open(log) as f:
        raise AssertionError("sensor_stats counts %s of %d:\n%s" %
                             (n, want, f.read()))


def check_stop_under_live_input(binary, env, services_dir):
    """SIGTERM stops `sluice process` after the batch in hand even while a
    producer keeps publishing: Kafka keeps what it did not commit."""
    logs = [os.path.join(services_dir, n + ".log") for n in ("produce2",
                                                             "process2")]
    with open(logs[0], "wb") as f:
        producer = subprocess.Popen([binary, "produce", "--rate", "3000"],
                                    env=env, stdout=f, stderr=f)
    with open(logs[1], "wb") as f:
        process = subprocess.Popen([binary, "process"], env=env, stdout=f,
                                   stderr=f)
    try:
        before = int(psql(env, "SELECT count(*) FROM sensor_readings"))
        wait_count(env, before + 500, logs[1])
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            raise AssertionError("sluice process still runs 15 s after "
                                 "SIGTERM while input keeps arriving")
        assert code == 0, code
        assert producer.poll() is None, "the producer stopped first"
    finally:
        for proc in (process, producer):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)


def main():
    binary = os.environ["SLUICE_BINARY"]
    services_dir = tempfile.mkdtemp(prefix="sluice-svc-")
    env = dict(os.environ)
    for key in list(env):
        if key.startswith("SLUICE_") and key not in (
                "SLUICE_BINARY", "SLUICE_MOCK_CLUSTER", "SLUICE_PG_BINDIR"):
            del env[key]
    env.update({"SLUICE_SERVICES_DIR": services_dir,
                "SLUICE_REGISTRY_LISTEN": "127.0.0.1:%d" % free_port(),
                "BUILD": os.path.dirname(binary)})
    atexit.register(lambda: shutil.rmtree(services_dir, ignore_errors=True))
    atexit.register(lambda: subprocess.run([SCRIPT, "stop"], env=env,
                                           capture_output=True, timeout=120))

    out = services(env, "start")
    assert "services: Kafka 127.0.0.1:" in out, out
    status = services(env, "status")
    for name in ("kafka", "registry", "postgres"):
        assert "%s: running" % name in status, status
    first_env = role_env(env, services_dir)
    assert first_env["SLUICE_BUS"] == "kafka", first_env
    assert first_env["SLUICE_REGISTRY_URL"] == (
        "http://" + env["SLUICE_REGISTRY_LISTEN"]), first_env
    # A second start leaves the running back end as it is.
    services(env, "start")
    assert role_env(env, services_dir) == first_env

    # A setting the caller exports wins over the written one.
    override = dict(env, SLUICE_REGISTRY_URL="http://127.0.0.1:1")
    assert role_env(override, services_dir)["SLUICE_REGISTRY_URL"] == \
        "http://127.0.0.1:1"

    csv_path = os.path.join(services_dir, "readings.csv")
    write_csv(csv_path)
    log = os.path.join(services_dir, "process.log")
    with open(log, "wb") as f:
        process = subprocess.Popen([binary, "process",
                                    "--views-refresh-seconds", "1"],
                                   env=first_env, stdout=f, stderr=f)
    try:
        done = subprocess.run([binary, "replay", "--format", "sensor-csv",
                               csv_path], env=first_env, capture_output=True,
                              timeout=180)
        assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
        assert wait_count(first_env, ROWS, log) == ROWS
        # The processor refreshes the materialized views on its interval.
        wait_views(first_env, ROWS, log)
    finally:
        process.terminate()
        process.wait(timeout=60)

    check_stop_under_live_input(binary, first_env, services_dir)
    kept = psql(first_env, "SELECT count(*) FROM sensor_readings")

    out = services(env, "stop")
    status = services(env, "status")
    for name in ("kafka", "registry", "postgres"):
        assert "%s: stopped" % name in status, status

    # PostgreSQL keeps its data; the mock cluster starts empty again.
    services(env, "start")
    second_env = role_env(env, services_dir)
    assert psql(second_env, "SELECT count(*) FROM sensor_readings") == kept
    services(env, "stop")
    print("services: %s readings through the local back end, kept across "
          "a restart" % kept)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e, file=sys.stderr)
        sys.exit(1)
