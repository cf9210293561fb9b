"""The editor's own logic under Node's test runner (engine/dashboard/editor/test/): how a
half-typed YAML document is read, and what the flow schema offers at each place. These run in
milliseconds and name the exact case that broke; the browser tests check the same features
end to end. Node comes from Debian's ``nodejs`` package, installed on first use like Chromium.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

from tests.browser.chromium import ensure_packages

pytestmark = [pytest.mark.browser]

TESTS = pathlib.Path(__file__).resolve().parents[2] / "engine" / "dashboard" / "editor" / "test"
# node starts in ~50 ms and the cases take ~150 ms; a loaded machine gets ample room.
NODE_TIMEOUT_S = 60


def test_completion_and_hover_logic_under_node() -> None:
    ensure_packages(("nodejs",), "/usr/bin/node")
    node = shutil.which("node") or "/usr/bin/node"
    files = sorted(str(p) for p in TESTS.glob("*.test.js"))
    assert files, TESTS
    result = subprocess.run(
        [node, "--test", *files], capture_output=True, text=True, timeout=NODE_TIMEOUT_S
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout, result.stdout[-2000:]
