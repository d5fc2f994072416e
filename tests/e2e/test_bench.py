#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs `sluice bench` small in standalone mode, flat out and rate-limited,
and checks that its summary line parses, that every published reading was
stored, that its WebSocket client received readings of the sensors it
follows, and that the figures are consistent with each other. It checks
no speed: the machine may be busy. Also checks that invalid flags are
rejected with the flag's name."""
import os
import subprocess
import sys

SUMMARY_FIELDS = ["mode", "readings", "stored", "readings_per_s",
                  "fraction_of_sqlite", "p50_ms", "p95_ms", "p99_ms",
                  "max_ms", "cpu_s_per_million", "peak_rss_mb", "ws_p99_ms",
                  "ws_received", "ws_dropped"]
WS_FIELDS = SUMMARY_FIELDS[-3:]


def run_bench(*args, timeout=300):
    return subprocess.run([os.environ["SLUICE_BINARY"], "bench"] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def summary(proc, names=SUMMARY_FIELDS):
    assert proc.returncode == 0, "exit %d\n%s\n%s" % (
        proc.returncode, proc.stdout, proc.stderr)
    last = proc.stdout.strip().splitlines()[-1]
    fields = dict(part.split("=", 1) for part in last.split())
    assert list(fields) == names, last
    for name in names[1:]:
        float(fields[name])  # raises on a malformed number
    return fields


def table_row(proc, label):
    """Returns the value column of the table row that starts with label."""
    for line in proc.stdout.splitlines():
        if line.startswith(label + "  "):
            return line[len(label):].strip()
    raise AssertionError("no row %r in\n%s" % (label, proc.stdout))


def check_ws(proc, fields, expected):
    """Checks the WebSocket rows: the client got every reading of the
    sensors it follows (received, or announced as dropped), and the
    latencies are ordered."""
    received, dropped = (int(part) for part in table_row(
        proc, "WebSocket messages received / dropped").split(" / "))
    assert received > 0, proc.stdout
    assert received == int(fields["ws_received"]), proc.stdout
    assert dropped == int(fields["ws_dropped"]), proc.stdout
    assert received + dropped == expected, (received, dropped, expected)
    p50 = int(table_row(proc, "latency p50 ms (created -> WebSocket client)"))
    p95 = int(table_row(proc, "WebSocket latency p95 ms"))
    p99 = int(table_row(proc, "WebSocket latency p99 ms"))
    top = int(table_row(proc, "WebSocket latency max ms"))
    assert 0 <= p50 <= p95 <= p99 <= top, proc.stdout
    assert p99 == int(fields["ws_p99_ms"]), proc.stdout


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
    # 100 sensors publish in turn, and the client follows 5 of them (one
    # per type by default): 200 readings each.
    count = 20000
    proc = run_bench("--mode", "standalone", "--count", str(count),
                     "--sensors-per-type", "20")
    fields = summary(proc)
    check_run(fields, count)
    check_ws(proc, fields, 5 * count // 100)
    assert "WebSocket client on 5 sensors" in proc.stdout, proc.stdout

    # 4,000 readings at 2,000/s take about two seconds to publish. Of 50
    # sensors the client follows 3, at indexes 0, 16 and 33: 80 readings
    # each.
    proc = run_bench("--count", "4000", "--rate", "2000",
                     "--sensors-per-type", "10", "--ws-sensors", "3")
    fields = summary(proc)
    check_run(fields, 4000)
    check_ws(proc, fields, 3 * 4000 // 50)
    rate = float(fields["readings_per_s"])
    assert rate < 2000 * 1.5, "rate-limited run went at %.0f/s" % rate

    # Without the client: no WebSocket rows and no ws_ keys.
    proc = run_bench("--count", "3000", "--sensors-per-type", "10",
                     "--ws-sensors", "0")
    fields = summary(proc, SUMMARY_FIELDS[:-len(WS_FIELDS)])
    check_run(fields, 3000)
    assert "WebSocket messages" not in proc.stdout, proc.stdout

    for args, flag in ((["--mode", "cluster"], "--mode"),
                       (["--count", "0"], "--count"),
                       (["--rate", "-5"], "--rate"),
                       (["--ws-sensors", "33"], "--ws-sensors"),
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
