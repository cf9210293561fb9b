"""The JDBC polling Trigger on the embedded engines (SQLite and DuckDB database files), polled
as the trigger runtime polls it: ``poll``, then ``after`` once the StartExecution would be
durable (or ``discard`` when it could not be).

Covered: rows fire with trigger.rows / row / uri / size; no row starts nothing; afterSQL is
committed only by ``after`` (a discarded poll rolls it back, and the repeated poll derives the
same execution id); a stable query fires at each poll; fetchType NONE is refused; SQL errors.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import pytest

from engine.flows import FlowValidationError, load_flow
from engine.stores.storage import LocalStorage
from executors import ion
from executors.base import TaskError
from executors.plugins.jdbc_trigger import PLUGINS, JdbcTrigger
from executors.polling import Poll
from schemas.plugins import load_plugins
from tests.remote_support import MemoryKV, poll_context

BY_TYPE = {cls.type_name(): cls for cls in PLUGINS}
SQLITE = "io.kestra.plugin.jdbc.sqlite.Trigger"
DUCKDB = "io.kestra.plugin.jdbc.duckdb.Trigger"


def trigger(**props: Any) -> JdbcTrigger:
    props.setdefault("id", "watch")
    cls = BY_TYPE[props["type"]]
    return cls.model_validate(props)


async def poll(tmp: Path, kv: MemoryKV, t: JdbcTrigger) -> Poll | None:
    return await t.poll(poll_context(tmp, kv))


async def finish(p: Poll, *, durable: bool = True) -> None:
    """What the runtime does once the StartExecution is durable (or could not be)."""
    action = p.after if durable else p.discard
    assert action is not None
    await action()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "events.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE events (id integer primary key, name text, status text)")
        conn.executemany("INSERT INTO events VALUES (?, ?, 'NEW')", [(1, "a"), (2, "b"), (3, "c")])
    return path


def statuses(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT status FROM events ORDER BY id")]


def sqlite_trigger(db: Path, **props: Any) -> JdbcTrigger:
    base = {
        "type": SQLITE,
        "url": f"jdbc:sqlite:{db}",
        "sql": "SELECT id, name FROM events WHERE status = :status ORDER BY id",
        "parameters": {"status": "NEW"},
        "afterSQL": "UPDATE events SET status = 'DONE' WHERE status = 'NEW'",
    }
    return trigger(**{**base, **props})


async def test_rows_fire_and_after_sql_commits_only_once_the_execution_is_durable(
    tmp_path: Path, db: Path
) -> None:
    kv = MemoryKV()
    t = sqlite_trigger(db)
    assert t.interval_seconds() == 60.0  # Kestra's PT60S
    first = await poll(tmp_path, kv, t)
    assert first is not None
    assert first.variables == {
        "row": None,
        "rows": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}],
        "size": 3,
    }
    # The transaction is still open: afterSQL is not visible before the go.
    assert statuses(db) == ["NEW", "NEW", "NEW"]
    await finish(first)
    assert statuses(db) == ["DONE", "DONE", "DONE"]
    assert await poll(tmp_path, kv, t) is None  # nothing NEW: nothing starts

    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO events VALUES (4, 'd', 'NEW')")
    second = await poll(tmp_path, kv, t)
    assert second is not None
    assert second.variables["rows"] == [{"id": 4, "name": "d"}]
    assert second.coordinates != first.coordinates
    await finish(second)
    assert statuses(db) == ["DONE"] * 4


async def test_a_discarded_poll_rolls_back_and_the_repeat_is_the_same_execution(
    tmp_path: Path, db: Path
) -> None:
    kv = MemoryKV()
    t = sqlite_trigger(db)
    first = await poll(tmp_path, kv, t)
    assert first is not None
    await finish(first, durable=False)  # the StartExecution could not be written
    assert statuses(db) == ["NEW", "NEW", "NEW"]
    again = await poll(tmp_path, kv, t)
    assert again is not None
    assert again.coordinates == first.coordinates  # the same execution id: nothing new starts
    await finish(again)
    assert statuses(db) == ["DONE", "DONE", "DONE"]


async def test_a_stable_query_without_after_sql_fires_at_each_poll(
    tmp_path: Path, db: Path
) -> None:
    kv = MemoryKV()
    t = trigger(type=SQLITE, url=f"jdbc:sqlite:{db}", sql="SELECT count(*) AS n FROM events")
    ids = []
    for _ in range(3):
        p = await poll(tmp_path, kv, t)
        assert p is not None
        assert p.variables == {"row": None, "rows": [{"n": 3}], "size": 1}
        ids.append(p.coordinates)
        await finish(p)
    assert len(set(ids)) == 3


async def test_fetch_one_and_store(tmp_path: Path, db: Path) -> None:
    kv = MemoryKV()
    one = await poll(tmp_path, kv, sqlite_trigger(db, fetchType="FETCH_ONE", afterSQL=None))
    assert one is not None
    assert one.variables == {"row": {"id": 1, "name": "a"}, "size": 1}
    await finish(one)

    stored = await poll(tmp_path, kv, sqlite_trigger(db, fetchType="{{ 'STORE' }}"))
    assert stored is not None
    uri = stored.variables["uri"]
    assert stored.variables["size"] == 3
    # In the execution's trigger folder, as Kestra stores trigger files.
    assert "/executions/" in uri
    assert "/trigger/watch/" in uri
    path = LocalStorage(tmp_path / "storage").local_path_sync(uri)
    assert ion.loads(path.read_text()) == [
        {"id": 1, "name": "a"},
        {"id": 2, "name": "b"},
        {"id": 3, "name": "c"},
    ]
    await finish(stored)
    assert statuses(db) == ["DONE", "DONE", "DONE"]


async def test_fetch_type_none_is_refused(tmp_path: Path, db: Path) -> None:
    load_plugins()
    flow = f"""
id: f
namespace: company.team
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: watch
    type: {SQLITE}
    url: jdbc:sqlite:{db}
    sql: SELECT 1
    fetchType: NONE
"""
    with pytest.raises(FlowValidationError, match="fetchType NONE is not valid for triggers"):
        load_flow(flow, "flow.yml")
    t = sqlite_trigger(db, fetchType="{{ 'NONE' }}")
    with pytest.raises(TaskError, match="fetchType NONE is not valid for triggers"):
        await poll(tmp_path, MemoryKV(), t)
    assert statuses(db) == ["NEW", "NEW", "NEW"]


async def test_a_sql_error_is_the_polls_error_and_rolls_back(tmp_path: Path, db: Path) -> None:
    t = sqlite_trigger(db, afterSQL="UPDATE nowhere SET x = 1")
    with pytest.raises(TaskError, match="no such table: nowhere"):
        await poll(tmp_path, MemoryKV(), t)
    assert statuses(db) == ["NEW", "NEW", "NEW"]
    assert list((tmp_path / "trigger-work").iterdir()) == []  # the poll's folder is gone


async def test_duckdb_file(tmp_path: Path) -> None:
    path = tmp_path / "queue.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE queue (id INTEGER, done BOOLEAN)")
        conn.execute("INSERT INTO queue VALUES (1, false), (2, false)")
    kv = MemoryKV()
    t = trigger(
        type=DUCKDB,
        url=f"jdbc:duckdb:{path}",
        sql="SELECT id FROM queue WHERE NOT done ORDER BY id",
        afterSQL="UPDATE queue SET done = true WHERE NOT done",
        communityExtensions=[],
    )
    p = await poll(tmp_path, kv, t)
    assert p is not None
    assert p.variables == {
        "row": None,
        "rows": [{"id": 1}, {"id": 2}],
        "size": 2,
        "outputFiles": {},
    }
    await finish(p)
    assert await poll(tmp_path, kv, t) is None
    with duckdb.connect(str(path)) as conn:
        assert conn.execute("SELECT count(*) FROM queue WHERE done").fetchone() == (2,)
