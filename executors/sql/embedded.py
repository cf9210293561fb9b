"""The embedded engines' files: SQLite's and DuckDB's databases and working-directory files.

DuckDB (Kestra's ``duckdb.Query`` / ``Queries``): ``url`` defaults to ``jdbc:duckdb:``, a new
database file in the working directory; ``jdbc:duckdb:/absolute/file.db`` uses that file and
its directory becomes the working directory (``dbFilePath`` is set); another path is handed to
DuckDB as is by Query (``:memory:``...) and refused by Queries ("The database file path is not
valid (Path to database file must be absolute)"). ``databaseUri`` (a ``kestra://`` database
file) is copied into the working directory and used. ``inputFiles`` (a map, or a JSON text of
one: name -> text or ``kestra://`` URI) are written there, ``outputFiles`` (names) are created
there as empty files whose paths the SQL reaches as ``{{ outputFiles.name }}``; the session's
``file_search_path`` is the working directory, so ``read_csv_auto('data.csv')`` finds them.
``{{ workingDir }}`` renders too. After the SQL: ``outputs.outputFiles`` (name -> URI) and, with
``outputDbFile``, ``outputs.databaseUri``. A query with ``filename=true`` gets its ``filename``
column relative to the working directory, as Kestra rewrites it. ``communityExtensions``
(default ``["ion"]``) are loaded if installed, else installed from DuckDB's community
repository, best effort: a failure is a warning (here, offline, it always fails; a failed
extension is not retried for :data:`EXTENSION_RETRY_S`). Kestra bundles the ``ion`` extension
in its plugin; Headwater does not, so ``read_ion`` needs it installed on the worker.

SQLite (Kestra's ``sqlite.Query`` / ``Queries``): ``url`` defaults to ``jdbc:sqlite:`` (in
memory; also ``:memory:``, ``file::memory:``, ``file:...mode=memory``). ``sqliteFile`` (a
``kestra://`` database) is copied into the working directory under the URL's file name (a
temporary name for an in-memory URL) and used; ``outputDbFile`` stores the database file used
as ``outputs.databaseUri`` (creating it empty if the SQL never wrote it). A relative path in
the URL is a file of the working directory (Kestra uses it only if it exists there, else the
worker's current directory: a worker's directory is nobody's database); an absolute one is used
as is. ``outputFiles`` as for DuckDB (``outputs.outputFiles`` only when there are some).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from executors.base import TaskContext, TaskError
from executors.plugin import render_bool, render_list
from executors.sql.files import (
    copy_from_storage,
    create_output_files,
    input_file_map,
    publish,
    upload_output_files,
    write_input_files,
)
from executors.sql.tasks import Environment, SqlTask
from executors.sql.urls import embedded_path
from schemas.flow.common import BoolOrExpr, Str

# An extension that could not be installed (no network to DuckDB's repository) is not tried
# again for this long: each attempt costs seconds of DNS and HTTP timeouts.
EXTENSION_RETRY_S = 600.0
_EXTENSION_NAME = re.compile(r"[A-Za-z0-9_]+")
_failed_extensions: dict[str, float] = {}
_FILENAME_TRUE = re.compile(r"(?is).*filename\s*=\s*(true|1).*")


def snapshot(database: Path, workdir: Path, create: bool) -> Path:
    """A copy of the database file to store (the original stays usable); ``create`` makes an
    empty one first when the SQL never wrote it (SQLite creates files lazily)."""
    if create and not database.exists():
        database.touch()
    if not database.is_file():
        raise TaskError("outputDbFile: the database is not a file")
    target = Path(tempfile.mkdtemp(dir=workdir)) / database.name
    shutil.copyfile(database, target)
    return target


def load_extensions(ctx: TaskContext, conn: Any, names: list[str]) -> None:
    """DuckDB community extensions, best effort (Kestra's ``DuckDbConnectionSetup``)."""
    for name in names:
        if not _EXTENSION_NAME.fullmatch(name):
            ctx.log(
                "WARN",
                f"Skipping DuckDB community extension '{name}' because the name contains "
                "unsupported characters.",
            )
            continue
        try:
            conn.execute(f"LOAD {name}")
            continue
        except Exception:  # noqa: S110 - not installed yet: install below
            pass
        failed_at = _failed_extensions.get(name)
        if failed_at is not None and time.monotonic() - failed_at < EXTENSION_RETRY_S:
            continue
        try:
            conn.execute(f"INSTALL {name} FROM community")
            conn.execute(f"LOAD {name}")
        except Exception as exc:
            _failed_extensions[name] = time.monotonic()
            ctx.log(
                "WARN",
                f"Failed to install/load DuckDB community extension '{name}'. Continuing "
                f"without it. message={exc}",
            )


class DuckDbTask(SqlTask):
    """DuckDB's properties (``DuckDbQueryInterface``)."""

    engine: ClassVar[str] = "duckdb"

    url: Str | None = "jdbc:duckdb:"
    inputFiles: dict[str, Any] | Str | None = None
    databaseUri: Str | None = None
    outputDbFile: BoolOrExpr = False
    communityExtensions: list[Str] | Str | None = Field(default_factory=lambda: ["ion"])

    async def environment(self, ctx: TaskContext, workdir: Path) -> Environment:
        url = (ctx.render_str(self.url) or "jdbc:duckdb:").strip()
        rest = embedded_path(url, "duckdb")
        variables: dict[str, Any] = {}
        database: str | None
        if rest:
            path = Path(rest)
            if path.is_absolute():
                path.parent.mkdir(parents=True, exist_ok=True)
                workdir = path.parent
                database = str(path)
                variables["dbFilePath"] = database
            elif getattr(self, "multi", False):
                raise TaskError(
                    "The database file path is not valid (Path to database file must be absolute)"
                )
            else:
                database = rest
        else:
            database = str(workdir / f"{uuid.uuid4().hex}.db")
        variables["workingDir"] = str(workdir)
        files = input_file_map(ctx.render(self.inputFiles), "inputFiles")
        await write_input_files(ctx, files, workdir)
        if self.databaseUri is not None:
            target = workdir / uuid.uuid4().hex
            await copy_from_storage(ctx, ctx.render_str(self.databaseUri) or "", target,
                                    "databaseUri")  # fmt: skip
            database = str(target)
        names = render_list(ctx, getattr(self, "outputFiles", None), "outputFiles")
        output_files = create_output_files(names, workdir) if names else {}
        if output_files:
            variables["outputFiles"] = output_files
        extensions = (
            render_list(ctx, self.communityExtensions, "communityExtensions")
            if self.communityExtensions is not None
            else ["ion"]
        )
        search_path = str(workdir).replace("'", "''")

        def setup(conn: Any) -> None:
            conn.execute(f"SET file_search_path='{search_path}'")
            load_extensions(ctx, conn, extensions)

        def rewrite(sql: str) -> str:
            if getattr(self, "multi", False) or not _FILENAME_TRUE.match(sql):
                return sql
            escaped = re.escape(str(workdir)).replace("'", "''")
            body = re.sub(r";\s*$", "", sql)
            # The user's own query, wrapped as Kestra wraps it.
            select = "SELECT * REPLACE(regexp_replace(filename, "
            return select + f"'^{escaped}/', '') AS filename) FROM ({body})"  # noqa: S608

        output_db = render_bool(ctx, self.outputDbFile, "outputDbFile")

        async def finish() -> dict[str, Any]:
            out: dict[str, Any] = {"outputFiles": await upload_output_files(ctx, output_files)}
            if output_db:
                if database is None:
                    raise TaskError("outputDbFile: the database is not a file")
                target = await asyncio.to_thread(snapshot, Path(database), workdir, False)
                out["databaseUri"] = await publish(ctx, target, f"{ctx.task_id or 'duckdb'}.db")
            return out

        return Environment(
            connect=self._connect(ctx, url, database),
            variables=variables,
            setup=setup,
            finish=finish,
            rewrite=rewrite,
        )

    def _connect(self, ctx: TaskContext, url: str, database: str | None) -> Any:
        from executors.sql.dialects import ConnectSpec

        return ConnectSpec(
            url=url,
            username=ctx.render_str(self.username),
            password=ctx.render_str(self.password),
            database=database,
        )


_MEMORY = re.compile(r"^(|:memory:|file::memory:.*|file:.*mode=memory.*)$", re.IGNORECASE)


class SqliteTask(SqlTask):
    """SQLite's properties (``SqliteQueryInterface``)."""

    engine: ClassVar[str] = "sqlite"

    url: Str | None = "jdbc:sqlite:"
    sqliteFile: Str | None = None
    outputDbFile: BoolOrExpr = False

    async def environment(self, ctx: TaskContext, workdir: Path) -> Environment:
        from executors.sql.dialects import ConnectSpec

        url = (ctx.render_str(self.url) or "jdbc:sqlite:").strip()
        rest = embedded_path(url, "sqlite").strip()
        source = ctx.render_str(self.sqliteFile) if self.sqliteFile is not None else None
        output_db = render_bool(ctx, self.outputDbFile, "outputDbFile")
        options: dict[str, Any] = {}
        database: str | None
        if source or output_db:
            name = f"{uuid.uuid4().hex}.sqlite" if _MEMORY.match(rest) else Path(rest).name
            database = str(workdir / name)
            if source:
                await copy_from_storage(ctx, source, Path(database), "sqliteFile")
        elif _MEMORY.match(rest):
            database = rest or ":memory:"
            options["uri"] = rest.lower().startswith("file:")
        else:
            database = rest if Path(rest).is_absolute() else str(workdir / rest)
        variables: dict[str, Any] = {"workingDir": str(workdir)}
        names = render_list(ctx, getattr(self, "outputFiles", None), "outputFiles")
        output_files = create_output_files(names, workdir) if names else {}
        if output_files:
            variables["outputFiles"] = output_files

        async def finish() -> dict[str, Any]:
            out: dict[str, Any] = {}
            if output_db and database is not None:
                copy = await asyncio.to_thread(snapshot, Path(database), workdir, True)
                out["databaseUri"] = await publish(ctx, copy, copy.name)
            if output_files:
                out["outputFiles"] = await upload_output_files(ctx, output_files)
            return out

        spec = ConnectSpec(url=url, database=database, options=options)
        return Environment(connect=spec, variables=variables, finish=finish)
