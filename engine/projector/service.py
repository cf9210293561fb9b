"""The projector: hw.events, hw.logs, hw.flows (and hw.trigger-state) -> PostgreSQL.

One consumer-group member per process; partitions spread over replicas. For each polled batch:
build deduplicated rows (pure, :mod:`engine.projector.rows`), write them in ONE database
transaction together with the projector's status row, and only after that commit the Kafka
offsets. A crash between the two redelivers the batch, which the seq-guarded upserts absorb.

The consumer group id lives in the database (``projector_status.group_id``): offsets describe
how far *this* read model got, so a fresh or dropped database gets a fresh group and is rebuilt
from the beginning of the topics (:meth:`Projector.rebuild` is drop + migrate + run).

Lag is event age (now minus the record's own timestamp, measured after the database commit),
which is right on Tansu, whose high watermark is not (SERVICES.md).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from engine.bus.consumer import AsyncConsumer, Record
from engine.bus.topics import topics_for
from engine.errors import BusError, DatabaseError
from engine.projector.rows import RowBatch, build_batch
from engine.projector.schema import drop_read_model, migrate
from engine.projector.writer import SecretCache, write_batch
from engine.settings import KafkaSettings, ProjectorSettings
from engine.stores.secrets import SecretMasker
from schemas.envelope import new_id

log = logging.getLogger(__name__)

# Connection errors are retried (the batch is not committed, so nothing is lost) with
# exponential back-off between these bounds: a restarting Postgres is back within seconds.
_DB_RETRY_FIRST_S = 0.2
_DB_RETRY_MAX_S = 5.0
# Retriable consumer errors (broker restarting, rebalance) back off from here up to the max.
_BUS_RETRY_FIRST_S = 0.1
# Connecting to Postgres: fail start-up after this long rather than hang.
_CONNECT_TIMEOUT_S = 10.0
# How many recent event ages the lag percentiles are computed over.
_LAG_WINDOW = 20_000

_STATUS_SQL = """
INSERT INTO projector_status (name, group_id, last_batch_at, last_record_ts, lag_ms,
    records_total)
VALUES ($1, $2, now(), $3, $4, $5)
ON CONFLICT (name) DO UPDATE SET last_batch_at = now(),
    last_record_ts = GREATEST(projector_status.last_record_ts, excluded.last_record_ts),
    lag_ms = excluded.lag_ms,
    records_total = projector_status.records_total + excluded.records_total
"""

_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    ConnectionError,
    OSError,
)


@dataclass(slots=True)
class ProjectorStats:
    """What /health and /metrics report about this projector process."""

    records: int = 0
    batches: int = 0
    poison: int = 0
    last_lag_ms: float | None = None
    last_batch_monotonic: float | None = None


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def connect(dsn: str) -> Any:
    """One asyncpg connection, with library errors turned into DatabaseError."""
    try:
        return await asyncpg.connect(dsn, timeout=_CONNECT_TIMEOUT_S)
    except (*_CONNECTION_ERRORS, asyncpg.PostgresError, TimeoutError) as exc:
        raise DatabaseError(
            f"cannot connect to the read-model database: {exc}; is PostgreSQL up "
            "(make services-up) and HEADWATER_POSTGRES__DSN right?",
            retriable=True,
        ) from exc


class Projector:
    """Use ``await p.start()`` then ``await p.run(stop)``; ``await p.close()`` at the end."""

    def __init__(
        self,
        kafka: KafkaSettings,
        settings: ProjectorSettings,
        dsn: str,
        *,
        name: str = "default",
        masker: SecretMasker | None = None,
    ) -> None:
        self._kafka = kafka
        self.masker = masker  # secret values masked in the rows (engine.stores.secrets)
        self._settings = settings
        self._dsn = dsn
        self.name = name
        topics = topics_for(kafka)
        self._roles = {
            topics.events.name: "events",
            topics.logs.name: "logs",
            topics.flows.name: "flows",
            topics.trigger_state.name: "trigger_state",
        }
        self._conn: Any = None
        self._consumer: AsyncConsumer | None = None
        self._secrets = SecretCache()
        self.group_id: str | None = None
        self.stats = ProjectorStats()
        self._ages: collections.deque[float] = collections.deque(maxlen=_LAG_WINDOW)
        self.failure: BaseException | None = None

    async def start(self, *, rebuild: bool = False) -> None:
        """Connect, migrate (after dropping everything when ``rebuild``), join the group."""
        self._conn = await connect(self._dsn)
        if rebuild:
            await drop_read_model(self._conn)
            self._secrets = SecretCache()
        await migrate(self._conn)
        self.group_id = await self._group_id()
        fetch_wait_ms = max(self._kafka.fetch_wait_max_ms, self._settings.fetch_wait_max_ms)
        overrides: dict[str, Any] = {"fetch.wait.max.ms": fetch_wait_ms}
        self._consumer = AsyncConsumer(
            self._kafka,
            self.group_id,
            on_assign=self._assigned,
            on_revoke=self._revoked,
            **overrides,
        )
        await self._consumer.start()
        await self._consumer.subscribe(list(self._roles))
        log.info("projector %s consuming as group %s", self.name, self.group_id)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Project until ``stop`` is set; raises (and records) what stopped it otherwise."""
        if self._consumer is None:
            raise DatabaseError("projector not started: call start() first")
        try:
            await self._pipeline(self._consumer, stop)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.failure = exc
            raise

    async def _pipeline(self, consumer: AsyncConsumer, stop: asyncio.Event | None) -> None:
        """Consume, build and write with one batch in flight: while Postgres writes batch N
        (on the other core), batch N+1 is fetched and decoded here. Offsets of a batch are
        committed only after its write committed, and batches are written in order."""
        pending: tuple[asyncio.Task[None], list[Record]] | None = None
        delay = _BUS_RETRY_FIRST_S
        try:
            while stop is None or not stop.is_set():
                try:
                    records = await consumer.consume(
                        self._settings.batch_max_records, self._settings.poll_timeout_s, until=stop
                    )
                except BusError as exc:
                    if not exc.retriable:
                        raise
                    log.warning("projector consumer: %s; retrying in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _DB_RETRY_MAX_S)
                    continue
                delay = _BUS_RETRY_FIRST_S
                batch = build_batch(records, self._roles, self.masker) if records else None
                if pending is not None:
                    await self._settle(consumer, *pending)
                    pending = None
                if batch is not None:
                    pending = (asyncio.create_task(self._apply(records, batch)), records)
            if pending is not None:
                await self._settle(consumer, *pending)
                pending = None
        finally:
            if pending is not None:
                pending[0].cancel()
                await asyncio.gather(pending[0], return_exceptions=True)

    async def _settle(
        self, consumer: AsyncConsumer, write: asyncio.Task[None], records: list[Record]
    ) -> None:
        await write
        delay = _BUS_RETRY_FIRST_S
        while True:
            try:
                await consumer.commit(records)
                return
            except BusError as exc:
                # After a revoke the new owner re-reads the batch: harmless (idempotent).
                if not exc.retriable or not consumer.assigned:
                    raise
                log.warning("projector: commit failed (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _DB_RETRY_MAX_S)

    async def _assigned(self, partitions: list[tuple[str, int]]) -> None:
        log.info("projector %s assigned %d partitions", self.name, len(partitions))

    async def _revoked(self, partitions: list[tuple[str, int]]) -> None:
        log.info("projector %s lost %d partitions", self.name, len(partitions))

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        conn, self._conn = self._conn, None
        try:
            if consumer is not None:
                await consumer.close()
        finally:
            if conn is not None:
                await conn.close()

    def healthy(self) -> bool:
        return self.failure is None

    def lag_percentiles(self) -> dict[str, float | None]:
        ages = list(self._ages)
        return {"p50_ms": percentile(ages, 0.5), "p99_ms": percentile(ages, 0.99)}

    # ------------------------------------------------------------------------- the batch

    async def handle(self, records: list[Record]) -> None:
        """Write one batch (retrying lost connections); offsets are committed by the caller."""
        await self._apply(records, build_batch(records, self._roles, self.masker))

    async def _apply(self, records: list[Record], batch: RowBatch) -> None:
        delay = _DB_RETRY_FIRST_S
        while True:
            try:
                if self._conn is None:
                    self._conn = await connect(self._dsn)
                await self._write(batch)
                break
            except (*_CONNECTION_ERRORS, DatabaseError) as exc:
                if isinstance(exc, DatabaseError) and not exc.retriable:
                    raise
                log.warning("projector: database unreachable (%s); retrying the batch", exc)
                await self._drop_connection()
                await asyncio.sleep(delay)
                delay = min(delay * 2, _DB_RETRY_MAX_S)
            except asyncpg.PostgresError as exc:
                raise DatabaseError(
                    f"projector could not write a batch of {len(records)} records: {exc}",
                    retriable=False,
                ) from exc
        now_ms = time.time() * 1000
        ages = [now_ms - r.timestamp_ms for r in records if r.timestamp_ms >= 0]
        self._ages.extend(ages)
        stats = self.stats
        stats.records += len(records)
        stats.batches += 1
        stats.poison += batch.poison
        stats.last_lag_ms = max(ages) if ages else stats.last_lag_ms
        stats.last_batch_monotonic = time.monotonic()

    async def _write(self, batch: RowBatch) -> None:
        conn = self._conn
        newest = lag = None
        if batch.newest_ms is not None and batch.oldest_ms is not None:
            newest = datetime.fromtimestamp(batch.newest_ms / 1000, tz=UTC)
            lag = int(time.time() * 1000 - batch.oldest_ms)
        async with conn.transaction():
            if not batch.empty():
                await write_batch(conn, batch, self._secrets)
            await conn.execute(_STATUS_SQL, self.name, self.group_id, newest, lag, batch.records)

    async def _drop_connection(self) -> None:
        old, self._conn = self._conn, None
        if old is None:
            return
        try:
            await old.close(timeout=1.0)
        except (*_CONNECTION_ERRORS, asyncpg.PostgresError, TimeoutError):
            old.terminate()

    async def _group_id(self) -> str:
        candidate = f"{self._settings.group_id}-{new_id()}"
        await self._conn.execute(
            "INSERT INTO projector_status (name, group_id) VALUES ($1, $2)"
            " ON CONFLICT (name) DO NOTHING",
            self.name,
            candidate,
        )
        group: str = await self._conn.fetchval(
            "SELECT group_id FROM projector_status WHERE name = $1", self.name
        )
        return group
