"""Run Kestra's conformance corpus in process: reducer + core executors + a fake clock.

:class:`World` is a miniature Headwater with no broker: a command queue instead of
``hw.commands``, the pure reducer deciding every command, a simulated worker running each job
with :mod:`executors`, and a virtual clock that jumps to the next timer (or the next waking
Sleep) whenever nothing else can happen. Commands a decision addresses to other executions
(subflow starts, child-ended notices, retries as new executions) are routed like the
processor routes them, with the child's flow resolved from the deployed flows. Executions
that end are offered to the deployed flows' Flow triggers, and webhook calls go through
``triggers.webhook``, both with the real trigger code (:mod:`tests.conformance.harness_triggers`).

:func:`run_scenario` deploys a scenario's flows, performs its ``action`` (restart, resume,
kill, a second execution...) and returns every mismatch with the manifest as one readable
list, so a failing scenario tells the reducer's author everything at once.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import json
import pathlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson

from engine.flows.inputs import InputValidationError, resolve_inputs
from engine.reducer.commands import Admitted
from engine.reducer.flow_subflow import resolve_child
from engine.reducer.model import (
    ChildExecutionEnded,
    Command,
    Event,
    ExecutionState,
    Heartbeat,
    Job,
    Kill,
    OutgoingCommand,
    Restart,
    Resume,
    StartExecution,
    TaskResult,
    TaskStarted,
    Timer,
    TimerFired,
    command_from_dict,
)
from executors.base import LEVELS, LogLevel, LogLine, TaskContext, iso_millis
from executors.core import InMemoryKV, InMemoryTriggerStates
from executors.registry import Registry, core_registry
from tests.conformance.harness_triggers import FlowTriggers, call_webhook

_T = TypeVar("_T")

# The virtual clock starts here; a fixed instant keeps runs reproducible.
EPOCH = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
# Commands one scenario may apply before the harness calls it a livelock (the biggest corpus
# flow needs a few hundred).
MAX_COMMANDS = 20_000
# Virtual time one scenario may consume; the longest corpus timer is a few minutes.
MAX_VIRTUAL_SECONDS = 6 * 3600
# A real worker heartbeats while a job runs; the virtual clock never jumps further than this
# while jobs are running, and each running job heartbeats at every jump.
HEARTBEAT_EVERY = 10.0
# Cooperative yields granted to running jobs before waiting for them in real time.
_SETTLE_YIELDS = 50
# Real seconds to wait for a job that is neither done nor sleeping (only real I/O does that).
_SETTLE_WAIT = 0.05


class HarnessError(AssertionError):
    """The run could not be carried out (missing component, livelock, unknown flow)."""


def load_manifest(corpus: pathlib.Path) -> list[dict[str, Any]]:
    data = json.loads((corpus / "manifest.json").read_text())
    assert isinstance(data, list)
    return data


def _decide() -> Callable[[ExecutionState | None, Command, datetime], Any]:
    try:
        module = importlib.import_module("engine.reducer.decide")
    except ImportError as exc:
        raise HarnessError(f"the reducer is missing: engine.reducer.decide ({exc})") from exc
    decide: Callable[[ExecutionState | None, Command, datetime], Any] = module.decide
    return decide


def _expression_hooks(**kwargs: Any) -> Any:
    from engine.expressions import ExpressionHooks

    return ExpressionHooks(**kwargs)


class MemoryStorage:
    """Internal storage in a dict; URIs look like Kestra's (``kestra:///...``)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def put(self, execution_id: str, name: str, data: bytes) -> str:
        return self.put_sync(execution_id, name, data)

    async def read(self, uri: str) -> bytes:
        try:
            return self.files[uri]
        except KeyError:
            raise FileNotFoundError(f"no file {uri} in internal storage") from None

    def put_sync(self, execution_id: str, name: str, data: bytes) -> str:
        uri = f"kestra:///io/kestra/tests/executions/{execution_id}/{len(self.files)}-{name}"
        self.files[uri] = data
        return uri


@dataclass(slots=True)
class _Running:
    job: Job
    ctx: TaskContext
    task: asyncio.Task[Any]


@dataclass(slots=True)
class _Sleeper:
    wake: datetime
    future: asyncio.Future[None]


@dataclass(slots=True)
class LogRecord:
    """A log line from either side: a worker (task) or the reducer (flowable, expression)."""

    execution_id: str
    task_id: str | None
    level: str
    message: str


@dataclass
class World:
    """Deployed flows, executions, the command queue, the worker and the virtual clock."""

    registry: Registry = field(default_factory=core_registry)
    now: datetime = EPOCH
    flows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    states: dict[str, ExecutionState] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    queue: deque[Command] = field(default_factory=deque)
    timers: dict[str, Timer] = field(default_factory=dict)
    pending_jobs: deque[Job] = field(default_factory=deque)
    running: dict[tuple[str, str, int], _Running] = field(default_factory=dict)
    sleepers: dict[tuple[str, str, int], _Sleeper] = field(default_factory=dict)
    worker_logs: list[LogLine] = field(default_factory=list)
    reducer_logs: list[LogRecord] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    kv: InMemoryKV = field(default_factory=InMemoryKV)
    # What the scheduler's trigger store would hold; knows each deployed flow's triggers.
    triggers: InMemoryTriggerStates = field(default_factory=lambda: InMemoryTriggerStates({}))
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    problems: list[str] = field(default_factory=list)
    # First snapshot of each execution in PAUSED (the corpus asserts on it).
    paused: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Concurrency admission, per (namespace, flow id), as the processor keeps it.
    slots: dict[tuple[str, str], Any] = field(default_factory=dict)
    # The Flow-trigger source: executions that end may start others (harness_triggers).
    flow_triggers: FlowTriggers = field(default_factory=FlowTriggers)
    applied: int = 0
    _ids: int = 0

    # --- deployment ----------------------------------------------------------------------

    def deploy_file(self, path: pathlib.Path) -> dict[str, Any]:
        """Load, validate and normalize a flow file as the API's deploy does."""
        from engine.flows import flow_to_dict, load_flow

        flow = flow_to_dict(load_flow(path.read_text(), path.name))
        key = (str(flow.get("namespace")), str(flow.get("id")))
        self.flows[key] = flow
        assert isinstance(self.triggers.flows, dict)
        self.triggers.flows[key] = [str(t.get("id")) for t in flow.get("triggers") or []]
        return flow

    def flow(self, namespace: str, flow_id: str) -> dict[str, Any]:
        try:
            return self.flows[(namespace, flow_id)]
        except KeyError:
            raise HarnessError(f"flow {namespace}.{flow_id} is not deployed") from None

    def next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-{self._ids}"

    # --- commands ------------------------------------------------------------------------

    def start(
        self,
        namespace: str,
        flow_id: str,
        inputs: dict[str, Any] | None = None,
        labels: dict[str, Any] | None = None,
    ) -> str:
        execution_id = self.next_id("exec")
        self.queue.append(
            StartExecution(
                command_id=self.next_id("cmd"),
                execution_id=execution_id,
                namespace=namespace,
                flow_id=flow_id,
                flow=copy.deepcopy(self.flow(namespace, flow_id)),
                inputs=dict(inputs or {}),
                labels=dict(labels or {}),
                created=iso_millis(self.now),
            )
        )
        return execution_id

    def send(self, command_type: type[Command], execution_id: str, **fields: Any) -> None:
        self.queue.append(
            command_type(command_id=self.next_id("cmd"), execution_id=execution_id, **fields)
        )

    def _apply(self, command: Command) -> None:
        self.applied += 1
        state = self.states.get(command.execution_id)
        # Everything crosses Kafka in production: the command on hw.commands and the state
        # in hw.executor-state. Round-tripping both through JSON here catches what would not.
        command = _wire(command, command_from_dict, "command")
        if state is not None:
            state = _wire(state, ExecutionState.from_dict, "state")
        was_terminal = bool(state and state.state.is_terminal)
        if isinstance(command, StartExecution) and state is None:
            self._admit(command)
        try:
            decision = _decide()(state, command, self.now)
        except HarnessError:
            raise
        except Exception as exc:  # decide must never raise: that is a finding, not a crash
            self.problems.append(f"decide raised on {command.type}: {type(exc).__name__}: {exc}")
            return
        if decision.state is not None:
            if command.execution_id not in self.states:
                self.created.append(command.execution_id)
            self.states[command.execution_id] = decision.state
            if decision.state.state.is_terminal and not was_terminal:
                self._release(decision.state)
            if decision.state.state.value == "PAUSED" and command.execution_id not in self.paused:
                self.paused[command.execution_id] = decision.state.to_dict()
        for event in decision.events:
            self.events.append(event)
            if event.type == "LogEmitted":
                self._reducer_log(event)
            elif event.type == "ExecutionUpdated":
                self.queue.extend(self.flow_triggers.observe(self, event.payload, self.now))
        for timer_id in decision.cancel_timers:
            self.timers.pop(timer_id, None)
        for timer in decision.timers:
            self.timers[timer.timer_id] = timer
        for stop in decision.stop_jobs:
            self._stop(stop.execution_id, stop.task_run_id, stop.attempt)
        self.pending_jobs.extend(_wire(job, Job.from_dict, "job") for job in decision.jobs)
        for outgoing in decision.commands:
            self._route(outgoing)

    def _admit(self, command: StartExecution) -> None:
        from engine.reducer.admission import admit

        concurrency = command.flow.get("concurrency")
        if not concurrency or command.loop is not None:  # a Loop iteration holds no slot
            return
        key = (command.namespace, command.flow_id)
        verdict = admit(self.slots.get(key), command.execution_id, concurrency)
        self.slots[key] = verdict.slots
        command.admission = verdict.verdict

    def _release(self, state: ExecutionState) -> None:
        from engine.reducer.admission import release

        concurrency = state.flow.get("concurrency")
        if not concurrency or state.loop is not None:
            return
        key = (state.namespace, state.flow_id)
        verdict = release(self.slots.get(key), state.execution_id, concurrency)
        self.slots[key] = verdict.slots
        for execution_id in verdict.admitted:
            self.send(Admitted, execution_id)

    def _reducer_log(self, event: Event) -> None:
        payload = event.payload
        task_id = payload.get("task_id")
        run_id = payload.get("task_run_id")
        state = self.states.get(event.execution_id)
        if task_id is None and run_id and state and run_id in state.task_runs:
            task_id = state.task_runs[run_id].task_id
        self.reducer_logs.append(
            LogRecord(
                event.execution_id,
                task_id,
                str(payload.get("level", "INFO")),
                str(payload.get("message", "")),
            )
        )

    def _route(self, outgoing: OutgoingCommand) -> None:
        command = outgoing.command
        if outgoing.resolve_flow is not None and isinstance(command, StartExecution):
            ref = outgoing.resolve_flow
            key = (str(ref.get("namespace")), str(ref.get("flowId") or ref.get("flow_id")))
            flow = self.flows.get(key)
            resolved = resolve_child(command, copy.deepcopy(flow) if flow else None, ref)
            if isinstance(resolved, ChildExecutionEnded):
                self.problems.append(f"note: subflow {key[0]}.{key[1]}: {resolved.error}")
            self.queue.append(resolved)
            return
        self.queue.append(command)

    # --- the worker ----------------------------------------------------------------------

    def _stop(self, execution_id: str, task_run_id: str, attempt: int) -> None:
        key = (execution_id, task_run_id, attempt)
        if key in self.running:
            self.running[key].ctx.cancelled.set()
        for job in self.pending_jobs:
            if (job.execution_id, job.task_run_id, job.attempt) == key:
                # Not started yet: it starts already cancelled and reports KILLED at once.
                job.context = {**job.context, "__cancelled__": True}

    def _start_job(self, job: Job) -> None:
        key = (job.execution_id, job.task_run_id, job.attempt)
        self.send(TaskStarted, job.execution_id, task_run_id=job.task_run_id, attempt=job.attempt)
        context = dict(job.context)
        cancelled = bool(context.pop("__cancelled__", False))
        ctx = TaskContext.for_job(
            execution_id=job.execution_id,
            task_run_id=job.task_run_id,
            attempt=job.attempt,
            task=job.task,
            variables=context,
            clock=lambda: self.now,
            sleeper=lambda seconds, event: self._sleep(key, seconds, event),
            on_log=self.worker_logs.append,
            kv=self.kv,
            triggers=self.triggers,
            log_source=self,
            storage=self.storage,
            secrets=self._secrets(job),
            expression_hooks=self._hooks(job),
        )
        if cancelled:
            ctx.cancelled.set()
        task = asyncio.ensure_future(self.registry.run(job.task, ctx))
        self.running[key] = _Running(job, ctx, task)

    @staticmethod
    def _secrets(job: Job) -> frozenset[str]:
        """Values of the SECRET inputs, from the job alone (as a real worker has them)."""
        inputs = job.context.get("inputs") or {}
        values = (inputs.get(name) for name in job.context.get("secretInputs") or [])
        return frozenset(str(v) for v in values if v not in (None, ""))

    def _hooks(self, job: Job) -> Any:
        def kv(key: str, namespace: str) -> Any:
            if (namespace, key) not in self.kv.entries:
                raise KeyError(key)
            return self.kv.entries[(namespace, key)]

        def read(uri: str) -> str:
            return self.storage.files[uri].decode()

        # errorLogs() sees the job's own copy: a worker cannot read the executor's state.
        shipped = job.context.get("errorLogs") or []
        return _expression_hooks(
            now=lambda: self.now, kv=kv, read=read, error_logs=lambda: list(shipped)
        )

    async def _sleep(
        self, key: tuple[str, str, int], seconds: float, cancelled: asyncio.Event
    ) -> bool:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers[key] = _Sleeper(self.now + timedelta(seconds=seconds), future)
        waiter: asyncio.Future[Any] = asyncio.ensure_future(cancelled.wait())
        try:
            await asyncio.wait([future, waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            self.sleepers.pop(key, None)
        return future.done() and not cancelled.is_set()

    async def fetch(
        self, execution_id: str, min_level: LogLevel, task_ids: list[str] | None
    ) -> list[LogLine]:
        """The LogSource hook of log.Fetch: the lines workers have written so far."""
        return [
            line
            for line in self.worker_logs
            if line.execution_id == execution_id
            and LEVELS[line.level] >= LEVELS[min_level]
            and (task_ids is None or line.task_id in task_ids)
        ]

    async def _settle(self) -> None:
        """Let running jobs progress until each is finished or asleep on the virtual clock."""
        for _ in range(_SETTLE_YIELDS):
            if not self._busy():
                return
            await asyncio.sleep(0)
        while busy := self._busy():
            await asyncio.wait(busy, timeout=_SETTLE_WAIT)

    def _busy(self) -> list[asyncio.Task[Any]]:
        return [
            r.task for k, r in self.running.items() if not r.task.done() and k not in self.sleepers
        ]

    def _collect(self) -> bool:
        finished = [k for k, r in self.running.items() if r.task.done()]
        for key in finished:
            running = self.running.pop(key)
            outcome = running.task.result()
            self.send(
                TaskResult,
                running.job.execution_id,
                task_run_id=running.job.task_run_id,
                attempt=running.job.attempt,
                state=outcome.state,
                outputs=outcome.outputs,
                error=outcome.error,
                metrics=outcome.metrics,
                error_logs=running.ctx.error_logs(),
                labels=outcome.labels,
                update=outcome.update,
            )
        return bool(finished)

    # --- the loop ------------------------------------------------------------------------

    async def run(self, until: Callable[[], bool] | None = None) -> bool:
        """Process until ``until()`` holds (True) or nothing can happen any more (False)."""
        deadline = EPOCH + timedelta(seconds=MAX_VIRTUAL_SECONDS)
        while True:
            if until is not None and until():
                return True
            if self.applied > MAX_COMMANDS:
                raise HarnessError(f"more than {MAX_COMMANDS} commands: the run never settles")
            if self.queue:
                self._apply(self.queue.popleft())
                continue
            if self.pending_jobs:
                while self.pending_jobs:
                    self._start_job(self.pending_jobs.popleft())
                continue
            await self._settle()
            if self._collect():
                continue
            if not self._advance(deadline):
                return until is None

    def _advance(self, deadline: datetime) -> bool:
        """Jump the clock to the next timer or waking sleeper; False when there is none."""
        timer = min(self.timers.values(), key=lambda t: t.fire_at, default=None)
        sleeper_key = min(self.sleepers, key=lambda k: self.sleepers[k].wake, default=None)
        timer_at = parse_time(timer.fire_at) if timer else None
        sleeper_at = self.sleepers[sleeper_key].wake if sleeper_key else None
        if timer is None and sleeper_key is None:
            return False
        target = min(t for t in (timer_at, sleeper_at) if t is not None)
        if self.running and target > self.now + timedelta(seconds=HEARTBEAT_EVERY):
            self.now += timedelta(seconds=HEARTBEAT_EVERY)
            for execution_id, run_id, attempt in self.running:
                self.send(Heartbeat, execution_id, task_run_id=run_id, attempt=attempt)
            return self._within(deadline)
        if sleeper_at is not None and (timer_at is None or sleeper_at <= timer_at):
            assert sleeper_key is not None
            self.now = max(self.now, sleeper_at)
            self.sleepers.pop(sleeper_key).future.set_result(None)
        else:
            assert timer is not None
            assert timer_at is not None
            self.now = max(self.now, timer_at)
            del self.timers[timer.timer_id]
            self.send(TimerFired, timer.execution_id, timer_id=timer.timer_id)
        return self._within(deadline)

    def _within(self, deadline: datetime) -> bool:
        if self.now > deadline:
            raise HarnessError(f"virtual time passed {MAX_VIRTUAL_SECONDS}s: the run never ends")
        return True

    # --- views ---------------------------------------------------------------------------

    def executions_of(self, flow_id: str) -> list[ExecutionState]:
        return [self.states[e] for e in self.created if self.states[e].flow_id == flow_id]

    def logs_of(self, execution_id: str) -> list[LogRecord]:
        worker = [
            LogRecord(line.execution_id, line.task_id, line.level, line.message)
            for line in self.worker_logs
            if line.execution_id == execution_id
        ]
        return worker + [r for r in self.reducer_logs if r.execution_id == execution_id]

    def task_running(self, execution_id: str, task_id: str | None = None) -> bool:
        """Whether a job of that execution (or of one of its Loop iterations) and task is
        started and not finished."""
        family = self.family(execution_id)
        for (ex, run_id, _), running in self.running.items():
            if ex not in family or running.task.done():
                continue
            if task_id is None:
                return True
            state = self.states.get(ex)
            if state and run_id in state.task_runs and state.task_runs[run_id].task_id == task_id:
                return True
        return False

    def family(self, execution_id: str) -> set[str]:
        """The execution and its Loop iterations (Kestra 2.0), at any depth."""
        out = {execution_id}
        grew = True
        while grew:
            grew = False
            for state in self.states.values():
                loop = state.loop
                if loop and loop.get("execution_id") in out and state.execution_id not in out:
                    out.add(state.execution_id)
                    grew = True
        return out


def _wire(item: Any, from_dict: Callable[[dict[str, Any]], _T], what: str) -> _T:
    """``item`` after a trip through JSON, as the bus carries it."""
    try:
        return from_dict(orjson.loads(orjson.dumps(item.to_dict())))
    except (TypeError, ValueError, KeyError, orjson.JSONEncodeError) as exc:
        raise HarnessError(f"this {what} does not survive JSON ({exc}): {item!r:.300}") from exc


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# ==== scenarios ================================================================================


@dataclass
class Run:
    """What a scenario produced: the world, the execution under test and named snapshots."""

    world: World
    main: str
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    numbered: dict[str, str] = field(default_factory=dict)  # "execution#1" -> id


class Unsupported(HarnessError):
    """The scenario needs a component that does not exist yet."""


def _state_of(world: World, execution_id: str) -> str | None:
    state = world.states.get(execution_id)
    return state.state.value if state else None


def _terminal(world: World, execution_id: str) -> bool:
    state = world.states.get(execution_id)
    return bool(state and state.state.is_terminal)


async def _run_plain(world: World, sc: dict[str, Any], inputs: dict[str, Any] | None) -> Run:
    labels = {item["key"]: item["value"] for item in sc.get("exec_labels") or []}
    main = world.start(sc["namespace"], sc["id"], inputs, labels)
    await world.run()
    return Run(world, main)


async def _run_restart(
    world: World, sc: dict[str, Any], inputs: dict[str, Any] | None, times: int
) -> Run:
    main = world.start(sc["namespace"], sc["id"], inputs)
    await world.run()
    run = Run(world, main)
    for number in range(1, times + 1):
        snapshot = world.states[main].to_dict()
        run.snapshots[f"run{number}"] = snapshot
        if number == 1:
            run.snapshots["first_run"] = snapshot
        world.send(Restart, main)
        await world.run()
    run.snapshots[f"run{times + 1}"] = world.states[main].to_dict()
    return run


async def _run_until_paused(world: World, sc: dict[str, Any]) -> str:
    main = world.start(sc["namespace"], sc["id"])
    reached = await world.run(until=lambda: _state_of(world, main) == "PAUSED")
    if not reached:
        raise HarnessError(f"the execution never paused; it ended {_state_of(world, main)}")
    return main


async def _run_pause_mark_success(world: World, sc: dict[str, Any], _: Any) -> Run:
    main = await _run_until_paused(world, sc)
    paused = [r.id for r in world.states[main].task_runs.values() if r.state.value == "PAUSED"]
    world.send(Resume, main, task_run_id=paused[0] if paused else None)
    await world.run()
    return Run(world, main)


async def _run_resume_with_inputs(world: World, sc: dict[str, Any], _: Any) -> Run:
    main = await _run_until_paused(world, sc)
    # Kestra refuses a resume that lacks a required onResume input; the execution stays paused.
    world.send(Resume, main, inputs={})
    await world.run(until=lambda: not world.queue)
    if _state_of(world, main) != "PAUSED":
        world.problems.append(
            "resuming without the required onResume input 'asked' was not refused: execution "
            f"went {_state_of(world, main)} (Kestra rejects it: missing required input)"
        )
        await world.run()
        return Run(world, main)
    uri = world.storage.put_sync(main, "data.txt", main.encode())
    world.send(Resume, main, inputs={"asked": "restarted", "data": uri})
    await world.run()
    return Run(world, main)


async def _run_resume_no_inputs(world: World, sc: dict[str, Any], _: Any) -> Run:
    main = await _run_until_paused(world, sc)
    world.send(Resume, main, inputs={})
    await world.run()
    return Run(world, main)


async def _run_concurrency(world: World, sc: dict[str, Any], _: Any) -> Run:
    first = world.start(sc["namespace"], sc["id"])

    def first_running() -> bool:
        # In progress with a task started: RUNNING, or PAUSED on a Pause task (a Log task run
        # inline by the executor goes CREATED -> SUCCESS within one batch, never seen RUNNING).
        state = world.states.get(first)
        return bool(
            state
            and state.state.value in ("RUNNING", "PAUSED")
            and any(r.state.value in ("RUNNING", "PAUSED") for r in state.task_runs.values())
        )

    if not await world.run(until=first_running):
        raise HarnessError(f"execution #1 never ran a task; it ended {_state_of(world, first)}")
    second = world.start(sc["namespace"], sc["id"])
    await world.run()
    return Run(world, second, numbered={"execution#1": first, "execution#2": second})


async def _run_kill(world: World, sc: dict[str, Any], _: Any) -> Run:
    main = world.start(sc["namespace"], sc["id"])
    if not await world.run(until=lambda: world.task_running(main, "sleep")):
        raise HarnessError(
            f"the Sleep task never started; execution ended {_state_of(world, main)}"
        )
    world.send(Kill, main)
    await world.run()
    history = [h[0] for h in world.states[main].history]
    if "KILLING" not in history:
        world.problems.append(f"execution history {history} never went through KILLING")
    return Run(world, main)


async def _run_toggle(world: World, sc: dict[str, Any], _: Any) -> Run:
    key = (sc["namespace"], sc["id"], "schedule")
    world.triggers.disabled[key] = True  # the saved trigger row the scenario starts from
    run = await _run_plain(world, sc, None)
    if world.triggers.disabled.get(key) is not False:
        world.problems.append(
            f"trigger {key} should be enabled after the run; disabled={world.triggers.disabled}"
        )
    return run


async def _run_then(world: World, namespace: str, flow_id: str, expect: str) -> str:
    """Run one execution of another flow to its end; a different end is a finding."""
    execution_id = world.start(namespace, flow_id)
    await world.run()
    if _state_of(world, execution_id) != expect:
        world.problems.append(f"{flow_id} ended {_state_of(world, execution_id)}, not {expect}")
    return execution_id


def _listener_runs(world: World, sc: dict[str, Any]) -> list[str]:
    return [s.execution_id for s in world.executions_of(sc["id"])]


async def _run_flow_trigger(world: World, sc: dict[str, Any], first: tuple[str, str]) -> Run:
    """Run ``first`` (flow id, expected end): the listener must not start; then the last
    required flow, after which the listener's Flow trigger must have started it once."""
    ns = sc["namespace"]
    await _run_then(world, ns, *first)
    if early := _listener_runs(world, sc):
        world.problems.append(f"{sc['id']} started after {first[0]} alone: {early}")
    await _run_then(world, ns, sc["requires"][-1].removesuffix(".yaml"), "SUCCESS")
    started = _listener_runs(world, sc)
    if len(started) != 1:
        found = "; ".join([*world.problems, f"{len(started)} executions started in all"])
        raise HarnessError(f"the Flow trigger of {sc['id']} did not start it once: {found}")
    return Run(world, started[0])


async def _run_webhook_condition(world: World, sc: dict[str, Any], _: Any) -> Run:
    key = "webhookKey"
    met = call_webhook(world, sc["namespace"], sc["id"], key, body=b'{"hello":"world"}')
    unmet = call_webhook(world, sc["namespace"], sc["id"], key, body=b'{"hello":"webhook"}')
    if (unmet.status, unmet.command) != (204, None):
        world.problems.append(f"condition not met answered {unmet.status} (Kestra: 204, nothing)")
    if met.command is None:
        raise HarnessError(f"the webhook answered {met.status} ({met.reason}), not 200")
    await world.run()
    return Run(world, met.command.execution_id)


async def _run_webhook_dynamic_key(world: World, sc: dict[str, Any], _: Any) -> Run:
    raw = call_webhook(world, sc["namespace"], sc["id"], "{{ flow.id }}")
    if raw.status != 404:
        world.problems.append(f"the key's template text was accepted ({raw.status}), not 404")
    result = call_webhook(world, sc["namespace"], sc["id"], "webhook-dynamic-key")
    if result.command is None:
        raise HarnessError(f"the webhook answered {result.status} ({result.reason}), not 200")
    await world.run()
    return Run(world, result.command.execution_id)


ACTIONS: dict[str, Callable[[World, dict[str, Any], Any], Any]] = {
    "restart-last-failed": lambda w, sc, i: _run_restart(w, sc, i, 1),
    "restart-local-errors": lambda w, sc, i: _run_restart(w, sc, i, 1),
    "restart-pause-last-failed": lambda w, sc, i: _run_restart(w, sc, i, 1),
    "failed-first-restart-twice": lambda w, sc, i: _run_restart(w, sc, i, 2),
    "pause-no-tasks": _run_pause_mark_success,
    "pause-on-resume-inputs": _run_resume_with_inputs,
    "pause-on-resume-optional": _run_resume_no_inputs,
    "concurrency-cancel": _run_concurrency,
    "concurrency-fail": _run_concurrency,
    "concurrency-cancel-pause": _run_concurrency,
    "kill-running": _run_kill,
    "flow-trigger-namespace-condition-after-failure": lambda w, sc, _: _run_flow_trigger(
        w, sc, ("trigger-multiplecondition-flow-c", "FAILED")
    ),
    "multiple-condition-trigger": lambda w, sc, _: _run_flow_trigger(
        w, sc, ("trigger-multiplecondition-flow-a", "SUCCESS")
    ),
    "trigger-toggle-legacy-alias": _run_toggle,
    "webhook-with-condition": _run_webhook_condition,
    "webhook-dynamic-key": _run_webhook_dynamic_key,
}
# Scenarios whose execution under test is the last one of the flow (retries as new executions).
_LAST_EXECUTION = frozenset(
    {
        "retry-new-execution-task-duration",
        "retry-new-execution-task-attempts",
        "retry-new-execution-flow-duration",
    }
)


def _setup(world: World, sc: dict[str, Any]) -> None:
    """Preconditions from the manifest's `setup` text (free text, so matched by scenario)."""
    if sc["scenario"] == "kv-get":
        world.kv.entries[("io.kestra.tests", "my-key")] = {"field": "value"}
    elif sc["scenario"] == "kv-missing":
        world.kv.entries.clear()
    elif sc.get("setup") and sc["scenario"] not in ACTIONS:
        raise HarnessError(f"the harness does not know how to prepare: {sc['setup']}")


async def execute(sc: dict[str, Any], corpus: pathlib.Path, inputs: dict[str, Any] | None) -> Run:
    """Deploy the scenario's flows, prepare, and perform its run and action."""
    world = World()
    for name in [sc["file"], *(sc.get("requires") or [])]:
        world.deploy_file(corpus / "flows" / name)
    _setup(world, sc)
    action = ACTIONS.get(sc["scenario"])
    if action is None and sc.get("action") and sc["scenario"] not in _LAST_EXECUTION:
        raise HarnessError(f"the harness does not know how to perform: {sc['action']}")
    mode = sc.get("inputs_mode")
    if mode == "typed":  # what the API does when an execution is created with inputs
        declared = world.flow(sc["namespace"], sc["id"]).get("inputs")
        try:
            inputs = resolve_inputs(declared, inputs, mode="typed")
        except InputValidationError as exc:
            raise HarnessError(f"the inputs were refused: {exc.message}") from exc
    run: Run = await (action or _run_plain)(world, sc, None if mode == "none" else inputs)
    if sc["scenario"] in _LAST_EXECUTION:
        executions = world.executions_of(sc["id"])
        if executions:
            run.main = executions[-1].execution_id
    return run


def scenario_ids(scenarios: Iterable[dict[str, Any]]) -> list[str]:
    return [str(sc["scenario"]) for sc in scenarios]
