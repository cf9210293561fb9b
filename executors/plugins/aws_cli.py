"""Kestra's AWS CLI task: ``io.kestra.plugin.aws.cli.AwsCLI``.

What Kestra does (kestra-io/plugin-aws ``AwsCLI`` on ``AbstractConnection``), ported on
:mod:`executors.clitools`:

- Properties: ``commands`` (required, run by ``/bin/sh -c``), ``env``, ``inputFiles``,
  ``outputFiles``, ``namespaceFiles``, ``containerImage`` (``amazon/aws-cli``), ``taskRunner``,
  ``docker``, ``outputFormat`` (``JSON`` | ``TEXT`` | ``TABLE`` | ``YAML``), and the connection:
  ``accessKeyId``, ``secretKeyId``, ``sessionToken``, ``region``, ``endpointOverride``,
  ``stsRoleArn``, ``stsRoleSessionName``, ``stsRoleExternalId``, ``stsRoleSessionDuration``
  (PT15M), ``stsCredentialSource`` (``ENVIRONMENT`` | ``EC2_INSTANCE_METADATA`` |
  ``ECS_CONTAINER``), ``stsEndpointOverride``, ``compatibilityMode``, ``forcePathStyle``.
- The environment: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``,
  ``AWS_SESSION_TOKEN``, ``AWS_ENDPOINT_URL`` (from ``endpointOverride``) when set,
  ``AWS_DEFAULT_OUTPUT`` (the format, lower case), then ``env`` over them.
- The STS properties become ``aws configure set role_arn|role_session_name|external_id|
  duration_seconds|credential_source ...`` commands before ``commands`` (the AWS CLI reads no
  environment variable for them).
- Any stderr line makes the task WARNING; a failing command fails it (``set -e``).
- Outputs: ``exitCode``, ``vars`` (``::{"outputs": ...}::`` lines), ``outputFiles``.

Where aws comes from: the worker's ``PATH``, else a cached virtualenv with ``awscli`` (v1; the
default image has v2: the same commands for S3 and most services).

What differs: ``aws configure set`` writes to a configuration file of the run (a copy of the
worker's ``AWS_CONFIG_FILE`` or ``~/.aws/config``), never to the worker's own; the
``duration_seconds`` line is only written with ``stsRoleArn`` (Kestra writes its PT15M
default on every run: it only matters to an assumed role). ``stsEndpointOverride``,
``compatibilityMode`` and ``forcePathStyle`` are accepted and unused, as by Kestra's AwsCLI.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
from pathlib import Path
from typing import ClassVar, Literal

from executors.base import TaskError
from executors.clitools import CLIRun, CLITask, Tool
from executors.plugin import TaskPlugin, render_seconds, render_str
from schemas.flow.common import BoolOrExpr, Duration, Str

AWS_TOOL = Tool("aws", "amazon/aws-cli", ("awscli==1.46.2",))
_FORMATS = ("JSON", "TEXT", "TABLE", "YAML")
_CREDENTIAL_SOURCES = {
    "ENVIRONMENT": "Environment",
    "EC2_INSTANCE_METADATA": "Ec2InstanceMetadata",
    "ECS_CONTAINER": "EcsContainer",
}
# The run's own AWS CLI configuration, inside its working directory.
_CONFIG = ".headwater/aws/config"


class AwsCLI(CLITask):
    """Run AWS CLI commands."""

    family: ClassVar[str] = "aws"
    short: ClassVar[str | None] = "aws_cli"
    tool: ClassVar[Tool] = AWS_TOOL

    type: Literal["io.kestra.plugin.aws.cli.AwsCLI"]
    commands: list[Str] | Str
    outputFormat: Literal["JSON", "TEXT", "TABLE", "YAML"] | Str = "JSON"
    stsCredentialSource: Literal["ENVIRONMENT", "EC2_INSTANCE_METADATA", "ECS_CONTAINER"] | None = (
        None
    )
    accessKeyId: Str | None = None
    secretKeyId: Str | None = None
    sessionToken: Str | None = None
    region: Str | None = None
    endpointOverride: Str | None = None
    stsRoleArn: Str | None = None
    stsRoleSessionName: Str | None = None
    stsRoleExternalId: Str | None = None
    stsRoleSessionDuration: Duration = "PT15M"
    stsEndpointOverride: Str | None = None
    compatibilityMode: BoolOrExpr | None = None
    forcePathStyle: BoolOrExpr | None = None

    def environment(self, run: CLIRun, user_env: dict[str, str]) -> dict[str, str]:
        ctx = run.ctx
        env: dict[str, str] = {}
        for name, value in (
            ("AWS_ACCESS_KEY_ID", self.accessKeyId),
            ("AWS_SECRET_ACCESS_KEY", self.secretKeyId),
            ("AWS_DEFAULT_REGION", self.region),
            ("AWS_SESSION_TOKEN", self.sessionToken),
            ("AWS_ENDPOINT_URL", self.endpointOverride),
        ):
            rendered = render_str(ctx, value, name)
            if rendered is not None:
                env[name] = rendered
        output = (render_str(ctx, self.outputFormat, "outputFormat") or "JSON").upper()
        if output not in _FORMATS:
            choices = ", ".join(_FORMATS)
            raise TaskError(f"property 'outputFormat': {output!r} is not one of {choices}")
        env["AWS_DEFAULT_OUTPUT"] = output.lower()
        env.update(user_env)
        if self._configure_lines(run):
            env["AWS_CONFIG_FILE"] = str(run.root / _CONFIG)
        return env

    def _configure_lines(self, run: CLIRun) -> list[str]:
        ctx = run.ctx
        lines = []
        role = render_str(ctx, self.stsRoleArn, "stsRoleArn")
        for key, value in (
            ("role_arn", role),
            ("role_session_name", render_str(ctx, self.stsRoleSessionName, "stsRoleSessionName")),
            ("external_id", render_str(ctx, self.stsRoleExternalId, "stsRoleExternalId")),
        ):
            if value is not None:
                lines.append(f"aws configure set {key} {shlex.quote(value)}")
        if role is not None:
            seconds = render_seconds(ctx, self.stsRoleSessionDuration, "stsRoleSessionDuration")
            lines.append(f"aws configure set duration_seconds {int(seconds or 0)}")
        if self.stsCredentialSource is not None:
            source = _CREDENTIAL_SOURCES[self.stsCredentialSource]
            lines.append(f"aws configure set credential_source {source}")
        return lines

    async def prepare(self, run: CLIRun) -> None:
        if run.env.get("AWS_CONFIG_FILE") == str(run.root / _CONFIG):
            user = self._user_env(run).get("AWS_CONFIG_FILE") or os.environ.get("AWS_CONFIG_FILE")
            source = Path(user) if user else Path.home() / ".aws" / "config"
            await asyncio.to_thread(_copy_config, run.root / _CONFIG, source)

    def command_lines(self, run: CLIRun) -> list[str]:
        return [*self._configure_lines(run), *super().command_lines(run)]


def _copy_config(target: Path, source: Path) -> None:
    """The run's configuration starts as the worker's (its profiles), or empty."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        shutil.copyfile(source, target)
    else:
        target.touch()


PLUGINS: list[type[TaskPlugin]] = [AwsCLI]
