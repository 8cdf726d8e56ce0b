"""The main screen: runs, the selected run's files, and the selected file's preview.

Threading rule: every database and disk read runs in a thread worker of a named group
(exclusive where a newer request makes an older one pointless); workers never touch
widgets, they post a message from ``tui.messages``; the handlers own the state.

The panes own their state and workers: the runs and files panes (``tui.panes``) and the
preview (``PreviewPane.show_file``, ``show_run_detail``).  This screen keeps the layout,
focus and zoom, the actions that span panes, and the wiring: their messages come up here,
and it calls their methods (a delta of the change feed goes to each in turn).
"""

from __future__ import annotations

import functools
import gc
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Static, Tree
from textual.worker import Worker, get_current_worker

from store import paths
from store.index import query
from store.index.events import Event, events_since, fold, in_scope
from store.index.views import ReaderPool, counts
from store.safetext import visible
from tui.commands import PaletteEntry
from tui.hosts import Hosts, MirrorsLoaded
from tui.keys import titled, titled_entries
from tui.messages import (
    ChecklistsLoaded,
    CountWanted,
    IndexChanged,
    IndexCounted,
    RunsLoaded,
    UserStateLoaded,
)
from tui.panes.files import FilesPane, ShownFolders, run_label
from tui.panes.runs import RunsPane
from tui.widgets.artifact_tree import NodeInfo
from tui.widgets.footer import FittingFooter
from tui.widgets.preview import (
    PreviewPane,
    PreviewSource,
    folder_sections,
    problem_sections,
    symlink_sections,
)
from tui.widgets.runs_table import COLUMNS, RunsTable
from tui.widgets.status import StatusLine
from tui.workers import SaysWorkerFailures

if TYPE_CHECKING:
    from rich.console import RenderableType

    from store.checklist import ChecklistResult
    from store.index.query import ArtifactRow, RunRow

FOLLOW_DELAY = 0.06
"""Seconds the runs cursor must rest before the tree and preview follow it: a held key
moves the cursor at once but loads only the run it stops on."""

COUNT_SPACING = 10.0
"""The status line's totals are read again no sooner than this many times as long as the
last read took (``_count_soon``): at most a tenth of a core on any index."""
MAX_EVENTS = 20_000
"""Beyond this many pending events, reread every run instead of following them one by one."""
FREEZE_DELAY = 1.0
"""Seconds after the first runs show when the objects alive then (Textual's, the runs') are
moved out of the garbage collector's sight (``gc.freeze``): a full collection traversed
them all, pausing the UI thread for 100-250 ms while a preview was being built.  They are
handed back (``gc.unfreeze``) when the explorer goes, so nothing frozen is kept for good."""
PANES = {"runs": "#runs", "tree": "#tree", "preview": "#preview"}
"""Pane name (as the bindings say it) -> the widget that takes the focus, in ``tab`` order."""
MIN_SIZE = (40, 14)
"""Below this the panes cannot be drawn: a notice says so instead of panes vanishing."""


class ExplorerScreen(SaysWorkerFailures, Screen[None]):
    """Runs on top, files bottom-left, preview bottom-right (stacked when narrow)."""

    ALLOW_IN_MAXIMIZED_VIEW = "Footer, StatusLine"
    CSS_PATH = ["../panes/runs.tcss", "../panes/files.tcss"]  # noqa: RUF012 (Textual's type)
    """Each pane's styles; the layout around them is in ``tui/app.tcss``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "cycle_pane(1)", "Next pane", show=False, id="pane.next"),
        Binding("shift+tab", "cycle_pane(-1)", "Previous pane", show=False, id="pane.previous"),
        titled(
            Binding("1", "focus_pane('runs')", "Runs pane", show=False, id="pane.runs"),
            "view: runs",
            "Focus the runs pane",
        ),
        titled(
            Binding("2", "focus_pane('tree')", "Files pane", show=False, id="pane.tree"),
            "view: files",
            "Focus the file tree",
        ),
        titled(
            Binding("3", "focus_pane('preview')", "Preview pane", show=False, id="pane.preview"),
            "view: preview",
            "Focus the preview",
        ),
        titled(
            Binding("slash", "filter", "Filter", id="runs.filter", tooltip="Filter runs"),
            "filter: runs…",
            "Filter runs by name, params, experiment",
        ),
        Binding("s", "sort_next", "Sort", id="runs.sort", tooltip="Sort by the next column"),
        titled(
            Binding("S", "sort_reverse", "Reverse", show=False, id="runs.sort_reverse"),
            "sort: reverse",
            "Reverse the sort order",
        ),
        titled(
            Binding("space", "mark", "Mark", id="runs.mark", tooltip="Mark the run (for diffs)"),
            "runs: mark / unmark",
            "Mark the run under the cursor",
        ),
        titled(
            Binding(
                "m", "metrics", "Metrics", id="runs.metrics", tooltip="Metrics of the marked runs"
            ),
            "view: metrics of marked runs",
            "Metrics, sparklines, plots",
        ),
        titled(
            Binding(
                "n",
                "note",
                "Note",
                show=False,
                id="runs.note",
                tooltip="Write a note on the run or file",
            ),
            "runs: note…",
        ),
        Binding("e", "cycle_experiment", "Experiment", show=False, id="runs.experiment"),
        Binding("R", "cycle_root", "Root filter", show=False, id="runs.root"),
        titled(
            Binding("b", "cycle_group", "Group by", show=False, id="runs.group"),
            "group: cycle (none, experiment, root)",
            "Group runs",
        ),
        titled(
            Binding(
                "z",
                "zoom",
                "Zoom",
                show=False,
                id="pane.zoom",
                tooltip="Maximize or restore the pane",
            ),
            "view: zoom pane",
            "Maximize or restore the focused pane",
        ),
        titled(
            Binding(
                "r", "retention", "Retention", id="retention.open", tooltip="Plan, usage, trash"
            ),
            "view: retention",
            "Plan, disk usage and trash",
        ),
        titled(
            Binding(
                "U", "disk_usage", "Usage", show=False, id="usage.open", tooltip="Disk usage, ncdu"
            ),
            "view: disk usage",
            "ncdu-like: drill down, trash",
        ),
        titled(
            Binding("p", "pin", "Pin", show=False, id="retention.pin_here"),
            "retention: pin / unpin",
            "Pin the selected file or run",
        ),
        titled(
            Binding("d", "diff", "Diff", id="diff.marked", tooltip="Diff two marked runs or files"),
            "diff: marked runs or files",
            "Compare two marked runs or files",
        ),
        titled(
            Binding(
                "v",
                "versions",
                "Versions",
                show=False,
                id="files.versions",
                tooltip="The file across runs",
            ),
            "files: versions of the selected file",
            "Across runs",
        ),
        titled(
            Binding("ctrl+r", "reload", "Reload", show=False, id="app.reload"),
            "index: reload runs",
            "Reread every run from the index",
        ),
        Binding("escape", "escape", "Back", show=False, id="app.escape"),
    ]

    def __init__(
        self,
        db_path: Path,
        pool: ReaderPool,
        *,
        clock: Callable[[], float] = time.time,
        hosts: Hosts | None = None,
    ) -> None:
        super().__init__()
        self.db_path = db_path
        self.pool = pool
        self.clock = clock
        self.hosts = hosts if hosts is not None else Hosts([])
        """The followed remotes: their mirrors' runs share the table (``tui.hosts``)."""
        self._runs_pane = RunsPane(pool, clock=clock, hosts=self.hosts, id="runs-pane")
        """Runs and their filter, sort and marks (``tui.panes.runs``): the top pane."""
        self._files_pane = FilesPane(pool, hosts=self.hosts, clock=clock, id="tree")
        """The selected run's files (``tui.panes.files``): bottom left."""
        self._frozen = False
        """The heap was frozen after the first runs showed (``FREEZE_DELAY``)."""
        self._reading_changes = False
        self._changes_again = False
        """A commit arrived while changes were being read: read again when that ends."""
        self._counting = False
        self._count_again = False
        self._count_timer: Timer | None = None
        self._counted_at = -1e9
        self._count_cost = 0.0
        """When the index's totals were last read (monotonic), and how long that took."""
        self._preview_key: tuple[int, bytes] | None = None
        self._preview_node: NodeInfo | None = None
        self.user_pins: frozenset[tuple[bytes, str]] = frozenset()
        """Exact pins from the user state: (root path, root-relative path)."""
        self.user_notes: dict[tuple[bytes, str], str] = {}
        self._detail_run: int | None = None
        """The run whose detail the preview last showed."""
        self._detail_base: tuple[RenderableType, ...] = ()
        self._follow_timer: Timer | None = None

    # -- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield self._runs_pane
        with Horizontal(id="lower"):
            yield self._files_pane
            yield PreviewPane(PreviewSource(self.pool, self.hosts, self.clock), id="preview")
        yield Static("", id="too-small", markup=False)
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        self.query_one(PreviewPane).border_title = "Preview"
        watcher, healthy = getattr(self.app, "watch_state", ("not watching", False))
        self.query_one(StatusLine).change(
            index=paths.display(str(self.db_path)), watcher=watcher, watcher_ok=healthy
        )
        if self.hosts:
            text, healthy = self.hosts.status_text()
            self.query_one(StatusLine).change(hosts=text, hosts_ok=healthy)
        self.query_one(RunsTable).focus()

    def on_resize(self) -> None:
        width, height = self.size
        self.set_class(width < 70, "-narrow")
        self.set_class(height < 20, "-short")
        tiny = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        self.set_class(tiny, "-tiny")
        if tiny:
            self.query_one("#too-small", Static).update(
                f"terminal too small ({width}x{height}): "
                f"artlens needs {MIN_SIZE[0]}x{MIN_SIZE[1]}; enlarge it or press q"
            )

    def on_unmount(self) -> None:
        gc.unfreeze()  # see FREEZE_DELAY: what was frozen can be collected again

    @property
    def runs_pane(self) -> RunsPane:
        return self._runs_pane

    def first_scan_running(self, running: bool) -> None:
        """A new root's first scan is writing its runs (or has ended): checklists wait,
        the run detail's too; once it ends, the run detail shown gets its checklist."""
        held = self.runs_pane.checklists_held
        self.runs_pane.hold_checklists(running)
        if held and not running:
            self._refresh_run_detail()

    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    @property
    def file_tree(self) -> FilesPane:
        return self._files_pane

    @property
    def preview_pane(self) -> PreviewPane:
        return self.query_one(PreviewPane)

    # -- loading runs --------------------------------------------------------------------

    # The runs pane's state, read by the cross-pane actions (it owns and changes it).

    @property
    def runs(self) -> dict[int, RunRow]:
        return self.runs_pane.runs

    @property
    def root_paths(self) -> dict[int, bytes]:
        return self.runs_pane.root_paths

    @property
    def marked(self) -> set[int]:
        return self.runs_pane.marked

    @property
    def filter_text(self) -> str:
        return self.runs_pane.filter_text

    @property
    def sort_column(self) -> str:
        return self.runs_pane.sort_column

    @property
    def sort_reverse(self) -> bool:
        return self.runs_pane.sort_reverse

    @property
    def group(self) -> str | None:
        return self.runs_pane.group

    @property
    def last_event(self) -> int:
        return self.runs_pane.last_event

    @property
    def loaded(self) -> bool:
        return self.runs_pane.loaded

    @property
    def checklists(self) -> dict[int, ChecklistResult]:
        return self.runs_pane.checklists

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        """After the runs pane took the runs: the totals, the tree and the pins follow."""
        if not self._frozen:
            self._frozen = True
            self.set_timer(FREEZE_DELAY, gc.freeze, name="freeze the heap")
        self._count_soon()  # the totals, read apart so that the runs show sooner
        self.query_one(StatusLine).change(elsewhere=message.elsewhere)
        self._follow_cursor()
        self._load_user_state(tuple(self.root_paths.values()))

    def on_runs_pane_shown(self, message: RunsPane.Shown) -> None:
        """The runs table changed what it shows: the status line says so; when nothing
        is shown the other panes say why; after a filter change they follow the cursor."""
        self.query_one(StatusLine).change(
            shown=message.shown,
            marked=message.marked,
            marked_hidden=message.marked_hidden,
            filter=message.filter,
            sort=message.sort,
        )
        if message.nothing is not None:
            self.file_tree.show_nothing(message.nothing)
            self.preview_pane.show_message("esc clears the filter" if message.filter else "")
        if message.follow:
            self._follow_cursor()

    # -- live updates --------------------------------------------------------------------

    def index_moved(self) -> None:
        """The app saw another commit: read the change feed (after the first load; a
        commit between the first load and now is news too).  Not while the screen is torn
        down (its widgets gone): a watcher or a poller can still commit as the app quits."""
        if self.loaded and self.query(FilesPane):
            self._start_reading_changes()

    def _start_reading_changes(self) -> None:
        """One reader of the change feed at a time: a new start would cancel a running one,
        and under a storm of commits none would ever finish."""
        if self._reading_changes:
            self._changes_again = True
            return
        self._reading_changes = True
        self._changes_again = False
        self._read_changes(self.last_event, self.file_tree.shown_folders())

    @on(Worker.StateChanged)
    def _changes_read(self, event: Worker.StateChanged) -> None:
        if not event.worker.is_finished:
            return
        if event.worker.group == "changes":
            self._reading_changes = False
            if self._changes_again:
                self._start_reading_changes()
        elif event.worker.group == "counts":
            self._counting = False
            if self._count_again:
                self._count_soon()

    def _count_soon(self) -> None:
        """Read the index's totals for the status line, at most one read at a time and
        with idle time ``COUNT_SPACING`` times as long as the last read took between two:
        over 1M files a read is a pass over every row (0.1-0.2 s), and live training
        commits several times a second.  The last change is always counted."""
        self._count_again = False
        if self._counting:
            self._count_again = True
            return
        wait = self._counted_at + COUNT_SPACING * self._count_cost - time.monotonic()
        if wait > 0:
            if self._count_timer is None:
                self._count_timer = self.set_timer(wait, self._count_after_wait)
            return
        self._counting = True
        self._count_index()

    def on_count_wanted(self, _message: CountWanted) -> None:
        self._count_soon()

    def _count_after_wait(self) -> None:
        self._count_timer = None
        self._count_soon()

    @work(thread=True, group="counts", exit_on_error=False)
    def _count_index(self) -> None:
        started = time.monotonic()
        with self.pool.connection() as db:
            totals = counts(db)
        self._counted_at = time.monotonic()
        self._count_cost = self._counted_at - started
        self.post_message(IndexCounted(totals))

    @work(thread=True, exclusive=True, group="changes", exit_on_error=False)
    def _read_changes(self, after: int, shown: ShownFolders | None = None) -> None:
        """``shown``: the tree's (generation, root, open folders) when the read began; the
        changed ones are read here too, so the tree shows them in the runs table's turn."""
        worker = get_current_worker()
        with self.pool.connection() as db:
            events: list[Event] = []
            while True:
                batch = events_since(db, after, limit=5000)
                events += batch
                if batch:
                    after = batch[-1].id
                if len(batch) < 5000 or len(events) > MAX_EVENTS:
                    break
            if not events:
                return
            delta = fold(events, max_events=MAX_EVENTS)
            removed = set(delta.removed_runs)
            updated: list[RunRow] = []
            if delta.full:
                updated = query.list_runs(db)
            else:
                for root_id in delta.rescanned_roots:
                    updated += query.list_runs(db, root_id=root_id)
                covered = in_scope(delta.rescanned_folders)
                for root_id in sorted({rid for rid, _ in delta.rescanned_folders}):
                    keep = functools.partial(covered, root_id)
                    updated += query.list_runs_where(db, root_id, keep)
                seen = {r.id for r in updated}
                updated = list({r.id: r for r in updated}.values())
                for run_id in sorted(delta.runs - seen):
                    row = query.get_run(db, run_id)
                    if row is None:
                        removed.add(run_id)
                    else:
                        updated.append(row)
            updated = query.with_flags(db, updated)
            roots = tuple((rid, path) for rid, path, _ in query.roots(db))
        pages = self.file_tree.pages_changed(shown, delta) if shown is not None else ()
        if worker.is_cancelled:
            return
        self.app.post_message(  # the app hands the delta to every screen
            IndexChanged(
                tuple(updated),
                tuple(sorted(removed)),
                delta.folders,
                None,
                delta.last_event,
                delta.rescanned_roots,
                delta.full,
                roots,
                pages,
                trash_roots=delta.trash_roots,
                rescanned_folders=delta.rescanned_folders,
            )
        )
        self.post_message(CountWanted())  # the totals: after the change is out

    def on_index_counted(self, message: IndexCounted) -> None:
        self.query_one(StatusLine).change(counts=message.counts)

    def on_index_changed(self, message: IndexChanged) -> None:
        changed = self.runs_pane.index_changed(message)
        if changed is None:
            return
        fresh, gone = changed
        if message.counts is not None:
            self.query_one(StatusLine).change(counts=message.counts)
        tree = self.file_tree
        if tree.run_id is not None and tree.run_id in gone:
            self._follow_cursor()
        else:
            tree.index_changed(message)
            if self._detail_run is not None and self._detail_run in fresh:
                # its row changed (new metrics, live or quiet): the detail says what the
                # table says, also when no file of an open folder changed with it
                self._refresh_run_detail()
        if self._preview_key is not None and (
            self._preview_key in message.changed_paths
            or self._preview_key[0] in message.rescanned_roots
            or in_scope(message.rescanned_folders)(*self._preview_key)
        ):
            self._refresh_preview()

    # -- runs -> tree -> preview ---------------------------------------------------------

    @on(DataTable.RowHighlighted, "#runs")
    def _run_highlighted(self) -> None:
        if self._follow_timer is not None:
            self._follow_timer.stop()
        self._follow_timer = self.set_timer(FOLLOW_DELAY, self._follow_cursor)

    @on(DataTable.RowSelected, "#runs")
    def _run_selected(self) -> None:
        self.file_tree.focus()

    def _follow_cursor(self) -> None:
        if self._follow_timer is not None:
            self._follow_timer.stop()
            self._follow_timer = None
        run_id = self.table.current_run_id
        run = self.runs.get(run_id) if run_id is not None else None
        tree = self.file_tree
        if run is None:
            if not self.table.row_count:
                tree.show_nothing(self.runs_pane.why_empty())
            return
        if tree.run_id == run.id:
            return
        tree.show(run, self.checklists.get(run.id))
        tree.show_pins(self.user_pins, self.root_paths.get(run.root_id))
        self._preview_key = None
        self.preview_pane.show_message("select a file to preview it")
        self._request_run_detail(run.id, shown=())

    @on(Tree.NodeHighlighted, "#tree")
    def _node_highlighted(self, event: Tree.NodeHighlighted[NodeInfo]) -> None:
        info = event.node.data
        self._preview_node = info
        if info is None or info.more_offset is not None or self.file_tree.root_id is None:
            return
        root_id = self.file_tree.root_id
        now = self.clock()
        entry = info.entry
        if info.is_dir:
            self._preview_key = None
            name = info.shown_name or "."
            run_problems = problem_sections(self.file_tree.problems if event.node.is_root else ())
            self.preview_pane.show(folder_sections(entry, name, now) + run_problems)
            if event.node.is_root and self.file_tree.run_id is not None:
                self._request_run_detail(self.file_tree.run_id)
            return
        if entry is None or entry.artifact is None:
            return
        self._preview_key = (root_id, info.key)
        if entry.artifact.ftype == "symlink":
            problem = self.file_tree.problem_for(info.key)
            sections = symlink_sections(entry.artifact, info.shown_name, now)
            self.preview_pane.show(sections + problem_sections([problem] if problem else []))
            return
        self._request_preview(root_id, entry.artifact, info.shown_name)

    def _refresh_preview(self) -> None:
        info = self._preview_node
        if info is None or info.entry is None or info.entry.artifact is None:
            return
        if self.file_tree.root_id is None:
            return
        self._request_preview(self.file_tree.root_id, info.entry.artifact, info.shown_name, True)

    def _request_preview(
        self, root_id: int, artifact: ArtifactRow, name: str, reread: bool = False
    ) -> None:
        root = self.root_paths.get(root_id)
        if root is None:
            return
        where = (root, paths.unkey(artifact.path))
        self.preview_pane.show_file(
            root_id,
            root,
            artifact,
            name,
            problem=self.file_tree.problem_for(artifact.path),
            pinned=where in self.user_pins,
            note=self.user_notes.get(where),
            reread=reread,
        )

    # -- checklists, run detail, pins and notes -----------------------------------------

    def on_checklists_loaded(self, message: ChecklistsLoaded) -> None:
        """After the runs pane took them: the tree's root line shows what its run misses."""
        tree = self.file_tree
        run = self.runs.get(tree.run_id) if tree.run_id is not None else None
        if run is not None and any(run_id == run.id for run_id, _ in message.results):
            tree.root.set_label(run_label(run, self.checklists.get(run.id)))

    def _request_run_detail(
        self, run_id: int, shown: tuple[RenderableType, ...] | None = None
    ) -> None:
        """Show the run's detail below ``shown`` (default: what the preview shows now)."""
        run = self.runs.get(run_id)
        if run is None:
            return
        self._detail_run = run_id
        self._detail_base = self.preview_pane.sections if shown is None else shown
        where = (run.root, paths.unkey(run.path))
        self.preview_pane.show_run_detail(
            run,
            self._detail_base,
            note=self.user_notes.get(where),
            pinned=where in self.user_pins,
            checklist=not self.runs_pane.checklists_held,
        )

    def _refresh_run_detail(self) -> None:
        """Read the run detail the preview shows again (when it shows one)."""
        if not self.query(PreviewPane):  # taken down: the app quits (a scan's end told late)
            return
        tree = self.file_tree
        showing_run = not tree.has_focus or tree.cursor_node is tree.root
        if self._detail_run is not None and self._preview_key is None and showing_run:
            self._request_run_detail(self._detail_run, shown=self._detail_base)

    def _target(self) -> tuple[bytes, str, str] | None:
        """(root, root-relative path, label) that ``n`` acts on: the file or folder
        under the tree cursor when the tree has focus, else the run under the cursor."""
        tree = self.file_tree
        node = tree.cursor_node
        if self.focused is tree and node is not None and node.data is not None:
            root = self.root_paths.get(tree.root_id) if tree.root_id is not None else None
            if root is not None and node.data.more_offset is None:
                key = node.data.key
                return root, paths.unkey(key), paths.display(key) or "."
        run_id = self.table.current_run_id
        run = self.runs.get(run_id) if run_id is not None else None
        if run is None:
            return None
        return run.root, paths.unkey(run.path), visible(run.name)

    @work(thread=True, group="userstate", exit_on_error=False)
    def _load_user_state(
        self, roots: tuple[bytes, ...], note: tuple[bytes, str, str] | None = None
    ) -> None:
        """Read pins and notes of ``roots``, after saving ``note`` (root, path, text) if
        given.  The state file is small and local; SQLite serialises its writers."""
        from store.userstate import UserState

        said = ""
        with UserState() as state:
            if note is not None:
                root, rel, text = note
                state.set_note(os.fsdecode(root), rel, text)
                label = paths.display(rel) or "."
                said = f"note saved on {label}" if text else f"note removed from {label}"
            pins = frozenset(
                (base, pin.path)
                for base in roots
                for pin in state.pin_entries(os.fsdecode(base))
                if not pin.is_glob
            )
            notes = tuple(
                ((base, rel), note)
                for base in roots
                for rel, note in state.notes(os.fsdecode(base)).items()
            )
        self.post_message(UserStateLoaded(pins, notes, said))

    def on_user_state_loaded(self, message: UserStateLoaded) -> None:
        self.user_pins = message.pins
        self.user_notes = dict(message.notes)
        if message.said:
            self.notify(message.said, markup=False, timeout=4)
        self.runs_pane.show_user_state(self.user_pins, self.user_notes)
        tree = self.file_tree
        if tree.root_id is not None:
            tree.show_pins(self.user_pins, self.root_paths.get(tree.root_id))
        if self._preview_key is not None:
            self._refresh_preview()
        else:
            self._refresh_run_detail()

    def action_note(self) -> None:
        from tui.screens.note import NoteScreen

        if self._on_a_host("notes"):
            return
        target = self._target()
        if target is None:
            return
        root, rel, label = target
        current = self.user_notes.get((root, rel), "")

        def save(text: str | None) -> None:
            if text is not None and text != current:
                self._load_user_state(tuple(self.root_paths.values()), (root, rel, text))

        self.app.push_screen(NoteScreen(label, current), save)

    def _say_hidden(self, hidden: int, what: str) -> None:
        """Tell that ``hidden`` marked runs, hidden by the filter, are left out of ``what``."""
        if hidden:
            self.notify(
                f"{hidden} marked run(s) hidden by the filter left out of the {what} "
                "(esc clears the filter)",
                markup=False,
                timeout=6,
            )

    def action_metrics(self) -> None:
        """The metrics view for the marked runs the table shows (in its order), else the run
        under the cursor; marked runs the filter hides are left out, and said to be."""
        from tui.screens.metrics import MetricsScreen

        ids, hidden = self.runs_pane.marked_shown()
        if not ids and self.table.current_run_id is not None:
            ids = [self.table.current_run_id]
        runs = [self.runs[i] for i in ids if i in self.runs]
        self._say_hidden(hidden, "metrics")
        if not runs:
            self.notify("no run selected", timeout=3)
            return
        # a mirrored run's curves are in files on its host: its mirror's summaries show
        mirrored = frozenset(r.id for r in runs if self.hosts.is_remote(r.id))
        if mirrored:
            self.notify(
                f"{len(mirrored)} run(s) on other hosts: last and best values from the "
                "mirror, no curves",
                markup=False,
                timeout=6,
            )
        self.app.push_screen(MetricsScreen(runs, mirrored))

    # -- actions -------------------------------------------------------------------------

    def _pane(self, name: str) -> Widget:
        return self.query_one(PANES[name])

    def _current_pane(self) -> int:
        focused = self.focused
        for index, name in enumerate(PANES):
            pane = self._pane(name)
            if focused is pane or (focused is not None and pane in focused.ancestors):
                return index
        return 0

    def action_cycle_pane(self, step: int) -> None:
        index = (self._current_pane() + step) % len(PANES)
        self.action_focus_pane(list(PANES)[index])

    def action_focus_pane(self, name: str) -> None:
        """Focus at once (``focus()`` waits a turn): keys typed right after the switch
        (``2 j j``) are already queued and must reach the new pane."""
        if self.maximized is not None:
            self.minimize()
        if name != "runs" and self.table.current_run_id != self.file_tree.run_id:
            self._follow_cursor()  # the tree shows the cursor's run before the keys land
        self.set_focus(self._pane(name))

    def action_filter(self) -> None:
        self.runs_pane.open_filter()

    def set_filter(self, text: str) -> None:
        """Show only runs matching ``text`` (see ``runs_table.matches``)."""
        self.runs_pane.set_filter(text)

    def action_escape(self) -> None:
        if not self.runs_pane.clear_filter() and self.maximized is not None:
            self.minimize()

    def set_sort(self, column: str, *, reverse: bool | None = None) -> None:
        self.runs_pane.set_sort(column, reverse=reverse)

    def action_sort_next(self) -> None:
        self.runs_pane.sort_next()

    def action_sort_reverse(self) -> None:
        self.runs_pane.sort_reversed()

    def action_cycle_group(self) -> None:
        self.runs_pane.cycle_group()

    def experiments(self) -> list[str]:
        return self.runs_pane.experiments()

    def action_cycle_experiment(self) -> None:
        self.runs_pane.cycle_experiment()

    def action_cycle_root(self) -> None:
        self.runs_pane.cycle_root()

    def action_mark(self) -> None:
        self.runs_pane.toggle_mark()

    def action_zoom(self) -> None:
        if self.maximized is not None:
            self.minimize()
            return
        pane = self._pane(list(PANES)[self._current_pane()])
        # A pane that zooms as one piece (the runs pane: filter box and table) says so with
        # ALLOW_MAXIMIZE on the container around the widget that takes the focus.
        boxes = [
            w
            for w in pane.ancestors
            if isinstance(w, Widget) and not isinstance(w, Screen) and type(w).ALLOW_MAXIMIZE
        ]
        self.maximize(boxes[-1] if boxes else pane, container=False)

    def action_diff(self) -> None:
        """Two marked files (space in the tree) or two marked runs (space in the runs)."""
        files = self.file_tree.marked_files
        shown, hidden = self.runs_pane.marked_shown()
        runs = [self.runs[i] for i in shown if i in self.runs]
        if len(files) == 2 and (self.focused is self.file_tree or len(runs) != 2):
            from tui.screens.file_diff import FileDiffScreen

            (root_a, key_a), (root_b, key_b) = list(files)
            if root_a not in self.root_paths or root_b not in self.root_paths:
                return
            path_a = self.root_paths[root_a] + b"/" + key_a
            path_b = self.root_paths[root_b] + b"/" + key_b
            if self.hosts.is_remote(root_a) or self.hosts.is_remote(root_b):
                self._diff_across_hosts((root_a, key_a, path_a), (root_b, key_b, path_b))
                return
            self.app.push_screen(FileDiffScreen(path_a, path_b))
            return
        if len(runs) == 2:
            from tui.screens.run_diff import RunDiffScreen

            old, new = sorted(runs, key=lambda r: (r.started or 0, r.id))
            mirrored = (self.hosts.mirrored_run(old), self.hosts.mirrored_run(new))
            self._say_hidden(hidden, "diff")
            self.app.push_screen(RunDiffScreen(self.pool, old, new, mirrored))
            return
        if hidden:
            self.notify(
                f"{len(runs)} marked run(s) shown and {hidden} hidden by the filter: a diff "
                "takes two shown runs (esc clears the filter)",
                markup=False,
                timeout=6,
            )
            return
        self.notify(
            "mark two runs (space in the runs list) or two files (space in the file tree)",
            markup=False,
            timeout=4,
        )

    def action_versions(self) -> None:
        """The file under the tree cursor across every run of its experiment."""
        from store.rundiff import relative_key
        from tui.screens.versions import VersionsScreen

        node = self.file_tree.cursor_node
        run = self.runs.get(self.file_tree.run_id) if self.file_tree.run_id is not None else None
        info = node.data if node is not None else None
        if run is None or info is None or info.is_dir or info.entry is None:
            self.notify("select a file in the file tree first", markup=False, timeout=3)
            return
        if self.hosts.is_remote(run.id):
            self._across_hosts("artlens diff HOST:/path HOST:/path")
            return
        self.app.push_screen(VersionsScreen(self.pool, relative_key(run, info.key), run.experiment))

    def action_retention(self) -> None:
        """Open the retention view (plan, disk usage, trash) over this index."""
        from tui.screens.retention import RetentionScreen

        self.app.push_screen(RetentionScreen(self.db_path, self.pool, clock=self.clock))

    def action_disk_usage(self) -> None:
        """Open the disk usage view (drill down, trash through a plan) over this index."""
        from tui.screens.disk_usage import DiskUsageScreen

        self.app.push_screen(DiskUsageScreen(self.db_path, self.pool))

    def action_pin(self) -> None:
        """Pin or unpin the file or folder under the tree cursor, else the selected run."""
        if self._on_a_host("pins"):
            return
        tree = self.file_tree
        node = tree.cursor_node if tree.has_focus else None
        if node is not None and node.data is not None and tree.root_id is not None:
            root_id, rel = tree.root_id, paths.unkey(node.data.key)
        else:
            run = self.runs.get(self.table.current_run_id or -1)
            if run is None:
                return
            root_id, rel = run.root_id, paths.unkey(run.path)
        root = self.root_paths.get(root_id)
        if root is None or not rel:
            self.notify("pin a run or a file inside a root, not the root itself", timeout=4)
            return
        self._pin_worker(os.fsdecode(root), rel)

    @work(thread=True, group="pins", exit_on_error=False)
    def _pin_worker(self, root: str, rel: str) -> None:
        from store.retention.service import toggle_pin

        text, _changed = toggle_pin(root, rel)
        self.app.call_from_thread(self.notify, text, markup=False, timeout=3)
        self.app.call_from_thread(self._load_user_state, tuple(self.root_paths.values()))

    def action_reload(self) -> None:
        """Reread the index; every followed remote pulls now (an offline one too)."""
        self.hosts.pull_now()
        self.runs_pane.load_runs()

    # -- other hosts ---------------------------------------------------------------------

    def hosts_changed(self, changed: bool) -> None:
        """A followed remote answered or failed (``tui.hosts``): say so, reread its rows."""
        text, healthy = self.hosts.status_text()
        self.query_one(StatusLine).change(hosts=text, hosts_ok=healthy)
        if changed:
            self.runs_pane.load_mirrors()

    def on_mirrors_loaded(self, message: MirrorsLoaded) -> None:
        """After the runs pane replaced the mirrors' runs: the tree follows its run."""
        self.query_one(StatusLine).change(elsewhere=message.loaded.totals)
        tree = self.file_tree
        fresh = {run.id for run in message.loaded.runs}
        if tree.run_id is not None and tree.run_id not in self.runs:
            self._follow_cursor()
        elif tree.run_id is not None and tree.run_id in fresh:
            tree.refresh_open()

    def _on_a_host(self, what: str) -> bool:
        """True (and a notice) when the run or file ``what`` would apply to is a mirror's:
        pins and notes name this machine's paths, which a remote's path may also name."""
        tree = self.file_tree
        if self.focused is tree and tree.root_id is not None:
            remote = self.hosts.is_remote(tree.root_id)
        else:
            run_id = self.table.current_run_id
            remote = run_id is not None and self.hosts.is_remote(run_id)
        if remote:
            self.notify(f"{what} are for this machine's files", markup=False, timeout=4)
        return remote

    @work(thread=True, group="remote-diff", exit_on_error=False)
    def _diff_across_hosts(self, *sides: tuple[int, bytes, bytes]) -> None:
        """Two marked files, one or both on a remote: their sizes from the mirror, then the
        file diff screen fetches the remote ones (bounded) and diffs the copies."""
        from store.index.views import artifact_at
        from store.remote.fetch import MAX_FETCH
        from tui.format import human_size
        from tui.hosts import RemoteFile
        from tui.screens.file_diff import FileDiffScreen

        found: list[RemoteFile | None] = []
        for root_id, key, path in sides:
            remote = self.hosts.remote_of(root_id)
            if remote is None:
                found.append(None)
                continue
            with remote[1].connection() as db:
                row = artifact_at(db, remote[2], key)
            if row is None or row.ftype != "file":
                self.app.call_from_thread(
                    self.notify, "not a file in the mirror", markup=False, timeout=4
                )
                return
            if row.size > MAX_FETCH:
                text = (
                    f"{human_size(row.size)} on {remote[0].name}: more than the "
                    f"{human_size(MAX_FETCH)} a diff fetches; diff on the host"
                )
                self.app.call_from_thread(self.notify, text, markup=False, timeout=6)
                return
            found.append(RemoteFile(remote[0], path, row.size))
        screen = FileDiffScreen(sides[0][2], sides[1][2], remote_a=found[0], remote_b=found[1])
        self.app.call_from_thread(self.app.push_screen, screen)

    def _across_hosts(self, command: str) -> None:
        self.notify(
            f"across hosts, compare on the command line: {command}", markup=False, timeout=6
        )

    def jump_to_run(self, run_id: int) -> None:
        """Put the cursor on a run, clearing the filter if it hides it."""
        self.runs_pane.jump_to_run(run_id)

    def palette_entries(self) -> list[PaletteEntry]:
        """The titled bindings of the screen, its widgets and the app (``tui.keys.titled``),
        then the entries made from state: sorts, experiments, one "run: <name>" per run."""
        entries = titled_entries((self, *self.walk_children(with_self=False), self.app))
        entries.append(("filter: clear", partial(self.set_filter, ""), "Show every run"))
        for column in COLUMNS:
            if column.sortable:
                entries.append((f"sort: by {column.label}", partial(self.set_sort, column.key), ""))
        for experiment in self.experiments():
            entries.append(
                (
                    f"filter: experiment {experiment}",
                    partial(self.set_filter, f"exp:{experiment}"),
                    "",
                )
            )
        runs = sorted(self.runs.values(), key=lambda r: (r.name.lower(), r.id))
        for run in runs[:2000]:
            on = f" on {self.hosts.name_of(run.id)}" if self.hosts.is_remote(run.id) else ""
            title = f"run: {visible(run.name)} ({run.framework}){on}"
            entries.append((title, partial(self.jump_to_run, run.id), paths.display(run.path)))
        return entries
