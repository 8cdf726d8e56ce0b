"""Rich tables for the CLI on a terminal.  Every string from data is a ``Text``."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from store import paths
from store.index.query import RunRow
from store.safetext import visible
from tui.format import UNREAD_MARK, human_age, human_size, metric_value

STATUS_STYLE = {"live": "bold green", "finished": "blue", "failed": "red", "unknown": "dim"}


def print_runs(runs: Sequence[RunRow]) -> None:
    table = Table(box=None, header_style="bold")
    for column in ("id", "name", "framework", "status", "last write", "size", "files", "metrics"):
        table.add_column(column, overflow="fold")
    names = paths.shown_names([r.name for r in runs])  # look-alikes spelled apart
    for r, name in zip(runs, names, strict=True):
        partial = "metrics" in r.unread_parts
        metrics = Text()
        for k, v in list(r.metrics.items())[:2]:
            metrics.append(f"{' ' if metrics else ''}{visible(k)}={metric_value(v.get('last'))}")
            if partial:
                metrics.append(UNREAD_MARK, style="bold yellow")
        if partial and not metrics:
            metrics.append(UNREAD_MARK, style="bold yellow")
        table.add_row(
            str(r.id),
            Text(name),
            Text(r.framework),
            Text(r.status, style=STATUS_STYLE.get(r.status, "")),
            human_age(r.last_write),
            Text.assemble(
                human_size(r.size_bytes), (UNREAD_MARK, "bold yellow") if r.unread_places else ""
            ),
            str(r.n_artifacts),
            metrics,
        )
    console = Console()
    console.print(table)
    notes = (
        (
            sum(1 for r in runs if r.unread_places),
            "size and files leave out folders the last scan could not read",
            "names them",
        ),
        (
            sum(1 for r in runs if "metrics" in r.unread_parts),
            "metrics read in part: a file they come from could not be read whole",
            "says why",
        ),
    )
    for count, what, why in notes:
        if count:
            console.print(
                f"{UNREAD_MARK} {what} ({count} run{'s' if count > 1 else ''};"
                f" `artlens runs --json` {why})",
                style="yellow",
                markup=False,
                highlight=False,
            )
