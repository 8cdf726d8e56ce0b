"""A rich progress bar for long scans, shown only on a terminal.

Redrawn from the scan's own callbacks, never by rich's refresh thread: a scan forks helpers
only in a process with one thread (``store.forked``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

REDRAW_SECONDS = 0.1


@contextmanager
def rich_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True, auto_refresh=False) as progress:
        task = progress.add_task(label, total=None)
        progress.refresh()
        shown = time.monotonic()

        def update(done: int, total: int) -> None:
            nonlocal shown
            progress.update(task, completed=done, total=total or None)
            if time.monotonic() - shown >= REDRAW_SECONDS or (total and done >= total):
                progress.refresh()
                shown = time.monotonic()

        yield update
