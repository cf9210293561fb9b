"""Running the SQL plugin's types the way a worker does: a task dict, a TaskContext with local
internal storage, ``run_task``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.stores.storage import LocalStorage, TaskLocation
from executors.base import TaskContext, TaskOutcome, run_task
from executors.ion import iter_values
from executors.plugin import PluginExecutor
from executors.plugins.jdbc import PLUGINS

BY_TYPE = {cls.type_name(): cls for cls in PLUGINS}


class Runner:
    """Runs tasks of one test against one storage directory."""

    def __init__(self, root: Path, secrets: frozenset[str] = frozenset()) -> None:
        self.storage = LocalStorage(root / "storage")
        self.root = root
        self.secrets = secrets
        self.contexts: list[TaskContext] = []

    def ctx(self, task_id: str, variables: dict[str, Any] | None = None) -> TaskContext:
        ctx = TaskContext.for_job(
            execution_id="exec1",
            task_run_id=f"run-{task_id}",
            attempt=1,
            task={"id": task_id},
            variables={"flow": {"id": "f", "namespace": "acme"}, **(variables or {})},
            secrets=self.secrets,
        )
        ctx.storage = self.storage.for_task(TaskLocation("acme", "f", "exec1", task_id, "r1"))
        self.contexts.append(ctx)
        return ctx

    async def run(self, task: dict[str, Any], **variables: Any) -> TaskOutcome:
        ctx = self.ctx(str(task["id"]), variables)
        return await run_task(PluginExecutor(BY_TYPE[task["type"]]), task, ctx)

    def rows(self, uri: str) -> list[Any]:
        with open(self.storage.path_of(uri), "rb") as handle:
            return list(iter_values(handle))

    def text(self, uri: str) -> str:
        return Path(self.storage.path_of(uri)).read_text()

    def put(self, name: str, data: bytes) -> str:
        return self.storage.put_sync(TaskLocation("acme", "f", "exec1", "input", "r0"), name, data)

    def logs(self) -> list[str]:
        return [line.message for ctx in self.contexts for line in ctx.logs]
