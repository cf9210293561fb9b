"""dbt Cloud TriggerRun / CheckStatus against a real local HTTP receiver playing dbt Cloud's v2 API:
the trigger body, the run polled through its states with its step logs, the artifacts stored,
failures (an errored run, a 4xx), retries of a 503 and a timeout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.stores.storage import LocalStorage, TaskLocation
from executors.base import TaskContext, TaskOutcome
from tests.unit.api_receiver import FakeTime, Receiver, run_plugin, serve

TOKEN = "dbt-T0KEN-secret"
ACCOUNT = "/api/v2/accounts/12"
RUN = f"{ACCOUNT}/runs/99/"


def run_state(status: int | None, logs: str = "", **extra: Any) -> tuple[int, Any]:
    humanized = {1: "Queued", 3: "Running", 10: "Success", 20: "Error", None: None}[status]
    data = {
        "id": 99,
        "status": status,
        "status_humanized": humanized,
        "duration_humanized": "1m 2s",
        "run_steps": [{"id": 1, "name": "dbt build", "logs": logs}],
        **extra,
    }
    return 200, {"data": data, "status": {"code": 200}}


RESULTS = {
    "results": [
        {
            "unique_id": "model.shop.orders",
            "status": "success",
            "execution_time": 1.2,
            "adapter_response": {"rows_affected": "10", "code": "INSERT"},
            "message": "INSERT 10",
        },
        {
            "unique_id": "test.shop.not_null",
            "status": "warn",
            "failures": 2,
            "adapter_response": {"rows_affected": "5", "bytes_processed": "100"},
        },
    ]
}


async def run(
    task: dict[str, Any], tmp_path: Path, time: FakeTime | None = None
) -> tuple[TaskOutcome, TaskContext]:
    task = {"id": "dbt", **task}
    location = TaskLocation("company.team", "f", "exec1", "dbt", "tr1")
    return await run_plugin(task, time=time, storage_dir=tmp_path, location=location)


def base(api: Receiver, kind: str = "TriggerRun") -> dict[str, Any]:
    return {
        "type": f"io.kestra.plugin.dbt.cloud.{kind}",
        "baseUrl": api.url,
        "accountId": "12",
        "token": TOKEN,
    }


def serve_run(api: Receiver, states: list[tuple[int, Any]]) -> None:
    api.on("POST", f"{ACCOUNT}/jobs/396284/run/", (200, {"data": {"id": 99}}))
    api.on("GET", RUN, states)
    api.on("GET", f"{RUN[:-1]}/artifacts/run_results.json", (200, RESULTS))
    api.on("GET", f"{RUN[:-1]}/artifacts/manifest.json", (404, {"status": {"code": 404}}))


async def test_trigger_run_waits_logs_steps_and_stores_artifacts(tmp_path: Path) -> None:
    with serve() as api:
        serve_run(
            api,
            [
                (503, "upstream busy"),
                run_state(1),
                run_state(3, "Running with dbt\n1 of 2 START"),
                run_state(10, "Running with dbt\n1 of 2 START\n2 of 2 OK"),
            ],
        )
        time = FakeTime()
        task = {
            **base(api),
            "jobId": "396284",
            "gitBranch": "main",
            "threadsOverride": "4",
            "generateDocsOverride": True,
            "timeoutSecondsOverride": 600,
            "stepsOverride": ["dbt build"],
            "pollFrequency": "PT10S",
        }
        outcome, ctx = await run(task, tmp_path, time)
        assert outcome.state == "SUCCESS", outcome.error
        trigger = api.requests[0]
        assert trigger.target == "POST /api/v2/accounts/12/jobs/396284/run/"
        assert trigger.headers["authorization"] == f"Bearer {TOKEN}"
        assert trigger.json == {
            "cause": "Triggered by Kestra.",
            "git_branch": "main",
            "threads_override": "4",
            "generate_docs_override": True,
            "timeout_seconds_override": 600,
            "steps_override": ["dbt build"],
        }
        polls = api.sent("GET", RUN)
        assert polls[0].query == {
            "include_related": ['["trigger","job",,"run_steps", "environment"]']
        }
        assert polls[-1].query == {
            "include_related": ['["trigger","job","debug_logs","run_steps", "environment"]']
        }
        assert time.slept == [1.0, 10.0, 10.0]  # the 503 retried after 1 s, then two polls
        assert outcome.outputs["runId"] == 99
        assert outcome.outputs["manifest"] is None  # 404: skipped
        stored = LocalStorage(tmp_path / "storage").read_sync(outcome.outputs["runResults"])
        assert json.loads(stored) == RESULTS
        assert outcome.metrics == {"rows.affected": 15.0, "bytes.processed": 100.0}
        lines = [(line.level, line.message) for line in ctx.logs]
        steps = [m for _, m in lines if m.startswith("[Step dbt build]")]
        assert steps == [
            "[Step dbt build]: Running with dbt",
            "[Step dbt build]: 1 of 2 START",
            "[Step dbt build]: 2 of 2 OK",
        ]
        assert ("INFO", "model.shop.orders => success in 1.20s") in lines
        assert ("INFO", "INSERT 10") in lines
        assert ("WARN", "test.shop.not_null => warn (2 failures)") in lines
        assert ("DEBUG", "Status changed to 'Running' after 1m 2s") in lines
        assert not any(TOKEN in m for _, m in lines)


async def test_failed_runs_refusals_and_timeouts(tmp_path: Path) -> None:
    with serve() as api:
        serve_run(api, [run_state(20, "boom", status_message="Database Error")])
        task = {**base(api), "jobId": "396284"}
        outcome, _ = await run(task, tmp_path)
        assert outcome.error == "Failed run with status 'Error' after 1m 2s: Database Error"

        serve_run(api, [run_state(None, is_complete=True, is_success=True, is_error=False)])
        check = {**base(api, "CheckStatus"), "runId": "99", "parseRunResults": False}
        outcome, _ = await run(check, tmp_path)
        assert outcome.state == "SUCCESS", outcome.error
        assert outcome.metrics == {}

        serve_run(api, [run_state(3)])
        outcome, _ = await run({**check, "maxDuration": "PT20S"}, tmp_path)
        assert outcome.error == "dbt Cloud run: Await failed to terminate within PT20S"

        api.on(
            "POST",
            f"{ACCOUNT}/jobs/396284/run/",
            (401, {"status": {"user_message": "Invalid token"}}),
        )
        outcome, _ = await run(task, tmp_path)
        assert outcome.error == (
            "dbt Cloud: POST /api/v2/accounts/12/jobs/396284/run/ failed with HTTP 401: "
            '{"status": {"user_message": "Invalid token"}}'
        )
        serve_run(api, [(503, "down")])
        time = FakeTime()
        outcome, _ = await run({**check, "maxRetries": 2, "initialDelayMs": 500}, tmp_path, time)
        assert "HTTP 503: down" in (outcome.error or "")
        assert time.slept == [0.5]
        outcome, _ = await run({**task, "wait": False}, tmp_path)
        assert outcome.outputs == {"runId": 99}
        serve_run(api, [run_state(10)])
        api.on("GET", f"{RUN[:-1]}/artifacts/manifest.json", (500, "boom"))
        outcome, _ = await run(check, tmp_path)
        assert outcome.error == (
            "dbt Cloud: GET /api/v2/accounts/12/runs/99/artifacts/manifest.json failed with "
            "HTTP 500: boom"
        )
