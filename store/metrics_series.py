"""Metric series of indexed runs, for plots: read from the runs' own files, thinned for drawing.

``read_run_series`` re-reads one run through ``store.frameworks.read_metric_reading`` (so
TensorBoard scalars, W&B history, MLflow metric files, Lightning ``metrics.csv`` and the
HF ``log_history`` all work), summarises every series at full resolution, then keeps at
most ``max_points`` points per metric, with each bucket's lowest and highest value so
spikes survive.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from store.frameworks import RunSpec, read_metric_reading
from store.frameworks._metrics import summarize
from store.index.query import RunRow
from store.safetext import visible

MAX_POINTS = 600
MAX_METRICS = 500

Point = tuple[int, float]


@dataclass(frozen=True)
class MetricLine:
    """One metric of one run: thinned points and the summary of the full series."""

    name: str
    points: tuple[Point, ...]
    last: float | None
    last_step: int | None
    best: float | None
    best_step: int | None
    n: int
    direction: str | None


@dataclass(frozen=True)
class RunSeries:
    """Every metric of one run, sorted by name."""

    run_id: int
    run_name: str
    metrics: tuple[MetricLine, ...]
    warnings: tuple[str, ...] = ()
    unread: str | None = None
    """Why the run's metrics were not read whole (a reader's warning), None when they were:
    its lines (or their absence) may leave out what its files hold."""

    def line(self, name: str) -> MetricLine | None:
        return next((m for m in self.metrics if m.name == name), None)


def spec_of(run: RunRow) -> RunSpec:
    """The detection record of an indexed run, rebuilt from its row."""
    extra = run.meta.get("extra_paths") or []
    key = run.meta.get("run_key")
    return RunSpec(
        path=os.fsdecode(run.path),
        framework=run.framework,
        name=run.name,
        experiment=run.experiment,
        extra_paths=tuple(str(p) for p in extra) if isinstance(extra, list) else (),
        run_key=key if isinstance(key, str) else None,
    )


def thin(points: list[Point], max_points: int = MAX_POINTS) -> tuple[Point, ...]:
    """At most ``max_points`` points in step order: each bucket's min and max, and the last."""
    if len(points) <= max_points:
        return tuple(points)
    buckets = max(1, max_points // 2)
    size = len(points) / buckets
    out: list[Point] = []
    for index in range(buckets):
        chunk = points[int(index * size) : int((index + 1) * size)]
        finite = [p for p in chunk if math.isfinite(p[1])]
        if not finite:
            continue
        low = min(finite, key=lambda p: p[1])
        high = max(finite, key=lambda p: p[1])
        out.extend(sorted({low, high}))
    if out and out[-1] != points[-1]:
        out.append(points[-1])
    return tuple(out)


def read_run_series(
    run: RunRow, *, max_points: int = MAX_POINTS, from_files: bool = True
) -> RunSeries:
    """Every metric of ``run``; metrics known only by a final value come from the index.
    ``from_files=False`` (a remote's mirrored run: its files are on its host) reads no
    file: every metric is its index summary, without a curve."""
    if from_files:
        reading = read_metric_reading(Path(os.fsdecode(run.root)), spec_of(run))
        series = reading.series
        unread = visible(reading.unread) if reading.unread is not None else None
    else:
        series, unread = {}, _index_unread(run)
    lines: list[MetricLine] = []
    for name in sorted(series)[:MAX_METRICS]:
        points = series[name]
        summary = summarize(name, points)
        lines.append(
            MetricLine(
                visible(name),
                thin(points, max_points),
                summary.last,
                summary.last_step,
                summary.best,
                summary.best_step,
                summary.n,
                summary.direction,
            )
        )
    for name, known in sorted(run.metrics.items()):
        if name in series or not isinstance(known, dict) or len(lines) >= MAX_METRICS:
            continue
        lines.append(
            MetricLine(
                visible(name),
                (),
                _number(known.get("last")),
                _int(known.get("last_step")),
                _number(known.get("best")),
                _int(known.get("best_step")),
                _int(known.get("n")) or 1,
                known.get("direction") if known.get("direction") in ("min", "max") else None,
            )
        )
    lines.sort(key=lambda line: line.name)
    metric_names = set(series) | {n for n, k in run.metrics.items() if isinstance(k, dict)}
    left = len(metric_names) - len(lines)
    warnings = (
        (f"{visible(run.name)}: {left} more metrics not shown (the first {MAX_METRICS} by name)",)
        if left > 0
        else ()
    )
    return RunSeries(run.id, run.name, tuple(lines), warnings, unread)


def _index_unread(run: RunRow) -> str | None:
    """Why the index says ``run``'s metrics were read in part (its first warning), or None."""
    if "metrics" not in run.unread_parts:
        return None
    said = run.meta.get("warnings")
    first = said[0] if isinstance(said, list) and said and isinstance(said[0], str) else None
    return visible(first) if first else "a file was not read whole"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value
