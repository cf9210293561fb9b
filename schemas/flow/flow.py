"""The flow: the top level of a Kestra-format flow YAML."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from schemas.flow.common import (
    BoolOrExpr,
    Duration,
    FlowId,
    FlowModel,
    IntOrExpr,
    Labels,
    Namespace,
    Str,
    WorkerGroup,
)
from schemas.flow.conditions import Condition
from schemas.flow.inputs import Input, Output
from schemas.flow.retry import Retry
from schemas.flow.tasks import Task
from schemas.flow.triggers import Trigger


class Concurrency(FlowModel):
    """At most ``limit`` running executions of this flow; what to do with the next one."""

    limit: IntOrExpr = Field(description="at least 1")
    behavior: Literal["QUEUE", "CANCEL", "FAIL"] | None = Field(
        default=None, description="Kestra's default is QUEUE"
    )

    @field_validator("limit")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("expected a limit of at least 1")
        return value


class Sla(FlowModel):
    """A service-level agreement on the execution (e.g. a maximum duration)."""

    id: Str
    type: Literal["MAX_DURATION", "EXECUTION_ASSERTION"]
    behavior: Literal["FAIL", "CANCEL", "NONE"]
    duration: Duration | None = None
    assert_: Str | None = Field(default=None, alias="assert")
    labels: Labels | None = None


class Listener(FlowModel):
    """Tasks run after the execution ended, when the conditions hold (deprecated Kestra
    ``listeners``)."""

    description: Str | None = None
    conditions: list[Condition] | None = None
    tasks: list[Task] = Field(min_length=1)


class Check(FlowModel):
    """A condition checked before an execution is created (Kestra 0.24+ ``checks``); Kestra
    2.0 names it ``when`` and keeps ``condition`` as a deprecated alias."""

    when: Str | None = Field(default=None, description="Kestra 2.0: must render true")
    condition: Str | None = Field(default=None, description="the 1.x name of `when`")
    message: Str
    style: Literal["ERROR", "SUCCESS", "WARNING", "INFO"] | None = None
    behavior: Literal["BLOCK_EXECUTION", "FAIL_EXECUTION", "CREATE_EXECUTION"] | None = None

    @model_validator(mode="after")
    def _expression(self) -> Check:
        if self.when is None and self.condition is None:
            raise ValueError("a check needs `when` (or `condition`, its Kestra 1.x name)")
        return self


class PluginDefault(FlowModel):
    """Default property values for every plugin of a type (or of a package prefix)."""

    type: Str
    forced: BoolOrExpr | None = None
    values: dict[str, Any]


class Flow(FlowModel):
    """A flow definition, as written in Kestra's YAML format."""

    id: FlowId
    namespace: Namespace
    revision: IntOrExpr | None = None
    description: Str | None = None
    labels: Labels | None = None
    inputs: list[Input] | None = None
    variables: dict[str, Any] | None = None
    tasks: list[Task] = Field(min_length=1)
    errors: list[Task] | None = None
    finally_: list[Task] | None = Field(default=None, alias="finally")
    afterExecution: list[Task] | None = None
    listeners: list[Listener] | None = Field(default=None, description="deprecated")
    triggers: list[Trigger] | None = None
    pluginDefaults: list[PluginDefault] | None = None
    taskDefaults: list[PluginDefault] | None = Field(default=None, description="deprecated")
    concurrency: Concurrency | None = None
    retry: Retry | None = None
    outputs: list[Output] | None = None
    sla: list[Sla] | None = None
    checks: list[Check] | None = None
    disabled: BoolOrExpr | None = None
    deleted: BoolOrExpr | None = None
    workerGroup: WorkerGroup | None = None

    def to_engine_dict(self) -> dict[str, Any]:
        """The flow as the engine consumes it: Kestra's keys, only what was written."""
        return self.model_dump(by_alias=True, exclude_unset=True)
