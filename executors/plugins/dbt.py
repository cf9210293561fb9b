"""Kestra's dbt CLI plugin: ``io.kestra.plugin.dbt.cli.DbtCLI`` and the deprecated tasks.

What Kestra does (kestra-io/plugin-dbt ``DbtCLI``, ``AbstractDbt``, ``AbstractRun``, ``Setup``,
``ResultParser``, ``LogService``), and what this module ports, on :mod:`executors.clitools`:

``DbtCLI`` (a scripts task: ``beforeCommands``, ``env``, ``interpreter`` (``/bin/sh -c``),
``failFast`` (true: ``set -e``), ``inputFiles``, ``outputFiles``, ``namespaceFiles``...):

- ``commands`` (required): every line starting with ``dbt`` gets ``--project-dir <projectDir>``
  (when set and absent), ``--log-format <logFormat>`` (default ``JSON``; not with ``NONE`` nor
  when present) and ``--log-path logs`` (when absent). ``PYTHONUNBUFFERED=true`` and
  ``PIP_ROOT_USER_ACTION=ignore`` are added to ``env``.
- ``profiles``: written to ``profiles.yml`` in the working directory (dbt reads it from there),
  replacing one that exists (logged).
- ``loadManifest`` / ``storeManifest`` (``{key, namespace}``): before the run, the KV value
  (a JSON object or text) becomes ``<projectDir>/target/manifest.json`` (a warning when the key
  is missing); after the run the manifest is stored under the key as a JSON object.
- Output lines: ``::{...}::`` lines are parsed as for scripts; any other line goes through
  ``LogService``: a dbt JSON log record is logged as ``[Date: ts] [Thread: t] [Type: name] msg``
  at its level, its ``data.stats`` become counters (``pass``, ``error``, ``warn``, ``skip``,
  ``total``...), and a ``warn`` record ends the task WARNING (``warningDetected``); other lines
  are logged at INFO, stderr included (stderr never makes dbt tasks WARNING).
- After the run, failed or not: ``target/manifest.json`` (else a warning) and, with
  ``parseRunResults`` (default true), ``target/run_results.json`` are stored and added to
  ``outputFiles`` as ``manifest.json`` / ``run_results.json``; each result's
  ``adapter_response`` adds ``rows.affected`` / ``bytes.processed`` counters.
- Outputs: ``exitCode``, ``vars``, ``outputFiles``; a failing command fails the task with them.

Deprecated ``Build``, ``Run``, ``Test``, ``Compile``, ``Seed``, ``Snapshot``, ``Deps``,
``Freshness`` (``source freshness``), ``List``: one command ``<dbtPath> --log-format json
[--debug] [--fail-fast] [--warn-error] <command> --profiles-dir <wd>/.profile [--threads n]
[--full-refresh] [--target t] [--selector s] [--select a b] [--exclude a b] --project-dir
<wd>[/projectDir]`` (``dbtPath`` default ``./bin/dbt``); ``profiles`` is written to
``<wd>/.profile/profiles.yml``; results are parsed as above except for Deps, Freshness and
List; the outputs are a script's, and dbt's warnings do not make them WARNING.
``Setup``: ``<pythonPath> -m venv --system-site-packages <wd>``, ``./bin/pip install pip
--upgrade`` and ``./bin/pip install <requirements>`` (stdout discarded), ``profiles`` (a text or
a map written as YAML) in ``<wd>/.profile/profiles.yml``: the deprecated tasks then run
``./bin/dbt`` of that virtualenv (in a ``WorkingDirectory``).

Where dbt comes from: the worker's ``PATH``, else a cached virtualenv with
:data:`DBT_REQUIREMENTS` (dbt-core with the duckdb and postgres adapters; another adapter needs
dbt on the worker's PATH or a ``beforeCommands`` install).

What differs: Kestra creates one dynamic task run per dbt node (its timeline bars) with that
node's log lines; Headwater has no dynamic task runs, so those lines (``model.x => success in
0.05s``, and the node's message) go to the task's own log at the node's level. Assets (an
Enterprise feature) are not emitted. An unknown result status (dbt's ``no-op``...) is logged, not
an error. The deprecated tasks' ``--selector`` takes ``selector`` (Kestra passes ``target``),
``projectDir`` is joined as a path (Kestra concatenates it to the working directory), and a
``dbtPath`` that does not exist on the worker (``./bin/dbt`` without ``Setup``, an image's
``/usr/local/bin/dbt``) falls back to ``dbt``. ``Setup`` falls back to ``python3`` when the
default ``python`` is missing. ``engine: FUSION`` picks an image in Kestra: here dbt is whatever
the worker provides (dbt Core unless its PATH has Fusion).
"""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal

import orjson
import yaml

from executors.base import TaskError, to_text
from executors.clitools import CLIRun, CLITask, Tool
from executors.dbt_artifacts import parse_log_line, parse_run_results
from executors.plugin import TaskPlugin, render_bool, render_int, render_str
from executors.process import ProcessResult, inside
from executors.shell import string_list
from schemas.flow.common import BoolOrExpr, FlowModel, IntOrExpr, Str

# dbt Core and the adapters the worker installs when its PATH has no dbt (tested: DuckDB and
# PostgreSQL). Newer dbt-core releases need a parser binary downloaded from GitHub at install.
DBT_REQUIREMENTS = ("dbt-core==1.11.16", "dbt-duckdb==1.11.1", "dbt-postgres==1.11.0")
DBT_TOOL = Tool("dbt", "ghcr.io/kestra-io/dbt", DBT_REQUIREMENTS)
_ENV = {"PYTHONUNBUFFERED": "true", "PIP_ROOT_USER_ACTION": "ignore"}


class KvStoreManifest(FlowModel):
    """Where a manifest lives in the KV store (Kestra's ``KvStoreManifest``)."""

    key: Str
    namespace: Str


class _Dbt(CLITask):
    """What every dbt task shares: the tool, dbt's log lines, the results parsing."""

    family: ClassVar[str] = "dbt"
    tool: ClassVar[Tool] = DBT_TOOL
    warning_on_stderr: ClassVar[bool] = False
    # Whether the run's results are parsed after the run (not for deps, freshness, list).
    parses_results: ClassVar[bool] = True

    def environment(self, run: CLIRun, user_env: dict[str, str]) -> dict[str, str]:
        return {**user_env, **_ENV}

    def on_line(self, run: CLIRun, level: str, message: str) -> bool:
        line = parse_log_line(message)
        for name, value in line.stats.items():
            run.add_metric(name, value)
        if line.warning:
            run.warning = True
        run.ctx.log(line.level, line.message)
        return True

    def project_dir(self, run: CLIRun) -> Path:
        relative = render_str(run.ctx, getattr(self, "projectDir", None), "projectDir")
        if not relative or relative.strip("/") in ("", "."):
            return run.root
        try:
            return inside(run.root, relative)
        except TaskError:
            raise TaskError(
                f"property 'projectDir': {relative!r} must be a directory inside the working "
                "directory"
            ) from None

    async def finish(self, run: CLIRun, result: ProcessResult) -> None:
        if not self.parses_results:
            return
        project = self.project_dir(run)
        manifest = project / "target" / "manifest.json"
        if not await asyncio.to_thread(manifest.is_file):
            run.ctx.log("WARN", f"dbt manifest not found at {manifest}")
        else:
            run.ctx.log("INFO", f"dbt manifest found at {manifest}")
            data = await asyncio.to_thread(manifest.read_bytes)
            document = _json(data, "target/manifest.json")
            await self.store_manifest(run, document)
            nodes = document.get("nodes") if isinstance(document, dict) else None
            run.ctx.log("INFO", f"dbt manifest parsed: {len(nodes or {})} nodes")
            run.output_files["manifest.json"] = await run.store("manifest.json", manifest)
        results = project / "target" / "run_results.json"
        parse = render_bool(run.ctx, getattr(self, "parseRunResults", True), "parseRunResults")
        if parse and await asyncio.to_thread(results.is_file):
            data = await asyncio.to_thread(results.read_bytes)
            try:
                nodes_run = parse_run_results(data, run.add_metric)
            except ValueError as exc:
                raise TaskError(f"target/run_results.json: {exc}") from exc
            for node in nodes_run:
                for level, text in node.log_lines():
                    run.ctx.log(level, text)
            run.output_files["run_results.json"] = await run.store("run_results.json", results)

    async def store_manifest(self, run: CLIRun, document: Any) -> None:
        """Legacy tasks have no ``storeManifest``."""


class DbtCLI(_Dbt):
    """Run dbt commands (dbt Core with the DuckDB and PostgreSQL adapters, or the worker's dbt)."""

    short: ClassVar[str | None] = "dbt_cli"

    type: Literal["io.kestra.plugin.dbt.cli.DbtCLI"]
    commands: list[Str] | Str
    profiles: Str | None = None
    projectDir: Str | None = None
    parseRunResults: BoolOrExpr = True
    storeManifest: KvStoreManifest | None = None
    loadManifest: KvStoreManifest | None = None
    logFormat: Literal["JSON", "TEXT", "DEBUG", "NONE"] | Str = "JSON"
    engine: Literal["CORE", "FUSION"] | Str = "CORE"
    beforeCommands: list[Str] | Str | None = None
    interpreter: list[Str] | None = None
    failFast: BoolOrExpr = True
    warningOnStdErr: BoolOrExpr | None = None
    outputDirectory: BoolOrExpr | None = None
    targetOS: Literal["LINUX", "WINDOWS", "AUTO"] | Str | None = None
    runner: Literal["PROCESS", "DOCKER"] | None = None

    async def prepare(self, run: CLIRun) -> None:
        ctx = run.ctx
        project = self.project_dir(run)
        ctx.log("INFO", f"dbt project working directory: {project}")
        if self.storeManifest is not None or self.loadManifest is not None:
            if ctx.kv is None:
                raise TaskError(
                    "loadManifest/storeManifest need the KV store; this worker has none"
                )
        if self.loadManifest is not None:
            namespace, key = _kv_location(run, self.loadManifest, "loadManifest")
            assert ctx.kv is not None
            found, value = await ctx.kv.get(namespace, key)
            if not found or value is None or not to_text(value).strip():
                ctx.log(
                    "WARN",
                    "Property `loadManifest` has been used but no manifest has been found in "
                    "the KV Store.",
                )
            else:
                text = value if isinstance(value, str) else orjson.dumps(value).decode()
                await asyncio.to_thread(_write_text, project / "target" / "manifest.json", text)
        await _write_profiles(
            run,
            self.profiles,
            run.root / "profiles.yml",
            "INFO",
            "A 'profiles.yml' file already exists in the task working directory; it will be "
            "overridden.",
        )
        engine = render_str(ctx, self.engine, "engine")
        if engine and engine.upper() == "FUSION":
            ctx.log("WARN", "engine FUSION: this worker runs the dbt it provides (dbt Core)")

    def command_lines(self, run: CLIRun) -> list[str]:
        commands = super().command_lines(run)
        project = render_str(run.ctx, self.projectDir, "projectDir")
        log_format = (render_str(run.ctx, self.logFormat, "logFormat") or "JSON").upper()
        if log_format not in ("JSON", "TEXT", "DEBUG", "NONE"):
            raise TaskError(
                f"property 'logFormat': {log_format!r} is not one of JSON, TEXT, DEBUG, NONE"
            )
        out = []
        for command in commands:
            if command.startswith("dbt"):
                if project and "--project-dir" not in command:
                    command += f" --project-dir {project}"
                if log_format != "NONE" and "--log-format" not in command:
                    command += f" --log-format {log_format.lower()}"
                if "--log-path" not in command:
                    command += " --log-path logs"
            out.append(command)
        return out

    async def store_manifest(self, run: CLIRun, document: Any) -> None:
        if self.storeManifest is None:
            return
        namespace, key = _kv_location(run, self.storeManifest, "storeManifest")
        assert run.ctx.kv is not None
        await run.ctx.kv.set(namespace, key, document, overwrite=True, ttl_seconds=None)
        run.ctx.log("INFO", f"dbt manifest stored in the KV store: {namespace}/{key}")


def _kv_location(run: CLIRun, where: KvStoreManifest, name: str) -> tuple[str, str]:
    namespace = render_str(run.ctx, where.namespace, f"{name}.namespace", required=True)
    key = render_str(run.ctx, where.key, f"{name}.key", required=True)
    return namespace or "", key or ""


async def _write_profiles(
    run: CLIRun, profiles: Any, target: Path, level: str, overriding: str
) -> None:
    """Write the rendered ``profiles`` (when set) to ``target``; ``overriding`` is logged at
    ``level`` when a file is there already (DbtCLI and the deprecated tasks word it apart)."""
    text = render_str(run.ctx, profiles, "profiles")
    if not text:
        return
    if await asyncio.to_thread(target.exists):
        run.ctx.log(level, overriding)
    await asyncio.to_thread(_write_text, target, text)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _json(data: bytes, name: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise TaskError(f"{name} is not valid JSON: {exc}") from exc


# ------------------------------------------------------------------ the deprecated tasks


class _LegacyDbt(_Dbt):
    """Kestra's ``AbstractDbt`` + ``AbstractRun``: one generated dbt command."""

    command: ClassVar[str]

    failFast: BoolOrExpr = False
    warnError: BoolOrExpr = False
    debug: BoolOrExpr = False
    projectDir: Str | None = None
    dbtPath: Str = "./bin/dbt"
    profiles: Str | None = None
    parseRunResults: BoolOrExpr = True
    runner: Literal["PROCESS", "DOCKER"] | Str | None = None
    dockerOptions: dict[str, Any] | None = None
    thread: IntOrExpr | None = None
    fullRefresh: BoolOrExpr = False
    target: Str | None = None
    selector: Str | None = None
    select: list[Str] | Str | None = None
    exclude: list[Str] | Str | None = None

    def final_state(self, run: CLIRun, stderr_lines: int) -> str:
        return "SUCCESS"  # a ScriptOutput: dbt's warnings do not change the state

    async def prepare(self, run: CLIRun) -> None:
        await _write_profiles(
            run,
            self.profiles,
            run.root / ".profile" / "profiles.yml",
            "WARN",
            "A 'profiles.yml' file already exist in the task working directory, it will be "
            "overridden.",
        )

    def script(self, run: CLIRun) -> str:
        ctx = run.ctx
        parts = [self._dbt_path(run), "--log-format json"]
        if render_bool(ctx, self.debug, "debug"):
            parts.append("--debug")
        if render_bool(ctx, self.failFast, "failFast"):
            parts.append("--fail-fast")
        if render_bool(ctx, self.warnError, "warnError"):
            parts.append("--warn-error")
        parts += [self.command, "--profiles-dir " + shlex.quote(str(run.root / ".profile"))]
        threads = render_int(ctx, self.thread, "thread")
        if threads is not None:
            parts.append(f"--threads {threads}")
        if render_bool(ctx, self.fullRefresh, "fullRefresh"):
            parts.append("--full-refresh")
        for flag, value in (("--target", self.target), ("--selector", self.selector)):
            rendered = render_str(ctx, value, flag[2:])
            if rendered:
                parts.append(f"{flag} {rendered}")
        for flag, values in (("--select", self.select), ("--exclude", self.exclude)):
            items = string_list(run.render(values), flag[2:])
            if items:
                parts.append(f"{flag} {' '.join(items)}")
        parts.append("--project-dir " + shlex.quote(str(self.project_dir(run))))
        return " ".join(parts)

    def _dbt_path(self, run: CLIRun) -> str:
        configured = render_str(run.ctx, self.dbtPath, "dbtPath") or "dbt"
        if configured == "dbt":
            return configured
        path = Path(configured)
        local = path if path.is_absolute() else run.root / PurePosixPath(configured)
        if local.is_file():
            return shlex.quote(configured)
        run.ctx.log("INFO", f"dbtPath {configured} does not exist on this worker: using dbt")
        return "dbt"


class Build(_LegacyDbt):
    """Run `dbt build` (deprecated in Kestra: use DbtCLI)."""

    short: ClassVar[str | None] = "dbt_build"
    command: ClassVar[str] = "build"
    type: Literal["io.kestra.plugin.dbt.cli.Build"]


class Run(_LegacyDbt):
    """Run `dbt run` (deprecated in Kestra: use DbtCLI)."""

    short: ClassVar[str | None] = "dbt_run"
    command: ClassVar[str] = "run"
    type: Literal["io.kestra.plugin.dbt.cli.Run"]


class Test(_LegacyDbt):
    """Run `dbt test` (deprecated in Kestra: use DbtCLI)."""

    __test__ = False  # not a pytest test class
    short: ClassVar[str | None] = "dbt_test"
    command: ClassVar[str] = "test"
    type: Literal["io.kestra.plugin.dbt.cli.Test"]


class Compile(_LegacyDbt):
    """Run `dbt compile` (deprecated in Kestra: use DbtCLI)."""

    short: ClassVar[str | None] = "dbt_compile"
    command: ClassVar[str] = "compile"
    type: Literal["io.kestra.plugin.dbt.cli.Compile"]


class Seed(_LegacyDbt):
    """Run `dbt seed` (deprecated in Kestra: use DbtCLI)."""

    short: ClassVar[str | None] = "dbt_seed"
    command: ClassVar[str] = "seed"
    type: Literal["io.kestra.plugin.dbt.cli.Seed"]


class Snapshot(_LegacyDbt):
    """Run `dbt snapshot` (deprecated in Kestra: use DbtCLI)."""

    short: ClassVar[str | None] = "dbt_snapshot"
    command: ClassVar[str] = "snapshot"
    type: Literal["io.kestra.plugin.dbt.cli.Snapshot"]


class Deps(_LegacyDbt):
    """Run `dbt deps` (deprecated in Kestra: use DbtCLI)."""

    short: ClassVar[str | None] = "dbt_deps"
    command: ClassVar[str] = "deps"
    parses_results: ClassVar[bool] = False
    type: Literal["io.kestra.plugin.dbt.cli.Deps"]


class Freshness(_LegacyDbt):
    """Run `dbt source freshness` (deprecated in Kestra: use DbtCLI)."""

    short: ClassVar[str | None] = "dbt_freshness"
    command: ClassVar[str] = "source freshness"
    parses_results: ClassVar[bool] = False
    type: Literal["io.kestra.plugin.dbt.cli.Freshness"]


class List(_LegacyDbt):
    """Run `dbt list` (deprecated in Kestra: use DbtCLI)."""

    short: ClassVar[str | None] = "dbt_list"
    command: ClassVar[str] = "list"
    parses_results: ClassVar[bool] = False
    type: Literal["io.kestra.plugin.dbt.cli.List"]


class Setup(CLITask):
    """Set dbt up in a virtualenv of the working directory (deprecated in Kestra)."""

    family: ClassVar[str] = "dbt"
    short: ClassVar[str | None] = "dbt_setup"
    tool: ClassVar[Tool] = Tool("python", "python")
    warning_on_stderr: ClassVar[bool] = False

    type: Literal["io.kestra.plugin.dbt.cli.Setup"]
    profiles: Str | dict[str, Any]
    requirements: list[Str] | Str
    pythonPath: Str = "python"
    exitOnFailed: BoolOrExpr = True
    dockerOptions: dict[str, Any] | None = None
    beforeCommands: list[Str] | Str | None = None
    interpreter: list[Str] | None = None
    failFast: BoolOrExpr = True
    warningOnStdErr: BoolOrExpr | None = None
    outputDirectory: BoolOrExpr | None = None
    targetOS: Literal["LINUX", "WINDOWS", "AUTO"] | Str | None = None
    runner: Literal["PROCESS", "DOCKER"] | None = None

    def environment(self, run: CLIRun, user_env: dict[str, str]) -> dict[str, str]:
        return {**user_env, **_ENV}

    async def prepare(self, run: CLIRun) -> None:
        profiles = run.render(self.profiles)
        if isinstance(profiles, dict):
            content = yaml.safe_dump(profiles, sort_keys=False)
        elif isinstance(profiles, str):
            content = profiles
        else:
            raise TaskError("The `profiles` attribute must be a String or a Map")
        await asyncio.to_thread(_write_text, run.root / ".profile" / "profiles.yml", content)

    def command_lines(self, run: CLIRun) -> list[str]:
        python = render_str(run.ctx, self.pythonPath, "pythonPath") or "python"
        if python == "python" and not _on_path("python", run.env.get("PATH")):
            python = "python3"
        requirements = string_list(run.render(self.requirements), "requirements")
        root = shlex.quote(str(run.root))
        lines = [f"{shlex.quote(python)} -m venv --system-site-packages {root} > /dev/null"]
        if requirements:
            lines += [
                "./bin/pip install pip --upgrade > /dev/null",
                "./bin/pip install " + " ".join(requirements) + " > /dev/null",
            ]
        return lines


def _on_path(name: str, path: str | None) -> bool:
    import shutil

    return shutil.which(name, path=path) is not None


PLUGINS: list[type[TaskPlugin]] = [
    DbtCLI,
    Build,
    Run,
    Test,
    Compile,
    Seed,
    Snapshot,
    Deps,
    Freshness,
    List,
    Setup,
]
