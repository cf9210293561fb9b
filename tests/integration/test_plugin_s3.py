"""io.kestra.plugin.aws.s3.* against a real S3 server: SeaweedFS from deploy/local (`up s3`).

Each test makes its own bucket (CreateBucket) so that runs sharing the server never meet.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from executors.plugins.aws_s3_trigger import Trigger
from tests.remote_support import (
    S3_CONNECTION,
    MemoryKV,
    poll_context,
    put,
    read,
    run,
    unique,
)

pytestmark = pytest.mark.s3

P = "io.kestra.plugin.aws.s3."


async def s3(type_: str, task: dict[str, Any], tmp_path: Path, **extra: Any) -> Any:
    return await run(P + type_, task, tmp_path, **{**S3_CONNECTION, **extra})


async def new_bucket(tmp_path: Path) -> str:
    bucket = unique("hw")
    outcome, _ = await s3("CreateBucket", {"bucket": bucket}, tmp_path)
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["bucket"] == bucket
    return bucket


async def test_upload_then_download_one_file_with_its_metadata(tmp_path: Path) -> None:
    bucket = await new_bucket(tmp_path)
    data = b"id,name\n1,alpha\n" * 1000
    uri = await put(tmp_path, "data.csv", data)
    up, _ = await s3(
        "Upload",
        {"bucket": bucket, "key": "in/data.csv", "from": uri, "contentType": "text/csv",
         "metadata": {"team": "data"}},
        tmp_path,
    )  # fmt: skip
    assert up.state == "SUCCESS", up.error
    assert up.outputs["bucket"] == bucket
    assert up.outputs["key"] == "in/data.csv"
    assert up.outputs["eTag"].strip('"') == hashlib.md5(data).hexdigest()
    assert up.metrics == {"file.count": 1, "file.size": len(data)}

    down, _ = await s3("Download", {"bucket": bucket, "key": "in/data.csv"}, tmp_path)
    assert down.state == "SUCCESS", down.error
    out = down.outputs
    assert out["uri"].startswith("kestra:///company/team/files/executions/exec1/tasks/step/")
    assert read(tmp_path, out["uri"]) == data
    assert out["contentLength"] == len(data)
    assert out["contentType"] == "text/csv"
    assert out["metadata"] == {"team": "data"}
    assert out["eTag"] == up.outputs["eTag"]


async def test_upload_many_files_list_and_download_a_prefix(tmp_path: Path) -> None:
    bucket = await new_bucket(tmp_path)
    a = await put(tmp_path, "a.txt", b"A")
    b = await put(tmp_path, "b.json", b'{"b": 2}')
    up, _ = await s3("Upload", {"bucket": bucket, "key": "batch", "from": [a, b]}, tmp_path)
    assert up.state == "SUCCESS", up.error
    assert set(up.outputs["files"]) == {"a.txt", "b.json"}
    up2, _ = await s3(
        "Upload",
        {"bucket": bucket, "key": "named/", "from": {"x/one.txt": a, "two": b}},
        tmp_path,
    )
    assert up2.state == "SUCCESS", up2.error
    assert set(up2.outputs["files"]) == {"x/one.txt", "two"}

    listed, _ = await s3("List", {"bucket": bucket, "prefix": "batch/"}, tmp_path)
    assert listed.state == "SUCCESS", listed.error
    objects = listed.outputs["objects"]
    assert [o["key"] for o in objects] == ["batch/a.txt", "batch/b.json"]
    assert objects[0]["size"] == 1
    assert objects[0]["etag"]
    assert objects[0]["lastModified"]
    assert listed.metrics == {"s3.objects.count": 2}

    regex, _ = await s3("List", {"bucket": bucket, "regexp": r".*\.json"}, tmp_path)
    assert [o["key"] for o in regex.outputs["objects"]] == ["batch/b.json"]
    capped, ctx = await s3("List", {"bucket": bucket, "maxFiles": 1}, tmp_path)
    assert len(capped.outputs["objects"]) == 1
    assert any("maxFiles limit is 1" in line.message for line in ctx.logs)

    many, _ = await s3("Download", {"bucket": bucket, "prefix": "batch/"}, tmp_path)
    assert many.state == "SUCCESS", many.error
    files = many.outputs["files"]
    assert read(tmp_path, files["batch/b.json"]["uri"]) == b'{"b": 2}'
    assert set(files) == {"batch/a.txt", "batch/b.json"}


async def test_downloads_then_moves_and_deletelist(tmp_path: Path) -> None:
    bucket = await new_bucket(tmp_path)
    for name in ("one.csv", "two.csv", "skip.txt"):
        uri = await put(tmp_path, name, name.encode())
        done, _ = await s3("Upload", {"bucket": bucket, "key": f"inbox/{name}", "from": uri},
                           tmp_path)  # fmt: skip
        assert done.state == "SUCCESS", done.error
    got, _ = await s3(
        "Downloads",
        {"bucket": bucket, "prefix": "inbox/", "regexp": r".*\.csv", "action": "MOVE",
         "moveTo": {"key": "archive"}},
        tmp_path,
    )  # fmt: skip
    assert got.state == "SUCCESS", got.error
    assert {o["key"] for o in got.outputs["objects"]} == {"inbox/one.csv", "inbox/two.csv"}
    assert read(tmp_path, got.outputs["outputFiles"]["inbox/two.csv"]) == b"two.csv"
    left, _ = await s3("List", {"bucket": bucket}, tmp_path)
    assert sorted(o["key"] for o in left.outputs["objects"]) == [
        "archive/one.csv",
        "archive/two.csv",
        "inbox/skip.txt",
    ]

    gone, _ = await s3("DeleteList", {"bucket": bucket, "prefix": "archive/",
                                        "concurrent": 2}, tmp_path)  # fmt: skip
    assert gone.state == "SUCCESS", gone.error
    assert gone.outputs == {"count": 2, "size": len(b"one.csv") + len(b"two.csv")}
    empty, _ = await s3("DeleteList", {"bucket": bucket, "prefix": "nothing/",
                                       "errorOnEmpty": True}, tmp_path)  # fmt: skip
    assert empty.state == "FAILED"
    assert "Unable to find any files to delete on " + bucket in (empty.error or "")


async def test_copy_delete_and_missing_objects(tmp_path: Path) -> None:
    bucket = await new_bucket(tmp_path)
    other = await new_bucket(tmp_path)
    uri = await put(tmp_path, "report.pdf", b"%PDF-1.7 fake")
    await s3("Upload", {"bucket": bucket, "key": "reports/r.pdf", "from": uri}, tmp_path)
    copied, _ = await s3(
        "Copy",
        {"from": {"bucket": bucket, "key": "reports/r.pdf"},
         "to": {"bucket": other, "key": "copies/r.pdf"}, "delete": True},
        tmp_path,
    )  # fmt: skip
    assert copied.state == "SUCCESS", copied.error
    assert copied.outputs["bucket"] == other
    assert copied.outputs["key"] == "copies/r.pdf"
    moved, _ = await s3("Download", {"bucket": other, "key": "copies/r.pdf"}, tmp_path)
    assert read(tmp_path, moved.outputs["uri"]) == b"%PDF-1.7 fake"
    missing, _ = await s3("Download", {"bucket": bucket, "key": "reports/r.pdf"}, tmp_path)
    assert missing.state == "FAILED"
    assert f"s3://{bucket}/reports/r.pdf" in (missing.error or "")

    deleted, _ = await s3("Delete", {"bucket": other, "key": "copies/r.pdf"}, tmp_path)
    assert deleted.state == "SUCCESS", deleted.error
    after, _ = await s3("List", {"bucket": other}, tmp_path)
    assert after.outputs["objects"] == []


async def test_a_wrong_secret_fails_with_the_servers_answer_and_stays_masked(
    tmp_path: Path,
) -> None:
    bucket = await new_bucket(tmp_path)
    wrong = "not-the-secret-4242"
    outcome, ctx = await s3("List", {"bucket": bucket}, tmp_path, secretKeyId=wrong)
    assert outcome.state == "FAILED"
    assert "signature" in (outcome.error or "").lower()
    assert f"s3://{bucket}" in (outcome.error or "")
    assert all(wrong not in line.message for line in ctx.logs)
    nobucket, _ = await s3("List", {"bucket": unique("absent")}, tmp_path)
    assert nobucket.state == "FAILED"
    assert "bucket" in (nobucket.error or "").lower()


async def test_user_mistakes_fail_clearly(tmp_path: Path) -> None:
    neither, _ = await s3("Download", {"bucket": "b"}, tmp_path)
    assert neither.state == "FAILED"
    assert "Invalid configuration" in (neither.error or "")
    not_uri, _ = await s3("Upload", {"bucket": "b", "key": "k", "from": "/etc/passwd"}, tmp_path)
    assert not_uri.state == "FAILED"
    assert "not an internal storage URI" in (not_uri.error or "")
    empty, _ = await s3("Upload", {"bucket": "b", "key": "k", "from": []}, tmp_path)
    assert "No files to upload" in (empty.error or "")
    metadata, _ = await s3(
        "List", {"bucket": "b"}, tmp_path, endpointOverride="http://169.254.169.254:80"
    )
    assert "link-local" in (metadata.error or "")
    bad_filter, _ = await s3("List", {"bucket": "b", "filter": "SOME"}, tmp_path)
    assert "property 'filter'" in (bad_filter.error or "")


async def test_trigger_fires_once_per_new_or_changed_object_and_moves_after(
    tmp_path: Path,
) -> None:
    bucket = await new_bucket(tmp_path)
    for name in ("a.csv", "b.csv"):
        uri = await put(tmp_path, name, name.encode())
        await s3("Upload", {"bucket": bucket, "key": f"in/{name}", "from": uri}, tmp_path)
    kv = MemoryKV()
    keep = Trigger.model_validate(
        {"id": "watch", "type": P + "Trigger", "bucket": bucket, "prefix": "in/",
         "interval": "PT1S", **S3_CONNECTION}
    )  # fmt: skip
    first = await keep.poll(poll_context(tmp_path, kv))
    assert first is not None
    objects = first.variables["objects"]
    assert sorted(o["key"] for o in objects) == ["in/a.csv", "in/b.csv"]
    assert {o["changeType"] for o in objects} == {"CREATE"}
    uri = next(o["uri"] for o in objects if o["key"] == "in/a.csv")
    assert uri.startswith("kestra:///company/team/files/executions/")
    assert "/trigger/watch/" in uri
    assert read(tmp_path, uri) == b"a.csv"
    assert first.after is not None
    await first.after()  # the StartExecution is durable: the state is written
    assert await keep.poll(poll_context(tmp_path, kv)) is None  # nothing new

    uri = await put(tmp_path, "a.csv", b"a.csv, changed")
    await s3("Upload", {"bucket": bucket, "key": "in/a.csv", "from": uri}, tmp_path)
    again = await keep.poll(poll_context(tmp_path, kv))
    assert again is not None
    assert [(o["key"], o["changeType"]) for o in again.variables["objects"]] == [
        ("in/a.csv", "UPDATE")
    ]
    # The same objects polled again before the state was written: the same execution.
    replay = await keep.poll(poll_context(tmp_path, kv))
    assert replay is not None
    assert replay.coordinates == again.coordinates

    move = Trigger.model_validate(
        {"id": "mover", "type": P + "Trigger", "bucket": bucket, "prefix": "in/",
         "action": "MOVE", "moveTo": {"key": "done"}, **S3_CONNECTION}
    )  # fmt: skip
    moved = await move.poll(poll_context(tmp_path, MemoryKV(), "mover"))
    assert moved is not None
    assert moved.after is not None
    listed, _ = await s3("List", {"bucket": bucket}, tmp_path)
    assert len(listed.outputs["objects"]) == 2  # nothing moved before the execution exists
    await moved.after()
    listed, _ = await s3("List", {"bucket": bucket}, tmp_path)
    assert sorted(o["key"] for o in listed.outputs["objects"]) == ["done/a.csv", "done/b.csv"]


async def test_trigger_with_a_wrong_secret_raises_the_servers_answer(tmp_path: Path) -> None:
    trigger = Trigger.model_validate(
        {"id": "watch", "type": P + "Trigger", "bucket": "whatever",
         **{**S3_CONNECTION, "secretKeyId": "wrong-secret-777"}}
    )  # fmt: skip
    with pytest.raises(Exception, match=r"(?i)signature"):
        await trigger.poll(poll_context(tmp_path, MemoryKV()))
