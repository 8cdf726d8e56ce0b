"""The status line after each commit: its new counts are painted without a layout of the
whole screen (the line's height is fixed)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from textual.app import App, ComposeResult
from textual.pilot import Pilot

from store.index.views import IndexCounts
from tui.widgets.status import StatusLine


class StatusApp(App[None]):
    CSS = "#status { height: 1; }"

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the status line never got there"
        await pilot.pause(0.01)


def test_new_counts_repaint_the_line_without_a_layout() -> None:
    async def scenario() -> None:
        app = StatusApp()
        async with app.run_test(size=(100, 5)) as pilot:
            status = app.query_one(StatusLine)
            status.change(counts=IndexCounts(1, 10, 100, 1))
            await until(pilot, lambda: "10 files" in str(status.render()))
            await pilot.pause()
            layouts: list[Any] = []
            screen = app.screen
            real = screen._refresh_layout

            def counting(*args: Any, **kwargs: Any) -> None:
                layouts.append(args)
                real(*args, **kwargs)

            screen._refresh_layout = counting  # type: ignore[method-assign]
            status.change(counts=IndexCounts(1, 11, 120, 2))
            await until(pilot, lambda: "11 files" in "".join(s.text for s in status.render_line(0)))
            await pilot.pause()
            assert layouts == [], f"{len(layouts)} layouts of the screen for a new count"

    asyncio.run(scenario())
