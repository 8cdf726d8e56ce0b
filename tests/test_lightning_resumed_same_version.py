"""Lightning resumed into the same logger version (``CSVLogger(version=0)`` and
``TensorBoardLogger(version=0)``, ``trainer.fit(ckpt_path=...)``): the CSVLogger removes the
``metrics.csv`` the earlier session wrote (its folder is not empty) and writes from the
resumed step on, while the TensorBoardLogger adds an event file of its own beside the
earlier one.  The CSV won for every metric it holds, so the steps before the resume (in
the event files only) were silently left out: n counted one session, best missed the
earlier one's.  They are added from the event files (the dead session's points at or
after the resume are dropped there, as orphans), and said."""

from __future__ import annotations

from pathlib import Path

from store.frameworks import detect_runs, read_run
from store.frameworks.model import UNREAD_PARTS
from tests import test_tensorboard_restarts as tb
from tests.test_frameworks import listing_of, only, warnings_of, write

T0 = tb.T0


def val(step: int, session: int) -> float:
    return tb.f32({1: 0.5, 3: 0.1, 5: 0.3, 7: 0.35, 9: 0.32, 11: 0.31}[step] + 0.01 * session)


def test_points_before_a_resume_come_from_the_event_files(tmp_path: Path) -> None:
    run = tmp_path / "logs" / "lightning_logs" / "version_0"
    # first session: steps 0..9, died; its best val_loss (0.1) at step 3
    tb.write(
        run,
        "1700000000.host.1.0",
        [tb.version(T0)] + [tb.scalar(T0 + s, s, "val_loss", val(s, 0)) for s in (1, 3, 5, 7, 9)],
    )
    # resumed from the checkpoint of step 5: a new event file, steps 7..11
    tb.write(
        run,
        "1700005000.host.2.0",
        [tb.version(T0 + 5000)]
        + [tb.scalar(T0 + 5000 + s, s, "val_loss", val(s, 1)) for s in (7, 9, 11)],
    )
    rows = "".join(f"{s // 2},{s},,{val(s, 1)}\n" for s in (7, 9, 11))
    write(
        run,
        {"hparams.yaml": "lr: 0.1\n", "metrics.csv": "epoch,step,train_loss,val_loss\n" + rows},
    )
    info = read_run(tmp_path, only(tmp_path, "lightning"))
    got = info.metrics["val_loss"]
    assert (got.n, got.last_step, got.last) == (6, 11, val(11, 1))
    assert (got.best, got.best_step) == (val(3, 0), 3)  # the earlier session's, kept
    said = [w for w in warnings_of(info) if "begins at step 7" in w]
    assert len(said) == 1 and "3 point(s)" in said[0], warnings_of(info)
    assert UNREAD_PARTS not in info.meta


# metrics.csv as Lightning 2.6.6's CSVLogger wrote it (log_every_n_steps=1, two batches an
# epoch) after ``trainer.fit(ckpt_path=".../last.ckpt")`` resumed at the end of epoch 1
RESUMED_CSV = (
    "epoch,step,train_loss,val_acc,val_loss\n"
    "2,4,0.22452951967716217,,\n"
    "2,5,0.16976593434810638,,\n"
    "2,5,,0.8319714069366455,0.16802862286567688\n"
    "3,6,0.18618208169937134,,\n"
    "3,7,0.14301849901676178,,\n"
    "3,7,,0.8584421873092651,0.14155779778957367\n"
)


def test_a_csv_that_begins_after_epoch_0_is_said_to_miss_the_earlier_steps(
    tmp_path: Path,
) -> None:
    """Resumed without event files (CSVLogger only), into the same version or a new one:
    the steps before the resume are not in the folder, so n, best and the first values
    are this session's only.  Said, and the metrics marked read in part, never passed off
    as the whole run's."""
    for version in ("same", "version_1"):
        write(
            tmp_path / "pl" / version,
            {
                "hparams.yaml": "hidden: 3\nlr: 0.05\n",
                "metrics.csv": RESUMED_CSV,
                "checkpoints/last.ckpt": "x",
            },
        )
    for spec in detect_runs(tmp_path, listing_of(tmp_path)):
        info = read_run(tmp_path, spec)
        assert info.metrics["val_loss"].n == 2
        said = [w for w in warnings_of(info) if "begins at epoch 2 (step 4)" in w]
        assert len(said) == 1, warnings_of(info)
        assert info.meta[UNREAD_PARTS] == ["metrics"]


def test_a_csv_from_epoch_0_is_whole(tmp_path: Path) -> None:
    """A fresh run's CSV (first row at epoch 0, whatever its first logged step) is not
    taken for a resumed one."""
    rows = "epoch,step,train_loss,val_loss\n0,49,0.5,\n0,99,,0.4\n1,149,0.3,\n"
    write(tmp_path / "pl" / "version_0", {"hparams.yaml": "lr: 0.1\n", "metrics.csv": rows})
    info = read_run(tmp_path, only(tmp_path, "lightning"))
    assert info.metrics["train_loss"].n == 2
    assert not [w for w in warnings_of(info) if "begins at" in w]
    assert UNREAD_PARTS not in info.meta
