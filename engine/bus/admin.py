"""Async wrapper over confluent-kafka's AdminClient, with a timeout on every call.

Why the timeouts: Tansu leaves some admin requests unanswered (``describe_consumer_groups``
can hang, SERVICES.md), and a component that waits forever at start-up looks alive while doing
nothing. Every call here either answers within ``KafkaSettings.request_timeout_s`` or raises a
retriable :class:`BusError`.

AdminClient futures are completed by librdkafka's background thread, so they are awaited with
``asyncio.wrap_future``; only ``list_topics`` (a blocking metadata call) runs in a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.cimpl import NewTopic

from engine.bus.kafka_errors import to_bus_error
from engine.errors import BusError
from engine.settings import KafkaSettings

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class NewTopicSpec:
    """What :meth:`BusAdmin.create_topics` needs to create one topic."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]


class BusAdmin:
    """Topic and group administration; one instance per component, no global client."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._bootstrap = settings.bootstrap_servers
        self.timeout_s = settings.request_timeout_s
        self._client = AdminClient(
            {
                **settings.client_config("admin"),  # bootstrap.servers, client.id, TLS/SASL
                # librdkafka's own request timeout sits just under ours, so its error (which
                # names the cause) usually wins over our bare "timed out".
                "socket.timeout.ms": max(1000, int(settings.request_timeout_s * 1000) - 500),
            }
        )

    async def _await(self, future: concurrent.futures.Future[T], what: str) -> T:
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except TimeoutError:
            raise BusError(
                f"{what} got no answer within {self.timeout_s} s from {self._bootstrap}; "
                "is the broker up? (HEADWATER_KAFKA__REQUEST_TIMEOUT_S raises the limit)",
                retriable=True,
            ) from None
        except KafkaException as exc:
            raise to_bus_error(exc, what, bootstrap=self._bootstrap) from exc

    async def wait_ready(self) -> None:
        """Return once the broker answers a metadata request; BusError naming it if not."""
        await self.list_topics()

    async def list_topics(self) -> dict[str, int]:
        """Every topic the broker knows, with its partition count."""

        def call() -> dict[str, int]:
            metadata = self._client.list_topics(timeout=self.timeout_s)
            return {name: len(t.partitions) for name, t in metadata.topics.items() if not t.error}

        try:
            return await asyncio.to_thread(call)
        except KafkaException as exc:
            raise to_bus_error(exc, "list topics", bootstrap=self._bootstrap) from exc

    async def create_topics(self, specs: Iterable[NewTopicSpec]) -> dict[str, bool]:
        """Create topics; returns name -> True if created, False if it already existed."""
        new = [
            NewTopic(s.name, s.partitions, s.replication_factor, config=dict(s.config))
            for s in specs
        ]
        if not new:
            return {}
        futures = self._client.create_topics(new, request_timeout=self.timeout_s)
        out: dict[str, bool] = {}
        for name, future in futures.items():
            try:
                await self._await(future, f"create topic {name}")
                out[name] = True
            except BusError as exc:
                if exc.context.get("code") != "TOPIC_ALREADY_EXISTS":
                    raise
                out[name] = False
        return out

    async def delete_topics(self, names: Iterable[str]) -> None:
        """Delete topics; a topic that does not exist is not an error."""
        names = list(names)
        if not names:
            return
        futures = self._client.delete_topics(names, request_timeout=self.timeout_s)
        for name, future in futures.items():
            try:
                await self._await(future, f"delete topic {name}")
            except BusError as exc:
                if exc.context.get("code") != "UNKNOWN_TOPIC_OR_PART":
                    raise

    async def topic_configs(self, names: Iterable[str]) -> dict[str, dict[str, str]]:
        """The configuration entries the broker reports for each topic."""
        resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names]
        if not resources:
            return {}
        futures = self._client.describe_configs(resources, request_timeout=self.timeout_s)
        out: dict[str, dict[str, str]] = {}
        for resource, future in futures.items():
            entries: dict[str, Any] = await self._await(
                future, f"describe config of topic {resource.name}"
            )
            out[resource.name] = {k: e.value for k, e in entries.items() if e.value is not None}
        return out

    async def committed_offsets(self, group_id: str) -> dict[tuple[str, int], int]:
        """(topic, partition) -> next offset to read, as committed by a consumer group."""
        futures = self._client.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group_id)], request_timeout=self.timeout_s
        )
        result: ConsumerGroupTopicPartitions = await self._await(
            futures[group_id], f"list committed offsets of group {group_id}"
        )
        out: dict[tuple[str, int], int] = {}
        for tp in result.topic_partitions or []:
            if tp.error is not None:
                raise to_bus_error(
                    tp.error, f"committed offset of {tp.topic}[{tp.partition}] ({group_id})"
                )
            if tp.offset >= 0:
                out[(tp.topic, tp.partition)] = tp.offset
        return out

    async def group_state(self, group_id: str) -> str:
        """The state of a consumer group (e.g. "STABLE", "EMPTY"); times out rather than hangs."""
        futures = self._client.describe_consumer_groups([group_id], request_timeout=self.timeout_s)
        description = await self._await(futures[group_id], f"describe group {group_id}")
        return str(description.state.name)
