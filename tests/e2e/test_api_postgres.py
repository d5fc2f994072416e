# SPDX-License-Identifier: Apache-2.0
"""The new read endpoints of `sluice api` over PostgreSQL.

Starts a throwaway PostgreSQL server (unix socket in a temporary folder),
lets `sluice api` migrate it, writes alerts, purchases and readings with
psql, including NaN and infinities, and checks alerts (filters and
acknowledgement), commerce figures, newest events and downsampled history.
Without a bus, ingest returns 503 with the reason. Every body is parsed
with a strict JSON parser.
"""
import json
import os
import sys
import time
import unittest
import urllib.error
import urllib.request

import cluster
from harness import free_port, strict_json

T0 = 1767225600000  # 2026-01-01T00:00:00Z


def request(port, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, strict_json(r.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        return e.code, strict_json(e.read().decode("utf-8"))


class ApiOnPostgres(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = cluster.Postgres()
        cls.port = free_port()
        cls.log = os.path.join(cls.pg.dir, "api.log")
        cls.api = cluster.start(
            [os.environ["SLUICE_BINARY"], "api", "--store", cls.pg.url,
             "--listen", "127.0.0.1:%d" % cls.port], cls.log)
        cluster.wait_until(lambda: cluster.api_status(cls.port) == 200,
                           "sluice api healthy", [cls.log], timeout=60)
        cls.pg.psql(
            "INSERT INTO alerts (alert_type, sensor_id, sensor_type, severity,"
            " message, value, anomaly_score, timestamp_ms, acknowledged,"
            " created_at_ms) VALUES"
            " ('threshold', 'pg-t1', 'temperature', 'critical', 'hot', 91.5,"
            "  NULL, %d, false, 1),"
            " ('ml_anomaly', 'pg-t1', 'temperature', 'warning', 'odd',"
            "  'NaN', -0.7, %d, false, 1),"
            " ('threshold', 'pg-h1', 'humidity', 'warning', 'wet', 97, NULL,"
            "  %d, true, 1)" % (T0, T0 + 60000, T0 + 120000))
        cls.pg.psql(
            "INSERT INTO ecommerce_events (timestamp_ms, event_id, event_type,"
            " user_id, session_id, device, ip_address, product_id,"
            " product_name, quantity, price, total, ingested_at_ms) VALUES"
            " (%d, 'e1', 'page_view', 'u1', 's1', 'mobile', 'ip', NULL, NULL,"
            "  NULL, NULL, NULL, 1),"
            " (%d, 'e2', 'purchase', 'u1', 's1', 'mobile', 'ip', 7, 'lamp', 2,"
            "  10, 20, 1),"
            " (%d, 'e3', 'purchase', 'u2', 's2', 'mobile', 'ip', 8, 'desk',"
            "  NULL, 150, NULL, 1),"
            " (%d, 'e4', 'purchase', 'u3', 's3', 'mobile', 'ip', 9, 'bad', 1,"
            "  'Infinity', 'Infinity', 1)"
            % (T0, T0 + 1000, T0 + 2000, T0 + 3000))
        cls.pg.psql(
            "INSERT INTO sensor_readings (timestamp_ms, sensor_id,"
            " sensor_type, value, location, battery_level, signal_strength,"
            " ingested_at_ms, value_bits) VALUES"
            " (%d, 'pg-t1', 'temperature', 20, 'x', 50, -60, 1, 1),"
            " (%d, 'pg-t1', 'temperature', 21, 'x', 50, -60, 1, 2),"
            " (%d, 'pg-t1', 'temperature', 22, 'x', 50, -60, 1, 3),"
            " (%d, 'pg-t1', 'temperature', 'NaN', 'x', 50, -60, 1, 4),"
            " (%d, 'pg-t1', 'temperature', '-Infinity', 'x', 50, -60, 1, 5)"
            % (T0, T0 + 60000, T0 + 120000, T0 + 130000, T0 + 140000))

    @classmethod
    def tearDownClass(cls):
        cluster.stop(cls.api, "sluice api", cls.log)
        cls.pg.stop()

    def test_alerts_filter_and_ack(self):
        status, body = request(self.port, "GET",
                               "/api/v1/alerts?sensor_id=pg-t1")
        self.assertEqual(status, 200, body)
        self.assertEqual([a["severity"] for a in body["alerts"]],
                         ["warning", "critical"])
        self.assertIsNone(body["alerts"][0]["value"])  # NaN in the row
        self.assertAlmostEqual(body["alerts"][0]["anomaly_score"], -0.7)

        status, body = request(self.port, "GET",
                               "/api/v1/alerts?acknowledged=true")
        self.assertEqual([a["sensor_id"] for a in body["alerts"]], ["pg-h1"])
        critical = request(self.port, "GET",
                           "/api/v1/alerts?severity=critical")[1]["alerts"][0]
        status, body = request(self.port, "POST",
                               "/api/v1/alerts/%d/ack" % critical["id"])
        self.assertEqual(status, 200, body)
        self.assertTrue(body["acknowledged"])
        status, body = request(self.port, "POST", "/api/v1/alerts/99999/ack")
        self.assertEqual(status, 404, body)

    def test_commerce_figures(self):
        status, body = request(
            self.port, "GET", "/api/v1/ecommerce/stats?"
            "from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z&top=2")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["events"], 4)
        self.assertEqual(body["orders"], 3)
        self.assertEqual(body["revenue"], 170.0)
        self.assertEqual(body["sessions"], 3)
        self.assertEqual(body["conversion_rate"], 1.0)
        self.assertEqual([p["product_name"] for p in body["top_products"]],
                         ["desk", "lamp"])
        status, body = request(self.port, "GET",
                               "/api/v1/ecommerce/events/latest?"
                               "event_type=purchase&limit=2")
        self.assertEqual(status, 200, body)
        self.assertEqual([e["event_id"] for e in body["events"]],
                         ["e4", "e3"])
        self.assertIsNone(body["events"][0]["price"])

    def test_history_skips_non_finite(self):
        status, body = request(
            self.port, "GET", "/api/v1/sensors/pg-t1/history?"
            "from=2026-01-01T00:00:00Z&to=2026-01-01T00:03:00Z&points=2")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["bucket_ms"], 90000)
        self.assertEqual([(p["count"], p["avg"]) for p in body["points"]],
                         [(2, 20.5), (1, 22.0)])

    def test_ingest_without_bus_is_503(self):
        status, body = request(self.port, "POST", "/api/v1/sensors/readings",
                               [])
        self.assertEqual(status, 503, body)
        self.assertIn("bus=kafka", body["detail"])


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
