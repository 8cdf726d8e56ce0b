"""The main screen: runs, the selected run's files, and the selected file's preview.

Threading rule: every database and disk read runs in a thread worker of a named group
(exclusive where a newer request makes an older one pointless); workers never touch
widgets, they post a message from ``tui.messages``; the handlers here own the state.
The preview pane owns its workers: the screen asks it for a file or a run's detail
(``PreviewPane.show_file``, ``show_run_detail``).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Input, Static, Tree
from textual.worker import Worker, get_current_worker

from store import paths
from store.index import query
from store.index.events import Delta, Event, events_since, fold
from store.index.views import ChildPage, ReaderPool, children_page, counts
from store.integrity import problems_of
from store.safetext import visible
from tui.commands import PaletteEntry
from tui.format import WARNING
from tui.hosts import Hosts, MirrorsLoaded
from tui.messages import (
    ChecklistsLoaded,
    FolderPage,
    IndexChanged,
    IndexCounted,
    RunsLoaded,
    UserStateLoaded,
)
from tui.widgets.artifact_tree import ArtifactTree, NodeInfo, outside_folders
from tui.widgets.preview import (
    PreviewPane,
    PreviewSource,
    folder_sections,
    problem_sections,
    symlink_sections,
)
from tui.widgets.runs_table import (
    COLUMNS,
    SORT_KEYS,
    RowExtras,
    RunsTable,
    group_headers,
    order_runs,
    rank,
    why_nothing_matches,
)
from tui.widgets.status import StatusLine

if TYPE_CHECKING:
    from rich.console import RenderableType

    from store.checklist import ChecklistResult
    from store.index.query import ArtifactRow, RunRow

AGE_REFRESH_SECONDS = 30.0
"""Ages ("5m") in the table drift; re-render changed cells this often."""
FOLLOW_DELAY = 0.06
"""Seconds the runs cursor must rest before the tree and preview follow it: a held key
moves the cursor at once but loads only the run it stops on."""

MAX_TABLE_ROWS = 1000
"""Rows the runs table holds; beyond this the filter narrows (the index may hold more)."""
MAX_EVENTS = 20_000
"""Beyond this many pending events, reread every run instead of following them one by one."""
MAX_PAGES_WITH_CHANGES = 8
"""Open tree folders the change reader reads beside the changes; beyond, the tree asks."""
ShownFolders = tuple[int, int, dict[bytes, int]]
"""The file tree when a read of the changes began: generation, root id, open folders."""
CHECKLIST_SLICE = 50
"""Runs whose checklists one worker step evaluates before it posts them and pauses."""
CHECKLIST_PAUSE = 0.02
"""Seconds the checklist worker sleeps between slices, so the UI thread gets the GIL."""
FREEZE_DELAY = 1.0
"""Seconds after the first runs show when the objects alive then (Textual's, the runs') are
moved out of the garbage collector's sight (``gc.freeze``): a full collection traversed
them all, pausing the UI thread for 100-250 ms while a preview was being built.  They are
handed back (``gc.unfreeze``) when the explorer goes, so nothing frozen is kept for good."""
GROUPS: tuple[str | None, ...] = (None, "experiment", "root")
PANES = ("runs", "tree", "preview")
MIN_SIZE = (40, 14)
"""Below this the panes cannot be drawn: a notice says so instead of panes vanishing."""


class RunsPane(Vertical):
    """The filter box over the runs table; zooms as one piece."""

    ALLOW_MAXIMIZE = True


class ExplorerScreen(Screen[None]):
    """Runs on top, files bottom-left, preview bottom-right (stacked when narrow)."""

    ALLOW_IN_MAXIMIZED_VIEW = "Footer, StatusLine"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "cycle_pane(1)", "Next pane", show=False, id="pane.next"),
        Binding("shift+tab", "cycle_pane(-1)", "Previous pane", show=False, id="pane.previous"),
        Binding("1", "focus_pane('runs')", "Runs pane", show=False, id="pane.runs"),
        Binding("2", "focus_pane('tree')", "Files pane", show=False, id="pane.tree"),
        Binding("3", "focus_pane('preview')", "Preview pane", show=False, id="pane.preview"),
        Binding("slash", "filter", "Filter", id="runs.filter", tooltip="Filter runs"),
        Binding("s", "sort_next", "Sort", id="runs.sort", tooltip="Sort by the next column"),
        Binding("S", "sort_reverse", "Reverse", show=False, id="runs.sort_reverse"),
        Binding("space", "mark", "Mark", id="runs.mark", tooltip="Mark the run (for diffs)"),
        Binding("m", "metrics", "Metrics", id="runs.metrics", tooltip="Metrics of the marked runs"),
        Binding(
            "n",
            "note",
            "Note",
            show=False,
            id="runs.note",
            tooltip="Write a note on the run or file",
        ),
        Binding("e", "cycle_experiment", "Experiment", show=False, id="runs.experiment"),
        Binding("R", "cycle_root", "Root filter", show=False, id="runs.root"),
        Binding("b", "cycle_group", "Group by", show=False, id="runs.group"),
        Binding(
            "z", "zoom", "Zoom", show=False, id="pane.zoom", tooltip="Maximize or restore the pane"
        ),
        Binding("r", "retention", "Retention", id="retention.open", tooltip="Plan, usage, trash"),
        Binding(
            "U", "disk_usage", "Usage", show=False, id="usage.open", tooltip="Disk usage, ncdu"
        ),
        Binding("p", "pin", "Pin", show=False, id="retention.pin_here"),
        Binding("d", "diff", "Diff", id="diff.marked", tooltip="Diff two marked runs or files"),
        Binding(
            "v",
            "versions",
            "Versions",
            show=False,
            id="files.versions",
            tooltip="The file across runs",
        ),
        Binding("ctrl+r", "reload", "Reload", show=False, id="app.reload"),
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
        self.runs: dict[int, RunRow] = {}
        self.root_paths: dict[int, bytes] = {}
        self.marked: set[int] = set()
        self.filter_text = ""
        self.sort_column = "started"
        self.sort_reverse = True
        self.group: str | None = None
        self.last_event = 0
        self.loaded = False
        self._reading_changes = False
        self._changes_again = False
        """A commit arrived while changes were being read: read again when that ends."""
        self._preview_key: tuple[int, bytes] | None = None
        self._preview_node: NodeInfo | None = None
        self._pinned: set[int] = set()
        """Runs jumped to from the palette: shown even past MAX_TABLE_ROWS."""
        self.checklists: dict[int, ChecklistResult] = {}
        self._checklist_request = 0
        self._checklist_seen: dict[int, int] = {}
        self._checklist_errors: set[str] = set()
        """run id -> the checklist request its shown result came from (older ones lose)."""
        self._checklist_asked: set[int] = set()
        """Runs whose checklist is current or requested since the last full load."""
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
        with RunsPane(id="runs-pane"):
            hosts = " · host:NAME" if self.hosts else ""
            box = Input(
                placeholder=f"filter: words · exp:NAME · root:PATH · fw:NAME{hosts} (esc clears)",
                id="filter",
            )
            box.cursor_blink = False  # steadier over SSH, and stable screenshots
            yield box
            yield RunsTable(id="runs", clock=self.clock, hosts=bool(self.hosts))
        with Horizontal(id="lower"):
            yield ArtifactTree(self._load_page, id="tree", clock=self.clock)
            yield PreviewPane(PreviewSource(self.pool, self.hosts, self.clock), id="preview")
        yield Static("", id="too-small", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#runs-pane").border_title = "Runs"
        self.query_one(ArtifactTree).border_title = "Files"
        self.query_one(PreviewPane).border_title = "Preview"
        watcher, healthy = getattr(self.app, "watch_state", ("not watching", False))
        self.query_one(StatusLine).change(
            index=paths.display(str(self.db_path)), watcher=watcher, watcher_ok=healthy
        )
        if self.hosts:
            text, healthy = self.hosts.status_text()
            self.query_one(StatusLine).change(hosts=text, hosts_ok=healthy)
        self.query_one(RunsTable).focus()
        self._load_runs()
        self.set_interval(AGE_REFRESH_SECONDS, self._sync_table, name="refresh ages")

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
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    @property
    def file_tree(self) -> ArtifactTree:
        return self.query_one(ArtifactTree)

    @property
    def preview_pane(self) -> PreviewPane:
        return self.query_one(PreviewPane)

    # -- loading runs --------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="runs", exit_on_error=False)
    def _load_runs(self) -> None:
        with self.pool.connection() as db:
            totals = counts(db)
            runs = query.with_flags(db, query.list_runs(db))
            roots = tuple((rid, path) for rid, path, _ in query.roots(db))
        mirrored = self.hosts.load_runs()
        self.post_message(RunsLoaded(tuple(runs) + mirrored.runs, totals, roots + mirrored.roots))

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        self.runs = {run.id: run for run in message.runs}
        self.root_paths.update(message.roots)
        self.last_event = max(self.last_event, message.counts.last_event)
        self.marked &= set(self.runs)
        if not self.loaded:
            self.set_timer(FREEZE_DELAY, gc.freeze, name="freeze the heap")
        self.loaded = True
        self._checklist_asked.clear()  # a reload re-evaluates every run as it is shown
        self.query_one(StatusLine).change(counts=message.counts)
        self._sync_table()
        self._follow_cursor()
        self._load_user_state(tuple(self.root_paths.values()))

    def _visible_order(self) -> list[int]:
        host = self.hosts.name_of
        scores: dict[int, float] = {}
        for run in self.runs.values():
            score = rank(run, self.filter_text, host(run.id)) if self.filter_text else 0.0
            if score is not None:
                scores[run.id] = score
        shown = [self.runs[run_id] for run_id in scores]
        order = order_runs(
            shown,
            self.sort_column,
            reverse=self.sort_reverse,
            group=self.group,
            scores=scores if self.filter_text else None,
        )
        if len(order) <= MAX_TABLE_ROWS:
            return order
        # Past the cap, still show what the user asked for: marked runs and a jump target.
        kept = order[:MAX_TABLE_ROWS]
        wanted = (self.marked | self._pinned) - set(kept)
        return kept + [run_id for run_id in order[MAX_TABLE_ROWS:] if run_id in wanted]

    def _sync_table(self) -> None:
        if not self.loaded:
            return
        order = self._visible_order()
        headers = group_headers(self.runs, order, self.group)
        self.table.sync(self.runs, order, self.marked, self._row_extras(order), headers)
        wanted = tuple(run_id for run_id in order if run_id not in self._checklist_asked)
        if wanted:  # only shown runs, in display order: the visible rows come first
            self._checklist_asked.update(wanted)
            self._load_checklists(wanted)
        label = next(c.label for c in COLUMNS if c.key == self.sort_column)
        arrow = "↓" if self.sort_reverse else "↑"
        group = f", grouped by {self.group}" if self.group else ""
        self.query_one(StatusLine).change(
            shown=len(order),
            marked=len(self.marked),
            filter=self.filter_text,
            sort=f"{label} {arrow}{group}",
        )
        if not order:
            why = why_nothing_matches(self.runs.values(), self.filter_text, self.hosts.name_of)
            self.file_tree.show_nothing(
                f"no runs match: {why}" if self.runs else "no runs indexed yet"
            )
            self.preview_pane.show_message("esc clears the filter" if self.filter_text else "")

    # -- live updates --------------------------------------------------------------------

    def index_moved(self) -> None:
        """The app saw another commit: read the change feed (after the first load; a
        commit between the first load and now is news too)."""
        if self.loaded:
            self._start_reading_changes()

    def _start_reading_changes(self) -> None:
        """One reader of the change feed at a time: a new start would cancel a running one,
        and under a storm of commits none would ever finish."""
        if self._reading_changes:
            self._changes_again = True
            return
        self._reading_changes = True
        self._changes_again = False
        tree = self.file_tree
        shown = None
        if tree.root_id is not None:
            shown = (tree.generation, tree.root_id, tree.open_folders())
        self._read_changes(self.last_event, shown)

    @on(Worker.StateChanged)
    def _changes_read(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "changes" or not event.worker.is_finished:
            return
        self._reading_changes = False
        if self._changes_again:
            self._start_reading_changes()

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
                seen = {r.id for r in updated}
                for run_id in sorted(delta.runs - seen):
                    row = query.get_run(db, run_id)
                    if row is None:
                        removed.add(run_id)
                    else:
                        updated.append(row)
            updated = query.with_flags(db, updated)
            roots = tuple((rid, path) for rid, path, _ in query.roots(db))
        pages = self._changed_pages(shown, delta) if shown is not None else ()
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
            )
        )
        with self.pool.connection() as db:  # count(*) and sum(size): after the change is out
            totals = counts(db)
        if not worker.is_cancelled:
            self.post_message(IndexCounted(totals))

    def on_index_counted(self, message: IndexCounted) -> None:
        self.query_one(StatusLine).change(counts=message.counts)

    def _changed_pages(self, shown: ShownFolders, delta: Delta) -> tuple[FolderPage, ...]:
        """On the change reader's thread: new first pages of the open folders ``delta``
        touched (none when too many: the tree then asks for them itself, as before)."""
        generation, root_id, limits = shown
        if delta.full or root_id in delta.rescanned_roots:
            keys = set(limits)
        else:
            keys = {key for rid, key in delta.folders if rid == root_id and key in limits}
        if len(keys) > MAX_PAGES_WITH_CHANGES:
            return ()
        tree = self.file_tree
        return tuple(
            FolderPage(generation, key, limits[key], tree.read_page(root_id, key, 0, limits[key]))
            for key in sorted(keys)
        )

    def on_index_changed(self, message: IndexChanged) -> None:
        if message.last_event <= self.last_event:
            return
        self.last_event = message.last_event
        self.root_paths.update(message.roots)
        fresh = {run.id for run in message.updated}
        if message.full:  # the local index's runs only: a mirror's come with its pulls
            gone = {rid for rid in set(self.runs) - fresh if not self.hosts.is_remote(rid)}
        else:
            gone = set(message.removed)
            gone |= {
                rid
                for rid, run in self.runs.items()
                if run.root_id in message.rescanned_roots and rid not in fresh
            }
        for run_id in gone:
            self.runs.pop(run_id, None)
            self.marked.discard(run_id)
        for run in message.updated:
            self.runs[run.id] = run
        if message.counts is not None:
            self.query_one(StatusLine).change(counts=message.counts)
        self._checklist_asked |= fresh
        self._sync_table()
        if fresh:
            self._load_checklists(tuple(sorted(fresh)))
        tree = self.file_tree
        if tree.run_id is not None and tree.run_id in fresh:
            tree.problems = tuple(problems_of(self.runs[tree.run_id].meta))
        if tree.run_id is not None and tree.run_id in gone:
            self._follow_cursor()
        elif tree.root_id is not None:
            if tree.root_id in message.rescanned_roots or message.full:
                tree.refresh_folders(set(tree.open_folders()), message.pages)
            else:
                changed = {k for r, k in message.changed_paths if r == tree.root_id}
                tree.refresh_folders(changed, message.pages)
        if self._preview_key is not None and (
            self._preview_key in message.changed_paths
            or self._preview_key[0] in message.rescanned_roots
        ):
            self._refresh_preview()

    # -- runs -> tree -> preview ---------------------------------------------------------

    @on(DataTable.RowHighlighted, "#runs")
    def _run_highlighted(self) -> None:
        if self._follow_timer is not None:
            self._follow_timer.stop()
        self._follow_timer = self.set_timer(FOLLOW_DELAY, self._follow_cursor)

    @on(DataTable.HeaderSelected, "#runs")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        """A click on a column's header sorts by it; again reverses."""
        column = str(event.column_key.value)
        if column == self.sort_column:
            self.action_sort_reverse()
        else:
            self.set_sort(column)

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
                why = why_nothing_matches(self.runs.values(), self.filter_text, self.hosts.name_of)
                tree.show_nothing(f"no runs match: {why}" if self.runs else "no runs indexed yet")
            return
        if tree.run_id == run.id:
            return
        label = self._run_label(run)
        tree.show_run(
            run.id,
            run.root_id,
            run.path,
            label,
            tuple(problems_of(run.meta)),
            outside_folders(run.path, run.meta),
        )
        tree.set_pinned(self._pinned_keys(run.root_id))
        self._preview_key = None
        self.preview_pane.show_message("select a file to preview it")
        self._request_run_detail(run.id, shown=())

    def _run_label(self, run: RunRow) -> Text:
        """The tree's root line: name, missing checklist items (red), path and framework."""
        label = Text(no_wrap=True, overflow="ellipsis")
        label.append(visible(run.name), style="bold")
        result = self.checklists.get(run.id)
        if result is not None and not result.complete:
            label.append("  ")
            label.append(f"✗ missing {visible(', '.join(result.missing))}", style=WARNING)
        label.append(f"  {paths.display(run.path) or '.'} · {run.framework}", style="dim")
        return label

    def _load_page(self, root_id: int, folder: bytes, offset: int, limit: int) -> ChildPage:
        """Called on a tree worker thread."""
        mirrored = self.hosts.children(root_id, folder, offset, limit)
        if mirrored is not None:
            return mirrored
        with self.pool.connection() as db:
            return children_page(db, root_id, folder, offset=offset, limit=limit)

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
            name = entry.name if entry else paths.display(paths.name_of(info.key)) or "."
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
            sections = symlink_sections(entry.artifact, entry.name, now)
            self.preview_pane.show(sections + problem_sections([problem] if problem else []))
            return
        self._request_preview(root_id, entry.artifact, entry.name)

    def _refresh_preview(self) -> None:
        info = self._preview_node
        if info is None or info.entry is None or info.entry.artifact is None:
            return
        if self.file_tree.root_id is None:
            return
        self._request_preview(self.file_tree.root_id, info.entry.artifact, info.entry.name, True)

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

    def _load_checklists(self, run_ids: tuple[int, ...]) -> None:
        """Checklist results of ``run_ids`` (every run when empty), read in a worker."""
        self._checklist_request += 1
        self._checklist_worker(self._checklist_request, run_ids)

    @work(thread=True, group="checklist", exit_on_error=False)
    def _checklist_worker(self, request: int, run_ids: tuple[int, ...]) -> None:
        """A root whose checklist config is invalid falls back to the defaults (and says so).

        Evaluation is pure Python: it goes in slices with a pause between them, so the
        UI thread is not starved of the GIL while thousands of runs are checked."""
        from store.checklist import evaluate_runs

        worker = get_current_worker()
        if not run_ids:
            with self.pool.connection() as db:
                run_ids = tuple(run.id for run in query.list_runs(db))
        # a mirrored run's checklist is configured on its host: not evaluated here
        run_ids = tuple(i for i in run_ids if not self.hosts.is_remote(i))
        for start in range(0, len(run_ids), CHECKLIST_SLICE):
            if start:
                time.sleep(CHECKLIST_PAUSE)
            with self.pool.connection() as db:
                chunk = run_ids[start : start + CHECKLIST_SLICE]
                runs = [r for r in (query.get_run(db, i) for i in chunk) if r is not None]
                results, errors = evaluate_runs(db, runs, strict=False)
            if worker.is_cancelled:
                return
            self.post_message(ChecklistsLoaded(request, tuple(results.items()), tuple(errors)))

    def on_checklists_loaded(self, message: ChecklistsLoaded) -> None:
        for run_id, result in message.results:
            if self._checklist_seen.get(run_id, -1) <= message.request:
                self._checklist_seen[run_id] = message.request
                self.checklists[run_id] = result
        for error in set(message.errors) - self._checklist_errors:
            self._checklist_errors.add(error)
            self.notify(error, title="checklist", severity="warning", markup=False, timeout=8)
        shown = [run_id for run_id, _ in message.results if run_id in self.runs]
        self.table.refresh_rows(self.runs, shown, self.marked, self._row_extras(shown))
        tree = self.file_tree
        run = self.runs.get(tree.run_id) if tree.run_id is not None else None
        if run is not None and any(run_id == run.id for run_id, _ in message.results):
            tree.root.set_label(self._run_label(run))

    def _row_extras(self, order: list[int]) -> dict[int, RowExtras]:
        extras: dict[int, RowExtras] = {}
        hosts = self.hosts
        for run_id in order:
            run = self.runs[run_id]
            result = self.checklists.get(run_id)
            where = (run.root, paths.unkey(run.path))
            local = not hosts.is_remote(run_id)  # pins and notes name this machine's paths
            extras[run_id] = RowExtras(
                (result.passed, result.total) if result is not None else None,
                local and where in self.user_pins,
                local and where in self.user_notes,
                hosts.name_of(run_id) if hosts else None,
                hosts.offline(run_id),
            )
        return extras

    def _pinned_keys(self, root_id: int) -> frozenset[bytes]:
        if self.hosts.is_remote(root_id):  # pins name this machine's paths
            return frozenset()
        root = self.root_paths.get(root_id)
        return frozenset(paths.key(rel) for r, rel in self.user_pins if r == root)

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
            run, self._detail_base, note=self.user_notes.get(where), pinned=where in self.user_pins
        )

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
        notes = dict(message.notes)
        same = message.pins == self.user_pins and notes == self.user_notes
        self.user_pins = message.pins
        self.user_notes = notes
        if message.said:
            self.notify(message.said, markup=False, timeout=4)
        if not same:
            self._sync_table()
        tree = self.file_tree
        if tree.root_id is not None:
            tree.set_pinned(self._pinned_keys(tree.root_id))
        showing_run = not tree.has_focus or tree.cursor_node is tree.root
        if self._detail_run is not None and self._preview_key is None and showing_run:
            self._request_run_detail(self._detail_run, shown=self._detail_base)
        elif self._preview_key is not None:
            self._refresh_preview()

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

    def action_metrics(self) -> None:
        """The metrics view for the marked runs (in table order), else the run under the cursor."""
        from tui.screens.metrics import MetricsScreen

        order = self._visible_order()
        ids = [i for i in order if i in self.marked]
        ids += sorted(self.marked - set(ids))
        if not ids and self.table.current_run_id is not None:
            ids = [self.table.current_run_id]
        runs = [self.runs[i] for i in ids if i in self.runs]
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
        return {"runs": self.table, "tree": self.file_tree, "preview": self.preview_pane}[name]

    def _current_pane(self) -> int:
        focused = self.focused
        for index, name in enumerate(PANES):
            pane = self._pane(name)
            if focused is pane or (focused is not None and pane in focused.ancestors):
                return index
        return 0

    def action_cycle_pane(self, step: int) -> None:
        index = (self._current_pane() + step) % len(PANES)
        self.action_focus_pane(PANES[index])

    def action_focus_pane(self, name: str) -> None:
        """Focus at once (``focus()`` waits a turn): keys typed right after the switch
        (``2 j j``) are already queued and must reach the new pane."""
        if self.maximized is not None:
            self.minimize()
        if name != "runs" and self.table.current_run_id != self.file_tree.run_id:
            self._follow_cursor()  # the tree shows the cursor's run before the keys land
        self.set_focus(self._pane(name))

    def action_filter(self) -> None:
        """Show the filter box and focus it at once, as a pane switch does: the letters
        after "/" (one burst over SSH) are already queued and belong to the box."""
        box = self.query_one("#filter", Input)
        box.add_class("-shown")
        self.set_focus(box)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        # Never write back to the box here: queued Changed events would ping-pong.
        if event.value.strip() != self.filter_text:
            self._apply_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        box = self.query_one("#filter", Input)
        if not box.value:
            box.remove_class("-shown")
        self.table.focus()

    def set_filter(self, text: str) -> None:
        """Show only runs matching ``text`` (see ``runs_table.matches``)."""
        box = self.query_one("#filter", Input)
        with box.prevent(Input.Changed):
            box.value = text
        box.set_class(bool(text) or box.has_focus, "-shown")
        self._apply_filter(text)

    def _apply_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self._sync_table()
        self._follow_cursor()

    def action_escape(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus or self.filter_text:
            self.set_filter("")
            box.remove_class("-shown")
            self.table.focus()
        elif self.maximized is not None:
            self.minimize()

    def set_sort(self, column: str, *, reverse: bool | None = None) -> None:
        if column not in SORT_KEYS:
            return
        if reverse is None:
            reverse = column in ("started", "last_write", "size", "artifacts", "acc")
        self.sort_column, self.sort_reverse = column, reverse
        self._sync_table()

    def action_sort_next(self) -> None:
        index = (SORT_KEYS.index(self.sort_column) + 1) % len(SORT_KEYS)
        self.set_sort(SORT_KEYS[index])

    def action_sort_reverse(self) -> None:
        self.set_sort(self.sort_column, reverse=not self.sort_reverse)

    def action_cycle_group(self) -> None:
        self.group = GROUPS[(GROUPS.index(self.group) + 1) % len(GROUPS)]
        self._sync_table()

    def _cycle_field(self, prefix: str, values: list[str]) -> None:
        words = self.filter_text.split()
        current = next((w[len(prefix) :] for w in words if w.startswith(prefix)), None)
        rest = [w for w in words if not w.startswith(prefix)]
        options = [None, *values]
        position = options.index(current) if current in options else 0
        chosen = options[(position + 1) % len(options)]
        if chosen is not None:
            rest.append(prefix + chosen)
        self.set_filter(" ".join(rest))
        self.table.focus()

    def experiments(self) -> list[str]:
        names = {r.experiment.lower() for r in self.runs.values() if r.experiment}
        return sorted(n for n in names if " " not in n)

    def action_cycle_experiment(self) -> None:
        self._cycle_field("exp:", self.experiments())

    def action_cycle_root(self) -> None:
        roots = sorted({paths.display(p).lower() for p in self.root_paths.values()})
        self._cycle_field("root:", [r for r in roots if " " not in r])

    def action_mark(self) -> None:
        run_id = self.table.current_run_id
        if run_id is None:
            return
        if run_id in self.marked:
            self.marked.discard(run_id)
        else:
            self.marked.add(run_id)
        self.table.set_mark(run_id, run_id in self.marked)
        self.query_one(StatusLine).change(marked=len(self.marked))

    def action_zoom(self) -> None:
        if self.maximized is not None:
            self.minimize()
            return
        pane = self._pane(PANES[self._current_pane()])
        target = self.query_one("#runs-pane") if pane is self.table else pane
        self.maximize(target, container=False)

    def action_diff(self) -> None:
        """Two marked files (space in the tree) or two marked runs (space in the runs)."""
        files = self.file_tree.marked_files
        runs = [self.runs[i] for i in sorted(self.marked) if i in self.runs]
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
            self.app.push_screen(RunDiffScreen(self.pool, old, new, mirrored))
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
        self._load_runs()

    # -- other hosts ---------------------------------------------------------------------

    def hosts_changed(self, changed: bool) -> None:
        """A followed remote answered or failed (``tui.hosts``): say so, reread its rows."""
        text, healthy = self.hosts.status_text()
        self.query_one(StatusLine).change(hosts=text, hosts_ok=healthy)
        if changed:
            self._load_mirrors()

    @work(thread=True, exclusive=True, group="mirrors", exit_on_error=False)
    def _load_mirrors(self) -> None:
        self.post_message(MirrorsLoaded(self.hosts.load_runs()))

    def on_mirrors_loaded(self, message: MirrorsLoaded) -> None:
        """Replace the mirrors' runs (the local index's stay as they are)."""
        if not self.loaded:
            return
        fresh = {run.id: run for run in message.loaded.runs}
        gone = {rid for rid in self.runs if self.hosts.is_remote(rid) and rid not in fresh}
        for run_id in gone:
            self.runs.pop(run_id, None)
            self.marked.discard(run_id)
        self.runs.update(fresh)
        self.root_paths.update(message.loaded.roots)
        self._sync_table()
        tree = self.file_tree
        if tree.run_id is not None and tree.run_id in gone:
            self._follow_cursor()
        elif tree.run_id is not None and tree.run_id in fresh:
            tree.refresh_folders({n.data.key for n in tree._open_folders(tree.root) if n.data})

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
        self.table.flush()
        if str(run_id) not in self.table.rows:
            self._pinned = {run_id}
            self.set_filter("")
        if str(run_id) in self.table.rows:
            self.table.move_cursor(row=self.table.get_row_index(str(run_id)))
            self.table.focus()

    def palette_entries(self) -> list[PaletteEntry]:
        """Every action, namespaced, then one "run: <name>" entry per run."""
        entries: list[PaletteEntry] = [
            ("view: runs", partial(self.action_focus_pane, "runs"), "Focus the runs pane"),
            ("view: files", partial(self.action_focus_pane, "tree"), "Focus the file tree"),
            ("view: preview", partial(self.action_focus_pane, "preview"), "Focus the preview"),
            ("view: zoom pane", self.action_zoom, "Maximize or restore the focused pane"),
            ("view: toggle theme", self.app.action_toggle_theme, "Switch light and dark"),  # type: ignore[attr-defined]
            ("view: help", self.app.action_help, "List every key"),  # type: ignore[attr-defined]
            ("filter: runs…", self.action_filter, "Filter runs by name, params, experiment"),
            ("filter: clear", partial(self.set_filter, ""), "Show every run"),
            ("group: cycle (none, experiment, root)", self.action_cycle_group, "Group runs"),
            ("sort: reverse", self.action_sort_reverse, "Reverse the sort order"),
            ("index: reload runs", self.action_reload, "Reread every run from the index"),
            ("view: retention", self.action_retention, "Plan, disk usage and trash"),
            ("view: disk usage", self.action_disk_usage, "ncdu-like: drill down, trash"),
            ("retention: pin / unpin", self.action_pin, "Pin the selected file or run"),
            ("runs: mark / unmark", self.action_mark, "Mark the run under the cursor"),
            ("view: metrics of marked runs", self.action_metrics, "Metrics, sparklines, plots"),
            ("runs: note…", self.action_note, "Write a note on the run or file"),
            ("diff: marked runs or files", self.action_diff, "Compare two marked runs or files"),
            ("files: mark / unmark", self.file_tree.action_mark_file, "Mark a file for a diff"),
            ("files: versions of the selected file", self.action_versions, "Across runs"),
        ]
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
