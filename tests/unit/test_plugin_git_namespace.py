"""git.NamespaceSync and git.TenantSync against real bare repositories, both directions.

Flows go through the worker's StoreFlows (hw.flows records kept in a list), files through the
real namespace file store; the repository is checked with a fresh clone.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.git_support import git
from tests.git_tasks_support import World, bare_repo, checkout, logs


def flow(flow_id: str, namespace: str, message: str = "hi") -> str:
    return (
        f"id: {flow_id}\nnamespace: {namespace}\ntasks:\n  - id: t\n"
        f"    type: io.kestra.plugin.core.log.Log\n    message: {message}\n"
    )


def task(kind: str, url: str, **props: object) -> dict[str, object]:
    return {"id": "sync", "type": f"io.kestra.plugin.git.{kind}", "url": url, "branch": "main",
            **props}  # fmt: skip


def test_namespace_sync_from_kestra_to_git(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.deploy(flow("alpha", "company.team"))
    world.deploy(flow("child", "company.team.sub"))  # another namespace: not synced
    world.nsfiles.put_sync("company.team", "/scripts/a.py", b"print(1)\n")
    bare = bare_repo(
        tmp_path,
        "repo.git",
        {
            "gitops/company.team/flows/stale.yaml": flow("stale", "company.team"),
            "gitops/company.team/files/old.txt": "old\n",
            "gitops/system/flows/keep.yaml": flow("keep", "system"),
            "README.md": "x\n",
        },
    )
    outcome, _ = world.run(
        task(
            "NamespaceSync",
            bare.as_uri(),
            namespace="company.team",
            gitDirectory="gitops",
            authorName="Bot",
            authorEmail="bot@example.com",
        )
    )
    assert outcome.state == "SUCCESS", outcome.error
    seen = checkout(bare, "main", tmp_path / "seen")
    tree = git("ls-tree", "-r", "--name-only", "HEAD", cwd=seen).split()
    assert tree == [
        "README.md",
        "gitops/company.team/files/scripts/a.py",
        "gitops/company.team/flows/alpha.yaml",
        "gitops/system/flows/keep.yaml",
    ]
    assert (seen / "gitops/company.team/flows/alpha.yaml").read_text() == flow(
        "alpha", "company.team"
    )
    assert git("log", "-1", "--format=%an|%s", cwd=seen) == "Bot|Namespace sync from Kestra"
    assert outcome.outputs["commitId"] == git("rev-parse", "HEAD", cwd=seen)
    lines = world.storage.read_sync(str(outcome.outputs["diff"])).decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"file": "gitops/company.team/files/old.txt", "additions": 0, "deletions": 1, "changes": 0},
        {
            "file": "gitops/company.team/files/scripts/a.py",
            "additions": 1,
            "deletions": 0,
            "changes": 0,
        },
        {
            "file": "gitops/company.team/flows/alpha.yaml",
            "additions": 6,
            "deletions": 0,
            "changes": 0,
        },
        {
            "file": "gitops/company.team/flows/stale.yaml",
            "additions": 0,
            "deletions": 6,
            "changes": 0,
        },
    ]
    assert world.published() == [
        ("company.team", "alpha", 1, False),
        ("company.team.sub", "child", 1, False),
    ]  # Git was not the source of truth: nothing deployed


def test_namespace_sync_from_git_to_kestra_with_deletes_and_protection(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.deploy(flow("alpha", "company.team", "old"))
    world.deploy(flow("doomed", "company.team"))
    world.nsfiles.put_sync("company.team", "/gone.txt", b"bye\n")
    world.nsfiles.put_sync("company.team", "/same.txt", b"same\n")
    files = {
        "company.team/flows/alpha.yaml": flow("alpha", "company.team", "new"),
        "company.team/flows/fresh.yml": flow("fresh", "company.team"),
        "company.team/flows/broken.yaml": "id: broken\nnamespace: company.team\ntasks: 1\n",
        "company.team/files/same.txt": "same\n",
        "company.team/files/dir/new.sql": "select 1\n",
    }
    bare = bare_repo(tmp_path, "repo.git", files)
    before_commit = git("rev-parse", "main", cwd=bare)

    # dryRun: the plan, nothing applied.
    props = {"namespace": "company.team", "sourceOfTruth": "GIT", "onInvalidSyntax": "WARN"}
    outcome, _ = world.run(task("NamespaceSync", bare.as_uri(), dryRun=True, **props))
    assert outcome.state == "SUCCESS", outcome.error
    (changes,) = world.rows(str(outcome.outputs["diff"]))
    assert sorted((c["key"], c["action"]) for c in changes) == [
        ("company.team:alpha", "UPDATED_KES"),
        ("company.team:dir/new.sql", "ADDED"),
        ("company.team:doomed", "DELETED_KES"),
        ("company.team:fresh", "ADDED"),
        ("company.team:gone.txt", "DELETED_KES"),
    ]
    assert world.published()[2:] == []

    outcome, ctx = world.run(task("NamespaceSync", bare.as_uri(), **props))
    assert outcome.state == "SUCCESS", outcome.error
    assert world.published()[2:] == [
        ("company.team", "alpha", 2, False),
        ("company.team", "doomed", 1, True),
        ("company.team", "fresh", 1, False),
    ]
    assert {f.path for f in world.nsfiles.all_files_sync("company.team")} == {
        "/dir/new.sql",
        "/same.txt",
    }
    assert any(m.startswith("FLOW company.team:broken couldn't be synced") for m in logs(ctx))
    assert git("rev-parse", "main", cwd=bare) == before_commit  # nothing to push back
    assert "No changes to commit." in " ".join(logs(ctx))

    # A protected namespace keeps what Git lacks; FAIL refuses.
    world.deploy(flow("precious", "system.core"))
    outcome, ctx = world.run(
        task("NamespaceSync", bare.as_uri(), namespace="system.core", sourceOfTruth="GIT")
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert world.flow("system.core", "precious") is not None
    assert "Protected namespace, skipping delete for FLOW system.core:precious" in logs(ctx)
    outcome, _ = world.run(
        task(
            "NamespaceSync",
            bare.as_uri(),
            namespace="system.core",
            sourceOfTruth="GIT",
            whenMissingInSource="FAIL",
        )
    )
    assert (outcome.state, outcome.error) == (
        "FAILED",
        "Sync failed: FLOW missing in Git but present in KESTRA: system.core:precious",
    )
    outcome, _ = world.run(
        task("NamespaceSync", bare.as_uri(), namespace="company.team", sourceOfTruth="GIT")
    )
    assert outcome.state == "FAILED"
    assert (outcome.error or "").startswith("Invalid syntax for FLOW company.team:broken: ")


def test_tenant_sync_from_git_covers_every_namespace(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.deploy(flow("lonely", "team.b"))
    world.nsfiles.put_sync("team.c", "/x.txt", b"x\n")
    bare = bare_repo(
        tmp_path,
        "repo.git",
        {
            "team.a/flows/one.yaml": flow("one", "team.a"),
            "team.a/files/f.txt": "f\n",
            "team.b/flows/two.yaml": flow("two", "team.b"),
            "notes/readme.md": "not a namespace\n",
        },
    )
    outcome, ctx = world.run(task("TenantSync", bare.as_uri(), sourceOfTruth="GIT"))
    assert outcome.state == "SUCCESS", outcome.error
    assert sorted(world.published()) == [
        ("team.a", "one", 1, False),
        ("team.b", "lonely", 1, False),
        ("team.b", "lonely", 1, True),
        ("team.b", "two", 1, False),
    ]
    assert world.nsfiles.read_sync("team.a", "/f.txt") == b"f\n"
    assert world.nsfiles.all_files_sync("team.c") == []
    assert [m for m in logs(ctx) if m.startswith("Processing namespace")] == [
        "Processing namespace team.a",
        "Processing namespace team.b",
        "Processing namespace team.c",
    ]
