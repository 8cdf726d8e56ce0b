"""The progress bar redraws from the scan's callbacks and starts no thread: a thread would
stop the scan from forking its helpers (``store.forked.can_fork``)."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest
from rich.console import Console
from rich.progress import Progress

from tui.cli import progress as progress_module


def test_the_progress_bar_starts_no_thread_and_still_draws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()

    def on_a_terminal(*columns: Any, **options: Any) -> Progress:
        return Progress(*columns, console=Console(file=out, force_terminal=True), **options)

    monkeypatch.setattr(progress_module, "Progress", on_a_terminal)
    before = threading.active_count()
    with progress_module.rich_progress("indexing") as update:
        assert threading.active_count() == before
        update(5, 0)
        update(10, 10)
        assert threading.active_count() == before
    assert "indexing" in out.getvalue() and "10/10" in out.getvalue()
