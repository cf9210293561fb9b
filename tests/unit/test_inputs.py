"""engine.flows.inputs: Kestra's typed input validation and coercion, every problem at once."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import ExpressionError, FlowError
from engine.flows.inputs import (
    InputValidationError,
    declared_defaults,
    flow_default_renderer,
    resolve_inputs,
    secret_input_ids,
)


def one(spec: dict[str, Any], value: Any) -> Any:
    """The typed value of a single required input named `x`."""
    return resolve_inputs([{"id": "x", **spec}], {"x": value})["x"]


def problems(declared: list[dict[str, Any]], given: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(InputValidationError) as info:
        resolve_inputs(declared, given)
    return [(p.input_id, p.message) for p in info.value.problems]


@pytest.mark.parametrize(
    ("spec", "given", "expected"),
    [
        ({"type": "STRING"}, "hello", "hello"),
        ({"type": "STRING"}, 12, "12"),
        ({"type": "SECRET"}, "pw", "pw"),
        ({"type": "INT"}, "42", 42),
        ({"type": "INT"}, 7, 7),
        ({"type": "FLOAT"}, "1.5", 1.5),
        ({"type": "FLOAT"}, 2, 2.0),
        ({"type": "BOOLEAN"}, "TRUE", True),
        ({"type": "BOOL"}, False, False),
        ({"type": "DATETIME"}, "2024-01-31T10:00:00Z", "2024-01-31T10:00:00Z"),
        ({"type": "DATE"}, "2024-01-31", "2024-01-31"),
        ({"type": "TIME"}, "10:15:30", "10:15:30"),
        ({"type": "DURATION"}, "PT5M", "PT5M"),
        ({"type": "JSON"}, '{ "foo": "" }', {"foo": ""}),
        ({"type": "JSON"}, {"already": "parsed"}, {"already": "parsed"}),
        ({"type": "YAML"}, "a: 1\nb: [x]", {"a": 1, "b": ["x"]}),
        ({"type": "URI"}, "https://kestra.io/docs", "https://kestra.io/docs"),
        ({"type": "EMAIL"}, "a@b.io", "a@b.io"),
        ({"type": "FILE"}, "kestra:///ns/f/e/data.csv", "kestra:///ns/f/e/data.csv"),
        ({"type": "ENUM", "values": ["A", "B"]}, "B", "B"),
        ({"type": "SELECT", "values": ["A"], "allowCustomValue": True}, "Z", "Z"),
        ({"type": "MULTISELECT", "values": ["A", "B", "C"]}, '["A","C"]', ["A", "C"]),
        ({"type": "ARRAY", "itemType": "INT"}, "[1, 2, 3]", [1, 2, 3]),
        ({"type": "ARRAY", "itemType": "STRING"}, ["a", "b"], ["a", "b"]),
    ],
)
def test_every_type_is_parsed(spec: dict[str, Any], given: Any, expected: Any) -> None:
    assert one(spec, given) == expected


@pytest.mark.parametrize(
    ("spec", "given", "message"),
    [
        ({"type": "INT"}, "4.5", "Expected `INT` but received `4.5`"),
        ({"type": "INT"}, True, "Expected `INT`"),
        ({"type": "FLOAT"}, "many", "Expected `FLOAT`"),
        ({"type": "BOOLEAN"}, "yes", "Expected `BOOLEAN`"),
        ({"type": "DATETIME"}, "2024-01-31T10:00:00", "Expected `DATETIME`"),
        ({"type": "DATE"}, "31/01/2024", "Expected `DATE`"),
        ({"type": "DURATION"}, "5 minutes", "Expected `DURATION`"),
        ({"type": "JSON"}, "{not json", "Expected `JSON`"),
        ({"type": "URI"}, "not a uri", "Expected `URI` but received `not a uri`"),
        ({"type": "EMAIL"}, "nobody", "Expected `EMAIL`"),
        ({"type": "FILE"}, "data.csv", "Expected `FILE`"),
        ({"type": "STRING", "validator": "^[a-z]+$"}, "ABC", "must match the pattern"),
        ({"type": "INT", "min": 3}, "1", "it must be more than `3`"),
        ({"type": "FLOAT", "max": 1.0}, "1.5", "it must be less than `1.0`"),
        ({"type": "DURATION", "max": "PT1M"}, "PT2M", "it must be less than `PT1M`"),
        ({"type": "DATE", "after": "2024-01-01"}, "2023-12-31", "must be after"),
        ({"type": "DATE", "before": "2024-01-01"}, "2024-06-01", "must be before"),
        ({"type": "ENUM", "values": ["A", "B"]}, "C", "it must match the values"),
        ({"type": "MULTISELECT", "values": ["A"]}, ["A", "Q"], "['Q'] are not among"),
        ({"type": "ARRAY", "itemType": "INT"}, '["1", "x"]', "array element as `INT` on `x`"),
        ({"type": "ARRAY", "itemType": "INT"}, "3", "not a list"),
        ({"type": "FILE", "allowedFileExtensions": [".csv"]}, "kestra:///a.txt", "end with"),
        ({"type": "NOPE"}, "1", "unknown input type `NOPE`"),
    ],
)
def test_bad_values_are_refused_with_kestras_words(
    spec: dict[str, Any], given: Any, message: str
) -> None:
    found = problems([{"id": "x", **spec}], {"x": given})
    assert len(found) == 1
    assert message in found[0][1]


def test_every_problem_is_reported_at_once_and_is_a_flow_error() -> None:
    declared = [
        {"id": "a", "type": "INT"},
        {"id": "b", "type": "STRING"},
        {"id": "c", "type": "BOOLEAN"},
        {"id": "d", "type": "STRING", "required": False},
    ]
    with pytest.raises(FlowError) as info:
        resolve_inputs(declared, {"a": "x", "c": "maybe"}, flow_id="f")
    error = info.value
    assert isinstance(error, InputValidationError)
    assert [(p.input_id, p.expected) for p in error.problems] == [
        ("a", "INT"),
        ("b", "STRING"),
        ("c", "BOOLEAN"),
    ]
    assert error.problems[1].message == "missing required input"
    body = error.to_dict()
    assert body["flow_id"] == "f"
    assert body["problems"][0] == {
        "input": "a",
        "expected": "INT",
        "got": "x",
        "message": "Expected `INT` but received `x`",
    }


def test_defaults_required_optional_and_undeclared_keys() -> None:
    declared = [
        {"id": "n", "type": "INT", "defaults": "5"},
        {"id": "opt", "type": "STRING", "required": False},
        {"name": "legacy", "type": "BOOLEAN", "defaults": False},  # `name:` spelling
        {"id": "flag", "type": "BOOLEAN", "required": "false"},
    ]
    out = resolve_inputs(declared, {"extra": "dropped", "flag": None})
    assert out == {"n": 5, "opt": None, "legacy": False, "flag": None}
    # A given value wins over the default; the default is parsed like a given value.
    assert resolve_inputs(declared, {"n": 9})["n"] == 9


def test_templated_defaults_are_rendered_by_the_hook_with_earlier_inputs() -> None:
    declared = [
        {"id": "first", "type": "STRING"},
        {"id": "second", "type": "STRING", "defaults": "{{ inputs.first }}-2"},
    ]
    seen: list[dict[str, Any]] = []

    def render(value: Any, inputs: Any) -> Any:
        seen.append(dict(inputs))
        return str(value).replace("{{ inputs.first }}", inputs["first"])

    assert resolve_inputs(declared, {"first": "a"}, render_default=render) == {
        "first": "a",
        "second": "a-2",
    }
    assert seen == [{"first": "a"}]

    def broken(value: Any, inputs: Any) -> Any:
        raise ExpressionError("Unable to find `nope` used in the expression")

    # Without a hook the default is taken as written.
    assert resolve_inputs([declared[1]], {}) == {"second": "{{ inputs.first }}-2"}
    with pytest.raises(InputValidationError) as info:
        resolve_inputs([declared[1]], {}, render_default=broken)
    assert "Unable to find `nope`" in info.value.problems[0].message


def test_dotted_ids_become_nested_maps() -> None:
    declared = [
        {"id": "db.host", "type": "STRING"},
        {"id": "db.port", "type": "INT", "defaults": 5432},
    ]
    assert resolve_inputs(declared, {"db.host": "h"}) == {"db": {"host": "h", "port": 5432}}


def test_raw_and_none_modes() -> None:
    declared = [{"id": "n", "type": "INT", "defaults": 1}]
    assert resolve_inputs(declared, {"n": "not an int", "x": 1}, mode="raw") == {
        "n": "not an int",
        "x": 1,
    }
    assert resolve_inputs(declared, {"n": "2"}, mode="none") == {}
    # Without validation a missing required input is not a problem either.
    assert resolve_inputs([{"id": "r", "type": "STRING"}], None, mode="raw") == {}


def test_helpers_for_executions_created_without_inputs() -> None:
    declared = [
        {"id": "secret", "type": "SECRET", "defaults": "pw"},
        {"id": "plain", "type": "STRING"},
        {"id": "a.b", "type": "INT", "defaults": 1},
    ]
    assert declared_defaults(declared) == {"secret": "pw", "a": {"b": 1}}
    assert declared_defaults(None) == {}
    assert secret_input_ids(declared) == ["secret"]


def test_flow_default_renderer_renders_with_the_flow_and_earlier_inputs() -> None:
    flow = {"id": "f", "namespace": "ns", "inputs": []}
    declared = [
        {"id": "env", "type": "STRING", "defaults": "prod"},
        {"id": "path", "type": "STRING", "defaults": "{{ flow.namespace }}/{{ inputs.env }}"},
        {"id": "n", "type": "INT", "defaults": "{{ 40 + 2 }}"},
        {"id": "bad", "type": "STRING", "defaults": "{{ execution.id }}", "required": False},
    ]
    with pytest.raises(InputValidationError) as info:
        resolve_inputs(declared, {}, render_default=flow_default_renderer(flow))
    (problem,) = info.value.problems
    assert problem.input_id == "bad"
    assert "Unable to find `execution`" in problem.message
    out = resolve_inputs(declared[:3], {}, render_default=flow_default_renderer(flow))
    assert out == {"env": "prod", "path": "ns/prod", "n": 42}
