"""Blueprint-shaped flows with SaaS tasks run end to end in process (reducer, worker, virtual clock
of the conformance harness) against a real local HTTP receiver: pluginDefaults reach the tasks,
one task's output feeds the next, a sync is polled on the virtual clock, and a refused call fails
the execution with the service's answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from executors.api_client import BASE_URLS
from executors.registry import add_plugins, core_registry
from tests.conformance.harness import World
from tests.unit.api_receiver import Receiver, Request, serve

FLOW = """
id: digest
namespace: company.team
tasks:
  - id: get_summary
    type: io.kestra.plugin.perplexity.ChatCompletion
    messages:
      - type: SYSTEM
        content: Summarise chapter {{ inputs.chapter }}.
      - type: USER
        content: I just read chapter {{ inputs.chapter }}.
  - id: convert_to_html
    type: io.kestra.plugin.perplexity.ChatCompletion
    messages:
      - type: USER
        content: "{{ outputs.get_summary.outputText }}"
  - id: sync
    type: io.kestra.plugin.hightouch.Sync
    token: ht-token
    syncId: 7
inputs:
  - id: chapter
    type: INT
    defaults: 3
pluginDefaults:
  - type: io.kestra.plugin.perplexity.ChatCompletion
    values:
      apiKey: pplx-key
      model: sonar
      temperature: 0.7
"""


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with serve() as receiver:
        monkeypatch.setitem(BASE_URLS, "perplexity", receiver.url)
        monkeypatch.setitem(BASE_URLS, "hightouch", receiver.url)
        yield receiver


def world_with(flow: str, tmp_path: Path) -> World:
    world = World(registry=add_plugins(core_registry()))
    path = tmp_path / "flow.yaml"
    path.write_text(flow)
    world.deploy_file(path)
    return world


def chat(request: Request) -> tuple[int, Any]:
    last = request.json["messages"][-1]["content"]
    return 200, {"choices": [{"message": {"content": f"<p>{last}</p>"}}]}


def serve_hightouch(api: Receiver) -> None:
    api.on("GET", "/api/v1/syncs/7", (200, {"id": 7, "slug": "orders"}))
    api.on("POST", "/api/v1/syncs/7/trigger", (200, {"id": 99}))
    runs = [{"id": 99, "status": s} for s in ("queued", "processing", "success")]
    api.on("GET", "/api/v1/syncs/7/runs?runId=99", [(200, {"data": [r]}) for r in runs])


async def test_a_flow_of_saas_tasks_runs_end_to_end(api: Receiver, tmp_path: Path) -> None:
    api.on("POST", "/chat/completions", chat)
    serve_hightouch(api)
    world = world_with(FLOW, tmp_path)
    execution = world.start("company.team", "digest")
    await world.run()
    state = world.states[execution]
    assert state.state.value == "SUCCESS", [line.message for line in world.worker_logs]
    first, second = api.sent("POST", "/chat/completions")
    assert first.headers["authorization"] == "Bearer pplx-key"
    assert first.json["temperature"] == 0.7
    assert first.json["messages"][0] == {"role": "system", "content": "Summarise chapter 3."}
    assert second.json["messages"] == [{"role": "user", "content": "<p>I just read chapter 3.</p>"}]
    assert len(api.sent("GET", "/api/v1/syncs/7/runs")) == 3


async def test_a_refused_call_fails_the_execution(api: Receiver, tmp_path: Path) -> None:
    api.on("POST", "/chat/completions", (401, {"error": {"message": "Invalid API key"}}))
    world = world_with(FLOW, tmp_path)
    execution = world.start("company.team", "digest")
    await world.run()
    assert world.states[execution].state.value == "FAILED"
    errors = [line.message for line in world.worker_logs if line.level == "ERROR"]
    assert errors == [
        'Perplexity: POST /chat/completions failed with HTTP 401: {"error": {"message": '
        '"Invalid API key"}}'
    ]
    assert not api.sent("GET", "/api/v1/syncs/7")
