"""The trigger runtime against Tansu: schedules (recovery, two processes), Flow triggers,
toggles and malformed payloads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import triggers.kafka
from engine.bus import AsyncProducer
from engine.bus.topics import Topics
from engine.bus.wire import event_record
from engine.reducer.ids import iso
from engine.reducer.model import Event
from engine.settings import Settings
from tests.integration.test_trigger_sources import Commands, deploy, open_env
from triggers.follow import TopicFollower
from triggers.ids import execution_id, schedule_coordinates
from triggers.runtime import TriggerRuntime
from triggers.state import StateTable, TriggerState, decode_state, set_enabled, state_record

pytestmark = pytest.mark.kafka

# How long a test waits for something the runtime does within about a second.
WAIT_S = 20.0


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[tuple[Settings, Topics]]:
    async with open_env(settings) as value:
        yield value


async def wait_for(check: Any, what: str) -> None:
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                if check():
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def test_schedule_recovers_missed_ticks_and_two_runtimes_never_duplicate(
    env: tuple[Settings, Topics],
) -> None:
    s, topics = env
    await deploy(
        s,
        topics,
        """
  - id: every
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * * *"
    withSeconds: true
    inputs: {when: "{{ trigger.date }}"}
""",
        # Kestra types a Schedule's inputs against the flow's (undeclared ones are dropped).
        inputs_yaml="\ninputs:\n  - id: when\n    type: STRING",
    )
    # The trigger last fired 5 s ago: the ticks since then are recovered (ALL, the default).
    last = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    seed = TriggerState("test.triggers", "f", "every", extra={"last_date": iso(last)})
    async with AsyncProducer(s.kafka) as p:
        await p.produce(topics.trigger_state.name, *state_record(seed))
    one, two = TriggerRuntime(s), TriggerRuntime(s)
    await one.start()
    await two.start()
    try:
        async with Commands(s, topics) as commands:
            missed = [last + timedelta(seconds=i) for i in range(1, 5)]
            wanted = {
                execution_id("test.triggers", "f", "every", schedule_coordinates(iso(t)))
                for t in missed
            }
            await commands.until(len(wanted) + 2)
            await commands.settle()
    finally:
        await one.close()
        await two.close()
    assert wanted <= set(commands.starts)
    dates = [c.trigger["variables"]["date"] for c in commands.starts.values() if c.trigger]
    assert len(dates) == len(set(dates)), "one tick started two executions"
    assert commands.wire > len(commands.starts)  # both runtimes fired: duplicates on the wire
    some = next(iter(commands.starts.values()))
    assert some.inputs["when"] == some.trigger["variables"]["date"] if some.trigger else False


async def test_flow_trigger_fires_once_per_matching_end(env: tuple[Settings, Topics]) -> None:
    s, topics = env
    await deploy(
        s,
        topics,
        """
  - id: after
    type: io.kestra.plugin.core.trigger.Flow
    inputs: {upstream: "{{ trigger.executionId }}"}
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [SUCCESS]
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: test.triggers
        flowId: up
""",
    )

    def ended(exec_id: str, flow_id: str, state: str) -> tuple[bytes, bytes]:
        payload = {"id": exec_id, "namespace": "test.triggers", "flow_id": flow_id,
                   "state": state, "end_date": "2025-01-01T00:00:00.000Z"}  # fmt: skip
        now = iso(datetime.now(UTC))
        return event_record(Event("ExecutionUpdated", exec_id, 5, now, payload))

    runtime = TriggerRuntime(s)
    await runtime.start()
    try:
        async with Commands(s, topics) as commands, AsyncProducer(s.kafka) as p:
            for rec in [ended("e1", "up", "SUCCESS"), ended("e2", "up", "FAILED"),
                        ended("e3", "other", "SUCCESS"), ended("e1", "up", "SUCCESS")]:  # fmt: skip
                await p.produce(topics.events.name, *rec)
            await commands.until(1)
            await commands.settle()
    finally:
        await runtime.close()
    assert len(commands.starts) == 1
    start = next(iter(commands.starts.values()))
    assert start.trigger is not None
    assert start.trigger["variables"]["executionId"] == "e1"
    assert start.inputs == {"upstream": "e1"}


async def test_toggle_stops_and_restarts_a_source_and_malformed_is_a_trigger_error(
    env: tuple[Settings, Topics],
) -> None:
    s, topics = env
    topic = f"{s.kafka.topic_prefix}user-in"
    await deploy(
        s,
        topics,
        f"""
  - id: t
    type: io.kestra.plugin.kafka.RealtimeTrigger
    topic: {topic}
    groupId: {s.kafka.topic_prefix}g
    valueDeserializer: JSON
    properties:
      bootstrap.servers: "{s.kafka.bootstrap_servers}"
      session.timeout.ms: "{s.kafka.session_timeout_ms}"
""",
    )
    table = StateTable()
    follower = TopicFollower(
        s.kafka, topics.trigger_state.name,
        lambda r: table.apply(decode_state(r.value or b"")), "test-state-reader",
    )  # fmt: skip
    runtime = TriggerRuntime(s)
    await runtime.start()
    await follower.start()

    def error() -> str | None:
        st = table.states.get("test.triggers/f/t")
        return st.last_error if st else None

    try:
        async with Commands(s, topics) as commands, AsyncProducer(s.kafka) as p:
            await p.produce(topic, b"k", b"{not json")
            # Wait for this error specifically: a source that subscribed before the user topic
            # existed may first record (and recover from) a different one.
            await wait_for(
                lambda: "malformed payload" in (error() or ""),
                "the malformed payload's trigger error",
            )
            await p.produce(topic, b"k", b'{"n": 1}')
            await commands.until(1)
            # The trigger works again: its old error is cleared (readers merge snapshots).
            await wait_for(lambda: error() is None, "the error cleared by a clean start")
            await set_enabled(p, topics.trigger_state.name, "test.triggers", "f", "t", False)
            await wait_for(lambda: not runtime.running(), "the source to stop")
            await p.produce(topic, b"k", b'{"n": 2}')
            await commands.settle()
            assert len(commands.starts) == 1  # disabled: nothing fires
            await set_enabled(p, topics.trigger_state.name, "test.triggers", "f", "t", True)
            await commands.until(2)  # re-enabled: the waiting record fires
            await wait_for(lambda: table.states["test.triggers/f/t"].enabled, "the state")
    finally:
        await runtime.close()
        await follower.close()
    values = sorted(
        c.trigger["variables"]["value"]["n"] for c in commands.starts.values() if c.trigger
    )
    assert values == [1, 2]
    assert table.states["test.triggers/f/t"].last_fired is not None


async def test_kafka_trigger_waits_quietly_for_a_missing_topic(
    env: tuple[Settings, Topics], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(triggers.kafka, "TOPIC_RETRY_FIRST_S", 0.2)
    monkeypatch.setattr(triggers.kafka, "TOPIC_RETRY_MAX_S", 0.4)
    caplog.set_level(logging.DEBUG, logger="triggers")
    s, topics = env
    topic = f"{s.kafka.topic_prefix}not-yet"
    await deploy(
        s,
        topics,
        f"""
  - id: t
    type: io.kestra.plugin.kafka.RealtimeTrigger
    topic: {topic}
    groupId: {s.kafka.topic_prefix}g2
    properties:
      bootstrap.servers: "{s.kafka.bootstrap_servers}"
      session.timeout.ms: "{s.kafka.session_timeout_ms}"
""",
    )
    table = StateTable()
    follower = TopicFollower(
        s.kafka, topics.trigger_state.name,
        lambda r: table.apply(decode_state(r.value or b"")), "test-state-reader-2",
    )  # fmt: skip
    runtime = TriggerRuntime(s)
    await runtime.start()
    await follower.start()

    def error() -> str | None:
        st = table.states.get("test.triggers/f/t")
        return st.last_error if st else None

    def waits() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "waiting for topic" in r.getMessage()]

    try:
        await wait_for(lambda: "waiting for topic" in (error() or ""), "the waiting state")
        await wait_for(lambda: len(waits()) >= 4, "several checks for the topic")
        # Said once as a warning, then quietly; never an ERROR, never a source restart.
        assert [r.levelno for r in waits()].count(logging.WARNING) == 1
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
        async with Commands(s, topics) as commands, AsyncProducer(s.kafka) as p:
            await p.produce(topic, b"k", b"hello")  # Tansu creates the topic
            await commands.until(1)
        await wait_for(lambda: error() is None, "the waiting state cleared")
    finally:
        await runtime.close()
        await follower.close()
