"""``io.kestra.plugin.core.execution.Assert``: fail the task unless every condition holds.

From Kestra 1.x's ``Assert``: ``conditions`` (required, a list of expressions) are rendered one
by one and read with Kestra's truthiness (``false``, ``0``, ``-0`` and blank are false). A false
one logs ``Assertion `<condition>` failed!`` at ERROR; one that cannot be rendered logs
``Assertion `<condition>` failed, failed to render `<reason>``` and counts as failed. Metrics
``success`` and ``failed`` count them. Any failure fails the task with ``N assertion(s)
failed!``, followed by a line with the rendered ``errorMessage`` when there is one. No outputs.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from engine.errors import ExpressionError
from executors.base import TaskContext, TaskError, TaskOutcome, to_text
from executors.plugin import TaskPlugin, render_str
from schemas.flow.common import Str

_FALSY = frozenset({"false", "0", "-0", ""})


class Assert(TaskPlugin):
    """Fail unless every condition renders true."""

    family: ClassVar[str] = "core"
    short: ClassVar[str | None] = "assert"

    type: Literal["io.kestra.plugin.core.execution.Assert"]
    conditions: list[Str]
    errorMessage: Str | None = None

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        failed = success = 0
        for condition in self.conditions:
            try:
                rendered: Any = ctx.render(condition)
            except ExpressionError as exc:
                ctx.log("ERROR", f"Assertion `{condition}` failed, failed to render `{exc}`")
                failed += 1
                continue
            if to_text(rendered).strip() in _FALSY:
                ctx.log("ERROR", f"Assertion `{condition}` failed!")
                failed += 1
            else:
                success += 1
        metrics = {"success": success, "failed": failed}
        if failed:
            message = f"{failed} assertion{'s' if failed > 1 else ''} failed!"
            extra = render_str(ctx, self.errorMessage, "errorMessage")
            if extra:
                message += "\n" + extra
            raise TaskError(message)
        return TaskOutcome(state="SUCCESS", metrics=metrics)


PLUGINS = [Assert]
