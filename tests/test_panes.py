"""The explorer's panes stand alone: mounted in a bare app over a real index, a pane reads
what it shows in its own workers, follows a delta of the change feed it is handed, and says
what it shows by message, with no explorer screen around it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widget import Widget

from store import paths
from store.index import query
from store.index.views import ReaderPool
from tests.test_tui import NOW, Demo, build_demo, sync
from tui.hosts import Hosts
from tui.messages import IndexChanged
from tui.panes.files import FilesPane
from tui.panes.runs import RunsPane


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(tmp_path_factory.mktemp("panes"))


@pytest.fixture
def pool(demo: Demo) -> Iterator[ReaderPool]:
    readers = ReaderPool(demo.db_path)
    yield readers
    readers.close()


class PaneApp(App[None]):
    """One pane and nothing else; keeps what the pane tells its parents."""

    def __init__(self, pane: Widget) -> None:
        super().__init__()
        self.pane = pane
        self.shown: list[RunsPane.Shown] = []

    def compose(self) -> ComposeResult:
        yield self.pane

    def on_runs_pane_shown(self, message: RunsPane.Shown) -> None:
        self.shown.append(message)


async def until(pilot: Pilot[None], done: Callable[[], bool], what: str) -> None:
    """Wait for a condition with a generous deadline (a loaded machine), never a guess."""
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, f"not in time: {what}"
        await pilot.pause(0.02)


def local_runs(demo: Demo) -> list[query.RunRow]:
    pool = ReaderPool(demo.db_path)
    try:
        with pool.connection() as db:
            return query.list_runs(db)
    finally:
        pool.close()


@sync
async def test_the_runs_pane_loads_filters_and_follows_a_delta_alone(
    demo: Demo, pool: ReaderPool
) -> None:
    runs = local_runs(demo)
    pane = RunsPane(pool, clock=lambda: NOW, hosts=Hosts([]))
    app = PaneApp(pane)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: pane.table.row_count == len(runs), "every run in the table")
        await until(pilot, lambda: bool(app.shown), "what the table shows, told upwards")
        assert app.shown[-1].shown == len(runs) and app.shown[-1].nothing is None
        await until(pilot, lambda: len(pane.checklists) == len(runs), "the checklists")
        pane.set_filter("no-such-run-anywhere")
        await until(pilot, lambda: app.shown[-1].filter != "", "the filter told upwards")
        told = app.shown[-1]
        assert told.shown == 0 and told.follow and pane.table.row_count == 0
        assert told.nothing is not None and told.nothing.startswith("no runs match")
        pane.set_filter("")
        await until(pilot, lambda: pane.table.row_count == len(runs), "the filter cleared")
        first = runs[0]
        pane.table.move_cursor(row=pane.table.get_row_index(str(first.id)))
        pane.toggle_mark()
        assert pane.marked == {first.id}
        stale = IndexChanged((), (first.id,), frozenset(), None, pane.last_event)
        assert pane.index_changed(stale) is None  # old news: nothing changes
        assert first.id in pane.runs
        gone = IndexChanged((), (first.id,), frozenset(), None, pane.last_event + 1)
        assert pane.index_changed(gone) == (set(), {first.id})
        assert first.id not in pane.runs and not pane.marked
        assert str(first.id) not in pane.table.rows


@sync
async def test_the_files_pane_shows_a_run_and_its_pins_alone(demo: Demo, pool: ReaderPool) -> None:
    run = local_runs(demo)[0]
    pane = FilesPane(pool, hosts=Hosts([]), clock=lambda: NOW, id="tree")
    app = PaneApp(pane)
    async with app.run_test(size=(120, 30)) as pilot:
        pane.show(run, None)
        await until(pilot, lambda: bool(pane.root.children), "the run's first page")
        assert str(pane.root.label).startswith(run.name)
        child = next(c for c in pane.root.children if c.data and c.data.entry)
        assert child.data is not None
        pinned = (run.root, paths.unkey(child.data.key))
        pane.show_pins(frozenset({pinned}), run.root)
        assert child.data.key in pane.pinned
        assert str(child.label).startswith("◆ ")
        pane.show_pins(frozenset({pinned}), b"/some/other/root")
        assert not pane.pinned
