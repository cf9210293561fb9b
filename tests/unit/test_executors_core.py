"""The core task executors, run through the registry as a worker runs them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from executors.base import (
    LogLevel,
    LogLine,
    TaskContext,
    TaskOutcome,
    parse_duration,
)
from executors.core import InMemoryKV
from executors.registry import Registry, core_registry
from schemas.flow.common import format_duration

_EXPR = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")
FIXED_NOW = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def _lookup(variables: Mapping[str, Any], path: str) -> Any:
    value: Any = variables
    for part in path.split("."):
        value = value[part]
    return value


def path_renderer(value: Any, variables: Mapping[str, Any], hooks: Any = None) -> Any:
    """A stand-in for the expression engine: `{{ a.b }}` lookups only, recursively.

    The executors' job is to decide what gets rendered and what the result means; these tests
    check that, independently of the expression language (tested on its own).
    """
    if isinstance(value, str):
        whole = _EXPR.fullmatch(value.strip())
        if whole:
            return _lookup(variables, whole.group(1))
        return _EXPR.sub(lambda m: str(_lookup(variables, m.group(1))), value)
    if isinstance(value, list):
        return [path_renderer(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: path_renderer(v, variables) for k, v in value.items()}
    return value


class ListLogSource:
    def __init__(self, lines: list[LogLine]) -> None:
        self.lines = lines
        self.calls: list[tuple[str, str, list[str] | None]] = []

    async def fetch(
        self, execution_id: str, min_level: LogLevel, task_ids: list[str] | None
    ) -> list[LogLine]:
        self.calls.append((execution_id, min_level, task_ids))
        order = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
        return [
            line
            for line in self.lines
            if line.execution_id == execution_id
            and order.index(line.level) >= order.index(min_level)
            and (task_ids is None or line.task_id in task_ids)
        ]


class DictStorage:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def put(self, execution_id: str, name: str, data: bytes) -> str:
        uri = f"kestra:///{execution_id}/{name}"
        self.files[uri] = data
        return uri


def make_ctx(task: Mapping[str, Any], **hooks: Any) -> TaskContext:
    variables = hooks.pop(
        "variables",
        {
            "flow": {"id": "f", "namespace": "io.kestra.tests"},
            "task": {"id": task.get("id"), "type": task.get("type")},
            "taskrun": {"id": "tr-1"},
            "inputs": {"name": "world", "n": 3, "flag": True},
        },
    )
    hooks.setdefault("renderer", path_renderer)
    hooks.setdefault("clock", lambda: FIXED_NOW)
    return TaskContext.for_job(
        execution_id="ex-1",
        task_run_id="tr-1",
        attempt=0,
        task=task,
        variables=variables,
        **hooks,
    )


async def run(task: dict[str, Any], **hooks: Any) -> tuple[TaskOutcome, TaskContext]:
    ctx = make_ctx(task, **hooks)
    outcome = await core_registry().run(task, ctx)
    return outcome, ctx


def messages(ctx: TaskContext) -> list[tuple[str, str]]:
    return [(line.level, line.message) for line in ctx.logs]


# --- Log -------------------------------------------------------------------------------------


async def test_log_renders_message_at_info_by_default() -> None:
    outcome, ctx = await run(
        {"id": "t1", "type": "io.kestra.plugin.core.log.Log", "message": "hello {{ inputs.name }}"}
    )
    assert outcome.state == "SUCCESS"
    assert messages(ctx) == [("INFO", "hello world")]
    assert ctx.logs[0].task_id == "t1"
    assert ctx.logs[0].task_run_id == "tr-1"
    assert ctx.logs[0].timestamp == FIXED_NOW


async def test_log_list_message_logs_each_item_at_the_level() -> None:
    outcome, ctx = await run(
        {
            "id": "t5",
            "type": "log",
            "message": ["five first", "five {{ task.id }}"],
            "level": "WARN",
        }
    )
    assert outcome.state == "SUCCESS"
    assert messages(ctx) == [("WARN", "five first"), ("WARN", "five t5")]


async def test_log_level_property_filters_lower_lines() -> None:
    # Kestra's logs.yaml t4: a TRACE line of a task with logLevel INFO is dropped.
    _, ctx = await run(
        {
            "id": "t4",
            "type": "io.kestra.core.tasks.log.Log",
            "message": "fourth",
            "level": "TRACE",
            "logLevel": "INFO",
        }
    )
    assert ctx.logs == []
    _, ctx = await run({"id": "t1", "type": "log", "message": "first", "level": "TRACE"})
    assert messages(ctx) == [("TRACE", "first")]


async def test_log_without_message_fails_naming_the_property() -> None:
    outcome, ctx = await run({"id": "t", "type": "log"})
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert "'message' is required" in outcome.error
    assert messages(ctx) == [("ERROR", outcome.error)]


async def test_invalid_level_fails_with_the_accepted_values() -> None:
    outcome, _ = await run({"id": "t", "type": "log", "message": "x", "level": "LOUD"})
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert "TRACE, DEBUG, INFO, WARN, ERROR" in outcome.error


async def test_secrets_are_masked_in_log_lines() -> None:
    _, ctx = await run(
        {"id": "s", "type": "log", "message": "my secret: {{ inputs.name }}"},
        secrets=frozenset({"world"}),
    )
    assert messages(ctx) == [("INFO", "my secret: ********")]


# --- Return, Echo, OutputValues --------------------------------------------------------------


async def test_return_outputs_the_rendered_format() -> None:
    outcome, ctx = await run(
        {"id": "r", "type": "io.kestra.core.tasks.debugs.Return", "format": "{{ task.id }} > x"}
    )
    assert outcome.state == "SUCCESS"
    assert outcome.outputs == {"value": "r > x"}
    assert outcome.metrics == {"length": 5}
    assert messages(ctx) == [("DEBUG", "r > x")]


async def test_return_without_format_returns_null() -> None:
    outcome, _ = await run({"id": "r", "type": "return"})
    assert outcome.state == "SUCCESS"
    assert outcome.outputs == {"value": None}


async def test_echo_logs_format_at_level() -> None:
    outcome, ctx = await run({"id": "e", "type": "echo", "format": "task {{ inputs.n }}"})
    assert outcome.state == "SUCCESS"
    assert outcome.outputs == {}
    assert messages(ctx) == [("INFO", "task 3")]
    _, ctx = await run({"id": "e", "type": "echo", "format": "w", "level": "warn"})
    assert messages(ctx) == [("WARN", "w")]


async def test_output_values_renders_each_value() -> None:
    outcome, _ = await run(
        {
            "id": "o",
            "type": "io.kestra.plugin.core.output.OutputValues",
            "values": {"a": "xyz", "b": "{{ inputs.name }}", "n": "{{ inputs.n }}"},
        }
    )
    assert outcome.state == "SUCCESS"
    assert outcome.outputs == {"values": {"a": "xyz", "b": "world", "n": 3}}


# --- Fail ------------------------------------------------------------------------------------


async def test_fail_without_condition_fails_with_default_message_logged_at_error() -> None:
    outcome, ctx = await run({"id": "f", "type": "io.kestra.plugin.core.execution.Fail"})
    assert outcome.state == "FAILED"
    assert outcome.error == "Task failure"
    assert messages(ctx) == [("ERROR", "Task failure")]
    assert ctx.error_logs()[0]["taskId"] == "f"
    assert ctx.error_logs()[0]["timestamp"] == "2024-01-02T03:04:05.678Z"


async def test_fail_uses_rendered_error_message() -> None:
    outcome, _ = await run({"id": "f", "type": "fail", "errorMessage": "bad {{ inputs.name }}"})
    assert outcome.error == "bad world"


@pytest.mark.parametrize(
    ("condition", "fails"),
    [
        ("true", True),
        ("yes", True),
        ("1", True),
        ("false", False),
        ("0", False),
        ("-0", False),
        ("", False),
        ("{{ inputs.flag }}", True),
    ],
)
async def test_fail_condition_uses_kestras_truth_table(condition: str, fails: bool) -> None:
    outcome, ctx = await run({"id": "f", "type": "fail", "condition": condition})
    assert outcome.state == ("FAILED" if fails else "SUCCESS")
    assert bool(ctx.logs) is fails


# --- Sleep -----------------------------------------------------------------------------------


async def test_sleep_waits_the_duration_through_the_sleeper_and_logs_it() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float, cancelled: asyncio.Event) -> bool:
        slept.append(seconds)
        return True

    outcome, ctx = await run(
        {"id": "s", "type": "io.kestra.plugin.core.flow.Sleep", "duration": "PT0.1S"},
        sleeper=fake_sleep,
    )
    assert outcome.state == "SUCCESS"
    assert slept == [pytest.approx(0.1)]
    assert messages(ctx) == [("INFO", "Waiting for PT0.1S")]


async def test_sleep_is_cancellable_and_reports_killed() -> None:
    task = {"id": "s", "type": "sleep", "duration": "PT1H"}
    ctx = make_ctx(task)
    running = asyncio.create_task(core_registry().run(task, ctx))
    await asyncio.sleep(0)
    ctx.cancelled.set()
    outcome = await asyncio.wait_for(running, timeout=5)
    assert outcome.state == "KILLED"


async def test_sleep_rejects_a_bad_duration() -> None:
    outcome, _ = await run({"id": "s", "type": "sleep", "duration": "five seconds"})
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert "ISO-8601" in outcome.error


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT1S", 1.0), ("PT0.1S", 0.1), ("PT1M30S", 90.0), ("P1DT1H", 90000.0), ("pt2h", 7200.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "PT0S"),
        (0.1, "PT0.1S"),
        (1, "PT1S"),
        (90, "PT1M30S"),
        (86400, "PT24H"),
        (1.25, "PT1.25S"),
    ],
)
def test_format_duration_matches_java(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# --- Labels ----------------------------------------------------------------------------------


async def test_labels_map_form_renders_keys_and_values() -> None:
    outcome, _ = await run(
        {
            "id": "labels",
            "type": "io.kestra.plugin.core.execution.Labels",
            "labels": {
                "someLabel": "{{ taskrun.id }}",
                "n": "{{ inputs.n }}",
                "b": "{{ inputs.flag }}",
            },
        }
    )
    assert outcome.state == "SUCCESS"
    assert outcome.labels == [
        {"key": "someLabel", "value": "tr-1"},
        {"key": "n", "value": "3"},
        {"key": "b", "value": "true"},
    ]


async def test_labels_list_form_later_keys_win() -> None:
    outcome, _ = await run(
        {
            "id": "l",
            "type": "labels",
            "labels": [
                {"key": "a", "value": "1"},
                {"key": "{{ inputs.name }}", "value": "2"},
                {"key": "a", "value": "3"},
            ],
        }
    )
    assert outcome.labels == [{"key": "a", "value": "3"}, {"key": "world", "value": "2"}]


async def test_labels_json_string_form() -> None:
    outcome, _ = await run({"id": "l", "type": "labels", "labels": '{"x": "y", "n": 2}'})
    assert outcome.labels == [{"key": "x", "value": "y"}, {"key": "n", "value": "2"}]


async def test_labels_refuse_system_labels() -> None:
    outcome, _ = await run({"id": "l", "type": "labels", "labels": {"system.correlationId": "x"}})
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert "System labels" in outcome.error
    assert outcome.labels is None


# --- log.Fetch -------------------------------------------------------------------------------


def _line(level: LogLevel, task_id: str, execution_id: str = "ex-1") -> LogLine:
    return LogLine(execution_id, "tr-x", task_id, 0, level, f"{level} {task_id}", FIXED_NOW)


async def test_fetch_counts_lines_at_info_or_above_of_this_execution() -> None:
    source = ListLogSource(
        [
            _line("INFO", "task-1"),
            _line("DEBUG", "task-1"),
            _line("WARN", "task-2"),
            _line("INFO", "other", execution_id="ex-2"),
        ]
    )
    storage = DictStorage()
    outcome, _ = await run(
        {"id": "get-log-task", "type": "io.kestra.plugin.core.log.Fetch"},
        log_source=source,
        storage=storage,
    )
    assert outcome.state == "SUCCESS"
    assert outcome.outputs["size"] == 2
    assert source.calls == [("ex-1", "INFO", None)]
    stored = storage.files[outcome.outputs["uri"]]
    assert stored.count(b"\n") == 2
    assert b'"message":"WARN task-2"' in stored


async def test_fetch_filters_by_execution_level_and_tasks() -> None:
    source = ListLogSource([_line("ERROR", "a", "ex-2"), _line("WARN", "b", "ex-2")])
    outcome, _ = await run(
        {
            "id": "f",
            "type": "log_fetch",
            "executionId": "{{ inputs.target }}",
            "level": "ERROR",
            "tasksId": ["a"],
        },
        log_source=source,
        variables={"flow": {"namespace": "n"}, "inputs": {"target": "ex-2"}},
    )
    assert outcome.outputs == {"size": 1}
    assert source.calls == [("ex-2", "ERROR", ["a"])]


async def test_fetch_without_log_source_fails_clearly() -> None:
    outcome, _ = await run({"id": "f", "type": "log_fetch"})
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert "log source" in outcome.error


# --- KV --------------------------------------------------------------------------------------


async def test_kv_set_get_delete_round_trip_in_the_flow_namespace() -> None:
    kv = InMemoryKV()
    outcome, _ = await run(
        {
            "id": "s",
            "type": "io.kestra.plugin.core.kv.Set",
            "key": "k",
            "value": "{{ inputs.name }}",
        },
        kv=kv,
    )
    assert outcome.state == "SUCCESS"
    assert kv.entries == {("io.kestra.tests", "k"): "world"}
    outcome, _ = await run({"id": "g", "type": "kv_get", "key": "k"}, kv=kv)
    assert outcome.outputs == {"value": "world"}
    outcome, _ = await run({"id": "d", "type": "kv_delete", "key": "k"}, kv=kv)
    assert outcome.outputs == {"deleted": True}
    outcome, _ = await run({"id": "d", "type": "kv_delete", "key": "k"}, kv=kv)
    assert outcome.outputs == {"deleted": False}


async def test_kv_get_missing_is_null_unless_error_on_missing() -> None:
    kv = InMemoryKV()
    outcome, _ = await run({"id": "g", "type": "kv_get", "key": "nope"}, kv=kv)
    assert (outcome.state, outcome.outputs) == ("SUCCESS", {"value": None})
    outcome, _ = await run(
        {"id": "g", "type": "kv_get", "key": "nope", "namespace": "other", "errorOnMissing": True},
        kv=kv,
    )
    assert outcome.state == "FAILED"
    assert outcome.error == (
        "No value found for key 'nope' in namespace 'other' and `errorOnMissing` is set to true"
    )


async def test_kv_set_types_and_overwrite() -> None:
    kv = InMemoryKV()
    await run({"id": "s", "type": "kv_set", "key": "n", "value": "42", "kvType": "NUMBER"}, kv=kv)
    await run(
        {"id": "s", "type": "kv_set", "key": "j", "value": '{"a": [1]}', "kvType": "JSON"}, kv=kv
    )
    assert kv.entries[("io.kestra.tests", "n")] == 42
    assert kv.entries[("io.kestra.tests", "j")] == {"a": [1]}
    outcome, _ = await run(
        {"id": "s", "type": "kv_set", "key": "n", "value": "1", "overwrite": False}, kv=kv
    )
    assert outcome.state == "FAILED"
    assert kv.entries[("io.kestra.tests", "n")] == 42
    outcome, _ = await run(
        {"id": "s", "type": "kv_set", "key": "x", "value": "abc", "kvType": "NUMBER"}, kv=kv
    )
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert "not a valid NUMBER" in outcome.error


async def test_kv_without_store_fails_clearly() -> None:
    outcome, _ = await run({"id": "g", "type": "kv_get", "key": "k"})
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert "KV store" in outcome.error


# --- registry and the failure boundary -------------------------------------------------------


async def test_unknown_type_fails_naming_close_matches() -> None:
    outcome, ctx = await run({"id": "x", "type": "io.kestra.plugin.core.log.Lg", "message": "m"})
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert "unknown task type 'io.kestra.plugin.core.log.Lg'" in outcome.error
    assert "io.kestra.plugin.core.log.Log" in outcome.error
    assert messages(ctx) == [("ERROR", outcome.error)]


async def test_unknown_type_with_no_match_says_so() -> None:
    outcome, _ = await run({"id": "x", "type": "zzzz"})
    assert outcome.error == "unknown task type 'zzzz' (task 'x')"


async def test_a_kestra_plugin_nobody_provides_is_said_to_be_one() -> None:
    outcome, _ = await run({"id": "x", "type": "io.kestra.plugin.acme.warehouse.Query"})
    assert outcome.error is not None
    assert outcome.error.startswith(
        "'io.kestra.plugin.acme.warehouse.Query' is a Kestra plugin that Headwater does not provide"
    )
    assert "did you mean" not in outcome.error


async def test_a_known_type_this_worker_has_no_executor_for_says_so() -> None:
    outcome, _ = await run({"id": "x", "type": "io.kestra.plugin.scripts.shell.Commands"})
    assert outcome.error is not None
    assert "no task executor of this worker handles it" in outcome.error


class Boom:
    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        raise KeyError("missing")


class Forever:
    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_an_exception_in_a_task_becomes_a_failed_outcome() -> None:
    registry = Registry({"my.Boom": Boom()})
    task = {"id": "b", "type": "my.Boom"}
    outcome = await registry.run(task, make_ctx(task))
    assert outcome.state == "FAILED"
    assert outcome.error == "'missing'"


async def test_the_callers_cancellation_is_not_swallowed() -> None:
    registry = Registry({"my.Forever": Forever()})
    task = {"id": "f", "type": "my.Forever"}
    running = asyncio.create_task(registry.run(task, make_ctx(task)))
    await asyncio.sleep(0)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


def test_registry_resolves_aliases_to_one_executor() -> None:
    registry = core_registry()
    assert registry.get("log") is registry.get("io.kestra.core.tasks.log.Log")
    assert registry.get("io.kestra.plugin.core.log.Log") is not None
    assert "io.kestra.plugin.core.kv.Set" in registry.types()


def test_on_log_streams_each_kept_line() -> None:
    seen: list[LogLine] = []
    ctx = make_ctx({"id": "t", "logLevel": "WARN"}, on_log=seen.append)
    ctx.log("INFO", "dropped")
    ctx.log("ERROR", "kept")
    assert [line.message for line in seen] == ["kept"]
    assert ctx.logs == seen


# --- with the real expression language -------------------------------------------------------


async def test_real_renderer_labels_print_values_as_kestra_does() -> None:
    from engine.expressions import ExpressionHooks

    task = {
        "id": "update-labels",
        "type": "io.kestra.plugin.core.execution.Labels",
        "labels": {
            "intValue": "{{inputs.i}}",
            "floatValue": "{{inputs.f}}",
            "boolValue": "{{inputs.b}}",
            "taskRunId": "{{taskrun.id}}",
        },
    }
    ctx = TaskContext.for_job(
        execution_id="ex-1",
        task_run_id="tr-9",
        attempt=1,
        task=task,
        variables={"inputs": {"i": 42, "f": 3.14, "b": True}, "taskrun": {"id": "tr-9"}},
        expression_hooks=ExpressionHooks(),
    )
    outcome = await core_registry().run(task, ctx)
    assert outcome.labels == [
        {"key": "intValue", "value": "42"},
        {"key": "floatValue", "value": "3.14"},
        {"key": "boolValue", "value": "true"},
        {"key": "taskRunId", "value": "tr-9"},
    ]


async def test_real_renderer_kv_function_and_render_errors_fail_the_task() -> None:
    from engine.expressions import ExpressionHooks

    store = {("io.kestra.tests", "my-key"): {"field": "value"}}

    def kv(key: str, namespace: str) -> Any:
        return store[(namespace, key)]

    hooks = ExpressionHooks(kv=kv)
    task = {"id": "get", "type": "return", "format": "{{ kv('my-key').field }}"}
    variables = {"flow": {"namespace": "io.kestra.tests", "id": "kv"}}
    ctx = TaskContext.for_job(
        execution_id="e",
        task_run_id="t",
        attempt=1,
        task=task,
        variables=variables,
        expression_hooks=hooks,
    )
    outcome = await core_registry().run(task, ctx)
    assert outcome.outputs == {"value": "value"}

    bad = {"id": "bad", "type": "log", "message": "{{ inputs.nope }}"}
    ctx = TaskContext.for_job(
        execution_id="e",
        task_run_id="t",
        attempt=1,
        task=bad,
        variables=variables,
        expression_hooks=hooks,
    )
    outcome = await core_registry().run(bad, ctx)
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert "inputs" in outcome.error
    assert ctx.logs[-1].level == "ERROR"
