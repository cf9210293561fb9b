"""Kestra's S3 polling trigger, ``io.kestra.plugin.aws.s3.Trigger``.

What Kestra does (kestra-io/plugin-aws ``s3.Trigger``): every ``interval`` (PT60S) it runs
the List task with the trigger's connection and listing properties (``bucket``, ``prefix``,
``delimiter``, ``marker``, ``encodingType``, ``maxKeys`` 1000, ``expectedBucketOwner``,
``regexp``, ``filter`` BOTH, ``maxFiles`` 25); if nothing is listed, nothing happens. Each
listed object is a candidate ``s3://<bucket>/<key>`` whose version is its ETag (else its last
modification in epoch milliseconds); the state kept in the KV store (``on``
CREATE_OR_UPDATE, ``stateKey``, ``stateTtl``; :mod:`executors.polling`) says which fire: new
ones on CREATE, changed ones on UPDATE. Every firing object is downloaded to internal storage;
then ``action`` MOVE (copy to ``moveTo.bucket`` (default: the same bucket) at ``moveTo.key /
<file name>``, then delete) or DELETE applies to them, and one execution starts with
``trigger.objects``: each object's ``key``, ``etag``, ``size``, ``lastModified``, ``owner``,
``uri`` (the ``kestra://`` copy) and ``changeType`` (CREATE or UPDATE).

What differs: the state is written and the action applied only once the StartExecution is
durably in Kafka (Kestra writes the state first and moves before creating the execution): a
crash in between polls the same objects again, which derive the same execution id and start
nothing new. ``action`` defaults to NONE (Kestra requires it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import orjson

from executors.plugin import render_str
from executors.plugins.aws_s3 import (
    ACTIONS,
    CopyObject,
    ListProperties,
    S3Connection,
    download_object,
    list_objects,
    perform_action,
    truncate,
)
from executors.polling import (
    Entry,
    Poll,
    PollContext,
    PollingTrigger,
    compute_and_update,
    read_state,
    state_spec,
    write_state,
)
from executors.remote import common as c
from executors.remote.s3 import connect, render_settings
from schemas.flow.common import Duration, IntOrExpr, Str
from triggers.ids import digest


class Trigger(PollingTrigger, S3Connection, ListProperties):
    """Start an execution when objects appear (or change) in an S3 bucket."""

    family: ClassVar[str] = "aws"

    type: Literal["io.kestra.plugin.aws.s3.Trigger"]
    bucket: Str
    requestPayer: Str | None = None
    maxFiles: IntOrExpr = 25
    action: Str | None = None
    moveTo: CopyObject | None = None
    on: Str | None = None
    stateKey: Str | None = None
    stateTtl: Duration | None = None

    async def poll(self, ctx: PollContext) -> Poll | None:
        task = ctx.task
        bucket = render_str(task, self.bucket, "bucket", required=True)
        assert bucket is not None
        payer = render_str(task, self.requestPayer, "requestPayer") or None
        action = c.render_choice(task, self.action, "action", ACTIONS) or "NONE"
        spec = state_spec(self, ctx, self.on, self.stateKey, self.stateTtl)
        settings = render_settings(task, self)
        async with connect(task, settings) as s3:
            listed = await list_objects(s3, task, bucket, self, payer)
            listed = truncate(
                task, listed, c.render_max(task, self.maxFiles, "maxFiles", 25), "files"
            )
            if not listed:
                return None
            state = await read_state(ctx, spec)
            now = task.clock()
            firing: list[tuple[dict[str, Any], str]] = []
            for item in listed:
                modified = item.get("lastModified") or c.iso(datetime.now(UTC))
                version = item.get("etag") or str(_millis(modified))
                candidate = Entry(f"s3://{bucket}/{item['key']}", version, modified)
                fire, is_new = compute_and_update(state, candidate, spec.on, now)
                if fire:
                    firing.append((item, "CREATE" if is_new else "UPDATE"))
            if not firing:
                await write_state(ctx, spec, state)
                return None
            coordinates = "s3-" + digest(
                orjson.dumps(sorted([f"{bucket}/{i['key']}", i.get("etag")] for i, _ in firing))
            )
            ctx.bind(coordinates)
            objects = []
            for item, change in firing:
                got = await download_object(s3, task, bucket, item["key"], RequestPayer=payer)
                objects.append({**item, "uri": got["uri"], "changeType": change})

        keys = [item["key"] for item, _ in firing]

        async def after() -> None:
            async with connect(task, settings) as s3:
                await perform_action(s3, task, bucket, keys, action, self.moveTo)
            await write_state(ctx, spec, state)

        return Poll(coordinates, {"objects": objects}, after)


def _millis(text: str | None) -> int:
    if not text:
        return 0
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


PLUGINS: list[type[PollingTrigger]] = [Trigger]
