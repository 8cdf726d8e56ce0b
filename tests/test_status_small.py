"""The status line at 80x24 and 60x20: what does not fit is cut with an ellipsis on its one
line, never wrapped onto a second line out of sight (the watcher's state went unsaid)."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from tests.test_hostile_ui import screen_lines
from tests.test_tui import Demo, build_demo, explorer, make_app, settle, sync
from tui.screens.metrics import MetricsScreen
from tui.widgets.status import StatusLine


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(tmp_path_factory.mktemp("status"))


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
@sync
async def test_a_status_line_too_long_is_cut_with_an_ellipsis(
    demo: Demo, size: tuple[int, int]
) -> None:
    app = make_app(demo)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("space")  # a mark: the line says more
        await settle(pilot)
        status = explorer(app).query_one(StatusLine)
        said = status.render_info().plain
        box = status.content_region
        assert len(said) > box.width  # the index path alone does not fit
        line = screen_lines(app)[box.y][box.x : box.right].rstrip()
        assert line.endswith("…"), line
        assert said.startswith(line[:-1]), (line, said)
        assert "1 marked" in line, line


@sync
async def test_the_metrics_title_too_long_is_cut_with_an_ellipsis(demo: Demo) -> None:
    """Its run names went onto a second line of a one-line title, with no sign of them."""
    app = make_app(demo)
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot)
        await pilot.press("space", *["j", "space"] * 4, "m")  # five runs
        await settle(pilot)
        assert isinstance(app.screen, MetricsScreen)
        title = app.screen.query_one("#metrics-title", Static)
        said = app.screen._title().plain
        box = title.content_region
        assert len(said) > box.width, said
        line = screen_lines(app)[box.y][box.x : box.right].rstrip()
        assert line.endswith("…") and said.startswith(line[:-1]), (line, said)
