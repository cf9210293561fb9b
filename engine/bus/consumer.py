"""Async consumer over confluent-kafka, with manual, checked offset commits.

Threads: every call into the confluent ``Consumer`` runs on one dedicated thread (a
single-worker executor), so the event loop never blocks on a poll and the client is never used
from two threads at once. Rebalance callbacks fire on that thread inside ``consume``; they run
the caller's async handler on the loop and wait for it, so an executor can restore state on
assign and flush/commit on revoke *before* the partitions move. While a handler runs, the
consumer thread is busy, so :meth:`AsyncConsumer.commit` goes through another thread then.

Offsets are committed only when the caller says so (``enable.auto.commit=false``); a commit
that the broker refuses raises :class:`BusError`, never passes silently.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from engine.bus import gaps
from engine.bus.kafka_errors import is_retriable, to_bus_error
from engine.bus.nudge import NUDGES
from engine.bus.stall import StallCheck
from engine.errors import BusError
from engine.settings import KafkaSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
Partition = tuple[str, int]
RebalanceHandler = Callable[[list[Partition]], Awaitable[None]]

# A rebalance handler (state restore on assign, flush on revoke) must finish well within the
# group's max.poll.interval.ms (5 min default), or the broker evicts the member mid-handler.
_REBALANCE_HANDLER_S = 60.0
# close() leaves the group; give it time to commit and hand partitions over, not forever.
_CLOSE_S = 30.0
# An idle consumer dozes. Tansu answers every fetch only after fetch.wait.max.ms (SERVICES.md),
# so each consumer sends 1000/wait fetches a second even when nothing happens (measured:
# `headwater dev` idle, 5 ms: Tansu 120% of a core). After the doze_after_s setting without a
# record, the assigned partitions stay paused (no fetch) except for a listening window of one
# fetch wait plus this margin every doze_period_ms; the first record after a quiet spell waits
# up to one period, the ones after it travel at full speed again. A producer of this process
# that writes to a dozing consumer's topic wakes it at once (engine.bus.nudge), so consumers
# of Headwater's own topics may listen only every nudged_doze_period_ms where every producer
# of them is in this process (headwater dev).
_DOZE_LISTEN_MARGIN_S = 0.015
# librdkafka sends no fetch for a resumed partition until the leader's broker thread wakes up
# on its own, about a second later (measured with confluent-kafka 2.16 on Tansu: 995 ms after
# a pause, 590 ms median when cycling; neither a seek nor any fetch/backoff setting changes
# it), so a listening window of a few ms fetched nothing and the first record after a doze
# waited 0.1-4 s. Any request to that broker wakes its thread, which then fetches at once:
# one watermark request per leader (the leaders looked up once, waiting at most _KICK_S).
_KICK_S = 5.0
# A woken consumer's kick only has to be sent: waiting for its answer (~5-8 ms on Tansu)
# delayed the fetch it wakes, which librdkafka sends meanwhile. Its timeout is expected.
_KICK_WAIT_S = 0.001


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed record, detached from the client."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] | None
    timestamp_ms: int  # producer (or broker) time of the record; -1 when unknown


class AsyncConsumer:
    """A group member. Use ``async with AsyncConsumer(settings, group_id) as c``."""

    def __init__(
        self,
        settings: KafkaSettings,
        group_id: str,
        *,
        on_assign: RebalanceHandler | None = None,
        on_revoke: RebalanceHandler | None = None,
        on_lost: RebalanceHandler | None = None,
        **overrides: Any,
    ) -> None:
        """`on_lost` runs when partitions were taken away without a clean revoke (session
        expired); when it is None, `on_revoke` runs instead. `overrides` are librdkafka
        settings (dotted names)."""
        self.group_id = group_id
        self._bootstrap = settings.bootstrap_servers
        self._request_timeout_s = settings.request_timeout_s
        self._config: dict[str, Any] = {
            **settings.client_config(),  # bootstrap.servers, client.id, TLS/SASL
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": settings.session_timeout_ms,
            "heartbeat.interval.ms": settings.heartbeat_interval_ms,
            "fetch.wait.max.ms": settings.fetch_wait_max_ms,
            "error_cb": self._on_error,
            **overrides,
        }
        self._handlers = {"assign": on_assign, "revoke": on_revoke, "lost": on_lost or on_revoke}
        self._doze_after_s = settings.doze_after_s
        self._doze_period_s = settings.doze_period_ms / 1000
        self._nudged_period_s = settings.nudged_doze_period_ms / 1000
        self._nudged_doze_after_s = settings.nudged_doze_after_s
        self._topic_prefix = settings.topic_prefix
        # A user's own client properties (a Kafka trigger's) come as strings: "5".
        self._fetch_wait_ms = _as_ms(self._config["fetch.wait.max.ms"], settings.fetch_wait_max_ms)
        self._listen_s = self._fetch_wait_ms / 1000 + _DOZE_LISTEN_MARGIN_S
        self._last_record_at = time.monotonic()
        self.dozing = False
        self._listen_at: float | None = None  # while dozing: when the next window opens
        self._woken: asyncio.Event | None = None  # set by a nudge (engine.bus.nudge)
        self._consumer: Consumer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        # Set while a rebalance handler runs: calls it makes are served by the consumer thread
        # that waits for it (librdkafka refuses a commit from another thread then).
        self._rebalance_work: queue.SimpleQueue[_Work | None] | None = None
        self._pending_error: BusError | None = None
        self.assigned: set[Partition] = set()
        # Monotonic time of the last broker error (the stall check needs fetching, so no doze
        # until a check found nothing behind).
        self._error_at: float | None = None
        self._stall = StallCheck(self)
        # Records read patiently for this client (StallCheck), handed out before it fetches
        # again: the client itself is positioned after them.
        self._patient: list[Record] = []
        # Where each partition was last sought: librdkafka reports no position after a seek
        # until a record comes, and the stall check must not take the committed offset then.
        self.sought: dict[Partition, int] = {}
        # Monotonic time of the last error the client reported (never cleared): readers that
        # trust an empty poll only when no error came meanwhile (executor restore).
        self.last_error_at: float | None = None
        # One assigned partition per leader broker, for the resume kick (None: not known).
        self._probes: list[TopicPartition] | None = None

    async def __aenter__(self) -> AsyncConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self._consumer is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._woken = asyncio.Event()
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"headwater-consumer-{self.group_id}"
        )
        try:
            self._consumer = await self._run(Consumer, self._config)
        except KafkaException as exc:
            raise to_bus_error(exc, f"create consumer {self.group_id}") from exc

    async def subscribe(self, topics: list[str]) -> None:
        """Join the group for these topics; partitions arrive via `on_assign` during consume."""
        consumer = self._client()
        await self._call(
            f"subscribe to {', '.join(topics)}",
            partial(
                consumer.subscribe,
                topics,
                on_assign=partial(self._rebalance, "assign"),
                on_revoke=partial(self._rebalance, "revoke"),
                on_lost=partial(self._rebalance, "lost"),
            ),
        )

    async def assign(self, partitions: Mapping[Partition, int | None]) -> None:
        """Read these partitions without group management, from the given offset (None =
        the committed offset, else auto.offset.reset)."""
        tps = [
            TopicPartition(t, p) if o is None else TopicPartition(t, p, o)
            for (t, p), o in partitions.items()
        ]
        await self._call("assign partitions", partial(self._client().assign, tps))
        self.assigned = set(partitions)
        self.sought = {}
        self._probes = None
        self._awake()

    async def unassign(self) -> None:
        """Stop reading the partitions given to :meth:`assign` (and fetching them)."""
        await self._call("unassign partitions", self._client().unassign)
        self.assigned = set()

    async def consume(
        self, max_records: int = 500, timeout_s: float = 1.0, *, until: asyncio.Event | None = None
    ) -> list[Record]:
        """Up to `max_records` records, waiting at most `timeout_s` for the first one.

        Given `until`, a dozing consumer (idle for a while) waits for its next listening
        window, a nudge or `until` instead of `timeout_s`: a loop that only consumes then does
        not spin every `timeout_s` while its process is idle."""
        if self._pending_error is not None:
            pending, self._pending_error = self._pending_error, None
            raise pending
        if self._patient:
            # Read patiently for this client: the client itself is positioned after them, so
            # they go out first, in order, before it fetches again.
            records, self._patient = self._patient[:max_records], self._patient[max_records:]
            self._last_record_at = time.monotonic()
            return records
        consumer = self._client()
        doze = self._should_doze()
        if doze:
            # Sleep out the paused part of the period (a nudge ends it), then listen
            # (resumed) briefly.
            if not await self._doze(timeout_s, until):
                return []
            doze = self._should_doze()
            if doze:
                timeout_s = min(timeout_s, self._listen_s)
        waking = not doze and self._listen_at is not None  # a nudge, an assignment
        if waking:
            self._listen_at = None
            NUDGES.awake(self)
        batch: tuple[list[Record], BusError | None] = await self._call(
            "consume", partial(self._consume_blocking, consumer, max_records, timeout_s, doze)
        )
        records, error = batch
        if records:
            self._last_record_at = time.monotonic()
            if waking or doze:
                # The first records after a doze go out now: a stall check due since the
                # doze (one watermark request per partition, ~50 ms) starts afresh instead.
                self._stall.restart()
        self._stall.polled(len(records), max_records)
        if error is None:
            self._patient += await self._stall.run(consumer)
        if error is not None:
            if not records:
                raise error
            self._pending_error = error  # hand over what was read; raise on the next call
        return records

    async def commit(self, what: Iterable[Record] | Mapping[Partition, int]) -> None:
        """Commit records (everything up to and including each partition's last record) or
        explicit next offsets; raises BusError if the broker refuses any partition."""
        if isinstance(what, Mapping):
            offsets = dict(what)
        else:
            offsets = {}
            for r in what:
                key = (r.topic, r.partition)
                offsets[key] = max(offsets.get(key, 0), r.offset + 1)
        if not offsets:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        consumer = self._client()

        def call() -> list[TopicPartition]:
            return consumer.commit(offsets=tps, asynchronous=False)

        result = await self._call(f"commit offsets of group {self.group_id}", call)
        failed = [tp for tp in result or [] if tp.error is not None]
        for tp in failed[:1]:
            raise to_bus_error(
                tp.error or KafkaError(KafkaError._FAIL),
                f"commit offset {tp.offset} of {tp.topic}[{tp.partition}] ({self.group_id})",
                failed=[(f.topic, f.partition) for f in failed],
            )

    async def committed(self, partitions: Iterable[Partition]) -> dict[Partition, int | None]:
        """The group's committed next offset per partition (None if nothing committed)."""
        consumer = self._client()
        tps = [TopicPartition(t, p) for t, p in partitions]
        fetch = partial(consumer.committed, tps, timeout=self._request_timeout_s)
        result = await self._call("read committed offsets", fetch)
        return {(tp.topic, tp.partition): tp.offset if tp.offset >= 0 else None for tp in result}

    async def close(self) -> None:
        """Leave the group (running `on_revoke`, which may still commit) and release the
        client; a revoke handler that failed meanwhile is raised here."""
        consumer = self._consumer
        if consumer is None:
            return
        try:
            await asyncio.wait_for(
                self._call(f"close consumer {self.group_id}", consumer.close, raw=True), _CLOSE_S
            )
        except TimeoutError:
            # The broker is gone: the group will expire us after the session timeout anyway.
            log.warning("consumer %s: close did not finish in %s s", self.group_id, _CLOSE_S)
        finally:
            self._consumer = None
            if self._thread is not None:
                self._thread.shutdown(wait=False)
            self.assigned.clear()
        if self._pending_error is not None:
            pending, self._pending_error = self._pending_error, None
            raise pending

    # --------------------------------------------------------------------------- internals

    async def read_patiently(self, partition: Partition, start: int, end: int) -> list[Record]:
        """The records from ``start`` on (up to ``end``, within a budget) read with a patient
        fetch wait, for a reader of ``partition`` that receives nothing at ``start`` although
        the broker serves it (:meth:`skip_gap` returned ``start``); this client is sought past
        them. The caller hands them on as if this client had read them."""
        topic, number = partition
        messages = await asyncio.to_thread(
            gaps.read_patiently, self._config, topic, number, start, end, self.group_id
        )
        records = [_record(m) for m in messages]
        if records:
            await self.seek(partition, records[-1].offset + 1)
        log.warning(
            "consumer %s: %s[%d] from offset %d is served only to patient fetches (a broker "
            "reading back from storage): %d records read with a %d ms fetch wait (if this "
            "repeats, raise HEADWATER_KAFKA__FETCH_WAIT_MAX_MS)",
            self.group_id, topic, number, start, len(records), gaps.PATIENT_FETCH_WAIT_MS,
        )  # fmt: skip
        return records

    async def call_client(self, what: str, fn: Callable[[], T]) -> T:
        """Run a blocking call of the client on its thread (for StallCheck)."""
        return await self._call(what, fn)

    def listen_longer(self) -> None:
        """Records waited while dozing: the listening windows were too short for this
        broker's fetch round trip (a loaded or S3-backed Tansu). Wake up, and listen longer
        from now on."""
        self._listen_s = min(self._doze_period_s, self._listen_s * 2)
        self._awake()
        log.info("consumer %s: records waited while dozing; listening %.0f ms per period now",
                 self.group_id, self._listen_s * 1000)  # fmt: skip

    def errors_over(self) -> None:
        """No partition is behind: dozing may resume despite earlier broker errors."""
        self._error_at = None

    async def skip_gap(self, partition: Partition, start: int, end: int) -> int | None:
        """For a reader of ``partition`` that receives nothing at ``start`` although the end
        is ``end``: the first offset in ``[start, end)`` a fresh consumer reads (``start``
        itself when this client is the one stuck), after seeking there; None when there is
        none (those offsets are a gap)."""
        topic, number = partition
        try:
            served = await asyncio.to_thread(
                gaps.next_served, self._config, self._fetch_wait_ms, topic,
                number, start, end, self.group_id,
            )  # fmt: skip
        except ValueError as exc:
            raise BusError(f"consumer {self.group_id}: {exc}", retriable=False) from None
        skipped_to = end if served is None else served
        if skipped_to != start:
            log.warning(
                "consumer %s: offsets %d..%d of %s[%d] hold nothing (a broker crash reserved "
                "them and stored nothing); skipping them",
                self.group_id, start, skipped_to - 1, topic, number,
            )  # fmt: skip
        if served is not None:
            await self.seek(partition, served)
        return served

    async def seek(self, partition: Partition, offset: int) -> None:
        tp = TopicPartition(partition[0], partition[1], offset)
        await self._call(
            f"seek {partition[0]}[{partition[1]}] to {offset}", partial(self._client().seek, tp)
        )
        self.sought[partition] = offset

    def _client(self) -> Consumer:
        if self._consumer is None:
            raise BusError(f"consumer {self.group_id} is not started or already closed")
        return self._consumer

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._thread is None:
            raise BusError(f"consumer {self.group_id} is not started")
        work = self._rebalance_work
        if work is not None:
            # Called from a rebalance handler: the consumer thread is waiting for us, so hand
            # the call to it instead of queueing behind it in the executor (a deadlock).
            result: concurrent.futures.Future[T] = concurrent.futures.Future()
            work.put((partial(fn, *args), result))
            return await asyncio.wrap_future(result)
        return await asyncio.get_running_loop().run_in_executor(self._thread, partial(fn, *args))

    async def _call(self, what: str, fn: Callable[[], T], *, raw: bool = False) -> T:
        try:
            return await self._run(fn)
        except KafkaException as exc:
            raise to_bus_error(exc, what, bootstrap=self._bootstrap) from exc
        except RuntimeError as exc:  # confluent raises this on a closed consumer
            if raw:
                raise
            raise BusError(f"{what} failed: {exc}", retriable=False) from exc

    def _should_doze(self) -> bool:
        if (
            not self._doze_after_s
            or not self.assigned
            or self._error_at is not None  # the stall check needs the client fetching
            or self._rebalance_work is not None
        ):
            return False
        after = self._doze_after_s
        if self._nudged_doze_after_s and self._nudged_period_s and self._internal():
            after = min(after, self._nudged_doze_after_s)
        return time.monotonic() - self._last_record_at > after

    def _internal(self) -> bool:
        """Every assigned topic is one of Headwater's own (its writers nudge, in dev)."""
        return all(topic.startswith(self._topic_prefix) for topic, _ in self.assigned)

    def _awake(self) -> None:
        """A new assignment is read at once, not after a doze period."""
        self._last_record_at = time.monotonic()

    def wake(self) -> None:
        """A producer of this process wrote to one of our topics (any thread): fetch now."""
        loop, woken = self._loop, self._woken
        if loop is None or woken is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._woken_up, woken)
        except RuntimeError:  # the loop closed meanwhile
            pass

    def _woken_up(self, woken: asyncio.Event) -> None:
        self._awake()
        woken.set()

    def _doze_period_of(self) -> float:
        if self._nudged_period_s > self._doze_period_s and self._internal():
            return self._nudged_period_s
        return self._doze_period_s

    async def _doze(self, timeout_s: float, until: asyncio.Event | None) -> bool:
        """Wait for this period's listening window or a nudge (True: fetch now), at most
        `timeout_s` or, given `until`, until it is set (False: nothing fetched this call)."""
        now = time.monotonic()
        woken = self._woken
        assert woken is not None
        if self._listen_at is None:  # a doze begins: stop fetching now, not at the window
            self._listen_at = now + self._doze_period_of() - self._listen_s
            woken.clear()
            NUDGES.dozing(self._bootstrap, {topic for topic, _ in self.assigned}, self)
            await self._call("pause partitions", self._pause_all)
        wait = self._listen_at - now
        if wait > 0:
            waits = [asyncio.ensure_future(woken.wait())]
            if until is not None:
                waits.append(asyncio.ensure_future(until.wait()))
            try:
                limit = wait if until is not None else min(wait, timeout_s)
                await asyncio.wait(waits, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
            if not woken.is_set():
                if until is None and wait > timeout_s:
                    return False  # the caller's timeout came before the window
                if until is not None and until.is_set():
                    return False
        self._listen_at = time.monotonic() + self._doze_period_of()
        return True

    def _pause_all(self) -> None:
        consumer = self._client()
        consumer.pause(consumer.assignment())
        self.dozing = True

    def _consume_blocking(
        self, consumer: Consumer, max_records: int, timeout_s: float, doze: bool = False
    ) -> tuple[list[Record], BusError | None]:
        if doze or self.dozing:
            # Dozing: fetch during this poll only. Awake again: fetch from now on.
            self.dozing = doze
            assignment = consumer.assignment()
            consumer.resume(assignment)
            # Woken (a nudge): it stays awake and polls for the caller's whole timeout, so
            # the kick need not be answered. A listening window polls only briefly: its
            # fetch gets the kick's round trip on top (a slow broker, e.g. a durable Tansu
            # reading back from S3, may not answer within the window alone).
            self._kick(consumer, assignment, _KICK_S if doze else _KICK_WAIT_S)
        # librdkafka's consume(n, timeout) waits for the whole timeout unless n records come,
        # which would add up to `timeout_s` to every hop: wait only for the first record, then
        # take what is already buffered without waiting.
        first = consumer.poll(timeout_s)
        if first is None:
            if doze:
                consumer.pause(consumer.assignment())
            return [], None
        self.dozing = False  # resumed, and it stays so while records come
        messages: list[Message] = [first]
        if max_records > 1:
            messages += consumer.consume(max_records - 1, 0)
        records: list[Record] = []
        append = records.append
        for m in messages:
            err = m.error()
            if err is None:
                append(_record(m))
                continue
            if err.code() == KafkaError._PARTITION_EOF:
                continue
            if is_retriable(err):
                # librdkafka recovers from these itself (broker restart, leader move); if it
                # does not, the stall check in consume() notices.
                self._error_at = self.last_error_at = time.monotonic()
                log.warning("consumer %s: %s", self.group_id, err)
                continue
            return records, to_bus_error(
                err, f"consume {m.topic()}[{m.partition()}] ({self.group_id})"
            )
        return records, None

    def _kick(self, consumer: Consumer, partitions: list[TopicPartition], wait_s: float) -> None:
        """Make librdkafka fetch resumed partitions now (see _KICK_S): one watermark request
        per leader broker wakes that broker's thread. On the consumer thread; a failure only
        leaves the fetch to librdkafka's own pace."""
        try:
            if self._probes is None:
                metadata = consumer.list_topics(timeout=_KICK_S)
                probes: dict[int, TopicPartition] = {}
                for tp in partitions:
                    topic = metadata.topics.get(tp.topic)
                    part = topic.partitions.get(tp.partition) if topic is not None else None
                    if part is not None and part.leader >= 0:
                        probes.setdefault(part.leader, TopicPartition(tp.topic, tp.partition))
                self._probes = list(probes.values())
            for probe in self._probes:
                try:
                    consumer.get_watermark_offsets(probe, timeout=wait_s, cached=False)
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError._TIMED_OUT:
                        raise
        except (KafkaException, RuntimeError) as exc:
            self._probes = None
            log.debug("consumer %s: resume kick failed: %s", self.group_id, exc)

    def _rebalance(self, kind: str, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Runs on the consumer thread, inside consume()/close().
        parts = [(tp.topic, tp.partition) for tp in partitions]
        self._probes = None  # leaders of the new assignment
        if kind == "assign":
            self.assigned.update(parts)
            self._awake()
        else:
            self.assigned.difference_update(parts)
            gone = set(parts)
            self._patient = [r for r in self._patient if (r.topic, r.partition) not in gone]
            self._stall.forget(parts)
            for part in parts:
                self.sought.pop(part, None)
        handler = self._handlers[kind]
        if handler is None or self._loop is None or self._loop.is_closed():
            return
        work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._rebalance_work = work
        future = asyncio.run_coroutine_threadsafe(_call_handler(handler, parts), self._loop)
        future.add_done_callback(lambda _: work.put(None))
        try:
            _serve_until_done(work, _REBALANCE_HANDLER_S)
            future.result()
        except (Exception, concurrent.futures.CancelledError) as exc:  # surfaced by consume()
            future.cancel()
            log.error("consumer %s: %s handler failed: %r", self.group_id, kind, exc)
            self._pending_error = BusError(
                f"the on_{kind} handler of consumer {self.group_id} failed for {parts}: {exc!r}",
                retriable=False,
                partitions=parts,
            )
        finally:
            self._rebalance_work = None

    def _on_error(self, err: KafkaError) -> None:
        # _error_at is read by consume() for the stall check, last_error_at by readers.
        self._error_at = self.last_error_at = time.monotonic()
        if err.fatal():
            self._pending_error = to_bus_error(
                err, f"consumer {self.group_id}", bootstrap=self._bootstrap
            )
        log.warning("consumer %s: %s", self.group_id, err)


def _record(m: Message) -> Record:
    return Record(
        m.topic() or "",
        m.partition() or 0,
        m.offset() or 0,
        m.key(),
        m.value(),
        m.headers(),  # type: ignore[arg-type]
        m.timestamp()[1],
    )


async def _call_handler(handler: RebalanceHandler, parts: list[Partition]) -> None:
    await handler(parts)


_Work = tuple[Callable[[], Any], "concurrent.futures.Future[Any]"]


def _serve_until_done(work: queue.SimpleQueue[_Work | None], limit_s: float) -> None:
    """Run the calls a rebalance handler sends until it signals the end (None)."""
    deadline = time.monotonic() + limit_s
    while True:
        try:
            item = work.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"rebalance handler still running after {limit_s} s") from None
        if item is None:
            return
        fn, result = item
        if result.set_running_or_notify_cancel():
            try:
                result.set_result(fn())
            except BaseException as exc:  # handed to the awaiting handler, not lost
                result.set_exception(exc)


def _as_ms(value: Any, default: int) -> int:
    """A client property in milliseconds (an int, or a string from a user's properties)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
