"""Kestra 2.0's trigger language: ``when`` on every trigger, and Flow triggers with
``dependsOn`` (``states``, ``labels``, ``when``), ``window``, ``mode`` and outputs scoped by
flow id — through the real trigger code (the Flow triggers through the in-process world)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.flows import flow_to_dict, load_flow
from engine.reducer.model import State
from tests.conformance.harness import World
from triggers import webhook as hook
from triggers.conditions import schedule_holds, when_holds
from triggers.flow_trigger import evaluate
from triggers.windows import depends_on_window


def flow(source: str) -> dict[str, Any]:
    return flow_to_dict(load_flow(source))


@pytest.mark.parametrize(
    ("when", "date", "fires"),
    [
        ("{{ isWeekend(trigger.date) }}", "2024-06-01T11:00:00Z", True),  # a Saturday
        ("{{ isWeekend(trigger.date) }}", "2024-06-03T11:00:00Z", False),
        ("{{ dayOfWeek(trigger.date) == 'MONDAY' }}", "2024-06-03T09:00:00Z", True),
        ("{{ not isPublicHoliday(trigger.date, 'FR') }}", "2024-07-14T09:00:00+02:00", False),
        ("{{ isDayWeekInMonth(trigger.date, 'MONDAY', 'FIRST') }}", "2024-06-03T09:00Z", True),
        ("{{ isDayWeekInMonth(trigger.date, 'MONDAY', 'FIRST') }}", "2024-06-10T09:00Z", False),
        (
            "{{ hourOfDay(trigger.date) >= 8 and hourOfDay(trigger.date) < 17 }}",
            "2024-06-03T18:00Z",
            False,
        ),
        ("{{ undefined_variable }}", "2024-06-03T09:00:00Z", False),  # cannot render: false
        ("0", "2024-06-03T09:00:00Z", False),
    ],
)
def test_schedule_when_skips_the_dates_it_rejects(when: str, date: str, fires: bool) -> None:
    trigger = {"id": "s", "type": "io.kestra.plugin.core.trigger.Schedule", "when": when}
    tick = {"date": date, "next": None, "previous": None}
    assert schedule_holds(trigger, {"id": "f", "namespace": "n"}, tick) is fires


WEBHOOK = """
id: f
namespace: company.team
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.body.hello }}"
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: abc
    when: "{{ trigger.body.hello == 'world' and trigger.headers['X-Event'][0] == 'deploy' }}"
"""


@pytest.mark.parametrize(
    ("body", "event", "status"),
    [
        (b'{"hello": "world"}', "deploy", hook.STARTED),
        (b'{"hello": "moon"}', "deploy", hook.CONDITIONS_NOT_MET),
        (b'{"hello": "world"}', "other", hook.CONDITIONS_NOT_MET),
    ],
)
def test_webhook_when_reads_body_and_headers(body: bytes, event: str, status: int) -> None:
    deployed = flow(WEBHOOK)
    trigger = hook.find_webhook(deployed, "abc")
    assert trigger is not None
    result = hook.webhook_start(
        "company.team", "f", deployed, trigger, body=body,
        headers=[("X-Event", event)], parameters=[], now=datetime(2024, 6, 1, tzinfo=UTC),
    )  # fmt: skip
    assert result.status == status


def test_when_holds_follows_kestra_truthiness() -> None:
    for text, truth in (("true", True), ("yes", True), ("1", True), ("false", False), ("", False)):
        assert when_holds({"when": text}, {}) is truth
    assert when_holds({}, {}) is True


def summary(flow_id: str, state: str = "SUCCESS", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{flow_id}-1",
        "namespace": "company.team",
        "flow_id": flow_id,
        "state": state,
        "history": [["CREATED", "t"], [state, "t"]],
        "labels": extra.pop("labels", {}),
        "outputs": extra.pop("outputs", {}),
        **extra,
    }


NOW = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)


def test_depends_on_defaults_to_success_and_warning_states() -> None:
    trigger = {"id": "t", "dependsOn": [{"namespace": "company.team", "flowId": "up"}]}
    assert evaluate("company.team", "down", trigger, summary("up"), {}, NOW).fire
    assert evaluate("company.team", "down", trigger, summary("up", "WARNING"), {}, NOW).fire
    assert not evaluate("company.team", "down", trigger, summary("up", "FAILED"), {}, NOW).fire
    assert not evaluate("company.team", "down", trigger, summary("up", "PAUSED"), {}, NOW).fire
    # namespace is an exact match (a prefix goes into `when`)
    other = summary("up") | {"namespace": "company.team.sub"}
    assert not evaluate("company.team", "down", trigger, other, {}, NOW).fire


def test_depends_on_labels_and_when() -> None:
    trigger = {
        "id": "t",
        "dependsOn": [
            {
                "states": ["FAILED"],
                "labels": {"env": "prod"},
                "when": "{{ namespace | startsWith('company') and outputs.rows > 0 }}",
            }
        ],
    }
    hit = summary("up", "FAILED", labels={"env": "prod"}, outputs={"rows": 3})
    assert evaluate("company.team", "down", trigger, hit, {}, NOW).fire
    for miss in (
        summary("up", "FAILED", labels={"env": "dev"}, outputs={"rows": 3}),
        summary("up", "FAILED", labels={"env": "prod"}, outputs={"rows": 0}),
        summary("up", "SUCCESS", labels={"env": "prod"}, outputs={"rows": 3}),
    ):
        assert not evaluate("company.team", "down", trigger, miss, {}, NOW).fire


def test_all_mode_waits_for_every_entry_then_scopes_outputs_by_flow() -> None:
    trigger = {
        "id": "t",
        "inputs": {"a": "{{ trigger.outputs.a.n }}"},
        "dependsOn": [{"flowId": "a"}, {"flowId": "b"}],
        "window": {"every": "P1D"},
    }
    first = evaluate("company.team", "down", trigger, summary("a", outputs={"n": 1}), {}, NOW)
    assert not first.fire
    assert first.windows is not None
    second = evaluate(
        "company.team", "down", trigger, summary("b", outputs={"n": 2}), first.windows, NOW
    )
    assert second.fire
    assert second.scope is not None
    assert second.scope["trigger"]["outputs"] == {"a": {"n": 1}, "b": {"n": 2}}
    # fireOnce false (the default with a window): the window is kept, so the next execution
    # meeting an entry fires again; one meeting none never does.
    assert second.windows is not None
    again = evaluate("company.team", "down", trigger, summary("a"), second.windows, NOW)
    assert again.fire
    unrelated = evaluate("company.team", "down", trigger, summary("zzz"), second.windows, NOW)
    assert not unrelated.fire


def test_fire_once_resets_the_window() -> None:
    trigger = {
        "id": "t",
        "dependsOn": [{"flowId": "a"}],
        "window": {"every": "P1D", "fireOnce": True},
    }
    fired = evaluate("company.team", "down", trigger, summary("a"), {}, NOW)
    assert fired.fire
    assert not fired.windows  # nothing kept (None: unchanged from empty)


def test_single_entry_keeps_the_unscoped_outputs_shorthand() -> None:
    trigger = {"id": "t", "dependsOn": [{"flowId": "up"}]}
    outcome = evaluate("company.team", "down", trigger, summary("up", outputs={"x": 7}), {}, NOW)
    assert outcome.fire
    assert outcome.scope is not None
    assert outcome.scope["trigger"]["outputs"] == {"x": 7, "up": {"x": 7}}


@pytest.mark.parametrize(("mode", "minimum", "after"), [("ANY", None, 1), ("AT_LEAST", 2, 2)])
def test_any_and_at_least_modes(mode: str, minimum: int | None, after: int) -> None:
    trigger: dict[str, Any] = {
        "id": "t",
        "mode": mode,
        "dependsOn": [{"flowId": "a"}, {"flowId": "b"}, {"flowId": "c"}],
    }
    if minimum:
        trigger["minSatisfied"] = minimum
    windows: dict[str, Any] = {}
    for count, upstream in enumerate(("a", "b", "c"), start=1):
        outcome = evaluate("company.team", "down", trigger, summary(upstream), windows, NOW)
        if outcome.fire:
            assert count == after
            return
        windows = outcome.windows or windows
    pytest.fail("never fired")


def test_deadline_with_an_offset_is_that_time_in_utc() -> None:
    window = depends_on_window(
        {"id": "t", "dependsOn": [{}], "window": {"deadline": "09:00:00+01:00"}}
    )
    from triggers.windows import bounds

    start, end = bounds(window, NOW)
    assert (start.hour, end.hour) == (0, 8)


def test_trigger_level_when_sees_the_upstream_execution() -> None:
    trigger = {"id": "t", "when": "{{ flowId == 'up' and state == 'SUCCESS' }}"}
    assert evaluate("company.team", "down", trigger, summary("up"), {}, NOW).fire
    assert not evaluate("company.team", "down", trigger, summary("other"), {}, NOW).fire


async def test_flow_trigger_with_depends_on_starts_the_downstream_flow() -> None:
    world = World()
    for source in (
        """
id: up
namespace: company.team
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "42"
outputs:
  - id: answer
    type: STRING
    value: "{{ outputs.t.value }}"
""",
        """
id: down
namespace: company.team
inputs:
  - id: answer
    type: STRING
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "got {{ inputs.answer }}"
triggers:
  - id: after_up
    type: io.kestra.plugin.core.trigger.Flow
    inputs:
      answer: "{{ trigger.outputs.up.answer }}"
    dependsOn:
      - namespace: company.team
        flowId: up
""",
    ):
        deployed = flow(source)
        key = (deployed["namespace"], deployed["id"])
        world.flows[key] = deployed
        world.triggers.flows[key] = [str(t["id"]) for t in deployed.get("triggers") or []]  # type: ignore[index]
    world.start("company.team", "up")
    await world.run()
    downs = world.executions_of("down")
    assert len(downs) == 1
    assert downs[0].state == State.SUCCESS
    assert downs[0].inputs == {"answer": "42"}


class _Runtime:
    """What a trigger's context uses of the runtime, in memory."""

    def __init__(self, deployed: dict[str, Any]) -> None:
        import collections
        from types import SimpleNamespace

        from engine.settings import Settings

        self.settings = Settings()
        self.flows = SimpleNamespace(store=SimpleNamespace(get=lambda ns, fid: deployed))
        self.topics = SimpleNamespace(commands=SimpleNamespace(name="hw.commands"))
        self.fired: collections.Counter[str] = collections.Counter()
        self.states: dict[Any, Any] = {}
        self.produced: list[bytes] = []
        self.producer = self

    async def enqueue(self, topic: str, key: bytes, value: bytes) -> Any:
        import asyncio

        self.produced.append(value)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def note(self, ref: Any, **fields: Any) -> None:
        self.states[ref] = fields


async def test_a_message_trigger_tests_when_on_each_event() -> None:
    from triggers.model import TriggerRef
    from triggers.runtime import _Context

    deployed = flow(
        """
id: f
namespace: company.team
tasks:
  - id: t
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.value }}"
triggers:
  - id: mq
    type: io.kestra.plugin.mqtt.RealtimeTrigger
    server: tcp://127.0.0.1:1883
    topic: t
    when: "{{ trigger.value == 'go' }}"
"""
    )
    runtime = _Runtime(deployed)
    trigger = deployed["triggers"][0]
    ctx = _Context(runtime, TriggerRef("company.team", "f", "mq"), trigger, None)  # type: ignore[arg-type]
    await ctx.fire("c1", {"value": "stop"})
    assert runtime.produced == []
    await ctx.fire("c2", {"value": "go"})
    assert len(runtime.produced) == 1
