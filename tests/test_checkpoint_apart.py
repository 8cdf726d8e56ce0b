"""A first load commits its rows, then its log is copied into the database file on a
thread of its own (``store.index.db.checkpoint_apart``).  Real files, real SQLite: the
rows must be readable as soon as the scan returns, the file must hold them once the copy
is done, and the writer's own checkpoints must be back on."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from store import scan
from store.index import db as index_db
from store.index.db import (
    checkpoint_apart,
    open_db,
    open_new,
    publish,
    wait_for_checkpoints,
    write_transaction,
)
from store.scan import Indexer
from tests.conftest import ground_truth
from tests.test_scan_fastpaths import make_runs

DEFAULT_AUTOCHECKPOINT = 1000


@pytest.fixture(autouse=True)
def no_checkpoint_running() -> Iterator[None]:
    wait_for_checkpoints()
    yield
    wait_for_checkpoints()


def rows_in_file_alone(db_file: Path, tmp_path: Path) -> int:
    """The rows the database file holds without its log (a copy of the file alone)."""
    alone = tmp_path / "alone" / "copy.db"
    alone.parent.mkdir(exist_ok=True)
    shutil.copyfile(db_file, alone)
    conn = sqlite3.connect(alone)
    try:
        return int(conn.execute("SELECT count(*) FROM artifacts").fetchone()[0])
    finally:
        conn.close()


def test_a_first_load_commits_then_copies_its_log_into_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "EVENT_FLOOD", 10)  # the first-load path, as on a big tree
    root = tmp_path / "root"
    make_runs(root, runs=4, files=60)
    db_file = tmp_path / "a ?b#c %41 é" / "index.db"  # the thread opens it by a URI
    db = open_db(db_file)
    try:
        report = Indexer(db, root).scan()
        assert report.added == len(ground_truth(root)) > 200
        assert [t.name for t in index_db._checkpoints] == ["artlens-checkpoint"]
        reader = open_db(db_file, readonly=True)
        try:
            seen = reader.execute("SELECT count(*) FROM artifacts").fetchone()[0]
        finally:
            reader.close()
        assert seen == report.added  # committed before the copy is done
        wait_for_checkpoints()
        assert not index_db._checkpoints
        assert rows_in_file_alone(db_file, tmp_path) == report.added
        autocheckpoint = db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert autocheckpoint == DEFAULT_AUTOCHECKPOINT
    finally:
        db.close()


def test_a_small_scan_checkpoints_as_it_commits(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_runs(root, runs=1, files=3)
    db = open_db(tmp_path / "index.db")
    try:
        Indexer(db, root).scan()
        assert not index_db._checkpoints
    finally:
        db.close()


def test_a_failed_transaction_starts_no_copy_and_restores_the_writers_checkpoints(
    tmp_path: Path,
) -> None:
    db = open_db(tmp_path / "index.db")
    try:
        with pytest.raises(RuntimeError), checkpoint_apart(db), write_transaction(db) as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
            raise RuntimeError("the scan failed")
        assert not index_db._checkpoints
        assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == DEFAULT_AUTOCHECKPOINT
        assert db.execute("SELECT count(*) FROM meta WHERE key = 'x'").fetchone()[0] == 0
    finally:
        db.close()


def test_an_index_built_without_a_log_starts_no_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``artlens index`` builds a new index in a side file without WAL: nothing to copy."""
    monkeypatch.setattr(scan, "EVENT_FLOOD", 10)
    root = tmp_path / "root"
    make_runs(root, runs=3, files=40)
    db = open_new(tmp_path / "index.db")
    assert db is not None
    report = Indexer(db, root).scan()
    assert not index_db._checkpoints
    publish(db, tmp_path / "index.db")
    published = open_db(tmp_path / "index.db", readonly=True)
    try:
        assert published.execute("SELECT count(*) FROM artifacts").fetchone()[0] == report.added
    finally:
        published.close()


def test_a_copy_whose_index_is_gone_ends_quietly_and_makes_no_file(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "index.db"
    index_db._checkpoint(str(missing))
    assert not missing.exists() and not missing.parent.exists()
