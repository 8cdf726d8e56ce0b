"""The write module keeps the index's invariants when someone other than the scanner writes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils
from test_retention_support import write

from store.index.db import open_db
from store.index.events import EventKind, events_since, fold
from store.retention.plan import make_plan
from store.retention.policy import from_flags
from store.retention.trash import apply_plan, purge, restore
from store.scan import Indexer


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_db(tmp_path / "index.db")
    yield database
    database.close()


def _totals(db: sqlite_utils.Database) -> dict[int, tuple[int, int, int, int]]:
    """Per run: (size_bytes, n_artifacts) as stored, beside the sum and count of its rows."""
    return {
        r[0]: tuple(r[1:])
        for r in db.conn.execute(
            "SELECT runs.id, runs.size_bytes, runs.n_artifacts,"
            " (SELECT coalesce(sum(size), 0) FROM artifacts WHERE run_id = runs.id),"
            " (SELECT count(*) FROM artifacts WHERE run_id = runs.id) FROM runs"
        )
    }


def test_trash_and_restore_keep_run_totals_equal_to_their_rows(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    root = tmp_path / "root"
    version = root / "lightning_logs" / "version_0"
    write(version / "hparams.yaml", b"lr: 0.1\n")
    write(version / "metrics.csv", b"epoch,step,val_loss\n0,10,0.5\n1,20,0.4\n")
    for epoch in range(3):
        write(
            version / "checkpoints" / f"epoch={epoch}.ckpt",
            os.urandom(100 + epoch),
            age=9000.0 - epoch,
        )
    Indexer(db, root).scan()
    start = fold(events_since(db, 0)).last_event
    ((run_id, (size, count, _, _)),) = _totals(db).items()
    assert count == 5

    plan = make_plan(db, [root], from_flags(keep_last=1), time.time())
    assert plan.removals
    report = apply_plan(plan, db)
    assert report.done and not report.skipped
    after = _totals(db)[run_id]
    assert after[0] == after[2] < size and after[1] == after[3] < count
    trashed = events_since(db, start)
    assert {e.kind for e in trashed} == {EventKind.REMOVED, EventKind.TRASH}
    root_id = trashed[0].root_id
    assert run_id in fold(trashed).runs and fold(trashed).trash_roots == {root_id}

    restore(root, "all", db)
    back = _totals(db)[run_id]
    assert back[:2] == back[2:] == (size, count)
    restored = events_since(db, trashed[-1].id)
    assert {e.kind for e in restored} == {EventKind.ADDED, EventKind.TRASH}
    assert fold(restored).trash_roots == {root_id}


def test_a_purge_tells_views_of_the_trash(tmp_path: Path, db: sqlite_utils.Database) -> None:
    root = tmp_path / "root"
    for step in range(3):
        write(root / "run" / f"step_{step}.pt", os.urandom(64), age=3600.0 - step)
    Indexer(db, root).scan()
    apply_plan(make_plan(db, [root], from_flags(keep_last=1), time.time()), db)
    before = fold(events_since(db, 0)).last_event
    assert purge(root, older_than=3600, db=db, now=time.time() + 7200).done
    purged = fold(events_since(db, before))
    assert purged.trash_roots and not purged.runs and not purged.removed_runs


def test_an_index_from_before_the_unreadable_record_gains_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record of what scans could not read arrives by migration; until a writer opens
    the older index, readers say it holds no such record (None), never "nothing"."""
    from store.index.query import UnreadableRow, unreadable_places
    from tests.test_scan import deny_listing

    root = tmp_path / "root"
    write(root / "run" / "closed" / "model.pt", b"x")
    path = tmp_path / "index.db"
    db = open_db(path)
    Indexer(db, root).scan()
    db.execute("DROP VIEW unreadable_text")
    db.execute("DROP TABLE unreadable")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm005_unreadable'")
    db.close()
    reader = open_db(path, readonly=True)
    try:
        assert unreadable_places(reader.conn) is None
    finally:
        reader.close()
    db = open_db(path)
    try:
        deny_listing(monkeypatch, root / "run" / "closed")
        Indexer(db, root).scan()
        assert unreadable_places(db.conn) == {
            1: [UnreadableRow(b"run/closed", "folder", "permission denied")]
        }
        assert db.execute("SELECT path_text FROM unreadable_text").fetchall() == [("run/closed",)]
    finally:
        db.close()
