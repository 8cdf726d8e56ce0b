"""Help (``?``) at 80x24 and 60x20: its text reflows to the width it has, and a key's
description wraps in its own column."""

from __future__ import annotations

import itertools

import pytest
from textual.widgets import Static

from tests.test_hostile_ui import screen_lines
from tests.test_tui import Demo, build_demo, make_app, settle, sync
from tui.screens.help import HelpScreen

SMALL = [(80, 24), (60, 20)]
PARAGRAPHS = ("Panes: Runs", "In the file tree", "Metrics view (m,", "Change a key")
"""How each paragraph of help's introduction starts."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(tmp_path_factory.mktemp("small"))


def region_lines(app: object, x: int, y: int, width: int, height: int) -> list[str]:
    """The text drawn in a region of the screen, line by line, right spaces stripped."""
    return [line[x : x + width].rstrip() for line in screen_lines(app)[y : y + height]]


@pytest.mark.parametrize("size", SMALL)
@sync
async def test_help_paragraphs_reflow_to_the_width(demo: Demo, size: tuple[int, int]) -> None:
    """A line of the intro ends only where the next word would not fit: the intro was
    broken by hand at 100 columns and broke again mid-sentence in a narrower box."""
    app = make_app(demo)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        box = help_screen.body.content_region
        width = help_screen.body.query(Static).first().content_region.width
        lines = region_lines(app, box.x, box.y, width, box.height)
        first_key = next((i for i, line in enumerate(lines) if line.startswith("ctrl+q")), 0)
        intro = lines[2:first_key]  # after the title and its blank line
        assert intro and " ".join(intro).startswith("Panes: Runs (top)"), lines
        for line, after in itertools.pairwise(intro):
            if line and after and not after.startswith(PARAGRAPHS):
                next_word = after.split()[0]
                assert len(line) + 1 + len(next_word) > width, (line, after, width)


@sync
async def test_help_wraps_a_long_description_under_itself(demo: Demo) -> None:
    """A description too long for the line continues in its own column, not back under the
    keys, so the key column stays readable at 60 columns."""
    long = "Plot the metric under the cursor beside the ones already shown (up to three)"
    app = make_app(demo)
    async with app.run_test(size=(60, 40)) as pilot:  # tall enough to show the rows
        await settle(pilot)
        await app.push_screen(HelpScreen([("x", long, "metrics.plot"), ("ctrl+y", "Yank", "")]))
        await settle(pilot)
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        box = help_screen.body.content_region
        width = help_screen.body.query(Static).first().content_region.width
        lines = region_lines(app, box.x, box.y, width, box.height)
        start = next((i for i, line in enumerate(lines) if line.startswith("x ")), 0)
        end = next((i for i, line in enumerate(lines) if line.startswith("ctrl+y")), 0)
        assert end - start > 1, lines  # it did wrap
        column = lines[start].index("Plot")
        for line in lines[start + 1 : end]:
            assert line[:column].strip() == "" and line[column] != " ", lines
        said = " ".join(line[column:] for line in lines[start:end]).split()
        assert said == f"{long} metrics.plot".split(), lines
