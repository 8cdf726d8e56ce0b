"""A live change to one run costs that run's row, not the table's: through a real
``RunsTable`` of 5,000 runs in a real app, a one-row change re-renders that row only,
measures no other cell, and still shows its new text (no stale cached line)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import textual.widgets._data_table as data_table_module
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.render import measure
from textual.widgets.data_table import RowKey

from store.index.query import RunRow
from tui.format import human_size
from tui.widgets.runs_table import RunsTable

RUNS = 5_000
NOW = 1_800_000_000.0


def make_run(run_id: int) -> RunRow:
    return RunRow(
        id=run_id,
        root_id=1,
        root=b"/data/runs",
        path=f"version_{run_id}".encode(),
        name=f"version_{run_id}",
        framework="lightning",
        experiment=None,
        started=NOW - 7200,
        last_write=NOW - 3600,
        status="finished",
        metrics={"train_loss": {"last": 1.0 / run_id}},
        size_bytes=run_id * 1_000_003,  # up to "4.7 GB": most sizes are narrower
        n_artifacts=run_id % 97,
    )


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RunsTable(id="runs", clock=lambda: NOW)


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the table never got there"
        await pilot.pause(0.01)


def line_text(table: RunsTable, row_key: str) -> str:
    y = table.get_row_index(row_key) + table.header_height - round(table.scroll_y)
    return "".join(segment.text for segment in table.render_line(y))


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every cell the DataTable measures for its column widths."""
    seen: list[object] = []

    def counting(console: Any, renderable: Any, default: int, **kwargs: Any) -> int:
        seen.append(renderable)
        return measure(console, renderable, default, **kwargs)

    monkeypatch.setattr(data_table_module, "measure", counting)
    yield seen


def test_one_changed_run_rerenders_and_measures_only_its_row(measured: list[object]) -> None:
    async def scenario() -> None:
        app = TableApp()
        async with app.run_test(size=(140, 40)) as pilot:
            table = app.query_one(RunsTable)
            runs = {run_id: make_run(run_id) for run_id in range(1, RUNS + 1)}
            order = sorted(runs)
            table.sync(runs, order, set())
            table.flush()
            await until(pilot, lambda: table.row_count == RUNS and not table.filling)
            await pilot.pause()
            rendered: list[RowKey] = []
            real_render = table._render_line_in_row

            def counting_render(row_key: RowKey, *args: Any, **kwargs: Any) -> Any:
                rendered.append(row_key)
                return real_render(row_key, *args, **kwargs)

            table._render_line_in_row = counting_render  # type: ignore[method-assign]
            await pilot.pause()
            rendered.clear()
            measured.clear()

            changed = replace(runs[4], size_bytes=12, n_artifacts=3, status="live")
            table.sync({**runs, 4: changed}, order, set())
            await until(pilot, lambda: RowKey("4") in rendered)
            await pilot.pause()
            await pilot.pause()

            assert set(rendered) == {RowKey("4")}, f"{len(set(rendered))} rows re-rendered"
            assert len(measured) <= 16, f"{len(measured)} cells measured for one row's change"
            text = line_text(table, "4")
            assert human_size(12) in text and "● live" in text, text
            assert "● live" not in line_text(table, "5")

    asyncio.run(scenario())


def test_a_value_wider_than_its_column_widens_it() -> None:
    async def scenario() -> None:
        app = TableApp()
        async with app.run_test(size=(140, 40)) as pilot:
            table = app.query_one(RunsTable)
            runs = {run_id: make_run(run_id) for run_id in range(1, 31)}
            order = sorted(runs)
            table.sync(runs, order, set())
            await until(pilot, lambda: table.row_count == 30)
            column = table.columns[next(k for k in table.columns if k.value == "experiment")]
            before = column.content_width
            wide = replace(runs[2], experiment="a-much-longer-experiment-name")
            table.sync({**runs, 2: wide}, order, set())
            await until(pilot, lambda: column.content_width > before)
            await until(pilot, lambda: "a-much-longer-experiment-name" in line_text(table, "2"))
            assert table.get_row_index("2") == 1  # nothing moved

    asyncio.run(scenario())


def test_an_unchanged_run_still_shows_its_age_tick() -> None:
    """Skipping a run whose row is unchanged must not freeze its ages ("30s" -> "1m")."""
    clock = [NOW]

    class TickingApp(App[None]):
        def compose(self) -> ComposeResult:
            yield RunsTable(id="runs", clock=lambda: clock[0])

    async def scenario() -> None:
        app = TickingApp()
        async with app.run_test(size=(140, 20)) as pilot:
            table = app.query_one(RunsTable)
            runs = {1: replace(make_run(1), last_write=NOW - 30), 2: make_run(2)}
            table.sync(runs, [1, 2], set())
            await until(pilot, lambda: " 30s " in line_text(table, "1"))
            clock[0] = NOW + 10
            table.sync(runs, [1, 2], set())
            await until(pilot, lambda: " 40s " in line_text(table, "1"))
            clock[0] = NOW + 40
            table.sync(runs, [1, 2], set())
            await until(pilot, lambda: " 1m " in line_text(table, "1"))
            assert " 1h " in line_text(table, "2")

    asyncio.run(scenario())


def test_a_row_changed_off_screen_shows_its_new_text_when_scrolled_to() -> None:
    async def scenario() -> None:
        app = TableApp()
        async with app.run_test(size=(140, 20)) as pilot:
            table = app.query_one(RunsTable)
            runs = {run_id: make_run(run_id) for run_id in range(1, 201)}
            order = sorted(runs)
            table.sync(runs, order, set())
            table.flush()
            await until(pilot, lambda: table.row_count == 200)
            table.move_cursor(row=150)  # draw the far rows once, so their lines are cached
            await until(pilot, lambda: "version_151 " in line_text(table, "151"))
            table.move_cursor(row=0)
            await until(pilot, lambda: table.scroll_y == 0)
            table.sync({**runs, 151: replace(runs[151], status="failed")}, order, set())
            await pilot.pause()
            table.move_cursor(row=150)
            await until(pilot, lambda: table.scroll_y > 100)
            assert "failed" in line_text(table, "151")
            assert "failed" not in line_text(table, "150")

    asyncio.run(scenario())


class TwoTablesApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RunsTable(id="bulk", clock=lambda: NOW)
        yield RunsTable(id="one-by-one", clock=lambda: NOW)


def test_many_rows_removed_at_once_leave_what_removing_each_leaves() -> None:
    """A sync that drops most rows (a filter typed) removes them in one pass
    (``RunsTable._remove_rows``); the table must be left as DataTable's own ``remove_row``,
    one row at a time, leaves it: same rows, order, indexes, cursor and lines on screen."""

    async def scenario() -> None:
        app = TwoTablesApp()
        async with app.run_test(size=(140, 60)) as pilot:
            bulk = app.query_one("#bulk", RunsTable)
            single = app.query_one("#one-by-one", RunsTable)
            runs = {run_id: make_run(run_id) for run_id in range(1, 301)}
            order = sorted(runs)
            for table in (bulk, single):
                table.sync(runs, order, set())
                table.flush()
                table.move_cursor(row=20)
            await until(pilot, lambda: bulk.row_count == single.row_count == 300)
            kept = [run_id for run_id in order if run_id % 7 == 0 or run_id in (1, 300)]
            gone = [str(run_id) for run_id in order if run_id not in kept]
            bulk._remove_rows(gone)
            for key in gone:
                single.remove_row(key)
            await pilot.pause()
            await pilot.pause()
            for table in (bulk, single):
                assert [row.key.value for row in table.ordered_rows] == [str(i) for i in kept]
            assert {k.value: bulk.get_row_index(k) for k in bulk.rows} == {
                k.value: single.get_row_index(k) for k in single.rows
            }
            assert bulk.cursor_coordinate == single.cursor_coordinate
            assert bulk.current_run_id == single.current_run_id
            for run_id in kept:
                assert line_text(bulk, str(run_id)) == line_text(single, str(run_id))

            # through sync: the cursor's run stays under the cursor; then every row goes
            bulk.sync(runs, order, set())
            bulk.flush()
            await until(pilot, lambda: bulk.row_count == 300)
            bulk.move_cursor(row=bulk.get_row_index("201"))
            bulk.sync(runs, [i for i in order if i % 5 == 0 or i == 201], set())
            await pilot.pause()
            assert bulk.row_count == 61 and bulk.current_run_id == 201
            bulk.sync(runs, [], set())
            await pilot.pause()
            assert bulk.row_count == 0 and not list(bulk.ordered_rows)
            bulk.sync(runs, order[:5], set())
            await until(pilot, lambda: bulk.row_count == 5)
            assert "version_3" in line_text(bulk, "3")

    asyncio.run(scenario())
