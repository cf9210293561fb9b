"""Reading a template's tokens without rendering it: which functions, filters and variables
it uses, and where (offsets into the template's text).

Flow tools need this, not the renderer: the dialect of a flow (``json()`` is Kestra 1.x,
``loopOutputs()`` Kestra 2.0) and ``headwater migrate``, which rewrites expressions token by
token so that everything around them stays as written. A template that does not tokenize
has no tokens here (the flow's validation reports it).
"""

from __future__ import annotations

from engine.expressions.lexer import Token, tokenize_template
from engine.expressions.runtime import EvalError


def expression_tokens(source: str) -> list[Token]:
    """Every token of the ``{{ }}`` and ``{% %}`` parts of ``source``, in order (``end``
    tokens excluded); positions are offsets into ``source``."""
    if "{{" not in source and "{%" not in source:
        return []
    try:
        segments = tokenize_template(source)
    except (EvalError, RecursionError):
        return []
    return [t for s in segments if s.kind != "text" for t in s.tokens if t.kind != "end"]


def token_end(token: Token, source: str) -> int:
    """The offset just after ``token`` in ``source``."""
    if token.kind == "str":
        quote = source[token.pos]
        index = token.pos + 1
        while index < len(source) and source[index] != quote:
            index += 2 if source[index] == "\\" else 1
        return index + 1
    if token.kind == "num":
        index = token.pos
        while index < len(source) and (source[index].isdigit() or source[index] == "."):
            index += 1
        return index
    return token.pos + len(str(token.value))


def _is(token: Token | None, kind: str, value: str) -> bool:
    return token is not None and token.kind == kind and token.value == value


def function_calls(tokens: list[Token], name: str) -> list[int]:
    """Indexes (into ``tokens``) of calls of the function ``name`` — not a filter, a test or
    a member of the same name."""
    out = []
    for i, token in enumerate(tokens):
        if token.kind != "name" or token.value != name:
            continue
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        before = tokens[i - 1] if i else None
        if not _is(after, "op", "("):
            continue
        if _is(before, "op", "|") or _is(before, "op", ".") or _is(before, "name", "is"):
            continue
        if _is(before, "name", "not") and i > 1 and _is(tokens[i - 2], "name", "is"):
            continue
        out.append(i)
    return out


def filter_uses(tokens: list[Token], name: str) -> list[int]:
    """Indexes of the filter ``name`` (``value | name``)."""
    return [
        i
        for i, token in enumerate(tokens)
        if token.kind == "name" and token.value == name and i and _is(tokens[i - 1], "op", "|")
    ]


def uses_function(source: str, name: str) -> bool:
    return bool(function_calls(expression_tokens(source), name))


def uses_filter(source: str, name: str) -> bool:
    return bool(filter_uses(expression_tokens(source), name))
