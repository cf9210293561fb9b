"""``/api/v1/flows``: deploy YAML (hw.flows), read revisions and search (the read model).

A deploy validates with :func:`engine.flows.load_flow` (every problem, with line and column,
as a 422 problem), numbers the revision from the flow store (the in-memory view of hw.flows),
waits for the broker's ack and applies the record to the local store at once, so an execution
can be started right after. Re-posting an unchanged source makes no new revision.
``?draft=true`` saves a Kestra 2.0 draft revision: numbered and listed with the others
(``draft: true``), never executed (the flow's current definition stays the latest revision
that is not a draft).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response

from engine.api.models import (
    FlowOut,
    FlowPage,
    FlowProblemOut,
    FlowRevisionOut,
    FlowSummary,
    FlowValidation,
)
from engine.api.problems import ProblemError, problem_responses
from engine.api.services import ApiServices
from engine.bus.wire import FlowRecord, KeyValue
from engine.flows import FlowValidationError, load_flow
from engine.flows.deploy import delete_flow as delete_deployed
from engine.flows.deploy import deploy_flow
from schemas.flow import Flow

YAML_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-yaml": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}
_SOURCE_FILE = "<request>"


def encode_cursor(parts: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = orjson.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise ProblemError(400, "Invalid cursor", "pass back the nextCursor you got") from exc
    if (
        not isinstance(parts, list)
        or len(parts) != arity
        or not all(isinstance(p, str) for p in parts)
    ):
        raise ProblemError(400, "Invalid cursor", "pass back the nextCursor you got")
    return parts


async def _yaml_text(request: Request) -> str:
    body = await request.body()
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemError(400, "Invalid body", "the flow YAML must be UTF-8 text") from exc


def _load(text: str) -> Flow:
    return load_flow(text, _SOURCE_FILE)  # FlowValidationError -> 422 problem (problems.py)


def _flow_out(record: FlowRecord) -> FlowOut:
    flow = record.flow or {}
    labels = flow.get("labels")
    return FlowOut(
        namespace=record.namespace,
        id=record.id,
        revision=record.revision,
        source=record.source or "",
        description=flow.get("description"),
        labels=labels if isinstance(labels, dict) else {},
        deleted=record.deleted,
        updated=None,
        draft=record.draft,
    )


# Kestra 2.0: a draft revision is saved and listed but never executes (executions, triggers
# and subflows keep using the latest revision that is not a draft).
_Draft = Annotated[
    bool, Query(description="Save as a draft revision: kept and listed, never executed.")
]


def router(services: ApiServices) -> APIRouter:
    api = APIRouter(
        prefix="/flows", tags=["flows"], responses=problem_responses(400, 401, 413, 503)
    )

    async def produce(kv: KeyValue) -> None:
        await services.produce(services.topics.flows.name, kv)

    async def deploy(text: str, flow: Flow, draft: bool = False) -> FlowOut:
        services.require_bus()
        return _flow_out(await deploy_flow(services.store, produce, text, flow, draft=draft))

    @api.post(
        "",
        response_model=FlowOut,
        summary="Create or update a flow from its YAML source",
        openapi_extra=YAML_BODY,
        responses=problem_responses(400, 413, 422),
    )
    async def create_flow(request: Request, draft: _Draft = False) -> FlowOut:
        text = await _yaml_text(request)
        return await deploy(text, _load(text), draft)

    @api.post(
        "/validate",
        response_model=FlowValidation,
        summary="Validate a flow's YAML without deploying it",
        openapi_extra=YAML_BODY,
        responses=problem_responses(400, 413),
    )
    async def validate_flow(request: Request) -> FlowValidation:
        text = await _yaml_text(request)
        try:
            flow = _load(text)
        except FlowValidationError as exc:
            problems = [FlowProblemOut(**p.to_dict()) for p in exc.problems]
            return FlowValidation(valid=False, id=exc.flow_id, problems=problems)
        return FlowValidation(valid=True, namespace=flow.namespace, id=flow.id, problems=[])

    @api.get(
        "/search",
        response_model=FlowPage,
        summary="List flows (newest definition of each), by namespace and text",
        responses=problem_responses(400, 422),
    )
    async def search_flows(
        namespace: Annotated[str | None, Query(description="Namespace or parent.")] = None,
        q: Annotated[str | None, Query(description="Part of the flow id.")] = None,
        size: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query()] = None,
    ) -> FlowPage:
        after = decode_cursor(cursor, 2) if cursor else ["", ""]
        rows = await services.fetch(
            "SELECT namespace, id, revision, description, labels, updated FROM flows"
            " WHERE NOT deleted AND (namespace, id) > ($1, $2)"
            " AND ($3::text IS NULL OR namespace = $3 OR namespace LIKE $3 || '.%')"
            " AND ($4::text IS NULL OR strpos(lower(id), lower($4)) > 0)"
            " ORDER BY namespace, id LIMIT $5",
            after[0],
            after[1],
            namespace,
            q,
            size + 1,
        )
        page = rows[:size]
        results = [
            FlowSummary(
                namespace=r["namespace"],
                id=r["id"],
                revision=r["revision"],
                description=r["description"],
                labels=orjson.loads(r["labels"]),
                updated=r["updated"],
            )
            for r in page
        ]
        more = len(rows) > size
        next_cursor = encode_cursor([page[-1]["namespace"], page[-1]["id"]]) if more else None
        return FlowPage(results=results, nextCursor=next_cursor)

    @api.put(
        "/{namespace}/{flow_id}",
        response_model=FlowOut,
        summary="Update a flow (its YAML must keep this namespace and id)",
        openapi_extra=YAML_BODY,
        responses=problem_responses(400, 413, 422),
    )
    async def update_flow(
        namespace: str, flow_id: str, request: Request, draft: _Draft = False
    ) -> FlowOut:
        text = await _yaml_text(request)
        flow = _load(text)
        if (flow.namespace, flow.id) != (namespace, flow_id):
            raise ProblemError(
                422,
                "Flow id mismatch",
                f"the YAML defines {flow.namespace}/{flow.id}, not {namespace}/{flow_id}",
            )
        return await deploy(text, flow, draft)

    @api.get(
        "/{namespace}/{flow_id}",
        response_model=FlowOut,
        summary="The current definition of a flow, with its YAML source",
        responses=problem_responses(404, 422),
    )
    async def get_flow(namespace: str, flow_id: str) -> FlowOut:
        row = await services.fetchrow(
            "SELECT namespace, id, revision, source, description, labels, deleted, updated"
            " FROM flows WHERE namespace = $1 AND id = $2 AND NOT deleted",
            namespace,
            flow_id,
        )
        if row is None:
            raise ProblemError(404, "Flow not found", f"no flow {namespace}/{flow_id}")
        out = dict(row)
        out["labels"] = orjson.loads(out["labels"])
        return FlowOut(**out)

    @api.get(
        "/{namespace}/{flow_id}/revisions",
        response_model=list[FlowRevisionOut],
        summary="Every revision of a flow, oldest first",
        responses=problem_responses(404, 422),
    )
    async def flow_revisions(namespace: str, flow_id: str) -> list[FlowRevisionOut]:
        rows = await services.fetch(
            "SELECT revision, source, deployed_at, draft FROM flow_revisions"
            " WHERE namespace = $1 AND id = $2 ORDER BY revision",
            namespace,
            flow_id,
        )
        if not rows:
            raise ProblemError(404, "Flow not found", f"no flow {namespace}/{flow_id}")
        return [
            FlowRevisionOut(
                revision=r["revision"],
                source=r["source"],
                deployedAt=r["deployed_at"],
                draft=bool(r["draft"]),
            )
            for r in rows
        ]

    @api.delete(
        "/{namespace}/{flow_id}",
        status_code=204,
        response_class=Response,
        summary="Delete a flow (its revisions stay readable)",
        responses=problem_responses(404, 422),
    )
    async def delete_flow(namespace: str, flow_id: str) -> Response:
        services.require_bus()
        if await delete_deployed(services.store, produce, namespace, flow_id) is None:
            raise ProblemError(404, "Flow not found", f"no flow {namespace}/{flow_id}")
        return Response(status_code=204)

    return api
