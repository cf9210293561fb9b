"""Kestra's ``namespaceFiles``: namespace files copied into a task's working directory.

Every script and CLI task (:func:`executors.shell.run_script`) and the deprecated ``git.Push``
take it. What Kestra does (core ``NamespaceFiles`` and ``NamespaceFilesUtils``):

- ``enabled`` (true: giving the map is enough, ``namespaceFiles: {}`` loads every file; false
  loads nothing), ``include`` (file patterns; every file when empty), ``exclude`` (patterns),
  ``namespaces`` (``["{{ flow.namespace }}"]``; other namespaces may be named too, read in that
  order), ``ifExists`` (``OVERWRITE`` | ``FAIL`` | ``WARN`` | ``IGNORE``: what to do with a file
  already in the working directory), ``folderPerNamespace`` (false: ``<path>``; true:
  ``<namespace>/<path>``). Patterns are those of :mod:`engine.stores.nsfiles` (``*.py``
  matches at any depth, ``scripts/*.sql``, ``glob:``/``regex:``), against ``/path/of/file``.
- Files are loaded before the task's ``inputFiles`` (which may overwrite them). Metrics
  ``namespacefiles.count`` and ``namespacefiles.duration`` (seconds here; Kestra's timer), and
  "Loaded N namespace files from 'a, b' in HH:mm:ss.SSS".

Differences: files load one after the other, so with ``OVERWRITE`` a later namespace's file
always wins (Kestra loads them in parallel and documents the same rule); ``ifExists: FAIL``
fails the task naming the file. Every namespace is readable (Kestra's enterprise edition can
restrict which namespaces a flow may read).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from engine.stores.nsfiles import matches
from engine.stores.storage import StorageError
from executors.base import TaskContext, TaskError, as_bool, to_text

IF_EXISTS = ("OVERWRITE", "FAIL", "WARN", "IGNORE")
SPEC_KEYS = ("enabled", "include", "exclude", "namespaces", "ifExists", "folderPerNamespace")


def _list(ctx: TaskContext, value: Any, name: str) -> list[str]:
    rendered = ctx.render(value)
    if rendered is None:
        return []
    if isinstance(rendered, str):
        text = rendered.strip()
        if text.startswith("["):
            try:
                rendered = orjson.loads(text)
            except orjson.JSONDecodeError:
                rendered = [rendered]
        else:
            rendered = [rendered]
    if not isinstance(rendered, list):
        raise TaskError(f"namespaceFiles.{name}: expected a list, got {rendered!r}")
    return [to_text(v) for v in rendered if v is not None]


def enabled(spec: Any, ctx: TaskContext) -> bool:
    """Whether ``spec`` (a task's raw ``namespaceFiles``) asks for files; checks its shape."""
    if spec is None:
        return False
    if not isinstance(spec, Mapping):
        raise TaskError(
            "property 'namespaceFiles' must be a map (enabled, include, exclude, namespaces,"
            " ifExists, folderPerNamespace)"
        )
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise TaskError(
            f"namespaceFiles: unknown propert{'ies' if len(unknown) > 1 else 'y'}"
            f" {', '.join(unknown)} (expected {', '.join(SPEC_KEYS)})"
        )
    try:
        return as_bool(ctx.render(spec.get("enabled", True)))
    except TaskError as exc:
        raise TaskError(f"namespaceFiles.enabled: {exc}") from exc


async def load(spec: Any, ctx: TaskContext, root: Path) -> dict[str, float]:
    """Copy the files ``spec`` selects into ``root``; the metrics ({} when it is off)."""
    if not enabled(spec, ctx):
        return {}
    store = ctx.namespace_files
    if store is None:
        raise TaskError("namespaceFiles: this worker has no namespace files")
    started = time.monotonic()
    include = _list(ctx, spec.get("include"), "include")
    exclude = _list(ctx, spec.get("exclude"), "exclude")
    namespaces = _list(ctx, spec.get("namespaces"), "namespaces")
    if not namespaces:
        if not ctx.namespace:
            raise TaskError("namespaceFiles: no namespace to read (set namespaces)")
        namespaces = [ctx.namespace]
    if_exists = (to_text(ctx.render(spec.get("ifExists"))) or "OVERWRITE").strip().upper()
    if if_exists not in IF_EXISTS:
        raise TaskError(f"namespaceFiles.ifExists: {if_exists!r} is not one of {IF_EXISTS}")
    try:
        per_namespace = as_bool(ctx.render(spec.get("folderPerNamespace", False)))
    except TaskError as exc:
        raise TaskError(f"namespaceFiles.folderPerNamespace: {exc}") from exc
    try:
        excluded = matches(exclude)
        selected: list[tuple[str, Any]] = []
        for namespace in namespaces:
            found = await store.find(namespace, include or ["glob:**"])
            selected.extend(
                (namespace, e) for e in found if not any(r.fullmatch(e.path) for r in excluded)
            )
    except StorageError as exc:
        raise TaskError(f"namespaceFiles: {exc}") from exc
    for namespace, entry in selected:
        relative = entry.path.strip("/")
        target = root.joinpath(*([namespace] if per_namespace else []), *relative.split("/"))
        if await asyncio.to_thread(target.exists):
            if if_exists == "FAIL":
                raise TaskError(
                    f"namespaceFiles: {target.relative_to(root)} already exists in the working"
                    " directory (ifExists: FAIL)"
                )
            if if_exists == "WARN":
                ctx.log("WARN", f"File '{target.relative_to(root)}' already exists, skipped")
                continue
            if if_exists == "IGNORE":
                continue
        await asyncio.to_thread(_copy, entry.local, target)
    elapsed = time.monotonic() - started
    ctx.log(
        "INFO",
        f"Loaded {len(selected)} namespace files from '{', '.join(namespaces)}' in {_hms(elapsed)}",
    )
    return {"namespacefiles.count": len(selected), "namespacefiles.duration": elapsed}


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _hms(seconds: float) -> str:
    """Commons-lang's ``formatDurationHMS``: ``HH:mm:ss.SSS``."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"
