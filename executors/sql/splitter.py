"""Kestra's SQL statement splitter (``SqlSplitter.getQueries``) and parameter binding.

:func:`split` cuts a script at top-level semicolons, as Kestra does: not inside quotes
(``'...'`` with ``''``, ``"..."``, MySQL backticks, SQL Server brackets), comments (``--``,
``/* */``, kept with their statement), PostgreSQL dollar quotes (``$$ ... $$``,
``$tag$ ... $tag$``), ``BEGIN ... END;`` blocks (``END IF/LOOP/CASE`` do not close one;
Oracle's ``DECLARE ... BEGIN`` is one block) and ``CREATE [OR REPLACE] PACKAGE | PROCEDURE |
FUNCTION | TRIGGER | TYPE`` units, which end at their final ``END ...;``. The trailing ``;`` of a
statement is dropped, except after a ``DO $$ ... $$`` block. Blank statements are dropped.

:func:`bind_named` turns Kestra's ``:name`` placeholders into the driver's (``%s`` or ``?``)
with the values in order. Kestra replaces every ``:\\w+`` of the text; here names inside string
literals, quoted identifiers and comments, and PostgreSQL's ``::type`` casts, stay as they are
(in Kestra a ``::int`` cast in a parameterized query breaks it). A name missing from
``parameters`` binds NULL, as JDBC's ``setObject(i, map.get(name))`` does. :func:`bind_qmarks`
does the same for JDBC's ``?`` (Batch's statement).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

Placeholder = Literal["format", "qmark"]

_WORD = re.compile(r"[A-Za-z0-9_]")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z0-9_]*)\$")
_PLSQL_UNITS = frozenset({"PACKAGE", "PROCEDURE", "FUNCTION", "TRIGGER", "TYPE"})


class _Blocks:
    """The BEGIN/END and PL/SQL unit state machine of Kestra's splitter (``flushToken``)."""

    def __init__(self) -> None:
        self.depth = 0
        self.saw_end = False
        self.declare = False
        self.unit_depth = 0
        self.create = self.or_ = False
        self.last = ""

    def token(self, word: str) -> None:
        t = word.upper()
        self.last = t
        if t == "CREATE":
            self.create, self.or_ = True, False
        elif self.create and t == "OR":
            self.or_ = True
        elif self.create and self.or_ and t == "REPLACE":
            pass
        elif self.create:
            if t in _PLSQL_UNITS:
                self.unit_depth += 1
            self.create = self.or_ = False
        if t == "DECLARE":
            self.depth += 1
            self.declare = True
            self.saw_end = False
        elif t == "BEGIN":
            if self.declare:
                self.declare = False
            else:
                self.depth += 1
            self.saw_end = False
        elif t == "END":
            self.saw_end = True
        elif self.saw_end and t in ("IF", "LOOP", "CASE"):
            self.saw_end = False


def split(sql: str) -> list[str]:
    """The statements of ``sql`` (see the module docstring)."""
    out: list[str] = []
    cur: list[str] = []
    word: list[str] = []
    st = _Blocks()
    do_block = False
    i, n = 0, len(sql)

    def flush_word() -> None:
        if word:
            st.token("".join(word))
            word.clear()

    def emit(text: str) -> None:
        if text:
            out.append(text)

    while i < n:
        c = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        if c == "-" and nxt == "-":
            flush_word()
            end = sql.find("\n", i)
            end = n if end < 0 else end + 1
            cur.append(sql[i:end])
            i = end
            continue
        if c == "/" and nxt == "*":
            flush_word()
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            cur.append(sql[i:end])
            i = end
            continue
        if c in "'\"`[":
            flush_word()
            close = "]" if c == "[" else c
            j = i + 1
            while j < n:
                if sql[j] == close:
                    if j + 1 < n and sql[j + 1] == close:
                        j += 2
                        continue
                    break
                j += 1
            cur.append(sql[i : j + 1])
            i = j + 1
            continue
        if c == "$":
            match = _DOLLAR_TAG.match(sql, i)
            if match:
                flush_word()
                if st.last == "DO":
                    do_block = True
                tag = match.group()
                end = sql.find(tag, match.end())
                end = n if end < 0 else end + len(tag)
                cur.append(sql[i:end])
                i = end
                continue
        cur.append(c)
        i += 1
        if _WORD.match(c):
            word.append(c)
            continue
        flush_word()
        if c != ";":
            if not c.isspace():
                st.saw_end = False
            continue
        if st.unit_depth > 0 and st.saw_end:
            st.unit_depth -= 1
            st.saw_end = False
            if st.unit_depth == 0 and st.depth == 0:
                emit("".join(cur).strip())
                cur.clear()
                do_block = st.declare = False
                continue
        if st.depth > 0 and st.saw_end:
            st.depth -= 1
            st.saw_end = False
            if st.depth == 0:
                emit("".join(cur).strip())
                cur.clear()
                do_block = st.declare = False
                continue
        else:
            st.saw_end = False
        if st.depth == 0 and st.unit_depth == 0:
            text = "".join(cur).strip()
            if text:
                emit(text if do_block else text[:-1].rstrip())
            cur.clear()
            do_block = False
    emit("".join(cur).strip())
    return [s for s in out if s.strip() and s.strip() != ";"]


def count_statements(sql: str) -> int:
    """How many statements Kestra counts in a Query's SQL (``SET file_search_path`` is free)."""
    return sum(1 for s in split(sql) if not s.lower().startswith("set file_search_path"))


def _scan(sql: str, on_token: Any) -> str:
    """``sql`` with each placeholder-ish token outside quotes and comments passed through
    ``on_token(kind, text) -> replacement`` (kinds: ``name``, ``qmark``, ``percent``)."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        if (c == "-" and nxt == "-") or (c == "/" and nxt == "*"):
            end = sql.find("\n", i) if c == "-" else sql.find("*/", i + 2)
            end = n if end < 0 else end + (1 if c == "-" else 2)
            out.append(sql[i:end].replace("%", on_token("percent", "%")))
            i = end
            continue
        if c in "'\"`":
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i : j + 1].replace("%", on_token("percent", "%")))
            i = j + 1
            continue
        if c == "$":
            match = _DOLLAR_TAG.match(sql, i)
            if match:
                end = sql.find(match.group(), match.end())
                end = n if end < 0 else end + len(match.group())
                out.append(sql[i:end].replace("%", on_token("percent", "%")))
                i = end
                continue
        if c == ":" and nxt == ":":
            out.append("::")
            i += 2
            continue
        if c == ":" and nxt and _WORD.match(nxt):
            j = i + 1
            while j < n and _WORD.match(sql[j]):
                j += 1
            out.append(on_token("name", sql[i + 1 : j]))
            i = j
            continue
        if c == "?":
            out.append(on_token("qmark", "?"))
        elif c == "%":
            out.append(on_token("percent", "%"))
        else:
            out.append(c)
        i += 1
    return "".join(out)


def bind_named(
    sql: str, parameters: Mapping[str, Any] | None, style: Placeholder
) -> tuple[str, list[Any] | None]:
    """(driver SQL, values) for Kestra's ``:name`` parameters; values None without parameters
    (the SQL is then sent as written, so ``%`` needs no doubling)."""
    if parameters is None:
        return sql, None
    values: list[Any] = []

    def token(kind: str, text: str) -> str:
        if kind == "name":
            values.append(parameters.get(text))
            return "%s" if style == "format" else "?"
        if kind == "percent":
            return "%%" if style == "format" else "%"
        return text

    return _scan(sql, token), values


def bind_qmarks(sql: str, style: Placeholder) -> tuple[str, int]:
    """(driver SQL, number of placeholders) of a JDBC statement with ``?`` placeholders."""
    count = 0

    def token(kind: str, text: str) -> str:
        nonlocal count
        if kind == "qmark":
            count += 1
            return "%s" if style == "format" else "?"
        if kind == "percent":
            return "%%" if style == "format" else "%"
        return ":" + text if kind == "name" else text

    return _scan(sql, token), count
