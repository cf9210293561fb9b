"""BigQuery jobs over its REST API (v2): what Kestra's ``AbstractBigquery`` does with the Java
client, for the ``io.kestra.plugin.gcp.bigquery.*`` types.

- A job is inserted (``POST /bigquery/v2/projects/{p}/jobs``; a local file goes through the
  resumable upload host, ``/upload/bigquery/v2/...``) with a new random job id, the task's
  ``location``, then polled (``GET .../jobs/{id}``) until ``status.state`` is ``DONE``.
- A job that ends with an error fails with Kestra's message, ``Bigquery Errors`` and one
  ``BigQueryError{reason=..., location=..., message=...}`` per error (``status.errorResult``
  then ``status.errors``), also logged at WARN.
- ``retryAuto`` (a retry policy; default exponential from 5 s, at most 60 min apart, 10
  attempts, 15 minutes) repeats a job whose error has a reason in ``retryReasons``
  (``rateLimitExceeded``, ``jobBackendError``, ``backendError``, ``internalError``,
  ``jobInternalError``) or a message containing one of ``retryMessages`` (case-insensitive).
- Every job carries the labels ``kestra_namespace``, ``kestra_flow_id``,
  ``kestra_execution_id``, ``kestra_task_id`` (and ``kestra_trigger_id``): lower case, ``.``
  as ``_``, at most 63 characters; the task's ``labels`` are added over them.
- A table is ``project.dataset.table`` or ``dataset.table`` (the job's project then).
- Query results are read page by page (``GET .../queries/{id}``, ``pageToken``), every cell
  converted as Kestra's ``Query.convertCell`` does (see :func:`cell`).

A kill while a job runs cancels it (``POST .../jobs/{id}/cancel``), as Kestra's ``kill()``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from engine.reducer.retry import delay as retry_delay
from engine.reducer.retry import parse_retry
from executors.api_client import Killed
from executors.base import TaskContext, TaskError
from executors.remote.google_api import GoogleApi, GoogleError

RETRY_REASONS = [
    "rateLimitExceeded",
    "jobBackendError",
    "backendError",
    "internalError",
    "jobInternalError",
]
RETRY_MESSAGES = [
    "due to concurrent update",
    "Retrying the job may solve the problem",
    "Retrying may solve the problem",
]
# Kestra's default retryAuto.
DEFAULT_RETRY = {
    "type": "exponential",
    "interval": "PT5S",
    "maxInterval": "PT60M",
    "maxDuration": "PT15M",
    "maxAttempt": 10,
}
# Between polls of a running job: the Java client's waitFor starts near 1 s and backs off.
POLL_FIRST_S = 0.5
POLL_MAX_S = 5.0
POLL_GROWTH = 1.5
# Resumable upload chunks: a multiple of 256 KiB, what a task holds in memory.
UPLOAD_CHUNK = 8 * 1024 * 1024
LABEL_MAX = 63


class BigQueryJobError(TaskError):
    """A job ended with errors (a list of ``{reason, location, message}``)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        listed = "\n - ".join(error_text(e) for e in errors)
        super().__init__(f"Bigquery Errors\n[ - {listed}\n]")


def error_text(error: Mapping[str, Any]) -> str:
    """Java's ``BigQueryError.toString()``."""

    def shown(key: str) -> str:
        value = error.get(key)
        return "null" if value is None else str(value)

    reason, location, message = shown("reason"), shown("location"), shown("message")
    return f"BigQueryError{{reason={reason}, location={location}, message={message}}}"


@dataclass(frozen=True, slots=True)
class TableRef:
    project: str
    dataset: str
    table: str

    def json(self) -> dict[str, str]:
        return {"projectId": self.project, "datasetId": self.dataset, "tableId": self.table}

    def dotted(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"


def table_ref(text: str | None, project: str, name: str) -> TableRef:
    """Kestra's ``BigQueryService.tableId``: ``[project.]dataset.table``."""
    parts = (text or "").split(".")
    if len(parts) == 2 and all(parts):
        return TableRef(project, parts[0], parts[1])
    if len(parts) == 3 and all(parts):
        return TableRef(parts[0], parts[1], parts[2])
    raise TaskError(f"property '{name}': Invalid table name '{text}'")


def table_of(resource: Mapping[str, Any] | None) -> TableRef | None:
    if not isinstance(resource, Mapping):
        return None
    return TableRef(
        str(resource.get("projectId", "")),
        str(resource.get("datasetId", "")),
        str(resource.get("tableId", "")),
    )


def _sanitize_label(value: Any) -> str:
    return str(value).replace(".", "_").lower()[:LABEL_MAX]


def kestra_labels(ctx: TaskContext) -> dict[str, str]:
    """``BigQueryService.labels``: where the job comes from."""
    variables = ctx.variables
    out: dict[str, str] = {}
    flow = variables.get("flow") if isinstance(variables.get("flow"), Mapping) else {}
    assert isinstance(flow, Mapping)
    out["kestra_namespace"] = _sanitize_label(flow.get("namespace", ""))
    out["kestra_flow_id"] = _sanitize_label(flow.get("id", ""))
    for name, key in (("execution", "kestra_execution_id"), ("task", "kestra_task_id")):
        section = variables.get(name)
        if isinstance(section, Mapping) and section.get("id") is not None:
            out[key] = _sanitize_label(section["id"])
    if "kestra_execution_id" not in out and ctx.execution_id:
        out["kestra_execution_id"] = _sanitize_label(ctx.execution_id)
    if "kestra_task_id" not in out and ctx.task_id:
        out["kestra_task_id"] = _sanitize_label(ctx.task_id)
    trigger = variables.get("trigger")
    if isinstance(trigger, Mapping) and trigger.get("id") is not None:
        out["kestra_trigger_id"] = _sanitize_label(trigger["id"])
    return out


@dataclass(slots=True)
class RetrySettings:
    policy: dict[str, Any]
    reasons: list[str]
    messages: list[str]

    def retriable(self, exc: BigQueryJobError) -> bool:
        for error in exc.errors:
            if error.get("reason") in self.reasons:
                return True
            text = str(error.get("message") or "").lower()
            if any(m.lower() in text for m in self.messages):
                return True
        return False


def job_errors(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``BigQueryService.handleErrors``: the error result, then the execution errors."""
    status = job.get("status") or {}
    first = status.get("errorResult")
    if not first:
        return []
    return [first, *(status.get("errors") or [])]


class Jobs:
    """Inserting, waiting for and reading BigQuery jobs of one task."""

    def __init__(self, api: GoogleApi, ctx: TaskContext, location: str | None) -> None:
        self.api = api
        self.ctx = ctx
        self.location = location
        self.base = f"/bigquery/v2/projects/{api.project}"

    def reference(self) -> dict[str, Any]:
        ref: dict[str, Any] = {"projectId": self.api.project, "jobId": f"kestra_{uuid.uuid4()}"}
        if self.location:
            ref["location"] = self.location
        return ref

    def params(self, **extra: Any) -> dict[str, Any]:
        return {"location": self.location, **extra}

    async def insert(self, configuration: dict[str, Any]) -> dict[str, Any]:
        body = {"jobReference": self.reference(), "configuration": configuration}
        job: dict[str, Any] = await self.api.json("POST", f"{self.base}/jobs", json=body)
        return job

    async def upload(self, configuration: dict[str, Any], source: Path) -> dict[str, Any]:
        """A load job of a local file through a resumable upload session."""
        body = {"jobReference": self.reference(), "configuration": configuration}
        _, _, headers = await self.api.call(
            "POST", f"/upload/bigquery/v2/projects/{self.api.project}/jobs",
            json=body, params={"uploadType": "resumable"},
        )  # fmt: skip
        session = headers.get("location")
        if not session:
            raise TaskError("BigQuery: the upload session has no Location")
        total = (await asyncio.to_thread(source.stat)).st_size
        sent = 0
        with source.open("rb") as stream:
            while True:
                chunk = await asyncio.to_thread(stream.read, UPLOAD_CHUNK)
                end = sent + len(chunk)
                last = end >= total
                rng = f"bytes {sent}-{end - 1}/{total if last else '*'}"
                status, answer, _ = await self.api.call(
                    "PUT",
                    session,
                    content=chunk,
                    headers={"Content-Range": rng, "Content-Type": "application/octet-stream"},
                    allow=(308,),
                )
                sent = end
                if last:
                    if not isinstance(answer, dict):
                        raise TaskError(f"BigQuery: the upload ended with HTTP {status}, no job")
                    return answer

    async def get(self, job: Mapping[str, Any]) -> dict[str, Any]:
        ref = job.get("jobReference") or {}
        location = ref.get("location") or self.location
        answer: dict[str, Any] = await self.api.json(
            "GET", f"{self.base}/jobs/{ref.get('jobId')}", params={"location": location}
        )
        return answer

    async def cancel(self, job: Mapping[str, Any]) -> None:
        ref = job.get("jobReference") or {}
        try:
            await self.api.call(
                "POST",
                f"{self.base}/jobs/{ref.get('jobId')}/cancel",
                params={"location": ref.get("location") or self.location},
            )
        except TaskError as exc:
            self.ctx.log("WARN", f"Failed to cancel BigQuery job '{ref.get('jobId')}': {exc}")

    async def wait(self, job: dict[str, Any]) -> dict[str, Any]:
        """Poll until DONE; raise the job's errors. A kill cancels the job."""
        check(job, self.ctx)
        wait = POLL_FIRST_S
        while (job.get("status") or {}).get("state") != "DONE":
            if not await self.ctx.sleep(wait):
                await self.cancel(job)
                raise Killed
            wait = min(wait * POLL_GROWTH, POLL_MAX_S)
            job = await self.get(job)
        check(job, self.ctx)
        return job

    async def run(
        self, create: Any, retry: RetrySettings, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Kestra's ``waitForJob``: create, wait, retry transient failures."""
        policy = parse_retry(retry.policy)
        start = self.ctx.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                try:
                    job: dict[str, Any] = await create()
                except GoogleError as refused:
                    raise google_failure(refused) from None
                job_id = (job.get("jobReference") or {}).get("jobId")
                self.ctx.log("DEBUG", f"Starting job '{job_id}'")
                return job if dry_run else await self.wait(job)
            except BigQueryJobError as exc:
                if policy is None or not retry.retriable(exc):
                    raise
                elapsed = (self.ctx.clock() - start).total_seconds()
                out_of_attempts = policy.max_attempt is not None and attempt >= policy.max_attempt
                out_of_time = policy.max_duration is not None and elapsed >= policy.max_duration
                if out_of_attempts or out_of_time:
                    self.ctx.log(
                        "ERROR", f"Stop retry, attempts {attempt} elapsed {int(elapsed)} seconds"
                    )
                    raise
                self.ctx.log("WARN", f"Retrying, attempts {attempt} elapsed {int(elapsed)} seconds")
                if not await self.ctx.sleep(retry_delay(policy, attempt, self.ctx.task_run_id)):
                    raise Killed from None

    async def results(self, job: Mapping[str, Any], page_size: int | None) -> Any:
        """Every page of a query's results: yields (schema fields, rows, totalRows)."""
        ref = job.get("jobReference") or {}
        token: str | None = None
        while True:
            params = {
                "location": ref.get("location") or self.location,
                "pageToken": token,
                "maxResults": page_size,
                "formatOptions.useInt64Timestamp": "true",
            }
            page = await self.api.json(
                "GET", f"{self.base}/queries/{ref.get('jobId')}", params=params
            )
            page = page or {}
            if not page.get("jobComplete", True):
                if not await self.ctx.sleep(POLL_FIRST_S):
                    raise Killed
                continue
            fields = ((page.get("schema") or {}).get("fields")) or []
            yield fields, page.get("rows") or [], int(page.get("totalRows") or 0)
            token = page.get("pageToken")
            if not token:
                return


def check(job: Mapping[str, Any], ctx: TaskContext) -> None:
    errors = job_errors(job)
    if errors:
        job_id = (job.get("jobReference") or {}).get("jobId")
        listed = "\n - ".join(error_text(e) for e in errors)
        ctx.log("WARN", f"Error query on job 'job '{job_id}'' with errors:\n[\n - {listed}\n]")
        raise BigQueryJobError(errors)


def google_failure(exc: GoogleError) -> BigQueryJobError:
    """A refused call as Kestra's BigQueryException: Google's ``error.errors`` (reason,
    location, message), else one error whose reason comes from the HTTP status."""
    try:
        listed = orjson.loads(exc.body).get("error", {}).get("errors")
    except (orjson.JSONDecodeError, AttributeError):
        listed = None
    if isinstance(listed, list) and listed and all(isinstance(e, dict) for e in listed):
        return BigQueryJobError(listed)
    reason = {503: "backendError", 500: "internalError", 429: "rateLimitExceeded"}.get(
        exc.status, exc.reason or "unknown"
    )
    return BigQueryJobError([{"reason": reason, "location": None, "message": str(exc)}])


# ------------------------------------------------------------------------ result cells

_LEGACY = {
    "INT64": "INTEGER",
    "FLOAT64": "FLOAT",
    "BOOL": "BOOLEAN",
    "STRUCT": "RECORD",
}
_POINT = re.compile(r"^POINT\(([0-9.]+) ([0-9.]+)\)$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _timestamp(text: str) -> dt.datetime:
    if re.fullmatch(r"-?\d+", text):
        micros = int(text)
    else:
        micros = int(Decimal(text) * 1_000_000)
    return _EPOCH + dt.timedelta(microseconds=micros)


def _range(field: Mapping[str, Any], text: str) -> dict[str, Any]:
    inner = text.strip()[1:-1]
    start, _, end = inner.partition(",")
    kind = str((field.get("rangeElementType") or {}).get("type", "")).upper()

    def one(value: str) -> Any:
        value = value.strip()
        if value.upper() in ("UNBOUNDED", "NULL", ""):
            return None
        if kind == "DATE":
            return dt.date.fromisoformat(value)
        return value

    return {"start": one(start), "end": one(end)}


def cell(field: Mapping[str, Any], value: Any, repeated: bool = False) -> Any:
    """Kestra's ``Query.convertCell`` of one REST cell (``{"v": ...}``'s value)."""
    if field.get("mode") == "REPEATED" and not repeated:
        return [cell(field, item.get("v"), True) for item in value or []]
    if value is None:
        return None
    kind = str(field.get("type", "")).upper()
    kind = _LEGACY.get(kind, kind)
    if kind == "BOOLEAN":
        return str(value).lower() == "true"
    if kind == "BYTES":
        return base64.b64decode(value)
    if kind == "DATE":
        return dt.date.fromisoformat(value)
    if kind == "DATETIME":
        return str(value).replace(" ", "T") + "Z"
    if kind == "FLOAT":
        return float(value)
    if kind == "GEOGRAPHY":
        match = _POINT.match(str(value))
        if match:
            return [float(match.group(1)), float(match.group(2))]
        raise TaskError(f"Couldn't match '{value}'")
    if kind == "INTEGER":
        return int(value)
    if kind == "NUMERIC":
        return float(value)
    if kind == "BIGNUMERIC":
        return Decimal(value)
    if kind == "RECORD":
        subs = field.get("fields") or []
        cells = (value or {}).get("f") or []
        return {
            sub["name"]: cell(sub, c.get("v") if isinstance(c, Mapping) else None)
            for sub, c in zip(subs, cells, strict=False)
        }
    if kind == "STRING" or kind == "INTERVAL":
        return str(value)
    if kind == "TIME":
        return dt.time.fromisoformat(value)
    if kind == "TIMESTAMP":
        return _timestamp(str(value))
    if kind == "JSON":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise TaskError(f"Invalid data type [JSON] with value [{value}]") from exc
    if kind == "RANGE":
        return _range(field, str(value))
    raise TaskError(f"Invalid type '{field.get('type')}'")


def row(fields: list[Mapping[str, Any]], raw: Mapping[str, Any]) -> dict[str, Any]:
    cells = raw.get("f") or []
    return {
        f["name"]: cell(f, c.get("v") if isinstance(c, Mapping) else None)
        for f, c in zip(fields, cells, strict=False)
    }
