"""What Kafka Produce and Consume share: client ``properties`` and Kestra's serde types.

``properties`` are Kestra's Java client properties; librdkafka takes most of them unchanged.
Kestra decodes ``ssl.keystore.location`` / ``ssl.truststore.location`` from base64 into temp
files; here a value that names an existing file is used as it is, any other value is decoded
from base64 into a private file of the task's working directory. Java's ``sasl.jaas.config``
and PEM truststores are translated (:func:`engine.bus.config.from_java_properties`); keys that
only Java clients know (``key.deserializer``, ``max.poll.records``...) are dropped.

Serde types (Kestra's ``SerdeType``), as bytes on the wire <-> the value in a flow or an ION
file: ``STRING`` UTF-8 text; ``INTEGER``/``LONG``/``SHORT`` big-endian 4/8/2-byte integers;
``FLOAT``/``DOUBLE`` big-endian IEEE 754; ``BYTE_ARRAY``/``BYTE_BUFFER``/``BYTES`` raw bytes (an
ION blob; base64 text is accepted when producing); ``UUID`` the UUID's text; ``VOID`` nothing
(null); ``JSON`` JSON text. ``AVRO`` and ``PROTOBUF`` need a schema registry, which Headwater's
Kafka tasks do not talk to: they fail naming the property.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from engine.bus.config import from_java_properties
from engine.errors import ConfigError
from executors.base import TaskContext, TaskError, to_text

SERDE_TYPES = (
    "STRING", "INTEGER", "FLOAT", "DOUBLE", "LONG", "SHORT", "BYTE_ARRAY", "BYTE_BUFFER",
    "BYTES", "UUID", "VOID", "AVRO", "JSON", "PROTOBUF",
)  # fmt: skip
_REGISTRY_TYPES = ("AVRO", "PROTOBUF")
_BYTES_TYPES = ("BYTE_ARRAY", "BYTE_BUFFER", "BYTES")
_NUMBERS = {"INTEGER": ">i", "LONG": ">q", "SHORT": ">h", "FLOAT": ">f", "DOUBLE": ">d"}
# Java client settings librdkafka refuses ("No such configuration property").
JAVA_ONLY = frozenset(
    {
        "key.deserializer",
        "value.deserializer",
        "key.serializer",
        "value.serializer",
        "max.poll.records",
        "default.api.timeout.ms",
        "ssl.keystore.type",
    }
)
_STORE_FILES = ("ssl.keystore.location", "ssl.truststore.location")


def serde_type(value: str | None, name: str) -> str:
    """A serde type name checked against Kestra's list; registry types are refused."""
    kind = (value or "STRING").strip().upper()
    if kind not in SERDE_TYPES:
        raise TaskError(f"property '{name}': {value!r} is not one of {', '.join(SERDE_TYPES)}")
    if kind in _REGISTRY_TYPES:
        raise TaskError(
            f"property '{name}': {kind} needs a schema registry, which Headwater's Kafka tasks do "
            "not support; use JSON, STRING or BYTE_ARRAY"
        )
    return kind


def client_config(ctx: TaskContext, properties: Any) -> dict[str, str]:
    """The librdkafka settings of a task's rendered ``properties`` (see the module docstring)."""
    rendered = ctx.render(properties) if properties is not None else {}
    if not isinstance(rendered, Mapping):
        raise TaskError("property 'properties' must be a map of Kafka client settings")
    props = {str(k): to_text(v) for k, v in rendered.items() if str(k) not in JAVA_ONLY}
    for key in _STORE_FILES:
        if key in props and not Path(props[key]).is_file():
            props[key] = str(_decoded_file(ctx, key, props[key]))
    try:
        return from_java_properties(props)
    except ConfigError as exc:
        raise TaskError(f"properties: {exc.message}") from None


def _decoded_file(ctx: TaskContext, key: str, value: str) -> Path:
    try:
        data = base64.b64decode(value.replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise TaskError(
            f"properties.{key}: neither an existing file nor base64 content of one"
        ) from None
    fd, name = tempfile.mkstemp(prefix="kafka-", dir=ctx.working_dir or tempfile.gettempdir())
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return Path(name)


def serialize(value: Any, kind: str, what: str) -> bytes | None:
    """``value`` as the bytes of serde ``kind``; None stays None (a null key or tombstone)."""
    if value is None:
        return None
    try:
        if kind == "STRING":
            return to_text(value).encode()
        if kind == "JSON":
            return orjson.dumps(value)
        if kind in _NUMBERS:
            number = float(value) if kind in ("FLOAT", "DOUBLE") else int(value)
            return struct.pack(_NUMBERS[kind], number)
        if kind in _BYTES_TYPES:
            if isinstance(value, (bytes, bytearray)):
                return bytes(value)
            return base64.b64decode(to_text(value), validate=True)
        if kind == "UUID":
            return str(uuid.UUID(to_text(value))).encode()
        if kind == "VOID":
            raise TaskError(f"{what}: a VOID serializer takes only null, got {value!r}")
    except (ValueError, TypeError, struct.error, binascii.Error, orjson.JSONEncodeError) as exc:
        raise TaskError(f"{what}: cannot serialize {value!r} as {kind}: {exc}") from None
    raise TaskError(f"{what}: serde type {kind} is not supported")


class SerdeError(ValueError):
    """Bytes that the deserializer cannot read; ``raw`` is them as text (for onSerdeError)."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(message)
        self.raw = raw


def deserialize(data: bytes | None, kind: str) -> Any:
    """The value of ``data`` for serde ``kind``; SerdeError when the bytes do not fit."""
    if data is None or kind == "VOID":
        return None
    try:
        if kind == "STRING":
            return data.decode("utf-8")
        if kind == "JSON":
            return orjson.loads(data)
        if kind in _NUMBERS:
            fmt = _NUMBERS[kind]
            if len(data) != struct.calcsize(fmt):
                raise ValueError(f"{len(data)} bytes, expected {struct.calcsize(fmt)}")
            return struct.unpack(fmt, data)[0]
        if kind in _BYTES_TYPES:
            return bytes(data)
        if kind == "UUID":
            return str(uuid.UUID(data.decode("utf-8")))
    except (ValueError, UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise SerdeError(
            f"cannot read {len(data)} bytes as {kind}: {exc}", data.decode("utf-8", "replace")
        ) from None
    raise SerdeError(f"serde type {kind} is not supported", data.decode("utf-8", "replace"))
