"""Kestra's Slack app (Web API) types (kestra-io/plugin-slack, ``app.*``): ``chats.Post``.

``token`` (a bot or user token, Bearer) calls ``https://slack.com/api/{method}`` (the one place
the address is written: :data:`executors.api_client.BASE_URLS`) with a form body, as Slack's Java
SDK does. Slack answers 200 with ``ok``: an answer with ``ok: false`` fails the task with Slack's
``error`` code; a ``warning`` is logged at WARN.

- ``chats.Post``: the message is ``payload`` (JSON, sent as Slack's message fields) or
  ``messageText`` (JSON when it parses as an object, else ``{"text": ...}`` after Kestra's
  markdown-to-mrkdwn rewrite); neither is an error. ``channel``, ``timestamp`` (``thread_ts``: a
  reply), ``username``, ``iconUrl``, ``iconEmoji`` fill the fields the message does not set.
  ``blocks``, ``attachments`` and ``metadata`` are sent as JSON texts; ``reply_broadcast``,
  ``unfurl_links``, ``unfurl_media``, ``mrkdwn`` as booleans. POST ``chat.postMessage``; output
  ``timestamp`` (the message's ``ts``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import orjson

from executors.api_client import ApiClient, base_url
from executors.base import TaskContext, TaskError, to_text
from executors.plugin import TaskPlugin, render_str
from executors.plugins.notifications import slack_mrkdwn
from schemas.flow.common import Str

JSON_FIELDS = ("blocks", "attachments", "metadata")
BOOL_FIELDS = ("reply_broadcast", "unfurl_links", "unfurl_media", "mrkdwn")


def slack_message(ctx: TaskContext, payload: Any, text: Any) -> dict[str, Any]:
    """Kestra's ``MessageService.prepareMessageAsJson`` as a map."""
    if payload is not None:
        rendered = ctx.render_str(payload) or ""
        try:
            parsed = orjson.loads(rendered)
        except orjson.JSONDecodeError as exc:
            raise TaskError(f"property 'payload' is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise TaskError("property 'payload' must be a JSON object")
        return parsed
    if text is not None:
        rendered = ctx.render_str(text) or ""
        try:
            parsed = orjson.loads(rendered)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
        return {"text": slack_mrkdwn(rendered)}
    raise TaskError("Either 'messageText' or 'payload' must be provided")


class _SlackApp(TaskPlugin):
    family: ClassVar[str] = "notifications"

    token: Str

    async def call(self, ctx: TaskContext, method: str, form: dict[str, str]) -> dict[str, Any]:
        token = render_str(ctx, self.token, "token", required=True) or ""
        async with ApiClient(
            ctx,
            "Slack",
            base_url("slack"),
            headers={"Authorization": f"Bearer {token}"},
            secrets=[token],
        ) as api:
            answer = await api.object("POST", f"/{method}", data=form)
        if answer.get("warning"):
            ctx.log("WARN", to_text(answer["warning"]))
        if answer.get("ok") is not True:
            raise TaskError(f"Slack: {method} failed: {answer.get('error') or answer}")
        return answer


class ChatsPost(_SlackApp):
    """Post a message to a Slack channel with the Web API (chat.postMessage)."""

    short: ClassVar[str | None] = "slack_app_chats_post"
    type: Literal["io.kestra.plugin.slack.app.chats.Post"]
    payload: Str | None = None
    messageText: Str | None = None
    channel: Str | None = None
    timestamp: Str | None = None
    username: Str | None = None
    iconUrl: Str | None = None
    iconEmoji: Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        message = slack_message(ctx, self.payload, self.messageText)
        form: dict[str, str] = {}
        for field, prop in (
            ("channel", self.channel),
            ("thread_ts", self.timestamp),
            ("icon_emoji", self.iconEmoji),
            ("icon_url", self.iconUrl),
            ("username", self.username),
        ):
            if field in message:
                form[field] = to_text(message[field])
            elif prop is not None:
                form[field] = ctx.render_str(prop) or ""
        if "text" in message:
            form["text"] = to_text(message["text"])
        for field in JSON_FIELDS:
            if field in message:
                form[field] = orjson.dumps(message[field]).decode()
        for field in BOOL_FIELDS:
            if field in message:
                form[field] = to_text(bool(message[field]))
        answer = await self.call(ctx, "chat.postMessage", form)
        return {"timestamp": answer.get("ts")}


PLUGINS: list[type[TaskPlugin]] = [ChatsPost]
