"""Kestra's core ``namespace`` tasks: namespace files in and out (:mod:`engine.stores.nsfiles`).

From Kestra 1.x's classes:

- ``UploadFiles``: ``namespace`` (the flow's), ``files`` (patterns of files of the working
  directory, relative to it: ``dbt/*.sql``, or ``glob:**/dbt/**`` / ``regex:...`` as Kestra
  writes them), ``filesMap`` (target path -> ``kestra://`` URI, a map or a JSON text of one),
  ``destination`` (``/``; the folder the files go to, a leading ``/`` added), ``conflict``
  (OVERWRITE | ERROR | SKIP). One of ``files``/``filesMap`` is required. A ``filesMap`` URI
  whose file does not exist is skipped (logged at WARN; Kestra skips it silently). No outputs.
  ``filesMap`` keys are joined to ``destination`` with a ``/`` (Kestra concatenates them).
- ``DownloadFiles``: ``namespace`` (required), ``files`` (a pattern or a list of them, see
  :mod:`engine.stores.nsfiles`), ``destination`` (``""``, a prefix of the stored names);
  output ``files`` (namespace path -> internal storage URI, the folders kept in the URI),
  metric ``downloaded``.
- ``DeleteFiles``: ``namespace`` (required), ``files`` (a pattern or a list),
  ``deleteParentFolder`` (false: with true, the folders the deletions leave empty go too,
  deepest first). No outputs; metric ``deleted``.

``namespace.PurgeFiles`` (which purges old *versions*) is not provided: Headwater keeps one
version of each namespace file.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import orjson

from engine.stores.nsfiles import glob_regex
from executors.base import NamespaceFileStore, TaskContext, TaskError, TaskOutcome, to_text
from executors.plugin import TaskPlugin, render_bool, render_str
from schemas.flow.common import BoolOrExpr, Str, enum_check, enum_schema

_CONFLICTS = ("OVERWRITE", "ERROR", "SKIP")
ConflictProperty = Annotated[str, enum_check(*_CONFLICTS), enum_schema(*_CONFLICTS)]


class _NamespaceTask(TaskPlugin):
    family: ClassVar[str] = "core"

    def store(self, ctx: TaskContext) -> NamespaceFileStore:
        if ctx.namespace_files is None:
            raise TaskError(f"{self.type_name()} needs namespace files, and this worker has none")
        return ctx.namespace_files


def _target_namespace(ctx: TaskContext, value: Any, *, default: bool) -> str:
    namespace = render_str(ctx, value, "namespace")
    if not namespace and default:
        namespace = ctx.namespace
    if not namespace:
        raise TaskError("property 'namespace' is required")
    return namespace


def _patterns(ctx: TaskContext, value: Any, name: str) -> list[str]:
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        if rendered.strip().startswith("["):
            try:
                rendered = orjson.loads(rendered)
            except orjson.JSONDecodeError:
                rendered = [rendered]
        else:
            rendered = [rendered]
    if not isinstance(rendered, list) or not rendered:
        raise TaskError(f"property '{name}' must be a pattern or a list of patterns")
    return [to_text(p) for p in rendered]


def _working_dir_files(root: Path, patterns: list[str]) -> list[tuple[Path, str]]:
    """Files of the working directory matching Kestra's patterns: (file, "/relative/path")."""
    regexes: list[re.Pattern[str]] = []
    for pattern in patterns:
        if pattern.startswith(("glob:", "regex:")):
            regexes.append(glob_regex(pattern))
        else:  # relative to the working directory, as Kestra's basePath chroot
            regexes.append(glob_regex("glob:/" + pattern.lstrip("/")))
    found: list[tuple[Path, str]] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        relative = "/" + path.relative_to(root).as_posix()
        if any(r.fullmatch(relative) for r in regexes):
            found.append((path, relative))
    return found


def _join(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name.lstrip("/")


class UploadFiles(_NamespaceTask):
    """Upload files of the working directory or of internal storage into a namespace."""

    short: ClassVar[str | None] = "namespace_upload_files"

    type: Literal["io.kestra.plugin.core.namespace.UploadFiles"]
    namespace: Str | None = None
    files: list[Str] | Str | None = None
    filesMap: dict[str, Any] | Str | None = None
    destination: Str | None = "/"
    conflict: ConflictProperty | None = "OVERWRITE"

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        store = self.store(ctx)
        namespace = _target_namespace(ctx, self.namespace, default=True)
        destination = render_str(ctx, self.destination, "destination") or "/"
        if not destination.startswith("/"):
            destination = "/" + destination
        conflict = (render_str(ctx, self.conflict, "conflict") or "OVERWRITE").upper()
        if conflict not in _CONFLICTS:
            raise TaskError(f"property 'conflict': {conflict!r} is not one of {_CONFLICTS}")
        if self.files is None and self.filesMap is None:
            raise TaskError("files or filesMap is required")
        uploaded = 0
        if self.files is not None:
            patterns = _patterns(ctx, self.files, "files")
            if ctx.working_dir is None:
                raise TaskError("property 'files': this task has no working directory")
            root = Path(ctx.working_dir)
            for path, relative in await asyncio.to_thread(_working_dir_files, root, patterns):
                target = _join(destination, relative)
                if await store.put(namespace, target, path, conflict) is not None:
                    uploaded += 1
                    ctx.log("DEBUG", f"Uploaded {target} to namespace {namespace}")
        if self.filesMap is not None:
            mapping = ctx.render(self.filesMap)
            if isinstance(mapping, str):
                try:
                    mapping = orjson.loads(mapping)
                except orjson.JSONDecodeError as exc:
                    raise TaskError("filesMap must be a Map<String, String>") from exc
            if not isinstance(mapping, dict):
                raise TaskError("filesMap must be a Map<String, String>")
            for name, uri in mapping.items():
                if not isinstance(uri, str):
                    raise TaskError("filesMap must be a Map<String, String>")
                if ctx.storage is None:
                    raise TaskError("filesMap needs internal storage, and this worker has none")
                try:
                    source = await ctx.storage.local_path(uri)
                except Exception as exc:  # a missing file is skipped, as in Kestra
                    ctx.log("WARN", f"filesMap.{name}: {exc}; not uploaded")
                    continue
                target = _join(destination, str(name))
                if await store.put(namespace, target, source, conflict) is not None:
                    uploaded += 1
                    ctx.log("DEBUG", f"Uploaded {target} to namespace {namespace}")
        ctx.log("INFO", f"Uploaded {uploaded} file(s) to namespace {namespace}")
        return {}


class DownloadFiles(_NamespaceTask):
    """Copy namespace files into internal storage."""

    short: ClassVar[str | None] = "namespace_download_files"

    type: Literal["io.kestra.plugin.core.namespace.DownloadFiles"]
    namespace: Str
    files: list[Str] | Str
    destination: Str | None = ""

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        store = self.store(ctx)
        if ctx.storage is None:
            raise TaskError("namespace.DownloadFiles needs internal storage, and has none")
        namespace = _target_namespace(ctx, self.namespace, default=False)
        destination = render_str(ctx, self.destination, "destination") or ""
        downloaded: dict[str, str] = {}
        for entry in await store.find(namespace, _patterns(ctx, self.files, "files")):
            name = destination + entry.path
            downloaded[entry.path] = await ctx.storage.put_file(name, entry.local)
            ctx.log("DEBUG", f"Downloaded {downloaded[entry.path]}")
        return TaskOutcome(
            state="SUCCESS", outputs={"files": downloaded}, metrics={"downloaded": len(downloaded)}
        )


class DeleteFiles(_NamespaceTask):
    """Delete namespace files matching patterns."""

    short: ClassVar[str | None] = "namespace_delete_files"

    type: Literal["io.kestra.plugin.core.namespace.DeleteFiles"]
    namespace: Str
    files: list[Str] | Str
    deleteParentFolder: BoolOrExpr | None = False

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        store = self.store(ctx)
        namespace = _target_namespace(ctx, self.namespace, default=False)
        delete_parents = render_bool(ctx, self.deleteParentFolder, "deleteParentFolder")
        folders: set[str] = set()
        count = 0
        for entry in await store.find(namespace, _patterns(ctx, self.files, "files")):
            if await store.delete(namespace, entry.path):
                count += 1
                ctx.log("DEBUG", f"Deleted {entry.path}")
                parent = entry.path.rsplit("/", 1)[0]
                while delete_parents and parent:
                    folders.add(parent)
                    parent = parent.rsplit("/", 1)[0]
        for folder in sorted(folders, key=lambda f: -f.count("/")):
            if await store.remove_empty_folder(namespace, folder):
                ctx.log("DEBUG", f"Deleted empty folder: {folder}")
        return TaskOutcome(state="SUCCESS", metrics={"deleted": count})


PLUGINS = [UploadFiles, DownloadFiles, DeleteFiles]
