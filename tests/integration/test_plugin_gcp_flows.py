"""A blueprint-shaped GCP flow run end to end in process (reducer, worker, the conformance
harness's virtual clock) against the real emulators of deploy/local: a BigQuery query's row
feeds an If and a Pub/Sub publish, with ``pluginDefaults`` on the ``io.kestra.plugin.gcp``
prefix giving every task its project (as pubsub-publish-pipeline-events does)."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

import httpx
import pytest

from deploy.local.localsvc import bigquery as bqsvc
from deploy.local.localsvc import pubsub as pssvc
from executors.registry import add_plugins, core_registry
from tests.conformance.harness import World

pytestmark = [pytest.mark.bigquery, pytest.mark.pubsub]

BQ = bqsvc.emulator_host(int(os.environ.get("HEADWATER_LOCAL_BIGQUERY_PORT", "9750")))
PS = pssvc.emulator_host(int(os.environ.get("HEADWATER_LOCAL_PUBSUB_PORT", "8785")))

FLOW = """
id: pipeline_events
namespace: company.team
tasks:
  - id: run_aggregation
    type: io.kestra.plugin.gcp.bigquery.Query
    sql: SELECT COUNT(*) AS row_count FROM UNNEST([1, 2, 3]) AS x WHERE x > {{ inputs.above }}
    fetchOne: true
  - id: gate
    type: io.kestra.plugin.core.flow.If
    condition: "{{ outputs.run_aggregation.row.row_count > 0 }}"
    then:
      - id: publish_event
        type: io.kestra.plugin.gcp.pubsub.Publish
        topic: TOPIC
        serdeType: JSON
        from:
          - data:
              run_id: "{{ execution.id }}"
              row_count: "{{ outputs.run_aggregation.row.row_count }}"
            attributes:
              flow: "{{ flow.id }}"
inputs:
  - id: above
    type: INT
    defaults: 1
pluginDefaults:
  - type: io.kestra.plugin.gcp
    values:
      projectId: headwater
"""


async def test_query_row_gates_a_publish(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", BQ)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", PS)
    topic = f"hw-{uuid.uuid4().hex[:10]}"
    base = f"http://{PS}/v1/projects/headwater"
    async with httpx.AsyncClient() as client:
        (await client.put(f"{base}/topics/{topic}")).raise_for_status()
        made = await client.put(
            f"{base}/subscriptions/{topic}-s", json={"topic": f"projects/headwater/topics/{topic}"}
        )
        made.raise_for_status()
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW.replace("TOPIC", topic))
    world = World(registry=add_plugins(core_registry()))
    world.deploy_file(path)
    execution = world.start("company.team", "pipeline_events")
    await world.run()
    state = world.states[execution]
    assert state.state.value == "SUCCESS", [line.message for line in world.worker_logs]
    async with httpx.AsyncClient() as client:
        pull = {"maxMessages": 10, "returnImmediately": True}
        pulled = (await client.post(f"{base}/subscriptions/{topic}-s:pull", json=pull)).json()
    [received] = pulled["receivedMessages"]
    message = received["message"]
    assert message["attributes"] == {"flow": "pipeline_events"}
    body = base64.b64decode(message["data"]).decode()
    assert body == f'{{"run_id":"{execution}","row_count":"2"}}'
