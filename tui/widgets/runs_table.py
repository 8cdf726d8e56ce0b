"""The runs pane: a DataTable kept equal to the index by row key (never cleared and refilled).

The table holds only the rows that pass the filter.  Ordering is computed here in Python
(``order_runs``) and applied with ``DataTable.sort`` through the run id every cell carries,
so sorting never compares rendered text.

A live change costs what changed, not what the table holds: a run whose row, mark, extras
and ages are as last shown is skipped without building its cells, and a changed cell is
written in place (``_put``) with only its own row's render caches dropped and only its line
repainted.  ``DataTable.update_cell`` would instead invalidate every cached line, rebuild
the row order and offsets, re-measure the whole column whenever the new text is narrower
than the widest (nearly always) and re-layout the screen.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding, BindingType
from textual.fuzzy import Matcher
from textual.render import measure
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, ColumnKey, RowDoesNotExist, RowKey

from store import paths
from store.index.query import RunRow
from store.integrity import problems_of
from store.safetext import visible
from tui.format import (
    DANGER,
    UNREAD_MARK,
    WARNING,
    cut_middle,
    fit_apart,
    human_age,
    human_size,
    metric_value,
)


class Cell(Text):
    """A table cell that remembers which run it belongs to (for sorting by key)."""

    run_id: int = 0
    header: bool = False
    """True in a group's header row, which sorts just before the run ``run_id``."""


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    sortable: bool = True
    numeric: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("mark", " ", sortable=False),
    Column("name", "name"),
    Column("framework", "framework"),
    Column("status", "status"),
    Column("check", "check", sortable=False),
    Column("started", "started", numeric=True),
    Column("last_write", "last write", numeric=True),
    Column("size", "size", numeric=True),
    Column("artifacts", "files", numeric=True),
    Column("loss", "loss", numeric=True),
    Column("val_loss", "val loss", numeric=True),
    Column("acc", "acc", numeric=True),
    Column("experiment", "experiment"),
)
SORT_KEYS: tuple[str, ...] = tuple(c.key for c in COLUMNS if c.sortable)
HOST_COLUMN = Column("host", "host", sortable=False)
"""Shown after the name when remotes are followed (``store.remote``)."""
NAME_WIDTH = 60
"""Cells of a run's name shown before it is cut in the middle (``format.fit_apart``)."""
NAME_INDEX = [c.key for c in COLUMNS].index("name")
"""Where the name sits in a row of the default columns (no host column)."""
HEADER_PREFIX = "group:"
"""Row keys of group headers: the prefix, then the id of the group's first run."""


def header_cells(run_id: int, label: str, columns: tuple[Column, ...] = COLUMNS) -> list[Cell]:
    """A group header row: its label in the name column, the other cells empty."""
    cells: list[Cell] = []
    for column in columns:
        cell = Cell(
            label if column.key == "name" else "",
            style="bold reverse" if column.key == "name" else "",
            no_wrap=True,
            overflow="ellipsis",
        )
        cell.run_id = run_id
        cell.header = True
        cells.append(cell)
    return cells


_VAL = re.compile(r"(^|[^a-z])(val|valid|validation|eval|test|dev)([^a-z]|$)", re.IGNORECASE)
_ACC = re.compile(r"acc|f1|auc|score|precision|recall|bleu|rouge|map", re.IGNORECASE)
FIRST_ROWS = 80
"""Rows a first fill adds at once (more than a tall terminal shows)."""
SLICE_ROWS = 100
"""Rows added per turn of the event loop after those."""
_STATUS_STYLE = {"live": "bold green", "failed": "bold red", "finished": "", "unknown": "dim"}


def _last(metric: dict[str, Any]) -> float | None:
    value = metric.get("last")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def key_metric(run: RunRow, which: str) -> tuple[str, float] | None:
    """(metric name, last value) for "loss" (training), "val_loss" or "acc", by name pattern."""
    best: tuple[int, str, float] | None = None
    for name, metric in run.metrics.items():
        if not isinstance(metric, dict):
            continue
        value = _last(metric)
        if value is None:
            continue
        is_val = bool(_VAL.search(name.replace("/", " ").replace("_", " ")))
        lower = name.lower()
        if which == "loss":
            if "loss" not in lower or is_val:
                continue
            rank = 0 if lower in ("loss", "train_loss", "train/loss") else 1
        elif which == "val_loss":
            if "loss" not in lower or not is_val:
                continue
            rank = 0 if lower.startswith(("val", "eval")) else 1
        else:
            if not _ACC.search(lower):
                continue
            rank = (0 if is_val else 2) + (0 if "acc" in lower else 1)
        if best is None or (rank, name) < best[:2]:
            best = (rank, name, value)
    return (best[1], best[2]) if best else None


def sort_value(run: RunRow, column: str) -> Any:
    """The value a column sorts by (None sorts last either way)."""
    if column == "name":
        return run.name.lower()
    if column == "framework":
        return run.framework
    if column == "status":
        return {"live": 0, "failed": 1, "unknown": 2, "finished": 3}.get(run.status, 4)
    if column == "started":
        return run.started
    if column == "last_write":
        return run.last_write
    if column == "size":
        return run.size_bytes
    if column == "artifacts":
        return run.n_artifacts
    if column == "experiment":
        return (run.experiment or "").lower() or None
    if column in ("loss", "val_loss", "acc"):
        picked = key_metric(run, column)
        return picked[1] if picked else None
    raise KeyError(column)


def group_headers(
    runs: Mapping[int, RunRow], order: list[int], group: str | None
) -> dict[int, str]:
    """The first run id of each group in ``order`` -> its header label, with the group's
    run count ("▾ experiment mnist  (3 runs)"); nothing when not grouping."""
    if group not in ("experiment", "root"):
        return {}

    def label_of(run: RunRow) -> str:
        if group == "experiment":
            return (
                f"experiment {visible(run.experiment[:60])}" if run.experiment else "no experiment"
            )
        return f"root {visible(paths.display(run.root)[-60:])}"

    firsts: dict[int, str] = {}
    counts: dict[int, int] = {}
    current: tuple[int, str] | None = None
    for run_id in order:
        label = label_of(runs[run_id])
        if current is None or current[1] != label:
            current = (run_id, label)
            firsts[run_id] = label
            counts[run_id] = 0
        counts[current[0]] += 1
    return {
        run_id: f"▾ {label}  ({counts[run_id]} run{'s' if counts[run_id] != 1 else ''})"
        for run_id, label in firsts.items()
    }


def order_runs(
    runs: Iterable[RunRow],
    column: str,
    *,
    reverse: bool,
    group: str | None = None,
    scores: Mapping[int, float] | None = None,
) -> list[int]:
    """Run ids in display order: by ``column`` (missing values last), best filter match
    first when ``scores`` rank them (as a fuzzy finder does), grouped if asked."""
    items = list(runs)
    present = [r for r in items if sort_value(r, column) is not None]
    missing = [r for r in items if sort_value(r, column) is None]
    present.sort(key=lambda r: (sort_value(r, column), r.id), reverse=reverse)
    missing.sort(key=lambda r: r.id)
    ordered = present + missing
    if scores:
        ordered.sort(key=lambda r: -scores.get(r.id, 0.0))
    if group == "experiment":
        ordered.sort(key=lambda r: (r.experiment is None, (r.experiment or "").lower()))
    elif group == "root":
        ordered.sort(key=lambda r: r.root)
    return [r.id for r in ordered]


def haystack(run: RunRow) -> str:
    """What the filter matches against: name, framework, experiment, path and params."""
    params = " ".join(f"{k}={v}" for k, v in list(run.params.items())[:200])
    return f"{run.name} {run.framework} {run.experiment or ''} {run.display_path} {params}".lower()


MAX_FUZZY_NAME = 64
"""Characters of a run's name the fuzzy matcher looks at (names come from files)."""
MAX_FUZZY_WAYS = 20_000
"""Above this many ways to place a word's letters in a name, the fuzzy score is not
computed (Textual's matcher tries them all): the match counts, scored as a bare hit."""


@functools.lru_cache(maxsize=64)
def _matcher(word: str) -> Matcher:
    return Matcher(word)


def fuzzy_score(word: str, name: str) -> float:
    """How well ``word`` matches ``name`` as a fuzzy subsequence (Textual's matcher, as the
    command palette ranks), 0.0 when it does not; bounded for hostile names."""
    name = name[:MAX_FUZZY_NAME].lower()
    if not _subsequence(word, name):
        return 0.0
    if word not in name:
        ways = 1
        for letter in word:
            ways *= max(1, name.count(letter))
            if ways > MAX_FUZZY_WAYS:
                return 1.0
    return _matcher(word).match(name)


def rank(run: RunRow, query: str, host: str = "local") -> float | None:
    """None when ``run`` does not pass ``query``; else how well it matches (higher first).

    Every word of ``query`` must match: ``exp:NAME``/``root:PATH``/``fw:NAME``/``host:NAME``
    narrow by field (they do not rank); other words match as a fuzzy subsequence of the name (scored
    by Textual's matcher) or as a substring of the framework, experiment, path or params
    (a weaker score)."""
    text = ""
    score = 0.0
    for word in query.lower().split():
        field, _, value = word.partition(":")
        if value and field == "host":
            if value != host.lower():
                return None
        elif value and field in ("exp", "experiment"):
            if value != (run.experiment or "").lower():
                return None
        elif value and field == "root":
            if value not in run.display_path.lower():
                return None
        elif value and field in ("fw", "framework"):
            if not run.framework.lower().startswith(value):
                return None
        else:
            by_name = fuzzy_score(word, run.name)
            if by_name:
                score += by_name
                continue
            text = text or haystack(run)
            if word not in text:
                return None
            score += 0.5
    return score


def matches(run: RunRow, query: str, host: str = "local") -> bool:
    """True when ``run`` passes the filter ``query`` (see ``rank``)."""
    return rank(run, query, host) is not None


def why_nothing_matches(
    runs: Iterable[RunRow], query: str, host_of: Callable[[int], str] | None = None
) -> str:
    """Which word of ``query`` left no run, what it could have been instead, and of how
    many runs none passed ("(0 of 19)")."""
    runs = list(runs)
    if not runs:
        return "no runs indexed yet"
    return f"{_why_nothing(runs, query, host_of)} (0 of {len(runs)})"


def _why_nothing(
    runs: list[RunRow], query: str, host_of: Callable[[int], str] | None = None
) -> str:
    def host(run: RunRow) -> str:
        return host_of(run.id) if host_of is not None else "local"

    for word in query.split():
        if any(matches(run, word, host(run)) for run in runs):
            continue
        field, _, value = word.lower().partition(":")
        if value and field == "host":
            known = sorted({host(r) for r in runs})
            return f"no run is on a host named {value!r} (hosts: {', '.join(known[:6])})"
        if value and field in ("exp", "experiment"):
            known = sorted({(r.experiment or "").lower() for r in runs if r.experiment})
            return f"no experiment is named {value!r} (there are: {', '.join(known[:6]) or 'none'})"
        if value and field in ("fw", "framework"):
            known = sorted({r.framework for r in runs})
            return f"no run was written by {value!r} (frameworks: {', '.join(known[:6])})"
        if value and field == "root":
            return f"no run lies under a root matching {value!r}"
        return f"no run's name, params or framework contains {word!r}, even fuzzily"
    return f"no run matches all of {query!r} together (each word matches some)"


def _subsequence(needle: str, hay: str) -> bool:
    it = iter(hay)
    return all(ch in it for ch in needle)


def run_problem_count(run: RunRow) -> int:
    """Dangerous or corrupt files plus dangling references: the number after the "!"."""
    return run.flagged_files + len(problems_of(run.meta))


@dataclass(frozen=True)
class RowExtras:
    """What a row shows from outside the run's index row: its checklist, pin and note."""

    checklist: tuple[int, int] | None = None
    """(items met, items required); None until computed."""
    pinned: bool = False
    note: bool = False
    host: str | None = None
    """The run's host, when remotes are followed."""
    offline: bool = False
    """The host did not answer its last pull: the row shows its last mirrored state."""


def age_cells(run: RunRow, now: float) -> dict[str, Cell]:
    """The cells of a run's row that change with the clock alone: its two ages."""
    cells: dict[str, Cell] = {}
    for key, ts in (("started", run.started), ("last_write", run.last_write)):
        value = Cell(human_age(ts, now), justify="right", no_wrap=True, overflow="ellipsis")
        value.run_id = run.id
        cells[key] = value
    return cells


def run_cells(
    run: RunRow,
    *,
    marked: bool,
    now: float,
    extras: RowExtras | None = None,
    spelled: str | None = None,
) -> dict[str, Cell]:
    """The cells of one run's row, as plain ``Text`` (names are never parsed as markup);
    ``spelled``: the name spelled apart from another run's that looks the same."""

    def cell(text: str, style: str = "", justify: str | None = None) -> Cell:
        value = Cell(text, style=style, justify=justify, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]
        value.run_id = run.id
        return value

    partial = "metrics" in run.unread_parts

    def metric(which: str) -> Cell:
        picked = key_metric(run, which)
        value = cell(metric_value(picked[1]) if picked else "-", "", "right")
        if partial:  # read in part: the value may be older than the file, or missing
            value.append(UNREAD_MARK, style="bold yellow")
        return value

    status = f"● {run.status}" if run.status == "live" else run.status
    name = cell("")
    problems = run_problem_count(run)
    if problems:
        name.append(f"!{problems}", style=DANGER)
        name.append(" ")
    if run.unread_parts:  # its metrics or params leave out what a file held unread
        name.append(f"{UNREAD_MARK} ", style="bold yellow")
    if extras is not None and extras.pinned:
        name.append("◆ ", style="bold yellow")
    if extras is not None and extras.note:
        name.append("✎ ", style="bold")
    name.append(spelled if spelled is not None else cut_middle(visible(run.name), NAME_WIDTH))
    check = cell("", "", "right")
    if extras is not None and extras.checklist is not None and extras.checklist[1]:
        passed, total = extras.checklist
        if passed == total:
            check.append(f"{passed}/{total}")
        else:
            check.append(f"✗{passed}/{total}", style=WARNING)
    host = cell("")
    if extras is not None and extras.host is not None:
        host.append(visible(extras.host))
        if extras.offline:
            host.append(" ○ offline", style=WARNING)
    return {
        "host": host,
        "mark": cell("✓" if marked else " ", "bold"),
        "name": name,
        "framework": cell(run.framework),
        "status": cell(status, _STATUS_STYLE.get(run.status, "")),
        "check": check,
        **age_cells(run, now),
        "size": size_cell(run, cell(human_size(run.size_bytes), "", "right")),
        "artifacts": cell(str(run.n_artifacts), "", "right"),
        "loss": metric("loss"),
        "val_loss": metric("val_loss"),
        "acc": metric("acc"),
        "experiment": cell(visible((run.experiment or "-")[:40]), "" if run.experiment else "dim"),
    }


def unread_count(run: RunRow) -> int:
    """Places the run's size and file count leave out, as its scan recorded them."""
    return run.unread_places


def size_cell(run: RunRow, size: Cell) -> Cell:
    """The size, marked ``?`` when it leaves something out."""
    if unread_count(run):
        size.append(UNREAD_MARK, style="bold yellow")
    return size


@dataclass(frozen=True)
class RowSource:
    """What a run's row was built from; rows are replaced on change, never mutated."""

    run: RunRow
    marked: bool
    extras: RowExtras | None
    built: float
    """The clock when the cells were built."""
    stale: float
    """When one of its ages ("5m") next reads differently."""
    spelled: str | None = None
    """The name as spelled apart from a look-alike's (``paths.spelled_apart``), if it was."""

    def shows(
        self,
        run: RunRow,
        marked: bool,
        extras: RowExtras | None,
        now: float,
        spelled: str | None = None,
    ) -> bool:
        """True when the row built from this would look as it does: nothing to build."""
        return (
            self.built <= now < self.stale
            and self.marked == marked
            and self.extras == extras
            and self.spelled == spelled
            and (self.run is run or self.run == run)
        )


def age_turns(ts: float | None, now: float) -> float:
    """When ``human_age(ts, now)`` next changes: its unit's next multiple."""
    if ts is None:
        return math.inf
    delta = max(0.0, now - ts)
    for seconds in (86400, 3600, 60, 1):
        if delta >= seconds or seconds == 1:
            return ts + (delta // seconds + 1) * seconds
    return math.inf  # pragma: no cover


def row_source(
    run: RunRow,
    marked: bool,
    extras: RowExtras | None,
    now: float,
    spelled: str | None = None,
) -> RowSource:
    stale = min(age_turns(run.started, now), age_turns(run.last_write, now))
    return RowSource(run, marked, extras, now, stale, spelled)


class RunsTable(DataTable[Cell]):
    """Runs, one row per run id; keys are ``str(run.id)``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="runs.down"),
        Binding("k", "cursor_up", "Up", show=False, id="runs.up"),
        Binding("g", "scroll_top", "Top", show=False, id="runs.top"),
        Binding("G", "scroll_bottom", "Bottom", show=False, id="runs.bottom"),
    ]

    def __init__(
        self, *, clock: Callable[[], float] = time.time, hosts: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.clock = clock
        self.columns_shown = (*COLUMNS[:2], HOST_COLUMN, *COLUMNS[2:]) if hosts else COLUMNS
        """The columns in table order: with a host column when remotes are followed."""
        self._backlog: list[
            tuple[dict[int, RunRow], list[int], set[int], Mapping[int, RowExtras] | None]
        ] = []
        """Slices of a first fill not yet added: (runs, ids, marked, extras)."""
        self._backlog_turn = 0
        self._laid_out: tuple[list[int], dict[int, str]] | None = None
        """(order, headers) the last sync left the rows in; None after anything else."""
        self._ages_due: set[int] = set()
        """Runs whose only change is their ages: shown after the frame with the news."""
        self._ages_queued = False
        self._shown_as: dict[int, RowSource] = {}
        self._spelled: dict[int, str] = {}
        """Run id -> its name spelled apart from a look-alike's among the rows (``café`` in
        NFC and in NFD), or left whole where its cut would read like another's cut: set by
        each sync, for every row it shows."""
        """What each run's row was last built from: a run found as it was is skipped."""
        self.fixed_columns = 2
        """The mark and the name stay put when the table scrolls sideways."""
        for column in self.columns_shown:
            self.add_column(Text(column.label, no_wrap=True), key=column.key)

    @property
    def current_run_id(self) -> int | None:
        """The run under the cursor, if any."""
        if not self.row_count:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except Exception:  # the cursor can be past the last row for a moment
            return None
        value = row_key.value
        return int(value) if value is not None and value.isdigit() else None

    def action_cursor_down(self) -> None:
        """Down, stepping over a group header."""
        super().action_cursor_down()
        if self._on_header() and self.cursor_row < self.row_count - 1:
            super().action_cursor_down()

    def action_cursor_up(self) -> None:
        """Up, stepping over a group header (the first row's header stays reachable)."""
        super().action_cursor_up()
        if self._on_header() and self.cursor_row > 0:
            super().action_cursor_up()

    def _on_header(self) -> bool:
        return bool(self.row_count) and self.current_run_id is None

    def sync(
        self,
        runs: dict[int, RunRow],
        order: list[int],
        marked: set[int],
        extras: Mapping[int, RowExtras] | None = None,
        headers: Mapping[int, str] | None = None,
    ) -> None:
        """Make the rows equal ``order`` (ids into ``runs``), by key, keeping the cursor;
        ``headers`` puts a group's header row (its label) before the run id it maps from.

        Filling an empty table adds a screenful now and the rest in slices, one per turn
        of the event loop, so keys pressed meanwhile are answered between slices."""
        self._backlog_turn += 1
        self._backlog = []
        apart = paths.spelled_apart([runs[run_id].name for run_id in order])
        plain = [visible(runs[run_id].name) for run_id in order]
        shown = [apart.get(i) or name for i, name in enumerate(plain)]
        self._spelled = {
            run_id: name
            for run_id, name, as_is in zip(order, fit_apart(shown, NAME_WIDTH), plain, strict=True)
            if name != as_is and name != cut_middle(as_is, NAME_WIDTH)
        }
        keep = self.current_run_id
        now = self.clock()
        wanted = set(order)
        headers = headers or {}
        present: set[int] = set()
        shown_headers: set[str] = set()
        for row_key in self.rows:
            value = row_key.value
            if value is None:
                continue
            if value.isdigit():
                present.add(int(value))
            elif value.startswith(HEADER_PREFIX):
                shown_headers.add(value)
        laid_out = self._laid_out
        self._laid_out = None
        if not present and not shown_headers and not headers and len(order) > FIRST_ROWS:
            with self.app.batch_update():
                self._append(runs, order[:FIRST_ROWS], marked, extras, now)
            rest = range(FIRST_ROWS, len(order), SLICE_ROWS)
            self._backlog = [(runs, order[i : i + SLICE_ROWS], marked, extras) for i in rest]
            self.call_later(self._fill_slice, self._backlog_turn)
            return
        with self.app.batch_update():
            leaving = present - wanted
            for run_id in leaving:
                self._shown_as.pop(run_id, None)
            gone = [str(run_id) for run_id in leaving]
            gone += shown_headers - {f"{HEADER_PREFIX}{i}" for i in headers}
            self._remove_rows(gone)
            moved = bool(gone)
            for run_id, label in headers.items():
                header_key = f"{HEADER_PREFIX}{run_id}"
                header = header_cells(run_id, label, self.columns_shown)
                name_cell = header[[c.key for c in self.columns_shown].index("name")]
                if header_key not in shown_headers:
                    self.add_row(*header, key=header_key)
                    moved = True
                elif self.get_cell(header_key, "name") != name_cell:
                    self.update_cell(header_key, "name", name_cell, update_width=True)
            changed: set[str] = set()
            for run_id in order:
                if run_id in present:
                    if self._rebuild(runs[run_id], marked, extras, now):
                        changed.add(str(run_id))
                    continue
                self._append(runs, [run_id], marked, extras, now)
                moved = True
            self._repaint(changed)
            if moved or laid_out != (order, dict(headers)):
                self._put_in_order(order, headers)
            self._laid_out = (list(order), dict(headers))
            if keep is not None and keep in wanted:
                self.move_cursor(row=self.get_row_index(str(keep)), scroll=False)

    def _remove_rows(self, row_keys: list[str]) -> None:
        """``remove_row`` of many rows at once.  DataTable's re-indexes every row after the
        one it removes: a filter that left 32 of 1,000 rows took a second of the UI thread.
        Here the rows left are re-indexed once; the rest is what ``remove_row`` does
        (textual 8.2.8, pinned: the tests compare the two)."""
        keys = [RowKey(key) for key in row_keys]
        if len(keys) <= 1:
            for key in keys:
                self.remove_row(key)
            return
        locations = self._row_locations
        gone = set(keys)
        if not gone <= set(locations):
            raise RowDoesNotExist(f"Row keys {sorted(k.value or '' for k in gone)!r} not all valid")
        left = sorted((locations.get(key), key) for key in locations if key not in gone)
        self._row_locations = TwoWayDict({key: index for index, (_, key) in enumerate(left)})
        self._require_update_dimensions = True
        self.check_idle()
        for key in keys:
            for column_key in self._data.get(key, {}):
                self._updated_cells.discard(CellKey(key, column_key))
            del self.rows[key]
            del self._data[key]
        self.cursor_coordinate = self.cursor_coordinate
        self.hover_coordinate = self.hover_coordinate
        self._update_count += 1
        self.refresh(layout=True)

    def _put_in_order(self, order: list[int], headers: Mapping[int, str]) -> None:
        """Sort the rows into ``order`` (each header before its run), unless they are."""
        wanted_keys = [
            key
            for run_id in order
            for key in (
                (f"{HEADER_PREFIX}{run_id}", str(run_id)) if run_id in headers else (str(run_id),)
            )
        ]
        if self.row_count and [r.key.value for r in self.ordered_rows] != wanted_keys:
            position = {run_id: 2 * i + 1 for i, run_id in enumerate(order)}
            self.sort(
                "mark",
                key=lambda cell: position.get(cell.run_id, 0) - (1 if cell.header else 0),
            )

    def _append(
        self,
        runs: dict[int, RunRow],
        run_ids: list[int],
        marked: set[int],
        extras: Mapping[int, RowExtras] | None,
        now: float,
    ) -> None:
        for run_id in run_ids:
            run = runs[run_id]
            extra = extras.get(run_id) if extras is not None else None
            spelled = self._spelled.get(run_id)
            cells = run_cells(run, marked=run_id in marked, now=now, extras=extra, spelled=spelled)
            self.add_row(*(cells[c.key] for c in self.columns_shown), key=str(run_id))
            self._shown_as[run_id] = row_source(run, run_id in marked, extra, now, spelled)

    def _rebuild(
        self,
        run: RunRow,
        marked: set[int],
        extras: Mapping[int, RowExtras] | None,
        now: float,
    ) -> bool:
        """Write the cells of ``run``'s row that changed, in place; False when none did.
        A run found as its row was last built from is not even rendered to cells."""
        extra = extras.get(run.id) if extras is not None else None
        spelled = self._spelled.get(run.id)
        shown = self._shown_as.get(run.id)
        if shown is not None and shown.shows(run, run.id in marked, extra, now, spelled):
            return False
        if shown is not None and shown.shows(run, run.id in marked, extra, shown.built, spelled):
            # only the clock moved (a run written seconds ago): its two ages, and only after
            # the frame that shows what did change (ticking rows must not delay the news)
            self._ages_due.add(run.id)
            if not self._ages_queued:
                self._ages_queued = True
                self.call_after_refresh(self._tick_ages)
            return False
        row_key = str(run.id)
        changed = False
        self._shown_as[run.id] = row_source(run, run.id in marked, extra, now, spelled)
        cells = run_cells(run, marked=run.id in marked, now=now, extras=extra, spelled=spelled)
        for column, value in zip(self.columns_shown, self.get_row(row_key), strict=False):
            new = cells[column.key]
            if new != value:
                self._put(row_key, column.key, new)
                changed = True
        return changed

    def _put(self, row_key: str, column_key: str, value: Cell) -> None:
        """Set one cell without repainting; ``_repaint`` shows its row afterwards.

        A value wider than its column goes through ``update_cell`` (the column widens, the
        table is laid out again: rare).  A narrower one leaves the column as wide as it was,
        where ``update_cell`` would re-measure every cell of the column."""
        column = self.columns[ColumnKey(column_key)]
        if measure(self.app.console, value, 1) > column.content_width:
            self.update_cell(row_key, column_key, value, update_width=True)
            return
        self._data[RowKey(row_key)][ColumnKey(column_key)] = value

    def _repaint(self, row_keys: set[str]) -> None:
        """Show rows whose cells ``_put`` changed: drop only their entries from the table's
        render caches (the others stay valid: no cell of theirs, no width, no order moved)
        and repaint only their lines, if on screen."""
        if not row_keys:
            return
        keys = {RowKey(key) for key in row_keys}
        indexes = {index for key in keys if (index := self._row_locations.get(key)) is not None}
        top = self.header_height if self.show_header else 0
        lines = {top + index for index in indexes}  # every row is one line high
        for key in list(self._cell_render_cache.keys()):
            if key[0] in keys:
                self._cell_render_cache.discard(key)
        for row_key in list(self._row_render_cache.keys()):
            if row_key[0] in keys:
                self._row_render_cache.discard(row_key)
        for renderable_key in list(self._row_renderable_cache.keys()):
            if renderable_key[1] in indexes:
                self._row_renderable_cache.discard(renderable_key)
        for line_key in list(self._line_cache.keys()):
            if line_key[0] in lines:
                self._line_cache.discard(line_key)
        first = int(self.scroll_y)
        for index in indexes:
            if first <= index < first + self.size.height:  # off screen: drawn when scrolled to
                self.refresh_row(index)

    def _tick_ages(self) -> None:
        """After the frame that showed a change: the ages of the runs that only aged."""
        self._ages_queued = False
        due, self._ages_due = self._ages_due, set()
        now = self.clock()
        changed: set[str] = set()
        for run_id in due:
            shown = self._shown_as.get(run_id)
            row_key = str(run_id)
            if shown is None or row_key not in self.rows:
                continue
            if shown.shows(shown.run, shown.marked, shown.extras, now, shown.spelled):
                continue  # rebuilt whole since
            for key, new in age_cells(shown.run, now).items():
                if new != self.get_cell(row_key, key):
                    self._put(row_key, key, new)
                    changed.add(row_key)
            self._shown_as[run_id] = row_source(
                shown.run, shown.marked, shown.extras, now, shown.spelled
            )
        self._repaint(changed)

    def _fill_slice(self, turn: int) -> None:
        """Append the next slice of a first fill (unless a newer sync replaced it)."""
        if turn != self._backlog_turn or not self._backlog:
            return
        runs, run_ids, marked, extras = self._backlog.pop(0)
        with self.app.batch_update():
            self._append(runs, run_ids, marked, extras, self.clock())
        if self._backlog:
            self.call_later(self._fill_slice, turn)

    @property
    def filling(self) -> bool:
        """True while a first fill still has rows to add."""
        return bool(self._backlog)

    def flush(self) -> None:
        """Add every row a first fill still holds back, now."""
        while self._backlog:
            self._fill_slice(self._backlog_turn)

    def refresh_rows(
        self,
        runs: dict[int, RunRow],
        run_ids: Iterable[int],
        marked: set[int],
        extras: Mapping[int, RowExtras] | None = None,
    ) -> None:
        """Redraw the cells of ``run_ids`` that are in the table (order is left alone)."""
        now = self.clock()
        changed: set[str] = set()
        for run_id in run_ids:
            if str(run_id) not in self.rows or run_id not in runs:
                continue
            if self._rebuild(runs[run_id], marked, extras, now):
                changed.add(str(run_id))
        self._repaint(changed)

    def set_mark(self, run_id: int, marked: bool) -> None:
        if str(run_id) in self.rows:
            cell = Cell("✓" if marked else " ", style="bold")
            cell.run_id = run_id
            self._shown_as.pop(run_id, None)  # the next sync compares this row's cells again
            self._put(str(run_id), "mark", cell)
            self._repaint({str(run_id)})
