"""Kestra's script languages (executors.plugins.scripts) with real interpreters.

Node.js and Perl are on every machine of ours; Lua and PHP are small Debian packages installed
on first use (as root, like the browser tests' Chromium). Every language, installed or not, is
also run against shims named like its executables (the argv and the script file they receive
are checked) and with an empty PATH (the "is not installed" failure).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.stores.storage import LocalStorage, TaskLocation
from executors.base import LogLine, TaskContext, TaskOutcome, run_task
from executors.plugin import PluginExecutor
from executors.plugins.scripts import LANGUAGES, Language
from schemas.plugins import plugins

PLUGINS = {info.type: info.cls for info in plugins()}
DEBIAN_PACKAGES = {"lua": "lua5.4", "php": "php-cli"}
# apt-get may first refresh its lists (~10 s) and then download ~6 MB; minutes on a slow mirror.
APT_TIMEOUT_S = 600


def ensure_debian(command: str) -> None:
    """Install the Debian package that provides ``command`` unless it is there already."""
    if shutil.which(command):
        return
    package = DEBIAN_PACKAGES[command]
    how = f"apt-get install -y --no-install-recommends {package}"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.fail(f"{command} is not installed and this is not root on Debian: run `{how}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    argv = ["apt-get", "install", "-y", "--no-install-recommends"]
    argv += ["-o", "DPkg::Lock::Timeout=300", package]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=APT_TIMEOUT_S)
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S)
    if done.returncode != 0 or not shutil.which(command):
        pytest.fail(f"installing {package} failed (`{how}`):\n{done.stderr[-2000:]}")


def context(tmp: Path, task: dict[str, Any]) -> tuple[TaskContext, list[LogLine]]:
    lines: list[LogLine] = []
    storage = LocalStorage(tmp / "storage").for_task(
        TaskLocation(namespace="ns", flow_id="f", execution_id="e1", task_id="t", task_run_id="r1")
    )
    ctx = TaskContext.for_job(
        execution_id="e1",
        task_run_id="r1",
        attempt=1,
        task=task,
        variables={"flow": {"id": "f", "namespace": "ns"}, "inputs": {"who": "world"}},
        on_log=lines.append,
        storage=storage,
    )
    return ctx, lines


async def run(tmp: Path, **task: Any) -> tuple[TaskOutcome, list[LogLine], TaskContext]:
    task = {"id": "t", **task}
    ctx, lines = context(tmp, task)
    outcome = await run_task(PluginExecutor(PLUGINS[task["type"]]), task, ctx)
    return outcome, lines, ctx


def messages(lines: list[LogLine], level: str | None = None) -> list[str]:
    return [line.message for line in lines if level is None or line.level == level]


def stored(tmp: Path, uri: str) -> bytes:
    return LocalStorage(tmp / "storage").read_sync(uri)


async def test_node_script_outputs_metrics_files_env_and_before_commands(tmp_path: Path) -> None:
    script = """
const fs = require('fs');
console.log('hello ' + process.env.WHO + ' from ' + process.cwd());
console.log('::' + JSON.stringify({outputs: {answer: 42, who: '{{ inputs.who }}'}}) + '::');
console.log('::' + JSON.stringify({metrics: [{name: 'rows', type: 'counter', value: 3}]}) + '::');
fs.writeFileSync('{{ outputDir }}/report.txt', fs.readFileSync('data.txt', 'utf8').toUpperCase());
fs.writeFileSync('kept.csv', 'a,b');
console.error('a warning on stderr');
"""
    outcome, lines, _ = await run(
        tmp_path,
        type="io.kestra.plugin.scripts.node.Script",
        script=script,
        beforeCommands=["echo preparing in $WORKING_DIR"],
        env={"WHO": "{{ inputs.who }}"},
        inputFiles={"data.txt": "some data"},
        outputFiles=["*.csv"],
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["exitCode"] == 0
    assert outcome.outputs["vars"] == {"answer": 42, "who": "world"}
    assert outcome.metrics == {"rows": 3}
    files = outcome.outputs["outputFiles"]
    assert sorted(files) == ["kept.csv", "report.txt"]
    assert stored(tmp_path, files["report.txt"]) == b"SOME DATA"
    assert stored(tmp_path, files["kept.csv"]) == b"a,b"
    infos = messages(lines, "INFO")
    assert infos[0].startswith("preparing in /")
    workdir = infos[0].removeprefix("preparing in ")
    assert infos[1] == f"hello world from {workdir}"
    assert messages(lines, "ERROR") == ["a warning on stderr"]


async def test_node_script_failure_and_warning_on_stderr(tmp_path: Path) -> None:
    outcome, _lines, _ = await run(
        tmp_path,
        type="io.kestra.plugin.scripts.node.Script",
        script='console.log(\'::{"outputs": {"partial": true}}::\'); process.exit(3)',
    )
    assert outcome.state == "FAILED"
    assert outcome.error == "Command failed with exit code 3"
    assert outcome.outputs["vars"] == {"partial": True}
    outcome, _, _ = await run(
        tmp_path,
        type="io.kestra.plugin.scripts.node.Script",
        script="console.error('careful')",
        warningOnStdErr=True,
    )
    assert outcome.state == "WARNING"


async def test_node_commands_run_files_from_input_files(tmp_path: Path) -> None:
    outcome, lines, _ = await run(
        tmp_path,
        type="io.kestra.plugin.scripts.node.Commands",
        inputFiles={"main.js": "console.log('args', process.argv.slice(2).join(','))"},
        commands=["node main.js a b", "node -e \"console.log('second')\""],
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert messages(lines) == ["args a,b", "second"]


async def test_commands_fail_fast_stops_at_the_first_failure(tmp_path: Path) -> None:
    outcome, lines, _ = await run(
        tmp_path,
        type="io.kestra.plugin.scripts.perl.Commands",
        commands=["perl -e 'exit 4'", "echo never"],
    )
    assert outcome.state == "FAILED"
    assert outcome.error == "Command failed with exit code 4"
    assert "never" not in messages(lines)
    outcome, lines, _ = await run(
        tmp_path,
        type="io.kestra.plugin.scripts.perl.Commands",
        commands=["perl -e 'exit 4'", "echo after"],
        failFast=False,
    )
    assert outcome.state == "SUCCESS"
    assert messages(lines) == ["after"]


async def test_perl_script(tmp_path: Path) -> None:
    outcome, lines, _ = await run(
        tmp_path,
        type="io.kestra.plugin.scripts.perl.Script",
        script='my $n = 6 * 7; print "::{\\"outputs\\": {\\"n\\": $n}}::\\n"; print "done\\n";',
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["vars"] == {"n": 42}
    assert messages(lines) == ["done"]


@pytest.mark.timeout(APT_TIMEOUT_S + 60)
async def test_lua_script_and_commands(tmp_path: Path) -> None:
    ensure_debian("lua")
    outcome, lines, _ = await run(
        tmp_path,
        type="io.kestra.plugin.scripts.lua.Script",
        script="local t = {} for i = 1, 3 do t[#t + 1] = i * i end\n"
        'print("::{\\"outputs\\": {\\"squares\\": \\"" .. table.concat(t, ",") .. "\\"}}::")',
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["vars"] == {"squares": "1,4,9"}
    outcome, lines, _ = await run(
        tmp_path,
        type="io.kestra.plugin.scripts.lua.Commands",
        commands=["lua -e 'print(_VERSION)'"],
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert messages(lines)[0].startswith("Lua 5.")


@pytest.mark.timeout(APT_TIMEOUT_S + 60)
async def test_php_script_writes_an_output_file(tmp_path: Path) -> None:
    ensure_debian("php")
    outcome, _lines, _ = await run(
        tmp_path,
        type="io.kestra.plugin.scripts.php.Script",
        script="<?php\nfile_put_contents('{{ outputDir }}/out.json', json_encode(['x' => 1]));\n"
        'echo "::" . json_encode(["outputs" => ["php" => PHP_MAJOR_VERSION >= 8]]) . "::\\n";',
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["vars"] == {"php": True}
    assert stored(tmp_path, outcome.outputs["outputFiles"]["out.json"]) == b'{"x":1}'


def _shims(tmp: Path, lang: Language) -> Path:
    """A bin directory where the language's executables print the argv and script they get."""
    bin_dir = tmp / "shims"
    bin_dir.mkdir(exist_ok=True)
    body = (
        "#!/bin/sh\n"
        'echo "$(basename "$0") argc=$#"\n'
        'for a in "$@"; do printf "arg:%s\\n" "$a"; done\n'
        'for a in "$@"; do case "$a" in *.hw_script_*) printf "file:%s\\n" "$(cat "$a")";; '
        "esac; done\n"
    )
    for name in {lang.executable, *lang.run[:1], *lang.interpreter[:1]}:
        shim = bin_dir / name
        shim.write_text(body)
        shim.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("lang", LANGUAGES, ids=[lang.key for lang in LANGUAGES])
async def test_every_language_builds_kestras_command_line(tmp_path: Path, lang: Language) -> None:
    path = f"{_shims(tmp_path, lang)}:/usr/bin:/bin"
    outcome, lines, _ = await run(
        tmp_path,
        type=f"io.kestra.plugin.scripts.{lang.key}.Script",
        script="the {{ inputs.who }} script",
        beforeCommands=["echo before"],
        env={"PATH": path},
    )
    assert outcome.state == "SUCCESS", outcome.error
    out = messages(lines)
    if lang.interpreter:  # PowerShell: pwsh gets the whole script as one -Command argument
        assert out[:4] == ["pwsh argc=4", "arg:-NoProfile", "arg:-NonInteractive", "arg:-Command"]
        first, before, run_line = "\n".join(out[4:]).removeprefix("arg:").splitlines()[:3]
        assert (first, before) == ("$ErrorActionPreference = 'Stop'", "echo before")
        assert run_line.endswith(lang.extension)
        assert ".hw_script_" in run_line
        return
    if lang.setup:  # .NET: dotnet tool install -g dotnet-script ... before the user's
        assert out[:2] == ["dotnet argc=5", "arg:tool"]
        out = out[6:]
    assert out[0] == "before"
    out = out[1:]
    assert out[0] == f"{lang.run[0]} argc={len(lang.run)}"
    assert out[1 : len(lang.run)] == [f"arg:{a}" for a in lang.run[1:]]
    script_arg = out[len(lang.run)]
    assert script_arg.startswith("arg:/")
    assert script_arg.endswith(lang.extension)
    assert out[-1] == "file:the world script"


async def test_jbang_extension_and_quiet(tmp_path: Path) -> None:
    lang = next(lang for lang in LANGUAGES if lang.key == "jbang")
    outcome, lines, _ = await run(
        tmp_path,
        type="io.kestra.plugin.scripts.jbang.Script",
        script="x",
        extension=".kt",
        quiet=False,
        env={"PATH": f"{_shims(tmp_path, lang)}:/usr/bin:/bin"},
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert messages(lines)[0] == "jbang argc=1"
    assert messages(lines)[1].endswith(".kt")


@pytest.mark.parametrize("lang", LANGUAGES, ids=[lang.key for lang in LANGUAGES])
@pytest.mark.parametrize("kind", ["Script", "Commands"])
async def test_a_missing_interpreter_fails_naming_it(
    tmp_path: Path, lang: Language, kind: str
) -> None:
    marker = tmp_path / "ran"
    body: dict[str, Any] = (
        {"script": "x"} if kind == "Script" else {"commands": [f"{lang.executable} x"]}
    )
    outcome, lines, _ = await run(
        tmp_path,
        type=f"io.kestra.plugin.scripts.{lang.key}.{kind}",
        beforeCommands=[f"touch {marker}"],
        env={"PATH": str(tmp_path / "empty")},  # what a worker without the language has
        **body,
    )
    assert outcome.state == "FAILED"
    missing = lang.interpreter[0] if lang.interpreter else lang.executable
    assert outcome.error == f"{missing} is not installed on this worker (not found on its PATH)"
    assert messages(lines, "ERROR") == [outcome.error]
    assert not marker.exists()


async def test_property_mistakes_fail_clearly(tmp_path: Path) -> None:
    outcome, _, _ = await run(
        tmp_path, type="io.kestra.plugin.scripts.node.Script", script="1", env="nope"
    )
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert "env" in outcome.error
    outcome, _, _ = await run(
        tmp_path,
        type="io.kestra.plugin.scripts.node.Script",
        script="1",
        namespaceFiles={"enable": True},
    )
    assert outcome.error == (
        "namespaceFiles: unknown property enable (expected enabled, include, exclude,"
        " namespaces, ifExists, folderPerNamespace)"
    )
    outcome, _, _ = await run(
        tmp_path, type="io.kestra.plugin.scripts.node.Script", script="1", targetOS="WINDOWS"
    )
    assert outcome.error is not None
    assert outcome.error.startswith("targetOS WINDOWS")
    outcome, _, _ = await run(
        tmp_path,
        type="io.kestra.plugin.scripts.node.Script",
        script="1",
        inputFiles={"../escape.txt": "x"},
    )
    assert outcome.error is not None
    assert "inside the working directory" in outcome.error
