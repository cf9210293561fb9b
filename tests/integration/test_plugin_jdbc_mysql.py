"""io.kestra.plugin.jdbc.mysql.* against the real MariaDB of deploy/local (services.py up
mariadb): database ``headwater``, user ``headwater``."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pymysql
import pytest

from executors.ion import dumps
from tests.jdbc_support import Runner

pytestmark = pytest.mark.mariadb
MY = "io.kestra.plugin.jdbc.mysql."
PORT = int(os.environ.get("HEADWATER_LOCAL_MARIADB_PORT", "3306"))
URL = f"jdbc:mysql://127.0.0.1:{PORT}/headwater"
USER, PASSWORD = "headwater", "headwater-local-only"
AUTH = {"url": URL, "username": USER, "password": PASSWORD}


def _connect() -> pymysql.Connection:  # type: ignore[type-arg]
    return pymysql.connect(
        host="127.0.0.1", port=PORT, user=USER, password=PASSWORD, database="headwater",
        autocommit=True,
    )  # fmt: skip


@pytest.fixture
def table() -> Iterator[str]:
    name = f"hw_jdbc_{uuid.uuid4().hex[:10]}"
    with _connect() as conn, conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {name} (id int primary key, name varchar(20), flag tinyint(1), "
            "amount decimal(8,2), at datetime, ts timestamp null, big bigint unsigned, "
            "y year, t time, blob_col blob)"
        )
    yield name
    with _connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path, secrets=frozenset({PASSWORD}))


async def test_types_parameters_and_store(runner: Runner, table: str) -> None:
    with _connect() as conn, conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} VALUES (1, 'a', 1, 1.50, '2024-01-02 03:04:05', "
            "'2024-01-02 03:04:05', 18446744073709551615, 2024, '10:11:12', 'ab')"
        )
    task = {**AUTH, "id": "q", "type": MY + "Query", "fetchType": "FETCH_ONE",
            "sql": f"SELECT * FROM {table} WHERE id = :id", "parameters": {"id": 1}}  # fmt: skip
    outcome = await runner.run(task)
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {
        "row": {
            "id": 1, "name": "a", "flag": True, "amount": 1.5, "at": "2024-01-02T03:04:05",
            "ts": "2024-01-02T03:04:05Z", "big": "18446744073709551615", "y": "2024-01-01",
            "t": "10:11:12", "blob_col": "YWI=",
        },
        "size": 1,
    }  # fmt: skip
    stored = await runner.run({**task, "id": "s", "fetchType": "STORE"})
    assert stored.outputs["size"] == 1
    (row,) = runner.rows(stored.outputs["uri"])
    assert row["amount"] == Decimal("1.50")
    assert row["at"] == dt.datetime(2024, 1, 2, 3, 4, 5)  # noqa: DTZ001 - a LocalDateTime
    assert row["ts"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


async def test_queries_transaction_and_after_sql(runner: Runner, table: str) -> None:
    sql = f"INSERT INTO {table} (id, name) VALUES (1, 'x'); INSERT INTO {table} (id) VALUES (1)"
    failed = await runner.run({**AUTH, "id": "tx", "type": MY + "Queries", "sql": sql})
    assert failed.state == "FAILED"
    assert "(1062) Duplicate entry '1'" in (failed.error or "")
    sql = (
        f"INSERT INTO {table} (id, name) VALUES (1, 'x'), (2, 'y'); "
        f"SELECT id, name FROM {table} ORDER BY id; SELECT count(*) AS c FROM {table}"
    )
    outcome = await runner.run({**AUTH, "id": "ok", "type": MY + "Queries", "sql": sql,
                                "fetchType": "FETCH_ONE"})  # fmt: skip
    assert outcome.outputs == {
        "outputs": [{"row": {"id": 1, "name": "x"}, "size": 1}, {"row": {"c": 2}, "size": 1}]
    }
    marked = await runner.run({
        **AUTH, "id": "a", "type": MY + "Query", "fetchType": "FETCH",
        "sql": f"SELECT id FROM {table} WHERE name <> 'done' ORDER BY id",
        "afterSQL": f"UPDATE {table} SET name = 'done'",
    })  # fmt: skip
    assert marked.outputs["rows"] == [{"id": 1}, {"id": 2}]
    again = await runner.run({**AUTH, "id": "b", "type": MY + "Query", "fetchType": "FETCH",
                              "sql": f"SELECT id FROM {table} WHERE name <> 'done'"})  # fmt: skip
    assert again.outputs == {"row": None, "rows": [], "size": 0}


async def test_wrong_password_fails_with_the_servers_answer(runner: Runner) -> None:
    outcome = await runner.run({"id": "pw", "type": MY + "Query", "url": URL, "username": USER,
                                "password": "not-the-password", "sql": "SELECT 1"})  # fmt: skip
    assert outcome.state == "FAILED"
    assert outcome.error == (
        f"cannot connect to {URL}: (1045) Access denied for user 'headwater'@'127.0.0.1' "
        "(using password: YES)"
    )


async def test_batch_with_table_columns_and_load_data_local_infile(
    runner: Runner, table: str
) -> None:
    rows = [{"id": i, "name": f"n{i}", "amount": Decimal("2.5"), "at": dt.date(2024, 1, i)}
            for i in range(1, 4)]  # fmt: skip
    source = runner.put("rows.ion", "\n".join(dumps(r) for r in rows).encode() + b"\n")
    outcome = await runner.run({**AUTH, "id": "b", "type": MY + "Batch", "from": source,
                                "sql": f"INSERT INTO {table} (id, name, amount, at) "
                                       "VALUES (?, ?, ?, ?)"})  # fmt: skip
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"rowCount": 3, "updatedCount": 3}
    csv = runner.put("more.csv", b"10,ten\n11,eleven\n")
    load = await runner.run({
        **AUTH, "id": "l", "type": MY + "Query", "inputFile": csv,
        "sql": "LOAD DATA LOCAL INFILE '{{ inputFile }}' INTO TABLE " + table
        + " FIELDS TERMINATED BY ',' (id, name)",
    })  # fmt: skip
    assert load.state == "SUCCESS", load.error
    with _connect() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT id, name, amount FROM {table} ORDER BY id")
        assert cur.fetchall() == (
            (1, "n1", Decimal("2.50")), (2, "n2", Decimal("2.50")), (3, "n3", Decimal("2.50")),
            (10, "ten", None), (11, "eleven", None),
        )  # fmt: skip
