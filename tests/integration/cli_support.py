"""What the CLI plugin tests share: contexts with storage and KV, and the tools' venv cache.

The tools (dbt with its adapters, ansible, awscli) go into :data:`TOOL_VENVS`, a directory
every run of the suite reuses, the way a worker caches them: ``tests/integration/conftest.py``
installs the ones the collected tests need (``@pytest.mark.cli_tools(TOOL, ...)``) before the
first test runs, outside the per-test timeout. The first run on a machine takes about 20 s for
dbt, 25 s for ansible and 6 s for awscli (measured with pip's cache empty; up to a few times
that on busy cores); later runs find them at once.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.stores.storage import LocalStorage, TaskLocation
from executors.base import LogLine, TaskContext, TaskOutcome, run_task
from executors.clitools import Tool, tool_path
from executors.core import InMemoryKV
from executors.plugin import PluginExecutor, TaskPlugin

TOOL_VENVS = Path(tempfile.gettempdir()) / "headwater-test-tool-venvs"


@dataclass
class Run:
    """One task run: its outcome, its log lines and where its files went."""

    outcome: TaskOutcome
    lines: list[LogLine]
    storage: LocalStorage
    kv: InMemoryKV = field(default_factory=InMemoryKV)

    @property
    def state(self) -> str:
        return self.outcome.state

    def text(self, level: str | None = None) -> str:
        return "\n".join(f"{x.level} {x.message}" for x in self.lines if level in (None, x.level))

    def read(self, uri: str) -> bytes:
        return self.storage.read_sync(uri)


async def run_plugin(
    cls: type[TaskPlugin],
    task: dict[str, Any],
    tmp_path: Path,
    *,
    kv: InMemoryKV | None = None,
    working_dir: Path | None = None,
    variables: dict[str, Any] | None = None,
    secrets: frozenset[str] = frozenset(),
) -> Run:
    """Run one plugin task as a worker would (validated model, context, storage, KV)."""
    storage = LocalStorage(tmp_path / "storage")
    kv = kv if kv is not None else InMemoryKV()
    lines: list[LogLine] = []
    task_id = str(task.get("id", "t"))
    location = TaskLocation("company.team", "flow", "exec1", task_id, "run1")
    ctx = TaskContext.for_job(
        execution_id="exec1",
        task_run_id="run1",
        attempt=1,
        task=task,
        variables={"flow": {"namespace": "company.team", "id": "flow"}, **(variables or {})},
        storage=storage.for_task(location),
        kv=kv,
        venv_dir=str(TOOL_VENVS),
        working_dir=str(working_dir) if working_dir is not None else None,
        on_log=lines.append,
        secrets=secrets,
    )
    outcome = await run_task(PluginExecutor(cls), task, ctx)
    return Run(outcome, lines, storage, kv)


async def _provision(tools: list[Tool]) -> None:
    ctx = TaskContext(
        execution_id="tools",
        task_run_id="tools",
        attempt=1,
        variables={},
        venv_dir=str(TOOL_VENVS),
        on_log=lambda line: None,
    )
    for tool in tools:
        # An empty PATH: the tool is installed into the cache even when the machine has one.
        await tool_path(tool, ctx, "")


def provision_tools(tools: list[Tool]) -> float:
    """Install the tools into :data:`TOOL_VENVS` (a no-op once they are); seconds it took."""
    started = time.monotonic()
    asyncio.run(_provision(tools))
    return time.monotonic() - started


async def tool_dir(tool: Tool) -> str:
    """The directory holding ``tool``'s commands in the cache (installed if missing)."""
    ctx = TaskContext(
        execution_id="tools", task_run_id="tools", attempt=1, variables={}, venv_dir=str(TOOL_VENVS)
    )
    found = await tool_path(tool, ctx, "")
    assert found is not None, f"{tool.binary} has no PyPI requirements to install it from"
    return found
