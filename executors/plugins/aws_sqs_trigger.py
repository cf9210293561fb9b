"""Kestra's SQS polling trigger, ``io.kestra.plugin.aws.sqs.Trigger``.

What Kestra does (kestra-io/plugin-aws ``sqs.Trigger``): every ``interval`` (PT60S) it runs the
``Consume`` task (:mod:`executors.plugins.aws_messaging`) with the trigger's connection and
``queueUrl``, ``maxRecords``, ``maxDuration``, ``serdeType`` (STRING), ``autoDelete`` (true),
``visibilityTimeout`` (30); when nothing was consumed, nothing happens; otherwise one execution
starts with ``trigger.uri`` (the ION file of the message bodies) and ``trigger.count``.

What differs: the messages are deleted (``autoDelete``) only once the StartExecution is durably
in Kafka (Kestra deletes them while consuming, before creating the execution): a crash in
between leaves them in the queue, and they come back after their visibility timeout. Their
message ids make the execution id, so the same messages never start a second execution.
``maxConcurrency`` and ``connectionAcquisitionTimeout`` tune Kestra's Java client and are
accepted.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import orjson

from executors.aws_client import connect
from executors.plugin import render_str
from executors.plugins.aws_messaging import consume, delete_messages
from executors.plugins.aws_s3 import S3Connection
from executors.polling import Poll, PollContext, PollingTrigger
from schemas.flow.common import BoolOrExpr, Duration, IntOrExpr, Str
from triggers.ids import digest


class Trigger(PollingTrigger, S3Connection):
    """Start an execution with the messages consumed from an SQS queue."""

    family: ClassVar[str] = "aws"
    short: ClassVar[str | None] = "sqs_trigger"

    type: Literal["io.kestra.plugin.aws.sqs.Trigger"]
    queueUrl: Str
    maxRecords: IntOrExpr | None = None
    maxDuration: Duration | None = None
    serdeType: Literal["STRING", "JSON"] | Str = "STRING"
    autoDelete: BoolOrExpr = True
    visibilityTimeout: IntOrExpr = 30
    maxConcurrency: IntOrExpr = 50
    connectionAcquisitionTimeout: Duration = "PT5S"

    async def poll(self, ctx: PollContext) -> Poll | None:
        task = ctx.task
        queue = render_str(task, self.queueUrl, "queueUrl", required=True) or ""
        async with connect(task, self, "sqs", "SQS") as sqs:
            received = await consume(task, sqs, self, delete_now=False)
        count = received.sink.count
        if count == 0:
            await received.sink.discard()
            return None
        coordinates = "sqs-" + digest(orjson.dumps([queue, *received.message_ids]))
        ctx.bind(coordinates)
        uri = await received.sink.store(task, "messages.ion")
        receipts = received.receipts

        async def after() -> None:
            if receipts:
                async with connect(task, self, "sqs", "SQS") as sqs:
                    await delete_messages(sqs, queue, receipts)

        return Poll(coordinates, {"uri": uri, "count": count}, after)


PLUGINS: list[type[PollingTrigger]] = [Trigger]
