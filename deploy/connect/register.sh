#!/bin/sh
# Creates or updates the Kafka Connect connectors of this folder: each
# NAME.json contains the config of the connector NAME. PUT /connectors/NAME/
# config creates a connector or replaces its config, so running this
# twice changes nothing.
#
# Usage: deploy/connect/register.sh [CONNECTOR.json...]
#   CONNECT_URL   Kafka Connect REST address (default http://localhost:8083)
#   CONNECT_WAIT  seconds to wait for Connect to answer (default 120)
set -eu

url="${CONNECT_URL:-http://localhost:8083}"
wait_s="${CONNECT_WAIT:-120}"
dir="$(cd "$(dirname "$0")" && pwd)"

if [ "$#" -eq 0 ]; then
    set -- "$dir"/*.json
fi

# Connect responds to GET /connectors only once its workers have started.
waited=0
until curl -fsS -o /dev/null "$url/connectors"; do
    if [ "$waited" -ge "$wait_s" ]; then
        echo "register.sh: Kafka Connect at $url did not respond within ${wait_s} s" >&2
        exit 1
    fi
    sleep 2
    waited=$((waited + 2))
done

status=0
for file in "$@"; do
    name="$(basename "$file" .json)"
    if reply="$(curl -sS --fail-with-body -X PUT \
        -H "Content-Type: application/json" --data @"$file" \
        "$url/connectors/$name/config")"; then
        echo "register.sh: $name registered"
    else
        echo "register.sh: $name: Kafka Connect rejected $file: $reply" >&2
        status=1
    fi
done
exit "$status"
