"""``/api/v1/outputs``: task run outputs on their own (Kestra 2.0's OutputController).

Kestra 2.0 moved task run outputs out of the execution response (migration guide,
"Execution API response shape changed"); clients read them here instead. Headwater keeps
the outputs in the execution response as well (1.x clients keep working) and serves:

- ``GET /outputs/{executionId}/{taskRunId}``: the task run's outputs, a map of output name
  to value (404 for an unknown execution or a task run not in it);
- ``GET /outputs/{executionId}``: one entry per task run that has outputs, in task-run
  order: ``{taskId, taskRunId, value, iteration, inline}`` (``inline`` is always true here:
  Headwater keeps outputs in the read model; large ones are already storage URIs).

Known secret values are masked as in every other answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from engine.api.models import _json
from engine.api.problems import ProblemError, problem_responses
from engine.api.services import ApiServices


class TaskOutputInformation(BaseModel):
    taskId: str
    taskRunId: str
    value: str | None = None
    iteration: int | None = None
    inline: bool = True


def router(services: ApiServices) -> APIRouter:
    api = APIRouter(prefix="/outputs", tags=["outputs"], responses=problem_responses(401, 503))

    async def _execution(execution_id: str) -> None:
        row = await services.fetchrow("SELECT id FROM executions WHERE id = $1", execution_id)
        if row is None:
            raise ProblemError(404, "Execution not found", f"no execution {execution_id}")

    @api.get(
        "/{execution_id}/{task_run_id}",
        response_model=dict[str, Any],
        summary="The outputs of one task run",
        responses=problem_responses(404),
    )
    async def task_run_outputs(execution_id: str, task_run_id: str) -> dict[str, Any]:
        await _execution(execution_id)
        row = await services.fetchrow(
            "SELECT outputs FROM task_runs WHERE execution_id = $1 AND id = $2",
            execution_id,
            task_run_id,
        )
        if row is None:
            raise ProblemError(
                404, "Task run not found", f"no task run {task_run_id} in {execution_id}"
            )
        outputs = _json(row["outputs"]) or {}
        masked = services.masker.json(outputs) if services.masker.active else outputs
        return dict(masked) if isinstance(masked, dict) else {}

    @api.get(
        "/{execution_id}",
        response_model=list[TaskOutputInformation],
        summary="Which task runs of an execution have outputs",
        responses=problem_responses(404),
    )
    async def execution_outputs(execution_id: str) -> list[TaskOutputInformation]:
        await _execution(execution_id)
        rows = await services.fetch(
            "SELECT id, task_id, value, iteration FROM task_runs WHERE execution_id = $1"
            " AND outputs IS NOT NULL AND outputs <> '{}'::jsonb"
            " ORDER BY position NULLS LAST, start_date, id",
            execution_id,
        )
        masker = services.masker
        return [
            TaskOutputInformation(
                taskId=r["task_id"],
                taskRunId=r["id"],
                value=masker.text(r["value"]) if masker.active else r["value"],
                iteration=r["iteration"],
            )
            for r in rows
        ]

    return api
