#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Replays a real NAB series through `sluice run` and checks over HTTP that
what is stored equals what the CSV holds: row count, min, max, mean and the
last readings."""
import csv
import datetime
import os
import sys
import tempfile

from harness import Sluice, shared_dir

NAB_FILE = ("data/nab/data/realKnownCause/"
            "machine_temperature_system_failure.csv")


def nab_csv():
    shared = shared_dir()
    if shared:
        path = os.path.join(shared, NAB_FILE)
        assert os.path.exists(path), "shared data present but %s missing" % path
        return path
    # Without the shared data set, a generated series in the same format.
    print("NOTE: no shared data folder; replaying a generated series")
    path = os.path.join(tempfile.mkdtemp(), "generated.csv")
    start = datetime.datetime(2013, 12, 2, 21, 15)
    with open(path, "w") as f:
        f.write("timestamp,value\n")
        for i in range(5000):
            t = start + datetime.timedelta(minutes=5 * i)
            f.write("%s,%.8f\n" % (t.strftime("%Y-%m-%d %H:%M:%S"),
                                   70 + (i % 97) * 0.37 - (i % 13)))
    return path


def load_series(path):
    rows = []
    with open(path) as f:
        for rec in csv.DictReader(f):
            ts = datetime.datetime.strptime(rec["timestamp"],
                                            "%Y-%m-%d %H:%M:%S")
            rows.append((ts.replace(tzinfo=datetime.timezone.utc),
                         float(rec["value"])))
    return rows


def iso(ts):
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (
        ts.microsecond // 1000)


def main():
    path = nab_csv()
    rows = load_series(path)
    values = [v for _, v in rows]
    first = min(ts for ts, _ in rows)
    last = max(ts for ts, _ in rows)
    query_range = "from=%s&to=%s" % (
        iso(first), iso(last + datetime.timedelta(seconds=1)))

    sluice = Sluice("--no-generators", "--replay", path,
                    "--sensor-id", "machine-1", "--sensor-type",
                    "temperature", "--speed", "max")

    def stored_count():
        status, body = sluice.get("/api/v1/sensors/stats?" + query_range)
        if status != 200 or not body["stats"]:
            return 0
        return body["stats"][0]["reading_count"] == len(rows) and body

    body = sluice.wait_until(stored_count, "all %d rows stored" % len(rows))
    stats = body["stats"]
    assert len(stats) == 1, stats
    s = stats[0]
    assert s["sensor_id"] == "machine-1", s
    assert s["sensor_type"] == "temperature", s
    assert s["reading_count"] == len(rows), (s, len(rows))
    assert s["min_value"] == min(values), (s["min_value"], min(values))
    assert s["max_value"] == max(values), (s["max_value"], max(values))
    mean = sum(values) / len(values)
    assert abs(s["avg_value"] - mean) <= 1e-9 * abs(mean), (s, mean)

    status, latest = sluice.get(
        "/api/v1/sensors/latest?sensor_id=machine-1&limit=5&" + query_range)
    assert status == 200, latest
    expected = sorted(rows, key=lambda r: r[0], reverse=True)[:5]
    assert latest["count"] == 5, latest
    for got, (ts, value) in zip(latest["readings"], expected):
        assert got["timestamp"] == iso(ts), (got, ts)
        assert got["value"] == value, (got, value)
        assert got["sensor_id"] == "machine-1"

    status, bad = sluice.get("/api/v1/sensors/latest?limit=0")
    assert status == 422, (status, bad)
    assert "limit" in bad["detail"], (status, bad)

    code = sluice.stop()
    assert code == 0, "exit status %d\n%s" % (code, sluice.read_log())
    print("replayed %d rows of %s: count, min, max, mean and latest match"
          % (len(rows), os.path.basename(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
