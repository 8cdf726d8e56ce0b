"""Where the bytes are: sizes per root, experiment and run (largest first, like ncdu), and
duplicate files by content hash with what removing the extra copies would free.

Sizes are apparent sizes (what the files say); ``disk`` is what they take on disk
(``st_blocks * 512``, hard links once), read with ``lstat`` at the time of asking: a sparse
1 TiB file may take nothing, a small file a whole block.  Every total says what the scans
could not read (``RootUsage.unreadable``), and a file reached through two roots (one inside
the other, a symlink or bind mount to the same folder, a hard link) is one file: its
(device, inode) is found in each root's measuring pass, so totals across roots and
duplicate groups count it once."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlite_utils

from store import paths
from store.index.query import UnreadableIndex, UnreadableRow, unreadable_places
from store.paths import key, unkey
from store.retention.candidates import artifacts_source


@dataclass
class UsageRow:
    label: str
    """Root path, experiment name or run path (printable via ``store.paths.display``)."""
    size: int
    files: int
    disk: int | None = None
    """Bytes on disk (``st_blocks * 512``), None when not measured."""
    unreadable: int = 0
    """Places in it the scans could not read: its totals leave out what they hold."""


MAX_DISK_FILES = 5_000_000
"""Above this many files in a root, on-disk size is not measured (None)."""


@dataclass
class RootUsage:
    root: str
    size: int
    files: int
    outside_runs: int
    """Bytes in artifacts no run owns."""
    disk: int | None = None
    """Bytes on disk of everything indexed under the root (None when not measured)."""
    unmeasured: int = 0
    """Indexed files ``disk`` leaves out: lstat failed (gone since the scan, or not
    readable to this user)."""
    experiments: list[UsageRow] = field(default_factory=list)
    runs: list[UsageRow] = field(default_factory=list)
    unreadable: list[UnreadableRow] | None = field(default_factory=list)
    """What the root's scans could not read (its totals leave out what lies there); None
    for an index written before artlens recorded it."""
    shared: dict[str, tuple[int, int]] = field(default_factory=dict)
    """root -> (files, bytes) of this root's files that an earlier root in the list holds
    too (the same device and inode): counted under both, once in ``across_roots``."""


@dataclass
class AcrossRoots:
    """Every listed root's files together, each file once."""

    size: int
    files: int
    unchecked: list[str]
    """Roots whose files were not compared with the others' (a bucket, a root too large to
    measure): a file they share with another root is counted twice."""


@dataclass
class DuplicateGroup:
    hash: str
    size: int
    copies: list[tuple[str, str]]
    """(root, relative path) of every copy: one per file (device and inode)."""
    links: list[tuple[str, str]] = field(default_factory=list)
    """Other names of those same files (hard links, a root inside another): not copies,
    deleting them frees nothing."""

    @property
    def reclaimable(self) -> int:
        """What deleting all but one copy would free."""
        return self.size * (len(self.copies) - 1)


def _root_ids(db: sqlite_utils.Database, roots: Iterable[str] | None) -> list[tuple[int, str]]:
    rows = db.conn.execute("SELECT id, path FROM roots ORDER BY path").fetchall()
    found = [(int(root_id), unkey(bytes(path))) for root_id, path in rows]
    if roots is None:
        return found
    wanted = {bytes(key(r)) for r in roots}
    return [(root_id, path) for root_id, path in found if bytes(key(path)) in wanted]


def _on_disk(
    db: sqlite_utils.Database, root_id: int, root: str, count: int | None = None
) -> tuple[int, dict[int | None, int]] | None:
    """Bytes on disk of a root's indexed files, in all and per run id (lstat, never
    following links; each inode counted once); None for a root too large to measure, and
    for a bucket's (an object takes its size; its URL is no path of this machine)."""
    measured = _measure(db, root_id, root, count, {}, 1)
    return None if measured is None else (measured[0], measured[1])


def _measure(
    db: sqlite_utils.Database,
    root_id: int,
    root: str,
    count: int | None,
    seen: dict[tuple[int, int], int],
    bit: int,
) -> tuple[int, dict[int | None, int], dict[int, list[int]], int] | None:
    """``_on_disk``, which files earlier roots hold too, and how many files lstat could
    not measure.  ``seen``: (device, inode) -> the ``bit`` of every root measured so far
    that holds it, shared by the roots of one ``disk_usage``; the third result is, per
    ``bit`` of an earlier root, the [files, bytes] of this root that it holds too."""
    from store.root import is_url

    if is_url(root):
        return None
    if count is None:  # the root's file count, unless the caller has it already
        count = db.conn.execute(
            "SELECT count(*) FROM artifacts WHERE root_id = ?", (root_id,)
        ).fetchone()[0]
    if count > MAX_DISK_FILES:
        return None
    base = os.fsencode(root)
    total = 0
    per_run: dict[int | None, int] = {}
    shared: dict[int, list[int]] = {}
    failed = 0
    # the first root measured shares nothing with an earlier one: its sizes are not read
    sizes = "size" if seen else "0"
    rows = db.conn.execute(
        f"SELECT run_id, path, {sizes} FROM {artifacts_source(db.conn)} WHERE root_id = ?",
        (root_id,),
    )
    for run_id, path, size in rows:
        try:
            st = os.lstat(base + b"/" + bytes(path))
        except OSError:
            failed += 1
            continue
        ident = (st.st_dev, st.st_ino)
        held = seen.get(ident, 0)
        if held & bit:
            continue
        seen[ident] = held | bit
        if held:  # an earlier root holds this very file
            sums = shared.setdefault(held & -held, [0, 0])
            sums[0] += 1
            sums[1] += size if isinstance(size, int) else 0
        blocks = st.st_blocks * 512
        total += blocks
        per_run[run_id] = per_run.get(run_id, 0) + blocks
    return total, per_run, shared, failed


def disk_usage(
    db: sqlite_utils.Database, roots: Iterable[str] | None = None, *, on_disk: bool = True
) -> list[RootUsage]:
    """Sizes from the index per root, per experiment and per run, largest first; with
    ``on_disk``, also what they take on disk (an lstat per file), and which files roots
    share (``RootUsage.shared``).  Each total counts what the scans could not read as
    unreadable places, never as nothing."""
    result: list[RootUsage] = []
    source = artifacts_source(db.conn)
    places = unreadable_places(db.conn)
    seen: dict[tuple[int, int], int] = {}
    chosen = _root_ids(db, roots)
    for index, (root_id, root) in enumerate(chosen):
        # one pass for the root's bytes and files, by run: the totals, what no run owns
        # and each run's share (three passes and a join per run took 1.1 s at 1M files)
        by_run: dict[int | None, tuple[int, int]] = {
            run_id: (int(run_size), int(run_files))
            for run_id, run_size, run_files in db.conn.execute(
                f"SELECT run_id, coalesce(sum(size), 0), count(*) FROM {source} "
                "WHERE root_id = ? GROUP BY run_id",
                (root_id,),
            )
        }
        size = sum(run_size for run_size, _ in by_run.values())
        files = sum(run_files for _, run_files in by_run.values())
        outside = by_run.get(None, (0, 0))[0]
        measured = _measure(db, root_id, root, files, seen, 1 << index) if on_disk else None
        unread = None if places is None else places.get(root_id, [])
        per_run = [
            (run_id, bytes(path), experiment, *by_run.get(run_id, (0, 0)))
            for run_id, path, experiment in db.conn.execute(
                "SELECT id, path, experiment FROM runs WHERE root_id = ?", (root_id,)
            )
        ]
        usage = RootUsage(root, int(size), int(files), int(outside), unreadable=unread)
        if measured is not None:
            usage.disk, usage.unmeasured = measured[0], measured[3]
            usage.shared = {
                chosen[first.bit_length() - 1][1]: (n, b) for first, (n, b) in measured[2].items()
            }
        experiments: dict[str, UsageRow] = {}
        hiding: dict[str, set[bytes]] = {}
        places_of = UnreadableIndex(unread or [])
        for run_id, path, experiment, run_size, run_files in per_run:
            run_disk = None if measured is None else measured[1].get(run_id, 0)
            hidden = {p.path for p in places_of.touching([path])}
            usage.runs.append(
                UsageRow(unkey(path) or ".", int(run_size), int(run_files), run_disk, len(hidden))
            )
            label = experiment or "(no experiment)"
            row = experiments.setdefault(label, UsageRow(label, 0, 0, 0 if measured else None))
            row.size += int(run_size)
            row.files += int(run_files)
            hiding.setdefault(label, set()).update(hidden)
            row.unreadable = len(hiding[label])
            if row.disk is not None and run_disk is not None:
                row.disk += run_disk
        usage.runs.sort(key=lambda r: (-r.size, r.label))
        usage.experiments = sorted(experiments.values(), key=lambda r: (-r.size, r.label))
        result.append(usage)
    result.sort(key=lambda u: (-u.size, u.root))
    return result


def across_roots(usage: Iterable[RootUsage]) -> AcrossRoots:
    """The roots' files together, each file once: a file ``disk_usage`` found under two
    roots counts under the first."""
    from store.root import is_url

    listed = list(usage)
    size = sum(u.size for u in listed) - sum(b for u in listed for _, b in u.shared.values())
    files = sum(u.files for u in listed) - sum(n for u in listed for n, _ in u.shared.values())
    unchecked = [u.root for u in listed if u.disk is None and not is_url(u.root)]
    return AcrossRoots(size, files, unchecked if len(listed) > 1 else [])


def overlap_note(inner: str, outer: str) -> str:
    """How two roots that share files relate: one inside the other, or the same files
    reached another way (a symlink, a bind mount, hard links)."""
    a, b = os.path.realpath(inner), os.path.realpath(outer)
    if paths.under(os.fsencode(a), os.fsencode(b)):
        return f"{paths.display(inner)} lies inside {paths.display(outer)}"
    if paths.under(os.fsencode(b), os.fsencode(a)):
        return f"{paths.display(outer)} lies inside {paths.display(inner)}"
    return f"{paths.display(inner)} and {paths.display(outer)} hold the same files"


def duplicates(
    db: sqlite_utils.Database, roots: Iterable[str] | None = None, *, min_size: int = 1
) -> list[DuplicateGroup]:
    """Files with the same content hash (e.g. one checkpoint copied into many runs),
    most reclaimable first.  Only hashed files count; symlinks are not copies, and neither
    are two names of one file (the same device and inode: a hard link, or a root inside
    another), which are its ``links``."""
    ids = dict(_root_ids(db, roots))
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = db.conn.execute(
        f"SELECT hash, size, root_id, path, dev, inode FROM artifacts WHERE hash IN ("
        f"  SELECT hash FROM artifacts WHERE hash IS NOT NULL AND ftype = 'file' AND size >= ? "
        f"  AND root_id IN ({marks}) GROUP BY hash HAVING count(*) > 1) "
        f"AND ftype = 'file' AND root_id IN ({marks}) ORDER BY hash, root_id, path",
        (min_size, *ids, *ids),
    ).fetchall()
    groups: dict[str, DuplicateGroup] = {}
    files: dict[str, set[tuple[object, object]]] = {}
    for digest, size, root_id, path, dev, inode in rows:
        group = groups.setdefault(digest, DuplicateGroup(digest, int(size), []))
        known = files.setdefault(digest, set())
        where = (ids[root_id], unkey(bytes(path)))
        if (dev, inode) in known:
            group.links.append(where)
        else:
            known.add((dev, inode))
            group.copies.append(where)
    found = [g for g in groups.values() if len(g.copies) > 1]
    return sorted(found, key=lambda g: (-g.reclaimable, g.hash))
