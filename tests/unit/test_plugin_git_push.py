"""git.PushFlows and git.PushNamespaceFiles against real repositories: bare repositories on
disk (``file://``) and ``git http-backend`` with Basic auth (tests/git_support.py).

Deployed flows are read from a real FlowStore (the worker's StoreFlows), namespace files from
the real namespace file store; what reaches the remote is checked with a fresh clone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.git_support import PASSWORD, USER, GitServer, git, serve
from tests.git_tasks_support import World, bare_repo, checkout, logs

FLOW_A = """id: alpha
namespace: company.team
revision: 3
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi from company.team
"""
FLOW_B = """id: beta
namespace: company.team
tasks:
  - id: sub
    type: io.kestra.plugin.core.flow.Subflow
    namespace: company.team
    flowId: alpha
"""
FLOW_CHILD = """id: gamma
namespace: company.team.etl
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: child
"""
FLOW_OTHER = """id: delta
namespace: company.teammates
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: not a child
"""


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    for source in (FLOW_A, FLOW_B, FLOW_CHILD, FLOW_OTHER):
        w.deploy(source)
    return w


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    root = tmp_path / "srv"
    root.mkdir()
    with serve(root) as srv:
        yield srv


def push_flows(**props: object) -> dict[str, object]:
    return {"id": "push", "type": "io.kestra.plugin.git.PushFlows", **props}


def test_push_flows_over_http_creates_the_branch_with_the_author_and_message(
    world: World, server: GitServer, tmp_path: Path
) -> None:
    bare = bare_repo(server.root, "flows.git", {"README.md": "repo\n"})
    outcome, ctx = world.run(
        push_flows(
            url=f"{server.url}/flows.git",
            username=USER,
            password=PASSWORD,
            branch="dev",
            sourceNamespace="company.team",
            targetNamespace="company.prod",
            includeChildNamespaces=True,
            commitMessage="sync {{ flow.id }}",
            authorName="Ada",
            authorEmail="ada@example.com",
        )
    )
    assert outcome.state == "SUCCESS", outcome.error
    seen = checkout(bare, "dev", tmp_path / "seen")
    assert sorted(p.relative_to(seen).as_posix() for p in seen.rglob("*.yml")) == [
        "_flows/alpha.yml",
        "_flows/beta.yml",
        "_flows/etl/gamma.yml",
    ]
    alpha = (seen / "_flows/alpha.yml").read_text()
    assert "revision" not in alpha
    assert alpha.startswith("id: alpha\nnamespace: company.prod\n")
    # Kestra's rewrite: every line starting with `namespace: <source>` (the subflow's too).
    assert "    namespace: company.prod\n" in (seen / "_flows/beta.yml").read_text()
    assert "namespace: company.prod.etl\n" in (seen / "_flows/etl/gamma.yml").read_text()
    assert (seen / "README.md").read_text() == "repo\n"  # the branch started from main
    head = git("log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", cwd=seen)
    assert head == "Ada <ada@example.com>|Ada <ada@example.com>|sync gitops"
    sha = git("rev-parse", "HEAD", cwd=seen)
    assert outcome.outputs["commitId"] == sha
    assert outcome.outputs["commitURL"] == f"{server.url}/flows/commit/{sha}"
    rows = world.rows(str(outcome.outputs["flows"]))
    assert rows == [
        {"changes": "0", "file": "_flows/alpha.yml", "deletions": "-0", "additions": "+6"},
        {"changes": "0", "file": "_flows/beta.yml", "deletions": "-0", "additions": "+7"},
        {"changes": "0", "file": "_flows/etl/gamma.yml", "deletions": "-0", "additions": "+6"},
    ]
    messages = logs(ctx)
    assert "Branch dev does not exist, creating it" in messages
    assert f"Pushing to {server.url}/flows.git on branch dev" in messages
    text = "\n".join(messages) + str(outcome.outputs) + str(outcome.error)
    assert PASSWORD not in text


def test_dry_run_writes_the_diff_and_pushes_nothing(world: World, tmp_path: Path) -> None:
    bare = bare_repo(tmp_path, "flows.git", {"_flows/alpha.yml": "id: alpha\nold: 1\n"})
    before = git("rev-parse", "main", cwd=bare)
    outcome, ctx = world.run(
        push_flows(url=bare.as_uri(), dryRun=True, sourceNamespace="company.team")
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert git("rev-parse", "main", cwd=bare) == before
    assert "commitId" not in outcome.outputs
    rows = world.rows(str(outcome.outputs["flows"]))
    # alpha: 2 old lines -> 6 new ones, one edit that grew by 4 (JGit's counting)
    assert rows[0] == {
        "changes": "0",
        "file": "_flows/alpha.yml",
        "deletions": "-0",
        "additions": "+4",
    }
    assert [r["file"] for r in rows] == ["_flows/alpha.yml", "_flows/beta.yml"]
    assert any(m.startswith("Dry run — no changes will be pushed to") for m in logs(ctx))


def test_delete_removes_what_is_gone_but_not_ignored_or_unmatched_files(
    world: World, tmp_path: Path
) -> None:
    bare = bare_repo(
        tmp_path,
        "flows.git",
        {
            "_flows/alpha.yml": "stale\n",
            "_flows/old.yml": "id: old\n",
            "_flows/notes.md": "keep me, I am ignored\n",
            "_flows/.kestraignore": "*.md\n",
            "_flows/other.yml": "id: other\n",
            "elsewhere/x.yml": "outside gitDirectory\n",
        },
    )
    outcome, _ = world.run(
        push_flows(url=bare.as_uri(), sourceNamespace="company.team", flows=["alpha", "o*"])
    )
    assert outcome.state == "SUCCESS", outcome.error
    seen = checkout(bare, "main", tmp_path / "seen")
    names = sorted(
        p.relative_to(seen).as_posix()
        for p in seen.rglob("*")
        if ".git/" not in str(p) and p.is_file() and ".git" not in p.parts
    )
    # old.yml and other.yml match "o*" and are no flow any more; beta is not selected.
    assert names == [
        "_flows/.kestraignore",
        "_flows/alpha.yml",
        "_flows/notes.md",
        "elsewhere/x.yml",
    ]
    rows = world.rows(str(outcome.outputs["flows"]))
    assert [r["file"] for r in rows] == ["_flows/alpha.yml", "_flows/old.yml", "_flows/other.yml"]
    assert rows[1] == {
        "changes": "0",
        "file": "_flows/old.yml",
        "deletions": "-1",
        "additions": "+0",
    }

    # delete: false keeps them; a flow glob that matches nothing pushes nothing at all.
    bare2 = bare_repo(tmp_path, "flows2.git", {"_flows/old.yml": "id: old\n"})
    outcome, ctx = world.run(
        push_flows(url=bare2.as_uri(), sourceNamespace="company.team", flows="nothing*")
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {}
    assert "No content to push - skipping Git operations." in logs(ctx)
    assert git("ls-tree", "-r", "--name-only", "main", cwd=bare2) == "_flows/old.yml"
    outcome, _ = world.run(
        push_flows(url=bare2.as_uri(), sourceNamespace="company.team", delete=False)
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert git("ls-tree", "-r", "--name-only", "main", cwd=bare2).split() == [
        "_flows/alpha.yml",
        "_flows/beta.yml",
        "_flows/old.yml",
    ]


def test_an_empty_repository_gets_its_first_commit_on_the_branch_and_a_repush_is_a_no_op(
    world: World, tmp_path: Path
) -> None:
    bare = bare_repo(tmp_path, "empty.git")
    task = push_flows(url=bare.as_uri(), sourceNamespace="company.team", branch="release")
    outcome, _ = world.run(task)
    assert outcome.state == "SUCCESS", outcome.error
    assert git("log", "--format=%s", "release", cwd=bare) == "Add flows from company.team namespace"
    outcome, ctx = world.run(task)
    assert outcome.state == "SUCCESS", outcome.error
    assert "commitId" not in outcome.outputs
    assert "No changes to commit. Skipping push." in logs(ctx)
    assert world.rows(str(outcome.outputs["flows"])) == []
    assert git("rev-list", "--count", "release", cwd=bare) == "1"


def test_a_push_the_server_rejects_fails_with_its_answer(world: World, tmp_path: Path) -> None:
    bare = bare_repo(tmp_path, "guarded.git", {"README.md": "x\n"})
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch: ask an admin' >&2\nexit 1\n")
    hook.chmod(0o755)
    outcome, _ = world.run(push_flows(url=bare.as_uri(), sourceNamespace="company.team"))
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert outcome.error.startswith("git push failed:")
    assert "protected branch: ask an admin" in outcome.error


def test_push_flows_without_a_flow_store_fails_clearly(world: World, tmp_path: Path) -> None:
    bare = bare_repo(tmp_path, "flows.git", {"README.md": "x\n"})
    task = push_flows(url=bare.as_uri())
    ctx = world.context(task)
    ctx.flows = None
    import asyncio

    from executors.registry import Registry, add_plugins

    outcome = asyncio.run(add_plugins(Registry()).run(task, ctx))
    assert (outcome.state, outcome.error) == (
        "FAILED",
        "git.PushFlows needs the deployed flows, and this worker has none",
    )


# ----------------------------------------------------------------------- PushNamespaceFiles


def test_push_namespace_files_with_patterns_and_the_default_message(
    world: World, tmp_path: Path
) -> None:
    world.nsfiles.put_sync("company.team", "/scripts/etl.py", b"print('etl')\n")
    world.nsfiles.put_sync("company.team", "/scripts/util.py", b"X = 1\n")
    world.nsfiles.put_sync("company.team", "/sql/q.sql", b"select 1\n")
    world.nsfiles.put_sync("other", "/scripts/no.py", b"no\n")
    bare = bare_repo(tmp_path, "files.git", {"_files/scripts/gone.py": "old\n"})
    outcome, _ = world.run(
        {
            "id": "push",
            "type": "io.kestra.plugin.git.PushNamespaceFiles",
            "url": bare.as_uri(),
            "namespace": "company.team",
            "files": ["scripts/*.py"],
        }
    )
    assert outcome.state == "SUCCESS", outcome.error
    # Kestra matches the delete globs against the repository path, its name and its stem:
    # "scripts/*.py" matches none of "_files/scripts/gone.py", "gone.py", "gone": it stays.
    assert git("ls-tree", "-r", "--name-only", "main", cwd=bare).split() == [
        "_files/scripts/etl.py",
        "_files/scripts/gone.py",
        "_files/scripts/util.py",
    ]
    assert git("show", "main:_files/scripts/etl.py", cwd=bare) == "print('etl')"
    assert git("log", "-1", "--format=%s", "main", cwd=bare) == (
        "Add files from company.team namespace"
    )
    rows = world.rows(str(outcome.outputs["files"]))
    assert [r["file"] for r in rows] == ["_files/scripts/etl.py", "_files/scripts/util.py"]

    # Without patterns every file is a resource, and every other file goes.
    task = {"id": "push", "type": "io.kestra.plugin.git.PushNamespaceFiles", "url": bare.as_uri()}
    outcome, _ = world.run(task, namespace="company.team")
    assert outcome.state == "SUCCESS", outcome.error
    assert git("ls-tree", "-r", "--name-only", "main", cwd=bare).split() == [
        "_files/scripts/etl.py",
        "_files/scripts/util.py",
        "_files/sql/q.sql",
    ]
    rows = world.rows(str(outcome.outputs["files"]))
    assert [(r["file"], r["deletions"], r["additions"]) for r in rows] == [
        ("_files/scripts/gone.py", "-1", "+0"),
        ("_files/sql/q.sql", "-0", "+1"),
    ]

    outcome, _ = world.run(
        {
            "id": "push",
            "type": "io.kestra.plugin.git.PushNamespaceFiles",
            "url": bare.as_uri(),
            "namespace": "company.team",
            "files": "nothing/**",
            "errorOnMissing": True,
        }
    )
    assert (outcome.state, outcome.error) == (
        "FAILED",
        "No Namespace Files matched the provided 'files' parameter to commit.",
    )
