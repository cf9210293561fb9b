"""The evaluation context, the budgets, and the value semantics shared by every node.

Values inside the language are plain Python data: ``None``, ``bool``, ``int``, ``float``,
``str``, ``datetime``/``date``, ``Mapping`` and ``list``/``tuple``. Nothing else is ever
looked into: attribute access reads dict keys and sequence indexes only (see
:func:`get_item`), which is what keeps the sandbox closed — there is no path from a template
to a Python attribute, a method or a class.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

# Budgets. Each one bounds a way a hostile or buggy template could exhaust the executor.
MAX_TEMPLATE_CHARS = 1_000_000  # flow properties are small; this bounds lexing and caching work
MAX_OUTPUT_CHARS = 10_000_000  # 10 MB: Kestra's own render limit order; bigger belongs in storage
MAX_STEPS = 1_000_000  # loop iterations + filter/function calls per render: ~1 s of Python
MAX_PARSE_DEPTH = 100  # nesting of brackets/blocks; deeper input is hostile, not a real flow
MAX_RENDER_DEPTH = 8  # render() inside render(): real flows nest one or two levels
MAX_ITEMS = 1_000_000  # size of any list a template builds (range, split, ...)

_CHARS_PER_STEP = 128  # copying 128 characters costs about as much as one loop iteration
_INT_BITS = 64  # Pebble computes on Java longs; wrapping like Java bounds integer growth too


class EvalError(Exception):
    """Internal: a rendering failure at a known position; becomes an ExpressionError."""

    def __init__(self, message: str, pos: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


class UndefinedError(EvalError):
    """Internal: a variable, key or index does not exist (Pebble's AttributeNotFound).

    ``??``, ``???``, ``is defined`` and the ``default`` filter catch exactly this class.
    ``attribute`` is the name that was not found: the user-facing message leads with it in
    Kestra's words ("Unable to find `inputs` used in the expression ...").
    """

    def __init__(self, message: str, pos: int | None = None, attribute: str | None = None):
        super().__init__(message, pos)
        self.attribute = attribute


@dataclass(frozen=True, slots=True)
class ExpressionHooks:
    """Engine callbacks for functions that need more than the variables.

    Every field is optional; calling a function whose hook is missing fails with an
    ExpressionError naming it. ``now`` and ``uuid`` default to the real clock and
    :func:`uuid.uuid4` only when no hook is given: the reducer is pure, so it always passes
    both (its ``now`` and an id derived from the command).
    """

    now: Callable[[], dt.datetime] | None = None
    uuid: Callable[[], str] | None = None
    error_logs: Callable[[], list[dict[str, Any]]] | None = None
    read: Callable[[str], str] | None = None
    secret: Callable[[str], Any] | None = None
    # kv(key, namespace) returns the value, or raises KeyError when the key does not exist.
    kv: Callable[[str, str], Any] | None = None
    # read(path) of a namespace file: (namespace, path) -> the file's text.
    namespace_file: Callable[[str, str], str] | None = None


class Ctx:
    """Mutable state of one render: variable scopes, hooks and the spent budget."""

    __slots__ = ("hooks", "out_chars", "render_depth", "scopes", "steps")

    def __init__(
        self, variables: Mapping[str, Any], hooks: ExpressionHooks | None, render_depth: int = 0
    ) -> None:
        # scopes[0] is the caller's mapping, never written; {% set %} and loops push dicts.
        self.scopes: list[Mapping[str, Any]] = [variables]
        self.hooks = hooks
        self.steps = 0
        self.out_chars = 0
        self.render_depth = render_depth

    def lookup(self, name: str, pos: int) -> Any:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise UndefinedError(f"variable '{name}' is not defined", pos, name)

    def step(self, pos: int | None, count: int = 1) -> None:
        self.steps += count
        if self.steps > MAX_STEPS:
            raise EvalError(f"the template exceeded its budget of {MAX_STEPS} steps", pos)

    def charge(self, value: Any, pos: int | None) -> Any:
        """Bounds a value an operation just built and bills the copying it cost.

        Without the bill, ``{% set s = s ~ x %}`` or ``{% set l = l + [x] %}`` in a loop
        would do quadratic work within the iteration budget.
        """
        if isinstance(value, str):
            cost = len(value) // _CHARS_PER_STEP
        elif isinstance(value, list | tuple | Mapping):
            cost = len(value)
        else:
            return value
        check_size(value, pos)
        if cost:
            self.step(pos, cost)
        return value


def check_size(value: Any, pos: int | None) -> Any:
    """Refuse strings and lists past the budgets as soon as an operation builds them."""
    if isinstance(value, str) and len(value) > MAX_OUTPUT_CHARS:
        raise EvalError(f"a string grew past {MAX_OUTPUT_CHARS} characters", pos)
    if isinstance(value, list) and len(value) > MAX_ITEMS:
        raise EvalError(f"a list grew past {MAX_ITEMS} items", pos)
    return value


def get_item(obj: Any, key: Any, pos: int) -> Any:
    """``obj.key`` / ``obj[key]``: dict keys and sequence indexes, never Python attributes."""
    if isinstance(obj, Mapping):
        try:
            return obj[key]
        except (KeyError, TypeError):
            pass
        if isinstance(key, int) and not isinstance(key, bool) and str(key) in obj:
            return obj[str(key)]
        raise UndefinedError(f"key '{key}' does not exist", pos, str(key))
    if isinstance(obj, list | tuple | str):
        index = key
        if isinstance(key, str) and key.isdigit():
            index = int(key)
        if isinstance(index, int) and not isinstance(index, bool):
            if 0 <= index < len(obj):
                return obj[index]
            raise UndefinedError(
                f"index {index} is out of range (length {len(obj)})", pos, str(index)
            )
        raise EvalError(f"cannot read '{key}' of a {type_name(obj)}: use a number index", pos)
    if obj is None:
        raise UndefinedError(f"cannot read '{key}' of null", pos, str(key))
    raise EvalError(f"cannot read '{key}' of a {type_name(obj)}", pos)


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dt.datetime | dt.date):
        return "date"
    return "value"


# ---- output conversion --------------------------------------------------------------------


def java_double(value: float) -> str:
    """Java's ``Double.toString``: ``1.0``, ``0.001``, ``1.0E7``, ``1.0E-4``, ``NaN``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = repr(value)
        return text if "." in text else text + ".0"
    # Shortest round-trip digits (Python and modern Java agree), laid out as d.dddE±n.
    _sign, digit_tuple, exponent = decimal.Decimal(repr(magnitude)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    sci_exponent = len(digit_tuple) - 1 + int(exponent)
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{sci_exponent}"


def iso_datetime(value: dt.datetime) -> str:
    """Kestra prints instants as ISO-8601 UTC with exactly three fractional digits."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return iso_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def json_size_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` written as JSON would pass ``limit`` characters, without writing it.

    Containers are sized once each (memoised by identity), so a list holding the same big
    string a million times is caught arithmetically instead of by running out of memory.
    """
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, expanded = stack.pop()
        key = id(node)
        if not expanded:
            if key in sizes:
                continue
            sizes[key] = 0  # placeholder: a cycle counts as empty here; json.dumps reports it
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node) if _is_container(child))
            continue
        size = 2
        for child in _children(node):
            size += 1 + (sizes.get(id(child), 0) if _is_container(child) else _scalar_size(child))
            if size > limit:
                return True
        sizes[key] = size
    return sizes.get(id(value), 0) > limit


def _is_container(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple)


def _children(node: Any) -> list[Any]:
    if isinstance(node, Mapping):
        return [part for pair in node.items() for part in pair]
    return list(node)


def _scalar_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value) + 2
    return 24  # numbers, booleans, null and dates are short


def to_json(value: Any) -> str:
    """Compact JSON as Kestra's Jackson mapper writes it."""
    if isinstance(value, Mapping | list | tuple) and json_size_exceeds(value, MAX_OUTPUT_CHARS):
        raise EvalError(f"the value is larger than {MAX_OUTPUT_CHARS} characters as JSON")
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError, RecursionError) as exc:
        raise EvalError(f"cannot write the value as JSON: {exc}") from exc


def to_output(value: Any) -> str:
    """How ``{{ value }}`` prints: null -> '', maps/lists -> JSON, floats like Java."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, dt.datetime):
        return iso_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        return to_json(value)
    return str(value)


# ---- operators ----------------------------------------------------------------------------


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def wrap_int(value: int) -> int:
    """Two's-complement wrap to 64 bits, as Java's long arithmetic does."""
    if -(1 << (_INT_BITS - 1)) <= value < (1 << (_INT_BITS - 1)):
        return value
    value &= (1 << _INT_BITS) - 1
    return value - (1 << _INT_BITS) if value >> (_INT_BITS - 1) else value


def truthy(value: Any) -> bool:
    """Truthiness of ``{% if %}``, ``and``/``or``/``not`` and the ternary."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() not in ("", "false", "0", "-0")
    if is_number(value):
        return bool(value != 0)
    if isinstance(value, Mapping | list | tuple):
        return len(value) > 0
    return True


def equals(left: Any, right: Any) -> bool:
    """Pebble's equality: numbers by value (1 == 1.0), everything else by ``equals``."""
    if is_number(left) and is_number(right):
        return bool(left == right)
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    try:
        return bool(left == right)
    except (TypeError, ValueError, RecursionError):
        return False


def compare(left: Any, right: Any, pos: int) -> int:
    """Ordering for ``< > <= >=``: numbers, strings (Kestra's addition) or dates."""
    if is_number(left) and is_number(right):
        return int(left > right) - int(left < right)
    if isinstance(left, str) and isinstance(right, str):
        return (left > right) - (left < right)
    if isinstance(left, dt.datetime) and isinstance(right, dt.datetime):
        try:
            return (left > right) - (left < right)
        except TypeError:
            pass
    raise EvalError(f"cannot compare a {type_name(left)} with a {type_name(right)}", pos)


def arithmetic(op: str, left: Any, right: Any, pos: int) -> Any:
    """``+ - * / % //`` with Pebble's rules (string ``+`` concatenates, list ``+`` appends)."""
    if op == "+":
        if isinstance(left, str) or isinstance(right, str):
            return check_size(to_output(left) + to_output(right), pos)
        if isinstance(left, list | tuple):
            extra = list(right) if isinstance(right, list | tuple) else [right]
            return check_size([*left, *extra], pos)
    if op == "-" and isinstance(left, list | tuple):
        drop = list(right) if isinstance(right, list | tuple) else [right]
        return [item for item in left if not any(equals(item, d) for d in drop)]
    if not (is_number(left) and is_number(right)):
        raise EvalError(
            f"'{op}' needs numbers, got a {type_name(left)} and a {type_name(right)}", pos
        )
    both_int = isinstance(left, int) and isinstance(right, int)
    try:
        if op == "+":
            result = left + right
        elif op == "-":
            result = left - right
        elif op == "*":
            result = left * right
        elif op == "/":
            # Java divides longs toward zero and doubles exactly.
            result = _int_div(left, right) if both_int else left / right
        elif op == "//":
            result = left // right
        else:  # "%": Java's remainder takes the dividend's sign
            result = left - right * _int_div(left, right) if both_int else math.fmod(left, right)
    except ZeroDivisionError as exc:
        raise EvalError("division by zero", pos) from exc
    except OverflowError as exc:
        raise EvalError("number too large", pos) from exc
    if isinstance(result, int):
        return wrap_int(result)
    return result


def _int_div(left: int, right: int) -> int:
    if right == 0:
        raise ZeroDivisionError
    quotient = abs(left) // abs(right)
    return quotient if (left >= 0) == (right >= 0) else -quotient


def contains(container: Any, item: Any, pos: int) -> bool:
    """``a contains b`` / ``b in a``: substring, list membership, map key."""
    if isinstance(container, str):
        return to_output(item) in container
    if isinstance(container, Mapping):
        return item in container
    if isinstance(container, list | tuple):
        if isinstance(item, list | tuple):
            return all(any(equals(c, i) for c in container) for i in item)
        return any(equals(c, item) for c in container)
    if container is None:
        return False
    raise EvalError(f"cannot look inside a {type_name(container)}", pos)


def as_sequence(value: Any, pos: int) -> Sequence[Any]:
    """What ``{% for %}`` iterates: lists, map entries (``key``/``value``) and strings."""
    if isinstance(value, list | tuple):
        return value
    if isinstance(value, Mapping):
        return [{"key": k, "value": v} for k, v in value.items()]
    if value is None:
        return []
    if isinstance(value, str):
        return list(value)
    raise EvalError(f"cannot iterate over a {type_name(value)}", pos)


def make_range(start: Any, stop: Any, step: Any, pos: int | None) -> list[int]:
    """Pebble's inclusive ranges (``0..3`` is ``[0, 1, 2, 3]``), bounded by MAX_ITEMS."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop, step)):
        raise EvalError("a range needs whole numbers", pos)
    if step == 0:
        raise EvalError("a range step cannot be 0", pos)
    count = (stop - start) // step + 1
    if count > MAX_ITEMS:
        raise EvalError(f"the range has {count} items, more than the {MAX_ITEMS} allowed", pos)
    return list(range(start, stop + (1 if step > 0 else -1), step))
