"""Execution and task-run states, and the declarative rules for moving between them.

The names and meanings are Kestra's (``io.kestra.core.models.flows.State.Type``) so that a
flow, a dashboard or an API client written for Kestra reads the same words. The transition
rules are data (``FROM -> allowed TO``), checked by :func:`can_transition`; the reducer asks
them before every change and turns a refused change into a log event instead of raising.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class State(StrEnum):
    """Every state an execution, a task run or an attempt can be in."""

    CREATED = "CREATED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    RETRYING = "RETRYING"
    RETRIED = "RETRIED"
    RESTARTED = "RESTARTED"
    KILLING = "KILLING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    KILLED = "KILLED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_failed(self) -> bool:
        """A terminal state that makes the enclosing scope fail (errors branch runs)."""
        return self in FAILED_STATES

    @property
    def is_success(self) -> bool:
        """A terminal state the enclosing scope continues after."""
        return self in SUCCESS_STATES

    @property
    def is_running(self) -> bool:
        """Not terminal and not waiting to start: something is under way."""
        return self in ACTIVE


TERMINAL: Final = frozenset(
    {
        State.SUCCESS,
        State.WARNING,
        State.FAILED,
        State.KILLED,
        State.CANCELLED,
        State.SKIPPED,
        State.RETRIED,
    }
)
FAILED_STATES: Final = frozenset({State.FAILED, State.KILLED})
SUCCESS_STATES: Final = frozenset({State.SUCCESS, State.WARNING, State.SKIPPED})
ACTIVE: Final = frozenset(
    {State.RUNNING, State.PAUSED, State.RETRYING, State.RESTARTED, State.KILLING}
)

# Which state may follow which. Terminal states only leave through RESTARTED (restart of a
# failed execution or task run) — everything else about them is final. A retried attempt is
# RETRIED and never moves again.
TO_STATES: Final[dict[State, frozenset[State]]] = {
    State.CREATED: frozenset(
        {State.QUEUED, State.RUNNING, State.PAUSED, State.KILLING, State.SKIPPED, *TERMINAL}
    ),
    State.QUEUED: frozenset({State.RUNNING, State.CANCELLED, State.FAILED, State.KILLED}),
    State.RUNNING: frozenset(
        {State.PAUSED, State.RETRYING, State.KILLING, *TERMINAL} - {State.SKIPPED}
    ),
    # A resumed execution is RESTARTED, then RUNNING (ExecutionService.markAs).
    State.PAUSED: frozenset(
        {State.RUNNING, State.RESTARTED, State.KILLING, *TERMINAL} - {State.SKIPPED}
    ),
    State.RETRYING: frozenset({State.RUNNING, State.KILLING, *TERMINAL} - {State.SKIPPED}),
    State.RESTARTED: frozenset({State.RUNNING, State.KILLING, *TERMINAL} - {State.SKIPPED}),
    State.KILLING: frozenset({State.KILLED, State.FAILED, State.SUCCESS, State.WARNING}),
    State.SUCCESS: frozenset({State.RESTARTED}),
    State.WARNING: frozenset({State.RESTARTED}),
    # RETRIED: a CREATE_NEW_EXECUTION retry marks the failed run and its parents RETRIED
    # (ExecutorService.handleChildWorkerTaskResult -> markWithTaskRunAs).
    State.FAILED: frozenset({State.RESTARTED, State.RETRIED}),
    State.KILLED: frozenset({State.RESTARTED}),
    State.CANCELLED: frozenset(),
    State.SKIPPED: frozenset(),
    State.RETRIED: frozenset(),
}
FROM_STATES: Final[dict[State, frozenset[State]]] = {
    to: frozenset(f for f, tos in TO_STATES.items() if to in tos) for to in State
}


def can_transition(current: State, target: State) -> bool:
    """Whether ``current -> target`` is allowed. Staying in the same state is always allowed."""
    return current == target or target in TO_STATES[current]


def worst(states: list[State]) -> State:
    """The state a scope ends in given its children's final states (Kestra's guessFinalState)."""
    if any(s == State.KILLED for s in states):
        return State.KILLED
    if any(s == State.FAILED for s in states):
        return State.FAILED
    if any(s == State.WARNING for s in states):
        return State.WARNING
    return State.SUCCESS


__all__ = [
    "ACTIVE",
    "FAILED_STATES",
    "FROM_STATES",
    "SUCCESS_STATES",
    "TERMINAL",
    "TO_STATES",
    "State",
    "can_transition",
    "worst",
]
