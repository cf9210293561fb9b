"""The projector's pure core: bus records in, read-model rows out (no I/O).

:func:`build_batch` turns one consumed batch of ``hw.events``, ``hw.logs``, ``hw.flows`` and
``hw.trigger-state`` records into a :class:`RowBatch`. Within the batch it keeps, per
execution and per task run, only the row with the highest ``seq`` (a multi-row upsert may not
touch one row twice, and the older row would lose in the database anyway). Across batches the
database's ``WHERE excluded.last_seq > table.last_seq`` does the same, so an older or repeated
event never overwrites a newer row and replaying a topic yields the same tables.

A record that is not a valid envelope is a poison record: it is counted and skipped, never
retried (retrying cannot make it valid) and never allowed to stop the projection.

Secret values (from the secret store, see :mod:`engine.stores.secrets`) are masked here, before any
row is built, in every field that carries user data: outputs, inputs, trigger variables, loop
values, attempts and log messages. Ids and states are never masked (they key the rows).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

from engine.bus.consumer import Record
from engine.flows.inputs import secret_input_ids as declared_secret_ids
from engine.reducer.states import State
from engine.stores.secrets import SecretMasker
from schemas.envelope import Envelope, EnvelopeError, decode

log = logging.getLogger(__name__)

JSON = dict[str, Any]

MASK = "******"
"""What a SECRET input's value becomes in the read model."""

_TERMINAL = frozenset(s.value for s in State if s.is_terminal)
# Payload fields that carry user data, by event type: where a secret value can show up.
_MASKED_FIELDS: dict[str, tuple[str, ...]] = {
    "ExecutionUpdated": ("outputs", "inputs", "trigger", "labels"),
    "TaskRunUpdated": ("outputs", "value", "values", "attempts"),
    "LogEmitted": ("message",),
    "LogLine": ("message",),
    "TriggerState": ("last_error",),
}


def mask_payload(env_type: str, payload: JSON, masker: SecretMasker | None) -> JSON:
    """``payload`` with secret values masked in its user-data fields (a copy when changed)."""
    fields = _MASKED_FIELDS.get(env_type)
    if masker is None or not fields or not masker.active:
        return payload
    out = dict(payload)
    for name in fields:
        if name in out:
            out[name] = masker.json(out[name])
    return out


def parse_time(value: Any) -> datetime | None:
    """A wire time (ISO-8601 UTC) as a datetime; None for missing or unparseable values."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else None


def dumps(value: Any) -> str:
    """JSON text for a jsonb column (asyncpg's default jsonb codec takes text)."""
    return orjson.dumps(value).decode()


def secret_input_ids(flow: JSON) -> list[str]:
    """Ids of the inputs a flow declares as SECRET (also as ARRAY of SECRET)."""
    return declared_secret_ids(flow.get("inputs"))


def mask_inputs(inputs: JSON, secrets: frozenset[str] | list[str]) -> JSON:
    """A copy of ``inputs`` with the value of every secret input replaced by :data:`MASK`."""
    if not secrets or not inputs:
        return inputs
    return {k: (MASK if k in secrets and v is not None else v) for k, v in inputs.items()}


def _duration_ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() * 1000)


@dataclass(slots=True)
class ExecutionRow:
    """One ``executions`` row; ``inputs`` stays a dict until the writer masks it."""

    id: str
    namespace: str
    flow_id: str
    flow_revision: int | None
    state: str
    labels: JSON
    inputs: JSON
    outputs: Any
    trigger: Any
    parent: JSON | None
    original_execution_id: str | None
    retry_number: int
    start_date: datetime
    end_date: datetime | None
    history: list[Any]
    last_seq: int
    updated: datetime

    def as_tuple(self, secrets: frozenset[str] | list[str]) -> tuple[Any, ...]:
        parent_id = self.parent.get("execution_id") if isinstance(self.parent, dict) else None
        return (
            self.id,
            self.namespace,
            self.flow_id,
            self.flow_revision,
            self.state,
            dumps(self.labels),
            dumps(mask_inputs(self.inputs, secrets)),
            None if self.outputs is None else dumps(self.outputs),
            None if self.trigger is None else dumps(self.trigger),
            None if self.parent is None else dumps(self.parent),
            parent_id,
            self.original_execution_id,
            self.retry_number,
            self.start_date,
            self.end_date,
            _duration_ms(self.start_date, self.end_date),
            dumps(self.history),
            self.last_seq,
            self.updated,
        )


@dataclass(slots=True)
class FlowRevisionRow:
    namespace: str
    id: str
    revision: int
    source: str
    flow: JSON
    deployed_at: datetime
    draft: bool = False

    @property
    def secrets(self) -> list[str]:
        return secret_input_ids(self.flow)


@dataclass(slots=True)
class RowBatch:
    """Everything one batch writes, deduplicated, in the order the writer applies it."""

    flows: list[FlowRevisionRow] = field(default_factory=list)
    # (namespace, id) -> (revision deleted, when)
    flow_deletes: dict[tuple[str, str], tuple[int, datetime]] = field(default_factory=dict)
    executions: dict[str, ExecutionRow] = field(default_factory=dict)
    task_runs: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    task_run_deletes: dict[str, tuple[str, int]] = field(default_factory=dict)
    logs: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    triggers: dict[tuple[str, str, str], tuple[Any, ...]] = field(default_factory=dict)
    # execution id -> when it was purged (ExecutionPurged)
    execution_purges: dict[str, datetime] = field(default_factory=dict)
    # LogsPurged: (envelope id, execution id, levels or None, start or None, end, when)
    log_purges: list[tuple[Any, ...]] = field(default_factory=list)
    poison: int = 0
    records: int = 0
    oldest_ms: int | None = None  # the oldest record timestamp: the batch's worst event age
    newest_ms: int | None = None

    def empty(self) -> bool:
        return not (
            self.flows
            or self.flow_deletes
            or self.executions
            or self.task_runs
            or self.task_run_deletes
            or self.logs
            or self.triggers
            or self.execution_purges
            or self.log_purges
        )


# The index of last_seq in a task-run tuple (see _task_run_tuple) for in-batch dedup.
_TR_SEQ = 17


def _task_run_tuple(execution_id: str, seq: int, p: JSON) -> tuple[Any, ...]:
    history = p.get("history") or []
    start = parse_time(history[0][1]) if history and len(history[0]) > 1 else None
    state = str(p.get("state", "CREATED"))
    end = (
        parse_time(history[-1][1])
        if state in _TERMINAL and history and len(history[-1]) > 1
        else None
    )
    attempts = p.get("attempts") or []
    worker = attempts[-1].get("worker_id") or None if attempts else None
    value = p.get("value")
    return (
        str(p["id"]),
        execution_id,
        str(p.get("task_id", "")),
        str(p.get("type", "")),
        p.get("parent_id"),
        None if value is None else str(value),
        dumps(p.get("values") or []),
        p.get("iteration"),
        p.get("branch"),
        state,
        dumps(attempts),
        dumps(p.get("outputs") or {}),
        worker,
        start,
        end,
        _duration_ms(start, end),
        dumps(history),
        seq,
        _position(p.get("position")),
    )


def _position(value: Any) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def _execution_row(env: Envelope) -> ExecutionRow:
    p = env.payload
    history = p.get("history") or []
    start = parse_time(p.get("start_date")) or env.occurred
    revision = p.get("revision")
    return ExecutionRow(
        id=env.execution_id or str(p.get("id", "")),
        namespace=str(p.get("namespace", "")),
        flow_id=str(p.get("flow_id", "")),
        flow_revision=revision if isinstance(revision, int) else None,
        state=str(p.get("state", "CREATED")),
        labels=p.get("labels") or {},
        inputs=p.get("inputs") or {},
        outputs=p.get("outputs"),
        trigger=p.get("trigger"),
        parent=p.get("parent"),
        original_execution_id=p.get("original_execution_id"),
        retry_number=int(p.get("retry_number") or 0),
        start_date=start,
        end_date=parse_time(p.get("end_date")),
        history=history,
        last_seq=env.seq,
        updated=env.occurred,
    )


def _log_tuple(log_id: str, execution_id: str, p: JSON, ts: datetime) -> tuple[Any, ...]:
    attempt = p.get("attempt")
    return (
        log_id,
        execution_id,
        p.get("task_run_id"),
        p.get("task_id"),
        attempt if isinstance(attempt, int) else None,
        str(p.get("level", "INFO")),
        str(p.get("message", "")),
        ts,
    )


class BatchBuilder:
    """Accumulates records into a :class:`RowBatch`; ``topics`` maps topic name -> role."""

    def __init__(self, roles: dict[str, str], masker: SecretMasker | None = None) -> None:
        self._roles = roles
        self._masker = masker
        self.batch = RowBatch()

    def add(self, record: Record) -> None:
        batch = self.batch
        batch.records += 1
        ts = record.timestamp_ms
        if ts >= 0:
            if batch.oldest_ms is None or ts < batch.oldest_ms:
                batch.oldest_ms = ts
            if batch.newest_ms is None or ts > batch.newest_ms:
                batch.newest_ms = ts
        if record.value is None:  # a tombstone: nothing in the read model follows from it
            return
        try:
            env = decode(record.value)
        except EnvelopeError as exc:
            batch.poison += 1
            log.warning(
                "skipping poison record %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                exc,
            )
            return
        if self._masker is not None and env.type in _MASKED_FIELDS:
            env = replace(env, payload=mask_payload(env.type, env.payload, self._masker))
        try:
            self._apply(self._roles.get(record.topic, ""), env)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A well-formed envelope with a payload we cannot read: skip it like poison.
            batch.poison += 1
            log.warning("skipping unreadable %s envelope %s: %r", env.type, env.id, exc)

    def _apply(self, role: str, env: Envelope) -> None:
        batch, p = self.batch, env.payload
        if env.type == "ExecutionUpdated":
            old = batch.executions.get(env.execution_id)
            if old is None or env.seq > old.last_seq:  # build only rows that win
                row = _execution_row(env)
                batch.executions[row.id] = row
        elif env.type == "TaskRunUpdated":
            run_id = str(p["id"])
            if p.get("deleted"):
                batch.task_runs.pop(run_id, None)
                batch.task_run_deletes[run_id] = (env.execution_id, env.seq)
                return
            current = batch.task_runs.get(run_id)
            if current is None or env.seq > current[_TR_SEQ]:
                batch.task_runs[run_id] = _task_run_tuple(env.execution_id, env.seq, p)
                batch.task_run_deletes.pop(run_id, None)
        elif env.type == "LogEmitted":
            # Deterministic id: a redelivered or re-produced event lands on the same row.
            log_id = f"{env.execution_id}:{env.seq}" if env.seq > 0 else env.id
            batch.logs[log_id] = _log_tuple(log_id, env.execution_id, p, env.occurred)
        elif env.type == "LogLine":
            log_id = str(p.get("log_id") or env.id)
            ts = parse_time(p.get("timestamp")) or env.occurred
            execution_id = str(p.get("execution_id") or env.execution_id)
            batch.logs[log_id] = _log_tuple(log_id, execution_id, p, ts)
        elif env.type == "FlowDeployed":
            batch.flows.append(
                FlowRevisionRow(
                    str(p["namespace"]),
                    str(p["id"]),
                    int(p["revision"]),
                    str(p.get("source") or ""),
                    p.get("flow") or {},
                    parse_time(p.get("deployed_at")) or env.occurred,
                    bool(p.get("draft", False)),
                )
            )
        elif env.type == "FlowDeleted":
            key = (str(p["namespace"]), str(p["id"]))
            revision = int(p.get("revision") or 0)
            when = parse_time(p.get("deleted_at")) or env.occurred
            previous = batch.flow_deletes.get(key)
            if previous is None or revision >= previous[0]:
                batch.flow_deletes[key] = (revision, when)
        elif env.type == "ExecutionPurged":
            self._execution_purged(env)
        elif env.type == "LogsPurged":
            self._logs_purged(env)
        elif env.type == "TriggerState" or role == "trigger_state":
            self._trigger(env)

    def _execution_purged(self, env: Envelope) -> None:
        """Drop the execution's rows of this batch; the writer deletes the stored ones and
        remembers the purge (purged_executions) against later records."""
        batch, execution_id = self.batch, env.execution_id
        batch.executions.pop(execution_id, None)
        for run_id in [k for k, v in batch.task_runs.items() if v[1] == execution_id]:
            del batch.task_runs[run_id]
        for run_id in [k for k, v in batch.task_run_deletes.items() if v[0] == execution_id]:
            del batch.task_run_deletes[run_id]
        batch.execution_purges[execution_id] = env.occurred

    def _logs_purged(self, env: Envelope) -> None:
        p = env.payload
        execution_id = str(p.get("execution_id") or env.execution_id)
        levels = p.get("levels")
        levels = [str(v) for v in levels] if isinstance(levels, list) else None
        start = parse_time(p.get("start"))
        end = parse_time(p.get("end"))
        if end is None:
            raise ValueError("LogsPurged without an end time")
        purge = (env.id, execution_id, levels, start, end, env.occurred)
        self.batch.log_purges.append(purge)
        for log_id in [k for k, row in self.batch.logs.items() if log_purged(row, purge)]:
            del self.batch.logs[log_id]

    def _trigger(self, env: Envelope) -> None:
        p = env.payload
        key = (str(p["namespace"]), str(p["flow_id"]), str(p["trigger_id"]))
        error = p.get("last_error")
        self.batch.triggers[key] = (
            *key,
            str(p.get("type") or ""),
            bool(p.get("enabled", True)),
            parse_time(p.get("last_fired")),
            parse_time(p.get("next_date")),
            None if error is None else str(error),
            env.occurred,
        )


def log_purged(row: tuple[Any, ...], purge: tuple[Any, ...]) -> bool:
    """Whether a log row (see _log_tuple) falls under a LogsPurged purge."""
    _, execution_id, levels, start, end, _ = purge
    ts: datetime = row[7]
    return (
        row[1] == execution_id
        and (levels is None or row[5] in levels)
        and (start is None or ts >= start)
        and ts <= end
    )


def build_batch(
    records: list[Record], roles: dict[str, str], masker: SecretMasker | None = None
) -> RowBatch:
    """One consumed batch as deduplicated rows, secrets masked (see the module docstring)."""
    builder = BatchBuilder(roles, masker)
    for record in records:
        builder.add(record)
    return builder.batch
