# SPDX-License-Identifier: Apache-2.0
"""Live WebSocket streams of a real `sluice run`, with Debian's
python3-websockets as the client: query-string filters, every control
message answered by an ack or an error, malformed and oversized control
messages, the client cap, and an alert raised by the rules arriving on
/ws/alerts."""
import asyncio
import json
import sys

import websockets

from harness import Sluice, strict_json
from ws_client import metric


async def recv_json(ws, timeout=10):
    return strict_json(await asyncio.wait_for(ws.recv(), timeout))


async def next_of_type(ws, kind, timeout=10):
    """Returns the next message of type kind, skipping readings."""
    while True:
        msg = await recv_json(ws, timeout)
        if msg["type"] == kind:
            return msg
        assert msg["type"] == "sensor_reading", msg


async def readings(ws, n):
    out = []
    while len(out) < n:
        msg = await recv_json(ws)
        assert msg["type"] == "sensor_reading", msg
        out.append(msg)
    return out


async def check_query_filters(url):
    # Generated sensors get random locations: pick two a humidity sensor
    # has, from the unfiltered stream.
    async with websockets.connect(url + "/ws/sensors") as ws:
        await recv_json(ws)
        places = []
        while len(places) < 2:
            msg = (await readings(ws, 1))[0]
            place = msg["data"]["location"]
            if msg["data"]["sensor_type"] == "humidity" and \
                    place not in places:
                places.append(place)

    async with websockets.connect(url + "/ws/sensors?sensor_type=humidity"
                                  "&location=%s&location=%s" %
                                  tuple(places)) as ws:
        hello = await recv_json(ws)
        assert hello["type"] == "connected", hello
        assert hello["stream"] == "sensors", hello
        assert hello["filter"]["sensor_type"] == ["humidity"], hello
        assert sorted(hello["filter"]["location"]) == sorted(places), hello
        for msg in await readings(ws, 10):
            assert msg["data"]["sensor_type"] == "humidity", msg
            assert msg["data"]["location"] in places, msg
            assert msg["received_at"].endswith("Z"), msg

    ids = ["sensor-temperature-002", "sensor-pressure-007"]
    async with websockets.connect(
            url + "/ws/sensors?sensor_id=%s&sensor_id=%s" % tuple(ids)) as ws:
        await recv_json(ws)
        seen = {m["data"]["sensor_id"] for m in await readings(ws, 12)}
        assert seen == set(ids), seen


async def check_control(url):
    async with websockets.connect(url + "/ws/sensors") as ws:
        await recv_json(ws)

        await ws.send(json.dumps({"action": "set_filter", "id": 1,
                                  "sensor_type": ["pressure"]}))
        ack = await next_of_type(ws, "ack")
        assert ack["action"] == "set_filter", ack
        assert ack["id"] == 1, ack
        assert ack["filter"]["sensor_type"] == ["pressure"], ack
        assert ack["filter"]["sensor_id"] is None, ack
        for msg in await readings(ws, 10):
            assert msg["data"]["sensor_type"] == "pressure", msg

        await ws.send(json.dumps({"action": "subscribe", "id": "two",
                                  "sensor_type": "humidity"}))
        ack = await next_of_type(ws, "ack")
        assert ack["id"] == "two", ack
        assert sorted(ack["filter"]["sensor_type"]) == ["humidity",
                                                        "pressure"], ack
        await ws.send(json.dumps({"action": "unsubscribe",
                                  "sensor_type": ["pressure"]}))
        ack = await next_of_type(ws, "ack")
        assert ack["filter"]["sensor_type"] == ["humidity"], ack
        for msg in await readings(ws, 10):
            assert msg["data"]["sensor_type"] == "humidity", msg

        await ws.send(json.dumps({"action": "get_filter"}))
        ack = await next_of_type(ws, "ack")
        assert ack["action"] == "get_filter", ack
        assert ack["filter"]["sensor_type"] == ["humidity"], ack

        # Every malformed message gets an error and changes nothing.
        bad = [
            ("not json", "invalid JSON"),
            ("[1, 2]", "JSON object"),
            (json.dumps({"sensor_id": "x"}), "action"),
            (json.dumps({"action": "jump"}), "action"),
            (json.dumps({"action": "subscribe", "colour": "red"}),
             "colour: unknown field"),
            (json.dumps({"action": "subscribe", "sensor_type": "plasma"}),
             "sensor_type: 'plasma'"),
            (json.dumps({"action": "subscribe", "sensor_id": 5}),
             "sensor_id: must be"),
            (json.dumps({"action": "subscribe", "sensor_id": ["a"] * 1 +
                         ["s%d" % i for i in range(40)]}),
             "at most 32"),
            (json.dumps({"action": "unsubscribe", "sensor_id": "x"}),
             "not in the filter"),
            (json.dumps({"action": "subscribe", "id": [1]}), "id:"),
            (json.dumps({"action": "subscribe", "severity": "critical"}),
             "severity: unknown field"),
            ("x" * 5000, "too large"),
            (b"\x00\x01binary", "JSON text"),
        ]
        for text, reason in bad:
            await ws.send(text)
            err = await next_of_type(ws, "error")
            assert reason in err["error"], (text[:40], err)
        await ws.send(json.dumps({"action": "get_filter"}))
        ack = await next_of_type(ws, "ack")
        assert ack["filter"]["sensor_type"] == ["humidity"], ack
        assert ack["filter"]["sensor_id"] is None, ack

        # Pausing stops the stream; subscribe without fields resumes it.
        await ws.send(json.dumps({"action": "unsubscribe", "id": 9}))
        ack = await next_of_type(ws, "ack")
        assert ack["filter"]["paused"] is True, ack
        try:
            msg = await recv_json(ws, timeout=1.5)
            raise AssertionError("message while paused: %r" % msg)
        except asyncio.TimeoutError:
            pass
        await ws.send(json.dumps({"action": "subscribe"}))
        ack = await recv_json(ws)
        assert ack["type"] == "ack", ack
        assert ack["filter"]["paused"] is False, ack
        await readings(ws, 3)


async def check_bad_query(url):
    try:
        async with websockets.connect(url + "/ws/sensors?sensor_type=plasma"
                                      ) as ws:
            err = await recv_json(ws)
            assert err["type"] == "error", err
            await recv_json(ws)
        raise AssertionError("connection with a bad filter stayed open")
    except websockets.ConnectionClosed as e:
        assert e.code == 1008, e
        assert "sensor_type" in e.reason, e


async def check_alerts(url):
    async with websockets.connect(url + "/ws/alerts?severity=critical"
                                  "&sensor_type=temperature") as ws:
        hello = await recv_json(ws)
        assert hello["stream"] == "alerts", hello
        alert = await recv_json(ws, timeout=60)
        assert alert["type"] == "alert", alert
        assert alert["data"]["alert_type"] == "threshold", alert
        assert alert["data"]["severity"] == "critical", alert
        assert alert["data"]["sensor_type"] == "temperature", alert


async def check_client_cap(url):
    first = await websockets.connect(url + "/ws/sensors")
    second = await websockets.connect(url + "/ws/alerts")
    await recv_json(first)
    await recv_json(second)
    try:
        async with websockets.connect(url + "/ws/sensors") as third:
            await recv_json(third)
        raise AssertionError("a third client was served with a cap of 2")
    except websockets.ConnectionClosed as e:
        assert e.code == 1013, e
        assert "maximum of 2" in e.reason, e
    await first.close()
    await asyncio.sleep(0.5)
    async with websockets.connect(url + "/ws/sensors") as fourth:
        hello = await recv_json(fourth)
        assert hello["type"] == "connected", hello
    await second.close()


def main():
    sluice = Sluice("--rate", "300", "--rule-temperature-high", "0",
                    "--alert-cooldown-seconds", "1")
    url = "ws://127.0.0.1:%d" % sluice.port
    asyncio.run(check_query_filters(url))
    asyncio.run(check_control(url))
    asyncio.run(check_bad_query(url))
    asyncio.run(check_alerts(url))
    sent = metric(sluice.port, "sluice_ws_messages_sent_total",
                  {"stream": "sensors"})
    assert sent > 0, sent
    assert metric(sluice.port, "sluice_ws_disconnects_total",
                  {"reason": "invalid_filter"}) == 1
    assert sluice.stop() == 0

    capped = Sluice("--rate", "50", "--no-detector", "--ws-max-clients", "2")
    asyncio.run(check_client_cap("ws://127.0.0.1:%d" % capped.port))
    assert metric(capped.port, "sluice_ws_disconnects_total",
                  {"reason": "client_cap"}) == 1
    assert capped.stop() == 0
    print("filters, control messages, client cap and alerts as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
