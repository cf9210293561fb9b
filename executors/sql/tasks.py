"""The property models and the run of the SQL task types, shared by every engine.

A concrete type (``executors.plugins.jdbc``) is one of :class:`SqlQuery` / :class:`SqlQueries`
with an engine mixin that says how to connect (:meth:`SqlTask.environment`): PostgreSQL's SSL
files, MySQL's ``inputFile``, SQLite's and DuckDB's database files and working-directory files
(:mod:`executors.sql.embedded`).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from executors.base import TaskContext, TaskError, TaskOutcome, to_text
from executors.plugin import TaskPlugin, render_bool, render_int, render_map
from executors.sql.dialects import DIALECTS, ConnectSpec, Dialect
from executors.sql.engine import FETCH_TYPES, Handle, QuerySpec, in_thread, run_queries, shape
from executors.sql.files import publish
from executors.sql.values import zone
from schemas.flow.common import BoolOrExpr, IntOrExpr, Str

FetchType = Str


@dataclass(slots=True)
class Environment:
    """What an engine adds to a run: the connection, variables for rendering the SQL, a
    session set-up, and the outputs it adds once the SQL ran."""

    connect: ConnectSpec
    variables: dict[str, Any] = field(default_factory=dict)
    setup: Callable[[Any], None] | None = None
    finish: Callable[[], Awaitable[dict[str, Any]]] | None = None
    single_statement_check: bool = True
    # Rewrites the rendered SQL (DuckDB's filename column).
    rewrite: Callable[[str], str] | None = None


@contextlib.asynccontextmanager
async def working_directory(ctx: TaskContext) -> AsyncIterator[Path]:
    """The task's working directory, or a temporary one removed afterwards."""
    if ctx.working_dir:
        path = Path(ctx.working_dir)
        await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="hw-sql-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class SqlTask(TaskPlugin):
    """The connection properties of every Kestra JDBC task."""

    family: ClassVar[str] = "jdbc"
    engine: ClassVar[str] = ""

    url: Str | None = None
    username: Str | None = None
    password: Str | None = None
    timeZoneId: Str | None = None
    connectionPooling: BoolOrExpr = Field(
        default=True, description="accepted; each run opens its own connection"
    )
    connectionPoolSize: IntOrExpr = 10

    def dialect(self) -> Dialect:
        return DIALECTS[self.engine]()

    def secrets_of(self, ctx: TaskContext) -> tuple[str, ...]:
        password = ctx.render_str(self.password)
        return tuple(s for s in (*ctx.secrets, password) if s)

    def base_connect(self, ctx: TaskContext) -> ConnectSpec:
        url = ctx.render_str(self.url)
        if not url or not url.strip():
            raise TaskError("Rendered value of `url` is blank.")
        return ConnectSpec(
            url=url, username=ctx.render_str(self.username), password=ctx.render_str(self.password)
        )

    async def environment(self, ctx: TaskContext, workdir: Path) -> Environment:
        return Environment(connect=self.base_connect(ctx))


class SqlQueryBase(SqlTask):
    """``AbstractJdbcBaseQuery``'s properties."""

    sql: Str
    afterSQL: Str | None = None
    fetchType: FetchType = "NONE"
    fetchSize: IntOrExpr = 10000
    parameters: dict[str, Any] | Str | None = None
    outputFiles: list[Str] | Str | None = None
    fetch: bool = Field(default=False, description="deprecated: use fetchType FETCH")
    fetchOne: bool = Field(default=False, description="deprecated: use fetchType FETCH_ONE")
    store: bool = Field(default=False, description="deprecated: use fetchType STORE")

    multi: ClassVar[bool] = False

    def fetch_type(self, ctx: TaskContext) -> str:
        if self.fetch:
            return "FETCH"
        if self.fetchOne:
            return "FETCH_ONE"
        if self.store:
            return "STORE"
        value = (ctx.render_str(self.fetchType) or "NONE").strip().upper()
        if value not in FETCH_TYPES:
            raise TaskError(
                f"property 'fetchType': {value!r} is not one of FETCH, FETCH_ONE, STORE, NONE"
            )
        return value

    def in_transaction(self, ctx: TaskContext) -> bool:
        return True

    def spec(self, ctx: TaskContext, env: Environment, workdir: Path, fetch_type: str) -> QuerySpec:
        extra = env.variables
        sql = to_text(ctx.render(self.sql, extra))
        if env.rewrite is not None:
            sql = env.rewrite(sql)
        after_sql = None if self.afterSQL is None else to_text(ctx.render(self.afterSQL, extra))
        parameters = None
        if self.parameters is not None:
            parameters = render_map(ctx, self.parameters, "parameters")
        return QuerySpec(
            dialect=self.dialect(),
            connect=env.connect,
            sql=sql,
            fetch_type=fetch_type,
            zone=zone(ctx.render_str(self.timeZoneId)),
            store_dir=workdir,
            parameters=parameters,
            after_sql=after_sql,
            fetch_size=render_int(ctx, self.fetchSize, "fetchSize", 10000) or 10000,
            multi=self.multi,
            transaction=self.in_transaction(ctx),
            single_statement_check=env.single_statement_check,
            setup=env.setup,
            secrets=self.secrets_of(ctx),
        )

    async def execute(
        self,
        ctx: TaskContext,
        before_commit: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> tuple[TaskOutcome, list[dict[str, Any]]]:
        """Run the SQL; (outcome, the per-result-set outputs)."""
        fetch_type = self.fetch_type(ctx)
        async with working_directory(ctx) as workdir:
            env = await self.environment(ctx, workdir)
            spec = self.spec(ctx, env, workdir, fetch_type)
            spec.before_commit = before_commit
            handle = Handle(spec.dialect)
            done = await in_thread(ctx, handle, lambda log: run_queries(handle, spec, log))
            if done is None:
                return TaskOutcome(state="KILLED"), []
            outputs = []
            for index, output in enumerate(done.outputs):
                path = output.pop("_file", None)
                uri = output.pop("_uri", None)
                if path is not None:
                    name = (
                        f"{ctx.task_id or 'query'}-{index}.ion"
                        if self.multi
                        else (f"{ctx.task_id or 'query'}.ion")
                    )
                    uri = await publish(ctx, path, name)
                outputs.append(shape(output, uri))
            extra = await env.finish() if env.finish is not None else {}
        metrics = {"fetch.size": done.size}
        if self.multi:
            result = {"outputs": outputs, **extra}
        else:
            result = {**(outputs[0] if outputs else {"row": None}), **extra}
        return TaskOutcome(state="SUCCESS", outputs=result, metrics=metrics), outputs

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        outcome, _ = await self.execute(ctx)
        return outcome


class SqlQuery(SqlQueryBase):
    """Kestra's ``AbstractJdbcQuery``: one statement (and ``afterSQL``)."""


class SqlQueries(SqlQueryBase):
    """Kestra's ``AbstractJdbcQueries``: every statement of ``sql``."""

    multi: ClassVar[bool] = True
    transaction: BoolOrExpr = True

    def in_transaction(self, ctx: TaskContext) -> bool:
        return render_bool(ctx, self.transaction, "transaction", True)
