"""What the PurgeExecutions and PurgeLogs tasks reach on a worker: the read model to *find*
what to purge, Kafka to *purge* it.

The path (DESIGN.md: only the executor changes execution state; Postgres is a projection):

- **finding** reads the read model (PostgreSQL), which anything may query: the executions
  that ended in the asked window, the log lines that match;
- **an execution** is purged by a ``PurgeExecution`` command on hw.commands (keyed by its id,
  so it is ordered with that execution's other commands). The executor tombstones its state
  (hw.executor-state) and produces ``ExecutionPurged`` on hw.events; the projector deletes its
  rows and remembers the purge, so neither a late event nor a rebuild brings it back. A
  running execution is refused by the executor;
- **log lines** are purged by a ``LogsPurged`` record on hw.logs (the log topic is the log
  store, and workers already write it), keyed by the execution id so that it follows the lines
  it covers in their partition; the projector deletes them and remembers the purge;
- **files** of internal storage are deleted here, as the storage is the workers' own.

A task that cannot reach PostgreSQL fails naming it; nothing has been purged then.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from engine.bus.producer import AsyncProducer
from engine.bus.wire import command_record, logs_purged_record
from engine.reducer.commands import PurgeExecution
from engine.reducer.ids import make_id
from engine.stores.storage import SCHEME, LocalStorage
from executors.base import TaskError, iso_millis

# A purge task waits this long for PostgreSQL before failing (it is down, or the DSN is wrong).
DB_CONNECT_S = 10.0
# A purge touches the read model from one task at a time: two connections are plenty.
POOL_MAX = 2


@dataclass(frozen=True, slots=True)
class ExecutionRef:
    id: str
    namespace: str
    flow_id: str
    end_date: datetime


# Kestra's rule: without a flow id the namespace is a prefix (itself and its children).
_NAMESPACE = (
    "($ns::text IS NULL OR {col} = $ns OR ($flow::text IS NULL AND starts_with({col}, $ns || '.')))"
)
_FIND_EXECUTIONS = """
    SELECT id, namespace, flow_id, end_date FROM executions
    WHERE end_date IS NOT NULL AND end_date <= $end
      AND ($start::timestamptz IS NULL OR start_date >= $start)
      AND NAMESPACE_FILTER
      AND ($flow::text IS NULL OR flow_id = $flow)
      AND ($states::text[] IS NULL OR state = ANY($states))
      AND ($after_end::timestamptz IS NULL OR (end_date, id) > ($after_end, $after_id))
    ORDER BY end_date, id
    LIMIT $limit
""".replace("NAMESPACE_FILTER", _NAMESPACE.format(col="namespace"))
# Lines of executions gone from the read model have no namespace: only found without one.
_FIND_LOGS = """
    SELECT l.execution_id, count(*) AS n FROM logs l
    LEFT JOIN executions e ON e.id = l.execution_id
    WHERE l.ts <= $end
      AND ($start::timestamptz IS NULL OR l.ts >= $start)
      AND ($levels::text[] IS NULL OR l.level = ANY($levels))
      AND ($exec::text IS NULL OR l.execution_id = $exec)
      AND NAMESPACE_FILTER
      AND ($flow::text IS NULL OR e.flow_id = $flow)
    GROUP BY l.execution_id
    ORDER BY l.execution_id
""".replace("NAMESPACE_FILTER", _NAMESPACE.format(col="e.namespace"))


def _sql(template: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """Named ``$name`` parameters -> asyncpg's numbered ones (longest names first)."""
    values: list[Any] = []
    for name in sorted(params, key=len, reverse=True):
        if f"${name}" in template:
            values.append(params[name])
            template = template.replace(f"${name}", f"${len(values)}")
    return template, values


class ReadModelPurges:
    """One per worker (the ``purges`` of every task context)."""

    def __init__(
        self,
        dsn: str,
        producer: AsyncProducer,
        commands_topic: str,
        logs_topic: str,
        storage: LocalStorage | None,
    ) -> None:
        self._dsn = dsn
        self._producer = producer
        self._commands = commands_topic
        self._logs = logs_topic
        self._storage = storage
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def _fetch(self, sql: str, params: dict[str, Any]) -> list[Any]:
        query, values = _sql(sql, params)
        async with self._lock:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self._dsn, min_size=0, max_size=POOL_MAX, timeout=DB_CONNECT_S
                    )
                except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                    raise TaskError(
                        f"the read model (PostgreSQL) cannot be reached: {exc}; nothing was purged"
                    ) from exc
        try:
            rows: list[Any] = await self._pool.fetch(query, *values, timeout=DB_CONNECT_S * 6)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise TaskError(f"reading the read model (PostgreSQL) failed: {exc}") from exc
        return rows

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # ------------------------------------------------------------------ executions

    async def find_executions(
        self,
        *,
        namespace: str | None,
        flow_id: str | None,
        start: datetime | None,
        end: datetime,
        states: list[str] | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[ExecutionRef]:
        """Ended executions in the window, oldest end first, after the ``after`` cursor."""
        rows = await self._fetch(
            _FIND_EXECUTIONS,
            {
                "ns": namespace,
                "flow": flow_id,
                "start": start,
                "end": end,
                "states": states,
                "after_end": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit,
            },
        )
        return [ExecutionRef(r["id"], r["namespace"], r["flow_id"], r["end_date"]) for r in rows]

    async def count_logs(self, execution_ids: list[str]) -> int:
        rows = await self._fetch(
            "SELECT count(*) AS n FROM logs WHERE execution_id = ANY($ids::text[])",
            {"ids": execution_ids},
        )
        return int(rows[0]["n"])

    async def purge_execution(self, execution_id: str, task_run_id: str) -> None:
        command = PurgeExecution(
            command_id=make_id("purge", execution_id, task_run_id), execution_id=execution_id
        )
        key, value = command_record(command)
        await self._send(self._commands, key, value)

    async def purge_storage(self, execution: ExecutionRef) -> int:
        if self._storage is None:
            return 0
        prefix = (
            SCHEME
            + "/"
            + "/".join(
                [*execution.namespace.split("."), execution.flow_id, "executions", execution.id]
            )
        )
        return len(await asyncio.to_thread(self._storage.delete_tree_sync, prefix))

    # ------------------------------------------------------------------------ logs

    async def find_logs(
        self,
        *,
        namespace: str | None,
        flow_id: str | None,
        execution_id: str | None,
        levels: list[str] | None,
        start: datetime | None,
        end: datetime,
    ) -> list[tuple[str, int]]:
        """(execution id, matching lines) of the executions with lines to purge."""
        rows = await self._fetch(
            _FIND_LOGS,
            {
                "ns": namespace,
                "flow": flow_id,
                "exec": execution_id,
                "levels": levels,
                "start": start,
                "end": end,
            },
        )
        return [(r["execution_id"], int(r["n"])) for r in rows]

    async def purge_logs(
        self,
        execution_id: str,
        *,
        levels: list[str] | None,
        start: datetime | None,
        end: datetime,
    ) -> None:
        key, value = logs_purged_record(
            execution_id,
            levels=levels,
            start=iso_millis(start) if start else None,
            end=iso_millis(end),
            occurred=datetime.now(UTC),
        )
        await self._send(self._logs, key, value)

    async def _send(self, topic: str, key: bytes, value: bytes) -> None:
        try:
            future = await self._producer.enqueue(topic, key, value)
            await future
        except Exception as exc:  # the broker did not take it: the task fails, may be retried
            raise TaskError(f"the purge could not be written to {topic}: {exc}") from exc
