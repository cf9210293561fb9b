"""Typed request and response bodies of the API (they make the OpenAPI document).

Field names follow Kestra's API (``flowId``, ``taskRunList``, ``state.current``...), so a
client written for Kestra reads the same shapes. ``from_row`` helpers build them from
read-model rows (``engine/projector/READ_MODEL.md``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

JSON = dict[str, Any]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1, max_length=256)
    value: str = Field(max_length=1024)


class FlowProblemOut(_Out):
    file: str
    line: int
    column: int
    path: str
    message: str
    expected: str | None = None


class FlowValidation(_Out):
    valid: bool
    namespace: str | None = None
    id: str | None = None
    problems: list[FlowProblemOut]


class FlowOut(_Out):
    namespace: str
    id: str
    revision: int
    source: str = Field(description="The YAML as deployed.")
    description: str | None = None
    labels: JSON = Field(default_factory=dict)
    deleted: bool = False
    updated: datetime | None = None
    draft: bool = Field(False, description="A draft revision (kept, never executed).")


class FlowRevisionOut(_Out):
    revision: int
    source: str
    deployedAt: datetime
    draft: bool = Field(False, description="A draft revision (kept, never executed).")


class FlowSummary(_Out):
    namespace: str
    id: str
    revision: int
    description: str | None = None
    labels: JSON = Field(default_factory=dict)
    updated: datetime


class FlowPage(_Out):
    results: list[FlowSummary]
    nextCursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class StateOut(_Out):
    current: str
    histories: list[JSON] = Field(description="Every state with its date, oldest first.")
    startDate: datetime | None = None
    endDate: datetime | None = None
    durationMs: int | None = None


class TaskRunOut(_Out):
    id: str
    taskId: str
    type: str
    parentTaskRunId: str | None = None
    value: str | None = None
    iteration: int | None = None
    state: StateOut
    attempts: list[JSON]
    outputs: JSON
    worker: str | None = None


class ExecutionOut(_Out):
    id: str
    namespace: str
    flowId: str
    flowRevision: int | None = None
    state: StateOut
    labels: list[Label]
    inputs: JSON
    outputs: JSON | None = None
    trigger: JSON | None = None
    parentExecutionId: str | None = Field(None, description="The subflow parent, if any.")
    originalExecutionId: str | None = None
    originalId: str | None = Field(
        None,
        description="Kestra's originalId: the first execution of a replay or retry chain "
        "(this one when it is the first).",
    )
    metadata: JSON | None = Field(
        None, description="Kestra's ExecutionMetadata: attemptNumber (1, then one per retry)."
    )
    kind: str | None = Field(
        None, description="Kestra 2.0's ExecutionKind: LOOP for a Loop iteration, else null."
    )
    loopRun: JSON | None = Field(
        None,
        description="A Loop iteration's place: taskId and taskRunId of the parent's Loop, "
        "index, value, key.",
    )
    taskRunList: list[TaskRunOut] | None = None


class ExecutionPage(_Out):
    results: list[ExecutionOut]
    nextCursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class ExecutionCreated(_Out):
    id: str
    namespace: str
    flowId: str
    flowRevision: int | None = None
    state: str = Field(description="CREATED: the executor picks it up from hw.commands.")
    inputs: JSON
    labels: list[Label]
    scheduleDate: str | None = Field(None, description="When it starts, if not now.")
    unknownInputs: list[str] = Field(
        default_factory=list, description="Given inputs the flow does not declare (ignored)."
    )


class ExecutionCreate(_In):
    inputs: JSON = Field(default_factory=dict, description="Values of the flow's inputs.")
    labels: list[Label] = Field(default_factory=list, max_length=100)


class ResumeBody(_In):
    inputs: JSON = Field(default_factory=dict, description="The Pause task's onResume inputs.")


class CommandAccepted(_Out):
    executionId: str
    command: str
    commandId: str
    newExecutionId: str | None = None


class LogOut(_Out):
    logId: str
    executionId: str
    taskRunId: str | None = None
    taskId: str | None = None
    attempt: int | None = None
    level: str
    message: str
    timestamp: datetime


class ComponentHealth(_Out):
    status: str = Field(description="UP or DOWN.")
    detail: str | None = None
    lagMs: int | None = None
    lastBatchAgeS: float | None = None


class Health(_Out):
    status: str = Field(description="UP when every component is ready, else DOWN.")
    live: bool = Field(description="The process answers (liveness).")
    components: dict[str, ComponentHealth]


# ---------------------------------------------------------------------------- row -> model


def _json(value: Any) -> Any:
    if isinstance(value, str):
        return orjson.loads(value)
    return value


def labels_to_list(labels: Any) -> list[Label]:
    if isinstance(labels, dict):
        return [Label(key=str(k), value=str(v)) for k, v in labels.items()]
    return []


def _state(row: Any) -> StateOut:
    history = _json(row["state_history"]) or []
    return StateOut(
        current=row["state"],
        histories=[{"state": h[0], "date": h[1]} for h in history if len(h) >= 2],
        startDate=row["start_date"],
        endDate=row["end_date"],
        durationMs=row["duration_ms"],
    )


def task_run_from_row(row: Any) -> TaskRunOut:
    return TaskRunOut(
        id=row["id"],
        taskId=row["task_id"],
        type=row["type"],
        parentTaskRunId=row["parent_id"],
        value=row["value"],
        iteration=row["iteration"],
        state=_state(row),
        attempts=_json(row["attempts"]) or [],
        outputs=_json(row["outputs"]) or {},
        worker=row["worker"],
    )


def execution_from_row(row: Any, task_runs: list[Any] | None = None) -> ExecutionOut:
    return ExecutionOut(
        id=row["id"],
        namespace=row["namespace"],
        flowId=row["flow_id"],
        flowRevision=row["flow_revision"],
        state=_state(row),
        labels=labels_to_list(_json(row["labels"])),
        inputs=_json(row["inputs"]) or {},
        outputs=_json(row["outputs"]),
        trigger=_json(row["trigger"]),
        parentExecutionId=row["parent_execution_id"],
        originalExecutionId=row["original_execution_id"],
        originalId=row["original_execution_id"] or row["id"],
        metadata={"attemptNumber": _retry_number(row) + 1},
        taskRunList=None if task_runs is None else [task_run_from_row(t) for t in task_runs],
        **_loop_of(row),
    )


def _loop_of(row: Any) -> JSON:
    """A Loop iteration's kind and place, from its parent reference."""
    try:
        parent = _json(row["parent"])
    except (KeyError, IndexError):  # a row read without the column
        return {}
    if not isinstance(parent, dict) or parent.get("kind") != "LOOP":
        return {}
    keys = ("task_id", "task_run_id", "index", "value", "key")
    names = ("taskId", "taskRunId", "index", "value", "key")
    return {"kind": "LOOP", "loopRun": {n: parent.get(k) for n, k in zip(names, keys, strict=True)}}


def _retry_number(row: Any) -> int:
    try:
        return int(row["retry_number"] or 0)
    except (KeyError, TypeError, ValueError):  # a row read without the column
        return 0


def log_from_row(row: Any) -> LogOut:
    return LogOut(
        logId=row["log_id"],
        executionId=row["execution_id"],
        taskRunId=row["task_run_id"],
        taskId=row["task_id"],
        attempt=row["attempt"],
        level=row["level"],
        message=row["message"],
        timestamp=row["ts"],
    )
