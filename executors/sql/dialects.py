"""One DB-API 2.0 driver per engine, behind one small interface (:class:`Dialect`).

Every method is blocking and runs in the task's worker thread (:mod:`executors.sql.engine`),
except :meth:`Dialect.cancel`, which the event loop calls to stop a running statement.
:meth:`Dialect.converters` builds, once per result set, one function per column that turns the
driver's value into what Kestra's cell converter of that engine returns (see
:mod:`executors.sql.values` for how those are shown):

- PostgreSQL (psycopg 3; ``PostgresCellConverter``): ``timestamptz`` -> aware datetime in
  ``timeZoneId``; ``timestamp`` -> naive; ``timetz`` -> the local time in ``timeZoneId``;
  ``interval`` -> ``"P1Y2M3DT4H5M6S"``; ``json``/``jsonb`` -> parsed (any JSON value; Kestra
  only maps objects); arrays -> lists; ``uuid``, ``inet``, ranges... -> text; ``bytea`` -> bytes.
- MySQL/MariaDB (PyMySQL; ``MysqlCellConverter``): ``TINYINT(1)`` and ``BIT(1)`` -> booleans
  (Connector/J's ``tinyInt1isBit``); ``BIGINT UNSIGNED`` -> text (a Java BigInteger);
  ``YEAR`` -> the year's first day; ``TIME`` -> a time; ``DATETIME`` -> naive; ``TIMESTAMP``
  -> an instant (the session runs in UTC); ``JSON`` -> text, as Connector/J returns it.
- SQLite (sqlite3; ``SqliteCellConverter``): columns declared ``DATE`` -> date, ``DATETIME`` /
  ``TIMESTAMP`` -> an instant (text read as ISO-8601 or ``yyyy-MM-dd HH:mm:ss``, a local value
  in ``timeZoneId``; a number as epoch milliseconds, sqlite-jdbc's default), ``TIME`` -> time.
- DuckDB (duckdb; ``DuckDbCellConverter``): ``TIMESTAMP`` -> aware, the local value in
  ``timeZoneId``; ``TIMESTAMPTZ`` -> aware in UTC; ``JSON`` -> parsed; ``HUGEINT`` /
  ``UBIGINT`` -> text; structs and maps -> dicts; ``INTERVAL`` -> ``Duration`` text.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from executors.base import TaskError
from executors.sql.splitter import Placeholder
from executors.sql.urls import is_true, parse_server_url
from executors.sql.values import kestra_interval
from schemas.flow.common import format_duration

Convert = Callable[[Any], Any]
_PLAIN = (bool, int, float, str, Decimal, dt.date, dt.time, bytes, dict, list)


@dataclass(slots=True)
class ConnectSpec:
    """Everything a dialect needs to open a connection (rendered already)."""

    url: str
    username: str | None = None
    password: str | None = None
    database: str | None = None  # embedded engines: the file (None: in memory)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Result:
    """One executed statement: its columns (None when it returns no rows) and its rows."""

    description: Sequence[Any] | None
    rows: Iterator[Sequence[Any]]
    rowcount: int = -1
    cursor: Any = None


def plain(value: Any) -> Any:
    """A driver value nothing more specific applies to: kept when it is plain data."""
    if value is None or isinstance(value, _PLAIN):
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        return value
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, dt.timedelta):
        # Duration.toString of the interval (PT26H3M0.5S), to the microsecond.
        return format_duration(value.total_seconds(), digits=6)
    return str(value)


class Dialect:
    """The interface; see the module docstring."""

    name = ""
    placeholder: Placeholder = "format"
    errors: tuple[type[BaseException], ...] = ()

    def connect(self, spec: ConnectSpec) -> Any:
        raise NotImplementedError

    def set_autocommit(self, conn: Any, on: bool) -> None:
        conn.autocommit = on

    def begin(self, conn: Any) -> None:
        self.set_autocommit(conn, False)

    def commit(self, conn: Any) -> None:
        conn.commit()

    def rollback(self, conn: Any) -> None:
        conn.rollback()

    def cancel(self, conn: Any) -> None:
        """Stop the statement running on ``conn`` (called from another thread)."""

    def close(self, conn: Any) -> None:
        conn.close()

    def execute(self, conn: Any, sql: str, params: list[Any] | None, stream: bool) -> Result:
        cur = conn.cursor()
        if params is None:
            cur.execute(sql)
        else:
            cur.execute(sql, params)
        return Result(cur.description, _fetch_all(cur), cur.rowcount, cur)

    def executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        cur = conn.cursor()
        cur.executemany(sql, rows)
        count = int(cur.rowcount)
        cur.close()
        return max(count, 0)

    def converters(self, description: Sequence[Any], zone: ZoneInfo, cursor: Any) -> list[Convert]:
        return [plain for _ in description]

    def table_columns(self, conn: Any, table: str) -> list[str]:
        raise TaskError(f"{self.name} cannot list the columns of a table")

    def bind_value_row(self, row: list[Any]) -> list[Any]:
        """A row read from an Ion file, as the driver can bind it."""
        return row

    def is_connection_error(self, exc: BaseException) -> bool:
        """A lost or refused connection (worth a retry), not a statement's error."""
        return False

    def message(self, exc: BaseException) -> str:
        """A driver error as the server said it."""
        return str(exc).strip() or type(exc).__name__


def _fetch_all(cur: Any, size: int = 1000) -> Iterator[Sequence[Any]]:
    if cur.description is None:
        return
    while True:
        batch = cur.fetchmany(size)
        if not batch:
            return
        yield from batch


def labels(description: Sequence[Any]) -> list[str]:
    return [str(d[0]) for d in description]


# ----------------------------------------------------------------------------- PostgreSQL

_PG_TIMESTAMPTZ, _PG_TIMETZ, _PG_INTERVAL = 1184, 1266, 1186
_PG_INTERVAL_PART = re.compile(r"([+-]?\d+) (year|mon|day)s?")
_PG_INTERVAL_TIME = re.compile(r"([+-])?(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")


def parse_pg_interval(text: str) -> str:
    """PostgreSQL's text of an interval (IntervalStyle ``postgres``) in Kestra's format."""
    parts = {"year": 0, "mon": 0, "day": 0}
    for number, unit in _PG_INTERVAL_PART.findall(text):
        parts[unit] = int(number)
    seconds = 0.0
    match = _PG_INTERVAL_TIME.search(text)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        seconds = sign * (int(match.group(2)) * 3600 + int(match.group(3)) * 60)
        seconds += sign * float(match.group(4))
    return kestra_interval(parts["year"], parts["mon"], parts["day"], seconds)


class Postgres(Dialect):
    name = "postgresql"
    placeholder: Placeholder = "format"

    def __init__(self) -> None:
        import psycopg

        self.errors = (psycopg.Error,)

    def connect(self, spec: ConnectSpec) -> Any:
        import psycopg
        from psycopg.adapt import Loader

        url = parse_server_url(spec.url, ("postgresql", "postgres"), 5432)
        user = spec.username or url.param("user") or url.user
        kwargs: dict[str, Any] = {
            "host": url.host,
            "port": url.port,
            "dbname": url.database or user or "postgres",
            "user": user,
            "password": spec.password or url.param("password") or url.password,
            "connect_timeout": int(url.param("connectTimeout") or spec.options.pop("timeout", 10)),
            "autocommit": True,
        }
        sslmode = url.param("sslmode")
        if is_true(url.param("ssl")) and not sslmode:
            sslmode = "verify-full"  # pgJDBC: ssl=true without sslmode verifies the server
        kwargs.update({k: v for k, v in spec.options.items() if v is not None})
        if sslmode and "sslmode" not in spec.options:
            kwargs["sslmode"] = sslmode.lower()
        options = []
        if url.param("currentSchema"):
            options.append(f"-c search_path={url.param('currentSchema')}")
        if url.param("options"):
            options.append(str(url.param("options")))
        if options:
            kwargs["options"] = " ".join(options)
        if url.param("ApplicationName"):
            kwargs["application_name"] = url.param("ApplicationName")
        conn = psycopg.connect(**{k: v for k, v in kwargs.items() if v is not None})

        class IntervalLoader(Loader):
            def load(self, data: Any) -> str:
                return parse_pg_interval(bytes(data).decode())

        conn.adapters.register_loader("interval", IntervalLoader)
        return conn

    def cancel(self, conn: Any) -> None:
        canceller = getattr(conn, "cancel_safe", None) or conn.cancel
        canceller()

    def is_connection_error(self, exc: BaseException) -> bool:
        import psycopg

        state = getattr(exc, "sqlstate", None) or ""
        return isinstance(exc, psycopg.OperationalError) or state.startswith("08")

    def execute(self, conn: Any, sql: str, params: list[Any] | None, stream: bool) -> Result:
        cur = conn.cursor()
        if not stream:
            cur.execute(sql, params, prepare=False)
            return Result(cur.description, _fetch_all(cur), cur.rowcount, cur)
        rows = cur.stream(sql, params)
        first = next(rows, None)  # the description is known once the result started
        return Result(cur.description, _chain(first, rows), cur.rowcount, cur)

    def executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        from psycopg.types.json import Jsonb

        fixed = [[Jsonb(v) if isinstance(v, dict) else v for v in row] for row in rows]
        with conn.cursor() as cur:
            cur.executemany(sql, fixed)
            return max(int(cur.rowcount), 0)

    def converters(self, description: Sequence[Any], zone: ZoneInfo, cursor: Any) -> list[Convert]:
        def timestamptz(value: Any) -> Any:
            return value.astimezone(zone) if isinstance(value, dt.datetime) else plain(value)

        def timetz(value: Any) -> Any:
            if not isinstance(value, dt.time) or value.tzinfo is None:
                return plain(value)
            moment = dt.datetime.combine(dt.date(1970, 1, 1), value)
            return moment.astimezone(zone).time().replace(tzinfo=None)

        out: list[Convert] = []
        for column in description:
            oid = column.type_code
            out.append(timestamptz if oid == _PG_TIMESTAMPTZ else timetz if oid == _PG_TIMETZ
                       else plain)  # fmt: skip
        return out

    def table_columns(self, conn: Any, table: str) -> list[str]:
        cur = conn.execute(
            "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s::regclass "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            [table],
        )
        return [str(r[0]) for r in cur.fetchall()]


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    if first is None:
        return
    yield first
    yield from rest


# -------------------------------------------------------------------------- MySQL / MariaDB

# PyMySQL's FIELD_TYPE codes and column flags.
_MY_TINY, _MY_LONGLONG, _MY_TIMESTAMP, _MY_TIME, _MY_YEAR, _MY_BIT = 1, 8, 7, 11, 13, 16
_MY_UNSIGNED = 32


class MySql(Dialect):
    name = "mysql"
    placeholder: Placeholder = "format"

    def __init__(self) -> None:
        import pymysql

        self.errors = (pymysql.MySQLError,)

    def connect(self, spec: ConnectSpec) -> Any:
        import pymysql

        url = parse_server_url(spec.url, ("mysql", "mariadb"), 3306)
        ssl = None
        mode = (url.param("sslMode") or "").upper()
        if is_true(url.param("useSSL")) or mode in ("REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"):
            ssl = {"check_hostname": mode == "VERIFY_IDENTITY"}
        timeout_ms = url.param("connectTimeout")
        return pymysql.connect(
            host=url.host,
            port=url.port,
            user=spec.username or url.param("user") or url.user,
            password=spec.password or url.param("password") or url.password or "",
            database=url.database,
            connect_timeout=int(timeout_ms) / 1000 if timeout_ms else 10,
            ssl=ssl,
            autocommit=True,
            charset="utf8mb4",
            # TIMESTAMP values are instants: read them in UTC (Kestra's workers run in UTC).
            init_command="SET time_zone = '+00:00'",
            local_infile=bool(spec.options.get("local_infile")),
            cursorclass=pymysql.cursors.SSCursor,
        )

    def set_autocommit(self, conn: Any, on: bool) -> None:
        conn.autocommit(on)

    def bind_value_row(self, row: list[Any]) -> list[Any]:
        out: list[Any] = []
        for value in row:
            if isinstance(value, dict | list):
                value = json.dumps(value, default=str)
            elif isinstance(value, dt.datetime) and value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            elif isinstance(value, dt.time) and value.tzinfo is not None:
                value = value.replace(tzinfo=None)
            out.append(value)
        return out

    def is_connection_error(self, exc: BaseException) -> bool:
        args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
        return bool(args) and args[0] in (2003, 2006, 2013)

    def begin(self, conn: Any) -> None:
        conn.begin()

    def cancel(self, conn: Any) -> None:
        import pymysql

        # PyMySQL cannot be used from two threads: KILL QUERY from a second connection.
        host, port = conn.host, conn.port
        try:
            other = pymysql.connect(
                host=host, port=port, user=conn.user, password=conn.password, connect_timeout=5
            )
        except pymysql.MySQLError:
            return
        try:
            with other.cursor() as cur:
                cur.execute(f"KILL QUERY {int(conn.thread_id())}")
        finally:
            other.close()

    def close(self, conn: Any) -> None:
        try:
            conn.close()
        except Exception:  # noqa: S110 - a broken connection is closed anyway
            pass

    def converters(self, description: Sequence[Any], zone: ZoneInfo, cursor: Any) -> list[Convert]:
        fields = getattr(getattr(cursor, "_result", None), "fields", None) or []
        out: list[Convert] = []
        for index, column in enumerate(description):
            code, length = column[1], column[3]
            flags = fields[index].flags if index < len(fields) else 0
            if code == _MY_TINY and length == 1:
                out.append(lambda v: v if v is None else bool(v))
            elif code == _MY_BIT and length == 1:
                out.append(lambda v: v if v is None else v not in (b"\x00", 0))
            elif code == _MY_LONGLONG and flags & _MY_UNSIGNED:
                out.append(lambda v: v if v is None else str(v))
            elif code == _MY_YEAR:
                out.append(lambda v: v if v is None else dt.date(int(v), 1, 1))
            elif code == _MY_TIME:
                out.append(_mysql_time)
            elif code == _MY_TIMESTAMP:
                out.append(lambda v: v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime)
                           else v)  # fmt: skip
            else:
                out.append(plain)
        return out

    def table_columns(self, conn: Any, table: str) -> list[str]:
        schema, _, name = table.rpartition(".")
        with conn.cursor() as cur:
            cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "AND table_schema = COALESCE(NULLIF(%s, ''), DATABASE()) ORDER BY ordinal_position",
                [name, schema],
            )
            return [str(r[0]) for r in cur.fetchall()]

    def message(self, exc: BaseException) -> str:
        args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
        if len(args) == 2 and isinstance(args[0], int):
            return f"({args[0]}) {args[1]}"
        return super().message(exc)


def _mysql_time(value: Any) -> Any:
    if isinstance(value, dt.timedelta) and dt.timedelta(0) <= value < dt.timedelta(days=1):
        hours, rest = divmod(value.seconds, 3600)
        return dt.time(hours, rest // 60, rest % 60, value.microseconds)
    return plain(value)


# --------------------------------------------------------------------------------- SQLite


class _Declared:
    """A value of a column declared DATE / DATETIME / TIMESTAMP / TIME (sqlite3 converters)."""

    __slots__ = ("kind", "raw")

    def __init__(self, kind: str, raw: bytes) -> None:
        self.kind, self.raw = kind, raw


def _declared(kind: str) -> Callable[[bytes], _Declared]:
    return lambda raw: _Declared(kind, raw)


for _kind in ("DATE", "DATETIME", "TIMESTAMP", "TIME"):
    sqlite3.register_converter(_kind, _declared(_kind))


def _sqlite_instant(text: str, zone: ZoneInfo) -> dt.datetime:
    if re.fullmatch(r"-?\d+", text):  # sqlite-jdbc's default date class: epoch milliseconds
        return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC)
    candidate = text.strip().replace(" ", "T", 1)
    if "[" in candidate:
        candidate = candidate.split("[", 1)[0]
    parsed = dt.datetime.fromisoformat(candidate.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(dt.UTC)


class Sqlite(Dialect):
    name = "sqlite"
    placeholder: Placeholder = "qmark"
    errors = (sqlite3.Error,)

    def connect(self, spec: ConnectSpec) -> Any:
        return sqlite3.connect(
            spec.database or ":memory:",
            detect_types=sqlite3.PARSE_DECLTYPES,
            isolation_level=None,
            check_same_thread=False,
            uri=bool(spec.options.get("uri")),
        )

    def set_autocommit(self, conn: Any, on: bool) -> None:
        if on and conn.in_transaction:
            conn.execute("COMMIT")

    def begin(self, conn: Any) -> None:
        conn.execute("BEGIN")

    def commit(self, conn: Any) -> None:
        if conn.in_transaction:
            conn.execute("COMMIT")

    def rollback(self, conn: Any) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def cancel(self, conn: Any) -> None:
        conn.interrupt()

    def converters(self, description: Sequence[Any], zone: ZoneInfo, cursor: Any) -> list[Convert]:
        def convert(value: Any) -> Any:
            if not isinstance(value, _Declared):
                return plain(value)
            text = value.raw.decode("utf-8", "replace")
            try:
                if value.kind == "DATE":
                    return dt.date.fromisoformat(text)
                if value.kind == "TIME":
                    return dt.time.fromisoformat(text)
                return _sqlite_instant(text, zone)
            except ValueError:
                raise TaskError(
                    f"cannot read {text!r} as a {value.kind} (column declared {value.kind})"
                ) from None

        return [convert for _ in description]


# --------------------------------------------------------------------------------- DuckDB


class DuckDb(Dialect):
    name = "duckdb"
    placeholder: Placeholder = "qmark"

    def __init__(self) -> None:
        import duckdb

        self.errors = (duckdb.Error,)

    def connect(self, spec: ConnectSpec) -> Any:
        import duckdb

        return duckdb.connect(spec.database or ":memory:")

    def set_autocommit(self, conn: Any, on: bool) -> None:
        pass  # DuckDB's Python connection commits each statement unless BEGIN was sent

    def begin(self, conn: Any) -> None:
        conn.execute("BEGIN TRANSACTION")

    def commit(self, conn: Any) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: Any) -> None:
        try:
            conn.execute("ROLLBACK")
        except Exception as exc:
            if "no transaction is active" not in str(exc):
                raise

    def cancel(self, conn: Any) -> None:
        conn.interrupt()

    def execute(self, conn: Any, sql: str, params: list[Any] | None, stream: bool) -> Result:
        cur = conn.execute(sql, params) if params is not None else conn.execute(sql)
        description = cur.description
        if description and len(description) == 1 and description[0][0] == "Count":
            # DDL/DML answer a "Count" row where JDBC reports an update count, not a result set.
            import duckdb

            changed = duckdb.ExpectedResultType.CHANGED_ROWS
            statements = conn.extract_statements(sql)
            if statements and changed in statements[-1].expected_result_type:
                return Result(None, iter(()), -1, None)
        # ``execute`` returns the connection itself: it is not closed after the statement.
        return Result(description, _fetch_all(cur), -1, None)

    def converters(self, description: Sequence[Any], zone: ZoneInfo, cursor: Any) -> list[Convert]:
        out: list[Convert] = []
        for column in description:
            kind = str(column[1]).upper()
            if kind in ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATETIME"):
                out.append(lambda v: v.replace(tzinfo=zone) if isinstance(v, dt.datetime)
                           else plain(v))  # fmt: skip
            elif kind == "TIMESTAMP WITH TIME ZONE":
                out.append(lambda v: v.astimezone(dt.UTC) if isinstance(v, dt.datetime)
                           else plain(v))  # fmt: skip
            elif kind == "JSON":
                out.append(lambda v: json.loads(v) if isinstance(v, str) else plain(v))
            elif kind in ("HUGEINT", "UHUGEINT", "UBIGINT"):
                out.append(lambda v: v if v is None else str(v))
            else:
                out.append(plain)
        return out


DIALECTS: dict[str, Callable[[], Dialect]] = {
    "postgresql": Postgres,
    "mysql": MySql,
    "sqlite": Sqlite,
    "duckdb": DuckDb,
}
