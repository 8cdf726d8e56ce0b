"""Long run names are cut so that two different names never read the same on screen."""

from __future__ import annotations

import time
from pathlib import Path

from rich.cells import cell_len
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from tests.test_tui import explorer, index_tree, settle, sync
from tui.app import ArtlensApp
from tui.format import fit_apart
from tui.screens.metrics import MetricsScreen
from tui.screens.run_diff import RunDiffScreen
from tui.widgets.metrics_plot import MetricsPlot
from tui.widgets.runs_table import NAME_INDEX

LONG = "run_" + "b" * 150
"""Two runs named this with ``_1`` and ``_2`` after it (a sweep's generated names)."""


def test_fit_apart_keeps_different_names_different() -> None:
    ends = [LONG + "_1", LONG + "_2"]
    starts = ["s1/" + "c" * 60, "s2/" + "c" * 60]
    middles = ["x" * 40 + "1" + "y" * 40, "x" * 40 + "2" + "y" * 40]
    for names in (ends, starts, middles, [*ends, *starts, "short", "short"]):
        for width in (12, 24, 30, 60):
            shown = fit_apart(names, width)
            assert len(set(shown)) == len(set(names)), (names, width, shown)
            for name, text in zip(names, shown, strict=True):
                assert text == name or cell_len(text) <= width
    assert fit_apart(ends, 60)[0].endswith("_1") and cell_len(fit_apart(ends, 60)[0]) == 60


def two_long_runs(tmp_path: Path) -> tuple[Path, Path]:
    return index_tree(
        tmp_path,
        {
            f"{LONG}{suffix}/metrics.csv": f"step,loss\n1,{loss}\n".encode()
            for suffix, loss in (("_1", "0.5"), ("_2", "0.7"))
        },
    )


@sync
async def test_runs_metrics_and_run_diff_tell_long_names_apart(tmp_path: Path) -> None:
    """The runs table cut names at 60 characters, the metrics table at 30, its legend at 24
    and the run diff's title at the screen's edge: both runs read ``run_bbbb…`` alike."""
    root, db_path = two_long_runs(tmp_path)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        table = screen.table
        assert table.row_count == 2
        names = [str(table.get_row_at(i)[NAME_INDEX]).strip() for i in range(2)]
        assert len(set(names)) == 2, names
        assert sorted(name[-2:] for name in names) == ["_1", "_2"]
        assert all(cell_len(name) <= 60 for name in names)

        await pilot.press("1", "g", "space", "j", "space")
        assert len(screen.marked) == 2
        await pilot.press("m")
        await settle(pilot)
        view = app.screen
        assert isinstance(view, MetricsScreen)
        metrics: DataTable[object] = view.query_one("#metrics-table", DataTable)
        assert metrics.row_count == 2
        shown = {str(metrics.get_row_at(i)[1]) for i in range(2)}
        assert len(shown) == 2, shown
        legend = str(view.query_one(MetricsPlot).render()).splitlines()[-1]
        assert "_1 0.5" in legend and "_2 0.7" in legend, legend

        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        diff = app.screen
        assert isinstance(diff, RunDiffScreen)
        title = diff.query_one("#run-diff-title", Static)
        lines = [strip.text.rstrip() for strip in title.render_lines(title.region.reset_offset)[:2]]
        assert lines[0].lstrip().startswith("A ") and lines[1].lstrip().startswith("B ")
        assert {line.rstrip("…")[-2:] for line in lines} == {"_1", "_2"}, lines
        assert lines[0].lstrip()[2:] != lines[1].lstrip()[2:], lines


def test_plan_rows_tell_apart_paths_that_differ_in_their_middle(tmp_path: Path) -> None:
    """Two checkpoints of one run whose paths differ only early on: the plan table kept
    their ends, ``…s/epoch=1-step=100.ckpt`` twice, one row saying keep and the other
    remove."""
    from store.retention.plan import make_plan
    from store.retention.policy import from_flags
    from tests.test_retention_support import index_tree, new_db, write
    from tui.screens.retention import PLAN_NAME_WIDTH, plan_rows

    root = tmp_path / "root"
    names = [f"model_{x}/checkpoints/epoch=1-step=100.ckpt" for x in "ab"]
    for age, name in enumerate(names):
        write(root / "run" / name, b"w", age=(age + 1) * 86400.0)
    db = new_db(tmp_path)
    index_tree(db, root, {"run": ("generic", "finished")})
    plan = make_plan(db, [root], from_flags(keep_last=1), time.time())
    db.conn.close()
    items = {
        str(cells[0]).strip(): str(cells[2])
        for key, cells in plan_rows(plan)
        if key.startswith("item\0")
    }
    assert sorted(items.values()) == ["keep", "remove"]  # two rows, told apart
    assert all(cell_len(name) <= PLAN_NAME_WIDTH - 2 for name in items)
    assert {name[-8:] for name in items} == {"100.ckpt"}


@sync
async def test_disk_usage_tells_apart_names_that_differ_in_their_start(tmp_path: Path) -> None:
    same = "_" + "c" * 80 + ".ckpt"
    files = {f"run/checkpoints/{first}{same}": b"x" for first in "ab"}
    root, db_path = index_tree(tmp_path, {**files, "run/metrics.csv": b"step,loss\n1,0.5\n"})
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(120, 30)) as pilot:
        from tests.test_tui_disk_usage import move_to, open_usage

        screen = await open_usage(app, pilot)
        for name in ("(no", "run/", "checkpoints/"):
            await move_to(pilot, screen, name)
            await pilot.press("enter")
            await settle(pilot, rounds=5)
        table = screen.query_one("#du-table", DataTable)
        shown = [str(table.get_row_at(i)[-1]).strip() for i in range(table.row_count)]
        assert len(shown) == 2 and len(set(shown)) == 2, shown


def test_long_values_that_differ_never_read_alike() -> None:
    """Cut at their first 120 characters, two command lines differing in their last flag
    read the same on a row that says they changed."""
    from tui.diff_render import MAX_VALUE, WHOLE_VALUE, shown_pair

    base = "python train.py " + "--flag value " * 20
    for old, new in (
        (base + "--seed 1", base + "--seed 2"),  # at the end
        ("a" * 60 + "1" + "b" * 200, "a" * 60 + "2" + "b" * 200),  # in the middle
        ({"layers": [64] * 40 + [1]}, {"layers": [64] * 40 + [2]}),  # a container
    ):
        shown = shown_pair("changed", old, new)
        assert shown[0] != shown[1], shown
        assert all(cell_len(text) <= MAX_VALUE for text in shown), shown
    # alike as far as they are read: said, never shown as if equal
    far = ("x" * WHOLE_VALUE + "1", "x" * WHOLE_VALUE + "2")
    assert all("differs past" in text for text in shown_pair("changed", *far))
    assert shown_pair("changed", "short", "other") == ("short", "other")


def two_runs(tmp_path: Path, configs: tuple[str, str]) -> tuple[Path, Path]:
    """Two runs, ``run1`` and ``run2``, that differ only in their config.yaml, indexed."""
    files = {}
    for n, config in enumerate(configs, 1):
        files[f"run{n}/config.yaml"] = config.encode()
        files[f"run{n}/metrics.csv"] = b"step,loss\n1,0.5\n"
    return index_tree(tmp_path, files)


async def run_diff_of_both(app: ArtlensApp, pilot: Pilot[None]) -> RunDiffScreen:
    """Mark the two runs in the table and open their run diff (``d``)."""
    await settle(pilot)
    for _ in range(2):
        await pilot.press("space")
        await pilot.press("down")
    await pilot.press("d")
    await settle(pilot)
    diff = app.screen
    assert isinstance(diff, RunDiffScreen)
    return diff


@sync
async def test_stacked_run_diff_tells_apart_values_that_differ_in_their_middle(
    tmp_path: Path,
) -> None:
    """At 80 columns A and B are stacked in 18 cells: two logging dirs that differ only in
    their middle both read ``hf/bert-tiny-sst2…``."""
    logging_dir = "hf/bert-tiny-sst2/runs/Dec07_00-05-55_gpu-node-07"
    other = logging_dir.replace("05-55", "07-53")
    root, db_path = two_runs(tmp_path, (f"logging_dir: {logging_dir}\n", f"logging_dir: {other}\n"))
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        diff = await run_diff_of_both(app, pilot)
        key = next(k for k in diff.rows if "logging_dir" in diff.rows[k].cells[1].plain)
        both = diff.table.get_cell(key, "A / B").plain.split("\n")
        assert both[0].startswith("A ") and both[1].startswith("B ")
        assert both[0][2:] != both[1][2:], both
        assert all(cell_len(line) <= 20 for line in both), both


@sync
async def test_stacked_run_diff_headings_keep_their_counts(tmp_path: Path) -> None:
    """At 80 columns the configs heading read ``1 file(s) changed, 1 v``."""
    root, db_path = two_runs(tmp_path, ("lr: 0.1\n", "lr: 0.2\n"))
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        table = (await run_diff_of_both(app, pilot)).table
        assert table.get_cell("section:configs", "name").plain == "1 file(s) changed, 1 value(s)"
        lines = [strip.text for strip in table.render_lines(table.region.reset_offset)]
        shown = " ".join(" ".join(line.split()) for line in lines)
        assert "value(s)" in shown, lines  # wrapped in its cell, not cut
        assert "▸ env " in shown and "environmen" not in shown, lines
