"""Single-file checkpoint scripts in the nanoGPT style: an ``out_dir`` holding ``ckpt.pt``,
overwritten at every evaluation that improves (or always, with ``always_save_checkpoint``).

The checkpoint is a dict: ``model`` and ``optimizer`` state, ``model_args``, ``iter_num``,
``best_val_loss`` and ``config`` (every setting of the script).  Those plain values are
read statically (``store.frameworks._torchmeta``: the pickle is walked, never loaded):
``config`` and ``model_args`` become the params, ``best_val_loss`` a metric at
``iter_num``; the run is finished when ``iter_num`` reached ``config.max_iters``.

A ``ckpt.pt`` is what many scripts of their own save too, beside the config and metric
files they write: those (the names ``store.frameworks.generic`` reads) are read as well,
after the checkpoint's values, so such a run keeps its params and metrics.
"""

from __future__ import annotations

from store.frameworks import _common, _io, _torchmeta, generic
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks.flatten import flatten
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Checkpoints, Framework

FRAMEWORK = "nanogpt"
CHECKPOINT = "ckpt.pt"


def detect(ctx: DetectContext) -> list[RunSpec]:
    return [
        ctx.folder_run(rel, FRAMEWORK) for rel in ctx.paths if CHECKPOINT in ctx.entry(rel).files
    ]


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    rel = _io.join(spec.path, CHECKPOINT)
    out.meta["checkpoints"] = [CHECKPOINT]
    lost: list[str] = []
    try:
        values = _torchmeta.read_values(root, rel, lost)
    except _io.ReadError as exc:  # its params and best loss are not known
        out.warn_partial(str(exc), "params", "metrics")
        values = {}
    for what in lost:  # a value left out or cut short: the params are not all there
        out.warn_partial(f"{rel}: {what}", "params")
    config = values.get("config")
    if isinstance(config, dict):
        for key, value in flatten(config, source=rel).items():
            _common.add_param(out, key, value, rel)
    model_args = values.get("model_args")
    if isinstance(model_args, dict):
        for key, value in flatten(model_args, source=rel).items():
            _common.add_param(out, f"model_args.{key}", value, rel)
    step = _io.to_int(values.get("iter_num"))
    best = _io.to_float(values.get("best_val_loss"))
    if best is not None:
        out.finals["best_val_loss"] = (step, best)
    if step is not None:
        out.meta["iter_num"] = step
        max_iters = _io.to_int(out.params.get("max_iters"))
        if max_iters and step >= max_iters:
            out.status = "finished"
    generic.read_known_files(root, spec.path, out)
    return out


ENTRY = Framework(
    name=FRAMEWORK,
    display="nanoGPT",
    priority=1300,
    detect=detect,
    load=load,
    markers=frozenset({CHECKPOINT}),
    checklist=(CHECKPOINT, "@params"),
    kinds={CHECKPOINT: "checkpoint"},
    checkpoints=Checkpoints(last_names=frozenset({CHECKPOINT})),
)
