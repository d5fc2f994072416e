# SPDX-License-Identifier: Apache-2.0
"""/openapi.json matches the routes the server really has.

Every path and method in the document is called with the document's own
example parameters and must answer with something other than 404 or 405.
Then a list of candidate paths (the documented ones, near misses and
plausible guesses) is probed: each one that returns anything but 404
must be in the document, so an undocumented route fails the test.
"""
import json
import re
import sys
import unittest
import urllib.error
import urllib.request

from harness import Sluice

# Paths a client might try. Those not served must return 404; those served
# must be documented.
CANDIDATES = [
    "/", "/health", "/api", "/api/v1", "/api/v1/sensors",
    "/api/v1/sensors/latest", "/api/v1/sensors/stats",
    "/api/v1/sensors/anomalies", "/api/v1/sensors/readings",
    "/api/v1/sensors/sensor-temperature-001/history",
    "/api/v1/sensors/sensor-temperature-001", "/api/v1/stats",
    "/api/v1/alerts", "/api/v1/alerts/1", "/api/v1/alerts/1/ack",
    "/api/v1/ecommerce", "/api/v1/ecommerce/stats",
    "/api/v1/ecommerce/events", "/api/v1/ecommerce/events/latest",
    "/api/v1/dlq", "/api/v1/dlq/1", "/api/v1/dlq/1/replay",
    "/api/v2/sensors/latest", "/metrics", "/openapi.json", "/openapi.yaml",
    "/docs", "/docs/", "/redoc", "/swagger", "/dashboard", "/dashboard/",
    "/static/dashboard.js", "/static/docs.js", "/static/sluice.css",
    "/static/uPlot.iife.min.js", "/static/uPlot.min.css", "/static/",
    "/index.html", "/favicon.ico", "/admin",
]

# Files the pages load: served as part of /docs and /dashboard, not API
# operations, so the document does not list them.
PAGE_ASSETS = {"/static/dashboard.js", "/static/docs.js",
               "/static/sluice.css", "/static/uPlot.iife.min.js",
               "/static/uPlot.min.css"}


def call(sluice, method, path, body=None):
    """Returns the status, with 0 in place of a 404 for a row that does
    not exist, which differs from a missing route by its detail."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(sluice.url(path), data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status
    except urllib.error.HTTPError as e:
        if e.code == 404:
            detail = json.loads(e.read().decode("utf-8")).get("detail")
            if detail != "Not Found":
                return 0
        return e.code


def template_regex(path):
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+",
                                   re.escape(path)) + "$")


class OpenApiMatchesRoutes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sluice = Sluice("--no-detector")
        status, cls.doc = cls.sluice.get("/openapi.json")
        assert status == 200, status

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()

    def test_document_is_openapi_31(self):
        self.assertEqual(self.doc["openapi"], "3.1.0")
        self.assertIn("title", self.doc["info"])
        self.assertGreaterEqual(len(self.doc["paths"]), 15)

    def test_every_documented_operation_answers(self):
        for path, item in self.doc["paths"].items():
            for method, op in item.items():
                url = path
                query = []
                for param in op.get("parameters", []):
                    if "$ref" in param:
                        continue
                    if param["in"] == "path":
                        url = url.replace("{%s}" % param["name"],
                                          str(param["example"]))
                    elif "example" in param:
                        query.append("%s=%s" % (param["name"],
                                                param["example"]))
                if query:
                    url += "?" + "&".join(query)
                body = None
                media = op.get("requestBody", {}).get("content", {}).get(
                    "application/json")
                if media is not None:
                    body = media.get("example")
                status = call(self.sluice, method.upper(), url, body)
                with self.subTest(method=method, path=url):
                    self.assertNotIn(status, (404, 405),
                                     "%s %s answered %d" %
                                     (method.upper(), url, status))
                    # Examples are valid, so no 422 and no server error.
                    self.assertNotEqual(status, 422)
                    self.assertLess(status, 500)

    def test_every_answering_route_is_documented(self):
        patterns = [template_regex(p) for p in self.doc["paths"]]
        for path in CANDIDATES:
            get = call(self.sluice, "GET", path)
            post = call(self.sluice, "POST", path, {})
            answers = get != 404 or post != 404
            documented = any(p.match(path) for p in patterns)
            with self.subTest(path=path):
                if path in PAGE_ASSETS:
                    self.assertEqual(get, 200)
                elif answers:
                    self.assertTrue(documented,
                                    "%s answers (GET %d, POST %d) but is not"
                                    " in /openapi.json" % (path, get, post))


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
