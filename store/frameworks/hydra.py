"""Hydra job folders: any folder holding ``.hydra/config.yaml``.

``outputs/YYYY-MM-DD/HH-MM-SS/`` for single runs, ``multirun/YYYY-MM-DD/HH-MM-SS/<N>/`` for
sweep jobs.  ``config.yaml`` is the composed config (the params), ``overrides.yaml`` the
command-line overrides, ``hydra.yaml`` the job name.  Nesting rule: a Hydra job folder around
exactly one more specific run (``lightning_logs/version_0``, a W&B run) is part of that run
(``hands_to_inner``): the run owns the job folder, takes its config and overrides, and its
name and experiment when it is only named after its folder, so a sweep is one run per job.
Around several runs the Hydra folder stays a run of its own; files go to the innermost run.
When the Hydra folder *is* another framework's run folder (an HF output dir), the other
framework wins and Hydra's config is merged into its params (see ``merge_into``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import re

from store.frameworks import _common, _io
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Framework

FRAMEWORK = "hydra"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}-\d{2}-\d{2}$")


def is_hydra_dir(ctx: DetectContext, rel: str) -> bool:
    return (
        "config.yaml" in ctx.entry(_io.join(rel, ".hydra")).files
        and ".hydra" in ctx.entry(rel).dirs
    )


def detect(ctx: DetectContext) -> list[RunSpec]:
    specs = []
    for rel in ctx.paths:
        if not is_hydra_dir(ctx, rel):
            continue
        specs.append(
            RunSpec(
                path=rel,
                framework=FRAMEWORK,
                name=_run_name(ctx, rel),
                experiment=_job_name(ctx.root, rel),
            )
        )
    return specs


def _run_name(ctx: DetectContext, rel: str) -> str:
    """``2024-01-02/10-11-12`` for a run, ``2024-01-02/10-11-12/3`` for a sweep job."""
    parts = rel.split("/") if rel else [_io.root_name(ctx.root)]
    for index in range(len(parts) - 1):
        if _DATE.match(parts[index]) and _TIME.match(parts[index + 1]):
            return "/".join(_io.display_name(p) for p in parts[index:])
    return _io.display_name(parts[-1])


def _job_name(root: RootLike, rel: str) -> str | None:
    try:
        data = _io.read_yaml(root, _io.join(rel, ".hydra", "hydra.yaml"), 512 * 1024)
    except _io.ReadError:
        return None
    hydra = data.get("hydra") if isinstance(data, dict) else None
    job = hydra.get("job") if isinstance(hydra, dict) else None
    name = job.get("name") if isinstance(job, dict) else None
    return str(name) if name is not None else None


def add_to_run(root: RootLike, spec: RunSpec, out: Loaded) -> None:
    """A Hydra config in another framework's run folder, or in the job folder it was handed
    (``hands_to_inner``): merged into that run's params."""
    for folder in (spec.path, *spec.extra_paths):
        if not _io.is_file(root, _io.join(folder, ".hydra", "config.yaml")):
            continue
        try:
            merge_into(root, folder, out)
        except Exception as exc:
            out.warn(f"{folder}/.hydra: {type(exc).__name__}: {exc}")
        return


def merge_into(root: RootLike, folder: str, out: Loaded) -> None:
    """Add a Hydra folder's config (params the framework lacks) and overrides to ``out``.
    Where both give a key, the framework's own record of what it ran with wins, and a
    different value is named in a warning."""
    config = Loaded()
    _common.read_params(root, _io.join(folder, ".hydra", "config.yaml"), config)
    out.take_problems(config)
    for key, value in config.params.items():
        if key not in out.params:
            out.params[key] = value
        elif out.params[key] != value:
            out.warn(
                f"{folder}/.hydra/config.yaml: {key} is {value!r} but the run's own params"
                f" say {out.params[key]!r}; the run's are used"
            )
    try:
        overrides = _io.read_yaml(root, _io.join(folder, ".hydra", "overrides.yaml"))
    except _io.ReadError as exc:
        if not isinstance(exc, _io.MissingFile):
            out.warn(str(exc))
        overrides = None
    if isinstance(overrides, list):
        out.meta["overrides"] = [str(o) for o in overrides][:500]
    try:
        data = _io.read_yaml(root, _io.join(folder, ".hydra", "hydra.yaml"))
    except _io.ReadError as exc:
        if not isinstance(exc, _io.MissingFile):
            out.warn(str(exc))
        return
    hydra = data.get("hydra") if isinstance(data, dict) else None
    if not isinstance(hydra, dict):
        return
    job = hydra.get("job") if isinstance(hydra.get("job"), dict) else {}
    runtime = hydra.get("runtime") if isinstance(hydra.get("runtime"), dict) else {}
    assert isinstance(job, dict) and isinstance(runtime, dict)
    for key, value in (
        ("hydra_job", job.get("name")),
        ("hydra_job_id", job.get("id")),
        ("hydra_job_num", job.get("num")),
        ("hydra_mode", hydra.get("mode")),
        ("hydra_version", runtime.get("version")),
        ("cwd", runtime.get("cwd")),
    ):
        if value is not None:
            out.meta[key] = str(value)


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    merge_into(root, spec.path, out)
    _, files = _io.list_dir(root, spec.path)
    for name in ("metrics.json", "results.json", "result.json", "eval_results.json"):
        if name in files:
            _common.read_json_finals(root, _io.join(spec.path, name), out)
    for name in ("metrics.csv", "log.csv", "history.csv", "progress.csv"):
        if name in files:
            _common.read_wide_csv(root, _io.join(spec.path, name), out)
    parts = spec.name.split("/")
    if len(parts) >= 2 and _DATE.match(parts[0]) and _TIME.match(parts[1]):
        with contextlib.suppress(ValueError):
            out.started = _dt.datetime.strptime(
                f"{parts[0]} {parts[1]}", "%Y-%m-%d %H-%M-%S"
            ).timestamp()
    return out


ENTRY = Framework(
    name=FRAMEWORK,
    display="Hydra",
    priority=1400,
    detect=detect,
    load=load,
    adds_to_runs=add_to_run,
    keeps_inner=True,
    hands_to_inner=True,
    markers=frozenset({"config.yaml", "overrides.yaml"}),
    checklist=(".hydra/config.yaml", ".hydra/overrides.yaml"),
)
