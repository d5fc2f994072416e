#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs `sluice bench` small in standalone mode, flat out and rate-limited,
and checks that its summary line parses, that every published reading was
stored, and that the figures are consistent with each other. It checks no
speed: the machine may be busy. Also checks that invalid flags are
rejected with the flag's name."""
import os
import subprocess
import sys

SUMMARY_FIELDS = ["mode", "readings", "stored", "readings_per_s",
                  "fraction_of_sqlite", "p50_ms", "p95_ms", "p99_ms",
                  "max_ms", "cpu_s_per_million", "peak_rss_mb"]


def run_bench(*args, timeout=300):
    return subprocess.run([os.environ["SLUICE_BINARY"], "bench"] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def summary(proc):
    assert proc.returncode == 0, "exit %d\n%s\n%s" % (
        proc.returncode, proc.stdout, proc.stderr)
    last = proc.stdout.strip().splitlines()[-1]
    fields = dict(part.split("=", 1) for part in last.split())
    assert list(fields) == SUMMARY_FIELDS, last
    for name in SUMMARY_FIELDS[1:]:
        float(fields[name])  # raises on a malformed number
    return fields


def check_run(fields, count):
    assert fields["mode"] == "standalone", fields
    assert int(fields["readings"]) == count, fields
    assert int(fields["stored"]) == count, fields
    assert float(fields["readings_per_s"]) > 0, fields
    assert float(fields["fraction_of_sqlite"]) > 0, fields
    p50, p95, p99, top = (int(fields[k]) for k in
                          ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
    assert 0 <= p50 <= p95 <= p99 <= top, fields
    assert float(fields["cpu_s_per_million"]) > 0, fields
    assert float(fields["peak_rss_mb"]) > 1, fields


def main():
    count = 20000
    fields = summary(run_bench("--mode", "standalone", "--count", str(count),
                               "--sensors-per-type", "20"))
    check_run(fields, count)

    # 4,000 readings at 2,000/s take about two seconds to publish.
    fields = summary(run_bench("--count", "4000", "--rate", "2000",
                               "--sensors-per-type", "10"))
    check_run(fields, 4000)
    rate = float(fields["readings_per_s"])
    assert rate < 2000 * 1.5, "rate-limited run went at %.0f/s" % rate

    for args, flag in ((["--mode", "cluster"], "--mode"),
                       (["--count", "0"], "--count"),
                       (["--rate", "-5"], "--rate"),
                       (["--count", "5", "--duration", "1"], "--duration"),
                       (["--bogus", "1"], "--bogus")):
        proc = run_bench(*args, timeout=30)
        assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
        assert flag in proc.stderr, (args, proc.stderr)

    print("sluice bench: summary parsed, %d of %d stored, flags checked"
          % (int(fields["stored"]), 4000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
