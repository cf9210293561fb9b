"""The root of the ``headwater`` command: --version, and --help that loads no command group."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from typer.testing import CliRunner

from engine.cli import GROUPS, app

runner = CliRunner()


def test_version_prints_the_installed_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"headwater {metadata.version('headwater')}\n"


def test_help_lists_every_group_without_importing_them() -> None:
    code = (
        "import sys\nfrom engine.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('engine.cli.', 'engine.flows',"
        " 'schemas.flow', 'fastapi', 'confluent_kafka')))\n"
        "print('LOADED', loaded)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "LOADED []" in done.stdout, done.stdout + done.stderr
    for name, _module, help_line in GROUPS:
        assert name in done.stdout
        assert help_line[:30] in done.stdout


def test_a_group_runs_when_invoked() -> None:
    result = runner.invoke(app, ["plugins", "list", "--kind", "trigger"])
    assert result.exit_code == 0, result.output
    assert "io.kestra.plugin.core.trigger.Schedule" in result.output
