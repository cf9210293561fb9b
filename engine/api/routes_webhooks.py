"""Webhook triggers: ``/api/v1/executions/webhook/{namespace}/{flowId}/{key}``.

The HTTP shell around :mod:`triggers.webhook`, which owns everything Kestra specifies (key
rendering and constant-time matching, trigger variables, conditions, inputs, the execution id
and its ``Idempotency-Key``). This module adds what only the API knows: the flow's current
revision (the hw.flows follower), the trigger's toggled state (the read model's ``triggers``
row), and the answer:

- 200 with the created execution (as ``POST /executions`` answers);
- 204 and no execution when the trigger's conditions do not hold (Kestra's answer);
- 404 for an unknown flow, a wrong key, a disabled flow or trigger — one answer for all, so a
  caller learns nothing about which part was wrong;
- 422 when the trigger's inputs do not render or do not match the flow's inputs, and 422
  "Unprocessable webhook body" for a JSON body nested deeper than
  ``triggers.payloads.MAX_JSON_DEPTH`` (or any call whose StartExecution cannot be encoded):
  422 rather than 413 because the shape is refused, not the size.

These routes skip API authentication: the key is the credential.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.encoders import jsonable_encoder

from engine.api.models import ExecutionCreated, ExecutionOut, labels_to_list
from engine.api.problems import ProblemError, problem_responses
from engine.api.routes_executions import until_ended
from engine.api.services import ApiServices
from engine.bus.wire import command_record
from engine.errors import DatabaseError, ExpressionError, HeadwaterError
from engine.expressions import render
from engine.projector.rows import mask_inputs, secret_input_ids
from engine.reducer.states import State
from schemas.envelope import EnvelopeError
from triggers import webhook as hook
from triggers.state import fired_record

log = logging.getLogger(__name__)

# A webhook's "last fired" is recorded at most this often per trigger (seconds).
FIRED_NOTE_EVERY_S = 1.0

# The toggle lookup reads the read model; a webhook must not hang on a slow database, and
# without an answer the trigger follows its YAML (see _toggled).
TOGGLE_LOOKUP_S = 1.0

_TOGGLE_SQL = (
    "SELECT enabled FROM triggers WHERE namespace = $1 AND flow_id = $2 AND trigger_id = $3"
)
_NOT_FOUND = ("Webhook not found", "no webhook with this flow and key")


async def _toggled(services: ApiServices, namespace: str, flow_id: str, trigger_id: str) -> Any:
    """The trigger's enabled flag as the read model has it (toggles from the API or the Toggle
    task, else the YAML), or None when the database does not answer in time: the YAML then
    decides, so a database outage does not stop webhooks (writes need only Kafka)."""
    # A task we stop waiting for, not one we cancel: cancelling could interrupt the pool's
    # first connection and migration, which the next request would then start again.
    lookup = asyncio.ensure_future(services.fetchrow(_TOGGLE_SQL, namespace, flow_id, trigger_id))
    lookup.add_done_callback(_settled)
    done, _ = await asyncio.wait({lookup}, timeout=TOGGLE_LOOKUP_S)
    if not done:
        log.warning(
            "webhook %s/%s/%s: toggle state unknown (no answer in %ss)",
            namespace,
            flow_id,
            trigger_id,
            TOGGLE_LOOKUP_S,
        )
        return None
    try:
        row = lookup.result()
    except DatabaseError as exc:
        log.warning(
            "webhook %s/%s/%s: toggle state unknown (%s)",
            namespace,
            flow_id,
            trigger_id,
            exc.message,
        )
        return None
    return None if row is None else bool(row["enabled"])


def _settled(task: asyncio.Future[Any]) -> None:
    """Retrieve a late lookup's failure so that it is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()


def _flag(value: Any) -> bool:
    """A Boolean trigger property (Kestra's ``wait`` and ``returnOutputs`` are plain Booleans)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def waited_response(trigger: dict[str, Any], ended: ExecutionOut) -> Response:
    """Kestra's answer to a ``wait: true`` webhook once its execution ended (``Webhook.evaluate``).

    The status is ``responseCode`` (rendered with the execution's flow, execution, inputs and
    task outputs) or else 500 when the execution FAILED and 200 otherwise. The body is the
    execution (as GET shows it), or with ``returnOutputs: true`` the flow's outputs (a map) as
    JSON, also under ``responseContentType: text/plain`` (Kestra writes a map as JSON text).
    """
    status = _response_code(trigger.get("responseCode"), ended)
    if not _flag(trigger.get("returnOutputs")):
        return Response(_json(ended), status_code=status, media_type="application/json")
    outputs = ended.outputs if ended.outputs is not None else {}
    text = str(trigger.get("responseContentType") or "").strip().lower() == "text/plain"
    media = "text/plain" if text else "application/json"
    return Response(_json(outputs), status_code=status, media_type=media)


def _json(value: Any) -> bytes:
    return orjson.dumps(jsonable_encoder(value, exclude_none=False))


def _response_code(spec: Any, ended: ExecutionOut) -> int:
    default = 500 if ended.state.current == State.FAILED.value else 200
    if spec is None or spec == "":
        return default
    scope = {
        "flow": {"id": ended.flowId, "namespace": ended.namespace, "revision": ended.flowRevision},
        "execution": {"id": ended.id, "state": ended.state.current},
        "inputs": ended.inputs,
        "labels": {label.key: label.value for label in ended.labels},
        "outputs": {
            run.taskId: run.outputs
            for run in ended.taskRunList or []
            if run.value is None and run.outputs
        },
    }
    try:
        code = int(str(render(spec, scope) if isinstance(spec, str) else spec).strip())
    except (ExpressionError, ValueError) as exc:
        log.warning("webhook of %s: responseCode %r is not a status code (%s)", ended.id, spec, exc)
        return default
    if not 100 <= code <= 599:
        log.warning("webhook of %s: responseCode %d is not an HTTP status", ended.id, code)
        return default
    return code


def router(services: ApiServices) -> APIRouter:
    api = APIRouter(
        prefix="/executions/webhook", tags=["webhooks"], responses=problem_responses(400, 413)
    )

    noted: dict[tuple[str, str, str], datetime] = {}

    async def _note_fired(
        namespace: str, flow_id: str, trigger: dict[str, Any], now: datetime
    ) -> None:
        """The trigger's "last fired", at most once per trigger per FIRED_NOTE_EVERY_S (a
        busy webhook must not double its records); a failure here never fails the call."""
        key = (namespace, flow_id, str(trigger.get("id")))
        last = noted.get(key)
        if last is not None and (now - last).total_seconds() < FIRED_NOTE_EVERY_S:
            return
        noted[key] = now
        kv = fired_record(*key, trigger_type=str(trigger.get("type", "")), now=now)
        try:
            await services.produce(services.topics.trigger_state.name, kv)
        except HeadwaterError as exc:
            log.warning("webhook %s/%s/%s: last fired not recorded: %s", *key, exc)

    async def webhook(
        namespace: str, flow_id: str, key: str, request: Request
    ) -> ExecutionCreated | Response:
        services.require_bus()
        record = services.store.record(namespace, flow_id)
        flow = record.flow if record is not None else None
        trigger = hook.find_webhook(flow, key) if flow is not None else None
        if record is None or flow is None or trigger is None:
            raise ProblemError(404, *_NOT_FOUND)
        enabled = await _toggled(services, namespace, flow_id, str(trigger.get("id")))
        now = datetime.now(UTC)
        result = hook.webhook_start(
            namespace,
            flow_id,
            flow,
            trigger,
            body=await request.body(),
            headers=list(request.headers.items()),
            parameters=list(request.query_params.multi_items()),
            now=now,
            enabled=enabled,
        )
        if result.status == hook.CONDITIONS_NOT_MET:
            return Response(status_code=204)
        if result.status == hook.NOT_FOUND:
            raise ProblemError(404, *_NOT_FOUND)
        if result.status == hook.INVALID_INPUTS or result.command is None:
            raise ProblemError(422, result.title, result.reason, errors=result.problems or None)
        command = result.command
        try:
            record_kv = command_record(command)
        except EnvelopeError as exc:  # accepted data that cannot travel: the caller's to fix
            raise ProblemError(422, hook.BODY_TITLE, exc.message) from None
        await services.produce(services.topics.commands.name, record_kv)
        services.commands_sent[command.type] = services.commands_sent.get(command.type, 0) + 1
        await _note_fired(namespace, flow_id, trigger, now)
        created = ExecutionCreated(
            id=command.execution_id,
            namespace=namespace,
            flowId=flow_id,
            flowRevision=record.revision,
            state=State.CREATED.value,
            inputs=mask_inputs(command.inputs, secret_input_ids(flow)),
            labels=labels_to_list(command.labels),
        )
        if not _flag(trigger.get("wait")):
            return created
        return waited_response(trigger, await until_ended(services, command.execution_id))

    for method in ("POST", "GET", "PUT"):
        api.add_api_route(
            "/{namespace}/{flow_id}/{key}",
            webhook,
            methods=[method],
            response_model=ExecutionCreated,
            summary=f"{method} to a flow's Webhook trigger: start an execution",
            responses={
                204: {"description": "The trigger's conditions do not hold: no execution."},
                500: {
                    "description": "With `wait: true`: the execution FAILED (its body as for "
                    "200; a `responseCode` replaces 200 and 500)."
                },
                **problem_responses(404, 413, 422, 503),
            },
            operation_id=f"webhook_{method.lower()}",
            openapi_extra={
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {"schema": {}},
                        "text/plain": {"schema": {"type": "string"}},
                    },
                }
            }
            if method != "GET"
            else None,
        )
    return api
