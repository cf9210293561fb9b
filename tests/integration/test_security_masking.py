"""Secret values from the store are masked in the read model (the projector) and in what the
API answers (execution and task-run outputs, log lines), against the real Kafka and Postgres.

The events carry the real value (downstream tasks may need it); the rows and the answers never.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from engine.api import ApiServices, create_app
from engine.bus import AsyncProducer, BusAdmin, ensure_topics
from engine.bus.wire import log_record
from engine.errors import BusError
from engine.projector import Projector
from engine.projector.databases import create_database, drop_database
from engine.settings import SecretsSettings, Settings
from engine.stores.secrets import secret_masker
from executors.base import SECRET_MASK
from schemas.envelope import Envelope, encode, format_time
from tests.integration.test_api_stack import ARRIVAL_S, make_settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SECRET = "tok-Zq81-very-secret"
OTHER_NS_SECRET = "other-ns-pw-4471"


@pytest.fixture(scope="module")
def db(settings: Settings) -> Iterator[str]:
    admin = settings.postgres.dsn.get_secret_value()
    name = f"headwater_test_{uuid.uuid4().hex[:12]}"
    try:
        dsn = asyncio.run(create_database(admin, name))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL not reachable ({exc}); start it with `make services-up`")
    yield dsn
    asyncio.run(drop_database(admin, name))


def execution_event(eid: str, ns: str, outputs: Any) -> Envelope:
    now = datetime.now(UTC)
    payload = {
        "id": eid,
        "namespace": ns,
        "flow_id": "f",
        "revision": 1,
        "state": "SUCCESS",
        "history": [["CREATED", format_time(now)], ["SUCCESS", format_time(now)]],
        "start_date": format_time(now),
        "end_date": format_time(now),
        "inputs": {"note": f"uses {SECRET}"},
        "labels": {},
        "outputs": outputs,
        "trigger": None,
        "parent": None,
    }
    return Envelope.new("ExecutionUpdated", eid, 2, payload, occurred=now)


def task_run_event(eid: str, outputs: Any) -> Envelope:
    now = datetime.now(UTC)
    payload = {
        "id": f"{eid}-tr",
        "task_id": "t1",
        "type": "io.kestra.plugin.core.debug.Return",
        "parent_id": None,
        "state": "SUCCESS",
        "history": [["CREATED", format_time(now)], ["SUCCESS", format_time(now)]],
        "attempts": [{"state": "SUCCESS", "history": [], "worker_id": "w"}],
        "outputs": outputs,
    }
    return Envelope.new("TaskRunUpdated", eid, 1, payload, occurred=now)


@pytest.fixture
async def stack(
    settings: Settings, db: str, tmp_path: Path
) -> AsyncIterator[tuple[Settings, httpx.AsyncClient]]:
    store = tmp_path / "secrets"
    store.mkdir()
    (store / "team.a.json").write_bytes(orjson.dumps({"TOKEN": SECRET}))
    (store / "team.b.yml").write_text(f"PW: {OTHER_NS_SECRET}\n")
    s = make_settings(settings, db).model_copy(update={"secrets": SecretsSettings(path=str(store))})
    admin = BusAdmin(s.kafka)
    try:
        await admin.wait_ready()
    except BusError as exc:
        pytest.fail(f"Kafka broker not reachable ({exc}); start it with `make services-up`")
    topics = await ensure_topics(admin, s.kafka)
    projector = Projector(
        s.kafka, s.projector, db, name=uuid.uuid4().hex[:8], masker=secret_masker(s)
    )
    await projector.start()
    stop = asyncio.Event()
    running = asyncio.create_task(projector.run(stop))
    services = ApiServices(s)  # its masker comes from the same settings
    app = create_app(s, services)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api"
        ) as client:
            yield s, client
    finally:
        stop.set()
        await running
        await projector.close()
        await services.close()
        await admin.delete_topics(t.name for t in topics.all())


async def wait_rows(dsn: str, eid: str) -> asyncpg.Record:
    conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(ARRIVAL_S):
            while True:
                row = await conn.fetchrow(
                    "SELECT e.outputs::text AS ex, e.inputs::text AS inputs,"
                    " (SELECT outputs::text FROM task_runs WHERE execution_id = e.id) AS tr,"
                    " (SELECT message FROM logs WHERE execution_id = e.id) AS log"
                    " FROM executions e WHERE e.id = $1",
                    eid,
                )
                if row is not None and row["tr"] is not None and row["log"] is not None:
                    return row
                await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def test_read_model_and_api_never_show_a_secret_value(
    stack: tuple[Settings, httpx.AsyncClient],
) -> None:
    s, client = stack
    eid = f"ex-{uuid.uuid4().hex[:10]}"
    dsn = s.postgres.dsn.get_secret_value()
    async with AsyncProducer(s.kafka) as producer:
        events = s.kafka.topic_prefix + "events"
        logs = s.kafka.topic_prefix + "logs"
        await producer.produce(
            events, eid.encode(), encode(task_run_event(eid, {"token": SECRET, "n": 1}))
        )
        await producer.produce(
            events,
            eid.encode(),
            encode(execution_event(eid, "team.a", {"out": f"Bearer {SECRET}", "other": "ok"})),
        )
        key, value = log_record(
            log_id=f"{eid}-l1",
            execution_id=eid,
            task_run_id=f"{eid}-tr",
            task_id="t1",
            attempt=1,
            level="INFO",
            message=f"calling with {SECRET} and {OTHER_NS_SECRET}",
            timestamp=format_time(datetime.now(UTC)),
        )
        await producer.produce(logs, key, value)

    row = await wait_rows(dsn, eid)
    for column in ("ex", "inputs", "tr", "log"):
        assert SECRET not in row[column], column
        assert SECRET_MASK in row[column], column
    assert OTHER_NS_SECRET not in row["log"]  # every known value is masked, any namespace
    assert '"other": "ok"' in row["ex"]  # the rest of the data is intact

    answer = await client.get(f"/api/v1/executions/{eid}")
    assert answer.status_code == 200
    body = answer.json()
    assert SECRET not in answer.text
    assert body["outputs"] == {"out": f"Bearer {SECRET_MASK}", "other": "ok"}
    assert body["taskRunList"][0]["outputs"] == {"token": SECRET_MASK, "n": 1}
    logs_answer = await client.get(f"/api/v1/executions/{eid}/logs")
    assert [line["message"] for line in logs_answer.json()] == [
        f"calling with {SECRET_MASK} and {SECRET_MASK}"
    ]

    # A row written before the secret existed (or by a projector without the store): the API
    # still masks what it answers.
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE executions SET outputs = $2::jsonb WHERE id = $1",
            eid,
            orjson.dumps({"leak": SECRET}).decode(),
        )
        await conn.execute(
            "UPDATE logs SET message = $2 WHERE execution_id = $1", eid, f"raw {SECRET}"
        )
    finally:
        await conn.close()
    answer = await client.get(f"/api/v1/executions/{eid}")
    assert answer.json()["outputs"] == {"leak": SECRET_MASK}
    listing = await client.get("/api/v1/executions", params={"namespace": "team.a"})
    assert listing.status_code == 200
    assert SECRET not in listing.text
    logs_answer = await client.get(f"/api/v1/executions/{eid}/logs")
    assert SECRET not in logs_answer.text
    assert logs_answer.json()[0]["message"] == f"raw {SECRET_MASK}"
