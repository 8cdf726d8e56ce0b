"""The change feed: typed event kinds, reading them, and folding a batch into a ``Delta``.

Every commit that changes what a view shows writes events (``store.index.write`` does, and
a mirror stores the ones its host sent); a reader polls ``events_since`` and folds the batch
into what it must reload, so no screen interprets kind strings of its own.  The stored kind
is the enum's value: the feed JSON and mirrors carry the same strings as before.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from store import paths

if TYPE_CHECKING:
    import sqlite_utils


class EventKind(str, enum.Enum):
    """What an event says happened (the ``events.kind`` column)."""

    ADDED = "added"
    """A file row appeared (scan, or a restore from the trash)."""
    CHANGED = "changed"
    """A file row's identity changed."""
    REMOVED = "removed"
    """A file row went (scan, or a move to the trash)."""
    VERDICT = "verdict"
    """Hashing found a file dangerous or corrupt."""
    RUN_ADDED = "run_added"
    RUN_CHANGED = "run_changed"
    RUN_REMOVED = "run_removed"
    SCAN = "scan"
    """Too many changes in one pass: everything at and below ``path`` may have changed
    (the whole root for ``b""``; below a folder, the runs there or above it)."""
    TRASH = "trash"
    """A root's trash changed: the item at ``path`` went in, came back or was purged (its
    files' rows come and go with ``removed`` and ``added`` events of their own); with no
    ``path``, the watcher saw the trash folder change (another process's work)."""


_KINDS = {k.value: k for k in EventKind}
FILE_KINDS = frozenset({EventKind.ADDED, EventKind.CHANGED, EventKind.REMOVED})
RUN_KINDS = frozenset({EventKind.RUN_ADDED, EventKind.RUN_CHANGED, EventKind.RUN_REMOVED})
REMOVALS = frozenset({EventKind.REMOVED, EventKind.RUN_REMOVED})
"""Kinds after which folders above ``path`` may have gone too (they write no event)."""


def kind_of(text: str) -> EventKind | None:
    """The kind stored as ``text``; None for one this version does not know (a mirror of a
    newer host's index)."""
    return _KINDS.get(text)


@dataclass(frozen=True)
class Event:
    id: int
    ts: float
    kind: EventKind | None
    """None: a kind this version does not know (``raw_kind`` says which)."""
    root_id: int | None
    run_id: int | None
    path: bytes | None
    raw_kind: str = ""


def events_since(db: sqlite_utils.Database, after: int, *, limit: int = 5000) -> list[Event]:
    """The change feed: events with id > ``after``, oldest first."""
    return [
        Event(r[0], r[1], kind_of(r[2]), r[3], r[4], None if r[5] is None else bytes(r[5]), r[2])
        for r in db.conn.execute(
            "SELECT id, ts, kind, root_id, run_id, path FROM events WHERE id > ?"
            " ORDER BY id LIMIT ?",
            [after, limit],
        )
    ]


@dataclass(frozen=True)
class Delta:
    """What a batch of events asks a view to reload."""

    last_event: int
    """The newest event folded (0 for none)."""
    runs: frozenset[int]
    """Runs to read again (they may turn out gone)."""
    removed_runs: frozenset[int]
    """Runs whose last word was their removal."""
    folders: frozenset[tuple[int, bytes]]
    """(root id, key) of every path touched and of every folder above it, up to the root's
    ``b""`` (a folder's listing shows its sub-folders' totals): the tree folders and the
    previewed file to refresh.  Moves to and from the trash arrive here too (as
    ``removed`` and ``added`` file events)."""
    rescanned_roots: frozenset[int]
    """Roots a ``scan`` event of the whole root covered: all their runs and open folders."""
    trash_roots: frozenset[int]
    """Roots whose trash changed (what a view of the trash reloads)."""
    full: bool
    """Reload everything: more events than a reader should fold, or a kind it does not know."""
    rescanned_folders: frozenset[tuple[int, bytes]] = frozenset()
    """(root id, key) of the folders a ``scan`` event below its root covered (not in a
    root of ``rescanned_roots``): what ``in_scope`` says, not the whole root.  A first
    scan commits chunk by chunk; each one costs a reader what it covered."""

    @property
    def empty(self) -> bool:
        return self.last_event == 0


def fold(events: Iterable[Event], *, max_events: int | None = None) -> Delta:
    """The batch as one ``Delta``; later run events win (a run removed then added is fresh)."""
    runs: set[int] = set()
    removed: set[int] = set()
    folders: set[tuple[int, bytes]] = set()
    rescanned: set[int] = set()
    scoped: set[tuple[int, bytes]] = set()
    trash: set[int] = set()
    last, count, unknown = 0, 0, False
    for event in events:
        count += 1
        last = max(last, event.id)
        if event.kind is None:
            unknown = True
        if event.kind is EventKind.RUN_REMOVED and event.run_id is not None:
            removed.add(event.run_id)
            runs.discard(event.run_id)
        elif event.run_id is not None and (event.kind in RUN_KINDS or event.run_id not in removed):
            # a file event naming a removed run (the scan writes them after the run's
            # removal) does not bring the run back; only a run event does
            runs.add(event.run_id)
            removed.discard(event.run_id)
        if event.kind is EventKind.SCAN and event.root_id is not None:
            if event.path:
                scoped.add((event.root_id, event.path))
            else:
                rescanned.add(event.root_id)
        if event.kind is EventKind.TRASH and event.root_id is not None:
            trash.add(event.root_id)
        if event.path is not None and event.root_id is not None:
            key = event.path
            folders.add((event.root_id, key))
            while key:
                # every folder above shows this one's totals, and folders that come or go
                # write no event of their own; each key in the set has its folders above it
                # there too, so the walk up stops at the first one already there
                key = paths.parent_key(key)
                if (event.root_id, key) in folders:
                    break
                folders.add((event.root_id, key))
    full = unknown or (max_events is not None and count > max_events)
    return Delta(
        last,
        frozenset(runs),
        frozenset(removed),
        frozenset(folders),
        frozenset(rescanned),
        frozenset(trash),
        full,
        frozenset((rid, key) for rid, key in scoped if rid not in rescanned),
    )


def in_scope(scopes: Iterable[tuple[int, bytes]]) -> Callable[[int, bytes], bool]:
    """Whether a scan of the folders ``scopes`` may have changed the run or the open
    folder at (root id, key): it lies at or below one of them (its rows were rewritten),
    or above one (its totals and listing show theirs).  Answered in the depth of the
    key, whatever the number of folders (a chunk of a first scan covers hundreds)."""
    folders = set(scopes)
    if not folders:
        return lambda _root_id, _key: False
    above: set[tuple[int, bytes]] = set()
    for root_id, key in folders:
        while (root_id, key) not in above:
            above.add((root_id, key))
            if not key:
                break
            key = paths.parent_key(key)

    def covered(root_id: int, key: bytes) -> bool:
        if (root_id, key) in above:
            return True
        while key:
            key = paths.parent_key(key)
            if (root_id, key) in folders:
                return True
        return False

    return covered
