"""The trash tab's audit box at 80x24 and 60x20: it shows ten lines at most.  What could
not be read was listed after six audit lines (two lines each at these widths), so it never
showed, nor the newest operations (listed last); past three, problems went uncounted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Static

from store.retention.trash import TRASH_DIR
from tests.test_hostile_ui import screen_lines
from tests.test_tui import settle, sync
from tests.test_tui_retention import open_plan
from tui.app import ArtlensApp

RECORDS = 8
BROKEN = 5


def audit_log(root: Path) -> None:
    """``RECORDS`` applies an hour apart, the newest with 7 items, then ``BROKEN`` lines
    that are no audit records (torn writes)."""
    trash = root / TRASH_DIR
    trash.mkdir(mode=0o700)
    lines = [
        json.dumps(
            {
                "v": 1,
                "ts": 1_700_000_000 + 3600 * n,
                "op": "apply",
                "user": "alice",
                "uid": 0,
                "plan": f"plan{n}",
                "items": n,
                "bytes": 1000 * n,
                "skipped": 0,
            }
        )
        for n in range(RECORDS)
    ]
    lines += ['{"v": 1, "ts": 1'] * BROKEN
    (trash / "audit.jsonl").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
@sync
async def test_the_audit_box_shows_problems_and_the_newest_first(
    lightning_index: tuple[Path, Path], size: tuple[int, int]
) -> None:
    root, db_path = lightning_index
    audit_log(root)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=size) as pilot:
        screen, _ = await open_plan(app, pilot)
        await pilot.press("3")
        await settle(pilot)
        box = screen.query_one("#ret-audit", Static).region
        shown = " ".join(" ".join(line.split()) for line in screen_lines(app)[box.y : box.bottom])
        assert f"audit.jsonl line {RECORDS + 1}: not JSON" in shown, shown
        assert f"{BROKEN - 3} more" in shown, shown  # the problems not listed are counted
        newest = f"plan plan{RECORDS - 1}: {RECORDS - 1} item(s)"
        said = screen.query_one("#ret-audit", Static).visual
        records = [line for line in str(said).splitlines() if " apply plan " in line]
        assert newest in records[0], records  # the newest first, so a cut takes the oldest
        if size == (80, 24):
            assert newest in shown, shown
