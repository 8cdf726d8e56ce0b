"""A line plot of one metric over steps for several runs, drawn in braille dots.

Each cell holds 2x4 dots, so 70x8 cells give a 140x32 grid: enough to read a loss curve at
80x24.  Runs get the terminal's standard colours (no truecolor needed) and a legend with
their last value; where two runs cross, the later run's colour wins the cell.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget

from store.metrics_series import Point
from store.safetext import visible
from tui.format import fit_apart, metric_value

COLORS = ("cyan", "magenta", "yellow", "green", "red", "blue", "bright_white")
"""Series colours: the 16-colour palette, so they work without truecolor."""
GLYPHS = ("●", "▲", "■", "◆", "✚", "✖", "○")
"""One mark per series, drawn on some of its points and in the legend: without colour
(NO_COLOR, a monochrome terminal) the series still tell apart."""
MARKS_PER_SERIES = 6
_DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
"""Braille dot bit for (row 0-3, column 0-1) inside one cell."""
LEGEND_WIDTH = 24
"""Cells of a run's name in the legend before it is cut (``format.fit_apart``)."""
Y_LABEL_WIDTH = 8


@dataclass(frozen=True)
class PlotLine:
    """One run's series in a plot."""

    label: str
    points: tuple[Point, ...]
    color: str
    glyph: str = "●"


def _bounds(lines: tuple[PlotLine, ...]) -> tuple[float, float, float, float] | None:
    xs = [x for line in lines for x, y in line.points if math.isfinite(y)]
    ys = [y for line in lines for _, y in line.points if math.isfinite(y)]
    if not xs:
        return None
    x0, x1, y0, y1 = float(min(xs)), float(max(xs)), min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 - y0 <= 1e-12 * max(1.0, abs(y1)):
        pad = abs(y1) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    return x0, x1, y0, y1


def draw(
    title: str, lines: tuple[PlotLine, ...], width: int, height: int, not_plotted: int = 0
) -> Text:
    """The plot as ``Text``: title, ``height - 3`` rows of curve, x axis, legend.
    ``not_plotted``: runs shown beside the plot that have no curve of this metric; the
    legend says how many, and how many of its own entries did not fit."""
    out = Text(no_wrap=True, overflow="crop")
    out.append(visible(title)[: max(1, width)], style="bold")
    rows = max(1, height - 3)
    cols = max(4, width - Y_LABEL_WIDTH - 1)
    bounds = _bounds(lines)
    if bounds is None:
        out.append("\n")
        out.append(
            "no points to plot" if lines or not_plotted else "choose a metric", style="dim italic"
        )
        return out
    x0, x1, y0, y1 = bounds
    dots_w, dots_h = cols * 2, rows * 4
    cells = [[0] * cols for _ in range(rows)]
    colors: list[list[str | None]] = [[None] * cols for _ in range(rows)]

    def dot(px: int, py: int, color: str) -> None:
        if 0 <= px < dots_w and 0 <= py < dots_h:
            row, col = py // 4, px // 2
            cells[row][col] |= _DOT_BITS[py % 4][px % 2]
            colors[row][col] = color

    def to_dot(x: float, y: float) -> tuple[int, int]:
        px = round((x - x0) / (x1 - x0) * (dots_w - 1))
        py = round((y1 - y) / (y1 - y0) * (dots_h - 1))
        return px, py

    marks: dict[tuple[int, int], tuple[str, str]] = {}
    for line in lines:
        finite = [(x, y) for x, y in line.points if math.isfinite(y)]
        step = max(1, len(finite) // MARKS_PER_SERIES)
        for x, y in finite[step - 1 :: step]:
            px, py = to_dot(float(x), y)
            if 0 <= px < dots_w and 0 <= py < dots_h:
                marks[(py // 4, px // 2)] = (line.glyph, line.color)
        previous: tuple[int, int] | None = None
        for x, y in line.points:
            if not math.isfinite(y):
                previous = None
                continue
            current = to_dot(float(x), y)
            if previous is None:
                dot(*current, line.color)
            else:
                _segment(previous, current, line.color, dot)
            previous = current
    labels = {0: metric_value(y1), rows - 1: metric_value(y0)}
    if rows >= 5:
        labels[rows // 2] = metric_value((y0 + y1) / 2)
    for row in range(rows):
        out.append("\n")
        out.append(labels.get(row, "").rjust(Y_LABEL_WIDTH)[:Y_LABEL_WIDTH], style="dim")
        out.append("┤" if row in labels else "│", style="dim")
        for col in range(cols):
            mark = marks.get((row, col))
            if mark is not None:
                out.append(mark[0], style=mark[1])
                continue
            bits = cells[row][col]
            out.append(chr(0x2800 + bits) if bits else " ", style=colors[row][col] or "")
    left, right = f"{int(x0)}", f"step {int(x1)}"
    out.append("\n" + " " * (Y_LABEL_WIDTH + 1), style="dim")
    out.append(left + right.rjust(max(1, cols - len(left))), style="dim")
    out.append("\n")
    legend = fit_apart([visible(line.label) for line in lines], LEGEND_WIDTH)
    entries = []
    for line, label in zip(lines, legend, strict=True):
        last = next((y for _, y in reversed(line.points) if math.isfinite(y)), None)
        entries.append((line, f"{label} {metric_value(last)}  "))
    fit = len(entries)
    while fit > 1 and _legend_width(entries[:fit], len(entries) - fit, not_plotted) > width:
        fit -= 1  # fewer entries, and a count of the others: never a run silently left out
    for line, entry in entries[:fit]:
        out.append(f"{line.glyph} ", style=line.color)
        out.append(entry)
    out.append(_legend_tail(len(entries) - fit, not_plotted), style="dim")
    return out


def _legend_tail(more: int, not_plotted: int) -> str:
    """After the legend's entries: lines it had no room for, runs without a curve."""
    parts = [f"+{more} more"] if more else []
    if not_plotted:
        parts.append(f"{not_plotted} not plotted")
    return " · ".join(parts)


def _legend_width(entries: list[tuple[PlotLine, str]], more: int, not_plotted: int) -> int:
    return sum(cell_len(entry) + 2 for _, entry in entries) + cell_len(
        _legend_tail(more, not_plotted)
    )


def _segment(
    start: tuple[int, int],
    end: tuple[int, int],
    color: str,
    dot: Callable[[int, int, str], None],
) -> None:
    """Bresenham's line between two dots."""
    (xa, ya), (xb, yb) = start, end
    dx, dy = abs(xb - xa), -abs(yb - ya)
    sx, sy = (1 if xa < xb else -1), (1 if ya < yb else -1)
    error = dx + dy
    for _ in range(dx - dy + 1):
        dot(xa, ya, color)
        if xa == xb and ya == yb:
            break
        twice = 2 * error
        if twice >= dy:
            error += dy
            xa += sx
        if twice <= dx:
            error += dx
            ya += sy


class MetricsPlot(Widget):
    """One metric over steps, one coloured line per run; redrawn to its size."""

    def __init__(
        self, title: str = "", lines: tuple[PlotLine, ...] = (), *, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.title = title
        self.lines = lines
        """What the plot shows now (tests read it)."""
        self.not_plotted = 0
        """Runs beside the plot without a curve of its metric (the legend counts them)."""

    def show(self, title: str, lines: tuple[PlotLine, ...], not_plotted: int = 0) -> None:
        """Plot ``lines`` under ``title``; ``not_plotted`` runs have no curve of it."""
        if (title, lines, not_plotted) != (self.title, self.lines, self.not_plotted):
            self.title, self.lines, self.not_plotted = title, lines, not_plotted
            self.refresh()

    def render(self) -> Text:
        return draw(self.title, self.lines, self.size.width, self.size.height, self.not_plotted)
