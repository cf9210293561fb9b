"""The MQTT trigger on MQTT 5 (and 3.1.1) against the real Mosquitto.

A trigger with a wildcard filter (``+`` and ``#``) takes N QoS 1 messages published over MQTT 5
with user properties and fires exactly N StartExecutions with distinct ids, each carrying its
topic, payload, QoS and (on V5) user properties in ``trigger.*``; messages outside the filter
fire nothing. The trigger runtime is then stopped, M more messages are published while it is
down, and a new runtime with the same client id gets exactly those M from its persistent
session: on V5 that only works if the trigger asks for a session expiry interval and
``clean_start=False`` (a V5 session otherwise ends with the connection). Last, the trigger
process is SIGKILLed mid-stream on V5 and restarted: every message still runs exactly once
(redeliveries from the session come back with the same execution id).
"""

from __future__ import annotations

import asyncio
import signal
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from engine.bus.topics import Topics
from engine.reducer.commands import StartExecution
from engine.settings import Settings
from tests.integration.test_trigger_sources import (
    Case,
    Commands,
    _check,
    _spawn,
    deploy,
    mqtt_case,
    open_env,
)
from triggers.runtime import TriggerRuntime

pytestmark = [pytest.mark.kafka, pytest.mark.mqtt]

N = 30  # messages while the trigger runs
M = 12  # messages while it is stopped
# Upper bound for the expected commands to arrive; generous for a loaded 2-core machine.
ARRIVAL_S = 20.0
# How long a paho call (connect, SUBACK, PUBACK) may take before the test fails.
MQTT_WAIT_S = 10.0
# Session expiry of the test's own pre-opening connection: long enough for the test only. The
# trigger's CONNECT replaces it with its own; if the trigger asked for none, the session would
# end when the trigger stops and the M messages would be lost.
PREOPEN_EXPIRY_S = 120


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[tuple[Settings, Topics]]:
    async with open_env(settings) as value:
        yield value


def _client(version: str, client_id: str, host: str, port: int) -> paho.Client:
    """A connected paho client (VERSION2 callbacks) with its network loop running."""
    v5 = version == "V5"
    kwargs: dict[str, Any] = {} if v5 else {"clean_session": False}
    c = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        **kwargs,
    )
    connected = threading.Event()
    c.on_connect = lambda *_a: connected.set()
    if v5:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = PREOPEN_EXPIRY_S
        c.connect(host, port, clean_start=False, properties=props)
    else:
        c.connect(host, port)
    c.loop_start()
    assert connected.wait(MQTT_WAIT_S), "no CONNACK from Mosquitto"
    return c


def _open_session(version: str, client_id: str, topic_filter: str, host: str, port: int) -> None:
    """Create the trigger's persistent session with its subscription, as a trigger that ran
    before would have left it: what is published from now on is queued for the trigger."""
    c = _client(version, client_id, host, port)
    subscribed = threading.Event()
    c.on_subscribe = lambda *_a: subscribed.set()
    c.subscribe(topic_filter, qos=1)
    assert subscribed.wait(MQTT_WAIT_S), "no SUBACK from Mosquitto"
    c.disconnect()
    c.loop_stop()


def _publish(host: str, port: int, messages: list[tuple[str, str, list[tuple[str, str]]]]) -> None:
    """Publish (topic, payload, user properties) over MQTT 5 at QoS 1, waiting for PUBACKs."""
    c = _client("V5", f"pub-{uuid.uuid4().hex[:10]}", host, port)
    infos = []
    for topic, payload, user in messages:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.UserProperty = user
        infos.append(c.publish(topic, payload, qos=1, properties=props))
    for info in infos:
        info.wait_for_publish(MQTT_WAIT_S)
        assert info.is_published()
    c.disconnect()
    c.loop_stop()


def _matching(base: str, items: range) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Messages inside ``{base}/+/data/#``: one level for ``+``, zero or more under ``#``."""
    tails = ["data", "data/t", "data/a/b/c"]  # '#' also matches its parent level
    return [
        (f"{base}/dev{i % 5}/{tails[i % 3]}", f"m{i}", [("n", str(i)), ("tag", "a"), ("tag", "b")])
        for i in items
    ]


def _outside(base: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Messages the filter must not match."""
    return [
        (f"{base}/dev1/status", "x1", []),  # wrong second level
        (f"{base}/data", "x2", []),  # '+' needs a level of its own
        (f"{base}/a/b/data", "x3", []),  # '+' is exactly one level
        (f"{base}x/dev1/data", "x4", []),  # a different first levels
    ]


def _check_trigger(cmd: StartExecution, version: str) -> int:
    """The trigger variables of one execution; returns the message number."""
    t = (cmd.trigger or {}).get("variables") or {}  # Kestra's ExecutionTrigger
    n = int(str(t["payload"]).removeprefix("m"))
    assert t["qos"] == 1
    assert t["retain"] is False
    assert "/data" in t["topic"]
    if version == "V5":
        assert t["properties"] == {"n": str(n), "tag": ["a", "b"]}
    else:  # MQTT 3.1.1 carries no properties
        assert "properties" not in t
    return n


@pytest.mark.parametrize(
    ("version", "key"),
    [("V5", "mqttVersion"), ("V3", "version")],
    ids=["v5-mqttVersion", "v3-legacy-version"],
)
async def test_wildcards_qos1_and_persistent_session_across_restart(
    version: str, key: str, env: tuple[Settings, Topics]
) -> None:
    s, topics = env
    host, port = s.mqtt.host, s.mqtt.port
    tag = s.kafka.topic_prefix.strip(".")
    base = f"hw5/{tag}"
    topic_filter = f"{base}/+/data/#"
    client_id = f"c5-{tag}"
    await asyncio.to_thread(_open_session, version, client_id, topic_filter, host, port)
    await deploy(
        s,
        topics,
        f"""
  - id: t
    type: io.kestra.plugin.mqtt.RealtimeTrigger
    server: tcp://{host}:{port}
    topic: "{topic_filter}"
    qos: 1
    {key}: {version}
    clientId: {client_id}
""",
    )
    async with Commands(s, topics) as commands:
        runtime = TriggerRuntime(s)
        await runtime.start()
        try:
            await asyncio.to_thread(
                _publish, host, port, _outside(base) + _matching(base, range(N))
            )
            await commands.until(N, ARRIVAL_S)
            await commands.settle()
        finally:
            await runtime.close()
        first = dict(commands.starts)
        assert sorted(_check_trigger(c, version) for c in first.values()) == list(range(N))
        # Every PUBACK went out before the clean stop, so nothing was sent twice.
        assert commands.wire == N

        # Published while no trigger runs: the broker keeps them in the trigger's session.
        await asyncio.to_thread(
            _publish, host, port, _outside(base) + _matching(base, range(N, N + M))
        )
        runtime = TriggerRuntime(s)
        await runtime.start()
        try:
            await commands.until(N + M, ARRIVAL_S)
            await commands.settle()
        finally:
            await runtime.close()
        new = {i: c for i, c in commands.starts.items() if i not in first}
        assert sorted(_check_trigger(c, version) for c in new.values()) == list(range(N, N + M))
        assert commands.wire == N + M, "a message was delivered twice across the restart"


# A SIGKILL mid-stream on V5: what was in flight (fired, not yet PUBACKed) comes back from the
# session with its packet id and fires again with the same execution id.
KILL_N = 300
KILL_AFTER = 60


async def _send_paced(case: Case, items: list[int], chunk: int = 5) -> None:
    for start in range(0, len(items), chunk):
        await case.send(items[start : start + chunk])
        await asyncio.sleep(0.02)


async def test_v5_sigkill_mid_stream_loses_nothing_and_runs_nothing_twice(
    env: tuple[Settings, Topics], tmp_path: Path
) -> None:
    s, topics = env
    case = await mqtt_case(s, tmp_path, "V5")
    await deploy(s, topics, case.trigger_yaml)
    process = _spawn(s)
    try:
        async with Commands(s, topics) as commands:
            # The first message waits for the runtime to be up; the rest of the first half
            # then streams in small publishes, so the kill lands mid-stream (sent at once,
            # they queued in the session during start-up, and the runtime could fire them all
            # before the test saw the 60th and killed it).
            await case.send([0])
            await commands.until(1, ARRIVAL_S)
            stream = asyncio.create_task(_send_paced(case, list(range(1, KILL_N // 2))))
            await commands.until(KILL_AFTER, ARRIVAL_S)
            process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(process.wait)
            killed_at = len(commands.starts)
            await stream
            await case.send(list(range(KILL_N // 2, KILL_N)))
            process = _spawn(s)
            await commands.until(KILL_N, ARRIVAL_S)
            await commands.settle()
            _check(commands, case, {str(i) for i in range(KILL_N)})
            assert killed_at < KILL_N // 2 or commands.wire > KILL_N  # the kill was mid-stream
    finally:
        if process.poll() is None:
            process.terminate()
            await asyncio.to_thread(process.wait, 15)
