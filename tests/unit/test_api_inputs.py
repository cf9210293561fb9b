"""Typed input validation (Kestra's rules) and the API's authenticator, without servers."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import SecretStr

from engine.api.auth import Authenticator
from engine.flows.inputs import InputProblem, InputValidationError, resolve_inputs
from engine.settings import ApiSettings


def validate_inputs(
    declared: list[dict[str, Any]], given: dict[str, Any]
) -> tuple[dict[str, Any], list[InputProblem]]:
    """What the API does when an execution is created (engine.flows.inputs, typed mode)."""
    try:
        return resolve_inputs(declared, given, mode="typed"), []
    except InputValidationError as exc:
        return {}, exc.problems


DECLARED: list[dict[str, Any]] = [
    {"id": "name", "type": "STRING", "validator": "[a-z]+"},
    {"id": "n", "type": "INT", "min": 1, "max": 10, "defaults": 5},
    {"id": "ratio", "type": "FLOAT", "required": False},
    {"id": "flag", "type": "BOOLEAN", "defaults": False},
    {"id": "color", "type": "ENUM", "values": ["red", "blue"], "required": False},
    {"id": "tags", "type": "MULTISELECT", "values": ["a", "b"], "required": False},
    {"id": "when", "type": "DATETIME", "required": False},
    {"id": "day", "type": "DATE", "required": False},
    {"id": "wait", "type": "DURATION", "required": False},
    {"id": "doc", "type": "JSON", "required": False},
    {"id": "ids", "type": "ARRAY", "itemType": "INT", "required": False},
    {"id": "mail", "type": "EMAIL", "required": False},
    {"id": "link", "type": "URI", "required": False},
    {"id": "greeting", "type": "STRING", "defaults": "hi {{ execution.id }}"},
]


def test_valid_values_are_typed_and_defaults_applied() -> None:
    values, problems = validate_inputs(
        DECLARED,
        {
            "name": "ann",
            "ratio": "0.5",
            "flag": "true",
            "color": "red",
            "tags": '["a"]',
            "when": "2024-01-01T00:00:00Z",
            "day": "2024-02-29",
            "wait": "PT1H30M",
            "doc": '{"k": [1, 2]}',
            "ids": ["1", 2],
            "mail": "a@b.io",
            "link": "https://x.org/p",
            "undeclared": "dropped",
        },
    )
    assert problems == []
    assert values == {
        "name": "ann",
        "n": 5,
        "ratio": 0.5,
        "flag": True,
        "color": "red",
        "tags": ["a"],
        "when": "2024-01-01T00:00:00Z",
        "day": "2024-02-29",
        "wait": "PT1H30M",
        "doc": {"k": [1, 2]},
        "ids": [1, 2],
        "mail": "a@b.io",
        "link": "https://x.org/p",
        "greeting": "hi {{ execution.id }}",  # expressions are the executor's to render
    }


@pytest.mark.parametrize(
    ("given", "bad"),
    [
        ({}, "name"),
        ({"name": "Ann"}, "name"),
        ({"name": 3}, "name"),
        ({"name": "a", "n": 11}, "n"),
        ({"name": "a", "n": True}, "n"),
        ({"name": "a", "n": "1.5"}, "n"),
        ({"name": "a", "ratio": "nan"}, "ratio"),
        ({"name": "a", "flag": "yes"}, "flag"),
        ({"name": "a", "color": "green"}, "color"),
        ({"name": "a", "tags": ["c"]}, "tags"),
        ({"name": "a", "when": "2024-01-01T00:00:00"}, "when"),
        ({"name": "a", "day": "2024-02-30"}, "day"),
        ({"name": "a", "wait": "1 hour"}, "wait"),
        ({"name": "a", "doc": "{oops"}, "doc"),
        ({"name": "a", "ids": [1, "x"]}, "ids"),
        ({"name": "a", "mail": "nope"}, "mail"),
        ({"name": "a", "link": "not a uri"}, "link"),
    ],
)
def test_each_wrong_value_names_its_input(given: dict[str, Any], bad: str) -> None:
    _, problems = validate_inputs(DECLARED, given)
    assert [p.input_id for p in problems] == [bad]
    assert bad in str(problems[0].to_dict())


def test_every_problem_at_once() -> None:
    _, problems = validate_inputs(DECLARED, {"n": 0, "color": 1})
    assert [p.input_id for p in problems] == ["name", "n", "color"]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_authenticator() -> None:
    assert Authenticator(ApiSettings()).allowed(None)  # off by default
    auth = Authenticator(
        ApiSettings(api_keys=[SecretStr("k1")], basic_auth={"ann": SecretStr("pw")})
    )
    assert auth.enabled
    assert auth.allowed("Bearer k1")
    assert auth.allowed("bearer k1")
    assert auth.allowed(basic("ann", "pw"))
    for bad in (None, "", "Bearer", "Bearer k2", basic("ann", "no"), basic("x", "pw"), "Basic %%"):
        assert not auth.allowed(bad)
