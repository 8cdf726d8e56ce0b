"""The retention view: the plan for the current policy, disk usage, and the trash.

Threading rule as in the explorer: planning, usage, pins, apply and restore each run in a
thread worker of their own group and post one of the messages below; the handlers here
own the state and the tables.  Nothing is deleted from here: apply moves to the trash.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, ProgressBar, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from store import paths
from store.errors import ArtlensError
from store.index.views import ReaderPool
from store.retention import service
from store.retention.audit import AuditRecord
from store.retention.candidates import Candidate
from store.retention.drill import NOT_RECORDED, outside_runs, unread_note
from store.retention.plan import (
    LIVE_NEWEST,
    NO_RULE,
    OVER_BUDGET,
    PINNED,
    TRAINER_BEST_PREFIX,
    Plan,
    grouped_warnings,
)
from store.retention.policy import Policy
from store.retention.service import Planned
from store.retention.trash import (
    Report,
    TrashEntry,
)
from store.retention.usage import DuplicateGroup, RootUsage, overlap_note
from store.safetext import visible
from tui.commands import PaletteEntry
from tui.format import fit_apart, human_age, human_size
from tui.messages import IndexChanged
from tui.screens.retention_dialogs import ConfirmApply, PolicyPicker
from tui.widgets.clamped import ClampedStatic
from tui.widgets.footer import FittingFooter
from tui.workers import SaysWorkerFailures

ROLE = "retention (artlens)"
"""How the writer lock names this view while it applies or restores."""
FOLLOW_UP_SECONDS = 60.0
"""When another writer (the watcher) records an apply, read the trash and measure the
disk usage again on each index change for this long (the moves reach the index in one or
more of its commits, which on a loaded machine can come well after the files moved).
The plan follows every index change anyway (``on_index_changed``)."""
REPLAN_SPACING = 2.0
"""After a plan, idle this many times as long as it took before planning the index's next
change: a live run commits several times a second, and a plan over a million artifacts
takes seconds (the last change is always planned)."""
MAX_USAGE_ROWS = 200
"""Runs and duplicate groups listed in the usage tab (largest first)."""
MAX_PLAN_ROWS = 2000
"""Rows of the plan table (runs and their checkpoints, in the plan's order); a last row
says how many more there are.  A plan over a big root holds hundreds of thousands of
checkpoints: a row each took half a minute of the UI thread and hundreds of MB."""
MORE_KEY = "more"
"""The key of the plan table's last row when rows were left out (no run's or item's key
is without a NUL)."""
MAX_SUMMARY_NOTES = 50
"""Warnings, and link notes, listed in the summary each; past it one line counts the rest
(``artlens retention plan`` prints every one)."""
PLAN_NAME_WIDTH = 28
"""Cells of the plan's checkpoint column (the reasons take the rest)."""
TRASH_PATH_WIDTH = 40
"""Cells of the trash's path column: a longer path keeps its end (the checkpoint's name),
cut so that no two read alike; past the screen's edge, ``…step=95`` read as another step."""
TABS = ("plan-tab", "usage-tab", "trash-tab")
UNREAD_MARK = "?"
"""After a total that leaves out what the scans could not read (the note says what)."""
UNREAD_STYLE = "bold yellow"

REASON_STYLES: tuple[tuple[str, str, str], ...] = (
    (PINNED, "bold magenta", "pinned"),
    ("best ", "cyan", "best by metric"),
    (TRAINER_BEST_PREFIX, "cyan", "trainer's best"),
    ("latest ", "green", "latest N"),
    ("younger than", "yellow", "younger than"),
    (LIVE_NEWEST, "bold green", "live run's newest"),
    ("within budget", "green", "within budget"),
    (OVER_BUDGET, "bold red", "over budget"),
    ("kept by no rule", "red", "no rule keeps it"),
    (NO_RULE, "dim", "no policy"),
)
"""(reason prefix, style, legend label): how each kind of reason is coloured."""


def reason_style(reason: str) -> str:
    for prefix, style, _ in REASON_STYLES:
        if reason.startswith(prefix):
            return style
    return ""


def reasons_text(reasons: list[str]) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for index, reason in enumerate(reasons):
        if index:
            text.append("; ", style="dim")
        text.append(paths.display(reason), style=reason_style(reason))
    return text


# -- messages --------------------------------------------------------------------------------


PlanRow = tuple[str, tuple[Any, ...]]
"""A row of the plan table: its key and its cells."""


@dataclass
class PlanReady(Message):
    """A fresh plan, with the policy of every root (replaces older ones), and what shows
    it: its summary and the plan table's rows, made on the worker's thread."""

    planned: Planned
    summary: Text
    rows: list[PlanRow]
    generation: int = 0
    """The request it answers: one older than the latest asked for is never shown."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PlanReady)


@dataclass
class UsageMeasured(Message):
    """Disk usage and duplicates, measured after the plan showed (replaces older ones)."""

    usage: tuple[RootUsage, ...]
    dups: tuple[DuplicateGroup, ...]

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, UsageMeasured)


@dataclass
class TrashLoaded(Message):
    entries: tuple[TrashEntry, ...]
    audit: tuple[tuple[str, AuditRecord], ...] = ()
    """(root, record) of every root's audit log, newest last."""
    problems: tuple[str, ...] = ()

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrashLoaded)


@dataclass
class PinToggled(Message):
    text: str
    changed: bool


@dataclass
class ApplyProgress(Message):
    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ApplyProgress)


@dataclass
class ApplyDone(Message):
    verb: str
    report: Report
    index_updated: bool
    notes: tuple[str, ...] = field(default=())
    batches: tuple[tuple[str, str], ...] = field(default=())
    """``(bucket URL, batch id)`` of each bucket trash batch an apply made."""


# -- the screen ------------------------------------------------------------------------------


ACTION_TABS = {"pin": "plan-tab", "restore_all": "trash-tab"}
"""Actions on rows of one tab, and that tab: disabled while another tab shows."""


class RetentionScreen(SaysWorkerFailures, Screen[None]):
    """Plan (keep/remove and why), disk usage like ncdu, and the trash with restore."""

    CSS_PATH = "retention.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="retention.back", tooltip="Back to the explorer"),
        Binding("1", "tab('plan-tab')", "Plan", show=False, id="retention.plan"),
        Binding("2", "tab('usage-tab')", "Usage", show=False, id="retention.usage"),
        Binding("3", "tab('trash-tab')", "Trash", show=False, id="retention.trash"),
        Binding("p", "pin", "Pin", id="retention.pin", tooltip="Pin or unpin the item or run"),
        Binding("a", "apply", "Apply", id="retention.apply", tooltip="Move removals to trash"),
        Binding("o", "policy", "Policy", id="retention.policy", tooltip="Ad-hoc policy"),
        Binding("c", "clear_policy", "File policy", show=False, id="retention.clear_policy"),
        Binding("u", "restore", "Restore", id="retention.restore", tooltip="Restore from trash"),
        Binding("U", "restore_all", "Restore all", show=False, id="retention.restore_all"),
        Binding("ctrl+r", "refresh", "Refresh", show=False, id="retention.refresh"),
        Binding("question_mark", "help", "Help", show=False, id="retention.help"),
    ]

    def __init__(
        self,
        db_path: Path,
        pool: ReaderPool,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.db_path = db_path
        self.pool = pool
        self.clock = clock
        self.plan: Plan | None = None
        self.policies: dict[str, Policy] = {}
        self.adhoc: Policy | None = None
        """A policy picked in this view; None means each root's own policy."""
        self.trash: dict[str, TrashEntry] = {}
        self.applying = False
        self._plan_keys: list[str] = []
        self._plan_asked = 0
        """Plans asked for (a refresh, a policy picked, a pin): the newest's number."""
        self._plan_shown = -1
        """The number of the plan shown; below ``_plan_asked`` while a newer one is made."""
        self._plan_needed = 0
        """The number of the plan asked for under the policy or pins just replaced (or a
        refresh): until it (or a newer one) shows, ``a`` must not apply the older plan.
        A replan because the index changed does not raise it: the plan shown is still
        under the same policy and pins, and an apply re-checks every item."""
        self._plan_failed = -1
        """The number of the last plan that failed: ``a`` offers nothing after it."""
        self._replan_pending = False
        """The index changed while a plan was being made: plan again once it is done."""
        self._plan_began = self._plan_done_at = self._plan_cost = 0.0
        self._replan_timer: Timer | None = None
        self._follow_until = 0.0
        """Until then, each index change plans again (another writer records an apply)."""
        self._usage_stale = True
        """Measure the disk usage again once the next plan shows (a refresh, an apply)."""

    def compose(self) -> ComposeResult:
        # Scrolls (tab to it): every warning of the plan can be read, whatever its length.
        with VerticalScroll(id="ret-summary-box"):
            yield Static(Text("planning…", style="dim"), id="ret-summary", markup=False)
        with TabbedContent(initial="plan-tab", id="ret-tabs"):
            with TabPane("Plan", id="plan-tab"):
                said = self._legend()
                legend = ClampedStatic(said, id="ret-legend", markup=False)
                legend.tooltip = said.plain  # cut to its lines with a "…"
                yield legend
                yield DataTable(id="ret-plan", cursor_type="row", zebra_stripes=False)
            with TabPane("Disk usage", id="usage-tab"):
                yield ClampedStatic(id="ret-usage-note", markup=False)
                yield DataTable(id="ret-usage", cursor_type="row")
            with TabPane("Trash", id="trash-tab"):
                yield DataTable(id="ret-trash", cursor_type="row")
                yield ClampedStatic(id="ret-audit", markup=False)
        yield ProgressBar(id="ret-progress", show_eta=False)
        yield FittingFooter()

    def on_mount(self) -> None:
        plan_table = self.query_one("#ret-plan", DataTable)
        for label, width in (
            ("checkpoint", PLAN_NAME_WIDTH),
            ("size", 7),
            ("", 6),
            ("why", None),
        ):
            plan_table.add_column(label, key=label or "decision", width=width)
        plan_table.add_column("expires", key="expires")
        usage = self.query_one("#ret-usage", DataTable)
        for label in ("size", "share", "what"):
            usage.add_column(label, key=label)
        usage.add_row("", "", Text("measuring… (after the plan)", style="dim"))
        trash = self.query_one("#ret-trash", DataTable)
        for label in ("id", "trashed", "size", "path", "why"):
            trash.add_column(label, key=label, width=TRASH_PATH_WIDTH if label == "path" else None)
        plan_table.focus()
        self.action_refresh()

    # -- workers ---------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.query_one("#ret-summary", Static).update(Text("planning…", style="dim"))
        self._usage_stale = True
        self._replan()
        self._trash_worker()

    def _replan(self, *, needed: bool = True) -> None:
        """Plan again under the current policy; until it shows, ``a`` applies nothing
        (``needed``: the policy or pins changed; else the index did, ``_follow_index``)."""
        self._replan_pending = False
        self._plan_began = time.monotonic()
        self._plan_asked += 1
        if needed:
            self._plan_needed = self._plan_asked
        self._plan_worker(self.adhoc, self._plan_asked)

    def _planning(self) -> bool:
        """A plan is being made (the newest asked for neither showed nor failed)."""
        return self._plan_asked not in (self._plan_shown, self._plan_failed)

    def _follow_index(self) -> None:
        """The index changed (a run wrote a checkpoint, one was deleted, a scan ended):
        plan again, so the plan and its totals are what ``artlens retention plan`` says
        now.  At most one plan is made at a time: changes while one is made ask for one
        more after it, however many there were."""
        if self._planning():
            self._replan_pending = True
            return
        wait = self._plan_done_at + REPLAN_SPACING * self._plan_cost - time.monotonic()
        if wait > 0:  # a live run commits often: the newest change is planned after it
            if self._replan_timer is None:
                self._replan_timer = self.set_timer(wait, self._replan_after_wait)
            return
        self._replan(needed=False)

    def _replan_after_wait(self) -> None:
        self._replan_timer = None
        self._follow_index()

    def _plan_ended(self) -> None:
        """A plan showed or failed: the index changes meanwhile are planned (spaced)."""
        self._plan_done_at = time.monotonic()
        self._plan_cost = self._plan_done_at - self._plan_began
        if self._replan_pending:
            self._replan_pending = False
            self._follow_index()

    @work(thread=True, exclusive=True, group="retention-plan", exit_on_error=False)
    def _plan_worker(self, adhoc: Policy | None, generation: int) -> None:
        with self.pool.connection() as db:
            planned = service.make(db, adhoc=adhoc)
        rows = plan_rows(planned.plan, MAX_PLAN_ROWS)
        if not get_current_worker().is_cancelled:  # a newer plan asked for: never show this
            self.post_message(PlanReady(planned, summary_text(planned), rows, generation))

    @work(thread=True, exclusive=True, group="retention-usage", exit_on_error=False)
    def _usage_worker(self) -> None:
        """Started once a plan shows: an lstat per file takes seconds at a million files,
        which the plan tab never waits for, nor shares its core with."""
        with self.pool.connection() as db:
            usage, dups = service.usage(db)
        if not get_current_worker().is_cancelled:
            self.post_message(UsageMeasured(usage, dups))

    @work(thread=True, exclusive=True, group="retention-trash", exit_on_error=False)
    def _trash_worker(self) -> None:
        with self.pool.connection() as db:
            roots = service.indexed_roots(db)
        trashes = service.read_trashes(roots, audit=True)
        entries = tuple(entry for _, entry in trashes.entries)
        if not get_current_worker().is_cancelled:  # a newer read of the trashes was asked for
            self.post_message(TrashLoaded(entries, trashes.audit, trashes.problems))

    @work(thread=True, group="retention-pin", exit_on_error=False)
    def _pin_worker(self, root: str, rel: str) -> None:
        text, changed = service.toggle_pin(root, rel)
        self.post_message(PinToggled(text, changed))

    def _progress(self, done: int, total: int, _path: str) -> None:
        self.post_message(ApplyProgress(done, total))

    @work(thread=True, exclusive=True, group="retention-apply", exit_on_error=False)
    def _apply_worker(self, plan: Plan) -> None:
        try:
            plan.save()
            done = service.apply(plan, self.db_path, role=ROLE, progress=self._progress)
        except ArtlensError as exc:  # not an owner, an unsafe trash: nothing moved
            self.post_message(ApplyDone("trashed", Report(), False, (str(exc),)))
            return
        self.post_message(
            ApplyDone("trashed", done.report, done.index_updated, batches=done.batches)
        )

    @work(thread=True, exclusive=True, group="retention-apply", exit_on_error=False)
    def _restore_worker(
        self, wanted: dict[str, list[str] | None], batches: dict[str, list[str]] | None = None
    ) -> None:
        """Restore ``wanted`` (a folder root's trash ids, or None: all of it) and
        ``batches`` (a bucket root's trash batches, restored whole, as
        `artlens trash restore BATCH --root URL` does)."""
        which: dict[str, list[str] | Literal["all"]] = {
            root: "all" if ids is None else ids for root, ids in wanted.items()
        }
        try:
            done = service.restore_items(self.db_path, which, role=ROLE, progress=self._progress)
            for url, ids in (batches or {}).items():
                more = service.restore_buckets(self.db_path, [url], ids, role=ROLE)
                done.report.done += more.report.done
                done.report.skipped += more.report.skipped
        except ArtlensError as exc:
            self.post_message(ApplyDone("restored", Report(), False, (str(exc),)))
            return
        self.post_message(ApplyDone("restored", done.report, done.index_updated))

    # -- handlers --------------------------------------------------------------------------

    def on_plan_ready(self, message: PlanReady) -> None:
        if message.generation != self._plan_asked:
            return  # finished as a newer plan was asked for: that one shows
        self._plan_shown = message.generation
        self._plan_ended()  # the index changed while this plan was made: plan it
        planned = message.planned
        self.plan = planned.plan
        self.policies = planned.policies
        self.query_one("#ret-summary", Static).update(message.summary)
        self._fill_plan(message.rows)
        if self._usage_stale:
            self._usage_stale = False
            self._usage_worker()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A plan that failed leaves no plan shown: the summary says so (the app notifies
        the error), rather than "planning…" over the older plan's rows.  An apply or
        restore that failed ends as one that is done."""
        if event.worker.group == "retention-plan" and event.state == WorkerState.ERROR:
            self._plan_failed = self._plan_asked
            error = " ".join(str(event.worker.error).split())[:200]
            text = Text(f"could not plan: {visible(error)}", style="bold red")
            text.append("  (ctrl+r: plan again; the rows below are an older plan)", style="dim")
            self.query_one("#ret-summary", Static).update(text)
            self._plan_ended()  # the index changed since: that plan may work
        elif event.worker.group == "retention-apply" and event.state in (
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            # an error of no kind the worker expects (the app says which): no ApplyDone
            # comes, and what moved before it is read again
            self._apply_ended()
            self.action_refresh()

    def on_usage_measured(self, message: UsageMeasured) -> None:
        self._fill_usage(message.usage, message.dups)

    def on_index_changed(self, message: IndexChanged) -> None:
        """The app hands every change-feed delta to each screen: the plan follows every
        change of the index (a plan of checkpoints that are gone, or without those just
        written, is not the plan); while another writer records our apply, the trash and
        the disk usage are read again too; another process's trash, restore or purge
        reloads the trash tab."""
        if message.last_event or message.full:
            self._follow_index()
        if time.monotonic() < self._follow_until:
            self._usage_stale = True
            self._trash_worker()
        elif message.trash_roots or message.full:
            self._trash_worker()

    def on_trash_loaded(self, message: TrashLoaded) -> None:
        table = self.query_one("#ret-trash", DataTable)
        current = self._current_key(table)
        self.trash = {entry.id: entry for entry in message.entries}
        table.clear()
        now = time.time()
        shown = paths.shown_names([e.path for e in message.entries])  # look-alikes apart
        # cut to the column keeping the end, so that two never read alike
        names = fit_apart(
            [
                name + ("/" if e.is_dir else "")
                for e, name in zip(message.entries, shown, strict=True)
            ],
            TRASH_PATH_WIDTH,
            keep_ends=True,
        )
        for entry, name in zip(message.entries, names, strict=True):
            bucket = entry.method == service.BUCKET_METHOD
            table.add_row(
                # a bucket's trash is restored by batch: the batch's own part of its id
                paths.display(entry.batch[-8:]) if bucket else entry.id[:8],
                f"{human_age(entry.trashed_at, now)} ago",
                human_size(entry.size),
                Text(name, no_wrap=True),
                _bucket_why(entry) if bucket else reasons_text(entry.reasons),
                key=entry.id,
            )
        if not message.entries:
            # a trash that could not be read is never shown as an empty one
            empty = "nothing listed: a trash could not be read (below)"
            text = (
                Text(empty, style="yellow")
                if message.problems
                else Text("the trash is empty", style="dim")
            )
            table.add_row("", "", "", text, "", key="")
        self._restore_cursor(table, current)
        self.query_one("#ret-audit", Static).update(_audit_text(message.audit, message.problems))

    def on_pin_toggled(self, message: PinToggled) -> None:
        self.notify(message.text, markup=False, timeout=3)
        if message.changed:
            self._replan()

    def on_apply_progress(self, message: ApplyProgress) -> None:
        bar = self.query_one("#ret-progress", ProgressBar)
        bar.update(total=message.total, progress=message.done)

    def _apply_ended(self) -> None:
        self.applying = False
        self.query_one("#ret-progress", ProgressBar).remove_class("-shown")

    def on_apply_done(self, message: ApplyDone) -> None:
        self._apply_ended()
        report = message.report
        if message.notes:
            self.notify(" ".join(message.notes[0].split()), markup=False, severity="error")
            self.action_refresh()
            return
        text = (
            f"{message.verb} {len(report.done)} ({human_size(report.bytes_done)}), "
            f"skipped {len(report.skipped)}"
        )
        if report.skipped:
            first = report.skipped[0]
            text += f": {paths.display(first.path)}: {paths.display(first.reason)}"
        if not message.index_updated:
            text += " (the index's watcher records the moves)"
        for url, batch in message.batches:  # a bucket keeps its trash in itself
            text += (
                f"; {paths.display(url)}: batch {paths.display(batch)} (restore with "
                f"`artlens trash restore {paths.display(batch)} --root URL`)"
            )
        self.notify(
            text, markup=False, timeout=6, severity="warning" if report.skipped else "information"
        )
        self.action_refresh()
        if not message.index_updated:
            # The watcher records the moves a moment later: plan again once it has.
            self._follow_until = time.monotonic() + FOLLOW_UP_SECONDS
        if message.verb == "trashed":
            self.action_tab("trash-tab")

    # -- rendering -------------------------------------------------------------------------

    def _legend(self) -> Text:
        text = Text()
        text.append("keep", style="bold green")
        text.append(" / ")
        text.append("remove", style="bold red")
        text.append(" because: ")
        for index, (_, style, label) in enumerate(REASON_STYLES):
            if index:
                text.append(" · ", style="dim")
            text.append(label, style=style)
        return text

    def _fill_plan(self, rows: list[PlanRow]) -> None:
        table = self.query_one("#ret-plan", DataTable)
        current = self._current_key(table)
        keys = [key for key, _ in rows]
        columns = ("checkpoint", "size", "decision", "why", "expires")
        if keys == self._plan_keys:
            # Same rows: update the cells in place, so the cursor and scroll stay put.
            with self.app.batch_update():
                for key, cells in rows:
                    for column, cell in zip(columns, cells, strict=True):
                        if table.get_cell(key, column) != cell:  # a replan per change
                            table.update_cell(key, column, cell)
        else:
            table.clear()
            for key, cells in rows:
                table.add_row(*cells, key=key)
            if not rows:
                table.add_row(
                    Text("no checkpoints found under the indexed roots", style="dim"),
                    "",
                    "",
                    "",
                    "",
                    key="",
                )
            self._plan_keys = keys
            self._restore_cursor(table, current)

    def _fill_usage(self, usage: tuple[RootUsage, ...], dups: tuple[DuplicateGroup, ...]) -> None:
        table = self.query_one("#ret-usage", DataTable)
        table.clear()
        total = sum(u.size for u in usage) or 1

        def bar(size: int, whole: int) -> Text:
            share = size / whole if whole else 0.0
            filled = round(share * 10)
            return Text("█" * filled + "░" * (10 - filled), style="cyan")

        # names that print alike (cafe in NFC and in NFD) spelled apart in each listing
        for root, root_name in zip(usage, paths.shown_names([u.root for u in usage]), strict=True):
            table.add_row(
                _size(root.size, root.unreadable is None or bool(root.unreadable)),
                bar(root.size, total),
                Text(root_name + _on_disk(root.disk, root.size), style="bold"),
            )
            experiments = root.experiments[:MAX_USAGE_ROWS]
            names = paths.shown_names([e.label for e in experiments])
            for experiment, name in zip(experiments, names, strict=True):
                table.add_row(
                    _size(experiment.size, bool(experiment.unreadable)),
                    bar(experiment.size, root.size),
                    Text("  experiment " + name),
                )
            runs = root.runs[:MAX_USAGE_ROWS]
            for run, name in zip(runs, paths.shown_names([r.label for r in runs]), strict=True):
                table.add_row(
                    _size(run.size, bool(run.unreadable)),
                    bar(run.size, root.size),
                    Text("    " + name + _on_disk(run.disk, run.size)),
                )
            if root.outside_runs:
                table.add_row(
                    _size(root.outside_runs, bool(_outside_unread(root))),
                    bar(root.outside_runs, root.size),
                    Text("    (outside any run)", style="dim"),
                )
        note = self.query_one("#ret-usage-note", Static)
        text = usage_note(usage)
        note.update(text)
        note.tooltip = Text(text.plain) if text.plain else None
        note.set_class(bool(text.plain), "-shown")
        reclaimable = sum(g.reclaimable for g in dups)
        header = Text(
            f"duplicates by content hash: {human_size(reclaimable)} reclaimable", style="bold"
        )
        table.add_row("", "", header)
        for group in dups[:MAX_USAGE_ROWS]:
            where = ", ".join(paths.shown_names([p for _, p in group.copies[:3]]))
            more = f" +{len(group.copies) - 3}" if len(group.copies) > 3 else ""
            table.add_row(
                human_size(group.reclaimable),
                Text(f"{len(group.copies)} copies", style="yellow"),
                Text(f"  {where}{more}"),
            )

    @staticmethod
    def _current_key(table: DataTable[Any]) -> str | None:
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # an empty or just-cleared table
            return None

    @staticmethod
    def _restore_cursor(table: DataTable[Any], key: str | None) -> None:
        if key is not None and key in table.rows:
            table.move_cursor(row=table.get_row_index(key))

    # -- actions ---------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        self.query_one("#ret-tabs", TabbedContent).active = tab
        table_id = {"plan-tab": "#ret-plan", "usage-tab": "#ret-usage", "trash-tab": "#ret-trash"}
        self.query_one(table_id[tab], DataTable).focus()

    def _active_tab(self) -> str | None:
        try:
            return self.query_one("#ret-tabs", TabbedContent).active or None
        except NoMatches:  # not composed yet
            return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``p`` pins the plan's row under the cursor and ``U`` restores the whole trash:
        each only from the tab that shows what it acts on (elsewhere shown disabled), so
        that no key acts on rows the user cannot see."""
        tab = ACTION_TABS.get(action)
        if tab is None:
            return True
        return True if self._active_tab() == tab else None

    @on(TabbedContent.TabActivated, "#ret-tabs")
    def _tab_shown(self) -> None:
        self.refresh_bindings()

    def action_pin(self) -> None:
        if self._active_tab() != "plan-tab":  # e.g. from the palette: show the plan first
            self.action_tab("plan-tab")
            return
        key = self._current_key(self.query_one("#ret-plan", DataTable))
        if not key:
            return
        if key == MORE_KEY:
            self.notify("`artlens retention plan` lists the checkpoints left out here", timeout=4)
            return
        kind, root, rel = key.split("\0", 2)
        if kind == "run" and not rel:
            self.notify("a run at the root itself cannot be pinned; pin its checkpoints", timeout=4)
            return
        self._pin_worker(root, rel)

    def action_apply(self) -> None:
        plan = self.plan
        if plan is None or self.applying:
            return
        if self._plan_shown < self._plan_needed or self._plan_failed > self._plan_shown:
            # The plan shown was made under the policy or pins just replaced (or the
            # newest plan failed: the summary says so).
            self.notify("planning…: apply once the new plan shows", markup=False, timeout=4)
            return
        removals = plan.removals
        if not removals:
            self.notify("nothing to remove under the current policy", timeout=4)
            return
        runs = {(item.root, item.run_path) for item in removals}
        roots = sorted({item.root for item in removals})
        text = Text()
        text.append("Move to the trash\n\n", style="bold")
        text.append(
            f"{len(removals)} checkpoint(s), {human_size(plan.bytes_freed)}", style="bold red"
        )
        text.append(f", from {len(runs)} run(s) under\n")
        for root in roots:
            text.append(f"  {paths.display(root)}\n")
        notes = [*grouped_warnings(plan.warnings), *plan.links]
        if notes:  # e.g. folders no one could read: what they hold is in no plan
            first = " ".join(visible(notes[0]).split())
            text.append(
                f"\n⚠ {len(notes)} warning{'s' if len(notes) != 1 else ''} (the plan tab lists "
                f"them), the first: {first if len(first) <= 160 else first[:159] + '…'}\n",
                style="yellow",
            )
        text.append(
            "\nEach is re-checked first; anything changed since the plan or still being "
            "written is skipped.  Nothing is deleted: restore from the Trash tab; the space "
            "is freed by `artlens trash purge`.\n",
            style="dim",
        )
        self.app.push_screen(ConfirmApply(text), partial(self._confirmed, plan))

    def _confirmed(self, plan: Plan, yes: bool | None) -> None:
        if not yes:
            return
        self.applying = True
        bar = self.query_one("#ret-progress", ProgressBar)
        bar.update(total=len(plan.removals), progress=0)
        bar.add_class("-shown")
        self._apply_worker(plan)

    def action_policy(self) -> None:
        self.app.push_screen(PolicyPicker(self.adhoc), self._policy_picked)

    def _policy_picked(self, policy: Policy | None) -> None:
        self.adhoc = policy
        self.action_refresh()

    def action_clear_policy(self) -> None:
        if self.adhoc is not None:
            self.adhoc = None
            self.action_refresh()

    def action_restore(self) -> None:
        if self._active_tab() != "trash-tab":
            # Show the trash: restore what the cursor is on there, never an unseen row.
            self.action_tab("trash-tab")
            return
        key = self._current_key(self.query_one("#ret-trash", DataTable))
        entry = self.trash.get(key or "")
        if entry is None or self.applying:
            return
        self.applying = True
        if entry.method == service.BUCKET_METHOD:  # a bucket's trash comes back by batch
            self._restore_worker({}, {entry.root: [entry.batch]})
        else:
            self._restore_worker({entry.root: [entry.id]})

    def action_restore_all(self) -> None:
        if self._active_tab() != "trash-tab":
            self.action_tab("trash-tab")
            return
        if not self.trash or self.applying:
            return
        self.applying = True
        self.query_one("#ret-progress", ProgressBar).add_class("-shown")
        entries = self.trash.values()
        batches: dict[str, list[str]] = {}
        for e in entries:
            if e.method == service.BUCKET_METHOD and e.batch not in batches.get(e.root, []):
                batches.setdefault(e.root, []).append(e.batch)
        local = {e.root for e in entries if e.method != service.BUCKET_METHOD}
        self._restore_worker(dict.fromkeys(local), batches)

    def action_help(self) -> None:
        from tui.keys import help_rows
        from tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(help_rows(self.app, self)))

    def palette_entries(self) -> list[PaletteEntry]:
        return [
            ("retention: plan", partial(self.action_tab, "plan-tab"), "Keep/remove and why"),
            ("retention: disk usage", partial(self.action_tab, "usage-tab"), "Sizes, duplicates"),
            ("retention: trash", partial(self.action_tab, "trash-tab"), "Trashed items"),
            ("retention: pin / unpin", self.action_pin, "Pin the item or run under the cursor"),
            ("retention: apply…", self.action_apply, "Move the removals to the trash"),
            ("retention: ad-hoc policy…", self.action_policy, "Keep last N / best K"),
            ("retention: file policy", self.action_clear_policy, "Drop the ad-hoc policy"),
            ("retention: refresh", self.action_refresh, "Plan again"),
            ("trash: restore selected", self.action_restore, "Restore the trash item"),
            ("trash: restore all", self.action_restore_all, "Restore everything trashed"),
            ("view: back to the explorer", self.action_back, ""),
        ]


def summary_text(message: Planned) -> Text:
    """The plan tab's summary: policy errors, what goes and what is freed with the count of
    warnings, the policies, then every warning and link note.  What the plan does and that
    it has warnings come first: at 80x24 the box shows five lines (it scrolls for the rest),
    and a warning cut off there must not read as a plan without one."""
    plan = message.plan
    text = Text()
    for error in message.errors:
        text.append(f"policy error: {paths.display(error)}\n", style="bold red")
    removals = plan.removals
    text.append(f"remove {len(removals)}", style="bold red" if removals else "")
    text.append(f" ({human_size(plan.bytes_freed)} reclaimable)")
    kept = sum(1 for item in plan.items if item.keep)
    text.append(f" · keep {kept}", style="green")
    for fs in plan.filesystems:
        after = "unknown" if fs.free_after_purge is None else human_size(fs.free_after_purge)
        text.append(f" · free {human_size(fs.free_now)} → {after} after purge")
    soon = message.expiring()
    if soon:
        text.append(f" · {len(soon)} expiring soon", style="yellow")
    warnings = grouped_warnings(plan.warnings)
    notes = len(warnings) + len(plan.links)
    if notes:
        text.append(f" · ⚠ {notes} warning{'s' if notes != 1 else ''}", style="bold yellow")
        text.append(" (below)", style="dim")
    ruled = [r for r in plan.roots if message.policies.get(r.root, Policy()).removes_anything()]
    if not plan.roots:
        text.append("\nno roots indexed", style="dim")
    elif not ruled:
        text.append("\nno policy: keeping everything", style="bold")
        text.append(
            "  (o: a quick keep-last / keep-best policy; or add [retention] to ROOT/.artlens.toml)",
            style="dim",
        )
    else:
        source = "ad-hoc (c: back to the file policy)" if message.adhoc else "policy"
        for root in plan.roots:
            text.append(f"\n{source}: ", style="dim")
            text.append(paths.display(root.policy))
            text.append(f"  {paths.display(root.root)}", style="dim")
    for warning in warnings[:MAX_SUMMARY_NOTES]:
        text.append(f"\n{paths.display(warning)}", style="yellow")
    for link in plan.links[:MAX_SUMMARY_NOTES]:  # e.g. last.ckpt: never counted, and its target
        text.append(f"\n{paths.display(link)}", style="yellow" if "dangle" in link else "dim")
    left = max(0, len(warnings) - MAX_SUMMARY_NOTES) + max(0, len(plan.links) - MAX_SUMMARY_NOTES)
    if left:
        text.append(
            f"\n… {left} more warning(s) not listed here: `artlens retention plan` prints all",
            style="yellow",
        )
    return text


def plan_rows(plan: Plan, limit: int = MAX_PLAN_ROWS) -> list[PlanRow]:
    """The plan table's rows: each run, then its checkpoints, in the plan's order, at most
    ``limit`` of them; a last row counts the checkpoints, and the runs, left out."""
    by_run: dict[tuple[str, str], list[Candidate]] = {}
    for item in plan.items:
        by_run.setdefault((item.root, item.run_path), []).append(item)
    now = plan.now
    rows: list[PlanRow] = []
    hidden_units = hidden_runs = 0
    # names that print alike (cafe in NFC and in NFD) spelled apart: among the runs, and
    # among each run's checkpoints
    run_names = paths.shown_names([run.run_path for run in plan.runs])
    for run, run_name in zip(plan.runs, run_names, strict=True):
        units = by_run.get((run.root, run.run_path), [])
        room = limit - len(rows)
        if room <= 0:
            hidden_units += len(units)
            hidden_runs += 1
            continue
        label = Text(no_wrap=True, overflow="ellipsis")
        label.append(run_name or ".", style="bold")
        summary = Text(no_wrap=True)
        summary.append(f"keep {run.kept}", style="green")
        summary.append(" · ")
        summary.append(f"remove {run.removed}", style="red" if run.removed else "dim")
        summary.append(f" ({human_size(run.bytes_removed)})")
        size = human_size(run.bytes_kept + run.bytes_removed)
        rows.append((f"run\0{run.root}\0{run.run_path}", (label, size, "", summary, "")))
        shown = units[: room - 1]
        cut = len(run.run_path) + 1 if run.run_path else 0
        names = paths.shown_names([u.path[cut:] + ("/" if u.is_dir else "") for u in units])
        # cut so that two paths never read alike (one kept, the other removed)
        names = fit_apart(names, PLAN_NAME_WIDTH - 2, keep_ends=True)
        rows += [
            (f"item\0{u.root}\0{u.path}", _unit_cells(u, name, now))
            for u, name in zip(shown, names, strict=False)
        ]
        if len(shown) < len(units):
            hidden_units += len(units) - len(shown)
            hidden_runs += 1
    if hidden_units or hidden_runs:
        note = f"… {hidden_units} more checkpoint(s), in {hidden_runs} run(s) not shown whole"
        where = "`artlens retention plan` lists every one"
        rows.append((MORE_KEY, (Text(note, style="dim"), "", "", Text(where, style="dim"), "")))
    return rows


def _unit_cells(unit: Candidate, name: str, now: float) -> tuple[Any, ...]:
    """One checkpoint's cells; ``name``: its run-relative path as shown (``shown_names``),
    cut to its column (``fit_apart``)."""
    decision = Text("keep", style="bold green") if unit.keep else Text("remove", style="bold red")
    expires = ""
    if unit.keep and unit.expires is not None:
        left = max(0.0, unit.expires - now)
        expires = f"in {human_age(now, now + left)}"
    return (
        Text("  " + name, no_wrap=True),
        human_size(unit.size),
        decision,
        reasons_text(unit.reasons),
        Text(expires, style="yellow" if expires else ""),
    )


def _size(size: int, leaves_out: bool) -> Text:
    """A total, marked ``?`` when it leaves out places the scans could not read."""
    text = Text(human_size(size))
    if leaves_out:
        text.append(UNREAD_MARK, style=UNREAD_STYLE)
    return text


def _outside_unread(root: RootUsage) -> int:
    """Places that can hide files of the root no run owns (in no run's folder)."""
    runs = {b"" if run.label == "." else paths.key(run.label) for run in root.runs}
    return outside_runs(root.unreadable or [], runs)


def usage_note(usage: tuple[RootUsage, ...]) -> Text:
    """What the totals marked ``?`` leave out, per root, worded as ``artlens du`` words it;
    and roots that share files (counted under both)."""
    text = Text()
    several = len(usage) > 1
    for root in usage:
        said = NOT_RECORDED if root.unreadable is None else unread_note(root.unreadable)
        if said:
            text.append("\n" if text else "")
            text.append(UNREAD_MARK + " ", style=UNREAD_STYLE)
            if several:
                text.append(paths.display(root.root) + ": ", style="yellow")
            text.append(said, style="yellow")
        for other, (files, size) in root.shared.items():
            text.append("\n" if text else "")
            text.append(
                f"roots overlap: {overlap_note(root.root, other)}: {files} file(s)"
                f" ({human_size(size)}) counted under both",
                style="dim",
            )
    return text


def _on_disk(disk: int | None, size: int) -> str:
    """On-disk size beside the apparent one, when they differ (sparse files, small files)."""
    if disk is None or abs(disk - size) <= max(size // 10, 64 << 10):
        return ""
    return f"  ({human_size(disk)} on disk)"


AUDIT_LINES = 6
"""Audit records the trash tab's box lists (newest first)."""
AUDIT_PROBLEMS = 3
"""Lines of the trashes and logs that could not be read listed above them; one line counts
the rest."""


def _bucket_why(entry: TrashEntry) -> Text:
    """The why cell of an object in a bucket's trash: its batch, and why a restore left
    it there if one did."""
    text = Text(f"bucket batch {paths.display(entry.batch)}", style="dim")
    if entry.note:
        text.append(f"; {paths.display(entry.note)}", style="yellow")
    return text


def _audit_text(records: tuple[tuple[str, AuditRecord], ...], problems: tuple[str, ...]) -> Text:
    """What could not be read, then the newest audit lines (who did what, when), newest
    first: the box shows ten lines, and what came after six records (two lines each at 80
    columns) was cut: the problems, and the newest operations."""
    text = Text()
    for problem in problems[:AUDIT_PROBLEMS]:
        text.append(f"{visible(problem)}\n", style="yellow")
    if len(problems) > AUDIT_PROBLEMS:
        text.append(
            f"… {len(problems) - AUDIT_PROBLEMS} more problem(s): `artlens trash list` and "
            "`artlens trash log` print all\n",
            style="yellow",
        )
    text.append("audit log (newest first):", style="bold")
    if not records:
        text.append("  nothing applied, restored or purged yet", style="dim")
    for root, record in reversed(records[-AUDIT_LINES:]):
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.ts))
        plan = f" plan {visible(record.plan)}" if record.plan else ""
        text.append(
            f"\n{stamp}  {visible(record.user)}  {record.op}{plan}: {record.items} item(s), "
            f"{human_size(record.bytes)}, {record.skipped} skipped  ({paths.display(root)})"
        )
    return text
