"""Ultralytics YOLO training runs: ``<project>/<name>/`` (default ``runs/<task>/train``).

The trainer writes ``args.yaml`` (every argument, the params) when it starts,
``results.csv`` (one row per epoch: ``epoch`` from 1, ``time``, losses, ``metrics/...``,
``lr/pg0``; older versions pad names and values with spaces) and ``weights/last.pt``,
``weights/best.pt`` and, with ``save_period``, ``weights/epoch<N>.pt`` (``N`` counted
from 0, so ``epoch9.pt`` is the row with epoch 10).  The run is finished when the CSV
reached ``epochs`` rows.  Checkpoints are listed, never loaded.

The first 8.0 releases (``ultralytics/yolo/engine/trainer.py``) wrote the CSV's ``epoch``
counted from 0, as their ``epoch<N>.pt`` names are: a file whose epochs start at 0 is
read one epoch on, so every series step is the number of epochs done, whichever version
wrote it (the checkpoint ``epoch9.pt`` is then the step 10 of both, and a run's last
step is its epochs done).

YOLOv5 (``runs/train/exp*/``, and YOLOv7 after it) writes ``opt.yaml`` (every option, the
hyperparameters among them as ``hyp``) and ``hyp.yaml`` instead of ``args.yaml``, a padded
``results.csv`` with epochs from 0, and the same ``weights/``.
"""

from __future__ import annotations

from store.frameworks import _common, _io
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Checkpoints, Framework, SeriesSource

FRAMEWORK = "ultralytics"
_WEIGHTS = frozenset({"last.pt", "best.pt"})
_YOLOV5_FILES = frozenset({"opt.yaml", "hyp.yaml"})


def is_run_dir(ctx: DetectContext, rel: str) -> bool:
    entry = ctx.entry(rel)
    if entry.files >= _YOLOV5_FILES:  # YOLOv5 (and v7) write these two when they start
        return True
    if "args.yaml" not in entry.files:
        return False
    if "results.csv" in entry.files:
        return True
    return "weights" in entry.dirs and bool(ctx.entry(_io.join(rel, "weights")).files & _WEIGHTS)


def detect(ctx: DetectContext) -> list[RunSpec]:
    return [ctx.folder_run(rel, FRAMEWORK) for rel in ctx.paths if is_run_dir(ctx, rel)]


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    _, files = _io.list_dir(root, spec.path)
    if "args.yaml" in files or not _YOLOV5_FILES.issubset(files):
        _common.read_params(root, _io.join(spec.path, "args.yaml"), out)
    else:  # YOLOv5: the options (holding the hyperparameters, as ``hyp``), then those again
        _common.read_params(root, _io.join(spec.path, "opt.yaml"), out)
        _common.read_params(root, _io.join(spec.path, "hyp.yaml"), out, prefix="hyp.")
    if "results.csv" in files:
        _common.read_wide_csv(
            root,
            _io.join(spec.path, "results.csv"),
            out,
            step_column="epoch",
            one_row_per_step=True,
        )
        out.series.pop("time", None)
        _count_from_one(out)
    folder = _io.join(spec.path, "weights")
    _, weights, odd = _io.list_apart(root, folder)
    _common.note_checkpoints(
        out, weights, lambda w: w.endswith(".pt"), folder=folder, not_files=odd
    )
    epochs = _io.to_int(out.params.get("epochs"))
    done = max((step for points in out.series.values() for step, _ in points), default=None)
    if epochs and done is not None:
        out.meta["epochs_done"] = done
        if done >= epochs:
            out.status = "finished"
    return out


def _count_from_one(out: Loaded) -> None:
    """Series of a CSV whose epochs count from 0 (8.0's) moved one epoch on (see above);
    a CSV counting from 1 (every later version) never holds epoch 0."""
    first = min((step for points in out.series.values() for step, _ in points), default=None)
    if first != 0:
        return
    out.series = {name: [(s + 1, v) for s, v in points] for name, points in out.series.items()}
    out.meta["csv_epochs_from"] = 0


ENTRY = Framework(
    name=FRAMEWORK,
    display="Ultralytics YOLO",
    priority=500,
    detect=detect,
    load=load,
    owns_subtree=True,
    markers=frozenset({"args.yaml", "results.csv", *_YOLOV5_FILES}),
    checklist=("args.yaml", "results.csv", "weights/best.pt", "weights/last.pt"),
    checkpoints=Checkpoints(
        last_names=frozenset({"last.pt"}),
        best_names=frozenset({"best.pt"}),
        series=SeriesSource("results.csv", "epoch", 1),
    ),
)
