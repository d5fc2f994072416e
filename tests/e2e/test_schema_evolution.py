#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Evolves the sensor reading schema through `sluice registry` on a
throwaway PostgreSQL server, and checks what the registry and the
processor do with each version.

- The registry keeps ids, subjects and versions in PostgreSQL: a restarted
  registry serves the same ids and gives a re-registered schema its id.
- Version 2 (an optional field with a default) is accepted under BACKWARD,
  the default. Frames written with it by python3-avro are consumed by
  `sluice run` and stored under version 1, its reader schema. So are
  frames of a version with a new enum symbol, read as the enum default.
- While the registry is down, a frame whose writer id sluice has cached is
  stored, and one with an id it has not fetched waits in the DLQ as
  retryable until the registry is back.
- While PostgreSQL is down the registry answers HTTP 500 with
  error_code 50001, and it serves the same ids once the server is back.
- Breaking changes get HTTP 409 with error_code 409 and the reason. PUT
  /config and PUT /config/{subject} change the decision as the Confluent
  registry's levels NONE, FORWARD and FULL do.
- Levels are kept in the store: on PostgreSQL and on SQLite a level set
  with PUT /config/{subject} survives a restart of `sluice registry`, and
  two registry processes on one PostgreSQL database apply each other's
  levels. DELETE /config/{subject} returns the subject to the global
  level.
- A schema registered under several subjects has one id on both stores.

Everything listens on 127.0.0.1 or on a unix socket in a temporary
folder, and every process started here is stopped at exit.
"""
import os
import shutil
import sqlite3
import sys
import tempfile
import time

import avro.schema

from cluster import Postgres
from harness import Sluice
from registry_process import Registry, frames_line, read_text

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "schemas")
SUBJECT = "sensor-readings-value"

def schema_file(name):
    if name == "v1":
        return read_text(os.path.join(ROOT, "schemas", "sensor_reading.avsc"))
    return read_text(os.path.join(FIXTURES, "sensor_reading_%s.avsc" % name))


def registered_id(registry, subject, name):
    status, body = registry.register(subject, schema_file(name))
    assert status == 200, (subject, name, status, body)
    assert isinstance(body.get("id"), int) and body["id"] > 0, body
    return body["id"]


def assert_incompatible(registry, subject, name, level, field):
    """Checks a 409 whose message names the level and the field."""
    status, body = registry.register(subject, schema_file(name))
    assert status == 409, (subject, name, status, body)
    assert body.get("error_code") == 409, body
    message = body.get("message", "")
    assert "incompatible" in message, message
    assert level in message, message
    assert field in message, message


def check_registration_and_restart(pg, registry_factory):
    """Registers v1 and v2, rejects breaking versions, then restarts the
    registry and checks that PostgreSQL kept ids and versions."""
    registry = registry_factory()
    status, body = registry.request("GET", "/config")
    assert (status, body) == (200, {"compatibilityLevel": "BACKWARD"}), body

    v1 = registered_id(registry, SUBJECT, "v1")
    assert registered_id(registry, SUBJECT, "v1") == v1
    v2 = registered_id(registry, SUBJECT, "v2")
    assert v2 != v1, (v1, v2)
    assert_incompatible(registry, SUBJECT, "required_site", "BACKWARD", "site")
    assert_incompatible(registry, SUBJECT, "value_string", "BACKWARD",
                        "value")
    status, body = registry.request("GET", "/subjects/%s/versions" % SUBJECT)
    assert (status, body) == (200, [1, 2]), body
    assert pg.psql("SELECT count(*) FROM schemas") == "2"
    registry.stop()

    # A second registry process on the same database.
    registry = registry_factory()
    status, body = registry.request("GET", "/schemas/ids/%d" % v2)
    assert status == 200, (status, body)
    assert "firmware" in body["schema"], body
    status, body = registry.request("GET",
                                    "/subjects/%s/versions/latest" % SUBJECT)
    assert status == 200, (status, body)
    assert (body["id"], body["version"]) == (v2, 2), body
    assert registered_id(registry, SUBJECT, "v1") == v1
    assert registered_id(registry, SUBJECT, "v2") == v2
    assert pg.psql("SELECT count(*) FROM schemas") == "2"
    return registry, v1, v2


def check_levels(registry):
    """Checks the decisions of each level on a subject of its own, the
    global level, and an invalid level."""
    expected = {
        # level: (accepted, [(rejected, field named in the reason)])
        "FORWARD": (["v2", "required_site"], [("no_location", "location"),
                                              ("value_string", "value")]),
        "FULL": (["v2", "enum_co2"], [("required_site", "site"),
                          ("no_location", "location"),
                          ("value_string", "value")]),
        "NONE": (["value_string", "required_site"], []),
    }
    for level, (accepted, rejected) in expected.items():
        subject = "evolution-%s-value" % level.lower()
        status, body = registry.request("PUT", "/config/" + subject,
                                        {"compatibility": level})
        assert (status, body) == (200, {"compatibility": level}), body
        status, body = registry.request("GET", "/config/" + subject)
        assert (status, body) == (200, {"compatibilityLevel": level}), body
        registered_id(registry, subject, "v1")
        for name, field in rejected:
            assert_incompatible(registry, subject, name, level, field)
        for name in accepted:
            registered_id(registry, subject, name)

    # BACKWARD accepts a dropped field, which FORWARD rejected above.
    registered_id(registry, "evolution-backward-value", "v1")
    registered_id(registry, "evolution-backward-value", "no_location")

    # The global level applies to subjects without a level of their own.
    status, body = registry.request("PUT", "/config",
                                    {"compatibility": "NONE"})
    assert (status, body) == (200, {"compatibility": "NONE"}), body
    registered_id(registry, "evolution-global-value", "v1")
    registered_id(registry, "evolution-global-value", "value_string")
    status, body = registry.request("GET", "/config/evolution-full-value")
    assert body == {"compatibilityLevel": "FULL"}, body
    status, body = registry.request("PUT", "/config",
                                    {"compatibility": "BACKWARD"})
    assert status == 200, (status, body)
    registered_id(registry, "evolution-default-value", "v1")
    assert_incompatible(registry, "evolution-default-value", "value_string",
                        "BACKWARD", "value")

    status, body = registry.request("PUT", "/config/" + SUBJECT,
                                    {"compatibility": "SIDEWAYS"})
    assert status == 422, (status, body)
    assert body.get("error_code") == 42203, body
    status, body = registry.request("GET", "/config/" + SUBJECT)
    assert body == {"compatibilityLevel": "BACKWARD"}, body


def level_of(registry, subject=None):
    path = "/config" if subject is None else "/config/" + subject
    status, body = registry.request("GET", path)
    assert status == 200, (path, status, body)
    return body["compatibilityLevel"]


def put_level(registry, subject, level):
    path = "/config" if subject is None else "/config/" + subject
    status, body = registry.request("PUT", path, {"compatibility": level})
    assert (status, body) == (200, {"compatibility": level}), body


def check_two_registries_share_levels(registry, second_factory, v1):
    """Starts a second registry process on the same PostgreSQL database and
    checks that each one applies the levels the other sets, and that one
    schema under two subjects has one id."""
    subject = "evolution-shared-value"
    other = second_factory()
    try:
        assert registered_id(other, subject, "v1") == v1
        put_level(registry, subject, "FULL")
        assert level_of(other, subject) == "FULL"
        assert_incompatible(other, subject, "required_site", "FULL", "site")

        put_level(other, subject, "NONE")
        assert level_of(registry, subject) == "NONE"
        registered_id(registry, subject, "value_string")

        # DELETE returns the deleted level, and the subject follows the global
        # level again, on both processes.
        put_level(registry, None, "FORWARD")
        status, body = other.request("DELETE", "/config/" + subject)
        assert (status, body) == (200, {"compatibilityLevel": "NONE"}), body
        assert level_of(registry, subject) == "FORWARD"
        status, body = registry.request("DELETE", "/config/" + subject)
        assert status == 404, (status, body)
        assert body.get("error_code") == 40401, body
        status, body = other.request("DELETE", "/config")
        assert (status, body) == (200, {"compatibilityLevel": "FORWARD"}), \
            body
        assert level_of(registry, subject) == "BACKWARD"
    finally:
        other.stop()


def check_levels_survive_restart(registry, registry_factory):
    """Sets a subject level and the global level, restarts the registry and
    checks both. Returns the new registry."""
    subject = "evolution-restart-value"
    put_level(registry, subject, "FORWARD_TRANSITIVE")
    put_level(registry, None, "FULL")
    registry.stop()
    registry = registry_factory()
    assert level_of(registry, subject) == "FORWARD_TRANSITIVE"
    assert level_of(registry) == "FULL"
    assert level_of(registry, "evolution-other-value") == "FULL"
    put_level(registry, None, "BACKWARD")
    return registry


def check_sqlite_registry(binary, work):
    """Runs the level and shared-id checks on a registry that keeps its
    schemas in an SQLite file."""
    store = os.path.join(work, "registry.db")
    log_path = os.path.join(work, "registry-sqlite.log")

    def factory(port=None):
        return Registry(binary, store, log_path, port)

    registry = factory()
    v1 = registered_id(registry, SUBJECT, "v1")
    assert registered_id(registry, "evolution-shared-value", "v1") == v1
    assert registered_id(registry, SUBJECT, "v2") != v1
    registry = check_levels_survive_restart(registry, factory)
    status, body = registry.request("DELETE", "/config/" +
                                    "evolution-restart-value")
    assert (status, body) == \
        (200, {"compatibilityLevel": "FORWARD_TRANSITIVE"}), body
    assert level_of(registry, "evolution-restart-value") == "BACKWARD"
    registry.stop()


def v2_readings():
    now_ms = int(time.time() * 1000) - 60000
    base = {"sensor_type": "temperature", "location": "hall-2",
            "anomaly": False,
            "metadata": {"battery_level": 88, "signal_strength": -61}}
    return [
        dict(base, sensor_id="evo-1", value=21.25, timestamp=now_ms,
             unit="celsius", firmware="2.4.1"),
        dict(base, sensor_id="evo-2", value=-3.5, timestamp=now_ms + 1,
             unit=None, firmware=None),
        dict(base, sensor_id="evo-3", value=1013.0, timestamp=now_ms + 2,
             sensor_type="pressure", unit="hPa", firmware="ß-1"),
    ]


def check_v2_frames_stored(registry, v2, work):
    """Runs `sluice run` on a frames file written with v2, and with a later
    version that adds the sensor type co2. Checks that each reading is
    stored with its values under the v1 reader, co2 as the enum's default
    symbol "other"."""
    co2_id = registered_id(registry, SUBJECT, "enum_co2")
    assert co2_id not in (v2, None), co2_id
    v2_schema = avro.schema.parse(schema_file("v2"))
    writes = [(r, v2_schema, v2) for r in v2_readings()]
    co2 = dict(writes[0][0], sensor_id="evo-co2", sensor_type="co2",
               value=415.5, timestamp=writes[0][0]["timestamp"] + 3)
    del co2["firmware"]
    writes.append((co2, avro.schema.parse(schema_file("enum_co2")), co2_id))
    readings = [r for r, _, _ in writes]
    frames = os.path.join(work, "v2.frames")
    with open(frames, "w") as f:
        for reading, schema, schema_id in writes:
            f.write(frames_line(schema, schema_id, reading))

    os.mkdir(os.path.join(work, "run"))
    run = Sluice("--registry-url", registry.url, "--no-generators",
                 "--no-detector", "--replay", frames, "--format", "frames",
                 workdir=os.path.join(work, "run"))
    found = {}

    def all_stored():
        for r in readings:
            status, body = run.get("/api/v1/sensors/latest?sensor_id=" +
                                   r["sensor_id"])
            assert status == 200, (status, body)
            if body["count"] == 1:
                found[r["sensor_id"]] = body["readings"][0]
        return len(found) == len(readings)

    run.wait_until(all_stored, "the v2 readings in the API")
    for r in readings:
        got = found[r["sensor_id"]]
        expected_type = "other" if r["sensor_type"] == "co2" \
            else r["sensor_type"]
        assert got["sensor_type"] == expected_type, got
        assert got["value"] == r["value"], got
        assert got["location"] == r["location"], got
        assert got["unit"] == r["unit"], got
        assert got["metadata"] == r["metadata"], got
        assert "firmware" not in got, got
    status, body = run.get("/api/v1/dlq")
    assert (status, body["count"]) == (200, 0), body
    assert run.stop() == 0, run.read_log()

    db = sqlite3.connect(run.db)
    rows = db.execute("SELECT sensor_id, timestamp_ms, value, unit FROM "
                      "sensor_readings ORDER BY sensor_id").fetchall()
    db.close()
    assert rows == sorted((r["sensor_id"], r["timestamp"], r["value"],
                           r["unit"]) for r in readings), rows


def check_registry_outage(registry_factory, registry, v1, v2, work):
    """Stops the registry under a running `sluice run`: a frame with the
    writer id sluice has cached is stored at once, and one with an id it
    has not fetched yet goes to the DLQ as retryable. Once the registry is
    back on its port, the retry stores the reading."""
    schema = avro.schema.parse(schema_file("v2"))
    v1_schema = avro.schema.parse(schema_file("v1"))
    now_ms = int(time.time() * 1000) - 30000
    cached = dict(v2_readings()[0], sensor_id="outage-cached",
                  timestamp=now_ms)
    del cached["firmware"]
    uncached = dict(v2_readings()[0], sensor_id="outage-uncached",
                    timestamp=now_ms + 1)

    # Holding the FIFO open for writing keeps sluice's reader from seeing
    # the end of input, so frames can be fed after the registry is stopped.
    fifo = os.path.join(work, "outage.frames")
    os.mkfifo(fifo)
    feed = os.open(fifo, os.O_RDWR)
    os.mkdir(os.path.join(work, "outage"))
    run = Sluice("--registry-url", registry.url, "--no-generators",
                 "--no-detector", "--replay", fifo, "--format", "frames",
                 "--dlq-backoff-base-ms", "200", "--dlq-backoff-cap-ms",
                 "1000", "--dlq-max-retries", "100",
                 workdir=os.path.join(work, "outage"))
    port = registry.port
    registry.stop()

    for reading, schema_id, writer in ((cached, v1, v1_schema),
                                       (uncached, v2, schema)):
        os.write(feed, frames_line(writer, schema_id,
                                   reading).encode("ascii"))
    # The end of input makes the replay publish the records it has queued
    # (it sends them in batches of up to 1,000).
    os.close(feed)

    def stored(sensor_id):
        status, body = run.get("/api/v1/sensors/latest?sensor_id=" +
                               sensor_id)
        assert status == 200, (status, body)
        return body["count"]

    def dlq_entries():
        status, body = run.get("/api/v1/dlq")
        assert status == 200, (status, body)
        return body["entries"]

    run.wait_until(lambda: stored("outage-cached") == 1,
                   "the reading with a cached writer id")
    entries = run.wait_until(dlq_entries, "the DLQ row of the uncached id")
    assert len(entries) == 1, entries
    assert entries[0]["error_class"] == "processing", entries
    assert entries[0]["error"] == "registry_unavailable", entries
    assert entries[0]["status"] in ("pending", "retrying"), entries
    assert stored("outage-uncached") == 0

    registry = registry_factory(port)
    run.wait_until(lambda: stored("outage-uncached") == 1,
                   "the retried reading after the registry came back")
    run.wait_until(lambda: dlq_entries()[0]["status"] == "resolved",
                   "the DLQ row to be resolved")
    assert run.stop() == 0, run.read_log()
    return registry


def check_database_outage(pg, registry, v2):
    """Stops PostgreSQL under the registry: requests get HTTP 500 with
    error_code 50001, and once the server is back the registry reconnects
    and serves the same ids."""
    pg.stop()
    status, body = registry.request("GET", "/schemas/ids/%d" % v2)
    assert status == 500, (status, body)
    assert body.get("error_code") == 50001, body
    status, body = registry.register(SUBJECT, schema_file("v2"))
    assert status == 500, (status, body)
    assert registry.proc.poll() is None, read_text(registry.log_path)

    pg.start()
    # The store retries the connection with a backoff of at most 5 s.
    deadline = time.time() + 30
    while registry.request("GET", "/schemas/ids/%d" % v2)[0] != 200:
        assert time.time() < deadline, read_text(registry.log_path)
        time.sleep(0.2)
    assert registered_id(registry, SUBJECT, "v2") == v2


def main():
    binary = os.environ["SLUICE_BINARY"]
    work = tempfile.mkdtemp(prefix="sluice-evolution-")
    try:
        run_evolution(binary, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_evolution(binary, work):
    pg = Postgres()
    log_path = os.path.join(work, "registry.log")
    second_log = os.path.join(work, "registry-second.log")

    def registry_factory(port=None):
        return Registry(binary, pg.url, log_path, port)

    registry, v1, v2 = check_registration_and_restart(pg, registry_factory)
    check_v2_frames_stored(registry, v2, work)
    registry = check_registry_outage(registry_factory, registry, v1, v2,
                                     work)
    check_levels(registry)
    check_two_registries_share_levels(
        registry, lambda: Registry(binary, pg.url, second_log), v1)
    registry = check_levels_survive_restart(registry, registry_factory)
    check_database_outage(pg, registry, v2)
    registry.stop()
    check_sqlite_registry(binary, work)
    print("schema evolution: v1 id %d, v2 id %d on PostgreSQL; v2 frames "
          "stored under the v1 reader; levels kept across restarts on "
          "PostgreSQL and SQLite" % (v1, v2))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e, file=sys.stderr)
        sys.exit(1)
