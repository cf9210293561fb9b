from __future__ import annotations

import json
import pathlib

from typer.testing import CliRunner

from engine.cli import app

runner = CliRunner()

GOOD = "id: good\nnamespace: io.kestra.tests\ntasks:\n  - {id: a, type: log, message: hi}\n"
BAD = "id: bad\nnamespace: io.kestra.tests\ntasks:\n  - id: a\n    type: lgo\n    mesage: hi\n"


def _write(tmp_path: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_valid_files_exit_0(tmp_path: pathlib.Path) -> None:
    good = _write(tmp_path, "good.yaml", GOOD)
    result = runner.invoke(app, ["flow", "validate", str(good)])
    assert result.exit_code == 0, result.output
    assert f"{good}: ok (io.kestra.tests.good)" in result.stdout


def test_every_error_is_printed_with_its_location(tmp_path: pathlib.Path) -> None:
    good = _write(tmp_path, "good.yaml", GOOD)
    bad = _write(tmp_path, "bad.yaml", BAD)
    result = runner.invoke(app, ["flow", "validate", str(good), str(bad)])
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith(str(bad))]
    assert len(lines) == 1
    assert lines[0].startswith(f"{bad}:5:11: tasks[0].type: unknown task type 'lgo'")
    assert "1 valid, 1 invalid" in result.stderr


def test_json_output(tmp_path: pathlib.Path) -> None:
    bad = _write(tmp_path, "bad.yaml", BAD)
    result = runner.invoke(app, ["flow", "validate", "--json", str(bad)])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    (entry,) = report["files"]
    assert entry["file"] == str(bad)
    assert entry["problems"][0] == {
        "file": str(bad),
        "line": 5,
        "column": 11,
        "path": "tasks[0].type",
        "message": "unknown task type 'lgo'; did you mean 'log' or 'loop'?",
        "expected": "a known task type",
    }


def test_missing_file_is_a_clear_error_not_a_traceback(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = runner.invoke(app, ["flow", "validate", str(missing)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{missing}:1:1: cannot read file: No such file or directory" in result.stdout
    assert "Traceback" not in result.output


def test_expressions_that_will_not_render_are_located_warnings(tmp_path: pathlib.Path) -> None:
    flow = _write(
        tmp_path,
        "warn.yaml",
        "id: warn\nnamespace: io.kestra.tests\ntasks:\n"
        '  - id: a\n    type: log\n    message: "{{ inputs.x | nosuchfilter }}"\n'
        '  - id: b\n    type: log\n    message: "{{ 1 + }}"\n',
    )
    result = runner.invoke(app, ["flow", "validate", str(flow)])
    assert result.exit_code == 0, result.output  # deploys, as Kestra does
    warnings = [line for line in result.stdout.splitlines() if ": warning: " in line]
    assert warnings[0].startswith(f"{flow}:6:14: warning: tasks[0].message: invalid expression")
    assert "unknown filter 'nosuchfilter'" in warnings[0]
    assert warnings[1].startswith(f"{flow}:9:14: warning: tasks[1].message: invalid expression")
    as_json = json.loads(runner.invoke(app, ["flow", "validate", "--json", str(flow)]).stdout)
    assert [w["line"] for w in as_json["files"][0]["warnings"]] == [6, 9]
