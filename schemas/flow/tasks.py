"""The :data:`Task` type: every task type Headwater knows, tagged by canonical ``type``.

The union is assembled from the three task modules and the plugins (:mod:`schemas.plugins`),
so that adding a task is one class in one of them. For the type checker a task is simply a
:class:`TaskBase`.

Every task list (the flow's, a flowable's, a listener's) refers to one discriminated union of
every task model, compiled once (:class:`_TaskUnion`). Written as a plain field type, pydantic
would compile the whole union again into each model that holds a task list: ~20 copies of
~380 validators, 114 MB of the process's memory.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, Field, GetCoreSchemaHandler, GetJsonSchemaHandler, TypeAdapter
from pydantic_core import CoreSchema, core_schema

from schemas.flow import tasks_flowable
from schemas.flow.task_base import TaskBase
from schemas.flow.tasks_flowable import FLOWABLE_MODELS, DagEntry
from schemas.flow.tasks_plugins import PLUGIN_MODELS
from schemas.flow.tasks_runnable import RUNNABLE_MODELS
from schemas.plugins import plugin_classes
from schemas.types import canonical_type, known_names

TASK_MODELS: dict[str, type[TaskBase]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (*FLOWABLE_MODELS, *RUNNABLE_MODELS, *PLUGIN_MODELS, *plugin_classes())
}


@functools.cache
def task_union() -> TypeAdapter[Any]:
    """The discriminated union of every task model, compiled on first use."""
    union: Any = Annotated[
        Union[tuple(TASK_MODELS.values())],  # noqa: UP007 - a runtime-built union
        Field(discriminator="type"),
    ]
    return TypeAdapter(union)


class _TaskUnion:
    """A field type that validates through :func:`task_union`.

    Validation errors keep the union's locations (``tasks, 0, <type>, message``) and its
    ``union_tag_*`` errors; a task serializes as its own model; the JSON Schema is the union's.
    ``models`` (the members by tag) lets the loader's messages follow those locations.
    """

    models = TASK_MODELS

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.with_info_plain_validator_function(_validate_task)

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        # The union holds flowables that hold the union: inside it, each member is a reference
        # to the definition the outermost use is generating (the same `oneOf` of `$ref`s).
        if getattr(_json_schema, "generating", False):
            return handler(_union_of_references())
        _json_schema.generating = True
        try:
            return handler(task_union().core_schema)
        finally:
            _json_schema.generating = False


def _union_of_references() -> CoreSchema:
    return core_schema.tagged_union_schema(
        {
            tag: core_schema.definition_reference_schema(_ref(model.__pydantic_core_schema__))
            for tag, model in TASK_MODELS.items()
        },
        discriminator="type",
    )


def _ref(schema: Any) -> str:
    while schema["type"] == "definitions":  # a model holding other models keeps them beside it
        schema = schema["schema"]
    ref: str = schema["ref"]
    return ref


_json_schema = threading.local()


def _validate_task(value: Any, info: core_schema.ValidationInfo) -> TaskBase:
    task: TaskBase = task_union().validate_python(value, context=info.context)
    return task


if TYPE_CHECKING:
    Task = TaskBase
else:
    Task = Annotated[TaskBase, _TaskUnion()]

_REBUILD: tuple[type[BaseModel], ...] = (*FLOWABLE_MODELS, DagEntry)
for _model in _REBUILD:
    _model.model_rebuild(_types_namespace={"Task": Task, **vars(tasks_flowable)})


def _check_registry() -> None:
    # A task type named in schemas.types without a model (or the reverse) is a programming
    # error; failing at import keeps the two lists from drifting apart.
    names = {canonical_type(n) for n in (*known_names("flowable"), *known_names("runnable"))}
    if names != set(TASK_MODELS):
        raise RuntimeError(f"task models and schemas.types disagree: {names ^ set(TASK_MODELS)}")


_check_registry()
