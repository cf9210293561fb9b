"""Deploying and deleting a flow: one hw.flows record, numbered from the flow store.

The one path every writer of flows takes (the API's ``/api/v1/flows``, and tasks that deploy
flows from a worker: :mod:`engine.worker.flows`):

- a deploy is validated by the caller (:func:`engine.flows.load_flow`), numbered one past the
  highest revision the store has seen, produced to hw.flows and acknowledged by the broker,
  then applied to the caller's store at once (read-your-writes: its follower sees the record a
  hop later). Re-deploying the source of the current revision writes nothing;
- a delete produces a deletion record carrying the current revision.

The revision comes from the caller's store, so two writers deploying the same flow at the same
instant can both pick the same number; the later record wins on the compacted topic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from engine.bus.wire import (
    FlowRecord,
    KeyValue,
    decode_flow,
    flow_deleted_record,
    flow_deployed_record,
)
from engine.flows.loader import flow_to_dict
from engine.flows.store import FlowStore
from schemas.flow import Flow

# Writes one record to hw.flows and returns once the broker acknowledged it.
Produce = Callable[[KeyValue], Awaitable[None]]


async def deploy_flow(
    store: FlowStore, produce: Produce, source: str, flow: Flow, *, draft: bool = False
) -> FlowRecord:
    """Deploy ``source`` (already loaded as ``flow``); the record now current. A ``draft``
    revision is numbered and kept like any other but never executes (Kestra 2.0)."""
    current = store.record(flow.namespace, flow.id, drafts=draft)
    if current is not None and current.source == source and current.draft == draft:
        return current
    seen = [r.revision for r in store.revisions(flow.namespace, flow.id)]
    revision = max(seen, default=0) + 1
    kv = flow_deployed_record(
        flow.namespace, flow.id, revision, source, flow_to_dict(flow), draft=draft
    )
    await produce(kv)
    record = decode_flow(kv[1])
    store.apply(record)
    return record


async def delete_flow(
    store: FlowStore, produce: Produce, namespace: str, flow_id: str
) -> FlowRecord | None:
    """Delete the flow; None when it does not exist (or is already deleted)."""
    current = store.record(namespace, flow_id)
    if current is None:
        return None
    kv = flow_deleted_record(namespace, flow_id, current.revision)
    await produce(kv)
    record = decode_flow(kv[1])
    store.apply(record)
    return record
