"""The plots' legends at 80x24: a run with no room in it, or no curve, is counted, never
silently left out."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from tests.test_tui import explorer, index_tree, settle, sync
from tests.test_tui_metrics import mark
from tui.app import ArtlensApp
from tui.screens.metrics import MetricsScreen
from tui.widgets.metrics_plot import MetricsPlot, PlotLine, draw


def test_the_legend_counts_what_it_has_no_room_for() -> None:
    lines = tuple(
        PlotLine(f"run-{n}", ((0, 1.0), (10, 0.5 + n / 10)), "cyan", "●") for n in range(3)
    )
    legend = draw("loss", lines, 26, 10).plain.splitlines()[-1]
    assert "run-0" in legend and "+2 more" in legend, legend
    assert len(legend) <= 26
    wide = draw("loss", lines, 80, 10, not_plotted=1).plain.splitlines()[-1]
    assert all(f"run-{n}" in wide for n in range(3)) and "1 not plotted" in wide, wide
    assert "+" not in wide
    # a chosen metric that no run has a curve of is not "choose a metric"
    assert "no points to plot" in draw("loss", (), 40, 8, not_plotted=2).plain


def three_runs(tmp_path: Path) -> tuple[Path, Path]:
    files = {}
    for n in range(3):
        run = f"lightning_logs/version_{n}/"
        files[run + "hparams.yaml"] = f"lr: 0.{n}\n".encode()
        extra = ",acc" if n else ""
        rows = "".join(f"{s},{1 - s / 10}{',0.5' if n else ''}\n" for s in range(1, 4))
        files[run + "metrics.csv"] = f"step,loss{extra}\n{rows}".encode()
    return index_tree(tmp_path, files)


@sync
async def test_three_plots_at_80_columns_count_the_runs_they_cannot_name(tmp_path: Path) -> None:
    root, db_path = three_runs(tmp_path)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        for run_id in screen.runs:
            await mark(pilot, screen, run_id)
        await pilot.press("m")
        await settle(pilot)
        view = app.screen
        assert isinstance(view, MetricsScreen)
        table: DataTable[object] = view.query_one("#metrics-table", DataTable)
        acc = next(i for i, row in enumerate(table.ordered_rows) if "acc" in str(row.key.value))
        table.move_cursor(row=acc)
        await pilot.press("space")  # loss (chosen first) and acc, side by side
        await settle(pilot)
        plots = list(view.query(MetricsPlot))
        assert [plot.title for plot in plots] == ["loss", "acc"]
        for plot in plots:
            legend = str(plot.render()).splitlines()[-1]
            named = sum(f"version_{n}" in legend for n in range(3))
            more = int(legend.split("+")[1].split(" ")[0]) if "+" in legend else 0
            absent = int(legend.split(" not plotted")[0].split()[-1]) if "plotted" in legend else 0
            assert named + more + absent == 3, (plot.title, legend)
        acc_legend = str(plots[1].render()).splitlines()[-1]
        assert "1 not plotted" in acc_legend, acc_legend  # version_0 logged no acc
