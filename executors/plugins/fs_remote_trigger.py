"""Kestra's file-transfer polling triggers, ``io.kestra.plugin.fs.{sftp,ftp,ftps}.Trigger``.

What Kestra does (kestra-io/plugin-fs ``vfs.Trigger``): every ``interval`` (PT60S) it lists
``from`` (``regExp`` on the full path, ``recursive`` false; a missing folder is no event) and
keeps the files. With ``action`` MOVE or DELETE every listed file fires (the action removes it,
so no state is kept); with NONE (the default) the state in the KV store (``on``
CREATE_OR_UPDATE, ``stateKey``, ``stateTtl``) decides, a file's version being
``<modified epoch ms>_<size>_<path>``. The firing files are sorted (``sort`` NONE), cut to
``maxFiles`` (25, with a warning), downloaded to internal storage, then moved into
``moveDirectory`` or deleted, and one execution starts with ``trigger.files``: each ``File``
(``path`` is the ``kestra://`` copy) with its ``changeType`` (CREATE or UPDATE).

What differs: as for every polling trigger here, the action and the state write happen once the
StartExecution is durable (Kestra does them before creating the execution).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field

from executors.plugin import render_bool, render_str
from executors.plugins.fs_remote import (
    ACTIONS,
    SORTS,
    FtpConnection,
    FtpsConnection,
    SftpConnection,
    download,
    limit,
    list_files,
    perform_action,
    shown,
    sort_files,
)
from executors.polling import (
    Entry,
    Poll,
    PollContext,
    PollingTrigger,
    compute_and_update,
    read_state,
    should_fire,
    state_spec,
    write_state,
)
from executors.remote import common as c
from executors.remote.vfs import connect
from schemas.flow.common import BoolOrExpr, Duration, IntOrExpr, Str
from triggers.ids import digest


class _VfsTrigger(PollingTrigger):
    family: ClassVar[str] = "fs"
    scheme: ClassVar[str] = "sftp"

    from_: Str = Field(alias="from")
    action: Str | None = None
    moveDirectory: Str | None = None
    regExp: Str | None = None
    recursive: BoolOrExpr = False
    maxFiles: IntOrExpr = 25
    sort: Str | None = "NONE"
    on: Str | None = None
    stateKey: Str | None = None
    stateTtl: Duration | None = None

    async def poll(self, ctx: PollContext) -> Poll | None:
        task = ctx.task
        action = c.render_choice(task, self.action, "action", ACTIONS) or "NONE"
        how = c.render_choice(task, self.sort, "sort", SORTS) or "NONE"
        stateful = action == "NONE"
        spec = state_spec(self, ctx, self.on, self.stateKey, self.stateTtl)
        where = render_str(task, self.from_, "from", required=True) or "/"
        async with connect(task, self, self.scheme) as remote:
            files = await list_files(remote, task, where, render_str(task, self.regExp, "regExp"),
                                     render_bool(task, self.recursive, "recursive"))  # fmt: skip
            if not files:
                return None
            state = await read_state(ctx, spec) if stateful else {}
            now = task.clock()
            pending: list[tuple[dict[str, Any], Entry, str]] = []
            for item in files:
                updated = item.get("updatedDate")
                millis = int(updated.timestamp() * 1000) if updated else 0
                server_path = remote.path(item["path"])
                version = f"{millis}_{item.get('size') or 0}_{server_path}"
                candidate = Entry(server_path, version, c.iso(updated))
                if not stateful:
                    pending.append((item, candidate, "CREATE"))
                    continue
                previous = state.get(server_path)
                if not should_fire(previous, version, spec.on):
                    compute_and_update(state, candidate, spec.on, now)
                    continue
                pending.append((item, candidate, "CREATE" if previous is None else "UPDATE"))
            order = {id(f): i for i, f in enumerate(sort_files([p[0] for p in pending], how))}
            pending.sort(key=lambda p: order[id(p[0])])
            pending = limit(task, pending, c.render_max(task, self.maxFiles, "maxFiles", 25))
            if not pending:
                if stateful:
                    await write_state(ctx, spec, state)
                return None
            coordinates = f"{self.scheme}-" + digest(
                orjson.dumps(sorted([p[1].uri, p[1].version] for p in pending))
            )
            ctx.bind(coordinates)
            fired = []
            for item, _, change in pending:
                uri, _ = await download(remote, task, item["path"])
                fired.append({**shown(item), "path": uri, "changeType": change})
        paths = [p[0]["path"] for p in pending]
        directory = render_str(task, self.moveDirectory, "moveDirectory")

        async def after() -> None:
            if not stateful:
                async with connect(task, self, self.scheme) as remote:
                    await perform_action(remote, task, paths, action, directory)
                return
            for _, candidate, _ in pending:
                compute_and_update(state, candidate, spec.on, task.clock())
            await write_state(ctx, spec, state)

        return Poll(coordinates, {"files": fired}, after)


class SftpTrigger(_VfsTrigger, SftpConnection):
    """Start an execution when files appear (or change) in a folder of an SFTP server."""

    type: Literal["io.kestra.plugin.fs.sftp.Trigger"]


class FtpTrigger(_VfsTrigger, FtpConnection):
    """Start an execution when files appear (or change) in a folder of an FTP server."""

    scheme: ClassVar[str] = "ftp"
    type: Literal["io.kestra.plugin.fs.ftp.Trigger"]


class FtpsTrigger(_VfsTrigger, FtpsConnection):
    """Start an execution when files appear (or change) in a folder of an FTPS server."""

    scheme: ClassVar[str] = "ftps"
    type: Literal["io.kestra.plugin.fs.ftps.Trigger"]


PLUGINS: list[type[PollingTrigger]] = [SftpTrigger, FtpTrigger, FtpsTrigger]
