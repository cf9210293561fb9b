"""Flow definitions: load, normalize and validate Kestra-format flow YAML; their inputs
(:mod:`.inputs`, :mod:`.input_types`) and the deployed flows followed from hw.flows (:mod:`.store`).

load_flow(text, filename="<flow>") -> Flow     raises FlowValidationError with all problems
load_flow_file(path) -> Flow
flow_to_dict(flow) -> dict                     plain dict in Kestra's keys, for the reducer
normalize_flow_dict(raw) -> dict               canonical types + defaults, no validation
"""

from __future__ import annotations

from engine.flows.loader import expression_warnings, flow_to_dict, load_flow, load_flow_file
from engine.flows.normalize import normalize_flow_dict
from engine.flows.problems import FlowProblem, FlowValidationError

__all__ = [
    "FlowProblem",
    "FlowValidationError",
    "expression_warnings",
    "flow_to_dict",
    "load_flow",
    "load_flow_file",
    "normalize_flow_dict",
]
