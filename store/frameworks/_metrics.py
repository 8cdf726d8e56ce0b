"""Metric direction guessing and series summaries."""

from __future__ import annotations

import math

from store.frameworks.flatten import Note, report
from store.frameworks.model import MetricSummary, Series
from store.metric_direction import direction_of

__all__ = ["direction_of", "summarize"]


def summarize(name: str, points: list[tuple[int, float]]) -> MetricSummary:
    """Last and best (by direction) of a series in logging order; NaNs are not best."""
    direction = direction_of(name)
    if not points:
        return MetricSummary(None, None, None, None, 0, direction)
    last_step, last = points[-1]
    best: float | None = None
    best_step: int | None = None
    if direction is not None:
        for step, value in points:
            if math.isnan(value):
                continue
            if best is None or (value < best if direction == "min" else value > best):
                best, best_step = value, step
    return MetricSummary(last, last_step, best, best_step, len(points), direction)


def summarize_all(
    series: Series, finals: dict[str, tuple[int | None, float]]
) -> dict[str, MetricSummary]:
    """Summaries for every series, plus metrics known only by a final value."""
    out = {name: summarize(name, points) for name, points in series.items() if points}
    for name, (step, value) in finals.items():
        if name in out:
            continue
        direction = direction_of(name)
        best = value if direction is not None and not math.isnan(value) else None
        out[name] = MetricSummary(
            value, step, best, step if best is not None else None, 1, direction
        )
    return out


MAX_POINTS = 1_000_000
"""Points of one metric kept per run; past them only the newest logged is kept (as the
last), the metric's count and best are of the kept ones, and the metrics are marked read
in part."""


def add_point(series: Series, name: str, step: int, value: float, cap: int = MAX_POINTS) -> None:
    """Append one point, bounded per metric so a hostile log cannot exhaust memory.

    Past ``cap`` points the newest one logged takes the place of the one after the cap, so
    "last" stays the log's last; the first point dropped is said (a ``Note`` that marks the
    metrics read in part: a count, best or diff over the kept points is not the file's).
    """
    points = series.setdefault(name, [])
    if len(points) < cap:
        points.append((step, value))
        return
    if len(points) == cap:
        points.append((step, value))
        report(
            Note(
                "metrics",
                f"metric {name[:200]}: more than {cap:,} points; only the first {cap:,} and the"
                " newest are kept",
                cut=1,
            )
        )
        return
    points[-1] = (step, value)
