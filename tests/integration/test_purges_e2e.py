"""PurgeExecutions and PurgeLogs end to end: Kafka, the executor, the real worker (with its
storage on disk and the read model), the projector on a fresh PostgreSQL database.

- PurgeExecutions of a namespace: the ended execution's rows, task runs, log lines and files
  are gone from the read model and the disk, the executor forgot it; another namespace's
  execution is untouched.
- PurgeLogs of one execution's DEBUG lines: only those go.
- A projector rebuilt from the topics into a new database does not bring anything back.
"""

from __future__ import annotations

import asyncio
import pathlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from engine.projector import Projector
from engine.projector.databases import create_database, drop_database
from engine.reducer.model import State
from engine.settings import ProjectorSettings, Settings
from tests.conformance.e2e_stack import Stack, stack_settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ARRIVAL_S = 45.0

VICTIM = """
id: victim
namespace: NAMESPACE
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: some data
  - id: info
    type: io.kestra.plugin.core.log.Log
    message: an info line
  - id: debug
    type: io.kestra.plugin.core.log.Log
    level: DEBUG
    message: a debug line
"""

PURGER = """
id: purger
namespace: ops
tasks:
  - id: purge
    type: io.kestra.plugin.core.execution.PurgeExecutions
    namespace: company.victims
    endDate: "{{ now() }}"
  - id: purge_debug
    type: io.kestra.plugin.core.log.PurgeLogs
    executionId: "{{ inputs.keep }}"
    logLevels: [DEBUG]
    endDate: "{{ now() }}"
inputs:
  - id: keep
    type: STRING
"""


async def _db(admin: str) -> tuple[str, str]:
    name = f"headwater_test_{uuid.uuid4().hex[:12]}"
    try:
        return name, await create_database(admin, name)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL not reachable ({exc}); start it with `make services-up`")


class Projection:
    def __init__(self, settings: Settings, dsn: str) -> None:
        conf = ProjectorSettings(group_id=f"p-{uuid.uuid4().hex[:8]}", poll_timeout_s=0.1)
        self.projector = Projector(settings.kafka, conf, dsn, name=uuid.uuid4().hex[:8])
        self.dsn = dsn
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> Projection:
        await self.projector.start()
        self.task = asyncio.create_task(self.projector.run(self.stop))
        return self

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task
        await self.projector.close()

    async def until(self, what: str, check: Callable[[Any], Awaitable[bool]]) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            async with asyncio.timeout(ARRIVAL_S):
                while not await check(conn):
                    if self.task is not None and self.task.done():
                        await self.task
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(f"the read model never showed {what}") from None
        finally:
            await conn.close()


async def rows(conn: Any, sql: str, *args: Any) -> list[Any]:
    return list(await conn.fetch(sql, *args))


@pytest.fixture
async def world(
    settings: Settings, tmp_path: pathlib.Path
) -> AsyncIterator[tuple[Stack, Projection, str]]:
    admin = settings.postgres.dsn.get_secret_value()
    name, dsn = await _db(admin)
    base = stack_settings(partitions=2)
    configured = base.model_copy(
        update={"postgres": base.postgres.model_copy(update={"dsn": SecretStr(dsn)})}
    )
    stack = Stack(configured)
    projection = None
    try:
        await stack.start(real_worker=tmp_path)
        assert stack.real is not None
        await stack.real.wait_ready()
        projection = await Projection(configured, dsn).start()
        yield stack, projection, admin
    finally:
        if projection is not None:
            await projection.close()
        await stack.close()
        await drop_database(admin, name)


async def test_purges_reach_the_read_model_the_storage_and_survive_a_rebuild(
    world: tuple[Stack, Projection, str],
) -> None:
    stack, projection, admin = world
    await stack.deploy(VICTIM.replace("NAMESPACE", "company.victims"))
    await stack.deploy(VICTIM.replace("NAMESPACE", "keep.me"))
    await stack.deploy(PURGER)
    doomed = await stack.start_execution("company.victims", "victim")
    kept = await stack.start_execution("keep.me", "victim")
    for execution_id in (doomed, kept):
        assert (await stack.wait_terminal(execution_id)).state == State.SUCCESS
    write = next(
        r
        for r in stack.state(doomed).task_runs.values()
        if r.task_id == "write"  # type: ignore[union-attr]
    )
    assert stack.real is not None
    doomed_file = stack.real.worker.storage.local_path_sync(write.outputs["uri"])
    assert doomed_file.read_text() == "some data"

    async def projected(conn: Any) -> bool:
        lines = await rows(conn, "SELECT level FROM logs WHERE execution_id = $1", kept)
        done = await rows(conn, "SELECT id FROM executions WHERE end_date IS NOT NULL")
        return len(done) == 2 and sorted(r["level"] for r in lines) == ["DEBUG", "INFO"]

    await projection.until("both executions and their lines", projected)

    purger = await stack.start_execution("ops", "purger", {"keep": kept})
    state = await stack.wait_terminal(purger)
    runs = {r.task_id: r for r in state.task_runs.values()}
    assert state.state == State.SUCCESS, {k: (r.state, r.attempts) for k, r in runs.items()}
    assert runs["purge"].outputs == {
        "executionsCount": 1,
        "taskOutputsCount": 0,
        "logsCount": 2,
        "storagesCount": 1,
        "metricsCount": 0,
    }
    assert runs["purge_debug"].outputs == {
        "count": 1,
        "executionLogsCount": 1,
        "nonExecutionLogsCount": 0,
    }
    assert not doomed_file.exists()
    await stack.wait(lambda: stack.state(doomed) is None, "the executor to forget it")

    async def purged(conn: Any) -> bool:
        gone = await rows(conn, "SELECT id FROM executions WHERE id = $1", doomed)
        runs_left = await rows(conn, "SELECT id FROM task_runs WHERE execution_id = $1", doomed)
        logs_left = await rows(conn, "SELECT log_id FROM logs WHERE execution_id = $1", doomed)
        kept_lines = await rows(conn, "SELECT level FROM logs WHERE execution_id = $1", kept)
        return (
            not gone
            and not runs_left
            and not logs_left
            and [r["level"] for r in kept_lines] == ["INFO"]
        )

    await projection.until("the purged rows deleted", purged)

    async def same_as_before(conn: Any) -> bool:
        executions = {r["id"] for r in await rows(conn, "SELECT id FROM executions")}
        kept_lines = await rows(conn, "SELECT level FROM logs WHERE execution_id = $1", kept)
        doomed_lines = await rows(conn, "SELECT 1 FROM logs WHERE execution_id = $1", doomed)
        return (
            executions == {kept, purger}
            and [r["level"] for r in kept_lines] == ["INFO"]
            and not doomed_lines
            and bool(await rows(conn, "SELECT 1 FROM logs WHERE execution_id = $1", purger))
        )

    # A new database rebuilt from the topics: the purges hold there too.
    name, dsn = await _db(admin)
    rebuilt = await Projection(stack.settings, dsn).start()
    try:
        await rebuilt.until("the rebuilt read model", same_as_before)
    finally:
        await rebuilt.close()
        await drop_database(admin, name)
