# SPDX-License-Identifier: Apache-2.0
"""Checks that `sluice run` exports API request spans as OTLP/HTTP JSON.

A capture collector on loopback replaces Jaeger (OTLP/HTTP on 4318). With
--trace-sample-ratio 0 only the request that carries a sampled W3C
traceparent is traced, and its span continues the caller's trace. With
ratio 1 every request is traced, and the span's name is the route
template, not the path.
"""
import http.server
import json
import threading
import urllib.error
import urllib.request

from harness import Sluice

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


class Collector(http.server.BaseHTTPRequestHandler):
    """Accepts POST /v1/traces and keeps every span it receives."""
    spans = []
    paths = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.paths.append((self.path, self.headers["Content-Type"]))
        request = json.loads(body)
        for resource in request["resourceSpans"]:
            attrs = {a["key"]: a["value"]["stringValue"]
                     for a in resource["resource"]["attributes"]}
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:
                    span["service"] = attrs["service.name"]
                    Collector.spans.append(span)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def request(sluice, path, traceparent=None):
    req = urllib.request.Request(sluice.url(path))
    if traceparent is not None:
        req.add_header("traceparent", traceparent)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
    except urllib.error.HTTPError as e:
        e.read()  # 404 and 422 are traced like any response


def run_with_ratio(endpoint, ratio, requests):
    """Runs sluice with the ratio, makes the requests and stops it, which
    flushes the exporter. Returns the spans the collector received."""
    Collector.spans = []
    sluice = Sluice("--trace-endpoint", endpoint, "--trace-sample-ratio",
                    str(ratio), "--no-generators")
    for path, traceparent in requests:
        request(sluice, path, traceparent)
    code = sluice.stop()
    assert code == 0, sluice.read_log()
    return list(Collector.spans)


def main():
    server = http.server.HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = "http://127.0.0.1:%d/v1/traces" % server.server_port

    sampled = "00-%s-%s-01" % (PARENT_TRACE, PARENT_SPAN)
    unsampled = "00-%s-%s-00" % (PARENT_TRACE, PARENT_SPAN)
    spans = run_with_ratio(endpoint, 0, [
        ("/api/v1/sensors/latest?limit=1", None),
        ("/api/v1/sensors/latest?limit=2", unsampled),
        ("/api/v1/sensors/stats?time_window_minutes=5", sampled),
    ])
    # The health checks of the harness are not sampled either.
    assert len(spans) == 1, spans
    span = spans[0]
    assert span["name"] == "GET /api/v1/sensors/stats", span
    assert span["traceId"] == PARENT_TRACE, span
    assert span["parentSpanId"] == PARENT_SPAN, span
    assert span["kind"] == 2, span
    assert span["service"] == "sluice", span
    attrs = {a["key"]: a["value"] for a in span["attributes"]}
    assert attrs["http.response.status_code"] == {"intValue": "200"}, attrs
    assert attrs["http.route"] == {
        "stringValue": "/api/v1/sensors/stats"}, attrs
    assert Collector.paths[-1] == ("/v1/traces", "application/json"), \
        Collector.paths
    print("ratio 0: only the request with a sampled parent was traced")

    spans = run_with_ratio(endpoint, 1, [
        ("/api/v1/dlq/12345", None),
        ("/api/v1/sensors/latest?limit=500", None),
    ])
    by_name = {}
    for span in spans:
        by_name.setdefault(span["name"], []).append(span)
    assert "GET /api/v1/dlq/{id}" in by_name, sorted(by_name)
    latest = by_name["GET /api/v1/sensors/latest"][0]
    attrs = {a["key"]: a["value"] for a in latest["attributes"]}
    assert attrs["http.response.status_code"] == {"intValue": "422"}, attrs
    assert "parentSpanId" not in latest, latest
    assert len({s["traceId"] for s in spans}) == len(spans), \
        "root spans share a trace id"
    print("ratio 1: %d spans, named by route template" % len(spans))
    server.shutdown()
    print("PASS")


if __name__ == "__main__":
    main()
