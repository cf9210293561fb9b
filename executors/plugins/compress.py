"""Kestra's compress plugin (kestra-io/plugin-compress): archives and compressed files.

- ``ArchiveCompress``: ``from`` (Kestra's ``Data.from``, :func:`executors.data.read_from`: a map
  ``path in the archive -> internal-storage URI``, a list of such maps, their JSON text, or the
  URI of an ION file of them; each row's paths and URIs are rendered), ``algorithm`` (ZIP,
  JAR, TAR; required), ``compression`` (optional, around the archive: ``TAR`` + ``GZIP`` is a
  .tar.gz). Each file is streamed into the archive (TAR entries use POSIX long names, as Kestra
  sets). Output ``uri``: the archive in internal storage.
- ``ArchiveDecompress``: ``from`` (URI), ``algorithm``, ``compression``. Every file entry (not
  the directories) is written to the working directory under its name with spaces as ``_`` (an
  entry escaping the directory fails: "Path traversal attempt detected in archive entry"), then
  stored; output ``files``: entry name -> URI. Metrics ``size`` (bytes) and ``count``.
- ``FileCompress`` / ``FileDecompress``: ``from`` (URI), ``compression`` (required): one
  stream. Output ``uri``.

Compressions: GZIP, BZIP2, XZ, LZMA (the .lzma "alone" format), DEFLATE (a zlib stream, as
Commons Compress writes it). Everything is streamed in chunks through a file of the task's working
directory, in a worker thread; nothing is held whole in memory.

What differs from Kestra: the archive formats AR, ARJ, CPIO and DUMP and the compressions
BROTLI, DEFLATE64, LZ4BLOCK, LZ4FRAME, SNAPPY, SNAPPYFRAME, Z and ZSTD (Apache Commons Compress
codecs with no counterpart in Python's standard library) are refused with a message naming the
supported ones. A file that is not an archive of the given format fails the task naming the file
(Commons' streaming ZIP reader returns no entries for one). A gzip file of several members is read
whole (Commons reads the first member). A JAR is written as a ZIP (no JarMarker extra field).
Two entries with the same file name in different folders are stored as ``name`` and ``2_name``
(Kestra stores both under the same name, the second replacing the first).
"""

from __future__ import annotations

import asyncio
import bz2
import gzip
import io
import lzma
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any, ClassVar, Literal

from pydantic import Field

from executors.base import TaskContext, TaskError, TaskOutcome
from executors.data import read_from
from executors.plugin import TaskPlugin, render_str
from schemas.flow.common import Str

# Bytes copied per read: streams never hold more than this in memory.
CHUNK = 1024 * 1024
ARCHIVES = ("ZIP", "JAR", "TAR")
COMPRESSIONS = ("GZIP", "BZIP2", "XZ", "LZMA", "DEFLATE")
KESTRA_ARCHIVES = ("AR", "ARJ", "CPIO", "DUMP", *ARCHIVES)
KESTRA_COMPRESSIONS = (
    "BROTLI",
    "DEFLATE64",
    "LZ4BLOCK",
    "LZ4FRAME",
    "SNAPPY",
    "SNAPPYFRAME",
    "Z",
    "ZSTD",
    *COMPRESSIONS,
)
EXTENSIONS = {"GZIP": "gz", "BZIP2": "bz2", "XZ": "xz", "LZMA": "lzma", "DEFLATE": "deflate"}

Algorithm = Literal["AR", "ARJ", "CPIO", "DUMP", "JAR", "TAR", "ZIP"]
Compression = Literal[
    "BROTLI",
    "BZIP2",
    "DEFLATE",
    "DEFLATE64",
    "GZIP",
    "LZ4BLOCK",
    "LZ4FRAME",
    "LZMA",
    "SNAPPY",
    "SNAPPYFRAME",
    "XZ",
    "Z",
    "ZSTD",
]


def _choice(
    ctx: TaskContext, value: Any, name: str, known: tuple[str, ...], ours: tuple[str, ...]
) -> str | None:
    text = ctx.render_str(value)
    if text is None:
        return None
    text = text.strip().upper()
    if text not in known:
        raise TaskError(f"property '{name}': unknown value {text!r} (one of {', '.join(known)})")
    if text not in ours:
        supported = ", ".join(ours)
        raise TaskError(
            f"property '{name}': {text} is not supported by Headwater (supported: {supported})"
        )
    return text


class _DeflateReader(io.RawIOBase):
    """A zlib stream read through (Commons' DeflateCompressorInputStream)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.zlib = zlib.decompressobj()
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending and not self.zlib.eof:
            chunk = self.raw.read(CHUNK)
            if not chunk:
                raise zlib.error("the compressed stream ends early")
            self.pending = self.zlib.decompress(chunk, CHUNK)
            while not self.pending and self.zlib.unconsumed_tail:
                self.pending = self.zlib.decompress(self.zlib.unconsumed_tail, CHUNK)
        if not self.pending and self.zlib.unconsumed_tail:
            self.pending = self.zlib.decompress(self.zlib.unconsumed_tail, CHUNK)
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


class _DeflateWriter(io.RawIOBase):
    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.zlib = zlib.compressobj()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.raw.write(self.zlib.compress(bytes(data)))
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.raw.write(self.zlib.flush())
        super().close()


def open_decompressed(kind: str, raw: IO[bytes]) -> Any:
    if kind == "GZIP":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "BZIP2":
        return bz2.BZ2File(raw, "rb")
    if kind in ("XZ", "LZMA"):
        return lzma.LZMAFile(
            raw, "rb", format=lzma.FORMAT_XZ if kind == "XZ" else lzma.FORMAT_ALONE
        )
    return io.BufferedReader(_DeflateReader(raw), CHUNK)


def open_compressed(kind: str, raw: IO[bytes]) -> Any:
    if kind == "GZIP":
        return gzip.GzipFile(fileobj=raw, mode="wb")
    if kind == "BZIP2":
        return bz2.BZ2File(raw, "wb")
    if kind in ("XZ", "LZMA"):
        return lzma.LZMAFile(
            raw, "wb", format=lzma.FORMAT_XZ if kind == "XZ" else lzma.FORMAT_ALONE
        )
    return io.BufferedWriter(_DeflateWriter(raw), CHUNK)


# Library errors that mean "this file is not what the task was told it is".
MALFORMED = (
    zipfile.BadZipFile,
    tarfile.TarError,
    gzip.BadGzipFile,
    lzma.LZMAError,
    zlib.error,
    EOFError,
    OSError,
)


@contextmanager
def _scratch(ctx: TaskContext) -> Iterator[Path]:
    """A directory for the run's files: inside the working directory when there is one."""
    base = Path(ctx.working_dir) if ctx.working_dir else None
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="compress-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _storage(ctx: TaskContext) -> Any:
    if ctx.storage is None:
        raise TaskError("this worker has no internal storage")
    return ctx.storage


def _copy(source: IO[bytes], target: IO[bytes], cancelled: Callable[[], bool]) -> int:
    size = 0
    while chunk := source.read(CHUNK):
        if cancelled():
            raise TaskError("the task was killed")
        target.write(chunk)
        size += len(chunk)
    return size


class _Compress(TaskPlugin):
    family: ClassVar[str] = "compress"

    async def source(self, ctx: TaskContext, value: Any) -> tuple[str, Path]:
        uri = render_str(ctx, value, "from", required=True) or ""
        try:
            return uri, await _storage(ctx).local_path(uri)
        except TaskError:
            raise
        except Exception as exc:
            raise TaskError(f"property 'from': cannot read {uri}: {exc}") from None


class FileCompress(_Compress):
    """Compress one internal-storage file (gzip, bzip2, xz, lzma, deflate)."""

    type: Literal["io.kestra.plugin.compress.FileCompress"]
    from_: Str = Field(alias="from")
    compression: Compression | Str

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        kind = _choice(ctx, self.compression, "compression", KESTRA_COMPRESSIONS, COMPRESSIONS)
        assert kind is not None
        _, path = await self.source(ctx, self.from_)
        with _scratch(ctx) as scratch:
            out = scratch / f"{path.name}.{EXTENSIONS[kind]}"

            def work() -> None:
                with (
                    path.open("rb") as src,
                    out.open("wb") as raw,
                    open_compressed(kind, raw) as dst,
                ):
                    _copy(src, dst, ctx.cancelled.is_set)

            await asyncio.to_thread(work)
            return {"uri": await _storage(ctx).put_file(out.name, out, move=True)}


class FileDecompress(_Compress):
    """Decompress one internal-storage file (gzip, bzip2, xz, lzma, deflate)."""

    type: Literal["io.kestra.plugin.compress.FileDecompress"]
    from_: Str = Field(alias="from")
    compression: Compression | Str

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        kind = _choice(ctx, self.compression, "compression", KESTRA_COMPRESSIONS, COMPRESSIONS)
        assert kind is not None
        uri, path = await self.source(ctx, self.from_)
        name = path.name
        suffix = f".{EXTENSIONS[kind]}"
        name = name[: -len(suffix)] if name.endswith(suffix) and len(name) > len(suffix) else name
        with _scratch(ctx) as scratch:
            out = scratch / name

            def work() -> None:
                with (
                    path.open("rb") as raw,
                    open_decompressed(kind, raw) as src,
                    out.open("wb") as dst,
                ):
                    _copy(src, dst, ctx.cancelled.is_set)

            try:
                await asyncio.to_thread(work)
            except MALFORMED as exc:
                raise TaskError(f"{uri} is not a valid {kind} file: {exc}") from None
            return {"uri": await _storage(ctx).put_file(out.name, out, move=True)}


# --------------------------------------------------------------------------------------------
# Archives


class _Archive(_Compress):
    algorithm: Algorithm | Str
    compression: Compression | Str | None = None

    def kinds(self, ctx: TaskContext) -> tuple[str, str | None]:
        algorithm = _choice(ctx, self.algorithm, "algorithm", KESTRA_ARCHIVES, ARCHIVES)
        assert algorithm is not None
        compression = _choice(
            ctx, self.compression, "compression", KESTRA_COMPRESSIONS, COMPRESSIONS
        )
        return algorithm, compression


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{n}_{name}"
    used.add(candidate)
    return candidate


def _safe_target(root: Path, entry: str) -> Path:
    name = entry.replace(" ", "_")
    target = (root / name).resolve()
    if not target.is_relative_to(root.resolve()) or PurePosixPath(name).is_absolute():
        raise TaskError(f"Path traversal attempt detected in archive entry: {entry}")
    return target


class ArchiveDecompress(_Archive):
    """Extract the files of a ZIP, JAR or TAR archive (optionally compressed) into storage."""

    type: Literal["io.kestra.plugin.compress.ArchiveDecompress"]
    from_: Str = Field(alias="from")

    def extract(self, ctx: TaskContext, source: Path, root: Path) -> list[tuple[str, Path, int]]:
        """(entry name, extracted file, entry size) of every file entry, in archive order."""
        algorithm, compression = self.kinds(ctx)
        out: list[tuple[str, Path, int]] = []

        def write(name: str, size: int, stream: IO[bytes]) -> None:
            target = _safe_target(root, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as dst:
                _copy(stream, dst, ctx.cancelled.is_set)
            out.append((name, target, size))

        with source.open("rb") as raw:
            if algorithm == "TAR":
                stream = open_decompressed(compression, raw) if compression else raw
                with stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                    for member in tar:
                        # Directories, links and devices carry no content to extract.
                        content = tar.extractfile(member) if member.isfile() else None
                        if content is not None:
                            write(member.name, member.size, content)
                return out
            seekable: Path = source
            if compression:
                # A ZIP's directory is at its end: decompress to a file first, streamed.
                seekable = root.parent / "archive.zip"
                with open_decompressed(compression, raw) as src, seekable.open("wb") as dst:
                    _copy(src, dst, ctx.cancelled.is_set)
        with zipfile.ZipFile(seekable) as zipped:
            for info in zipped.infolist():
                if info.is_dir():
                    continue
                with zipped.open(info) as data:
                    write(info.filename, info.file_size, data)
        return out

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        uri, source = await self.source(ctx, self.from_)
        algorithm, _ = self.kinds(ctx)
        with _scratch(ctx) as scratch:
            root = scratch / "files"
            root.mkdir()
            try:
                entries = await asyncio.to_thread(self.extract, ctx, source, root)
            except TaskError:
                raise
            except MALFORMED as exc:
                raise TaskError(f"{uri} is not a valid {algorithm} archive: {exc}") from None
            files: dict[str, str] = {}
            used: set[str] = set()
            storage = _storage(ctx)
            for name, path, _size in entries:
                stored = _unique(path.name, used)
                files[name] = await storage.put_file(stored, path, move=True)
        size = sum(size for _, _, size in entries)
        return TaskOutcome(
            state="SUCCESS",
            outputs={"files": files},
            metrics={"size": size, "count": len(files)},
        )


class ArchiveCompress(_Archive):
    """Build a ZIP, JAR or TAR archive (optionally compressed) from internal-storage files."""

    type: Literal["io.kestra.plugin.compress.ArchiveCompress"]
    from_: dict[str, Any] | list[dict[str, Any]] | Str = Field(alias="from")

    async def entries(self, ctx: TaskContext) -> list[tuple[str, Path]]:
        storage = _storage(ctx)
        # Kestra's Data.from; each row's path and URI are rendered (again), as Kestra does.
        rows = await asyncio.to_thread((await read_from(ctx, self.from_)).as_list)
        out: list[tuple[str, Path]] = []
        for row in rows:
            if not isinstance(row, Mapping):
                raise TaskError(f"property 'from': expected maps of path -> URI, got {row!r}")
            for key, uri in row.items():
                name = ctx.render_str(key) or ""
                target = ctx.render_str(uri) or ""
                if not target.startswith("kestra://"):
                    raise TaskError(
                        f"property 'from': {name}: expected an internal-storage URI, got {target!r}"
                    )
                out.append((name, await storage.local_path(target)))
        if not out:
            raise TaskError("property 'from': no file to archive")
        return out

    def build(self, ctx: TaskContext, entries: list[tuple[str, Path]], target: Path) -> None:
        algorithm, compression = self.kinds(ctx)
        with target.open("wb") as raw:
            stream = open_compressed(compression, raw) if compression else raw
            with stream:
                if algorithm == "TAR":
                    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                        for name, path in entries:
                            info = tar.gettarinfo(str(path), arcname=name)
                            info.uid = info.gid = 0
                            info.uname = info.gname = ""
                            with path.open("rb") as data:
                                tar.addfile(info, data)
                    return
                with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
                    for name, path in entries:
                        zinfo = zipfile.ZipInfo.from_file(path, name)
                        zinfo.compress_type = zipfile.ZIP_DEFLATED
                        with path.open("rb") as src, archive.open(zinfo, "w") as dst:
                            _copy(src, dst, ctx.cancelled.is_set)

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        algorithm, compression = self.kinds(ctx)
        entries = await self.entries(ctx)
        name = f"archive.{algorithm.lower()}" + (
            f".{EXTENSIONS[compression]}" if compression else ""
        )
        with _scratch(ctx) as scratch:
            target = scratch / name
            await asyncio.to_thread(self.build, ctx, entries, target)
            return {"uri": await _storage(ctx).put_file(name, target, move=True)}


PLUGINS: list[type[TaskPlugin]] = [ArchiveCompress, ArchiveDecompress, FileCompress, FileDecompress]
