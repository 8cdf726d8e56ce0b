"""The first scan of a root never indexed, in pieces that show up as they are committed.

A root of 200k files takes seconds to index whole; its first runs need not wait for that.
``first_scan`` scans a few of the root's folders one by one (each its own transaction,
runs detected and summarised), calling ``on_commit`` after each so a reader in the same
process shows them at once, then reconciles the whole root with the ordinary full scan,
which is the truth: whatever the pieces wrote, the index ends as ``artlens index`` makes it.

Pieces stop after ``budget`` seconds: each subtree scan reads the index's listing outside
its subtree for run detection, a cost that grows with what the pieces already wrote.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Callable

from store.scan import IGNORED_DIR_NAMES, Indexer, ProgressFn, ScanReport


class ScanStopped(BaseException):
    """The first scan was asked to stop (the app is quitting): raised at a safe point, between
    pieces or during the full scan's walk, so nothing half-written is left (each piece is
    its own transaction; the walk writes nothing).  A BaseException, so that the handlers
    that record a scan's errors and retry let it through."""


PIECE_BUDGET = 1.0
"""Seconds spent on pieces before the full scan takes over."""
STOP_CHECK_OPS = 10_000
"""SQLite steps between two questions to ``should_stop`` while the full scan writes."""
MIN_PIECES = 16
"""Descend until a level holds this many folders (or ``MAX_DEPTH`` is reached)."""
MAX_DEPTH = 4
MAX_LISTED = 100_000
"""Folders listed per level at most while choosing pieces (a bound on a hostile tree)."""


def is_fresh(indexer: Indexer) -> bool:
    """True while the root has never been scanned whole."""
    row = indexer.db.conn.execute(
        "SELECT last_full_scan FROM roots WHERE id = ?", [indexer.root_id]
    ).fetchone()
    return row is None or row[0] is None


def pieces(
    root_b: bytes, *, min_pieces: int = MIN_PIECES, max_depth: int = MAX_DEPTH
) -> list[bytes]:
    """Relative keys of the folders at the first level (breadth first) that holds at least
    ``min_pieces`` folders, in name order; symlinks and ignored names are not followed."""
    level: list[bytes] = [b""]
    for _ in range(max_depth):
        below: list[bytes] = []
        for rel in level:
            try:
                with os.scandir(root_b + b"/" + rel if rel else root_b) as it:
                    for entry in it:
                        if entry.name in IGNORED_DIR_NAMES:
                            continue
                        try:
                            mode = entry.stat(follow_symlinks=False).st_mode
                        except OSError:
                            continue
                        if stat.S_ISDIR(mode):
                            below.append(rel + b"/" + entry.name if rel else entry.name)
                        if len(below) >= MAX_LISTED:
                            break
            except OSError:
                continue
            if len(below) >= MAX_LISTED:
                break
        if not below:
            return [] if level == [b""] else sorted(level)
        level = below
        if len(level) >= min_pieces:
            break
    return sorted(level)


def scan_pieces(
    indexer: Indexer,
    *,
    on_commit: Callable[[], None] | None = None,
    budget: float = PIECE_BUDGET,
    clock: Callable[[], float] = time.monotonic,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Scan pieces of the root one by one for ``budget`` seconds (the first one always);
    returns how many.  What they write is provisional: the full scan that must follow
    corrects it (a piece's parent folders are not in the index until then).
    ``should_stop()`` is asked before each piece; True raises ``ScanStopped``."""
    if budget <= 0:
        return 0
    started = clock()
    done = 0
    for piece in pieces(indexer.root_b):
        if should_stop is not None and should_stop():
            raise ScanStopped
        if done and clock() - started >= budget:
            break
        report = indexer.scan(piece)
        done += 1
        if on_commit is not None and (report.added or report.runs_changed):
            on_commit()
    return done


def first_scan(
    indexer: Indexer,
    *,
    on_commit: Callable[[], None] | None = None,
    progress: ProgressFn | None = None,
    budget: float = PIECE_BUDGET,
    clock: Callable[[], float] = time.monotonic,
    should_stop: Callable[[], bool] | None = None,
) -> ScanReport:
    """Index a fresh root piece by piece, then whole (see the module); returns the full
    scan's report.  ``progress(files, 0)`` follows the full scan's walk, and
    ``progress(files, files)`` says its files are committed (summaries come next).

    ``should_stop()`` is asked between pieces, as the full scan's walk goes and while it
    writes; True raises ``ScanStopped`` with the root still fresh (its next open scans it
    again).  Once the full
    scan committed, the summaries are read anyway: the root is no longer fresh, and no
    later scan would read those it left pending."""
    scan_pieces(indexer, on_commit=on_commit, budget=budget, clock=clock, should_stop=should_stop)
    walked = progress
    conn = indexer.db.conn
    if should_stop is not None:

        def walked(files: int, total: int) -> None:
            if should_stop():
                raise ScanStopped
            if progress is not None:
                progress(files, total)

        if should_stop():
            raise ScanStopped
        # while the rows are written: SQLite asks every STOP_CHECK_OPS steps, and a stop
        # aborts the statement; the transaction rolls back whole
        conn.set_progress_handler(lambda: 1 if should_stop() else 0, STOP_CHECK_OPS)
    try:
        report = indexer.scan(progress=walked, defer_summaries=True)
    except sqlite3.OperationalError:
        conn.set_progress_handler(None, 0)
        if should_stop is None or not should_stop():
            raise
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise ScanStopped from None
    finally:
        conn.set_progress_handler(None, 0)
    if on_commit is not None:
        on_commit()
    if progress is not None:  # every file is in; the runs' summaries are read next
        progress(report.files, report.files)
    indexer.fill_summaries()
    return report
