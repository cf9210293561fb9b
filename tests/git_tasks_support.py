"""Running the git push/sync tasks in tests: a context with real internal storage, real
namespace files and the deployed flows of a real FlowStore whose hw.flows records are kept in a
list (the same deploy path as the worker's, :class:`engine.worker.flows.StoreFlows`, minus the
broker), and bare repositories made with the real ``git``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.bus.wire import KeyValue, decode_flow
from engine.flows.store import FlowStore
from engine.stores.nsfiles import NamespaceFiles
from engine.stores.storage import LocalStorage, TaskLocation
from engine.worker.flows import StoreFlows
from executors import ion
from executors.base import TaskContext, TaskOutcome
from executors.registry import Registry, add_plugins
from tests.git_support import git


@dataclass
class World:
    """Storage, namespace files and deployed flows shared by the task runs of one test."""

    root: Path
    store: FlowStore = field(default_factory=FlowStore)
    records: list[KeyValue] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.storage = LocalStorage(self.root / "storage")
        self.nsfiles = NamespaceFiles(self.storage)

        async def produce(kv: KeyValue) -> None:
            self.records.append(kv)

        self.flows = StoreFlows(self.store, produce)
        self.runs = 0

    def deploy(self, source: str) -> None:
        asyncio.run(self.flows.deploy(source))

    def flow(self, namespace: str, flow_id: str) -> Any:
        return self.store.record(namespace, flow_id)

    def published(self) -> list[tuple[str, str, int, bool]]:
        """(namespace, id, revision, deleted) of every hw.flows record written, in order."""
        out = []
        for _, value in self.records:
            r = decode_flow(value)
            out.append((r.namespace, r.id, r.revision, r.deleted))
        return out

    def context(
        self,
        task: dict[str, Any],
        *,
        namespace: str = "company.ops",
        flow_id: str = "gitops",
        working_dir: Path | None = None,
    ) -> TaskContext:
        self.runs += 1
        location = TaskLocation(namespace, flow_id, f"ex-{self.runs}", task["id"], "tr-1")
        return TaskContext.for_job(
            execution_id=f"ex-{self.runs}",
            task_run_id=f"tr-{self.runs}",
            attempt=0,
            task=task,
            variables={"flow": {"id": flow_id, "namespace": namespace}, "inputs": {}},
            working_dir=str(working_dir or self.root / f"wd-{self.runs}"),
            storage=self.storage.for_task(location),
            namespace_files=self.nsfiles,
            flows=self.flows,
        )

    def run(self, task: dict[str, Any], **kwargs: Any) -> tuple[TaskOutcome, TaskContext]:
        ctx = self.context(task, **kwargs)
        outcome = asyncio.run(add_plugins(Registry()).run(task, ctx))
        return outcome, ctx

    def rows(self, uri: str) -> list[Any]:
        return ion.loads(self.storage.read_sync(uri).decode())


def bare_repo(root: Path, name: str, files: dict[str, str] | None = None) -> Path:
    """A bare repository ``root/name`` whose main branch holds ``files`` (empty: no commit)."""
    bare = root / name
    git("init", "-q", "--bare", "-b", "main", str(bare))
    if files:
        work = root / f"{name}-seed"
        git("clone", "-q", str(bare), str(work))
        git("checkout", "-q", "-b", "main", cwd=work)
        for path, text in files.items():
            target = work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git("add", ".", cwd=work)
        git("commit", "-qm", "seed", cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
    return bare


def checkout(bare: Path, branch: str, into: Path) -> Path:
    """A fresh clone of ``branch`` (to look at what a task pushed)."""
    git("clone", "-q", "-b", branch, str(bare), str(into))
    return into


def logs(ctx: TaskContext) -> list[str]:
    return [line.message for line in ctx.logs]
