"""Runnable core tasks: each becomes one job that a worker (or the executor, for trivial
ones) runs to completion."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from schemas.flow.common import (
    BoolOrExpr,
    Duration,
    Labels,
    LogLevel,
    Str,
    enum_check,
    enum_schema,
)
from schemas.flow.task_base import TaskBase

# CANCELED is the Kestra 1.x spelling; 2.0 writes CANCELLED, the state's own name.
_EXIT_STATES = ("SUCCESS", "WARNING", "KILLED", "FAILED", "CANCELED", "CANCELLED")
ExitState = Annotated[str, enum_check(*_EXIT_STATES), enum_schema(*_EXIT_STATES)]


class SleepTask(TaskBase):
    """Wait for a duration."""

    type: Literal["io.kestra.plugin.core.flow.Sleep"]
    duration: Duration


class LogTask(TaskBase):
    """Write one message (or several) to the execution's logs."""

    type: Literal["io.kestra.plugin.core.log.Log"]
    message: Str | list[Str]
    level: LogLevel | None = None


class FetchLogsTask(TaskBase):
    """Collect the logs of an execution into a file output."""

    type: Literal["io.kestra.plugin.core.log.Fetch"]
    executionId: Str | None = None
    namespace: Str | None = None
    flowId: Str | None = None
    tasksId: list[Str] | None = None
    level: LogLevel | None = None


class ReturnTask(TaskBase):
    """Render ``format`` and expose it as the output ``value``."""

    type: Literal["io.kestra.plugin.core.debug.Return"]
    format: Str | None = None


class EchoTask(TaskBase):
    """Deprecated: log the rendered ``format``."""

    type: Literal["io.kestra.plugin.core.debug.Echo"]
    format: Str
    level: LogLevel | None = None


class OutputValuesTask(TaskBase):
    """Expose the rendered ``values`` as outputs."""

    type: Literal["io.kestra.plugin.core.output.OutputValues"]
    values: dict[str, Any] | None = None


class FailTask(TaskBase):
    """Fail, or fail only when ``condition`` renders true."""

    type: Literal["io.kestra.plugin.core.execution.Fail"]
    condition: Str | None = None
    errorMessage: Str | None = None


class LabelsTask(TaskBase):
    """Add labels to the running execution."""

    type: Literal["io.kestra.plugin.core.execution.Labels"]
    labels: Labels | Str


class ExitTask(TaskBase):
    """End the execution now in the given state."""

    type: Literal["io.kestra.plugin.core.execution.Exit"]
    state: ExitState | None = None
    exitMessage: Str | None = Field(default=None, description="accepted, not used (older Kestra)")


class SetVariablesTask(TaskBase):
    """Merge variables into the execution's ``vars``."""

    type: Literal["io.kestra.plugin.core.execution.SetVariables"]
    variables: dict[str, Any] | Str
    overwrite: BoolOrExpr | None = None


class UnsetVariablesTask(TaskBase):
    """Remove variables from the execution's ``vars`` (dotted keys reach nested maps)."""

    type: Literal["io.kestra.plugin.core.execution.UnsetVariables"]
    variables: list[Str] | Str
    ignoreMissing: BoolOrExpr | None = None


class KvSetTask(TaskBase):
    """Store a value in the namespace's key-value store."""

    type: Literal["io.kestra.plugin.core.kv.Set"]
    key: Str
    value: Any
    namespace: Str | None = None
    overwrite: BoolOrExpr | None = None
    ttl: Duration | None = None
    kvType: (
        Literal["STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON"] | None
    ) = None
    kvDescription: Str | None = None


class KvGetTask(TaskBase):
    """Read a value from the namespace's key-value store."""

    type: Literal["io.kestra.plugin.core.kv.Get"]
    key: Str
    namespace: Str | None = None
    errorOnMissing: BoolOrExpr | None = None


class KvDeleteTask(TaskBase):
    """Delete a key from the namespace's key-value store."""

    type: Literal["io.kestra.plugin.core.kv.Delete"]
    key: Str
    namespace: Str | None = None
    errorOnMissing: BoolOrExpr | None = None


class ToggleTask(TaskBase):
    """Enable or disable a trigger of a flow."""

    type: Literal["io.kestra.plugin.core.trigger.Toggle"]
    trigger: Str
    enabled: BoolOrExpr | None = None
    namespace: Str | None = None
    flowId: Str | None = None


class HttpRequestTask(TaskBase):
    """Send an HTTP request and expose the response."""

    type: Literal["io.kestra.plugin.core.http.Request"]
    uri: Str
    method: Str | None = None
    body: Any = None
    formData: dict[str, Any] | None = None
    contentType: Str | None = None
    headers: dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    sslOptions: dict[str, Any] | None = None
    encryptBody: BoolOrExpr | None = None
    failOnEmptyResponse: BoolOrExpr | None = None
    allowFailed: BoolOrExpr | None = Field(default=None, description="accept 4xx/5xx answers")


RUNNABLE_MODELS: tuple[type[TaskBase], ...] = (
    SleepTask,
    LogTask,
    FetchLogsTask,
    ReturnTask,
    EchoTask,
    OutputValuesTask,
    FailTask,
    LabelsTask,
    ExitTask,
    SetVariablesTask,
    UnsetVariablesTask,
    KvSetTask,
    KvGetTask,
    KvDeleteTask,
    ToggleTask,
    HttpRequestTask,
)
