"""Pictures of each pane at 80x24 and 120x40 on the demo data (pytest-textual-snapshot).

The demo is written to a fixed folder with a fixed clock, so paths, ages and hashes in the
pictures are the same on every run.  Update with ``--snapshot-update`` after looking at the
report.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.fixedfolder import fixed_folder
from tests.test_tui import NOW, Demo, build_demo, explorer, make_app, settle

SIZES = [(80, 24), (120, 40)]
SnapCompare = Callable[..., bool]


@pytest.fixture(scope="module")
def fixed_demo() -> Iterator[Demo]:
    with fixed_folder(Path(tempfile.gettempdir()) / "artlens-snapshot-demo") as base:
        yield build_demo(base)


async def show_runs(pilot: Pilot[Any]) -> None:
    await settle(pilot)


async def show_tree(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    screen = explorer(pilot.app)  # type: ignore[arg-type]
    run = next(r for r in screen.runs.values() if r.name == "experiments")
    screen.jump_to_run(run.id)
    await settle(pilot)
    await pilot.press("2")
    for name in ("untrusted", "quick-test"):
        screen.file_tree._typed = ""
        screen.file_tree.jump_to(name)
        await pilot.press("l")
        await settle(pilot)


async def show_preview(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    screen = explorer(pilot.app)  # type: ignore[arg-type]
    run = next(r for r in screen.runs.values() if r.name == "version_0")
    screen.jump_to_run(run.id)
    await settle(pilot)
    await pilot.press("2")
    screen.file_tree._typed = ""
    screen.file_tree.jump_to("metrics.csv")
    await settle(pilot)
    await pilot.press("3")
    await settle(pilot)


class TestPanes:
    @pytest.mark.parametrize("size", SIZES)
    def test_runs(self, fixed_demo: Demo, snap_compare: SnapCompare, size: tuple[int, int]) -> None:
        """The runs table sorted newest first, status line, empty tree and preview."""
        assert snap_compare(make_app(fixed_demo), terminal_size=size, run_before=show_runs)

    @pytest.mark.parametrize("size", SIZES)
    def test_tree(self, fixed_demo: Demo, snap_compare: SnapCompare, size: tuple[int, int]) -> None:
        """The experiments run with two folders open: red "!" on the unsafe models, hostile
        names shown as escapes and literal brackets."""
        assert snap_compare(make_app(fixed_demo), terminal_size=size, run_before=show_tree)

    @pytest.mark.parametrize("size", SIZES)
    def test_preview(
        self, fixed_demo: Demo, snap_compare: SnapCompare, size: tuple[int, int]
    ) -> None:
        """A metrics.csv as a table with its row count, preview pane focused."""
        assert snap_compare(make_app(fixed_demo), terminal_size=size, run_before=show_preview)


def test_clock_is_fixed() -> None:
    """The pictures depend on NOW; a change to it must be deliberate."""
    assert NOW == 1_780_000_000.0
