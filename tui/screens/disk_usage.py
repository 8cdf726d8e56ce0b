"""Disk usage like ncdu: one level at a time (roots, experiments, runs, then folders and
files), largest first, with the apparent size and what it takes on disk.

Threading rule as in the explorer: listing a level (SQL), measuring it on disk (an lstat
per file) and trashing each run in a thread worker of their own group and post a message;
the handlers here own the state and the table.  Nothing is deleted here: ``d`` builds a
plan of one removal and goes through retention's confirm and ``service.apply``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState, get_current_worker

from store import paths
from store.errors import ArtlensError
from store.index.views import ReaderPool
from store.retention import service
from store.retention.drill import (
    Entry,
    Level,
    RemovalRefused,
    fill_disk,
    list_level,
    measure_folder,
    measure_root,
    note_unread,
    pins_of,
    plan_removal,
    run_experiments,
)
from store.retention.plan import Plan
from store.retention.trash import Report
from tui.commands import PaletteEntry
from tui.format import fit_apart, human_size, keep_end
from tui.screens.retention_dialogs import ConfirmApply
from tui.widgets.clamped import ClampedStatic
from tui.widgets.footer import FittingFooter
from tui.workers import SaysWorkerFailures

NAME_WIDTH = 60
"""Cells a name keeps (its end: the step and the extension tell files apart)."""
FOLLOW_UP_SECONDS = (1.5, 5.0)
"""When the watcher records a trash, list the level again after these delays."""
ROOTS = Level("roots")
UNREAD_MARK = "?"
"""After a total that leaves out what the scans could not read (the note says what)."""
UNREAD_STYLE = "bold yellow"


@dataclass
class LevelListed(Message):
    """A level's entries with apparent sizes (replaces an older listing)."""

    level: Level
    entries: list[Entry]
    unread: str = ""
    """What the level's total leaves out (``note_unread``); '' when nothing."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LevelListed)


@dataclass
class LevelMeasured(Message):
    """The same entries with their on-disk sizes."""

    level: Level
    entries: list[Entry]
    per_root: dict[str, Any] = field(default_factory=dict)
    """What was measured per root (kept so going up a level measures nothing again)."""


@dataclass
class RemovalPlanned(Message):
    plan: Plan | None
    refused: str = ""


@dataclass
class RemovalDone(Message):
    report: Report
    index_updated: bool
    error: str = ""


class DiskUsageScreen(SaysWorkerFailures, Screen[None]):
    """Where the bytes are, drilled into level by level; ``d`` trashes through a plan."""

    CSS_PATH = "disk_usage.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="usage.back", tooltip="Up a level, or close"),
        Binding("enter,l", "enter", "Open", id="usage.enter", tooltip="Into the entry"),
        Binding("h,backspace", "up", "Up", id="usage.up", tooltip="Up a level"),
        Binding("j", "cursor(1)", "Down", show=False, id="usage.down"),
        Binding("k", "cursor(-1)", "Up", show=False, id="usage.cursor_up"),
        Binding("g", "edge(False)", "Top", show=False, id="usage.top"),
        Binding("G", "edge(True)", "Bottom", show=False, id="usage.bottom"),
        Binding("a", "sort_disk", "On disk", id="usage.sort", tooltip="Sort by on-disk size"),
        Binding("d", "trash", "Trash", id="usage.trash", tooltip="Move to the trash (confirm)"),
        Binding("ctrl+r", "refresh", "Refresh", show=False, id="usage.refresh"),
        Binding("question_mark", "help", "Help", show=False, id="usage.help"),
    ]

    def __init__(self, db_path: Path, pool: ReaderPool, start: Level | None = None) -> None:
        super().__init__()
        self.db_path = db_path
        self.pool = pool
        self.level = start or ROOTS
        self.entries: list[Entry] = []
        self.by_disk = False
        self.busy = False
        self._per_root: dict[str, Any] = {}
        self._came_from: list[tuple[Level, str]] = []
        """(level, label of the entry entered): going up puts the cursor back on it."""
        self._cursor_label: str | None = None
        self.measured = False
        """The on-disk sizes of the entries shown were measured (None then means too many
        files to measure, shown as "-"; before, as "…")."""
        self.unread = ""
        """What the level's total leaves out, as the note under the totals says it."""

    def compose(self) -> ComposeResult:
        # a few lines each: what does not fit ends in "…" (the warning's tooltip says it whole)
        yield ClampedStatic(id="du-where", markup=False)
        yield ClampedStatic(id="du-unread", markup=False)
        yield DataTable(id="du-table", cursor_type="row", zebra_stripes=False)
        yield FittingFooter()

    def on_mount(self) -> None:
        table = self.query_one("#du-table", DataTable)
        for label, column_key, width in (
            ("size", "size", 8),
            ("on disk", "disk", 8),
            ("", "bar", 10),
            ("files", "files", 7),
            ("name", "name", None),
        ):
            table.add_column(label, key=column_key, width=width)
        table.focus()
        self.action_refresh()

    # -- workers ---------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self._per_root = {}
        self._show(self.level)

    def _show(self, level: Level) -> None:
        self.level = level
        self._list_worker(level)

    @work(thread=True, exclusive=True, group="usage-list", exit_on_error=False)
    def _list_worker(self, level: Level) -> None:
        with self.pool.connection() as db:
            if level == ROOTS:
                entries = list_level(db, level)
                if len(entries) == 1 and entries[0].target is not None:
                    level = entries[0].target  # one root: start inside it, like ncdu
                    entries = list_level(db, level)
            else:
                entries = list_level(db, level)
            unread = note_unread(db, level, entries)
        if not get_current_worker().is_cancelled:  # the user moved on: never show this level
            self.post_message(LevelListed(level, entries, unread))

    @work(thread=True, exclusive=True, group="usage-measure", exit_on_error=False)
    def _measure_worker(self, level: Level, entries: list[Entry], known: dict[str, Any]) -> None:
        per_root = dict(known)
        with self.pool.connection() as db:
            if level.kind == "folder":
                fill_disk(entries, level, per_root={}, per_name=measure_folder(db, level))
            else:
                experiments: dict[int, str | None] = {}
                for root in {e.root for e in entries if e.root}:
                    if root not in per_root:
                        per_root[root] = measure_root(db, root)
                    if level.kind == "root":
                        experiments.update(run_experiments(db, root))
                fill_disk(entries, level, per_root=per_root, experiments=experiments)
        self.post_message(LevelMeasured(level, entries, per_root))

    @work(thread=True, exclusive=True, group="usage-plan", exit_on_error=False)
    def _plan_worker(self, entry: Entry) -> None:
        from store.userstate import UserState

        try:
            with self.pool.connection() as db, UserState() as state:
                plan = plan_removal(db, entry.root, entry.rel or "", pins_of(entry.root, state))
        except RemovalRefused as exc:
            self.post_message(RemovalPlanned(None, str(exc)))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(RemovalPlanned(plan))

    @work(thread=True, exclusive=True, group="usage-apply", exit_on_error=False)
    def _apply_worker(self, plan: Plan) -> None:
        """Through ``service.apply``, as the retention view does: the plan is checked
        against the index even while a watcher writes it (read-only then)."""
        try:
            plan.save()  # a plans folder that cannot be written: said, nothing moved
            done = service.apply(plan, self.db_path, role="retention (artlens)")
        except ArtlensError as exc:
            self.post_message(RemovalDone(Report(), False, str(exc)))
            return
        self.post_message(RemovalDone(done.report, done.index_updated))

    # -- handlers --------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row (the table takes the key first)."""
        event.stop()
        self.action_enter()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A trash's plan or apply that failed (the app says why): ``d`` works again, and
        the level is listed again (part of an apply may have happened)."""
        if event.worker.group in ("usage-plan", "usage-apply") and event.state in (
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            self.busy = False
            if event.worker.group == "usage-apply":
                self.action_refresh()

    def on_level_listed(self, message: LevelListed) -> None:
        self.level = message.level
        self.entries = message.entries
        self.unread = message.unread
        self.measured = False
        self._fill()
        self._measure_worker(message.level, [*message.entries], self._per_root)

    def on_level_measured(self, message: LevelMeasured) -> None:
        self._per_root.update(message.per_root)
        if message.level != self.level:
            return
        self.entries = message.entries
        self.measured = True
        self._fill()

    def on_removal_planned(self, message: RemovalPlanned) -> None:
        if message.plan is None:
            self.busy = False
            self.notify(paths.display(message.refused), markup=False, severity="warning")
            return
        plan = message.plan
        unit = plan.removals[0]
        text = Text()
        text.append("Move to the trash\n\n", style="bold")
        what = "folder" if unit.is_dir else "file"
        text.append(f"the {what} ", style="bold red")
        text.append(paths.display(unit.path) + ("/" if unit.is_dir else ""), style="bold red")
        count = f"{len(unit.members)} file(s), " if unit.is_dir else ""
        text.append(f"\n{count}{human_size(unit.size)}, under {paths.display(unit.root)}\n")
        if unit.live:
            text.append("its run is being written (live)\n", style="bold yellow")
        text.append(
            "\nIt is re-checked first; anything changed since or still being written is "
            "skipped.  Nothing is deleted: restore it from the retention view's Trash tab "
            "(r, then 3); the space is freed by `artlens trash purge`.\n",
            style="dim",
        )
        self.app.push_screen(ConfirmApply(text), partial(self._confirmed, plan))

    def _confirmed(self, plan: Plan, yes: bool | None) -> None:
        if not yes:
            self.busy = False
            return
        self._apply_worker(plan)

    def on_removal_done(self, message: RemovalDone) -> None:
        self.busy = False
        if message.error:
            self.notify(" ".join(message.error.split()), markup=False, severity="error")
            return
        report = message.report
        text = f"trashed {len(report.done)} ({human_size(report.bytes_done)})"
        if report.skipped:
            first = report.skipped[0]
            text += f", skipped: {paths.display(first.path)}: {paths.display(first.reason)}"
        if not message.index_updated:
            text += " (the index's watcher records the move)"
            for delay in FOLLOW_UP_SECONDS:
                self.set_timer(delay, self.action_refresh, name="relist after the watcher")
        self.notify(
            text, markup=False, timeout=6, severity="warning" if report.skipped else "information"
        )
        self.action_refresh()

    # -- rendering -------------------------------------------------------------------------

    def _sorted(self) -> list[Entry]:
        if not self.by_disk:
            return self.entries  # the store lists them largest first
        return sorted(
            self.entries,
            key=lambda e: (e.kind == "more", -(e.disk if e.disk is not None else -1), e.label),
        )

    def _where(self) -> Text:
        level = self.level
        text = Text("disk usage", style="bold")
        crumbs: list[str] = []
        if level.kind != "roots":
            crumbs.append(level.root)
        if level.kind == "experiment" and level.experiment is not None:
            crumbs.append(f"experiment {level.experiment}")
        if level.kind == "folder":
            crumbs.append(level.folder or ".")
        for crumb in crumbs:
            text.append(" › ", style="dim")
            text.append(keep_end(paths.display(crumb), 50))
        size = sum(e.size for e in self.entries)
        disks = [e.disk for e in self.entries if e.kind != "more"]
        text.append(f"\n{human_size(size)}", style="bold")
        if self.unread:
            text.append(UNREAD_MARK, style=UNREAD_STYLE)
        text.append(" apparent", style="bold")
        if self.entries and all(d is not None for d in disks):
            text.append(f" · {human_size(sum(d or 0 for d in disks))} on disk", style="bold")
        elif self.entries and not self.measured:
            text.append(" · on disk: measuring…", style="dim")
        elif self.entries:
            text.append(" · on disk: not measured (too many files)", style="dim")
        sort = "on disk" if self.by_disk else "apparent size"
        text.append(f" · sorted by {sort}", style="dim")
        text.append("  (enter opens)", style="dim")
        return text

    def _fill(self) -> None:
        table = self.query_one("#du-table", DataTable)
        keep = self._cursor_label
        if keep is None and table.row_count:
            row = table.cursor_row
            shown = self._sorted()
            keep = shown[row].label if 0 <= row < len(shown) and shown else None
        self._cursor_label = None
        entries = self._sorted()
        whole = max((e.size for e in entries), default=0)
        table.clear()
        # labels that print alike (cafe in NFC and in NFD) spelled apart
        labels = paths.shown_names([e.label for e in entries])
        # and cut so that two never read alike (``_cells`` keeps them whole)
        pairs = list(zip(entries, labels, strict=True))
        cut = iter(
            fit_apart([label for entry, label in pairs if _cut(entry)], NAME_WIDTH, keep_ends=True)
        )
        labels = [next(cut) if _cut(entry) else label for entry, label in pairs]
        for index, (entry, label) in enumerate(zip(entries, labels, strict=True)):
            table.add_row(*self._cells(entry, whole, label), key=str(index))
        if not entries:
            table.add_row("", "", "", "", Text("nothing indexed here", style="dim"))
        for index, entry in enumerate(entries):
            if entry.label == keep:
                table.move_cursor(row=index)
                break
        self.query_one("#du-where", Static).update(self._where())
        note = self.query_one("#du-unread", Static)
        note.update(self._unread_text())
        note.tooltip = Text(self.unread) if self.unread else None
        note.set_class(bool(self.unread), "-shown")

    def _unread_text(self) -> Text:
        """``? 1 folder could not be read: …``: what the totals marked ``?`` leave out."""
        text = Text()
        if self.unread:
            text.append(UNREAD_MARK + " ", style=UNREAD_STYLE)
            text.append(self.unread, style="yellow")
        return text

    def _cells(self, entry: Entry, whole: int, label: str) -> tuple[Text, ...]:
        """One entry's cells; ``label``: its name as shown (``paths.shown_names``)."""
        share = entry.size / whole if whole else 0.0
        filled = round(share * 10)
        bar = Text("█" * filled + "░" * (10 - filled), style="cyan")
        if entry.disk is None:
            unknown = "" if entry.kind == "more" else "-" if self.measured else "…"
            disk = Text(unknown, style="dim", justify="right")
        else:
            sparse = entry.disk < entry.size // 2
            disk = Text(human_size(entry.disk), style="bold" if sparse else "", justify="right")
        name = Text(no_wrap=True, overflow="ellipsis")
        if entry.kind in ("folder", "run", "root", "experiment"):
            suffix = "/" if entry.kind in ("folder", "run") else ""
            name.append(label + suffix, style="bold")
            if entry.kind != "folder":
                name.append(f"  {entry.kind}", style="dim")
            if entry.live:
                name.append("  ● live", style="bold green")
        elif entry.kind in ("outside", "more"):
            name.append(label, style="dim italic")
        else:
            name.append(label)
        size = Text(human_size(entry.size), justify="right")
        if entry.unreadable:
            size.append(UNREAD_MARK, style=UNREAD_STYLE)
        return (
            size,
            disk,
            bar,
            Text(str(entry.files), justify="right"),
            name,
        )

    # -- actions ---------------------------------------------------------------------------

    def _current(self) -> Entry | None:
        table = self.query_one("#du-table", DataTable)
        entries = self._sorted()
        row = table.cursor_row
        return entries[row] if table.row_count and 0 <= row < len(entries) else None

    def action_enter(self) -> None:
        entry = self._current()
        if entry is None or entry.target is None:
            return
        self._came_from.append((self.level, entry.label))
        self._show(entry.target)

    def action_up(self) -> None:
        if self._came_from:
            level, label = self._came_from.pop()
            self._cursor_label = label
            self._show(level)
            return
        enclosing = self._enclosing()
        if enclosing is not None:
            self._show(enclosing)

    def _enclosing(self) -> Level | None:
        """Where up leads without a path here (the view opened deeper): the enclosing level."""
        level = self.level
        if level.kind == "folder":
            if "/" in level.folder:
                return Level("folder", level.root, folder=level.folder.rsplit("/", 1)[0])
            return Level("root", level.root)
        if level.kind in ("experiment",):
            return Level("root", level.root)
        if level.kind == "root":
            return ROOTS
        return None

    def action_back(self) -> None:
        """Up to where the cursor came from; at the level the view opened on, close it."""
        if self._came_from:
            self.action_up()
        else:
            self.app.pop_screen()

    def action_cursor(self, delta: int) -> None:
        table = self.query_one("#du-table", DataTable)
        table.move_cursor(row=max(0, table.cursor_row + delta))

    def action_edge(self, end: bool) -> None:
        table = self.query_one("#du-table", DataTable)
        table.move_cursor(row=table.row_count - 1 if end else 0)

    def action_sort_disk(self) -> None:
        current = self._current()
        self._cursor_label = current.label if current is not None else None
        self.by_disk = not self.by_disk
        self._fill()

    def action_trash(self) -> None:
        entry = self._current()
        if entry is None or self.busy:
            return
        if entry.kind not in ("run", "folder", "file") or not entry.rel:
            self.notify(
                "choose a run, folder or file to trash (not a root, experiment or summary row)",
                markup=False,
                timeout=4,
            )
            return
        self.busy = True
        self._plan_worker(entry)

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        rows = [
            (b.key.replace("question_mark", "?"), b.description, b.id or "")
            for b in self.BINDINGS
            if isinstance(b, Binding) and b.description
        ]
        self.app.push_screen(HelpScreen(rows))

    def palette_entries(self) -> list[PaletteEntry]:
        return [
            ("usage: open entry", self.action_enter, "Into the folder, run or experiment"),
            ("usage: up a level", self.action_up, ""),
            ("usage: sort by on-disk size / apparent", self.action_sort_disk, ""),
            ("usage: trash the entry…", self.action_trash, "Through a plan, with confirm"),
            ("usage: refresh", self.action_refresh, "List and measure again"),
            ("view: back to the explorer", self.app.pop_screen, ""),
        ]


def _cut(entry: Entry) -> bool:
    """Whether an entry's label is a name cut to its column (a folder's, a run's, a file's),
    not a note (what lies outside runs, what is not shown)."""
    return entry.kind not in ("outside", "more")
