"""Compare two training runs as plain data: params, metrics, environment and artifacts.

The index knows each run's flattened params, metric summaries, package versions and
artifact list; this module says what differs and, for metrics with a known direction,
which run did better.  It never touches the disk, so the lead can feed it from SQLite.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

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


@dataclass
class RunSide:
    params: dict[str, object] = field(default_factory=dict)
    metrics: Mapping[str, MetricSummary | Mapping[str, Any]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    artifacts: Sequence[tuple[str, int, str | None]] = field(default_factory=list)
    unread: frozenset[str] = frozenset()
    """Parts ("params", "metrics", "env") a file that could not be read whole leaves out:
    what this side lacks there is unknown, not removed."""


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
    )


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
) -> list[MetricDelta]:
    result: list[MetricDelta] = []
    for name in sorted(set(old) | set(new)):
        a, b = _summary(old.get(name)), _summary(new.get(name))
        last_a = a.last if a else None
        last_b = b.last if b else None
        direction = (a.direction if a else None) or (b.direction if b else None)
        direction = direction or metric_direction(name)
        delta: float | None = None
        if last_a is not None and last_b is not None:
            both_nan = math.isnan(last_a) and math.isnan(last_b)
            delta = 0.0 if last_a == last_b or both_nan else last_b - last_a
        percent = (
            delta / abs(last_a) * 100
            if delta is not None and last_a and math.isfinite(last_a)
            else None
        )
        better: Better | None = None
        # a side that became NaN is no number to rank by: which run did better is unknown
        if delta is not None and direction is not None and not math.isnan(delta):
            if delta == 0:
                better = "same"
            elif (delta < 0) == (direction == "min"):
                better = "new"
            else:
                better = "old"
        result.append(MetricDelta(name, last_a, last_b, delta, percent, direction, better))
    return result


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
    old: Sequence[tuple[str, int, str | None]], new: Sequence[tuple[str, int, str | None]]
) -> ArtifactDiff:
    """Artifacts by run-relative path; a removed file whose hash reappears is ``moved``."""
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
    gone = [path for path in old_by_path if path not in new_by_path]
    fresh = [path for path in new_by_path if path not in old_by_path]
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
    return ArtifactDiff(added, removed, changed, moved, unchanged, unverified)


def diff_runs(a: RunSide, b: RunSide) -> RunDiff:
    """Everything that differs between two runs; see the module docstring."""
    unknown: list[str] = []
    params = _known(diff_params(a.params, b.params), "params", a, b, unknown)
    metrics = _known(diff_metrics(a.metrics, b.metrics), "metrics", a, b, unknown)
    env = _known(diff_env(a.env, b.env), "env", a, b, unknown)
    artifacts = diff_artifacts(a.artifacts, b.artifacts)
    equal = (
        not params
        and not env
        and not unknown
        and all(m.delta == 0 or (m.old is None and m.new is None) for m in metrics)
        and not (artifacts.added or artifacts.removed or artifacts.changed or artifacts.moved)
    )
    return RunDiff(params, metrics, env, artifacts, equal, unknown=unknown)


_Entry = TypeVar("_Entry", Change, MetricDelta, PackageChange)


def _only_one_side(entry: Change | MetricDelta | PackageChange) -> str | None:
    """ "a" for an entry only the old side has, "b" for one only the new side has."""
    if isinstance(entry, MetricDelta):
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
        uncompared = (
            f"; {dropped[other]} of {other.upper()}'s not compared" if dropped[other] else ""
        )
        unknown.append(f"{part} of {label} could not all be read{uncompared}")
    return kept


def diff_params(old: Mapping[str, object], new: Mapping[str, object]) -> list[Change]:
    """Changes between flattened params; keys are already full dotted paths."""
    changes: list[Change] = []
    for key in sorted(set(old) | set(new), key=str):
        if key not in new:
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
