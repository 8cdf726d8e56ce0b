"""The versions screen: one run-relative file across runs, and its overwritten hashes.

Oldest first, with each run's key metric, so "what changed since the last checkpoint"
reads down the table; ``space`` marks two versions and ``d`` diffs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from store import paths
from store.index.views import ReaderPool
from store.rundiff import Version, file_exists, versions
from tui.commands import PaletteEntry
from tui.diff_render import clean
from tui.format import human_size, metric_value, short_time
from tui.screens.file_diff import FileDiffScreen
from tui.widgets.footer import FittingFooter
from tui.workers import SaysWorkerFailures

COLUMNS = ("", "run", "modified", "size", "hash", "vs previous", "metric")


@dataclass
class VersionsReady(Message):
    token: int
    versions: tuple[Version, ...]


class VersionsScreen(SaysWorkerFailures, Screen[None]):
    """Every version of ``relpath`` (relative to a run folder), oldest first."""

    CSS_PATH = "diff.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="versions.back", tooltip="Return to the files"),
        Binding(
            "space", "mark", "Mark", id="versions.mark", tooltip="Mark a version (two to diff)"
        ),
        Binding("d", "diff", "Diff marked", id="versions.diff"),
        Binding(
            "a",
            "toggle_scope",
            "All runs",
            id="versions.scope",
            tooltip="Every run, or only this experiment's",
        ),
        Binding("j", "cursor('down')", "Down", show=False, id="versions.down"),
        Binding("k", "cursor('up')", "Up", show=False, id="versions.up"),
    ]

    def __init__(self, pool: ReaderPool, relpath: bytes, experiment: str | None = None) -> None:
        super().__init__()
        self.pool = pool
        self.relpath = relpath
        self.experiment = experiment
        self.scope_all = experiment is None
        self.versions: list[Version] = []
        self.marked: list[int] = []
        """Indices into ``versions`` in the order they were marked (at most two)."""
        self._token = 0

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="versions-title", markup=False)
        yield DataTable(id="versions-table", cursor_type="row")
        yield FittingFooter()

    def on_mount(self) -> None:
        table = self.table
        for column in COLUMNS:
            table.add_column(column or " ", key=column or "mark")
        table.focus()
        self._reload()

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#versions-table", DataTable)

    def _title(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("versions of ", style="dim")
        text.append(paths.display(self.relpath), style="bold")
        scope = "every run" if self.scope_all else f"experiment {clean(self.experiment or '')}"
        text.append(f"  ({scope}, oldest first)", style="dim")
        text.append("\nspace marks two versions, d diffs them; overwritten versions keep only "
                    "their hash", style="dim")  # fmt: skip
        return text

    def _reload(self) -> None:
        self._token += 1
        self._load(self._token, None if self.scope_all else self.experiment)

    @work(thread=True, exclusive=True, group="versions", exit_on_error=False)
    def _load(self, token: int, experiment: str | None) -> None:
        with self.pool.connection() as db:
            found = versions(db, self.relpath, experiment)
        self.post_message(VersionsReady(token, tuple(found)))

    def on_versions_ready(self, message: VersionsReady) -> None:
        if message.token != self._token:
            return
        self.versions = list(message.versions)
        self.marked = []
        self.query_one("#versions-title", Static).update(self._title())
        table = self.table
        with self.app.batch_update():
            table.clear()
            previous: dict[int, str | None] = {}
            last_hash: str | None = None
            for index, version in enumerate(self.versions):
                compare = previous.get(version.run_id, last_hash)
                if index == 0 or version.hash is None or compare is None:
                    versus = Text("")
                elif version.hash == compare:
                    versus = Text("same", style="dim")
                else:
                    versus = Text("changed", style="yellow")
                previous[version.run_id] = version.hash
                last_hash = version.hash
                table.add_row(*self._cells(index, version, versus), key=str(index))
        if not self.versions:
            self.notify("no run has this file", markup=False, timeout=3)

    def _cells(self, index: int, version: Version, versus: Text) -> tuple[Text, ...]:
        mark = Text("●" if index in self.marked else " ", style="bold")
        run = Text(clean(version.run_name), style="bold" if version.current else "dim")
        if not version.current:
            run.append(" (overwritten)", style="italic dim")
        digest = version.hash or version.hash_state
        metric = Text("")
        if version.metric is not None:
            metric = Text(f"{clean(version.metric[0])}={metric_value(version.metric[1])}")
        return (
            mark,
            run,
            Text(short_time(version.mtime)),
            Text(human_size(version.size)),
            Text(clean(digest)[:16], style="" if version.hash else "magenta"),
            versus,
            metric,
        )

    # -- actions -------------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss()

    def action_cursor(self, direction: str) -> None:
        if direction == "down":
            self.table.action_cursor_down()
        else:
            self.table.action_cursor_up()

    def action_mark(self) -> None:
        table = self.table
        if not self.versions or table.cursor_row < 0:
            return
        index = int(
            str(table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value)
        )
        if index in self.marked:
            self.marked.remove(index)
        else:
            self.marked.append(index)
            if len(self.marked) > 2:
                dropped = self.marked.pop(0)
                table.update_cell(str(dropped), "mark", Text(" "))
        table.update_cell(
            str(index), "mark", Text("●" if index in self.marked else " ", style="bold")
        )

    def action_diff(self) -> None:
        if len(self.marked) != 2:
            self.notify("mark two versions with space first", markup=False, timeout=3)
            return
        first, second = sorted(self.marked)
        old, new = self.versions[first], self.versions[second]
        if not (old.current and new.current):
            self.notify(
                "an overwritten version keeps only its hash: the bytes are gone",
                markup=False,
                timeout=4,
            )
            return
        for version in (old, new):
            if not file_exists(version.abs_path):
                self.notify(f"{version.display_path} is gone", markup=False, timeout=4)
                return
        self.app.push_screen(
            FileDiffScreen(
                old.abs_path,
                new.abs_path,
                label_a=f"{old.run_name}: {paths.display(self.relpath)}",
                label_b=f"{new.run_name}: {paths.display(self.relpath)}",
            )
        )

    def action_toggle_scope(self) -> None:
        if self.experiment is None:
            self.notify("this run has no experiment: every run is listed", markup=False)
            return
        self.scope_all = not self.scope_all
        self._reload()

    def palette_entries(self) -> list[PaletteEntry]:
        return [
            ("versions: mark / unmark", self.action_mark, "Mark the version under the cursor"),
            ("versions: diff marked", self.action_diff, "Diff the two marked versions"),
            ("versions: every run / this experiment", self.action_toggle_scope, ""),
            ("versions: back", self.action_back, ""),
            ("view: help", partial(self.app.action_help), "List every key"),  # type: ignore[attr-defined]
        ]
