"""Probes of each component for the health server (:mod:`engine.health.server`).

Each reads only the component's public attributes (``healthy()``/``health()``/``stats``...);
what a component does not expose is not invented here. Missing today: the worker's finished
jobs by state and task durations (the API's /metrics computes them from the read model).
"""

from __future__ import annotations

import time
from typing import Any

from engine.health.server import Metric, Probe


def _counter(name: str, help: str, value: float | None, **labels: str) -> Metric:
    return Metric(name, "counter", help, [] if value is None else [(labels, value)])


def _gauge(name: str, help: str, value: float | None, **labels: str) -> Metric:
    return Metric(name, "gauge", help, [] if value is None else [(labels, value)])


def executor_probe(executor: Any) -> Probe:
    """An :class:`engine.executor.Executor` (its ``healthy()`` and ``health()``)."""

    def healthy() -> bool:
        return bool(executor.healthy() and executor.health().get("running"))

    def metrics() -> list[Metric]:
        h = executor.health()
        return [
            _counter(
                "headwater_executor_commands_processed_total",
                "Commands the reducer decided in this process.",
                h.get("processed"),
            ),
            _counter(
                "headwater_executor_commands_duplicate_total",
                "Commands recognised as already applied (redeliveries).",
                h.get("duplicates"),
            ),
            _counter(
                "headwater_executor_commands_dropped_total",
                "Commands dropped as unreadable or for unknown executions.",
                h.get("dropped"),
            ),
            _gauge(
                "headwater_executor_lag_seconds",
                "Event age of the oldest command of the last batch (lag, right on every broker).",
                h.get("lag_s"),
            ),
            _gauge(
                "headwater_executor_executions",
                "Executions held in memory by this executor.",
                h.get("executions"),
            ),
            _gauge("headwater_executor_timers", "Armed timers.", h.get("timers")),
            _counter(
                "headwater_executor_inline_tasks_total",
                "Task runs the executor ran itself (I/O-free core tasks, no worker hop).",
                h.get("inline_tasks"),
            ),
            _counter(
                "headwater_executor_batches_total",
                "Non-empty batches of commands decided and produced.",
                h.get("batches"),
            ),
            _counter(
                "headwater_executor_batch_decide_seconds_total",
                "Time spent deciding batches (divide by batches_total for the mean).",
                h.get("decide_s"),
            ),
            _counter(
                "headwater_executor_batch_produce_seconds_total",
                "Time spent producing a batch's records until every ack arrived.",
                h.get("produce_s"),
            ),
            _gauge(
                "headwater_executor_assigned_partitions",
                "hw.commands partitions this executor owns.",
                len(h.get("assigned") or []),
            ),
        ]

    return Probe("executor", healthy, executor.health, metrics)


def worker_probe(worker: Any) -> Probe:
    """An :class:`engine.worker.Worker` (``healthy``, ``running``, ``waiting``, ``completed``)."""

    def details() -> dict[str, Any]:
        return {
            "worker_id": worker.worker_id,
            "group": worker.group or "default",
            "concurrency": worker.concurrency,
            "running": len(worker.running),
            "waiting": len(worker.waiting),
            "completed": worker.completed,
            "failure": repr(worker.failure) if worker.failure else None,
        }

    def metrics() -> list[Metric]:
        group = worker.group or "default"
        return [
            _gauge(
                "headwater_worker_jobs_running",
                "Task runs executing now.",
                len(worker.running),
                group=group,
            ),
            _gauge(
                "headwater_worker_jobs_waiting",
                "Task runs received and waiting for a free slot.",
                len(worker.waiting),
                group=group,
            ),
            _counter(
                "headwater_worker_jobs_finished_total",
                "Task runs whose result the broker acknowledged.",
                worker.completed,
                group=group,
            ),
            _gauge(
                "headwater_worker_concurrency",
                "Task runs this worker runs at once.",
                worker.concurrency,
                group=group,
            ),
        ]

    return Probe("worker", lambda: bool(worker.healthy), details, metrics)


def projector_probe(projector: Any) -> Probe:
    """A :class:`engine.projector.Projector` (``healthy()``, ``stats``, ``lag_percentiles()``)."""

    def details() -> dict[str, Any]:
        stats = projector.stats
        last = stats.last_batch_monotonic
        return {
            "group": projector.group_id,
            "records": stats.records,
            "batches": stats.batches,
            "poison": stats.poison,
            "lag_ms": stats.last_lag_ms,
            "last_batch_age_s": None if last is None else round(time.monotonic() - last, 3),
            "failure": repr(projector.failure) if projector.failure else None,
        }

    def metrics() -> list[Metric]:
        stats = projector.stats
        lag = projector.lag_percentiles()
        last = stats.last_batch_monotonic
        quantiles = Metric(
            "headwater_projector_lag_quantile_seconds",
            "gauge",
            "Event age of recently projected records, by quantile.",
            [
                ({"quantile": q}, value / 1000)
                for q, value in (("0.5", lag.get("p50_ms")), ("0.99", lag.get("p99_ms")))
                if value is not None
            ],
        )
        return [
            _counter(
                "headwater_projector_records_total",
                "Records projected into the read model.",
                stats.records,
            ),
            _counter("headwater_projector_batches_total", "Database transactions.", stats.batches),
            _counter(
                "headwater_projector_poison_total", "Unreadable records skipped.", stats.poison
            ),
            _gauge(
                "headwater_projector_lag_seconds",
                "Event age of the last projected batch.",
                None if stats.last_lag_ms is None else stats.last_lag_ms / 1000,
            ),
            _gauge(
                "headwater_projector_last_batch_age_seconds",
                "Seconds since the last batch was written.",
                None if last is None else time.monotonic() - last,
            ),
            quantiles,
        ]

    return Probe("projector", projector.healthy, details, metrics)


def triggers_probe(runtime: Any) -> Probe:
    """A :class:`triggers.runtime.TriggerRuntime` (``healthy``, ``running()``)."""

    def details() -> dict[str, Any]:
        return {
            "sources": [str(ref) for ref in runtime.running()],
            "failure": repr(runtime.failure) if runtime.failure else None,
        }

    def metrics() -> list[Metric]:
        return [
            Metric(
                "headwater_triggers_sources_running",
                "gauge",
                "Trigger sources running in this process.",
                [({}, len(runtime.running()))],
            ),
            Metric(
                "headwater_triggers_fired_total",
                "counter",
                "Executions started by the trigger sources of this process, by trigger type.",
                [({"type": kind}, n) for kind, n in sorted(runtime.fired.items())],
            ),
        ]

    return Probe("triggers", lambda: bool(runtime.healthy), details, metrics)


def app_probe(app: Any) -> Probe:
    """An :class:`engine.app.App` (every component in one process: ``health()``)."""

    def healthy() -> bool:
        parts = app.health()
        return bool(app.ready.is_set()) and all(p["status"] == "RUNNING" for p in parts.values())

    def metrics() -> list[Metric]:
        return [
            Metric(
                "headwater_component_running",
                "gauge",
                "1 while the component's task runs in this process.",
                [
                    ({"component": n}, 1 if p["status"] == "RUNNING" else 0)
                    for n, p in app.health().items()
                ],
            )
        ]

    return Probe("server", healthy, app.health, metrics)
