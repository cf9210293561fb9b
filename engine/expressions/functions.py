"""Functions: ``json()``, ``render()``, ``currentEachOutput()``, ``errorLogs()``, ``range()``...

Functions that need the engine (``errorLogs``, ``read``, ``secret``, ``kv``) go through
:class:`~engine.expressions.runtime.ExpressionHooks`; a missing hook is an ExpressionError
that names the function, never a silent empty value.
"""

from __future__ import annotations

import json
import re
import uuid as uuid_module
from collections.abc import Mapping
from typing import Any

import yaml

from engine.errors import HeadwaterError
from engine.expressions.registry import function
from engine.expressions.runtime import (
    MAX_RENDER_DEPTH,
    MAX_TEMPLATE_CHARS,
    Ctx,
    EvalError,
    compare,
    get_item,
    is_number,
    make_range,
    type_name,
)


def _hook(ctx: Ctx, name: str) -> Any:
    hook = getattr(ctx.hooks, name, None) if ctx.hooks is not None else None
    if hook is None:
        raise EvalError(
            f"function '{name}()' is not available here: the engine gave no '{name}' "
            "hook for this render"
        )
    return hook


def _parse_json(value: Any, name: str) -> Any:
    if not isinstance(value, str):
        return value  # already data: Kestra passes maps and lists through
    if len(value) > MAX_TEMPLATE_CHARS * 10:
        raise EvalError(f"function '{name}' got more than {MAX_TEMPLATE_CHARS * 10} characters")
    try:
        return json.loads(value)
    except ValueError as exc:
        raise EvalError(f"function '{name}' got invalid JSON: {exc}") from exc


@function("json")
def json_function(ctx: Ctx, json_: Any) -> Any:
    return _parse_json(json_, "json")


@function("fromJson")
def from_json(ctx: Ctx, json_: Any) -> Any:
    return _parse_json(json_, "fromJson")


@function("jsonDecode")
def json_decode(ctx: Ctx, json_: Any) -> Any:
    return _parse_json(json_, "jsonDecode")


@function("yaml")
def yaml_function(ctx: Ctx, yaml_: Any) -> Any:
    if not isinstance(yaml_, str):
        return yaml_
    try:
        return yaml.safe_load(yaml_)
    except yaml.YAMLError as exc:
        raise EvalError(f"function 'yaml' got invalid YAML: {exc}") from exc


@function("render")
def render_function(ctx: Ctx, expression: Any) -> Any:
    """Renders a string again with the same variables (a variable holding a template)."""
    if not isinstance(expression, str):
        return expression
    if ctx.render_depth >= MAX_RENDER_DEPTH:
        raise EvalError(f"render() is nested more than {MAX_RENDER_DEPTH} levels deep")
    if "{{" not in expression and "{%" not in expression:
        return expression
    from engine.expressions.template import compile_template  # template imports this module

    template = compile_template(expression)
    inner = Ctx(ctx.scopes[0], ctx.hooks, ctx.render_depth + 1)
    inner.scopes.extend(ctx.scopes[1:])
    inner.steps = ctx.steps  # the budget is shared, not renewed, by nested renders
    try:
        return template.render(inner)
    except EvalError as exc:
        raise EvalError(f"in render(): {exc.message}") from exc
    finally:
        ctx.steps = inner.steps


@function("currentEachOutput")
def current_each_output(ctx: Ctx, outputs: Any) -> Any:
    """The output of the current ForEach iteration, walking ``parents`` then ``taskrun``.

    ``outputs.t`` of a task inside ForEach loops is a map keyed by each enclosing loop's
    value; Kestra walks it from the outermost parent's ``taskrun.value`` inwards.
    """
    if not isinstance(outputs, Mapping):
        raise EvalError(
            "function 'currentEachOutput' needs the outputs map of a task, like "
            "currentEachOutput(outputs.my_task)"
        )
    current: Any = outputs
    try:
        parents = ctx.lookup("parents", 0)
    except EvalError:
        parents = None
    if isinstance(parents, list | tuple):
        for parent in reversed(parents):
            taskrun = parent.get("taskrun") if isinstance(parent, Mapping) else None
            if isinstance(taskrun, Mapping):
                nxt = current.get(taskrun.get("value")) if isinstance(current, Mapping) else None
                if nxt is None:
                    raise EvalError(
                        "no outputs for the current task-run path "
                        f"(missing '{taskrun.get('value')}')"
                    )
                current = nxt
    taskrun = ctx.lookup("taskrun", 0)
    value = get_item(taskrun, "value", 0)
    return current.get(value) if isinstance(current, Mapping) else None


@function("errorLogs")
def error_logs(ctx: Ctx) -> Any:
    return list(_hook(ctx, "error_logs")())


_URI_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_NSFILE = "nsfile://"


@function("read")
def read(ctx: Ctx, path: Any, namespace: Any = None, version: Any = None) -> Any:
    """A file's text: a ``kestra://`` URI of internal storage, else a namespace file (a path,
    or ``nsfile:///path`` / ``nsfile://namespace/path``) of ``namespace`` (the flow's)."""
    if not isinstance(path, str):
        raise EvalError("function 'read' needs a path or kestra:// URI string")
    if path.startswith("kestra://"):
        return _hook(ctx, "read")(path)
    if version is not None:
        raise EvalError(
            "function 'read': Headwater keeps one version of each namespace file; "
            "remove the 'version' argument"
        )
    if path.startswith(_NSFILE):
        authority, _, rest = path[len(_NSFILE) :].partition("/")
        if authority and namespace is not None:
            raise EvalError(
                "You cannot set a namespace both as the function argument and inside the URI"
            )
        namespace = namespace if namespace is not None else authority or None
        path = "/" + rest
    elif _URI_SCHEME.match(path):
        raise EvalError(f"Cannot process the URI {path}: scheme not supported.")
    if namespace is None:
        try:
            namespace = get_item(ctx.lookup("flow", 0), "namespace", 0)
        except EvalError as exc:
            raise EvalError(
                "function 'read' needs a namespace: none given and no flow.namespace"
            ) from exc
    hook = _hook(ctx, "namespace_file")
    try:
        return hook(str(namespace), path)
    except HeadwaterError as exc:
        raise EvalError(f"function 'read': {exc}") from None


@function("secret")
def secret(ctx: Ctx, key: Any) -> Any:
    if not isinstance(key, str):
        raise EvalError("function 'secret' needs the secret's name as a string")
    return _hook(ctx, "secret")(key)


@function("kv")
def kv(ctx: Ctx, key: Any, namespace: Any = None, error_on_missing: Any = False) -> Any:
    """A key-value store entry; a missing key is null unless ``errorOnMissing`` is true."""
    if not isinstance(key, str):
        raise EvalError("function 'kv' needs the key as a string")
    if namespace is None:
        try:
            namespace = get_item(ctx.lookup("flow", 0), "namespace", 0)
        except EvalError as exc:
            raise EvalError(
                "function 'kv' needs a namespace: none given and no flow.namespace"
            ) from exc
    hook = _hook(ctx, "kv")
    try:
        return hook(key, str(namespace))
    except KeyError as exc:
        if error_on_missing is True or error_on_missing == "true":
            raise EvalError(
                f"The key '{key}' does not exist in the namespace '{namespace}'"
            ) from exc
        return None


@function("uuid")
def uuid(ctx: Ctx) -> str:
    if ctx.hooks is not None and ctx.hooks.uuid is not None:
        return ctx.hooks.uuid()
    return str(uuid_module.uuid4())


@function("range")
def range_function(ctx: Ctx, start: Any, end: Any, increment: Any = 1) -> list[int]:
    return make_range(start, end, increment, None)


def _extreme(args: tuple[Any, ...], pick: int, name: str) -> Any:
    values = [a for a in args if a is not None]
    if len(values) == 1 and isinstance(values[0], list | tuple):
        values = list(values[0])
    if not values:
        raise EvalError(f"function '{name}' needs at least one value")
    best = values[0]
    for value in values[1:]:
        if compare(value, best, 0) == pick:
            best = value
    return best


@function("max")
def max_function(ctx: Ctx, a: Any, b: Any = None, c: Any = None, d: Any = None) -> Any:
    return _extreme((a, b, c, d), 1, "max")


@function("min")
def min_function(ctx: Ctx, a: Any, b: Any = None, c: Any = None, d: Any = None) -> Any:
    return _extreme((a, b, c, d), -1, "min")


@function("length")
def length_function(ctx: Ctx, value: Any) -> int:
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise EvalError(f"function 'length' needs a string, list or map, got a {type_name(value)}")


@function("abs")
def abs_function(ctx: Ctx, value: Any) -> Any:
    if not is_number(value):
        raise EvalError(f"function 'abs' needs a number, got a {type_name(value)}")
    return abs(value)
