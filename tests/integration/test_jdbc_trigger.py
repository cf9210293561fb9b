"""The JDBC polling Trigger against the running PostgreSQL and MariaDB (deploy/local), and once
through the real trigger runtime and Kafka.

- Each server: rows fire with trigger.rows (parameters bound), the afterSQL UPDATE is invisible
  to other sessions (and its row locks held) until the StartExecution is durable; a discarded
  poll rolls it back and the repeated poll derives the same execution id; a wrong password is
  the poll's error, masked.
- The runtime: a flow with a postgresql.Trigger (interval PT0.5S) deployed to hw.flows; 3 rows,
  then 2 more, give exactly 2 StartExecutions carrying them, and every row ends DONE.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

from engine.bus.topics import Topics
from engine.settings import Settings
from executors.base import TaskError
from executors.plugins.jdbc_trigger import PLUGINS, JdbcTrigger
from tests.integration.test_trigger_sources import Commands, deploy, open_env
from tests.remote_support import MemoryKV, poll_context
from triggers.runtime import TriggerRuntime

BY_TYPE = {cls.type_name(): cls for cls in PLUGINS}
MARIADB_PORT = int(os.environ.get("HEADWATER_LOCAL_MARIADB_PORT", "3306"))
MARIADB_URL = f"jdbc:mariadb://127.0.0.1:{MARIADB_PORT}/headwater"
MARIADB_USER, MARIADB_PASSWORD = "headwater", "headwater-local-only"


def trigger(**props: Any) -> JdbcTrigger:
    props.setdefault("id", "watch")
    return BY_TYPE[props["type"]].model_validate(props)


def queue_trigger(type_: str, table: str, **connection: Any) -> JdbcTrigger:
    return trigger(
        type=type_,
        sql=f"SELECT id, name FROM {table} WHERE status = :status ORDER BY id",
        parameters={"status": "NEW"},
        afterSQL=f"UPDATE {table} SET status = 'DONE' WHERE status = 'NEW'",
        **connection,
    )


async def held_then_committed(tmp_path: Path, t: JdbcTrigger, statuses: Any, table: str) -> None:
    """The contract on one server (``statuses()`` reads from another session)."""
    kv = MemoryKV()
    first = await t.poll(poll_context(tmp_path, kv))
    assert first is not None
    assert first.variables == {
        "row": None,
        "rows": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        "size": 2,
    }
    assert await asyncio.to_thread(statuses) == ["NEW", "NEW"]  # not committed yet
    assert first.discard is not None
    await first.discard()  # the StartExecution could not be written
    assert await asyncio.to_thread(statuses) == ["NEW", "NEW"]
    again = await t.poll(poll_context(tmp_path, kv))
    assert again is not None
    assert again.coordinates == first.coordinates
    assert again.after is not None
    await again.after()
    assert await asyncio.to_thread(statuses) == ["DONE", "DONE"]
    assert await t.poll(poll_context(tmp_path, kv)) is None


# ----------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_table(postgres_dsn: str) -> Iterator[str]:
    name = f"hw_trig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id int primary key, name text, status text)")
        conn.execute(f"INSERT INTO {name} VALUES (1, 'a', 'NEW'), (2, 'b', 'NEW')")
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def pg_statuses(dsn: str, table: str) -> Any:
    def read() -> list[str]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return [r[0] for r in conn.execute(f"SELECT status FROM {table} ORDER BY id")]

    return read


@pytest.mark.postgres
async def test_postgresql_trigger(tmp_path: Path, postgres_dsn: str, pg_table: str) -> None:
    t = queue_trigger(
        "io.kestra.plugin.jdbc.postgresql.Trigger", pg_table, url="jdbc:" + postgres_dsn
    )
    await held_then_committed(tmp_path, t, pg_statuses(postgres_dsn, pg_table), pg_table)


@pytest.mark.postgres
async def test_postgresql_wrong_password_is_the_polls_error(
    tmp_path: Path, postgres_dsn: str, pg_table: str
) -> None:
    secret = "not-the-Password-9931"
    t = queue_trigger(
        "io.kestra.plugin.jdbc.postgresql.Trigger",
        pg_table,
        url="jdbc:postgresql://127.0.0.1:5432/headwater",
        username="nobody_here",
        password=secret,
    )
    with pytest.raises(TaskError) as caught:
        await t.poll(poll_context(tmp_path, MemoryKV()))
    assert "cannot connect to" in str(caught.value)
    assert secret not in str(caught.value)


# -------------------------------------------------------------------------------- MariaDB


def _maria() -> pymysql.Connection:  # type: ignore[type-arg]
    return pymysql.connect(
        host="127.0.0.1", port=MARIADB_PORT, user=MARIADB_USER, password=MARIADB_PASSWORD,
        database="headwater", autocommit=True,
    )  # fmt: skip


@pytest.fixture
def maria_table() -> Iterator[str]:
    name = f"hw_trig_{uuid.uuid4().hex[:10]}"
    with _maria() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {name} (id int primary key, name varchar(9), status varchar(9))")
        cur.execute(f"INSERT INTO {name} VALUES (1, 'a', 'NEW'), (2, 'b', 'NEW')")
    yield name
    with _maria() as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.mark.mariadb
async def test_mariadb_trigger(tmp_path: Path, maria_table: str) -> None:
    def statuses() -> list[str]:
        with _maria() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT status FROM {maria_table} ORDER BY id")
            return [r[0] for r in cur.fetchall()]

    t = queue_trigger(
        "io.kestra.plugin.jdbc.mariadb.Trigger",
        maria_table,
        url=MARIADB_URL,
        username=MARIADB_USER,
        password=MARIADB_PASSWORD,
    )
    await held_then_committed(tmp_path, t, statuses, maria_table)


# ------------------------------------------------------------------- the runtime and Kafka


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[tuple[Settings, Topics]]:
    async with open_env(settings) as value:
        yield value


@pytest.mark.kafka
@pytest.mark.postgres
async def test_through_the_trigger_runtime(
    env: tuple[Settings, Topics], tmp_path: Path, postgres_dsn: str, pg_table: str
) -> None:
    s, topics = env
    worker = s.worker.model_copy(
        update={"storage_dir": str(tmp_path / "storage"), "work_dir": str(tmp_path / "work")}
    )
    s = s.model_copy(update={"worker": worker})
    await deploy(
        s,
        topics,
        f"""
  - id: rows
    type: io.kestra.plugin.jdbc.postgresql.Trigger
    interval: PT0.5S
    url: "jdbc:{postgres_dsn}"
    sql: SELECT id, name FROM {pg_table} WHERE status = 'NEW' ORDER BY id
    afterSQL: UPDATE {pg_table} SET status = 'DONE' WHERE status = 'NEW'
""",
    )
    read = pg_statuses(postgres_dsn, pg_table)
    runtime = TriggerRuntime(s)
    await runtime.start()
    try:
        async with Commands(s, topics) as commands:
            await commands.until(1)
            with psycopg.connect(postgres_dsn, autocommit=True) as conn:
                conn.execute(f"INSERT INTO {pg_table} VALUES (3, 'c', 'NEW'), (4, 'd', 'NEW')")
            await commands.until(2)
            await commands.settle()
    finally:
        await runtime.close()
    assert runtime.failure is None
    rows = sorted(
        [r["id"] for r in c.trigger["variables"]["rows"]]
        for c in commands.starts.values()
        if c.trigger
    )
    assert rows == [[1, 2], [3, 4]]
    assert len(commands.starts) == 2
    assert await asyncio.to_thread(read) == ["DONE"] * 4
