"""Versioned migrations of the read model, applied at start-up, and its teardown.

Migrations are the ``migrations/NNNN_name.sql`` files of this package, applied in order, each in
its own transaction together with its row in ``schema_migrations``. Several components (the
projector, the API, a second projector replica) may start at the same moment, so the whole
check-and-apply runs under a PostgreSQL advisory lock: the second starter waits, then finds
nothing left to do. Running it again is a no-op.
"""

from __future__ import annotations

import importlib.resources
import logging
import re
from dataclasses import dataclass
from typing import Any

import asyncpg

from engine.errors import DatabaseError

log = logging.getLogger(__name__)

# Any constant 64-bit key shared by every Headwater process; "hw_read_model" as digits.
MIGRATION_LOCK_KEY = 0x68775F726D6F646C

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

# Every object the migrations create, dropped by a rebuild (views first: they depend on tables).
_VIEWS = ("executions_per_minute", "flow_duration_percentiles", "flow_failure_rates")
_TABLES = (
    "flows",
    "flow_revisions",
    "executions",
    "task_runs",
    "logs",
    "triggers",
    "purged_executions",
    "log_purges",
    "projector_status",
    "schema_migrations",
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The packaged migrations, in version order."""
    folder = importlib.resources.files("engine.projector") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise DatabaseError(f"two read-model migrations share a version number: {versions}")
    return found


async def migrate(conn: Any) -> list[int]:
    """Apply every migration not yet applied; returns the versions applied now."""
    applied_now: list[int] = []
    try:
        async with conn.transaction():
            # Transaction-scoped: released on commit, even if this process dies.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for m in migrations():
                if m.version in done:
                    continue
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    m.version,
                    m.name,
                )
                applied_now.append(m.version)
    except asyncpg.PostgresError as exc:
        raise DatabaseError(
            f"applying read-model migrations failed: {exc}; the database was left as it was "
            "(each run is one transaction)",
        ) from exc
    if applied_now:
        log.info("read model migrated to version %d", applied_now[-1])
    return applied_now


async def drop_read_model(conn: Any) -> None:
    """Drop every table and view of the read model (a rebuild re-creates them from Kafka)."""
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            for view in _VIEWS:
                await conn.execute(f"DROP VIEW IF EXISTS {view}")
            for table in _TABLES:
                await conn.execute(f"DROP TABLE IF EXISTS {table}")
    except asyncpg.PostgresError as exc:
        raise DatabaseError(f"dropping the read model failed: {exc}") from exc
