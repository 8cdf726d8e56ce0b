"""Find training runs under a root and read what their own files say about them.

``detect_runs`` looks only at names (plus small reads of marker files such as MLflow
``meta.yaml`` or ``mlflow.db``); ``read_run`` and ``read_metric_series`` parse one run.
Bad files never raise: problems land in ``RunInfo.meta['warnings']``.

Overlap rules, so every file has one owning run:

* detection is by content: what files a folder holds, never what it is called;
* one run per folder: when several frameworks claim the same folder the most specific
  wins (mlflow > wandb > lightning > hf-trainer > ultralytics > timm > mmengine >
  detectron2 > keras > dvclive > neptune > comet > nanogpt > hydra > tensorboard >
  generic); a Hydra config in that folder is merged into its params;
* MLflow, W&B, Lightning, DVCLive, Neptune, Ultralytics, timm, MMEngine and Detectron2
  runs own their whole subtree: nothing is detected inside them; an HF output dir owns
  its ``checkpoint-N/`` folders;
* bare TensorBoard folders inside any other run (HF ``runs/``, an MLflow artifact) belong
  to that run, except inside a Hydra run;
* a Hydra run stays the outer run of more specific runs inside it (files go to the
  innermost run);
* generic runs (see ``store.frameworks.generic``) never overlap a detected run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

from store.frameworks import (
    _io,
    comet,
    detectron2,
    dvclive,
    generic,
    hf,
    hydra,
    keras,
    lightning,
    mlflow,
    mmengine,
    nanogpt,
    neptune,
    tensorboard,
    timm,
    ultralytics,
    wandb,
)
from store.frameworks._context import DetectContext
from store.frameworks._metrics import direction_of, summarize_all
from store.frameworks.flatten import flatten, jsonable
from store.frameworks.model import (
    STATUSES,
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
    "MetricSummary",
    "RunInfo",
    "RunSpec",
    "detect_runs",
    "direction_of",
    "flatten",
    "read_metric_series",
    "read_run",
]

_MODULES: dict[str, ModuleType] = {
    m.FRAMEWORK: m
    for m in (
        mlflow,
        wandb,
        lightning,
        hf,
        ultralytics,
        timm,
        mmengine,
        detectron2,
        keras,
        dvclive,
        neptune,
        comet,
        nanogpt,
        hydra,
        tensorboard,
        generic,
    )
}
FRAMEWORKS: tuple[str, ...] = tuple(_MODULES)
"""Every framework name, most specific first."""
_PRIORITY = {name: rank for rank, name in enumerate(FRAMEWORKS)}
_OWNS_SUBTREE = frozenset(
    {"mlflow", "wandb", "lightning", "dvclive", "neptune", "ultralytics", "timm", "mmengine"}
    | {"detectron2"}
)


def detect_runs(root: Path, listing: Mapping[str, DirListing]) -> list[RunSpec]:
    """Every run under ``root``, sorted by path; paths are unique."""
    ctx = DetectContext(root, listing)
    candidates: list[RunSpec] = []
    for module in _MODULES.values():
        if module is generic:
            continue
        try:
            candidates.extend(module.detect(ctx))
        except Exception:  # a detector bug must not hide the other frameworks' runs
            continue
    kept = _resolve(candidates)
    taken = [s.path for s in kept] + [p for s in kept for p in s.extra_paths]
    with contextlib.suppress(Exception):
        kept.extend(generic.detect(ctx, taken))
    return sorted(kept, key=lambda s: s.path)


def _resolve(candidates: list[RunSpec]) -> list[RunSpec]:
    by_path: dict[str, RunSpec] = {}
    for spec in candidates:
        current = by_path.get(spec.path)
        if current is None or _PRIORITY[spec.framework] < _PRIORITY[current.framework]:
            by_path[spec.path] = spec
    owners: dict[str, RunSpec] = dict(by_path)
    for spec in by_path.values():
        for extra in spec.extra_paths:
            owners.setdefault(extra, spec)
    return [spec for spec in by_path.values() if not _swallowed(spec, owners)]


def _swallowed(spec: RunSpec, owners: Mapping[str, RunSpec]) -> bool:
    folder = spec.path
    child = folder
    while folder:
        child, folder = folder, _io.parent(folder)
        outer = owners.get(folder)
        if outer is None or outer is spec:
            continue
        if outer.framework in _OWNS_SUBTREE:
            return True
        if outer.framework == "hf-trainer" and hf.CHECKPOINT_DIR.match(_io.basename(child)):
            return True
        if spec.framework == "tensorboard" and outer.framework != "hydra":
            return True
    return False


def _load(root: Path, spec: RunSpec) -> Loaded:
    module = _MODULES.get(spec.framework)
    if module is None:
        loaded = Loaded()
        loaded.warn(f"unknown framework {spec.framework!r}")
        return loaded
    load: Callable[[Path, RunSpec], Loaded] = module.load
    try:
        loaded = load(root, spec)
    except Exception as exc:  # never let one bad run break a scan
        loaded = Loaded()
        loaded.warn(f"{spec.path}: could not read run ({type(exc).__name__}: {exc})")
    # plots and "last" follow the step, as MLflow's latest metric does (ties keep log order)
    loaded.series = {k: sorted(v, key=lambda p: p[0]) for k, v in loaded.series.items()}
    if spec.framework != "hydra" and _has_hydra(root, spec.path):
        try:
            hydra.merge_into(root, spec.path, loaded)
        except Exception as exc:
            loaded.warn(f"{spec.path}/.hydra: {type(exc).__name__}: {exc}")
    return loaded


def _has_hydra(root: Path, rel: str) -> bool:
    return _io.is_file(root, _io.join(rel, ".hydra", "config.yaml"))


def read_run(root: Path, spec: RunSpec) -> RunInfo:
    """Params, metric summaries, times, status and metadata of one run; never raises."""
    loaded = _load(root, spec)
    try:
        metrics = summarize_all(loaded.series, loaded.finals)
    except Exception as exc:
        loaded.warn(f"{spec.path}: could not summarise metrics ({type(exc).__name__})")
        metrics = {}
    meta = {str(k): jsonable(v) for k, v in loaded.meta.items()}
    meta["warnings"] = list(loaded.warnings)
    params = {str(k): jsonable(v) for k, v in loaded.params.items()}
    status = loaded.status if loaded.status in STATUSES else "unknown"
    return RunInfo(
        params=params,
        metrics=metrics,
        started=loaded.started,
        ended=loaded.ended,
        status=status,
        meta=meta,
    )


def read_metric_series(root: Path, spec: RunSpec) -> Series:
    """Every metric's ``(step, value)`` points in logging order, for plots; never raises."""
    return {name: list(points) for name, points in _load(root, spec).series.items() if points}
