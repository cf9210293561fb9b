"""Kestra's Jira types (kestra-io/plugin-jira); GitHub's are in :mod:`executors.plugins.github`.

Each is one or two calls through :class:`executors.api_client.ApiClient` (a refused call fails
the task with the service's answer; credentials are masked everywhere).

Jira (``issues.Create``, ``issues.CreateComment``, ``issues.UpdateFields``): ``baseUrl`` (the
site, ``https://your-domain.atlassian.net``), ``username`` + ``password`` (an API token: Basic)
or else ``accessToken`` (Bearer; neither: "Missing required authentication fields"),
``payload`` (when set and not blank, sent as written instead of the built body), ``options``.

- ``Create``: ``projectKey``, ``summary``, ``description``, ``labels``, ``issueTypeId`` -> POST
  ``/rest/api/2/issue/`` with Kestra's ``jira-template.peb`` as data: ``{"fields": {"project":
  {"key"}, "summary", "description", "issuetype": {"id"} (only with issueTypeId; a number when it
  is one), "labels": ["kestra-bot", ...labels]}}``.
- ``CreateComment``: ``issueIdOrKey``, ``body`` -> POST ``/rest/api/2/issue/{key}/comment``
  ``{"body"}``.
- ``UpdateFields``: ``issueIdOrKey``, ``fields`` (each value sent as text, as the template does)
  -> PUT ``/rest/api/2/issue/{key}`` ``{"fields": {...}}``.

What differs from Kestra: Jira's bodies are built as JSON data, so a description with quotes or
new lines stays valid (Kestra renders a Pebble template without escaping, and Jira then refuses
such a body); Jira's ``Create`` also outputs the created issue's ``id``, ``key`` and ``self``
(Kestra has no outputs; blueprints read ``outputs.<task>.key``); ``UpdateFields`` uses PUT, the
method Jira's edit API answers to (Kestra POSTs, which Jira refuses). A ``baseUrl`` without a
scheme fails naming the property.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar, Literal

from pydantic import Field

from executors.api_client import ApiClient
from executors.base import TaskContext, TaskError, to_text
from executors.http_client import HttpOptions
from executors.plugin import TaskPlugin, render_map, render_str
from executors.plugins.ai_chat import render_json
from schemas.flow.common import Str

JIRA_ISSUE = "/rest/api/2/issue/"


def _texts(ctx: TaskContext, value: Any, name: str) -> list[str]:
    rendered = render_json(ctx, value, name)
    if rendered is None:
        return []
    return [to_text(v) for v in (rendered if isinstance(rendered, list) else [rendered])]


class _Jira(TaskPlugin):
    family: ClassVar[str] = "issues"

    baseUrl: Str
    username: Str | None = None
    password: Str | None = None
    accessToken: Str | None = None
    payload: Str | None = None
    options: HttpOptions | None = None
    projectKey: Str | None = None
    # ``summary`` is TaskPlugin's class method: the property is held under another name.
    summary_: Str | None = Field(default=None, alias="summary")
    description: Str | None = None
    labels: list[Str] | Str | None = None
    issueTypeId: Str | int | None = None

    def client(self, ctx: TaskContext) -> ApiClient:
        url = render_str(ctx, self.baseUrl, "baseUrl", required=True) or ""
        if not url.startswith(("http://", "https://")):
            raise TaskError(f"property 'baseUrl': {url!r} is not an http:// or https:// URL")
        user, password = ctx.render_str(self.username), ctx.render_str(self.password)
        token = ctx.render_str(self.accessToken)
        if user is not None and password is not None:
            pair = base64.b64encode(f"{user}:{password}".encode()).decode()
            auth, secrets = f"Basic {pair}", [password, pair]
        elif token is not None:
            auth, secrets = f"Bearer {token}", [token]
        else:
            raise TaskError("Missing required authentication fields")
        return ApiClient(
            ctx, "Jira", url, headers={"Authorization": auth}, secrets=secrets, options=self.options
        )

    async def send(self, ctx: TaskContext, method: str, path: str, body: Any) -> dict[str, Any]:
        given = ctx.render_str(self.payload)
        raw = given.encode() if given is not None and given.strip() else None
        async with self.client(ctx) as api:
            answer = await api.call(method, path, json=None if raw else body, content=raw)
        ctx.log("DEBUG", f"Response status: {answer.status}")
        parsed = answer.json() if answer.text.strip() else None
        return parsed if isinstance(parsed, dict) else {}


class JiraCreate(_Jira):
    """Create a Jira issue (project, summary, description, labels, issue type)."""

    short: ClassVar[str | None] = "jira_issues_create"
    type: Literal["io.kestra.plugin.jira.issues.Create"]

    def body(self, ctx: TaskContext) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "project": {"key": render_str(ctx, self.projectKey, "projectKey", required=True)},
            "summary": ctx.render_str(self.summary_) or "",
            "description": ctx.render_str(self.description) or "",
        }
        issue_type = ctx.render_str(self.issueTypeId)
        if issue_type is not None:
            fields["issuetype"] = {"id": int(issue_type) if issue_type.isdigit() else issue_type}
        fields["labels"] = ["kestra-bot", *_texts(ctx, self.labels, "labels")]
        return {"fields": fields}

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        answer = await self.send(ctx, "POST", JIRA_ISSUE, self.body(ctx))
        return {k: answer.get(k) for k in ("id", "key", "self")}


class JiraCreateComment(_Jira):
    """Add a comment to a Jira issue."""

    short: ClassVar[str | None] = "jira_issues_createcomment"
    type: Literal["io.kestra.plugin.jira.issues.CreateComment"]
    issueIdOrKey: Str
    body: Str

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        key = render_str(ctx, self.issueIdOrKey, "issueIdOrKey", required=True)
        body = {"body": render_str(ctx, self.body, "body", required=True)}
        await self.send(ctx, "POST", f"{JIRA_ISSUE}{key}/comment", body)
        return {}


class JiraUpdateFields(_Jira):
    """Update fields of a Jira issue."""

    short: ClassVar[str | None] = "jira_issues_updatefields"
    type: Literal["io.kestra.plugin.jira.issues.UpdateFields"]
    issueIdOrKey: Str
    fields: dict[str, Any] | Str

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        key = render_str(ctx, self.issueIdOrKey, "issueIdOrKey", required=True)
        fields = render_map(ctx, self.fields, "fields")
        body = {"fields": {str(k): to_text(v) for k, v in fields.items()}}
        await self.send(ctx, "PUT", f"{JIRA_ISSUE}{key}", body)
        return {}


PLUGINS: list[type[TaskPlugin]] = [JiraCreate, JiraCreateComment, JiraUpdateFields]
