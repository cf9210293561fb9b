"""Execution creation and resume as Kestra's API takes them (ExecutionController.create,
parseLabels, resume; FlowInputOutput.readData/readExecutionInputs), against the real FastAPI
app with the bus and the database stubbed."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from engine.api.app import create_app
from engine.api.services import ApiServices
from engine.bus.wire import decode_command, decode_flow, flow_deployed_record
from engine.flows import flow_to_dict, load_flow
from engine.reducer.commands import Resume, StartExecution
from engine.settings import Settings, WorkerSettings

FLOW = """
id: f
namespace: company.team
inputs:
  - id: n
    type: INT
  - id: doc
    type: FILE
    required: false
  - id: opt
    type: STRING
    defaults: hello
tasks:
  - id: p
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: ok
        type: BOOLEAN
"""


class Services(ApiServices):
    """The real API services with Kafka and PostgreSQL replaced by lists."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.sent: list[Any] = []
        self.rows: dict[str, dict[str, Any]] = {}
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
        self.sent.append(decode_command(kv[1]))

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        if "SELECT task_id FROM task_runs" in sql:
            return [{"task_id": "p"}]
        if "FROM task_runs" in sql:
            return []
        row = self.rows.get(str(args[0])) if args else None
        if row is None and args:  # an execution this API started: it ended at once
            started = [c for c in self.sent if getattr(c, "execution_id", None) == args[0]]
            if started:
                row = _ended_row(started[-1])
        return [row] if row else []


def _ended_row(command: Any) -> dict[str, Any]:
    return {
        "id": command.execution_id, "namespace": command.namespace, "flow_id": command.flow_id,
        "flow_revision": 1, "state": "SUCCESS", "labels": {}, "inputs": command.inputs,
        "outputs": None, "trigger": None, "parent_execution_id": None,
        "original_execution_id": None, "retry_number": 0, "start_date": None, "end_date": None,
        "duration_ms": None, "state_history": [["CREATED", "t"], ["SUCCESS", "t"]],
        "last_seq": 2,
    }  # fmt: skip


@pytest.fixture
async def api(tmp_path: pathlib.Path) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    settings = Settings(worker=WorkerSettings(storage_dir=str(tmp_path)))
    services = Services(settings)
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client, services


def _started(services: Services) -> StartExecution:
    command = services.sent[-1]
    assert isinstance(command, StartExecution)
    return command


async def test_multipart_fields_are_typed_inputs_and_files_are_uploaded(
    api: tuple[httpx.AsyncClient, Services], tmp_path: pathlib.Path
) -> None:
    client, services = api
    answer = await client.post(
        "/api/v1/executions/company.team/f",
        params=[("labels", "team:a"), ("labels", "env:dev")],
        data={"n": "42"},
        files={"doc": ("data.csv", b"a,b\n1,2\n")},
    )
    assert answer.status_code == 200, answer.text
    command = _started(services)
    assert command.inputs["n"] == 42
    assert command.inputs["opt"] == "hello"
    uri = command.inputs["doc"]
    assert uri == (
        f"kestra:///company/team/f/executions/{command.execution_id}/inputs/doc/data.csv"
    )
    stored = tmp_path.joinpath(*uri.removeprefix("kestra:///").split("/"))
    assert stored.read_bytes() == b"a,b\n1,2\n"
    assert command.labels == {"team": "a", "env": "dev"}


async def test_a_file_part_named_by_its_file_name_like_kestras_curl_example(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = api
    answer = await client.post(
        "/api/v1/executions/company.team/f",
        data={"n": "1"},
        files={"files": ("doc", b"x")},
    )
    assert answer.status_code == 200, answer.text
    assert _started(services).inputs["doc"].endswith("/inputs/doc/doc")


async def test_no_inputs_at_all_is_refused_like_kestra_and_unknown_inputs_are_named(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = api
    refused = await client.post("/api/v1/executions/company.team/f")
    assert refused.status_code == 422
    assert "missing required input" in refused.json()["detail"]
    assert services.sent == []
    answer = await client.post(
        "/api/v1/executions/company.team/f", json={"inputs": {"n": 1, "x": 2}}
    )
    assert answer.status_code == 200
    assert answer.json()["unknownInputs"] == ["x"]
    command = _started(services)
    assert "x" not in command.inputs
    assert command.notes == ["input 'x' is not declared by the flow: ignored"]


async def test_system_labels_are_refused_and_schedule_date_is_kept(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = api
    bad = await client.post(
        "/api/v1/executions/company.team/f",
        params={"labels": "system.readOnly:true"},
        json={"inputs": {"n": 1}},
    )
    assert bad.status_code == 400
    assert "System labels can only be set by Kestra itself" in bad.json()["detail"]
    later = await client.post(
        "/api/v1/executions/company.team/f",
        params={"scheduleDate": "2030-01-01T10:00:00+02:00"},
        data={"n": "1"},
    )
    assert later.status_code == 200
    assert _started(services).scheduled == "2030-01-01T08:00:00.000Z"
    assert later.json()["scheduleDate"] == "2030-01-01T08:00:00.000Z"


async def test_resume_validates_on_resume_inputs_first(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, services = api
    services.rows["e1"] = {
        "id": "e1",
        "namespace": "company.team",
        "flow_id": "f",
        "flow_revision": 1,
        "state": "PAUSED",
    }
    refused = await client.post("/api/v1/executions/e1/resume", json={"inputs": {}})
    assert refused.status_code == 422
    assert services.sent == []
    accepted = await client.post("/api/v1/executions/e1/resume", data={"ok": "true"})
    assert accepted.status_code == 200, accepted.text
    (command,) = services.sent
    assert isinstance(command, Resume)
    assert command.inputs == {"ok": "true"}


async def test_wait_answers_with_the_ended_execution(
    api: tuple[httpx.AsyncClient, Services],
) -> None:
    client, _ = api
    answer = await client.post(
        "/api/v1/executions/company.team/f", params={"wait": "true"}, data={"n": "1"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["state"]["current"] == "SUCCESS"
    assert body["taskRunList"] == []
