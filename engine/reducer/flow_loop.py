"""Loop (Kestra 2.0): one isolated sub-execution per value.

Kestra 2.0 (``plugin/core/flow/Loop.java``, ``ExecutorService`` ``case Loop``,
``LoopExecutionEventMessageHandler``, ``FlowableUtils.resolveValues``, ``RunVariables``):

- ``values`` is rendered into the iterations. A string renders, then parses as JSON: an
  array gives one iteration per element, an object one per entry (``item.key``). A list
  gives one per element (strings rendered, numbers as text, maps rendered then written as
  compact JSON); a map one per entry. Any other element (a boolean, a nested list) or a null
  fails the task ("Found a null value inside the iteration values=..."). Duplicate list
  values collapse into one iteration (Kestra's ``distinct()``). ``item.value`` is always a
  string: an object arrives as JSON text, read with ``fromJson(item.value)``.
- Each iteration is an execution of its own (Kestra's ``ExecutionKind.LOOP``): same flow
  revision, labels, inputs and trigger as the parent, running only the Loop's ``tasks``
  (then its ``errors`` on failure and its ``finally``, per iteration). Its tasks see
  ``item`` = ``{index, value, key?, parent?, parents?}`` (``parent`` the enclosing Loop's
  item, ``parents`` every enclosing one, outermost first), the parent's task outputs as
  they were when the iteration started plus its own, the parent's ``execution`` and ``vars``.
  ``taskrun.value`` is null inside an iteration.
- ``concurrencyLimit`` (default 1; 0: no limit) iterations run at once; the next starts when
  one ends. The Loop task run's outputs: ``iterationCount``, ``runningIterations``,
  ``terminatedIterations`` and, when the Loop declares ``outputs``, ``outputs``: one entry
  per ended iteration, ``{item: {value, iteration, key?}, outputs: {...}}`` — each
  iteration's ``outputs`` rendered and typed when it ends (a failure to render fails the
  iteration) — read with ``loopOutputs(outputs.<loop>.outputs, '<id>')``.
- ``transmitFailed`` (default true): an iteration that ends FAILED or KILLED ends the loop
  FAILED (WARNING with allowFailure); with false, failed iterations are counted and the loop
  goes on.
- An iteration that pauses pauses the Loop task run (so the parent execution shows PAUSED);
  resuming the parent resumes its paused iterations.
- Restarting the parent restarts its failed iterations in place and carries on with the
  ones never started. An iteration can also be restarted or replayed on its own: its new
  end reaches the parent's Loop, which re-opens a FAILED parent when the loop can go on.

Where Headwater chose (Kestra 2.0's snapshot is silent or surprising): the loop waits for
its running iterations before it ends on a failure (Kestra ends it at once and lets them
run on, unattended); an iteration ending WARNING makes the loop WARNING (every other Kestra
flowable keeps the worst state; Kestra's Loop drops it); ``outputs`` are listed in iteration
order, not in the order iterations ended; restarting restarts every failed iteration, not
only the last one; an iteration's ``execution`` variable is its parent's (the root one for
nested loops). ``values`` rendering to a ``kestra://`` URI: one iteration per line of that
ION file, read by a worker (``executors/core_loop.py``; the executor cannot read storage) and
kept in the Loop's state, at most ``MAX_VALUES`` of them; iteration outputs are then kept
like the others (Kestra's AUTO would STORE them in a file). ``fetchType: STORE`` needs the
worker's storage and is refused with a message.
"""

from __future__ import annotations

import json
from typing import Any

from engine.errors import ExpressionError
from engine.reducer.commands import ChildExecutionEnded
from engine.reducer.context import Ctx, Flowable, register
from engine.reducer.ids import make_id
from engine.reducer.model import (
    JSON,
    Kill,
    OutgoingCommand,
    Restart,
    Resume,
    StartExecution,
    TaskRun,
)
from engine.reducer.scope import end_flowable, fail
from engine.reducer.states import State, worst

LOOP = "io.kestra.plugin.core.flow.Loop"
_WELL = (State.SUCCESS, State.WARNING, State.SKIPPED)
DEFAULT_LIMIT = 1  # Kestra 2.0's Loop.concurrencyLimit default
_URI_SCHEMES = ("kestra://", "nsfile://", "file://")


class LoopValuesError(ValueError):
    """The values cannot be iterated (Kestra's IllegalVariableEvaluationException)."""


class ValuesInFile(Exception):
    """The values render to an internal-storage URI: a worker reads them."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.uri = uri


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _element(ctx: Ctx, run: TaskRun, values: Any, element: Any) -> str:
    """FlowableUtils.valueAsString."""
    if isinstance(element, bool):
        raise LoopValuesError(f"Unknown value element type: {type(element).__name__}")
    if isinstance(element, str):
        return ctx.renderer.render(element, ctx.variables(run))
    if isinstance(element, int | float):
        return str(element)
    if isinstance(element, dict):
        return _compact(ctx.renderer.render_value(element, ctx.variables(run)))
    if element is None:
        raise LoopValuesError(f"Found a null value inside the iteration values={_compact(values)}")
    raise LoopValuesError(f"Unknown value element type: {type(element).__name__}")


def resolve_values(ctx: Ctx, run: TaskRun, raw: Any) -> tuple[list[str], list[str] | None]:
    """(values, keys): keys is None for a list, the map's keys for a map."""
    if isinstance(raw, str):
        text = ctx.renderer.render(raw, ctx.variables(run))
        if text.strip().startswith("kestra://"):
            raise ValuesInFile(text.strip())
        if text.strip().startswith(_URI_SCHEMES):
            raise LoopValuesError(
                f"values {text.strip()!r}: a Loop reads its values from an internal-storage "
                "file (kestra://) or takes a list, a map or a JSON array/object"
            )
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise LoopValuesError(f"values {text!r} is not a JSON array or object: {exc}") from None
        if isinstance(parsed, list):
            out = []
            for item in parsed:
                if item is None:
                    raise LoopValuesError(
                        f"Found a null value inside the iteration values={_compact(raw)}"
                    )
                out.append(item if isinstance(item, str) else _compact(item))
            return list(dict.fromkeys(out)), None
        if isinstance(parsed, dict):
            keys = [str(k) for k in parsed]
            return [_element(ctx, run, parsed, v) for v in parsed.values()], keys
        raise LoopValuesError(f"Unknown value type: {type(parsed).__name__}")
    if isinstance(raw, list):
        return list(dict.fromkeys(_element(ctx, run, raw, v) for v in raw)), None
    if isinstance(raw, dict):
        keys = [str(k) for k in raw]
        return [_element(ctx, run, raw, v) for v in raw.values()], keys
    raise LoopValuesError(f"Unknown value type: {type(raw).__name__}")


def limit_of(ctx: Ctx, run: TaskRun, task: JSON) -> int:
    raw = task.get("concurrencyLimit", DEFAULT_LIMIT)
    if isinstance(raw, str):
        raw = ctx.renderer.render(raw, ctx.variables(run))
    limit = int(raw) if raw is not None else DEFAULT_LIMIT
    if limit < 0:
        raise LoopValuesError(f"concurrencyLimit must be 0 or more, got {limit}")
    return limit


def _flag(ctx: Ctx, run: TaskRun, task: JSON, key: str, default: bool) -> bool:
    raw = task.get(key, default)
    if isinstance(raw, str):
        return ctx.renderer.is_true(raw, ctx.variables(run))
    return bool(raw)


def iteration_execution_id(execution_id: str, run_id: str, index: int) -> str:
    return make_id("loop", execution_id, run_id, index)


def _item(index: int, value: str, key: str | None) -> JSON:
    item: JSON = {"index": index, "value": value}
    if key is not None:
        item["key"] = key
    return item


@register
class LoopTask(Flowable):
    types = (LOOP,)

    def start(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        ctx.set_state(run, State.RUNNING)
        if str(task.get("fetchType") or "AUTO") == "STORE":
            fail(ctx, run, f"task {run.task_id}: fetchType STORE is not supported by Headwater")
            return
        try:
            limit = limit_of(ctx, run, task)
            values, keys = resolve_values(ctx, run, task.get("values"))
        except ValuesInFile as found:
            # One iteration per line of the file: a worker reads it (on_job_result).
            ctx.dispatch(run, {"id": run.task_id, "type": LOOP, "values": found.uri}, None)
            return
        except (LoopValuesError, ExpressionError, ValueError, TypeError) as exc:
            fail(ctx, run, f"task {run.task_id}: {getattr(exc, 'message', exc)}")
            return
        self._begin(ctx, run, task, values, keys, limit)

    def _begin(
        self,
        ctx: Ctx,
        run: TaskRun,
        task: JSON,
        values: list[str],
        keys: list[str] | None,
        limit: int,
    ) -> None:
        run.data["loop"] = {
            "values": values,
            "keys": keys,
            "limit": limit,
            "iterations": {},  # index (text) -> {"id", "state", "outputs"?}
        }
        self.step(ctx, run, task)

    takes_job_results = True

    def on_job_result(
        self,
        ctx: Ctx,
        run: TaskRun,
        task: JSON,
        state: State,
        outputs: JSON,
        error: str | None,
    ) -> None:
        """The worker read the values file: start the iterations (or fail with its error)."""
        values = outputs.get("values") if state == State.SUCCESS else None
        if not isinstance(values, list):
            fail(ctx, run, f"task {run.task_id}: {error or 'the values file could not be read'}")
            return
        ctx.set_state(run, State.RUNNING)
        self._begin(ctx, run, task, [str(v) for v in values], None, limit_of(ctx, run, task))

    def step(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        data = run.data.get("loop")
        if not isinstance(data, dict):
            return
        values: list[str] = data["values"]
        iterations: dict[str, JSON] = data["iterations"]
        transmit = _flag(ctx, run, task, "transmitFailed", True)
        states = [State(it["state"]) for it in iterations.values()]
        running = sum(1 for s in states if not s.is_terminal)
        failed = transmit and any(s in (State.FAILED, State.KILLED) for s in states)
        limit = int(data.get("limit") or 0)
        if not ctx.state.killing and not failed:
            for index in range(len(values)):
                if limit and running >= limit:
                    break
                if str(index) in iterations:
                    continue
                self._launch(ctx, run, task, index)
                running += 1
        self._outputs(ctx, run, task)
        if running:
            paused = any(State(it["state"]) == State.PAUSED for it in iterations.values())
            if paused and run.state == State.RUNNING:
                ctx.set_state(run, State.PAUSED)
            elif not paused and run.state == State.PAUSED:
                ctx.set_state(run, State.RUNNING)
            return
        if ctx.state.killing:
            end_flowable(ctx, run, task, State.KILLED)
        elif failed:
            end_flowable(ctx, run, task, State.FAILED)
        elif len(iterations) == len(values):
            ended = [s for s in states if s == State.WARNING]
            end_flowable(ctx, run, task, worst([State.SUCCESS, *ended]))

    def _launch(self, ctx: Ctx, run: TaskRun, task: JSON, index: int) -> None:
        st = ctx.state
        data = run.data["loop"]
        keys = data.get("keys")
        key = keys[index] if keys else None
        value = data["values"][index]
        child = iteration_execution_id(st.execution_id, run.id, index)
        outer = st.loop
        parents: list[JSON] = []
        if outer is not None:  # a Loop inside an iteration: the enclosing items, outermost first
            parents = [
                *(outer.get("parents") or []),
                _item(outer["index"], outer["value"], outer.get("key")),
            ]
        variables = ctx.variables(run)
        ref: JSON = {
            "execution_id": st.execution_id,
            "task_run_id": run.id,
            "task_id": run.task_id,
            "index": index,
            "key": key,
            "value": value,
            "parents": parents,
            # What the iteration sees of its parent: its task outputs so far, its
            # `execution` and its `vars` (Kestra's RunVariables read them from the parent).
            "outputs": variables.get("outputs") or {},
            "execution": variables.get("execution"),
            "vars": variables.get("vars"),
            "root_execution_id": (outer or {}).get("root_execution_id") or st.execution_id,
        }
        command = StartExecution(
            command_id=make_id("start", child),
            execution_id=child,
            namespace=st.namespace,
            flow_id=st.flow_id,
            flow=st.flow,
            inputs=dict(st.inputs),
            labels=dict(st.labels),
            trigger=st.trigger,
            created=ctx.now,
            loop=ref,
        )
        ctx.decision.commands.append(OutgoingCommand(command))
        data["iterations"][str(index)] = {"id": child, "state": State.CREATED.value}
        ctx.touch(run)

    def _outputs(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        data = run.data["loop"]
        iterations: dict[str, JSON] = data["iterations"]
        ended = [(int(i), it) for i, it in iterations.items() if State(it["state"]).is_terminal]
        outputs: JSON = {
            "iterationCount": len(data["values"]),
            "runningIterations": len(iterations) - len(ended),
            "terminatedIterations": len(ended),
        }
        if task.get("outputs"):
            entries = []
            for index, it in sorted(ended, key=lambda pair: pair[0]):
                if not it.get("outputs"):
                    continue
                item: JSON = {"value": data["values"][index], "iteration": index}
                keys = data.get("keys")
                if keys:
                    item["key"] = keys[index]
                entries.append({"item": item, "outputs": it["outputs"]})
            if entries:
                outputs["outputs"] = entries
        if outputs != run.outputs:
            ctx.set_outputs(run, outputs)

    def on_child_ended(
        self, ctx: Ctx, run: TaskRun, task: JSON, ended: ChildExecutionEnded
    ) -> None:
        data = run.data.get("loop")
        index = ended.loop_index
        if not isinstance(data, dict) or index is None:
            ctx.log(
                "WARN", f"loop {run.task_id}: notice of {ended.child_execution_id} dropped", run
            )
            return
        record = data["iterations"].get(str(index))
        if record is None:
            ctx.log("WARN", f"loop {run.task_id}: no iteration {index} started", run)
            return
        state = State(ended.state)
        if ended.outputs_error is not None:
            ctx.log(
                "ERROR",
                f"iteration {index}: Failed to render output values: {ended.outputs_error}",
                run,
            )
        if record["id"] != ended.child_execution_id:
            # A replay of the iteration: it is the iteration now.
            record["id"] = ended.child_execution_id
        previous = State(record["state"])
        record["state"] = state.value
        if ended.outputs:
            record["outputs"] = ended.outputs
        else:
            record.pop("outputs", None)
        ctx.touch(run)
        if run.state.is_terminal:
            # An iteration restarted or replayed on its own ended well: the loop may go on.
            if previous in (State.FAILED, State.KILLED) and state in _WELL:
                self._reopen(ctx, run, task)
            if run.state.is_terminal:
                self._outputs(ctx, run, task)
                return
        self.step(ctx, run, task)

    def _reopen(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        """A FAILED loop of an ended parent goes on when none of its iterations is failed
        any more: the parent runs again, as a restart would have it."""
        data = run.data["loop"]
        if run.state != State.FAILED or ctx.state.killing:
            return
        states = [State(it["state"]) for it in data["iterations"].values()]
        if any(s in (State.FAILED, State.KILLED) for s in states):
            return
        st = ctx.state
        if st.state.is_terminal:
            if st.state not in (State.FAILED, State.KILLED, State.WARNING):
                return
            st.killing = False
            st.generation += 1
            st.after = []
            ctx.set_exec_state(State.RESTARTED)
        ctx.set_state(run, State.RESTARTED)
        ctx.set_state(run, State.RUNNING)

    def on_resume(self, ctx: Ctx, run: TaskRun, task: JSON, inputs: JSON) -> str | None:
        data = run.data.get("loop") or {}
        paused = [it for it in data.get("iterations", {}).values() if it["state"] == "PAUSED"]
        for it in paused:
            command = Resume(
                command_id=make_id("resume", it["id"], ctx.now, ctx.state.seq),
                execution_id=it["id"],
                inputs=dict(inputs),
            )
            ctx.decision.commands.append(OutgoingCommand(command))
        return None if paused else f"loop {run.task_id} has no paused iteration"

    def on_kill(self, ctx: Ctx, run: TaskRun) -> bool:
        """The parent is being killed: kill the iterations that still run (the loop is
        KILLED at once, as a Subflow task run is; their ends are then only recorded)."""
        ctx.stop(run, "killed")  # a worker may be reading its values
        data = run.data.get("loop") or {}
        for it in data.get("iterations", {}).values():
            if not State(it["state"]).is_terminal:
                command = Kill(command_id=make_id("kill", it["id"], ctx.now), execution_id=it["id"])
                ctx.decision.commands.append(OutgoingCommand(command))
        return True

    def on_restart(self, ctx: Ctx, run: TaskRun) -> bool:
        """The parent restarts: restart the failed iterations in place; False when the loop
        failed before any iteration (it is then made anew)."""
        data = run.data.get("loop")
        if not isinstance(data, dict):
            return False
        for it in data["iterations"].values():
            if State(it["state"]) in (State.FAILED, State.KILLED):
                command = Restart(
                    command_id=make_id("restart", it["id"], ctx.state.generation),
                    execution_id=it["id"],
                )
                ctx.decision.commands.append(OutgoingCommand(command))
                it["state"] = State.RESTARTED.value
        ctx.touch(run)
        return True


def iteration_notice(
    st: Any, state: State, outputs: JSON | None, error: str | None
) -> OutgoingCommand:
    """What an iteration tells its parent's Loop (its state changed)."""
    loop: JSON = st.loop
    command = ChildExecutionEnded(
        command_id=make_id("iteration", st.execution_id, len(st.history)),
        execution_id=str(loop["execution_id"]),
        child_execution_id=st.execution_id,
        parent_task_run_id=str(loop["task_run_id"]),
        state=state.value,
        outputs=outputs,
        outputs_error=error,
        loop_index=int(loop["index"]),
    )
    return OutgoingCommand(command)
