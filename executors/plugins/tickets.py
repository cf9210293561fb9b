"""Kestra's ticket types: Linear (plugin-linear), Zendesk (plugin-zendesk), HubSpot tickets
(plugin-hubspot). Each calls the service through :class:`executors.api_client.ApiClient` (a
refused call fails the task with the service's answer; credentials are masked).

- ``linear.issues.Create``: ``token`` (sent as the ``Authorization`` header as written, Linear's
  API-key form), ``team`` (name, case-insensitive), ``title``, ``description``, ``labels``
  (names). Three GraphQL POSTs to ``https://api.linear.app/graphql``: ``teams``, ``issueLabels``
  (the labels whose name is listed; unknown ones are dropped, as in Kestra), then the
  ``issueCreate`` mutation with ``teamId``, ``title``, ``description``, ``labelIds`` (only when
  some). Outputs ``isSuccess``, ``issueId``; logs "Issue created with ID: ...".
- ``zendesk.tickets.Create``: ``domain`` (``https://`` is added when missing), ``username`` +
  ``token`` (Basic ``{username}/token:{token}``) or else ``oauthToken`` (Bearer), ``subject``,
  ``description``, ``priority`` (URGENT/HIGH/NORMAL/LOW), ``ticketType``
  (PROBLEM/INCIDENT/QUESTION/TASK), ``assigneeId``, ``tags``. POST ``{domain}/api/v2/tickets.json``
  ``{"ticket": {...}}`` (priority and type in lower case); only 201 succeeds ("Failed to create
  ticket. Response: ..."). Outputs ``id``, ``url`` (the ticket's, else
  ``{domain}/api/v2/tickets/{id}.json``).
- ``hubspot.tickets.Create``: ``apiKey`` or else ``oauthToken`` (both Bearer), ``subject``,
  ``content``, ``stage`` (1, ``hs_pipeline_stage``), ``pipeline`` (``hs_pipeline``), ``priority``
  (LOW/MEDIUM/HIGH, ``hs_ticket_priority``), ``additionalProperties``, ``options``. POST
  ``https://api.hubapi.com/crm/v3/objects/tickets`` ``{"properties": {...}}``; a refused call
  fails with HubSpot's error messages ("HubSpot API error: ..."). Outputs ``id`` and ``uri`` (an
  ION file holding the created ticket's properties).

- ``hubspot.companies.Search`` / ``contacts.Search`` / ``deals.Search``: ``query``,
  ``filterGroups``, ``properties``, ``limit`` (10), ``after``, ``sorts``, ``fetchAllPages``
  (false: follow ``paging.next.after`` while true). POST ``/crm/v3/objects/{object}/search``;
  outputs ``total`` and ``uri`` (an ION file of the records' properties).

What differs from Kestra: Linear's refused or erroring mutation fails the task (Kestra returns
``isSuccess: false``), as does a team that does not exist (Kestra sends a null team id); Zendesk's
``assigneeId`` is sent as ``assignee_id`` (Kestra puts it in the ticket's ``id``, which Zendesk
ignores); HubSpot's ``additionalProperties`` are added to the ticket's properties (Kestra
accepts and ignores them on tickets).
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar, Literal

import orjson

from executors import ion
from executors.api_client import ApiClient, ApiError, base_url, dig
from executors.base import TaskContext, TaskError, to_text
from executors.http_client import HttpOptions
from executors.plugin import (
    TaskPlugin,
    render_bool,
    render_choice,
    render_int,
    render_json,
    render_map,
    render_str,
    render_texts,
)
from schemas.flow.common import BoolOrExpr, IntOrExpr, Str

LINEAR_MUTATION = (
    "mutation ($input: IssueCreateInput!) { issueCreate(input: $input) { success issue { id } } }"
)


class LinearIssueCreate(TaskPlugin):
    """Create a Linear issue in a team, with labels."""

    family: ClassVar[str] = "issues"
    short: ClassVar[str | None] = "linear_issues_create"

    type: Literal["io.kestra.plugin.linear.issues.Create"]
    token: Str | None = None
    team: Str | None = None
    title: Str | None = None
    description: Str | None = None
    labels: list[Str] | Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        token = render_str(ctx, self.token, "token", required=True) or ""
        team = render_str(ctx, self.team, "team", required=True) or ""
        wanted = render_texts(ctx, self.labels, "labels")
        async with ApiClient(
            ctx, "Linear", base_url("linear"), headers={"Authorization": token}, secrets=[token]
        ) as api:

            async def query(body: dict[str, Any]) -> dict[str, Any]:
                answer = await api.object("POST", "/graphql", json=body)
                if answer.get("errors"):
                    raise TaskError(f"Linear: the API answered errors: {answer['errors']}")
                return answer

            teams = dig(await query({"query": "query { teams { nodes { id name } } }"}), "data")
            team_id = next(
                (
                    n.get("id")
                    for n in dig(teams, "teams", "nodes") or []
                    if to_text(n.get("name")).lower() == team.lower()
                ),
                None,
            )
            if team_id is None:
                raise TaskError(f"Linear: no team named '{team}'")
            labels = dig(
                await query({"query": "query { issueLabels { nodes { id name } } }"}), "data"
            )
            label_ids = [
                n.get("id")
                for n in dig(labels, "issueLabels", "nodes") or []
                if n.get("name") in wanted
            ]
            issue: dict[str, Any] = {
                "teamId": team_id,
                "title": ctx.render_str(self.title),
                "description": ctx.render_str(self.description),
            }
            if label_ids:
                issue["labelIds"] = label_ids
            created = await query({"query": LINEAR_MUTATION, "variables": {"input": issue}})
        success = dig(created, "data", "issueCreate", "success") is True
        issue_id = dig(created, "data", "issueCreate", "issue", "id")
        if not success:
            return {"isSuccess": False, "issueId": None}
        ctx.log("INFO", f"Issue created with ID: {issue_id}")
        return {"isSuccess": True, "issueId": issue_id}


class ZendeskTicketCreate(TaskPlugin):
    """Create a Zendesk ticket."""

    family: ClassVar[str] = "issues"
    short: ClassVar[str | None] = "zendesk_tickets_create"

    type: Literal["io.kestra.plugin.zendesk.tickets.Create"]
    domain: Str
    username: Str | None = None
    token: Str | None = None
    oauthToken: Str | None = None
    subject: Str | None = None
    description: Str | None = None
    priority: Literal["URGENT", "HIGH", "NORMAL", "LOW"] | Str | None = None
    ticketType: Literal["PROBLEM", "INCIDENT", "QUESTION", "TASK"] | Str | None = None
    assigneeId: IntOrExpr | None = None
    tags: list[Str] | Str | None = None

    def auth(self, ctx: TaskContext) -> tuple[str, list[str]]:
        token, oauth = ctx.render_str(self.token), ctx.render_str(self.oauthToken)
        if token:
            pair = base64.b64encode(f"{ctx.render_str(self.username)}/token:{token}".encode())
            return f"Basic {pair.decode()}", [token, pair.decode()]
        if oauth:
            return f"Bearer {oauth}", [oauth]
        raise TaskError("Authentication details are missing")

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        domain = render_str(ctx, self.domain, "domain", required=True) or ""
        domain = (
            domain.rstrip("/")
            if domain.startswith(("http://", "https://"))
            else f"https://{domain}"
        )
        ticket: dict[str, Any] = {
            "subject": ctx.render_str(self.subject),
            "description": ctx.render_str(self.description),
            "priority": render_choice(
                ctx, self.priority, "priority", ("URGENT", "HIGH", "NORMAL", "LOW")
            ),
            "type": render_choice(
                ctx, self.ticketType, "ticketType", ("PROBLEM", "INCIDENT", "QUESTION", "TASK")
            ),
            "assignee_id": render_int(ctx, self.assigneeId, "assigneeId"),
            "tags": render_texts(ctx, self.tags, "tags"),
        }
        for key in ("priority", "type"):
            if ticket[key] is not None:
                ticket[key] = ticket[key].lower()
        ticket = {k: v for k, v in ticket.items() if v is not None}
        header, secrets = self.auth(ctx)
        async with ApiClient(
            ctx, "Zendesk", domain, headers={"Authorization": header}, secrets=secrets
        ) as api:
            answer = await api.call(
                "POST",
                "/api/v2/tickets.json",
                json={"ticket": ticket},
                headers={"Content-Type": "application/json; charset=UTF-8"},
                allow=lambda code: True,
            )
        if answer.status != 201:
            raise TaskError(f"Failed to create ticket. Response: {api.mask(answer.text[:2000])}")
        created = answer.object().get("ticket") or {}
        ticket_id = created.get("id")
        return {
            "id": ticket_id,
            "url": created.get("url") or f"{domain}/api/v2/tickets/{ticket_id}.json",
        }


class HubspotTicketCreate(TaskPlugin):
    """Create a HubSpot ticket (CRM v3)."""

    family: ClassVar[str] = "issues"
    short: ClassVar[str | None] = "hubspot_tickets_create"

    type: Literal["io.kestra.plugin.hubspot.tickets.Create"]
    apiKey: Str | None = None
    oauthToken: Str | None = None
    subject: Str | None = None
    content: Str | None = None
    pipeline: IntOrExpr | None = None
    stage: IntOrExpr | None = 1
    priority: Literal["LOW", "MEDIUM", "HIGH"] | Str | None = None
    additionalProperties: dict[str, Any] | Str | None = None
    options: HttpOptions | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        token = ctx.render_str(self.apiKey) if self.apiKey is not None else None
        token = token if token is not None else ctx.render_str(self.oauthToken)
        if token is None:
            raise TaskError("Missing required authentication fields")
        properties: dict[str, Any] = {
            "subject": ctx.render_str(self.subject),
            "content": ctx.render_str(self.content),
            "hs_pipeline_stage": render_int(ctx, self.stage, "stage"),
            "hs_pipeline": render_int(ctx, self.pipeline, "pipeline"),
            "hs_ticket_priority": render_choice(
                ctx, self.priority, "priority", ("LOW", "MEDIUM", "HIGH")
            ),
        }
        properties = {k: v for k, v in properties.items() if v is not None}
        properties.update(render_map(ctx, self.additionalProperties, "additionalProperties"))
        body = {"properties": properties}
        ctx.log("INFO", f"Request body: {to_text(body)}")
        async with ApiClient(
            ctx,
            "HubSpot",
            base_url("hubspot"),
            headers={"Authorization": f"Bearer {token}"},
            secrets=[token],
            options=self.options,
        ) as api:
            try:
                created = await api.object(
                    "POST",
                    "/crm/v3/objects/tickets",
                    json=body,
                    headers={"Content-Type": "application/json; charset=UTF-8"},
                )
            except ApiError as exc:
                raise TaskError(hubspot_error(exc.body)) from None
        if ctx.storage is None:
            raise TaskError("HubSpot: this worker has no internal storage for the ticket's file")
        data = (ion.dumps(created.get("properties")) + "\n").encode()
        uri = await ctx.storage.put(ctx.execution_id, "ticket.ion", data)
        ctx.log("INFO", f"Created HubSpot ticket: {created.get('id')}")
        ticket_id = created.get("id")
        return {
            "id": int(to_text(ticket_id)) if to_text(ticket_id).isdigit() else ticket_id,
            "uri": uri,
        }


def hubspot_error(body: str) -> str:
    """Kestra's ``cleanHubspotException``: HubSpot's error messages, joined."""
    start = body.find("{")
    if start < 0:
        return f"HubSpot API error: {body}"
    parsed = render_json_text(body[start:])
    if not isinstance(parsed, dict):
        return f"HubSpot API error: {body[start:]}"
    messages = [
        to_text(e.get("message")).replace("\\n", " ").replace('\\"', '"').strip()
        for e in parsed.get("errors") or []
        if isinstance(e, dict) and e.get("message")
    ]
    if messages:
        return "HubSpot API error: " + "; ".join(messages)
    if parsed.get("message"):
        return f"HubSpot API error: {parsed['message']}"
    return "HubSpot API error (unknown)"


def render_json_text(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


class _HubspotSearch(TaskPlugin):
    """Kestra's ``AbstractSearchTask``: POST ``{object}/search``, the records' properties stored."""

    family: ClassVar[str] = "issues"
    endpoint: ClassVar[str] = ""

    apiKey: Str | None = None
    oauthToken: Str | None = None
    options: HttpOptions | None = None
    query: Str | None = None
    filterGroups: list[dict[str, Any]] | Str | None = None
    properties: list[Str] | Str | None = None
    limit: IntOrExpr | None = 10
    after: Str | None = None
    sorts: list[dict[str, Any]] | Str | None = None
    fetchAllPages: BoolOrExpr | None = False

    def body(self, ctx: TaskContext) -> dict[str, Any]:
        given = {
            "query": ctx.render_str(self.query),
            "filterGroups": render_json(ctx, self.filterGroups, "filterGroups"),
            "properties": render_json(ctx, self.properties, "properties"),
            "limit": render_int(ctx, self.limit, "limit", 10),
            "after": ctx.render_str(self.after),
            "sorts": render_json(ctx, self.sorts, "sorts"),
        }
        body = {key: value for key, value in given.items() if value is not None}
        return body

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        token = ctx.render_str(self.apiKey) if self.apiKey is not None else None
        token = token if token is not None else ctx.render_str(self.oauthToken)
        if token is None:
            raise TaskError("Missing required authentication fields")
        body = self.body(ctx)
        rows: list[Any] = []
        every_page = render_bool(ctx, self.fetchAllPages, "fetchAllPages")
        async with ApiClient(
            ctx,
            "HubSpot",
            base_url("hubspot"),
            headers={"Authorization": f"Bearer {token}"},
            secrets=[token],
            options=self.options,
        ) as api:
            while True:
                ctx.log(
                    "INFO",
                    f"Sending request to {self.endpoint}/search with payload {to_text(body)}",
                )
                try:
                    page = await api.object(
                        "POST",
                        f"{self.endpoint}/search",
                        json=body,
                        headers={"Content-Type": "application/json; charset=UTF-8"},
                    )
                except ApiError as exc:
                    raise TaskError(hubspot_error(exc.body)) from None
                rows.extend(r.get("properties") for r in page.get("results") or [])
                after = dig(page, "paging", "next", "after")
                if not every_page or after is None:
                    break
                body["after"] = after
        if ctx.storage is None:
            raise TaskError("HubSpot: this worker has no internal storage for the records")
        data = "".join(ion.dumps(row) + "\n" for row in rows).encode()
        uri = await ctx.storage.put(ctx.execution_id, "records.ion", data)
        ctx.log("INFO", f"Retrieved {len(rows)} records")
        return {"total": len(rows), "uri": uri}


class HubspotCompaniesSearch(_HubspotSearch):
    """Search HubSpot companies (CRM v3)."""

    short: ClassVar[str | None] = "hubspot_companies_search"
    endpoint: ClassVar[str] = "/crm/v3/objects/companies"
    type: Literal["io.kestra.plugin.hubspot.companies.Search"]


class HubspotContactsSearch(_HubspotSearch):
    """Search HubSpot contacts (CRM v3)."""

    short: ClassVar[str | None] = "hubspot_contacts_search"
    endpoint: ClassVar[str] = "/crm/v3/objects/contacts"
    type: Literal["io.kestra.plugin.hubspot.contacts.Search"]


class HubspotDealsSearch(_HubspotSearch):
    """Search HubSpot deals (CRM v3)."""

    short: ClassVar[str | None] = "hubspot_deals_search"
    endpoint: ClassVar[str] = "/crm/v3/objects/deals"
    type: Literal["io.kestra.plugin.hubspot.deals.Search"]


PLUGINS: list[type[TaskPlugin]] = [
    LinearIssueCreate,
    ZendeskTicketCreate,
    HubspotTicketCreate,
    HubspotCompaniesSearch,
    HubspotContactsSearch,
    HubspotDealsSearch,
]
