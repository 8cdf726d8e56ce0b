"""Keeping the ``runs`` table in step with the disk.

Detection (which folders are runs, of which framework) is pure and lives in
``store.frameworks``; this module maps it onto the index: run rows, which run each
artifact belongs to (the longest run path above it), and the run summaries (params,
metrics, status, size) re-read only for runs whose files changed.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import marshal
import os
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple
from pathlib import Path
from typing import TYPE_CHECKING

import sqlite_utils

from store import forked, integrity, paths
from store.frameworks import registry
from store.frameworks.model import UNREAD_PARTS
from store.index import write
from store.index.events import EventKind
from store.index.query import UNREAD_KEY as UNREAD_KEY
from store.index.query import UnreadableIndex, unreadable_places
from store.safeparse import load_json
from store.safetext import visible

if TYPE_CHECKING:
    from store.frameworks import RunInfo, RunSpec

_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()

LIVE_SECONDS = 120.0
"""A run written to within this window counts as live unless its framework says it ended."""

READ_AHEAD_RUNS = 20_000
"""At most this many runs are read ahead (``read_ahead``): their summaries wait in memory."""

BATCH_RUNS = 64
"""Above this many runs read at once, which of them hold references is asked in one query
rather than one probe per run."""

FEW_DIRTY_RUNS = 256
"""Up to this many runs changed in a write, their totals are summed run by run; above,
the whole root is summed in one pass."""

Listing = Mapping[bytes, tuple[list[bytes], list[bytes]]]
PackedListing = Mapping[bytes, tuple[bytes, bytes]]
"""A ``Listing`` with each folder's names joined by NUL (no name holds one): what a forked
reader is sent, one ``bytes`` per folder where a list costs ``marshal`` an object per name."""

Totals = tuple[int, int, float, float]
"""A run's (size, file count, last write, first write) as its rows sum up, in seconds."""

_markers: tuple[frozenset[str], re.Pattern[bytes]] | None = None
_counted: dict[str, tuple[bytes, ...]] | None = None
_counted_folders: list[Callable[[str], bool]] | None = None
_config_markers: frozenset[bytes] | None = None
_busy_markers: frozenset[bytes] | None = None


def _forget_markers() -> None:
    global _markers, _counted, _counted_folders, _config_markers, _busy_markers
    _markers = None
    _config_markers = _busy_markers = None
    _counted = None
    _counted_folders = None


registry.on_change(_forget_markers)


def is_marker(name: bytes) -> bool:
    """True for file names whose arrival or removal can change which runs exist: the
    ``markers`` and ``marker_patterns`` of every registered framework."""
    global _markers
    if _markers is None:
        names = frozenset(n for e in registry.entries() for n in e.markers)
        _markers = (names, registry.marker_pattern())
    names, pattern = _markers
    return os.fsdecode(name) in names or bool(pattern.match(name))


def is_config_marker(name: bytes) -> bool:
    """True for file names whose content decides which runs exist: a change to one, not
    only its arrival or removal, must re-detect the runs (``config_markers``)."""
    global _config_markers
    if _config_markers is None:
        _config_markers = frozenset(
            os.fsencode(n) for e in registry.entries() for n in e.config_markers
        )
    return name in _config_markers


def is_busy_marker(name: bytes) -> bool:
    """``is_config_marker`` for files rewritten all the time (``busy_markers``)."""
    global _busy_markers
    if _busy_markers is None:
        found = (n for e in registry.entries() for n in e.busy_markers)
        _busy_markers = frozenset(map(os.fsencode, found))
    return name in _busy_markers


def _holds_a_run(ordered: list[bytes], prefix: bytes) -> bool:
    """Whether a run path in ``ordered`` (sorted) starts with ``prefix``."""
    at = bisect.bisect_left(ordered, prefix)
    return at < len(ordered) and ordered[at].startswith(prefix)


def _counted_suffixes() -> dict[str, tuple[bytes, ...]]:
    """framework name -> the name endings its detection counts (``counted_suffixes``)."""
    global _counted
    if _counted is None:
        _counted = {
            e.name: tuple(os.fsencode(s.lower()) for s in e.counted_suffixes)
            for e in registry.entries()
            if e.counted_suffixes
        }
    return _counted


def _may_hold_runs() -> list[Callable[[str], bool]]:
    """What folder names the frameworks that count files allow in their runs' paths
    (``counted_folder``); empty when one allows any."""
    global _counted_folders
    if _counted_folders is None:
        found = [e.counted_folder for e in registry.entries() if e.counted_suffixes]
        _counted_folders = [f for f in found if f is not None] if None not in found else []
    return _counted_folders


def _run_prefix(folder: bytes) -> bytes:
    """The longest part of ``folder`` (a key) a counted file's arrival below it can make a
    run of: up to its first component no framework allows in a run's path (a hidden
    folder, a venv, ``node_modules``), where new files are many and make no run."""
    allowed = _may_hold_runs()
    if not allowed:
        return folder
    kept: list[bytes] = []
    for part in folder.split(b"/"):
        name = os.fsdecode(part)
        if not any(ok(name) for ok in allowed):
            break
        kept.append(part)
    return b"/".join(kept)


def status_of(framework_status: str, last_write: float | None, now: float) -> str:
    """live, finished, failed or unknown, from the framework's word and recent writes."""
    recent = last_write is not None and now - last_write < LIVE_SECONDS
    if framework_status == "finished":
        return "finished"
    if framework_status in ("failed", "killed"):
        return "failed"
    return "live" if recent else "unknown"


def totals_of(conn: sqlite3.Connection, run_ids: Iterable[int]) -> dict[int, Totals]:
    """run id -> (size, files, last write, first write) of each run that has rows, each
    summed over its own rows (the run_id index)."""
    counted: dict[int, Totals] = {}
    for run_id in run_ids:
        size, count, last_ns, first_ns = conn.execute(
            "SELECT sum(size), count(*), max(mtime_ns), min(mtime_ns) FROM artifacts"
            " WHERE run_id = ?",
            [run_id],
        ).fetchone()
        if count:
            counted[run_id] = (size or 0, count, (last_ns or 0) / 1e9, (first_ns or 0) / 1e9)
    return counted


class RunSync:
    """The runs of one root, as the writer keeps them."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        root: Path,
        root_id: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.root = root
        self.root_id = root_id
        self.clock = clock
        self._specs: dict[bytes, RunSpec] = {}
        self._owner: dict[bytes, bytes] = {}
        """folder key (run path or extra path) -> run path key"""
        self._ids: dict[bytes, int] = {}
        self._folder_cache: dict[bytes, bytes | None] = {}
        self._dirty: set[int] = set()
        self._new: set[bytes] = set()
        self._removed: list[tuple[int, bytes]] = []
        self._specs_are_the_index = False
        """The specs were read back from the runs table: its rows need no update."""
        self._ahead: tuple[threading.Thread | None, dict[bytes, tuple[RunSpec, RunInfo]]] | None
        self._ahead = None
        self._helper: tuple[forked.Helper, dict[bytes, RunSpec]] | None = None
        """A forked child reading the runs' files (``read_ahead_forked``)."""
        self._waiting: forked.Helper | None = None
        """A forked reader waiting for its runs (``fork_reader``)."""
        self._detecting: forked.Helper | None = None
        """That reader once given a listing to detect runs in (``detect_ahead``)."""
        self._reader_reads = True
        """That reader reads the runs it detected (else it only detects them)."""
        self._kept_totals: tuple[tuple[int, int], dict[int, Totals]] | None = None
        """Totals a cold load counted while writing the rows, and the connection's
        ``change_token`` once they were committed: they stand in for the ``GROUP BY``
        while that token holds (nothing has written since)."""
        self._load_ids()

    def _load_ids(self) -> None:
        self._ids_stale = False
        self._ids = {
            bytes(path): int(run_id)
            for run_id, path in self.db.conn.execute(
                "SELECT id, path FROM runs WHERE root_id = ?", [self.root_id]
            )
        }

    def _ids_again_if_stale(self) -> None:
        if self._ids_stale:
            self._load_ids()

    @contextlib.contextmanager
    def in_step(self) -> Iterator[None]:
        """Around a write transaction that writes runs: if it rolls back (a full disk, an
        I/O error), what this object holds of the runs table is read back from the table.
        ``upsert`` notes the ids of the runs it inserts and forgets those it deletes, and
        ``refresh`` forgets which runs were dirty: kept past a rollback, a deleted run would
        stay in the table for good, a new one would own files under an id no row has, and
        the next write that re-detects either fails on the runs' unique path, every time."""
        dirty = set(self._dirty)
        try:
            yield
        except BaseException:
            self._dirty |= dirty
            self._new = set()
            self._removed = []
            self._kept_totals = None
            self._folder_cache = {}
            self._ids_stale = True
            with contextlib.suppress(sqlite3.Error):
                self._load_ids()
            raise

    # -- detection -----------------------------------------------------------------------

    def prepare(self, listing: Listing | Callable[[], Listing], *, structural: bool) -> None:
        """Decide the set of runs: re-detect on structural change, else keep the index's.
        Runs a forked reader was asked to detect (``detect_ahead``) are taken from it."""
        self._ids_again_if_stale()
        if structural or not self._ids:
            detected = self._take_detected()
            if detected is None:
                listing_now = listing() if callable(listing) else listing
                detected = self._detect(listing_now)
            self._set_specs(detected)
            self._specs_are_the_index = False
            if self._detecting is not None:
                if self._reader_reads:  # it reads these very runs next
                    self._helper = (self._detecting, dict(self._ahead_specs()))
                else:
                    self._detecting.abandon()
                self._detecting = None
        else:
            self._set_specs(self._specs_from_index())
            self._specs_are_the_index = True

    def counted_files_moved(
        self, added: Iterable[bytes], removed: Iterable[tuple[bytes, int | None]]
    ) -> bool:
        """Whether files a framework's detection counts, though they are no markers
        (``counted_suffixes``), arrived outside every run of the index (``added`` keys) or
        left one of that framework's runs (``removed`` keys with their old run ids): either
        can make or unmake a run (a first model.pt in a folder makes it a generic run), so
        the runs must be detected again."""
        counted = _counted_suffixes()
        if not counted:
            return False
        endings = tuple({s for suffixes in counted.values() for s in suffixes})
        arrived = [k for k in added if paths.name_of(k).lower().endswith(endings)]
        left = [
            (run_id, paths.name_of(k).lower())
            for k, run_id in removed
            if run_id is not None and paths.name_of(k).lower().endswith(endings)
        ]
        if not arrived and not left:
            return False
        held = {
            bytes(path): (int(run_id), str(framework))
            for run_id, path, framework in self.db.conn.execute(
                "SELECT id, path, framework FROM runs WHERE root_id = ?", [self.root_id]
            )
        }
        framework_of = {run_id: framework for run_id, framework in held.values()}
        for run_id, name in left:
            if name.endswith(counted.get(framework_of.get(run_id, ""), ())):
                return True
        ordered = sorted(held)
        for key in arrived:
            # a run holds no other run: only a folder with no run in it, or one above it,
            # can become one (a status.json rewritten in a root of runs makes none)
            folder = paths.parent_key(key)
            if folder and not _holds_a_run(ordered, folder + b"/"):
                folder = _run_prefix(folder)
                if not folder:  # only the root could become a run: one with none in it
                    if not held:
                        return True
                    continue
                while folder not in held:
                    if not folder:
                        return True
                    folder = paths.parent_key(folder)
            elif not folder and not held:
                return True
        return False

    def _detect(self, listing: Listing | PackedListing) -> list[RunSpec]:
        from store.frameworks import DirListing, detect_runs

        # what os.fsdecode does on POSIX, a folder's names at once (no name holds a NUL)
        converted = {
            folder.decode(_FS_ENCODING, _FS_ERRORS): DirListing(
                _decoded_names(dirs), _decoded_names(files)
            )
            for folder, (dirs, files) in listing.items()
        }
        return detect_runs(self.root, converted)

    def _specs_from_index(self) -> list[RunSpec]:
        from store.frameworks import RunSpec

        specs = []
        for path, framework, name, experiment, meta in self.db.conn.execute(
            "SELECT path, framework, name, experiment, meta FROM runs WHERE root_id = ?",
            [self.root_id],
        ):
            info = _loads(meta)
            extra = info.get("extra_paths") or []
            specs.append(
                RunSpec(
                    path=os.fsdecode(bytes(path)),
                    framework=framework,
                    name=name,
                    experiment=experiment,
                    extra_paths=tuple(str(p) for p in extra) if isinstance(extra, list) else (),
                    run_key=_str_or_none(info.get("run_key")),
                )
            )
        return specs

    def _set_specs(self, specs: Iterable[RunSpec]) -> None:
        self._specs = {}
        self._owner = {}
        for spec in specs:
            key = paths.key(spec.path)
            self._specs[key] = spec
            self._owner[key] = key
            for extra in spec.extra_paths:
                self._owner.setdefault(paths.key(extra), key)
        self._folder_cache = {}

    def run_path_for(self, key: bytes) -> bytes | None:
        """The run path owning an artifact key (longest owning folder above it)."""
        owner = self._owner.get(key)
        if owner is not None:
            return owner
        return self._run_path_of_folder(paths.parent_key(key)) if key else None

    def _run_path_of_folder(self, folder: bytes) -> bytes | None:
        cache = self._folder_cache
        if folder in cache:
            return cache[folder]
        owner = self._owner.get(folder)
        if owner is None and folder:
            owner = self._run_path_of_folder(paths.parent_key(folder))
        cache[folder] = owner
        return owner

    def run_of_entry(self, key: bytes, parent: bytes) -> int | None:
        """``run_for`` when the caller already knows the parent folder (the hot path)."""
        owner = self._owner.get(key)
        if owner is None:
            owner = self._run_path_of_folder(parent)
        return None if owner is None else self._ids.get(owner)

    def run_of_folder(self, folder: bytes) -> int | None:
        """The run id owning the files of ``folder`` that own no run themselves."""
        owner = self._run_path_of_folder(folder)
        return None if owner is None else self._ids.get(owner)

    def owns(self, key: bytes) -> bool:
        """True when ``key`` is itself a run path or an extra path of one."""
        return key in self._owner

    def owned_paths(self) -> Mapping[bytes, bytes]:
        """Every run path and extra path (``owns`` as a mapping, for a test per file
        without a call)."""
        return self._owner

    def run_for(self, key: bytes) -> int | None:
        """The run id owning an artifact key, once ``upsert`` has assigned ids."""
        run_path = self.run_path_for(key)
        return None if run_path is None else self._ids.get(run_path)

    # -- writing -------------------------------------------------------------------------

    def upsert(self, conn: sqlite3.Connection, now: float) -> None:
        """Create rows for new runs and drop rows of runs that no longer exist."""
        self._ids_again_if_stale()
        existing = dict(self._ids)
        self._new = set()
        for key, spec in self._specs.items():
            meta = {"extra_paths": list(spec.extra_paths), "run_key": spec.run_key}
            if key in existing:
                if self._specs_are_the_index:
                    continue
                write.update_run_spec(
                    conn,
                    existing[key],
                    spec.framework,
                    spec.name,
                    spec.experiment,
                    json.dumps(meta),
                )
                continue
            run_id = write.insert_run(
                conn,
                self.root_id,
                key,
                spec.name,
                spec.framework,
                spec.experiment,
                json.dumps(meta),
                now,
            )
            self._ids[key] = run_id
            self._new.add(key)
            self._dirty.add(run_id)
        self._removed = [(rid, key) for key, rid in existing.items() if key not in self._specs]
        for rid, key in self._removed:
            write.delete_run(conn, rid)
            del self._ids[key]

    def reassign(self, conn: sqlite3.Connection) -> None:
        """Point artifacts at their run after the set of runs changed in ``upsert``.

        Only rows that can have moved are read: those below a new run's folders (they
        belonged to an outer run, or to none) and those a removed run left without one.
        """
        ranges: list[bytes] = list(self._new)
        # extra folders (MLflow logged models) can join an existing run: always recheck them
        for spec in self._specs.values():
            ranges.extend(paths.key(extra) for extra in spec.extra_paths)
        selects: list[tuple[str, list[object]]] = []
        for folder in ranges:
            selects.append(
                paths.at_and_below(
                    "SELECT id, path, run_id FROM artifacts", "root_id = ?", [self.root_id], folder
                )
            )
        if self._removed:
            selects.append(
                (
                    "SELECT id, path, run_id FROM artifacts WHERE root_id = ? AND run_id IS NULL",
                    [self.root_id],
                )
            )
        updates = []
        seen: set[int] = set()
        for sql, args in selects:
            for art_id, key, run_id in conn.execute(sql, args).fetchall():
                if art_id in seen:
                    continue
                seen.add(art_id)
                want = self.run_for(bytes(key))
                if want != run_id:
                    updates.append((want, art_id))
                    self._dirty.update(r for r in (want, run_id) if r is not None)
        write.assign_runs(conn, updates)

    def has_dirty(self) -> bool:
        return bool(self._dirty or self._new or self._removed)

    def mark_dirty(self, run_ids: Iterable[int | None]) -> None:
        self._dirty.update(r for r in run_ids if r is not None)

    def mark_dirty_around(self, keys: Iterable[bytes]) -> None:
        """Dirty the runs whose warnings name one of ``keys`` (places that became, or
        stopped being, unreadable): the run holding each, and every run below one."""
        ordered = sorted(self._ids)
        for key in keys:
            self.mark_dirty([self.run_for(key)])
            lo, hi = paths.prefix_range(key)
            below = ordered[bisect.bisect_left(ordered, lo) : bisect.bisect_left(ordered, hi)]
            self.mark_dirty(self._ids[path] for path in below)

    def refresh(
        self,
        conn: sqlite3.Connection,
        now: float,
        *,
        summaries: bool = True,
        totals: Mapping[int, Totals] | None = None,
        with_refs: set[int] | None = None,
    ) -> int:
        """Re-read the summaries of dirty runs and refresh the totals of runs whose rows
        changed (``_totals``).

        Without ``summaries`` the framework files are not read: dirty runs get their
        totals and are marked ``summary_pending`` in meta, for ``fill_pending`` to finish.
        ``totals``: every run's totals when the caller counted them while writing every
        row of the root (a cold load), in place of summing the rows again; ``with_refs``,
        the runs holding a link or a ``trainer_state.json`` (``integrity.runs_with_refs``)
        when the caller found them as it wrote every row.
        Returns how many runs changed (including added and removed ones).
        """
        self._ids_again_if_stale()
        changed = 0
        dirty = self._dirty & set(self._ids.values())
        by_id = {rid: key for key, rid in self._ids.items()}
        if totals is None:
            totals = self._counted_totals(conn, dirty)
        current = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT id, size_bytes, n_artifacts, last_write, status FROM runs"
                " WHERE root_id = ?",
                [self.root_id],
            )
        }
        events: list[write.EventRow] = []
        updates: list[list[object]] = []
        pending: list[list[object]] = []
        if with_refs is None and summaries and len(dirty) > BATCH_RUNS:
            with_refs = integrity.runs_with_refs(conn, self.root_id)
        unread = UnreadableIndex(
            (unreadable_places(conn, self.root_id) or {}).get(self.root_id, [])
        )
        for run_id in dirty:
            key = by_id[run_id]
            size, count, last_write, first_write = totals.get(run_id, (0, 0, None, None))
            if not summaries:
                pending.append(
                    [
                        first_write,
                        last_write,
                        status_of("unknown", last_write, now),
                        size,
                        count,
                        now,
                        run_id,
                    ]
                )
                kind = EventKind.RUN_ADDED if key in self._new else EventKind.RUN_CHANGED
                events.append((kind, self.root_id, run_id, key))
                changed += 1
                continue
            info = self._summary_of(key, self._specs[key])
            status = status_of(info.status, last_write, now)
            meta = dict(info.meta)
            meta["extra_paths"] = list(self._specs[key].extra_paths)
            meta["run_key"] = self._specs[key].run_key
            logged = logged_name(meta)
            if logged is None:
                meta.pop("name", None)
            else:
                meta["name"] = logged
            experiment = logged_experiment(meta)
            if experiment is None:
                meta.pop("experiment", None)
            else:
                meta["experiment"] = experiment
            integrity.annotate(
                meta,
                self.root,
                self._specs[key].path,
                conn,
                run_id,
                has_refs=None if with_refs is None else run_id in with_refs,
            )
            note_unreadable(meta, unread, key, self._specs[key].extra_paths)
            updates.append(
                [
                    logged or self._specs[key].name,
                    experiment or self._specs[key].experiment,
                    info.started if info.started is not None else first_write,
                    last_write,
                    status,
                    json.dumps(info.params, default=str),
                    json.dumps(
                        {name: vars(m) for name, m in info.metrics.items()},
                        default=str,
                    ),
                    json.dumps(meta, default=str),
                    size,
                    count,
                    now,
                    run_id,
                ]
            )
            kind = EventKind.RUN_ADDED if key in self._new else EventKind.RUN_CHANGED
            events.append((kind, self.root_id, run_id, key))
            changed += 1
        write.mark_summaries_pending(conn, pending)
        write.update_run_summaries(conn, updates)
        for run_id, (size, count, last_write, _first) in totals.items():
            if run_id in dirty or run_id not in current:
                continue
            old_size, old_count, old_last, _status = current[run_id]
            if (size, count) != (old_size, old_count) or (old_last or 0) < last_write:
                write.update_run_totals(conn, run_id, size, count, last_write, now)
                events.append((EventKind.RUN_CHANGED, self.root_id, run_id, by_id[run_id]))
                changed += 1
        for rid, key in self._removed:
            events.append((EventKind.RUN_REMOVED, self.root_id, rid, key))
            changed += 1
        write.add_events(conn, now, events)
        self._dirty.clear()
        self._new.clear()
        self._removed = []
        if summaries:
            self._ahead = None
        return changed

    def _counted_totals(self, conn: sqlite3.Connection, dirty: set[int]) -> Mapping[int, Totals]:
        """Every run's totals; those a cold load counted while nothing has written since
        stand in for the ``GROUP BY`` (a second pass over every row)."""
        if self._kept_totals is not None:
            token, counted = self._kept_totals
            self._kept_totals = None
            if token == change_token(conn):
                return counted
        return self._totals(conn, dirty)

    def _totals(self, conn: sqlite3.Connection, dirty: set[int]) -> Mapping[int, Totals]:
        """run id -> (size, files, last write, first write) from its rows: of the ``dirty``
        runs, by their own rows, when they are few; else of every run with files.

        Every write of a row marks its runs, old and new, dirty (``mark_dirty``,
        ``reassign``), so no other run's totals can have moved.  Summing the whole root
        instead took 0.1 s of each live batch at 200k files and 0.5 s at 1M."""
        if len(dirty) <= FEW_DIRTY_RUNS:
            return totals_of(conn, dirty)
        return {
            run_id: (size or 0, count, (last_ns or 0) / 1e9, (first_ns or 0) / 1e9)
            for run_id, size, count, last_ns, first_ns in conn.execute(
                "SELECT run_id, sum(size), count(*), max(mtime_ns), min(mtime_ns) FROM artifacts"
                " WHERE root_id = ? AND run_id IS NOT NULL GROUP BY run_id",
                [self.root_id],
            )
        }

    def keep_totals(self, conn: sqlite3.Connection, totals: Mapping[int, Totals]) -> None:
        """Remember totals a cold load counted, once committed, for the next ``refresh``
        (``fill_pending`` right after the scan) to use while nothing has written since."""
        self._kept_totals = (change_token(conn), dict(totals))

    def fill_pending(
        self, conn: sqlite3.Connection, now: float, *, workers: int = 1, limit: int | None = None
    ) -> int:
        """Read the summaries a deferred refresh left pending; returns how many.  With
        ``workers`` above 1 the pending runs' files are read that many at a time first (an
        object store answers each small read after a round trip, not from a page cache).
        ``limit``: read at most that many (the watcher's batches, between its events)."""
        pending = self._pending(conn, limit)
        if not pending:
            return 0
        self.mark_dirty(pending)
        if workers > 1:
            self._read_pending(pending, workers)
        self.refresh(conn, now)
        return len(pending)

    def read_pending(self, *, workers: int, limit: int | None = None) -> None:
        """Read the pending runs' files now (at most ``limit`` runs'), ``workers`` runs at a
        time, for the next ``fill_pending`` (with one worker) to use: a caller whose reads
        are round trips makes them before it opens the write transaction, not while it
        holds it."""
        pending = self._pending(self.db.conn, limit)
        if pending:
            self._read_pending(pending, workers)
            assert self._ahead is not None and self._ahead[0] is not None
            self._ahead[0].join()

    def _pending(self, conn: sqlite3.Connection, limit: int | None = None) -> list[int]:
        pending = [
            int(r[0])
            for r in conn.execute(
                "SELECT id FROM runs WHERE root_id = ?"
                " AND json_extract(meta, '$.summary_pending') IS NOT NULL ORDER BY id LIMIT ?",
                [self.root_id, -1 if limit is None else limit],
            )
        ]
        if pending and not self._specs:
            self._set_specs(self._specs_from_index())
        return pending

    def _read_pending(self, pending: list[int], workers: int) -> None:
        wanted = set(pending)
        self.read_ahead(keys=[k for k, rid in self._ids.items() if rid in wanted], workers=workers)

    def refresh_status(self, conn: sqlite3.Connection, now: float) -> int:
        """Turn 'live' runs that went quiet back into what their framework says."""
        stale = conn.execute(
            "SELECT id FROM runs WHERE root_id = ? AND status = 'live' AND last_write < ?",
            [self.root_id, now - LIVE_SECONDS],
        ).fetchall()
        self.mark_dirty(r[0] for r in stale)
        return len(stale)

    def count(self) -> int:
        return len(self._ids)

    def read_ahead(self, *, keys: Iterable[bytes] | None = None, workers: int = 1) -> None:
        """Start reading every current run's own files (or those of the runs at ``keys``)
        on a helper thread, ``workers`` runs at a time, for the next ``refresh`` with
        summaries to use (``_summary_of``) instead of reading them again.

        The reads touch only the disk, never the index, so they overlap the caller's
        SQLite writes, which release the GIL."""
        if keys is None:
            specs = list(self._specs.items())[:READ_AHEAD_RUNS]
        else:
            specs = [(k, self._specs[k]) for k in keys if k in self._specs][:READ_AHEAD_RUNS]
        done: dict[bytes, tuple[RunSpec, RunInfo]] = {}

        def one(item: tuple[bytes, RunSpec]) -> None:
            done[item[0]] = (item[1], self._read(item[1]))

        def work() -> None:
            if workers <= 1:
                for item in specs:
                    one(item)
                return
            with ThreadPoolExecutor(workers, thread_name_prefix="artlens-read") as pool:
                for _ in pool.map(one, specs):
                    pass

        thread = threading.Thread(target=work, name="artlens-read-ahead", daemon=True)
        thread.start()
        self._ahead = (thread, done)

    def read_ahead_dirty(self) -> None:
        """``read_ahead`` of the runs the next ``refresh`` will read (those marked dirty),
        none when no run is."""
        keys = [k for k, run_id in self._ids.items() if run_id in self._dirty]
        if keys:
            self.read_ahead(keys=keys)

    def fork_reader(self, *, reads: bool = True) -> None:
        """Fork the child ``read_ahead_forked`` will use now, while this process is small,
        where that is safe; it waits for the runs to read.  A reader never given them is
        stopped by ``drop_unused_reader``.  Without ``reads`` it only detects a first
        load's runs (``detect_ahead``): their summaries are read later (deferred)."""
        if self._waiting is not None or self._helper is not None or not forked.can_fork():
            return
        from store.frameworks import RunSpec

        def job(_counter: Callable[[int], None]) -> bytes:
            what, asked = marshal.loads(forked.request())
            if what == "detect":  # detect first, tell the parent, then read those runs
                specs = self._detect(asked)
                forked.tell(marshal.dumps([astuple(spec) for spec in specs]))
                if not reads:
                    return b""
                self._set_specs(specs)
                return self._read_packed(self._ahead_specs())
            return self._read_packed([(item[0], RunSpec(*item[1])) for item in asked])

        try:
            self._waiting = forked.Helper(job, waits=True)
        except OSError:
            self._waiting = None
        self._reader_reads = reads

    def detect_ahead(self, listing: Callable[[], Listing]) -> bool:
        """Hand a whole root's ``listing`` to the reader ``fork_reader`` started: it detects
        the runs (Python work of a tenth of a second per 2,000 runs) while this process
        gets its rows ready, tells them back for ``prepare``, then reads them.  True if
        it took the listing; if it fails in any way, ``prepare`` detects here."""
        waiting, self._waiting = self._waiting, None
        if waiting is None:
            return False
        packed = {
            folder: (b"\0".join(dirs), b"\0".join(files))
            for folder, (dirs, files) in listing().items()
        }
        if not waiting.send(marshal.dumps(("detect", packed))):
            waiting.abandon()
            return False
        self._detecting = waiting
        return True

    def detecting(self) -> bool:
        """True while the reader ``detect_ahead`` gave a listing has not answered yet:
        ``prepare`` would wait for it now."""
        helper = self._detecting
        return helper is not None and not helper.ready()

    def _take_detected(self) -> list[RunSpec] | None:
        """The runs the reader detected (``detect_ahead``), or None (then it is stopped)."""
        from store.frameworks import RunSpec

        helper = self._detecting
        if helper is None:
            return None
        data = helper.message()
        try:
            if data is None:
                raise ValueError("no answer")
            return [RunSpec(*fields) for fields in marshal.loads(data)]
        except (ValueError, TypeError, EOFError):  # not the answer sent: detect here
            helper.abandon()
            self._detecting = None
            return None

    def _ahead_specs(self) -> list[tuple[bytes, RunSpec]]:
        """The runs a reader reads ahead, in order."""
        return list(self._specs.items())[:READ_AHEAD_RUNS]

    def drop_unused_reader(self) -> None:
        """Stop a reader ``fork_reader`` started whose work was never taken: never given
        its runs, or given a listing whose runs ``prepare`` did not ask for."""
        for helper in (self._waiting, self._detecting):
            if helper is not None:
                helper.abandon()
        self._waiting = self._detecting = None

    def read_ahead_forked(self) -> bool:
        """Like ``read_ahead``, in a forked child (``store.forked``) where that is safe:
        reading thousands of runs' YAML and CSV is Python work a thread would only take
        turns with under the GIL.  True if the child started.  Its answers come back in
        ``marshal`` (plain values, never pickle); a run whose summary ``marshal`` cannot
        carry, or any failure of the child, is read here after all.  A child forked
        earlier (``fork_reader``) is sent the runs instead of forking one now."""
        if self._helper is not None:  # the reader that detected the runs reads them
            return True
        specs = self._ahead_specs()
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            asked = [(key, astuple(spec)) for key, spec in specs]
            if waiting.send(marshal.dumps(("runs", asked))):
                self._helper = (waiting, dict(specs))
                return True
            waiting.abandon()
        if not forked.can_fork():
            return False

        def job(_counter: Callable[[int], None]) -> bytes:
            return self._read_packed(specs)

        try:
            self._helper = (forked.Helper(job), dict(specs))
        except OSError:
            return False
        return True

    def _read_packed(self, specs: list[tuple[bytes, RunSpec]]) -> bytes:
        """In a forked reader: the runs' summaries as plain values, in ``marshal``."""
        packed = {}
        for key, spec in specs:
            info = self._read(spec)
            fields = (
                info.params,
                {name: astuple(m) for name, m in info.metrics.items()},
                info.started,
                info.ended,
                info.status,
                info.meta,
            )
            try:
                marshal.dumps(fields)
            except ValueError:  # a value marshal does not know (a YAML date)
                continue
            packed[key] = fields
        return marshal.dumps(packed)

    def drop_read_ahead(self) -> None:
        """Stop a forked reader whose answers will not be wanted (the scan failed)."""
        self.drop_unused_reader()
        if self._helper is not None:
            self._helper[0].abandon()
            self._helper = None

    def _collect_helper(self) -> None:
        """Wait for the forked reader and keep what it read, as a read-ahead thread's."""
        from store.frameworks import MetricSummary, RunInfo

        assert self._helper is not None
        helper, specs = self._helper
        self._helper = None
        try:
            data = helper.result()
        finally:
            helper.abandon()
        done: dict[bytes, tuple[RunSpec, RunInfo]] = {}
        try:
            for key, fields in (marshal.loads(data) if data is not None else {}).items():
                params, metrics, started, ended, status, meta = fields
                summaries = {name: MetricSummary(*m) for name, m in metrics.items()}
                info = RunInfo(params, summaries, started, ended, status, meta)
                done[key] = (specs[key], info)
        except (ValueError, TypeError, EOFError, KeyError):  # not the answer sent: read here
            done = {}
        self._ahead = (None, done)

    def _summary_of(self, key: bytes, spec: RunSpec) -> RunInfo:
        """What the run's files say: read ahead if it was (for this very spec), else now."""
        if self._helper is not None:
            self._collect_helper()
        if self._ahead is not None:
            thread, done = self._ahead
            if thread is not None:
                thread.join()
            got = done.pop(key, None)
            if got is not None and got[0] is spec:
                return got[1]
        return self._read(spec)

    def _read(self, spec: RunSpec) -> RunInfo:
        from store.frameworks import RunInfo, read_run

        try:
            return read_run(self.root, spec)
        except Exception as exc:  # a parser bug must not stop the index
            return RunInfo(
                params={},
                metrics={},
                started=None,
                ended=None,
                status="unknown",
                meta={
                    "warnings": [f"could not read run: {type(exc).__name__}: {exc}"[:300]],
                    UNREAD_PARTS: ["metrics", "params"],
                },
            )


NAMED_UNREADABLE = 5
"""Places a run's warnings name at most; the rest are counted."""


def note_unreadable(
    meta: dict[str, object], places: UnreadableIndex, run_path: bytes, extra: Iterable[str]
) -> None:
    """Add to a run's warnings what its size and file count cannot hold: the places in (or
    above) its folders that the last scan could not read."""
    touching = places.touching([run_path, *(paths.key(e) for e in extra)])
    meta.pop(UNREAD_KEY, None)  # only ours counts, never a framework's meta
    if not touching:
        return
    meta[UNREAD_KEY] = len(touching)
    found = meta.get("warnings")
    notes = [
        f"{place.sentence(run_path)}: "
        + (
            "size_bytes and n_artifacts count what it holds as last seen, or not at all"
            if place.path != run_path and paths.under(place.path, run_path)
            else "the run's files are as last seen"
        )
        for place in touching[:NAMED_UNREADABLE]
    ]
    if len(touching) > NAMED_UNREADABLE:
        notes.append(f"{len(touching) - NAMED_UNREADABLE} more places could not be read")
    meta["warnings"] = [*(found if isinstance(found, list) else []), *notes]


def change_token(conn: sqlite3.Connection) -> tuple[int, int]:
    """Changes when anything writes the database: another connection's commit moves
    ``data_version``, this connection's own writes move ``total_changes``."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0]), conn.total_changes


def logged_name(meta: Mapping[str, object]) -> str | None:
    """The name a run's own files give it (W&B display name, Comet and Neptune names), as
    printable text; None when they give none.  It is what the team knows the run by, so it
    is shown instead of the folder or id (which stays in meta as run_key)."""
    name = meta.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    return visible(name.strip())[:200]


def logged_experiment(meta: Mapping[str, object]) -> str | None:
    """The experiment a run's own record names (W&B and Comet project), as printable
    text; None when it names none (the folder layout's experiment stays)."""
    name = meta.get("experiment")
    if not isinstance(name, str) or not name.strip():
        return None
    return visible(name.strip())[:200]


def _decoded_names(names: list[bytes] | bytes) -> frozenset[str]:
    """A folder's names decoded at once, given as a list or joined by NUL (``PackedListing``)."""
    joined = names if isinstance(names, bytes) else b"\0".join(names)
    if not joined:
        return frozenset()
    return frozenset(joined.decode(_FS_ENCODING, _FS_ERRORS).split("\0"))


def _loads(text: str | None) -> dict[str, object]:
    try:
        value = load_json(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
