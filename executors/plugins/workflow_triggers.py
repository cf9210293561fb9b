"""Kestra's "start a workflow elsewhere" types: Airflow DAG runs (kestra-io/plugin-airflow), n8n
webhooks (kestra-io/plugin-n8n) and Jenkins jobs (kestra-io/plugin-jenkins). Calls go through
:class:`executors.api_client.ApiClient` with the ``options`` of Kestra's HTTP client (auth,
timeouts, proxy).

- ``airflow.dags.TriggerDagRun``: ``baseUrl``, ``dagId``, ``body`` (the DAG run request; by
  default ``{"conf": {"source": "kestra", "flow", "namespace", "task", "execution"}}``),
  ``headers``, ``options``, ``wait`` (false), ``pollFrequency`` (PT1S), ``maxDuration`` (PT60M).
  POST ``{baseUrl}/api/v1/dags/{dagId}/dagRuns``; any answer but 200 fails ("Failed to trigger
  DAG: ..."). With ``wait``, GET ``.../dagRuns/{dag_run_id}`` until the state is success or
  failed. Outputs ``dagId``, ``dagRunId``, ``state`` and, after waiting, ``started`` / ``ended``
  (local date-times, the offset dropped as Kestra's ``LocalDateTime`` does). A run that ends
  ``failed`` is reported in ``state``, not as a failure, as in Kestra.
- ``n8n.webhook.TriggerWorkflow`` (alias ``n8n.TriggerWorkflow``, its earlier name): ``uri``,
  ``method`` (GET/POST/PUT/DELETE/PATCH, required), ``body`` (JSON) or ``from`` (an
  internal-storage file sent as the body with ``contentType`` TEXT/JSON/XML/BINARY (default)),
  ``queryParameters``, ``headers``, ``authentication`` (``type`` BasicAuth with ``username`` +
  ``password``, HeaderAuth with ``name`` + ``value``, JWTAuth with ``jwt``), ``options``,
  ``wait`` (true). Any answer but 200 fails ("Received non-200 response from Webhook: N").
  Outputs ``statusCode`` and ``body`` (with ``wait``: a map when the answer is JSON, else its
  text; without: null).

- ``jenkins.JobBuild``: ``serverUrl``, ``jobName`` (``a/b`` is the job ``b`` of folder ``a``:
  ``job/a/job/b``), ``parameters`` (a form; a list value repeats its field), ``username`` +
  ``apiToken`` (Basic), ``options``. POST ``{serverUrl}/job/.../buildWithParameters``; a status
  of 400 or more fails ("Request failed 'N' and body '...'"). Output ``status``.
- ``jenkins.JobInfo``: ``jobName``, ``buildNumber``: GET ``.../job/.../{buildNumber}/api/json``;
  output ``info`` (the build's JSON).

What differs from Kestra: Airflow's default body is wrapped in ``conf`` (Airflow's DAG run
request refuses unknown top-level fields; Kestra sends them bare), ``headers`` are sent (Kestra
declares them and never sends them), and the default ``execution`` is this execution's id. n8n's
``from`` is sent with the real media type (Kestra writes the enum's name, e.g. ``BINARY``).
Jenkins job names are escaped as path segments (a space is ``%20``; Kestra form-encodes it as
``+``, which Jenkins reads as a plus sign).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlencode

from pydantic import Field

from executors.api_client import ApiClient, ApiTask, poll
from executors.base import TaskContext, TaskError, to_text
from executors.http_client import HttpOptions
from executors.plugin import (
    TaskPlugin,
    render_bool,
    render_int,
    render_map,
    render_seconds,
    render_str,
)
from schemas.flow.common import BoolOrExpr, Duration, IntOrExpr, Str

AIRFLOW_DAG_RUNS = "/api/v1/dags/{dag}/dagRuns"
N8N_CONTENT_TYPES = {
    "TEXT": "text/plain",
    "JSON": "application/json",
    "XML": "application/xml",
    "BINARY": "application/octet-stream",
}


def _local(value: Any) -> str | None:
    """An ISO date-time without its offset (Java's ``OffsetDateTime.toLocalDateTime``)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=None).isoformat()


class AirflowTriggerDagRun(ApiTask):
    """Trigger an Airflow DAG run (REST API v1) and optionally wait for it."""

    family: ClassVar[str] = "workflows"
    short: ClassVar[str | None] = "airflow_dags_triggerdagrun"

    type: Literal["io.kestra.plugin.airflow.dags.TriggerDagRun"]
    baseUrl: Str
    dagId: Str
    headers: dict[str, Any] | Str | None = None
    options: HttpOptions | None = None
    maxDuration: Duration | None = "PT60M"
    pollFrequency: Duration | None = "PT1S"
    wait: BoolOrExpr | None = False
    body: dict[str, Any] | Str | None = None

    def payload(self, ctx: TaskContext) -> dict[str, Any]:
        body = render_map(ctx, self.body, "body")
        if body:
            return body
        flow = ctx.variables.get("flow") or {}
        return {
            "conf": {
                "source": "kestra",
                "flow": flow.get("id"),
                "namespace": flow.get("namespace"),
                "task": ctx.task_id,
                "execution": ctx.execution_id,
            }
        }

    async def execute(self, ctx: TaskContext) -> dict[str, Any]:
        url = render_str(ctx, self.baseUrl, "baseUrl", required=True) or ""
        dag = render_str(ctx, self.dagId, "dagId", required=True) or ""
        headers = {str(k): to_text(v) for k, v in render_map(ctx, self.headers, "headers").items()}
        path = AIRFLOW_DAG_RUNS.format(dag=dag)
        body = self.payload(ctx)
        async with ApiClient(
            ctx, "Airflow", url, headers=headers, secrets=headers.values(), options=self.options
        ) as api:
            answer = await api.call("POST", path, json=body, allow=lambda code: True)
            if answer.status != 200:
                raise TaskError(f"Failed to trigger DAG: {api.mask(answer.text[:2000])}")
            run = answer.object()
            run_id = run.get("dag_run_id")
            out: dict[str, Any] = {"dagId": dag, "dagRunId": run_id, "state": run.get("state")}
            if not render_bool(ctx, self.wait, "wait", False):
                return out

            async def ended() -> dict[str, Any] | None:
                status = await api.call("GET", f"{path}/{run_id}", allow=lambda code: True)
                if status.status != 200:
                    raise TaskError(f"Failed to get DAG run status: {api.mask(status.text[:2000])}")
                state = status.object()
                return (
                    state if to_text(state.get("state")).lower() in ("success", "failed") else None
                )

            every = render_seconds(ctx, self.pollFrequency, "pollFrequency", 1.0) or 1.0
            limit = render_seconds(ctx, self.maxDuration, "maxDuration", 3600.0) or 0.0
            final = await poll(
                ctx, ended, interval=every, max_duration=limit, what="Airflow DAG run"
            )
        out.update(
            state=final.get("state"),
            started=_local(final.get("start_date")),
            ended=_local(final.get("end_date")),
        )
        return out


class N8nTriggerWorkflow(TaskPlugin):
    """Trigger an n8n workflow through its webhook."""

    family: ClassVar[str] = "workflows"
    short: ClassVar[str | None] = "n8n_webhook_triggerworkflow"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.n8n.TriggerWorkflow",)

    type: Literal["io.kestra.plugin.n8n.webhook.TriggerWorkflow"]
    uri: Str
    method: Literal["GET", "POST", "PUT", "DELETE", "PATCH"] | Str
    authentication: dict[str, Any] | Str | None = None
    options: HttpOptions | None = None
    contentType: Literal["TEXT", "JSON", "XML", "BINARY"] | Str | None = "BINARY"
    body: dict[str, Any] | Str | None = None
    queryParameters: dict[str, Any] | Str | None = None
    headers: dict[str, Any] | Str | None = None
    from_: Str | None = Field(default=None, alias="from")
    wait: BoolOrExpr | None = True

    def auth(self, ctx: TaskContext) -> tuple[dict[str, str], list[str]]:
        auth = render_map(ctx, self.authentication, "authentication")
        if not auth:
            return {}, []
        kind = to_text(auth.get("type"))
        if kind == "BasicAuth":
            user, password = to_text(auth.get("username")), to_text(auth.get("password"))
            pair = base64.b64encode(f"{user}:{password}".encode()).decode()
            return {"Authorization": f"Basic {pair}"}, [password, pair]
        if kind == "HeaderAuth":
            value = to_text(auth.get("value"))
            return {to_text(auth.get("name")): value}, [value]
        if kind == "JWTAuth":
            jwt = to_text(auth.get("jwt"))
            return {"Authorization": f"Bearer {jwt}"}, [jwt]
        raise TaskError(
            "property 'authentication.type': expected BasicAuth, HeaderAuth or JWTAuth, "
            f"got {kind!r}"
        )

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        uri = render_str(ctx, self.uri, "uri", required=True) or ""
        method = (render_str(ctx, self.method, "method", required=True) or "").upper()
        if method not in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            raise TaskError(
                f"property 'method': expected GET, POST, PUT, DELETE or PATCH, got {method!r}"
            )
        body = render_map(ctx, self.body, "body")
        source = ctx.render_str(self.from_)
        if source and body:
            raise TaskError("You cannot set both 'from' and 'body' properties at the same time")
        headers = {str(k): to_text(v) for k, v in render_map(ctx, self.headers, "headers").items()}
        auth, secrets = self.auth(ctx)
        headers.update(auth)
        params = {
            str(k): to_text(v)
            for k, v in render_map(ctx, self.queryParameters, "queryParameters").items()
        }
        kwargs: dict[str, Any] = {"params": params, "headers": headers}
        if body:
            kwargs["json"] = body
        elif source:
            if ctx.storage is None:
                raise TaskError(f"property 'from': cannot read {source}: no internal storage")
            kind = (ctx.render_str(self.contentType) or "BINARY").upper()
            if kind not in N8N_CONTENT_TYPES:
                raise TaskError(
                    f"property 'contentType': expected TEXT, JSON, XML or BINARY, got {kind!r}"
                )
            kwargs["content"] = await ctx.storage.read(source)
            headers["Content-Type"] = N8N_CONTENT_TYPES[kind]
        async with ApiClient(ctx, "n8n", uri, secrets=secrets, options=self.options) as api:
            answer = await api.call(method, uri, allow=lambda code: True, **kwargs)
        if answer.status != 200:
            raise TaskError(f"Received non-200 response from Webhook: {answer.status}")
        if not render_bool(ctx, self.wait, "wait", True):
            return {"statusCode": answer.status, "body": None}
        if "application/json" in answer.headers.get("content-type", ""):
            return {"statusCode": answer.status, "body": answer.json()}
        return {"statusCode": answer.status, "body": answer.text}


class _Jenkins(TaskPlugin):
    family: ClassVar[str] = "workflows"

    serverUrl: Str
    username: Str | None = None
    apiToken: Str | None = None
    options: HttpOptions | None = None
    jobName: Str

    def client(self, ctx: TaskContext) -> tuple[ApiClient, str]:
        url = render_str(ctx, self.serverUrl, "serverUrl", required=True) or ""
        user, token = ctx.render_str(self.username), ctx.render_str(self.apiToken)
        pair = base64.b64encode(f"{user or ''}:{token or ''}".encode()).decode()
        api = ApiClient(
            ctx,
            "Jenkins",
            url,
            headers={"Authorization": f"Basic {pair}"},
            secrets=[token, pair],
            options=self.options,
        )
        name = render_str(ctx, self.jobName, "jobName", required=True) or ""
        return api, "/" + "/".join(f"job/{quote(part, safe='')}" for part in name.split("/"))

    @staticmethod
    async def call(api: ApiClient, method: str, path: str, **kwargs: Any) -> Any:
        answer = await api.call(method, path, allow=lambda code: True, **kwargs)
        if answer.status >= 400:
            raise TaskError(
                f"Request failed '{answer.status}' and body '{api.mask(answer.text[:2000])}'"
            )
        return answer


class JenkinsJobBuild(_Jenkins):
    """Trigger a Jenkins job build with parameters."""

    short: ClassVar[str | None] = "jenkins_jobbuild"
    type: Literal["io.kestra.plugin.jenkins.JobBuild"]
    parameters: dict[str, Any] | Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        params = render_map(ctx, self.parameters, "parameters")
        form: list[tuple[str, str]] = []
        for key, value in params.items():
            values = value if isinstance(value, list) else [value]
            form.extend((str(key), to_text(v)) for v in values)
        api, job = self.client(ctx)
        async with api:
            answer = await self.call(
                api,
                "POST",
                f"{job}/buildWithParameters",
                content=urlencode(form).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        name = ctx.render_str(self.jobName)
        ctx.log("INFO", f"Triggered job '{name}' with status code: {answer.status}")
        return {"status": answer.status}


class JenkinsJobInfo(_Jenkins):
    """Read a Jenkins build's information."""

    short: ClassVar[str | None] = "jenkins_jobinfo"
    type: Literal["io.kestra.plugin.jenkins.JobInfo"]
    buildNumber: IntOrExpr

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        number = render_int(ctx, self.buildNumber, "buildNumber")
        api, job = self.client(ctx)
        async with api:
            answer = await self.call(api, "GET", f"{job}/{number}/api/json")
        return {"info": answer.json()}


PLUGINS: list[type[TaskPlugin]] = [
    AirflowTriggerDagRun,
    N8nTriggerWorkflow,
    JenkinsJobBuild,
    JenkinsJobInfo,
]
