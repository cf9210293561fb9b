"""What the namespace pages read: the namespaces (from the deployed flows) and a namespace's KV
pairs. Its files come from the API's own ``/api/v1/namespaces/{ns}/files`` routes, when the
server has them (``files`` in the list says so).

The KV store's truth is the compacted ``hw.kv`` topic (:mod:`engine.stores.kv`), not Postgres:
a listing reads it from the start with the workers' follower, behind the same read barrier a
``kv.Get`` uses, so it shows every write acknowledged before the request. Reading the whole
topic per request is fine for a page someone opens (KV traffic is small); a missing topic means
no worker ever started, so no key was ever written, and it is not created from here (the
workers create it with its one partition).
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Request

from engine.api.problems import ProblemError, problem_responses
from engine.api.services import ApiServices
from engine.bus.admin import BusAdmin
from engine.dashboard.models import KvEntry, KvList, NamespaceList, NamespaceSummary
from engine.errors import BusError
from engine.stores.kv import KafkaKV, kv_topic
from executors.base import TaskError

# The route that tells whether this server serves namespace files.
_FILES_ROUTE = "/api/v1/namespaces/{namespace}/files/directory"


def serves_files(request: Request) -> bool:
    return _FILES_ROUTE in request.app.openapi().get("paths", {})


async def read_kv(services: ApiServices, namespace: str) -> list[KvEntry]:
    """The live (not expired, not deleted) pairs of one namespace, sorted by key."""
    producer = services.require_bus()
    kafka = services.settings.kafka
    if kv_topic(kafka) not in await BusAdmin(kafka).list_topics():
        return []
    store = KafkaKV(kafka, producer, group_id=f"{kafka.topic_prefix}kv-dashboard")
    await store.start()
    follower = asyncio.create_task(store.run())
    try:
        await store.sync()
        pairs = [(key, store.peek(ns, key)) for ns, key in store.keys() if ns == namespace]
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await store.close()
    return [KvEntry(key=key, value=value) for key, (found, value) in sorted(pairs) if found]


def router(services: ApiServices) -> APIRouter:
    api = APIRouter(
        prefix="/dashboard/namespaces", tags=["dashboard"], responses=problem_responses(401)
    )

    @api.get(
        "",
        response_model=NamespaceList,
        summary="Namespaces of the deployed flows, with their flow counts",
        responses=problem_responses(503),
    )
    async def list_namespaces(request: Request) -> NamespaceList:
        rows = await services.fetch(
            "SELECT namespace, count(*) AS flows FROM flows WHERE NOT deleted"
            " GROUP BY namespace ORDER BY namespace"
        )
        return NamespaceList(
            namespaces=[NamespaceSummary(namespace=r["namespace"], flows=r["flows"]) for r in rows],
            files=serves_files(request),
        )

    @api.get(
        "/{namespace}/kv",
        response_model=KvList,
        summary="The namespace's KV pairs (read from hw.kv behind a read barrier)",
        responses=problem_responses(503),
    )
    async def list_kv(namespace: str) -> KvList:
        try:
            entries = await read_kv(services, namespace)
        except (TaskError, BusError) as exc:
            raise ProblemError(
                503, "KV store unavailable", str(exc), headers={"Retry-After": "5"}
            ) from exc
        return KvList(namespace=namespace, entries=entries)

    return api
