"""Read helpers the explorer needs beyond ``store.index.query``: paged folder listings, counts,
single artifacts, and a pool of read-only connections for worker threads.

Like ``query``, everything here only reads.  Workers borrow a connection from
``ReaderPool`` (SQLite connections must not be shared by two threads at once).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from store import paths
from store.index import query

if TYPE_CHECKING:
    import sqlite_utils

PAGE_SIZE = 500
"""Children listed per tree page; the rest wait behind a "… N more" node."""


class ReaderPool:
    """Read-only connections to one index, handed to one thread at a time."""

    def __init__(self, db_path: Path | str, *, size: int = 4) -> None:
        self.db_path = Path(db_path)
        self._idle: queue.LifoQueue[sqlite_utils.Database] = queue.LifoQueue()
        self._all: list[sqlite_utils.Database] = []
        self._lock = threading.Lock()
        self._size = size
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[sqlite_utils.Database]:
        """A connection for the current thread; returned to the pool afterwards."""
        try:
            db = self._idle.get_nowait()
        except queue.Empty:
            # Imported here: sqlite-utils costs ~40 ms, which the explorer's first frame
            # should not pay (connections are only opened on worker threads).
            from store.index.db import open_db

            db = open_db(self.db_path, readonly=True)
            with self._lock:
                self._all.append(db)
        try:
            yield db
        finally:
            # End any read transaction so the writer can checkpoint the WAL.
            if db.conn.in_transaction:
                db.conn.rollback()
            with self._lock:
                keep = not self._closed and self._idle.qsize() < self._size
                if not keep:
                    self._all.remove(db)
            if keep:
                self._idle.put(db)
            else:
                db.conn.close()

    def close(self) -> None:
        """Close every idle connection; busy ones close when handed back."""
        with self._lock:
            self._closed = True
        while True:
            try:
                db = self._idle.get_nowait()
            except queue.Empty:
                break
            with self._lock:
                if db in self._all:
                    self._all.remove(db)
            db.conn.close()


@dataclass(frozen=True)
class ChildPage:
    """One page of a folder's children (folders first), and how many there are in all."""

    entries: tuple[query.FolderEntry, ...]
    offset: int
    total: int


def children_page(
    db: sqlite_utils.Database,
    root_id: int,
    folder: bytes,
    *,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> ChildPage:
    """Children ``offset .. offset+limit`` of ``folder``: folders (with totals), then files."""
    n_dirs = db.conn.execute(
        "SELECT count(*) FROM dirs WHERE root_id = ? AND parent = ? AND path != ?",
        [root_id, folder, folder],
    ).fetchone()[0]
    n_files = db.conn.execute(
        "SELECT count(*) FROM artifacts WHERE root_id = ? AND parent = ?", [root_id, folder]
    ).fetchone()[0]
    entries: list[query.FolderEntry] = []
    if offset < n_dirs:
        for key, mtime_ns in db.conn.execute(
            f"SELECT path, mtime_ns FROM dirs {query.BY_PARENT_DIRS} WHERE root_id = ?"
            " AND parent = ? AND path != ? ORDER BY path LIMIT ? OFFSET ?",
            [root_id, folder, folder, limit, offset],
        ):
            key = bytes(key)
            size, count = query.folder_total(db, root_id, key)
            name = paths.display(paths.name_of(key))
            entries.append(query.FolderEntry(key, name, True, size, count, (mtime_ns or 0) / 1e9))
    room = limit - len(entries)
    if room > 0:
        file_offset = max(0, offset - n_dirs)
        for row in db.conn.execute(
            f"SELECT {query._ART_COLUMNS} FROM artifacts {query.BY_PARENT} WHERE root_id = ?"
            " AND parent = ? ORDER BY path LIMIT ? OFFSET ?",
            [root_id, folder, room, file_offset],
        ):
            art = query._artifact_from(row)
            entries.append(
                query.FolderEntry(art.path, art.name, False, art.size, 1, art.mtime, art.kind, art)
            )
    return ChildPage(tuple(entries), offset, int(n_dirs) + int(n_files))


def artifact_at(db: sqlite_utils.Database, root_id: int, key: bytes) -> query.ArtifactRow | None:
    """The indexed file at ``key`` in a root, or None."""
    row = db.conn.execute(
        f"SELECT {query._ART_COLUMNS} FROM artifacts WHERE root_id = ? AND path = ?",
        [root_id, key],
    ).fetchone()
    return query._artifact_from(row) if row else None


@dataclass(frozen=True)
class IndexCounts:
    """Totals for the status line."""

    runs: int
    artifacts: int
    bytes: int
    last_event: int


def counts(db: sqlite_utils.Database) -> IndexCounts:
    runs = db.conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    n, size = db.conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM artifacts").fetchone()
    return IndexCounts(int(runs), int(n), int(size), last_event(db))


def last_event(db: sqlite_utils.Database) -> int:
    """The newest change feed event's id: one index lookup, where ``counts`` passes over
    every artifact (0.1 s at a million)."""
    return int(db.conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])


def largest_run(db: sqlite_utils.Database) -> int | None:
    """The id of the run with the most artifacts (benchmarks open it)."""
    row = db.conn.execute("SELECT id FROM runs ORDER BY n_artifacts DESC, id LIMIT 1").fetchone()
    return int(row[0]) if row else None
