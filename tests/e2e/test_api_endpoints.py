# SPDX-License-Identifier: Apache-2.0
"""The REST endpoints beyond readings, against a real `sluice run`.

Covers alerts (filters and acknowledgement), commerce figures and newest
events, a sensor's downsampled history, HTTP ingest through the bus into
the store, the bearer token of write endpoints, CORS, and the request
body's size and time limits. Rows the tests need but the generators do not
make (alerts, purchases) are written into the SQLite file directly.
"""
import json
import os
import socket
import sqlite3
import sys
import time
import unittest
import urllib.error
import urllib.request

from harness import Sluice, strict_json

TOKEN = "test-token-3f9a"
ORIGIN = "http://dashboard.test:8080"


def request(sluice, method, path, body=None, headers=None):
    """Returns (status, headers, parsed JSON body or None)."""
    data = None if body is None else (
        body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(sluice.url(path), data=data, method=method,
                                 headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            raw = r.read().decode("utf-8")
            return r.status, r.headers, strict_json(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read().decode("utf-8")
        return e.code, e.headers, strict_json(raw) if raw else None


def now_iso(offset_s=0.0):
    t = time.time() + offset_s
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + \
        ".%03dZ" % int((t % 1) * 1000)


class ApiEndpoints(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.environ["SLUICE_API_TOKEN"] = TOKEN
        os.environ["SLUICE_CORS_ORIGINS"] = ORIGIN + ", http://other.test"
        os.environ["SLUICE_API_MAX_BODY_BYTES"] = "65536"
        os.environ["SLUICE_API_BODY_TIMEOUT_MS"] = "1000"
        try:
            cls.sluice = Sluice("--no-detector", "--event-interval", "0.2")
        finally:
            for name in ("SLUICE_API_TOKEN", "SLUICE_CORS_ORIGINS",
                         "SLUICE_API_MAX_BODY_BYTES",
                         "SLUICE_API_BODY_TIMEOUT_MS"):
                del os.environ[name]
        cls.write_rows()

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()

    @classmethod
    def write_rows(cls):
        now_ms = int(time.time() * 1000)
        db = sqlite3.connect(cls.sluice.db, timeout=30)
        with db:
            db.executemany(
                "INSERT INTO alerts (alert_type, sensor_id, sensor_type,"
                " severity, message, value, anomaly_score, timestamp_ms,"
                " acknowledged, created_at_ms) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [("threshold", "alert-s1", "temperature", "critical",
                  "above 80", 91.5, None, now_ms - 3000, 0, now_ms),
                 ("ml_anomaly", "alert-s1", "temperature", "warning",
                  "isolation forest", 40.0, -0.71, now_ms - 2000, 0, now_ms),
                 ("threshold", "alert-s2", "humidity", "warning",
                  "above 95", 97.0, None, now_ms - 1000, 1, now_ms)])
            rows = []
            for i, (product, price, qty, session) in enumerate(
                    [(501, 10.0, 2, "sess-a"), (502, 99.5, 1, "sess-a"),
                     (501, 10.0, 1, "sess-b")]):
                rows.append((now_ms - 5000 + i, "evt-buy-%d" % i, "purchase",
                             "user-x", session, "desktop", "192.0.2.7",
                             product, "product %d" % product, "tools", qty,
                             price, price * qty, "EUR", now_ms))
            db.executemany(
                "INSERT INTO ecommerce_events (timestamp_ms, event_id,"
                " event_type, user_id, session_id, device, ip_address,"
                " product_id, product_name, category, quantity, price, total,"
                " currency, ingested_at_ms) VALUES"
                " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.close()

    # ---- alerts ----------------------------------------------------------

    def test_alerts_filter_by_severity_and_ack(self):
        status, _, body = request(self.sluice, "GET",
                                  "/api/v1/alerts?severity=critical")
        self.assertEqual(status, 200)
        self.assertEqual([a["sensor_id"] for a in body["alerts"]],
                         ["alert-s1"])
        self.assertEqual(body["alerts"][0]["value"], 91.5)
        self.assertIsNone(body["alerts"][0]["anomaly_score"])

        status, _, body = request(self.sluice, "GET",
                                  "/api/v1/alerts?sensor_id=alert-s1")
        self.assertEqual(status, 200)
        self.assertEqual(body["count"], 2)
        # Newest first.
        self.assertEqual(body["alerts"][0]["alert_type"], "ml_anomaly")
        self.assertAlmostEqual(body["alerts"][0]["anomaly_score"], -0.71)

        status, _, body = request(self.sluice, "GET",
                                  "/api/v1/alerts?acknowledged=true")
        self.assertEqual(status, 200)
        self.assertIn("alert-s2", [a["sensor_id"] for a in body["alerts"]])
        self.assertTrue(all(a["acknowledged"] for a in body["alerts"]))

    def test_alert_ack_needs_token_and_sticks(self):
        _, _, body = request(self.sluice, "GET",
                             "/api/v1/alerts?severity=critical")
        alert_id = body["alerts"][0]["id"]
        path = "/api/v1/alerts/%d/ack" % alert_id

        status, headers, body = request(self.sluice, "POST", path)
        self.assertEqual(status, 401)
        self.assertIn("Bearer", headers.get("WWW-Authenticate", ""))
        status, _, _ = request(self.sluice, "POST", path,
                               headers={"Authorization": "Bearer wrong"})
        self.assertEqual(status, 401)

        status, _, body = request(
            self.sluice, "POST", path,
            headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(status, 200)
        self.assertTrue(body["acknowledged"])
        _, _, body = request(self.sluice, "GET",
                             "/api/v1/alerts?severity=critical"
                             "&acknowledged=true")
        self.assertEqual([a["id"] for a in body["alerts"]], [alert_id])

        status, _, _ = request(
            self.sluice, "POST", "/api/v1/alerts/999999/ack",
            headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(status, 404)

    def test_alerts_invalid_parameters_are_422(self):
        for query, name in [("severity=loud", "severity"),
                            ("acknowledged=yes", "acknowledged"),
                            ("limit=0", "limit"), ("from=yesterday", "from"),
                            ("colour=red", "colour")]:
            status, _, body = request(self.sluice, "GET",
                                      "/api/v1/alerts?" + query)
            self.assertEqual(status, 422, query)
            self.assertIn(name, body["detail"], query)

    # ---- commerce --------------------------------------------------------

    def test_ecommerce_stats_counts_purchases(self):
        status, _, body = request(self.sluice, "GET",
                                  "/api/v1/ecommerce/stats?top=2")
        self.assertEqual(status, 200)
        self.assertGreaterEqual(body["events_by_type"]["purchase"], 3)
        self.assertGreaterEqual(body["orders"], 3)
        self.assertGreaterEqual(body["revenue"], 129.5)
        self.assertGreater(body["conversion_rate"], 0)
        self.assertLessEqual(body["conversion_rate"], 1)
        self.assertLessEqual(len(body["top_products"]), 2)
        top = {p["product_id"]: p for p in body["top_products"]}
        # The generators may add purchases of their own, so only the
        # hand-written products' lower bounds are certain.
        if 502 in top:
            self.assertGreaterEqual(top[502]["revenue"], 99.5)

    def test_ecommerce_latest_filters_by_type(self):
        status, _, body = request(
            self.sluice, "GET",
            "/api/v1/ecommerce/events/latest?event_type=purchase&limit=50")
        self.assertEqual(status, 200)
        self.assertTrue(all(e["event_type"] == "purchase"
                            for e in body["events"]))
        ids = {e["event_id"] for e in body["events"]}
        self.assertTrue({"evt-buy-0", "evt-buy-1", "evt-buy-2"} <= ids)
        status, _, body = request(
            self.sluice, "GET", "/api/v1/ecommerce/events/latest?event_type=x")
        self.assertEqual(status, 422)
        self.assertIn("event_type", body["detail"])

    # ---- history ---------------------------------------------------------

    def test_history_downsamples_into_buckets(self):
        sensor = "sensor-temperature-001"
        self.sluice.wait_until(
            lambda: request(self.sluice, "GET",
                            "/api/v1/sensors/%s/history?points=5" % sensor)
            [2]["count"] > 0, "history of " + sensor, timeout=60)
        status, _, body = request(
            self.sluice, "GET", "/api/v1/sensors/%s/history?points=5" % sensor)
        self.assertEqual(status, 200)
        self.assertLessEqual(body["count"], 5)
        self.assertEqual(body["bucket_ms"], 720000)
        for p in body["points"]:
            self.assertLessEqual(p["min"], p["avg"])
            self.assertLessEqual(p["avg"], p["max"])
            self.assertGreater(p["count"], 0)
        status, _, body = request(
            self.sluice, "GET", "/api/v1/sensors/%s/history?points=0" % sensor)
        self.assertEqual(status, 422)
        status, _, body = request(
            self.sluice, "GET", "/api/v1/sensors/%s/history?"
            "from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z" % sensor)
        self.assertEqual(status, 422)
        self.assertIn("31 days", body["detail"])

    # ---- ingest ----------------------------------------------------------

    def test_ingest_readings_reach_the_store(self):
        auth = {"Authorization": "Bearer " + TOKEN}
        items = [
            {"sensor_id": "http-in-1", "sensor_type": "temperature",
             "value": 23.25, "timestamp": now_iso(-1), "location": "lab",
             "metadata": {"battery_level": 80, "signal_strength": -50}},
            {"sensor_id": "http-in-1", "sensor_type": "humidity",
             "value": 150, "timestamp": now_iso(), "location": "lab",
             "metadata": {"battery_level": 80, "signal_strength": -50}},
            {"sensor_id": "http-in-1", "sensor_type": "temperature"},
            "not an object",
        ]
        status, _, body = request(self.sluice, "POST",
                                  "/api/v1/sensors/readings", items)
        self.assertEqual(status, 401)
        status, _, body = request(self.sluice, "POST",
                                  "/api/v1/sensors/readings", items, auth)
        self.assertEqual(status, 202, body)
        self.assertEqual(body["accepted"], 1)
        self.assertEqual(body["rejected"], 3)
        reasons = {e["index"]: e["reason"] for e in body["errors"]}
        self.assertEqual(reasons[1], "humidity_out_of_range")
        self.assertTrue(reasons[2].startswith("invalid_json"), reasons[2])
        self.assertTrue(reasons[3].startswith("invalid_json"), reasons[3])

        def stored():
            _, _, latest = request(self.sluice, "GET",
                                   "/api/v1/sensors/latest?sensor_id="
                                   "http-in-1")
            return latest["readings"]
        readings = self.sluice.wait_until(stored, "ingested reading stored",
                                          timeout=60)
        self.assertEqual(len(readings), 1)
        self.assertEqual(readings[0]["value"], 23.25)

    def test_ingest_single_event(self):
        auth = {"Authorization": "Bearer " + TOKEN}
        event = {"event_id": "evt-http-1", "user_id": "user-http",
                 "session_id": "sess-http", "event_type": "page_view",
                 "device": "desktop", "ip_address": "192.0.2.9",
                 "timestamp": now_iso(-1), "page": "/home"}
        status, _, body = request(self.sluice, "POST",
                                  "/api/v1/ecommerce/events", event, auth)
        self.assertEqual(status, 202, body)
        self.assertEqual((body["accepted"], body["rejected"]), (1, 0))

        def stored():
            _, _, latest = request(self.sluice, "GET",
                                   "/api/v1/ecommerce/events/latest?"
                                   "event_type=page_view&limit=500")
            return [e for e in latest["events"]
                    if e["event_id"] == "evt-http-1"]
        self.sluice.wait_until(stored, "ingested event stored", timeout=60)

    def test_ingest_bad_body_is_422(self):
        auth = {"Authorization": "Bearer " + TOKEN}
        for body in [b"{not json", b"42", b"[1, 2"]:
            status, _, answer = request(self.sluice, "POST",
                                        "/api/v1/sensors/readings", body,
                                        auth)
            self.assertEqual(status, 422, body)
            self.assertIn("body", answer["detail"])

    def test_ingest_over_size_cap_is_413(self):
        auth = {"Authorization": "Bearer " + TOKEN}
        big = b"[" + b",".join([b'{"sensor_id":"x"}'] * 5000) + b"]"
        self.assertGreater(len(big), 65536)
        status, _, body = request(self.sluice, "POST",
                                  "/api/v1/sensors/readings", big, auth)
        self.assertEqual(status, 413)
        self.assertIn("65536", body["detail"])

    def test_slow_body_is_cut_off(self):
        """A body that stops arriving does not hold the connection."""
        with socket.create_connection(("127.0.0.1", self.sluice.port),
                                      timeout=10) as s:
            s.sendall(b"POST /api/v1/sensors/readings HTTP/1.1\r\n"
                      b"Host: x\r\nContent-Type: application/json\r\n"
                      b"Authorization: Bearer " + TOKEN.encode() +
                      b"\r\nContent-Length: 100\r\n\r\n[{")
            started = time.time()
            data = s.recv(4096)
            # Closed by the server once the 1 s body timeout passed.
            self.assertEqual(data, b"")
            self.assertLess(time.time() - started, 9)
        status, _, _ = request(self.sluice, "GET", "/")
        self.assertEqual(status, 200)

    # ---- CORS ------------------------------------------------------------

    def test_cors_allows_only_listed_origins(self):
        status, headers, _ = request(
            self.sluice, "OPTIONS", "/api/v1/sensors/readings",
            headers={"Origin": ORIGIN,
                     "Access-Control-Request-Method": "POST"})
        self.assertEqual(status, 204)
        self.assertEqual(headers.get("Access-Control-Allow-Origin"), ORIGIN)
        self.assertIn("POST", headers.get("Access-Control-Allow-Methods", ""))
        self.assertIn("Authorization",
                      headers.get("Access-Control-Allow-Headers", ""))

        status, headers, _ = request(self.sluice, "GET", "/",
                                     headers={"Origin": ORIGIN})
        self.assertEqual(headers.get("Access-Control-Allow-Origin"), ORIGIN)
        status, headers, _ = request(self.sluice, "GET", "/",
                                     headers={"Origin": "http://evil.test"})
        self.assertEqual(status, 200)
        self.assertIsNone(headers.get("Access-Control-Allow-Origin"))


class ApiWithoutToken(unittest.TestCase):
    """Defaults: no token, no CORS headers."""

    def test_defaults_open_writes_and_send_no_cors(self):
        sluice = Sluice("--no-detector", "--no-generators")
        try:
            status, headers, body = request(
                sluice, "POST", "/api/v1/sensors/readings",
                {"sensor_id": "open-1", "sensor_type": "pressure",
                 "value": 1000.5, "timestamp": now_iso(-1),
                 "location": "roof",
                 "metadata": {"battery_level": 70, "signal_strength": -80}},
                headers={"Origin": ORIGIN})
            self.assertEqual(status, 202, body)
            self.assertEqual(body["accepted"], 1)
            self.assertIsNone(headers.get("Access-Control-Allow-Origin"))
        finally:
            sluice.stop()


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
