"""Read-only JSON the dashboard needs beyond the API: counts, throughput, system, topology.

Every query here is bounded by a time window (the ``start_date`` index), one state (the
``(state, start_date)`` index) or a primary key, so the pages stay fast with 100k+ executions
(``benchmarks/bench_dashboard.py`` measures them). A count whose window covers most of the
table is a scan of it (~40 ms per 100k rows): the pages send windows of at most 30 days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request

from engine.api.models import Health
from engine.api.problems import ProblemError, problem_responses
from engine.api.routes_flows import YAML_BODY
from engine.api.routes_ops import health
from engine.api.services import ApiServices
from engine.dashboard.models import (
    Backlog,
    FlowGraph,
    GraphPreview,
    MinuteBucket,
    ProjectorOut,
    StateCounts,
    SystemStatus,
    Throughput,
)
from engine.dashboard.topology import flow_graph
from engine.errors import HeadwaterError
from engine.flows import FlowValidationError, flow_to_dict, load_flow

# The throughput chart's longest window: a day of minute buckets is 1440 points, enough.
MAX_THROUGHPUT_MINUTES = 1440


def _since(since: datetime | None) -> datetime | None:
    if since is not None and since.utcoffset() is None:
        return since.replace(tzinfo=UTC)
    return since


async def state_counts(
    services: ApiServices, since: datetime | None, namespace: str | None, flow_id: str | None
) -> StateCounts:
    # Only the filters given go into the SQL: a "$1 IS NULL OR ..." form would let a
    # generic plan of the prepared statement ignore the (start_date) / (namespace, flow_id)
    # indexes. Without a window this counts the whole table: the page always sends one.
    where, args = ["true"], []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if since is not None:
        where.append(f"start_date >= {arg(since)}")
    if namespace is not None:
        p = arg(namespace)
        where.append(f"(namespace = {p} OR namespace LIKE {p} || '.%')")
    if flow_id is not None:
        where.append(f"flow_id = {arg(flow_id)}")
    rows = await services.fetch(
        # Only constant SQL fragments are joined here; every value is a $n parameter.
        f"SELECT state, count(*) AS n FROM executions WHERE {' AND '.join(where)}"  # noqa: S608
        " GROUP BY state",
        *args,
    )
    counts = {r["state"]: r["n"] for r in rows}
    return StateCounts(since=since, total=sum(counts.values()), counts=counts)


async def throughput(services: ApiServices, minutes: int, now: datetime) -> Throughput:
    start = now - timedelta(minutes=minutes)
    rows = await services.fetch(
        "SELECT date_trunc('minute', start_date) AS minute, state, count(*) AS n"
        " FROM executions WHERE start_date >= $1 GROUP BY 1, 2 ORDER BY 1",
        start,
    )
    buckets: dict[datetime, dict[str, int]] = {}
    for r in rows:
        buckets.setdefault(r["minute"], {})[r["state"]] = r["n"]
    return Throughput(
        minutes=minutes,
        buckets=[MinuteBucket(minute=m, counts=c) for m, c in buckets.items()],
    )


async def system_status(services: ApiServices, now: datetime) -> SystemStatus:
    report: Health = await health(services)
    projectors: list[ProjectorOut] = []
    backlog: Backlog | None = None
    try:
        rows = await services.fetch(
            "SELECT name, group_id, lag_ms, last_batch_at, records_total FROM projector_status"
            " ORDER BY name"
        )
        # Each count walks the (state, start_date) index for one state only.
        waiting = await services.fetchrow(
            "SELECT (SELECT count(*) FROM executions WHERE state = 'CREATED') AS created,"
            " (SELECT min(start_date) FROM executions WHERE state = 'CREATED') AS oldest,"
            " (SELECT count(*) FROM executions WHERE state = 'RUNNING') AS running,"
            " (SELECT count(*) FROM executions WHERE state = 'QUEUED') AS queued"
        )
    except HeadwaterError:
        rows = []
        waiting = None
    for r in rows:
        last = r["last_batch_at"]
        projectors.append(
            ProjectorOut(
                name=r["name"],
                groupId=r["group_id"],
                lagMs=r["lag_ms"],
                lastBatchAt=last,
                lastBatchAgeS=(now - last).total_seconds() if last is not None else None,
                recordsTotal=r["records_total"],
            )
        )
    if waiting is not None:
        oldest = waiting["oldest"]
        backlog = Backlog(
            created=waiting["created"],
            oldestCreatedAgeS=(now - oldest).total_seconds() if oldest is not None else None,
            running=waiting["running"],
            queued=waiting["queued"],
        )
    return SystemStatus(
        health=report,
        projectors=projectors,
        backlog=backlog,
        commandsSent=dict(services.commands_sent),
    )


def router(services: ApiServices) -> APIRouter:
    api = APIRouter(
        prefix="/dashboard", tags=["dashboard"], responses=problem_responses(400, 401, 503)
    )

    @api.get(
        "/executions/counts",
        response_model=StateCounts,
        summary="Executions by current state (started since a time, optionally one flow)",
        responses=problem_responses(422),
    )
    async def get_counts(
        since: Annotated[datetime | None, Query(description="Started at or after.")] = None,
        namespace: Annotated[str | None, Query(description="Namespace or parent.")] = None,
        flowId: Annotated[str | None, Query()] = None,
    ) -> StateCounts:
        return await state_counts(services, _since(since), namespace, flowId)

    @api.get(
        "/executions/throughput",
        response_model=Throughput,
        summary="Executions started per minute, by current state",
        responses=problem_responses(422),
    )
    async def get_throughput(
        minutes: Annotated[int, Query(ge=1, le=MAX_THROUGHPUT_MINUTES)] = 60,
    ) -> Throughput:
        return await throughput(services, minutes, datetime.now(UTC))

    @api.get(
        "/system",
        response_model=SystemStatus,
        summary="Components, projection lag, executor backlog and commands sent",
    )
    async def get_system() -> SystemStatus:
        return await system_status(services, datetime.now(UTC))

    @api.get(
        "/flows/{namespace}/{flow_id}/graph",
        response_model=FlowGraph,
        summary="The task tree of a deployed flow (or one of its revisions), for its topology",
        responses=problem_responses(404, 422),
    )
    async def get_graph(
        namespace: str,
        flow_id: str,
        revision: Annotated[
            int | None,
            Query(
                ge=1,
                le=2**31 - 1,
                description="A past revision (an execution's); default: current.",
            ),
        ] = None,
    ) -> FlowGraph:
        if revision is None:
            row = await services.fetchrow(
                "SELECT flow FROM flows WHERE namespace = $1 AND id = $2 AND NOT deleted",
                namespace,
                flow_id,
            )
        else:
            row = await services.fetchrow(
                "SELECT flow FROM flow_revisions WHERE namespace = $1 AND id = $2"
                " AND revision = $3",
                namespace,
                flow_id,
                revision,
            )
        if row is None:
            at = f" revision {revision}" if revision is not None else ""
            raise ProblemError(404, "Flow not found", f"no flow {namespace}/{flow_id}{at}")
        flow: Any = row["flow"]
        return flow_graph(orjson.loads(flow) if isinstance(flow, str) else flow)

    @api.post(
        "/flows/graph",
        response_model=GraphPreview,
        summary="The task tree of a flow's YAML (not deployed), for the editor's preview",
        openapi_extra=YAML_BODY,
        responses=problem_responses(413),
    )
    async def preview_graph(request: Request) -> GraphPreview:
        try:
            text = (await request.body()).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProblemError(400, "Invalid body", "the flow YAML must be UTF-8 text") from exc
        try:
            flow = load_flow(text, "<request>")
        except FlowValidationError:
            # /api/v1/flows/validate says what is wrong; the preview only draws valid flows.
            return GraphPreview(valid=False)
        return GraphPreview(valid=True, graph=flow_graph(flow_to_dict(flow)))

    return api
