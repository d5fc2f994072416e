#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs `sluice bench --mode distributed` small: librdkafka's mock cluster
and a throwaway PostgreSQL in the process. Checks that the summary line
parses, that every published reading was stored, that both raw
baselines (COPY and Kafka produce+consume) were measured, and that the
WebSocket client of the in-process API received every reading of the
sensors it follows. No speed is checked."""
import os
import subprocess
import sys

FIELDS = ["mode", "readings", "stored", "readings_per_s", "fraction_of_copy",
          "fraction_of_kafka", "p50_ms", "p95_ms", "p99_ms", "max_ms",
          "cpu_s_per_million", "peak_rss_mb", "ws_p99_ms", "ws_received",
          "ws_dropped"]


def main():
    proc = subprocess.run([os.environ["SLUICE_BINARY"], "bench", "--mode",
                           "distributed", "--count", "5000",
                           "--sensors-per-type", "20"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, "exit %d\n%s\n%s" % (
        proc.returncode, proc.stdout, proc.stderr)
    last = proc.stdout.strip().splitlines()[-1]
    fields = dict(part.split("=", 1) for part in last.split())
    assert list(fields) == FIELDS, last
    for name in FIELDS[1:]:
        float(fields[name])  # raises on a malformed number
    assert fields["mode"] == "distributed", last
    assert int(fields["readings"]) == 5000, last
    assert int(fields["stored"]) == 5000, last
    assert float(fields["fraction_of_copy"]) > 0, last
    assert float(fields["fraction_of_kafka"]) > 0, last
    assert int(fields["p50_ms"]) <= int(fields["p99_ms"]), last
    assert int(fields["p99_ms"]) <= int(fields["max_ms"]), last
    # The client follows one sensor of each type: 5 of 100, 50 readings
    # each.
    received, dropped = int(fields["ws_received"]), int(fields["ws_dropped"])
    assert received > 0, last
    assert received + dropped == 250, last
    rows = {}
    for line in proc.stdout.splitlines():
        if line.startswith(("latency p50 ms (created -> WebSocket",
                            "WebSocket latency")):
            label, value = line.rsplit(None, 1)
            rows[label] = int(value)
    p50 = rows["latency p50 ms (created -> WebSocket client)"]
    p99 = rows["WebSocket latency p99 ms"]
    assert p99 == int(fields["ws_p99_ms"]), proc.stdout
    assert 0 <= p50 <= p99 <= rows["WebSocket latency max ms"], proc.stdout
    print("sluice bench distributed: 5000 of 5000 stored, summary parsed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
