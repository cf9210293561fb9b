"""git.SyncFlows, git.SyncFlow and git.SyncNamespaceFiles against real bare repositories.

Flows are deployed through the worker's StoreFlows (engine.flows.deploy, the API's path): each
deploy or delete is a hw.flows record, kept in a list here, so the tests see exactly what would
reach Kafka. The round trip: PushFlows exports, a person changes the repository, SyncFlows
deploys the change back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.git_support import git
from tests.git_tasks_support import World, bare_repo, checkout, logs

ALPHA = """id: alpha
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: v1
"""
BETA = """id: beta
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: beta
"""
DOOMED = """id: doomed
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: not in git
"""
# The flow running the sync lives in the synced namespace: it is never deleted.
SELF = """id: gitops
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: me
"""


def commit_files(bare: Path, tmp: Path, files: dict[str, str | None], message: str) -> None:
    work = checkout(bare, "main", tmp / f"edit-{message.replace(' ', '-')}")
    for path, text in files.items():
        target = work / path
        if text is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git("add", "-A", ".", cwd=work)
    git("commit", "-qm", message, cwd=work)
    git("push", "-q", "origin", "main", cwd=work)


def sync_flows(url: str, **props: object) -> dict[str, object]:
    return {
        "id": "sync",
        "type": "io.kestra.plugin.git.SyncFlows",
        "url": url,
        "targetNamespace": "company.team",
        **props,
    }


def test_a_flow_round_trip_push_change_sync(tmp_path: Path) -> None:
    world = World(tmp_path)
    for source in (ALPHA, BETA, DOOMED, SELF):
        world.deploy(source)
    bare = bare_repo(tmp_path, "flows.git", {"README.md": "flows\n"})
    outcome, _ = world.run(
        {
            "id": "push",
            "type": "io.kestra.plugin.git.PushFlows",
            "url": bare.as_uri(),
            "sourceNamespace": "company.team",
            "flows": ["alpha", "beta"],
        },
        namespace="company.team",
    )
    assert outcome.state == "SUCCESS", outcome.error
    # A person edits alpha, adds a flow for a child namespace and a broken file.
    new_alpha = ALPHA.replace("message: v1", "message: v2")
    child = BETA.replace("id: beta", "id: nightly").replace("company.team", "whatever")
    commit_files(
        bare,
        tmp_path,
        {
            "_flows/alpha.yml": new_alpha,
            "_flows/etl/nightly.yml": child,
            "_flows/broken.yml": "id: broken\nnamespace: x\ntasks: 3\n",
            "_flows/.gitkeep": "",
        },
        "edit flows",
    )
    before = len(world.records)
    outcome, ctx = world.run(
        sync_flows(
            bare.as_uri(), includeChildNamespaces=True, delete=True, ignoreInvalidFlows=True
        ),
        namespace="company.team",
        flow_id="gitops",
    )
    assert outcome.state == "SUCCESS", outcome.error
    # Exactly: alpha revision 2, the child flow, doomed deleted. beta unchanged: no record.
    assert world.published()[before:] == [
        ("company.team", "alpha", 2, False),
        ("company.team.etl", "nightly", 1, False),
        ("company.team", "doomed", 1, True),
    ]
    assert "message: v2" in world.flow("company.team", "alpha").source
    assert world.flow("company.team", "doomed") is None
    assert world.flow("company.team", "gitops") is not None  # the running flow is kept
    nightly = world.flow("company.team.etl", "nightly")
    assert "namespace: company.team.etl" in nightly.source
    rows = world.rows(str(outcome.outputs["flows"]))
    assert rows == [
        {"syncState": "DELETED", "flowId": "doomed", "namespace": "company.team", "revision": 1},
        {
            "gitPath": "_flows/alpha.yml",
            "syncState": "UPDATED",
            "flowId": "alpha",
            "namespace": "company.team",
            "revision": 2,
        },
        {
            "gitPath": "_flows/beta.yml",
            "syncState": "UNCHANGED",
            "flowId": "beta",
            "namespace": "company.team",
            "revision": 1,
        },
        {
            "gitPath": "_flows/etl/nightly.yml",
            "syncState": "ADDED",
            "flowId": "nightly",
            "namespace": "company.team.etl",
            "revision": 1,
        },
    ]
    warned = [m for m in logs(ctx) if m.startswith("Invalid flow imported from Git (broken.yml)")]
    assert len(warned) == 1

    # Sync again: nothing changes, nothing is written.
    count = len(world.records)
    outcome, _ = world.run(
        sync_flows(bare.as_uri(), includeChildNamespaces=True, ignoreInvalidFlows=True)
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert len(world.records) == count
    states = {r["flowId"]: r["syncState"] for r in world.rows(str(outcome.outputs["flows"]))}
    assert states == {"alpha": "UNCHANGED", "beta": "UNCHANGED", "nightly": "UNCHANGED"}


def test_dry_run_deploys_nothing_and_projects_revisions(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.deploy(ALPHA)
    world.deploy(DOOMED)
    bare = bare_repo(
        tmp_path,
        "flows.git",
        {"_flows/alpha.yml": ALPHA.replace("v1", "v9"), "_flows/beta.yml": BETA},
    )
    before = list(world.records)
    outcome, _ = world.run(sync_flows(bare.as_uri(), dryRun=True, delete=True))
    assert outcome.state == "SUCCESS", outcome.error
    assert world.records == before
    assert world.flow("company.team", "doomed") is not None
    rows = world.rows(str(outcome.outputs["flows"]))
    assert [(r.get("gitPath"), r["syncState"], r["revision"]) for r in rows] == [
        (None, "DELETED", 1),
        ("_flows/alpha.yml", "UPDATED", 2),
        ("_flows/beta.yml", "ADDED", 1),
    ]


def test_children_are_not_read_without_include_child_namespaces(tmp_path: Path) -> None:
    world = World(tmp_path)
    bare = bare_repo(tmp_path, "flows.git", {"_flows/etl/x.yml": BETA, "_flows/beta.yml": BETA})
    outcome, _ = world.run(sync_flows(bare.as_uri()))
    assert outcome.state == "SUCCESS", outcome.error
    assert world.published() == [("company.team", "beta", 1, False)]


def test_an_invalid_flow_fails_the_sync_naming_the_file(tmp_path: Path) -> None:
    world = World(tmp_path)
    bare = bare_repo(
        tmp_path, "flows.git", {"_flows/bad.yml": "id: bad\nnamespace: x\ntasks: []\nfoo: 1\n"}
    )
    outcome, _ = world.run(sync_flows(bare.as_uri()))
    assert outcome.state == "FAILED"
    assert (outcome.error or "").startswith(
        "Invalid flow imported from Git (bad.yml): invalid flow"
    )
    assert world.records == []


def test_a_missing_git_directory(tmp_path: Path) -> None:
    world = World(tmp_path)
    bare = bare_repo(tmp_path, "flows.git", {"README.md": "x\n", "file": "not a folder\n"})
    outcome, _ = world.run(sync_flows(bare.as_uri(), branch="main"))
    assert (outcome.state, outcome.error) == (
        "FAILED",
        "The directory '_flows' was not found in the git repository. Verify if the path exists"
        " in the specified branch 'main'.",
    )
    outcome, _ = world.run(sync_flows(bare.as_uri(), failOnMissingDirectory=False))
    assert outcome.state == "SUCCESS", outcome.error
    assert world.rows(str(outcome.outputs["flows"])) == []
    outcome, _ = world.run(sync_flows(bare.as_uri(), gitDirectory="file"))
    assert outcome.state == "FAILED"
    assert "exists but is a file, not a directory" in (outcome.error or "")


def test_sync_flow_deploys_one_file(tmp_path: Path) -> None:
    world = World(tmp_path)
    bare = bare_repo(tmp_path, "flows.git", {"deep/path/a.yaml": BETA})
    task = {
        "id": "one",
        "type": "io.kestra.plugin.git.SyncFlow",
        "url": bare.as_uri(),
        "targetNamespace": "prod.apps",
        "flowPath": "deep/path/a.yaml",
    }
    outcome, _ = world.run({**task, "dryRun": True})
    assert outcome.outputs == {"flowId": "beta", "namespace": "prod.apps", "revision": 1}
    assert world.records == []
    outcome, _ = world.run(task)
    assert outcome.outputs == {"flowId": "beta", "namespace": "prod.apps", "revision": 1}
    assert world.published() == [("prod.apps", "beta", 1, False)]
    outcome, _ = world.run({**task, "flowPath": "nope.yml"})
    assert (outcome.state, outcome.error) == ("FAILED", "Flow file not found at path: nope.yml")


# ------------------------------------------------------------------------- namespace files


@pytest.mark.parametrize("dry_run", [False, True])
def test_sync_namespace_files(tmp_path: Path, dry_run: bool) -> None:
    world = World(tmp_path)
    ns = world.nsfiles
    ns.put_sync("company.team", "/same.txt", b"same\n")
    ns.put_sync("company.team", "/scripts/changed.py", b"old\n")
    ns.put_sync("company.team", "/gone/old.sql", b"select 0\n")
    bare = bare_repo(
        tmp_path,
        "files.git",
        {
            "_files/same.txt": "same\n",
            "_files/scripts/changed.py": "new\n",
            "_files/scripts/new.py": "print(1)\n",
            "_files/docs/readme.md": "ignored\n",
            "_files/.kestraignore": "docs/\n",
        },
    )
    outcome, _ = world.run(
        {
            "id": "files",
            "type": "io.kestra.plugin.git.SyncNamespaceFiles",
            "url": bare.as_uri(),
            "delete": True,
            "dryRun": dry_run,
        },
        namespace="company.team",
    )
    assert outcome.state == "SUCCESS", outcome.error
    rows = world.rows(str(outcome.outputs["files"]))
    prefix = "/company/team/_files"
    assert rows == [
        {"syncState": "DELETED", "kestraPath": f"{prefix}/gone/"},
        {"syncState": "DELETED", "kestraPath": f"{prefix}/gone/old.sql"},
        {
            "gitPath": "_files/.kestraignore",
            "syncState": "ADDED",
            "kestraPath": f"{prefix}/.kestraignore",
        },
        {
            "gitPath": "_files/same.txt",
            "syncState": "UNCHANGED",
            "kestraPath": f"{prefix}/same.txt",
        },
        {
            "gitPath": "_files/scripts/",
            "syncState": "UNCHANGED",
            "kestraPath": f"{prefix}/scripts/",
        },
        {
            "gitPath": "_files/scripts/changed.py",
            "syncState": "OVERWRITTEN",
            "kestraPath": f"{prefix}/scripts/changed.py",
        },
        {
            "gitPath": "_files/scripts/new.py",
            "syncState": "ADDED",
            "kestraPath": f"{prefix}/scripts/new.py",
        },
    ]
    files = {f.path: f.local.read_bytes() for f in ns.all_files_sync("company.team")}
    if dry_run:
        assert files == {
            "/same.txt": b"same\n",
            "/scripts/changed.py": b"old\n",
            "/gone/old.sql": b"select 0\n",
        }
    else:
        assert files == {
            "/.kestraignore": b"docs/\n",
            "/same.txt": b"same\n",
            "/scripts/changed.py": b"new\n",
            "/scripts/new.py": b"print(1)\n",
        }
