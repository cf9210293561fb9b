"""Turn pydantic validation errors into :class:`FlowProblem` entries a person can act on.

Pydantic's ``loc`` mixes data keys with union tags and member names
(``tasks, 0, io.kestra.plugin.core.log.Log, message``); the data path is recovered by walking
the validated data alongside it. Unknown keys and unknown types get close-match suggestions;
errors of one value against several union members are merged into one problem.
"""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from schemas.types import known_names, unknown_type_problem

Path = tuple[str | int, ...]
# (path, message, expected, at_key)
Located = tuple[Path, str, str | None, bool]

_TASK_MARK = "io.kestra.plugin.core.log.Log"
_TRIGGER_MARK = "io.kestra.plugin.core.trigger.Schedule"
_CONDITION_MARK = "io.kestra.plugin.core.condition.Expression"


def problems_from_validation(
    exc: ValidationError, data: Any, root_model: type[BaseModel]
) -> list[Located]:
    """One located problem per mistake (union alternatives merged)."""
    entries = [(error, *_data_path(error, data)) for error in exc.errors(include_url=False)]
    # A value rejected by one union member at its own level (``expected a string``) while
    # another member got further (``message[0]: expected a string``): the deeper error is the
    # one that explains the mistake, so the shallow one is dropped.
    deepest: dict[Path, int] = {}
    for _, path, branch in entries:
        if branch is not None:
            deepest[branch] = max(deepest.get(branch, 0), len(path))
    grouped: dict[Path, list[ErrorDetails]] = {}
    for error, path, branch in entries:
        if branch is not None and path == branch and deepest[branch] > len(path):
            continue
        grouped.setdefault(path, []).append(error)
    out: list[Located] = []
    for path, errors in grouped.items():
        if len(errors) == 1 or any(e["type"] in _STANDALONE for e in errors):
            out.extend(_describe(error, path, root_model) for error in errors)
            continue
        # Several union members rejected the same value: say what any of them wanted.
        expected = " or ".join(dict.fromkeys(_expected(e) for e in errors))
        out.append((path, f"invalid value {_short(errors[0]['input'])}", expected, False))
    return out


# Properties Kestra has on every task or trigger that Headwater does not act on: said to be
# Kestra's, never a typo (as for types we do not provide).
KESTRA_PROPERTIES_NOT_PROVIDED: dict[str, str] = {
    "assets": "asset lineage (Kestra 1.1+), which Headwater does not record",
}
_STANDALONE = frozenset({"missing", "extra_forbidden", "union_tag_invalid", "union_tag_not_found"})


def _data_path(error: ErrorDetails, data: Any) -> tuple[Path, Path | None]:
    """The error's path in the data, and the path where it entered a union member (if any)."""
    loc = error["loc"]
    path: list[str | int] = []
    branch: Path | None = None
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif last and error["type"] in ("missing", "extra_forbidden"):
            path.append(part)
        else:
            # a union tag or member name, not a place in the document; the innermost wins
            branch = tuple(path)
    return tuple(path), branch


def _describe(error: ErrorDetails, path: Path, root: type[BaseModel]) -> Located:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return path, f"missing required property '{path[-1]}'", "a value here", False
    if kind == "extra_forbidden":
        key = str(path[-1])
        if key in KESTRA_PROPERTIES_NOT_PROVIDED:
            what = KESTRA_PROPERTIES_NOT_PROVIDED[key]
            message = f"'{key}' is a Kestra property that Headwater does not provide: {what}"
            return path, message, None, True
        allowed = _allowed_keys(root, tuple(error["loc"])[:-1])
        close = difflib.get_close_matches(key, allowed, n=3, cutoff=0.6)
        hint = f"did you mean {_or(close)}?" if close else None
        expected = _one_of(allowed) if allowed else None
        return path, f"unknown property '{key}'" + (f"; {hint}" if hint else ""), expected, True
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag", ""))
        what, names = _tag_names(str(ctx.get("expected_tags", "")))
        message, not_provided = unknown_type_problem(tag, what, names)
        return (*path, "type"), message, None if not_provided else f"a known {what} type", False
    if kind == "union_tag_not_found":
        return path, "missing required property 'type'", "a 'type' naming what this is", False
    return path, f"invalid value {_short(error['input'])}", _expected(error), False


def _expected(error: ErrorDetails) -> str:
    ctx = error.get("ctx") or {}
    kind = error["type"]
    msg = error["msg"]
    if kind == "literal_error":
        return f"one of {ctx.get('expected')}"
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        word = "at least" if kind == "too_short" else "at most"
        return f"{word} {bound} item{'s' if bound != 1 else ''}"
    if kind == "string_too_long":
        return f"at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        return f"a string matching {ctx.get('pattern')}"
    if msg.startswith("expected "):
        return msg.removeprefix("expected ")
    if msg.startswith("Input should be "):
        return msg.removeprefix("Input should be ")
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]


def _tag_names(expected_tags: str) -> tuple[str, list[str]]:
    if _TASK_MARK in expected_tags:
        return "task", [*known_names("flowable"), *known_names("runnable")]
    if _TRIGGER_MARK in expected_tags:
        return "trigger", known_names("trigger")
    if _CONDITION_MARK in expected_tags:
        return "condition", known_names("condition")
    names = [t.strip().strip("'") for t in expected_tags.split(",") if t.strip()]
    what = "input" if "STRING" in names else "retry" if "constant" in names else "value"
    return what, names


def _allowed_keys(root: type[BaseModel], loc: Path) -> list[str]:
    tp: Any = root
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return sorted(f.alias or name for name, f in tp.model_fields.items())
    return []


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _step(tp: Any, part: str | int) -> Any:
    if (member := _tagged_members(tp).get(part)) is not None:
        return member
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, field in tp.model_fields.items():
            if part in (name, field.alias):
                # pydantic keeps a field's own Annotated metadata beside its annotation
                return (
                    Annotated[(field.annotation, *field.metadata)]
                    if field.metadata
                    else field.annotation
                )
        return None
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        members = [_unwrap(m) for m in get_args(tp) if m is not type(None)]
        for member in members:
            if _tag(member) == part:
                return member
        for member in members:
            if (found := _step(member, part)) is not None:
                return found
        return tp  # a member name such as 'list[Label]': stay on the union
    if origin is list and isinstance(part, int):
        return get_args(tp)[0]
    if origin is dict:
        return get_args(tp)[1]
    return None


def _tagged_members(tp: Any) -> dict[Any, Any]:
    """The members of a union validated through a field type of its own (a task list's)."""
    if get_origin(tp) is Annotated:
        for meta in get_args(tp)[1:]:
            models = getattr(meta, "models", None)
            if isinstance(models, dict):
                return models
    return {}


def _tag(model: Any) -> Any:
    if isinstance(model, type) and issubclass(model, BaseModel) and "type" in model.model_fields:
        args = get_args(model.model_fields["type"].annotation)
        return args[0] if len(args) == 1 else None
    return None


def _or(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _one_of(names: list[str]) -> str:
    return "one of " + ", ".join(names)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__: list[str] = ["Located", "Path", "problems_from_validation"]
