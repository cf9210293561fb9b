"""Wake up when something changes under a folder, without polling (Linux inotify).

``headwater dev`` follows its flows folder. Scanning it every half second costs an idle
process four event-loop wake-ups a second; inotify costs nothing until a file changes.
:func:`watch_folder` returns None where inotify is missing (not Linux, no free watches, the
folder absent): the caller polls then, as before.

Only "something changed" is reported, never what: the caller rescans and compares, so a
lost or overflowing event queue cannot lose a change as long as a change wakes it at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import pathlib
import sys

log = logging.getLogger(__name__)

# inotify(7): a file written, moved or deleted, a directory created, the folder itself gone.
_IN_MODIFY = 0x2
_IN_ATTRIB = 0x4
_IN_CLOSE_WRITE = 0x8
_IN_MOVED_FROM = 0x40
_IN_MOVED_TO = 0x80
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_MASK = (
    _IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE
    | _IN_DELETE | _IN_DELETE_SELF | _IN_MOVE_SELF
)  # fmt: skip
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = 0o2000000
_READ_BYTES = 64 * 1024


class FolderWatch:
    """Use :func:`watch_folder`; ``await changed(timeout_s)``; ``close()`` at the end."""

    def __init__(self, libc: ctypes.CDLL, fd: int, folder: pathlib.Path) -> None:
        self._libc = libc
        self._fd = fd
        self.folder = folder
        self._event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._on_readable)
        self.watch_tree()

    def watch_tree(self) -> None:
        """Watch the folder and every directory under it (new ones appear after a change);
        a directory watched already keeps its one watch."""
        for top, _dirs, _files in os.walk(self.folder):
            if self._libc.inotify_add_watch(self._fd, os.fsencode(top), _MASK) < 0:
                # Gone meanwhile, or no watches left: the caller's backstop scan covers it.
                log.debug("inotify: cannot watch %s: %s", top, os.strerror(ctypes.get_errno()))

    async def changed(self, timeout_s: float) -> bool:
        """True when something changed under the folder, False after ``timeout_s`` without."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._event.wait()
        except TimeoutError:
            return False
        self._event.clear()
        self.watch_tree()
        return True

    def _on_readable(self) -> None:
        # Drain here, not in changed(): the loop would report the fd readable once more
        # before changed() runs, and that stale report would count as a new change.
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self._fd, _READ_BYTES):
                pass
        self._event.set()

    def close(self) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1


def watch_folder(folder: pathlib.Path) -> FolderWatch | None:
    """A watch of ``folder`` and its subdirectories, or None where inotify is not available.
    Call it on the event loop that will await :meth:`FolderWatch.changed`."""
    if not sys.platform.startswith("linux") or not folder.is_dir():
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
    except (OSError, AttributeError) as exc:
        log.debug("inotify unavailable: %s", exc)
        return None
    if fd < 0:
        log.debug("inotify_init1 failed: %s", os.strerror(ctypes.get_errno()))
        return None
    return FolderWatch(libc, fd, folder)
