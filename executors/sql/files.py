"""Files of the SQL tasks: internal storage in and out, and the working directory.

With Headwater's local storage (a :class:`~engine.stores.storage.TaskStorage` over a
:class:`~engine.stores.storage.LocalStorage`), files are copied or moved on disk, so a result of
millions of rows never sits in memory; any other storage gets one ``read`` / ``put``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from executors.base import TaskContext, TaskError, error_message, to_text
from executors.process import inside

SCHEME = "kestra://"


def _local(ctx: TaskContext) -> tuple[Any, Any] | None:
    """(LocalStorage, TaskLocation) when the task's storage is Headwater's local one."""
    storage: Any = ctx.storage
    local = getattr(storage, "storage", None)
    location = getattr(storage, "location", None)
    if local is None or location is None or not hasattr(local, "path_of"):
        return None
    return local, location


def require_storage(ctx: TaskContext, what: str) -> None:
    if ctx.storage is None:
        raise TaskError(f"{what} needs internal storage, and this worker has none")


async def copy_from_storage(ctx: TaskContext, uri: str, target: Path, what: str) -> None:
    """Write the internal-storage file ``uri`` to ``target`` (``what`` names the property)."""
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        raise TaskError(f"{what}: {uri!r} is not an internal storage URI (kestra:///...)")
    require_storage(ctx, what)
    target.parent.mkdir(parents=True, exist_ok=True)
    local = _local(ctx)
    try:
        if local is not None:
            source = Path(local[0].path_of(uri))
            try:
                await asyncio.to_thread(shutil.copyfile, source, target)
            except FileNotFoundError:
                raise TaskError(f"{what}: internal storage file {uri} does not exist") from None
            return
        assert ctx.storage is not None
        data = await ctx.storage.read(uri)
        await asyncio.to_thread(target.write_bytes, data)
    except TaskError:
        raise
    except Exception as exc:
        raise TaskError(f"{what}: {error_message(exc)}") from exc


async def publish(ctx: TaskContext, path: Path, name: str) -> str:
    """Store the local file ``path`` as ``name`` of this task run; its URI. The file is moved
    when the storage is local (it must not be used afterwards)."""
    require_storage(ctx, "storing a file")
    local = _local(ctx)
    if local is not None:
        storage, location = local
        uri: str = storage.uri(location, name)
        final = Path(storage.path_of(uri))
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
        await asyncio.to_thread(shutil.move, str(path), str(tmp))
        os.replace(tmp, final)
        return uri
    assert ctx.storage is not None
    data = await asyncio.to_thread(path.read_bytes)
    put_uri: str = await ctx.storage.put(ctx.execution_id, name, data)
    return put_uri


def input_file_map(value: Any, what: str = "inputFiles") -> dict[str, Any]:
    """Kestra's ``inputFiles`` (rendered): a map, or a JSON text of one; null entries dropped."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise TaskError(f"{what} must be a map of file name -> content or URI") from None
    if not isinstance(value, Mapping):
        raise TaskError(f"{what} must be a map of file name -> content or URI")
    return {str(k): v for k, v in value.items() if v is not None}


async def write_input_files(ctx: TaskContext, files: Mapping[str, Any], root: Path) -> None:
    """Each entry as ``root/name``: a ``kestra://`` URI is copied, other values are the text."""
    for name, content in files.items():
        if name.startswith(("./", "..", "/")):
            raise TaskError(
                f"Invalid inputFile (only relative path is supported) for path {name!r}"
            )
        target = inside(root, name)
        if isinstance(content, str) and content.startswith(SCHEME):
            await copy_from_storage(ctx, content, target, f"inputFiles.{name}")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(target.write_text, to_text(content))


def create_output_files(names: list[str], root: Path) -> dict[str, str]:
    """Kestra's ``createOutputFiles``: an empty temporary file per name in ``root``
    (``<name>_<random>.tmp``); name -> its absolute path (the ``outputFiles`` variable)."""
    out: dict[str, str] = {}
    for name in names:
        if name.startswith(("./", "..", "/")):
            raise TaskError(
                f"Invalid outputFile (only relative path is supported) for path {name!r}"
            )
        prefix = (name + "_").rjust(3, "_")
        handle, path = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=root)
        os.close(handle)
        out[name] = str(Path(path).resolve())
    return out


async def upload_output_files(ctx: TaskContext, files: Mapping[str, str]) -> dict[str, str]:
    """Each output file stored; name -> URI."""
    uploaded: dict[str, str] = {}
    for name, path in files.items():
        source = Path(path)
        uploaded[name] = await publish(ctx, source, source.name)
    return uploaded
