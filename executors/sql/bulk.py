"""Bulk loads: PostgreSQL's COPY (``CopyIn`` / ``CopyOut``) and JDBC's ``Batch``.

COPY's statement is built as Kestra's ``AbstractCopy.query`` builds it: ``COPY <table>
[(<columns>)]`` or ``COPY (<sql>)``, then ``FROM STDIN`` / ``TO STDOUT``, then ``WITH (...)``
holding, in this order, ``FORMAT CSV|BINARY`` (TEXT is the default and not written), ``OIDS``,
``FREEZE``, ``DELIMITER``, ``NULL``, ``HEADER TRUE|FALSE``, ``QUOTE``, ``ESCAPE``,
``FORCE_QUOTE (...)`` (or ``*``), ``FORCE_NOT_NULL (...)``, ``FORCE_NULL (...)``, ``ENCODING``.
Quotes inside the option values are doubled (Kestra pastes them as they are). The data streams
between the file and the server in blocks; ``rowCount`` is the server's count.

Batch (``AbstractJdbcBatch``): the rows of an Ion file are bound to ``sql``'s ``?`` placeholders
``chunk`` rows at a time, each chunk committed. A struct row binds its values in ``columns``
order (a missing column binds NULL) or, without ``columns``, in its own order, padded with NULL
up to the number of placeholders; a list row binds positionally. Without ``sql``, ``table``'s
columns (from the catalog, unless ``columns`` is set) make ``INSERT INTO <table> (<columns>)
VALUES (?, ...)``; with both, ``table`` is ignored (logged). Connection failures are retried
``maxRetries`` times ``retryBackoff`` apart when ``retryScope`` is ``ALL``, resuming after the
last committed chunk (``resumeOnRetry``). Outputs ``rowCount`` and ``updatedCount``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from executors.base import TaskError
from executors.ion import IonError, iter_values
from executors.sql.dialects import ConnectSpec, Dialect
from executors.sql.engine import Handle, Log, driver_error, open_connection
from executors.sql.splitter import bind_qmarks

# COPY moves data in blocks of this size: big enough for throughput, small in memory.
COPY_BLOCK_BYTES = 1 << 20


@dataclass(slots=True)
class CopyOptions:
    """The rendered options of a COPY (None: not given)."""

    format: str = "TEXT"
    oids: bool | None = None
    freeze: bool | None = None
    delimiter: str | None = None
    null_string: str | None = None
    header: bool | None = None
    quote: str | None = None
    escape: str | None = None
    force_quote: list[str] = field(default_factory=list)
    force_not_null: list[str] = field(default_factory=list)
    force_null: list[str] = field(default_factory=list)
    encoding: str | None = None


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def copy_statement(
    table: str | None, columns: list[str], query: str | None, direction: str, opts: CopyOptions
) -> str:
    """Kestra's ``AbstractCopy.query`` (see the module docstring)."""
    sql = ["COPY"]
    if query is None:
        if not table:
            raise TaskError("property 'table' is required (or 'sql' for CopyOut)")
        sql.append(table)
        if columns:
            sql.append("(" + ", ".join(columns) + ")")
    else:
        sql.append("(" + query + ")")
    sql.append(direction)
    options: list[str] = []
    if opts.format != "TEXT":
        options.append("FORMAT " + opts.format)
    if opts.oids:
        options.append("OIDS")
    if opts.freeze:
        options.append("FREEZE")
    if opts.delimiter is not None:
        options.append("DELIMITER " + _literal(opts.delimiter))
    if opts.null_string is not None:
        options.append("NULL " + _literal(opts.null_string))
    if opts.header is not None:
        options.append("HEADER " + ("TRUE" if opts.header else "FALSE"))
    if opts.quote is not None:
        options.append("QUOTE " + _literal(opts.quote))
    if opts.escape is not None:
        options.append("ESCAPE " + _literal(opts.escape))
    if opts.force_quote:
        star = opts.force_quote == ["*"]
        options.append("FORCE_QUOTE " + ("*" if star else "(" + ", ".join(opts.force_quote) + ")"))
    if opts.force_not_null:
        options.append("FORCE_NOT_NULL (" + ", ".join(opts.force_not_null) + ")")
    if opts.force_null:
        options.append("FORCE_NULL (" + ", ".join(opts.force_null) + ")")
    if opts.encoding is not None:
        options.append("ENCODING " + _literal(opts.encoding))
    if options:
        sql.append("WITH (" + ", ".join(options) + ")")
    return " ".join(sql)


def copy_in(
    handle: Handle, spec: ConnectSpec, sql: str, source: Path, secrets: Sequence[str], log: Log
) -> int:
    conn = open_connection(handle, spec, secrets)
    log("DEBUG", f"Starting query: {sql}")
    try:
        with conn.cursor() as cur:
            with cur.copy(sql) as copy, source.open("rb") as data:
                while block := data.read(COPY_BLOCK_BYTES):
                    copy.write(block)
            return max(int(cur.rowcount), 0)
    except handle.dialect.errors as exc:
        raise _failed(handle, exc, "COPY failed", secrets) from None
    finally:
        _release(handle, conn)


def copy_out(
    handle: Handle, spec: ConnectSpec, sql: str, target: Path, secrets: Sequence[str], log: Log
) -> int:
    conn = open_connection(handle, spec, secrets)
    log("DEBUG", f"Starting query: {sql}")
    try:
        with conn.cursor() as cur, target.open("wb") as out:
            with cur.copy(sql) as copy:
                for block in copy:
                    out.write(block)
            return max(int(cur.rowcount), 0)
    except handle.dialect.errors as exc:
        raise _failed(handle, exc, "COPY failed", secrets) from None
    finally:
        _release(handle, conn)


def _failed(handle: Handle, exc: BaseException, what: str, secrets: Sequence[str]) -> TaskError:
    if handle.cancelled:
        return TaskError("the task was cancelled")
    return driver_error(handle.dialect, exc, what, secrets)


def _release(handle: Handle, conn: Any) -> None:
    with handle.lock:
        handle.conn = None
    with contextlib.suppress(Exception):
        handle.dialect.close(conn)


# ---------------------------------------------------------------------------------- Batch


@dataclass(slots=True)
class BatchSpec:
    dialect: Dialect
    connect: ConnectSpec
    source: Path
    sql: str | None
    table: str | None
    columns: list[str]
    chunk: int
    max_retries: int = 3
    retry_backoff_s: float = 1.0
    retry_all: bool = False
    resume: bool = True
    secrets: tuple[str, ...] = ()


@dataclass(slots=True)
class BatchCounts:
    rows: int = 0
    updated: int = 0
    queries: int = 0


def _bindings(row: Any, columns: list[str], params: int, line: int) -> list[Any]:
    if isinstance(row, dict):
        if columns:
            return [row.get(c) for c in columns]
        values = list(row.values())
        return values + [None] * (params - len(values))
    if isinstance(row, list):
        return row
    raise TaskError(f"row {line} of the input file is a {type(row).__name__}, not a map or a list")


def _ion_rows(source: IO[bytes]) -> Iterator[Any]:
    try:
        yield from iter_values(source)
    except IonError as exc:
        raise TaskError(f"the input file is not a valid Ion file: {exc}") from None


def run_batch(handle: Handle, spec: BatchSpec, log: Log) -> BatchCounts:
    counts = BatchCounts()
    attempt = 0
    while True:
        try:
            _batch_attempt(handle, spec, counts, log)
            return counts
        except TaskError as exc:
            retryable = isinstance(exc.__cause__, _Retryable)
            if not (retryable and spec.retry_all and attempt < spec.max_retries):
                raise
            attempt += 1
            log("WARN", f"{exc}; retrying ({attempt}/{spec.max_retries})")
            if not spec.resume:
                counts.rows = counts.updated = 0  # start over from the first row
            time.sleep(spec.retry_backoff_s)


class _Retryable(Exception):
    """A connection failure (SQLSTATE class 08 or the driver's OperationalError)."""


def _batch_attempt(handle: Handle, spec: BatchSpec, counts: BatchCounts, log: Log) -> None:
    dialect = spec.dialect
    conn = open_connection(handle, spec.connect, spec.secrets)
    try:
        sql, columns = spec.sql, list(spec.columns)
        if sql is None:
            if not spec.table:
                raise TaskError("Batch needs 'sql', or 'table' to build the INSERT from")
            if not columns:
                columns = dialect.table_columns(conn, spec.table)
                if not columns:
                    raise TaskError(f"table {spec.table!r} has no columns (does it exist?)")
            marks = ", ".join("?" for _ in columns)
            # The user's table and its columns, as Kestra builds the statement.
            sql = f"INSERT INTO {spec.table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
        elif spec.table:
            log("INFO", f"table '{spec.table}' is ignored when sql is provided")
        query, params = bind_qmarks(sql, dialect.placeholder)
        log("DEBUG", f"Starting prepared statement: {sql}")
        skip = counts.rows
        buffer: list[list[Any]] = []
        with spec.source.open("rb") as source:
            for line, row in enumerate(_ion_rows(source), start=1):
                if line <= skip:
                    continue
                buffer.append(dialect.bind_value_row(_bindings(row, columns, params, line)))
                if len(buffer) >= spec.chunk:
                    _flush(dialect, conn, query, buffer, counts)
            if buffer:
                _flush(dialect, conn, query, buffer, counts)
    except dialect.errors as exc:
        error = _failed(handle, exc, "batch insert failed", spec.secrets)
        if dialect.is_connection_error(exc):
            raise error from _Retryable()
        raise error from None
    finally:
        _release(handle, conn)


def _flush(
    dialect: Dialect, conn: Any, query: str, buffer: list[list[Any]], counts: BatchCounts
) -> None:
    dialect.begin(conn)
    try:
        updated = dialect.executemany(conn, query, buffer)
        dialect.commit(conn)
    except BaseException:
        with contextlib.suppress(Exception):
            dialect.rollback(conn)
        raise
    counts.rows += len(buffer)
    counts.updated += updated
    counts.queries += 1
    buffer.clear()
