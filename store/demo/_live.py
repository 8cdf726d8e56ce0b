"""A training run that is still writing, so ``artlens demo`` shows the live view at once.

It writes what a Lightning ``CSVLogger`` + ``ModelCheckpoint`` run writes, at a pace a person
can watch: a row in ``metrics.csv`` every ``interval``, a validation row and a checkpoint every
epoch (saved to a temporary name, then renamed, as careful savers do) and rotation that keeps
the newest few checkpoints.
"""

from __future__ import annotations

import math
import os
import random
import threading
from pathlib import Path

from store.demo._checkpoints import LIGHTNING_HPARAMS, lightning_checkpoint

STEPS_PER_EPOCH = 10
"""Rows per epoch: with the default interval a checkpoint lands every five seconds."""

SAVE_LIMIT = 3
"""Checkpoints kept on disk; older ones are deleted as new ones arrive."""

HEADER = "epoch,step,train_loss,val_acc,val_loss\n"


def _atomic_write(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as out:
        out.write(data)
    os.replace(temp, path)


def _append(path: Path, line: str) -> None:
    """Append one whole line with a single write, so a reader never sees half a row."""
    with open(path, "a", encoding="utf-8") as out:
        out.write(line)


def _rotate(folder: Path) -> None:
    saved = sorted(
        (p for p in folder.glob("epoch=*-step=*.ckpt")),
        key=lambda p: int(p.stem.rsplit("=", 1)[-1]),
    )
    for old in saved[:-SAVE_LIMIT]:
        old.unlink(missing_ok=True)


def simulate_training(
    run_dir: Path,
    *,
    duration: float = 180.0,
    interval: float = 0.5,
    stop: threading.Event | None = None,
    seed: int = 0,
) -> None:
    """Write a Lightning-style run into ``run_dir`` for ``duration`` seconds or until ``stop``.

    Meant for a background thread: if the folder goes away underneath it (a user deleted
    the run) it ends quietly instead of raising.
    """
    stop = stop or threading.Event()
    rng = random.Random(seed)
    total_steps = max(STEPS_PER_EPOCH, int(duration / max(interval, 1e-6)))
    epochs = math.ceil(total_steps / STEPS_PER_EPOCH)
    checkpoints = Path(run_dir) / "checkpoints"
    metrics = Path(run_dir) / "metrics.csv"
    log = Path(run_dir) / "train.log"
    try:
        checkpoints.mkdir(parents=True, exist_ok=True)
        _atomic_write(
            Path(run_dir) / "hparams.yaml",
            LIGHTNING_HPARAMS.format(epochs=epochs, seed=seed).encode(),
        )
        _atomic_write(metrics, HEADER.encode())
        _atomic_write(log, b"GPU available: True (cuda), used: True\n")
        _append(log, "LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES: [0]\n")
        val_loss = 2.0
        for step in range(total_steps):
            if stop.wait(interval if step else 0.0):
                _append(log, f"Trainer was signaled to stop at step {step}.\n")
                return
            epoch = step // STEPS_PER_EPOCH
            progress = step / total_steps
            loss = 0.35 + 1.9 * math.exp(-4.0 * progress) * (1 + rng.gauss(0, 0.06))
            _append(metrics, f"{epoch},{step},{loss:.4f},,\n")
            _append(log, f"Epoch {epoch}: step {step} train_loss={loss:.4f}\n")
            if (step + 1) % STEPS_PER_EPOCH:
                continue
            val_loss = 0.42 + 1.6 * math.exp(-4.0 * progress) * (1 + rng.gauss(0, 0.02))
            val_acc = 0.9 - 0.4 * math.exp(-4.0 * progress) + rng.gauss(0, 0.005)
            _append(metrics, f"{epoch},{step},,{val_acc:.4f},{val_loss:.4f}\n")
            name = f"epoch={epoch}-step={step + 1}.ckpt"
            data = lightning_checkpoint(
                rng, epoch=epoch, step=step + 1, val_loss=val_loss, epochs=epochs, seed=seed
            )
            _atomic_write(checkpoints / name, data)
            _rotate(checkpoints)
            _append(
                log,
                f"Epoch {epoch}, global step {step + 1}: 'val_loss' reached {val_loss:.5f},"
                f" saving model to {name}\n",
            )
        final = lightning_checkpoint(
            rng, epoch=epochs - 1, step=total_steps, val_loss=val_loss, epochs=epochs, seed=seed
        )
        _atomic_write(checkpoints / "last.ckpt", final)
        _append(log, f"`Trainer.fit` stopped: `max_epochs={epochs}` reached.\n")
    except OSError:
        return
