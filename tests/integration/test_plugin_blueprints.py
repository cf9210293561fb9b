"""Blueprint flows of the messaging and redis plugins, run whole through the reducer and a
worker's registry (the in-process conformance world) against the real local servers."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import redis.asyncio as aioredis

from engine.stores.storage import LocalStorage, TaskLocation
from executors.registry import add_plugins, core_registry
from tests.conformance.harness import World
from tests.integration.messaging import unique

# The catalog's flows as published, with only their server address changed.
REDIS_KEY_VALUE = """
id: redis-key-value-store
namespace: company.team
inputs:
  - id: key
    type: STRING
    defaults: johndoe
  - id: value
    type: JSON
    defaults: |
      {"id": 123456, "name": "John Doe", "isPremium": true, "interests": ["programming"]}
tasks:
  - id: set
    type: io.kestra.plugin.redis.string.Set
    url: URL
    serdeType: JSON
    key: "{{ inputs.key }}"
    value: "{{ inputs.value }}"
  - id: get
    type: io.kestra.plugin.redis.string.Get
    url: URL
    serdeType: JSON
    key: "{{ inputs.key }}"
  - id: list
    type: io.kestra.plugin.redis.list.ListPush
    url: URL
    key: "{{ inputs.key }}-list"
    from:
      - "{{ outputs.get.data.name }}"
      - redis
  - id: pop
    type: io.kestra.plugin.redis.list.ListPop
    url: URL
    key: "{{ inputs.key }}-list"
    maxRecords: 5
"""


@pytest.mark.redis
async def test_a_redis_blueprint_runs_end_to_end(redis_url: str, tmp_path: pathlib.Path) -> None:
    key = unique("johndoe")
    flow = tmp_path / "flow.yaml"
    flow.write_text(REDIS_KEY_VALUE.replace("URL", redis_url))
    world = World(registry=add_plugins(core_registry()))
    # A real file store (the world's memory one only keeps small payloads).
    location = TaskLocation("company.team", "redis-key-value-store", "e", "any", "r")
    world.storage = LocalStorage(tmp_path / "storage").for_task(location)  # type: ignore[assignment]
    world.deploy_file(flow)
    execution = world.start("company.team", "redis-key-value-store", inputs={"key": key})
    client = aioredis.from_url(redis_url)
    try:
        await world.run()
        state: Any = world.states[execution]
        assert state.state == "SUCCESS", world.problems or [r.message for r in world.worker_logs]
        outputs = {run.task_id: run.outputs for run in state.task_runs.values()}
        assert outputs["get"]["data"] == {
            "id": 123456, "name": "John Doe", "isPremium": True, "interests": ["programming"]
        }  # fmt: skip
        assert outputs["pop"]["count"] == 2
        assert outputs["pop"]["uri"].startswith("kestra://")
    finally:
        await client.delete(key, f"{key}-list")
        await client.aclose()
