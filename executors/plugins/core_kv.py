"""Kestra's newer core ``kv`` tasks: ``GetKeys``, ``Put`` and ``PurgeKV`` (Set, Get and Delete
are in :mod:`executors.core`), on the worker's KV store (:mod:`engine.stores.kv`).

From Kestra 1.x's classes:

- ``GetKeys``: ``namespace`` (the flow's), ``prefix``; output ``keys``: the keys of the
  namespace that have not expired, starting with ``prefix``, sorted.
- ``Put``: ``key``, ``value``, ``namespace`` (the flow's), ``errorOnMissing`` (false). The value
  is merged into the current one: two maps are deep-merged; a list of ``{key, value}`` entries
  patches the current map (a dotted key reaches a nested map: ``a.b``), and a single
  ``{value}`` entry without a key replaces the whole value; anything else replaces it. The
  entry keeps its expiry. Kestra's errors: "`value` entries without `key` can only be used as
  a single replacement item.", "Cannot mix keyed and non-keyed entries in `value`.", "Cannot
  apply keyed `value` updates to a non-JSON existing KV value.".
- ``PurgeKV``: ``namespaces`` or ``namespacePattern`` (a ``*``/``?`` wildcard; not both),
  ``includeChildNamespaces`` (true: ``company`` also means ``company.team``; Kestra compares
  the names as plain prefixes), ``keyPattern`` (wildcard), ``behavior`` (``{type: key,
  expiredOnly: true}``: only expired keys; ``expiredOnly: false``: every matching key;
  ``{type: version, ...}``: old versions, which Headwater does not keep, so only
  ``keepAmount: 0`` deletes anything); the deprecated ``expiredOnly``, when set, overrides
  ``behavior`` with ``{type: key, expiredOnly: <it>}``. Output ``size``. The namespaces
  considered are those holding keys (Kestra lists the namespaces of flows; a namespace with
  keys and no flow is purged here too when it matches).
"""

from __future__ import annotations

import fnmatch
from datetime import datetime
from typing import Any, ClassVar, Literal

import orjson

from engine.dotted import nest_dotted
from executors.base import KVStore, TaskContext, TaskError, to_text
from executors.plugin import TaskPlugin, render_bool, render_str
from schemas.flow.common import BoolOrExpr, FlowModel, IntOrExpr, Str


class _KvTask(TaskPlugin):
    family: ClassVar[str] = "core"

    def store(self, ctx: TaskContext) -> KVStore:
        if ctx.kv is None:
            raise TaskError(f"{self.type_name()} needs a KV store, and this worker has none")
        return ctx.kv

    @staticmethod
    def target(ctx: TaskContext, namespace: Any) -> str:
        name = render_str(ctx, namespace, "namespace") or ctx.namespace
        if not name:
            raise TaskError("the KV namespace is unknown: set 'namespace' on the task")
        return name


class GetKeys(_KvTask):
    """List the keys of a namespace's KV store (optionally by prefix)."""

    short: ClassVar[str | None] = "kv_get_keys"

    type: Literal["io.kestra.plugin.core.kv.GetKeys"]
    prefix: Str | None = None
    namespace: Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        store = self.store(ctx)
        namespace = self.target(ctx, self.namespace)
        prefix = render_str(ctx, self.prefix, "prefix") or ""
        now = ctx.clock()
        keys = [
            key
            for ns, key, expires in await store.list_entries()
            if ns == namespace and key.startswith(prefix) and (expires is None or expires > now)
        ]
        return {"keys": keys}


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


def _is_entry_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(item, dict) and "value" in item and set(item) <= {"key", "value"}
            for item in value
        )
    )


def merge(existing: Any, new: Any) -> Any:
    """Kestra's ``Put.mergeValues``."""
    if _is_entry_list(new):
        replace: Any = None
        replaced = False
        updates: dict[str, Any] = {}
        for entry in new:
            if "key" not in entry or entry["key"] is None:
                if replaced or updates or len(new) > 1:
                    raise TaskError(
                        "`value` entries without `key` can only be used as a single "
                        "replacement item."
                    )
                replaced, replace = True, entry["value"]
                continue
            if replaced:
                raise TaskError("Cannot mix keyed and non-keyed entries in `value`.")
            key = entry["key"]
            if not isinstance(key, str) or not key.strip():
                raise TaskError("Each keyed `value` entry must have a non-empty string `key`.")
            updates[key] = entry["value"]
        if replaced:
            return replace
        nested = nest_dotted(updates)
        if existing is None:
            return nested
        if not isinstance(existing, dict):
            raise TaskError("Cannot apply keyed `value` updates to a non-JSON existing KV value.")
        return deep_merge(existing, nested)
    if isinstance(existing, dict) and isinstance(new, dict):
        return deep_merge(existing, new)
    return new


class Put(_KvTask):
    """Merge a value into a KV entry (maps deep-merged, keyed entries patched)."""

    short: ClassVar[str | None] = "kv_put"

    type: Literal["io.kestra.plugin.core.kv.Put"]
    key: Str
    value: Any
    namespace: Str | None = None
    errorOnMissing: BoolOrExpr | None = False

    async def run(self, ctx: TaskContext) -> None:
        store = self.store(ctx)
        namespace = self.target(ctx, self.namespace)
        key = render_str(ctx, self.key, "key", required=True) or ""
        value = ctx.render(self.value)
        found, current = await store.get(namespace, key)
        if not found and render_bool(ctx, self.errorOnMissing, "errorOnMissing"):
            raise TaskError(
                f"No value found for key '{key}' in namespace '{namespace}' and "
                "`errorOnMissing` is set to true"
            )
        merged = merge(current if found else None, value)
        await store.set(namespace, key, merged, overwrite=True, ttl_seconds=None, keep_expiry=True)


class PurgeBehavior(FlowModel):
    """Kestra's ``KvPurgeBehavior``: ``key`` (expiredOnly) or ``version`` (before, keepAmount)."""

    type: Literal["key", "version"]
    expiredOnly: BoolOrExpr | None = True
    before: Str | None = None
    keepAmount: IntOrExpr | None = None


class PurgeKV(_KvTask):
    """Delete the (expired) keys of the KV stores of some namespaces."""

    short: ClassVar[str | None] = "kv_purge"

    type: Literal["io.kestra.plugin.core.kv.PurgeKV"]
    keyPattern: Str | None = None
    namespaces: list[Str] | Str | None = None
    namespacePattern: Str | None = None
    behavior: PurgeBehavior | None = None
    includeChildNamespaces: BoolOrExpr | None = True
    # Deprecated in Kestra 1.1 (still in its blueprints): when set, it overrides `behavior`.
    expiredOnly: BoolOrExpr | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        store = self.store(ctx)
        listed = self._namespaces(ctx)
        pattern = render_str(ctx, self.namespacePattern, "namespacePattern") or None
        if listed and pattern:
            raise TaskError(
                "Properties `namespaces` and `namespacePattern` can't be used at the same time"
                " — use one or the other."
            )
        children = render_bool(ctx, self.includeChildNamespaces, "includeChildNamespaces", True)
        key_pattern = render_str(ctx, self.keyPattern, "keyPattern") or None
        behavior = self.behavior or PurgeBehavior(type="key")
        if self.expiredOnly is not None:
            behavior = PurgeBehavior(type="key", expiredOnly=self.expiredOnly)
        mode = self._mode(ctx, behavior)
        now = ctx.clock()
        doomed: list[tuple[str, str]] = []
        for namespace, key, expires in await store.list_entries():
            if pattern and not fnmatch.fnmatchcase(namespace, pattern):
                continue
            if listed and not any(
                namespace == ns or (children and namespace.startswith(ns + ".")) for ns in listed
            ):
                continue
            if key_pattern and not fnmatch.fnmatchcase(key, key_pattern):
                continue
            if mode == "all" or (mode == "expired" and _expired(expires, now)):
                doomed.append((namespace, key))
        touched = sorted({ns for ns, _ in doomed})
        ctx.log("INFO", f"purging {len(touched)} namespaces: {touched}")
        for namespace, key in doomed:
            await store.delete(namespace, key)
        ctx.log("INFO", f"purged {len(doomed)} keys")
        return {"size": len(doomed)}

    def _namespaces(self, ctx: TaskContext) -> list[str]:
        rendered = ctx.render(self.namespaces)
        if rendered is None:
            return []
        if isinstance(rendered, str):
            rendered = orjson.loads(rendered) if rendered.strip().startswith("[") else [rendered]
        if not isinstance(rendered, list):
            raise TaskError(f"property 'namespaces': expected a list, got {rendered!r}")
        return [to_text(ns) for ns in rendered if to_text(ns)]

    @staticmethod
    def _mode(ctx: TaskContext, behavior: PurgeBehavior) -> str:
        """all, expired (keys) or none."""
        if behavior.type == "key":
            expired_only = render_bool(ctx, behavior.expiredOnly, "behavior.expiredOnly", True)
            return "expired" if expired_only else "all"
        # One version per key is kept: only "keep none" (and no date) deletes anything.
        keep = ctx.render(behavior.keepAmount)
        keep_none = keep is not None and to_text(keep).strip() == "0"
        return "all" if behavior.before is None and keep_none else "none"


def _expired(expires: datetime | None, now: datetime) -> bool:
    return expires is not None and expires <= now


PLUGINS = [GetKeys, Put, PurgeKV]
