"""Inputs that cannot travel never crash a source (issue 7/10).

JSON nested past ``MAX_JSON_DEPTH`` is refused by every parser; a StartExecution that cannot
be encoded for any other reason makes ``fire`` raise MalformedPayload (without leaking an
in-flight slot). Either way the source applies the malformed policy and goes on: on Kafka a
raise out of ``handle`` would restart the source at the same committed offset, on the same
record, forever.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from engine.bus.consumer import Record
from triggers import kafka
from triggers.flow_trigger import Outcome, _fire
from triggers.model import TriggerRef
from triggers.payloads import MAX_JSON_DEPTH, MalformedPayload, depth_exceeds, loads_json
from triggers.runtime import _Context

REF = TriggerRef("ns", "f", "t")
FLOW: dict[str, Any] = {"id": "f", "namespace": "ns", "tasks": []}
TRIGGER: dict[str, Any] = {"id": "t", "type": "io.kestra.plugin.kafka.RealtimeTrigger"}
IN_FLIGHT = 2


def deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


class FakeRuntime:
    """What _Context uses of a TriggerRuntime: a flow store, a producer, settings, state."""

    def __init__(self, policy: str) -> None:
        self.settings = SimpleNamespace(
            triggers=SimpleNamespace(poll_timeout_s=0.1, max_in_flight=IN_FLIGHT, malformed=policy)
        )
        self.flows = SimpleNamespace(store=SimpleNamespace(get=lambda _ns, _f: FLOW))
        self.topics = SimpleNamespace(commands=SimpleNamespace(name="cmds"))
        self.producer = self
        self.fired: Counter[str] = Counter()
        self.produced: list[bytes] = []
        self.notes: list[dict[str, Any]] = []

    async def enqueue(self, _topic: str, _key: bytes, value: bytes) -> asyncio.Future[Any]:
        self.produced.append(value)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def note(self, _ref: TriggerRef, **fields: Any) -> None:
        self.notes.append(fields)

    async def write_state(self, _ref: TriggerRef) -> None:
        return None


def context(policy: str) -> tuple[_Context, FakeRuntime]:
    rt = FakeRuntime(policy)
    return _Context(rt, REF, TRIGGER, None), rt  # type: ignore[arg-type]


def test_depth_is_counted_iteratively_at_any_depth() -> None:
    assert not depth_exceeds(deep(MAX_JSON_DEPTH))
    assert depth_exceeds(deep(MAX_JSON_DEPTH + 1))
    assert depth_exceeds({"a": [{"b": deep(MAX_JSON_DEPTH)}]})
    assert depth_exceeds(deep(100_000))  # far past Python's recursion limit
    assert not depth_exceeds("[" * 10_000)  # text is a scalar
    text = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    with pytest.raises(MalformedPayload, match=f"more than {MAX_JSON_DEPTH} levels"):
        loads_json(text)
    with pytest.raises(MalformedPayload, match="levels deep"):  # past orjson's own 1,024
        loads_json("[" * 2000 + "]" * 2000)


async def test_fire_refuses_an_unencodable_command_without_leaking_a_slot() -> None:
    ctx, rt = context("error")
    for _ in range(IN_FLIGHT + 1):  # a leaked slot per call would block the third call
        with pytest.raises(MalformedPayload, match="cannot be encoded"):
            await asyncio.wait_for(ctx.fire("c", {"value": deep(300)}), 5)
    assert rt.produced == []
    await asyncio.wait_for(ctx.fire("c", {"value": 1}), 5)
    assert len(rt.produced) == 1


async def test_malformed_raw_policy_skips_a_raw_form_that_cannot_travel_either() -> None:
    ctx, rt = context("raw")
    assert await ctx.malformed("c", {"value": deep(300)}, "too deep") is None
    assert rt.produced == []
    assert "raw form skipped too" in rt.notes[-1]["last_error"]
    assert await ctx.malformed("c2", {"value": "text"}, "bad") is not None
    assert len(rt.produced) == 1


def kafka_source(ctx: _Context) -> kafka.KafkaSource:
    source = object.__new__(kafka.KafkaSource)
    source.ctx = ctx
    source.config = SimpleNamespace(group_id="g", key_kind="STRING", value_kind="JSON")  # type: ignore[assignment]
    return source


def record(offset: int, value: bytes) -> Record:
    return Record("in", 0, offset, None, value, None, 1735689600000)


@pytest.mark.parametrize("policy", ["error", "raw"])
async def test_kafka_batch_with_a_too_deep_record_is_handled_not_raised(policy: str) -> None:
    ctx, rt = context(policy)
    nested = b"[" * 300 + b"]" * 300
    batch = [record(1, b'{"n": 1}'), record(2, nested), record(3, b'{"n": 3}')]
    await kafka_source(ctx).handle(batch)  # returns: the batch's offsets get committed
    errors = [n["last_error"] for n in rt.notes if "last_error" in n]
    if policy == "error":
        assert len(rt.produced) == 2
        assert any("in[0]@2" in e and "levels deep" in e for e in errors)
    else:
        assert len(rt.produced) == 3  # the deep one runs with its raw text
        assert b"levels deep" in rt.produced[1]


async def test_flow_trigger_whose_command_cannot_travel_applies_the_policy() -> None:
    """A Flow trigger's variables are five scalars; what it cannot encode (here a forged
    deep value) is skipped with the trigger's error recorded, never raised."""
    ctx, rt = context("raw")
    variables = {"executionId": deep(300)}
    future = await _fire(ctx, Outcome(True, "coords", variables))
    assert future is None
    assert rt.produced == []
    assert any("raw form skipped too" in str(n.get("last_error")) for n in rt.notes)
