"""A checkpoint-named symlink (Lightning's ``last.ckpt``) in the retention view: it takes
no keep-last slot, the real newest checkpoint keeps it, and the pane says what the link is."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from store.index.db import open_db
from store.lock import WriterLock
from store.scan import Indexer
from tests.test_tui import settle, sync
from tui.app import ArtlensApp
from tui.screens.retention import RetentionScreen

FIXTURES = Path(__file__).parent / "fixtures" / "frameworks"
CKPTS = "lightning_logs/version_0/checkpoints"


@pytest.fixture
def linked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Lightning output whose ``last.ckpt`` is a symlink to the OLDER checkpoint."""
    monkeypatch.setenv("ARTLENS_STATE", str(tmp_path / "state.db"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    root = tmp_path / "lightning"
    shutil.copytree(FIXTURES / "lightning", root)
    last = root / CKPTS / "last.ckpt"
    last.unlink()
    os.symlink("epoch2-val0.0854.ckpt", last)
    (root / ".artlens.toml").write_text("[retention]\nkeep_last = 1\n")
    db_path = tmp_path / "index.db"
    with WriterLock(db_path):
        db = open_db(db_path)
        Indexer(db, root).scan()
        db.conn.close()
    return root, db_path


def row_text(table: DataTable[object], key: str) -> str:
    return " ".join(str(cell) for cell in table.get_row(key))


@sync
async def test_a_symlinked_last_ckpt_takes_no_keep_last_slot(linked: tuple[Path, Path]) -> None:
    root, db_path = linked
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot, rounds=5)
        screen = app.screen
        assert isinstance(screen, RetentionScreen)
        table = screen.query_one("#ret-plan", DataTable)
        keys = {str(k.value) for k in table.rows}
        newest = f"item\0{root}\0{CKPTS}/epoch3-val0.0592.ckpt"
        older = f"item\0{root}\0{CKPTS}/epoch2-val0.0854.ckpt"
        # the link is no checkpoint of its own: no row, so it can neither keep nor go
        assert f"item\0{root}\0{CKPTS}/last.ckpt" not in keys
        assert "keep" in row_text(table, newest) and "latest" in row_text(table, newest)
        assert "remove" in row_text(table, older)
        summary = str(screen.query_one("#ret-summary", Static).render())
        assert "last.ckpt is a symlink" in summary and "dangle" in summary
