"""engine.gcfreeze: full collections freeze their survivors, and every period one traverses
everything again, reclaiming cycles among frozen objects. Run in a child interpreter: the
collector is process-wide, and pytest's own garbage must not be frozen."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import gc, weakref
from engine.gcfreeze import FrozenSurvivors

now = [0.0]
frozen = FrozenSurvivors(unfreeze_every_s=600.0, clock=lambda: now[0])
frozen.install()

class Node:
    pass

def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a

kept = cycle()  # alive: it survives the first full collection and is frozen
gc.collect()
assert frozen.freezes == 1 and gc.get_freeze_count() > 0, (frozen.freezes, gc.get_freeze_count())
old = weakref.ref(kept.other)
del kept  # a cycle among frozen objects, now garbage: not traversed while frozen
gc.collect()
assert old() is not None, "a frozen cycle was collected"
assert frozen.freezes == 2

young = cycle()  # garbage before any freeze: collected as usual
probe = weakref.ref(young.other)
del young
gc.collect()
assert probe() is None, "a cycle that was never frozen survived"

now[0] = 601.0  # the period is over: the next full collection unfreezes ...
gc.collect()
assert frozen.unfreezes == 1 and gc.get_freeze_count() == 0
gc.collect()  # ... and the one after traverses everything and reclaims the old cycle
assert old() is None, "the frozen cycle was never reclaimed"
assert frozen.freezes == 4
frozen.uninstall()
assert gc.get_freeze_count() == 0
print("ok")
"""


def test_survivors_are_frozen_and_a_periodic_full_collection_reclaims_their_cycles() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "ok"
