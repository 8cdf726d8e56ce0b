"""timm's ``train.py`` output folders: ``<output>/train/<experiment>/``.

``args.yaml`` holds every argument (the params), ``summary.csv`` one row per epoch
(``epoch`` from 0, ``train_loss``, ``eval_loss``, ``eval_top1``, ``eval_top5``, ``lr``),
``checkpoint-<epoch>.pth.tar`` the ``--checkpoint-hist`` best epochs, ``model_best.pth.tar``
and ``last.pth.tar`` copies (hard links when the filesystem allows) of the same bytes.
The run is finished when the summary reached ``epochs`` (plus ``cooldown_epochs``) rows.
"""

from __future__ import annotations

import re

from store.frameworks import _common, _io
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Checkpoints, Framework, SeriesSource

FRAMEWORK = "timm"
CHECKPOINT = re.compile(r"^checkpoint-(\d+)\.pth\.tar$")


def is_run_dir(ctx: DetectContext, rel: str) -> bool:
    files = ctx.entry(rel).files
    if "args.yaml" not in files:
        return False
    return "summary.csv" in files or ctx.has_file_ending(rel, ".pth.tar")


def detect(ctx: DetectContext) -> list[RunSpec]:
    return [ctx.folder_run(rel, FRAMEWORK) for rel in ctx.paths if is_run_dir(ctx, rel)]


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    _common.read_params(root, _io.join(spec.path, "args.yaml"), out)
    _, files, odd = _io.list_apart(root, spec.path)
    if "summary.csv" in files or "summary.csv" in odd:  # a FIFO there is refused, and said
        _common.read_wide_csv(root, _io.join(spec.path, "summary.csv"), out, step_column="epoch")
    _common.note_checkpoints(
        out, files, lambda f: f.endswith(".pth.tar"), folder=spec.path, not_files=odd
    )
    epochs = _io.to_int(out.params.get("epochs"))
    cooldown = _io.to_int(out.params.get("cooldown_epochs")) or 0
    last = max((step for points in out.series.values() for step, _ in points), default=None)
    if epochs and last is not None and last + 1 >= epochs + cooldown:
        out.status = "finished"
    return out


ENTRY = Framework(
    name=FRAMEWORK,
    display="timm",
    priority=600,
    detect=detect,
    load=load,
    owns_subtree=True,
    markers=frozenset({"args.yaml", "summary.csv"}),
    marker_patterns=(r".*\.pth\.tar",),
    checklist=("args.yaml", "summary.csv", "model_best.pth.tar|checkpoint-*.pth.tar"),
    checkpoints=Checkpoints(
        last_names=frozenset({"last.pth.tar"}),
        best_names=frozenset({"model_best.pth.tar"}),
        counts_epochs=True,
        series=SeriesSource("summary.csv", "epoch"),
    ),
)
