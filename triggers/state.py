"""Trigger state on hw.trigger-state: enabled flag, last fired, next date, last error.

Record format (compacted topic, key ``namespace/flow id/trigger id``, never change it): an
envelope of type ``TriggerState`` whose payload is a full snapshot::

    {"namespace": "ns", "flow_id": "f", "trigger_id": "t", "type": "<trigger type>",
     "enabled": true, "toggled_at": "2025-...Z" | null,
     "last_fired": "2025-...Z" | null, "next_date": "2025-...Z" | null,
     "last_error": "text" | null, "last_error_at": "2025-...Z" | null,
     "extra": {...}}

``extra`` holds source state (a schedule's ``last_date``, Flow trigger precondition windows).
The projector turns the latest record per key into the ``triggers`` row the API shows.

Several writers share a key: the runtime (firing, errors) and togglers (the REST API and the
``Toggle`` task, through :func:`set_enabled` / :func:`toggle_record`). Readers therefore
:func:`merge` snapshots field by field instead of taking the last one: ``enabled`` comes from
the snapshot with the latest ``toggled_at`` (a trigger never toggled follows its YAML
``disabled``), ``last_fired`` is the latest date, ``last_error`` the latest error. A toggle
record carries only the flag; the runtime answers it with a complete merged snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from engine.bus.producer import AsyncProducer
from engine.reducer.ids import iso
from schemas.envelope import Envelope, EnvelopeError, decode, encode
from triggers.model import TriggerRef

JSON = dict[str, Any]
KeyValue = tuple[bytes, bytes]

TRIGGER_STATE = "TriggerState"


@dataclass(slots=True)
class TriggerState:
    namespace: str
    flow_id: str
    trigger_id: str
    type: str = ""
    enabled: bool = True
    toggled_at: str | None = None
    last_fired: str | None = None
    next_date: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    extra: JSON = field(default_factory=dict)

    @property
    def ref(self) -> TriggerRef:
        return TriggerRef(self.namespace, self.flow_id, self.trigger_id)

    def to_payload(self) -> JSON:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_payload(cls, payload: JSON) -> TriggerState:
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in payload.items() if k in known}
        state = cls(**data)
        if not isinstance(state.extra, dict):
            state.extra = {}
        return state

    def effective_enabled(self, yaml_disabled: bool) -> bool:
        """A toggle wins over the flow's YAML; a trigger never toggled follows the YAML."""
        return self.enabled if self.toggled_at is not None else not yaml_disabled


def _later(a: str | None, b: str | None) -> bool:
    """Is b strictly later than a (None is the earliest)?"""
    return b is not None and (a is None or b > a)


def merge(current: TriggerState | None, incoming: TriggerState) -> TriggerState:
    """Combine two snapshots of one trigger, field by field (see the module docstring)."""
    if current is None:
        return replace(incoming, extra=dict(incoming.extra))
    out = replace(current, extra=dict(current.extra))
    if incoming.type:
        out.type = incoming.type
    if _later(current.toggled_at, incoming.toggled_at):
        out.enabled, out.toggled_at = incoming.enabled, incoming.toggled_at
    elif incoming.toggled_at is None and current.toggled_at is None:
        out.enabled = incoming.enabled
    if not _later(incoming.last_fired, current.last_fired):
        out.last_fired = incoming.last_fired or current.last_fired
        out.next_date = incoming.next_date or current.next_date
    if _later(current.last_error_at, incoming.last_error_at):
        out.last_error, out.last_error_at = incoming.last_error, incoming.last_error_at
    if incoming.extra:
        out.extra.update(incoming.extra)
    return out


def state_record(state: TriggerState, *, occurred: datetime | None = None) -> KeyValue:
    env = Envelope.new(
        TRIGGER_STATE, "", 0, state.to_payload(), occurred=occurred or datetime.now(UTC)
    )
    return state.ref.key.encode(), encode(env)


def decode_state(value: bytes) -> TriggerState:
    env = decode(value)
    if env.type != TRIGGER_STATE:
        raise EnvelopeError(f"unexpected envelope type {env.type!r} on hw.trigger-state")
    try:
        return TriggerState.from_payload(env.payload)
    except (TypeError, ValueError) as exc:
        raise EnvelopeError(f"invalid TriggerState envelope {env.id}: {exc!r}") from None


def toggle_record(
    namespace: str,
    flow_id: str,
    trigger_id: str,
    enabled: bool,
    *,
    now: datetime | None = None,
    trigger_type: str = "",
) -> KeyValue:
    """The record that enables or disables a trigger (what the API and Toggle task send)."""
    when = now or datetime.now(UTC)
    state = TriggerState(
        namespace, flow_id, trigger_id, trigger_type, enabled=enabled, toggled_at=iso(when)
    )
    return state_record(state, occurred=when)


def fired_record(
    namespace: str, flow_id: str, trigger_id: str, *, trigger_type: str, now: datetime
) -> KeyValue:
    """A webhook trigger fired (the API starts webhook executions: no trigger source runs
    for them to record it). Carries no toggle, so readers keep the trigger's flag."""
    state = TriggerState(namespace, flow_id, trigger_id, trigger_type, last_fired=iso(now))
    return state_record(state, occurred=now)


async def set_enabled(
    producer: AsyncProducer,
    topic: str,
    namespace: str,
    flow_id: str,
    trigger_id: str,
    enabled: bool,
    *,
    now: datetime | None = None,
) -> None:
    """Enable or disable a trigger; returns once the toggle is durably on ``topic``
    (``topics_for(settings.kafka).trigger_state.name``). Running trigger runtimes start or
    stop the trigger's source when they read it."""
    key, value = toggle_record(namespace, flow_id, trigger_id, enabled, now=now)
    await producer.produce(topic, key, value)


class StateTable:
    """The merged state of every trigger, from hw.trigger-state records (pure)."""

    def __init__(self) -> None:
        self.states: dict[str, TriggerState] = {}

    def apply(self, incoming: TriggerState) -> tuple[TriggerState, bool]:
        """Merge a record in; returns the new state and whether ``enabled`` changed."""
        key = incoming.ref.key
        before = self.states.get(key)
        after = merge(before, incoming)
        self.states[key] = after
        changed = before is None or (before.enabled, before.toggled_at) != (
            after.enabled,
            after.toggled_at,
        )
        return after, changed

    def get(self, ref: TriggerRef) -> TriggerState | None:
        return self.states.get(ref.key)
