"""Airflow's TriggerDagRun and n8n's TriggerWorkflow against a real local HTTP receiver: the exact
requests, polling a DAG run to its end, the answers as outputs, and the refusals."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from engine.flows import flow_to_dict, load_flow
from engine.stores.storage import LocalStorage, TaskLocation
from executors.base import TaskContext, TaskOutcome
from tests.unit.api_receiver import FakeTime, run_plugin, serve

LOC = TaskLocation("company.team", "f", "exec1", "t", "tr1")


async def run(
    task: dict[str, Any], time: FakeTime | None = None, **hooks: Any
) -> tuple[TaskOutcome, TaskContext]:
    task = {"id": "t", **task}
    return await run_plugin(task, time=time, **hooks)


async def test_airflow_trigger_and_wait() -> None:
    with serve() as api:
        path = "/api/v1/dags/example_astronauts/dagRuns"
        api.on("POST", path, (200, {"dag_run_id": "manual__1", "state": "queued"}))
        done = {
            "dag_run_id": "manual__1",
            "state": "success",
            "start_date": "2025-01-02T03:04:05+02:00",
            "end_date": "2025-01-02T03:05:00.5+02:00",
        }
        api.on("GET", path + "/manual__1", [(200, {"state": "running"}), (200, done)])
        time = FakeTime()
        task = {
            "type": "io.kestra.plugin.airflow.dags.TriggerDagRun",
            "baseUrl": api.url,
            "dagId": "example_astronauts",
            "wait": True,
            "pollFrequency": "PT2S",
            "options": {"basicAuthUser": "admin", "basicAuthPassword": "af-SECRET"},
            "headers": {"X-Team": "{{ flow.namespace }}"},
        }
        outcome, _ = await run(task, time)
        assert outcome.state == "SUCCESS", outcome.error
        trigger = api.requests[0]
        assert (
            trigger.headers["authorization"]
            == "Basic " + base64.b64encode(b"admin:af-SECRET").decode()
        )
        assert trigger.headers["x-team"] == "company.team"
        assert trigger.json == {
            "conf": {
                "source": "kestra",
                "flow": "f",
                "namespace": "company.team",
                "task": "t",
                "execution": "exec1",
            }
        }
        assert time.slept == [2.0]
        assert outcome.outputs == {
            "dagId": "example_astronauts",
            "dagRunId": "manual__1",
            "state": "success",
            "started": "2025-01-02T03:04:05",
            "ended": "2025-01-02T03:05:00.500000",
        }
        outcome, _ = await run({**task, "wait": False, "body": {"conf": {"a": 1}}})
        assert outcome.outputs == {
            "dagId": "example_astronauts",
            "dagRunId": "manual__1",
            "state": "queued",
        }
        assert api.last.json == {"conf": {"a": 1}}
        api.on("POST", path, (409, {"detail": "DAGRun already exists"}))
        outcome, _ = await run(task)
        assert outcome.error == 'Failed to trigger DAG: {"detail": "DAGRun already exists"}'


async def test_n8n_webhook(tmp_path: Path) -> None:
    with serve() as api:
        api.on("POST", "/webhook/abc", (200, [{"day": 1, "focus": "basics"}]))
        task = {
            "type": "io.kestra.plugin.n8n.webhook.TriggerWorkflow",
            "method": "POST",
            "uri": api.url + "/webhook/abc",
            "body": {"prompt": "{{ flow.id }}"},
            "queryParameters": {"source": "kestra"},
            "authentication": {"type": "BasicAuth", "username": "u", "password": "n8n-SECRET"},
        }
        outcome, _ = await run(task)
        assert outcome.state == "SUCCESS", outcome.error
        assert outcome.outputs == {"statusCode": 200, "body": [{"day": 1, "focus": "basics"}]}
        assert api.last.query == {"source": ["kestra"]}
        assert api.last.json == {"prompt": "f"}
        assert (
            api.last.headers["authorization"]
            == "Basic " + base64.b64encode(b"u:n8n-SECRET").decode()
        )

        storage = LocalStorage(tmp_path / "storage")
        uri = storage.put_sync(LOC, "doc.xml", b"<a/>")
        api.on("PUT", "/webhook/file", (200, "accepted"))
        outcome, _ = await run(
            {
                "type": "io.kestra.plugin.n8n.webhook.TriggerWorkflow",
                "method": "PUT",
                "uri": api.url + "/webhook/file",
                "from": uri,
                "contentType": "XML",
                "authentication": {"type": "HeaderAuth", "name": "X-Key", "value": "k1"},
            },
            storage=storage.for_task(LOC),
        )
        assert outcome.state == "SUCCESS", outcome.error
        assert api.last.body == b"<a/>"
        assert api.last.headers["content-type"] == "application/xml"
        assert api.last.headers["x-key"] == "k1"
        outcome, _ = await run({**task, "wait": False})
        assert outcome.outputs == {"statusCode": 200, "body": None}
        api.on("POST", "/webhook/abc", (404, {"message": "webhook not registered"}))
        outcome, _ = await run(task)
        assert outcome.error == "Received non-200 response from Webhook: 404"
        outcome, _ = await run({**task, "from": uri})
        assert outcome.error == "You cannot set both 'from' and 'body' properties at the same time"


def test_n8n_old_name_loads_as_the_webhook_type() -> None:
    flow = load_flow(
        """
id: n8n
namespace: company.team
tasks:
  - id: call_n8n
    type: io.kestra.plugin.n8n.TriggerWorkflow
    method: POST
    uri: "{{ secret('N8N_WEBHOOK_URL') }}"
    body:
      prompt: hi
"""
    )
    assert flow_to_dict(flow)["tasks"][0]["type"] == "io.kestra.plugin.n8n.webhook.TriggerWorkflow"


async def test_jenkins_build_and_info() -> None:
    with serve() as api:
        api.on("POST", "/jenkins/job/team%20a/job/deploy/buildWithParameters", (201, ""))
        task = {
            "type": "io.kestra.plugin.jenkins.JobBuild",
            "serverUrl": api.url + "/jenkins",
            "jobName": "team a/deploy",
            "username": "admin",
            "apiToken": "jk-SECRET",
            "parameters": {"branch": "{{ flow.id }}", "env": ["staging", "prod"]},
        }
        outcome, ctx = await run(task)
        assert outcome.state == "SUCCESS", outcome.error
        assert outcome.outputs == {"status": 201}
        assert (
            api.last.headers["authorization"]
            == "Basic " + base64.b64encode(b"admin:jk-SECRET").decode()
        )
        assert api.last.headers["content-type"] == "application/x-www-form-urlencoded"
        assert api.last.body == b"branch=f&env=staging&env=prod"
        assert "Triggered job 'team a/deploy' with status code: 201" in [
            m.message for m in ctx.logs
        ]
        api.on(
            "GET",
            "/jenkins/job/team%20a/job/deploy/7/api/json",
            (200, {"result": "SUCCESS", "number": 7}),
        )
        info = {**task, "type": "io.kestra.plugin.jenkins.JobInfo", "buildNumber": 7}
        del info["parameters"]
        outcome, _ = await run(info)
        assert outcome.outputs == {"info": {"result": "SUCCESS", "number": 7}}
        api.on("POST", "/jenkins/job/team%20a/job/deploy/buildWithParameters", (404, "Not Found"))
        outcome, _ = await run(task)
        assert outcome.error == "Request failed '404' and body 'Not Found'"
