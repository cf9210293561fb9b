"""Async producer over confluent-kafka: every record is acknowledged or fails loudly.

``await producer.produce(topic, key, value)`` returns once the broker acknowledged the record
(acks=all; idempotence is a setting, see AsyncProducer) and raises :class:`DeliveryError`
naming topic, key and reason when it was not. Nothing is dropped silently: records still in
flight when the producer closes fail with DeliveryError too.

Threads: ``Producer.produce`` only enqueues (it never waits on the network), so it is called
on the event loop. A dedicated poll thread serves librdkafka's delivery callbacks; the callbacks
(which can also run inside ``flush`` in an executor thread) push results onto a deque and wake
the loop at most once per batch with ``call_soon_threadsafe``, because one wake-up per record
costs more than the record at 100k records/s. ``produce_batch`` goes further for callers that
only need "everything is stored": one future per batch instead of one per record.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from engine.bus.acks import BatchAck
from engine.bus.kafka_errors import to_bus_error
from engine.bus.nudge import NUDGES
from engine.errors import BusError, DeliveryError
from engine.settings import KafkaSettings

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes | str | None]]

# While records are in flight the poll thread polls in slices of this length (a delivery
# callback ends a slice at once). With nothing in flight it sleeps until a record is produced
# or close() is called, waking every _IDLE_POLL_S to serve librdkafka's error events: an
# idle process had one poll thread per producer waking 10 times a second for nothing.
_POLL_INTERVAL_S = 0.1
_IDLE_POLL_S = 5.0
# librdkafka's local queue is full: wait this long for the poll thread to drain acks, then retry.
_QUEUE_FULL_BACKOFF_S = 0.005
# close() waits this long for in-flight records before failing them.
_CLOSE_FLUSH_S = 10.0


class Delivered(NamedTuple):
    """Where the broker stored an acknowledged record (a tuple: made once per record)."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class OutRecord:
    """A record to produce with :meth:`AsyncProducer.produce_many`."""

    topic: str
    key: bytes | str | None
    value: bytes | None
    headers: Headers | None = None


class AsyncProducer:
    """One producer per component. Use ``async with AsyncProducer(settings) as p``."""

    def __init__(self, settings: KafkaSettings, **overrides: Any) -> None:
        """`overrides` are extra librdkafka settings (dotted names), e.g. for tests."""
        self._bootstrap = settings.bootstrap_servers
        self._config: dict[str, Any] = {
            **settings.client_config(),  # bootstrap.servers, client.id, TLS/SASL
            # Idempotence is off unless asked for (see KafkaSettings.idempotent_producer): a
            # durable Tansu killed mid-produce keeps the batch's sequence numbers but not the
            # batch, answers the retry DUPLICATE_SEQUENCE_NUMBER, and librdkafka reports the
            # lost records as delivered (with offset -1). Without it a retry is written again:
            # at-least-once, which every consumer here deduplicates. One request in flight
            # keeps a partition's records in order across retries (measured: no slower).
            "enable.idempotence": settings.idempotent_producer,
            "max.in.flight.requests.per.connection": 5 if settings.idempotent_producer else 1,
            "acks": "all",
            "linger.ms": settings.linger_ms,
            "message.timeout.ms": settings.delivery_timeout_ms,
            "error_cb": self._on_error,
            **overrides,
        }
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._work = threading.Event()  # wakes an idle poll thread: records to serve, or close
        self._done: collections.deque[tuple[asyncio.Future[Delivered], Any, Any]]
        self._done = collections.deque()
        self._drain_scheduled = False
        self._inflight: set[asyncio.Future[Delivered]] = set()
        self._batches: set[BatchAck] = set()
        self._fatal: BusError | None = None

    async def __aenter__(self) -> AsyncProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self._producer is not None:
            return
        self._loop = asyncio.get_running_loop()
        try:
            self._producer = Producer(self._config)
        except KafkaException as exc:
            raise to_bus_error(exc, "create producer", bootstrap=self._bootstrap) from exc
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._poll_forever, name="headwater-producer-poll", daemon=True
        )
        self._thread.start()

    # ---------------------------------------------------------------------------- produce

    async def produce(
        self,
        topic: str,
        key: bytes | str | None,
        value: bytes | None,
        headers: Headers | None = None,
    ) -> Delivered:
        """Produce one record and wait for the broker's acknowledgement."""
        return await (await self.enqueue(topic, key, value, headers))

    async def produce_many(self, records: Iterable[OutRecord]) -> list[Delivered]:
        """Produce records in order and wait for every acknowledgement.

        Records with the same topic and key keep their order. If a record cannot even be
        enqueued, no later record is sent; either way every record already handed over is
        awaited (none is left unaccounted for) and the first failure is raised, with the
        number of failures in its context.
        """
        futures: list[asyncio.Future[Delivered]] = []
        refused: BusError | None = None
        for r in records:
            try:
                while True:
                    try:
                        futures.append(self._enqueue_nowait(r.topic, r.key, r.value, r.headers))
                        break
                    except BufferError:
                        await asyncio.sleep(_QUEUE_FULL_BACKOFF_S)
            except BusError as exc:
                refused = exc
                break
        delivered: list[Delivered] = []
        failures: list[BusError] = []
        for future in futures:  # in order; cheaper than gather's callback per future
            try:
                delivered.append(await future)
            except BusError as exc:
                failures.append(exc)
        if refused is not None:  # it came after every enqueued record
            failures.append(refused)
        if failures:
            first = failures[0]
            first.context["failed"] = len(failures)
            raise first
        return delivered

    async def produce_batch(self, records: Iterable[OutRecord]) -> int:
        """Like :meth:`produce_many` without the per-record answers: produce in order and
        wait until the broker acknowledged every record; returns how many there were.

        One future and one wake-up for the whole batch instead of one per record (see
        :mod:`engine.bus.acks`): for callers that only need "all stored", such as the
        executor, which commits its input offsets after its output. Failures as in
        produce_many: if a record cannot even be enqueued, no later record is sent; every
        record handed over settles first, then the first failure is raised with the number
        of failures in its context."""
        producer, loop = self._ready()
        batch = BatchAck(loop, self._failure)
        ack, produce = batch.ack, producer.produce
        self._batches.add(batch)
        refused: BusError | None = None
        dozing = NUDGES.topics  # consumers of this process to wake (engine.bus.nudge)
        try:
            try:
                for r in records:
                    if dozing and (self._bootstrap, r.topic) in dozing:
                        NUDGES.produced(self._bootstrap, r.topic)
                        dozing = NUDGES.topics
                    while True:
                        try:
                            produce(r.topic, r.value, r.key, on_delivery=ack, headers=r.headers)
                            break
                        except BufferError:  # queue full: the poll thread drains it
                            self._poke()
                            await asyncio.sleep(_QUEUE_FULL_BACKOFF_S)
                    batch.sent()
            except (KafkaException, TypeError, ValueError) as exc:
                refused = _delivery_error(exc, r.topic, r.key, self._bootstrap)
            self._poke()
            batch.seal()
            try:
                count = await batch.future
            except BusError as exc:
                if refused is not None:
                    exc.context["failed"] = int(exc.context.get("failed", 1)) + 1
                raise
        finally:
            self._batches.discard(batch)
        if refused is not None:
            refused.context["failed"] = 1
            raise refused
        return count

    async def enqueue(
        self,
        topic: str,
        key: bytes | str | None,
        value: bytes | None,
        headers: Headers | None = None,
    ) -> asyncio.Future[Delivered]:
        """Hand a record to librdkafka and return the future of its acknowledgement.

        For callers that pipeline: enqueue many, await the futures later. Awaiting this
        coroutine only waits when librdkafka's local queue is full.
        """
        while True:
            try:
                return self._enqueue_nowait(topic, key, value, headers)
            except BufferError:
                # Queue full: back-pressure instead of an error; the poll thread drains it.
                await asyncio.sleep(_QUEUE_FULL_BACKOFF_S)

    def _enqueue_nowait(
        self,
        topic: str,
        key: bytes | str | None,
        value: bytes | None,
        headers: Headers | None,
    ) -> asyncio.Future[Delivered]:
        # The hot path: plain calls, no coroutine per record. Raises BufferError when full.
        producer, loop = self._ready()
        future: asyncio.Future[Delivered] = loop.create_future()
        try:
            producer.produce(
                topic, value, key, on_delivery=partial(self._on_delivery, future), headers=headers
            )
        except (KafkaException, TypeError, ValueError) as exc:
            raise _delivery_error(exc, topic, key, self._bootstrap) from exc
        self._poke()
        self._inflight.add(future)
        if NUDGES.topics:  # consumers of this process to wake (engine.bus.nudge)
            NUDGES.produced(self._bootstrap, topic)
        return future

    async def flush(self, timeout_s: float) -> None:
        """Wait until every enqueued record is acknowledged or failed; BusError if some are
        still queued after `timeout_s` seconds (they stay in flight and settle later)."""
        producer, _ = self._ready()
        remaining = await asyncio.to_thread(producer.flush, timeout_s)
        if remaining:
            raise BusError(
                f"{remaining} records still unacknowledged after flushing for {timeout_s} s "
                f"to {self._bootstrap}",
                retriable=True,
                remaining=remaining,
            )

    async def close(self) -> None:
        """Flush, stop the poll thread and fail whatever is still in flight."""
        producer = self._producer
        if producer is None:
            return
        try:
            await asyncio.to_thread(_flush_then_purge, producer)
        finally:
            self._stop.set()
            self._work.set()
            if self._thread is not None:
                await asyncio.to_thread(self._thread.join)
            self._producer = None
            self._drain()
            self._fail_inflight(
                DeliveryError(
                    "producer closed before the broker acknowledged the record", retriable=True
                )
            )

    # --------------------------------------------------------------------------- internals

    def _ready(self) -> tuple[Producer, asyncio.AbstractEventLoop]:
        if self._fatal is not None:
            raise self._fatal
        if self._producer is None or self._loop is None:
            raise BusError("producer is not started (use `async with AsyncProducer(...)`)")
        return self._producer, self._loop

    def _fail_inflight(self, error: BusError) -> None:
        for future in self._inflight:
            if not future.done():
                future.set_exception(error)
        self._inflight.clear()
        for batch in self._batches:
            batch.fail(error)

    def _failure(self, err: KafkaError, topic: str, key: bytes | str | None) -> BusError:
        return _delivery_error(err, topic, key, self._bootstrap)

    def _poke(self) -> None:
        """Wake the poll thread if it sleeps: records were handed to librdkafka."""
        if not self._work.is_set():
            self._work.set()

    def _poll_forever(self) -> None:
        producer = self._producer
        assert producer is not None
        try:
            while not self._stop.is_set():
                producer.poll(_POLL_INTERVAL_S)
                # len() counts records queued or in flight and callbacks not yet served. Clear
                # before the second look: a record produced after it sets the event again.
                if len(producer) == 0:
                    self._work.clear()
                    if len(producer) == 0 and not self._stop.is_set():
                        self._work.wait(_IDLE_POLL_S)
        except BaseException as exc:
            # Without this thread no acknowledgement would ever arrive: make every waiting
            # and later call fail instead of hanging.
            log.exception("Kafka producer poll thread crashed")
            self._fatal = BusError(f"producer poll thread crashed: {exc!r}", retriable=False)
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self._fail_inflight, self._fatal)
            raise

    def _on_delivery(
        self, future: asyncio.Future[Delivered], err: KafkaError | None, msg: Message
    ) -> None:
        # Runs in the poll thread (or a flush thread): only hand over, never touch the future.
        self._done.append((future, err, msg))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            loop = self._loop
            if loop is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(self._drain)
                except RuntimeError:  # the loop closed meanwhile: nobody is waiting any more
                    pass

    def _drain(self) -> None:
        # Reset the flag before draining: a callback that sees it False schedules a new drain,
        # one that sees it True appended before this loop ran and will be drained here.
        self._drain_scheduled = False
        done = self._done
        while done:
            future, err, msg = done.popleft()
            self._inflight.discard(future)
            if future.done():  # the caller was cancelled; the record itself went out
                continue
            if err is None:
                offset = msg.offset()
                if offset is None or offset < 0:
                    # librdkafka's answer to DUPLICATE_SEQUENCE_NUMBER: "already stored",
                    # which a crashed Tansu says of batches it lost (see __init__).
                    log.error(
                        "Kafka acknowledged a record to %s without an offset: the broker "
                        "took it for a duplicate and may not have stored it",
                        msg.topic(),
                    )
                future.set_result(
                    Delivered(msg.topic(), msg.partition(), -1 if offset is None else offset)
                )
            else:
                future.set_exception(
                    _delivery_error(err, msg.topic() or "?", msg.key(), self._bootstrap)
                )

    def _on_error(self, err: KafkaError) -> None:
        # Client-level errors (broker down, ...) are logged; librdkafka keeps retrying and the
        # affected records fail via their callback after delivery_timeout_ms. Fatal errors
        # (idempotence violated) make the producer unusable: every later call raises.
        if err.fatal():
            self._fatal = to_bus_error(err, "producer", bootstrap=self._bootstrap)
            log.error("Kafka producer fatal error: %s", err)
        else:
            log.warning("Kafka producer error: %s", err)


def _flush_then_purge(producer: Producer) -> None:
    if producer.flush(_CLOSE_FLUSH_S):
        # Fail the rest through their callbacks now; left queued, librdkafka would keep
        # retrying them for delivery_timeout_ms and block whoever destroys the client.
        producer.purge(in_queue=True, in_flight=True, blocking=False)
        producer.poll(0)


def _delivery_error(
    exc: BaseException | KafkaError, topic: str, key: bytes | str | None, bootstrap: str
) -> BusError:
    shown = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
    return to_bus_error(
        exc,
        f"produce to {topic} (key {shown!r})",
        cls=DeliveryError,
        bootstrap=bootstrap,
        topic=topic,
        key=shown,
    )
