"""The metrics view (``m``): every metric of the marked runs, and plots of the chosen ones.

The table lists each (metric, run) with its last and best value and a sparkline; below it,
one plot per chosen metric overlays the runs' series over steps.  Series are read from the
runs' own files in a worker (``store.metrics_series``); while a run writes, the app
hands every change-feed delta to each screen (``IndexChanged``) and the series are read again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from store.index.events import in_scope
from store.index.query import RunRow
from store.metrics_series import MetricLine, RunSeries, read_run_series
from store.safetext import visible
from tui.format import cut_middle, fit_apart, metric_value
from tui.messages import IndexChanged
from tui.widgets.footer import FittingFooter
from tui.widgets.metrics_plot import COLORS, GLYPHS, MetricsPlot, PlotLine
from tui.widgets.sparkline import sparkline
from tui.workers import SaysWorkerFailures

MAX_PLOTS = 3
"""Chosen metrics plotted side by side; choosing one more drops the oldest."""
SPARK_WIDTH = 14
RUN_WIDTH = 30
"""Cells of a run's name in the table before it is cut (``format.fit_apart``)."""
WHY_WIDTH = 40
"""Cells of a note row's reason (in the trend column), cut in the middle: its start names
the file, its end the problem; the title and the plot say it whole."""
COLUMNS = ("metric", "run", "last", "best", "trend")
NO_METRICS = "no metrics logged"
"""A run's note when its files were read whole and hold no metric."""
NOTE_KEY = "\x1e"
"""After a run's id, the key of its note row (a metric row's key has ``\x1f`` there)."""
_PREFERRED_LOSS = ("loss", "train_loss", "train/loss", "train/loss_epoch", "train_loss_epoch")


@dataclass
class SeriesLoaded(Message):
    """Every run's series, for request number ``request``; replaces an older one queued."""

    request: int
    series: tuple[RunSeries, ...]
    failed: tuple[tuple[int, str], ...] = ()
    """(run id, why) of the runs whose metrics could not be read at all."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SeriesLoaded)


def default_metric(series: Iterable[RunSeries]) -> str | None:
    """The metric to plot first: a training loss most runs have, else any loss, else any."""
    counts: dict[str, int] = {}
    for run in series:
        for line in run.metrics:
            if line.points:
                counts[line.name] = counts.get(line.name, 0) + 1
    if not counts:
        return None
    names = sorted(counts, key=lambda n: (-counts[n], n))
    for wanted in _PREFERRED_LOSS:
        if wanted in counts:
            return wanted
    losses = [n for n in names if "loss" in n.lower()]
    train = [n for n in losses if not any(w in n.lower() for w in ("val", "eval", "test"))]
    return (train or losses or names)[0]


class MetricsScreen(SaysWorkerFailures, Screen[None]):
    """Metrics of one or several runs: a table with sparklines, then plots."""

    CSS_PATH = "metrics.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="metrics.close", tooltip="Back to the runs"),
        Binding(
            "space",
            "choose",
            "Plot metric",
            id="metrics.choose",
            tooltip="Add or remove the metric under the cursor from the plots",
        ),
        Binding("c", "clear_plots", "Clear plots", show=False, id="metrics.clear"),
        Binding("ctrl+r", "reload", "Reload", show=False, id="metrics.reload"),
        Binding("j", "cursor_down", "Down", show=False, id="metrics.down"),
        Binding("k", "cursor_up", "Up", show=False, id="metrics.up"),
    ]

    def __init__(self, runs: list[RunRow], mirrored: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.runs = list(runs)
        self.mirrored = mirrored
        """Runs of a remote's mirror: their summaries only (the files are on the host)."""
        self.series: dict[int, RunSeries] = {}
        """What the view shows, by run id (tests read it)."""
        self.failed: dict[int, str] = {}
        """Runs whose metrics could not be read at all: why."""
        self.chosen: list[str] = []
        self._request = 0
        self._chosen_by_user = False

    def compose(self) -> ComposeResult:
        yield Static(self._title("reading metrics…"), id="metrics-title", markup=False)
        table: DataTable[Text] = DataTable(
            id="metrics-table", cursor_type="row", zebra_stripes=True
        )
        for key in COLUMNS:
            table.add_column(Text(key), key=key)
        yield table
        yield Horizontal(id="metrics-plots")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.query_one("#metrics-table", DataTable).focus()
        self.action_reload()

    def _title(self, note: str = "") -> Text:
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append("Metrics", style="bold")
        if note:  # before the run names: a long list must not cut it off
            title.append(f"  ⚠ {note}", style="yellow")
        names = ", ".join(visible(r.name) for r in self.runs[:6])
        more = f" +{len(self.runs) - 6}" if len(self.runs) > 6 else ""
        title.append(f" · {len(self.runs)} run(s): {names}{more}", style="")
        return title

    # -- loading -------------------------------------------------------------------------

    def action_reload(self) -> None:
        self._request += 1
        self._load(self._request, tuple(self.runs))

    @work(thread=True, exclusive=True, group="metrics-series", exit_on_error=False)
    def _load(self, request: int, runs: tuple[RunRow, ...]) -> None:
        worker = get_current_worker()
        loaded: list[RunSeries] = []
        failed: list[tuple[int, str]] = []
        for run in runs:
            if worker.is_cancelled:
                return
            try:
                loaded.append(read_run_series(run, from_files=run.id not in self.mirrored))
            except Exception as exc:  # one unreadable run must not hide the others
                failed.append((run.id, visible(f"{type(exc).__name__}: {exc}")))
        if not worker.is_cancelled:
            self.post_message(SeriesLoaded(request, tuple(loaded), tuple(failed)))

    def on_series_loaded(self, message: SeriesLoaded) -> None:
        if message.request != self._request:
            return
        self.series = {s.run_id: s for s in message.series}
        self.failed = dict(message.failed)
        if not self._chosen_by_user:
            first = default_metric(message.series)
            self.chosen = [first] if first else []
        names = {run.id: visible(run.name) for run in self.runs}
        notes = [
            f"{names.get(run_id, run_id)}: {why}"
            for run_id, why in ((r.id, self.run_note(r.id)) for r in self.runs)
            if why is not None and why != NO_METRICS
        ]
        notes += [w for s in message.series for w in s.warnings]
        note = "; ".join(notes)
        self.query_one("#metrics-title", Static).update(self._title(note))
        self._sync_table()
        self._sync_plots()

    def on_index_changed(self, message: IndexChanged) -> None:
        """The app hands every change-feed delta to each screen: reread when one of ours moved."""
        fresh = {run.id: run for run in message.updated}
        covered = in_scope(message.rescanned_folders)
        gone = set(message.removed) | {
            run.id
            for run in self.runs
            if run.id not in fresh
            and (
                message.full
                or run.root_id in message.rescanned_roots
                or covered(run.root_id, run.path)
            )
        }
        mine = {run.id for run in self.runs}
        if not (mine & (set(fresh) | gone)):
            return
        self.runs = [fresh.get(run.id, run) for run in self.runs if run.id not in gone]
        self.action_reload()

    # -- table ---------------------------------------------------------------------------

    def run_note(self, run_id: int) -> str | None:
        """What the table says of a run beside its metrics (or instead of them): none
        logged, none readable, or read in part (its values may leave some out)."""
        if run_id in self.failed:
            return f"metrics unreadable: {self.failed[run_id]}"
        found = self.series.get(run_id)
        if found is None:
            return None  # not read yet
        if found.unread is not None:
            lead = "metrics read in part" if found.metrics else "metrics unreadable"
            return f"{lead}: {found.unread}"
        return None if found.metrics else NO_METRICS

    def _color(self, run_id: int) -> str:
        ids = [run.id for run in self.runs]
        return COLORS[ids.index(run_id) % len(COLORS)] if run_id in ids else "white"

    def _glyph(self, run_id: int) -> str:
        ids = [run.id for run in self.runs]
        return GLYPHS[ids.index(run_id) % len(GLYPHS)] if run_id in ids else "·"

    def _rows(self) -> list[tuple[str, RunRow, MetricLine]]:
        names = sorted({line.name for s in self.series.values() for line in s.metrics})
        rows = []
        for name in names:
            for run in self.runs:
                found = self.series.get(run.id)
                line = found.line(name) if found else None
                if line is not None:
                    rows.append((name, run, line))
        return rows

    def _note_cells(self, run: RunRow, name: str, note: str) -> list[Text]:
        """A run's note row: its kind where a metric's name goes, the reason as its trend."""
        lead, _, why = note.partition(": ")
        reason = Text(cut_middle(why, WHY_WIDTH), style="dim", no_wrap=True)
        return [
            Text(lead, style="dim italic" if note == NO_METRICS else "yellow", no_wrap=True),
            Text(name, style=self._color(run.id), no_wrap=True, overflow="ellipsis"),
            Text("-", justify="right"),
            Text("-", justify="right"),
            reason,
        ]

    def _sync_table(self) -> None:
        """Rows by key: a note for each run that needs one (every marked run shows, with why
        it has no metrics), then (metric, run) rows; changed cells updated, rows put in
        that order only when one arrived out of it."""
        table: DataTable[Text] = self.query_one("#metrics-table", DataTable)
        run_names = dict(
            zip(
                (run.id for run in self.runs),
                fit_apart([visible(run.name) for run in self.runs], RUN_WIDTH),
                strict=True,
            )
        )
        wanted: dict[str, list[Text]] = {}
        for run in self.runs:
            note = self.run_note(run.id)
            if note is not None:
                wanted[f"{run.id}{NOTE_KEY}"] = self._note_cells(run, run_names[run.id], note)
        for name, run, line in self._rows():
            color = self._color(run.id)
            best = metric_value(line.best) if line.best is not None else "-"
            if line.best_step is not None and line.best is not None:
                best += f" @{line.best_step}"
            wanted[f"{run.id}\x1f{name}"] = [
                Text(name, no_wrap=True, overflow="ellipsis"),
                Text(run_names[run.id], style=color, no_wrap=True, overflow="ellipsis"),
                Text(metric_value(line.last), justify="right"),
                Text(best, justify="right"),
                Text(sparkline([y for _, y in line.points], SPARK_WIDTH), style=color),
            ]
        with self.app.batch_update():
            for stale in [k for k in table.rows if k.value not in wanted]:
                table.remove_row(stale)
            for key, cells in wanted.items():
                if key not in table.rows:
                    table.add_row(*cells, key=key)
                    continue
                for column, cell in zip(COLUMNS, cells, strict=True):
                    if table.get_cell(key, column) != cell:
                        table.update_cell(key, column, cell)
            order = list(wanted)
            if [row.key.value for row in table.ordered_rows] != order:
                # DataTable sorts by cell values: each row's own metric cell says its place
                place = {id(table.get_cell(key, "metric")): i for i, key in enumerate(order)}
                table.sort("metric", key=lambda cell: place[id(cell)])

    def _cursor_key(self) -> str:
        table: DataTable[Text] = self.query_one("#metrics-table", DataTable)
        if not table.row_count:
            return ""
        try:
            row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        except Exception:  # the cursor can be past the last row for a moment
            return ""
        return row_key.value or ""

    def _cursor_metric(self) -> str | None:
        value = self._cursor_key()
        return value.split("\x1f", 1)[1] if "\x1f" in value else None

    def _nothing_plotted(self) -> str:
        """What the plot says when no metric is chosen and the cursor is on none."""
        value = self._cursor_key()
        if value.endswith(NOTE_KEY):
            run_id = int(value[: -len(NOTE_KEY)])
            names = {run.id: visible(run.name) for run in self.runs}
            return f"{names.get(run_id, run_id)}: {self.run_note(run_id)}"
        return "no metric series in these runs"

    # -- plots ---------------------------------------------------------------------------

    def plot_lines(self, metric: str) -> tuple[PlotLine, ...]:
        """One line per run that has ``metric``, in the runs' order and colours."""
        lines = []
        for run in self.runs:
            found = self.series.get(run.id)
            line = found.line(metric) if found else None
            if line is not None and line.points:
                lines.append(
                    PlotLine(run.name, line.points, self._color(run.id), self._glyph(run.id))
                )
        return tuple(lines)

    def _sync_plots(self) -> None:
        shown = self.chosen or [m for m in [self._cursor_metric()] if m]
        box = self.query_one("#metrics-plots", Horizontal)
        plots = list(box.query(MetricsPlot))
        if len(plots) != max(1, len(shown)):
            with self.app.batch_update():
                box.remove_children()
                plots = [MetricsPlot() for _ in range(max(1, len(shown)))]
                box.mount_all(plots)
        if not shown:
            plots[0].show(self._nothing_plotted(), ())
            return
        for plot, metric in zip(plots, shown, strict=True):
            lines = self.plot_lines(metric)
            plot.show(metric, lines, len(self.runs) - len(lines))

    @on(DataTable.RowHighlighted, "#metrics-table")
    def _row_highlighted(self) -> None:
        if not self.chosen:
            self._sync_plots()

    # -- actions -------------------------------------------------------------------------

    def action_choose(self) -> None:
        metric = self._cursor_metric()
        if metric is None:
            return
        self._chosen_by_user = True
        if metric in self.chosen:
            self.chosen.remove(metric)
        else:
            self.chosen = [*self.chosen, metric][-MAX_PLOTS:]
        self._sync_plots()

    def action_clear_plots(self) -> None:
        self._chosen_by_user = True
        self.chosen = []
        self._sync_plots()

    def action_cursor_down(self) -> None:
        self.query_one("#metrics-table", DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one("#metrics-table", DataTable).action_cursor_up()

    def action_close(self) -> None:
        self.dismiss()
