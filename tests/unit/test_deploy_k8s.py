"""deploy/k8s checked structurally (no cluster here): every manifest parses; each component has a
Deployment running a real `headwater <component>` command with settings that load; probes hit
routes the API serves without credentials; resources, secrets, volumes and labels line up."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
import yaml
from fastapi import FastAPI

from engine.api import create_app
from engine.api.services import ApiServices
from engine.app import COMPONENTS, SHUTDOWN_MARGIN_S
from engine.settings import Settings
from tests.unit.test_deploy_settings import (
    COMMANDS,
    DEPLOY,
    settings_from_env,
    unknown_settings,
)

K8S = DEPLOY / "k8s"
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
# Files kept out of the kustomization on purpose (placeholders, optional CRDs).
OPTIONAL = ("secret.example.yaml", "servicemonitor.yaml")


def documents(*names: str) -> list[dict[str, Any]]:
    docs = []
    for name in names:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


APPLIED = documents(*KUSTOMIZATION["resources"])
SECRETS = {d["metadata"]["name"]: d for d in documents("secret.example.yaml")}
CONFIGMAPS = {d["metadata"]["name"]: d["data"] for d in APPLIED if d["kind"] == "ConfigMap"}
DEPLOYMENTS = {d["metadata"]["name"]: d for d in APPLIED if d["kind"] == "Deployment"}


def container(deployment: str) -> dict[str, Any]:
    (only,) = DEPLOYMENTS[deployment]["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


def component(deployment: str) -> str:
    return str(container(deployment)["args"][0])


def env_of(deployment: str) -> dict[str, str]:
    """The container's environment as Kubernetes builds it (envFrom first, env overrides),
    with Secret values taken from secret.example.yaml."""
    spec = container(deployment)
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        if "configMapRef" in source:
            env.update(CONFIGMAPS[source["configMapRef"]["name"]])
        else:
            env.update(SECRETS[source["secretRef"]["name"]]["stringData"])
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = SECRETS[ref["name"]]["stringData"][ref["key"]]
    return env


def settings_of(monkeypatch: pytest.MonkeyPatch, deployment: str) -> Settings:
    return settings_from_env(monkeypatch, env_of(deployment))


def api_app(settings: Settings) -> FastAPI:
    """The API app of these settings with stub services (create_app's documented seam): the
    real ones would open Kafka clients to the manifest's (unreachable) cluster addresses."""
    stub = cast(ApiServices, SimpleNamespace(settings=settings))
    return create_app(settings, stub)


def by_component(name: str) -> list[str]:
    return [d for d in DEPLOYMENTS if component(d) == name]


# --- files --------------------------------------------------------------------------------


def test_every_manifest_parses_and_is_listed_or_optional() -> None:
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk == set(KUSTOMIZATION["resources"]) | set(OPTIONAL)
    for doc in APPLIED + documents(*OPTIONAL):
        assert doc["apiVersion"]
        assert doc["kind"]
        assert doc["metadata"]["name"]
    assert all(name.endswith(".yaml") for name in OPTIONAL)
    assert not set(OPTIONAL) & set(KUSTOMIZATION["resources"])


def test_each_component_has_a_deployment_of_a_real_command() -> None:
    assert {component(d) for d in DEPLOYMENTS} == set(COMPONENTS)
    for name in DEPLOYMENTS:
        assert component(name) in COMMANDS
        assert container(name)["image"] == KUSTOMIZATION["images"][0]["name"]


def test_selectors_match_pod_labels() -> None:
    for name, deployment in DEPLOYMENTS.items():
        wanted = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert wanted.items() <= labels.items(), name
    selectors = [
        tuple(sorted(d["spec"]["selector"]["matchLabels"].items())) for d in DEPLOYMENTS.values()
    ]
    assert len(set(selectors)) == len(selectors), "no two Deployments select the same pods"


# --- settings -----------------------------------------------------------------------------


def test_every_headwater_variable_is_a_setting() -> None:
    names = {n for data in CONFIGMAPS.values() for n in data}
    names |= {e["name"] for d in DEPLOYMENTS for e in container(d).get("env", [])}
    assert not unknown_settings(names)
    assert all(n.startswith("HEADWATER_") for n in names), "only settings in the config"


def test_references_resolve() -> None:
    for name in DEPLOYMENTS:
        spec = container(name)
        for source in spec.get("envFrom", []):
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] in CONFIGMAPS, name
            else:
                assert source["secretRef"]["name"] in SECRETS, name
        for item in spec.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in SECRETS[ref["name"]]["stringData"], (name, ref)


def test_settings_load_and_point_at_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DEPLOYMENTS:
        settings = settings_of(monkeypatch, name)
        assert not settings.kafka.bootstrap_servers.startswith("127.0.0.1"), name
        assert settings.kafka.replication_factor >= 3, f"{name}: survive a broker loss"
        assert settings.kafka.session_timeout_ms >= 6000  # Apache Kafka's minimum


def test_only_database_components_get_the_dsn() -> None:
    for name in DEPLOYMENTS:
        has = "HEADWATER_POSTGRES__DSN" in env_of(name)
        assert has == (component(name) in ("projector", "api")), name


def test_api_settings_probes_and_service(monkeypatch: pytest.MonkeyPatch) -> None:
    (api,) = by_component("api")
    settings = settings_of(monkeypatch, api)
    assert settings.api.host == "0.0.0.0"  # inside a pod, on purpose
    assert settings.api.api_keys, "authentication on"
    spec = container(api)
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    assert ports == {"http": settings.api.port}
    paths = api_app(settings).openapi()["paths"]
    probes = [spec[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")]
    for probe in probes:
        assert probe["path"] in paths
        assert probe["port"] in ports
    assert spec["readinessProbe"]["httpGet"]["path"] == "/health"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/health/live"
    (service,) = [d for d in APPLIED if d["kind"] == "Service"]
    assert service["spec"]["selector"].items() <= spec_labels(api).items()
    assert service["spec"]["ports"][0]["targetPort"] in ports


def spec_labels(deployment: str) -> dict[str, str]:
    labels: dict[str, str] = DEPLOYMENTS[deployment]["spec"]["template"]["metadata"]["labels"]
    return labels


async def test_probes_need_no_credentials_but_metrics_do(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kubelet probes send no Authorization header; Prometheus must (servicemonitor.yaml)."""
    (api,) = by_component("api")
    app = api_app(settings_of(monkeypatch, api))
    # ASGITransport runs no lifespan: nothing connects to Kafka or PostgreSQL.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/metrics")).status_code == 401
    (monitor,) = documents("servicemonitor.yaml")
    credentials = monitor["spec"]["endpoints"][0]["authorization"]["credentials"]
    secret = SECRETS[credentials["name"]]["stringData"]
    assert secret[credentials["key"]] in yaml.safe_load(secret["api-keys"])
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_every_component_is_probed_where_it_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API on its HTTP port; the others on the health server's port (engine.health)."""
    for name in DEPLOYMENTS:
        spec = container(name)
        probed = any(k in spec for k in ("livenessProbe", "readinessProbe", "startupProbe"))
        assert probed, name
        if component(name) == "api":
            continue
        settings = settings_of(monkeypatch, name)
        assert settings.health.host == "0.0.0.0", name  # reachable by the kubelet
        ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
        assert ports == {"health": settings.health.port}, name
        assert spec["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "health"}
        assert spec["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "health"}


def test_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    workers = by_component("worker")
    groups = sorted(settings_of(monkeypatch, w).worker.worker_group for w in workers)
    assert groups == ["", "etl"]
    claims = {d["metadata"]["name"] for d in APPLIED if d["kind"] == "PersistentVolumeClaim"}
    for name in workers:
        settings = settings_of(monkeypatch, name)
        pod = DEPLOYMENTS[name]["spec"]["template"]["spec"]
        grace = pod["terminationGracePeriodSeconds"]
        assert grace > settings.worker.shutdown_grace_s + SHUTDOWN_MARGIN_S, name
        mounts = {m["mountPath"]: m["name"] for m in container(name)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        storage = volumes[mounts[settings.worker.storage_dir]]
        assert storage["persistentVolumeClaim"]["claimName"] in claims, "shared storage"
        assert mounts[settings.worker.work_dir] in volumes
        assert "SECRET_" in "".join(SECRETS["headwater-task-secrets"]["stringData"])


def test_triggers_run_once() -> None:
    (triggers,) = by_component("triggers")
    spec = DEPLOYMENTS[triggers]["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate", "never two during a rollout"


def test_resources_and_security() -> None:
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    uid = re.search(r"^USER (\d+)$", dockerfile, re.M)
    assert uid is not None
    for name in DEPLOYMENTS:
        resources = container(name)["resources"]
        for kind in ("requests", "limits"):
            assert set(resources[kind]) == {"cpu", "memory"}, (name, kind)
        pod = DEPLOYMENTS[name]["spec"]["template"]["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["runAsUser"] == int(uid.group(1)), "the image's user"
        assert container(name)["securityContext"]["allowPrivilegeEscalation"] is False


def test_disruption_budgets_select_deployments() -> None:
    budgets = [d for d in APPLIED if d["kind"] == "PodDisruptionBudget"]
    assert budgets
    for budget in budgets:
        wanted = budget["spec"]["selector"]["matchLabels"]
        assert any(wanted.items() <= spec_labels(d).items() for d in DEPLOYMENTS)
