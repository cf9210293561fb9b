"""Query, Queries and Batch, as Kestra's ``AbstractJdbcQuery`` / ``AbstractJdbcQueries`` /
``AbstractJdbcBatch`` run them, on a DB-API driver in a worker thread.

The blocking work (connect, execute, fetch, write the Ion file) runs in one thread per task
(:func:`in_thread`); the event loop waits for it or for the task's cancellation, which calls the
dialect's ``cancel`` (the server stops the statement) and then waits for the thread to unwind.
Log lines go back to the loop with ``call_soon_threadsafe``. Every driver error becomes a
:class:`~executors.base.TaskError` carrying the server's message, with the password masked.

Query (one statement; more is "Query task support only a single SQL statement. Use the Queries
task to run multiple statements."): without ``afterSQL`` the statement autocommits; with it,
statement and ``afterSQL`` (one statement) run in one transaction, committed after ``afterSQL``
and rolled back on any failure. ``parameters`` bind by name in both. Outputs: ``row`` (always
present, null unless FETCH_ONE), ``rows`` (FETCH), ``uri`` (STORE, an Ion file), ``size`` (the
rows fetched: 0/1 for FETCH_ONE; absent for NONE or a statement without a result set).

Queries: the statements of ``sql`` (:func:`executors.sql.splitter.split`), in one transaction
when ``transaction`` (default true), rolled back on failure; otherwise each autocommits. Each
statement that returns rows adds one entry to ``outputs`` (the shape above; FETCH_ONE reports
``size`` 1 even when there is no row, as Kestra does; NONE adds an empty entry and logs
"fetchType is set to NONE, no output will be returned").
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from executors.base import SECRET_MASK, TaskContext, TaskError
from executors.ion import IonWriter
from executors.sql.dialects import ConnectSpec, Dialect, Result, labels
from executors.sql.splitter import bind_named, count_statements, split
from executors.sql.urls import redact_url

FETCH_TYPES = ("FETCH", "FETCH_ONE", "STORE", "NONE")
# Rows buffered per write to the Ion file (the STORE stream is written as it arrives).
_STORE_FLUSH_ROWS = 1000
T = TypeVar("T")
Log = Callable[[str, str], None]


@dataclass(slots=True)
class Handle:
    """The connection of a running task, so the loop can cancel its statement."""

    dialect: Dialect
    conn: Any = None
    cancelled: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            conn = self.conn
        if conn is not None:
            with contextlib.suppress(Exception):
                self.dialect.cancel(conn)


@dataclass(slots=True)
class QuerySpec:
    """One Query or Queries run, every property rendered."""

    dialect: Dialect
    connect: ConnectSpec
    sql: str
    fetch_type: str
    zone: ZoneInfo
    store_dir: Path
    parameters: dict[str, Any] | None = None
    after_sql: str | None = None
    fetch_size: int = 10000
    multi: bool = False
    transaction: bool = True
    single_statement_check: bool = True
    # Runs on the new connection before the SQL (DuckDB's file_search_path, extensions).
    setup: Callable[[Any], None] | None = None
    # Trigger polls: called with the outputs before the transaction commits.
    before_commit: Callable[[list[dict[str, Any]]], None] | None = None
    secrets: tuple[str, ...] = ()


@dataclass(slots=True)
class Outcome:
    """What the thread produced: one output per result set, the STORE files to publish."""

    outputs: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    size: int = 0


def masked(text: str, secrets: Sequence[str]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, SECRET_MASK)
    return text


def driver_error(
    spec_dialect: Dialect, exc: BaseException, what: str, secrets: Sequence[str]
) -> TaskError:
    return TaskError(masked(f"{what}: {spec_dialect.message(exc)}", secrets))


def open_connection(handle: Handle, spec: ConnectSpec, secrets: Sequence[str]) -> Any:
    dialect = handle.dialect
    try:
        conn = dialect.connect(spec)
    except TaskError:
        raise
    except dialect.errors as exc:
        where = redact_url(spec.url)
        raise driver_error(dialect, exc, f"cannot connect to {where}", secrets) from None
    with handle.lock:
        handle.conn = conn
        cancelled = handle.cancelled
    if cancelled:
        dialect.close(conn)
        raise TaskError("the task was cancelled")
    return conn


def _rows(result: Result, converters: list[Any], names: list[str]) -> Iterator[dict[str, Any]]:
    for raw in result.rows:
        yield {name: conv(value) for name, conv, value in zip(names, converters, raw, strict=False)}


def collect(
    spec: QuerySpec, result: Result, index: int, log: Log
) -> tuple[dict[str, Any], Path | None]:
    """One result set as Kestra's Output (and the Ion file of STORE)."""
    assert result.description is not None
    names = labels(result.description)
    converters = spec.dialect.converters(result.description, spec.zone, result.cursor)
    rows = _rows(result, converters, names)
    output: dict[str, Any] = {"row": None}
    if spec.fetch_type == "FETCH_ONE":
        first = next(rows, None)
        for _ in rows:  # the driver must reach the end of the result before the next statement
            pass
        output["row"] = first
        output["size"] = 1 if spec.multi else int(first is not None)
        return output, None
    if spec.fetch_type == "FETCH":
        output["rows"] = list(rows)
        output["size"] = len(output["rows"])
        return output, None
    if spec.fetch_type == "STORE":
        spec.store_dir.mkdir(parents=True, exist_ok=True)
        path = spec.store_dir / f".sql-store-{id(result)}-{index}.ion"
        with path.open("wb", buffering=1 << 20) as handle:
            writer = IonWriter(handle)
            writer.write_all(rows)
        output["size"] = writer.count
        return output, path
    for _ in rows:
        pass
    if spec.multi:
        log("INFO", "fetchType is set to NONE, no output will be returned")
    return output, None


def _execute(handle: Handle, conn: Any, spec: QuerySpec, sql: str, log: Log) -> Result:
    query, values = bind_named(sql, spec.parameters, spec.dialect.placeholder)
    log("DEBUG", f"Starting query: {sql}")
    try:
        return spec.dialect.execute(conn, query, values, stream=spec.fetch_type == "STORE")
    except spec.dialect.errors as exc:
        if handle.cancelled:
            raise TaskError("the task was cancelled") from None
        raise driver_error(spec.dialect, exc, "query failed", spec.secrets) from None


def run_queries(handle: Handle, spec: QuerySpec, log: Log) -> Outcome:
    """The blocking body of Query (``multi`` false) and Queries (see the module docstring)."""
    dialect = spec.dialect
    if not spec.multi:
        if spec.single_statement_check and count_statements(spec.sql) > 1:
            raise TaskError(
                "Query task support only a single SQL statement. Use the Queries task to run "
                "multiple statements."
            )
        if spec.after_sql is not None and count_statements(spec.after_sql) > 1:
            raise TaskError(
                "Query task afterSQL supports only a single SQL statement. Use the Queries task "
                "to run multiple statements."
            )
    statements = split(spec.sql) if spec.multi else [spec.sql]
    transactional = spec.transaction if spec.multi else spec.after_sql is not None
    transactional = transactional or spec.before_commit is not None
    conn = open_connection(handle, spec.connect, spec.secrets)
    outcome = Outcome()
    try:
        if spec.setup is not None:
            spec.setup(conn)
        if transactional:
            dialect.begin(conn)
        for index, sql in enumerate(statements):
            result = _execute(handle, conn, spec, sql, log)
            if result.description is not None:
                output, path = collect(spec, result, index, log)
                outcome.outputs.append(output)
                outcome.size += int(output.get("size") or 0)
                if path is not None:
                    output["_file"] = path
                    outcome.files.append(path)
            if result.cursor is not None:
                with contextlib.suppress(Exception):
                    result.cursor.close()
        if not spec.multi and spec.after_sql is not None and spec.after_sql.strip():
            _execute(handle, conn, spec, spec.after_sql, log)
        if spec.before_commit is not None:
            spec.before_commit(outcome.outputs)
        if transactional:
            dialect.commit(conn)
        return outcome
    except BaseException:
        if transactional:
            with contextlib.suppress(Exception):
                dialect.rollback(conn)
        for path in outcome.files:
            path.unlink(missing_ok=True)
        raise
    finally:
        with handle.lock:
            handle.conn = None
        with contextlib.suppress(Exception):
            dialect.close(conn)


async def in_thread(ctx: TaskContext, handle: Handle, work: Callable[[Log], T]) -> T | None:
    """``work(log)`` in a thread; None when the task was cancelled (the statement stopped)."""
    loop = asyncio.get_running_loop()

    def log(level: str, message: str) -> None:
        loop.call_soon_threadsafe(ctx.log, level, message)

    job = asyncio.ensure_future(asyncio.to_thread(work, log))
    stop = asyncio.ensure_future(ctx.cancelled.wait())
    try:
        await asyncio.wait({job, stop}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        await asyncio.to_thread(handle.cancel)
        raise
    finally:
        stop.cancel()
    if not job.done():
        await asyncio.to_thread(handle.cancel)
        with contextlib.suppress(Exception):
            await job
        return None
    return job.result()


def shape(output: dict[str, Any], uri: str | None) -> dict[str, Any]:
    """Kestra's Output of one result set, JSON-ready (``uri`` replaces the local file)."""
    from executors.sql.values import row_output

    out: dict[str, Any] = {"row": row_output(output["row"]) if output.get("row") else None}
    if "rows" in output:
        out["rows"] = [row_output(r) for r in output["rows"]]
    if uri is not None:
        out["uri"] = uri
    if "size" in output:
        out["size"] = output["size"]
    return out
