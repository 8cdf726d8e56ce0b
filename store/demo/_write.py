"""Write the demo tree: the outputs of a week of training with the usual tools, warts included.

Layouts and file formats follow what MLflow, W&B, Lightning, the Hugging Face Trainer, Hydra,
DVCLive and TensorBoard write themselves.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from store.demo._plain import write_plain
from store.demo._trackers import write_dvclive, write_mlflow, write_tensorboard, write_wandb
from store.demo._trainers import write_hf, write_hydra, write_lightning
from store.demo._tree import DemoError, DemoInfo, Tree


def _is_empty(dest: Path) -> bool:
    try:
        with os.scandir(dest) as entries:
            return next(iter(entries), None) is None
    except FileNotFoundError:
        return True


LIVE_RUN = "lightning_logs/version_3"
"""The folder ``simulate_training`` writes when ``artlens demo`` starts it."""


DEMO_POLICY = """\
# The demo's own policy, so the retention view has something to show:
# `artlens retention plan` lists what it keeps, what it would free, and why.
[retention]
keep_last = 2             # newest checkpoints per run
keep_best = 1             # plus the best one by the metric
metric = "val_loss"
keep_within = "12h"       # anything younger is kept whatever the rules say

[[retention.rule]]
framework = "hf-trainer"
metric = "eval_loss"
"""


def write_demo(dest: Path, *, now: float | None = None, seed: int = 0) -> DemoInfo:
    """Write the demo tree into ``dest`` (missing or empty) and describe what is in it."""
    dest = Path(dest)
    stamp = time.time() if now is None else float(now)
    tree = Tree(dest.absolute(), stamp, seed)
    try:
        if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
            raise DemoError(f"demo destination is not a folder: {dest}")
        if not _is_empty(dest):
            raise DemoError(f"demo destination is not empty: {dest}")
        os.makedirs(dest, exist_ok=True)
        for part in (
            write_mlflow,
            write_wandb,
            write_lightning,
            write_hf,
            write_hydra,
            write_dvclive,
            write_tensorboard,
            write_plain,
        ):
            part(tree)
        tree.write(".artlens.toml", DEMO_POLICY, age=9 * 86400)
        tree.finish()
    except OSError as error:
        reason = error.strerror or str(error)
        raise DemoError(f"could not write the demo into {dest}: {reason}") from error
    return DemoInfo(
        dest=tree.root,
        runs=tuple(tree.runs),
        live_run=tree.root / LIVE_RUN,
        hazards=dict(tree.hazards),
    )
