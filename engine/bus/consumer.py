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

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from engine.bus import gaps
from engine.bus.kafka_errors import is_retriable, to_bus_error
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
# This often a consumer checks which partitions hold records beyond its position (below the
# watermark); one that did not move between two checks is stalled (engine.bus.gaps) and gets
# going again (seek) or fails loudly. Per partition: a consumer busy with some partitions can
# be stuck on others.
_STALL_CHECK_S = 5.0
# Checks further apart than this (the caller did not poll meanwhile: a long batch, a database
# outage) prove nothing about progress: the next check starts afresh.
_STALL_CHECK_GAP_S = 3 * _STALL_CHECK_S
# A client replaced because it was stuck, stuck again within this long at the same offset (the
# new one read nothing there either): replacing it once more would only hide the problem, so
# the consumer raises instead.
_REBUILT_RECENTLY_S = 60.0
# Commit errors that mean "this member is not (yet) in the group's current generation".
_MEMBERSHIP = frozenset(
    {
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
    }
)
# One watermark/position/committed request of the stall check.
_STALL_CALL_S = 5.0


# An idle consumer dozes. Tansu answers every fetch only after fetch.wait.max.ms (SERVICES.md),
# so each consumer sends 1000/wait fetches a second even when nothing happens (measured:
# `headwater dev` idle, 5 ms: Tansu 120% of a core). After the doze_after_s setting without a
# record, the assigned partitions stay paused (no fetch) except for a listening window of one
# fetch wait plus this margin every doze_period_ms; the first record after a quiet spell waits
# up to one period, the ones after it travel at full speed again.
_DOZE_LISTEN_MARGIN_S = 0.015


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
        self._listen_s = settings.fetch_wait_max_ms / 1000 + _DOZE_LISTEN_MARGIN_S
        self._last_record_at = time.monotonic()
        self.dozing = False
        self._consumer: Consumer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        # Set while a rebalance handler runs: calls it makes are served by the consumer thread
        # that waits for it (librdkafka refuses a commit from another thread then).
        self._rebalance_work: queue.SimpleQueue[_Work | None] | None = None
        self._pending_error: BusError | None = None
        self.assigned: set[Partition] = set()
        # Monotonic time of the last broker error (the stall check needs fetching, so no doze
        # until a check found nothing behind), and the stall check's memory (_check_stall).
        self._error_at: float | None = None
        self._topics: list[str] = []  # what subscribe() joined (a rebuilt client joins again)
        self._rebuilt_at: float | None = None  # when a stuck client was last replaced
        self._rebuilt_where: dict[Partition, int] = {}  # and where it was stuck
        self._checked_at = 0.0
        self._saturated = False  # a poll since the last check came back full
        self._behind: dict[Partition, int] = {}  # partition -> position seen behind last time
        # Monotonic time of the last error the client reported (never cleared): readers that
        # trust an empty poll only when no error came meanwhile (executor restore).
        self.last_error_at: float | None = None

    async def __aenter__(self) -> AsyncConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self._consumer is not None:
            return
        self._loop = asyncio.get_running_loop()
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
        self._topics = list(topics)
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
        self._awake()

    async def unassign(self) -> None:
        """Stop reading the partitions given to :meth:`assign` (and fetching them)."""
        await self._call("unassign partitions", self._client().unassign)
        self.assigned = set()

    async def consume(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Record]:
        """Up to `max_records` records, waiting at most `timeout_s` for the first one."""
        if self._pending_error is not None:
            pending, self._pending_error = self._pending_error, None
            raise pending
        consumer = self._client()
        doze = self._should_doze()
        if doze:
            # Sleep out the paused part of the period, then listen (resumed) briefly.
            await asyncio.sleep(max(0.0, min(timeout_s, self._doze_period_s) - self._listen_s))
            timeout_s = min(timeout_s, self._listen_s)
        batch: tuple[list[Record], BusError | None] = await self._call(
            "consume", partial(self._consume_blocking, consumer, max_records, timeout_s, doze)
        )
        records, error = batch
        if records:
            self._last_record_at = time.monotonic()
            # A full batch: the caller, not the client, sets the pace (no stall verdict now).
            self._saturated = self._saturated or len(records) >= max_records
        if error is None:
            await self._check_stall(consumer)
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

        try:
            result = await self._call(f"commit offsets of group {self.group_id}", call)
        except BusError as exc:
            cause = exc.__cause__
            error = cause.args[0] if isinstance(cause, KafkaException) and cause.args else None
            if self._forget_old_membership(error):
                return
            raise
        failed = [tp for tp in result or [] if tp.error is not None]
        if failed and all(self._forget_old_membership(tp.error) for tp in failed):
            return
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

    async def _check_stall(self, consumer: Consumer) -> None:
        """Every _STALL_CHECK_S: if a partition's position stays below its watermark over two
        checks, a fresh consumer tells why (engine.bus.gaps): offsets a crashed broker left
        empty are skipped (seek past them), a stuck client is sought to its own position once
        and raises the next time (supervised: the component restarts).

        On Tansu the high watermark is the last batch's base offset + 1 (SERVICES.md): a
        position below it still means at least one unread batch, so the test is safe there."""
        now = time.monotonic()
        since = now - self._checked_at
        if not self.assigned or since < _STALL_CHECK_S:
            return
        self._checked_at = now
        if since > _STALL_CHECK_GAP_S or self._saturated:
            # No verdict on this interval: the caller polled too seldom or took full batches
            # (a busy worker takes one job per free slot), so an unmoved position proves
            # nothing about the client.
            self._behind = {}
            self._saturated = False
            return
        parts = sorted(self.assigned)
        try:
            found = await self._call(
                "check for a stalled consumer", partial(_ends, consumer, parts)
            )
        except BusError as exc:
            log.warning("consumer %s: stall check failed: %s", self.group_id, exc)
            return  # the broker is still away: check again later
        behind = {p: (pos, high) for p, pos, high in found if pos < high}
        if behind and self.dozing:
            # Records wait but the listening windows were too short for this broker's fetch
            # round trip (a loaded or S3-backed Tansu): wake up, and listen longer from now on.
            self._listen_s = min(self._doze_period_s, self._listen_s * 2)
            self._awake()
            log.info(
                "consumer %s: records waited while dozing; listening %.0f ms per period now",
                self.group_id, self._listen_s * 1000,
            )  # fmt: skip
            return
        stalled = {p: v for p, v in behind.items() if self._behind.get(p) == v[0]}
        self._behind = {p: pos for p, (pos, _) in behind.items()}
        if not behind:
            self._error_at = None
        stuck = [p for p, (pos, high) in stalled.items() if await self._unstall(p, pos, high)]
        if stuck:
            await self._rebuild(stuck, stalled)

    def _forget_old_membership(self, error: object) -> bool:
        """Records the replaced client fetched cannot be committed by the new one, which has
        not joined yet or holds another generation: skip the commit (they are read again from
        the last committed offset, and every consumer of the bus deduplicates)."""
        recently = self._rebuilt_at is not None and (
            time.monotonic() - self._rebuilt_at < _REBUILT_RECENTLY_S
        )
        if not recently or not isinstance(error, KafkaError) or error.code() not in _MEMBERSHIP:
            return False
        log.warning("consumer %s: commit after the client was replaced skipped: %s",
                    self.group_id, error)  # fmt: skip
        return True

    async def _unstall(self, partition: Partition, pos: int, high: int) -> bool:
        """Get past a gap at ``pos``; True when there is none and this client is stuck."""
        served = await self.skip_gap(partition, pos, high)
        if served is None:  # a gap up to the watermark: what comes next lands after it
            await self._seek(partition, high)
        self._behind.pop(partition, None)
        return served == pos

    async def _rebuild(
        self, stuck: list[Partition], ends: dict[Partition, tuple[int, int]]
    ) -> None:
        """Replace a client that receives nothing where a fresh one reads (seen after a
        durable Tansu restart; a seek does not wake it): close it (leaving the group, so the
        revoke handlers run as for any rebalance) and join again with a new one. Stuck again
        within _REBUILT_RECENTLY_S at the same offset (no progress at all): raise (supervised,
        the component restarts)."""
        where = ", ".join(f"{t}[{n}]@{ends[(t, n)][0]} (end {ends[(t, n)][1]})" for t, n in stuck)
        now = time.monotonic()
        recently = self._rebuilt_at is not None and now - self._rebuilt_at < _REBUILT_RECENTLY_S
        if recently and any(self._rebuilt_where.get(p) == ends[p][0] for p in stuck):
            raise BusError(
                f"consumer {self.group_id}: a new client is stuck too at {where}, although a "
                "fresh consumer reads there",
                retriable=False,
            )
        log.warning(
            "consumer %s: receives nothing at %s although a fresh consumer reads there; "
            "replacing the client",
            self.group_id, where,
        )  # fmt: skip
        self._rebuilt_at = now
        self._rebuilt_where = {p: ends[p][0] for p in stuck}
        assigned = {p: ends[p][0] if p in ends else None for p in self.assigned}
        old = self._client()
        await self._call(f"close the stuck consumer {self.group_id}", old.close, raw=True)
        self._consumer = await self._run(Consumer, self._config)
        self.assigned = set()
        self._behind = {}
        if self._topics:
            await self.subscribe(self._topics)
        else:  # assigned by hand: the stuck partitions from their position, the others
            await self.assign(assigned)  # from the committed offset, as a restart would

    async def skip_gap(self, partition: Partition, start: int, end: int) -> int | None:
        """For a reader of ``partition`` that receives nothing at ``start`` although the end
        is ``end``: the first offset in ``[start, end)`` a fresh consumer reads (``start``
        itself when this client is the one stuck), after seeking there; None when there is
        none (those offsets are a gap)."""
        topic, number = partition
        try:
            served = await asyncio.to_thread(
                gaps.next_served, self._bootstrap, self._config["fetch.wait.max.ms"], topic,
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
            await self._seek(partition, served)
        return served

    async def _seek(self, partition: Partition, offset: int) -> None:
        tp = TopicPartition(partition[0], partition[1], offset)
        await self._call(
            f"seek {partition[0]}[{partition[1]}] to {offset}", partial(self._client().seek, tp)
        )

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
        return time.monotonic() - self._last_record_at > self._doze_after_s

    def _awake(self) -> None:
        """A new assignment is read at once, not after a doze period."""
        self._last_record_at = time.monotonic()

    def _consume_blocking(
        self, consumer: Consumer, max_records: int, timeout_s: float, doze: bool = False
    ) -> tuple[list[Record], BusError | None]:
        if doze or self.dozing:
            # Dozing: fetch during this poll only. Awake again: fetch from now on.
            self.dozing = doze
            consumer.resume(consumer.assignment())
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
                append(
                    Record(
                        m.topic() or "",
                        m.partition() or 0,
                        m.offset() or 0,
                        m.key(),
                        m.value(),
                        m.headers(),  # type: ignore[arg-type]
                        m.timestamp()[1],
                    )
                )
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

    def _rebalance(self, kind: str, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Runs on the consumer thread, inside consume()/close().
        parts = [(tp.topic, tp.partition) for tp in partitions]
        if kind == "assign":
            self.assigned.update(parts)
            self._awake()
        else:
            self.assigned.difference_update(parts)
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


def _ends(consumer: Consumer, parts: list[Partition]) -> list[tuple[Partition, int, int]]:
    """(partition, where reading goes on, high watermark) of each partition: the position,
    else the committed offset, else the low watermark (blocking, on the consumer thread)."""
    tps = [TopicPartition(t, p) for t, p in parts]
    positions = {(tp.topic, tp.partition): tp.offset for tp in consumer.position(tps)}
    unknown = [TopicPartition(t, p) for (t, p), o in positions.items() if o < 0]
    if unknown:
        for tp in consumer.committed(unknown, timeout=_STALL_CALL_S):
            positions[(tp.topic, tp.partition)] = tp.offset
    out = []
    for (topic, number), pos in positions.items():
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, number), timeout=_STALL_CALL_S, cached=False
        )
        out.append(((topic, number), pos if pos >= 0 else low, high))
    return out
