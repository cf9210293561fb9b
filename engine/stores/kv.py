"""The namespace key-value store (kv.Set / kv.Get / kv.Delete and the ``kv()`` function).

Where the truth lives: a compacted topic ``{prefix}hw.kv``, not Postgres (DESIGN.md: Postgres
is a read model that can be dropped and rebuilt from the topics). Record format, never change
it: key ``namespace/key`` (UTF-8; a namespace has no ``/``), value the JSON object
``{"v": 1, "value": ..., "expiresAt": "ISO-8601Z" | null}``; a delete is a tombstone (null
value), so compaction forgets deleted keys. Keys starting with NUL are control records
(:data:`BARRIER_KEY`) that readers skip.

One partition on purpose: KV traffic is small next to jobs and logs, every worker reads the
whole store anyway (no read scaling from partitions), and one partition gives all writes one
order, which makes the read barrier below a single record.

Each worker runs a :class:`KafkaKV` follower: it reads the topic from the beginning into
memory and keeps following it. Consistency:

- **Reads are linearizable** (kv.Get, kv.Delete's "existed", ``overwrite: false`` and the
  ``kv()`` function of a task): before answering, the reader appends a barrier record and waits
  until its follower has consumed past it, so it sees every write acknowledged before the read
  began, whichever worker wrote it. In particular a Get after a Set in the same execution
  always sees the Set (the Set's TaskResult, which lets the flow go on, is only sent after the
  broker acknowledged the write). This costs one produce round trip plus one fetch
  (``fetch.wait.max.ms``) per read, and works on every broker: it does not rely on the high
  watermark, which Tansu reports too low (SERVICES.md).
- **Writes are last-writer-wins** in topic order. ``overwrite: false`` is a read-then-write,
  not a compare-and-set: two Sets of a new key racing on two workers may both succeed.
- ``ttl`` is an absolute expiry written with the value (worker clock); an expired value reads
  as missing. Expired values stay in the topic until overwritten or deleted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING

from engine.bus.admin import BusAdmin, NewTopicSpec
from engine.bus.consumer import AsyncConsumer, Record
from engine.bus.producer import AsyncProducer
from engine.errors import BusError
from engine.settings import KafkaSettings
from executors.base import TaskError

log = logging.getLogger(__name__)

KV_TOPIC = "kv"  # after the prefix ("hw."): hw.kv
BARRIER_KEY = b"\x00barrier"
FORMAT_VERSION = 1
# A read waits at most this long for the follower to reach its barrier; past it the task fails
# naming the store (a broker outage), rather than hanging the worker's slot for ever.
SYNC_TIMEOUT_S = 30.0
# One follower poll waits at most this long; it bounds how late stop() is noticed.
_POLL_S = 0.2
_POLL_MAX = 1000
_RETRY_S = 0.5
# The expiry a deleted key keeps in memory (it reads as missing, and as no entry).
_TOMBSTONE = datetime.min.replace(tzinfo=UTC)


def kv_topic(kafka: KafkaSettings) -> str:
    return f"{kafka.topic_prefix}{KV_TOPIC}"


def kv_topic_spec(kafka: KafkaSettings) -> NewTopicSpec:
    """hw.kv: one partition, compacted (the perf helper owns the bus's topic catalogue, so the
    spec lives here with its only user)."""
    return NewTopicSpec(kv_topic(kafka), 1, kafka.replication_factor, {"cleanup.policy": "compact"})


async def ensure_kv_topic(admin: BusAdmin, kafka: KafkaSettings) -> str:
    await admin.create_topics([kv_topic_spec(kafka)])
    return kv_topic(kafka)


def entry_key(namespace: str, key: str) -> bytes:
    return f"{namespace}/{key}".encode()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class KafkaKV:
    """A worker's view of the KV store (a ``KVStore``); ``run()`` is its follower loop."""

    def __init__(
        self,
        kafka: KafkaSettings,
        producer: AsyncProducer,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        group_id: str | None = None,
    ) -> None:
        self.topic = kv_topic(kafka)
        self._kafka = kafka
        self._producer = producer
        self._clock = clock
        # assign() reads without joining a group; librdkafka still wants a group id.
        self._consumer = AsyncConsumer(kafka, group_id or f"{kafka.topic_prefix}kv-follower")
        self._entries: dict[tuple[str, str], tuple[int, Any, datetime | None]] = {}
        self._position = 0  # next offset the follower will read
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._closing = asyncio.Event()  # ends a dozing consume
        self.barriers = 0

    async def start(self) -> None:
        await self._consumer.start()
        await self._consumer.assign({(self.topic, 0): OFFSET_BEGINNING})

    async def close(self) -> None:
        self._closing.set()
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(TaskError("the KV store was closed"))
        self._waiters.clear()
        await self._consumer.close()

    async def run(self) -> None:
        """Follow hw.kv for ever (run it supervised)."""
        while True:
            try:
                records = await self._consumer.consume(_POLL_MAX, _POLL_S, until=self._closing)
            except BusError as exc:
                if not exc.retriable:
                    raise
                log.warning("KV follower: %s; retrying", exc)
                await asyncio.sleep(_RETRY_S)
                continue
            for record in records:
                self._apply(record)
            if records:
                self._position = max(self._position, records[-1].offset + 1)
                self._wake()

    # ------------------------------------------------------------------------- reads

    async def sync(self) -> None:
        """Return once this follower has seen every write acknowledged before the call."""
        self.barriers += 1
        try:
            async with asyncio.timeout(SYNC_TIMEOUT_S):
                delivered = await self._producer.produce(self.topic, BARRIER_KEY, b"{}")
                if self._position > delivered.offset:
                    return
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiters.append((delivered.offset, waiter))
                await waiter
        except (TimeoutError, BusError) as exc:
            raise TaskError(
                f"the KV store ({self.topic}) did not answer within {SYNC_TIMEOUT_S} s: {exc}; "
                "is the Kafka broker reachable?"
            ) from exc

    def peek(self, namespace: str, key: str) -> tuple[bool, Any]:
        """(found, value) from what the follower has read so far; no barrier."""
        entry = self._entries.get((namespace, key))
        if entry is None:
            return False, None
        _, value, expires = entry
        if expires is not None and expires <= self._clock():
            return False, None
        return True, value

    def lookup(self, key: str, namespace: str) -> Any:
        """The ``kv()`` expression hook (synchronous): call :meth:`sync` before rendering."""
        found, value = self.peek(namespace, key)
        if not found:
            raise KeyError(key)
        return value

    async def get(self, namespace: str, key: str) -> tuple[bool, Any]:
        await self.sync()
        return self.peek(namespace, key)

    # ------------------------------------------------------------------------ writes

    async def list_entries(self) -> list[tuple[str, str, datetime | None]]:
        """(namespace, key, expiry) of every stored key, expired ones included, after a read
        barrier (kv.GetKeys, kv.PurgeKV)."""
        await self.sync()
        return sorted(
            (namespace, key, expires)
            for (namespace, key), (_, value, expires) in self._entries.items()
            if not (value is None and expires == _TOMBSTONE)
        )

    async def set(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        overwrite: bool,
        ttl_seconds: float | None,
        keep_expiry: bool = False,
    ) -> None:
        """Store ``value``; ``keep_expiry`` keeps the current entry's expiry (kv.Put)."""
        if not overwrite and (await self.get(namespace, key))[0]:
            raise TaskError(
                f"Cannot set value for key '{key}'. "
                "Key already exists and `overwrite` is set to `false`."
            )
        expires = self._clock() + timedelta(seconds=ttl_seconds) if ttl_seconds else None
        if keep_expiry:
            current = self._entries.get((namespace, key))
            expires = current[2] if current is not None and current[2] != _TOMBSTONE else None
        body = {
            "v": FORMAT_VERSION,
            "value": value,
            "expiresAt": _iso(expires) if expires else None,
        }
        data = orjson.dumps(body, default=str)
        delivered = await self._write(entry_key(namespace, key), data)
        self._store(namespace, key, delivered, value, expires)

    async def delete(self, namespace: str, key: str) -> bool:
        existed, _ = await self.get(namespace, key)
        delivered = await self._write(entry_key(namespace, key), None)
        self._store(namespace, key, delivered, None, None, deleted=True)
        return existed

    async def _write(self, key: bytes, value: bytes | None) -> int:
        try:
            return (await self._producer.produce(self.topic, key, value)).offset
        except BusError as exc:
            raise TaskError(f"the KV store ({self.topic}) refused the write: {exc}") from exc

    # ---------------------------------------------------------------------- internals

    def _store(
        self,
        namespace: str,
        key: str,
        offset: int,
        value: Any,
        expires: datetime | None,
        *,
        deleted: bool = False,
    ) -> None:
        """Apply a write at ``offset`` unless a later one is already known (the follower and
        this worker's own acknowledged writes both land here, in any order)."""
        current = self._entries.get((namespace, key))
        if current is not None and current[0] >= offset:
            return
        if deleted:
            # Remember the tombstone's offset so an older record read later cannot revive it.
            self._entries[(namespace, key)] = (offset, None, _TOMBSTONE)
        else:
            self._entries[(namespace, key)] = (offset, value, expires)

    def _apply(self, record: Record) -> None:
        raw_key = record.key or b""
        if not raw_key or raw_key.startswith(b"\x00"):
            return
        namespace, sep, key = raw_key.decode("utf-8", "replace").partition("/")
        if not sep:
            log.warning("hw.kv record at offset %d has no namespace/key: skipped", record.offset)
            return
        if record.value is None:
            self._store(namespace, key, record.offset, None, None, deleted=True)
            return
        try:
            body = orjson.loads(record.value)
            expires_at = body.get("expiresAt")
            expires = (
                datetime.fromisoformat(expires_at.replace("Z", "+00:00")) if expires_at else None
            )
            self._store(namespace, key, record.offset, body.get("value"), expires)
        except (ValueError, AttributeError, orjson.JSONDecodeError) as exc:
            log.warning("hw.kv record at offset %d is not a KV entry (%s): skipped",
                        record.offset, exc)  # fmt: skip

    def _wake(self) -> None:
        still: list[tuple[int, asyncio.Future[None]]] = []
        for offset, waiter in self._waiters:
            if waiter.done():
                continue
            if offset < self._position:
                waiter.set_result(None)
            else:
                still.append((offset, waiter))
        self._waiters = still

    def keys(self) -> list[tuple[str, str]]:
        """Every live (namespace, key) this follower knows (for tests and tooling)."""
        return [k for k in self._entries if self.peek(*k)[0]]
