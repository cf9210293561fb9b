"""Kestra's issue-tracker types: Jira (kestra-io/plugin-jira) and GitHub (plugin-github).

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

GitHub (``issues.Create``, ``issues.Comment``): ``oauthToken`` (``token`` auth), ``jwtToken``
(Bearer) or ``appInstallationToken`` (``token``; the later one of these wins, as GitHubBuilder
applies them in this order), ``login``, ``endpoint`` (https://api.github.com), ``repository``
(``owner/name``). Like the github-api library, the repository is read first (GET
``/repos/{repository}``: a missing one fails there).

- ``issues.Create``: ``title``, ``body``, ``labels``, ``assignees`` -> POST
  ``/repos/{repository}/issues``; outputs ``issueUrl`` (html_url), ``issueNumber``. ``fields``
  (custom field values, organization repositories): names are resolved to node ids by GET
  ``/orgs/{org}/issues/field-definitions`` (a 404 falls back to the GraphQL ``issueTypes``
  query), then PUT ``/repos/{repository}/issues/{number}/field-values`` ``{"field_values"}``
  with ``X-GitHub-Api-Version: 2026-03-10``; a key of more than 20 ``[A-Za-z0-9_-]`` characters
  is taken as a node id.
- ``issues.Comment``: ``issueNumber``, ``body`` -> GET the issue, POST
  ``/repos/{repository}/issues/{n}/comments``; outputs ``issueUrl``, ``commentUrl``.

What differs from Kestra: Jira's bodies are built as JSON data, so a description with quotes or
new lines stays valid (Kestra renders a Pebble template without escaping, and Jira then refuses
such a body); Jira's ``Create`` also outputs the created issue's ``id``, ``key`` and ``self``
(Kestra has no outputs; blueprints read ``outputs.<task>.key``); ``UpdateFields`` uses PUT, the
method Jira's edit API answers to (Kestra POSTs, which Jira refuses). A ``baseUrl`` without a
scheme fails naming the property.
"""

from __future__ import annotations

import base64
import re
from typing import Any, ClassVar, Literal

from pydantic import Field

from executors.api_client import ApiClient, base_url, dig
from executors.base import TaskContext, TaskError, to_text
from executors.http_client import HttpOptions
from executors.plugin import TaskPlugin, render_int, render_map, render_str
from executors.plugins.ai_chat import render_json
from schemas.flow.common import IntOrExpr, Str

JIRA_ISSUE = "/rest/api/2/issue/"
GITHUB_FIELDS_VERSION = "2026-03-10"
NODE_ID = re.compile(r"^[A-Za-z0-9_-]{21,}$")


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


# --------------------------------------------------------------------------------------------
# GitHub


class _GitHub(TaskPlugin):
    family: ClassVar[str] = "issues"

    login: Str | None = None
    oauthToken: Str | None = None
    jwtToken: Str | None = None
    appInstallationToken: Str | None = None
    endpoint: Str | None = None
    repository: Str | None = None

    def token(self, ctx: TaskContext) -> tuple[str, str]:
        """(Authorization header, the raw token) as GitHubBuilder sets them."""
        auth: tuple[str, str] | None = None
        for value, scheme in (
            (self.oauthToken, "token"),
            (self.jwtToken, "Bearer"),
            (self.appInstallationToken, "token"),
        ):
            rendered = ctx.render_str(value)
            if rendered:
                auth = (f"{scheme} {rendered}", rendered)
        if auth is None:
            raise TaskError(
                "No GitHub token configured: set oauthToken, appInstallationToken, or jwtToken"
            )
        return auth

    def client(self, ctx: TaskContext) -> ApiClient:
        header, token = self.token(ctx)
        url = ctx.render_str(self.endpoint) or base_url("github")
        headers = {"Authorization": header, "Accept": "application/vnd.github+json"}
        return ApiClient(ctx, "GitHub", url, headers=headers, secrets=[token])

    def repo(self, ctx: TaskContext) -> str:
        name = render_str(ctx, self.repository, "repository", required=True) or ""
        if name.count("/") != 1:
            raise TaskError(f"property 'repository': expected owner/name, got {name!r}")
        return name


class GitHubIssueCreate(_GitHub):
    """Create a GitHub issue (title, body, labels, assignees, custom fields)."""

    short: ClassVar[str | None] = "github_issues_create"
    type: Literal["io.kestra.plugin.github.issues.Create"]
    title: Str | None = None
    body: Str | None = None
    labels: list[Str] | Str | None = None
    assignees: list[Str] | Str | None = None
    fields: dict[str, Any] | Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        repo = self.repo(ctx)
        body = {
            "title": ctx.render_str(self.title),
            "body": ctx.render_str(self.body),
            "labels": _texts(ctx, self.labels, "labels"),
            "assignees": _texts(ctx, self.assignees, "assignees"),
        }
        fields = render_map(ctx, self.fields, "fields")
        async with self.client(ctx) as api:
            await api.object("GET", f"/repos/{repo}")
            issue = await api.object("POST", f"/repos/{repo}/issues", json=body)
            if fields:
                await self._set_fields(ctx, api, repo, issue, fields)
        return {"issueUrl": issue.get("html_url"), "issueNumber": issue.get("number")}

    async def _set_fields(
        self,
        ctx: TaskContext,
        api: ApiClient,
        repo: str,
        issue: dict[str, Any],
        fields: dict[str, Any],
    ) -> None:
        org = repo.split("/")[0]
        version = {"X-GitHub-Api-Version": GITHUB_FIELDS_VERSION}
        if any(not NODE_ID.match(key) for key in fields):
            known = await self._definitions(api, org, version)
            resolved: dict[str, Any] = {}
            for key, value in fields.items():
                if NODE_ID.match(key):
                    resolved[key] = value
                elif key in known:
                    resolved[known[key]] = value
                else:
                    raise TaskError(
                        f"Unknown field name '{key}' in organization '{org}'. Available fields: "
                        f"[{', '.join(known)}]."
                    )
            fields = resolved
        answer = await api.call(
            "PUT",
            f"/repos/{repo}/issues/{issue.get('number')}/field-values",
            json={"field_values": fields},
            headers=version,
            allow=lambda code: True,
        )
        if not 200 <= answer.status < 300:
            ctx.log(
                "ERROR",
                f"Failed to set field values on issue {issue.get('html_url')} "
                f"(HTTP {answer.status}): {answer.text[:500]}",
            )
            raise TaskError(
                f"Failed to set field values on issue {issue.get('html_url')} "
                f"(HTTP {answer.status}): {answer.text[:500]}"
            )

    @staticmethod
    async def _definitions(api: ApiClient, org: str, version: dict[str, str]) -> dict[str, str]:
        answer = await api.call(
            "GET", f"/orgs/{org}/issues/field-definitions", headers=version, allow=lambda c: True
        )
        if answer.status == 200:
            parsed = answer.json()
            items = parsed if isinstance(parsed, list) else dig(parsed, "field_definitions")
        elif answer.status == 404:
            query = (
                "query($org: String!) { organization(login: $org) { issueTypes { nodes { id name "
                "} } } }"
            )
            graph = await api.call(
                "POST",
                "/graphql",
                json={"query": query, "variables": {"org": org}},
                allow=lambda c: True,
            )
            if graph.status != 200:
                raise TaskError(
                    f"GraphQL endpoint returned HTTP {graph.status}: {graph.text[:500]}"
                )
            items = dig(graph.json(), "data", "organization", "issueTypes", "nodes")
        else:
            raise TaskError(
                f"Cannot resolve field name: field definitions endpoint returned HTTP "
                f"{answer.status} for organization '{org}'. Use the field node ID directly "
                "(e.g. PVTF_…)."
            )
        known = {
            to_text(item["name"]): to_text(item["id"])
            for item in items or []
            if isinstance(item, dict) and item.get("name") and item.get("id")
        }
        if not known and answer.status == 404:
            raise TaskError(
                f"Cannot resolve field name: field definitions are not available for "
                f"organization '{org}'. Use the field node ID directly (e.g. PVTF_…)."
            )
        return known


class GitHubIssueComment(_GitHub):
    """Comment on a GitHub issue."""

    short: ClassVar[str | None] = "github_issues_comment"
    type: Literal["io.kestra.plugin.github.issues.Comment"]
    issueNumber: IntOrExpr
    body: Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        repo = self.repo(ctx)
        number = render_int(ctx, self.issueNumber, "issueNumber")
        async with self.client(ctx) as api:
            await api.object("GET", f"/repos/{repo}")
            issue = await api.object("GET", f"/repos/{repo}/issues/{number}")
            comment = await api.object(
                "POST",
                f"/repos/{repo}/issues/{number}/comments",
                json={"body": ctx.render_str(self.body)},
            )
        return {"issueUrl": issue.get("html_url"), "commentUrl": comment.get("html_url")}


PLUGINS: list[type[TaskPlugin]] = [
    JiraCreate,
    JiraCreateComment,
    JiraUpdateFields,
    GitHubIssueCreate,
    GitHubIssueComment,
]
