"""The plugin platform: a task type is one class.

A :class:`TaskPlugin` is a pydantic model of the task's properties — Kestra's names, defaults
and value types, every dynamic property written with the expression-accepting types of
:mod:`schemas.flow.common` (``Str``, ``IntOrExpr``, ``BoolOrExpr``, ``Duration``...) — with a
``type`` literal holding Kestra's full name, and an async :meth:`TaskPlugin.run`::

    class Ping(TaskPlugin):
        '''Send one HTTP GET and expose the status code.'''

        family: ClassVar[str] = "acme"
        aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.acme.OldPing",)

        type: Literal["io.kestra.plugin.acme.Ping"]
        url: Str
        expectedCode: IntOrExpr = 200

        async def run(self, ctx: TaskContext) -> dict[str, Any]:
            url = ctx.render_str(self.url)
            ...
            return {"code": code}

The same class validates the flow (it joins the Task union, so ``flow validate``, the JSON
Schema and the editor know it), and runs it: :class:`PluginExecutor` rebuilds the model from
the job's task definition and awaits ``run``. Properties arrive **unrendered**; ``run`` renders
what it uses with ``ctx.render*`` (an expression is resolved at run time, as in Kestra) and
the helpers below. ``run`` returns the outputs (a mapping, or None for none) or a full
:class:`~executors.base.TaskOutcome`; raising :class:`~executors.base.TaskError` fails the
task with its message, as any exception does.

Where plugins are found: :mod:`schemas.plugins`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from pydantic import ValidationError

from executors.base import (
    TaskContext,
    TaskError,
    TaskOutcome,
    as_bool,
    error_message,
    parse_duration,
    to_text,
)
from schemas.flow.common import FlowModel
from schemas.flow.task_base import TaskBase

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo


class PluginType:
    """How a plugin type names itself: a :class:`TaskPlugin` and a polling trigger
    (:class:`executors.polling.PollingTrigger`) alike, mixed into their pydantic model."""

    # The family shown by ``headwater plugins list`` (e.g. "notifications", "email").
    family: ClassVar[str] = "other"
    # Older Kestra names of the same type; flows using them load as the canonical type.
    aliases: ClassVar[tuple[str, ...]] = ()
    # Headwater's short name; default: the type's package and class, lower case.
    short: ClassVar[str | None] = None

    if TYPE_CHECKING:
        model_fields: ClassVar[dict[str, FieldInfo]]

    @classmethod
    def type_name(cls) -> str:
        annotation = cls.model_fields["type"].annotation
        args: tuple[Any, ...] = getattr(annotation, "__args__", ())
        if len(args) != 1 or not isinstance(args[0], str):
            raise TypeError(f"{cls.__name__}.type must be a Literal of one type name")
        name: str = args[0]
        return name

    @classmethod
    def short_name(cls) -> str:
        if cls.short:
            return cls.short
        package, _, name = cls.type_name().rpartition(".")
        return f"{package.rsplit('.', 1)[-1]}_{name}".lower()

    @classmethod
    def summary(cls) -> str:
        """The first line of the class docstring (for ``plugins list`` and the schema)."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


class TaskPlugin(PluginType, TaskBase):
    """Base of every plugin task type; see the module docstring."""

    async def run(self, ctx: TaskContext) -> TaskOutcome | Mapping[str, Any] | None:
        raise NotImplementedError


class PluginExecutor:
    """A :class:`TaskPlugin` class as the worker's :class:`~executors.base.TaskExecutor`."""

    def __init__(self, cls: type[TaskPlugin]) -> None:
        self.cls = cls

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        try:
            plugin = self.cls.model_validate(dict(task))
        except ValidationError as exc:
            # Validated when the flow was deployed; a job from an older revision of the
            # plugin can still disagree, and that is the task's failure, not the worker's.
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise TaskError(f"invalid task definition: {where}: {first['msg']}") from exc
        result = await plugin.run(ctx)
        if isinstance(result, TaskOutcome):
            return result
        return TaskOutcome(state="SUCCESS", outputs=dict(result or {}))


# Rendering helpers for properties (each renders, then converts, naming the property).


def render_str(ctx: TaskContext, value: Any, name: str, *, required: bool = False) -> str | None:
    """A rendered string property; ``required`` makes a missing or empty value an error."""
    text = ctx.render_str(value)
    if required and not text:
        raise TaskError(f"property '{name}' is required")
    return text


def render_bool(ctx: TaskContext, value: Any, name: str, default: bool = False) -> bool:
    if value is None:
        return default
    try:
        return as_bool(ctx.render(value))
    except TaskError as exc:
        raise TaskError(f"property '{name}': {exc}") from exc


def render_int(ctx: TaskContext, value: Any, name: str, default: int | None = None) -> int | None:
    if value is None:
        return default
    rendered = ctx.render(value)
    try:
        return int(to_text(rendered).strip())
    except ValueError as exc:
        raise TaskError(f"property '{name}': expected an integer, got {rendered!r}") from exc


def render_seconds(
    ctx: TaskContext, value: Any, name: str, default: float | None = None
) -> float | None:
    """A rendered ISO-8601 duration property, in seconds."""
    if value is None:
        return default
    try:
        return parse_duration(ctx.render(value))
    except TaskError as exc:
        raise TaskError(f"property '{name}': {error_message(exc)}") from exc


def render_map(ctx: TaskContext, value: Any, name: str) -> dict[str, Any]:
    """A rendered map property (an expression may produce the map, or a JSON text of one)."""
    if value is None:
        return {}
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        try:
            rendered = orjson.loads(rendered)
        except orjson.JSONDecodeError as exc:
            raise TaskError(f"property '{name}': expected a map, got {rendered!r}") from exc
    if not isinstance(rendered, Mapping):
        raise TaskError(f"property '{name}': expected a map, got {rendered!r}")
    return dict(rendered)


def render_choice(ctx: TaskContext, value: Any, name: str, choices: tuple[str, ...]) -> str | None:
    """An enum property, case-insensitive as Kestra's enum conversion: the choice, upper case;
    None when unset."""
    text = render_str(ctx, value, name)
    if text is None:
        return None
    if text.upper() not in choices:
        raise TaskError(f"property '{name}': expected one of {', '.join(choices)}, got {text!r}")
    return text.upper()


def render_float(ctx: TaskContext, value: Any, name: str) -> float | None:
    """A rendered number property; unset or rendering empty is None."""
    if value is None:
        return None
    rendered = ctx.render(value)
    if rendered is None or rendered == "":
        return None
    try:
        return float(to_text(rendered).strip())
    except ValueError:
        raise TaskError(f"property '{name}': expected a number, got {rendered!r}") from None


def render_list(ctx: TaskContext, value: Any, name: str) -> list[str]:
    """A rendered list-of-strings property; one string is a list of one (not read as JSON:
    :func:`render_texts` does that)."""
    if value is None:
        return []
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        rendered = [rendered]
    if not isinstance(rendered, list):
        raise TaskError(f"property '{name}': expected a list, got {rendered!r}")
    return [to_text(v) for v in rendered]


def render_json(ctx: TaskContext, value: Any, name: str) -> Any:
    """A rendered structured property: an expression may give the value or its JSON text."""
    if value is None:
        return None
    if isinstance(value, FlowModel):
        value = value.model_dump(exclude_none=True)
    elif isinstance(value, list):
        value = [v.model_dump(exclude_none=True) if isinstance(v, FlowModel) else v for v in value]
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        text = rendered.strip()
        if not text:
            return None
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            raise TaskError(f"property '{name}': expected JSON, got {rendered!r}") from None
    return rendered


def render_texts(ctx: TaskContext, value: Any, name: str, *, required: bool = False) -> list[str]:
    """A list of texts read as :func:`render_json` reads it; one value is a list of one."""
    rendered = render_json(ctx, value, name)
    if rendered is None:
        if required:
            raise TaskError(f"property '{name}' is required")
        return []
    return [to_text(v) for v in (rendered if isinstance(rendered, list) else [rendered])]
