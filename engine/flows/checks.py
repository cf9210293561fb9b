"""A flow's ``checks``: conditions tested on the inputs before an execution is created.

Kestra (0.24+, ``FlowService.getFailedChecks``, ``Check.resolveBehavior``,
``ExecutionController.createExecution``; Kestra 2.0 names the expression ``when`` and keeps
``condition`` as a deprecated alias):

- each check's expression is rendered *typed* with the flow's variables and ``inputs`` (the
  resolved inputs of the execution about to be created); it passes only when it gives the
  boolean ``true`` (``"true"`` as text, a number, ``yes``... fail the check);
- a check whose expression cannot be evaluated fails safe: it counts as a failed check with
  behavior BLOCK_EXECUTION and style ERROR, whatever it declared ("Failed to evaluate check
  condition. Cause: ...");
- the behavior of the failed checks that wins is the first in BLOCK_EXECUTION,
  FAIL_EXECUTION, CREATE_EXECUTION order (default per check: BLOCK_EXECUTION, style INFO);
  no failed check: CREATE_EXECUTION;
- BLOCK_EXECUTION: no execution ("Flow execution blocked: one or more condition checks
  evaluated to false." and the failed checks' messages); FAIL_EXECUTION: the execution is
  created FAILED; CREATE_EXECUTION: it is created as usual.

Kestra tests checks when an execution is created through the API (not for trigger events);
so does Headwater.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import ExpressionError
from engine.expressions import evaluate
from engine.flows.migrate_conditions import inner

BLOCK = "BLOCK_EXECUTION"
FAIL = "FAIL_EXECUTION"
CREATE = "CREATE_EXECUTION"
_ORDER = (BLOCK, FAIL, CREATE)


@dataclass(slots=True)
class FailedCheck:
    message: str
    behavior: str = BLOCK
    style: str = "INFO"

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "behavior": self.behavior, "style": self.style}


@dataclass(slots=True)
class CheckOutcome:
    behavior: str = CREATE
    failed: list[FailedCheck] = field(default_factory=list)

    def blocked_message(self) -> str:
        return (
            "Flow execution blocked: one or more condition checks evaluated to false.\n"
            "Failed checks: " + ", ".join(f.message for f in self.failed)
        )

    def failed_message(self) -> str:
        return (
            "Flow execution failed because one or more condition checks evaluated to false: "
            + ", ".join(f.message for f in self.failed)
        )


def _typed(template: str, variables: dict[str, Any]) -> Any:
    """Kestra's renderTyped: a lone ``{{ expression }}`` gives its value, anything else the
    rendered text."""
    from engine.expressions import render

    expression = inner(template)
    if expression is not None:
        return evaluate(expression, variables)
    return render(template, variables)


def evaluate_checks(flow: dict[str, Any], inputs: dict[str, Any]) -> CheckOutcome:
    checks = [c for c in flow.get("checks") or [] if isinstance(c, dict)]
    if not checks:
        return CheckOutcome()
    variables: dict[str, Any] = {
        "flow": {
            "id": flow.get("id"),
            "namespace": flow.get("namespace"),
            "revision": flow.get("revision"),
        },
        "inputs": inputs,
        "vars": flow.get("variables") or {},
    }
    failed: list[FailedCheck] = []
    for check in checks:
        expression = check.get("when", check.get("condition"))
        try:
            passed = _typed(str(expression), variables) is True
        except ExpressionError as exc:
            failed.append(
                FailedCheck(
                    f"Failed to evaluate check condition. Cause: {exc.message}", BLOCK, "ERROR"
                )
            )
            continue
        if not passed:
            failed.append(
                FailedCheck(
                    str(check.get("message", "")),
                    str(check.get("behavior") or BLOCK),
                    str(check.get("style") or "INFO"),
                )
            )
    if not failed:
        return CheckOutcome()
    behavior = min(
        (f.behavior for f in failed), key=lambda b: _ORDER.index(b) if b in _ORDER else 0
    )
    return CheckOutcome(behavior, failed)
