"""Bare TensorBoard log folders: any folder holding ``events.out.tfevents.*`` files that
is not part of another detected run (Lightning versions, HF ``runs/``)."""

from __future__ import annotations

from store.frameworks import _common
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


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    _common.read_tensorboard(root, spec.path, out)
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
