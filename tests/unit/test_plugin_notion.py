"""notion.page.Create against a real local HTTP receiver playing Notion's API: the page body, the
markdown converted to Notion blocks, content past 100 blocks appended in batches, and failures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from executors.api_client import BASE_URLS
from executors.base import TaskContext, TaskOutcome
from executors.plugins.notion import markdown_to_blocks
from tests.unit.api_receiver import Receiver, run_plugin, serve

PAGE = "59833787-2cf9-4fdf-8782-e53db20768a5"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with serve() as receiver:
        monkeypatch.setitem(BASE_URLS, "notion", receiver.url)
        yield receiver


async def run(task: dict[str, Any]) -> tuple[TaskOutcome, TaskContext]:
    task = {
        "id": "n",
        "type": "io.kestra.plugin.notion.page.Create",
        "apiToken": "secret_N0T10N",
        **task,
    }
    return await run_plugin(task)


def plain(text: str, **style: Any) -> dict[str, Any]:
    annotations = {
        "bold": False,
        "italic": False,
        "strikethrough": False,
        "underline": False,
        "code": False,
        "color": "default",
    }
    item: dict[str, Any] = {"type": "text", "text": {"content": text}}
    href = style.pop("href", None)
    if href:
        item["text"]["link"] = {"url": href}
        item["href"] = href
    item["annotations"] = {**annotations, **style}
    return item


def test_markdown_to_blocks() -> None:
    markdown = """# Title
#### Deep
Some **bold** and *it* ~~gone~~ `code` [link](https://x.io).

- one
- [x] done
  - nested
1. first

> quote

---

```py
print(1)
```

| a | b |
|---|---|
| 1 |
"""
    blocks = markdown_to_blocks(markdown)
    assert [b["type"] for b in blocks] == [
        "heading_1", "heading_3", "paragraph", "bulleted_list_item", "to_do",
        "numbered_list_item", "quote", "divider", "code", "table",
    ]  # fmt: skip
    assert blocks[2]["paragraph"]["rich_text"] == [
        plain("Some "),
        plain("bold", bold=True),
        plain(" and "),
        plain("it", italic=True),
        plain(" "),
        plain("gone", strikethrough=True),
        plain(" "),
        plain("code", code=True),
        plain(" "),
        plain("link", href="https://x.io"),
        plain("."),
    ]
    todo = blocks[4]["to_do"]
    assert todo["checked"] is True
    assert todo["rich_text"] == [plain("done")]
    assert todo["children"][0]["bulleted_list_item"]["rich_text"] == [plain("nested")]
    assert blocks[8]["code"] == {"rich_text": [plain("print(1)")], "language": "python"}
    table = blocks[9]["table"]
    assert (table["table_width"], table["has_column_header"]) == (2, True)
    assert table["children"][1]["table_row"]["cells"] == [[plain("1")], []]


async def test_create_page_with_batches(api: Receiver) -> None:
    page = {
        "id": "p1",
        "url": "https://notion.so/p1",
        "created_time": "2025-01-01T00:00:00.000Z",
        "archived": False,
        "properties": {"title": {}},
    }
    api.on("POST", "/v1/pages", (200, page))
    api.on("PATCH", "/v1/blocks/p1/children", (200, {"results": []}))
    content = "\n\n".join(f"line {i}" for i in range(230))
    outcome, _ = await run(
        {"title": "Daily {{ flow.id }}", "content": content, "parentPageId": PAGE}
    )
    assert outcome.state == "SUCCESS", outcome.error
    create, first, second = api.requests
    assert create.headers["authorization"] == "Bearer secret_N0T10N"
    assert create.headers["notion-version"] == "2022-06-28"
    body = create.json
    assert body["parent"] == {"type": "page_id", "page_id": PAGE}
    assert body["properties"] == {
        "title": {"title": [{"type": "text", "text": {"content": "Daily f"}}]}
    }
    assert len(body["children"]) == 100
    assert [len(r.json["children"]) for r in (first, second)] == [100, 30]
    assert second.json["children"][-1]["paragraph"]["rich_text"] == [plain("line 229")]
    assert outcome.outputs["pageId"] == "p1"
    assert outcome.outputs["url"] == "https://notion.so/p1"
    assert outcome.outputs["message"] == "Page created successfully"

    outcome, _ = await run({"title": "t"})
    assert api.last.json["parent"] == {"type": "workspace", "workspace": True}
    assert "children" not in api.last.json
    outcome, _ = await run({"title": "t", "parentPageId": "not-a-uuid"})
    assert outcome.error == "parentPageId must be a valid Notion page ID (UUID format)"
    api.on(
        "POST",
        "/v1/pages",
        (400, {"object": "error", "code": "validation_error", "message": "body failed validation"}),
    )
    outcome, ctx = await run({"title": "t"})
    assert (outcome.error or "").startswith("Notion: POST /v1/pages failed with HTTP 400:")
    assert not any("secret_N0T10N" in line.message for line in ctx.logs)
