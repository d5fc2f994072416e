#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Load test of the API (make load-test): starts `sluice run` with its
# generators on a free loopback port and a throwaway database, then runs
# wrk with 64 connections on the hottest endpoints and a bounded headless
# Locust task mix over the read endpoints, printing requests/s and p50/p99
# for each. Everything stays on 127.0.0.1.
# Usage: tests/load/run.sh BUILD_DIR   (WRK_SECONDS, WRK_THREADS,
#        LOCUST_USERS and LOCUST_SECONDS change the runs)
set -eu

build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
wrk_seconds=${WRK_SECONDS:-10}
wrk_threads=${WRK_THREADS:-1}
locust_users=${LOCUST_USERS:-50}
locust_seconds=${LOCUST_SECONDS:-20}

for tool in wrk locust; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "load-test: $tool is missing; run scripts/install-deps --test" >&2
        exit 2
    fi
done

work=$(mktemp -d /tmp/sluice-load-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$build/sluice" run --db "$work/sluice.db" --listen "127.0.0.1:$port" \
    >"$work/sluice.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT INT TERM

tries=0
until curl -sf "$base/" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ]; then
        echo "load-test: sluice did not become healthy:" >&2
        cat "$work/sluice.log" >&2
        exit 1
    fi
    sleep 0.1
done
# Let the generators fill a few seconds of readings first.
sleep 3

# The server answers HTTP on one service thread, so wrk gets one thread
# (WRK_THREADS) by default: on a 2-core machine a second wrk thread takes
# the server's core and measures the scheduler instead.
for path in "/api/v1/sensors/latest" "/api/v1/sensors/stats"; do
    echo "== wrk -t$wrk_threads -c64 -d${wrk_seconds}s $path"
    wrk -t"$wrk_threads" -c64 -d"${wrk_seconds}s" -s "$here/report.lua" \
        "$base$path" | grep '^wrk:'
done

echo "== locust: $locust_users users for ${locust_seconds}s, read endpoint mix"
locust -f "$here/locustfile.py" --headless -u "$locust_users" \
    -r "$locust_users" -t "${locust_seconds}s" --host "$base" \
    --only-summary --loglevel WARNING 2>&1 |
    sed -n '/Response time percentiles/,$p'
