"""io.kestra.plugin.fs.ftp.* / ftps.* against a real FTP server: pyftpdlib, started here in a
thread on 127.0.0.1 (plain FTP, and explicit FTPS with a self-signed certificate)."""

from __future__ import annotations

import hashlib
import socket
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from executors.plugins.fs_remote_trigger import FtpTrigger
from tests.remote_support import MemoryKV, poll_context, put, read, run
from tests.tls_support import self_signed

USER, PASSWORD = "alice", "ftp-secret-123"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _certificate(folder: Path) -> Path:
    cert, key = self_signed("localhost")
    pem = folder / "server.pem"
    pem.write_bytes(key + cert)
    return pem


class FtpServer:
    def __init__(self, root: Path, tls: bool) -> None:
        with warnings.catch_warnings():
            # pyftpdlib still imports asyncore/asynchat (deprecated in 3.11, its problem).
            warnings.simplefilter("ignore", DeprecationWarning)
            from pyftpdlib.authorizers import DummyAuthorizer
            from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
            from pyftpdlib.servers import FTPServer

        authorizer = DummyAuthorizer()
        authorizer.add_user(USER, PASSWORD, str(root), perm="elradfmwMT")
        handler: Any
        if tls:
            handler = type("Handler", (TLS_FTPHandler,), {})
            handler.certfile = str(_certificate(root.parent))
            handler.tls_control_required = True
            handler.tls_data_required = True
        else:
            handler = type("Handler", (FTPHandler,), {})
        handler.authorizer = authorizer
        handler.passive_ports = None
        self.port = _free_port()
        self.server = FTPServer(("127.0.0.1", self.port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"timeout": 0.1})
        self.thread.start()

    def close(self) -> None:
        self.server.close_all()
        self.thread.join(timeout=10)


@pytest.fixture
def ftp(tmp_path: Path) -> Iterator[tuple[FtpServer, Path]]:
    root = tmp_path / "ftp-root"
    root.mkdir()
    server = FtpServer(root, tls=False)
    yield server, root
    server.close()


@pytest.fixture
def ftps(tmp_path: Path) -> Iterator[tuple[FtpServer, Path]]:
    root = tmp_path / "ftps-root"
    root.mkdir()
    server = FtpServer(root, tls=True)
    yield server, root
    server.close()


def conn(server: FtpServer, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": str(server.port),
        "username": USER,
        "password": PASSWORD,
        **extra,
    }


async def test_ftp_upload_list_download_move_delete(
    ftp: tuple[FtpServer, Path], tmp_path: Path
) -> None:
    server, root = ftp
    P = "io.kestra.plugin.fs.ftp."
    data = b"col\n" + b"x\n" * 5000
    uri = await put(tmp_path, "orders.csv", data)
    up, _ = await run(P + "Upload", {"from": uri, "to": "/in/orders.csv"}, tmp_path, **conn(server))
    assert up.state == "SUCCESS", up.error
    assert up.outputs["to"] == f"ftp://127.0.0.1:{server.port}/in/orders.csv"
    assert (root / "in" / "orders.csv").read_bytes() == data
    again, _ = await run(
        P + "Upload",
        {"from": uri, "to": "/in/orders.csv", "overwrite": False},
        tmp_path,
        **conn(server),
    )
    assert again.state == "FAILED"
    assert "already exists" in (again.error or "")

    (root / "in" / "b.txt").write_bytes(b"bee")
    listed, _ = await run(
        P + "List", {"from": "/in", "sort": "NAME_DESC"}, tmp_path, **conn(server)
    )
    assert listed.state == "SUCCESS", listed.error
    files = listed.outputs["files"]
    assert [f["name"] for f in files] == ["orders.csv", "b.txt"]
    assert files[0]["path"] == "/in/orders.csv"
    assert files[0]["size"] == len(data)
    assert files[0]["fileType"] == "FILE"
    assert files[0]["updatedDate"]

    got, _ = await run(P + "Download", {"from": "/in/orders.csv"}, tmp_path, **conn(server))
    assert got.state == "SUCCESS", got.error
    assert read(tmp_path, got.outputs["to"]) == data
    assert got.outputs["checksum"] == hashlib.sha256(data).hexdigest()
    bad, _ = await run(
        P + "Download",
        {"from": "/in/orders.csv", "validateChecksum": True, "checksumExpected": "00"},
        tmp_path,
        **conn(server),
    )
    assert bad.state == "FAILED"
    assert "Checksum mismatch" in (bad.error or "")

    moved, _ = await run(
        P + "Move", {"from": "/in/b.txt", "to": "/archive/"}, tmp_path, **conn(server)
    )
    assert moved.state == "SUCCESS", moved.error
    assert (root / "archive" / "b.txt").read_bytes() == b"bee"
    gone, _ = await run(
        P + "Delete", {"uri": "/in", "regExp": r".*\.csv"}, tmp_path, **conn(server)
    )
    assert gone.outputs["deleted"] is True
    assert not (root / "in" / "orders.csv").exists()
    missing, _ = await run(
        P + "Delete", {"uri": "/nope.txt", "errorOnMissing": True}, tmp_path, **conn(server)
    )
    assert "Unable to find file" in (missing.error or "")


async def test_ftp_uploads_downloads_with_action(
    ftp: tuple[FtpServer, Path], tmp_path: Path
) -> None:
    server, root = ftp
    P = "io.kestra.plugin.fs.ftp."
    a = await put(tmp_path, "a.json", b"{}")
    b = await put(tmp_path, "b.json", b"[]")
    ups, _ = await run(P + "Uploads", {"from": [a, b], "to": "/drop"}, tmp_path, **conn(server))
    assert ups.state == "SUCCESS", ups.error
    assert len(ups.outputs["files"]) == 2
    downs, _ = await run(
        P + "Downloads",
        {"from": "/drop", "action": "MOVE", "moveDirectory": "/done"},
        tmp_path,
        **conn(server),
    )
    assert downs.state == "SUCCESS", downs.error
    assert read(tmp_path, downs.outputs["outputFiles"]["b.json"]) == b"[]"
    assert sorted(p.name for p in (root / "done").iterdir()) == ["a.json", "b.json"]
    assert list((root / "drop").iterdir()) == []


async def test_ftp_wrong_password_is_the_servers_answer_and_masked(
    ftp: tuple[FtpServer, Path], tmp_path: Path
) -> None:
    server, _ = ftp
    outcome, ctx = await run(
        "io.kestra.plugin.fs.ftp.List",
        {"from": "/"},
        tmp_path,
        **conn(server, password="wrong-pass-999"),
    )
    assert outcome.state == "FAILED"
    assert "530" in (outcome.error or "")
    assert all("wrong-pass-999" not in line.message for line in ctx.logs)
    proxy, _ = await run(
        "io.kestra.plugin.fs.ftp.List", {"from": "/"}, tmp_path, **conn(server, proxyHost="proxy")
    )
    assert "proxies are not supported" in (proxy.error or "")


async def test_ftps_explicit_checks_the_certificate_unless_told_not_to(
    ftps: tuple[FtpServer, Path], tmp_path: Path
) -> None:
    server, root = ftps
    P = "io.kestra.plugin.fs.ftps."
    uri = await put(tmp_path, "secret.txt", b"over TLS")
    refused, _ = await run(P + "Upload", {"from": uri, "to": "/s.txt"}, tmp_path, **conn(server))
    assert refused.state == "FAILED"
    assert "certificate" in (refused.error or "").lower()
    insecure = conn(server, insecureTrustAllCertificates=True)
    up, ctx = await run(P + "Upload", {"from": uri, "to": "/s.txt"}, tmp_path, **insecure)
    assert up.state == "SUCCESS", up.error
    assert (root / "s.txt").read_bytes() == b"over TLS"
    assert any("insecureTrustAllCertificates" in line.message for line in ctx.logs)
    got, _ = await run(P + "Download", {"from": "/s.txt"}, tmp_path, **insecure)
    assert read(tmp_path, got.outputs["to"]) == b"over TLS"


async def test_ftp_trigger_fires_new_then_changed_files(
    ftp: tuple[FtpServer, Path], tmp_path: Path
) -> None:
    server, root = ftp
    (root / "in").mkdir()
    (root / "in" / "one.csv").write_bytes(b"1")
    kv = MemoryKV()
    trigger = FtpTrigger.model_validate(
        {
            "id": "watch",
            "type": "io.kestra.plugin.fs.ftp.Trigger",
            "from": "/in",
            "interval": "PT1S",
            **conn(server),
        }
    )
    first = await trigger.poll(poll_context(tmp_path, kv))
    assert first is not None
    assert first.after is not None
    [fired] = first.variables["files"]
    assert fired["name"] == "one.csv"
    assert fired["changeType"] == "CREATE"
    assert read(tmp_path, fired["path"]) == b"1"
    await first.after()
    assert await trigger.poll(poll_context(tmp_path, kv)) is None
    (root / "in" / "one.csv").write_bytes(b"1 and more")
    changed = await trigger.poll(poll_context(tmp_path, kv))
    assert changed is not None
    assert changed.variables["files"][0]["changeType"] == "UPDATE"
