"""io.kestra.plugin.jdbc.sqlite.* and duckdb.* on real database files, and the pieces every
engine shares (Kestra's splitter, parameter binding, URLs, output values)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from executors.sql.splitter import bind_named, bind_qmarks, split
from executors.sql.urls import parse_server_url, redact_url
from executors.sql.values import to_output
from tests.jdbc_support import Runner

SQ = "io.kestra.plugin.jdbc.sqlite."
DK = "io.kestra.plugin.jdbc.duckdb."


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path)


def test_split_follows_kestras_rules() -> None:
    sql = (
        "select 'a;b' as x; -- c;\nselect \"q;\" ; /* d; */ select 2;"
        "DO $$ BEGIN PERFORM 1; END $$;"
        "BEGIN IF x THEN y; END IF; END;"
        "select `a;b` from t"
    )
    assert split(sql) == [
        "select 'a;b' as x",
        '-- c;\nselect "q;"',
        "/* d; */ select 2",
        "DO $$ BEGIN PERFORM 1; END $$;",
        "BEGIN IF x THEN y; END IF; END;",
        "select `a;b` from t",
    ]
    assert split("  ;; ") == []


def test_named_and_positional_binding() -> None:
    sql = "select :a, :b::int, ':a', 50% -- :a\n, :a"
    assert bind_named(sql, {"a": 1, "b": "2"}, "format") == (
        "select %s, %s::int, ':a', 50%% -- :a\n, %s",
        [1, "2", 1],
    )
    assert bind_named(sql, None, "format") == (sql, None)
    assert bind_named("select :missing", {}, "qmark") == ("select ?", [None])
    assert bind_qmarks("insert into t values (?, '?', ?)", "format") == (
        "insert into t values (%s, '?', %s)",
        2,
    )


def test_urls_and_their_passwords() -> None:
    url = parse_server_url(
        "jdbc:postgresql://db.example:6543/sales?user=u&password=p&sslmode=require",
        ("postgresql",),
        5432,
    )
    assert (url.host, url.port, url.database, url.param("USER")) == (
        "db.example",
        6543,
        "sales",
        "u",
    )
    assert redact_url("jdbc:mysql://u:pw@h/db?password=pw") == (
        "jdbc:mysql://u:********@h/db?password=********"
    )


def test_output_values_are_shown_as_kestra_shows_them() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert to_output(dt.datetime(2024, 1, 1, 10, 0, 0, 500000, tzinfo=paris)) == (
        "2024-01-01T10:00:00.5+01:00"
    )
    assert to_output(dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)) == "2024-01-01T10:00:00Z"
    assert to_output(dt.time(9, 0)) == "09:00:00"
    assert to_output(Decimal("2.50")) == 2.5
    assert to_output(Decimal("3.00")) == 3
    assert to_output(b"\xff") == "/w=="
    assert to_output(2**70) == str(2**70)


async def test_sqlite_file_round_trip_with_types(runner: Runner) -> None:
    create = await runner.run({
        "id": "create", "type": SQ + "Queries", "outputDbFile": True, "fetchType": "FETCH",
        "sql": "CREATE TABLE t (id INTEGER, d DATE, ts DATETIME, tm TIME, r REAL, b BLOB);"
               "INSERT INTO t VALUES (1, '2024-01-02', '2024-01-02 10:00:00', '10:11:12', 1.5, "
               "x'00ff');"
               "INSERT INTO t VALUES (2, NULL, 1704189600000, NULL, NULL, NULL);"
               "SELECT * FROM t ORDER BY id",
        "timeZoneId": "Europe/Paris",
    })  # fmt: skip
    assert create.state == "SUCCESS", create.error
    assert create.outputs["outputs"] == [{
        "row": None, "size": 2, "rows": [
            {"id": 1, "d": "2024-01-02", "ts": "2024-01-02T09:00:00Z", "tm": "10:11:12",
             "r": 1.5, "b": "AP8="},
            {"id": 2, "d": None, "ts": "2024-01-02T10:00:00Z", "tm": None, "r": None, "b": None},
        ],
    }]  # fmt: skip
    db = create.outputs["databaseUri"]
    with sqlite3.connect(runner.storage.path_of(db)) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
    query = await runner.run({"id": "read", "type": SQ + "Query", "sqliteFile": db,
                              "url": "jdbc:sqlite:mine.db", "fetchType": "FETCH_ONE",
                              "sql": "SELECT max(id) AS m FROM t WHERE id < :lim",
                              "parameters": {"lim": 5}})  # fmt: skip
    assert query.outputs == {"row": {"m": 2}, "size": 1}


async def test_sqlite_errors_are_the_engines(runner: Runner) -> None:
    outcome = await runner.run({"id": "e", "type": SQ + "Query", "sql": "SELECT * FROM nope"})
    assert outcome.state == "FAILED"
    assert outcome.error == "query failed: no such table: nope"
    outcome = await runner.run({"id": "u", "type": SQ + "Query", "sql": "SELECT 1",
                                "url": "jdbc:postgresql://x/y"})  # fmt: skip
    assert outcome.error == (
        "url 'jdbc:postgresql://x/y' is not valid here: it should start with jdbc:sqlite:"
    )


async def test_duckdb_input_and_output_files(runner: Runner) -> None:
    source = runner.put("orders.csv", b"id,customer,amount\n1,ann,10.5\n2,bob,3\n")
    outcome = await runner.run({
        "id": "dq", "type": DK + "Queries", "communityExtensions": [],
        "inputFiles": {"in.csv": source, "sub/notes.txt": "hello"},
        "outputFiles": ["out"], "outputDbFile": True, "fetchType": "FETCH",
        "sql": "CREATE TABLE o AS SELECT * FROM read_csv_auto('in.csv', header=True);"
               "COPY (SELECT customer FROM o ORDER BY id) TO '{{ outputFiles.out }}' (HEADER);"
               "SELECT count(*) AS n, sum(amount) AS total FROM o;"
               "SELECT content FROM read_text('sub/notes.txt')",
    })  # fmt: skip
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["outputs"] == [
        {"row": None, "rows": [{"n": 2, "total": 13.5}], "size": 1},
        {"row": None, "rows": [{"content": "hello"}], "size": 1},
    ]
    assert runner.text(outcome.outputs["outputFiles"]["out"]) == "customer\nann\nbob\n"
    db_path = runner.storage.path_of(outcome.outputs["databaseUri"])
    with duckdb.connect(str(db_path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM o").fetchone() == (2,)
    reuse = await runner.run({"id": "again", "type": DK + "Query", "communityExtensions": [],
                              "databaseUri": outcome.outputs["databaseUri"], "fetchType": "STORE",
                              "sql": "SELECT id, TIMESTAMP '2024-01-01 10:00:00' AS at, "
                                     "'{\"a\": 1}'::JSON AS j FROM o ORDER BY id",
                              "timeZoneId": "Europe/Paris"})  # fmt: skip
    assert reuse.state == "SUCCESS", reuse.error
    rows = runner.rows(reuse.outputs["uri"])
    assert rows[0] == {
        "id": 1,
        "at": dt.datetime(2024, 1, 1, 10, tzinfo=ZoneInfo("Europe/Paris")),
        "j": {"a": 1},
    }


async def test_duckdb_extensions_are_best_effort(runner: Runner) -> None:
    outcome = await runner.run({"id": "x", "type": DK + "Query", "sql": "SELECT 42 AS v",
                                "communityExtensions": ["not_an_extension_hw", "bad name"],
                                "fetchType": "FETCH_ONE"})  # fmt: skip
    assert outcome.outputs["row"] == {"v": 42}
    messages = runner.logs()
    assert any("Skipping DuckDB community extension 'bad name'" in m for m in messages)
    assert any("'not_an_extension_hw'. Continuing without it" in m for m in messages)
