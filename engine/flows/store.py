"""Deployed flows in memory, followed from hw.flows.

:class:`FlowStore` is the pure core: it applies decoded hw.flows records and answers
``get(namespace, id, revision=None)`` (latest revision, or a given one) and ``revisions``.
:class:`FlowFollower` is the thin Kafka part: it assigns every partition of hw.flows (no
consumer group: every process needs every flow), reads from the beginning to the end, then
keeps following in the background. The executor resolves subflows with it, the API lists
revisions, trigger sources find their flows.

A deleted flow keeps its revisions readable by number (a running execution pinned to a
revision still resolves its subflow revision), but ``get`` without a revision returns None.

A draft revision (Kestra 2.0) is kept and listed by ``revisions`` but never executes: ``get``
and ``record`` skip it (the latest revision is the latest that is not a draft; asked by
number, a draft is None) unless ``drafts=True``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.bus.consumer import AsyncConsumer
from engine.bus.supervise import Supervised
from engine.bus.wire import FlowRecord, decode_flow, flow_key
from engine.errors import BusError
from engine.settings import KafkaSettings
from schemas.envelope import EnvelopeError

log = logging.getLogger(__name__)

JSON = dict[str, Any]

# Poll timeout of the follower: short so that stop() and the caught-up check react quickly.
_POLL_S = 0.2
# Catch-up is done when one poll after we reached the reported end brings nothing new. Tansu
# reports a too-low high watermark (SERVICES.md), so "offset >= end" alone is not trusted.
_EMPTY_POLLS_TO_CATCH_UP = 2
# The flows topic holds few records; read them in big batches.
_BATCH = 2000


@dataclass(slots=True)
class _Flow:
    revisions: dict[int, FlowRecord] = field(default_factory=dict)
    latest: int = 0  # the latest revision that is not a draft (0: none)
    deleted: bool = False


class FlowStore:
    """Latest revision per (namespace, id) plus every revision seen. Pure and synchronous."""

    def __init__(self) -> None:
        self._flows: dict[str, _Flow] = {}
        self.applied = 0

    def apply(self, record: FlowRecord) -> None:
        entry = self._flows.setdefault(flow_key(record.namespace, record.id), _Flow())
        self.applied += 1
        if record.deleted:
            if record.revision >= entry.latest:
                entry.deleted = True
            return
        entry.revisions[record.revision] = record
        if record.revision >= entry.latest and not record.draft:
            entry.latest = record.revision
            entry.deleted = False

    def get(self, namespace: str, flow_id: str, revision: int | None = None) -> JSON | None:
        """The normalized engine dict of the flow (None if unknown, or deleted when no
        revision is asked for)."""
        record = self.record(namespace, flow_id, revision)
        return record.flow if record is not None else None

    def record(
        self, namespace: str, flow_id: str, revision: int | None = None, *, drafts: bool = False
    ) -> FlowRecord | None:
        entry = self._flows.get(flow_key(namespace, flow_id))
        if entry is None:
            return None
        if revision is None:
            if drafts and entry.revisions:
                return entry.revisions[max(entry.revisions)]
            return None if entry.deleted else entry.revisions.get(entry.latest)
        found = entry.revisions.get(revision)
        return None if found is None or (found.draft and not drafts) else found

    def revisions(self, namespace: str, flow_id: str) -> list[FlowRecord]:
        entry = self._flows.get(flow_key(namespace, flow_id))
        return [entry.revisions[r] for r in sorted(entry.revisions)] if entry else []

    def deleted(self, namespace: str, flow_id: str) -> bool:
        entry = self._flows.get(flow_key(namespace, flow_id))
        return bool(entry and entry.deleted)

    def flows(self) -> list[FlowRecord]:
        """The latest revision of every flow that is not deleted."""
        return [
            e.revisions[e.latest]
            for e in self._flows.values()
            if not e.deleted and e.latest in e.revisions
        ]


class FlowFollower:
    """Keeps a FlowStore up to date from hw.flows. ``await start()`` returns once caught up."""

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        store: FlowStore | None = None,
        on_change: Callable[[], None] | None = None,
    ):
        """`on_change` is called after records were applied to the store."""
        self.store = store or FlowStore()
        self._settings = settings
        self._topic = topic
        self._on_change = on_change
        self._consumer: AsyncConsumer | None = None
        self._task: Supervised | None = None
        self._closing = asyncio.Event()  # ends a dozing consume while following

    async def start(self) -> FlowStore:
        from engine.bus.admin import BusAdmin

        partitions = (await BusAdmin(self._settings).list_topics()).get(self._topic)
        if partitions is None:
            raise BusError(f"topic {self._topic} does not exist; run ensure_topics first")
        # A group id is required by librdkafka even for manual assignment; nothing is committed.
        consumer = AsyncConsumer(self._settings, f"{self._settings.client_id}-flows-reader")
        await consumer.start()
        self._consumer = consumer
        await consumer.assign({(self._topic, p): 0 for p in range(partitions)})
        await self._catch_up()
        self._task = Supervised("flowstore-follow", self._follow())
        return self.store

    @property
    def healthy(self) -> bool:
        return self._task is None or self._task.healthy

    async def _catch_up(self) -> None:
        empty = 0
        while empty < _EMPTY_POLLS_TO_CATCH_UP:
            applied = await self._poll()
            empty = 0 if applied else empty + 1

    async def _poll(self, until: asyncio.Event | None = None) -> int:
        assert self._consumer is not None
        records = await self._consumer.consume(_BATCH, _POLL_S, until=until)
        for r in records:
            if r.value is None:
                continue
            try:
                self.store.apply(decode_flow(r.value))
            except EnvelopeError as exc:
                log.error("hw.flows %s[%d]@%d skipped: %s", r.topic, r.partition, r.offset, exc)
        if records and self._on_change is not None:
            self._on_change()
        return len(records)

    async def _follow(self) -> None:
        while True:
            try:
                await self._poll(self._closing)
            except BusError as exc:
                if not exc.retriable:
                    raise
                log.warning("flow follower: %s", exc)
                await asyncio.sleep(_POLL_S)

    async def wait_for(
        self, namespace: str, flow_id: str, revision: int | None = None, timeout_s: float = 10.0
    ) -> JSON:
        """Wait until the flow (revision) arrived: for callers that just deployed it."""
        async with asyncio.timeout(timeout_s):
            while (flow := self.store.get(namespace, flow_id, revision)) is None:
                if self._task is not None and self._task.failure is not None:
                    raise self._task.failure
                await asyncio.sleep(_POLL_S / 4)
        return flow

    async def close(self) -> None:
        self._closing.set()
        if self._task is not None:
            await self._task.stop()
            self._task = None
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None
