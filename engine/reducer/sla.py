"""Flow SLAs (Kestra 0.20 ``models/flows/sla/**``, ``services/SLAService``,
``ExecutorService.handleExecutionChangedSLA``/``processViolation``, ``JdbcExecutor``'s SLA
monitors).

- ``MAX_DURATION`` (``duration``): when the execution starts, a timer is armed at (creation
  + ``duration``); if the execution is still not over when it fires, the SLA is violated with
  the reason "execution duration of <d> exceed the maximum duration of <duration>.".
- ``EXECUTION_ASSERTION`` (``assert``): on every change of a running execution, ``assert`` is
  rendered with the execution's variables; a result that is not truthy (``false``, ``0``,
  ``-0``, blank) violates it: "assertion is false: <assert>.". Only the first violated
  assertion acts; the others are only logged. An assertion that does not render is logged
  "Ignoring SLA '<id>' because of the error: <message>" (ERROR) and does not act: Kestra
  ignores it, the execution goes on.

A violation logs "SLA '<id>' violated: <reason>" (WARN), then by ``behavior``:

- ``FAIL`` logs "Execution failed due to SLA '<id>' violated: <reason>" (ERROR) and ends the
  execution FAILED; ``CANCEL`` ends it CANCELLED. Either way the last unfinished task run
  takes that state, the others are KILLED and their jobs (and child executions) stopped.
- ``NONE`` changes nothing.
- the SLA's ``labels`` are added to the execution in every case (when not all there yet).
"""

from __future__ import annotations

from typing import Any

from engine.reducer.context import FLOWABLES, Ctx
from engine.reducer.flow_subflow import kill_child
from engine.reducer.ids import make_id, parse_duration, seconds_between
from engine.reducer.model import JSON, Timer
from engine.reducer.states import State
from schemas.flow.common import format_duration

MAX_DURATION = "MAX_DURATION"
EXECUTION_ASSERTION = "EXECUTION_ASSERTION"
# TruthUtils.FALSE_VALUES
_FALSE = frozenset({"false", "0", "-0", ""})
_ENDINGS = {"FAIL": State.FAILED, "CANCEL": State.CANCELLED}


def _slas(flow: JSON) -> list[JSON]:
    items = flow.get("sla")
    return [s for s in items if isinstance(s, dict)] if isinstance(items, list) else []


def arm(ctx: Ctx) -> None:
    """Arm the MAX_DURATION timers of a starting execution (deadline from its creation)."""
    st = ctx.state
    for sla in _slas(st.flow):
        kind = str(sla.get("type", "")).upper()
        if kind == EXECUTION_ASSERTION:
            continue  # checked on every change (check_assertions)
        if kind != MAX_DURATION:
            ctx.log("WARN", f"SLA '{sla.get('id')}' of type {kind} is not enforced by Headwater")
            continue
        try:
            limit = parse_duration(sla.get("duration"))
        except ValueError as exc:
            ctx.log("ERROR", f"Ignoring SLA '{sla.get('id')}' because of the error: {exc}")
            continue
        elapsed = seconds_between(st.history[0][1], ctx.now)
        ctx.arm(
            make_id("sla", st.execution_id, sla.get("id")),
            max(limit - elapsed, 0.0),
            "sla",
            {"sla": sla.get("id")},
        )


def on_timer(ctx: Ctx, timer: Timer) -> State | None:
    """A MAX_DURATION deadline passed: violate the SLA unless the execution is over.
    Returns the state the execution must now end in (the caller ends it), if any."""
    st = ctx.state
    if st.state.is_terminal:
        return None
    sla = next((s for s in _slas(st.flow) if s.get("id") == timer.data.get("sla")), None)
    if sla is None:
        return None
    elapsed = seconds_between(st.history[0][1], ctx.now)
    reason = (
        f"execution duration of {format_duration(elapsed)} exceed the maximum duration of "
        f"{format_duration(parse_duration(sla.get('duration')))}."
    )
    return violate(ctx, sla, reason)


def check_assertions(ctx: Ctx) -> State | None:
    """ExecutorService.handleExecutionChangedSLA: the state the execution must now end in
    (the caller ends it), if the first violated assertion says so."""
    st = ctx.state
    if st.state.is_terminal:
        return None
    assertions = [
        s for s in _slas(st.flow) if str(s.get("type", "")).upper() == EXECUTION_ASSERTION
    ]
    if not assertions:
        return None
    variables = ctx.variables(None)
    violated: list[JSON] = []
    for sla in assertions:
        try:
            result = ctx.renderer.render(sla.get("assert"), variables)
        except Exception as exc:
            message = getattr(exc, "message", exc)
            ctx.log("ERROR", f"Ignoring SLA '{sla.get('id')}' because of the error: {message}")
            continue
        if result is None or str(result) in _FALSE:
            violated.append(sla)
    for sla in violated[1:]:
        ctx.log("WARN", f"SLA '{sla.get('id')}' violated: assertion is false: {sla.get('assert')}.")
    if not violated:
        return None
    return violate(ctx, violated[0], f"assertion is false: {violated[0].get('assert')}.")


def violate(ctx: Ctx, sla: JSON, reason: str) -> State | None:
    """Log, label, and stop every unfinished task run; the execution's ending, if any."""
    st = ctx.state
    sla_id = sla.get("id")
    ctx.log("WARN", f"SLA '{sla_id}' violated: {reason}")
    _add_labels(ctx, sla.get("labels"))
    ending = _ENDINGS.get(str(sla.get("behavior", "NONE")).upper())
    if ending is None:
        return None
    if ending == State.FAILED:
        ctx.log("ERROR", f"Execution failed due to SLA '{sla_id}' violated: {reason}")
    unfinished = [r for r in st.task_runs.values() if not r.state.is_terminal]
    for index, run in enumerate(reversed(unfinished)):
        if FLOWABLES.get(run.type) is not None:
            if run.data.get("child"):
                kill_child(ctx, run)
        else:
            ctx.stop(run, "sla")
            attempt = run.attempts[-1] if run.attempts else None
            if attempt is not None and not attempt.state.is_terminal:
                attempt.state = State.KILLED
                attempt.history.append([State.KILLED.value, ctx.now])
        ctx.cancel_for(run)
        # Kestra marks the last unfinished task run like the execution; the kill that
        # follows ends the others.
        ctx.set_state(run, ending if index == 0 else State.KILLED)
    return ending


def _add_labels(ctx: Ctx, labels: Any) -> None:
    if isinstance(labels, dict):
        pairs = list(labels.items())
    elif isinstance(labels, list):
        pairs = [(e.get("key"), e.get("value")) for e in labels if isinstance(e, dict)]
    else:
        return
    for key, value in pairs:
        text = value if isinstance(value, str) else str(value)
        if ctx.state.labels.get(str(key)) != text:
            ctx.state.labels[str(key)] = text
            ctx.dirty_exec = True
