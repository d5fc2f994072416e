# SPDX-License-Identifier: Apache-2.0
"""Locust task mix over the read endpoints of the sluice API.

Run headless against a server on loopback only, with bounded users and
time, as tests/load/run.sh does:

    locust -f tests/load/locustfile.py --headless -u 50 -r 25 -t 20s \
        --host http://127.0.0.1:8000 --only-summary

The weights favour the endpoints a dashboard polls most.
"""
from locust import HttpUser, between, task

SENSORS = ["sensor-temperature-%03d" % i for i in range(1, 11)]


class ApiReader(HttpUser):
    wait_time = between(0.0, 0.01)

    @task(10)
    def latest(self):
        self.client.get("/api/v1/sensors/latest?limit=10",
                        name="/api/v1/sensors/latest")

    @task(5)
    def stats(self):
        self.client.get("/api/v1/sensors/stats?time_window_minutes=5",
                        name="/api/v1/sensors/stats")

    @task(2)
    def latest_by_type(self):
        self.client.get("/api/v1/sensors/latest?sensor_type=humidity&limit=5",
                        name="/api/v1/sensors/latest?sensor_type")

    @task(2)
    def alerts(self):
        self.client.get("/api/v1/alerts?limit=20", name="/api/v1/alerts")

    @task(2)
    def ecommerce_stats(self):
        self.client.get("/api/v1/ecommerce/stats?time_window_minutes=60",
                        name="/api/v1/ecommerce/stats")

    @task(1)
    def ecommerce_latest(self):
        self.client.get("/api/v1/ecommerce/events/latest?limit=10",
                        name="/api/v1/ecommerce/events/latest")

    @task(1)
    def history(self):
        sensor = SENSORS[hash(self) % len(SENSORS)]
        self.client.get("/api/v1/sensors/%s/history?points=60" % sensor,
                        name="/api/v1/sensors/{sensor_id}/history")

    @task(1)
    def anomalies(self):
        self.client.get("/api/v1/sensors/anomalies?limit=20",
                        name="/api/v1/sensors/anomalies")

    @task(1)
    def health(self):
        self.client.get("/", name="/")
