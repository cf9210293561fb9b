"""Kestra's GitHub types (kestra-io/plugin-github): issues, workflow dispatch, repository search.

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

- ``actions.RunWorkflow``: ``repository``, ``workflowId`` (file name or id), ``ref``, ``inputs``:
  GET the repository and the workflow (``/repos/{repository}/actions/workflows/{id}``), then
  POST ``.../dispatches`` ``{"ref", "inputs" (when some)}``. No outputs.
- ``repositories.Search``: ``query``, ``language``, ``created``, ``repository``, ``stars``,
  ``user``, ``topic``, ``visibility`` (PUBLIC/PRIVATE/INTERNAL), ``sort`` (UPDATED, STARS,
  FORKS; default UPDATED), ``order`` (ASC (default)/DESC), ``fetchType`` (STORE (default), FETCH,
  FETCH_ONE, NONE). GET ``/search/repositories`` with ``q`` = the terms joined by spaces
  (``is:public``, the query, ``language:``, ``created:``, ``repo:``, ``stars:``, ``user:``,
  ``topic:``, in the github-api library's order), following the ``Link: next`` pages. Each
  repository becomes Kestra's ``RepositoryDetails`` map (``name``, ``full_name``, ``url``,
  ``description``, ``owner``, ``forks_count``, ``stars_count``, ``pull_request_count``,
  ``issues_count``, ``updated``, ``created``, ``language``, ``archived``, ``fork``,
  ``disabled``, ``template``, ``default_branch``, ``visibility``); with a token, ``owner`` and
  the count of open pull requests (GET ``/repos/{full_name}/pulls?state=open``, all pages) are
  filled in, as the library does. Outputs: ``rows`` (FETCH), ``row`` (FETCH_ONE), ``uri`` (STORE:
  an ION file of the maps), ``size``.

What differs from Kestra: dates are the ISO texts GitHub sends (Kestra converts them to
``java.util.Date``).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from executors import ion
from executors.api_client import ApiClient, base_url, dig
from executors.base import TaskContext, TaskError, to_text
from executors.plugin import TaskPlugin, render_int, render_map, render_str, render_texts
from schemas.flow.common import IntOrExpr, Str

GITHUB_FIELDS_VERSION = "2026-03-10"
NODE_ID = re.compile(r"^[A-Za-z0-9_-]{21,}$")


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

    def client(self, ctx: TaskContext, anonymous: bool = False) -> ApiClient:
        url = ctx.render_str(self.endpoint) or base_url("github")
        headers = {"Accept": "application/vnd.github+json"}
        if anonymous:
            return ApiClient(ctx, "GitHub", url, headers=headers)
        header, token = self.token(ctx)
        headers["Authorization"] = header
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
            "labels": render_texts(ctx, self.labels, "labels"),
            "assignees": render_texts(ctx, self.assignees, "assignees"),
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


class GitHubRunWorkflow(_GitHub):
    """Dispatch a GitHub Actions workflow (workflow_dispatch)."""

    short: ClassVar[str | None] = "github_actions_runworkflow"
    type: Literal["io.kestra.plugin.github.actions.RunWorkflow"]
    workflowId: Str | None = None
    ref: Str | None = None
    inputs: dict[str, Any] | Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        repo = self.repo(ctx)
        workflow = render_str(ctx, self.workflowId, "workflowId", required=True)
        body: dict[str, Any] = {"ref": ctx.render_str(self.ref)}
        inputs = render_map(ctx, self.inputs, "inputs")
        if inputs:
            body["inputs"] = inputs
        async with self.client(ctx) as api:
            await api.object("GET", f"/repos/{repo}")
            found = await api.object("GET", f"/repos/{repo}/actions/workflows/{workflow}")
            await api.call(
                "POST",
                f"/repos/{repo}/actions/workflows/{found.get('id', workflow)}/dispatches",
                json=body,
            )
        return {}


_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


async def paged(
    api: ApiClient, path: str, params: dict[str, Any] | None, key: str | None
) -> list[Any]:
    """Every item of a paged GitHub listing, following the ``Link: rel="next"`` pages."""
    items: list[Any] = []
    url: str | None = path
    while url is not None:
        answer = await api.call("GET", url, params=params)
        page = answer.json()
        chunk = dig(page, key) if key else page
        if not isinstance(chunk, list):
            raise TaskError(
                f"GitHub: {answer.what} answered {to_text(page)[:200]}, expected a list"
            )
        items.extend(chunk)
        match = _NEXT.search(answer.headers.get("link", ""))
        url, params = (match.group(1), None) if match else (None, None)
    return items


SEARCH_SORTS = ("UPDATED", "STARS", "FORKS")


class GitHubRepositorySearch(_GitHub):
    """Search GitHub repositories."""

    short: ClassVar[str | None] = "github_repositories_search"
    type: Literal["io.kestra.plugin.github.repositories.Search"]
    query: Str | None = None
    language: Str | None = None
    created: Str | None = None
    stars: Str | None = None
    user: Str | None = None
    topic: Str | None = None
    order: Literal["ASC", "DESC"] | Str | None = "ASC"
    sort: Literal["UPDATED", "STARS", "FORKS"] | Str | None = "UPDATED"
    visibility: Literal["PUBLIC", "PRIVATE", "INTERNAL"] | Str | None = None
    fetchType: Literal["STORE", "FETCH", "FETCH_ONE", "NONE"] | Str | None = "STORE"

    def terms(self, ctx: TaskContext) -> str:
        terms: list[str] = []
        visibility = ctx.render_str(self.visibility)
        if visibility is not None:
            terms.append(f"is:{visibility.lower()}")
        query = ctx.render_str(self.query)
        if query is not None:
            terms.append(query)
        for qualifier, value in (
            ("language", self.language),
            ("created", self.created),
            ("repo", self.repository),
            ("stars", self.stars),
            ("user", self.user),
            ("topic", self.topic),
        ):
            rendered = ctx.render_str(value)
            if rendered is not None:
                terms.append(f"{qualifier}:{rendered}")
        return " ".join(terms)

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        sort = (ctx.render_str(self.sort) or "UPDATED").upper()
        order = (ctx.render_str(self.order) or "ASC").upper()
        if sort not in SEARCH_SORTS or order not in ("ASC", "DESC"):
            raise TaskError(f"properties 'sort'/'order': unknown value {sort!r}/{order!r}")
        params = {"q": self.terms(ctx), "sort": sort.lower(), "order": order.lower()}
        anonymous = not any(
            ctx.render_str(v) for v in (self.oauthToken, self.jwtToken, self.appInstallationToken)
        )
        async with self.client(ctx, anonymous=anonymous) as api:
            found = await paged(api, "/search/repositories", params, "items")
            rows = []
            for repo in found:
                pulls = 0
                if not anonymous:
                    name = repo.get("full_name")
                    pulls = len(await paged(api, f"/repos/{name}/pulls", {"state": "open"}, None))
                rows.append(repository_details(repo, anonymous, pulls))
        return await fetch_rows(ctx, rows, ctx.render_str(self.fetchType) or "STORE")


def repository_details(repo: dict[str, Any], anonymous: bool, pulls: int) -> dict[str, Any]:
    """Kestra's ``RepositoryDetails.toMap`` of a repository from the API."""
    return {
        "name": repo.get("name"),
        "full_name": repo.get("full_name"),
        "url": repo.get("html_url"),
        "description": repo.get("description"),
        "owner": None if anonymous else dig(repo, "owner", "login"),
        "forks_count": repo.get("forks_count") or 0,
        "stars_count": repo.get("stargazers_count") or 0,
        "pull_request_count": pulls,
        "issues_count": repo.get("open_issues_count") or 0,
        "updated": repo.get("updated_at"),
        "created": repo.get("created_at"),
        "language": repo.get("language"),
        "archived": bool(repo.get("archived")),
        "fork": bool(repo.get("fork")),
        "disabled": bool(repo.get("disabled")),
        "template": bool(repo.get("is_template")),
        "default_branch": repo.get("default_branch"),
        "visibility": to_text(repo.get("visibility") or "").upper() or None,
    }


async def fetch_rows(ctx: TaskContext, rows: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """Kestra's ``AbstractGithubSearchTask.handleFetch``."""
    kind = kind.upper()
    if kind == "FETCH":
        return {"rows": rows, "size": len(rows)}
    if kind == "FETCH_ONE":
        return {"row": rows[0] if rows else None, "size": 1 if rows else 0}
    if kind == "STORE":
        if ctx.storage is None:
            raise TaskError("GitHub: this worker has no internal storage for STORE")
        data = "".join(ion.dumps(row) + "\n" for row in rows).encode()
        return {"uri": await ctx.storage.put(ctx.execution_id, "rows.ion", data), "size": len(rows)}
    if kind == "NONE":
        return {"size": 0}
    raise TaskError(f"property 'fetchType': expected STORE, FETCH, FETCH_ONE or NONE, got {kind!r}")


PLUGINS: list[type[TaskPlugin]] = [
    GitHubIssueCreate,
    GitHubIssueComment,
    GitHubRunWorkflow,
    GitHubRepositorySearch,
]
