"""``namespaceFiles`` of script tasks: the real shell and Python runs read files from the real
namespace file store (engine.stores.nsfiles on a LocalStorage), through the task registry.

Covered: enabled (a map alone is enough; false loads nothing), include / exclude, namespaces in
order (a later one overwrites), folderPerNamespace, ifExists on a file already in the working
directory (a WorkingDirectory's), inputFiles written after (they win), metrics and the log line,
property mistakes.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.settings import Settings
from engine.stores.nsfiles import NamespaceFiles
from engine.stores.storage import LocalStorage, TaskLocation
from engine.worker.tasks import build_registry
from executors.base import TaskContext, TaskOutcome

SHELL = "io.kestra.plugin.scripts.shell.Commands"
LIST = "find . -type f -not -path './.*' | sort | sed 's|^./||' | tr '\\n' ' '"


@pytest.fixture
def nsfiles(tmp_path: Path) -> NamespaceFiles:
    files = NamespaceFiles(LocalStorage(tmp_path / "storage"))
    files.put_sync("company.team", "/etl.py", b"print('from team')\n")
    files.put_sync("company.team", "/sql/q1.sql", b"select 1\n")
    files.put_sync("company.team", "/sql/q2.sql", b"select 2\n")
    files.put_sync("company.team", "/notes/readme.md", b"team notes\n")
    files.put_sync("company", "/etl.py", b"print('from company')\n")
    files.put_sync("company", "/shared.cfg", b"x=1\n")
    return files


def run(
    tmp: Path, nsfiles: NamespaceFiles | None, working_dir: Path | None = None, **task: Any
) -> tuple[TaskOutcome, TaskContext]:
    task = {"id": "t", **task}
    storage = LocalStorage(tmp / "storage")
    ctx = TaskContext.for_job(
        execution_id="e1",
        task_run_id="r1",
        attempt=0,
        task=task,
        variables={"flow": {"id": "f", "namespace": "company.team"}, "inputs": {}},
        storage=storage.for_task(TaskLocation("company.team", "f", "e1", "t", "r1")),
        namespace_files=nsfiles,
        working_dir=str(working_dir or tmp / "wd"),
    )
    registry = build_registry(Settings(), tmp / "venvs")
    outcome = asyncio.run(registry.run(task, ctx))
    if working_dir is None:
        shutil.rmtree(tmp / "wd", ignore_errors=True)
    return outcome, ctx


def listed(tmp: Path, nsfiles: NamespaceFiles, spec: dict[str, Any], **extra: Any) -> list[str]:
    outcome, _ = run(
        tmp,
        nsfiles,
        type=SHELL,
        namespaceFiles=spec,
        commands=[f'echo "::{{\\"outputs\\":{{\\"files\\":\\"$({LIST})\\"}}}}::"'],
        **extra,
    )
    assert outcome.state == "SUCCESS", outcome.error
    return str(outcome.outputs["vars"]["files"]).split()


def test_the_flow_namespace_files_are_in_the_working_directory(
    tmp_path: Path, nsfiles: NamespaceFiles
) -> None:
    outcome, ctx = run(
        tmp_path,
        nsfiles,
        type="io.kestra.plugin.scripts.python.Commands",
        namespaceFiles={"enabled": True},
        commands=["python3 etl.py", "cat sql/q2.sql"],
    )
    assert outcome.state == "SUCCESS", outcome.error
    lines = [m.message for m in ctx.logs]
    assert "from team" in lines
    assert "select 2" in lines
    assert any(
        m.startswith("Loaded 4 namespace files from 'company.team' in 00:00:") for m in lines
    )
    assert outcome.metrics["namespacefiles.count"] == 4
    assert outcome.metrics["namespacefiles.duration"] >= 0


def test_include_exclude_and_enabled(tmp_path: Path, nsfiles: NamespaceFiles) -> None:
    assert listed(tmp_path, nsfiles, {}) == [
        "etl.py",
        "notes/readme.md",
        "sql/q1.sql",
        "sql/q2.sql",
    ]
    assert listed(tmp_path, nsfiles, {"include": ["sql/*.sql"], "exclude": ["**/q2.sql"]}) == [
        "sql/q1.sql"
    ]
    assert listed(tmp_path, nsfiles, {"include": "{{ ['**.py', 'readme.md'] }}"}) == [
        "etl.py",
        "notes/readme.md",
    ]
    # Kestra's patterns match "/etl.py": a glob starting with '*' stays in the first folder.
    assert listed(tmp_path, nsfiles, {"include": ["*.py"]}) == []
    assert listed(tmp_path, nsfiles, {"enabled": False}) == []


def test_namespaces_in_order_and_a_folder_per_namespace(
    tmp_path: Path, nsfiles: NamespaceFiles
) -> None:
    outcome, _ = run(
        tmp_path,
        nsfiles,
        type=SHELL,
        namespaceFiles={"namespaces": ["company.team", "company"], "include": ["etl.py"]},
        commands=["cat etl.py"],
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert listed(
        tmp_path,
        nsfiles,
        {
            "namespaces": ["company", "company.team"],
            "folderPerNamespace": True,
            "exclude": ["**.md"],
        },
    ) == [
        "company.team/etl.py",
        "company.team/sql/q1.sql",
        "company.team/sql/q2.sql",
        "company/etl.py",
        "company/shared.cfg",
    ]
    # The later namespace wins: company's etl.py replaced team's.
    wd = tmp_path / "shared"
    outcome, ctx = run(
        tmp_path,
        nsfiles,
        working_dir=wd,
        type=SHELL,
        namespaceFiles={"namespaces": ["company.team", "company"], "include": ["etl.py"]},
        commands=["cat etl.py"],
    )
    assert "print('from company')" in [m.message for m in ctx.logs]


@pytest.mark.parametrize(
    ("if_exists", "state", "content"),
    [
        ("OVERWRITE", "SUCCESS", "print('from team')\n"),
        ("IGNORE", "SUCCESS", "mine\n"),
        ("WARN", "SUCCESS", "mine\n"),
        ("FAIL", "FAILED", "mine\n"),
    ],
)
def test_if_exists(
    tmp_path: Path, nsfiles: NamespaceFiles, if_exists: str, state: str, content: str
) -> None:
    wd = tmp_path / "workingdir"  # a WorkingDirectory's, where an earlier task left etl.py
    wd.mkdir()
    (wd / "etl.py").write_text("mine\n")
    outcome, ctx = run(
        tmp_path,
        nsfiles,
        working_dir=wd,
        type=SHELL,
        namespaceFiles={"include": ["etl.py"], "ifExists": if_exists},
        commands=["true"],
    )
    assert outcome.state == state, outcome.error
    assert (wd / "etl.py").read_text() == content
    warnings = [m.message for m in ctx.logs if m.level == "WARN"]
    assert warnings == (["File 'etl.py' already exists, skipped"] if if_exists == "WARN" else [])
    if if_exists == "FAIL":
        assert outcome.error == (
            "namespaceFiles: etl.py already exists in the working directory (ifExists: FAIL)"
        )


def test_input_files_are_written_after_and_win(tmp_path: Path, nsfiles: NamespaceFiles) -> None:
    outcome, ctx = run(
        tmp_path,
        nsfiles,
        type=SHELL,
        namespaceFiles={"include": ["etl.py"]},
        inputFiles={"etl.py": "from inputFiles"},
        commands=["cat etl.py"],
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert "from inputFiles" in [m.message for m in ctx.logs]


def test_mistakes(tmp_path: Path, nsfiles: NamespaceFiles) -> None:
    outcome, _ = run(tmp_path, nsfiles, type=SHELL, namespaceFiles="yes", commands=["true"])
    assert outcome.state == "FAILED"
    outcome, _ = run(
        tmp_path, nsfiles, type=SHELL, namespaceFiles={"ifExists": "REPLACE"}, commands=["true"]
    )
    assert outcome.error == (
        "namespaceFiles.ifExists: 'REPLACE' is not one of ('OVERWRITE', 'FAIL', 'WARN', 'IGNORE')"
    )
    outcome, _ = run(
        tmp_path, nsfiles, type=SHELL, namespaceFiles={"include": ["["]}, commands=["true"]
    )
    assert outcome.state == "SUCCESS", outcome.error  # a lone '[' is a literal character
    outcome, _ = run(
        tmp_path, nsfiles, type=SHELL, namespaceFiles={"namespaces": ["../x"]}, commands=["true"]
    )
    assert outcome.error == "namespaceFiles: invalid namespace '../x'"
    outcome, _ = run(tmp_path, None, type=SHELL, namespaceFiles={}, commands=["true"])
    assert outcome.error == "namespaceFiles: this worker has no namespace files"
