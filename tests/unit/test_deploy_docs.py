"""deploy/OPERATIONS.md and the comments of the deployment files stay true to the code: every
HEADWATER_* name is a setting, every `headwater ...` command and option exists, every metric
named is emitted (and every emitted metric is documented), every path mentioned exists."""

from __future__ import annotations

import re
import shlex
from typing import Any

import typer.main

from engine.cli import app
from tests.unit.test_deploy_settings import DEPLOY, REPO, headwater_vars_in, unknown_settings

OPERATIONS = DEPLOY / "OPERATIONS.md"
TEXT = OPERATIONS.read_text()
DEPLOY_FILES = [
    p
    for folder in ("docker", "compose", "k8s", "grafana")
    for p in sorted((DEPLOY / folder).rglob("*"))
    if p.is_file()
]
ROOT = typer.main.get_command(app)
for _name in ROOT.list_commands(None):  # type: ignore[attr-defined]
    ROOT.get_command(None, _name)  # type: ignore[attr-defined]  # groups load when asked for


def code_spans(text: str) -> list[str]:
    """Inline `code` and the lines of fenced blocks."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    inline += re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    lines = [line for block in blocks for line in block.splitlines()]
    return [" ".join(s.split()) for s in inline + lines]


def headwater_commands(text: str) -> list[list[str]]:
    """argv after `headwater` for each command line shown (placeholders like <x> dropped)."""
    found = []
    for span in code_spans(text):
        # `kubectl -n headwater ...` names the namespace, not the command.
        pattern = r"(?:^|(?<!-n)\s)headwater ([a-z].*?)(?:\s+#.*)?$"
        for match in re.finditer(pattern, span):
            argv = shlex.split(match.group(1))
            found.append([a for a in argv if not a.startswith("<")])
    return found


def check_command(argv: list[str]) -> None:
    assert argv
    assert argv[0] in getattr(ROOT, "commands", {}), f"`headwater {argv[0]}` does not exist"
    # Typer may vendor its own click: go by shape (a group has `commands`), not by class.
    command: Any = ROOT
    descending = True
    for token in argv:
        if token.startswith("-"):
            name = token.split("=")[0]
            options = {o for p in command.params for o in p.opts}
            assert name in options, f"`headwater {' '.join(argv)}`: no option {name}"
        elif descending and token in getattr(command, "commands", {}):
            command = command.commands[token]
        else:
            descending = False  # an argument or an option's value


def test_commands_shown_exist() -> None:
    commands = headwater_commands(TEXT)
    assert len(commands) >= 8
    for argv in commands:
        check_command(argv)


def test_command_checker_rejects_what_does_not_exist() -> None:
    check_command(["projector", "rebuild", "--yes"])
    check_command(["worker", "--worker-group", "etl"])
    for wrong in (["health", "executor"], ["projector", "rebuild", "--force"]):
        try:
            check_command(wrong)
        except AssertionError:
            continue
        raise AssertionError(f"accepted {wrong}")


def test_every_headwater_name_in_docs_and_deploy_files_is_a_setting() -> None:
    for path in [OPERATIONS, *DEPLOY_FILES]:
        if path.suffix in (".json", ".yaml", ".yml", ".md", ".sh", ".conf", "") or path.name in (
            "Dockerfile",
            "env.example",
        ):
            names = headwater_vars_in(path.read_text())
            assert not unknown_settings(names), f"{path.relative_to(REPO)}: {names}"


def test_metrics_documented_are_the_metrics_emitted() -> None:
    source = (REPO / "engine" / "api" / "routes_ops.py").read_text()
    emitted = set(re.findall(r"\bheadwater_[a-z0-9_]+\b", source))
    # _sum and _count belong to their summary, documented on its row.
    families = {m for m in emitted if not re.search(r"_(sum|count)$", m)}
    table = set(re.findall(r"^\| `(headwater_[a-z0-9_]+)", TEXT, re.M))
    assert table == families, f"metrics table vs /metrics: {table ^ families}"
    # Any other metric-like name in the text is emitted, or the database role of the dashboards.
    role = re.findall(r"CREATE ROLE (\w+)", (DEPLOY / "compose" / "postgres-init.sh").read_text())
    mentioned = set(re.findall(r"\b(headwater_[a-z0-9_]+)", TEXT))
    # The components' own health servers (engine/health/) emit theirs.
    for name in ("server.py", "probes.py"):
        emitted |= set(
            re.findall(r"\bheadwater_[a-z0-9_]+\b", (REPO / "engine" / "health" / name).read_text())
        )
    assert mentioned <= emitted | set(role), mentioned - emitted - set(role)


def test_paths_mentioned_exist() -> None:
    paths = set(re.findall(r"`((?:deploy|engine|benchmarks)/[A-Za-z0-9_./*-]+)`", TEXT))
    paths |= set(re.findall(r"--from-file=([A-Za-z0-9_./-]+)", TEXT))
    assert len(paths) >= 10
    for path in paths:
        if "*" in path:
            assert list(REPO.glob(path)), path
        else:
            assert (REPO / path.rstrip("/")).exists(), path
