"""Kestra's git sync tasks: ``SyncFlows``, ``SyncFlow``, ``SyncNamespaceFiles`` (Git -> Headwater).

What Kestra does (kestra-io/plugin-git ``AbstractSyncTask``), and what this module ports:

- Properties (beside the connection ones of :mod:`executors.plugins.git`): ``url`` (required),
  ``branch`` (``main``), ``gitDirectory``, ``dryRun`` (false), ``delete``,
  ``failOnMissingDirectory`` (true), ``cloneSubmodules``, ``kestraUrl`` / ``auth`` (accepted,
  unused).
- The branch is cloned as the push tasks do. ``gitDirectory`` must exist ("The directory 'X'
  was not found in the git repository. Verify if the path exists in the specified branch
  'B'.", unless ``failOnMissingDirectory: false``) and be a folder.
- Its entries (SyncFlows: only its top level unless ``includeChildNamespaces``; files and
  folders, ``/a/`` for a folder) are read, less what its ``.kestraignore`` ignores and names
  ending in ``.git``, ``.gitignore`` or ``.gitkeep``, shallowest first, and written (or, with
  ``dryRun``, only compared). With ``delete``, what the namespace holds and Git does not is
  deleted (not with ``dryRun``).
- The output is an Ion diff file, one row per resource, rows without a ``gitPath`` (deleted)
  first, then by ``gitPath`` (``gitDirectory`` + the entry).

``SyncFlows``: ``targetNamespace`` (required), ``gitDirectory`` (``_flows``),
``includeChildNamespaces`` (false: sub-folders are child namespaces, ``a/b`` under ``t`` is
``t.a.b``), ``delete`` (false; never the flow running the task), ``ignoreInvalidFlows``
(false). Every file is a flow: its first ``namespace: ...`` line is set to the namespace of
its folder, it is validated ("Invalid flow imported from Git (<path>): <problems>", a failure,
or a WARN and skipped with ``ignoreInvalidFlows``) and deployed. Rows ``{gitPath, syncState
(ADDED, UPDATED, UNCHANGED, DELETED), flowId, namespace, revision}``; output ``flows``.
Deployed through hw.flows as the API deploys (``ctx.flows``); a source equal to the deployed
one (line endings and surrounding blanks aside) is not deployed again, so its revision stays.

``SyncFlow``: one file, ``flowPath`` (required; "Flow file not found at path: X"),
``targetNamespace`` (required, replaces the first ``namespace:`` line), ``dryRun`` (validate;
the revision is the projected one). Outputs ``flowId``, ``namespace``, ``revision``.

``SyncNamespaceFiles``: ``namespace`` (the flow's), ``gitDirectory`` (``_files``), ``delete``
(false). Folders are created, a file whose content is unchanged is left alone. Rows
``{gitPath, syncState (ADDED, OVERWRITTEN, UNCHANGED, DELETED), kestraPath}``; output ``files``.

Differences: entries inside a ``.git`` folder are never synced.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from executors.base import DeployedFlow, FlowRepository, TaskContext, TaskError, TaskOutcome
from executors.plugin import render_bool, render_str
from executors.plugins.git import CloningTask, GitAuth, GitKilled, GitRunner, target_dir
from executors.plugins.git_work import kestra_ignore, store_ion
from executors.process import workspace
from schemas.flow.common import BoolOrExpr, Str

_NAMESPACE_LINE = re.compile(r"(?m)^namespace: (.*)$")
_ID_LINE = re.compile(r"(?m)^id:\s*(.*)$")
_REVISION_LINE = re.compile(r"(?m)^revision:\s*\d+\n?")
_SKIPPED_SUFFIXES = (".git", ".gitignore", ".gitkeep")


@dataclass(slots=True)
class Entry:
    """One file (``local`` set) or folder (``local`` None) of the synced folder."""

    uri: str  # /a/b.yml, or /a/ for a folder
    local: Path | None


def same_source(a: str, b: str) -> bool:
    """Kestra's comparison of flow sources: no ``revision:`` line, LF endings, trimmed."""

    def norm(text: str) -> str:
        return _REVISION_LINE.sub("", text).replace("\r\n", "\n").strip()

    return norm(a) == norm(b)


def set_namespace(source: str, namespace: str) -> str:
    """The source with its first ``namespace: ...`` line set to ``namespace``."""
    return _NAMESPACE_LINE.sub(lambda _m: f"namespace: {namespace}", source, count=1)


class _SyncTask(CloningTask):
    """Kestra's ``AbstractSyncTask``: clone a branch, read a folder, apply it."""

    url: Str
    branch: Str | None = "main"
    dryRun: BoolOrExpr = False
    failOnMissingDirectory: BoolOrExpr = True
    cloneSubmodules: BoolOrExpr | None = None
    kestraUrl: Str | None = None
    auth: GitAuth | None = None

    def git_directory(self) -> Any:
        raise NotImplementedError

    def traverse(self, ctx: TaskContext) -> bool:
        return True

    async def sync(
        self, ctx: TaskContext, entries: list[Entry], git_dir: str, dry_run: bool
    ) -> tuple[str, list[dict[str, Any]]]:
        """Apply the entries; (output name, diff rows)."""
        raise NotImplementedError

    async def run(self, ctx: TaskContext) -> TaskOutcome | dict[str, Any]:
        url = render_str(ctx, self.url, "url", required=True)
        assert url is not None
        branch = render_str(ctx, self.branch, "branch") or "main"
        dry_run = render_bool(ctx, self.dryRun, "dryRun")
        git_dir = render_str(ctx, self.git_directory(), "gitDirectory") or ""
        try:
            async with workspace(ctx) as root, self.git(ctx) as git:
                await self._checkout_branch(ctx, git, root, url, branch)
                base = target_dir(root, git_dir)
                if not base.exists():
                    if render_bool(
                        ctx, self.failOnMissingDirectory, "failOnMissingDirectory", True
                    ):
                        raise TaskError(
                            f"The directory '{git_dir}' was not found in the git repository."
                            f" Verify if the path exists in the specified branch '{branch}'."
                        )
                    await asyncio.to_thread(base.mkdir, parents=True, exist_ok=True)
                if not base.is_dir():
                    raise TaskError(
                        f"The path '{git_dir}' exists but is a file, not a directory. Sync tasks"
                        " require a directory to process files."
                    )
                entries = await asyncio.to_thread(_entries, base, self.traverse(ctx))
                name, rows = await self.sync(ctx, entries, git_dir, dry_run)
                rows.sort(key=lambda r: (r.get("gitPath") is not None, r.get("gitPath") or ""))
                for row in rows:
                    ctx.log("DEBUG", str(row))
                return {name: await store_ion(ctx, "diff.ion", rows)}
        except GitKilled:
            return TaskOutcome(state="KILLED", error="killed")

    async def _checkout_branch(
        self, ctx: TaskContext, git: GitRunner, root: Path, url: str, branch: str
    ) -> None:
        submodules = render_bool(ctx, self.cloneSubmodules, "cloneSubmodules")
        await self.clone_branch(ctx, git, root, url, branch, submodules=submodules)


def _entries(base: Path, traverse: bool) -> list[Entry]:
    """The folder's files and folders, shallowest first (then by path)."""
    ignored = kestra_ignore(base)
    found: list[Entry] = []
    for top, dirs, files in os.walk(base, followlinks=True):
        here = Path(top)
        dirs[:] = sorted(d for d in dirs if d != ".git")
        candidates = [(here / d, True) for d in dirs] + [(here / f, False) for f in sorted(files)]
        for path, is_dir in candidates:
            relative = path.relative_to(base).as_posix()
            if path.name.endswith(_SKIPPED_SUFFIXES) or ignored(relative + "/" * is_dir):
                continue
            uri = "/" + relative + ("/" if is_dir else "")
            found.append(Entry(uri, None if is_dir else path))
        if not traverse:
            break
    found.sort(key=lambda e: (e.uri.rstrip("/").count("/"), e.uri))
    return found


# --------------------------------------------------------------------------------- flows


def _flows(ctx: TaskContext, name: str) -> FlowRepository:
    if ctx.flows is None:
        raise TaskError(f"git.{name} needs the deployed flows, and this worker has none")
    return ctx.flows


@dataclass(slots=True)
class _Synced:
    flow: DeployedFlow | None  # before
    after: tuple[str, str, int]  # namespace, id, revision
    git_path: str


class SyncFlows(_SyncTask):
    """Deploy the flows of a Git folder into a namespace (and its children)."""

    type: Literal["io.kestra.plugin.git.SyncFlows"]
    targetNamespace: Str
    gitDirectory: Str | None = "_flows"
    includeChildNamespaces: BoolOrExpr = False
    delete: BoolOrExpr = False
    ignoreInvalidFlows: BoolOrExpr = False

    def git_directory(self) -> Any:
        return self.gitDirectory if self.gitDirectory is not None else "_flows"

    def traverse(self, ctx: TaskContext) -> bool:
        return render_bool(ctx, self.includeChildNamespaces, "includeChildNamespaces")

    async def sync(
        self, ctx: TaskContext, entries: list[Entry], git_dir: str, dry_run: bool
    ) -> tuple[str, list[dict[str, Any]]]:
        flows = _flows(ctx, "SyncFlows")
        target = render_str(ctx, self.targetNamespace, "targetNamespace", required=True)
        assert target is not None
        children = self.traverse(ctx)
        ignore_invalid = render_bool(ctx, self.ignoreInvalidFlows, "ignoreInvalidFlows")
        before = {(f.namespace, f.id): f for f in await flows.list(target, children=children)}
        synced: dict[tuple[str, str], _Synced] = {}
        for entry in entries:
            if entry.local is None:
                continue
            folder = entry.uri.rsplit("/", 1)[0]
            namespace = target + folder.replace("/", ".")
            raw = (await asyncio.to_thread(entry.local.read_bytes)).decode("utf-8", "replace")
            source = set_namespace(raw, namespace).rstrip()
            try:
                flow_ns, flow_id = flows.check(source)
            except TaskError as exc:
                message = f"Invalid flow imported from Git ({entry.uri.lstrip('/')}): {exc}"
                if ignore_invalid:
                    ctx.log("WARN", message)
                    continue
                raise TaskError(message) from exc
            current = await flows.get(flow_ns, flow_id)
            if current is not None and same_source(current.source, source):
                revision = current.revision
            elif dry_run:
                revision = current.revision + 1 if current is not None else 1
            else:
                revision = (await flows.deploy(source)).revision
            synced[(flow_ns, flow_id)] = _Synced(
                before.get((flow_ns, flow_id)), (flow_ns, flow_id, revision), git_dir + entry.uri
            )
        rows: list[dict[str, Any]] = []
        for item in synced.values():
            namespace, flow_id, revision = item.after
            if item.flow is None:
                state = "ADDED"
            elif item.flow.revision == revision:
                state = "UNCHANGED"
            else:
                state = "UPDATED"
            rows.append(
                {
                    "gitPath": item.git_path,
                    "syncState": state,
                    "flowId": flow_id,
                    "namespace": namespace,
                    "revision": revision,
                }
            )
        if render_bool(ctx, self.delete, "delete"):
            for key, flow in before.items():
                if key in synced or key == (ctx.namespace, ctx.flow_id):
                    continue
                if not dry_run:
                    await flows.delete(flow.namespace, flow.id)
                rows.append(
                    {
                        "syncState": "DELETED",
                        "flowId": flow.id,
                        "namespace": flow.namespace,
                        "revision": flow.revision,
                    }
                )
        return "flows", rows


class SyncFlow(CloningTask):
    """Deploy one flow file of a Git repository into a namespace."""

    type: Literal["io.kestra.plugin.git.SyncFlow"]
    url: Str
    branch: Str | None = "main"
    targetNamespace: Str
    flowPath: Str
    dryRun: BoolOrExpr = False
    kestraUrl: Str | None = None
    auth: GitAuth | None = None

    async def run(self, ctx: TaskContext) -> TaskOutcome | dict[str, Any]:
        flows = _flows(ctx, "SyncFlow")
        url = render_str(ctx, self.url, "url", required=True)
        assert url is not None
        branch = render_str(ctx, self.branch, "branch") or "main"
        target = render_str(ctx, self.targetNamespace, "targetNamespace", required=True)
        path = render_str(ctx, self.flowPath, "flowPath", required=True)
        assert target is not None
        assert path is not None
        try:
            async with workspace(ctx) as root, self.git(ctx) as git:
                await self.clone_branch(ctx, git, root, url, branch, submodules=False)
                file = target_dir(root, path)
                if not file.is_file():
                    raise TaskError(f"Flow file not found at path: {path}")
                source = set_namespace(await asyncio.to_thread(file.read_text, "utf-8"), target)
                if not _ID_LINE.search(source):
                    raise TaskError(f"Cannot parse flow id from YAML at path: {path}")
                try:
                    namespace, flow_id = flows.check(source)
                except TaskError as exc:
                    raise TaskError(f"Flow validation failed: {exc}") from exc
                current = await flows.get(namespace, flow_id)
                if render_bool(ctx, self.dryRun, "dryRun"):
                    revision = current.revision + 1 if current is not None else 1
                elif current is not None and same_source(current.source, source):
                    revision = current.revision
                else:
                    revision = (await flows.deploy(source.rstrip())).revision
                return {"flowId": flow_id, "namespace": namespace, "revision": revision}
        except GitKilled:
            return TaskOutcome(state="KILLED", error="killed")


# ------------------------------------------------------------------------- namespace files


class SyncNamespaceFiles(_SyncTask):
    """Copy the files of a Git folder into a namespace's files."""

    type: Literal["io.kestra.plugin.git.SyncNamespaceFiles"]
    namespace: Str | None = "{{ flow.namespace }}"
    gitDirectory: Str | None = "_files"
    delete: BoolOrExpr = False

    def git_directory(self) -> Any:
        return self.gitDirectory if self.gitDirectory is not None else "_files"

    async def sync(
        self, ctx: TaskContext, entries: list[Entry], git_dir: str, dry_run: bool
    ) -> tuple[str, list[dict[str, Any]]]:
        store = ctx.namespace_files
        if store is None:
            raise TaskError("git.SyncNamespaceFiles needs namespace files; this worker has none")
        namespace = render_str(ctx, self.namespace, "namespace") or ctx.namespace
        if not namespace:
            raise TaskError("property 'namespace' is required")
        before = {_key(e): e for e in await store.all(namespace)}
        prefix = "/" + "/".join([*namespace.split("."), "_files"])
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for entry in entries:
            seen.add(entry.uri)
            existing = before.get(entry.uri)
            if entry.local is None:
                if existing is None and not dry_run:
                    await store.mkdir(namespace, entry.uri)
                state = "UNCHANGED" if existing is not None else "ADDED"
            else:
                data = await asyncio.to_thread(entry.local.read_bytes)
                if existing is not None and await _same(existing.local, data):
                    state = "UNCHANGED"
                else:
                    if not dry_run:
                        await store.put(namespace, entry.uri, data)
                    state = "OVERWRITTEN" if existing is not None else "ADDED"
            rows.append(
                {
                    "gitPath": git_dir + entry.uri,
                    "syncState": state,
                    "kestraPath": prefix + entry.uri,
                }
            )
        if render_bool(ctx, self.delete, "delete"):
            for key in sorted(before):
                if key in seen:
                    continue
                if not dry_run:
                    await store.delete(namespace, key)
                rows.append({"syncState": "DELETED", "kestraPath": prefix + key})
        return "files", rows


def _key(entry: Any) -> str:
    return str(entry.path) + ("/" if entry.is_dir else "")


async def _same(path: Path, data: bytes) -> bool:
    def read() -> bytes | None:
        try:
            return path.read_bytes()
        except OSError:
            return None

    return await asyncio.to_thread(read) == data


PLUGINS = [SyncFlows, SyncFlow, SyncNamespaceFiles]
