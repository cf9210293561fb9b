"""The same contract test against every trigger source and its real broker / file system.

For each source: N inputs give exactly N StartExecution commands with N distinct execution
ids (counted on hw.commands, deduplicated by id), each carrying its input in ``trigger.*``;
and with the trigger PROCESS SIGKILLed in the middle and restarted, still exactly N distinct
executions, one per input (duplicates on the wire are allowed only with the same id).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.bus import AsyncConsumer, AsyncProducer, BusAdmin, OutRecord, ensure_topics
from engine.bus.topics import Topics
from engine.bus.wire import decode_command, flow_deployed_record
from engine.errors import BusError
from engine.flows import flow_to_dict, load_flow
from engine.health.probes import triggers_probe
from engine.reducer.commands import StartExecution
from engine.settings import Settings, TriggerSettings
from triggers.runtime import TriggerRuntime

N = 1000
# Inputs to take before the SIGKILL: enough that the kill lands mid-stream.
KILL_AFTER = 150
# Upper bound for all N commands to arrive; generous for a loaded 2-core machine.
ARRIVAL_S = 60.0
# After the last expected command, keep reading this long to catch extra ids.
SETTLE_S = 1.5
REPO = Path(__file__).resolve().parents[2]


def _settings(base: Settings) -> Settings:
    kafka = base.kafka.model_copy(
        update={
            "topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
            "partitions": 2,
            # Quick group joins and quick take-over after the SIGKILL (SERVICES.md).
            "session_timeout_ms": 2000,
            "heartbeat_interval_ms": 300,
            "fetch_wait_max_ms": 1,
            "request_timeout_s": 5.0,
        }
    )
    triggers = TriggerSettings(max_in_flight=200, poll_timeout_s=0.1, file_poll_interval_s=0.2)
    return base.model_copy(update={"kafka": kafka, "triggers": triggers})


def _env(s: Settings) -> dict[str, str]:
    k, t = s.kafka, s.triggers
    return {
        **os.environ,
        "HEADWATER_KAFKA__TOPIC_PREFIX": k.topic_prefix,
        "HEADWATER_KAFKA__PARTITIONS": str(k.partitions),
        "HEADWATER_KAFKA__SESSION_TIMEOUT_MS": str(k.session_timeout_ms),
        "HEADWATER_KAFKA__HEARTBEAT_INTERVAL_MS": str(k.heartbeat_interval_ms),
        "HEADWATER_KAFKA__FETCH_WAIT_MAX_MS": str(k.fetch_wait_max_ms),
        "HEADWATER_TRIGGERS__MAX_IN_FLIGHT": str(t.max_in_flight),
        "HEADWATER_TRIGGERS__POLL_TIMEOUT_S": str(t.poll_timeout_s),
        "HEADWATER_TRIGGERS__FILE_POLL_INTERVAL_S": str(t.file_poll_interval_s),
    }


# ----------------------------------------------------------------------------- sources


@dataclass
class Case:
    """One source: its trigger YAML, how to send input i, and the input seen in trigger.*."""

    trigger_yaml: str
    send: Callable[[list[int]], Awaitable[None]]
    seen: Callable[[dict[str, Any]], str]
    cleanup: Callable[[], Awaitable[None]] | None = None


async def kafka_case(s: Settings, tmp: Path) -> Case:
    topic = f"{s.kafka.topic_prefix}user-in"
    yaml = f"""
  - id: t
    type: io.kestra.plugin.kafka.RealtimeTrigger
    topic: {topic}
    groupId: {s.kafka.topic_prefix}g
    valueDeserializer: JSON
    properties:
      bootstrap.servers: "{s.kafka.bootstrap_servers}"
      session.timeout.ms: "{s.kafka.session_timeout_ms}"
      heartbeat.interval.ms: "{s.kafka.heartbeat_interval_ms}"
"""

    producer = AsyncProducer(s.kafka)
    await producer.start()

    async def send(items: list[int]) -> None:
        await producer.produce_many(
            OutRecord(topic, str(i), f'{{"n": {i}}}'.encode()) for i in items
        )

    return Case(yaml, send, lambda v: str(v["value"]["n"]), producer.close)


async def mqtt_case(s: Settings, tmp: Path, version: str = "V3") -> Case:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    topic = f"hw/{s.kafka.topic_prefix}/in"
    host, port = s.mqtt.host, s.mqtt.port
    client_id = f"c{s.kafka.topic_prefix.strip('.')}"
    yaml = f"""
  - id: t
    type: io.kestra.plugin.mqtt.RealtimeTrigger
    server: tcp://{host}:{port}
    topic: "hw/{s.kafka.topic_prefix}/+"
    qos: 1
    version: {version}
    clientId: {client_id}
"""

    def open_session() -> None:
        # The trigger's persistent session exists before the first message, as it would for
        # a trigger that ran before: messages sent while it is away are queued for it.
        protocol = paho.MQTTv5 if version == "V5" else paho.MQTTv311
        kwargs: dict[str, Any] = {} if version == "V5" else {"clean_session": False}
        c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, **kwargs
        )
        if version == "V5":
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 3600
            c.connect(host, port, clean_start=False, properties=props)
        else:
            c.connect(host, port)
        c.loop_start()
        c.subscribe(f"hw/{s.kafka.topic_prefix}/+", qos=1)
        time.sleep(0.3)  # let the SUBACK arrive before leaving
        c.disconnect()
        c.loop_stop()

    await asyncio.to_thread(open_session)

    async def send(items: list[int]) -> None:
        def publish() -> None:
            client = paho.Client(
                CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}"
            )
            client.connect(host, port)
            client.loop_start()
            infos = [client.publish(topic, f"m{i}", qos=1) for i in items]
            for info in infos:
                info.wait_for_publish(10)
            client.disconnect()
            client.loop_stop()

        await asyncio.to_thread(publish)

    return Case(yaml, send, lambda v: str(v["payload"]).removeprefix("m"))


async def amqp_case(s: Settings, tmp: Path) -> Case:
    import aio_pika

    queue = f"q{s.kafka.topic_prefix.strip('.')}"
    url = s.amqp.url.get_secret_value()
    conn = await aio_pika.connect(url)
    channel = await conn.channel()
    await channel.declare_queue(queue, durable=True)
    yaml = f"""
  - id: t
    type: io.kestra.plugin.amqp.RealtimeTrigger
    url: "{url}"
    queue: {queue}
"""

    async def send(items: list[int]) -> None:
        for i in items:
            await channel.default_exchange.publish(aio_pika.Message(f"b{i}".encode()), queue)

    async def cleanup() -> None:
        await channel.queue_delete(queue)
        await conn.close()

    return Case(yaml, send, lambda v: str(v["data"]).removeprefix("b"), cleanup)


async def redis_case(s: Settings, tmp: Path) -> Case:
    import redis.asyncio as aioredis

    url = f"redis://127.0.0.1:{os.environ.get('HEADWATER_LOCAL_REDIS_PORT', '6379')}/0"
    key = f"l{s.kafka.topic_prefix.strip('.')}"
    # The trigger's own keys (pending elements, counter) are named after the flow's trigger.
    own = ["headwater:trigger:test.triggers/f/t:pending", "headwater:trigger:test.triggers/f/t:seq"]
    client = aioredis.from_url(url)
    await client.delete(key, *own)
    yaml = f"""
  - id: t
    type: io.kestra.plugin.redis.list.RealtimeTrigger
    url: "{url}"
    key: {key}
    serdeType: JSON
"""

    async def send(items: list[int]) -> None:
        await client.rpush(key, *[f'{{"n": {i}}}' for i in items])

    async def cleanup() -> None:
        await client.delete(key, *own)
        await client.aclose()

    return Case(yaml, send, lambda v: str(v["value"]["n"]), cleanup)


async def file_case(s: Settings, tmp: Path) -> Case:
    inbox, done = tmp / "in", tmp / "done"
    inbox.mkdir()
    yaml = f"""
  - id: t
    type: io.kestra.plugin.fs.local.Trigger
    from: {inbox}
    regExp: ".*\\\\.txt"
    interval: PT0.2S
    action: MOVE
    moveDirectory: {done}
"""

    async def send(items: list[int]) -> None:
        def write() -> None:
            for i in items:
                (inbox / f"f{i}.txt").write_text(str(i))
                (inbox / f"ignored{i}.tmp").write_text("not matched")

        await asyncio.to_thread(write)

    return Case(yaml, send, lambda v: str(v["name"]).removeprefix("f").removesuffix(".txt"))


CASES = {
    "kafka": (kafka_case, [pytest.mark.kafka]),
    "mqtt": (mqtt_case, [pytest.mark.kafka, pytest.mark.mqtt]),
    "amqp": (amqp_case, [pytest.mark.kafka, pytest.mark.rabbitmq]),
    "redis": (redis_case, [pytest.mark.kafka, pytest.mark.redis]),
    "file": (file_case, [pytest.mark.kafka]),
}
PARAMS = [pytest.param(name, marks=marks, id=name) for name, (_, marks) in CASES.items()]


# ------------------------------------------------------------------------------ helpers


@contextlib.asynccontextmanager
async def open_env(base: Settings) -> AsyncIterator[tuple[Settings, Topics]]:
    """Fresh topics under a unique prefix; fails (never skips) when the broker is down."""
    s = _settings(base)
    admin = BusAdmin(s.kafka)
    try:
        await admin.wait_ready()
    except BusError as exc:
        pytest.fail(f"Kafka broker not reachable ({exc}); start it with `make services-up`")
    topics = await ensure_topics(admin, s.kafka)
    try:
        yield s, topics
    finally:
        names = [t.name for t in topics.all()] + [f"{s.kafka.topic_prefix}user-in"]
        await admin.delete_topics(names)


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[tuple[Settings, Topics]]:
    async with open_env(settings) as value:
        yield value


async def deploy(
    s: Settings, topics: Topics, trigger_yaml: str, flow_id: str = "f", inputs_yaml: str = ""
) -> None:
    text = f"""
id: {flow_id}
namespace: test.triggers{inputs_yaml}
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ trigger }}}}"
triggers:{trigger_yaml}"""
    flow = flow_to_dict(load_flow(text, "flow.yml"))
    key, value = flow_deployed_record("test.triggers", flow_id, 1, text, flow)
    async with AsyncProducer(s.kafka) as p:
        await p.produce(topics.flows.name, key, value)


class Commands:
    """Reads hw.commands from the start; StartExecutions by execution id."""

    def __init__(self, s: Settings, topics: Topics) -> None:
        self.s, self.topics = s, topics
        self.starts: dict[str, StartExecution] = {}
        self.wire = 0
        self._consumer = AsyncConsumer(s.kafka, f"{s.kafka.topic_prefix}counter")

    async def __aenter__(self) -> Commands:
        await self._consumer.start()
        parts = self.s.kafka.partitions
        await self._consumer.assign({(self.topics.commands.name, p): 0 for p in range(parts)})
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.close()

    async def read(self, timeout_s: float) -> None:
        for r in await self._consumer.consume(2000, timeout_s):
            assert r.value is not None
            cmd = decode_command(r.value)
            assert isinstance(cmd, StartExecution)
            self.wire += 1
            self.starts.setdefault(cmd.execution_id, cmd)

    async def until(self, count: int, limit_s: float = ARRIVAL_S) -> None:
        try:
            async with asyncio.timeout(limit_s):
                while len(self.starts) < count:
                    await self.read(0.2)
        except TimeoutError:
            pytest.fail(f"{len(self.starts)} of {count} executions after {limit_s} s")

    async def settle(self) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + SETTLE_S
        while loop.time() < end:
            await self.read(0.2)


def _check(commands: Commands, case: Case, expected: set[str]) -> None:
    seen = [case.seen((c.trigger or {}).get("variables") or {}) for c in commands.starts.values()]
    assert len(commands.starts) == len(expected), (len(commands.starts), commands.wire)
    assert sorted(seen) == sorted(expected)  # one execution per input, none twice


def _spawn(s: Settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "headwater"), "triggers", "--log-level", "WARNING"],
        cwd=REPO,
        env=_env(s),
    )


# -------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("source", PARAMS)
async def test_n_inputs_give_n_distinct_executions(
    source: str, env: tuple[Settings, Topics], tmp_path: Path
) -> None:
    s, topics = env
    case = await CASES[source][0](s, tmp_path)
    await deploy(s, topics, case.trigger_yaml)
    runtime = TriggerRuntime(s)
    await runtime.start()
    try:
        async with Commands(s, topics) as commands:
            await case.send(list(range(N)))
            await commands.until(N)
            await commands.settle()
            _check(commands, case, {str(i) for i in range(N)})
            # Every input counted once per fire, under the trigger's type, on /metrics.
            (kind, fired), *others = runtime.fired.items()
            assert not others
            assert fired >= N
            assert f'headwater_triggers_fired_total{{type="{kind}"}} {fired}' in (
                triggers_probe(runtime).metrics_text()
            )
    finally:
        await runtime.close()
        if case.cleanup is not None:
            await case.cleanup()


@pytest.mark.parametrize("source", PARAMS)
async def test_sigkill_mid_stream_loses_nothing_and_runs_nothing_twice(
    source: str, env: tuple[Settings, Topics], tmp_path: Path
) -> None:
    s, topics = env
    case = await CASES[source][0](s, tmp_path)
    await deploy(s, topics, case.trigger_yaml)
    process = _spawn(s)
    try:
        async with Commands(s, topics) as commands:
            # Half the inputs, a kill while they are being taken, the other half, a restart.
            await case.send(list(range(N // 2)))
            await commands.until(KILL_AFTER)
            process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(process.wait)
            killed_at = len(commands.starts)
            await case.send(list(range(N // 2, N)))
            process = _spawn(s)
            await commands.until(N)
            await commands.settle()
            _check(commands, case, {str(i) for i in range(N)})
            assert killed_at < N // 2 or commands.wire >= N  # the kill was mid-stream
    finally:
        if process.poll() is None:
            process.terminate()
            await asyncio.to_thread(process.wait, 15)
        if case.cleanup is not None:
            await case.cleanup()
