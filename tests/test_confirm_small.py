"""The apply confirm at 80x24 and 60x20 over many roots: it names every root, so its text
outgrew the box, and the box cut its end without a sign: the warnings line, what an apply
does, and the keys that answer it.  Now the text scrolls and the keys stay in sight."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.containers import VerticalScroll

from store.index.db import open_db
from store.lock import WriterLock
from store.scan import Indexer
from tests.test_hostile_ui import screen_lines
from tests.test_tui import settle, sync
from tests.test_tui_retention import POLICY, open_plan
from tui.app import ArtlensApp
from tui.screens.retention_dialogs import ConfirmApply

FIXTURE = Path(__file__).parent / "fixtures" / "frameworks" / "lightning"
ROOTS = 14
KEYS = "y: move to the trash"
LAST = "`artlens trash purge`"
"""The end of the confirm's text."""


@pytest.fixture
def many_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Copies of the Lightning output, each a root under a policy that removes some, all
    indexed."""
    for name in ("ARTLENS_STATE", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    roots = [tmp_path / f"root{n:02}" for n in range(ROOTS)]
    db_path = tmp_path / "index.db"
    with WriterLock(db_path):
        db = open_db(db_path)
        for root in roots:
            shutil.copytree(FIXTURE, root)
            (root / ".artlens.toml").write_text(POLICY)
            Indexer(db, root).scan()
        db.conn.close()
    return roots


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
@sync
async def test_a_confirm_taller_than_the_screen_scrolls_and_keeps_its_keys(
    many_roots: list[Path], size: tuple[int, int]
) -> None:
    db_path = many_roots[0].parent / "index.db"
    app = ArtlensApp(db_path, many_roots, watch=False)
    async with app.run_test(size=size) as pilot:
        await open_plan(app, pilot)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmApply)
        shown = "\n".join(screen_lines(app))
        assert KEYS in shown, shown  # how to answer it is never cut off
        assert LAST not in shown  # the text is taller than the screen: its end is below
        scroll = app.screen.query_one(VerticalScroll)
        assert app.focused is scroll  # the keyboard scrolls it
        await pilot.press("end")
        await settle(pilot)
        shown = "\n".join(screen_lines(app))
        assert LAST in shown, shown
        assert KEYS in shown
        await pilot.press("n")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmApply)
