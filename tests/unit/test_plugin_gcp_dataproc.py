"""gcp.dataproc.batches against a local HTTP receiver playing Dataproc's REST API (no emulator
exists): the batch created with Kestra's id and configuration, its long-running operation
polled until done, a failed batch, a refusal, a kill cancelling the operation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from executors.base import TaskContext, TaskOutcome
from executors.registry import Registry, add_plugins
from tests.gcp_support import TOKEN, service_account, token_endpoint
from tests.unit.api_receiver import FakeTime, Receiver, context, serve

P = "io.kestra.plugin.gcp.dataproc.batches."
BATCHES = "/v1/projects/proj/locations/europe-west3/batches"
PI = "org.apache.spark.examples.SparkPi"
OPERATION = "projects/proj/regions/europe-west3/operations/op-1"
VARIABLES = {
    "flow": {"id": "lakehouse", "namespace": "company.team"},
    "execution": {"id": "4wjtkzwVGBM9yKnjyNARzY"},
}


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Receiver, str]]:
    with serve() as receiver, token_endpoint() as (token_uri, key, _grants):
        monkeypatch.setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_DATAPROC", receiver.url)
        yield receiver, service_account(token_uri, key)


async def run(
    task: dict[str, Any], account: str, time: FakeTime | None = None, cancelled: bool = False
) -> tuple[TaskOutcome, TaskContext]:
    task = {
        "id": "spark",
        "projectId": "proj",
        "serviceAccount": account,
        "region": "europe-west3",
        **task,
    }
    ctx = context(task, variables=VARIABLES, time=time)
    if cancelled:
        ctx.cancelled.set()
    return await add_plugins(Registry()).run(task, ctx), ctx


def operation(done: bool, **extra: Any) -> dict[str, Any]:
    return {"name": OPERATION, "done": done, "metadata": {"batch": "b"}, **extra}


async def test_pyspark_batch_is_created_and_waited_for(google: tuple[Receiver, str]) -> None:
    api, account = google
    api.on("POST", BATCHES, (200, operation(False)))
    api.on(
        "GET",
        f"/v1/{OPERATION}",
        [(200, operation(False)), (200, operation(True, response={"state": "SUCCEEDED"}))],
    )
    time = FakeTime()
    outcome, ctx = await run(
        {
            "type": P + "PySparkSubmit",
            "name": "Kestra Transform_{{ flow.id }}",
            "mainPythonFileUri": "gs://bucket/jobs/transform.py",
            "args": ["--input=gs://bucket/raw/", "--output=gs://bucket/curated/"],
            "fileUris": ["gs://bucket/conf.json"],
            "execution": {"subnetworkUri": "default", "networkTags": ["spark"]},
            "runtime": {"version": "2.2", "properties": {"spark.executor.cores": "4"}},
            "peripherals": {"sparkHistoryServer": {"dataprocCluster": "history"}},
        },
        account,
        time,
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"state": "SUCCEEDED"}
    [create] = api.sent("POST", BATCHES)
    assert create.headers["authorization"] == f"Bearer {TOKEN}"
    assert create.query["batchId"] == ["kestra-transform-lakehouse-4wjtkzwvgbm9yknjynarzy"]
    assert create.json == {
        "pysparkBatch": {
            "mainPythonFileUri": "gs://bucket/jobs/transform.py",
            "fileUris": ["gs://bucket/conf.json"],
            "args": ["--input=gs://bucket/raw/", "--output=gs://bucket/curated/"],
        },
        "environmentConfig": {
            "executionConfig": {"subnetworkUri": "default", "networkTags": ["spark"]},
            "peripheralsConfig": {"sparkHistoryServerConfig": {"dataprocCluster": "history"}},
        },
        "runtimeConfig": {"version": "2.2", "properties": {"spark.executor.cores": "4"}},
    }
    assert len(api.sent("GET", f"/v1/{OPERATION}")) == 2
    assert time.slept == [10.0, 10.0]
    assert "Starting with batch id 'kestra-transform-lakehouse-4wjtkzwvgbm9yknjynarzy'" in [
        line.message for line in ctx.logs
    ]


async def test_spark_sql_and_r_batches_and_a_long_name(google: tuple[Receiver, str]) -> None:
    api, account = google
    api.on("POST", BATCHES, (200, operation(True, response={"state": "SUCCEEDED"})))
    spark, _ = await run(
        {"type": P + "SparkSubmit", "name": "x" * 80, "mainClass": PI,
         "jarFileUris": ["file:///usr/lib/spark/examples/jars/spark-examples.jar"], "args": [1000]},
        account,
    )  # fmt: skip
    assert spark.outputs == {"state": "SUCCEEDED"}, spark.error
    assert api.last.query["batchId"] == ["x" * 63]
    assert api.last.json["sparkBatch"] == {
        "mainClass": PI,
        "jarFileUris": ["file:///usr/lib/spark/examples/jars/spark-examples.jar"],
        "args": ["1000"],
    }
    sql, _ = await run(
        {"type": P + "SparkSqlSubmit", "name": "q", "queryFileUri": "gs://b/q.sql"}, account
    )
    assert sql.state == "SUCCESS", sql.error
    assert api.last.json["sparkSqlBatch"] == {"queryFileUri": "gs://b/q.sql"}
    r, _ = await run(
        {"type": P + "RSparkSubmit", "name": "r", "mainRFileUri": "gs://b/a.r"}, account
    )
    assert api.last.json["sparkRBatch"] == {"mainRFileUri": "gs://b/a.r"}
    assert r.outputs == {"state": "SUCCEEDED"}


async def test_a_failed_batch_a_refusal_and_a_kill(google: tuple[Receiver, str]) -> None:
    api, account = google
    task = {"type": P + "PySparkSubmit", "name": "job", "mainPythonFileUri": "gs://b/j.py"}
    error = {"code": 9, "message": "Batch failed: Job failed with message [ZeroDivisionError]"}
    api.on("POST", BATCHES, (200, operation(True, error=error)))
    failed, _ = await run(task, account)
    assert failed.state == "FAILED"
    assert failed.error == (
        "Dataproc batch 'job-4wjtkzwvgbm9yknjynarzy' failed: Batch failed: Job failed with "
        "message [ZeroDivisionError] (code 9)"
    )
    exists = {"error": {"code": 409, "message": "Batch already exists", "status": "ALREADY_EXISTS"}}
    api.on("POST", BATCHES, (409, exists))
    refused, _ = await run(task, account)
    assert refused.error == (
        f"Dataproc: POST {BATCHES} failed with HTTP 409: Batch already exists (ALREADY_EXISTS)"
    )
    api.on("POST", BATCHES, (200, operation(False)))
    api.on("POST", f"/v1/{OPERATION}:cancel", (200, {}))
    killed, _ = await run(task, account, cancelled=True)
    assert killed.state == "KILLED"
    assert len(api.sent("POST", f"/v1/{OPERATION}:cancel")) == 1
    no_region, _ = await run({**task, "region": ""}, account)
    assert no_region.error == "property 'region' is required"
