"""Pratt parser for Pebble expressions, compiling straight to Python closures.

Each node becomes a closure ``fn(ctx) -> value``; nothing is ever handed to ``eval``.
Precedences are Pebble's (``or`` 10, ``and`` 15, ``is``/``contains``/``in`` 20, comparisons 30,
``+ -`` 40, ``* / %`` 60, ``|`` 100, ``~`` 110, ``..`` and Kestra's ``??``/``???`` 120, unary
``not`` 5 and ``+ -`` 500), so ``'a' ~ 'b' | upper`` is ``AB`` as in Kestra.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.expressions import (  # noqa: F401  (importing registers the builtins)
    calendar,
    dates,
    filters,
    functions,
    jq,
    predicates,
)
from engine.expressions.lexer import Token
from engine.expressions.registry import FILTERS, FUNCTIONS, TESTS, Builtin, suggest
from engine.expressions.runtime import (
    MAX_PARSE_DEPTH,
    Ctx,
    EvalError,
    UndefinedError,
    arithmetic,
    compare,
    contains,
    equals,
    get_item,
    make_range,
    to_output,
    truthy,
)

Fn = Callable[[Ctx], Any]

_BINARY = {
    "or": 10,
    "and": 15,
    "is": 20,
    "contains": 20,
    "in": 20,
    "not": 20,
    "==": 30,
    "equals": 30,
    "!=": 30,
    "<": 30,
    ">": 30,
    "<=": 30,
    ">=": 30,
    "+": 40,
    "-": 40,
    "*": 60,
    "/": 60,
    "//": 60,
    "%": 60,
    "|": 100,
    "~": 110,
    "..": 120,
    "??": 120,
    "???": 120,
}
_UNARY = {"not": 5, "-": 500, "+": 500}
_CONSTANTS: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "none": None,
    "TRUE": True,
    "FALSE": False,
    "NULL": None,
    "NONE": None,
}
_COMPARE: dict[str, Callable[[int], bool]] = {
    "<": lambda c: c < 0,
    ">": lambda c: c > 0,
    "<=": lambda c: c <= 0,
    ">=": lambda c: c >= 0,
}
_CALL_FAILURES = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    ArithmeticError,
    AttributeError,
    LookupError,
    OSError,
    UnicodeError,
    RecursionError,
)


class ExpressionParser:
    """Parses one token list; ``depth`` bounds nesting so evaluation cannot overflow."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    # ---- token helpers ------------------------------------------------------------------

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        if token.kind != "end":
            self.index += 1
        return token

    def at(self, kind: str, value: Any = None) -> bool:
        token = self.peek()
        return token.kind == kind and (value is None or token.value == value)

    def expect(self, kind: str, value: Any = None, what: str | None = None) -> Token:
        if not self.at(kind, value):
            token = self.peek()
            wanted = what or (repr(value) if value is not None else kind)
            raise EvalError(f"expected {wanted} but found {describe(token)}", token.pos)
        return self.next()

    def expect_name(self, value: str) -> None:
        self.expect("name", value, f"'{value}'")

    def expect_end(self) -> None:
        if not self.at("end"):
            token = self.peek()
            raise EvalError(
                f"unexpected {describe(token)}: expected the end of the expression", token.pos
            )

    # ---- expressions ----------------------------------------------------------------------

    def expression(self, min_prec: int = 0) -> Fn:
        self.depth += 1
        if self.depth > MAX_PARSE_DEPTH:
            raise EvalError(
                f"the expression nests deeper than {MAX_PARSE_DEPTH} levels", self.peek().pos
            )
        try:
            return self._expression(min_prec)
        finally:
            self.depth -= 1

    def _expression(self, min_prec: int) -> Fn:
        token = self.peek()
        if token.value in _UNARY and (token.kind == "op" or token.value == "not"):
            self.next()
            operand = self.expression(_UNARY[str(token.value)])
            left = self._unary(str(token.value), operand, token.pos)
        else:
            left = self.postfix(self.primary())
        chain = 0
        while True:
            token = self.peek()
            op = str(token.value)
            if token.kind not in ("op", "name") or op not in _BINARY:
                break
            if op == "not" and not (self.peek(1).kind == "name" and self.peek(1).value == "in"):
                break
            prec = _BINARY[op]
            if prec < min_prec:
                break
            chain += 1
            if chain > MAX_PARSE_DEPTH:  # left-leaning chains nest as deep as they are long
                raise EvalError(f"more than {MAX_PARSE_DEPTH} operators in a row", token.pos)
            self.next()
            left = self._binary(op, left, prec, token.pos)
        if min_prec == 0 and self.at("op", "?"):
            self.next()
            then = self.expression()
            self.expect("op", ":", "':' of the ternary")
            otherwise = self.expression()
            cond = left
            left = lambda ctx: then(ctx) if truthy(cond(ctx)) else otherwise(ctx)  # noqa: E731
        return left

    def _unary(self, op: str, operand: Fn, pos: int) -> Fn:
        if op == "not":
            return lambda ctx: not truthy(operand(ctx))
        sign = -1 if op == "-" else 1
        return lambda ctx: arithmetic("*", sign, operand(ctx), pos)

    def _binary(self, op: str, left: Fn, prec: int, pos: int) -> Fn:
        if op == "|":
            return self.filter_call(left)
        if op == "is":
            return self.test_call(left)
        if op == "not":  # "not in"
            self.expect_name("in")
            right = self.expression(prec + 1)
            return lambda ctx: not contains(right(ctx), left(ctx), pos)
        right = self.expression(prec + 1)
        if op == "or":
            return lambda ctx: truthy(left(ctx)) or truthy(right(ctx))
        if op == "and":
            return lambda ctx: truthy(left(ctx)) and truthy(right(ctx))
        if op in ("==", "equals"):
            return lambda ctx: equals(left(ctx), right(ctx))
        if op == "!=":
            return lambda ctx: not equals(left(ctx), right(ctx))
        if op in _COMPARE:
            test = _COMPARE[op]
            return lambda ctx: _compare_or_false(test, left(ctx), right(ctx), pos)
        if op == "~":
            return lambda ctx: ctx.charge(to_output(left(ctx)) + to_output(right(ctx)), pos)
        if op == "contains":
            return lambda ctx: contains(left(ctx), right(ctx), pos)
        if op == "in":
            return lambda ctx: contains(right(ctx), left(ctx), pos)
        if op == "..":
            return lambda ctx: make_range(left(ctx), right(ctx), 1, pos)
        if op == "??":
            return _coalesce(left, right, null_too=True)
        if op == "???":
            return _coalesce(left, right, null_too=False)
        return lambda ctx: ctx.charge(arithmetic(op, left(ctx), right(ctx), pos), pos)

    # ---- primaries --------------------------------------------------------------------------

    def primary(self) -> Fn:
        token = self.next()
        kind, value = token.kind, token.value
        if kind in ("num", "str"):
            return lambda ctx: value
        if kind == "name":
            name = str(value)
            if name in _CONSTANTS:
                constant = _CONSTANTS[name]
                return lambda ctx: constant
            if self.at("op", "("):
                return self.function_call(name, token.pos)
            pos = token.pos
            return lambda ctx: ctx.lookup(name, pos)
        if kind == "op" and value == "(":
            inner = self.expression()
            self.expect("op", ")", "')'")
            return inner
        if kind == "op" and value == "[":
            return self.list_literal()
        if kind == "op" and value == "{":
            return self.map_literal()
        raise EvalError(f"unexpected {describe(token)}: expected a value", token.pos)

    def postfix(self, node: Fn) -> Fn:
        steps = 0
        while True:
            token = self.peek()
            if token.kind != "op" or token.value not in (".", "[", "("):
                return node
            steps += 1
            if steps > MAX_PARSE_DEPTH:
                raise EvalError(
                    f"more than {MAX_PARSE_DEPTH} attribute accesses in a row", token.pos
                )
            self.next()
            if token.value == "(":
                raise EvalError(
                    "only named functions can be called, like 'json(x)'; "
                    "methods do not exist in expressions",
                    token.pos,
                )
            if token.value == ".":
                key_token = self.next()
                if key_token.kind not in ("name", "num") or isinstance(key_token.value, float):
                    raise EvalError(
                        f"expected a name after '.' but found {describe(key_token)}", key_token.pos
                    )
                node = _attr(node, key_token.value, key_token.pos)
            else:
                key = self.expression()
                self.expect("op", "]", "']'")
                node = _index(node, key, token.pos)

    def list_literal(self) -> Fn:
        items: list[Fn] = []
        while not self.at("op", "]"):
            items.append(self.expression())
            if not self.at("op", "]"):
                self.expect("op", ",", "',' or ']'")
        self.next()
        return lambda ctx: ctx.charge([item(ctx) for item in items], None)

    def map_literal(self) -> Fn:
        pairs: list[tuple[Fn, Fn]] = []
        while not self.at("op", "}"):
            key = self.expression()
            self.expect("op", ":", "':' after a map key")
            pairs.append((key, self.expression()))
            if not self.at("op", "}"):
                self.expect("op", ",", "',' or '}'")
        self.next()
        return lambda ctx: ctx.charge({to_output(k(ctx)): v(ctx) for k, v in pairs}, None)

    # ---- calls --------------------------------------------------------------------------------

    def arguments(self, builtin: Builtin, pos: int, kind: str) -> dict[str, Fn]:
        """Binds ``(a, b, name=c)`` to the builtin's parameter names, at parse time."""
        bound: dict[str, Fn] = {}
        if self.at("op", "("):
            self.next()
            while not self.at("op", ")"):
                if self.at("name") and self.peek(1).kind == "op" and self.peek(1).value == "=":
                    name_token = self.next()
                    self.next()
                    given = str(name_token.value)
                    if given not in builtin.names:
                        raise EvalError(
                            f"{kind} '{builtin.name}' has no argument '{given}' "
                            f"(it takes {builtin.describe_params()})",
                            name_token.pos,
                        )
                    name = builtin.names[given]
                    if name in bound:
                        raise EvalError(f"argument '{given}' is given twice", name_token.pos)
                else:
                    if len(bound) >= len(builtin.params):
                        raise EvalError(
                            f"{kind} '{builtin.name}' takes at most "
                            f"{len(builtin.params)} arguments",
                            self.peek().pos,
                        )
                    name = builtin.params[len(bound)]
                bound[name] = self.expression()
                if not self.at("op", ")"):
                    self.expect("op", ",", "',' or ')'")
            self.next()
        missing = [p for p in builtin.params[: builtin.required] if p not in bound]
        if missing:
            raise EvalError(
                f"{kind} '{builtin.name}' needs the argument '{missing[0].rstrip('_')}' "
                f"(it takes {builtin.describe_params()})",
                pos,
            )
        return bound

    def function_call(self, name: str, pos: int) -> Fn:
        builtin = FUNCTIONS.get(name)
        if builtin is None:
            raise EvalError(f"unknown function '{name}'{suggest(name, FUNCTIONS)}", pos)
        args = self.arguments(builtin, pos, "function")
        fn = builtin.fn
        items = tuple(args.items())

        def call(ctx: Ctx) -> Any:
            ctx.step(pos)
            kwargs = {k: v(ctx) for k, v in items}
            return _guard(fn, name, "function", pos, ctx, **kwargs)

        return call

    def filter_call(self, value: Fn) -> Fn:
        token = self.expect("name", what="a filter name")
        name, pos = str(token.value), token.pos
        builtin = FILTERS.get(name)
        if builtin is None:
            raise EvalError(f"unknown filter '{name}'{suggest(name, FILTERS)}", pos)
        args = self.arguments(builtin, pos, "filter")
        fn = builtin.fn
        items = tuple(args.items())
        source = _tolerant(value) if builtin.accepts_undefined else value
        if not items:

            def call_plain(ctx: Ctx) -> Any:
                ctx.step(pos)
                return _guard(fn, name, "filter", pos, ctx, source(ctx))

            return call_plain

        def call(ctx: Ctx) -> Any:
            ctx.step(pos)
            subject = source(ctx)
            kwargs = {k: v(ctx) for k, v in items}
            return _guard(fn, name, "filter", pos, ctx, subject, **kwargs)

        return call

    def test_call(self, value: Fn) -> Fn:
        negate = False
        if self.at("name", "not"):
            self.next()
            negate = True
        token = self.expect("name", what="a test name such as 'defined' or 'null'")
        name, pos = str(token.value), token.pos
        builtin = TESTS.get(name)
        if builtin is None:
            raise EvalError(f"unknown test '{name}'{suggest(name, TESTS)}", pos)
        args = self.arguments(builtin, pos, "test")
        fn = builtin.fn
        items = tuple(args.items())
        # 'defined' and 'null' ask about existence, so an undefined subject is an answer.
        source = _tolerant(value) if name in ("defined", "null") else value

        def call(ctx: Ctx) -> bool:
            kwargs = {k: v(ctx) for k, v in items}
            result = bool(_guard(fn, name, "test", pos, ctx, source(ctx), **kwargs))
            return result is not negate

        return call


# ---- closure builders ---------------------------------------------------------------------


def _attr(node: Fn, key: Any, pos: int) -> Fn:
    return lambda ctx: get_item(node(ctx), key, pos)


def _index(node: Fn, key: Fn, pos: int) -> Fn:
    return lambda ctx: get_item(node(ctx), key(ctx), pos)


def _tolerant(node: Fn) -> Fn:
    """Evaluates to None where ``node`` is undefined (for ``default``, ``is defined``)."""

    def run(ctx: Ctx) -> Any:
        try:
            return node(ctx)
        except UndefinedError:
            return None

    return run


def _coalesce(left: Fn, right: Fn, *, null_too: bool) -> Fn:
    def run(ctx: Ctx) -> Any:
        try:
            value = left(ctx)
        except UndefinedError:
            return right(ctx)
        if value is None and null_too:
            return right(ctx)
        return value

    return run


def _compare_or_false(test: Callable[[int], bool], left: Any, right: Any, pos: int) -> bool:
    # Pebble answers false when either side is null rather than failing.
    if left is None or right is None:
        return False
    return test(compare(left, right, pos))


def _guard(fn: Callable[..., Any], name: str, kind: str, pos: int, *args: Any, **kw: Any) -> Any:
    """Calls a builtin (``args[0]`` is the Ctx), turning its Python errors into EvalErrors."""
    try:
        return args[0].charge(fn(*args, **kw), pos)
    except EvalError as exc:
        if exc.pos is None:
            exc.pos = pos
        raise
    except _CALL_FAILURES as exc:
        raise EvalError(f"{kind} '{name}' failed: {exc}", pos) from exc


def describe(token: Token) -> str:
    if token.kind == "end":
        return "the end of the expression"
    if token.kind == "str":
        return f"the string {token.value!r}"
    return f"'{token.value}'"
