"""Namespace files: the files a namespace keeps for its flows (scripts, SQL, configuration).

Kestra keeps them in internal storage under the namespace, and so do we, in the same layout::

    kestra:///<namespace as path>/_files/<path>

A namespace file's *path* is logical and absolute (``/scripts/etl.py``); folders exist as
folders. Paths are checked like storage URIs are: every part must be a plain name (no ``..``,
no NUL, no backslash), and the resolved file must stay inside the namespace's ``_files``
folder, so a path taken from a flow or an API call cannot reach another file.

Who uses it: the ``namespace.*`` tasks (:mod:`executors.plugins.core_namespace`), the
``read()`` expression function (a path that is not a ``kestra://`` URI, or ``nsfile://``), and
the API (``/api/v1/namespaces/{namespace}/files``). Differences from Kestra: one version of
each file is kept (Kestra 1.x keeps revisions: ``read(path, version=N)`` and
``namespace.PurgeFiles`` have nothing to work on), and writes go straight to the storage
folder (no metadata repository, so a listing is a directory listing).

Kestra's file patterns (``PathMatcherPredicate``) select files in tasks: a ``glob:`` or
``regex:`` prefix is used as is; any other pattern is a glob, with ``**/`` put in front when it
starts with a word character (``scripts/*.py`` matches ``/scripts/a.py`` and
``/x/scripts/a.py``). Globs are Java's: ``*`` and ``?`` stay inside one folder, ``**`` crosses
folders, ``{a,b}`` and ``[abc]`` work; a pattern must match the whole path (``/a/b.sql``).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from engine.errors import NotFoundError
from engine.stores.storage import MAX_READ_BYTES, SCHEME, LocalStorage, StorageError

FILES_FOLDER = "_files"
Conflict = Literal["OVERWRITE", "ERROR", "SKIP"]
# One part of a namespace (company.team -> company, team).
_NAMESPACE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


class NamespaceFileNotFound(StorageError, NotFoundError):
    """The namespace file or folder does not exist."""


@dataclass(frozen=True, slots=True)
class NamespaceFile:
    """One file or folder of a namespace."""

    namespace: str
    path: str  # logical, absolute: /scripts/etl.py
    local: Path
    is_dir: bool
    size: int
    modified: float

    @property
    def uri(self) -> str:
        parts = [*self.namespace.split("."), FILES_FOLDER, *self.path.strip("/").split("/")]
        return SCHEME + "/" + "/".join(p for p in parts if p) + ("/" if self.is_dir else "")


def normalize(path: str) -> str:
    """The logical path of ``path`` (``a/b`` -> ``/a/b``); StorageError for unsafe parts."""
    text = str(path).replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    for part in parts:
        if part == ".." or "\x00" in part or len(part) > 255:
            raise StorageError(
                f"invalid namespace file path {path!r}: no '..', NUL or parts over 255 characters"
            )
    return "/" + "/".join(parts)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Kestra's file pattern (see the module docstring) as a compiled regex."""
    if pattern.startswith("regex:"):
        return re.compile(pattern[len("regex:") :])
    if pattern.startswith("glob:"):
        glob = pattern[len("glob:") :]
    else:
        glob = "**/" + pattern if re.match(r"\w", pattern) else pattern
    out: list[str] = []
    i = 0
    depth = 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            if glob.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "{":
            depth += 1
            out.append("(?:")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        elif char == "," and depth:
            out.append("|")
        elif char == "[":
            end = glob.find("]", i + 1)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = glob[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif char == "\\" and i + 1 < len(glob):
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))


def matches(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    try:
        return [glob_regex(p) for p in patterns]
    except re.error as exc:
        raise StorageError(f"invalid file pattern: {exc}") from exc


class NamespaceFiles:
    """The namespace files of one internal storage (its root holds every namespace)."""

    def __init__(self, storage: LocalStorage) -> None:
        self.storage = storage

    # ----------------------------------------------------------------------- paths

    def folder(self, namespace: str) -> Path:
        parts = namespace.split(".")
        if not namespace or not all(_NAMESPACE_PART.match(p) for p in parts):
            raise StorageError(f"invalid namespace {namespace!r}")
        return self.storage.root.joinpath(*parts, FILES_FOLDER)

    def local(self, namespace: str, path: str) -> tuple[Path, str]:
        """(file on disk, logical path); StorageError if the path would leave the folder."""
        logical = normalize(path)
        root = self.folder(namespace)
        target = root.joinpath(*logical.strip("/").split("/")) if logical != "/" else root
        resolved = target.resolve()
        if not resolved.is_relative_to(root.resolve()) and resolved != root.resolve():
            raise StorageError(f"namespace file path {path!r} points outside the namespace")
        return target, logical

    def _entry(self, namespace: str, target: Path, logical: str) -> NamespaceFile:
        info = target.stat()
        is_dir = target.is_dir()
        size = 0 if is_dir else info.st_size
        return NamespaceFile(namespace, logical, target, is_dir, size, info.st_mtime)

    def missing(self, namespace: str, path: str) -> NamespaceFileNotFound:
        return NamespaceFileNotFound(
            f"namespace file '{path}' does not exist in namespace '{namespace}'"
        )

    # --------------------------------------------------------------------- reading

    def stat_sync(self, namespace: str, path: str) -> NamespaceFile:
        target, logical = self.local(namespace, path)
        if not target.exists():
            raise self.missing(namespace, logical)
        return self._entry(namespace, target, logical)

    def read_sync(self, namespace: str, path: str, max_bytes: int = MAX_READ_BYTES) -> bytes:
        entry = self.stat_sync(namespace, path)
        if entry.is_dir:
            raise StorageError(f"namespace file '{entry.path}' of '{namespace}' is a folder")
        if entry.size > max_bytes:
            raise StorageError(
                f"namespace file '{entry.path}' of '{namespace}' has {entry.size} bytes, more "
                f"than the {max_bytes} that can be read at once"
            )
        return entry.local.read_bytes()

    def read_text(self, namespace: str, path: str) -> str:
        """The expression hook of ``read(path)``: the file as UTF-8 text."""
        return self.read_sync(namespace, path).decode("utf-8", "replace")

    def children_sync(self, namespace: str, path: str = "/") -> list[NamespaceFile]:
        """The files and folders directly in the folder ``path``, sorted by name."""
        target, logical = self.local(namespace, path)
        if not target.is_dir():
            if logical == "/":
                return []
            raise NamespaceFileNotFound(
                f"folder '{logical}' does not exist in namespace '{namespace}'"
            )
        base = "" if logical == "/" else logical
        return [
            self._entry(namespace, child, f"{base}/{child.name}")
            for child in sorted(target.iterdir(), key=lambda p: p.name)
            if not child.name.startswith(".hw-")
        ]

    def all_files_sync(self, namespace: str) -> list[NamespaceFile]:
        """Every file of the namespace (no folders), sorted by path."""
        return [entry for entry in self.all_sync(namespace) if not entry.is_dir]

    def all_sync(self, namespace: str) -> list[NamespaceFile]:
        """Every file and folder of the namespace, sorted by path (Kestra's ``all()``)."""
        root = self.folder(namespace)
        if not root.is_dir():
            return []
        return [
            self._entry(namespace, p, "/" + p.relative_to(root).as_posix())
            for p in sorted(root.rglob("*"))
            if not p.name.startswith(".hw-")
        ]

    def namespaces_sync(self) -> list[str]:
        """Every namespace that has a files folder, sorted."""
        found: list[str] = []
        root = self.storage.root
        for top, dirs, _ in os.walk(root):
            parts = Path(top).relative_to(root).parts
            if FILES_FOLDER in dirs and parts and all(_NAMESPACE_PART.match(p) for p in parts):
                found.append(".".join(parts))
            # Namespace folders also hold flows' execution files: never worth walking.
            dirs[:] = [d for d in dirs if d not in (FILES_FOLDER, "executions")]
        return sorted(found)

    def find_sync(self, namespace: str, patterns: list[str]) -> list[NamespaceFile]:
        regexes = matches(patterns)
        return [
            f for f in self.all_files_sync(namespace) if any(r.fullmatch(f.path) for r in regexes)
        ]

    # --------------------------------------------------------------------- writing

    def put_sync(
        self,
        namespace: str,
        path: str,
        source: Path | bytes | IO[bytes],
        conflict: Conflict = "OVERWRITE",
    ) -> NamespaceFile | None:
        """Store a file (copied from a local file, bytes or a stream); None when skipped."""
        target, logical = self.local(namespace, path)
        if logical == "/":
            raise StorageError("a namespace file needs a name")
        if target.is_dir():
            raise StorageError(f"'{logical}' is a folder of namespace '{namespace}'")
        if target.exists():
            if conflict == "ERROR":
                raise StorageError(
                    f"File '{logical}' already exists in namespace '{namespace}' and conflict "
                    "is set to ERROR"
                )
            if conflict == "SKIP":
                return None
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".hw-{uuid.uuid4().hex}.tmp")
        try:
            if isinstance(source, bytes):
                tmp.write_bytes(source)
            elif isinstance(source, Path):
                shutil.copyfile(source, tmp)
            else:
                with tmp.open("wb") as out:
                    shutil.copyfileobj(source, out)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return self._entry(namespace, target, logical)

    def mkdir_sync(self, namespace: str, path: str) -> NamespaceFile:
        target, logical = self.local(namespace, path)
        if target.is_file():
            raise StorageError(f"'{logical}' is a file of namespace '{namespace}'")
        target.mkdir(parents=True, exist_ok=True)
        return self._entry(namespace, target, logical)

    def delete_sync(self, namespace: str, path: str) -> list[str]:
        """Delete a file, or a folder and all it holds; the logical paths deleted."""
        target, logical = self.local(namespace, path)
        if not target.exists():
            return []
        if target.is_dir():
            root = self.folder(namespace)
            gone = ["/" + p.relative_to(root).as_posix() for p in sorted(target.rglob("*"))] + [
                logical
            ]
            shutil.rmtree(target)
            return gone
        target.unlink()
        return [logical]

    def remove_empty_folder_sync(self, namespace: str, path: str) -> bool:
        target, _ = self.local(namespace, path)
        if target.is_dir() and target != self.folder(namespace) and not any(target.iterdir()):
            target.rmdir()
            return True
        return False

    def move_sync(self, namespace: str, source: str, target: str) -> str:
        src, src_logical = self.local(namespace, source)
        dst, dst_logical = self.local(namespace, target)
        if not src.exists():
            raise self.missing(namespace, src_logical)
        if dst.exists():
            raise StorageError(f"'{dst_logical}' already exists in namespace '{namespace}'")
        if dst_logical.startswith(src_logical.rstrip("/") + "/"):
            raise StorageError(f"cannot move '{src_logical}' into itself")
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        return dst_logical

    # ------------------------------------------------------------------- async API

    async def find(self, namespace: str, patterns: list[str]) -> list[NamespaceFile]:
        return await asyncio.to_thread(self.find_sync, namespace, patterns)

    async def all(self, namespace: str) -> list[NamespaceFile]:
        return await asyncio.to_thread(self.all_sync, namespace)

    async def mkdir(self, namespace: str, path: str) -> NamespaceFile:
        return await asyncio.to_thread(self.mkdir_sync, namespace, path)

    async def namespaces(self) -> list[str]:
        return await asyncio.to_thread(self.namespaces_sync)

    async def put(
        self,
        namespace: str,
        path: str,
        source: Path | bytes | IO[bytes],
        conflict: Conflict = "OVERWRITE",
    ) -> NamespaceFile | None:
        return await asyncio.to_thread(self.put_sync, namespace, path, source, conflict)

    async def delete(self, namespace: str, path: str) -> list[str]:
        return await asyncio.to_thread(self.delete_sync, namespace, path)

    async def remove_empty_folder(self, namespace: str, path: str) -> bool:
        return await asyncio.to_thread(self.remove_empty_folder_sync, namespace, path)
