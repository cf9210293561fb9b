"""io.kestra.plugin.fs.sftp.* against a real SFTP server: OpenSSH sshd from deploy/local
(`services.py up sftp`), key authentication with the key pair it generated."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from deploy.local.localsvc.config import load_config
from deploy.local.localsvc.sftp import login_user
from executors.plugins.fs_remote_trigger import SftpTrigger
from tests.remote_support import MemoryKV, poll_context, put, read, run

pytestmark = pytest.mark.sftp

P = "io.kestra.plugin.fs.sftp."
CFG = load_config()
SFTP_DIR = CFG.server_dir("sftp")


def conn(**extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": str(CFG.ports["sftp"]),
        "username": login_user(),
        "keyfile": (SFTP_DIR / "client_key").read_text(),
        **extra,
    }


def folder() -> str:
    return f"/t-{uuid.uuid4().hex[:10]}"


def served(path: str) -> Path:
    """Where the server keeps a path (its chroot when it runs as root)."""
    base = SFTP_DIR / "chroot" if os.geteuid() == 0 else Path("/")
    return base / path.lstrip("/")


async def test_sftp_round_trip(tmp_path: Path) -> None:
    base = folder()
    data = b"payload\n" * 4096
    uri = await put(tmp_path, "data.bin", data)
    up, _ = await run(P + "Upload", {"from": uri, "to": f"{base}/in/data.bin"}, tmp_path, **conn())
    assert up.state == "SUCCESS", up.error
    assert up.outputs["to"] == f"sftp://127.0.0.1:{CFG.ports['sftp']}{base}/in/data.bin"
    assert served(f"{base}/in/data.bin").read_bytes() == data

    listed, _ = await run(P + "List", {"from": f"{base}/in"}, tmp_path, **conn())
    assert listed.state == "SUCCESS", listed.error
    [item] = listed.outputs["files"]
    assert item["path"] == f"{base}/in/data.bin"
    assert item["size"] == len(data)
    assert item["userId"] == os.geteuid()
    assert item["accessDate"].endswith("Z")

    got, _ = await run(P + "Download", {"from": f"{base}/in/data.bin"}, tmp_path, **conn())
    assert got.state == "SUCCESS", got.error
    assert read(tmp_path, got.outputs["to"]) == data

    moved, _ = await run(
        P + "Move", {"from": f"{base}/in/data.bin", "to": f"{base}/out/"}, tmp_path, **conn()
    )
    assert moved.state == "SUCCESS", moved.error
    assert moved.outputs["to"].endswith(f"{base}/out/data.bin")
    gone, _ = await run(P + "Delete", {"uri": base, "recursive": True}, tmp_path, **conn())
    assert gone.outputs["deleted"] is True
    assert not served(base).exists()


async def test_sftp_wrong_key_fails_with_the_servers_answer(tmp_path: Path) -> None:
    import paramiko

    other = paramiko.Ed25519Key.generate() if hasattr(paramiko.Ed25519Key, "generate") else None
    key = paramiko.RSAKey.generate(2048) if other is None else other
    buffer = __import__("io").StringIO()
    key.write_private_key(buffer)
    outcome, _ = await run(P + "List", {"from": "/"}, tmp_path, **conn(keyfile=buffer.getvalue()))
    assert outcome.state == "FAILED"
    assert "Authentication failed" in (outcome.error or "")
    garbage, _ = await run(P + "List", {"from": "/"}, tmp_path, **conn(keyfile="not a key"))
    assert "property 'keyfile'" in (garbage.error or "")


async def test_sftp_trigger_deletes_after_the_execution_exists(tmp_path: Path) -> None:
    base = folder()
    target = served(f"{base}/drop")
    target.mkdir(parents=True)
    (target / "a.txt").write_bytes(b"a")
    trigger = SftpTrigger.model_validate(
        {"id": "watch", "type": P + "Trigger", "from": f"{base}/drop", "action": "DELETE", **conn()}
    )
    poll = await trigger.poll(poll_context(tmp_path, MemoryKV()))
    assert poll is not None
    assert poll.after is not None
    [fired] = poll.variables["files"]
    assert read(tmp_path, fired["path"]) == b"a"
    assert (target / "a.txt").exists()
    await poll.after()
    assert not (target / "a.txt").exists()
    assert await trigger.poll(poll_context(tmp_path, MemoryKV())) is None
