"""Kestra's legacy state store tasks: ``io.kestra.plugin.core.state.Set``, ``Get``, ``Delete``.

What Kestra 0.20 does (``plugin/core/state/AbstractState``, ``Set``, ``Get``, ``Delete``,
``storages/StateStore``, ``utils/Slugify``, ``utils/Hashing``), ported here:

- Properties of all three: ``name`` (default ``default``), ``namespace`` (default false: the
  state belongs to the flow; true: to the whole namespace), ``taskrunValue`` (default true:
  inside a loop, each iteration value has its own state).
- The state is a JSON map kept in the flow namespace's key-value store under
  ``<slug(flowId)>_states_tasks-states_<name>[_<hash(taskrun value)>]`` (the flow prefix is
  dropped when ``namespace: true``; the hash is Guava's murmur3_128 of the value, as hex), so
  ``kv()`` and the KV tasks see the same entries as in Kestra.
- ``Set`` (``data``: a map, rendered): merges ``data`` into the current map (nested maps merged
  recursively, a null value keeps the old one) and stores it; outputs ``count`` (entries after
  the merge) and ``key`` (the KV key).
- ``Get`` (``errorOnMissing``, default false): outputs ``count`` and ``data`` (``{}`` when
  there is no state, unless ``errorOnMissing`` fails the task).
- ``Delete`` (``errorOnMissing``, default false): outputs ``deleted``; with ``errorOnMissing``
  a missing state fails "Unable to find the state file '<name>'".

These are deprecated in Kestra (the KV tasks replace them) and kept for old flows.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from typing import Any, ClassVar, Literal

from pydantic import Field

from executors.base import TaskContext, TaskError, as_bool
from executors.plugin import TaskPlugin
from schemas.flow.common import BoolOrExpr, Str

_STATE = "tasks-states"
_MASK = (1 << 64) - 1


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _MASK


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _MASK
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _MASK
    k ^= k >> 33
    return k


def murmur3_128_hex(text: str) -> str:
    """Guava's ``Hashing.murmur3_128().hashString(text, UTF_8).toString()`` (seed 0)."""
    data = text.encode("utf-8")
    c1, c2 = 0x87C37B91114253D5, 0x4CF5AD432745937F
    h1 = h2 = 0
    blocks = len(data) // 16
    for i in range(blocks):
        k1, k2 = struct.unpack_from("<QQ", data, i * 16)
        k1 = (_rotl((k1 * c1) & _MASK, 31) * c2) & _MASK
        h1 ^= k1
        h1 = (_rotl(h1, 27) + h2) & _MASK
        h1 = (h1 * 5 + 0x52DCE729) & _MASK
        k2 = (_rotl((k2 * c2) & _MASK, 33) * c1) & _MASK
        h2 ^= k2
        h2 = (_rotl(h2, 31) + h1) & _MASK
        h2 = (h2 * 5 + 0x38495AB5) & _MASK
    tail = data[blocks * 16 :]
    k1 = k2 = 0
    for i in range(len(tail) - 1, 7, -1):
        k2 ^= tail[i] << ((i - 8) * 8)
    if len(tail) > 8:
        k2 = (_rotl((k2 * c2) & _MASK, 33) * c1) & _MASK
        h2 ^= k2
    for i in range(min(len(tail), 8) - 1, -1, -1):
        k1 ^= tail[i] << (i * 8)
    if tail:
        k1 = (_rotl((k1 * c1) & _MASK, 31) * c2) & _MASK
        h1 ^= k1
    h1 ^= len(data)
    h2 ^= len(data)
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    h1, h2 = _fmix(h1), _fmix(h2)
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    return struct.pack("<QQ", h1, h2).hex()


def slugify(text: str) -> str:
    """Kestra's ``Slugify.of``."""
    text = re.sub(r"\s", "-", text)
    text = unicodedata.normalize("NFD", text)
    text = re.sub(r"[^\w-]", "", text, flags=re.ASCII).replace("_", "-")
    text = re.sub(r"-{2,}", "-", text).strip("-")
    return text.lower()


def merge(current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Kestra's ``MapUtils.merge``: maps merged recursively, lists concatenated, a null new
    value keeps the old one, anything else replaces it."""
    out = dict(current)
    for key, value in new.items():
        old = out.get(key)
        if value is None:
            continue
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = merge(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            out[key] = [*old, *value]
        else:
            out[key] = value
    return out


class _State(TaskPlugin):
    family: ClassVar[str] = "state store (legacy)"

    name: Str = "default"
    namespace: BoolOrExpr = False
    taskrunValue: BoolOrExpr = True

    def _key(self, ctx: TaskContext) -> tuple[str, str]:
        """(KV namespace, KV key) of this state (StateStore.statePrefix)."""
        if ctx.namespace is None or ctx.flow_id is None:
            raise TaskError("the state store needs the flow's namespace and id")
        name = ctx.render_str(self.name) or "default"
        key = f"states_{_STATE}_{name}"
        if not as_bool(ctx.render(self.namespace)):
            key = f"{slugify(ctx.flow_id)}_{key}"
        if as_bool(ctx.render(self.taskrunValue)):
            taskrun = ctx.variables.get("taskrun")
            value = taskrun.get("value") if isinstance(taskrun, dict) else None
            if value is not None:
                key = f"{key}_{murmur3_128_hex(str(value))}"
        return ctx.namespace, key

    async def _current(self, ctx: TaskContext) -> tuple[bool, dict[str, Any]]:
        if ctx.kv is None:
            raise TaskError("this worker has no key-value store")
        namespace, key = self._key(ctx)
        found, value = await ctx.kv.get(namespace, key)
        if not found:
            return False, {}
        if not isinstance(value, dict):
            raise TaskError(f"the state under '{key}' is not a JSON object")
        return True, value


class StateSet(_State):
    """Merge ``data`` into a flow's (or namespace's) stored state map (deprecated: use KV)."""

    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.states.Set",)

    type: Literal["io.kestra.plugin.core.state.Set"]
    data: dict[str, Any] | None = Field(default=None)

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        rendered = ctx.render(self.data or {})
        if not isinstance(rendered, dict):
            raise TaskError("property 'data' must be a map")
        _, current = await self._current(ctx)
        merged = merge(current, rendered)
        namespace, key = self._key(ctx)
        assert ctx.kv is not None
        await ctx.kv.set(namespace, key, merged, overwrite=True, ttl_seconds=None)
        return {"count": len(merged), "key": key}


class StateGet(_State):
    """Read a flow's (or namespace's) stored state map (deprecated: use KV)."""

    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.states.Get",)

    type: Literal["io.kestra.plugin.core.state.Get"]
    errorOnMissing: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        found, data = await self._current(ctx)
        if not found and as_bool(ctx.render(self.errorOnMissing)):
            _, key = self._key(ctx)
            raise TaskError(f"State {key} not found")
        return {"count": len(data), "data": data}


class StateDelete(_State):
    """Delete a flow's (or namespace's) stored state map (deprecated: use KV)."""

    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.states.Delete",)

    type: Literal["io.kestra.plugin.core.state.Delete"]
    errorOnMissing: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        if ctx.kv is None:
            raise TaskError("this worker has no key-value store")
        namespace, key = self._key(ctx)
        deleted = await ctx.kv.delete(namespace, key)
        if not deleted and as_bool(ctx.render(self.errorOnMissing)):
            raise TaskError(f"Unable to find the state file '{ctx.render_str(self.name)}'")
        return {"deleted": deleted}


PLUGINS: list[type[TaskPlugin]] = [StateSet, StateGet, StateDelete]
