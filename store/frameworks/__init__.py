"""Find training runs under a root and read what their own files say about them.

``detect_runs`` looks only at names (plus small reads of marker files such as MLflow
``meta.yaml`` or ``mlflow.db``); ``read_run`` and ``read_metric_series`` parse one run.
Bad files never raise: problems land in ``RunInfo.meta['warnings']``.

Overlap rules, so every file has one owning run:

* detection is by content: what files a folder holds, never what it is called;
* one run per folder: when several frameworks claim the same folder the most specific
  (lowest ``priority`` in its registry entry) wins: mlflow > wandb > lightning >
  hf-trainer > ultralytics > timm > mmengine > detectron2 > keras > dvclive > neptune >
  comet > nanogpt > hydra > tensorboard > generic; a Hydra config in that folder is
  merged into its params;
* MLflow, W&B, Lightning, DVCLive, Neptune, Ultralytics, timm, MMEngine and Detectron2
  runs own their whole subtree (``owns_subtree``): nothing is detected inside them; an HF
  output dir owns its ``checkpoint-N/`` folders (``owns_children``);
* bare TensorBoard folders inside any other run (HF ``runs/``, an MLflow artifact) belong
  to that run, except inside a Hydra run;
* a Hydra run stays the outer run of more specific runs inside it (files go to the
  innermost run), except around exactly one: that run takes the Hydra folder;
* a run's ``extra_paths`` never take a folder another candidate run is, holds or sits in;
* generic runs (see ``store.frameworks.generic``) never overlap a detected run.

Each framework declares these rules in its module's ``ENTRY`` (``store.frameworks.registry``).
"""

from __future__ import annotations

import bisect
import dataclasses
import importlib
import pkgutil
from collections.abc import Mapping

from store.errors import ArtlensError
from store.frameworks import _io, _repeats, registry
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks._metrics import direction_of, summarize_all
from store.frameworks.flatten import MAX_KEYS, Note, canonical, collect, flatten, jsonable, numbered
from store.frameworks.flatten import Budget as _Budget
from store.frameworks.model import (
    CUT_PARAMS,
    STATUSES,
    UNREAD_PARTS,
    DirListing,
    Loaded,
    MetricSummary,
    RunInfo,
    RunSpec,
    Series,
)

__all__ = [
    "FRAMEWORKS",
    "DirListing",
    "MetricReading",
    "MetricSummary",
    "RunInfo",
    "RunSpec",
    "detect_runs",
    "direction_of",
    "flatten",
    "read_metric_reading",
    "read_metric_series",
    "read_run",
]


def _register_built_ins() -> None:
    """Every module of this package that declares an ``ENTRY``: a new framework is a new
    module, with nothing to add here."""
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "registry":
            continue
        entry = getattr(importlib.import_module(f"{__name__}.{info.name}"), "ENTRY", None)
        if isinstance(entry, registry.Framework):
            registry.register(entry)


_register_built_ins()
FRAMEWORKS: tuple[str, ...] = registry.names()
"""Every built-in framework name, most specific first (``registry.names()`` adds the
registered ones)."""


def detect_runs(root: RootLike, listing: Mapping[str, DirListing]) -> list[RunSpec]:
    """Every run under ``root``, sorted by path; paths are unique."""
    ctx = DetectContext(root, listing)
    entries = registry.entries()
    candidates: list[RunSpec] = []
    for entry in entries:
        if entry.detect is None:
            continue
        try:
            candidates.extend(entry.detect(ctx))
        except Exception:  # a detector bug must not hide the other frameworks' runs
            continue
    kept = _hand_to_inner(_resolve(candidates))
    taken = [s.path for s in kept] + [p for s in kept for p in s.extra_paths]
    for entry in entries:
        if entry.fallback is not None:
            try:
                kept.extend(entry.fallback(ctx, taken))
            except ArtlensError:  # a config the user must fix: never the default rules
                raise
            except Exception:  # a detector bug must not hide the other frameworks' runs
                continue
    return sorted(kept, key=lambda s: s.path)


def _resolve(candidates: list[RunSpec]) -> list[RunSpec]:
    by_path: dict[str, RunSpec] = {}
    for spec in candidates:
        current = by_path.get(spec.path)
        if current is None or _priority(spec) < _priority(current):
            by_path[spec.path] = spec
    paths = sorted(by_path)
    for path, spec in by_path.items():
        if spec.extra_paths:
            claimable = tuple(p for p in spec.extra_paths if _claimable(spec, p, by_path, paths))
            if claimable != spec.extra_paths:
                by_path[path] = dataclasses.replace(spec, extra_paths=claimable)
    owners: dict[str, RunSpec] = dict(by_path)
    for spec in by_path.values():
        for extra in spec.extra_paths:
            owners.setdefault(extra, spec)
    return [spec for spec in by_path.values() if not _swallowed(spec, owners)]


def _claimable(spec: RunSpec, extra: str, by_path: Mapping[str, RunSpec], paths: list[str]) -> bool:
    """An extra folder never takes another candidate run's folder: not one that is that
    run, holds it (outside the claiming run's own folder) or lies inside it (unless that
    run holds the claiming run too)."""
    if extra == spec.path or extra in by_path:
        return False
    own = spec.path + "/" if spec.path else ""
    prefix = extra + "/" if extra else ""
    start = bisect.bisect_left(paths, prefix)
    for path in paths[start:]:
        if not path.startswith(prefix):
            break
        if path != spec.path and not (own and path.startswith(own)):
            return False
    folder = extra
    while folder:
        folder = _io.parent(folder)
        if folder in by_path and not _inside(spec.path, folder):
            return False
    return True


def _inside(path: str, folder: str) -> bool:
    return not folder or path == folder or path.startswith(folder + "/")


def _hand_to_inner(kept: list[RunSpec]) -> list[RunSpec]:
    """Runs of ``hands_to_inner`` frameworks (Hydra) with exactly one run inside become
    part of it: its folder an extra path, its name and experiment when the inner run is only
    named after its folder (``version_0``), so a sweep shows one run per job."""
    ordered = sorted(kept, key=lambda s: s.path)
    paths = [s.path for s in ordered]
    handed: dict[str, RunSpec] = {}
    gone: set[str] = set()
    for outer in ordered:
        entry = registry.get(outer.framework)
        if entry is None or not entry.hands_to_inner or outer.path in handed:
            continue
        prefix = outer.path + "/" if outer.path else ""
        start = bisect.bisect_left(paths, prefix)
        inner = [s for s in ordered[start:] if s.path.startswith(prefix) and s is not outer]
        if len(inner) != 1 or inner[0].framework == outer.framework:
            continue
        run = inner[0]
        if outer.path in run.extra_paths or any(_inside(outer.path, p) for p in run.extra_paths):
            continue
        named_by_folder = run.name == _io.display_name(_io.basename(run.path))
        gone.add(outer.path)
        handed[run.path] = dataclasses.replace(
            run,
            extra_paths=(*run.extra_paths, outer.path),
            name=outer.name if named_by_folder else run.name,
            experiment=outer.experiment if named_by_folder else run.experiment,
        )
    return [handed.get(s.path, s) for s in kept if s.path not in gone]


def _priority(spec: RunSpec) -> int:
    entry = registry.get(spec.framework)
    return entry.priority if entry is not None else 1 << 30


def _swallowed(spec: RunSpec, owners: Mapping[str, RunSpec]) -> bool:
    own = registry.get(spec.framework)
    joins_outer = own is not None and own.joins_outer
    folder = spec.path
    child = folder
    while folder:
        child, folder = folder, _io.parent(folder)
        outer = owners.get(folder)
        if outer is None or outer is spec:
            continue
        entry = registry.get(outer.framework)
        if entry is None:
            continue
        if entry.owns_subtree:
            return True
        if entry.owns_children is not None and entry.owns_children.match(_io.basename(child)):
            return True
        if joins_outer and not entry.keeps_inner:
            return True
    return False


def _load(root: RootLike, spec: RunSpec) -> Loaded:
    with collect() as notes:
        loaded = _load_notes(root, spec)
    _take_notes(loaded, notes)
    return loaded


def _take_notes(loaded: Loaded, notes: list[Note]) -> None:
    """What flattening (or a reader's cap) could not keep, in the run's warnings; keys not
    kept make their part unread, and the params among them are counted in meta
    (``CUT_PARAMS``) for a diff to say how many it could not compare.  A value cut short
    carries its own marker (``flatten.is_cut``)."""
    before = loaded.meta.get(CUT_PARAMS)
    before = before if isinstance(before, dict) else {}
    count = int(before.get("count", 0))
    at_least = bool(before.get("at_least", False))
    for note in notes:
        loaded.warn(note.message)
        if note.cut:
            loaded.unread.add(note.part)
        if note.part == "params":
            count += note.cut
            at_least = at_least or note.at_least
    if count:
        loaded.meta[CUT_PARAMS] = {"count": count, "at_least": at_least}


def _load_notes(root: RootLike, spec: RunSpec) -> Loaded:
    entry = registry.get(spec.framework)
    # a run no reader read whole has values unknown, not none: a diff must not call the
    # other side's removed
    if entry is None:
        loaded = Loaded()
        loaded.warn_partial(f"unknown framework {spec.framework!r}", "params", "metrics")
        return loaded
    with _io.listing_problems() as problems:
        try:
            loaded = entry.load(root, spec)
        except Exception as exc:  # never let one bad run break a scan
            loaded = Loaded()
            loaded.warn_partial(
                f"{spec.path}: could not read run ({type(exc).__name__}: {exc})",
                "params",
                "metrics",
            )
    for problem in problems:  # a file not seen may have held any of the run's values
        loaded.warn_partial(problem, "params", "metrics")
    # plots and "last" follow the step, as MLflow's latest metric does (ties keep log order)
    loaded.series = {k: sorted(v, key=lambda p: p[0]) for k, v in loaded.series.items()}
    for other in registry.entries():
        if other.adds_to_runs is not None and other is not entry:
            try:
                other.adds_to_runs(root, spec, loaded)
            except Exception as exc:  # what it would have added is unknown
                loaded.warn_partial(
                    f"{spec.path}: {other.name}: {type(exc).__name__}: {exc}", "params", "metrics"
                )
    return loaded


def read_run(root: RootLike, spec: RunSpec) -> RunInfo:
    """Params, metric summaries, times, status and metadata of one run; never raises.

    A key one of its files repeats is said in its warnings; where the repeat's values
    differ, the run is read again as a loader keeping the first value would, and each
    param and metric that then differs is named (``_repeats.REPEATED_KEYS``)."""
    with _repeats.watch() as seen:
        info = _info(_load(root, spec), spec)
    if seen.files:

        def read_again() -> tuple[RunInfo, _repeats.Watch]:
            with _repeats.watch(first_wins=True) as again:
                other = _info(_load(root, spec), spec)
            return other, again

        try:
            _repeats.settle(info, seen, read_again)
        except Exception as exc:  # a bug here must not lose the run
            warnings = info.meta.setdefault("warnings", [])
            if isinstance(warnings, list):
                warnings.append(f"repeated keys not weighed ({type(exc).__name__}: {exc})"[:300])
    return info


def _info(loaded: Loaded, spec: RunSpec) -> RunInfo:
    try:
        metrics = summarize_all(loaded.series, loaded.finals)
    except Exception as exc:
        loaded.warn(f"{spec.path}: could not summarise metrics ({type(exc).__name__})")
        metrics = {}
    params = _params(loaded)
    meta = {str(k): jsonable(v) for k, v in loaded.meta.items()}
    meta["warnings"] = list(loaded.warnings)
    if loaded.unread:
        meta[UNREAD_PARTS] = sorted(loaded.unread)
    status = loaded.status if loaded.status in STATUSES else "unknown"
    return RunInfo(
        params=params,
        metrics=metrics,
        started=loaded.started,
        ended=loaded.ended,
        status=status,
        meta=meta,
    )


def _params(loaded: Loaded) -> dict[str, object]:
    """The reader's params as JSON data; keys that are one string once written (``1`` and
    ``"1"``) kept apart (``1 (#2)``), values cut to their budgets named, each said."""
    params: dict[str, object] = {}
    taken = {k for k in loaded.params if isinstance(k, str)}
    pairs = canonical(loaded.params.items())
    shared: list[str] = []
    cut: list[str] = []
    for key, value in pairs:
        name = str(key)
        if name in params:
            name = numbered(name, taken)
            shared.append(name)
        else:
            taken.add(name)
        budget = _Budget(MAX_KEYS * 4)
        params[name] = jsonable(value, floats=True, _budget=budget)
        if budget.cut:
            cut.append(name)
    notes = []
    if shared:
        notes.append(Note("params", f"params named alike kept apart: {', '.join(shared[:5])}"))
    if cut:
        notes.append(
            Note(
                "params",
                f"{len(cut)} params with values too large or deep to keep whole "
                f"({', '.join(cut[:5])}): a difference past the cut is not seen",
            )
        )
    if notes:
        _take_notes(loaded, notes)
    return params


def read_metric_series(root: RootLike, spec: RunSpec) -> Series:
    """Every metric's ``(step, value)`` points in logging order, for plots; never raises."""
    return read_metric_reading(root, spec).series


@dataclasses.dataclass(frozen=True)
class MetricReading:
    """A run's metric series and, when its files were not read whole, why (its reader's
    first warning about them): a run without series is then not a run that logged none."""

    series: Series
    unread: str | None


def read_metric_reading(root: RootLike, spec: RunSpec) -> MetricReading:
    """``read_metric_series``, with what its reading left out; never raises."""
    loaded = _load(root, spec)
    series = {name: list(points) for name, points in loaded.series.items() if points}
    unread = None
    if "metrics" in loaded.unread:
        first = loaded.warnings[0] if loaded.warnings else "a file was not read whole"
        unread = loaded.unread_why.get("metrics", first)
    return MetricReading(series, unread)
