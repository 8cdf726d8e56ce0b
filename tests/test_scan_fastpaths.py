"""The scanner's fast paths: bulk loads, the remembered identity snapshot, deferred run
summaries.  Each must leave the index exactly as a plain scan would."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from store import scan
from store.db import open_db
from store.scan import Indexer
from tests.conftest import ground_truth


def index_rows(db: sqlite_utils.Database) -> dict[bytes, int]:
    return {bytes(p): s for p, s in db.execute("SELECT path, size FROM artifacts")}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_db(tmp_path / "index.db")
    yield database
    database.close()


def make_runs(root: Path, runs: int = 3, files: int = 40) -> None:
    for r in range(runs):
        run = root / "lightning_logs" / f"version_{r}"
        (run / "checkpoints").mkdir(parents=True)
        (run / "hparams.yaml").write_text(f"lr: 0.01\nseed: {r}\n")
        (run / "metrics.csv").write_text("epoch,step,loss\n0,1,0.5\n1,2,0.25\n")
        for i in range(files):
            (run / "checkpoints" / f"epoch={i}.ckpt").write_bytes(b"x" * i)
    os.symlink("lightning_logs/version_0/hparams.yaml", root / "link.yaml")


def test_bulk_load_rebuilds_the_indexes_and_matches_the_disk(
    tmp_path: Path, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "BULK_ROWS", 10)
    root = tmp_path / "root"
    make_runs(root)
    before = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    Indexer(db, root).scan()
    after = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert after == before
    assert index_rows(db) == ground_truth(root)
    link = db.execute(
        "SELECT ftype, link_target, hash_state FROM artifacts WHERE path = ?", [b"link.yaml"]
    ).fetchone()
    assert link == ("symlink", "lightning_logs/version_0/hparams.yaml", "skipped")
    owned = db.execute("SELECT count(*) FROM artifacts WHERE run_id IS NULL").fetchone()[0]
    assert owned == 1  # only the top-level link lies outside every run


def test_remembered_snapshot_sees_changes_and_other_writers(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    root = tmp_path / "root"
    make_runs(root, runs=2, files=5)
    indexer = Indexer(db, root)
    indexer.scan()
    ckpt = root / "lightning_logs" / "version_1" / "checkpoints" / "epoch=3.ckpt"
    ckpt.write_bytes(b"longer than before")
    (root / "lightning_logs" / "version_0" / "hparams.yaml").unlink()
    report = indexer.scan()
    assert (report.changed, report.removed) == (1, 1)
    assert index_rows(db) == ground_truth(root)
    # another connection deletes a row: the snapshot must not hide it
    other = open_db(tmp_path / "index.db")
    with other.conn:
        other.conn.execute(
            "DELETE FROM artifacts WHERE path = ?",
            [os.fsencode("lightning_logs/version_1/metrics.csv")],
        )
    other.close()
    report = indexer.scan()
    assert report.added == 1
    assert index_rows(db) == ground_truth(root)


def test_a_root_too_big_to_remember_is_read_back_each_time(
    tmp_path: Path, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "SNAPSHOT_MAX", 3)
    root = tmp_path / "root"
    make_runs(root, runs=1, files=5)
    indexer = Indexer(db, root)
    indexer.scan()
    report = indexer.scan()
    assert (report.added, report.changed, report.removed) == (0, 0, 0)
    assert index_rows(db) == ground_truth(root)


def test_deferred_summaries_are_filled_afterwards(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    root = tmp_path / "root"
    make_runs(root, runs=2, files=3)
    indexer = Indexer(db, root)
    indexer.scan(defer_summaries=True)
    rows = db.execute("SELECT params, meta, n_artifacts FROM runs ORDER BY path").fetchall()
    assert [json.loads(p) for p, _, _ in rows] == [{}, {}]
    assert all(json.loads(m)["summary_pending"] for _, m, _ in rows)
    assert [n for _, _, n in rows] == [5, 5]
    # a new Indexer (another process) finishes what the scan left
    assert Indexer(db, root).fill_summaries() == 2
    rows = db.execute("SELECT params, meta, metrics FROM runs ORDER BY path").fetchall()
    assert [json.loads(p)["seed"] for p, _, _ in rows] == [0, 1]
    assert all("summary_pending" not in json.loads(m) for _, m, _ in rows)
    assert json.loads(rows[0][2])["loss"]["last"] == 0.25
    assert indexer.fill_summaries() == 0
