"""Rows in and rows out: Kestra's ``Data.from`` and the ION files that consuming tasks write.

``from`` (Kestra's ``io.kestra.core.models.property.Data``) is, after rendering:

- a map: one row;
- a list: one row per item;
- a string that is an internal storage URI (``kestra://...``): one row per value of that ION
  file, streamed (Kestra also reads ``file://`` and ``nsfile://``; a worker's own files and
  namespace files are not reachable here, so those fail naming the property);
- any other string: JSON text of one row or of a list of rows. Kestra fails on a string that is
  not JSON; tasks that publish bare values pass ``lenient=True`` and get the text as one row.

Rows read from a file are data: they are not rendered again (Kestra renders every row of a
Produce, file rows included; an expression inside a consumed message must not run here).

:class:`IonSink` is the other direction: rows written with :class:`executors.ion.IonWriter`
into a temporary file of the task's working directory, then moved into internal storage,
as Kestra's consuming tasks do (``FileSerde.write`` to a temp file, ``storage().putFile``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from executors.base import TaskContext, TaskError
from executors.ion import IonError, IonWriter, iter_values

STORAGE_SCHEME = "kestra://"
_OTHER_SCHEMES = ("file://", "nsfile://")


@dataclass(slots=True)
class Rows:
    """The rows of a ``from`` property: in memory, or streamed from a stored ION file."""

    items: list[Any] = field(default_factory=list)
    path: Path | None = None
    uri: str | None = None

    def __iter__(self) -> Iterator[Any]:
        """Every row; for a file, read one value at a time (call it off the event loop)."""
        if self.path is None:
            yield from self.items
            return
        try:
            with self.path.open("rb") as stream:
                yield from iter_values(stream)
        except IonError as exc:
            raise TaskError(
                f"property 'from': {self.uri} is not a readable ION file: {exc}"
            ) from None
        except OSError as exc:
            raise TaskError(f"property 'from': cannot read {self.uri}: {exc}") from None

    def as_list(self) -> list[Any]:
        """Every row in memory (for small inputs, or a file read in a thread)."""
        return list(self)


async def read_from(
    ctx: TaskContext, value: Any, name: str = "from", *, lenient: bool = False
) -> Rows:
    """The rows of ``value`` (see the module docstring), rendered; TaskError names ``name``."""
    if value is None:
        raise TaskError(f"property '{name}' is required")
    rendered = ctx.render(value)
    if isinstance(rendered, Mapping):
        return Rows([dict(rendered)])
    if isinstance(rendered, (list, tuple)):
        return Rows(list(rendered))
    if not isinstance(rendered, str):
        return Rows([rendered])
    text = rendered.strip()
    if text.startswith(STORAGE_SCHEME):
        if ctx.storage is None:
            raise TaskError(
                f"property '{name}': {text} needs internal storage; this worker has none"
            )
        try:
            path = await ctx.storage.local_path(text)
        except Exception as exc:  # the storage's own error names the URI
            raise TaskError(f"property '{name}': {exc}") from None
        return Rows(path=path, uri=text)
    if text.startswith(_OTHER_SCHEMES):
        raise TaskError(
            f"property '{name}': {text.split('://')[0]}:// files are not readable by this worker; "
            "give a kestra:// internal storage URI, a map or a list"
        )
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if lenient:
            return Rows([rendered])
        raise TaskError(
            f"property '{name}': expected a map, a list, a kestra:// URI or JSON text, "
            f"got {_clip(rendered)!r} ({exc})"
        ) from None
    return Rows(parsed if isinstance(parsed, list) else [parsed])


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class IonSink:
    """An ION file being written in the task's working directory, then stored.

    ``write`` is synchronous and buffered (a row is a few hundred bytes): call it from the
    thread that receives messages, or from the event loop. ``store`` closes the file and moves
    it into internal storage, returning its URI; ``discard`` removes it (always safe).
    """

    def __init__(self, stream: IO[bytes], path: Path) -> None:
        self.path = path
        self._stream = stream
        self._writer = IonWriter(stream)

    @classmethod
    async def create(cls, ctx: TaskContext, suffix: str = ".ion") -> IonSink:
        directory = ctx.working_dir or tempfile.gettempdir()

        def make() -> IonSink:
            fd, name = tempfile.mkstemp(suffix=suffix, dir=directory)
            return cls(os.fdopen(fd, "wb"), Path(name))

        return await asyncio.to_thread(make)

    @property
    def count(self) -> int:
        return self._writer.count

    def write(self, row: Any) -> None:
        self._writer.write(row)

    async def store(self, ctx: TaskContext, name: str) -> str:
        """Close the file and move it into internal storage as ``name``; its URI."""
        if ctx.storage is None:
            raise TaskError("this worker has no internal storage to write the messages to")
        await asyncio.to_thread(self._stream.close)
        return await ctx.storage.put_file(name, self.path, move=True)

    async def discard(self) -> None:
        def remove() -> None:
            self._stream.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

        await asyncio.to_thread(remove)
