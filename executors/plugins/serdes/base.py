"""What every serdes type shares: the files, the run in a thread, the common properties.

A conversion reads ``from`` (a ``kestra://`` URI of internal storage) and writes its result
next to the task run's other files. With Headwater's local storage the source is opened on
disk and the result written to a temporary file beside its final place, then renamed: rows
stream, memory holds one row whatever the size. With another storage the source is read in
one ``read`` and the result stored with one ``put``. The conversion runs in a worker thread
(the event loop stays free) and looks at the cancellation signal every
:data:`CANCEL_CHECK_EVERY` rows.
"""

from __future__ import annotations

import asyncio
import codecs
import io
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, timedelta, timezone, tzinfo
from pathlib import Path
from typing import IO, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from executors import ion
from executors.base import TaskContext, TaskError, TaskOutcome, error_message
from executors.plugin import TaskPlugin, render_str
from schemas.flow.common import Str

PKG = "io.kestra.plugin.serdes"
# Kestra's default is the server's zone; a Headwater worker's is UTC.
DEFAULT_TIME_ZONE = "UTC"
# Rows between two looks at the cancellation signal: cheap, and a kill lands in milliseconds.
CANCEL_CHECK_EVERY = 1000
ON_BAD_LINES = ("ERROR", "WARN", "SKIP")


class Files:
    """Opens the source and the results of one conversion (see the module docstring)."""

    def __init__(self, ctx: TaskContext) -> None:
        if ctx.storage is None:
            raise TaskError("internal storage is not available to this task")
        self.ctx = ctx
        self.storage: Any = ctx.storage
        # engine.stores.storage.TaskStorage: its LocalStorage gives paths (streaming).
        local = getattr(self.storage, "storage", None)
        self.local: Any = (
            local if hasattr(local, "path_of") and hasattr(self.storage, "location") else None
        )

    async def source(self, uri: str) -> IO[bytes]:
        if not uri.startswith("kestra://"):
            raise TaskError(f"'from' must be an internal storage URI (kestra:///...), got {uri!r}")
        try:
            if self.local is not None:
                stream: IO[bytes] = await asyncio.to_thread(open, self.local.path_of(uri), "rb")
                return stream
            return io.BytesIO(await self.storage.read(uri))
        except FileNotFoundError:
            raise TaskError(f"internal storage file {uri} does not exist") from None
        except TaskError:
            raise
        except Exception as exc:
            raise TaskError(error_message(exc)) from exc

    def target(self, name: str) -> Target:
        if self.local is not None:
            uri: str = self.local.uri(self.storage.location, name)
            final = Path(self.local.path_of(uri))
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
            return Target(open(tmp, "wb"), tmp, name, uri)
        handle = tempfile.NamedTemporaryFile(
            prefix="serdes-", dir=self.ctx.working_dir, delete=False
        )
        return Target(handle, Path(handle.name), name, None)

    async def publish(self, target: Target) -> str:
        target.stream.close()
        if target.uri is not None:
            os.replace(target.tmp, Path(self.local.path_of(target.uri)))
            return target.uri
        try:
            data = await asyncio.to_thread(target.tmp.read_bytes)
            uri: str = await self.storage.put(self.ctx.execution_id, target.name, data)
            return uri
        finally:
            target.tmp.unlink(missing_ok=True)


@dataclass(slots=True)
class Target:
    """One result file being written: ``stream`` until :meth:`Files.publish` stores it."""

    stream: IO[bytes]
    tmp: Path
    name: str
    uri: str | None

    def discard(self) -> None:
        self.stream.close()
        self.tmp.unlink(missing_ok=True)


@dataclass(slots=True)
class Run:
    """What a conversion thread may use: the stop signal, warnings for the task's log."""

    stop: threading.Event | asyncio.Event
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def check(self, index: int) -> None:
        if index % CANCEL_CHECK_EVERY == 0 and self.stop.is_set():
            raise Cancelled("the task was killed")


class Cancelled(TaskError):
    """The conversion stopped because the task was killed."""


class Conversion(TaskPlugin):
    """One source file in, one result file out (``uri``, ``size``, metric ``records``)."""

    family: ClassVar[str] = "serdes"

    from_: Str = Field(alias="from")

    def prepare(self, ctx: TaskContext) -> None:
        """Render the properties (on the event loop, before the conversion thread starts)."""

    def result_name(self) -> str:
        return "result.ion"

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        """Convert; returns the number of records (Kestra's ``size``)."""
        raise NotImplementedError

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        uri = render_str(ctx, self.from_, "from", required=True)
        assert uri is not None
        self.prepare(ctx)
        files = Files(ctx)
        source = await files.source(uri)
        return await convert_in_thread(
            ctx,
            files,
            files.target(self.result_name()),
            lambda target, run: self.convert(source, target, run),
            [source],
        )


async def convert_in_thread(
    ctx: TaskContext,
    files: Files,
    target: Target,
    convert: Callable[[IO[bytes], Run], int],
    sources: list[IO[bytes]],
) -> TaskOutcome:
    """``convert(target stream, run)`` in a worker thread, then ``sources`` closed and the
    run's warnings logged: the stored result (``uri``, ``size``, metric ``records``), or
    KILLED when the task was killed (the result discarded, as on a failure)."""
    run = Run(ctx.cancelled)
    try:
        count = await asyncio.to_thread(convert, target.stream, run)
    except Cancelled:
        target.discard()
        return TaskOutcome(state="KILLED")
    except BaseException:
        target.discard()
        raise
    finally:
        for source in sources:
            source.close()
        for line in run.warnings:
            ctx.log("WARN", line)
    out = await files.publish(target)
    return TaskOutcome(
        state="SUCCESS", outputs={"uri": out, "size": count}, metrics={"records": count}
    )


# ------------------------------------------------------------------------ property helpers


def char(ctx: TaskContext, value: Any, name: str) -> str:
    """A one-character property (Kestra's ``Property<Character>``)."""
    text = render_str(ctx, value, name, required=True)
    assert text is not None
    if len(text) != 1:
        raise TaskError(f"property '{name}' must be one character, got {text!r}")
    return text


def charset(ctx: TaskContext, value: Any) -> str:
    """A charset name (Java's names: UTF-8, ISO-8859-1, windows-1252...) as Python's codec."""
    name = render_str(ctx, value, "charset") or "UTF-8"
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise TaskError(f"property 'charset': unsupported charset {name!r}") from None


_OFFSET = re.compile(r"(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?")


def zone(ctx: TaskContext, value: Any, name: str = "timeZoneId") -> tzinfo:
    """Java's ``ZoneId.of``: a region (``Europe/Paris``, ``UTC``) or an offset (``+02:00``)."""
    text = render_str(ctx, value, name) or DEFAULT_TIME_ZONE
    return parse_zone(text, name)


def parse_zone(text: str, name: str = "timeZoneId") -> tzinfo:
    if text == "Z":
        return UTC
    match = _OFFSET.fullmatch(text)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        delta = timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0))
        return timezone(sign * delta) if delta else UTC
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise TaskError(f"property '{name}': unknown time zone {text!r}") from None


# ------------------------------------------------------------------------------ file helpers


def ion_rows(
    source: IO[bytes], run: Run, annotations: ion.AnnotationMode = "java"
) -> Generator[Any, None, None]:
    """The rows of an ION source; a malformed file fails naming the line and column."""
    try:
        for index, row in enumerate(ion.iter_values(source, annotations=annotations)):
            run.check(index)
            yield row
    except ion.IonError as exc:
        raise TaskError(f"the source is not a valid ION file: {exc}") from None


def decode_error(exc: UnicodeDecodeError, encoding: str) -> TaskError:
    return TaskError(f"the file is not valid {encoding} text ({exc.reason})")


def encode_error(exc: UnicodeEncodeError, record: int, encoding: str) -> TaskError:
    return TaskError(f"record {record}: a value cannot be written in {encoding}: {exc.reason}")


@contextmanager
def reading(source: IO[bytes], encoding: str) -> Iterator[io.TextIOWrapper]:
    """Decoded text over a binary source, detached (not closed) after; bytes that are not
    ``encoding`` fail the task (:func:`decode_error`)."""
    stream: Any = source
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        yield text
    except UnicodeDecodeError as exc:
        raise decode_error(exc, encoding) from None
    finally:
        text.detach()


@contextmanager
def writing(target: IO[bytes], encoding: str) -> Iterator[io.TextIOWrapper]:
    """Encoded text over a binary target, flushed and detached (not closed) after."""
    stream: Any = target
    out = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        yield out
    finally:
        out.flush()
        out.detach()


def write_rows(target: IO[bytes], rows: Iterator[Any], run: Run) -> int:
    """Rows written as ION (null rows skipped, as Kestra's FileSerde); the count written."""
    writer = ion.IonWriter(target)
    for index, row in enumerate(rows):
        run.check(index)
        try:
            writer.write(row)
        except TypeError as exc:
            raise TaskError(f"record {index + 1}: {exc}") from None
    return writer.count


Warn = Callable[[str], None]
