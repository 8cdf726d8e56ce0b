"""Compare two training runs as plain data: params, metrics, environment and artifacts.

The index knows each run's flattened params, metric summaries, package versions and
artifact list; this module says what differs and, for metrics with a known direction,
which run did better.  It never touches the disk, so the lead can feed it from SQLite.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from store import paths
from store.diff._io import DiffError
from store.diff.configs import ConfigDiff
from store.diff.structured import Change, diff_structured
from store.metric_direction import direction_of

if TYPE_CHECKING:
    from store.diff.checkpoints import TensorSummary

Direction = Literal["min", "max"]
Better = Literal["old", "new", "same"]


@dataclass(frozen=True)
class MetricSummary:
    last: float | None
    best: float | None = None
    direction: Direction | None = None
    last_step: int | None = None
    best_step: int | None = None
    n: int | None = None


@dataclass
class RunSide:
    params: dict[str, object] = field(default_factory=dict)
    metrics: Mapping[str, MetricSummary | Mapping[str, Any]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    artifacts: Sequence[tuple[str, int, str | None]] = field(default_factory=list)
    unread: frozenset[str] = frozenset()
    """Parts ("params", "metrics", "env") a file that could not be read whole leaves out:
    what this side lacks there is unknown, not removed."""
    repeated: Mapping[str, Any] = field(default_factory=dict)
    """The run's params and metrics that depend on which value of a key its file repeats
    counts (``store.frameworks._repeats.REPEATED_KEYS`` of its meta)."""
    name: str = ""
    """The run's name, for the warnings (``A``/``B`` when empty)."""
    params_cut: int = 0
    """Params the run's files hold that its readers did not keep (past their caps):
    ``params`` is then in ``unread``, and the diff says how many it could not compare."""
    params_cut_at_least: bool = False
    """``params_cut`` is a floor (the count stopped at its own budget)."""
    unlisted: Mapping[str, str] = field(default_factory=dict)
    """Places of this run, as its artifacts are shown (``""``: the whole run), whose files
    could not be listed (a folder) or examined (an entry), and why: a file the other side
    holds there may be here too, so it is unknown, not added or removed."""


@dataclass(frozen=True)
class MetricDelta:
    name: str
    old: float | None
    new: float | None
    delta: float | None
    percent: float | None
    direction: Direction | None
    better: Better | None
    """Which side is better by ``last`` value; None without a direction or a value."""
    ambiguous: bool = False
    """A side's file repeats a key this metric is read from, and the delta depends on which
    of its values counts: ``old``/``new`` are the last values (what was shown), ``delta``,
    ``percent`` and ``better`` are None."""
    series: tuple[tuple[str, float | int, float | int], ...] = ()
    """What else of the two series' summaries differs, as (field, old, new): ``best``,
    ``best_step``, ``last_step``, ``n``.  Two runs ending on the same value may still have
    logged different series (another best, more steps): the metric changed all the same."""
    only: Literal["old", "new"] | None = None
    """The side that logged this metric when the other did not (its ``old`` or ``new`` is
    then None for that reason, not for want of a last value)."""

    @property
    def changed(self) -> bool:
        """The metric differs between the runs: its last value, a side without it, or
        another part of its series (an ambiguous metric is neither changed nor same)."""
        if self.ambiguous:
            return False
        last_differs = self.delta is not None and self.delta != 0
        return last_differs or (self.old is None) != (self.new is None) or bool(self.series)


@dataclass(frozen=True)
class PackageChange:
    name: str
    kind: Literal["added", "removed", "changed"]
    old: str | None
    new: str | None


@dataclass(frozen=True)
class ArtifactChange:
    path: str
    old_size: int | None
    new_size: int | None
    old_hash: str | None
    new_hash: str | None
    tensors: TensorSummary | None = None
    """A changed checkpoint's tensors changed and largest change (store.diff.checkpoints)."""


@dataclass(frozen=True)
class ArtifactMove:
    old_path: str
    new_path: str
    size: int
    hash: str


@dataclass
class ArtifactDiff:
    added: list[ArtifactChange]
    removed: list[ArtifactChange]
    changed: list[ArtifactChange]
    moved: list[ArtifactMove]
    unchanged: list[str]
    unverified: list[str]
    """Same path and size but no hash on one side: probably unchanged."""
    unknown: list[str] = field(default_factory=list)
    """Paths one side holds under a place the other could not list (``RunSide.unlisted``):
    neither added nor removed, as the other side may hold them too."""


@dataclass(frozen=True)
class StaleFile:
    """A run's file whose disk state is not what the index recorded: the diff compared the
    disk's version (``hashed``), or only its size (``note`` says why)."""

    side: Literal["a", "b"]
    path: str
    change: Literal["modified", "new", "vanished", "unreadable"]
    indexed_size: int | None
    disk_size: int | None
    hashed: bool
    note: str | None


@dataclass
class RunDiff:
    params: list[Change]
    metrics: list[MetricDelta]
    env: list[PackageChange]
    artifacts: ArtifactDiff
    equal: bool
    configs: list[ConfigDiff] = field(default_factory=list)
    """Every config file both runs hold whose values differ, key by key."""
    stale: list[StaleFile] = field(default_factory=list)
    """Files changed on disk since they were indexed (compared as they are on disk)."""
    unknown: list[str] = field(default_factory=list)
    """What was not compared because a side's files could not be read whole: one line each,
    naming the side and how many entries of the other side went uncompared."""
    ambiguous: list[str] = field(default_factory=list)
    """One line per param and metric called ``ambiguous`` (a repeated key's value decides
    whether it changed), naming the run, its file and the key."""
    nonfinite: list[str] = field(default_factory=list)
    """One line per metric NaN (or the same infinity) in both runs: unchanged, with no
    delta and no better run, said so that an equal diff does not hide two diverged runs."""
    sources: tuple[dict[str, str], dict[str, str]] = field(default_factory=lambda: ({}, {}))
    """Per side, artifact paths that are not the file's path in its run folder (an MLflow
    logged model's ``models/<name>/...``) -> the file's path relative to the run's root,
    so a reader of the diff opens the right file."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def metric_direction(name: str) -> Direction | None:
    """``min`` for loss-like names, ``max`` for accuracy-like names, else None."""
    return direction_of(name)


def _summary(value: MetricSummary | Mapping[str, Any] | None) -> MetricSummary | None:
    if value is None or isinstance(value, MetricSummary):
        return value
    direction = value.get("direction")
    return MetricSummary(
        _float(value.get("last")),
        _float(value.get("best")),
        direction if direction in ("min", "max") else None,
        _int(value.get("last_step")),
        _int(value.get("best_step")),
        _int(value.get("n")),
    )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _series_changes(
    a: MetricSummary | None, b: MetricSummary | None
) -> tuple[tuple[str, float | int, float | int], ...]:
    """The summary fields besides ``last`` that both sides hold and that differ (a best
    NaN on both sides, or the same infinity, is no difference)."""
    if a is None or b is None:
        return ()
    found: list[tuple[str, float | int, float | int]] = []
    best_a, best_b = a.best, b.best
    # NaN != NaN, yet two NaN bests are no difference
    if best_a is not None and best_b is not None and best_a != best_b:
        found += [] if same_nonfinite(best_a, best_b) else [("best", best_a, best_b)]
    for name in ("best_step", "last_step", "n"):
        old, new = getattr(a, name), getattr(b, name)
        if old is not None and new is not None and old != new:
            found.append((name, old, new))
    return tuple(found)


def _float(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def diff_metrics(
    old: Mapping[str, MetricSummary | Mapping[str, Any]],
    new: Mapping[str, MetricSummary | Mapping[str, Any]],
    ambiguous: Collection[str] = (),
) -> list[MetricDelta]:
    """Metric by metric; those named in ``ambiguous`` without a delta (``MetricDelta``)."""
    result: list[MetricDelta] = []
    for name in sorted(set(old) | set(new) | set(ambiguous)):
        a, b = _summary(old.get(name)), _summary(new.get(name))
        only: Literal["old", "new"] | None = None
        if (name in old) != (name in new) and name not in ambiguous:
            only = "old" if name in old else "new"
        last_a = a.last if a else None
        last_b = b.last if b else None
        direction = (a.direction if a else None) or (b.direction if b else None)
        direction = direction or metric_direction(name)
        if name in ambiguous:
            result.append(MetricDelta(name, last_a, last_b, None, None, direction, None, True))
            continue
        delta, percent, better = _compare(last_a, last_b, direction)
        series = _series_changes(a, b)
        result.append(
            MetricDelta(
                name, last_a, last_b, delta, percent, direction, better, False, series, only
            )
        )
    return result


def _compare(
    last_a: float | None, last_b: float | None, direction: Direction | None
) -> tuple[float | None, float | None, Better | None]:
    """Delta, percent and which side is better, of two last values.  A side that is no
    finite number (NaN, inf: a diverged run) is not ranked: which run did better is
    unknown; two sides NaN alike (or the same inf) have no delta (``NaN - NaN`` is no
    0), and are unchanged (``same_nonfinite``), not "same" as two equal numbers."""
    delta: float | None = None
    if same_nonfinite(last_a, last_b):
        return None, None, None
    if last_a is not None and last_b is not None:
        delta = 0.0 if last_a == last_b else last_b - last_a
    finite = delta is not None and math.isfinite(delta)
    percent = delta / abs(last_a) * 100 if delta is not None and finite and last_a else None
    better: Better | None = None
    if delta is not None and finite and direction is not None:
        if delta == 0:
            better = "same"
        elif (delta < 0) == (direction == "min"):
            better = "new"
        else:
            better = "old"
    return delta, percent, better


def same_nonfinite(old: float | None, new: float | None) -> bool:
    """Both values NaN, or the same infinity: unchanged, and no number to rank by."""
    if old is None or new is None or math.isfinite(old) or math.isfinite(new):
        return False
    return (math.isnan(old) and math.isnan(new)) or old == new


def diff_env(old: Mapping[str, str], new: Mapping[str, str]) -> list[PackageChange]:
    changes: list[PackageChange] = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            changes.append(PackageChange(name, "removed", old[name], None))
        elif name not in old:
            changes.append(PackageChange(name, "added", None, new[name]))
        elif old[name] != new[name]:
            changes.append(PackageChange(name, "changed", old[name], new[name]))
    return changes


def diff_artifacts(
    old: Sequence[tuple[str, int, str | None]],
    new: Sequence[tuple[str, int, str | None]],
    old_unlisted: Collection[str] = (),
    new_unlisted: Collection[str] = (),
) -> ArtifactDiff:
    """Artifacts by run-relative path; a removed file whose hash reappears is ``moved``.
    A file only one side holds, under a place the other could not list (``*_unlisted``), is
    ``unknown``: it is never paired as moved either."""
    old_by_path = {path: (size, digest) for path, size, digest in old}
    new_by_path = {path: (size, digest) for path, size, digest in new}
    changed: list[ArtifactChange] = []
    unchanged: list[str] = []
    unverified: list[str] = []
    for path, (size, digest) in old_by_path.items():
        other = new_by_path.get(path)
        if other is None:
            continue
        new_size, new_digest = other
        if digest is not None and new_digest is not None:
            same = digest == new_digest
        else:
            same = size == new_size
            if same:
                unverified.append(path)
                continue
        if same:
            unchanged.append(path)
        else:
            changed.append(ArtifactChange(path, size, new_size, digest, new_digest))
    unknown = [
        path
        for by_path, other, blind in (
            (old_by_path, new_by_path, new_unlisted),
            (new_by_path, old_by_path, old_unlisted),
        )
        for path in by_path
        if path not in other and blind and _in_place(path, blind)
    ]
    known_one_side = set(unknown)
    gone = [p for p in old_by_path if p not in new_by_path and p not in known_one_side]
    fresh = [p for p in new_by_path if p not in old_by_path and p not in known_one_side]
    fresh_by_hash: dict[str, list[str]] = {}
    for path in fresh:
        digest = new_by_path[path][1]
        if digest is not None:
            fresh_by_hash.setdefault(digest, []).append(path)
    moved: list[ArtifactMove] = []
    moved_to: set[str] = set()
    removed: list[ArtifactChange] = []
    for path in gone:
        size, digest = old_by_path[path]
        targets = fresh_by_hash.get(digest) if digest is not None else None
        if targets:
            target = targets.pop(0)
            moved_to.add(target)
            moved.append(ArtifactMove(path, target, size, digest or ""))
        else:
            removed.append(ArtifactChange(path, size, None, digest, None))
    added = [
        ArtifactChange(path, None, new_by_path[path][0], None, new_by_path[path][1])
        for path in fresh
        if path not in moved_to
    ]
    return ArtifactDiff(added, removed, changed, moved, unchanged, unverified, sorted(unknown))


def _in_place(path: str, places: Collection[str]) -> bool:
    """``path`` is one of ``places`` or lies below one (``""`` holds every path)."""
    if "" in places or path in places:
        return True
    cut = path.rfind("/")
    while cut > 0:
        path = path[:cut]
        if path in places:
            return True
        cut = path.rfind("/")
    return False


MAX_PLACES_NAMED = 3
"""Places a side could not list named in its ``unknown`` line; the rest counted."""


def _unlisted_lines(a: RunSide, b: RunSide, artifacts: ArtifactDiff) -> list[str]:
    """One line per side that could not list all its places: which, why, and how many of
    the other side's files there were not compared."""
    lines: list[str] = []
    for label, side, other, other_label in (("A", a, b, "B"), ("B", b, a, "A")):
        if not side.unlisted:
            continue
        theirs = {path for path, _, _ in other.artifacts}
        dropped = sum(1 for p in artifacts.unknown if p in theirs and _in_place(p, side.unlisted))
        places = sorted(side.unlisted.items())
        named = "; ".join(
            f"{paths.display(place) if place else 'the run folder'} ({why})"
            for place, why in places[:MAX_PLACES_NAMED]
        )
        if len(places) > MAX_PLACES_NAMED:
            named += f"; {len(places) - MAX_PLACES_NAMED} more"
        uncompared = f"; {dropped} of {other_label}'s files there not compared" if dropped else ""
        lines.append(
            f"artifacts of {label}{_named(side)} could not all be listed: {named}{uncompared}"
        )
    return lines


def diff_runs(a: RunSide, b: RunSide) -> RunDiff:
    """Everything that differs between two runs; see the module docstring."""
    unknown: list[str] = []
    ambiguous: list[str] = []
    odd_params = _ambiguous_params(a, b, ambiguous)
    odd_metrics = _ambiguous_metrics(a, b, ambiguous)
    params = _known(diff_params(a.params, b.params, odd_params), "params", a, b, unknown)
    _cut_values(a, b, params, unknown)
    metrics = _known(diff_metrics(a.metrics, b.metrics, odd_metrics), "metrics", a, b, unknown)
    env = _known(diff_env(a.env, b.env), "env", a, b, unknown)
    artifacts = diff_artifacts(a.artifacts, b.artifacts, a.unlisted, b.unlisted)
    unknown += _unlisted_lines(a, b, artifacts)
    equal = (
        not params
        and not env
        and not unknown
        and all(
            not m.series
            and (m.delta == 0 or (m.old is None and m.new is None) or same_nonfinite(m.old, m.new))
            for m in metrics
        )
        and not any(m.ambiguous for m in metrics)
        and not (artifacts.added or artifacts.removed or artifacts.changed or artifacts.moved)
    )
    nonfinite = [
        f"metric {m.name} is {nonfinite_name(m.old)} in both runs (its last value): "
        "unchanged, but no run is better by it"
        for m in metrics
        if not m.ambiguous and same_nonfinite(m.old, m.new)
    ]
    return RunDiff(
        params,
        metrics,
        env,
        artifacts,
        equal,
        unknown=unknown,
        ambiguous=ambiguous,
        nonfinite=nonfinite,
    )


def nonfinite_name(value: float | None) -> str:
    """NaN, inf, -inf as ``artlens runs --json`` writes them."""
    if value is None or math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


# --- keys a run's file repeats -------------------------------------------------------------

_ABSENT = object()


def _repeated(side: RunSide, part: str) -> dict[str, Mapping[str, Any]]:
    """The side's ``REPEATED_KEYS`` entries of ``part`` (params or metrics), well formed."""
    found = side.repeated.get(part) if isinstance(side.repeated, Mapping) else None
    if not isinstance(found, Mapping):
        return {}
    return {str(k): v for k, v in found.items() if isinstance(v, Mapping)}


def _first(entry: Mapping[str, Any] | None, last: object) -> object:
    """A param's (or metric summary's) value when a repeated key's first value counts:
    the entry's ``first``, absent without one; ``last`` when the side has no entry."""
    return last if entry is None else entry.get("first", _ABSENT)


def _same_value(a: object, b: object) -> bool:
    if a is _ABSENT or b is _ABSENT:
        return a is b
    return not diff_structured(a, b)


def _ambiguity(
    part: str,
    name: str,
    a: RunSide,
    b: RunSide,
    entries: tuple[Mapping[str, Any] | None, Mapping[str, Any] | None],
    lines: list[str],
) -> None:
    """A warning per side whose file repeats a key ``name`` is read from."""
    for label, side, entry in (("A", a, entries[0]), ("B", b, entries[1])):
        if entry is None:
            continue
        files = entry.get("files")
        keys = entry.get("keys")
        named = ", ".join(str(f) for f in files[:3]) if isinstance(files, list) else "a file"
        repeats = "; ".join(str(k) for k in keys[:3]) if isinstance(keys, list) else ""
        lines.append(
            f"{side.name or label}: {part} {name} is ambiguous: {named} repeats the key "
            f"{repeats or 'it is read from'}; which value counts decides whether it changed"
        )


def _ambiguous_params(a: RunSide, b: RunSide, lines: list[str]) -> set[str]:
    """Params a side's repeated key makes ambiguous: a loader keeping the first value and
    one keeping the last compare them differently (or the first value is not known)."""
    rep_a, rep_b = _repeated(a, "params"), _repeated(b, "params")
    odd: set[str] = set()
    for name in sorted(set(rep_a) | set(rep_b)):
        entry_a, entry_b = rep_a.get(name), rep_b.get(name)
        last_a, last_b = a.params.get(name, _ABSENT), b.params.get(name, _ABSENT)
        first_a, first_b = _first(entry_a, last_a), _first(entry_b, last_b)
        unknown = any(e is not None and e.get("unknown") for e in (entry_a, entry_b))
        if unknown or _same_value(first_a, first_b) != _same_value(last_a, last_b):
            odd.add(name)
            _ambiguity("param", name, a, b, (entry_a, entry_b), lines)
    return odd


def _last_of(value: object) -> float | None:
    summary = _summary(value) if isinstance(value, (MetricSummary, Mapping)) else None
    return summary.last if summary is not None else None


def _ambiguous_metrics(a: RunSide, b: RunSide, lines: list[str]) -> set[str]:
    """Metrics whose delta (or which run did better) depends on which value of a key a
    side's file repeats counts."""
    rep_a, rep_b = _repeated(a, "metrics"), _repeated(b, "metrics")
    odd: set[str] = set()
    for name in sorted(set(rep_a) | set(rep_b)):
        entry_a, entry_b = rep_a.get(name), rep_b.get(name)
        last_a, last_b = _last_of(a.metrics.get(name)), _last_of(b.metrics.get(name))
        first_a = _last_of(_first(entry_a, None)) if entry_a is not None else last_a
        first_b = _last_of(_first(entry_b, None)) if entry_b is not None else last_b
        summary = _summary(a.metrics.get(name)) or _summary(b.metrics.get(name))
        direction = (summary.direction if summary else None) or metric_direction(name)
        unknown = any(e is not None and e.get("unknown") for e in (entry_a, entry_b))
        by_last = _compare(last_a, last_b, direction)
        by_first = _compare(first_a, first_b, direction)
        if unknown or not _same_value(_comparable(by_first), _comparable(by_last)):
            odd.add(name)
            _ambiguity("metric", name, a, b, (entry_a, entry_b), lines)
    return odd


def _comparable(found: tuple[float | None, float | None, Better | None]) -> object:
    """Delta and verdict of one reading, NaN spelled (NaN is no equal of itself)."""
    delta, _, better = found
    return [None if delta is None else "nan" if math.isnan(delta) else delta, better]


_Entry = TypeVar("_Entry", Change, MetricDelta, PackageChange)


def _only_one_side(entry: Change | MetricDelta | PackageChange) -> str | None:
    """ "a" for an entry only the old side has, "b" for one only the new side has."""
    if isinstance(entry, MetricDelta):
        if entry.only is not None:  # one run logged it, with or without a last value
            return "a" if entry.only == "old" else "b"
        if entry.new is None and entry.old is not None:
            return "a"
        return "b" if entry.old is None and entry.new is not None else None
    return {"removed": "a", "added": "b"}.get(entry.kind)


def _known(
    entries: list[_Entry], part: str, a: RunSide, b: RunSide, unknown: list[str]
) -> list[_Entry]:
    """``entries`` less those only one side has where the other could not read ``part``
    whole: said once in ``unknown`` instead ("removed" would be a guess)."""
    blind = {side for side, run in (("a", a), ("b", b)) if part in run.unread}
    if not blind:
        return entries
    kept: list[_Entry] = []
    dropped = {"a": 0, "b": 0}
    for entry in entries:
        only = _only_one_side(entry)
        if only is not None and ("b" if only == "a" else "a") in blind:
            dropped[only] += 1
            continue
        kept.append(entry)
    for side in sorted(blind):
        other = "b" if side == "a" else "a"
        label = "A" if side == "a" else "B"
        run = a if side == "a" else b
        uncompared = (
            f"; {dropped[other]} of {other.upper()}'s not compared" if dropped[other] else ""
        )
        cut = ""
        if part == "params" and run.params_cut:
            more = " or more" if run.params_cut_at_least else ""
            cut = f" ({run.params_cut}{more} params past its readers' caps not compared)"
        unknown.append(f"{part} of {label} could not all be read{cut}{uncompared}")
    return kept


def _named(run: RunSide) -> str:
    return f" ({run.name})" if run.name else ""


def _cut_values(a: RunSide, b: RunSide, changes: list[Change], unknown: list[str]) -> None:
    """A param both sides hold, equal as far as read, whose value a side's reader cut
    short (``flatten.is_cut``): not known equal, said in ``unknown``."""
    from store.frameworks.flatten import is_cut

    changed: set[str] = set()
    for change in changes:  # a change of a key's value is named key, key.sub or key[i]
        path = change.path
        changed.add(path)
        changed.update(path[:i] for i, char in enumerate(path) if char in ".[")
    cut: dict[str, list[str]] = {"A": [], "B": []}
    for key in sorted(set(a.params) & set(b.params), key=str):
        if key in changed:
            continue
        for label, side in (("A", a), ("B", b)):
            if is_cut(side.params[key]):
                cut[label].append(key)
    for label, keys in cut.items():
        if keys:
            run = a if label == "A" else b
            named = ", ".join(keys[:5]) + (" ..." if len(keys) > 5 else "")
            unknown.append(
                f"params of {label}{_named(run)}: {len(keys)} params not compared, their "
                f"values cut short when read ({named}): equal as far as read"
            )


def diff_params(
    old: Mapping[str, object], new: Mapping[str, object], ambiguous: Collection[str] = ()
) -> list[Change]:
    """Changes between flattened params; keys are already full dotted paths.  A key in
    ``ambiguous`` is one ``ambiguous`` change (the last values as ``old``/``new``)."""
    changes: list[Change] = []
    for key in sorted(set(old) | set(new) | set(ambiguous), key=str):
        if key in ambiguous:
            changes.append(Change(key, "ambiguous", old.get(key), new.get(key)))
        elif key not in new:
            changes.append(Change(key, "removed", old[key], None))
        elif key not in old:
            changes.append(Change(key, "added", None, new[key]))
        else:
            for change in diff_structured(old[key], new[key]):
                sub = change.path
                path = key + sub if not sub or sub.startswith("[") else f"{key}.{sub}"
                changes.append(Change(path, change.kind, change.old, change.new))
    return changes


_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def normalize_package(name: str) -> str:
    """PEP 503 normal form, so ``Torch_Vision`` and ``torch-vision`` compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(line: str) -> tuple[str, str] | None:
    line = line.split(" #", 1)[0].split(";", 1)[0].strip()
    if not line or line.startswith(("#", "-")):
        return None
    if "://" in line and " @ " not in line and "@" not in line.split("://", 1)[0]:
        return None
    match = _REQ_NAME.match(line)
    if match is None:
        return None
    name, rest = match.group(1), match.group(3).split(" --", 1)[0].strip()
    if rest.startswith("@"):
        return normalize_package(name), rest
    if rest.startswith("==") and "," not in rest:
        return normalize_package(name), rest[2:].strip()
    return normalize_package(name), rest.replace(" ", "")


def parse_requirements(text: str) -> dict[str, str]:
    """Package -> version (``==`` pins) or specifier text from a requirements.txt."""
    packages: dict[str, str] = {}
    joined = re.sub(r"\\\r?\n", " ", text)
    for line in joined.splitlines():
        parsed = _requirement(line)
        if parsed is not None:
            packages[parsed[0]] = parsed[1]
    return packages


def parse_conda_env(text: str) -> dict[str, str]:
    """Package -> version from a conda ``environment.yml`` (conda and pip sections).

    Raises ``DiffError`` when the text is not such a YAML document.
    """
    from store.diff.structured import parse_structured

    document = parse_structured(text.encode("utf-8", "surrogateescape"), "yaml")
    if not isinstance(document, dict):
        raise DiffError("environment file is not a YAML mapping")
    dependencies = document.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise DiffError("environment 'dependencies' is not a list")
    packages: dict[str, str] = {}
    for entry in dependencies:
        if isinstance(entry, dict):
            pip = entry.get("pip")
            if isinstance(pip, list):
                packages.update(parse_requirements("\n".join(str(item) for item in pip)))
            continue
        spec = str(entry).strip()
        spec = spec.split("::", 1)[-1]
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)$", spec)
        if match is None:
            continue
        name, rest = match.group(1), match.group(2).strip()
        if rest.startswith("==") or (rest.startswith("=") and not rest.startswith("=<")):
            version = rest.lstrip("=").split("=", 1)[0].strip()
        else:
            version = rest.replace(" ", "")
        packages[normalize_package(name)] = version
    return packages
