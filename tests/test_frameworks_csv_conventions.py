"""Metric CSVs as their writers really write them: what a writer puts in a row on purpose
is no damage.  Keras' ``CSVLogger`` writes ``NA`` where a metric has no value that epoch
(``val_*`` in the epochs ``validation_freq`` skips); timm's ``update_summary`` writes a
header at the first epoch of every start, so a resumed run's ``summary.csv`` holds one
more, and its columns may differ.  Neither is a cell that could not be read: the metrics
are whole, without a warning, and each value lands in its own metric."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from store.frameworks import read_run
from store.frameworks.model import UNREAD_PARTS
from tests.test_frameworks import only, warnings_of, write


def keras_log(epochs: list[dict[str, float]]) -> str:
    """``keras.callbacks.CSVLogger.on_epoch_end``: the first epoch's keys sorted, plus the
    ``val_`` keys when it had none, then ``logs.get(key, "NA")``, excel dialect."""
    keys = sorted(epochs[0])
    if not any(k.startswith("val_") for k in keys):
        keys += [f"val_{k}" for k in keys]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["epoch", *keys], dialect=csv.excel)
    writer.writeheader()
    for epoch, logs in enumerate(epochs):
        writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in keys}})
    return buffer.getvalue()


def test_keras_na_cells_are_no_value_not_damage(tmp_path: Path) -> None:
    epochs = [  # fit(..., validation_freq=2): validation after epochs 2 and 4 only
        {"accuracy": 0.81, "loss": 0.62},
        {"accuracy": 0.88, "loss": 0.41, "val_accuracy": 0.86, "val_loss": 0.45},
        {"accuracy": 0.90, "loss": 0.35},
        {"accuracy": 0.91, "loss": 0.30, "val_accuracy": 0.85, "val_loss": 0.47},
    ]
    write(
        tmp_path,
        {
            "mnist/training.log": keras_log(epochs),
            "mnist/ckpt/model.02-0.45.keras": b"PK\x05\x06" + bytes(18),
            "mnist/ckpt/model.04-0.47.keras": b"PK\x05\x06" + bytes(18),
        },
    )
    assert ",NA," in (tmp_path / "mnist" / "training.log").read_text()
    info = read_run(tmp_path, only(tmp_path, "keras"))
    assert not [w for w in warnings_of(info) if "training.log" in w]
    assert UNREAD_PARTS not in info.meta
    val = info.metrics["val_loss"]
    assert (val.last, val.last_step, val.best, val.best_step, val.n) == (0.47, 3, 0.45, 1, 2)
    acc = info.metrics["val_accuracy"]
    assert (acc.last, acc.best, acc.best_step, acc.n) == (0.85, 0.86, 1, 2)
    assert info.metrics["loss"].n == 4


def summary_rows(rows: list[dict[str, float]], write_header: bool) -> str:
    """timm's ``utils.update_summary`` for one epoch: ``csv.DictWriter`` in append mode."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=rows[0].keys())
    for n, row in enumerate(rows):
        if write_header and n == 0:
            writer.writeheader()
        writer.writerow(row)
    return buffer.getvalue()


def test_timm_resumed_summary_with_a_second_header(tmp_path: Path) -> None:
    first = [  # started without an eval split: no eval_* columns
        {"epoch": 0, "train_loss": 2.3, "lr": 0.1},
        {"epoch": 1, "train_loss": 1.9, "lr": 0.09},
    ]
    resumed = [  # train.py --resume ... --experiment same: best_metric is None again
        {"epoch": 2, "train_loss": 1.7, "eval_loss": 1.8, "eval_top1": 55.0, "lr": 0.05},
        {"epoch": 3, "train_loss": 1.6, "eval_loss": 1.9, "eval_top1": 52.5, "lr": 0.01},
    ]
    run = "output/train/resnet-exp"
    write(
        tmp_path,
        {
            f"{run}/args.yaml": "epochs: 4\ncooldown_epochs: 0\nmodel: resnet18\n",
            f"{run}/summary.csv": summary_rows(first, True) + summary_rows(resumed, True),
            f"{run}/last.pth.tar": b"PK",
        },
    )
    info = read_run(tmp_path, only(tmp_path, "timm"))
    assert warnings_of(info) == []
    assert UNREAD_PARTS not in info.meta
    top1 = info.metrics["eval_top1"]
    assert (top1.last, top1.last_step, top1.best, top1.best_step, top1.n) == (52.5, 3, 55.0, 2, 2)
    loss = info.metrics["train_loss"]
    assert (loss.last, loss.last_step, loss.n) == (1.6, 3, 4)
    assert info.metrics["lr"].last == 0.01
    assert info.status == "finished"


def test_a_cell_that_is_no_number_is_still_said(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "mnist/training.log": "epoch,loss,val_loss\n0,0.5,NA\n1,oops,0.4\n",
            "mnist/model.keras": b"PK\x05\x06" + bytes(18),
        },
    )
    info = read_run(tmp_path, only(tmp_path, "keras"))
    assert any("1 non-numeric cell(s) skipped" in w for w in warnings_of(info))
    assert info.meta[UNREAD_PARTS] == ["metrics"]


def test_a_field_past_csvs_default_limit_does_not_cut_the_metrics(tmp_path: Path) -> None:
    """A cell over 131,072 characters (csv's default field limit) stopped the reading: the
    rows after it were dropped, and the loss's last value was one from before it."""
    long_cell = '"' + "x" * 200_000 + '"'
    write(
        tmp_path,
        {
            "lightning_logs/version_0/metrics.csv": (
                f"step,loss\n0,1.0\n1,0.5\n2,{long_cell}\n3,0.3\n4,0.25\n"
            ),
        },
    )
    info = read_run(tmp_path, only(tmp_path, "lightning"))
    loss = info.metrics["loss"]
    assert (loss.last, loss.last_step, loss.n) == (0.25, 4, 4)
    assert warnings_of(info) == [
        "lightning_logs/version_0/metrics.csv: 1 non-numeric cell(s) skipped"
    ]
