"""Bare TensorBoard log folders: any folder holding ``events.out.tfevents.*`` files that
is not part of another detected run (Lightning versions, HF ``runs/``).

``SummaryWriter.add_hparams`` writes a sub-folder (``<run>/<time.time()>/`` or its
``run_name``) whose event file holds the hparams plugin's data and the ``metric_dict``
scalars; TensorBoard shows it as a session of the run, so its hparams become the run's
params and its scalars the run's metrics (a tag the run logged itself keeps the run's).
"""

from __future__ import annotations

from store.frameworks import _common, _io
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Framework

FRAMEWORK = "tensorboard"


def detect(ctx: DetectContext) -> list[RunSpec]:
    specs = []
    for rel in ctx.paths:
        if not ctx.has_file_starting(rel, "events.out.tfevents."):
            continue
        specs.append(ctx.folder_run(rel, FRAMEWORK))
    return specs


HPARAMS_FOLDERS = 16
"""Sub-folders looked into for ``add_hparams`` data (one per call; name order)."""
HPARAMS_BYTES = 1024 * 1024
"""Bytes read per sub-folder: add_hparams writes a few hundred; a bigger one is another log."""


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    params = _common.read_tensorboard(root, spec.path, out, hparams_kept=True)
    sources = dict.fromkeys(params, spec.path)
    dirs, _ = _io.list_dir(root, spec.path)
    children = [d for d in sorted(dirs) if _common.event_files(root, _io.join(spec.path, d))]
    if len(children) > HPARAMS_FOLDERS:  # one not looked into may hold add_hparams data
        out.warn_partial(
            f"{spec.path}: {len(children)} sub-folders with event files, the first"
            f" {HPARAMS_FOLDERS} looked into for hparams",
            "params",
        )
    for child in children[:HPARAMS_FOLDERS]:
        folder = _io.join(spec.path, child)
        session = Loaded()
        damaged: set[str] = set()
        hparams = _common.read_tensorboard(
            root, folder, session, HPARAMS_BYTES, hparams_kept=True, damaged=damaged
        )
        if not hparams:
            # another writer's log (add_scalars' sub-runs): not read here; add_hparams
            # writes its hparams first, so a start read whole without them is no session,
            # but a record lost may have been them
            if "params" in damaged:
                out.warn_partial(
                    f"{folder}: event files damaged; add_hparams data they may hold is not shown",
                    "params",
                    "metrics",  # its metric_dict scalars would be the run's metrics
                )
            continue
        out.take_problems(session)
        for key, value in hparams.items():
            if key in params and params[key] != value:
                out.warn(
                    f"{folder}: hparam {key} is {value!r} here but {params[key]!r} in"
                    f" {sources[key]}; the later is used"
                )
            params[key] = value
            sources[key] = folder
        for name, points in session.series.items():
            out.series.setdefault(name, points)
        for stamp in (session.started, session.ended):
            if stamp is not None:
                out.started = stamp if out.started is None else min(out.started, stamp)
                out.ended = stamp if out.ended is None else max(out.ended, stamp)
    out.params = params
    return out


ENTRY = Framework(
    name=FRAMEWORK,
    display="TensorBoard",
    priority=1500,
    detect=detect,
    load=load,
    joins_outer=True,
    marker_patterns=(r"events\.out\.tfevents\..*",),
    checklist=("events.out.tfevents.*",),
)
