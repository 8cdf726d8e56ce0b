"""The first scan of a root never indexed, in pieces that show up as they are committed.

A root of 200k files takes seconds to index whole; its first runs need not wait for that.
``first_scan`` scans a few of the root's folders one by one (each its own transaction,
runs detected and summarised), calling ``on_commit`` after each so a reader in the same
process shows them at once.  Then ``fill_in`` walks the whole root piece by piece and
commits the pieces walked in chunks as it goes (runs appear as their folders are reached),
and reconciles the whole root from the walk it holds, as the ordinary full scan would:
whatever the pieces and chunks wrote, the index ends as ``artlens index`` makes it.

Subtree scans stop after ``budget`` seconds: each reads the index's listing outside its
subtree for run detection, a cost that grows with what they already wrote.  A chunk costs
what it walked instead: it detects runs in the listing the walk holds of its own pieces
and of the folders above them, keeps the runs found elsewhere, and counts again only the
runs its rows touched (``_ChunkRuns``).  Detection over the whole root at the end, as
the full scan's, decides which runs exist and who owns each row.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from store import paths
from store.gcpause import collector_paused
from store.index import write
from store.index.db import write_transaction
from store.runs import Listing, PackedListing, RunSync, totals_of
from store.scan import IGNORED_DIR_NAMES, Indexer, ProgressFn, ScanReport, _Walk

if TYPE_CHECKING:
    from store.frameworks import RunSpec


class ScanStopped(BaseException):
    """The first scan was asked to stop (the app is quitting): raised at a safe point, between
    pieces or during the full scan's walk, so nothing half-written is left (each piece is
    its own transaction; the walk writes nothing).  A BaseException, so that the handlers
    that record a scan's errors and retry let it through."""


PIECE_BUDGET = 1.0
"""Seconds spent on pieces before the full scan takes over."""
STOP_CHECK_OPS = 1_000
"""SQLite steps between two questions to ``should_stop`` while the full scan writes."""
MIN_PIECES = 16
"""Descend until a level holds this many folders (or ``MAX_DEPTH`` is reached)."""
MAX_DEPTH = 4
MAX_LISTED = 100_000
"""Folders listed per level at most while choosing pieces (a bound on a hostile tree)."""
CHUNK_SECONDS = 0.5
CHUNK_SHARE = 0.3
"""``fill_in`` commits what it walked once it walked ``CHUNK_SECONDS``, and at least this
share of the time since it started, since its last commit: each commit makes an explorer
in the same process read the runs the chunk covered (its 'scan' event names its pieces)
and the index's totals again, a cost that grows with them, so commits space out as the
scan goes on (a 10 s scan commits about 9 times)."""


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
    budget: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Scan pieces of the root one by one for ``budget`` seconds (``PIECE_BUDGET`` unless
    given; the first one always); returns how many.  What they write is provisional: the
    full scan that must follow corrects it (a piece's parent folders are not in the index
    until then).
    ``should_stop()`` is asked before each piece; True raises ``ScanStopped``."""
    if budget is None:
        budget = PIECE_BUDGET
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


def fill_in(
    indexer: Indexer,
    *,
    on_commit: Callable[[], None] | None = None,
    progress: ProgressFn | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ScanReport:
    """Index the whole root (see the module); returns what the chunks changed in all.

    ``progress(files, about)`` follows the walk, ``about`` the files expected in all (from
    the share of the pieces walked, above ``files`` until the walk ends, 0 before the
    first piece); ``on_commit`` follows each chunk.  Summaries are left pending, as the
    full scan leaves them (``Indexer.fill_summaries``)."""
    found = pieces(indexer.root_b)
    if not found:
        return indexer.scan(progress=progress, defer_summaries=True)
    started = time.perf_counter()
    depth = found[0].count(b"/") + 1
    report = ScanReport(root=paths.display(indexer.root_b))
    indexer._summaries = False
    try:
        with collector_paused():
            _fill_in(indexer, depth, report, on_commit, progress, clock)
    finally:
        indexer._summaries = True
        if isinstance(indexer.runs, _ChunkRuns):  # stopped: the runs as committed
            indexer.runs = RunSync(indexer.db, indexer.root, indexer.root_id, clock=indexer.clock)
    report.seconds = time.perf_counter() - started
    return report


class _ChunkRuns(RunSync):
    """The runs of a root while ``fill_in`` commits it chunk by chunk, at a cost that does
    not grow with what was committed before: a chunk detects runs in what it walked and
    in the folders above the pieces (its ``in_chunk`` says where that is), the runs found
    elsewhere before are kept, and only the runs its rows touched are counted again.
    Detection over the whole root at the end decides (``_settle_runs``)."""

    def __init__(self, indexer: Indexer, in_chunk: Callable[[bytes], bool]) -> None:
        super().__init__(indexer.db, indexer.root, indexer.root_id, clock=indexer.clock)
        self._set_specs(self._specs_from_index())
        self.in_chunk = in_chunk

    def _detect(self, listing: Listing | PackedListing) -> list[RunSpec]:
        kept = [spec for key, spec in self._specs.items() if not self.in_chunk(key)]
        return kept + super()._detect(listing)

    def _totals(
        self, conn: sqlite3.Connection, dirty: set[int]
    ) -> dict[int, tuple[int, int, float, float]]:
        return totals_of(conn, dirty)


def _fill_in(
    indexer: Indexer,
    depth: int,
    report: ScanReport,
    on_commit: Callable[[], None] | None,
    progress: ProgressFn | None,
    clock: Callable[[], float],
) -> None:
    # the folders above the pieces, listed whole, and the pieces' own folders named
    whole = indexer._walk(b"", report, None, descend=lambda child: child.count(b"/") + 1 < depth)
    chosen = sorted(k for k in whole.dirs if k and k.count(b"/") + 1 == depth)
    written = _written_pieces(indexer, depth)
    above_listing = whole.listing()
    top = list(whole.slices)
    chunk = _Walk()
    chunk.merge(whole)
    held: list[bytes] = []
    digests: dict[bytes, int] = {}

    def in_chunk(key: bytes) -> bool:
        """A run folder the current chunk detects again: above the pieces, or in one."""
        parts = key.split(b"/")
        return not key or len(parts) < depth or b"/".join(parts[:depth]) in scope

    scope: set[bytes] = set()
    indexer.runs = _ChunkRuns(indexer, in_chunk)
    runs, _ = _runs_of(indexer)
    moved = False
    """True once a chunk may have left rows of an earlier one under the wrong run: it
    found a run above the pieces or a run with extra folders, or dropped a run."""
    began = last = clock()
    above = whole.count()
    walked = 0

    def about(files: int) -> int:
        """The files expected in all, from the share of the pieces walked (the pieces of a
        root are alike more often than not); above ``files`` until the walk ends."""
        if not walked:
            return 0
        return max(above + (whole.count() - above) * len(chosen) // walked, files + 1)

    def commit() -> None:
        nonlocal chunk, held, top, last, runs, moved
        part = ScanReport(root=report.root)
        existing: set[tuple[object, ...]] = set()
        existing_dirs: dict[bytes, tuple[int, int | None]] = {}
        for folder in top:
            existing |= indexer._existing_artifacts(folder, shallow=True)
            existing_dirs.update(indexer._existing_dirs(folder, shallow=True))
        for piece in held:
            if piece in written:
                existing |= indexer._existing_artifacts(piece)
                existing_dirs.update(indexer._existing_dirs(piece))
        found = chunk.digests()
        digests.update(found)
        scope.clear()
        scope.update(held)
        listing = {**above_listing, **chunk.listing()}
        indexer._reconcile(
            chunk,
            chunk.entries_of(chunk.slices),
            existing,
            existing_dirs,
            found,
            part,
            listing=lambda: listing,
            # the first chunk holds the folders above the pieces too: the whole root
            event_path=tuple(held) if held and not top else b"",
            full=False,
            unique=True,
        )
        for name in ("added", "changed", "removed", "runs_changed"):
            setattr(report, name, getattr(report, name) + getattr(part, name))
        now_runs, extras = _runs_of(indexer)
        moved = moved or extras or bool(runs - now_runs)
        moved = moved or any(not k or k.count(b"/") + 1 < depth for k in now_runs - runs)
        runs = now_runs
        chunk, held, top, last = _Walk(), [], [], clock()
        if on_commit is not None and (part.added or part.changed or part.removed):
            on_commit()

    for piece in chosen:
        base = whole.count()
        if progress is not None:

            def inner(files: int, _total: int, base: int = base) -> None:
                progress(base + files, about(base + files))

        sub = indexer._walk(piece, report, inner if progress is not None else None)
        whole.merge(sub)
        chunk.merge(sub)
        held.append(piece)
        walked += 1
        if progress is not None and walked < len(chosen):
            progress(whole.count(), about(whole.count()))
        now = clock()
        if now - last >= max(CHUNK_SECONDS, CHUNK_SHARE * (now - began)):
            commit()
    if held or top:
        commit()
    indexer.runs = RunSync(indexer.db, indexer.root, indexer.root_id, clock=indexer.clock)
    _settle_runs(indexer, whole.listing(), moved)
    final = ScanReport(root=report.root)
    indexer._scan_walked(b"", whole, final, digests)
    report.files, report.dirs, report.runs = whole.count(), len(whole.dirs), final.runs
    for name in ("added", "changed", "removed", "runs_changed"):
        setattr(report, name, getattr(report, name) + getattr(final, name))


def _settle_runs(indexer: Indexer, listing: Listing, moved: bool) -> None:
    """Detect the runs over the whole root, as a full scan does, and write what differs
    from what the chunks found: new runs, runs gone, their rows moved; with ``moved``,
    every row is pointed at the run that owns it now (the chunks' runs changed under rows
    they had written)."""
    runs = indexer.runs
    runs.prepare(listing, structural=True)
    with runs.in_step(), write_transaction(indexer.db) as conn:
        now = indexer.clock()
        runs.upsert(conn, now)
        runs.reassign(conn)
        if moved:
            updates: list[tuple[int | None, int]] = []
            dirty: set[int | None] = set()
            for art_id, key, run_id in conn.execute(
                "SELECT id, path, run_id FROM artifacts WHERE root_id = ?", [indexer.root_id]
            ).fetchall():
                want = runs.run_for(bytes(key))
                if want != run_id:
                    updates.append((want, art_id))
                    dirty.update((want, run_id))
            write.assign_runs(conn, updates)
            runs.mark_dirty(dirty)
        if runs.has_dirty():
            runs.refresh(conn, now, summaries=False)


def _written_pieces(indexer: Indexer, depth: int) -> set[bytes]:
    """The folders at the pieces' depth that the index holds folders of already (a subtree
    scan's, or an earlier first scan's that stopped): a chunk compares only these with the
    index, the others are new."""
    found: set[bytes] = set()
    for (path,) in indexer.db.conn.execute(
        "SELECT path FROM dirs WHERE root_id = ?", [indexer.root_id]
    ):
        parts = bytes(path).split(b"/")
        if path and len(parts) >= depth:
            found.add(b"/".join(parts[:depth]))
    for (parent,) in indexer.db.conn.execute(
        "SELECT DISTINCT parent FROM artifacts WHERE root_id = ?", [indexer.root_id]
    ):
        parts = bytes(parent).split(b"/")
        if parent and len(parts) >= depth:
            found.add(b"/".join(parts[:depth]))
    return found


def _runs_of(indexer: Indexer) -> tuple[set[bytes], bool]:
    """The root's run folders in the index, and whether any run has extra folders."""
    keys: set[bytes] = set()
    extras = False
    for path, extra in indexer.db.conn.execute(
        "SELECT path, json_array_length(meta, '$.extra_paths') FROM runs WHERE root_id = ?",
        [indexer.root_id],
    ):
        keys.add(bytes(path))
        extras = extras or bool(extra)
    return keys, extras


def first_scan(
    indexer: Indexer,
    *,
    on_commit: Callable[[], None] | None = None,
    progress: ProgressFn | None = None,
    budget: float = PIECE_BUDGET,
    clock: Callable[[], float] = time.monotonic,
    should_stop: Callable[[], bool] | None = None,
) -> ScanReport:
    """Index a fresh root piece by piece, then whole (see the module); returns what the
    whole scan changed.  ``progress(files, about)`` follows its walk (``fill_in``), and
    ``progress(files, files)`` says its files are committed (summaries come next).

    ``should_stop()`` is asked between pieces, as the walk goes and while a chunk
    writes; True raises ``ScanStopped`` with the root still fresh (its next open scans it
    again; what the chunks committed before is compared, not written twice).  Once the
    whole root is committed, the summaries are read anyway: the root is no longer fresh,
    and no later scan would read those it left pending."""
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
        report = fill_in(indexer, on_commit=on_commit, progress=walked, clock=clock)
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
