"""What tasks that read or deploy flows reach on a worker: the deployed flows of hw.flows.

:class:`TopicFlows` is the ``flows`` hook of every task context
(:class:`executors.base.FlowRepository`), one per worker:

- **reading** uses a :class:`~engine.flows.store.FlowFollower` of hw.flows, the deployed-flow
  store the executor and the API use (not the read model, which is a projection a hop behind).
  It is started on the first task that asks, so a worker whose tasks never touch flows never
  reads the topic;
- **deploying and deleting** go through :mod:`engine.flows.deploy`, the API's own path: the
  source is validated with :func:`engine.flows.load_flow`, numbered from the store, produced
  to hw.flows with the worker's producer and acknowledged before the task goes on. Nothing
  here writes PostgreSQL: the projector turns the records into rows as for any deploy.
"""

from __future__ import annotations

import asyncio

from engine.bus.producer import AsyncProducer
from engine.bus.wire import FlowRecord, KeyValue
from engine.errors import HeadwaterError
from engine.flows import FlowValidationError, load_flow
from engine.flows.deploy import Produce, delete_flow, deploy_flow
from engine.flows.store import FlowFollower, FlowStore
from engine.settings import KafkaSettings
from executors.base import DeployedFlow, TaskError
from schemas.flow import Flow

# Where a validation error says the source came from.
_SOURCE_FILE = "<flow>"


def deployed(record: FlowRecord) -> DeployedFlow:
    return DeployedFlow(record.namespace, record.id, record.revision, record.source or "")


def _load(source: str) -> Flow:
    try:
        return load_flow(source, _SOURCE_FILE)
    except FlowValidationError as exc:
        raise TaskError(str(exc)) from exc


def check_source(source: str) -> tuple[str, str]:
    """(namespace, id) of a valid flow; TaskError with every problem otherwise."""
    flow = _load(source)
    return flow.namespace, flow.id


class StoreFlows:
    """Deployed flows over a FlowStore and a function that writes one hw.flows record."""

    def __init__(self, store: FlowStore, produce: Produce) -> None:
        self.store = store
        self._produce = produce

    async def ready(self) -> FlowStore:
        return self.store

    async def list(self, namespace: str, *, children: bool) -> list[DeployedFlow]:
        store = await self.ready()
        prefix = namespace + "."
        found = [
            deployed(r)
            for r in store.flows()
            if r.namespace == namespace
            or (children and (not namespace or r.namespace.startswith(prefix)))
        ]
        return sorted(found, key=lambda f: (f.namespace, f.id))

    async def get(self, namespace: str, flow_id: str) -> DeployedFlow | None:
        record = (await self.ready()).record(namespace, flow_id)
        return deployed(record) if record is not None else None

    def check(self, source: str) -> tuple[str, str]:
        return check_source(source)

    async def deploy(self, source: str) -> DeployedFlow:
        flow = _load(source)
        store = await self.ready()
        try:
            return deployed(await deploy_flow(store, self._write, source, flow))
        except HeadwaterError as exc:
            raise TaskError(f"flow {flow.namespace}.{flow.id} was not deployed: {exc}") from exc

    async def delete(self, namespace: str, flow_id: str) -> bool:
        store = await self.ready()
        try:
            return await delete_flow(store, self._write, namespace, flow_id) is not None
        except HeadwaterError as exc:
            raise TaskError(f"flow {namespace}.{flow_id} was not deleted: {exc}") from exc

    async def _write(self, kv: KeyValue) -> None:
        await self._produce(kv)


class TopicFlows(StoreFlows):
    """One per worker: the store follows hw.flows from the first use on."""

    def __init__(self, kafka: KafkaSettings, producer: AsyncProducer, topic: str) -> None:
        async def produce(kv: KeyValue) -> None:
            await producer.produce(topic, kv[0], kv[1])

        super().__init__(FlowStore(), produce)
        self._kafka = kafka
        self._topic = topic
        self._follower: FlowFollower | None = None
        self._lock = asyncio.Lock()

    async def ready(self) -> FlowStore:
        async with self._lock:
            if self._follower is None:
                follower = FlowFollower(self._kafka, self._topic, self.store)
                try:
                    await follower.start()
                except HeadwaterError as exc:
                    await follower.close()
                    raise TaskError(
                        f"the deployed flows ({self._topic}) cannot be read: {exc}"
                    ) from exc
                self._follower = follower
            elif not self._follower.healthy:
                raise TaskError(f"the deployed flows ({self._topic}) are not followed any more")
        return self.store

    async def close(self) -> None:
        if self._follower is not None:
            await self._follower.close()
            self._follower = None
