"""Kestra's git push tasks: ``PushFlows``, ``PushNamespaceFiles`` (and the deprecated ``Push``,
:mod:`executors.plugins.git_push_legacy`), run with the worker's ``git`` binary.

What Kestra does (kestra-io/plugin-git ``AbstractPushTask``), and what this module ports:

- Properties (beside the connection ones of :mod:`executors.plugins.git`): ``url`` (required
  here: there is nothing to push to without it), ``branch`` (``main``), ``gitDirectory``,
  ``commitMessage``, ``dryRun`` (false), ``authorName`` (default: ``username``),
  ``authorEmail``, ``delete`` (true), ``cloneSubmodules``, ``kestraUrl`` / ``auth`` (accepted,
  unused: flows and files are read on the worker, not through Kestra's API).
- The branch is cloned (depth 1) when the remote has it; otherwise the default branch is
  cloned and a new branch made on it ("Branch X does not exist, creating it"); an empty
  repository starts its history on ``branch``.
- The resources are written under ``gitDirectory`` in the clone; those a ``.kestraignore`` in
  that folder ignores are left out. With ``delete``, every other file under ``gitDirectory``
  (not ``.git``, not ``.kestraignore``, not ignored) that matches one of the globs (its
  repository path, its name or its name without extension; every file without globs) is
  ``git rm``-ed. Nothing to write at all: "No content to push - skipping Git operations." and
  no commit (not even of the deletions), no diff file.
- The written files are staged; the diff of what is staged becomes an Ion file of rows
  ``{changes:"3",file:"_flows/a.yml",deletions:"-5",additions:"+10"}`` (output ``flows`` or
  ``files``). ``dryRun``: "Dry run — no changes will be pushed to <url> for now until you set
  the `dryRun` parameter to false", nothing committed. Otherwise "Pushing to <url> on branch
  <branch>", a commit with ``commitMessage`` whose author and committer are
  ``authorName``/``authorEmail`` (both needed, else git's configured identity), pushed;
  outputs ``commitId`` and ``commitURL`` ("Pushed to <commitURL>"). No change: "No changes to
  commit. Skipping push." and no commit outputs.

``PushFlows``: ``sourceNamespace`` (the flow's), ``targetNamespace``, ``flows`` (globs on flow
ids; default all), ``includeChildNamespaces`` (false; children go to sub-folders:
``a.b.c`` under ``a`` is ``b/c/``), ``gitDirectory`` (``_flows``), files ``<id>.yml`` holding
the deployed source without ``revision:`` lines, with ``namespace: <source...>`` rewritten to
the target (Kestra's regex, on every line that starts so). Default message "Add flows from
<sourceNamespace> namespace". Flows come from the deployed-flow store (``ctx.flows``).

``PushNamespaceFiles``: ``namespace`` (the flow's), ``files`` (namespace file patterns, as the
``namespace.*`` tasks; default all), ``gitDirectory`` (``_files``), ``errorOnMissing`` (false:
"No Namespace Files matched the provided 'files' parameter to commit." when true). Default
message "Add files from <namespace> namespace".

Differences: the diff file of a push holds what was staged (Kestra diffs ``HEAD~1..HEAD``
after its commit, which is the same thing, except when there was nothing to commit: Kestra
then shows the previous commit, we an empty file); hooks never run on the task's commit.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import Any, ClassVar, Literal

from executors.base import TaskContext, TaskError, TaskOutcome
from executors.plugin import render_bool, render_str
from executors.plugins.git import CloningTask, GitAuth, GitKilled, GitRunner, target_dir
from executors.plugins.git_work import (
    KESTRA_IGNORE,
    LITERAL,
    commit_and_push,
    commit_url,
    glob_matchers,
    http_url,
    kestra_ignore,
    render_globs,
    staged_diff,
    store_ion,
    walk_files,
)
from executors.process import workspace
from schemas.flow.common import BoolOrExpr, Str

# What a resource to push is: its file in the clone, and a local file or the bytes to put there.
Contents = dict[Path, Path | bytes]


class _PushTask(CloningTask):
    """Kestra's ``AbstractPushTask``: clone a branch, write resources, commit and push."""

    output_name: ClassVar[str] = "files"

    url: Str
    branch: Str | None = "main"
    commitMessage: Str | None = None
    dryRun: BoolOrExpr = False
    authorEmail: Str | None = None
    authorName: Str | None = None
    delete: BoolOrExpr = True
    cloneSubmodules: BoolOrExpr | None = None
    kestraUrl: Str | None = None
    auth: GitAuth | None = None

    def git_directory(self) -> Any:
        raise NotImplementedError

    def globs_value(self) -> Any:
        raise NotImplementedError

    def default_message(self, ctx: TaskContext) -> str:
        raise NotImplementedError

    async def contents(self, ctx: TaskContext, base: Path, globs: list[str] | None) -> Contents:
        raise NotImplementedError

    async def run(self, ctx: TaskContext) -> TaskOutcome | dict[str, Any]:
        url = render_str(ctx, self.url, "url", required=True)
        assert url is not None
        branch = render_str(ctx, self.branch, "branch") or "main"
        dry_run = render_bool(ctx, self.dryRun, "dryRun")
        delete = render_bool(ctx, self.delete, "delete", True)
        globs = render_globs(ctx, self.globs_value(), "globs")
        message = render_str(ctx, self.commitMessage, "commitMessage") or self.default_message(ctx)
        name = render_str(ctx, self.authorName, "authorName") or render_str(
            ctx, self.username, "username"
        )
        email = render_str(ctx, self.authorEmail, "authorEmail")
        try:
            async with workspace(ctx) as root, self.git(ctx) as git:
                submodules = render_bool(ctx, self.cloneSubmodules, "cloneSubmodules")
                await self.clone_branch(ctx, git, root, url, branch, submodules=submodules)
                base = target_dir(root, render_str(ctx, self.git_directory(), "gitDirectory"))
                await asyncio.to_thread(base.mkdir, parents=True, exist_ok=True)
                contents = await self.contents(ctx, base, globs)
                await asyncio.to_thread(_write_all, contents)
                ignored = kestra_ignore(base)
                kept: list[Path] = []
                for path in contents:
                    relative = path.relative_to(base).as_posix()
                    if path.name == KESTRA_IGNORE or not ignored(relative):
                        kept.append(path)
                    else:
                        ctx.log("DEBUG", f"Skipped ignored file: {relative}")
                if delete:
                    await _delete_outdated(git, root, base, set(kept), globs, ignored)
                if not kept:
                    ctx.log("INFO", "No content to push - skipping Git operations.")
                    return {}
                paths = "\0".join(p.relative_to(root).as_posix() for p in kept).encode()
                await git(
                    "add", "--pathspec-from-file=-", "--pathspec-file-nul", cwd=root,
                    env=LITERAL, stdin=paths,
                )  # fmt: skip
                rows = await staged_diff(git, root)
                outputs: dict[str, Any] = {}
                shown = http_url(url)
                if dry_run:
                    ctx.log(
                        "INFO",
                        f"Dry run — no changes will be pushed to {git.redact(shown)} for now"
                        " until you set the `dryRun` parameter to false",
                    )
                else:
                    ctx.log("INFO", f"Pushing to {git.redact(shown)} on branch {branch}")
                    commit = await commit_and_push(
                        ctx, git, root, branch=branch, message=message, author=(name, email)
                    )
                    if commit is not None:
                        outputs["commitId"] = commit
                        outputs["commitURL"] = git.redact(commit_url(shown, branch, commit) or "")
                        ctx.log("INFO", f"Pushed to {outputs['commitURL']}")
                for row in rows:
                    ctx.log("DEBUG", str(row))
                outputs[self.output_name] = await store_ion(ctx, "diff.ion", rows)
                return outputs
        except GitKilled:
            return TaskOutcome(state="KILLED", error="killed")


def _write_all(contents: Contents) -> None:
    for path, source in contents.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            path.write_bytes(source)
        else:
            shutil.copyfile(source, path)


async def _delete_outdated(
    git: GitRunner,
    root: Path,
    base: Path,
    keep: set[Path],
    globs: list[str] | None,
    ignored: Any,
) -> None:
    """``git rm`` the files under ``base`` that are no longer resources (Kestra's rules)."""
    matchers = glob_matchers(globs) if globs else None
    doomed: list[str] = []
    for path in await asyncio.to_thread(walk_files, base):
        if path.name == KESTRA_IGNORE or path in keep:
            continue
        if ignored(path.relative_to(base).as_posix()):
            continue
        in_repo = path.relative_to(root).as_posix()
        if matchers is not None:
            stem = path.name.rsplit(".", 1)[0] if path.name.rfind(".") > 0 else path.name
            candidates = (in_repo, path.name, stem)
            if not any(m.fullmatch(c) for m in matchers for c in candidates):
                continue
        doomed.append(in_repo)
    if doomed:
        await git(
            "rm", "-q", "--ignore-unmatch", "--pathspec-from-file=-", "--pathspec-file-nul",
            cwd=root, env=LITERAL, stdin="\0".join(doomed).encode(),
        )  # fmt: skip


def rewrite_namespace(source: str, from_namespace: str, to_namespace: str) -> str:
    """PushFlows' export: no ``revision:`` line, ``namespace:`` lines moved to the target."""
    text = re.sub(r"(?m)^revision:\s*\d+\n?", "", source)
    pattern = r"(?m)^(\s*namespace:\s*)" + re.escape(from_namespace)
    return re.sub(pattern, lambda m: m.group(1) + to_namespace, text)


class PushFlows(_PushTask):
    """Commit and push the deployed flows of a namespace to a Git repository."""

    output_name: ClassVar[str] = "flows"

    type: Literal["io.kestra.plugin.git.PushFlows"]
    gitDirectory: Str | None = "_flows"
    sourceNamespace: Str | None = "{{ flow.namespace }}"
    targetNamespace: Str | None = None
    flows: list[Str] | Str | None = None
    includeChildNamespaces: BoolOrExpr = False

    def git_directory(self) -> Any:
        return self.gitDirectory if self.gitDirectory is not None else "_flows"

    def globs_value(self) -> Any:
        return self.flows

    def _source(self, ctx: TaskContext) -> str:
        namespace = render_str(ctx, self.sourceNamespace, "sourceNamespace") or ctx.namespace
        if not namespace:
            raise TaskError("property 'sourceNamespace' is required")
        return namespace

    def default_message(self, ctx: TaskContext) -> str:
        return f"Add flows from {self._source(ctx)} namespace"

    async def contents(self, ctx: TaskContext, base: Path, globs: list[str] | None) -> Contents:
        if ctx.flows is None:
            raise TaskError("git.PushFlows needs the deployed flows, and this worker has none")
        source_ns = self._source(ctx)
        target_ns = render_str(ctx, self.targetNamespace, "targetNamespace") or source_ns
        children = render_bool(ctx, self.includeChildNamespaces, "includeChildNamespaces")
        matchers = glob_matchers(globs) if globs is not None else None
        out: Contents = {}
        for flow in await ctx.flows.list(source_ns, children=children):
            if matchers is not None and not any(m.fullmatch(flow.id) for m in matchers):
                continue
            folder = base
            if len(flow.namespace) > len(source_ns):
                folder = base.joinpath(*flow.namespace[len(source_ns) + 1 :].split("."))
            text = rewrite_namespace(flow.source, source_ns, target_ns)
            out[folder / f"{flow.id}.yml"] = text.encode()
        return out


class PushNamespaceFiles(_PushTask):
    """Commit and push the namespace files of a namespace to a Git repository."""

    output_name: ClassVar[str] = "files"

    type: Literal["io.kestra.plugin.git.PushNamespaceFiles"]
    namespace: Str | None = "{{ flow.namespace }}"
    gitDirectory: Str | None = "_files"
    files: list[Str] | Str | None = None
    errorOnMissing: BoolOrExpr = False

    def git_directory(self) -> Any:
        return self.gitDirectory if self.gitDirectory is not None else "_files"

    def globs_value(self) -> Any:
        return self.files

    def _namespace(self, ctx: TaskContext) -> str:
        namespace = render_str(ctx, self.namespace, "namespace") or ctx.namespace
        if not namespace:
            raise TaskError("property 'namespace' is required")
        return namespace

    def default_message(self, ctx: TaskContext) -> str:
        return f"Add files from {self._namespace(ctx)} namespace"

    async def contents(self, ctx: TaskContext, base: Path, globs: list[str] | None) -> Contents:
        if ctx.namespace_files is None:
            raise TaskError("git.PushNamespaceFiles needs namespace files; this worker has none")
        namespace = self._namespace(ctx)
        entries = await ctx.namespace_files.find(namespace, globs or ["glob:**"])
        out: Contents = {base.joinpath(*e.path.strip("/").split("/")): e.local for e in entries}
        if not out and render_bool(ctx, self.errorOnMissing, "errorOnMissing"):
            raise TaskError("No Namespace Files matched the provided 'files' parameter to commit.")
        return out


PLUGINS = [PushFlows, PushNamespaceFiles]
