"""Polling triggers as plugins: a trigger type is one class, as a task type is.

Kestra's ``PollingTriggerInterface``: every ``interval`` the trigger is evaluated, and an
evaluation either starts one execution or nothing. Here a :class:`PollingTrigger` is a pydantic
model of the trigger's properties (Kestra's names and defaults) with a ``type`` literal and an
async :meth:`PollingTrigger.poll`, found like task plugins (:mod:`schemas.plugins`)::

    class Trigger(PollingTrigger):
        '''Start an execution when objects appear in a bucket.'''

        family: ClassVar[str] = "aws"
        type: Literal["io.kestra.plugin.aws.s3.Trigger"]
        bucket: Str

        async def poll(self, ctx: PollContext) -> Poll | None:
            ...  # list, choose, ctx.bind(coordinates), download into ctx.task.storage
            return Poll(coordinates, {"objects": [...]}, after=move_them)

The trigger runtime (:mod:`triggers.polling`) runs ``poll`` every ``interval``; a returned
:class:`Poll` becomes one StartExecution whose ``trigger`` variables are ``Poll.variables`` and
whose id derives from ``Poll.coordinates`` (:mod:`triggers.ids`): the same input polled again
(after a crash before its ``after`` ran) is the same execution, which starts nothing new.
``Poll.after`` (Kestra's MOVE / DELETE action, the state write) runs only once the
StartExecution is durably in Kafka, so a file is never moved away before its execution exists;
``Poll.discard`` runs instead when it could not be (or the source stopped first). A realtime
trigger built on polling (one execution per message) returns a list of Polls: all are fired,
and once every one is durable each ``after`` runs, in order.

``ctx.task`` is a :class:`~executors.base.TaskContext` for rendering (``secret()``, ``kv()``,
``read()``), logging (secrets masked) and, after :meth:`PollContext.bind`, internal storage:
files stored then live under the execution's trigger folder
(``kestra:///<ns>/<flow>/executions/<id>/trigger/<trigger id>/<file>``, as in Kestra).

Kestra's ``StatefulTriggerInterface`` (``on``, ``stateKey``, ``stateTtl``) is here too:
:func:`read_state` / :func:`write_state` keep the entries ``{uri, version, modifiedAt,
lastSeenAt}`` as a list in the namespace KV store under ``<namespace>_<flow>_<trigger>``
(Kestra's default key), and :func:`compute_and_update` is Kestra's
``computeAndUpdateState``: a new URI fires on CREATE, a changed version on UPDATE.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from executors.base import KVStore, Storage, TaskContext, TaskError, iso_millis
from executors.plugin import PluginType, render_str
from schemas.flow.common import Duration, Labels
from schemas.flow.trigger_base import TriggerBase
from triggers.ids import execution_id

On = Literal["CREATE", "UPDATE", "CREATE_OR_UPDATE"]
_ON_VALUES: tuple[On, ...] = ("CREATE", "UPDATE", "CREATE_OR_UPDATE")


@dataclass(slots=True)
class Poll:
    """What one evaluation found: one execution to start."""

    coordinates: str
    variables: dict[str, Any]
    # Run once the StartExecution is durable (MOVE / DELETE, the state write).
    after: Callable[[], Awaitable[None]] | None = None
    # Run instead of ``after`` when the StartExecution could not be made durable (a held
    # database transaction is rolled back).
    discard: Callable[[], Awaitable[None]] | None = None


@dataclass(slots=True)
class PollContext:
    """What a polling trigger can reach (built by the trigger runtime for each poll)."""

    task: TaskContext
    namespace: str
    flow_id: str
    trigger_id: str
    kv: KVStore | None = None
    # execution id -> internal storage of that execution's trigger files.
    storage_for: Callable[[str], Storage] | None = None
    # The execution id bound by bind(), once known.
    execution: str | None = field(default=None)

    def bind(self, coordinates: str) -> str:
        """Bind the poll to the execution ``coordinates`` will start; its id. From then on
        ``task.storage`` stores files in that execution's trigger folder."""
        exec_id = execution_id(self.namespace, self.flow_id, self.trigger_id, coordinates)
        self.execution = exec_id
        self.task.execution_id = exec_id
        if self.storage_for is not None:
            self.task.storage = self.storage_for(exec_id)
        return exec_id


class PollingTrigger(PluginType, TriggerBase):
    """Base of every polling trigger type; see the module docstring."""

    # Kestra's default ``interval`` of the type.
    default_interval_s: ClassVar[float] = 60.0

    interval: Duration | None = None
    labels: Labels | None = None
    inputs: dict[str, Any] | None = None

    def interval_seconds(self) -> float:
        """The poll period: ``interval`` (an ISO-8601 duration), else the type's default."""
        if self.interval is None:
            return self.default_interval_s
        from schemas.flow.common import parse_duration

        seconds = parse_duration(str(self.interval)).total_seconds()
        return seconds if seconds > 0 else self.default_interval_s

    async def poll(self, ctx: PollContext) -> Poll | list[Poll] | None:
        raise NotImplementedError


# ---------------------------------------------------------------- Kestra's stateful triggers


@dataclass(slots=True)
class Entry:
    """One watched object as remembered between polls (Kestra's ``Entry``)."""

    uri: str
    version: str
    modified_at: str | None
    last_seen_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "version": self.version,
            "modifiedAt": self.modified_at,
            "lastSeenAt": self.last_seen_at,
        }


@dataclass(slots=True)
class StateSpec:
    """The rendered ``on`` / ``stateKey`` / ``stateTtl`` of one trigger."""

    on: On
    key: str
    ttl_s: float | None


def state_spec(trigger: PollingTrigger, ctx: PollContext, on: Any, key: Any, ttl: Any) -> StateSpec:
    rendered_on = (render_str(ctx.task, on, "on") or "CREATE_OR_UPDATE").strip().upper()
    if rendered_on not in _ON_VALUES:
        raise TaskError(f"property 'on': {rendered_on!r} is not one of {', '.join(_ON_VALUES)}")
    state_key = render_str(ctx.task, key, "stateKey") or "_".join(
        (ctx.namespace, ctx.flow_id, trigger.id)
    )
    ttl_s: float | None = None
    if ttl is not None:
        from executors.plugin import render_seconds

        ttl_s = render_seconds(ctx.task, ttl, "stateTtl")
    return StateSpec(rendered_on, state_key, ttl_s)


async def read_state(ctx: PollContext, spec: StateSpec) -> dict[str, Entry]:
    """The remembered entries by URI (those last seen within ``stateTtl``)."""
    if ctx.kv is None:
        raise TaskError("this trigger needs the KV store to remember what it already fired")
    found, value = await ctx.kv.get(ctx.namespace, spec.key)
    if not found or not isinstance(value, list):
        return {}
    cutoff = ctx.task.clock() - timedelta(seconds=spec.ttl_s) if spec.ttl_s else None
    out: dict[str, Entry] = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("uri"), str):
            continue
        seen = item.get("lastSeenAt")
        if cutoff is not None and isinstance(seen, str) and _parse(seen) <= cutoff:
            continue
        out[item["uri"]] = Entry(
            item["uri"], str(item.get("version")), item.get("modifiedAt"), seen
        )
    return out


async def write_state(ctx: PollContext, spec: StateSpec, state: dict[str, Entry]) -> None:
    if ctx.kv is None:
        return
    await ctx.kv.set(
        ctx.namespace,
        spec.key,
        [entry.to_json() for entry in state.values()],
        overwrite=True,
        ttl_seconds=spec.ttl_s,
    )


def should_fire(previous: Entry | None, version: str, on: On) -> bool:
    if previous is None:
        return on in ("CREATE", "CREATE_OR_UPDATE")
    if previous.version != version:
        return on in ("UPDATE", "CREATE_OR_UPDATE")
    return False


def compute_and_update(
    state: dict[str, Entry], candidate: Entry, on: On, now: datetime
) -> tuple[bool, bool]:
    """Kestra's ``computeAndUpdateState``: (fire, is new); ``state`` learns the candidate."""
    previous = state.get(candidate.uri)
    is_new = previous is None
    fire = should_fire(previous, candidate.version, on)
    if fire or is_new or previous is None or previous.last_seen_at is None:
        seen = iso_millis(now)
    else:
        seen = previous.last_seen_at
    state[candidate.uri] = Entry(candidate.uri, candidate.version, candidate.modified_at, seen)
    return fire, is_new


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


__all__ = [
    "Entry",
    "On",
    "Poll",
    "PollContext",
    "PollingTrigger",
    "StateSpec",
    "compute_and_update",
    "read_state",
    "should_fire",
    "state_spec",
    "write_state",
]
