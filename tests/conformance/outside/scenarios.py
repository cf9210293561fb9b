"""Each scenario of the manifest, performed through the REST API, then checked.

:func:`run_corpus` deploys every corpus flow, runs the scenarios (those sharing a flow one
after another, the rest ``parallel`` at a time) and answers ``{scenario: [failures]}``.
A scenario's ``action`` (restart, resume, kill, a second execution, a Flow trigger firing,
webhook calls, a trigger toggled) is done the way a user would do it with curl.
"""

from __future__ import annotations

import asyncio
import collections
import json
import pathlib
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import yaml

from tests.conformance.outside.api import TERMINAL, ApiError, Client
from tests.conformance.outside.checks import (
    Outcome,
    check,
    history_of,
    runs_of,
    state_of,
    trigger_variables,
)

JSON = dict[str, Any]
Action = Callable[[Client, JSON, Any], Awaitable[Outcome]]

# A Flow trigger fires a hop or two after the execution it listens to ended.
TRIGGER_WAIT_S = 30.0
# Kestra's tests wait this long to see that a Flow trigger did NOT fire.
NOT_FIRED_WAIT_S = 1.0
# KV preconditions are written by a helper flow (the API has no KV route); its namespace is the
# scenario's, its id ours.
_KV_NAMESPACE = "io.kestra.tests"
_KV_SET = """id: hw-outside-kv-set
namespace: io.kestra.tests
tasks:
  - id: set
    type: io.kestra.plugin.core.kv.Set
    key: my-key
    value:
      field: value
"""
_KV_DELETE = """id: hw-outside-kv-delete
namespace: io.kestra.tests
tasks:
  - id: delete
    type: io.kestra.plugin.core.kv.Delete
    key: my-key
"""


def load_manifest(corpus: pathlib.Path) -> list[JSON]:
    data = json.loads((corpus / "manifest.json").read_text())
    assert isinstance(data, list)
    return data


def flow_ids(corpus: pathlib.Path) -> dict[str, tuple[str, str]]:
    """file name -> (namespace, id) of every corpus flow."""
    out = {}
    for path in sorted((corpus / "flows").iterdir()):
        doc = yaml.safe_load(path.read_text())
        if isinstance(doc, dict):
            out[path.name] = (str(doc.get("namespace")), str(doc.get("id")))
    return out


async def deploy_corpus(client: Client, corpus: pathlib.Path) -> dict[str, str]:
    """Deploy every flow; file name -> why it was refused (none should be)."""
    refused = {}
    for path in sorted((corpus / "flows").iterdir()):
        try:
            await client.deploy(path.read_text())
        except ApiError as exc:
            refused[path.name] = str(exc)
    for source in (_KV_SET, _KV_DELETE):
        await client.deploy(source)
    return refused


# --- gathering ---------------------------------------------------------------------------


async def finish(
    client: Client, sc: JSON, main: JSON, files: dict[str, tuple[str, str]], **kw: Any
) -> Outcome:
    """The outcome of a run whose main execution ended: its logs and the other flows'
    executions the checks look at."""
    outcome = Outcome(main=main, **kw)
    outcome.logs = await client.settled_logs(main["id"])
    wanted = {sc["id"]} | {files[name][1] for name in sc.get("requires") or [] if name in files}
    wanted |= {
        str(x["scope"]).split(":", 1)[1]
        for x in sc.get("extra") or []
        if str(x.get("scope")).startswith(("child_execution:", "triggered_execution:"))
    }
    for flow_id in wanted:
        executions = await client.search(flow_id)
        # Others end after the main one (a child's end reaches the parent first).
        done = []
        for execution in executions:
            if state_of(execution) not in TERMINAL:
                execution = await client.wait_terminal(execution["id"])
            done.append(await client.get(execution["id"]))
        outcome.by_flow[flow_id] = done
    return outcome


def _labels(sc: JSON) -> dict[str, str]:
    return {str(i["key"]): str(i["value"]) for i in sc.get("exec_labels") or []}


async def _start(client: Client, sc: JSON, inputs: Any) -> str:
    """Create the execution as Kestra's own client does: a multipart form of inputs (none at
    all when the scenario gives none) and labels as ``labels=key:value``."""
    created = await client.create(
        sc["namespace"], sc["id"], inputs, _labels(sc), multipart=inputs is not None
    )
    return str(created["id"])


# --- actions -----------------------------------------------------------------------------


async def run_plain(client: Client, sc: JSON, inputs: Any, files: Any) -> Outcome:
    execution_id = await _start(client, sc, inputs)
    paused = None
    if any(x.get("scope") == "paused_snapshot" for x in sc.get("extra") or []):
        seen = await client.wait(
            execution_id, lambda e: state_of(e) in TERMINAL | {"PAUSED"}, "paused or ended"
        )
        paused = seen if state_of(seen) == "PAUSED" else None
    main = await client.wait_terminal(execution_id)
    return await finish(client, sc, main, files, paused=paused)


async def run_last_execution(client: Client, sc: JSON, inputs: Any, files: Any) -> Outcome:
    """Retries as new executions: the one under test is the flow's last execution."""
    first = await _start(client, sc, inputs)
    await client.wait_terminal(first)
    deadline = time.monotonic() + 60
    while True:
        executions = [
            e for e in await client.search(sc["id"]) if e["id"] == first or _retry_of(e, first)
        ]
        # The chain is over once its newest execution ended without becoming RETRIED.
        last = executions[-1]
        if state_of(last) in TERMINAL and state_of(last) != "RETRIED":
            break
        if time.monotonic() > deadline:
            raise ApiError(
                f"the retry chain of {first} did not end: {[state_of(e) for e in executions]}"
            )
        await asyncio.sleep(0.2)
    main = await client.get(last["id"])
    outcome = await finish(client, sc, main, files)
    outcome.by_flow[sc["id"]] = [await client.get(e["id"]) for e in executions]
    return outcome


def _retry_of(execution: JSON, first: str) -> bool:
    return execution.get("originalId") == first or execution.get("originalExecutionId") == first


async def run_restart(client: Client, sc: JSON, inputs: Any, files: Any, times: int) -> Outcome:
    execution_id = await _start(client, sc, inputs)
    current = await client.wait_terminal(execution_id)
    snapshots: JSON = {}
    for number in range(1, times + 1):
        snapshots[f"run{number}"] = current
        if number == 1:
            snapshots["first_run"] = current
        seen = len(history_of(current))
        await client.restart(execution_id)
        current = await client.wait(
            execution_id,
            lambda e, seen=seen: len(history_of(e)) > seen + 1 and state_of(e) in TERMINAL,
            "ended after the restart",
        )
    snapshots[f"run{times + 1}"] = current
    return await finish(client, sc, current, files, snapshots=snapshots)


async def _until_paused(client: Client, sc: JSON) -> tuple[str, JSON]:
    execution_id = await _start(client, sc, None)
    paused = await client.wait(
        execution_id, lambda e: state_of(e) in TERMINAL | {"PAUSED"}, "paused"
    )
    if state_of(paused) != "PAUSED":
        raise ApiError(f"the execution never paused; it ended {state_of(paused)}")
    return execution_id, paused


async def run_resume(client: Client, sc: JSON, inputs: Any, files: Any) -> Outcome:
    execution_id, paused = await _until_paused(client, sc)
    response = await client.resume(execution_id)
    if response.status_code >= 300:
        raise ApiError(f"resume answered {response.status_code}: {response.text[:300]}")
    main = await client.wait_terminal(execution_id)
    return await finish(client, sc, main, files, paused=paused)


async def run_resume_with_inputs(client: Client, sc: JSON, inputs: Any, files: Any) -> Outcome:
    execution_id, paused = await _until_paused(client, sc)
    problems = []
    # Kestra refuses a resume that lacks a required onResume input.
    refused = await client.resume(execution_id)
    if refused.status_code < 400:
        problems.append(
            f"resuming without the required onResume input was accepted ({refused.status_code})"
        )
        await asyncio.sleep(1.0)
        if state_of(await client.get(execution_id)) != "PAUSED":
            raise ApiError("resuming without the required input resumed the execution")
    response = await client.resume(
        execution_id,
        {"asked": "restarted"},
        files={"data": ("data.txt", execution_id.encode())},
    )
    if response.status_code >= 300:
        raise ApiError(f"resume answered {response.status_code}: {response.text[:300]}")
    main = await client.wait_terminal(execution_id)
    return await finish(client, sc, main, files, paused=paused, problems=problems)


async def run_concurrency(client: Client, sc: JSON, inputs: Any, files: Any) -> Outcome:
    first = await _start(client, sc, None)

    def busy(e: JSON) -> bool:
        return state_of(e) in TERMINAL or (
            state_of(e) in ("RUNNING", "PAUSED")
            and any(state_of(r) in ("RUNNING", "PAUSED") for r in runs_of(e))
        )

    one = await client.wait(first, busy, "ran a task")
    if state_of(one) in TERMINAL:
        raise ApiError(f"execution #1 ended {state_of(one)} before #2 could start")
    second = await _start(client, sc, None)
    two = await client.wait_terminal(second)
    one = await client.wait_terminal(first)
    numbered = {"execution#1": one, "execution#2": two}
    return await finish(client, sc, two, files, numbered=numbered)


async def run_kill(client: Client, sc: JSON, inputs: Any, files: Any) -> Outcome:
    execution_id = await _start(client, sc, None)
    await client.wait(
        execution_id,
        lambda e: (
            state_of(e) in TERMINAL
            or any(r["taskId"] == "sleep" and state_of(r) == "RUNNING" for r in runs_of(e))
        ),
        "started its Sleep task",
    )
    response = await client.kill(execution_id)
    if response.status_code >= 300:
        raise ApiError(f"kill answered {response.status_code}: {response.text[:300]}")
    main = await client.wait_terminal(execution_id)
    problems = []
    if "KILLING" not in history_of(main):
        problems.append(f"execution history {history_of(main)} never went through KILLING")
    return await finish(client, sc, main, files, problems=problems)


async def run_toggle(client: Client, sc: JSON, inputs: Any, files: Any) -> Outcome:
    namespace, flow_id, trigger_id = sc["namespace"], sc["id"], "schedule"

    async def enabled() -> bool | None:
        for row in await client.triggers(flow_id):
            if row.get("triggerId") == trigger_id and row.get("namespace") == namespace:
                return bool(row.get("enabled"))
        return None

    deadline = time.monotonic() + TRIGGER_WAIT_S
    while await enabled() is None:  # the trigger runtime records it once the flow is deployed
        if time.monotonic() > deadline:
            raise ApiError(f"trigger {trigger_id} of {flow_id} never appeared in /triggers")
        await asyncio.sleep(0.2)
    await client.set_trigger(namespace, flow_id, trigger_id, enabled=False)
    while await enabled() is not False:
        if time.monotonic() > deadline:
            raise ApiError("disabling the trigger through the API never showed")
        await asyncio.sleep(0.2)
    outcome = await run_plain(client, sc, None, files)
    deadline = time.monotonic() + 10
    while await enabled() is not True:
        if time.monotonic() > deadline:
            outcome.problems.append("the Toggle task did not enable the trigger within 10 s")
            break
        await asyncio.sleep(0.2)
    return outcome


async def _listener_runs(client: Client, sc: JSON, source: str) -> list[JSON]:
    return [
        e
        for e in await client.search(sc["id"])
        if trigger_variables(e).get("executionId") == source
    ]


async def run_flow_trigger(
    client: Client, sc: JSON, files: Any, first: str, expect: str
) -> Outcome:
    """Run ``first`` (a flow id, ending ``expect``): the listener must not start for it; then
    the last required flow, after which the listener's Flow trigger must start it once."""
    namespace = sc["namespace"]
    problems = []
    created = await client.create(namespace, first)
    ended = await client.wait_terminal(created["id"])
    if state_of(ended) != expect:
        problems.append(f"{first} ended {state_of(ended)}, not {expect}")
    await asyncio.sleep(NOT_FIRED_WAIT_S)
    if early := await _listener_runs(client, sc, created["id"]):
        problems.append(f"{sc['id']} started after {first} alone: {[e['id'] for e in early]}")
    last_file = sc["requires"][-1]
    last = await client.create(namespace, files[last_file][1])
    await client.wait_terminal(last["id"])
    deadline = time.monotonic() + TRIGGER_WAIT_S
    while not (started := await _listener_runs(client, sc, last["id"])):
        if time.monotonic() > deadline:
            raise ApiError(f"the Flow trigger of {sc['id']} never started it ({problems})")
        await asyncio.sleep(0.2)
    await asyncio.sleep(NOT_FIRED_WAIT_S)
    started = await _listener_runs(client, sc, last["id"])
    if len(started) != 1:
        problems.append(f"{len(started)} executions of {sc['id']} started, expected 1")
    main = await client.wait_terminal(started[0]["id"])
    outcome = await finish(client, sc, main, files, problems=problems)
    # The executions this scenario started come first (a reused server has older ones).
    for execution in (ended, await client.get(last["id"])):
        mine = outcome.by_flow.setdefault(execution["flowId"], [])
        outcome.by_flow[execution["flowId"]] = [execution, *mine]
    return outcome


async def run_webhook_condition(client: Client, sc: JSON, inputs: Any, files: Any) -> Outcome:
    ns, flow_id, key = sc["namespace"], sc["id"], "webhookKey"
    json_type = {"Content-Type": "application/json"}
    met = await client.webhook("POST", ns, flow_id, key, b'{"hello":"world"}', json_type)
    unmet = await client.webhook("POST", ns, flow_id, key, b'{"hello":"webhook"}', json_type)
    problems = []
    if unmet.status_code != 204:
        problems.append(f"condition not met answered {unmet.status_code} (Kestra: 204)")
    if met.status_code != 200:
        raise ApiError(f"the webhook answered {met.status_code}: {met.text[:300]}")
    main = await client.wait_terminal(met.json()["id"])
    return await finish(client, sc, main, files, problems=problems)


async def run_webhook_dynamic_key(client: Client, sc: JSON, inputs: Any, files: Any) -> Outcome:
    ns, flow_id = sc["namespace"], sc["id"]
    problems = []
    raw = await client.webhook("GET", ns, flow_id, "{{ flow.id }}")
    if raw.status_code != 404:
        problems.append(f"the key's template text was accepted ({raw.status_code}), not 404")
    result = await client.webhook("GET", ns, flow_id, "webhook-dynamic-key")
    if result.status_code != 200:
        raise ApiError(f"the webhook answered {result.status_code}: {result.text[:300]}")
    main = await client.wait_terminal(result.json()["id"])
    return await finish(client, sc, main, files, problems=problems)


async def _helper(client: Client, flow_id: str) -> None:
    created = await client.create(_KV_NAMESPACE, flow_id)
    ended = await client.wait_terminal(created["id"])
    if state_of(ended) != "SUCCESS":
        raise ApiError(f"the precondition flow {flow_id} ended {state_of(ended)}")


async def run_kv(client: Client, sc: JSON, inputs: Any, files: Any, present: bool) -> Outcome:
    await _helper(client, "hw-outside-kv-set" if present else "hw-outside-kv-delete")
    return await run_plain(client, sc, inputs, files)


ACTIONS: dict[str, Callable[..., Awaitable[Outcome]]] = {
    "restart-last-failed": lambda c, sc, i, f: run_restart(c, sc, i, f, 1),
    "restart-local-errors": lambda c, sc, i, f: run_restart(c, sc, i, f, 1),
    "restart-pause-last-failed": lambda c, sc, i, f: run_restart(c, sc, i, f, 1),
    "failed-first-restart-twice": lambda c, sc, i, f: run_restart(c, sc, i, f, 2),
    "pause-no-tasks": run_resume,
    "pause-on-resume-optional": run_resume,
    "pause-on-resume-inputs": run_resume_with_inputs,
    "concurrency-cancel": run_concurrency,
    "concurrency-fail": run_concurrency,
    "concurrency-cancel-pause": run_concurrency,
    "kill-running": run_kill,
    "flow-trigger-namespace-condition-after-failure": lambda c, sc, i, f: run_flow_trigger(
        c, sc, f, "trigger-multiplecondition-flow-c", "FAILED"
    ),
    "multiple-condition-trigger": lambda c, sc, i, f: run_flow_trigger(
        c, sc, f, "trigger-multiplecondition-flow-a", "SUCCESS"
    ),
    "trigger-toggle-legacy-alias": run_toggle,
    "webhook-with-condition": run_webhook_condition,
    "webhook-dynamic-key": run_webhook_dynamic_key,
    "kv-get": lambda c, sc, i, f: run_kv(c, sc, i, f, True),
    "kv-missing": lambda c, sc, i, f: run_kv(c, sc, i, f, False),
}
_LAST_EXECUTION = re.compile(r"^retry-new-execution-")


async def run_scenario(client: Client, sc: JSON, files: dict[str, tuple[str, str]]) -> list[str]:
    variants = sc.get("input_variants") or [sc.get("inputs")]
    failures: list[str] = []
    for number, inputs in enumerate(variants, start=1):
        prefix = f"[variant {number}] " if len(variants) > 1 else ""
        action = ACTIONS.get(sc["scenario"])
        if action is None:
            action = run_last_execution if _LAST_EXECUTION.match(sc["scenario"]) else run_plain
        given = None if sc.get("inputs_mode") == "none" else inputs
        try:
            outcome = await action(client, sc, given, files)
        except ApiError as exc:
            if given is None and "422" in str(exc) and "missing required input" in str(exc):
                # Kestra's tests start these without inputs behind the API; through its API
                # Kestra refuses them the same way (readExecutionInputs: 422).
                failures.append(f"{prefix}{KESTRA_REFUSES}{exc}")
            else:
                failures.append(f"{prefix}{exc}")
            continue
        failures.extend(prefix + f for f in check(sc, outcome))
    return failures


# A scenario Kestra's own API refuses too (see run_scenario): reported, not a difference.
KESTRA_REFUSES = "refused as Kestra's API refuses it: "


def passed(failures: list[str]) -> bool:
    return not failures


def refused_like_kestra(failures: list[str]) -> bool:
    return bool(failures) and all(KESTRA_REFUSES in f for f in failures)


def _group(sc: JSON) -> str:
    # Scenarios sharing a flow (concurrency slots, executions counted) or the KV store run one
    # after another; the rest in parallel.
    return "kv" if sc["scenario"].startswith("kv-") else str(sc["file"])


async def run_corpus(
    client: Client, corpus: pathlib.Path, *, parallel: int = 6, only: set[str] | None = None
) -> dict[str, list[str]]:
    scenarios = [s for s in load_manifest(corpus) if not only or s["scenario"] in only]
    files = flow_ids(corpus)
    refused = await deploy_corpus(client, corpus)
    groups: dict[str, list[JSON]] = collections.defaultdict(list)
    for sc in scenarios:
        groups[_group(sc)].append(sc)
    results: dict[str, list[str]] = {}
    gate = asyncio.Semaphore(parallel)

    async def run_group(items: list[JSON]) -> None:
        async with gate:
            for sc in items:
                not_deployed = [
                    n for n in [sc["file"], *(sc.get("requires") or [])] if n in refused
                ]
                if not_deployed:
                    results[sc["scenario"]] = [f"not deployed: {refused[n]}" for n in not_deployed]
                    continue
                results[sc["scenario"]] = await run_scenario(client, sc, files)

    await asyncio.gather(*(run_group(items) for items in groups.values()))
    return results


def report(results: dict[str, list[str]], scenarios: list[JSON]) -> str:
    by_category: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for sc in scenarios:
        if sc["scenario"] not in results:
            continue
        entry = by_category[str(sc.get("category"))]
        entry[0] += not results[sc["scenario"]]
        entry[1] += 1
    ok = sum(p for p, _ in by_category.values())
    total = sum(t for _, t in by_category.values())
    refused = sorted(n for n, f in results.items() if refused_like_kestra(f))
    lines = [f"public-API conformance: {ok}/{total} scenarios pass"]
    if refused:
        lines.append(
            f"  {len(refused)} more cannot run through Kestra's public API either "
            f"(no inputs, a required input without default: 422): {', '.join(refused)}"
        )
    for category, (ok, count) in sorted(by_category.items()):
        lines.append(f"  {category:45s} {ok}/{count}")
    for name, failures in sorted(results.items()):
        if failures and not refused_like_kestra(failures):
            lines.append(f"  FAIL {name}: {' | '.join(failures)[:600]}")
    return "\n".join(lines)
