"""One suite run: Headwater's eight scenarios, then Prefect's four, in the same invocation.

The two stacks never run at the same time (they would share two cores); each starts cold in
a scratch folder, is measured idle first (footprint), then under the scenarios.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.peers import prefect_side
from benchmarks.suite import flows, hw_driver, hw_triggers
from benchmarks.suite.machine import footprint, process_tree
from benchmarks.suite.stack import SEEN_DDL, DevProcess, killed_on_exit
from benchmarks.suite.stats import ratio
from engine.bus.admin import BusAdmin, NewTopicSpec
from engine.settings import KafkaSettings, load_settings

log = logging.getLogger("bench")

SCENARIOS = (
    "chain", "heavy", "triggers", "idle_triggers", "saturation", "fanout", "payload", "footprint"
)  # fmt: skip
SOURCES = ("hook", "kafka", "mqtt", "amqp", "file")
# First input after a quiet spell: the sources whose latency the idle consumers decide.
IDLE_SOURCES = ("hook", "mqtt", "amqp", "kafka")
# The projector creates its tables when it starts; the suite's instrumentation waits for them.
TABLES_WITHIN_S = 60.0


@dataclass(frozen=True)
class Params:
    mode: str = "quick"
    runs: int = 5
    heavy_runs: int = 2
    chain_n: int = 40
    heavy_n: int = 10
    fanouts: tuple[int, ...] = (100, 1000)
    fanout_runs: int = 3
    trigger_samples: int = 100
    trigger_rate_per_s: float = 20.0
    rates_per_min: tuple[int, ...] = (250, 500, 1000, 2000, 5000, 10000, 20000)
    phase_s: float = 10.0
    payload_bytes: tuple[int, ...] = (1600, 16000, 160000)
    payload_samples: int = 50
    payload_rate_per_s: float = 10.0
    idle_s: float = 30.0
    idle_window_s: float = 10.0
    # Quiet spell before each input of idle_triggers: past doze_after_s (10 s) and one dev
    # listening period (2 s), so every consumer on the path dozes.
    idle_gap_s: float = 15.0
    idle_trigger_samples: int = 3
    peer: bool = True
    peer_trigger_samples: int = 20
    # None: Headwater's default (KafkaSettings.fetch_wait_max_ms); set to see the hop cost.
    fetch_wait_ms: int | None = None
    scenarios: tuple[str, ...] = SCENARIOS
    sources: tuple[str, ...] = SOURCES


QUICK = Params()
FULL = Params(
    mode="full",
    heavy_runs=5,
    fanout_runs=5,
    trigger_samples=300,
    trigger_rate_per_s=10.0,
    phase_s=60.0,
    payload_samples=300,
    idle_s=300.0,
    idle_window_s=60.0,
    idle_trigger_samples=7,
    peer_trigger_samples=50,
)


@dataclass
class Outcome:
    headwater: dict[str, Any] = field(default_factory=dict)
    prefect: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


async def _step(out: Outcome, side: dict[str, Any], name: str, coro: Any) -> None:
    """Run one scenario; a failure is recorded and the suite goes on with the next."""
    started = time.monotonic()
    log.warning("scenario %s ...", name)
    try:
        side[name] = await coro
    except Exception as exc:  # one broken scenario must not lose the others' numbers
        log.exception("scenario %s failed", name)
        out.errors[name] = repr(exc)
    log.warning("scenario %s done in %.1f s", name, time.monotonic() - started)


async def _idle(pids: list[int], idle_s: float, window_s: float) -> dict[str, Any]:
    await asyncio.sleep(max(0.0, idle_s - window_s))
    before = process_tree(pids)
    await asyncio.sleep(window_s)
    return {"idle_s": idle_s, **footprint(before, process_tree(pids), window_s)}


async def _instrument(engine: hw_driver.Engine) -> None:
    async with asyncio.timeout(TABLES_WITHIN_S):
        while True:
            if await engine.db.fetchval("SELECT to_regclass('executions') IS NOT NULL"):
                break
            await asyncio.sleep(0.2)
    await engine.db.execute(SEEN_DDL)


async def headwater(p: Params, scratch: pathlib.Path, out: Outcome) -> None:
    hw = out.headwater
    env = (
        {}
        if p.fetch_wait_ms is None
        else {"HEADWATER_KAFKA__FETCH_WAIT_MAX_MS": str(p.fetch_wait_ms)}
    )
    dev = DevProcess(scratch / "headwater", env=env)
    with killed_on_exit(dev):
        await dev.start()
        if "footprint" in p.scenarios:
            await _step(out, hw, "footprint", _idle([dev.pid], p.idle_s, p.idle_window_s))
            if "footprint" in hw:
                hw["footprint"]["cold_start_s"] = round(dev.spawn_to_ready_s, 2)
                hw["footprint"]["cold_start_reported_s"] = dev.reported_ready_s
        base = load_settings()
        names = flows.Names(
            tag=uuid.uuid4().hex[:8],
            kafka_bootstrap=dev.kafka,
            mqtt_url=f"tcp://{base.mqtt.host}:{base.mqtt.port}",
            amqp_url=base.amqp.url.get_secret_value(),
            inbox=scratch / "inbox",
        )
        engine = await hw_driver.Engine.connect(dev.url, dev.dsn)
        try:
            await _instrument(engine)
            admin = BusAdmin(KafkaSettings(bootstrap_servers=dev.kafka))
            await admin.create_topics(
                NewTopicSpec(t, 2, 1, {})
                for t in (names.kafka_topic, names.payload_topic, names.saturation_topic)
            )
            sources = await hw_triggers.Sources.open(engine, names)
            try:
                ids = flows.write_all(dev.flows, names, p.chain_n, p.heavy_n, p.fanouts)
                await engine.wait_deployed(ids)
                await _scenarios(p, engine, sources, out)
            finally:
                await sources.close()
        finally:
            await engine.close()
            await dev.stop()


async def _scenarios(
    p: Params, engine: hw_driver.Engine, sources: hw_triggers.Sources, out: Outcome
) -> None:
    hw, want = out.headwater, p.scenarios
    if "chain" in want:
        await _step(out, hw, "chain", hw_driver.chain_scenario(engine, f"chain{p.chain_n}", p.runs))
    if "heavy" in want:
        flow_id = f"heavy{p.heavy_n}"
        await _step(
            out, hw, "heavy", hw_driver.heavy_scenario(engine, flow_id, p.heavy_n, p.heavy_runs)
        )
    if "fanout" in want:
        hw["fanout"] = {}
        for n in p.fanouts:
            await _step(
                out, hw["fanout"], str(n), hw_driver.fanout_scenario(engine, n, p.fanout_runs)
            )
    if "triggers" in want:
        hw["triggers"] = {}
        for source in p.sources:
            await _step(
                out,
                hw["triggers"],
                source,
                hw_triggers.trigger_latency(
                    sources, source, p.trigger_samples, p.trigger_rate_per_s
                ),
            )
    if "idle_triggers" in want:
        hw["idle_triggers"] = {}
        for source in IDLE_SOURCES:
            await _step(
                out,
                hw["idle_triggers"],
                source,
                hw_triggers.after_idle(sources, source, p.idle_trigger_samples, p.idle_gap_s),
            )
    if "payload" in want:
        await _step(
            out,
            hw,
            "payload",
            hw_triggers.payload_sweep(
                sources, list(p.payload_bytes), p.payload_samples, p.payload_rate_per_s
            ),
        )
    if "saturation" in want:
        await _step(
            out, hw, "saturation", hw_triggers.saturation(sources, list(p.rates_per_min), p.phase_s)
        )


async def prefect(p: Params, scratch: pathlib.Path, out: Outcome) -> None:
    pf = out.prefect
    stack = prefect_side.PrefectStack(scratch / "prefect", p.chain_n, p.heavy_n)
    try:
        await stack.start()
        if "footprint" in p.scenarios:
            await _step(out, pf, "footprint", _idle(stack.pids(), p.idle_s, p.idle_window_s))
            if "footprint" in pf:
                pf["footprint"]["cold_start_s"] = round(stack.ready_s, 2)
        if "chain" in p.scenarios:
            await _step(
                out, pf, "chain", prefect_side.chain_scenario(stack, "chain", p.chain_n, p.runs)
            )
        if "heavy" in p.scenarios:
            await _step(
                out,
                pf,
                "heavy",
                prefect_side.chain_scenario(stack, "heavy", p.heavy_n, p.heavy_runs),
            )
        if "triggers" in p.scenarios:
            await _step(
                out, pf, "trigger", prefect_side.trigger_latency(stack, p.peer_trigger_samples)
            )
    finally:
        await stack.stop()


def ratios(hw: dict[str, Any], pf: dict[str, Any]) -> dict[str, Any]:
    """Side-by-side figures; Headwater's API-trigger latency is the webhook's."""

    def get(d: Any, *path: str) -> Any:
        for key in path:
            d = d.get(key) if isinstance(d, dict) else None
        return d

    pairs = {
        "chain.overhead_per_task_ms": (("chain", "median", "overhead_per_task_ms"),) * 2,
        "chain.total_ms": (("chain", "median", "total_ms"),) * 2,
        "chain.api_to_end_ms": (("chain", "median", "api_to_end_ms"),) * 2,
        "heavy.overhead_per_task_ms": (("heavy", "median", "overhead_per_task_ms"),) * 2,
        "heavy.total_ms": (("heavy", "median", "total_ms"),) * 2,
        "trigger.to_first_task_started_ms": (
            ("triggers", "hook", "to_first_task_started_ms", "p50"),
            ("trigger", "to_first_task_started_ms", "p50"),
        ),
        "trigger.to_flow_finished_ms": (
            ("triggers", "hook", "to_flow_finished_ms", "p50"),
            ("trigger", "to_flow_finished_ms", "p50"),
        ),
        "footprint.rss_mb": (("footprint", "rss_mb"),) * 2,
        "footprint.cpu_pct_of_one_core": (("footprint", "cpu_pct_of_one_core"),) * 2,
        "footprint.cold_start_s": (("footprint", "cold_start_s"),) * 2,
    }
    out = {}
    for key, (hw_path, pf_path) in pairs.items():
        a, b = get(hw, *hw_path), get(pf, *pf_path)
        out[key] = {"headwater": a, "prefect": b, "ratio": ratio(b, a)}
    return out


async def run_suite(p: Params) -> dict[str, Any]:
    out = Outcome()
    with tempfile.TemporaryDirectory(prefix="hw-suite-") as tmp:
        scratch = pathlib.Path(tmp)
        try:
            await headwater(p, scratch, out)
        except Exception as exc:
            log.exception("the Headwater side failed")
            out.errors["headwater"] = repr(exc)
        if p.peer:
            try:
                await prefect(p, scratch, out)
            except Exception as exc:
                log.exception("the Prefect side failed")
                out.errors["prefect"] = repr(exc)
        with contextlib.suppress(OSError):
            (scratch / "headwater" / "dev.out").replace(
                pathlib.Path(tempfile.gettempdir()) / "hw-suite-last-dev.out"
            )
    return {
        "parameters": asdict(p),
        "headwater": out.headwater,
        "prefect": out.prefect,
        "ratios": ratios(out.headwater, out.prefect),
        "errors": out.errors,
    }
