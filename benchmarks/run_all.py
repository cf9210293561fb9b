"""Headwater's benchmark suite, one command: scenarios 1-8 against `headwater dev`, Prefect
3.8.6 side by side (scenarios 1, 2, 3, 8), JSON on stdout, benchmarks/RESULTS.md updated.

    .venv/bin/python benchmarks/run_all.py --quick          # shorter phases (~15 min)
    .venv/bin/python benchmarks/run_all.py                  # full run (an hour or more)
    .venv/bin/python benchmarks/run_all.py --components     # also the component benchmarks
    .venv/bin/python benchmarks/run_all.py --only-components --component-runs 3

Needs Mosquitto and RabbitMQ from deploy/local (`make services-up`) for the MQTT and AMQP
trigger sources; Headwater's own broker and database are the embedded ones of `headwater dev`.
Prefect is installed into .local/peers/prefect-venv on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import pathlib
import sys
from datetime import UTC, datetime

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks.peers import prefect_env
from benchmarks.suite import components, report
from benchmarks.suite.machine import load_average, machine, versions
from benchmarks.suite.run import FULL, QUICK, SCENARIOS, run_suite

RESULTS = pathlib.Path(__file__).with_name("RESULTS.md")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases (smoke run)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    parser.add_argument("--no-peer", action="store_true", help="skip Prefect")
    parser.add_argument("--components", action="store_true", help="also run bench_*.py")
    parser.add_argument("--only-components", action="store_true", help="only bench_*.py")
    parser.add_argument("--component-runs", type=int, default=3)
    parser.add_argument("--component-names", default="", help="comma-separated bench_* names")
    parser.add_argument("--idle-s", type=float, default=None, help="footprint idle time")
    parser.add_argument("--fetch-wait-ms", type=int, default=None, help="Headwater's Kafka hop")
    parser.add_argument(
        "--rates", default=None, help="saturation rates per minute, comma-separated"
    )
    parser.add_argument("--phase-s", type=float, default=None, help="saturation phase length")
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    parser.add_argument("--json-out", type=pathlib.Path, default=None, help="also save JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    params = QUICK if args.quick else FULL
    params = dataclasses.replace(
        params,
        scenarios=tuple(s for s in args.scenarios.split(",") if s),
        peer=not args.no_peer,
        idle_s=params.idle_s if args.idle_s is None else args.idle_s,
        fetch_wait_ms=args.fetch_wait_ms,
    )
    if args.rates:
        params = dataclasses.replace(
            params, rates_per_min=tuple(int(r) for r in args.rates.split(",") if r)
        )
    if args.phase_s is not None:
        params = dataclasses.replace(params, phase_s=args.phase_s)
    result: dict[str, object] = {
        "benchmark": "headwater suite",
        "command": " ".join(["benchmarks/run_all.py", *sys.argv[1:]]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    if not args.only_components:
        result.update(asyncio.run(run_suite(params)))
        peer_version = prefect_env.installed_version() if params.peer else None
        result["versions"] = versions({"prefect": peer_version or "not run"})
    if args.components or args.only_components:
        names = [n for n in args.component_names.split(",") if n] or components.available()
        result["components"] = components.run_components(names, args.component_runs)
    result["machine"]["load_average_end"] = load_average()  # type: ignore[index]
    # Read at the end: the hand-written parts may have been edited while the run went on.
    text = RESULTS.read_text() if RESULTS.exists() else "# Headwater benchmark results\n"
    if "components" in result:
        rendered = report.render_components(result["components"])  # type: ignore[arg-type]
        text = report.replace_section(text, "components", rendered)
    if not args.only_components:
        # A quick run has its own section: it must not replace the full run's figures.
        section = "suite-quick" if args.quick else "suite"
        text = report.replace_section(text, section, report.render_suite(result))
    out = json.dumps(result, indent=2, default=str)
    print(out)
    if args.json_out is not None:
        args.json_out.write_text(out)
    if not args.no_write:
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
