"""The worker's part of a Kestra 2.0 Loop over an internal-storage file.

Kestra 2.0 (``Loop.initFromUri``, ``FlowableUtils.readAndCountLoopValuesFromUri`` and
``ionValueToString``): when a Loop's ``values`` render to a ``kestra://`` URI, each line of
that ION file is one iteration; a string is the value as it is, a number its text, anything
else its JSON, and a null fails the loop ("Found a null value in the ION file").

The executor cannot read storage, so it sends the Loop task run to a worker as a job of the
Loop's type with ``values`` rendered; this runner reads the file and answers the values
(``outputs.values``), and the executor starts the iterations from them. Values are read at
once (Kestra reads them by offset as iterations start); a file of more than
:data:`MAX_VALUES` lines is refused with a message, so that the execution's state stays small.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from executors import ion
from executors.base import TaskContext, TaskError, TaskOutcome

# Iterations one Loop may read from a file: every value is kept in the execution's state.
MAX_VALUES = 10_000


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


class LoopValuesTask:
    """Reads a Loop's values from its ``kestra://`` file (``task["values"]``, rendered)."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        uri = str(task.get("values") or "").strip()
        if not uri.startswith("kestra://"):
            raise TaskError(f"property 'values': {uri!r} is not an internal-storage URI")
        if ctx.storage is None:
            raise TaskError("this worker has no internal storage to read the Loop's values")
        data = await ctx.storage.read(uri)
        out: list[str] = []
        try:
            values = list(ion.iter_values(io.BytesIO(data)))
        except ion.IonError as exc:
            raise TaskError(f"the Loop's values file {uri} is not Ion text: {exc}") from None
        for value in values:
            if value is None:
                raise TaskError("Found a null value in the ION file")
            out.append(_text(value))
            if len(out) > MAX_VALUES:
                raise TaskError(
                    f"the Loop's values file {uri} has more than {MAX_VALUES} lines: split it "
                    "(storage.Split) and loop over the parts"
                )
        return TaskOutcome(state="SUCCESS", outputs={"values": out})
