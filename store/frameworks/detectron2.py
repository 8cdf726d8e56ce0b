"""Detectron2 output folders (``cfg.OUTPUT_DIR``).

``default_setup`` writes the full config as ``config.yaml`` (the params: ``SOLVER.BASE_LR``
...), the JSONWriter one JSON object per line to ``metrics.json`` (``iteration``,
``total_loss``, ``lr``, evaluation results such as ``bbox/AP``), ``log.txt`` and event
files; the PeriodicCheckpointer saves ``model_<iteration:07d>.pth`` and, at the end,
``model_final.pth``, and names the newest in ``last_checkpoint``.  ``model_final.pth``
means the run finished.
"""

from __future__ import annotations

import re

from store.frameworks import _common, _io
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Checkpoints, Framework, NumberedName, SeriesSource

FRAMEWORK = "detectron2"
CHECKPOINT = re.compile(r"^model_(\d{7}|final)\.pth$")
_INDEX = frozenset({"iteration", "data_time", "time", "eta_seconds"})


def is_run_dir(ctx: DetectContext, rel: str) -> bool:
    files = ctx.entry(rel).files
    if "config.yaml" not in files:
        return False
    has_ckpt = any(CHECKPOINT.match(f) for f in files)
    return has_ckpt or ("metrics.json" in files and "log.txt" in files)


def detect(ctx: DetectContext) -> list[RunSpec]:
    return [ctx.folder_run(rel, FRAMEWORK) for rel in ctx.paths if is_run_dir(ctx, rel)]


def _is_checkpoint(name: str) -> bool:
    return CHECKPOINT.match(name) is not None


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    _common.read_params(root, _io.join(spec.path, "config.yaml"), out)
    _, files, odd = _io.list_apart(root, spec.path)
    if "metrics.json" in files or "metrics.json" in odd:  # a FIFO there is refused, and said
        _read_metrics(root, _io.join(spec.path, "metrics.json"), out)
    _common.note_checkpoints(out, files, _is_checkpoint, folder=spec.path, not_files=odd)
    if "model_final.pth" in files:  # a FIFO of that name says nothing of the run
        out.status = "finished"
    return out


def _read_metrics(root: RootLike, rel: str, out: Loaded) -> None:
    no_step = 0
    for row in _io.read_json_lines(root, rel, out):
        step = _io.to_int(row.get("iteration"))
        if step is None:
            no_step += 1
            continue
        _common.add_numbers(out, row, step, _INDEX)
    if no_step:
        out.warn_partial(f"{rel}: {no_step} line(s) without an iteration skipped", "metrics")


ENTRY = Framework(
    name=FRAMEWORK,
    display="Detectron2",
    priority=800,
    detect=detect,
    load=load,
    owns_subtree=True,
    markers=frozenset({"config.yaml", "metrics.json", "log.txt", "model_final.pth"}),
    marker_patterns=(r"model_\d{7}\.pth",),
    checklist=("config.yaml", "metrics.json", "model_final.pth|model_*.pth"),
    checkpoints=Checkpoints(
        last_names=frozenset({"model_final.pth"}),
        numbered=(NumberedName(re.compile(r"^model_(\d{7})\.pth$"), "step", any_run=True),),
        series=SeriesSource("metrics.json", "step"),
    ),
)
