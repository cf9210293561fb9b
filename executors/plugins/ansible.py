"""Kestra's Ansible plugin: ``io.kestra.plugin.ansible.cli.AnsibleCLI``.

What Kestra does (kestra-io/plugin-ansible ``AnsibleCLI`` and its bundled
``callback_plugins/kestra_logger.py`` and ``library/kestra.py``), and what this module ports on
:mod:`executors.clitools`:

- Properties: ``commands`` (required), ``beforeCommands``, ``env``, ``inputFiles``,
  ``outputFiles``, ``namespaceFiles``, ``containerImage`` (``cytopia/ansible:latest-tools``),
  ``taskRunner``, ``docker``, ``ansibleConfig`` (default: ``log_path = {{ workingDir }}/log``,
  ``callback_plugins = ./callback_plugins``, ``callbacks_enabled = kestra_logger``,
  ``stdout_callback = ansible.builtin.null``, ``result_format = json``, ``pretty_results =
  true``, ``library = ./library``; rendered with ``workingDir``), ``outputsMode`` (``ALL`` |
  ``EXPLICIT``), ``outputLogFile`` (false), ``autoInstallPythonRequirements`` (true),
  ``autoInstallGalaxyRequirements`` (true).
- The working directory gets ``ansible.cfg`` (unless ``inputFiles`` has one: a warning), the
  ``kestra_logger`` callback and the ``kestra`` module. Each command runs in its own
  ``/bin/bash -c`` process, in order, with ``KESTRA_OUTPUTS_MODE``; ``beforeCommands``, then
  ``[ ! -f requirements.txt ] || pip install ...`` and ``[ ! -f requirements.yml ] ||
  ansible-galaxy install -r requirements.yml``, run once, before the first command. A failing
  command fails the task (the next ones do not run). With ``outputLogFile`` the Ansible log is
  the output file ``log`` (several commands: each writes its own, concatenated).
- The callback collects every task's per-host results (``ok``, ``failed``, ``skipped``,
  ``unreachable``) and prints them as one ``::{"outputs": ...}::`` line: ``vars.outputs`` is the
  list of raw results (``ALL``) or the map of values declared with the ``kestra`` module
  (``EXPLICIT``: host results are then reduced to ``changed`` and, on failure, ``msg``);
  ``vars.playbooks`` (also the output ``playbooks``) is ``[{plays: [{name, tasks: [{uid, name,
  startedAt, endedAt, hosts: [{host, status, result}]}]}]}]``; merged over the commands.
- Outputs: ``exitCode`` (the highest), ``vars``, ``outputFiles``, ``playbooks``. A stderr line
  never makes the task WARNING.

Where ansible comes from: the worker's ``PATH``, else a cached virtualenv with the ``ansible``
package (ansible-core with the community collections, as Kestra's default image: its default
``stdout_callback = ansible.builtin.null`` is community.general's).

What differs: Kestra creates one dynamic task run per Ansible task with its host lines; here
those lines (``<play> | <task>: [host] status => result``) go to the task's own log. Kestra's
``pip install`` and ``ansible-galaxy install`` change the container; here, on a shared worker,
Python requirements go to a directory of the run put on ``PYTHONPATH`` (with the ``pip`` of
ansible's own Python) and Galaxy roles and collections to directories of the run first on
``ANSIBLE_ROLES_PATH`` / ``ANSIBLE_COLLECTIONS_PATH`` (unless ``env`` sets them). ``set -e``
starts each script. Handlers get their own task entry (Kestra's callback files their results
under the previous task). Inventory assets (an Enterprise feature) are not emitted.
"""

from __future__ import annotations

import asyncio
import shlex
import shutil
from pathlib import Path
from typing import Any, ClassVar, Literal

import orjson

from executors.ansible_files import CALLBACK, KESTRA_MODULE
from executors.base import TaskError, to_text
from executors.clitools import CLIRun, CLITask, Tool
from executors.plugin import TaskPlugin, render_bool, render_str
from executors.process import ProcessResult
from executors.shell import string_list
from schemas.flow.common import BoolOrExpr, Str

# cryptography 51 makes ansible-core 2.19 print a DSA deprecation warning on every command.
ANSIBLE_REQUIREMENTS = ("ansible==12.3.0", "cryptography<51")
ANSIBLE_TOOL = Tool(
    "ansible-playbook",
    "cytopia/ansible:latest-tools",
    ANSIBLE_REQUIREMENTS,
    commands=(
        "ansible",
        "ansible-playbook",
        "ansible-galaxy",
        "ansible-config",
        "ansible-inventory",
        "ansible-doc",
        "ansible-vault",
        "ansible-pull",
        "ansible-console",
        "ansible-test",
    ),
)
DEFAULT_CONFIG = """[defaults]
log_path          = {{ workingDir }}/log
callback_plugins  = ./callback_plugins
callbacks_enabled = kestra_logger
stdout_callback   = ansible.builtin.null
result_format     = json
pretty_results    = true
library           = ./library
"""
# Where a run's own Python requirements and Galaxy content go (inside its working directory).
_PY_DIR = ".headwater/python"
_GALAXY_DIR = ".headwater/galaxy"


class AnsibleCLI(CLITask):
    """Run Ansible commands (ansible-playbook...) on the worker."""

    family: ClassVar[str] = "ansible"
    short: ClassVar[str | None] = "ansible_cli"
    tool: ClassVar[Tool] = ANSIBLE_TOOL
    warning_on_stderr: ClassVar[bool] = False

    type: Literal["io.kestra.plugin.ansible.cli.AnsibleCLI"]
    commands: list[Str] | Str
    beforeCommands: list[Str] | Str | None = None
    ansibleConfig: Str = DEFAULT_CONFIG
    outputsMode: Literal["ALL", "EXPLICIT"] | Str = "ALL"
    outputLogFile: BoolOrExpr = False
    autoInstallPythonRequirements: BoolOrExpr = True
    autoInstallGalaxyRequirements: BoolOrExpr = True

    def interpreter_argv(self, run: CLIRun) -> list[str]:
        return ["/bin/bash", "-c"]

    def environment(self, run: CLIRun, user_env: dict[str, str]) -> dict[str, str]:
        env = dict(user_env)
        python_dir = str(run.root / _PY_DIR)
        env["PYTHONPATH"] = ":".join(p for p in (python_dir, env.get("PYTHONPATH", "")) if p)
        galaxy = run.root / _GALAXY_DIR
        env.setdefault(
            "ANSIBLE_COLLECTIONS_PATH",
            f"{galaxy}/collections:~/.ansible/collections:/usr/share/ansible/collections",
        )
        env.setdefault(
            "ANSIBLE_ROLES_PATH",
            f"{galaxy}/roles:~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles",
        )
        return env

    def mode(self, run: CLIRun) -> str:
        mode = (render_str(run.ctx, self.outputsMode, "outputsMode") or "ALL").upper()
        if mode not in ("ALL", "EXPLICIT"):
            raise TaskError(f"property 'outputsMode': {mode!r} is not one of ALL, EXPLICIT")
        return mode

    async def prepare(self, run: CLIRun) -> None:
        self.mode(run)  # a bad value fails before anything runs
        inputs = run.render(self.inputFiles)
        if isinstance(inputs, dict) and "ansible.cfg" in inputs:
            run.ctx.log(
                "WARN", "Found an existing ansible.cfg file. Ignoring creation of a new one."
            )
        else:
            config = to_text(run.render(self.ansibleConfig))
            await asyncio.to_thread(_write, run.root / "ansible.cfg", config)
        await asyncio.to_thread(_write, run.root / "callback_plugins/kestra_logger.py", CALLBACK)
        await asyncio.to_thread(_write, run.root / "library/kestra.py", KESTRA_MODULE)

    def output_patterns(self, run: CLIRun) -> list[str]:
        patterns = super().output_patterns(run)
        if render_bool(run.ctx, self.outputLogFile, "outputLogFile"):
            patterns.append("log")
        return patterns

    def _auto_install(self, run: CLIRun) -> list[str]:
        ctx = run.ctx
        lines = []
        if render_bool(ctx, self.autoInstallPythonRequirements, "autoInstallPythonRequirements"):
            python = shlex.quote(_tool_python(run))
            target = shlex.quote(str(run.root / _PY_DIR))
            lines.append(
                f"[ ! -f requirements.txt ] || {python} -m pip install --no-cache-dir "
                f"--disable-pip-version-check --target {target} -r requirements.txt"
            )
        if render_bool(ctx, self.autoInstallGalaxyRequirements, "autoInstallGalaxyRequirements"):
            lines.append("[ ! -f requirements.yml ] || ansible-galaxy install -r requirements.yml")
        return lines

    async def execute(self, run: CLIRun) -> ProcessResult:
        mode = self.mode(run)
        commands = self.command_lines(run)
        before = string_list(run.render(self.beforeCommands), "beforeCommands")
        before += self._auto_install(run)
        log_file = render_bool(run.ctx, self.outputLogFile, "outputLogFile")
        merged_vars: dict[str, Any] = {}
        raw: list[Any] = []
        explicit: dict[str, Any] = {}
        playbooks: list[Any] = []
        logs: list[Path] = []
        exit_code = 0
        result = ProcessResult(exit_code=0)
        for index, command in enumerate(commands):
            env = {**run.env, "KESTRA_OUTPUTS_MODE": mode.lower()}
            if log_file and len(commands) > 1:
                logs.append(run.root / f"log-{index}")
                env["ANSIBLE_LOG_PATH"] = str(logs[-1])
            script = "\n".join(["set -e", *(before if index == 0 else []), command])
            result = await self.process(run, script, env)
            exit_code = max(exit_code, result.exit_code or 0)
            outputs = result.vars.get("outputs")
            if isinstance(outputs, list):
                raw += [o for o in outputs if isinstance(o, dict)]
            elif isinstance(outputs, dict):
                explicit.update({str(k): v for k, v in outputs.items()})
            found = result.vars.get("playbooks")
            if isinstance(found, list):
                playbooks += found
            merged_vars.update(
                {k: v for k, v in result.vars.items() if k not in ("outputs", "playbooks")}
            )
            for key, value in result.metrics.items():
                run.add_metric(key, value)
            result.metrics = {}
            if result.killed or result.exit_code != 0:
                break
        if logs:
            await asyncio.to_thread(_concatenate, logs, run.root / "log")
        merged_vars["outputs"] = explicit if mode == "EXPLICIT" else raw
        merged_vars["playbooks"] = playbooks
        run.outputs.update({"exitCode": exit_code, "vars": merged_vars, "playbooks": playbooks})
        self._log_tasks(run, playbooks)
        return result

    def _log_tasks(self, run: CLIRun, playbooks: list[Any]) -> None:
        """Kestra's per-Ansible-task dynamic task run lines, in the task's own log."""
        for playbook in playbooks:
            for play in _dicts(playbook.get("plays") if isinstance(playbook, dict) else None):
                for task in _dicts(play.get("tasks")):
                    for host in _dicts(task.get("hosts")):
                        status = str(host.get("status"))
                        failed = status.lower() in ("failed", "unreachable")
                        result = orjson.dumps(host.get("result") or {}, default=str).decode()
                        run.ctx.log(
                            "ERROR" if failed else "INFO",
                            f"{task.get('uid')}: [{host.get('host')}] {status} => {result}",
                        )


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _tool_python(run: CLIRun) -> str:
    """The Python that runs ansible-playbook (its shebang), for its requirements."""
    found = shutil.which("ansible-playbook", path=run.env.get("PATH"))
    if found is not None:
        try:
            with Path(found).open("rb") as handle:
                first = handle.readline().decode("utf-8", "replace").strip()
        except OSError:
            first = ""
        if first.startswith("#!") and " " not in first[2:].strip():
            return first[2:].strip()
    return "python3"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _concatenate(parts: list[Path], target: Path) -> None:
    with target.open("w") as out:
        for part in parts:
            if part.exists():
                content = part.read_text()
                out.write(content if not content or content.endswith("\n") else content + "\n")


PLUGINS: list[type[TaskPlugin]] = [AnsibleCLI]
