"""Kestra's messaging notifications: Telegram, LINE, Messenger, WhatsApp, Twilio Notify and X.

All share :class:`executors.plugins.notifications._Notification` (Kestra's request ``options``,
a status of 400 or more fails the task with the service's answer, URLs shown by scheme and host
only). Types, properties and the request each sends:

- ``telegram.TelegramSend``: ``token``, ``channel``, ``payload`` (required), ``parseMode``
  (``HTML`` | ``MARKDOWNV2``), ``endpointOverride`` (``https://api.telegram.org``). POST
  ``{endpoint}/bot{token}/sendMessage`` with ``{"chat_id", "text", "parse_mode"?}``; an answer
  that is not 200 with ``"ok": true`` fails ("Unable to send Telegram message"). The token is in
  the path: never shown. ``TelegramExecution``: ``payload`` is Kestra's one-line summary,
  quotes included (Kestra's template has them).
- ``line.LineExecution``: ``url`` (``https://api.line.me/v2/bot/message/broadcast``),
  ``channelAccessToken`` (Bearer), ``textBody`` (sent instead of the summary). Body
  ``{"messages": [{"type": "text", "text": ...}]}``.
- ``meta.messenger.MessengerExecution``: ``pageId``, ``accessToken`` (Bearer), ``recipientIds``
  (at least one), ``messagingType`` (``UPDATE``), ``url`` (``https://graph.facebook.com/v23.0/
  {pageId}/messages``), ``textBody`` (used only without the summary, as in Kestra: never). One
  POST per recipient: ``{"recipient": {"id"}, "messaging_type", "message": {"text"}}``.
- ``meta.whatsapp.WhatsAppIncomingWebhook``: ``url``, ``payload`` sent as written.
  ``WhatsAppExecution``: Kestra's map (``contacts`` empty, one text message whose body is the
  list of summary lines), then ``contacts`` from ``profileName`` + ``whatsAppIds``, the message
  replaced when ``from`` is given (``id`` = ``messageId``, text = ``textBody`` or the summary),
  ``recipient_id``.
- ``twilio.notify.TwilioAlert``: ``url``, ``payload`` (a JSON map), ``accountSID`` and
  ``authToken`` (HTTP Basic). The map is sent form-encoded. ``TwilioExecution``: the map
  ``{"body": summary}`` plus ``Body``, ``Identity``, ``Tag`` from ``body``, ``identity``, ``tag``.
- ``x.XExecution``: ``url`` (``https://api.x.com/2/tweets``), ``bearerToken`` or OAuth 1.0a
  (``consumerKey``, ``consumerSecret``, ``accessToken``, ``accessSecret``: HMAC-SHA1 over the
  method, URL and oauth parameters, encoded as Java's URLEncoder does, as Kestra signs), the
  post ``{"text"}`` (``textBody`` or the summary; more than 280 characters fails).

The summaries are :func:`executors.plugins.notifications.execution_summary`'s data written as
Kestra's templates write them; where a template prints a missing value, ours prints nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import quote_plus, urlencode

import httpx
import orjson
from pydantic import Field

from executors.base import TaskContext, TaskError, iso_millis, to_text
from executors.plugin import TaskPlugin, render_str
from executors.plugins.notifications import (
    _dumps,
    _Execution,
    _Notification,
    _outcome,
    _PayloadWebhook,
    _t,
    _title,
)
from schemas.flow.common import Str

_OLD = "io.kestra.plugin.notifications"


def _linked_title(s: Mapping[str, Any]) -> str:
    return f"*<{_t(s.get('link'))}|{_title(s)}>*\n> {_outcome(s)}"


def _facts(s: Mapping[str, Any]) -> list[str]:
    e = s["execution"]
    return [
        f"Namespace {_t(e['namespace'])}",
        f"Flow ID {_t(e['flowId'])}",
        f"Execution ID {e['id']}",
        f"Execution Status {e['state']['current']}",
        f"Final task ID {_t(s['lastTask']['taskId'])}",
    ]


def details_text(s: Mapping[str, Any], failed_line: str) -> str:
    """The LINE and Messenger text: state, details, custom message and fields, link."""
    e = s["execution"]
    start = s["startDate"]
    lines = [
        f"Execution {e['state']['current']}",
        "",
        "Details:",
        f"- ID: {e['id']}",
        f"- Namespace: {_t(e['namespace'])}",
        f"- Flow: {_t(e['flowId'])}",
        f"- Started: {iso_millis(start) if start is not None else ''}",
        f"- Duration: {s['duration']}",
    ]
    failed = s["firstFailed"]
    if failed is not False:
        lines.append(failed_line.format(task=_t(failed["taskId"])))
    if "customMessage" in s:
        lines += ["", to_text(s["customMessage"])]
    if s.get("customFields"):
        lines.append("")
        lines += [f"- {k}: {to_text(v)}" for k, v in s["customFields"].items()]
    lines += ["", f"View Execution: {_t(s.get('link'))}"]
    return "\n".join(lines)


def _bearer(ctx: TaskContext, value: Any, name: str) -> dict[str, str]:
    token = render_str(ctx, value, name, required=True)
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------------------------------------
# Telegram


class TelegramSend(_Notification):
    """Send a Telegram message through the Bot API."""

    service: ClassVar[str] = "Telegram"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.telegram.TelegramSend",)
    type: Literal["io.kestra.plugin.telegram.TelegramSend"]
    token: Str
    channel: Str
    payload: Str | None = None
    parseMode: Literal["HTML", "MARKDOWNV2"] | Str | None = None
    endpointOverride: Str | None = None

    def _text(self, ctx: TaskContext) -> str:
        return render_str(ctx, self.payload, "payload", required=True) or ""

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        base = ctx.render_str(self.endpointOverride) or "https://api.telegram.org"
        token = render_str(ctx, self.token, "token", required=True)
        body: dict[str, Any] = {
            "chat_id": render_str(ctx, self.channel, "channel", required=True),
            "text": self._text(ctx),
        }
        if self.parseMode is not None:
            mode = (ctx.render_str(self.parseMode) or "").upper()
            modes = {"HTML": "HTML", "MARKDOWNV2": "MarkdownV2"}
            if mode not in modes:
                raise TaskError(f"property 'parseMode': expected HTML or MARKDOWNV2, got {mode!r}")
            body["parse_mode"] = modes[mode]
        await self._post(ctx, f"{base.rstrip('/')}/bot{token}/sendMessage", _dumps(body))
        return {}

    def _check(self, ctx: TaskContext, response: httpx.Response, text: str) -> None:
        try:
            ok = response.status_code == 200 and orjson.loads(text).get("ok") is True
        except (orjson.JSONDecodeError, AttributeError):
            ok = False
        if not ok:
            raise TaskError(
                f"Unable to send Telegram message: {response.status_code} {text[:2000]}".rstrip()
            )


class TelegramExecution(_Execution, TelegramSend):
    """Send a Telegram message with the execution's summary."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.telegram.TelegramExecution",)
    type: Literal["io.kestra.plugin.telegram.TelegramExecution"]  # type: ignore[assignment]

    def _text(self, ctx: TaskContext) -> str:
        s = self._summary(ctx)
        e = s["execution"]
        return (
            f'"<{_t(e["namespace"])} {_t(e["flowId"])} {e["id"]} ➛ {e["state"]["current"]} - '
            f"Final task ID ➛ {_t(s['lastTask']['taskId'])}> {_outcome(s)} "
            f'({_t(s.get("link"))})"'
        )


# ---------------------------------------------------------------------------------------------
# LINE and Messenger


class LineExecution(_Execution, _Notification):
    """Broadcast a LINE message with the execution's summary."""

    service: ClassVar[str] = "LINE"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.line.LineExecution",)
    type: Literal["io.kestra.plugin.line.LineExecution"]
    url: Str = "https://api.line.me/v2/bot/message/broadcast"
    channelAccessToken: Str
    textBody: Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        headers = _bearer(ctx, self.channelAccessToken, "channelAccessToken")
        text = ctx.render_str(self.textBody)
        if text is None:
            text = details_text(self._summary(ctx), "- Failed Task: {task}")
        body = {"messages": [{"type": "text", "text": text}]}
        await self._post(ctx, render_str(ctx, self.url, "url"), _dumps(body), headers)
        return {}


class MessengerExecution(_Execution, _Notification):
    """Send a Facebook Messenger message with the execution's summary to each recipient."""

    service: ClassVar[str] = "Messenger"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.messenger.MessengerExecution",)
    type: Literal["io.kestra.plugin.meta.messenger.MessengerExecution"]
    pageId: Str
    accessToken: Str
    recipientIds: list[Str] | Str
    messagingType: Literal["RESPONSE", "UPDATE", "MESSAGE_TAG"] | Str = "UPDATE"
    textBody: Str | None = None
    url: Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        recipients = ctx.render(self.recipientIds)
        if isinstance(recipients, str):
            recipients = [recipients]
        if not recipients:
            raise TaskError("Atleast one RecipientId is required")
        headers = _bearer(ctx, self.accessToken, "accessToken")
        kind = (ctx.render_str(self.messagingType) or "UPDATE").upper()
        if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            raise TaskError("property 'messagingType': expected RESPONSE, UPDATE or MESSAGE_TAG")
        page = render_str(ctx, self.pageId, "pageId", required=True)
        url = ctx.render_str(self.url) or f"https://graph.facebook.com/v23.0/{page}/messages"
        text = details_text(self._summary(ctx), "- Failed on task `{task}`")
        for recipient in recipients:
            body = {
                "recipient": {"id": to_text(recipient)},
                "messaging_type": kind,
                "message": {"text": text},
            }
            await self._post(ctx, url, _dumps(body), headers)
            ctx.log("INFO", f"Messenger message sent successfully to {to_text(recipient)}")
        return {}


# ---------------------------------------------------------------------------------------------
# WhatsApp


class WhatsAppIncomingWebhook(_PayloadWebhook):
    """Send a WhatsApp message through an incoming webhook."""

    service: ClassVar[str] = "WhatsApp"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.whatsapp.WhatsAppIncomingWebhook",)
    type: Literal["io.kestra.plugin.meta.whatsapp.WhatsAppIncomingWebhook"]


class WhatsAppExecution(_Execution, WhatsAppIncomingWebhook):
    """Send a WhatsApp message with the execution's summary."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.whatsapp.WhatsAppExecution",)
    type: Literal["io.kestra.plugin.meta.whatsapp.WhatsAppExecution"]  # type: ignore[assignment]
    profileName: Str | None = None
    whatsAppIds: list[Str] | Str | None = None
    from_: Str | None = Field(default=None, alias="from")
    messageId: Str | None = None
    textBody: Str | None = None
    recipientId: Str | None = None

    def _payload(self, ctx: TaskContext) -> str:
        s = self._summary(ctx)
        text = {"body": [*_facts(s), _linked_title(s)]}
        body: dict[str, Any] = {"contacts": [], "messages": [{"text": text, "type": "text"}]}
        profile = ctx.render_str(self.profileName)
        ids = ctx.render(self.whatsAppIds)
        ids = [ids] if isinstance(ids, str) else list(ids or [])
        if profile is not None and ids:
            body["contacts"] = [{"profile": {"name": profile}, "wa_id": to_text(i)} for i in ids]
        sender = ctx.render_str(self.from_)
        if sender is not None:
            message: dict[str, Any] = {"from": sender}
            message_id = ctx.render_str(self.messageId)
            if message_id is not None:
                message["id"] = message_id
            given = ctx.render_str(self.textBody)
            message["text"] = {"body": given} if given is not None else text
            message["type"] = "text"
            body["messages"] = [message]
        recipient = ctx.render_str(self.recipientId)
        if recipient is not None:
            body["recipient_id"] = recipient
        return _dumps(body)


# ---------------------------------------------------------------------------------------------
# Twilio Notify


class TwilioAlert(_Notification):
    """Send a Twilio Notify notification (a JSON map sent form-encoded, HTTP Basic auth)."""

    service: ClassVar[str] = "Twilio"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.twilio.TwilioAlert",)
    type: Literal["io.kestra.plugin.twilio.notify.TwilioAlert"]
    url: Str
    payload: Str | None = None
    accountSID: Str
    authToken: Str

    def _fields(self, ctx: TaskContext) -> dict[str, Any]:
        text = render_str(ctx, self.payload, "payload", required=True) or ""
        try:
            fields = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise TaskError(f"property 'payload' is not valid JSON: {exc}") from None
        if not isinstance(fields, dict):
            raise TaskError("property 'payload' must be a JSON map")
        return fields

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        sid = render_str(ctx, self.accountSID, "accountSID", required=True)
        token = render_str(ctx, self.authToken, "authToken", required=True)
        basic = base64.b64encode(f"{sid}:{token}".encode()).decode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"Basic {basic}",
        }
        form = urlencode({k: to_text(v) for k, v in self._fields(ctx).items()})
        await self._post(ctx, render_str(ctx, self.url, "url", required=True), form, headers)
        return {}


class TwilioExecution(_Execution, TwilioAlert):
    """Send a Twilio Notify notification with the execution's summary."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.twilio.TwilioExecution",)
    type: Literal["io.kestra.plugin.twilio.notify.TwilioExecution"]  # type: ignore[assignment]
    body: Str | None = None
    identity: Str | None = None
    tag: Str | None = None

    def _fields(self, ctx: TaskContext) -> dict[str, Any]:
        s = self._summary(ctx)
        fields: dict[str, Any] = {"body": f"{', '.join(_facts(s))}. {_linked_title(s)}"}
        for key, prop in (("Body", self.body), ("Identity", self.identity), ("Tag", self.tag)):
            value = ctx.render_str(prop)
            if value is not None:
                fields[key] = value
        return fields


# ---------------------------------------------------------------------------------------------
# X

MAX_POST_LENGTH = 280


def _java_urlencode(text: str) -> str:
    """Java's ``URLEncoder.encode`` (form encoding: space as +, ``*`` kept), as Kestra signs."""
    return quote_plus(text, safe="*")


def oauth1_header(
    url: str, consumer: tuple[str, str], token: tuple[str, str], nonce: str, timestamp: int
) -> str:
    """Kestra's OAuth 1.0a ``Authorization`` header of a POST without query parameters."""
    params = {
        "oauth_consumer_key": consumer[0],
        "oauth_nonce": nonce,
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": str(timestamp),
        "oauth_token": token[0],
        "oauth_version": "1.0",
    }
    joined = "&".join(
        f"{_java_urlencode(k)}={_java_urlencode(v)}" for k, v in sorted(params.items())
    )
    base = f"POST&{_java_urlencode(url)}&{_java_urlencode(joined)}"
    key = f"{_java_urlencode(consumer[1])}&{_java_urlencode(token[1])}"
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()
    signature = _java_urlencode(base64.b64encode(digest).decode())
    return (
        f'OAuth oauth_consumer_key="{consumer[0]}", oauth_nonce="{nonce}", '
        f'oauth_signature="{signature}", oauth_signature_method="HMAC-SHA1", '
        f'oauth_timestamp="{timestamp}", oauth_token="{token[0]}", oauth_version="1.0"'
    )


def x_text(s: Mapping[str, Any]) -> str:
    """Kestra's ``x.peb``."""
    e = s["execution"]
    text = f"{e['state']['current']}: {_t(e['namespace'])}/{_t(e['flowId'])}\n"
    failed = s["firstFailed"]
    if failed is not False:
        text += f" Failed: {_t(failed['taskId'])}\n"
    if "customMessage" in s:
        text += f"{to_text(s['customMessage'])}\n"
    for key, value in (s.get("customFields") or {}).items():
        text += f"{key}: {to_text(value)}\n"
    return text + f"🔗 {_t(s.get('link'))}"


class XExecution(_Execution, _Notification):
    """Post on X (Twitter) the execution's summary."""

    service: ClassVar[str] = "X"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.x.XExecution",)
    type: Literal["io.kestra.plugin.x.XExecution"]
    url: Str = "https://api.x.com/2/tweets"
    bearerToken: Str | None = None
    consumerKey: Str | None = None
    consumerSecret: Str | None = None
    accessToken: Str | None = None
    accessSecret: Str | None = None
    textBody: Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        url = render_str(ctx, self.url, "url", required=True) or ""
        bearer = ctx.render_str(self.bearerToken)
        if bearer is not None:
            auth = f"Bearer {bearer}"
        else:
            consumer = (
                render_str(ctx, self.consumerKey, "consumerKey", required=True) or "",
                render_str(ctx, self.consumerSecret, "consumerSecret", required=True) or "",
            )
            token = (
                render_str(ctx, self.accessToken, "accessToken", required=True) or "",
                render_str(ctx, self.accessSecret, "accessSecret", required=True) or "",
            )
            now = int(ctx.clock().timestamp())
            auth = oauth1_header(url, consumer, token, uuid.uuid4().hex, now)
        text = x_text(self._summary(ctx))
        if len(text) > MAX_POST_LENGTH:
            raise TaskError(
                f"Tweet message exceeds maximum length of {MAX_POST_LENGTH} characters. "
                f"Current length: {len(text)}"
            )
        await self._post(ctx, url, _dumps({"text": text}), {"Authorization": auth})
        return {}


PLUGINS: list[type[TaskPlugin]] = [
    TelegramSend,
    TelegramExecution,
    LineExecution,
    MessengerExecution,
    WhatsAppIncomingWebhook,
    WhatsAppExecution,
    TwilioAlert,
    TwilioExecution,
    XExecution,
]
