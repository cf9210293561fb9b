"""What the git tasks that commit, push and sync share (no task type here).

- :func:`kestra_ignore`: Kestra's ``.kestraignore`` (gitignore syntax, read from the synced or
  pushed folder; the file itself is never ignored by it).
- :func:`staged_diff`: the rows of Kestra's push diff file, from ``git diff --cached -U0``:
  per file, JGit's edit counting (an edit that grows adds lines, one that shrinks deletes
  lines, one of equal size changes lines), sorted by path.
- :func:`commit_and_push`: ``git commit`` (never an empty one: "No changes to commit. Skipping
  push.") with the author as committer too, then ``git push origin HEAD:refs/heads/<branch>``;
  a rejected push fails the task with the server's answer.
- :func:`http_url` / :func:`commit_url`: Kestra's ``GitService.getHttpUrl`` and
  ``buildCommitUrl`` (``git@host:path`` becomes ``https://host/path``, credentials are dropped,
  ``.git`` removed, ``/commit/<sha>``, Bitbucket's ``/commits/``, Azure's ``refName``).
- :func:`store_ion`: a diff file in internal storage, one Ion value per line.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import pathspec

from engine.stores.nsfiles import glob_regex
from executors import ion
from executors.base import TaskContext, TaskError, to_text
from executors.plugins.git import GitRunner

KESTRA_IGNORE = ".kestraignore"
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_SSH_URL = re.compile(r"git@(?:ssh\.)?([^:]+):(?:v\d*/)?(.*)")
# Paths are passed to git literally (no pathspec magic: a file named '*.py' is that file).
LITERAL = {"GIT_LITERAL_PATHSPECS": "1"}


def kestra_ignore(folder: Path) -> Callable[[str], bool]:
    """Whether a path relative to ``folder`` is ignored by its ``.kestraignore``."""
    try:
        lines = (folder / KESTRA_IGNORE).read_text("utf-8").splitlines()
    except FileNotFoundError:
        return lambda _path: False
    except OSError as exc:
        raise TaskError(f"cannot read {KESTRA_IGNORE}: {exc.strerror}") from exc
    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    return lambda path: path != KESTRA_IGNORE and spec.match_file(path)


def render_globs(ctx: TaskContext, value: Any, name: str) -> list[str] | None:
    """A glob property: a list, a JSON text of one, or one pattern; None when unset."""
    if value is None:
        return None
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        try:
            parsed = orjson.loads(rendered)
        except orjson.JSONDecodeError:
            parsed = rendered
        rendered = parsed if isinstance(parsed, list) else [rendered]
    if not isinstance(rendered, list):
        raise TaskError(f"property '{name}': expected a pattern or a list of patterns")
    return [to_text(g) for g in rendered]


def glob_matchers(globs: Iterable[str]) -> list[re.Pattern[str]]:
    """Java's ``glob:`` path matchers (``*`` stays in one folder, ``**`` crosses them)."""
    try:
        return [glob_regex("glob:" + g) for g in globs]
    except re.error as exc:
        raise TaskError(f"invalid glob pattern: {exc}") from exc


async def staged_diff_counts(git: GitRunner, repo: Path) -> list[tuple[str, int, int, int]]:
    """(path, additions, deletions, changes) of every staged file, sorted by path: JGit's
    counting of the edits of ``git diff --cached -U0``."""
    _, out, _ = await git(
        "-c", "core.quotePath=false", "diff", "--cached", "--no-renames", "--no-color",
        "--no-ext-diff", "-U0", cwd=repo,
    )  # fmt: skip
    counts: dict[str, list[int]] = {}
    current: list[int] | None = None
    for line in out.splitlines():
        if line.startswith("diff --git a/"):
            both = line[len("diff --git a/") :]
            current = counts.setdefault(both[: (len(both) - 3) // 2], [0, 0, 0])
            continue
        match = _HUNK.match(line)
        if match is None or current is None:
            continue
        before = int(match.group(1)) if match.group(1) is not None else 1
        after = int(match.group(2)) if match.group(2) is not None else 1
        grown = after - before
        if grown > 0:
            current[0] += grown
        elif grown < 0:
            current[1] += -grown
        else:
            current[2] += after
    return [(path, a, d, c) for path, (a, d, c) in sorted(counts.items())]


async def staged_diff(git: GitRunner, repo: Path) -> list[dict[str, str]]:
    """Kestra's push diff rows of what is staged (``{changes, file, deletions, additions}``)."""
    return [
        {"changes": str(c), "file": path, "deletions": f"-{d}", "additions": f"+{a}"}
        for path, a, d, c in await staged_diff_counts(git, repo)
    ]


async def _identity(
    git: GitRunner, repo: Path, name: str | None, email: str | None
) -> dict[str, str]:
    """The commit's author and committer: both given, else JGit's default identity (the
    repository's or user's ``user.name``/``user.email``, else the OS user and user@host)."""
    if name and email:
        return {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
    env: dict[str, str] = {}
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "headwater"
    for key, fallback in (("name", user), ("email", f"{user}@{socket.gethostname()}")):
        code, value, _ = await git("config", f"user.{key}", cwd=repo, check=False)
        if code != 0 or not value.strip():
            env[f"GIT_AUTHOR_{key.upper()}"] = fallback
            env[f"GIT_COMMITTER_{key.upper()}"] = fallback
    return env


async def commit_and_push(
    ctx: TaskContext,
    git: GitRunner,
    repo: Path,
    *,
    branch: str,
    message: str | None,
    author: tuple[str | None, str | None],
) -> str | None:
    """Commit what is staged and push it to ``branch``; the commit id, None when nothing was
    staged."""
    code, _, _ = await git("diff", "--cached", "--quiet", cwd=repo, check=False)
    if code == 0:
        ctx.log("INFO", "No changes to commit. Skipping push.")
        return None
    if not message:
        raise TaskError("property 'commitMessage' is required")
    env = await _identity(git, repo, *author)
    await git("commit", "--quiet", "--no-verify", "-m", message, cwd=repo, env=env)
    _, sha, _ = await git("rev-parse", "HEAD", cwd=repo)
    await git("push", "--porcelain", "origin", f"HEAD:refs/heads/{branch}", cwd=repo)
    return sha.strip()


def http_url(url: str) -> str:
    """Kestra's ``GitService.getHttpUrl``."""
    match = _SSH_URL.fullmatch(url)
    if match:
        out = match.group(1) + "/" + match.group(2)
        if "azure.com" in out:
            cut = out.rfind("/")
            out = out[:cut] + "/_git/" + out[cut + 1 :]
        return "https://" + out
    if "@" in url:
        return re.sub(r"//.*@", "//", url, count=1)
    return url


def commit_url(url: str, branch: str, commit_id: str | None) -> str | None:
    """Kestra's ``buildCommitUrl``."""
    if commit_id is None:
        return None
    base = re.sub(r"\.git$", "", url)
    route = "commits" if "bitbucket.org" in base else "commit"
    out = f"{base}/{route}/{commit_id}"
    if "azure.com" in base:
        out += f"?refName=refs%2Fheads%2F{branch}"
    return out


async def store_ion(ctx: TaskContext, name: str, rows: list[dict[str, Any]]) -> str:
    """Rows as an Ion file (one value per line) in internal storage; its URI."""
    if ctx.storage is None:
        raise TaskError("this task writes its diff file to internal storage, and has none")
    body = "".join(ion.dumps(row) + "\n" for row in rows).encode()
    return await ctx.storage.put(ctx.execution_id, name, body)


async def read_bytes(path: Path) -> bytes:
    return await asyncio.to_thread(path.read_bytes)


def walk_files(folder: Path) -> list[Path]:
    """Regular files under ``folder`` (not through ``.git`` folders or symbolic links)."""
    found: list[Path] = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            path = Path(top) / name
            if path.is_file() and not path.is_symlink():
                found.append(path)
    return found
