"""Disk usage one level at a time, as ncdu browses it: roots, a root's experiments, an
experiment's runs, then folders and files down from a run's folder.

Apparent sizes come from the index (what the files say).  What they take on disk
(``st_blocks * 512``, each inode once) is not in the index: it is measured with ``lstat`` when
asked (``measure_*``), bounded by a file count, so a sparse 5 GiB file shows as ~0 on disk
and a root too big to measure says "not measured" rather than guessing.

Trashing from this view builds a ``Plan`` of one removal (``plan_removal``) that goes
through the same confirm and ``apply_plan`` path as retention's own plans.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import sqlite_utils

from store import paths
from store.index.query import UnreadableIndex, UnreadableRow, unreadable_places
from store.paths import key, prefix_range, unkey
from store.retention.candidates import Candidate, Member
from store.retention.plan import (
    FsTotals,
    Pins,
    PinSource,
    Plan,
    RootTotals,
    RunTotals,
    _account_fs,
    _Nesting,
    _pins_for,
    disk_freed,
)
from store.retention.policy import Policy, PolicyError, load_policy
from store.retention.usage import MAX_DISK_FILES, _on_disk

MAX_FOLDER_DISK_FILES = 500_000
"""Above this many files under one folder, its entries' on-disk sizes are not measured."""
MAX_ENTRIES = 5_000
"""Entries listed per level (largest first); the rest are summed into one "more" row."""
NO_EXPERIMENT = "(no experiment)"
CHOSEN = "chosen in the disk usage view"


@dataclass(frozen=True)
class Level:
    """Where the view is: ``kind`` is roots, root, experiment or folder."""

    kind: str
    root: str = ""
    experiment: str | None = None
    folder: str = ""
    """Root-relative folder ('' for the root itself), for the folder level."""
    run_id: int | None = None
    """The run whose folder this level started from, if any."""


@dataclass
class Entry:
    """One row of a level: what it is, its sizes, and where entering it leads."""

    kind: str
    """root, experiment, run, folder, file, outside (files no run owns) or more."""
    label: str
    """Raw name (root path, experiment, run folder, file name); display it escaped."""
    size: int
    files: int
    disk: int | None = None
    """Bytes on disk; None until measured or when too many files to measure."""
    root: str = ""
    rel: str | None = None
    """Root-relative path of a run, folder or file."""
    run_id: int | None = None
    live: bool = False
    unreadable: int = 0
    """Places in (or above) it the scans could not read: its totals leave out what they
    hold (``note_unread``)."""

    @property
    def target(self) -> Level | None:
        """The level entering this entry shows, None for a file."""
        if self.kind == "root":
            return Level("root", self.root)
        if self.kind == "experiment":
            return Level("experiment", self.root, self.label)
        if self.kind in ("run", "folder") and self.rel is not None:
            return Level("folder", self.root, folder=self.rel, run_id=self.run_id)
        return None


def _root_id(db: sqlite_utils.Database, root: str) -> int | None:
    row = db.conn.execute("SELECT id FROM roots WHERE path = ?", (key(root),)).fetchone()
    return None if row is None else int(row[0])


def _largest_first(entries: list[Entry]) -> list[Entry]:
    entries.sort(key=lambda e: (-e.size, e.label))
    if len(entries) <= MAX_ENTRIES:
        return entries
    rest = entries[MAX_ENTRIES:]
    more = Entry("more", f"{len(rest)} more", sum(e.size for e in rest), sum(e.files for e in rest))
    return [*entries[:MAX_ENTRIES], more]


def list_level(db: sqlite_utils.Database, level: Level) -> list[Entry]:
    """The entries of ``level``, largest first, apparent sizes only (quick: SQL)."""
    if level.kind == "roots":
        rows = db.conn.execute(
            "SELECT r.path, coalesce(sum(a.size), 0), count(a.id) FROM roots r "
            "LEFT JOIN artifacts a ON a.root_id = r.id GROUP BY r.id"
        ).fetchall()
        return _largest_first(
            [
                Entry("root", unkey(bytes(p)), int(s), int(n), root=unkey(bytes(p)))
                for p, s, n in rows
            ]
        )
    root_id = _root_id(db, level.root)
    if root_id is None:
        return []
    if level.kind == "root":
        rows = db.conn.execute(
            "SELECT r.experiment, coalesce(sum(a.size), 0), count(a.id) FROM runs r "
            "LEFT JOIN artifacts a ON a.run_id = r.id WHERE r.root_id = ? GROUP BY r.experiment",
            (root_id,),
        ).fetchall()
        entries = [
            Entry(
                "experiment",
                exp if exp is not None else NO_EXPERIMENT,
                int(s),
                int(n),
                root=level.root,
            )
            for exp, s, n in rows
        ]
        size, files = db.conn.execute(
            "SELECT coalesce(sum(size), 0), count(*) FROM artifacts "
            "WHERE root_id = ? AND run_id IS NULL",
            (root_id,),
        ).fetchone()
        if files:
            entries.append(
                Entry("outside", "(outside any run)", int(size), int(files), root=level.root)
            )
        return _largest_first(entries)
    if level.kind == "experiment":
        if level.experiment == NO_EXPERIMENT:
            where, args = "r.experiment IS NULL", (root_id,)
        else:
            where, args = "r.experiment = ?", (root_id, level.experiment)  # type: ignore[assignment]
        rows = db.conn.execute(
            "SELECT r.id, r.path, r.status, coalesce(sum(a.size), 0), count(a.id) FROM runs r "
            f"LEFT JOIN artifacts a ON a.run_id = r.id WHERE r.root_id = ? AND {where} "
            "GROUP BY r.id",
            args,
        ).fetchall()
        return _largest_first(
            [
                Entry(
                    "run",
                    unkey(bytes(p)) or ".",
                    int(s),
                    int(n),
                    root=level.root,
                    rel=unkey(bytes(p)),
                    run_id=int(i),
                    live=status == "live",
                )
                for i, p, status, s, n in rows
            ]
        )
    return _folder_entries(db, root_id, level)


def _folder_entries(db: sqlite_utils.Database, root_id: int, level: Level) -> list[Entry]:
    """Children of a folder: files directly in it, and subfolders with their totals."""
    folder = key(level.folder)
    lo, hi = prefix_range(folder)
    start = len(lo) + 1  # SQLite's substr counts from 1
    rows = db.conn.execute(
        "SELECT head, deeper, sum(size), count(*), min(run_id), max(run_id) FROM ("
        "  SELECT CASE WHEN i = 0 THEN rest ELSE substr(rest, 1, i - 1) END AS head,"
        "         i > 0 AS deeper, size, run_id FROM ("
        "    SELECT substr(path, ?) AS rest, instr(substr(path, ?), X'2F') AS i, size, run_id"
        "    FROM artifacts WHERE root_id = ? AND path >= ? AND path < ?)"
        ") GROUP BY head, deeper",
        (start, start, root_id, lo, hi),
    ).fetchall()
    entries: list[Entry] = []
    for head, deeper, size, files, low_run, high_run in rows:
        name = unkey(bytes(head))
        rel = f"{level.folder}/{name}" if level.folder else name
        run_id = int(low_run) if low_run is not None and low_run == high_run else None
        entries.append(
            Entry(
                "folder" if deeper else "file",
                name,
                int(size),
                int(files),
                root=level.root,
                rel=rel,
                run_id=run_id if run_id is not None else level.run_id,
            )
        )
    return _largest_first(entries)


# -- what the totals leave out -------------------------------------------------------------

SHOWN_UNREAD = 3
"""Places a level's note names; the rest are counted."""
NOT_RECORDED = (
    "what the scans could not read is not recorded in this index yet: "
    "`artlens index ROOT` records it"
)


def unread_note(places: Sequence[UnreadableRow], base: bytes = b"") -> str:
    """What a total leaves out, worded as ``artlens du`` words it (``1 folder could not be
    read: out (permission denied); what they hold counts as last seen, or not at all``),
    the places named relative to ``base``; '' when there is none."""
    if not places:
        return ""
    folders = sum(1 for p in places if p.kind == "folder")
    entries = len(places) - folders
    counted = " and ".join(
        [_count(folders, "folder")] * bool(folders) + [_count(entries, "entry")] * bool(entries)
    )
    named = ", ".join(p.describe(base) for p in places[:SHOWN_UNREAD])
    more = len(places) - SHOWN_UNREAD
    named += f" +{more} more" if more > 0 else ""
    return (
        f"{counted} could not be read: {named}; what they hold counts as last seen, or not at all"
    )


def _count(n: int, noun: str) -> str:
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun[:-1]}ies" if noun.endswith("y") else f"{n} {noun}s"


def note_unread(db: sqlite_utils.Database, level: Level, entries: Sequence[Entry]) -> str:
    """Set each entry's ``unreadable`` (the places its total leaves out) and return the
    note for the level's total ('' when it leaves nothing out, ``NOT_RECORDED`` for an
    index that does not record it).  One read of the unreadable places per level."""
    if level.kind == "roots":
        every = unreadable_places(db.conn)
        if every is None:
            return NOT_RECORDED
        ids = {unkey(bytes(p)): int(i) for i, p in db.conn.execute("SELECT id, path FROM roots")}
        found: list[UnreadableRow] = []
        for entry in entries:
            places = every.get(ids.get(entry.root, -1), [])
            entry.unreadable = len(places)
            prefix = key(entry.root)  # named from the root: the level holds several
            found += [replace(p, path=prefix + b"/" + p.path if p.path else prefix) for p in places]
        return unread_note(found)
    root_id = _root_id(db, level.root)
    if root_id is None:
        return ""
    recorded = unreadable_places(db.conn, root_id)
    if recorded is None:
        return NOT_RECORDED
    index = UnreadableIndex(recorded.get(root_id, []))
    if not index.places:
        return ""
    if level.kind == "root":
        _note_experiments(db, root_id, index, entries)
        return unread_note(index.places)
    if level.kind == "experiment":
        touched: dict[bytes, UnreadableRow] = {}
        for entry in entries:
            if entry.kind == "run" and entry.rel is not None:
                hidden = index.touching([key(entry.rel)])
                entry.unreadable = len(hidden)
                touched.update((p.path, p) for p in hidden)
        return unread_note([touched[k] for k in sorted(touched)])
    folder = key(level.folder)
    for entry in entries:
        if entry.kind in ("folder", "file") and entry.rel is not None:
            entry.unreadable = len(index.touching([key(entry.rel)]))
    return unread_note(index.touching([folder]), folder)


def _note_experiments(
    db: sqlite_utils.Database, root_id: int, index: UnreadableIndex, entries: Sequence[Entry]
) -> None:
    """A root level's entries: per experiment the places its runs' totals leave out, and
    for the files outside any run the places no run folder holds."""
    run_paths: dict[str, list[bytes]] = {}
    for path, experiment in db.conn.execute(
        "SELECT path, experiment FROM runs WHERE root_id = ?", (root_id,)
    ):
        label = experiment if experiment is not None else NO_EXPERIMENT
        run_paths.setdefault(label, []).append(bytes(path))
    every_run = {p for found in run_paths.values() for p in found}
    for entry in entries:
        if entry.kind == "experiment":
            entry.unreadable = len(index.touching(run_paths.get(entry.label, [])))
        elif entry.kind == "outside":
            entry.unreadable = outside_runs(index.places, every_run)


def outside_runs(places: Iterable[UnreadableRow], run_paths: set[bytes]) -> int:
    """How many of ``places`` can hide files no run owns: those in no run's folder."""

    def in_a_run(place: bytes) -> bool:
        up = place
        while True:
            if up in run_paths:
                return True
            if not up:
                return False
            up = paths.parent_key(up)

    return sum(1 for p in places if not in_a_run(p.path))


# -- on disk -------------------------------------------------------------------------------


def measure_root(db: sqlite_utils.Database, root: str) -> tuple[int, dict[int | None, int]] | None:
    """Bytes on disk of a root, in all and per run id; None when it holds too many files."""
    root_id = _root_id(db, root)
    if root_id is None:
        return None
    return _on_disk(db, root_id, root)


def measure_folder(db: sqlite_utils.Database, level: Level) -> dict[str, int] | None:
    """Bytes on disk per entry name of a folder level (lstat, never following links, each
    inode once); None when the folder holds more than ``MAX_FOLDER_DISK_FILES`` files."""
    root_id = _root_id(db, level.root)
    if root_id is None:
        return None
    lo, hi = prefix_range(key(level.folder))
    count = db.conn.execute(
        "SELECT count(*) FROM artifacts WHERE root_id = ? AND path >= ? AND path < ?",
        (root_id, lo, hi),
    ).fetchone()[0]
    if count > min(MAX_FOLDER_DISK_FILES, MAX_DISK_FILES):
        return None
    base = os.fsencode(level.root)
    seen: set[tuple[int, int]] = set()
    per_name: dict[str, int] = {}
    rows = db.conn.execute(
        "SELECT path FROM artifacts WHERE root_id = ? AND path >= ? AND path < ?",
        (root_id, lo, hi),
    )
    for (path,) in rows:
        blob = bytes(path)
        name = unkey(blob[len(lo) :].split(b"/", 1)[0])
        try:
            st = os.lstat(base + b"/" + blob)
        except OSError:
            continue
        ident = (st.st_dev, st.st_ino)
        if ident in seen:
            continue
        seen.add(ident)
        per_name[name] = per_name.get(name, 0) + st.st_blocks * 512
    return per_name


def fill_disk(
    entries: Iterable[Entry],
    level: Level,
    *,
    per_root: dict[str, tuple[int, dict[int | None, int]] | None],
    per_name: dict[str, int] | None = None,
    experiments: dict[int, str | None] | None = None,
) -> None:
    """Set each entry's ``disk`` from what was measured (None stays "not measured")."""
    for entry in entries:
        if entry.kind == "more":
            continue
        if level.kind == "folder":
            entry.disk = None if per_name is None else per_name.get(entry.label, 0)
            continue
        measured = per_root.get(entry.root)
        if measured is None:
            continue
        total, by_run = measured
        if entry.kind == "root":
            entry.disk = total
        elif entry.kind == "run":
            entry.disk = by_run.get(entry.run_id, 0)
        elif entry.kind == "outside":
            entry.disk = by_run.get(None, 0)
        elif entry.kind == "experiment" and experiments is not None:
            wanted = None if entry.label == NO_EXPERIMENT else entry.label
            entry.disk = sum(
                b
                for run_id, b in by_run.items()
                if run_id is not None and experiments.get(run_id) == wanted
            )


def run_experiments(db: sqlite_utils.Database, root: str) -> dict[int, str | None]:
    """Run id -> experiment, for summing on-disk sizes per experiment."""
    root_id = _root_id(db, root)
    if root_id is None:
        return {}
    rows = db.conn.execute("SELECT id, experiment FROM runs WHERE root_id = ?", (root_id,))
    return {int(i): e for i, e in rows}


# -- trash through a plan ------------------------------------------------------------------


class RemovalRefused(Exception):
    """Why this entry cannot be trashed (pinned, the root itself, not indexed)."""


def plan_removal(db: sqlite_utils.Database, root: str, rel: str, pins: Pins | None = None) -> Plan:
    """A plan that removes exactly ``rel`` (a file, or a folder with every indexed file in
    it) under ``root``, as the index saw them: ``apply_plan`` re-checks each against disk
    and skips anything that changed since.  Pinned paths, inside or above it, refuse."""
    if not rel or rel in (".", ".."):
        raise RemovalRefused("the root itself cannot be trashed; choose a run or folder in it")
    root_id = _root_id(db, root)
    if root_id is None:
        raise RemovalRefused(f"not indexed: {root}")
    if pins is not None and pins.covers(rel):
        raise RemovalRefused(f"{rel} is pinned (or a folder holding it is)")
    for inner_root, inner_rel in _Nesting(db).inner(root):
        if inner_rel == rel or inner_rel.startswith(rel.rstrip("/") + "/"):
            raise RemovalRefused(
                f"{rel} is or holds the indexed root {paths.display(inner_root)}: "
                "choose what to trash inside that root"
            )
    rel_key = key(rel)
    lo, hi = prefix_range(rel_key)
    rows = db.conn.execute(
        "SELECT path, size, mtime_ns, inode, ftype, hash, run_id FROM artifacts "
        "WHERE root_id = ? AND (path = ? OR (path >= ? AND path < ?))",
        (root_id, rel_key, lo, hi),
    ).fetchall()
    if not rows:
        raise RemovalRefused(f"{rel}: nothing indexed there")
    exact = [r for r in rows if bytes(r[0]) == rel_key]
    run_ids = {r[6] for r in rows}
    run_id = next(iter(run_ids)) if len(run_ids) == 1 else None
    if exact:
        _, size, mtime_ns, inode, ftype, digest, _ = exact[0]
        unit = Candidate(
            root,
            run_id or 0,
            "",
            "",
            False,
            rel,
            False,
            int(size),
            int(mtime_ns),
            int(inode),
            str(ftype),
            digest,
        )
    else:
        members = [
            Member(unkey(bytes(p)), int(s), int(m), int(i), str(f), d)
            for p, s, m, i, f, d, _ in rows
        ]
        if pins is not None:
            for member in members:
                if pins.covers(member.path):
                    raise RemovalRefused(f"{member.path} inside it is pinned")
        unit = Candidate(
            root,
            run_id or 0,
            "",
            "",
            False,
            rel,
            True,
            sum(m.size for m in members),
            max(m.mtime_ns for m in members),
            0,
            "dir",
            None,
            members=members,
        )
    if run_id is not None:
        row = db.conn.execute(
            "SELECT path, framework, status FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is not None:
            unit.run_path = unkey(bytes(row[0]))
            unit.framework = str(row[1])
            unit.live = row[2] == "live"
    unit.keep = False
    unit.reasons = [CHOSEN]
    now = time.time()
    plan = Plan(
        f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}-{uuid.uuid4().hex[:8]}",
        now,
        now,
        [unit],
    )
    plan.runs.append(RunTotals(root, unit.run_path, removed=1, bytes_removed=unit.size))
    plan.roots.append(RootTotals(root, CHOSEN, removed=1, bytes_removed=unit.size))
    fs_by_dev: dict[int, FsTotals] = {}
    _account_fs(fs_by_dev, root, unit.size, disk_freed(root, [unit]))
    plan.filesystems = list(fs_by_dev.values())
    return plan


def pins_of(root: str, source: PinSource | None) -> Pins:
    """The pins that protect paths under ``root``: the user's, and the root policy's globs."""
    try:
        policy = load_policy(Path(root))
    except PolicyError:
        policy = Policy()
    return _pins_for(root, source, policy)
