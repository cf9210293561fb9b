"""What the flow editor, the execute form and the revisions tab read beyond the API.

- ``GET  /dashboard/schemas/flow``: Headwater's flow JSON Schema (``schemas/flow.schema.json``,
  the file editors use), for completion and hover docs; ETag and gzip (1.2 MB -> ~50 KB).
- ``POST /dashboard/flows/check``: one answer per pause in typing: the problems a deploy would
  refuse (the same ``load_flow`` as ``POST /flows``), the expressions that will not render
  (``flow validate``'s warnings) and the task tree for the live topology.
- ``GET  /dashboard/flows/{ns}/{id}/inputs``: the deployed flow's declared inputs, for the typed
  execute form.
- ``GET  /dashboard/flows/{ns}/{id}/revisions`` and ``.../revisions/{revision}``: the list
  without sources, then one source at a time (``/flows/.../revisions`` sends every source).
"""

from __future__ import annotations

import importlib.resources
import pathlib
from typing import Any

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from engine.api.models import FlowProblemOut
from engine.api.problems import ProblemError, problem_responses
from engine.api.routes_flows import YAML_BODY
from engine.api.services import ApiServices
from engine.dashboard.assets import AssetCache, send
from engine.dashboard.models import (
    FlowCheck,
    FlowInputs,
    RevisionList,
    RevisionSource,
    RevisionSummary,
)
from engine.dashboard.topology import flow_graph
from engine.flows import FlowValidationError, expression_warnings, flow_to_dict, load_flow

_SOURCE_FILE = "<editor>"
SCHEMA_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
# The route whose request body says whether files can come with a new execution.
_CREATE_EXECUTION = "/api/v1/executions/{namespace}/{flow_id}"


def schema_path() -> pathlib.Path:
    """The committed ``schemas/flow.schema.json`` (package data of ``schemas``)."""
    return pathlib.Path(str(importlib.resources.files("schemas").joinpath("flow.schema.json")))


def check_flow(text: str) -> FlowCheck:
    """Problems, warnings and graph of a flow's YAML (pure; what the editor shows)."""
    warnings = [FlowProblemOut(**w.to_dict()) for w in expression_warnings(text, _SOURCE_FILE)]
    try:
        flow = load_flow(text, _SOURCE_FILE)
    except FlowValidationError as exc:
        problems = [FlowProblemOut(**p.to_dict()) for p in exc.problems]
        return FlowCheck(valid=False, id=exc.flow_id, problems=problems, warnings=warnings)
    return FlowCheck(
        valid=True,
        namespace=flow.namespace,
        id=flow.id,
        problems=[],
        warnings=warnings,
        graph=flow_graph(flow_to_dict(flow)),
    )


def takes_files(request: Request) -> bool:
    """Whether the API's execution creation accepts multipart bodies (FILE inputs)."""
    doc = request.app.openapi()
    operation = doc.get("paths", {}).get(_CREATE_EXECUTION, {}).get("post", {})
    content = operation.get("requestBody", {}).get("content", {})
    return "multipart/form-data" in content


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value


def router(services: ApiServices) -> APIRouter:
    api = APIRouter(prefix="/dashboard", tags=["dashboard"], responses=problem_responses(401))
    cache = AssetCache()

    @api.get(
        "/schemas/flow",
        summary="Headwater's flow JSON Schema (what editors complete and document from)",
        responses={200: {"content": {"application/schema+json": {}}}},
    )
    async def get_flow_schema(request: Request) -> Response:
        return send(request, cache.get(schema_path()), "application/schema+json", SCHEMA_HEADERS)

    @api.post(
        "/flows/check",
        response_model=FlowCheck,
        summary="Problems, expression warnings and task tree of a flow's YAML (not deployed)",
        openapi_extra=YAML_BODY,
        responses=problem_responses(400, 413),
    )
    async def check(request: Request) -> FlowCheck:
        try:
            text = (await request.body()).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProblemError(400, "Invalid body", "the flow YAML must be UTF-8 text") from exc
        return check_flow(text)

    @api.get(
        "/flows/{namespace}/{flow_id}/inputs",
        response_model=FlowInputs,
        summary="The declared inputs of a deployed flow, for the execute form",
        responses=problem_responses(404, 422, 503),
    )
    async def get_inputs(namespace: str, flow_id: str, request: Request) -> FlowInputs:
        row = await services.fetchrow(
            "SELECT revision, flow FROM flows WHERE namespace = $1 AND id = $2 AND NOT deleted",
            namespace,
            flow_id,
        )
        if row is None:
            raise ProblemError(404, "Flow not found", f"no flow {namespace}/{flow_id}")
        declared = _json(row["flow"]).get("inputs") or []
        return FlowInputs(
            namespace=namespace,
            id=flow_id,
            revision=row["revision"],
            inputs=[i for i in declared if isinstance(i, dict)],
            fileUploads=takes_files(request),
        )

    @api.get(
        "/flows/{namespace}/{flow_id}/revisions",
        response_model=RevisionList,
        summary="The revisions of a flow, newest first, without their sources",
        responses=problem_responses(404, 422, 503),
    )
    async def list_revisions(namespace: str, flow_id: str) -> RevisionList:
        rows = await services.fetch(
            "SELECT revision, deployed_at,"
            " length(source) - length(replace(source, E'\\n', '')) + 1 AS lines"
            " FROM flow_revisions WHERE namespace = $1 AND id = $2 ORDER BY revision DESC",
            namespace,
            flow_id,
        )
        if not rows:
            raise ProblemError(404, "Flow not found", f"no flow {namespace}/{flow_id}")
        current = await services.fetchrow(
            "SELECT revision FROM flows WHERE namespace = $1 AND id = $2 AND NOT deleted",
            namespace,
            flow_id,
        )
        return RevisionList(
            namespace=namespace,
            id=flow_id,
            current=current["revision"] if current is not None else None,
            revisions=[
                RevisionSummary(
                    revision=r["revision"], deployedAt=r["deployed_at"], lines=r["lines"]
                )
                for r in rows
            ],
        )

    @api.get(
        "/flows/{namespace}/{flow_id}/revisions/{revision}",
        response_model=RevisionSource,
        summary="One revision of a flow with its YAML source",
        responses=problem_responses(404, 422, 503),
    )
    async def get_revision(
        namespace: str, flow_id: str, revision: int = Path(ge=1, le=2**31 - 1)
    ) -> RevisionSource:
        row = await services.fetchrow(
            "SELECT revision, source, deployed_at FROM flow_revisions"
            " WHERE namespace = $1 AND id = $2 AND revision = $3",
            namespace,
            flow_id,
            revision,
        )
        if row is None:
            raise ProblemError(
                404, "Revision not found", f"no revision {revision} of flow {namespace}/{flow_id}"
            )
        return RevisionSource(
            namespace=namespace,
            id=flow_id,
            revision=row["revision"],
            deployedAt=row["deployed_at"],
            source=row["source"],
        )

    return api
