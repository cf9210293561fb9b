"""``headwater migrate`` over Kestra's whole conformance corpus: every scenario runs twice,
with the flows as written (Kestra 1.x) and with the flows ``migrate`` wrote, and both runs
must end the same way.

"The same way": the execution under test ends in the same state with the same flow
outputs, and every task ends in the same states the same number of times — counted over the
execution and, for the migrated flow, the Loop iterations it ran (a 1.x ForEach's task runs
live in its execution, a Loop's in one execution per iteration), the tasks ``migrate`` added
aside. A flow ``migrate`` cannot
rewrite must come back unchanged with the reasons (and then runs the same, trivially); one
it rewrites must load as a Kestra 2.0 flow.
"""

from __future__ import annotations

import collections
import functools
import pathlib
from typing import Any

import pytest

from engine.flows.dialect import V1, constructs
from engine.flows.migrate import Migration, migrate_text
from tests.conformance.harness import HarnessError, Run, execute, load_manifest, scenario_ids
from tests.conftest import CONFORMANCE

pytestmark = pytest.mark.conformance

SCENARIOS: list[dict[str, Any]] = (
    load_manifest(CONFORMANCE) if CONFORMANCE.is_dir() else [{"scenario": "corpus-missing"}]
)


@functools.cache
def _migrations() -> dict[str, Migration]:
    flows = CONFORMANCE / "flows"
    return {
        path.name: migrate_text(path.read_text(encoding="utf-8"), path.name)
        for path in sorted(flows.iterdir())
        if path.suffix in (".yaml", ".yml")
    }


@pytest.fixture(scope="module")
def migrated_corpus(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("migrated")
    (root / "flows").mkdir()
    (root / "manifest.json").write_text((CONFORMANCE / "manifest.json").read_text())
    for name, result in _migrations().items():
        (root / "flows" / name).write_text(result.text, encoding="utf-8")
    return root


def test_every_flow_is_migrated_or_says_why() -> None:
    results = _migrations()
    assert results, "the corpus has no flows"
    for name, result in results.items():
        assert result.error is None, f"{name}: {result.error}"
        if result.status == "manual":
            assert not result.changed, name
            assert all(note.message for note in result.manual), name
        else:
            import yaml

            left = [c for c in constructs(yaml.safe_load(result.text)) if c.dialect == V1]
            assert not left, f"{name} still uses 1.x: {left}"
    assert any(r.status == "migrated" for r in results.values())


def _family(run: Run) -> list[Any]:
    ids = run.world.family(run.main)
    return [run.world.states[i] for i in ids if i in run.world.states]


def outcome(run: Run, added: frozenset[str] = frozenset()) -> dict[str, Any]:
    main = run.world.states.get(run.main)
    if main is None:
        return {"state": None}
    tasks: collections.Counter[tuple[str, str]] = collections.Counter()
    for state in _family(run):
        for task_run in state.task_runs.values():
            if task_run.task_id not in added:
                tasks[(task_run.task_id, task_run.state.value)] += 1
    return {"state": main.state.value, "outputs": main.outputs, "tasks": dict(tasks)}


async def _outcome(
    sc: dict[str, Any], corpus: pathlib.Path, inputs: Any, added: frozenset[str] = frozenset()
) -> dict[str, Any]:
    try:
        return outcome(await execute(sc, corpus, inputs), added)
    except HarnessError as exc:
        return {"harness": str(exc).split(":")[0]}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=scenario_ids(SCENARIOS))
async def test_migrated_flow_ends_as_the_original(
    scenario: dict[str, Any], migrated_corpus: pathlib.Path, conformance_dir: pathlib.Path
) -> None:
    names = [scenario["file"], *(scenario.get("requires") or [])]
    if all(not _migrations()[n].changed for n in names):
        return  # the same files: the same run (the conformance tests run it)
    for inputs in scenario.get("input_variants") or [scenario.get("inputs")]:
        before = await _outcome(scenario, conformance_dir, inputs)
        added = frozenset(t for n in names for t in _migrations()[n].added)
        after = await _outcome(scenario, migrated_corpus, inputs, added)
        assert after == before, (
            f"{scenario['scenario']}: the migrated flow ends differently\n"
            f"  1.x: {before}\n  2.0: {after}\n"
            + "\n".join(f"  migrated {n}:\n{_migrations()[n].text}" for n in names)
        )
