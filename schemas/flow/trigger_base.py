"""The properties every trigger has, whatever its type (Kestra's ``AbstractTrigger``).

Its own module, as :mod:`schemas.flow.task_base` is for tasks: trigger plugins
(:class:`executors.polling.PollingTrigger`) import it while the Trigger union of
:mod:`schemas.flow.triggers` is being assembled from them.
"""

from __future__ import annotations

from pydantic import Field

from schemas.flow.common import BoolOrExpr, FlowModel, LogLevel, State, Str, TaskId, WorkerGroup
from schemas.flow.conditions import Condition


class TriggerBase(FlowModel):
    id: TaskId
    description: Str | None = None
    disabled: BoolOrExpr | None = None
    conditions: list[Condition] | None = Field(
        default=None, description="Kestra 1.x; Kestra 2.0 uses `when`"
    )
    when: Str | None = Field(
        default=None, description="Kestra 2.0: the trigger fires only when this renders truthy"
    )
    stopAfter: list[State] | None = Field(default=None, description="disable after these states")
    workerGroup: WorkerGroup | None = None
    logLevel: LogLevel | None = None
    minLogLevel: LogLevel | None = None
    logToFile: BoolOrExpr | None = None
