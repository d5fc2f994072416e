# SPDX-License-Identifier: Apache-2.0
"""Checks that one reading is one trace from the producer to the
WebSocket.

`sluice run` exports to a capture collector on loopback with
--trace-sample-ratio 0, so only what continues a sampled W3C traceparent
is traced. A WebSocket client follows /ws/sensors. One reading is
ingested over HTTP without a traceparent, then one with a sampled one.
The second must yield one trace. The HTTP request's span is a child of
the caller's span, and "produce" is a child of the request. "process"
is a child of produce, and "store.write" a child of process. "detect"
and "ws.send" are children of produce, because the detector and the hub
consume the bus record themselves. The first reading must yield no span
at all.

Then `sluice run` replays three readings, five seconds apart, with
--trace-sample-ratio 1. Each reading's produce span is then a root span,
and each reading that reached the WebSocket client is one trace with the
same tree below produce. Every POST the collector gets must be valid
OTLP/HTTP JSON.
"""
import asyncio
import http.server
import json
import os
import re
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone

import websockets

from harness import Sluice, strict_json

PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"
PIPELINE = ("produce", "process", "store.write", "detect", "ws.send")
HEX_ID = {"traceId": 32, "spanId": 16, "parentSpanId": 16}


class Collector(http.server.BaseHTTPRequestHandler):
    """Accepts POST /v1/traces, keeping each request body and its spans."""
    bodies = []
    spans = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = json.loads(body)
        with Collector.lock:
            Collector.bodies.append((self.path, self.headers["Content-Type"],
                                     request))
            for resource in request["resourceSpans"]:
                for scope in resource["scopeSpans"]:
                    Collector.spans.extend(scope["spans"])
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def check_otlp(path, content_type, request):
    """Asserts the shape of one ExportTraceServiceRequest in OTLP's JSON
    mapping: ids as lowercase hex of the right length, times as decimal
    strings with start <= end."""
    assert path == "/v1/traces", path
    assert content_type == "application/json", content_type
    assert isinstance(request["resourceSpans"], list), request
    for resource in request["resourceSpans"]:
        keys = {a["key"] for a in resource["resource"]["attributes"]}
        assert "service.name" in keys, resource
        for scope in resource["scopeSpans"]:
            assert isinstance(scope["scope"]["name"], str), scope
            for span in scope["spans"]:
                for field, length in HEX_ID.items():
                    if field == "parentSpanId" and field not in span:
                        continue
                    assert re.fullmatch("[0-9a-f]{%d}" % length,
                                        span[field]), (field, span)
                    assert span[field] != "0" * length, (field, span)
                start = span["startTimeUnixNano"]
                end = span["endTimeUnixNano"]
                assert re.fullmatch("[0-9]+", start), span
                assert re.fullmatch("[0-9]+", end), span
                assert int(start) <= int(end), span
                assert span["kind"] in (1, 2, 3, 4, 5), span
                assert isinstance(span["name"], str) and span["name"], span


def post_reading(sluice, sensor_id, traceparent=None):
    item = {"sensor_id": sensor_id, "sensor_type": "temperature",
            "value": 21.5,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "location": "lab",
            "metadata": {"battery_level": 90, "signal_strength": -40}}
    req = urllib.request.Request(
        sluice.url("/api/v1/sensors/readings"),
        data=json.dumps(item).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    if traceparent is not None:
        req.add_header("traceparent", traceparent)
    with urllib.request.urlopen(req, timeout=10) as r:
        body = strict_json(r.read().decode("utf-8"))
        assert r.status == 202, body
        assert body["accepted"] == 1, body


async def receive_reading(ws, sensor_id):
    """Waits for the WebSocket frame of sensor_id's reading."""
    while True:
        msg = strict_json(await asyncio.wait_for(ws.recv(), 30))
        if msg["type"] == "sensor_reading" and \
                msg["data"]["sensor_id"] == sensor_id:
            return msg


async def ingest_two(sluice, traceparent):
    url = "ws://127.0.0.1:%d/ws/sensors" % sluice.port
    loop = asyncio.get_running_loop()
    async with websockets.connect(url) as ws:
        hello = strict_json(await asyncio.wait_for(ws.recv(), 10))
        assert hello["type"] == "connected", hello
        await loop.run_in_executor(None, post_reading, sluice, "untraced-1")
        await receive_reading(ws, "untraced-1")
        await loop.run_in_executor(None, post_reading, sluice, "traced-1",
                                   traceparent)
        await receive_reading(ws, "traced-1")


def pipeline_spans_seen():
    with Collector.lock:
        names = {s["name"] for s in Collector.spans}
    return all(name in names for name in PIPELINE)


def take_spans():
    """Checks and returns what the collector received, and resets it."""
    with Collector.lock:
        bodies, spans = Collector.bodies, Collector.spans
        Collector.bodies, Collector.spans = [], []
    for path, content_type, request in bodies:
        check_otlp(path, content_type, request)
    return spans


def check_tree(trace, top):
    """Checks one reading's trace: one span of each pipeline name, produce
    a child of top (a span id, or None for a root span), process and
    store.write below it, detect and ws.send beside process. Returns the
    spans by name."""
    by_name = {}
    for span in trace:
        by_name.setdefault(span["name"], []).append(span)
    for name in PIPELINE:
        assert len(by_name.get(name, [])) == 1, (name, sorted(by_name))
    one = {name: group[0] for name, group in by_name.items()}
    assert one["produce"].get("parentSpanId") == top, one["produce"]
    expected_parent = {"process": "produce", "store.write": "process",
                       "detect": "produce", "ws.send": "produce"}
    for name, parent in expected_parent.items():
        assert one[name]["parentSpanId"] == one[parent]["spanId"], \
            (name, one[name], parent, one[parent])
    assert one["produce"]["kind"] == 4, one["produce"]
    assert one["process"]["kind"] == 5, one["process"]
    attrs = {a["key"]: a["value"] for a in one["store.write"]["attributes"]}
    assert int(attrs["db.operation.batch.size"]["intValue"]) >= 1, attrs
    attrs = {a["key"]: a["value"] for a in one["produce"]["attributes"]}
    assert attrs["messaging.destination.name"] == {
        "stringValue": "sensor-readings"}, attrs
    return one


def ingested_reading(endpoint):
    """Ratio 0: only the reading ingested with a sampled traceparent is
    traced, under the HTTP request's span."""
    sluice = Sluice("--trace-endpoint", endpoint, "--trace-sample-ratio", "0",
                    "--no-generators")
    try:
        asyncio.run(ingest_two(sluice,
                               "00-%s-%s-01" % (PARENT_TRACE, PARENT_SPAN)))
        # The exporter sends a partial batch after its 1 s flush interval.
        sluice.wait_until(pipeline_spans_seen, "the pipeline's spans",
                          timeout=60)
    finally:
        code = sluice.stop()
    assert code == 0, sluice.read_log()

    spans = take_spans()
    assert {s["traceId"] for s in spans} == {PARENT_TRACE}, \
        "a span outside the caller's trace: %r" % spans
    http_spans = [s for s in spans
                  if s["name"] == "POST /api/v1/sensors/readings"]
    assert len(http_spans) == 1, spans
    assert http_spans[0]["parentSpanId"] == PARENT_SPAN, http_spans
    check_tree([s for s in spans if s is not http_spans[0]],
               http_spans[0]["spanId"])
    print("ratio 0: one trace of %d spans: %s"
          % (len(spans), sorted(s["name"] for s in spans)))


def write_replay(path, count, gap_s):
    now = time.time()
    with open(path, "w") as f:
        for i in range(count):
            ts = datetime.fromtimestamp(now - (count - 1 - i) * gap_s,
                                        timezone.utc)
            f.write(json.dumps({
                "sensor_id": "replayed-%d" % i, "sensor_type": "temperature",
                "value": 20.0 + i,
                "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "location": "lab",
                "metadata": {"battery_level": 90, "signal_strength": -40},
            }) + "\n")


async def follow_replay(sluice, last_sensor):
    url = "ws://127.0.0.1:%d/ws/sensors" % sluice.port
    async with websockets.connect(url) as ws:
        hello = strict_json(await asyncio.wait_for(ws.recv(), 10))
        assert hello["type"] == "connected", hello
        await receive_reading(ws, last_sensor)


def store_spans():
    with Collector.lock:
        return sum(s["name"] == "store.write" for s in Collector.spans)


def replayed_readings(endpoint):
    """Ratio 1: each replayed reading is a trace rooted at produce."""
    count = 3
    workdir = tempfile.mkdtemp(prefix="sluice-traces-")
    replay = os.path.join(workdir, "readings.ndjson")
    write_replay(replay, count, 5)
    sluice = Sluice("--trace-endpoint", endpoint, "--trace-sample-ratio", "1",
                    "--no-generators", "--replay", replay, "--format",
                    "ndjson", "--speed", "1", "--rebase-time",
                    workdir=workdir)
    try:
        # The hub sends only live records: the client connects before the
        # last reading, which is due ten seconds after the first.
        asyncio.run(follow_replay(sluice, "replayed-%d" % (count - 1)))
        sluice.wait_until(lambda: store_spans() >= count,
                          "the replayed readings' spans", timeout=60)
    finally:
        code = sluice.stop()
    assert code == 0, sluice.read_log()

    traces = {}
    for span in take_spans():
        traces.setdefault(span["traceId"], []).append(span)
    readings = [t for t in traces.values()
                if any(s["name"] == "produce" for s in t)]
    assert len(readings) == count, sorted(
        sorted(s["name"] for s in t) for t in traces.values())
    delivered = [t for t in readings
                 if any(s["name"] == "ws.send" for s in t)]
    assert delivered, readings
    for trace in delivered:
        check_tree(trace, None)
    print("ratio 1: %d readings, %d traces reach ws.send"
          % (len(readings), len(delivered)))


def main():
    server = http.server.HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = "http://127.0.0.1:%d/v1/traces" % server.server_port
    try:
        ingested_reading(endpoint)
        replayed_readings(endpoint)
    finally:
        server.shutdown()
    print("PASS")


if __name__ == "__main__":
    main()
