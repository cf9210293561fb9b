"""Parsing one input value to its declared Kestra type, with that type's constraints.

:func:`parse_value` is what :func:`engine.flows.inputs.resolve_inputs` applies to each input: STRING
and SECRET (``validator``), ENUM / SELECT / MULTISELECT (``values``, ``allowCustomValue``),
INT / FLOAT (``min``/``max``), BOOLEAN, DATETIME / DATE / TIME (``after``/``before``, kept as
ISO text), DURATION (``min``/``max``), JSON, YAML, URI, EMAIL, FILE (a URI, optionally with
``allowedFileExtensions``) and ARRAY (``itemType``). A refused value raises
:class:`InvalidValue` carrying what would have been accepted, in Kestra's words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from typing import Any

import orjson
import yaml

from engine.reducer.ids import parse_duration

# Kestra's FlowInputOutput.URI_PATTERN: a scheme, a host with a dot, an optional path.
_URI = re.compile(
    r"^[a-z]+://(?:www\.)?[-a-zA-Z0-9@:%._+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b"
    r"(?:[-a-zA-Z0-9()@:%_+.~#?&/=]*)$"
)
# Deliberately loose (one @, a dot in the domain): the only sure check is sending a mail.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FILE_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_TRUE_FALSE = {"true": True, "false": False}


class InvalidValue(ValueError):
    """One value is refused; ``expected`` says what would have been accepted."""

    def __init__(self, expected: str, message: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.message = message


def kind_of(spec: Mapping[str, Any]) -> str:
    return str(spec.get("type") or "STRING").upper()


def shown(value: Any) -> Any:
    """The offending value as a problem body shows it (long text cut)."""
    if isinstance(value, str) and len(value) > 200:
        return value[:197] + "..."
    return value


def parse_value(spec: Mapping[str, Any], value: Any) -> Any:
    """``value`` parsed to the input's type and checked; raises ``InvalidValue``."""
    kind = kind_of(spec)
    parser = _PARSERS.get(kind)
    if parser is None:
        raise InvalidValue(kind, f"unknown input type `{kind}`")
    return parser(spec, value)


def _text(kind: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise InvalidValue(kind, f"Expected `{kind}` but received `{value!r}`")


def _string(spec: Mapping[str, Any], value: Any) -> str:
    kind = kind_of(spec)
    text = _text(kind, value)
    pattern = spec.get("validator")
    if pattern and re.fullmatch(str(pattern), text) is None:
        raise InvalidValue(f"{kind} matching {pattern}", f"it must match the pattern `{pattern}`")
    return text


def _choices(spec: Mapping[str, Any]) -> list[str] | None:
    values = spec.get("values", spec.get("options"))
    if isinstance(values, list):
        return [str(v) for v in values]
    return None  # from an `expression` (rendered by the UI): nothing to check against


def _enum(spec: Mapping[str, Any], value: Any) -> str:
    kind = kind_of(spec)
    text = _text(kind, value)
    choices = _choices(spec)
    if choices is not None and text not in choices and not spec.get("allowCustomValue"):
        raise InvalidValue(f"one of {choices}", f"it must match the values `{choices}`")
    return text


def _list(kind: str, value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return parsed
    raise InvalidValue(
        f"{kind} (a list)", f"Expected `{kind}` but received `{value!r}`: not a list"
    )


def _multiselect(spec: Mapping[str, Any], value: Any) -> list[str]:
    items = [_text("MULTISELECT", v) for v in _list("MULTISELECT", value)]
    choices = _choices(spec)
    if choices is not None and not spec.get("allowCustomValue"):
        wrong = [v for v in items if v not in choices]
        if wrong:
            raise InvalidValue(
                f"values among {choices}", f"{wrong} are not among the values `{choices}`"
            )
    return items


def _bounded(spec: Mapping[str, Any], number: float) -> None:
    low, high = spec.get("min"), spec.get("max")
    if low is not None and number < float(low):
        raise InvalidValue(f"{kind_of(spec)} >= {low}", f"it must be more than `{low}`")
    if high is not None and number > float(high):
        raise InvalidValue(f"{kind_of(spec)} <= {high}", f"it must be less than `{high}`")


def _int(spec: Mapping[str, Any], value: Any) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        number = int(value)
    if number is None:
        raise InvalidValue("INT", f"Expected `INT` but received `{value}`")
    _bounded(spec, number)
    return number


def _float(spec: Mapping[str, Any], value: Any) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    # NaN and infinities are not numbers a flow can use, and JSON cannot carry them.
    if number is None or not math.isfinite(number):
        raise InvalidValue("FLOAT", f"Expected `FLOAT` but received `{value}`")
    _bounded(spec, number)
    return number


def _boolean(spec: Mapping[str, Any], value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE_FALSE:
        return _TRUE_FALSE[value.strip().lower()]
    raise InvalidValue("BOOLEAN", f"Expected `BOOLEAN` (true or false) but received `{value}`")


def _temporal(spec: Mapping[str, Any], value: Any) -> str:
    """DATETIME (an instant with a zone), DATE and TIME: checked, kept as ISO text."""
    kind = kind_of(spec)
    text = _text(kind, value).strip()
    moment: datetime | date | time
    try:
        if kind == "DATETIME":
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise ValueError("no time zone")
        elif kind == "DATE":
            moment = date.fromisoformat(text)
        else:
            moment = time.fromisoformat(text)
    except ValueError:
        example = {"DATETIME": "2024-01-31T10:00:00Z", "DATE": "2024-01-31"}.get(kind, "10:00:00")
        raise InvalidValue(
            f"{kind} like {example}", f"Expected `{kind}` but received `{value}`"
        ) from None
    for key, word in (("after", "after"), ("before", "before")):
        bound = spec.get(key)
        if bound is None:
            continue
        limit = _temporal({"type": kind}, bound)
        ordered = _as_comparable(kind, text) > _as_comparable(kind, limit)
        if (key == "after") != ordered:
            raise InvalidValue(f"{kind} {word} {bound}", f"it must be {word} `{bound}`")
    return text


def _as_comparable(kind: str, text: str) -> Any:
    if kind == "DATETIME":
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    return date.fromisoformat(text) if kind == "DATE" else time.fromisoformat(text)


def _duration(spec: Mapping[str, Any], value: Any) -> str:
    text = _text("DURATION", value).strip()
    try:
        seconds = parse_duration(text) if text.upper().startswith(("P", "-P")) else None
    except ValueError:
        seconds = None
    if seconds is None:
        raise InvalidValue("DURATION like PT5M", f"Expected `DURATION` but received `{value}`")
    low, high = spec.get("min"), spec.get("max")
    if low is not None and seconds < parse_duration(low):
        raise InvalidValue(f"DURATION >= {low}", f"it must be more than `{low}`")
    if high is not None and seconds > parse_duration(high):
        raise InvalidValue(f"DURATION <= {high}", f"it must be less than `{high}`")
    return text


def _json(spec: Mapping[str, Any], value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise InvalidValue(
                "JSON", f"Expected `JSON` but received `{shown(value)}`: {exc}"
            ) from None
    schema = spec.get("jsonSchema")
    if schema is not None and not (isinstance(schema, str) and not schema.strip()):
        _check_schema(schema, value)
    return value


def _check_schema(schema: Any, value: Any) -> None:
    """Kestra 2.0's JsonInput.validate: the value must match the input's ``jsonSchema``
    (draft 2020-12; Kestra lists every violation, "it must match the json schema: ...")."""
    import jsonschema

    if isinstance(schema, str):
        try:
            schema = orjson.loads(schema)
        except orjson.JSONDecodeError as exc:
            raise InvalidValue("JSON", f"Invalid JSON content or schema: {exc}") from None
    try:
        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    except jsonschema.SchemaError as exc:
        raise InvalidValue("JSON", f"Invalid JSON schema: {exc.message}") from None
    if errors:
        found = "; ".join(
            f"{'/'.join(str(p) for p in e.absolute_path) or '$'}: {e.message}" for e in errors
        )
        raise InvalidValue(
            "JSON matching its jsonSchema", f"it must match the json schema: {found}"
        )


def _yaml(spec: Mapping[str, Any], value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise InvalidValue(
            "YAML", f"Expected `YAML` but received `{shown(value)}`: {exc}"
        ) from None


def _uri(spec: Mapping[str, Any], value: Any) -> str:
    text = _text("URI", value)
    if not _URI.match(text):
        raise InvalidValue("URI", f"Expected `URI` but received `{value}`")
    return text


def _email(spec: Mapping[str, Any], value: Any) -> str:
    text = _text("EMAIL", value).strip()
    if not _EMAIL.match(text):
        raise InvalidValue("EMAIL", f"Expected `EMAIL` but received `{value}`")
    return text


def _file(spec: Mapping[str, Any], value: Any) -> str:
    text = _text("FILE", value).strip()
    if not _FILE_URI.match(text):
        raise InvalidValue(
            "FILE (a URI such as kestra:///...)",
            f"Expected `FILE` (a URI of an uploaded file) but received `{value}`",
        )
    allowed = spec.get("allowedFileExtensions") or (
        [spec["extension"]] if spec.get("extension") else None
    )
    if allowed:
        suffixes = [e if str(e).startswith(".") else f".{e}" for e in allowed]
        if not any(text.lower().endswith(str(s).lower()) for s in suffixes):
            raise InvalidValue(
                f"FILE ending {suffixes}", f"the file must end with one of {suffixes}"
            )
    return text


def _array(spec: Mapping[str, Any], value: Any) -> list[Any]:
    items = _list("ARRAY", value)
    item_type = str(spec.get("itemType") or "").upper()
    if not item_type:
        return items
    item_spec = {"type": item_type}
    out = []
    for item in items:
        try:
            out.append(parse_value(item_spec, item))
        except InvalidValue:
            raise InvalidValue(
                f"ARRAY of {item_type}",
                f"Unable to parse array element as `{item_type}` on `{item}`",
            ) from None
    return out


_PARSERS: dict[str, Callable[[Mapping[str, Any], Any], Any]] = {
    "STRING": _string,
    "SECRET": _string,
    "ENUM": _enum,
    "SELECT": _enum,
    "MULTISELECT": _multiselect,
    "INT": _int,
    "FLOAT": _float,
    "BOOLEAN": _boolean,
    "BOOL": _boolean,
    "DATETIME": _temporal,
    "DATE": _temporal,
    "TIME": _temporal,
    "DURATION": _duration,
    "JSON": _json,
    "YAML": _yaml,
    "URI": _uri,
    "EMAIL": _email,
    "FILE": _file,
    "ARRAY": _array,
}
