"""Kestra's notification tasks: one HTTP POST of a rendered JSON payload to a webhook URL.

Every type shares :class:`_Notification`: the ``options`` of Kestra's ``RequestOptions``
(``connectTimeout``, ``readTimeout`` (PT10S), ``readIdleTimeout`` (PT5M),
``connectionPoolIdleTimeout``, ``maxContentLength`` (10 MB), ``defaultCharset`` (UTF-8),
``headers``), a POST with ``Content-Type: application/json`` plus ``options.headers``, and
Kestra's HTTP client's response check: a status of 400 or more fails the task with the status
and the server's answer. The URL is never logged nor put in an error (webhook URLs are
secrets: only its scheme and host are named). Outputs: none (Kestra's ``VoidOutput``).

"Send this payload" types (canonical name = current Kestra name; aliases = older names):

- ``slack.notifications.SlackIncomingWebhook``: ``url``, ``payload`` or ``messageText``.
  ``payload`` is parsed as JSON and sent re-serialized; ``messageText`` is sent the same way when
  it is a JSON text, otherwise as ``{"text": ...}`` after Kestra's markdown-to-mrkdwn rewrite
  (``**b**`` -> ``*b*``, ``__i__`` -> ``_i_``, ``[t](u)`` -> ``<u|t>``). Neither: an error.
- ``discord.DiscordIncomingWebhook``: ``url``, ``payload`` (parsed as JSON, re-serialized).
- ``microsoft365.teams.TeamsIncomingWebhook``, ``googleworkspace.chat.GoogleChatIncomingWebhook``,
  ``zulip.ZulipIncomingWebhook``, ``pagerduty.PagerDutyAlert``, ``zenduty.ZendutyAlert``,
  ``squadcast.SquadcastIncomingWebhook``: ``url``, ``payload`` sent as written.
- ``opsgenie.OpsgenieAlert``: also ``authorizationToken``, sent as the ``Authorization`` header
  (as written: ``GenieKey ...``).
- ``tencent.qq.QQIncomingWebhook``: ``url``, ``token`` (``Authorization: Bearer <token>``),
  ``payload`` (required); any status but 200 fails ("Tencent IM webhook request failed: <body>").
- ``sentry.SentryAlert``: ``dsn``, ``endpointType`` (ENVELOPE | STORE), ``payload`` (default:
  Kestra's error event of the execution). A DSN ``https://KEY@oN.ingest.sentry.io/PROJECT``
  becomes ``https://HOST/api/PROJECT/{envelope|store}/?sentry_version=7&sentry_client=java&
  sentry_key=KEY``; any other DSN is used as the URL. ENVELOPE sends Kestra's envelope (header
  line with event_id/dsn/sdk/sent_at, item line with type/length/content_type/filename, payload);
  a payload above 1 MB fails. (Kestra's default payload lacks its final ``}``; ours is closed.)
  As in Kestra only 401/404 on ENVELOPE fail (with the hint to use ``endpointType: STORE``);
  other error statuses are logged and ignored.

``*Execution`` types (Slack, Discord, Teams, Google Chat) post Kestra's execution summary, the
port of its ``*-template.peb`` as data: ``[namespace] flowId ➛ STATE``, "Succeeded" or "Failed on
task `t`" after the duration (``H:mm:ss.SSS``, Kestra's ``formatDurationHMS``), namespace, flow,
execution id, status, final task id, ``customMessage`` and ``customFields`` (Slack). Properties:
``executionId`` (``{{ execution.id }}``), ``customMessage``, ``customFields`` and each template's
own (Slack: ``channel``, ``username``, ``iconUrl``, ``iconEmoji``; Discord: ``username``,
``avatarUrl``, ``content``, ``embedList``, and a non-blank ``payload`` is sent instead; Teams:
``themeColor`` (0076D7), ``activityTitle``, ``activitySubtitle``; Google Chat: ``text``).

What differs from Kestra: Kestra loads the execution from its repository (waiting until a Flow
trigger's execution reaches the triggering state). A Headwater worker has no repository, so the
summary comes from the task's variables. For the current execution (``executionId`` renders to
``execution.id``) it is exact: Kestra's last task run is the running notification task itself,
so "final task" is this task, ``firstFailed`` is false, the state is ``execution.state`` and the
duration runs from ``execution.startDate`` to now. For the execution of a Flow trigger
(``trigger.executionId``), namespace, flow id and state come from ``trigger``; its start date,
duration and task runs are unknown: the duration is empty, the final task id is null, and a
FAILED/WARNING one reads "Failed" without the task id. Any other id fails the task. The
execution link needs Kestra's configured URL: it is built from ``kestra.url`` when the variables
hold one (``{url}/ui/executions/{namespace}/{flowId}/{id}``), else omitted as the templates allow.
The ``*Execution`` types of the other services are in :mod:`executors.plugins.notifications_alerts`
(incident tools) and :mod:`executors.plugins.notifications_chat` (messaging services).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx
import orjson

from executors.base import TaskContext, TaskError, to_text
from executors.plugin import TaskPlugin, render_int, render_map, render_seconds, render_str
from schemas.flow.common import Duration, FlowModel, IntOrExpr, Str

MAX_CONTENT_LENGTH = 10 * 1024 * 1024
DEFAULT_READ_TIMEOUT = "PT10S"
_OLD = "io.kestra.plugin.notifications"


class RequestOptions(FlowModel):
    """Kestra's ``AbstractHttpOptionsTask.RequestOptions``."""

    connectTimeout: Duration | None = None
    readTimeout: Duration | None = DEFAULT_READ_TIMEOUT
    readIdleTimeout: Duration | None = "PT5M"
    connectionPoolIdleTimeout: Duration | None = "PT0S"
    maxContentLength: IntOrExpr | None = MAX_CONTENT_LENGTH
    defaultCharset: Str | None = "UTF-8"
    headers: dict[str, Any] | Str | None = None


def _where(url: str) -> str:
    """The part of a URL that may be shown: scheme and host (the path holds webhook secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or '?'}://{host}{port}"


class _Notification(TaskPlugin):
    """Shared base: POST a body to a URL with Kestra's request options."""

    family: ClassVar[str] = "notifications"
    service: ClassVar[str] = "notification"

    options: RequestOptions | None = None

    async def _post(
        self,
        ctx: TaskContext,
        url: str | None,
        body: str,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        if not url:
            raise TaskError(f"{self.service}: the URL is required")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TaskError(f"{self.service}: invalid URL (expected http:// or https://)")
        opts = self.options or RequestOptions()
        read = render_seconds(ctx, opts.readTimeout, "options.readTimeout", 10.0)
        connect = render_seconds(ctx, opts.connectTimeout, "options.connectTimeout", read)
        limit = render_int(ctx, opts.maxContentLength, "options.maxContentLength")
        charset = render_str(ctx, opts.defaultCharset, "options.defaultCharset") or "UTF-8"
        try:
            content = body.encode(charset)
        except LookupError as exc:
            raise TaskError(f"options.defaultCharset: unknown charset {charset!r}") from exc
        extra = render_map(ctx, opts.headers, "options.headers")
        out = {"Content-Type": "application/json"}
        out.update({str(k): to_text(v) for k, v in extra.items()})
        out.update(headers or {})
        ctx.log("DEBUG", f"Send {self.service} request to {_where(url)}: {body}")
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(read, connect=connect)) as client:
                async with client.stream("POST", url, content=content, headers=out) as response:
                    answer = await _read(response, limit or MAX_CONTENT_LENGTH)
        except httpx.HTTPError as exc:
            reason = str(exc).replace(url, _where(url)) or type(exc).__name__
            raise TaskError(
                f"{self.service}: request to {_where(url)} failed: {type(exc).__name__}: {reason}"
            ) from None
        text = answer.decode(response.encoding or "utf-8", "replace")
        ctx.log("DEBUG", f"Response: {text}")
        self._check(ctx, response, text)
        if response.status_code == 200:
            ctx.log("INFO", "Request succeeded")
        return response

    def _check(self, ctx: TaskContext, response: httpx.Response, text: str) -> None:
        if response.status_code >= 400:
            raise TaskError(
                f"{self.service}: failed http request with response code "
                f"'{response.status_code}' and body '{text[:2000]}'"
            )


async def _read(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise TaskError(f"the response is larger than options.maxContentLength ({limit})")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(text: str | None, name: str) -> Any:
    if text is None:
        raise TaskError(f"property '{name}' is required")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise TaskError(f"property '{name}' is not valid JSON: {exc}") from exc


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# ---------------------------------------------------------------------------------------------
# "Send this payload" types.


class _PayloadWebhook(_Notification):
    """POST ``payload`` as written (Kestra's StringRequestBody)."""

    url: Str
    payload: Str | None = None

    def _payload(self, ctx: TaskContext) -> str:
        text = ctx.render_str(self.payload)
        if text is None:
            raise TaskError("property 'payload' is required")
        return text

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        await self._post(ctx, render_str(ctx, self.url, "url", required=True), self._payload(ctx))
        return {}


class TeamsIncomingWebhook(_PayloadWebhook):
    """Send a Microsoft Teams message through an incoming webhook."""

    service: ClassVar[str] = "Microsoft Teams"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.teams.TeamsIncomingWebhook",)
    type: Literal["io.kestra.plugin.microsoft365.teams.TeamsIncomingWebhook"]


class GoogleChatIncomingWebhook(_PayloadWebhook):
    """Send a Google Chat message through an incoming webhook."""

    service: ClassVar[str] = "Google Chat"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.google.GoogleChatIncomingWebhook",)
    type: Literal["io.kestra.plugin.googleworkspace.chat.GoogleChatIncomingWebhook"]


class ZulipIncomingWebhook(_PayloadWebhook):
    """Send a Zulip message through an incoming webhook."""

    service: ClassVar[str] = "Zulip"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.zulip.ZulipIncomingWebhook",)
    type: Literal["io.kestra.plugin.zulip.ZulipIncomingWebhook"]


class PagerDutyAlert(_PayloadWebhook):
    """Send a PagerDuty event (Events API v2) with a JSON payload."""

    service: ClassVar[str] = "PagerDuty"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.pagerduty.PagerDutyAlert",)
    type: Literal["io.kestra.plugin.pagerduty.PagerDutyAlert"]


class ZendutyAlert(_PayloadWebhook):
    """Send a Zenduty alert with a JSON payload."""

    service: ClassVar[str] = "Zenduty"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.zenduty.ZendutyAlert",)
    type: Literal["io.kestra.plugin.zenduty.ZendutyAlert"]


class SquadcastIncomingWebhook(_PayloadWebhook):
    """Send a Squadcast incident through an incoming webhook."""

    service: ClassVar[str] = "Squadcast"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.squadcast.SquadcastIncomingWebhook",)
    type: Literal["io.kestra.plugin.squadcast.SquadcastIncomingWebhook"]


class OpsgenieAlert(_PayloadWebhook):
    """Create an Opsgenie alert; ``authorizationToken`` is the Authorization header."""

    service: ClassVar[str] = "Opsgenie"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.opsgenie.OpsgenieAlert",)
    type: Literal["io.kestra.plugin.opsgenie.OpsgenieAlert"]
    authorizationToken: Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        token = ctx.render_str(self.authorizationToken)
        headers = {"Authorization": token} if token else {}
        url = render_str(ctx, self.url, "url", required=True)
        await self._post(ctx, url, self._payload(ctx), headers)
        return {}


class QQIncomingWebhook(_PayloadWebhook):
    """Send a Tencent Cloud IM (QQ) message; ``token`` is sent as a Bearer token."""

    service: ClassVar[str] = "Tencent IM"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.qq.QQIncomingWebhook",)
    type: Literal["io.kestra.plugin.tencent.qq.QQIncomingWebhook"]
    token: Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        token = ctx.render_str(self.token)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = render_str(ctx, self.url, "url", required=True)
        await self._post(ctx, url, self._payload(ctx), headers)
        return {}

    def _check(self, ctx: TaskContext, response: httpx.Response, text: str) -> None:
        super()._check(ctx, response, text)
        if response.status_code != 200:
            raise TaskError(f"Tencent IM webhook request failed: {text[:2000]}")


class DiscordIncomingWebhook(_PayloadWebhook):
    """Send a Discord message through an incoming webhook."""

    service: ClassVar[str] = "Discord"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.discord.DiscordIncomingWebhook",)
    type: Literal["io.kestra.plugin.discord.DiscordIncomingWebhook"]

    def _payload(self, ctx: TaskContext) -> str:
        # Kestra parses the payload into a JSON tree and sends it re-serialized.
        return _dumps(_parse_json(ctx.render_str(self.payload), "payload"))


_BOLD = re.compile(r"\*\*(.*?)\*\*")
_ITALIC = re.compile(r"__(.*?)__")
_LINK = re.compile(r"\[(.*?)\]\((.*?)\)")


def slack_mrkdwn(text: str) -> str:
    """Kestra's ``toSlackMrkdwn``: markdown bold, italic and links in Slack's syntax."""
    text = _BOLD.sub(r"*\1*", text)
    text = _ITALIC.sub(r"_\1_", text)
    return _LINK.sub(r"<\2|\1>", text)


class SlackIncomingWebhook(_PayloadWebhook):
    """Send a Slack message through an incoming webhook (``payload`` or ``messageText``)."""

    service: ClassVar[str] = "Slack"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.slack.SlackIncomingWebhook",
        f"{_OLD}.slack.SlackIncomingWebhook",
    )
    type: Literal["io.kestra.plugin.slack.notifications.SlackIncomingWebhook"]
    messageText: Str | None = None

    def _payload(self, ctx: TaskContext) -> str:
        if self.payload is not None:
            return _dumps(_parse_json(ctx.render_str(self.payload), "payload"))
        if self.messageText is not None:
            text = ctx.render_str(self.messageText) or ""
            try:
                return _dumps(orjson.loads(text))
            except orjson.JSONDecodeError:
                return _dumps({"text": slack_mrkdwn(text)})
        raise TaskError("Either 'messageText' or 'payload' must be provided")


class SentryAlert(_Notification):
    """Send a Sentry event (envelope or store endpoint) built from a DSN."""

    service: ClassVar[str] = "Sentry"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.sentry.SentryAlert",)
    type: Literal["io.kestra.plugin.sentry.SentryAlert"]
    dsn: Str
    endpointType: Literal["ENVELOPE", "STORE"] | Str = "ENVELOPE"
    payload: Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        dsn = render_str(ctx, self.dsn, "dsn", required=True) or ""
        kind = (ctx.render_str(self.endpointType) or "ENVELOPE").upper()
        if kind not in ("ENVELOPE", "STORE"):
            raise TaskError(f"property 'endpointType': expected ENVELOPE or STORE, got {kind!r}")
        url = sentry_url(dsn, kind)
        payload, event_id = self._event(ctx)
        body = payload
        if kind == "ENVELOPE":
            body = sentry_envelope(event_id, dsn, payload, ctx.clock())
        try:
            await self._post(ctx, url, body)
        except _SentryStatus as exc:
            if exc.code in (401, 404) and kind == "ENVELOPE":
                ctx.log(
                    "ERROR",
                    "Envelope endpoint not supported; Please try to configure the store "
                    "endpoint instead: endpointType: store",
                )
                raise TaskError(str(exc)) from None
            ctx.log("WARN", str(exc))
        return {}

    def _event(self, ctx: TaskContext) -> tuple[str, str]:
        """The event's JSON text and its id."""
        payload = ctx.render_str(self.payload) if self.payload is not None else None
        if payload is None:
            payload = ctx.render_str(SENTRY_DEFAULT_PAYLOAD) or ""
        return payload, to_text(ctx.variables.get("eventId") or uuid.uuid4().hex)

    def _check(self, ctx: TaskContext, response: httpx.Response, text: str) -> None:
        if response.status_code >= 400:
            raise _SentryStatus(response.status_code, text)


class _SentryStatus(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(
            f"Sentry: failed http request with response code '{code}' and body '{text[:2000]}'"
        )
        self.code = code


SENTRY_DSN = re.compile(r"^(https?://[a-f0-9]+@o[0-9]+\.ingest\.sentry\.io/[0-9]+)$")
SENTRY_DEFAULT_PAYLOAD = """{
  "timestamp": "{{ execution.startDate }}",
  "platform": "java",
  "level": "error",
  "message": {
    "message": "Execution {{ execution.id }} failed"
  },
  "extra": {
    "Namespace": "{{ flow.namespace }}",
    "Flow ID": "{{ flow.id }}",
    "Execution ID": "{{ execution.id }}"
  }
}"""


def sentry_url(dsn: str, kind: str) -> str:
    """Kestra's ``EndpointType.getEnvelopeUrl``: the API URL of a Sentry DSN."""
    if not SENTRY_DSN.match(dsn):
        return dsn
    protocol = dsn.split("://")[0]
    host, project = dsn.split("@")[1].split("/")[:2]
    key = dsn.split("@")[0].replace(f"{protocol}://", "")
    return (
        f"{protocol}://{host}/api/{project}/{kind.lower()}/"
        f"?sentry_version=7&sentry_client=java&sentry_key={key}"
    )


def sentry_envelope(event_id: str, dsn: str, payload: str, now: datetime) -> str:
    """Kestra's envelope: header line, item header line, payload (each ending a line)."""
    if len(payload.encode()) > 1024 * 1024:
        raise TaskError("Event payload size exceeds 1MB limit")
    sent_at = now.astimezone(UTC).isoformat().replace("+00:00", "Z")
    header = (
        f'{{"event_id":"{event_id}","dsn":"{dsn}","sdk":{{"name":"java","version":"7"}},'
        f'"sent_at":"{sent_at}"}}'
    )
    item = (
        f'{{"type":"event","length":{len(payload)},"content_type":"application/json",'
        f'"filename":"application.log"}}'
    )
    return f"{header}\n{item}\n{payload}\n"


# ---------------------------------------------------------------------------------------------
# The execution summary of the *Execution types.


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def human_duration(seconds: float) -> str:
    """Apache's ``DurationFormatUtils.formatDurationHMS``: ``H:mm:ss.SSS``."""
    millis = max(int(seconds * 1000), 0)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours}:{minutes:02d}:{secs:02d}.{ms:03d}"


def execution_summary(
    ctx: TaskContext, execution_id: str, custom_message: str | None, custom_fields: dict[str, Any]
) -> dict[str, Any]:
    """What Kestra's ``ExecutionService.executionMap`` gives the templates, from the variables."""
    variables = ctx.variables
    current = variables.get("execution") if isinstance(variables.get("execution"), Mapping) else {}
    trigger = variables.get("trigger") if isinstance(variables.get("trigger"), Mapping) else {}
    flow = variables.get("flow") if isinstance(variables.get("flow"), Mapping) else {}
    assert isinstance(current, Mapping)
    assert isinstance(trigger, Mapping)
    assert isinstance(flow, Mapping)
    summary: dict[str, Any] = {}
    if execution_id == to_text(current.get("id")):
        start = _as_datetime(current.get("startDate"))
        state = to_text(current.get("state") or "RUNNING")
        namespace, flow_id = flow.get("namespace"), flow.get("id")
        summary["lastTask"] = {"taskId": ctx.task_id}
        summary["duration"] = human_duration((ctx.clock() - start).total_seconds()) if start else ""
    elif execution_id and execution_id == to_text(trigger.get("executionId")):
        start = None
        state = to_text(trigger.get("state") or "")
        namespace, flow_id = trigger.get("namespace"), trigger.get("flowId")
        summary["lastTask"] = {"taskId": None}
        summary["duration"] = ""
    else:
        raise TaskError(
            f"Unable to find execution '{execution_id}': Headwater knows only the current "
            "execution ({{ execution.id }}) and a Flow trigger's ({{ trigger.executionId }})"
        )
    summary["firstFailed"] = False
    summary["failed"] = state in ("FAILED", "WARNING") and execution_id != current.get("id")
    summary["startDate"] = start
    summary["execution"] = {
        "id": execution_id,
        "namespace": namespace,
        "flowId": flow_id,
        "state": {"current": state},
    }
    kestra = variables.get("kestra")
    base = kestra.get("url") if isinstance(kestra, Mapping) else None
    if base:
        summary["link"] = (
            f"{str(base).rstrip('/')}/ui/executions/{namespace}/{flow_id}/{execution_id}"
        )
    if custom_message is not None:
        summary["customMessage"] = custom_message
    if custom_fields:
        summary["customFields"] = custom_fields
    return summary


def _outcome(s: Mapping[str, Any]) -> str:
    """``Succeeded``/``Failed on task `t``` ``after {duration}`` of every template."""
    failed = s["firstFailed"]
    if failed is not False:
        head = f"Failed on task `{failed['taskId']}`"
    else:
        head = "Failed" if s["failed"] else "Succeeded"
    return f"{head} after {s['duration']}"


def _title(s: Mapping[str, Any]) -> str:
    e = s["execution"]
    return f"[{_t(e['namespace'])}] {_t(e['flowId'])} ➛ {e['state']['current']}"


def _t(value: Any) -> str:
    """Pebble prints null as the empty string."""
    return "" if value is None else to_text(value)


class _ExecutionMixin:
    executionId: Str
    customFields: dict[str, Any] | Str | None
    customMessage: Str | None

    def _summary(self, ctx: TaskContext) -> dict[str, Any]:
        execution_id = render_str(ctx, self.executionId, "executionId", required=True) or ""
        message = ctx.render_str(self.customMessage)
        fields = render_map(ctx, self.customFields, "customFields")
        return execution_summary(ctx, execution_id, message, fields)


EXECUTION_ID = "{{ execution.id }}"


class _Execution(_ExecutionMixin, FlowModel):
    """The properties every ``*Execution`` type adds (Kestra's ``ExecutionInterface``)."""

    executionId: Str = EXECUTION_ID
    customFields: dict[str, Any] | Str | None = None
    customMessage: Str | None = None
    templateUri: Str | None = None
    templateRenderMap: dict[str, Any] | Str | None = None


def slack_execution_payload(s: Mapping[str, Any]) -> dict[str, Any]:
    """``slack-template.peb`` as data."""
    e = s["execution"]
    title = f"<{s['link']}|{_title(s)}>" if "link" in s else _title(s)
    text = f"*{title}*\n> {_outcome(s)}"
    blocks: list[dict[str, Any]] = []
    if "customMessage" in s:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": s["customMessage"]}})
    section: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if "link" in s:
        section["accessory"] = {
            "type": "button",
            "text": {"type": "plain_text", "text": "Details"},
            "url": s["link"],
        }
    blocks.append(section)
    state = e["state"]["current"]
    color = "good" if state == "SUCCESS" else ("warning" if state == "WARNING" else "danger")
    fields = [
        {"title": "Namespace", "value": e["namespace"], "short": True},
        {"title": "Flow ID", "value": e["flowId"], "short": True},
        {"title": "Execution ID", "value": e["id"], "short": True},
        {"title": "Execution Status", "value": state, "short": True},
    ]
    for key, value in (s.get("customFields") or {}).items():
        fields.append({"title": key, "value": value, "short": True})
    fields.append({"title": "Final task ID", "value": s["lastTask"]["taskId"], "short": True})
    attachment: dict[str, Any] = {"color": color, "fields": fields}
    start = s["startDate"]
    attachment["ts"] = int(start.timestamp()) if start is not None else None
    return {"text": text, "blocks": blocks, "attachments": [attachment]}


class SlackExecution(_ExecutionMixin, SlackIncomingWebhook):
    """Send a Slack message with the execution's summary (Kestra's Slack template)."""

    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.slack.SlackExecution",
        f"{_OLD}.slack.SlackExecution",
    )
    type: Literal["io.kestra.plugin.slack.notifications.SlackExecution"]  # type: ignore[assignment]
    executionId: Str = EXECUTION_ID
    customFields: dict[str, Any] | Str | None = None
    customMessage: Str | None = None
    channel: Str | None = None
    username: Str | None = None
    iconUrl: Str | None = None
    iconEmoji: Str | None = None
    templateUri: Str | None = None
    templateRenderMap: dict[str, Any] | Str | None = None

    def _payload(self, ctx: TaskContext) -> str:
        body = slack_execution_payload(self._summary(ctx))
        for key, prop in (
            ("channel", self.channel),
            ("username", self.username),
            ("icon_url", self.iconUrl),
            ("icon_emoji", self.iconEmoji),
        ):
            value = ctx.render_str(prop)
            if value is not None:
                body[key] = value
        return _dumps(body)


def discord_execution_embed(s: Mapping[str, Any]) -> dict[str, Any]:
    """The embed of ``discord-template.peb``."""
    e = s["execution"]
    link = f"\n\n[Link to the Execution page]({s['link']})" if "link" in s else ""
    description = (
        f"Namespace: {_t(e['namespace'])}\nFlow ID: {_t(e['flowId'])}\nExecution ID: {e['id']}\n"
        f"Execution Status: {e['state']['current']} \n"
        f"Final task ID: {_t(s['lastTask']['taskId'])} {link}"
    )
    return {"description": description, "footer": {"text": _outcome(s)}}


class DiscordEmbed(FlowModel):
    """Kestra's ``DiscordTemplate.Embed``."""

    title: Str | None = None
    websiteUrl: Str | None = None
    description: Str | None = None
    thumbnail: Str | None = None
    authorName: Str | None = None
    color: list[int] | None = None
    footer: Str | None = None

    def render(self, ctx: TaskContext, avatar_url: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, prop in (("title", self.title), ("description", self.description)):
            if prop is not None:
                out[key] = ctx.render_str(prop)
        website = ctx.render_str(self.websiteUrl)
        if website is not None:
            out["url"] = website
        if self.thumbnail is not None:
            out["thumbnail"] = {"url": ctx.render_str(self.thumbnail)}
        if self.authorName is not None:
            out["author"] = {
                "name": ctx.render_str(self.authorName),
                "url": website,
                "icon_url": avatar_url,
            }
        if self.color is not None:
            rgb = self.color
            out["color"] = ((rgb[0] << 16) + (rgb[1] << 8) + rgb[2]) if len(rgb) >= 3 else 0
        if self.footer is not None:
            out["footer"] = {"text": ctx.render_str(self.footer)}
        return out


class DiscordExecution(_ExecutionMixin, DiscordIncomingWebhook):
    """Send a Discord message with the execution's summary (Kestra's Discord template)."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.discord.DiscordExecution",)
    type: Literal["io.kestra.plugin.discord.DiscordExecution"]  # type: ignore[assignment]
    executionId: Str = EXECUTION_ID
    customFields: dict[str, Any] | Str | None = None
    customMessage: Str | None = None
    username: Str | None = None
    avatarUrl: Str | None = None
    embedList: list[DiscordEmbed] | None = None
    content: Str | None = None
    templateUri: Str | None = None
    templateRenderMap: dict[str, Any] | Str | None = None

    def _payload(self, ctx: TaskContext) -> str:
        given = ctx.render_str(self.payload)
        if given is not None and given.strip():
            return _dumps(_parse_json(given, "payload"))
        body: dict[str, Any] = {"embeds": [discord_execution_embed(self._summary(ctx))]}
        avatar = ctx.render_str(self.avatarUrl)
        if self.username is not None:
            body["username"] = ctx.render_str(self.username)
        if self.avatarUrl is not None:
            body["avatar_url"] = avatar
        body["tts"] = False
        if self.embedList is not None:
            embeds = [embed.render(ctx, avatar) for embed in self.embedList]
            if embeds:
                embeds[0].update(body["embeds"][0])
            body["embeds"] = embeds
        if self.content is not None:
            body["content"] = ctx.render_str(self.content)
        return _dumps(body)


def teams_execution_payload(
    s: Mapping[str, Any], theme: str | None, title: str | None, subtitle: str | None
) -> dict[str, Any]:
    """``teams-template.peb`` as data."""
    e = s["execution"]
    section: dict[str, Any] = {}
    if title is not None:
        section["activityTitle"] = title
    if subtitle is not None:
        section["activitySubtitle"] = subtitle
    section["facts"] = [
        {"name": "Namespace", "value": _t(e["namespace"])},
        {"name": "Flow ID", "value": _t(e["flowId"])},
        {"name": "Execution ID", "value": e["id"]},
        {"name": "Execution Status", "value": e["state"]["current"]},
        {"name": "Final task ID", "value": _t(s["lastTask"]["taskId"])},
    ]
    section["markdown"] = True
    return {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": _t(theme),
        "summary": f"*<{_t(s.get('link'))}|{_title(s)}>*\n> {_outcome(s)}",
        "sections": [section],
    }


class TeamsExecution(_ExecutionMixin, TeamsIncomingWebhook):
    """Send a Microsoft Teams message with the execution's summary (Kestra's MessageCard)."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.teams.TeamsExecution",)
    type: Literal["io.kestra.plugin.microsoft365.teams.TeamsExecution"]  # type: ignore[assignment]
    executionId: Str = EXECUTION_ID
    customFields: dict[str, Any] | Str | None = None
    customMessage: Str | None = None
    themeColor: Str | None = "0076D7"
    activityTitle: Str | None = None
    activitySubtitle: Str | None = None
    templateUri: Str | None = None
    templateRenderMap: dict[str, Any] | Str | None = None

    def _payload(self, ctx: TaskContext) -> str:
        body = teams_execution_payload(
            self._summary(ctx),
            ctx.render_str(self.themeColor),
            ctx.render_str(self.activityTitle),
            ctx.render_str(self.activitySubtitle),
        )
        return _dumps(body)


def google_chat_execution_text(s: Mapping[str, Any]) -> str:
    """``google-chat-template.peb``'s text."""
    e = s["execution"]
    return (
        f"Kestra Google notification: Namespace {_t(e['namespace'])}, Flow ID {_t(e['flowId'])}, "
        f"Execution ID {e['id']}, Execution Status {e['state']['current']}, Final task ID "
        f"{_t(s['lastTask']['taskId'])}. *<{_t(s.get('link'))}|{_title(s)}>*\n> {_outcome(s)}"
    )


class GoogleChatExecution(_ExecutionMixin, GoogleChatIncomingWebhook):
    """Send a Google Chat message with the execution's summary (Kestra's template)."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.google.GoogleChatExecution",)
    type: Literal["io.kestra.plugin.googleworkspace.chat.GoogleChatExecution"]  # type: ignore[assignment]
    executionId: Str = EXECUTION_ID
    customFields: dict[str, Any] | Str | None = None
    customMessage: Str | None = None
    text: Str | None = None
    templateUri: Str | None = None
    templateRenderMap: dict[str, Any] | Str | None = None

    def _payload(self, ctx: TaskContext) -> str:
        body = {"text": google_chat_execution_text(self._summary(ctx))}
        text = ctx.render_str(self.text)
        if text is not None:
            body["text"] = text
        return _dumps(body)


PLUGINS: list[type[TaskPlugin]] = [
    SlackIncomingWebhook,
    SlackExecution,
    DiscordIncomingWebhook,
    DiscordExecution,
    TeamsIncomingWebhook,
    TeamsExecution,
    GoogleChatIncomingWebhook,
    GoogleChatExecution,
    ZulipIncomingWebhook,
    PagerDutyAlert,
    ZendutyAlert,
    OpsgenieAlert,
    SquadcastIncomingWebhook,
    QQIncomingWebhook,
    SentryAlert,
]
