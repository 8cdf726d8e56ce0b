"""Notes of a few lines at 80x24 and 60x20: the retention legend, the disk usage view's
"could not be read" warning and its header.  Text they cannot show whole ends in ``…`` on
their last line; before, the lines past their ``max-height`` went without a sign (the
legend ended at "no rule keeps", a warning mid-sentence)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widget import Widget
from textual.widgets import Static

from store.index.db import open_db
from store.lock import WriterLock
from store.scan import Indexer
from tests.test_hostile_ui import screen_lines
from tests.test_scan import deny_listing, run_tree
from tests.test_tui import settle, sync
from tests.test_tui_disk_usage import open_usage
from tests.test_tui_retention import open_plan
from tui.app import ArtlensApp

SIZES = [(80, 24), (60, 20)]
LONG = "a-folder-name-long-enough-to-wrap-the-note-onto-lines-out-of-sight"


def shown_lines(app: ArtlensApp, widget: Widget) -> list[str]:
    """The lines of ``widget``'s content as drawn on the screen."""
    box = widget.content_region
    lines = screen_lines(app)
    return [lines[y][box.x : box.right].rstrip() for y in range(box.y, box.bottom)]


def assert_whole_or_marked(app: ArtlensApp, widget: Widget, whole: str) -> None:
    """The widget shows ``whole`` (wrapped), or what it shows of it ends in ``…``."""
    lines = shown_lines(app, widget)
    said = " ".join(" ".join(line.split()) for line in lines).strip()
    words = " ".join(whole.split())
    if said == words:
        return
    assert said.endswith("…"), (lines, whole)
    assert words.startswith(said[:-1].rstrip()), (said, words)


@pytest.mark.parametrize("size", SIZES)
@sync
async def test_the_legend_cut_to_its_two_lines_ends_in_an_ellipsis(
    lightning_index: tuple[Path, Path], size: tuple[int, int]
) -> None:
    root, db_path = lightning_index
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=size) as pilot:
        screen, _ = await open_plan(app, pilot)
        legend = screen.query_one("#ret-legend", Static)
        whole = screen._legend().plain
        assert len(whole) > 2 * legend.content_size.width  # it cannot show whole here
        assert_whole_or_marked(app, legend, whole)
        assert legend.tooltip is not None and str(legend.tooltip) == whole
        await pilot.resize_terminal(200, 40)  # wide enough: the whole legend, no ellipsis
        await settle(pilot)
        assert_whole_or_marked(app, legend, whole)
        assert not shown_lines(app, legend)[-1].endswith("…")


def unread_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A run whose three long-named folders the scan could not list, indexed."""
    for name in ("ARTLENS_STATE", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    root = tmp_path / "root"
    run = run_tree(root)
    denied = [run / f"{LONG}-{n}" for n in range(3)]
    for folder in denied:
        folder.mkdir()
        shutil.copy(run / "out" / "model.ckpt", folder / "model.ckpt")
    db_path = tmp_path / "index.db"
    with WriterLock(db_path), monkeypatch.context() as patched:
        deny_listing(patched, *denied)
        db = open_db(db_path)
        Indexer(db, root).scan()
        db.conn.close()
    return root, db_path


@pytest.mark.parametrize("size", SIZES)
@sync
async def test_a_long_unread_warning_and_header_end_in_an_ellipsis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    """Three folders no one could read: the warning names them in more than its two lines;
    what it shows ends in ``…`` (the tooltip says it whole), as the header above does."""
    root, db_path = unread_tree(tmp_path, monkeypatch)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=size) as pilot:
        screen = await open_usage(app, pilot)
        note = screen.query_one("#du-unread", Static)
        assert note.display and "3 folders could not be read" in screen.unread
        whole = "? " + screen.unread
        assert len(whole) > 2 * note.content_size.width
        assert_whole_or_marked(app, note, whole)
        assert shown_lines(app, note)[-1].endswith("…")
        assert note.tooltip is not None and str(note.tooltip) == screen.unread
        where = screen.query_one("#du-where", Static)
        assert_whole_or_marked(app, where, screen._where().plain)
