"""Kestra's AWS messaging tasks: SNS ``Publish``, SQS ``Publish`` / ``Consume``, EventBridge
``PutEvents``, Kinesis ``PutRecords``, on :mod:`executors.aws_client`.

What Kestra does (kestra-io/plugin-aws), every type with the AWS connection properties:

- ``sns.Publish``: ``topicArn`` (required), ``from`` (Kestra's ``Data.from``: a message map,
  a list of them, or a ``kestra://`` ION file of them; :mod:`executors.data`). A message is
  ``{data (required), subject, groupId, deduplicationId, phoneNumber, structure}``; one
  ``Publish`` call each. Output ``messagesCount``; metric ``sns.publish.messages``.
- ``sqs.Publish``: ``queueUrl`` (required), ``from`` as above with messages ``{data (text,
  or any value sent as compact JSON), groupId, deduplicationId, delaySeconds}``, sent by
  ``SendMessageBatch`` in batches of 10; a batch with failed entries fails the task ("SQS batch
  <n> had <k> failure(s): [entry[<id>] code=<code> message=<message>]"). Output
  ``messagesCount``; metric ``sqs.publish.messages``.
- ``sqs.Consume``: ``queueUrl``, ``maxRecords`` and/or ``maxDuration`` (one is required: "to
  avoid an infinite loop"), ``serdeType`` (STRING | JSON: the body parsed), ``autoDelete``
  (true: ``DeleteMessageBatch`` by 10), ``visibilityTimeout`` (30 s). ``ReceiveMessage`` with a
  1 s wait, 100 ms apart, until ``maxRecords`` messages, ``maxDuration`` elapsed, or a receive
  that brings the total to nothing yet (an empty queue ends at once). Every body is one row of
  an ION file. Outputs ``uri``, ``count``; metric ``sqs.consume.messages``. ``maxConcurrency``
  and ``connectionAcquisitionTimeout`` tune the Java client and are accepted.
- ``eventbridge.PutEvents``: ``entries`` (a list of ``{eventBusName, source, detailType,
  detail (text, or a map sent as JSON), resources}``, names also in AWS's capitalized form, or
  a ``kestra://`` ION file of them), ``failOnUnsuccessfulEvents`` (true). Outputs ``uri`` (an ION
  file: per entry ``{eventId, errorCode, errorMessage, entry}``), ``entryCount``,
  ``failedEntryCount`` (the task ends WARNING when some failed and it does not fail). Metrics
  ``eventbridge.put.events.{total,successful,failed,duration}``.
- ``kinesis.PutRecords``: ``streamName`` or ``streamArn`` (one is required), ``records`` (a
  list of ``{partitionKey, data, explicitHashKey}`` (or ``PartitionKey``...), or a ``kestra://``
  ION file), ``failOnUnsuccessfulRecords`` (true). Outputs ``uri`` (per record ``{sequenceNumber,
  shardId, errorCode, errorMessage, record}``), ``recordCount``, ``failedRecordsCount`` (WARNING
  as above). Metrics ``record.count``, ``record.successful``, ``record.failed``, ``duration``.

What differs: a receive asks for up to 10 messages (never more than ``maxRecords`` still
wanted; Kestra's SDK call takes one at a time), which changes nothing but speed. Rows read from
a file are not rendered again (an expression inside received data must not run). A record's or
an event's non-text ``data``/``detail`` is sent as compact JSON (Kestra's mapper refuses it for
a record). The output files hold the rendered entries and records, without null fields.
The SQS polling trigger is :mod:`executors.plugins.aws_sqs_trigger`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field

from executors.aws_client import AwsClient, connect
from executors.base import TaskContext, TaskError, TaskOutcome, to_text
from executors.data import IonSink, read_from
from executors.plugin import TaskPlugin, render_bool, render_int, render_seconds, render_str
from executors.plugins.aws_s3 import S3Connection
from executors.remote import common as c
from schemas.flow.common import BoolOrExpr, Duration, IntOrExpr, Str

SQS_BATCH = 10
# Kestra's receive: a 1 s long poll, then 100 ms before the next.
RECEIVE_WAIT_S = 1
RECEIVE_PAUSE_S = 0.1
SERDES = ("STRING", "JSON")


def _row_map(row: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(row, Mapping):
        raise TaskError(f"each {what} must be a map, got {to_text(row)[:80]!r}")
    return row


def _field(row: Mapping[str, Any], name: str) -> Any:
    """A field by Kestra's name or AWS's capitalized alias (``Data`` for ``data``)."""
    if name in row:
        return row[name]
    return row.get(name[:1].upper() + name[1:])


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


async def _rows(ctx: TaskContext, value: Any, name: str) -> list[Any]:
    rows = await read_from(ctx, value, name)
    return await asyncio.to_thread(rows.as_list)


async def _store_rows(ctx: TaskContext, rows: list[dict[str, Any]], name: str) -> str:
    c.scratch_dir(ctx)
    sink = await IonSink.create(ctx)
    try:
        for row in rows:
            sink.write(c.drop_none(row))
        return await sink.store(ctx, name)
    except BaseException:
        await sink.discard()
        raise


class _Aws(TaskPlugin, S3Connection):
    family: ClassVar[str] = "aws"


class _Sqs(_Aws):
    queueUrl: Str
    maxConcurrency: IntOrExpr = 50
    connectionAcquisitionTimeout: Duration = "PT5S"


class SnsPublish(_Aws):
    """Publish messages to an SNS topic."""

    short: ClassVar[str | None] = "sns_publish"
    type: Literal["io.kestra.plugin.aws.sns.Publish"]
    topicArn: Str
    from_: Any = Field(alias="from")

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        topic = render_str(ctx, self.topicArn, "topicArn", required=True)
        rows = await _rows(ctx, self.from_, "from")
        count = 0
        async with connect(ctx, self, "sns", "SNS") as sns:
            for row in rows:
                message = _row_map(row, "message")
                data = _field(message, "data")
                if data is None:
                    raise TaskError("property 'from': a message has no 'data'")
                await sns.call(
                    "publish",
                    topic or "",
                    TopicArn=topic,
                    Message=to_text(data),
                    Subject=_text(message.get("subject")),
                    MessageGroupId=_text(message.get("groupId")),
                    MessageDeduplicationId=_text(message.get("deduplicationId")),
                    PhoneNumber=_text(message.get("phoneNumber")),
                    MessageStructure=_text(message.get("structure")),
                )
                count += 1
        return TaskOutcome(
            "SUCCESS", {"messagesCount": count}, metrics={"sns.publish.messages": count}
        )


class SqsPublish(_Sqs):
    """Publish messages to an SQS queue."""

    short: ClassVar[str | None] = "sqs_publish"
    type: Literal["io.kestra.plugin.aws.sqs.Publish"]
    from_: Any = Field(alias="from")

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        queue = render_str(ctx, self.queueUrl, "queueUrl", required=True) or ""
        rows = await _rows(ctx, self.from_, "from")
        total = 0
        async with connect(ctx, self, "sqs", "SQS") as sqs:
            for number, start in enumerate(range(0, len(rows), SQS_BATCH), 1):
                entries = [
                    _sqs_entry(i, _row_map(row, "message"))
                    for i, row in enumerate(rows[start : start + SQS_BATCH])
                ]
                answer = await sqs.call(
                    "send_message_batch", queue, QueueUrl=queue, Entries=entries
                )
                failed = answer.get("Failed") or []
                if failed:
                    details = ", ".join(
                        f"entry[{f.get('Id')}] code={f.get('Code')} message={f.get('Message')}"
                        for f in failed
                    )
                    raise TaskError(f"SQS batch {number} had {len(failed)} failure(s): [{details}]")
                total += len(answer.get("Successful") or [])
        return TaskOutcome(
            "SUCCESS", {"messagesCount": total}, metrics={"sqs.publish.messages": total}
        )


def _sqs_entry(index: int, message: Mapping[str, Any]) -> dict[str, Any]:
    data = _field(message, "data")
    if data is None:
        raise TaskError("property 'from': a message has no 'data'")
    delay = message.get("delaySeconds")
    return c.drop_none(
        {
            "Id": str(index),
            "MessageBody": _text(data),
            "MessageGroupId": _text(message.get("groupId")),
            "MessageDeduplicationId": _text(message.get("deduplicationId")),
            "DelaySeconds": int(delay) if delay is not None else None,
        }
    )


class Received:
    """What one consumption read: the rows' ION file and the receipts still to delete."""

    def __init__(self, sink: IonSink) -> None:
        self.sink = sink
        self.receipts: list[str] = []
        self.message_ids: list[str] = []


async def consume(
    ctx: TaskContext,
    sqs: AwsClient,
    task: Any,
    *,
    delete_now: bool,
) -> Received:
    """Kestra's ``Consume`` loop (see the module docstring). With ``delete_now`` false the
    receipts of consumed messages are kept for the caller to delete (a trigger deletes them
    once its execution exists)."""
    queue = render_str(ctx, task.queueUrl, "queueUrl", required=True) or ""
    if task.maxDuration is None and task.maxRecords is None:
        raise TaskError("'maxDuration' or 'maxRecords' must be set to avoid an infinite loop")
    serde = c.render_choice(ctx, task.serdeType, "serdeType", SERDES) or "STRING"
    auto_delete = render_bool(ctx, task.autoDelete, "autoDelete", True)
    visibility = render_int(ctx, task.visibilityTimeout, "visibilityTimeout", 30)
    max_records = render_int(ctx, task.maxRecords, "maxRecords")
    max_s = render_seconds(ctx, task.maxDuration, "maxDuration")
    c.scratch_dir(ctx)
    received = Received(await IonSink.create(ctx))
    started = time.monotonic()
    pending: list[str] = []
    try:
        while True:
            wanted = SQS_BATCH if max_records is None else max(1, max_records - received.sink.count)
            answer = await sqs.call(
                "receive_message",
                queue,
                QueueUrl=queue,
                WaitTimeSeconds=RECEIVE_WAIT_S,
                VisibilityTimeout=visibility,
                MaxNumberOfMessages=min(SQS_BATCH, wanted),
            )
            for message in answer.get("Messages") or []:
                received.sink.write(_deserialize(str(message.get("Body", "")), serde))
                received.message_ids.append(str(message.get("MessageId")))
                if auto_delete:
                    pending.append(str(message["ReceiptHandle"]))
                    if delete_now and len(pending) == SQS_BATCH:
                        await delete_messages(sqs, queue, pending)
                        pending = []
            count = received.sink.count
            if max_records is not None and count >= max_records:
                break
            if max_s is not None and time.monotonic() - started > max_s:
                break
            if count == 0:
                break
            if not await ctx.sleep(RECEIVE_PAUSE_S):
                break
        if delete_now and pending:
            await delete_messages(sqs, queue, pending)
            pending = []
    except BaseException:
        await received.sink.discard()
        raise
    received.receipts = pending
    return received


def _deserialize(body: str, serde: str) -> Any:
    if serde == "JSON":
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise TaskError(f"serdeType JSON: a message body is not JSON: {exc}") from None
    return body


async def delete_messages(sqs: AwsClient, queue: str, receipts: list[str]) -> None:
    for start in range(0, len(receipts), SQS_BATCH):
        batch = receipts[start : start + SQS_BATCH]
        entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(batch)]
        answer = await sqs.call("delete_message_batch", queue, QueueUrl=queue, Entries=entries)
        failed = answer.get("Failed") or []
        if failed:
            details = ", ".join(
                f"id={f.get('Id')} code={f.get('Code')} message={f.get('Message')}" for f in failed
            )
            raise TaskError(f"SQS batch delete had {len(failed)} failure(s): [{details}]")


class SqsConsume(_Sqs):
    """Consume messages from an SQS queue into an ION file."""

    short: ClassVar[str | None] = "sqs_consume"
    type: Literal["io.kestra.plugin.aws.sqs.Consume"]
    maxRecords: IntOrExpr | None = None
    maxDuration: Duration | None = None
    serdeType: Literal["STRING", "JSON"] | Str = "STRING"
    autoDelete: BoolOrExpr = True
    visibilityTimeout: IntOrExpr = 30

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        async with connect(ctx, self, "sqs", "SQS") as sqs:
            received = await consume(ctx, sqs, self, delete_now=True)
        count = received.sink.count
        uri = await received.sink.store(ctx, "messages.ion")
        return TaskOutcome(
            "SUCCESS", {"count": count, "uri": uri}, metrics={"sqs.consume.messages": count}
        )


class PutEvents(_Aws):
    """Send custom events to Amazon EventBridge."""

    type: Literal["io.kestra.plugin.aws.eventbridge.PutEvents"]
    entries: Any
    failOnUnsuccessfulEvents: BoolOrExpr = True

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        started = time.monotonic()
        entries = [_event(_row_map(r, "entry")) for r in await _rows(ctx, self.entries, "entries")]
        request = [
            c.drop_none(
                {
                    "EventBusName": e["eventBusName"],
                    "Source": e["source"],
                    "DetailType": e["detailType"],
                    "Detail": e["detail"],
                    "Resources": e["resources"],
                }
            )
            for e in entries
        ]
        async with connect(ctx, self, "events", "EventBridge") as events:
            answer = await events.call("put_events", Entries=request)
        failed = int(answer.get("FailedEntryCount") or 0)
        metrics = {
            "eventbridge.put.events.duration": time.monotonic() - started,
            "eventbridge.put.events.failed": failed,
            "eventbridge.put.events.successful": len(entries) - failed,
            "eventbridge.put.events.total": len(entries),
        }
        if failed and render_bool(ctx, self.failOnUnsuccessfulEvents, "failOnUnsuccessful"):
            raise TaskError(f"Response show {failed} event failed: {_failures(answer, 'Entries')}")
        results = answer.get("Entries") or []
        rows = [
            {
                "eventId": result.get("EventId"),
                "errorCode": result.get("ErrorCode"),
                "errorMessage": result.get("ErrorMessage"),
                "entry": c.drop_none(entry),
            }
            for entry, result in zip(entries, results, strict=False)
        ]
        uri = await _store_rows(ctx, rows, "events.ion")
        outputs = {"uri": uri, "failedEntryCount": failed, "entryCount": len(entries)}
        return TaskOutcome("WARNING" if failed else "SUCCESS", outputs, metrics=metrics)


def _event(row: Mapping[str, Any]) -> dict[str, Any]:
    entry = {
        "eventBusName": _text(_field(row, "eventBusName")),
        "source": _text(_field(row, "source")),
        "detailType": _text(_field(row, "detailType")),
        "detail": _text(_field(row, "detail")),
        "resources": _field(row, "resources"),
    }
    for name in ("eventBusName", "source", "detailType"):
        if not entry[name]:
            raise TaskError(f"property 'entries': an entry has no '{name}'")
    return entry


def _failures(answer: dict[str, Any], key: str) -> str:
    return to_text([c.drop_none(e) for e in answer.get(key) or [] if e.get("ErrorCode")])


class PutRecords(_Aws):
    """Send records to an Amazon Kinesis Data Stream."""

    type: Literal["io.kestra.plugin.aws.kinesis.PutRecords"]
    streamName: Str | None = None
    streamArn: Str | None = None
    records: Any
    failOnUnsuccessfulRecords: BoolOrExpr = True

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        started = time.monotonic()
        records = [
            _record(_row_map(r, "record")) for r in await _rows(ctx, self.records, "records")
        ]
        arn = render_str(ctx, self.streamArn, "streamArn") or None
        name = render_str(ctx, self.streamName, "streamName") or None
        if not arn and not name:
            raise TaskError("Either streamName or streamArn has to be set.")
        request = [
            c.drop_none(
                {
                    "Data": r["data"].encode(),
                    "PartitionKey": r["partitionKey"],
                    "ExplicitHashKey": r["explicitHashKey"] or None,
                }
            )
            for r in records
        ]
        async with connect(ctx, self, "kinesis", "Kinesis") as kinesis:
            answer = await kinesis.call(
                "put_records",
                arn or name or "",
                Records=request,
                StreamARN=arn,
                StreamName=None if arn else name,
            )
        failed = int(answer.get("FailedRecordCount") or 0)
        if failed and render_bool(ctx, self.failOnUnsuccessfulRecords, "failOnUnsuccessful"):
            raise TaskError(f"Response show {failed} record failed: {_failures(answer, 'Records')}")
        metrics = {
            "duration": time.monotonic() - started,
            "record.failed": failed,
            "record.successful": len(records) - failed,
            "record.count": len(records),
        }
        rows = [
            {
                "sequenceNumber": result.get("SequenceNumber"),
                "shardId": result.get("ShardId"),
                "errorCode": result.get("ErrorCode"),
                "errorMessage": result.get("ErrorMessage"),
                "record": c.drop_none(record),
            }
            for record, result in zip(records, answer.get("Records") or [], strict=False)
        ]
        uri = await _store_rows(ctx, rows, "records.ion")
        outputs = {"uri": uri, "failedRecordsCount": failed, "recordCount": len(records)}
        return TaskOutcome("WARNING" if failed else "SUCCESS", outputs, metrics=metrics)


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    record = {
        "partitionKey": _text(_field(row, "partitionKey")),
        "explicitHashKey": _text(_field(row, "explicitHashKey")),
        "data": _text(_field(row, "data")),
    }
    for name in ("partitionKey", "data"):
        if record[name] is None:
            raise TaskError(f"property 'records': a record has no '{name}'")
    return record


PLUGINS: list[type[TaskPlugin]] = [SnsPublish, SqsPublish, SqsConsume, PutEvents, PutRecords]
