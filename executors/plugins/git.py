"""Kestra's git plugin: ``io.kestra.plugin.git.Clone``, run with the worker's ``git`` binary.

What Kestra does (kestra-io/plugin-git, ``Clone`` < ``AbstractCloningTask`` < ``AbstractGitTask``,
JGit), and what this module ports:

- Properties: ``url`` (required), ``directory`` (a sub-directory of the task's working directory;
  default: the working directory itself; it may not escape it), ``branch``, ``depth`` (1),
  ``commit``, ``tag``, ``cloneAllBranches`` (true), ``noTags`` (false), ``cloneSubmodules``,
  ``username`` + ``password`` (HTTP basic credentials, used only when both are set),
  ``privateKey`` (PEM) + ``passphrase`` (SSH; host keys are not checked, as Kestra's
  ``StrictHostKeyChecking=no``), ``trustedCaPemPath`` (extra CA bundle, Kestra's "equivalent to
  ``http.sslCAInfo``"), ``noProxy``, ``connectTimeout`` (10000 ms), ``readTimeout`` (60000 ms),
  ``gitConfig`` (a map applied to the repository after the clone: booleans, numbers, lists
  (multi-valued), trimmed strings; null or blank unsets; a key without a dot is warned about and
  skipped), and ``kestraUrl`` / ``auth`` (inherited from Kestra's cloning base, unused by Clone).
- Checks first: ``cloneAllBranches: false`` needs ``branch``; ``tag`` with ``noTags: true`` is an
  error; ``depth`` must be at least 1 (JGit's rule).
- An empty (or missing) target is cloned: with neither ``commit`` nor ``tag``, ``branch`` and
  ``depth`` apply; ``commit`` or ``tag`` make a full clone. All branches are fetched unless
  ``cloneAllBranches: false`` (then only ``branch``); ``noTags`` skips tags. Then ``commit`` (a
  short SHA is fine) is fetched for (all heads, plus tags unless ``noTags``), resolved ("Cannot
  resolve commit SHA") and checked out detached; else ``tag`` is fetched, resolved ("Cannot resolve
  tag"), peeled to its commit and checked out detached; else ``branch`` is checked out.
- A target that already holds files (a WorkingDirectory's ``inputFiles``...) is ``git init`` +
  ``remote add origin`` + ``gitConfig`` + fetch (the branch or all heads, tags unless ``noTags``,
  ``depth`` unless commit/tag) + checkout: the commit, the tag, or ``branch`` (default:
  ``origin/HEAD``, else ``main``, else ``master``, else "Cannot determine the default branch")
  as a new local branch tracking ``origin/<branch>``; then submodules.
- Logs "Start cloning from '<url>'"; a transport failure fails the task with git's own answer.
- Output: ``directory``, the absolute path of the clone.

How it is done here: every git step is one ``git`` process (asyncio subprocess, its own process
group, registered with ``ctx.process_watch``, SIGTERM then SIGKILL to the whole group, ssh
included, when the task is cancelled: the run ends KILLED). Credentials never reach an argv, a
log line or an error: username, password and passphrase are answered by a ``GIT_ASKPASS`` /
``SSH_ASKPASS`` script reading them from its environment, the private key is a 0600 file, both
in a private temporary directory outside the working directory that is removed afterwards;
the worker's credential helpers are switched off while explicit credentials are given, and
every secret (and a URL's ``user:password@``) is masked in what git prints. The clone goes to
``ctx.working_dir`` (shared inside a ``WorkingDirectory``, so the next tasks see the files);
without one, a temporary directory that is removed when the task ends, as the scripts tasks do
(and as Kestra's task working directory is).

What differs: ``connectTimeout`` only reaches SSH (``ConnectTimeout``; git over HTTP has no such
setting); ``readTimeout`` becomes ``http.lowSpeedTime`` (abort when under 1 byte/s that long);
``trustedCaPemPath`` is added to the CAs git trusts (its ``GIT_SSL_CAINFO`` or the system
bundle) in a bundle made for the run; ``kestraUrl`` and ``auth`` are accepted and ignored, as
Clone never calls Kestra's API. Submodules are updated after the final checkout (JGit clones them
at the default branch's revision even when a commit or tag is checked out). The fetch before a
commit checkout carries the credentials (Kestra's does not, and only warns when it fails).

The other git tasks clone a branch with the same steps (:meth:`CloningTask.clone_branch`,
Kestra's ``GitService.cloneBranch``) and the same runner: :mod:`executors.plugins.git_push`
(PushFlows, PushNamespaceFiles), :mod:`executors.plugins.git_sync` (SyncFlows, SyncFlow,
SyncNamespaceFiles), :mod:`executors.plugins.git_namespace` (NamespaceSync, TenantSync) and
:mod:`executors.plugins.git_push_legacy` (the deprecated Push); what they share beyond cloning
is in :mod:`executors.plugins.git_work`. Not provided: ``PushDashboards`` / ``SyncDashboards``
(Headwater has no dashboards), ``PushExecutionFiles`` and the deprecated ``Sync``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import shlex
import shutil
import signal
import ssl
import stat
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from executors.base import SECRET_MASK, TaskContext, TaskError, TaskOutcome
from executors.plugin import TaskPlugin, render_bool, render_int, render_map, render_str
from executors.process import KILL_GRACE_S, signal_group, task_environment, workspace
from schemas.flow.common import BoolOrExpr, FlowModel, IntOrExpr, Str

# The answers git and ssh ask for ("Username for ...", "Password for ...", "Enter passphrase
# for key ..."), read from the askpass script's environment so they never reach an argv.
_ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$HW_GIT_USERNAME" ;;
  Password*) printf '%s\\n' "$HW_GIT_PASSWORD" ;;
  *passphrase*) printf '%s\\n' "$HW_GIT_PASSPHRASE" ;;
  *) exit 1 ;;
esac
"""
# Proxy variables git (curl) honours; noProxy removes them from the run's environment.
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
# A failure message keeps git's last lines only: the answer, not the whole progress chatter.
_ERROR_LINES = 8
# user:password@ (or a token@) in an http(s) URL.
_URL_USERINFO = re.compile(r"(?i)\b(https?://)[^/\s@]+@")


class GitKilled(Exception):
    """The task was cancelled while git ran (the process group is gone)."""


class GitAuth(FlowModel):
    """Kestra's API credentials of the cloning tasks (``auth``); unused by Clone."""

    username: Str | None = None
    password: Str | None = None
    auto: BoolOrExpr = True


def redact_url(text: str) -> str:
    """``text`` with the credentials of http(s) URLs masked."""
    return _URL_USERINFO.sub(lambda m: f"{m.group(1)}{SECRET_MASK}@", text)


@dataclass(slots=True)
class GitRunner:
    """Runs ``git`` commands for one task: its environment, credentials and cancellation."""

    ctx: TaskContext
    binary: str
    env: dict[str, str]
    secrets: list[str] = field(default_factory=list)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, SECRET_MASK)
        return redact_url(text)

    async def __call__(
        self,
        *args: str,
        cwd: Path,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of ``git args``; a failure raises TaskError (``check``).
        ``env`` adds variables for this command; ``stdin`` is written to its input."""
        proc = await asyncio.create_subprocess_exec(
            self.binary,
            *args,
            cwd=str(cwd),
            env={**self.env, **env} if env else self.env,
            stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        watch = self.ctx.process_watch
        if watch is not None:
            watch.register(proc.pid)
        talk = asyncio.ensure_future(proc.communicate(stdin))
        cancelled = asyncio.ensure_future(self.ctx.cancelled.wait())
        try:
            await asyncio.wait({talk, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            if not talk.done():
                signal_group(proc.pid, signal.SIGTERM)
                done, _ = await asyncio.wait({talk}, timeout=KILL_GRACE_S)
                if not done:
                    signal_group(proc.pid, signal.SIGKILL)
                    await talk
                raise GitKilled
            out, err = talk.result()
        finally:
            # ssh or a credential helper git started must not outlive the command.
            signal_group(proc.pid, signal.SIGKILL)
            cancelled.cancel()
            if not talk.done():
                talk.cancel()
            if watch is not None:
                watch.unregister(proc.pid)
        stdout = self.redact(out.decode("utf-8", "replace"))
        stderr = self.redact(err.decode("utf-8", "replace"))
        code = proc.returncode if proc.returncode is not None else -1
        for line in stderr.splitlines():
            if line.strip():
                self.ctx.log("DEBUG", f"git {args[0]}: {line}")
        if check and code != 0:
            raise TaskError(f"git {args[0]} failed: {self.last_lines(stderr) or f'exit {code}'}")
        return code, stdout, stderr

    @staticmethod
    def last_lines(text: str) -> str:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return " | ".join(lines[-_ERROR_LINES:])


class _GitTask(TaskPlugin):
    """The connection properties of every Kestra git task (``AbstractGitTask``)."""

    family: ClassVar[str] = "git"

    url: Str | None = None
    username: Str | None = None
    password: Str | None = None
    privateKey: Str | None = None
    passphrase: Str | None = None
    trustedCaPemPath: Str | None = None
    noProxy: BoolOrExpr | None = None
    connectTimeout: IntOrExpr = 10000
    readTimeout: IntOrExpr = 60000
    gitConfig: dict[str, Any] | Str | None = None

    @contextlib.asynccontextmanager
    async def git(self, ctx: TaskContext) -> AsyncIterator[GitRunner]:
        """A runner whose environment carries this task's credentials and transport settings."""
        env = task_environment(None)
        binary = shutil.which("git", path=env.get("PATH") or os.defpath)
        if binary is None:
            raise TaskError(
                "git not found on this worker: install git (the git tasks run the git command)"
            )
        username = render_str(ctx, self.username, "username")
        password = render_str(ctx, self.password, "password")
        private_key = render_str(ctx, self.privateKey, "privateKey")
        passphrase = render_str(ctx, self.passphrase, "passphrase")
        ca_path = render_str(ctx, self.trustedCaPemPath, "trustedCaPemPath")
        no_proxy = render_bool(ctx, self.noProxy, "noProxy")
        connect_ms = render_int(ctx, self.connectTimeout, "connectTimeout", 10000) or 10000
        read_ms = render_int(ctx, self.readTimeout, "readTimeout", 60000) or 60000
        secrets = [s for s in (password, passphrase, private_key) if s]
        ctx.secrets = ctx.secrets | frozenset(secrets)

        config: list[tuple[str, str]] = [
            ("http.lowSpeedLimit", "1"),
            ("http.lowSpeedTime", str(max(1, math.ceil(read_ms / 1000)))),
        ]
        env["GIT_TERMINAL_PROMPT"] = "0"
        private = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="hw-git-"))
        try:
            askpass = private / "askpass.sh"
            await asyncio.to_thread(askpass.write_text, _ASKPASS)
            await asyncio.to_thread(askpass.chmod, stat.S_IRWXU)
            if username is not None and password is not None:
                # The worker's own helpers would answer before the askpass script.
                config.append(("credential.helper", ""))
                env["GIT_ASKPASS"] = str(askpass)
                env["HW_GIT_USERNAME"] = username
                env["HW_GIT_PASSWORD"] = password
            if private_key:
                key = private / "id_key"
                await asyncio.to_thread(_write_private, key, private_key)
                ssh = [
                    "ssh",
                    "-i",
                    str(key),
                    "-o",
                    "IdentitiesOnly=yes",
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                    "-o",
                    f"ConnectTimeout={max(1, math.ceil(connect_ms / 1000))}",
                ]
                env["GIT_SSH_COMMAND"] = shlex.join(ssh)
                env["SSH_ASKPASS"] = str(askpass)
                env["SSH_ASKPASS_REQUIRE"] = "force"
                env["HW_GIT_PASSPHRASE"] = passphrase or ""
            if ca_path:
                bundle = private / "ca-bundle.pem"
                await asyncio.to_thread(_ca_bundle, bundle, Path(ca_path), env)
                # The environment variable wins over any http.sslCAInfo setting.
                env["GIT_SSL_CAINFO"] = str(bundle)
            if no_proxy:
                for name in _PROXY_VARS:
                    env.pop(name, None)
                config.append(("http.proxy", ""))
            _add_config(env, config)
            yield GitRunner(ctx, binary, env, secrets)
        finally:
            await asyncio.to_thread(shutil.rmtree, private, True)

    async def apply_git_config(self, ctx: TaskContext, git: GitRunner, repo: Path) -> None:
        """Kestra's ``applyGitConfig``: the ``gitConfig`` map written to the repository."""
        values = render_map(ctx, self.gitConfig, "gitConfig")
        if not values:
            return
        for key, value in values.items():
            parts = str(key).split(".")
            if len(parts) < 2:
                ctx.log(
                    "WARN",
                    f"invalid git gitRepoConfig key format: {key}. The name is actually the section"
                    " and the key separated by a dot. Expected 'section.name' or"
                    " 'section.subsection.name'",
                )
                continue
            name = ".".join([parts[0].lower(), *parts[1:]])
            await git("config", "--unset-all", name, cwd=repo, check=False)
            if value is None or (isinstance(value, str) and not value.strip()):
                ctx.log("INFO", f"Unset git gitRepoConfig {key}")
                continue
            for item in value if isinstance(value, list) else [value]:
                await git("config", "--add", name, _config_text(item), cwd=repo)
            ctx.log("INFO", f"Applied git config {key} = {value}")
        ctx.log("INFO", f"Applied {len(values)} git configuration settings")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")


def _ca_bundle(bundle: Path, pem: Path, env: Mapping[str, str]) -> None:
    """``pem`` plus the CAs git would trust anyway (Kestra adds the PEM to the JVM's CAs)."""
    try:
        parts = [pem.read_bytes()]
    except OSError as exc:
        raise TaskError(f"property 'trustedCaPemPath': cannot read {pem}: {exc.strerror}") from exc
    defaults = ssl.get_default_verify_paths()
    for name in (env.get("GIT_SSL_CAINFO"), defaults.cafile, defaults.openssl_cafile):
        if name and Path(name).is_file():
            parts.append(Path(name).read_bytes())
            break
    bundle.write_bytes(b"\n".join(parts))


def _add_config(env: dict[str, str], entries: list[tuple[str, str]]) -> None:
    """Append ``entries`` to the ``GIT_CONFIG_COUNT`` settings the environment may hold."""
    try:
        count = int(env.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        count = 0
    for key, value in entries:
        env[f"GIT_CONFIG_KEY_{count}"] = key
        env[f"GIT_CONFIG_VALUE_{count}"] = value
        count += 1
    env["GIT_CONFIG_COUNT"] = str(count)


def _config_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value.strip() if isinstance(value, str) else str(value)


def _short_branch(branch: str) -> str:
    return branch.removeprefix("refs/heads/")


def target_dir(root: Path, directory: str | None) -> Path:
    """The clone's directory: ``root`` or a path inside it."""
    if not directory:
        return root
    target = (root / directory).resolve()
    if not target.is_relative_to(root.resolve()):
        raise TaskError(
            f"property 'directory': {directory!r} must be a relative path inside the working"
            " directory"
        )
    return target


def _non_empty(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


@dataclass(slots=True)
class _Plan:
    """The rendered clone request."""

    url: str
    branch: str | None
    depth: int
    commit: str | None
    tag: str | None
    all_branches: bool
    no_tags: bool
    submodules: bool


class CloningTask(_GitTask):
    """The clone steps shared by Clone and the tasks that clone before they work."""

    async def _clone(self, ctx: TaskContext, git: GitRunner, plan: _Plan, path: Path) -> None:
        await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
        pinned = plan.commit is not None or plan.tag is not None
        # A pinned clone checks out the commit or tag only, not the default branch first.
        args = ["clone", "--no-checkout"] if pinned else ["clone"]
        if not pinned:
            if plan.branch:
                args += ["--branch", _short_branch(plan.branch)]
            args += ["--depth", str(plan.depth)]
        if plan.all_branches:
            args.append("--no-single-branch")
        else:
            assert plan.branch is not None
            args.append("--single-branch")
            if pinned:
                args += ["--branch", _short_branch(plan.branch)]
        if plan.no_tags:
            args.append("--no-tags")
        try:
            await git(*args, "--", plan.url, str(path), cwd=path)
        except TaskError as exc:
            ctx.log("ERROR", f"Git clone failed for '{git.redact(plan.url)}': {exc}")
            raise
        await self.apply_git_config(ctx, git, path)
        await self._checkout(ctx, git, plan, path, fresh_clone=True)

    async def _init_fetch(self, ctx: TaskContext, git: GitRunner, plan: _Plan, path: Path) -> None:
        await git("init", "--quiet", cwd=path)
        await git("remote", "add", "origin", plan.url, cwd=path)
        await self.apply_git_config(ctx, git, path)
        refspecs = (
            [
                f"+refs/heads/{_short_branch(plan.branch)}:refs/remotes/origin/{_short_branch(plan.branch)}"
            ]
            if not plan.all_branches and plan.branch
            else ["+refs/heads/*:refs/remotes/origin/*"]
        )
        if not plan.no_tags:
            refspecs.append("+refs/tags/*:refs/tags/*")
        args = ["fetch", "--no-tags"] if plan.no_tags else ["fetch"]
        if plan.commit is None and plan.tag is None:
            args += ["--depth", str(plan.depth)]
        await git(*args, "origin", *refspecs, cwd=path)
        await self._checkout(ctx, git, plan, path, fresh_clone=False)

    async def _checkout(
        self, ctx: TaskContext, git: GitRunner, plan: _Plan, path: Path, *, fresh_clone: bool
    ) -> None:
        if plan.commit is not None:
            await self._checkout_commit(ctx, git, plan, path)
        elif plan.tag is not None:
            await self._checkout_tag(ctx, git, plan, path)
        elif fresh_clone:
            if plan.branch:
                ctx.log("INFO", f"Checked out branch {_short_branch(plan.branch)}")
        else:
            branch = _short_branch(plan.branch) if plan.branch else await self._default(git, path)
            await git("checkout", "--quiet", "-b", branch, f"origin/{branch}", cwd=path)
            ctx.log("INFO", f"Checked out branch {branch} from origin/{branch}")

    async def _default(self, git: GitRunner, path: Path) -> str:
        code, head, _ = await git(
            "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD", cwd=path, check=False
        )
        if code == 0 and head.strip():
            return head.strip().removeprefix("refs/remotes/origin/")
        for name in ("main", "master"):
            code, _, _ = await git(
                "rev-parse",
                "--verify",
                "--quiet",
                f"refs/remotes/origin/{name}",
                cwd=path,
                check=False,
            )
            if code == 0:
                return name
        raise TaskError(
            "Cannot determine the default branch. Please specify the 'branch' property explicitly."
        )

    async def _checkout_commit(
        self, ctx: TaskContext, git: GitRunner, plan: _Plan, path: Path
    ) -> None:
        sha = plan.commit or ""
        refspecs = ["+refs/heads/*:refs/remotes/origin/*"]
        if not plan.no_tags:
            refspecs.append("+refs/tags/*:refs/tags/*")
        args = ["fetch", *(["--no-tags"] if plan.no_tags else []), "origin", *refspecs]
        code, _, err = await git(*args, cwd=path, check=False)
        if code != 0:
            ctx.log("WARN", f"Fetch before checkout failed: {git.last_lines(err)}")
        code, target, _ = await git(
            "rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}", cwd=path, check=False
        )
        if code != 0 or not target.strip():
            raise TaskError(f"Failed to checkout commit {sha}: Cannot resolve commit SHA: {sha}")
        try:
            await git("checkout", "--quiet", "--detach", target.strip(), cwd=path)
        except TaskError as exc:
            raise TaskError(f"Failed to checkout commit {sha}: {exc}") from exc
        ctx.log("INFO", f"Checked out commit {target.strip()} (detached HEAD)")

    async def _checkout_tag(
        self, ctx: TaskContext, git: GitRunner, plan: _Plan, path: Path
    ) -> None:
        tag = plan.tag or ""
        if not plan.no_tags:
            await git("fetch", "origin", "+refs/tags/*:refs/tags/*", cwd=path)
        code, target, _ = await git(
            "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}", cwd=path, check=False
        )
        if code != 0 or not target.strip():
            raise TaskError(f"Cannot resolve tag: {tag}")
        await git("checkout", "--quiet", "--detach", target.strip(), cwd=path)
        ctx.log("INFO", f"Checked out tag {tag} at commit {target.strip()}")

    async def branch_exists(self, git: GitRunner, url: str, branch: str, cwd: Path) -> bool:
        """Whether the remote has ``refs/heads/<branch>`` (Kestra's ``lsRemoteRepository``)."""
        ref = f"refs/heads/{_short_branch(branch)}"
        _, out, _ = await git("ls-remote", "--heads", "--", url, ref, cwd=cwd)
        return any(line.split("\t")[-1] == ref for line in out.splitlines())

    async def clone_branch(
        self,
        ctx: TaskContext,
        git: GitRunner,
        path: Path,
        url: str,
        branch: str,
        *,
        submodules: bool,
    ) -> None:
        """Kestra's ``GitService.cloneBranch`` into ``path``: the branch when the remote has it
        (depth 1, every branch); else the default branch and a new local ``branch`` on it (an
        empty repository gets ``branch`` as its unborn HEAD), created on the remote by a push."""
        exists = await self.branch_exists(git, url, branch, path)
        if not exists:
            ctx.log("INFO", f"Branch {branch} does not exist, creating it")
        plan = _Plan(
            url=url,
            branch=branch if exists else None,
            depth=1,
            commit=None,
            tag=None,
            all_branches=True,
            no_tags=False,
            submodules=submodules,
        )
        ctx.log("INFO", f"Start cloning from '{git.redact(url)}'")
        if _non_empty(path):
            await self._init_fetch(ctx, git, plan, path)
        else:
            await self._clone(ctx, git, plan, path)
        if submodules:
            await git("submodule", "update", "--init", "--recursive", cwd=path)
        if not exists:
            code, _, _ = await git(
                "rev-parse", "--verify", "--quiet", "HEAD", cwd=path, check=False
            )
            if code == 0:
                await git("checkout", "--quiet", "-b", _short_branch(branch), cwd=path)
            else:
                await git("symbolic-ref", "HEAD", f"refs/heads/{_short_branch(branch)}", cwd=path)


class Clone(CloningTask):
    """Clone a Git repository into the task's working directory."""

    type: Literal["io.kestra.plugin.git.Clone"]
    url: Str
    directory: Str | None = None
    branch: Str | None = None
    depth: IntOrExpr = 1
    commit: Str | None = None
    tag: Str | None = None
    cloneAllBranches: BoolOrExpr = True
    noTags: BoolOrExpr = False
    cloneSubmodules: BoolOrExpr | None = None
    kestraUrl: Str | None = None
    auth: GitAuth | None = None

    def _plan(self, ctx: TaskContext) -> _Plan:
        url = render_str(ctx, self.url, "url", required=True)
        assert url is not None
        branch = render_str(ctx, self.branch, "branch") or None
        all_branches = render_bool(ctx, self.cloneAllBranches, "cloneAllBranches", True)
        no_tags = render_bool(ctx, self.noTags, "noTags", False)
        if not all_branches and not (branch and branch.strip()):
            raise TaskError(
                "Invalid clone configuration: when `cloneAllBranches` is false, `branch` must be"
                " set."
            )
        if self.tag is not None and no_tags:
            raise TaskError(
                "Invalid clone configuration: `tag` cannot be used with `noTags: true`."
            )
        depth = render_int(ctx, self.depth, "depth", 1)
        if depth is None or depth < 1:
            raise TaskError(f"property 'depth': must be at least 1, got {depth}")
        return _Plan(
            url=url,
            branch=branch,
            depth=depth,
            commit=render_str(ctx, self.commit, "commit") if self.commit is not None else None,
            tag=render_str(ctx, self.tag, "tag") if self.tag is not None else None,
            all_branches=all_branches,
            no_tags=no_tags,
            submodules=render_bool(ctx, self.cloneSubmodules, "cloneSubmodules", False),
        )

    async def run(self, ctx: TaskContext) -> TaskOutcome | Mapping[str, Any] | None:
        plan = self._plan(ctx)
        try:
            async with workspace(ctx) as root, self.git(ctx) as git:
                path = target_dir(root, render_str(ctx, self.directory, "directory"))
                ctx.log("INFO", f"Start cloning from '{git.redact(plan.url)}'")
                if _non_empty(path):
                    ctx.log("INFO", f"Target directory '{path}' is not empty, using init+fetch")
                    await self._init_fetch(ctx, git, plan, path)
                else:
                    await self._clone(ctx, git, plan, path)
                if plan.submodules:
                    await git("submodule", "update", "--init", "--recursive", cwd=path)
                _, top, _ = await git("rev-parse", "--show-toplevel", cwd=path)
                return {"directory": top.strip()}
        except GitKilled:
            return TaskOutcome(state="KILLED", error="killed")


PLUGINS: list[type[TaskPlugin]] = [Clone]
