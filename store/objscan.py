"""Indexing an object-store root into the same tables as a folder.

The local ``Indexer`` compares a walk with the index and writes the difference; only its
walk and its hashing touch the disk.  ``ObjectIndexer`` replaces just those two: the walk
is the root's prefix pages (one request per thousand keys), and "hashing" reads no object
whole.  Run detection, the run summaries (params and metrics, read through the ``Root``
in small ranged reads), the artifact, folder, run and event rows are the local code's.

An object's identity is its ETag: it goes in the ``inode`` column as a 63-bit digest, so
the local code's identity tuples and per-folder digests notice a changed ETag.  ``dev`` is
0 (no local file has device 0 in the hash cache, and objects never enter that cache).
Hashes stay NULL (``skipped``): hashing would download every byte.  Model files get their
verdict from static inspection through ranged reads.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import sqlite_utils
import xxhash

from store import paths
from store.hashing import Identity
from store.index.db import write_transaction
from store.integrity import FileCheck
from store.kinds import refine
from store.root import NotAFile, NotFound, RootError
from store.root.objstore import ObjectRoot
from store.runs import RunSync
from store.safetext import visible
from store.scan import IGNORED_DIR_NAMES, Indexer, ProgressFn, ScanReport, _Through, _Walk

READ_WORKERS = 16
"""Runs whose summary files are read at once (GETs in flight: the client's pool is
s3fs's, whose event loop runs them concurrently)."""

_IGNORED = frozenset(os.fsdecode(n) for n in IGNORED_DIR_NAMES)


def identity_number(identity: str) -> int:
    """An object identity as the ``inode`` column holds it (63 bits: SQLite integers)."""
    return xxhash.xxh3_64_intdigest(identity.encode()) & ((1 << 63) - 1)


class ObjectIndexer(Indexer):
    """Keeps one bucket prefix's rows in the index equal to its listing."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        root: ObjectRoot,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # not Indexer.__init__: that one makes the root an absolute local path
        self.db = db
        self.object_root = root
        self.root = Path(root.url)
        self.root_b = root.url.encode()
        self.clock = clock
        self._ignore_abs: set[bytes] = set()
        self.root_id = self._register_root()
        # the frameworks' readers take any Root (store.frameworks._io.as_root)
        self.runs = RunSync(db, cast(Path, root), self.root_id, clock=clock)
        self._summaries = True
        self._read_ahead = False
        self._settled: dict[
            tuple[bytes, int], tuple[str | None, str, str, str | None, str | None]
        ] = {}
        """Verdicts made ahead, by (path, identity number), for ``_hash_one``."""

    def root_identity(self) -> tuple[int, int] | None:
        return None

    def _root_kept(self, through: _Through) -> None:
        """A bucket has no folder identity: its walk raises when the root is not there."""

    def _walk(
        self,
        start: bytes,
        report: ScanReport,
        progress: ProgressFn | None,
        descend: Callable[[bytes], bool] | None = None,
        through: _Through | None = None,
    ) -> _Walk:
        """The subtree under ``start`` from prefix pages (``descend`` is not needed: a
        listing is by prefix, never folder by folder; nor ``through``: a bucket has no
        folder loops)."""
        walk = _Walk()
        rel = os.fsdecode(start)
        self.object_root.release_listing()
        try:
            folders = list(self.object_root.walk(rel))
        except NotFound:
            if not start:
                raise  # the bucket or prefix is not there: say so, write nothing
            # no key below it any more (the listing said so, or the store answered 404):
            # the subtree is gone, as a local folder that vanished, and so are its rows
            report.warn("vanished", start)
            return walk
        except RootError as exc:
            if not start:
                raise  # the bucket or prefix cannot be listed at all: say so, write nothing
            report.warn(f"listing failed: {str(exc)[:200]}", start)
            walk.unreadable.append(start)
            return walk
        entries = walk.entries
        for folder, listed in folders:
            if any(part in _IGNORED for part in folder.split("/")):
                continue  # our trash, VCS internals: never artifacts
            key = paths.key(folder)
            walk.dirs[key] = (paths.parent_key(key) if key else b"", 0)
            subdirs: list[bytes] = []
            first = len(entries)
            for entry in listed:
                name = os.fsencode(entry.name)
                if entry.kind == "dir":
                    if entry.name not in _IGNORED:
                        subdirs.append(name)
                    continue
                number = identity_number(entry.identity)
                entries.append((name, number, entry.size, entry.mtime_ns, 0, "file"))
            walk.subdirs[key] = subdirs
            walk.slices[key] = (first, len(entries))
            if progress is not None and len(walk.slices) % 256 == 0:
                progress(len(entries), 0)
        if not start:
            # detection and the run summaries read names from this walk, not the store
            self.object_root.hold_listing(folders)
        return walk

    def scan(
        self,
        subtree: str | bytes = "",
        progress: ProgressFn | None = None,
        *,
        defer_summaries: bool = False,
        read_ahead: bool = False,
    ) -> ScanReport:
        """As ``Indexer.scan``; the walk's listing answers the run readers until the
        summaries are read (here, or in ``fill_summaries`` when deferred)."""
        try:
            return super().scan(
                subtree, progress, defer_summaries=defer_summaries, read_ahead=read_ahead
            )
        finally:
            if not defer_summaries:
                self.object_root.release_listing()

    def fill_summaries(self, *, limit: int | None = None) -> int:
        """As ``Indexer.fill_summaries``, with the runs' small files read ``READ_WORKERS``
        runs at a time (one at a time, a cold index waits a round trip per GET), and before
        the write transaction opens: a folder watcher writing the same index beside a
        bucket's poller never waits on the bucket's round trips."""
        try:
            self.runs.read_pending(workers=READ_WORKERS, limit=limit)
            with self.runs.in_step(), write_transaction(self.db) as conn:
                return self.runs.fill_pending(conn, self.clock(), limit=limit)
        finally:
            self.object_root.release_listing()

    def _before_hashing(self, rows: list[tuple[Any, ...]]) -> None:
        """Sniff and inspect a batch ``READ_WORKERS`` objects at a time, for ``_hash_one``:
        one at a time, the pass would wait a round trip per object."""
        self._settled.clear()

        def settle(row: tuple[Any, ...]) -> None:
            key, kind, inode = bytes(row[1]), row[2], int(row[4])
            self._settled[(key, inode)] = self._verdict_of(key, kind, inode)

        with ThreadPoolExecutor(READ_WORKERS, thread_name_prefix="artlens-sniff") as pool:
            for _ in pool.map(settle, rows):
                pass

    def _hash_one(
        self,
        key: bytes,
        kind: str,
        expect: Identity,
        max_bytes: int | None,
        seen: object = None,
    ) -> tuple[str | None, str, str, str | None, str | None]:
        """No hash (it would download the object); a model file's verdict by inspection
        through ranged reads (made ahead by ``hash_pending`` where it could)."""
        found = self._settled.pop((key, expect.inode), None)
        return found if found is not None else self._verdict_of(key, kind, expect.inode)

    def _verdict_of(
        self, key: bytes, kind: str, inode: int
    ) -> tuple[str | None, str, str, str | None, str | None]:
        """The row's kind refined by its first bytes, and a model file's verdict, of the
        object the listing saw (its identity number ``inode``).  The verdict is of a reader
        pinned to that identity: an object overwritten since the listing is ``pending``
        (the next listing brings its new identity), never vetted under the old one, which
        the bytes may take again (an ETag names the bytes: a verdict kept under it is
        believed whenever they come back)."""
        from store.inspect import inspect_reader, is_model_candidate
        from store.integrity import SNIFF_BYTES, model_by_content

        rel = os.fsdecode(key)
        verdict: str | None = None
        reason: str | None = None
        try:
            head, _ = self.object_root.read_capped(rel, SNIFF_BYTES)
        except RootError as exc:
            return (None, "error", kind, None, str(exc)[:300])
        refined = refine(kind, rel, head) if head else kind
        if is_model_candidate(paths.unkey(paths.name_of(key))) or model_by_content(head):
            try:
                reader = self.object_root.open(rel)
            except (NotFound, NotAFile):
                return (None, "pending", kind, None, None)  # gone since the listing
            except RootError as exc:
                return (None, "error", kind, None, str(exc)[:300])
            if identity_number(reader.identity) != inode:
                reader.close()
                return (None, "pending", kind, None, None)
            found = inspect_reader(reader, rel)
            if found.verdict != "n/a":
                verdict = found.verdict
                reason = "; ".join(found.reasons[:3]) or found.integrity
        return (None, "skipped", refined, verdict, reason)


def check_objects(root: ObjectRoot, *, max_seconds: float | None = 600.0) -> Iterator[FileCheck]:
    """``artlens scan`` on a bucket prefix: every model object, by name or by its first
    bytes (one small ranged GET), inspected statically through ranged reads and never
    downloaded whole; objects reached after ``max_seconds`` are ``unknown``."""
    from store.inspect import inspect_at, is_model_candidate
    from store.integrity import SNIFF_BYTES, model_by_content

    stop_at = None if max_seconds is None else time.monotonic() + max_seconds
    for folder, entries in root.walk():
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.kind != "file":
                continue
            rel = f"{folder}/{entry.name}" if folder else entry.name
            shown = paths.display(f"{root.url}/{rel}")
            if not is_model_candidate(entry.name):
                try:
                    head, _ = root.read_capped(rel, SNIFF_BYTES)
                except (NotFound, NotAFile):
                    continue
                except RootError as exc:  # unread, it may be a model: unknown, not left out
                    yield FileCheck(shown, "-", "unknown", (visible(str(exc)),), size=entry.size)
                    continue
                if not model_by_content(head, entry.size):
                    continue
            if stop_at is not None and time.monotonic() >= stop_at:
                why = f"not inspected: the scan's time budget ({max_seconds:g} s) ran out"
                yield FileCheck(shown, "-", "unknown", (why,), size=entry.size)
                continue
            found = inspect_at(root, rel)
            yield FileCheck(
                shown,
                found.format,
                found.verdict,
                tuple(visible(r) for r in found.reasons),
                visible(found.integrity) if found.integrity else None,
                tuple(visible(i) for i in found.imports),
                entry.size,
            )
