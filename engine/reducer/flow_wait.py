"""Flowables that wait: Pause and WaitFor.

Pause (Kestra 0.20 ``plugin/core/flow/Pause.java``, ``ExecutorService.handlePausedDelay``,
``ExecutionService.resume``/``markAs``):

- the task run goes CREATED -> RUNNING -> PAUSED (``needPause``), and the execution PAUSED;
- ``delay`` and ``timeout`` are rendered (they may be expressions: inputs, outputs...) with
  the execution's variables when the run pauses; a rendering to nothing means none. With a
  delay, the run resumes (RUNNING) ``delay`` after it paused; with only a timeout, it fails
  (PAUSED -> FAILED) ``timeout`` after it paused. A value that does not render or is not a
  duration fails the task run with the message;
- ``pauseDuration`` with ``behavior`` RESUME (default) / WARN / FAIL / CANCEL (later Kestra
  versions) is read the same way;
- a resume (the API, a Resume task, or the delay) moves the paused run to RUNNING, then,
  without legacy ``tasks``, to SUCCESS at once; the execution goes RESTARTED then RUNNING
  (``markAs`` then ``handleRestart``: "Flow restarted") once no task run is paused. Resume
  inputs are validated against ``onResume`` like an execution's inputs and become
  ``outputs.<pause>.onResume`` (only when ``onResume`` is declared). The legacy ``tasks`` then
  run, with ``errors``.

WaitFor: run ``tasks``, then render ``condition``; true ends the run SUCCESS, false starts the
next iteration after ``checkFrequency.interval`` — until ``maxIterations`` or ``maxDuration``
is reached (FAILED with ``failOnMaxReached``, else SUCCESS). ``outputs.<id>.iterationCount``
counts finished iterations, from 0.
"""

from __future__ import annotations

from engine.errors import ExpressionError
from engine.flows.inputs import InputValidationError, resolve_inputs
from engine.reducer.context import Ctx, Flowable, register
from engine.reducer.ids import make_id, parse_duration, seconds_between
from engine.reducer.model import JSON, TaskRun, Timer
from engine.reducer.scope import end_flowable, fail, run_scope
from engine.reducer.states import State

FLOW = "io.kestra.plugin.core.flow."
# Kestra's WaitFor defaults: check every second, at most 100 times, for at most one hour.
WAITFOR_INTERVAL = 1.0
WAITFOR_MAX_ITERATIONS = 100
WAITFOR_MAX_DURATION = 3600.0


def _rendered_duration(ctx: Ctx, value: object) -> float | None:
    """A Property<Duration>: rendered, then read; blank is none (Kestra: "rendering can lead
    to null")."""
    if value is None:
        return None
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        value = ctx.renderer.render(value, ctx.variables(None))
        if value is None or not str(value).strip():
            return None
    return parse_duration(value)


@register
class PauseTask(Flowable):
    types = (f"{FLOW}Pause",)

    def start(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        ctx.set_state(run, State.RUNNING)
        ctx.set_state(run, State.PAUSED)
        try:
            delay = _rendered_duration(ctx, task.get("delay"))
            timeout = _rendered_duration(ctx, task.get("timeout"))
            duration = _rendered_duration(ctx, task.get("pauseDuration"))
        except (ExpressionError, ValueError) as exc:
            fail(ctx, run, f"Pause {run.task_id}: {getattr(exc, 'message', exc)}")
            return
        behavior = str(task.get("behavior", "RESUME")).upper()
        if delay is not None:
            duration, behavior = delay, "RESUME"
        elif duration is None and timeout is not None:
            duration, behavior = timeout, "FAIL"
        if duration is not None:
            ctx.arm(
                make_id("pause", run.id),
                duration,
                "pause",
                {"run": run.id, "behavior": behavior},
            )

    def on_timer(self, ctx: Ctx, run: TaskRun, task: JSON, timer: Timer) -> None:
        if run.state != State.PAUSED:
            return
        behavior = timer.data.get("behavior", "RESUME")
        if behavior == "FAIL":
            ctx.log("ERROR", f"Pause {run.task_id} timed out", run)
            end_flowable(ctx, run, task, State.FAILED)
        elif behavior == "CANCEL":
            ctx.log("WARN", f"Pause {run.task_id} timed out: cancelling", run)
            end_flowable(ctx, run, task, State.KILLED)
        else:
            if behavior == "WARN":
                run.data["warn"] = True
            ctx.set_state(run, State.RUNNING)
            self.step(ctx, run, task)
        restart_when_unpaused(ctx)

    def on_resume(self, ctx: Ctx, run: TaskRun, task: JSON, inputs: JSON) -> str | None:
        try:  # the same typed validation as an execution's own inputs
            values = resolve_inputs(task.get("onResume"), inputs, mode="typed")
        except InputValidationError as exc:
            return exc.message
        ctx.cancel_for(run)
        if task.get("onResume") is not None:
            ctx.set_outputs(run, {"onResume": values})
        ctx.set_state(run, State.RUNNING)
        self.step(ctx, run, task)
        restart_when_unpaused(ctx)
        return None

    def step(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        if run.state != State.RUNNING:
            return
        final = run_scope(
            ctx, run, task.get("tasks"), task.get("errors"), task.get("finally"), run.values
        )
        if final is not None:
            if final == State.SUCCESS and run.data.get("warn"):
                final = State.WARNING
            end_flowable(ctx, run, task, final)


def restart_when_unpaused(ctx: Ctx) -> None:
    """ExecutionService.markAs: a PAUSED execution with no paused task run left is RESTARTED
    (the walk that follows moves it to RUNNING, as ExecutorService.handleRestart does)."""
    st = ctx.state
    if st.state == State.PAUSED and not any(r.state == State.PAUSED for r in st.task_runs.values()):
        if ctx.set_exec_state(State.RESTARTED):
            ctx.log("INFO", "Flow restarted")


@register
class WaitForTask(Flowable):
    types = (f"{FLOW}WaitFor",)

    @staticmethod
    def _limits(task: JSON) -> tuple[float, int, float]:
        raw = task.get("checkFrequency")
        freq: JSON = raw if isinstance(raw, dict) else {}
        interval = freq.get("interval", task.get("interval", WAITFOR_INTERVAL))
        max_it = freq.get("maxIterations", task.get("maxIterations", WAITFOR_MAX_ITERATIONS))
        max_dur = freq.get("maxDuration", task.get("maxDuration", WAITFOR_MAX_DURATION))
        return parse_duration(interval), int(str(max_it)), parse_duration(max_dur)

    def start(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        ctx.set_state(run, State.RUNNING)
        run.data["iteration"] = 0
        ctx.set_outputs(run, {"iterationCount": 0})
        self.step(ctx, run, task)

    def step(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        if run.data.get("waiting"):
            return
        iteration = int(run.data.get("iteration", 0))
        final = run_scope(ctx, run, task.get("tasks"), None, None, run.values, iteration=iteration)
        if final is None:
            return
        if final.is_failed:
            end_flowable(ctx, run, task, final)
            return
        done = iteration + 1
        run.data["iteration"] = done
        ctx.set_outputs(run, {"iterationCount": done})
        if ctx.renderer.is_true(task.get("condition"), ctx.variables(run, task)):
            end_flowable(ctx, run, task, State.SUCCESS)
            return
        interval, max_iterations, max_duration = self._limits(task)
        elapsed = seconds_between(run.history[0][1], ctx.now)
        if done >= max_iterations or elapsed + interval > max_duration:
            reached = "maxIterations" if done >= max_iterations else "maxDuration"
            if task.get("failOnMaxReached", False):
                fail(ctx, run, f"WaitFor {run.task_id}: {reached} reached")
            else:
                ctx.log("WARN", f"WaitFor {run.task_id}: {reached} reached", run)
                end_flowable(ctx, run, task, State.SUCCESS)
            return
        run.data["waiting"] = True
        ctx.arm(make_id("waitfor", run.id, done), interval, "waitfor", {"run": run.id})

    def on_timer(self, ctx: Ctx, run: TaskRun, task: JSON, timer: Timer) -> None:
        run.data["waiting"] = False
        self.step(ctx, run, task)
