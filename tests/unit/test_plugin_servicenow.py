"""ServiceNow Table API types against a real local HTTP receiver standing in for an instance:
the exact requests (Basic or OAuth password grant, query parameters, JSON bodies), the fetch
types, and the failures."""

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
from tests.unit.api_receiver import Receiver, run_plugin, serve

P = "io.kestra.plugin.servicenow."
AUTH = {"domain": "acme", "username": "admin", "password": "sn-SECRET"}
BASIC = "Basic " + base64.b64encode(b"admin:sn-SECRET").decode()
RECORDS = [{"sys_id": "a1", "number": "INC1"}, {"sys_id": "a2", "number": "INC2"}]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with serve() as receiver:
        monkeypatch.setitem(BASE_URLS, "servicenow", receiver.url + "/{domain}")
        yield receiver


async def run(
    task: dict[str, Any], tmp_path: Path | None = None
) -> tuple[TaskOutcome, TaskContext]:
    return await run_plugin({"id": "t", **AUTH, **task}, storage_dir=tmp_path)


async def test_get_with_query_and_fetch_types(api: Receiver, tmp_path: Path) -> None:
    api.on("GET", "/acme/api/now/table/incident", (200, {"result": RECORDS}))
    task = {
        "type": P + "Get",
        "table": "incident",
        "query": "active=true^priority=1",
        "fields": ["number", "sys_id"],
        "limit": 100,
        "offset": 0,
        "headers": {"X-Source": "{{ flow.id }}"},
    }
    outcome, _ = await run(task)
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"results": RECORDS, "size": 2, "offset": 0}
    request = api.last
    assert request.headers["authorization"] == BASIC
    assert request.headers["x-source"] == "f"
    assert request.query == {
        "sysparm_query": ["active=true^priority=1"],
        "sysparm_limit": ["100"],
        "sysparm_offset": ["0"],
        "sysparm_fields": ["number,sys_id"],
    }
    outcome, _ = await run({**task, "fetchType": "FETCH_ONE"})
    assert outcome.outputs["results"] == RECORDS[:1]
    outcome, _ = await run({**task, "fetchType": "STORE"}, tmp_path)
    assert outcome.outputs["size"] == 2
    stored = LocalStorage(tmp_path / "storage").read_sync(outcome.outputs["uri"])
    assert ion.loads(stored.decode()) == RECORDS


async def test_post_update_delete_and_oauth(api: Receiver) -> None:
    api.on("POST", "/acme/oauth_token.do", (200, {"access_token": "tok-1", "token_type": "Bearer"}))
    api.on("POST", "/acme/api/now/table/incident", (201, {"result": {"sys_id": "n1"}}))
    oauth = {"clientId": "cid", "clientSecret": "csecret"}
    outcome, ctx = await run(
        {
            "type": P + "Post",
            **oauth,
            "table": "incident",
            "data": {"short_description": "{{ flow.id }}"},
        }
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"result": {"sys_id": "n1"}}
    token_call, post = api.requests
    assert token_call.body.decode() == (
        "grant_type=password&client_id=cid&client_secret=csecret&username=admin&password=sn-SECRET"
    )
    assert token_call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert post.headers["authorization"] == "Bearer tok-1"
    assert post.json == {"short_description": "f"}
    assert not any("csecret" in line.message or "sn-SECRET" in line.message for line in ctx.logs)

    api.on(
        "PUT", "/acme/api/now/table/incident/a1", (200, {"result": {"sys_id": "a1", "state": "2"}})
    )
    outcome, _ = await run(
        {"type": P + "Update", "table": "incident", "sysId": "a1", "data": {"state": 2}}
    )
    assert outcome.outputs == {"result": {"sys_id": "a1", "state": "2"}}
    assert api.last.json == {"state": 2}
    api.on("DELETE", "/acme/api/now/table/incident/a1", (204, ""))
    outcome, _ = await run({"type": P + "Delete", "table": "incident", "sysId": "a1"})
    assert outcome.outputs == {"deleted": True}

    api.on("GET", "/acme/api/now/table/nope", (400, {"error": {"message": "Invalid table nope"}}))
    outcome, _ = await run({"type": P + "Get", "table": "nope"})
    assert outcome.error == (
        'Request failed \'400\' and body \'{"error": {"message": "Invalid table nope"}}\''
    )
    api.on("POST", "/acme/oauth_token.do", (401, {"error": "access_denied"}))
    outcome, _ = await run({"type": P + "Post", **oauth, "table": "incident", "data": {}})
    assert outcome.error == "Request failed '401' and body '{\"error\": \"access_denied\"}'"
