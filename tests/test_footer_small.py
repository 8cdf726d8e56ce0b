"""The footer at 80x24 and 60x20: each key it shows is drawn whole, none under the palette
key; help's key is kept while it fits."""

from __future__ import annotations

import pytest
from textual.widget import Widget
from textual.widgets import Footer

from tests.test_hostile_ui import screen_lines
from tests.test_tui import Demo, build_demo, make_app, settle, sync

SIZES = [(80, 24), (60, 20), (48, 16)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(tmp_path_factory.mktemp("footer"))


def check_footer(app: object, where: str) -> list[str]:
    """The descriptions of the keys the footer shows, after checking each is whole."""
    screen = app.screen  # type: ignore[attr-defined]
    footer = screen.query_one(Footer)
    line = screen_lines(app)[footer.region.y]
    palette = footer.query(".-command-palette")
    keys: list[Widget] = [key for key in footer.query("FooterKey") if key not in palette]
    right = min((key.region.x for key in palette), default=footer.region.right)
    shown = []
    for key in keys:
        if not key.display:
            continue
        region = key.region
        assert region.width > 0 and region.right <= right, (where, line, region, right)
        description = str(getattr(key, "description", ""))
        assert description in line[region.x : region.right], (where, line, description)
        shown.append(description)
    for key in palette:
        # nothing of a key left of it shows past its end
        assert not line[key.region.right :].strip(), (where, line)
    return shown


@pytest.mark.parametrize("size", SIZES)
@sync
async def test_footer_keys_are_whole_on_every_screen(demo: Demo, size: tuple[int, int]) -> None:
    app = make_app(demo)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        for pane in ("1", "2", "3"):
            await pilot.press(pane)
            await settle(pilot)
            shown = check_footer(app, f"explorer pane {pane}")
            assert "Help" in shown, shown
        for key in ("m", "r"):
            await pilot.press("1", key)
            await settle(pilot)
            check_footer(app, key)
            await pilot.press("escape")
            await settle(pilot)


@sync
async def test_keys_left_out_come_back_when_the_terminal_widens(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot)
        narrow = check_footer(app, "60 columns")
        assert "Diff" not in narrow and "Help" in narrow, narrow
        await pilot.resize_terminal(100, 30)
        await settle(pilot)
        wide = check_footer(app, "100 columns")
        assert {"Diff", "Retention", "Help"} <= set(wide), wide
        assert wide.index("Diff") < wide.index("Help")  # in the bindings' order again
