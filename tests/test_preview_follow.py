"""Following a growing file survives refreshes that land before the last scroll did."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import App, ComposeResult

import tui
from tests.test_live_ui import sync, until
from tui.widgets.preview import PreviewPane


class _PaneApp(App[None]):
    """The preview pane alone, styled by the explorer's own stylesheet."""

    CSS_PATH = Path(tui.__file__).parent / "app.tcss"

    def compose(self) -> ComposeResult:
        yield PreviewPane(id="preview")


def _log(lines: int) -> list[Text]:
    return [Text("\n".join(f"step {n}" for n in range(lines)))]


@sync
async def test_a_view_left_short_of_the_end_by_no_reader_keeps_following() -> None:
    """Following used to stop whenever a refresh found the view short of the end, which
    also happens with no reader involved: a refresh landing before the previous one's
    scroll to the end (a busy machine), or the terminal growing shorter, as here."""
    app = _PaneApp()
    async with app.run_test(size=(60, 20)) as pilot:
        pane = app.query_one(PreviewPane)
        pane.show(_log(40), scroll_end=True, key=b"train.log")
        await until(pilot, lambda: pane.max_scroll_y > 0, "a log taller than the pane")
        await until(pilot, lambda: pane.scroll_y == pane.max_scroll_y, "the view at the end")
        await pilot.resize_terminal(60, 10)
        await until(pilot, lambda: pane.scroll_y < pane.max_scroll_y, "a shorter pane")
        pane.show(_log(120), scroll_end=True, key=b"train.log")
        await until(pilot, lambda: pane.max_scroll_y > 100, "the longer log laid out")
        await until(pilot, lambda: pane.scroll_y == pane.max_scroll_y, "the view at the new end")
        assert pane.following


@sync
async def test_the_readers_own_scroll_pauses_and_f_resumes() -> None:
    app = _PaneApp()
    async with app.run_test(size=(60, 12)) as pilot:
        pane = app.query_one(PreviewPane)
        pane.show(_log(40), scroll_end=True, key=b"train.log")
        pane.focus()
        await until(pilot, lambda: pane.scroll_y == pane.max_scroll_y > 0, "the view at the end")
        await pilot.press("k")
        assert not pane.following
        place = pane.scroll_y
        pane.show(_log(80), scroll_end=True, key=b"train.log")
        await until(pilot, lambda: pane.max_scroll_y > 60, "the longer log laid out")
        await pilot.pause()
        assert pane.scroll_y == place
        await pilot.press("F")
        await until(pilot, lambda: pane.scroll_y == pane.max_scroll_y, "the newest lines again")
        assert pane.following
