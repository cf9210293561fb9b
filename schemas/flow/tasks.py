"""The :data:`Task` union: every task type Headwater knows, tagged by canonical ``type``.

The union is assembled from the three task modules and the plugins (:mod:`schemas.plugins`),
so that adding a task is one class in one of them. For the type checker a task is simply a
:class:`TaskBase`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Union

from pydantic import BaseModel, Field

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

if TYPE_CHECKING:
    Task = TaskBase
else:
    Task = Annotated[
        Union[tuple(TASK_MODELS.values())],  # noqa: UP007 - a runtime-built union
        Field(discriminator="type"),
    ]

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
