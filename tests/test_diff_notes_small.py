"""The file diff's notes at 80x24 and 60x20: four lines at most.  A note that says two
lines look alike but differ wrapped past them and was cut mid-sentence without a sign;
now the last line shown ends in ``…`` and the tooltip says every note whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.content import Content
from textual.widgets import Static

from tests.test_notes_small import assert_whole_or_marked
from tests.test_tui import settle, sync
from tui.app import ArtlensApp
from tui.screens.file_diff import FileDiffScreen


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
@sync
async def test_a_look_alike_note_cut_to_the_box_ends_in_an_ellipsis(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    a, b = root / "a.txt", root / "b.txt"
    a.write_text("same\nvalue \nend\n")
    b.write_text("same\nvalue\nend")  # a blank at a line's end, no newline at the end
    app = ArtlensApp(tmp_path / "index.db", [root], watch=False)
    async with app.run_test(size=size) as pilot:
        screen = FileDiffScreen(bytes(a), bytes(b))
        await app.push_screen(screen)
        await settle(pilot, rounds=5)
        assert screen.diff is not None
        notes = screen.query_one("#file-diff-notes", Static)
        whole = screen._notes(screen.diff).plain
        assert "look alike but differ" in whole
        wrapped = Content(whole).wrap(notes.content_size.width)
        assert len(wrapped) > notes.content_size.height  # it cannot show whole here
        assert_whole_or_marked(app, notes, whole)
        assert notes.tooltip is not None and str(notes.tooltip) == whole
