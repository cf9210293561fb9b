"""Kestra's core ``storage`` tasks: files of internal storage, read and written as streams.

Every type reads its input by streaming the stored file (line by line, or backwards in blocks)
and writes its result into a file of the working directory that is then moved into internal
storage, so no file is ever held whole in memory. Expressions over items run in a thread, off
the event loop. From Kestra 1.x's classes (aliases: ``io.kestra.core.tasks.storages.<Name>``):

- ``Write``: ``content`` (required), ``extension``; output ``uri``. Kestra names the file
  ``<random><extension>`` (``.tmp`` without one); ours is ``<task id><extension>``, and an
  extension written without its dot gets one.
- ``Concat``: ``files`` (a list, or a JSON text of one, of ``kestra://`` URIs), ``separator``
  (written after *each* file, the last one too), ``extension`` (``.tmp``); output ``uri``.
- ``Split``: ``from``, one of ``bytes`` (``10MB``, ``200KB``, ``1GB`` or a number of bytes:
  a new file starts once the current one holds at least that many), ``partitions`` (lines dealt
  round-robin into N files; empty ones dropped), ``rows`` (lines per file), ``regexPattern``
  (lines grouped by the first capture group, in order of first appearance; lines that do not
  match are dropped); ``separator`` (``\\n``) ends every written line. Lines are read as Java's
  ``readLine`` does (``\\n``, ``\\r\\n`` or ``\\r``). The files keep ``from``'s extension
  (``.tmp`` without one). Output ``uris``. None of the four: an error, as in Kestra.
- ``Size``: ``uri``; output ``size`` (bytes).
- ``Delete``: ``uri``, ``errorOnMissing`` (false); outputs ``uri``, ``deleted``.
- ``DeduplicateItems``: ``from`` (an ION file, one value per line), ``expr`` (rendered with the
  item's fields as variables); keeps the *last* item of each key, in file order. Outputs
  ``uri`` (``.ion``), ``numKeys``, ``processedItemsTotal``, ``droppedItemsTotal``.
- ``FilterItems``: ``from``, ``filterCondition`` (rendered per item, then Kestra's truthiness:
  ``false``, ``0``, ``-0`` and blank are false), ``filterType`` (INCLUDE | EXCLUDE the matching
  items), ``errorOrNullBehavior`` (FAIL | INCLUDE | EXCLUDE an item whose condition fails or
  renders null). Outputs ``uri`` (``.ion``), ``processedItemsTotal``, ``droppedItemsTotal``.
- ``Reverse``: ``from``, ``separator`` (``\\n``, after each line), ``charset`` (UTF-8; any
  charset where a newline is the byte 0x0A: UTF-16/32 are refused); output ``uri``. The lines
  (ended as ``readLine`` ends them), last first; a final line break does not make an empty
  last line.
- ``LocalFiles`` (deprecated in Kestra, removed in 1.3): ``inputs`` (name -> content or
  ``kestra://`` URI, written into the working directory) and ``outputs`` (globs of working
  directory files to store); output ``uris`` (relative name -> URI).
- ``PurgeCurrentExecutionFiles``: deletes every file of the running execution; output ``uris``
  (the deleted files).
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, ClassVar, Literal

import orjson
from pydantic import Field

from engine.errors import ExpressionError
from executors import ion
from executors.base import Storage, TaskContext, TaskError, to_text
from executors.plugin import TaskPlugin, render_bool, render_int, render_str
from executors.process import collect_output_files, workspace, write_input_files
from schemas.flow.common import BoolOrExpr, IntOrExpr, Str

_LEGACY = "io.kestra.core.tasks.storages"
_FALSY = frozenset({"false", "0", "-0", ""})
# Stored files are read and written in blocks of this size.
BLOCK_BYTES = 1024 * 1024
_BYTES = re.compile(r"^\s*(\d+)\s*(KB|MB|GB)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
_SEPARATOR = re.compile(rb"\r\n|\n|\r")
_SEPARATOR_AT_END = re.compile(rb"(?:\r\n|\n|\r)\Z")


class _StorageTask(TaskPlugin):
    family: ClassVar[str] = "core"

    def storage(self, ctx: TaskContext) -> Storage:
        if ctx.storage is None:
            raise TaskError(f"{self.type_name()} needs internal storage, and this worker has none")
        return ctx.storage


def _temp_path(ctx: TaskContext, suffix: str) -> Path:
    directory = Path(ctx.working_dir or tempfile.gettempdir())
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".hw-", suffix=suffix, dir=directory)
    os.close(fd)
    return Path(name)


def _temp_dir(ctx: TaskContext) -> str:
    parent = Path(ctx.working_dir or tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix=".hw-", dir=parent)


async def _store(ctx: TaskContext, storage: Storage, name: str, path: Path) -> str:
    try:
        return await storage.put_file(name, path, move=True)
    finally:
        await asyncio.to_thread(path.unlink, True)


def _extension(uri: str) -> str:
    last = uri.rsplit("/", 1)[-1]
    return last[last.rfind(".") :] if "." in last else ".tmp"


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    """Lines as Java's ``BufferedReader.readLine`` ends them: ``\\n``, ``\\r\\n`` or ``\\r``."""
    pending = b""
    while block := stream.read(BLOCK_BYTES):
        parts = (pending + block).splitlines(keepends=True)
        last = parts.pop()
        # An unfinished last line, or a \r that may be half of \r\n, waits for the next block.
        if last.endswith(b"\n") and not last.endswith(b"\r"):
            parts.append(last)
            pending = b""
        else:
            pending = last
        for line in parts:
            yield line.rstrip(b"\r\n")
    if pending:
        yield pending.rstrip(b"\r\n")


class Write(_StorageTask):
    """Write a string into a file of internal storage."""

    aliases: ClassVar[tuple[str, ...]] = ()
    short: ClassVar[str | None] = "storage_write"

    type: Literal["io.kestra.plugin.core.storage.Write"]
    content: Str
    extension: Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        storage = self.storage(ctx)
        data = (ctx.render_str(self.content) or "").encode()
        extension = render_str(ctx, self.extension, "extension") or ".tmp"
        if not extension.startswith("."):
            extension = "." + extension
        path = await asyncio.to_thread(_temp_path, ctx, extension)
        await asyncio.to_thread(path.write_bytes, data)
        return {"uri": await _store(ctx, storage, f"{ctx.task_id or 'write'}{extension}", path)}


class Concat(_StorageTask):
    """Concatenate files of internal storage into one."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_LEGACY}.Concat",)
    short: ClassVar[str | None] = "storage_concat"

    type: Literal["io.kestra.plugin.core.storage.Concat"]
    files: list[Str] | Str
    separator: Str | None = None
    extension: Str | None = ".tmp"

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        storage = self.storage(ctx)
        uris = _uri_list(ctx, self.files, "files")
        separator = render_str(ctx, self.separator, "separator")
        extension = render_str(ctx, self.extension, "extension") or ".tmp"
        path = await asyncio.to_thread(_temp_path, ctx, extension)
        try:
            with path.open("wb") as out:
                for uri in uris:
                    source = await storage.local_path(uri)
                    await asyncio.to_thread(_copy, source, out)
                    if separator is not None:
                        await asyncio.to_thread(out.write, separator.encode())
        except BaseException:
            await asyncio.to_thread(path.unlink, True)
            raise
        return {"uri": await _store(ctx, storage, f"{ctx.task_id or 'concat'}{extension}", path)}


def _copy(source: Path, out: IO[bytes]) -> None:
    with source.open("rb") as src:
        while block := src.read(BLOCK_BYTES):
            out.write(block)


def _uri_list(ctx: TaskContext, value: Any, name: str) -> list[str]:
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        try:
            rendered = orjson.loads(rendered)
        except orjson.JSONDecodeError as exc:
            raise TaskError(
                f"property '{name}': expected a list of kestra:// URIs or a JSON text of one"
            ) from exc
    if not isinstance(rendered, list):
        raise TaskError(f"property '{name}': expected a list of kestra:// URIs, got {rendered!r}")
    return [to_text(item) for item in rendered]


def _from() -> Any:
    return Field(alias="from", description="a kestra:// URI")


class Split(_StorageTask):
    """Split a file of internal storage by size, rows, partitions or a regex."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_LEGACY}.Split",)
    short: ClassVar[str | None] = "storage_split"

    type: Literal["io.kestra.plugin.core.storage.Split"]
    from_: Str = _from()
    bytes: Str | None = None
    partitions: IntOrExpr | None = None
    rows: IntOrExpr | None = None
    regexPattern: Str | None = None
    separator: Str | None = "\n"

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        storage = self.storage(ctx)
        uri = render_str(ctx, self.from_, "from", required=True) or ""
        separator = (render_str(ctx, self.separator, "separator") or "").encode()
        chooser: _Chooser
        if self.regexPattern is not None:
            pattern = render_str(ctx, self.regexPattern, "regexPattern") or ""
            try:
                chooser = _ByRegex(re.compile(pattern.encode()))
            except re.error as exc:
                raise TaskError(f"property 'regexPattern': invalid regex: {exc}") from exc
        elif self.bytes is not None:
            chooser = _BySize(_parse_bytes(render_str(ctx, self.bytes, "bytes") or ""), rows=False)
        elif self.partitions is not None:
            count = render_int(ctx, self.partitions, "partitions") or 0
            if count < 1:
                raise TaskError("property 'partitions' must be at least 1")
            chooser = _RoundRobin(count)
        elif self.rows is not None:
            count = render_int(ctx, self.rows, "rows") or 0
            if count < 1:
                raise TaskError("property 'rows' must be at least 1")
            chooser = _BySize(count, rows=True)
        else:
            raise TaskError("Invalid configuration with no size, count, rows, nor regexPattern")
        source = await storage.local_path(uri)
        extension = _extension(uri)
        directory = await asyncio.to_thread(_temp_dir, ctx)
        try:
            paths = await asyncio.to_thread(
                _split, source, Path(directory), extension, separator, chooser, ctx
            )
            uris = [
                await storage.put_file(f"{ctx.task_id or 'split'}-{n}{extension}", p, move=True)
                for n, p in enumerate(paths)
            ]
        finally:
            await asyncio.to_thread(_remove_tree, Path(directory))
        return {"uris": uris}


def _remove_tree(path: Path) -> None:
    for child in path.iterdir():
        child.unlink(missing_ok=True)
    path.rmdir()


def _parse_bytes(text: str) -> int:
    """Micronaut's readable bytes: ``10MB``, ``200KB``, ``1GB`` (powers of 1024) or bytes."""
    match = _BYTES.match(text)
    if match is None:
        raise TaskError(f"Invalid size with value '{text}': expected e.g. 10MB, 200KB or 1024")
    unit = match.group(2).upper() if match.group(2) else None
    return int(match.group(1)) * _UNITS[unit]


class _Chooser:
    """Which output file each line goes to (an index; None drops the line)."""

    def target(self, line: bytes, written: int) -> int | None:
        raise NotImplementedError


class _BySize(_Chooser):
    """A new file once the current one holds ``limit`` bytes (or rows)."""

    def __init__(self, limit: int, *, rows: bool) -> None:
        self.limit, self.rows = limit, rows
        self.index, self.amount = -1, 0

    def target(self, line: bytes, written: int) -> int | None:
        if self.index < 0 or self.amount >= self.limit:
            self.index, self.amount = self.index + 1, 0
        self.amount += 1 if self.rows else written
        return self.index


class _RoundRobin(_Chooser):
    def __init__(self, count: int) -> None:
        self.count, self.next = count, 0

    def target(self, line: bytes, written: int) -> int | None:
        index, self.next = self.next, (self.next + 1) % self.count
        return index


class _ByRegex(_Chooser):
    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self.pattern = pattern
        self.keys: dict[bytes, int] = {}

    def target(self, line: bytes, written: int) -> int | None:
        match = self.pattern.search(line)
        if match is None or not self.pattern.groups:
            return None
        key = match.group(1) or b""
        return self.keys.setdefault(key, len(self.keys))


def _split(
    source: Path,
    directory: Path,
    extension: str,
    separator: bytes,
    chooser: _Chooser,
    ctx: TaskContext,
) -> list[Path]:
    files: list[Path] = []
    handles: dict[int, IO[bytes]] = {}
    try:
        with source.open("rb") as stream:
            for n, line in enumerate(_lines(stream)):
                if n % 10_000 == 0 and ctx.cancelled.is_set():
                    raise TaskError("split stopped: the task was killed")
                data = line + separator
                index = chooser.target(line, len(data))
                if index is None:
                    continue
                handle = handles.get(index)
                if handle is None:
                    path = directory / f"{index}{extension}"
                    files.append(path)
                    handle = handles[index] = path.open("wb")
                    if isinstance(chooser, _BySize):  # earlier files are complete
                        for old in [i for i in handles if i != index]:
                            handles.pop(old).close()
                handle.write(data)
    finally:
        for handle in handles.values():
            handle.close()
    return [path for path in files if path.stat().st_size > 0]


class Size(_StorageTask):
    """The size in bytes of a file of internal storage."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_LEGACY}.Size",)
    short: ClassVar[str | None] = "storage_size"

    type: Literal["io.kestra.plugin.core.storage.Size"]
    uri: Str

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        uri = render_str(ctx, self.uri, "uri", required=True) or ""
        path = await self.storage(ctx).local_path(uri)
        return {"size": (await asyncio.to_thread(path.stat)).st_size}


class Delete(_StorageTask):
    """Delete a file of internal storage."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_LEGACY}.Delete",)
    short: ClassVar[str | None] = "storage_delete"

    type: Literal["io.kestra.plugin.core.storage.Delete"]
    uri: Str
    errorOnMissing: BoolOrExpr | None = False

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        uri = render_str(ctx, self.uri, "uri", required=True) or ""
        deleted = await self.storage(ctx).delete(uri)
        if not deleted and render_bool(ctx, self.errorOnMissing, "errorOnMissing"):
            raise TaskError(f"Unable to find file '{uri}'")
        return {"uri": uri, "deleted": deleted}


def _item(line: bytes, number: int) -> dict[str, Any]:
    try:
        value = ion.loads_one(line.decode("utf-8"))
    except (ion.IonError, UnicodeDecodeError) as exc:
        raise TaskError(f"line {number} is not an ION value: {exc}") from None
    if not isinstance(value, dict):
        raise TaskError(f"line {number} is not an ION struct (a map of fields): {line[:200]!r}")
    return value


def _rendered(ctx: TaskContext, expression: str, item: Mapping[str, Any]) -> str | None:
    value = ctx.render(expression, item)
    return None if value is None else to_text(value)


class DeduplicateItems(_StorageTask):
    """Keep the last item of each key of an ION file."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_LEGACY}.DeduplicateItems",)
    short: ClassVar[str | None] = "storage_deduplicate"

    type: Literal["io.kestra.plugin.core.storage.DeduplicateItems"]
    from_: Str = _from()
    expr: Str

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        storage = self.storage(ctx)
        source = await storage.local_path(render_str(ctx, self.from_, "from", required=True) or "")
        target = await asyncio.to_thread(_temp_path, ctx, ".ion")
        try:
            counts = await asyncio.to_thread(_deduplicate, ctx, self.expr, source, target)
        except BaseException:
            await asyncio.to_thread(target.unlink, True)
            raise
        uri = await _store(ctx, storage, f"{ctx.task_id or 'deduplicate'}.ion", target)
        return {"uri": uri, **counts}


def _key(ctx: TaskContext, expression: str, line: bytes, number: int) -> str:
    try:
        return to_text(ctx.render(expression, _item(line, number)))
    except ExpressionError as exc:
        raise TaskError(f"line {number}: expression 'expr' failed: {exc}") from None


def _deduplicate(ctx: TaskContext, expression: str, source: Path, target: Path) -> dict[str, int]:
    last: dict[str, int] = {}  # key -> offset of its last item
    with source.open("rb") as stream:
        for offset, line in enumerate(_lines(stream)):
            last[_key(ctx, expression, line, offset + 1)] = offset
    keep = set(last.values())
    processed = dropped = 0
    with source.open("rb") as stream, target.open("wb") as out:
        for offset, line in enumerate(_lines(stream)):
            if offset in keep:
                out.write(line + b"\n")
            else:
                dropped += 1
            processed += 1
    return {"numKeys": len(last), "processedItemsTotal": processed, "droppedItemsTotal": dropped}


class FilterItems(_StorageTask):
    """Keep or drop the items of an ION file that match a condition."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_LEGACY}.FilterItems",)
    short: ClassVar[str | None] = "storage_filter"

    type: Literal["io.kestra.plugin.core.storage.FilterItems"]
    from_: Str = _from()
    filterCondition: Str
    filterType: Literal["INCLUDE", "EXCLUDE"] | Str | None = "INCLUDE"
    errorOrNullBehavior: Literal["FAIL", "INCLUDE", "EXCLUDE"] | Str | None = "FAIL"

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        storage = self.storage(ctx)
        source = await storage.local_path(render_str(ctx, self.from_, "from", required=True) or "")
        include = _choice(ctx, self.filterType, "filterType", ("INCLUDE", "EXCLUDE"))
        on_error = _choice(
            ctx, self.errorOrNullBehavior, "errorOrNullBehavior", ("FAIL", "INCLUDE", "EXCLUDE")
        )

        def keep(line: bytes, number: int) -> bool:
            try:
                rendered = _rendered(ctx, self.filterCondition, _item(line, number))
                failure = f"Expression `{self.filterCondition}` return `null` on item `{line!r}`"
            except ExpressionError as exc:
                rendered, failure = None, f"line {number}: {exc}"
            if rendered is None:
                if on_error == "FAIL":
                    raise TaskError(failure)
                return on_error == "INCLUDE"
            match = rendered.strip() not in _FALSY
            return match if include == "INCLUDE" else not match

        target = await asyncio.to_thread(_temp_path, ctx, ".ion")
        try:
            counts = await asyncio.to_thread(_filter, keep, source, target)
        except BaseException:
            await asyncio.to_thread(target.unlink, True)
            raise
        uri = await _store(ctx, storage, f"{ctx.task_id or 'filter'}.ion", target)
        return {"uri": uri, **counts}


def _choice(ctx: TaskContext, value: Any, name: str, allowed: tuple[str, ...]) -> str:
    text = (render_str(ctx, value, name) or allowed[0]).strip().upper()
    if text not in allowed:
        raise TaskError(f"property '{name}': {text!r} is not one of {', '.join(allowed)}")
    return text


def _filter(keep: Callable[[bytes, int], bool], source: Path, target: Path) -> dict[str, int]:
    processed = dropped = 0
    with source.open("rb") as stream, target.open("wb") as out:
        for number, line in enumerate(_lines(stream), 1):
            if keep(line, number):
                out.write(line + b"\n")
            else:
                dropped += 1
            processed += 1
    return {"processedItemsTotal": processed, "droppedItemsTotal": dropped}


class Reverse(_StorageTask):
    """Reverse the order of the lines of a file of internal storage."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_LEGACY}.Reverse",)
    short: ClassVar[str | None] = "storage_reverse"

    type: Literal["io.kestra.plugin.core.storage.Reverse"]
    from_: Str = _from()
    separator: Str | None = "\n"
    charset: Str | None = "UTF-8"

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        storage = self.storage(ctx)
        uri = render_str(ctx, self.from_, "from", required=True) or ""
        charset = render_str(ctx, self.charset, "charset") or "UTF-8"
        try:
            newline = "\n".encode(charset)
        except LookupError as exc:
            raise TaskError(f"property 'charset': unknown charset {charset!r}") from exc
        if newline != b"\n":
            raise TaskError(f"property 'charset': {charset} is not supported by Reverse")
        separator = (render_str(ctx, self.separator, "separator") or "").encode(charset)
        source = await storage.local_path(uri)
        extension = _extension(uri)
        target = await asyncio.to_thread(_temp_path, ctx, extension)
        try:
            await asyncio.to_thread(_reverse, source, target, separator)
        except BaseException:
            await asyncio.to_thread(target.unlink, True)
            raise
        return {"uri": await _store(ctx, storage, f"{ctx.task_id or 'reverse'}{extension}", target)}


def _reversed_lines(stream: IO[bytes], size: int) -> Iterator[bytes]:
    """The file's lines (ended by ``\\n``, ``\\r\\n`` or ``\\r``), last first, reading blocks
    from the end; a final line break does not make an empty last line."""
    position = size
    pending = b""
    first = True
    while position > 0:
        start = max(0, position - BLOCK_BYTES)
        stream.seek(start)
        chunk = stream.read(position - start)
        if start > 0 and chunk.startswith(b"\n"):
            stream.seek(start - 1)
            if stream.read(1) == b"\r":  # never cut a \r\n in two
                start -= 1
                chunk = b"\r" + chunk
        data = chunk + pending
        position = start
        if first:
            first = False
            data = _SEPARATOR_AT_END.sub(b"", data, count=1)
        parts = _SEPARATOR.split(data)
        pending = parts[0]
        yield from reversed(parts[1:])
    if size:
        yield pending


def _reverse(source: Path, target: Path, separator: bytes) -> None:
    size = source.stat().st_size
    with source.open("rb") as stream, target.open("wb") as out:
        if size == 0:
            return
        for line in _reversed_lines(stream, size):
            out.write(line + separator)


class LocalFiles(_StorageTask):
    """Deprecated: write files into the working directory and store others from it."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_LEGACY}.LocalFiles",)
    short: ClassVar[str | None] = "storage_local_files"

    type: Literal["io.kestra.plugin.core.storage.LocalFiles"]
    inputs: dict[str, Any] | Str | None = None
    outputs: list[Str] | Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        async with workspace(ctx) as root:
            await write_input_files(ctx.render(self.inputs), root, ctx)
            patterns = ctx.render(self.outputs)
            if isinstance(patterns, str) and patterns.startswith("["):
                patterns = orjson.loads(patterns)
            uris = await collect_output_files(patterns, root, ctx)
        return {"uris": uris}


class PurgeCurrentExecutionFiles(_StorageTask):
    """Delete every file of internal storage of the running execution."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_LEGACY}.PurgeCurrentExecutionFiles",)
    short: ClassVar[str | None] = "storage_purge_execution_files"

    type: Literal["io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles"]

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        uris = await self.storage(ctx).delete_execution_files()
        ctx.log("INFO", f"Deleted {len(uris)} file(s) of execution {ctx.execution_id}")
        return {"uris": uris}


PLUGINS = [
    Write,
    Concat,
    Split,
    Size,
    Delete,
    DeduplicateItems,
    FilterItems,
    Reverse,
    LocalFiles,
    PurgeCurrentExecutionFiles,
]
