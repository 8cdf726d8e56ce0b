"""Retention judges each checkpoint file by the session that saved it.  A timm run resumed
from an earlier epoch writes the header of ``summary.csv`` again; the run's metrics drop the
dead session's rows from the resumed epoch on, but its ``checkpoint-9.pth.tar`` is still on
disk, and was judged by the dead session's epoch 9: keep-best reads that row, not nothing.
An epoch both sessions logged is judged by the resumed session's row (it saved again)."""

from __future__ import annotations

from pathlib import Path

from test_retention_support import index_tree, new_db, write

from store.frameworks import RunSpec, read_run
from store.retention.candidates import candidates_for_root
from tests.test_frameworks_csv_resumed import rows_csv, timm_epochs


def test_a_dead_sessions_checkpoint_keeps_its_own_metric(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run = root / "output" / "train" / "exp"
    dead = timm_epochs(range(10), {9: 90.0})
    resumed = timm_epochs(range(5, 9), {8: 60.0})
    write(run / "args.yaml", b"epochs: 20\n")
    write(run / "summary.csv", (rows_csv(dead, True) + rows_csv(resumed, True)).encode())
    write(run / "checkpoint-9.pth.tar", b"dead session's epoch 9", age=7200)
    write(run / "checkpoint-8.pth.tar", b"resumed session's epoch 8", age=60)
    info = read_run(root, RunSpec("output/train/exp", "timm", "exp", None))
    assert info.metrics["eval_top1"].best == 60.0  # the run's metrics: orphans dropped
    db = new_db(tmp_path)
    root_id = index_tree(db, root, {"output/train/exp": ("timm", "finished")})
    (units,) = candidates_for_root(db, root_id, str(root), metric="eval_top1").values()
    judged = {u.path.rsplit("/", 1)[-1]: u.metric for u in units}
    assert judged == {"checkpoint-8.pth.tar": 60.0, "checkpoint-9.pth.tar": 90.0}
    db.conn.close()
