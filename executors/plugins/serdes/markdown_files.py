"""markdown.MarkdownToHtml and markdown.MarkdownToText (Kestra uses commonmark-java; here
markdown-it-py's CommonMark parser, which renders the same reference HTML).

Both: ``from``, ``charset`` (UTF-8); output ``uri`` only, metric ``bytes`` (characters
written). MarkdownToHtml renders CommonMark to HTML, raw HTML passed through (Kestra's
``escapeHtml(false)``); the result is ``.html``. MarkdownToText keeps the text of paragraphs
and headings (each then a newline), list items as ``- `` lines, link and image text; soft
line breaks become spaces, hard ones newlines; code and raw HTML are left out, as Kestra's
visitor does; the result is trimmed, ``.txt``.

Not provided: markdown.HtmlToMarkdown (Kestra's output is flexmark's converter, which no
Python library reproduces).
"""

from __future__ import annotations

from typing import IO, Any, Literal

from executors.base import TaskContext, TaskOutcome
from executors.plugins.serdes.base import Conversion, Run, charset, decode_error
from schemas.flow.common import Str


def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


def to_html(markdown: str) -> str:
    html: str = _parser().render(markdown)
    return html


def to_text(markdown: str) -> str:
    """Kestra's toPlainText visitor over the CommonMark tree."""
    out: list[str] = []
    for token in _parser().parse(markdown):
        if token.type == "inline":
            _inline(token.children or [], out)
        elif token.type in ("paragraph_close", "heading_close", "list_item_close"):
            out.append("\n")
        elif token.type == "list_item_open":
            out.append("- ")
    return "".join(out).strip()


def _inline(children: list[Any], out: list[str]) -> None:
    for child in children:
        if child.type == "text":
            out.append(child.content)
        elif child.type == "softbreak":
            out.append(" ")
        elif child.type == "hardbreak":
            out.append("\n")
        elif child.type == "image":
            _inline(child.children or [], out)


class _Markdown(Conversion):
    charset: Str = "UTF-8"

    def prepare(self, ctx: TaskContext) -> None:
        self._charset = charset(ctx, self.charset)

    def render(self, markdown: str) -> str:
        raise NotImplementedError

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        try:
            markdown = source.read().decode(self._charset)
        except UnicodeDecodeError as exc:
            raise decode_error(exc, self._charset) from None
        run.check(0)
        rendered = self.render(markdown)
        target.write(rendered.encode(self._charset, errors="strict"))
        return len(rendered)

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        outcome = await super().run(ctx)
        size = outcome.outputs.pop("size", 0)
        outcome.metrics = {"bytes": size} if outcome.state == "SUCCESS" else {}
        return outcome


class MarkdownToHtml(_Markdown):
    """Convert a Markdown file to HTML."""

    type: Literal["io.kestra.plugin.serdes.markdown.MarkdownToHtml"]

    def result_name(self) -> str:
        return "result.html"

    def render(self, markdown: str) -> str:
        return to_html(markdown)


class MarkdownToText(_Markdown):
    """Convert a Markdown file to plain text."""

    type: Literal["io.kestra.plugin.serdes.markdown.MarkdownToText"]

    def result_name(self) -> str:
        return "result.txt"

    def render(self, markdown: str) -> str:
        return to_text(markdown)
