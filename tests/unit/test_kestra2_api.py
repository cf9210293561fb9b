"""Kestra 2.0 in the API, against the real FastAPI app with the bus and the database stubbed:
a flow's ``checks`` (``when``, or its 1.x name ``condition``) at execution creation,
``jsonSchema`` on a JSON input, and the task-run outputs endpoint."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from engine.api.app import create_app
from engine.api.services import ApiServices
from engine.bus.wire import decode_command, decode_flow, flow_deployed_record
from engine.flows import flow_to_dict, load_flow
from engine.reducer.commands import StartExecution
from engine.settings import Settings, WorkerSettings

FLOW = """
id: f
namespace: company.team
inputs:
  - id: env
    type: STRING
  - id: doc
    type: JSON
    required: false
    jsonSchema: '{"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}'
checks:
  - when: "{{ inputs.env != 'frozen' }}"
    message: the environment is frozen
  - when: "{{ inputs.env == 'prod' or inputs.env == 'frozen' }}"
    message: prod only
    behavior: FAIL_EXECUTION
    style: WARNING
  - when: "{{ inputs.env | length > 100 }}"
    message: never blocks
    behavior: CREATE_EXECUTION
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: x
"""

RUNS = {
    "r1": {"id": "r1", "task_id": "a", "value": None, "iteration": None, "outputs": {"x": 1}},
    "r2": {"id": "r2", "task_id": "b", "value": "v", "iteration": None, "outputs": {"y": "z"}},
}


class Services(ApiServices):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.sent: list[Any] = []
        self.deployed: list[Any] = []
        flow = flow_to_dict(load_flow(FLOW))
        kv = flow_deployed_record("company.team", "f", 1, FLOW, flow)
        self.store.apply(decode_flow(kv[1]))

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def require_bus(self) -> Any:
        return None

    async def produce(self, topic: str, kv: Any) -> None:
        if topic == self.topics.flows.name:
            self.deployed.append(decode_flow(kv[1]))
        else:
            self.sent.append(decode_command(kv[1]))

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        if "FROM executions" in sql:
            return {"id": args[0]} if args[0] == "ex" else None
        if "FROM task_runs" in sql and args[0] == "ex":
            run = RUNS.get(str(args[1]))
            return None if run is None else {"outputs": orjson.dumps(run["outputs"]).decode()}
        return None

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        if "FROM task_runs" in sql and args[0] == "ex":
            return list(RUNS.values())
        return []


@pytest.fixture
async def api(tmp_path: pathlib.Path) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    settings = Settings(worker=WorkerSettings(storage_dir=str(tmp_path)))
    services = Services(settings)
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client, services


async def _create(client: httpx.AsyncClient, **inputs: Any) -> httpx.Response:
    return await client.post("/api/v1/executions/company.team/f", json={"inputs": inputs})


async def test_passing_checks_create_the_execution(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = api
    answer = await _create(client, env="prod")
    assert answer.status_code == 200, answer.text
    command = services.sent[-1]
    assert isinstance(command, StartExecution)
    assert command.error is None


async def test_a_fail_execution_check_creates_it_failed(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = api
    answer = await _create(client, env="dev")
    assert answer.status_code == 200, answer.text
    command = services.sent[-1]
    assert command.error is not None
    assert "prod only" in command.error


async def test_a_block_execution_check_starts_nothing(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = api
    answer = await _create(client, env="frozen")
    assert answer.status_code == 422
    body = answer.json()
    assert "Flow execution blocked" in body["detail"]
    assert "the environment is frozen" in body["detail"]
    assert services.sent == []


async def test_json_input_must_match_its_json_schema(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    good = await _create(client, env="prod", doc={"id": 3})
    assert good.status_code == 200, good.text
    bad = await _create(client, env="prod", doc={"id": "three"})
    assert bad.status_code == 422
    assert "it must match the json schema" in bad.json()["detail"]


async def test_outputs_endpoint(api: tuple[httpx.AsyncClient, Services]) -> None:
    client, _ = api
    one = await client.get("/api/v1/outputs/ex/r2")
    assert one.status_code == 200
    assert one.json() == {"y": "z"}
    listing = await client.get("/api/v1/outputs/ex")
    assert listing.json() == [
        {"taskId": "a", "taskRunId": "r1", "value": None, "iteration": None, "inline": True},
        {"taskId": "b", "taskRunId": "r2", "value": "v", "iteration": None, "inline": True},
    ]
    assert (await client.get("/api/v1/outputs/nope/r1")).status_code == 404
    assert (await client.get("/api/v1/outputs/ex/nope")).status_code == 404


async def test_a_draft_revision_is_kept_but_never_executes(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = api
    draft = FLOW.replace("format: x", "format: draft")
    answer = await client.post(
        "/api/v1/flows", params={"draft": "true"}, content=draft,
        headers={"Content-Type": "application/x-yaml"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["revision"] == 2
    assert answer.json()["draft"] is True
    assert services.deployed[-1].draft is True
    store = services.store
    assert store.record("company.team", "f").revision == 1  # type: ignore[union-attr]
    assert store.get("company.team", "f", 2) is None  # a subflow pinned to it finds nothing
    assert [r.revision for r in store.revisions("company.team", "f")] == [1, 2]
    started = await _create(client, env="prod")
    assert started.json()["flowRevision"] == 1
    command = services.sent[-1]
    assert command.flow["tasks"][0]["format"] == "x"
    # Deploying it for real makes it the revision that runs.
    real = await client.post(
        "/api/v1/flows", content=draft, headers={"Content-Type": "application/x-yaml"}
    )
    assert real.json()["revision"] == 3
    assert real.json()["draft"] is False
    assert store.record("company.team", "f").revision == 3  # type: ignore[union-attr]
