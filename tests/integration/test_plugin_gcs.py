"""io.kestra.plugin.gcp.gcs.* against a real Cloud Storage server: fake-gcs-server from
deploy/local (`up gcs`), reached as Google's clients reach an emulator (STORAGE_EMULATOR_HOST).

A service account's key is exchanged for a token at the key's ``token_uri``: a local OAuth
token endpoint started by the test checks the signed JWT grant with the account's public key.
Each test makes its own bucket (CreateBucket) so that runs sharing the server never meet.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google_crc32c
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.worker.secrets import mask
from executors.plugins.gcp_gcs_trigger import Trigger
from tests import gcp_support
from tests.gcp_support import pem, service_account
from tests.remote_support import GCS_EMULATOR, MemoryKV, poll_context, put, read, run, unique

pytestmark = pytest.mark.gcs

P = "io.kestra.plugin.gcp.gcs."


@pytest.fixture(autouse=True)
def emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", GCS_EMULATOR)


async def gcs(type_: str, task: dict[str, Any], tmp_path: Path, **extra: Any) -> Any:
    return await run(P + type_, task, tmp_path, **{"projectId": "headwater", **extra})


async def new_bucket(tmp_path: Path) -> str:
    bucket = unique("hw")
    made, _ = await gcs("CreateBucket", {"name": bucket, "labels": {"team": "data"}}, tmp_path)
    assert made.state == "SUCCESS", made.error
    assert made.outputs["bucket"]["name"] == bucket
    assert made.outputs["bucket"]["uri"] == f"gs://{bucket}"
    assert made.outputs["created"] is True
    return bucket


async def upload(tmp_path: Path, to: str, data: bytes) -> dict[str, Any]:
    uri = await put(tmp_path, to.rsplit("/", 1)[-1], data)
    done, _ = await gcs("Upload", {"from": uri, "to": to}, tmp_path)
    assert done.state == "SUCCESS", done.error
    outputs: dict[str, Any] = done.outputs
    return outputs


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


async def test_upload_then_download_with_checksums(tmp_path: Path) -> None:
    bucket = await new_bucket(tmp_path)
    data = b"id,name\n1,alpha\n" * 1000
    uri = await put(tmp_path, "data.csv", data)
    md5 = b64(hashlib.md5(data).digest())
    crc = b64(google_crc32c.Checksum(data).digest())
    up, _ = await gcs(
        "Upload",
        {
            "from": uri,
            "to": f"gs://{bucket}/in/my data.csv",
            "contentType": "text/csv",
            "cacheControl": "no-cache",
            "expectedMd5": md5,
        },
        tmp_path,
    )
    assert up.state == "SUCCESS", up.error
    assert up.outputs == {"uri": f"gs://{bucket}/in/my%20data.csv", "md5": md5, "crc32c": crc}
    assert up.metrics == {"file.size": len(data)}

    down, _ = await gcs(
        "Download", {"from": f"gs://{bucket}/in/my+data.csv", "validateChecksum": True}, tmp_path
    )
    assert down.state == "SUCCESS", down.error
    assert down.outputs["bucket"] == bucket
    assert down.outputs["path"] == "in/my data.csv"
    assert read(tmp_path, down.outputs["uri"]) == data

    listed, _ = await gcs("List", {"from": f"gs://{bucket}/in/"}, tmp_path)
    assert listed.state == "SUCCESS", listed.error
    [blob] = listed.outputs["blobs"]
    assert blob["uri"] == f"gs://{bucket}/in/my+data.csv"
    assert blob["name"] == "in/my data.csv"
    assert (blob["size"], blob["md5"], blob["crc32c"]) == (len(data), md5, crc)
    assert (blob["contentType"], blob["cacheControl"]) == ("text/csv", "no-cache")
    assert blob["directory"] is False
    assert blob["updateTime"].endswith("Z")

    wrong, _ = await gcs(
        "Upload", {"from": uri, "to": f"gs://{bucket}/x", "expectedCrc32c": "AAAAAA=="}, tmp_path
    )
    assert wrong.state == "FAILED"
    assert f"Source CRC32C mismatch: expected=AAAAAA==, computed={crc}" in (wrong.error or "")
    missing, _ = await gcs("Download", {"from": f"gs://{bucket}/nothing.csv"}, tmp_path)
    assert missing.state == "FAILED"
    assert f"Unable to find blob on bucket '{bucket}' with path 'nothing.csv'" in (
        missing.error or ""
    )


async def test_list_directories_recursive_regexp_and_max_files(tmp_path: Path) -> None:
    bucket = await new_bucket(tmp_path)
    for name in ("top.txt", "a/one.csv", "a/two.json", "a/deep/three.csv"):
        await upload(tmp_path, f"gs://{bucket}/{name}", name.encode())
    level, _ = await gcs("List", {"from": f"gs://{bucket}/"}, tmp_path)
    assert [(b["name"], b["directory"]) for b in level.outputs["blobs"]] == [
        ("a/", True),
        ("top.txt", False),
    ]
    assert level.metrics == {"size": 2}
    files, _ = await gcs("List", {"from": f"gs://{bucket}/a/", "filter": "FILES"}, tmp_path)
    assert [b["name"] for b in files.outputs["blobs"]] == ["a/one.csv", "a/two.json"]
    deep, _ = await gcs(
        "List",
        {
            "from": f"gs://{bucket}",
            "listingType": "RECURSIVE",
            "regExp": rf"gs://{bucket}/a/.*\.csv",
        },
        tmp_path,
    )
    assert [b["name"] for b in deep.outputs["blobs"]] == ["a/deep/three.csv", "a/one.csv"]
    capped, ctx = await gcs(
        "List", {"from": f"gs://{bucket}", "listingType": "RECURSIVE", "maxFiles": 1}, tmp_path
    )
    assert len(capped.outputs["blobs"]) == 1
    assert any("exceeded the maxFiles limit (1)" in line.message for line in ctx.logs)
    bad, _ = await gcs("List", {"from": "s3://elsewhere/x"}, tmp_path)
    assert "is not a gs://bucket/path URI" in (bad.error or "")


async def test_downloads_move_delete_list_copy_compose(tmp_path: Path) -> None:
    bucket = await new_bucket(tmp_path)
    for name in ("one.csv", "two.csv", "skip.txt"):
        await upload(tmp_path, f"gs://{bucket}/inbox/{name}", name.encode())
    got, _ = await gcs(
        "Downloads",
        {
            "from": f"gs://{bucket}/inbox/",
            "regExp": r".*\.csv",
            "action": "MOVE",
            "moveDirectory": f"gs://{bucket}/archive/",
            "validateChecksum": True,
        },
        tmp_path,
    )
    assert got.state == "SUCCESS", got.error
    assert sorted(b["name"] for b in got.outputs["blobs"]) == ["inbox/one.csv", "inbox/two.csv"]
    assert got.outputs["blobs"][0]["uri"].startswith("kestra:///")
    assert read(tmp_path, got.outputs["outputFiles"]["inbox/two.csv"]) == b"two.csv"
    left, _ = await gcs("List", {"from": f"gs://{bucket}", "listingType": "RECURSIVE"}, tmp_path)
    assert [b["name"] for b in left.outputs["blobs"]] == [
        "archive/one.csv",
        "archive/two.csv",
        "inbox/skip.txt",
    ]

    composed, _ = await gcs(
        "Compose",
        {"list": {"from": f"gs://{bucket}/archive/"}, "to": f"gs://{bucket}/all.csv"},
        tmp_path,
    )
    assert composed.state == "SUCCESS", composed.error
    assert composed.metrics == {"count": 2, "size": 14}
    whole, _ = await gcs("Download", {"from": f"gs://{bucket}/all.csv"}, tmp_path)
    assert read(tmp_path, whole.outputs["uri"]) == b"one.csvtwo.csv"

    copied, _ = await gcs(
        "Copy",
        {"from": f"gs://{bucket}/all.csv", "to": f"gs://{bucket}/c/all.csv", "delete": True},
        tmp_path,
    )
    assert copied.state == "SUCCESS", copied.error
    assert copied.outputs == {"uri": f"gs://{bucket}/c/all.csv"}
    same, _ = await gcs(
        "Copy", {"from": f"gs://{bucket}/c/all.csv", "to": f"gs://{bucket}/c/all.csv"}, tmp_path
    )
    assert "Invalid copy to same path" in (same.error or "")

    gone, _ = await gcs(
        "DeleteList", {"from": f"gs://{bucket}/archive/", "concurrent": 2}, tmp_path
    )
    assert gone.state == "SUCCESS", gone.error
    assert gone.outputs == {"count": 2, "size": 14}
    empty, _ = await gcs(
        "DeleteList", {"from": f"gs://{bucket}/archive/", "errorOnEmpty": True}, tmp_path
    )
    assert f"Unable to find any files to delete on 'gs://{bucket}/archive/'" in (empty.error or "")

    deleted, _ = await gcs("Delete", {"uri": f"gs://{bucket}/inbox/skip.txt"}, tmp_path)
    assert deleted.outputs == {"uri": f"gs://{bucket}/inbox/skip.txt", "deleted": True}
    again, _ = await gcs("Delete", {"uri": f"gs://{bucket}/inbox/skip.txt"}, tmp_path)
    assert again.outputs["deleted"] is False
    strict, _ = await gcs(
        "Delete", {"uri": f"gs://{bucket}/inbox/skip.txt", "errorOnMissing": True}, tmp_path
    )
    assert f"Unable to find file 'gs://{bucket}/inbox/skip.txt'" in (strict.error or "")


async def test_buckets_create_update_and_delete(tmp_path: Path) -> None:
    bucket = await new_bucket(tmp_path)
    twice, _ = await gcs("CreateBucket", {"name": bucket}, tmp_path)
    assert twice.state == "FAILED"
    assert f"Bucket {bucket} already exists and ifExists policy is set to ERROR" in (
        twice.error or ""
    )
    update, _ = await gcs(
        "CreateBucket", {"name": bucket, "ifExists": "UPDATE", "labels": {"team": "ops"}}, tmp_path
    )
    assert update.state == "SUCCESS", update.error
    assert (update.outputs["created"], update.outputs["updated"]) == (False, True)
    skip, _ = await gcs("CreateBucket", {"name": bucket, "ifExists": "SKIP"}, tmp_path)
    assert (skip.outputs["created"], skip.outputs["updated"]) == (False, False)
    refused, _ = await gcs(
        "UpdateBucket", {"name": bucket, "cors": [{"maxAgeSeconds": 1}]}, tmp_path
    )
    assert "property 'cors' is not supported" in (refused.error or "")

    await upload(tmp_path, f"gs://{bucket}/a/b/c.txt", b"c")
    full, _ = await gcs("DeleteBucket", {"name": bucket}, tmp_path)
    assert full.state == "FAILED"
    forced, _ = await gcs("DeleteBucket", {"name": bucket, "force": True}, tmp_path)
    assert forced.state == "SUCCESS", forced.error
    assert forced.outputs == {"bucket": bucket, "bucketUri": f"gs://{bucket}"}
    absent, _ = await gcs("DeleteBucket", {"name": bucket}, tmp_path)
    assert f"Couldn't find bucket '{bucket}'" in (absent.error or "")
    listing, _ = await gcs("List", {"from": f"gs://{bucket}"}, tmp_path)
    assert "not found (404)" in (listing.error or "")


# ------------------------------------------------------------- service account credentials


@pytest.fixture
def token_endpoint() -> Iterator[tuple[str, rsa.RSAPrivateKey, list[dict[str, Any]]]]:
    with gcp_support.token_endpoint() as endpoint:
        yield endpoint


async def test_a_service_account_key_is_exchanged_for_a_token_and_a_wrong_one_refused(
    tmp_path: Path, token_endpoint: tuple[str, rsa.RSAPrivateKey, list[dict[str, Any]]]
) -> None:
    token_uri, key, grants = token_endpoint
    bucket = unique("hw")
    account = service_account(token_uri, key)
    made, ctx = await run(P + "CreateBucket", {"name": bucket, "serviceAccount": account}, tmp_path)
    assert made.state == "SUCCESS", made.error
    [grant] = grants
    assert grant["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert grant["iss"] == "flows@headwater-sa.iam.gserviceaccount.com"
    assert grant["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert grant["aud"] == "https://oauth2.googleapis.com/token"  # google-auth fixes the audience
    assert "ya29.local-token" in ctx.secrets

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wrong = service_account(token_uri, other)
    refused, ctx = await run(
        P + "List", {"from": f"gs://{bucket}", "serviceAccount": wrong}, tmp_path
    )
    assert refused.state == "FAILED"
    assert "Google OAuth token request failed" in (refused.error or "")
    assert "invalid_grant: Invalid JWT Signature." in (refused.error or "")
    assert pem(other) in ctx.secrets
    shown = mask(refused.error, ctx.secrets) or ""
    assert "PRIVATE KEY" not in shown
    assert len(grants) == 1

    garbage, _ = await run(
        P + "List", {"from": f"gs://{bucket}", "serviceAccount": "{not json"}, tmp_path
    )
    assert "property 'serviceAccount': not a JSON key" in (garbage.error or "")


# ------------------------------------------------------------------------------ the trigger


async def test_trigger_fires_once_per_new_or_changed_object_and_moves_after(tmp_path: Path) -> None:
    bucket = await new_bucket(tmp_path)
    for name in ("a.csv", "b.csv"):
        await upload(tmp_path, f"gs://{bucket}/in/{name}", name.encode())
    kv = MemoryKV()
    keep = Trigger.model_validate(
        {"id": "watch", "type": P + "Trigger", "from": f"gs://{bucket}/in/", "interval": "PT1S"}
    )
    first = await keep.poll(poll_context(tmp_path, kv))
    assert first is not None
    blobs = first.variables["blobs"]
    assert sorted(b["name"] for b in blobs) == ["in/a.csv", "in/b.csv"]
    assert {b["changeType"] for b in blobs} == {"CREATE"}
    one = next(b for b in blobs if b["name"] == "in/a.csv")
    assert one["bucket"] == bucket
    assert "/trigger/watch/" in one["uri"]
    assert read(tmp_path, one["uri"]) == b"a.csv"
    assert first.after is not None
    await first.after()
    assert await keep.poll(poll_context(tmp_path, kv)) is None

    await upload(tmp_path, f"gs://{bucket}/in/a.csv", b"a.csv, changed")
    again = await keep.poll(poll_context(tmp_path, kv))
    assert again is not None
    assert [(b["name"], b["changeType"]) for b in again.variables["blobs"]] == [
        ("in/a.csv", "UPDATE")
    ]
    replay = await keep.poll(poll_context(tmp_path, kv))
    assert replay is not None
    assert replay.coordinates == again.coordinates

    move = Trigger.model_validate(
        {
            "id": "mover",
            "type": P + "Trigger",
            "from": f"gs://{bucket}/in/",
            "action": "MOVE",
            "moveDirectory": f"gs://{bucket}/done",
        }
    )
    moved = await move.poll(poll_context(tmp_path, MemoryKV(), "mover"))
    assert moved is not None
    assert moved.after is not None
    listed, _ = await gcs("List", {"from": f"gs://{bucket}", "listingType": "RECURSIVE"}, tmp_path)
    assert len(listed.outputs["blobs"]) == 2
    await moved.after()
    listed, _ = await gcs("List", {"from": f"gs://{bucket}", "listingType": "RECURSIVE"}, tmp_path)
    assert [b["name"] for b in listed.outputs["blobs"]] == ["done/a.csv", "done/b.csv"]
