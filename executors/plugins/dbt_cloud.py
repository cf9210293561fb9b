"""Kestra's dbt Cloud types (kestra-io/plugin-dbt, ``cloud.TriggerRun`` and ``cloud.CheckStatus``).

Both call dbt Cloud's v2 API through :class:`executors.api_client.ApiClient` with ``Authorization:
Bearer <token>``; properties common to both: ``baseUrl`` (https://cloud.getdbt.com),
``accountId``, ``token``, ``options``, ``maxRetries`` (3 calls in all) and ``initialDelayMs``
(1000): every call is retried on 502/503/504 and on a call that got no answer, the delay doubling
up to 30 s (Kestra's ``RetryUtils``).

- ``TriggerRun``: ``jobId``, ``cause`` ("Triggered by Kestra."), ``gitSha``, ``gitBranch``,
  ``schemaOverride``, ``dbtVersionOverride``, ``threadsOverride``, ``targetNameOverride``,
  ``generateDocsOverride``, ``timeoutSecondsOverride``, ``stepsOverride`` (sent only when set, in
  dbt's snake_case names) -> POST ``/api/v2/accounts/{accountId}/jobs/{jobId}/run/``. With
  ``wait`` (true) it then does what CheckStatus does. Outputs ``runId``, ``runResults``,
  ``manifest``.
- ``CheckStatus``: ``runId``, ``pollFrequency`` (PT5S), ``maxDuration`` (PT60M),
  ``parseRunResults`` (true). GET ``/api/v2/accounts/{accountId}/runs/{runId}/?include_related=
  [...]`` (Kestra's list, its empty slot included) until the run has ended: by precedence the
  numeric ``status`` (10 success, 20 error, 30 cancelled), else ``is_complete``, else
  ``status_humanized``; an answer with none of them is skipped with a WARN. Each status change is
  logged at DEBUG and the steps' new log lines at INFO (``[Step name]: line``). At the end one
  more fetch asks for the debug logs (its failure is ignored). A run that did not succeed (by
  precedence ``status`` 10, else ``is_success`` and not ``is_error``, else ``status_humanized``
  Success) fails: "Failed run with status 'Error' after 1m 2s: <status_message>". Then the
  artifacts ``run_results.json`` and ``manifest.json`` are downloaded (a 404 skips one) into
  internal storage, streamed: outputs ``runResults`` and ``manifest`` (their URIs, or null). With
  ``parseRunResults`` each result is logged (``model.x => success in 1.20s``, its message below,
  at ERROR for error/fail/runtime_error, WARN for warn) and ``rows_affected`` /
  ``bytes_processed`` of the adapter responses become the metrics ``rows.affected`` /
  ``bytes.processed`` (summed).

What differs from Kestra: Kestra also creates one dynamic task run per dbt model and emits
Enterprise Edition assets from the manifest; a Headwater worker reports neither (the per-model
lines are logged on the task). The artifacts are stored as dbt Cloud sent them (Kestra re-writes
them through its own classes, which drops the fields they do not know). Step logs are followed
line by line (Kestra re-reads from one character before the last offset, repeating a fragment).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal

import orjson

from executors.api_client import ApiClient, ApiTask, Retry, dig, poll
from executors.base import TaskContext, TaskError, TaskOutcome, to_text
from executors.http_client import HttpOptions
from executors.plugin import TaskPlugin, render_bool, render_int, render_seconds, render_str
from schemas.flow.common import BoolOrExpr, Duration, IntOrExpr, Str

DBT_CLOUD_URL = "https://cloud.getdbt.com"
ENDED = (10, 20, 30)
ENDED_HUMANIZED = ("Success", "Error", "Cancelled")
# Kestra's include_related lists, written as it writes them (an empty slot without debug logs).
RELATED = '["trigger","job",,"run_steps", "environment"]'
RELATED_DEBUG = '["trigger","job","debug_logs","run_steps", "environment"]'
RESULT_LEVELS = {"error": "ERROR", "fail": "ERROR", "runtime_error": "ERROR", "warn": "WARN"}
ADAPTER_METRICS = {"rows_affected": "rows.affected", "bytes_processed": "bytes.processed"}


def _status(run: dict[str, Any]) -> int | None:
    value = run.get("status")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def run_ended(run: dict[str, Any]) -> bool:
    status = _status(run)
    if status is not None:
        return status in ENDED
    if run.get("is_complete") is not None:
        return run["is_complete"] is True
    return run.get("status_humanized") in ENDED_HUMANIZED


def run_succeeded(run: dict[str, Any]) -> bool:
    status = _status(run)
    if status is not None:
        return status == 10
    if run.get("is_success") is not None:
        return run["is_success"] is True and run.get("is_error") is not True
    return bool(run.get("status_humanized") == "Success")


class _DbtCloud(ApiTask):
    family: ClassVar[str] = "dbt"

    baseUrl: Str | None = DBT_CLOUD_URL
    accountId: Str
    token: Str
    options: HttpOptions | None = None
    maxRetries: IntOrExpr | None = 3
    initialDelayMs: IntOrExpr | None = 1000
    pollFrequency: Duration | None = "PT5S"
    maxDuration: Duration | None = "PT60M"
    parseRunResults: BoolOrExpr | None = True

    def client(self, ctx: TaskContext) -> tuple[ApiClient, str]:
        token = render_str(ctx, self.token, "token", required=True) or ""
        account = render_str(ctx, self.accountId, "accountId", required=True)
        retry = Retry(
            interval=(render_int(ctx, self.initialDelayMs, "initialDelayMs", 1000) or 0) / 1000,
            max_interval=30.0,
            max_attempts=render_int(ctx, self.maxRetries, "maxRetries", 3),
            statuses=lambda code: code in (502, 503, 504),
        )
        api = ApiClient(
            ctx,
            "dbt Cloud",
            ctx.render_str(self.baseUrl) or DBT_CLOUD_URL,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            secrets=[token],
            options=self.options,
            retry=retry,
        )
        return api, f"/api/v2/accounts/{account}"

    async def check(
        self, ctx: TaskContext, api: ApiClient, account: str, run_id: int
    ) -> TaskOutcome:
        """Kestra's ``CheckStatus.run``: wait, judge, fetch the artifacts."""
        statuses: list[Any] = []
        logged: dict[Any, int] = {}

        def log_steps(run: dict[str, Any]) -> None:
            humanized = run.get("status_humanized")
            if humanized not in statuses:
                ctx.log(
                    "DEBUG",
                    f"Status changed to '{humanized}' after {run.get('duration_humanized')}",
                )
                statuses.append(humanized)
            for step in run.get("run_steps") or []:
                logs = to_text(step.get("logs")) if isinstance(step, dict) else ""
                if not logs:
                    continue
                lines = logs.split("\n")
                for line in lines[logged.get(step.get("id"), 0) :]:
                    ctx.log("INFO", f"[Step {step.get('name')}]: {line}")
                logged[step.get("id")] = len(lines)

        async def fetch(debug: bool) -> dict[str, Any]:
            related = RELATED_DEBUG if debug else RELATED
            answer = await api.object(
                "GET", f"{account}/runs/{run_id}/", params={"include_related": related}
            )
            return dig(answer, "data") or {}

        async def ended() -> dict[str, Any] | None:
            run = await fetch(False)
            log_steps(run)
            if all(run.get(k) is None for k in ("status", "is_complete", "status_humanized")):
                ctx.log(
                    "WARN",
                    "Received response with no status indicator from dbt Cloud — skipping this "
                    "poll cycle",
                )
                return None
            return run if run_ended(run) else None

        every = render_seconds(ctx, self.pollFrequency, "pollFrequency", 5.0) or 5.0
        limit = render_seconds(ctx, self.maxDuration, "maxDuration", 3600.0) or 0.0
        final = await poll(ctx, ended, interval=every, max_duration=limit, what="dbt Cloud run")
        try:
            final = await fetch(True) or final
        except TaskError as exc:
            ctx.log("DEBUG", f"Unable to fetch final debug logs for run '{run_id}': {exc}")
        log_steps(final)
        if not run_succeeded(final):
            message = final.get("status_message")
            raise TaskError(
                f"Failed run with status '{final.get('status_humanized')}' after "
                f"{final.get('duration_humanized')}" + (f": {message}" if message else "")
            )
        if ctx.storage is None:
            raise TaskError("dbt Cloud: cannot store the artifacts: this worker has no storage")
        folder = Path(tempfile.mkdtemp(prefix="dbt-cloud-", dir=ctx.working_dir or None))
        try:
            results = await self._artifact(ctx, api, account, run_id, folder / "run_results.json")
            manifest = await self._artifact(ctx, api, account, run_id, folder / "manifest.json")
            metrics: dict[str, Any] = {}
            parse = render_bool(ctx, self.parseRunResults, "parseRunResults", True)
            if results is not None and parse:
                parsed = await asyncio.to_thread(_load_json, folder / "run_results.json")
                metrics = self._parse_results(ctx, parsed)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return TaskOutcome(
            state="SUCCESS",
            outputs={
                "runResults": results,
                "manifest": manifest,
            },
            metrics=metrics,
        )

    async def _artifact(
        self, ctx: TaskContext, api: ApiClient, account: str, run_id: int, target: Path
    ) -> str | None:
        """Download one artifact into ``target`` then internal storage, streamed; its URI, or
        None when dbt Cloud has none (404)."""
        name = target.name
        status = await api.download(
            f"{account}/runs/{run_id}/artifacts/{name}", target, allow=lambda code: code == 404
        )
        if status == 404:
            ctx.log("DEBUG", f"Artifact '{name}' not found (404) — skipping")
            return None
        assert ctx.storage is not None
        return await ctx.storage.put_file(name, target)

    @staticmethod
    def _parse_results(ctx: TaskContext, results: Any) -> dict[str, Any]:
        metrics: dict[str, float] = {}
        for result in dig(results, "results") or []:
            if not isinstance(result, dict):
                continue
            status = to_text(result.get("status"))
            level = RESULT_LEVELS.get(status, "INFO")
            summary = f"{result.get('unique_id')} => {status}"
            if isinstance(result.get("execution_time"), int | float):
                summary += f" in {result['execution_time']:.2f}s"
            failures = result.get("failures")
            if isinstance(failures, int) and failures > 0:
                summary += f" ({failures} failure{'' if failures == 1 else 's'})"
            ctx.log(level, summary)
            if result.get("message") and str(result["message"]).strip():
                ctx.log(level, to_text(result["message"]))
            for key, metric in ADAPTER_METRICS.items():
                value = (result.get("adapter_response") or {}).get(key)
                try:
                    metrics[metric] = metrics.get(metric, 0.0) + float(to_text(value))
                except (TypeError, ValueError):
                    continue
        return dict(metrics)


class DbtCloudCheckStatus(_DbtCloud):
    """Wait for a dbt Cloud run to end, then store its artifacts."""

    short: ClassVar[str | None] = "dbt_cloud_checkstatus"

    type: Literal["io.kestra.plugin.dbt.cloud.CheckStatus"]
    runId: IntOrExpr

    async def execute(self, ctx: TaskContext) -> TaskOutcome:
        run_id = render_int(ctx, self.runId, "runId")
        assert run_id is not None
        api, account = self.client(ctx)
        async with api:
            return await self.check(ctx, api, account, run_id)


class DbtCloudTriggerRun(_DbtCloud):
    """Trigger a dbt Cloud job run and (by default) wait for it."""

    short: ClassVar[str | None] = "dbt_cloud_triggerrun"

    type: Literal["io.kestra.plugin.dbt.cloud.TriggerRun"]
    jobId: Str | int
    cause: Str | None = "Triggered by Kestra."
    gitSha: Str | None = None
    gitBranch: Str | None = None
    schemaOverride: Str | None = None
    dbtVersionOverride: Str | None = None
    threadsOverride: Str | int | None = None
    targetNameOverride: Str | None = None
    generateDocsOverride: BoolOrExpr | None = None
    timeoutSecondsOverride: IntOrExpr | None = None
    stepsOverride: list[Str] | Str | None = None
    wait: BoolOrExpr | None = True

    def body(self, ctx: TaskContext) -> dict[str, Any]:
        body: dict[str, Any] = {"cause": render_str(ctx, self.cause, "cause", required=True)}
        for key, value in (
            ("git_sha", self.gitSha),
            ("git_branch", self.gitBranch),
            ("schema_override", self.schemaOverride),
            ("dbt_version_override", self.dbtVersionOverride),
            ("threads_override", self.threadsOverride),
            ("target_name_override", self.targetNameOverride),
        ):
            if value is not None:
                body[key] = ctx.render_str(value)
        if self.generateDocsOverride is not None:
            body["generate_docs_override"] = render_bool(
                ctx, self.generateDocsOverride, "generateDocsOverride"
            )
        timeout = render_int(ctx, self.timeoutSecondsOverride, "timeoutSecondsOverride")
        if timeout is not None:
            body["timeout_seconds_override"] = timeout
        steps = ctx.render(self.stepsOverride)
        if isinstance(steps, str):
            steps = orjson.loads(steps) if steps.strip().startswith("[") else [steps]
        if steps:
            body["steps_override"] = [to_text(s) for s in steps]
        return body

    async def execute(self, ctx: TaskContext) -> TaskOutcome | dict[str, Any]:
        job = render_str(ctx, self.jobId, "jobId", required=True)
        body = self.body(ctx)
        api, account = self.client(ctx)
        async with api:
            answer = await api.call("POST", f"{account}/jobs/{job}/run/", json=body)
            ctx.log("INFO", f"Job status {answer.status} with response: {answer.text[:2000]}")
            run_id = dig(answer.object(), "data", "id")
            if not isinstance(run_id, int):
                raise TaskError(f"dbt Cloud: the run answer has no data.id: {answer.text[:200]}")
            if not render_bool(ctx, self.wait, "wait", True):
                return {"runId": run_id}
            outcome = await self.check(ctx, api, account, run_id)
        outcome.outputs = {"runId": run_id, **outcome.outputs}
        return outcome


def _load_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise TaskError(f"dbt Cloud: {path.name} is not valid JSON: {exc}") from None


PLUGINS: list[type[TaskPlugin]] = [DbtCloudTriggerRun, DbtCloudCheckStatus]
