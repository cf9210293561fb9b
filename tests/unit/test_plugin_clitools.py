"""CLI plugins without running a tool: dbt's log lines and results, the commands each type
builds, flows as users write them (Kestra's examples) validating, clear validation errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.flows import load_flow
from engine.flows.loader import FlowValidationError
from engine.reducer.model import Job
from engine.stores.secrets import EnvBackend, SecretStore
from engine.worker.run import JobRun, RunDeps
from executors.base import SECRET_MASK, TaskContext
from executors.clitools import CLIRun, CLITask, line_context
from executors.dbt_artifacts import parse_log_line, parse_run_results
from executors.plugins import dbt as dbt_plugin
from executors.plugins.aws_cli import AwsCLI
from schemas.plugins import plugins
from schemas.types import canonical_type

# -------------------------------------------------------------------------- dbt log lines


def test_a_dbt_json_record_becomes_kestras_log_line() -> None:
    record = {
        "data": {"stats": {"error": 0, "pass": 3, "skip": 1, "total": 4, "warn": 0}},
        "info": {
            "category": "",
            "code": "Z023",
            "extra": {},
            "invocation_id": "x",
            "level": "info",
            "msg": "Done. PASS=3",
            "name": "StatsLine",
            "pid": 1,
            "thread": "MainThread",
            "ts": "2024-01-01T00:00:00Z",
            "node_info": "n1",
        },
    }
    line = parse_log_line(orjson.dumps(record).decode())
    assert line.level == "INFO"
    assert line.message == (
        "[Date: 2024-01-01T00:00:00Z] [Thread: MainThread] [Type: StatsLine] Done. PASS=3 "
        "{node_info=n1}"
    )
    assert line.stats == {"error": 0, "pass": 3, "skip": 1, "total": 4, "warn": 0}
    assert not line.warning


@pytest.mark.parametrize(
    ("level", "expected", "warning"),
    [("debug", "DEBUG", False), ("warn", "WARN", True), ("error", "ERROR", False),
     ("fatal", "ERROR", False)],
)  # fmt: skip
def test_dbt_levels(level: str, expected: str, warning: bool) -> None:
    line = parse_log_line(orjson.dumps({"info": {"level": level, "msg": "m"}}).decode())
    assert (line.level, line.warning) == (expected, warning)


def test_older_dbt_records_and_plain_lines() -> None:
    old = {"level": "info", "ts": "t", "thread_name": "main", "type": "log_line", "msg": "hi"}
    line = parse_log_line(orjson.dumps(old).decode())
    assert line.message == "[Date: t] [Thread: main] [Type: log_line] hi"
    plain = parse_log_line("  Usage: dbt build [OPTIONS]  ")
    assert (plain.level, plain.message) == ("INFO", "Usage: dbt build [OPTIONS]")
    assert parse_log_line("[1, 2]").message == "[1, 2]"


# -------------------------------------------------------------------------- run_results


def test_run_results_nodes_metrics_and_log_lines() -> None:
    results = {
        "results": [
            {
                "status": "fail",
                "unique_id": "test.shop.unique_id.abc",
                "execution_time": 0.123,
                "failures": 2,
                "message": "Got 2 results, configured to fail if != 0",
                "timing": [
                    {"name": "compile", "started_at": "2024-01-01T00:00:01Z",
                     "completed_at": "2024-01-01T00:00:02Z"},
                    {"name": "execute", "started_at": "2024-01-01T00:00:02Z",
                     "completed_at": "2024-01-01T00:00:05Z"},
                ],
                "adapter_response": {"rows_affected": 5, "bytes_processed": "100"},
            },
            {"status": "no-op", "unique_id": "model.x", "timing": [], "adapter_response": {}},
            {"status": "warn", "unique_id": "test.w", "failures": 1, "adapter_response": None},
        ]
    }  # fmt: skip
    metrics: dict[str, float] = {}

    def add(name: str, value: float) -> None:
        metrics[name] = metrics.get(name, 0) + value

    nodes = parse_run_results(orjson.dumps(results), add)
    assert [(n.unique_id, n.state) for n in nodes] == [
        ("test.shop.unique_id.abc", "FAILED"),
        ("model.x", "SUCCESS"),
        ("test.w", "WARNING"),
    ]
    assert nodes[0].started == "2024-01-01T00:00:01Z"
    assert nodes[0].ended == "2024-01-01T00:00:05Z"
    assert metrics == {"rows.affected": 5, "bytes.processed": 100}
    assert nodes[0].log_lines() == [
        ("ERROR", "test.shop.unique_id.abc => fail in 0.12s (2 failures)"),
        ("ERROR", "Got 2 results, configured to fail if != 0"),
    ]
    assert nodes[1].log_lines() == [("INFO", "model.x => no-op")]
    assert nodes[2].log_lines() == [("WARN", "test.w => warn (1 failure)")]


def test_malformed_run_results() -> None:
    with pytest.raises(ValueError, match="no 'results' list"):
        parse_run_results(b"{}", lambda n, v: None)
    body = {"results": [{"status": "success", "adapter_response": {"rows_affected": "many"}}]}
    with pytest.raises(ValueError, match="rows_affected 'many' is not a number"):
        parse_run_results(orjson.dumps(body), lambda n, v: None)


# ------------------------------------------------------------------- the commands built


def cli_run(tmp_path: Path) -> CLIRun:
    ctx = TaskContext(execution_id="e", task_run_id="r", attempt=1, variables={"x": "sel"})
    extra = {"workingDir": str(tmp_path), "outputDir": str(tmp_path / "out")}
    return CLIRun(ctx, tmp_path, tmp_path / "out", lambda v: ctx.render(v, extra), env={})


def model(cls: type[CLITask], **props: Any) -> Any:
    return cls.model_validate({"id": "t", "type": cls.type_name(), **props})


def test_dbt_cli_adds_project_dir_log_format_and_log_path(tmp_path: Path) -> None:
    task = model(
        dbt_plugin.DbtCLI,
        projectDir="dbt",
        beforeCommands=["pip --version"],
        commands=["dbt deps", "echo dbt-free", "dbt build --log-format text --project-dir other"],
    )
    assert task.script(cli_run(tmp_path)).splitlines() == [
        "set -e",
        "pip --version",
        "dbt deps --project-dir dbt --log-format json --log-path logs",
        "echo dbt-free",
        "dbt build --log-format text --project-dir other --log-path logs",
    ]
    plain = model(dbt_plugin.DbtCLI, commands=["dbt run"], logFormat="NONE", failFast=False)
    assert plain.script(cli_run(tmp_path)) == "dbt run --log-path logs"


def test_a_deprecated_dbt_task_builds_kestras_command(tmp_path: Path) -> None:
    task = model(
        dbt_plugin.Build,
        dbtPath="dbt",
        debug=True,
        failFast=True,
        warnError=True,
        thread=4,
        fullRefresh=True,
        target="prod",
        selector="nightly",
        select=["a", "{{ x }}"],
        exclude=["c"],
        projectDir="proj",
    )
    assert task.script(cli_run(tmp_path)) == (
        f"dbt --log-format json --debug --fail-fast --warn-error build --profiles-dir "
        f"{tmp_path}/.profile --threads 4 --full-refresh --target prod --selector nightly "
        f"--select a sel --exclude c --project-dir {tmp_path}/proj"
    )


def test_aws_cli_configures_sts_before_the_commands(tmp_path: Path) -> None:
    task = model(
        AwsCLI,
        commands=["aws s3 ls"],
        stsRoleArn="arn:aws:iam::1:role/r",
        stsRoleExternalId="ext id",
        stsCredentialSource="ECS_CONTAINER",
    )
    assert task.script(cli_run(tmp_path)).splitlines() == [
        "set -e",
        "aws configure set role_arn arn:aws:iam::1:role/r",
        "aws configure set external_id 'ext id'",
        "aws configure set duration_seconds 900",
        "aws configure set credential_source EcsContainer",
        "aws s3 ls",
    ]
    assert model(AwsCLI, commands="aws s3 ls").script(cli_run(tmp_path)) == "set -e\naws s3 ls"


# ------------------------------------------------------------------------- the flows

FLOW = """
id: dbt_defer
namespace: company.team
tasks:
  - id: dbt
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: clone_repository
        type: io.kestra.plugin.git.Clone
        url: https://github.com/kestra-io/dbt-example
        branch: master
      - id: dbt_build
        type: io.kestra.plugin.dbt.cli.DbtCLI
        taskRunner:
          type: io.kestra.plugin.scripts.runner.docker.Docker
          delete: true
        containerImage: ghcr.io/kestra-io/dbt-duckdb:latest
        loadManifest:
          key: manifest.json
          namespace: "{{ flow.namespace }}"
        storeManifest:
          key: manifest.json
          namespace: "{{ flow.namespace }}"
        projectDir: dbt
        namespaceFiles:
          enabled: true
          exclude: [profiles.yml]
        commands:
          - dbt build --target prod
        profiles: |
          my_dbt_project:
            outputs:
              prod:
                type: duckdb
                path: dbt2.duckdb
            target: prod
      - id: legacy
        type: io.kestra.plugin.dbt.cli.Build
        dbtPath: /usr/local/bin/dbt
        select: [model_a]
      - id: setup
        type: io.kestra.plugin.dbt.cli.Setup
        requirements: [dbt-duckdb]
        profiles:
          jaffle_shop:
            target: dev
  - id: ansible
    type: io.kestra.plugin.ansible.cli.AnsibleCLI
    inputFiles:
      inventory.ini: "localhost ansible_connection=local"
    containerImage: cytopia/ansible:latest-tools
    outputsMode: EXPLICIT
    commands:
      - ansible-playbook -i inventory.ini playbook.yml
  - id: aws
    type: io.kestra.plugin.aws.cli.AwsCLI
    accessKeyId: "{{ secret('AWS_ACCESS_KEY_ID') }}"
    region: eu-west-1
    commands: [aws s3 ls]
  - id: tf
    type: io.kestra.plugin.terraform.cli.TerraformCLI
    beforeCommands: [terraform init]
    commands: [terraform plan]
    env:
      TF_VAR_x: "1"
  - id: gcloud
    type: io.kestra.plugin.gcp.cli.GCloudCLI
    projectId: demo
    serviceAccount: "{{ secret('GCP_KEY') }}"
    commands: [gcloud storage ls]
  - id: cq
    type: io.kestra.plugin.cloudquery.CloudQueryCLI
    commands: [cloudquery sync config.yml]
"""


def test_kestras_examples_validate() -> None:
    flow = load_flow(FLOW)
    assert [t.id for t in flow.tasks] == ["dbt", "ansible", "aws", "tf", "gcloud", "cq"]


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("type: io.kestra.plugin.dbt.cli.DbtCLI\n    profiles: x", "commands"),
        ("type: io.kestra.plugin.terraform.cli.TerraformCLI\n    commands: [x]\n    image: y",
         "image"),
        ("type: io.kestra.plugin.dbt.cli.DbtCLI\n    commands: [x]\n    loadManifest: {key: k}",
         "namespace"),
        ("type: io.kestra.plugin.aws.cli.AwsCLI\n    commands: [x]\n    outputFormat: [3]",
         "outputFormat"),
    ],
)  # fmt: skip
def test_mistakes_are_named(task: str, expected: str) -> None:
    text = f"id: f\nnamespace: n\ntasks:\n  - id: t\n    {task}\n"
    with pytest.raises(FlowValidationError) as info:
        load_flow(text)
    assert expected in str(info.value)


def test_the_types_are_listed_with_their_families() -> None:
    found = {info.type: info.cls.family for info in plugins()}
    expected = {
        "io.kestra.plugin.dbt.cli.DbtCLI": "dbt",
        "io.kestra.plugin.dbt.cli.Build": "dbt",
        "io.kestra.plugin.dbt.cli.Setup": "dbt",
        "io.kestra.plugin.dbt.cli.Freshness": "dbt",
        "io.kestra.plugin.ansible.cli.AnsibleCLI": "ansible",
        "io.kestra.plugin.aws.cli.AwsCLI": "aws",
        "io.kestra.plugin.terraform.cli.TerraformCLI": "terraform",
        "io.kestra.plugin.gcp.cli.GCloudCLI": "gcp",
        "io.kestra.plugin.cloudquery.CloudQueryCLI": "cloudquery",
    }
    assert {name: found.get(name) for name in expected} == expected
    assert canonical_type("dbt_cli") == "io.kestra.plugin.dbt.cli.DbtCLI"
    assert canonical_type("terraform_cli") == "io.kestra.plugin.terraform.cli.TerraformCLI"


# --------------------------------------------------------------- the worker's venv cache


class _Shipper:
    def add(self, line: Any) -> None:
        pass


def test_a_worker_gives_its_tasks_its_venv_cache(tmp_path: Path) -> None:
    job = Job(
        execution_id="e1",
        task_run_id="tr1",
        attempt=1,
        task={"id": "t", "type": "io.kestra.plugin.dbt.cli.DbtCLI", "commands": ["dbt build"]},
        context={"flow": {"namespace": "n", "id": "f"}},
    )
    deps = RunDeps(
        registry=None,  # type: ignore[arg-type]
        producer=None,  # type: ignore[arg-type]
        commands_topic="commands",
        shipper=_Shipper(),  # type: ignore[arg-type]
        storage=None,
        secrets=SecretStore([EnvBackend({})]),
        worker_id="w",
        heartbeat_interval_s=1.0,
        output_limit_bytes=1000,
        work_dir=tmp_path,
        venv_dir=tmp_path / "venvs",
    )
    assert JobRun(job, deps).ctx.venv_dir == str(tmp_path / "venvs")


def test_output_lines_are_masked_with_secrets_learned_after_the_process_started() -> None:
    ctx = TaskContext(execution_id="e", task_run_id="r", attempt=1, variables={})
    lines = line_context(ctx, watch_names=("terraform",))
    ctx.secrets = ctx.secrets | {"s3cr3t"}  # e.g. a secret() in the commands, rendered later
    lines.log("INFO", "token s3cr3t")
    lines.log("ERROR", "sh: 1: terraform: not found")
    assert [(x.level, x.message) for x in ctx.logs] == [
        ("INFO", f"token {SECRET_MASK}"),
        ("ERROR", "sh: 1: terraform: not found"),
    ]
    assert lines.not_found == {"terraform"}
    assert lines.stderr_lines == 1


@pytest.mark.parametrize(
    ("cls", "command"),
    [
        (dbt_plugin.Build, "build"),
        (dbt_plugin.Run, "run"),
        (dbt_plugin.Test, "test"),
        (dbt_plugin.Compile, "compile"),
        (dbt_plugin.Seed, "seed"),
        (dbt_plugin.Snapshot, "snapshot"),
        (dbt_plugin.Deps, "deps"),
        (dbt_plugin.Freshness, "source freshness"),
        (dbt_plugin.List, "list"),
    ],
)
def test_each_deprecated_dbt_type_runs_its_command(
    tmp_path: Path, cls: type[CLITask], command: str
) -> None:
    script = model(cls).script(cli_run(tmp_path))
    # dbtPath ./bin/dbt does not exist here: the worker's dbt.
    assert script == (
        f"dbt --log-format json {command} --profiles-dir {tmp_path}/.profile "
        f"--project-dir {tmp_path}"
    )
    assert cls.parses_results is (command not in ("deps", "source freshness", "list"))  # type: ignore[attr-defined]
