"""The metrics view shows every marked run: one without metrics says why, never nothing."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from tests.test_tui import explorer, index_tree, settle, sync
from tests.test_tui_metrics import mark
from tui.app import ArtlensApp
from tui.screens.metrics import MetricsScreen
from tui.widgets.metrics_plot import MetricsPlot

LOGS = "exp[/evil]/lightning_logs"
"""A folder name that is bad markup: the reasons name the file they are about."""


def four_runs(tmp_path: Path) -> tuple[Path, Path]:
    """version_0 logged two points; version_1 logged nothing; version_2's last line is
    still being written (one point read); version_3 has only a line being written."""
    files = {f"{LOGS}/version_{n}/hparams.yaml": f"lr: 0.{n}\n".encode() for n in range(4)}
    files[f"{LOGS}/version_0/metrics.csv"] = b"step,loss\n1,0.5\n2,0.4\n"
    files[f"{LOGS}/version_2/metrics.csv"] = b"step,loss\n1,0.5\n2,0.4"
    files[f"{LOGS}/version_3/metrics.csv"] = b"step,loss\n3,0."
    return index_tree(tmp_path, files)


def rows(view: MetricsScreen) -> dict[str, list[str]]:
    table: DataTable[object] = view.query_one("#metrics-table", DataTable)
    found = {}
    for row in table.ordered_rows:
        cells = [str(cell) for cell in table.get_row(row.key)]
        found[f"{cells[0]} | {cells[1]}"] = cells
    return found


@sync
async def test_every_marked_run_has_a_row_saying_why_it_has_no_metrics(tmp_path: Path) -> None:
    root, db_path = four_runs(tmp_path)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        assert len(screen.runs) == 4
        for run_id in screen.runs:
            await mark(pilot, screen, run_id)
        assert len(screen.marked) == 4
        await pilot.press("m")
        await settle(pilot)
        view = app.screen
        assert isinstance(view, MetricsScreen)
        shown = rows(view)
        assert "no metrics logged | version_1" in shown
        assert "metrics read in part | version_2" in shown
        assert "metrics unreadable | version_3" in shown
        assert "loss | version_0" in shown and "loss | version_2" in shown
        assert not any("version_0" in key and "metrics" in key for key in shown)
        # the reason names the file, as text (the folder's name is not markup)
        why = shown["metrics unreadable | version_3"][4]
        assert why.startswith("exp[/evil]/") and why.endswith("not read"), why
        # the notes come first: at 80x24 they are on screen with the metrics
        assert {key.split(" | ")[0] for key in list(shown)[:3]} == {
            "no metrics logged",
            "metrics read in part",
            "metrics unreadable",
        }
        title = str(view.query_one("#metrics-title").render())
        assert "version_3: metrics unreadable" in title
        # on a note, with no metric chosen, the plot says the note (not "no series")
        await pilot.press("c")
        await settle(pilot)
        table: DataTable[object] = view.query_one("#metrics-table", DataTable)
        table.move_cursor(row=list(shown).index("no metrics logged | version_1"))
        await settle(pilot)
        assert view.query_one(MetricsPlot).title == "version_1: no metrics logged"


@sync
async def test_a_run_with_no_metrics_alone_still_shows(tmp_path: Path) -> None:
    """``m`` on the run under the cursor, which logged none: one row that says so."""
    root, db_path = index_tree(tmp_path, {"lightning_logs/version_0/hparams.yaml": b"lr: 1\n"})
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        view = app.screen
        assert isinstance(view, MetricsScreen)
        assert list(rows(view)) == ["no metrics logged | version_0"]
        assert view.query_one(MetricsPlot).title == "version_0: no metrics logged"
