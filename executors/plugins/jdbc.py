"""Kestra's JDBC plugin (kestra-io/plugin-jdbc): SQL on PostgreSQL, MySQL/MariaDB, SQLite, DuckDB.

Types: ``jdbc.postgresql.{Query, Queries, CopyIn, CopyOut, Batch}`` (psycopg 3),
``jdbc.mysql.{Query, Queries, Batch}`` (PyMySQL; MariaDB servers too), ``jdbc.sqlite.{Query,
Queries}`` (Python's sqlite3), ``jdbc.duckdb.{Query, Queries}`` (duckdb), and the polling
``Trigger`` of each engine (:mod:`executors.plugins.jdbc_trigger`). One implementation serves
them all (:mod:`executors.sql`); the engines differ by data: their driver, URL and cell conversion
(:mod:`executors.sql.dialects`) and, for the embedded ones, their files
(:mod:`executors.sql.embedded`).

What Kestra does, and this module ports:

- Connection: ``url`` (a JDBC URL of the engine's scheme, else "URL scheme is invalid";
  parsed by :mod:`executors.sql.urls`), ``username``, ``password`` (winning over the URL's);
  ``connectionPooling`` / ``connectionPoolSize`` are accepted (each run opens its own
  connection). A wrong password fails the task with the server's answer, the password masked.
- ``sql`` is rendered (DuckDB/SQLite add ``workingDir``, ``outputFiles``...); ``parameters`` (a
  map) binds ``:name`` placeholders as values, never as SQL text (:mod:`executors.sql.splitter`).
- ``fetchType`` (NONE by default): FETCH -> ``rows`` + ``size``; FETCH_ONE -> ``row`` + ``size``;
  STORE -> ``uri`` (an Ion file in internal storage, rows streamed to it) + ``size``; NONE ->
  nothing. The deprecated booleans ``fetch`` / ``fetchOne`` / ``store`` win over it, in the order
  fetch, fetchOne, store. ``fetchSize`` is the driver's batch (STORE on PostgreSQL streams rows
  one at a time instead). Outputs always hold ``row`` (null unless FETCH_ONE), as Kestra's
  ``@JsonInclude`` does. Metric ``fetch.size``: rows fetched.
- ``timeZoneId`` (default: the worker's zone, UTC): the zone of values with a time zone, and of
  zone-less values an engine reads as instants (see the dialects).
- Query / Queries / afterSQL / transactions: :mod:`executors.sql.engine`.
- CopyIn / CopyOut / Batch: :mod:`executors.sql.bulk`. CopyIn: ``from`` (a ``kestra://`` file),
  ``table``, ``columns``, and COPY's options ``format`` (TEXT | CSV | BINARY), ``oids``,
  ``freeze``, ``delimiter``, ``nullString``, ``header``, ``quote``, ``escape``, ``forceQuote``,
  ``forceNotNull``, ``forceNull``, ``encoding``; output ``rowCount``, metric ``rows``. CopyOut:
  the same with ``sql`` (a query) or ``table``; outputs ``uri`` and ``rowCount``.
- PostgreSQL's ``ssl`` (true without ``sslMode`` is verify-full, pgJDBC's default), ``sslMode``
  (DISABLE | ALLOW | PREFER | REQUIRE | VERIFY_CA | VERIFY_FULL), ``sslRootCert`` / ``sslCert`` /
  ``sslKey`` (PEM texts, written to private temporary files), ``sslKeyPassword``. Untested here:
  the local server has no TLS.
- MySQL's ``inputFile`` (a ``kestra://`` file written as ``inputFile`` in the working directory,
  ``{{ inputFile }}`` in the SQL) enables ``LOAD DATA LOCAL INFILE`` for that file only.

Differences: ``outputFiles`` only exists for DuckDB and SQLite (Kestra accepts it everywhere and
ignores it on servers). JSON arrays in PostgreSQL json columns are returned (Kestra fails on
them). Decimals in FETCH outputs are JSON numbers (Kestra keeps the scale: ``10.50``).
ClickHouse, Snowflake, Redshift, Oracle, SQL Server, Trino, Vertica, Dremio... are not provided:
no server of theirs can run here to test them (Debian's only ClickHouse is 18.16, from 2018).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from executors.base import TaskContext, TaskError, TaskOutcome
from executors.plugin import render_bool, render_int, render_list, render_seconds
from executors.sql.bulk import BatchSpec, CopyOptions, copy_in, copy_out, copy_statement, run_batch
from executors.sql.embedded import DuckDbTask, SqliteTask
from executors.sql.engine import Handle, in_thread
from executors.sql.files import copy_from_storage, publish
from executors.sql.tasks import Environment, SqlQueries, SqlQuery, SqlTask, working_directory
from schemas.flow.common import BoolOrExpr, Duration, IntOrExpr, Str

_SSL_MODES = ("DISABLE", "ALLOW", "PREFER", "REQUIRE", "VERIFY_CA", "VERIFY_FULL")


class PostgresTask(SqlTask):
    """PostgreSQL's connection properties (``PostgresConnectionInterface``)."""

    engine: ClassVar[str] = "postgresql"

    ssl: BoolOrExpr = False
    sslMode: Str | None = None
    sslRootCert: Str | None = None
    sslCert: Str | None = None
    sslKey: Str | None = None
    sslKeyPassword: Str | None = None

    def secrets_of(self, ctx: TaskContext) -> tuple[str, ...]:
        extra = ctx.render_str(self.sslKeyPassword) if self.sslKeyPassword else None
        return tuple(s for s in (*super().secrets_of(ctx), extra) if s)

    async def environment(self, ctx: TaskContext, workdir: Path) -> Environment:
        spec = self.base_connect(ctx)
        if (
            not spec.url.strip()
            .lower()
            .startswith(("jdbc:postgresql:", "postgresql:", "postgres:"))
        ):
            raise TaskError("URL scheme is invalid. URL should start with `jdbc:postgresql`")
        options: dict[str, Any] = {}
        if render_bool(ctx, self.ssl, "ssl") and self.sslMode is None:
            options["sslmode"] = "verify-full"
        if self.sslMode is not None:
            mode = (ctx.render_str(self.sslMode) or "").strip().upper()
            if mode not in _SSL_MODES:
                raise TaskError(
                    f"property 'sslMode': {mode!r} is not one of {', '.join(_SSL_MODES)}"
                )
            options["sslmode"] = mode.lower().replace("_", "-")
        pem = {"sslrootcert": self.sslRootCert, "sslcert": self.sslCert, "sslkey": self.sslKey}
        if any(v is not None for v in pem.values()):
            private = Path(tempfile.mkdtemp(prefix=".ssl-", dir=workdir))
            for key, value in pem.items():
                if value is not None:
                    path = private / f"{key}.pem"
                    path.write_text(ctx.render_str(value) or "")
                    os.chmod(path, 0o600)
                    options[key] = str(path)
        if self.sslKeyPassword is not None:
            options["sslpassword"] = ctx.render_str(self.sslKeyPassword)
        spec.options.update(options)
        return Environment(connect=spec)


class MySqlTask(SqlTask):
    """MySQL's connection (``MySqlConnectionInterface``) and ``inputFile``."""

    engine: ClassVar[str] = "mysql"

    inputFile: Str | None = None

    async def environment(self, ctx: TaskContext, workdir: Path) -> Environment:
        spec = self.base_connect(ctx)
        if not spec.url.strip().lower().startswith(("jdbc:mysql:", "jdbc:mariadb:")):
            raise TaskError("URL scheme is invalid. URL should start with `jdbc:mysql`")
        target = workdir / "inputFile"
        if self.inputFile is not None:
            await copy_from_storage(ctx, ctx.render_str(self.inputFile) or "", target, "inputFile")
            spec.options["local_infile"] = True
        multi = "allowmultiqueries=true" in spec.url.lower()
        return Environment(
            connect=spec,
            variables={"inputFile": str(target.resolve())},
            single_statement_check=not multi,
        )


# ------------------------------------------------------------------------- Query / Queries


class PgQuery(PostgresTask, SqlQuery):
    """Run one SQL statement on PostgreSQL."""

    type: Literal["io.kestra.plugin.jdbc.postgresql.Query"]
    short: ClassVar[str | None] = "postgres_query"


class PgQueries(PostgresTask, SqlQueries):
    """Run several SQL statements on PostgreSQL, in one transaction by default."""

    type: Literal["io.kestra.plugin.jdbc.postgresql.Queries"]
    short: ClassVar[str | None] = "postgres_queries"


class MySqlQuery(MySqlTask, SqlQuery):
    """Run one SQL statement on MySQL or MariaDB."""

    type: Literal["io.kestra.plugin.jdbc.mysql.Query"]


class MySqlQueries(MySqlTask, SqlQueries):
    """Run several SQL statements on MySQL or MariaDB, in one transaction by default."""

    type: Literal["io.kestra.plugin.jdbc.mysql.Queries"]


class SqliteQuery(SqliteTask, SqlQuery):
    """Run one SQL statement on a SQLite database."""

    type: Literal["io.kestra.plugin.jdbc.sqlite.Query"]
    outputFiles: list[Str] | Str | None = None


class SqliteQueries(SqliteTask, SqlQueries):
    """Run several SQL statements on a SQLite database."""

    type: Literal["io.kestra.plugin.jdbc.sqlite.Queries"]
    outputFiles: list[Str] | Str | None = None


class DuckDbQuery(DuckDbTask, SqlQuery):
    """Run one SQL statement with DuckDB on files of the working directory."""

    type: Literal["io.kestra.plugin.jdbc.duckdb.Query"]
    outputFiles: list[Str] | Str | None = None


class DuckDbQueries(DuckDbTask, SqlQueries):
    """Run several SQL statements with DuckDB on files of the working directory."""

    type: Literal["io.kestra.plugin.jdbc.duckdb.Queries"]
    outputFiles: list[Str] | Str | None = None


# ---------------------------------------------------------------------------- COPY (PG)


class _PgCopy(PostgresTask):
    """``AbstractCopy``: the table and COPY's options."""

    table: Str | None = None
    columns: list[Str] | Str | None = None
    format: Literal["TEXT", "CSV", "BINARY"] | Str = "TEXT"
    oids: BoolOrExpr | None = None
    freeze: BoolOrExpr | None = None
    delimiter: Str | None = None
    nullString: Str | None = None
    header: BoolOrExpr | None = None
    quote: Str | None = None
    escape: Str | None = None
    forceQuote: list[Str] | Str | None = None
    forceNotNull: list[Str] | Str | None = None
    forceNull: list[Str] | Str | None = None
    encoding: Str | None = None
    socketTimeout: IntOrExpr | None = None

    def _char(self, ctx: TaskContext, value: Any, name: str) -> str | None:
        if value is None:
            return None
        text = ctx.render_str(value) or ""
        if len(text) != 1:
            raise TaskError(f"property '{name}' must be one character, got {text!r}")
        return text

    def statement(self, ctx: TaskContext, query: str | None, direction: str) -> str:
        fmt = (ctx.render_str(self.format) or "TEXT").strip().upper()
        if fmt not in ("TEXT", "CSV", "BINARY"):
            raise TaskError(f"property 'format': {fmt!r} is not one of TEXT, CSV, BINARY")
        opts = CopyOptions(
            format=fmt,
            oids=render_bool(ctx, self.oids, "oids") if self.oids is not None else None,
            freeze=render_bool(ctx, self.freeze, "freeze") if self.freeze is not None else None,
            delimiter=self._char(ctx, self.delimiter, "delimiter"),
            null_string=ctx.render_str(self.nullString),
            header=render_bool(ctx, self.header, "header") if self.header is not None else None,
            quote=self._char(ctx, self.quote, "quote"),
            escape=self._char(ctx, self.escape, "escape"),
            force_quote=render_list(ctx, self.forceQuote, "forceQuote"),
            force_not_null=render_list(ctx, self.forceNotNull, "forceNotNull"),
            force_null=render_list(ctx, self.forceNull, "forceNull"),
            encoding=ctx.render_str(self.encoding),
        )
        table = ctx.render_str(self.table)
        return copy_statement(table, render_list(ctx, self.columns, "columns"), query, direction,
                              opts)  # fmt: skip


class CopyIn(_PgCopy):
    """Load a file of internal storage into a PostgreSQL table with COPY."""

    type: Literal["io.kestra.plugin.jdbc.postgresql.CopyIn"]
    from_: Str = Field(alias="from")

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        sql = self.statement(ctx, None, "FROM STDIN")
        async with working_directory(ctx) as workdir:
            env = await self.environment(ctx, workdir)
            source = Path(tempfile.mkdtemp(prefix=".copy-", dir=workdir)) / "data"
            try:
                await copy_from_storage(ctx, ctx.render_str(self.from_) or "", source, "from")
                handle = Handle(self.dialect())
                secrets = self.secrets_of(ctx)
                count = await in_thread(
                    ctx, handle, lambda log: copy_in(handle, env.connect, sql, source, secrets, log)
                )
            finally:
                shutil.rmtree(source.parent, ignore_errors=True)
        if count is None:
            return TaskOutcome(state="KILLED")
        return TaskOutcome(state="SUCCESS", outputs={"rowCount": count}, metrics={"rows": count})


class CopyOut(_PgCopy):
    """Export a PostgreSQL table or query to a file of internal storage with COPY."""

    type: Literal["io.kestra.plugin.jdbc.postgresql.CopyOut"]
    sql: Str | None = None

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        query = ctx.render_str(self.sql) if self.sql is not None else None
        sql = self.statement(ctx, query, "TO STDOUT")
        async with working_directory(ctx) as workdir:
            env = await self.environment(ctx, workdir)
            target = Path(tempfile.mkdtemp(prefix=".copy-", dir=workdir)) / "copy-out"
            try:
                handle = Handle(self.dialect())
                secrets = self.secrets_of(ctx)
                count = await in_thread(
                    ctx,
                    handle,
                    lambda log: copy_out(handle, env.connect, sql, target, secrets, log),
                )
                if count is None:
                    return TaskOutcome(state="KILLED")
                uri = await publish(ctx, target, f"{ctx.task_id or 'copy'}-copy-out")
            finally:
                shutil.rmtree(target.parent, ignore_errors=True)
        return TaskOutcome(
            state="SUCCESS", outputs={"uri": uri, "rowCount": count}, metrics={"rows": count}
        )


# ---------------------------------------------------------------------------------- Batch


class _Batch(SqlTask):
    """``AbstractJdbcBatch``."""

    from_: Str = Field(alias="from")
    sql: Str | None = None
    chunk: IntOrExpr = 1000
    columns: list[Str] | Str | None = None
    table: Str | None = None
    maxRetries: IntOrExpr = 3
    retryBackoff: Duration = "PT1S"
    inputHandling: Literal["AUTO", "STREAM", "LOCAL"] | Str = "AUTO"
    localBufferMaxBytes: IntOrExpr = 100 * 1024 * 1024
    resumeOnRetry: BoolOrExpr = True
    retryScope: Literal["NONE", "INPUT", "ALL"] | Str = "INPUT"

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        chunk = render_int(ctx, self.chunk, "chunk", 1000) or 1000
        if chunk < 1:
            raise TaskError("property 'chunk' must be at least 1")
        columns = render_list(ctx, self.columns, "columns")
        handling = (ctx.render_str(self.inputHandling) or "AUTO").upper()
        limit = render_int(ctx, self.localBufferMaxBytes, "localBufferMaxBytes") or 0
        scope = (ctx.render_str(self.retryScope) or "INPUT").upper()
        async with working_directory(ctx) as workdir:
            env = await self.environment(ctx, workdir)
            source = Path(tempfile.mkdtemp(prefix=".batch-", dir=workdir)) / "input.ion"
            try:
                await copy_from_storage(ctx, ctx.render_str(self.from_) or "", source, "from")
                if handling == "LOCAL" and source.stat().st_size > limit:
                    raise TaskError(
                        f"Input file exceeds `localBufferMaxBytes` ({limit} bytes) while using "
                        "LOCAL input handling."
                    )
                spec = BatchSpec(
                    dialect=self.dialect(),
                    connect=env.connect,
                    source=source,
                    sql=ctx.render_str(self.sql) if self.sql is not None else None,
                    table=ctx.render_str(self.table) if self.table is not None else None,
                    columns=columns,
                    chunk=chunk,
                    max_retries=render_int(ctx, self.maxRetries, "maxRetries", 3) or 0,
                    retry_backoff_s=render_seconds(ctx, self.retryBackoff, "retryBackoff", 1.0)
                    or 0.0,
                    retry_all=scope == "ALL",
                    resume=render_bool(ctx, self.resumeOnRetry, "resumeOnRetry", True),
                    secrets=self.secrets_of(ctx),
                )
                handle = Handle(spec.dialect)
                counts = await in_thread(ctx, handle, lambda log: run_batch(handle, spec, log))
            finally:
                with contextlib.suppress(OSError):
                    shutil.rmtree(source.parent)
        if counts is None:
            return TaskOutcome(state="KILLED")
        ctx.log(
            "INFO",
            f"Successfully executed {counts.queries} bulk queries and updated "
            f"{counts.updated} rows",
        )
        return TaskOutcome(
            state="SUCCESS",
            outputs={"rowCount": counts.rows, "updatedCount": counts.updated},
            metrics={"records": counts.rows, "updated": counts.updated},
        )


class PgBatch(PostgresTask, _Batch):
    """Insert the rows of an Ion file into PostgreSQL, a chunk per transaction."""

    type: Literal["io.kestra.plugin.jdbc.postgresql.Batch"]


class MySqlBatch(MySqlTask, _Batch):
    """Insert the rows of an Ion file into MySQL or MariaDB, a chunk per transaction."""

    type: Literal["io.kestra.plugin.jdbc.mysql.Batch"]


PLUGINS: list[type[SqlTask]] = [
    PgQuery,
    PgQueries,
    CopyIn,
    CopyOut,
    PgBatch,
    MySqlQuery,
    MySqlQueries,
    MySqlBatch,
    SqliteQuery,
    SqliteQueries,
    DuckDbQuery,
    DuckDbQueries,
]
