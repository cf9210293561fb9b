"""athena.Query and lambda.Invoke against the moto server of deploy/local (`up moto`).

What moto can honestly show, and so what is tested here: the requests (query text, database,
catalog, output location; function name and payload) reach a server that checks our IAM
signature; query states move QUEUED -> RUNNING -> SUCCEEDED as we poll, and a query stopped
meanwhile is CANCELLED; results come back as Athena's typed pages. moto runs no SQL (results
are queued through its API) and no Lambda code (an invocation answers its payload, or a queued
answer): a function's own error and an unknown function are tested against a local receiver in
tests/unit/test_plugin_aws_lambda.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from executors.ion import loads
from tests.integration.aws_support import SECRETS, aws, moto_api, run
from tests.remote_support import read, unique

pytestmark = pytest.mark.moto

QUERY = "io.kestra.plugin.aws.athena.Query"
INVOKE = "io.kestra.plugin.aws.lambda.Invoke"
COLUMNS = [
    {"Name": "id", "Type": "integer"},
    {"Name": "name", "Type": "varchar"},
    {"Name": "ok", "Type": "boolean"},
    {"Name": "day", "Type": "date"},
    {"Name": "at", "Type": "timestamp"},
    {"Name": "amount", "Type": "decimal"},
    {"Name": "ratio", "Type": "double"},
]


def row(*cells: str | None) -> dict[str, Any]:
    return {"Data": [{} if v is None else {"VarCharValue": v} for v in cells]}


HEADER = row(*(c["Name"] for c in COLUMNS))
ROWS = [
    HEADER,
    row("1", "alpha", "true", "2024-01-31", "2024-01-31 10:00:00.123000", "12.50", "0.25"),
    row("2", None, "false", "2024-02-01", "2024-02-01 00:00:00.000000", "3", "1.0"),
]


def queue_results(*results: list[dict[str, Any]]) -> None:
    moto_api(
        "/moto-api/static/athena/query-results",
        {"region": "us-east-1", "results": [{"rows": r, "column_info": COLUMNS} for r in results]},
    )


async def athena_bucket() -> str:
    bucket = unique("athena")
    async with aws("s3") as s3:
        await s3.create_bucket(Bucket=bucket)
    return bucket


async def test_query_fetch_types_convert_cells_by_column_type(tmp_path: Path) -> None:
    bucket = await athena_bucket()
    base = {"database": "sales", "catalog": "AwsDataCatalog", "query": "SELECT * FROM orders",
            "outputLocation": f"s3://{bucket}/results"}  # fmt: skip
    queue_results(ROWS)
    fetched, ctx = await run(QUERY, {**base, "fetchType": "FETCH"}, tmp_path)
    assert fetched.state == "SUCCESS", fetched.error
    assert fetched.outputs == {
        "rows": [
            {"id": 1, "name": "alpha", "ok": True, "day": "2024-01-31",
             "at": "2024-01-31T10:00:00.123", "amount": 12.5, "ratio": 0.25},
            {"id": 2, "name": None, "ok": False, "day": "2024-02-01",
             "at": "2024-02-01T00:00:00", "amount": 3, "ratio": 1.0},
        ],
        "size": 2,
    }  # fmt: skip
    assert fetched.metrics["total.rows"] == 2
    assert fetched.metrics["fetch.rows"] == 2
    assert "data.scanned.bytes" in fetched.metrics
    created = [m for m in (line.message for line in ctx.logs) if "Athena execution" in m]
    query_id = created[0].rsplit(" ", 1)[1]
    async with aws("athena") as athena:
        execution = (await athena.get_query_execution(QueryExecutionId=query_id))["QueryExecution"]
    # What the server received, and where it put the results (moto writes them as CSV).
    assert execution["Query"] == "SELECT * FROM orders"
    assert execution["QueryExecutionContext"] == {"Database": "sales", "Catalog": "AwsDataCatalog"}
    location = execution["ResultConfiguration"]["OutputLocation"]
    assert location == f"s3://{bucket}/results/{query_id}.csv"
    async with aws("s3") as s3:
        body = await (await s3.get_object(Bucket=bucket, Key=f"results/{query_id}.csv"))[
            "Body"
        ].read()
    assert body.decode().splitlines()[1].startswith('"1","alpha"')

    queue_results(ROWS)
    one, _ = await run(QUERY, {**base, "fetchType": "FETCH_ONE"}, tmp_path)
    assert one.outputs["row"]["name"] == "alpha"
    assert one.outputs["size"] == 1
    queue_results(ROWS)
    kept, _ = await run(QUERY, {**base, "fetchType": "FETCH_ONE", "skipHeader": False}, tmp_path)
    assert kept.state == "FAILED"  # the header row's "id" is not an integer
    assert "'id': 'id' is not a valid integer" in (kept.error or "")

    queue_results(ROWS)
    stored, _ = await run(QUERY, base, tmp_path)
    assert stored.state == "SUCCESS", stored.error
    assert stored.outputs["size"] == 2
    text = read(tmp_path, stored.outputs["uri"]).decode()
    assert text.splitlines()[0] == (
        '{id:1,name:"alpha",ok:true,day:2024-01-31,'
        'at:LocalDateTime::"2024-01-31T10:00:00.123",amount:12.50,ratio:0.25e0}'
    )
    assert len(loads(text)) == 2

    queue_results([HEADER])
    empty, _ = await run(QUERY, base, tmp_path)
    assert empty.outputs == {"size": 0}

    none, _ = await run(QUERY, {**base, "fetchType": "NONE"}, tmp_path)
    assert none.state == "SUCCESS", none.error
    assert set(none.outputs) == {"queryExecutionId"}


async def test_query_waits_for_the_states_and_fails_when_cancelled(tmp_path: Path) -> None:
    bucket = await athena_bucket()
    base = {"database": "db", "query": "SELECT 1", "outputLocation": f"s3://{bucket}/out",
            "fetchType": "FETCH"}  # fmt: skip
    transition = "/moto-api/state-manager/set-transition"
    # Each state now lasts 3 GetQueryExecution calls: the task must poll through them.
    moto_api(transition, {"model_name": "athena::execution",
                          "transition": {"progression": "manual", "times": 3}})  # fmt: skip
    try:
        queue_results(ROWS)
        started = time.monotonic()
        waited, _ = await run(QUERY, base, tmp_path)
        assert waited.state == "SUCCESS", waited.error
        assert waited.outputs["size"] == 2
        assert time.monotonic() - started >= 5 * 0.5  # five polls 500 ms apart at least

        # Stay QUEUED until stopped from outside.
        forever = {"progression": "manual", "times": 10_000}
        moto_api(transition, {"model_name": "athena::execution", "transition": forever})
        marker = unique("stop-me")
        job = asyncio.create_task(run(QUERY, {**base, "query": f"SELECT 1 -- {marker}"}, tmp_path))
        query_id = await asyncio.wait_for(queued_query(marker), timeout=30)
        async with aws("athena") as athena:
            await athena.stop_query_execution(QueryExecutionId=query_id)
        cancelled, _ = await asyncio.wait_for(job, timeout=30)
        assert cancelled.state == "FAILED"
        assert cancelled.error == "Amazon Athena query was cancelled."
    finally:
        moto_api("/moto-api/state-manager/unset-transition", {"model_name": "athena::execution"})


async def queued_query(marker: str) -> str:
    """The id of the query whose text holds ``marker``, once the task started it."""
    async with aws("athena") as athena:
        while True:
            listed = await athena.list_query_executions()
            for candidate in listed["QueryExecutionIds"]:
                got = await athena.get_query_execution(QueryExecutionId=candidate)
                if marker in got["QueryExecution"]["Query"]:
                    return str(candidate)
            await asyncio.sleep(0.2)


async def test_query_with_a_wrong_secret_fails_with_the_servers_answer(tmp_path: Path) -> None:
    wrong = "wrong-secret-0042"
    base = {"database": "db", "query": "SELECT 1", "outputLocation": "s3://b/out"}
    outcome, ctx = await run(QUERY, base, tmp_path, **{"secret:AWS_SECRET_KEY_ID": wrong})
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert outcome.error.startswith("Athena StartQueryExecution failed: SignatureDoesNotMatch")
    unknown, _ = await run(QUERY, base, tmp_path, accessKeyId="AKIAUNKNOWNKEY000000")
    assert "InvalidClientTokenId" in (unknown.error or "") or "Unrecognized" in (
        unknown.error or ""
    )
    assert all(wrong not in line.message for line in ctx.logs)
    assert all(SECRETS["AWS_SECRET_KEY_ID"] not in line.message for line in ctx.logs)
    missing, _ = await run(QUERY, {"database": "db", "query": "SELECT 1"}, tmp_path)
    assert missing.state == "FAILED"
    assert "outputLocation" in (missing.error or "")


async def new_function() -> tuple[str, str]:
    name = unique("fn")
    async with aws("iam") as iam:
        role = (await iam.create_role(RoleName=unique("role"), AssumeRolePolicyDocument="{}"))[
            "Role"
        ]["Arn"]
    async with aws("lambda") as client:
        created = await client.create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )  # fmt: skip
    return name, created["FunctionArn"]


async def test_invoke_stores_the_response_and_copies_the_functions_logs(tmp_path: Path) -> None:
    name, arn = await new_function()
    payload = {"id": 1, "firstname": "John", "nested": {"ok": True}}
    invoked, ctx = await run(INVOKE, {"functionArn": arn, "functionPayload": payload}, tmp_path)
    assert invoked.state == "SUCCESS", invoked.error
    # moto's Lambda answers the payload it received: exactly the compact JSON we sent.
    assert (
        read(tmp_path, invoked.outputs["uri"])
        == b'{"id":1,"firstname":"John","nested":{"ok":true}}'
    )
    assert invoked.outputs["contentType"] == "application/json"
    assert invoked.outputs["contentLength"] == 48
    assert invoked.metrics["file.size"] == 48
    assert any("Failed to fetch CloudWatch logs" in line.message for line in ctx.logs)

    # A queued answer, and the function's log group with one event in it.
    moto_api("/moto-api/static/lambda-simple/response", {"results": ['{"body": "hello"}']})
    group = f"/aws/lambda/{name}"
    async with aws("logs") as logs:
        await logs.create_log_group(logGroupName=group)
        await logs.create_log_stream(logGroupName=group, logStreamName="s")
        await logs.put_log_events(
            logGroupName=group, logStreamName="s",
            logEvents=[{"timestamp": int(time.time() * 1000), "message": "handled the event\n"}],
        )  # fmt: skip
    by_name, ctx = await run(INVOKE, {"functionArn": name}, tmp_path)
    assert by_name.state == "SUCCESS", by_name.error
    assert read(tmp_path, by_name.outputs["uri"]) == b'{"body": "hello"}'
    assert "[lambda] handled the event" in [line.message for line in ctx.logs]


async def test_invoke_with_a_wrong_key_fails_with_the_servers_answer(tmp_path: Path) -> None:
    _, arn = await new_function()
    outcome, _ = await run(
        INVOKE, {"functionArn": arn}, tmp_path, **{"secret:AWS_SECRET_KEY_ID": "nope-123"}
    )
    assert outcome.state == "FAILED"
    assert (outcome.error or "").startswith(
        f"Lambda Invoke task execution failed for function: {arn}: "
    )
    assert "signature" in (outcome.error or "").lower()
