"""PyTorch Lightning logger folders: ``<save_dir>/<name>/version_N/``.

``hparams.yaml`` is written with ``yaml.dump`` and may carry Python tags (read through
``store.yamlsafe``); ``metrics.csv`` (CSVLogger) is a wide CSV whose rows fill only a few
columns; ``checkpoints/*.ckpt`` are listed, never loaded; TensorBoardLogger leaves
``events.out.tfevents.*`` in the same folder, read when there is no ``metrics.csv``.
"""

from __future__ import annotations

import re
from pathlib import Path

from store.frameworks import _common, _io
from store.frameworks._context import DetectContext
from store.frameworks.model import Loaded, RunSpec

FRAMEWORK = "lightning"
VERSION_DIR = re.compile(r"^version_\d+$")
_MARKERS = frozenset({"hparams.yaml", "metrics.csv"})


def detect(ctx: DetectContext) -> list[RunSpec]:
    specs = []
    for rel in ctx.paths:
        name = _io.basename(rel) if rel else ctx.root.name
        if not VERSION_DIR.match(name):
            continue
        entry = ctx.entry(rel)
        has_events = ctx.has_file_starting(rel, "events.out.tfevents.")
        if not (entry.files & _MARKERS or "checkpoints" in entry.dirs or has_events):
            continue
        specs.append(ctx.folder_run(rel, FRAMEWORK, name))
    return specs


def load(root: Path, spec: RunSpec) -> Loaded:
    out = Loaded()
    _common.read_params(root, _io.join(spec.path, "hparams.yaml"), out)
    _, files = _io.list_dir(root, spec.path)
    if "metrics.csv" in files:
        _common.read_wide_csv(root, _io.join(spec.path, "metrics.csv"), out)
    events = [f for f in files if f.startswith("events.out.tfevents.")]
    if events and not out.series:
        _common.read_tensorboard(root, spec.path, out)
    _, ckpts = _io.list_dir(root, _io.join(spec.path, "checkpoints"))
    ckpts = sorted((c for c in ckpts if c.endswith(".ckpt")), key=_io.natural_key)
    if ckpts:
        out.meta["checkpoints"] = [_io.display_name(c) for c in ckpts]
    return out
