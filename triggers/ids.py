"""Execution ids derived from source coordinates.

NEVER CHANGE THESE FORMATS. An execution id is stored in snapshots, Postgres rows and the
reducer's dedup memory; if a source produced a different id for the same input after an
upgrade, a message redelivered across the upgrade would start a second execution.

The id is ``uuid5(TRIGGER_NAMESPACE, f"{namespace}/{flow_id}/{trigger_id}:{coordinates}")``
where ``coordinates`` is one of the strings below. Including the trigger in the name keeps two
flows that read the same input apart.
"""

from __future__ import annotations

import hashlib
import uuid

# A fixed namespace UUID (uuid5 of the project's name); never change it.
TRIGGER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://headwater.dev/triggers")


def execution_id(namespace: str, flow_id: str, trigger_id: str, coordinates: str) -> str:
    """The execution id of one trigger event; same coordinates, same id."""
    return str(uuid.uuid5(TRIGGER_NAMESPACE, f"{namespace}/{flow_id}/{trigger_id}:{coordinates}"))


def digest(data: bytes) -> str:
    """Short content hash used where a broker has no stable message identity."""
    return hashlib.sha256(data).hexdigest()[:32]


def kafka_coordinates(topic: str, partition: int, group_id: str, offset: int) -> str:
    return f"kafka-unique-id-{topic}-{partition}-{group_id}-{offset}"


def schedule_coordinates(scheduled_date: str) -> str:
    """``scheduled_date`` is the tick as ISO-8601 UTC with milliseconds (ids.iso)."""
    return f"schedule-{scheduled_date}"


def flow_coordinates(execution_id: str, state: str, seq: int | str | None) -> str:
    """A Flow trigger fired by one execution reaching one terminal state. ``seq`` is the
    terminal event's sequence number: a restarted execution that ends again has a higher one,
    so it may fire again, while the same end decided twice (an executor that crashed after
    producing the event and before committing its input decides it again, at another time)
    keeps it. Without a seq (the in-process harness) the end date stands in."""
    return f"flow-{execution_id}-{state}-{'' if seq is None else seq}"


def multiple_coordinates(condition_id: str, execution_ids: list[str]) -> str:
    return f"multiple-{condition_id}-{','.join(sorted(execution_ids))}"


def mqtt_coordinates(
    client_id: str, topic: str, packet_id: int, payload: bytes, generation: int
) -> str:
    """MQTT has no lasting message identity: a QoS 1 redelivery keeps its packet id, but
    packet ids are reused once acknowledged. ``generation`` counts how often this process
    already acknowledged a message with the same (packet id, content); see triggers.mqtt."""
    return f"mqtt-unique-id-{client_id}-{topic}-{packet_id}-{digest(payload)}-{generation}"


def amqp_coordinates(queue: str, message_id: str | None, body: bytes, generation: int) -> str:
    """A publisher-set ``message_id`` is the identity when present; otherwise the content
    (with the same generation rule as MQTT; see triggers.amqp)."""
    if message_id:
        return f"amqp-unique-id-{queue}-id-{message_id}"
    return f"amqp-unique-id-{queue}-{digest(body)}-{generation}"


def file_coordinates(path: str, size: int, mtime_ns: int) -> str:
    """A file is one event per (path, size, modification time): the same file seen again
    (action NONE, or a crash before the move) is the same execution."""
    return f"file-{path}-{size}-{mtime_ns}"


def redis_list_coordinates(key: str, number: int, element: bytes) -> str:
    """An element of a Redis list numbered by the trigger's own counter when it was taken
    (see triggers.redis); the digest guards against a counter reset by hand."""
    return f"redis-list-unique-id-{key}-{number}-{digest(element)}"
