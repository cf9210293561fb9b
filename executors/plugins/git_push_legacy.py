"""Kestra's deprecated ``io.kestra.plugin.git.Push``: commit a working directory and push it.

What Kestra does (kestra-io/plugin-git ``Push``, deprecated since 1.0 for PushFlows and
PushNamespaceFiles), and what is ported:

- Properties: ``url`` (optional: without it, the repository already in ``directory`` is used,
  e.g. one a Clone made in the same WorkingDirectory), ``directory`` (the repository's folder in
  the working directory; default the working directory), ``branch`` and ``commitMessage``
  (required), ``inputFiles``, ``namespaceFiles`` (:mod:`executors.namespace_files`),
  ``flows`` (``enabled`` true, ``childNamespaces`` true, ``gitDirectory`` ``_flows``),
  ``addFilesPattern`` (``["."]``), ``author`` (``name`` + ``email``, or ``username`` +
  ``email``), the connection properties and ``cloneSubmodules``.
- With ``url``, the branch is cloned into ``directory`` (or the default branch, "Branch X does
  not exist, creating it") and everything it tracks is removed (``git rm``): the push replaces
  the branch's content with what the task writes. The current branch becomes ``branch``
  (created when it is another one).
- Then the input files and the namespace files are written in the working directory and, unless
  ``flows.enabled: false``, the flow's namespace's flows (and its children's) as
  ``<gitDirectory>/<namespace>.<id>.yml`` without their ``revision:`` line.
- "Pushing to <remote>/tree/<branch>", ``git add`` of ``addFilesPattern`` (deletions
  included), a commit with ``commitMessage`` (nothing to commit: "No changes to commit.
  Skipping push."), a push. Output ``commitId``.

Differences: a push the server rejects fails the task with its answer (Kestra's Push ignores the
push result).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, Literal

from executors import namespace_files
from executors.base import TaskContext, TaskError, TaskOutcome
from executors.plugin import render_bool, render_str
from executors.plugins.git import CloningTask, GitAuth, GitKilled, target_dir
from executors.plugins.git_work import LITERAL, commit_and_push
from executors.process import workspace, write_input_files
from schemas.flow.common import BoolOrExpr, FlowModel, Str

_REVISION_LINE = re.compile(r"(?m)^revision:\s*\d+\n?")


class PushFlowFiles(FlowModel):
    """Push's ``flows``: export the flow's namespace's flows too."""

    enabled: BoolOrExpr = True
    childNamespaces: BoolOrExpr = True
    gitDirectory: Str | None = "_flows"


class PushAuthor(FlowModel):
    """Push's commit author."""

    name: Str | None = None
    email: Str | None = None


class Push(CloningTask):
    """Deprecated: commit the working directory (and the namespace's flows) and push it."""

    type: Literal["io.kestra.plugin.git.Push"]
    url: Str | None = None
    directory: Str | None = None
    branch: Str
    commitMessage: Str
    namespaceFiles: dict[str, Any] | None = None
    flows: PushFlowFiles | None = None
    inputFiles: dict[str, Any] | Str | None = None
    addFilesPattern: list[Str] | Str | None = None
    author: PushAuthor | None = None
    cloneSubmodules: BoolOrExpr | None = None
    kestraUrl: Str | None = None
    auth: GitAuth | None = None

    async def run(self, ctx: TaskContext) -> TaskOutcome | dict[str, Any]:
        branch = render_str(ctx, self.branch, "branch", required=True)
        message = render_str(ctx, self.commitMessage, "commitMessage", required=True)
        assert branch is not None
        url = render_str(ctx, self.url, "url") if self.url is not None else None
        flows = self.flows or PushFlowFiles()
        patterns = ctx.render(self.addFilesPattern) if self.addFilesPattern is not None else ["."]
        if isinstance(patterns, str):
            patterns = [patterns]
        try:
            async with workspace(ctx) as root, self.git(ctx) as git:
                base = target_dir(root, render_str(ctx, self.directory, "directory"))
                if url:
                    await asyncio.to_thread(base.mkdir, parents=True, exist_ok=True)
                    submodules = render_bool(ctx, self.cloneSubmodules, "cloneSubmodules")
                    await self.clone_branch(ctx, git, base, url, branch, submodules=submodules)
                top = ""
                if await asyncio.to_thread(base.is_dir):
                    _, top, _ = await git("rev-parse", "--show-toplevel", cwd=base, check=False)
                # A folder inside another repository (the worker's own checkout...) is none.
                if not top.strip() or not await asyncio.to_thread(_same_dir, top.strip(), base):
                    raise TaskError(
                        f"no git repository in '{base.relative_to(root).as_posix()}': set url,"
                        " or clone one first in the same WorkingDirectory"
                    )
                _, current, _ = await git("symbolic-ref", "--short", "-q", "HEAD", cwd=base,
                                          check=False)  # fmt: skip
                if current.strip() != branch:
                    await git("checkout", "--quiet", "-b", branch, cwd=base)
                if url:
                    tracked = await asyncio.to_thread(_top_level, base)
                    if tracked:
                        await git(
                            "rm", "-r", "-q", "--ignore-unmatch", "--", *tracked, cwd=base,
                            env=LITERAL,
                        )  # fmt: skip
                await write_input_files(ctx.render(self.inputFiles), root, ctx)
                await namespace_files.load(self.namespaceFiles, ctx, root)
                if render_bool(ctx, flows.enabled, "flows.enabled", True):
                    await self._write_flows(ctx, base, flows)
                _, remote, _ = await git("config", "--get", "remote.origin.url", cwd=base,
                                         check=False)  # fmt: skip
                ctx.log("INFO", f"Pushing to {git.redact(remote.strip())}/tree/{branch}")
                await git("add", "-A", "--", *[str(p) for p in patterns], cwd=base, env=LITERAL)
                commit = await commit_and_push(
                    ctx, git, base, branch=branch, message=message, author=self._author(ctx)
                )
                return {"commitId": commit} if commit is not None else {}
        except GitKilled:
            return TaskOutcome(state="KILLED", error="killed")

    def _author(self, ctx: TaskContext) -> tuple[str | None, str | None]:
        if self.author is None:
            return None, None
        email = render_str(ctx, self.author.email, "author.email")
        name = render_str(ctx, self.author.name, "author.name")
        if email and not name:
            name = render_str(ctx, self.username, "username")
        return (name, email) if name and email else (None, None)

    async def _write_flows(self, ctx: TaskContext, base: Path, flows: PushFlowFiles) -> None:
        if ctx.flows is None:
            raise TaskError("git.Push needs the deployed flows, and this worker has none")
        namespace = ctx.namespace or ""
        children = render_bool(ctx, flows.childNamespaces, "flows.childNamespaces", True)
        folder = base
        directory = render_str(ctx, flows.gitDirectory, "flows.gitDirectory")
        if directory:
            folder = target_dir(base, directory)
        for flow in await ctx.flows.list(namespace, children=children):
            text = _REVISION_LINE.sub("", flow.source)
            path = folder / f"{flow.namespace}.{flow.id}.yml"
            await asyncio.to_thread(_write, path, text.encode())


def _same_dir(a: str, b: Path) -> bool:
    return Path(a).resolve() == b.resolve()


def _top_level(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != ".git")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


PLUGINS = [Push]
