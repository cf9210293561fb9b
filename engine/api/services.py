"""What the API talks to, wired from one Settings object: Postgres, the producer, the flows.

The API must keep answering when Kafka or Postgres is down: reads need only Postgres, writes
need only Kafka, and ``/health`` says which is missing. So neither is required at start-up:

- the bus (topics, producer, the hw.flows follower) is connected by a supervised background
  task that retries until the broker answers; until then writes raise a retriable BusError,
  which the API turns into a 503 problem;
- the connection pool is created (and the read model migrated) on first use, and re-tried on
  the next request when that failed.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any

import asyncpg

from engine.api.problems import ProblemError
from engine.bus.admin import BusAdmin
from engine.bus.producer import AsyncProducer
from engine.bus.supervise import Supervised
from engine.bus.topics import Topics, ensure_topics, topics_for
from engine.bus.wire import KeyValue
from engine.errors import BusError, DatabaseError
from engine.flows.store import FlowFollower, FlowStore
from engine.projector.schema import migrate
from engine.settings import Settings
from engine.stores.secrets import SecretMasker, secret_masker
from engine.stores.storage import LocalStorage

log = logging.getLogger(__name__)

# A user waits on a write: fail a record the broker did not take within this long (librdkafka
# then reports it as not delivered, so a 503 means "not written", never "maybe written").
API_DELIVERY_TIMEOUT_MS = 5_000
# /health asks the broker for metadata; an answer slower than this counts as down.
HEALTH_PROBE_S = 2.0
# Between attempts to reach the broker at start-up (it may start after the API).
BUS_RETRY_S = 2.0
# Creating the pool (and migrating) when Postgres is down must not hang a request.
DB_CONNECT_S = 5.0
POOL_MAX = 10


class ApiServices:
    """Postgres pool, producer and flow store of one API process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics: Topics = topics_for(settings.kafka)
        self.store = FlowStore()
        self.bus_error: str | None = "not connected yet"
        # Commands this process sent, by type (for /metrics).
        self.commands_sent: dict[str, int] = {}
        # Known secret values, masked in the outputs and logs the API answers with.
        self.masker: SecretMasker = secret_masker(settings)
        self._producer: AsyncProducer | None = None
        self._follower: FlowFollower | None = None
        self._bus_task: Supervised | None = None
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        # Made on the first health probe and dropped at close: a librdkafka client that outlives
        # the broker keeps logging failed reconnects (e.g. at the end of `headwater dev`).
        self._probe: BusAdmin | None = None
        self._storage: LocalStorage | None = None

    async def start(self) -> None:
        self._bus_task = Supervised("api-bus-connect", self._connect_bus())

    async def close(self) -> None:
        if self._bus_task is not None:
            await self._bus_task.stop()
        if self._follower is not None:
            await self._follower.close()
        if self._producer is not None:
            await self._producer.close()
        if self._pool is not None:
            await self._pool.close()
        self._probe = None

    # ------------------------------------------------------------------------------- bus

    async def _connect_bus(self) -> None:
        kafka = self.settings.kafka
        while True:
            try:
                await ensure_topics(BusAdmin(kafka), kafka)
                producer = AsyncProducer(kafka, **{"message.timeout.ms": API_DELIVERY_TIMEOUT_MS})
                await producer.start()
                self._producer = producer
                follower = FlowFollower(kafka, self.topics.flows.name, self.store)
                await follower.start()
                self._follower = follower
                self.bus_error = None
                log.info("API connected to Kafka at %s", kafka.bootstrap_servers)
                return
            except BusError as exc:
                self.bus_error = exc.message
                log.warning("API: Kafka not available (%s); retrying", exc.message)
                await asyncio.sleep(BUS_RETRY_S)

    @property
    def bus_ready(self) -> bool:
        follower = self._follower
        return self.bus_error is None and follower is not None and follower.healthy

    def require_bus(self) -> AsyncProducer:
        """The producer, or a retriable BusError (-> 503) while Kafka is not available (the
        flow store is incomplete then too, so writes must not guess)."""
        producer = self._producer
        if producer is None or not self.bus_ready:
            raise BusError(
                f"Kafka is not available ({self.bus_error or 'flow follower stopped'}); "
                "nothing was written, retry later",
                retriable=True,
            )
        return producer

    async def produce(self, topic: str, kv: KeyValue) -> None:
        """Write one record and wait for the broker's ack; BusError (-> 503) otherwise."""
        await self.require_bus().produce(topic, kv[0], kv[1])

    async def probe_bus(self) -> str | None:
        """None when the broker answers now, else why not."""
        if self._probe is None:
            kafka = self.settings.kafka.model_copy(update={"request_timeout_s": HEALTH_PROBE_S})
            self._probe = BusAdmin(kafka)
        try:
            await asyncio.wait_for(self._probe.list_topics(), HEALTH_PROBE_S)
        except (BusError, TimeoutError) as exc:
            return str(exc) or "no answer"
        return None

    # -------------------------------------------------------------------------- database

    async def pool(self) -> Any:
        """The connection pool, created (and the read model migrated) on first use."""
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._pool is None:
                dsn = self.settings.postgres.dsn.get_secret_value()
                try:
                    pool = await asyncio.wait_for(
                        asyncpg.create_pool(dsn, min_size=1, max_size=POOL_MAX), DB_CONNECT_S
                    )
                except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                    raise DatabaseError(
                        f"the read-model database is not reachable: {exc or 'timed out'}",
                        retriable=True,
                    ) from exc
                try:
                    async with pool.acquire() as conn:
                        await migrate(conn)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
        return self._pool

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        pool = await self.pool()
        try:
            return list(await pool.fetch(sql, *args))
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
            raise DatabaseError(f"read-model query failed: {exc}", retriable=True) from exc
        except (asyncpg.DataError, UnicodeEncodeError) as exc:
            # A value the database cannot hold (a NUL byte, an out-of-range number): the
            # caller's mistake, not ours.
            raise ProblemError(400, "Invalid value", str(exc)) from exc

    @property
    def storage(self) -> LocalStorage:
        """Internal storage, where uploaded input files go (the workers' storage root)."""
        if self._storage is None:
            configured = self.settings.worker.storage_dir
            root = configured or str(Path(tempfile.gettempdir()) / "headwater-storage")
            self._storage = LocalStorage(root)
        return self._storage

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None
