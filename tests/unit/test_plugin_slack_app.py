"""Slack's chat.postMessage (app.chats.Post) against a real local HTTP receiver playing Slack's Web
API: the form sent, ok/error answers, warnings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from executors.api_client import BASE_URLS
from executors.base import TaskContext, TaskOutcome
from tests.unit.api_receiver import Receiver, run_plugin, serve

TOKEN = "xoxb-SECRET"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with serve() as receiver:
        monkeypatch.setitem(BASE_URLS, "slack", receiver.url + "/api")
        yield receiver


async def run(task: dict[str, Any]) -> tuple[TaskOutcome, TaskContext]:
    task = {"id": "s", "type": "io.kestra.plugin.slack.app.chats.Post", "token": TOKEN, **task}
    return await run_plugin(task)


def form(api: Receiver) -> dict[str, list[str]]:
    return parse_qs(api.last.body.decode())


async def test_post_message_text_and_payload(api: Receiver) -> None:
    api.on(
        "POST",
        "/api/chat.postMessage",
        (200, {"ok": True, "ts": "1712345678.000100", "warning": "missing_charset"}),
    )
    outcome, ctx = await run(
        {
            "channel": "C0123",
            "messageText": "**Stand-up** for {{ flow.id }}, see [docs](https://x.io)",
        }
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"timestamp": "1712345678.000100"}
    assert api.last.headers["authorization"] == f"Bearer {TOKEN}"
    assert api.last.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(api) == {
        "channel": ["C0123"],
        "text": ["*Stand-up* for f, see <https://x.io|docs>"],
    }
    assert ("WARN", "missing_charset") in [(line.level, line.message) for line in ctx.logs]
    payload = (
        '{"channel": "C999", "text": "hi", "blocks": [{"type": "divider"}], "unfurl_links": false}'
    )
    outcome, _ = await run({"channel": "C0123", "timestamp": "1.2", "payload": payload})
    assert form(api) == {
        "channel": ["C999"],
        "thread_ts": ["1.2"],
        "text": ["hi"],
        "blocks": ['[{"type":"divider"}]'],
        "unfurl_links": ["false"],
    }
    api.on("POST", "/api/chat.postMessage", (200, {"ok": False, "error": "channel_not_found"}))
    outcome, ctx = await run({"channel": "C0", "messageText": "x"})
    assert outcome.error == "Slack: chat.postMessage failed: channel_not_found"
    assert not any(TOKEN in line.message for line in ctx.logs)
    outcome, _ = await run({"channel": "C0"})
    assert outcome.error == "Either 'messageText' or 'payload' must be provided"
