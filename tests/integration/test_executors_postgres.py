"""PostgreSQL Query against the real server: every fetchType, named parameters, STORE."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from engine.stores.storage import LocalStorage, TaskLocation
from executors.base import TaskContext, run_task
from executors.postgres import PostgresQueryTask, bind_named

pytestmark = pytest.mark.postgres


@pytest.fixture
async def table(postgres_dsn: str) -> AsyncIterator[str]:
    name = f"hw_query_{uuid.uuid4().hex[:8]}"
    try:
        conn = await asyncpg.connect(postgres_dsn)
    except OSError as exc:
        pytest.fail(f"PostgreSQL not reachable ({exc}); start it with `make services-up`")
    try:
        yield name
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
        await conn.close()


def ctx(storage: LocalStorage | None = None) -> TaskContext:
    location = TaskLocation("ns", "f", "e1", "query", "r1")
    return TaskContext.for_job(
        execution_id="e1",
        task_run_id="r1",
        attempt=1,
        task={"id": "query"},
        variables={"inputs": {"min": 2}},
        storage=storage.for_task(location) if storage else None,
    )


async def test_every_fetch_type(postgres_dsn: str, table: str, tmp_path: Path) -> None:
    url = "jdbc:" + postgres_dsn
    run = PostgresQueryTask()
    setup = {
        "id": "query",
        "url": url,
        "sql": f"CREATE TABLE {table} (id int, name text, price numeric(6,2), at timestamptz);"
        f"INSERT INTO {table} VALUES (1, 'a', 1.50, '2024-01-01T00:00:00Z'),"
        f" (2, 'b', 2, NULL), (3, 'c', 3.25, NULL)",
    }
    outcome = await run_task(run, setup, ctx())
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"size": 3}

    fetch = {
        "id": "query",
        "url": url,
        "sql": f"SELECT id, name, price FROM {table} WHERE id >= :min ORDER BY id",
        "parameters": {"min": "{{ inputs.min }}"},
        "fetchType": "FETCH",
    }
    outcome = await run_task(run, {**fetch, "parameters": {"min": 2}}, ctx())
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {
        "rows": [{"id": 2, "name": "b", "price": 2}, {"id": 3, "name": "c", "price": 3.25}],
        "size": 2,
    }

    one = {"id": "query", "url": url, "sql": f"SELECT * FROM {table} ORDER BY id"}
    outcome = await run_task(run, {**one, "fetchType": "FETCH_ONE"}, ctx())
    assert outcome.outputs["row"] == {
        "id": 1,
        "name": "a",
        "price": 1.5,
        "at": "2024-01-01T00:00:00+00:00",
    }

    storage = LocalStorage(tmp_path)
    outcome = await run_task(run, {**one, "fetchType": "STORE"}, ctx(storage))
    assert outcome.outputs["size"] == 3
    lines = storage.read_text(outcome.outputs["uri"]).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith('{"id":1,"name":"a"')


async def test_sql_errors_and_bad_urls_fail_the_task(postgres_dsn: str, table: str) -> None:
    bad_sql = {"id": "q", "url": postgres_dsn, "sql": f"SELECT * FROM {table}_missing"}
    outcome = await run_task(PostgresQueryTask(), bad_sql, ctx())
    assert outcome.state == "FAILED"
    assert "does not exist" in (outcome.error or "")
    bad_url = {"id": "q", "url": "jdbc:mysql://x/y", "sql": "SELECT 1"}
    outcome = await run_task(PostgresQueryTask(), bad_url, ctx())
    assert outcome.state == "FAILED"
    assert "not a PostgreSQL URL" in (outcome.error or "")


def test_named_parameters_skip_casts_and_strings() -> None:
    sql = "SELECT :a::int, ':b', \":c\", :a, :b"
    assert bind_named(sql, {"a": 1, "b": 2}) == ("SELECT $1::int, ':b', \":c\", $1, $2", [1, 2])
