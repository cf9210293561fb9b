"""Kestra's two-way git reconcilers: ``NamespaceSync`` (one namespace) and ``TenantSync`` (all of
them; Headwater has one tenant).

What Kestra does (kestra-io/plugin-git ``NamespaceSync`` / ``TenantSync``), and what is ported:

- Properties: ``url``, ``branch`` (required), ``gitDirectory`` (default: the repository root),
  ``namespace`` (NamespaceSync, required), ``sourceOfTruth`` (``KESTRA`` | ``GIT``; KESTRA),
  ``whenMissingInSource`` (``DELETE`` | ``KEEP`` | ``FAIL``; DELETE), ``protectedNamespaces``
  (``[system]``: a namespace or its children never lose anything), ``dryRun`` (false),
  ``onInvalidSyntax`` (``FAIL`` | ``WARN`` | ``SKIP``; FAIL), ``commitMessage`` ("Namespace sync
  from Kestra" / "Tenant sync from Kestra"), ``authorName`` (default ``username``),
  ``authorEmail``, ``cloneSubmodules``, ``kestraUrl`` / ``auth`` (accepted, unused).
- Layout under ``gitDirectory``: ``<namespace>/flows/<id>.yaml`` (or ``.yml``; the flow id is
  the file name) and ``<namespace>/files/<path>``; the namespace folder is named literally
  (``company.team``, not ``company/team``).
- Each flow (by id) and file (by path) of the namespace is compared with Git (flows: sources with
  LF endings, trimmed; files: bytes). Equal: UNCHANGED. Different: the source of truth
  overwrites the other side (``UPDATED_KES`` / ``UPDATED_GIT``). Only in the source of truth:
  copied (``ADDED``). Only in the other side: ``whenMissingInSource`` decides: KEEP
  (UNCHANGED), DELETE (``DELETED_KES`` / ``DELETED_GIT``; a protected namespace is warned about
  and kept), FAIL ("Sync failed: FLOW missing in Git but present in KESTRA for key ns:id").
  A Git flow that does not validate follows ``onInvalidSyntax``.
- Then (not with ``dryRun``) the changes are applied, the folder staged, committed and pushed
  (the commit's outputs ``commitId``, ``commitURL``; "No changes to commit." when there is
  none). Output ``diff``: with ``dryRun`` or ``sourceOfTruth: GIT``, an Ion list of the
  changes ``{file, key, kind (FLOW|FILE), action}`` (UNCHANGED left out); otherwise one JSON
  line per staged file, ``{"file","additions","deletions","changes"}``.
- TenantSync: every namespace that has flows or files (plus, with GIT, every
  ``<folder>/flows`` or ``<folder>/files`` of the repository).

Differences: no namespace registry exists here (Kestra refuses a NamespaceSync of an unknown
namespace; a namespace here is wherever flows or files are); dashboards (TenantSync's
``_global/dashboards``) are not synced: Headwater has none; ``file`` in the diff rows is relative
to ``gitDirectory`` for both tasks (TenantSync writes the worker's absolute path).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import orjson

from executors import ion
from executors.base import FlowRepository, NamespaceFileStore, TaskContext, TaskError, TaskOutcome
from executors.plugin import render_bool, render_str
from executors.plugins.git import CloningTask, GitAuth, GitKilled, GitRunner, target_dir
from executors.plugins.git_work import (
    commit_and_push,
    commit_url,
    http_url,
    staged_diff_counts,
    walk_files,
)
from executors.process import workspace
from schemas.flow.common import BoolOrExpr, Str, enum_check, enum_schema

_SOURCES = ("KESTRA", "GIT")
_MISSING = ("DELETE", "KEEP", "FAIL")
_INVALID = ("FAIL", "WARN", "SKIP")
SourceOfTruth = Annotated[str, enum_check(*_SOURCES), enum_schema(*_SOURCES)]
WhenMissing = Annotated[str, enum_check(*_MISSING), enum_schema(*_MISSING)]
OnInvalid = Annotated[str, enum_check(*_INVALID), enum_schema(*_INVALID)]
Action = Callable[[], Awaitable[None]]


def _norm(text: str) -> str:
    return text.replace("\r\n", "\n").strip()


@dataclass(slots=True)
class _Plan:
    """What a reconciliation found and will do."""

    diffs: list[dict[str, str]] = field(default_factory=list)
    actions: list[tuple[str, Action]] = field(default_factory=list)

    def note(self, file: str, key: str, kind: str, action: str) -> None:
        self.diffs.append({"file": file, "key": key, "kind": kind, "action": action})


@dataclass(slots=True)
class _Settings:
    git_is_truth: bool
    missing: str
    invalid: str
    protected: list[str]
    base: Path


class _Reconcile(CloningTask):
    """Shared by NamespaceSync and TenantSync."""

    default_message: ClassVar[str] = ""

    url: Str
    branch: Str
    gitDirectory: Str | None = None
    sourceOfTruth: SourceOfTruth | None = "KESTRA"
    whenMissingInSource: WhenMissing | None = "DELETE"
    protectedNamespaces: list[Str] | Str | None = None
    dryRun: BoolOrExpr = False
    onInvalidSyntax: OnInvalid | None = "FAIL"
    commitMessage: Str | None = None
    authorEmail: Str | None = None
    authorName: Str | None = None
    cloneSubmodules: BoolOrExpr | None = None
    kestraUrl: Str | None = None
    auth: GitAuth | None = None

    async def namespaces(self, ctx: TaskContext, base: Path, git_is_truth: bool) -> list[str]:
        raise NotImplementedError

    def _choice(self, ctx: TaskContext, value: Any, name: str, choices: tuple[str, ...]) -> str:
        text = (render_str(ctx, value, name) or choices[0]).upper()
        if text not in choices:
            raise TaskError(f"property '{name}': {text!r} is not one of {', '.join(choices)}")
        return text

    async def run(self, ctx: TaskContext) -> TaskOutcome | dict[str, Any]:
        if ctx.flows is None or ctx.namespace_files is None:
            raise TaskError(
                f"{self.type_name()} needs the deployed flows and namespace files, and this"
                " worker lacks them"
            )
        url = render_str(ctx, self.url, "url", required=True)
        branch = render_str(ctx, self.branch, "branch")
        if not branch:
            raise TaskError("Branch must be explicitly set.")
        assert url is not None
        git_is_truth = self._choice(ctx, self.sourceOfTruth, "sourceOfTruth", _SOURCES) == "GIT"
        missing = self._choice(ctx, self.whenMissingInSource, "whenMissingInSource", _MISSING)
        invalid = self._choice(ctx, self.onInvalidSyntax, "onInvalidSyntax", _INVALID)
        protected = ctx.render(self.protectedNamespaces)
        if protected is None:
            protected = ["system"]
        elif isinstance(protected, str):
            protected = [protected]
        dry_run = render_bool(ctx, self.dryRun, "dryRun")
        message = render_str(ctx, self.commitMessage, "commitMessage") or self.default_message
        author = (
            render_str(ctx, self.authorName, "authorName")
            or render_str(ctx, self.username, "username"),
            render_str(ctx, self.authorEmail, "authorEmail"),
        )
        git_dir = render_str(ctx, self.gitDirectory, "gitDirectory") or ""
        try:
            async with workspace(ctx) as root, self.git(ctx) as git:
                submodules = render_bool(ctx, self.cloneSubmodules, "cloneSubmodules")
                await self.clone_branch(ctx, git, root, url, branch, submodules=submodules)
                base = target_dir(root, git_dir)
                settings = _Settings(
                    git_is_truth, missing, invalid, [str(p) for p in protected], base
                )
                plan = _Plan()
                for namespace in await self.namespaces(ctx, base, git_is_truth):
                    ctx.log("INFO", f"Processing namespace {namespace}")
                    await _plan_flows(ctx, ctx.flows, namespace, settings, plan)
                    await _plan_files(ctx, ctx.namespace_files, namespace, settings, plan)
                if dry_run:
                    return {"diff": await _store_changes(ctx, plan)}
                for what, action in plan.actions:
                    try:
                        await action()
                    except TaskError as exc:
                        _invalid(ctx, invalid, what, exc)
                pattern = git_dir or "."
                await git("add", "-A", "--", pattern, cwd=root)
                outputs: dict[str, Any] = {}
                if git_is_truth:
                    outputs["diff"] = await _store_changes(ctx, plan)
                else:
                    outputs["diff"] = await _store_staged(ctx, git, root)
                commit = await commit_and_push(
                    ctx, git, root, branch=branch, message=message, author=author
                )
                if commit is not None:
                    outputs["commitId"] = commit
                    outputs["commitURL"] = git.redact(
                        commit_url(http_url(url), branch, commit) or ""
                    )
                return outputs
        except GitKilled:
            return TaskOutcome(state="KILLED", error="killed")


def _is_protected(namespace: str, protected: list[str]) -> bool:
    return any(namespace == p or namespace.startswith(p + ".") for p in protected)


def _invalid(ctx: TaskContext, mode: str, what: str, exc: Exception) -> None:
    if mode == "SKIP":
        ctx.log("INFO", f"Skipping invalid {what}")
    elif mode == "WARN":
        ctx.log("WARN", f"{what} couldn't be synced due to invalid syntax: {exc}")
    else:
        raise TaskError(f"Invalid syntax for {what}: {exc}") from exc


def _missing(
    ctx: TaskContext,
    s: _Settings,
    plan: _Plan,
    *,
    namespace: str,
    file: str,
    key: str,
    kind: str,
    side: str,
    delete: Action,
) -> None:
    """Something only the other side has (``side``: where it is, GIT or KESTRA)."""
    if s.missing == "KEEP":
        plan.note(file, key, kind, "UNCHANGED")
    elif s.missing == "FAIL":
        other = "KESTRA" if side == "GIT" else "Git"
        where = "Git" if side == "GIT" else "KESTRA"
        raise TaskError(f"Sync failed: {kind} missing in {other} but present in {where}: {key}")
    elif _is_protected(namespace, s.protected):
        ctx.log("WARN", f"Protected namespace, skipping delete for {kind} {key}")
        plan.note(file, key, kind, "UNCHANGED")
    else:
        plan.note(file, key, kind, "DELETED_GIT" if side == "GIT" else "DELETED_KES")
        plan.actions.append((f"{kind} {key}", delete))


async def _plan_flows(
    ctx: TaskContext, flows: FlowRepository, namespace: str, s: _Settings, plan: _Plan
) -> None:
    folder = s.base / namespace / "flows"
    in_git: dict[str, tuple[Path, str]] = {}
    for path in await asyncio.to_thread(walk_files, folder) if folder.is_dir() else []:
        if path.suffix in (".yml", ".yaml"):
            text = (await asyncio.to_thread(path.read_bytes)).decode("utf-8", "replace")
            in_git[path.stem] = (path, text)
    in_kestra = {f.id: f for f in await flows.list(namespace, children=False)}
    for flow_id in sorted(set(in_git) | set(in_kestra)):
        key = f"{namespace}:{flow_id}"
        path = in_git[flow_id][0] if flow_id in in_git else folder / f"{flow_id}.yaml"
        file = path.relative_to(s.base).as_posix()
        git_text = in_git[flow_id][1] if flow_id in in_git else None
        deployed = in_kestra.get(flow_id)

        def deploy(text: str = git_text or "") -> Action:
            async def act() -> None:
                await flows.deploy(text)

            return act

        def write(target: Path = path, text: str = deployed.source if deployed else "") -> Action:
            async def act() -> None:
                await asyncio.to_thread(_write_file, target, text.encode())

            return act

        if git_text is not None and deployed is None:
            if s.git_is_truth:
                try:
                    flows.check(git_text)
                except TaskError as exc:
                    _invalid(ctx, s.invalid, f"FLOW {key}", exc)
                    continue
                plan.note(file, key, "FLOW", "ADDED")
                plan.actions.append((f"FLOW {key}", deploy()))
            else:
                delete = _unlink(path)
                _missing(ctx, s, plan, namespace=namespace, file=file, key=key, kind="FLOW",
                         side="GIT", delete=delete)  # fmt: skip
        elif git_text is None and deployed is not None:
            if not s.git_is_truth:
                plan.note(file, key, "FLOW", "ADDED")
                plan.actions.append((f"FLOW {key}", write()))
            else:
                delete = _delete_flow(flows, namespace, flow_id)
                _missing(ctx, s, plan, namespace=namespace, file=file, key=key, kind="FLOW",
                         side="KESTRA", delete=delete)  # fmt: skip
        elif git_text is not None and deployed is not None:
            if _norm(git_text) == _norm(deployed.source):
                plan.note(file, key, "FLOW", "UNCHANGED")
            elif s.git_is_truth:
                try:
                    flows.check(git_text)
                except TaskError as exc:
                    _invalid(ctx, s.invalid, f"FLOW {key}", exc)
                    continue
                plan.note(file, key, "FLOW", "UPDATED_KES")
                plan.actions.append((f"FLOW {key}", deploy()))
            else:
                plan.note(file, key, "FLOW", "UPDATED_GIT")
                plan.actions.append((f"FLOW {key}", write()))


async def _plan_files(
    ctx: TaskContext, store: NamespaceFileStore, namespace: str, s: _Settings, plan: _Plan
) -> None:
    folder = s.base / namespace / "files"
    in_git: dict[str, Path] = {}
    for path in await asyncio.to_thread(walk_files, folder) if folder.is_dir() else []:
        in_git[path.relative_to(folder).as_posix()] = path
    in_kestra = {
        str(e.path).lstrip("/"): e.local for e in await store.all(namespace) if not e.is_dir
    }
    for rel in sorted(set(in_git) | set(in_kestra)):
        key = f"{namespace}:{rel}"
        target = folder.joinpath(*rel.split("/"))
        file = target.relative_to(s.base).as_posix()
        git_file, kestra_file = in_git.get(rel), in_kestra.get(rel)

        def put(source: Path | None = git_file, name: str = rel) -> Action:
            async def act() -> None:
                assert source is not None
                await store.put(namespace, "/" + name, source)

            return act

        def write(source: Path | None = kestra_file, dest: Path = target) -> Action:
            async def act() -> None:
                assert source is not None
                await asyncio.to_thread(_copy_file, source, dest)

            return act

        if git_file is not None and kestra_file is None:
            if s.git_is_truth:
                plan.note(file, key, "FILE", "ADDED")
                plan.actions.append((f"FILE {key}", put()))
            else:
                _missing(ctx, s, plan, namespace=namespace, file=file, key=key, kind="FILE",
                         side="GIT", delete=_unlink(target))  # fmt: skip
        elif git_file is None and kestra_file is not None:
            if not s.git_is_truth:
                plan.note(file, key, "FILE", "ADDED")
                plan.actions.append((f"FILE {key}", write()))
            else:
                delete = _delete_file(store, namespace, rel)
                _missing(ctx, s, plan, namespace=namespace, file=file, key=key, kind="FILE",
                         side="KESTRA", delete=delete)  # fmt: skip
        elif git_file is not None and kestra_file is not None:
            same = await asyncio.to_thread(_same_bytes, git_file, kestra_file)
            if same:
                plan.note(file, key, "FILE", "UNCHANGED")
            elif s.git_is_truth:
                plan.note(file, key, "FILE", "UPDATED_KES")
                plan.actions.append((f"FILE {key}", put()))
            else:
                plan.note(file, key, "FILE", "UPDATED_GIT")
                plan.actions.append((f"FILE {key}", write()))


def _unlink(path: Path) -> Action:
    async def act() -> None:
        await asyncio.to_thread(path.unlink, True)

    return act


def _delete_flow(flows: FlowRepository, namespace: str, flow_id: str) -> Action:
    async def act() -> None:
        await flows.delete(namespace, flow_id)

    return act


def _delete_file(store: NamespaceFileStore, namespace: str, rel: str) -> Action:
    async def act() -> None:
        await store.delete(namespace, "/" + rel)

    return act


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _copy_file(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)


def _same_bytes(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


async def _store_changes(ctx: TaskContext, plan: _Plan) -> str:
    """Kestra's ``DiffLine.writeIonFile``: one Ion list of the changes."""
    if ctx.storage is None:
        raise TaskError("this task writes its diff file to internal storage, and has none")
    changed = [d for d in plan.diffs if d["action"] != "UNCHANGED"]
    return await ctx.storage.put(ctx.execution_id, "diffs.ion", ion.dumps(changed).encode())


async def _store_staged(ctx: TaskContext, git: GitRunner, root: Path) -> str:
    """Kestra's ``createIonDiff``: one JSON line per staged file, with numeric counts."""
    if ctx.storage is None:
        raise TaskError("this task writes its diff file to internal storage, and has none")
    lines = [
        orjson.dumps({"file": f, "additions": a, "deletions": d, "changes": c}).decode() + "\n"
        for f, a, d, c in await staged_diff_counts(git, root)
    ]
    return await ctx.storage.put(ctx.execution_id, "diff.ion", "".join(lines).encode())


def _git_namespaces(base: Path) -> set[str]:
    """The folders of ``base`` that hold ``flows`` or ``files``: namespaces in Git."""
    if not base.is_dir():
        return set()
    return {
        child.name
        for child in base.iterdir()
        if (child / "flows").is_dir() or (child / "files").is_dir()
    }


class NamespaceSync(_Reconcile):
    """Reconcile one namespace's flows and files with a Git repository, either way."""

    default_message: ClassVar[str] = "Namespace sync from Kestra"

    type: Literal["io.kestra.plugin.git.NamespaceSync"]
    namespace: Str

    async def namespaces(self, ctx: TaskContext, base: Path, git_is_truth: bool) -> list[str]:
        namespace = render_str(ctx, self.namespace, "namespace")
        if not namespace:
            raise TaskError("Namespace must be explicitly set.")
        ctx.log("INFO", f"Now in NamespaceSync for namespace {namespace}")
        return [namespace]


class TenantSync(_Reconcile):
    """Reconcile every namespace's flows and files with a Git repository, either way."""

    default_message: ClassVar[str] = "Tenant sync from Kestra"

    type: Literal["io.kestra.plugin.git.TenantSync"]

    async def namespaces(self, ctx: TaskContext, base: Path, git_is_truth: bool) -> list[str]:
        assert ctx.flows is not None
        assert ctx.namespace_files is not None
        ctx.log("INFO", "Now in TenantSync for tenant main")
        found = {f.namespace for f in await ctx.flows.list("", children=True)}
        found |= set(await ctx.namespace_files.namespaces())
        if git_is_truth:
            found |= await asyncio.to_thread(_git_namespaces, base)
        return sorted(found)


PLUGINS = [NamespaceSync, TenantSync]
