"""Load a flow from YAML text: parse, normalize, validate, and report every problem at once.

load_flow(text, filename) -> Flow          raises FlowValidationError (a FlowError)
load_flow_file(path) -> Flow
expression_warnings(text, filename) -> list[FlowProblem]   expressions that will fail to render
flow_to_dict(flow) -> dict                 the plain dict the reducer consumes
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterable
from typing import Any

import yaml
from pydantic import ValidationError

from engine.flows.dialect import Construct, conflicts, mixed
from engine.flows.model_errors import Located, problems_from_validation
from engine.flows.normalize import normalize_flow_dict
from engine.flows.problems import FlowProblem, FlowValidationError, format_path
from engine.flows.semantic import expression_problems, semantic_problems
from engine.flows.yaml_marks import MarkedDocument, load_marked, locate
from schemas.flow import Flow
from schemas.types import NOT_PROVIDED


def load_flow(text: str, filename: str = "<flow>") -> Flow:
    """Parse and validate one flow; raise :class:`FlowValidationError` listing every problem."""
    try:
        doc = load_marked(text)
    except yaml.MarkedYAMLError as exc:
        raise FlowValidationError([_syntax_problem(exc, filename)]) from exc
    except yaml.YAMLError as exc:
        raise FlowValidationError(
            [FlowProblem(filename, 1, 1, "", f"invalid YAML: {exc}", "a YAML document")]
        ) from exc
    except RecursionError as exc:
        raise FlowValidationError(
            [FlowProblem(filename, 1, 1, "", "YAML nested too deeply", "a flow document")]
        ) from exc

    problems = [
        FlowProblem(
            filename,
            d.line,
            d.column,
            d.key,
            f"duplicate key '{d.key}' (first defined on line {d.first_line})",
            "each key once per mapping",
        )
        for d in doc.duplicates
    ]
    if not isinstance(doc.data, dict):
        got = "an empty document" if doc.data is None else type(doc.data).__name__
        problems.append(
            FlowProblem(
                filename,
                1,
                1,
                "",
                f"a flow must be a mapping, got {got}",
                "a mapping with id, namespace and tasks",
            )
        )
        raise FlowValidationError(problems)

    data = normalize_flow_dict(doc.data)
    located: list[Located] = []
    flow: Flow | None = None
    # A 2.0 construct given a 1.x property (or the reverse) is reported by the dialect check,
    # which says which dialect each side is; the model's "unknown property" there is noise.
    dialect_conflicts = conflicts(doc.data)
    noisy = {path for path, *_ in dialect_conflicts}
    try:
        flow = Flow.model_validate(data)
    except ValidationError as exc:
        located.extend(
            item for item in problems_from_validation(exc, data, Flow) if item[0] not in noisy
        )
    located.extend(semantic_problems(data))
    located.extend(dialect_conflicts)
    problems.extend(_once_per_type(_place(item, doc, filename) for item in located))
    both = mixed(doc.data, frozenset(noisy))
    if both is not None:
        problems.append(_mixed_problem(both, doc, filename))
    if problems or flow is None:
        flow_id = data.get("id") if isinstance(data.get("id"), str) else None
        raise FlowValidationError(problems, flow_id=flow_id)
    return flow


def _mixed_problem(
    both: tuple[Construct, Construct], doc: MarkedDocument, filename: str
) -> FlowProblem:
    """One flow written in both dialects: reported where its first 2.0 construct is,
    naming the first 1.x one and its line."""
    new, old = both
    line, column = locate(doc.root, new.path, at_key=new.at_key)
    old_line, _ = locate(doc.root, old.path, at_key=old.at_key)
    return FlowProblem(
        filename,
        line,
        column,
        format_path(new.path),
        f"this flow mixes Kestra 2.0 and Kestra 1.x: {new.what} (Kestra 2.0) here, and "
        f"{old.what} (Kestra 1.x) at line {old_line} ({format_path(old.path)})",
        "one dialect per flow (`headwater migrate` rewrites a 1.x flow as 2.0)",
    )


def expression_warnings(text: str, filename: str = "<flow>") -> list[FlowProblem]:
    """Expressions of a (valid) flow that cannot parse or use an unknown filter or function,
    where they are written. Not load errors: Kestra deploys such a flow and the task fails
    when it renders (``flow validate`` shows them as warnings)."""
    try:
        doc = load_marked(text)
    except (yaml.YAMLError, RecursionError):
        return []
    if not isinstance(doc.data, dict):
        return []
    data = normalize_flow_dict(doc.data)
    return [_place(item, doc, filename) for item in expression_problems(data)]


def load_flow_file(path: str | pathlib.Path) -> Flow:
    """Read and load a flow file; an unreadable file is a FlowValidationError too."""
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise FlowValidationError(
            [FlowProblem(str(path), 1, 1, "", f"cannot read file: {reason}", "a readable file")]
        ) from exc
    return load_flow(text, str(path))


def flow_to_dict(flow: Flow) -> dict[str, Any]:
    """The flow as the reducer consumes it: Kestra's keys exactly as written, canonical types,
    plugin defaults applied, legacy input ``name`` as ``id``, unset properties omitted."""
    return flow.to_engine_dict()


def _syntax_problem(exc: yaml.MarkedYAMLError, filename: str) -> FlowProblem:
    mark = exc.problem_mark or exc.context_mark
    if exc.context_mark is not None and "end of stream" in (exc.problem or ""):
        # An unterminated quote or block runs to the end of the file: the mistake is where
        # it opened (the context), not the file's last line.
        mark = exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    what = exc.problem or exc.context or "invalid YAML"
    context = f" ({exc.context})" if exc.context and exc.problem else ""
    return FlowProblem(
        filename, line, column, "", f"invalid YAML: {what}{context}", "valid YAML syntax"
    )


def _once_per_type(problems: Iterable[FlowProblem]) -> list[FlowProblem]:
    """Each plugin Headwater does not provide is reported once per file, where first used."""
    out: list[FlowProblem] = []
    seen: set[str] = set()
    for problem in sorted(problems, key=lambda p: (p.line, p.column)):
        if NOT_PROVIDED in problem.message:
            if problem.message in seen:
                continue
            seen.add(problem.message)
        out.append(problem)
    return out


def _place(item: Located, doc: MarkedDocument, filename: str) -> FlowProblem:
    path, message, expected, at_key = item
    line, column = locate(doc.root, path, at_key=at_key)
    return FlowProblem(filename, line, column, format_path(path), message, expected)
