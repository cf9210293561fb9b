"""Kestra's script languages (kestra-io/plugin-scripts): ``io.kestra.plugin.scripts.<lang>.Script``
and ``.Commands`` for Node.js, R, Ruby, Julia, Go, Perl, PHP, PowerShell, Bun, Deno, Lua,
Groovy, JBang and .NET (C# scripts). Shell and Python are :mod:`executors.shell` and
:mod:`executors.python`; all of them share :func:`executors.shell.run_script`.

What Kestra does (each type extends ``AbstractExecScript``): the properties are the script
family's (``beforeCommands``, ``env``, ``inputFiles``, ``outputFiles``, ``namespaceFiles``,
``interpreter`` = ``["/bin/sh", "-c"]``, ``failFast`` = true, ``warningOnStdErr``,
``containerImage`` = the language's image, ``taskRunner``, ``targetOS``, ``outputDirectory``,
the deprecated ``runner``/``docker``), plus

- ``Commands``: ``commands`` (required), run as one interpreter invocation:
  ``interpreter + ["set -e\\n" + beforeCommands + commands]``;
- ``Script``: ``script`` (required), rendered, written to a temporary file with the
  language's extension in the working directory, then run as
  ``interpreter + ["set -e\\n" + beforeCommands + "<run command> <file>"]``.

The languages differ only by data (:data:`LANGUAGES`): default image, file extension, run
command, default interpreter and exit-on-error line (PowerShell: ``pwsh -NoProfile
-NonInteractive -Command`` and ``$ErrorActionPreference = 'Stop'``), set-up commands (.NET
installs ``dotnet-script`` first), and how packages are installed — always by the user's
``beforeCommands`` (``npm install``, ``gem install``, ``Rscript -e install.packages``...), as in
Kestra, which has no ``dependencies`` property for these languages. JBang's Script adds
``extension`` (``.java``) and ``quiet`` (true: ``jbang --quiet``).

Outputs are Kestra's ``ScriptOutput`` (``exitCode``, ``vars`` from ``::{"outputs": ...}::``,
``outputFiles``); ``::{"metrics": ...}::`` lines become metrics.

Where Headwater differs: the default task runner is the worker's host, not Docker (see
:mod:`executors.runners`; ``containerImage`` or a Docker ``taskRunner`` asks for a container);
on the host, the language's executable must be installed, or the run fails with "node is not
installed on this worker" before anything starts. PHP scripts are written as ``.php`` (Kestra
writes ``.js``, which PHP runs all the same). Groovy's container runs as ``root``, as Kestra's.
Not provided: the JVM-embedded ``Eval`` / ``FileTransform`` types (Groovy, Jython, Nashorn)
and the ``ScriptTrigger`` / ``CommandsTrigger`` polling triggers.
"""

from __future__ import annotations

import dataclasses
import shlex
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

from executors.base import TaskContext, TaskError, TaskOutcome, as_bool, to_text
from executors.plugin import TaskPlugin
from executors.runners import Container
from executors.shell import (
    EXIT_ON_ERROR,
    command_script,
    interpreter_argv,
    resolve_runner,
    run_script,
    string_list,
    with_before_commands,
)
from schemas.flow.common import BoolOrExpr, Str


@dataclass(frozen=True, slots=True)
class Language:
    """What one script language of Kestra's plugin-scripts is made of."""

    key: str  # the package: io.kestra.plugin.scripts.<key>
    name: str  # for docs and messages
    image: str  # Kestra's default containerImage
    extension: str  # of Script's temporary file
    run: tuple[str, ...]  # the command that runs a script file
    executable: str  # what must be installed on the host
    packages: str  # how a flow installs packages (in beforeCommands)
    interpreter: tuple[str, ...] = ()  # () = /bin/sh -c
    exit_on_error: str = EXIT_ON_ERROR
    setup: tuple[str, ...] = ()  # commands before the user's beforeCommands
    container_user: str | None = None


_PWSH = ("pwsh", "-NoProfile", "-NonInteractive", "-Command")
LANGUAGES: tuple[Language, ...] = (
    Language("node", "Node.js", "node", ".js", ("node",), "node", "npm install PACKAGE"),
    Language("r", "R", "r-base", ".R", ("Rscript",), "Rscript",
             "Rscript -e \"install.packages('PACKAGE')\""),
    Language("ruby", "Ruby", "ruby", ".rb", ("ruby",), "ruby", "gem install PACKAGE"),
    Language("julia", "Julia", "julia", ".jl", ("julia",), "julia",
             "julia -e 'using Pkg; Pkg.add(\"PACKAGE\")'"),
    Language("go", "Go", "golang", ".go", ("go", "run"), "go", "go get PACKAGE"),
    Language("perl", "Perl", "perl", ".pl", ("perl",), "perl", "cpanm PACKAGE"),
    Language("php", "PHP", "php", ".php", ("php",), "php", "composer require PACKAGE"),
    Language("powershell", "PowerShell", "ghcr.io/kestra-io/powershell:latest", ".ps1", (),
             "pwsh", "Install-Module -Name PACKAGE -Force", interpreter=_PWSH,
             exit_on_error="$ErrorActionPreference = 'Stop'"),
    Language("bun", "Bun", "oven/bun", ".ts", ("bun", "run"), "bun", "bun add PACKAGE"),
    Language("deno", "Deno", "denoland/deno", ".ts", ("deno", "run"), "deno",
             "npm: / jsr: specifiers in the script"),
    Language("lua", "Lua", "nickblah/lua", ".lua", ("lua",), "lua", "luarocks install PACKAGE"),
    Language("groovy", "Groovy", "groovy", ".groovy", ("groovy",), "groovy",
             "@Grab annotations in the script", container_user="root"),
    Language("jbang", "JBang", "jbangdev/jbang-action", ".java", ("jbang", "--quiet"), "jbang",
             "//DEPS comments in the script"),
    Language("dotnet", ".NET", "mcr.microsoft.com/dotnet/sdk:10.0", ".csx", ("dotnet-script",),
             "dotnet", "#r \"nuget: PACKAGE, VERSION\" in the script",
             setup=("dotnet tool install -g dotnet-script --ignore-failed-sources || true",
                    'export PATH="$PATH:$HOME/.dotnet/tools"')),
)  # fmt: skip


class ScriptProperties(TaskPlugin):
    """The properties every script-like type shares (Kestra's AbstractExecScript): the base of
    a TaskPlugin that runs through :func:`executors.shell.run_script` (pass it
    :meth:`properties`)."""

    family: ClassVar[str] = "scripts"

    env: dict[str, Any] | None = None
    beforeCommands: list[Str] | Str | None = None
    interpreter: list[Str] | None = None
    containerImage: Str | None = None
    taskRunner: dict[str, Any] | None = None
    docker: dict[str, Any] | None = None
    runner: Literal["PROCESS", "DOCKER"] | None = None
    inputFiles: dict[str, Any] | Str | None = None
    outputFiles: list[Str] | None = None
    namespaceFiles: dict[str, Any] | None = None
    warningOnStdErr: BoolOrExpr | None = None
    failFast: BoolOrExpr | None = None
    targetOS: Literal["LINUX", "WINDOWS", "AUTO"] | None = None
    outputDirectory: BoolOrExpr | None = None

    def properties(self) -> dict[str, Any]:
        """The task's properties as the shared runner reads them."""
        return self.model_dump(exclude_none=True)


class _LanguageTask(ScriptProperties):
    language: ClassVar[Language]

    async def _run(self, ctx: TaskContext, commands: Callable[..., list[str]]) -> TaskOutcome:
        lang = self.language
        props = self.properties()
        if lang.setup:
            before = string_list(ctx.render(props.get("beforeCommands")), "beforeCommands")
            props["beforeCommands"] = [*lang.setup, *before]
        runner = await resolve_runner(props, ctx, default_image=lang.image)
        if isinstance(runner, Container) and lang.container_user and not runner.options.user:
            options = dataclasses.replace(runner.options, user=lang.container_user)
            runner = dataclasses.replace(runner, options=options)

        def argv(root: Path, render: Callable[[Any], Any]) -> list[str]:
            interpreter = interpreter_argv(props, render, lang.interpreter)
            return [*interpreter, *commands(props, root, render)]

        return await run_script(props, ctx, argv, requires=[lang.executable], runner=runner)


class _LanguageCommands(_LanguageTask):
    commands: list[Str] | Str

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        lang = self.language

        def body(props: Mapping[str, Any], root: Path, render: Callable[[Any], Any]) -> list[str]:
            script = command_script(
                props, render, fail_fast_default=True, exit_on_error=lang.exit_on_error
            )
            return [script]

        return await self._run(ctx, body)


class _LanguageScript(_LanguageTask):
    script: Str

    def script_command(self, ctx: TaskContext) -> list[str]:
        return list(self.language.run)

    def script_extension(self, ctx: TaskContext) -> str:
        return self.language.extension

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        lang = self.language
        run = self.script_command(ctx)
        extension = self.script_extension(ctx)

        def body(props: Mapping[str, Any], root: Path, render: Callable[[Any], Any]) -> list[str]:
            path = root / f".hw_script_{uuid.uuid4().hex}{extension}"
            path.write_text(to_text(render(props["script"])))
            line = " ".join([*run, shlex.quote(str(path))])
            return [with_before_commands(props, render, [line], exit_on_error=lang.exit_on_error)]

        return await self._run(ctx, body)


class _JBangScript(_LanguageScript):
    """JBang's Script: ``extension`` (default ``.java``) and ``quiet`` (default true)."""

    extension: Str | None = None
    quiet: BoolOrExpr | None = None

    def script_command(self, ctx: TaskContext) -> list[str]:
        quiet = self.quiet is None or as_bool(ctx.render(self.quiet))
        return list(self.language.run) if quiet else ["jbang"]

    def script_extension(self, ctx: TaskContext) -> str:
        value = ctx.render_str(self.extension) or ".java"
        if "/" in value or not value.startswith("."):
            raise TaskError(f"property 'extension' must look like .java, got {value!r}")
        return value


def _type_class(lang: Language, kind: str, base: type[_LanguageTask]) -> type[TaskPlugin]:
    name = f"io.kestra.plugin.scripts.{lang.key}.{kind}"
    what = "a script file" if kind == "Script" else "commands"
    doc = (
        f"Run {what} with {lang.name} ({lang.executable} on the host, or image {lang.image}); "
        f"install packages in beforeCommands ({lang.packages})."
    )
    namespace: dict[str, Any] = {
        "__annotations__": {"type": cast(Any, Literal)[name]},
        "__doc__": doc,
        "__module__": __name__,
        "language": lang,
    }
    return cast(type[TaskPlugin], type(f"{lang.key.title()}{kind}", (base,), namespace))


def _plugins() -> list[type[TaskPlugin]]:
    out: list[type[TaskPlugin]] = []
    for lang in LANGUAGES:
        script_base = _JBangScript if lang.key == "jbang" else _LanguageScript
        out.append(_type_class(lang, "Script", script_base))
        out.append(_type_class(lang, "Commands", _LanguageCommands))
    return out


PLUGINS: list[type[TaskPlugin]] = _plugins()
