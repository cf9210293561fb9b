"""Kestra's data-sync triggers: start a sync on a service, then wait for it to end.

Ported from kestra-io/plugin-hightouch (``Sync``), plugin-airbyte (``connections.Sync``,
``connections.CheckStatus``, ``cloud.jobs.Sync``, ``cloud.jobs.Reset``) and plugin-fivetran
(``connectors.Sync``). Each calls the service's REST API through
:class:`executors.api_client.ApiClient` (a refused call fails the task with the service's answer;
credentials are masked) and waits with :func:`executors.api_client.poll` (a kill ends the task
KILLED; ``maxDuration`` fails it with "Await failed to terminate within ...").

- ``hightouch.Sync``: ``token`` (Bearer), ``syncId``, ``fullResynchronization`` (false),
  ``wait`` (true), ``maxDuration`` (PT5M), ``options``. GET ``/api/v1/syncs/{id}`` (its slug),
  POST ``/api/v1/syncs/{id}/trigger`` ``{"fullResync": ...}``; then every second
  (:data:`HIGHTOUCH_POLL_S`) GET ``/api/v1/syncs/{id}/runs?runId=`` until the run is failed,
  cancelled, success, completed_with_errors, warning or interrupted (Kestra's spellings and
  aliases: ``completed``, ``canceled``...). Only success, completed_with_errors (WARN log) and
  warning succeed; otherwise "Failed run with status 'S' after H:mm:ss.SSS: S". Outputs
  ``runId``, ``metadata`` (the run); metrics ``completion.ratio``, ``rows.successfully.*``,
  ``rows.failed.*`` (added/removed/changed).
- ``airbyte.connections.Sync`` / ``CheckStatus`` (self-hosted Airbyte): ``url``, ``token``
  (Bearer) or ``username`` + ``password`` (Basic) or ``applicationCredentials`` (``clientId``,
  ``clientSecret``: POST ``/api/v1/applications/token`` first, its ``access_token`` is the
  Bearer token), ``options``, ``httpTimeout`` (deprecated, unused as in Kestra). Sync: POST
  ``/api/v1/connections/sync/`` ``{"connectionId"}``; a 409 or an answer saying "already
  running" fails ("A sync is already running") unless ``failOnActiveSync: false`` (then
  ``alreadyRunning: true``, no job id). ``wait`` (true) runs CheckStatus: POST
  ``/api/v1/jobs/get/`` ``{"id"}`` every ``pollFrequency`` (PT1S) up to ``maxDuration`` (PT60M),
  streaming the attempts' new log lines (ERROR[/DEBUG[/TRACE[ set the level), until failed,
  cancelled or succeeded; anything but succeeded fails ("Failed run with status 'S' after N
  attempt(s)", each attempt's failure summary logged at WARN). Outputs: Sync ``jobId``,
  ``alreadyRunning``; CheckStatus ``finalJobStatus``. Metrics ``attempts.count``,
  ``records.committed``, ``records.emitted``, ``bytes.emitted``, ``state.emitted`` (summed over
  the streams; Kestra tags one counter per stream). Every call is retried on 408, 425, 429, 5xx
  but 501 and transport failures (1 s doubling to 15 s, for up to 5 minutes).
- ``airbyte.cloud.jobs.Sync`` / ``Reset`` (Airbyte Cloud's public API): ``token`` (Bearer),
  else ``clientId`` + ``clientSecret`` (exchanged at ``tokenURL``), else ``username`` +
  ``password`` (Basic); ``connectionId``, ``wait``, ``maxDuration`` (PT60M), ``pollFrequency``
  (PT1S). POST ``/v1/jobs`` ``{"connectionId", "jobType": "sync"|"reset"}``, then GET
  ``/v1/jobs/{id}`` until incomplete, failed, cancelled or succeeded. Output ``job`` (``jobId``,
  ``startTime``, ``lastUpdatedAt``, ``jobType``, ``status``, ``duration``, ``bytesSynced``,
  ``rowsSynced``); metrics ``bytes_synced``, ``rows_synced``, ``duration`` (seconds). Same retry.
- ``fivetran.connectors.Sync``: ``apiKey`` + ``apiSecret`` (Basic), ``baseUrl``
  (https://api.fivetran.com), ``connectorId``, ``force`` (false), ``wait`` (true),
  ``maxDuration`` (PT60M), ``pollFrequency`` (PT5S), ``maxAttempts`` (3), ``initialRetryDelay``
  (PT1S), ``options``. Header ``Accept: application/json;version=2``. GET
  ``/v2/connectors/{id}`` (the last completion: the later of ``succeeded_at``/``failed_at``),
  POST ``/v2/connectors/{id}/sync`` ``{"force"}``, then GET until a completion newer than the
  first one; it failed when ``failed_at`` is not before ``succeeded_at`` ("Connector 'X'
  failed"). GETs (never the POST) are retried on 429/5xx/timeouts/refused connections,
  ``initialRetryDelay`` doubling to 30 s, ``maxAttempts`` calls; a status read that still fails
  is logged at WARN and the next poll tries again (a timeout then names the last error). No
  outputs.

What differs from Kestra: Airbyte Cloud's Sync/Reset fail when the job ends failed, cancelled
or incomplete (Kestra returns the job and succeeds); Airbyte's job logs are streamed without
Kestra's off-by-one that skips a line between polls.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from executors.api_client import (
    ApiClient,
    ApiError,
    ApiTask,
    Retry,
    TransportError,
    base_url,
    dig,
    poll,
)
from executors.base import TaskContext, TaskError, TaskOutcome, parse_duration, to_text
from executors.http_client import HttpOptions
from executors.plugin import TaskPlugin, render_bool, render_int, render_seconds, render_str
from executors.plugins.notifications import human_duration
from schemas.flow.common import BoolOrExpr, Duration, FlowModel, IntOrExpr, Str

# Hightouch's status refresh rate (fixed in Kestra).
HIGHTOUCH_POLL_S = 1.0
# Airbyte's retry of one call (Kestra's Exponential: 1 s doubling to 15 s, 5 minutes in all).
AIRBYTE_RETRY = Retry(interval=1.0, max_interval=15.0, max_duration=300.0)


def _hightouch_status(value: Any) -> str | None:
    """Kestra's ``RunStatus.fromValue``: canonical status of Hightouch's spelling, or None."""
    if value is None:
        return None
    text = to_text(value).strip().lower().replace("-", "_").replace(" ", "_")
    return HIGHTOUCH_ALIASES.get(text, text if text in HIGHTOUCH_STATUSES else None)


HIGHTOUCH_STATUSES = (
    "processing",
    "queued",
    "failed",
    "cancelled",
    "success",
    "querying",
    "warning",
    "reporting",
    "interrupted",
    "completed_with_errors",
)
HIGHTOUCH_ALIASES = {
    "canceled": "cancelled",
    "completed": "success",
    "aborted_due_to_fatal_error": "failed",
    "cancelled_by_user": "cancelled",
    "canceled_by_user": "cancelled",
    "complete": "success",
    "completed_successfully": "success",
    "completed_success": "success",
    "completed_errors": "completed_with_errors",
    "completed_with_error": "completed_with_errors",
}
HIGHTOUCH_ENDED = (
    "failed",
    "cancelled",
    "success",
    "completed_with_errors",
    "warning",
    "interrupted",
)
HIGHTOUCH_OK = ("success", "completed_with_errors", "warning")


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class HightouchSync(ApiTask):
    """Trigger a Hightouch sync and wait for its run to end."""

    family: ClassVar[str] = "sync"
    short: ClassVar[str | None] = "hightouch_sync"

    type: Literal["io.kestra.plugin.hightouch.Sync"]
    token: Str
    syncId: IntOrExpr
    fullResynchronization: BoolOrExpr | None = False
    wait: BoolOrExpr | None = True
    maxDuration: Duration | None = "PT5M"
    options: HttpOptions | None = None

    async def execute(self, ctx: TaskContext) -> TaskOutcome | dict[str, Any]:
        token = render_str(ctx, self.token, "token", required=True) or ""
        sync_id = render_int(ctx, self.syncId, "syncId")
        full = render_bool(ctx, self.fullResynchronization, "fullResynchronization")
        wait = render_bool(ctx, self.wait, "wait", True)
        limit = render_seconds(ctx, self.maxDuration, "maxDuration", 300.0) or 0.0
        headers = {"Authorization": f"Bearer {token}"}
        async with ApiClient(
            ctx,
            "Hightouch",
            base_url("hightouch"),
            headers=headers,
            secrets=[token],
            options=self.options,
        ) as api:
            sync = await api.object("GET", f"/api/v1/syncs/{sync_id}")
            run = await api.object(
                "POST", f"/api/v1/syncs/{sync_id}/trigger", json={"fullResync": full}
            )
            run_id = run.get("id")
            where = f"[syncId={sync.get('id')}] {sync.get('slug')}"
            ctx.log("INFO", f"{where}: Job triggered with runId {run_id}")
            if not wait:
                return {"runId": run_id}

            async def check() -> dict[str, Any] | None:
                runs = dig(
                    await api.json(
                        "GET", f"/api/v1/syncs/{sync_id}/runs", params={"runId": run_id}
                    ),
                    "data",
                )
                found = [r for r in runs or [] if isinstance(r, dict) and r.get("id") == run_id]
                if not found:
                    ctx.log("DEBUG", f"Hightouch: runId={run_id} not visible yet, retrying")
                    return None
                status = _hightouch_status(found[0].get("status"))
                ctx.log("INFO", f"{where}: [runId={run_id}] is now {status}")
                return {**found[0], "status": status} if status in HIGHTOUCH_ENDED else None

            final = await poll(
                ctx, check, interval=HIGHTOUCH_POLL_S, max_duration=limit, what="Hightouch sync"
            )
        status = final["status"]
        if status not in HIGHTOUCH_OK:
            created, finished = _instant(final.get("createdAt")), _instant(final.get("finishedAt"))
            took = "N/A"
            if created and finished:
                took = human_duration((finished - created).total_seconds())
            else:
                ctx.log("WARN", f"Run {run_id} has null finishedAt - duration set to N/A")
            raise TaskError(f"Failed run with status '{status}' after {took}: {status}")
        if status != "success":
            failed = final.get("failedRows")
            ctx.log("WARN", f"Run completed with errors (runId={run_id}): {failed} failed rows")
        metrics: dict[str, Any] = {"completion.ratio": final.get("completionRatio") or 0}
        for kind, key in (("successfully", "successfulRows"), ("failed", "failedRows")):
            for change in ("added", "removed", "changed"):
                count = dig(final, key, f"{change}Count")
                metrics[f"rows.{kind}.{change}"] = count if isinstance(count, int) else 0
        return TaskOutcome(
            state="SUCCESS", outputs={"runId": run_id, "metadata": final}, metrics=metrics
        )


# --------------------------------------------------------------------------------------------
# Airbyte (self-hosted API)


class ApplicationCredentials(FlowModel):
    clientId: Str
    clientSecret: Str


AIRBYTE_ENDED = ("failed", "cancelled", "succeeded")
AIRBYTE_STREAM_METRICS = {
    "records.committed": "recordsCommitted",
    "records.emitted": "recordsEmitted",
    "bytes.emitted": "bytesEmitted",
    "state.emitted": "stateMessagesEmitted",
}


class _Airbyte(ApiTask):
    family: ClassVar[str] = "sync"

    url: Str
    username: Str | None = None
    password: Str | None = None
    token: Str | None = None
    httpTimeout: Duration | None = "PT10S"
    options: HttpOptions | None = None
    applicationCredentials: ApplicationCredentials | None = None
    maxDuration: Duration | None = "PT60M"
    pollFrequency: Duration | None = "PT1S"

    async def client(self, ctx: TaskContext) -> ApiClient:
        url = render_str(ctx, self.url, "url", required=True) or ""
        token = ctx.render_str(self.token)
        secrets: list[str | None] = [token]
        if self.applicationCredentials is not None:
            creds = self.applicationCredentials
            client_id = render_str(ctx, creds.clientId, "applicationCredentials.clientId")
            secret = render_str(ctx, creds.clientSecret, "applicationCredentials.clientSecret")
            body = {
                "client_id": client_id,
                "client_secret": secret,
                "grant-type": "client_credentials",
            }
            async with ApiClient(
                ctx, "Airbyte", url, secrets=[secret], options=self.options, retry=AIRBYTE_RETRY
            ) as api:
                answer = await api.object(
                    "POST",
                    "/api/v1/applications/token",
                    json=body,
                    headers={"Accept": "application/json"},
                )
            token = answer.get("access_token") or token
            secrets += [secret, token]
        headers: dict[str, str] = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        user, password = ctx.render_str(self.username), ctx.render_str(self.password)
        if self.username is not None and self.password is not None:
            pair = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
            secrets += [password, pair]
        return ApiClient(
            ctx,
            "Airbyte",
            url,
            headers=headers,
            secrets=secrets,
            options=self.options,
            retry=AIRBYTE_RETRY,
        )

    async def wait_for(self, ctx: TaskContext, api: ApiClient, job_id: int) -> TaskOutcome:
        """Kestra's ``CheckStatus``: poll the job, stream its logs, judge its end."""
        attempts_seen = 1
        logged: dict[int, int] = {}

        async def check() -> dict[str, Any] | None:
            nonlocal attempts_seen
            info = await api.object("POST", "/api/v1/jobs/get/", json={"id": job_id})
            attempts = info.get("attempts") or []
            for index, attempt in enumerate(attempts):
                lines = dig(attempt, "logs", "logLines") or []
                for line in lines[logged.get(index, 0) :]:
                    text = to_text(line)
                    level = next(
                        (lv for lv in ("ERROR", "DEBUG", "TRACE") if f"{lv}[" in text), "INFO"
                    )
                    ctx.log(level, text)
                logged[index] = len(lines)
            if dig(info, "job", "status") in AIRBYTE_ENDED:
                return info
            if len(attempts) > attempts_seen:
                ctx.log("WARN", "Previous attempt failed, creating a new sync attempt ...")
                attempts_seen += 1
            return None

        limit = render_seconds(ctx, self.maxDuration, "maxDuration", 3600.0) or 0.0
        every = render_seconds(ctx, self.pollFrequency, "pollFrequency", 1.0) or 1.0
        final = await poll(ctx, check, interval=every, max_duration=limit, what="Airbyte job")
        attempts = final.get("attempts") or []
        for attempt in attempts:
            summary = dig(attempt, "attempt", "failureSummary")
            if summary is not None:
                ctx.log("WARN", f"Failure with reason {summary}")
        status = dig(final, "job", "status")
        if status != "succeeded":
            raise TaskError(f"Failed run with status '{status}' after {len(attempts)} attempt(s)")
        metrics: dict[str, Any] = {"attempts.count": len(attempts)}
        for attempt in attempts:
            for stream in dig(attempt, "attempt", "streamStats") or []:
                for metric, key in AIRBYTE_STREAM_METRICS.items():
                    value = dig(stream, "stats", key)
                    if isinstance(value, int):
                        metrics[metric] = metrics.get(metric, 0) + value
        return TaskOutcome(state="SUCCESS", outputs={"finalJobStatus": status}, metrics=metrics)


class AirbyteSync(_Airbyte):
    """Trigger an Airbyte connection sync and wait for its job to end."""

    short: ClassVar[str | None] = "airbyte_connections_sync"

    type: Literal["io.kestra.plugin.airbyte.connections.Sync"]
    connectionId: Str
    wait: BoolOrExpr | None = True
    failOnActiveSync: BoolOrExpr | None = True

    async def execute(self, ctx: TaskContext) -> TaskOutcome | dict[str, Any]:
        connection = render_str(ctx, self.connectionId, "connectionId", required=True)
        async with await self.client(ctx) as api:
            try:
                answer = await api.call(
                    "POST",
                    "/api/v1/connections/sync/",
                    json={"connectionId": connection},
                    headers={"Accept-Encoding": "identity"},
                )
            except ApiError as exc:
                if exc.status != 409 and "already running" not in exc.body.lower():
                    raise
                if render_bool(ctx, self.failOnActiveSync, "failOnActiveSync", True):
                    raise TaskError(f"A sync is already running: {exc}") from None
                return {"jobId": None, "alreadyRunning": True}
            ctx.log("INFO", f"Job status {answer.status} with response: {answer.text}")
            job_id = dig(answer.object(), "job", "id")
            if not isinstance(job_id, int):
                raise TaskError(f"Airbyte: the sync answer has no job id: {answer.text[:200]}")
            if not render_bool(ctx, self.wait, "wait", True):
                return {"jobId": job_id, "alreadyRunning": False}
            checked = await self.wait_for(ctx, api, job_id)
        checked.outputs = {"jobId": job_id, "alreadyRunning": False}
        return checked


class AirbyteCheckStatus(_Airbyte):
    """Wait for an Airbyte job to end and report its status."""

    short: ClassVar[str | None] = "airbyte_connections_checkstatus"

    type: Literal["io.kestra.plugin.airbyte.connections.CheckStatus"]
    jobId: IntOrExpr

    async def execute(self, ctx: TaskContext) -> TaskOutcome:
        job_id = render_int(ctx, self.jobId, "jobId")
        assert job_id is not None
        async with await self.client(ctx) as api:
            return await self.wait_for(ctx, api, job_id)


# --------------------------------------------------------------------------------------------
# Airbyte Cloud (public API)

AIRBYTE_TOKEN_URL = "https://api.airbyte.com/v1/applications/token"  # noqa: S105 - a URL
AIRBYTE_CLOUD_ENDED = ("incomplete", "failed", "cancelled", "succeeded")


class _AirbyteCloudJob(ApiTask):
    family: ClassVar[str] = "sync"
    job_type: ClassVar[str] = "sync"

    token: Str | None = None
    clientId: Str | None = None
    clientSecret: Str | None = None
    tokenURL: Str | None = AIRBYTE_TOKEN_URL
    username: Str | None = None
    password: Str | None = None
    connectionId: Str
    wait: BoolOrExpr | None = True
    maxDuration: Duration | None = "PT60M"
    pollFrequency: Duration | None = "PT1S"

    async def client(self, ctx: TaskContext) -> ApiClient:
        url = base_url("airbyte_cloud")
        if self.token is not None:
            token = render_str(ctx, self.token, "token", required=True) or ""
            return ApiClient(
                ctx,
                "Airbyte Cloud",
                url,
                headers={"Authorization": f"Bearer {token}"},
                secrets=[token],
                retry=AIRBYTE_RETRY,
            )
        if self.clientId is not None and self.clientSecret is not None:
            client_id = render_str(ctx, self.clientId, "clientId")
            secret = render_str(ctx, self.clientSecret, "clientSecret") or ""
            token_url = ctx.render_str(self.tokenURL) or AIRBYTE_TOKEN_URL
            body = {
                "client_id": client_id,
                "client_secret": secret,
                "grant-type": "client_credentials",
            }
            async with ApiClient(
                ctx, "Airbyte Cloud", token_url, secrets=[secret], retry=AIRBYTE_RETRY
            ) as auth:
                answer = await auth.object("POST", token_url, json=body)
            token = to_text(answer.get("access_token"))
            if not token:
                raise TaskError("Airbyte Cloud: the token answer has no access_token")
            return ApiClient(
                ctx,
                "Airbyte Cloud",
                url,
                headers={"Authorization": f"Bearer {token}"},
                secrets=[secret, token],
                retry=AIRBYTE_RETRY,
            )
        user = render_str(ctx, self.username, "username", required=True) or ""
        password = render_str(ctx, self.password, "password", required=True) or ""
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        return ApiClient(
            ctx,
            "Airbyte Cloud",
            url,
            headers={"Authorization": f"Basic {pair}"},
            secrets=[password, pair],
            retry=AIRBYTE_RETRY,
        )

    async def execute(self, ctx: TaskContext) -> TaskOutcome | dict[str, Any]:
        connection = render_str(ctx, self.connectionId, "connectionId", required=True)
        async with await self.client(ctx) as api:
            created = await api.object(
                "POST", "/jobs", json={"connectionId": connection, "jobType": self.job_type}
            )
            job_id = created.get("jobId")
            ctx.log("INFO", f"Job id {job_id} with response: {created}")
            if not render_bool(ctx, self.wait, "wait", True):
                return {"job": _cloud_job(created)}

            async def check() -> dict[str, Any] | None:
                job = await api.object("GET", f"/jobs/{job_id}")
                return job if job.get("status") in AIRBYTE_CLOUD_ENDED else None

            limit = render_seconds(ctx, self.maxDuration, "maxDuration", 3600.0) or 0.0
            every = render_seconds(ctx, self.pollFrequency, "pollFrequency", 1.0) or 1.0
            final = await poll(
                ctx, check, interval=every, max_duration=limit, what="Airbyte Cloud job"
            )
        if final.get("status") != "succeeded":
            raise TaskError(f"Airbyte Cloud job {job_id} ended with status '{final.get('status')}'")
        metrics: dict[str, Any] = {}
        for metric, key in (("bytes_synced", "bytesSynced"), ("rows_synced", "rowsSynced")):
            if isinstance(final.get(key), int):
                metrics[metric] = final[key]
        if final.get("duration"):
            try:
                metrics["duration"] = parse_duration(final["duration"])
            except TaskError:
                pass
        return TaskOutcome(state="SUCCESS", outputs={"job": _cloud_job(final)}, metrics=metrics)


def _cloud_job(job: dict[str, Any]) -> dict[str, Any]:
    keys = ("jobId", "startTime", "lastUpdatedAt", "jobType", "status", "duration")
    out = {key: job.get(key) for key in keys}
    out["bytesSynced"] = job.get("bytesSynced")
    out["rowsSynced"] = job.get("rowsSynced")
    return out


class AirbyteCloudSync(_AirbyteCloudJob):
    """Run an Airbyte Cloud sync job for a connection and wait for it."""

    short: ClassVar[str | None] = "airbyte_cloud_sync"
    type: Literal["io.kestra.plugin.airbyte.cloud.jobs.Sync"]


class AirbyteCloudReset(_AirbyteCloudJob):
    """Run an Airbyte Cloud reset job for a connection and wait for it."""

    short: ClassVar[str | None] = "airbyte_cloud_reset"
    job_type: ClassVar[str] = "reset"
    type: Literal["io.kestra.plugin.airbyte.cloud.jobs.Reset"]


# --------------------------------------------------------------------------------------------
# Fivetran

FIVETRAN_URL = "https://api.fivetran.com"


def _fivetran_completed(connector: dict[str, Any]) -> datetime | None:
    succeeded, failed = (
        _instant(connector.get("succeeded_at")),
        _instant(connector.get("failed_at")),
    )
    if succeeded is not None and (failed is None or succeeded > failed):
        return succeeded
    return failed


def _fivetran_failed(connector: dict[str, Any]) -> bool:
    succeeded, failed = (
        _instant(connector.get("succeeded_at")),
        _instant(connector.get("failed_at")),
    )
    return failed is not None and (succeeded is None or not succeeded > failed)


class FivetranSync(ApiTask):
    """Trigger a Fivetran connector sync and wait for it to complete."""

    family: ClassVar[str] = "sync"
    short: ClassVar[str | None] = "fivetran_connectors_sync"

    type: Literal["io.kestra.plugin.fivetran.connectors.Sync"]
    apiKey: Str
    apiSecret: Str
    baseUrl: Str | None = FIVETRAN_URL
    options: HttpOptions | None = None
    maxAttempts: IntOrExpr | None = 3
    initialRetryDelay: Duration | None = "PT1S"
    connectorId: Str
    force: BoolOrExpr | None = False
    wait: BoolOrExpr | None = True
    maxDuration: Duration | None = "PT60M"
    pollFrequency: Duration | None = "PT5S"

    async def execute(self, ctx: TaskContext) -> dict[str, Any]:
        key = render_str(ctx, self.apiKey, "apiKey", required=True) or ""
        secret = render_str(ctx, self.apiSecret, "apiSecret", required=True) or ""
        connector = render_str(ctx, self.connectorId, "connectorId", required=True) or ""
        attempts = render_int(ctx, self.maxAttempts, "maxAttempts", 3) or 0
        if attempts < 1:
            raise TaskError(f"maxAttempts must be at least 1, but was {attempts}")
        delay = render_seconds(ctx, self.initialRetryDelay, "initialRetryDelay", 1.0) or 0.0
        if delay <= 0:
            raise TaskError("initialRetryDelay must be a positive duration")
        every = render_seconds(ctx, self.pollFrequency, "pollFrequency", 5.0) or 0.0
        if every <= 0:
            raise TaskError("pollFrequency must be a positive duration")
        pair = base64.b64encode(f"{key}:{secret}".encode()).decode()
        retry = Retry(
            interval=delay,
            max_interval=30.0,
            max_attempts=attempts,
            statuses=lambda code: code == 429 or 500 <= code <= 599,
            methods=frozenset({"GET", "HEAD"}),
        )
        path = f"/v2/connectors/{quote(connector, safe='')}"
        headers = {
            "Authorization": f"Basic {pair}",
            "Content-Type": "application/json",
            "Accept": "application/json;version=2",
        }
        async with ApiClient(
            ctx,
            "Fivetran",
            ctx.render_str(self.baseUrl) or FIVETRAN_URL,
            headers=headers,
            secrets=[secret, pair],
            options=self.options,
            retry=retry,
        ) as api:
            before = dig(await api.object("GET", path), "data") or {}
            answer = await api.call(
                "POST", f"{path}/sync", json={"force": render_bool(ctx, self.force, "force")}
            )
            ctx.log("INFO", f"Job status {answer.status} with response: {answer.text}")
            if not render_bool(ctx, self.wait, "wait", True):
                return {}
            previous = _fivetran_completed(before)
            last_error: list[TaskError] = []

            async def check() -> dict[str, Any] | None:
                try:
                    current = dig(await api.object("GET", path), "data") or {}
                except ApiError as exc:
                    if not (exc.status == 429 or exc.status >= 500):
                        raise
                    return self._transient(ctx, connector, exc, last_error)
                except TransportError as exc:
                    if not exc.transient:
                        raise
                    return self._transient(ctx, connector, exc, last_error)
                done = _fivetran_completed(current)
                if done is not None and (previous is None or done > previous):
                    return current
                return None

            limit = render_seconds(ctx, self.maxDuration, "maxDuration", 3600.0) or 0.0
            try:
                final = await poll(
                    ctx, check, interval=every, max_duration=limit, what="Fivetran sync"
                )
            except TaskError as exc:
                if not last_error or "Await failed" not in str(exc):
                    raise
                raise TaskError(
                    f"Connector '{connector}' did not complete within "
                    f"{render_str(ctx, self.maxDuration, 'maxDuration')}, last error while "
                    f"polling: {last_error[-1]}"
                ) from None
        if _fivetran_failed(final):
            raise TaskError(f"Connector '{connector}' failed: {final}")
        return {}

    @staticmethod
    def _transient(ctx: TaskContext, connector: str, exc: TaskError, last: list[TaskError]) -> None:
        last.append(exc)
        ctx.log(
            "WARN", f"Could not read connector '{connector}' status, retrying on next poll: {exc}"
        )
        return None


PLUGINS: list[type[TaskPlugin]] = [
    HightouchSync,
    AirbyteSync,
    AirbyteCheckStatus,
    AirbyteCloudSync,
    AirbyteCloudReset,
    FivetranSync,
]
