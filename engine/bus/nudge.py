"""Wake-ups from a process's producers to its own dozing consumers.

An idle consumer dozes (:mod:`engine.bus.consumer`): it stops fetching and listens only once
per period, because Tansu answers an empty fetch only after ``fetch.wait.max.ms`` and idle
fetching costs the broker CPU. The price is the first record after a quiet spell, which
waits up to one period. When the record comes from a producer in the same process (in
``headwater dev`` every component is: a webhook's StartExecution, the executor's job, the
worker's TaskResult), that producer knows it at once: it nudges the consumers of the topic,
which wake and fetch immediately. So their period can be long (``nudged_doze_period_ms``)
without delaying the first record.

A nudge is only a hint: it is keyed by broker address and topic, held weakly, and a consumer
that misses one still listens once per period. It is process-wide on purpose (like the event
loop): whoever produces and whoever consumes in this process meet here without being wired to
each other, and nothing in it needs resetting between uses.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Protocol


class Sleeper(Protocol):
    """A dozing consumer: ``wake`` is called from any thread."""

    def wake(self) -> None: ...


class Nudges:
    """Dozing consumers by (bootstrap servers, topic)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dozing: dict[tuple[str, str], weakref.WeakSet[Sleeper]] = {}
        # The topics with a dozing consumer: the producers' per-record check is one lookup.
        self.topics: frozenset[tuple[str, str]] = frozenset()

    def dozing(self, bootstrap: str, topics: Iterable[str], sleeper: Sleeper) -> None:
        """``sleeper`` dozes on ``topics``: wake it when one of them is written."""
        with self._lock:
            for topic in topics:
                self._dozing.setdefault((bootstrap, topic), weakref.WeakSet()).add(sleeper)
            self._update()

    def awake(self, sleeper: Sleeper) -> None:
        with self._lock:
            for sleepers in self._dozing.values():
                sleepers.discard(sleeper)
            self._update()

    def produced(self, bootstrap: str, topic: str) -> None:
        """A producer of this process wrote (or is writing) to ``topic``."""
        if (bootstrap, topic) not in self.topics:
            return
        with self._lock:
            sleepers = list(self._dozing.pop((bootstrap, topic), ()))
            self._update()
        for sleeper in sleepers:
            sleeper.wake()

    def _update(self) -> None:
        self._dozing = {k: v for k, v in self._dozing.items() if v}
        self.topics = frozenset(self._dozing)


NUDGES = Nudges()
