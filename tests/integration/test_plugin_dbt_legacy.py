"""Kestra's deprecated dbt tasks (Setup, Build, Run, Test, Seed, ...) on a real project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from executors.plugins import dbt as dbt_plugin
from tests.integration.cli_support import Run, run_plugin
from tests.integration.dbt_project import DUCKDB_PROFILES, node, write_project

pytestmark = pytest.mark.cli_tools(dbt_plugin.DBT_TOOL)


def legacy(kind: str, **props: Any) -> dict[str, Any]:
    return {"id": kind.lower(), "type": f"io.kestra.plugin.dbt.cli.{kind}", **props}


def results(run: Run) -> dict[str, str]:
    data = run.read(run.outcome.outputs["outputFiles"]["run_results.json"])
    return {node(r["unique_id"]): r["status"] for r in orjson.loads(data)["results"]}


async def test_setup_installs_dbt_in_the_working_directory_and_build_uses_it(
    tmp_path: Path,
) -> None:
    wd = write_project(tmp_path / "wd")
    profiles = {"shop": {"target": "dev", "outputs": {"dev": {"type": "duckdb", "path": "x.db"}}}}
    setup = legacy(
        "Setup", requirements=list(dbt_plugin.DBT_REQUIREMENTS), profiles=profiles, env={}
    )
    run = await run_plugin(dbt_plugin.Setup, setup, tmp_path, working_dir=wd)
    assert run.state == "SUCCESS", run.text()
    assert (wd / "bin" / "dbt").is_file()
    assert (wd / ".profile" / "profiles.yml").read_text() == (
        "shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: x.db\n"
    )

    run = await run_plugin(dbt_plugin.Build, legacy("Build"), tmp_path, working_dir=wd)
    assert run.state == "SUCCESS", run.text()
    assert "does not exist on this worker" not in run.text()  # ./bin/dbt of Setup ran
    assert results(run) == {
        "seed.shop.orders": "success",
        "model.shop.big_orders": "success",
        "test.shop.unique_big_orders_id": "pass",
        "test.shop.not_null_big_orders_id": "pass",
    }
    assert set(run.outcome.outputs["outputFiles"]) == {"manifest.json", "run_results.json"}
    assert (wd / "x.db").is_file()


async def test_each_deprecated_command_with_its_flags(tmp_path: Path) -> None:
    wd = write_project(tmp_path / "wd")
    common = {"profiles": DUCKDB_PROFILES, "dbtPath": "/usr/local/bin/dbt"}

    async def step(kind: str, **props: Any) -> Run:
        cls = getattr(dbt_plugin, kind)
        run = await run_plugin(cls, legacy(kind, **common, **props), tmp_path, working_dir=wd)
        assert run.state == "SUCCESS", run.text()
        # The image's dbt path does not exist here: the worker's dbt runs.
        assert "dbtPath /usr/local/bin/dbt does not exist on this worker: using dbt" in run.text()
        return run

    run = await step("Seed", select=["orders"], target="dev", thread=2)
    assert results(run) == {"seed.shop.orders": "success"}
    assert "Concurrency: 2 threads (target='dev')" in run.text()
    run = await step("Run", select=["big_orders"], fullRefresh=True)
    assert results(run) == {"model.shop.big_orders": "success"}
    run = await step("Test", exclude=["test_type:generic,unique_big_orders_id"])
    assert results(run) == {"test.shop.not_null_big_orders_id": "pass"}
    # deps, source freshness and list leave no results to parse (the previous run's stay).
    run = await step("List", select=["big_orders"])
    assert "[Type: PrintEvent] shop.big_orders" in run.text()
    assert run.outcome.outputs["outputFiles"] == {}


async def test_warn_error_reaches_dbt(tmp_path: Path) -> None:
    # A warning (a selector matching nothing) becomes an error with warnError.
    wd = write_project(tmp_path / "wd")
    task = legacy("Run", profiles=DUCKDB_PROFILES, select=["no_such_model"], warnError=True)
    run = await run_plugin(dbt_plugin.Run, task, tmp_path, working_dir=wd)
    assert run.state == "FAILED"
    assert "does not match any enabled nodes" in run.text("ERROR")
