"""glue.StartJobRun against the moto server of deploy/local (`up moto`): moto keeps the run's
arguments and timeout and moves it STARTING -> RUNNING -> SUCCEEDED as it is read; it runs no
ETL script, and cannot make a run fail, so a failed run's message is untested."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.aws_support import aws, moto_api, run
from tests.remote_support import unique

pytestmark = pytest.mark.moto

START = "io.kestra.plugin.aws.glue.StartJobRun"


async def test_start_job_run_waits_through_the_states(tmp_path: Path) -> None:
    job = unique("etl")
    async with aws("glue") as glue:
        await glue.create_job(
            Name=job, Role="arn:aws:iam::123456789012:role/glue",
            Command={"Name": "glueetl", "ScriptLocation": "s3://scripts/etl.py"},
        )  # fmt: skip
    transition = {"progression": "manual", "times": 2}
    moto_api("/moto-api/state-manager/set-transition",
             {"model_name": "glue::job_run", "transition": transition})  # fmt: skip
    try:
        outcome, ctx = await run(
            START,
            {"jobName": job, "arguments": {"--day": "2024-01-31", "--n": 3},
             "maxDuration": "PT60M30S", "interval": "PT0.1S"},
            tmp_path,
        )  # fmt: skip
    finally:
        moto_api("/moto-api/state-manager/unset-transition", {"model_name": "glue::job_run"})
    assert outcome.state == "SUCCESS", outcome.error
    out = outcome.outputs
    assert out["jobName"] == job
    assert out["state"] == "SUCCEEDED"
    assert out["jobRunId"].startswith("jr_")
    assert out["timeout"] == 61  # PT60M30S in minutes, rounded up
    assert out["startedOn"].endswith("Z")
    messages = [line.message for line in ctx.logs]
    assert "Initial job state: STARTING" in messages
    assert any(m.startswith("Job state: RUNNING") for m in messages)
    async with aws("glue") as glue:
        stored = await glue.get_job_run(JobName=job, RunId=out["jobRunId"])
    assert stored["JobRun"]["Arguments"] == {"--day": "2024-01-31", "--n": "3"}

    no_wait, _ = await run(START, {"jobName": job, "wait": False}, tmp_path)
    assert no_wait.state == "SUCCESS", no_wait.error
    missing, _ = await run(START, {"jobName": job + "-absent"}, tmp_path)
    assert missing.state == "FAILED"
    assert (missing.error or "").startswith(f"Glue StartJobRun {job}-absent failed: ")
    assert "EntityNotFoundException" in (missing.error or "")
