"""Kestra's Jira and GitLab issue types (kestra-io/plugin-jira, plugin-gitlab); GitHub's are in
:mod:`executors.plugins.github`.

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

GitLab (``issues.Create``, ``issues.Search``): ``url`` (https://gitlab.com), ``token`` (header
``PRIVATE-TOKEN``), ``projectId``, ``apiPath`` (/api/v4/projects).

- ``issues.Create``: ``title``, ``issueDescription``, ``labels`` -> POST
  ``{url}{apiPath}/{projectId}/issues`` ``{"title", "description", "labels"}``. Outputs
  ``issueId``, ``webUrl``, ``statusCode``.
- ``issues.Search``: ``search``, ``state`` (opened), ``labels`` (comma-joined) -> GET
  ``.../issues?search=&state=&labels=``. Outputs ``issues``, ``count``, ``statusCode``.

What differs from Kestra: a GitLab ``projectId`` that is a path (``group/project``) has its
slashes escaped, as GitLab's API requires (Kestra sends it as written). Jira's bodies are built
as JSON data, so a description with quotes or new lines stays valid (Kestra renders a Pebble
template without escaping, and Jira then refuses such a body); Jira's ``Create`` also outputs
the created issue's ``id``, ``key`` and ``self`` (Kestra has no outputs; blueprints read
``outputs.<task>.key``); ``UpdateFields`` uses PUT, the method Jira's edit API answers to
(Kestra POSTs, which Jira refuses). A ``baseUrl`` without a scheme fails naming the property.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import Field

from executors.api_client import ApiClient
from executors.base import TaskContext, TaskError, to_text
from executors.http_client import HttpOptions
from executors.plugin import TaskPlugin, render_map, render_str, render_texts
from schemas.flow.common import Str

JIRA_ISSUE = "/rest/api/2/issue/"


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
        fields["labels"] = ["kestra-bot", *render_texts(ctx, self.labels, "labels")]
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


class _GitLab(TaskPlugin):
    family: ClassVar[str] = "issues"

    url: Str | None = "https://gitlab.com"
    token: Str
    projectId: Str | int
    apiPath: Str | None = "/api/v4/projects"

    def client(self, ctx: TaskContext) -> tuple[ApiClient, str]:
        token = render_str(ctx, self.token, "token", required=True) or ""
        url = ctx.render_str(self.url) or "https://gitlab.com"
        project = render_str(ctx, self.projectId, "projectId", required=True) or ""
        path = f"{ctx.render_str(self.apiPath) or '/api/v4/projects'}/{quote(project, safe='')}"
        api = ApiClient(ctx, "GitLab", url, headers={"PRIVATE-TOKEN": token}, secrets=[token])
        return api, f"{path}/issues"


class GitLabIssueCreate(_GitLab):
    """Create a GitLab issue."""

    short: ClassVar[str | None] = "gitlab_issues_create"
    type: Literal["io.kestra.plugin.gitlab.issues.Create"]
    title: Str
    issueDescription: Str | None = None
    labels: list[Str] | Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        body: dict[str, Any] = {"title": render_str(ctx, self.title, "title", required=True)}
        if self.issueDescription is not None:
            body["description"] = ctx.render_str(self.issueDescription)
        if self.labels is not None:
            body["labels"] = render_texts(ctx, self.labels, "labels")
        api, path = self.client(ctx)
        async with api:
            answer = await api.call("POST", path, json=body)
        issue = answer.object()
        return {
            "issueId": to_text(issue.get("id")),
            "webUrl": to_text(issue.get("web_url")),
            "statusCode": answer.status,
        }


class GitLabIssueSearch(_GitLab):
    """Search the issues of a GitLab project."""

    short: ClassVar[str | None] = "gitlab_issues_search"
    type: Literal["io.kestra.plugin.gitlab.issues.Search"]
    search: Str | None = None
    state: Str | None = "opened"
    labels: list[Str] | Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.search is not None:
            params["search"] = ctx.render_str(self.search)
        params["state"] = ctx.render_str(self.state) or "opened"
        if self.labels is not None:
            params["labels"] = ",".join(render_texts(ctx, self.labels, "labels"))
        api, path = self.client(ctx)
        async with api:
            answer = await api.call("GET", path, params=params)
        issues = answer.json()
        if not isinstance(issues, list):
            raise TaskError(f"GitLab: {answer.what} answered {answer.text[:200]}, expected a list")
        return {"issues": issues, "count": len(issues), "statusCode": answer.status}


PLUGINS: list[type[TaskPlugin]] = [
    JiraCreate,
    JiraCreateComment,
    JiraUpdateFields,
    GitLabIssueCreate,
    GitLabIssueSearch,
]
