"""``/api/v1/executions``: read the read model, write commands to hw.commands.

The API never changes execution state itself: create, kill, resume, restart, replay and set
labels each produce one command (keyed by execution id) and answer once the broker has it.
State checks (resume needs PAUSED, ...) read the read model, which trails the executor by one
projection hop: a command the executor then finds stale is logged and ignored by the reducer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from engine.api.models import (
    CommandAccepted,
    ExecutionCreated,
    ExecutionOut,
    ExecutionPage,
    Label,
    LogOut,
    execution_from_row,
    labels_to_list,
    log_from_row,
)
from engine.api.problems import ProblemError, problem_responses
from engine.api.routes_flows import decode_cursor, encode_cursor
from engine.api.services import ApiServices
from engine.api.submissions import (
    Submission,
    check_labels,
    query_labels,
    read_submission,
    store_files,
    unknown_inputs,
)
from engine.bus.wire import command_record
from engine.flows.checks import BLOCK, FAIL, evaluate_checks
from engine.flows.inputs import InputValidationError, flow_default_renderer, resolve_inputs
from engine.projector.rows import mask_inputs, secret_input_ids
from engine.reducer.commands import (
    Command,
    Kill,
    Replay,
    Restart,
    Resume,
    SetLabels,
    StartExecution,
)
from engine.reducer.context import index_tasks
from engine.reducer.states import State
from schemas.envelope import format_time, new_id

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")
# The bodies execution creation and resume take (see engine.api.submissions).
_INPUTS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ExecutionCreate"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "format": "binary"},
                }
            },
        },
    }
}
# How often a follower (server-sent events) polls the read model: the projection itself is a
# hop behind, so polling faster would only add database load.
FOLLOW_POLL_S = 0.5
# How often a `wait=true` creation polls the read model for the end.
WAIT_POLL_S = 0.2
# A follower stream ends after this long even if the execution never ends (clients reconnect).
FOLLOW_MAX_S = 3600.0
# After the end, a follower waits at most this long for log lines its attempts say they sent
# (hw.logs is projected beside hw.events, not in step with it; a lost line must not hang it).
FOLLOW_LOGS_GRACE_S = 10.0
# Attempts whose log lines (worker_log_id(run, attempt, n)) are not all in the read model yet.
_ATTEMPTS_MISSING_LOGS = """
SELECT count(*) FROM task_runs t, jsonb_array_elements(t.attempts) WITH ORDINALITY AS a(v, n)
WHERE t.execution_id = $1
  AND coalesce((a.v->>'log_lines')::int, 0) > (
      SELECT count(*) FROM logs l
      WHERE l.execution_id = $1 AND l.log_id LIKE t.id || ':' || a.n || ':%')
"""
_COLUMNS = (
    "id, namespace, flow_id, flow_revision, state, labels, inputs, outputs, trigger,"
    " parent, parent_execution_id, original_execution_id, retry_number, start_date, end_date,"
    " duration_ms, state_history, last_seq"
)
_TERMINAL = frozenset(s.value for s in State if s.is_terminal)
# The execution and the newest seq among it and its task runs (what a follower watches).
_FOLLOW_SQL = (
    f"SELECT {_COLUMNS}, GREATEST(last_seq, (SELECT max(t.last_seq) FROM task_runs t"  # noqa: S608 - constant columns
    " WHERE t.execution_id = executions.id)) AS follow_seq FROM executions WHERE id = $1"
)


def masked_execution(services: ApiServices, out: ExecutionOut) -> ExecutionOut:
    """``out`` with known secret values masked in its user data (outputs, inputs, trigger,
    task-run outputs, values and attempts): rows projected before a secret existed, or by a
    projector that did not know it, never show it."""
    m = services.masker
    if not m.active:
        return out
    runs = out.taskRunList
    if runs is not None:
        runs = [
            r.model_copy(
                update={
                    "outputs": m.json(r.outputs),
                    "value": m.text(r.value),
                    "attempts": m.json(r.attempts),
                }
            )
            for r in runs
        ]
    return out.model_copy(
        update={
            "outputs": m.json(out.outputs),
            "inputs": m.json(out.inputs),
            "trigger": m.json(out.trigger),
            "taskRunList": runs,
        }
    )


def masked_log(services: ApiServices, out: LogOut) -> LogOut:
    """``out`` with known secret values masked in its message."""
    m = services.masker
    return out.model_copy(update={"message": m.text(out.message)}) if m.active else out


def _labels_dict(labels: list[Label]) -> dict[str, str]:
    return {label.key: label.value for label in labels}


async def start_execution(
    services: ApiServices,
    namespace: str,
    flow_id: str,
    given_inputs: dict[str, Any],
    labels: dict[str, str],
    trigger: dict[str, Any] | None = None,
    *,
    submission: Submission | None = None,
    scheduled: datetime | None = None,
) -> ExecutionCreated:
    """Validate the inputs against the flow's current revision and send StartExecution.

    Kestra (``ExecutionController.create``, ``FlowInputOutput.readExecutionInputs``): every
    declared input is resolved (value, else its default; a required one without either is a
    422 "missing required input"; values are typed); inputs the flow does not declare are not
    kept (Kestra drops them silently; Headwater names them in ``unknownInputs`` and in a WARN
    line of the execution). ``scheduleDate``: the execution waits in CREATED until then.
    The flow's ``checks`` are tested on the typed inputs (:mod:`engine.flows.checks`): a
    BLOCK_EXECUTION failure is a 422 and nothing starts, FAIL_EXECUTION creates the
    execution FAILED."""
    services.require_bus()
    record = services.store.record(namespace, flow_id)
    if record is None or record.flow is None:
        raise ProblemError(404, "Flow not found", f"no flow {namespace}/{flow_id}")
    flow = record.flow
    if flow.get("disabled") is True:
        raise ProblemError(409, "Flow disabled", f"{namespace}/{flow_id} is disabled")
    execution_id = new_id()
    if submission is not None and submission.files:
        await store_files(
            services.storage, submission, flow.get("inputs"), namespace, flow_id, execution_id
        )
        given_inputs = submission.inputs
    unknown = unknown_inputs(given_inputs, flow.get("inputs"))
    try:
        inputs = resolve_inputs(
            flow.get("inputs"),
            given_inputs,
            mode="typed",
            render_default=flow_default_renderer(flow),
            flow_id=flow_id,
        )
    except InputValidationError as exc:
        raise ProblemError(
            422,
            "Invalid inputs",
            exc.message,
            errors=[p.to_dict() for p in exc.problems],
        ) from exc
    notes = [f"input '{name}' is not declared by the flow: ignored" for name in unknown]
    checked = evaluate_checks(flow, inputs)
    if checked.behavior == BLOCK:
        raise ProblemError(
            422,
            "Flow execution blocked",
            checked.blocked_message(),
            errors=[f.to_dict() for f in checked.failed],
        )
    command = StartExecution(
        command_id=new_id(),
        execution_id=execution_id,
        namespace=namespace,
        flow_id=flow_id,
        flow=flow,
        inputs=inputs,
        labels=labels,
        trigger=trigger,
        created=format_time(datetime.now(UTC)),
        scheduled=None if scheduled is None else format_time(_utc(scheduled)),
        notes=notes,
        error=checked.failed_message() if checked.behavior == FAIL else None,
    )
    await _send(services, command)
    return ExecutionCreated(
        id=command.execution_id,
        namespace=namespace,
        flowId=flow_id,
        flowRevision=record.revision,
        state=State.CREATED.value,
        inputs=mask_inputs(inputs, secret_input_ids(flow)),
        labels=labels_to_list(labels),
        scheduleDate=command.scheduled,
        unknownInputs=unknown,
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


async def _send(services: ApiServices, command: Command) -> None:
    await services.produce(services.topics.commands.name, command_record(command))
    services.commands_sent[command.type] = services.commands_sent.get(command.type, 0) + 1


def router(services: ApiServices) -> APIRouter:
    api = APIRouter(
        prefix="/executions", tags=["executions"], responses=problem_responses(400, 401, 413, 503)
    )

    async def current(execution_id: str) -> Any:
        return await execution_row(services, execution_id)

    async def command(execution_id: str, allowed: frozenset[str], make: Any) -> CommandAccepted:
        row = await current(execution_id)
        if row["state"] not in allowed:
            raise ProblemError(
                409,
                "Invalid state transition",
                f"execution {execution_id} is {row['state']}; this needs one of {sorted(allowed)}",
            )
        cmd = make(new_id())
        await _send(services, cmd)
        new = getattr(cmd, "new_execution_id", None)
        return CommandAccepted(
            executionId=execution_id, command=cmd.type, commandId=cmd.command_id, newExecutionId=new
        )

    @api.get(
        "/search",
        response_model=ExecutionPage,
        summary="List executions, newest first, with filters and a cursor",
        responses=problem_responses(400, 422),
    )
    async def search_executions(
        namespace: Annotated[str | None, Query(description="Namespace or parent.")] = None,
        flowId: Annotated[str | None, Query()] = None,
        state: Annotated[list[State] | None, Query()] = None,
        labels: Annotated[list[str] | None, Query(description="key:value, all must match")] = None,
        startDate: Annotated[datetime | None, Query(description="Started at or after.")] = None,
        endDate: Annotated[datetime | None, Query(description="Started before.")] = None,
        size: Annotated[int, Query(ge=1, le=1000)] = 50,
        cursor: Annotated[str | None, Query()] = None,
        parentExecutionId: Annotated[
            str | None, Query(description="Children of this execution (subflows, iterations).")
        ] = None,
        kind: Annotated[
            Literal["NORMAL", "LOOP"] | None,
            Query(
                description="NORMAL: no Loop iterations (the default without "
                "parentExecutionId); LOOP: only Loop iterations (Kestra 2.0)."
            ),
        ] = None,
    ) -> ExecutionPage:
        where, args = ["true"], []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if namespace is not None:
            p = arg(namespace)
            where.append(f"(namespace = {p} OR namespace LIKE {p} || '.%')")
        if flowId is not None:
            where.append(f"flow_id = {arg(flowId)}")
        if parentExecutionId is not None:
            where.append(f"parent_execution_id = {arg(parentExecutionId)}")
        if kind == "LOOP":
            where.append("parent->>'kind' = 'LOOP'")
        elif kind == "NORMAL" or parentExecutionId is None:
            # A Loop iteration is part of its parent, not an execution users list.
            where.append("(parent IS NULL OR parent->>'kind' IS DISTINCT FROM 'LOOP')")
        if state:
            where.append(f"state = ANY({arg([s.value for s in state])}::text[])")
        if labels:
            wanted = {}
            for item in labels:
                key, sep, value = item.partition(":")
                if not sep or not key:
                    raise ProblemError(400, "Invalid label filter", f"{item!r} is not key:value")
                wanted[key] = value
            where.append(f"labels @> {arg(orjson.dumps(wanted).decode())}::jsonb")
        for bound, op in ((startDate, ">="), (endDate, "<")):
            if bound is not None:
                if bound.utcoffset() is None:
                    bound = bound.replace(tzinfo=UTC)
                where.append(f"start_date {op} {arg(bound)}")
        if cursor:
            when, last_id = decode_cursor(cursor, 2)
            try:
                after = datetime.fromisoformat(when)
            except ValueError as exc:
                raise ProblemError(400, "Invalid cursor", "pass back nextCursor") from exc
            where.append(f"(start_date, id) < ({arg(after)}, {arg(last_id)})")
        sql = (
            # Only constant SQL fragments are joined here; every value is a $n parameter.
            f"SELECT {_COLUMNS} FROM executions WHERE {' AND '.join(where)}"  # noqa: S608
            f" ORDER BY start_date DESC, id DESC LIMIT {arg(size + 1)}"
        )
        rows = await services.fetch(sql, *args)
        page = rows[:size]
        next_cursor = None
        if len(rows) > size:
            last = page[-1]
            next_cursor = encode_cursor([last["start_date"].isoformat(), last["id"]])
        return ExecutionPage(
            results=[masked_execution(services, execution_from_row(r)) for r in page],
            nextCursor=next_cursor,
        )

    api.add_api_route(
        "",
        search_executions,
        methods=["GET"],
        response_model=ExecutionPage,
        summary="List executions (same as /search)",
        responses=problem_responses(400, 422),
        operation_id="list_executions",
    )

    @api.get(
        "/{execution_id}",
        response_model=ExecutionOut,
        summary="One execution with its task runs",
        responses=problem_responses(404),
    )
    async def get_execution(execution_id: str) -> ExecutionOut:
        return await read_execution(services, execution_id)

    @api.get(
        "/{execution_id}/logs",
        response_model=list[LogOut],
        summary="Log lines of an execution, oldest first",
        responses=problem_responses(404, 422),
    )
    async def execution_logs(
        execution_id: str,
        taskId: Annotated[str | None, Query()] = None,
        taskRunId: Annotated[str | None, Query()] = None,
        minLevel: Annotated[str | None, Query(pattern="^(TRACE|DEBUG|INFO|WARN|ERROR)$")] = None,
        tail: Annotated[int | None, Query(ge=1, le=10_000, description="Only the last N.")] = None,
    ) -> list[LogOut]:
        await current(execution_id)
        levels = list(LEVELS[LEVELS.index(minLevel) :]) if minLevel else None
        rows = await services.fetch(
            "SELECT * FROM ("
            " SELECT * FROM logs WHERE execution_id = $1"
            " AND ($2::text IS NULL OR task_id = $2)"
            " AND ($3::text IS NULL OR task_run_id = $3)"
            " AND ($4::text[] IS NULL OR level = ANY($4::text[]))"
            " ORDER BY ts DESC, log_id DESC LIMIT $5) AS t ORDER BY ts, log_id",
            execution_id,
            taskId,
            taskRunId,
            levels,
            tail or 10_000,
        )
        return [masked_log(services, log_from_row(r)) for r in rows]

    @api.get(
        "/{execution_id}/follow",
        summary="Server-sent events: the execution on every change, and its new log lines",
        responses={
            **problem_responses(404),
            200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        },
        response_class=StreamingResponse,
    )
    async def follow_execution(execution_id: str) -> StreamingResponse:
        await current(execution_id)
        return StreamingResponse(_follow(services, execution_id), media_type="text/event-stream")

    @api.post(
        "/{execution_id}/resume",
        response_model=CommandAccepted,
        summary="Resume a PAUSED execution (with the Pause task's onResume inputs)",
        responses=problem_responses(400, 404, 409, 422),
        openapi_extra=_INPUTS_BODY,
    )
    async def resume_execution(execution_id: str, request: Request) -> CommandAccepted:
        """Kestra's resume: the first paused task run's ``onResume`` inputs are validated
        here (a 422 names each problem, the execution stays PAUSED); files are uploaded."""
        row = await current(execution_id)
        submission = await read_submission(request, resume=True)
        if row["state"] == "PAUSED":
            spec = await _paused_on_resume(row)
            if submission.files:
                await store_files(
                    services.storage, submission, spec, row["namespace"], row["flow_id"],
                    execution_id,
                )  # fmt: skip
            try:
                resolve_inputs(spec, submission.inputs, mode="typed")
            except InputValidationError as exc:
                raise ProblemError(
                    422, "Invalid inputs", exc.message, errors=[p.to_dict() for p in exc.problems]
                ) from exc
        inputs = submission.inputs
        return await command(
            execution_id,
            frozenset({"PAUSED"}),
            lambda cid: Resume(command_id=cid, execution_id=execution_id, inputs=inputs),
        )

    async def _paused_on_resume(row: Any) -> Any:
        """The ``onResume`` of the execution's first paused task (by taskRunList order)."""
        paused = await services.fetchrow(
            "SELECT task_id FROM task_runs WHERE execution_id = $1 AND state = 'PAUSED'"
            " ORDER BY position NULLS LAST, start_date LIMIT 1",
            row["id"],
        )
        flow = services.store.get(row["namespace"], row["flow_id"], row["flow_revision"])
        if paused is None or flow is None:
            return None
        task = index_tasks(flow).get(paused["task_id"]) or {}
        return task.get("onResume")

    @api.post(
        "/{execution_id}/restart",
        response_model=CommandAccepted,
        summary="Restart a FAILED or KILLED execution from its failed task runs",
        responses=problem_responses(404, 409, 422),
    )
    async def restart_execution(execution_id: str) -> CommandAccepted:
        return await command(
            execution_id,
            frozenset({"FAILED", "KILLED"}),
            lambda cid: Restart(command_id=cid, execution_id=execution_id),
        )

    @api.post(
        "/{execution_id}/replay",
        response_model=CommandAccepted,
        summary="Replay an ended execution as a new one, from a task run (or the start)",
        responses=problem_responses(404, 409, 422),
    )
    async def replay_execution(
        execution_id: str,
        taskRunId: Annotated[str | None, Query()] = None,
    ) -> CommandAccepted:
        return await command(
            execution_id,
            _TERMINAL,
            lambda cid: Replay(
                command_id=cid,
                execution_id=execution_id,
                task_run_id=taskRunId,
                new_execution_id=new_id(),
            ),
        )

    @api.post(
        "/{execution_id}/labels",
        response_model=CommandAccepted,
        summary="Set labels on an execution",
        responses=problem_responses(400, 404, 413, 422),
    )
    async def set_labels(execution_id: str, labels: list[Label]) -> CommandAccepted:
        wanted = _labels_dict(labels)
        return await command(
            execution_id,
            frozenset(s.value for s in State),
            lambda cid: SetLabels(command_id=cid, execution_id=execution_id, labels=wanted),
        )

    @api.delete(
        "/{execution_id}/kill",
        response_model=CommandAccepted,
        summary="Kill an execution that has not ended",
        responses=problem_responses(404, 409),
    )
    async def kill_execution(execution_id: str) -> CommandAccepted:
        return await command(
            execution_id,
            frozenset(s.value for s in State if not s.is_terminal),
            lambda cid: Kill(command_id=cid, execution_id=execution_id, reason="killed via API"),
        )

    @api.post(
        "/{namespace}/{flow_id}",
        response_model=ExecutionCreated | ExecutionOut,
        summary="Start an execution of a flow's current revision",
        responses=problem_responses(400, 404, 409, 413, 422),
        openapi_extra=_INPUTS_BODY,
    )
    async def create_execution(
        namespace: str,
        flow_id: str,
        request: Request,
        labels: Annotated[
            list[str] | None, Query(description="Labels as key:value (Kestra's form).")
        ] = None,
        scheduleDate: Annotated[
            datetime | None, Query(description="Start at this date-time, not now.")
        ] = None,
        wait: Annotated[
            bool, Query(description="Answer once the execution ended, with its task runs.")
        ] = False,
    ) -> ExecutionCreated | ExecutionOut:
        submission = await read_submission(request)
        all_labels = {**query_labels(labels), **submission.labels}
        check_labels(all_labels)
        created = await start_execution(
            services,
            namespace,
            flow_id,
            submission.inputs,
            all_labels,
            submission=submission,
            scheduled=scheduleDate,
        )
        if not wait:
            return created
        return await until_ended(services, created.id)

    return api


async def execution_row(services: ApiServices, execution_id: str) -> Any:
    """The execution's row of the read model (404 if there is none)."""
    row = await services.fetchrow(
        f"SELECT {_COLUMNS} FROM executions WHERE id = $1",  # noqa: S608 - constant columns
        execution_id,
    )
    if row is None:
        raise ProblemError(404, "Execution not found", f"no execution {execution_id}")
    return row


async def read_execution(services: ApiServices, execution_id: str) -> ExecutionOut:
    """The execution as GET shows it, its task runs in Kestra's taskRunList order."""
    row = await execution_row(services, execution_id)
    runs = await services.fetch(
        # Kestra's taskRunList order: creation order, parents before children (rows
        # projected before positions existed fall back to creation time).
        "SELECT * FROM task_runs WHERE execution_id = $1"
        " ORDER BY position NULLS LAST, start_date, id",
        execution_id,
    )
    return masked_execution(services, execution_from_row(row, runs))


async def until_ended(services: ApiServices, execution_id: str) -> ExecutionOut:
    """Kestra's ``wait=true``: the execution once it ended (isStopFollow), as GET shows it;
    polled from the read model, which trails the executor by one projection hop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FOLLOW_MAX_S
    while loop.time() < deadline:
        row = await services.fetchrow("SELECT state FROM executions WHERE id = $1", execution_id)
        if row is not None and row["state"] in _TERMINAL:
            break
        await asyncio.sleep(WAIT_POLL_S)
    return await read_execution(services, execution_id)


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _follow(services: ApiServices, execution_id: str) -> AsyncIterator[bytes]:
    """Poll the read model; send the execution when its seq moves, and every new log line.

    The stream ends once the execution has ended and every line its attempts sent is shown
    (or :data:`FOLLOW_LOGS_GRACE_S` after the end, if some never arrive).
    """
    last_seq = -1
    last_log: tuple[datetime, str] | None = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FOLLOW_MAX_S
    logs_deadline: float | None = None
    while loop.time() < deadline:
        row = await services.fetchrow(_FOLLOW_SQL, execution_id)
        # A task run's change (a retry, a parallel branch ending) moves only its own row's
        # seq: the follower is told of those too, so its task table never freezes.
        if row is not None and row["follow_seq"] != last_seq:
            last_seq = row["follow_seq"]
            out = masked_execution(services, execution_from_row(row))
            yield _sse("execution", out.model_dump(mode="json"))
        logs = await services.fetch(
            "SELECT * FROM logs WHERE execution_id = $1"
            " AND ($2::timestamptz IS NULL OR (ts, log_id) > ($2, $3))"
            " ORDER BY ts, log_id LIMIT 1000",
            execution_id,
            last_log[0] if last_log else None,
            last_log[1] if last_log else "",
        )
        for r in logs:
            yield _sse("log", masked_log(services, log_from_row(r)).model_dump(mode="json"))
        if logs:
            last_log = (logs[-1]["ts"], logs[-1]["log_id"])
            continue  # there may be more lines waiting
        if row is not None and row["state"] in _TERMINAL:
            if logs_deadline is None:
                logs_deadline = loop.time() + FOLLOW_LOGS_GRACE_S
            missing = await services.fetchrow(_ATTEMPTS_MISSING_LOGS, execution_id)
            if not missing[0] or loop.time() >= logs_deadline:
                yield _sse("end", {"executionId": execution_id, "state": row["state"]})
                return
        await asyncio.sleep(FOLLOW_POLL_S)
