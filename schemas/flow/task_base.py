"""The properties every task has, whatever its type."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from schemas.flow.common import (
    BoolOrExpr,
    Duration,
    FlowModel,
    LogLevel,
    Str,
    TaskId,
    WorkerGroup,
)
from schemas.flow.retry import Retry


class TaskBase(FlowModel):
    """Common task properties; each task model adds a ``type`` literal and its own properties."""

    id: TaskId
    description: Str | None = None
    retry: Retry | None = None
    timeout: Duration | None = Field(default=None, description="fail the task after this long")
    disabled: BoolOrExpr | None = None
    allowFailure: BoolOrExpr | None = Field(
        default=None, description="a failure of this task does not fail the execution"
    )
    allowWarning: BoolOrExpr | None = Field(
        default=None, description="a WARNING of this task counts as SUCCESS"
    )
    runIf: Str | None = Field(
        default=None, description="skip the task unless this renders true (Kestra 2.0: `when`)"
    )
    when: Str | None = Field(
        default=None, description="Kestra 2.0: skip the task (SKIPPED) unless this renders true"
    )
    workerGroup: WorkerGroup | None = None
    logLevel: LogLevel | None = None
    logToFile: BoolOrExpr | None = None
    # Kestra 0.20+: per-task cache of outputs.
    taskCache: dict[str, Any] | None = None
