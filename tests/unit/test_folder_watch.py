"""The dev flows folder watch (engine.devstack.watch): changes wake it, silence does not."""

from __future__ import annotations

import asyncio
import os
import pathlib
import sys
from collections.abc import Callable

import pytest

from engine.devstack.watch import watch_folder

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")

QUIET_S = 0.3
WITHIN_S = 5.0


async def _watch_sees(folder: pathlib.Path, change: Callable[[], object]) -> tuple[bool, bool]:
    """(woken with nothing changed, woken after ``change()``)."""
    watch = watch_folder(folder)
    assert watch is not None
    try:
        quiet = await watch.changed(QUIET_S)
        change()
        return quiet, await watch.changed(WITHIN_S)
    finally:
        watch.close()


def test_a_written_file_wakes_the_watch_and_silence_does_not(tmp_path: pathlib.Path) -> None:
    quiet, woken = asyncio.run(
        _watch_sees(tmp_path, lambda: (tmp_path / "a.yaml").write_text("id: a\n"))
    )
    assert (quiet, woken) == (False, True)


def test_a_file_in_a_directory_made_after_the_start_is_seen(tmp_path: pathlib.Path) -> None:
    async def scenario() -> list[bool]:
        watch = watch_folder(tmp_path)
        assert watch is not None
        try:
            (tmp_path / "team").mkdir()
            made = await watch.changed(WITHIN_S)
            quiet = await watch.changed(QUIET_S)
            (tmp_path / "team" / "b.yml").write_text("id: b\n")
            return [made, quiet, await watch.changed(WITHIN_S)]
        finally:
            watch.close()

    assert asyncio.run(scenario()) == [True, False, True]


def test_renames_and_deletes_wake_it(tmp_path: pathlib.Path) -> None:
    (tmp_path / "c.yaml").write_text("id: c\n")
    quiet, moved = asyncio.run(
        _watch_sees(tmp_path, lambda: os.replace(tmp_path / "c.yaml", tmp_path / "d.yaml"))
    )
    assert (quiet, moved) == (False, True)
    quiet, deleted = asyncio.run(_watch_sees(tmp_path, lambda: (tmp_path / "d.yaml").unlink()))
    assert (quiet, deleted) == (False, True)


def test_no_watch_for_a_missing_folder(tmp_path: pathlib.Path) -> None:
    async def scenario() -> object:
        return watch_folder(tmp_path / "absent")

    assert asyncio.run(scenario()) is None
