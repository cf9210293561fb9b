"""The core runnable tasks: Log, Return, Echo, OutputValues, Fail, Sleep, Labels, log Fetch, KV,
trigger Toggle.

Each class follows the properties and outputs of the Kestra task of the same name
(kestra.io/plugins/core), so flows written for Kestra run unchanged. Properties are rendered
here, at run time, from the unrendered task definition the job carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from executors.base import (
    LogLevel,
    TaskContext,
    TaskError,
    TaskOutcome,
    as_bool,
    normalize_level,
    parse_duration,
    to_text,
)
from schemas.flow.common import format_duration

# Kestra's Fail task: "0", "-0", "false" and "" are falsy, everything else (but null) truthy.
_FALSY_CONDITIONS = frozenset({"false", "0", "-0", ""})
_SYSTEM_LABEL_PREFIX = "system."


def _required(task: Mapping[str, Any], key: str) -> Any:
    if task.get(key) is None:
        raise TaskError(
            f"task '{task.get('id')}' ({task.get('type')}): property '{key}' is required"
        )
    return task[key]


class LogTask:
    """io.kestra.plugin.core.log.Log: log one message or a list of messages at ``level``."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        message = _required(task, "message")
        level = normalize_level(ctx.render(task.get("level")), default="INFO")
        messages = message if isinstance(message, list) else [message]
        for item in messages:
            ctx.log(level, to_text(ctx.render(item)))
        return TaskOutcome(state="SUCCESS")


class ReturnTask:
    """io.kestra.plugin.core.debug.Return: ``format`` rendered becomes ``outputs.value``."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        value = ctx.render_str(task.get("format"))
        if value is not None:
            ctx.log("DEBUG", value)
        return TaskOutcome(
            state="SUCCESS",
            outputs={"value": value},
            metrics={"length": len(value) if value is not None else 0},
        )


class EchoTask:
    """io.kestra.plugin.core.debug.Echo (deprecated): log ``format`` at ``level`` (INFO)."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        level = normalize_level(ctx.render(task.get("level")), default="INFO")
        ctx.log(level, ctx.render_str(task.get("format")) or "")
        return TaskOutcome(state="SUCCESS")


class OutputValuesTask:
    """io.kestra.plugin.core.output.OutputValues: every value rendered, under ``outputs.values``."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        values = task.get("values") or {}
        if not isinstance(values, Mapping):
            raise TaskError("property 'values' must be a map of name -> value")
        rendered = {str(key): ctx.render(value) for key, value in values.items()}
        return TaskOutcome(state="SUCCESS", outputs={"values": rendered})


class FailTask:
    """io.kestra.plugin.core.execution.Fail: fail, or fail only when ``condition`` is truthy."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        raw_message = task.get("errorMessage")
        message = ctx.render_str(raw_message) if raw_message is not None else "Task failure"
        if "condition" in task and task["condition"] is not None:
            rendered = ctx.render(task["condition"])
            # Kestra renders the condition to a string first, then applies its truth table.
            text = to_text(rendered) if rendered is not None else None
            if text is None or text in _FALSY_CONDITIONS:
                return TaskOutcome(state="SUCCESS")
        raise TaskError(message or "Task failure")


class SleepTask:
    """io.kestra.plugin.core.flow.Sleep: wait ``duration``; a kill stops the wait."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        seconds = parse_duration(ctx.render(_required(task, "duration")))
        if seconds < 0:
            raise TaskError(f"property 'duration' must not be negative, got {task['duration']!r}")
        # Kestra prints Java's Duration.toString; Fetch's log counts in the corpus include it.
        ctx.log("INFO", f"Waiting for {format_duration(seconds)}")
        await ctx.sleep(seconds)
        return TaskOutcome(state="SUCCESS")


class LabelsTask:
    """io.kestra.plugin.core.execution.Labels: labels to add to or overwrite on the execution.

    The task does not touch the execution itself: it returns ``TaskOutcome.labels`` (a list of
    ``{"key", "value"}``, later keys win) and the reducer applies them when the result arrives.
    """

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        raw = _required(task, "labels")
        pairs: dict[str, str] = {}
        if isinstance(raw, str):
            rendered = ctx.render_str(raw) or ""
            try:
                parsed = orjson.loads(rendered)
            except orjson.JSONDecodeError as exc:
                raise TaskError(
                    f"labels rendered to {rendered!r}, which is not a JSON map"
                ) from exc
            if not isinstance(parsed, dict):
                raise TaskError(f"labels rendered to {rendered!r}, which is not a JSON map")
            pairs = {str(k): to_text(v) for k, v in parsed.items()}
        elif isinstance(raw, list):
            for item in raw:
                if not isinstance(item, Mapping) or "key" not in item:
                    raise TaskError(
                        f"each label must be a map with 'key' and 'value', got {item!r}"
                    )
                pairs[ctx.render_str(item["key"]) or ""] = self._value(item.get("value"), ctx)
        elif isinstance(raw, Mapping):
            for key, value in raw.items():
                pairs[ctx.render_str(str(key)) or ""] = self._value(value, ctx)
        else:
            raise TaskError(f"labels must be a map, a list or a JSON string, got {raw!r}")
        for key, value in pairs.items():
            if key.startswith(_SYSTEM_LABEL_PREFIX):
                raise TaskError(
                    "System labels can only be set by Kestra itself, "
                    f"offending label: {key}={value}"
                )
        labels = [{"key": key, "value": value} for key, value in pairs.items()]
        return TaskOutcome(state="SUCCESS", labels=labels)

    @staticmethod
    def _value(value: Any, ctx: TaskContext) -> str:
        if isinstance(value, Mapping):
            return orjson.dumps(ctx.render(dict(value))).decode()
        return to_text(ctx.render(to_text(value)))


class FetchTask:
    """io.kestra.plugin.core.log.Fetch: the execution's logs at ``level`` or above, to storage.

    Outputs ``size`` (lines fetched) and ``uri`` (the lines as JSON lines in internal storage;
    Kestra writes Ion, a format nothing else in Headwater reads).
    """

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        if ctx.log_source is None:
            raise TaskError("log.Fetch needs a log source, and this worker has none configured")
        execution_id = ctx.render_str(task.get("executionId")) or ctx.execution_id
        level: LogLevel = normalize_level(ctx.render(task.get("level")), default="INFO")
        raw_ids = task.get("tasksId")
        task_ids = [str(t) for t in ctx.render(raw_ids)] if raw_ids else None
        lines = await ctx.log_source.fetch(execution_id, level, task_ids)
        outputs: dict[str, Any] = {"size": len(lines)}
        if ctx.storage is not None:
            body = b"".join(orjson.dumps(line.to_dict()) + b"\n" for line in lines)
            outputs["uri"] = await ctx.storage.put(ctx.execution_id, f"{ctx.task_id}.jsonl", body)
        return TaskOutcome(state="SUCCESS", outputs=outputs)


def _kv_target(task: Mapping[str, Any], ctx: TaskContext) -> tuple[str, str]:
    if ctx.kv is None:
        raise TaskError("KV tasks need a KV store, and this worker has none configured")
    key = ctx.render_str(_required(task, "key")) or ""
    namespace = ctx.render_str(task.get("namespace")) or ctx.namespace
    if not namespace:
        raise TaskError("the KV namespace is unknown: set 'namespace' on the task")
    return namespace, key


_KV_TYPES = frozenset({"STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON"})


def _coerce_kv(value: Any, kv_type: str | None) -> Any:
    if kv_type is None or not isinstance(value, str):
        return value
    kind = kv_type.upper()
    if kind not in _KV_TYPES:
        raise TaskError(
            f"invalid kvType {kv_type!r}: expected one of {', '.join(sorted(_KV_TYPES))}"
        )
    try:
        if kind == "NUMBER":
            number = orjson.loads(value)
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise ValueError(value)
            return number
        if kind == "BOOLEAN":
            return value.strip().lower() == "true"
        if kind == "JSON":
            return orjson.loads(value)
        if kind == "DURATION":
            parse_duration(value)  # validates; stored as written, like Kestra's ISO text
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise TaskError(f"value {value!r} is not a valid {kind}") from exc
    return value


class KVSetTask:
    """io.kestra.plugin.core.kv.Set: store ``value`` under ``key`` in ``namespace``."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        namespace, key = _kv_target(task, ctx)
        if "value" not in task:
            raise TaskError("property 'value' is required")
        value = _coerce_kv(ctx.render(task["value"]), ctx.render_str(task.get("kvType")))
        overwrite = as_bool(ctx.render(task.get("overwrite", True)))
        ttl_raw = task.get("ttl")
        ttl = parse_duration(ctx.render(ttl_raw)) if ttl_raw is not None else None
        assert ctx.kv is not None
        await ctx.kv.set(namespace, key, value, overwrite=overwrite, ttl_seconds=ttl)
        return TaskOutcome(state="SUCCESS")


class KVGetTask:
    """io.kestra.plugin.core.kv.Get: ``outputs.value`` (null when missing, unless asked to fail)."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        namespace, key = _kv_target(task, ctx)
        assert ctx.kv is not None
        found, value = await ctx.kv.get(namespace, key)
        if not found and as_bool(ctx.render(task.get("errorOnMissing", False))):
            raise TaskError(
                f"No value found for key '{key}' in namespace '{namespace}' "
                "and `errorOnMissing` is set to true"
            )
        return TaskOutcome(state="SUCCESS", outputs={"value": value if found else None})


class KVDeleteTask:
    """io.kestra.plugin.core.kv.Delete: ``outputs.deleted`` says whether a value was there."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        namespace, key = _kv_target(task, ctx)
        assert ctx.kv is not None
        deleted = await ctx.kv.delete(namespace, key)
        if not deleted and as_bool(ctx.render(task.get("errorOnMissing", False))):
            raise TaskError(
                f"No value found for key '{key}' in namespace '{namespace}' "
                "and `errorOnMissing` is set to true"
            )
        return TaskOutcome(state="SUCCESS", outputs={"deleted": deleted})


class ToggleTask:
    """io.kestra.plugin.core.trigger.Toggle: enable or disable a trigger of a flow
    (``namespace`` / ``flowId`` default to the running flow's; ``enabled`` to false)."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        if ctx.triggers is None:
            raise TaskError(
                "trigger.Toggle needs the trigger state store, and this worker has none configured"
            )
        trigger = ctx.render_str(_required(task, "trigger")) or ""
        namespace = ctx.render_str(task.get("namespace")) or ctx.namespace
        flow_id = ctx.render_str(task.get("flowId")) or ctx.flow_id
        if not namespace or not flow_id:
            raise TaskError("the flow of the trigger is unknown: set 'namespace' and 'flowId'")
        enabled = as_bool(ctx.render(task.get("enabled", False)))
        await ctx.triggers.set_enabled(namespace, flow_id, trigger, enabled=enabled)
        ctx.log("INFO", f"trigger '{trigger}' of {namespace}.{flow_id} enabled={enabled}")
        return TaskOutcome(state="SUCCESS")


class InMemoryTriggerStates:
    """A process-local TriggerStates for the dev process and tests.

    ``flows`` maps (namespace, flow id) to the flow's trigger ids, so that toggling a
    trigger the flow does not declare fails like Kestra's "Unable to find trigger".
    """

    def __init__(self, flows: Mapping[tuple[str, str], list[str]] | None = None) -> None:
        self.flows = flows
        self.disabled: dict[tuple[str, str, str], bool] = {}

    async def set_enabled(
        self, namespace: str, flow_id: str, trigger_id: str, *, enabled: bool
    ) -> None:
        if self.flows is not None and trigger_id not in self.flows.get((namespace, flow_id), []):
            raise TaskError(
                f"Unable to find trigger '{trigger_id}' for the flow {namespace}.{flow_id}"
            )
        self.disabled[(namespace, flow_id, trigger_id)] = not enabled


class InMemoryKV:
    """A process-local KVStore for the dev process and tests (ttl is recorded, not enforced)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], Any] = {}
        self.ttls: dict[tuple[str, str], float | None] = {}

    async def get(self, namespace: str, key: str) -> tuple[bool, Any]:
        entry = (namespace, key)
        return (entry in self.entries, self.entries.get(entry))

    async def set(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        overwrite: bool,
        ttl_seconds: float | None,
        keep_expiry: bool = False,
    ) -> None:
        entry = (namespace, key)
        if not overwrite and entry in self.entries:
            raise TaskError(
                f"Cannot set value for key '{key}'. "
                "Key already exists and `overwrite` is set to `false`."
            )
        self.entries[entry] = value
        if not keep_expiry:
            self.ttls[entry] = ttl_seconds

    async def list_entries(self) -> list[tuple[str, str, datetime | None]]:
        """Every key (the ttl is recorded, not enforced: no expiry)."""
        return sorted((namespace, key, None) for namespace, key in self.entries)

    async def delete(self, namespace: str, key: str) -> bool:
        entry = (namespace, key)
        self.ttls.pop(entry, None)
        return self.entries.pop(entry, _MISSING) is not _MISSING


_MISSING = object()
