"""Coalescing of watcher events into folder batches.

Event handlers run on watchdog's single dispatch thread and must return at once, so they
only drop a folder into this set.  The worker takes the whole set when the events pause
for ``window`` seconds, or after ``max_wait`` at the latest, so a file written without
pause still lands in the index.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSE_WINDOW = 0.02
"""Seconds of quiet after a close-after-write before its folder is rescanned."""


class FolderBatcher:
    """A set of (root, folder) waiting to be rescanned, shared by producer and worker."""

    def __init__(
        self,
        window: float,
        max_wait: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.max_wait = max(max_wait, window)
        self.close_window = min(window, CLOSE_WINDOW)
        """The quiet time when the last event was a file's close or a rename into place: the
        write is complete, and what follows it (the next file of a save) comes within it."""
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: dict[int, set[bytes]] = {}
        self._events = 0
        self._first = 0.0
        self._last = 0.0
        self._closed = False
        self._woken = False
        self._quiet = window

    def add(self, root: int, folder: bytes, *, closed: bool = False) -> None:
        """Record that ``folder`` of root number ``root`` changed (called per event);
        ``closed``: the event was a file closed after writing."""
        with self._cond:
            now = self._clock()
            if not self._pending:
                self._first = now
                self._cond.notify()
            elif closed:
                self._cond.notify()  # the wait may now end sooner
            self._pending.setdefault(root, set()).add(folder)
            self._events += 1
            self._last = now
            self._quiet = self.close_window if closed else self.window

    def wake(self) -> None:
        """Make a waiting ``take`` return now, so the worker's housekeeping runs."""
        with self._cond:
            self._woken = True
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return sum(len(f) for f in self._pending.values())

    def take(self, timeout: float) -> tuple[dict[int, set[bytes]], int]:
        """Wait up to ``timeout`` for a due batch: ({root: folders}, events), or ({}, 0)."""
        give_up = self._clock() + timeout
        with self._cond:
            while not self._closed:
                now = self._clock()
                if self._pending:
                    due = min(self._last + self._quiet, self._first + self.max_wait)
                    if now >= due:
                        batch, events = self._pending, self._events
                        self._pending, self._events = {}, 0
                        return batch, events
                    self._cond.wait(due - now)
                    continue
                if self._woken or now >= give_up:
                    self._woken = False
                    return {}, 0
                self._cond.wait(give_up - now)
            return {}, 0
