"""Kestra's ``execution.PurgeExecutions`` and ``log.PurgeLogs``: delete ended executions, their
logs and files, and log lines, in a time window.

How a purge reaches the engine is :mod:`engine.worker.purges`: the read model finds, a
``PurgeExecution`` command (executor) or a ``LogsPurged`` record (hw.logs) purges, files are
deleted from internal storage. The counts are what was found to purge: the read model shows
the deletion once the executor and the projector have applied it (milliseconds later).

``PurgeExecutions`` (aliases ``io.kestra.core.tasks.storages.Purge``,
``io.kestra.plugin.core.storage.Purge``), from Kestra 1.x: ``namespace`` (a prefix without
``flowId``: itself and its child namespaces), ``flowId`` (needs ``namespace``), ``startDate``
(executions started at or after), ``endDate`` (required: executions *ended* at or before, so a
running execution is never selected), ``states``, ``purgeExecution`` (true), ``purgeLog``
(true: every line of those executions), ``purgeMetric`` (true: Headwater keeps no metrics,
nothing to delete), ``purgeStorage`` (true: their files of internal storage), ``batchSize``
(100 executions per read). Outputs ``executionsCount``, ``taskOutputsCount`` (0: no separate
task outputs store), ``logsCount``, ``storagesCount``, ``metricsCount`` (0).

``PurgeLogs``: ``namespace`` (prefix without ``flowId``), ``flowId``, ``executionId``,
``logLevels`` (all when unset), ``startDate``, ``endDate`` (required: lines logged at or
before), ``purgeExecutionLogs`` (true), ``purgeNonExecutionLogs`` (true: Headwater stores no
log line outside an execution, so 0). Outputs ``count``, ``executionLogsCount``,
``nonExecutionLogsCount``.

Dates are ISO-8601 date-times with an offset (``2025-01-01T00:00:00Z``), as Kestra's
``ZonedDateTime.parse`` wants them; a ``[Region/City]`` suffix is accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import orjson

from executors.base import LEVELS, Purges, TaskContext, TaskError, TaskOutcome, to_text
from executors.plugin import TaskPlugin, render_bool, render_int, render_str
from schemas.flow.common import BoolOrExpr, IntOrExpr, Str

_STATES = (
    "CREATED", "QUEUED", "RUNNING", "PAUSED", "RETRYING", "RETRIED", "RESTARTED", "KILLING",
    "SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED",
)  # fmt: skip
# Every line of an execution, whenever it was logged.
_ALL_TIME = datetime(9999, 12, 31, tzinfo=UTC)


def _when(ctx: TaskContext, value: Any, name: str, *, required: bool) -> datetime | None:
    text = render_str(ctx, value, name, required=required)
    if not text:
        return None
    cleaned = text.strip().split("[", 1)[0]
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise TaskError(
            f"property '{name}': expected an ISO-8601 date-time with an offset such as "
            f"2025-01-01T00:00:00Z, got {text!r}"
        )
    return moment


def _names(ctx: TaskContext, value: Any, name: str, allowed: tuple[str, ...]) -> list[str] | None:
    if value is None:
        return None
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        try:
            rendered = orjson.loads(rendered) if rendered.strip().startswith("[") else [rendered]
        except orjson.JSONDecodeError as exc:
            raise TaskError(f"property '{name}': expected a list, got {rendered!r}") from exc
    if not isinstance(rendered, list):
        raise TaskError(f"property '{name}': expected a list, got {rendered!r}")
    names = [to_text(item).strip().upper() for item in rendered]
    for item in names:
        if item not in allowed:
            raise TaskError(f"property '{name}': {item!r} is not one of {', '.join(allowed)}")
    return names or None


class _PurgeTask(TaskPlugin):
    family: ClassVar[str] = "core"

    def service(self, ctx: TaskContext) -> Purges:
        if ctx.purges is None:
            raise TaskError(f"{self.type_name()} needs the worker's purge service, and has none")
        return ctx.purges

    @staticmethod
    def scope(ctx: TaskContext, namespace: Any, flow_id: Any) -> tuple[str | None, str | None]:
        ns = render_str(ctx, namespace, "namespace") or None
        flow = render_str(ctx, flow_id, "flowId") or None
        if flow and not ns:
            raise TaskError("property 'flowId' needs 'namespace': a flow id names no flow alone")
        return ns, flow


class PurgeExecutions(_PurgeTask):
    """Delete ended executions, with their logs and files, in a time window."""

    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.core.tasks.storages.Purge",
        "io.kestra.plugin.core.storage.Purge",
    )
    short: ClassVar[str | None] = "purge_executions"

    type: Literal["io.kestra.plugin.core.execution.PurgeExecutions"]
    namespace: Str | None = None
    flowId: Str | None = None
    startDate: Str | None = None
    endDate: Str
    states: list[Str] | Str | None = None
    purgeExecution: BoolOrExpr | None = True
    purgeLog: BoolOrExpr | None = True
    purgeMetric: BoolOrExpr | None = True
    purgeStorage: BoolOrExpr | None = True
    batchSize: IntOrExpr | None = 100

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        service = self.service(ctx)
        namespace, flow_id = self.scope(ctx, self.namespace, self.flowId)
        start = _when(ctx, self.startDate, "startDate", required=False)
        end = _when(ctx, self.endDate, "endDate", required=True)
        assert end is not None
        states = _names(ctx, self.states, "states", _STATES)
        purge_execution = render_bool(ctx, self.purgeExecution, "purgeExecution", True)
        purge_log = render_bool(ctx, self.purgeLog, "purgeLog", True)
        render_bool(ctx, self.purgeMetric, "purgeMetric", True)  # validated; nothing to purge
        purge_storage = render_bool(ctx, self.purgeStorage, "purgeStorage", True)
        batch = render_int(ctx, self.batchSize, "batchSize", 100) or 0
        if batch < 1:
            raise TaskError("property 'batchSize' must be at least 1")
        counts = {"executions": 0, "logs": 0, "storages": 0}
        after: tuple[datetime, str] | None = None
        while True:
            found = await service.find_executions(
                namespace=namespace,
                flow_id=flow_id,
                start=start,
                end=end,
                states=states,
                after=after,
                limit=batch,
            )
            if not found:
                break
            after = (found[-1].end_date, found[-1].id)
            ids = [ref.id for ref in found]
            if purge_log:
                counts["logs"] += await service.count_logs(ids)
                for ref in found:
                    await service.purge_logs(ref.id, levels=None, start=None, end=_ALL_TIME)
            if purge_storage:
                for ref in found:
                    counts["storages"] += await service.purge_storage(ref)
            if purge_execution:
                for ref in found:
                    await service.purge_execution(ref.id, ctx.task_run_id)
                counts["executions"] += len(found)
        ctx.log(
            "INFO",
            f"Purged {counts['executions']} execution(s), {counts['logs']} log line(s) and "
            f"{counts['storages']} file(s)",
        )
        return {
            "executionsCount": counts["executions"],
            "taskOutputsCount": 0,
            "logsCount": counts["logs"],
            "storagesCount": counts["storages"],
            "metricsCount": 0,
        }


class PurgeLogs(_PurgeTask):
    """Delete log lines in a time window."""

    short: ClassVar[str | None] = "purge_logs"

    type: Literal["io.kestra.plugin.core.log.PurgeLogs"]
    namespace: Str | None = None
    flowId: Str | None = None
    executionId: Str | None = None
    logLevels: list[Str] | Str | None = None
    startDate: Str | None = None
    endDate: Str
    purgeExecutionLogs: BoolOrExpr | None = True
    purgeNonExecutionLogs: BoolOrExpr | None = True

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        service = self.service(ctx)
        namespace, flow_id = self.scope(ctx, self.namespace, self.flowId)
        execution_id = render_str(ctx, self.executionId, "executionId") or None
        levels = _names(ctx, self.logLevels, "logLevels", tuple(LEVELS))
        start = _when(ctx, self.startDate, "startDate", required=False)
        end = _when(ctx, self.endDate, "endDate", required=True)
        assert end is not None
        render_bool(ctx, self.purgeNonExecutionLogs, "purgeNonExecutionLogs", True)
        count = 0
        if render_bool(ctx, self.purgeExecutionLogs, "purgeExecutionLogs", True):
            found = await service.find_logs(
                namespace=namespace,
                flow_id=flow_id,
                execution_id=execution_id,
                levels=levels,
                start=start,
                end=end,
            )
            for target, lines in found:
                await service.purge_logs(target, levels=levels, start=start, end=end)
                count += lines
        ctx.log("INFO", f"Purged {count} log line(s)")
        outputs = {"count": count, "executionLogsCount": count, "nonExecutionLogsCount": 0}
        return TaskOutcome(state="SUCCESS", outputs=outputs)


PLUGINS = [PurgeExecutions, PurgeLogs]
