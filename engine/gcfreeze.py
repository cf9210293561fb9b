"""Full garbage collections of a long-running process scan only what is new since the last.

Measured (issue 18, ``benchmarks/RESULTS.md``): the executor keeps every execution in memory
for its purge grace period after the end, and CPython's full (generation 2) collections
traverse all of them each time, to find nothing (``collected=0``): in ``headwater dev`` they
stopped the event loop for 0.3-0.4 s every ~20 s at 100 executions/s, and for 0.6-1.5 s every
6-10 s at 500/s. That was the p99 of trigger latency and projection lag, and most of the
run-to-run spread at saturation.

:class:`FrozenSurvivors` moves what survived each full collection into the permanent
generation (``gc.freeze()``), so the next full collections traverse only objects that arrived
since. Frozen objects are still freed by reference counting (an execution purged from memory
goes at once); only a reference cycle among them that becomes garbage waits: every
``unfreeze_every_s`` the permanent generation goes back (``gc.unfreeze()``) and the next full
collection reclaims such cycles, paying the whole traversal once per period instead of once
per few seconds. Per process, and only where installed (the components' processes).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# How often a full collection traverses everything (reclaiming cycles among frozen objects).
UNFREEZE_EVERY_S = 600.0


class FrozenSurvivors:
    """``install()`` once per process; ``uninstall()`` puts the collector back as it was."""

    def __init__(
        self,
        unfreeze_every_s: float = UNFREEZE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.unfreeze_every_s = unfreeze_every_s
        self._clock = clock
        self._unfreeze_at = clock() + unfreeze_every_s
        self.freezes = 0
        self.unfreezes = 0

    def install(self) -> None:
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def uninstall(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        gc.unfreeze()

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation") != 2:
            return
        now = self._clock()
        if now >= self._unfreeze_at:
            # The next full collection traverses everything once (and freezes after it).
            self._unfreeze_at = now + self.unfreeze_every_s
            gc.unfreeze()
            self.unfreezes += 1
            return
        gc.freeze()
        self.freezes += 1


_INSTALLED: FrozenSurvivors | None = None


def install() -> FrozenSurvivors:
    """The process's one :class:`FrozenSurvivors`, installed (idempotent)."""
    global _INSTALLED
    if _INSTALLED is None:
        _INSTALLED = FrozenSurvivors()
        _INSTALLED.install()
        log.debug("full collections freeze their survivors (unfrozen every %.0f s)",
                  UNFREEZE_EVERY_S)  # fmt: skip
    return _INSTALLED
