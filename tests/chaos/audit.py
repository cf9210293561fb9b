"""What a chaos run must leave behind, checked from the topics and the read model.

:func:`audit` is pure: it takes what was read (hw.events, hw.commands, the executions table,
the keys the load sent) and returns the figures and every anomaly by kind. :func:`read_topic`
and :func:`read_executions` gather that evidence from the real servers.

The anomaly kinds, each a promise of the design:

- ``not-terminal``: an execution whose last ExecutionUpdated (highest seq) is not terminal;
- ``lost``: a trigger event (Idempotency-Key) with no execution on hw.events; ``not-accepted``:
  one the API never answered 200 for, within the run;
- ``wrong-id`` / ``unexpected-execution``: an execution of the main flow that is not the one
  derived from a key (a second execution for one trigger event);
- ``ran-twice``: an execution that went terminal and then ran again, a task that got two task
  runs for one (parent, loop values), a subflow task that started two child executions, or a
  Flow trigger that fired twice for one upstream execution;
- ``missing-follow-up``: a main execution without its child, or a successful one without its
  Flow-triggered follower;
- ``two-results``: a (task run, attempt) with more than one TaskResult command on hw.commands;
- ``conflicting-events``: two ExecutionUpdated of one execution with the same seq but a
  different state (two owners deciding the same execution);
- ``read-model``: an executions row missing, extra, or with another state or last_seq than the
  last ExecutionUpdated says;
- ``not-success``: an execution of these flows that ended in another state than SUCCESS (every
  flow of the run succeeds when nothing is lost).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from engine.bus.consumer import AsyncConsumer
from engine.reducer.states import TERMINAL
from engine.settings import KafkaSettings
from schemas.envelope import Envelope, EnvelopeError, decode
from tests.chaos.flows import AFTER, CHILD, MAIN

_TERMINAL = frozenset(s.value for s in TERMINAL)
# Reading a whole topic back: stop after this many empty polls in a row (Tansu's high
# watermark is not trustworthy, SERVICES.md), each waiting this long.
EMPTY_POLLS = 2
POLL_S = 1.0
# Anomalies printed per kind (the counts are always complete).
SHOWN = 5


@dataclass
class Evidence:
    namespace: str
    events: list[Envelope]  # hw.events, in each partition's order
    commands: list[Envelope]  # hw.commands
    rows: dict[str, tuple[str, int]]  # executions table: id -> (state, last_seq)
    expected: dict[str, str]  # Idempotency-Key -> the execution id it must start
    accepted: dict[str, str]  # Idempotency-Key -> the id the API answered


@dataclass
class Audit:
    executions: Counter[str] = field(default_factory=Counter)  # per flow id
    final_states: Counter[str] = field(default_factory=Counter)
    task_results: int = 0
    anomalies: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, kind: str, detail: str) -> None:
        self.anomalies[kind].append(detail)

    @property
    def anomaly_count(self) -> int:
        return sum(len(v) for v in self.anomalies.values())

    def summary(self) -> dict[str, Any]:
        return {
            "executions": dict(self.executions),
            "final_states": dict(self.final_states),
            "task_results": self.task_results,
            "anomalies": {k: len(v) for k, v in self.anomalies.items()},
        }

    def details(self) -> str:
        lines = []
        for kind, items in sorted(self.anomalies.items()):
            lines.append(f"{kind}: {len(items)}")
            lines.extend(f"    {item}" for item in items[:SHOWN])
        return "\n".join(lines)


def _last_updates(events: Iterable[Envelope], audit: Audit) -> dict[str, Envelope]:
    """The ExecutionUpdated with the highest seq per execution; flags same-seq conflicts."""
    last: dict[str, Envelope] = {}
    seen: dict[tuple[str, int], str] = {}
    for env in events:
        if env.type != "ExecutionUpdated":
            continue
        state = str(env.payload.get("state"))
        before = seen.setdefault((env.execution_id, env.seq), state)
        if before != state:
            audit.add("conflicting-events", f"{env.execution_id} seq {env.seq}: {before}/{state}")
        current = last.get(env.execution_id)
        if current is None or env.seq >= current.seq:
            last[env.execution_id] = env
    return last


def _ran_twice(events: Iterable[Envelope], audit: Audit) -> None:
    runs: dict[tuple[str, str | None, str, str], set[str]] = defaultdict(set)
    for env in events:
        p = env.payload
        if env.type == "ExecutionUpdated":
            states = [str(h[0]) for h in p.get("history") or []]
            ended = [i for i, s in enumerate(states) if s in _TERMINAL]
            if ended and ended[0] < len(states) - 1:
                audit.add("ran-twice", f"{env.execution_id} ran again after ending: {states}")
        elif env.type == "TaskRunUpdated" and not p.get("deleted"):
            loop = ",".join(str(v) for v in p.get("values") or [])
            where = (env.execution_id, p.get("parent_id"), str(p.get("task_id")), loop)
            runs[where].add(str(p.get("id")))
    for (execution_id, _parent, task_id, loop), ids in runs.items():
        if len(ids) > 1:
            audit.add("ran-twice", f"{execution_id} task {task_id}[{loop}]: {len(ids)} runs")


def _two_results(commands: Iterable[Envelope], audit: Audit) -> None:
    results: dict[tuple[str, int], set[str]] = defaultdict(set)
    for env in commands:
        if env.type == "TaskResult":
            p = env.payload
            results[(str(p.get("task_run_id")), int(p.get("attempt", -1)))].add(
                str(p.get("command_id") or env.id)
            )
    audit.task_results = sum(len(v) for v in results.values())
    for (run_id, attempt), ids in results.items():
        if len(ids) > 1:
            audit.add("two-results", f"task run {run_id} attempt {attempt}: {len(ids)} results")


def audit(evidence: Evidence) -> Audit:
    out = Audit()
    last = _last_updates(evidence.events, out)
    flow_of = {eid: str(env.payload.get("flow_id")) for eid, env in last.items()}
    for eid, env in last.items():
        state = str(env.payload.get("state"))
        out.executions[flow_of[eid]] += 1
        out.final_states[state] += 1
        if state not in _TERMINAL:
            out.add("not-terminal", f"{flow_of[eid]} {eid} is {state}")
        elif state != "SUCCESS" and flow_of[eid] in (MAIN, CHILD, AFTER):
            out.add("not-success", f"{flow_of[eid]} {eid} ended {state}")

    wanted = set(evidence.expected.values())
    for key, eid in evidence.expected.items():
        if key not in evidence.accepted:
            out.add("not-accepted", f"key {key} never answered 200")
        if eid not in last:
            out.add("lost", f"key {key}: no execution {eid} on hw.events")
        answered = evidence.accepted.get(key)
        if answered is not None and answered != eid:
            out.add("wrong-id", f"key {key}: API answered {answered}, derived {eid}")
    for eid, flow in flow_of.items():
        if flow == MAIN and eid not in wanted:
            out.add("unexpected-execution", f"main {eid} belongs to no trigger event")

    children: Counter[str] = Counter()
    followers: Counter[str] = Counter()
    for eid, env in last.items():
        if flow_of[eid] == CHILD:
            parent = env.payload.get("parent") or {}
            children[str(parent.get("execution_id"))] += 1
        elif flow_of[eid] == AFTER:
            # Kestra's ExecutionTrigger {id, type, variables}: the upstream id is a variable.
            trigger = env.payload.get("trigger") or {}
            followers[str((trigger.get("variables") or {}).get("executionId"))] += 1
    for eid, flow in flow_of.items():
        if flow != MAIN:
            continue
        if children[eid] != 1:
            kind = "missing-follow-up" if children[eid] == 0 else "ran-twice"
            out.add(kind, f"main {eid} has {children[eid]} child executions")
        if str(last[eid].payload.get("state")) == "SUCCESS" and followers[eid] != 1:
            kind = "missing-follow-up" if followers[eid] == 0 else "ran-twice"
            out.add(kind, f"main {eid} has {followers[eid]} Flow-triggered followers")

    _ran_twice(evidence.events, out)
    _two_results(evidence.commands, out)

    for eid, env in last.items():
        row = evidence.rows.get(eid)
        truth = (str(env.payload.get("state")), env.seq)
        if row is None:
            out.add("read-model", f"{eid}: no executions row (topic says {truth})")
        elif row != truth:
            out.add("read-model", f"{eid}: row {row} but the topic says {truth}")
    for eid in evidence.rows.keys() - last.keys():
        out.add("read-model", f"{eid}: a row with no ExecutionUpdated on hw.events")
    return out


async def read_topic(kafka: KafkaSettings, topic: str, partitions: int) -> list[Envelope]:
    """Every record of ``topic`` from offset 0, decoded (undecodable ones are an error: the
    components only write envelopes)."""
    consumer = AsyncConsumer(kafka, f"chaos-audit-{topic}")
    out: list[Envelope] = []
    async with consumer:
        await consumer.assign({(topic, p): 0 for p in range(partitions)})
        empty = 0
        while empty < EMPTY_POLLS:
            records = await consumer.consume(5000, POLL_S)
            empty = 0 if records else empty + 1
            for record in records:
                if record.value is None:
                    continue
                try:
                    out.append(decode(record.value))
                except EnvelopeError as exc:
                    where = f"{topic}[{record.partition}]@{record.offset}"
                    raise AssertionError(f"{where}: not an envelope: {exc}") from exc
    return out


async def read_executions(dsn: str) -> dict[str, tuple[str, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT id, state, last_seq FROM executions")
    finally:
        await conn.close()
    return {r["id"]: (r["state"], int(r["last_seq"])) for r in rows}
