"""Jira and GitHub issue types against a real local HTTP receiver playing each API: the exact
requests (method, path, auth, JSON body), the outputs, and the failures (the service's 4xx, no
credentials, a URL without scheme, custom fields that do not exist)."""

from __future__ import annotations

import base64
from typing import Any

from executors.base import TaskContext, TaskOutcome
from tests.unit.api_receiver import Request, run_plugin, serve

TOKEN = "ghp_T0P-secret"


async def run(task: dict[str, Any]) -> tuple[TaskOutcome, TaskContext]:
    task = {"id": "t", **task}
    return await run_plugin(task)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_jira_create_comment_update() -> None:
    with serve() as api:
        created = {"id": "10000", "key": "OPS-24", "self": api.url + "/rest/api/2/issue/10000"}
        api.on("POST", "/rest/api/2/issue/", (201, created))
        jira = {"baseUrl": api.url, "username": "me@x.io", "password": "api-TOKEN"}
        description = 'Flow "etl" failed\non {{ flow.id }}'
        outcome, _ = await run(
            {
                "type": "io.kestra.plugin.jira.issues.Create",
                **jira,
                "projectKey": "OPS",
                "summary": "[P1] Incident",
                "description": description,
                "labels": ["bug", "workflow"],
                "issueTypeId": "10001",
            }
        )
        assert outcome.state == "SUCCESS", outcome.error
        assert outcome.outputs == created
        request = api.last
        assert request.target == "POST /rest/api/2/issue/"
        assert request.headers["authorization"] == basic("me@x.io", "api-TOKEN")
        assert request.headers["content-type"] == "application/json"
        assert request.json == {
            "fields": {
                "project": {"key": "OPS"},
                "summary": "[P1] Incident",
                "description": 'Flow "etl" failed\non f',
                "issuetype": {"id": 10001},
                "labels": ["kestra-bot", "bug", "workflow"],
            }
        }
        api.on("POST", "/rest/api/2/issue/OPS-24/comment", (201, {"id": "1"}))
        bearer = {"baseUrl": api.url, "accessToken": "atl-T0KEN"}
        outcome, _ = await run(
            {
                "type": "io.kestra.plugin.jira.issues.CreateComment",
                **bearer,
                "issueIdOrKey": "OPS-24",
                "body": "Still failing",
            }
        )
        assert outcome.state == "SUCCESS", outcome.error
        assert api.last.headers["authorization"] == "Bearer atl-T0KEN"
        assert api.last.json == {"body": "Still failing"}
        api.on("PUT", "/rest/api/2/issue/OPS-24", (204, ""))
        outcome, _ = await run(
            {
                "type": "io.kestra.plugin.jira.issues.UpdateFields",
                **jira,
                "issueIdOrKey": "OPS-24",
                "fields": {"description": "new", "customfield_10005": 3},
            }
        )
        assert outcome.state == "SUCCESS", outcome.error
        assert api.last.json == {"fields": {"description": "new", "customfield_10005": "3"}}
        raw = '{"fields": {"project": {"key": "RAW"}}}'
        outcome, _ = await run(
            {
                "type": "io.kestra.plugin.jira.issues.Create",
                **jira,
                "projectKey": "X",
                "payload": raw,
            }
        )
        assert api.last.body.decode() == raw


async def test_jira_failures() -> None:
    with serve() as api:
        answer = {"errorMessages": [], "errors": {"project": "valid project is required"}}
        api.on("POST", "/rest/api/2/issue/", (400, answer))
        task = {
            "type": "io.kestra.plugin.jira.issues.Create",
            "baseUrl": api.url,
            "username": "me",
            "password": "api-TOKEN",
            "projectKey": "NOPE",
        }
        outcome, ctx = await run(task)
        assert outcome.error == (
            'Jira: POST /rest/api/2/issue/ failed with HTTP 400: {"errorMessages": [], "errors": '
            '{"project": "valid project is required"}}'
        )
        assert not any("api-TOKEN" in line.message for line in ctx.logs)
        outcome, _ = await run({k: v for k, v in task.items() if k != "password"})
        assert outcome.error == "Missing required authentication fields"
        outcome, _ = await run({**task, "baseUrl": "your-domain.atlassian.net"})
        assert outcome.error == (
            "property 'baseUrl': 'your-domain.atlassian.net' is not an http:// or https:// URL"
        )


REPO = {"full_name": "acme/app"}


async def test_github_issue_create_with_fields_and_comment() -> None:
    with serve() as api:
        api.on("GET", "/repos/acme/app", (200, REPO))
        issue = {"number": 7, "html_url": "https://github.com/acme/app/issues/7"}
        api.on("POST", "/repos/acme/app/issues", (201, issue))
        api.on("GET", "/orgs/acme/issues/field-definitions", (404, {"message": "Not Found"}))
        nodes = {
            "data": {"organization": {"issueTypes": {"nodes": [{"id": "IT_1", "name": "Stage"}]}}}
        }
        api.on("POST", "/graphql", (200, nodes))
        api.on("PUT", "/repos/acme/app/issues/7/field-values", (200, {}))
        node = "PVTF_lADOBnPqGs4AAbcdefghij"
        outcome, _ = await run(
            {
                "type": "io.kestra.plugin.github.issues.Create",
                "jwtToken": TOKEN,
                "endpoint": api.url,
                "repository": "acme/app",
                "title": "Workflow failed",
                "body": "{{ flow.id }} failed",
                "labels": ["bug"],
                "fields": {"Stage": "In review", node: "x"},
            }
        )
        assert outcome.state == "SUCCESS", outcome.error
        assert outcome.outputs == {"issueUrl": issue["html_url"], "issueNumber": 7}
        targets = [r.target for r in api.requests]
        assert targets == [
            "GET /repos/acme/app",
            "POST /repos/acme/app/issues",
            "GET /orgs/acme/issues/field-definitions",
            "POST /graphql",
            "PUT /repos/acme/app/issues/7/field-values",
        ]
        assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in api.requests)
        assert api.requests[1].json == {
            "title": "Workflow failed",
            "body": "f failed",
            "labels": ["bug"],
            "assignees": [],
        }
        assert api.requests[3].json["variables"] == {"org": "acme"}
        put: Request = api.last
        assert put.headers["x-github-api-version"] == "2026-03-10"
        assert put.json == {"field_values": {"IT_1": "In review", node: "x"}}

        api.on("GET", "/orgs/acme/issues/field-definitions", (200, [{"id": "F1", "name": "Other"}]))
        outcome, _ = await run(
            {
                "type": "io.kestra.plugin.github.issues.Create",
                "oauthToken": TOKEN,
                "endpoint": api.url,
                "repository": "acme/app",
                "title": "t",
                "fields": {"Stage": "x"},
            }
        )
        assert outcome.error == (
            "Unknown field name 'Stage' in organization 'acme'. Available fields: [Other]."
        )
        assert api.last.headers["authorization"] == f"token {TOKEN}"

        api.on("GET", "/repos/acme/app/issues/7", (200, issue))
        comment = {"html_url": issue["html_url"] + "#issuecomment-1"}
        api.on("POST", "/repos/acme/app/issues/7/comments", (201, comment))
        outcome, _ = await run(
            {
                "type": "io.kestra.plugin.github.issues.Comment",
                "oauthToken": TOKEN,
                "endpoint": api.url,
                "repository": "acme/app",
                "issueNumber": 7,
                "body": "again",
            }
        )
        assert outcome.outputs == {"issueUrl": issue["html_url"], "commentUrl": comment["html_url"]}
        assert api.last.json == {"body": "again"}


async def test_github_failures() -> None:
    with serve() as api:
        api.on("GET", "/repos/acme/gone", (404, {"message": "Not Found"}))
        task = {
            "type": "io.kestra.plugin.github.issues.Create",
            "oauthToken": TOKEN,
            "endpoint": api.url,
            "repository": "acme/gone",
            "title": "t",
        }
        outcome, ctx = await run(task)
        assert (
            outcome.error
            == 'GitHub: GET /repos/acme/gone failed with HTTP 404: {"message": "Not Found"}'
        )
        assert not any(TOKEN in line.message for line in ctx.logs)
        outcome, _ = await run({k: v for k, v in task.items() if k != "oauthToken"})
        assert outcome.error == (
            "No GitHub token configured: set oauthToken, appInstallationToken, or jwtToken"
        )
        outcome, _ = await run({**task, "repository": "just-a-name"})
        assert outcome.error == "property 'repository': expected owner/name, got 'just-a-name'"


async def test_gitlab_issue_create_and_search() -> None:
    with serve() as api:
        created = {"id": 93, "iid": 4, "web_url": "https://gitlab.com/acme/app/-/issues/4"}
        api.on("POST", "/api/v4/projects/acme%2Fapp/issues", (201, created))
        task = {
            "type": "io.kestra.plugin.gitlab.issues.Create",
            "url": api.url,
            "token": "glpat-SECRET",
            "projectId": "acme/app",
            "title": "[Incident] {{ flow.id }}",
            "issueDescription": "The job failed.\nSee `logs`.",
            "labels": ["incident"],
        }
        outcome, ctx = await run(task)
        assert outcome.state == "SUCCESS", outcome.error
        assert outcome.outputs == {"issueId": "93", "webUrl": created["web_url"], "statusCode": 201}
        assert api.last.headers["private-token"] == "glpat-SECRET"
        assert api.last.json == {
            "title": "[Incident] f",
            "description": "The job failed.\nSee `logs`.",
            "labels": ["incident"],
        }
        issues = [{"iid": 1, "title": "old"}, {"iid": 2, "title": "older"}]
        api.on("GET", "/api/v4/projects/42/issues", (200, issues))
        search = {
            "type": "io.kestra.plugin.gitlab.issues.Search",
            "url": api.url,
            "token": "glpat-SECRET",
            "projectId": 42,
            "search": "flaky test",
            "labels": ["bug", "ci"],
        }
        outcome, _ = await run(search)
        assert outcome.outputs == {"issues": issues, "count": 2, "statusCode": 200}
        assert api.last.query == {
            "search": ["flaky test"],
            "state": ["opened"],
            "labels": ["bug,ci"],
        }
        api.on("GET", "/api/v4/projects/42/issues", (401, {"message": "401 Unauthorized"}))
        outcome, ctx = await run(search)
        assert outcome.error == (
            "GitLab: GET /api/v4/projects/42/issues failed with HTTP 401: "
            '{"message": "401 Unauthorized"}'
        )
        assert not any("glpat-SECRET" in line.message for line in ctx.logs)
