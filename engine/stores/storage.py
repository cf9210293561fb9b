"""Internal storage: files that tasks produce, addressed by ``kestra://`` URIs.

Big payloads (output files, log dumps, query results, oversized outputs) never travel on the
bus: they are written here and the events carry their URI, as in Kestra. A URI names where the
file belongs::

    kestra:///<namespace as path>/<flow>/executions/<execution>/tasks/<task>/<task run>/<file>

(``company.team`` becomes ``company/team``, as Kestra does). :class:`LocalStorage` keeps them
under one directory; an object store can implement the same methods later.

Big files never pass through memory: a task writes into a local file and hands it over with
:meth:`TaskStorage.put_file`, and reads a stored file by streaming from
:meth:`TaskStorage.local_path` (for this storage, the stored file itself; an object store
would download it to a temporary file first).

Path traversal is impossible by construction: every segment is checked against a strict
pattern (no ``..``, no separators, no NUL) and the resolved path must stay under the root, so a
URI taken from user input (``read(uri)``) can never reach another file on the worker.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.errors import HeadwaterError

SCHEME = "kestra://"
# The storage folder's name under the system temp dir when none is configured.
DEFAULT_DIR_NAME = "headwater-storage"
# read() from an expression returns the whole file as a string: past this the caller should
# stream the file instead of pulling it into a rendered value.
MAX_READ_BYTES = 10 * 1024 * 1024
# A URI segment: letters, digits and the punctuation ids and file names commonly use.
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$")


def storage_dir(configured: str) -> Path:
    """The internal storage folder of a component: the configured one, else the default
    (the worker and the API must agree: both read and write namespace files)."""
    return Path(configured) if configured else Path(tempfile.gettempdir()) / DEFAULT_DIR_NAME


class StorageError(HeadwaterError):
    """A storage URI is invalid or names a file that does not exist."""


def _check_segment(segment: str, what: str) -> str:
    if not _SEGMENT.match(segment) or segment in (".", ".."):
        raise StorageError(
            f"invalid {what} {segment!r} in an internal storage path: use letters, digits, "
            "'_', '-' and '.' (no '..', no '/')"
        )
    return segment


def safe_file_name(name: str) -> str:
    """``name`` made into one safe segment (unsafe characters become ``_``)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", base).lstrip(".") or "file"
    return cleaned[:255]


@dataclass(frozen=True, slots=True)
class TaskLocation:
    """Where the files of one task run go."""

    namespace: str
    flow_id: str
    execution_id: str
    task_id: str
    task_run_id: str

    def segments(self) -> list[str]:
        parts = [_check_segment(p, "namespace part") for p in self.namespace.split(".")]
        parts.append(_check_segment(self.flow_id, "flow id"))
        parts += ["executions", _check_segment(self.execution_id, "execution id")]
        parts += ["tasks", _check_segment(self.task_id, "task id")]
        parts.append(_check_segment(self.task_run_id, "task run id"))
        return parts

    def execution_segments(self) -> list[str]:
        """The segments of the folder holding every file of the execution."""
        return self.segments()[:-3]


@dataclass(frozen=True, slots=True)
class TriggerLocation:
    """Where the files a trigger stored for the execution it starts go (Kestra's layout:
    ``<ns>/<flow>/executions/<execution>/trigger/<trigger id>/<file>``)."""

    namespace: str
    flow_id: str
    execution_id: str
    trigger_id: str

    def segments(self) -> list[str]:
        parts = [_check_segment(p, "namespace part") for p in self.namespace.split(".")]
        parts.append(_check_segment(self.flow_id, "flow id"))
        parts += ["executions", _check_segment(self.execution_id, "execution id")]
        parts += ["trigger", _check_segment(self.trigger_id, "trigger id")]
        return parts

    def execution_segments(self) -> list[str]:
        return self.segments()[:-2]


Location = TaskLocation | TriggerLocation


class LocalStorage:
    """Internal storage in a local directory (shared by the components of one machine)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    # ----------------------------------------------------------------------- paths

    def uri(self, location: Location, name: str) -> str:
        return SCHEME + "/" + "/".join([*location.segments(), safe_file_name(name)])

    def nested_uri(self, location: Location, name: str) -> str:
        """Like :meth:`uri`, keeping ``name``'s folders (each part made safe): two files of
        the same name in different folders stay apart."""
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
        safe = [safe_file_name(p) for p in parts] or ["file"]
        return SCHEME + "/" + "/".join([*location.segments(), *safe])

    def path_of(self, uri: str) -> Path:
        """The file behind ``uri``; StorageError if it is not a URI of this storage."""
        if not isinstance(uri, str) or not uri.startswith(SCHEME):
            raise StorageError(f"{uri!r} is not an internal storage URI (kestra:///...)")
        rest = uri[len(SCHEME) :].lstrip("/")
        segments = rest.split("/")
        if not rest or len(segments) < 2:
            raise StorageError(f"internal storage URI {uri!r} names no file")
        for segment in segments:
            _check_segment(segment, "path segment")
        path = self.root.joinpath(*segments).resolve()
        if not path.is_relative_to(self.root):  # belt and braces: symlinks inside the root
            raise StorageError(f"internal storage URI {uri!r} points outside the storage")
        return path

    # ------------------------------------------------------------------------ I/O

    def put_sync(self, location: Location, name: str, data: bytes) -> str:
        uri = self.uri(location, name)
        path = self.path_of(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader never sees half a file, a redelivered task overwrites.
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return uri

    async def put(self, location: Location, name: str, data: bytes) -> str:
        """Store ``data`` as ``name`` of the task run; returns its URI."""
        return await asyncio.to_thread(self.put_sync, location, name, data)

    def put_file_sync(
        self, location: Location, name: str, source: Path, *, move: bool = False
    ) -> str:
        """Store the local file ``source`` as ``name`` of the task run, streamed (copied, or
        moved when ``move`` and the file system allows); returns its URI. Folders in ``name``
        are kept (``sub/a.txt``)."""
        uri = self.nested_uri(location, name)
        path = self.path_of(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            if move:
                try:
                    os.replace(source, tmp)
                except OSError:  # another file system: copy instead
                    shutil.copyfile(source, tmp)
            else:
                shutil.copyfile(source, tmp)
            os.replace(tmp, path)
        except FileNotFoundError:
            raise StorageError(f"cannot store {source}: the file does not exist") from None
        finally:
            tmp.unlink(missing_ok=True)
        return uri

    def local_path_sync(self, uri: str) -> Path:
        """The stored file of ``uri``, to stream from; StorageError when it does not exist."""
        path = self.path_of(uri)
        if not path.is_file():
            raise StorageError(f"internal storage file {uri} does not exist")
        return path

    def delete_sync(self, uri: str) -> bool:
        """Delete the file of ``uri``; whether it existed."""
        path = self.path_of(uri)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError):
            return False
        return True

    def execution_prefix(self, location: Location) -> str:
        """The URI of the folder holding every file of the location's execution."""
        return SCHEME + "/" + "/".join(location.execution_segments())

    def delete_tree_sync(self, prefix: str) -> list[str]:
        """Delete every file under the folder URI ``prefix``; the URIs deleted, sorted."""
        root = self.path_of(prefix.rstrip("/"))
        if not root.is_dir():
            return []
        deleted = [
            SCHEME + "/" + path.relative_to(self.root).as_posix()
            for path in sorted(root.rglob("*"))
            if path.is_file() and not path.name.startswith(".")
        ]
        shutil.rmtree(root, ignore_errors=True)
        return deleted

    def read_sync(self, uri: str, max_bytes: int = MAX_READ_BYTES) -> bytes:
        path = self.path_of(uri)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise StorageError(f"internal storage file {uri} does not exist") from None
        if size > max_bytes:
            raise StorageError(
                f"internal storage file {uri} has {size} bytes, more than the {max_bytes} "
                "that can be read at once"
            )
        return path.read_bytes()

    async def read(self, uri: str, max_bytes: int = MAX_READ_BYTES) -> bytes:
        return await asyncio.to_thread(self.read_sync, uri, max_bytes)

    def read_text(self, uri: str) -> str:
        """The expression hook ``read(uri)``: the file as UTF-8 text (synchronous, bounded)."""
        return self.read_sync(uri).decode("utf-8", "replace")

    def for_task(self, location: Location) -> TaskStorage:
        return TaskStorage(self, location)


class TaskStorage:
    """Storage bound to one task run: the ``executors.base.Storage`` hook of its context."""

    def __init__(self, storage: LocalStorage, location: Location) -> None:
        self.storage = storage
        self.location = location

    async def put(self, execution_id: str, name: str, data: bytes) -> str:
        del execution_id  # the location already names the execution
        return await self.storage.put(self.location, name, data)

    async def read(self, uri: str) -> bytes:
        return await self.storage.read(uri)

    async def put_file(self, name: str, source: Path, *, move: bool = False) -> str:
        """Store a local file of any size (see :meth:`LocalStorage.put_file_sync`)."""
        return await asyncio.to_thread(
            self.storage.put_file_sync, self.location, name, source, move=move
        )

    async def local_path(self, uri: str) -> Path:
        """A local file holding ``uri``'s content, to stream from (do not change it)."""
        return await asyncio.to_thread(self.storage.local_path_sync, uri)

    async def delete(self, uri: str) -> bool:
        return await asyncio.to_thread(self.storage.delete_sync, uri)

    async def delete_execution_files(self) -> list[str]:
        """Delete every file of this task run's execution; the URIs deleted."""
        prefix = self.storage.execution_prefix(self.location)
        return await asyncio.to_thread(self.storage.delete_tree_sync, prefix)


async def offload_outputs(
    outputs: Mapping[str, Any], storage: TaskStorage, limit_bytes: int
) -> dict[str, Any]:
    """Outputs whose JSON is larger than ``limit_bytes`` replaced by the URI of a stored copy.

    Maps are split first (``vars.big`` is stored alone, ``vars.small`` stays inline); a big
    string is stored as its text (so ``read()`` returns it unchanged), anything else as JSON.
    """
    out: dict[str, Any] = {}
    for key, value in outputs.items():
        out[key] = await _offload(value, [str(key)], storage, limit_bytes)
    return out


async def _offload(value: Any, path: list[str], storage: TaskStorage, limit: int) -> Any:
    encoded = orjson.dumps(value, default=str)
    if len(encoded) <= limit:
        return value
    if isinstance(value, Mapping):
        return {
            str(k): await _offload(v, [*path, str(k)], storage, limit) for k, v in value.items()
        }
    name = "output-" + "-".join(safe_file_name(p) for p in path)
    if isinstance(value, str):
        return await storage.put("", name + ".txt", value.encode())
    return await storage.put("", name + ".json", encoded)
