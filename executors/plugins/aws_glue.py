"""Kestra's Glue task ``io.kestra.plugin.aws.glue.StartJobRun`` on :mod:`executors.aws_client`.

What Kestra does (kestra-io/plugin-aws ``glue.StartJobRun``):

- Properties: the AWS connection; ``jobName`` (required), ``arguments`` (a map of text sent
  as the run's arguments when not empty), ``wait`` (true), ``maxDuration`` (sent as the run's
  ``Timeout`` in minutes, rounded up), ``interval`` (PT1S between polls).
- ``StartJobRun`` (logs "Started Glue job '<name>' with run ID: <id>"), one ``GetJobRun``
  ("Initial job state: <state>"), then with ``wait`` a ``GetJobRun`` every ``interval`` while
  the state is STARTING, RUNNING or WAITING ("Job state: <state>, Execution time: <s>
  seconds"). A final state other than SUCCEEDED (or, without ``wait``, than STARTING / RUNNING
  / WAITING) fails the task: "Job state: <state>, Error message: <message>".
- Outputs: ``jobName``, ``jobRunId``, ``state``, ``startedOn``, ``completedOn``,
  ``lastModifiedOn`` (date-times), ``executionTime``, ``timeout``, ``attempt``,
  ``errorMessage``.

Nothing differs; polling waits with the task's sleeper (a killed task stops at once).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from executors.aws_client import AwsClient, connect
from executors.base import TaskContext, TaskError
from executors.plugin import TaskPlugin, render_bool, render_map, render_seconds, render_str
from executors.plugins.aws_s3 import S3Connection
from executors.remote import common as c
from schemas.flow.common import BoolOrExpr, Duration, Str

RUNNING = frozenset({"STARTING", "RUNNING", "WAITING"})


class StartJobRun(TaskPlugin, S3Connection):
    """Start an AWS Glue job run and wait for it to end."""

    family: ClassVar[str] = "aws"

    type: Literal["io.kestra.plugin.aws.glue.StartJobRun"]
    jobName: Str
    arguments: dict[str, Any] | Str | None = None
    wait: BoolOrExpr = True
    maxDuration: Duration | None = None
    interval: Duration = "PT1S"

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        name = render_str(ctx, self.jobName, "jobName", required=True) or ""
        arguments = {
            str(k): str(v) for k, v in render_map(ctx, self.arguments, "arguments").items()
        }
        limit = render_seconds(ctx, self.maxDuration, "maxDuration")
        interval = render_seconds(ctx, self.interval, "interval", 1.0) or 1.0
        wait = render_bool(ctx, self.wait, "wait", True)
        async with connect(ctx, self, "glue", "Glue") as glue:
            started = await glue.call(
                "start_job_run",
                name,
                JobName=name,
                Arguments=arguments or None,
                Timeout=math.ceil(limit / 60) if limit is not None else None,
            )
            run_id = str(started["JobRunId"])
            ctx.log("INFO", f"Started Glue job '{name}' with run ID: {run_id}")
            job_run = await _get(glue, name, run_id)
            ctx.log("INFO", f"Initial job state: {job_run.get('JobRunState')}")
            if wait:
                ctx.log("DEBUG", "Waiting for job completion...")
                while True:
                    if not await ctx.sleep(interval):
                        raise TaskError(f"killed while Glue job run {run_id} was running")
                    job_run = await _get(glue, name, run_id)
                    state = job_run.get("JobRunState")
                    ctx.log(
                        "INFO",
                        f"Job state: {state}, Execution time: {job_run.get('ExecutionTime')} "
                        "seconds",
                    )
                    if state not in RUNNING:
                        break
        state = str(job_run.get("JobRunState"))
        if state != "SUCCEEDED" and (wait or state not in RUNNING):
            error = job_run.get("ErrorMessage")
            raise TaskError(f"Job state: {state}" + (f", Error message: {error}" if error else ""))
        return c.drop_none(
            {
                "jobName": name,
                "jobRunId": run_id,
                "state": state,
                "startedOn": c.iso(job_run.get("StartedOn")),
                "completedOn": c.iso(job_run.get("CompletedOn")),
                "lastModifiedOn": c.iso(job_run.get("LastModifiedOn")),
                "executionTime": job_run.get("ExecutionTime"),
                "timeout": job_run.get("Timeout"),
                "attempt": job_run.get("Attempt"),
                "errorMessage": job_run.get("ErrorMessage"),
            }
        )


async def _get(glue: AwsClient, name: str, run_id: str) -> dict[str, Any]:
    answer = await glue.call("get_job_run", f"{name} {run_id}", JobName=name, RunId=run_id)
    job_run: dict[str, Any] = answer.get("JobRun") or {}
    return job_run


PLUGINS: list[type[TaskPlugin]] = [StartJobRun]
