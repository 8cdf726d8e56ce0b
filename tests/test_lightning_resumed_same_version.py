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

from store.frameworks import read_run
from store.frameworks.model import UNREAD_PARTS
from tests import test_tensorboard_restarts as tb
from tests.test_frameworks import only, warnings_of, write

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
