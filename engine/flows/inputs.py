"""Execution inputs: Kestra's typed validation and coercion, as one pure function.

``resolve_inputs(declared, given, mode=...)`` turns what a caller passed (an API body, a
trigger, a subflow task, a Pause ``onResume``) into the ``inputs`` of an execution:

- ``typed`` (what the API does): every declared input is looked at (an input whose
  ``dependsOn`` inputs are not all enabled, or whose ``dependsOn.condition`` is not true, is
  disabled: neither checked nor kept, as Kestra's ``resolveInputValue``); a missing value takes the
  input's ``defaults`` (rendered first when a ``render_default`` hook is given: Kestra renders
  defaults since 0.24), a missing required one is a problem, a present one is parsed to its
  type (``"3"`` -> 3 for INT, a JSON string -> a map for JSON...) and checked against its
  constraints (``validator``, ``min``/``max``, ``values``, ``after``/``before``, file
  extensions). Undeclared keys are dropped and dotted ids (``a.b``) become nested maps, as in
  Kestra. Every problem is collected and raised at once in :class:`InputValidationError`.
- ``raw``: the map as given, no validation and no coercion.
- ``none``: no inputs at all; declared defaults are then only seen by expressions (the
  reducer merges them into the render variables, as Kestra's ``RunVariables`` does).

No I/O: a FILE input is a URI that already points into internal storage (the API uploads
first), and nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.dotted import nest_dotted
from engine.errors import FlowError, HeadwaterError
from engine.flows.input_types import InvalidValue, kind_of, parse_value, shown

InputsMode = Literal["typed", "raw", "none"]


@dataclass(frozen=True, slots=True)
class InputProblem:
    """One input that could not be accepted: which, what it should be, what it was."""

    input_id: str
    expected: str
    got: Any
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input_id,
            "expected": self.expected,
            "got": self.got,
            "message": self.message,
        }


class InputValidationError(FlowError):
    """The inputs of an execution do not match the flow's declared ``inputs``."""

    def __init__(self, problems: list[InputProblem], *, flow_id: str | None = None) -> None:
        lines = "; ".join(f"input '{p.input_id}': {p.message}" for p in problems)
        super().__init__(
            f"Invalid inputs: {lines}",
            flow_id=flow_id,
            problems=[p.to_dict() for p in problems],
        )
        self.problems = problems


def input_id(spec: Mapping[str, Any]) -> str:
    """The input's id (older flows write ``name``)."""
    return str(spec.get("id") or spec.get("name") or "")


def is_required(spec: Mapping[str, Any]) -> bool:
    """Kestra's default is required; ``required: "false"`` (a string) counts as false."""
    value = spec.get("required", True)
    if isinstance(value, str):
        return value.strip().lower() != "false"
    return value is not False


def declared_defaults(declared: Any) -> dict[str, Any]:
    """Each declared input's ``defaults``, unrendered (what an execution without inputs sees)."""
    out: dict[str, Any] = {}
    for spec in declared if isinstance(declared, list) else []:
        if isinstance(spec, Mapping) and spec.get("defaults") is not None:
            out[input_id(spec)] = spec["defaults"]
    return nest_dotted(out)


def secret_input_ids(declared: Any) -> list[str]:
    """Ids of the SECRET inputs (also ARRAY of SECRET), whose values are masked in logs, the
    read model and API answers."""
    return [
        input_id(spec)
        for spec in (declared if isinstance(declared, list) else [])
        if isinstance(spec, Mapping) and _is_secret(spec) and input_id(spec)
    ]


def _is_secret(spec: Mapping[str, Any]) -> bool:
    kind = str(spec.get("type", "")).upper()
    return kind == "SECRET" or (
        kind == "ARRAY" and str(spec.get("itemType", "")).upper() == "SECRET"
    )


def resolve_inputs(
    declared: Any,
    given: Mapping[str, Any] | None,
    *,
    mode: InputsMode = "typed",
    render_default: Callable[[Any, Mapping[str, Any]], Any] | None = None,
    flow_id: str | None = None,
) -> dict[str, Any]:
    """The execution's inputs; raises :class:`InputValidationError` listing every problem.

    ``render_default(value, inputs_so_far)`` renders a templated default (the caller binds
    the expression language and the flow variables); a failure there is a problem too.
    """
    if mode == "none":
        return {}
    if mode == "raw":
        return dict(given or {})
    given = given or {}
    specs: dict[str, Mapping[str, Any]] = {}
    for spec in declared if isinstance(declared, list) else []:
        if isinstance(spec, Mapping):
            specs.setdefault(input_id(spec), spec)
    resolver = _Resolver(specs, given, render_default)
    for name in specs:
        resolver.resolve(name)
    if resolver.problems:
        raise InputValidationError(resolver.problems, flow_id=flow_id)
    return nest_dotted({k: v for k, v in resolver.values.items() if k in resolver.enabled})


class _Resolver:
    """FlowInputOutput.resolveInputs: each input resolved once, its ``dependsOn`` inputs
    first. An input is enabled when all its dependencies are and its ``condition`` (rendered
    with the dependencies' values) is true; a disabled input is not checked and not kept."""

    def __init__(
        self,
        specs: dict[str, Mapping[str, Any]],
        given: Mapping[str, Any],
        render: Callable[[Any, Mapping[str, Any]], Any] | None,
    ) -> None:
        self.specs = specs
        self.given = given
        self.render = render
        self.values: dict[str, Any] = {}
        self.enabled: set[str] = set()
        self.done: set[str] = set()
        self.problems: list[InputProblem] = []

    def resolve(self, name: str) -> bool:
        """Resolve ``name`` (once); whether it is enabled."""
        if name in self.done:
            return name in self.enabled
        self.done.add(name)  # a dependency cycle sees it as not enabled
        spec = self.specs[name]
        depends = spec.get("dependsOn")
        deps = [str(d) for d in (depends or {}).get("inputs") or [] if isinstance(depends, Mapping)]
        deps = [d for d in deps if d != name and d in self.specs]
        enabled = all([self.resolve(d) for d in deps])
        condition = depends.get("condition") if isinstance(depends, Mapping) else None
        if enabled and condition is not None:
            scope = nest_dotted({d: self.values.get(d) for d in deps if d in self.enabled})
            try:
                result = self.render(condition, scope) if self.render is not None else condition
            except (HeadwaterError, ValueError, TypeError) as exc:
                message = getattr(exc, "message", str(exc))
                self.problems.append(
                    InputProblem(name, kind_of(spec), None, f"Invalid condition: {message}")
                )
                return False
            enabled = result is True or str(result).strip().lower() == "true"
        if not enabled:
            return False
        self.enabled.add(name)
        value = self.given.get(name)
        try:
            if value is None and spec.get("defaults") is not None:
                value = spec["defaults"]
                if self.render is not None:
                    value = self.render(value, nest_dotted(dict(self.values)))
            if value is None:
                if is_required(spec):
                    raise InvalidValue(kind_of(spec), "missing required input")
                self.values[name] = None
                return True
            self.values[name] = parse_value(spec, value)
        except InvalidValue as exc:
            self.problems.append(InputProblem(name, exc.expected, shown(value), exc.message))
        except (ValueError, TypeError) as exc:  # a default that failed to render
            self.problems.append(InputProblem(name, kind_of(spec), shown(value), str(exc)))
        except HeadwaterError as exc:  # a default whose expression failed (ExpressionError)
            self.problems.append(InputProblem(name, kind_of(spec), shown(value), exc.message))
        return True


def flow_default_renderer(
    flow: Mapping[str, Any], hooks: Any = None
) -> Callable[[Any, Mapping[str, Any]], Any]:
    """A ``render_default`` for :func:`resolve_inputs`: defaults see ``flow`` (id, namespace,
    revision) and the inputs resolved before them, like Kestra 0.24+ (``execution`` is not
    there yet: the execution does not exist while its inputs are being resolved)."""
    from engine.expressions import render_value  # the language is only needed here

    base = {
        "flow": {
            "id": flow.get("id"),
            "namespace": flow.get("namespace"),
            "revision": flow.get("revision"),
        }
    }

    def render(value: Any, inputs: Mapping[str, Any]) -> Any:
        return render_value(value, {**base, "inputs": inputs}, hooks)

    return render


__all__ = [
    "InputProblem",
    "InputValidationError",
    "InputsMode",
    "declared_defaults",
    "flow_default_renderer",
    "input_id",
    "is_required",
    "parse_value",
    "resolve_inputs",
    "secret_input_ids",
]
