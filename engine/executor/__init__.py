"""The executor stream processor (DESIGN.md step 2).

Executor          the Kafka wiring: consume, decide, produce, commit; restore; timers; health
BatchDecider      one batch of records -> the records to produce (no I/O)
InlineRunner      I/O-free core tasks (Log, Return...) run in the batch instead of on a worker
StateStore        executions of the owned partitions; restore and purge logic (pure)
TimerWheel        which timer is due next (pure)
Admission         per-flow concurrency slots behind hw.admission
run_executor      run one executor until a signal (the CLI and ``python -m engine.executor``)
"""

from __future__ import annotations

from engine.executor.admission import Admission
from engine.executor.batch import BatchDecider
from engine.executor.inline import InlineRunner
from engine.executor.processor import Clock, Executor, RealClock
from engine.executor.service import run_executor
from engine.executor.store import StateStore
from engine.executor.timers import TimerWheel

__all__ = [
    "Admission",
    "BatchDecider",
    "Clock",
    "Executor",
    "InlineRunner",
    "RealClock",
    "StateStore",
    "TimerWheel",
    "run_executor",
]
