"""Kestra's ``io.kestra.plugin.notion.page.Create`` (kestra-io/plugin-notion): a page from markdown.

Properties: ``apiToken`` (Bearer; missing: "Missing required apiToken field"), ``title``
(required), ``content`` (markdown), ``parentPageId`` (a UUID, with or without dashes; when empty
the page goes to the workspace root), ``options``. Requests carry ``Notion-Version: 2022-06-28``
and go to ``https://api.notion.com`` (:data:`executors.api_client.BASE_URLS`).

POST ``/v1/pages`` ``{"parent": {"type": "page_id", "page_id"} | {"type": "workspace",
"workspace": true}, "properties": {"title": {"title": [{"type": "text", "text": {"content"}}]}},
"children": [...]}`` with the first 100 blocks of the content; the others are appended 100 at a
time with PATCH ``/v1/blocks/{page id}/children`` (Notion caps one request at 100 blocks).
Outputs ``pageId``, ``url``, ``title``, ``content``, ``createdTime``, ``lastEditedTime``,
``archived``, ``properties``, ``message`` ("Page created successfully").

The markdown becomes Notion blocks as Kestra's ``MarkdownConverter`` makes them (CommonMark with
GFM tables, strikethrough and task lists, here parsed by markdown-it-py): headings (levels past 3
become ``heading_3``), paragraphs, fenced and indented code (the fence's language when Notion
knows it, after Kestra's aliases, else "plain text"), bulleted / numbered list items (``[ ]`` /
``[x]`` items are ``to_do`` blocks; nested blocks are children), quotes, dividers and tables
(header row first, rows padded to the widest). Inline text keeps bold, italic, strikethrough,
code and links as rich-text annotations; an image keeps its alt text; raw HTML is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from executors.api_client import ApiClient, base_url
from executors.base import TaskContext, TaskError
from executors.http_client import HttpOptions
from executors.plugin import TaskPlugin, render_str
from schemas.flow.common import Str

NOTION_VERSION = "2022-06-28"
# Notion refuses a request with more child blocks than this.
MAX_BLOCKS_PER_REQUEST = 100
PAGE_ID = re.compile(
    r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$"
)
# Notion's code-block languages (a closed list: it refuses a request naming another).
LANGUAGES = frozenset(
    (
        "abap|agda|arduino|ascii art|assembly|bash|basic|bnf|c|c#|c++|clojure|coffeescript|coq|"
        "css|dart|dhall|diff|docker|ebnf|elixir|elm|erlang|f#|flow|fortran|gherkin|glsl|go|"
        "graphql|groovy|haskell|hcl|html|idris|java|javascript|json|julia|kotlin|latex|less|"
        "lisp|livescript|llvm ir|lua|makefile|markdown|markup|matlab|mathematica|mermaid|nix|"
        "notion formula|objective-c|ocaml|pascal|perl|php|plain text|powershell|prolog|protobuf|"
        "purescript|python|r|racket|reason|ruby|rust|sass|scala|scheme|scss|shell|smalltalk|"
        "solidity|sql|swift|toml|typescript|vb.net|verilog|vhdl|visual basic|webassembly|xml|"
        "yaml|java/c/c++/c#"
    ).split("|")
)
ALIASES = {
    "js": "javascript", "jsx": "javascript", "node": "javascript", "ts": "typescript",
    "tsx": "typescript", "py": "python", "rb": "ruby", "rs": "rust", "kt": "kotlin", "cs": "c#",
    "cpp": "c++", "cxx": "c++", "objc": "objective-c", "golang": "go", "sh": "shell",
    "zsh": "shell", "yml": "yaml", "md": "markdown", "dockerfile": "docker", "proto": "protobuf",
    "htm": "html", "text": "plain text", "plain": "plain text", "plaintext": "plain text",
    "txt": "plain text",
}  # fmt: skip
_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_TASK = re.compile(r"^\[([ xX])\]\s")


@dataclass(frozen=True, slots=True)
class _Style:
    bold: bool = False
    italic: bool = False
    code: bool = False
    strike: bool = False
    href: str | None = None


def _language(info: str) -> str:
    token = info.strip().split()[0].lower() if info.strip() else ""
    token = ALIASES.get(token, token)
    return token if token in LANGUAGES else "plain text"


def _block(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"object": "block", "type": kind, kind: body}


def _text(out: list[dict[str, Any]], content: str, style: _Style) -> None:
    if not content:
        return
    text: dict[str, Any] = {"content": content}
    item: dict[str, Any] = {"type": "text", "text": text}
    if style.href:
        text["link"] = {"url": style.href}
        item["href"] = style.href
    item["annotations"] = {
        "bold": style.bold,
        "italic": style.italic,
        "strikethrough": style.strike,
        "underline": False,
        "code": style.code,
        "color": "default",
    }
    out.append(item)


def _inlines(node: SyntaxTreeNode, out: list[dict[str, Any]], style: _Style) -> None:
    for child in node.children:
        kind = child.type
        if kind in ("text", "text_special"):
            _text(out, child.content, style)
        elif kind == "strong":
            _inlines(child, out, replace(style, bold=True))
        elif kind == "em":
            _inlines(child, out, replace(style, italic=True))
        elif kind == "s":
            _inlines(child, out, replace(style, strike=True))
        elif kind == "code_inline":
            _text(out, child.content, replace(style, code=True))
        elif kind == "link":
            href = str(child.attrs.get("href") or "")
            _inlines(child, out, replace(style, href=href) if href.strip() else style)
        elif kind in ("softbreak", "hardbreak"):
            _text(out, "\n", style)
        else:  # images (their alt text), unknown containers; raw HTML has no children
            _inlines(child, out, style)


def rich_text(node: SyntaxTreeNode) -> list[dict[str, Any]]:
    """The rich text of a block's inline content (``inline`` children, descended)."""
    out: list[dict[str, Any]] = []
    for child in node.children:
        if child.type == "inline":
            _inlines(child, out, _Style())
        else:
            _inlines(child, out, _Style())
    return out


def _list_item(item: SyntaxTreeNode, ordered: bool) -> dict[str, Any]:
    children = list(item.children)
    text: list[dict[str, Any]] = []
    if children and children[0].type == "paragraph":
        text = rich_text(children.pop(0))
    checked: bool | None = None
    if text and text[0]["text"]["content"] and (m := _TASK.match(text[0]["text"]["content"])):
        checked = m.group(1) != " "
        rest = text[0]["text"]["content"][m.end() :]
        text = ([{**text[0], "text": {**text[0]["text"], "content": rest}}] if rest else []) + text[
            1:
        ]
    body: dict[str, Any] = {"rich_text": text}
    kind = "numbered_list_item" if ordered else "bulleted_list_item"
    if checked is not None:
        kind, body["checked"] = "to_do", checked
    nested = [b for child in children for b in _blocks(child)]
    if nested:
        body["children"] = nested
    return _block(kind, body)


def _table(node: SyntaxTreeNode) -> dict[str, Any] | None:
    rows = [
        [rich_text(cell) for cell in row.children]
        for section in node.children
        for row in section.children
        if row.type == "tr"
    ]
    width = max((len(r) for r in rows), default=0)
    if width == 0:
        return None
    children = [_block("table_row", {"cells": r + [[]] * (width - len(r))}) for r in rows]
    return _block(
        "table",
        {
            "table_width": width,
            "has_column_header": True,
            "has_row_header": False,
            "children": children,
        },
    )


def _blocks(node: SyntaxTreeNode) -> list[dict[str, Any]]:
    kind = node.type
    if kind == "heading":
        level = min(int(node.tag[1:]), 3)
        return [_block(f"heading_{level}", {"rich_text": rich_text(node)})]
    if kind == "paragraph":
        return [_block("paragraph", {"rich_text": rich_text(node)})]
    if kind in ("fence", "code_block"):
        code = node.content[:-1] if node.content.endswith("\n") else node.content
        text: list[dict[str, Any]] = []
        _text(text, code, _Style())
        info = node.info if kind == "fence" else ""
        return [_block("code", {"rich_text": text, "language": _language(info)})]
    if kind in ("bullet_list", "ordered_list"):
        ordered = kind == "ordered_list"
        return [_list_item(item, ordered) for item in node.children if item.type == "list_item"]
    if kind == "blockquote":
        children = list(node.children)
        text = rich_text(children.pop(0)) if children and children[0].type == "paragraph" else []
        body: dict[str, Any] = {"rich_text": text}
        nested = [b for child in children for b in _blocks(child)]
        if nested:
            body["children"] = nested
        return [_block("quote", body)]
    if kind == "hr":
        return [_block("divider", {})]
    if kind == "table":
        table = _table(node)
        return [table] if table else []
    fallback = rich_text(node)
    return [_block("paragraph", {"rich_text": fallback})] if fallback else []


def markdown_to_blocks(markdown: str) -> list[dict[str, Any]]:
    """Kestra's ``MarkdownConverter.markdownToBlocks``."""
    if not markdown.strip():
        return []
    tree = SyntaxTreeNode(_PARSER.parse(markdown))
    return [block for node in tree.children for block in _blocks(node)]


class PageCreate(TaskPlugin):
    """Create a Notion page with a title and markdown content."""

    family: ClassVar[str] = "notion"
    short: ClassVar[str | None] = "notion_page_create"

    type: Literal["io.kestra.plugin.notion.page.Create"]
    apiToken: Str | None = None
    title: Str
    content: Str | None = None
    parentPageId: Str | None = None
    options: HttpOptions | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        token = ctx.render_str(self.apiToken)
        if token is None:
            raise TaskError("Missing required apiToken field")
        title = render_str(ctx, self.title, "title", required=True) or ""
        content = ctx.render_str(self.content)
        blocks = markdown_to_blocks(content) if content else []
        parent_id = ctx.render_str(self.parentPageId)
        if parent_id and not PAGE_ID.match(parent_id):
            raise TaskError("parentPageId must be a valid Notion page ID (UUID format)")
        parent: dict[str, Any] = (
            {"type": "page_id", "page_id": parent_id}
            if parent_id
            else {"type": "workspace", "workspace": True}
        )
        body: dict[str, Any] = {
            "parent": parent,
            "properties": {"title": {"title": [{"type": "text", "text": {"content": title}}]}},
        }
        if blocks:
            body["children"] = blocks[:MAX_BLOCKS_PER_REQUEST]
        headers = {"Authorization": f"Bearer {token}", "Notion-Version": NOTION_VERSION}
        ctx.log("INFO", f"Creating Notion page with title: {title}")
        async with ApiClient(
            ctx,
            "Notion",
            base_url("notion"),
            headers=headers,
            secrets=[token],
            options=self.options,
        ) as api:
            json_utf8 = {"Content-Type": "application/json; charset=UTF-8"}
            page = await api.object("POST", "/v1/pages", json=body, headers=json_utf8)
            for start in range(MAX_BLOCKS_PER_REQUEST, len(blocks), MAX_BLOCKS_PER_REQUEST):
                batch = blocks[start : start + MAX_BLOCKS_PER_REQUEST]
                await api.object(
                    "PATCH",
                    f"/v1/blocks/{page.get('id')}/children",
                    json={"children": batch},
                    headers=json_utf8,
                )
        return {
            "pageId": page.get("id"),
            "url": page.get("url"),
            "title": title,
            "content": content,
            "createdTime": page.get("created_time"),
            "lastEditedTime": page.get("last_edited_time"),
            "archived": page.get("archived"),
            "properties": page.get("properties"),
            "message": "Page created successfully",
        }


PLUGINS: list[type[TaskPlugin]] = [PageCreate]
