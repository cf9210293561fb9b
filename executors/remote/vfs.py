"""SFTP, FTP and FTPS connections (fsspec's ``sftp`` on paramiko, ``ftp`` on ftplib).

Connection properties (Kestra's ``AbstractVfsTask`` + ``SftpInterface`` / ``FtpInterface`` /
``FtpsInterface``): ``host`` (required), ``port`` (22 / 21 / 990), ``username``,
``password``; ``rootDir`` (true: paths are relative to the user's home directory, so ``/in``
is ``~/in``); SFTP: ``keyfile`` (a PEM or OpenSSH private key, used instead of the password)
+ ``passphrase``; host keys are not checked (Kestra: ``StrictHostKeyChecking=no``); FTP:
``passiveMode`` (true), ``remoteIpVerification`` (true: the data connection goes to the control
connection's address, whatever address PASV names), ``options.connectionTimeout`` /
``socketTimeout`` (PT30S); FTPS: ``mode`` EXPLICIT (AUTH TLS) or IMPLICIT (TLS from the first
byte), ``dataChannelProtectionLevel`` P (encrypted) or C (clear),
``insecureTrustAllCertificates`` (false: the server certificate must be valid for ``host``;
true logs Kestra's warning).

Not supported, and refused with a clear message when set: the proxy properties (``proxyHost``,
``proxyAddress``, ``proxyPort``, ``proxyType``, ``proxyUser(name)``, ``proxyPassword``).
Accepted and ignored: ``keyExchangeAlgorithm`` and ``enableSshRsa1`` (paramiko negotiates
its own algorithms; a WARN line says so), ``dataTimeout``, ``controlKeepAlive*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import io
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, TypeVar

from executors.base import TaskContext, TaskError, error_message
from executors.plugin import render_bool, render_seconds, render_str

T = TypeVar("T")

DEFAULT_PORTS = {"sftp": "22", "ftp": "21", "ftps": "990"}
# Kestra's FTP timeouts default to 30 s; SFTP's session timeout is 10 s.
FTP_TIMEOUT_S = 30.0
SFTP_TIMEOUT_S = 10.0
_PROXY_PROPS = ("proxyHost", "proxyAddress", "proxyPort", "proxyType", "proxyUser",
                "proxyUsername", "proxyPassword")  # fmt: skip


@dataclass(slots=True)
class Remote:
    """One open connection: an fsspec file system and where paths start."""

    scheme: str
    host: str
    port: int
    fs: Any
    home: str  # the absolute path "/" means (the user's home with rootDir)

    def path(self, user_path: str) -> str:
        """The server path of a path as the user writes it."""
        clean = "/" + user_path.strip().lstrip("/")
        if self.home in ("", "/"):
            return clean
        return self.home.rstrip("/") + clean

    def user_path(self, server_path: str) -> str:
        """A server path as the user would write it (relative to ``home``)."""
        path = "/" + server_path.lstrip("/")
        home = self.home.rstrip("/")
        if home and (path == home or path.startswith(home + "/")):
            path = path[len(home) :] or "/"
        return path

    def uri(self, user_path: str) -> str:
        """Kestra's ``uriWithoutAuth``: ``sftp://host:port/path``."""
        return f"{self.scheme}://{self.host}:{self.port}/{user_path.lstrip('/')}"

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A blocking file-system call off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)


def _load_key(text: str, passphrase: str | None) -> Any:
    import paramiko

    errors = []
    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return kind.from_private_key(io.StringIO(text), password=passphrase)
        except paramiko.PasswordRequiredException as exc:
            raise TaskError("property 'keyfile': the key is encrypted; set 'passphrase'") from exc
        except (paramiko.SSHException, ValueError) as exc:
            errors.append(str(exc))
    raise TaskError(f"property 'keyfile': not a private key paramiko can read ({errors[-1]})")


class _FTPFS:
    """Builds fsspec's FTP file system with the TLS, passive-mode and timeout settings."""

    @staticmethod
    def open(
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        *,
        tls: str | None,
        protect: bool,
        verify: bool,
        passive: bool,
        timeout: float,
    ) -> Any:
        from fsspec.implementations.ftp import FTPFileSystem

        class _FS(FTPFileSystem):  # type: ignore[misc]
            def _connect(self) -> None:
                context = ssl.create_default_context()
                if not verify:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                if tls == "IMPLICIT":
                    client: ftplib.FTP = _ImplicitFTPTLS(context=context, timeout=timeout)
                elif tls == "EXPLICIT":
                    client = ftplib.FTP_TLS(context=context, timeout=timeout)  # noqa: S321 - FTPS
                else:
                    client = ftplib.FTP(timeout=timeout)  # noqa: S321 - FTP on purpose
                # Set first: fsspec's __del__ closes self.ftp, also after a failed login.
                self.ftp = client
                client.connect(host, port)
                client.login(username or "anonymous", password or "")
                if isinstance(client, ftplib.FTP_TLS) and protect:
                    client.prot_p()
                client.set_pasv(passive)

        return _FS(host, port=port, username=username, password=password, timeout=timeout,
                   skip_instance_cache=True)  # fmt: skip


class _ImplicitFTPTLS(ftplib.FTP_TLS):
    """FTPS in implicit mode: the control connection is TLS from its first byte (ftplib
    assigns ``sock`` once connected; it is wrapped there)."""

    _sock: Any = None

    @property
    def sock(self) -> Any:
        return self._sock

    @sock.setter
    def sock(self, value: Any) -> None:
        if value is not None and not isinstance(value, ssl.SSLSocket):
            value = self.context.wrap_socket(value, server_hostname=self.host)
        self._sock = value


def _rendered(ctx: TaskContext, task: Any, name: str) -> str | None:
    return render_str(ctx, getattr(task, name, None), name) or None


@contextlib.asynccontextmanager
async def connect(ctx: TaskContext, task: Any, scheme: str) -> AsyncIterator[Remote]:
    """A connection for the block, closed after."""
    for name in _PROXY_PROPS:
        if getattr(task, name, None) is not None:
            raise TaskError(f"property '{name}': proxies are not supported by Headwater's {scheme}")
    host = _rendered(ctx, task, "host")
    if not host:
        raise TaskError("property 'host' is required")
    port_text = _rendered(ctx, task, "port") or DEFAULT_PORTS[scheme]
    try:
        port = int(port_text)
    except ValueError as exc:
        raise TaskError(f"property 'port': {port_text!r} is not a port number") from exc
    username = _rendered(ctx, task, "username")
    password = _rendered(ctx, task, "password")
    if password:
        ctx.secrets = ctx.secrets | {password}
    root_dir = render_bool(ctx, getattr(task, "rootDir", None), "rootDir", True)
    where = f"{scheme}://{host}:{port}"
    try:
        if scheme == "sftp":
            fs = await asyncio.to_thread(_sftp, ctx, task, host, port, username, password)
        else:
            fs = await asyncio.to_thread(_ftp, ctx, task, scheme, host, port, username, password)
    except TaskError:
        raise
    except Exception as exc:
        raise TaskError(f"cannot connect to {where}: {error_message(exc)}") from exc
    try:
        home = "/"
        if root_dir:
            home = await asyncio.to_thread(_home, fs, scheme)
        yield Remote(scheme, host, port, fs, home)
    finally:
        await asyncio.to_thread(_close, fs, scheme)


def _sftp(
    ctx: TaskContext, task: Any, host: str, port: int, user: str | None, password: str | None
) -> Any:
    from fsspec.implementations.sftp import SFTPFileSystem

    kwargs: dict[str, Any] = {"port": port, "username": user, "timeout": SFTP_TIMEOUT_S,
                              "allow_agent": False, "look_for_keys": False}  # fmt: skip
    keyfile = _rendered(ctx, task, "keyfile")
    if keyfile:
        passphrase = _rendered(ctx, task, "passphrase")
        ctx.secrets = ctx.secrets | {keyfile} | ({passphrase} if passphrase else set())
        kwargs["pkey"] = _load_key(keyfile, passphrase)
    else:
        kwargs["password"] = password
    if getattr(task, "keyExchangeAlgorithm", None) is not None:
        ctx.log("WARN", "keyExchangeAlgorithm is ignored: paramiko negotiates the key exchange")
    return SFTPFileSystem(host, skip_instance_cache=True, **kwargs)


def _ftp(
    ctx: TaskContext,
    task: Any,
    scheme: str,
    host: str,
    port: int,
    user: str | None,
    password: str | None,
) -> Any:
    options = getattr(task, "options", None)
    timeout = FTP_TIMEOUT_S
    if options is not None and options.connectionTimeout is not None:
        timeout = render_seconds(ctx, options.connectionTimeout, "options.connectionTimeout") or 30
    tls = None
    protect = False
    verify = True
    if scheme == "ftps":
        mode = (_rendered(ctx, task, "mode") or "EXPLICIT").upper()
        if mode not in ("EXPLICIT", "IMPLICIT"):
            raise TaskError(f"property 'mode': {mode!r} is not EXPLICIT or IMPLICIT")
        tls = mode
        level = (_rendered(ctx, task, "dataChannelProtectionLevel") or "P").upper()
        if level not in ("P", "C", "S", "E"):
            raise TaskError(f"property 'dataChannelProtectionLevel': {level!r} is not P, C, S or E")
        protect = level != "C"
        if render_bool(ctx, getattr(task, "insecureTrustAllCertificates", None), "insecure"):
            verify = False
            ctx.log(
                "WARN",
                "`insecureTrustAllCertificates` is enabled: server certificate validation is "
                "disabled for this FTPS connection. This must not be used in production, only "
                "for testing against self-signed or untrusted certificates.",
            )
    passive = render_bool(ctx, getattr(task, "passiveMode", None), "passiveMode", True)
    return _FTPFS.open(host, port, user, password, tls=tls, protect=protect, verify=verify,
                       passive=passive, timeout=timeout)  # fmt: skip


def _home(fs: Any, scheme: str) -> str:
    if scheme == "sftp":
        return str(fs.ftp.normalize("."))
    return str(fs.ftp.pwd())


def _close(fs: Any, scheme: str) -> None:
    with contextlib.suppress(Exception):
        if scheme == "sftp":
            fs.ftp.close()
            fs.client.close()
        else:
            fs.ftp.close()


def entry(remote: Remote, info: dict[str, Any]) -> dict[str, Any]:
    """Kestra's ``File`` of an fsspec ``ls`` entry."""
    name = str(info.get("name", ""))
    kind = "FOLDER" if info.get("type") == "directory" else "FILE"
    updated: datetime | None = None
    if isinstance(info.get("mtime"), (int, float)):
        updated = datetime.fromtimestamp(float(info["mtime"]), UTC)
    elif isinstance(info.get("mtime"), datetime):
        updated = info["mtime"].astimezone(UTC)
    elif isinstance(info.get("modify"), str):
        with contextlib.suppress(ValueError):
            updated = datetime.strptime(info["modify"][:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    out: dict[str, Any] = {
        "path": remote.user_path(name),
        "name": PurePosixPath(name).name,
        "fileType": kind,
        "symbolicLink": info.get("islink") is True or info.get("type") == "link",
        "size": int(info["size"]) if kind == "FILE" and info.get("size") is not None else None,
        "updatedDate": updated,
    }
    for key, field in (("uid", "userId"), ("gid", "groupId"), ("permissions", "permissions")):
        if isinstance(info.get(key), int):
            out[field] = info[key]
    if isinstance(info.get("time"), datetime):  # SFTP's access time
        out["accessDate"] = info["time"].astimezone(UTC)
    return out
