"""Running serdes tasks as a worker does: the plugin registry, a real TaskContext and a
LocalStorage internal storage in a temporary directory."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

from engine.stores.storage import LocalStorage, TaskLocation
from executors.base import TaskContext, TaskOutcome
from executors.registry import Registry, add_plugins

FLOW = {"id": "serdes", "namespace": "company.team"}
_runs = itertools.count()


class Serdes:
    """One internal storage; :meth:`run` runs a task on it like a worker."""

    def __init__(self, root: Path) -> None:
        self.storage = LocalStorage(root)
        self.registry = add_plugins(Registry())

    def put(self, name: str, data: bytes | str) -> str:
        raw = data.encode() if isinstance(data, str) else data
        location = TaskLocation("company.team", "serdes", "ex-1", "source", f"s{next(_runs)}")
        return self.storage.put_sync(location, name, raw)

    def read(self, uri: str) -> bytes:
        return self.storage.path_of(uri).read_bytes()

    def text(self, uri: str, encoding: str = "utf-8") -> str:
        return self.read(uri).decode(encoding)

    def context(self, task: dict[str, Any], variables: dict[str, Any] | None = None) -> TaskContext:
        run_id = f"r{next(_runs)}"
        location = TaskLocation("company.team", "serdes", "ex-1", task["id"], run_id)
        return TaskContext.for_job(
            execution_id="ex-1",
            task_run_id=run_id,
            attempt=1,
            task=task,
            variables={"flow": FLOW, **(variables or {})},
            storage=self.storage.for_task(location),
        )

    def run(self, type_: str, **props: Any) -> tuple[TaskOutcome, TaskContext]:
        task = {"id": "convert", "type": f"io.kestra.plugin.serdes.{type_}", **props}
        ctx = self.context(task)
        return asyncio.run(self.registry.run(task, ctx)), ctx

    def ok(self, type_: str, **props: Any) -> tuple[dict[str, Any], TaskContext]:
        outcome, ctx = self.run(type_, **props)
        assert outcome.state == "SUCCESS", outcome.error
        if "records" in outcome.metrics:
            assert outcome.metrics == {"records": outcome.outputs["size"]}
        return outcome.outputs, ctx

    def convert(self, type_: str, data: bytes | str, name: str = "in", **props: Any) -> str:
        """Convert ``data``; the result file's text."""
        outputs, _ = self.ok(type_, **{"from": self.put(name, data), **props})
        return self.text(outputs["uri"])

    def fail(self, type_: str, data: bytes | str, **props: Any) -> str:
        outcome, _ = self.run(type_, **{"from": self.put("in", data), **props})
        assert outcome.state == "FAILED", outcome
        return outcome.error or ""


def warnings(ctx: TaskContext) -> list[str]:
    return [line.message for line in ctx.logs if line.level == "WARN"]
