"""What the object stores (Azure Blob Storage, Google Cloud Storage) share, once.

A provider is a :class:`Store`: a connection that lists, downloads (streamed into a file),
uploads (streamed from a file), deletes and copies objects, each returning :class:`Obj`, the
provider-neutral view of one object (its container or bucket, name, size, ETag, last
modification, whether it is a "directory" (a prefix of a delimited listing), the checksums
the server keeps, and the provider's own fields in ``props`` for the outputs). Everything a
task does beyond one call is here, for every provider:

- :func:`select`: Kestra's listing filters (a regexp on a text of the object, FILES /
  DIRECTORY / BOTH) and :func:`cap`, the ``maxFiles`` cut with the provider's warning;
- :func:`fetch`: one object into internal storage (a staged file moved into storage, never
  whole in memory), with :func:`digests` for the checksum checks;
- :func:`move_or_delete`: the MOVE (copy to ``<folder>/<file name>``, then delete) and DELETE
  actions of Downloads and the triggers;
- :func:`poll`: the polling trigger's evaluation (list, Kestra's stateful CREATE / UPDATE
  decision, download, one execution whose action and state write run once it is durable).

What differs by provider is data: the URI scheme, the object's version for the trigger state,
the output shape (``shown``), the warnings' wording.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from executors.base import TaskContext, TaskError
from executors.polling import Entry, Poll, PollContext, StateSpec, compute_and_update, read_state
from executors.polling import write_state as _write_state
from executors.remote import common as c
from triggers.ids import digest

FILTERS = ("FILES", "DIRECTORY", "BOTH")
ACTIONS = ("MOVE", "DELETE", "NONE")
_CHUNK = 1024 * 1024


@dataclass(slots=True)
class Obj:
    """One object (or one prefix of a delimited listing) as every provider describes it."""

    container: str
    name: str
    size: int | None = None
    etag: str | None = None
    modified: datetime | None = None
    is_dir: bool = False
    md5: bytes | None = None  # the digest the server keeps (Content-MD5 / md5Hash)
    crc32c: bytes | None = None  # GCS's big-endian CRC32C
    props: dict[str, Any] = field(default_factory=dict)


class Store(Protocol):
    """One open connection of a provider (see :mod:`executors.remote.azure` / ``gcs``)."""

    scheme: str  # "az", "gs"

    async def list(
        self, container: str, prefix: str | None, delimiter: str | None, **options: Any
    ) -> list[Obj]: ...

    async def download(self, container: str, name: str, target: Path) -> Obj: ...

    async def upload(self, source: Path, container: str, name: str, **options: Any) -> Obj: ...

    async def delete(self, container: str, name: str) -> bool: ...

    async def copy(self, source: Obj, container: str, name: str) -> Obj: ...


Connect = Callable[[], AbstractAsyncContextManager[Any]]


def select(
    objs: Iterable[Obj],
    pattern: re.Pattern[str] | None,
    kind: str,
    text: Callable[[Obj], str],
) -> list[Obj]:
    """Kestra's listing filter: ``regexp`` on ``text(obj)`` (the whole text), then the kind."""
    out = []
    for obj in objs:
        if (kind == "FILES" and obj.is_dir) or (kind == "DIRECTORY" and not obj.is_dir):
            continue
        if c.matches(pattern, text(obj)):
            out.append(obj)
    return out


def cap(ctx: TaskContext, objs: list[Any], max_files: int, warning: str) -> list[Any]:
    """The first ``max_files``; ``warning`` (formatted with ``count`` and ``max``) when cut."""
    if len(objs) > max_files:
        ctx.log("WARN", warning.format(count=len(objs), max=max_files))
        return objs[:max_files]
    return objs


def digests(path: Path, names: Iterable[str]) -> dict[str, bytes]:
    """The digests of a file in one pass: ``md5``, ``sha256``, ``crc32c`` (big-endian)."""
    wanted = set(names)
    hashes = {name: hashlib.new(name) for name in wanted - {"crc32c"}}
    crc: Any = None
    if "crc32c" in wanted:
        import google_crc32c

        crc = google_crc32c.Checksum()  # type: ignore[no-untyped-call]
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            for digest_ in hashes.values():
                digest_.update(block)
            if crc is not None:
                crc.update(block)
    out = {name: h.digest() for name, h in hashes.items()}
    if crc is not None:
        out["crc32c"] = crc.digest()
    return out


def b64(raw: bytes | None) -> str | None:
    return base64.b64encode(raw).decode() if raw is not None else None


Verify = Callable[[Obj, Path], Awaitable[None]]


async def fetch(
    store: Store, ctx: TaskContext, container: str, name: str, verify: Verify | None = None
) -> tuple[Obj, str]:
    """One object into internal storage: (its properties, its ``kestra://`` URI). ``verify``
    checks the staged file first; a failure stores nothing."""
    async with c.staged(ctx, name) as path:
        obj = await store.download(container, name, path)
        if verify is not None:
            await verify(obj, path)
        uri = await c.store(ctx, path, name)
    return obj, uri


async def move_or_delete(
    store: Store,
    ctx: TaskContext,
    objs: Iterable[Obj],
    action: str | None,
    target: tuple[str, str] | None,
) -> None:
    """DELETE every object, or MOVE it to ``target`` (container, folder) as ``<folder>/<file
    name>`` (a copy, then the source deleted)."""
    if action == "DELETE":
        for obj in objs:
            await store.delete(obj.container, obj.name)
    elif action == "MOVE":
        if target is None:
            raise TaskError("the MOVE action needs a destination (moveTo / moveDirectory)")
        container, folder = target
        for obj in objs:
            name = f"{folder.rstrip('/')}/{c.file_name(obj.name)}".lstrip("/")
            await store.copy(obj, container or obj.container, name)
            await store.delete(obj.container, obj.name)


# ------------------------------------------------------------------------ polling triggers


@dataclass(slots=True)
class Watch:
    """What differs between the providers' triggers (all data)."""

    connect: Connect  # a fresh connection (the action runs after the poll's is closed)
    listing: Callable[[Store], Awaitable[list[Obj]]]  # listed, filtered and capped
    uri: Callable[[Obj], str]  # the state's key: az://container/name, gs://bucket/name
    version: Callable[[Obj], str]  # the state's version of the object
    shown: Callable[[Obj, str], dict[str, Any]]  # the trigger's object output, with its URI
    action: str
    target: tuple[str, str] | None
    spec: StateSpec


async def poll(ctx: PollContext, watch: Watch) -> Poll | None:
    """Kestra's blob triggers: new (CREATE) or changed (UPDATE) objects, per the state, each
    downloaded under the execution's trigger folder; ``blobs`` carries them with their
    ``changeType``. The action and the state write run once the StartExecution is durable."""
    task = ctx.task
    async with watch.connect() as store:
        listed = await watch.listing(store)
        if not listed:
            return None
        state = await read_state(ctx, watch.spec)
        now = task.clock()
        firing: list[tuple[Obj, str]] = []
        for obj in listed:
            modified = obj.modified or datetime.now(UTC)
            candidate = Entry(watch.uri(obj), watch.version(obj), c.iso(modified))
            fire, is_new = compute_and_update(state, candidate, watch.spec.on, now)
            if fire:
                firing.append((obj, "CREATE" if is_new else "UPDATE"))
        if not firing:
            await _write_state(ctx, watch.spec, state)
            return None
        coordinates = f"{store.scheme}-" + digest(
            orjson.dumps(sorted([watch.uri(o), watch.version(o)] for o, _ in firing))
        )
        ctx.bind(coordinates)
        blobs = []
        for obj, change in firing:
            _, uri = await fetch(store, task, obj.container, obj.name)
            blobs.append({**watch.shown(obj, uri), "changeType": change})

    async def after() -> None:
        if watch.action in ("MOVE", "DELETE"):
            async with watch.connect() as store:
                await move_or_delete(
                    store, task, [o for o, _ in firing], watch.action, watch.target
                )
        await _write_state(ctx, watch.spec, state)

    return Poll(coordinates, {"blobs": blobs}, after)


async def gather_limited(limit: int, calls: Iterable[Awaitable[Any]]) -> list[Any]:
    """Await ``calls`` with at most ``limit`` in flight (DeleteList's ``concurrent``)."""
    gate = asyncio.Semaphore(max(1, limit))

    async def one(call: Awaitable[Any]) -> Any:
        async with gate:
            return await call

    return list(await asyncio.gather(*(one(call) for call in calls)))
