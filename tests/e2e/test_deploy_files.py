# SPDX-License-Identifier: Apache-2.0
"""Checks the deployment files against each other and against the sluice
binary, since no Docker engine or Kubernetes runs the tests.

- Every YAML and JSON file under deploy/, docker-compose.yml and the CI
  workflow parse.
- Every SLUICE_* variable in the compose file, the Helm chart and the
  Dockerfile is a setting that `sluice --help` lists, and every command
  is one of its roles.
- Addresses agree. Prometheus scrapes the compose services on the ports
  their SLUICE_LISTEN or SLUICE_METRICS_LISTEN set. The brokers, store,
  registry and Grafana data sources name compose services with matching
  ports and credentials. Grafana's dashboards use provisioned data
  sources and tables that the PostgreSQL migrations create.
- The runtime image installs the package of every library the binary
  links to, and the build stage copies every source CMake reads.
- Every SQL query of the dashboards runs on a schema `sluice migrate`
  created in a throwaway PostgreSQL.
- deploy/connect/register.sh PUTs each connector config to a Kafka
  Connect stand-in on loopback.
- The CI workflow has the jobs and triggers it promises.
"""
import glob
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import urllib.parse

import yaml

from cluster import Postgres

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
BINARY = os.environ["SLUICE_BINARY"]


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def load_yaml(path):
    return yaml.safe_load(read(path))


def sluice_help():
    """Returns (roles, settings): role names and {SLUICE_NAME: flag}."""
    text = subprocess.run([BINARY, "--help"], capture_output=True,
                          text=True, check=True).stdout
    roles = set(re.findall(r"^  ([a-z]+) {2,}", text.split("Settings")[0],
                           re.M))
    settings = dict(
        (env, flag) for flag, env in
        re.findall(r"^  --([a-z0-9-]+)(?: VALUE)?  (SLUICE_[A-Z0-9_]+)",
                   text, re.M))
    assert "run" in roles, roles
    assert "api" in roles, roles
    assert len(settings) > 30, "could not parse the settings: %s" % text
    return roles, settings


def host_port(address):
    """Splits "host:port", "[v6]:port" or a URL into (host, port)."""
    if "://" in address:
        parsed = urllib.parse.urlsplit(address)
        return parsed.hostname, parsed.port
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def check_parse_all():
    count = 0
    for path in glob.glob(os.path.join(DEPLOY, "**", "*"), recursive=True):
        rel = os.path.relpath(path, ROOT)
        if os.sep + "templates" + os.sep in path:
            continue  # Go templates, not YAML until Helm renders them
        if path.endswith((".yml", ".yaml")):
            assert yaml.safe_load(read(rel)) is not None, rel
            count += 1
        elif path.endswith(".json"):
            json.loads(read(rel))
            count += 1
    for rel in ("docker-compose.yml", ".github/workflows/ci.yml"):
        assert isinstance(load_yaml(rel), dict), rel
        count += 1
    assert count >= 12, "only %d files parsed" % count
    print("%d YAML and JSON files parse" % count)


def sluice_services(compose):
    return {name: svc for name, svc in compose["services"].items()
            if svc.get("image", "").startswith("sluice:")}


def check_compose_env(compose, roles, settings):
    services = sluice_services(compose)
    assert len(services) >= 7, sorted(services)
    seen_roles = set()
    for name, svc in services.items():
        for var in svc.get("environment", {}):
            assert var in settings, \
                "%s sets %s, which sluice does not read" % (name, var)
        command = svc.get("command", ["run"])
        assert command[0] in roles | {"dlq"}, \
            "%s runs unknown role %r" % (name, command[0])
        seen_roles.add(command[0])
    for role in ("produce", "replay", "process", "detect", "api", "dlq",
                 "registry"):
        assert role in seen_roles, "no compose service runs sluice %s" % role
    print("compose: %d sluice services, every variable is a setting" %
          len(services))


def scrape_targets():
    """Returns {job: [(host, port)]} of deploy/prometheus.yml."""
    config = load_yaml("deploy/prometheus.yml")
    targets = {}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                targets.setdefault(job["job_name"], []).append(
                    host_port(target))
    for rule_file in config["rule_files"]:
        assert os.path.exists(os.path.join(DEPLOY, rule_file)), rule_file
    return targets


def exposed_port(svc):
    """The port a sluice service serves /metrics on, from its settings."""
    env = svc.get("environment", {})
    if svc["command"][0] == "api":
        return host_port(env["SLUICE_LISTEN"])[1]
    if "SLUICE_METRICS_LISTEN" in env:
        return host_port(env["SLUICE_METRICS_LISTEN"])[1]
    return None


def check_scrape_targets(compose):
    targets = scrape_targets()
    services = compose["services"]
    scraped = set()
    for job, addresses in targets.items():
        for host, port in addresses:
            if host == "localhost":
                continue  # Prometheus itself
            assert host in services, \
                "job %s scrapes %s, which is no compose service" % (job, host)
            scraped.add(host)
            svc = services[host]
            if host in sluice_services(compose):
                assert exposed_port(svc) == port, \
                    "job %s scrapes %s:%d but it serves metrics on %s" % (
                        job, host, port, exposed_port(svc))
                # The health check uses the same port.
                assert str(port) in " ".join(svc["healthcheck"]["test"]), \
                    "%s health check does not use port %d" % (host, port)
    for name, svc in sluice_services(compose).items():
        if svc.get("profiles") or svc["command"][0] in ("migrate", "replay"):
            continue  # one-shot containers
        assert name in scraped, "no scrape job for %s" % name
    print("prometheus.yml: %d jobs, every target is a compose service on "
          "its metrics port" % len(targets))


def check_compose_addresses(compose):
    services = compose["services"]
    pg = services["postgres"]["environment"]
    kafka_listeners = services["kafka"]["environment"]["KAFKA_LISTENERS"]
    registry_env = services["sluice-registry"]["environment"]
    registry_port = host_port(registry_env["SLUICE_REGISTRY_LISTEN"])[1]
    for name, svc in sluice_services(compose).items():
        env = svc.get("environment", {})
        if "SLUICE_KAFKA_BROKERS" in env:
            for broker in env["SLUICE_KAFKA_BROKERS"].split(","):
                host, port = host_port(broker)
                assert host in services, (name, broker)
                assert ":%d" % port in kafka_listeners, (name, broker)
        store = urllib.parse.urlsplit(env["SLUICE_STORE"])
        assert store.scheme in ("postgresql", "postgres"), (name, store)
        assert store.hostname == "postgres", (name, store.hostname)
        assert store.username == pg["POSTGRES_USER"], name
        assert store.password == pg["POSTGRES_PASSWORD"], name
        assert store.path.lstrip("/") == pg["POSTGRES_DB"], name
        if "SLUICE_TRACE_ENDPOINT" in env:
            host, port = host_port(env["SLUICE_TRACE_ENDPOINT"])
            assert host in services, (name, host)
            assert "127.0.0.1:%d:%d" % (port, port) in \
                services[host]["ports"], (name, env["SLUICE_TRACE_ENDPOINT"])
        if "SLUICE_REGISTRY_URL" in env:
            assert host_port(env["SLUICE_REGISTRY_URL"]) == (
                "sluice-registry", registry_port), (name, env)
        for dep in svc.get("depends_on", {}):
            assert dep in services, "%s depends on unknown %s" % (name, dep)
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), \
                "%s publishes %s beyond loopback" % (name, port)
        for dep in svc.get("depends_on", {}):
            assert dep in services, "%s depends on unknown %s" % (name, dep)
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and source != "./data":
                assert os.path.exists(os.path.join(ROOT, source)), \
                    "%s mounts missing %s" % (name, source)
    print("compose: brokers, store, registry, ports and mounts agree")


def postgres_tables():
    tables = set()
    for path in glob.glob(os.path.join(ROOT, "src", "store", "sql",
                                       "postgres", "*.sql")):
        with open(path) as f:
            tables |= set(re.findall(
                r"CREATE (?:TABLE|MATERIALIZED VIEW) (\w+)", f.read()))
    assert "alerts" in tables, tables
    assert "dlq_errors" in tables, tables
    return tables


def check_grafana(compose):
    sources = load_yaml(
        "deploy/grafana/provisioning/datasources/datasources.yml")
    by_uid = {s["uid"]: s for s in sources["datasources"]}
    services = compose["services"]
    pg = services["postgres"]["environment"]
    for source in by_uid.values():
        host, port = host_port(source["url"])
        assert host in services, "data source %s: %s" % (source["uid"], host)
        if source["type"] == "prometheus":
            assert port == 9090, source
        else:
            assert port == 5432, source
            assert source["user"] == pg["POSTGRES_USER"], source
            assert source["jsonData"]["database"] == pg["POSTGRES_DB"]

    provider = load_yaml(
        "deploy/grafana/provisioning/dashboards/dashboards.yml")
    path = provider["providers"][0]["options"]["path"]
    mounts = [v.split(":") for v in services["grafana"]["volumes"]]
    assert ["./deploy/grafana/dashboards", path, "ro"] in mounts, mounts

    tables = postgres_tables()
    files = sorted(glob.glob(os.path.join(DEPLOY, "grafana", "dashboards",
                                          "*.json")))
    assert len(files) == 3, files
    uids = set()
    for name in files:
        with open(name) as f:
            dashboard = json.load(f)
        assert dashboard["uid"] not in uids, dashboard["uid"]
        uids.add(dashboard["uid"])
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in by_uid, \
                "%s / %s: unknown data source" % (name, panel["title"])
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] in by_uid, panel["title"]
                for table in re.findall(r"FROM (\w+)",
                                        target.get("rawSql", "")):
                    assert table in tables, \
                        "%s / %s reads unknown table %s" % (
                            name, panel["title"], table)
    print("grafana: %d dashboards use provisioned data sources and known "
          "tables" % len(files))


def check_dashboard_sql():
    """Runs every SQL query of the dashboards on a PostgreSQL database that
    `sluice migrate` created, with Grafana's time macro replaced."""
    pg = Postgres()
    result = subprocess.run([BINARY, "migrate", "--store", pg.url],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    count = 0
    for name in sorted(glob.glob(os.path.join(DEPLOY, "grafana",
                                              "dashboards", "*.json"))):
        with open(name) as f:
            dashboard = json.load(f)
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                if "rawSql" not in target:
                    continue
                # $__unixEpochFilter(x) is Grafana's "x within the time
                # range", with x in seconds since the epoch.
                sql = re.sub(r"\$__unixEpochFilter\(([^()]*(?:\([^()]*\))?"
                             r"[^()]*)\)", r"(\1) BETWEEN 0 AND 4102444800",
                             target["rawSql"])
                assert "$__" not in sql, "unknown macro in %s" % sql
                pg.psql(sql)
                count += 1
    pg.stop()
    assert count >= 4, "only %d SQL queries found" % count
    print("grafana: %d SQL queries run on the migrated schema" % count)


def check_helm(roles, settings):
    chart = "deploy/helm/sluice"
    values = load_yaml(chart + "/values.yaml")
    assert load_yaml(chart + "/Chart.yaml")["name"] == "sluice"
    for role in values["roles"]:
        assert role in roles | {"dlq"}, "values.yaml: unknown role %s" % role
    text = read(chart + "/values.yaml")
    for path in glob.glob(os.path.join(ROOT, chart, "templates", "*")):
        with open(path) as f:
            template = f.read()
        text += template
        # Every .Values path a template reads exists in values.yaml.
        for ref in re.findall(r"\.Values((?:\.\w+)+)", template):
            node = values
            for key in ref.strip(".").split("."):
                assert isinstance(node, dict) and key in node, \
                    "%s reads .Values%s, not in values.yaml" % (
                        os.path.basename(path), ref)
                node = node[key]
    names = set(re.findall(r"SLUICE_[A-Z0-9_]+", text))
    unknown = names - set(settings)
    assert not unknown, "Helm chart sets unknown variables %s" % unknown
    print("helm: %d SLUICE_* variables, all settings; every .Values path "
          "exists" % len(names))


def linked_packages():
    """Debian packages of the libraries the binary links to directly,
    sanitizer and C runtime libraries left out."""
    dump = subprocess.run(["objdump", "-p", BINARY], capture_output=True,
                          text=True, check=True).stdout
    needed = re.findall(r"NEEDED\s+(\S+)", dump)
    libs = subprocess.run(["ldd", BINARY], capture_output=True, text=True,
                          check=True).stdout
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", libs, re.M))
    packages = set()
    for lib in needed:
        if re.match(r"lib(asan|ubsan|c|m|gcc_s|pthread|dl)\.so", lib):
            continue
        real = os.path.realpath(paths[lib])
        # With merged /usr, dpkg may know the file under /lib.
        for candidate in (real, re.sub(r"^/usr", "", real)):
            owner = subprocess.run(["dpkg", "-S", candidate],
                                   capture_output=True, text=True)
            if owner.returncode == 0:
                packages.add(owner.stdout.split(":")[0])
                break
        else:
            raise AssertionError("no package owns %s" % real)
    return packages


def package_closure(packages):
    """Returns packages plus their direct Depends, as installed here."""
    closure = set(packages)
    for package in packages:
        depends = subprocess.run(
            ["dpkg-query", "-W", "-f=${Depends}", package],
            capture_output=True, text=True).stdout
        closure |= set(re.findall(r"(?:^|, )([a-z0-9.+-]+)", depends))
    return closure


def check_build_context(dockerfile):
    """Every source the CMake configure step reads without the tests is
    copied into the build stage."""
    build_stage = dockerfile.split("FROM debian:12-slim")[0]
    copied = [src for src, _ in re.findall(r"^COPY (\S+) (\S+)$",
                                           build_stage, re.M)]

    def is_copied(path):
        return any(path == c or path.startswith(c.rstrip("/") + "/")
                   for c in copied)

    top = read("CMakeLists.txt").split("if(SLUICE_BUILD_TESTS)")
    needed = set(re.findall(r"add_subdirectory\(([^)\s]+)\)",
                            top[0] + top[1].split("endif()", 1)[1]))
    for cmake in [os.path.join(ROOT, "CMakeLists.txt")] + [
            os.path.join(ROOT, d, "CMakeLists.txt") for d in needed]:
        with open(cmake) as f:
            needed |= set(re.findall(r"\$\{CMAKE_SOURCE_DIR\}/([\w./-]+)",
                                     f.read()))
    missing = sorted(p for p in needed
                     if not is_copied(p) and "*" not in p)
    assert not missing, "the image build does not copy %s" % missing


def check_dockerfile(settings):
    text = read("Dockerfile")
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", text, re.M)
    assert len(stages) >= 2, "not a multi-stage build: %s" % stages
    assert stages[-1][0] == "debian:12-slim", stages[-1]
    for var in re.findall(r"\b(SLUICE_[A-Z0-9_]+)=", text):
        assert var in settings, "Dockerfile sets unknown %s" % var
    runtime = text.split("FROM debian:12-slim")[1]
    install = re.search(r"apt-get install[^\n]*\\\n((?:.*\\\n)+)", runtime)
    listed = set(re.findall(r"\b(lib[a-z0-9.+-]+|curl|ca-certificates)\b",
                            install.group(1)))
    available = package_closure(listed)
    missing = sorted(p for p in linked_packages() if p not in available)
    assert not missing, "runtime image lacks %s" % missing
    assert 'ENTRYPOINT ["/usr/local/bin/sluice"]' in text
    check_build_context(text)
    print("Dockerfile: %d stages, runtime has every linked library" %
          len(stages))


class ConnectStandIn(http.server.BaseHTTPRequestHandler):
    """Responds like Kafka Connect's REST API and records each PUT."""
    received = []

    def do_GET(self):
        self.reply(200, b"[]")

    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ConnectStandIn.received.append(
            (self.path, self.headers["Content-Type"], json.loads(body)))
        self.reply(201 if "reject" not in self.path else 400,
                   b'{"error_code":400,"message":"bad config"}')

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def check_connect(compose):
    services = compose["services"]
    configs = {}
    for path in sorted(glob.glob(os.path.join(DEPLOY, "connect", "*.json"))):
        with open(path) as f:
            configs[os.path.basename(path)[:-5]] = json.load(f)
    s3 = configs["s3-sink-sensor-readings"]
    assert s3["topics"] == "sensor-readings"
    assert host_port(s3["store.url"])[0] in services
    assert host_port(s3["value.converter.schema.registry.url"]) == (
        "sluice-registry", 8081)
    source = configs["debezium-postgres-alerts"]
    pg = services["postgres"]["environment"]
    assert source["table.include.list"] == "public.alerts"
    assert "alerts" in postgres_tables()
    assert source["database.hostname"] in services
    assert source["database.user"] == pg["POSTGRES_USER"]
    assert source["database.password"] == pg["POSTGRES_PASSWORD"]
    assert source["database.dbname"] == pg["POSTGRES_DB"]
    assert "wal_level=logical" in services["postgres"]["command"]

    server = http.server.HTTPServer(("127.0.0.1", 0), ConnectStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = dict(os.environ, CONNECT_URL="http://127.0.0.1:%d" %
               server.server_port, CONNECT_WAIT="10")
    script = os.path.join(DEPLOY, "connect", "register.sh")
    try:
        result = subprocess.run(["sh", script], env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        put = {path: (ctype, body)
               for path, ctype, body in ConnectStandIn.received}
        for name, config in configs.items():
            ctype, body = put["/connectors/%s/config" % name]
            assert ctype == "application/json", ctype
            assert body == config, name
        # A connector Connect rejects fails the script, with the reason.
        bad = os.path.join(os.path.dirname(BINARY), "reject.json")
        with open(bad, "w") as f:
            f.write("{}")
        result = subprocess.run(["sh", script, bad], env=env,
                                capture_output=True, text=True, timeout=60)
        os.unlink(bad)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "bad config" in result.stderr, result.stderr
    finally:
        server.shutdown()
    print("connect: %d connectors registered through register.sh" %
          len(configs))


def check_ci():
    ci = load_yaml(".github/workflows/ci.yml")
    # YAML 1.1 reads the key "on" as true.
    triggers = ci.get("on", ci.get(True))
    assert triggers["push"]["branches"] == ["main"], triggers
    assert "pull_request" in triggers, triggers
    jobs = ci["jobs"]
    steps = {name: "\n".join(str(s.get("run", "")) + str(s.get("uses", ""))
                             for s in job["steps"])
             for name, job in jobs.items()}
    for tool in ("clang-format", "clang-tidy", "cppcheck"):
        assert tool in steps["lint"], "lint job lacks %s" % tool
    assert "lcov" in steps["unit-coverage"]
    assert "--coverage" in steps["unit-coverage"]
    assert "-L unit" in steps["unit-coverage"]
    assert "SLUICE_SANITIZE=ON" in steps["sanitizers"]
    assert "postgres" in jobs["integration-postgres"]["services"]
    assert "-L integration" in steps["integration-postgres"]
    assert "docker/build-push-action" in steps["docker-image"]
    print("ci.yml: %d jobs on push to main and pull requests" % len(jobs))


def main():
    roles, settings = sluice_help()
    compose = load_yaml("docker-compose.yml")
    check_parse_all()
    check_compose_env(compose, roles, settings)
    check_scrape_targets(compose)
    check_compose_addresses(compose)
    check_grafana(compose)
    check_dashboard_sql()
    check_helm(roles, settings)
    check_dockerfile(settings)
    check_connect(compose)
    check_ci()
    print("PASS")


if __name__ == "__main__":
    sys.exit(main())
