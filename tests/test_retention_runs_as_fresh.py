"""After retention moves files to the trash (or back), the index's runs, rows and folders
are what a fresh index of the same disk finds: trashing a generic run's last artifact, or
a run's whole folder, unmakes the run; restoring it makes the run again."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils
from test_retention_support import write

from store.index import write as index_write
from store.index.db import open_db, write_transaction
from store.paths import key
from store.retention import service
from store.retention.drill import plan_removal
from store.retention.trash import list_trash
from store.scan import Indexer

CKPTS = "lightning_logs/version_0/checkpoints"

Rows = tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[bytes]]


def _tree(root: Path) -> None:
    """Two generic runs (``a`` with a file that is no artifact) and a Lightning run."""
    write(root / "a" / "model.pt", b"aa")
    write(root / "a" / "sub" / "notes.txt", b"n")
    write(root / "b" / "model.pt", b"bbb")
    write(root / "c" / CKPTS / "epoch=1.ckpt", b"cccc")
    write(root / "c" / "lightning_logs" / "version_0" / "hparams.yaml", b"lr: 1\n")


def _rows(db_path: Path) -> Rows:
    """Artifact rows (path, size, its run's path), runs (path, framework, size, files)
    and folders, as a fresh index would compare."""
    db = sqlite_utils.Database(db_path)
    try:
        rows = db.conn.execute(
            "SELECT a.path, a.size, r.path FROM artifacts a LEFT JOIN runs r ON r.id = a.run_id"
            " ORDER BY a.path"
        ).fetchall()
        runs = db.conn.execute(
            "SELECT path, framework, size_bytes, n_artifacts FROM runs ORDER BY path"
        ).fetchall()
        dirs = [bytes(p) for (p,) in db.conn.execute("SELECT path FROM dirs ORDER BY path")]
    finally:
        db.conn.close()
    return [tuple(r) for r in rows], [tuple(r) for r in runs], dirs


def _fresh(tmp_path: Path, root: Path, name: str) -> Rows:
    path = tmp_path / f"fresh-{name}.db"
    db = open_db(path)
    Indexer(db, root).scan()
    db.conn.close()
    return _rows(path)


def _indexed(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    _tree(root)
    db_path = tmp_path / "index.db"
    db = open_db(db_path)
    Indexer(db, root).scan()
    db.conn.close()
    return root, db_path


@pytest.mark.parametrize(
    ("target", "gone"),
    [
        ("a/model.pt", b"a"),  # a generic run's last artifact
        ("a", b"a"),  # a generic run's whole folder
        ("c/lightning_logs", b"c/lightning_logs/version_0"),  # a folder holding a run
    ],
)
def test_apply_and_restore_leave_the_runs_a_fresh_index_finds(
    tmp_path: Path, isolated_cache: Path, target: str, gone: bytes
) -> None:
    """The run stayed listed (empty, or with its other files) after its last artifact or
    its folder went to the trash, and its folders stayed in the tree, until some other
    change of structure; restored, its files came back without their run."""
    root, db_path = _indexed(tmp_path)
    assert gone in [r[0] for r in _rows(db_path)[1]]
    db = open_db(db_path)
    plan = plan_removal(db, str(root), target)
    db.conn.close()
    done = service.apply(plan, db_path, role="test")
    assert done.index_updated and [i.path for i in done.report.done] == [target]
    after = _rows(db_path)
    assert gone not in [r[0] for r in after[1]]
    assert after == _fresh(tmp_path, root, "applied")

    (entry,) = list_trash(root)
    back = service.restore_items(db_path, {str(root): [entry.id]}, role="test")
    assert back.index_updated and len(back.report.done) == 1
    restored = _rows(db_path)
    assert gone in [r[0] for r in restored[1]]
    assert restored == _fresh(tmp_path, root, "restored")


def test_a_move_recorded_but_not_settled_is_settled_by_the_next_scan(tmp_path: Path) -> None:
    """An apply killed after recording a move (its rows gone) and before its runs were
    detected again: the rows match the disk, so the next scan saw nothing to change and
    kept the run for good.  The note written with the rows makes that scan detect them."""
    root, db_path = _indexed(tmp_path)
    (root / "a" / "model.pt").unlink()  # what the move did on disk
    db = open_db(db_path)
    (root_id,) = db.conn.execute("SELECT id FROM roots").fetchone()
    with write_transaction(db) as conn:  # what recording the move did in the index
        index_write.forget_moved(conn, root_id, key("a/model.pt"), None, 1.0)
    Indexer(db, root).scan()
    db.conn.close()
    assert b"a" not in [r[0] for r in _rows(db_path)[1]]
    assert _rows(db_path) == _fresh(tmp_path, root, "scanned")
    db = open_db(db_path)
    assert not index_write.stale_folders(db.conn, root_id)  # noted once, done once
    db.conn.close()
