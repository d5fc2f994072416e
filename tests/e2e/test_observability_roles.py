# SPDX-License-Identifier: Apache-2.0
"""Checks that every role of the distributed mode serves /metrics.

Starts librdkafka's mock Kafka cluster, `sluice registry`, `produce`,
`process`, `detect` and `dlq` with --metrics-listen on free loopback ports,
and `sluice api`, each role on its own SQLite file except api, which
reads the processor's. Debian's Prometheus scrapes all six. The test
checks through Prometheus's HTTP API that every role is up with its
build info and that records flowed: the processor stored readings the
producer published, the detector read them, and the registry served the
roles' schema requests. promtool checks each raw /metrics text. An
invalid metrics-listen stops a role with status 2 and a message naming
the setting. A metrics-listen port that is taken stops it with status 1.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.request

from cluster import TOPICS, read_file, start, stop, wait_until
from harness import free_port
from test_observability import Prometheus, check_dashboard_queries, require

BINARY = os.environ["SLUICE_BINARY"]
ROLES = ("registry", "produce", "process", "detect", "dlq")


def metrics_text(port):
    url = "http://127.0.0.1:%d/metrics" % port
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain"), r.headers
        return r.read().decode("utf-8")


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def check_invalid_setting(work):
    """A bad address is a configuration error naming the setting."""
    result = subprocess.run(
        [BINARY, "registry", "--db", os.path.join(work, "bad.db"),
         "--metrics-listen", "no-port-here"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result
    assert "metrics-listen" in result.stderr, result.stderr


def check_port_taken(work):
    """A metrics port already in use stops the role with status 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        result = subprocess.run(
            [BINARY, "registry", "--db", os.path.join(work, "taken.db"),
             "--registry-listen", "127.0.0.1:0", "--metrics-listen",
             "127.0.0.1:%d" % taken.getsockname()[1]],
            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result
    assert "cannot serve metrics" in result.stderr, result.stderr


def main():
    work = tempfile.mkdtemp(prefix="sluice-obs-roles-")
    check_invalid_setting(work)
    check_port_taken(work)

    def log(name):
        return os.path.join(work, name + ".log")

    topics = []
    for topic in TOPICS:
        topics += ["--topic", "%s:3" % topic]
    mock = start([os.environ["SLUICE_MOCK_CLUSTER"], "--brokers", "1"] +
                 topics, log("cluster"), stdout=subprocess.PIPE,
                 stdin=subprocess.PIPE)
    brokers = mock.stdout.readline().decode().strip()
    assert brokers.startswith(("127.0.0.1:", "localhost:")), brokers

    metrics_ports = {role: free_port() for role in ROLES}
    registry_port = free_port()
    api_port = free_port()
    processes = {}
    processes["registry"] = start(
        [BINARY, "registry", "--db", os.path.join(work, "registry.db"),
         "--registry-listen", "127.0.0.1:%d" % registry_port,
         "--metrics-listen", "127.0.0.1:%d" % metrics_ports["registry"]],
        log("registry"))
    wait_until(lambda: listening(registry_port), "the registry to listen",
               [log("registry")], timeout=30)
    kafka = ["--bus", "kafka", "--kafka-brokers", brokers, "--registry-url",
             "http://127.0.0.1:%d" % registry_port]
    extra = {"produce": ["--rate", "50", "--event-interval", "0.5"],
             "process": ["--batch-timeout-ms", "20"],
             "detect": ["--detect-min-samples", "40", "--detect-window",
                        "100"],
             "dlq": []}
    for role in ("process", "detect", "dlq", "produce"):
        processes[role] = start(
            [BINARY, role, "--db", os.path.join(work, role + ".db"),
             "--metrics-listen", "127.0.0.1:%d" % metrics_ports[role]] +
            extra[role] + kafka, log(role))
    processes["api"] = start(
        [BINARY, "api", "--db", os.path.join(work, "process.db"),
         "--listen", "127.0.0.1:%d" % api_port], log("api"))

    targets = {"sluice-" + role: "127.0.0.1:%d" % port
               for role, port in metrics_ports.items()}
    targets["sluice-api"] = "127.0.0.1:%d" % api_port
    logs = [log(name) for name in processes]
    prom = None
    try:
        for name, proc in processes.items():
            port = metrics_ports.get(name, api_port)
            wait_until(lambda: listening(port) or proc.poll() is not None,
                       "%s to serve metrics" % name, logs, timeout=60)
            assert proc.poll() is None, read_file(log(name))

        prom = Prometheus(work, targets, os.path.join(
            os.path.dirname(os.path.dirname(os.path.dirname(
                os.path.abspath(__file__)))), "deploy", "alerts.yml"))

        def value(expr):
            result = prom.query(expr)["data"]["result"]
            return float(result[0]["value"][1]) if result else 0.0

        prom.wait_until(lambda: value('count(up{job=~"sluice-.*"} == 1)') ==
                        len(targets), "every role up")
        assert value("count(sluice_build_info)") == len(targets)
        prom.wait_until(
            lambda: value('sum(sluice_records_stored_total'
                          '{job="sluice-process"})') > 0,
            "the processor to store readings", timeout=180)
        prom.wait_until(
            lambda: value('sum(sluice_detector_readings_total'
                          '{job="sluice-detect"})') > 0,
            "the detector to read readings", timeout=180)
        prom.wait_until(
            lambda: value('sluice_registry_requests_total'
                          '{job="sluice-registry"}') > 0,
            "the registry's request count", timeout=60)
        # The processor's group and its dead-letter handler's.
        assert value('count(sluice_consumer_lag_records'
                     '{job="sluice-process"})') == 2
        assert value('count(sluice_consumer_lag_records'
                     '{job="sluice-dlq",group="dlq"})') == 1

        # The Kafka statistics arrive every 5 s; wait for the gauges.
        prom.wait_until(
            lambda: value("count(sluice_kafka_producer_queue_messages)") > 0,
            "the Kafka statistics gauges", timeout=60)
        check_dashboard_queries(prom, kafka_only=True)
        print("the dashboards' Kafka panels return data")

        promtool = require("promtool")
        for role, port in list(metrics_ports.items()) + [("api", api_port)]:
            text = metrics_text(port)
            assert "sluice_build_info{" in text, role
            result = subprocess.run([promtool, "check", "metrics"],
                                    input=text, capture_output=True,
                                    text=True)
            assert result.returncode == 0, "%s: %s%s" % (
                role, result.stdout, result.stderr)
        print("%d roles serve /metrics that promtool accepts and "
              "Prometheus scrapes" % len(targets))
    finally:
        if prom is not None:
            prom.stop()
    for name in ("produce", "process", "detect", "dlq", "api", "registry"):
        stop(processes[name], name, log(name))
    mock.stdin.close()
    assert mock.wait(timeout=30) == 0
    shutil.rmtree(work, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
