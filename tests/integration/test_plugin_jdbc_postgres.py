"""io.kestra.plugin.jdbc.postgresql.* against the real PostgreSQL of deploy/local."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from executors.ion import dumps
from tests.jdbc_support import Runner

pytestmark = pytest.mark.postgres
PG = "io.kestra.plugin.jdbc.postgresql."


@pytest.fixture
def url(postgres_dsn: str) -> str:
    return "jdbc:" + postgres_dsn


@pytest.fixture
def table(postgres_dsn: str) -> Iterator[str]:
    name = f"hw_jdbc_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {name} (id int primary key, name text, amount numeric(8,2), "
            "at timestamptz, day date, doc jsonb, tags text[], blob bytea, "
            "status text default 'NEW')"
        )
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path)


async def test_fetch_one_maps_types_as_kestra_outputs_show_them(runner: Runner, url: str) -> None:
    sql = (
        "SELECT 1 AS i, 2.5::float8 AS f, '1.50'::numeric AS n, true AS b, 'x' AS t, "
        "DATE '2024-02-03' AS d, TIME '10:11:12.5' AS tm, TIMESTAMP '2024-02-03 10:00:00' AS ts, "
        "TIMESTAMPTZ '2024-02-03 10:00:00+00' AS tz, '{\"k\": [1, \"v\"]}'::jsonb AS j, "
        "ARRAY[1,2] AS arr, '\\x6162'::bytea AS by, "
        "INTERVAL '1 year 2 mons 3 days 04:05:06' AS iv, "
        "'7d2d1d2c-8a2b-4d3b-9a7d-000000000001'::uuid AS u, NULL::text AS nothing"
    )
    task = {"id": "q", "type": PG + "Query", "url": url, "sql": sql, "fetchType": "FETCH_ONE",
            "timeZoneId": "Europe/Paris"}  # fmt: skip
    outcome = await runner.run(task)
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {
        "row": {
            "i": 1, "f": 2.5, "n": 1.5, "b": True, "t": "x", "d": "2024-02-03",
            "tm": "10:11:12.5", "ts": "2024-02-03T10:00:00", "tz": "2024-02-03T11:00:00+01:00",
            "j": {"k": [1, "v"]}, "arr": [1, 2], "by": "YWI=", "iv": "P1Y2M3DT4H5M6S",
            "u": "7d2d1d2c-8a2b-4d3b-9a7d-000000000001", "nothing": None,
        },
        "size": 1,
    }  # fmt: skip
    assert outcome.metrics == {"fetch.size": 1}


async def test_named_parameters_are_bound_not_pasted(runner: Runner, url: str) -> None:
    task = {
        "id": "q", "type": PG + "Query", "url": url, "fetchType": "FETCH",
        "sql": "SELECT :name AS who, :n::int + 1 AS next, '50%' AS pct, ':notaparam' AS lit",
        "parameters": {"name": "x'; DROP TABLE y; --", "n": 41},
    }  # fmt: skip
    outcome = await runner.run(task)
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["rows"] == [
        {"who": "x'; DROP TABLE y; --", "next": 42, "pct": "50%", "lit": ":notaparam"}
    ]


async def test_store_streams_rows_to_an_ion_file(runner: Runner, url: str) -> None:
    sql = (
        "SELECT g AS id, g * 1.5 AS half, DATE '2024-01-01' + g AS day "
        "FROM generate_series(1, 2500) g"
    )
    outcome = await runner.run({"id": "s", "type": PG + "Query", "url": url, "sql": sql,
                                "fetchType": "STORE"})  # fmt: skip
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["size"] == 2500
    assert outcome.outputs["row"] is None
    rows = runner.rows(outcome.outputs["uri"])
    assert len(rows) == 2500
    assert rows[0] == {"id": 1, "half": Decimal("1.5"), "day": dt.date(2024, 1, 2)}
    assert rows[-1]["id"] == 2500


async def test_query_refuses_two_statements_and_queries_runs_them(
    runner: Runner, url: str, table: str
) -> None:
    two = f"INSERT INTO {table} (id) VALUES (1); SELECT 1"
    outcome = await runner.run({"id": "q", "type": PG + "Query", "url": url, "sql": two})
    assert outcome.state == "FAILED"
    assert outcome.error == (
        "Query task support only a single SQL statement. Use the Queries task to run multiple "
        "statements."
    )
    sql = (
        f"INSERT INTO {table} (id, name) VALUES (1, 'a;b'), (2, 'c'); "
        f"DO $$ BEGIN UPDATE {table} SET name = name || '!' WHERE id = 2; END $$; "
        f"SELECT id, name FROM {table} ORDER BY id; SELECT count(*) AS c FROM {table};"
    )
    outcome = await runner.run({"id": "qs", "type": PG + "Queries", "url": url, "sql": sql,
                                "fetchType": "FETCH"})  # fmt: skip
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {
        "outputs": [
            {"row": None, "rows": [{"id": 1, "name": "a;b"}, {"id": 2, "name": "c!"}], "size": 2},
            {"row": None, "rows": [{"c": 2}], "size": 1},
        ]
    }


async def test_queries_roll_back_on_failure_unless_transaction_is_false(
    runner: Runner, url: str, table: str, postgres_dsn: str
) -> None:
    sql = f"INSERT INTO {table} (id) VALUES (1); INSERT INTO {table} (id) VALUES (1)"
    outcome = await runner.run({"id": "tx", "type": PG + "Queries", "url": url, "sql": sql})
    assert outcome.state == "FAILED"
    assert "duplicate key value violates unique constraint" in (outcome.error or "")
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    outcome = await runner.run(
        {"id": "notx", "type": PG + "Queries", "url": url, "sql": sql, "transaction": False}
    )
    assert outcome.state == "FAILED"
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)


async def test_after_sql_commits_with_the_query_or_not_at_all(
    runner: Runner, url: str, table: str, postgres_dsn: str
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {table} (id) VALUES (1), (2)")
    task = {
        "id": "a", "type": PG + "Query", "url": url, "fetchType": "FETCH",
        "sql": f"SELECT id FROM {table} WHERE status = 'NEW' ORDER BY id",
        "afterSQL": f"UPDATE {table} SET status = 'DONE' WHERE status = 'NEW'",
    }  # fmt: skip
    outcome = await runner.run(task)
    assert outcome.outputs["rows"] == [{"id": 1}, {"id": 2}]
    broken = {**task, "id": "b", "afterSQL": f"UPDATE {table} SET nope = 1"}
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"UPDATE {table} SET status = 'NEW' WHERE id = 2")
    outcome = await runner.run(broken)
    assert outcome.state == "FAILED"
    assert 'column "nope"' in (outcome.error or "")
    with psycopg.connect(postgres_dsn) as conn:
        rows = conn.execute(f"SELECT id, status FROM {table} ORDER BY id").fetchall()
    assert rows == [(1, "DONE"), (2, "NEW")]


async def test_server_errors_fail_with_the_servers_answer_and_no_password(
    tmp_path: Path, url: str
) -> None:
    runner = Runner(tmp_path, secrets=frozenset({"s3cr3t-pw"}))
    bad_db = url.rsplit("/", 1)[0] + "/hw_no_such_db"
    bad_db += "?password=s3cr3t-pw"
    task = {"id": "c", "type": PG + "Query", "sql": "SELECT 1", "url": bad_db}
    outcome = await runner.run({**task, "password": "s3cr3t-pw"})
    assert outcome.state == "FAILED"
    assert 'database "hw_no_such_db" does not exist' in (outcome.error or "")
    assert "s3cr3t-pw" not in (outcome.error or "")
    assert all("s3cr3t-pw" not in m for m in runner.logs())
    outcome = await runner.run({"id": "m", "type": PG + "Query", "url": "jdbc:mysql://x/y",
                                "sql": "SELECT 1"})  # fmt: skip
    assert outcome.error == "URL scheme is invalid. URL should start with `jdbc:postgresql`"
    outcome = await runner.run({"id": "z", "type": PG + "Query", "url": url, "sql": "SELEC 1"})
    assert outcome.state == "FAILED"
    assert 'syntax error at or near "SELEC"' in (outcome.error or "")


async def test_copy_in_and_copy_out_with_csv_options(runner: Runner, url: str, table: str) -> None:
    csv_data = b"id;name\n1;alpha\n2;\n3;'quoted;x'\n"
    source = runner.put("in.csv", csv_data)
    task = {
        "id": "in", "type": PG + "CopyIn", "url": url, "from": source, "table": table,
        "columns": ["id", "name"], "format": "CSV", "header": True, "delimiter": ";",
        "quote": "'", "nullString": "",
    }  # fmt: skip
    outcome = await runner.run(task)
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"rowCount": 3}
    assert outcome.metrics == {"rows": 3}
    out = await runner.run({
        "id": "out", "type": PG + "CopyOut", "url": url, "format": "CSV", "header": True,
        "sql": f"SELECT id, name FROM {table} ORDER BY id", "forceQuote": ["name"],
    })  # fmt: skip
    assert out.state == "SUCCESS", out.error
    assert out.outputs["rowCount"] == 3
    assert runner.text(out.outputs["uri"]) == 'id,name\n1,"alpha"\n2,\n3,"quoted;x"\n'
    table_out = await runner.run({"id": "t", "type": PG + "CopyOut", "url": url, "table": table,
                                  "columns": ["id"]})  # fmt: skip
    assert runner.text(table_out.outputs["uri"]) == "1\n2\n3\n"
    bad = await runner.run({**task, "id": "bad", "from": runner.put("bad.csv", b"id;name\nx;y\n")})
    assert bad.state == "FAILED"
    assert "invalid input syntax for type integer" in (bad.error or "")


async def test_batch_inserts_ion_rows_by_columns_and_by_table(
    runner: Runner, url: str, table: str, postgres_dsn: str
) -> None:
    paris = ZoneInfo("Europe/Paris")
    rows = [
        {"id": i, "name": f"n{i}", "amount": Decimal("1.25") * i,
         "at": dt.datetime(2024, 1, 1, 10, tzinfo=paris), "day": dt.date(2024, 1, i),
         "doc": {"k": i}, "tags": ["a", "b"], "blob": b"\x00\x01"}
        for i in range(1, 6)
    ]  # fmt: skip
    source = runner.put("rows.ion", "\n".join(dumps(r) for r in rows).encode() + b"\n")
    outcome = await runner.run({"id": "b", "type": PG + "Batch", "url": url, "from": source,
                                "table": table, "chunk": 2})  # fmt: skip
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"rowCount": 5, "updatedCount": 5}
    assert "Successfully executed 3 bulk queries and updated 5 rows" in runner.logs()
    with psycopg.connect(postgres_dsn) as conn:
        got = conn.execute(f"SELECT id, amount, at, doc, tags, blob FROM {table} WHERE id = 2")
        assert got.fetchone() == (
            2, Decimal("2.50"), dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC), {"k": 2}, ["a", "b"],
            b"\x00\x01",
        )  # fmt: skip
    pairs = runner.put("pairs.ion", b'{x:6,y:"six"}\n{y:"seven",x:7}\n')
    sql = f"INSERT INTO {table} (name, id) VALUES (?, ?)"
    outcome = await runner.run({"id": "c", "type": PG + "Batch", "url": url, "from": pairs,
                                "sql": sql, "columns": ["y", "x"]})  # fmt: skip
    assert outcome.outputs == {"rowCount": 2, "updatedCount": 2}
    bad = await runner.run({"id": "d", "type": PG + "Batch", "url": url, "from": pairs,
                            "sql": sql})  # fmt: skip
    assert bad.state == "FAILED"
    assert "batch insert failed" in (bad.error or "")


async def test_cancelling_stops_the_running_statement(runner: Runner, url: str) -> None:
    ctx = runner.ctx("sleep")
    from executors.base import run_task
    from executors.plugin import PluginExecutor
    from tests.jdbc_support import BY_TYPE

    task = {"id": "sleep", "type": PG + "Query", "url": url, "sql": "SELECT pg_sleep(30)"}
    job = asyncio.ensure_future(run_task(PluginExecutor(BY_TYPE[task["type"]]), task, ctx))
    await asyncio.sleep(0.5)
    ctx.cancelled.set()
    outcome = await asyncio.wait_for(job, 10)
    assert outcome.state == "KILLED"
