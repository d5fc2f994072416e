#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Replays the NAB machine-temperature series, whose labelled windows mark
a known machine failure, through `sluice run` and checks over HTTP that the
detector flagged at least one reading inside a labelled window, with its
score, and reported its work in /metrics."""
import datetime
import json
import os
import random
import re
import sys
import tempfile

from harness import Sluice, shared_dir

SERIES = "realKnownCause/machine_temperature_system_failure.csv"
NAB_FILE = "data/nab/data/" + SERIES
LABELS = "data/nab/labels/combined_windows.json"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_time(text):
    """Parses NAB's "2013-12-10 06:25:00.000000" or an API timestamp."""
    text = text.replace("T", " ").rstrip("Z")
    return datetime.datetime.strptime(text[:19], TIME_FORMAT).replace(
        tzinfo=datetime.timezone.utc)


def generated_series():
    """Writes a series in NAB's format with one planted failure: a steady
    level with noise that collapses for four hours. Returns the path and
    the failure window."""
    print("NOTE: no shared data folder; replaying a generated series with "
          "a planted failure")
    rng = random.Random(7)
    path = os.path.join(tempfile.mkdtemp(), "generated.csv")
    start = datetime.datetime(2013, 12, 2, 21, 15)
    fail_from, fail_to = 3000, 3048
    with open(path, "w") as f:
        f.write("timestamp,value\n")
        for i in range(4000):
            t = start + datetime.timedelta(minutes=5 * i)
            value = 85 + rng.gauss(0, 1.5)
            if fail_from <= i < fail_to:
                value = 20 + rng.gauss(0, 3)
            f.write("%s,%.6f\n" % (t.strftime(TIME_FORMAT), value))
    window = (start + datetime.timedelta(minutes=5 * fail_from),
              start + datetime.timedelta(minutes=5 * fail_to))
    return path, [(window[0].replace(tzinfo=datetime.timezone.utc),
                   window[1].replace(tzinfo=datetime.timezone.utc))]


def nab_series():
    shared = shared_dir()
    if not shared:
        return generated_series()
    path = os.path.join(shared, NAB_FILE)
    labels = os.path.join(shared, LABELS)
    assert os.path.exists(path), "shared data present but %s missing" % path
    assert os.path.exists(labels), "shared data present but %s missing" % labels
    with open(labels) as f:
        windows = json.load(f)[SERIES]
    return path, [(parse_time(a), parse_time(b)) for a, b in windows]


def row_count(path):
    with open(path) as f:
        return sum(1 for _ in f) - 1


def metric_sum(text, name):
    """Sums every series of a metric family in Prometheus text."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^%s(\{[^}]*\})? (\S+)$" % re.escape(name), line)
        if m:
            total += float(m.group(2))
    return total


def main():
    path, windows = nab_series()
    rows = row_count(path)
    replay = ["--no-generators", "--replay", path, "--sensor-id",
              "machine-1", "--sensor-type", "temperature", "--speed", "max"]
    # A first pass trains and saves the model. At --speed max the stream
    # outruns background training on a busy machine, so a cold start may
    # score the first failure windows before any model exists; the second
    # pass starts with the saved model and scores every reading.
    models = tempfile.mkdtemp(prefix="sluice-models-")
    warmup = Sluice(*replay, "--exit-when-idle", "--detect-model-dir", models,
                    wait=False)
    assert warmup.proc.wait(timeout=300) == 0, warmup.read_log()
    assert os.listdir(models), "the first pass saved no model"

    sluice = Sluice(*replay, "--detect-model-dir", models)

    def detector_done():
        text = sluice.get_text("/metrics")
        return metric_sum(text, "sluice_detector_readings_total") >= rows \
            and text
    metrics = sluice.wait_until(detector_done,
                                "the detector to read %d rows" % rows)
    assert metric_sum(metrics, "sluice_detector_retrains_total") >= 1, \
        "no model was trained"

    def anomalies_in_windows():
        status, body = sluice.get("/api/v1/sensors/anomalies?limit=1000")
        assert status == 200, body
        hits = [a for a in body["anomalies"]
                if any(lo <= parse_time(a["timestamp"]) <= hi
                       for lo, hi in windows)]
        return hits and (body, hits)
    body, hits = sluice.wait_until(anomalies_in_windows,
                                   "an anomaly inside a labelled window")

    assert body["count"] == len(body["anomalies"]) > 0, body["count"]
    for a in body["anomalies"]:
        assert a["sensor_id"] == "machine-1", a
        assert a["anomaly"] is True, a
        score = a["anomaly_score"]
        assert isinstance(score, float) and -1.0 <= score < 0.0, a

    status, _ = sluice.get("/")
    assert status == 200
    code = sluice.stop()
    with open(sluice.log_path, encoding="utf-8", errors="replace") as f:
        log = f.read()
    assert code == 0, "exit status %d\n%s" % (code, log)
    assert "detected consumed=%d" % rows in log, log[-2000:]
    print("flagged %d readings of %s, %d of the newest %d inside the "
          "labelled failure windows" % (
              metric_sum(metrics, "sluice_detector_anomalies_total"),
              os.path.basename(path), len(hits), body["count"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
