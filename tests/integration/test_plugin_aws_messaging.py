"""sns.Publish, sqs.Publish/Consume/Trigger, eventbridge.PutEvents, kinesis.PutRecords and
dynamodb.* against the moto server of deploy/local (`up moto`, IAM authentication on).

Where a task only sends, the test reads what arrived through the service itself: SNS and
EventBridge deliver to an SQS queue subscribed to them, Kinesis records are read back from the
shard, DynamoDB items with a raw GetItem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from executors.ion import loads
from executors.plugins.aws_sqs_trigger import Trigger
from tests.integration.aws_support import CONNECTION, SECRETS, aws, run
from tests.remote_support import MemoryKV, poll_context, put, read, unique

pytestmark = pytest.mark.moto

P = "io.kestra.plugin.aws."


async def new_queue() -> str:
    async with aws("sqs") as sqs:
        url: str = (await sqs.create_queue(QueueName=unique("q")))["QueueUrl"]
    return url


async def drain(url: str, wanted: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with aws("sqs") as sqs:
        for _ in range(20):
            got = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            out.extend(got.get("Messages") or [])
            if len(out) >= wanted:
                break
    return out


async def test_sns_publish_reaches_a_subscribed_queue(tmp_path: Path) -> None:
    queue = await new_queue()
    async with aws("sns") as sns, aws("sqs") as sqs:
        topic = (await sns.create_topic(Name=unique("t")))["TopicArn"]
        attrs = await sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        await sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=attrs["Attributes"]["QueueArn"]
        )
    outcome, _ = await run(
        P + "sns.Publish",
        {"topicArn": topic, "from": [{"data": "Hello World"},
                                     {"data": "Hello {{ flow.id }}", "subject": "Kestra"}]},
        tmp_path,
    )  # fmt: skip
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"messagesCount": 2}
    assert outcome.metrics == {"sns.publish.messages": 2}
    delivered = [json.loads(m["Body"]) for m in await drain(queue, 2)]
    assert sorted((d["Message"], d.get("Subject")) for d in delivered) == [
        ("Hello World", None), ("Hello files", "Kestra")
    ]  # fmt: skip
    missing, _ = await run(
        P + "sns.Publish",
        {"topicArn": topic + "-absent", "from": {"data": "x"}},
        tmp_path,
    )
    assert missing.state == "FAILED"
    assert (missing.error or "").startswith("SNS Publish")
    assert "NotFound" in (missing.error or "")


async def test_sqs_publish_in_batches_then_consume_deletes(tmp_path: Path) -> None:
    queue = await new_queue()
    messages = [{"data": {"n": i}} for i in range(12)]
    sent, _ = await run(P + "sqs.Publish", {"queueUrl": queue, "from": messages}, tmp_path)
    assert sent.state == "SUCCESS", sent.error
    assert sent.outputs == {"messagesCount": 12}  # two SendMessageBatch calls of 10 and 2
    consumed, _ = await run(
        P + "sqs.Consume", {"queueUrl": queue, "maxRecords": 12, "serdeType": "JSON"}, tmp_path
    )
    assert consumed.state == "SUCCESS", consumed.error
    assert consumed.outputs["count"] == 12
    assert consumed.metrics == {"sqs.consume.messages": 12}
    rows = loads(read(tmp_path, consumed.outputs["uri"]).decode())
    assert sorted(r["n"] for r in rows) == list(range(12))
    # Deleted as consumed: the queue is empty, and an empty queue ends a Consume at once.
    empty, _ = await run(P + "sqs.Consume", {"queueUrl": queue, "maxRecords": 5}, tmp_path)
    assert empty.outputs["count"] == 0
    assert read(tmp_path, empty.outputs["uri"]) == b""
    neither, _ = await run(P + "sqs.Consume", {"queueUrl": queue}, tmp_path)
    assert "'maxDuration' or 'maxRecords' must be set" in (neither.error or "")
    await run(P + "sqs.Publish", {"queueUrl": queue, "from": {"data": "plain text"}}, tmp_path)
    bad, _ = await run(
        P + "sqs.Consume", {"queueUrl": queue, "maxRecords": 1, "serdeType": "JSON"}, tmp_path
    )
    assert bad.state == "FAILED"
    assert "serdeType JSON: a message body is not JSON" in (bad.error or "")
    absent, _ = await run(
        P + "sqs.Publish", {"queueUrl": queue + "-x", "from": {"data": "x"}}, tmp_path
    )
    assert (absent.error or "").startswith("SQS SendMessageBatch")


async def test_sqs_consume_json_with_auto_delete_off(tmp_path: Path) -> None:
    queue = await new_queue()
    two = [{"data": {"a": 1}}, {"data": {"b": [2]}}]
    await run(P + "sqs.Publish", {"queueUrl": queue, "from": two}, tmp_path)
    kept, _ = await run(
        P + "sqs.Consume",
        {"queueUrl": queue, "maxRecords": 2, "serdeType": "JSON", "autoDelete": False,
         "visibilityTimeout": 0},
        tmp_path,
    )  # fmt: skip
    assert kept.state == "SUCCESS", kept.error
    assert kept.outputs["count"] == 2
    assert sorted(map(json.dumps, loads(read(tmp_path, kept.outputs["uri"]).decode()))) == [
        '{"a": 1}', '{"b": [2]}'
    ]  # fmt: skip
    again = await drain(queue, 2)  # not deleted: still there
    assert len(again) == 2


async def test_sqs_trigger_starts_one_execution_and_deletes_after(tmp_path: Path) -> None:
    queue = await new_queue()
    await run(P + "sqs.Publish", {"queueUrl": queue, "from": {"data": "hello"}}, tmp_path)
    trigger = Trigger.model_validate(
        {"id": "watch", "type": P + "sqs.Trigger", "queueUrl": queue, "maxRecords": 1,
         "interval": "PT1S", **CONNECTION, "secretKeyId": SECRETS["AWS_SECRET_KEY_ID"],
         "accessKeyId": SECRETS["AWS_ACCESS_KEY_ID"]}
    )  # fmt: skip
    ctx = poll_context(tmp_path, MemoryKV())
    poll = await trigger.poll(ctx)
    assert poll is not None
    assert poll.variables["count"] == 1
    assert read(tmp_path, poll.variables["uri"]) == b'"hello"\n'
    assert poll.variables["uri"].startswith(
        f"kestra:///company/team/files/executions/{ctx.execution}/trigger/watch/"
    )
    assert poll.after is not None
    await poll.after()
    assert await trigger.poll(poll_context(tmp_path, MemoryKV())) is None


async def test_eventbridge_put_events_delivers_through_a_rule(tmp_path: Path) -> None:
    queue = await new_queue()
    source = unique("kestra")
    async with aws("events") as events, aws("sqs") as sqs:
        attrs = await sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        rule = unique("rule")
        await events.put_rule(Name=rule, EventPattern=json.dumps({"source": [source]}))
        await events.put_targets(
            Rule=rule, Targets=[{"Id": "q", "Arn": attrs["Attributes"]["QueueArn"]}]
        )
    entries = [
        {"source": source, "eventBusName": "default", "detailType": "my-custom-app",
         "detail": {"message": "a user sign-in event"}},
        {"Source": source, "EventBusName": "default", "DetailType": "text",
         "Detail": '{"message": "already JSON"}'},
    ]  # fmt: skip
    uri = await put(
        tmp_path, "entries.ion",
        f'{{source:"{source}",eventBusName:"default",detailType:"from-file"}}\n'.encode(),
    )  # fmt: skip
    outcome, _ = await run(P + "eventbridge.PutEvents", {"entries": entries}, tmp_path)
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["entryCount"] == 2
    assert outcome.outputs["failedEntryCount"] == 0
    assert outcome.metrics["eventbridge.put.events.total"] == 2
    stored = loads(read(tmp_path, outcome.outputs["uri"]).decode())
    assert stored[0]["eventId"]
    assert stored[0]["entry"]["detail"] == '{"message":"a user sign-in event"}'
    delivered = sorted(json.loads(m["Body"])["detail-type"] for m in await drain(queue, 2))
    assert delivered == ["my-custom-app", "text"]
    # The file's entry has no detail, which EventBridge refuses entry by entry.
    refused, _ = await run(P + "eventbridge.PutEvents", {"entries": uri}, tmp_path)
    assert refused.state == "FAILED"
    assert refused.error == (
        'Response show 1 event failed: [{"ErrorCode":"InvalidArgument","ErrorMessage":'
        '"Parameter Detail is not valid. Reason: Detail is a required argument."}]'
    )
    tolerated, _ = await run(
        P + "eventbridge.PutEvents", {"entries": uri, "failOnUnsuccessfulEvents": False}, tmp_path
    )
    assert tolerated.state == "WARNING"
    assert tolerated.outputs["failedEntryCount"] == 1
    row = loads(read(tmp_path, tolerated.outputs["uri"]).decode())[0]
    assert row["errorCode"] == "InvalidArgument"
    assert row["entry"]["detailType"] == "from-file"
    broken, _ = await run(P + "eventbridge.PutEvents", {"entries": [{"source": "x"}]}, tmp_path)
    assert "an entry has no 'eventBusName'" in (broken.error or "")


async def test_kinesis_put_records_from_a_list_and_an_ion_file(tmp_path: Path) -> None:
    stream = unique("stream")
    async with aws("kinesis") as kinesis:
        await kinesis.create_stream(StreamName=stream, ShardCount=1)
    records = [{"data": "sign-in", "partitionKey": "user1"},
               {"Data": "sign-out", "PartitionKey": "user1"}]  # fmt: skip
    outcome, _ = await run(
        P + "kinesis.PutRecords", {"streamName": stream, "records": records}, tmp_path
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["recordCount"] == 2
    assert outcome.outputs["failedRecordsCount"] == 0
    assert outcome.metrics["record.successful"] == 2
    rows = loads(read(tmp_path, outcome.outputs["uri"]).decode())
    assert rows[0]["shardId"] == "shardId-000000000000"
    assert rows[1]["record"] == {"partitionKey": "user1", "data": "sign-out"}
    ion = await put(tmp_path, "r.ion", b'{partitionKey:"u2",data:"from-file"}\n')
    filed, _ = await run(P + "kinesis.PutRecords", {"streamName": stream, "records": ion}, tmp_path)
    assert filed.state == "SUCCESS", filed.error
    async with aws("kinesis") as kinesis:
        iterator = (
            await kinesis.get_shard_iterator(
                StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
            )
        )["ShardIterator"]
        got = await kinesis.get_records(ShardIterator=iterator)
    assert [r["Data"] for r in got["Records"]] == [b"sign-in", b"sign-out", b"from-file"]
    neither, _ = await run(P + "kinesis.PutRecords", {"records": records}, tmp_path)
    assert neither.error == "Either streamName or streamArn has to be set."
    absent, _ = await run(
        P + "kinesis.PutRecords", {"streamName": stream + "-x", "records": records}, tmp_path
    )
    assert "ResourceNotFoundException" in (absent.error or "")


async def test_dynamodb_put_get_query_scan_delete(tmp_path: Path) -> None:
    table = unique("demo")
    async with aws("dynamodb") as db:
        await db.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
    item = {"pk": "user", "sk": "1", "name": "John", "age": 42, "vip": True, "off": False,
            "tags": ["a", "b"], "address": {"city": "Paris"}, "none": None}  # fmt: skip
    put1, _ = await run(P + "dynamodb.PutItem", {"tableName": table, "item": item}, tmp_path)
    assert put1.state == "SUCCESS", put1.error
    put2, _ = await run(
        P + "dynamodb.PutItem",
        {"tableName": table, "item": '{"pk": "user", "sk": "2", "name": "Jane"}'},
        tmp_path,
    )
    assert put2.state == "SUCCESS", put2.error
    async with aws("dynamodb") as db:
        raw = await db.get_item(TableName=table, Key={"pk": {"S": "user"}, "sk": {"S": "1"}})
    # Kestra's writing: numbers as text, lists as string sets.
    assert raw["Item"]["age"] == {"S": "42"}
    assert raw["Item"]["tags"] == {"SS": ["a", "b"]}
    assert raw["Item"]["none"] == {"NULL": True}
    key = {"pk": "user", "sk": "1"}
    got, _ = await run(P + "dynamodb.GetItem", {"tableName": table, "key": key}, tmp_path)
    assert got.outputs["row"] == {**item, "age": "42"}
    query = {"tableName": table, "keyConditionExpression": "pk = :pk",
             "expressionAttributeValues": {":pk": "user"}}  # fmt: skip
    fetched, _ = await run(P + "dynamodb.Query", {**query, "fetchType": "FETCH"}, tmp_path)
    assert [r["sk"] for r in fetched.outputs["rows"]] == ["1", "2"]
    assert fetched.outputs["size"] == 2
    assert fetched.metrics == {"records": 2}
    one, _ = await run(
        P + "dynamodb.Query",
        {**query, "fetchType": "FETCH_ONE", "filterExpression": "#n = :n",
         "expressionAttributeValues": {":pk": "user", ":n": "Jane"}},
        tmp_path,
    )  # fmt: skip
    assert one.state == "FAILED"  # '#n' needs expressionAttributeNames, which Kestra lacks
    assert "DynamoDB Query" in (one.error or "")
    stored, _ = await run(P + "dynamodb.Scan", {"tableName": table, "limit": 1}, tmp_path)
    assert stored.outputs["size"] == 1
    assert loads(read(tmp_path, stored.outputs["uri"]).decode())[0]["pk"] == "user"
    scan, _ = await run(
        P + "dynamodb.Scan",
        {"tableName": table, "fetchType": "FETCH", "filterExpression": "sk = :s",
         "expressionAttributeValues": {":s": "2"}},
        tmp_path,
    )  # fmt: skip
    assert scan.outputs["rows"] == [{"pk": "user", "sk": "2", "name": "Jane"}]
    no_values, _ = await run(
        P + "dynamodb.Scan", {"tableName": table, "filterExpression": "sk = :s"}, tmp_path
    )
    assert "'expressionAttributeValues' must be provided" in (no_values.error or "")
    deleted, _ = await run(P + "dynamodb.DeleteItem", {"tableName": table, "key": key}, tmp_path)
    assert deleted.state == "SUCCESS", deleted.error
    gone, _ = await run(P + "dynamodb.GetItem", {"tableName": table, "key": key}, tmp_path)
    assert gone.outputs["row"] == {}
    absent, _ = await run(P + "dynamodb.Scan", {"tableName": table + "-x"}, tmp_path)
    assert "ResourceNotFoundException" in (absent.error or "")
