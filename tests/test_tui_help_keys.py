"""Help (``?``) says what each key does where it is pressed: a key two places bind is
listed with the binding Textual runs for it, never with one it shadows."""

from __future__ import annotations

from pathlib import Path

from tests.test_tui import settle, sync
from tui.app import ArtlensApp
from tui.keys import HelpRow, help_rows
from tui.screens.explorer import ExplorerScreen
from tui.screens.help import HelpScreen
from tui.screens.metrics import MetricsScreen
from tui.screens.retention import RetentionScreen


def keys_of(rows: list[HelpRow]) -> dict[str, set[str]]:
    """Binding id -> the keys help lists for it."""
    listed: dict[str, set[str]] = {}
    for keys, _, binding_id in rows:
        listed.setdefault(binding_id, set()).update(keys.split(","))
    return listed


def said_for(rows: list[HelpRow], key: str) -> list[str]:
    """The ids of every row that lists ``key``."""
    return [binding_id for keys, _, binding_id in rows if key in keys.split(",")]


@sync
async def test_help_on_the_metrics_view_says_q_goes_back_as_it_does(
    lightning_index: tuple[Path, Path],
) -> None:
    """The metrics view binds ``q`` to go back; help listed the app's "q Quit" as well
    (first), which ``q`` never does there."""
    root, db_path = lightning_index
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        assert isinstance(app.screen, MetricsScreen)
        await pilot.press("question_mark")
        await settle(pilot)
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        assert said_for(help_screen.rows, "q") == ["metrics.close"], help_screen.rows
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MetricsScreen)
        await pilot.press("q")  # as help says: back, not quit
        await settle(pilot)
        assert isinstance(app.screen, ExplorerScreen) and app.is_running

        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, RetentionScreen)
        rows = help_rows(app, app.screen)
        assert said_for(rows, "?") == ["retention.help"], rows
        assert said_for(rows, "q") == ["app.quit"], rows  # nothing nearer binds q here


@sync
async def test_help_names_the_binding_of_the_focused_pane_for_a_shared_key(
    lightning_index: tuple[Path, Path],
) -> None:
    """``space`` marks the run in the runs pane and the file in the files pane: help
    says which, for the pane that has the focus."""
    root, db_path = lightning_index
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        rows = help_rows(app, app.screen)
        # the files pane's own space is listed under its id (it marks there once focused)
        assert said_for(rows, "space") == ["runs.mark", "tree.mark"], rows
        await pilot.press("2")  # the files pane
        await settle(pilot)
        rows = help_rows(app, app.screen)
        assert said_for(rows, "space") == ["tree.mark"], rows
        assert "space" not in keys_of(rows).get("runs.mark", set())
