"""A whole Headwater loop on the real broker for tests: topics, executor, worker.

:class:`Stack` gives each test its own topic prefix and consumer groups, runs the executor
in process (asyncio) and either the :class:`SimWorker` or, with ``real_worker``, the real
``engine.worker.Worker`` (:mod:`tests.conformance.e2e_real`), deploys flows to hw.flows and
starts executions by producing StartExecution to hw.commands, exactly as the API will.
"""

from __future__ import annotations

import asyncio
import pathlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.bus import AsyncProducer, BusAdmin
from engine.bus.supervise import Supervised
from engine.bus.wire import command_record, flow_deployed_record
from engine.errors import BusError
from engine.executor import Executor
from engine.executor.processor import Clock
from engine.flows import flow_to_dict, load_flow
from engine.reducer.commands import Command, StartExecution
from engine.reducer.ids import make_id
from engine.reducer.model import ExecutionState
from engine.settings import ExecutorSettings, KafkaSettings, Settings
from tests.conformance.e2e_real import RealWorker
from tests.conformance.e2e_worker import SimWorker

# How long a test waits for an execution to reach a state through the real broker.
WAIT_S = 60.0
_CHECK_S = 0.02


class FastClock:
    """The executor's clock running ``speed`` times faster than real time, from now."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._origin = datetime.now(UTC)
        self._real0 = asyncio.get_running_loop().time()

    def now(self) -> datetime:
        elapsed = (asyncio.get_running_loop().time() - self._real0) * self.speed
        return self._origin + _seconds(elapsed)

    def real_seconds(self, clock_seconds: float) -> float:
        return clock_seconds / self.speed


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def stack_settings(partitions: int = 3, **executor: Any) -> Settings:
    kafka = Settings().kafka.model_copy(
        update={
            "topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
            "partitions": partitions,
            # Group joins take about half the session timeout on Tansu: keep tests quick.
            "session_timeout_ms": 3000,
            "heartbeat_interval_ms": 500,
            "fetch_wait_max_ms": 2,
            "request_timeout_s": 5.0,
        }
    )
    group = f"ex-{uuid.uuid4().hex[:8]}"
    return Settings(
        kafka=kafka,
        executor=ExecutorSettings(group_id=group, poll_timeout_s=0.1, **executor),
    )


class Stack:
    def __init__(self, settings: Settings, *, clock: Clock | None = None, speed: float = 1.0):
        self.settings = settings
        self.kafka: KafkaSettings = settings.kafka
        self.clock = clock
        self.speed = speed
        self.executor: Executor | None = None
        self.worker: SimWorker | None = None
        self.real: RealWorker | None = None
        self._run: Supervised | None = None
        self._stop = asyncio.Event()
        self.flows: dict[tuple[str, str], dict[str, Any]] = {}
        self._n = 0

    async def start(
        self, *, worker: bool = True, executor: bool = True, real_worker: pathlib.Path | None = None
    ) -> Stack:
        """``real_worker``: run engine.worker.Worker (its directories under that path)
        instead of the simulated worker."""
        admin = BusAdmin(self.kafka)
        try:
            await admin.wait_ready()
        except BusError as exc:
            raise AssertionError(
                f"Kafka broker not reachable ({exc}); start it with `make services-up`"
            ) from exc
        from engine.bus import ensure_topics

        self.topics = await ensure_topics(admin, self.kafka)
        self.producer = AsyncProducer(self.kafka)
        await self.producer.start()
        if executor:
            await self.start_executor()
        if real_worker is not None:
            clock = self.clock.now if self.clock else lambda: datetime.now(UTC)
            self.real = RealWorker(self.settings, real_worker, clock)
            await self.real.start()
        elif worker:
            self.worker = SimWorker(
                self.kafka,
                self.topics.jobs.name,
                self.topics.commands.name,
                f"w-{uuid.uuid4().hex[:8]}",
                speed=self.speed,
                clock=self.clock.now if self.clock else lambda: datetime.now(UTC),
            )
            await self.worker.start()
        return self

    async def start_executor(self, **kwargs: Any) -> Executor:
        self.executor = Executor(self.settings, clock=self.clock, **kwargs)
        await self.executor.start()
        self._stop = asyncio.Event()
        self._run = Supervised("test-executor", self.executor.run(self._stop))
        return self.executor

    async def stop_executor(self, *, clean: bool = True) -> None:
        """Stop the in-process executor (clean: finish, commit, leave the group)."""
        assert self.executor is not None
        assert self._run is not None
        if clean:
            self._stop.set()
            await self._run.wait()
        else:
            await self._run.stop()
        await self.executor.close()
        self.executor = None

    async def close(self) -> None:
        if self.worker is not None:
            await self.worker.close()
        if self.real is not None:
            await self.real.close()
        if self.executor is not None:
            await self.stop_executor()
        await self.producer.close()
        admin = BusAdmin(self.kafka)
        prefix = self.kafka.topic_prefix
        await admin.delete_topics(n for n in await admin.list_topics() if n.startswith(prefix))

    # --- flows and commands ----------------------------------------------------------------

    async def deploy(self, source: str, filename: str = "flow.yaml") -> dict[str, Any]:
        flow = flow_to_dict(load_flow(source, filename))
        namespace, flow_id = str(flow["namespace"]), str(flow["id"])
        revision = 1 + sum(1 for k in self.flows if k == (namespace, flow_id))
        key, value = flow_deployed_record(namespace, flow_id, revision, source, flow)
        await self.producer.produce(self.topics.flows.name, key, value)
        self.flows[(namespace, flow_id)] = {**flow, "revision": revision}
        return self.flows[(namespace, flow_id)]

    async def deploy_file(self, path: pathlib.Path) -> dict[str, Any]:
        return await self.deploy(await asyncio.to_thread(path.read_text), path.name)

    def new_id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}-{uuid.uuid4().hex[:8]}-{self._n}"

    async def start_execution(
        self,
        namespace: str,
        flow_id: str,
        inputs: dict[str, Any] | None = None,
        labels: dict[str, Any] | None = None,
    ) -> str:
        execution_id = self.new_id("exec")
        flow = self.flows[(namespace, flow_id)]
        cmd = StartExecution(
            command_id=make_id("start", execution_id),
            execution_id=execution_id,
            namespace=namespace,
            flow_id=flow_id,
            flow=flow,
            inputs=dict(inputs or {}),
            labels=dict(labels or {}),
        )
        await self.send_command(cmd)
        return execution_id

    async def send_command(self, cmd: Command) -> None:
        key, value = command_record(cmd)
        await self.producer.produce(self.topics.commands.name, key, value)

    # --- observing -------------------------------------------------------------------------

    def state(self, execution_id: str) -> ExecutionState | None:
        return self.executor.store.get(execution_id) if self.executor else None

    async def wait(
        self, predicate: Callable[[], bool], what: str, timeout_s: float = WAIT_S
    ) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                while not predicate():
                    self._check_alive()
                    await asyncio.sleep(_CHECK_S)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}") from None

    async def wait_terminal(self, execution_id: str, timeout_s: float = WAIT_S) -> ExecutionState:
        def done() -> bool:
            state = self.state(execution_id)
            return bool(state and state.state.is_terminal)

        await self.wait(done, f"execution {execution_id} to end", timeout_s)
        state = self.state(execution_id)
        assert state is not None
        return state

    def _check_alive(self) -> None:
        if self._run is not None and self._run.failure is not None:
            raise AssertionError(f"the executor crashed: {self._run.failure!r}")
        if self.worker is not None and not self.worker.healthy:
            raise AssertionError("the simulated worker crashed")
        if self.real is not None and not self.real.healthy:
            raise AssertionError(f"the real worker crashed: {self.real.worker.failure!r}")
