"""io.kestra.plugin.azure.storage.blob.* against a real Azure Blob Storage server: Azurite from
deploy/local (`up azurite`), with its well-known development account and key.

Each test makes its own container so that runs sharing the server never meet.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.localsvc import azurite as azsvc
from engine.worker.secrets import mask
from executors.plugins.azure_blob_trigger import Trigger
from executors.remote.azure import AzureSettings, connect
from tests.remote_support import (
    AZURE_CONNECTION,
    AZURE_KEY_CONNECTION,
    AZURITE_PORT,
    MemoryKV,
    ctx_for,
    poll_context,
    put,
    read,
    run,
    unique,
)

pytestmark = pytest.mark.azurite

P = "io.kestra.plugin.azure.storage.blob."


async def az(type_: str, task: dict[str, Any], tmp_path: Path, **extra: Any) -> Any:
    connection = extra.pop("connection", AZURE_CONNECTION)
    return await run(P + type_, task, tmp_path, **{**connection, **extra})


async def new_container(tmp_path: Path) -> str:
    """Kestra's blob plugin has no container task: the SDK makes one."""
    name = unique("hw")
    settings = AzureSettings(connection_string=AZURE_CONNECTION["connectionString"])
    async with connect(ctx_for({}, tmp_path), settings) as store:
        await store.client.create_container(name)
    return name


async def upload(tmp_path: Path, container: str, name: str, data: bytes) -> None:
    uri = await put(tmp_path, c_name(name), data)
    done, _ = await az("Upload", {"container": container, "name": name, "from": uri}, tmp_path)
    assert done.state == "SUCCESS", done.error


def c_name(name: str) -> str:
    return name.rsplit("/", 1)[-1]


async def test_upload_then_download_with_checksums(tmp_path: Path) -> None:
    container = await new_container(tmp_path)
    data = b"id,name\n1,alpha\n" * 1000
    uri = await put(tmp_path, "data.csv", data)
    up, _ = await az(
        "Upload",
        {
            "container": container,
            "name": "in/data.csv",
            "from": uri,
            "validateChecksum": True,
            "metadata": {"team": "data"},
            "tags": {"stage": "raw"},
        },
        tmp_path,
        connection=AZURE_KEY_CONNECTION,
    )
    assert up.state == "SUCCESS", up.error
    assert up.outputs == {
        "blob": {"container": container, "name": "in/data.csv", "size": len(data)},
        "blobs": [{"container": container, "name": "in/data.csv", "size": len(data)}],
    }
    assert up.metrics == {"file.size": len(data)}

    down, _ = await az(
        "Download",
        {"container": container, "name": "in/data.csv", "validateChecksum": True},
        tmp_path,
    )
    assert down.state == "SUCCESS", down.error
    blob = down.outputs["blob"]
    assert blob["uri"].startswith("kestra:///company/team/files/executions/exec1/tasks/step/")
    assert read(tmp_path, blob["uri"]) == data
    assert (blob["container"], blob["name"], blob["size"]) == (container, "in/data.csv", len(data))

    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    good, _ = await az(
        "Download",
        {
            "container": container,
            "name": "in/data.csv",
            "expectedChecksum": sha,
            "checksumAlgorithm": "SHA_256",
        },
        tmp_path,
    )
    assert good.state == "SUCCESS", good.error
    wrong = hashlib.md5(b"other").hexdigest()
    bad, _ = await az(
        "Download",
        {"container": container, "name": "in/data.csv", "expectedChecksum": wrong},
        tmp_path,
    )
    assert bad.state == "FAILED"
    assert "Checksum mismatch for 'in/data.csv' using MD5 (source: expectedChecksum)" in (
        bad.error or ""
    )
    nonsense, _ = await az(
        "Download",
        {"container": container, "name": "in/data.csv", "expectedChecksum": "xyz"},
        tmp_path,
    )
    assert "is not a valid MD5 digest" in (nonsense.error or "")


async def test_upload_many_list_filters_and_directories(tmp_path: Path) -> None:
    container = await new_container(tmp_path)
    a = await put(tmp_path, "a.txt", b"A")
    b = await put(tmp_path, "b.json", b'{"b": 2}')
    up, _ = await az("Upload", {"container": container, "name": "batch", "from": [a, b]}, tmp_path)
    assert up.state == "SUCCESS", up.error
    assert "blob" not in up.outputs
    assert [x["name"] for x in up.outputs["blobs"]] == ["batch/a.txt", "batch/b.json"]
    named, _ = await az(
        "Upload", {"container": container, "name": "named/", "from": {"one.txt": a}}, tmp_path
    )
    assert named.state == "SUCCESS", named.error
    assert named.outputs["blob"]["name"] == "named/one.txt"

    listed, _ = await az("List", {"container": container, "prefix": "batch/"}, tmp_path)
    assert listed.state == "SUCCESS", listed.error
    blobs = listed.outputs["blobs"]
    assert [x["name"] for x in blobs] == ["batch/a.txt", "batch/b.json"]
    assert blobs[0]["size"] == 1
    assert blobs[0]["etag"]
    assert blobs[0]["lastModified"].endswith("Z")
    assert listed.metrics == {"blobs.count": 2}

    regex, _ = await az("List", {"container": container, "regexp": r".*\.json"}, tmp_path)
    assert [x["name"] for x in regex.outputs["blobs"]] == ["batch/b.json"]
    folders, _ = await az(
        "List", {"container": container, "delimiter": "/", "filter": "DIRECTORY"}, tmp_path
    )
    assert [x["name"] for x in folders.outputs["blobs"]] == ["batch/", "named/"]
    top_files, _ = await az("List", {"container": container, "delimiter": "/"}, tmp_path)
    assert top_files.outputs["blobs"] == []
    capped, ctx = await az("List", {"container": container, "maxFiles": 1}, tmp_path)
    assert len(capped.outputs["blobs"]) == 1
    assert any("maxFiles limit is 1" in line.message for line in ctx.logs)


async def test_downloads_move_then_deletelist(tmp_path: Path) -> None:
    container = await new_container(tmp_path)
    for name in ("one.csv", "two.csv", "skip.txt"):
        await upload(tmp_path, container, f"inbox/{name}", name.encode())
    got, _ = await az(
        "Downloads",
        {
            "container": container,
            "prefix": "inbox/",
            "regexp": r".*\.csv",
            "action": "MOVE",
            "moveTo": {"container": container, "name": "archive"},
        },
        tmp_path,
    )
    assert got.state == "SUCCESS", got.error
    assert sorted(x["name"] for x in got.outputs["blobs"]) == ["inbox/one.csv", "inbox/two.csv"]
    assert read(tmp_path, got.outputs["outputFiles"]["inbox/two.csv"]) == b"two.csv"
    left, _ = await az("List", {"container": container}, tmp_path)
    assert [x["name"] for x in left.outputs["blobs"]] == [
        "archive/one.csv",
        "archive/two.csv",
        "inbox/skip.txt",
    ]

    gone, _ = await az(
        "DeleteList", {"container": container, "prefix": "archive/", "concurrent": 2}, tmp_path
    )
    assert gone.state == "SUCCESS", gone.error
    assert gone.outputs == {"count": 2, "size": len(b"one.csv") + len(b"two.csv")}
    assert gone.metrics == {"blobs.count": 2, "blobs.size": 14}
    empty, _ = await az(
        "DeleteList", {"container": container, "prefix": "nothing/", "errorOnEmpty": True}, tmp_path
    )
    assert empty.state == "FAILED"
    assert f"Unable to find any files to delete on {container}" in (empty.error or "")


async def test_copy_delete_shared_access_and_missing_blobs(tmp_path: Path) -> None:
    container = await new_container(tmp_path)
    other = await new_container(tmp_path)
    await upload(tmp_path, container, "reports/r.pdf", b"%PDF-1.7 fake")
    copied, _ = await az(
        "Copy",
        {
            "from": {"container": container, "name": "reports/r.pdf"},
            "to": {"container": other, "name": "copies/r.pdf"},
            "delete": True,
        },
        tmp_path,
    )
    assert copied.state == "SUCCESS", copied.error
    assert copied.outputs == {"blob": {"container": other, "name": "copies/r.pdf", "size": 13}}
    missing, _ = await az("Download", {"container": container, "name": "reports/r.pdf"}, tmp_path)
    assert missing.state == "FAILED"
    assert f"az://{container}/reports/r.pdf" in (missing.error or "")
    assert "BlobNotFound" in (missing.error or "")

    expiry = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    sas, _ = await az(
        "SharedAccess",
        {
            "container": other,
            "name": "copies/r.pdf",
            "expirationDate": expiry,
            "permissions": ["READ"],
        },
        tmp_path,
    )
    assert sas.state == "SUCCESS", sas.error
    link = sas.outputs["uri"]
    assert link.startswith(f"{azsvc.endpoint(AZURITE_PORT)}/{other}/copies/r.pdf?")
    async with httpx.AsyncClient() as http:
        fetched = await http.get(link)
        assert fetched.status_code == 200
        assert fetched.content == b"%PDF-1.7 fake"
        # Read only: the same link cannot overwrite the blob.
        denied = await http.put(link, content=b"x", headers={"x-ms-blob-type": "BlockBlob"})
        assert denied.status_code == 403

    deleted, _ = await az("Delete", {"container": other, "name": "copies/r.pdf"}, tmp_path)
    assert deleted.state == "SUCCESS", deleted.error
    assert deleted.outputs == {"blob": {"container": other, "name": "copies/r.pdf", "size": 13}}
    again, _ = await az("Delete", {"container": other, "name": "copies/r.pdf"}, tmp_path)
    assert again.state == "FAILED"
    assert "BlobNotFound" in (again.error or "")


async def test_credentials_sas_and_wrong_keys_are_the_servers_answer_masked(
    tmp_path: Path,
) -> None:
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    container = await new_container(tmp_path)
    await upload(tmp_path, container, "x.txt", b"x")
    token = generate_account_sas(
        azsvc.ACCOUNT,
        azsvc.ACCOUNT_KEY,
        ResourceTypes(container=True, object=True),
        AccountSasPermissions(read=True, list=True),
        datetime.now(UTC) + timedelta(hours=1),
    )
    by_sas = {"endpoint": azsvc.endpoint(AZURITE_PORT), "sasToken": token}
    listed, _ = await az("List", {"container": container}, tmp_path, connection=by_sas)
    assert listed.state == "SUCCESS", listed.error
    assert [x["name"] for x in listed.outputs["blobs"]] == ["x.txt"]
    refused, _ = await az(
        "Delete", {"container": container, "name": "x.txt"}, tmp_path, connection=by_sas
    )
    assert refused.state == "FAILED"
    assert "403" in (refused.error or "")

    wrong_key = "AAAA" + azsvc.ACCOUNT_KEY[4:]
    for connection in (
        {**AZURE_KEY_CONNECTION, "sharedKeyAccountAccessKey": wrong_key},
        {"connectionString": azsvc.connection_string(AZURITE_PORT, wrong_key)},
    ):
        outcome, ctx = await az("List", {"container": container}, tmp_path, connection=connection)
        assert outcome.state == "FAILED"
        assert "Server failed to authenticate the request" in (outcome.error or "")
        assert "AuthorizationFailure" in (outcome.error or "")
        assert f"az://{container}/" in (outcome.error or "")
        assert wrong_key in ctx.secrets
        assert wrong_key not in (mask(outcome.error, ctx.secrets) or "")
        assert all(wrong_key not in line.message for line in ctx.logs)
    forged = token.replace("sig=", "sig=AAAA")
    outcome, ctx = await az(
        "List", {"container": container}, tmp_path, connection={**by_sas, "sasToken": forged}
    )
    assert outcome.state == "FAILED"
    assert "403" in (outcome.error or "")
    assert forged in ctx.secrets

    nocontainer, _ = await az("List", {"container": unique("absent")}, tmp_path)
    assert "ContainerNotFound" in (nocontainer.error or "")
    noendpoint, _ = await az(
        "List",
        {"container": container},
        tmp_path,
        connection={"sharedKeyAccountName": "a", "sharedKeyAccountAccessKey": "b"},
    )
    assert "property 'endpoint' is required" in (noendpoint.error or "")
    unsigned, _ = await az(
        "SharedAccess",
        {
            "container": container,
            "name": "x.txt",
            "expirationDate": "2099-01-01T00:00:00Z",
            "permissions": ["READ"],
        },
        tmp_path,
        connection={"endpoint": by_sas["endpoint"]},
    )
    assert "Token credential is only supported with HTTPS" in (unsigned.error or "")
    # Over HTTPS the default credential is built (and never asked: there is nothing to sign).
    unsigned, _ = await az(
        "SharedAccess",
        {
            "container": container,
            "name": "x.txt",
            "expirationDate": "2099-01-01T00:00:00Z",
            "permissions": ["READ"],
        },
        tmp_path,
        connection={"endpoint": "https://127.0.0.1:9/acct"},
    )
    assert "signed with the account key" in (unsigned.error or "")
    bad_permission, _ = await az(
        "SharedAccess",
        {
            "container": container,
            "name": "x.txt",
            "expirationDate": "2099-01-01T00:00:00Z",
            "permissions": ["SUDO"],
        },
        tmp_path,
    )
    assert "property 'permissions'" in (bad_permission.error or "")


async def test_trigger_fires_once_per_new_or_changed_blob_and_moves_after(
    tmp_path: Path,
) -> None:
    container = await new_container(tmp_path)
    for name in ("a.csv", "b.csv"):
        await upload(tmp_path, container, f"in/{name}", name.encode())
    kv = MemoryKV()
    keep = Trigger.model_validate(
        {
            "id": "watch",
            "type": P + "Trigger",
            "container": container,
            "prefix": "in/",
            "interval": "PT1S",
            **AZURE_CONNECTION,
        }
    )
    first = await keep.poll(poll_context(tmp_path, kv))
    assert first is not None
    blobs = first.variables["blobs"]
    assert sorted(b["name"] for b in blobs) == ["in/a.csv", "in/b.csv"]
    assert {b["changeType"] for b in blobs} == {"CREATE"}
    one = next(b for b in blobs if b["name"] == "in/a.csv")
    assert one["container"] == container
    assert one["etag"]
    assert "/trigger/watch/" in one["uri"]
    assert read(tmp_path, one["uri"]) == b"a.csv"
    assert first.after is not None
    await first.after()
    assert await keep.poll(poll_context(tmp_path, kv)) is None  # nothing new

    await upload(tmp_path, container, "in/a.csv", b"a.csv, changed")
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
            "container": container,
            "prefix": "in/",
            "action": "MOVE",
            "moveTo": {"name": "done"},
            **AZURE_CONNECTION,
        }
    )
    moved = await move.poll(poll_context(tmp_path, MemoryKV(), "mover"))
    assert moved is not None
    assert moved.after is not None
    listed, _ = await az("List", {"container": container}, tmp_path)
    assert len(listed.outputs["blobs"]) == 2  # nothing moved before the execution exists
    await moved.after()
    listed, _ = await az("List", {"container": container}, tmp_path)
    assert [b["name"] for b in listed.outputs["blobs"]] == ["done/a.csv", "done/b.csv"]


async def test_trigger_with_a_wrong_key_raises_the_servers_answer(tmp_path: Path) -> None:
    wrong = "AAAA" + azsvc.ACCOUNT_KEY[4:]
    trigger = Trigger.model_validate(
        {
            "id": "watch",
            "type": P + "Trigger",
            "container": "whatever",
            "connectionString": azsvc.connection_string(AZURITE_PORT, wrong),
        }
    )
    with pytest.raises(Exception, match="AuthorizationFailure"):
        await trigger.poll(poll_context(tmp_path, MemoryKV()))
