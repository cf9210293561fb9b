"""Rewriting the expressions of a Kestra 1.x flow for 2.0, token by token.

Everything outside the rewritten tokens stays as written. Two kinds of rewrite:

- everywhere: the ``json()`` function becomes ``fromJson()`` and the ``json`` filter
  ``toJson`` (Kestra 2.0 removed both 1.x names; the ``is json`` test stays);
- inside a ForEach that becomes a Loop (see :mod:`engine.flows.migrate_loops`), what 1.x
  reads from the enclosing iterations: ``taskrun.value`` -> ``item.value``,
  ``taskrun.iteration`` -> ``item.index``, ``parent.taskrun.value`` and
  ``parents[i].taskrun.value`` -> the item of the loop that value came from (``item.value``,
  ``item.parent.value``, ``item.parents[j].value``), and outputs of tasks of the current
  iteration read through their loop values (``outputs.t[taskrun.value]``,
  ``currentEachOutput(outputs.t)``) -> ``outputs.t`` (in 2.0 an iteration's outputs are its
  own). What cannot be said in 2.0 (another iteration's outputs, ``parents`` itself, a value
  that does not exist) is reported, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from engine.expressions.lexer import Token
from engine.expressions.scan import expression_tokens, token_end


class Unmigratable(Exception):
    """An expression 2.0 cannot express the same way; the message says what and why."""


@dataclass(slots=True)
class LoopContext:
    """Where an expression is, as far as loops go.

    ``loop_of_value[i]`` is, for the i-th entry of 1.x's ``parents`` list (closest first),
    how many loops up its value comes from (0: the innermost enclosing loop, 1: the next...),
    or None when that entry has no loop value. ``depth`` is the number of enclosing loops.
    ``loop_tasks`` maps the id of every task inside an enclosing loop to the number of loops
    enclosing it (its outputs are keyed by that many values in 1.x).
    """

    depth: int
    loop_of_value: list[int | None] = field(default_factory=list)
    loop_tasks: dict[str, int] = field(default_factory=dict)
    # Ids of tasks inside loops the expression is NOT in (their outputs do not exist here).
    foreign: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Edit:
    start: int
    end: int
    text: str


def rewrite(source: str, loop: LoopContext | None) -> str:
    """``source`` with its expressions rewritten; raises :class:`Unmigratable`."""
    tokens = expression_tokens(source)
    if not tokens:
        return source
    edits: list[_Edit] = []
    _json_edits(tokens, source, edits)
    if loop is not None:
        _LoopRewriter(tokens, source, loop, edits).run()
    elif _reads_loop_values(tokens):
        pass  # outside any ForEach these read nothing a migration changes
    if not edits:
        return source
    out = []
    index = 0
    for edit in sorted(edits, key=lambda e: e.start):
        if edit.start < index:
            continue  # overlapping edits: the first one wins
        out.append(source[index : edit.start])
        out.append(edit.text)
        index = edit.end
    out.append(source[index:])
    return "".join(out)


def _is(tokens: list[Token], i: int, kind: str, value: object = None) -> bool:
    if i < 0 or i >= len(tokens):
        return False
    token = tokens[i]
    return token.kind == kind and (value is None or token.value == value)


def _json_edits(tokens: list[Token], source: str, edits: list[_Edit]) -> None:
    for i, token in enumerate(tokens):
        if token.kind != "name" or token.value != "json":
            continue
        if _is(tokens, i - 1, "name", "is") or (
            _is(tokens, i - 1, "name", "not") and _is(tokens, i - 2, "name", "is")
        ):
            continue  # the `is json` test is not removed
        if _is(tokens, i - 1, "op", "|"):
            edits.append(_Edit(token.pos, token.pos + 4, "toJson"))
        elif _is(tokens, i + 1, "op", "(") and not _is(tokens, i - 1, "op", "."):
            edits.append(_Edit(token.pos, token.pos + 4, "fromJson"))


def _reads_loop_values(tokens: list[Token]) -> bool:
    return any(t.kind == "name" and t.value in ("taskrun", "parent", "parents") for t in tokens)


class _LoopRewriter:
    def __init__(
        self, tokens: list[Token], source: str, loop: LoopContext, edits: list[_Edit]
    ) -> None:
        self.t = tokens
        self.src = source
        self.loop = loop
        self.edits = edits

    def run(self) -> None:
        i = 0
        while i < len(self.t):
            token = self.t[i]
            if token.kind != "name" or _is(self.t, i - 1, "op", "."):
                i += 1
                continue
            handler = self._HANDLERS.get(str(token.value))
            if handler is None:
                i += 1
                continue
            i = handler(self, i)

    # --- reads of the iteration values ---------------------------------------------------

    def _value_ref(self, i: int) -> tuple[int, int] | None:
        """At ``i``, a 1.x reference to a loop value: (loops up, index after it), else None.
        Raises Unmigratable for a reference to something 2.0 does not have."""
        t = self.t
        if _is(t, i, "name", "taskrun"):
            if _is(t, i + 1, "op", ".") and _is(t, i + 2, "name", "value"):
                return 0, i + 3
            return None
        if _is(t, i, "name", "parent"):
            if (
                _is(t, i + 1, "op", ".")
                and _is(t, i + 2, "name", "taskrun")
                and _is(t, i + 3, "op", ".")
                and _is(t, i + 4, "name", "value")
            ):
                return self._parent_value(0), i + 5
            raise Unmigratable(
                f"`{self._text(i, i + 3)}...` reads a parent task run: only "
                "`parent.taskrun.value` has a Loop equivalent"
            )
        if _is(t, i, "name", "parents"):
            if (
                _is(t, i + 1, "op", "[")
                and _is(t, i + 2, "num")
                and _is(t, i + 3, "op", "]")
                and _is(t, i + 4, "op", ".")
                and _is(t, i + 5, "name", "taskrun")
                and _is(t, i + 6, "op", ".")
                and _is(t, i + 7, "name", "value")
            ):
                return self._parent_value(int(t[i + 2].value)), i + 8
            raise Unmigratable(
                "`parents` is read as a whole: only `parents[n].taskrun.value` has a Loop "
                "equivalent"
            )
        return None

    def _parent_value(self, n: int) -> int:
        chain = self.loop.loop_of_value
        if n >= len(chain) or chain[n] is None:
            raise Unmigratable(
                f"`parents[{n}].taskrun.value` has no loop value here (it fails in 1.x too)"
            )
        up = chain[n]
        assert up is not None
        return up

    def _item(self, up: int) -> str:
        if up == 0:
            return "item"
        if up == 1:
            return "item.parent"
        # item.parents lists the enclosing loops' items outermost first.
        return f"item.parents[{self.loop.depth - 1 - up}]"

    def _taskrun(self, i: int) -> int:
        t = self.t
        if _is(t, i + 1, "op", ".") and _is(t, i + 2, "name", "iteration"):
            self._edit(i, i + 3, "item.index")
            return i + 3
        ref = self._value_ref(i)
        if ref is None:
            return i + 1
        up, after = ref
        self._edit(i, after, f"{self._item(up)}.value")
        return after

    def _parent(self, i: int) -> int:
        ref = self._value_ref(i)
        assert ref is not None
        up, after = ref
        self._edit(i, after, f"{self._item(up)}.value")
        return after

    # --- outputs of tasks inside the loops ------------------------------------------------

    def _task_name(self, i: int) -> tuple[str, int] | None:
        """After ``outputs`` at ``i``: the task id read and the index after it."""
        t = self.t
        if _is(t, i + 1, "op", ".") and _is(t, i + 2, "name"):
            return str(t[i + 2].value), i + 3
        if _is(t, i + 1, "op", "[") and _is(t, i + 2, "str") and _is(t, i + 3, "op", "]"):
            return str(t[i + 2].value), i + 4
        return None

    def _subscript(self, i: int) -> tuple[int | None, int] | None:
        """``[<loop value>]`` at ``i``: (loops up, index after), (None, after) for another
        subscript, None when there is no subscript."""
        t = self.t
        if not _is(t, i, "op", "["):
            return None
        ref = self._value_ref(i + 1) if i + 1 < len(t) else None
        if ref is not None and _is(t, ref[1], "op", "]"):
            return ref[0], ref[1] + 1
        return None, i + 1

    def _outputs(self, i: int) -> int:
        found = self._task_name(i)
        if found is None:
            return i + 1
        name, after = found
        if name in self.loop.foreign:
            raise Unmigratable(
                f"outputs of `{name}` are read here, but `{name}` runs in the iterations of a "
                "Loop this expression is not in (declare them as the Loop's `outputs`)"
            )
        levels = self.loop.loop_tasks.get(name)
        if levels is None:
            return after  # a task outside the loops: the iteration sees it as it is
        # 1.x keys its outputs by the values of its `levels` enclosing loops, outermost first.
        index = after
        for level in range(levels):
            sub = self._subscript(index)
            if sub is None or sub[0] is None:
                raise Unmigratable(
                    f"outputs of `{name}` are read by a key that is not the current "
                    "iteration's value: an iteration only sees its own task outputs in 2.0"
                )
            expected = levels - 1 - level  # loops up from the innermost enclosing one
            if sub[0] != expected + (self.loop.depth - levels):
                raise Unmigratable(
                    f"outputs of `{name}` are read with another loop's value as the key"
                )
            index = sub[1]
        self._edit(i, index, f"outputs.{name}" if _plain(name) else f"outputs['{name}']")
        return index

    def _current_each(self, i: int) -> int:
        t = self.t
        if not (_is(t, i + 1, "op", "(") and _is(t, i + 2, "name", "outputs")):
            raise Unmigratable("currentEachOutput() is not given outputs.<task>")
        found = self._task_name(i + 2)
        if found is None or not _is(t, found[1], "op", ")"):
            raise Unmigratable("currentEachOutput() is not given outputs.<task>")
        name = found[0]
        if name not in self.loop.loop_tasks:
            raise Unmigratable(f"currentEachOutput(outputs.{name}): `{name}` is not in a loop")
        self._edit(i, found[1] + 1, f"outputs.{name}" if _plain(name) else f"outputs['{name}']")
        return found[1] + 1

    def _tasks(self, i: int) -> int:
        found = self._task_name(i)
        if found is not None and (
            found[0] in self.loop.loop_tasks or found[0] in self.loop.foreign
        ):
            raise Unmigratable(
                f"`tasks.{found[0]}` reads the state of a task inside a loop by its values"
            )
        return i + 1

    _HANDLERS: ClassVar[dict[str, Callable[[_LoopRewriter, int], int]]] = {
        "taskrun": _taskrun,
        "parent": _parent,
        "parents": _parent,
        "outputs": _outputs,
        "currentEachOutput": _current_each,
        "tasks": _tasks,
    }

    # --- edits ------------------------------------------------------------------------------

    def _text(self, start: int, end: int) -> str:
        end = min(end, len(self.t))
        return self.src[self.t[start].pos : token_end(self.t[end - 1], self.src)]

    def _edit(self, start: int, end: int, text: str) -> None:
        self.edits.append(_Edit(self.t[start].pos, token_end(self.t[end - 1], self.src), text))


def _plain(name: str) -> bool:
    return name.replace("_", "a").isalnum() and not name[0].isdigit()


def outside_reads(source: str, inside: frozenset[str]) -> list[str]:
    """Ids of tasks in ``inside`` (tasks of a loop) that ``source`` reads the outputs or
    state of (``outputs.t``, ``tasks.t``, ``currentEachOutput``), for an expression outside
    that loop: 2.0 has no such thing unless the Loop declares ``outputs``."""
    tokens = expression_tokens(source)
    out = []
    for i, token in enumerate(tokens):
        if token.kind != "name" or token.value not in ("outputs", "tasks"):
            continue
        if _is(tokens, i - 1, "op", "."):
            continue
        if _is(tokens, i + 1, "op", ".") and _is(tokens, i + 2, "name"):
            name = str(tokens[i + 2].value)
        elif _is(tokens, i + 1, "op", "[") and _is(tokens, i + 2, "str"):
            name = str(tokens[i + 2].value)
        else:
            continue
        if name in inside:
            out.append(name)
    return out
