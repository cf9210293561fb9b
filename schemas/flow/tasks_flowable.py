"""Flowable tasks: evaluated inside the executor, they hold and schedule other tasks.

Their task lists refer to the :data:`schemas.flow.tasks.Task` union, which is built after
this module is imported; ``schemas.flow.tasks`` rebuilds these models once it exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from schemas.flow.common import (
    BoolOrExpr,
    Duration,
    FlowModel,
    IntOrExpr,
    Labels,
    Str,
    TaskId,
)
from schemas.flow.inputs import Input, Output
from schemas.flow.task_base import TaskBase

if TYPE_CHECKING:
    from schemas.flow.tasks import Task

_F = "io.kestra.plugin.core.flow"


class _WithErrors(TaskBase):
    errors: list[Task] | None = Field(default=None, description="run when a child task fails")
    finally_: list[Task] | None = Field(
        default=None, alias="finally", description="always run after the children"
    )


class SequentialTask(_WithErrors):
    """Run the tasks one after the other."""

    type: Literal["io.kestra.plugin.core.flow.Sequential"]
    tasks: list[Task] = Field(min_length=1)


class ParallelTask(_WithErrors):
    """Run the tasks at the same time, at most ``concurrent`` at once (0: no limit)."""

    type: Literal["io.kestra.plugin.core.flow.Parallel"]
    tasks: list[Task] = Field(min_length=1)
    concurrent: IntOrExpr | None = None


class ForEachTask(_WithErrors):
    """Run the tasks once per value (``concurrencyLimit`` 1: one after the other, 0: all)."""

    type: Literal["io.kestra.plugin.core.flow.ForEach"]
    values: Any
    tasks: list[Task] = Field(min_length=1)
    concurrencyLimit: IntOrExpr | None = None


class LoopTask(_WithErrors):
    """Kestra 2.0: run the tasks once per value, each iteration an isolated sub-execution
    (``item.value``, ``item.index``, ``item.key``; ``concurrencyLimit`` 0: all at once)."""

    type: Literal["io.kestra.plugin.core.flow.Loop"]
    values: Any = Field(description="a list, a map, a JSON array/object or a storage URI")
    tasks: list[Task] = Field(min_length=1)
    concurrencyLimit: IntOrExpr | None = Field(
        default=None, description="iterations at once: 1 (default) one by one, 0 no limit"
    )
    transmitFailed: BoolOrExpr | None = Field(
        default=None, description="fail the loop when an iteration fails (default true)"
    )
    outputs: list[Output] | None = Field(
        default=None, description="values each iteration exposes (loopOutputs())"
    )
    fetchType: Literal["AUTO", "FETCH", "STORE"] | None = None

    @field_validator("concurrencyLimit")
    @classmethod
    def _not_negative(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value < 0:
            raise ValueError("expected 0 (no limit) or more")
        return value


class EachSequentialTask(_WithErrors):
    """Deprecated ForEach with concurrency 1."""

    type: Literal["io.kestra.plugin.core.flow.EachSequential"]
    value: Any
    tasks: list[Task] = Field(min_length=1)


class EachParallelTask(_WithErrors):
    """Deprecated ForEach running every value at once."""

    type: Literal["io.kestra.plugin.core.flow.EachParallel"]
    value: Any
    tasks: list[Task] = Field(min_length=1)
    concurrent: IntOrExpr | None = None


class IfTask(_WithErrors):
    """Run ``then`` when the condition renders true, ``else`` otherwise."""

    type: Literal["io.kestra.plugin.core.flow.If"]
    condition: Any
    then: list[Task] = Field(min_length=1)
    else_: list[Task] | None = Field(default=None, alias="else")


class SwitchTask(_WithErrors):
    """Run the branch whose key equals the rendered value, or ``defaults``."""

    type: Literal["io.kestra.plugin.core.flow.Switch"]
    value: Any
    cases: dict[str, list[Task]] | None = None
    defaults: list[Task] | None = None


class DagEntry(FlowModel):
    """One task of a Dag with the ids of the Dag tasks it waits for."""

    task: Task
    dependsOn: list[TaskId] | None = None


class DagTask(_WithErrors):
    """Run the tasks as soon as the tasks they depend on have succeeded."""

    type: Literal["io.kestra.plugin.core.flow.Dag"]
    tasks: list[DagEntry] = Field(min_length=1)
    concurrent: IntOrExpr | None = None


class SubflowTask(TaskBase):
    """Start an execution of another flow and (by default) wait for it."""

    type: Literal["io.kestra.plugin.core.flow.Subflow"]
    namespace: Str
    flowId: Str
    revision: IntOrExpr | None = None
    inputs: dict[str, Any] | None = None
    labels: Labels | None = None
    wait: BoolOrExpr | None = None
    transmitFailed: BoolOrExpr | None = None
    inheritLabels: BoolOrExpr | None = None
    outputs: dict[str, Any] | None = Field(default=None, description="deprecated")
    scheduleDate: Str | None = None
    restartBehavior: Literal["NEW_EXECUTION", "RETRY_FAILED"] | None = None


class ForEachItemBatch(FlowModel):
    rows: IntOrExpr | None = None
    bytes: Str | None = None
    partitions: IntOrExpr | None = None
    separator: Str | None = None


class ForEachItemSubflow(FlowModel):
    namespace: Str
    flowId: Str
    revision: IntOrExpr | None = None
    inputs: dict[str, Any] | None = None
    labels: Labels | None = None
    wait: BoolOrExpr | None = None
    transmitFailed: BoolOrExpr | None = None
    inheritLabels: BoolOrExpr | None = None
    scheduleOn: Str | None = None


class ForEachItemTask(TaskBase):
    """Split a file of items into batches and start one subflow execution per batch."""

    type: Literal["io.kestra.plugin.core.flow.ForEachItem"]
    items: Str
    batch: ForEachItemBatch | None = None
    subflow: ForEachItemSubflow
    restartBehavior: Literal["NEW_EXECUTION", "RETRY_FAILED"] | None = None
    errors: list[Task] | None = None


class PauseTask(TaskBase):
    """Pause the execution until resumed, or until a delay/duration elapses."""

    type: Literal["io.kestra.plugin.core.flow.Pause"]
    delay: Duration | None = Field(default=None, description="deprecated: use pauseDuration")
    pauseDuration: Duration | None = None
    behavior: Literal["RESUME", "WARN", "CANCEL", "FAIL"] | None = None
    onResume: list[Input] | None = None
    onPause: Task | None = None
    tasks: list[Task] | None = Field(default=None, description="deprecated")
    errors: list[Task] | None = None


class CheckFrequency(FlowModel):
    maxIterations: IntOrExpr | None = None
    maxDuration: Duration | None = None
    interval: Duration | None = None


class WaitForTask(_WithErrors):
    """Run the tasks again and again until the condition renders true."""

    type: Literal["io.kestra.plugin.core.flow.WaitFor"]
    condition: Any
    tasks: list[Task] = Field(min_length=1)
    checkFrequency: CheckFrequency | None = None
    failOnMaxReached: BoolOrExpr | None = None


class AllowFailureTask(_WithErrors):
    """Deprecated: run the tasks and turn their failure into a WARNING."""

    type: Literal["io.kestra.plugin.core.flow.AllowFailure"]
    tasks: list[Task] = Field(min_length=1)


class WorkingDirectoryTask(_WithErrors):
    """Run the tasks on the same worker in one shared directory."""

    type: Literal["io.kestra.plugin.core.flow.WorkingDirectory"]
    tasks: list[Task] = Field(min_length=1)
    namespaceFiles: dict[str, Any] | None = None
    inputFiles: dict[str, Any] | Str | None = None
    outputFiles: list[Str] | None = None
    cache: dict[str, Any] | None = None
    sync: BoolOrExpr | None = None
    taskRunner: dict[str, Any] | None = None
    containerImage: Str | None = None


FLOWABLE_MODELS: tuple[type[TaskBase], ...] = (
    SequentialTask,
    ParallelTask,
    ForEachTask,
    LoopTask,
    EachSequentialTask,
    EachParallelTask,
    IfTask,
    SwitchTask,
    DagTask,
    SubflowTask,
    ForEachItemTask,
    PauseTask,
    WaitForTask,
    AllowFailureTask,
    WorkingDirectoryTask,
)
