"""Metric direction guessing and series summaries."""

from __future__ import annotations

import math
import re

from store.frameworks.model import MetricSummary, Series

_MIN_WORDS = frozenset(
    [
        "loss",
        "losses",
        "error",
        "err",
        "errors",
        "perplexity",
        "ppl",
        "mse",
        "mae",
        "rmse",
        "wer",
        "cer",
        "nll",
        "bpd",
        "bpc",
        "fid",
    ]
)
_MAX_WORDS = frozenset(
    [
        "acc",
        "accuracy",
        "f1",
        "auc",
        "auroc",
        "roc",
        "bleu",
        "precision",
        "recall",
        "map",
        "iou",
        "miou",
        "reward",
        "rewards",
        "return",
        "rouge",
        "dice",
        "r2",
        "top1",
        "top5",
    ]
)
_MAX_PREFIX = re.compile(r"^(acc|map\d|f1|auc|iou|bleu|rouge|top\d|precision|recall)")
_SPLIT = re.compile(r"[^a-z0-9]+")


def direction_of(name: str) -> str | None:
    """'min' for losses and errors, 'max' for accuracies and scores, None when unsure."""
    tokens = [t for t in _SPLIT.split(name.lower()) if t]
    if any(t in _MIN_WORDS or t.startswith("loss") for t in tokens):
        return "min"
    if any(t in _MAX_WORDS or _MAX_PREFIX.match(t) for t in tokens):
        return "max"
    return None


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


def add_point(series: Series, name: str, step: int, value: float, cap: int = 1_000_000) -> None:
    """Append one point, bounded per metric so a hostile log cannot exhaust memory."""
    points = series.setdefault(name, [])
    if len(points) < cap:
        points.append((step, value))
