"""What the explorer and the watcher ask of one folder reads that folder, never every row
of the root.  With no statistics (no ANALYZE), SQLite answered a folder's page in name
order, and ``(range) OR path = x``, by walking the root's whole key: 260 ms a page on an
index of 1M files.  Each statement run is checked by ``EXPLAIN QUERY PLAN``."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
import sqlite_utils

from store import paths
from store.index import query
from store.index.db import open_db
from store.index.views import children_page
from store.scan import Indexer

WHOLE_ROOT = re.compile(r"^SCAN (artifacts|dirs)\b|^SEARCH (artifacts|dirs) .*\(root_id=\?\)$")
"""A plan step that reads every row of a root (or of the table)."""


@pytest.fixture
def indexed(tmp_path: Path) -> Iterator[tuple[sqlite_utils.Database, Indexer, Path]]:
    root = tmp_path / "root"
    for run in range(4):
        for sub in ("checkpoints", "logs", "logs/deep"):
            folder = root / "exp" / f"run{run}" / sub
            folder.mkdir(parents=True)
            for index in range(5):
                (folder / f"f{index}.txt").write_text("x")
        (root / "exp" / f"run{run}" / "hparams.yaml").write_text("lr: 0.1\n")
    (root / "exp" / "run0-b").mkdir()
    (root / "exp" / "run0-b" / "a.txt").write_text("sibling named like run0")
    other = tmp_path / "other"
    (other / "x").mkdir(parents=True)
    (other / "x" / "y.txt").write_text("y")
    db = open_db(tmp_path / "index.db")
    Indexer(db, other).scan()
    indexer = Indexer(db, root)
    indexer.scan()
    yield db, indexer, root
    db.conn.close()


def _whole_root_reads(db: sqlite_utils.Database, action: Callable[[], object]) -> list[str]:
    """Each statement ``action`` ran, with its plan step that reads a whole root."""
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        action()
    finally:
        db.conn.set_trace_callback(None)
    found = []
    for sql in statements:
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        for row in db.conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall():
            if WHOLE_ROOT.search(row[3]):
                found.append(f"{row[3]}: {sql}")
    return found


def test_a_folders_page_is_read_by_its_folder(
    indexed: tuple[sqlite_utils.Database, Indexer, Path],
) -> None:
    db, indexer, _root = indexed
    root_id = indexer.root_id
    page = children_page(db, root_id, b"exp/run1")
    assert [entry.name for entry in page.entries] == ["checkpoints", "logs", "hparams.yaml"]
    assert page.entries[1].count == 10  # logs/ and logs/deep/
    for folder in (b"exp/run1", b"exp/run1/logs", b"exp"):
        assert _whole_root_reads(db, partial(children_page, db, root_id, folder)) == []
        assert _whole_root_reads(db, partial(query.children, db, root_id, folder)) == []


def test_a_folders_rescan_and_a_new_run_read_that_folder(
    indexed: tuple[sqlite_utils.Database, Indexer, Path],
) -> None:
    db, indexer, root = indexed

    def totals() -> dict[bytes, tuple[int, int]]:
        rows = db.conn.execute("SELECT path, n_artifacts, size_bytes FROM runs")
        return {bytes(p): (n, size) for p, n, size in rows}

    before = totals()
    (root / "exp" / "run2" / "logs" / "new.txt").write_text("four")
    (root / "exp" / "run3" / "logs" / "f1.txt").unlink()
    changed = [b"exp/run2/logs", b"exp/run3/logs"]
    assert _whole_root_reads(db, lambda: indexer.scan_folders(changed)) == []
    after = totals()
    assert after[b"exp/run2"] == (before[b"exp/run2"][0] + 1, before[b"exp/run2"][1] + 4)
    assert after[b"exp/run3"] == (before[b"exp/run3"][0] - 1, before[b"exp/run3"][1] - 1)
    assert {k: v for k, v in after.items() if k not in (b"exp/run2", b"exp/run3")} == {
        k: v for k, v in before.items() if k not in (b"exp/run2", b"exp/run3")
    }
    new_run = root / "exp" / "run2" / "logs" / "lightning_logs" / "version_0"
    new_run.mkdir(parents=True)
    (new_run / "hparams.yaml").write_text("lr: 1\n")
    (new_run / "metrics.csv").write_text("step,loss\n1,0.5\n")
    reads = _whole_root_reads(db, lambda: indexer.scan_folders([b"exp/run2/logs"]))
    # a new folder: runs are detected again over the root's listing (folders and names,
    # read once each), and nothing else reads the whole root
    assert sorted(read.split(": ", 1)[1].split(" WHERE")[0] for read in reads) == [
        "SELECT path, parent FROM artifacts",
        "SELECT path, parent FROM dirs",
    ]
    paths = {bytes(p) for (p,) in db.conn.execute("SELECT path FROM artifacts")}
    assert b"exp/run2/logs/new.txt" in paths
    assert b"exp/run2/logs/lightning_logs/version_0/metrics.csv" in paths


def test_a_name_of_0xff_bytes_at_the_root_is_below_the_root(tmp_path: Path) -> None:
    """``paths.prefix_range(b"")`` bounded the root by nine 0xff bytes: a file whose name
    began with more was left out of the root's total and of every read of "all below the
    root" (the feed's resync, a mirror's cleanup, the retention drill)."""
    root = tmp_path / "root"
    root.mkdir()
    names = [b"\xff" * 12 + b".ckpt", b"\xff" * 255, b"plain.txt"]
    for name in names:
        with open(os.path.join(os.fsencode(root), name), "wb") as out:
            out.write(b"x" * 10)
    db = open_db(tmp_path / "index.db")
    try:
        indexer = Indexer(db, root)
        indexer.scan()
        assert query.folder_total(db, indexer.root_id, b"") == (30, 3)
        lo, hi = paths.prefix_range(b"")
        assert all(lo <= name < hi for name in names)
        assert hi > b"\xff" * 255 + b"/" + b"\xff" * 255  # a folder of such names
    finally:
        db.conn.close()
