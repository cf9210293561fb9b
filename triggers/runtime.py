"""TriggerRuntime: runs the trigger sources of every deployed flow and wires them to the bus.

It follows hw.flows (the FlowStore) and hw.trigger-state (toggles, schedule progress) and
reconciles every ``_RECONCILE_S``: a source runs for each trigger of a deployed, not disabled
flow whose trigger is enabled (a toggle wins over the YAML ``disabled``); a changed revision
restarts it; a deleted flow or a disabled trigger stops it. Webhook triggers have no source
(the API calls :mod:`triggers.webhook`); all Flow triggers share one hw.events consumer.

Each source gets a context (:class:`_Context`) whose ``fire`` builds the StartExecution with
the flow's latest revision, waits for one of the source's ``max_in_flight`` slots (the source
pauses while none is free), hands the record to the producer and returns the future of the
broker's acknowledgement; the source acknowledges its input only after that future resolved.

A source that crashes (broker gone, bad config) is logged, its error recorded in the trigger
state (``last_error``, visible in the API) and restarted with back-off; the runtime goes on.
``last_fired`` is kept in memory per fire and written with the trigger's snapshot every
``_STATE_FLUSH_S``; toggles are answered with a complete merged snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from engine.bus.admin import BusAdmin
from engine.bus.consumer import AsyncConsumer, Record
from engine.bus.producer import AsyncProducer
from engine.bus.supervise import Supervised
from engine.bus.topics import Topics, ensure_topics
from engine.bus.wire import command_record
from engine.errors import HeadwaterError
from engine.flows.inputs import InputValidationError, flow_default_renderer, resolve_inputs
from engine.flows.store import FlowFollower
from engine.reducer.ids import iso
from engine.settings import Settings
from schemas.envelope import EnvelopeError
from triggers import model as m
from triggers.conditions import when_holds
from triggers.flow_trigger import FlowTriggerSource
from triggers.follow import TopicFollower
from triggers.model import Source, TriggerRef, trigger_config
from triggers.payloads import MalformedPayload
from triggers.polling import PollingDeps, polling_factory
from triggers.start import build_start, event_scope
from triggers.state import StateTable, TriggerState, decode_state, state_record

log = logging.getLogger(__name__)

JSON = dict[str, Any]

# The running sources are compared with the deployed flows and toggles when either changes or
# a source ends, and every _RECONCILE_S while a stopped source waits for its restart.
# _RECONCILE_IDLE_S is a backstop only: nothing that changes what should run goes unnoticed.
_RECONCILE_S = 0.5
_RECONCILE_IDLE_S = 30.0
# last_fired of busy triggers is written at most this often after a change: one state record
# per fire would double the records a flood produces.
_STATE_FLUSH_S = 1.0
# A crashed source is restarted after this back-off, doubling up to the maximum.
_RESTART_FIRST_S = 1.0
_RESTART_MAX_S = 30.0
# Sources own these trigger types (and the plugins' polling triggers, polling_types());
# Webhook triggers are served by the API.
SOURCE_TYPES = frozenset(
    {m.SCHEDULE, m.SCHEDULE_ON_DATES, m.KAFKA, m.MQTT, m.AMQP, m.REDIS_LIST, m.FILE, m.FLOW}
)


def polling_types() -> frozenset[str]:
    """The trigger types of the plugins (executors.polling.PollingTrigger)."""
    from schemas.plugins import trigger_classes

    return frozenset(cls.type_name() for cls in trigger_classes())


def _now() -> datetime:
    return datetime.now(UTC)


class _Context:
    """The SourceContext of one trigger (see triggers.model)."""

    def __init__(self, runtime: TriggerRuntime, ref: TriggerRef, trigger: JSON, config: Any):
        self.ref = ref
        self.trigger = trigger
        self.config = config
        self.poll_timeout_s = runtime.settings.triggers.poll_timeout_s
        self.max_in_flight = runtime.settings.triggers.max_in_flight
        self._rt = runtime
        self._slots = asyncio.Semaphore(self.max_in_flight)
        self.fired = 0

    async def fire(
        self,
        coordinates: str,
        variables: JSON,
        *,
        labels: JSON | None = None,
        inputs: JSON | None = None,
        render_scope: JSON | None = None,
        scheduled: str | None = None,
    ) -> asyncio.Future[Any]:
        flow = self._rt.flows.store.get(self.ref.namespace, self.ref.flow_id)
        if flow is None:
            raise HeadwaterError(f"flow of trigger {self.ref} is no longer deployed")
        if self.trigger.get("type") not in _OWN_WHEN and not when_holds(
            self.trigger, event_scope(self.ref, flow, variables)
        ):
            return _nothing()
        now = _now()
        cmd, problem = build_start(
            self.ref, flow, self.trigger, coordinates, variables, now,
            labels=labels, inputs=inputs, render_scope=render_scope,
        )  # fmt: skip
        cmd.scheduled = scheduled
        if problem is None and self.trigger.get("type") in _TYPED_INPUTS:
            problem = typed_trigger_inputs(cmd, flow)
        if problem is not None:
            self._rt.note(self.ref, last_error=problem, last_error_at=iso(now))
            # The execution is created FAILED with the message (Kestra creates none and only
            # logs a warning; a failed execution is where a user looks).
            cmd.error = f"trigger '{self.ref.trigger_id}': {problem}"
        # Encode before taking a slot: a failure must neither leak the slot nor escape as a
        # crash (the source would restart and meet the same input again).
        try:
            key, value = command_record(cmd, occurred=now)
        except EnvelopeError as exc:
            raise MalformedPayload(f"its StartExecution cannot be encoded: {exc.message}") from None
        await self._slots.acquire()
        try:
            future = await self._rt.producer.enqueue(self._rt.topics.commands.name, key, value)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(self._done if problem is None else self._done_with_problem)
        self.fired += 1
        self._rt.fired[str(self.trigger.get("type"))] += 1
        return future

    def _done(self, future: asyncio.Future[Any]) -> None:
        # A clean start clears the trigger's last error: it works again (an earlier
        # malformed payload or connection failure is history, in the logs).
        if self._delivered(future):
            now = iso(_now())
            st = self._rt.states.get(self.ref)
            if st is not None and st.last_error is not None:
                # dated now, so that readers merging snapshots take the clear too
                self._rt.note(self.ref, last_fired=now, last_error=None, last_error_at=now)
            else:
                self._rt.note(self.ref, last_fired=now)

    def _done_with_problem(self, future: asyncio.Future[Any]) -> None:
        if self._delivered(future):  # the problem noted when it fired stays shown
            self._rt.note(self.ref, last_fired=iso(_now()))

    def _delivered(self, future: asyncio.Future[Any]) -> bool:
        self._slots.release()
        return not future.cancelled() and future.exception() is None

    async def malformed(
        self, coordinates: str, raw: JSON, problem: str
    ) -> asyncio.Future[Any] | None:
        log.warning("trigger %s: malformed payload: %s", self.ref, problem)
        if self._rt.settings.triggers.malformed == "raw":
            try:
                return await self.fire(coordinates, {**raw, "malformed": problem})
            except MalformedPayload as exc:  # even the raw form cannot travel: skip it
                problem = f"{problem}; raw form skipped too: {exc}"
        await self.record(
            last_error=f"malformed payload skipped: {problem}", last_error_at=iso(_now())
        )
        return None

    async def record(self, **fields: Any) -> None:
        self._rt.note(self.ref, **fields)
        await self._rt.write_state(self.ref)

    def state(self) -> JSON:
        st = self._rt.states.get(self.ref)
        return st.to_payload() if st is not None else {}


@dataclass(slots=True)
class _Running:
    ctx: _Context
    signature: bytes  # the trigger dict and revision it was started with
    task: Supervised | None = None
    restarts: int = 0
    restart_at: float = 0.0
    flow_trigger: bool = False


@dataclass(slots=True)
class _Dirty:
    """Triggers whose state changed since the last flush; ``event`` is set when any did."""

    refs: set[str] = field(default_factory=set)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, key: str) -> None:
        self.refs.add(key)
        self.event.set()


class TriggerRuntime:
    """``await start()``, then it runs in the background until ``await close()``."""

    def __init__(
        self,
        settings: Settings,
        factories: dict[str, Callable[[m.SourceContext], Source]] | None = None,
    ) -> None:
        self.settings = settings
        self.topics: Topics
        self.producer = AsyncProducer(settings.kafka)
        self.flows = FlowFollower(settings.kafka, settings.kafka.topic_prefix + "flows")
        self._changed = asyncio.Event()  # flows, toggles or a source's end: reconcile
        self.states = StateTable()
        self._states_follower: TopicFollower | None = None
        self._running: dict[str, _Running] = {}
        self._dirty = _Dirty()
        self._polling: PollingDeps | None = None
        if factories is None:
            self._polling = PollingDeps(settings, self.producer)
            factories = default_factories(settings)
            factory = polling_factory(self._polling)
            factories.update({name: factory for name in polling_types()})
        self._factories = factories
        self._source_types = SOURCE_TYPES | polling_types()
        self._tasks: list[Supervised] = []
        # Executions started, by trigger type (sources come and go; the count stays).
        self.fired: Counter[str] = Counter()
        self._flow_source: Supervised | None = None
        self._flow_consumer: AsyncConsumer | None = None
        self.failure: BaseException | None = None
        self._failed = asyncio.Event()

    # ------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        admin = BusAdmin(self.settings.kafka)
        self.topics = await ensure_topics(admin, self.settings.kafka)
        self.flows = FlowFollower(
            self.settings.kafka, self.topics.flows.name, on_change=self._changed.set
        )
        await self.producer.start()
        self._states_follower = TopicFollower(
            self.settings.kafka,
            self.topics.trigger_state.name,
            self._on_state,
            "trigger-state-reader",
        )
        await self._states_follower.start(self._crashed)
        await self.flows.start()
        await self._reconcile()
        self._tasks = [
            Supervised("triggers-reconcile", self._reconcile_loop(), self._crashed),
            Supervised("triggers-state-flush", self._flush_loop(), self._crashed),
        ]

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        """Until ``stop`` is set (or forever); raises the runtime's failure."""
        waits = [asyncio.ensure_future(self._failed.wait())]
        if stop is not None:
            waits.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        if self.failure is not None:
            raise self.failure

    @property
    def healthy(self) -> bool:
        followers = self.flows.healthy and (
            self._states_follower is None or self._states_follower.healthy
        )
        return self.failure is None and followers

    def running(self) -> list[TriggerRef]:
        return [r.ctx.ref for r in self._running.values() if r.task is not None and r.task.running]

    def _crashed(self, name: str, exc: BaseException) -> None:
        self.failure = exc
        self._failed.set()

    async def close(self) -> None:
        for task in self._tasks:
            await task.stop()
        for running in list(self._running.values()):
            await self._stop(running)
        self._running.clear()
        if self._flow_source is not None:
            await self._flow_source.stop()
        if self._flow_consumer is not None:
            await self._flow_consumer.close()
        try:
            await self._flush()
            if self._polling is not None:
                await self._polling.close()
        finally:
            await self.producer.close()
            if self._states_follower is not None:
                await self._states_follower.close()
            await self.flows.close()

    async def _reconcile_loop(self) -> None:
        while True:
            waiting = any(self._ended(r) for r in self._running.values())
            try:
                async with asyncio.timeout(_RECONCILE_S if waiting else _RECONCILE_IDLE_S):
                    await self._changed.wait()
            except TimeoutError:
                pass
            self._changed.clear()
            await self._reconcile()

    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.event.wait()
            await asyncio.sleep(_STATE_FLUSH_S)
            self._dirty.event.clear()  # what changes from now on sets it again
            await self._flush()

    # ---------------------------------------------------------------------------- state

    def _on_state(self, record: Record) -> None:
        assert record.value is not None
        incoming = decode_state(record.value)
        _, toggled = self.states.apply(incoming)
        if toggled and incoming.toggled_at is not None:
            self._dirty.add(incoming.ref.key)  # answer a toggle with a full snapshot
        if toggled:
            self._changed.set()

    def note(self, ref: TriggerRef, **fields: Any) -> None:
        """Change this trigger's state in memory; it is written by the next flush."""
        current = self.states.get(ref) or TriggerState(ref.namespace, ref.flow_id, ref.trigger_id)
        extra = fields.pop("extra", None)
        for name, value in fields.items():
            setattr(current, name, value)
        if extra:
            current.extra = {**current.extra, **extra}
        running = self._running.get(ref.key)
        if running is not None:
            current.type = str(running.ctx.trigger.get("type", ""))
        self.states.states[ref.key] = current
        self._dirty.add(ref.key)

    async def write_state(self, ref: TriggerRef) -> None:
        st = self.states.get(ref)
        if st is None:
            return
        self._dirty.refs.discard(ref.key)
        key, value = state_record(st)
        await self.producer.produce(self.topics.trigger_state.name, key, value)

    async def _flush(self) -> None:
        refs, self._dirty.refs = self._dirty.refs, set()
        for key in refs:
            st = self.states.states.get(key)
            if st is not None:
                k, v = state_record(st)
                await self.producer.produce(self.topics.trigger_state.name, k, v)

    # ------------------------------------------------------------------------ reconcile

    def desired(self) -> dict[str, tuple[TriggerRef, JSON, bytes]]:
        """ref key -> (ref, trigger dict, signature) of every trigger that should run."""
        out: dict[str, tuple[TriggerRef, JSON, bytes]] = {}
        for record in self.flows.store.flows():
            flow = record.flow or {}
            if flow.get("disabled") is True:
                continue
            for trigger in flow.get("triggers") or []:
                if trigger.get("type") not in self._source_types:
                    continue
                ref = TriggerRef(record.namespace, record.id, str(trigger.get("id")))
                state = self.states.get(ref)
                yaml_disabled = trigger.get("disabled") is True
                enabled = state.effective_enabled(yaml_disabled) if state else not yaml_disabled
                if enabled:
                    out[ref.key] = (
                        ref,
                        trigger,
                        orjson.dumps(trigger, option=orjson.OPT_SORT_KEYS),
                    )
        return out

    async def _reconcile(self) -> None:
        wanted = self.desired()
        for key, running in list(self._running.items()):
            target = wanted.get(key)
            if target is None or target[2] != running.signature:
                await self._stop(running)
                del self._running[key]
        loop = asyncio.get_running_loop()
        for key, (ref, trigger, signature) in wanted.items():
            existing = self._running.get(key)
            if existing is None:
                self._running[key] = self._start(ref, trigger, signature)
                continue
            running = existing
            if self._ended(running):
                if running.restart_at == 0.0:
                    delay = min(_RESTART_FIRST_S * 2**running.restarts, _RESTART_MAX_S)
                    running.restart_at = loop.time() + delay
                elif loop.time() >= running.restart_at:
                    running.restarts += 1
                    running.restart_at = 0.0
                    self._launch(running)
        await self._ensure_flow_source()

    @staticmethod
    def _ended(running: _Running) -> bool:
        """A source that stopped on its own (it failed): restarted after a back-off."""
        return running.task is not None and not running.task.running and not running.flow_trigger

    def _start(self, ref: TriggerRef, trigger: JSON, signature: bytes) -> _Running:
        try:
            config = trigger_config(trigger)
        except HeadwaterError as exc:
            self.note(ref, last_error=exc.message, last_error_at=iso(_now()))
            return _Running(_Context(self, ref, trigger, None), signature)
        running = _Running(_Context(self, ref, trigger, config), signature)
        if trigger.get("type") == m.FLOW:
            running.flow_trigger = True
            return running
        self._launch(running)
        return running

    def _launch(self, running: _Running) -> None:
        ctx = running.ctx
        factory = self._factories.get(str(ctx.trigger.get("type")))
        if factory is None:
            return
        ref = ctx.ref

        async def guarded() -> None:
            try:
                source = factory(ctx)
                await source.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                message = exc.message if isinstance(exc, HeadwaterError) else repr(exc)
                log.error("trigger %s stopped: %s (restarting)", ref, message)
                self.note(ref, last_error=message, last_error_at=iso(_now()))
            self._changed.set()  # ended on its own: reconcile schedules the restart

        running.task = Supervised(f"trigger-{ref}", guarded())

    async def _stop(self, running: _Running) -> None:
        if running.task is not None:
            try:
                await running.task.stop()
            except Exception as exc:  # already recorded by guarded()
                log.debug("trigger %s stop: %r", running.ctx.ref, exc)

    # ---------------------------------------------------------------------- flow triggers

    def flow_bindings(self) -> list[m.SourceContext]:
        return [
            r.ctx for r in self._running.values() if r.flow_trigger and r.ctx.config is not None
        ]

    async def _ensure_flow_source(self) -> None:
        if self._flow_source is not None or not self.flow_bindings():
            return
        group = f"{self.settings.triggers.group_prefix}-flow"
        consumer = AsyncConsumer(self.settings.kafka, group)
        await consumer.start()
        await consumer.subscribe([self.topics.events.name])
        self._flow_consumer = consumer
        source = FlowTriggerSource(
            consumer, self.flow_bindings, self.settings.triggers.poll_timeout_s
        )
        self._flow_source = Supervised("flow-triggers", source.run(), self._crashed)


# Triggers whose inputs Kestra types against the flow's (generateScheduledExecution calls
# readExecutionInputs); a Flow trigger's inputs are passed as rendered.
_TYPED_INPUTS = frozenset({m.SCHEDULE, m.SCHEDULE_ON_DATES})
# Triggers that evaluate Kestra 2.0's `when` themselves, with their own variables (the tick,
# the upstream execution); every other one is tested here, on each event it fires for.
_OWN_WHEN = frozenset({m.SCHEDULE, m.FLOW})


def _nothing() -> asyncio.Future[Any]:
    """The future of a firing that a false `when` skipped: done, with nothing produced."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


def typed_trigger_inputs(cmd: Any, flow: JSON) -> str | None:
    """Type ``cmd.inputs`` (with the flow's defaults) in place; the problem, if any."""
    try:
        cmd.inputs = resolve_inputs(
            flow.get("inputs"),
            cmd.inputs,
            mode="typed",
            render_default=flow_default_renderer(flow),
            flow_id=cmd.flow_id,
        )
    except InputValidationError as exc:
        return exc.message
    return None


def default_factories(settings: Settings) -> dict[str, Callable[[m.SourceContext], Source]]:
    """The source of each trigger type (imports are lazy: paho / aio-pika load on use)."""

    def schedule(ctx: m.SourceContext) -> Source:
        from triggers.schedule import ScheduleSource

        return ScheduleSource(ctx)

    def on_dates(ctx: m.SourceContext) -> Source:
        from triggers.schedule_dates import ScheduleOnDatesSource

        return ScheduleOnDatesSource(ctx)

    def kafka(ctx: m.SourceContext) -> Source:
        from triggers.kafka import KafkaSource

        return KafkaSource(ctx, settings.kafka)

    def mqtt(ctx: m.SourceContext) -> Source:
        from triggers.mqtt import MqttSource

        return MqttSource(ctx)

    def amqp(ctx: m.SourceContext) -> Source:
        from triggers.amqp import AmqpSource

        return AmqpSource(ctx, settings.amqp.url.get_secret_value())

    def redis_list(ctx: m.SourceContext) -> Source:
        from triggers.redis import RedisListSource

        return RedisListSource(ctx)

    def files(ctx: m.SourceContext) -> Source:
        from triggers.files import FileSource

        return FileSource(ctx, settings.triggers.file_poll_interval_s)

    return {
        m.SCHEDULE: schedule,
        m.SCHEDULE_ON_DATES: on_dates,
        m.KAFKA: kafka,
        m.MQTT: mqtt,
        m.AMQP: amqp,
        m.REDIS_LIST: redis_list,
        m.FILE: files,
    }


async def run_triggers(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run a TriggerRuntime until ``stop`` is set (or forever); close it cleanly."""
    runtime = TriggerRuntime(settings)
    await runtime.start()
    log.info("trigger runtime started (%d sources)", len(runtime.running()))
    try:
        await runtime.serve(stop)
    finally:
        await runtime.close()
