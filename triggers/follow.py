"""Read a whole topic without a consumer group, then keep following it.

Every trigger runtime needs every trigger's state (to know what is enabled and when a
schedule last fired), so hw.trigger-state is read like hw.flows by the FlowFollower: all
partitions assigned from offset 0, caught up before start-up returns, then followed in a
supervised background task. Each decoded record goes to the owner's callback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from engine.bus.admin import BusAdmin
from engine.bus.consumer import AsyncConsumer, Record
from engine.bus.supervise import Supervised
from engine.errors import BusError
from engine.settings import KafkaSettings
from schemas.envelope import EnvelopeError

log = logging.getLogger(__name__)

# Short poll: stop() and the caught-up check react within it.
_POLL_S = 0.2
# Tansu under-reports the end offset (SERVICES.md): caught up = two empty polls in a row.
_EMPTY_POLLS_TO_CATCH_UP = 2
_BATCH = 2000


class TopicFollower:
    """``await start()`` returns once the topic was read to its end; ``close()`` stops."""

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        on_record: Callable[[Record], None],
        reader_name: str,
    ) -> None:
        self._settings = settings
        self._topic = topic
        self._on_record = on_record
        self._reader_name = reader_name
        self._consumer: AsyncConsumer | None = None
        self._task: Supervised | None = None
        self._closing = asyncio.Event()  # ends a dozing consume while following

    async def start(self, on_crash: Callable[[str, BaseException], None] | None = None) -> None:
        partitions = (await BusAdmin(self._settings).list_topics()).get(self._topic)
        if partitions is None:
            raise BusError(f"topic {self._topic} does not exist; run ensure_topics first")
        # librdkafka needs a group id even for manual assignment; nothing is committed.
        consumer = AsyncConsumer(self._settings, f"{self._settings.client_id}-{self._reader_name}")
        await consumer.start()
        self._consumer = consumer
        await consumer.assign({(self._topic, p): 0 for p in range(partitions)})
        empty = 0
        while empty < _EMPTY_POLLS_TO_CATCH_UP:
            empty = 0 if await self._poll() else empty + 1
        self._task = Supervised(f"follow-{self._topic}", self._follow(), on_crash)

    @property
    def healthy(self) -> bool:
        return self._task is None or self._task.healthy

    async def _poll(self, until: asyncio.Event | None = None) -> int:
        assert self._consumer is not None
        records = await self._consumer.consume(_BATCH, _POLL_S, until=until)
        for r in records:
            if r.value is None:
                continue
            try:
                self._on_record(r)
            except EnvelopeError as exc:  # a poison record is skipped, never retried
                log.error("%s[%d]@%d skipped: %s", r.topic, r.partition, r.offset, exc)
        return len(records)

    async def _follow(self) -> None:
        while True:
            try:
                await self._poll(self._closing)
            except BusError as exc:
                if not exc.retriable:
                    raise
                log.warning("follower of %s: %s", self._topic, exc)
                await asyncio.sleep(_POLL_S)

    async def close(self) -> None:
        self._closing.set()
        if self._task is not None:
            await self._task.stop()
            self._task = None
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None
