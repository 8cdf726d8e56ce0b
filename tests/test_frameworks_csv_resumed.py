"""A run resumed into the same metric CSV appends a session of its own from the step it
resumed at: the rows the dead session logged from there on are orphaned, and must not
count in a metric's n, best or last (as TensorBoard purges them from event files).

The evidence is the writer's own: timm's ``update_summary(..., write_header=best_metric is
None)`` writes the header again at a resumed start; Keras' ``CSVLogger(append=True)`` and
Ultralytics' ``results.csv`` write one row per epoch, so an epoch that does not go up is a
new ``fit()``.  A step going back in a CSV with no such evidence is not guessed at: all
rows are kept and the metrics are marked read in part."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from store.frameworks import read_run
from store.frameworks.model import UNREAD_PARTS
from tests.test_frameworks import only, warnings_of, write


def rows_csv(rows: list[dict[str, object]], header: bool) -> str:
    """``csv.DictWriter`` rows in append mode, as timm and Keras write them."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def timm_epochs(epochs: range, top1: dict[int, float]) -> list[dict[str, object]]:
    return [
        {
            "epoch": e,
            "train_loss": round(3.0 - 0.1 * e, 3),
            "eval_loss": round(2.5 - 0.05 * e, 3),
            "eval_top1": top1.get(e, 40.0 + e),
            "lr": 0.1,
        }
        for e in epochs
    ]


def test_timm_resumed_from_an_earlier_epoch_drops_the_dead_sessions_rows(tmp_path: Path) -> None:
    # the first session reached epoch 9 (a lucky 90.0 at epoch 7), died; --resume from
    # checkpoint-4.pth.tar starts again at epoch 5 and writes the header again
    dead = timm_epochs(range(10), {7: 90.0})
    resumed = timm_epochs(range(5, 13), {})
    run = "output/train/resnet-exp"
    write(
        tmp_path,
        {
            f"{run}/args.yaml": "epochs: 20\ncooldown_epochs: 0\nmodel: resnet18\n",
            f"{run}/summary.csv": rows_csv(dead, True) + rows_csv(resumed, True),
            f"{run}/last.pth.tar": b"PK",
        },
    )
    info = read_run(tmp_path, only(tmp_path, "timm"))
    top1 = info.metrics["eval_top1"]
    assert (top1.n, top1.last, top1.last_step) == (13, 52.0, 12)
    assert (top1.best, top1.best_step) == (52.0, 12)  # not the dead session's 90.0
    assert info.metrics["train_loss"].n == 13
    said = [w for w in warnings_of(info) if "summary.csv" in w]
    assert len(said) == 1 and "epoch 5" in said[0] and "5 row(s)" in said[0], said
    assert "line 12" in said[0]  # the header written again: 1 header + 10 rows before it
    assert UNREAD_PARTS not in info.meta  # every row was read; the dropped are known orphans


def test_timm_resumed_twice_drops_for_each_restart(tmp_path: Path) -> None:
    first = timm_epochs(range(8), {6: 95.0})  # died after epoch 7
    second = timm_epochs(range(4, 10), {5: 96.0})  # resumed at 4, died after 9
    third = timm_epochs(range(3, 6), {})  # resumed at 3 (an older checkpoint)
    run = "output/train/exp"
    write(
        tmp_path,
        {
            f"{run}/args.yaml": "epochs: 20\n",
            f"{run}/summary.csv": rows_csv(first, True)
            + rows_csv(second, True)
            + rows_csv(third, True),
        },
    )
    info = read_run(tmp_path, only(tmp_path, "timm"))
    top1 = info.metrics["eval_top1"]
    assert (top1.n, top1.last_step, top1.best) == (6, 5, 45.0)
    said = [w for w in warnings_of(info) if "summary.csv" in w]
    assert len(said) == 1 and "(and 1 restart(s) more)" in said[0], said
    assert "11 row(s)" in said[0]  # first: 4..7 and 3 (5 rows); second: 4..9 (6 rows)


def keras_rows(epochs: range, val_loss: dict[int, float]) -> list[dict[str, object]]:
    return [
        {
            "epoch": e,
            "accuracy": round(0.5 + 0.01 * e, 3),
            "loss": round(1.0 - 0.02 * e, 3),
            "val_accuracy": round(0.5 + 0.01 * e, 3),
            "val_loss": val_loss.get(e, round(1.0 - 0.01 * e, 3)),
        }
        for e in epochs
    ]


def test_keras_csvlogger_append_after_resuming_from_an_earlier_epoch(tmp_path: Path) -> None:
    # fit(epochs=20) died after epoch 9; model restored from model.05.keras and
    # fit(initial_epoch=5, callbacks=[CSVLogger("training.log", append=True)]): no header
    # again (the file is not empty), the epoch column goes back to 5
    dead = keras_rows(range(10), {8: 0.01})
    resumed = keras_rows(range(5, 13), {})
    write(
        tmp_path,
        {
            "mnist/training.log": rows_csv(dead, True) + rows_csv(resumed, False),
            "mnist/ckpt/model.05.keras": b"PK\x05\x06" + bytes(18),
            "mnist/ckpt/model.13.keras": b"PK\x05\x06" + bytes(18),
        },
    )
    info = read_run(tmp_path, only(tmp_path, "keras"))
    val = info.metrics["val_loss"]
    assert (val.n, val.last_step, val.last) == (13, 12, 0.88)
    assert (val.best, val.best_step) == (0.88, 12)  # not the dead session's 0.01 at epoch 8
    said = [w for w in warnings_of(info) if "training.log" in w]
    assert len(said) == 1 and "epoch 5" in said[0] and "5 row(s)" in said[0], said
    assert "line 12" in said[0] and "went back from 9" in said[0]
    assert UNREAD_PARTS not in info.meta


def test_keras_repeated_epoch_after_a_resume_at_the_same_epoch(tmp_path: Path) -> None:
    dead = keras_rows(range(5), {4: 0.1})  # the row of epoch 4 written, its save lost
    resumed = keras_rows(range(4, 7), {})
    write(
        tmp_path,
        {
            "mnist/training.log": rows_csv(dead, True) + rows_csv(resumed, False),
            "mnist/model.keras": b"PK\x05\x06" + bytes(18),
        },
    )
    info = read_run(tmp_path, only(tmp_path, "keras"))
    val = info.metrics["val_loss"]
    assert (val.n, val.best, val.best_step) == (7, 0.94, 6)
    assert any("1 row(s)" in w for w in warnings_of(info) if "training.log" in w)


def test_keras_append_that_continues_is_no_restart(tmp_path: Path) -> None:
    text = rows_csv(keras_rows(range(5), {}), True) + rows_csv(keras_rows(range(5, 9), {}), False)
    write(
        tmp_path,
        {"mnist/training.log": text, "mnist/model.keras": b"PK\x05\x06" + bytes(18)},
    )
    info = read_run(tmp_path, only(tmp_path, "keras"))
    assert [w for w in warnings_of(info) if "training.log" in w] == []
    assert UNREAD_PARTS not in info.meta
    assert info.metrics["val_loss"].n == 9


def test_ultralytics_results_resumed_at_an_epoch_already_logged(tmp_path: Path) -> None:
    # BaseTrainer.save_metrics appends a row (header only for a new file), then saves
    # last.pt; killed between the two, `resume=True` trains epoch 3 again
    head = "epoch,time,train/box_loss,metrics/mAP50(B),lr/pg0\n"
    dead = "1,60,1.2,0.30,0.01\n2,120,1.1,0.35,0.01\n3,180,1.0,0.99,0.01\n"
    resumed = "3,200,1.05,0.38,0.01\n4,260,0.95,0.41,0.01\n"
    write(
        tmp_path,
        {
            "runs/detect/train/args.yaml": "epochs: 10\nmodel: yolov8n.pt\n",
            "runs/detect/train/results.csv": head + dead + resumed,
            "runs/detect/train/weights/last.pt": b"PK",
        },
    )
    info = read_run(tmp_path, only(tmp_path, "ultralytics"))
    mean_ap = info.metrics["metrics/mAP50(B)"]
    assert (mean_ap.n, mean_ap.best, mean_ap.last) == (4, 0.41, 0.41)
    assert any("1 row(s)" in w for w in warnings_of(info) if "results.csv" in w)


def test_a_step_going_back_with_no_evidence_is_doubt_not_a_guess(tmp_path: Path) -> None:
    # a Lightning metrics.csv whose step goes back with no header again: a custom logger
    # appending across restarts, or two writers; which rows are current cannot be told
    text = (
        "epoch,step,train_loss,val_loss\n"
        "0,49,0.9,\n0,49,,0.8\n1,99,0.7,\n1,99,,0.2\n"
        "0,49,0.85,\n0,49,,0.75\n"
    )
    write(
        tmp_path,
        {
            "lightning_logs/version_0/hparams.yaml": "lr: 0.1\n",
            "lightning_logs/version_0/metrics.csv": text,
        },
    )
    info = read_run(tmp_path, only(tmp_path, "lightning"))
    val = info.metrics["val_loss"]
    assert (val.n, val.last_step, val.last) == (3, 99, 0.2)  # all kept, last as before
    assert info.meta[UNREAD_PARTS] == ["metrics"]
    said = [w for w in warnings_of(info) if "metrics.csv" in w]
    assert len(said) == 1 and "line 6" in said[0] and "from 99 to 49" in said[0], said


def test_a_generic_csv_with_a_header_again_drops_what_the_restart_logged_over(
    tmp_path: Path,
) -> None:
    text = "step,loss\n0,1.0\n10,0.5\n20,0.01\nstep,loss\n10,0.6\n20,0.4\n30,0.3\n"
    write(
        tmp_path,
        {
            "exp/lightning_logs/version_0/metrics.csv": text,
            "exp/lightning_logs/version_0/hparams.yaml": "a: 1\n",
        },
    )
    info = read_run(tmp_path, only(tmp_path, "lightning"))
    loss = info.metrics["loss"]
    assert (loss.n, loss.best, loss.last) == (4, 0.3, 0.3)
    assert UNREAD_PARTS not in info.meta
