"""The change feed as typed events, folded into what a view reloads."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from store.index.db import last_event_id, open_db
from store.index.events import Event, EventKind, events_since, fold, in_scope
from store.index.views import children_page
from store.scan import Indexer


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_db(tmp_path / "index.db")
    yield database
    database.close()


def _lightning_run(root: Path, name: str) -> Path:
    run = root / "lightning_logs" / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "hparams.yaml").write_text("lr: 0.1\n")
    (run / "metrics.csv").write_text("epoch,step,loss\n0,1,0.5\n")
    return run


def test_a_scan_folds_into_its_runs_files_and_removals(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    root = tmp_path / "root"
    run = _lightning_run(root, "version_0")
    indexer = Indexer(db, root)
    indexer.scan()
    first = fold(events_since(db, 0))
    (run_id,) = [r[0] for r in db.execute("SELECT id FROM runs")]
    assert run_id in first.runs and not first.removed_runs and not first.full
    assert first.last_event == last_event_id(db)

    (run / "checkpoints" / "last.ckpt").write_bytes(b"x" * 10)
    indexer.scan()
    added = events_since(db, first.last_event)
    assert {e.kind for e in added} >= {EventKind.ADDED}
    delta = fold(added)
    rid = indexer.root_id
    assert (rid, b"lightning_logs/version_0/checkpoints/last.ckpt") in delta.folders
    assert (rid, b"lightning_logs/version_0/checkpoints") in delta.folders
    assert run_id in delta.runs

    shutil.rmtree(run)
    indexer.scan()
    gone = fold(events_since(db, delta.last_event))
    assert gone.removed_runs == {run_id} and run_id not in gone.runs


def test_later_events_win_and_unknown_kinds_ask_for_a_full_reload() -> None:
    removed = Event(1, 0.0, EventKind.RUN_REMOVED, 1, 7, b"a")
    readded = Event(2, 0.0, EventKind.RUN_ADDED, 1, 7, b"a")
    assert fold([removed, readded]).runs == {7}
    assert fold([readded, removed]).removed_runs == {7}
    assert fold([removed, readded]).last_event == 2
    scan = Event(3, 0.0, EventKind.SCAN, 4, None, b"")
    assert fold([scan]).rescanned_roots == {4}
    assert fold([Event(5, 0.0, EventKind.TRASH, 3, None, b"a/b")]).trash_roots == {3}
    newer = Event(4, 0.0, None, 1, None, b"x", raw_kind="moved")
    assert fold([removed, newer]).full
    assert fold([removed, readded], max_events=1).full
    assert not fold([removed, readded], max_events=2).full
    assert fold([]).empty


def test_a_file_event_after_its_runs_removal_keeps_the_run_removed() -> None:
    gone = Event(1, 0.0, EventKind.RUN_REMOVED, 1, 7, b"a")
    file_gone = Event(2, 0.0, EventKind.REMOVED, 1, 7, b"a/f")
    assert fold([gone, file_gone]).removed_runs == {7}
    assert 7 not in fold([gone, file_gone]).runs


def _listings(db: sqlite_utils.Database, root_id: int) -> dict[bytes, object]:
    """What a tree shows of every folder the index knows: names, sizes and counts."""
    keys = [b""] + [
        bytes(r[0]) for r in db.execute("SELECT path FROM dirs WHERE root_id = ?", [root_id])
    ]
    return {
        key: [(e.key, e.is_dir, e.size, e.count) for e in children_page(db, root_id, key).entries]
        for key in keys
    }


def test_every_folder_whose_listing_changed_is_in_the_delta(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """A folder's listing shows its sub-folders with their totals, so a file added or removed
    deep down changes what every folder above it shows (and a new or emptied folder writes
    no event of its own): a view refreshing only ``delta.folders`` would keep them stale."""
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.txt").write_bytes(b"x" * 10)
    indexer = Indexer(db, root)
    indexer.scan()
    rid = indexer.root_id
    after = fold(events_since(db, 0)).last_event

    def add_folder() -> None:
        (root / "a" / "b" / "new").mkdir()
        (root / "a" / "b" / "new" / "g.txt").write_bytes(b"y" * 5)

    for change in (add_folder, lambda: shutil.rmtree(root / "a" / "b")):
        before = _listings(db, rid)
        change()
        indexer.scan()
        delta = fold(events_since(db, after))
        assert not delta.full and not delta.rescanned_roots
        after = delta.last_event
        now = _listings(db, rid)
        stale = {k for k in before.keys() & now.keys() if before[k] != now[k]}
        assert stale and stale <= {key for r, key in delta.folders if r == rid}


def test_a_scan_below_its_root_covers_that_folder_and_the_folders_above_it() -> None:
    """A chunk of a first scan names the folders it covered: a reader rereads those, not
    the whole root; a scan of the whole root in the same batch still wins."""
    below = Event(1, 0.0, EventKind.SCAN, 4, None, b"logs/v1")
    delta = fold([below, Event(2, 0.0, EventKind.SCAN, 4, None, b"logs/v2")])
    assert not delta.rescanned_roots
    assert delta.rescanned_folders == {(4, b"logs/v1"), (4, b"logs/v2")}
    assert {(4, b"logs"), (4, b"")} <= delta.folders
    covered = in_scope(delta.rescanned_folders)
    assert covered(4, b"logs/v1") and covered(4, b"logs/v1/ckpt")  # at and below
    assert covered(4, b"logs") and covered(4, b"")  # above: totals and listings show it
    assert not covered(4, b"logs/v10") and not covered(4, b"logs/v3/x")  # siblings
    assert not covered(5, b"logs/v1")  # another root
    assert not in_scope(frozenset())(4, b"")
    whole = fold([below, Event(3, 0.0, EventKind.SCAN, 4, None, b"")])
    assert whole.rescanned_roots == {4} and not whole.rescanned_folders
