"""Kestra's file-transfer tasks, ``io.kestra.plugin.fs.{sftp,ftp,ftps}.*``: one implementation,
three protocols (:mod:`executors.remote.vfs` holds the connection properties).

What Kestra does (kestra-io/plugin-fs, Apache Commons VFS), and what this module ports:

- ``Upload``: ``from`` (a ``kestra://`` URI, required), ``to`` (default: the file name of
  ``from``), ``overwrite`` (true; false fails when the file exists, and a folder is never
  replaced by a file). Outputs ``from``, ``to`` (``<scheme>://host:port/path``).
- ``Uploads``: ``from`` (a URI, a list, a map of file name -> URI, or their JSON text), ``to``
  (a folder, required), ``regExp`` (on the source URI), ``maxFiles`` (25, with a warning),
  ``overwrite`` (true). Output ``files``: the destination URIs.
- ``Download``: ``from`` (required), ``checksumAlgorithm`` (SHA_256; MD5 / SHA_1 warn as weak,
  SHA_512), ``validateChecksum`` + ``checksumExpected`` (case-insensitive; a mismatch fails and
  stores nothing). Outputs ``from``, ``to`` (the ``kestra://`` URI), ``checksum`` (hex).
- ``Downloads``: lists ``from`` (``regExp`` on the full path, ``recursive`` false, files only,
  ``maxFiles`` 25), downloads each, then ``action`` MOVE (into ``moveDirectory``) / DELETE /
  NONE. Outputs ``files`` (each ``File`` with ``path`` the ``kestra://`` URI) and
  ``outputFiles`` (name -> URI).
- ``List``: ``from``, ``regExp``, ``recursive``, ``maxFiles`` 25, ``sort`` (NONE,
  LAST_MODIFIED_ASC/DESC, NAME_ASC/DESC, applied before ``maxFiles``). Output ``files``:
  ``path``, ``name``, ``fileType`` (FILE / FOLDER), ``symbolicLink``, ``size``,
  ``updatedDate``, and over SFTP ``userId``, ``groupId``, ``permissions``.
- ``Delete``: ``uri``, ``errorOnMissing`` (false), ``recursive`` (false), ``regExp`` (then
  ``uri`` is a folder and matching files under it go). Outputs ``uri``, ``deleted``, ``uris``.
- ``Move``: ``from``, ``to`` (a folder when it ends with ``/``: the name is kept; parents are
  created), ``overwrite`` (false). Outputs ``from``, ``to``.

The polling ``Trigger`` is in :mod:`executors.plugins.fs_remote_trigger`.
"""

from __future__ import annotations

import hashlib
import posixpath
from typing import Any, ClassVar, Literal

from pydantic import Field

from executors.base import TaskContext, TaskError
from executors.plugin import TaskPlugin, render_bool, render_str
from executors.remote import common as c
from executors.remote.vfs import Remote, connect, entry
from schemas.flow.common import BoolOrExpr, Duration, FlowModel, IntOrExpr, Str

ALGORITHMS = {"MD5": "md5", "SHA_1": "sha1", "SHA_256": "sha256", "SHA_512": "sha512"}
SORTS = ("NONE", "LAST_MODIFIED_ASC", "LAST_MODIFIED_DESC", "NAME_ASC", "NAME_DESC")
ACTIONS = ("MOVE", "DELETE", "NONE")
_CHUNK = 1024 * 1024


class FtpOptions(FlowModel):
    connectionTimeout: Duration | None = None
    dataTimeout: Duration | None = None
    socketTimeout: Duration | None = None
    controlKeepAliveTimeout: Duration | None = None
    controlKeepAliveReplyTimeout: Duration | None = None


class VfsConnection(FlowModel):
    """The properties of all three protocols (each type declares its own port default)."""

    host: Str
    port: Str | None = None
    username: Str | None = None
    password: Str | None = None
    rootDir: BoolOrExpr = True
    enableSshRsa1: BoolOrExpr | None = None
    proxyHost: Str | None = None
    proxyPort: Str | None = None
    proxyType: Str | None = None


class SftpConnection(VfsConnection):
    keyfile: Str | None = None
    passphrase: Str | None = None
    proxyAddress: Str | None = None
    proxyUser: Str | None = None
    proxyUsername: Str | None = None
    proxyPassword: Str | None = None
    keyExchangeAlgorithm: Str | None = None


class FtpConnection(VfsConnection):
    passiveMode: BoolOrExpr = True
    remoteIpVerification: BoolOrExpr = True
    options: FtpOptions | None = None


class FtpsConnection(FtpConnection):
    mode: Str | None = None
    dataChannelProtectionLevel: Str | None = None
    insecureTrustAllCertificates: BoolOrExpr | None = None


class _VfsTask(TaskPlugin):
    family: ClassVar[str] = "fs"
    scheme: ClassVar[str] = "sftp"

    def remote(self, ctx: TaskContext) -> Any:
        return connect(ctx, self, self.scheme)


async def list_files(
    remote: Remote, ctx: TaskContext, where: str, regexp: str | None, recursive: bool
) -> list[dict[str, Any]]:
    """Kestra's ``VfsService.list``: files (not folders) under ``where`` matching ``regExp``
    (on the full path); an empty list when ``where`` does not exist."""
    pattern = c.compile_regex(regexp, "regExp")
    base = remote.path(where)
    try:
        if recursive:
            found = await remote.run(remote.fs.find, base, withdirs=False, detail=True)
            infos = list(found.values())
        else:
            infos = await remote.run(remote.fs.ls, base, detail=True)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TaskError(f"cannot list {remote.uri(where)}: {exc}") from exc
    out = []
    for info in infos:
        item = entry(remote, info)
        if item["fileType"] != "FILE" or not c.matches(pattern, item["path"]):
            continue
        out.append(item)
    return out


def sort_files(files: list[dict[str, Any]], how: str) -> list[dict[str, Any]]:
    if how.startswith("LAST_MODIFIED"):
        dated = [f for f in files if f.get("updatedDate") is not None]
        undated = [f for f in files if f.get("updatedDate") is None]
        dated.sort(key=lambda f: f["updatedDate"], reverse=how.endswith("DESC"))
        return dated + undated
    if how.startswith("NAME"):
        return sorted(files, key=lambda f: f["name"], reverse=how.endswith("DESC"))
    return files


def limit(ctx: TaskContext, files: list[Any], max_files: int) -> list[Any]:
    if len(files) > max_files:
        ctx.log("WARN", f"Too many files to process ({len(files)}), limiting to {max_files}")
        return files[:max_files]
    return files


def shown(item: dict[str, Any]) -> dict[str, Any]:
    """A File as an output (dates as ISO instants, no nulls)."""
    dates = {k: c.iso(item.get(k)) for k in ("updatedDate", "accessDate")}
    return c.drop_none({**item, **dates})


async def download(
    remote: Remote, ctx: TaskContext, user_path: str, algorithm: str = "SHA_256",
    expected: str | None = None,
) -> tuple[str, str]:  # fmt: skip
    """One remote file into internal storage: (kestra URI, hex checksum)."""
    async with c.staged(ctx, user_path) as path:
        try:
            await remote.run(remote.fs.get_file, remote.path(user_path), str(path))
        except FileNotFoundError as exc:
            raise TaskError(f"{remote.uri(user_path)} does not exist") from exc
        except OSError as exc:
            raise TaskError(f"cannot download {remote.uri(user_path)}: {exc}") from exc
        checksum = await remote.run(_digest, path, ALGORITHMS[algorithm])
        if expected is not None and checksum.lower() != expected.strip().lower():
            raise TaskError(
                f"Checksum mismatch for file '{user_path}' — expected '{expected}' but computed "
                f"'{checksum}' using {algorithm.replace('_', '-')}."
            )
        uri = await c.store(ctx, path, user_path)
    return uri, checksum


def _digest(path: Any, name: str) -> str:
    digest = hashlib.new(name)
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


async def upload(
    remote: Remote, ctx: TaskContext, uri: str, user_path: str, overwrite: bool
) -> str:
    """Kestra's ``VfsService.upload``: one stored file to ``user_path``; its remote URI."""
    source = await c.source_path(ctx, uri)
    target = remote.path(user_path)
    if not overwrite and await remote.run(remote.fs.exists, target):
        if await remote.run(remote.fs.isdir, target) and not user_path.endswith("/"):
            raise TaskError(
                f"Overwrite field is set to `false`. Folder {user_path} will be overwritten with "
                "current file. If you want the folder to be overwritten with the file, set "
                "`overwrite: true`."
            )
        raise TaskError(
            f"File '{user_path}' already exists in the remote server and cannot be overwritten. "
            "Set `overwrite: true` to replace it."
        )
    try:
        parent = posixpath.dirname(target)
        if parent and parent != "/":
            await remote.run(remote.fs.makedirs, parent, exist_ok=True)
        await remote.run(remote.fs.put_file, str(source), target)
    except OSError as exc:
        raise TaskError(f"cannot upload to {remote.uri(user_path)}: {exc}") from exc
    ctx.log("DEBUG", f"File '{uri}' uploaded to '{remote.uri(user_path)}'")
    return remote.uri(user_path)


async def move(remote: Remote, ctx: TaskContext, source: str, target: str, overwrite: bool) -> str:
    """Kestra's ``VfsService.move``; the target path."""
    if not source.endswith("/") and target.endswith("/"):
        target = target + c.file_name(source)
    src, dst = remote.path(source), remote.path(target)
    if not await remote.run(remote.fs.exists, src):
        raise TaskError(f"Unable to find file '{remote.uri(source)}'")
    if await remote.run(remote.fs.exists, dst):
        if not overwrite:
            raise TaskError(
                f"File '{c.file_name(target)}' already exists in the remote server and cannot be "
                "overwritten. If you want to ignore this, set `overwrite` to `true`."
            )
        ctx.log("WARN", f"File '{target}' already exists in the remote server and will be "
                        "overwritten.")  # fmt: skip
        await remote.run(remote.fs.rm_file, dst)
    else:
        parent = posixpath.dirname(dst)
        if parent and parent != "/":
            await remote.run(remote.fs.makedirs, parent, exist_ok=True)
    try:
        await remote.run(remote.fs.mv, src, dst)
    except OSError as exc:
        raise TaskError(f"cannot move {remote.uri(source)} to {remote.uri(target)}: {exc}") from exc
    return target


async def perform_action(
    remote: Remote, ctx: TaskContext, paths: list[str], action: str | None, directory: str | None
) -> None:
    if action == "DELETE":
        for path in paths:
            try:
                await remote.run(remote.fs.rm_file, remote.path(path))
            except FileNotFoundError:
                pass
    elif action == "MOVE":
        if not directory:
            raise TaskError("property 'moveDirectory' is required with the MOVE action")
        folder = directory.rstrip("/") + "/"
        for path in paths:
            await move(remote, ctx, path, folder, True)


class _Upload(_VfsTask):
    from_: Str = Field(alias="from")
    to: Str | None = None
    overwrite: BoolOrExpr = True

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        uri = render_str(ctx, self.from_, "from", required=True) or ""
        if not uri.startswith("kestra://"):
            raise TaskError("'from' must be a Kestra's internal storage URI")
        to = render_str(ctx, self.to, "to") or "/" + c.file_name(uri)
        async with self.remote(ctx) as remote:
            done = await upload(remote, ctx, uri, to, render_bool(ctx, self.overwrite, "", True))
        return {"from": uri, "to": done}


class _Uploads(_VfsTask):
    from_: Any = Field(alias="from")
    to: Str
    regExp: Str | None = None
    maxFiles: IntOrExpr = 25
    overwrite: BoolOrExpr = True

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        files = c.parse_from(ctx, self.from_)
        pattern = c.compile_regex(render_str(ctx, self.regExp, "regExp"), "regExp")
        chosen = [(name, uri) for name, uri in files if c.matches(pattern, uri)]
        chosen = limit(ctx, chosen, c.render_max(ctx, self.maxFiles, "maxFiles", 25))
        to = render_str(ctx, self.to, "to", required=True) or ""
        overwrite = render_bool(ctx, self.overwrite, "overwrite", True)
        out = []
        async with self.remote(ctx) as remote:
            for name, uri in chosen:
                target = to.rstrip("/") + "/" + (name or c.file_name(uri))
                out.append(await upload(remote, ctx, uri, target, overwrite))
        return {"files": out}


class _Download(_VfsTask):
    from_: Str = Field(alias="from")
    validateChecksum: BoolOrExpr = False
    checksumExpected: Str | None = None
    checksumAlgorithm: Str | None = "SHA_256"

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        path = render_str(ctx, self.from_, "from", required=True) or ""
        algorithm = c.render_choice(ctx, self.checksumAlgorithm, "checksumAlgorithm",
                                    tuple(ALGORITHMS)) or "SHA_256"  # fmt: skip
        if algorithm in ("MD5", "SHA_1"):
            ctx.log("WARN", f"Checksum algorithm '{algorithm.replace('_', '-')}' is deprecated "
                            "and considered weak; use SHA_256 or stronger for integrity "
                            "verification.")  # fmt: skip
        expected = None
        if render_bool(ctx, self.validateChecksum, "validateChecksum"):
            expected = render_str(ctx, self.checksumExpected, "checksumExpected")
            if not expected or not expected.strip():
                raise TaskError(
                    "Checksum validation is enabled but no `checksumExpected` value was provided."
                )
        async with self.remote(ctx) as remote:
            uri, checksum = await download(remote, ctx, path, algorithm, expected)
            source = remote.uri(path)
        return {"from": source, "to": uri, "checksum": checksum}


class _Listing(_VfsTask):
    from_: Str = Field(alias="from")
    regExp: Str | None = None
    recursive: BoolOrExpr = False
    maxFiles: IntOrExpr = 25

    async def listing(self, ctx: TaskContext, remote: Remote) -> list[dict[str, Any]]:
        where = render_str(ctx, self.from_, "from", required=True) or "/"
        return await list_files(remote, ctx, where, render_str(ctx, self.regExp, "regExp"),
                                render_bool(ctx, self.recursive, "recursive"))  # fmt: skip


class _List(_Listing):
    sort: Str | None = "NONE"

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        how = c.render_choice(ctx, self.sort, "sort", SORTS) or "NONE"
        async with self.remote(ctx) as remote:
            files = sort_files(await self.listing(ctx, remote), how)
        files = limit(ctx, files, c.render_max(ctx, self.maxFiles, "maxFiles", 25))
        return {"files": [shown(f) for f in files]}


class _Downloads(_Listing):
    action: Str | None = None
    moveDirectory: Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        action = c.render_choice(ctx, self.action, "action", ACTIONS)
        async with self.remote(ctx) as remote:
            files = await self.listing(ctx, remote)
            files = limit(ctx, files, c.render_max(ctx, self.maxFiles, "maxFiles", 25))
            out = []
            for item in files:
                uri, _ = await download(remote, ctx, item["path"])
                out.append(shown({**item, "path": uri}))
            directory = render_str(ctx, self.moveDirectory, "moveDirectory")
            await perform_action(remote, ctx, [f["path"] for f in files], action, directory)
        return {"files": out, "outputFiles": {f["name"]: f["path"] for f in out}}


class _Delete(_VfsTask):
    uri: Str
    errorOnMissing: BoolOrExpr = False
    recursive: BoolOrExpr = False
    regExp: Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        path = render_str(ctx, self.uri, "uri", required=True) or ""
        missing_fails = render_bool(ctx, self.errorOnMissing, "errorOnMissing")
        recursive = render_bool(ctx, self.recursive, "recursive")
        regexp = render_str(ctx, self.regExp, "regExp")
        async with self.remote(ctx) as remote:
            target = remote.path(path)
            exists = await remote.run(remote.fs.exists, target)
            if not exists and missing_fails:
                what = "directory" if regexp else "file"
                raise TaskError(f"Unable to find {what} '{remote.uri(path)}'")
            if regexp is not None:
                files = await list_files(remote, ctx, path, regexp, recursive) if exists else []
                uris = []
                if files:
                    ctx.log("WARN", f"Deleting {len(files)} file(s) matching regExp '{regexp}' "
                                    f"under '{remote.uri(path)}'")  # fmt: skip
                for item in files:
                    await remote.run(remote.fs.rm_file, remote.path(item["path"]))
                    uris.append(remote.uri(item["path"]))
                return {"uri": remote.uri(path), "deleted": bool(uris), "uris": uris}
            deleted = False
            if exists:
                try:
                    await remote.run(remote.fs.rm, target, recursive=recursive)
                    deleted = True
                except OSError as exc:
                    raise TaskError(f"cannot delete {remote.uri(path)}: {exc}") from exc
            return {"uri": remote.uri(path), "deleted": deleted, "uris": []}


class _Move(_VfsTask):
    from_: Str = Field(alias="from")
    to: Str
    overwrite: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        source = render_str(ctx, self.from_, "from", required=True) or ""
        target = render_str(ctx, self.to, "to", required=True) or ""
        async with self.remote(ctx) as remote:
            done = await move(remote, ctx, source, target,
                              render_bool(ctx, self.overwrite, "overwrite"))  # fmt: skip
            return {"from": remote.uri(source), "to": remote.uri(done)}


# -------------------------------------------------------------------------------- the types


class SftpUpload(_Upload, SftpConnection):
    """Upload a file to an SFTP server."""

    type: Literal["io.kestra.plugin.fs.sftp.Upload"]


class SftpUploads(_Uploads, SftpConnection):
    """Upload files to a folder of an SFTP server."""

    type: Literal["io.kestra.plugin.fs.sftp.Uploads"]


class SftpDownload(_Download, SftpConnection):
    """Download a file from an SFTP server."""

    type: Literal["io.kestra.plugin.fs.sftp.Download"]


class SftpDownloads(_Downloads, SftpConnection):
    """Download the files of a folder of an SFTP server."""

    type: Literal["io.kestra.plugin.fs.sftp.Downloads"]


class SftpList(_List, SftpConnection):
    """List the files of a folder of an SFTP server."""

    type: Literal["io.kestra.plugin.fs.sftp.List"]


class SftpDelete(_Delete, SftpConnection):
    """Delete a file (or files matching a regexp) on an SFTP server."""

    type: Literal["io.kestra.plugin.fs.sftp.Delete"]


class SftpMove(_Move, SftpConnection):
    """Move a file on an SFTP server."""

    type: Literal["io.kestra.plugin.fs.sftp.Move"]


class _Ftp:
    scheme: ClassVar[str] = "ftp"


class _Ftps:
    scheme: ClassVar[str] = "ftps"


class FtpUpload(_Ftp, _Upload, FtpConnection):
    """Upload a file to an FTP server."""

    type: Literal["io.kestra.plugin.fs.ftp.Upload"]


class FtpUploads(_Ftp, _Uploads, FtpConnection):
    """Upload files to a folder of an FTP server."""

    type: Literal["io.kestra.plugin.fs.ftp.Uploads"]


class FtpDownload(_Ftp, _Download, FtpConnection):
    """Download a file from an FTP server."""

    type: Literal["io.kestra.plugin.fs.ftp.Download"]


class FtpDownloads(_Ftp, _Downloads, FtpConnection):
    """Download the files of a folder of an FTP server."""

    type: Literal["io.kestra.plugin.fs.ftp.Downloads"]


class FtpList(_Ftp, _List, FtpConnection):
    """List the files of a folder of an FTP server."""

    type: Literal["io.kestra.plugin.fs.ftp.List"]


class FtpDelete(_Ftp, _Delete, FtpConnection):
    """Delete a file (or files matching a regexp) on an FTP server."""

    type: Literal["io.kestra.plugin.fs.ftp.Delete"]


class FtpMove(_Ftp, _Move, FtpConnection):
    """Move a file on an FTP server."""

    type: Literal["io.kestra.plugin.fs.ftp.Move"]


class FtpsUpload(_Ftps, _Upload, FtpsConnection):
    """Upload a file to an FTPS server."""

    type: Literal["io.kestra.plugin.fs.ftps.Upload"]


class FtpsUploads(_Ftps, _Uploads, FtpsConnection):
    """Upload files to a folder of an FTPS server."""

    type: Literal["io.kestra.plugin.fs.ftps.Uploads"]


class FtpsDownload(_Ftps, _Download, FtpsConnection):
    """Download a file from an FTPS server."""

    type: Literal["io.kestra.plugin.fs.ftps.Download"]


class FtpsDownloads(_Ftps, _Downloads, FtpsConnection):
    """Download the files of a folder of an FTPS server."""

    type: Literal["io.kestra.plugin.fs.ftps.Downloads"]


class FtpsList(_Ftps, _List, FtpsConnection):
    """List the files of a folder of an FTPS server."""

    type: Literal["io.kestra.plugin.fs.ftps.List"]


class FtpsDelete(_Ftps, _Delete, FtpsConnection):
    """Delete a file (or files matching a regexp) on an FTPS server."""

    type: Literal["io.kestra.plugin.fs.ftps.Delete"]


class FtpsMove(_Ftps, _Move, FtpsConnection):
    """Move a file on an FTPS server."""

    type: Literal["io.kestra.plugin.fs.ftps.Move"]


PLUGINS: list[type[TaskPlugin]] = [
    SftpUpload, SftpUploads, SftpDownload, SftpDownloads, SftpList, SftpDelete, SftpMove,
    FtpUpload, FtpUploads, FtpDownload, FtpDownloads, FtpList, FtpDelete, FtpMove,
    FtpsUpload, FtpsUploads, FtpsDownload, FtpsDownloads, FtpsList, FtpsDelete, FtpsMove,
]  # fmt: skip
