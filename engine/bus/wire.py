"""The one place that maps domain objects to bus records and back.

Every record is a :mod:`schemas.envelope` envelope (``encode`` / ``decode``). Record keys are
UTF-8 bytes. What each topic carries:

=====================  ========================  ==============================================
topic                  key                       envelope type -> payload
=====================  ========================  ==============================================
hw.commands            execution id              the command's ``type`` (StartExecution,
                                                 TaskStarted, TaskResult, ...) ->
                                                 ``command.to_dict()``; seq 0
hw.events              execution id              ``Event.type`` (ExecutionUpdated,
                                                 TaskRunUpdated, LogEmitted) -> ``Event.payload``;
                                                 seq = ``Event.seq``, occurred = ``Event.occurred``;
                                                 "ExecutionPurged" -> {execution_id}: the
                                                 execution and its task runs are deleted
hw.jobs / hw.jobs.G    execution id              "Job" -> ``Job.to_dict()``; "StopJob" ->
                                                 ``StopJob.to_dict()`` (same key, same topic, so
                                                 a StopJob reaches the worker owning the job's
                                                 partition); jobs of worker group G go to
                                                 ``{prefix}jobs.{G}`` (:func:`jobs_topic`)
hw.logs                execution id              "LogLine" -> {log_id, execution_id, task_run_id,
                                                 task_id, attempt, level, message, timestamp};
                                                 "LogsPurged" -> {execution_id, levels (null:
                                                 all), start (null: any), end}: the lines of
                                                 that execution at those levels, in [start, end]
                                                 are deleted (PurgeLogs, PurgeExecutions)
hw.flows               namespace/flow id         "FlowDeployed" -> {namespace, id, revision,
                                                 source, flow, deployed_at}; "FlowDeleted" ->
                                                 {namespace, id, revision, deleted_at}
hw.executor-state      execution id              "ExecutionSnapshot" -> ``state.to_dict()``
                                                 (seq = state.seq); value None = purged
                       namespace/flow id         "AdmissionSlots" -> {namespace, flow_id, slots}
hw.admission           namespace/flow id         "AdmissionRequest" -> a StartExecution dict;
                                                 "AdmissionRelease" -> {namespace, flow_id,
                                                 execution_id, concurrency}
=====================  ========================  ==============================================

hw.admission and the AdmissionSlots snapshots on hw.executor-state share the key
``namespace/flow id``, and every topic has the same partition count, so they are co-partitioned:
whoever owns partition p of hw.admission finds its slots in partition p of hw.executor-state.

A StartExecution that the admission step has already decided carries ``"admission_decided":
true`` in its payload (ignored by :func:`command_from_dict`); the executor routes an undecided
StartExecution of a flow with ``concurrency`` to hw.admission first.

Idempotency keys never change format (they are stored in snapshots, Postgres rows and job
deduplication tables of running systems): the log id ``f"{task_run_id}:{attempt}:{n}"`` of a
worker's n-th line, ``f"{execution_id}:{seq}"`` of an event (and of the log line the executor
makes from a LogEmitted event), and the TimerFired command id from :func:`timer_command_id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from engine.bus.producer import OutRecord
from engine.bus.topics import Topics
from engine.reducer.commands import Command, StartExecution, command_from_dict
from engine.reducer.ids import iso, make_id
from engine.reducer.model import Event, ExecutionState, Job, StopJob
from schemas.envelope import SCHEMA_VERSION, Envelope, EnvelopeError, decode, encode, new_id

JSON = dict[str, Any]
KeyValue = tuple[bytes, bytes]

JOB = "Job"
STOP_JOB = "StopJob"
LOG_LINE = "LogLine"
LOGS_PURGED = "LogsPurged"
EXECUTION_PURGED = "ExecutionPurged"
FLOW_DEPLOYED = "FlowDeployed"
FLOW_DELETED = "FlowDeleted"
EXECUTION_SNAPSHOT = "ExecutionSnapshot"
ADMISSION_SLOTS = "AdmissionSlots"
ADMISSION_REQUEST = "AdmissionRequest"
ADMISSION_RELEASE = "AdmissionRelease"
ADMISSION_DECIDED = "admission_decided"


def _now() -> datetime:
    return datetime.now(UTC)


def _key(text: str) -> bytes:
    return text.encode()


def flow_key(namespace: str, flow_id: str) -> str:
    """The key of hw.flows and hw.admission records (never change the format)."""
    return f"{namespace}/{flow_id}"


# ----------------------------------------------------------------------------- commands


def command_record(
    cmd: Command, *, occurred: datetime | None = None, admission_decided: bool = False
) -> KeyValue:
    """(key, value) of a command on hw.commands."""
    payload = cmd.to_dict()
    if admission_decided:
        payload[ADMISSION_DECIDED] = True
    env = Envelope.new(cmd.type, cmd.execution_id, 0, payload, occurred=occurred or _now())
    return _key(cmd.execution_id), encode(env)


def decode_command(value: bytes) -> Command:
    return decode_command_envelope(value)[1]


def decode_command_envelope(value: bytes) -> tuple[Envelope, Command]:
    """The envelope (for its timestamp and admission flag) and the command inside it.

    Raises EnvelopeError for anything that is not a known command (a poison record)."""
    env = decode(value)
    try:
        return env, command_from_dict(env.payload)
    except (TypeError, ValueError, KeyError) as exc:
        raise EnvelopeError(
            f"{env.type} envelope {env.id} does not hold a valid command: {exc!r}",
            execution_id=env.execution_id or None,
        ) from None


def admission_decided(env: Envelope) -> bool:
    return bool(env.payload.get(ADMISSION_DECIDED))


def timer_command_id(execution_id: str, timer_id: str, fire_at: str) -> str:
    """Deterministic id of the TimerFired command for one arming of a timer: firing it twice
    (after a restart re-armed it) is a duplicate; re-arming at another time is a new firing.
    Never change the format."""
    return make_id("timer", execution_id, timer_id, fire_at)


# ------------------------------------------------------------------------------- events


def event_id(event: Event) -> str:
    """The idempotency key of an event (and of a log line made from it)."""
    return f"{event.execution_id}:{event.seq}"


def event_record(event: Event) -> KeyValue:
    # The hot path (several events per command): the reducer's time string is already the
    # wire format, so the envelope is written directly instead of parsed and re-formatted.
    env_id = event_id(event) if event.seq > 0 else new_id()
    return _key(event.execution_id), _fast_encode(
        env_id, event.type, event.execution_id, event.seq, event.occurred, event.payload
    )


def decode_event(value: bytes) -> Event:
    env = decode(value)
    return Event(env.type, env.execution_id, env.seq, _format_time(env.occurred), env.payload)


# --------------------------------------------------------------------------------- jobs


def jobs_topic(topics: Topics, group: str | None) -> str:
    """The topic of jobs for a worker group; the default group (None or "") uses hw.jobs.

    Group topics are created on first use (by the executor) with the same partition count."""
    if not group:
        return topics.jobs.name
    return f"{topics.jobs.name}.{group}"


def job_record(job: Job, *, occurred: datetime | None = None) -> KeyValue:
    return _key(job.execution_id), _fast_encode(
        new_id(), JOB, job.execution_id, 0, _format_time(occurred or _now()), job.to_dict()
    )


def stop_job_record(stop: StopJob, *, occurred: datetime | None = None) -> KeyValue:
    env = Envelope.new(STOP_JOB, stop.execution_id, 0, stop.to_dict(), occurred=occurred or _now())
    return _key(stop.execution_id), encode(env)


def decode_job(value: bytes) -> Job | StopJob:
    env = decode(value)
    p = env.payload
    try:
        if env.type == JOB:
            return Job.from_dict(p)
        if env.type == STOP_JOB:
            return StopJob(p["execution_id"], p["task_run_id"], int(p["attempt"]), p["reason"])
    except (KeyError, TypeError, ValueError) as exc:
        raise EnvelopeError(f"invalid {env.type} envelope {env.id}: {exc!r}") from None
    raise EnvelopeError(f"unexpected envelope type {env.type!r} on a jobs topic")


# --------------------------------------------------------------------------------- logs


def result_command_id(job: Job) -> str:
    """The TaskResult's command id: one per (task run, attempt), whoever runs it (a worker or
    the executor inline), so the reducer applies one result even when a job ran twice. Never
    change it."""
    return make_id("result", job.execution_id, job.task_run_id, job.attempt)


def worker_log_id(task_run_id: str, attempt: int, n: int) -> str:
    """Log id of a worker's n-th line of one attempt (never change the format)."""
    return f"{task_run_id}:{attempt}:{n}"


def log_record(
    *,
    log_id: str,
    execution_id: str,
    task_run_id: str | None,
    task_id: str | None,
    attempt: int | None,
    level: str,
    message: str,
    timestamp: str,
) -> KeyValue:
    payload: JSON = {
        "log_id": log_id,
        "execution_id": execution_id,
        "task_run_id": task_run_id,
        "task_id": task_id,
        "attempt": attempt,
        "level": level,
        "message": message,
        "timestamp": timestamp,
    }
    env = Envelope.new(LOG_LINE, execution_id, 0, payload, occurred=_parse_time(timestamp))
    return _key(execution_id), encode(env)


def logs_purged_record(
    execution_id: str,
    *,
    levels: list[str] | None,
    start: str | None,
    end: str,
    occurred: datetime | None = None,
) -> KeyValue:
    """The hw.logs record that purges lines of one execution (same key as its lines, so it
    comes after them in their partition; the projector also keeps it against later ones)."""
    payload: JSON = {"execution_id": execution_id, "levels": levels, "start": start, "end": end}
    env = Envelope.new(LOGS_PURGED, execution_id, 0, payload, occurred=occurred or _now())
    return _key(execution_id), encode(env)


def execution_purged_record(execution_id: str, seq: int, occurred: datetime) -> KeyValue:
    """The hw.events record that deletes an execution's rows from the read model."""
    payload: JSON = {"execution_id": execution_id}
    env = Envelope.new(EXECUTION_PURGED, execution_id, seq, payload, occurred=occurred)
    return _key(execution_id), encode(env)


def log_record_from_event(event: Event) -> KeyValue:
    """The hw.logs line of an executor-made LogEmitted event (its id is the event's id)."""
    p = event.payload
    return log_record(
        log_id=event_id(event) if event.seq > 0 else new_id(),
        execution_id=event.execution_id,
        task_run_id=p.get("task_run_id"),
        task_id=p.get("task_id"),
        attempt=p.get("attempt"),
        level=str(p.get("level", "INFO")),
        message=str(p.get("message", "")),
        timestamp=event.occurred,
    )


def decode_log(value: bytes) -> JSON:
    env = decode(value)
    if env.type != LOG_LINE:
        raise EnvelopeError(f"unexpected envelope type {env.type!r} on hw.logs")
    return env.payload


# -------------------------------------------------------------------------------- flows


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """A decoded hw.flows record: a deployed revision (``flow`` set) or a deletion."""

    namespace: str
    id: str
    revision: int
    deleted: bool
    source: str | None = None
    flow: JSON | None = None
    at: str | None = None
    # A draft revision (Kestra 2.0): kept and listed, never the revision that executes.
    draft: bool = False


def flow_deployed_record(
    namespace: str,
    flow_id: str,
    revision: int,
    source: str,
    flow: JSON,
    deployed_at: datetime | None = None,
    *,
    draft: bool = False,
) -> KeyValue:
    """A deployed revision; ``flow`` is the normalized engine dict (its revision is set).
    A ``draft`` revision is recorded but never executes."""
    when = deployed_at or _now()
    payload = {
        "namespace": namespace,
        "id": flow_id,
        "revision": revision,
        "source": source,
        "flow": {**flow, "revision": revision},
        "deployed_at": _format_time(when),
    }
    if draft:
        payload["draft"] = True
    env = Envelope.new(FLOW_DEPLOYED, "", revision, payload, occurred=when)
    return _key(flow_key(namespace, flow_id)), encode(env)


def flow_deleted_record(
    namespace: str, flow_id: str, revision: int, deleted_at: datetime | None = None
) -> KeyValue:
    when = deleted_at or _now()
    payload = {
        "namespace": namespace,
        "id": flow_id,
        "revision": revision,
        "deleted_at": _format_time(when),
    }
    env = Envelope.new(FLOW_DELETED, "", revision, payload, occurred=when)
    return _key(flow_key(namespace, flow_id)), encode(env)


def decode_flow(value: bytes) -> FlowRecord:
    env = decode(value)
    p = env.payload
    try:
        if env.type == FLOW_DEPLOYED:
            return FlowRecord(
                p["namespace"], p["id"], int(p["revision"]), False, p["source"], p["flow"],
                p.get("deployed_at"), bool(p.get("draft", False)),
            )  # fmt: skip
        if env.type == FLOW_DELETED:
            return FlowRecord(
                p["namespace"], p["id"], int(p["revision"]), True, at=p.get("deleted_at")
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise EnvelopeError(f"invalid {env.type} envelope {env.id}: {exc!r}") from None
    raise EnvelopeError(f"unexpected envelope type {env.type!r} on hw.flows")


# ------------------------------------------------------------------- executor state


def state_record(state: ExecutionState, *, occurred: datetime | None = None) -> KeyValue:
    payload = state.to_dict()
    payload["flow"] = _flow_json(state.flow)
    return _key(state.execution_id), _fast_encode(
        new_id(),
        EXECUTION_SNAPSHOT,
        state.execution_id,
        state.seq,
        _format_time(occurred or _now()),
        payload,
    )


# Flows -> their JSON. Every snapshot of an execution carries its (pinned) flow, which is
# often the biggest part of the snapshot and never changes: it is serialized once per flow
# dict (executions of one revision share it, see StateStore.intern_flow) and spliced in as
# an orjson Fragment. Keyed by identity, holding the flow so a recycled id never matches.
_FLOW_JSON: dict[int, tuple[JSON, orjson.Fragment]] = {}
FLOW_JSON_CACHE = 1024  # distinct flow dicts in use at once; cleared when full


def _flow_json(flow: JSON) -> orjson.Fragment | JSON:
    hit = _FLOW_JSON.get(id(flow))
    if hit is not None and hit[0] is flow:
        return hit[1]
    try:
        fragment = orjson.Fragment(orjson.dumps(flow))
    except TypeError:  # not JSON data: let the envelope's encoder report it
        return flow
    if len(_FLOW_JSON) >= FLOW_JSON_CACHE:
        _FLOW_JSON.clear()
    _FLOW_JSON[id(flow)] = (flow, fragment)
    return fragment


def slots_record(
    namespace: str, flow_id: str, slots: JSON, *, occurred: datetime | None = None
) -> KeyValue:
    payload = {"namespace": namespace, "flow_id": flow_id, "slots": slots}
    env = Envelope.new(ADMISSION_SLOTS, "", 0, payload, occurred=occurred or _now())
    return _key(flow_key(namespace, flow_id)), encode(env)


def decode_snapshot(value: bytes) -> tuple[str, Any]:
    """("execution", ExecutionState) or ("slots", payload) of a hw.executor-state record."""
    env = decode(value)
    try:
        if env.type == EXECUTION_SNAPSHOT:
            return "execution", ExecutionState.from_dict(env.payload)
        if env.type == ADMISSION_SLOTS:
            return "slots", env.payload
    except (KeyError, TypeError, ValueError) as exc:
        raise EnvelopeError(f"invalid {env.type} envelope {env.id}: {exc!r}") from None
    raise EnvelopeError(f"unexpected envelope type {env.type!r} on hw.executor-state")


# ------------------------------------------------------------------------- admission


def admission_request_record(cmd: StartExecution) -> KeyValue:
    env = Envelope.new(ADMISSION_REQUEST, cmd.execution_id, 0, cmd.to_dict(), occurred=_now())
    return _key(flow_key(cmd.namespace, cmd.flow_id)), encode(env)


def admission_release_record(
    namespace: str, flow_id: str, execution_id: str, concurrency: Any
) -> KeyValue:
    payload = {
        "namespace": namespace,
        "flow_id": flow_id,
        "execution_id": execution_id,
        "concurrency": concurrency,
    }
    env = Envelope.new(ADMISSION_RELEASE, execution_id, 0, payload, occurred=_now())
    return _key(flow_key(namespace, flow_id)), encode(env)


def decode_admission(value: bytes) -> tuple[str, Any]:
    """("request", StartExecution) or ("release", payload) of a hw.admission record."""
    env = decode(value)
    if env.type == ADMISSION_REQUEST:
        cmd = command_from_dict(env.payload)
        if not isinstance(cmd, StartExecution):
            raise EnvelopeError(f"AdmissionRequest {env.id} does not hold a StartExecution")
        return "request", cmd
    if env.type == ADMISSION_RELEASE:
        return "release", env.payload
    raise EnvelopeError(f"unexpected envelope type {env.type!r} on hw.admission")


# --------------------------------------------------------------------------- helpers


def out(topic: str, kv: KeyValue) -> OutRecord:
    """An OutRecord for :meth:`AsyncProducer.produce_many` from a (key, value) pair."""
    return OutRecord(topic, kv[0], kv[1])


def _fast_encode(
    env_id: str, type_: str, execution_id: str, seq: int, occurred: str, payload: JSON
) -> bytes:
    """The bytes ``encode(Envelope.new(...))`` gives, for an ``occurred`` already in the wire
    format (ISO-8601 UTC with milliseconds and Z), without building the envelope."""
    try:
        return orjson.dumps(
            {
                "id": env_id,
                "type": type_,
                "execution_id": execution_id,
                "seq": seq,
                "occurred": occurred,
                "payload": payload,
                "schema_version": SCHEMA_VERSION,
            }
        )
    except (TypeError, ValueError) as exc:
        raise EnvelopeError(
            f"cannot encode {type_} envelope {env_id}: {exc}; payloads must be JSON data",
            execution_id=execution_id or None,
        ) from None


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _format_time(value: datetime) -> str:
    # The reducer's formatter: the same wire text, and it remembers the batch's `now`, which
    # every job and snapshot envelope of a batch carries.
    return iso(value)
