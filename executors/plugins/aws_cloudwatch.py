"""Kestra's ``io.kestra.plugin.aws.cloudwatch.Query`` on :mod:`executors.aws_client`.

What Kestra does (kestra-io/plugin-aws ``cloudwatch.Query``): properties the AWS connection,
``namespace``, ``metricName`` (required), ``dimensions`` (a list of ``{name, value}``),
``statistic`` (Average), ``periodSeconds`` (60), ``window`` (PT5M: the period ending now).
One ``GetMetricStatistics`` call; the datapoints sorted by time, each a map of the datapoint's
fields with AWS's names (``Timestamp`` as ISO-8601 text, ``Average``, ``Sum``, ``SampleCount``,
``Minimum``, ``Maximum``, ``Unit``...). Logs "Fetched <n> datapoints for <namespace>:<metric>".
Outputs ``count`` and ``series``.

Nothing differs. The other CloudWatch types (Push, Trigger, logs) are not ported.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from executors.aws_client import connect
from executors.base import TaskContext, TaskError
from executors.plugin import TaskPlugin, render_int, render_seconds, render_str
from executors.plugins.aws_s3 import S3Connection
from schemas.flow.common import Duration, FlowModel, IntOrExpr, Str


def instant(moment: datetime) -> str:
    """``Instant.toString``: UTC, the fraction only when there is one (3 or 6 digits)."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        micros = f"{utc.microsecond:06d}"
        text += "." + (micros[:3] if micros.endswith("000") else micros)
    return text + "Z"


class Dimension(FlowModel):
    name: Str
    value: Str


class Query(TaskPlugin, S3Connection):
    """Read the statistics of one CloudWatch metric over a recent window."""

    family: ClassVar[str] = "aws"
    short: ClassVar[str | None] = "cloudwatch_query"

    type: Literal["io.kestra.plugin.aws.cloudwatch.Query"]
    namespace: Str | None = None
    metricName: Str
    dimensions: list[Dimension] | None = None
    statistic: Str = "Average"
    periodSeconds: IntOrExpr = 60
    window: Duration = "PT5M"

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        namespace = render_str(ctx, self.namespace, "namespace") or None
        metric = render_str(ctx, self.metricName, "metricName", required=True)
        statistic = render_str(ctx, self.statistic, "statistic") or "Average"
        period = render_int(ctx, self.periodSeconds, "periodSeconds", 60)
        window = render_seconds(ctx, self.window, "window", 300.0) or 300.0
        dimensions = [
            {
                "Name": render_str(ctx, d.name, "dimensions.name", required=True),
                "Value": render_str(ctx, d.value, "dimensions.value", required=True),
            }
            for d in self.dimensions or []
        ]
        end = ctx.clock()
        start = end - timedelta(seconds=int(window))
        async with connect(ctx, self, "cloudwatch", "CloudWatch") as cloudwatch:
            try:
                answer = await cloudwatch.call(
                    "get_metric_statistics",
                    f"{namespace}:{metric}",
                    Namespace=namespace,
                    MetricName=metric,
                    Dimensions=dimensions or None,
                    StartTime=start,
                    EndTime=end,
                    Period=period,
                    Statistics=[statistic],
                )
            except TaskError as exc:
                if "Statistics" in str(exc) and "valid" in str(exc).lower():
                    raise TaskError(f"property 'statistic': {exc}") from exc
                raise
        points = sorted(answer.get("Datapoints") or [], key=lambda p: p.get("Timestamp"))
        series = [
            {k: instant(v) if isinstance(v, datetime) else v for k, v in point.items()}
            for point in points
        ]
        ctx.log("INFO", f"Fetched {len(series)} datapoints for {namespace}:{metric}")
        return {"count": len(series), "series": series}


PLUGINS: list[type[TaskPlugin]] = [Query]
