"""A run whose metrics or params were read in part says so wherever its values are shown.

A Lightning ``metrics.csv`` with one good row and then rows with too many or too few cells
gave ``train_loss=0.5`` in the runs table, the run detail and ``artlens runs``, as if the
file had been read whole; the reader's warning showed only near the end of the run detail
(below the fold at 80x24), and ``--json`` had no field a script could test.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import index_dated
from tests.test_tui import settle, sync
from tui.app import ArtlensApp
from tui.cli import main
from tui.screens.explorer import ExplorerScreen

NOW = 1_780_000_000.0
RAGGED = "epoch,step,train_loss\n0,0,0.5\n1,1,0.4,9\n2,2\n"
"""One good row, then a row with a cell too many and one with a cell too few."""


def partial_tree(base: Path) -> tuple[Path, Path]:
    """Two Lightning runs, ``version_3`` with a ragged metrics.csv and ``version_0`` read
    whole, indexed with a fixed clock (neither looks live)."""
    root = base / "root"
    for version, metrics in (("version_3", RAGGED), ("version_0", "step,train_loss\n0,0.7\n")):
        run = root / "lightning_logs" / version
        run.mkdir(parents=True)
        (run / "hparams.yaml").write_text("lr: 0.01\n")
        (run / "metrics.csv").write_text(metrics)
    db_path = base / "index.db"
    index_dated(root, db_path, NOW, 7200)
    return root, db_path


def drawn_lines(app: ArtlensApp) -> list[str]:
    """Every line the compositor would draw now, as the text of its segments."""
    strips = app.screen._compositor.render_strips()
    return ["".join(seg.text for seg in strip if not seg.control) for strip in strips]


@sync
async def test_metrics_read_in_part_are_marked_in_the_table_and_atop_the_detail(
    tmp_path: Path,
) -> None:
    root, db_path = partial_tree(tmp_path)
    app = ArtlensApp(db_path, [root], watch=False, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExplorerScreen)
        table = screen.table
        keys = [c.key for c in table.columns_shown]
        by_name = {run.name: run for run in screen.runs.values()}
        ragged, whole = by_name["version_3"], by_name["version_0"]
        row = [str(c) for c in table.get_row(str(ragged.id))]
        # the name (always on screen, however the table scrolls) carries the mark ...
        assert row[keys.index("name")].startswith("? "), row
        # ... and so does the value read from the one good row
        assert row[keys.index("loss")] == "0.5?", row
        plain = [str(c) for c in table.get_row(str(whole.id))]
        assert "?" not in plain[keys.index("name")] and plain[keys.index("loss")] == "0.7"

        screen.jump_to_run(ragged.id)
        await settle(pilot)
        shown = "\n".join(drawn_lines(app))
        # at 80x24, without scrolling: what is partial, and where the reason is
        assert "? metrics read in part" in shown, shown
        assert re.search(r"why: 1 warning", shown), shown
        text = screen.preview_pane.plain_text(width=60)
        assert "last metrics (1) ? read in part" in text, text
        assert "number of fields than the header skipped" in " ".join(text.split())

        screen.jump_to_run(whole.id)
        await settle(pilot)
        assert "read in part" not in screen.preview_pane.plain_text(width=60)


def test_runs_listings_mark_metrics_read_in_part(tmp_path: Path) -> None:
    from tests.test_cli import _on_a_terminal

    _, db_path = partial_tree(tmp_path)
    result = CliRunner().invoke(main, ["runs", "--json", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    listed = {r["name"]: r for r in json.loads(result.stdout)}
    assert listed["version_3"]["metrics_complete"] is False
    assert listed["version_3"]["params_complete"] is True
    assert listed["version_0"]["metrics_complete"] is True
    assert listed["version_3"]["metrics"]["train_loss"]["last"] == 0.5

    rows = CliRunner().invoke(main, ["runs", "--db", str(db_path)]).stdout.splitlines()
    cells = {line.split("\t")[1]: line.split("\t")[7] for line in rows}
    assert cells == {"version_3": "train_loss=0.5?", "version_0": "train_loss=0.7"}, rows

    env = {**os.environ, "ARTLENS_CACHE": str(tmp_path / "c")}
    shown = _on_a_terminal(["runs", "--db", str(db_path)], env)
    shown = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", shown)
    assert "train_loss=0.5?" in shown and "train_loss=0.7?" not in shown, shown
    assert "? metrics read in part: a file they come from could not be read whole (1 run;" in shown
