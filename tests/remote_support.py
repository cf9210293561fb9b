"""What the object-storage / file-transfer tests share: a task context on a real LocalStorage,
an in-memory KV store for the polling triggers, and the deploy/local servers' coordinates."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from deploy.local.localsvc import azurite as azsvc
from deploy.local.localsvc import gcs as gcssvc
from deploy.local.localsvc import s3 as s3svc
from engine.stores.storage import LocalStorage, TaskLocation, TriggerLocation
from executors.base import TaskContext, TaskError, TaskOutcome
from executors.polling import PollContext
from executors.registry import Registry, add_plugins

S3_ENDPOINT = f"http://127.0.0.1:{os.environ.get('HEADWATER_LOCAL_S3API_PORT', '8433')}"
S3_CONNECTION = {
    "endpointOverride": S3_ENDPOINT,
    "region": s3svc.REGION,
    "accessKeyId": s3svc.ACCESS_KEY,
    "secretKeyId": s3svc.SECRET_KEY,
}
AZURITE_PORT = int(os.environ.get("HEADWATER_LOCAL_AZURITE_PORT", "10100"))
AZURE_CONNECTION = {"connectionString": azsvc.connection_string(AZURITE_PORT)}
AZURE_KEY_CONNECTION = {
    "endpoint": azsvc.endpoint(AZURITE_PORT),
    "sharedKeyAccountName": azsvc.ACCOUNT,
    "sharedKeyAccountAccessKey": azsvc.ACCOUNT_KEY,
}
GCS_EMULATOR = gcssvc.emulator_host(int(os.environ.get("HEADWATER_LOCAL_GCS_PORT", "4543")))
LOC = TaskLocation("company.team", "files", "exec1", "step", "run1")


class MemoryKV:
    """A KVStore in memory (the real one is a Kafka topic, tested elsewhere)."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], Any] = {}

    async def get(self, namespace: str, key: str) -> tuple[bool, Any]:
        found = (namespace, key) in self.values
        return found, self.values.get((namespace, key))

    async def set(
        self, namespace: str, key: str, value: Any, *, overwrite: bool, ttl_seconds: float | None
    ) -> None:
        if not overwrite and (namespace, key) in self.values:
            raise TaskError("exists")
        self.values[(namespace, key)] = value

    async def delete(self, namespace: str, key: str) -> bool:
        return self.values.pop((namespace, key), None) is not None


def unique(prefix: str) -> str:
    """A bucket / folder name no other run uses (the servers are shared)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def ctx_for(
    task: dict[str, Any], tmp_path: Path, secrets: frozenset[str] = frozenset(), **hooks: Any
) -> TaskContext:
    """A job's context with the test's internal storage and working directory (``hooks``: more
    of ``TaskContext.for_job``'s arguments)."""
    storage = LocalStorage(tmp_path / "storage")
    return TaskContext.for_job(
        execution_id="exec1",
        task_run_id="run1",
        attempt=1,
        task=task,
        variables={"flow": {"id": "files", "namespace": "company.team"}, "vars": {}},
        storage=storage.for_task(LOC),
        working_dir=str(tmp_path / "work"),
        secrets=secrets,
        **hooks,
    )


async def run(
    type_: str, task: dict[str, Any], tmp_path: Path, **connection: Any
) -> tuple[TaskOutcome, TaskContext]:
    task = {"id": "step", "type": type_, **connection, **task}
    ctx = ctx_for(task, tmp_path)
    outcome = await add_plugins(Registry()).run(task, ctx)
    return outcome, ctx


async def put(tmp_path: Path, name: str, data: bytes) -> str:
    """A file in the test's internal storage; its kestra:// URI."""
    storage = LocalStorage(tmp_path / "storage")
    return await storage.put(LOC, name, data)


def read(tmp_path: Path, uri: str) -> bytes:
    return LocalStorage(tmp_path / "storage").local_path_sync(uri).read_bytes()


def poll_context(tmp_path: Path, kv: MemoryKV, trigger_id: str = "watch") -> PollContext:
    storage = LocalStorage(tmp_path / "storage")
    task = TaskContext(
        execution_id="",
        task_run_id=f"trigger-{trigger_id}",
        attempt=0,
        variables={"flow": {"id": "files", "namespace": "company.team"}},
        task_id=trigger_id,
        namespace="company.team",
        flow_id="files",
        working_dir=str(tmp_path / "trigger-work"),
        kv=kv,
    )
    return PollContext(
        task=task,
        namespace="company.team",
        flow_id="files",
        trigger_id=trigger_id,
        kv=kv,
        storage_for=lambda exec_id: storage.for_task(
            TriggerLocation("company.team", "files", exec_id, trigger_id)
        ),
    )
