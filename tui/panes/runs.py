"""The runs pane: the filter box over the runs table, with the table's state (runs, marks,
filter, sort, grouping, checklists, pins and notes shown in rows) and the workers that read
it (the run list, the mirrors' runs, the checklists).

It tells the screen what it shows with ``RunsPane.Shown`` and lets its workers' messages
(``RunsLoaded``, ``ChecklistsLoaded``, ``MirrorsLoaded``) bubble up after handling them, so
the screen can move the other panes; the screen calls its methods (messages up, calls down).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input
from textual.worker import get_current_worker

from store import paths
from store.index import query
from store.index.events import in_scope
from store.index.views import ReaderPool, last_event
from tui.hosts import Hosts, MirrorsLoaded
from tui.messages import ChecklistsLoaded, IndexChanged, RunsLoaded
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
from tui.workers import SaysWorkerFailures

if TYPE_CHECKING:
    from store.checklist import ChecklistResult
    from store.index.query import RunRow

AGE_REFRESH_SECONDS = 30.0
"""Ages ("5m") in the table drift; re-render changed cells this often."""
MAX_TABLE_ROWS = 1000
"""Rows the runs table holds; beyond this the filter narrows (the index may hold more)."""
ALL_RUNS = -1
"""Held in place of the run ids when every run's checklist was asked for."""
CHECKLIST_SLICE = 50
"""Runs whose checklists one worker step evaluates before it posts them and pauses."""
CHECKLIST_PAUSE = 0.02
"""Seconds the checklist worker sleeps between slices, so the UI thread gets the GIL."""
GROUPS: tuple[str | None, ...] = (None, "experiment", "root")
NEWEST_FIRST = ("started", "last_write", "size", "artifacts", "acc")
"""Columns whose first sort is descending."""


class RunsPane(SaysWorkerFailures, Vertical):
    """The filter box over the runs table; zooms as one piece."""

    ALLOW_MAXIMIZE = True

    @dataclass
    class Shown(Message):
        """What the table shows now (for the status line); ``nothing`` says why it is empty
        (None when it is not); ``follow``: the filter changed, the other panes follow."""

        shown: int
        marked: int
        marked_hidden: int
        filter: str
        sort: str
        nothing: str | None
        follow: bool = False

    def __init__(
        self,
        pool: ReaderPool,
        *,
        clock: Callable[[], float] = time.time,
        hosts: Hosts,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.pool = pool
        self.clock = clock
        self.hosts = hosts
        self.runs: dict[int, RunRow] = {}
        self.root_paths: dict[int, bytes] = {}
        self.marked: set[int] = set()
        self.filter_text = ""
        self.sort_column = "started"
        self.sort_reverse = True
        self.group: str | None = None
        self.last_event = 0
        """The newest change event the runs reflect (a delta up to it is old news)."""
        self.loaded = False
        self.pinned: set[int] = set()
        """Runs jumped to from the palette: shown even past MAX_TABLE_ROWS."""
        self.checklists: dict[int, ChecklistResult] = {}
        self._checklist_request = 0
        self._checklist_seen: dict[int, int] = {}
        """run id -> the checklist request its shown result came from (older ones lose)."""
        self._checklist_errors: set[str] = set()
        self._checklist_asked: set[int] = set()
        """Runs whose checklist is current or requested since the last full load."""
        self._checklists_held: set[int] | None = None
        """Runs whose checklist was asked for while held (``hold_checklists``), or None."""
        self.user_pins: frozenset[tuple[bytes, str]] = frozenset()
        """Exact pins from the user state: (root path, root-relative path)."""
        self.user_notes: dict[tuple[bytes, str], str] = {}
        self._shown = 0
        self._marked_hidden = 0

    def compose(self) -> ComposeResult:
        hosts = " · host:NAME" if self.hosts else ""
        box = Input(
            placeholder=f"filter: words · exp:NAME · root:PATH · fw:NAME{hosts} (esc clears)",
            id="filter",
        )
        box.cursor_blink = False  # steadier over SSH, and stable screenshots
        yield box
        yield RunsTable(id="runs", clock=self.clock, hosts=bool(self.hosts))

    def on_mount(self) -> None:
        self.border_title = "Runs"
        self.load_runs()
        self.set_interval(AGE_REFRESH_SECONDS, self.sync, name="refresh ages")

    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    @property
    def box(self) -> Input:
        return self.query_one("#filter", Input)

    # -- loading -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="runs", exit_on_error=False)
    def load_runs(self) -> None:
        """Every run of the index and of the followed remotes' mirrors."""
        with self.pool.connection() as db:
            last = last_event(db)  # the totals come apart: they pass over every artifact
            runs = query.with_flags(db, query.list_runs(db))
            roots = tuple((rid, path) for rid, path, _ in query.roots(db))
        mirrored = self.hosts.load_runs()
        if get_current_worker().is_cancelled:
            return  # a newer load read a later index: an older one must not replace it
        self.post_message(
            RunsLoaded(tuple(runs) + mirrored.runs, last, roots + mirrored.roots, mirrored.totals)
        )

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        """Replace the runs, then let the message up: the screen moves the other panes."""
        self.runs = {run.id: run for run in message.runs}
        self.root_paths.update(message.roots)
        self.last_event = max(self.last_event, message.last_event)
        self.marked &= set(self.runs)
        self.loaded = True
        self._checklist_asked.clear()  # a reload re-evaluates every run as it is shown
        self.sync()

    @work(thread=True, exclusive=True, group="mirrors", exit_on_error=False)
    def load_mirrors(self) -> None:
        loaded = self.hosts.load_runs()
        if not get_current_worker().is_cancelled:
            self.post_message(MirrorsLoaded(loaded))

    def on_mirrors_loaded(self, message: MirrorsLoaded) -> None:
        """Replace the mirrors' runs (the local index's stay as they are)."""
        if not self.loaded:
            message.stop()
            return
        fresh = {run.id: run for run in message.loaded.runs}
        gone = {rid for rid in self.runs if self.hosts.is_remote(rid) and rid not in fresh}
        for run_id in gone:
            self.runs.pop(run_id, None)
            self.marked.discard(run_id)
        self.runs.update(fresh)
        self.root_paths.update(message.loaded.roots)
        self.sync()

    def index_changed(self, message: IndexChanged) -> tuple[set[int], set[int]] | None:
        """Follow a delta of the change feed: (runs updated, runs gone), or None when the
        delta is older than what the table shows."""
        if message.last_event <= self.last_event:
            return None
        self.last_event = message.last_event
        self.root_paths.update(message.roots)
        fresh = {run.id for run in message.updated}
        if message.full:  # the local index's runs only: a mirror's come with its pulls
            gone = {rid for rid in set(self.runs) - fresh if not self.hosts.is_remote(rid)}
        else:
            gone = set(message.removed)
            covered = in_scope(message.rescanned_folders)
            gone |= {
                rid
                for rid, run in self.runs.items()
                if rid not in fresh
                and (run.root_id in message.rescanned_roots or covered(run.root_id, run.path))
            }
        for run_id in gone:
            self.runs.pop(run_id, None)
            self.marked.discard(run_id)
        for run in message.updated:
            self.runs[run.id] = run
        self._checklist_asked |= fresh
        self.sync()
        if fresh:
            self._load_checklists(tuple(sorted(fresh)))
        return fresh, gone

    # -- what the table shows ------------------------------------------------------------

    def visible_order(self) -> list[int]:
        """The run ids the table shows, in order (filtered, sorted, grouped, capped)."""
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
        wanted = (self.marked | self.pinned) - set(kept)
        return kept + [run_id for run_id in order[MAX_TABLE_ROWS:] if run_id in wanted]

    def marked_shown(self) -> tuple[list[int], int]:
        """The marked runs the table shows, in its order, and how many more the filter
        hides: the actions on marks (diff, metrics) act on what the user sees; the hidden
        ones stay marked for when the filter clears."""
        shown = [run_id for run_id in self.visible_order() if run_id in self.marked]
        return shown, len(self.marked) - len(shown)

    def why_empty(self) -> str:
        """Why the table shows no run: what left none, or that none is indexed."""
        if not self.runs:
            return "no runs indexed yet"
        why = why_nothing_matches(self.runs.values(), self.filter_text, self.hosts.name_of)
        return f"no runs match: {why}"

    def sync(self, *, follow: bool = False) -> None:
        """Make the table show the runs as filtered, sorted and grouped now."""
        if not self.loaded:
            return
        order = self.visible_order()
        headers = group_headers(self.runs, order, self.group)
        self.table.sync(self.runs, order, self.marked, self.row_extras(order), headers)
        wanted = tuple(run_id for run_id in order if run_id not in self._checklist_asked)
        if wanted:  # only shown runs, in display order: the visible rows come first
            self._checklist_asked.update(wanted)
            self._load_checklists(wanted)
        self._shown = len(order)
        self._marked_hidden = len(self.marked - set(order))
        self._tell(follow=follow, nothing=None if order else self.why_empty())

    def _tell(self, *, follow: bool = False, nothing: str | None = None) -> None:
        label = next(c.label for c in COLUMNS if c.key == self.sort_column)
        arrow = "↓" if self.sort_reverse else "↑"
        group = f", grouped by {self.group}" if self.group else ""
        sort = f"{label} {arrow}{group}"
        shown = self._shown
        self.post_message(
            self.Shown(
                shown,
                len(self.marked),
                self._marked_hidden,
                self.filter_text,
                sort,
                nothing,
                follow,
            )
        )

    def row_extras(self, order: list[int]) -> dict[int, RowExtras]:
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

    def show_user_state(
        self, pins: frozenset[tuple[bytes, str]], notes: dict[tuple[bytes, str], str]
    ) -> None:
        """Pins and notes (from the user state) as the rows' marks."""
        same = pins == self.user_pins and notes == self.user_notes
        self.user_pins, self.user_notes = pins, notes
        if not same:
            self.sync()

    # -- checklists ----------------------------------------------------------------------

    def _load_checklists(self, run_ids: tuple[int, ...]) -> None:
        """Checklist results of ``run_ids`` (every run when empty), read in a worker; kept
        for later while checklists are held (``hold_checklists``)."""
        held = self._checklists_held
        if held is not None:
            held.update(run_ids or {ALL_RUNS})
            return
        self._checklist_request += 1
        self._checklist_worker(self._checklist_request, run_ids)

    @property
    def checklists_held(self) -> bool:
        return self._checklists_held is not None

    def hold_checklists(self, hold: bool) -> None:
        """Hold checklists back while a new root's first scan writes its runs, then check
        every run asked for meanwhile.  A run comes in before its summaries are read (and
        its files in chunks): checked then, it would show what it misses so far as what it
        misses, and each chunk would check it again, on the GIL the scan needs."""
        if hold:
            if self._checklists_held is None:
                self._checklists_held = set()
            return
        held, self._checklists_held = self._checklists_held, None
        if held:
            self._load_checklists(() if ALL_RUNS in held else tuple(sorted(held)))

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
        """Keep the newest result of each run and redraw its row; the message goes on up
        (the file tree's root line shows what its run misses)."""
        for run_id, result in message.results:
            if self._checklist_seen.get(run_id, -1) <= message.request:
                self._checklist_seen[run_id] = message.request
                self.checklists[run_id] = result
        for error in set(message.errors) - self._checklist_errors:
            self._checklist_errors.add(error)
            self.notify(error, title="checklist", severity="warning", markup=False, timeout=8)
        shown = [run_id for run_id, _ in message.results if run_id in self.runs]
        self.table.refresh_rows(self.runs, shown, self.marked, self.row_extras(shown))

    # -- filter, sort, group, marks ------------------------------------------------------

    def open_filter(self) -> None:
        """Show the filter box and focus it at once, as a pane switch does: the letters
        after "/" (one burst over SSH) are already queued and belong to the box."""
        box = self.box
        box.add_class("-shown")
        self.screen.set_focus(box)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        # Never write back to the box here: queued Changed events would ping-pong.
        if event.value.strip() != self.filter_text:
            self._apply_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        box = self.box
        if not box.value:
            box.remove_class("-shown")
        self.table.focus()

    def set_filter(self, text: str) -> None:
        """Show only runs matching ``text`` (see ``runs_table.matches``)."""
        box = self.box
        with box.prevent(Input.Changed):
            box.value = text
        box.set_class(bool(text) or box.has_focus, "-shown")
        self._apply_filter(text)

    def _apply_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self.sync(follow=True)

    def clear_filter(self) -> bool:
        """Escape: clear and hide the filter; False when there was none to clear."""
        box = self.box
        if not (box.has_focus or self.filter_text):
            return False
        self.set_filter("")
        box.remove_class("-shown")
        self.table.focus()
        return True

    def set_sort(self, column: str, *, reverse: bool | None = None) -> None:
        if column not in SORT_KEYS:
            return
        if reverse is None:
            reverse = column in NEWEST_FIRST
        self.sort_column, self.sort_reverse = column, reverse
        self.sync()

    def sort_next(self) -> None:
        index = (SORT_KEYS.index(self.sort_column) + 1) % len(SORT_KEYS)
        self.set_sort(SORT_KEYS[index])

    def sort_reversed(self) -> None:
        self.set_sort(self.sort_column, reverse=not self.sort_reverse)

    @on(DataTable.HeaderSelected, "#runs")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        """A click on a column's header sorts by it; again reverses."""
        column = str(event.column_key.value)
        if column == self.sort_column:
            self.sort_reversed()
        else:
            self.set_sort(column)

    def cycle_group(self) -> None:
        self.group = GROUPS[(GROUPS.index(self.group) + 1) % len(GROUPS)]
        self.sync()

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

    def cycle_experiment(self) -> None:
        self._cycle_field("exp:", self.experiments())

    def cycle_root(self) -> None:
        roots = sorted({paths.display(p).lower() for p in self.root_paths.values()})
        self._cycle_field("root:", [r for r in roots if " " not in r])

    def toggle_mark(self) -> None:
        """Mark or unmark the run under the cursor."""
        run_id = self.table.current_run_id
        if run_id is None:
            return
        if run_id in self.marked:
            self.marked.discard(run_id)
        else:
            self.marked.add(run_id)
        self.table.set_mark(run_id, run_id in self.marked)
        self._tell()

    def jump_to_run(self, run_id: int) -> None:
        """Put the cursor on a run, clearing the filter if it hides it."""
        table = self.table
        table.flush()
        if str(run_id) not in table.rows:
            self.pinned = {run_id}
            self.set_filter("")
        if str(run_id) in table.rows:
            table.move_cursor(row=table.get_row_index(str(run_id)))
            table.focus()
