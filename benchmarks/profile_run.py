"""Run a benchmark with py-spy attached to the ``headwater dev`` process it starts.

    .venv/bin/python benchmarks/profile_run.py --out /tmp/sat -- \\
        --quick --scenarios saturation --no-peer --no-write --rates 6000,30000 --phase-s 60

Everything after ``--`` goes to ``run_all.py``. py-spy (the dev extra) samples every thread of
the first ``headwater dev`` process that appears, at ``--rate`` Hz, until it exits, and writes
``OUT.txt`` (collapsed stacks, one ``frame;frame;... count`` line each, ``--idle`` off: only
samples where the thread was running). Then ``OUT.top.txt``: the functions with the most
samples, by their own time and by the time under them. ``py-spy`` needs ptrace rights on the
process (root, or ``kernel.yama.ptrace_scope=0``).
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import subprocess
import sys
import time

import psutil

ROOT = pathlib.Path(__file__).resolve().parents[1]
PY_SPY = pathlib.Path(sys.executable).parent / "py-spy"
# The inclusive list shows Headwater's own functions (the entry frames would fill it).
OURS = ("engine", "executors", "triggers", "schemas")


def _dev_process(parent: int) -> psutil.Process | None:
    try:
        children = psutil.Process(parent).children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    for child in children:
        try:
            cmdline = child.cmdline()
        except psutil.Error:
            continue
        if len(cmdline) > 2 and cmdline[1].endswith("headwater") and cmdline[2] == "dev":
            return child
    return None


def summarize(collapsed: pathlib.Path, top: int = 40) -> str:
    """The functions with the most samples: own (the leaf) and inclusive (Headwater's, anywhere
    in the stack, once per sample), each as a share of every sample."""
    own: collections.Counter[str] = collections.Counter()
    under: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        threads[frames[0]] += n
        own[frames[-1]] += n
        for frame in set(frames[1:]):
            if any(f"({package}/" in frame for package in OURS):
                under[frame] += n
    if not total:
        return "no samples\n"
    out = [f"samples: {total}", "", "by thread:"]
    out += [f"{100 * n / total:6.1f} %  {name}" for name, n in threads.most_common(15)]
    out += ["", "own time (leaf frame):"]
    out += [f"{100 * n / total:6.1f} %  {name}" for name, n in own.most_common(top)]
    out += ["", "inclusive, Headwater's functions (anywhere in the stack):"]
    out += [f"{100 * n / total:6.1f} %  {name}" for name, n in under.most_common(top)]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=pathlib.Path, help="output path stem")
    parser.add_argument("--rate", type=int, default=97, help="samples per second")
    parser.add_argument("run_all", nargs=argparse.REMAINDER, help="-- then run_all.py's args")
    args = parser.parse_args()
    forwarded = args.run_all[1:] if args.run_all[:1] == ["--"] else args.run_all
    args.out.parent.mkdir(parents=True, exist_ok=True)
    raw = args.out.with_suffix(".txt")
    bench = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), *forwarded])
    spy: subprocess.Popen[bytes] | None = None
    while bench.poll() is None:
        dev = _dev_process(bench.pid) if spy is None else None
        if dev is not None:
            spy = subprocess.Popen(
                [str(PY_SPY), "record", "--pid", str(dev.pid), "--rate", str(args.rate),
                 "--threads", "--format", "raw", "--output", str(raw), "--nonblocking"],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
        time.sleep(0.2)
    if spy is None:
        print("no headwater dev process appeared: nothing profiled", file=sys.stderr)
        return bench.returncode or 1
    spy.wait(timeout=60)
    summary = args.out.with_suffix(".top.txt")
    summary.write_text(summarize(raw))
    print(f"profile: {raw}, summary: {summary}", file=sys.stderr)
    return bench.returncode


if __name__ == "__main__":
    sys.exit(main())
