"""Scanning: bring the index in line with the disk, for a whole root or one subtree.

The walk never follows symlinks (they are recorded as links), skips FIFOs, sockets and
devices, and survives folders that vanish or cannot be read: each problem is counted,
never raised.  An unchanged file is recognised by (inode, size, mtime_ns) and costs no
write at all, so a warm rescan is about the price of the walk.  Hashing is separate
(``Indexer.hash_pending``) so a cold index is not held up by reading every byte.
"""

from __future__ import annotations

import bisect
import errno
import itertools
import json
import marshal
import operator
import os
import sqlite3
import stat
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, cast

import sqlite_utils

from store import forked, paths
from store.errors import ArtlensError
from store.gcpause import collector_paused
from store.hashing import Identity, hash_file
from store.index import write
from store.index.db import checkpoint_apart, wait_for_checkpoints, write_transaction
from store.index.events import EventKind
from store.index.query import BY_PARENT_DIRS
from store.kinds import SETTLED_EXT_BYTES, TFEVENTS, classify, classify_key, kind_by_name, refine
from store.runs import Listing, RunSync, Totals, is_busy_marker, is_config_marker, is_marker
from store.safetext import visible

IGNORED_DIR_NAMES = frozenset({b".artlens-trash", b".git", b"__pycache__"})
"""Folders that are never artifacts: our own trash, VCS internals, bytecode caches."""

EVENT_FLOOD = 2000
"""Above this many changes in one pass, one 'scan' event replaces per-file events, so the
change feed stays small and the UI reloads the affected root once."""

QUIET_SECONDS = 2.0
"""A file written more recently than this is still being written: do not hash it yet.
Quiet is proved by either clock: its mtime this long ago, or this version (size, mtime,
inode) recorded by the index this long ago and still what is on disk.  The second alone
holds when the mtime cannot be trusted: one in the future (a skewed NFS server, ``touch
-d tomorrow``, a tar from another machine) would otherwise keep the file pending for
ever."""

SAMPLES_PER_WARNING = 5

_S_IFMT, _S_IFREG, _S_IFDIR, _S_IFLNK = 0o170000, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK
_LIST_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_LIST_FLAGS = _LIST_ROOT_FLAGS | os.O_NOFOLLOW
"""A folder is listed through a descriptor opened without following a link (the root
itself excepted), whose identity is checked against what its parent's listing saw."""
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
KEEP_OPEN = 64
"""Folders of the last path a rescan reached that stay open for the next (``_Through``)."""
_REPLACED = "replaced while walked"
"""A folder that was a link or another folder by the time it was listed: its rows are kept,
as for one that could not be read, until a later scan sees what is there."""
"""File-type bits of st_mode, compared inline: the walk does this once per file."""
_MISSING = frozenset({errno.ENOENT, errno.ENOTDIR})
"""What ``stat`` of a root that is not there says (not: that cannot be looked at)."""

HASH_WINDOW = 16_384
"""Pending files read at once, smallest first, then hashed a batch at a time: no index
orders them by size, so each read sorts every pending file of the root (one read per 256
files kept a core busy for minutes after indexing 200k files)."""
BULK_ROWS = 5000
"""A load of at least this many new rows into a table holding fewer rows than that drops
the artifacts table's triggers, and its secondary indexes unless the table is empty, and
makes them again after the load, inside the same transaction: building an index from sorted
data beats growing it row by row in its middle (see ``_drop_secondary_indexes``)."""

NAME_CACHE = 100_000
"""File names whose printable form and kind a bulk insert keeps (see ``_insert_rows``)."""

AHEAD_ROWS = 250_000
"""Rows a first load makes at most while its runs are being detected (``_rows_ahead``):
some 50 MB, waiting in memory for the insert."""

SPLIT_AFTER = 10_000
"""A whole-tree walk shares the rest with forked helpers once it has walked this many
files (where forking is safe, see ``store.forked``): below it a fork costs more than the
walk it saves."""
WALK_HELPERS = 3
"""Helpers a shared walk forks at most, one per spare core: past four walkers the merge and
the filesystem's own locks take back what another would save."""

DIRTY_SHARE = 0.25
"""When more than this share of a scan's folders changed, read every row back at once
rather than folder by folder."""

ProgressFn = Callable[[int, int], None]
"""progress(done, total): total is 0 while unknown (during the walk)."""


class RootGoneError(ArtlensError):
    """The root folder was missing, or became another folder, while a scan walked it:
    nothing is written.  Every folder of a root that is away (unmounted, renamed, its
    parent moved) reads as deleted, and its rows would go while the files are there."""


@dataclass
class ScanReport:
    """What a scan found and changed."""

    root: str
    files: int = 0
    dirs: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    runs: int = 0
    runs_changed: int = 0
    seconds: float = 0.0
    warnings: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)

    def warn(self, what: str, rel: bytes) -> None:
        self.warnings[what] += 1
        bucket = self.samples.setdefault(what, [])
        if len(bucket) < SAMPLES_PER_WARNING:
            bucket.append(paths.display(rel) or ".")

    def absorb(self, warnings: dict[str, int], samples: dict[str, list[str]]) -> None:
        """Add another walk's warnings (a helper's) to these."""
        self.warnings.update(warnings)
        for what, found in samples.items():
            bucket = self.samples.setdefault(what, [])
            bucket += found[: max(0, SAMPLES_PER_WARNING - len(bucket))]

    @property
    def warning_count(self) -> int:
        return sum(self.warnings.values())

    def to_json(self) -> dict[str, object]:
        return {
            "root": self.root,
            "files": self.files,
            "dirs": self.dirs,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "runs": self.runs,
            "runs_changed": self.runs_changed,
            "seconds": round(self.seconds, 3),
            "warnings": dict(self.warnings),
            "warning_samples": self.samples,
        }


class _Entry(NamedTuple):
    """One file or symlink as the walk saw it.

    Shaped like the index's identity columns, so a walk and the index compare as two sets
    of tuples: the difference is computed in C, and unchanged files cost no Python work.
    """

    path: bytes
    inode: int
    size: int
    mtime_ns: int
    dev: int
    ftype: str

    @property
    def parent(self) -> bytes:
        return paths.parent_key(self.path)


_IDENTITY = "path, inode, size, mtime_ns, dev, ftype"
_Identity = tuple[bytes, int, int, int, int, str]


def _path_of(entry: _Identity) -> bytes:
    return entry[0]


_OLD_ROW = "path, id, run_id, hash, kind, size, mtime_ns"


@dataclass
class _Walk:
    entries: list[tuple[bytes, int, int, int, int, str]] = field(default_factory=list)
    """(name, inode, size, mtime_ns, dev, ftype), folder by folder (see ``slices``); the
    name alone, so files in folders found unchanged never cost a path."""
    links: dict[bytes, str] = field(default_factory=dict)
    """symlink key -> printable target"""
    dirs: dict[bytes, tuple[bytes, int]] = field(default_factory=dict)
    """folder key -> (parent key, mtime_ns)"""
    subdirs: dict[bytes, list[bytes]] = field(default_factory=dict)
    """folder key -> subfolder names, for every folder listed in full"""
    slices: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    """folder key -> where its files lie in ``entries`` (start, stop)"""
    unreadable: list[bytes] = field(default_factory=list)
    why: dict[bytes, tuple[str, str]] = field(default_factory=dict)
    """unreadable key -> (kind, reason): ``folder`` not listed, ``entry`` not examined"""
    helped: bool = False
    """True when forked helpers walked part of the tree (see ``Indexer._walk``)."""
    named: dict[bytes, list[bytes]] = field(default_factory=dict)
    """folder key -> its file names, where ``digest_ahead`` found them already"""
    digested: dict[bytes, int] = field(default_factory=dict)
    """folder key -> its digest, where ``digest_ahead`` found it already"""

    def listing(self) -> dict[bytes, tuple[list[bytes], list[bytes]]]:
        """folder key -> (subfolder names, file names): what run detection reads."""
        entries, named = self.entries, self.named
        return {
            folder: (
                self.subdirs[folder],
                named[folder] if folder in named else list(map(_NAME, entries[start:stop])),
            )
            for folder, (start, stop) in self.slices.items()
        }

    def digests(self) -> dict[bytes, int]:
        """The digest of every folder listed in full (see ``folder_digest``)."""
        entries, digested = self.entries, self.digested
        return {
            folder: digested[folder] if folder in digested else folder_digest(entries[start:stop])
            for folder, (start, stop) in self.slices.items()
        }

    def digest_ahead(self) -> None:
        """Find every listed folder's names and digest now: a walk shared with a helper
        does it for its own part while the other part is still being walked.  A folder's
        files never change once it is listed, so what is found now stays true."""
        entries = self.entries
        for folder, (start, stop) in self.slices.items():
            files = entries[start:stop]
            self.named[folder] = list(map(_NAME, files))
            self.digested[folder] = folder_digest(files)

    def merge(self, other: _Walk) -> None:
        offset = len(self.entries)
        self.named.update(other.named)
        self.digested.update(other.digested)
        self.entries += other.entries
        self.links.update(other.links)
        self.dirs.update(other.dirs)
        self.subdirs.update(other.subdirs)
        self.slices.update(
            {k: (start + offset, stop + offset) for k, (start, stop) in other.slices.items()}
        )
        self.unreadable += other.unreadable
        self.why.update(other.why)

    def without(self, folders: Iterable[bytes]) -> _Walk:
        """This walk less ``folders`` and everything below them, as if never reached."""
        gone = tuple(folders)

        def kept(key: bytes) -> bool:
            return not any(paths.under(key, g) for g in gone)

        out = _Walk(unreadable=[k for k in self.unreadable if kept(k)])
        out.why = {k: v for k, v in self.why.items() if kept(k)}
        out.links = {k: v for k, v in self.links.items() if kept(k)}
        out.dirs = {k: v for k, v in self.dirs.items() if kept(k)}
        for folder, (start, stop) in self.slices.items():
            if kept(folder):
                first = len(out.entries)
                out.entries += self.entries[start:stop]
                out.slices[folder] = (first, len(out.entries))
        for folder, names in self.subdirs.items():
            if kept(folder):
                prefix = folder + b"/" if folder else b""
                out.subdirs[folder] = [n for n in names if kept(prefix + n)]
        return out

    def entries_of(self, folders: Iterable[bytes]) -> list[_Identity]:
        """The files of ``folders`` as identity tuples, keyed by their path."""
        entries = self.entries
        picked: list[_Identity] = []
        for folder in folders:
            start, stop = self.slices[folder]
            prefix = folder + b"/" if folder else b""
            picked += [
                (prefix + name, inode, size, mtime_ns, dev, ftype)
                for name, inode, size, mtime_ns, dev, ftype in entries[start:stop]
            ]
        return picked

    def count(self) -> int:
        return len(self.entries)

    def reaches_every_folder(self) -> bool:
        """True when every listed folder is reached from the root ('') through the
        subfolder lists, each once: then ``_in_key_order`` yields every file once."""
        reached: set[bytes] = set()
        stack = [b""]
        slices, subdirs = self.slices, self.subdirs
        while stack:
            folder = stack.pop()
            if folder not in slices:
                continue
            if folder in reached:
                return False
            reached.add(folder)
            prefix = folder + b"/" if folder else b""
            stack += [prefix + name for name in subdirs.get(folder, ())]
        return len(reached) == len(slices)


_NAME, _INODE, _SIZE, _MTIME = (operator.itemgetter(i) for i in range(4))
TRAINER_STATE = b"trainer_state.json"


_FTYPE = operator.itemgetter(5)


class _closing:
    """Closes a descriptor: ``os.scandir(fd)`` lists a duplicate of it."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *_exc: object) -> None:
        os.close(self.fd)


def _all_files(entries: list[_Identity]) -> bool:
    """No link among ``entries`` (counted in C: this is asked of every folder)."""
    return list(map(_FTYPE, entries)).count("file") == len(entries)


def folder_digest(entries: Sequence[_Identity]) -> int:
    """One number for a folder's files: their names, and in the same order their inodes,
    sizes and mtimes (so two files swapping names change it).

    Built from ints and a CRC only, so it is the same in every process (``hash`` of bytes
    is salted per process; of ints and tuples it is not).  Another Python that hashes
    tuples differently merely finds every folder changed once.
    """
    return hash(
        (
            zlib.crc32(b"\0".join(map(_NAME, entries))),
            tuple(map(_INODE, entries)),
            tuple(map(_SIZE, entries)),
            tuple(map(_MTIME, entries)),
        )
    )


class _Through:
    """Paths below a root as a walk of the whole root reaches them, for one scan: each
    folder on a path is looked at once (``lstat``), however many paths pass through it,
    so a batch of the folders of a deep chain costs what a walk of it costs, not a walk
    of every folder's whole path again.  Nothing is cached past the scan."""

    def __init__(self, root_b: bytes) -> None:
        self.root_b = root_b
        self.known: dict[bytes, bytes] = {}
        """A path resolved before (as asked) -> what it resolved to."""
        self.folders: dict[bytes, bytes] = {}
        """Of those, the ones that are a real folder all the way down."""
        self.identity: dict[bytes, tuple[int, int]] = {}
        """A real folder on a resolved path -> its (device, inode)."""
        self.holders: dict[tuple[int, int], list[bytes]] = {}
        """(device, inode) -> the real folders that are it (a bind mount beside, not above)."""
        self._held: list[tuple[int, int]] = []
        """(depth, descriptor) of the folders on the path ``reach`` reached last."""
        self._held_names: list[bytes] = []
        self.root_errno: int | None = None
        """Why the root could not be looked at, if it could not."""
        try:
            st = os.stat(root_b)  # the root itself may be a symlink: followed, as the walk does
        except OSError as exc:
            self.root_ok = False
            self.root_errno = exc.errno
        else:
            self.root_ok = True
            self._note(b"", (st.st_dev, st.st_ino))

    def _note(self, folder: bytes, ident: tuple[int, int]) -> None:
        self.identity[folder] = ident
        self.holders.setdefault(ident, []).append(folder)

    def _loop_at(self, here: bytes, ident: tuple[int, int]) -> bytes | None:
        """The folder at or above ``here`` that ``ident`` is, if any (a loop back to it)."""
        for folder in self.holders.get(ident, ()):
            if not folder or folder == here or here.startswith(folder + b"/"):
                return folder
        return None

    def resolve(self, start: bytes) -> bytes:
        """``start`` as a walk of the whole root reaches it.

        Where one of its parents is no longer a real folder (a link to ``/etc``, a file, a
        FIFO), the folder holding that parent: a walk from ``start`` would go through the
        link and index what lies outside the root under the root's names; the folder
        holding it sees the link as a link.  Where a folder on the way is one of the
        folders above it (a bind mount of a parent: a folder loop, which a whole walk
        never enters), the path from that parent on, for every loop on the way, however
        many: inotify reports a folder's events under any of its names.  A part that
        cannot be looked at (gone, not to be searched) ends the looking: the rest is kept
        as given, after the loops dropped before it, and the walk says what it finds."""
        if not start or not self.root_ok:
            return start
        done = self.known.get(start)
        if done is not None:
            return done
        cut = start.rfind(b"/")
        parent = self.folders.get(start[:cut]) if cut > 0 else None
        if parent is not None:
            found, whole = self._follow(parent, start[cut + 1 :].split(b"/"))
        else:
            found, whole = self._follow(b"", start.split(b"/"))
        self.known[start] = found
        if whole:
            self.folders[start] = found
        return found

    def _follow(self, here: bytes, rest: list[bytes]) -> tuple[bytes, bool]:
        """From the real folder ``here``, down the names ``rest``: the path reached, and
        whether it is a real folder all the way down."""
        last = len(rest) - 1
        for at, name in enumerate(rest):
            below = here + b"/" + name if here else name
            try:
                st = os.lstat(self.root_b + b"/" + below)
            except OSError:  # gone or not to be looked at: the walk says which
                return b"/".join([below, *rest[at + 1 :]]), False
            if not stat.S_ISDIR(st.st_mode):
                return (below if at == last else here), False
            ident = (st.st_dev, st.st_ino)
            looped = self._loop_at(here, ident)
            if looped is not None:
                here = looped
                continue
            if self.identity.get(below) != ident:
                self._note(below, ident)
            here = below
        return here, True

    def reach(self, rel: bytes) -> tuple[int, int] | None:
        """(device, inode) of the folder ``rel`` reached from the root one name at a time,
        each opened without following a link: what the folder is, whatever a path to it
        leads through now.  None where that way reaches no folder.  Paths asked one after
        the other share the folders they share (a batch comes parents first): the last
        path's folders stay open, the deepest ``KEEP_OPEN`` of them, until ``close``."""
        names = rel.split(b"/") if rel else []
        held = self._held
        base = held[0][0] if held else 0
        common = 0
        while common < min(len(names), len(self._held_names)):
            if names[common] != self._held_names[common]:
                break
            common += 1
        if held and base <= common:
            while held[-1][0] > common:
                os.close(held.pop()[1])
        else:
            self.close()
            try:
                held.append((0, os.open(self.root_b, _LIST_ROOT_FLAGS)))
            except OSError:
                return None
        depth, fd = held[-1]
        try:
            for name in names[depth:]:
                fd = os.open(name, _LIST_FLAGS, dir_fd=fd)
                depth += 1
                held.append((depth, fd))
                if len(held) > KEEP_OPEN:
                    os.close(held.pop(0)[1])
            st = os.fstat(fd)
        except OSError:
            return None
        finally:
            self._held_names = names[:depth]
        return st.st_dev, st.st_ino

    def close(self) -> None:
        """Close the folders ``reach`` holds open."""
        while self._held:
            os.close(self._held.pop()[1])
        self._held_names = []

    def above(self, folder: bytes) -> dict[tuple[int, int], bytes]:
        """(device, inode) of the root and each folder above ``folder`` (as resolved here)
        that could be looked at."""
        found: dict[tuple[int, int], bytes] = {}
        root = self.identity.get(b"")
        if root is None or not folder:
            return found
        found[root] = b""
        cut = folder.find(b"/")
        while cut > 0:
            ident = self.identity.get(folder[:cut])
            if ident is None:
                break
            found.setdefault(ident, folder[:cut])
            cut = folder.find(b"/", cut + 1)
        return found


class Indexer:
    """Keeps one root's rows in the index equal to the disk.  Only the writer uses it."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        root: Path | str,
        *,
        ignore_paths: Iterable[Path] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.root = Path(os.path.abspath(root))
        self.root_b = os.fsencode(self.root)
        self.clock = clock
        self._ignore_abs = {os.fsencode(os.path.abspath(p)) for p in ignore_paths}
        self.root_id = self._register_root()
        self.runs = RunSync(db, self.root, self.root_id, clock=clock)
        self._summaries = True
        self._read_ahead = False

    # -- roots ---------------------------------------------------------------------------

    def _register_root(self) -> int:
        row = self.db.conn.execute("SELECT id FROM roots WHERE path = ?", [self.root_b]).fetchone()
        if row:
            return int(row[0])
        return write.add_root(self.db, self.root_b, paths.display(self.root_b), self.clock())

    def root_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.root_b)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _root_kept(self, through: _Through) -> None:
        """Raise ``RootGoneError`` when the root was missing as ``through`` (made before
        the walk) looked or is missing now, or is another folder now: a walk of a root
        that is away finds every folder gone, and a walk across its replacement mixes two
        trees.  A root that cannot be looked at (no search permission) is not missing:
        the walk says so and keeps the rows."""
        try:
            st = os.stat(self.root_b)
        except OSError as exc:
            gone = exc.errno in _MISSING
        else:
            before = through.identity.get(b"")
            gone = through.root_errno in _MISSING or (
                before is not None and (st.st_dev, st.st_ino) != before
            )
        if gone:
            raise RootGoneError(
                f"{paths.display(self.root_b)}: the root folder is missing or was replaced"
                " during the scan; its rows are kept as they were"
            )

    # -- the walk ------------------------------------------------------------------------

    def _abs(self, rel: bytes) -> bytes:
        return self.root_b + b"/" + rel if rel else self.root_b

    def _walk(
        self,
        start: bytes,
        report: ScanReport,
        progress: ProgressFn | None,
        descend: Callable[[bytes], bool] | None = None,
        through: _Through | None = None,
    ) -> _Walk:
        """Walk ``start``; ``descend(child)`` False lists a subfolder without entering it.
        ``through`` is what resolved ``start``, if anything did (``_Through``): it knows
        the folders above ``start``, which a walk from it takes for loops.

        A walk of a whole tree that grows past ``SPLIT_AFTER`` files shares the folders
        still to list with forked children (``store.forked``), one per spare core, which
        walk them at the same time: the walk is most of a cold index's time."""
        walk = _Walk()
        own = through is None and bool(start)
        if through is None and start:
            through = _Through(self.root_b)
            through.resolve(start)  # the folders above it looked at, once each
        seen_dirs = through.above(start) if through is not None else {}
        try:
            # the root itself may be a symlink (~/outputs -> /data/outputs): follow that one
            st = os.stat(self._abs(start)) if not start else os.lstat(self._abs(start))
        except (FileNotFoundError, NotADirectoryError):
            report.warn("vanished", start)
            return walk
        except OSError as exc:  # there, maybe, but not to be looked at: its rows are kept
            report.warn(_os_reason(exc), start)
            walk.unreadable.append(start)
            walk.why[start] = ("folder", _unread(exc))
            return walk
        if not stat.S_ISDIR(st.st_mode):
            return walk
        reached = through.reach(start) if start and through is not None else None
        if own and through is not None:
            through.close()
        if start and reached != (st.st_dev, st.st_ino):
            # a folder above it swapped for a link since it was resolved: by its path, the
            # walk would list what lies elsewhere under the root's names
            report.warn(_REPLACED, start)
            walk.unreadable.append(start)
            walk.why[start] = ("folder", _REPLACED)
            return walk
        if (st.st_dev, st.st_ino) in seen_dirs:  # a loop: a walk of the root never enters it
            report.warn("folder loop", start)
            return walk
        seen_dirs[(st.st_dev, st.st_ino)] = start
        walk.dirs[start] = (paths.parent_key(start), st.st_mtime_ns)
        stack = [start]
        split_at = SPLIT_AFTER if descend is None and forked.can_fork() else None
        self._walk_stack(stack, walk, seen_dirs, report, progress, descend, split_at)
        if stack:  # stopped to share what is left with a helper
            if not start and not self._holds_rows():
                # a first load will want its runs detected while it makes its rows (and
                # read beside its inserts, unless deferred): the child is forked now,
                # while this process is a tenth of its size then
                self.runs.fork_reader(reads=self._read_ahead)
            self._walk_shared(stack, walk, seen_dirs, report, progress)
        return walk

    def _holds_rows(self) -> bool:
        sql = "SELECT 1 FROM artifacts WHERE root_id = ? LIMIT 1"
        return self.db.conn.execute(sql, [self.root_id]).fetchone() is not None

    def _walk_shared(
        self,
        stack: list[bytes],
        walk: _Walk,
        seen_dirs: dict[tuple[int, int], bytes],
        report: ScanReport,
        progress: ProgressFn | None,
    ) -> None:
        """Walk ``stack`` with forked helpers, one per spare core (``WALK_HELPERS`` at
        most), each taking every k-th folder; the folders of a helper that fails in any
        way are walked here after all."""
        ways = 1 + min(forked.spare_cores(), WALK_HELPERS, len(stack) - 1)
        shares = [stack[i::ways] for i in range(ways - 1)]
        stack[:] = stack[ways - 1 :: ways]
        known = len(seen_dirs)

        def job_for(theirs: list[bytes]) -> Callable[[Callable[[int], None]], bytes]:
            def job(counter: Callable[[int], None]) -> bytes:
                sub, sub_report = _Walk(), ScanReport(root="")
                self._walk_stack(
                    theirs, sub, seen_dirs, sub_report, lambda done, _t: counter(done), None, None
                )
                sub.digest_ahead()
                found = list(seen_dirs.items())[known:]
                return marshal.dumps(
                    (
                        sub.entries,
                        sub.links,
                        sub.dirs,
                        sub.subdirs,
                        sub.slices,
                        sub.unreadable,
                        sub.why,
                        dict(sub_report.warnings),
                        sub_report.samples,
                        found,
                        sub.named,
                        sub.digested,
                    )
                )

            return job

        helpers: list[tuple[forked.Helper, list[bytes]]] = []
        try:
            for theirs in shares:
                try:
                    helpers.append((forked.Helper(job_for(theirs)), theirs))
                except OSError:
                    stack += theirs
            mine = progress
            if progress is not None and helpers:
                mine = lambda done, total: progress(  # noqa: E731
                    done + sum(helper.progress() for helper, _ in helpers), total
                )
            self._walk_stack(stack, walk, seen_dirs, report, mine, None, None)
            walk.digest_ahead()  # while the helpers walk on: they mostly end later
            answers = [(helper.result(), theirs) for helper, theirs in helpers]
        finally:
            for helper, _ in helpers:
                helper.abandon()
        for data, theirs in answers:
            self._take_share(data, theirs, walk, seen_dirs, report, progress)

    def _take_share(
        self,
        data: bytes | None,
        theirs: list[bytes],
        walk: _Walk,
        seen_dirs: dict[tuple[int, int], bytes],
        report: ScanReport,
        progress: ProgressFn | None,
    ) -> None:
        """Merge what a helper of ``_walk_shared`` found into ``walk``, or walk its share
        ``theirs`` here if it sent no answer (or not the one sent)."""
        try:
            answer: Any = marshal.loads(data) if data is not None else ()
            (entries, links, dirs, subdirs, slices, unreadable, why) = answer[:7]
            warnings, samples, found, named, digested = answer[7:]
        except (ValueError, TypeError, EOFError):
            self._walk_stack(theirs, walk, seen_dirs, report, progress, None, None)
            return
        sub = _Walk(entries, links, dirs, subdirs, slices, unreadable, why)
        sub.named, sub.digested = named, digested
        twice = [key for ident, key in found if ident in seen_dirs]
        for ident, key in found:
            seen_dirs.setdefault(ident, key)
        if twice:  # reached by two walks (a bind mount): kept where the first found it
            sub = sub.without(twice)
            for key in twice:
                report.warn("folder loop", key)
        walk.merge(sub)
        walk.helped = True
        report.absorb(warnings, samples)

    def _walk_stack(
        self,
        stack: list[bytes],
        walk: _Walk,
        seen_dirs: dict[tuple[int, int], bytes],
        report: ScanReport,
        progress: ProgressFn | None,
        descend: Callable[[bytes], bool] | None,
        split_at: int | None,
    ) -> None:
        """List the folders on ``stack`` (and those found below them) into ``walk``.
        Returns early, folders left on ``stack``, once ``split_at`` files were walked and
        at least two folders are waiting."""
        ignore = self._ignore_abs
        ignore_names = {paths.name_of(p) for p in ignore}
        entries = walk.entries
        append = entries.append
        # each folder as its parent's listing saw it: a folder swapped for a link to
        # elsewhere since (or one above it) is not listed through that link
        expect = {folder: ident for ident, folder in seen_dirs.items()}
        while stack:
            if split_at is not None and len(entries) >= split_at and len(stack) > 1:
                return
            rel = stack.pop()
            prefix = rel + b"/" if rel else b""
            subdirs: list[bytes] = []
            first = len(entries)
            try:
                # the root itself may be a link (~/outputs -> /data/outputs); nothing below
                fd = os.open(self._abs(rel), _LIST_FLAGS if rel else _LIST_ROOT_FLAGS)
            except FileNotFoundError:
                report.warn("vanished", rel)
                continue
            except PermissionError as exc:
                report.warn("unreadable folder", rel)
                walk.unreadable.append(rel)
                walk.why[rel] = ("folder", _unread(exc))
                continue
            except OSError as exc:
                swapped = exc.errno in (errno.ELOOP, errno.ENOTDIR)
                report.warn(_REPLACED if swapped else _os_reason(exc), rel)
                walk.unreadable.append(rel)
                walk.why[rel] = ("folder", _REPLACED if swapped else _unread(exc))
                continue
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) != expect.get(rel, (st.st_dev, st.st_ino)):
                    os.close(fd)
                    report.warn(_REPLACED, rel)
                    walk.unreadable.append(rel)
                    walk.why[rel] = ("folder", _REPLACED)
                    continue
                scanner = os.scandir(fd)
            except OSError as exc:
                os.close(fd)
                report.warn(_os_reason(exc), rel)
                walk.unreadable.append(rel)
                walk.why[rel] = ("folder", _unread(exc))
                continue
            with scanner, _closing(fd):
                try:
                    listed = list(scanner)
                except OSError as exc:
                    # a listing cut short says nothing about the entries it did not reach:
                    # keep the folder's rows rather than take them for deleted
                    report.warn(_os_reason(exc), rel)
                    walk.unreadable.append(rel)
                    walk.why[rel] = ("folder", _unread(exc))
                    continue
                for entry in listed:
                    # listed through a descriptor, names come as str: as a path would give them
                    name = entry.name.encode(_FS_ENCODING, _FS_ERRORS)
                    if ignore_names and name in ignore_names and self._abs(prefix + name) in ignore:
                        continue
                    try:
                        est = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        report.warn("vanished", prefix + name)
                        continue
                    except OSError as exc:  # kept as it was, not taken for deleted
                        report.warn(_os_reason(exc), prefix + name)
                        walk.unreadable.append(prefix + name)
                        walk.why[prefix + name] = ("entry", _unread(exc))
                        continue
                    fmt = est.st_mode & _S_IFMT
                    if fmt == _S_IFREG:
                        append((name, est.st_ino, est.st_size, est.st_mtime_ns, est.st_dev, "file"))
                    elif fmt == _S_IFDIR:
                        if name in IGNORED_DIR_NAMES:
                            continue
                        child = prefix + name
                        ident = (est.st_dev, est.st_ino)
                        if ident in seen_dirs:
                            report.warn("folder loop", child)
                            continue
                        seen_dirs[ident] = child
                        expect[child] = ident
                        walk.dirs[child] = (rel, est.st_mtime_ns)
                        subdirs.append(name)
                        if descend is None or descend(child):
                            stack.append(child)
                    elif fmt == _S_IFLNK:
                        child = prefix + name
                        try:
                            target = os.readlink(name, dir_fd=fd)
                        except OSError:
                            target = b""
                        append(
                            (name, est.st_ino, est.st_size, est.st_mtime_ns, est.st_dev, "symlink")
                        )
                        walk.links[child] = paths.display(target)
                    else:
                        report.warn(_special_kind(est.st_mode), prefix + name)
            walk.subdirs[rel] = subdirs
            walk.slices[rel] = (first, len(entries))
            if progress is not None and len(walk.slices) % 256 == 0:
                progress(len(entries), 0)

    # -- scanning ------------------------------------------------------------------------

    def scan(
        self,
        subtree: str | bytes = "",
        progress: ProgressFn | None = None,
        *,
        defer_summaries: bool = False,
        read_ahead: bool = False,
    ) -> ScanReport:
        """Reconcile the index with the disk under ``subtree`` ('' = the whole root).

        With ``defer_summaries`` the runs' own files (params, metrics, status) are not
        read: the runs are marked pending for ``fill_summaries``, as hashing is for
        ``hash_pending``, so the files and runs are committed sooner.  With ``read_ahead``
        (a caller that reads the summaries right after, or in this scan), a helper reads
        them while the rows are written: a forked child where that is safe, else a thread
        while SQLite builds indexes and commits without the GIL.
        """
        started = time.perf_counter()
        wait_for_checkpoints()  # a walk forks its helper only in a process of one thread
        through = _Through(self.root_b)
        start = through.resolve(paths.key(subtree))
        report = ScanReport(root=paths.display(self.root_b))
        self._summaries = not defer_summaries
        self._read_ahead = read_ahead
        try:
            with collector_paused():
                self._scan(start, report, progress, through)
        except BaseException:
            self.runs.drop_read_ahead()
            raise
        finally:
            through.close()
            self.runs.drop_unused_reader()
            self._summaries = True
            self._read_ahead = False
        report.seconds = time.perf_counter() - started
        return report

    def _scan(
        self,
        start: bytes,
        report: ScanReport,
        progress: ProgressFn | None,
        through: _Through,
    ) -> None:
        walk = self._walk(start, report, progress, through=through)
        self._root_kept(through)
        self._scan_walked(start, walk, report)

    def _scan_walked(
        self,
        start: bytes,
        walk: _Walk,
        report: ScanReport,
        digests: dict[bytes, int] | None = None,
    ) -> None:
        """Reconcile the index under ``start`` with a walk of it (its folders' ``digests``
        when the caller holds them already): a first scan walks in pieces, then ends here."""
        existing_dirs = self._existing_dirs(start)
        # a first load of a whole root, too large for an event per file: every walked
        # file is new, and its rows are built straight from the walk's per-folder lists
        first = (
            not start
            and not existing_dirs
            and walk.count() > EVENT_FLOOD
            and not self._count_artifacts(start)
            and walk.reaches_every_folder()
        )
        if first:  # a forked reader, if one waits, detects the runs while this goes on
            self.runs.detect_ahead(lambda: self._listing_for_detection(start, walk))
        digests = walk.digests() if digests is None else digests
        clean = [
            folder
            for folder, digest in digests.items()
            if (known := existing_dirs.get(folder)) is not None and known[1] == digest
        ]
        if first:
            existing: set[tuple[Any, ...]] = set()
            entries: list[_Identity] = walk.entries  # names, not paths: see _insert_rows
        else:
            existing, entries = self._rows_to_compare(start, walk, existing_dirs, set(clean))
        self._reconcile(
            walk,
            entries,
            existing,
            existing_dirs,
            digests,
            report,
            listing=lambda: self._listing_for_detection(start, walk),
            event_path=start,
            full=not start,
            unique=True,
            first_load=first,
        )

    def _rows_to_compare(
        self,
        start: bytes,
        walk: _Walk,
        existing_dirs: dict[bytes, tuple[int, int | None]],
        clean: set[bytes],
    ) -> tuple[set[tuple[Any, ...]], list[_Identity]]:
        """The index rows and walked files that need comparing: those outside the folders
        whose digest matches the index.  Falls back to all of them when many folders
        changed, or when the index holds rows the folders do not account for."""
        dirty = [f for f in walk.slices if f not in clean]
        unlisted = [f for f in existing_dirs if f not in clean and f not in walk.slices]
        if len(dirty) + len(unlisted) > DIRTY_SHARE * max(len(walk.slices), len(existing_dirs)):
            return self._existing_artifacts(start), walk.entries_of(walk.slices)
        existing: set[tuple[Any, ...]] = set()
        for folder in dirty + unlisted:
            existing |= self._existing_artifacts(folder, shallow=True)
        vouched = sum(stop - start_ for f, (start_, stop) in walk.slices.items() if f in clean)
        if self._count_artifacts(start) != vouched + len(existing):
            # rows whose folder the index does not list: compare everything
            return self._existing_artifacts(start), walk.entries_of(walk.slices)
        return existing, walk.entries_of(dirty)

    def _count_artifacts(self, start: bytes) -> int:
        sql = "SELECT count(*) FROM artifacts WHERE root_id = ?"
        args: list[object] = [self.root_id]
        if start:
            below, args = paths.at_and_below("SELECT 1 FROM artifacts", "root_id = ?", args, start)
            sql = f"SELECT count(*) FROM ({below})"
        return int(self.db.conn.execute(sql, args).fetchone()[0])

    def scan_folders(self, folders: Iterable[str | bytes]) -> ScanReport:
        """Shallow rescan of some folders in one transaction: what the watcher calls.

        Each folder's direct entries are compared with the index; a new subfolder is
        walked whole and a vanished one is removed whole, existing subfolders are left
        alone.  A folder that is gone is removed with everything below it.
        """
        started = time.perf_counter()
        report = ScanReport(root=paths.display(self.root_b))
        walk = _Walk()
        existing: set[tuple[Any, ...]] = set()
        existing_dirs: dict[bytes, tuple[int, int | None]] = {}
        through = _Through(self.root_b)
        # parents first: each folder's path is then looked at from its parent's, once
        asked = sorted({paths.key(f) for f in folders})
        todo = sorted({through.resolve(f) for f in asked})
        tried: set[bytes] = set()
        try:
            while todo:
                for folder in todo:
                    self._scan_folder(folder, walk, existing, existing_dirs, report, through)
                tried.update(todo)
                # a file changed in place through one of its hard links changed at its
                # other paths too, which no event names: their folders are looked at too
                todo = sorted(self._linked_folders(walk, existing) - set(walk.slices) - tried)
            self._root_kept(through)
        finally:
            through.close()
        self._reconcile(
            walk,
            walk.entries_of(walk.slices),
            existing,
            existing_dirs,
            walk.digests(),
            report,
            listing=self._listing_from_index,
            event_path=b"",
            full=False,
            detect_after_write=True,
        )
        report.seconds = time.perf_counter() - started
        return report

    def _scan_folder(
        self,
        folder: bytes,
        walk: _Walk,
        existing: set[tuple[Any, ...]],
        existing_dirs: dict[bytes, tuple[int, int | None]],
        report: ScanReport,
        through: _Through,
    ) -> None:
        """One folder of ``scan_folders``: its entries and new subfolders into ``walk``,
        the index rows they are compared with into ``existing`` and ``existing_dirs``."""
        conn = self.db.conn
        if folder in walk.dirs and folder in walk.slices:
            return  # already walked as part of a new parent
        known = {
            bytes(k): m
            for k, m in conn.execute(
                f"SELECT path, mtime_ns FROM dirs {BY_PARENT_DIRS} WHERE root_id = ?"
                " AND parent = ? AND path != ?",
                [self.root_id, folder, folder],
            )
        }
        sub = self._walk(
            folder,
            report,
            None,
            descend=lambda child, k=known: child not in k,  # type: ignore[misc]
            through=through,
        )
        walk.merge(sub)
        existing |= self._existing_artifacts(folder, shallow=True)
        existing_dirs.update(self._existing_dirs(folder, shallow=True))
        gone = [folder] if folder not in sub.dirs else []
        gone += [k for k in known if k not in sub.dirs]
        fresh = [k for k in sub.dirs if k != folder and k not in known]
        for k in gone + fresh:
            existing |= self._existing_artifacts(k)
            existing_dirs.update(self._existing_dirs(k))

    def _linked_folders(self, walk: _Walk, existing: set[tuple[Any, ...]]) -> set[bytes]:
        """The folders of the other paths of files ``walk`` found new or changed that have
        more than one link, where the index holds an older size or mtime for that inode."""
        current: dict[tuple[int, int], tuple[int, int]] = {}
        for entry in walk.entries_of(walk.slices):
            if entry[5] != "file" or entry in existing:
                continue
            try:
                if os.lstat(self._abs(entry[0])).st_nlink > 1:
                    current[(entry[4], entry[1])] = (entry[2], entry[3])
            except OSError:
                continue
        if not current:
            return set()
        rows = self.db.conn.execute(  # one pass, however many: no index on inode
            "SELECT parent, dev, inode, size, mtime_ns FROM artifacts WHERE root_id = ?"
            " AND inode IN (SELECT value FROM json_each(?))",
            [self.root_id, json.dumps(sorted({ino for _dev, ino in current}))],
        )
        return {
            bytes(parent)
            for parent, dev, ino, size, mtime_ns in rows
            if current.get((dev, ino), (size, mtime_ns)) != (size, mtime_ns)
        }

    def _reconcile(
        self,
        walk: _Walk,
        entries: list[_Identity],
        existing: set[tuple[Any, ...]],
        existing_dirs: dict[bytes, tuple[int, int | None]],
        digests: dict[bytes, int],
        report: ScanReport,
        *,
        listing: Callable[[], Listing],
        event_path: bytes | tuple[bytes, ...],
        full: bool,
        detect_after_write: bool = False,
        unique: bool = False,
        first_load: bool = False,
    ) -> None:
        """Diff walked ``entries`` against the index rows ``existing`` they cover, and
        write the difference; the walk's other files are known unchanged (their folder's
        digest matched).  ``unique`` says each path is walked once, so "every row was
        seen unchanged" follows from counting.  ``first_load``: the root holds no rows
        and ``entries`` are the walk's own (names in place of paths, more of them than
        get an event each), all of them new.  ``event_path``: the folder the walk covered
        (or folders), named by the 'scan' event of a pass with too many changes."""
        report.files = walk.count()
        report.dirs = len(walk.dirs)
        vouched = report.files - len(entries)
        had_rows = bool(existing) or vouched > 0
        protected = walk.unreadable
        shielded = below_any(protected)
        now = self.clock()

        if not unique:
            entries = list(set(entries))
        fresh = [t for t in entries if t not in existing] if existing else entries
        report.unchanged = vouched + len(entries) - len(fresh)
        if len(entries) - len(fresh) == len(existing):
            stale: set[tuple[Any, ...]] = set()
        else:
            stale = existing - set(entries)
        existing.clear()
        stale_paths = {row[0] for row in stale}
        changed_paths = stale_paths.intersection(t[0] for t in fresh) if stale_paths else set()
        old_rows = self._old_rows(stale_paths)
        added = [t for t in fresh if t[0] not in changed_paths] if changed_paths else fresh
        changed = [
            (old_rows[t[0]][1], _Entry._make(t), old_rows[t[0]])
            for t in fresh
            if t[0] in changed_paths
        ]
        removed: list[tuple[Any, ...]] = [
            (row[1], key, row[2], row[3], row[5], row[6])
            for key, row in old_rows.items()
            if key not in changed_paths and not shielded(key)
        ]
        touched: set[bytes] = set()
        if existing_dirs:  # else every folder is new and written anyway
            touched.update(paths.parent_key(e[0]) for e in fresh)
            touched.update(paths.parent_key(r[1]) for r in removed)
        dirs_written: list[tuple[bytes, bytes, int, int | None]] = []
        for key, (parent, mtime_ns) in walk.dirs.items():
            known = existing_dirs.get(key)
            # a folder walked without being listed keeps the digest it had
            digest = digests[key] if key in digests else (known[1] if known else None)
            if known is None or known != (mtime_ns, digest) or key in touched:
                dirs_written.append((key, parent, mtime_ns, digest))
        dirs_added = [k for k in walk.dirs if k not in existing_dirs]
        dirs_removed = [k for k in existing_dirs if k not in walk.dirs and not shielded(k)]
        # files the trash moved (rows written outside a scan) may have made or unmade runs
        runs_stale = bool(write.stale_folders(self.db.conn, self.root_id))
        structural = bool(
            runs_stale
            or dirs_added
            or dirs_removed
            or any(is_marker(paths.name_of(e[0])) for e in added)
            or any(is_marker(paths.name_of(r[1])) for r in removed)
            or any(is_config_marker(paths.name_of(c[1].path)) for c in changed)
            or (full and any(is_busy_marker(paths.name_of(c[1].path)) for c in changed))
            or self.runs.counted_files_moved((e[0] for e in added), [(r[1], r[2]) for r in removed])
        )
        # put in key order before the runs are known: a forked reader may be detecting them
        ordered = list(_in_key_order(walk)) if first_load else None
        names = _FileNames()
        ahead = self._rows_ahead(ordered, names) if ordered is not None else None
        self.runs.prepare(listing, structural=structural and not detect_after_write)

        report.added, report.changed, report.removed = len(added), len(changed), len(removed)
        cache = self._hash_cache_lookup(added, [c[1] for c in changed])
        # a first load of the whole root: every row of the root is one this scan writes,
        # so the runs' totals are counted as the rows are built, not summed again after
        counted: dict[int, list[int]] | None = {} if full and not had_rows else None
        with (
            checkpoint_apart(self.db) if first_load else nullcontext(),
            self.runs.in_step(),
            write_transaction(self.db) as conn,
        ):
            self.runs.upsert(conn, now)
            # a run 'live' at the last pass whose files went quiet since is read again (the
            # watcher does this on a timer; a pass that finds nothing changed must too)
            self.runs.refresh_status(conn, now)
            self._write_artifacts(
                added, changed, removed, cache, walk.links, now, counted, ordered, names, ahead
            )
            # after the rows: their writes made the triggers forget these digests
            self._write_dirs(dirs_written, dirs_removed)
            if structural and detect_after_write:
                self.runs.prepare(listing, structural=True)
                self.runs.upsert(conn, now)
            if structural and (had_rows or detect_after_write):
                # rows written before the runs were known, or that an old run held
                self.runs.reassign(conn)
            if runs_stale:
                write.clear_runs_stale(conn, self.root_id)
            unread = {k: walk.why.get(k, ("folder", "not listed")) for k in protected}
            self.runs.mark_dirty_around(
                write.record_unreadable(
                    conn, self.root_id, unread, walk.slices, walk.dirs, dirs_removed, now
                )
            )
            totals = None if counted is None else _run_totals(counted)
            # every row of the root is one written here: the runs holding references are
            # found in the walk, not by a pass over every row
            refs = self._runs_with_refs(walk) if counted is not None and first_load else None
            if added or changed or removed or self.runs.has_dirty():
                report.runs_changed = self.runs.refresh(
                    conn, now, summaries=self._summaries, totals=totals, with_refs=refs
                )
            self._write_events(event_path, added, changed, removed, now)
            if full:
                write.mark_full_scan(
                    conn, self.root_id, now, *(self.root_identity() or (None, None))
                )
        if totals is not None:
            self.runs.keep_totals(self.db.conn, totals)
        report.runs = self.runs.count()

    def _runs_with_refs(self, walk: _Walk) -> set[int]:
        """The runs a first load gives a link or a ``trainer_state.json`` (what
        ``integrity.runs_with_refs`` would find in the rows just written)."""
        run_of = self.runs.run_of_entry
        found = {run_of(key, paths.parent_key(key)) for key in walk.links}
        names = list(map(_NAME, walk.entries))
        spans = sorted((start, f) for f, (start, stop) in walk.slices.items() if stop > start)
        starts = [start for start, _folder in spans]
        at = -1
        while True:
            try:
                at = names.index(TRAINER_STATE, at + 1)
            except ValueError:
                break
            folder = spans[bisect.bisect_right(starts, at) - 1][1]
            found.add(run_of(folder + b"/" + TRAINER_STATE if folder else TRAINER_STATE, folder))
        found.discard(None)
        return cast(set[int], found)

    def _existing_artifacts(self, start: bytes, *, shallow: bool = False) -> set[tuple[Any, ...]]:
        """The identity tuples of the rows under ``start`` (or directly in it)."""
        sql = f"SELECT {_IDENTITY} FROM artifacts WHERE root_id = ?"
        args: list[object] = [self.root_id]
        if shallow:
            sql += " AND parent = ?"
            args.append(start)
        elif start:
            select = f"SELECT {_IDENTITY} FROM artifacts"
            sql, args = paths.at_and_below(select, "root_id = ?", args, start)
        return set(self.db.conn.execute(sql, args))

    def _old_rows(self, keys: set[bytes]) -> dict[bytes, tuple[Any, ...]]:
        """What the index holds for rows that changed or went: (path, id, run_id, hash,
        kind, size, mtime_ns)."""
        if not keys:
            return {}
        conn = self.db.conn
        if len(keys) > 256:
            return {
                row[0]: row
                for row in conn.execute(
                    f"SELECT {_OLD_ROW} FROM artifacts WHERE root_id = ?", [self.root_id]
                )
                if row[0] in keys
            }
        found = {}
        for key in keys:
            row = conn.execute(
                f"SELECT {_OLD_ROW} FROM artifacts WHERE root_id = ? AND path = ?",
                [self.root_id, key],
            ).fetchone()
            if row is not None:
                found[key] = row
        return found

    def _existing_dirs(
        self, start: bytes, *, shallow: bool = False
    ) -> dict[bytes, tuple[int, int | None]]:
        """Folder key -> (mtime_ns, digest) for the folders under ``start``."""
        sql = "SELECT path, mtime_ns, digest FROM dirs WHERE root_id = ?"
        args: list[object] = [self.root_id]
        if shallow:  # the folder's own row, then its folders' by their parent
            sql += (
                " AND path = ? UNION ALL SELECT path, mtime_ns, digest FROM dirs "
                f"{BY_PARENT_DIRS} WHERE root_id = ? AND parent = ? AND path != ?"
            )
            args += [start, self.root_id, start, start]
        elif start:
            select = "SELECT path, mtime_ns, digest FROM dirs"
            sql, args = paths.at_and_below(select, "root_id = ?", args, start)
        return {path: (m, d) for path, m, d in self.db.conn.execute(sql, args)}

    def _listing_for_detection(
        self, start: bytes, walk: _Walk
    ) -> dict[bytes, tuple[list[bytes], list[bytes]]]:
        """Every folder's entries under the root: the walk's, plus the index's outside it."""
        walked = walk.listing()
        if not start:
            return walked
        listing: dict[bytes, tuple[list[bytes], list[bytes]]] = {}
        lo, hi = paths.prefix_range(start)
        for path, parent in self.db.conn.execute(
            "SELECT path, parent FROM dirs WHERE root_id = ? AND NOT (path >= ? AND path < ?)"
            " AND path != ?",
            [self.root_id, lo, hi, start],
        ):
            listing.setdefault(bytes(path), ([], []))
            if path:
                listing.setdefault(bytes(parent), ([], []))[0].append(paths.name_of(bytes(path)))
        for path, parent in self.db.conn.execute(
            "SELECT path, parent FROM artifacts WHERE root_id = ? AND NOT (path >= ? AND path < ?)",
            [self.root_id, lo, hi],
        ):
            listing.setdefault(bytes(parent), ([], []))[1].append(paths.name_of(bytes(path)))
        if start in listing or start in walked:
            parent = paths.parent_key(start)
            siblings = listing.setdefault(parent, ([], []))[0]
            name = paths.name_of(start)
            if start in walked and name not in siblings:
                siblings.append(name)
        listing.update(walked)
        return listing

    def _listing_from_index(self) -> Listing:
        """Every folder's entries as the index has them (inside the current transaction)."""
        listing: dict[bytes, tuple[list[bytes], list[bytes]]] = {b"": ([], [])}
        for path, parent in self.db.conn.execute(
            "SELECT path, parent FROM dirs WHERE root_id = ? AND path != ''", [self.root_id]
        ):
            listing.setdefault(bytes(path), ([], []))
            listing.setdefault(bytes(parent), ([], []))[0].append(paths.name_of(bytes(path)))
        for path, parent in self.db.conn.execute(
            "SELECT path, parent FROM artifacts WHERE root_id = ?", [self.root_id]
        ):
            listing.setdefault(bytes(parent), ([], []))[1].append(paths.name_of(bytes(path)))
        return listing

    def _hash_cache_lookup(
        self, added: Sequence[_Identity], changed: Sequence[_Entry]
    ) -> dict[tuple[int, int, int, int], str]:
        if not added and not changed:
            return {}
        count = self.db.conn.execute("SELECT count(*) FROM hash_cache").fetchone()[0]
        if not count:
            return {}
        regular = [_Entry._make(e) for e in added if e[5] == "file"]
        regular += [e for e in changed if e.ftype == "file"]
        if len(regular) * 4 > count:
            return {
                (d, i, s, m): h
                for d, i, s, m, h in self.db.conn.execute(
                    "SELECT dev, inode, size, mtime_ns, hash FROM hash_cache"
                )
            }
        found: dict[tuple[int, int, int, int], str] = {}
        for e in regular:
            row = self.db.conn.execute(
                "SELECT hash FROM hash_cache WHERE dev=? AND inode=? AND size=? AND mtime_ns=?",
                [e.dev, e.inode, e.size, e.mtime_ns],
            ).fetchone()
            if row:
                found[(e.dev, e.inode, e.size, e.mtime_ns)] = row[0]
        return found

    def _rows_ahead(
        self, ordered: list[tuple[bytes, list[_Identity]]], names: _FileNames
    ) -> list[_Ahead | None]:
        """While a forked reader detects the runs (``RunSync.detecting``), make the rows of
        the first pieces of a first load, all but their run: ``_insert_rows`` then puts each
        folder's run in front.  Stops once the runs are known, or at ``AHEAD_ROWS`` (these
        rows wait in memory); a piece holding links is left for the insert."""
        made: list[_Ahead | None] = []
        detecting = self.runs.detecting
        count = 0
        for parent, files in ordered:
            if count >= AHEAD_ROWS or not detecting():
                break
            if not _all_files(files):
                made.append(None)
                continue
            made.append((_plain_rows(parent, files, names), *_sums(files)))
            count += len(files)
        return made

    def _write_dirs(
        self, written: list[tuple[bytes, bytes, int, int | None]], removed: list[bytes]
    ) -> None:
        write.write_dirs(self.db.conn, self.root_id, written, removed)

    def _write_artifacts(
        self,
        added: list[_Identity],
        changed: list[tuple[int, _Entry, tuple[object, ...]]],
        removed: list[tuple[object, ...]],
        cache: dict[tuple[int, int, int, int], str],
        links: dict[bytes, str],
        now: float,
        counted: dict[int, list[int]] | None = None,
        ordered: list[tuple[bytes, list[_Identity]]] | None = None,
        names: _FileNames | None = None,
        ahead: list[_Ahead | None] | None = None,
    ) -> None:
        """``counted``: filled with each run's [size, files, newest mtime_ns, oldest
        mtime_ns] over the rows inserted (see ``_run_totals``).  ``ordered``: a first load,
        whose ``added`` are the walk's entries, inserted from its per-folder lists in key
        order (``_in_key_order``), ``ahead`` the rows made while the runs were detected."""
        c = self.db.conn
        run_of = self.runs.run_of_entry
        dirty: set[int | None] = set()
        bulk, rebuild = self._drop_secondary_indexes(len(added))
        # a forked reader runs beside the inserts on another core; a thread would slow them
        forked_reader = self._read_ahead and bulk and self.runs.read_ahead_forked()
        if ordered is not None:
            self._insert_rows(ordered, cache, links, now, dirty, counted, names, ahead)
        else:
            added.sort(key=_path_of)  # in key order, the B-tree indexes grow at their ends
            self._insert_rows(_by_folder(added), cache, links, now, dirty, counted, names)
        history = []
        updates = []
        for art_id, e, old in changed:
            old_hash, old_kind, old_size, old_mtime = old[3], old[4], old[5], old[6]
            if old_hash is not None:
                history.append((self.root_id, e.path, old_hash, old_size, old_mtime, now))
            digest = cache.get((e.dev, e.inode, e.size, e.mtime_ns))
            state = "done" if digest else ("pending" if e.ftype == "file" else "skipped")
            kind = classify(os.fsdecode(e.path))
            run_id = run_of(e.path, e.parent)
            dirty.update((run_id, old[2]))  # type: ignore[arg-type]
            updates.append(
                (
                    run_id,
                    kind if kind != "other" else old_kind,
                    e.ftype,
                    links.get(e.path),
                    e.size,
                    e.mtime_ns,
                    e.inode,
                    e.dev,
                    digest,
                    state,
                    now,
                    art_id,
                )
            )
        dirty.update(r[2] for r in removed)  # type: ignore[misc]
        self.runs.mark_dirty(dirty)
        if self._read_ahead and not forked_reader:
            # From here on SQLite works long without the GIL (index builds where the table
            # held rows, the writes, the commit); a helper started earlier would slow the
            # row-by-row inserts above instead.  Only the runs whose summaries the refresh
            # will read: all of them, read ahead after one changed file, made the command
            # wait for every run's files (15 s over 2,000 runs for one metrics.csv).
            self.runs.read_ahead_dirty()
        for sql in rebuild:
            c.execute(sql)
        write.update_artifacts(c, updates)
        write.add_history(
            c,
            history
            + [
                (self.root_id, key, h, size, mtime, now)
                for _, key, _, h, size, mtime in removed
                if h is not None
            ],
        )
        write.delete_artifacts(c, [r[0] for r in removed])  # type: ignore[misc]

    def _drop_secondary_indexes(self, incoming: int) -> tuple[bool, list[str]]:
        """Drop the artifacts table's triggers, and its secondary indexes unless the table is
        empty, before a bulk load; returns the statements that create them again (run
        inside the same transaction), and whether this is a bulk load at all.

        The triggers only forget folder digests, which the scan writes afresh anyway.  Into
        an empty table the rows come in key order, so every index grows at its end: kept,
        they cost less than building them afterwards (a tenth of the load at 200k and 1M
        rows).  Among rows already there, the indexes would grow in their middles."""
        c = self.db.conn
        if incoming < BULK_ROWS:
            return False, []
        held = c.execute("SELECT count(*) FROM artifacts").fetchone()[0]
        if held >= incoming:
            return False, []
        return True, drop_indexes_and_triggers(c, "artifacts", keep_indexes=not held)

    def _insert_rows(
        self,
        groups: Iterable[tuple[bytes, list[_Identity]]],
        cache: dict[tuple[int, int, int, int], str],
        links: dict[bytes, str],
        now: float,
        dirty: set[int | None],
        counted: dict[int, list[int]] | None,
        names: _FileNames | None = None,
        ahead: list[_Ahead | None] | None = None,
    ) -> None:
        """Insert rows for new files, given as (folder, entries named within it) in key
        order: from a first load's per-folder lists (``_in_key_order``, no list of every
        path built and sorted) or from sorted paths (``_by_folder``).  The common row (a
        regular file not hashed yet) binds only what varies; links and files whose hash is
        cached take the full statement.  ``counted`` (when given) sums each run's rows as
        they are built; rows are made as SQLite takes them, so a million never sit in a
        list.  ``ahead``: the first pieces' rows but their run, as ``_rows_ahead`` made them
        (with ``names``), taken where the common row applies.
        """
        c = self.db.conn
        runs = self.runs
        owned = runs.owned_paths()
        cache_get = cache.get if cache else None
        root_id = self.root_id
        special: list[tuple[object, ...]] = []
        names = names if names is not None else _FileNames()
        name_and_kind = names.name_and_kind

        def row(
            raw: bytes, inode: int, size: int, mtime_ns: int, dev: int, ftype: str, parent: bytes
        ) -> tuple[object, ...] | None:
            """A file off the common path: owned by another run, a link, or hashed."""
            path = parent + b"/" + raw if parent else raw
            run_id = runs.run_of_folder(parent)
            if path in owned:
                run_id = runs.run_of_entry(path, parent)
                dirty.add(run_id)
            if counted is not None and run_id is not None:
                sums = counted.get(run_id)
                if sums is None:
                    counted[run_id] = [size, 1, mtime_ns, mtime_ns]
                else:
                    sums[0] += size
                    sums[1] += 1
                    sums[2] = max(sums[2], mtime_ns)
                    sums[3] = min(sums[3], mtime_ns)
            name, kind = names.get(raw) or name_and_kind(raw, path)
            digest = cache_get((dev, inode, size, mtime_ns)) if cache_get else None
            if ftype != "file" or digest:
                state = "done" if digest else ("pending" if ftype == "file" else "skipped")
                special.append(
                    (
                        root_id,
                        run_id,
                        path,
                        parent,
                        name,
                        kind,
                        ftype,
                        links.get(path),
                        size,
                        mtime_ns,
                        inode,
                        dev,
                        digest,
                        state,
                        now,
                        now,
                    )
                )
                return None
            return (run_id, path, parent, name, kind, size, mtime_ns, inode, dev)

        owned_folders = {paths.parent_key(p) for p in owned}
        made_ahead = ahead if ahead is not None else []

        def count(run_id: int | None, files: int, sizes: int, newest: int, oldest: int) -> None:
            if counted is None or run_id is None or not files:
                return
            sums = counted.get(run_id)
            if sums is None:
                counted[run_id] = [sizes, files, newest, oldest]
            else:
                sums[0] += sizes
                sums[1] += files
                sums[2] = max(sums[2], newest)
                sums[3] = min(sums[3], oldest)

        def folder_rows() -> Iterator[list[tuple[object, ...]]]:
            for index, (parent, files) in enumerate(groups):
                folder_run = runs.run_of_folder(parent)
                dirty.add(folder_run)
                made = None
                if index < len(made_ahead):  # made while the runs were detected
                    made, made_ahead[index] = made_ahead[index], None
                if cache_get or parent in owned_folders or (made is None and not _all_files(files)):
                    picked = [row(*f[:6], parent) for f in files]
                    yield [r for r in picked if r is not None]
                    continue
                if made is None:
                    made = (_plain_rows(parent, files, names), *_sums(files))
                count(folder_run, len(files), *made[1:])
                yield list(map((folder_run,).__add__, made[0]))

        rows = itertools.chain.from_iterable(folder_rows())
        write.insert_new_files(c, root_id, now, rows)
        write.insert_artifacts(c, special)

    def _write_events(
        self,
        start: bytes | tuple[bytes, ...],
        added: list[_Identity],
        changed: list[tuple[int, _Entry, tuple[object, ...]]],
        removed: list[tuple[object, ...]],
        now: float,
    ) -> None:
        c = self.db.conn
        total = len(added) + len(changed) + len(removed)
        if total > EVENT_FLOOD:  # one per folder covered: a reader rereads what they hold
            starts = start if isinstance(start, tuple) else (start,)
            write.add_events(c, now, [(EventKind.SCAN, self.root_id, None, k) for k in starts])
            return
        run_for, rid = self.runs.run_for, self.root_id
        rows: list[write.EventRow] = [(EventKind.ADDED, rid, run_for(e[0]), e[0]) for e in added]
        rows += [(EventKind.CHANGED, rid, run_for(e.path), e.path) for _, e, _ in changed]
        rows += [(EventKind.REMOVED, rid, r[2], r[1]) for r in removed]  # type: ignore[misc]
        write.add_events(c, now, rows)

    def fill_summaries(self, *, limit: int | None = None) -> int:
        """Read the run summaries a ``defer_summaries`` scan (or a migration) left pending,
        in one transaction, at most ``limit`` of them; returns how many runs were filled."""
        with self.runs.in_step(), write_transaction(self.db) as conn:
            return self.runs.fill_pending(conn, self.clock(), limit=limit)

    # -- hashing -------------------------------------------------------------------------

    def hash_pending(
        self,
        *,
        limit: int | None = None,
        should_stop: Callable[[], bool] | None = None,
        progress: ProgressFn | None = None,
        batch: int = 256,
        max_bytes: int | None = None,
    ) -> int:
        """Hash files still 'pending', smallest first, in batches of short transactions.

        Files written in the last ``QUIET_SECONDS`` (``_quiet``) are left pending for a
        later pass.  A result is written only to a row that still holds the version
        hashed: one the watcher changed meanwhile stays pending.  Returns how many rows
        were settled.
        """
        total = self.db.conn.execute(
            "SELECT count(*) FROM artifacts WHERE root_id = ? AND hash_state = 'pending'",
            [self.root_id],
        ).fetchone()[0]
        if limit is not None:
            total = min(total, limit)
        done = 0
        last_id = -1
        last_size = -1
        while done < total:
            if should_stop is not None and should_stop():
                break
            window = self.db.conn.execute(
                "SELECT id, path, kind, dev, inode, size, mtime_ns, last_seen FROM artifacts"
                " WHERE root_id = ? AND hash_state = 'pending' AND (size, id) > (?, ?)"
                " ORDER BY size, id LIMIT ?",
                [self.root_id, last_size, last_id, min(max(batch, HASH_WINDOW), total - done)],
            ).fetchall()
            if not window:
                break
            for start in range(0, len(window), batch):
                if start and should_stop is not None and should_stop():
                    return done
                rows = window[start : start + batch]
                self._before_hashing(rows)
                results: list[write.Settled] = []
                for art_id, key, kind, dev, inode, size, mtime_ns, seen in rows:
                    last_id, last_size = art_id, size
                    identity = Identity(dev, inode, size, mtime_ns)
                    hashed = self._hash_one(bytes(key), kind, identity, max_bytes, seen)
                    if hashed[1] != "pending":
                        results.append((art_id, identity, *hashed))
                with write_transaction(self.db) as c:
                    write.settle_hashes(c, results, self.clock())
                done += len(rows)
                if progress is not None:
                    progress(done, total)
        return done

    def _before_hashing(self, rows: list[tuple[Any, ...]]) -> None:
        """Called with each batch of pending rows (id, path, kind, dev, inode, size,
        mtime_ns, last_seen) before ``_hash_one`` is asked about them one by one."""

    def _quiet(self, expect: Identity, seen: object) -> bool:
        """Whether the version ``expect`` has rested ``QUIET_SECONDS``: by its mtime, or by
        when the index recorded it (``last_seen``, written with each new version).  The
        second needs no trust in the mtime: ``hash_file`` checks the file is still that
        version, so it has not changed since then."""
        now = self.clock()
        if now - expect.mtime_ns / 1e9 >= QUIET_SECONDS:
            return True
        return isinstance(seen, (int, float)) and now - seen >= QUIET_SECONDS

    def _hash_one(
        self,
        key: bytes,
        kind: str,
        expect: Identity,
        max_bytes: int | None,
        seen: object = None,
    ) -> tuple[str | None, str, str, str | None, str | None]:
        """(hash, hash_state, kind, verdict, verdict_reason) for one file; ``seen`` is when
        the index recorded this version (``_quiet``)."""
        if not self._quiet(expect, seen):
            return (None, "pending", kind, None, None)
        result = hash_file(self._abs(key), expect=expect, max_bytes=max_bytes)
        if result.error == "changed":
            return (None, "pending", kind, None, None)
        refined = refine(kind, os.fsdecode(key), result.head) if result.head else kind
        verdict, reason = _verdict_for(self._abs(key), result.head, expect.size)
        if result.digest is None:
            state = "skipped" if result.skipped else "error"
            why = "; ".join(filter(None, (result.error, reason)))  # neither hides the other
            return (None, state, refined, verdict, why or None)
        return (result.digest, "done", refined, verdict, reason)


def _by_folder(added: list[_Identity]) -> Iterator[tuple[bytes, list[_Identity]]]:
    """Entries named by their paths, sorted, as (folder, entries named within it) runs:
    the shape ``_in_key_order`` gives, for ``_insert_rows``."""
    folder = b""
    names: list[_Identity] = []
    for path, inode, size, mtime_ns, dev, ftype in added:
        cut = path.rfind(b"/")
        parent = path[:cut] if cut > 0 else b""
        if parent != folder and names:
            yield folder, names
            names = []
        folder = parent
        names.append((path[cut + 1 :], inode, size, mtime_ns, dev, ftype))
    if names:
        yield folder, names


_Ahead = tuple[list[tuple[object, ...]], int, int, int]
"""A piece's rows made ahead (all but their run), and its files' bytes, newest and oldest
mtime_ns (``_sums``)."""


def _sums(files: list[_Identity]) -> tuple[int, int, int]:
    """The files' bytes, newest and oldest mtime_ns, each found in C."""
    if not files:
        return 0, 0, 0
    mtimes = list(map(_MTIME, files))
    return sum(map(_SIZE, files)), max(mtimes), min(mtimes)


def _plain_rows(
    parent: bytes, files: list[_Identity], names: _FileNames
) -> list[tuple[object, ...]]:
    """The common rows of a folder's plain files, all but their run (``_insert_rows``
    puts it in front): path, parent, printable name, kind, size, mtime_ns, inode, dev."""
    get, name_and_kind = names.get, names.name_and_kind
    prefix = parent + b"/" if parent else b""
    return [
        (
            prefix + raw,
            parent,
            *(get(raw) or name_and_kind(raw, prefix + raw)),
            size,
            mtime_ns,
            inode,
            dev,
        )
        for raw, inode, size, mtime_ns, dev, _ftype in files
    ]


class _FileNames:
    """A file name's printable form and kind, kept for names whose kind the name alone
    decides: the same names recur in every run (hparams.yaml, f12.png)."""

    def __init__(self) -> None:
        self.named: dict[bytes, tuple[str, str]] = {}
        self.get = self.named.get

    def name_and_kind(self, raw: bytes, path: bytes) -> tuple[str, str]:
        if raw.isascii():
            name = raw.decode("ascii")
            if not name.isprintable():
                name = visible(name)
        else:
            name = paths.display(raw)
        dot = raw.rfind(b".")
        kind = SETTLED_EXT_BYTES.get(raw[dot:]) if dot > 0 else None
        if kind is None or raw[:19].lower() == TFEVENTS:
            kind = kind_by_name(os.fsdecode(raw))
            if kind is None:  # its folder decides
                return name, classify_key(path)
            if raw[:19].lower() == TFEVENTS:  # a name of its own: not worth keeping
                return name, kind
        if len(self.named) < NAME_CACHE:
            self.named[raw] = (name, kind)
        return name, kind


def _in_key_order(walk: _Walk) -> Iterator[tuple[bytes, list[_Identity]]]:
    """The walk's files as (folder, files) pieces, in the order of their paths.

    A folder's files and subfolders are merged by name, a subfolder's as its name + "/":
    every path below it starts so, and no file name holds a "/", so this is the bytewise
    order of the paths themselves (``sort`` of them all, as ``_by_folder`` is given)."""
    entries, slices, subdirs = walk.entries, walk.slices, walk.subdirs
    stack: list[bytes | tuple[bytes, list[_Identity]]] = [b""]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            yield item
            continue
        span = slices.get(item)
        if span is None:  # not listed (unreadable, vanished)
            continue
        files = sorted(entries[span[0] : span[1]], key=_NAME)
        keys = sorted(name + b"/" for name in subdirs.get(item, ()))
        if not keys:
            if files:
                yield item, files
            continue
        prefix = item + b"/" if item else b""
        names = list(map(_NAME, files))
        plan: list[bytes | tuple[bytes, list[_Identity]]] = []
        lo = 0
        for key in keys:
            cut = bisect.bisect_left(names, key, lo)
            if cut > lo:
                plan.append((item, files[lo:cut]))
            plan.append(prefix + key[:-1])
            lo = cut
        if lo < len(files):
            plan.append((item, files[lo:]))
        stack.extend(reversed(plan))


def _run_totals(counted: dict[int, list[int]]) -> dict[int, Totals]:
    """Counted sums as the runs' totals, exactly as ``RunSync`` reads them with SQL (in run
    id order, times in seconds)."""
    return {
        run_id: (size, files, newest / 1e9, oldest / 1e9)
        for run_id, (size, files, newest, oldest) in sorted(counted.items())
    }


def drop_indexes_and_triggers(
    conn: sqlite3.Connection, table: str, *, keep_indexes: bool = False
) -> list[str]:
    """Drop a table's triggers and (unless ``keep_indexes``) its secondary indexes; returns
    the statements that create them again."""
    kinds = ("trigger",) if keep_indexes else ("index", "trigger")
    ddl = conn.execute(
        f"SELECT type, name, sql FROM sqlite_master WHERE type IN ({', '.join('?' * len(kinds))})"
        " AND tbl_name = ? AND sql IS NOT NULL",
        [*kinds, table],
    ).fetchall()
    for kind, name, _sql in ddl:
        conn.execute(f"DROP {kind.upper()} {sqlite_utils.db.quote_identifier(name)}")
    return [sql for _kind, _name, sql in ddl]


def _verdict_for(
    path: bytes, head: bytes, size: int | None = None
) -> tuple[str | None, str | None]:
    """The safety verdict of a model file, from static inspection (never unpickled): the
    files ``artlens scan`` inspects (a model name, or model content under any name and
    kind, sniffed from the ``head`` the hasher read), with its verdict."""
    from store.inspect import inspect_file, is_model_candidate
    from store.integrity import model_by_content

    name = os.fsdecode(paths.name_of(path))
    # an HDF5 superblock past the head: h5py opens the file whatever its name and first bytes
    if (
        not is_model_candidate(name)
        and not model_by_content(head, size)
        and not (size is not None and _hdf5_inside(path, head, size))
    ):
        return None, None
    try:
        found = inspect_file(os.fsdecode(path))
    except Exception as exc:  # inspection must never take the indexer down
        return "unknown", f"inspection failed: {type(exc).__name__}"
    if found.verdict == "n/a":
        return None, None
    reason = "; ".join(found.reasons[:3]) or found.integrity
    return found.verdict, reason


def _hdf5_inside(path: bytes, head: bytes, size: int) -> bool:
    """Whether h5py opens the file at ``path`` (``size`` bytes, ``head`` its first ones,
    as the hasher read them) as HDF5, its superblock behind a user block: what
    ``artlens scan`` asks ``model_by_content`` with positioned reads.  The file is opened
    only for offsets past the head; one that cannot be read now is left to the inspection,
    which says why."""
    from store.inspect import hdf5_superblock_at
    from store.safefile import NotRegularFileError, open_regular

    fd = -1

    def read_at(at: int, count: int) -> bytes:
        nonlocal fd
        if at + count <= len(head):
            return head[at : at + count]
        if fd < 0:
            fd, _ = open_regular(path)
        return os.pread(fd, count, at)

    try:
        return hdf5_superblock_at(read_at, size, head) is not None
    except NotRegularFileError:
        return False
    except OSError:
        return True
    finally:
        if fd >= 0:
            os.close(fd)


def _os_reason(exc: OSError) -> str:
    import errno

    return {
        errno.EACCES: "unreadable folder",
        errno.EPERM: "unreadable folder",
        errno.ELOOP: "symlink loop",
        errno.ENOENT: "vanished",
        errno.ENOTDIR: "vanished",
        errno.EIO: "I/O error",
    }.get(exc.errno or 0, "error")


def below_any(places: Iterable[bytes]) -> Callable[[bytes], bool]:
    """A test of "``key`` is one of ``places`` or lies below one", walking up from the key:
    a folder its reader may list but not enter names every entry in it, and a pass over
    them all per row would make a scan quadratic."""
    marked = set(places)
    if not marked:
        return lambda key: False
    if b"" in marked:
        return lambda key: True

    def shielded(key: bytes) -> bool:
        while key:
            if key in marked:
                return True
            cut = key.rfind(b"/")
            key = key[:cut] if cut > 0 else b""
        return False

    return shielded


def _unread(exc: OSError) -> str:
    """Why a folder or entry could not be read, as the system says it: permission denied."""
    return (exc.strerror or type(exc).__name__).lower()


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "skipped FIFO"
    if stat.S_ISSOCK(mode):
        return "skipped socket"
    return "skipped device"
