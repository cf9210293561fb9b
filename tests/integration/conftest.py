"""Installs the CLI tools the collected tests need before any test runs (cli_support)."""

from __future__ import annotations

import pytest

from executors.clitools import Tool
from tests.integration.cli_support import TOOL_VENVS, provision_tools


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    tools: dict[str, Tool] = {}
    for item in session.items:
        for mark in item.iter_markers("cli_tools"):
            tools.update({tool.binary: tool for tool in mark.args})
    if tools:
        names = ", ".join(sorted(tools))
        seconds = provision_tools(list(tools.values()))
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"CLI tools ready in {TOOL_VENVS}: {names} ({seconds:.1f} s)")
