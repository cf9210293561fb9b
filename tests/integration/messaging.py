"""What the messaging plugin tests share: a task context with a real internal storage, a way to
run a task through the registry (as a worker does) and to read the ION file a task stored."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from engine.stores.storage import LocalStorage, TaskLocation
from executors import ion
from executors.base import TaskContext, TaskOutcome
from executors.publish import AmqpPublishTask, KafkaProduceTask, MqttPublishTask
from executors.registry import Registry, add_plugins


def make_ctx(tmp_path: Path, task: dict[str, Any], **variables: Any) -> TaskContext:
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
    )


async def run(tmp_path: Path, task: dict[str, Any], **variables: Any) -> TaskOutcome:
    """Run ``task`` as a worker does (its type looked up among the plugins)."""
    registry = Registry(
        {
            "io.kestra.plugin.kafka.Produce": KafkaProduceTask(),
            "io.kestra.plugin.mqtt.Publish": MqttPublishTask(),
            "io.kestra.plugin.amqp.Publish": AmqpPublishTask(),
        }
    )
    return await add_plugins(registry).run(task, make_ctx(tmp_path, task, **variables))


def stored_rows(tmp_path: Path, uri: str) -> list[Any]:
    """The values of the ION file stored at ``uri``."""
    path = LocalStorage(tmp_path / "storage").local_path_sync(uri)
    with path.open("rb") as stream:
        return list(ion.iter_values(stream))


def unique(prefix: str) -> str:
    """A name no other engineer's test uses on the shared brokers."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
