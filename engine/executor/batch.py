"""One batch of hw.commands / hw.admission records -> the records to produce. No I/O.

For each command: load the execution's state, ``decide``, and turn the decision into records:
events (hw.events, and LogEmitted also as a line on hw.logs), jobs and stop-jobs (hw.jobs or
the worker group's topic), commands for other executions (hw.commands, with ``resolve_flow``
resolved from the flow store), an admission release when an execution of a flow with a
concurrency limit ends, and — once per execution per batch — its new snapshot
(hw.executor-state). Timers are updated in the wheel at once (see processor.py for why that is
safe). A job whose task needs no I/O (Log, Return, ...) is run here instead of being sent to a
worker (:mod:`engine.executor.inline`): its TaskStarted and TaskResult are decided right after
the decision that scheduled it. Anything odd about one command (a poison record, a purged
execution, a duplicate, a missing subflow) is logged with its ids and skipped: never a crash.

An execution that is neither known nor purged is different: its state may simply not have been
restored (a restore cut short by a broker restart). Dropping and committing its command would
lose it for good, so in ``strict`` mode the batch stops with :class:`UnknownExecution` before
anything is produced; the processor then restores its partitions again and redoes the batch
with ``strict=False``, where a command still unknown is logged and dropped (a stray command).
Purged executions are known from the tombstones in hw.executor-state (see store.py); any
command for one is dropped, a redelivered StartExecution included.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from engine.bus.consumer import Record
from engine.bus.producer import OutRecord
from engine.bus.topics import Topics
from engine.bus.wire import (
    admission_decided,
    command_record,
    decode_command_envelope,
    event_record,
    execution_purged_record,
    job_record,
    jobs_topic,
    log_record_from_event,
    out,
    state_record,
    stop_job_record,
)
from engine.executor import admission as adm
from engine.executor.inline import InlineRunner
from engine.executor.store import StateStore
from engine.flows.store import FlowStore
from engine.reducer.commands import (
    ChildExecutionEnded,
    Command,
    PurgeExecution,
    StartExecution,
)
from engine.reducer.context import index_tasks
from engine.reducer.decide import decide
from engine.reducer.flow_subflow import resolve_child
from engine.reducer.model import Decision, ExecutionState, OutgoingCommand, StopJob
from schemas.envelope import EnvelopeError

log = logging.getLogger(__name__)

Decide = Callable[[ExecutionState | None, Command, datetime], Decision]
Clock = Callable[[], datetime]


@dataclass(slots=True)
class BatchResult:
    records: list[OutRecord] = field(default_factory=list)
    job_topics: set[str] = field(default_factory=set)
    decided: int = 0
    duplicates: int = 0
    dropped: int = 0
    oldest_ms: int | None = None  # producer timestamp of the oldest input record


class UnknownExecution(Exception):  # a signal to the processor, not a failure
    """A command for an execution this executor neither holds nor purged (strict mode)."""

    def __init__(self, command_type: str, execution_id: str, partition: int) -> None:
        super().__init__(
            f"{command_type} for unknown execution {execution_id} (partition {partition})"
        )
        self.execution_id = execution_id
        self.partition = partition


class BatchDecider:
    def __init__(
        self,
        topics: Topics,
        store: StateStore,
        admission: adm.Admission,
        flows: FlowStore,
        decide_fn: Decide = decide,
        inline: InlineRunner | None = None,
    ) -> None:
        self.topics = topics
        self.store = store
        self.admission = admission
        self.flows = flows
        self._decide = decide_fn
        self.inline = inline

    def run(
        self, records: list[Record], now: datetime | Clock, *, strict: bool = False
    ) -> BatchResult:
        """Decide the batch. ``now`` is the time, or a clock read once per decision (a big
        batch takes a while: its timestamps should say when each decision was made). With
        ``strict``, raise :class:`UnknownExecution` on a command for an execution neither
        known nor purged; the store may then hold decisions of this batch that were never
        produced, so the caller must restore before retrying."""
        if isinstance(now, datetime):
            fixed = now

            def clock() -> datetime:
                return fixed
        else:
            clock = now
        result = BatchResult()
        dirty: dict[str, ExecutionState] = {}
        dirty_slots: set[str] = set()
        commands_topic = self.topics.commands.name
        for r in records:
            if r.timestamp_ms >= 0 and (
                result.oldest_ms is None or r.timestamp_ms < result.oldest_ms
            ):
                result.oldest_ms = r.timestamp_ms
            if r.value is None:
                continue
            if r.topic == commands_topic:
                self._command(r, clock, result, dirty, strict)
            else:
                self.admission.handle(r, result.records, dirty_slots)
        now = clock()
        state_topic = self.topics.executor_state.name
        for state in dirty.values():
            result.records.append(out(state_topic, state_record(state, occurred=now)))
        result.records += self.admission.snapshots(dirty_slots)
        for execution_id, _partition in self.store.due_purges(now.timestamp()):
            # Same key, produced after its last snapshot: the tombstone wins on compaction.
            result.records.append(OutRecord(state_topic, execution_id.encode(), None))
            log.info("execution %s purged", execution_id)
        return result

    def _command(
        self,
        r: Record,
        clock: Clock,
        result: BatchResult,
        dirty: dict[str, ExecutionState],
        strict: bool,
    ) -> None:
        assert r.value is not None
        try:
            env, cmd = decode_command_envelope(r.value)
        except EnvelopeError as exc:
            result.dropped += 1
            log.error("command %s[%d]@%d skipped: %s", r.topic, r.partition, r.offset, exc)
            return
        if isinstance(cmd, PurgeExecution):
            self._purge(cmd, clock(), result, dirty)
            return
        state = self.store.get(cmd.execution_id)
        if state is None:
            if cmd.execution_id in self.store.purged:
                # Also a StartExecution: redelivered after its run was purged, it must not
                # start the execution a second time.
                result.dropped += 1
                log.warning(
                    "%s %s for purged execution %s dropped",
                    cmd.type, cmd.command_id, cmd.execution_id,
                )  # fmt: skip
                return
            if not isinstance(cmd, StartExecution):
                if strict:
                    raise UnknownExecution(cmd.type, cmd.execution_id, r.partition)
                result.dropped += 1
                log.warning(
                    "%s %s for unknown execution %s dropped",
                    cmd.type, cmd.command_id, cmd.execution_id,
                )  # fmt: skip
                return
            if adm.needs_admission(cmd) and not admission_decided(env):
                result.records.append(adm.request(self.topics.admission.name, cmd))
                return
            cmd.flow = self.store.intern_flow(cmd.flow)
        # Tasks run inline (inline.py) answer with commands for the same execution: decide
        # them now, in order, rather than after a round trip through a worker.
        queue: deque[Command] = deque((cmd,))
        while queue:
            decided = self._decide_one(queue.popleft(), state, r.partition, clock(), result, dirty)
            if decided is None:
                return
            state, follow_ups = decided
            queue.extend(follow_ups)

    def _purge(
        self,
        cmd: PurgeExecution,
        now: datetime,
        result: BatchResult,
        dirty: dict[str, ExecutionState],
    ) -> None:
        """Tombstone an ended execution and tell the projector to delete its rows. An
        execution this executor does not hold (purged after its grace period, or never
        seen) still gets the event: its rows may be in the read model."""
        state = self.store.get(cmd.execution_id)
        if state is not None and not state.state.is_terminal:
            result.dropped += 1
            log.warning(
                "purge of execution %s refused: it is %s, not ended",
                cmd.execution_id, state.state.value,
            )  # fmt: skip
            return
        seq = state.seq + 1 if state is not None else 0
        self.store.forget(cmd.execution_id)
        dirty.pop(cmd.execution_id, None)
        key = cmd.execution_id.encode()
        result.records.append(OutRecord(self.topics.executor_state.name, key, None))
        purged = execution_purged_record(cmd.execution_id, seq, now)
        result.records.append(out(self.topics.events.name, purged))
        result.decided += 1
        log.info("execution %s purged on request (%s)", cmd.execution_id, cmd.command_id)

    def _decide_one(
        self,
        cmd: Command,
        state: ExecutionState | None,
        partition: int,
        now: datetime,
        result: BatchResult,
        dirty: dict[str, ExecutionState],
    ) -> tuple[ExecutionState, list[Command]] | None:
        """Decide one command: the execution's new state and the commands of the tasks run
        inline (None when nothing changed)."""
        was_terminal = state.state.is_terminal if state is not None else False
        decision = self._decide(state, cmd, now)
        if decision.duplicate:
            result.duplicates += 1
            return None
        new = decision.state
        if new is None:  # only log events about a command the reducer could not place
            result.dropped += 1
            for event in decision.events:
                log.warning("%s: %s", cmd.execution_id, event.payload.get("message"))
            return None
        result.decided += 1
        self.store.put(partition, new)
        dirty[new.execution_id] = new
        follow_ups = self._emit(decision, new, partition, now, result)
        if (
            not was_terminal
            and new.state.is_terminal
            and new.loop is None  # a Loop iteration held no slot
            and adm.needs_admission_flow(new.flow)
        ):
            result.records.append(
                adm.release_for(
                    self.topics.admission.name, new.namespace, new.flow_id, new.execution_id,
                    new.flow,
                )
            )  # fmt: skip
        return new, follow_ups

    def _emit(
        self,
        decision: Decision,
        state: ExecutionState,
        partition: int,
        now: datetime,
        result: BatchResult,
    ) -> list[Command]:
        """Records of the decision; returns the TaskStarted/TaskResult of the jobs run inline."""
        records = result.records
        follow_ups: list[Command] = []
        events_topic, logs_topic = self.topics.events.name, self.topics.logs.name
        for event in decision.events:
            records.append(out(events_topic, event_record(event)))
            if event.type == "LogEmitted":
                records.append(out(logs_topic, log_record_from_event(event)))
        for job in decision.jobs:
            done = self.inline.run(job, now) if self.inline is not None else None
            if done is not None:
                follow_ups += (done.started, done.result)
                records += done.logs
                continue
            topic = jobs_topic(self.topics, job.worker_group)
            result.job_topics.add(topic)
            records.append(out(topic, job_record(job, occurred=now)))
        for stop in decision.stop_jobs:
            topic = jobs_topic(self.topics, _group_of(state, stop))
            result.job_topics.add(topic)
            records.append(out(topic, stop_job_record(stop, occurred=now)))
        wheel = self.store.timers
        for timer_id in decision.cancel_timers:
            wheel.cancel(state.execution_id, timer_id)
        for timer in decision.timers:
            if timer.timer_id in state.timers:  # armed and not cancelled in the same decision
                wheel.arm(partition, timer)
        for outgoing in decision.commands:
            self._outgoing(outgoing, state, now, records)
        return follow_ups

    def _outgoing(
        self,
        outgoing: OutgoingCommand,
        state: ExecutionState,
        now: datetime,
        records: list[OutRecord],
    ) -> None:
        cmd: Command = outgoing.command
        ref = outgoing.resolve_flow
        if ref is not None and isinstance(cmd, StartExecution):
            namespace = str(ref.get("namespace"))
            flow_id = str(ref.get("flowId") or ref.get("flow_id"))
            revision = ref.get("revision")
            flow = self.flows.get(namespace, flow_id, int(revision) if revision else None)
            cmd = resolve_child(cmd, flow, ref)
            if isinstance(cmd, ChildExecutionEnded):
                log.warning(
                    "execution %s: subflow %s.%s cannot start: %s",
                    state.execution_id, namespace, flow_id, cmd.error,
                )  # fmt: skip
        records.append(out(self.topics.commands.name, command_record(cmd, occurred=now)))


def _group_of(state: ExecutionState, stop: StopJob) -> str | None:
    """The worker group of a stop's job: it must travel the same topic as the job."""
    run = state.task_runs.get(stop.task_run_id)
    if run is None:
        return None
    if state.task_index is None:
        state.task_index = index_tasks(state.flow)
    task = state.task_index.get(run.task_id) or {}
    group = task.get("workerGroup")
    if isinstance(group, dict):
        group = group.get("key")
    return str(group) if group else None
