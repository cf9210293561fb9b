"""Typed bodies of the dashboard's read-only endpoints (they complete the OpenAPI document).

Field names follow the API's camelCase (``flowId``, ``nextCursor``) so the pages read one style.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.api.models import FlowProblemOut, Health


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------ topology


class GraphBranch(_Out):
    label: str = Field(description="then / else / a Switch case / errors / finally, or empty.")
    nodes: list[GraphNode]


class GraphNode(_Out):
    id: str
    type: str = Field(description="The type as written in the flow.")
    short: str = Field(description="Headwater's short type name (log, parallel, ...).")
    kind: Literal["task", "flowable"]
    layout: Literal["sequence", "parallel", "dag"] | None = Field(
        None, description="How the branches run: one after another, side by side, or a DAG."
    )
    branches: list[GraphBranch] = Field(default_factory=list)
    dependsOn: list[str] = Field(default_factory=list, description="Dag predecessors.")
    detail: str | None = Field(None, description="A loop's values, a subflow's target, ...")
    disabled: bool = False


class GraphTrigger(_Out):
    id: str
    type: str
    short: str


class FlowGraph(_Out):
    namespace: str
    id: str
    tasks: list[GraphNode]
    errors: list[GraphNode]
    finallyTasks: list[GraphNode] = Field(description="The flow's `finally` tasks.")
    triggers: list[GraphTrigger]


class GraphPreview(_Out):
    valid: bool
    graph: FlowGraph | None = None


# ------------------------------------------------------------------------------ editor


class FlowCheck(_Out):
    valid: bool
    namespace: str | None = None
    id: str | None = None
    problems: list[FlowProblemOut] = Field(description="What stops a deploy, located.")
    warnings: list[FlowProblemOut] = Field(
        description="Expressions that will not render (the flow deploys; the task fails)."
    )
    graph: FlowGraph | None = Field(None, description="The task tree, when the flow is valid.")


class FlowInputs(_Out):
    namespace: str
    id: str
    revision: int
    inputs: list[dict[str, Any]] = Field(
        description="The flow's declared inputs as deployed (id, type, defaults, values...)."
    )
    fileUploads: bool = Field(
        description="Whether the API takes files with a new execution (multipart)."
    )


class RevisionSummary(_Out):
    revision: int
    deployedAt: datetime
    lines: int = Field(description="Lines of the revision's YAML source.")


class RevisionList(_Out):
    namespace: str
    id: str
    current: int | None = Field(description="The revision deployed now (null: deleted).")
    revisions: list[RevisionSummary] = Field(description="Newest first.")


class RevisionSource(_Out):
    namespace: str
    id: str
    revision: int
    deployedAt: datetime
    source: str


# -------------------------------------------------------------------------- namespaces


class NamespaceSummary(_Out):
    namespace: str
    flows: int = Field(description="Deployed flows in exactly this namespace.")


class NamespaceList(_Out):
    namespaces: list[NamespaceSummary]
    files: bool = Field(description="Whether this server serves namespace files.")


class KvEntry(_Out):
    key: str
    value: Any = Field(description="The stored JSON value.")


class KvList(_Out):
    namespace: str
    entries: list[KvEntry] = Field(description="Live pairs (not expired), by key.")


# -------------------------------------------------------------------------- executions


class StateCounts(_Out):
    since: datetime | None = Field(description="Counted executions started at or after this.")
    total: int
    counts: dict[str, int] = Field(description="State -> executions; states with none left out.")


class MinuteBucket(_Out):
    minute: datetime
    counts: dict[str, int] = Field(description="Current state -> executions started that minute.")


class Throughput(_Out):
    minutes: int
    buckets: list[MinuteBucket] = Field(description="Oldest first; minutes with none left out.")


# ------------------------------------------------------------------------------ system


class ProjectorOut(_Out):
    name: str
    groupId: str
    lagMs: int | None = Field(description="Event age of the last batch when it was committed.")
    lastBatchAt: datetime | None
    lastBatchAgeS: float | None
    recordsTotal: int


class Backlog(_Out):
    created: int = Field(description="Executions still CREATED (the executor has not run them).")
    oldestCreatedAgeS: float | None = Field(
        description="Age of the oldest CREATED execution: the executor's consumer lag."
    )
    running: int = Field(description="Executions RUNNING now.")
    queued: int = Field(description="Executions QUEUED by a flow's concurrency limit.")


class SystemStatus(_Out):
    health: Health
    projectors: list[ProjectorOut]
    backlog: Backlog | None = Field(description="Null while the database is not reachable.")
    commandsSent: dict[str, int] = Field(description="Commands this API process sent, by type.")


# ---------------------------------------------------------------------------- triggers


class TriggerOut(_Out):
    namespace: str
    flowId: str
    triggerId: str
    type: str
    enabled: bool
    lastFired: datetime | None = None
    nextDate: datetime | None = None
    lastError: str | None = None
    updated: datetime


class TriggerPage(_Out):
    results: list[TriggerOut]
    nextCursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class TriggerToggle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(description="True to enable the trigger, false to disable it.")


class TriggerToggled(_Out):
    namespace: str
    flowId: str
    triggerId: str
    enabled: bool = Field(description="What was asked; the trigger runtime applies it.")


GraphBranch.model_rebuild()
