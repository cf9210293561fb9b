"""How much of Kestra's blueprint catalog Headwater accepts: validate every flow as published.

    .venv/bin/python benchmarks/blueprints.py DIR [--top 25]

``DIR`` is a checkout of kestra-io/blueprints (its ``flows/`` folder, or the repository root).
Each ``*.yaml``/``*.yml`` is loaded with :func:`engine.flows.load_flow_file`, exactly what
``headwater flow validate`` does. Prints one JSON object: how many validate, and the types
that block the most flows ("a Kestra plugin that Headwater does not provide"), counted once
per flow, plus the other problems' first lines. A coverage measure, not a speed one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from engine.flows import FlowValidationError, expression_warnings, load_flow_file
from schemas.types import NOT_PROVIDED

_TYPE = re.compile(r"'([^']+)' " + re.escape(NOT_PROVIDED))


def measure(folder: Path, top: int) -> dict[str, object]:
    if (folder / "flows").is_dir():
        folder = folder / "flows"
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    valid = 0
    blockers: Counter[str] = Counter()
    other: Counter[str] = Counter()
    only_missing = 0
    with_warnings = 0
    for path in files:
        try:
            load_flow_file(path)
        except FlowValidationError as exc:
            missing = {m.group(1) for p in exc.problems if (m := _TYPE.search(p.message))}
            blockers.update(missing)
            rest = [p for p in exc.problems if not _TYPE.search(p.message)]
            other.update(f"{p.path}: {p.message}"[:120] for p in rest)
            only_missing += not rest
        else:
            valid += 1
            # Valid, but a task will fail when it renders an expression it cannot parse.
            if expression_warnings(path.read_text(encoding="utf-8"), str(path)):
                with_warnings += 1
    return {
        "what": "Kestra blueprints validating with headwater flow validate, as published",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "folder": str(folder),
        "flows": len(files),
        "valid": valid,
        "valid_percent": round(100 * valid / len(files), 1) if files else 0.0,
        "valid_with_expression_warnings": with_warnings,
        "invalid_only_for_missing_plugins": only_missing,
        "top_missing_types": blockers.most_common(top),
        "top_other_problems": other.most_common(top),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(json.dumps(measure(args.folder, args.top), indent=2))


if __name__ == "__main__":
    main()
