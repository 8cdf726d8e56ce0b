"""The retention view's Trash tab at 80x24: each trashed item's name reads whole at its end
(a path cut by the screen's edge read as another checkpoint: ``epoch=18-step=95``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual.widgets import DataTable

from store.index.db import open_db
from store.lock import WriterLock
from store.retention import service
from store.retention.policy import from_flags
from store.scan import Indexer
from tests.test_tui import settle, sync
from tui.app import ArtlensApp
from tui.screens.retention import RetentionScreen


def drawn_lines(app: ArtlensApp) -> list[str]:
    """Every line the compositor would draw now, as the text of its segments."""
    strips = app.screen._compositor.render_strips()
    return ["".join(seg.text for seg in strip if not seg.control) for strip in strips]


@sync
async def test_trashed_paths_keep_their_names_whole_at_80x24(
    lightning_index: tuple[Path, Path],
) -> None:
    root, db_path = lightning_index
    # two runs whose checkpoints' paths agree for longer than the screen is wide
    runs = root / "lightning_logs" / "a_long_experiment_folder_name_for_a_sweep"
    for n in (950, 951):
        run = runs / f"version_{n}"
        shutil.copytree(root / "lightning_logs" / "version_0", run)
        for old in (run / "checkpoints").iterdir():
            old.rename(old.with_name(old.name.replace("epoch", f"epoch=18-step={n}-")))
    with WriterLock(db_path):
        db = open_db(db_path)
        try:
            Indexer(db, root).scan()
            planned = service.make(db, adhoc=from_flags(keep_last=1))
        finally:
            db.close()
    done = service.apply(planned.plan, db_path, role="test")
    trashed = [item.path for item in done.report.done]
    for step in ("step=950", "step=951"):
        assert any(step in path for path in trashed), trashed
    assert any(len(path) > 80 for path in trashed)

    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, RetentionScreen)
        await pilot.press("3")
        await settle(pilot)
        table = app.screen.query_one("#ret-trash", DataTable)
        assert table.row_count == len(trashed)
        lines = drawn_lines(app)
        text = "\n".join(lines)
        for path in trashed:
            name = path.rsplit("/", 1)[1]
            assert name in text, (name, lines)
        cells = [str(table.get_row(key.value or "")[3]) for key in table.rows]
        assert len(set(cells)) == len(cells), cells  # no two read alike
        header = next(line for line in lines if " path " in line)
        assert "why" in header, header  # the reasons are on screen too
