"""`headwater run` in a real terminal (a pty): the live task table updates as task runs change
(a parallel branch ending, a retry) and never shows raw markup such as ``[green]SUCCESS``."""

from __future__ import annotations

import os
import pathlib
import pty
import re
import select
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow]

HEADWATER = pathlib.Path(sys.executable).with_name("headwater")
RUN_WITHIN_S = 120.0
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

FLOW = """
id: livetable
namespace: company.team
tasks:
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: slow
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT2S
      - id: quick
        type: io.kestra.plugin.scripts.shell.Commands
        commands: ["echo quick done"]
  - id: flaky
    type: io.kestra.plugin.scripts.shell.Commands
    retry: {type: constant, interval: PT1S, maxAttempt: 3}
    commands: ["echo attempt; exit 1"]
"""


def _run_in_pty(args: list[str], cwd: pathlib.Path) -> tuple[int, str]:
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        args, cwd=cwd, stdin=follower, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], RUN_WITHIN_S)
            if not ready:
                raise AssertionError("no output for too long: " + b"".join(chunks).decode()[-2000:])
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=RUN_WITHIN_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return code, b"".join(chunks).decode(errors="replace")


def test_live_table_in_a_terminal(tmp_path: pathlib.Path) -> None:
    flow = tmp_path / "live.yaml"
    flow.write_text(FLOW)
    code, raw = _run_in_pty(
        [str(HEADWATER), "run", str(flow), "--embedded", "--data-dir", str(tmp_path / "data")],
        tmp_path,
    )
    text = _ANSI.sub("", raw).replace("\r", "")
    assert code == 1, text[-3000:]  # flaky fails after its retries
    assert "\x1b[32mSUCCESS" in raw  # a terminal gets colours...
    for markup in ("[green]", "[cyan]", "[red]", "[yellow]", "[/"):
        assert markup not in text, text[-3000:]  # ...never markup
    lines = text.splitlines()
    ended = next(i for i, line in enumerate(lines) if "livetable FAILED" in line)
    before_end = lines[:ended]
    # The table moved while the execution ran: a parallel branch ended, a retry was shown.
    assert any(re.match(r"^\s+quick\s+SUCCESS\b", line) for line in before_end), text[-3000:]
    assert any(re.match(r"^\s*flaky\s+RETRYING\b", line) for line in before_end), text[-3000:]
    # Parallel children are indented under the Parallel.
    par = next(line for line in lines if re.match(r"^\s*par\s", line))
    slow = next(line for line in lines if re.match(r"^\s*slow\s", line))
    assert len(slow) - len(slow.lstrip()) > len(par) - len(par.lstrip())
    assert "attempt" in text  # the log lines came through too
