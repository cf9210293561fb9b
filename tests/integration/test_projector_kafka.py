"""The projector against the real broker and PostgreSQL (deploy/local).

Each test gets its own topic prefix and the module its own database, so runs never collide.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from engine.bus import AsyncProducer, BusAdmin, Topics, ensure_topics
from engine.bus.wire import event_record, flow_deployed_record, log_record, out
from engine.errors import BusError
from engine.projector import MASK, Projector, migrate
from engine.projector.databases import create_database, drop_database
from engine.projector.schema import migrations
from engine.reducer.model import Event
from engine.settings import KafkaSettings, ProjectorSettings, Settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

# Rows appear after a group join (about half the session timeout on Tansu) plus a batch;
# this leaves room for a loaded machine.
ARRIVAL_S = 30.0
_SNAPSHOT_TABLES = ("flows", "flow_revisions", "executions", "task_runs", "logs", "triggers")


@pytest.fixture(scope="module")
def db(settings: Settings) -> Iterator[str]:
    """A fresh database for this module, dropped at the end; fails if Postgres is down."""
    admin = settings.postgres.dsn.get_secret_value()
    name = f"headwater_test_{uuid.uuid4().hex[:12]}"
    try:
        dsn = asyncio.run(create_database(admin, name))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL not reachable ({exc}); start it with `make services-up`")
    yield dsn
    asyncio.run(drop_database(admin, name))


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[tuple[KafkaSettings, Topics]]:
    kafka = settings.kafka.model_copy(
        update={
            "topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
            "partitions": 2,
            "session_timeout_ms": 3000,
            "heartbeat_interval_ms": 500,
            "request_timeout_s": 5.0,
        }
    )
    admin = BusAdmin(kafka)
    try:
        await admin.wait_ready()
    except BusError as exc:
        pytest.fail(f"Kafka broker not reachable ({exc}); start it with `make services-up`")
    topics = await ensure_topics(admin, kafka)
    yield kafka, topics
    await admin.delete_topics(t.name for t in topics.all())


def projector(kafka: KafkaSettings, dsn: str, name: str) -> Projector:
    settings = ProjectorSettings(group_id=f"p-{uuid.uuid4().hex[:8]}", poll_timeout_s=0.2)
    return Projector(kafka, settings, dsn, name=name)


async def run_until(
    p: Projector, dsn: str, done: Callable[[Any], Awaitable[bool]], *, rebuild: bool = False
) -> None:
    """Run ``p`` until ``done(conn)`` holds, then stop it cleanly."""
    await p.start(rebuild=rebuild)
    stop = asyncio.Event()
    task = asyncio.create_task(p.run(stop))
    conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(ARRIVAL_S):
            while not await done(conn):
                if task.done():
                    await task  # surfaces the projector's crash
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task
        await p.close()
        await conn.close()


async def snapshot(dsn: str, ids: list[str]) -> dict[str, list[Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        out_: dict[str, list[Any]] = {}
        for table in _SNAPSHOT_TABLES:
            rows = await conn.fetch(f"SELECT * FROM {table}")
            kept = [dict(r) for r in rows if _mine(dict(r), ids)]
            for r in kept:
                r.pop("updated", None)  # flows/triggers keep when the projector saw them
            out_[table] = sorted(kept, key=repr)
        return out_
    finally:
        await conn.close()


def _mine(row: dict[str, Any], ids: list[str]) -> bool:
    keys = ("id", "execution_id", "namespace")
    return any(row.get(k) in ids for k in keys)


def ts(seconds: float) -> str:
    when = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def summary(ex: str, ns: str, seq: int, state: str, end: bool = False) -> Event:
    payload = {
        "id": ex,
        "namespace": ns,
        "flow_id": "secretive",
        "revision": 1,
        "state": state,
        "history": [["CREATED", ts(0)], [state, ts(seq)]],
        "start_date": ts(0),
        "end_date": ts(seq) if end else None,
        "inputs": {"user": "ann", "password": "s3cret"},
        "labels": {"team": "data"},
        "outputs": {"n": seq} if end else None,
        "trigger": None,
        "parent": None,
    }
    return Event("ExecutionUpdated", ex, seq, ts(seq), payload)


def task_run(ex: str, seq: int, state: str) -> Event:
    payload = {
        "id": f"{ex}-tr",
        "task_id": "hello",
        "type": "io.kestra.plugin.core.log.Log",
        "parent_id": None,
        "values": [],
        "value": None,
        "branch": "tasks",
        "state": state,
        "history": [["CREATED", ts(1)], [state, ts(seq)]],
        "attempts": [{"state": state, "history": [], "worker_id": "w1"}],
        "outputs": {},
        "iteration": None,
        "data": {},
    }
    return Event("TaskRunUpdated", ex, seq, ts(seq), payload)


FLOW_SOURCE = """id: secretive
namespace: NS
inputs:
  - id: user
    type: STRING
  - id: password
    type: SECRET
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: abc
"""


async def produce_story(kafka: KafkaSettings, topics: Topics, ns: str, ex: str) -> None:
    flow = {
        "id": "secretive",
        "namespace": ns,
        "inputs": [{"id": "user", "type": "STRING"}, {"id": "password", "type": "SECRET"}],
        "tasks": [{"id": "hello", "type": "io.kestra.plugin.core.log.Log", "message": "hi"}],
        "triggers": [{"id": "hook", "type": "io.kestra.plugin.core.trigger.Webhook", "key": "k"}],
    }
    records = [
        out(
            topics.flows.name,
            flow_deployed_record(ns, "secretive", 1, FLOW_SOURCE.replace("NS", ns), flow),
        ),
        out(topics.events.name, event_record(summary(ex, ns, 1, "RUNNING"))),
        out(topics.events.name, event_record(task_run(ex, 2, "RUNNING"))),
        out(topics.events.name, event_record(task_run(ex, 3, "SUCCESS"))),
        out(topics.events.name, event_record(summary(ex, ns, 4, "SUCCESS", end=True))),
        out(
            topics.events.name,
            event_record(Event("LogEmitted", ex, 5, ts(5), {"level": "INFO", "message": "done"})),
        ),
        out(
            topics.logs.name,
            log_record(
                log_id=f"{ex}-tr:1:0",
                execution_id=ex,
                task_run_id=f"{ex}-tr",
                task_id="hello",
                attempt=1,
                level="INFO",
                message="hi",
                timestamp=ts(2.5),
            ),
        ),
    ]
    async with AsyncProducer(kafka) as producer:
        await producer.produce_many(records)


async def test_events_become_rows_replays_change_nothing_and_rebuild_is_equal(
    bus: tuple[KafkaSettings, Topics], db: str
) -> None:
    kafka, topics = bus
    ns, ex = f"ns{uuid.uuid4().hex[:6]}", f"ex-{uuid.uuid4().hex[:8]}"
    await produce_story(kafka, topics, ns, ex)

    async def all_there(conn: Any) -> bool:
        count = await conn.fetchval(
            "SELECT (SELECT count(*) FROM executions WHERE id = $1 AND state = 'SUCCESS')"
            " + (SELECT count(*) FROM logs WHERE execution_id = $1)"
            " + (SELECT count(*) FROM task_runs WHERE execution_id = $1 AND last_seq = 3)",
            ex,
        )
        return int(count) == 4

    name = f"n{uuid.uuid4().hex[:6]}"
    await run_until(projector(kafka, db, name), db, all_there)
    first = await snapshot(db, [ex, ns])

    (execution,) = first["executions"]
    assert execution["state"] == "SUCCESS"
    assert execution["last_seq"] == 4
    assert execution["duration_ms"] == 4000
    assert '"s3cret"' not in execution["inputs"]
    assert MASK in execution["inputs"]
    assert '"ann"' in execution["inputs"]
    (run,) = first["task_runs"]
    assert (run["state"], run["worker"], run["last_seq"]) == ("SUCCESS", "w1", 3)
    assert sorted(r["message"] for r in first["logs"]) == ["done", "hi"]
    (flow,) = first["flows"]
    assert (flow["revision"], flow["deleted"], flow["secret_inputs"]) == (1, False, ["password"])
    assert [t["trigger_id"] for t in first["triggers"]] == ["hook"]

    # The same events again (a producer retry, an executor redoing a batch): nothing changes.
    await produce_story(kafka, topics, ns, ex)

    async def replayed(conn: Any) -> bool:
        total = await conn.fetchval(
            "SELECT records_total FROM projector_status WHERE name = $1", name
        )
        return int(total or 0) >= 14

    await run_until(projector(kafka, db, name), db, replayed)
    assert await snapshot(db, [ex, ns]) == first

    # An older event arriving late never overwrites a newer row.
    async with AsyncProducer(kafka) as producer:
        await producer.produce_many(
            [
                out(topics.events.name, event_record(summary(ex, ns, 2, "RUNNING"))),
                out(topics.events.name, event_record(task_run(ex, 2, "RUNNING"))),
            ]
        )

    async def stale_seen(conn: Any) -> bool:
        total = await conn.fetchval(
            "SELECT records_total FROM projector_status WHERE name = $1", name
        )
        return int(total or 0) >= 16

    await run_until(projector(kafka, db, name), db, stale_seen)
    assert await snapshot(db, [ex, ns]) == first


async def test_rebuild_drops_and_reprojects_the_same_tables(
    bus: tuple[KafkaSettings, Topics], settings: Settings
) -> None:
    admin = settings.postgres.dsn.get_secret_value()
    name = f"headwater_test_{uuid.uuid4().hex[:12]}"
    dsn = await create_database(admin, name)
    try:
        kafka, topics = bus
        ns, ex = f"ns{uuid.uuid4().hex[:6]}", f"ex-{uuid.uuid4().hex[:8]}"
        await produce_story(kafka, topics, ns, ex)

        async def done(conn: Any) -> bool:
            return bool(
                await conn.fetchval("SELECT count(*) = 2 FROM logs WHERE execution_id = $1", ex)
            ) and bool(
                await conn.fetchval(
                    "SELECT count(*) = 1 FROM executions WHERE id = $1 AND last_seq = 4", ex
                )
            )

        await run_until(projector(kafka, dsn, "default"), dsn, done)
        before = await snapshot(dsn, [ex, ns])
        conn = await asyncpg.connect(dsn)
        group_before = await conn.fetchval("SELECT group_id FROM projector_status")
        await conn.close()

        await run_until(projector(kafka, dsn, "default"), dsn, done, rebuild=True)
        assert await snapshot(dsn, [ex, ns]) == before
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT group_id FROM projector_status") != group_before
            assert await migrate(conn) == []  # idempotent
        finally:
            await conn.close()
    finally:
        await drop_database(admin, name)


async def test_concurrent_migrations_apply_once(settings: Settings) -> None:
    admin = settings.postgres.dsn.get_secret_value()
    name = f"headwater_test_{uuid.uuid4().hex[:12]}"
    dsn = await create_database(admin, name)
    try:
        conns = [await asyncpg.connect(dsn) for _ in range(3)]
        try:
            results = await asyncio.gather(*(migrate(c) for c in conns))
        finally:
            for c in conns:
                await c.close()
        assert sorted(len(r) for r in results) == [0, 0, len(migrations())]
    finally:
        await drop_database(admin, name)
