"""RESULTS.md rendering: the suite's JSON as Markdown, written between marker comments so the
hand-written parts of the file (published figures, profiles, notes) survive every run."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

TARGETS = {
    "chain_overhead_ms": 5.0,
    "trigger_first_task_p50_ms": 10.0,
    "sustained_per_s": 200.0,
    "fanout_1000_s": 3.0,
    "projection_lag_p99_ms": 200.0,
}


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with the part between ``<!-- name:begin -->`` and ``<!-- name:end -->``
    replaced by ``body``; the section is appended when the markers are missing. Markers
    count only alone on their line, so prose that mentions them is left alone."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(
        "^" + re.escape(begin) + r"$.*?^" + re.escape(end) + "$", re.DOTALL | re.MULTILINE
    )
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip() + "\n\n" + block + "\n"


def flatten(value: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested mappings as ``a.b.c -> number`` (lists and text skipped)."""
    out: dict[str, float] = {}
    if isinstance(value, Mapping):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        out[prefix] = value
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _verdict(value: float | None, target: float, higher_is_better: bool = False) -> str:
    if value is None:
        return "not measured"
    met = value >= target if higher_is_better else value < target
    return "met" if met else "**missed**"


def _get(d: Mapping[str, Any] | None, *path: str) -> Any:
    cur: Any = d
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def targets_table(hw: Mapping[str, Any]) -> str:
    chain = _get(hw, "chain", "median", "overhead_per_task_ms")
    trig = [_get(v, "to_first_task_started_ms", "p50") for v in (hw.get("triggers") or {}).values()]
    trig_best = min((t for t in trig if t is not None), default=None)
    rate = _get(hw, "saturation", "highest_rate_under_1s_mean_per_s")
    fan = _get(hw, "fanout", "1000", "median", "complete_s")
    lags = [_get(p, "projection_lag_ms", "p99") for p in _get(hw, "saturation", "phases") or []]
    lag = max((x for x in lags if x is not None), default=None)
    t = TARGETS
    rows = [
        [
            "chain-40 overhead per task (ms)",
            chain,
            f"< {t['chain_overhead_ms']}",
            _verdict(chain, t["chain_overhead_ms"]),
        ],
        [
            "trigger -> first task p50, best source (ms)",
            trig_best,
            f"< {t['trigger_first_task_p50_ms']}",
            _verdict(trig_best, t["trigger_first_task_p50_ms"]),
        ],
        [
            "two-task executions/s under 1 s mean",
            rate,
            f">= {t['sustained_per_s']}",
            _verdict(rate, t["sustained_per_s"], higher_is_better=True),
        ],
        [
            "1,000-item fan-out complete (s)",
            fan,
            f"< {t['fanout_1000_s']}",
            _verdict(fan, t["fanout_1000_s"]),
        ],
        [
            "projection lag p99, worst phase (ms)",
            lag,
            f"< {t['projection_lag_p99_ms']}",
            _verdict(lag, t["projection_lag_p99_ms"]),
        ],
    ]
    return table(["target", "measured", "goal", "verdict"], rows)


def render_suite(result: Mapping[str, Any]) -> str:
    hw: Mapping[str, Any] = result.get("headwater") or {}
    peer: Mapping[str, Any] = result.get("prefect") or {}
    ratios: Mapping[str, Any] = result.get("ratios") or {}
    m = result.get("machine") or {}
    p = result.get("parameters") or {}
    out = [
        f"Run **{result.get('when')}** (`{result.get('command')}`), mode **{p.get('mode')}**, "
        f"on {m.get('cpu_model')} x {m.get('cores')} cores, {m.get('memory_gib')} GiB, "
        f"Python {m.get('python')}, Headwater {_get(result, 'versions', 'git_commit')}, "
        f"Prefect {_get(result, 'versions', 'prefect')}. Load average (1/5/15 min) at start "
        f"{m.get('load_average_start')}, at end {m.get('load_average_end')}: **the machine is "
        "shared with other engineers' test runs**, so absolute numbers are pessimistic and "
        "noisy; the Prefect ratios were measured in the same invocation, under the same load.",
        "",
        "### Targets (issue 9)",
        "",
        targets_table(hw),
        "",
        "### Side by side with Prefect (ratio = Prefect / Headwater; > 1 means Headwater is "
        "faster or smaller)",
        "",
    ]
    rows = []
    for key, label in (
        ("chain.overhead_per_task_ms", "chain-40 overhead per task (ms)"),
        ("chain.total_ms", "chain-40 total, engine's own start -> end (ms)"),
        ("chain.api_to_end_ms", "chain-40 API call -> end (ms)"),
        ("heavy.overhead_per_task_ms", "chain-10-heavy overhead per task (ms)"),
        ("heavy.total_ms", "chain-10-heavy total (ms)"),
        ("trigger.to_first_task_started_ms", "API trigger -> first task started p50 (ms)"),
        ("trigger.to_flow_finished_ms", "API trigger -> 2-task flow finished p50 (ms)"),
        ("footprint.rss_mb", "idle RSS, whole stack (MB)"),
        ("footprint.cpu_pct_of_one_core", "idle CPU (% of one core)"),
        ("footprint.cold_start_s", "cold start to ready (s)"),
    ):
        r = ratios.get(key) or {}
        rows.append([label, r.get("headwater"), r.get("prefect"), r.get("ratio")])
    out += [table(["metric", "Headwater", "Prefect 3.8.6", "ratio"], rows), ""]
    out += _scenario_tables(hw, peer)
    return "\n".join(out)


def _scenario_tables(hw: Mapping[str, Any], peer: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for name in ("chain", "heavy"):
        med = _get(hw, name, "median") or {}
        pmed = _get(peer, name, "median") or {}
        keys = [k for k in med if k != "tasks"]
        out += [
            f"### {name} (median of {_get(hw, name, 'runs')} runs after a warm-up)",
            "",
            table(["metric", "Headwater", "Prefect"], [[k, med.get(k), pmed.get(k)] for k in keys]),
            "",
        ]
        if name == "heavy":
            out += [
                "compute_ms: what each task measured itself (fibonacci(33)); baseline run "
                f"alone before the runs: {_get(hw, 'heavy', 'baseline_compute_per_task_ms')} ms.",
                "",
            ]
    idle = hw.get("idle_triggers") or {}
    if idle:
        rows = [
            [
                src,
                v.get("samples"),
                v.get("idle_s"),
                v.get("finished"),
                _get(v, "to_first_task_started_ms", "p50"),
                _get(v, "to_first_task_started_ms", "max"),
            ]
            for src, v in idle.items()
        ]
        out += [
            "### First input after a quiet spell (input sent -> first task started)",
            "",
            table(
                ["source", "samples", "quiet s before each", "finished", "p50 ms", "max ms"],
                rows,
            ),
            "",
        ]
    trig = hw.get("triggers") or {}
    if trig:
        rows = [
            [
                src,
                v.get("samples"),
                v.get("rate_per_s"),
                v.get("finished"),
                _get(v, "to_first_task_started_ms", "p50"),
                _get(v, "to_first_task_started_ms", "p99"),
                _get(v, "to_flow_finished_ms", "p50"),
                _get(v, "to_flow_finished_ms", "p99"),
            ]
            for src, v in trig.items()
        ]
        pt = peer.get("trigger") or {}
        if pt:
            rows.append(
                [
                    "Prefect (API, served deployment)",
                    pt.get("samples"),
                    "1 at a time",
                    pt.get("samples"),
                    _get(pt, "to_first_task_started_ms", "p50"),
                    _get(pt, "to_first_task_started_ms", "p99"),
                    _get(pt, "to_flow_finished_ms", "p50"),
                    _get(pt, "to_flow_finished_ms", "p99"),
                ]
            )
        out += [
            "### Trigger latency (input sent -> engine's timestamps)",
            "",
            table(
                [
                    "source",
                    "samples",
                    "rate/s",
                    "finished",
                    "first task p50 ms",
                    "first task p99 ms",
                    "finished p50 ms",
                    "finished p99 ms",
                ],
                rows,
            ),
            "",
        ]
    sat = hw.get("saturation") or {}
    if sat:
        rows = [
            [
                ph["rate_per_min"],
                ph["offered_per_s"],
                ph["sent"],
                ph["completed"],
                ph["completed_per_s_in_phase"],
                _get(ph, "latency_s", "mean"),
                _get(ph, "latency_s", "p99"),
                _get(ph, "projection_lag_ms", "p50"),
                _get(ph, "projection_lag_ms", "p99"),
            ]
            for ph in sat.get("phases", [])
        ]
        out += [
            f"### Open-loop saturation ({sat.get('phase_s')} s per rate, Kafka-triggered "
            "two-task flow) and projection lag",
            "",
            table(
                [
                    "rate/min",
                    "offered/s",
                    "sent",
                    "completed",
                    "completed/s",
                    "mean latency s",
                    "p99 latency s",
                    "proj. lag p50 ms",
                    "proj. lag p99 ms",
                ],
                rows,
            ),
            "",
            f"Highest rate held under 1 s mean: {sat.get('highest_rate_under_1s_mean_per_min')}"
            f"/min; rates not run (past saturation): {sat.get('not_run')}.",
            "",
        ]
    fan = hw.get("fanout") or {}
    if fan:
        rows = [
            [
                n,
                *(
                    _get(v, "median", k)
                    for k in (
                        "items",
                        "first_scheduled_s",
                        "last_scheduled_s",
                        "last_started_s",
                        "complete_s",
                        "api_to_visible_s",
                    )
                ),
            ]
            for n, v in fan.items()
        ]
        out += [
            "### Fan-out (ForEach, concurrencyLimit 0; median of runs)",
            "",
            table(
                [
                    "items",
                    "task runs",
                    "first scheduled s",
                    "last scheduled s",
                    "last started s",
                    "complete s",
                    "API call -> end visible in Postgres s",
                ],
                rows,
            ),
            "",
        ]
    pay = hw.get("payload") or {}
    if pay:
        rows = [
            [
                v["bytes"],
                v["samples"],
                v["finished"],
                _get(v, "to_first_task_started_ms", "p50"),
                _get(v, "to_flow_finished_ms", "p50"),
                _get(v, "to_flow_finished_ms", "p99"),
            ]
            for v in pay.values()
        ]
        out += [
            "### Payload sweep (Kafka trigger)",
            "",
            table(
                [
                    "bytes",
                    "samples",
                    "finished",
                    "first task p50 ms",
                    "finished p50 ms",
                    "finished p99 ms",
                ],
                rows,
            ),
            "",
        ]
    foot = hw.get("footprint") or {}
    if foot:
        pf = peer.get("footprint") or {}
        rows = [
            [
                "Headwater (dev: Tansu + PostgreSQL + all components)",
                foot.get("idle_s"),
                foot.get("rss_mb"),
                foot.get("cpu_pct_of_one_core"),
                foot.get("cold_start_s"),
            ]
        ]
        if pf:
            rows.append(
                [
                    "Prefect (server on SQLite + serve process)",
                    pf.get("idle_s"),
                    pf.get("rss_mb"),
                    pf.get("cpu_pct_of_one_core"),
                    pf.get("cold_start_s"),
                ]
            )
        out += [
            "### Footprint",
            "",
            table(
                ["stack", "idle s", "RSS MB", "CPU % of one core", "cold start to ready s"], rows
            ),
            "",
        ]
    return out


def render_components(results: Mapping[str, Any]) -> str:
    """One subsection per component benchmark: parameters, runs, load, median numbers."""
    out: list[str] = []
    for name, entry in results.items():
        out += [f"### {name}", ""]
        if entry.get("error"):
            out += [f"Failed: `{entry['error']}`", ""]
            continue
        out += [
            f"`{entry['command']}` - {entry['runs']} runs, {entry['when']}; load average "
            f"before/after: {entry['load_before']} / {entry['load_after']}.",
            "",
            f"Parameters: `{entry.get('parameters')}`",
            "",
        ]
        flat = flatten(entry.get("median") or {})
        out += [table(["metric (median of runs)", "value"], sorted(flat.items())), ""]
    return "\n".join(out)
