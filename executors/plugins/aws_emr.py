"""Kestra's ``io.kestra.plugin.aws.emr.StartServerlessJobRun`` on :mod:`executors.aws_client`.

What Kestra does (kestra-io/plugin-aws ``emr.StartServerlessJobRun``): properties the AWS
connection, ``applicationId``, ``executionRoleArn``, ``jobName``, ``entryPoint`` (all
required); one EMR Serverless ``StartJobRun`` with the job driver ``sparkSubmit.entryPoint``;
logs "Started EMR Serverless job: <id>"; output ``jobRunId``. It does not wait for the run. Any
failure fails the task with "Failed to start EMR Serverless job" (and, here, the server's
answer).

The other EMR types (clusters, steps, serverless applications) are not ported.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from executors.aws_client import connect
from executors.base import TaskContext, TaskError
from executors.plugin import TaskPlugin, render_str
from executors.plugins.aws_s3 import S3Connection
from schemas.flow.common import Str


class StartServerlessJobRun(TaskPlugin, S3Connection):
    """Start a Spark job run on an EMR Serverless application."""

    family: ClassVar[str] = "aws"

    type: Literal["io.kestra.plugin.aws.emr.StartServerlessJobRun"]
    applicationId: Str
    executionRoleArn: Str
    jobName: Str
    entryPoint: Str

    async def run(self, ctx: TaskContext) -> dict[str, str]:
        application = render_str(ctx, self.applicationId, "applicationId", required=True)
        role = render_str(ctx, self.executionRoleArn, "executionRoleArn", required=True)
        name = render_str(ctx, self.jobName, "jobName", required=True)
        entry = render_str(ctx, self.entryPoint, "entryPoint", required=True)
        try:
            async with connect(ctx, self, "emr-serverless", "EMR Serverless") as emr:
                answer = await emr.call(
                    "start_job_run",
                    f"{name} on {application}",
                    applicationId=application,
                    executionRoleArn=role,
                    name=name,
                    jobDriver={"sparkSubmit": {"entryPoint": entry}},
                )
        except TaskError as exc:
            raise TaskError(f"Failed to start EMR Serverless job: {exc}") from exc
        run_id = str(answer["jobRunId"])
        ctx.log("INFO", f"Started EMR Serverless job: {run_id}")
        return {"jobRunId": run_id}


PLUGINS: list[type[TaskPlugin]] = [StartServerlessJobRun]
