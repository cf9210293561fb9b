"""emr.StartServerlessJobRun and cloudwatch.Query against the moto server of deploy/local
(`up moto`): moto keeps the job run as submitted (it runs no Spark) and serves the statistics
of the metric data put into it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from executors.plugins.aws_cloudwatch import instant
from tests.integration.aws_support import aws, run
from tests.remote_support import unique

pytestmark = pytest.mark.moto


async def test_start_serverless_job_run_submits_the_spark_entry_point(tmp_path: Path) -> None:
    async with aws("emr-serverless") as emr:
        app = await emr.create_application(name=unique("app"), releaseLabel="emr-6.6.0",
                                           type="SPARK")  # fmt: skip
    role = "arn:aws:iam::123456789012:role/emr"
    outcome, ctx = await run(
        "io.kestra.plugin.aws.emr.StartServerlessJobRun",
        {"applicationId": app["applicationId"], "executionRoleArn": role,
         "jobName": "spark-pi", "entryPoint": "s3://scripts/pi.py"},
        tmp_path,
    )  # fmt: skip
    assert outcome.state == "SUCCESS", outcome.error
    run_id = outcome.outputs["jobRunId"]
    assert f"Started EMR Serverless job: {run_id}" in [line.message for line in ctx.logs]
    async with aws("emr-serverless") as emr:
        got = (await emr.get_job_run(applicationId=app["applicationId"], jobRunId=run_id))["jobRun"]
    assert got["name"] == "spark-pi"
    assert got["executionRole"] == role
    assert got["jobDriver"] == {"sparkSubmit": {"entryPoint": "s3://scripts/pi.py"}}
    absent, _ = await run(
        "io.kestra.plugin.aws.emr.StartServerlessJobRun",
        {"applicationId": "00absent", "executionRoleArn": role, "jobName": "x",
         "entryPoint": "s3://x.py"},
        tmp_path,
    )  # fmt: skip
    assert absent.state == "FAILED"
    assert (absent.error or "").startswith("Failed to start EMR Serverless job: ")
    assert "ResourceNotFoundException" in (absent.error or "")


async def test_cloudwatch_query_returns_the_sorted_series(tmp_path: Path) -> None:
    namespace = unique("App")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    async with aws("cloudwatch") as cloudwatch:
        await cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {"MetricName": "Latency", "Dimensions": [{"Name": "Env", "Value": "prod"}],
                 "Timestamp": now, "Value": v, "Unit": "Milliseconds"}
                for v in (10.0, 30.0)
            ],
        )  # fmt: skip
    outcome, ctx = await run(
        "io.kestra.plugin.aws.cloudwatch.Query",
        {"namespace": namespace, "metricName": "Latency", "statistic": "Sum",
         "dimensions": [{"name": "Env", "value": "prod"}], "window": "PT10M"},
        tmp_path,
    )  # fmt: skip
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["count"] == 1
    point = outcome.outputs["series"][0]
    assert point["Sum"] == 40.0
    assert point["Unit"] == "Milliseconds"
    assert point["Timestamp"] == instant(now)
    assert f"Fetched 1 datapoints for {namespace}:Latency" in [line.message for line in ctx.logs]
    other, _ = await run(
        "io.kestra.plugin.aws.cloudwatch.Query",
        {"namespace": namespace, "metricName": "Latency",
         "dimensions": [{"name": "Env", "value": "dev"}]},
        tmp_path,
    )  # fmt: skip
    assert other.outputs == {"count": 0, "series": []}


def test_instants_print_as_java_does() -> None:
    assert instant(datetime(2024, 1, 31, 10, 0, tzinfo=UTC)) == "2024-01-31T10:00:00Z"
    assert instant(datetime(2024, 1, 31, 10, 0, 0, 120000, tzinfo=UTC)) == (
        "2024-01-31T10:00:00.120Z"
    )
