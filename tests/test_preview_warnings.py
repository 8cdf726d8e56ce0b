"""A warning about a file stays in sight while its preview follows the file's end.

A metrics.csv written in the last two minutes opens scrolled to its newest rows
("following"); its "ragged rows" warning was only at the top of the text, so at 80x24 it
was scrolled out of sight: the rows looked whole.  The pane's border now names it.
"""

from __future__ import annotations

from pathlib import Path

from store.preview import preview_file
from tests.conftest import index_dated
from tests.test_live_ui import until
from tests.test_tui import open_file, settle, sync
from tui.app import ArtlensApp
from tui.screens.explorer import ExplorerScreen

NOW = 1_780_000_000.0


def drawn_lines(app: ArtlensApp) -> list[str]:
    """Every line the compositor would draw now, as the text of its segments."""
    strips = app.screen._compositor.render_strips()
    return ["".join(seg.text for seg in strip if not seg.control) for strip in strips]


def growing_run(base: Path, metrics: str) -> tuple[Path, Path]:
    """A Lightning run whose metrics.csv was written 10 s before the app's clock."""
    root = base / "root"
    run = root / "lightning_logs" / "version_3"
    run.mkdir(parents=True)
    (run / "hparams.yaml").write_text("lr: 0.01\n")
    (run / "metrics.csv").write_text(metrics)
    db_path = base / "index.db"
    index_dated(root, db_path, NOW, 10)
    return root, db_path


ROWS = "".join(f"{step},{step},{1 / (step + 1):.4f}\n" for step in range(60))


@sync
async def test_a_followed_metrics_file_keeps_its_ragged_rows_warning_in_sight(
    tmp_path: Path,
) -> None:
    root, db_path = growing_run(tmp_path, "epoch,step,train_loss\n0,0,0.5\n1,1,0.4,9\n2,2\n" + ROWS)
    app = ArtlensApp(db_path, [root], watch=False, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExplorerScreen)
        await open_file(pilot, screen, "version_3", "metrics.csv")
        pane = screen.preview_pane
        await until(pilot, lambda: pane.shown_key is not None, "the preview")
        await until(pilot, lambda: pane.scroll_y == pane.max_scroll_y > 0, "the view at the end")
        assert pane.following
        drawn = "\n".join(drawn_lines(app))
        assert "following" in drawn
        assert "ragged rows" in drawn, drawn  # in the border, though the top is out of sight
        assert "ragged rows" in pane.plain_text(width=60)  # and its full text at the top


@sync
async def test_a_followed_file_without_warnings_shows_only_the_following_state(
    tmp_path: Path,
) -> None:
    root, db_path = growing_run(tmp_path, "epoch,step,train_loss\n" + ROWS)
    app = ArtlensApp(db_path, [root], watch=False, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExplorerScreen)
        await open_file(pilot, screen, "version_3", "metrics.csv")
        pane = screen.preview_pane
        await until(pilot, lambda: pane.scroll_y == pane.max_scroll_y > 0, "the view at the end")
        assert str(pane.border_subtitle) == "following ▼"


def test_only_notes_that_doubt_the_content_are_warnings(tmp_path: Path) -> None:
    ragged = tmp_path / "m.csv"
    ragged.write_text("a,b\n1,2\n3\n")
    result = preview_file(ragged)
    assert result.warnings == (
        "ragged rows: some rows have a different number of fields than the header",
    )
    assert set(result.warnings) <= set(result.notes)  # still shown at the top, in full
    whole = tmp_path / "w.csv"
    whole.write_text("a,b\n1,2\n")
    assert preview_file(whole).warnings == () and preview_file(whole).notes  # "1 rows"
    cut = tmp_path / "c.json"
    cut.write_text('{"a": [1, 2')
    (warning,) = preview_file(cut).warnings
    assert warning.startswith("invalid JSON (written mid-way?)")
