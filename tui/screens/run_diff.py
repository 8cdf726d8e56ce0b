"""The run diff screen: params, configs, metrics, environment and artifacts of two runs.

The comparison runs in a thread worker on a pooled read connection (it reads each run's
environment files from disk); the rows come back in one message.  ``enter`` on a changed
artifact opens the file diff of its two versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from store import paths
from store.diff import RunDiff
from store.index.query import RunRow
from store.index.views import ReaderPool

if TYPE_CHECKING:
    from store.root.objstore import ObjectRoot
from store.rundiff import VERDICT_LINES, artifact_key, diff_run_rows, run_verdict
from tui.commands import PaletteEntry
from tui.diff_render import (
    RUN_COLUMNS,
    RUN_SECTIONS,
    RunDiffRow,
    clean,
    run_rows,
    section_titles,
)
from tui.format import fit_apart, keep_end
from tui.hosts import MirroredRun, RemoteFile
from tui.screens.file_diff import FileDiffScreen
from tui.widgets.footer import FittingFooter
from tui.workers import SaysWorkerFailures

SECTIONS = RUN_SECTIONS
BLANK = (Text(""), Text(""), Text(""))
NAME_WIDTH = 32
"""Widest the name column gets: params, metrics and paths beyond it are cut with "…"."""
STACK_BELOW = 100
"""Narrower than this, A and B are stacked in one column (80 columns fit)."""


STACKED_VALUE_WIDTH = 18
"""Cells of a value in the stacked A / B column, after its ``A `` or ``B ``."""


def _fit_pair(old: Text, new: Text, width: int) -> tuple[Text, Text]:
    """Two different values cut to ``width`` so that they still read differently
    (``fit_apart``): two logging dirs cut at their end both read ``hf/bert-tiny-sst2…``
    on a row that says they changed."""
    if old.plain == new.plain or max(old.cell_len, new.cell_len) <= width:
        return old, new
    cut_old, cut_new = fit_apart([old.plain, new.plain], width)
    return Text(cut_old, style=old.style), Text(cut_new, style=new.style)


def _on_two_lines(change: Text) -> Text:
    """A change note's parts (``+0.36 (+81.7%)``, ``A better``) one per line, as the
    stacked layout's narrow column shows them: wrapped, the verdict was cut to ``A``."""
    if "  " not in change.plain:
        return change
    parts = change.split("  ", allow_blank=False)
    joined = Text("\n").join(part for part in parts)
    joined.no_wrap, joined.overflow = True, "ellipsis"
    return joined


def cut_keeping_end(text: Text, width: int) -> Text:
    """``text`` cut to ``width`` cells from the left, its style kept (see ``keep_end``)."""
    if text.cell_len <= width:
        return text
    cut = Text(keep_end(text.plain, width), style=text.style, no_wrap=True)
    return cut


def _bucket_side(run: RunRow) -> tuple[ObjectRoot, str] | None:
    """A bucket's run as ``(its root, its prefix)``: a run diff of two such runs lists and
    reads them as ``artlens diff URL URL`` does (ETags that are MD5s stand for hashes)."""
    import os

    from store.root import is_url, open_root
    from store.root.objstore import ObjectRoot

    url = os.fsdecode(run.root)
    if not is_url(url):
        return None
    root = open_root(url)
    return (root, paths.unkey(run.path)) if isinstance(root, ObjectRoot) else None


@dataclass
class RunDiffReady(Message):
    result: RunDiff
    rows: tuple[RunDiffRow, ...]
    warnings: tuple[str, ...]


def compact_counts(result: RunDiff) -> str:
    """Artifact counts short enough for one table cell: ``+1 -0 ~3 →0 =40``."""
    art = result.artifacts
    text = (
        f"+{len(art.added)} -{len(art.removed)} ~{len(art.changed)} →{len(art.moved)}"
        f" ={len(art.unchanged)}"
    )
    return text + (f" ?{len(art.unverified)} unhashed" if art.unverified else "")


class RunDiffScreen(SaysWorkerFailures, Screen[None]):
    """Run A (old) against run B (new)."""

    CSS_PATH = "diff.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="rundiff.back", tooltip="Return to the runs"),
        Binding("p", "section('params')", "Params", id="rundiff.params"),
        Binding("c", "section('configs')", "Configs", id="rundiff.configs"),
        Binding("m", "section('metrics')", "Metrics", id="rundiff.metrics"),
        Binding("e", "section('env')", "Env", id="rundiff.env"),
        Binding("a", "section('artifacts')", "Artifacts", id="rundiff.artifacts"),
        Binding("j", "cursor('down')", "Down", show=False, id="rundiff.down"),
        Binding("k", "cursor('up')", "Up", show=False, id="rundiff.up"),
    ]

    def __init__(
        self,
        pool: ReaderPool,
        run_a: RunRow,
        run_b: RunRow,
        mirrored: tuple[MirroredRun | None, MirroredRun | None] = (None, None),
    ) -> None:
        super().__init__()
        self.pool = pool
        self.run_a = run_a
        self.run_b = run_b
        self.mirrored = mirrored
        """Sides that are a remote's runs: read from its mirror, files over its transport."""
        self.result: RunDiff | None = None
        self.rows: dict[str, RunDiffRow] = {}
        self._ready: RunDiffReady | None = None
        self._stacked = False

    def compose(self) -> ComposeResult:
        yield Static(self._title(None), id="run-diff-title", markup=False)
        table: DataTable[Text] = DataTable(
            id="run-diff-table", cursor_type="row", zebra_stripes=False
        )
        yield table
        yield FittingFooter()

    def on_mount(self) -> None:
        self.table.focus()
        self._compute(self.run_a, self.run_b)

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#run-diff-table", DataTable)

    def _title_width(self) -> int:
        try:
            return self.query_one("#run-diff-title", Static).content_size.width
        except NoMatches:  # composing: the title is made before it is mounted
            return 0

    def _title(self, result: RunDiff | None) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        # The line is cut at the screen's edge: two long names must not be cut alike.
        # "A " before the name, and room for the ellipsis that cuts what follows it
        width = max(20, (self._title_width() or 80) - 3)
        names = fit_apart([clean(self.run_a.name), clean(self.run_b.name)], width)
        for mark, style, run, side, name in (
            ("A ", "bold red", self.run_a, self.mirrored[0], names[0]),
            ("\nB ", "bold green", self.run_b, self.mirrored[1], names[1]),
        ):
            text.append(mark, style=style)
            text.append(name, style="bold")
            where = f"{side.remote.name}:" if side is not None else ""
            number = side.run.id if side is not None else run.id
            text.append(f"  {where}#{number} · {run.framework} · {run.display_path}", style="dim")
        if result is None:
            text.append("\ncomparing…", style="italic dim")
        else:
            text.append(f"\n{VERDICT_LINES[run_verdict(result)]}", style="bold")
            text.append("  (enter on a changed file opens its diff)", style="dim")
        return text

    @work(thread=True, exclusive=True, group="run-diff", exit_on_error=False)
    def _compute(self, run_a: RunRow, run_b: RunRow) -> None:
        warnings: list[str] = []
        buckets = (_bucket_side(run_a), _bucket_side(run_b))
        if any(self.mirrored):
            result = self._compute_across_hosts(run_a, run_b, warnings)
        elif buckets[0] is not None and buckets[1] is not None:
            from store.objrundiff import diff_bucket_runs

            _, _, result = diff_bucket_runs(buckets[0], buckets[1], warnings)
        else:
            with self.pool.connection() as db:
                result = diff_run_rows(db, run_a, run_b, warnings)
        if not get_current_worker().is_cancelled:  # a newer pair or read was asked for
            self.post_message(RunDiffReady(result, tuple(run_rows(result)), tuple(warnings)))

    def _compute_across_hosts(self, run_a: RunRow, run_b: RunRow, warnings: list[str]) -> RunDiff:
        """``store.rundiff.diff_sides``: each side from its own index, read by its reader."""
        from contextlib import ExitStack

        from store.remote.fetch import reader
        from store.rundiff import diff_sides

        with ExitStack() as stack:
            dbs, runs, readers = [], [], []
            for side, run in zip(self.mirrored, (run_a, run_b), strict=True):
                pool = side.pool if side is not None else self.pool
                dbs.append(stack.enter_context(pool.connection()))
                runs.append(side.run if side is not None else run)
                readers.append(reader(side.remote) if side is not None else None)
            return diff_sides(dbs[0], runs[0], dbs[1], runs[1], warnings, readers[0], readers[1])

    def on_run_diff_ready(self, message: RunDiffReady) -> None:
        self.result = message.result
        self._ready = message
        self.query_one("#run-diff-title", Static).update(self._title(message.result))
        self._fill(message)
        self.action_section("params")

    def on_resize(self) -> None:
        ready = self._ready
        if ready is not None and (self.size.width < STACK_BELOW) != self._stacked:
            self._fill(ready)

    def _fill(self, message: RunDiffReady) -> None:
        """The table; below ``STACK_BELOW`` columns A and B share a column, one above the
        other, so every value fits at 80 columns.  Names are cut keeping their end: the
        epoch, step and extension are what tell checkpoints apart."""
        self._stacked = self.size.width < STACK_BELOW
        titles = section_titles(message.result)
        table = self.table
        widest = max((row.cells[1].cell_len for row in message.rows), default=8)
        if self._stacked:
            # what (10) + name + A/B (20) + change (16), each with 2 cells of padding, and
            # the border and scrollbar: the name gets what is left.
            name_width = max(12, min(widest, self.size.width - 10 - 20 - 16 - 8 - 4))
            columns: tuple[str, ...] = ("", "name", "A / B", "change")
        else:
            name_width = min(max(widest, 8), NAME_WIDTH)
            columns = RUN_COLUMNS
        cursor = table.cursor_row
        with self.app.batch_update():
            table.clear(columns=True)
            for column in columns:
                width = name_width if column == "name" else None
                if self._stacked and column in ("", "A / B", "change"):
                    width = {"": 10, "A / B": STACKED_VALUE_WIDTH + 2, "change": 16}[column]
                table.add_column(column or " ", key=column or "what", width=width)
            self.rows = {}
            for section in SECTIONS:
                name, _, counts = titles[section].partition(": ")
                if self._stacked and section == "env":
                    name = "env"  # "environment" was cut to "environmen" in 10 cells
                heading = Text(f"▸ {name}", style="bold underline")
                if section == "artifacts":
                    counts = compact_counts(message.result)
                summary = Text(counts, style="bold")
                blank = BLANK[: len(columns) - 2]
                # at 80 columns "1 file(s) changed, 1 value(s)" lost its end: wrapped
                lines = len(summary.wrap(self.app.console, name_width))
                table.add_row(
                    heading, summary, *blank, key=f"section:{section}", height=min(3, lines)
                )
                for row in message.rows:
                    if row.section == section:
                        self.rows[row.key] = row
                        what, label, old, new, change = row.cells
                        label = cut_keeping_end(label, name_width)
                        if self._stacked:
                            old, new = _fit_pair(old, new, STACKED_VALUE_WIDTH)
                            both = Text.assemble(("A ", "dim"), old, "\n", ("B ", "dim"), new)
                            both.no_wrap, both.overflow = True, "ellipsis"
                            change = _on_two_lines(change)
                            table.add_row(what, label, both, change, key=row.key, height=2)
                        else:
                            table.add_row(what, label, old, new, change, key=row.key)
            for index, warning in enumerate(message.warnings):
                note = Text(clean(warning), style="italic dim")
                blank = BLANK[: len(columns) - 2]
                table.add_row(Text("note", style="dim"), note, *blank, key=f"note:{index}")
        if cursor > 0:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    # -- actions -------------------------------------------------------------------------

    @on(DataTable.RowSelected, "#run-diff-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        self.open_row(str(event.row_key.value))

    def open_row(self, key: str) -> None:
        """Open the file diff of the artifact row ``key`` (if it has two files)."""
        row = self.rows.get(key)
        if row is None or row.files is None:
            if key.startswith(("added:", "removed:")):
                self.notify("that file exists in one run only", markup=False, timeout=3)
            return
        sources = self.result.sources if self.result is not None else ({}, {})
        run_a, run_b = (
            side.run if side is not None else run
            for side, run in zip(self.mirrored, (self.run_a, self.run_b), strict=True)
        )  # the runs the diff was made from: a mirror's run on its host
        key_a = artifact_key(run_a, sources[0], row.files[0])
        key_b = artifact_key(run_b, sources[1], row.files[1])
        full_a = run_a.root + b"/" + key_a
        full_b = run_b.root + b"/" + key_b
        label_a = f"{self.run_a.name}: {paths.display(row.files[0])}"
        label_b = f"{self.run_b.name}: {paths.display(row.files[1])}"
        if any(self.mirrored):
            self._open_across_hosts((key_a, full_a, label_a), (key_b, full_b, label_b))
            return
        self.app.push_screen(FileDiffScreen(full_a, full_b, label_a=label_a, label_b=label_b))

    @work(thread=True, group="run-diff-open", exit_on_error=False)
    def _open_across_hosts(self, *files: tuple[bytes, bytes, str]) -> None:
        """The file diff of a changed file of runs on hosts: its sizes from each mirror."""
        from store.index.views import artifact_at

        remotes: list[RemoteFile | None] = []
        for side, (key, full, _label) in zip(self.mirrored, files, strict=True):
            if side is None:
                remotes.append(None)
                continue
            with side.pool.connection() as db:
                found = artifact_at(db, side.run.root_id, key)
            if found is None or found.ftype != "file":
                return
            remotes.append(RemoteFile(side.remote, full, found.size))
        screen = FileDiffScreen(
            files[0][1],
            files[1][1],
            label_a=files[0][2],
            label_b=files[1][2],
            remote_a=remotes[0],
            remote_b=remotes[1],
        )
        self.app.call_from_thread(self.app.push_screen, screen)

    def action_back(self) -> None:
        self.dismiss()

    def action_section(self, section: str) -> None:
        table = self.table
        key = f"section:{section}"
        if key in table.rows:
            index = table.get_row_index(key)
            table.move_cursor(row=min(index + 1, table.row_count - 1))
            table.scroll_to(y=index, animate=False)

    def action_cursor(self, direction: str) -> None:
        if direction == "down":
            self.table.action_cursor_down()
        else:
            self.table.action_cursor_up()

    def palette_entries(self) -> list[PaletteEntry]:
        entries: list[PaletteEntry] = [
            (f"diff: jump to {section}", partial(self.action_section, section), "")
            for section in SECTIONS
        ]
        entries.append(("diff: back", self.action_back, "Return to the runs"))
        for key, row in self.rows.items():
            if row.files is not None:
                entries.append(
                    (f"diff: file {row.cells[1].plain}", partial(self.open_row, key), "")
                )
        return entries
