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
    if not tools:
        return
    names = ", ".join(sorted(tools))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    try:
        seconds = provision_tools(list(tools.values()))
    except Exception as exc:  # the tests then fail one by one, each naming the install error
        message = f"installing the CLI tools ({names}) into {TOOL_VENVS} failed: {exc}"
    else:
        message = f"CLI tools ready in {TOOL_VENVS}: {names} ({seconds:.1f} s)"
    if reporter is not None:
        reporter.write_line(message)
