"""Webhook trigger: the pure part the API's webhook route (and the conformance runner) call.

``POST|GET|PUT /api/v1/executions/webhook/{namespace}/{flowId}/{key}`` does::

    trigger = find_webhook(flow, key)                # None -> 404
    result = webhook_start(namespace, flow_id, flow, trigger, body=raw_bytes,
                           headers=..., parameters=..., now=now,
                           enabled=toggled_state)    # triggers.state: toggles win over YAML
    result.status                                    # Kestra's answer, see WebhookResult
    result.command                                   # the StartExecution to produce (if any)

Kestra's behaviour, reproduced here once for every caller:

- the key is a template rendered with the flow's variables (``key: "{{ flow.id }}"``), trimmed,
  and compared in constant time against every Webhook trigger of the flow;
- trigger variables: ``trigger.body`` (a JSON object or array is parsed, anything else stays
  text; no body is null), ``trigger.headers`` and ``trigger.parameters`` (name -> list of
  values); the execution's ``trigger`` is ``{id, type, variables}`` (Kestra's
  ExecutionTrigger). Kestra keeps header names as the client sent them; an ASGI server hands
  them over lower-cased, so names are restored to their canonical form (``Content-Type``,
  ``X-Request-Id``), which is what HTTP/1.1 clients send. The caller's credentials
  (Authorization, Cookie) never travel into the execution, whose state is stored;
- the trigger's ``conditions`` (Expression conditions over ``trigger.*``) must hold, and its
  Kestra 2.0 ``when`` (rendered with ``trigger.body``/``headers``/``parameters``) be truthy,
  else no execution and HTTP 204; a disabled flow or trigger answers like an unknown key (404);
- the trigger's ``inputs`` are rendered with ``trigger.*`` and validated against the flow's
  declared inputs as any API-created execution's are; a failure is a 422, never an execution;
- ours: a JSON body nested deeper than ``triggers.payloads.MAX_JSON_DEPTH`` is a 422
  "Unprocessable webhook body" (the API answers the same if a StartExecution cannot be
  encoded for any other reason), never a 500.

A webhook call has no broker coordinates, so its execution id is new per call unless the caller
sends an ``Idempotency-Key`` header: then the id derives from it and a retried call starts
nothing new (the executor ignores a second StartExecution of the same id).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from engine.errors import ExpressionError
from engine.expressions import render
from engine.flows.inputs import InputValidationError, flow_default_renderer, resolve_inputs
from engine.reducer.commands import StartExecution
from schemas.envelope import new_id
from triggers.conditions import condition_scope, simple_holds, when_holds
from triggers.model import WEBHOOK, TriggerRef
from triggers.payloads import MalformedPayload, loads_json
from triggers.start import build_start, labels_of

JSON = dict[str, Any]

IDEMPOTENCY_HEADER = "idempotency-key"
# Credentials of the caller never become trigger variables (they would land in the state).
HIDDEN_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})

# Kestra's answers (ExecutionController / Webhook.evaluate).
STARTED = 200
CONDITIONS_NOT_MET = 204
NOT_FOUND = 404
INVALID_INPUTS = 422
# Ours: a body that decodes but cannot travel as an execution (JSON nested past
# triggers.payloads.MAX_JSON_DEPTH). 422, not 413: the body is refused for its shape, not its
# size (a 300-byte body can be 150 levels deep).
UNPROCESSABLE_BODY = 422
BODY_TITLE = "Unprocessable webhook body"


def _rendered_key(trigger: JSON, flow: JSON) -> str | None:
    """The trigger's key with the flow's variables rendered (None when it cannot render)."""
    raw = str(trigger.get("key", ""))
    if "{{" not in raw and "{%" not in raw:
        return raw.strip()
    scope = {
        "flow": {
            "id": flow.get("id"),
            "namespace": flow.get("namespace"),
            "revision": flow.get("revision"),
        },
        "labels": labels_of(flow.get("labels")),
        "vars": flow.get("variables") or {},
    }
    try:
        return str(render(raw, scope)).strip()
    except ExpressionError:
        return None  # Kestra ignores a webhook whose key does not render


def find_webhook(flow: JSON, key: str) -> JSON | None:
    """The flow's first Webhook trigger whose rendered ``key`` equals ``key`` (None if none).

    Every webhook trigger is compared, in constant time and without an early exit, so the
    answer's timing says nothing about how much of a key was right."""
    found: JSON | None = None
    wanted = key.encode()
    for trigger in flow.get("triggers") or []:
        if not isinstance(trigger, dict) or trigger.get("type") != WEBHOOK:
            continue
        expected = _rendered_key(trigger, flow)
        if expected is None:
            continue
        if hmac.compare_digest(expected.encode(), wanted) and found is None:
            found = dict(trigger)
    return found


def parse_body(body: bytes) -> Any:
    """A JSON object or array becomes data; anything else (a JSON scalar too) stays text, as
    Kestra's Webhook does. Undecodable bytes are replaced, never an error.

    JSON nested deeper than ``MAX_JSON_DEPTH`` raises MalformedPayload: it could not travel as
    an execution, and passing it on as text would hide a caller's mistake behind an execution
    whose ``trigger.body`` is suddenly a string (webhook_start answers 422)."""
    if not body:
        return None
    try:
        value = loads_json(body, "the JSON body")
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict | list):
        return value
    return body.decode("utf-8", "replace")


def canonical_header(name: str) -> str:
    """``content-type`` -> ``Content-Type``: the form HTTP/1.1 clients send."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _multi(values: dict[str, Any] | list[tuple[str, Any]], *, headers: bool = False) -> JSON:
    out: dict[str, list[str]] = {}
    items = values.items() if isinstance(values, dict) else values
    for name, value in items:
        key = canonical_header(str(name)) if headers else str(name)
        if headers and key.lower() in HIDDEN_HEADERS:
            continue
        for v in value if isinstance(value, list) else [value]:
            out.setdefault(key, []).append(str(v))
    return out


def variables(
    body: bytes,
    headers: dict[str, Any] | list[tuple[str, Any]],
    parameters: dict[str, Any] | list[tuple[str, Any]],
) -> JSON:
    """The ``trigger.*`` variables of one call. Header names take their canonical form (see
    the module docstring); repeated names keep every value."""
    return {
        "body": parse_body(body),
        "headers": _multi(headers, headers=True),
        "parameters": _multi(parameters),
    }


@dataclass(frozen=True, slots=True)
class WebhookResult:
    """What one call does: ``status`` is Kestra's HTTP answer, ``command`` the execution to
    start (only with 200), ``reason`` why there is none, ``problems`` the input problems of a
    422 (each as ``InputProblem.to_dict()``), ``title`` the kind of a 422."""

    status: int
    command: StartExecution | None = None
    reason: str | None = None
    problems: list[JSON] = field(default_factory=list)
    title: str = "Invalid inputs"


def _idempotency_key(headers: dict[str, Any] | list[tuple[str, Any]]) -> str | None:
    items = headers.items() if isinstance(headers, dict) else headers
    for name, value in items:
        if str(name).lower() == IDEMPOTENCY_HEADER:
            first = value[0] if isinstance(value, list) and value else value
            return str(first) if first else None
    return None


def webhook_start(
    namespace: str,
    flow_id: str,
    flow: JSON,
    trigger: JSON,
    *,
    body: bytes,
    headers: dict[str, Any] | list[tuple[str, Any]],
    parameters: dict[str, Any] | list[tuple[str, Any]],
    now: datetime,
    enabled: bool | None = None,
) -> WebhookResult:
    """The StartExecution of one webhook call, or Kestra's answer for why there is none.

    ``enabled`` is the trigger's toggled state (None: never toggled, follow the YAML)."""
    if flow.get("disabled") is True:
        return WebhookResult(NOT_FOUND, reason=f"flow {namespace}/{flow_id} is disabled")
    yaml_enabled = trigger.get("disabled") is not True
    if not (yaml_enabled if enabled is None else enabled):
        return WebhookResult(NOT_FOUND, reason=f"webhook trigger {trigger.get('id')!r} is disabled")
    try:
        data = variables(body, headers, parameters)
    except MalformedPayload as exc:
        return WebhookResult(UNPROCESSABLE_BODY, reason=str(exc), title=BODY_TITLE)
    scope = condition_scope({"id": flow_id, "namespace": namespace}, None, data)
    for condition in trigger.get("conditions") or []:
        if not simple_holds(condition, None, scope):
            return WebhookResult(
                CONDITIONS_NOT_MET, reason=f"condition {condition.get('type')} is not met"
            )
    if not when_holds(trigger, scope):
        return WebhookResult(CONDITIONS_NOT_MET, reason="the trigger's `when` is not met")
    key = _idempotency_key(headers)
    coordinates = f"webhook-key-{key}" if key else f"webhook-{new_id()}"
    ref = TriggerRef(namespace, flow_id, str(trigger.get("id")))
    cmd, problem = build_start(ref, flow, trigger, coordinates, data, now)
    if problem is not None:
        return WebhookResult(INVALID_INPUTS, reason=problem)
    try:
        cmd.inputs = resolve_inputs(
            flow.get("inputs"),
            cmd.inputs,
            mode="typed",
            render_default=flow_default_renderer(flow),
            flow_id=flow_id,
        )
    except InputValidationError as exc:
        return WebhookResult(
            INVALID_INPUTS, reason=exc.message, problems=[p.to_dict() for p in exc.problems]
        )
    return WebhookResult(STARTED, cmd)
