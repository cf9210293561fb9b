"""Inputs as Kestra resolves them (FlowInputOutput.resolveInputs/resolveInputValue):
dependsOn, conditions, disabled inputs."""

from __future__ import annotations

from typing import Any

import pytest

from engine.flows.inputs import InputValidationError, flow_default_renderer, resolve_inputs

FLOW: dict[str, Any] = {"id": "f", "namespace": "ns"}
DECLARED: list[dict[str, Any]] = [
    {"id": "detail", "type": "STRING",
     "dependsOn": {"inputs": ["kind"], "condition": "{{ inputs.kind == 'full' }}"}},
    {"id": "kind", "type": "ENUM", "values": ["short", "full"]},
    {"id": "extra", "type": "INT", "dependsOn": {"inputs": ["detail"]}},
]  # fmt: skip


def _resolve(given: dict[str, Any]) -> dict[str, Any]:
    render = flow_default_renderer(FLOW)
    return resolve_inputs(DECLARED, given, mode="typed", render_default=render)


def test_an_input_whose_condition_is_false_is_neither_required_nor_kept() -> None:
    assert _resolve({"kind": "short", "detail": "ignored"}) == {"kind": "short"}


def test_an_enabled_dependent_input_is_checked_and_its_dependents_follow() -> None:
    assert _resolve({"kind": "full", "detail": "d", "extra": "3"}) == {
        "kind": "full",
        "detail": "d",
        "extra": 3,
    }
    with pytest.raises(InputValidationError, match="'detail': missing required input"):
        _resolve({"kind": "full"})


def test_a_condition_that_does_not_render_is_a_problem_named_after_the_input() -> None:
    declared = [{"id": "x", "type": "STRING", "dependsOn": {"condition": "{{ nope.nope }}"}}]
    with pytest.raises(InputValidationError, match="'x': Invalid condition"):
        resolve_inputs(declared, {}, render_default=flow_default_renderer(FLOW))
