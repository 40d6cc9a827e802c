"""The deployment files under ops/ and docker-compose.yml: they parse, and they keep the rules the service
depends on (scalable workers, a single scheduler, probes, no committed key material)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"
COMPOSE = ROOT / "docker-compose.yml"
K8S = OPS / "k8s"
DASHBOARD = OPS / "grafana" / "sessions-dashboard.json"

# base64 of 32 bytes (a master key), or a PEM block.
KEY_LIKE = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=(?![A-Za-z0-9+/=])|-----BEGIN [A-Z ]*PRIVATE KEY-----")


def _yaml() -> ModuleType:
    module: ModuleType = pytest.importorskip("yaml", reason="PyYAML is not installed (pip install pyyaml)")
    return module


def _load_all(path: Path) -> list[dict[str, Any]]:
    docs = _yaml().safe_load_all(path.read_text(encoding="utf-8"))
    return [cast(dict[str, Any], doc) for doc in docs if doc is not None]


def _load(path: Path) -> dict[str, Any]:
    (doc,) = _load_all(path)
    return doc


def _yaml_files() -> list[Path]:
    files = [COMPOSE, *OPS.rglob("*.yaml"), *OPS.rglob("*.yml")]
    return sorted(path for path in files if path.is_file())


def _compose_services() -> dict[str, dict[str, Any]]:
    return cast(dict[str, dict[str, Any]], _load(COMPOSE)["services"])


def _k8s_objects() -> dict[tuple[str, str], dict[str, Any]]:
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in _load_all(path):
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], obj["spec"]["template"]["spec"])


# --- YAML: compose ---------------------------------------------------------------------------------------


def test_every_yaml_file_parses() -> None:
    files = _yaml_files()
    assert COMPOSE in files and len(files) > 5
    for path in files:
        docs = _load_all(path)
        assert docs, f"{path} is empty"
        assert all(isinstance(doc, dict) for doc in docs), path


def test_compose_workers_scale_and_start_in_order() -> None:
    services = _compose_services()
    assert {"rabbitmq", "mongodb", "topology", "worker", "scheduler"} <= services.keys()
    worker = services["worker"]
    # `docker compose up --scale worker=N` needs both absent.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["command"] == ["worker"]
    assert worker["build"]["dockerfile"] == "ops/Dockerfile"
    env = worker["environment"]
    assert env["SESSIONS_STORAGE"] == "mongodb"
    assert env["MONGODB_URL"] == "mongodb://mongodb:27017/?replicaSet=rs0&w=majority"
    assert env["AMQP_URL"] == "amqp://sessions-worker:dev-worker@rabbitmq:5672/"
    assert env["SESSIONS_SCHEDULER_USER"] == "sessions-scheduler"
    assert services["scheduler"]["environment"]["AMQP_URL"].startswith("amqp://sessions-scheduler:")
    assert services["topology"]["environment"]["AMQP_URL"].startswith("amqp://sessions-admin:")
    assert worker["depends_on"] == {
        "rabbitmq": {"condition": "service_healthy"},
        "mongodb": {"condition": "service_healthy"},
        "topology": {"condition": "service_completed_successfully"},
    }
    assert "http://localhost:9464/healthz" in " ".join(worker["healthcheck"]["test"])
    assert services["topology"]["command"] == ["topology"]
    assert services["topology"]["restart"] == "no"


def test_compose_scheduler_is_a_single_replica() -> None:
    scheduler = _compose_services()["scheduler"]
    assert scheduler["command"] == ["scheduler"]
    assert scheduler["deploy"]["replicas"] == 1
    assert "container_name" not in scheduler


def test_compose_broker_and_database() -> None:
    services = _compose_services()
    rabbitmq = services["rabbitmq"]
    assert rabbitmq["image"].startswith("rabbitmq:4")
    mounts = " ".join(rabbitmq["volumes"])
    assert "./ops/rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins" in mounts
    assert "./ops/rabbitmq/rabbitmq.conf:/etc/rabbitmq/rabbitmq.conf" in mounts
    assert "./ops/rabbitmq/definitions.json:/etc/rabbitmq/definitions.json" in mounts
    assert "rabbitmq-diagnostics -q ping" in " ".join(rabbitmq["healthcheck"]["test"])
    mongodb = services["mongodb"]
    assert mongodb["image"] == "mongo:7"
    assert mongodb["command"] == ["--replSet", "rs0", "--bind_ip_all"]
    assert "rs.initiate" in " ".join(mongodb["healthcheck"]["test"])
    volumes = _load(COMPOSE)["volumes"]
    assert {"rabbitmq-data", "mongodb-data"} <= volumes.keys()


def test_mongodb_urls_ask_what_docs_mongodb_md_says_the_store_needs() -> None:
    """A replica set (retryable writes), majority write concern, reads from the primary: in compose
    and in the Kubernetes Secret template alike."""
    from urllib.parse import parse_qs, urlparse

    secret = _load(K8S / "secret.template.yaml")
    urls = [_compose_services()["worker"]["environment"]["MONGODB_URL"], secret["stringData"]["MONGODB_URL"]]
    for url in urls:
        options = parse_qs(urlparse(url).query)
        assert options.get("replicaSet") == ["rs0"] and options.get("w") == ["majority"], url
        assert "readPreference" not in options, url
    assert _k8s_objects()[("ConfigMap", "sessions-config")]["data"]["SESSIONS_STORAGE"] == "mongodb"


def test_compose_master_key_comes_from_a_secret() -> None:
    compose = _load(COMPOSE)
    secret_file = compose["secrets"]["master_key"]["file"]
    # "${SESSIONS_MASTER_KEY_FILE:-./ops/secrets/master.key}": the default lies in the git-ignored folder.
    assert secret_file.rstrip("}").endswith("./ops/secrets/master.key")
    for name in ("topology", "worker", "scheduler"):
        service = compose["services"][name]
        assert "master_key" in service["secrets"], name
        assert service["environment"]["SESSIONS_ENCRYPTION_KEY_FILE"] == "/run/secrets/master_key", name
        assert not any("ENCRYPTION_KEYS" in key for key in service["environment"]), name


def test_rabbitmq_plugins_and_config() -> None:
    plugins = (OPS / "rabbitmq" / "enabled_plugins").read_text(encoding="utf-8").strip()
    assert plugins == "[rabbitmq_management,rabbitmq_prometheus,rabbitmq_sharding]."
    conf = (OPS / "rabbitmq" / "rabbitmq.conf").read_text(encoding="utf-8")
    settings = dict(
        line.split("=", 1) for line in conf.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )
    keys = {key.strip() for key in settings}
    assert {"consumer_timeout", "vm_memory_high_watermark.relative", "disk_free_limit.absolute"} <= keys
    assert settings["load_definitions "].strip() == "/etc/rabbitmq/definitions.json"


# --- docker-compose config ------------------------------------------------------------------------------


def test_docker_compose_config_validates() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("the docker-compose binary is not installed (apt-get install docker-compose)")
    result = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr or result.stdout


# --- Kubernetes -----------------------------------------------------------------------------------------


def test_k8s_objects_are_complete() -> None:
    objects = _k8s_objects()
    kinds = {kind for kind, _ in objects}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "HorizontalPodAutoscaler", "Job", "Service"} <= kinds
    for (kind, name), obj in objects.items():
        assert obj.get("apiVersion"), (kind, name)
        if kind != "Namespace":
            assert obj["metadata"].get("namespace") == "sessions", (kind, name)


def test_k8s_scheduler_runs_exactly_one_replica() -> None:
    objects = _k8s_objects()
    scheduler = objects[("Deployment", "sessions-scheduler")]
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate"
    assert _pod_spec(scheduler)["containers"][0]["args"] == ["scheduler"]
    autoscaled = {
        obj["spec"]["scaleTargetRef"]["name"] for (kind, _), obj in objects.items() if kind == "HorizontalPodAutoscaler"
    }
    assert autoscaled == {"sessions-worker"}


def test_k8s_worker_deployment() -> None:
    worker = _k8s_objects()[("Deployment", "sessions-worker")]
    assert worker["spec"]["replicas"] == 3
    template = worker["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9464"
    pod = template["spec"]
    assert pod["terminationGracePeriodSeconds"] == 60
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["args"] == ["worker"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/run/secrets/sessions"]]["secret"]["secretName"] == "sessions-secrets"


def test_k8s_topology_job_and_metrics_service() -> None:
    objects = _k8s_objects()
    job = objects[("Job", "sessions-topology")]
    assert _pod_spec(job)["containers"][0]["args"] == ["topology"]
    service = objects[("Service", "sessions-metrics")]
    assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert [port["port"] for port in service["spec"]["ports"]] == [9464]


def test_k8s_loads_the_broker_users_and_gives_each_process_its_own() -> None:
    objects = _k8s_objects()
    job = objects[("Job", "sessions-rabbitmq-users")]
    pod = _pod_spec(job)
    assert "/api/definitions" in " ".join(pod["containers"][0]["args"])
    assert pod["volumes"][0]["secret"]["secretName"] == "sessions-rabbitmq-definitions"
    assert objects[("ConfigMap", "sessions-config")]["data"]["SESSIONS_SCHEDULER_USER"] == "sessions-scheduler"

    def amqp_key(name: tuple[str, str]) -> str:
        (container,) = _pod_spec(objects[name])["containers"]
        (env,) = [item for item in container["env"] if item["name"] == "AMQP_URL"]
        return str(env["valueFrom"]["secretKeyRef"]["key"])

    assert amqp_key(("Deployment", "sessions-worker")) == "AMQP_URL"
    assert amqp_key(("Deployment", "sessions-scheduler")) == "SCHEDULER_AMQP_URL"
    assert amqp_key(("Job", "sessions-topology")) == "ADMIN_AMQP_URL"
    template = _load(K8S / "secret.template.yaml")["stringData"]
    assert {"AMQP_URL", "SCHEDULER_AMQP_URL", "ADMIN_AMQP_URL", "RABBITMQ_MANAGEMENT_URL"} <= template.keys()


def test_k8s_kustomization_applies_everything_but_the_secret_template() -> None:
    kustomization = _load(K8S / "kustomization.yaml")
    resources = set(kustomization["resources"])
    manifests = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert resources == manifests - {"secret.template.yaml"}


# --- secrets --------------------------------------------------------------------------------------------


def test_no_key_material_is_committed() -> None:
    ignore = (OPS / "secrets" / ".gitignore").read_text(encoding="utf-8").split()
    assert "*.key" in ignore
    # Locally generated keys (git-ignored *.key files) may exist; everything else must be free of keys.
    candidates = [COMPOSE, ROOT / ".dockerignore", *OPS.rglob("*")]
    for path in candidates:
        if path.is_file() and path.suffix != ".key":
            text = path.read_text(encoding="utf-8", errors="replace")
            assert not KEY_LIKE.search(text), f"{path} seems to contain key material"
    template = _load(K8S / "secret.template.yaml")
    assert template["stringData"]["master.key"].startswith("REPLACE_ME")
    if shutil.which("git") and (ROOT / ".git").exists():
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", "ops/secrets/master.key"], cwd=ROOT, check=False, capture_output=True
        )
        assert ignored.returncode == 0, "ops/secrets/master.key is not git-ignored"


# --- image ----------------------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    dockerfile = (OPS / "Dockerfile").read_text(encoding="utf-8")
    assert len(re.findall(r"^FROM ", dockerfile, flags=re.MULTILINE)) >= 2
    assert "python:3.11-slim" in dockerfile
    assert re.search(r"^USER 10001", dockerfile, flags=re.MULTILINE)
    assert 'ENTRYPOINT ["sessions"]' in dockerfile
    assert 'CMD ["worker"]' in dockerfile
    assert "EXPOSE 9464" in dockerfile
    assert "HEALTHCHECK" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv", "ops/secrets", "*.key"} <= set(ignored)


# --- monitoring -----------------------------------------------------------------------------------------


def _expressions(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_grafana_dashboard_uses_the_service_metrics() -> None:
    dashboard = cast(dict[str, Any], json.loads(DASHBOARD.read_text(encoding="utf-8")))
    expressions = "\n".join(_expressions(dashboard))
    for metric in (
        "sessions_events_total",
        "sessions_owned_shards",
        "sessions_apply_seconds_bucket",
        "sessions_end_to_end_seconds_bucket",
        "sessions_dead_letters_total",
        "sessions_redeliveries_total",
        "sessions_active_sessions",
        "rabbitmq_queue_messages_ready",
    ):
        assert metric in expressions, metric
    assert "histogram_quantile(0.99" in expressions
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_prometheus_scrapes_the_metrics_port() -> None:
    config = _load(OPS / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["sessions-worker"]["dns_sd_configs"][0]["port"] == 9464
    assert "rabbitmq" in jobs


def test_the_wheel_ships_the_product_not_its_benchmarks() -> None:
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[2]
    include = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {path.parent.name for path in root.glob("*/__init__.py")}
    shipped = {name for name in packages if any(fnmatch.fnmatch(name, pattern) for pattern in include)}
    assert shipped == {"worker", "schemas", "scheduler"}
    assert {"benchmarks", "tests"} <= packages - shipped
