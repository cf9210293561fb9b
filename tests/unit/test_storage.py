"""Internal storage: URIs, round trips, size-based offloading, and no way out of the root."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.stores.storage import LocalStorage, StorageError, TaskLocation, offload_outputs

LOC = TaskLocation("company.team", "my_flow", "0190abcd", "extract", "a1b2c3d4e5f60718")


async def test_put_read_round_trip_with_kestra_uri(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    uri = await storage.put(LOC, "result.csv", b"a,b\n1,2\n")
    assert uri == (
        "kestra:///company/team/my_flow/executions/0190abcd/tasks/extract/"
        "a1b2c3d4e5f60718/result.csv"
    )
    assert await storage.read(uri) == b"a,b\n1,2\n"
    assert storage.read_text(uri) == "a,b\n1,2\n"
    assert (tmp_path / "company/team/my_flow/executions/0190abcd").is_dir()


@pytest.mark.parametrize(
    "uri",
    [
        "kestra:///../../etc/passwd",
        "kestra:///company/../../../etc/passwd",
        "kestra:///company/%2e%2e/x",
        "kestra:///company//x",
        "kestra:///a/b\x00c",
        "file:///etc/passwd",
        "kestra:///",
        "/etc/passwd",
    ],
)
def test_uris_that_escape_or_are_malformed_are_refused(tmp_path: Path, uri: str) -> None:
    with pytest.raises(StorageError):
        LocalStorage(tmp_path).read_sync(uri)


def test_symlink_inside_the_root_cannot_lead_out(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "ns").mkdir(parents=True)
    (tmp_path / "outside.txt").write_text("secret")
    (root / "ns" / "link").symlink_to(tmp_path)
    with pytest.raises(StorageError, match="outside"):
        LocalStorage(root).read_sync("kestra:///ns/link/outside.txt")


def test_file_names_are_sanitized_not_trusted(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    uri = storage.put_sync(LOC, "../../evil name.txt", b"x")
    assert uri.endswith("/a1b2c3d4e5f60718/evil_name.txt")
    assert storage.path_of(uri).is_relative_to(tmp_path.resolve())


def test_missing_file_and_size_limit_are_clear_errors(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(StorageError, match="does not exist"):
        storage.read_sync(storage.uri(LOC, "nope.txt"))
    uri = storage.put_sync(LOC, "big.bin", b"x" * 100)
    with pytest.raises(StorageError, match="more than the 10"):
        storage.read_sync(uri, max_bytes=10)


def test_invalid_location_segments_are_refused(tmp_path: Path) -> None:
    bad = TaskLocation("company..team", "f", "e", "t", "r")
    with pytest.raises(StorageError):
        LocalStorage(tmp_path).uri(bad, "x")


async def test_large_outputs_are_offloaded_small_ones_stay(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    task_storage = storage.for_task(LOC)
    outputs = {
        "exitCode": 0,
        "vars": {"small": "ok", "big": "y" * 500, "rows": [{"n": i} for i in range(100)]},
    }
    out = await offload_outputs(outputs, task_storage, limit_bytes=200)
    assert out["exitCode"] == 0
    assert out["vars"]["small"] == "ok"
    big_uri, rows_uri = out["vars"]["big"], out["vars"]["rows"]
    assert big_uri.startswith("kestra:///")
    assert big_uri.endswith("output-vars-big.txt")
    assert storage.read_text(big_uri) == "y" * 500  # a string comes back as itself
    assert storage.read_text(rows_uri).startswith('[{"n":0}')
    assert await offload_outputs(outputs, task_storage, limit_bytes=10_000) == outputs
