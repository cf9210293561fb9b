"""AwsCLI against a real S3 server: SeaweedFS, the ``s3`` server of deploy/local (`up s3`).

aws comes from the cached tool virtualenv (awscli 1.x: ~6 s the first time). Each test makes
its own bucket, so that runs sharing the server never meet.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from executors.plugins.aws_cli import AWS_TOOL, AwsCLI
from tests.integration.cli_support import TOOL_VENVS, run_plugin

pytestmark = [pytest.mark.s3, pytest.mark.cli_tools(AWS_TOOL)]

# The s3 server of deploy/local (deploy/local/localsvc/s3.py): loopback-only test credentials.
ENDPOINT = f"http://127.0.0.1:{os.environ.get('HEADWATER_LOCAL_S3API_PORT', '8433')}"
ACCESS_KEY = "headwater-s3"
SECRET_KEY = "headwater-s3-local-only"
CONNECTION = {
    "endpointOverride": ENDPOINT,
    "region": "us-east-1",
    "accessKeyId": ACCESS_KEY,
    "secretKeyId": SECRET_KEY,
}


def aws_binary() -> str:
    found = sorted(TOOL_VENVS.glob("venv-*/headwater-tools/aws"))
    assert found, f"awscli is not installed in {TOOL_VENVS}"
    return str(found[0])


def aws(*args: str) -> subprocess.CompletedProcess[str]:
    """The aws CLI run directly (not through the task), to check what the task did."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": ENDPOINT,
    }
    return subprocess.run(
        [aws_binary(), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def bucket() -> Iterator[str]:
    name = f"hw-cli-{uuid.uuid4().hex[:10]}"
    yield name
    aws("s3", "rb", f"s3://{name}", "--force")


def aws_cli(**props: Any) -> dict[str, Any]:
    return {"id": "aws", "type": "io.kestra.plugin.aws.cli.AwsCLI", **CONNECTION, **props}


async def test_bucket_upload_list_download_through_the_cli(tmp_path: Path, bucket: str) -> None:
    task = aws_cli(
        inputFiles={"data.csv": "id,name\n1,alpha\n"},
        commands=[
            f"aws s3 mb s3://{bucket}",
            f"aws s3 cp data.csv s3://{bucket}/in/data.csv --only-show-errors",
            f"aws s3 cp s3://{bucket}/in/data.csv copy.csv --only-show-errors",
            'echo "::{\\"outputs\\":{\\"keys\\":'
            f"$(aws s3api list-objects-v2 --bucket {bucket} --query 'length(Contents)')}}}}::\"",
        ],
        outputFiles=["copy.csv"],
        containerImage="amazon/aws-cli",
        taskRunner={"type": "io.kestra.plugin.scripts.runner.docker.Docker"},
    )
    run = await run_plugin(AwsCLI, task, tmp_path, secrets=frozenset({SECRET_KEY}))

    assert run.state == "SUCCESS", run.text()
    assert run.outcome.outputs["exitCode"] == 0
    assert run.outcome.outputs["vars"] == {"keys": 1}
    assert run.read(run.outcome.outputs["outputFiles"]["copy.csv"]) == b"id,name\n1,alpha\n"
    assert SECRET_KEY not in run.text()
    listed = aws("s3", "ls", f"s3://{bucket}/in/")
    assert listed.returncode == 0, listed.stderr
    assert "data.csv" in listed.stdout


async def test_output_format_warning_on_stderr_and_a_refused_request(
    tmp_path: Path, bucket: str
) -> None:
    assert aws("s3", "mb", f"s3://{bucket}").returncode == 0
    query = f"Buckets[?Name=='{bucket}'].Name"
    task = aws_cli(outputFormat="TEXT", commands=[f'aws s3api list-buckets --query "{query}"'])
    run = await run_plugin(AwsCLI, task, tmp_path)
    assert run.state == "SUCCESS", run.text()
    assert f"INFO {bucket}" in run.text("INFO").splitlines()
    # The default, JSON: the same answer as a JSON list.
    run = await run_plugin(AwsCLI, {**task, "outputFormat": "JSON"}, tmp_path)
    infos = [x.message for x in run.lines if x.level == "INFO"]
    assert orjson.loads("\n".join(infos)) == [bucket]

    # Kestra's AwsCLI: any stderr line makes the task WARNING.
    task = aws_cli(commands=["echo 'careful' >&2"])
    run = await run_plugin(AwsCLI, task, tmp_path)
    assert run.state == "WARNING"
    assert "careful" in run.text("ERROR")

    wrong = aws_cli(secretKeyId="not-the-secret", commands=[f"aws s3 ls s3://{bucket}"])
    run = await run_plugin(AwsCLI, wrong, tmp_path)
    assert run.state == "FAILED"
    assert run.outcome.error == "Command failed with exit code 255"
    assert "SignatureDoesNotMatch" in run.text("ERROR")

    bad = aws_cli(outputFormat="XML", commands=["aws s3 ls"])
    run = await run_plugin(AwsCLI, bad, tmp_path)
    assert run.state == "FAILED"
    assert run.outcome.error == (
        "property 'outputFormat': 'XML' is not one of JSON, TEXT, TABLE, YAML"
    )


async def test_sts_properties_are_configured_for_the_run_only(tmp_path: Path) -> None:
    home_config = Path.home() / ".aws" / "config"
    before = home_config.read_bytes() if home_config.exists() else None
    role = "arn:aws:iam::123456789012:role/headwater-test"
    task = aws_cli(
        stsRoleArn=role,
        stsRoleSessionDuration="PT20M",
        stsCredentialSource="ENVIRONMENT",
        commands=["aws configure get role_arn", 'cat "$AWS_CONFIG_FILE"'],
    )
    run = await run_plugin(AwsCLI, task, tmp_path)
    assert run.state == "SUCCESS", run.text()
    info = [x.message for x in run.lines if x.level == "INFO"]
    assert info == [
        role,
        "[default]",
        f"role_arn = {role}",
        "duration_seconds = 1200",
        "credential_source = Environment",
    ]
    after = home_config.read_bytes() if home_config.exists() else None
    assert after == before  # the worker's own configuration is untouched
    assert orjson.dumps(run.outcome.outputs["vars"]) == b"{}"
