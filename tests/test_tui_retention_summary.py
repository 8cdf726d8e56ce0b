"""The retention view's summary at 80x24: what the plan does, that it has warnings, and
every warning ``artlens retention plan`` prints, reachable by scrolling."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from store.index.db import open_db
from store.lock import WriterLock
from store.retention.plan import grouped_warnings
from store.scan import Indexer
from tests.test_tui import settle, sync
from tests.test_tui_retention import open_plan
from tui.app import ArtlensApp


@pytest.fixture
def lightning(lightning_index: tuple[Path, Path]) -> tuple[Path, Path]:
    return lightning_index


def drawn_lines(app: ArtlensApp) -> list[str]:
    """Every line the compositor would draw now, as the text of its segments."""
    strips = app.screen._compositor.render_strips()
    return ["".join(seg.text for seg in strip if not seg.control) for strip in strips]


@sync
async def test_every_plan_warning_is_reachable_at_80x24(
    lightning: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80x24 the summary's first lines say what the plan does and how many warnings it
    has, and every warning and link note ``artlens retention plan`` prints can be scrolled
    to: a plan with more warnings than the summary's height showed its first two (and at
    80 columns none of them), as if there were no more."""
    root, db_path = lightning
    last = root / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    last.unlink()
    last.symlink_to("epoch2-val0.0854.ckpt")  # a link note
    other = root / "lightning_logs" / "version_1" / "checkpoints" / "last.ckpt"
    other.unlink()
    other.symlink_to("gone.ckpt")  # a dangling one
    # keep_best by a metric no run logs: a warning per run; a budget nothing can meet
    (root / ".artlens.toml").write_text(
        '[retention]\nkeep_last = 1\nkeep_best = 1\nmetric = "nope"\nmode = "min"\nbudget = "1"\n'
    )
    with WriterLock(db_path):
        db = open_db(db_path)
        try:
            Indexer(db, root).scan()
        finally:
            db.close()
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, _table = await open_plan(app, pilot)
        plan = screen.plan
        assert plan is not None
        warnings = grouped_warnings(plan.warnings)
        assert len(warnings) >= 3 and len(plan.links) >= 2, (warnings, plan.links)
        drawn = " ".join(" ".join(drawn_lines(app)).split())
        assert f"remove {len(plan.removals)}" in drawn
        assert f"{len(warnings) + len(plan.links)} warnings" in drawn, drawn
        summary = " ".join(str(screen.query_one("#ret-summary", Static).render()).split())
        for line in [*warnings, *plan.links]:
            assert " ".join(line.split()) in summary, line
        # scrolled to its end, the last of them is drawn
        box = screen.query_one("#ret-summary-box")
        box.focus()
        await pilot.press("end")
        await settle(pilot)
        drawn = " ".join(" ".join(drawn_lines(app)).split())
        tail = " ".join(plan.links[-1].split())[-40:]
        assert tail in drawn, (tail, drawn)


@sync
async def test_the_apply_dialog_says_the_plan_has_warnings(
    lightning: tuple[Path, Path],
) -> None:
    """The dialog that confirms an apply stated what moves, and nothing of the plan's
    warnings (a folder no one could read, a keep_best with no metric): it counts them and
    shows the first."""
    from tui.screens.retention_dialogs import ConfirmApply

    root, db_path = lightning
    (root / ".artlens.toml").write_text(
        '[retention]\nkeep_last = 1\nkeep_best = 1\nmetric = "nope"\nmode = "min"\n'
    )
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, _table = await open_plan(app, pilot)
        plan = screen.plan
        assert plan is not None and plan.removals
        notes = [*grouped_warnings(plan.warnings), *plan.links]
        assert notes
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmApply)
        said = " ".join(str(app.screen.query_one("#confirm-text", Static).render()).split())
        assert f"⚠ {len(notes)} warning" in said, said
        assert " ".join(notes[0].split())[:60] in said
        await pilot.press("n")
