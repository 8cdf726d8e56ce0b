"""Ultralytics ``results.csv`` written by the first 8.0 releases counts its epochs from 0
(``'%23.5g,' % self.epoch``), as its ``weights/epoch<N>.pt`` names do; every later
release writes ``self.epoch + 1``.  Both must give the same steps: the number of epochs
done, so a checkpoint is judged by its own epoch's row and the run's progress is right."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.frameworks import read_run
from store.index.db import open_db
from store.retention.candidates import candidates_for_root
from tests.test_frameworks import only, warnings_of, write
from tests.test_rundiff import age, index

KEYS = ["train/box_loss", "metrics/mAP50-95(B)", "val/box_loss", "lr/pg0"]
MAPS = [0.30, 0.45, 0.35, 0.50, 0.40]  # the best epoch is the 4th: epoch3.pt


def results_80(maps: list[float]) -> str:
    """``BaseTrainer.save_metrics`` of ultralytics 8.0.x: padded, epochs from 0."""
    n = len(KEYS) + 1
    text = ("%23s," * n % tuple(["epoch", *KEYS])).rstrip(",") + "\n"
    for epoch, value in enumerate(maps):
        text += ("%23.5g," * n % (epoch, 1.0 - epoch / 10, value, 1.2, 0.01)).rstrip(",") + "\n"
    return text


def results_83(maps: list[float]) -> str:
    """The same run as 8.1+ writes it: ``epoch`` (from 1) and ``time`` first, ``%.6g``."""
    n = len(KEYS) + 2
    text = ("%s," * n % tuple(["epoch", "time", *KEYS])).rstrip(",") + "\n"
    for epoch, value in enumerate(maps):
        row = (epoch + 1, 9.5 * (epoch + 1), 1.0 - epoch / 10, value, 1.2, 0.01)
        text += ("%.6g," * n % row).rstrip(",") + "\n"
    return text


def yolo_run(root: Path, results: str) -> None:
    files: dict[str, str | bytes] = {
        "runs/detect/train/args.yaml": "task: detect\nmode: train\nepochs: 5\nsave_period: 1\n",
        "runs/detect/train/results.csv": results,
        "runs/detect/train/weights/best.pt": b"PK",
        "runs/detect/train/weights/last.pt": b"PK",
    }
    for epoch in range(1, 5):  # save_model: epoch > 0 and epoch % save_period == 0
        files[f"runs/detect/train/weights/epoch{epoch}.pt"] = b"PK"
    write(root, files)


@pytest.mark.parametrize("results", [results_80, results_83], ids=["8.0", "8.3"])
def test_epochs_are_counted_alike_by_every_version(tmp_path: Path, results: object) -> None:
    assert callable(results)
    yolo_run(tmp_path, results(MAPS))
    info = read_run(tmp_path, only(tmp_path, "ultralytics"))
    assert warnings_of(info) == []
    mapped = info.metrics["metrics/mAP50-95(B)"]
    assert (mapped.last, mapped.last_step, mapped.n) == (0.40, 5, 5)
    assert (mapped.best, mapped.best_step) == (0.50, 4)
    assert info.meta["epochs_done"] == 5
    assert info.status == "finished"


@pytest.mark.parametrize("results", [results_80, results_83], ids=["8.0", "8.3"])
def test_each_checkpoint_is_judged_by_its_own_epoch(tmp_path: Path, results: object) -> None:
    assert callable(results)
    root = tmp_path / "root"
    yolo_run(root, results(MAPS))
    age(root)
    index(root, tmp_path / "index.db", hash_files=False)
    db = open_db(tmp_path / "index.db", readonly=True)
    try:
        (root_id,) = [r for (r,) in db.conn.execute("SELECT id FROM roots")]
        by_run = candidates_for_root(
            db, root_id, str(root), metric=lambda run: "metrics/mAP50-95(B)"
        )
    finally:
        db.conn.close()
    (units,) = by_run.values()
    judged = {u.name: u.metric for u in units if u.epoch is not None}
    # epoch<N>.pt is saved after the row of epoch N (from 0): MAPS[N]
    assert judged == {f"epoch{n}.pt": MAPS[n] for n in range(1, 5)}


def test_a_yolov5_run_is_found_and_read_alike(tmp_path: Path) -> None:
    """YOLOv5 writes ``opt.yaml`` (its ``hyp`` in it) and ``hyp.yaml`` instead of
    ``args.yaml``, and ``'%20.5g,' * n % (epoch, ...)`` rows from epoch 0: the whole
    ``runs`` folder was taken for one generic run, with no params and no metrics."""
    keys = ["train/box_loss", "metrics/mAP_0.5", "metrics/mAP_0.5:0.95"]
    n = len(keys) + 1
    text = ("%20s," * n % ("epoch", *keys)).rstrip(",") + "\n"
    for epoch, value in enumerate(MAPS):
        text += ("%20.5g," * n % (epoch, 1 - epoch / 10, value + 0.2, value)).rstrip(",") + "\n"
    write(
        tmp_path,
        {
            "runs/train/exp/opt.yaml": "weights: yolov5s.pt\nepochs: 5\nbatch_size: 16\n"
            "hyp:\n  lr0: 0.01\n  momentum: 0.937\n",
            "runs/train/exp/hyp.yaml": "lr0: 0.01\nmomentum: 0.937\n",
            "runs/train/exp/results.csv": text,
            "runs/train/exp/weights/best.pt": b"PK",
            "runs/train/exp/weights/last.pt": b"PK",
        },
    )
    spec = only(tmp_path, "ultralytics")
    assert spec.path == "runs/train/exp"
    info = read_run(tmp_path, spec)
    assert warnings_of(info) == []
    assert info.params["epochs"] == 5 and info.params["hyp.lr0"] == 0.01
    assert not any(name.endswith("(#2)") for name in info.params)  # hyp.yaml repeats opt's
    mapped = info.metrics["metrics/mAP_0.5:0.95"]
    assert (mapped.best, mapped.best_step, mapped.last_step) == (0.50, 4, 5)
    assert info.status == "finished"
