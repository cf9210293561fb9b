"""One chaos run: the stack as processes, a steady webhook load, SIGKILLs, a drain, an audit.

``ChaosRun(...).run()`` returns :class:`Figures`; the tests assert there are no anomalies and
print the figures. The monkey SIGKILLs one random component (seeded; the seed is printed) every
``kill_every_s``, restarts it ``restart_after_s`` later, and also restarts any component that
exited by itself (a crash, counted as an anomaly). With a ``broker_restart`` callable, the
broker is restarted every ``broker_every_s`` too.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from engine.bus import BusAdmin
from engine.bus.topics import topics_for
from engine.errors import BusError
from engine.projector.databases import create_database, drop_database
from engine.reducer.states import TERMINAL
from engine.settings import KafkaSettings
from tests.chaos.audit import Audit, Evidence, audit, read_executions, read_topic
from tests.chaos.flows import AFTER, MAIN, flow_sources
from tests.chaos.load import Load
from tests.chaos.stack import PARTITIONS, ChaosStack, StackConfig

# Seven Python processes importing Headwater on two shared cores: up in well under this.
START_S = 60.0
# After the load stops: retries back off 0.5 s, paused runs wait for the next resume sweep,
# a SIGKILLed member's partitions move after the session timeout. Generous for a busy box.
DRAIN_S = 90.0
_TERMINAL_NAMES = frozenset(s.value for s in TERMINAL)
# How often the drain checks the read model.
DRAIN_POLL_S = 1.0
# A trigger event keeps being retried this long after the load stops (API restarts included).
ACCEPT_GRACE_S = 30.0


@dataclass
class Figures:
    seconds: float
    rate: float
    seed: int
    kills: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    crashes: dict[str, list[int]] = field(default_factory=dict)
    broker_restarts: int = 0
    load: dict[str, Any] = field(default_factory=dict)
    drained_s: float = 0.0
    total_s: float = 0.0
    tracebacks: dict[str, int] = field(default_factory=dict)
    audit: Audit = field(default_factory=Audit)

    @property
    def anomalies(self) -> int:
        return self.audit.anomaly_count + sum(len(v) for v in self.crashes.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "rate_per_s": self.rate,
            "seed": self.seed,
            "kills": dict(self.kills),
            "kills_total": sum(self.kills.values()),
            "restarts": self.restarts,
            "crashes": self.crashes,
            "broker_restarts": self.broker_restarts,
            "load": self.load,
            "drained_s": round(self.drained_s, 1),
            "total_s": round(self.total_s, 1),
            "tracebacks_in_logs": self.tracebacks,
            **self.audit.summary(),
            "anomalies_total": self.anomalies,
        }

    def report(self) -> str:
        text = json.dumps(self.to_dict(), indent=1, sort_keys=True)
        details = self.audit.details()
        return text + ("\n" + details if details else "")


class ChaosRun:
    def __init__(
        self,
        kafka: KafkaSettings,
        admin_dsn: str,
        work: Path,
        *,
        seconds: float,
        rate: float,
        kill_every_s: float,
        restart_after_s: float,
        seed: int | None = None,
        broker_restart: Callable[[], Awaitable[None]] | None = None,
        broker_every_s: float = 15.0,
    ) -> None:
        self.admin_dsn = admin_dsn
        self.work = work
        self.seconds = seconds
        self.rate = rate
        self.kill_every_s = kill_every_s
        self.restart_after_s = restart_after_s
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1 << 30)
        self.rng = random.Random(self.seed)  # chooses victims, not secrets
        self.broker_restart = broker_restart
        self.broker_every_s = broker_every_s
        self.db_name = f"headwater_chaos_{uuid.uuid4().hex[:12]}"
        self.namespace = f"chaos.n{uuid.uuid4().hex[:8]}"
        self.figures = Figures(seconds, rate, self.seed)
        self.config = StackConfig(
            kafka.bootstrap_servers, "", work, fetch_wait_ms=kafka.fetch_wait_max_ms
        )
        self.kafka = kafka.model_copy(
            update={"topic_prefix": self.config.topic_prefix, "partitions": PARTITIONS}
        )

    async def run(self) -> Figures:
        started = time.monotonic()
        try:
            await BusAdmin(self.kafka).wait_ready()
        except BusError as exc:
            raise AssertionError(f"Kafka not reachable ({exc}); run `make services-up`") from exc
        try:
            self.config.dsn = await create_database(self.admin_dsn, self.db_name)
        except OSError as exc:
            raise AssertionError(f"PostgreSQL not reachable ({exc}); `make services-up`") from exc
        stack = ChaosStack(self.config)
        load = Load(stack.api_url, self.namespace, self.rate, self.config.api_key)
        try:
            await asyncio.to_thread(stack.start)
            await self._deploy(load.client, stack)
            await self._chaos(stack, load)
            await asyncio.to_thread(stack.stop)
            self.figures.crashes = {c.name: c.crashes for c in stack.components if c.crashes}
            self.figures.tracebacks = {c.name: n for c in stack.components if (n := c.tracebacks())}
            self.figures.audit = await self._audit(load)
        finally:
            await load.close()
            await asyncio.to_thread(stack.stop)
            await self._cleanup()
        self.figures.total_s = time.monotonic() - started
        return self.figures

    async def _deploy(self, client: httpx.AsyncClient, stack: ChaosStack) -> None:
        deadline = time.monotonic() + START_S
        for source in flow_sources(self.namespace):
            while True:
                try:
                    r = await client.post(
                        "/api/v1/flows",
                        content=source,
                        headers={"content-type": "application/x-yaml"},
                    )
                    if r.status_code == 200:
                        break
                    last = f"{r.status_code} {r.text[:300]}"
                except httpx.TransportError as exc:
                    last = repr(exc)
                if time.monotonic() > deadline:
                    api = stack.by_name("api")
                    raise AssertionError(
                        f"could not deploy the chaos flows: {last}\napi log:\n{api.tail()}"
                    )
                await asyncio.sleep(0.3)

    async def _chaos(self, stack: ChaosStack, load: Load) -> None:
        stop_monkey = asyncio.Event()
        stop_resumer = asyncio.Event()
        monkey = asyncio.create_task(self._monkey(stack, stop_monkey))
        resumer = asyncio.create_task(load.resume_paused(stop_resumer))
        try:
            give_up = time.monotonic() + self.seconds + ACCEPT_GRACE_S
            sending = asyncio.create_task(load.send_for(self.seconds, give_up))
            await asyncio.sleep(self.seconds)
            stop_monkey.set()
            await monkey
            await sending
            drain_start = time.monotonic()
            await self._drain(load, stack)
            self.figures.drained_s = time.monotonic() - drain_start
        finally:
            stop_monkey.set()
            stop_resumer.set()
            for task in (monkey, resumer):
                await asyncio.gather(task, return_exceptions=True)
        f = load.figures
        self.figures.load = {
            "trigger_events": f.sent,
            "accepted": len(f.accepted),
            "retries": f.retries,
            "answers": dict(f.statuses),
            "resumes": dict(f.resumes),
        }

    async def _monkey(self, stack: ChaosStack, stop: asyncio.Event) -> None:
        next_broker = time.monotonic() + self.broker_every_s
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.kill_every_s)
            except TimeoutError:
                pass
            self._restart_crashed(stack)
            if stop.is_set():
                break
            if self.broker_restart is not None and time.monotonic() >= next_broker:
                await self.broker_restart()
                self.figures.broker_restarts += 1
                next_broker = time.monotonic() + self.broker_every_s
                continue
            victim = self.rng.choice(stack.components)
            await asyncio.to_thread(victim.kill)
            self.figures.kills[victim.name] += 1
            await asyncio.sleep(self.restart_after_s)
            await asyncio.to_thread(victim.start)
            self.figures.restarts += 1
        self._restart_crashed(stack)

    def _restart_crashed(self, stack: ChaosStack) -> None:
        for component in stack.components:
            if component.check() is not None:
                component.start()
                self.figures.restarts += 1

    async def _drain(self, load: Load, stack: ChaosStack) -> None:
        """Wait until every accepted event's execution and its followers are terminal in the
        read model (or DRAIN_S passes: the audit then names what is missing)."""
        wanted = set(load.figures.accepted.values())
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline:
            self._restart_crashed(stack)
            if await self._drained(wanted):
                return
            await asyncio.sleep(DRAIN_POLL_S)

    async def _drained(self, wanted: set[str]) -> bool:
        try:
            rows = await read_executions(self.config.dsn)
        except OSError:
            return False
        except Exception as exc:  # tables not migrated yet (projector still starting)
            if "does not exist" in str(exc):
                return False
            raise
        if not wanted <= rows.keys():
            return False
        if any(state not in _TERMINAL_NAMES for state, _ in rows.values()):
            return False
        mains_ok = sum(1 for eid in wanted if rows[eid][0] == "SUCCESS")
        followers = await self._count_flow(AFTER)
        return followers >= mains_ok and await self._count_flow(MAIN) >= len(wanted)

    async def _count_flow(self, flow_id: str) -> int:
        import asyncpg

        conn = await asyncpg.connect(self.config.dsn)
        try:
            n = await conn.fetchval("SELECT count(*) FROM executions WHERE flow_id = $1", flow_id)
        finally:
            await conn.close()
        return int(n)

    async def _audit(self, load: Load) -> Audit:
        topics = topics_for(self.kafka)
        events = await read_topic(self.kafka, topics.events.name, PARTITIONS)
        commands = await read_topic(self.kafka, topics.commands.name, PARTITIONS)
        rows = await read_executions(self.config.dsn)
        return audit(
            Evidence(
                self.namespace,
                events,
                commands,
                rows,
                dict(load.figures.expected),
                dict(load.figures.accepted),
            )
        )

    async def _cleanup(self) -> None:
        try:
            admin = BusAdmin(self.kafka)
            names = await admin.list_topics()
            await admin.delete_topics(n for n in names if n.startswith(self.kafka.topic_prefix))
        except BusError:
            pass  # a broker the durable variant already stopped; its data dir goes with tmp
        try:
            await drop_database(self.admin_dsn, self.db_name)
        except Exception as exc:  # cleanup must not hide the run's own outcome
            print(f"could not drop {self.db_name}: {exc}")
