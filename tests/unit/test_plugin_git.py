"""io.kestra.plugin.git.Clone against real git servers started here.

- Smart HTTP: ``git http-backend`` behind a small CGI HTTP server in this process, with Basic
  auth: ``username``/``password`` reach the server (and submodules on it) without appearing in
  argv, logs, errors or outputs; a wrong password fails with the server's answer.
- ``file://`` repositories for branch, tag, commit, depth, tags and the init+fetch path.
- A server that never answers: cancelling the task kills git's process group, the run is KILLED.
- The use users make of it: a flow WorkingDirectory [Clone, shell Commands] validates, and the
  shell task reads the cloned files in the same working directory.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engine.flows import flow_to_dict, load_flow
from executors.base import SECRET_MASK, TaskContext, TaskOutcome
from executors.registry import Registry, add_plugins
from executors.shell import ShellCommandsTask
from tests.git_support import PASSWORD, USER, git, serve
from tests.git_support import GitServer as _Server


class _Silent(BaseHTTPRequestHandler):
    """Accepts a request and never answers until the test ends."""

    server: _SilentServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.reached.set()
        self.server.release.wait(60)


class _SilentServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Silent)
        self.reached = threading.Event()
        self.release = threading.Event()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[_Server]:
    root = tmp_path / "srv"
    root.mkdir()
    with serve(root) as srv:
        yield srv


@pytest.fixture
def silent() -> Iterator[_SilentServer]:
    srv = _SilentServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def repo(server: _Server, tmp_path: Path) -> dict[str, str]:
    """``repo.git``: main (v1 then v2, annotated tag v1, lightweight tag light at v2), branch
    feature; ``sub.git`` and ``super.git`` (sub as a submodule served over HTTP)."""
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "README.md").write_text("hello v1\n")
    git("add", ".", cwd=work)
    git("commit", "-qm", "v1", cwd=work)
    v1 = git("rev-parse", "HEAD", cwd=work)
    git("tag", "-a", "v1", "-m", "release 1", cwd=work)
    (work / "README.md").write_text("hello v2\n")
    git("commit", "-qam", "v2", cwd=work)
    git("tag", "light", cwd=work)
    git("checkout", "-qb", "feature", cwd=work)
    (work / "feature.txt").write_text("feature work\n")
    git("add", ".", cwd=work)
    git("commit", "-qm", "feature", cwd=work)
    git("checkout", "-q", "main", cwd=work)
    git("clone", "-q", "--bare", str(work), str(server.root / "repo.git"))

    sub = tmp_path / "sub"
    sub.mkdir()
    git("init", "-q", "-b", "main", cwd=sub)
    (sub / "lib.txt").write_text("from the submodule\n")
    git("add", ".", cwd=sub)
    git("commit", "-qm", "lib", cwd=sub)
    git("clone", "-q", "--bare", str(sub), str(server.root / "sub.git"))
    sup = tmp_path / "super"
    sup.mkdir()
    git("init", "-q", "-b", "main", cwd=sup)
    git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "lib", cwd=sup)
    git("config", "-f", ".gitmodules", "submodule.lib.url", f"{server.url}/sub.git", cwd=sup)
    git("commit", "-qam", "with submodule", cwd=sup)
    git("clone", "-q", "--bare", str(sup), str(server.root / "super.git"))
    return {
        "http": f"{server.url}/repo.git",
        "file": (server.root / "repo.git").as_uri(),
        "super": f"{server.url}/super.git",
        "v1": v1,
    }


# ----------------------------------------------------------------------------- running it


class _Watch:
    """The worker's process watch: records the process groups a task reports."""

    def __init__(self) -> None:
        self.registered: list[int] = []
        self.unregistered: list[int] = []

    def register(self, pgid: int) -> None:
        self.registered.append(pgid)

    def unregister(self, pgid: int) -> None:
        self.unregistered.append(pgid)


def make_ctx(task: dict[str, Any], working_dir: Path | None, **hooks: Any) -> TaskContext:
    return TaskContext.for_job(
        execution_id="ex-1",
        task_run_id="tr-1",
        attempt=0,
        task=task,
        variables={"flow": {"id": "f", "namespace": "company.team"}, "inputs": {}},
        working_dir=None if working_dir is None else str(working_dir),
        **hooks,
    )


async def clone(
    working_dir: Path | None, **props: Any
) -> tuple[TaskOutcome, TaskContext, dict[str, Any]]:
    task = {"id": "clone", "type": "io.kestra.plugin.git.Clone", **props}
    ctx = make_ctx(task, working_dir)
    outcome = await add_plugins(Registry()).run(task, ctx)
    return outcome, ctx, task


def run_clone(working_dir: Path | None, **props: Any) -> tuple[TaskOutcome, TaskContext]:
    outcome, ctx, _ = asyncio.run(clone(working_dir, **props))
    return outcome, ctx


def everything(outcome: TaskOutcome, ctx: TaskContext, wd: Path | None = None) -> str:
    """All text a user can see: error, outputs, logs (and the clone's git config)."""
    text = f"{outcome.error}\n{outcome.outputs}\n" + "\n".join(m.message for m in ctx.logs)
    if wd is not None and (wd / ".git" / "config").exists():
        text += (wd / ".git" / "config").read_text()
    return text


# ----------------------------------------------------------------------------- HTTP + auth


def test_clone_over_http_with_basic_auth_into_the_working_dir(
    repo: dict[str, str], server: _Server, tmp_path: Path
) -> None:
    wd = tmp_path / "wd"
    outcome, ctx = run_clone(wd, url=repo["http"], username=USER, password=PASSWORD)
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"directory": str(wd.resolve())}
    assert (wd / "README.md").read_text() == "hello v2\n"
    assert git("rev-list", "--count", "HEAD", cwd=wd) == "1"  # depth 1 by default
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=wd) == "main"
    # cloneAllBranches defaults to true: the other branch came too, even shallow.
    assert "origin/feature" in git("branch", "-r", cwd=wd)
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert expected in server.auth_headers  # the credentials did reach the server
    assert f"Start cloning from '{repo['http']}'" in [m.message for m in ctx.logs]
    assert PASSWORD not in everything(outcome, ctx, wd)


def test_a_wrong_password_fails_with_the_servers_answer_and_no_password(
    repo: dict[str, str], tmp_path: Path
) -> None:
    wrong = "wrong-Pw-4471"
    outcome, ctx = run_clone(tmp_path / "wd", url=repo["http"], username=USER, password=wrong)
    assert outcome.state == "FAILED"
    assert "git clone failed" in (outcome.error or "")
    assert "Authentication failed" in (outcome.error or "")
    assert wrong not in everything(outcome, ctx)
    assert PASSWORD not in everything(outcome, ctx)


def test_no_credentials_for_a_protected_repository_fails_at_once(
    repo: dict[str, str], tmp_path: Path
) -> None:
    outcome, _ = run_clone(tmp_path / "wd", url=repo["http"])
    assert outcome.state == "FAILED"
    assert "terminal prompts disabled" in (outcome.error or "")


def test_credentials_in_the_url_are_masked(repo: dict[str, str], tmp_path: Path) -> None:
    url = repo["http"].replace("http://", f"http://{USER}:{PASSWORD}@")
    outcome, ctx = run_clone(tmp_path / "wd", url=url)
    assert outcome.state == "SUCCESS", outcome.error
    shown = repo["http"].replace("http://", f"http://{SECRET_MASK}@")
    assert f"Start cloning from '{shown}'" in [m.message for m in ctx.logs]
    assert PASSWORD not in everything(outcome, ctx)


def test_submodules_are_cloned_with_the_same_credentials(
    repo: dict[str, str], tmp_path: Path
) -> None:
    wd = tmp_path / "wd"
    outcome, _ = run_clone(
        wd, url=repo["super"], username=USER, password=PASSWORD, cloneSubmodules=True
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert (wd / "lib" / "lib.txt").read_text() == "from the submodule\n"

    plain = tmp_path / "plain"
    outcome, _ = run_clone(plain, url=repo["super"], username=USER, password=PASSWORD)
    assert outcome.state == "SUCCESS", outcome.error
    assert not (plain / "lib" / "lib.txt").exists()


# ----------------------------------------------------------------- branch, tag, commit, depth


def test_a_branch_only_with_clone_all_branches_false(repo: dict[str, str], tmp_path: Path) -> None:
    wd = tmp_path / "wd"
    outcome, ctx = run_clone(wd, url=repo["file"], branch="feature", cloneAllBranches=False)
    assert outcome.state == "SUCCESS", outcome.error
    assert (wd / "feature.txt").read_text() == "feature work\n"
    assert git("branch", "-r", cwd=wd).split() == ["origin/feature"]
    assert "Checked out branch feature" in [m.message for m in ctx.logs]


def test_depth_is_the_history_length(repo: dict[str, str], tmp_path: Path) -> None:
    wd = tmp_path / "wd"
    outcome, _ = run_clone(wd, url=repo["file"], depth=2, branch="refs/heads/main")
    assert outcome.state == "SUCCESS", outcome.error
    assert git("rev-list", "--count", "HEAD", cwd=wd) == "2"


def test_an_annotated_tag_is_checked_out_detached_with_full_history(
    repo: dict[str, str], tmp_path: Path
) -> None:
    wd = tmp_path / "wd"
    outcome, ctx = run_clone(wd, url=repo["file"], tag="v1", depth=1)
    assert outcome.state == "SUCCESS", outcome.error
    assert (wd / "README.md").read_text() == "hello v1\n"
    assert git("rev-parse", "HEAD", cwd=wd) == repo["v1"]
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=wd) == "HEAD"  # detached
    assert git("rev-list", "--count", "origin/main", cwd=wd) == "2"  # depth ignored
    assert f"Checked out tag v1 at commit {repo['v1']}" in [m.message for m in ctx.logs]


def test_a_short_commit_sha_is_checked_out_detached(repo: dict[str, str], tmp_path: Path) -> None:
    wd = tmp_path / "wd"
    outcome, ctx = run_clone(wd, url=repo["file"], commit=repo["v1"][:8], branch="feature")
    assert outcome.state == "SUCCESS", outcome.error
    assert git("rev-parse", "HEAD", cwd=wd) == repo["v1"]
    assert not (wd / "feature.txt").exists()  # commit overrides branch
    assert f"Checked out commit {repo['v1']} (detached HEAD)" in [m.message for m in ctx.logs]


def test_unknown_commit_and_tag_are_clear_failures(repo: dict[str, str], tmp_path: Path) -> None:
    outcome, _ = run_clone(tmp_path / "a", url=repo["file"], commit="deadbeef")
    assert outcome.state == "FAILED"
    assert (
        outcome.error == "Failed to checkout commit deadbeef: Cannot resolve commit SHA: deadbeef"
    )
    outcome, _ = run_clone(tmp_path / "b", url=repo["file"], tag="v9")
    assert (outcome.state, outcome.error) == ("FAILED", "Cannot resolve tag: v9")


def test_tags_come_unless_no_tags(repo: dict[str, str], tmp_path: Path) -> None:
    outcome, _ = run_clone(tmp_path / "a", url=repo["file"], depth=5)
    assert outcome.state == "SUCCESS", outcome.error
    assert git("tag", cwd=tmp_path / "a").split() == ["light", "v1"]
    outcome, _ = run_clone(tmp_path / "b", url=repo["file"], depth=5, noTags=True)
    assert outcome.state == "SUCCESS", outcome.error
    assert git("tag", cwd=tmp_path / "b") == ""


@pytest.mark.parametrize(
    ("props", "error"),
    [
        (
            {"cloneAllBranches": False},
            "Invalid clone configuration: when `cloneAllBranches` is false, `branch` must be set.",
        ),
        (
            {"tag": "v1", "noTags": True},
            "Invalid clone configuration: `tag` cannot be used with `noTags: true`.",
        ),
        ({"depth": 0}, "property 'depth': must be at least 1, got 0"),
        (
            {"directory": "../outside"},
            "property 'directory': '../outside' must be a relative path inside the working"
            " directory",
        ),
    ],
)
def test_invalid_configurations(
    repo: dict[str, str], tmp_path: Path, props: dict[str, Any], error: str
) -> None:
    outcome, _ = run_clone(tmp_path / "wd", url=repo["file"], **props)
    assert (outcome.state, outcome.error) == ("FAILED", error)
    assert not (tmp_path / "outside").exists()


# ----------------------------------------------------------------- where the clone goes


def test_directory_is_a_sub_directory_of_the_working_dir(
    repo: dict[str, str], tmp_path: Path
) -> None:
    wd = tmp_path / "wd"
    outcome, _ = run_clone(wd, url=repo["file"], directory="code/app")
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"directory": str((wd / "code" / "app").resolve())}
    assert (wd / "code" / "app" / "README.md").exists()


@pytest.mark.parametrize("branch", [None, "feature"])
def test_a_non_empty_target_is_init_fetch_checkout_and_keeps_its_files(
    repo: dict[str, str], tmp_path: Path, branch: str | None
) -> None:
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "input.csv").write_text("a,b\n")  # e.g. a WorkingDirectory's inputFiles
    props = {"branch": branch} if branch else {}
    outcome, ctx = run_clone(wd, url=repo["http"], username=USER, password=PASSWORD, **props)
    assert outcome.state == "SUCCESS", outcome.error
    assert (wd / "input.csv").read_text() == "a,b\n"
    expected = branch or "main"
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=wd) == expected
    assert git("rev-parse", "--abbrev-ref", f"{expected}@{{upstream}}", cwd=wd) == (
        f"origin/{expected}"
    )
    assert git("rev-list", "--count", "HEAD", cwd=wd) == "1"
    assert (wd / "feature.txt").exists() == (branch == "feature")
    assert f"Checked out branch {expected} from origin/{expected}" in [m.message for m in ctx.logs]
    assert PASSWORD not in everything(outcome, ctx, wd)


def test_without_a_working_dir_the_clone_is_temporary(repo: dict[str, str]) -> None:
    outcome, _ = run_clone(None, url=repo["file"])
    assert outcome.state == "SUCCESS", outcome.error
    directory = Path(outcome.outputs["directory"])
    assert directory.name.startswith("hw-task-")
    assert not directory.exists()  # removed with the task, as a script task's directory


def test_git_config_is_applied_to_the_clone(repo: dict[str, str], tmp_path: Path) -> None:
    wd = tmp_path / "wd"
    outcome, ctx = run_clone(
        wd,
        url=repo["file"],
        gitConfig={
            "core.fileMode": False,
            "Core.autocrlf": "  input ",
            "remote.origin.fetch": ["+refs/heads/*:refs/remotes/origin/*", "+refs/x:refs/x"],
            "user.name": "",
            "nodot": "x",
        },
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert git("config", "core.filemode", cwd=wd) == "false"
    assert git("config", "core.autocrlf", cwd=wd) == "input"
    fetch = git("config", "--get-all", "remote.origin.fetch", cwd=wd).splitlines()
    assert fetch == ["+refs/heads/*:refs/remotes/origin/*", "+refs/x:refs/x"]
    messages = [(m.level, m.message) for m in ctx.logs]
    assert ("INFO", "Unset git gitRepoConfig user.name") in messages
    assert any(level == "WARN" and "nodot" in text for level, text in messages)
    assert ("INFO", "Applied 5 git configuration settings") in messages


def test_git_missing_on_the_worker(
    repo: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    outcome, _ = run_clone(tmp_path / "wd", url=repo["file"])
    assert outcome.state == "FAILED"
    assert (outcome.error or "").startswith("git not found on this worker")


async def test_cancelling_kills_the_git_process_group(
    silent: _SilentServer, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{silent.server_address[1]}/repo.git"
    task = {"id": "clone", "type": "io.kestra.plugin.git.Clone", "url": url}
    watch = _Watch()
    ctx = make_ctx(task, tmp_path / "wd", process_watch=watch)
    running = asyncio.create_task(add_plugins(Registry()).run(task, ctx))
    assert await asyncio.to_thread(silent.reached.wait, 30)  # git is waiting on the server
    ctx.cancelled.set()
    outcome = await running
    assert outcome.state == "KILLED"
    assert len(watch.registered) == 1
    assert watch.unregistered == watch.registered
    # The whole group (git and its git-remote-http child) is dead; SIGKILL is delivered
    # asynchronously and init reaps the orphans, hence the bounded wait.
    for _ in range(200):
        if not _live_members(watch.registered[0]):
            break
        await asyncio.sleep(0.05)
    assert _live_members(watch.registered[0]) == []


def _live_members(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that are neither gone nor zombies."""
    live = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(entry.name))
    return live


# ----------------------------------------------------------------- how flows use it

FLOW = """
id: git_shell
namespace: company.team
tasks:
  - id: wdir
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: clone
        type: io.kestra.plugin.git.Clone
        url: "{{ inputs.repo }}"
        branch: main
        username: alice
        password: "{{ inputs.pw }}"
      - id: show
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - cat README.md
"""


async def test_a_working_directory_flow_clones_then_a_shell_task_reads_the_files(
    repo: dict[str, str], tmp_path: Path
) -> None:
    flow = flow_to_dict(load_flow(FLOW))
    clone_task, show_task = flow["tasks"][0]["tasks"]
    wd = tmp_path / "wd" / "wdir-run"  # what the worker shares inside a WorkingDirectory
    variables = {
        "flow": {"id": "git_shell", "namespace": "company.team"},
        "inputs": {"repo": repo["http"], "pw": PASSWORD},
    }

    def ctx_for(task: dict[str, Any], run_id: str) -> TaskContext:
        return TaskContext.for_job(
            execution_id="ex-1",
            task_run_id=run_id,
            attempt=0,
            task=task,
            variables=variables,
            working_dir=str(wd),
        )

    cloned_ctx = ctx_for(clone_task, "tr-clone")
    cloned = await add_plugins(Registry()).run(clone_task, cloned_ctx)
    assert cloned.state == "SUCCESS", cloned.error
    shown_ctx = ctx_for(show_task, "tr-show")
    shown = await ShellCommandsTask().run(show_task, shown_ctx)
    assert shown.state == "SUCCESS", shown.error
    assert [m.message for m in shown_ctx.logs] == ["hello v2"]
    assert PASSWORD not in everything(cloned, cloned_ctx)


def test_read_timeout_aborts_a_silent_server(silent: _SilentServer, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{silent.server_address[1]}/repo.git"
    outcome, _ = run_clone(tmp_path / "wd", url=url, readTimeout=1000)
    assert outcome.state == "FAILED"
    assert "too slow" in (outcome.error or "").lower()


@pytest.fixture
def https_server(
    server: _Server, repo: dict[str, str], tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    """The same repositories over HTTPS with a self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True, check=True,
    )  # fmt: skip
    srv = _Server(server.root)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{srv.server_address[1]}/repo.git", cert
    srv.shutdown()
    srv.server_close()


def test_trusted_ca_pem_path_trusts_a_self_signed_server(
    https_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, cert = https_server
    creds = {"username": USER, "password": PASSWORD}
    outcome, _ = run_clone(tmp_path / "a", url=url, **creds)
    assert outcome.state == "FAILED"
    assert "certificate" in (outcome.error or "").lower()
    outcome, _ = run_clone(tmp_path / "b", url=url, trustedCaPemPath=str(cert), **creds)
    assert outcome.state == "SUCCESS", outcome.error
    assert (tmp_path / "b" / "README.md").read_text() == "hello v2\n"
