"""Which way is better for a metric, guessed from its name.

One guess for the whole store: run summaries (best value), diffs (which run is better)
and retention (keep the best K) must agree, or "best" means three different things.
"""

from __future__ import annotations

import re
from typing import Literal

Direction = Literal["min", "max"]

MIN_WORDS = frozenset(
    {"loss", "losses", "error", "err", "errors", "perplexity", "ppl", "mse", "mae", "rmse"}
    | {"wer", "cer", "nll", "bpd", "bpc", "fid", "distance", "regret", "latency"}
    # Keras' loss-named metrics: binary_crossentropy, squared_hinge, kl_divergence, ...
    | {"crossentropy", "hinge", "divergence", "kld", "logcosh", "huber"}
)
MAX_WORDS = frozenset(
    {"acc", "accuracy", "f1", "auc", "auroc", "roc", "bleu", "precision", "recall", "map"}
    | {"iou", "miou", "reward", "rewards", "return", "rouge", "dice", "r2", "top1", "top5"}
    | {"score", "psnr", "ssim", "throughput", "exact_match", "em", "similarity"}
)
_MAX_PREFIX = re.compile(r"^(acc|map\d|f1|auc|iou|bleu|rouge|top\d|precision|recall)")
_COCO = re.compile(r"^a[pr](\d+|s|m|l)?$")
"""COCO's average precision and recall as Detectron2 and MMDetection name them: ``bbox/AP``,
``segm/AP50``, ``bbox/APs``, ``AR100``."""
_SPLIT = re.compile(r"[^a-z0-9]+")


def direction_of(name: str) -> Direction | None:
    """'min' for losses and errors, 'max' for accuracies and scores, None when unsure.

    Words are split on anything that is not a letter or digit, so ``val/loss``,
    ``eval_accuracy`` and ``train.top1`` are read word by word; a loss-like word wins
    (``loss_acc_gap`` is something to minimise).
    """
    lowered = name.lower()
    tokens = [t for t in _SPLIT.split(lowered) if t]
    if "exact_match" in lowered:
        return "max"
    if any(t in MIN_WORDS or t.startswith("loss") for t in tokens):
        return "min"
    if any(t in MAX_WORDS or _MAX_PREFIX.match(t) or _COCO.match(t) for t in tokens):
        return "max"
    return None
