# SPDX-License-Identifier: Apache-2.0
"""`sluice api` in distributed mode serves /ws/sensors from the Kafka bus
(librdkafka's mock cluster), with `sluice produce` publishing readings:
a python3-websockets client gets live readings, filtered as asked, and
none that Kafka held before the API started. Without a bus the same API
serves REST only and rejects the WebSocket upgrade."""
import asyncio
import sys
import time

import websockets

from cluster import Cluster, api_status, read_file, start, stop, wait_until
from harness import free_port, strict_json


async def live_readings(port, n):
    url = "ws://127.0.0.1:%d/ws/sensors?sensor_type=pressure" % port
    async with websockets.connect(url) as ws:
        hello = strict_json(await asyncio.wait_for(ws.recv(), 10))
        assert hello["type"] == "connected", hello
        out = []
        while len(out) < n:
            msg = strict_json(await asyncio.wait_for(ws.recv(), 60))
            assert msg["type"] == "sensor_reading", msg
            out.append(msg)
        return out


async def upgrade_rejected(port):
    try:
        async with websockets.connect("ws://127.0.0.1:%d/ws/sensors" % port,
                                      open_timeout=10) as ws:
            await asyncio.wait_for(ws.recv(), 5)
    except (websockets.InvalidHandshake, websockets.ConnectionClosed,
            OSError, asyncio.TimeoutError) as e:
        return e
    raise AssertionError("a WebSocket upgrade succeeded without a bus")


def iso_ms(text):
    return int(time.mktime(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
               - time.timezone) * 1000 + int(text[20:23])


def main():
    cl = Cluster("ws")
    produce = cl.role("produce", ["--rate", "60", "--event-interval", "0"])
    time.sleep(3)  # readings Kafka holds before the API starts

    port = free_port()
    api = cl.role("api", ["--store", cl.pg.url, "--listen",
                          "127.0.0.1:%d" % port])
    wait_until(lambda: api_status(port) == 200, "the API to answer",
               [cl.log("api")], timeout=60)
    started_ms = int(time.time() * 1000)
    got = asyncio.run(live_readings(port, 20))
    for msg in got:
        assert msg["data"]["sensor_type"] == "pressure", msg
        # Kafka's older records were skipped: only live data arrives.
        assert iso_ms(msg["data"]["timestamp"]) > started_ms - 5000, msg
    assert "WebSocket hub started" in read_file(cl.log("api"))
    stop(api, "api", cl.log("api"))
    stop(produce, "produce", cl.log("produce"))

    rest_port = free_port()
    rest_only = start([cl.binary, "api", "--store", cl.pg.url, "--listen",
                       "127.0.0.1:%d" % rest_port], cl.log("api-rest"))
    wait_until(lambda: api_status(rest_port) == 200, "the REST-only API",
               [cl.log("api-rest")], timeout=60)
    error = asyncio.run(upgrade_rejected(rest_port))
    stop(rest_only, "api-rest", cl.log("api-rest"))
    cl.close()
    print("20 live pressure readings from Kafka; without a bus the upgrade "
          "failed with %r" % (error,))
    return 0


if __name__ == "__main__":
    sys.exit(main())
