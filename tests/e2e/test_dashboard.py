# SPDX-License-Identifier: Apache-2.0
"""The dashboard draws live data, and /docs works, in a real browser.

Starts `sluice run` with its generators, loads /dashboard in Debian's
headless Chromium driven by playwright-core (installed by the build from
package-lock.json), waits until a chart has at least two points from the
/ws/sensors stream, and checks that the chart's canvas has ink on it and
that the page loaded nothing from another host. The screenshot is saved in
the test's temporary folder and its path printed. The /docs page must
render every operation of /openapi.json and send one request from its form.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

from harness import Sluice

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HERE = os.path.dirname(os.path.abspath(__file__))


def node_modules():
    """The build's npm folder, beside the sluice binary."""
    return os.path.join(os.path.dirname(os.environ["SLUICE_BINARY"]), "web",
                        "node_modules")


class Dashboard(unittest.TestCase):
    def test_dashboard_draws_live_points(self):
        modules = node_modules()
        self.assertTrue(os.path.isdir(os.path.join(modules, "playwright-core")),
                        "playwright-core missing in %s: the build installs "
                        "it with npm ci" % modules)
        self.assertTrue(os.path.exists(CHROMIUM),
                        "chromium missing: scripts/install-deps --test "
                        "installs it")
        workdir = tempfile.mkdtemp(prefix="sluice-dashboard-")
        screenshot = os.path.join(workdir, "dashboard.png")
        sluice = Sluice("--no-detector", workdir=workdir)
        try:
            env = dict(os.environ, NODE_PATH=modules)
            proc = subprocess.run(
                ["node", os.path.join(HERE, "dashboard_probe.js"),
                 sluice.url("/dashboard"), CHROMIUM, screenshot, "60000"],
                env=env, capture_output=True, text=True, timeout=180)
            self.assertEqual(proc.returncode, 0,
                             "probe failed:\n%s\n%s\n%s" %
                             (proc.stdout, proc.stderr, sluice.read_log()))
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        finally:
            sluice.stop()

        print("dashboard screenshot: %s" % screenshot)
        print("chart points: %s, inked pixels: %d" %
              (result["charts"], result["inked"]))
        self.assertEqual(result["errors"], [])
        self.assertTrue(any(n >= 2 for n in result["charts"].values()),
                        result["charts"])
        self.assertGreater(result["inked"], 0)
        self.assertTrue(os.path.getsize(screenshot) > 0)
        hosts = {urllib.parse.urlsplit(u).netloc for u in result["requests"]}
        self.assertEqual(hosts, {"127.0.0.1:%d" % sluice.port}, hosts)


class DocsPage(unittest.TestCase):
    def test_docs_page_lists_and_tries_endpoints(self):
        modules = node_modules()
        workdir = tempfile.mkdtemp(prefix="sluice-docs-")
        screenshot = os.path.join(workdir, "docs.png")
        sluice = Sluice("--no-detector", workdir=workdir)
        try:
            _, doc = sluice.get("/openapi.json")
            env = dict(os.environ, NODE_PATH=modules)
            proc = subprocess.run(
                ["node", os.path.join(HERE, "docs_probe.js"),
                 sluice.url("/docs"), CHROMIUM, screenshot, "60000"],
                env=env, capture_output=True, text=True, timeout=180)
            self.assertEqual(proc.returncode, 0,
                             "probe failed:\n%s\n%s" %
                             (proc.stdout, proc.stderr))
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        finally:
            sluice.stop()

        print("docs screenshot: %s" % screenshot)
        expected = sorted("%s-%s" % (method, path)
                          for path, item in doc["paths"].items()
                          for method in item)
        self.assertEqual(sorted(result["operations"]), expected)
        self.assertIn("HTTP 200", result["output"])
        self.assertIn('"readings"', result["output"])
        self.assertEqual(result["errors"], [])


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
