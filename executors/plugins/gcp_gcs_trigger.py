"""Kestra's Google Cloud Storage polling trigger, ``io.kestra.plugin.gcp.gcs.Trigger``.

What Kestra does (kestra-io/plugin-gcp ``gcs.Trigger``): every ``interval`` (PT60S) it runs
the List task with the trigger's credentials and listing properties (``from``,
``listingType`` DIRECTORY, ``regExp``, files only, ``maxFiles`` 25); nothing listed, nothing
happens. Each object is a candidate ``gs://<bucket>/<name>`` whose version is
``generation:<g>_metageneration:<m>``; the state in the KV store (``on`` CREATE_OR_UPDATE,
``stateKey``, ``stateTtl``) says which fire. Every firing object is downloaded to internal
storage, then ``action`` (NONE) MOVE (into ``moveDirectory``) or DELETE applies, and one
execution starts with ``trigger.blobs``: each ``Blob`` (its ``uri`` the ``kestra://`` copy)
with its ``changeType``.

What differs (as for every polling trigger here, :mod:`executors.remote.objects`): the action
and the state write run once the StartExecution is durable. The version is read from the
listing (Kestra asks for each object again).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal

from executors.plugins.gcp_gcs import GcpConnection, GcsListing, blob_out, list_blobs, move_target
from executors.polling import Poll, PollContext, PollingTrigger, state_spec
from executors.remote import common as c
from executors.remote import objects as o
from executors.remote.gcs import Gcs, connect, gs_uri, render_settings
from executors.remote.objects import Obj
from schemas.flow.common import Duration, IntOrExpr, Str


def _version(obj: Obj) -> str:
    generation = int(obj.props.get("generation") or 0)
    metageneration = int(obj.props.get("metageneration") or 0)
    return f"generation:{generation}_metageneration:{metageneration}"


class Trigger(PollingTrigger, GcpConnection, GcsListing):
    """Start an execution when objects appear (or change) under a ``gs://`` prefix."""

    family: ClassVar[str] = "gcp"

    type: Literal["io.kestra.plugin.gcp.gcs.Trigger"]
    action: Str | None = "NONE"
    moveDirectory: Str | None = None
    maxFiles: IntOrExpr = 25
    on: Str | None = None
    stateKey: Str | None = None
    stateTtl: Duration | None = None

    async def poll(self, ctx: PollContext) -> Poll | None:
        task = ctx.task
        action = c.render_choice(task, self.action, "action", o.ACTIONS) or "NONE"
        settings = render_settings(task, self)
        max_files = c.render_max(task, self.maxFiles, "maxFiles", 25)

        @contextlib.asynccontextmanager
        async def store() -> AsyncIterator[Any]:
            async with connect(task, settings) as opened:
                yield opened

        async def listing(opened: Any) -> list[Obj]:
            assert isinstance(opened, Gcs)
            return await list_blobs(opened, task, self, "FILES", max_files)

        watch = o.Watch(
            connect=store,
            listing=listing,
            uri=lambda obj: gs_uri(obj.container, obj.name),
            version=_version,
            shown=blob_out,
            action=action,
            target=move_target(task, self.moveDirectory) if action == "MOVE" else None,
            spec=state_spec(self, ctx, self.on, self.stateKey, self.stateTtl),
        )
        return await o.poll(ctx, watch)


PLUGINS: list[type[PollingTrigger]] = [Trigger]
