"""Kestra's Azure Blob Storage polling trigger, ``io.kestra.plugin.azure.storage.blob.Trigger``.

What Kestra does (kestra-io/plugin-azure ``storage.blob.Trigger``): every ``interval`` (PT60S)
it runs the List task with the trigger's connection and listing properties (``container``,
``prefix``, ``delimiter``, ``regexp``, FILES only, ``maxFiles`` 25); nothing listed, nothing
happens. Each blob is a candidate ``az://<container>/<name>`` whose version is its ETag (else
its last modification in epoch milliseconds); the state in the KV store (``on``
CREATE_OR_UPDATE, ``stateKey``, ``stateTtl``) says which fire. Every firing blob is downloaded
to internal storage, then ``action`` MOVE (to ``moveTo.name`` / file name) or DELETE applies,
and one execution starts with ``trigger.blobs``: each blob's ``container``, ``name``,
``size``, ``lastModified``, ``etag``, ``uri`` (the ``kestra://`` copy) and ``changeType``.

What differs (as for every polling trigger here, :mod:`executors.remote.objects`): the action
and the state write run once the StartExecution is durable; ``action`` defaults to NONE; MOVE
honours ``moveTo.container``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from executors.plugin import render_str
from executors.plugins.azure_blob import (
    MAX_FILES_WARNING,
    AzureSasConnection,
    BlobListing,
    BlobRef,
    blob_out,
    list_blobs,
    move_target,
)
from executors.polling import Poll, PollContext, PollingTrigger, state_spec
from executors.remote import common as c
from executors.remote import objects as o
from executors.remote.azure import AzureBlobs, connect, render_settings
from executors.remote.objects import Obj
from schemas.flow.common import Duration, IntOrExpr, Str


def _version(obj: Obj) -> str:
    if obj.etag:
        return obj.etag
    return str(int(obj.modified.timestamp() * 1000)) if obj.modified else "0"


class Trigger(PollingTrigger, AzureSasConnection, BlobListing):
    """Start an execution when blobs appear (or change) in an Azure Blob Storage container."""

    family: ClassVar[str] = "azure"

    type: Literal["io.kestra.plugin.azure.storage.blob.Trigger"]
    action: Str | None = None
    moveTo: BlobRef | None = None
    maxFiles: IntOrExpr = 25
    on: Str | None = None
    stateKey: Str | None = None
    stateTtl: Duration | None = None

    async def poll(self, ctx: PollContext) -> Poll | None:
        task = ctx.task
        action = c.render_choice(task, self.action, "action", o.ACTIONS) or "NONE"
        settings = render_settings(task, self)
        max_files = c.render_max(task, self.maxFiles, "maxFiles", 25)
        container = render_str(task, self.container, "container", required=True) or ""

        async def listing(opened: Any) -> list[Obj]:
            assert isinstance(opened, AzureBlobs)
            listed = await list_blobs(opened, task, self, None)
            return o.cap(task, listed, max_files, MAX_FILES_WARNING)

        watch = o.Watch(
            connect=lambda: connect(task, settings),
            listing=listing,
            uri=lambda obj: f"az://{container}/{obj.name}",
            version=_version,
            shown=lambda obj, uri: {**blob_out(obj, listed=True), "uri": uri},
            action=action,
            target=move_target(task, self.moveTo) if action == "MOVE" else None,
            spec=state_spec(self, ctx, self.on, self.stateKey, self.stateTtl),
        )
        return await o.poll(ctx, watch)


PLUGINS: list[type[PollingTrigger]] = [Trigger]
