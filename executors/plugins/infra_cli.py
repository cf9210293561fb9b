"""CLI tasks whose tool is taken from the worker's PATH: Terraform, gcloud, CloudQuery.

What Kestra does (kestra-io/plugin-terraform ``TerraformCLI``, plugin-gcp ``cli.GCloudCLI``,
plugin-cloudquery ``CloudQueryCLI``), ported on :mod:`executors.clitools`: ``commands``
(required) run by ``/bin/sh -c`` with ``env``, ``inputFiles``, ``outputFiles``,
``namespaceFiles``; ``containerImage`` / ``taskRunner`` / ``docker`` pick Kestra's container;
any stderr line makes the task WARNING; outputs ``exitCode``, ``vars``, ``outputFiles``.

- ``TerraformCLI``: also ``beforeCommands`` and ``failFast`` (true: the first failing command
  fails the task; false: the last command decides). Image ``hashicorp/terraform``.
- ``GCloudCLI``: ``serviceAccount`` (the JSON key, written to a file of the working directory
  named by ``GOOGLE_APPLICATION_CREDENTIALS`` and ``CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE``),
  ``projectId`` (``CLOUDSDK_CORE_PROJECT``), then ``env`` over them. Image ``google/cloud-sdk``.
- ``CloudQueryCLI``: image ``ghcr.io/cloudquery/cloudquery:latest-ubuntu``, where Kestra aliases
  ``cloudquery`` to ``/app/cloudquery`` (the image's path).

None of these tools is in a registry a worker installs from, so they run when the worker's
``PATH`` has them (``env`` may set ``PATH``); otherwise the run fails with "terraform not found
on this worker" (the command the shell could not find), naming the image Kestra would use.
Tested with real terraform (1.0.3 from a PyPI sdist) and gcloud (the machine's Google Cloud
CLI); cloudquery only up to the missing-tool failure.

What differs: GCloudCLI and CloudQueryCLI have no ``failFast``: their script starts with
``set -e`` as TerraformCLI's does by default (Kestra's wrapper then lets a failing command
through to the next). CloudQueryCLI's ``/app/cloudquery`` alias is only made when that file
exists on the worker. The ``serviceAccount`` key file (0600) lives in the run's working
directory, as Kestra's temporary file does.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import ClassVar, Literal

from executors.clitools import CLIRun, CLITask, Tool
from executors.plugin import TaskPlugin, render_str
from schemas.flow.common import BoolOrExpr, Str

TERRAFORM_TOOL = Tool("terraform", "hashicorp/terraform")
GCLOUD_TOOL = Tool("gcloud", "google/cloud-sdk")
CLOUDQUERY_TOOL = Tool("cloudquery", "ghcr.io/cloudquery/cloudquery:latest-ubuntu")
# Where Kestra's CloudQuery image has the binary (its beforeCommands alias).
_CLOUDQUERY_IMAGE_PATH = "/app/cloudquery"
# GCloudCLI's service account key, in the run's working directory (0600).
_KEY_FILE = ".headwater/gcloud/service-account.json"


class TerraformCLI(CLITask):
    """Run Terraform commands with the worker's terraform."""

    family: ClassVar[str] = "terraform"
    short: ClassVar[str | None] = "terraform_cli"
    tool: ClassVar[Tool] = TERRAFORM_TOOL

    type: Literal["io.kestra.plugin.terraform.cli.TerraformCLI"]
    commands: list[Str] | Str
    beforeCommands: list[Str] | Str | None = None
    failFast: BoolOrExpr = True


class GCloudCLI(CLITask):
    """Run gcloud commands with the worker's Google Cloud SDK."""

    family: ClassVar[str] = "gcp"
    short: ClassVar[str | None] = "gcloud_cli"
    tool: ClassVar[Tool] = GCLOUD_TOOL

    type: Literal["io.kestra.plugin.gcp.cli.GCloudCLI"]
    commands: list[Str] | Str
    serviceAccount: Str | None = None
    projectId: Str | None = None

    def environment(self, run: CLIRun, user_env: dict[str, str]) -> dict[str, str]:
        env: dict[str, str] = {}
        if self.serviceAccount is not None:
            key = str(run.root / _KEY_FILE)
            env["GOOGLE_APPLICATION_CREDENTIALS"] = key
            env["CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE"] = key
        project = render_str(run.ctx, self.projectId, "projectId")
        if project is not None:
            env["CLOUDSDK_CORE_PROJECT"] = project
        return {**env, **user_env}

    async def prepare(self, run: CLIRun) -> None:
        if self.serviceAccount is not None:
            content = render_str(run.ctx, self.serviceAccount, "serviceAccount") or ""
            await asyncio.to_thread(_write_private, run.root / _KEY_FILE, content)


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)


class CloudQueryCLI(CLITask):
    """Run CloudQuery commands with the worker's cloudquery."""

    family: ClassVar[str] = "cloudquery"
    short: ClassVar[str | None] = "cloudquery_cli"
    tool: ClassVar[Tool] = CLOUDQUERY_TOOL

    type: Literal["io.kestra.plugin.cloudquery.CloudQueryCLI"]
    commands: list[Str] | Str

    def command_lines(self, run: CLIRun) -> list[str]:
        alias = []
        if Path(_CLOUDQUERY_IMAGE_PATH).is_file():
            alias = [f"alias cloudquery='{_CLOUDQUERY_IMAGE_PATH}'"]
        return [*alias, *super().command_lines(run)]


PLUGINS: list[type[TaskPlugin]] = [TerraformCLI, GCloudCLI, CloudQueryCLI]
