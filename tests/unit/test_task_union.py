"""The task union is compiled once, not into every model that holds a task list."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from schemas.flow import TASK_MODELS, Flow
from schemas.flow.flow import Listener
from schemas.flow.tasks_flowable import FLOWABLE_MODELS, DagEntry


def _models_in(schema: Any) -> list[type]:
    if isinstance(schema, dict):
        own = [schema["cls"]] if schema.get("type") == "model" else []
        return own + [m for v in schema.values() for m in _models_in(v)]
    if isinstance(schema, list):
        return [m for v in schema for m in _models_in(v)]
    return []


def test_models_holding_task_lists_refer_to_the_union_instead_of_holding_it() -> None:
    task_models = set(TASK_MODELS.values())
    assert len(task_models) > 300
    for model in (*FLOWABLE_MODELS, DagEntry, Listener, Flow):
        # before: each of them held its own copy of every task model's validator
        held = set(_models_in(model.__pydantic_core_schema__)) & task_models
        assert held <= {model}, model.__name__


def test_tasks_validate_and_serialize_as_their_own_models() -> None:
    flow = Flow.model_validate(
        {
            "id": "f",
            "namespace": "n",
            "tasks": [
                {"id": "a", "type": "io.kestra.plugin.core.log.Log", "message": "x"},
                {
                    "id": "s",
                    "type": "io.kestra.plugin.core.flow.Sequential",
                    "tasks": [
                        {"id": "b", "type": "io.kestra.plugin.core.debug.Return", "format": "y"}
                    ],
                },
            ],
        }
    )
    assert type(flow.tasks[0]).__name__ == "LogTask"
    assert flow.to_engine_dict()["tasks"][1]["tasks"][0] == {
        "id": "b",
        "type": "io.kestra.plugin.core.debug.Return",
        "format": "y",
    }


def test_a_nested_error_is_located_through_the_union() -> None:
    try:
        Flow.model_validate(
            {
                "id": "f",
                "namespace": "n",
                "tasks": [
                    {
                        "id": "s",
                        "type": "io.kestra.plugin.core.flow.Sequential",
                        "tasks": [{"id": "b", "type": "io.kestra.plugin.core.log.Log"}],
                    }
                ],
            }
        )
    except ValidationError as exc:
        locs = [e["loc"] for e in exc.errors()]
    else:
        raise AssertionError("a Log without its message was accepted")
    assert locs == [
        (
            "tasks",
            0,
            "io.kestra.plugin.core.flow.Sequential",
            "tasks",
            0,
            "io.kestra.plugin.core.log.Log",
            "message",
        )
    ]
