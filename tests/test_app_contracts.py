"""The app's contracts under ``App.run_test``: the palette keeps Textual's own commands,
``[keys]`` changes keys (help and palette follow; bad entries are one-line warnings),
the chosen theme is saved and restored, and index changes reach every screen."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from tests.test_tui import NOW, Demo, build_demo, explorer, settle, sync
from tests.test_tui_retention import EPOCH2, POLICY, item_key, retention, row_text
from tui.app import ArtlensApp
from tui.keys import TITLES, binding_entries, titled, titled_entries, with_keys
from tui.screens.help import HelpScreen
from tui.screens.retention_dialogs import ConfirmApply


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(tmp_path_factory.mktemp("contracts"))


async def until(pilot: Pilot[None], done: Callable[[], bool], seconds: float = 30.0) -> None:
    """Wait for a condition with a generous deadline (a loaded machine), never a guess."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.05)


def notices(app: ArtlensApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


@sync
async def test_palette_keeps_textuals_commands_and_quit_works(demo: Demo) -> None:
    app = ArtlensApp(demo.db_path, [demo.root], watch=False, clock=lambda: NOW)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Theme", "Quit", "Keys", "Screenshot"} <= titles
        assert App.COMMANDS <= ArtlensApp.COMMANDS
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Quit")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: not app.is_running)


@sync
async def test_keys_table_changes_keys_and_bad_entries_warn(demo: Demo, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        "[keys]\n"
        '"runs.filter" = "ctrl+f"\n'
        '"no.such.binding" = "x"\n'
        '"runs.sort" = "two words"\n'
        '"runs.mark" = 3\n'
    )
    app = ArtlensApp(demo.db_path, [demo.root], watch=False, clock=lambda: NOW, config=config)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await until(pilot, lambda: bool(app.keymap))
        assert app.keymap == {"runs.filter": "ctrl+f"}
        warned = [text for text in notices(app) if "[keys]" in text]
        assert len(warned) == 3 and all("\n" not in text for text in warned), warned
        assert any("no.such.binding" in text for text in warned)
        screen = explorer(app)
        helps = {title: text for title, _, text in with_keys(app, screen.palette_entries())}
        assert helps["filter: runs…"].endswith("key ctrl+f")
        await pilot.press("ctrl+f")
        await pilot.pause()
        assert isinstance(app.focused, Input)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        rows = {binding_id: key for key, _, binding_id in app.screen.rows}
        assert rows["runs.filter"] == "ctrl+f" and rows["runs.sort"] == "s"


@sync
async def test_theme_choice_is_saved_and_restored(demo: Demo, tmp_path: Path) -> None:
    settings = tmp_path / "ui.json"

    def make() -> ArtlensApp:
        return ArtlensApp(
            demo.db_path, [demo.root], watch=False, clock=lambda: NOW, settings=settings
        )

    app = make()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.theme == "textual-dark"
        app.theme = "nord"
        await until(pilot, lambda: settings.exists())
        await settle(pilot)
        assert json.loads(settings.read_text()) == {"theme": "nord"}
    again = make()
    async with again.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: again.theme == "nord")
    settings.write_text('{"theme": "no-such-theme"}')
    third = make()
    async with third.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: any("no-such-theme" in t for t in notices(third)))
        assert third.theme == "textual-dark"


@pytest.fixture
def lightning(lightning_index: tuple[Path, Path]) -> tuple[Path, Path]:
    (lightning_index[0] / ".artlens.toml").write_text(POLICY)
    return lightning_index


@sync
async def test_retention_view_replans_when_the_apps_watcher_records_an_apply(
    lightning: tuple[Path, Path],
) -> None:
    root, db_path = lightning
    app = ArtlensApp(db_path, [root], watch=True)
    said: list[str] = []  # every notice, also one that timed out before a loaded check ran
    notify = app.notify

    def keep(message: str, *args: Any, **kwargs: Any) -> None:
        said.append(str(message))
        notify(message, *args, **kwargs)

    app.notify = keep  # type: ignore[method-assign]
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await until(pilot, lambda: app.watcher is not None)
        await pilot.press("r")
        await settle(pilot)
        screen = retention(app)
        table = screen.query_one("#ret-plan", DataTable)
        key = item_key(root, EPOCH2)
        await until(pilot, lambda: key in table.rows and "remove" in row_text(table, key))
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmApply))
        await pilot.press("y")  # the app's watcher holds the lock: files move, it records
        await until(pilot, lambda: not (root / EPOCH2).exists())
        await until(pilot, lambda: any("watcher records" in t for t in said))
        # No timer: the change the watcher commits reaches this screen and it plans again.
        await until(pilot, lambda: key not in table.rows, seconds=60)
        # The new plan no longer has the trashed file (other items may be planned when a
        # slow run outlives the live protection of the run's newest checkpoints).
        assert screen.plan is not None
        assert EPOCH2 not in {item.path for item in screen.plan.removals}


@sync
async def test_every_screen_binding_is_in_the_palette_with_its_key(demo: Demo) -> None:
    app = ArtlensApp(demo.db_path, [demo.root], watch=False, clock=lambda: NOW)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        listed = screen.palette_entries()
        extra = {title: text for title, _, text in binding_entries(app, screen, listed)}
        assert extra["runs: sort by the next column"] == "Sort · key s"
        assert "pane: maximize or restore the pane" not in extra  # "view: zoom pane" runs it
        assert not {title for title, _, _ in listed} & set(extra)
        before = screen.sort_column
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"sort by the next column")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: screen.sort_column != before)


class Counter(Static):
    """A pane of a test: one titled binding, declared nowhere else."""

    BINDINGS: ClassVar[list[BindingType]] = [
        titled(Binding("x", "bump(2)", "Bump", id="test.bump"), "test: bump by two", "Adds 2")
    ]
    can_focus = True
    count = 0

    def action_bump(self, step: int) -> None:
        self.count += step


class CounterApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Counter()


@sync
async def test_a_titled_binding_is_a_palette_entry_with_its_key() -> None:
    app = CounterApp()
    async with app.run_test() as pilot:
        counter = app.query_one(Counter)
        counter.focus()
        [(title, callback, text)] = with_keys(app, titled_entries([counter]))
        assert (title, text) == ("test: bump by two", "Adds 2 · key x")
        callback()
        assert counter.count == 2
        await pilot.press("x")
        assert counter.count == 4


@sync
async def test_every_titled_explorer_binding_is_in_its_palette(demo: Demo) -> None:
    app = ArtlensApp(demo.db_path, [demo.root], watch=False, clock=lambda: NOW)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        titles = [title for title, _, _ in screen.palette_entries()]
        declared = {TITLES[b.id][0] for _, b in screen._bindings if b.id in TITLES}
        assert len(declared) >= 15 and declared <= set(titles)
        assert len(titles) == len(set(titles))
        assert {"view: help", "view: toggle theme", "files: mark / unmark"} <= set(titles)
