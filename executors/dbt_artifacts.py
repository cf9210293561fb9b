"""What the dbt tasks read from dbt: its JSON log lines and its ``target/`` artifacts.

Ports of kestra-io/plugin-dbt's ``LogService`` (one dbt JSON log line -> one log line, stats
-> counters, warn -> the run's WARNING) and ``ResultParser`` (``run_results.json`` -> one entry
per node with its state, timings, metrics and messages; see :func:`parse_run_results`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

# Keys of a dbt log record that the formatted line does not repeat (LogService's removals).
_DROPPED_KEYS = frozenset(
    (
        "category",
        "code",
        "invocation_id",
        "level",
        "log_version",
        "msg",
        "thread",
        "thread_name",
        "type",
        "name",
        "ts",
        "pid",
        "extra",
    )
)
# dbt's result status -> Kestra's state (RunResult.Result.state()).
_STATES = {
    "error": "FAILED",
    "fail": "FAILED",
    "runtime_error": "FAILED",
    "runtime error": "FAILED",
    "warn": "WARNING",
    "skipped": "SKIPPED",
    "success": "SUCCESS",
    "pass": "SUCCESS",
}
# adapter_response keys that become counters (ResultParser).
_ADAPTER_METRICS = {"rows_affected": "rows.affected", "bytes_processed": "bytes.processed"}


@dataclass(slots=True)
class DbtLine:
    """One dbt log line, parsed: what to log, at which level, and the counters it carries."""

    level: str
    message: str
    stats: dict[str, float] = field(default_factory=dict)
    warning: bool = False


def parse_log_line(line: str) -> DbtLine:
    """A dbt output line as Kestra's ``LogService.parse`` logs it.

    A JSON log record becomes ``[Date: ts] [Thread: thread] [Type: name] msg {extra keys}`` at
    its level (debug, info, warn -> WARN and the run's warning, anything else ERROR); its
    ``data.stats`` become counters. Any other line is logged as is at INFO.
    """
    try:
        record = orjson.loads(line)
        if not isinstance(record, dict):
            raise TypeError("not a JSON object")
        info = record.get("info")
        additional: dict[str, Any] = {}
        if isinstance(info, dict):
            level, ts, thread = info.get("level"), info.get("ts"), info.get("thread")
            kind, msg = info.get("name"), info.get("msg")
            additional = {k: v for k, v in info.items() if k not in _DROPPED_KEYS}
        else:
            level, ts, thread = record.get("level"), record.get("ts"), record.get("thread_name")
            kind, msg = record.get("type"), record.get("msg")
        text = f"[Date: {ts}] [Thread: {thread}] [Type: {kind}] "
        text += f"{msg} " if msg is not None else ""
        if additional:
            text += "{" + ", ".join(f"{k}={v}" for k, v in additional.items()) + "}"
        stats: dict[str, float] = {}
        data = record.get("data")
        if isinstance(data, dict) and isinstance(data.get("stats"), dict):
            stats = {
                str(k): v
                for k, v in data["stats"].items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            }
    except (ValueError, TypeError, AttributeError):
        return DbtLine("INFO", line.strip())
    mapped = {"debug": "DEBUG", "info": "INFO", "warn": "WARN"}.get(str(level), "ERROR")
    return DbtLine(mapped, text.rstrip(), stats, warning=mapped == "WARN")


@dataclass(slots=True)
class NodeResult:
    """One node of ``run_results.json`` (a dynamic task run in Kestra)."""

    unique_id: str
    status: str
    state: str
    execution_time: float | None
    failures: int | None
    message: str | None
    started: str | None
    ended: str | None

    def log_lines(self) -> list[tuple[str, str]]:
        """Kestra's ``modelLogs``: ``id => status in 0.12s (1 failure)`` and the message."""
        level = {"FAILED": "ERROR", "WARNING": "WARN"}.get(self.state, "INFO")
        summary = f"{self.unique_id} => {self.status}"
        if self.execution_time is not None:
            summary += f" in {self.execution_time:.2f}s"
        if self.failures:
            summary += f" ({self.failures} failure{'' if self.failures == 1 else 's'})"
        lines = [(level, summary)]
        if self.message and self.message.strip():
            lines.append((level, self.message))
        return lines


def parse_run_results(data: bytes, add_metric: Callable[[str, float], None]) -> list[NodeResult]:
    """The nodes of a ``run_results.json``; ``rows_affected``/``bytes_processed`` counted.

    Raises ValueError naming what is malformed.
    """
    document = orjson.loads(data)
    if not isinstance(document, dict) or not isinstance(document.get("results"), list):
        raise ValueError("run_results.json has no 'results' list")
    nodes: list[NodeResult] = []
    for entry in document["results"]:
        if not isinstance(entry, dict):
            raise ValueError("run_results.json: a result is not an object")
        status = str(entry.get("status"))
        timings = [t for t in entry.get("timing") or [] if isinstance(t, dict)]
        starts = [str(t["started_at"]) for t in timings if t.get("started_at")]
        ends = [str(t["completed_at"]) for t in timings if t.get("completed_at")]
        for key, metric in _ADAPTER_METRICS.items():
            value = (entry.get("adapter_response") or {}).get(key)
            if value is not None:
                try:
                    add_metric(metric, float(value))
                except (TypeError, ValueError):
                    raise ValueError(f"run_results.json: {key} {value!r} is not a number") from None
        failures = entry.get("failures")
        nodes.append(
            NodeResult(
                unique_id=str(entry.get("unique_id")),
                status=status,
                state=_STATES.get(status, "SUCCESS"),
                execution_time=_number(entry.get("execution_time")),
                failures=failures if isinstance(failures, int) else None,
                message=entry.get("message") if isinstance(entry.get("message"), str) else None,
                started=min(starts) if starts else None,
                ended=max(ends) if ends else None,
            )
        )
    return nodes


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None
