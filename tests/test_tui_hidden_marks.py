"""Marked runs a filter hides: the actions on marks leave them out, and say so."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from tests.test_tui import explorer, index_tree, settle, sync
from tests.test_tui_metrics import mark
from tui.app import ArtlensApp
from tui.screens.explorer import ExplorerScreen
from tui.screens.metrics import MetricsScreen
from tui.screens.run_diff import RunDiffScreen
from tui.widgets.status import StatusLine


def three_runs(tmp_path: Path) -> tuple[Path, Path]:
    """Two runs under ``alpha/``, one under ``beta/`` (a filter ``root:tree/alpha/`` hides it)."""
    files = {}
    for exp, n, loss in (("alpha", 0, "0.5"), ("alpha", 1, "0.4"), ("beta", 0, "0.3")):
        run = f"{exp}/lightning_logs/version_{n}/"
        files[run + "hparams.yaml"] = f"lr: 0.{n}\n".encode()
        files[run + "metrics.csv"] = f"step,loss\n1,{loss}\n".encode()
    return index_tree(tmp_path, files)


async def mark_all_then_filter(pilot: Pilot[None], text: str) -> ExplorerScreen:
    await settle(pilot)
    screen = explorer(pilot.app)  # type: ignore[arg-type]
    for run_id in screen.runs:
        await mark(pilot, screen, run_id)
    assert len(screen.marked) == 3
    screen.set_filter(text)
    await settle(pilot)
    assert screen.table.row_count == 2
    return screen


def notices(app: ArtlensApp) -> list[str]:
    return [n.message for n in app._notifications]


def beta_id(screen: ExplorerScreen) -> int:
    return next(r.id for r in screen.runs.values() if r.path.startswith(b"beta/"))


@sync
async def test_diff_takes_the_two_shown_marked_runs_and_says_one_is_hidden(
    tmp_path: Path,
) -> None:
    root, db_path = three_runs(tmp_path)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await mark_all_then_filter(pilot, "root:tree/alpha/")
        status = str(screen.query_one(StatusLine).render())
        assert "3 marked (1 hidden)" in status, status
        await pilot.press("d")
        await settle(pilot)
        diff = app.screen
        assert isinstance(diff, RunDiffScreen), notices(app)
        assert {diff.run_a.path[:6], diff.run_b.path[:6]} == {b"alpha/"}
        assert any("1 marked run(s) hidden by the filter" in n for n in notices(app))
        # the hidden run stays marked: clearing the filter brings the three back
        await pilot.press("escape")
        await settle(pilot)
        assert beta_id(screen) in screen.marked


@sync
async def test_diff_with_one_shown_and_two_hidden_says_why_it_does_not_diff(
    tmp_path: Path,
) -> None:
    """Two marked runs hidden, one shown: no diff of runs the user cannot see."""
    root, db_path = three_runs(tmp_path)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await mark_all_then_filter(pilot, "root:tree/alpha/")
        screen.runs_pane.marked.discard(
            next(r.id for r in screen.runs.values() if r.path.startswith(b"alpha/"))
        )
        screen.set_filter("root:tree/beta/")
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, ExplorerScreen)
        assert any("1 marked run(s) shown and 1 hidden" in n for n in notices(app)), notices(app)


@sync
async def test_metrics_show_only_the_shown_marked_runs_and_say_one_is_hidden(
    tmp_path: Path,
) -> None:
    root, db_path = three_runs(tmp_path)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await mark_all_then_filter(pilot, "root:tree/alpha/")
        await pilot.press("m")
        await settle(pilot)
        view = app.screen
        assert isinstance(view, MetricsScreen)
        assert {run.path[:6] for run in view.runs} == {b"alpha/"}
        assert len(view.runs) == 2
        assert beta_id(screen) not in view.series
        assert any("left out of the metrics" in n for n in notices(app)), notices(app)
