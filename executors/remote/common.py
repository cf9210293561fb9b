"""What every protocol of the family shares: the ``from`` property, regexes, staging files."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from executors.base import TaskContext, TaskError, iso_millis
from executors.plugin import render_int, render_str


def storage_of(ctx: TaskContext) -> Any:
    if ctx.storage is None:
        raise TaskError("internal storage is not available to this task")
    return ctx.storage


def compile_regex(value: str | None, name: str) -> re.Pattern[str] | None:
    """A Java regex property (matched against the whole text, as ``String.matches``)."""
    if not value:
        return None
    try:
        return re.compile(value)
    except re.error as exc:
        raise TaskError(f"property '{name}': invalid regular expression {value!r}: {exc}") from exc


def matches(pattern: re.Pattern[str] | None, text: str) -> bool:
    return pattern is None or pattern.fullmatch(text) is not None


def render_choice(ctx: TaskContext, value: Any, name: str, choices: tuple[str, ...]) -> str | None:
    text = render_str(ctx, value, name)
    if text is None or text == "":
        return None
    upper = text.strip().upper()
    if upper not in choices:
        raise TaskError(f"property '{name}': {text!r} is not one of {', '.join(choices)}")
    return upper


def render_max(ctx: TaskContext, value: Any, name: str, default: int) -> int:
    number = render_int(ctx, value, name, default)
    if number is None or number < 0:
        raise TaskError(f"property '{name}': expected a positive integer, got {number!r}")
    return number


def file_name(path: str) -> str:
    """The last segment of a path or URI (Apache's ``FilenameUtils.getName``)."""
    return PurePosixPath(path.rstrip("/").split("?", 1)[0]).name if path.rstrip("/") else ""


def parse_from(ctx: TaskContext, value: Any, name: str = "from") -> list[tuple[str | None, str]]:
    """Kestra's ``Data.From`` for files: ``[(destination name or None, kestra:// URI)]``.

    A URI string, a list of URIs, a map of name -> URI, or the JSON text of a list or a map
    (an expression rendering to either).
    """
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        text = rendered.strip()
        if text.startswith(("[", "{")):
            try:
                rendered = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise TaskError(f"property '{name}': invalid JSON: {exc}") from exc
        else:
            rendered = text
    if isinstance(rendered, str):
        entries: list[tuple[str | None, str]] = [(None, rendered)]
    elif isinstance(rendered, list):
        entries = [(None, str(item).strip()) for item in rendered]
    elif isinstance(rendered, Mapping):
        entries = [(str(k), str(v).strip()) for k, v in rendered.items()]
    else:
        raise TaskError(f"property '{name}': expected a URI, a list or a map, got {rendered!r}")
    for _, uri in entries:
        if not uri.startswith("kestra://"):
            raise TaskError(
                f"property '{name}': {uri!r} is not an internal storage URI (kestra:///...)"
            )
    return entries


async def source_path(ctx: TaskContext, uri: str) -> Path:
    """The local file to stream an internal storage file from."""
    try:
        path: Path = await storage_of(ctx).local_path(uri)
    except TaskError:
        raise
    except Exception as exc:
        raise TaskError(f"cannot read {uri}: {exc}") from exc
    return path


def scratch_dir(ctx: TaskContext) -> Path:
    base = Path(ctx.working_dir) if ctx.working_dir else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    return base


@contextlib.asynccontextmanager
async def staged(ctx: TaskContext, name: str) -> AsyncIterator[Path]:
    """A fresh local file path to download into; removed afterwards unless moved to storage."""
    suffix = "".join(PurePosixPath(name).suffixes[-1:])
    path = scratch_dir(ctx) / f".hw-download-{uuid.uuid4().hex}{suffix}"
    try:
        yield path
    finally:
        await asyncio.to_thread(_unlink, path)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


async def store(ctx: TaskContext, path: Path, name: str) -> str:
    """Move the downloaded ``path`` into internal storage as ``name``; its ``kestra://`` URI."""
    uri: str = await storage_of(ctx).put_file(file_name(name) or "file", path, move=True)
    return uri


def iso(moment: datetime | None) -> str | None:
    """An instant as Kestra prints ``java.time.Instant`` in outputs."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso_millis(moment)


def drop_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Kestra serializes outputs without null fields."""
    return {k: v for k, v in mapping.items() if v is not None}
