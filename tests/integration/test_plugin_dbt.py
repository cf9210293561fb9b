"""dbt tasks running a real dbt project (written here) against DuckDB and the running PostgreSQL.

dbt comes from the cached tool virtualenv (dbt-core 1.11 with the duckdb and postgres adapters,
installed by the first task that needs it: ~20 s on a fresh machine, then reused).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson
import pytest

from executors.core import InMemoryKV
from executors.plugins import dbt as dbt_plugin
from tests.integration.cli_support import run_plugin
from tests.integration.dbt_project import DUCKDB_PROFILES, MODEL, SEED, node, write_project

pytestmark = pytest.mark.cli_tools(dbt_plugin.DBT_TOOL)


def dbt_cli(**props: Any) -> dict[str, Any]:
    return {"id": "dbt", "type": "io.kestra.plugin.dbt.cli.DbtCLI", **props}


async def test_build_against_duckdb_parses_results_and_stores_the_manifest(
    tmp_path: Path,
) -> None:
    wd = write_project(tmp_path / "wd")
    kv = InMemoryKV()
    task = dbt_cli(
        profiles=DUCKDB_PROFILES,
        commands=["dbt build"],
        storeManifest={"key": "manifest.json", "namespace": "{{ flow.namespace }}"},
        containerImage="ghcr.io/kestra-io/dbt-duckdb:latest",
        taskRunner={"type": "io.kestra.plugin.scripts.runner.docker.Docker"},
    )
    run = await run_plugin(dbt_plugin.DbtCLI, task, tmp_path, kv=kv, working_dir=wd)

    assert run.state == "SUCCESS", run.text()
    outputs = run.outcome.outputs
    assert outputs["exitCode"] == 0
    assert outputs["vars"] == {}
    assert set(outputs["outputFiles"]) == {"manifest.json", "run_results.json"}
    results = orjson.loads(run.read(outputs["outputFiles"]["run_results.json"]))
    statuses = {node(r["unique_id"]): r["status"] for r in results["results"]}
    assert statuses == {
        "seed.shop.orders": "success",
        "model.shop.big_orders": "success",
        "test.shop.unique_big_orders_id": "pass",
        "test.shop.not_null_big_orders_id": "pass",
    }
    # dbt's StatsLine record, and the seed's adapter_response (3 rows inserted).
    assert run.outcome.metrics["pass"] == 4
    assert run.outcome.metrics["total"] == 4
    assert run.outcome.metrics["error"] == 0
    assert run.outcome.metrics["rows.affected"] == 3
    text = run.text("INFO")
    assert "[Type: MainReportVersion] Running with dbt=1.11.16" in text
    assert "[Thread: MainThread] [Type: StatsLine] Done. PASS=4" in text
    assert "model.shop.big_orders => success in " in text
    assert "seed.shop.orders => success in " in text
    # The profiles file went where dbt reads it; the JSON log went to --log-path logs.
    assert (wd / "profiles.yml").read_text() == DUCKDB_PROFILES
    assert (wd / "logs" / "dbt.log").is_file()
    stored = kv.entries[("company.team", "manifest.json")]
    assert "model.shop.big_orders" in stored["nodes"]
    assert stored == orjson.loads(run.read(outputs["outputFiles"]["manifest.json"]))


async def test_a_failing_data_test_fails_the_task_and_a_warning_makes_it_warning(
    tmp_path: Path,
) -> None:
    duplicated = SEED + "3,40,2024-01-04 00:00:00\n"
    wd = write_project(tmp_path / "wd", seed=duplicated)
    task = dbt_cli(profiles=DUCKDB_PROFILES, commands=["dbt build"])
    run = await run_plugin(dbt_plugin.DbtCLI, task, tmp_path, working_dir=wd)

    assert run.state == "FAILED"
    assert run.outcome.error == "Command failed with exit code 1"
    # Failed or not, the results are parsed and kept.
    assert run.outcome.outputs["exitCode"] == 1
    assert "run_results.json" in run.outcome.outputs["outputFiles"]
    errors = run.text("ERROR")
    assert "test.shop.unique_big_orders_id." in errors
    assert " => fail in " in errors
    assert "(1 failure)" in errors
    assert run.outcome.metrics["error"] == 1

    wd = write_project(tmp_path / "wd2", seed=duplicated, severity="warn")
    run = await run_plugin(dbt_plugin.DbtCLI, task, tmp_path, working_dir=wd)
    assert run.state == "WARNING", run.text()
    assert run.outcome.outputs["exitCode"] == 0
    assert "test.shop.unique_big_orders_id." in run.text("WARN")
    assert " => warn in " in run.text("WARN")
    assert run.outcome.metrics["warn"] == 1


async def test_load_manifest_lets_dbt_select_what_changed(tmp_path: Path) -> None:
    kv = InMemoryKV()
    where = {"key": "shop-manifest", "namespace": "company.team"}
    wd = write_project(tmp_path / "first")
    first = dbt_cli(profiles=DUCKDB_PROFILES, commands=["dbt build"], storeManifest=where)
    run = await run_plugin(dbt_plugin.DbtCLI, first, tmp_path, kv=kv, working_dir=wd)
    assert run.state == "SUCCESS", run.text()

    # A fresh checkout (no target/) where one model changed: only the manifest from the KV
    # store tells dbt what the previous run built.
    wd = write_project(tmp_path / "second")
    (wd / "models" / "big_orders.sql").write_text(MODEL.replace("> 15", "> 25"))
    (wd / "models" / "all_orders.sql").write_text("select * from {{ ref('orders') }}\n")
    second = dbt_cli(
        profiles=DUCKDB_PROFILES,
        loadManifest=where,
        commands=[
            "dbt ls --resource-type model --select state:modified --output name"
            " --state target --target-path new-target"
        ],
    )
    run = await run_plugin(dbt_plugin.DbtCLI, second, tmp_path, kv=kv, working_dir=wd)
    assert run.state == "SUCCESS", run.text()
    listed = [x.message.rsplit("] ", 1)[1] for x in run.lines if "[Type: PrintEvent]" in x.message]
    assert sorted(listed) == ["all_orders", "big_orders"], run.text()

    missing = dbt_cli(
        profiles=DUCKDB_PROFILES,
        loadManifest={"key": "nothing-here", "namespace": "company.team"},
        commands=["test ! -e target/manifest.json"],
    )
    run = await run_plugin(dbt_plugin.DbtCLI, missing, tmp_path, kv=kv)
    assert run.state == "SUCCESS", run.text()
    assert "no manifest has been found in the KV Store" in run.text("WARN")
    assert "dbt manifest not found at" in run.text("WARN")


@pytest.mark.postgres
async def test_build_against_postgres_in_a_project_dir(tmp_path: Path, postgres_dsn: str) -> None:
    schema = f"hw_dbt_{uuid.uuid4().hex[:8]}"
    wd = tmp_path / "wd"
    write_project(wd / "transform", schema=schema)
    url = urlsplit(postgres_dsn)
    profiles = f"""shop:
  target: pg
  outputs:
    pg:
      type: postgres
      host: {url.hostname}
      port: {url.port or 5432}
      user: {url.username or "postgres"}
      password: "{url.password or ""}"
      dbname: {url.path.lstrip("/")}
      schema: {schema}
      threads: 2
"""
    task = dbt_cli(
        profiles=profiles,
        projectDir="transform",
        beforeCommands=["test -f transform/dbt_project.yml"],
        commands=["dbt deps", "dbt build --full-refresh", "dbt source freshness"],
        env={"DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )
    try:
        run = await run_plugin(dbt_plugin.DbtCLI, task, tmp_path, working_dir=wd)
        assert run.state == "SUCCESS", run.text()
        assert "Registered adapter: postgres=1.11.0" in run.text()
        assert "[Type: LogFreshnessResult] 1 of 1 PASS freshness of raw.orders" in run.text()
        conn = await asyncpg.connect(postgres_dsn)
        try:
            rows = await conn.fetch(f"SELECT id, amount FROM {schema}.big_orders ORDER BY id")
            kind = await conn.fetchval(
                "SELECT table_type FROM information_schema.tables "
                "WHERE table_schema = $1 AND table_name = 'big_orders'",
                schema,
            )
        finally:
            await conn.close()
        assert [tuple(r) for r in rows] == [(2, 20), (3, 30)]
        assert kind == "VIEW"
        # The last command's results: source freshness writes sources.json, not
        # run_results.json, so the build's results are the ones kept.
        results = orjson.loads(run.read(run.outcome.outputs["outputFiles"]["run_results.json"]))
        assert len(results["results"]) == 4
    finally:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()


async def test_user_mistakes_fail_with_a_clear_message(tmp_path: Path) -> None:
    outside = dbt_cli(projectDir="../elsewhere", commands=["dbt build"])
    run = await run_plugin(dbt_plugin.DbtCLI, outside, tmp_path)
    assert run.state == "FAILED"
    assert run.outcome.error == (
        "property 'projectDir': '../elsewhere' must be a directory inside the working directory"
    )

    broken = dbt_cli(
        commands=["mkdir -p target", "echo '{\"results\": 3}' > target/run_results.json"]
    )
    run = await run_plugin(dbt_plugin.DbtCLI, broken, tmp_path)
    assert run.state == "FAILED"
    assert run.outcome.error == "target/run_results.json: run_results.json has no 'results' list"

    bad_format = dbt_cli(logFormat="XML", commands=["dbt build"])
    run = await run_plugin(dbt_plugin.DbtCLI, bad_format, tmp_path)
    assert run.state == "FAILED"
    assert run.outcome.error == "property 'logFormat': 'XML' is not one of JSON, TEXT, DEBUG, NONE"

    # dbt's own answer reaches the logs at its level (an "error" JSON record -> ERROR).
    no_project = dbt_cli(profiles=DUCKDB_PROFILES, commands=["dbt build"])
    run = await run_plugin(dbt_plugin.DbtCLI, no_project, tmp_path)
    assert run.state == "FAILED"
    assert run.outcome.error == "Command failed with exit code 2"
    assert "No dbt_project.yml found at expected path" in run.text("ERROR")


async def test_parse_run_results_false_keeps_the_manifest_only(tmp_path: Path) -> None:
    task = dbt_cli(
        parseRunResults=False,
        commands=[
            "mkdir -p target",
            "echo '{\"nodes\": {}}' > target/manifest.json",
            "echo '{\"results\": []}' > target/run_results.json",
        ],
    )
    run = await run_plugin(dbt_plugin.DbtCLI, task, tmp_path)
    assert run.state == "SUCCESS", run.text()
    assert set(run.outcome.outputs["outputFiles"]) == {"manifest.json"}
