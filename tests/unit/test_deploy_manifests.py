"""The production deployment files (compose, Kubernetes, Dockerfile, Alertmanager) agree with
the code: every command is a real `wuguan` subcommand, every setting is one the services read
(with a value they accept), ports, probes and scrape targets line up.

Docker and a cluster are not available here, so this checks what can be checked statically.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from services.common.config import Settings
from services.composition import REGISTRY, SERVICES, parser
from services.finance.settings import ApiSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
K8S = DEPLOY / "k8s"
CONFIG_SOURCE = ROOT / "services" / "common" / "config.py"
API_CONFIG_SOURCE = ROOT / "services" / "finance" / "settings.py"
API_PORT = 8110  # WUGUAN_API_PORT in every deployment file


# ---------------------------------------------------------------- helpers


def known_env_names() -> set[str]:
    """Every variable services/common/config.py and the finance API's settings read, from their source."""
    source = CONFIG_SOURCE.read_text()
    names = set(re.findall(r'"((?:WUGUAN|KAFKA)_[A-Z_]+|DATABASE_URL)"', source + API_CONFIG_SOURCE.read_text()))
    if 'f"WUGUAN_{service.upper()}_PORT"' in source:
        names |= {f"WUGUAN_{s.upper()}_PORT" for s in SERVICES}
    return names


def ours(name: str) -> bool:
    return name.startswith(("WUGUAN_", "KAFKA_")) or name == "DATABASE_URL"


def assert_settings_accepted(env: dict, tmp_path: Path) -> Settings:
    """Names known to the services, and values Settings accepts (policy dir made real)."""
    unknown = {n for n in env if ours(n)} - known_env_names()
    assert not unknown, f"set but never read by the services: {sorted(unknown)}"
    if env.get("WUGUAN_POLICY_DIR"):
        env = {**env, "WUGUAN_POLICY_DIR": str(tmp_path)}
    return Settings.from_env({k: str(v) for k, v in env.items()}, web_ports=REGISTRY.web_ports)


def assert_wuguan_command(command: list[str]) -> object:
    assert command[0] == "wuguan", command
    try:
        return parser().parse_args(command[1:])
    except SystemExit:
        pytest.fail(f"not a wuguan command: {command}")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def wuguan_compose_services() -> dict[str, dict]:
    return {
        name: svc for name, svc in compose()["services"].items() if (svc.get("command") or [None])[0] == "wuguan"
    }


def k8s_docs() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [dict(d, _file=path.name) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def k8s(kind: str) -> list[dict]:
    return [d for d in k8s_docs() if d.get("kind") == kind]


def k8s_config_data() -> dict:
    (config,) = [c for c in k8s("ConfigMap") if c["metadata"]["name"] == "wuguan-config"]
    return config["data"]


def containers(workload: dict) -> list[dict]:
    return pod_spec(workload)["containers"]


def pod_spec(workload: dict) -> dict:
    spec = workload["spec"]["jobTemplate"]["spec"] if workload["kind"] == "CronJob" else workload["spec"]
    return spec["template"]["spec"]


def workloads() -> list[dict]:
    return k8s("Deployment") + k8s("Job") + k8s("CronJob")


def container_env(container: dict) -> dict:
    env = {}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == "wuguan-config"
        env.update(k8s_config_data())
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", "<from secret>")
    return env


def assert_api_settings_accepted(env: dict) -> ApiSettings:
    """The finance API's own settings too; a secret from a Secret or `${...}` stands as a valid one."""
    filled = {k: ("x" * 32 if k == "WUGUAN_API_SECRET" else str(v)) for k, v in env.items()}
    return ApiSettings.from_env(filled)


def test_helpers_see_unknown_names_and_bad_commands(tmp_path):
    assert {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "WUGUAN_POLICY_DIR", "WUGUAN_DUNNING_PORT",
            "WUGUAN_API_SECRET", "WUGUAN_API_PORT", "WUGUAN_GAUGES_INTERVAL_MS"} <= known_env_names()
    with pytest.raises(AssertionError, match="WUGUAN_PARTITION"):
        assert_settings_accepted({"WUGUAN_PARTITION": "6"}, tmp_path)
    with pytest.raises(pytest.fail.Exception):
        assert_wuguan_command(["wuguan", "worker", "billing-guard"])


# ---------------------------------------------------------------- compose


def test_compose_runs_kafka_in_kraft_mode_postgres_and_monitoring():
    services = compose()["services"]
    assert {"kafka", "postgres", "prometheus", "alertmanager", "grafana"} <= services.keys()
    kafka = services["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"] and "broker" in kafka["KAFKA_PROCESS_ROLES"]
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" in kafka
    assert not any("zookeeper" in str(s).lower() for s in services.values())


def test_compose_commands_are_wuguan_subcommands_covering_every_service(tmp_path):
    commands = [svc["command"] for svc in wuguan_compose_services().values()]
    parsed = [assert_wuguan_command(c) for c in commands]
    assert sorted(a.service for a in parsed if a.command == "worker") == sorted(SERVICES)
    assert any(a.command == "topics" and a.action == "create" for a in parsed)


def test_compose_environment_is_read_by_the_services(tmp_path):
    for name, svc in wuguan_compose_services().items():
        env = {k: re.sub(r"\$\{[^}]*\}", "secret", str(v)) for k, v in svc["environment"].items()}
        settings = assert_settings_accepted(env, tmp_path)
        # Inside a container the default 127.0.0.1 would be unreachable for Prometheus.
        assert settings.web_host == "0.0.0.0", name
        assert settings.kafka_bootstrap_servers == "kafka:9092" and "@postgres:5432/" in settings.database_url


def test_compose_workers_listen_check_health_and_are_scraped_where_prometheus_looks(tmp_path):
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "wuguan"]
    scraped = {c["labels"]["service"]: c["targets"][0] for c in job["static_configs"]}
    assert scraped.keys() == set(SERVICES)
    for name, svc in wuguan_compose_services().items():
        args = parser().parse_args(svc["command"][1:])
        if args.command != "worker":
            continue
        port = assert_settings_accepted(svc["environment"] | {"DATABASE_URL": "x"}, tmp_path).web_ports[args.service]
        assert scraped[args.service] == f"{name}:{port}"
        assert f"http://127.0.0.1:{port}/healthz" in " ".join(svc["healthcheck"]["test"])
        assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_compose_runs_the_finance_api_where_prometheus_scrapes_it():
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "wuguan-finance"]
    (target,) = job["static_configs"]
    (name, api), = [(n, s) for n, s in wuguan_compose_services().items() if s["command"] == ["wuguan", "api"]]
    settings = assert_api_settings_accepted(api["environment"])
    assert (settings.host, settings.port) == ("0.0.0.0", API_PORT)
    assert target == {"targets": [f"{name}:{API_PORT}"], "labels": {"service": "finance"}}
    assert f"http://127.0.0.1:{API_PORT}/healthz" in " ".join(api["healthcheck"]["test"])
    assert "${WUGUAN_API_SECRET:?" in api["environment"]["WUGUAN_API_SECRET"]  # required, never a default
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_mounts_existing_files_and_prometheus_loads_the_rules():
    for name, svc in compose()["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"
    prometheus = compose()["services"]["prometheus"]
    assert "../prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    build = compose()["x-wuguan-image"]["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


# ---------------------------------------------------------------- Kubernetes


def test_k8s_manifests_parse_and_kustomization_lists_them():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    for doc in k8s_docs():
        if doc["_file"] != "kustomization.yaml":
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
            if doc["kind"] != "Namespace":
                assert doc["metadata"]["namespace"] == "wuguan", doc["metadata"]["name"]


def test_k8s_commands_are_wuguan_subcommands(tmp_path):
    parsed = [assert_wuguan_command(c["command"]) for w in workloads() for c in containers(w)]
    assert sorted(a.service for a in parsed if a.command == "worker") == sorted(SERVICES)
    assert {"topics", "migrate", "verify"} <= {a.command for a in parsed}
    assert any(a.command == "topics" and a.action == "create" for a in parsed)


def test_k8s_environment_is_read_by_the_services(tmp_path):
    for workload in workloads():
        for container in containers(workload):
            settings = assert_settings_accepted(container_env(container), tmp_path)
            assert settings.web_host == "0.0.0.0"


def test_k8s_deployments_probe_healthz_on_their_port_and_mount_policies(tmp_path):
    partitions = int(k8s_config_data()["WUGUAN_PARTITIONS"])
    policy_dir = k8s_config_data()["WUGUAN_POLICY_DIR"]
    services = {s["metadata"]["name"]: s for s in k8s("Service")}
    seen = set()
    for deployment in worker_deployments():
        (container,) = containers(deployment)
        service = parser().parse_args(container["command"][1:]).service
        seen.add(service)
        assert 1 <= deployment["spec"]["replicas"] <= partitions
        env = container_env(container)
        port = assert_settings_accepted(env, tmp_path).web_ports[service]
        assert f"WUGUAN_{service.upper()}_PORT" in env  # explicit, not a default
        (declared,) = container["ports"]
        assert (declared["name"], declared["containerPort"]) == ("metrics", port)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}, probe
        (db,) = [e for e in container["env"] if e["name"] == "DATABASE_URL"]
        assert db["valueFrom"]["secretKeyRef"] == {"name": "wuguan-database", "key": "DATABASE_URL"}
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert volumes[mounts[policy_dir]]["configMap"]["name"] == "wuguan-policies"
        # The Service for scraping selects these pods on the same port.
        scrape = services[deployment["metadata"]["name"]]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert scrape["spec"]["selector"].items() <= labels.items()
        assert scrape["spec"]["ports"] == [{"name": "metrics", "port": port, "targetPort": "metrics"}]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert seen == set(SERVICES)


def worker_deployments() -> list[dict]:
    return [d for d in k8s("Deployment") if containers(d)[0]["command"][:2] == ["wuguan", "worker"]]


def test_k8s_finance_api_listens_probes_and_reads_its_secret():
    (deployment,) = [d for d in k8s("Deployment") if containers(d)[0]["command"] == ["wuguan", "api"]]
    (container,) = containers(deployment)
    env = container_env(container)
    settings = assert_api_settings_accepted(env)
    assert (settings.host, settings.port) == ("0.0.0.0", API_PORT)
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert secrets == {"DATABASE_URL": {"name": "wuguan-database", "key": "DATABASE_URL"},
                       "WUGUAN_API_SECRET": {"name": "wuguan-api", "key": "WUGUAN_API_SECRET"}}
    (declared,) = container["ports"]
    assert declared == {"name": "http", "containerPort": API_PORT}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    (service,) = [s for s in k8s("Service") if s["metadata"]["name"] == deployment["metadata"]["name"]]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"] == [{"name": "http", "port": API_PORT, "targetPort": "http"}]


def test_k8s_prometheus_config_finds_the_worker_services_and_the_finance_api():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-k8s.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    found = {name: {(sd["names"][0].split(".")[0], sd["port"]) for sd in job["dns_sd_configs"]}
             for name, job in jobs.items()}
    ports = {s["metadata"]["name"]: s["spec"]["ports"][0]["port"] for s in k8s("Service")}
    workers = {d["metadata"]["name"] for d in worker_deployments()}
    assert found["wuguan"] == {(name, port) for name, port in ports.items() if name in workers}
    assert found["wuguan-finance"] == {("wuguan-finance-api", API_PORT)}
    assert set(ports) == workers | {"wuguan-finance-api"}  # every Service is scraped
    labels = {r["replacement"] for r in jobs["wuguan"]["relabel_configs"] if r.get("target_label") == "service"}
    assert labels == set(SERVICES)
    assert [r["replacement"] for r in jobs["wuguan-finance"]["relabel_configs"]
            if r.get("target_label") == "service"] == ["finance"]


def test_promtool_checks_the_k8s_prometheus_config():
    import shutil

    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is not installed: run scripts/ensure-prometheus (make test does)")
    result = subprocess.run([exe, "check", "config", str(DEPLOY / "prometheus" / "prometheus-k8s.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def run_policy_configmap(*args: str) -> dict:
    out = subprocess.run([sys.executable, str(K8S / "policy_configmap.py"), *args],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return json.loads(out)


def test_policy_configmap_defaults_to_the_bundled_policies():
    configmap = run_policy_configmap()
    assert (configmap["kind"], configmap["metadata"]["name"]) == ("ConfigMap", "wuguan-policies")
    assert configmap["data"] == {
        f"{s}.json": (ROOT / "services" / s / "policy" / "default.json").read_text() for s in SERVICES
    }


def test_policy_configmap_takes_a_policy_dir_and_refuses_non_json(tmp_path):
    for s in SERVICES:
        (tmp_path / f"{s}.json").write_text(json.dumps({"policyVersion": f"{s}-prod-1"}))
    assert json.loads(run_policy_configmap(str(tmp_path))["data"]["cards.json"]) == {"policyVersion": "cards-prod-1"}
    (tmp_path / "dunning.json").write_text("{not json")
    with pytest.raises(subprocess.CalledProcessError):
        run_policy_configmap(str(tmp_path))


def test_k8s_readme_creates_the_secret_the_deployments_read():
    readme = (K8S / "README.md").read_text()
    assert "create secret generic wuguan-database" in readme and "--from-literal=DATABASE_URL=" in readme
    assert "create secret generic wuguan-api" in readme and "--from-literal=WUGUAN_API_SECRET=" in readme


def test_k8s_readme_creates_every_secret_and_configmap_the_workloads_mount():
    """Issue 14: the checkpoint signing key (a Secret) and its public half (a ConfigMap)."""
    readme = (K8S / "README.md").read_text()
    volumes = [v for w in workloads() for v in pod_spec(w).get("volumes", [])]
    secrets = {v["secret"]["secretName"] for v in volumes if "secret" in v}
    maps = {v["configMap"]["name"] for v in volumes if "configMap" in v} - {"wuguan-policies"}  # policy_configmap.py
    assert "wuguan-checkpoint-key" in secrets and "wuguan-checkpoint-public-key" in maps
    for name in secrets:
        assert f"create secret generic {name}" in readme
    for name in maps:
        assert f"create configmap {name}" in readme
    for workload in k8s("Deployment"):
        env = container_env(containers(workload)[0])
        if containers(workload)[0]["command"][1] == "worker":
            assert env["WUGUAN_CHECKPOINT_KEY"].startswith("/etc/wuguan/checkpoint/")


# ---------------------------------------------------------------- image and Alertmanager


def test_dockerfile_installs_the_project_from_what_it_copies():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^RUN pip install \.", dockerfile, re.M)
    copied = set()
    for line in re.findall(r"^COPY (.+)$", dockerfile, re.M):
        copied |= set(line.split()[:-1])
    for source in copied:
        assert (ROOT / source).exists(), source
    # What the package build reads: the readme named in pyproject and the packages.
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^readme = "README.md"', pyproject, re.M) and "README.md" in copied
    assert {"services", "schemas", "pyproject.toml"} <= copied
    assert "WUGUAN_WEB_HOST=0.0.0.0" in dockerfile
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {f"!{s}" for s in ("pyproject.toml", "README.md")} <= set(ignore)


def test_alertmanager_routes_only_to_defined_receivers():
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"] for r in config["receivers"]}

    def walk(route):
        yield route["receiver"] if "receiver" in route else None
        for child in route.get("routes", []):
            yield from walk(child)

    used = {r for r in walk(config["route"]) if r}
    assert used and used <= receivers
    alert_names = set()
    for path in (DEPLOY / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            alert_names |= {r["alert"] for r in group["rules"] if "alert" in r}
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            pattern = re.fullmatch(r'alertname=~?"(.+)"', matcher).group(1)
            assert any(re.fullmatch(pattern, name) for name in alert_names), matcher
