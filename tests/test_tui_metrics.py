"""The metrics view, checklists, notes and pins in the explorer, on real framework outputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from store.index import query
from store.index.db import open_db
from store.metrics_series import read_run_series, thin
from store.userstate import UserState
from tests.test_checklist import FIXTURES, WANDB_RUN, copy_fixtures, index_tree
from tests.test_tui import settle, sync
from tui.app import ArtlensApp
from tui.screens.explorer import ExplorerScreen
from tui.screens.metrics import MetricsScreen
from tui.screens.note import NoteScreen
from tui.widgets.metrics_plot import MetricsPlot, draw
from tui.widgets.sparkline import sparkline

EXPECTED: dict[str, list[dict[str, Any]]] = json.loads((FIXTURES / "EXPECTED.json").read_text())
LIGHTNING = [f"lightning/lightning_logs/version_{n}" for n in range(3)]


@pytest.fixture
def indexed(tmp_path: Path, isolated_cache: Path) -> tuple[Path, Path]:
    return copy_fixtures(tmp_path)


def runs_by_path(db_path: Path) -> dict[str, query.RunRow]:
    db = open_db(db_path, readonly=True)
    try:
        return {r.path.decode(): r for r in query.list_runs(db)}
    finally:
        db.conn.close()


def last(runs: dict[str, query.RunRow], path: str, metric: str) -> float | None:
    line = read_run_series(runs[path]).line(metric)
    assert line is not None, (path, metric)
    return line.last


def test_series_last_values_match_the_libraries(indexed: tuple[Path, Path]) -> None:
    _, db_path = indexed
    runs = runs_by_path(db_path)
    checked = 0
    for entry in EXPECTED["lightning"]:
        for name, value in entry["metrics"].items():
            assert last(runs, entry["path"].removeprefix(""), name) == pytest.approx(value)
            checked += 1
    for entry in EXPECTED["hf_trainer"]:
        for name in ("loss", "eval_loss", "eval_accuracy"):
            value = entry["metrics"][name]["value"]
            assert last(runs, entry["path"], name) == pytest.approx(value)
            checked += 1
    for entry in EXPECTED["tensorboard"]:
        for name, point in entry["scalars"].items():
            assert last(runs, entry["path"], name) == pytest.approx(point["value"])
            checked += 1
    for entry in EXPECTED["wandb"]:
        for name in ("loss", "acc"):
            assert last(runs, entry["path"], name) == pytest.approx(entry["history_last"][name])
            checked += 1
    mlflow = {r.meta.get("run_id"): path for path, r in runs.items() if r.framework == "mlflow"}
    for entry in EXPECTED["mlflow_file"] + EXPECTED["mlflow_sqlite"]:
        for name, point in entry["metrics"].items():
            assert last(runs, mlflow[entry["run_id"]], name) == pytest.approx(point["value"])
            checked += 1
    assert checked >= 25


def test_thin_keeps_extremes_and_the_last_point() -> None:
    points = [(i, float(i % 97)) for i in range(100_000)]
    points[51_234] = (51_234, 1e6)
    kept = thin(points, 200)
    assert len(kept) <= 201
    assert (51_234, 1e6) in kept
    assert kept[-1] == points[-1]
    assert [p[0] for p in kept] == sorted(p[0] for p in kept)


def test_sparkline_and_plot_drawing() -> None:
    assert sparkline([3.0, 2.0, 1.0, float("nan"), 0.0], 10) == "█▆▃▁"
    assert sparkline([], 5) == ""
    from tui.widgets.metrics_plot import PlotLine

    text = draw("loss", (PlotLine("a[bold]", ((0, 1.0), (10, 0.5)), "cyan"),), 40, 8).plain
    assert text.splitlines()[0] == "loss"
    assert "a[bold] 0.5" in text
    assert any(0x2800 < ord(ch) <= 0x28FF for ch in text)


def app_for(db_path: Path, root: Path) -> ArtlensApp:
    return ArtlensApp(db_path, [root], watch=False)


def explorer_of(app: ArtlensApp) -> ExplorerScreen:
    for screen in app.screen_stack:
        if isinstance(screen, ExplorerScreen):
            return screen
    raise AssertionError("no explorer")


async def mark(pilot: Pilot[None], screen: ExplorerScreen, run_id: int) -> None:
    screen.jump_to_run(run_id)
    await pilot.pause()
    await pilot.press("space")


async def wait_for(pilot: Pilot[None], condition: Any, seconds: float = 8.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    assert condition()


@sync
async def test_metrics_view_of_three_marked_runs_follows_a_live_write(
    indexed: tuple[Path, Path],
) -> None:
    root, db_path = indexed
    runs = runs_by_path(db_path)
    app = app_for(db_path, root)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer_of(app)
        for path in LIGHTNING:
            await mark(pilot, screen, runs[path].id)
        assert screen.marked == {runs[p].id for p in LIGHTNING}
        await pilot.press("m")
        await settle(pilot)
        view = app.screen
        assert isinstance(view, MetricsScreen)
        assert set(view.series) == {runs[p].id for p in LIGHTNING}
        assert view.chosen == ["train_loss"]
        plot = view.query_one(MetricsPlot)
        assert plot.title == "train_loss"
        assert len(plot.lines) == 3
        by_name = {line.label: line for line in plot.lines}
        for entry in EXPECTED["lightning"]:
            name = runs[entry["path"]].name
            assert by_name[name].points[-1][1] == pytest.approx(entry["metrics"]["train_loss"])
        assert len({line.color for line in plot.lines}) == 3
        table = view.query_one("#metrics-table", DataTable)
        assert table.row_count >= 6  # train_loss and val_loss (and epoch) for three runs
        # space adds val_loss next to train_loss: two plots side by side
        await pilot.press("j")
        while view._cursor_metric() != "val_loss":
            await pilot.press("j")
        await pilot.press("space")
        await pilot.pause()
        assert [p.title for p in view.query(MetricsPlot)] == ["train_loss", "val_loss"]
        # a run writes a new step: the explorer's change feed makes the view reread it
        csv = root / LIGHTNING[0] / "metrics.csv"
        csv.write_text(csv.read_text() + "4,8,0.0123,\n")
        index_tree(root, db_path)
        version_0 = runs[LIGHTNING[0]].id

        def updated() -> bool:
            line = view.series[version_0].line("train_loss")
            return line is not None and line.last == pytest.approx(0.0123)

        await wait_for(pilot, updated)
        await settle(pilot)
        lines = {line.label: line for line in view.query(MetricsPlot).first().lines}
        step, value = lines[runs[LIGHTNING[0]].name].points[-1]
        assert step == 8 and value == pytest.approx(0.0123)
        await pilot.press("escape")
        assert isinstance(app.screen, ExplorerScreen)


@sync
async def test_checklist_column_and_missing_items_in_the_detail(
    indexed: tuple[Path, Path],
) -> None:
    root, db_path = indexed
    (root / WANDB_RUN / "files" / "requirements.txt").unlink()
    index_tree(root, db_path)
    runs = runs_by_path(db_path)
    short = runs[WANDB_RUN]
    app = app_for(db_path, root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = explorer_of(app)
        assert screen.checklists[short.id].missing == ["requirements.txt|conda-environment.yaml"]
        cell = screen.table.get_cell(str(short.id), "check")
        assert cell.plain == "✗2/3"  # a glyph: readable without colour
        assert any("yellow" in str(span.style) for span in cell.spans)
        complete = runs[LIGHTNING[0]]
        assert screen.table.get_cell(str(complete.id), "check").plain == "3/3"
        screen.jump_to_run(short.id)
        await settle(pilot)
        assert "missing requirements.txt|conda-environment.yaml" in str(screen.file_tree.root.label)
        text = screen.preview_pane.plain_text()
        assert "checklist 2/3 · missing: requirements.txt|conda-environment.yaml" in text
        assert "git 10236fab5cf9" in text


@sync
async def test_note_and_pin_survive_in_user_state(indexed: tuple[Path, Path]) -> None:
    root, db_path = indexed
    runs = runs_by_path(db_path)
    run = runs[LIGHTNING[1]]
    app = app_for(db_path, root)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer_of(app)
        screen.jump_to_run(run.id)
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, NoteScreen)
        await pilot.press(*"best lr [bold]")
        await pilot.press("enter")
        await settle(pilot)
        assert screen.user_notes[(run.root, run.path.decode())] == "best lr [bold]"
        name = screen.table.get_cell(str(run.id), "name").plain
        assert name.startswith("✎ ")
        await pilot.press("p")
        await settle(pilot)
        await wait_for(pilot, lambda: (run.root, run.path.decode()) in screen.user_pins)
        assert screen.table.get_cell(str(run.id), "name").plain.startswith("◆ ✎ ")
        assert "best lr [bold]" in screen.preview_pane.plain_text()
    with UserState() as state:
        assert state.note(root, run.path.decode()) == "best lr [bold]"
        assert state.is_pinned(root, run.path.decode())


class TestMetricsSnapshot:
    def test_three_runs_at_80x24(
        self, indexed: tuple[Path, Path], snap_compare: Callable[..., bool]
    ) -> None:
        """Three Lightning runs: train_loss and val_loss rows with sparklines, and the
        train_loss plot with one coloured line per run and a legend of last values."""
        root, db_path = indexed
        runs = runs_by_path(db_path)

        async def run_before(pilot: Pilot[None]) -> None:
            await settle(pilot)
            screen = explorer_of(pilot.app)  # type: ignore[arg-type]
            for path in LIGHTNING:
                await mark(pilot, screen, runs[path].id)
            await pilot.press("m")
            await settle(pilot)

        app = app_for(db_path, root)
        assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_series_differ_by_glyph_without_colour() -> None:
    from tui.widgets.metrics_plot import GLYPHS, PlotLine, draw

    a = PlotLine("a", tuple((x, 1.0 - x / 100) for x in range(100)), "cyan", GLYPHS[0])
    b = PlotLine("b", tuple((x, x / 100) for x in range(100)), "magenta", GLYPHS[1])
    text = draw("loss", (a, b), 60, 14).plain
    curve, legend = text.split("\n")[1:-2], text.split("\n")[-1]
    assert sum(row.count(GLYPHS[0]) for row in curve) >= 3
    assert sum(row.count(GLYPHS[1]) for row in curve) >= 3
    assert f"{GLYPHS[0]} a" in legend and f"{GLYPHS[1]} b" in legend


def test_metrics_past_those_shown_are_counted(indexed: tuple[Path, Path]) -> None:
    """A run logging more metrics than the view shows (500): the rest were left out of
    the view without a word."""
    from store.metrics_series import MAX_METRICS

    root, db_path = indexed
    csv = root / LIGHTNING[0] / "metrics.csv"
    names = [f"m{i:03}" for i in range(MAX_METRICS + 7)]
    csv.write_text("step," + ",".join(names) + "\n0," + ",".join("0.5" for _ in names) + "\n")
    index_tree(root, db_path)
    series = read_run_series(runs_by_path(db_path)[LIGHTNING[0]])
    assert len(series.metrics) == MAX_METRICS
    (warning,) = series.warnings
    assert f"more metrics not shown (the first {MAX_METRICS} by name)" in warning
    assert int(warning.split(": ", 1)[1].split()[0]) >= 7
