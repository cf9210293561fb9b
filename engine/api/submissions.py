"""What a caller submits to create or resume an execution, in the forms Kestra's API takes.

Kestra's ``POST /api/v1/executions/{namespace}/{id}`` and ``POST .../{executionId}/resume``
consume ``multipart/form-data`` (``curl -F name=value -F file=@data.csv``): each field is an
input value as text (typed afterwards against the declared inputs), each file is uploaded to
internal storage and the input gets its ``kestra://`` URI; labels come as repeated
``labels=key:value`` query values (``ExecutionController.parseLabels``: no ``system.`` label
but ``system.correlationId``). Headwater also takes a JSON body ``{"inputs": {...},
"labels": [{key, value}]}`` (values keep their JSON types) and no body at all.

A file part names its input by its form field; Kestra reads the part's *file name* as the
input id (its docs say ``-F "myFile=@/tmp/file.txt;filename=myFile"``), so a file name equal
to a declared FILE input's id wins. Uploaded files land at Kestra's input location::

    kestra:///<namespace as path>/<flow>/executions/<execution>/inputs/<input>/<file name>
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from engine.api.models import ExecutionCreate, ResumeBody
from engine.api.problems import ProblemError
from engine.flows.inputs import input_id
from engine.stores.storage import SCHEME, LocalStorage, StorageError, safe_file_name

JSON = dict[str, Any]
SYSTEM_PREFIX = "system."
CORRELATION_LABEL = "system.correlationId"


@dataclass
class Submission:
    inputs: JSON = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # input -> (name, data)


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind in ("multipart/form-data", "application/x-www-form-urlencoded")


async def read_submission(request: Request, *, resume: bool = False) -> Submission:
    """The inputs, labels and files of a create (or resume) request, whatever its form."""
    out = Submission()
    if _is_form(request):
        try:
            form = await request.form()
        except Exception as exc:  # python-multipart's errors have no common base
            message = f"the multipart body does not parse: {exc}"
            raise ProblemError(400, "Invalid form", message) from exc
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                if not name and not value.filename:
                    continue  # an empty part (clients send one to force a multipart body)
                out.files[str(name)] = (value.filename or str(name), data)
            else:
                out.inputs[str(name)] = str(value)
        await form.close()
        return out
    body = await request.body()
    if not body.strip():
        return out
    try:
        if resume:
            parsed_resume = ResumeBody.model_validate_json(body)
            out.inputs = dict(parsed_resume.inputs)
        else:
            parsed = ExecutionCreate.model_validate_json(body)
            out.inputs = dict(parsed.inputs)
            out.labels = {label.key: label.value for label in parsed.labels}
    except ValidationError as exc:
        errors = json.loads(exc.json())
        # Malformed JSON is a 400, a body of the wrong shape a 422 (as problems.py answers
        # for every other route).
        if any(e.get("type") == "json_invalid" for e in errors):
            malformed = "the body is not valid JSON"
            raise ProblemError(400, "Malformed JSON", malformed, errors=errors) from exc
        raise ProblemError(422, "Invalid request", "the body does not fit", errors=errors) from exc
    return out


def query_labels(values: list[str] | None) -> dict[str, str]:
    """``labels=key:value`` query values (ExecutionController.parseLabels)."""
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise ProblemError(400, "Invalid label", f"{item!r} is not key:value")
        out[key] = value
    return out


def check_labels(labels: dict[str, str]) -> None:
    for key, value in labels.items():
        if key.startswith(SYSTEM_PREFIX) and key != CORRELATION_LABEL:
            raise ProblemError(
                400,
                "Invalid label",
                f"System labels can only be set by Kestra itself, offending label: {key}={value}",
            )


def declared_ids(declared: Any) -> list[str]:
    return (
        [input_id(s) for s in declared if isinstance(s, dict)] if isinstance(declared, list) else []
    )


def file_input_ids(declared: Any) -> set[str]:
    return {
        input_id(s)
        for s in (declared if isinstance(declared, list) else [])
        if isinstance(s, dict) and str(s.get("type", "")).upper() == "FILE"
    }


def unknown_inputs(given: JSON, declared: Any) -> list[str]:
    """Given inputs no declared input takes (Kestra drops them; Headwater reports them)."""
    ids = declared_ids(declared)
    roots = {i.split(".")[0] for i in ids}
    return sorted(k for k in given if k not in ids and k not in roots)


def input_uri(namespace: str, flow_id: str, execution_id: str, name: str, file_name: str) -> str:
    parts = [*namespace.split("."), flow_id, "executions", execution_id, "inputs", name]
    return SCHEME + "/" + "/".join([*parts, safe_file_name(file_name)])


async def store_files(
    storage: LocalStorage,
    submission: Submission,
    declared: Any,
    namespace: str,
    flow_id: str,
    execution_id: str,
) -> None:
    """Upload the submitted files; each input takes its file's ``kestra://`` URI."""
    files = file_input_ids(declared)
    for field_name, (file_name, data) in submission.files.items():
        name = file_name if file_name in files else field_name
        try:
            uri = input_uri(namespace, flow_id, execution_id, name, file_name)
            path = storage.path_of(uri)
        except StorageError as exc:
            raise ProblemError(422, "Invalid file input", exc.message) from exc
        await asyncio.to_thread(_write, path, data)
        submission.inputs[name] = uri


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
