"""A FIFO (or socket, device) named like a checkpoint is no checkpoint: the run readers
list a run's checkpoints from its folder, and a name there was taken for a file, so
``epoch=3.ckpt`` made as a FIFO was listed among the run's checkpoints (which the index,
retention and keep-best never hold), and a FIFO named ``model_final.pth`` made a Detectron2
run 'finished'.  Each is said in the run's warnings, and never opened (a FIFO blocks)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.test_params_kept_apart import indexed_runs, warnings_of

pytestmark = [
    pytest.mark.usefixtures("isolated_cache"),
    pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs"),
]


def _meta(db: Path) -> dict[str, dict[str, Any]]:
    """Run path -> its ``meta`` as the index holds it."""
    conn = sqlite3.connect(db)
    try:
        return {
            bytes(p).decode(): json.loads(m) for p, m in conn.execute("SELECT path, meta FROM runs")
        }
    finally:
        conn.close()


def _lightning(root: Path) -> tuple[str, Path, str]:
    run = root / "lightning_logs" / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    (run / "hparams.yaml").write_text("lr: 0.1\n")
    (run / "metrics.csv").write_text("step,val_loss\n0,1.0\n")
    (run / "checkpoints" / "epoch=1-val_loss=0.5.ckpt").write_bytes(b"x")
    return "lightning_logs/version_0", run / "checkpoints", "epoch=3-val_loss=0.1.ckpt"


def _ultralytics(root: Path) -> tuple[str, Path, str]:
    run = root / "detect" / "train"
    (run / "weights").mkdir(parents=True)
    (run / "args.yaml").write_text("epochs: 3\n")
    (run / "results.csv").write_text("epoch,train/box_loss\n1,0.5\n")
    (run / "weights" / "last.pt").write_bytes(b"x")
    return "detect/train", run / "weights", "best.pt"


def _timm(root: Path) -> tuple[str, Path, str]:
    run = root / "timm-run"
    run.mkdir(parents=True)
    (run / "args.yaml").write_text("epochs: 3\n")
    (run / "summary.csv").write_text("epoch,train_loss\n0,1.0\n")
    (run / "checkpoint-0.pth.tar").write_bytes(b"x")
    return "timm-run", run, "model_best.pth.tar"


def _mmengine(root: Path) -> tuple[str, Path, str]:
    run = root / "work"
    (run / "20240102_030405" / "vis_data").mkdir(parents=True)
    (run / "last_checkpoint").write_text(f"{run}/epoch_1.pth\n")
    (run / "epoch_1.pth").write_bytes(b"x")
    return "work", run, "epoch_2.pth"


def _detectron2(root: Path) -> tuple[str, Path, str]:
    run = root / "d2"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("SOLVER:\n  MAX_ITER: 10\n")
    (run / "metrics.json").write_text('{"iteration": 9, "total_loss": 0.5}\n')
    (run / "log.txt").write_text("started\n")
    (run / "model_0000004.pth").write_bytes(b"x")
    return "d2", run, "model_final.pth"


def _keras(root: Path) -> tuple[str, Path, str]:
    run = root / "keras-run"
    (run / "ckpt").mkdir(parents=True)
    (run / "training.log").write_text("epoch,loss\n0,1.0\n")
    (run / "ckpt" / "weights-01.h5").write_bytes(b"x")
    return "keras-run", run / "ckpt", "model.keras"


@pytest.mark.parametrize(
    "layout", [_lightning, _ultralytics, _timm, _mmengine, _detectron2, _keras]
)
def test_a_fifo_named_like_a_checkpoint_is_not_listed_as_one(tmp_path: Path, layout: Any) -> None:
    root = tmp_path / "root"
    rel, folder, name = layout(root)
    os.mkfifo(folder / name)
    db = tmp_path / "i.db"
    found = indexed_runs(root, db)[rel]
    listed = [c.rsplit("/", 1)[-1] for c in _meta(db)[rel].get("checkpoints") or []]
    assert listed and name not in listed  # the regular checkpoint is, the FIFO is not
    assert name in warnings_of(found) and "not a regular file" in warnings_of(found)


def test_a_fifo_named_model_final_does_not_finish_a_detectron2_run(tmp_path: Path) -> None:
    root = tmp_path / "root"
    rel, folder, name = _detectron2(root)
    os.mkfifo(folder / name)
    found = indexed_runs(root, tmp_path / "i.db")[rel]
    assert found["status"] != "finished"
    (folder / name).unlink()
    (folder / name).write_bytes(b"weights")
    assert indexed_runs(root, tmp_path / "j.db")[rel]["status"] == "finished"
