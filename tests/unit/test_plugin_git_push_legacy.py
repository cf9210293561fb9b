"""The deprecated git.Push against real bare repositories: with a url it replaces the branch's
content with what the task writes (input files, namespace files, the namespace's flows);
without one it commits the repository a Clone left in the same working directory."""

from __future__ import annotations

from pathlib import Path

from tests.git_support import git
from tests.git_tasks_support import World, bare_repo, checkout, logs

FLOW = """id: hello
namespace: company.team
revision: 7
tasks:
  - id: t
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


def test_push_with_a_url_replaces_the_branch_content(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.deploy(FLOW)
    world.deploy(FLOW.replace("company.team", "company.team.sub").replace("revision: 7\n", ""))
    world.deploy(FLOW.replace("company.team", "elsewhere"))
    world.nsfiles.put_sync("company.team", "/scripts/run.sh", b"echo hi\n")
    bare = bare_repo(tmp_path, "repo.git", {"old.txt": "old\n", "keep/also-old.txt": "x\n"})
    outcome, ctx = world.run(
        {
            "id": "push",
            "type": "io.kestra.plugin.git.Push",
            "url": bare.as_uri(),
            "branch": "main",
            "commitMessage": "export {{ flow.namespace }}",
            "inputFiles": {"data/today.txt": "42"},
            "namespaceFiles": {"enabled": True},
            "username": "someone",
            "author": {"email": "someone@example.com"},
        },
        namespace="company.team",
    )
    assert outcome.state == "SUCCESS", outcome.error
    seen = checkout(bare, "main", tmp_path / "seen")
    assert git("ls-tree", "-r", "--name-only", "HEAD", cwd=seen).split() == [
        "_flows/company.team.hello.yml",
        "_flows/company.team.sub.hello.yml",
        "data/today.txt",
        "scripts/run.sh",
    ]
    assert "revision" not in (seen / "_flows/company.team.hello.yml").read_text()
    assert git("log", "-1", "--format=%an <%ae>|%s", cwd=seen) == (
        "someone <someone@example.com>|export company.team"
    )
    assert outcome.outputs == {"commitId": git("rev-parse", "HEAD", cwd=seen)}
    assert f"Pushing to {bare.as_uri()}/tree/main" in logs(ctx)


def test_push_without_a_url_commits_what_a_clone_left(tmp_path: Path) -> None:
    world = World(tmp_path)
    bare = bare_repo(tmp_path, "repo.git", {"README.md": "v1\n"})
    wd = tmp_path / "shared"
    outcome, _ = world.run(
        {"id": "clone", "type": "io.kestra.plugin.git.Clone", "url": bare.as_uri()},
        working_dir=wd,
    )
    assert outcome.state == "SUCCESS", outcome.error
    (wd / "README.md").write_text("v2\n")
    (wd / "report.csv").write_text("a,b\n")
    outcome, _ = world.run(
        {
            "id": "push",
            "type": "io.kestra.plugin.git.Push",
            "branch": "feature",
            "commitMessage": "report",
            "flows": {"enabled": False},
            "addFilesPattern": ["report.csv"],
        },
        working_dir=wd,
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert git("show", "feature:report.csv", cwd=bare) == "a,b"
    assert git("show", "feature:README.md", cwd=bare) == "v1"  # not in addFilesPattern
    assert git("rev-parse", "feature^", cwd=bare) == git("rev-parse", "main", cwd=bare)

    outcome, _ = world.run(
        {"id": "push", "type": "io.kestra.plugin.git.Push", "branch": "b", "commitMessage": "m"}
    )
    assert outcome.state == "FAILED"
    assert outcome.error == (
        "no git repository in '.': set url, or clone one first in the same WorkingDirectory"
    )
