"""What the messaging plugin tests share: a task context with a real internal storage, a way to
run a task through the registry (as a worker does) and to read the ION file a task stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from engine.stores.storage import LocalStorage, TaskLocation
from executors import ion
from executors.base import LogLine, TaskContext, TaskOutcome
from executors.publish import AmqpPublishTask, KafkaProduceTask, MqttPublishTask
from executors.registry import Registry, add_plugins


def make_ctx(
    tmp_path: Path, task: dict[str, Any], on_log: Any = None, **variables: Any
) -> TaskContext:
    run_id = uuid.uuid4().hex[:12]
    storage = LocalStorage(tmp_path / "storage")
    location = TaskLocation("company.team", "messaging", "exec1", str(task["id"]), run_id)
    work = tmp_path / f"work-{run_id}"
    work.mkdir(parents=True)
    return TaskContext.for_job(
        execution_id="exec1",
        task_run_id=run_id,
        attempt=1,
        task=task,
        variables={"flow": {"id": "messaging", "namespace": "company.team"}, **variables},
        storage=storage.for_task(location),
        working_dir=str(work),
        on_log=on_log,
    )


async def run(
    tmp_path: Path, task: dict[str, Any], on_log: Any = None, **variables: Any
) -> TaskOutcome:
    """Run ``task`` as a worker does (its type looked up among the plugins); ``on_log``
    sees every log line (from the task's threads too)."""
    registry = Registry(
        {
            "io.kestra.plugin.kafka.Produce": KafkaProduceTask(),
            "io.kestra.plugin.mqtt.Publish": MqttPublishTask(),
            "io.kestra.plugin.amqp.Publish": AmqpPublishTask(),
        }
    )
    return await add_plugins(registry).run(task, make_ctx(tmp_path, task, on_log, **variables))


async def run_until_logged(
    tmp_path: Path, task: dict[str, Any], needle: str
) -> tuple[asyncio.Task[TaskOutcome], Callable[[], Awaitable[None]]]:
    """Start ``task``; the returned waiter returns once it logged a line containing
    ``needle`` (or fails when the task ended first)."""
    loop = asyncio.get_running_loop()
    seen = asyncio.Event()

    def on_log(line: LogLine) -> None:
        if needle in line.message:
            loop.call_soon_threadsafe(seen.set)

    running = asyncio.create_task(run(tmp_path, task, on_log))

    async def wait() -> None:
        waiter = asyncio.create_task(seen.wait())
        await asyncio.wait({waiter, running}, return_when=asyncio.FIRST_COMPLETED)
        if not seen.is_set():
            waiter.cancel()
            outcome = running.result()
            raise AssertionError(f"{task['id']} ended before logging {needle!r}: {outcome}")

    return running, wait


def stored_rows(tmp_path: Path, uri: str) -> list[Any]:
    """The values of the ION file stored at ``uri``."""
    path = LocalStorage(tmp_path / "storage").local_path_sync(uri)
    with path.open("rb") as stream:
        return list(ion.iter_values(stream))


def unique(prefix: str) -> str:
    """A name no other engineer's test uses on the shared brokers."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
