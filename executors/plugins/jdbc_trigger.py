"""Kestra's JDBC polling triggers: ``io.kestra.plugin.jdbc.{postgresql, mysql, mariadb, sqlite,
duckdb}.Trigger``.

What Kestra does (kestra-io/plugin-jdbc ``AbstractJdbcTrigger`` and each engine's ``Trigger``):
every ``interval`` (PT60S) it builds the engine's ``Query`` from its own properties and runs it:
``url``, ``username``, ``password``, ``timeZoneId``, ``connectionPooling`` /
``connectionPoolSize`` (accepted), ``sql`` (required), ``afterSQL``, ``parameters``,
``fetchSize`` (10000), ``fetchType`` (FETCH by default; FETCH_ONE, STORE; NONE is refused: "the
trigger would never fire", when the flow is validated for a literal and when it is polled for an
expression) and the deprecated ``fetch`` / ``fetchOne`` / ``store``, plus the engine's own
properties (PostgreSQL's ``ssl*``; SQLite's ``sqliteFile``, ``outputDbFile``; DuckDB's
``inputFiles``, ``outputFiles``, ``databaseUri``, ``outputDbFile``, ``communityExtensions``).
A poll whose query returns no row starts nothing; otherwise one execution starts, whose
``trigger`` variables are the Query's outputs: ``rows`` (FETCH), ``row`` (FETCH_ONE; always
present, null otherwise), ``uri`` (STORE: an Ion file in the execution's trigger folder),
``size`` (and DuckDB's / SQLite's ``outputFiles`` / ``databaseUri``), as the Query tasks of
:mod:`executors.plugins.jdbc` output them.

``afterSQL`` and the execution, and how this differs from Kestra: Kestra runs ``sql`` and
``afterSQL`` in one transaction, commits it, then creates the execution; a crash in between loses
the rows (``afterSQL`` marked them, no execution has them). Here the transaction is held open
while the StartExecution is produced: ``sql`` and ``afterSQL`` run, the execution is made durable
in Kafka, and only then is the transaction committed; when the StartExecution cannot be made
durable the transaction is rolled back (also after :data:`FIRE_WAIT_S` without an answer). The
execution id derives from the rows (their content hash) and a poll generation kept in the
namespace KV store (key ``<namespace>_<flow>_<trigger>_poll``, bumped after each commit): a poll
repeated after a crash before the commit finds the same rows, derives the same id and starts
nothing new, and its ``afterSQL`` then commits; a query that returns the same rows at each poll
(no ``afterSQL``) still fires at each poll, as in Kestra. A poll without rows commits at once
(its ``afterSQL`` too, as Kestra's). Each poll has its own working directory, removed after it.

Also different: the PostgreSQL trigger passes its ``ssl*`` properties to the query (Kestra's
drops them); DuckDB's ``url``, when given, is used (Kestra's DuckDB trigger always queries a new
database file and ignores it); ``mariadb.Trigger`` accepts ``jdbc:mysql:`` URLs too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field, field_validator

from executors.base import TaskError
from executors.plugins.jdbc import DuckDbQuery, MySqlQuery, PgQuery, SqliteQuery
from executors.polling import Poll, PollContext, PollingTrigger
from executors.sql.engine import FETCH_TYPES, Handle, in_thread, run_queries, shape
from executors.sql.files import publish
from executors.sql.tasks import SqlQuery
from schemas.flow.common import BoolOrExpr, IntOrExpr, Str
from triggers.ids import digest

# The poll's transaction stays open while its StartExecution is produced (milliseconds); when
# neither the go nor the no-go arrives within this long (the trigger source died), it is rolled
# back and the rows are polled again.
FIRE_WAIT_S = 120.0
_NONE_REFUSED = (
    "fetchType NONE is not valid for triggers — the trigger would never fire. Use FETCH, "
    "FETCH_ONE, or STORE."
)
# The trigger's own properties, never handed to the query.
_NOT_QUERY = frozenset({"id", "type", "fetchType", "fetch", "fetchOne", "store"})


class _Held:
    """The go / no-go for a poll's open transaction, from the loop to the query's thread."""

    def __init__(self) -> None:
        self.decided = threading.Event()
        self.commit = False

    def decide(self, commit: bool) -> None:
        if not self.decided.is_set():
            self.commit = commit
            self.decided.set()


class JdbcTrigger(PollingTrigger):
    """``AbstractJdbcTrigger``: the properties every engine's trigger shares."""

    family: ClassVar[str] = "jdbc"
    query_type: ClassVar[type[SqlQuery]]

    url: Str | None = None
    username: Str | None = None
    password: Str | None = None
    timeZoneId: Str | None = None
    connectionPooling: BoolOrExpr = True
    connectionPoolSize: IntOrExpr = 10
    sql: Str
    afterSQL: Str | None = None
    fetchType: Str = "FETCH"
    fetchSize: IntOrExpr = 10000
    parameters: dict[str, Any] | Str | None = None
    fetch: bool = Field(default=False, description="deprecated: use fetchType FETCH")
    fetchOne: bool = Field(default=False, description="deprecated: use fetchType FETCH_ONE")
    store: bool = Field(default=False, description="deprecated: use fetchType STORE")

    @field_validator("fetchType")
    @classmethod
    def _not_none(cls, value: str) -> str:
        if "{{" not in value and "{%" not in value and value.strip().upper() == "NONE":
            raise ValueError(_NONE_REFUSED)
        return value

    def fetch_type(self, ctx: PollContext) -> str:
        if self.fetch:
            return "FETCH"
        if self.fetchOne:
            return "FETCH_ONE"
        if self.store:
            return "STORE"
        value = (ctx.task.render_str(self.fetchType) or "FETCH").strip().upper()
        if value == "NONE":
            raise TaskError(_NONE_REFUSED)
        if value not in FETCH_TYPES:
            raise TaskError(
                f"property 'fetchType': {value!r} is not one of FETCH, FETCH_ONE, STORE"
            )
        return value

    def query(self, fetch_type: str) -> SqlQuery:
        """The engine's Query with this trigger's properties, as Kestra builds it."""
        fields = self.query_type.model_fields
        props = {
            name: getattr(self, name)
            for name in type(self).model_fields
            if name in fields and name not in _NOT_QUERY and getattr(self, name) is not None
        }
        return self.query_type.model_validate(
            {"id": self.id, "type": self.query_type.type_name(), "fetchType": fetch_type, **props}
        )

    async def poll(self, ctx: PollContext) -> Poll | None:
        query = self.query(self.fetch_type(ctx))
        scratch = Path(ctx.task.working_dir or tempfile.gettempdir())
        await asyncio.to_thread(scratch.mkdir, parents=True, exist_ok=True)
        workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="poll-", dir=scratch))
        try:
            poll = await _poll(query, ctx, workdir)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
            raise
        if poll is None:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        return poll


def _resolve(future: asyncio.Future[list[dict[str, Any]]], outputs: list[dict[str, Any]]) -> None:
    if not future.done():
        future.set_result(outputs)


def _size(outputs: list[dict[str, Any]]) -> int:
    return sum(int(o.get("size") or 0) for o in outputs)


async def _poll(query: SqlQuery, ctx: PollContext, workdir: Path) -> Poll | None:
    task = ctx.task
    loop = asyncio.get_running_loop()
    found: asyncio.Future[list[dict[str, Any]]] = loop.create_future()
    held = _Held()

    def before_commit(outputs: list[dict[str, Any]]) -> None:  # in the query's thread
        loop.call_soon_threadsafe(_resolve, found, outputs)
        if _size(outputs) == 0:
            return  # nothing fires: commit now, afterSQL included, as Kestra does
        if not held.decided.wait(FIRE_WAIT_S):
            raise TaskError(
                f"no execution was started within {FIRE_WAIT_S:.0f} s; the poll was rolled back"
            )
        if not held.commit:
            raise TaskError("the execution could not be started; the poll was rolled back")

    fetch_type = query.fetch_type(task)
    env = await query.environment(task, workdir)
    spec = query.spec(task, env, workdir, fetch_type)
    spec.before_commit = before_commit
    handle = Handle(spec.dialect)
    job = asyncio.ensure_future(in_thread(task, handle, lambda log: run_queries(handle, spec, log)))
    # An abandoned poll's failure is reported by the trigger runtime, not as a lost exception.
    job.add_done_callback(lambda f: f.cancelled() or f.exception())
    try:
        waiting: set[asyncio.Future[Any]] = {job, found}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        held.decide(False)
        raise
    if not found.done():
        job.result()  # the query failed: its error is the poll's
        return None  # cancelled
    outputs = found.result()
    size = _size(outputs)
    task.log("DEBUG", f"Found '{size}' rows from '{spec.sql}'")
    if size == 0:
        await job
        return None
    try:
        coordinates = await _coordinates(ctx, outputs)
        ctx.bind(coordinates)
        output = dict(outputs[0])
        path = output.pop("_file", None)
        uri = await publish(task, path, f"{ctx.trigger_id}.ion") if path is not None else None
        variables = shape(output, uri)
        if env.finish is not None:
            variables.update(await env.finish())
    except BaseException:
        held.decide(False)
        with contextlib.suppress(Exception):
            await job
        raise

    async def after() -> None:
        held.decide(True)
        try:
            await job
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        await _next_generation(ctx)

    async def discard() -> None:
        held.decide(False)
        with contextlib.suppress(Exception):
            await job
        await asyncio.to_thread(shutil.rmtree, workdir, True)

    return Poll(coordinates, variables, after, discard)


def _generation_key(ctx: PollContext) -> str:
    return f"{ctx.namespace}_{ctx.flow_id}_{ctx.trigger_id}_poll"


async def _generation(ctx: PollContext) -> int:
    if ctx.kv is None:
        raise TaskError("the JDBC trigger needs the KV store to number its polls")
    found, value = await ctx.kv.get(ctx.namespace, _generation_key(ctx))
    return int(value) if found and isinstance(value, int) else 0


async def _next_generation(ctx: PollContext) -> None:
    assert ctx.kv is not None
    current = await _generation(ctx)
    await ctx.kv.set(
        ctx.namespace, _generation_key(ctx), current + 1, overwrite=True, ttl_seconds=None
    )


async def _coordinates(ctx: PollContext, outputs: list[dict[str, Any]]) -> str:
    """``jdbc-<generation>-<hash of the rows>``: the same rows at the same generation are the
    same execution."""
    content = hashlib.sha256()
    for output in outputs:
        path = output.get("_file")
        if path is not None:
            content.update(await asyncio.to_thread(Path(path).read_bytes))
        else:
            data = {k: v for k, v in output.items() if k != "_file"}
            content.update(orjson.dumps(shape(data, None), default=str))
    return f"jdbc-{await _generation(ctx)}-{digest(content.digest())}"


class PostgresTrigger(JdbcTrigger):
    """Start an execution when a PostgreSQL query returns rows."""

    query_type: ClassVar[type[SqlQuery]] = PgQuery
    short: ClassVar[str | None] = "postgres_trigger"

    type: Literal["io.kestra.plugin.jdbc.postgresql.Trigger"]
    ssl: BoolOrExpr = False
    sslMode: Str | None = None
    sslRootCert: Str | None = None
    sslCert: Str | None = None
    sslKey: Str | None = None
    sslKeyPassword: Str | None = None


class MySqlTrigger(JdbcTrigger):
    """Start an execution when a MySQL query returns rows."""

    query_type: ClassVar[type[SqlQuery]] = MySqlQuery

    type: Literal["io.kestra.plugin.jdbc.mysql.Trigger"]


class MariaDbTrigger(JdbcTrigger):
    """Start an execution when a MariaDB query returns rows."""

    query_type: ClassVar[type[SqlQuery]] = MySqlQuery

    type: Literal["io.kestra.plugin.jdbc.mariadb.Trigger"]


class SqliteTrigger(JdbcTrigger):
    """Start an execution when a SQLite query returns rows."""

    query_type: ClassVar[type[SqlQuery]] = SqliteQuery

    type: Literal["io.kestra.plugin.jdbc.sqlite.Trigger"]
    sqliteFile: Str | None = None
    outputDbFile: BoolOrExpr = False


class DuckDbTrigger(JdbcTrigger):
    """Start an execution when a DuckDB query returns rows."""

    query_type: ClassVar[type[SqlQuery]] = DuckDbQuery

    type: Literal["io.kestra.plugin.jdbc.duckdb.Trigger"]
    inputFiles: dict[str, Any] | Str | None = None
    outputFiles: list[Str] | Str | None = None
    databaseUri: Str | None = None
    outputDbFile: BoolOrExpr = False
    communityExtensions: list[Str] | Str | None = None


PLUGINS: list[type[PollingTrigger]] = [
    PostgresTrigger,
    MySqlTrigger,
    MariaDbTrigger,
    SqliteTrigger,
    DuckDbTrigger,
]
