"""Compress types on real files in internal storage: round trips of every supported compression
and archive format, archives made by other tools, memory use on a big file, and the failures
(a malformed archive or stream, path traversal, an unsupported format)."""

from __future__ import annotations

import asyncio
import bz2
import gzip
import io
import os
import tarfile
import tracemalloc
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from engine.stores.storage import LocalStorage, TaskLocation
from executors import ion
from executors.base import TaskContext, TaskOutcome
from executors.registry import Registry, add_plugins
from tests.unit.api_receiver import context

P = "io.kestra.plugin.compress."
LOC = TaskLocation("company.team", "f", "exec1", "t", "tr1")


class Files:
    def __init__(self, tmp_path: Path) -> None:
        self.storage = LocalStorage(tmp_path / "storage")
        self.work = tmp_path / "work"

    def put(self, name: str, data: bytes) -> str:
        return self.storage.put_sync(LOC, name, data)

    def read(self, uri: str) -> bytes:
        return self.storage.read_sync(uri)

    async def run(self, task: dict[str, Any]) -> tuple[TaskOutcome, TaskContext]:
        task = {"id": "t", **task}
        ctx = context(task, storage=self.storage.for_task(LOC), working_dir=str(self.work))
        return await add_plugins(Registry()).run(task, ctx), ctx


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


DATA = b"id,name\n" + b"".join(b"%d,row %d\n" % (i, i) for i in range(2000))


@pytest.mark.parametrize("kind", ["GZIP", "BZIP2", "XZ", "LZMA", "DEFLATE"])
async def test_file_compress_round_trip(files: Files, kind: str) -> None:
    source = files.put("orders.csv", DATA)
    outcome, _ = await files.run({"type": P + "FileCompress", "from": source, "compression": kind})
    assert outcome.state == "SUCCESS", outcome.error
    packed = files.read(outcome.outputs["uri"])
    assert len(packed) < len(DATA)
    if kind == "GZIP":
        assert gzip.decompress(packed) == DATA
    if kind == "DEFLATE":
        assert zlib.decompress(packed) == DATA  # a zlib stream, as Commons Compress writes it
    task = {"type": P + "FileDecompress", "from": outcome.outputs["uri"], "compression": kind}
    outcome, _ = await files.run(task)
    assert outcome.state == "SUCCESS", outcome.error
    assert files.read(outcome.outputs["uri"]) == DATA
    assert outcome.outputs["uri"].endswith("/orders.csv")


async def test_malformed_streams_and_unsupported_codecs_fail_clearly(files: Files) -> None:
    truncated = files.put("cut.gz", gzip.compress(DATA)[:100])
    outcome, _ = await files.run(
        {"type": P + "FileDecompress", "from": truncated, "compression": "gzip"}
    )
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert outcome.error.startswith(f"{truncated} is not a valid GZIP file:")
    plain = files.put("plain.txt", b"not compressed at all")
    outcome, _ = await files.run({"type": P + "FileDecompress", "from": plain, "compression": "XZ"})
    assert (outcome.error or "").startswith(f"{plain} is not a valid XZ file:")
    outcome, _ = await files.run({"type": P + "FileCompress", "from": plain, "compression": "ZSTD"})
    assert outcome.error == (
        "property 'compression': ZSTD is not supported by Headwater (supported: GZIP, BZIP2, XZ, "
        "LZMA, DEFLATE)"
    )
    outcome, _ = await files.run({"type": P + "FileCompress", "from": plain, "compression": "RAR"})
    assert (outcome.error or "").startswith("property 'compression': unknown value 'RAR'")
    missing = "kestra:///company/team/f/exec1/t/tr1/nope.csv"
    outcome, _ = await files.run(
        {"type": P + "FileCompress", "from": missing, "compression": "GZIP"}
    )
    assert outcome.state == "FAILED"
    assert "nope.csv" in (outcome.error or "")


async def test_archives_round_trip(files: Files) -> None:
    orders = files.put("orders.csv", DATA)
    notes = files.put("notes.txt", b"hello")
    for algorithm, compression in (("ZIP", None), ("TAR", "GZIP"), ("TAR", None), ("ZIP", "BZIP2")):
        task: dict[str, Any] = {
            "type": P + "ArchiveCompress",
            "from": {"data/orders.csv": orders, "{{ flow.id }}-notes.txt": notes},
            "algorithm": algorithm,
        }
        if compression:
            task["compression"] = compression
        outcome, _ = await files.run(task)
        assert outcome.state == "SUCCESS", outcome.error
        archive = outcome.outputs["uri"]
        task = {"type": P + "ArchiveDecompress", "from": archive, "algorithm": algorithm}
        if compression:
            task["compression"] = compression
        outcome, _ = await files.run(task)
        assert outcome.state == "SUCCESS", (algorithm, compression, outcome.error)
        extracted = outcome.outputs["files"]
        assert set(extracted) == {"data/orders.csv", "f-notes.txt"}
        assert files.read(extracted["data/orders.csv"]) == DATA
        assert files.read(extracted["f-notes.txt"]) == b"hello"
        assert outcome.metrics == {"size": len(DATA) + 5, "count": 2}
    packed = files.read(archive)
    with zipfile.ZipFile(io.BytesIO(bz2.decompress(packed))) as z:
        assert z.read("data/orders.csv") == DATA  # readable by any ZIP reader


async def test_archives_made_by_other_tools(files: Files, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub dir").mkdir(parents=True)
    (tree / "sub dir" / "a file.txt").write_bytes(b"A")
    (tree / "b.txt").write_bytes(b"B")
    tarball = tmp_path / "t.tar.gz"
    tar = await asyncio.create_subprocess_exec("tar", "czf", str(tarball), "-C", str(tree), ".")
    assert await tar.wait() == 0
    uri = files.put("t.tar.gz", tarball.read_bytes())
    outcome, _ = await files.run(
        {"type": P + "ArchiveDecompress", "from": uri, "algorithm": "TAR", "compression": "GZIP"}
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert {k: files.read(v) for k, v in outcome.outputs["files"].items()} == {
        "./sub dir/a file.txt": b"A",
        "./b.txt": b"B",
    }
    assert outcome.outputs["files"]["./sub dir/a file.txt"].endswith("/a_file.txt")

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("dir/", b"")
        z.writestr("one/x.csv", b"1")
        z.writestr("two/x.csv", b"2")
    uri = files.put("x.zip", buffer.getvalue())
    outcome, _ = await files.run({"type": P + "ArchiveDecompress", "from": uri, "algorithm": "ZIP"})
    out = outcome.outputs["files"]
    assert (files.read(out["one/x.csv"]), files.read(out["two/x.csv"])) == (b"1", b"2")
    assert out["one/x.csv"].endswith("/x.csv")
    assert out["two/x.csv"].endswith("/2_x.csv")


async def test_malformed_and_hostile_archives_fail(files: Files) -> None:
    garbage = files.put("bad.zip", os.urandom(2048))
    outcome, _ = await files.run(
        {"type": P + "ArchiveDecompress", "from": garbage, "algorithm": "ZIP"}
    )
    assert outcome.state == "FAILED"
    assert (outcome.error or "").startswith(f"{garbage} is not a valid ZIP archive:")
    outcome, _ = await files.run(
        {"type": P + "ArchiveDecompress", "from": garbage, "algorithm": "TAR"}
    )
    assert (outcome.error or "").startswith(f"{garbage} is not a valid TAR archive:")

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("../../evil.txt", b"x")
    evil = files.put("evil.zip", buffer.getvalue())
    outcome, _ = await files.run(
        {"type": P + "ArchiveDecompress", "from": evil, "algorithm": "ZIP"}
    )
    assert outcome.error == "Path traversal attempt detected in archive entry: ../../evil.txt"
    assert not (files.work.parent / "evil.txt").exists()
    outcome, _ = await files.run(
        {"type": P + "ArchiveDecompress", "from": evil, "algorithm": "CPIO"}
    )
    assert (outcome.error or "").startswith("property 'algorithm': CPIO is not supported")


async def test_archive_compress_from_an_ion_file_of_maps(files: Files) -> None:
    a, b = files.put("a.txt", b"a"), files.put("b.txt", b"b")
    rows = files.put(
        "rows.ion", f"{ion.dumps({'x/a.txt': a})}\n{ion.dumps({'b.txt': b})}\n".encode()
    )
    outcome, _ = await files.run({"type": P + "ArchiveCompress", "from": rows, "algorithm": "TAR"})
    assert outcome.state == "SUCCESS", outcome.error
    with tarfile.open(fileobj=io.BytesIO(files.read(outcome.outputs["uri"]))) as tar:
        assert tar.getnames() == ["x/a.txt", "b.txt"]
    outcome, _ = await files.run(
        {"type": P + "ArchiveCompress", "from": {"a": "https://x.io/a"}, "algorithm": "ZIP"}
    )
    assert (
        outcome.error
        == "property 'from': a: expected an internal-storage URI, got 'https://x.io/a'"
    )


async def test_a_big_file_is_streamed(files: Files, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        for _ in range(32):
            f.write(os.urandom(1024) * 1024)  # 32 MB, compressible 1024:1
    uri = files.storage.put_file_sync(LOC, "big.bin", big)
    tracemalloc.start()
    try:
        outcome, _ = await files.run(
            {"type": P + "FileCompress", "from": uri, "compression": "GZIP"}
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.state == "SUCCESS", outcome.error
    assert peak < 12 * 1024 * 1024
