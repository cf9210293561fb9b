"""Linear, Zendesk and HubSpot ticket types against a real local HTTP receiver playing each API:
the exact requests, the outputs, and the failures."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.stores.storage import LocalStorage
from executors import ion
from executors.api_client import BASE_URLS
from executors.base import TaskContext, TaskOutcome
from tests.unit.api_receiver import Receiver, Request, run_plugin, serve


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with serve() as receiver:
        monkeypatch.setitem(BASE_URLS, "linear", receiver.url)
        monkeypatch.setitem(BASE_URLS, "hubspot", receiver.url)
        yield receiver


async def run(
    task: dict[str, Any], tmp_path: Path | None = None
) -> tuple[TaskOutcome, TaskContext]:
    return await run_plugin({"id": "t", **task}, storage_dir=tmp_path)


def linear(request: Request) -> tuple[int, Any]:
    query = request.json["query"]
    if "teams" in query:
        return 200, {"data": {"teams": {"nodes": [{"id": "T1", "name": "Platform"}]}}}
    if "issueLabels" in query:
        labels = [{"id": "L1", "name": "Bug"}, {"id": "L2", "name": "Other"}]
        return 200, {"data": {"issueLabels": {"nodes": labels}}}
    return 200, {"data": {"issueCreate": {"success": True, "issue": {"id": "ISS-1"}}}}


LINEAR = {
    "type": "io.kestra.plugin.linear.issues.Create",
    "token": "lin_api_SECRET",
    "team": "platform",
    "title": "Workflow failed",
    "description": "{{ flow.id }} failed",
    "labels": ["Bug", "Missing"],
}


async def test_linear_issue_create(api: Receiver) -> None:
    api.on("POST", "/graphql", linear)
    outcome, ctx = await run(LINEAR)
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"isSuccess": True, "issueId": "ISS-1"}
    assert all(r.headers["authorization"] == "lin_api_SECRET" for r in api.requests)
    teams, labels, create = api.requests
    assert teams.json == {"query": "query { teams { nodes { id name } } }"}
    assert labels.json == {"query": "query { issueLabels { nodes { id name } } }"}
    assert create.json == {
        "query": "mutation ($input: IssueCreateInput!) { issueCreate(input: $input) { success "
        "issue { id } } }",
        "variables": {
            "input": {
                "teamId": "T1",
                "title": "Workflow failed",
                "description": "f failed",
                "labelIds": ["L1"],
            }
        },
    }
    assert "Issue created with ID: ISS-1" in [line.message for line in ctx.logs]
    outcome, _ = await run({**LINEAR, "team": "Nope"})
    assert outcome.error == "Linear: no team named 'Nope'"
    api.on("POST", "/graphql", (200, {"errors": [{"message": "Authentication required"}]}))
    outcome, _ = await run(LINEAR)
    assert outcome.error == (
        "Linear: the API answered errors: [{'message': 'Authentication required'}]"
    )


async def test_zendesk_ticket_create() -> None:
    with serve() as api:
        answer = {"ticket": {"id": 35436, "url": "https://x.zendesk.com/api/v2/tickets/35436.json"}}
        api.on("POST", "/api/v2/tickets.json", (201, answer))
        task = {
            "type": "io.kestra.plugin.zendesk.tickets.Create",
            "domain": api.url + "/",
            "username": "me@x.io",
            "token": "zd-SECRET",
            "subject": "Workflow failed",
            "description": "{{ flow.id }} failed",
            "priority": "NORMAL",
            "ticketType": "INCIDENT",
            "assigneeId": 1,
            "tags": ["bug"],
        }
        outcome, _ = await run(task)
        assert outcome.state == "SUCCESS", outcome.error
        assert outcome.outputs == {"id": 35436, "url": answer["ticket"]["url"]}
        pair = base64.b64encode(b"me@x.io/token:zd-SECRET").decode()
        assert api.last.headers["authorization"] == f"Basic {pair}"
        assert api.last.headers["content-type"] == "application/json; charset=UTF-8"
        assert api.last.json == {
            "ticket": {
                "subject": "Workflow failed",
                "description": "f failed",
                "priority": "normal",
                "type": "incident",
                "assignee_id": 1,
                "tags": ["bug"],
            }
        }
        api.on("POST", "/api/v2/tickets.json", (200, {"ticket": {"id": 1}}))
        outcome, _ = await run({**task, "token": None, "oauthToken": "oa-SECRET"})
        assert outcome.error == 'Failed to create ticket. Response: {"ticket": {"id": 1}}'
        assert api.last.headers["authorization"] == "Bearer oa-SECRET"
        outcome, _ = await run({**task, "priority": "ASAP"})
        assert outcome.error == (
            "property 'priority': expected one of URGENT, HIGH, NORMAL, LOW, got 'ASAP'"
        )


async def test_hubspot_ticket_create(api: Receiver, tmp_path: Path) -> None:
    created = {"id": "512", "properties": {"subject": "Workflow failed", "hs_pipeline_stage": "3"}}
    api.on("POST", "/crm/v3/objects/tickets", (201, created))
    task = {
        "type": "io.kestra.plugin.hubspot.tickets.Create",
        "apiKey": "pat-SECRET",
        "subject": "Workflow failed",
        "content": "{{ flow.id }} failed",
        "stage": 3,
        "priority": "HIGH",
        "additionalProperties": {"source_type": "EMAIL"},
    }
    outcome, _ = await run(task, tmp_path)
    assert outcome.state == "SUCCESS", outcome.error
    assert api.last.headers["authorization"] == "Bearer pat-SECRET"
    assert api.last.json == {
        "properties": {
            "subject": "Workflow failed",
            "content": "f failed",
            "hs_pipeline_stage": 3,
            "hs_ticket_priority": "HIGH",
            "source_type": "EMAIL",
        }
    }
    assert outcome.outputs["id"] == 512
    stored = LocalStorage(tmp_path / "storage").read_sync(outcome.outputs["uri"])
    assert ion.loads(stored.decode()) == [created["properties"]]
    error = {
        "status": "error",
        "message": "Property values were not valid",
        "errors": [{"message": 'Property \\"hs_pipeline_stage\\" is invalid', "code": "INVALID"}],
    }
    api.on("POST", "/crm/v3/objects/tickets", (400, error))
    outcome, _ = await run(task, tmp_path)
    assert outcome.error == 'HubSpot API error: Property "hs_pipeline_stage" is invalid'


async def test_hubspot_search_pages(api: Receiver, tmp_path: Path) -> None:
    def search(request: Request) -> tuple[int, Any]:
        if request.json.get("after") == "10":
            return 200, {"results": [{"id": "3", "properties": {"name": "C"}}]}
        results = [
            {"id": "1", "properties": {"name": "A"}},
            {"id": "2", "properties": {"name": "B"}},
        ]
        return 200, {"results": results, "paging": {"next": {"after": "10"}}}

    api.on("POST", "/crm/v3/objects/companies/search", search)
    task = {
        "type": "io.kestra.plugin.hubspot.companies.Search",
        "apiKey": "pat-SECRET",
        "properties": ["name", "domain"],
        "sorts": [{"propertyName": "createdate", "direction": "DESCENDING"}],
    }
    outcome, _ = await run(task, tmp_path)
    assert outcome.state == "SUCCESS", outcome.error
    assert api.last.json == {
        "properties": ["name", "domain"],
        "limit": 10,
        "sorts": [{"propertyName": "createdate", "direction": "DESCENDING"}],
    }
    assert outcome.outputs["total"] == 2
    outcome, _ = await run({**task, "fetchAllPages": True}, tmp_path)
    assert outcome.outputs["total"] == 3
    assert api.last.json["after"] == "10"
    stored = LocalStorage(tmp_path / "storage").read_sync(outcome.outputs["uri"])
    assert ion.loads(stored.decode()) == [{"name": "A"}, {"name": "B"}, {"name": "C"}]
