"""deploy/grafana checked against the code: the dashboard JSON parses, its SQL reads only tables
and views the read-model migrations create, its PromQL reads only metrics the API's /metrics
emits, and the provisioning matches the compose deployment."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.unit.test_deploy_settings import DEPLOY, REPO

GRAFANA = DEPLOY / "grafana"
DASHBOARD: dict[str, Any] = json.loads((GRAFANA / "dashboards" / "headwater.json").read_text())
MIGRATIONS = sorted((REPO / "engine" / "projector" / "migrations").glob("*.sql"))
METRICS_SOURCE = (REPO / "engine" / "api" / "routes_ops.py").read_text()
# The executor's, workers', projector's and triggers' own /metrics (their health port).
COMPONENT_METRICS_SOURCE = (REPO / "engine" / "health" / "probes.py").read_text()

# Table aliases, CTE names and functions are not relations: only what follows FROM or JOIN is.
_RELATION = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_.]*)", re.I)
_METRIC = re.compile(r"\bheadwater_[a-z0-9_]+\b")


def relations_created() -> set[str]:
    created = set()
    for migration in MIGRATIONS:
        sql = migration.read_text()
        created |= set(re.findall(r"CREATE\s+(?:TABLE|VIEW)\s+(?:IF NOT EXISTS\s+)?(\w+)", sql))
    return created


def metrics_emitted() -> set[str]:
    return set(_METRIC.findall(METRICS_SOURCE))


def component_metrics_emitted() -> set[str]:
    return set(_METRIC.findall(COMPONENT_METRICS_SOURCE))


def panels() -> list[dict[str, Any]]:
    return [p for p in DASHBOARD["panels"] if p["type"] != "row"]


def targets() -> list[dict[str, Any]]:
    return [t for p in panels() for t in p["targets"]]


def variables() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in DASHBOARD["templating"]["list"]}


def queries_sql() -> list[str]:
    sql = [t["rawSql"] for t in targets() if "rawSql" in t]
    sql += [v["query"] for v in variables().values() if v["type"] == "query"]
    return sql


def test_the_helpers_read_what_they_should() -> None:
    assert {"executions", "task_runs", "flow_failure_rates"} <= relations_created()
    assert "headwater_executions" in metrics_emitted()
    join = "SELECT 1 FROM executions e JOIN task_runs t ON t.execution_id = e.id"
    assert set(_RELATION.findall(join)) == {"executions", "task_runs"}


def test_dashboard_shape() -> None:
    assert DASHBOARD["uid"]
    assert DASHBOARD["title"]
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD["panels"]:
        pos = panel["gridPos"]
        assert 0 <= pos["x"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
    assert len(panels()) >= 10


def test_sql_reads_only_the_read_model() -> None:
    created = relations_created()
    sql = queries_sql()
    assert len(sql) >= 8
    used = {r for q in sql for r in _RELATION.findall(q)}
    assert used <= created, f"not in the migrations: {used - created}"
    # The dashboard views are the read model's public face: the dashboard uses all of them.
    views = set(re.findall(r"CREATE\s+VIEW\s+(\w+)", "".join(m.read_text() for m in MIGRATIONS)))
    assert views <= used


def test_promql_reads_only_emitted_metrics() -> None:
    exprs = [t["expr"] for t in targets() if "expr" in t]
    assert exprs
    api, components = metrics_emitted(), component_metrics_emitted()
    used = {m for e in exprs for m in _METRIC.findall(e)}
    assert used <= api | components, f"no /metrics emits {used - api - components}"
    assert used & components, "the components' own metrics have panels"
    # Read-model numbers are the same on every API replica: never summed across them.
    for expr in exprs:
        if set(_METRIC.findall(expr)) <= api - {"headwater_api_commands_sent_total"}:
            assert not expr.startswith("sum"), expr


def test_every_query_uses_a_dashboard_datasource_variable() -> None:
    kinds = {
        v["query"]: f"${{{name}}}" for name, v in variables().items() if v["type"] == "datasource"
    }
    for panel in panels():
        for ref in [panel["datasource"]] + [t["datasource"] for t in panel["targets"]]:
            assert kinds[ref["type"]] == ref["uid"], panel["title"]
        # Each panel reads one kind of source: its targets agree with the panel.
        assert {t["datasource"]["type"] for t in panel["targets"]} == {panel["datasource"]["type"]}


def test_provisioning_matches_dashboard_and_compose() -> None:
    sources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "headwater.yaml").read_text()
    )
    provisioned = {d["type"] for d in sources["datasources"]}
    wanted = {v["query"] for v in variables().values() if v["type"] == "datasource"}
    assert wanted <= provisioned
    compose = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text())
    services = compose["services"]
    (postgres,) = [d for d in sources["datasources"] if "postgres" in d["type"]]
    assert postgres["url"] == "postgres:5432"
    assert postgres["jsonData"]["database"] == services["postgres"]["environment"]["POSTGRES_DB"]
    reader = (DEPLOY / "compose" / "postgres-init.sh").read_text()
    assert f"CREATE ROLE {postgres['user']} LOGIN" in reader
    password = postgres["secureJsonData"]["password"].lstrip("$")
    assert password in services["grafana"]["environment"]
    (prometheus,) = [d for d in sources["datasources"] if d["type"] == "prometheus"]
    assert prometheus["url"].startswith("http://prometheus:")
    dashboards = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "headwater.yaml").read_text()
    )
    path = dashboards["providers"][0]["options"]["path"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert mounts[path] == "../grafana/dashboards"
