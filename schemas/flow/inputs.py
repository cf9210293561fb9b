"""Flow inputs (``inputs:``) and Pause ``onResume`` inputs, tagged by ``type``.

Older flows write ``name:`` instead of ``id:``; :func:`engine.flows.normalize_flow_dict`
rewrites it before validation, so the models only know ``id``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from schemas.flow.common import (
    BoolOrExpr,
    Duration,
    FlowModel,
    IntOrExpr,
    NumberOrExpr,
    Str,
)

INPUT_ID_PATTERN = r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$"

InputType = Literal[
    "STRING",
    "ENUM",
    "SELECT",
    "MULTISELECT",
    "INT",
    "FLOAT",
    "BOOLEAN",
    "BOOL",
    "DATETIME",
    "DATE",
    "TIME",
    "DURATION",
    "FILE",
    "JSON",
    "URI",
    "SECRET",
    "ARRAY",
    "YAML",
    "EMAIL",
]


class InputDependency(FlowModel):
    """Show or compute this input only once others are filled (Kestra ``dependsOn``)."""

    inputs: list[Str] | None = None
    condition: Str | None = None


class _InputBase(FlowModel):
    id: Annotated[str, Field(pattern=INPUT_ID_PATTERN, max_length=100)]
    description: Str | None = None
    displayName: Str | None = None
    required: BoolOrExpr | None = Field(default=None, description="Kestra's default is true")
    defaults: Any = None
    prefill: Any = None
    dependsOn: InputDependency | None = None


class _RegexInput(_InputBase):
    validator: Str | None = Field(default=None, description="regular expression the value matches")

    @field_validator("validator")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"validator is not a valid regular expression: {exc}") from exc
        return value


class StringInput(_RegexInput):
    type: Literal["STRING"]


class SecretInput(_RegexInput):
    type: Literal["SECRET"]


class EnumInput(_InputBase):
    type: Literal["ENUM"]
    values: list[Str] = Field(min_length=1)


class SelectInput(_InputBase):
    type: Literal["SELECT"]
    values: list[Str] | Str | None = None
    expression: Str | None = None
    allowCustomValue: BoolOrExpr | None = None
    isRadio: BoolOrExpr | None = None
    autoSelectFirst: BoolOrExpr | None = None


class MultiselectInput(_InputBase):
    type: Literal["MULTISELECT"]
    values: list[Str] | Str | None = None
    options: list[Str] | None = Field(default=None, description="deprecated spelling of values")
    expression: Str | None = None
    allowCustomValue: BoolOrExpr | None = None
    autoSelectFirst: BoolOrExpr | None = None


class IntInput(_InputBase):
    type: Literal["INT"]
    min: IntOrExpr | None = None
    max: IntOrExpr | None = None


class FloatInput(_InputBase):
    type: Literal["FLOAT"]
    min: NumberOrExpr | None = None
    max: NumberOrExpr | None = None


class BooleanInput(_InputBase):
    type: Literal["BOOLEAN", "BOOL"]


class DateTimeInput(_InputBase):
    type: Literal["DATETIME", "DATE", "TIME"]
    after: Str | None = None
    before: Str | None = None


class DurationInput(_InputBase):
    type: Literal["DURATION"]
    min: Duration | None = None
    max: Duration | None = None


class FileInput(_InputBase):
    type: Literal["FILE"]
    allowedFileExtensions: list[Str] | None = None
    extension: Str | None = Field(default=None, description="older single-extension form")


class ArrayInput(_InputBase):
    type: Literal["ARRAY"]
    itemType: Literal[
        "STRING",
        "ENUM",
        "SELECT",
        "INT",
        "FLOAT",
        "BOOLEAN",
        "BOOL",
        "DATETIME",
        "DATE",
        "TIME",
        "DURATION",
        "FILE",
        "JSON",
        "URI",
        "SECRET",
        "YAML",
        "EMAIL",
    ]


class PlainInput(_InputBase):
    """Inputs whose only check is their type: YAML, URI and EMAIL."""

    type: Literal["YAML", "URI", "EMAIL"]


class JsonInput(_InputBase):
    """A JSON value; Kestra 2.0's ``jsonSchema`` (a JSON Schema, draft 2020-12, written as a
    JSON string or as YAML) validates it."""

    type: Literal["JSON"]
    # (maps first: typing caches unions regardless of order, and other models write this one
    # as dict | Str, so the schema would depend on which module was imported first)
    jsonSchema: dict[str, Any] | Str | None = Field(
        default=None, description="Kestra 2.0: the JSON Schema the value must match"
    )

    @field_validator("jsonSchema")
    @classmethod
    def _schema(cls, value: dict[str, Any] | str | None) -> dict[str, Any] | str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return value
        problem = json_schema_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


def json_schema_problem(schema: str | dict[str, Any]) -> str | None:
    """Why ``schema`` is not a usable JSON Schema (draft 2020-12), or None."""
    import json

    import jsonschema

    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            return f"jsonSchema is not valid JSON: {exc}"
    if not isinstance(schema, dict | bool):
        return "jsonSchema must be a JSON object"
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"jsonSchema is not a valid JSON Schema: {exc.message}"
    return None


Input = Annotated[
    StringInput
    | SecretInput
    | EnumInput
    | SelectInput
    | MultiselectInput
    | IntInput
    | FloatInput
    | BooleanInput
    | DateTimeInput
    | DurationInput
    | FileInput
    | ArrayInput
    | JsonInput
    | PlainInput,
    Field(discriminator="type"),
]


class Output(FlowModel):
    """A flow output: a value computed when the execution ends (``outputs:``)."""

    id: Annotated[str, Field(pattern=INPUT_ID_PATTERN, max_length=100)]
    type: InputType
    value: Any
    description: Str | None = None
    displayName: Str | None = None
    required: BoolOrExpr | None = None
